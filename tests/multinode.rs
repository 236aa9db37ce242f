//! Several hub nodes sharing rooms through one Redis (issue 13): each node a real `okrhub`
//! process on its own loopback port, the clients real yrs and `/live` WebSocket clients, the
//! Redis a real `redis-server` started by the test. The same scenarios run on a 3-master Redis
//! Cluster in `tests/multinode_cluster.rs`.

mod common;

use std::collections::BTreeSet;

use common::live::{live_url, post_command, LiveClient};
use common::process::HubProcess;
use common::redis_cluster::RedisCluster;
use common::redis_server::RedisServer;
use common::{metric, wait_metric, YClient};
use serde_json::{json, Value};
use yrs::updates::decoder::Decode;
use yrs::{Map, ReadTxn, StateVector, Transact, Update, WriteTxn};

/// Where the nodes keep their rooms: the flags every node gets.
pub struct Backend {
    args: Vec<String>,
}

impl Backend {
    fn single(redis: &RedisServer) -> Backend {
        Backend {
            args: vec![
                "--store".into(),
                "redis".into(),
                "--redis-url".into(),
                redis.url(),
            ],
        }
    }

    fn cluster(cluster: &RedisCluster) -> Backend {
        Backend {
            args: vec![
                "--store".into(),
                "redis".into(),
                "--redis-cluster".into(),
                "--redis-url".into(),
                cluster.url_list(),
            ],
        }
    }

    /// Starts a node with the backend's flags and `extra`.
    fn node(&self, extra: &[&str]) -> HubProcess {
        let mut args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        // A fast flush keeps the tests quick; the relay's fast path does not wait for it.
        args.extend_from_slice(&["--flush-interval", "5ms"]);
        args.extend_from_slice(extra);
        HubProcess::start(&args)
    }

    fn nodes(&self, n: usize) -> Vec<HubProcess> {
        (0..n).map(|_| self.node(&[])).collect()
    }
}

fn room(name: &str) -> String {
    format!("acme.{name}.2026-Q3")
}

fn keys(d: &yrs::Doc) -> BTreeSet<String> {
    let txn = d.transact();
    txn.get_map("k")
        .map(|m| m.keys(&txn).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn put(c: &YClient, key: String) {
    c.edit(|_, txn| {
        txn.get_or_insert_map("k").insert(txn, key, true);
    });
}

/// Waits until every client sees exactly `want`.
async fn converge(clients: &[&YClient], want: &BTreeSet<String>) {
    for (i, c) in clients.iter().enumerate() {
        c.wait_for(&format!("client {i} converges"), |v| &keys(v.doc()) == want)
            .await;
    }
}

fn created(ack: &Value) -> String {
    ack["created_id"].as_str().expect("created_id").to_owned()
}

/// Posts a command through node `addr` as ann; returns the ack.
async fn command(addr: std::net::SocketAddr, room: &str, body: Value) -> Value {
    let r = post_command(addr, room, Some("ann"), &body.to_string()).await;
    assert_eq!(r.status, 200, "{body}: {:?}", r.body);
    r.body
}

/// A cycle, an objective and a KR in `room`, through `addr`; returns the KR.
async fn seed(addr: std::net::SocketAddr, room: &str) -> String {
    command(
        addr,
        room,
        json!({"type": "cycle.set", "starts": "2030-01-01", "ends": "2030-03-31"}),
    )
    .await;
    let o = created(
        &command(
            addr,
            room,
            json!({"type": "objective.create", "title": "Q3让用户留存率突破40%"}),
        )
        .await,
    );
    created(
        &command(
            addr,
            room,
            json!({"type": "kr.create", "objective": o, "title": "每周新增500活跃用户",
                   "metric": {"kind": "increase", "start": 0, "target": 500, "unit": "users"}}),
        )
        .await,
    )
}

/// Creates an objective through `addr` and waits until every `/live` client has its last event
/// (the lint: the new objective has no KR): what came before it has arrived too.
async fn barrier(addr: std::net::SocketAddr, room: &str, clients: &[&LiveClient]) {
    let later = command(
        addr,
        room,
        json!({"type": "objective.create", "title": "barrier"}),
    )
    .await["seq"]
        .clone();
    for c in clients {
        c.wait_for("the barrier objective's lint", |ev| {
            ev.iter()
                .any(|e| e["type"] == "lint.changed" && e["seq"] == later)
        })
        .await;
    }
}

fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == t).collect()
}

// ---------------------------------------------------------------------------------------
// The scenarios, on any backend

pub async fn concurrent_edits_converge(b: &Backend) {
    let nodes = b.nodes(3);
    let r = room("converge");
    let mut clients = Vec::new();
    for n in &nodes {
        for _ in 0..2 {
            clients.push(YClient::synced(&n.url(&r)).await);
        }
    }
    let mut want = BTreeSet::new();
    for round in 0..20 {
        for (i, c) in clients.iter().enumerate() {
            let key = format!("c{i}-{round}");
            put(c, key.clone());
            want.insert(key);
        }
    }
    let all: Vec<&YClient> = clients.iter().collect();
    converge(&all, &want).await;
    // A newcomer on each node gets it all in its first sync.
    for n in &nodes {
        let fresh = YClient::synced(&n.url(&r)).await;
        assert_eq!(fresh.read(keys), want);
    }
    // Each node applied the others' updates, and nothing was left unnumbered.
    for n in &nodes {
        assert!(metric(n.addr, "okrhub_relayed_total").await >= 80.0);
        wait_metric(n.addr, "okrhub_relay_pending", |v| v == 0.0).await;
    }
}

pub async fn awareness_crosses_nodes_and_leaves_with_its_client(b: &Backend) {
    let nodes = b.nodes(3);
    let r = room("aware");
    let watcher = YClient::synced(&nodes[2].url(&r)).await;
    let ann = YClient::synced(&nodes[0].url(&r)).await;
    ann.set_awareness(json!({"user": {"name": "ann"}}));
    watcher
        .wait_for("ann's presence reaches node C", |v| {
            v.awareness_names() == ["ann"]
        })
        .await;
    ann.kill();
    watcher
        .wait_for("ann's presence leaves node C with her", |v| {
            v.awareness_names().is_empty()
        })
        .await;

    // A dashboard's presence (`/live`) crosses nodes too.
    let screen = LiveClient::connect(&live_url(nodes[2].addr, &r, "user=screen"), "screen").await;
    let dora = LiveClient::connect(&live_url(nodes[0].addr, &r, "user=dora"), "dora").await;
    let is = |state: &'static str| {
        move |m: &Value| m["type"] == "presence" && m["user"] == "dora" && m["state"] == state
    };
    screen
        .wait_for("dora joins on node C", |f| f.iter().any(is("joined")))
        .await;
    // A node that loads the room later asks who is present: dora and the screen, at once.
    let late = b.node(&[]);
    let newcomer = LiveClient::connect(&live_url(late.addr, &r, "user=eve"), "eve").await;
    newcomer
        .wait_for("the late node knows dora and the screen", |f| {
            let users: BTreeSet<&str> = f
                .iter()
                .filter(|m| m["type"] == "presence" && m["state"] == "joined")
                .filter_map(|m| m["user"].as_str())
                .chain(f.iter().flat_map(|m| {
                    m["present"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|p| p["user"].as_str())
                }))
                .collect();
            users.contains("dora") && users.contains("screen")
        })
        .await;
    dora.close();
    screen
        .wait_for("dora leaves", |f| f.iter().any(is("left")))
        .await;
    assert_eq!(
        screen
            .frames()
            .into_iter()
            .filter(|m| is("joined")(m))
            .count(),
        1,
        "once"
    );
}

pub async fn a_checkin_arrives_once_with_one_seq_everywhere(b: &Backend) {
    let nodes = b.nodes(3);
    let r = room("checkin");
    let kr = seed(nodes[0].addr, &r).await;
    let bob = LiveClient::connect(&live_url(nodes[1].addr, &r, "user=bob"), "bob").await;
    let cai = LiveClient::connect(&live_url(nodes[2].addr, &r, "user=cai"), "cai").await;
    bob.next().await; // snapshot
    cai.next().await;
    let ack = command(
        nodes[0].addr,
        &r,
        json!({"type": "checkin.create", "key_result": kr, "value": 120, "confidence": 3,
               "comment": "@bob 渠道投放延迟", "mentions": ["bob"]}),
    )
    .await;
    let seq = ack["seq"].as_u64().unwrap();
    for c in [&bob, &cai] {
        c.wait_for("the check-in", |ev| {
            ev.iter().any(|e| e["type"] == "checkin.created")
        })
        .await;
    }
    // Everything the check-in caused (a mention, the KR's progress) has arrived when a
    // later command's last event has.
    barrier(nodes[0].addr, &r, &[&bob, &cai]).await;
    let (eb, ec) = (bob.events(), cai.events());
    for events in [&eb, &ec] {
        let checkins = of_type(events, "checkin.created");
        assert_eq!(checkins.len(), 1, "exactly once: {events:?}");
        assert_eq!(checkins[0]["seq"], seq, "the ack's seq");
        assert_eq!(of_type(events, "mention").len(), 1, "{events:?}");
    }
    // The same events, in the same order, under the same seqs, on both nodes.
    assert_eq!(eb, ec);
}

pub async fn since_resumes_on_another_node(b: &Backend) {
    let nodes = b.nodes(3);
    let r = room("resume");
    let kr = seed(nodes[0].addr, &r).await;
    let stay = LiveClient::connect(&live_url(nodes[1].addr, &r, "user=dan"), "dan").await;
    let snapshot = stay.next().await;
    let mark = snapshot["seq"].as_u64().unwrap();
    for (value, confidence) in [(100, 7), (180, 6), (240, 8)] {
        command(
            nodes[0].addr,
            &r,
            json!({"type": "checkin.create", "key_result": kr, "value": value, "confidence": confidence}),
        )
        .await;
    }
    let last = command(
        nodes[0].addr,
        &r,
        json!({"type": "objective.create", "title": "done"}),
    )
    .await["seq"]
        .as_u64()
        .unwrap();
    stay.wait_for("every event up to the last", |ev| {
        ev.iter().any(|e| e["seq"].as_u64() == Some(last))
    })
    .await;
    let missed: Vec<Value> = stay
        .events()
        .into_iter()
        .filter(|e| e["seq"].as_u64().unwrap() > mark)
        .collect();
    assert!(missed.len() >= 4, "{missed:?}");
    // A client that was on node B resumes on node C with what B had given it.
    let moved = LiveClient::connect(
        &live_url(nodes[2].addr, &r, &format!("user=dan&since={mark}")),
        "dan",
    )
    .await;
    let first = moved.next().await;
    assert_eq!(first["type"], "resumed", "{first}");
    assert_eq!(
        (first["from"].as_u64(), first["seq"].as_u64()),
        (Some(mark), Some(last))
    );
    let mut got = Vec::new();
    while got.len() < missed.len() {
        let m = moved.next().await;
        if common::live::is_event(&m) {
            got.push(m);
        }
    }
    assert_eq!(
        got, missed,
        "exactly the missed events, as node B sent them"
    );
}

/// The full state of a client's doc (what a Yjs provider sends when it reconnects).
fn full_state(c: &YClient) -> Vec<u8> {
    c.read(|d| {
        d.transact()
            .encode_state_as_update_v1(&StateVector::default())
    })
}

pub async fn a_killed_node_loses_no_edit_anyone_saw(b: &Backend) {
    let mut nodes = b.nodes(3);
    let r = room("sigkill");
    let on_a = YClient::synced(&nodes[0].url(&r)).await;
    let on_b: Vec<YClient> = {
        let mut v = Vec::new();
        for _ in 0..2 {
            v.push(YClient::synced(&nodes[1].url(&r)).await);
        }
        v
    };
    let on_c = YClient::synced(&nodes[2].url(&r)).await;
    // Everyone types; node B dies in the middle of it.
    for round in 0..30 {
        put(&on_a, format!("a-{round}"));
        for (i, c) in on_b.iter().enumerate() {
            put(c, format!("b{i}-{round}"));
        }
        put(&on_c, format!("c-{round}"));
        if round == 15 {
            // What A's client has seen of B's clients' edits by now must survive.
            let seen_on_a = on_a.read(keys);
            let node_b = nodes.remove(1);
            node_b.sigkill();
            for round in 16..30 {
                put(&on_a, format!("a-{round}"));
                put(&on_c, format!("c-{round}"));
            }
            // B's clients reconnect, to A and to C, and resync their docs as a Yjs provider
            // does (their full state; the server keeps what it lacks).
            let mut moved = Vec::new();
            for (i, old) in on_b.iter().enumerate() {
                let to = &nodes[i % 2];
                let fresh = YClient::synced(&to.url(&r)).await;
                let state = full_state(old);
                fresh.edit(|_, txn| {
                    txn.apply_update(Update::decode_v1(&state).unwrap())
                        .unwrap();
                });
                moved.push(fresh);
            }
            let mut want: BTreeSet<String> = seen_on_a;
            for c in on_b.iter().chain([&on_a, &on_c]) {
                want.extend(c.read(keys));
            }
            let everyone: Vec<&YClient> = moved.iter().chain([&on_a, &on_c]).collect();
            converge(&everyone, &want).await;
            // Nothing anyone typed is missing: 30 rounds of A and C, 16 of each B client.
            assert_eq!(want.len(), 30 + 30 + 2 * 16, "{want:?}");
            // And what the log holds: a node started now serves all of it.
            let late = b.node(&[]);
            let fresh = YClient::synced(&late.url(&r)).await;
            fresh
                .wait_for("the late node's client has everything", |v| {
                    keys(v.doc()) == want
                })
                .await;
            return;
        }
    }
}

pub async fn a_late_node_catches_up_before_it_serves(b: &Backend) {
    let first = b.node(&["--compact-after", "1000000", "--message-rate", "0"]);
    let r = room("late");
    let writer = YClient::synced(&first.url(&r)).await;
    const N: usize = 5000;
    for i in 0..N {
        put(&writer, format!("k{i:05}"));
    }
    writer.round_trip().await;
    wait_metric(first.addr, "okrhub_persist_queue", |v| v == 0.0).await;
    let late = b.node(&[]);
    // The first sync answer from the late node already holds every entry.
    let reader = YClient::synced(&late.url(&r)).await;
    assert_eq!(reader.read(keys).len(), N);
}

pub async fn racing_compactions_leave_a_correct_snapshot_and_log(b: &Backend) {
    // Two nodes holding one room, both compacting every few updates, trimming with no margin.
    let flags = ["--compact-after", "20", "--redis-trim-margin", "0"];
    let nodes = [b.node(&flags), b.node(&flags)];
    let r = room("compact");
    let c0 = YClient::synced(&nodes[0].url(&r)).await;
    let c1 = YClient::synced(&nodes[1].url(&r)).await;
    let mut want = BTreeSet::new();
    for i in 0..400 {
        let c = if i % 2 == 0 { &c0 } else { &c1 };
        let key = format!("k{i:03}");
        put(c, key.clone());
        want.insert(key);
        if i % 50 == 0 {
            c.round_trip().await;
        }
    }
    converge(&[&c0, &c1], &want).await;
    for n in &nodes {
        wait_metric(n.addr, "okrhub_relay_pending", |v| v == 0.0).await;
    }
    // The sweepers (every second) compacted under the lease, whichever node took it.
    common::poll_until("two compactions", || async {
        let mut leases = 0.0;
        for n in &nodes {
            leases += metric(n.addr, "okrhub_compaction_leases_total").await;
        }
        (leases >= 2.0).then_some(())
    })
    .await;
    // What the store holds (snapshot + log), read by a third node, is the whole room.
    let third = b.node(&[]);
    let fresh = YClient::synced(&third.url(&r)).await;
    assert_eq!(fresh.read(keys), want);
}

/// Redis restarts (keeping its data) while two nodes serve a room, then comes back empty: the
/// nodes buffer, resume from what they applied, write the room back, and a node started
/// afterwards serves everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarts_lose_nothing_across_nodes() {
    let mut redis = RedisServer::start();
    let b = Backend::single(&redis);
    let nodes = b.nodes(2);
    let r = room("restart");
    let c0 = YClient::synced(&nodes[0].url(&r)).await;
    let c1 = YClient::synced(&nodes[1].url(&r)).await;
    let mut want = BTreeSet::new();
    let mut typed = 0;
    let mut type_some = |want: &mut BTreeSet<String>| {
        for _ in 0..10 {
            let c = if typed % 2 == 0 { &c0 } else { &c1 };
            let key = format!("k{typed:03}");
            put(c, key.clone());
            want.insert(key);
            typed += 1;
        }
    };
    type_some(&mut want);
    converge(&[&c0, &c1], &want).await;
    redis.restart();
    type_some(&mut want);
    converge(&[&c0, &c1], &want).await;
    for n in &nodes {
        wait_metric(n.addr, "okrhub_relay_pending", |v| v == 0.0).await;
    }
    redis.restart_empty();
    // The first node to notice writes the room back (the second then finds it there).
    let (url, key) = (redis.url(), format!("okrhub:{{{r}}}:seq"));
    common::poll_until("the room is written back", || async {
        let client = redis::Client::open(url.as_str()).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        let seq: Option<u64> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .ok()?;
        (seq >= Some(20)).then_some(())
    })
    .await;
    type_some(&mut want);
    converge(&[&c0, &c1], &want).await;
    // What the store holds now (written back, then logged) is everything.
    let late = b.node(&[]);
    let fresh = YClient::synced(&late.url(&r)).await;
    fresh
        .wait_for("the late node's client has everything", |v| {
            keys(v.doc()) == want
        })
        .await;
}

/// One node loses Redis (its link is cut) while another keeps it: the cut-off node refuses
/// writes (1013) instead of taking edits nobody else can see; its client moves to the other
/// node and resyncs; when the link comes back, what the node had taken is logged too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_loses_redis_refuses_writes_and_its_clients_move() {
    let redis = RedisServer::start();
    let link = common::tcp_link::TcpLink::start(
        redis.url().trim_start_matches("redis://").parse().unwrap(),
    )
    .await;
    let direct = Backend::single(&redis);
    let via_link = Backend {
        args: vec![
            "--store".into(),
            "redis".into(),
            "--redis-url".into(),
            link.url(),
        ],
    };
    let a_node = direct.node(&[]);
    let b_node = via_link.node(&[]);
    let r = room("cut");
    let a = YClient::synced(&a_node.url(&r)).await;
    let b = YClient::synced(&b_node.url(&r)).await;
    put(&a, "a0".into());
    put(&b, "b0".into());
    let both: BTreeSet<String> = ["a0", "b0"].map(String::from).into();
    converge(&[&a, &b], &both).await;

    link.cut();
    // B's client goes on typing, as a person would, until B refuses.
    let mut typed = 0;
    let closed = loop {
        if let Some(closed) = b.closed() {
            break closed;
        }
        assert!(typed < 200, "node B kept taking writes without Redis");
        put(&b, format!("b-cut-{typed}"));
        typed += 1;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(closed.code, Some(1013), "{closed:?}");
    // The client moves to A and resyncs: A gets everything it typed.
    let moved = YClient::synced(&a_node.url(&r)).await;
    let state = full_state(&b);
    moved.edit(|_, txn| {
        txn.apply_update(Update::decode_v1(&state).unwrap())
            .unwrap();
    });
    let want = b.read(keys).union(&a.read(keys)).cloned().collect();
    converge(&[&a, &moved], &want).await;

    // The link comes back: B writes what it had taken, and is ready again.
    link.restore();
    wait_metric(b_node.addr, "okrhub_store_up", |v| v == 1.0).await;
    wait_metric(b_node.addr, "okrhub_persist_queue", |v| v == 0.0).await;
    let late = direct.node(&[]);
    let fresh = YClient::synced(&late.url(&r)).await;
    assert_eq!(fresh.read(keys), want);
}

/// The UTC date `days` days from the epoch, `YYYY-MM-DD` (civil-from-days, H. Hinnant).
fn date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

pub async fn time_moves_once_per_room_across_nodes(b: &Backend) {
    const DAY: i64 = 86_400_000;
    let nodes: Vec<HubProcess> = (0..3).map(|_| b.node(&["--tick-every", "200ms"])).collect();
    let r = room("clock");
    // A cycle from yesterday to tomorrow (UTC), and a KR whose progress is exactly three
    // quarters of what the cycle expects 3 s from now: it falls behind pace then, by time
    // alone, and only a tick can say so.
    let now = okrhub::clock::now_millis();
    let today = now.div_euclid(DAY);
    let (start, end) = ((today - 1) * DAY, (today + 2) * DAY);
    command(
        nodes[0].addr,
        &r,
        json!({"type": "cycle.set", "starts": date(today - 1), "ends": date(today + 1)}),
    )
    .await;
    let o = created(
        &command(
            nodes[0].addr,
            &r,
            json!({"type": "objective.create", "title": "准时"}),
        )
        .await,
    );
    let kr = created(
        &command(
            nodes[0].addr,
            &r,
            json!({"type": "kr.create", "objective": o, "title": "paced",
                   "metric": {"kind": "increase", "start": 0, "target": 1_000_000, "unit": "u"}}),
        )
        .await,
    );
    let flip = now + 3_000;
    let expected = (flip - start) as f64 / (end - start) as f64 * 100.0;
    let value = 0.75 * expected / 100.0 * 1_000_000.0;
    let watchers: Vec<LiveClient> = {
        let mut v = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            let user = format!("w{i}");
            v.push(
                LiveClient::connect(&live_url(n.addr, &r, &format!("user={user}")), &user).await,
            );
        }
        v
    };
    command(
        nodes[1].addr,
        &r,
        json!({"type": "checkin.create", "key_result": kr, "value": value, "confidence": 7}),
    )
    .await;
    let behind = |e: &Value| {
        e["type"] == "kr.updated"
            && e["key_result"] == kr.as_str()
            && e["fields"]["behind_pace"] == true
    };
    for w in &watchers {
        w.wait_for("the KR falls behind pace", |ev| ev.iter().any(behind))
            .await;
    }
    // A barrier: a later command's events come after anything the tick caused.
    barrier(nodes[2].addr, &r, &watchers.iter().collect::<Vec<_>>()).await;
    let seen: Vec<Vec<Value>> = watchers
        .iter()
        .map(|w| w.events().into_iter().filter(|e| behind(e)).collect())
        .collect();
    for s in &seen {
        assert_eq!(s.len(), 1, "once on each node: {s:?}");
    }
    assert!(
        seen.iter().all(|s| s == &seen[0]),
        "the same event, seq and at everywhere: {seen:?}"
    );
    assert!(seen[0][0]["at"].as_i64().unwrap() >= flip, "{:?}", seen[0]);
    // One node writes the room's ticks: the holder of its clock lease.
    let mut writers = 0;
    for n in &nodes {
        writers += usize::from(metric(n.addr, "okrhub_ticks_written_total").await > 0.0);
    }
    assert_eq!(writers, 1, "one clock per room");
}

// ---------------------------------------------------------------------------------------
// Every scenario on one Redis and on a 3-master Redis Cluster

/// One test per scenario in module `$module`, each on a fresh `$start` turned into a backend by
/// `$backend`.
macro_rules! scenarios {
    ($module:ident, $start:expr, $backend:path) => {
        mod $module {
            use super::*;
            scenarios!(@each $start, $backend;
                concurrent_edits_converge,
                awareness_crosses_nodes_and_leaves_with_its_client,
                a_checkin_arrives_once_with_one_seq_everywhere,
                since_resumes_on_another_node,
                a_killed_node_loses_no_edit_anyone_saw,
                a_late_node_catches_up_before_it_serves,
                racing_compactions_leave_a_correct_snapshot_and_log,
                time_moves_once_per_room_across_nodes,
            );
        }
    };
    (@each $start:expr, $backend:path; $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let redis = $start;
            super::$name(&$backend(&redis)).await;
        }
    )*};
}

scenarios!(one_redis, RedisServer::start(), Backend::single);
scenarios!(redis_cluster, RedisCluster::start(), Backend::cluster);
