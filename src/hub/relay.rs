//! The relay: how a node follows the rooms it holds through the log several nodes share.
//!
//! One task per node reads the news of every followed room from one subscription
//! ([`SharedLog::take_feed`]) and hands it to the rooms:
//!
//! - a **fast-path update** of another node is applied and fanned out at once
//!   ([`Room::relayed`]); it is projected into `/live` events when its number comes;
//! - an **awareness change** of another node's clients is relayed to the peers here;
//! - a **log notice** (`seq`, origin) projects the update at its `seq` ([`Room::logged`]) —
//!   or, when this node missed something (a notice, a fast-path message, entries while it
//!   was loading or disconnected), the room reads what it lacks from the log; entries trimmed
//!   meanwhile are caught up from the snapshot.
//!
//! Every second the task also compares each room with the log's head (so a notice lost with a
//! connection costs at most a second), exports the lag, logs again the updates of nodes that
//! died before logging them, and forgets the awareness of nodes that fell silent. A head
//! below what a room has applied means the store lost the room (a Redis, or a cluster shard,
//! that came back empty): the room is written back.
//!
//! Nothing here is on a client's path: a slow Redis delays other nodes' news, never a local
//! client's update.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Hub;
use crate::room::{Next, Room, Sink};
use crate::store::shared::{Heard, Read, SharedLog};

/// Entries read from the log in one call while catching up.
const READ_BATCH: usize = 512;
/// How often every followed room is compared with the log's head.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long another node's update may stay applied here but unnumbered before this node logs
/// it again (its node died between publishing and logging it). Far above the persister's
/// flush interval and a Redis round trip.
pub const RELOG_AFTER: Duration = Duration::from_secs(10);
/// How long a node may be silent before its clients' awareness and `/live` presence are
/// dropped here (Yjs clients renew their awareness every 15 s; nodes their `/live` users every
/// [`HEARTBEAT`]).
pub const SILENT_NODE: Duration = Duration::from_secs(45);
/// How often a node tells the others its `/live` users of each room, changed or not.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

impl<S: Sink> Hub<S> {
    /// Runs the relay until `shutdown` (a no-op for a store that is not shared).
    pub async fn run_relay(self, shutdown: CancellationToken) {
        let Some(sh) = self.inner.shared.clone() else {
            return;
        };
        let Some(feed) = sh.log.take_feed() else {
            tracing::error!("the shared log's feed was taken already; relay not started");
            return;
        };
        Relay {
            hub: self,
            log: sh.log,
            behind_since: None,
            last_heartbeat: Instant::now(),
        }
        .run(feed, shutdown)
        .await
    }
}

struct Relay<S: Sink> {
    hub: Hub<S>,
    log: Arc<dyn SharedLog>,
    /// Since when some room has been behind the log's head (for `relay_lag_ms`).
    behind_since: Option<Instant>,
    /// When the `/live` users were last announced whether or not they changed.
    last_heartbeat: Instant,
}

impl<S: Sink> Relay<S> {
    async fn run(mut self, mut feed: mpsc::UnboundedReceiver<Heard>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                heard = feed.recv() => match heard {
                    Some(heard) => self.hear(heard).await,
                    None => return,
                },
                _ = tick.tick() => self.check().await,
            }
        }
    }

    async fn hear(&mut self, heard: Heard) {
        let metrics = self.hub.metrics().clone();
        match heard {
            Heard::Update {
                room,
                origin,
                by,
                update,
            } => {
                let Some(r) = self.hub.loaded_room(&room) else {
                    return;
                };
                match r.relayed(origin, by, update) {
                    Ok(()) => {
                        metrics.relayed.inc();
                    }
                    Err(e) => {
                        metrics.relay_errors.inc();
                        tracing::warn!(%room, error = %e, "relayed update not applied; the log will bring it");
                    }
                };
            }
            Heard::Awareness { room, node, update } => {
                let Some(r) = self.hub.loaded_room(&room) else {
                    return;
                };
                if let Err(e) = r.relayed_awareness(node, update) {
                    metrics.relay_errors.inc();
                    tracing::debug!(%room, error = %e, "relayed awareness not applied");
                }
            }
            Heard::Logged {
                room,
                seq,
                origin,
                at,
                ..
            } => {
                let Some(r) = self.hub.loaded_room(&room) else {
                    return;
                };
                if let Next::Read { after } = r.logged(seq, &origin, at) {
                    self.read(&r, after).await;
                }
            }
            Heard::Presence { room, node, live } => {
                if let Some(r) = self.hub.loaded_room(&room) {
                    r.relayed_presence(node, live);
                }
            }
            Heard::Query { room, node } => {
                if let Some(r) = self.hub.loaded_room(&room) {
                    r.queried(node);
                }
            }
            Heard::Resubscribed => {
                tracing::info!("shared log subscription re-established; checking every room");
                self.check().await;
            }
        }
    }

    /// Reads `room`'s entries after `after` until it is up to date with the log.
    async fn read(&self, room: &Arc<Room<S>>, mut after: u64) {
        let metrics = self.hub.metrics();
        loop {
            match self.log.read_after(room.id(), after, READ_BATCH).await {
                Ok(Read::Entries(entries)) => {
                    let full = entries.len() == READ_BATCH;
                    if entries.is_empty() {
                        return;
                    }
                    match room.apply_logged(entries) {
                        Ok(Next::Done) if full => after = room.seq(),
                        Ok(Next::Done) => return,
                        Ok(Next::Read { after: at }) if at > after => after = at,
                        Ok(Next::Read { .. }) => {
                            // A hole the store cannot fill: only a store that lost entries
                            // makes one. Catch up from what it holds.
                            self.catch_up(room).await;
                            return;
                        }
                        Err(e) => {
                            metrics.relay_errors.inc();
                            tracing::error!(room = %room.id(), error = %e, "log entry could not be applied");
                            return;
                        }
                    }
                }
                Ok(Read::Trimmed) => {
                    self.catch_up(room).await;
                    return;
                }
                Err(e) => {
                    metrics.relay_errors.inc();
                    tracing::warn!(room = %room.id(), error = %e, "reading the shared log failed; retried at the next check");
                    return;
                }
            }
        }
    }

    async fn catch_up(&self, room: &Arc<Room<S>>) {
        let result = match self.hub.store().load(room.id()).await {
            Ok(stored) => room.catch_up(&stored).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = result {
            self.hub.metrics().relay_errors.inc();
            tracing::error!(room = %room.id(), error = %e, "catching up from the snapshot failed");
        }
    }

    /// Compares every followed room with the log's head, and keeps the rooms' bookkeeping.
    async fn check(&mut self) {
        let rooms = self.hub.loaded();
        let metrics = self.hub.metrics().clone();
        let mut pending = 0;
        let heartbeat = self.last_heartbeat.elapsed() >= HEARTBEAT;
        if heartbeat {
            self.last_heartbeat = Instant::now();
        }
        for room in &rooms {
            // Changes a cut-off (slow) subscriber made are told within a check.
            room.announce_presence(heartbeat);
            room.relog_stale(RELOG_AFTER);
            room.forget_silent_nodes(SILENT_NODE);
            pending += room.pending_len();
        }
        metrics.relay_pending.set(pending as i64);
        let ids: Vec<_> = rooms.iter().map(|r| r.id().clone()).collect();
        let heads = match self.log.heads(&ids).await {
            Ok(heads) => heads,
            Err(e) => {
                metrics.relay_errors.inc();
                tracing::warn!(error = %e, "checking the shared log's heads failed");
                return;
            }
        };
        let mut lag = 0u64;
        let mut lost = Vec::new();
        for (room, head) in rooms.iter().zip(heads) {
            let seq = room.seq();
            if head > seq {
                lag += head - seq;
                self.read(room, seq).await;
            } else if head < seq {
                lost.push(room.clone());
            }
        }
        metrics.relay_lag_entries.set(lag as i64);
        match (lag, self.behind_since) {
            (0, _) => self.behind_since = None,
            (_, None) => self.behind_since = Some(Instant::now()),
            _ => {}
        }
        let behind = self
            .behind_since
            .map_or(0, |t| t.elapsed().as_millis() as i64);
        metrics.relay_lag_ms.set(behind);
        for room in lost {
            tracing::warn!(room = %room.id(), seq = room.seq(), "the shared log lost this room (its Redis or shard came back empty); writing it back");
            if let Err(e) = self.hub.write_back(&room).await {
                metrics.relay_errors.inc();
                tracing::error!(room = %room.id(), error = %e, "write-back failed; retried at the next check");
            }
        }
    }
}
