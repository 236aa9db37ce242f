//! The hub: the registry of loaded rooms, loading on first join and unloading when idle.
//!
//! # Loading exactly once
//!
//! The registry maps a room id to a slot holding a `tokio::sync::OnceCell`. The first joiner
//! of a cold room runs the load inside `get_or_try_init`; anyone arriving meanwhile waits on
//! the same cell, so two clients joining at the same instant get one room, and nobody is
//! subscribed (or sent a sync step) before the room is fully loaded. If the load fails, the cell
//! stays empty and the slot is removed: nothing is left behind, and the next join tries again.
//! The load runs in the joining connection's task, so a client that leaves mid-load cancels
//! nothing but its own wait.
//!
//! # Unloading
//!
//! A sweeper task visits every room each `sweep_interval`. A room whose log has grown by
//! `compact_after` updates is snapshotted. A room nobody has been connected to for
//! `idle_unload` is closed to joins, its pending updates are flushed, its final snapshot
//! written, and only then is it taken out of the registry — joiners that arrive during that
//! wait for it ([`Room::unloaded`]) and then load a fresh copy that includes everything.
//!
//! # Corrupt rooms
//!
//! A load that finds the room's stored data corrupt (a value failing its checksum:
//! [`StoreError::Corrupt`]) is refused like any failed load — nothing is served — and the room
//! is noted: logged at error with its seq, counted (`okrhub_store_corrupt_total`,
//! `okrhub_store_corrupt_rooms`) and reported by [`Hub::corruption`] (in `/readyz`). For
//! `corrupt_recheck` after that, joins of the room are refused at once without reading the
//! store again, so whatever the traffic a corrupt room costs one store read per interval; the
//! first join after it reads the store again, and a room an operator has repaired loads and is
//! no longer reported.
//!
//! # Watching the store
//!
//! [`Hub::run_store_probe`] asks the store every second whether it is reachable and still holds
//! its data ([`DocStore::probe`]); the answer feeds readiness. When a store (Redis) comes back
//! empty, every loaded room is written back as a full snapshot at its current seq, so nothing
//! held in memory is lost; until every room made it, the write-back is retried each probe.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::identity::UserId;
use crate::metrics::Metrics;
use crate::okr::audience::Reader;
use crate::protocol::bound::Limits;
use crate::protocol::CloseReason;
use crate::room::inbox::Inboxes;
use crate::room::SharedCtx;
use crate::room::{Client, JoinRefused, PeerId, Room, RoomLimits, Sink};
use crate::room_id::RoomId;
use crate::store::persister::Persister;
use crate::store::{DocStore, Probe, StoreError, StoredDoc};

pub mod relay;

/// How long a node may hold a room's compaction lease (renewed by nothing: a compaction
/// takes a flush and one script; a node whose lease ran out writes nothing).
pub const COMPACTION_LEASE: Duration = Duration::from_secs(30);

/// The hub's settings (from [`crate::config::ServeArgs`]).
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Frames a connection may have queued before it is cut off as a slow consumer.
    pub send_queue: usize,
    /// How long a room stays loaded with nobody connected.
    pub idle_unload: Duration,
    /// Log length that triggers a snapshot of a loaded room.
    pub compact_after: u64,
    /// How often the sweeper looks at the rooms.
    pub sweep_interval: Duration,
    /// Largest WebSocket message accepted from a client, in bytes.
    pub max_message_size: usize,
    /// What each room and its connections may take.
    pub room_limits: RoomLimits,
    /// Messages a second each connection may send (None: no limit).
    pub message_rate: Option<RateLimit>,
    /// How long a room found corrupt is refused without reading the store again.
    pub corrupt_recheck: Duration,
    /// What the decode guard allows in a client's frame (nesting depth).
    pub decode_limits: Limits,
    /// On a shared log: how long a room's log may stay quiet before its clock moves by a tick
    /// entry (time-driven events are at most this late).
    pub tick_every: Duration,
}

/// A connection's message rate: a token bucket of `burst` messages refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            send_queue: 512,
            idle_unload: Duration::from_secs(30),
            compact_after: 1000,
            sweep_interval: Duration::from_secs(1),
            max_message_size: 8 << 20,
            room_limits: RoomLimits::default(),
            message_rate: None,
            corrupt_recheck: Duration::from_secs(30),
            decode_limits: Limits::default(),
            tick_every: Duration::from_secs(60),
        }
    }
}

struct Slot<S: Sink> {
    room: OnceCell<Arc<Room<S>>>,
}

impl<S: Sink> Default for Slot<S> {
    fn default() -> Self {
        Slot {
            room: OnceCell::new(),
        }
    }
}

/// Why a join failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("room {room} could not be loaded: {source}")]
    Load { room: RoomId, source: StoreError },
    /// The room has as many connections as it takes.
    #[error("room {room} is full: {limit} connections")]
    Full { room: RoomId, limit: usize },
}

impl From<JoinError> for CloseReason {
    /// The close a connection gets when it cannot join (logged here).
    fn from(e: JoinError) -> Self {
        match e {
            JoinError::Load { .. } => {
                tracing::error!(error = %e, "join failed");
                CloseReason::load_failed()
            }
            JoinError::Full { limit, .. } => {
                tracing::info!(error = %e, "join refused");
                CloseReason::room_full(limit)
            }
        }
    }
}

impl JoinError {
    /// Whether the room's stored data is corrupt (not a passing failure of the store).
    pub fn is_corrupt(&self) -> bool {
        match self {
            JoinError::Load { source, .. } => source.is_corrupt(),
            JoinError::Full { .. } => false,
        }
    }
}

/// A room whose stored data was found corrupt.
struct Corrupt {
    /// When the store was last read for it.
    found: tokio::time::Instant,
    seq: Option<u64>,
    reason: String,
}

/// The registry of loaded rooms, whose connections' frames go to sinks of type `S`. Cheap to
/// clone.
pub struct Hub<S: Sink> {
    inner: Arc<HubInner<S>>,
}

impl<S: Sink> Clone for Hub<S> {
    fn clone(&self) -> Self {
        Hub {
            inner: self.inner.clone(),
        }
    }
}

struct HubInner<S: Sink> {
    rooms: Mutex<HashMap<RoomId, Arc<Slot<S>>>>,
    store: Arc<dyn DocStore>,
    persister: Persister,
    metrics: Arc<Metrics>,
    config: HubConfig,
    /// Every user's mentions, fed by every room.
    inboxes: Arc<Inboxes<S>>,
    /// Where rooms loaded from now on hand their notices (chat robots), once set.
    notices: std::sync::OnceLock<Arc<dyn crate::room::notices::Notices>>,
    /// Rooms whose stored data was found corrupt, until one loads again.
    corrupt: Mutex<HashMap<RoomId, Corrupt>>,
    /// The log several nodes share, when the store is one ([`relay`]).
    shared: Option<SharedCtx>,
}

impl<S: Sink> Hub<S> {
    pub fn new(
        store: Arc<dyn DocStore>,
        persister: Persister,
        metrics: Arc<Metrics>,
        config: HubConfig,
    ) -> Self {
        Hub {
            inner: Arc::new(HubInner {
                rooms: Mutex::new(HashMap::new()),
                persister,
                metrics,
                config,
                inboxes: Arc::new(Inboxes::new(crate::clock::now_millis().max(0) as u64)),
                notices: std::sync::OnceLock::new(),
                corrupt: Mutex::new(HashMap::new()),
                shared: store.shared().map(|log| SharedCtx {
                    log,
                    locals: Arc::default(),
                }),
                store,
            }),
        }
    }

    /// Sends the notices of every room loaded from now on to `notices` (set once, before
    /// serving).
    pub fn set_notices(&self, notices: Arc<dyn crate::room::notices::Notices>) {
        let _ = self.inner.notices.set(notices);
    }

    /// Where notices go (the chat robots), once set: a scheduler that decides on its own (a
    /// reminder fired once across nodes) hands its [`Notice`](crate::okr::notice::Notice)s here.
    pub fn notices(&self) -> Option<&Arc<dyn crate::room::notices::Notices>> {
        self.inner.notices.get()
    }

    /// Every user's inbox of mentions (`/live/~inbox`).
    pub fn inboxes(&self) -> &Arc<Inboxes<S>> {
        &self.inner.inboxes
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// Whether the server should take new traffic (`/readyz`): `Err(reason)` while the store
    /// is failing or the persist buffer is filling up.
    pub fn readiness(&self) -> Result<(), String> {
        self.inner.persister.readiness()
    }

    /// What `/readyz` says beside ready or not when rooms are refused as corrupt. The rooms
    /// are not named: `/readyz` answers anyone, and room ids name orgs and teams (the error
    /// log names them, with the seq).
    pub fn corruption(&self) -> Option<String> {
        match self.corrupt().len() {
            0 => None,
            1 => Some(
                "STORE CORRUPT: 1 room is refused: its stored data failed its integrity check \
                 (the error log names it; okrhub_store_corrupt_rooms)"
                    .into(),
            ),
            n => Some(format!(
                "STORE CORRUPT: {n} rooms are refused: their stored data failed its integrity \
                 check (the error log names them; okrhub_store_corrupt_rooms)"
            )),
        }
    }

    fn corrupt(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, Corrupt>> {
        self.inner.corrupt.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The refusal of a room found corrupt less than `corrupt_recheck` ago.
    fn still_corrupt(&self, id: &RoomId) -> Option<StoreError> {
        let corrupt = self.corrupt();
        let c = corrupt.get(id)?;
        (c.found.elapsed() < self.inner.config.corrupt_recheck)
            .then(|| StoreError::corrupt(id, c.seq, c.reason.clone()))
    }

    /// Notes a failed load: a corrupt room is logged, counted and remembered.
    fn load_failed(&self, id: &RoomId, e: StoreError) -> StoreError {
        if let StoreError::Corrupt { seq, reason, .. } = &e {
            let m = &self.inner.metrics;
            m.store_corrupt.inc();
            let new = self
                .corrupt()
                .insert(
                    id.clone(),
                    Corrupt {
                        found: tokio::time::Instant::now(),
                        seq: *seq,
                        reason: reason.clone(),
                    },
                )
                .is_none();
            if new {
                m.store_corrupt_rooms.inc();
            }
            tracing::error!(
                room = %id,
                seq = ?seq,
                %reason,
                recheck_in_s = self.inner.config.corrupt_recheck.as_secs_f64(),
                "stored data of the room failed its integrity check: the room is not served; restore it (see README, Durability)"
            );
        }
        e
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, Arc<Slot<S>>>> {
        self.inner.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Joins `id` as a `/sync` peer whose frames go to `sink`, loading the room first if it
    /// is cold.
    pub async fn join(
        &self,
        id: &RoomId,
        client: Client,
        sink: Arc<S>,
    ) -> Result<(Arc<Room<S>>, PeerId), JoinError> {
        self.enter(id, |room| room.join(&client, sink.clone()))
            .await
    }

    /// Joins `id` as a `/live` subscriber whose frames go to `sink`, loading the room first
    /// if it is cold.
    pub async fn join_live(
        &self,
        id: &RoomId,
        user: UserId,
        reader: Reader,
        expires_at: Option<u64>,
        since: Option<u64>,
        sink: Arc<S>,
    ) -> Result<(Arc<Room<S>>, PeerId), JoinError> {
        self.enter(id, |room| {
            room.join_live(
                user.clone(),
                reader.clone(),
                expires_at,
                since,
                sink.clone(),
            )
        })
        .await
    }

    /// Runs `enter` on the loaded room `id`; a room that is unloading is waited out and
    /// loaded afresh.
    async fn enter(
        &self,
        id: &RoomId,
        enter: impl Fn(&Room<S>) -> Result<PeerId, JoinRefused>,
    ) -> Result<(Arc<Room<S>>, PeerId), JoinError> {
        loop {
            let room = self.get_or_load(id).await?;
            match enter(&room) {
                Ok(peer) => return Ok((room, peer)),
                // It is unloading: wait until it is out of the registry, then load it afresh.
                Err(JoinRefused::Closing(_)) => room.unloaded().await,
                Err(JoinRefused::Full(limit)) => {
                    return Err(JoinError::Full {
                        room: id.clone(),
                        limit,
                    })
                }
            }
        }
    }

    /// Whether room `id` is loaded (joining it loads nothing).
    pub fn is_loaded(&self, id: &RoomId) -> bool {
        self.loaded_room(id).is_some()
    }

    /// The loaded room `id`, loading it if needed.
    pub async fn get_or_load(&self, id: &RoomId) -> Result<Arc<Room<S>>, JoinError> {
        let slot = self.rooms().entry(id.clone()).or_default().clone();
        let loaded = slot.room.get_or_try_init(|| self.load(id)).await;
        match loaded {
            Ok(room) => Ok(room.clone()),
            Err(source) => {
                let mut rooms = self.rooms();
                if let Some(current) = rooms.get(id) {
                    if Arc::ptr_eq(current, &slot) && !slot.room.initialized() {
                        rooms.remove(id);
                    }
                }
                Err(JoinError::Load {
                    room: id.clone(),
                    source,
                })
            }
        }
    }

    async fn load(&self, id: &RoomId) -> Result<Arc<Room<S>>, StoreError> {
        if let Some(refused) = self.still_corrupt(id) {
            return Err(refused);
        }
        // On a shared log, hear the room's news before reading it, so nothing numbered
        // between the read and the subscription is missed (what is heard twice is skipped).
        if let Some(sh) = &self.inner.shared {
            sh.log.follow(id).await?;
        }
        let loaded = self.load_followed(id).await;
        if loaded.is_err() {
            self.unfollow(id);
        }
        loaded
    }

    /// [`Hub::load`] once the room's news is heard.
    async fn load_followed(&self, id: &RoomId) -> Result<Arc<Room<S>>, StoreError> {
        let started = Instant::now();
        let stored = (self.inner.store.load(id).await).map_err(|e| self.load_failed(id, e))?;
        // On a shared log the room starts from the snapshot and projects each log entry at
        // its seq, as the nodes that held it did: its `/live` history then reaches back to the
        // snapshot, and a client may resume here from any seq since (`?since=`).
        let (stored, replay) = match &self.inner.shared {
            Some(_) if stored.meta.len() == stored.updates.len() && !stored.meta.is_empty() => {
                let StoredDoc {
                    snapshot,
                    updates,
                    snapshot_seq,
                    meta,
                    ..
                } = stored;
                let replay: Vec<_> = (meta.into_iter().zip(updates))
                    .map(|(m, u)| m.logged(u.into()))
                    .collect();
                let base = StoredDoc {
                    snapshot,
                    last_seq: snapshot_seq,
                    snapshot_seq,
                    ..StoredDoc::default()
                };
                (base, replay)
            }
            _ => (stored, Vec::new()),
        };
        let doc =
            crate::store::doc_from_stored(id, &stored).map_err(|e| self.load_failed(id, e))?;
        if self.corrupt().remove(id).is_some() {
            self.inner.metrics.store_corrupt_rooms.dec();
            tracing::warn!(room = %id, "the room's stored data passes its integrity check again: served");
        }
        // A log after the snapshot means a snapshot is due (compacted_seq 0 < last_seq).
        let compacted_seq = if stored.updates.is_empty() {
            stored.last_seq
        } else {
            0
        };
        let mut room = Room::new(
            id.clone(),
            doc,
            stored.last_seq,
            compacted_seq,
            self.inner.persister.clone(),
            self.inner.metrics.clone(),
        )
        .with_inboxes(self.inner.inboxes.clone())
        .with_notices(self.inner.notices.get().cloned())
        .with_limits(self.inner.config.room_limits, stored.bytes())
        .with_decode_limits(self.inner.config.decode_limits);
        if let Some(sh) = &self.inner.shared {
            room = room.with_shared(sh.clone());
            // Who is present with the other nodes: they answer on the room's channel.
            sh.log.publish_query(id);
        }
        let replayed = replay.len();
        room.apply_logged(replay)
            .map_err(|e| self.load_failed(id, StoreError::corrupt(id, None, e.to_string())))?;
        let elapsed = started.elapsed();
        self.inner
            .metrics
            .room_load_seconds
            .observe(elapsed.as_secs_f64());
        self.inner.metrics.rooms_loaded.inc();
        tracing::info!(
            room = %id,
            log_entries = stored.updates.len() + replayed,
            ms = elapsed.as_secs_f64() * 1e3,
            "room loaded"
        );
        Ok(Arc::new(room))
    }

    /// The rooms loaded now.
    pub fn loaded(&self) -> Vec<Arc<Room<S>>> {
        self.rooms()
            .values()
            .filter_map(|slot| slot.room.get().cloned())
            .collect()
    }

    /// Writes a snapshot of `room` if its log has grown. The persister is flushed first so the
    /// log entries the snapshot replaces are the ones on disk.
    ///
    /// On a shared log one node compacts a room at a time: this one only while it holds the
    /// room's lease ([`COMPACTION_LEASE`]; the store writes nothing once the lease is another
    /// node's). A node that finds the lease taken counts the room as compacted up to its
    /// present seq: the holder is writing a snapshot of about as much.
    pub async fn compact(&self, room: &Room<S>) -> Result<(), StoreError> {
        if room.log_len() == 0 {
            return Ok(());
        }
        let leased = match &self.inner.shared {
            None => None,
            Some(sh) => {
                if !sh.log.try_lease(room.id(), COMPACTION_LEASE).await? {
                    self.inner.metrics.compaction_lease_busy.inc();
                    room.compaction_done_elsewhere(room.seq());
                    return Ok(());
                }
                self.inner.metrics.compaction_leases.inc();
                Some(sh.log.clone())
            }
        };
        let result = self.compact_now(room).await;
        if let Some(log) = leased {
            if let Err(e) = log.release_lease(room.id()).await {
                tracing::debug!(room = %room.id(), error = %e, "lease release failed (it expires)");
            }
        }
        result
    }

    async fn compact_now(&self, room: &Room<S>) -> Result<(), StoreError> {
        let Some((snapshot, upto)) = room.snapshot_if_dirty() else {
            return Ok(());
        };
        self.inner.persister.flush().await?;
        self.inner.store.compact(room.id(), &snapshot, upto).await?;
        room.compacted(upto);
        tracing::debug!(room = %room.id(), upto, bytes = snapshot.len(), "snapshot written");
        Ok(())
    }

    /// Unloads `room` if it has been idle long enough: final snapshot, then out of the
    /// registry. A failed snapshot keeps the room loaded (its log is safe) and is retried.
    pub async fn try_unload(&self, room: &Arc<Room<S>>) {
        if !room.try_begin_close(self.inner.config.idle_unload) {
            return;
        }
        if let Err(e) = self.compact(room).await {
            tracing::error!(room = %room.id(), error = %e, "final snapshot failed; room stays loaded");
            room.abort_close();
            return;
        }
        self.remove(room);
        tracing::info!(room = %room.id(), "room unloaded");
    }

    fn remove(&self, room: &Arc<Room<S>>) {
        let mut rooms = self.rooms();
        let same = rooms
            .get(room.id())
            .and_then(|slot| slot.room.get())
            .is_some_and(|r| Arc::ptr_eq(r, room));
        if same {
            rooms.remove(room.id());
            self.inner.metrics.rooms_loaded.dec();
        }
        drop(rooms);
        room.mark_unloaded();
        if same {
            self.unfollow(room.id());
        }
    }

    /// Stops hearing a room's news (in the background; a failure only costs messages that
    /// are ignored).
    fn unfollow(&self, id: &RoomId) {
        let Some(sh) = &self.inner.shared else {
            return;
        };
        let (log, id) = (sh.log.clone(), id.clone());
        tokio::spawn(async move {
            if let Err(e) = log.unfollow(&id).await {
                tracing::debug!(room = %id, error = %e, "unsubscribe failed");
            }
        });
    }

    /// The room `id` if it is loaded now.
    pub fn loaded_room(&self, id: &RoomId) -> Option<Arc<Room<S>>> {
        self.rooms()
            .get(id)
            .and_then(|slot| slot.room.get().cloned())
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn DocStore> {
        &self.inner.store
    }

    /// Writes every loaded room to the store as a full snapshot at its current seq (after the
    /// store lost its data). Returns how many rooms were written; stops at the first failure.
    pub async fn write_back_all(&self) -> Result<usize, StoreError> {
        let mut written = 0;
        for room in self.loaded() {
            written += usize::from(self.write_back(&room).await?);
        }
        Ok(written)
    }

    /// Writes `room` to the store as a full snapshot at its current seq (the store lost it).
    /// Returns whether it wrote (a poisoned room is not).
    pub async fn write_back(&self, room: &Room<S>) -> Result<bool, StoreError> {
        let Some((snapshot, upto)) = room.snapshot() else {
            return Ok(false);
        };
        self.inner.store.compact(room.id(), &snapshot, upto).await?;
        room.compacted(upto);
        self.inner.metrics.store_writebacks.inc();
        tracing::info!(room = %room.id(), upto, bytes = snapshot.len(), "room written back");
        Ok(true)
    }

    /// Probes the store every `every` until `shutdown`: records its health for readiness and
    /// writes the loaded rooms back when it reports a [`Probe::Reset`].
    pub async fn run_store_probe(self, every: Duration, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut writeback_pending = false;
        let mut first = true;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let probe = self.inner.store.probe().await;
            self.inner
                .persister
                .record_probe(probe.as_ref().map(|_| ()));
            match probe {
                Err(e) => {
                    tracing::warn!(store = self.inner.store.name(), error = %e, "store probe failed");
                    continue;
                }
                Ok(Probe::Reset) if !first || !self.loaded().is_empty() => {
                    tracing::warn!(
                        store = self.inner.store.name(),
                        rooms = self.loaded().len(),
                        "store came back empty; writing the loaded rooms back"
                    );
                    writeback_pending = true;
                }
                Ok(_) => {}
            }
            first = false;
            if writeback_pending {
                match self.write_back_all().await {
                    Ok(n) => {
                        tracing::warn!(rooms = n, "write-back complete");
                        writeback_pending = false;
                    }
                    Err(e) => tracing::error!(error = %e, "write-back failed; retrying"),
                }
            }
        }
    }

    /// Runs the sweeper until `shutdown`: snapshots rooms with long logs, unloads idle ones.
    pub async fn run_sweeper(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.inner.config.sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            for room in self.loaded() {
                room.tick();
                self.tick_shared(&room).await;
                if room.log_len() >= self.inner.config.compact_after {
                    if let Err(e) = self.compact(&room).await {
                        tracing::error!(room = %room.id(), error = %e, "snapshot failed");
                    }
                }
                self.try_unload(&room).await;
            }
        }
    }

    /// On a shared log: appends a tick entry to a room whose log has been quiet for
    /// `tick_every`, if this node holds (or takes) the room's clock lease — one node per room,
    /// so time-driven events come once, whichever nodes hold the room.
    async fn tick_shared(&self, room: &Room<S>) {
        let Some(sh) = &self.inner.shared else {
            return;
        };
        let every = self.inner.config.tick_every;
        if !room.tick_due(every) {
            return;
        }
        match sh.log.hold_clock(room.id(), every * 3).await {
            Ok(true) => {
                room.append_tick();
                self.inner.metrics.ticks_written.inc();
            }
            Ok(false) => {}
            Err(e) => tracing::debug!(room = %room.id(), error = %e, "clock lease not checked"),
        }
    }

    /// At shutdown: closes every room to joins and asks every connection to close with 1001
    /// ([`Hub::flush_all`] then writes the rooms out).
    pub fn close_all(&self) {
        let reason = CloseReason::going_away();
        for room in self.loaded() {
            room.begin_close();
            room.close_all(&reason);
        }
        self.inner.inboxes.close_all(&reason);
    }

    /// Flushes the persister and writes the final snapshot of every loaded room.
    pub async fn flush_all(&self) -> Result<(), StoreError> {
        self.inner.persister.flush().await?;
        let mut first_error = None;
        for room in self.loaded() {
            if let Err(e) = self.compact(&room).await {
                tracing::error!(room = %room.id(), error = %e, "final snapshot failed; the log keeps every update");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::room::sink::testing::Queue;
    use crate::store::embedded::EmbeddedStore;

    /// A hub over an embedded store in `dir` whose rooms unload as soon as they are idle.
    pub fn hub(dir: &std::path::Path) -> Hub<Queue> {
        let store: Arc<dyn DocStore> = Arc::new(EmbeddedStore::open(dir).unwrap());
        let metrics = Arc::new(Metrics::new());
        let tracker = tokio_util::task::TaskTracker::new();
        let persister = Persister::start(
            store.clone(),
            metrics.clone(),
            Duration::from_millis(5),
            &tracker,
        );
        let config = HubConfig {
            idle_unload: Duration::ZERO,
            ..HubConfig::default()
        };
        Hub::new(store, persister, metrics, config)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::hub;
    use super::*;
    use crate::room::sink::testing::Queue;
    use yrs::{GetString, Text, Transact, WriteTxn};

    fn title(room: &Room<Queue>) -> String {
        room.read(|d| d.get_or_insert_text("title").get_string(&d.transact()))
    }

    #[tokio::test]
    async fn a_join_during_unload_gets_a_fresh_room_with_everything() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub(dir.path());
        let id = RoomId::parse("t.unload.q1").unwrap();
        let first = hub.get_or_load(&id).await.unwrap();
        first
            .transact(None, |txn| {
                txn.get_or_insert_text("title").push(txn, "kept")
            })
            .unwrap();

        // try_unload closes the room to joins before its first await, so the join must wait
        // for the unload to finish and then load the room again.
        let ((), joined) = tokio::join!(
            hub.try_unload(&first),
            hub.join(&id, Client::anonymous(), Arc::new(Queue::new(8)))
        );
        let (second, joined) = joined.unwrap();
        assert!(
            !Arc::ptr_eq(&first, &second),
            "the unloading room is not joined"
        );
        assert_eq!(title(&second), "kept");
        assert_eq!(hub.loaded().len(), 1);
        second.leave(joined);
        assert_eq!(hub.metrics().compactions.get(), 1);
    }

    #[tokio::test]
    async fn a_room_with_peers_does_not_unload() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub(dir.path());
        let id = RoomId::parse("t.busy.q1").unwrap();
        let (room, joined) = hub
            .join(&id, Client::anonymous(), Arc::new(Queue::new(8)))
            .await
            .unwrap();
        hub.try_unload(&room).await;
        assert_eq!(hub.loaded().len(), 1);
        room.leave(joined);
        hub.try_unload(&room).await;
        assert!(hub.loaded().is_empty());
    }

    /// The embedded store, counting loads.
    struct Counting {
        inner: EmbeddedStore,
        loads: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl DocStore for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        async fn load(&self, room: &RoomId) -> Result<crate::store::StoredDoc, StoreError> {
            self.loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.load(room).await
        }
        async fn append(&self, batch: &[crate::store::LogEntry]) -> Result<(), StoreError> {
            self.inner.append(batch).await
        }
        async fn compact(&self, r: &RoomId, s: &[u8], upto: u64) -> Result<(), StoreError> {
            self.inner.compact(r, s, upto).await
        }
        async fn rooms(&self) -> Result<Vec<RoomId>, StoreError> {
            self.inner.rooms().await
        }
    }

    use crate::store::embedded::EmbeddedStore;
    use crate::store::frame::{self, Kind};

    /// A corrupt room is refused without reading the store again for `corrupt_recheck`, then
    /// read again: still corrupt, refused and counted again; repaired, served and no longer
    /// reported. The other rooms load all along.
    #[tokio::test(start_paused = true)]
    async fn a_corrupt_room_is_refused_and_reread_once_per_recheck_interval() {
        let dir = tempfile::tempdir().unwrap();
        let embedded = EmbeddedStore::open(dir.path()).unwrap();
        let bad = RoomId::parse("t.corrupt.q1").unwrap();
        let good = RoomId::parse("t.fine.q1").unwrap();
        let update = {
            let doc = yrs::Doc::new();
            let mut txn = doc.transact_mut();
            txn.get_or_insert_text("title").push(&mut txn, "Durable 1");
            txn.encode_update_v1()
        };
        let mut flipped = frame::seal(Kind::Log, bad.as_str(), 1, &update);
        *flipped.last_mut().unwrap() ^= 0x01;
        embedded.put_raw_log(&bad, 1, &flipped);
        let store = Arc::new(Counting {
            inner: embedded.clone(),
            loads: Default::default(),
        });
        let loads = || store.loads.load(std::sync::atomic::Ordering::SeqCst);
        let metrics = Arc::new(Metrics::new());
        let persister = Persister::start(
            store.clone(),
            metrics.clone(),
            Duration::from_millis(5),
            &tokio_util::task::TaskTracker::new(),
        );
        let recheck = Duration::from_secs(30);
        let config = HubConfig {
            corrupt_recheck: recheck,
            ..HubConfig::default()
        };
        let hub: Hub<Queue> = Hub::new(store.clone(), persister, metrics.clone(), config);

        assert!(hub.corruption().is_none());
        let refused = |r: Result<Arc<Room<Queue>>, JoinError>| match r {
            Err(e) => e,
            Ok(_) => panic!("a corrupt room was served"),
        };
        let err = refused(hub.get_or_load(&bad).await);
        assert!(err.is_corrupt(), "{err}");
        assert!(err.to_string().contains("at seq 1"), "{err}");
        assert_eq!((loads(), metrics.store_corrupt.get()), (1, 1));
        assert_eq!(metrics.store_corrupt_rooms.get(), 1);
        let said = hub.corruption().expect("reported");
        assert!(
            said.contains("1 room is refused") && !said.contains("t.corrupt"),
            "{said}"
        );

        // Within the interval: refused at once, the store is not read.
        for _ in 0..5 {
            assert!(refused(hub.get_or_load(&bad).await).is_corrupt());
        }
        assert_eq!((loads(), metrics.store_corrupt.get()), (1, 1));
        hub.get_or_load(&good).await.expect("another room loads");
        assert_eq!(loads(), 2);

        // After it: read again, still corrupt.
        tokio::time::advance(recheck).await;
        assert!(refused(hub.get_or_load(&bad).await).is_corrupt());
        assert_eq!((loads(), metrics.store_corrupt.get()), (3, 2));
        assert_eq!(metrics.store_corrupt_rooms.get(), 1);

        // Repaired (the value restored): the next read after the interval serves it.
        embedded.put_raw_log(&bad, 1, &frame::seal(Kind::Log, bad.as_str(), 1, &update));
        tokio::time::advance(recheck).await;
        let room = hub.get_or_load(&bad).await.expect("repaired room loads");
        assert_eq!(title(&room), "Durable 1");
        assert_eq!(metrics.store_corrupt_rooms.get(), 0);
        assert!(hub.corruption().is_none());
    }
}
