//! The live JSON protocol and REST end to end (`proto/PROTOCOL.md`): a real server on port 0,
//! real `/live` WebSocket clients, real yrs y-websocket clients on `/sync`, raw HTTP for REST.
//! Every message the server sends is validated against `proto/schema/` by the harness
//! (`tests/common/live.rs`). No sleeps: every wait is on a frame, with one deadline (`WAIT`).

mod common;

use std::net::SocketAddr;

use common::live::*;
use common::*;
use okrhub::server::RunningServer;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::types::ToJson;
use yrs::{Any, GetString, Map, Out, ReadTxn, Text, Transact, WriteTxn};

struct Env {
    _dir: tempfile::TempDir,
    server: RunningServer,
    room: String,
}

impl Env {
    async fn new(name: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let server = start_server(dir.path(), |_| {}).await;
        Env {
            _dir: dir,
            server,
            room: room(name),
        }
    }
    fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }
    async fn live(&self, user: &str) -> LiveClient {
        LiveClient::join(self.addr(), &self.room, user).await
    }
    fn sync_url(&self, user: &str) -> String {
        format!("{}?user={user}", sync_url(&self.server, &self.room))
    }
    async fn view(&self) -> Value {
        let r = get_room(self.addr(), &self.room).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body
    }
}

/// A cycle in the future: no KR is due or behind pace, so time alone changes nothing.
fn cycle() -> Value {
    json!({"type": "cycle.set", "starts": "2030-01-01", "ends": "2030-03-31"})
}

fn created(ack: &Value) -> String {
    ack["created_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no created_id in {ack}"))
        .to_owned()
}

fn seq(m: &Value) -> u64 {
    m["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {m}"))
}

/// A room with a cycle, one objective and one increase KR; returns (objective, kr).
async fn seed(c: &LiveClient) -> (String, String) {
    c.ok(cycle()).await;
    let o = created(
        &c.ok(json!({"type": "objective.create", "title": "Reach 40% retention in Q1"}))
            .await,
    );
    let kr = created(
        &c.ok(
            json!({"type": "kr.create", "objective": o, "title": "Ship 3 features",
                     "metric": {"kind": "increase", "start": 0, "target": 3, "unit": "features"}}),
        )
        .await,
    );
    (o, kr)
}

fn kr_title_text(doc: &yrs::Doc, kr: &str) -> Option<String> {
    let txn = doc.transact();
    let krs = txn.get_map("key_results")?;
    let Some(Out::YMap(m)) = krs.get(&txn, kr) else {
        return None;
    };
    match m.get(&txn, "title")? {
        Out::YText(t) => Some(t.get_string(&txn)),
        _ => None,
    }
}

/// Types `s` at the end (or the start) of a KR's title, as a Yjs client does.
fn type_into_title(y: &YClient, kr: &str, s: &str, at_end: bool) {
    let kr = kr.to_owned();
    let s = s.to_owned();
    y.edit(move |_, txn| {
        let krs = txn.get_or_insert_map("key_results");
        let Some(Out::YMap(m)) = krs.get(txn, &kr) else {
            panic!("no KR map {kr} in the Yjs doc");
        };
        let Some(Out::YText(title)) = m.get(txn, "title") else {
            panic!("the title of {kr} is not a Y.Text");
        };
        let at = if at_end { title.len(txn) } else { 0 };
        title.insert(txn, at, &s);
    });
}

fn okr_entities(view: &Value) -> Value {
    let o = &view["okr"];
    json!([
        o["cycle"],
        o["objectives"],
        o["key_results"],
        o["checkins"],
        o["comments"]
    ])
}

// ---------------------------------------------------------------------------------------
// Commands and events

#[tokio::test]
async fn commands_round_trip_and_every_client_sees_the_same_events() {
    let env = Env::new("roundtrip").await;
    let ann = env.live("ann").await;
    let bob = env.live("bob").await;
    let snapshot = bob.next().await;
    assert_eq!(ty(&snapshot), "snapshot");
    assert_eq!(snapshot["room"], env.room.as_str());
    assert_eq!(snapshot["okr"]["objectives"], json!([]));

    let mut acks = vec![ann.ok(cycle()).await];
    let ack = ann
        .ok(
            json!({"type": "objective.create", "title": "Reach 40% retention in Q1",
                   "owner": "ann", "commitment": "aspirational"}),
        )
        .await;
    let o = created(&ack);
    acks.push(ack);
    let metrics = [
        json!({"kind": "percent"}),
        json!({"kind": "increase", "start": 10, "target": 50, "unit": "deals"}),
        json!({"kind": "decrease", "start": 10, "target": 2, "unit": "min"}),
        json!({"kind": "stay_above", "threshold": 99.9, "unit": "%"}),
        json!({"kind": "milestone", "milestones": [{"title": "spec 1"}, {"title": "beta 2", "weight": 3}]}),
    ];
    let mut krs = Vec::new();
    for (i, metric) in metrics.iter().enumerate() {
        let ack = ann
            .ok(
                json!({"type": "kr.create", "objective": o, "title": format!("KR {i} to 100%"),
                       "metric": metric, "weight": 1 + i, "cadence_days": 14}),
            )
            .await;
        krs.push(created(&ack));
        acks.push(ack);
    }
    let ack = ann
        .ok(json!({"type": "checkin.create", "key_result": krs[2], "value": 4,
                   "confidence": 6, "comment": "blocked on legal", "mentions": ["bob", "li", "bob"]}))
        .await;
    let checkin = created(&ack);
    acks.push(ack);
    let ack = ann
        .ok(
            json!({"type": "checkin.create", "key_result": krs[4], "milestones": [true, false],
                   "confidence": 8}),
        )
        .await;
    acks.push(ack);
    let ack = ann
        .ok(json!({"type": "comment.create", "target": {"objective": o},
                   "text": "@bob can you take the legal part?", "mentions": ["bob"]}))
        .await;
    let comment = created(&ack);
    acks.push(ack);
    let ack = bob
        .ok(
            json!({"type": "comment.create", "target": {"objective": o}, "reply_to": comment,
                   "text": "yes, @ann", "mentions": ["ann"]}),
        )
        .await;
    let reply = created(&ack);
    acks.push(ack);

    let seqs: Vec<u64> = acks.iter().map(seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "acks' seqs increase: {seqs:?}"
    );

    // Ann saw each command's events before its ack; here they are, in order.
    let events = ann.events();
    let of = |t: &str| -> Vec<&Value> { events.iter().filter(|e| ty(e) == t).collect() };
    assert_eq!(of("cycle.updated").len(), 1);
    assert_eq!(of("cycle.updated")[0]["cycle"]["starts"], "2030-01-01");
    let objective = of("objective.created");
    assert_eq!(objective.len(), 1);
    assert_eq!(objective[0]["objective"]["id"], o.as_str());
    assert_eq!(
        objective[0]["objective"]["title"],
        "Reach 40% retention in Q1"
    );
    assert_eq!(objective[0]["objective"]["commitment"], "aspirational");
    assert_eq!(objective[0]["by"], "ann");
    assert_eq!(objective[0]["seq"], acks[1]["seq"]);
    let created_krs = of("kr.created");
    let kinds: Vec<&str> = created_krs
        .iter()
        .map(|e| e["key_result"]["metric"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["percent", "increase", "decrease", "stay_above", "milestone"]
    );
    for (i, e) in created_krs.iter().enumerate() {
        assert_eq!(e["key_result"]["id"], krs[i].as_str());
        assert_eq!(e["key_result"]["objective"], o.as_str());
        assert_eq!(e["key_result"]["weight"], json!((1 + i) as f64));
        assert_eq!(
            e["seq"],
            acks[2 + i]["seq"],
            "kr.created {i} at its ack's seq"
        );
    }
    assert_eq!(created_krs[1]["key_result"]["metric"]["unit"], "deals");
    let checkins = of("checkin.created");
    assert_eq!(checkins.len(), 2);
    assert_eq!(checkins[0]["checkin"]["id"], checkin.as_str());
    assert_eq!(checkins[0]["checkin"]["author"], "ann");
    assert_eq!(checkins[0]["checkin"]["value"], json!(4.0));
    assert_eq!(checkins[0]["checkin"]["confidence"], 6);
    assert_eq!(checkins[0]["checkin"]["comment"], "blocked on legal");
    assert_eq!(checkins[0]["checkin"]["mentions"], json!(["bob", "li"]));
    assert_eq!(checkins[1]["checkin"]["milestones"], json!([true, false]));
    // A check-in moves its KR: decrease 10 → 2, at 4 → 75 %.
    let moved = events
        .iter()
        .find(|e| ty(e) == "kr.updated" && e["key_result"] == krs[2].as_str())
        .expect("kr.updated for the checked-in KR");
    assert_eq!(moved["fields"]["progress"], json!(75.0));
    assert_eq!(moved["fields"]["status"], "at_risk");
    assert!(
        moved["fields"].get("title").is_none(),
        "only what changed: {moved}"
    );
    let comments = of("comment.created");
    assert_eq!(comments.len(), 2);
    assert_eq!(comments[0]["comment"]["id"], comment.as_str());
    assert_eq!(comments[0]["comment"]["target"], json!({"objective": o}));
    assert_eq!(comments[1]["comment"]["id"], reply.as_str());
    assert_eq!(comments[1]["comment"]["reply_to"], comment.as_str());
    assert_eq!(comments[1]["comment"]["author"], "bob");
    assert_eq!(comments[1]["by"], "bob");

    let mentions: Vec<Value> = of("mention")
        .iter()
        .map(|m| json!([m["user"], m["author"], m["source"], m["target"]]))
        .collect();
    assert_eq!(
        mentions,
        vec![
            json!(["bob", "ann", {"checkin": checkin}, {"key_result": krs[2]}]),
            json!(["li", "ann", {"checkin": checkin}, {"key_result": krs[2]}]),
            json!(["bob", "ann", {"comment": comment}, {"objective": o}]),
            json!(["ann", "bob", {"comment": reply}, {"objective": o}]),
        ]
    );
    for m in of("mention") {
        assert_eq!(m["by"], m["author"], "a command's author is its actor: {m}");
        assert!(m["mentioned_at"].as_i64().is_some(), "{m}");
    }
    // Each mention directly follows what it was made in.
    let order: Vec<&str> = events
        .iter()
        .map(ty)
        .filter(|t| matches!(*t, "checkin.created" | "comment.created" | "mention"))
        .collect();
    assert_eq!(
        order,
        [
            "checkin.created",
            "mention",
            "mention",
            "checkin.created",
            "comment.created",
            "mention",
            "comment.created",
            "mention"
        ]
    );
    // Event seqs never go down.
    let event_seqs: Vec<u64> = events.iter().map(seq).collect();
    assert!(
        event_seqs.windows(2).all(|w| w[0] <= w[1]),
        "{event_seqs:?}"
    );

    // Bob sees exactly the same events in the same order (the very same frames).
    bob.wait_for("bob has every event ann saw", |f| {
        f.iter().filter(|m| is_event(m)).count() >= events.len()
    })
    .await;
    assert_eq!(bob.events()[..events.len()], events[..]);

    // And REST reads the same model.
    let view = env.view().await;
    assert_eq!(seq(&view), *seqs.last().unwrap());
    assert_eq!(view["okr"]["key_results"].as_array().unwrap().len(), 5);
    assert_eq!(view["okr"]["comments"].as_array().unwrap().len(), 2);
    env.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn updates_archives_reorders_and_alignment_produce_events() {
    let env = Env::new("lifecycle").await;
    let ann = env.live("ann").await;
    let (o, kr) = seed(&ann).await;
    let o2 = created(
        &ann.ok(json!({"type": "objective.create", "title": "Cut churn to 5%"}))
            .await,
    );
    ann.drain();

    ann.ok(json!({"type": "objective.update", "objective": o, "title": "Reach 45% retention"}))
        .await;
    let e = ann.next_event("objective.updated").await;
    assert_eq!(e["objective"], o.as_str());
    assert_eq!(e["fields"]["title"], "Reach 45% retention");
    assert!(e["changed"].as_array().unwrap().contains(&json!("title")));

    ann.ok(json!({"type": "kr.update", "key_result": kr,
                  "metric": {"kind": "increase", "start": 0, "target": 5}, "why": "more ambitious"}))
        .await;
    let e = ann.next_event("kr.updated").await;
    let changed = e["changed"].as_array().unwrap();
    assert!(changed.contains(&json!("metric")), "{e}");
    assert!(changed.contains(&json!("revisions")), "{e}");
    assert_eq!(e["fields"]["revisions"][0]["why"], "more ambitious");

    ann.ok(json!({"type": "objective.align", "objective": o2, "add": [{"objective": o}]}))
        .await;
    let e = ann.next_event("objective.updated").await;
    assert_eq!(e["fields"]["aligned_to"], json!([{"objective": o}]));

    ann.ok(json!({"type": "objective.reorder", "objective": o2, "index": 0}))
        .await;
    ann.drain();
    let view = env.view().await;
    assert_eq!(view["okr"]["objectives"][0]["id"], o2.as_str());

    ann.ok(json!({"type": "kr.archive", "key_result": kr}))
        .await;
    let e = ann.next_event("kr.archived").await;
    assert_eq!(e["key_result"], kr.as_str());
    assert_eq!(e["fields"]["archived"], true);
    ann.ok(json!({"type": "objective.archive", "objective": o2}))
        .await;
    let e = ann.next_event("objective.archived").await;
    assert_eq!(e["objective"], o2.as_str());
    assert_eq!(e["fields"]["archived"], true);
    env.server.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Across the two protocols

#[tokio::test]
async fn a_yjs_title_edit_is_a_kr_updated_event_by_the_sync_user() {
    let env = Env::new("yjs2live").await;
    let ann = env.live("ann").await;
    let (_, kr) = seed(&ann).await;
    ann.drain();

    let y = YClient::synced(&env.sync_url("bob")).await;
    assert_eq!(
        y.read(|d| kr_title_text(d, &kr)).as_deref(),
        Some("Ship 3 features")
    );
    type_into_title(&y, &kr, " by May", true);

    let e = ann.next_event("kr.updated").await;
    assert_eq!(e["key_result"], kr.as_str());
    assert_eq!(e["fields"]["title"], "Ship 3 features by May");
    assert!(e["changed"].as_array().unwrap().contains(&json!("title")));
    assert_eq!(e["by"], "bob", "the /sync connection's ?user= acts");
    assert!(seq(&e) > 0);
    // The REST view agrees and is at that seq.
    let view = env.view().await;
    assert_eq!(seq(&view), seq(&e));
    env.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_json_checkin_is_visible_in_the_yjs_doc() {
    let env = Env::new("live2yjs").await;
    let ann = env.live("ann").await;
    let (_, kr) = seed(&ann).await;
    let y = YClient::synced(&env.sync_url("bob")).await;

    let ack = ann
        .ok(
            json!({"type": "checkin.create", "key_result": kr, "value": 2, "confidence": 7,
                   "comment": "two shipped", "mentions": ["bob"]}),
        )
        .await;
    let id = created(&ack);
    y.wait_for("the check-in in the Yjs doc", |v| {
        let txn = v.doc().transact();
        txn.get_map("checkins")
            .is_some_and(|m| m.get(&txn, &id).is_some())
    })
    .await;
    let entry = y.read(|d| {
        let txn = d.transact();
        let m = txn.get_map("checkins").unwrap();
        m.get(&txn, &id).unwrap().to_json(&txn)
    });
    let Any::Map(fields) = entry else {
        panic!("a check-in is a plain object: {entry:?}")
    };
    assert_eq!(fields["key_result"], Any::from(kr.as_str()));
    assert_eq!(fields["author"], Any::from("ann"));
    assert_eq!(fields["value"], Any::from(2.0));
    assert_eq!(fields["confidence"], Any::from(7.0));
    assert_eq!(fields["comment"], Any::from("two shipped"));
    env.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn concurrent_yjs_title_edits_keep_both_and_live_shows_the_merge() {
    let env = Env::new("concurrent").await;
    let ann = env.live("ann").await;
    let (_, kr) = seed(&ann).await;
    let a = YClient::synced(&env.sync_url("amy")).await;
    let b = YClient::synced(&env.sync_url("ben")).await;

    for _ in 0..10 {
        type_into_title(&a, &kr, "x", false);
        type_into_title(&b, &kr, "y", true);
    }
    let merged = |t: &str| {
        t.matches('x').count() == 10 && t.matches('y').count() == 10 && t.contains("Ship 3")
    };
    a.wait_for("a has both", |v| {
        kr_title_text(v.doc(), &kr).is_some_and(|t| merged(&t))
    })
    .await;
    b.wait_for("b has both", |v| {
        kr_title_text(v.doc(), &kr).is_some_and(|t| merged(&t))
    })
    .await;
    let title = a.read(|d| kr_title_text(d, &kr)).unwrap();
    assert_eq!(Some(&title), b.read(|d| kr_title_text(d, &kr)).as_ref());
    let e = ann
        .next_where("kr.updated with the merged title", |m| {
            ty(m) == "kr.updated" && m["fields"]["title"].as_str().is_some_and(merged)
        })
        .await;
    assert_eq!(e["fields"]["title"], title.as_str());
    let view = env.view().await;
    let krs = view["okr"]["key_results"].as_array().unwrap();
    assert_eq!(krs[0]["title"], title.as_str());
    env.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn garbage_from_a_yjs_client_is_reported_and_the_room_keeps_serving() {
    let env = Env::new("garbage").await;
    let ann = env.live("ann").await;
    let (o, kr) = seed(&ann).await;
    let y = YClient::synced(&env.sync_url("mallory")).await;
    let kr2 = kr.clone();
    y.edit(move |_, txn| {
        let krs = txn.get_or_insert_map("key_results");
        krs.insert(txn, "kr-bad", "not a map");
        if let Some(Out::YMap(m)) = krs.get(txn, &kr2) {
            m.insert(txn, "weight", "heavy");
        }
        let objectives = txn.get_or_insert_map("objectives");
        objectives.insert(txn, "o-bad", 42);
        txn.get_or_insert_map("cycle").insert(txn, "starts", true);
    });
    // Query-awareness round trip: the server has applied the edit once it answers.
    y.round_trip().await;

    let view = env.view().await;
    let problems: Vec<String> = view["okr"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap().to_owned())
        .collect();
    for path in [
        "key_results/kr-bad".to_owned(),
        format!("key_results/{kr}/weight"),
        "objectives/o-bad".to_owned(),
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(&path)),
            "{path} in problems {problems:?}"
        );
    }
    // The good entries are still there; a new client's snapshot reports the same problems.
    assert_eq!(view["okr"]["objectives"][0]["id"], o.as_str());
    assert_eq!(view["okr"]["key_results"][0]["id"], kr.as_str());
    let carl = env.live("carl").await;
    let snap = carl.next().await;
    assert_eq!(snap["okr"]["problems"], view["okr"]["problems"]);
    // Commands still work, and a skipped entry is not_found for commands.
    ann.ok(json!({"type": "checkin.create", "key_result": kr, "value": 1, "confidence": 5}))
        .await;
    let e = ann
        .refused(
            json!({"type": "checkin.create", "key_result": "kr-bad", "value": 1, "confidence": 5}),
        )
        .await;
    assert_eq!(e["code"], "not_found");
    assert!(ann.closed().is_none() && carl.closed().is_none() && y.closed().is_none());

    // A check-in is append-only, so one that cannot be read could never be mended: it is
    // refused (undone, the connection closed), not kept as a problem.
    let z = YClient::synced(&env.sync_url("mallory")).await;
    let kr3 = kr.clone();
    z.edit(move |_, txn| {
        let now = okrhub::clock::now_millis();
        txn.get_or_insert_map("checkins").insert(
            txn,
            "ci-bad",
            yrs::any!({"key_result": kr3.as_str(), "author": "mallory", "at": now, "value": "lots", "confidence": 99}),
        );
    });
    let closed = z.wait_closed().await;
    assert_eq!(closed.code, Some(1008), "{closed:?}");
    assert!(closed.reason.contains("ci-bad"), "{closed:?}");
    let view = env.view().await;
    assert!(!view["okr"].to_string().contains("ci-bad"), "{view}");
    assert!(ann.closed().is_none() && carl.closed().is_none() && y.closed().is_none());
    env.server.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Errors

#[tokio::test]
async fn bad_messages_are_answered_and_the_connection_stays() {
    let env = Env::new("badmsg").await;
    let ann = env.live("ann").await;
    ann.drain();

    ann.send_text("{not json");
    let e = ann.next_error().await;
    assert_eq!(e["code"], "bad_request");
    assert_eq!(e["id"], Value::Null);

    ann.send_text(r#"{"id": "u1", "type": "objective.explode"}"#);
    let e = ann.next_error().await;
    assert_eq!(e["code"], "bad_request");
    assert_eq!(e["id"], "u1", "the id is echoed when it can be read");

    ann.send_text(r#"{"id": "m1", "type": "objective.create"}"#);
    let e = ann.next_error().await;
    assert_eq!(e["code"], "bad_request");
    assert_eq!(e["id"], "m1");
    assert!(
        e["message"].as_str().unwrap().contains("title"),
        "names the missing field: {e}"
    );

    ann.send_text(r#"{"type": "cycle.set", "starts": "2030-01-01", "ends": "2030-03-31"}"#);
    let e = ann.next_error().await;
    assert_eq!(e["code"], "bad_request", "a command needs an id: {e}");

    ann.send_text(json!({"id": "", "type": "objective.create", "title": "x"}).to_string());
    let e = ann.next_error().await;
    assert_eq!(e["code"], "bad_request");
    assert_eq!(e["field"], "id");
    ann.send_text(
        json!({"id": "x".repeat(65), "type": "objective.create", "title": "x"}).to_string(),
    );
    let e = ann.next_error().await;
    assert_eq!(e["field"], "id");

    ann.send_text(r#"{"id": "w1", "type": "checkin.create", "key_result": 7, "confidence": 1}"#);
    let e = ann.next_error().await;
    assert_eq!(
        (&e["code"], &e["id"]),
        (&json!("bad_request"), &json!("w1"))
    );

    // Nothing changed, and the connection still works.
    let view = env.view().await;
    assert_eq!(seq(&view), 0);
    ann.ok(cycle()).await;
    assert!(ann.closed().is_none());
    env.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_command_error_code_is_reachable_and_changes_nothing() {
    let env = Env::new("errors").await;
    let ann = env.live("ann").await;
    let (o, kr) = seed(&ann).await;
    let o2 = created(
        &ann.ok(
            json!({"type": "objective.create", "title": "Cut churn to 5%",
                       "aligned_to": [{"objective": o}]}),
        )
        .await,
    );
    let archived = created(
        &ann.ok(json!({"type": "objective.create", "title": "Old 1"}))
            .await,
    );
    ann.ok(json!({"type": "objective.archive", "objective": archived}))
        .await;
    // A parent `o` already has: an error must name the command's field, not a merged index.
    ann.ok(json!({"type": "objective.align", "objective": o,
                  "add": [{"room": "acme.all.2026-Q3", "objective": "o-ceo"}]}))
        .await;
    ann.drain();

    let long = "x".repeat(201);
    let many: Vec<String> = (0..21).map(|i| format!("u{i}")).collect();
    let cases = [
        (
            json!({"type": "kr.create", "objective": "o-nope", "title": "t 1", "metric": {"kind": "percent"}}),
            "not_found",
            "objective",
        ),
        (
            json!({"type": "comment.create", "target": {"objective": o}, "text": "hi", "reply_to": "cm-nope"}),
            "not_found",
            "reply_to",
        ),
        (
            json!({"type": "kr.create", "objective": archived, "title": "t 1", "metric": {"kind": "percent"}}),
            "archived",
            "objective",
        ),
        (
            json!({"type": "checkin.create", "key_result": kr, "value": 1, "confidence": 11}),
            "out_of_range",
            "confidence",
        ),
        (
            json!({"type": "kr.update", "key_result": kr, "weight": 1001}),
            "out_of_range",
            "weight",
        ),
        (
            json!({"type": "objective.align", "objective": o, "add": [{"objective": o2}]}),
            "alignment_cycle",
            "add[0]",
        ),
        (
            json!({"type": "objective.create", "title": long}),
            "too_long",
            "title",
        ),
        (
            json!({"type": "kr.create", "objective": o, "title": "t 1",
                "metric": {"kind": "decrease", "start": 2, "target": 10}}),
            "invalid_value",
            "metric.target",
        ),
        (
            json!({"type": "objective.create", "title": "   "}),
            "invalid_value",
            "title",
        ),
        (
            json!({"type": "kr.create", "objective": o, "title": "t 1", "metric": {"kind": "increase", "start": 0}}),
            "missing_field",
            "metric.target",
        ),
        (
            json!({"type": "checkin.create", "key_result": kr, "value": 1, "confidence": 5, "mentions": many}),
            "too_many",
            "mentions",
        ),
        (
            json!({"type": "objective.update", "objective": o}),
            "empty_update",
            "",
        ),
    ];
    let before = env.view().await;
    for (command, code, field) in cases {
        let e = ann.refused(command.clone()).await;
        assert_eq!(e["code"], code, "{command} → {e}");
        if field.is_empty() {
            continue;
        }
        assert_eq!(e["field"], field, "{command} → {e}");
        assert!(!e["message"].as_str().unwrap().is_empty());
    }
    // A refused command changes nothing: same seq, same entities, no event.
    let after = env.view().await;
    assert_eq!(seq(&after), seq(&before));
    assert_eq!(okr_entities(&after), okr_entities(&before));
    let events: Vec<Value> = ann.drain().into_iter().filter(is_event).collect();
    assert_eq!(
        events,
        Vec::<Value>::new(),
        "refused commands cause no events"
    );
    env.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn live_close_codes() {
    let env = Env::new("close").await;
    let addr = env.addr();

    // Who acts is settled before the upgrade: without a user (or with an invalid one) there
    // is no WebSocket at all, just a 401.
    for query in ["", "user=a%20b"] {
        match tokio_tungstenite::connect_async(live_url(addr, &env.room, query)).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                assert_eq!(r.status().as_u16(), 401, "{query}")
            }
            other => panic!("{query}: expected a 401, got {:?}", other.map(|_| ())),
        }
    }

    let c = LiveClient::connect(&live_url(addr, "not-a-room", "user=ann"), "ann").await;
    let closed = c.wait_closed().await;
    assert_eq!(closed.code, Some(1008), "{closed:?}");
    assert!(closed.reason.contains("room"), "{closed:?}");

    let c = env.live("ann").await;
    c.send_ws(WsMessage::Binary(vec![0, 0, 1, 0].into()));
    assert_eq!(c.wait_closed().await.code, Some(1003));

    let c = env.live("ann").await;
    let big = json!({"id": "big", "type": "objective.create", "title": "x".repeat(300 * 1024)});
    c.send_text(big.to_string());
    assert_eq!(c.wait_closed().await.code, Some(1009));

    // The room is fine afterwards.
    let c = env.live("ann").await;
    c.ok(cycle()).await;
    env.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn rest_status_codes_and_error_bodies() {
    let env = Env::new("rest-errors").await;
    let addr = env.addr();
    let room = env.room.clone();
    let post = |user: Option<&'static str>, body: Value| {
        let room = room.clone();
        async move { post_command(addr, &room, user, &body.to_string()).await }
    };
    let r = post(Some("ann"), cycle()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let o = created(
        &post(
            Some("ann"),
            json!({"type": "objective.create", "title": "Grow 2x"}),
        )
        .await
        .body,
    );

    let r = post_command(addr, &room, Some("ann"), "{nope").await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (400, &json!("bad_request"))
    );
    let r = post(Some("ann"), json!({"type": "objective.fly"})).await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (400, &json!("bad_request"))
    );
    let r = post_command(addr, "nope", Some("ann"), &cycle().to_string()).await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (400, &json!("invalid_room"))
    );
    let r = post(None, cycle()).await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (401, &json!("unauthenticated"))
    );
    assert_eq!(r.body["error"]["field"], "user");
    let r = post(Some("a%20b"), cycle()).await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (401, &json!("unauthenticated"))
    );
    assert_eq!(r.body["error"]["field"], "user");
    let r = post(
        Some("ann"),
        json!({"type": "kr.create", "objective": "o-nope", "title": "t 1",
                                     "metric": {"kind": "percent"}}),
    )
    .await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (404, &json!("not_found"))
    );
    assert_eq!(r.body["error"]["field"], "objective");
    post(
        Some("ann"),
        json!({"type": "objective.archive", "objective": o}),
    )
    .await;
    let r = post(
        Some("ann"),
        json!({"type": "objective.update", "objective": o, "title": "t"}),
    )
    .await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (409, &json!("archived"))
    );
    let r = post(
        Some("ann"),
        json!({"type": "objective.create", "title": "x".repeat(201)}),
    )
    .await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (422, &json!("too_long"))
    );
    let r = kr_history(addr, &room, "kr-nope").await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (404, &json!("not_found"))
    );
    let r = get_room(addr, "nope").await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (400, &json!("invalid_room"))
    );
    env.server.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Resuming

#[tokio::test]
async fn since_within_history_resumes_with_exactly_the_missed_events() {
    let env = Env::new("resume").await;
    let ann = env.live("ann").await;
    let (o, kr) = seed(&ann).await;
    let mark = seq(&env.view().await);
    ann.ok(json!({"type": "checkin.create", "key_result": kr, "value": 1, "confidence": 8}))
        .await;
    ann.ok(json!({"type": "comment.create", "target": {"objective": o}, "text": "nice", "mentions": ["bob"]}))
        .await;
    let last = seq(&env.view().await);
    let missed: Vec<Value> = ann.events().into_iter().filter(|e| seq(e) > mark).collect();
    assert!(missed.len() >= 3, "{missed:?}");

    let bob = LiveClient::connect(
        &live_url(env.addr(), &env.room, &format!("user=bob&since={mark}")),
        "bob",
    )
    .await;
    let first = bob.next().await;
    assert_eq!(
        first,
        json!({"type": "resumed", "from": mark, "seq": last,
               "present": [{"user": "ann", "via": "live"}]})
    );
    // Then exactly the missed events, then bob's own presence, nothing else.
    let mut got = Vec::new();
    while got.len() < missed.len() {
        got.push(bob.next().await);
    }
    assert_eq!(got, missed);
    let next = bob.next().await;
    assert_eq!(ty(&next), "presence", "{next}");
    assert_eq!(next["user"], "bob");

    // Up to date: resumed with nothing to replay.
    let carl = LiveClient::connect(
        &live_url(env.addr(), &env.room, &format!("user=carl&since={last}")),
        "carl",
    )
    .await;
    // Who is here comes with the resume: presence changes are not replayed.
    assert_eq!(
        carl.next().await,
        json!({"type": "resumed", "from": last, "seq": last,
               "present": [{"user": "ann", "via": "live"}, {"user": "bob", "via": "live"}]})
    );
    assert_eq!(ty(&carl.next().await), "presence");

    // From the future: a snapshot.
    let dan = LiveClient::connect(
        &live_url(env.addr(), &env.room, "user=dan&since=18446744073709551615"),
        "dan",
    )
    .await;
    let snap = dan.next().await;
    assert_eq!(ty(&snap), "snapshot");
    assert_eq!(seq(&snap), last);
    env.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn since_from_before_a_restart_gets_a_snapshot_and_acked_changes_survive() {
    let dir = tempfile::tempdir().unwrap();
    let room = room("restart");
    let server = start_server(dir.path(), |_| {}).await;
    let ann = LiveClient::join(server.local_addr(), &room, "ann").await;
    let (_, kr) = seed(&ann).await;
    let mark = seq(&ann.frames()[0]) + 1;
    let ack = ann
        .ok(json!({"type": "checkin.create", "key_result": kr, "value": 2, "confidence": 9}))
        .await;
    let checkin = created(&ack);
    drop(ann);
    server.shutdown().await.unwrap();

    let server = start_server(dir.path(), |_| {}).await;
    let bob = LiveClient::connect(
        &live_url(
            server.local_addr(),
            &room,
            &format!("user=bob&since={mark}"),
        ),
        "bob",
    )
    .await;
    let snap = bob.next().await;
    assert_eq!(
        ty(&snap),
        "snapshot",
        "history does not survive a restart: {snap}"
    );
    assert_eq!(seq(&snap), seq(&ack), "the sequence number does");
    assert_eq!(snap["okr"]["checkins"][0]["id"], checkin.as_str());
    assert_eq!(snap["okr"]["key_results"][0]["current"], json!(2.0));
    let view = get_room(server.local_addr(), &room).await;
    assert_eq!(view.body["okr"]["checkins"][0]["id"], checkin.as_str());
    server.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Presence

#[tokio::test]
async fn presence_from_live_connections_and_yjs_awareness() {
    let env = Env::new("presence").await;
    let ann = env.live("ann").await;
    let own = ann.next_event("presence").await;
    assert_eq!(
        (&own["state"], &own["user"], &own["via"]),
        (&json!("joined"), &json!("ann"), &json!("live"))
    );

    let bob = env.live("bob").await;
    let snap = bob.next().await;
    assert_eq!(snap["present"], json!([{"user": "ann", "via": "live"}]));
    let p = ann.next_event("presence").await;
    assert_eq!((&p["state"], &p["user"]), (&json!("joined"), &json!("bob")));
    // A second connection of the same user is no new presence; its leaving is no departure.
    let bob2 = env.live("bob").await;
    bob2.close();
    bob2.wait_closed().await;
    bob.close();
    let p = ann.next_event("presence").await;
    assert_eq!(
        (&p["state"], &p["user"], &p["via"]),
        (&json!("left"), &json!("bob"), &json!("live"))
    );

    let y = YClient::synced(&env.sync_url("li")).await;
    y.set_awareness(json!({"user": {"name": "li", "color": "#f00"}}));
    let p = ann.next_event("presence").await;
    assert_eq!(
        (&p["state"], &p["user"], &p["via"], &p["client"]),
        (
            &json!("joined"),
            &json!("li"),
            &json!("sync"),
            &json!(y.client_id())
        )
    );
    // Moving a cursor is no new presence.
    y.set_awareness(json!({"user": {"name": "li", "color": "#f00"}, "cursor": 3}));
    y.round_trip().await;
    let carl = env.live("carl").await;
    let snap = carl.next().await;
    let users: Vec<&str> = snap["present"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["user"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["ann", "li"]);
    let p = ann.next_event("presence").await;
    assert_eq!(
        (&p["state"], &p["user"]),
        (&json!("joined"), &json!("carl"))
    );

    y.kill();
    let p = ann.next_event("presence").await;
    assert_eq!(
        (&p["state"], &p["user"], &p["via"]),
        (&json!("left"), &json!("li"), &json!("sync"))
    );
    env.server.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// REST

#[tokio::test]
async fn rest_commands_reach_live_clients_and_history_is_a_time_series() {
    let env = Env::new("rest").await;
    let addr = env.addr();
    let ann = env.live("ann").await;
    ann.drain();
    let post = |body: Value| {
        let room = env.room.clone();
        async move {
            let r = post_command(addr, &room, Some("rita"), &body.to_string()).await;
            assert_eq!(r.status, 200, "{body} → {:?}", r.body);
            r.body
        }
    };
    let a1 = post(cycle()).await;
    assert!(a1.get("created_id").is_none(), "{a1}");
    let o = created(&post(json!({"type": "objective.create", "title": "Win 3 logos"})).await);
    let e = ann.next_event("objective.created").await;
    assert_eq!(e["objective"]["id"], o.as_str());
    assert_eq!(e["by"], "rita");
    assert_eq!(
        e["objective"]["owner"], "rita",
        "owner defaults to the acting user"
    );
    let kr = created(
        &post(
            json!({"type": "kr.create", "objective": o, "title": "Sign 3 logos",
                     "metric": {"kind": "increase", "start": 0, "target": 3}}),
        )
        .await,
    );
    let c1 = post(json!({"type": "checkin.create", "key_result": kr, "value": 1, "confidence": 6}))
        .await;
    let c2 = post(
        json!({"type": "checkin.create", "key_result": kr, "value": 2, "confidence": 8,
                         "comment": "second"}),
    )
    .await;
    assert!(seq(&c2) > seq(&c1) && seq(&c1) > seq(&a1));
    let e = ann.next_event("checkin.created").await;
    assert_eq!(e["checkin"]["id"], c1["created_id"]);
    assert_eq!(e["seq"], c1["seq"]);

    let view = env.view().await;
    assert_eq!(seq(&view), seq(&c2));
    assert_eq!(view["room"], env.room.as_str());
    assert_eq!(view["okr"]["key_results"][0]["current"], json!(2.0));
    assert_eq!(view["okr"]["key_results"][0]["confidence"], 8);

    let h = kr_history(addr, &env.room, &kr).await;
    assert_eq!(h.status, 200, "{:?}", h.body);
    assert_eq!(h.body["key_result"], kr.as_str());
    let points = h.body["points"].as_array().unwrap();
    assert_eq!(points.len(), 2, "{points:?}");
    assert_eq!(points[0]["value"], json!(1.0));
    assert_eq!(points[1]["value"], json!(2.0));
    assert!(points[0]["at"].as_i64() <= points[1]["at"].as_i64());
    assert_eq!(points[1]["confidence"], 8);
    env.server.shutdown().await.unwrap();
}
