//! The Redis store against a real `redis-server` each test starts itself (on a free port, in a
//! temp dir): round trips, compaction, SIGKILL of the hub, a Redis outage, a Redis restarted
//! empty, a full persist buffer, export/import. Every test counts what survived.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::live::acked_commands_survive_sigkill;
use common::process::{run_okrhub, HubProcess};
use common::redis_server::RedisServer;
use common::*;
use okrhub::config::ServeArgs;
use okrhub::config::StoreChoice;
use okrhub::room_id::RoomId;
use okrhub::store::redis::{log_key, snap_key, RedisStore};
use okrhub::store::{doc_from_stored, DocStore, LogEntry};
use yrs::{Doc, Map, ReadTxn, StateVector, Transact, WriteTxn};

fn use_redis(redis: &RedisServer) -> impl FnOnce(&mut ServeArgs) {
    let url = redis.url();
    move |a| {
        a.store.kind = StoreChoice::Redis;
        a.store.redis_url = url;
    }
}

/// What Redis holds for `room`, as a doc.
async fn stored_doc(redis: &RedisServer, room: &str) -> Doc {
    let store = RedisStore::open(&redis.url()).unwrap();
    let room = RoomId::parse(room).unwrap();
    let stored = store.load(&room).await.expect("load from redis");
    doc_from_stored(&room, &stored).expect("stored doc applies")
}

fn count(doc: &Doc, prefix: &str) -> usize {
    let map = doc.get_or_insert_map("edits");
    let txn = doc.transact();
    map.keys(&txn).filter(|k| k.starts_with(prefix)).count()
}

fn full_state(doc: &Doc) -> Vec<u8> {
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

fn edit(client: &YClient, key: String) {
    client.edit(|_, txn| {
        txn.get_or_insert_map("edits").insert(txn, key, 1);
    });
}

async fn xlen(redis: &RedisServer, room: &str) -> u64 {
    let mut conn = redis.conn().await;
    let room = RoomId::parse(room).unwrap();
    redis::cmd("XLEN")
        .arg(log_key(&room))
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// `/readyz`'s status code.
async fn readyz(addr: std::net::SocketAddr) -> u16 {
    let resp = http_get(addr, "/readyz").await;
    resp.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Polls `/readyz` until it answers `code` (readiness has no event to wait on).
async fn wait_ready(addr: std::net::SocketAddr, code: u16) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if readyz(addr).await == code {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz never answered {code}: {}",
            http_get(addr, "/readyz").await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn entry(room: &RoomId, seq: u64, byte: u8) -> LogEntry {
    LogEntry {
        room: room.clone(),
        seq,
        update: Bytes::from(vec![byte]),
        by: None,
    }
}

#[tokio::test]
async fn append_is_idempotent_and_compaction_is_atomic_and_monotonic() {
    let redis = RedisServer::start();
    let store = RedisStore::open(&redis.url()).unwrap().with_trim_margin(0);
    let a = RoomId::parse("t.append.q1").unwrap();
    let b = RoomId::parse("t.other.q1").unwrap();

    let batch = [entry(&a, 1, 1), entry(&b, 1, 9), entry(&a, 2, 2)];
    store.append(&batch).await.unwrap();
    // A retried batch (its first attempt landed) and an overlapping one are harmless.
    store.append(&batch).await.unwrap();
    store
        .append(&[entry(&a, 2, 2), entry(&a, 3, 3)])
        .await
        .unwrap();
    let doc = store.load(&a).await.unwrap();
    assert_eq!(doc.updates, vec![vec![1], vec![2], vec![3]]);
    assert_eq!(doc.last_seq, 3);
    assert_eq!(xlen(&redis, "t.append.q1").await, 3);

    store.compact(&a, b"snap2", 2).await.unwrap();
    assert_eq!(xlen(&redis, "t.append.q1").await, 1, "trimmed to seq 3");
    let doc = store.load(&a).await.unwrap();
    assert_eq!(doc.snapshot.as_deref(), Some(&b"snap2"[..]));
    assert_eq!(doc.updates, vec![vec![3]]);
    assert_eq!(doc.last_seq, 3);

    // An older compaction arriving late does not replace the newer snapshot.
    store.compact(&a, b"snap1", 1).await.unwrap();
    assert_eq!(
        store.load(&a).await.unwrap().snapshot.as_deref(),
        Some(&b"snap2"[..])
    );
    // A late append the snapshot covers is neither stored nor replayed.
    store.append(&[entry(&a, 2, 7)]).await.unwrap();
    assert_eq!(store.load(&a).await.unwrap().updates, vec![vec![3]]);

    let mut rooms = store.rooms().await.unwrap();
    rooms.sort();
    assert_eq!(rooms, vec![a.clone(), b.clone()]);
    let mut conn = redis.conn().await;
    let exists: u32 = redis::cmd("EXISTS")
        .arg(snap_key(&a))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 1, "snapshot key {}", snap_key(&a));
}

#[tokio::test]
async fn edits_survive_unload_and_compaction_trims_the_log() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |a| {
        use_redis(&redis)(a);
        a.idle_unload = Duration::from_millis(200);
        a.compact_after = 50;
        a.store.redis_trim_margin = 0;
    })
    .await;
    let room = room("redis-roundtrip");
    let a = YClient::synced(&sync_url(&server, &room)).await;
    for i in 0..120 {
        edit(&a, format!("k{i}"));
    }
    a.round_trip().await;
    // The sweeper snapshots at 50 logged updates: the log is trimmed while the room is live.
    wait_metric(server.local_addr(), "okrhub_compactions_total", |v| {
        v >= 1.0
    })
    .await;
    let before = a.read(full_state);
    a.kill();
    // Unloaded: final snapshot written, the log trimmed to nothing.
    wait_metric(server.local_addr(), "okrhub_rooms_loaded", |v| v == 0.0).await;
    assert_eq!(
        xlen(&redis, &room).await,
        0,
        "every entry folded into the snapshot"
    );
    assert_eq!(count(&stored_doc(&redis, &room).await, "k"), 120);

    let b = YClient::synced(&sync_url(&server, &room)).await;
    assert_eq!(b.read(|d| count(d, "k")), 120);
    let reloaded = Doc::new();
    b.read(|d| {
        let update = full_state(d);
        let u = yrs::Update::decode_v1(&update).unwrap();
        reloaded.transact_mut().apply_update(u).unwrap();
    });
    // Same state: each side has everything of the other.
    let original = Doc::new();
    original
        .transact_mut()
        .apply_update(yrs::Update::decode_v1(&before).unwrap())
        .unwrap();
    assert_eq!(
        original.transact().state_vector(),
        reloaded.transact().state_vector()
    );
    server.shutdown().await.unwrap();
}

use yrs::updates::decoder::Decode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_hub_loses_no_written_update() {
    let redis = RedisServer::start();
    let url = redis.url();
    let args = ["--store", "redis", "--redis-url", &url];
    let room = room("redis-sigkill");
    let server = HubProcess::start(&args);
    let clients = [
        YClient::synced(&server.url(&room)).await,
        YClient::synced(&server.url(&room)).await,
        YClient::synced(&server.url(&room)).await,
    ];
    for (c, client) in clients.iter().enumerate() {
        for i in 0..100 {
            edit(client, format!("flushed-{c}-{i}"));
        }
    }
    for client in &clients {
        client.round_trip().await;
    }
    // Applied by now; written within the batch window: the metric says when.
    wait_metric(server.addr, "okrhub_store_appended_total", |v| v >= 300.0).await;

    // Keep editing from every client and kill the hub in the middle of it. Edits 0..=50 of
    // each client are applied (round trip) more than `OLDER` before the kill: far older than
    // the batch window (50 ms + one round trip), so they must all be in Redis.
    const OLDER: Duration = Duration::from_millis(500);
    let mut i = 0;
    let mut marked = None;
    loop {
        for (c, client) in clients.iter().enumerate() {
            edit(client, format!("inflight-{c}-{i}"));
        }
        if i == 50 {
            for client in &clients {
                client.round_trip().await;
            }
            marked = Some(tokio::time::Instant::now());
        }
        if marked.is_some_and(|t| t.elapsed() >= OLDER) {
            break;
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.sigkill();

    let in_redis = stored_doc(&redis, &room).await;
    let flushed = count(&in_redis, "flushed-");
    let inflight = count(&in_redis, "inflight-");
    let old_enough = (0..3)
        .flat_map(|c| (0..=50).map(move |i| format!("inflight-{c}-{i}")))
        .filter(|k| {
            in_redis
                .get_or_insert_map("edits")
                .contains_key(&in_redis.transact(), k)
        })
        .count();
    eprintln!(
        "after SIGKILL: {flushed}/300 written edits, {old_enough}/153 edits older than {OLDER:?}, \
         {inflight}/{} in-flight edits in Redis",
        3 * (i + 1)
    );
    assert_eq!(flushed, 300, "every written update survives SIGKILL");
    assert_eq!(
        old_enough, 153,
        "every update older than the batch window survives"
    );

    let server = HubProcess::start(&args);
    let check = YClient::synced(&server.url(&room)).await;
    assert_eq!(check.read(|d| count(d, "flushed-")), 300);
    assert_eq!(check.read(|d| count(d, "inflight-")), inflight);
    server.sigterm();
}

/// An `ack` means durable: SIGKILL the hub while three `/live` clients stream commands, and every
/// command acknowledged before the kill is in Redis, counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_hub_loses_no_acked_command() {
    let redis = RedisServer::start();
    let url = redis.url();
    let room = room("redis-acked");
    let acked =
        acked_commands_survive_sigkill(&["--store", "redis", "--redis-url", &url], &room).await;
    // Checked in Redis itself too, not only through the restarted hub.
    let in_redis = stored_doc(&redis, &room).await;
    let set = okrhub::okr::read(&in_redis.transact(), 0);
    let stored: std::collections::HashSet<&str> =
        set.comments.iter().map(|c| c.text.as_str()).collect();
    assert!(acked.iter().all(|t| stored.contains(t.as_str())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_refuses_writes_loses_nothing_and_flips_readiness() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), use_redis(&redis)).await;
    let addr = server.local_addr();
    let room = room("redis-outage");
    let writer = YClient::synced(&sync_url(&server, &room)).await;
    let reader = YClient::synced(&sync_url(&server, &room)).await;
    wait_ready(addr, 200).await;
    for i in 0..100 {
        edit(&writer, format!("before-{i}"));
    }
    writer.round_trip().await;
    redis.stop();
    wait_ready(addr, 503).await;
    assert!(http_get(addr, "/readyz").await.contains("store failing"));
    // Redis is shared by every node: a node that cannot log an edit does not take it (the
    // client would write through a node that can). The writer keeps typing and is refused.
    let mut typed = 100;
    let closed = loop {
        if let Some(closed) = writer.closed() {
            break closed;
        }
        assert!(typed < 300, "writes taken while Redis is down");
        edit(&writer, format!("down-{typed}"));
        typed += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(closed.code, Some(1013), "{closed:?}");
    assert!(closed.reason.contains("store unavailable"), "{closed:?}");
    // The reader is served all along.
    reader.round_trip().await;
    redis.restart();
    wait_ready(addr, 200).await;
    // The writer reconnects and resyncs, as a Yjs provider does: nothing it typed is lost.
    let state = writer.read(full_state);
    let back = YClient::synced(&sync_url(&server, &room)).await;
    back.edit(|_, txn| {
        txn.apply_update(yrs::Update::decode_v1(&state).unwrap())
            .unwrap();
    });
    back.round_trip().await;
    wait_metric(addr, "okrhub_persist_queue", |v| v == 0.0).await;
    assert_eq!(
        count(&stored_doc(&redis, &room).await, ""),
        typed,
        "every edit is in Redis"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_gets_the_loaded_rooms_back() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), use_redis(&redis)).await;
    let addr = server.local_addr();
    let rooms = [room("redis-empty-a"), room("redis-empty-b")];
    let mut clients = Vec::new();
    for r in &rooms {
        let c = YClient::synced(&sync_url(&server, r)).await;
        for i in 0..40 {
            edit(&c, format!("k{i}"));
        }
        c.round_trip().await;
        clients.push(c);
    }
    wait_metric(addr, "okrhub_store_appended_total", |v| v >= 80.0).await;

    redis.restart_empty();
    let mut conn = redis.conn().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(keys.is_empty(), "the new redis is empty: {keys:?}");
    wait_metric(addr, "okrhub_store_writebacks_total", |v| v >= 2.0).await;
    for r in &rooms {
        assert_eq!(
            count(&stored_doc(&redis, r).await, "k"),
            40,
            "{r} written back"
        );
    }
    // And it goes on: later edits land after the written-back snapshot.
    edit(&clients[0], "later".into());
    clients[0].round_trip().await;
    wait_metric(addr, "okrhub_persist_queue", |v| v == 0.0).await;
    assert_eq!(count(&stored_doc(&redis, &rooms[0]).await, ""), 41);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_refuses_writes_and_corrupts_nothing() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |a| {
        use_redis(&redis)(a);
        a.persist_buffer = 30;
    })
    .await;
    let addr = server.local_addr();
    let room = room("redis-full");
    let writer = YClient::synced(&sync_url(&server, &room)).await;
    let watcher = YClient::synced(&sync_url(&server, &room)).await;
    redis.stop();
    for i in 0..100 {
        edit(&writer, format!("k{i}"));
    }
    let closed = writer.wait_closed().await;
    assert_eq!(closed.code, Some(1013), "{closed:?}");
    assert!(closed.reason.contains("store unavailable"), "{closed:?}");
    assert_eq!(metric(addr, "okrhub_store_refused_total").await, 1.0);
    // Exactly what the buffer admitted was applied and relayed; nothing after it.
    watcher.round_trip().await;
    assert_eq!(watcher.read(|d| count(d, "k")), 30);
    assert!(http_get(addr, "/readyz").await.contains("503"));

    redis.restart();
    wait_metric(addr, "okrhub_persist_queue", |v| v == 0.0).await;
    wait_ready(addr, 200).await;
    assert_eq!(count(&stored_doc(&redis, &room).await, "k"), 30);
    // Writes are accepted again.
    let again = YClient::synced(&sync_url(&server, &room)).await;
    edit(&again, "k-after".into());
    again.round_trip().await;
    assert!(again.closed().is_none());
    watcher
        .wait_for("the new edit", |v| count(v.doc(), "k") == 31)
        .await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_from_embedded_and_import_into_redis() {
    let data = tempfile::tempdir().unwrap();
    let rooms = [room("move-a"), room("move-b")];
    let mut states = Vec::new();
    {
        let server = start_server(data.path(), |_| {}).await;
        for (n, r) in rooms.iter().enumerate() {
            let c = YClient::synced(&sync_url(&server, r)).await;
            for i in 0..(10 + n) {
                edit(&c, format!("k{i}"));
            }
            c.round_trip().await;
            states.push(c.read(full_state));
        }
        server.shutdown().await.unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let out_dir = out.path().to_str().unwrap();
    let said = run_okrhub(&["export", "--data-dir", data_dir, "--out", out_dir]);
    assert!(said.contains("exported 2 rooms"), "{said}");
    for r in &rooms {
        assert!(out.path().join(format!("{r}.ydoc")).exists());
    }

    let redis = RedisServer::start();
    let said = run_okrhub(&[
        "import",
        "--store",
        "redis",
        "--redis-url",
        &redis.url(),
        "--from",
        out_dir,
    ]);
    assert!(said.contains("imported 2 rooms"), "{said}");
    for (r, state) in rooms.iter().zip(&states) {
        let doc = stored_doc(&redis, r).await;
        assert_eq!(&full_state(&doc), state, "{r} identical after the move");
    }
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), use_redis(&redis)).await;
    let c = YClient::synced(&sync_url(&server, &rooms[1])).await;
    assert_eq!(c.read(|d| count(d, "k")), 11);
    server.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Integrity

use okrhub::store::frame;

/// A Yjs update setting `edits.k` to `text`.
fn text_update(text: &str) -> Vec<u8> {
    let doc = Doc::new();
    let mut txn = doc.transact_mut();
    txn.get_or_insert_map("edits").insert(&mut txn, "k", text);
    txn.encode_update_v1()
}

/// `bytes` with the first byte of `needle` changed to `to` (it must occur once).
fn flip(bytes: &[u8], needle: &[u8], to: u8) -> Vec<u8> {
    let at: Vec<usize> = (0..=bytes.len() - needle.len())
        .filter(|&i| &bytes[i..i + needle.len()] == needle)
        .collect();
    assert_eq!(at.len(), 1, "{needle:?} once in the value");
    let mut out = bytes.to_vec();
    out[at[0]] = to;
    out
}

async fn hget(redis: &RedisServer, key: &str, field: &str) -> Vec<u8> {
    let mut conn = redis.conn().await;
    redis::cmd("HGET")
        .arg(key)
        .arg(field)
        .query_async(&mut conn)
        .await
        .unwrap()
}

async fn hset(redis: &RedisServer, key: &str, field: &str, value: &[u8]) {
    let mut conn = redis.conn().await;
    redis::cmd("HSET")
        .arg(key)
        .arg(field)
        .arg(value)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
}

/// The stream's entries: (id, value of `u`).
/// A stream's entries: id and fields (name, value, name, value, …).
async fn xrange(redis: &RedisServer, key: &str) -> Vec<(String, Vec<Vec<u8>>)> {
    let mut conn = redis.conn().await;
    redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// The update field (`u`) of a stream entry's fields.
fn u_field(fields: &mut [Vec<u8>]) -> &mut Vec<u8> {
    let at = fields.iter().step_by(2).position(|k| k == b"u").unwrap();
    &mut fields[2 * at + 1]
}

/// Replaces the stream by `entries` (a stream entry cannot be changed in place).
async fn rewrite_stream(redis: &RedisServer, key: &str, entries: &[(String, Vec<Vec<u8>>)]) {
    let mut conn = redis.conn().await;
    let mut pipe = redis::pipe();
    pipe.atomic().cmd("DEL").arg(key).ignore();
    for (id, fields) in entries {
        let cmd = pipe.cmd("XADD").arg(key).arg(id);
        for f in fields {
            cmd.arg(f.as_slice());
        }
        cmd.ignore();
    }
    pipe.exec_async(&mut conn).await.unwrap();
}

async fn readyz_body(addr: std::net::SocketAddr) -> (u16, String) {
    common::live::http(addr, "GET", "/readyz", None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_redis_is_refused_and_reported_until_repaired() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (snap_bad, log_bad, good) = (room("rflip-snap"), room("rflip-log"), room("rflip-good"));
    {
        let server = start_server(dir.path(), use_redis(&redis)).await;
        for (r, title) in [(&snap_bad, "Durable 1"), (&good, "Still fine")] {
            let body = serde_json::json!({"type": "objective.create", "title": title});
            let r =
                common::live::post_command(server.local_addr(), r, Some("ann"), &body.to_string())
                    .await;
            assert_eq!(r.status, 200, "{:?}", r.body);
        }
        server.shutdown().await.unwrap();
    }
    // A snapshot (written at shutdown): one byte of the title changed.
    let snap = snap_key(&RoomId::parse(&snap_bad).unwrap());
    let original = hget(&redis, &snap, "doc").await;
    hset(&redis, &snap, "doc", &flip(&original, b"Durable 1", b'X')).await;
    // A log entry, written by the store itself, then changed in the stream.
    let store = RedisStore::open(&redis.url()).unwrap();
    let log_room = RoomId::parse(&log_bad).unwrap();
    store
        .append(&[LogEntry {
            room: log_room.clone(),
            seq: 1,
            update: Bytes::from(text_update("Durable 1")),
            by: None,
        }])
        .await
        .unwrap();
    let mut entries = xrange(&redis, &log_key(&log_room)).await;
    let u = u_field(&mut entries[0].1);
    *u = flip(u, b"Durable 1", b'X');
    rewrite_stream(&redis, &log_key(&log_room), &entries).await;

    // Rechecked on every join, so that the repair below is seen at once.
    let server = start_server(dir.path(), |a| {
        use_redis(&redis)(a);
        a.corrupt_recheck = Duration::ZERO;
    })
    .await;
    let addr = server.local_addr();
    for r in [&snap_bad, &log_bad] {
        let y = YClient::connect(&sync_url(&server, r)).await;
        let closed = y.wait_closed().await;
        assert_eq!(closed.code, Some(1011), "{r}: {closed:?}");
        assert!(
            closed.reason.contains("room could not be loaded"),
            "{closed:?}"
        );
    }
    let r = common::live::get_room(addr, &snap_bad).await;
    assert_eq!(
        (
            r.status,
            &r.body["error"]["code"],
            &r.body["error"]["reason"]
        ),
        (
            503,
            &serde_json::json!("unavailable"),
            &serde_json::json!("store_corrupt")
        )
    );
    assert_eq!(metric(addr, "okrhub_store_corrupt_total").await, 3.0);
    assert_eq!(metric(addr, "okrhub_store_corrupt_rooms").await, 2.0);
    let (status, body) = readyz_body(addr).await;
    assert_eq!(
        status, 200,
        "one node's corrupt rooms are every node's: {body}"
    );
    assert!(
        body.contains("STORE CORRUPT: 2 rooms are refused"),
        "{body}"
    );
    // The other room is served.
    let r = common::live::get_room(addr, &good).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["okr"]["objectives"][0]["title"], "Still fine");
    // Nothing was written over the damaged values.
    assert_eq!(
        hget(&redis, &snap, "doc").await,
        flip(&original, b"Durable 1", b'X')
    );

    // An operator restores the snapshot: served again, no longer reported.
    hset(&redis, &snap, "doc", &original).await;
    let r = common::live::get_room(addr, &snap_bad).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["okr"]["objectives"][0]["title"], "Durable 1");
    assert_eq!(metric(addr, "okrhub_store_corrupt_rooms").await, 1.0);
    let (_, body) = readyz_body(addr).await;
    assert!(body.contains("STORE CORRUPT: 1 room is refused"), "{body}");
    server.shutdown().await.unwrap();
}

/// Values written before they carried checksums (format 1: no `okrhub:format`) are framed once
/// when the hub first talks to Redis, and read as before; afterwards a bare value is corrupt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_format_1_redis_is_framed_once_then_bare_values_are_corrupt() {
    let redis = RedisServer::start();
    let (old, later) = (room("legacy-old"), room("legacy-later"));
    let old_id = RoomId::parse(&old).unwrap();
    // As the hub wrote them before: a bare snapshot, a bare log entry after it.
    let client = Doc::new();
    let first = {
        let mut txn = client.transact_mut();
        txn.get_or_insert_map("edits")
            .insert(&mut txn, "a", "Legacy 1");
        txn.encode_update_v1()
    };
    let second = {
        let mut txn = client.transact_mut();
        txn.get_or_insert_map("edits")
            .insert(&mut txn, "b", "Legacy 2");
        txn.encode_update_v1()
    };
    {
        let mut conn = redis.conn().await;
        redis::pipe()
            .cmd("HSET")
            .arg(snap_key(&old_id))
            .arg("doc")
            .arg(first.as_slice())
            .arg("upto")
            .arg(1)
            .ignore()
            .cmd("XADD")
            .arg(log_key(&old_id))
            .arg("2-0")
            .arg("u")
            .arg(second.as_slice())
            .ignore()
            .cmd("SADD")
            .arg(okrhub::store::redis::ROOMS_KEY)
            .arg(&old)
            .ignore()
            .exec_async(&mut conn)
            .await
            .unwrap();
    }
    // The first call of a store migrates: load reads the values as they were.
    let store = RedisStore::open(&redis.url()).unwrap();
    let stored = store.load(&old_id).await.unwrap();
    assert_eq!(stored.snapshot.as_deref(), Some(first.as_slice()));
    assert_eq!(stored.updates, vec![second.clone()]);
    let mut conn = redis.conn().await;
    let format: String = redis::cmd("GET")
        .arg(okrhub::store::redis::FORMAT_KEY)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(format, "2");
    let doc = hget(&redis, &snap_key(&old_id), "doc").await;
    assert_eq!(doc[0], frame::TAG, "the snapshot is framed");
    assert_eq!(
        &doc[frame::HEADER..],
        first.as_slice(),
        "around the same bytes"
    );
    let mut log = xrange(&redis, &log_key(&old_id)).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].0, "2-0");
    let u = u_field(&mut log[0].1);
    assert_eq!(u[0], frame::TAG, "the log entry is framed");
    assert_eq!(&u[frame::HEADER..], second.as_slice());
    // Once: a second store (another start) changes nothing.
    drop(store);
    RedisStore::open(&redis.url())
        .unwrap()
        .load(&old_id)
        .await
        .unwrap();
    assert_eq!(hget(&redis, &snap_key(&old_id), "doc").await, doc);

    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), use_redis(&redis)).await;
    let y = YClient::synced(&sync_url(&server, &old)).await;
    assert_eq!(y.read(|d| count(d, "")), 2, "both legacy values read");

    // From now on, a bare value (as a format-1 hub would write it) is corrupt, not legacy.
    let later_id = RoomId::parse(&later).unwrap();
    hset(&redis, &snap_key(&later_id), "doc", &text_update("bare")).await;
    hset(&redis, &snap_key(&later_id), "upto", b"1").await;
    let z = YClient::connect(&sync_url(&server, &later)).await;
    assert_eq!(z.wait_closed().await.code, Some(1011));
    assert_eq!(
        metric(server.local_addr(), "okrhub_store_corrupt_total").await,
        1.0
    );
    server.shutdown().await.unwrap();
}

/// A Redis holding a newer okrhub's format is not used: every call fails, the hub is not
/// ready and says why, rooms are not loaded — and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_of_a_newer_format_is_refused() {
    let redis = RedisServer::start();
    let mut conn = redis.conn().await;
    redis::cmd("SET")
        .arg(okrhub::store::redis::FORMAT_KEY)
        .arg("3")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), use_redis(&redis)).await;
    let addr = server.local_addr();
    wait_ready(addr, 503).await;
    let (_, body) = readyz_body(addr).await;
    assert!(body.contains("format \"3\""), "{body}");
    let y = YClient::connect(&sync_url(&server, &room("newer"))).await;
    assert_eq!(y.wait_closed().await.code, Some(1011));
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys, vec![okrhub::store::redis::FORMAT_KEY.to_owned()]);
    server.shutdown().await.unwrap();
}

/// Edits made after the Redis came back empty land in a store that has its format key again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_gets_its_format_key_back() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), use_redis(&redis)).await;
    let addr = server.local_addr();
    let r = room("format-back");
    let c = YClient::synced(&sync_url(&server, &r)).await;
    edit(&c, "k1".into());
    c.round_trip().await;
    wait_metric(addr, "okrhub_store_appended_total", |v| v >= 1.0).await;
    // (A first probe may have found this new Redis without its marker while the room was
    // loading, and written it back already.)
    let before = metric(addr, "okrhub_store_writebacks_total").await;
    redis.restart_empty();
    wait_metric(addr, "okrhub_store_writebacks_total", |v| v > before).await;
    let mut conn = redis.conn().await;
    let format: Option<String> = redis::cmd("GET")
        .arg(okrhub::store::redis::FORMAT_KEY)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(format.as_deref(), Some("2"));
    // A new hub on this Redis reads the written-back room.
    server.shutdown().await.unwrap();
    let server = start_server(dir.path(), use_redis(&redis)).await;
    let d = YClient::synced(&sync_url(&server, &r)).await;
    assert_eq!(d.read(edits_count), 1);
    server.shutdown().await.unwrap();
}

fn edits_count(doc: &Doc) -> usize {
    count(doc, "")
}
