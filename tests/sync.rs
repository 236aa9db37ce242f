//! The sync hub end to end: a real server on port 0, real yrs clients over real WebSockets.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::updates::encoder::Encode;
use yrs::{GetString, Map, Text, Transact, WriteTxn};

fn text_of(doc: &yrs::Doc, name: &str) -> String {
    let t = doc.get_or_insert_text(name);
    t.get_string(&doc.transact())
}

fn map_len(doc: &yrs::Doc, name: &str) -> u32 {
    let m = doc.get_or_insert_map(name);
    m.len(&doc.transact())
}

#[tokio::test]
async fn two_clients_converge_on_concurrent_edits() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let url = sync_url(&server, &room("converge"));
    let a = YClient::synced(&url).await;
    let b = YClient::synced(&url).await;

    // Both type into the same title and set map keys at the same time.
    for i in 0..20 {
        a.edit(|_, txn| txn.get_or_insert_text("title").insert(txn, 0, "a"));
        b.edit(|_, txn| txn.get_or_insert_text("title").insert(txn, 0, "b"));
        a.edit(|_, txn| {
            txn.get_or_insert_map("kr")
                .insert(txn, format!("a{i}"), i as i64);
        });
        b.edit(|_, txn| {
            txn.get_or_insert_map("kr")
                .insert(txn, format!("b{i}"), i as i64);
        });
    }
    let done =
        |v: &SharedView| text_of(v.doc(), "title").len() == 40 && map_len(v.doc(), "kr") == 40;
    a.wait_for("a has all edits", done).await;
    b.wait_for("b has all edits", done).await;
    let ta = a.read(|d| text_of(d, "title"));
    let tb = b.read(|d| text_of(d, "title"));
    assert_eq!(ta, tb, "both clients see the same title");
    assert_eq!(ta.matches('a').count(), 20, "every keystroke of a kept");
    assert_eq!(ta.matches('b').count(), 20, "every keystroke of b kept");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn late_joiner_gets_the_full_state() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let url = sync_url(&server, &room("late"));
    let a = YClient::synced(&url).await;
    for i in 0..100 {
        a.edit(|_, txn| {
            txn.get_or_insert_map("objectives")
                .insert(txn, format!("o{i}"), "x");
        });
    }
    // b joins after the edits were sent; a third client proves the server has them all.
    let b = YClient::connect(&url).await;
    b.wait_for("b has 100 entries", |v| {
        v.synced() && map_len(v.doc(), "objectives") == 100
    })
    .await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn awareness_appears_is_queryable_and_disappears_on_disconnect() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let url = sync_url(&server, &room("presence"));
    let a = YClient::synced(&url).await;
    let b = YClient::synced(&url).await;
    a.set_awareness(serde_json::json!({"user": {"name": "ana"}}));
    b.set_awareness(serde_json::json!({"user": {"name": "bo"}}));
    a.wait_for("a sees bo", |v| v.awareness_names() == ["ana", "bo"])
        .await;
    b.wait_for("b sees ana", |v| v.awareness_names() == ["ana", "bo"])
        .await;

    // A joiner gets the present states with its handshake, and on query-awareness.
    let c = YClient::connect(&url).await;
    c.wait_for("c sees both", |v| v.awareness_names() == ["ana", "bo"])
        .await;
    c.round_trip().await;

    // a's tab crashes: no null state is sent, the socket just drops.
    a.kill();
    b.wait_for("ana gone for b", |v| v.awareness_names() == ["bo"])
        .await;
    c.wait_for("ana gone for c", |v| v.awareness_names() == ["bo"])
        .await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_doc_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let room = room("restart");
    let server = start_server(dir.path(), |_| {}).await;
    let a = YClient::synced(&sync_url(&server, &room)).await;
    let watcher = YClient::synced(&sync_url(&server, &room)).await;
    a.edit(|_, txn| {
        txn.get_or_insert_text("title")
            .insert(txn, 0, "Grow revenue")
    });
    a.edit(|_, txn| {
        txn.get_or_insert_map("kr").insert(txn, "k1", "ARR 2M");
    });
    // Once another client has the edits, the server has applied them.
    watcher
        .wait_for("edits relayed", |v| map_len(v.doc(), "kr") == 1)
        .await;
    // Graceful shutdown closes sockets with 1001 and flushes every room.
    let closing = server.shutdown();
    let (r, closed) = tokio::join!(closing, a.wait_closed());
    r.unwrap();
    assert_eq!(closed.code, Some(1001), "{closed:?}");

    let server = start_server(dir.path(), |_| {}).await;
    let b = YClient::synced(&sync_url(&server, &room)).await;
    assert_eq!(b.read(|d| text_of(d, "title")), "Grow revenue");
    assert_eq!(b.read(|d| map_len(d, "kr")), 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn malformed_and_refused_frames_close_only_that_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |a| a.max_message_size = 64 * 1024).await;
    let url = sync_url(&server, &room("malformed"));
    let a = YClient::synced(&url).await;
    a.edit(|_, txn| txn.get_or_insert_text("title").insert(txn, 0, "kept"));

    let cases: Vec<(&str, WsMessage, u16)> = vec![
        (
            "truncated update",
            WsMessage::Binary(vec![0, 2, 50, 1, 2].into()),
            1002,
        ),
        (
            "unknown sync type",
            WsMessage::Binary(vec![0, 7, 1, 0].into()),
            1002,
        ),
        (
            "garbage update payload",
            WsMessage::Binary(vec![0, 2, 4, 250, 250, 250, 250].into()),
            1002,
        ),
        ("empty frame", WsMessage::Binary(Vec::new().into()), 1002),
        ("text frame", WsMessage::Text("hello".into()), 1003),
        (
            "oversized frame",
            WsMessage::Binary(vec![0; 100 * 1024].into()),
            1009,
        ),
    ];
    for (what, frame, expected) in cases {
        let bad = YClient::synced(&url).await;
        bad.send_ws(frame);
        let closed = bad.wait_closed().await;
        assert_eq!(closed.code, Some(expected), "{what}: {closed:?}");
        assert!(!closed.reason.is_empty(), "{what}: a reason is given");
    }

    // The room is intact and a is still served.
    assert!(a.closed().is_none());
    let b = YClient::synced(&url).await;
    assert_eq!(b.read(|d| text_of(d, "title")), "kept");
    b.edit(|_, txn| txn.get_or_insert_text("title").push(txn, "!"));
    a.wait_for("a receives b's edit", |v| {
        text_of(v.doc(), "title") == "kept!"
    })
    .await;
    assert_eq!(
        metric(
            server.local_addr(),
            "okrhub_closes_total{reason=\"malformed\"}"
        )
        .await,
        4.0
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn invalid_room_id_gets_a_close_reason() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let c = YClient::connect(&sync_url(&server, "not-a-room")).await;
    let closed = c.wait_closed().await;
    assert_eq!(closed.code, Some(1008));
    assert!(closed.reason.contains("invalid room id"), "{closed:?}");
    assert_eq!(
        metric(server.local_addr(), "okrhub_rooms_loaded").await,
        0.0
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_stalled_reader_is_cut_off_while_the_others_keep_receiving() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |a| {
        a.send_queue = 8;
        a.max_message_size = 1024 * 1024;
    })
    .await;
    let url = sync_url(&server, &room("stall"));

    // The stalled client does the handshake's first step and then never reads again.
    let (mut stalled, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let step1 = yrs::sync::Message::Sync(yrs::sync::SyncMessage::SyncStep1(Default::default()));
    stalled
        .send(WsMessage::Binary(step1.encode_v1().into()))
        .await
        .unwrap();

    let writer = YClient::synced(&url).await;
    let reader = YClient::synced(&url).await;
    const N: usize = 400;
    let chunk = "x".repeat(64 * 1024);
    // The live reader is a real client that keeps up: it is never more than 4 frames behind,
    // within its queue of 8 (a reader slower than the writer for a whole 25 MB burst would
    // rightly be cut off too). The stalled client's queue overflows once its socket buffers
    // are full, and the room cuts it off...
    let mut sent = 0;
    let edit_and_catch_up = |sent: usize| {
        let (writer, reader, chunk) = (&writer, &reader, &chunk);
        async move {
            for _ in 0..4 {
                writer.edit(|_, txn| txn.get_or_insert_text("log").push(txn, chunk));
            }
            reader
                .wait_for("the live reader keeps up", |v| {
                    text_of(v.doc(), "log").len() == (sent + 4) * chunk.len()
                })
                .await;
            sent + 4
        }
    };
    while metric(
        server.local_addr(),
        "okrhub_slow_consumer_disconnects_total",
    )
    .await
        < 1.0
    {
        assert!(sent < N, "the stalled client was never cut off");
        sent = edit_and_catch_up(sent).await;
    }

    // ...and the stalled client, reading at last, finds its stream cut short and closed.
    let mut updates = 0;
    let mut close = None;
    while let Some(Ok(m)) = tokio::time::timeout(WAIT, stalled.next())
        .await
        .expect("stream ends")
    {
        match m {
            WsMessage::Binary(_) => updates += 1,
            WsMessage::Close(f) => close = f,
            _ => {}
        }
    }
    assert!(
        updates < sent,
        "the stalled client was cut off ({updates} of {sent} frames)"
    );
    // The room goes on without it.
    for _ in 0..2 {
        sent = edit_and_catch_up(sent).await;
    }

    assert_eq!(
        metric(
            server.local_addr(),
            "okrhub_slow_consumer_disconnects_total"
        )
        .await,
        1.0
    );
    let close = close.expect("a close frame");
    assert_eq!(u16::from(close.code), 1013);
    assert!(close.reason.contains("behind"), "{close:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn concurrent_first_joins_share_one_room() {
    let dir = tempfile::tempdir().unwrap();
    let room = room("coldjoin");
    // Store a doc, then restart so the room is cold.
    let server = start_server(dir.path(), |_| {}).await;
    let a = YClient::synced(&sync_url(&server, &room)).await;
    for i in 0..50 {
        a.edit(|_, txn| {
            txn.get_or_insert_map("objectives")
                .insert(txn, format!("o{i}"), i as i64);
        });
    }
    a.round_trip().await;
    server.shutdown().await.unwrap();

    let server = start_server(dir.path(), |_| {}).await;
    let url = sync_url(&server, &room);
    let clients = futures_util::future::join_all((0..20).map(|_| YClient::connect(&url))).await;
    for c in &clients {
        c.wait_for("full state at handshake", |v| {
            v.synced() && map_len(v.doc(), "objectives") == 50
        })
        .await;
    }
    let addr = server.local_addr();
    assert_eq!(
        metric(addr, "okrhub_room_load_seconds_count").await,
        1.0,
        "loaded once"
    );
    assert_eq!(metric(addr, "okrhub_rooms_loaded").await, 1.0);
    // One room: an edit by one reaches all.
    clients[0].edit(|_, txn| {
        txn.get_or_insert_map("objectives").insert(txn, "new", true);
    });
    for c in &clients {
        c.wait_for("the edit", |v| map_len(v.doc(), "objectives") == 51)
            .await;
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failed_load_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let bad_room = room("corrupt");
    {
        // A log entry that is not a Yjs update.
        let store = okrhub::store::embedded::EmbeddedStore::open(dir.path()).unwrap();
        use okrhub::store::DocStore;
        store
            .append(&[okrhub::store::LogEntry {
                room: okrhub::room_id::RoomId::parse(&bad_room).unwrap(),
                seq: 1,
                update: bytes::Bytes::from_static(&[9, 9, 9, 9]),
                by: None,
            }])
            .await
            .unwrap();
    }
    let server = start_server(dir.path(), |_| {}).await;
    let addr = server.local_addr();
    for _ in 0..2 {
        let c = YClient::connect(&sync_url(&server, &bad_room)).await;
        let closed = c.wait_closed().await;
        assert_eq!(closed.code, Some(1011), "{closed:?}");
        assert_eq!(
            metric(addr, "okrhub_rooms_loaded").await,
            0.0,
            "no half-room"
        );
    }
    // Other rooms are unaffected.
    let ok = YClient::synced(&sync_url(&server, &room("fine"))).await;
    assert!(ok.closed().is_none());
    assert_eq!(metric(addr, "okrhub_rooms_loaded").await, 1.0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_idle_room_unloads_with_a_snapshot_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |a| a.idle_unload = Duration::from_millis(200)).await;
    let addr = server.local_addr();
    let url = sync_url(&server, &room("idle"));
    let a = YClient::synced(&url).await;
    a.edit(|_, txn| txn.get_or_insert_text("title").insert(txn, 0, "Ship v2"));
    wait_metric(addr, "okrhub_store_appended_total", |v| v >= 1.0).await;
    a.kill();
    wait_metric(addr, "okrhub_rooms_loaded", |v| v == 0.0).await;
    assert_eq!(
        metric(addr, "okrhub_compactions_total").await,
        1.0,
        "final snapshot written"
    );

    let b = YClient::synced(&url).await;
    assert_eq!(b.read(|d| text_of(d, "title")), "Ship v2");
    assert_eq!(
        metric(addr, "okrhub_room_load_seconds_count").await,
        2.0,
        "loaded again"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn healthz_and_metrics_answer() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let addr = server.local_addr();
    assert!(http_get(addr, "/healthz").await.ends_with("ok"));
    let _c = YClient::synced(&sync_url(&server, &room("metrics"))).await;
    let body = http_get(addr, "/metrics").await;
    for name in [
        "okrhub_connections",
        "okrhub_rooms_loaded",
        "okrhub_frames_in_total",
        "okrhub_frames_out_total",
        "okrhub_bytes_in_total",
        "okrhub_bytes_out_total",
        "okrhub_store_append_seconds",
        "okrhub_slow_consumer_disconnects_total",
    ] {
        assert!(body.contains(name), "missing {name} in:\n{body}");
    }
    assert_eq!(metric(addr, "okrhub_connections").await, 1.0);
    server.shutdown().await.unwrap();
}

/// A tiny deterministic PRNG (xorshift64*), so a failure can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[tokio::test]
async fn mutated_frames_never_break_the_room() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let url = sync_url(&server, &room("fuzz"));
    let a = YClient::synced(&url).await;
    a.edit(|_, txn| txn.get_or_insert_text("title").insert(txn, 0, "steady"));
    a.round_trip().await;

    // Valid frames to start from: an update, an awareness update, a sync step 1.
    let doc = yrs::Doc::new();
    let update = {
        let mut txn = doc.transact_mut();
        txn.get_or_insert_map("kr").insert(&mut txn, "k", "value");
        txn.get_or_insert_text("t").insert(&mut txn, 0, "hello");
        txn.encode_update_v1()
    };
    let mut awareness = yrs::sync::Awareness::new(yrs::Doc::new());
    awareness
        .set_local_state(serde_json::json!({"user": {"name": "z"}}))
        .unwrap();
    let seeds: Vec<Vec<u8>> = vec![
        yrs::sync::Message::Sync(yrs::sync::SyncMessage::Update(update)).encode_v1(),
        yrs::sync::Message::Awareness(awareness.update().unwrap()).encode_v1(),
        yrs::sync::Message::Sync(yrs::sync::SyncMessage::SyncStep1(Default::default())).encode_v1(),
    ];

    let mut rng = Rng(0x5eed_0f0c_7a11);
    let mut closed = 0;
    for _ in 0..400 {
        let mut frame = seeds[rng.below(seeds.len())].clone();
        match rng.below(3) {
            0 => frame.truncate(rng.below(frame.len())),
            1 => {
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(frame.len());
                    frame[i] = rng.next() as u8;
                }
            }
            _ => {
                let i = rng.below(frame.len());
                frame.insert(i, rng.next() as u8);
            }
        }
        let c = YClient::connect(&url).await;
        c.send_raw(frame);
        // Either the server closes it as malformed, or it accepted the frame: a round trip
        // proves the server is past it.
        c.round_trip_or_closed().await;
        if c.closed().is_some() {
            closed += 1;
        }
    }
    assert!(closed > 0, "some mutations are refused");
    assert!(
        a.closed().is_none(),
        "the steady client was never disconnected"
    );
    let b = YClient::synced(&url).await;
    assert!(b.read(|d| text_of(d, "title")).contains("steady"));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_long_log_is_snapshotted_while_the_room_stays_busy() {
    let dir = tempfile::tempdir().unwrap();
    let room = room("compact");
    let server = start_server(dir.path(), |a| {
        a.compact_after = 10;
        a.idle_unload = Duration::from_millis(400); // sweeps every 100 ms
    })
    .await;
    let addr = server.local_addr();
    let a = YClient::synced(&sync_url(&server, &room)).await;
    for i in 0..25 {
        a.edit(|_, txn| {
            txn.get_or_insert_map("kr")
                .insert(txn, format!("k{i}"), i as i64);
        });
    }
    a.round_trip().await;
    // The room is still in use, yet its log is folded into a snapshot.
    wait_metric(addr, "okrhub_compactions_total", |v| v >= 1.0).await;
    assert_eq!(metric(addr, "okrhub_rooms_loaded").await, 1.0);
    assert!(a.closed().is_none());
    server.shutdown().await.unwrap();

    // Snapshot + the log after it still make the whole doc.
    let server = start_server(dir.path(), |_| {}).await;
    let b = YClient::synced(&sync_url(&server, &room)).await;
    assert_eq!(b.read(|d| map_len(d, "kr")), 25);
    server.shutdown().await.unwrap();
}
