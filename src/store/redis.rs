//! The production store: Redis, after y-redis — one stream per room, replayed by id.
//!
//! # Keys
//!
//! | key | type | holds |
//! |---|---|---|
//! | `okrhub:{ROOM}:snap` | hash | `doc`: the snapshot (v1 update of the whole doc); `upto`: the last seq it covers |
//! | `okrhub:{ROOM}:log` | stream | one entry per update, id `SEQ-0`, field `u`: the v1 update |
//! | `okrhub:rooms` | set | every room id ever written (export) |
//! | `okrhub:marker` | string | present while Redis holds our data; its absence means Redis started over empty |
//!
//! The `{ROOM}` hash tag puts a room's two keys in one Redis Cluster slot, so the scripts below,
//! which touch both, run on one node.
//!
//! # Idempotent, prefix-safe appends
//!
//! A log entry's stream id is its room sequence number (`SEQ-0`). A batch is written as one
//! pipeline — one round trip — holding one small Lua script call per room that `XADD`s that
//! room's entries in order and counts "ID equal or smaller than the top item" as already
//! written. So a batch retried after a timeout (whose first attempt may have landed) is
//! harmless, and since a script stops at the first real error, what landed of a failed batch is
//! always a prefix of each room's entries: the retry never leaves a hole behind a later seq.
//!
//! # Atomic, monotonic compaction
//!
//! `compact` is one script: unless the stored snapshot already covers more, it writes the new
//! snapshot and trims the stream to the entries after it (`XTRIM MINID upto+1`). A script runs
//! atomically, so a crash leaves either the old pair or the new one, and two compactions racing
//! (the sweeper and a write-back) can never replace a newer snapshot by an older one. `load`
//! reads snapshot and stream in one `MULTI`, so it never sees a snapshot from before a trim
//! together with the stream from after it.
//!
//! # Failures
//!
//! One [`ConnectionManager`] (a multiplexed connection that reconnects by itself) serves every
//! call. It is created lazily: the server starts while Redis is down, reports not ready, and
//! works as soon as Redis answers. Every call has a response timeout, so a hung Redis surfaces as
//! an error the persister retries rather than a stuck task.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Value};

use super::{DocStore, LogEntry, Probe, StoreError, StoredDoc};
use crate::room_id::RoomId;

/// The set of every room written.
pub const ROOMS_KEY: &str = "okrhub:rooms";
/// Present while Redis holds okrhub's data (see [`DocStore::probe`]).
pub const MARKER_KEY: &str = "okrhub:marker";

/// How long one Redis call may take before it counts as failed.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Appends one room's entries (ARGV: seq, update, seq, update, …) in order; an entry already in
/// the stream (its id not above the top) counts as written. Stops at the first other error.
const APPEND_SCRIPT: &str = r#"
for i = 1, #ARGV, 2 do
  local r = redis.pcall('XADD', KEYS[1], ARGV[i] .. '-0', 'u', ARGV[i + 1])
  if type(r) == 'table' and r.err and not string.find(r.err, 'equal or smaller', 1, true) then
    return redis.error_reply(r.err)
  end
end
return 1
"#;

/// Writes snapshot ARGV[1] covering seq ARGV[2] and trims the log below ARGV[3] (= upto + 1),
/// unless the stored snapshot covers more. Returns 1 if written, 0 if skipped.
const COMPACT_SCRIPT: &str = r#"
local cur = redis.call('HGET', KEYS[1], 'upto')
if cur and tonumber(cur) > tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'upto', ARGV[2])
redis.call('XTRIM', KEYS[2], 'MINID', ARGV[3] .. '-0')
return 1
"#;

/// The snapshot hash of `room`.
pub fn snap_key(room: &RoomId) -> String {
    format!("okrhub:{{{room}}}:snap")
}

/// The update stream of `room`.
pub fn log_key(room: &RoomId) -> String {
    format!("okrhub:{{{room}}}:log")
}

/// The seq of a stream id written by [`RedisStore::append`] (`SEQ-0`).
fn parse_seq(id: &str) -> Option<u64> {
    let (ms, _) = id.split_once('-')?;
    ms.parse().ok()
}

fn backend(e: RedisError) -> StoreError {
    StoreError::backend("redis", e)
}

/// A Redis-backed [`DocStore`]. Cheap to clone (the connection is shared).
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
}

impl RedisStore {
    /// A store for `url` (`redis://host:port/db`). Does not connect: the first call does, and
    /// every later call reconnects if needed. Fails only on a malformed URL.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::backend(format!("invalid redis url {url:?}"), e))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(backend)?;
        Ok(RedisStore { conn })
    }

    /// The connection, for the caller's own commands (tests, benchmarks).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

/// The entries of one room in a batch, in batch (= seq) order.
fn group_by_room(batch: &[LogEntry]) -> Vec<(&RoomId, Vec<&LogEntry>)> {
    let mut groups: Vec<(&RoomId, Vec<&LogEntry>)> = Vec::new();
    for entry in batch {
        match groups.iter_mut().find(|(room, _)| **room == entry.room) {
            Some((_, entries)) => entries.push(entry),
            None => groups.push((&entry.room, vec![entry])),
        }
    }
    groups
}

/// Parses `XRANGE` output: entries `[id, [field, value, …]]` with field `u` the update.
fn parse_log(
    room: &RoomId,
    entries: Vec<(String, Vec<Vec<u8>>)>,
    doc: &mut StoredDoc,
) -> Result<(), StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        room: room.to_string(),
        reason,
    };
    for (id, fields) in entries {
        let seq = parse_seq(&id).ok_or_else(|| corrupt(format!("log entry id {id:?}")))?;
        // Entries the snapshot covers (a late append after a compaction) are not replayed.
        if seq <= doc.last_seq {
            continue;
        }
        let update = match fields.as_slice() {
            [name, value] if name.as_slice() == b"u" => value.clone(),
            _ => return Err(corrupt(format!("log entry {id} has no update field"))),
        };
        doc.updates.push(update);
        doc.last_seq = seq;
    }
    Ok(())
}

#[async_trait]
impl DocStore for RedisStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn load(&self, room: &RoomId) -> Result<StoredDoc, StoreError> {
        let mut conn = self.conn.clone();
        type Reply = (
            (Option<Vec<u8>>, Option<String>),
            Vec<(String, Vec<Vec<u8>>)>,
        );
        let ((snapshot, upto), log): Reply = redis::pipe()
            .atomic()
            .cmd("HMGET")
            .arg(snap_key(room))
            .arg("doc")
            .arg("upto")
            .cmd("XRANGE")
            .arg(log_key(room))
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        let mut doc = StoredDoc::default();
        if let Some(snapshot) = snapshot {
            let upto = upto
                .as_deref()
                .and_then(|u| u.parse().ok())
                .ok_or_else(|| StoreError::Corrupt {
                    room: room.to_string(),
                    reason: format!("snapshot without a valid upto: {upto:?}"),
                })?;
            doc.snapshot = Some(snapshot);
            doc.last_seq = upto;
        }
        parse_log(room, log, &mut doc)?;
        Ok(doc)
    }

    async fn append(&self, batch: &[LogEntry]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (room, entries) in group_by_room(batch) {
            pipe.cmd("SADD").arg(ROOMS_KEY).arg(room.as_str()).ignore();
            let cmd = pipe
                .cmd("EVAL")
                .arg(APPEND_SCRIPT)
                .arg(1)
                .arg(log_key(room));
            for e in entries {
                cmd.arg(e.seq).arg(e.update.as_ref());
            }
            cmd.ignore();
        }
        let mut conn = self.conn.clone();
        pipe.exec_async(&mut conn).await.map_err(backend)
    }

    async fn compact(&self, room: &RoomId, snapshot: &[u8], upto: u64) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: (i64, i64) = redis::pipe()
            .cmd("EVAL")
            .arg(COMPACT_SCRIPT)
            .arg(2)
            .arg(snap_key(room))
            .arg(log_key(room))
            .arg(snapshot)
            .arg(upto)
            .arg(upto.saturating_add(1))
            .cmd("SADD")
            .arg(ROOMS_KEY)
            .arg(room.as_str())
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn rooms(&self) -> Result<Vec<RoomId>, StoreError> {
        let mut conn = self.conn.clone();
        let names: Vec<String> = redis::cmd("SMEMBERS")
            .arg(ROOMS_KEY)
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        super::parse_stored_rooms(names)
    }

    /// `SET okrhub:marker NX`: if the marker was missing, Redis holds none of what this server
    /// wrote (or this is its first start on this Redis, when nothing is loaded yet and the
    /// write-back is empty), and it is armed again at once.
    async fn probe(&self) -> Result<Probe, StoreError> {
        let mut conn = self.conn.clone();
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let set: Value = redis::cmd("SET")
            .arg(MARKER_KEY)
            .arg(format!("okrhub marker, set at unix time {since}"))
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        Ok(match set {
            Value::Nil => Probe::Healthy,
            _ => Probe::Reset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn keys_share_the_room_hash_tag() {
        let room = RoomId::parse("acme.~ana.2026-Q3").unwrap();
        assert_eq!(snap_key(&room), "okrhub:{acme.~ana.2026-Q3}:snap");
        assert_eq!(log_key(&room), "okrhub:{acme.~ana.2026-Q3}:log");
    }

    #[test]
    fn stream_ids_are_seqs() {
        assert_eq!(parse_seq("42-0"), Some(42));
        assert_eq!(parse_seq("42"), None);
        assert_eq!(parse_seq("x-0"), None);
    }

    #[test]
    fn a_batch_is_grouped_by_room_in_seq_order() {
        let a = RoomId::parse("a.b.c").unwrap();
        let b = RoomId::parse("a.b.d").unwrap();
        let e = |room: &RoomId, seq| LogEntry {
            room: room.clone(),
            seq,
            update: Bytes::new(),
        };
        let batch = [e(&a, 1), e(&b, 7), e(&a, 2), e(&b, 8)];
        let groups = group_by_room(&batch);
        let seqs: Vec<(String, Vec<u64>)> = groups
            .iter()
            .map(|(r, es)| (r.to_string(), es.iter().map(|e| e.seq).collect()))
            .collect();
        assert_eq!(
            seqs,
            vec![("a.b.c".into(), vec![1, 2]), ("a.b.d".into(), vec![7, 8])]
        );
    }

    #[test]
    fn log_entries_the_snapshot_covers_are_skipped() {
        let room = RoomId::parse("a.b.c").unwrap();
        let mut doc = StoredDoc {
            snapshot: Some(vec![0]),
            updates: vec![],
            last_seq: 5,
        };
        let entry = |id: &str, b: u8| (id.to_owned(), vec![b"u".to_vec(), vec![b]]);
        parse_log(&room, vec![entry("5-0", 5), entry("6-0", 6)], &mut doc).unwrap();
        assert_eq!(doc.updates, vec![vec![6]]);
        assert_eq!(doc.last_seq, 6);
        assert!(parse_log(&room, vec![entry("bad", 1)], &mut doc).is_err());
    }
}
