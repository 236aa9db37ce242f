//! The shared log: what a store that several nodes write (Redis) offers beyond [`DocStore`].
//!
//! Every node appends its rooms' updates to one log per room, and the log numbers them: the
//! `seq` of an entry is allocated inside the store (see [`super::redis`]), so every node, every
//! `/live` event and every `?since=` cursor count alike. A node tells its own entries from the
//! others' by their [`Origin`] (its node id and the node-local number it gave the update).
//!
//! Two channels carry a room's news to the nodes that hold it, both in publish order:
//! - the **fast path** ([`Heard::Update`], [`Heard::Awareness`]): an update (or awareness
//!   change) published by its node as soon as it is applied, so other nodes' clients see it
//!   without waiting for the log's batching;
//! - the **log** ([`Heard::Logged`]): each entry's number, published by the append itself, in
//!   log order. The log is the truth: a node that missed a fast-path message, or a notice,
//!   reads the entries it lacks ([`SharedLog::read_after`]).
//!
//! What the hub does with them is `hub::relay`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

use super::StoreError;
use crate::identity::UserId;
use crate::room_id::RoomId;

/// Where an entry of the shared log was made: the node, and the number that node gave it
/// (per room, increasing).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub node: Arc<str>,
    pub local: u64,
}

/// One entry read back from the shared log.
#[derive(Debug, Clone)]
pub struct Logged {
    pub seq: u64,
    pub origin: Origin,
    pub by: Option<UserId>,
    /// When the log took it (the store's clock, unix ms): the `at` of its events.
    pub at: Option<i64>,
    /// The Yjs update (v1), integrity-checked.
    pub update: Bytes,
}

/// What the shared log says of one entry besides its update.
#[derive(Debug, Clone)]
pub struct EntryMeta {
    pub seq: u64,
    /// None for an entry a single node wrote before the log was shared.
    pub origin: Option<Origin>,
    pub by: Option<UserId>,
    pub at: Option<i64>,
}

impl EntryMeta {
    /// The entry with its update. An entry without an origin (written by a single node) is
    /// nobody's here: it gets an empty node id.
    pub fn logged(self, update: Bytes) -> Logged {
        Logged {
            origin: self.origin.unwrap_or_else(|| Origin {
                node: "".into(),
                local: self.seq,
            }),
            seq: self.seq,
            by: self.by,
            at: self.at,
            update,
        }
    }
}

/// What [`SharedLog::read_after`] found.
#[derive(Debug)]
pub enum Read {
    /// The entries after the cursor, in order (possibly none).
    Entries(Vec<Logged>),
    /// The entries right after the cursor were trimmed: a snapshot covers them. The caller
    /// catches up from [`super::DocStore::load`].
    Trimmed,
}

/// News of a followed room.
#[derive(Debug, Clone)]
pub enum Heard {
    /// Another node applied `update` (fast path; its log entry follows).
    Update {
        room: RoomId,
        origin: Origin,
        by: Option<UserId>,
        update: Bytes,
    },
    /// Another node's clients changed their awareness (y-protocols awareness update).
    Awareness {
        room: RoomId,
        node: Arc<str>,
        update: Bytes,
    },
    /// The log numbered an entry `seq` at `at` (the store's clock, unix ms).
    Logged {
        room: RoomId,
        seq: u64,
        origin: Origin,
        by: Option<UserId>,
        at: i64,
    },
    /// Another node's `/live` users in the room now (connections per user): its whole set,
    /// sent when it changes and every so often.
    Presence {
        room: RoomId,
        node: Arc<str>,
        live: std::collections::BTreeMap<String, usize>,
    },
    /// A node that just loaded the room asks the others who is present with them.
    Query { room: RoomId, node: Arc<str> },
    /// The subscription was re-established after a disconnect: notices may have been missed,
    /// every followed room must check its head.
    Resubscribed,
}

/// A log several nodes share (see the module docs).
#[async_trait]
pub trait SharedLog: Send + Sync + 'static {
    /// This node's id in the log: unique per process start.
    fn node(&self) -> &Arc<str>;

    /// The stream of news of followed rooms; `None` after the first call.
    fn take_feed(&self) -> Option<mpsc::UnboundedReceiver<Heard>>;

    /// Starts hearing `room`'s news; returns once the subscription is confirmed, so that a
    /// load after it misses nothing.
    async fn follow(&self, room: &RoomId) -> Result<(), StoreError>;

    /// Stops hearing `room`'s news.
    async fn unfollow(&self, room: &RoomId) -> Result<(), StoreError>;

    /// Publishes an update applied here (fast path). Never waits; publishes keep their order.
    fn publish_update(&self, room: &RoomId, local: u64, by: Option<&UserId>, update: Bytes);

    /// Publishes an awareness update of this node's clients. Never waits.
    fn publish_awareness(&self, room: &RoomId, update: Bytes);

    /// Publishes this node's `/live` users of the room (connections per user). Never waits.
    fn publish_presence(&self, room: &RoomId, live: &std::collections::BTreeMap<String, usize>);

    /// Asks the other nodes holding the room who is present with them. Never waits.
    fn publish_query(&self, room: &RoomId);

    /// Up to `count` entries of `room` after seq `after`.
    async fn read_after(&self, room: &RoomId, after: u64, count: usize)
        -> Result<Read, StoreError>;

    /// The last seq each room's log has numbered (0 for none), in order.
    async fn heads(&self, rooms: &[RoomId]) -> Result<Vec<u64>, StoreError>;

    /// Takes the room's compaction lease for `ttl` unless another node holds it.
    async fn try_lease(&self, room: &RoomId, ttl: Duration) -> Result<bool, StoreError>;

    /// Gives the lease back (only if this node still holds it).
    async fn release_lease(&self, room: &RoomId) -> Result<(), StoreError>;

    /// Takes or renews the room's clock lease for `ttl`: whether this node holds it now (it
    /// then writes the room's tick entries; see `Room::append_tick`).
    async fn hold_clock(&self, room: &RoomId, ttl: Duration) -> Result<bool, StoreError>;
}
