//! Persistence of room documents behind one small trait.
//!
//! A room's document is stored as a **snapshot** (the whole doc encoded as one Yjs update) plus
//! an **update log** of the updates applied since. Every update the hub applies gets a per-room
//! sequence number and is appended to the log (in batches, off the hot path: see
//! [`persister`]); now and then, and when a room unloads, the log is folded into a new snapshot
//! that records the last sequence number it covers, and the log up to there is dropped.
//!
//! Yjs updates are idempotent and commutative, which keeps the contract simple and safe:
//! applying the snapshot and then every log entry after it always yields the document, even if
//! a log entry the snapshot already covers is appended late or replayed twice.
//!
//! Every stored value carries an integrity frame ([`frame`]: a CRC-32C bound to its room and
//! seq), verified by each store's `load`: a value that fails is [`StoreError::Corrupt`] and is
//! never returned as data. What the hub does with a corrupt room is in `hub`.
//!
//! Implementations: [`embedded::EmbeddedStore`] (redb, the default) and
//! [`redis::RedisStore`] (production). [`open`] picks one from the configuration; [`transfer`]
//! moves rooms between them (`okrhub export` / `import`).
//!
//! The embedded store serves one node, which numbers its rooms' updates itself. Redis is a
//! [`shared::SharedLog`]: any number of nodes append to it and it numbers the entries.

pub mod embedded;
pub mod frame;
pub mod persister;
pub mod redis;
pub mod shared;
pub mod transfer;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use yrs::{Doc, Transact};

use crate::protocol::{self, bound::Limits};
use crate::room_id::RoomId;

/// One update of a room's log.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub room: RoomId,
    /// The room's sequence number of this update, from 1, strictly increasing per room.
    pub seq: u64,
    /// The Yjs update, v1 encoding.
    pub update: Bytes,
    /// Who made it (kept by a shared log, for the events other nodes derive from it).
    pub by: Option<crate::identity::UserId>,
}

/// What a store holds for one room.
#[derive(Debug, Default, Clone)]
pub struct StoredDoc {
    /// The last snapshot (a v1 update of the whole doc), if one was written.
    pub snapshot: Option<Vec<u8>>,
    /// The log entries after the snapshot, in sequence order.
    pub updates: Vec<Vec<u8>>,
    /// The highest sequence number the snapshot and log cover (0 for a new room): the room
    /// numbers its next update `last_seq + 1`.
    pub last_seq: u64,
    /// The sequence number the snapshot covers (0 without one).
    pub snapshot_seq: u64,
    /// On a shared log: what the log says of each entry of `updates` (same order).
    pub meta: Vec<shared::EntryMeta>,
}

impl StoredDoc {
    /// Bytes of the snapshot and the log entries: about the size of the doc they make.
    pub fn bytes(&self) -> usize {
        self.snapshot.as_ref().map_or(0, Vec::len)
            + self.updates.iter().map(Vec::len).sum::<usize>()
    }

    /// Whether nothing at all is stored for the room.
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none() && self.updates.is_empty()
    }
}

/// Why a store operation failed. Kept small and cheap: it crosses the persister's hot loop.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend (redb, Redis, the file system) failed; `source` is its error, chain intact.
    #[error("store backend error: {context}: {source}")]
    Backend {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// What the store holds for `room` failed its integrity check (a checksum mismatch, a
    /// value without its frame) or cannot be read as a room: the room must not be served.
    #[error("stored data of room {room} is corrupt{}: {reason}", at_seq(.seq))]
    Corrupt {
        room: String,
        /// The sequence number of the bad value (a log entry's seq, a snapshot's `upto`), when
        /// one value is to blame.
        seq: Option<u64>,
        reason: String,
    },
    /// The store cannot be used as it is (an empty or foreign data file, a data directory with
    /// other content, a newer format): refused when it is opened, and left untouched.
    #[error("{0}")]
    Refused(String),
    #[error("store task failed: {0}")]
    Task(String),
}

/// A place where room documents live between server runs.
///
/// Implementations must be safe to call from many tasks at once. `append` is only ever called
/// by the single [`persister::Persister`] task, so entries of one room arrive in sequence order.
#[async_trait]
pub trait DocStore: Send + Sync + 'static {
    /// A short name for logs and metrics (`embedded`, `redis`).
    fn name(&self) -> &'static str;

    /// Reads the snapshot and the log after it.
    async fn load(&self, room: &RoomId) -> Result<StoredDoc, StoreError>;

    /// Appends a batch of log entries, possibly of several rooms, durably: when this returns
    /// `Ok`, a crash of the server loses none of them.
    async fn append(&self, batch: &[LogEntry]) -> Result<(), StoreError>;

    /// Replaces the room's snapshot by `snapshot`, which covers every log entry up to and
    /// including `upto`, and drops those entries. Atomic: after a crash, either the old
    /// snapshot and log or the new snapshot and the shorter log are there.
    async fn compact(&self, room: &RoomId, snapshot: &[u8], upto: u64) -> Result<(), StoreError>;

    /// Every room the store holds something for, in no particular order (export).
    async fn rooms(&self) -> Result<Vec<RoomId>, StoreError>;

    /// A cheap health check the server runs every second: is the store reachable, and does it
    /// still hold what it held (see [`Probe::Reset`])? A store that cannot fail (embedded)
    /// keeps the default.
    async fn probe(&self) -> Result<Probe, StoreError> {
        Ok(Probe::Healthy)
    }

    /// The log several nodes share, when this store is one (Redis): then the store numbers
    /// the entries ([`LogEntry::seq`] is the node's own number for each), and rooms follow
    /// the other nodes' entries through it ([`shared`]).
    fn shared(&self) -> Option<Arc<dyn shared::SharedLog>> {
        None
    }

    /// An org's setting `key` (a robot's configuration, a pending delivery…), if set. Every
    /// node reads the same place; values are checksummed like the rest ([`frame::Kind::Setting`]).
    async fn setting_get(&self, org: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let _ = (org, key);
        Err(no_settings(self.name()))
    }

    /// Sets `key` of `org` to `value`, durably.
    async fn setting_put(&self, org: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let _ = (org, key, value);
        Err(no_settings(self.name()))
    }

    /// Removes `key` of `org`; whether it was there.
    async fn setting_delete(&self, org: &str, key: &str) -> Result<bool, StoreError> {
        let _ = (org, key);
        Err(no_settings(self.name()))
    }

    /// Every setting of `org` whose key starts with `prefix`, sorted by key.
    async fn settings_list(
        &self,
        org: &str,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let _ = (org, prefix);
        Err(no_settings(self.name()))
    }
}

fn no_settings(store: &str) -> StoreError {
    StoreError::Refused(format!("the {store} store keeps no org settings"))
}

/// What [`DocStore::probe`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Reachable, and holding what was written.
    Healthy,
    /// Reachable but started over empty (a Redis restarted without its data, or flushed): the
    /// rooms loaded in memory must be written back. The store has re-armed its detection, so
    /// one reset is reported once.
    Reset,
}

fn at_seq(seq: &Option<u64>) -> String {
    seq.map(|s| format!(" at seq {s}")).unwrap_or_default()
}

impl StoreError {
    /// Stored data of `room` that failed its integrity check.
    pub fn corrupt(room: &RoomId, seq: Option<u64>, reason: impl Into<String>) -> Self {
        StoreError::Corrupt {
            room: room.to_string(),
            seq,
            reason: reason.into(),
        }
    }

    /// Whether this is [`StoreError::Corrupt`]: the room's stored data must not be served.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, StoreError::Corrupt { .. })
    }

    /// A backend failure: what was being done, and the backend's own error.
    pub fn backend(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        StoreError::Backend {
            context: context.into(),
            source: source.into(),
        }
    }
}

/// Which store backs the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// redb in `--data-dir`: nothing to install (the default).
    Embedded,
    /// Redis at `--redis-url`.
    Redis,
}

/// Where the store lives: the part of the configuration [`open`] needs.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub kind: StoreKind,
    pub data_dir: PathBuf,
    pub redis_url: String,
    /// `redis_url` is a comma-separated list of Redis Cluster seed nodes.
    pub redis_cluster: bool,
    /// Log entries a Redis snapshot leaves below itself for slower nodes.
    pub trim_margin: u64,
    /// Create a new embedded store even where one is not expected: in a data directory that
    /// holds other files, or over a zero-length data file (`--init-store`).
    pub init: bool,
}

/// Opens the configured store. The embedded store fails here if its file cannot be opened or
/// is not a store (see [`embedded::EmbeddedStore::open_with`]); the Redis store only fails on a
/// malformed URL — an unreachable Redis is a runtime condition (not ready, retried), not a
/// startup error.
pub async fn open(config: &StoreConfig) -> Result<Arc<dyn DocStore>, StoreError> {
    Ok(match config.kind {
        StoreKind::Embedded => Arc::new(embedded::EmbeddedStore::open_with(
            &config.data_dir,
            embedded::Init::from_flag(config.init),
        )?),
        StoreKind::Redis => Arc::new(
            redis::RedisStore::open_with(&config.redis_url, config.redis_cluster)?
                .with_trim_margin(config.trim_margin),
        ),
    })
}

/// Room ids as a store keeps them: each parsed, and an invalid one reported as corrupt data.
pub fn parse_stored_rooms(
    names: impl IntoIterator<Item = String>,
) -> Result<Vec<RoomId>, StoreError> {
    names
        .into_iter()
        .map(|n| {
            RoomId::parse(&n).map_err(|e| StoreError::Corrupt {
                reason: format!("stored room id is invalid: {e}"),
                seq: None,
                room: n,
            })
        })
        .collect()
}

/// Rebuilds a room's document from what the store holds: the snapshot, then the log. (The
/// store has verified each value's checksum already; a value that passes and still does not
/// apply is reported as corrupt too.)
pub fn doc_from_stored(room: &RoomId, stored: &StoredDoc) -> Result<Doc, StoreError> {
    let corrupt = |reason: String| StoreError::corrupt(room, None, reason);
    let doc = Doc::new();
    // One transaction per stored update (and per part of a long one): a commit squashes the
    // blocks it added, and yrs squashes a long run quadratically (`protocol::bound::split_v1`).
    for bytes in stored.snapshot.iter().chain(stored.updates.iter()) {
        if bytes.is_empty() {
            continue; // a tick entry of a shared log: time, no change
        }
        // Guarded too: a store shared with others is input like any other.
        let parts =
            protocol::decode_update(bytes, &Limits::STORED).map_err(|e| corrupt(e.to_string()))?;
        for part in parts {
            doc.transact_mut()
                .apply_update(part)
                .map_err(|e| corrupt(e.to_string()))?;
        }
    }
    Ok(doc)
}
