//! `/live` and REST from the outside: a JSON WebSocket client and a raw HTTP/1.1 client that
//! validate **every** message the server sends against the committed JSON Schemas
//! (`proto/schema/`), so a test that talks to the server also checks the contract.
//!
//! [`LiveClient`] keeps every frame it received, in order, and lets a test wait on them —
//! woken by each frame, never by a timer, failing after [`WAIT`].

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::{Closed, WAIT};

/// The schema files under `proto/schema/`, compiled once.
struct Schemas(Vec<(&'static str, jsonschema::Validator)>);

fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/schema");
        let names = [
            "server-message",
            "room-view",
            "command-accepted",
            "error-response",
            "kr-history",
            "client-command",
            "command",
            "review",
            "carry-result",
            "template-list",
            "filled-from-template",
        ];
        Schemas(
            names
                .iter()
                .map(|name| {
                    let path = dir.join(format!("{name}.schema.json"));
                    let text = std::fs::read_to_string(&path)
                        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                    let schema: Value = serde_json::from_str(&text).unwrap();
                    let v = jsonschema::validator_for(&schema)
                        .unwrap_or_else(|e| panic!("compile {}: {e}", path.display()));
                    (*name, v)
                })
                .collect(),
        )
    })
}

/// Fails the test unless `value` is valid against `proto/schema/{schema}.schema.json`.
pub fn validate(schema: &str, value: &Value) {
    if let Err(e) = check(schema, value) {
        panic!("{e}");
    }
}

/// Whether `value` is valid against `proto/schema/{schema}.schema.json`, and if not, why.
pub fn check(schema: &str, value: &Value) -> Result<(), String> {
    let (_, v) = schemas()
        .0
        .iter()
        .find(|(n, _)| *n == schema)
        .unwrap_or_else(|| panic!("no schema {schema}"));
    let errors: Vec<String> = v
        .iter_errors(value)
        .map(|e| format!("  at {}: {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "a message does not match proto/schema/{schema}.schema.json:\n{}\nmessage: {value}",
            errors.join("\n")
        ))
    }
}

/// The `type` of a message.
pub fn ty(m: &Value) -> &str {
    m["type"].as_str().unwrap_or("")
}

/// Control messages; everything else the server sends is an OKR event.
pub const CONTROL: &[&str] = &["snapshot", "resumed", "ack", "error", "presence"];

pub fn is_event(m: &Value) -> bool {
    !CONTROL.contains(&ty(m))
}

#[derive(Default)]
struct State {
    frames: Vec<Value>,
    closed: Option<Closed>,
    /// What the server sent that breaks the contract (checked by every wait and on drop).
    bad: Vec<String>,
}

/// A `/live/{room}` client.
pub struct LiveClient {
    state: Arc<Mutex<State>>,
    changed: watch::Receiver<u64>,
    out: mpsc::UnboundedSender<WsMessage>,
    /// Frames before this index have been consumed by [`LiveClient::next`] and friends.
    cursor: Mutex<usize>,
    next_id: AtomicU64,
    pub user: String,
}

pub fn live_url(addr: std::net::SocketAddr, room: &str, query: &str) -> String {
    if query.is_empty() {
        format!("ws://{addr}/live/{room}")
    } else {
        format!("ws://{addr}/live/{room}?{query}")
    }
}

impl LiveClient {
    /// Connects to `/live/{room}?user={user}` and waits for the first frame (the snapshot).
    pub async fn join(addr: std::net::SocketAddr, room: &str, user: &str) -> LiveClient {
        let c = LiveClient::connect(&live_url(addr, room, &format!("user={user}")), user).await;
        c.wait_for("the snapshot", |f| !f.is_empty()).await;
        assert_eq!(
            ty(&c.frames()[0]),
            "snapshot",
            "first frame: {}",
            c.frames()[0]
        );
        c
    }

    /// Connects to any URL; does not wait for anything.
    pub async fn connect(url: &str, user: &str) -> LiveClient {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .unwrap_or_else(|e| panic!("connect {url}: {e}"));
        let (mut sink, mut stream) = ws.split();
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, mut rx) = mpsc::unbounded_channel::<WsMessage>();
        let (changed_tx, changed) = watch::channel(0u64);
        tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
        });
        {
            let state = state.clone();
            tokio::spawn(async move {
                while let Some(frame) = stream.next().await {
                    let mut st = state.lock().unwrap();
                    match frame {
                        Ok(WsMessage::Text(text)) => {
                            match serde_json::from_str::<Value>(text.as_str()) {
                                Ok(v) => {
                                    if let Err(e) = check("server-message", &v) {
                                        st.bad.push(e);
                                    }
                                    if let Err(e) = serde_json::from_str::<NoDuplicateKeys>(&text) {
                                        st.bad.push(format!("{e}: {text}"));
                                    }
                                    st.frames.push(v);
                                }
                                Err(e) => st.bad.push(format!("non-JSON text frame ({e}): {text}")),
                            }
                        }
                        Ok(WsMessage::Binary(b)) => {
                            st.bad.push(format!("a binary frame ({} bytes)", b.len()))
                        }
                        Ok(WsMessage::Close(frame)) => {
                            st.closed = Some(Closed {
                                code: frame.as_ref().map(|f| u16::from(f.code)),
                                reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                            });
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                    drop(st);
                    changed_tx.send_modify(|n| *n += 1);
                }
                let mut st = state.lock().unwrap();
                if st.closed.is_none() {
                    st.closed = Some(Closed {
                        code: None,
                        reason: "connection dropped".into(),
                    });
                }
                drop(st);
                changed_tx.send_modify(|n| *n += 1);
            });
        }
        LiveClient {
            state,
            changed,
            out: tx,
            cursor: Mutex::new(0),
            next_id: AtomicU64::new(1),
            user: user.to_owned(),
        }
    }

    /// Fails the test if the server sent anything that breaks the contract.
    pub fn assert_valid(&self) {
        let st = self.state.lock().unwrap();
        assert!(
            st.bad.is_empty(),
            "{}: the server sent invalid /live messages:\n{}",
            self.user,
            st.bad.join("\n")
        );
    }

    /// Every frame received so far.
    pub fn frames(&self) -> Vec<Value> {
        self.assert_valid();
        self.state.lock().unwrap().frames.clone()
    }

    /// The OKR events received so far (no control messages).
    pub fn events(&self) -> Vec<Value> {
        self.frames().into_iter().filter(is_event).collect()
    }

    pub fn closed(&self) -> Option<Closed> {
        self.state.lock().unwrap().closed.clone()
    }

    /// Waits until `pred` holds over all frames received; fails after [`WAIT`] and shows them.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&[Value]) -> bool) {
        self.wait_state(what, |st| pred(&st.frames)).await
    }

    async fn wait_state(&self, what: &str, pred: impl Fn(&State) -> bool) {
        let mut changed = self.changed.clone();
        let wait = async {
            loop {
                self.assert_valid();
                if pred(&self.state.lock().unwrap()) {
                    return true;
                }
                if changed.changed().await.is_err() {
                    return pred(&self.state.lock().unwrap());
                }
            }
        };
        let ok = tokio::time::timeout(WAIT, wait).await.unwrap_or(false);
        if !ok {
            let st = self.state.lock().unwrap();
            let frames: Vec<String> = st.frames.iter().map(short).collect();
            panic!(
                "{}: waited in vain for {what}; closed: {:?}; frames:\n{}",
                self.user,
                st.closed,
                frames.join("\n")
            );
        }
    }

    /// The next unconsumed frame satisfying `pred`, waiting for it; frames before it are
    /// consumed (skipped).
    pub async fn next_where(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let from = *self.cursor.lock().unwrap();
        self.wait_for(what, |f| f[from.min(f.len())..].iter().any(&pred))
            .await;
        let frames = self.frames();
        let i = from + frames[from..].iter().position(&pred).unwrap();
        *self.cursor.lock().unwrap() = i + 1;
        frames[i].clone()
    }

    /// The next unconsumed frame, whatever it is.
    pub async fn next(&self) -> Value {
        self.next_where("any frame", |_| true).await
    }

    /// The next unconsumed frame of type `t` (an event type like `kr.updated`, or a control
    /// type like `presence`), skipping others.
    pub async fn next_event(&self, t: &str) -> Value {
        self.next_where(&format!("a {t:?} frame"), |m| ty(m) == t)
            .await
    }

    /// Consumes and returns every frame received and not yet consumed.
    pub fn drain(&self) -> Vec<Value> {
        let mut cursor = self.cursor.lock().unwrap();
        let frames = self.frames();
        let out = frames[(*cursor).min(frames.len())..].to_vec();
        *cursor = frames.len();
        out
    }

    /// Sends a raw text frame.
    pub fn send_text(&self, text: impl Into<String>) {
        let _ = self.out.send(WsMessage::Text(text.into().into()));
    }

    pub fn send_ws(&self, m: WsMessage) {
        let _ = self.out.send(m);
    }

    /// Sends `command` (a JSON object without `id`) with a fresh id and waits for its answer:
    /// `Ok(ack)` or `Err(error)`. Does not consume frames: the events the command caused are
    /// received before the answer and stay for [`LiveClient::next_event`] / [`LiveClient::drain`].
    pub async fn send(&self, command: Value) -> Result<Value, Value> {
        let what = command.to_string();
        self.send_or_closed(command).await.unwrap_or_else(|| {
            panic!(
                "{}: connection closed before the answer to {what}",
                self.user
            )
        })
    }

    /// Like [`LiveClient::send`], but `None` when the connection ends before the answer.
    pub async fn send_or_closed(&self, mut command: Value) -> Option<Result<Value, Value>> {
        let id = format!(
            "{}-{}",
            self.user,
            self.next_id.fetch_add(1, Ordering::Relaxed)
        );
        command["id"] = json!(id);
        validate("client-command", &command);
        let from = self.frames().len();
        self.send_text(command.to_string());
        self.wait_state(&format!("the answer to {id}"), |st| {
            st.closed.is_some() || st.frames[from..].iter().any(|m| answers(m, &id))
        })
        .await;
        let answer = self.frames()[from..]
            .iter()
            .find(|m| answers(m, &id))
            .cloned()?;
        Some(if ty(&answer) == "ack" {
            Ok(answer)
        } else {
            Err(answer)
        })
    }

    /// Like [`LiveClient::send`], failing the test on an error; returns the ack.
    pub async fn ok(&self, command: Value) -> Value {
        let what = command.to_string();
        self.send(command)
            .await
            .unwrap_or_else(|e| panic!("{what} refused: {e}"))
    }

    /// Like [`LiveClient::send`], failing the test on an ack; returns the error.
    pub async fn refused(&self, command: Value) -> Value {
        let what = command.to_string();
        match self.send(command).await {
            Ok(ack) => panic!("{what} accepted: {ack}"),
            Err(e) => e,
        }
    }

    /// The next `error` frame (for messages without a usable id).
    pub async fn next_error(&self) -> Value {
        self.next_event("error").await
    }

    /// Waits for the server to close the connection; returns how.
    pub async fn wait_closed(&self) -> Closed {
        self.wait_state("the connection to close", |st| st.closed.is_some())
            .await;
        self.closed().unwrap()
    }

    /// Closes the connection cleanly.
    pub fn close(&self) {
        self.send_ws(WsMessage::Close(None));
    }
}

impl Drop for LiveClient {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.assert_valid();
        }
    }
}

fn answers(m: &Value, id: &str) -> bool {
    matches!(ty(m), "ack" | "error") && m["id"] == id
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 300 {
        format!("{}…", s.chars().take(300).collect::<String>())
    } else {
        s
    }
}

/// An HTTP answer: status and JSON body (validated against the schema that fits).
#[derive(Debug)]
pub struct Http {
    pub status: u16,
    pub body: Value,
}

/// A minimal HTTP/1.1 request over TCP (`Connection: close`, body read to the end).
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let io = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let body = body.unwrap_or("");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        raw
    };
    let raw = tokio::time::timeout(WAIT, io)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer"));
    let text = String::from_utf8(raw).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"));
    (status, body.to_owned())
}

fn json_answer(status: u16, body: &str, ok_schema: &str) -> Http {
    if let Err(e) = serde_json::from_str::<NoDuplicateKeys>(body) {
        panic!("{status}: {e}: {body}");
    }
    let body: Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {body}"));
    validate(
        if status == 200 {
            ok_schema
        } else {
            "error-response"
        },
        &body,
    );
    Http { status, body }
}

/// `GET /api/rooms/{room}`.
pub async fn get_room(addr: std::net::SocketAddr, room: &str) -> Http {
    let (status, body) = http(addr, "GET", &format!("/api/rooms/{room}"), None).await;
    json_answer(status, &body, "room-view")
}

/// `POST /api/rooms/{room}/commands[?user=…]` with `body`.
pub async fn post_command(
    addr: std::net::SocketAddr,
    room: &str,
    user: Option<&str>,
    body: &str,
) -> Http {
    let path = match user {
        Some(u) => format!("/api/rooms/{room}/commands?user={u}"),
        None => format!("/api/rooms/{room}/commands"),
    };
    let (status, text) = http(addr, "POST", &path, Some(body)).await;
    json_answer(status, &text, "command-accepted")
}

/// `GET /api/rooms/{room}/key_results/{kr}/history`.
pub async fn kr_history(addr: std::net::SocketAddr, room: &str, kr: &str) -> Http {
    let path = format!("/api/rooms/{room}/key_results/{kr}/history");
    let (status, body) = http(addr, "GET", &path, None).await;
    json_answer(status, &body, "kr-history")
}

/// Parses any JSON and fails on an object with the same key twice — which `serde_json::Value`
/// (and most clients) silently collapse to the last one, and a schema cannot see.
pub struct NoDuplicateKeys;

impl<'de> serde::Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut keys = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !keys.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate key {key:?} in a JSON object"
                )));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(self)
    }
}

/// Starts the `okrhub` binary with `args`, has three `/live` clients stream commands into `room`,
/// SIGKILLs the hub in the middle of it, restarts it with the same `args` and checks that every
/// command acknowledged before the kill is there. Returns the acknowledged comments' texts.
pub async fn acked_commands_survive_sigkill(args: &[&str], room: &str) -> Vec<String> {
    use super::process::HubProcess;
    use std::sync::{Arc, Mutex};

    let server = HubProcess::start(args);
    let lead = LiveClient::join(server.addr, room, "lead").await;
    let objective = lead
        .ok(json!({"type": "objective.create", "title": "Ship 3 releases this quarter"}))
        .await["created_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let (count_tx, mut count) = tokio::sync::watch::channel(0usize);
    let count_tx = Arc::new(count_tx);
    let mut writers = Vec::new();
    for c in 0..3 {
        let client = LiveClient::join(server.addr, room, &format!("writer{c}")).await;
        let (acked, objective, count_tx) = (acked.clone(), objective.clone(), count_tx.clone());
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let text = format!("w{c}-{i}");
                let command = json!({"type": "comment.create",
                                     "target": {"objective": objective}, "text": text});
                match client.send_or_closed(command).await {
                    Some(Ok(_)) => {
                        let mut a = acked.lock().unwrap();
                        a.push(text);
                        count_tx.send_replace(a.len());
                    }
                    Some(Err(e)) => panic!("refused: {e}"),
                    None => return i, // the hub is gone: this command was never acked
                }
            }
            unreachable!()
        }));
    }
    // Kill the hub in the middle of the stream, once a good number of commands are acked.
    count.wait_for(|n| *n >= 90).await.unwrap();
    server.sigkill();
    let mut acked_per_writer = 0;
    for w in writers {
        acked_per_writer += w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked_per_writer, acked.len());

    let server = HubProcess::start(args);
    let view = get_room(server.addr, room).await;
    let stored: std::collections::HashSet<String> = view.body["okr"]["comments"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["text"].as_str().map(str::to_owned))
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|t| !stored.contains(*t)).collect();
    eprintln!(
        "after SIGKILL: {}/{} acked commands kept; {} of the 3 in flight (never acked) too",
        acked.len() - lost.len(),
        acked.len(),
        stored.len() - (acked.len() - lost.len()),
    );
    assert!(lost.is_empty(), "acked but lost: {lost:?}");
    server.sigterm();
    acked
}

/// The HTTP status an upgrade to `url` gets (101 when it is accepted), and the error body.
pub async fn upgrade(url: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .unwrap();
    for (k, v) in headers {
        let name: tokio_tungstenite::tungstenite::http::HeaderName = k.parse().unwrap();
        req.headers_mut().insert(
            name,
            tokio_tungstenite::tungstenite::http::HeaderValue::from_str(v).unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => (101, Value::Null),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            let body = r
                .body()
                .as_ref()
                .map(|b| serde_json::from_slice(b).unwrap_or(Value::Null));
            (r.status().as_u16(), body.unwrap_or(Value::Null))
        }
        Err(e) => panic!("upgrade {url}: {e}"),
    }
}
