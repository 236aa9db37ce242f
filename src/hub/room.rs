//! One loaded room: its yrs doc and awareness, and the connections subscribed to it.
//!
//! # Concurrency
//!
//! Everything about a room sits behind one `std::sync::Mutex` ([`RoomState`]). Critical sections
//! are short and never await: applying an update, encoding a reply, and pushing the resulting
//! frame onto each subscriber's bounded queue. Sockets are written after the lock is released
//! ([`Locked`] runs the [`Kicks`] as it drops): a non-blocking `writev` per recipient, in the
//! thread that made the change, so a slow socket never holds the room up and most deliveries
//! wake no other task. A tokio mutex would buy nothing here (nothing is held across an await)
//! and cost more per update.
//!
//! Holding the lock while queueing gives every subscriber a consistent order: a joining peer
//! is registered, and its sync step 1 queued, under the same lock that orders every broadcast,
//! so it can neither miss an update nor see one twice before its handshake.
//!
//! # One path for every change
//!
//! Every update that changes the doc goes through [`RoomState::commit`]: it gets the room's next
//! log sequence number, is handed to the persister, and is encoded **once** into a frame whose
//! bytes are shared (`Bytes` is reference counted) by every subscriber's queue.
//!
//! # Back-pressure
//!
//! A subscriber whose queue is full is removed on the spot and told to close with 1013: it
//! resyncs when it reconnects. The room never waits for a slow reader and never drops an update
//! for a reader it keeps.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use yrs::block::ClientID;
use yrs::sync::awareness::AwarenessUpdateSummary;
use yrs::sync::{Awareness, AwarenessUpdate, Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

use super::outbox::{Kicks, Outbox};
use crate::identity::UserId;
use crate::live::Projector;
use crate::metrics::Metrics;
use crate::okr;
use crate::protocol::{self, CloseReason};
use crate::room_id::RoomId;
use crate::store::persister::{Persister, StoreUnavailable};
use crate::ws::Opcode;

/// A connection's id within its room.
pub type PeerId = u64;

/// What a connection gets when it joins a room.
pub struct Joined {
    pub peer: PeerId,
    /// Frames to send, in order, and the close signal.
    pub outbox: Arc<Outbox>,
}

/// The room is closing (unloading, or reset after an internal error); join again once
/// [`Room::unloaded`] resolves.
#[derive(Debug, thiserror::Error)]
#[error("room is closing")]
pub struct RoomClosing;

struct RoomState {
    awareness: Awareness,
    peers: HashMap<PeerId, Arc<Outbox>>,
    /// The user of each `/sync` peer that said who it is: the `by` of the events its updates
    /// cause.
    users: HashMap<PeerId, UserId>,
    /// The typed OKR model, its events and the `/live` subscribers.
    live: Projector,
    next_peer: PeerId,
    /// The last log sequence number handed to the persister.
    last_seq: u64,
    /// The log sequence number the last snapshot covers.
    compacted_seq: u64,
    /// Set when the room starts to unload; joins are refused from then on.
    closing: bool,
    /// Set when a panic inside yrs left the doc in doubt: it is never snapshotted again.
    poisoned: bool,
    /// When the last peer left (None while someone is connected).
    idle_since: Option<Instant>,
    /// Which connection published each present awareness state, removed when it leaves. Only
    /// a state that connection actually changed counts, since the JS provider echoes every
    /// state it receives.
    awareness_owner: HashMap<ClientID, PeerId>,
    /// The sync step 2 a client with an empty doc gets — the whole doc, encoded — kept while
    /// the doc does not change: in a quiet room, every fresh joiner after the first costs a
    /// reference-count increment instead of encoding the doc again.
    full_state: Option<Bytes>,
    /// Outboxes given frames under the lock, written when it is released ([`Locked`]).
    kicks: Kicks,
}

/// Why a command was not applied.
#[derive(Debug, thiserror::Error)]
pub enum CommandRefused {
    #[error(transparent)]
    Invalid(okr::CommandError),
    #[error("the room is closing; retry")]
    Closing,
    #[error(transparent)]
    Unavailable(StoreUnavailable),
}

/// Settings a room needs from the hub's config.
#[derive(Debug, Clone)]
pub struct RoomLimits {
    /// Frames a connection may have queued before it is cut off.
    pub send_queue: usize,
}

/// A loaded room. Shared by its connections and the hub's registry.
pub struct Room {
    id: RoomId,
    state: Mutex<RoomState>,
    persister: Persister,
    metrics: Arc<Metrics>,
    limits: RoomLimits,
    unloaded: CancellationToken,
}

impl Room {
    /// A room over `doc`, whose store log ends at `last_seq`; `compacted_seq` is what its
    /// snapshot covers.
    pub fn new(
        id: RoomId,
        doc: Doc,
        last_seq: u64,
        compacted_seq: u64,
        persister: Persister,
        metrics: Arc<Metrics>,
        limits: RoomLimits,
    ) -> Self {
        let live = Projector::new(id.as_str(), &doc, last_seq);
        Room {
            id,
            state: Mutex::new(RoomState {
                live,
                awareness: Awareness::new(doc),
                peers: HashMap::new(),
                users: HashMap::new(),
                next_peer: 1,
                last_seq,
                compacted_seq,
                closing: false,
                poisoned: false,
                idle_since: Some(Instant::now()),
                awareness_owner: HashMap::new(),
                full_state: None,
                kicks: Kicks::default(),
            }),
            persister,
            metrics,
            limits,
            unloaded: CancellationToken::new(),
        }
    }

    pub fn id(&self) -> &RoomId {
        &self.id
    }

    fn lock(&self) -> Locked<'_> {
        // A panic while the lock is held is caught inside (see `receive`), so the lock is
        // never poisoned in practice; if it were, the state is still the best we have.
        Locked {
            guard: Some(self.state.lock().unwrap_or_else(|p| p.into_inner())),
            metrics: &self.metrics,
        }
    }

    /// Subscribes a new connection. Its queue starts with the server's sync step 1 and, if
    /// anyone is present, the awareness states.
    pub fn join(&self, user: Option<UserId>) -> Result<Joined, RoomClosing> {
        let mut st = self.lock();
        if st.closing {
            return Err(RoomClosing);
        }
        let outbox = Arc::new(Outbox::new(self.limits.send_queue.max(4), Opcode::Binary));
        let sv = st.awareness.doc().transact().state_vector();
        let _ = outbox.push(protocol::encode(&Message::Sync(SyncMessage::SyncStep1(sv))));
        if let Ok(update) = st.awareness.update() {
            if !update.clients.is_empty() {
                let _ = outbox.push(protocol::encode(&Message::Awareness(update)));
            }
        }
        let peer = st.next_peer;
        st.next_peer += 1;
        st.peers.insert(peer, outbox.clone());
        if let Some(user) = user {
            st.users.insert(peer, user);
        }
        st.idle_since = None;
        Ok(Joined { peer, outbox })
    }

    /// Unsubscribes a connection and removes the awareness states it published, telling the
    /// others they are gone.
    pub fn leave(&self, peer: PeerId) {
        let mut st = self.lock();
        st.remove_peer(peer, &self.metrics);
    }

    /// Handles one binary frame from `peer`. An error is the reason to close that connection;
    /// the room itself is never left half-changed by a bad frame.
    pub fn receive(&self, peer: PeerId, frame: Bytes) -> Result<(), CloseReason> {
        let messages = protocol::decode_frame(&frame).map_err(CloseReason::malformed)?;
        // Decode updates before taking the lock: it is the costly, failure-prone part.
        let single = messages.len() == 1;
        let mut actions = Vec::with_capacity(messages.len());
        for message in messages {
            actions.push(match message {
                Message::Sync(SyncMessage::SyncStep1(sv)) => Action::Step1(sv),
                Message::Sync(SyncMessage::SyncStep2(raw))
                | Message::Sync(SyncMessage::Update(raw)) => {
                    if protocol::is_empty_update(&raw) {
                        continue;
                    }
                    let update = Update::decode_v1(&raw).map_err(CloseReason::malformed)?;
                    // Relay the client's own frame when it is exactly one update message.
                    let relay = (single && frame.get(1) == Some(&2)).then(|| frame.clone());
                    Action::Update { raw, update, relay }
                }
                Message::Awareness(update) => Action::Awareness {
                    relay: single.then(|| frame.clone()),
                    update,
                },
                Message::AwarenessQuery => Action::AwarenessQuery,
                Message::Auth(_) | Message::Custom(..) => continue,
            });
        }

        let mut st = self.lock();
        if !st.peers.contains_key(&peer) {
            // Already cut off (slow consumer); its frames no longer count.
            return Ok(());
        }
        for action in actions {
            match action {
                Action::Step1(sv) => {
                    let reply = if sv.is_empty() {
                        st.full_state()
                    } else {
                        let diff = st.awareness.doc().transact().encode_state_as_update_v1(&sv);
                        protocol::encode(&Message::Sync(SyncMessage::SyncStep2(diff)))
                    };
                    st.send_to(peer, reply, &self.metrics);
                }
                Action::Update { raw, update, relay } => {
                    // Refused, not applied, when the store cannot take it (never dropped later).
                    if self.persister.admit().is_err() {
                        return Err(CloseReason::store_unavailable());
                    }
                    let applied = catch_unwind(AssertUnwindSafe(|| {
                        let mut txn = st.awareness.doc().transact_mut();
                        txn.apply_update(update)
                    }));
                    match applied {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return Err(CloseReason::malformed(e)),
                        Err(_) => {
                            // yrs panicked half-way through an update: the doc can no longer
                            // be trusted. Reset the room: everyone reconnects and the room
                            // reloads from the store, which holds every update before this one.
                            tracing::error!(room = %self.id, peer, "update panicked inside yrs; resetting the room");
                            st.poisoned = true;
                            st.closing = true;
                            for p in st.peers.values() {
                                p.close(CloseReason::new(
                                    1011,
                                    "room_reset",
                                    "room reset after an internal error; reconnect",
                                ));
                            }
                            return Err(CloseReason::malformed("update could not be applied"));
                        }
                    }
                    let frame = relay.unwrap_or_else(|| protocol::update_frame(&raw));
                    let by = st.users.get(&peer).cloned();
                    st.commit(
                        &self.id,
                        Bytes::from(raw),
                        frame,
                        Some(peer),
                        by.as_ref(),
                        &self.persister,
                        &self.metrics,
                    );
                }
                Action::Awareness { update, relay } => {
                    let frame = relay
                        .unwrap_or_else(|| protocol::encode(&Message::Awareness(update.clone())));
                    match st.awareness.apply_update_summary(update) {
                        Ok(Some(summary)) => {
                            st.claim_awareness(peer, &summary);
                            st.broadcast(&frame, Some(peer), &self.metrics);
                            let RoomState {
                                live,
                                awareness,
                                last_seq,
                                ..
                            } = &mut *st;
                            live.awareness_changed(awareness, &summary, *last_seq, &self.metrics);
                        }
                        // Nothing new (e.g. the JS provider echoing a state it received).
                        Ok(None) => {}
                        Err(e) => return Err(CloseReason::malformed(e)),
                    }
                }
                Action::AwarenessQuery => {
                    if let Ok(update) = st.awareness.update() {
                        let reply = protocol::encode(&Message::Awareness(update));
                        st.send_to(peer, reply, &self.metrics);
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the room can accept a change now: `Err` when the store is too far behind. A
    /// server-side command path asks this before [`Room::transact`], and answers the error.
    pub fn admit(&self) -> Result<(), StoreUnavailable> {
        self.persister.admit()
    }

    /// Runs `f` in a write transaction of the room's doc and commits what it changed like any
    /// client update: logged, persisted and broadcast to every peer. Returns `f`'s result.
    pub fn transact<R>(&self, f: impl FnOnce(&mut yrs::TransactionMut) -> R) -> R {
        let mut st = self.lock();
        let (result, update) = {
            let mut txn = st.awareness.doc().transact_mut();
            let result = f(&mut txn);
            let update = txn.encode_update_v1();
            (result, update)
        };
        if !protocol::is_empty_update(&update) {
            let frame = protocol::update_frame(&update);
            st.commit(
                &self.id,
                Bytes::from(update),
                frame,
                None,
                None,
                &self.persister,
                &self.metrics,
            );
        }
        result
    }

    /// Reads the doc under the room's lock.
    pub fn read<R>(&self, f: impl FnOnce(&Doc) -> R) -> R {
        let st = self.lock();
        f(st.awareness.doc())
    }

    /// Connections currently subscribed.
    pub fn peer_count(&self) -> usize {
        self.lock().peers.len()
    }

    /// Closes every connection with `reason` (shutdown).
    pub fn close_all(&self, reason: &CloseReason) {
        let st = self.lock();
        for p in st.peers.values() {
            p.close(reason.clone());
        }
        st.live.close_all(reason);
    }

    /// Whether the room is unloading (or resetting): join again once [`Room::unloaded`] resolves.
    pub fn is_closing(&self) -> bool {
        self.lock().closing
    }

    /// Subscribes a `/live` connection of `user`: its outbox starts with a snapshot, or with
    /// the events after `since` when the room's history reaches back that far.
    pub fn join_live(&self, user: UserId, since: Option<u64>) -> Result<Joined, RoomClosing> {
        let mut st = self.lock();
        if st.closing {
            return Err(RoomClosing);
        }
        let outbox = Arc::new(Outbox::new(self.limits.send_queue.max(4), Opcode::Text));
        let peer = st.next_peer;
        st.next_peer += 1;
        let seq = st.last_seq;
        st.live
            .subscribe(peer, user, outbox.clone(), since, seq, &self.metrics);
        st.idle_since = None;
        Ok(Joined { peer, outbox })
    }

    /// Unsubscribes a `/live` connection.
    pub fn leave_live(&self, peer: PeerId) {
        let mut st = self.lock();
        let seq = st.last_seq;
        st.live.unsubscribe(peer, seq, &self.metrics);
        if st.is_empty() && st.idle_since.is_none() {
            st.idle_since = Some(Instant::now());
        }
    }

    /// Applies an OKR command by `actor`, like any update: logged, persisted, broadcast to
    /// Yjs clients, and turned into events. Returns the sequence number its change is at (the
    /// current one if it changed nothing) — wait for [`Persister::flush`] before saying it is
    /// durable. A refused command changes nothing.
    pub fn command(
        &self,
        command: &okr::Command,
        actor: &UserId,
    ) -> Result<(u64, okr::Applied), CommandRefused> {
        self.admit().map_err(CommandRefused::Unavailable)?;
        let mut st = self.lock();
        if st.closing {
            return Err(CommandRefused::Closing);
        }
        let now = crate::live::now_millis();
        let (result, update) = {
            let mut txn = st.awareness.doc().transact_mut();
            let result =
                okr::apply_in_room(&mut txn, self.id.as_str(), command, actor.as_str(), now);
            (result, txn.encode_update_v1())
        };
        let applied = result.map_err(CommandRefused::Invalid)?;
        if !protocol::is_empty_update(&update) {
            let frame = protocol::update_frame(&update);
            st.commit(
                &self.id,
                Bytes::from(update),
                frame,
                None,
                Some(actor),
                &self.persister,
                &self.metrics,
            );
        }
        Ok((st.last_seq, applied))
    }

    /// The typed OKR set and the sequence number it is at.
    pub fn view(&self) -> (u64, okr::OkrSet) {
        let st = self.lock();
        (st.last_seq, st.live.model().clone())
    }

    /// Re-derives the model for what time alone changes (overdue KRs and their reminders),
    /// when someone is listening.
    pub fn refresh_live(&self) {
        let mut st = self.lock();
        if st.live.subscriber_count() == 0 {
            return;
        }
        let RoomState {
            live,
            awareness,
            last_seq,
            ..
        } = &mut *st;
        live.refresh(awareness.doc(), *last_seq, None, &self.metrics);
    }

    /// Waits until every update committed so far is durable in the store.
    pub async fn flush(&self) -> Result<(), crate::store::StoreError> {
        self.persister.flush().await
    }

    /// If the log has grown since the last snapshot: the doc encoded as one update, and the
    /// log sequence number it covers. None for a room that is poisoned or has nothing new.
    pub fn snapshot_if_dirty(&self) -> Option<(Vec<u8>, u64)> {
        let st = self.lock();
        if st.poisoned || st.last_seq <= st.compacted_seq {
            return None;
        }
        Some((st.encode_full(), st.last_seq))
    }

    /// The doc encoded as one update and the log sequence number it covers, dirty or not
    /// (a write-back to a store that lost it). None for a poisoned room.
    pub fn snapshot(&self) -> Option<(Vec<u8>, u64)> {
        let st = self.lock();
        (!st.poisoned).then(|| (st.encode_full(), st.last_seq))
    }

    /// Updates logged since the last snapshot.
    pub fn log_len(&self) -> u64 {
        let st = self.lock();
        st.last_seq.saturating_sub(st.compacted_seq)
    }

    /// Records that a snapshot covering `upto` was written.
    pub fn compacted(&self, upto: u64) {
        let mut st = self.lock();
        st.compacted_seq = st.compacted_seq.max(upto);
        self.metrics.compactions.inc();
    }

    /// Starts unloading if nobody has been connected for `idle`; from then on joins are
    /// refused. Returns whether it started.
    pub fn try_begin_close(&self, idle: std::time::Duration) -> bool {
        let mut st = self.lock();
        if st.closing {
            return st.poisoned; // a poisoned room is already closing: let it unload
        }
        let idle_enough = st.is_empty() && st.idle_since.is_some_and(|t| t.elapsed() >= idle);
        if idle_enough {
            st.closing = true;
        }
        idle_enough
    }

    /// Marks the room closing regardless of peers (shutdown); their connections are closed
    /// separately.
    pub fn begin_close(&self) {
        self.lock().closing = true;
    }

    /// Takes back a [`Room::try_begin_close`] whose final snapshot failed: the room stays.
    pub fn abort_close(&self) {
        let mut st = self.lock();
        if !st.poisoned {
            st.closing = false;
            st.idle_since = Some(Instant::now());
        }
    }

    /// Signals that the room is out of the registry; joiners waiting on it retry.
    pub fn mark_unloaded(&self) {
        self.unloaded.cancel();
    }

    /// Resolves once the room has been unloaded.
    pub async fn unloaded(&self) {
        self.unloaded.cancelled().await
    }
}

/// The room's lock. Releasing it writes the outboxes that were given frames meanwhile
/// ([`Kicks`]): the socket writes run after the lock is free, in the releasing thread.
struct Locked<'a> {
    guard: Option<MutexGuard<'a, RoomState>>,
    metrics: &'a Metrics,
}

impl Deref for Locked<'_> {
    type Target = RoomState;
    fn deref(&self) -> &RoomState {
        self.guard.as_deref().expect("held until dropped")
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut RoomState {
        self.guard.as_deref_mut().expect("held until dropped")
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let Some(mut st) = self.guard.take() else {
            return;
        };
        let mut kicks = st.kicks.take();
        kicks.append(st.live.kicks());
        drop(st);
        if !kicks.is_empty() {
            kicks.run(self.metrics);
        }
    }
}

enum Action {
    Step1(StateVector),
    Update {
        raw: Vec<u8>,
        update: Update,
        relay: Option<Bytes>,
    },
    Awareness {
        update: AwarenessUpdate,
        relay: Option<Bytes>,
    },
    AwarenessQuery,
}

impl RoomState {
    /// Nobody connected, by either protocol.
    fn is_empty(&self) -> bool {
        self.peers.is_empty() && self.live.subscriber_count() == 0
    }

    /// The one place an applied update goes downstream: numbered, persisted, broadcast.
    ///
    /// `origin` is the `/sync` peer the update came from (it is not echoed back); `by` is the
    /// acting user, for the events the update causes.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        room: &RoomId,
        update: Bytes,
        frame: Bytes,
        origin: Option<PeerId>,
        by: Option<&UserId>,
        persister: &Persister,
        metrics: &Metrics,
    ) {
        self.last_seq += 1;
        self.full_state = None;
        persister.append(room.clone(), self.last_seq, update);
        self.broadcast(&frame, origin, metrics);
        self.live
            .updated(self.awareness.doc(), self.last_seq, by, metrics);
    }

    /// The sync step 2 frame for an empty state vector, from the cache or encoded (and cached).
    fn full_state(&mut self) -> Bytes {
        if let Some(frame) = &self.full_state {
            return frame.clone();
        }
        let frame = protocol::encode(&Message::Sync(SyncMessage::SyncStep2(self.encode_full())));
        self.full_state = Some(frame.clone());
        frame
    }

    /// The whole doc as one v1 update.
    fn encode_full(&self) -> Vec<u8> {
        self.awareness
            .doc()
            .transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    /// Queues `frame` for every peer but `except`; cuts off the peers whose queue is full.
    fn broadcast(&mut self, frame: &Bytes, except: Option<PeerId>, metrics: &Metrics) {
        let mut overflowed = Vec::new();
        for (&id, peer) in &self.peers {
            if Some(id) == except {
                continue;
            }
            if self.kicks.push(peer, frame.clone()).is_err() {
                overflowed.push(id);
            }
        }
        for id in overflowed {
            self.cut_off(id, metrics);
        }
    }

    /// Queues `frame` for one peer.
    fn send_to(&mut self, peer: PeerId, frame: Bytes, metrics: &Metrics) {
        let full = self
            .peers
            .get(&peer)
            .is_some_and(|p| self.kicks.push(p, frame).is_err());
        if full {
            self.cut_off(peer, metrics);
        }
    }

    fn cut_off(&mut self, peer: PeerId, metrics: &Metrics) {
        if let Some(p) = self.peers.get(&peer) {
            let queue = p.capacity();
            tracing::warn!(
                peer,
                queue,
                "slow consumer: outgoing queue full, closing its connection"
            );
            metrics.slow_consumer_disconnects.inc();
            p.close(CloseReason::slow_consumer(queue));
        }
        self.remove_peer(peer, metrics);
    }

    /// Records `peer` as the publisher of the awareness states its update changed, so that they
    /// are removed when it leaves (and not when another connection that echoed them leaves).
    fn claim_awareness(&mut self, peer: PeerId, summary: &AwarenessUpdateSummary) {
        for id in summary.added.iter().chain(&summary.updated) {
            self.awareness_owner.insert(*id, peer);
        }
        for id in &summary.removed {
            self.awareness_owner.remove(id);
        }
    }

    /// Removes a peer and its awareness states, and tells the others.
    fn remove_peer(&mut self, peer: PeerId, metrics: &Metrics) {
        if self.peers.remove(&peer).is_none() {
            return;
        }
        self.users.remove(&peer);
        if self.is_empty() {
            self.idle_since = Some(Instant::now());
        }
        let owned: Vec<ClientID> = self
            .awareness_owner
            .iter()
            .filter(|(_, owner)| **owner == peer)
            .map(|(id, _)| *id)
            .collect();
        if owned.is_empty() {
            return;
        }
        for id in &owned {
            self.awareness_owner.remove(id);
            self.awareness.remove_state(*id);
        }
        self.live.awareness_removed(&owned, self.last_seq, metrics);
        if self.peers.is_empty() {
            return;
        }
        if let Ok(update) = self.awareness.update_with_clients(owned) {
            let frame = protocol::encode(&Message::Awareness(update));
            // May cut off further slow peers, which recurses at most once per peer.
            self.broadcast(&frame, None, metrics);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The room without a network: frames in, queued frames out.
    use super::*;
    use crate::store::embedded::EmbeddedStore;
    use serde_json::json;
    use yrs::updates::encoder::Encode;
    use yrs::{Map, WriteTxn};

    struct Fixture {
        room: Room,
        _dir: tempfile::TempDir,
    }

    fn fixture(send_queue: usize) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let metrics = Arc::new(Metrics::new());
        let persister = Persister::start(
            store,
            metrics.clone(),
            std::time::Duration::from_millis(5),
            &tokio_util::task::TaskTracker::new(),
        );
        let room = Room::new(
            RoomId::parse("t.room.q1").unwrap(),
            Doc::new(),
            0,
            0,
            persister,
            metrics,
            RoomLimits { send_queue },
        );
        Fixture { room, _dir: dir }
    }

    fn update_frame_from(client: &Doc, key: &str) -> Bytes {
        let mut txn = client.transact_mut();
        txn.get_or_insert_map("m").insert(&mut txn, key, 1);
        let update = txn.encode_update_v1();
        Bytes::from(Message::Sync(SyncMessage::Update(update)).encode_v1())
    }

    fn drain(outbox: &mut Arc<Outbox>) -> Vec<Bytes> {
        let mut v = Vec::new();
        outbox.take(&mut v, usize::MAX);
        v
    }

    #[tokio::test]
    async fn join_queues_sync_step1_first() {
        let f = fixture(8);
        let mut a = f.room.join(None).unwrap();
        let first = drain(&mut a.outbox).remove(0);
        let msgs = protocol::decode_frame(&first).unwrap();
        assert!(matches!(msgs[0], Message::Sync(SyncMessage::SyncStep1(_))));
    }

    #[tokio::test]
    async fn an_update_is_encoded_once_and_shared_by_every_other_peer() {
        let f = fixture(8);
        let mut a = f.room.join(None).unwrap();
        let mut b = f.room.join(None).unwrap();
        let mut c = f.room.join(None).unwrap();
        for j in [&mut a, &mut b, &mut c] {
            drain(&mut j.outbox);
        }
        let client = Doc::new();
        f.room
            .receive(a.peer, update_frame_from(&client, "k"))
            .unwrap();
        assert!(drain(&mut a.outbox).is_empty(), "the sender is not echoed");
        let got_b = drain(&mut b.outbox);
        let got_c = drain(&mut c.outbox);
        assert_eq!(got_b.len(), 1);
        assert_eq!(got_c.len(), 1);
        assert_eq!(
            got_b[0].as_ptr(),
            got_c[0].as_ptr(),
            "one buffer for all recipients"
        );
        assert_eq!(f.room.log_len(), 1, "logged once");
    }

    #[tokio::test]
    async fn a_full_queue_cuts_off_only_that_peer() {
        let f = fixture(4);
        let slow = f.room.join(None).unwrap(); // never drained
        let mut fast = f.room.join(None).unwrap();
        let writer = f.room.join(None).unwrap();
        let client = Doc::new();
        for i in 0..10 {
            f.room
                .receive(writer.peer, update_frame_from(&client, &format!("k{i}")))
                .unwrap();
            drain(&mut fast.outbox);
        }
        assert!(slow.outbox.is_closed());
        assert_eq!(slow.outbox.reason().unwrap().code, 1013);
        assert!(!fast.outbox.is_closed());
        assert_eq!(f.room.peer_count(), 2);
        assert_eq!(
            f.room.read(|d| d.get_or_insert_map("m").len(&d.transact())),
            10
        );
    }

    #[tokio::test]
    async fn leaving_removes_only_the_states_a_peer_published() {
        let f = fixture(8);
        let a = f.room.join(None).unwrap();
        let b = f.room.join(None).unwrap();
        let mut c = f.room.join(None).unwrap();
        let mut a_awareness = Awareness::new(Doc::new());
        a_awareness
            .set_local_state(json!({"user": {"name": "ana"}}))
            .unwrap();
        let a_update = a_awareness.update().unwrap();
        let frame = Bytes::from(Message::Awareness(a_update).encode_v1());
        f.room.receive(a.peer, frame.clone()).unwrap();
        // b echoes a's state back, as the JS provider does: b does not own it.
        f.room.receive(b.peer, frame).unwrap();
        drain(&mut c.outbox);
        f.room.leave(b.peer);
        assert!(drain(&mut c.outbox).is_empty(), "b leaving removes nothing");
        f.room.leave(a.peer);
        let removal = drain(&mut c.outbox);
        assert_eq!(removal.len(), 1, "a leaving removes ana");
        let Message::Awareness(u) = &protocol::decode_frame(&removal[0]).unwrap()[0] else {
            panic!("expected an awareness message");
        };
        assert_eq!(&*u.clients[&a_awareness.client_id()].json, "null");
    }

    fn step1(sv: StateVector) -> Bytes {
        Bytes::from(Message::Sync(SyncMessage::SyncStep1(sv)).encode_v1())
    }

    #[tokio::test]
    async fn fresh_joiners_share_one_encoding_of_a_quiet_doc() {
        let f = fixture(8);
        let client = Doc::new();
        let writer = f.room.join(None).unwrap();
        f.room
            .receive(writer.peer, update_frame_from(&client, "a"))
            .unwrap();
        let mut a = f.room.join(None).unwrap();
        let mut b = f.room.join(None).unwrap();
        drain(&mut a.outbox);
        drain(&mut b.outbox);
        f.room
            .receive(a.peer, step1(StateVector::default()))
            .unwrap();
        f.room
            .receive(b.peer, step1(StateVector::default()))
            .unwrap();
        let (ra, rb) = (drain(&mut a.outbox), drain(&mut b.outbox));
        assert_eq!(ra[0].as_ptr(), rb[0].as_ptr(), "one cached encoding");

        // An update invalidates it: the next joiner gets the new state.
        f.room
            .receive(writer.peer, update_frame_from(&client, "b"))
            .unwrap();
        drain(&mut a.outbox);
        f.room
            .receive(a.peer, step1(StateVector::default()))
            .unwrap();
        let fresh = drain(&mut a.outbox);
        assert_ne!(fresh[0].as_ptr(), ra[0].as_ptr());
        let Message::Sync(SyncMessage::SyncStep2(update)) =
            &protocol::decode_frame(&fresh[0]).unwrap()[0]
        else {
            panic!("expected sync step 2");
        };
        let check = Doc::new();
        check
            .transact_mut()
            .apply_update(Update::decode_v1(update).unwrap())
            .unwrap();
        assert_eq!(check.get_or_insert_map("m").len(&check.transact()), 2);
    }

    #[tokio::test]
    async fn a_closing_room_refuses_joins() {
        let f = fixture(8);
        assert!(f.room.try_begin_close(std::time::Duration::ZERO));
        assert!(f.room.join(None).is_err());
        f.room.abort_close();
        assert!(f.room.join(None).is_ok());
    }
}
