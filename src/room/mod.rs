//! The room core: one loaded room — its yrs doc and awareness, the connections subscribed to
//! it, its OKR projection and its life — and no sockets, no store I/O.
//!
//! | file | owns |
//! |---|---|
//! | [`doc`] | the doc + awareness: y-sync replies, applying updates and awareness, the cached full state |
//! | [`fanout`] | subscribers of one kind and the fan-out to their [`Sink`]s, slow-consumer cut-off |
//! | [`lifecycle`] | sequence numbers, snapshot bookkeeping, closing / poisoned, idle time |
//! | [`limits`] | what a room and each connection may take: doc size, connections, awareness, persist share, presence per tick |
//! | [`projector`] | the typed OKR model, the events derived from each change, `/live` subscribers and history |
//! | [`sink`] | the narrow interface frames leave through ([`Sink`], [`Kicks`]) |
//!
//! # Concurrency
//!
//! Everything about a room sits behind one `std::sync::Mutex` ([`RoomState`]). Critical sections
//! are short and never await: applying an update, encoding a reply, and pushing the resulting
//! frame onto each subscriber's bounded sink. Sockets are written after the lock is released
//! ([`Locked`] runs the [`Kicks`] as it drops): with the WebSocket layer's outbox, a
//! non-blocking `writev` per recipient in the thread that made the change, so a slow socket
//! never holds the room up and most deliveries wake no other task. A tokio mutex would buy
//! nothing here (nothing is held across an await) and cost more per update.
//!
//! Holding the lock while queueing gives every subscriber a consistent order: a joining peer
//! is registered, and its sync step 1 queued, under the same lock that orders every broadcast,
//! so it can neither miss an update nor see one twice before its handshake.
//!
//! # The replication seam: one way out, one way in
//!
//! Every update made on this node — a Yjs client's, a command's — leaves the room through
//! [`RoomState::commit`]: it gets the room's next log sequence number, is handed to the
//! persister, and is then *delivered* ([`RoomState::deliver`]): encoded **once** into a frame
//! whose bytes every subscriber's sink shares, and projected into OKR events. An update made on
//! another node and read from the shared log enters through [`Room::apply_remote`]: applied,
//! numbered with the log's number, and delivered the same way — but not persisted again. A
//! relay to other nodes hangs off `commit`; the tail of the shared log calls `apply_remote`.
//!
//! # Back-pressure
//!
//! A subscriber whose sink is full is removed on the spot and told to close with 1013: it
//! resyncs when it reconnects. The room never waits for a slow reader and never drops an update
//! for a reader it keeps.

pub mod doc;
pub mod fanout;
pub mod inbox;
pub mod lifecycle;
pub mod limits;
pub mod notices;
pub mod projector;
pub mod shared;
pub mod sink;

use std::collections::{HashMap, HashSet};
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use yrs::sync::{AwarenessUpdate, Message, SyncMessage};
use yrs::{Doc, StateVector, Transact, Update};

use crate::identity::{Role, UserId};
use crate::metrics::Metrics;
use crate::okr::{self, Touched};
use crate::protocol::bound::Limits;
use crate::protocol::{self, CloseReason};
use crate::room_id::RoomId;
use crate::store::persister::{Persister, Share, StoreUnavailable};
use crate::store::shared::{Logged, Origin};
use crate::store::StoredDoc;
use doc::{ApplyError, DocState};
use fanout::Fanout;
pub use fanout::PeerId;
use lifecycle::Lifecycle;
use limits::DocSize;
pub use limits::RoomLimits;
use projector::Projector;
pub use shared::SharedCtx;
use shared::{LogOrder, Pending};
pub use sink::{Full, Kicks, Pushed, Sink};

/// Who a connection is, as far as the room cares.
#[derive(Debug, Clone)]
pub struct Client {
    /// The user, when known (an open server's anonymous `/sync` client is nobody).
    pub user: Option<UserId>,
    pub role: Role,
    /// When its credentials expire (unix seconds): the room closes it then.
    pub expires_at: Option<u64>,
}

impl Client {
    /// Nobody in particular, who may write (an open server's anonymous `/sync` client).
    pub fn anonymous() -> Self {
        Client {
            user: None,
            role: Role::Admin,
            expires_at: None,
        }
    }
}

/// The room is closing (unloading, or reset after an internal error); join again once
/// [`Room::unloaded`] resolves.
#[derive(Debug, thiserror::Error)]
#[error("room is closing")]
pub struct RoomClosing;

/// Why a connection could not join.
#[derive(Debug, thiserror::Error)]
pub enum JoinRefused {
    /// The room is closing: join again once [`Room::unloaded`] resolves.
    #[error(transparent)]
    Closing(#[from] RoomClosing),
    /// The room has as many connections as it may take (the limit).
    #[error("room full: {0} connections")]
    Full(usize),
}

/// Why a server-side change (a command, a transaction) was not applied; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error(transparent)]
    Invalid(okr::CommandError),
    #[error("the room is closing; retry")]
    Closing,
    #[error(transparent)]
    Unavailable(StoreUnavailable),
    /// The room's document is at its size limit (bytes).
    #[error("the room's document is at its size limit ({0} bytes); nothing changed")]
    DocTooLarge(usize),
}

/// An update read from the shared log that could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("not a Yjs v1 update: {0}")]
    Malformed(String),
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

/// What a room needs from outside, passed down to its parts as one value.
struct Ctx<S: Sink> {
    id: RoomId,
    /// Where the mentions made here go.
    inboxes: Option<Arc<inbox::Inboxes<S>>>,
    /// Where the notices (chat messages to be) of the updates made on this node go.
    notices: Option<Arc<dyn notices::Notices>>,
    /// A team room (`org.team.cycle`), not a personal one (`org.~user.cycle`).
    team_room: bool,
    persister: Persister,
    metrics: Arc<Metrics>,
    limits: RoomLimits,
    /// What the decode guard allows in a client's frame.
    decode: Limits,
    /// The log several nodes share, when the store is one: then the log numbers the updates
    /// (see [`shared`]).
    shared: Option<SharedCtx>,
}

/// A loaded room, generic over where its frames go ([`Sink`]). Shared by its connections and
/// the hub's registry.
pub struct Room<S: Sink> {
    ctx: Ctx<S>,
    state: Mutex<RoomState<S>>,
    unloaded: CancellationToken,
    /// Woken whenever the shared log numbers one of this node's updates.
    numbered: tokio::sync::Notify,
}

struct RoomState<S: Sink> {
    doc: DocState,
    /// The `/sync` peers, with the user each said it is (the `by` of its updates' events).
    peers: Fanout<S>,
    /// The typed OKR model, its events and the `/live` subscribers.
    live: Projector<S>,
    life: Lifecycle,
    next_peer: PeerId,
    /// The size of the doc, against [`RoomLimits::max_doc_bytes`].
    size: DocSize,
    /// Each `/sync` peer's updates waiting in the persister (its share of the buffer).
    shares: HashMap<PeerId, Arc<Share>>,
    /// On a shared log: the updates applied and not yet numbered, and what was numbered.
    order: LogOrder,
    /// What each other node holding the room has told of its clients (on a shared log).
    remote: HashMap<Arc<str>, RemoteNode>,
    /// Where this node's awareness changes go for the other nodes (on a shared log).
    publish: Option<(RoomId, Arc<dyn crate::store::shared::SharedLog>)>,
    /// On a shared log: the log's clock at the last entry numbered here, and whether this
    /// node's tick entry waits for its number.
    last_at: Option<i64>,
    tick_waiting: bool,
}

/// Another node holding the room, as this one knows it.
struct RemoteNode {
    /// The stand-in peer that owns its clients' awareness states here.
    stand_in: PeerId,
    /// Its `/live` users (connections per user).
    live: std::collections::BTreeMap<String, usize>,
    /// When it was last heard from (any message of the room).
    seen: std::time::Instant,
}

/// Where a command's change is in the room's log: its seq, or (on a shared log, until the log
/// numbers it) this node's own number for it ([`Room::seq_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ticket {
    Seq(u64),
    Local(u64),
}

/// What a room needs after hearing of its shared log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Up to date with what it heard.
    Done,
    /// Entries after `after` are missing here: read them from the log
    /// ([`Room::apply_logged`]).
    Read { after: u64 },
}

/// One change leaving the room ([`RoomState::commit`]).
struct Change<'a> {
    /// The update (v1), as logged.
    update: Bytes,
    /// The sync-update frame carrying it, shared by every recipient.
    frame: Bytes,
    /// The `/sync` peer it came from (not echoed back).
    origin: Option<PeerId>,
    /// The acting user, for the events it causes.
    by: Option<&'a UserId>,
    /// What it touched, when already taken from the projector's watch.
    touched: Option<Touched>,
    /// The persist-buffer share of the connection it came from.
    share: Option<Arc<Share>>,
}

impl<S: Sink> Room<S> {
    /// A room over `doc`, whose store log ends at `last_seq`; `compacted_seq` is what its
    /// snapshot covers.
    pub fn new(
        id: RoomId,
        doc: Doc,
        last_seq: u64,
        compacted_seq: u64,
        persister: Persister,
        metrics: Arc<Metrics>,
    ) -> Self {
        let live = Projector::new(id.as_str(), &doc, last_seq);
        metrics.rooms_alive.inc();
        Room {
            ctx: Ctx {
                inboxes: None,
                notices: None,
                team_room: !id.is_personal(),
                id,
                persister,
                metrics,
                limits: RoomLimits::default(),
                decode: Limits::default(),
                shared: None,
            },
            state: Mutex::new(RoomState {
                doc: DocState::new(doc),
                peers: Fanout::default(),
                live,
                life: Lifecycle::new(last_seq, compacted_seq),
                next_peer: 1,
                size: DocSize::default(),
                shares: HashMap::new(),
                order: LogOrder::default(),
                remote: HashMap::new(),
                publish: None,
                last_at: None,
                tick_waiting: false,
            }),
            unloaded: CancellationToken::new(),
            numbered: tokio::sync::Notify::new(),
        }
    }

    /// Logs through `shared`, a log several nodes share: the log numbers the updates.
    pub fn with_shared(mut self, shared: SharedCtx) -> Self {
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        st.publish = Some((self.ctx.id.clone(), shared.log.clone()));
        self.ctx.shared = Some(shared);
        self
    }

    /// Holds the room and its connections to `limits`; `doc_bytes` is the size of its doc as
    /// stored (snapshot and log), until the next snapshot measures it.
    pub fn with_limits(mut self, limits: RoomLimits, doc_bytes: usize) -> Self {
        self.ctx.limits = limits;
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        st.size = DocSize::measured(doc_bytes);
        st.live.set_presence_budget(limits.presence_per_tick);
        self
    }

    /// Sends the mentions made in this room to `inboxes`.
    pub fn with_inboxes(mut self, inboxes: Arc<inbox::Inboxes<S>>) -> Self {
        self.ctx.inboxes = Some(inboxes);
        self
    }

    /// Hands the notices of the updates made on this node to `notices` (see [`notices`]).
    pub fn with_notices(mut self, notices: Option<Arc<dyn notices::Notices>>) -> Self {
        if notices.is_some() {
            let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
            st.live.collect_notices();
        }
        self.ctx.notices = notices;
        self
    }

    /// Decodes its clients' frames under `limits` (by default [`Limits::default`]).
    pub fn with_decode_limits(mut self, limits: Limits) -> Self {
        self.ctx.decode = limits;
        self
    }

    pub fn id(&self) -> &RoomId {
        &self.ctx.id
    }

    fn lock(&self) -> Locked<'_, S> {
        // A panic while the lock is held is caught inside (see `receive`), so the lock is
        // never poisoned in practice; if it were, the state is still the best we have.
        Locked {
            guard: Some(self.state.lock().unwrap_or_else(|p| p.into_inner())),
            metrics: &self.ctx.metrics,
        }
    }

    /// Subscribes a `/sync` connection of `user` with `role` whose frames go to `sink`. The
    /// sink starts with the server's sync step 1 and, if anyone is present, the awareness
    /// states. A viewer's updates are refused; an editor's and an admin's are held to the
    /// document's rules ([`okr::guard`]).
    pub fn join(&self, client: &Client, sink: Arc<S>) -> Result<PeerId, JoinRefused> {
        let mut st = self.lock();
        st.admit_join(&self.ctx)?;
        let _ = sink.push(st.doc.step1());
        if let Some(frame) = st.doc.awareness_frame() {
            let _ = sink.push(frame);
        }
        let peer = st.new_peer();
        st.peers
            .insert(peer, sink, client.user.clone(), client.role);
        st.peers.expire_at(peer, client.expires_at);
        st.shares.insert(peer, Arc::default());
        Ok(peer)
    }

    /// Unsubscribes a `/sync` connection and removes the awareness states it published,
    /// telling the others they are gone.
    pub fn leave(&self, peer: PeerId) {
        self.lock().remove_peer(peer, &self.ctx.metrics);
    }

    /// Handles one binary frame from `peer`. An error is the reason to close that connection;
    /// the room itself is never left half-changed by a bad frame.
    pub fn receive(&self, peer: PeerId, frame: Bytes) -> Result<(), CloseReason> {
        let ctx = &self.ctx;
        let actions = decode_actions(&frame, &ctx.decode, &ctx.metrics)?;
        let mut st = self.lock();
        if !st.peers.contains(peer) {
            // Already cut off (slow consumer); its frames no longer count.
            return Ok(());
        }
        for action in actions {
            match action {
                Action::Step1(sv) => {
                    let reply = st.doc.step2(&sv);
                    if st.peers.send_to(peer, reply, &ctx.metrics) {
                        st.remove_peer(peer, &ctx.metrics);
                    }
                }
                Action::Update { raw, update, relay } => {
                    st.receive_update(ctx, peer, raw, update, relay)?;
                }
                Action::Awareness { update, relay } => {
                    let bytes: usize = update.clients.values().map(|e| e.json.len()).sum();
                    if bytes > ctx.limits.max_awareness_bytes {
                        ctx.metrics.count_limit("awareness_bytes");
                        return Err(CloseReason::awareness_limit(format_args!(
                            "a message of {bytes} bytes of state; the limit is {}",
                            ctx.limits.max_awareness_bytes
                        )));
                    }
                    let (update, dropped) = {
                        let RoomState { doc, peers, .. } = &*st;
                        doc.own_awareness(peer, update, |owner| peers.same_user(peer, owner))
                    };
                    if dropped {
                        tracing::debug!(room = %ctx.id, peer, "awareness for another connection's client ids dropped");
                    }
                    let states = st.doc.states_after(peer, &update);
                    if states > ctx.limits.max_awareness_states {
                        ctx.metrics.count_limit("awareness_states");
                        return Err(CloseReason::awareness_limit(format_args!(
                            "{states} states from one connection; the limit is {}",
                            ctx.limits.max_awareness_states
                        )));
                    }
                    let frame = match relay {
                        Some(frame) if !dropped => frame,
                        _ => protocol::encode(&Message::Awareness(update.clone())),
                    };
                    match st.doc.apply_awareness(peer, update) {
                        Ok(Some(summary)) => {
                            st.broadcast(&frame, Some(peer), &ctx.metrics);
                            if let Some(sh) = &ctx.shared {
                                sh.log.publish_awareness(&ctx.id, frame.clone());
                            }
                            let RoomState {
                                live,
                                doc,
                                life,
                                peers,
                                ..
                            } = &mut *st;
                            live.awareness_changed(
                                doc.awareness(),
                                &summary,
                                peers.user(peer),
                                life.seq(),
                                &ctx.metrics,
                            );
                        }
                        // Nothing new (e.g. the JS provider echoing a state it received).
                        Ok(None) => {}
                        Err(e) => return Err(CloseReason::malformed(e)),
                    }
                }
                Action::AwarenessQuery => {
                    if let Some(reply) = st.doc.awareness_reply() {
                        if st.peers.send_to(peer, reply, &ctx.metrics) {
                            st.remove_peer(peer, &ctx.metrics);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the room can accept a change now: `Err` when the store is too far behind.
    pub fn admit(&self) -> Result<(), StoreUnavailable> {
        self.ctx.persister.admit()
    }

    /// Runs `f` in a write transaction of the room's doc and commits what it changed like any
    /// client update: logged, persisted and broadcast to every peer. Refused, with `f` not run,
    /// when the store is behind or the room is closing.
    pub fn transact<R>(
        &self,
        by: Option<&UserId>,
        f: impl FnOnce(&mut yrs::TransactionMut) -> R,
    ) -> Result<R, Refused> {
        self.admit().map_err(Refused::Unavailable)?;
        let mut st = self.lock();
        st.admit_change(&self.ctx)?;
        let (result, update) = st.doc.transact(f);
        st.commit_local(&self.ctx, update, by);
        Ok(result)
    }

    /// Applies an OKR command by `actor`, like any update: logged, persisted, broadcast to
    /// Yjs clients, and turned into events. Returns the sequence number its change is at (the
    /// current one if it changed nothing) — wait for [`Room::flush`] before saying it is
    /// durable. A refused command changes nothing.
    pub fn command(
        &self,
        command: &okr::Command,
        actor: &UserId,
    ) -> Result<(Ticket, okr::Applied), Refused> {
        self.admit().map_err(Refused::Unavailable)?;
        let mut st = self.lock();
        st.admit_change(&self.ctx)?;
        let now = crate::clock::now_millis();
        let room = self.ctx.id.as_str();
        let RoomState { doc, live, .. } = &mut *st;
        let view = live.projection();
        let (result, update) =
            doc.transact(|txn| okr::apply_in_room(txn, room, view, command, actor.as_str(), now));
        let applied = result.map_err(Refused::Invalid)?;
        let ticket = st
            .commit_local(&self.ctx, update, Some(actor))
            .unwrap_or(Ticket::Seq(st.life.seq()));
        Ok((ticket, applied))
    }

    /// The seq the log gave a change of this node ([`Ticket::Local`]), once it has: waits for
    /// the log's notice (the caller bounds the wait).
    pub async fn seq_of(&self, ticket: Ticket) -> u64 {
        let local = match ticket {
            Ticket::Seq(seq) => return seq,
            Ticket::Local(local) => local,
        };
        loop {
            let notified = self.numbered.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(seq) = self.lock().order.seq_of(local) {
                return seq;
            }
            notified.await;
        }
    }

    /// Applies an update another node applied and published (the fast path): fanned out to
    /// the `/sync` peers here at once, projected when the log numbers it ([`Room::logged`]).
    /// An update already applied here (its own, or one numbered already) is ignored.
    pub fn relayed(
        &self,
        origin: Origin,
        by: Option<UserId>,
        update: Bytes,
    ) -> Result<(), RemoteError> {
        let ctx = &self.ctx;
        let Some(sh) = &ctx.shared else {
            return Ok(());
        };
        if origin.node == *sh.node() || self.lock().order.knows(&origin) {
            return Ok(());
        }
        let decoded = decode_remote(&update, &ctx.metrics)?;
        let mut st = self.lock();
        st.heard_from(origin.node.clone());
        if st.order.knows(&origin) {
            return Ok(());
        }
        st.apply_remote_parts(ctx, decoded)?;
        st.size.grew(update.len());
        let frame = protocol::update_frame(&update);
        st.fan_out(&frame, None, &ctx.metrics);
        let touched = st.live.touched();
        st.order.hold(
            origin,
            Pending {
                touched,
                by,
                update,
                since: std::time::Instant::now(),
            },
        );
        Ok(())
    }

    /// The shared log numbered `origin`'s update `seq` at `at` (the log's clock). When it is
    /// the next one and was applied here, it is projected now; otherwise the caller reads
    /// what is missing.
    pub fn logged(&self, seq: u64, origin: &Origin, at: i64) -> Next {
        let ctx = &self.ctx;
        let Some(sh) = &ctx.shared else {
            return Next::Done;
        };
        let mut st = self.lock();
        let applied = st.life.seq();
        if seq <= applied {
            // Covered already (a catch-up from the snapshot jumped past it): an update pending
            // here is numbered all the same, and what it touched projected now.
            st.settle(ctx, origin, seq, sh.node());
            drop(st);
            if *origin.node == **sh.node() {
                self.numbered.notify_waiters();
            }
            return Next::Done;
        }
        if seq > applied + 1 || !st.order.knows(origin) {
            return Next::Read { after: applied };
        }
        let pending = st.numbered(origin, seq, sh.node());
        st.life.advance_to(seq);
        st.last_at = Some(at);
        let local = *origin.node == **sh.node();
        if let Some(p) = pending {
            if p.update.is_empty() {
                st.tick_at(ctx, seq, at, local);
            } else {
                st.project(ctx, seq, p.by.as_ref(), Some(at), p.touched, local);
            }
        }
        drop(st);
        if *origin.node == **sh.node() {
            self.numbered.notify_waiters();
        }
        Next::Done
    }

    /// Entries read from the shared log, in order: each one after what this room has applied
    /// is applied (unless it was already, pending) and projected at its seq. Returns
    /// [`Next::Read`] when there is a hole before an entry.
    pub fn apply_logged(&self, entries: Vec<Logged>) -> Result<Next, RemoteError> {
        let ctx = &self.ctx;
        let Some(sh) = &ctx.shared else {
            return Ok(Next::Done);
        };
        let mut own = false;
        let mut result = Ok(Next::Done);
        for entry in entries {
            let mut st = self.lock();
            let applied = st.life.seq();
            if entry.seq <= applied {
                st.settle(ctx, &entry.origin, entry.seq, sh.node());
                continue;
            }
            if entry.seq > applied + 1 {
                result = Ok(Next::Read { after: applied });
                break;
            }
            let local = entry.origin.node == *sh.node();
            own |= local;
            let pending = st.numbered(&entry.origin, entry.seq, sh.node());
            st.last_at = entry.at.or(st.last_at);
            if entry.update.is_empty() {
                // A tick entry: time moves, to the log's clock at it.
                st.life.advance_to(entry.seq);
                if let Some(at) = entry.at {
                    st.tick_at(ctx, entry.seq, at, local);
                }
                continue;
            }
            let touched = match pending {
                Some(p) => p.touched,
                None => {
                    drop(st);
                    let decoded = decode_remote(&entry.update, &ctx.metrics)?;
                    st = self.lock();
                    st.apply_remote_parts(ctx, decoded)?;
                    st.size.grew(entry.update.len());
                    let frame = protocol::update_frame(&entry.update);
                    st.fan_out(&frame, None, &ctx.metrics);
                    st.live.touched()
                }
            };
            st.life.advance_to(entry.seq);
            st.project(ctx, entry.seq, entry.by.as_ref(), entry.at, touched, local);
        }
        if own {
            self.numbered.notify_waiters();
        }
        result
    }

    /// Catches up from what the store holds when the log entries this room needs were
    /// trimmed: the snapshot and the log after it are merged into the doc (Yjs updates are
    /// idempotent, so what is here already changes nothing) and projected at the store's seq.
    pub fn catch_up(&self, stored: &StoredDoc) -> Result<(), RemoteError> {
        let ctx = &self.ctx;
        for bytes in stored.snapshot.iter().chain(stored.updates.iter()) {
            if bytes.is_empty() {
                continue; // a tick entry
            }
            let decoded = decode_remote(bytes, &ctx.metrics)?;
            let mut st = self.lock();
            st.apply_remote_parts(ctx, decoded)?;
            let frame = protocol::update_frame(bytes);
            st.fan_out(&frame, None, &ctx.metrics);
        }
        let mut st = self.lock();
        let mut touched = st.live.touched();
        // The updates pending here that the log holds are numbered now.
        if let Some(sh) = &ctx.shared {
            for meta in &stored.meta {
                if let Some(origin) = &meta.origin {
                    if let Some(p) = st.numbered(origin, meta.seq, sh.node()) {
                        touched.extend(p.touched);
                    }
                }
            }
        }
        if stored.last_seq > st.life.seq() {
            st.life.advance_to(stored.last_seq);
            st.project(ctx, stored.last_seq, None, None, touched, false);
        }
        drop(st);
        self.numbered.notify_waiters();
        tracing::warn!(room = %ctx.id, seq = stored.last_seq, "room caught up from the snapshot: the log entries it lacked were trimmed");
        Ok(())
    }

    /// Logs again, as this node's, the other nodes' updates applied here that the log has not
    /// numbered within `age` (their node died between publishing and logging them). Returns
    /// how many.
    pub fn relog_stale(&self, age: std::time::Duration) -> usize {
        let ctx = &self.ctx;
        let Some(sh) = &ctx.shared else {
            return 0;
        };
        let mut st = self.lock();
        let stale = st.order.stale(sh.node(), age);
        let n = stale.len();
        for p in stale {
            let local = sh.next_local();
            ctx.persister
                .append_for(ctx.id.clone(), local, p.update.clone(), p.by.clone(), None);
            st.order.hold(
                Origin {
                    node: sh.node().clone(),
                    local,
                },
                Pending {
                    since: std::time::Instant::now(),
                    ..p
                },
            );
        }
        if n > 0 {
            tracing::warn!(room = %ctx.id, updates = n, "updates of another node were never logged (did it die?): logged them again from here");
        }
        n
    }

    /// Updates applied here that the shared log has not numbered yet.
    pub fn pending_len(&self) -> usize {
        self.lock().order.pending_len()
    }

    /// Applies an awareness frame of another node's clients (a y-sync awareness message):
    /// relayed to the peers here and seen as presence. Each node's states are held by a stand-in
    /// peer, removed when the node falls silent ([`Room::forget_silent_nodes`]).
    pub fn relayed_awareness(&self, node: Arc<str>, frame: Bytes) -> Result<(), RemoteError> {
        let ctx = &self.ctx;
        let Some(sh) = &ctx.shared else {
            return Ok(());
        };
        if node == *sh.node() {
            return Ok(());
        }
        let messages = protocol::decode_frame_within(&frame, &ctx.decode)
            .map_err(|e| RemoteError::Malformed(e.to_string()))?;
        let mut st = self.lock();
        let stand_in = st.heard_from(node).stand_in;
        for message in messages {
            let Message::Awareness(update) = message else {
                continue;
            };
            let (update, _) = st.doc.own_awareness(stand_in, update, |_| false);
            let frame = protocol::encode(&Message::Awareness(update.clone()));
            if let Ok(Some(summary)) = st.doc.apply_awareness(stand_in, update) {
                st.broadcast(&frame, None, &ctx.metrics);
                let RoomState {
                    live, doc, life, ..
                } = &mut *st;
                live.awareness_changed(doc.awareness(), &summary, None, life.seq(), &ctx.metrics);
            }
        }
        Ok(())
    }

    /// Another node's `/live` users in the room now: their presence arrives and departs here.
    pub fn relayed_presence(
        &self,
        node: Arc<str>,
        live: std::collections::BTreeMap<String, usize>,
    ) {
        let ctx = &self.ctx;
        if ctx.shared.as_ref().is_none_or(|sh| node == *sh.node()) {
            return;
        }
        let mut st = self.lock();
        let was = std::mem::replace(&mut st.heard_from(node).live, live.clone());
        let seq = st.life.seq();
        st.live.remote_live(&was, &live, seq, &ctx.metrics);
    }

    /// A node that just loaded the room asks who is present: this node answers with its
    /// `/live` users and its own clients' awareness states.
    pub fn queried(&self, node: Arc<str>) {
        let ctx = &self.ctx;
        let Some(sh) = &ctx.shared else {
            return;
        };
        if node == *sh.node() {
            return;
        }
        let mut st = self.lock();
        st.heard_from(node);
        sh.log.publish_presence(&ctx.id, st.live.local_live());
        let stand_ins: HashSet<PeerId> = st.remote.values().map(|r| r.stand_in).collect();
        if let Some(frame) = st
            .doc
            .awareness_frame_of(|owner| !stand_ins.contains(&owner))
        {
            sh.log.publish_awareness(&ctx.id, frame);
        }
    }

    /// Tells the other nodes this node's `/live` users: when they changed (`always`: also
    /// when not, as a heartbeat — a node not heard from is forgotten).
    pub fn announce_presence(&self, always: bool) {
        let ctx = &self.ctx;
        let Some(sh) = &ctx.shared else {
            return;
        };
        let mut st = self.lock();
        let changed = st.live.take_live_changed();
        if changed || (always && !st.live.local_live().is_empty()) {
            sh.log.publish_presence(&ctx.id, st.live.local_live());
        }
    }

    /// Removes what nodes not heard from for `silence` said of their clients — awareness
    /// states and `/live` presence: a node that died takes its clients' presence with it.
    pub fn forget_silent_nodes(&self, silence: std::time::Duration) {
        let mut st = self.lock();
        let silent: Vec<Arc<str>> = (st.remote.iter())
            .filter(|(_, r)| r.seen.elapsed() >= silence)
            .map(|(n, _)| n.clone())
            .collect();
        for node in silent {
            let Some(gone) = st.remote.remove(&node) else {
                continue;
            };
            let seq = st.life.seq();
            st.live
                .remote_live(&gone.live, &Default::default(), seq, &self.ctx.metrics);
            let owned = st.doc.remove_owned_by(gone.stand_in);
            if owned.is_empty() {
                continue;
            }
            st.live.awareness_removed(&owned, seq, &self.ctx.metrics);
            if let Some(frame) = st.doc.removal_frame(owned) {
                st.broadcast(&frame, None, &self.ctx.metrics);
            }
        }
    }

    /// Applies an update another node committed, which the shared log numbered `seq`: fanned
    /// out to every peer here and projected, but not persisted again (it is in the log
    /// already). The way in of the replication seam (see the module docs).
    pub fn apply_remote(
        &self,
        seq: u64,
        update: Bytes,
        by: Option<&UserId>,
    ) -> Result<(), RemoteError> {
        let ctx = &self.ctx;
        let decoded = decode_remote(&update, &ctx.metrics)?;
        let mut st = self.lock();
        st.apply_remote_parts(ctx, decoded)?;
        st.life.advance_to(seq);
        st.size.grew(update.len());
        let seq = st.life.seq();
        let frame = protocol::update_frame(&update);
        let touched = st.live.touched();
        st.deliver(ctx, seq, &frame, None, by, touched);
        Ok(())
    }

    /// Reads the doc under the room's lock.
    pub fn read<R>(&self, f: impl FnOnce(&Doc) -> R) -> R {
        let st = self.lock();
        f(st.doc.doc())
    }

    /// `/sync` connections currently subscribed.
    pub fn peer_count(&self) -> usize {
        self.lock().peers.len()
    }

    /// Closes every connection with `reason` (shutdown).
    pub fn close_all(&self, reason: &CloseReason) {
        let st = self.lock();
        st.peers.close_all(reason);
        st.live.close_all(reason);
    }

    /// Whether the room is unloading (or resetting): join again once [`Room::unloaded`] resolves.
    pub fn is_closing(&self) -> bool {
        self.lock().life.is_closing()
    }

    /// Subscribes a `/live` connection of `user`, reading as `reader`, whose frames go to
    /// `sink`: it starts with a snapshot, or with the events after `since` when the room's
    /// history reaches back that far; it gets only what `reader` may read.
    pub fn join_live(
        &self,
        user: UserId,
        reader: okr::audience::Reader,
        expires_at: Option<u64>,
        since: Option<u64>,
        sink: Arc<S>,
    ) -> Result<PeerId, JoinRefused> {
        let mut st = self.lock();
        st.admit_join(&self.ctx)?;
        let peer = st.new_peer();
        let seq = st.life.seq();
        st.live
            .subscribe(peer, user, reader, sink, since, seq, &self.ctx.metrics);
        st.live.expire_at(peer, expires_at);
        drop(st);
        self.announce_presence(false);
        Ok(peer)
    }

    /// Unsubscribes a `/live` connection.
    pub fn leave_live(&self, peer: PeerId) {
        let mut st = self.lock();
        let seq = st.life.seq();
        st.live.unsubscribe(peer, seq, &self.ctx.metrics);
        if st.is_empty() {
            st.life.vacated();
        }
        drop(st);
        self.announce_presence(false);
    }

    /// The typed OKR set and the sequence number it is at (built on each call; REST serves
    /// [`Room::view_json_for`]).
    pub fn view(&self) -> (u64, okr::OkrSet) {
        let st = self.lock();
        (st.life.seq(), st.live.model())
    }

    /// The REST view of the room as `reader` may see it: the shared encoding when it hides
    /// nothing, one cut for it otherwise.
    pub fn view_json_for(&self, reader: &okr::audience::Reader) -> Bytes {
        let (seq, okr) = {
            let mut st = self.lock();
            let hidden = reader.hidden(st.live.projection());
            let seq = st.life.seq();
            st.live.rest_view(&hidden, seq, std::time::Instant::now())
        };
        protocol::live::encode_room_view(self.ctx.id.as_str(), seq, &okr)
    }

    /// A KR's check-ins as a time series, or `None` if the set has no such KR or `reader` may
    /// not read its objective (the same answer: its existence is not told either).
    pub fn kr_history_for(
        &self,
        kr: &str,
        reader: &okr::audience::Reader,
    ) -> Option<Vec<okr::HistoryPoint>> {
        let st = self.lock();
        let okr = st.live.projection();
        let objective = okr.objective(&okr.key_result(kr)?.objective)?;
        if !reader.may_read_objective(objective) {
            return None;
        }
        okr.kr_history(kr)
    }

    /// The owner of KR `kr` (`Some(None)`: it has none; `None`: no such KR).
    pub fn key_result_owner(&self, kr: &str) -> Option<Option<String>> {
        let st = self.lock();
        Some(st.live.projection().key_result(kr)?.owner.clone())
    }

    /// Moves the OKR projection's clock to now, publishing what time alone changed (overdue
    /// KRs and their reminders), so events and `?since=` resumes include them whether or not
    /// anyone is listening.
    ///
    /// On a shared log time moves with the log instead ([`Room::append_tick`]), so that every
    /// node derives the same events from it, once: here only presence and expiries.
    pub fn tick(&self) {
        let mut st = self.lock();
        let now_secs = (crate::clock::now_millis() / 1000).max(0) as u64;
        st.peers.close_expired(now_secs);
        st.live.close_expired(now_secs);
        let RoomState { live, life, .. } = &mut *st;
        if self.ctx.shared.is_some() {
            live.tick_presence(life.seq(), &self.ctx.metrics);
        } else {
            live.tick(life.seq(), &self.ctx.metrics);
            st.hand_notices(&self.ctx, true);
        }
    }

    /// On a shared log: whether the log has been quiet for `every` (by the log's clock at its
    /// last entry), so that a tick entry is due to move the room's clock.
    pub fn tick_due(&self, every: std::time::Duration) -> bool {
        if self.ctx.shared.is_none() {
            return false;
        }
        let st = self.lock();
        if st.tick_waiting || st.life.is_closing() {
            return false;
        }
        st.last_at.is_none_or(|at| {
            crate::clock::now_millis().saturating_sub(at) >= every.as_millis() as i64
        })
    }

    /// Appends a tick entry to the shared log: an entry without an update. When the log numbers
    /// it, every node moves the room's clock to the log's time at that entry and publishes what
    /// time alone changed (overdue KRs, reminders) at its seq — once per room, whichever nodes
    /// hold it. The hub appends one from the node holding the room's clock lease.
    pub fn append_tick(&self) {
        let ctx = &self.ctx;
        let Some(sh) = &ctx.shared else {
            return;
        };
        let mut st = self.lock();
        let local = sh.next_local();
        ctx.persister
            .append_for(ctx.id.clone(), local, Bytes::new(), None, None);
        st.tick_waiting = true;
        st.order.hold(
            Origin {
                node: sh.node().clone(),
                local,
            },
            Pending {
                touched: Touched::default(),
                by: None,
                update: Bytes::new(),
                since: std::time::Instant::now(),
            },
        );
    }

    /// Waits until every update committed so far is durable in the store.
    pub async fn flush(&self) -> Result<(), crate::store::StoreError> {
        self.ctx.persister.flush().await
    }

    /// If the log has grown since the last snapshot: the doc encoded as one update, and the
    /// log sequence number it covers. None for a room that is poisoned or has nothing new.
    pub fn snapshot_if_dirty(&self) -> Option<(Vec<u8>, u64)> {
        let mut st = self.lock();
        (st.life.snapshottable() && st.life.dirty()).then(|| st.encode_measured())
    }

    /// The doc encoded as one update and the log sequence number it covers, dirty or not
    /// (a write-back to a store that lost it). None for a poisoned room.
    pub fn snapshot(&self) -> Option<(Vec<u8>, u64)> {
        let mut st = self.lock();
        st.life.snapshottable().then(|| st.encode_measured())
    }

    /// The room's sequence number: the last update numbered and applied here.
    pub fn seq(&self) -> u64 {
        self.lock().life.seq()
    }

    /// Updates logged since the last snapshot.
    pub fn log_len(&self) -> u64 {
        self.lock().life.log_len()
    }

    /// Records that another node is writing a snapshot covering about `upto` (it holds the
    /// room's compaction lease): this node does not try again before the log grows anew.
    pub fn compaction_done_elsewhere(&self, upto: u64) {
        self.lock().life.compacted(upto);
    }

    /// Records that a snapshot covering `upto` was written.
    pub fn compacted(&self, upto: u64) {
        self.lock().life.compacted(upto);
        self.ctx.metrics.compactions.inc();
    }

    /// Starts unloading if nobody has been connected for `idle`; from then on joins are
    /// refused. Returns whether it started.
    pub fn try_begin_close(&self, idle: std::time::Duration) -> bool {
        let mut st = self.lock();
        let empty = st.is_empty();
        st.life.try_begin_close(empty, idle)
    }

    /// Marks the room closing regardless of peers (shutdown); their connections are closed
    /// separately.
    pub fn begin_close(&self) {
        self.lock().life.begin_close();
    }

    /// Takes back a [`Room::try_begin_close`] whose final snapshot failed: the room stays.
    pub fn abort_close(&self) {
        self.lock().life.abort_close();
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

impl<S: Sink> Drop for Room<S> {
    fn drop(&mut self) {
        self.ctx.metrics.rooms_alive.dec();
    }
}

/// The room's lock. Releasing it writes the sinks that were given frames meanwhile
/// ([`Kicks`]): the socket writes run after the lock is free, in the releasing thread.
struct Locked<'a, S: Sink> {
    guard: Option<MutexGuard<'a, RoomState<S>>>,
    metrics: &'a Metrics,
}

impl<S: Sink> Deref for Locked<'_, S> {
    type Target = RoomState<S>;
    fn deref(&self) -> &RoomState<S> {
        self.guard.as_deref().expect("held until dropped")
    }
}

impl<S: Sink> DerefMut for Locked<'_, S> {
    fn deref_mut(&mut self) -> &mut RoomState<S> {
        self.guard.as_deref_mut().expect("held until dropped")
    }
}

impl<S: Sink> Drop for Locked<'_, S> {
    fn drop(&mut self) {
        let Some(mut st) = self.guard.take() else {
            return;
        };
        let mut kicks = st.peers.kicks().take();
        kicks.append(st.live.kicks());
        drop(st);
        if !kicks.is_empty() {
            kicks.run(self.metrics);
        }
    }
}

/// What one y-sync message of a frame asks of the room, decoded before the lock is taken.
enum Action {
    Step1(StateVector),
    Update {
        raw: Vec<u8>,
        /// The parts to apply it in ([`protocol::decode_update`]).
        update: Vec<Update>,
        relay: Option<Bytes>,
    },
    Awareness {
        update: AwarenessUpdate,
        relay: Option<Bytes>,
    },
    AwarenessQuery,
}

/// Decodes a client's frame into actions: the costly, failure-prone part, done outside the lock.
/// The decode guard walks the whole frame, its updates included, before yrs reads any of it.
fn decode_actions(
    frame: &Bytes,
    limits: &Limits,
    metrics: &Metrics,
) -> Result<Vec<Action>, CloseReason> {
    let messages = protocol::decode_frame_within(frame, limits).map_err(|e| {
        if let protocol::FrameError::Refused(r) = &e {
            metrics.count_decode_refusal(r.rule());
        }
        CloseReason::malformed(e)
    })?;
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
                // Checked by the guard with the rest of the frame (and again, when it is long
                // enough to need cutting into parts).
                let update =
                    protocol::decode_update(&raw, limits).map_err(CloseReason::malformed)?;
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
    Ok(actions)
}

/// Decodes an update another node made (or the store holds), guarded under the limits of the
/// store: a node that refused what the log holds would drift from the others.
fn decode_remote(update: &[u8], metrics: &Metrics) -> Result<Vec<Update>, RemoteError> {
    protocol::decode_update(update, &Limits::STORED).map_err(|e| {
        if let protocol::FrameError::Refused(r) = &e {
            metrics.count_decode_refusal(r.rule());
        }
        RemoteError::Malformed(e.to_string())
    })
}

impl<S: Sink> RoomState<S> {
    /// The log numbered `origin`'s update `seq`, which this room has passed already: if the
    /// update was pending here it is numbered now (never logged again), and what it touched is
    /// projected at the room's present seq.
    fn settle(&mut self, ctx: &Ctx<S>, origin: &Origin, seq: u64, own: &str) {
        if let Some(p) = self.numbered(origin, seq, own) {
            let now = self.life.seq();
            let local = *origin.node == *own;
            self.project(ctx, now, p.by.as_ref(), None, p.touched, local);
        }
    }

    /// The log numbered `origin`'s update `seq`: its pending state here, if any (this node's
    /// own tick entry no longer waits).
    fn numbered(&mut self, origin: &Origin, seq: u64, own: &str) -> Option<Pending> {
        let p = self.order.numbered(origin, seq, own)?;
        if *origin.node == *own && p.update.is_empty() {
            self.tick_waiting = false;
        }
        Some(p)
    }

    /// Another node holding the room, now heard from (known from now on).
    fn heard_from(&mut self, node: Arc<str>) -> &mut RemoteNode {
        let next = &mut self.next_peer;
        let remote = self.remote.entry(node).or_insert_with(|| {
            let stand_in = *next;
            *next += 1;
            RemoteNode {
                stand_in,
                live: Default::default(),
                seen: std::time::Instant::now(),
            }
        });
        remote.seen = std::time::Instant::now();
        remote
    }

    /// Applies an update of another node (or the store); a panic inside yrs resets the room.
    fn apply_remote_parts(&mut self, ctx: &Ctx<S>, parts: Vec<Update>) -> Result<(), RemoteError> {
        if let Err(e) = self.doc.apply(parts) {
            if matches!(e, ApplyError::Panicked) {
                tracing::error!(room = %ctx.id, "remote update panicked inside yrs; resetting the room");
                self.life.poison();
                self.peers.close_all(&CloseReason::room_reset());
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// Whether one more connection may join: the room is open and under its connection limit.
    fn admit_join(&self, ctx: &Ctx<S>) -> Result<(), JoinRefused> {
        if self.life.is_closing() {
            return Err(JoinRefused::Closing(RoomClosing));
        }
        let limit = ctx.limits.max_connections;
        if self.peers.len() + self.live.subscriber_count() >= limit {
            ctx.metrics.count_limit("room_connections");
            return Err(JoinRefused::Full(limit));
        }
        Ok(())
    }

    /// Whether a server-side change may be made: the room is open and its doc under its size
    /// limit (a change is bounded by the command body's size, so it may pass the limit by
    /// that much at most).
    fn admit_change(&self, ctx: &Ctx<S>) -> Result<(), Refused> {
        if self.life.is_closing() {
            return Err(Refused::Closing);
        }
        let limit = ctx.limits.max_doc_bytes;
        if !self.size.admits(1, limit) {
            ctx.metrics.count_limit("doc_size");
            return Err(Refused::DocTooLarge(limit));
        }
        Ok(())
    }

    fn new_peer(&mut self) -> PeerId {
        let peer = self.next_peer;
        self.next_peer += 1;
        self.life.occupied();
        peer
    }

    /// The doc encoded as one update and the seq it covers; its size is measured anew.
    fn encode_measured(&mut self) -> (Vec<u8>, u64) {
        let full = self.doc.encode_full();
        self.size = DocSize::measured(full.len());
        (full, self.life.seq())
    }

    /// Nobody connected, by either protocol.
    fn is_empty(&self) -> bool {
        self.peers.is_empty() && self.live.subscriber_count() == 0
    }

    /// Commits what a server-side transaction changed, if anything.
    fn commit_local(
        &mut self,
        ctx: &Ctx<S>,
        update: Vec<u8>,
        by: Option<&UserId>,
    ) -> Option<Ticket> {
        if protocol::is_empty_update(&update) {
            return None;
        }
        let frame = protocol::update_frame(&update);
        Some(self.commit(
            ctx,
            Change {
                update: Bytes::from(update),
                frame,
                origin: None,
                by,
                touched: None,
                share: None,
            },
        ))
    }

    /// Applies a `/sync` client's update: refused whole, before it is applied, when the
    /// connection is a viewer's, the store is behind, or it writes as another writer's Yjs
    /// client id; applied and checked against the document's rules otherwise — and, if it
    /// breaks one, undone at once, so that the doc (and every event) is as if it never came.
    fn receive_update(
        &mut self,
        ctx: &Ctx<S>,
        peer: PeerId,
        raw: Vec<u8>,
        update: Vec<Update>,
        relay: Option<Bytes>,
    ) -> Result<(), CloseReason> {
        let role = self.peers.role(peer);
        let user = self.peers.user(peer).cloned();
        if role == Role::Viewer {
            ctx.metrics.refused_updates.inc();
            return Err(CloseReason::forbidden(
                "a viewer cannot change the document",
            ));
        }
        // Refused, not applied, when the store cannot take it (never dropped later).
        if ctx.persister.admit().is_err() {
            return Err(CloseReason::store_unavailable());
        }
        let share = self.shares.get(&peer).cloned();
        let limit = ctx.limits.persist_share_bytes;
        if share.as_ref().is_some_and(|s| !s.admits(raw.len(), limit)) {
            ctx.metrics.count_limit("persist_share");
            tracing::warn!(room = %ctx.id, peer, limit, "update refused: the connection's share of the persist buffer is full");
            return Err(CloseReason::writer_ahead(limit));
        }
        let limit = ctx.limits.max_doc_bytes;
        if !self.size.admits(raw.len(), limit) {
            ctx.metrics.count_limit("doc_size");
            tracing::warn!(room = %ctx.id, peer, limit, size = self.size.bytes(), update = raw.len(), "update refused: the room's document would pass its size limit");
            return Err(CloseReason::doc_too_large(limit));
        }
        let before = match self.doc.admit_update(&update, user.as_ref()) {
            Ok(before) => before,
            Err(e) => {
                ctx.metrics.refused_updates.inc();
                tracing::warn!(room = %ctx.id, peer, user = ?user.as_ref().map(UserId::as_str), error = %e, "update refused");
                return Err(CloseReason::forbidden(e));
            }
        };
        match self.doc.apply_client_update(update) {
            Ok(()) => {}
            Err(ApplyError::Invalid(e)) => return Err(CloseReason::malformed(e)),
            Err(ApplyError::Panicked) => {
                // yrs panicked half-way through an update: the doc can no longer be trusted.
                // Reset the room: everyone reconnects and the room reloads from the store,
                // which holds every update before this one.
                tracing::error!(room = %ctx.id, peer, "update panicked inside yrs; resetting the room");
                self.life.poison();
                self.peers.close_all(&CloseReason::room_reset());
                return Err(CloseReason::malformed("update could not be applied"));
            }
        }
        let mut touched = self.live.touched();
        let writer = okr::guard::Writer {
            user: user.as_ref().map(UserId::as_str),
            admin: role == Role::Admin,
            team_room: ctx.team_room,
        };
        let verdict = okr::guard::check(
            &self.doc.doc().transact(),
            self.live.projection(),
            &touched,
            &writer,
            crate::clock::now_millis(),
        );
        let (update, frame, refused) = match verdict {
            Ok(()) => {
                self.doc.keep_client_update();
                let frame = relay.unwrap_or_else(|| protocol::update_frame(&raw));
                (raw, frame, None)
            }
            Err(violation) => {
                // The update and its undoing go out as one change: every replica (the store,
                // the other peers) needs both to stay in step, and together they change nothing.
                let net = self.doc.undo_client_update(&before);
                touched.extend(self.live.touched());
                ctx.metrics.refused_updates.inc();
                tracing::warn!(room = %ctx.id, peer, user = ?writer.user, %violation, "update undone: it breaks the document's rules");
                let frame = protocol::update_frame(&net);
                (net, frame, Some(CloseReason::forbidden(violation)))
            }
        };
        self.commit(
            ctx,
            Change {
                update: Bytes::from(update),
                frame,
                origin: Some(peer),
                by: user.as_ref(),
                touched: Some(touched),
                share,
            },
        );
        refused.map_or(Ok(()), Err)
    }

    /// The one place an update made on this node leaves the room: numbered, persisted, then
    /// delivered. On a shared log it is numbered by the log: it goes to the persister and the
    /// other nodes (fast path) under this node's own number and is fanned out here at once,
    /// but projected only when the log's number comes back ([`Room::logged`]).
    fn commit(&mut self, ctx: &Ctx<S>, change: Change<'_>) -> Ticket {
        self.size.grew(change.update.len());
        let touched = change.touched.unwrap_or_else(|| self.live.touched());
        let Some(sh) = &ctx.shared else {
            let seq = self.life.next_seq();
            ctx.persister.append_for(
                ctx.id.clone(),
                seq,
                change.update,
                change.by.cloned(),
                change.share,
            );
            self.deliver(ctx, seq, &change.frame, change.origin, change.by, touched);
            return Ticket::Seq(seq);
        };
        let local = sh.next_local();
        ctx.persister.append_for(
            ctx.id.clone(),
            local,
            change.update.clone(),
            change.by.cloned(),
            change.share,
        );
        sh.log
            .publish_update(&ctx.id, local, change.by, change.update.clone());
        self.fan_out(&change.frame, change.origin, &ctx.metrics);
        self.order.hold(
            Origin {
                node: sh.node().clone(),
                local,
            },
            Pending {
                touched,
                by: change.by.cloned(),
                update: change.update,
                since: std::time::Instant::now(),
            },
        );
        Ticket::Local(local)
    }

    /// Delivers an applied update at `seq`: fanned out to the `/sync` peers, then projected.
    fn deliver(
        &mut self,
        ctx: &Ctx<S>,
        seq: u64,
        frame: &Bytes,
        origin: Option<PeerId>,
        by: Option<&UserId>,
        touched: Touched,
    ) {
        self.fan_out(frame, origin, &ctx.metrics);
        self.project(ctx, seq, by, None, touched, true);
    }

    /// The cached full state dropped, the frame fanned out to every `/sync` peer but `origin`.
    fn fan_out(&mut self, frame: &Bytes, origin: Option<PeerId>, metrics: &Metrics) {
        self.doc.changed();
        self.broadcast(frame, origin, metrics);
    }

    /// A tick entry of the shared log numbered `seq`, at the log's time `at`: the projection's
    /// clock moves there and what time changed is published.
    fn tick_at(&mut self, ctx: &Ctx<S>, seq: u64, at: i64, local: bool) {
        self.live.tick_clock(seq, at, &ctx.metrics);
        if let Some(inboxes) = &ctx.inboxes {
            inboxes.deliver(&ctx.id, self.live.take_mail(), &ctx.metrics);
        }
        self.hand_notices(ctx, local);
    }

    /// Hands the notices published since the last call to `ctx.notices` when the update they
    /// came from is this node's (`local`: made here, or a tick entry written here); every other
    /// node projecting the same entry drops them, so each is sent once.
    fn hand_notices(&mut self, ctx: &Ctx<S>, local: bool) {
        if let Some(sink) = &ctx.notices {
            let notices = self.live.take_notices();
            if local && !notices.is_empty() {
                sink.notices(notices);
            }
        }
    }

    /// The OKR projection brought up to date with what an update at `seq` touched: events to
    /// `/live`, mentions to the inboxes.
    fn project(
        &mut self,
        ctx: &Ctx<S>,
        seq: u64,
        by: Option<&UserId>,
        at: Option<i64>,
        touched: Touched,
        local: bool,
    ) {
        self.live
            .updated(self.doc.doc(), touched, seq, by, at, &ctx.metrics);
        if let Some(inboxes) = &ctx.inboxes {
            inboxes.deliver(&ctx.id, self.live.take_mail(), &ctx.metrics);
        }
        self.hand_notices(ctx, local);
    }

    /// Queues `frame` for every `/sync` peer but `except`; removes those cut off.
    fn broadcast(&mut self, frame: &Bytes, except: Option<PeerId>, metrics: &Metrics) {
        for id in self.peers.broadcast(frame, except, metrics) {
            self.remove_peer(id, metrics);
        }
    }

    /// Removes a `/sync` peer and its awareness states, and tells the others.
    fn remove_peer(&mut self, peer: PeerId, metrics: &Metrics) {
        if self.peers.remove(peer).is_none() {
            return;
        }
        self.shares.remove(&peer);
        if self.is_empty() {
            self.life.vacated();
        }
        let owned = self.doc.remove_owned_by(peer);
        if owned.is_empty() {
            return;
        }
        self.live
            .awareness_removed(&owned, self.life.seq(), metrics);
        if self.peers.is_empty() && self.publish.is_none() {
            return;
        }
        if let Some(frame) = self.doc.removal_frame(owned) {
            if let Some((room, log)) = &self.publish {
                log.publish_awareness(room, frame.clone());
            }
            // May cut off further slow peers, which recurses at most once per peer.
            self.broadcast(&frame, None, metrics);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The room without a network: frames in, queued frames out.
    use super::sink::testing::Queue;
    use super::*;
    use crate::store::embedded::EmbeddedStore;
    use serde_json::json;
    use yrs::sync::Awareness;
    use yrs::updates::decoder::Decode;
    use yrs::updates::encoder::Encode;
    use yrs::{Map, Transact, WriteTxn};

    struct Joined {
        peer: PeerId,
        outbox: Arc<Queue>,
    }

    struct Fixture {
        room: Room<Queue>,
        send_queue: usize,
        store: Arc<EmbeddedStore>,
        _dir: tempfile::TempDir,
    }

    impl Fixture {
        fn join(&self) -> Result<Joined, JoinRefused> {
            let outbox = Arc::new(Queue::new(self.send_queue));
            let peer = self.room.join(&Client::anonymous(), outbox.clone())?;
            Ok(Joined { peer, outbox })
        }
    }

    fn fixture(send_queue: usize) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let metrics = Arc::new(Metrics::new());
        let persister = Persister::start(
            store.clone(),
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
        );
        Fixture {
            room,
            send_queue,
            store,
            _dir: dir,
        }
    }

    fn update_frame_from(client: &Doc, key: &str) -> Bytes {
        let mut txn = client.transact_mut();
        txn.get_or_insert_map("m").insert(&mut txn, key, 1);
        let update = txn.encode_update_v1();
        Bytes::from(Message::Sync(SyncMessage::Update(update)).encode_v1())
    }

    fn drain(outbox: &mut Arc<Queue>) -> Vec<Bytes> {
        outbox.drain()
    }

    #[tokio::test]
    async fn join_queues_sync_step1_first() {
        let f = fixture(8);
        let mut a = f.join().unwrap();
        let first = drain(&mut a.outbox).remove(0);
        let msgs = protocol::decode_frame(&first).unwrap();
        assert!(matches!(msgs[0], Message::Sync(SyncMessage::SyncStep1(_))));
    }

    #[tokio::test]
    async fn an_update_is_encoded_once_and_shared_by_every_other_peer() {
        let f = fixture(8);
        let mut a = f.join().unwrap();
        let mut b = f.join().unwrap();
        let mut c = f.join().unwrap();
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
        let slow = f.join().unwrap(); // never drained
        let mut fast = f.join().unwrap();
        let writer = f.join().unwrap();
        let client = Doc::new();
        for i in 0..10 {
            f.room
                .receive(writer.peer, update_frame_from(&client, &format!("k{i}")))
                .unwrap();
            drain(&mut fast.outbox);
        }
        assert!(slow.outbox.is_closed());
        assert_eq!(slow.outbox.reason().unwrap().code(), 1013);
        assert!(!fast.outbox.is_closed());
        assert_eq!(f.room.peer_count(), 2);
        assert_eq!(
            f.room.read(|d| d.get_or_insert_map("m").len(&d.transact())),
            10
        );
    }

    #[tokio::test]
    async fn a_writer_may_have_only_its_share_of_the_persist_buffer_waiting() {
        let mut f = fixture(64);
        f.room = f.room.with_limits(
            RoomLimits {
                persist_share_bytes: 40,
                ..RoomLimits::default()
            },
            0,
        );
        let a = f.join().unwrap();
        let b = f.join().unwrap();
        let (ca, cb) = (Doc::new(), Doc::new());
        // Nothing of a's waits: admitted whatever its size. (The persister task cannot run
        // between these synchronous calls, so a's first update is still waiting below.)
        f.room
            .receive(a.peer, update_frame_from(&ca, "first"))
            .unwrap();
        let refused = f
            .room
            .receive(a.peer, update_frame_from(&ca, &"x".repeat(40)))
            .expect_err("a's share is used up");
        assert_eq!(refused.code(), 1013);
        assert!(
            refused.text.contains("this connection has 40 bytes"),
            "{refused:?}"
        );
        // b has a share of its own.
        f.room
            .receive(b.peer, update_frame_from(&cb, "other"))
            .unwrap();
        // Written: a's share is free again.
        f.room.flush().await.unwrap();
        f.room
            .receive(a.peer, update_frame_from(&Doc::new(), "later"))
            .unwrap();
        let keys = f.room.read(|d| d.get_or_insert_map("m").len(&d.transact()));
        assert_eq!(keys, 3, "first, other and later; not the refused one");
    }

    #[tokio::test]
    async fn a_room_takes_at_most_its_connection_limit() {
        let mut f = fixture(8);
        f.room = f.room.with_limits(
            RoomLimits {
                max_connections: 2,
                ..RoomLimits::default()
            },
            0,
        );
        let a = f.join().unwrap();
        let _live = f.room.join_live(
            UserId::parse("li").unwrap(),
            okr::audience::Reader::all(),
            None,
            None,
            Arc::new(Queue::new(8)),
        );
        assert!(matches!(f.join(), Err(JoinRefused::Full(2))));
        f.room.leave(a.peer);
        assert!(f.join().is_ok(), "a place came back");
    }

    #[tokio::test]
    async fn leaving_removes_only_the_states_a_peer_published() {
        let f = fixture(8);
        let a = f.join().unwrap();
        let b = f.join().unwrap();
        let mut c = f.join().unwrap();
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
        let writer = f.join().unwrap();
        f.room
            .receive(writer.peer, update_frame_from(&client, "a"))
            .unwrap();
        let mut a = f.join().unwrap();
        let mut b = f.join().unwrap();
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
    async fn a_long_update_is_applied_in_parts_and_undone_whole() {
        // An editor's 100 check-ins, each its own transaction, merged into one update: one
        // run of 100 blocks, applied in parts (protocol::bound::split_v1). They are forged
        // (another author), so the whole update is undone, every part of it.
        let f = fixture(64);
        let editor = Client {
            user: Some(UserId::parse("ana").unwrap()),
            role: Role::Editor,
            expires_at: None,
        };
        let ana = f.room.join(&editor, Arc::new(Queue::new(64))).unwrap();
        let other = f.join().unwrap();
        let writer = Doc::new();
        let mut edits = Vec::new();
        for i in 0..100 {
            let mut txn = writer.transact_mut();
            let checkin = yrs::any!({"key_result": "kr-1", "author": "boss", "at": 0, "value": 1});
            txn.get_or_insert_map("checkins")
                .insert(&mut txn, format!("ci-{i}"), checkin);
            edits.push(txn.encode_update_v1());
        }
        let merged = yrs::merge_updates_v1(edits.iter().map(|u| u.as_slice())).unwrap();
        let parts = protocol::decode_update(&merged, &Limits::default()).unwrap();
        assert!(parts.len() > 1, "cut into {} parts", parts.len());
        let refused = f
            .room
            .receive(ana, protocol::update_frame(&merged))
            .unwrap_err();
        assert_eq!(refused.kind, protocol::CloseKind::Forbidden, "{refused:?}");
        let checkins = f.room.read(|d| {
            let txn = d.transact();
            yrs::ReadTxn::get_map(&txn, "checkins").map_or(0, |m| m.len(&txn))
        });
        assert_eq!(checkins, 0, "every part was undone");
        assert!(!other.outbox.is_closed());
    }

    #[tokio::test]
    async fn an_update_may_write_only_as_its_users_client_ids_and_without_gaps() {
        let f = fixture(64);
        let client = |user: &str| Client {
            user: Some(UserId::parse(user).unwrap()),
            role: Role::Editor,
            expires_at: None,
        };
        let ana = f
            .room
            .join(&client("ana"), Arc::new(Queue::new(64)))
            .unwrap();
        let li = f
            .room
            .join(&client("li"), Arc::new(Queue::new(64)))
            .unwrap();
        let ana_doc = Doc::new();
        f.room
            .receive(ana, update_frame_from(&ana_doc, "a1"))
            .unwrap();
        // li sends items under ana's Yjs client id (the next ones ana would write): a doc of
        // ana's id, synced with what she wrote.
        let forger = Doc::with_client_id(ana_doc.client_id().get());
        let state =
            yrs::ReadTxn::encode_state_as_update_v1(&ana_doc.transact(), &StateVector::default());
        forger
            .transact_mut()
            .apply_update(Update::decode_v1(&state).unwrap())
            .unwrap();
        let forged = update_frame_from(&forger, "forged");
        let refused = f.room.receive(li, forged).unwrap_err();
        assert_eq!(refused.kind, protocol::CloseKind::Forbidden, "{refused:?}");
        assert!(refused.text.contains("another writer"), "{refused:?}");
        // ana herself may send it.
        let next = update_frame_from(&ana_doc, "a2");
        f.room.receive(ana, next).unwrap();
        // An update that skips one of its own earlier ones would wait, unapplied: refused.
        let _skipped = update_frame_from(&ana_doc, "a3");
        let gap = update_frame_from(&ana_doc, "a4");
        let refused = f.room.receive(ana, gap).unwrap_err();
        assert!(refused.text.contains("does not have"), "{refused:?}");
        let keys = f.room.read(|d| {
            let m = d.get_or_insert_map("m");
            let txn = d.transact();
            let mut keys: Vec<String> = m.keys(&txn).map(str::to_owned).collect();
            keys.sort();
            keys
        });
        assert_eq!(keys, vec!["a1", "a2"]);
    }

    #[tokio::test]
    async fn a_closing_room_refuses_joins() {
        let f = fixture(8);
        assert!(f.room.try_begin_close(std::time::Duration::ZERO));
        assert!(f.join().is_err());
        f.room.abort_close();
        assert!(f.join().is_ok());
    }

    #[tokio::test]
    async fn a_remote_update_reaches_every_peer_and_is_not_persisted_again() {
        use crate::store::DocStore;
        let f = fixture(8);
        let mut a = f.join().unwrap();
        let mut b = f.join().unwrap();
        drain(&mut a.outbox);
        drain(&mut b.outbox);
        let other_node = Doc::new();
        let update = {
            let mut txn = other_node.transact_mut();
            txn.get_or_insert_map("m").insert(&mut txn, "k", 1);
            txn.encode_update_v1()
        };
        f.room.apply_remote(7, Bytes::from(update), None).unwrap();
        // Every local peer gets it: none of them sent it.
        assert_eq!(drain(&mut a.outbox).len(), 1);
        assert_eq!(drain(&mut b.outbox).len(), 1);
        assert_eq!(f.room.view().0, 7, "numbered by the shared log");
        assert_eq!(
            f.room.read(|d| d.get_or_insert_map("m").len(&d.transact())),
            1
        );
        f.room.flush().await.unwrap();
        let stored = f.store.load(f.room.id()).await.unwrap();
        assert!(
            stored.is_empty(),
            "the other node logged it; this one does not"
        );
        // A later local update numbers after it.
        let client = Doc::new();
        f.room
            .receive(a.peer, update_frame_from(&client, "x"))
            .unwrap();
        assert_eq!(f.room.view().0, 8);
        assert!(f
            .room
            .apply_remote(9, Bytes::from_static(&[1, 2, 3]), None)
            .is_err());
        assert_eq!(f.room.view().0, 8, "a bad remote update changes nothing");
    }

    #[tokio::test]
    async fn a_server_transaction_is_refused_while_the_room_closes() {
        let f = fixture(8);
        assert!(f.room.try_begin_close(std::time::Duration::ZERO));
        let mut ran = false;
        let refused = f.room.transact(None, |_| ran = true);
        assert!(matches!(refused, Err(Refused::Closing)));
        assert!(!ran, "nothing ran");
        f.room.abort_close();
        f.room
            .transact(None, |txn| txn.get_or_insert_map("m").insert(txn, "k", 1))
            .unwrap();
        assert_eq!(f.room.log_len(), 1);
    }

    fn live(f: &Fixture, user: &str, since: Option<u64>) -> Arc<Queue> {
        let outbox = Arc::new(Queue::new(4096));
        let user = UserId::parse(user).unwrap();
        f.room
            .join_live(
                user,
                okr::audience::Reader::all(),
                None,
                since,
                outbox.clone(),
            )
            .unwrap();
        outbox
    }

    fn first_type(frames: &[Bytes]) -> String {
        let m: serde_json::Value = serde_json::from_slice(&frames[0]).unwrap();
        m["type"].as_str().unwrap().to_owned()
    }

    fn command(f: &Fixture, value: serde_json::Value) -> u64 {
        let cmd: okr::Command = serde_json::from_value(value).unwrap();
        let actor = UserId::parse("ann").unwrap();
        match f.room.command(&cmd, &actor).unwrap().0 {
            Ticket::Seq(seq) => seq,
            Ticket::Local(_) => unreachable!("no shared log here"),
        }
    }

    #[tokio::test]
    async fn joiners_share_one_snapshot_until_the_set_or_presence_changes() {
        let f = fixture(8);
        command(
            &f,
            json!({"type": "objective.create", "title": "Win 3 markets"}),
        );
        // The first screen joins (its presence changes the snapshot); two more of the same user
        // then see the same seq and presence: one frame for both (a reference count).
        live(&f, "screen", None);
        let (a, b) = (live(&f, "screen", None), live(&f, "screen", None));
        let (fa, fb) = (a.drain(), b.drain());
        assert_eq!(first_type(&fa), "snapshot");
        assert_eq!(
            fa[0].as_ptr(),
            fb[0].as_ptr(),
            "one snapshot frame for both"
        );
        // A change: the next joiner gets a new one, with the change in it.
        command(
            &f,
            json!({"type": "objective.create", "title": "Cut churn to 5%"}),
        );
        let c = live(&f, "screen", None).drain();
        assert_ne!(c[0].as_ptr(), fa[0].as_ptr());
        let snap: serde_json::Value = serde_json::from_slice(&c[0]).unwrap();
        assert_eq!(snap["okr"]["objectives"].as_array().unwrap().len(), 2);
        // The shared encoding is exactly what the typed snapshot encodes to, and REST's view too.
        let typed = protocol::live::encode(&protocol::live::ServerMessage::Control(
            protocol::live::Control::Snapshot {
                room: f.room.id().to_string(),
                seq: snap["seq"].as_u64().unwrap(),
                okr: Box::new(f.room.view().1),
                present: serde_json::from_value(snap["present"].clone()).unwrap(),
            },
        ));
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&typed).unwrap(),
            snap
        );
        let rest: serde_json::Value =
            serde_json::from_slice(&f.room.view_json_for(&okr::audience::Reader::all())).unwrap();
        assert_eq!(rest["okr"], snap["okr"]);
    }

    #[tokio::test]
    async fn the_history_is_bounded_in_bytes_and_a_resume_past_it_gets_a_snapshot() {
        let f = fixture(8);
        let o = command(&f, json!({"type": "objective.create", "title": "O"}));
        let o_id = f.room.view().1.objectives[0].id.clone();
        assert_eq!(o, 1);
        // A Yjs client writes a 2 MB description: one event, larger than the whole history.
        let huge = "x".repeat(2 << 20);
        f.room
            .transact(None, |txn| {
                let objectives = txn.get_or_insert_map("objectives");
                let m: yrs::MapRef = objectives.get(txn, &o_id).unwrap().cast().unwrap();
                m.insert(txn, "description", yrs::TextPrelim::new(huge.as_str()));
            })
            .unwrap();
        // Small events after it fit.
        for i in 0..3 {
            command(
                &f,
                json!({"type": "comment.create", "target": {"objective": o_id}, "text": format!("c{i}")}),
            );
        }
        let seq = f.room.view().0;
        // Resuming from before the big event: the history no longer reaches back: a snapshot.
        assert_eq!(first_type(&live(&f, "a", Some(o)).drain()), "snapshot");
        // Resuming after it: exactly the small events, well under the bound.
        let resumed = live(&f, "b", Some(seq - 3)).drain();
        assert_eq!(first_type(&resumed), "resumed");
        // (Its own presence follows the replay: not an event.)
        let replayed: Vec<&Bytes> = (resumed[1..].iter())
            .filter(|f| first_type(std::slice::from_ref(*f)) != "presence")
            .collect();
        assert_eq!(replayed.len(), 3, "three comment.created events");
        assert!(replayed.iter().map(|f| f.len()).sum::<usize>() < 4096);
    }

    /// A shared log that goes nowhere: what the room hands it is dropped (the relay and Redis
    /// are `tests/multinode.rs`'s); enough to drive the room's log-order bookkeeping.
    struct Nowhere(Arc<str>);

    #[async_trait::async_trait]
    impl crate::store::shared::SharedLog for Nowhere {
        fn node(&self) -> &Arc<str> {
            &self.0
        }
        fn take_feed(
            &self,
        ) -> Option<tokio::sync::mpsc::UnboundedReceiver<crate::store::shared::Heard>> {
            None
        }
        async fn follow(&self, _: &RoomId) -> Result<(), crate::store::StoreError> {
            Ok(())
        }
        async fn unfollow(&self, _: &RoomId) -> Result<(), crate::store::StoreError> {
            Ok(())
        }
        fn publish_update(&self, _: &RoomId, _: u64, _: Option<&UserId>, _: Bytes) {}
        fn publish_awareness(&self, _: &RoomId, _: Bytes) {}
        fn publish_presence(&self, _: &RoomId, _: &std::collections::BTreeMap<String, usize>) {}
        fn publish_query(&self, _: &RoomId) {}
        async fn read_after(
            &self,
            _: &RoomId,
            _: u64,
            _: usize,
        ) -> Result<crate::store::shared::Read, crate::store::StoreError> {
            Ok(crate::store::shared::Read::Entries(Vec::new()))
        }
        async fn heads(&self, rooms: &[RoomId]) -> Result<Vec<u64>, crate::store::StoreError> {
            Ok(vec![0; rooms.len()])
        }
        async fn try_lease(
            &self,
            _: &RoomId,
            _: std::time::Duration,
        ) -> Result<bool, crate::store::StoreError> {
            Ok(true)
        }
        async fn release_lease(&self, _: &RoomId) -> Result<(), crate::store::StoreError> {
            Ok(())
        }
        async fn hold_clock(
            &self,
            _: &RoomId,
            _: std::time::Duration,
        ) -> Result<bool, crate::store::StoreError> {
            Ok(true)
        }
    }

    #[tokio::test]
    async fn an_update_passed_by_a_catch_up_is_still_numbered_when_its_notice_comes() {
        let f = fixture(64);
        let node: Arc<str> = "me".into();
        let room = f.room.with_shared(SharedCtx {
            log: Arc::new(Nowhere(node.clone())),
            locals: Arc::default(),
        });
        let client = Doc::new();
        let joined = {
            let outbox = Arc::new(Queue::new(64));
            room.join(&Client::anonymous(), outbox).unwrap()
        };
        room.receive(joined, update_frame_from(&client, "a"))
            .unwrap();
        assert_eq!(room.pending_len(), 1, "applied, not numbered yet");
        assert_eq!(room.seq(), 0);
        // The room falls behind and catches up from a snapshot covering seq 5 (its own update
        // among them), before the notice of its update comes.
        let stored = StoredDoc {
            last_seq: 5,
            ..StoredDoc::default()
        };
        room.catch_up(&stored).unwrap();
        assert_eq!(room.seq(), 5);
        let own = Origin {
            node: node.clone(),
            local: 1,
        };
        assert_eq!(room.logged(3, &own, 1), Next::Done);
        assert_eq!(room.pending_len(), 0, "numbered, never logged again");
        assert_eq!(room.seq_of(Ticket::Local(1)).await, 3);
        assert_eq!(room.relog_stale(std::time::Duration::ZERO), 0);
    }
}
