//! The limits against inputs that cost more than they are worth (README "Limits"): each trips
//! with its reason, and the room's other clients go on untouched. A real server on port 0, real
//! yrs clients and `/live` clients over real WebSockets.

mod common;

use std::time::Duration;

use common::live::{get_room, post_command, upgrade, LiveClient};
use common::{metric, room, start_server, sync_url, YClient, WAIT};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::sync::awareness::AwarenessUpdateEntry;
use yrs::sync::{AwarenessUpdate, Message};
use yrs::updates::encoder::Encode;
use yrs::{GetString, Map, Text, Transact, WriteTxn};

/// `okrhub_limit_refusals_total{limit="…"}`.
async fn refusals(addr: std::net::SocketAddr, limit: &str) -> f64 {
    metric(
        addr,
        &format!("okrhub_limit_refusals_total{{limit=\"{limit}\"}}"),
    )
    .await
}

/// Two witnesses of a room: one edits, the other must see it. Proves the room still serves.
async fn room_still_serves(url: &str, key: &str) {
    let a = YClient::synced(url).await;
    let b = YClient::synced(url).await;
    a.edit(|_, txn| {
        txn.get_or_insert_map("witness")
            .insert(txn, key, "still here");
    });
    b.wait_for("the witness's edit", |v| {
        v.doc()
            .get_or_insert_map("witness")
            .get(&v.doc().transact(), key)
            .is_some()
    })
    .await;
}

/// An awareness frame announcing `n` states of client ids from `first`, each `bytes` long.
fn awareness_frame(first: u64, n: u64, bytes: usize) -> Vec<u8> {
    let mut update = AwarenessUpdate {
        clients: Default::default(),
    };
    let state = format!("{{\"user\":{{\"name\":\"{}\"}}}}", "x".repeat(bytes));
    for id in first..first + n {
        update.clients.insert(
            yrs::block::ClientID::new(id),
            AwarenessUpdateEntry {
                clock: 1,
                json: state.clone().into(),
            },
        );
    }
    Message::Awareness(update).encode_v1()
}

#[tokio::test]
async fn an_update_that_would_pass_the_document_limit_is_refused_and_the_room_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |a| a.limits.max_doc_size = 16 * 1024).await;
    let addr = server.local_addr();
    let name = room("docsize");
    let url = sync_url(&server, &name);

    let writer = YClient::synced(&url).await;
    let watcher = YClient::synced(&url).await;
    // 10 KiB fit.
    writer.edit(|_, txn| {
        txn.get_or_insert_text("notes")
            .insert(txn, 0, &"a".repeat(10 * 1024));
    });
    watcher
        .wait_for("the first 10 KiB", |v| {
            v.doc()
                .get_or_insert_text("notes")
                .get_string(&v.doc().transact())
                .len()
                == 10 * 1024
        })
        .await;
    // 10 KiB more would not.
    writer.edit(|_, txn| {
        txn.get_or_insert_text("notes")
            .insert(txn, 0, &"b".repeat(10 * 1024));
    });
    let closed = writer.wait_closed().await;
    assert_eq!(closed.code, Some(1009), "{closed:?}");
    assert!(closed.reason.contains("exceed 16384 bytes"), "{closed:?}");
    assert_eq!(refusals(addr, "doc_size").await, 1.0);

    // Nobody got the refused update; the room still serves.
    room_still_serves(&url, "after-doc-limit").await;
    let fresh = YClient::synced(&url).await;
    let notes = fresh.read(|d| d.get_or_insert_text("notes").get_string(&d.transact()));
    assert_eq!(
        notes,
        "a".repeat(10 * 1024),
        "the refused update is nowhere"
    );
    assert_eq!(watcher.closed(), None);

    // A command into the full room: 413 `doc_too_large` once the doc is at its limit.
    let mut answer = None;
    for i in 0..100 {
        let title = format!("Objective {i}: {}", "t".repeat(180));
        let r = post_command(
            addr,
            &name,
            Some("ana"),
            &json!({"type": "objective.create", "title": title}).to_string(),
        )
        .await;
        if r.status != 200 {
            answer = Some(r);
            break;
        }
    }
    let answer = answer.expect("the room filled up");
    assert_eq!(answer.status, 413, "{:?}", answer.body);
    assert_eq!(answer.body["error"]["code"], "doc_too_large");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_flood_of_messages_closes_the_sender_only() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |a| {
        a.limits.message_rate = 20;
        a.limits.message_burst = 40;
    })
    .await;
    let addr = server.local_addr();
    let url = sync_url(&server, &room("flood"));
    let watcher = YClient::synced(&url).await;
    let live = LiveClient::join(addr, &room("flood"), "li").await;

    // A client within its burst is fine.
    let calm = YClient::synced(&url).await;
    for _ in 0..10 {
        calm.send_raw(Message::AwarenessQuery.encode_v1());
    }
    calm.round_trip().await;
    assert_eq!(calm.closed(), None);

    // 1,000 tiny messages at once: closed at the 41st or so, with the reason.
    let flooder = YClient::synced(&url).await;
    for i in 0..1000 {
        flooder.edit(|_, txn| {
            txn.get_or_insert_map("flood").insert(txn, "n", i as i64);
        });
    }
    let closed = flooder.wait_closed().await;
    assert_eq!(closed.code, Some(1008), "{closed:?}");
    assert!(closed.reason.starts_with("rate limit"), "{closed:?}");
    assert_eq!(refusals(addr, "message_rate").await, 1.0);
    // Pings count too: a ping flood is the same flood.
    let pinger = YClient::synced(&url).await;
    for _ in 0..1000 {
        pinger.send_ws(WsMessage::Ping(vec![1].into()));
    }
    assert_eq!(pinger.wait_closed().await.code, Some(1008));

    // The room's other clients are untouched.
    room_still_serves(&url, "after-flood").await;
    assert_eq!(watcher.closed(), None);
    assert_eq!(live.closed(), None);
    assert_eq!(calm.closed(), None);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_full_room_refuses_one_more_connection_until_one_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |a| a.limits.max_connections_per_room = 3).await;
    let addr = server.local_addr();
    let name = room("full");
    let url = sync_url(&server, &name);
    let a = YClient::synced(&url).await;
    let b = YClient::synced(&url).await;
    let live = LiveClient::join(addr, &name, "li").await;

    let extra = YClient::connect(&url).await;
    let closed = extra.wait_closed().await;
    assert_eq!(closed.code, Some(1013), "{closed:?}");
    assert!(closed.reason.starts_with("room full"), "{closed:?}");
    let extra_live =
        LiveClient::connect(&common::live::live_url(addr, &name, "user=bo"), "bo").await;
    assert_eq!(extra_live.wait_closed().await.code, Some(1013));
    assert_eq!(refusals(addr, "room_connections").await, 2.0);

    // The three inside go on; another room is not affected.
    a.edit(|_, txn| {
        txn.get_or_insert_map("m").insert(txn, "k", "v");
    });
    b.wait_for("a's edit", |v| {
        v.doc()
            .get_or_insert_map("m")
            .get(&v.doc().transact(), "k")
            .is_some()
    })
    .await;
    room_still_serves(&sync_url(&server, &room("other")), "other").await;

    // One leaves: there is room again.
    a.kill();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let c = YClient::connect(&url).await;
        tokio::select! {
            _ = c.wait_for("synced", |v| v.synced()) => break,
            closed = c.wait_closed() => assert_eq!(closed.code, Some(1013)),
        }
        assert!(tokio::time::Instant::now() < deadline, "no room came back");
    }
    assert_eq!(live.closed(), None);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_user_holds_a_bounded_number_of_connections() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |a| a.limits.max_connections_per_user = 2).await;
    let addr = server.local_addr();
    let url = |user: &str| format!("{}?user={user}", sync_url(&server, &room("peruser")));
    let one = YClient::synced(&url("ana")).await;
    let two = LiveClient::join(addr, &room("peruser"), "ana").await;

    let (status, body) = upgrade(&url("ana"), &[]).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(body["error"]["reason"], "user_connections");
    assert_eq!(refusals(addr, "user_connections").await, 1.0);
    // Another user is not affected; neither are ana's two connections.
    let bo = YClient::synced(&url("bo")).await;
    one.edit(|_, txn| {
        txn.get_or_insert_map("m").insert(txn, "k", "v");
    });
    bo.wait_for("ana's edit", |v| {
        v.doc()
            .get_or_insert_map("m")
            .get(&v.doc().transact(), "k")
            .is_some()
    })
    .await;
    assert_eq!(two.closed(), None);

    // When one of hers ends, she may connect again.
    one.kill();
    let deadline = tokio::time::Instant::now() + WAIT;
    while upgrade(&url("ana"), &[]).await.0 != 101 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_client_loads_a_bounded_number_of_rooms_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |a| a.limits.new_rooms_per_minute = 3).await;
    let addr = server.local_addr();
    for i in 0..3 {
        assert_eq!(get_room(addr, &room(&format!("r{i}"))).await.status, 200);
    }
    // A fourth room, by REST or by an upgrade: 429, and nothing is loaded for it.
    let r = get_room(addr, &room("r3")).await;
    assert_eq!(r.status, 429, "{:?}", r.body);
    assert_eq!(r.body["error"]["reason"], "new_rooms_ip");
    let (status, body) = upgrade(&sync_url(&server, &room("r4")), &[]).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(metric(addr, "okrhub_rooms_loaded").await, 3.0);
    // Rooms already loaded cost nothing.
    let again = YClient::synced(&sync_url(&server, &room("r1"))).await;
    assert!(again.closed().is_none());
    assert_eq!(get_room(addr, &room("r2")).await.status, 200);
    assert_eq!(refusals(addr, "new_rooms_ip").await, 2.0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn awareness_over_its_limits_is_refused_and_live_subscribers_stay() {
    let dir = tempfile::tempdir().unwrap();
    // The default 64 KiB per message; 4 states per connection.
    let server = start_server(dir.path(), |a| a.limits.max_awareness_states = 4).await;
    let addr = server.local_addr();
    let name = room("aware");
    let url = sync_url(&server, &name);
    let live = LiveClient::join(addr, &name, "li").await;
    let witness = YClient::synced(&url).await;

    // The frame: 2,000 fake clients in one 60 KB message.
    let faker = YClient::synced(&url).await;
    faker.send_raw(awareness_frame(1_000_000, 2_000, 1));
    let closed = faker.wait_closed().await;
    assert_eq!(closed.code, Some(1008), "{closed:?}");
    assert!(
        closed.reason.starts_with("awareness: 2000 states"),
        "{closed:?}"
    );

    // One state, but 70 KB of it.
    let fat = YClient::synced(&url).await;
    fat.send_raw(awareness_frame(2_000_000, 1, 70 * 1024));
    let closed = fat.wait_closed().await;
    assert_eq!(closed.code, Some(1008), "{closed:?}");
    assert!(closed.reason.contains("bytes of state"), "{closed:?}");

    // Four small states from one connection are fine; a fifth is not.
    let tabs = YClient::synced(&url).await;
    tabs.send_raw(awareness_frame(3_000_000, 4, 10));
    tabs.round_trip().await;
    assert_eq!(tabs.closed(), None);
    tabs.send_raw(awareness_frame(3_000_010, 1, 10));
    assert_eq!(tabs.wait_closed().await.code, Some(1008));

    assert_eq!(refusals(addr, "awareness_states").await, 2.0);
    assert_eq!(refusals(addr, "awareness_bytes").await, 1.0);
    // Nobody else noticed: no fake presence reached /live, which is still connected.
    room_still_serves(&url, "after-awareness").await;
    assert_eq!(live.closed(), None);
    assert_eq!(witness.closed(), None);
    let fake_presence = live
        .frames()
        .iter()
        .filter(|f| {
            f["type"] == "presence"
                && f["client"]
                    .as_u64()
                    .is_some_and(|c| (1_000_000..3_000_000).contains(&c))
        })
        .count();
    assert_eq!(fake_presence, 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_burst_of_presence_is_coalesced_and_no_live_queue_overflows() {
    let dir = tempfile::tempdir().unwrap();
    // Queues of 64 frames: 16 presence changes a tick, then one `present`.
    let server = start_server(dir.path(), |a| {
        a.send_queue = 64;
        // The sweeper (which ticks rooms) runs every second.
        a.idle_unload = Duration::from_secs(4);
    })
    .await;
    let addr = server.local_addr();
    let name = room("burst");
    let url = sync_url(&server, &name);
    let live = LiveClient::join(addr, &name, "li").await;
    let before = live.frames().len();

    // 40 clients, each with 8 states (40 × 8 = 320 presence changes, 5× the queue), sent at
    // once: far more than 16 changes in one tick.
    let mut clients = Vec::new();
    for _ in 0..40 {
        clients.push(YClient::synced(&url).await);
    }
    for (c, client) in clients.iter().enumerate() {
        client.send_raw(awareness_frame(10_000 + c as u64 * 100, 8, 10));
    }
    for c in &clients {
        c.round_trip().await;
    }
    // The next ticks say who is present, as one message.
    live.wait_for("a present message with everyone", |frames| {
        frames.iter().any(|f| {
            f["type"] == "present" && f["present"].as_array().is_some_and(|p| p.len() >= 320)
        })
    })
    .await;
    assert_eq!(live.closed(), None, "the /live subscriber was not cut off");
    let presence = live.frames()[before..]
        .iter()
        .filter(|f| f["type"] == "presence")
        .count();
    assert!(presence < 320, "{presence} presence frames: not coalesced");
    assert!(metric(addr, "okrhub_presence_coalesced_total").await > 0.0);
    live.assert_valid();
    server.shutdown().await.unwrap();
}
