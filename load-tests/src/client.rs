//! One simulated user: a yrs `Doc` over a WebSocket, speaking the y-websocket sync protocol.
//!
//! Handshake: send sync step 1 (our state vector), answer the server's step 1 with step 2,
//! apply its step 2 — then the client is synced. Afterwards it takes in every update it
//! receives; an editor also edits at a fixed rate. Latencies are read from the edits themselves
//! (each carries its send timestamp): with immediate apply by an observer on the edited type (a
//! deep observer on the KR root for the title kinds), so a receiver does no more than decode,
//! apply and look at the changed keys or the inserted text; with deferred apply straight from
//! the update bytes, which are integrated later (see [`crate::receive`]).

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
use yrs::types::{Delta, EntryChange, Event, Events, ToJson};
use yrs::updates::decoder::{Decode, DecoderV1};
use yrs::updates::encoder::Encode;
use yrs::{
    Any, DeepObservable, Doc, GetString, Map, MapRef, Observable, Out, ReadTxn, Snapshot, Text,
    TextRef, Transact, TransactionMut, Update,
};

use crate::config::{ApplyMode, EditKind, MAX_TICK_RATE};
use crate::receive::{self, Deferred, Deliveries, Edit};
use crate::seed;
use crate::stats::Shared;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Longest a connection may take from TCP connect to synced.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

/// The read buffer of a connection: small, because thousands of idle clients must not cost
/// 128 KiB each.
pub const READ_BUFFER: usize = 16 * 1024;

/// The read buffer of a deferred-apply client. tungstenite zero-fills the free part of its read
/// buffer before every read, which at 16 KiB was the largest single cost of a cheap delivery;
/// 4 KiB still takes ~80 small updates per read.
pub const DEFERRED_READ_BUFFER: usize = 4 * 1024;

fn ws_config(read_buffer: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(read_buffer)
        .max_message_size(Some(256 << 20))
        .max_frame_size(Some(256 << 20))
}

/// Opens a WebSocket with TCP_NODELAY.
pub async fn connect(url: &str) -> Result<Ws> {
    connect_with(url, READ_BUFFER).await
}

/// Opens a WebSocket with TCP_NODELAY and a read buffer of `read_buffer` bytes.
pub async fn connect_with(url: &str, read_buffer: usize) -> Result<Ws> {
    let config = ws_config(read_buffer);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .with_context(|| format!("connect {url}"))?;
    Ok(ws)
}

pub(crate) fn bin(bytes: Vec<u8>) -> WsMessage {
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
    /// Deferred apply: integrate the kept updates now, then report to
    /// [`Shared::flush_done`] with this epoch. Also stops editing.
    Flush(u64),
    /// Report and disconnect.
    Stop,
}

/// One client of a run.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub room: usize,
    /// Its index in the room (editors are the first ones).
    pub client: usize,
    pub url: String,
    /// `Some(i)`: this client edits, as editor `i` of its room.
    pub editor: Option<u32>,
    /// Where in the edit period its ticks fall, in `[0, 1)` (spreads editors out).
    pub phase: f64,
    /// Editors in its room.
    pub room_editors: usize,
    pub kind: EditKind,
    pub apply: ApplyMode,
}

/// A client's final state.
#[derive(Debug)]
pub struct Outcome {
    pub room: usize,
    /// State vector and delete set: equal snapshots mean equal docs.
    pub snapshot: Option<Snapshot>,
    /// The edited type's contents (map as JSON-like `Any`, the text, or the KR root the title
    /// kinds type into).
    pub content: Option<Any>,
    /// Entries of the preload map `p`.
    pub preload_len: u32,
    /// Entries of the roots an OKR seed writes.
    pub seed_counts: seed::Counts,
    pub error: Option<String>,
}

impl Outcome {
    /// A client that never synced.
    fn failed(room: usize, error: String) -> Self {
        Outcome {
            room,
            snapshot: None,
            content: None,
            preload_len: 0,
            seed_counts: seed::Counts::default(),
            error: Some(error),
        }
    }
}

struct Docs {
    doc: Doc,
    map: MapRef,
    text: TextRef,
    preload: MapRef,
    /// `key_results`, which the server projects (`okr-title`).
    key_results: MapRef,
    /// `draft_key_results`, the unprojected copy (`draft-title`).
    drafts: MapRef,
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
        let key_results = doc.get_or_insert_map(seed::KEY_RESULTS_ROOT);
        let drafts = doc.get_or_insert_map(seed::DRAFTS_ROOT);
        Docs {
            doc,
            map,
            text,
            preload,
            key_results,
            drafts,
        }
    }

    fn outcome(&self, room: usize, kind: EditKind, error: Option<String>) -> Outcome {
        let txn = self.doc.transact();
        let content = match kind {
            EditKind::Map => self.map.to_json(&txn),
            EditKind::Text => Any::String(self.text.get_string(&txn).into()),
            EditKind::OkrTitle => self.key_results.to_json(&txn),
            EditKind::DraftTitle => self.drafts.to_json(&txn),
        };
        Outcome {
            room,
            snapshot: Some(txn.snapshot()),
            content: Some(content),
            preload_len: self.preload.len(&txn),
            seed_counts: seed::Counts::of(&txn),
            error,
        }
    }
}

/// Parses a map key `e{idx}`.
fn editor_of_key(key: &str) -> Option<u32> {
    key.strip_prefix('e')?.parse().ok()
}

/// The origin of an editor's own edit transactions: observers skip them (a client never counts
/// its own edits) without computing the event.
const OWN_EDIT: &str = "edit";

fn is_own_edit(txn: &TransactionMut) -> bool {
    txn.origin()
        .is_some_and(|o| o.as_ref() == OWN_EDIT.as_bytes())
}

/// Reports the map edits a transaction brought (immediate apply, and the integration of
/// deferred updates, where `deliveries` drops what was already counted).
fn observe_map(
    deliveries: Arc<Deliveries>,
) -> impl Fn(&TransactionMut, &MapEvent) + Send + Sync + 'static {
    move |txn, ev| {
        if is_own_edit(txn) {
            return;
        }
        for (key, change) in ev.keys(txn) {
            let value = match change {
                EntryChange::Inserted(v) | EntryChange::Updated(_, v) => v,
                EntryChange::Removed(_) => continue,
            };
            if let Out::Any(v) = value {
                if let Some(edit) = receive::read_map_value(v) {
                    if editor_of_key(key) == Some(edit.editor) {
                        deliveries.record(edit);
                    }
                }
            }
        }
    }
}

/// Parses the tokens `"{idx}:{seq}:{ts};"` of inserted text, skipping anything else.
pub fn parse_text_tokens(s: &str) -> impl Iterator<Item = Edit> + '_ {
    s.split(';').filter_map(receive::parse_text_token)
}

/// Reports the text tokens a text change inserted.
fn record_inserted(deliveries: &Deliveries, txn: &TransactionMut, ev: &TextEvent) {
    for d in ev.delta(txn) {
        if let Delta::Inserted(Out::Any(Any::String(s)), _) = d {
            for edit in parse_text_tokens(s) {
                deliveries.record(edit);
            }
        }
    }
}

/// Reports the text edits a transaction brought.
fn observe_text(
    deliveries: Arc<Deliveries>,
) -> impl Fn(&TransactionMut, &TextEvent) + Send + Sync + 'static {
    move |txn, ev| {
        if !is_own_edit(txn) {
            record_inserted(&deliveries, txn, ev);
        }
    }
}

/// Reports the text edits a transaction brought anywhere under a KR root (deep observer): the
/// tokens typed into nested `Y.Text` titles. Other changes (the seed's maps) are ignored.
fn observe_titles(
    deliveries: Arc<Deliveries>,
) -> impl Fn(&TransactionMut, &Events) + Send + Sync + 'static {
    move |txn, events| {
        if is_own_edit(txn) {
            return;
        }
        for ev in events.iter() {
            if let Event::Text(ev) = ev {
                record_inserted(&deliveries, txn, ev);
            }
        }
    }
}

/// Has `deliveries` count the edits of `kind` that reach `d`.
fn observe_edits(d: &Docs, kind: EditKind, deliveries: Arc<Deliveries>) {
    const KEY: &str = "okrhub-load";
    match kind {
        EditKind::Map => d.map.observe(KEY, observe_map(deliveries)),
        EditKind::Text => d.text.observe(KEY, observe_text(deliveries)),
        EditKind::OkrTitle => d.key_results.observe_deep(KEY, observe_titles(deliveries)),
        EditKind::DraftTitle => d.drafts.observe_deep(KEY, observe_titles(deliveries)),
    }
}

/// Where an editor's edits go, resolved once its doc is synced.
enum Slot {
    /// Its key `e{idx}` of the map `m`.
    MapKey(String),
    /// The end of a `Y.Text`: `t`, or a seeded KR's title.
    Text(TextRef),
}

/// The slot of `editor` for `kind`. The title kinds need the seeded KR (synced): editor `i`
/// types into the title of KR `(i mod 36) + 1` of the kind's root.
fn edit_slot(d: &Docs, kind: EditKind, editor: u32) -> Result<Slot> {
    if let Some(root) = kind.titles_root() {
        let title = seed::kr_title(&d.doc.transact(), root, &seed::kr_of_editor(editor))?;
        return Ok(Slot::Text(title));
    }
    Ok(match kind {
        EditKind::Text => Slot::Text(d.text.clone()),
        _ => Slot::MapKey(format!("e{editor}")),
    })
}

/// Makes and encodes one edit.
fn make_edit(d: &Docs, slot: &Slot, edit: Edit) -> Vec<u8> {
    let mut txn = d.doc.transact_mut_with(OWN_EDIT);
    match slot {
        Slot::MapKey(key) => {
            d.map
                .insert(&mut txn, key.as_str(), receive::map_value(edit));
        }
        Slot::Text(text) => {
            text.push(&mut txn, &receive::text_token(edit));
        }
    }
    let update = txn.encode_update_v1();
    Message::Sync(SyncMessage::Update(update)).encode_v1()
}

/// When an editor edits. Up to [`MAX_TICK_RATE`] it is one edit per tick of an interval of
/// `1 / rate`. Above, a tokio interval cannot tick faster, so it ticks every millisecond and
/// sends `rate / 1000` edits per tick, carrying the fraction over to the next tick. Missed ticks
/// are skipped, not made up: a generator that falls behind sends less, which `edits_per_s`
/// shows.
struct Pacer {
    interval: Interval,
    per_tick: PerTick,
}

impl Pacer {
    fn new(rate: f64, phase: f64) -> Self {
        let ticks_per_s = rate.min(MAX_TICK_RATE);
        let period = Duration::from_secs_f64(1.0 / ticks_per_s);
        let mut interval = tokio::time::interval_at(Instant::now() + period.mul_f64(phase), period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
        Pacer {
            interval,
            per_tick: PerTick::new(rate / ticks_per_s),
        }
    }

    /// Waits for the next tick and returns how many edits are due (1 for rates up to 1000/s).
    async fn due(&mut self) -> u32 {
        self.interval.tick().await;
        self.per_tick.next()
    }
}

/// Edits per tick when that is not a whole number: the fraction is carried over.
struct PerTick {
    per_tick: f64,
    credit: f64,
}

impl PerTick {
    fn new(per_tick: f64) -> Self {
        PerTick {
            per_tick,
            credit: 0.0,
        }
    }

    fn next(&mut self) -> u32 {
        self.credit += self.per_tick;
        let n = self.credit.floor();
        self.credit -= n;
        n as u32
    }
}

/// The edits due at the next tick of `pacer`; never, without one.
async fn tick(pacer: &mut Option<Pacer>) -> u32 {
    match pacer {
        Some(p) => p.due().await,
        None => std::future::pending().await,
    }
}

/// A synced client's handling of the frames it receives, per [`ApplyMode`].
struct Inbox {
    apply: ApplyMode,
    deliveries: Arc<Deliveries>,
    /// Deferred mode: the updates read but not yet integrated.
    deferred: Deferred,
    /// Scratch space of the deferred path.
    updates: Vec<receive::Span>,
    edits: Vec<Edit>,
    /// Replies (a sync step 2 for a step 1) waiting to be sent.
    replies: Vec<Vec<u8>>,
}

impl Inbox {
    fn new(apply: ApplyMode, deliveries: Arc<Deliveries>) -> Self {
        Inbox {
            apply,
            deliveries,
            deferred: Deferred::default(),
            updates: Vec::new(),
            edits: Vec::new(),
            replies: Vec::new(),
        }
    }

    /// Takes in one frame. Deferred: reads its edits, reports them and keeps its updates. If
    /// the cheap path cannot read the frame, or in immediate mode, applies it (after any kept
    /// updates, so that the doc sees them in order), queueing replies in `self.replies`.
    fn on_frame(&mut self, doc: &Doc, frame: &[u8], shared: &Shared) -> Result<()> {
        if self.apply == ApplyMode::Deferred {
            if receive::read_frame(frame, &mut self.updates, &mut self.edits) {
                for edit in self.edits.drain(..) {
                    self.deliveries.record(edit);
                }
                for span in self.updates.drain(..) {
                    self.deferred.push(&frame[span]);
                }
                return Ok(());
            }
            shared.on_apply_fallback();
            self.flush(doc)?;
        }
        apply_frame(doc, frame, &mut self.replies)?;
        Ok(())
    }

    /// Integrates the kept updates; returns how many.
    fn flush(&mut self, doc: &Doc) -> Result<usize> {
        self.deferred.apply_to(doc)
    }
}

/// Runs one client: waits for a ramp permit, connects, syncs (reporting the join time on
/// `joined`), then follows `ctl` until [`Control::Stop`], integrates any updates it kept, and
/// returns its final state.
pub async fn run_client(
    spec: ClientSpec,
    shared: Arc<Shared>,
    ramp: Arc<Semaphore>,
    mut ctl: watch::Receiver<Control>,
    joined: mpsc::UnboundedSender<Result<Duration, String>>,
) -> Outcome {
    let d = Docs::new();
    let deliveries = Arc::new(Deliveries::new(
        shared.clone(),
        spec.room,
        spec.client,
        spec.editor,
        spec.room_editors,
    ));
    observe_edits(&d, spec.kind, deliveries.clone());

    let permit = ramp
        .acquire_owned()
        .await
        .expect("ramp semaphore is never closed");
    let started = Instant::now();
    let res = tokio::time::timeout(JOIN_TIMEOUT, async {
        let read_buffer = match spec.apply {
            ApplyMode::Immediate => READ_BUFFER,
            ApplyMode::Deferred => DEFERRED_READ_BUFFER,
        };
        let mut ws = connect_with(&spec.url, read_buffer).await?;
        handshake(&mut ws, &d.doc).await?;
        // An editor of a title kind needs its KR in the synced doc: fail the join if it is not.
        let slot = spec
            .editor
            .map(|e| edit_slot(&d, spec.kind, e))
            .transpose()?;
        Ok::<_, anyhow::Error>((ws, slot))
    })
    .await
    .unwrap_or_else(|_| Err(anyhow!("not synced within {JOIN_TIMEOUT:?}")));
    drop(permit);
    let (mut ws, slot) = match res {
        Ok(joined_ok) => {
            let _ = joined.send(Ok(started.elapsed()));
            joined_ok
        }
        Err(e) => {
            let msg = format!("{e:#}");
            let _ = joined.send(Err(msg.clone()));
            shared.session_ended();
            return Outcome::failed(spec.room, msg);
        }
    };
    drop(joined);

    let mut inbox = Inbox::new(spec.apply, deliveries);
    let mut error = session(&mut ws, &d, &spec, slot, &shared, &mut ctl, &mut inbox).await;
    shared.session_ended();
    if let Err(e) = inbox.flush(&d.doc) {
        error.get_or_insert(format!("{e:#}"));
    }
    let outcome = d.outcome(spec.room, spec.kind, error);
    if outcome.error.is_none() {
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    }
    outcome
}

/// Sends the `n` edits due at a tick, in one write where the socket allows.
async fn send_edits(
    ws: &mut Ws,
    d: &Docs,
    spec: &ClientSpec,
    shared: &Shared,
    slot: &Slot,
    seq: &mut u64,
    n: u32,
) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    let editor = spec.editor.expect("only editors tick");
    for _ in 0..n {
        *seq += 1;
        let edit = Edit {
            editor,
            seq: *seq,
            ts_us: shared.now_us(),
        };
        shared.on_send(spec.room, editor, *seq);
        ws.feed(bin(make_edit(d, slot, edit))).await?;
    }
    ws.flush().await?;
    Ok(())
}

/// The synced part of a client's life (`slot`: where an editor's edits go). Returns why it
/// ended early, if it did.
async fn session(
    ws: &mut Ws,
    d: &Docs,
    spec: &ClientSpec,
    slot: Option<Slot>,
    shared: &Shared,
    ctl: &mut watch::Receiver<Control>,
    inbox: &mut Inbox,
) -> Option<String> {
    let mut seq = 0u64;
    let mut pacer: Option<Pacer> = None;
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(WsMessage::Binary(data))) => {
                    shared.on_frame();
                    if let Err(e) = inbox.on_frame(&d.doc, &data, shared) {
                        return Some(format!("{e:#}"));
                    }
                    for r in inbox.replies.drain(..) {
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
            n = tick(&mut pacer) => {
                let slot = slot.as_ref().expect("only editors tick");
                if let Err(e) = send_edits(ws, d, spec, shared, slot, &mut seq, n).await {
                    return Some(format!("send: {e:#}"));
                }
            }
            changed = ctl.changed() => {
                if changed.is_err() {
                    return None;
                }
                let c = *ctl.borrow_and_update();
                match c {
                    Control::Stop => return None,
                    Control::Idle => pacer = None,
                    Control::Flush(epoch) => {
                        pacer = None;
                        match inbox.flush(&d.doc) {
                            Ok(n) => shared.flush_done(epoch, n),
                            Err(e) => return Some(format!("{e:#}")),
                        }
                    }
                    Control::Edit(rate) => {
                        if slot.is_some() {
                            pacer = Some(Pacer::new(rate, spec.phase));
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
        let e = |editor, seq, ts_us| Edit { editor, seq, ts_us };
        assert_eq!(v, vec![e(3, 7, 123456), e(0, 1, 9)]);
        assert_eq!(editor_of_key("e12"), Some(12));
        assert_eq!(editor_of_key("x12"), None);
    }

    #[test]
    fn fractional_edits_per_tick() {
        let mut one = PerTick::new(1.0);
        assert!((0..1000).all(|_| one.next() == 1));
        // 2500 edits/s at 1000 ticks/s: 2 or 3 per tick, 2500 per 1000 ticks.
        let mut p = PerTick::new(2.5);
        let counts: Vec<u32> = (0..1000).map(|_| p.next()).collect();
        assert!(counts.iter().all(|&n| n == 2 || n == 3));
        assert_eq!(counts.iter().sum::<u32>(), 2500);
    }

    const KINDS: [EditKind; 4] = [
        EditKind::Map,
        EditKind::Text,
        EditKind::OkrTitle,
        EditKind::DraftTitle,
    ];

    /// A receiver for `kind`: its doc observed, and its inbox.
    fn receiver(shared: &Arc<Shared>, kind: EditKind, apply: ApplyMode) -> (Docs, Inbox) {
        let b = Docs::new();
        let deliveries = Arc::new(Deliveries::new(shared.clone(), 0, 1, None, 8));
        observe_edits(&b, kind, deliveries.clone());
        (b, Inbox::new(apply, deliveries))
    }

    /// Seeds `a` with an OKR set and gives `b` the same doc, as a sync would.
    fn seed_both(a: &Docs, b: &Docs) {
        let spec = seed::SeedSpec::new(Some(20), None);
        let now = seed::CYCLE_START_MS + 30 * 86_400_000;
        for u in seed::write(&a.doc, &seed::layout(&spec, 0, now)) {
            apply_update(&b.doc, &u).unwrap();
        }
    }

    #[test]
    fn edits_round_trip_immediate_and_deferred() {
        // Two docs, no network: an edit of one, taken in by the other, is timed once.
        for apply in [ApplyMode::Immediate, ApplyMode::Deferred] {
            for kind in KINDS {
                let shared = Arc::new(Shared::new(1, 2));
                let a = Docs::new();
                let (b, mut inbox) = receiver(&shared, kind, apply);
                if kind.titles_root().is_some() {
                    seed_both(&a, &b);
                }
                shared.start_window();
                shared.on_send(0, 4, 1);
                let edit = Edit {
                    editor: 4,
                    seq: 1,
                    ts_us: shared.now_us(),
                };
                let slot = edit_slot(&a, kind, 4).unwrap();
                let frame = make_edit(&a, &slot, edit);
                inbox.on_frame(&b.doc, &frame, &shared).unwrap();
                assert!(shared.all_complete(), "{apply:?} {kind:?}");
                let integrated = b.doc.transact().state_vector() == a.doc.transact().state_vector();
                assert_eq!(
                    integrated,
                    apply == ApplyMode::Immediate,
                    "{apply:?} {kind:?}"
                );
                // Integrating the kept update converges and does not count it again.
                assert_eq!(inbox.flush(&b.doc).unwrap(), usize::from(!integrated));
                assert_eq!(
                    b.doc.transact().state_vector(),
                    a.doc.transact().state_vector()
                );
                assert_eq!(
                    a.outcome(0, kind, None).content,
                    b.outcome(0, kind, None).content
                );
                shared.end_window();
                let h = shared.harvest();
                assert_eq!(
                    (
                        h.sent,
                        h.complete.len(),
                        h.deliveries.len(),
                        h.delivered_in_window
                    ),
                    (1, 1, 1, 1),
                    "{apply:?} {kind:?}"
                );
            }
        }
    }

    #[test]
    fn title_edits_type_at_the_end_of_their_kr_title() {
        let a = Docs::new();
        let b = Docs::new();
        assert!(
            edit_slot(&a, EditKind::OkrTitle, 0).is_err(),
            "unseeded: no KR to type into"
        );
        seed_both(&a, &b);
        let edit = |editor, seq| Edit {
            editor,
            seq,
            ts_us: 77,
        };
        // Editor 37 types into kr-02 (37 mod 36 = 1), editor 3 into kr-04.
        for (kind, editor) in [(EditKind::OkrTitle, 37), (EditKind::DraftTitle, 3)] {
            let slot = edit_slot(&a, kind, editor).unwrap();
            make_edit(&a, &slot, edit(editor, 1));
            make_edit(&a, &slot, edit(editor, 2));
        }
        let txn = a.doc.transact();
        let title = |root, kr| seed::kr_title(&txn, root, kr).unwrap().get_string(&txn);
        let kr02 = title(seed::KEY_RESULTS_ROOT, "kr-02");
        assert!(kr02.ends_with("37:1:77;37:2:77;"), "{kr02}");
        assert!(!title(seed::DRAFTS_ROOT, "kr-02").contains(';'));
        assert!(title(seed::DRAFTS_ROOT, "kr-04").ends_with("3:1:77;3:2:77;"));
        assert!(!title(seed::KEY_RESULTS_ROOT, "kr-04").contains(';'));
        // The outcome's content is the edited root: drafts differ from key_results now.
        drop(txn);
        let okr = a.outcome(0, EditKind::OkrTitle, None).content.unwrap();
        let draft = a.outcome(0, EditKind::DraftTitle, None).content.unwrap();
        assert_ne!(okr, draft);
        assert_eq!(a.outcome(0, EditKind::Map, None).seed_counts.checkins, 20);
    }

    #[test]
    fn deferred_falls_back_for_a_sync_step() {
        let shared = Arc::new(Shared::new(1, 2));
        let a = Docs::new();
        let (b, mut inbox) = receiver(&shared, EditKind::Map, ApplyMode::Deferred);
        shared.start_window();
        for seq in 1..=3 {
            shared.on_send(0, 1, seq);
        }
        let edit = |seq| Edit {
            editor: 1,
            seq,
            ts_us: shared.now_us(),
        };
        // Two updates are kept; then a step 2 holding the third (and the first two again).
        let slot = Slot::MapKey("e1".into());
        for seq in 1..=2 {
            let frame = make_edit(&a, &slot, edit(seq));
            inbox.on_frame(&b.doc, &frame, &shared).unwrap();
        }
        make_edit(&a, &slot, edit(3));
        let full = a
            .doc
            .transact()
            .encode_state_as_update_v1(&Default::default());
        let step2 = Message::Sync(SyncMessage::SyncStep2(full)).encode_v1();
        inbox.on_frame(&b.doc, &step2, &shared).unwrap();
        assert!(inbox.deferred.is_empty(), "kept updates applied first");
        assert!(shared.all_complete());
        assert_eq!(
            b.doc.transact().state_vector(),
            a.doc.transact().state_vector()
        );
        shared.end_window();
        let h = shared.harvest();
        assert_eq!((h.deliveries.len(), h.apply_fallbacks), (3, 1));
    }
}
