//! Chat robots and webhooks against local receivers: each request's signature recomputed here,
//! independently, exactly as each vendor documents it (DingTalk, Feishu / Lark, Standard
//! Webhooks), retries, 410, a receiver that never answers, a restart with deliveries pending,
//! and who may configure robots. The receivers are hyper servers on port 0 in the test; the
//! test waits on what they receive, never on a timer.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::http::request;
use common::live::LiveClient;
use common::tokens::{claims, hs256};
use common::{start_server, WAIT};
use hmac::{KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use okrhub::identity::Role;
use okrhub::server::RunningServer;
use serde_json::{json, Value};
use tokio::sync::mpsc;

const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";
const ROOM: &str = "acme.growth.2030-Q3";
const DING_SECRET: &str = "SEC0123456789abcdef";
const LARK_SECRET: &str = "lark-secret-42";
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

fn hmac_b64(key: &[u8], msg: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).unwrap();
    mac.update(msg);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// One request a receiver got.
#[derive(Debug)]
struct Got {
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Value,
    raw: Bytes,
}

impl Got {
    fn header(&self, name: &str) -> &str {
        (self.headers.iter())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
    fn query(&self, name: &str) -> String {
        (self.query.split('&'))
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
            .unwrap_or_default()
    }
}

/// How a receiver answers a request.
#[derive(Debug, Clone, Copy)]
enum Reply {
    Status(u16),
    /// Never answers.
    Hang,
}

/// A local HTTP receiver: every request is sent to the test; answers follow a script, then
/// 200 with a body each vendor counts as success.
struct Receiver {
    addr: SocketAddr,
    got: mpsc::UnboundedReceiver<Got>,
}

impl Receiver {
    async fn start(script: &[Reply]) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, got) = mpsc::unbounded_channel();
        let s = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (tx, s) = (tx.clone(), s.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let (tx, s) = (tx.clone(), s.clone());
                            async move {
                                let (parts, body) = req.into_parts();
                                let raw = body.collect().await.unwrap().to_bytes();
                                let reply =
                                    s.lock().unwrap().pop_front().unwrap_or(Reply::Status(200));
                                let _ = tx.send(Got {
                                    path: parts.uri.path().to_owned(),
                                    query: parts.uri.query().unwrap_or("").to_owned(),
                                    headers: (parts.headers.iter())
                                        .map(|(k, v)| {
                                            (
                                                k.as_str().to_owned(),
                                                v.to_str().unwrap_or("").to_owned(),
                                            )
                                        })
                                        .collect(),
                                    body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
                                    raw,
                                });
                                let status = match reply {
                                    Reply::Status(s) => s,
                                    Reply::Hang => std::future::pending().await,
                                };
                                let body =
                                    r#"{"errcode":0,"errmsg":"ok","code":0,"msg":"success"}"#;
                                Ok::<_, std::convert::Infallible>(
                                    hyper::Response::builder()
                                        .status(status)
                                        .body(Full::new(Bytes::from(body)))
                                        .unwrap(),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { addr, got }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn next(&mut self) -> Got {
        tokio::time::timeout(WAIT, self.got.recv())
            .await
            .expect("the receiver gets a request")
            .expect("receiver running")
    }
}

fn admin() -> String {
    hs256(SECRET, &claims("ana", "acme", &[("acme.*.*", Role::Admin)]))
}

async fn server(dir: &std::path::Path) -> RunningServer {
    start_server(dir, |a| {
        a.security.jwt_secret = Some(SECRET.into());
        a.notify.notify_retry_base = Duration::from_millis(20);
        a.notify.notify_timeout = Duration::from_secs(30);
    })
    .await
}

async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Value,
) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let a = request(
        addr,
        method,
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        &body,
    )
    .await;
    (a.status, a.json())
}

async fn put_robot(addr: SocketAddr, name: &str, robot: Value) -> Value {
    let (status, body) = call(
        addr,
        "PUT",
        &format!("/api/orgs/acme/robots/{name}"),
        &admin(),
        robot,
    )
    .await;
    assert!(status == 201 || status == 200, "{status} {body}");
    body
}

async fn command(addr: SocketAddr, token: &str, c: Value) -> Value {
    let (status, body) = call(
        addr,
        "POST",
        &format!("/api/rooms/{ROOM}/commands"),
        token,
        c.clone(),
    )
    .await;
    assert_eq!(status, 200, "{c} → {body}");
    body
}

/// An objective and a KR 「每周新增500活跃用户」 (320 → 1000 人): the KR's id.
async fn seed(addr: SocketAddr) -> String {
    let t = admin();
    command(
        addr,
        &t,
        json!({"type": "cycle.set", "starts": "2030-07-01", "ends": "2030-09-30"}),
    )
    .await;
    let o = command(
        addr,
        &t,
        json!({"type": "objective.create", "title": "Q3让用户留存率突破40%"}),
    )
    .await;
    let o = o["created_id"].as_str().unwrap().to_owned();
    let kr = command(
        addr,
        &t,
        json!({"type": "kr.create", "objective": o, "title": "每周新增500活跃用户",
               "metric": {"kind": "increase", "start": 320, "target": 1000, "unit": "人"}}),
    )
    .await;
    kr["created_id"].as_str().unwrap().to_owned()
}

async fn checkin(addr: SocketAddr, kr: &str, value: u32, confidence: u8) {
    command(
        addr,
        &admin(),
        json!({"type": "checkin.create", "key_result": kr, "value": value, "confidence": confidence}),
    )
    .await;
}

#[tokio::test]
async fn a_red_flag_reaches_each_vendor_signed_as_it_documents() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let addr = s.local_addr();
    let mut ding = Receiver::start(&[]).await;
    let mut lark = Receiver::start(&[]).await;
    let mut slack = Receiver::start(&[]).await;
    let mut hook = Receiver::start(&[]).await;
    put_robot(
        addr,
        "ding",
        json!({"kind": "dingtalk", "url": ding.url("/robot/send?access_token=tok"),
        "secret": DING_SECRET, "events": ["red_flag"]}),
    )
    .await;
    put_robot(
        addr,
        "lark",
        json!({"kind": "feishu", "url": lark.url("/open-apis/bot/v2/hook/x"),
        "secret": LARK_SECRET, "format": "rich", "events": ["red_flag"]}),
    )
    .await;
    put_robot(
        addr,
        "slack",
        json!({"kind": "slack", "url": slack.url("/services/T/B/X")}),
    )
    .await;
    put_robot(
        addr,
        "hook",
        json!({"kind": "webhook", "url": hook.url("/okr"), "secret": WHSEC,
        "events": ["checkin"]}),
    )
    .await;
    let kr = seed(addr).await;
    checkin(addr, &kr, 400, 8).await; // steady: Slack and the webhook only
    checkin(addr, &kr, 500, 2).await; // a red flag

    // DingTalk: sign = base64(HMAC-SHA256(secret, timestamp + "\n" + secret)), URL-encoded in
    // the query with the timestamp in ms.
    let got = ding.next().await;
    assert_eq!(got.path, "/robot/send");
    assert_eq!(got.query("access_token"), "tok");
    let ts = got.query("timestamp");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        (now_ms - ts.parse::<i64>().unwrap()).abs() < 60_000,
        "a timestamp in ms: {ts}"
    );
    let sign = percent_encoding::percent_decode_str(&got.query("sign"))
        .decode_utf8()
        .unwrap()
        .into_owned();
    assert_eq!(
        sign,
        hmac_b64(
            DING_SECRET.as_bytes(),
            format!("{ts}\n{DING_SECRET}").as_bytes()
        )
    );
    assert_eq!(got.body["msgtype"], "text");
    let content = got.body["text"]["content"].as_str().unwrap();
    assert!(
        content.starts_with("ana 更新了「每周新增500活跃用户」：400 → 500 人，信心 2/10 ⚠ 红旗"),
        "the first DingTalk message is the red flag (the steady one was filtered out): {content}"
    );

    // Lark: sign = base64(HMAC-SHA256(key = timestamp + "\n" + secret, message = empty)), in the
    // body with the timestamp in seconds, as a string.
    let got = lark.next().await;
    let ts = got.body["timestamp"].as_str().expect("timestamp: a string");
    assert!((now_ms / 1000 - ts.parse::<i64>().unwrap()).abs() < 60);
    assert_eq!(
        got.body["sign"],
        hmac_b64(format!("{ts}\n{LARK_SECRET}").as_bytes(), b"")
    );
    assert_eq!(got.body["msg_type"], "interactive");
    assert_eq!(got.body["card"]["header"]["template"], "red");

    // Slack: the URL is the secret; mrkdwn text.
    let first = slack.next().await;
    assert_eq!(first.path, "/services/T/B/X");
    assert!(
        first.body["text"]
            .as_str()
            .unwrap()
            .starts_with("*ana 更新了「每周新增500活跃用户」：320 → 400 人，信心 8/10*"),
        "{}",
        first.body
    );
    let second = slack.next().await;
    assert!(second.body["text"].as_str().unwrap().contains("⚠ 红旗"));

    // Standard Webhooks: v1,base64(HMAC-SHA256(base64-decoded secret, id.timestamp.body)).
    let key = STANDARD
        .decode(WHSEC.strip_prefix("whsec_").unwrap())
        .unwrap();
    for expected in ["checkin.created", "checkin.red_flag"] {
        let got = hook.next().await;
        let (id, ts) = (got.header("webhook-id"), got.header("webhook-timestamp"));
        assert!(id.starts_with("msg_"), "{id}");
        assert!((now_ms / 1000 - ts.parse::<i64>().unwrap()).abs() < 60);
        let mut signed = format!("{id}.{ts}.").into_bytes();
        signed.extend_from_slice(&got.raw);
        assert_eq!(
            got.header("webhook-signature"),
            format!("v1,{}", hmac_b64(&key, &signed))
        );
        assert_eq!(got.body["type"], expected);
        assert_eq!(got.body["data"]["notice"]["room"], ROOM);
    }
    assert_eq!(common::metric(addr, "okrhub_notify_sent_total").await, 6.0);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failed_delivery_is_retried_and_410_stops_the_robot() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let addr = s.local_addr();
    let mut flaky = Receiver::start(&[Reply::Status(500)]).await;
    let mut gone = Receiver::start(&[Reply::Status(410)]).await;
    put_robot(
        addr,
        "flaky",
        json!({"kind": "webhook", "url": flaky.url("/h"), "secret": WHSEC}),
    )
    .await;
    put_robot(
        addr,
        "gone",
        json!({"kind": "slack", "url": gone.url("/s")}),
    )
    .await;
    let kr = seed(addr).await;
    checkin(addr, &kr, 400, 7).await;

    let first = flaky.next().await;
    let retry = flaky.next().await;
    assert_eq!(
        first.header("webhook-id"),
        retry.header("webhook-id"),
        "one id across attempts"
    );
    assert_eq!(first.raw, retry.raw);

    gone.next().await;
    let t = admin();
    let letters = common::poll_until("the 410 is dead-lettered", || async {
        let (_, b) = call(
            addr,
            "GET",
            "/api/orgs/acme/robots/gone/dead-letters",
            &t,
            Value::Null,
        )
        .await;
        let l = b["dead_letters"].as_array().cloned().unwrap_or_default();
        (!l.is_empty()).then_some(l)
    })
    .await;
    assert!(
        letters[0]["error"].as_str().unwrap().contains("410"),
        "{letters:?}"
    );
    let (_, robot) = call(addr, "GET", "/api/orgs/acme/robots/gone", &t, Value::Null).await;
    assert!(
        robot["disabled"].as_str().unwrap().contains("410"),
        "{robot}"
    );
    // Stopped: the next check-in is not sent to it (the flaky one, still running, gets it).
    checkin(addr, &kr, 450, 7).await;
    flaky.next().await;
    assert!(gone.got.try_recv().is_err());
    assert_eq!(
        common::metric(addr, "okrhub_notify_dead_lettered_total").await,
        1.0
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_receiver_that_never_answers_does_not_delay_live_events() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let addr = s.local_addr();
    let mut stuck = Receiver::start(&[Reply::Hang, Reply::Hang, Reply::Hang]).await;
    put_robot(
        addr,
        "stuck",
        json!({"kind": "slack", "url": stuck.url("/s")}),
    )
    .await;
    let kr = seed(addr).await;
    checkin(addr, &kr, 400, 7).await;
    stuck.next().await; // its first delivery hangs now
    let token = hs256(SECRET, &claims("bo", "acme", &[("acme.*.*", Role::Viewer)]));
    let viewer = LiveClient::connect(&format!("ws://{addr}/live/{ROOM}?token={token}"), "bo").await;
    viewer
        .next_where("snapshot", |m| m["type"] == "snapshot")
        .await;
    let started = Instant::now();
    checkin(addr, &kr, 450, 6).await;
    viewer.next_event("checkin.created").await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "the check-in reached /live in {took:?}"
    );
    s.shutdown().await.unwrap();
}

/// The binary, killed (SIGKILL) while a receiver holds a delivery, then started again on the
/// same data dir: the delivery was persisted before it was sent, and the new process sends it.
#[tokio::test]
async fn pending_deliveries_are_sent_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let args = [
        "--data-dir",
        data,
        "--jwt-secret",
        SECRET,
        "--notify-retry-base",
        "20ms",
    ];
    let mut receiver = Receiver::start(&[Reply::Hang]).await;
    let node = common::process::HubProcess::start(&args);
    put_robot(
        node.addr,
        "later",
        json!({"kind": "slack", "url": receiver.url("/s")}),
    )
    .await;
    let kr = seed(node.addr).await;
    checkin(node.addr, &kr, 400, 2).await;
    receiver.next().await; // persisted, and in flight when the process dies
    node.sigkill();
    // The same robot, answering now: the next process sends what was pending.
    let node = common::process::HubProcess::start(&args);
    let got = receiver.next().await;
    assert!(
        got.body["text"].as_str().unwrap().contains("⚠ 红旗"),
        "{}",
        got.body
    );
    common::poll_until("nothing pending", || async {
        (common::metric(node.addr, "okrhub_notify_queue_depth").await == 0.0
            && common::metric(node.addr, "okrhub_notify_sent_total").await == 1.0)
            .then_some(())
    })
    .await;
    node.sigterm();
}

#[tokio::test]
async fn secrets_are_never_echoed_and_only_the_orgs_admin_configures_robots() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let addr = s.local_addr();
    let robot = json!({"kind": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send?access_token=t",
        "secret": DING_SECRET, "mentions": {"ana": "manager7"}});
    let created = put_robot(addr, "ding", robot.clone()).await;
    assert_eq!(created["secret_set"], true);
    let t = admin();
    for path in ["/api/orgs/acme/robots/ding", "/api/orgs/acme/robots"] {
        let (status, body) = call(addr, "GET", path, &t, Value::Null).await;
        assert_eq!(status, 200);
        assert!(!body.to_string().contains(DING_SECRET), "{body}");
    }
    // A PUT without the secret keeps it.
    let kept = put_robot(
        addr,
        "ding",
        json!({"kind": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send?access_token=t"}),
    )
    .await;
    assert_eq!(kept["secret_set"], true);

    let editor = hs256(SECRET, &claims("bo", "acme", &[("acme.*.*", Role::Editor)]));
    let team_admin = hs256(
        SECRET,
        &claims("cy", "acme", &[("acme.growth.*", Role::Admin)]),
    );
    let other_org = hs256(
        SECRET,
        &claims("di", "umbrella", &[("umbrella.*.*", Role::Admin)]),
    );
    for token in [&editor, &team_admin, &other_org] {
        for (method, path, body) in [
            ("GET", "/api/orgs/acme/robots/ding", Value::Null),
            ("GET", "/api/orgs/acme/robots", Value::Null),
            (
                "GET",
                "/api/orgs/acme/robots/ding/dead-letters",
                Value::Null,
            ),
            ("PUT", "/api/orgs/acme/robots/evil", robot.clone()),
            ("DELETE", "/api/orgs/acme/robots/ding", Value::Null),
        ] {
            let (status, body) = call(addr, method, path, token, body).await;
            assert_eq!(status, 403, "{method} {path} → {body}");
        }
    }
    let (status, _) = call(addr, "GET", "/api/orgs/acme/robots/ding", "", Value::Null).await;
    assert_eq!(status, 401);
    let (status, body) = call(
        addr,
        "PUT",
        "/api/orgs/acme/robots/bad",
        &t,
        json!({"kind": "webhook", "url": "https://example.com/h", "secret": "not-whsec"}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = call(
        addr,
        "DELETE",
        "/api/orgs/acme/robots/ding",
        &t,
        Value::Null,
    )
    .await;
    assert_eq!(status, 204);
    s.shutdown().await.unwrap();
}

/// Two nodes sharing rooms through Redis: each check-in is sent once, by the node whose client
/// made it — though both nodes project it and publish its events.
#[tokio::test]
async fn with_two_nodes_each_notice_is_sent_once_by_the_node_it_was_made_on() {
    let redis = common::redis_server::RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let node = |name: &str| {
        let (url, data) = (redis.url(), dir.path().join(name));
        async move {
            start_server(&data, |a| {
                a.security.jwt_secret = Some(SECRET.into());
                a.store.kind = okrhub::config::StoreChoice::Redis;
                a.store.redis_url = url;
                a.flush_interval = Duration::from_millis(5);
                a.notify.notify_retry_base = Duration::from_millis(20);
            })
            .await
        }
    };
    let (a, b) = (node("a").await, node("b").await);
    let mut hook = Receiver::start(&[]).await;
    put_robot(
        a.local_addr(),
        "hook",
        json!({"kind": "webhook", "url": hook.url("/h"), "secret": WHSEC}),
    )
    .await;
    let kr = seed(a.local_addr()).await;
    let viewer = hs256(SECRET, &claims("bo", "acme", &[("acme.*.*", Role::Viewer)]));
    let mut watchers = Vec::new();
    for n in [&a, &b] {
        let url = format!("ws://{}/live/{ROOM}?token={viewer}", n.local_addr());
        let c = LiveClient::connect(&url, "bo").await;
        c.next_where("snapshot", |m| m["type"] == "snapshot").await;
        watchers.push(c);
    }
    checkin(a.local_addr(), &kr, 400, 7).await;
    checkin(b.local_addr(), &kr, 450, 6).await;
    // Both nodes projected both check-ins (and handed on, or dropped, their notices).
    for c in &watchers {
        c.wait_for("both check-ins", |ev| {
            ev.iter().filter(|e| e["type"] == "checkin.created").count() == 2
        })
        .await;
    }
    let mut values: Vec<f64> = Vec::new();
    for _ in 0..2 {
        let got = hook.next().await;
        values.push(got.body["data"]["notice"]["value"].as_f64().unwrap());
    }
    values.sort_by(f64::total_cmp);
    assert_eq!(values, [400.0, 450.0]);
    for n in [&a, &b] {
        common::poll_until("nothing waiting", || async {
            (common::metric(n.local_addr(), "okrhub_notify_queue_depth").await == 0.0).then_some(())
        })
        .await;
        assert_eq!(
            common::metric(n.local_addr(), "okrhub_notify_sent_total").await,
            1.0,
            "each node sent its own client's check-in"
        );
    }
    assert!(hook.got.try_recv().is_err(), "no check-in sent twice");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// A private objective's check-ins never leave the server; a public one's in the same room do.
#[tokio::test]
async fn nothing_from_a_private_objective_is_posted() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let addr = s.local_addr();
    let mut hook = Receiver::start(&[]).await;
    put_robot(
        addr,
        "hook",
        json!({"kind": "webhook", "url": hook.url("/h"), "secret": WHSEC}),
    )
    .await;
    let room = "acme.~ana.2030-Q3";
    let t = admin();
    let post = |c: Value| {
        let t = t.clone();
        async move {
            let (status, body) = call(
                addr,
                "POST",
                &format!("/api/rooms/{room}/commands"),
                &t,
                c.clone(),
            )
            .await;
            assert_eq!(status, 200, "{c} → {body}");
            body["created_id"].as_str().unwrap_or_default().to_owned()
        }
    };
    let mut krs = Vec::new();
    for (title, visibility) in [("Secret plan", "private"), ("Open plan", "public")] {
        let o = post(json!({"type": "objective.create", "title": title, "visibility": visibility}))
            .await;
        krs.push(
            post(
                json!({"type": "kr.create", "objective": o, "title": format!("{title} KR"),
            "metric": {"kind": "increase", "start": 0, "target": 10}}),
            )
            .await,
        );
    }
    post(json!({"type": "checkin.create", "key_result": krs[0], "value": 1, "confidence": 1}))
        .await;
    post(json!({"type": "checkin.create", "key_result": krs[1], "value": 2, "confidence": 7}))
        .await;
    let got = hook.next().await;
    assert_eq!(
        got.body["data"]["notice"]["key_result"]["title"], "Open plan KR",
        "{}",
        got.body
    );
    assert!(!String::from_utf8_lossy(&got.raw).contains("Secret"));
    common::poll_until("nothing waiting", || async {
        (common::metric(addr, "okrhub_notify_queue_depth").await == 0.0).then_some(())
    })
    .await;
    assert_eq!(common::metric(addr, "okrhub_notify_sent_total").await, 1.0);
    assert!(hook.got.try_recv().is_err());
    s.shutdown().await.unwrap();
}
