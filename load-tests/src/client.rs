//! One simulated user: a yrs `Doc` over a WebSocket, speaking the y-websocket sync protocol.
//!
//! Handshake: send sync step 1 (our state vector), answer the server's step 1 with step 2,
//! apply its step 2 — then the client is synced. Afterwards it applies every update it
//! receives; an editor also edits at a fixed rate. Latencies are read from the edits themselves
//! (each carries its send timestamp) by an observer on the edited type, so a receiver does no
//! more than decode, apply and look at the changed keys.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use yrs::sync::{Message, MessageReader, SyncMessage};
use yrs::types::map::MapEvent;
use yrs::types::text::TextEvent;
use yrs::types::{Delta, EntryChange, ToJson};
use yrs::updates::decoder::{Decode, DecoderV1};
use yrs::updates::encoder::Encode;
use yrs::{
    Any, Doc, GetString, Map, MapRef, Number, Observable, Out, ReadTxn, Snapshot, Text, TextRef,
    Transact, TransactionMut, Update,
};

use crate::config::EditKind;
use crate::stats::Shared;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Longest a connection may take from TCP connect to synced.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Small read buffers: thousands of idle clients must not cost 128 KiB each.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .max_message_size(Some(256 << 20))
        .max_frame_size(Some(256 << 20))
}

/// Opens a WebSocket with TCP_NODELAY.
pub async fn connect(url: &str) -> Result<Ws> {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), true)
        .await
        .with_context(|| format!("connect {url}"))?;
    Ok(ws)
}

fn bin(bytes: Vec<u8>) -> WsMessage {
    WsMessage::Binary(bytes.into())
}

/// Sends sync step 1 and processes frames until the server's step 2 has been applied.
pub async fn handshake(ws: &mut Ws, doc: &Doc) -> Result<()> {
    let sv = doc.transact().state_vector();
    ws.send(bin(Message::Sync(SyncMessage::SyncStep1(sv)).encode_v1()))
        .await?;
    let mut replies = Vec::new();
    loop {
        match ws.next().await {
            Some(Ok(WsMessage::Binary(data))) => {
                let synced = apply_frame(doc, &data, &mut replies)?;
                for r in replies.drain(..) {
                    ws.send(bin(r)).await?;
                }
                if synced {
                    return Ok(());
                }
            }
            Some(Ok(WsMessage::Close(f))) => bail!(
                "server closed the connection during the handshake: {}",
                f.map(|f| format!("{} {}", u16::from(f.code), f.reason))
                    .unwrap_or_default()
            ),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e).context("during the handshake"),
            None => bail!("connection ended during the handshake"),
        }
    }
}

/// Applies every message of one frame to `doc`, queueing replies (step 2 for a step 1).
/// Returns whether the frame held a sync step 2.
pub fn apply_frame(doc: &Doc, data: &[u8], replies: &mut Vec<Vec<u8>>) -> Result<bool> {
    let mut decoder = DecoderV1::from(data);
    let mut step2 = false;
    for msg in MessageReader::new(&mut decoder) {
        match msg.context("malformed y-sync message")? {
            Message::Sync(SyncMessage::SyncStep1(sv)) => {
                let diff = doc.transact().encode_state_as_update_v1(&sv);
                replies.push(Message::Sync(SyncMessage::SyncStep2(diff)).encode_v1());
            }
            Message::Sync(SyncMessage::SyncStep2(u)) => {
                apply_update(doc, &u)?;
                step2 = true;
            }
            Message::Sync(SyncMessage::Update(u)) => apply_update(doc, &u)?,
            _ => {}
        }
    }
    Ok(step2)
}

fn apply_update(doc: &Doc, bytes: &[u8]) -> Result<()> {
    let u = Update::decode_v1(bytes).context("undecodable update")?;
    doc.transact_mut()
        .apply_update(u)
        .map_err(|e| anyhow!("update does not apply: {e}"))
}

/// What the controller tells the clients.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Control {
    /// Connected, not editing.
    Idle,
    /// Editors edit at this many edits/s.
    Edit(f64),
    /// Report and disconnect.
    Stop,
}

/// One client of a run.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub room: usize,
    pub url: String,
    /// `Some(i)`: this client edits, as editor `i` of its room.
    pub editor: Option<u32>,
    /// Where in the edit period its ticks fall, in `[0, 1)` (spreads editors out).
    pub phase: f64,
}

/// A client's final state.
#[derive(Debug)]
pub struct Outcome {
    pub room: usize,
    /// State vector and delete set: equal snapshots mean equal docs.
    pub snapshot: Option<Snapshot>,
    /// The edited type's contents (map as JSON-like `Any`, or the text).
    pub content: Option<Any>,
    /// Entries of the preload map `p`.
    pub preload_len: u32,
    pub error: Option<String>,
}

struct Docs {
    doc: Doc,
    map: MapRef,
    text: TextRef,
    preload: MapRef,
}

/// A random 32-bit client id, as the JS `yjs` client makes (`random.uint32()`). yrs would pick
/// up to 53 bits; y-sweet 0.9.1 (built on yrs 0.19) mangles ids of 2^32 and above when it
/// relays an update, which made every room diverge: real browser clients never send such ids.
fn js_client_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    (h.finish() as u32).max(1) as u64
}

impl Docs {
    fn new() -> Self {
        // Root types are fetched before any transaction exists (fetching one inside an open
        // transaction of the same doc would deadlock).
        let doc = Doc::with_client_id(js_client_id());
        let map = doc.get_or_insert_map("m");
        let text = doc.get_or_insert_text("t");
        let preload = doc.get_or_insert_map("p");
        Docs {
            doc,
            map,
            text,
            preload,
        }
    }

    fn outcome(&self, room: usize, kind: EditKind, error: Option<String>) -> Outcome {
        let txn = self.doc.transact();
        let content = match kind {
            EditKind::Map => self.map.to_json(&txn),
            EditKind::Text => Any::String(self.text.get_string(&txn).into()),
        };
        Outcome {
            room,
            snapshot: Some(txn.snapshot()),
            content: Some(content),
            preload_len: self.preload.len(&txn),
            error,
        }
    }
}

/// An integer from an `Any` (lib0 may carry it as a float).
fn int(a: &Any) -> Option<i64> {
    match a {
        Any::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// Parses a map key `e{idx}`.
fn editor_of_key(key: &str) -> Option<u32> {
    key.strip_prefix('e')?.parse().ok()
}

fn observe_map(
    shared: Arc<Shared>,
    room: usize,
    own: Option<u32>,
) -> impl Fn(&TransactionMut, &MapEvent) + Send + Sync + 'static {
    move |txn, ev| {
        for (key, change) in ev.keys(txn) {
            let Some(editor) = editor_of_key(key) else {
                continue;
            };
            if Some(editor) == own {
                continue;
            }
            let value = match change {
                EntryChange::Inserted(v) | EntryChange::Updated(_, v) => v,
                EntryChange::Removed(_) => continue,
            };
            if let Out::Any(Any::Array(parts)) = value {
                if let [ts, seq] = parts.as_ref() {
                    if let (Some(ts), Some(seq)) = (int(ts), int(seq)) {
                        shared.on_delivery(room, editor, seq as u64, ts);
                    }
                }
            }
        }
    }
}

/// Parses the tokens `"{idx}:{seq}:{ts};"` of inserted text.
pub fn parse_text_tokens(s: &str) -> impl Iterator<Item = (u32, u64, i64)> + '_ {
    s.split(';').filter_map(|tok| {
        let mut it = tok.split(':');
        let e = it.next()?.parse().ok()?;
        let seq = it.next()?.parse().ok()?;
        let ts = it.next()?.parse().ok()?;
        Some((e, seq, ts))
    })
}

fn observe_text(
    shared: Arc<Shared>,
    room: usize,
    own: Option<u32>,
) -> impl Fn(&TransactionMut, &TextEvent) + Send + Sync + 'static {
    move |txn, ev| {
        for d in ev.delta(txn) {
            if let Delta::Inserted(Out::Any(Any::String(s)), _) = d {
                for (editor, seq, ts) in parse_text_tokens(s) {
                    if Some(editor) != own {
                        shared.on_delivery(room, editor, seq, ts);
                    }
                }
            }
        }
    }
}

/// Makes and encodes one edit.
fn make_edit(d: &Docs, kind: EditKind, editor: u32, key: &str, seq: u64, ts: i64) -> Vec<u8> {
    let mut txn = d.doc.transact_mut();
    match kind {
        EditKind::Map => {
            let value = Any::Array(Arc::from(vec![
                Any::Number(Number::Int(ts)),
                Any::Number(Number::Int(seq as i64)),
            ]));
            d.map.insert(&mut txn, key, value);
        }
        EditKind::Text => {
            d.text.push(&mut txn, &format!("{editor}:{seq}:{ts};"));
        }
    }
    let update = txn.encode_update_v1();
    Message::Sync(SyncMessage::Update(update)).encode_v1()
}

async fn tick(interval: &mut Option<Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn edit_interval(rate: f64, phase: f64) -> Interval {
    let period = Duration::from_secs_f64(1.0 / rate);
    let mut i = tokio::time::interval_at(Instant::now() + period.mul_f64(phase), period);
    i.set_missed_tick_behavior(MissedTickBehavior::Skip);
    i
}

/// Runs one client: waits for a ramp permit, connects, syncs (reporting the join time on
/// `joined`), then follows `ctl` until [`Control::Stop`], and returns its final state.
pub async fn run_client(
    spec: ClientSpec,
    kind: EditKind,
    shared: Arc<Shared>,
    ramp: Arc<Semaphore>,
    mut ctl: watch::Receiver<Control>,
    joined: mpsc::UnboundedSender<Result<Duration, String>>,
) -> Outcome {
    let d = Docs::new();
    match kind {
        EditKind::Map => d.map.observe(
            "okrhub-load",
            observe_map(shared.clone(), spec.room, spec.editor),
        ),
        EditKind::Text => d.text.observe(
            "okrhub-load",
            observe_text(shared.clone(), spec.room, spec.editor),
        ),
    }

    let permit = ramp
        .acquire_owned()
        .await
        .expect("ramp semaphore is never closed");
    let started = Instant::now();
    let res = tokio::time::timeout(JOIN_TIMEOUT, async {
        let mut ws = connect(&spec.url).await?;
        handshake(&mut ws, &d.doc).await?;
        Ok::<_, anyhow::Error>(ws)
    })
    .await
    .unwrap_or_else(|_| Err(anyhow!("not synced within {JOIN_TIMEOUT:?}")));
    drop(permit);
    let mut ws = match res {
        Ok(ws) => {
            let _ = joined.send(Ok(started.elapsed()));
            ws
        }
        Err(e) => {
            let msg = format!("{e:#}");
            let _ = joined.send(Err(msg.clone()));
            return Outcome {
                room: spec.room,
                snapshot: None,
                content: None,
                preload_len: 0,
                error: Some(msg),
            };
        }
    };
    drop(joined);

    let error = session(&mut ws, &d, &spec, kind, &shared, &mut ctl).await;
    let outcome = d.outcome(spec.room, kind, error);
    if outcome.error.is_none() {
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    }
    outcome
}

/// The synced part of a client's life. Returns why it ended early, if it did.
async fn session(
    ws: &mut Ws,
    d: &Docs,
    spec: &ClientSpec,
    kind: EditKind,
    shared: &Shared,
    ctl: &mut watch::Receiver<Control>,
) -> Option<String> {
    let key = spec.editor.map(|e| format!("e{e}")).unwrap_or_default();
    let mut seq = 0u64;
    let mut interval: Option<Interval> = None;
    let mut replies = Vec::new();
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(WsMessage::Binary(data))) => {
                    shared.on_frame();
                    if let Err(e) = apply_frame(&d.doc, &data, &mut replies) {
                        return Some(format!("{e:#}"));
                    }
                    for r in replies.drain(..) {
                        if let Err(e) = ws.send(bin(r)).await {
                            return Some(format!("send: {e}"));
                        }
                    }
                }
                Some(Ok(WsMessage::Close(f))) => {
                    return Some(format!(
                        "server closed the connection: {}",
                        f.map(|f| format!("{} {}", u16::from(f.code), f.reason)).unwrap_or_default()
                    ));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Some(format!("receive: {e}")),
                None => return Some("connection ended".into()),
            },
            _ = tick(&mut interval) => {
                let editor = spec.editor.expect("only editors tick");
                seq += 1;
                let ts = shared.now_us();
                shared.on_send(spec.room, editor, seq);
                let frame = make_edit(d, kind, editor, &key, seq, ts);
                if let Err(e) = ws.send(bin(frame)).await {
                    return Some(format!("send: {e}"));
                }
            }
            changed = ctl.changed() => {
                if changed.is_err() {
                    return None;
                }
                let c = *ctl.borrow_and_update();
                match c {
                    Control::Stop => return None,
                    Control::Idle => interval = None,
                    Control::Edit(rate) => {
                        if spec.editor.is_some() {
                            interval = Some(edit_interval(rate, spec.phase));
                        }
                    }
                }
            }
        }
    }
}

/// Writes `entries` map entries of ~100 bytes into the map `p` of the room at `url` (in updates
/// of 1000 entries), then waits until a fresh connection sees them all.
pub async fn preload_room(url: &str, entries: usize) -> Result<()> {
    let d = Docs::new();
    let mut ws = connect(url).await?;
    handshake(&mut ws, &d.doc).await?;
    let filler = "x".repeat(94);
    for start in (0..entries).step_by(1000) {
        let frame = {
            let mut txn = d.doc.transact_mut();
            for i in start..entries.min(start + 1000) {
                d.preload
                    .insert(&mut txn, format!("p{i:06}"), format!("{i:06}{filler}"));
            }
            Message::Sync(SyncMessage::Update(txn.encode_update_v1())).encode_v1()
        };
        ws.send(bin(frame)).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let check = Docs::new();
        let mut probe = connect(url).await?;
        handshake(&mut probe, &check.doc).await?;
        let _ = probe.close(None).await;
        let seen = check.preload.len(&check.doc.transact()) as usize;
        if seen >= entries {
            break;
        }
        if Instant::now() > deadline {
            bail!("preload: a fresh client sees {seen} of {entries} entries after 30 s");
        }
        // Keep reading the preload connection so the server never blocks on it.
        let _ = tokio::time::timeout(Duration::from_millis(100), ws.next()).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_tokens() {
        let v: Vec<_> = parse_text_tokens("3:7:123456;0:1:9;garbage;").collect();
        assert_eq!(v, vec![(3, 7, 123456), (0, 1, 9)]);
        assert_eq!(editor_of_key("e12"), Some(12));
        assert_eq!(editor_of_key("x12"), None);
    }

    #[test]
    fn edits_round_trip_through_the_observer() {
        // Two docs, no network: an edit of one, applied to the other, is timed.
        let shared = Arc::new(Shared::new(1, 2));
        for kind in [EditKind::Map, EditKind::Text] {
            let a = Docs::new();
            let b = Docs::new();
            match kind {
                EditKind::Map => b.map.observe("t", observe_map(shared.clone(), 0, None)),
                EditKind::Text => b.text.observe("t", observe_text(shared.clone(), 0, None)),
            }
            shared.start_window();
            shared.on_send(0, 4, 1);
            let frame = make_edit(&a, kind, 4, "e4", 1, shared.now_us());
            let mut replies = Vec::new();
            apply_frame(&b.doc, &frame, &mut replies).unwrap();
            assert!(shared.all_complete(), "{kind:?}");
            shared.end_window();
            let h = shared.harvest();
            assert_eq!((h.sent, h.complete.len()), (1, 1), "{kind:?}");
        }
    }
}
