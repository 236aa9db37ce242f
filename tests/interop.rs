//! Interop with the stock JS client: `yjs` + `y-websocket` in Node.js (tests/interop/peer.mjs)
//! and yrs clients co-edit one room through a real server; a JS client typing into a KR title
//! (tests/interop/live-peer.mjs) is seen as `kr.updated` events on `/live`.
//!
//! Needs Node.js >= 18 on PATH and `npm ci --prefix tests/interop`; without them the test
//! fails (it never skips). The JS peer's driver is `tests/common/js.rs`.

mod common;

use common::js::{interop_dir, js_map, js_names, js_title, require_node, JsPeer, SETUP_HINT};
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use yrs::{GetString, Map, ReadTxn, Text, Transact, WriteTxn};

/// Map 'interop' as key -> string value.
fn map_of(doc: &yrs::Doc) -> BTreeMap<String, String> {
    let txn = doc.transact();
    match txn.get_map("interop") {
        Some(m) => m
            .iter(&txn)
            .map(|(k, v)| (k.to_owned(), v.to_string(&txn)))
            .collect(),
        None => BTreeMap::new(),
    }
}

fn title_of(doc: &yrs::Doc) -> String {
    let txn = doc.transact();
    txn.get_text("title")
        .map(|t| t.get_string(&txn))
        .unwrap_or_default()
}

/// Waits until `c` sees exactly `expected` as awareness names; on timeout, says what it saw.
async fn wait_names(c: &YClient, who: &str, expected: &[&str]) {
    let what = format!("{who} sees exactly {expected:?} present");
    // Shorter than the harness's own WAIT so this message, with the actual names, wins.
    let limit = WAIT - std::time::Duration::from_secs(1);
    let waited = tokio::time::timeout(
        limit,
        c.wait_for(&what, |v| v.awareness_names() == expected),
    )
    .await;
    if waited.is_err() {
        panic!("timed out: {what}; it sees {:?}", c.awareness_names());
    }
}

#[tokio::test]
async fn js_and_yrs_clients_co_edit_and_see_each_other() {
    require_node();
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let room = room("interop");
    let url = sync_url(&server, &room);
    // y-websocket appends `/{room}` to the base URL itself.
    let base = format!("ws://{}/sync", server.local_addr());

    // The yrs side writes first.
    let y = YClient::synced(&url).await;
    y.set_awareness(serde_json::json!({"user": {"name": "yrs"}}));
    y.edit(|_, txn| {
        txn.get_or_insert_map("interop")
            .insert(txn, "yrs", "hello from yrs");
        txn.get_or_insert_text("title").insert(txn, 0, "yrs;");
    });
    y.round_trip().await;

    // The JS peer syncs, writes, and reports once it sees the yrs client's key and presence.
    let mut js = JsPeer::spawn(&base, &room, "js", &["yrs"]);
    let ready = js.line("ready line").await;
    assert_eq!(ready["ready"], true, "{ready}");
    let map = js_map(&ready);
    assert_eq!(map.get("js").map(String::as_str), Some("hello from js"));
    assert_eq!(map.get("yrs").map(String::as_str), Some("hello from yrs"));
    let names = js_names(&ready);
    assert!(
        names.iter().any(|n| n == "js") && names.iter().any(|n| n == "yrs"),
        "JS awareness: {names:?}"
    );

    // The yrs client sees the JS edits and presence.
    y.wait_for("yrs sees js's key, title and presence", |v| {
        let t = title_of(v.doc());
        map_of(v.doc()).get("js").map(String::as_str) == Some("hello from js")
            && t.contains("js;")
            && t.contains("yrs;")
            && v.awareness_names().iter().any(|n| n == "js")
    })
    .await;
    let y_title = y.read(title_of);
    let y_map = y.read(map_of);
    let dump = js.dump().await;
    assert_eq!(js_title(&dump), y_title, "both sides see the same title");
    assert_eq!(js_map(&dump), y_map, "both sides see the same map");
    assert_eq!(y_map.len(), 2, "{y_map:?}");
    assert_eq!(y_title.len(), "js;yrs;".len(), "{y_title:?}");

    // All three converge: a late yrs client gets the same state from the server's copy.
    let z = YClient::synced(&url).await;
    assert_eq!(z.read(map_of), y_map, "late joiner's map");
    assert_eq!(z.read(title_of), y_title, "late joiner's title");
    wait_names(&z, "late yrs joiner", &["js", "yrs"]).await;

    // A JS edit made after the handshake reaches the yrs clients.
    js.send("set from-js value with spaces").await;
    let ok = js.line("set answer").await;
    assert_eq!(ok, serde_json::json!({"ok": true}));
    for (who, c) in [("y", &y), ("z", &z)] {
        c.wait_for(&format!("{who} sees from-js"), |v| {
            map_of(v.doc()).get("from-js").map(String::as_str) == Some("value with spaces")
        })
        .await;
    }

    // A second JS peer joining late gets everything from the server too.
    let mut js2 = JsPeer::spawn(&base, &room, "js2", &["js", "yrs"]);
    let ready2 = js2.line("js2 ready line").await;
    let map2 = js_map(&ready2);
    for key in ["js", "yrs", "from-js", "js2"] {
        assert!(map2.contains_key(key), "js2 lacks {key}: {map2:?}");
    }
    let t2 = js_title(&ready2);
    assert!(
        t2.contains("js;") && t2.contains("yrs;") && t2.contains("js2;"),
        "js2 title: {t2:?}"
    );
    wait_names(&y, "y", &["js", "js2", "yrs"]).await;
    wait_names(&z, "z", &["js", "js2", "yrs"]).await;

    // SIGKILL: the JS peer sends no null awareness state; the server must drop its state
    // when the socket closes, and only its own: the stock client echoes every awareness
    // change it applies (other clients' states too), which must not make them "its" states.
    js.child.start_kill().unwrap();
    js.wait_exit().await;
    wait_names(&y, "y after js was killed", &["js2", "yrs"]).await;
    wait_names(&z, "z after js was killed", &["js2", "yrs"]).await;
    let fresh = YClient::synced(&url).await;
    wait_names(
        &fresh,
        "a fresh yrs client after js was killed",
        &["js2", "yrs"],
    )
    .await;

    // `quit`: provider.destroy() sends a null state and closes; js2 disappears too.
    js2.send("quit").await;
    assert_eq!(js2.wait_exit().await, Some(0), "js2 exits cleanly");
    wait_names(&y, "y after js2 quit", &["yrs"]).await;
    wait_names(&z, "z after js2 quit", &["yrs"]).await;

    // The edits stay: the document outlives the JS peers.
    let last = YClient::synced(&url).await;
    let final_map = last.read(map_of);
    assert_eq!(final_map, y.read(map_of));
    assert_eq!(final_map.len(), 4, "{final_map:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn js_client_typing_into_a_kr_title_is_kr_updated_on_live() {
    use common::live::{ty, LiveClient};
    use serde_json::json;
    require_node();
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let room = room("interop-live");
    let ann = LiveClient::join(server.local_addr(), &room, "ann").await;
    ann.ok(json!({"type": "cycle.set", "starts": "2030-01-01", "ends": "2030-03-31"}))
        .await;
    let o = ann
        .ok(json!({"type": "objective.create", "title": "Keep 40% of users"}))
        .await["created_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let kr = ann
        .ok(
            json!({"type": "kr.create", "objective": o, "title": "Reply within 2 min",
                   "metric": {"kind": "decrease", "start": 10, "target": 2, "unit": "min"}}),
        )
        .await["created_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let base = format!("ws://{}/sync", server.local_addr());
    let mut child = Command::new("node")
        .arg(interop_dir().join("live-peer.mjs"))
        .args([
            "--url", &base, "--room", &room, "--user", "wang", "--kr", &kr,
        ])
        .args([
            "--text",
            " 客服",
            "--timeout-ms",
            &WAIT.as_millis().to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn node live-peer: {e}: {SETUP_HINT}"));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("live-peer answers")
        .unwrap()
        .expect("live-peer prints a line");
    let typed: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(typed["title"], "Reply within 2 min 客服", "{typed}");

    // Each keystroke is an update; /live ends up with the whole title, by the JS user. The
    // event carries the title and nothing else of the KR.
    let e = ann
        .next_where("kr.updated with the JS keystrokes", |m| {
            ty(m) == "kr.updated" && m["fields"]["title"] == "Reply within 2 min 客服"
        })
        .await;
    assert_eq!(e["key_result"], kr.as_str());
    assert_eq!(e["objective"], o.as_str());
    assert_eq!(e["changed"], json!(["title"]));
    assert_eq!(e["fields"].as_object().unwrap().len(), 1, "{e}");
    assert_eq!(e["by"], "wang", "the JS client's ?user= acts");
    // Its awareness is a presence via sync.
    ann.wait_for("wang present via sync", |f| {
        f.iter().any(|m| {
            ty(m) == "presence"
                && m["user"] == "wang"
                && m["via"] == "sync"
                && m["state"] == "joined"
        })
    })
    .await;

    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"quit\n").await.unwrap();
    stdin.flush().await.unwrap();
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("live-peer exits")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    ann.wait_for("wang left", |f| {
        f.iter()
            .any(|m| ty(m) == "presence" && m["user"] == "wang" && m["state"] == "left")
    })
    .await;
    server.shutdown().await.unwrap();
}

/// The stock provider passes a signed token as `params: { token }` and co-edits like any
/// client of an open server.
#[tokio::test]
async fn the_stock_js_provider_connects_with_a_token() {
    use okrhub::auth::token::{mint_hs256, Claims};
    require_node();
    const SECRET: &str = "interop-secret-of-at-least-32-bytes!";
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |a| a.security.jwt_secret = Some(SECRET.into())).await;
    let room = room("interop-token");
    let org = room.split('.').next().unwrap().to_owned();
    let token = |user: &str| {
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 600;
        let claims = Claims {
            sub: user.into(),
            name: None,
            org: org.clone(),
            roles: [(format!("{org}.*.*"), okrhub::identity::Role::Editor)].into(),
            exp,
            nbf: None,
            iat: None,
            iss: None,
            aud: None,
        };
        mint_hs256(SECRET.as_bytes(), &claims).unwrap()
    };
    let url = format!("{}?token={}", sync_url(&server, &room), token("yrs"));
    let y = YClient::synced(&url).await;
    y.set_awareness(serde_json::json!({"user": {"name": "yrs"}}));
    y.edit(|_, txn| {
        txn.get_or_insert_map("interop")
            .insert(txn, "yrs", "hello from yrs");
    });
    y.round_trip().await;
    let base = format!("ws://{}/sync", server.local_addr());
    let mut js = JsPeer::spawn_with_token(&base, &room, "js", &["yrs"], &token("js"));
    let ready = js.line("ready line").await;
    let map = js_map(&ready);
    assert_eq!(map.get("yrs").map(String::as_str), Some("hello from yrs"));
    y.wait_for("yrs sees js's key", |v| {
        map_of(v.doc()).get("js").map(String::as_str) == Some("hello from js")
    })
    .await;
    js.send("quit").await;
    assert_eq!(js.wait_exit().await, Some(0));
    server.shutdown().await.unwrap();
}

/// The stock JS client (the `ws` package under y-websocket, as browsers do natively) answers
/// the server's keep-alive pings: it outlives many idle timeouts without sending anything of
/// its own (its awareness renewal comes every 15 s), and nobody is closed for silence.
#[tokio::test]
async fn the_stock_js_client_answers_keep_alive_pings() {
    require_node();
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |a| {
        a.transport.ws_ping_interval = std::time::Duration::from_millis(100);
        a.transport.ws_idle_timeout = std::time::Duration::from_secs(1);
    })
    .await;
    let addr = server.local_addr();
    let room = room("interop-ping");
    let base = format!("ws://{addr}/sync");
    let mut js = JsPeer::spawn(&base, &room, "js", &[]);
    assert_eq!(js.line("ready line").await["ready"], true);
    // At most one ping per sweep (100 ms) goes to the one connection: 15 pings take 1.5 s,
    // longer than the idle timeout.
    wait_metric(addr, "okrhub_ws_pings_total", |n| n >= 15.0).await;
    let closes = http_get(addr, "/metrics").await;
    assert!(
        !closes.contains("okrhub_closes_total{reason=\"idle_timeout\"}"),
        "a JS client was closed for silence: {closes}"
    );
    let dump = js.dump().await;
    assert_eq!(
        js_map(&dump).get("js").map(String::as_str),
        Some("hello from js")
    );
    js.send("quit").await;
    assert_eq!(js.wait_exit().await, Some(0));
    server.shutdown().await.unwrap();
}
