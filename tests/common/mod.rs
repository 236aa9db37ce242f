//! Test harness: a real server on port 0 and real yrs clients over real WebSockets.
//!
//! [`YClient`] is a small y-websocket client built on `yrs::sync`: it sends sync step 1 and its
//! awareness on connect, answers the server's step 1, applies steps 2, updates and awareness,
//! and lets a test wait for a condition on its doc — woken by every frame it receives, never by
//! a timer.
#![allow(dead_code)]

pub mod haproxy;
pub mod http;
pub mod js;
pub mod live;
pub mod process;
pub mod redis_cluster;
pub mod redis_server;
pub mod tcp_link;
pub mod tokens;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use okrhub::config::ServeArgs;
use okrhub::server::{self, RunningServer};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::sync::{Awareness, Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, ReadTxn, Transact, TransactionMut, Update};

/// How long any wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// `n` distinct free ports on 127.0.0.1 for the processes a test starts (every listener is held
/// until all are chosen, so they differ).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// Starts a server storing in `dir`, with `tweak` applied to the defaults.
pub async fn start_server(dir: &Path, tweak: impl FnOnce(&mut ServeArgs)) -> RunningServer {
    let mut args = ServeArgs::for_data_dir(dir);
    tweak(&mut args);
    server::start(args).await.expect("server starts")
}

pub fn sync_url(server: &RunningServer, room: &str) -> String {
    format!("ws://{}/sync/{room}", server.local_addr())
}

/// Fetches `/metrics` and returns the value of the sample `name` (0 when absent).
pub async fn metric(addr: std::net::SocketAddr, name: &str) -> f64 {
    let body = http_get(addr, "/metrics").await;
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            (k == name).then(|| v.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// A minimal HTTP/1.1 GET over a plain TCP stream (no extra client crate needed).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// Polls `/metrics` until `name` satisfies `pred`: the server exposes no event for these
/// internal milestones (a room unloaded, a batch flushed), so the test watches the metric.
pub async fn wait_metric(
    addr: std::net::SocketAddr,
    name: &str,
    pred: impl Fn(f64) -> bool,
) -> f64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let v = metric(addr, name).await;
        if pred(v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "metric {name} stuck at {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `check` until it gives a value, for conditions outside the server that nothing
/// signals (what Redis holds); fails the test after [`WAIT`].
pub async fn poll_until<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How a connection ended, as the client saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Closed {
    pub code: Option<u16>,
    pub reason: String,
}

struct Shared {
    awareness: Awareness,
    synced: bool,
    closed: Option<Closed>,
    frames: u64,
    awareness_msgs: u64,
}

/// A yrs client connected to a room.
pub struct YClient {
    shared: Arc<Mutex<Shared>>,
    changed: watch::Receiver<u64>,
    out: mpsc::UnboundedSender<WsMessage>,
    reader: tokio::task::JoinHandle<()>,
    writer: tokio::task::JoinHandle<()>,
}

impl YClient {
    /// Connects and starts the handshake (does not wait for it: see [`YClient::synced`]).
    pub async fn connect(url: &str) -> YClient {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .unwrap_or_else(|e| panic!("connect {url}: {e}"));
        let (mut sink, mut stream) = ws.split();
        let doc = Doc::new();
        let shared = Arc::new(Mutex::new(Shared {
            awareness: Awareness::new(doc),
            synced: false,
            closed: None,
            frames: 0,
            awareness_msgs: 0,
        }));
        let (tx, mut rx) = mpsc::unbounded_channel::<WsMessage>();
        let (changed_tx, changed) = watch::channel(0u64);

        let writer = tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
        });

        let reader = {
            let shared = shared.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Some(frame) = stream.next().await {
                    let mut st = shared.lock().unwrap();
                    match frame {
                        Ok(WsMessage::Binary(data)) => {
                            st.frames += 1;
                            for reply in handle(&mut st, &data) {
                                let _ = tx.send(WsMessage::Binary(reply.into()));
                            }
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
                let mut st = shared.lock().unwrap();
                if st.closed.is_none() {
                    st.closed = Some(Closed {
                        code: None,
                        reason: "connection dropped".into(),
                    });
                }
                drop(st);
                changed_tx.send_modify(|n| *n += 1);
            })
        };

        let client = YClient {
            shared,
            changed,
            out: tx,
            reader,
            writer,
        };
        let step1 = {
            let st = client.shared.lock().unwrap();
            let sv = st.awareness.doc().transact().state_vector();
            Message::Sync(SyncMessage::SyncStep1(sv)).encode_v1()
        };
        client.send_raw(step1);
        client
    }

    /// Connects and waits for the handshake to complete.
    pub async fn synced(url: &str) -> YClient {
        let c = YClient::connect(url).await;
        c.wait_for("sync step 2", |s| s.synced()).await;
        c
    }

    /// Sends raw bytes as one binary frame.
    pub fn send_raw(&self, bytes: Vec<u8>) {
        let _ = self.out.send(WsMessage::Binary(bytes.into()));
    }

    /// Sends any WebSocket message.
    pub fn send_ws(&self, m: WsMessage) {
        let _ = self.out.send(m);
    }

    /// Edits the doc locally and sends the change as an update.
    pub fn edit(&self, f: impl FnOnce(&Doc, &mut TransactionMut)) {
        let update = {
            let st = self.shared.lock().unwrap();
            let doc = st.awareness.doc();
            let mut txn = doc.transact_mut();
            f(doc, &mut txn);
            txn.encode_update_v1()
        };
        self.send_raw(Message::Sync(SyncMessage::Update(update)).encode_v1());
    }

    /// Sends query-awareness and waits for the answer. The server handles a connection's
    /// frames in order, so afterwards everything sent before has been applied.
    pub async fn round_trip(&self) {
        let before = self.shared.lock().unwrap().awareness_msgs;
        self.send_raw(Message::AwarenessQuery.encode_v1());
        self.wait_for("query-awareness answer", |v| v.st.awareness_msgs > before)
            .await;
    }

    /// Like [`YClient::round_trip`], but also returns if the server closes the connection.
    pub async fn round_trip_or_closed(&self) {
        let before = self.shared.lock().unwrap().awareness_msgs;
        self.send_raw(Message::AwarenessQuery.encode_v1());
        self.wait_for("query-awareness answer or close", |v| {
            v.st.awareness_msgs > before || v.st.closed.is_some()
        })
        .await;
    }

    /// Reads the doc.
    pub fn read<R>(&self, f: impl FnOnce(&Doc) -> R) -> R {
        let st = self.shared.lock().unwrap();
        f(st.awareness.doc())
    }

    /// Sets this client's awareness state and publishes it.
    pub fn set_awareness(&self, state: Value) {
        let msg = {
            let mut st = self.shared.lock().unwrap();
            st.awareness.set_local_state(state).unwrap();
            let id = st.awareness.client_id();
            Message::Awareness(st.awareness.update_with_clients([id]).unwrap()).encode_v1()
        };
        self.send_raw(msg);
    }

    /// The `user.name` of every awareness state this client sees, sorted.
    pub fn awareness_names(&self) -> Vec<String> {
        let st = self.shared.lock().unwrap();
        names(&st.awareness)
    }

    pub fn client_id(&self) -> u64 {
        self.shared.lock().unwrap().awareness.client_id().get()
    }

    pub fn frames_received(&self) -> u64 {
        self.shared.lock().unwrap().frames
    }

    pub fn closed(&self) -> Option<Closed> {
        self.shared.lock().unwrap().closed.clone()
    }

    /// Waits until `pred` holds, re-checking after every received frame; fails the test after
    /// [`WAIT`].
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&SharedView) -> bool) {
        let mut changed = self.changed.clone();
        let check = |shared: &Mutex<Shared>| {
            let st = shared.lock().unwrap();
            pred(&SharedView { st: &st })
        };
        let wait = async {
            loop {
                if check(&self.shared) {
                    return;
                }
                if changed.changed().await.is_err() {
                    // The reader is gone: one last look.
                    assert!(
                        check(&self.shared),
                        "connection ended ({:?}) before: {what}",
                        self.closed()
                    );
                    return;
                }
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for: {what}"));
    }

    /// Waits for the server to close the connection and returns how.
    pub async fn wait_closed(&self) -> Closed {
        self.wait_for("connection closed", |s| s.closed().is_some())
            .await;
        self.closed().unwrap()
    }

    /// Drops the TCP connection without a close handshake (as a crashed browser tab would).
    pub fn kill(self) {
        self.reader.abort();
        self.writer.abort();
    }
}

/// What [`YClient::wait_for`] predicates see.
pub struct SharedView<'a> {
    st: &'a Shared,
}

impl SharedView<'_> {
    pub fn doc(&self) -> &Doc {
        self.st.awareness.doc()
    }
    pub fn synced(&self) -> bool {
        self.st.synced
    }
    pub fn awareness_names(&self) -> Vec<String> {
        names(&self.st.awareness)
    }
    pub fn closed(&self) -> Option<&Closed> {
        self.st.closed.as_ref()
    }
}

fn names(awareness: &Awareness) -> Vec<String> {
    let mut v: Vec<String> = awareness
        .iter()
        .filter_map(|(_, state)| {
            let json: Value = serde_json::from_str(state.data.as_deref()?).ok()?;
            json.pointer("/user/name")?.as_str().map(str::to_owned)
        })
        .collect();
    v.sort();
    v
}

/// Applies one frame from the server; returns the replies.
fn handle(st: &mut Shared, data: &[u8]) -> Vec<Vec<u8>> {
    let mut replies = Vec::new();
    let messages = okrhub::protocol::decode_frame(data).expect("server sent a valid frame");
    for m in messages {
        match m {
            Message::Sync(SyncMessage::SyncStep1(sv)) => {
                let diff = st.awareness.doc().transact().encode_state_as_update_v1(&sv);
                replies.push(Message::Sync(SyncMessage::SyncStep2(diff)).encode_v1());
            }
            Message::Sync(SyncMessage::SyncStep2(u)) => {
                apply(st, &u);
                st.synced = true;
            }
            Message::Sync(SyncMessage::Update(u)) => apply(st, &u),
            Message::Awareness(u) => {
                st.awareness_msgs += 1;
                st.awareness.apply_update(u).unwrap();
            }
            _ => {}
        }
    }
    replies
}

fn apply(st: &mut Shared, update: &[u8]) {
    let u = Update::decode_v1(update).expect("valid update");
    st.awareness
        .doc()
        .transact_mut()
        .apply_update(u)
        .expect("applies");
}

/// Close code as a number.
pub fn code(c: CloseCode) -> u16 {
    u16::from(c)
}

/// A fresh room id per test, so tests sharing a server never collide.
pub fn room(name: &str) -> String {
    format!("test.{name}.2026-Q3")
}
