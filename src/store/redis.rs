//! The production store: Redis, after y-redis — one stream per room, replayed by id.
//!
//! # Keys
//!
//! | key | type | holds |
//! |---|---|---|
//! | `okrhub:{ROOM}:snap` | hash | `doc`: the framed snapshot (v1 update of the whole doc); `upto`: the last seq it covers |
//! | `okrhub:{ROOM}:log` | stream | one entry per update, id `SEQ-0`, field `u`: the framed v1 update |
//! | `okrhub:rooms` | set | every room id ever written (export) |
//! | `okrhub:marker` | string | present while Redis holds our data; its absence means Redis started over empty |
//! | `okrhub:format` | string | the store format: `2` (every value framed) |
//!
//! # Integrity
//!
//! Every `doc` and `u` value carries an integrity frame ([`super::frame`]: a CRC-32C over the
//! update, the room and the seq — for a snapshot its `upto`, so a changed `upto` is caught
//! too), verified by [`DocStore::load`]; a mismatch is [`StoreError::Corrupt`], never served.
//!
//! Before its first command the store reads `okrhub:format`: `2` is this format; a missing key
//! means a Redis of format 1 (written before values were framed) or a new one, and every room
//! of `okrhub:rooms` is framed once (one script per room, values already framed left as they
//! are, so a migration cut short is finished by the next), logged, then the key is set. Any
//! other value (a newer okrhub's) is refused: every call fails, the hub stays not ready. A Redis
//! that comes back empty loses the key with the rest; the probe sets it again.
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

use std::sync::Arc;

use tokio::sync::OnceCell;

use super::frame::{self, Kind};
use super::{DocStore, LogEntry, Probe, StoreError, StoredDoc};
use crate::room_id::RoomId;

/// The set of every room written.
pub const ROOMS_KEY: &str = "okrhub:rooms";
/// Present while Redis holds okrhub's data (see [`DocStore::probe`]).
pub const MARKER_KEY: &str = "okrhub:marker";
/// The store format of what Redis holds ([`frame::FORMAT`]).
pub const FORMAT_KEY: &str = "okrhub:format";

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

/// Rewrites one room in the current format (migration): ARGV[1] is `1` when the snapshot's
/// `doc` is replaced by ARGV[2]; then seq, value pairs: the whole log, which is rebuilt.
const MIGRATE_SCRIPT: &str = r#"
if ARGV[1] == '1' then
  redis.call('HSET', KEYS[1], 'doc', ARGV[2])
end
if #ARGV > 2 then
  redis.call('DEL', KEYS[2])
  for i = 3, #ARGV, 2 do
    redis.call('XADD', KEYS[2], ARGV[i] .. '-0', 'u', ARGV[i + 1])
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
    /// Set once the format was checked (and a format-1 Redis migrated): every call waits for it.
    format: Arc<OnceCell<()>>,
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
        Ok(RedisStore {
            conn,
            format: Arc::new(OnceCell::new()),
        })
    }

    /// Waits until the format is checked (once; a failure is retried by the next call).
    async fn checked(&self) -> Result<(), StoreError> {
        self.format
            .get_or_try_init(|| self.check_format())
            .await
            .map(|_| ())
    }

    async fn check_format(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let format: Option<String> = redis::cmd("GET")
            .arg(FORMAT_KEY)
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        let current = frame::FORMAT.to_string();
        match format {
            Some(f) if f == current => Ok(()),
            Some(f) => Err(StoreError::Refused(format!(
                "redis holds okrhub store format {f:?} ({FORMAT_KEY}), written by a newer okrhub; \
                 this one reads format {current}"
            ))),
            None => {
                self.migrate().await?;
                redis::cmd("SET")
                    .arg(FORMAT_KEY)
                    .arg(&current)
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(backend)
            }
        }
    }

    /// Frames every value of a format-1 Redis (see the module docs). A room whose keys cannot
    /// be read as a room at all is left as it is and logged: its load reports it corrupt.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let names: Vec<String> = redis::cmd("SMEMBERS")
            .arg(ROOMS_KEY)
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        let (mut rooms, mut values) = (0usize, 0usize);
        for name in &names {
            let Ok(room) = RoomId::parse(name) else {
                tracing::error!(room = %name, "redis: invalid room id in {ROOMS_KEY}; not migrated");
                continue;
            };
            match self.migrate_room(&room).await? {
                Ok(0) => {}
                Ok(n) => {
                    rooms += 1;
                    values += n;
                }
                Err(reason) => {
                    tracing::error!(%room, %reason, "redis: room not migrated; it will be refused as corrupt");
                }
            }
        }
        if values > 0 {
            tracing::warn!(
                rooms,
                values,
                "redis held values written before they carried checksums (format 1): every value now carries one (format 2); done once"
            );
        }
        Ok(())
    }

    /// Frames one room's values: `Ok(Ok(n))` with how many were rewritten, `Ok(Err(reason))`
    /// when its keys are not a room's.
    async fn migrate_room(&self, room: &RoomId) -> Result<Result<usize, String>, StoreError> {
        let (snapshot, upto, log) = self.read_raw(room).await?;
        let name = room.as_str();
        let mut changed = 0;
        let mut new_doc = None;
        if let Some(doc) = snapshot {
            let Some(upto) = upto.as_deref().and_then(|u| u.parse::<u64>().ok()) else {
                return Ok(Err(format!("snapshot without a valid upto: {upto:?}")));
            };
            if !frame::is_sealed(Kind::Snapshot, name, upto, &doc) {
                new_doc = Some(frame::seal(Kind::Snapshot, name, upto, &doc));
                changed += 1;
            }
        }
        let mut entries = Vec::with_capacity(log.len());
        for (id, fields) in log {
            let Some(seq) = parse_seq(&id) else {
                return Ok(Err(format!("log entry id {id:?}")));
            };
            let value = match <[Vec<u8>; 2]>::try_from(fields) {
                Ok([field, value]) if field == b"u" => value,
                _ => return Ok(Err(format!("log entry {id} has no update field"))),
            };
            if frame::is_sealed(Kind::Log, name, seq, &value) {
                entries.push((seq, value));
            } else {
                entries.push((seq, frame::seal(Kind::Log, name, seq, &value)));
                changed += 1;
            }
        }
        if changed == 0 {
            return Ok(Ok(0));
        }
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(MIGRATE_SCRIPT)
            .arg(2)
            .arg(snap_key(room))
            .arg(log_key(room))
            .arg(if new_doc.is_some() { "1" } else { "0" })
            .arg(new_doc.unwrap_or_default());
        for (seq, value) in &entries {
            cmd.arg(*seq).arg(value.as_slice());
        }
        let mut conn = self.conn.clone();
        cmd.query_async::<()>(&mut conn).await.map_err(backend)?;
        Ok(Ok(changed))
    }

    /// A room's snapshot, its `upto` and its log as Redis holds them, read in one `MULTI`.
    async fn read_raw(&self, room: &RoomId) -> Result<RawRoom, StoreError> {
        let mut conn = self.conn.clone();
        let ((snapshot, upto), log): ((Option<Vec<u8>>, Option<String>), RawLog) = redis::pipe()
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
        Ok((snapshot, upto, log))
    }

    /// The connection, for the caller's own commands (tests, benchmarks).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

/// `XRANGE` output: entries `[id, [field, value, …]]`.
type RawLog = Vec<(String, Vec<Vec<u8>>)>;
/// A room's `doc`, `upto` and log, unchecked.
type RawRoom = (Option<Vec<u8>>, Option<String>, RawLog);

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

/// Parses `XRANGE` output (field `u`: the framed update), verifying each entry after the
/// snapshot.
fn parse_log(room: &RoomId, entries: RawLog, doc: &mut StoredDoc) -> Result<(), StoreError> {
    for (id, fields) in entries {
        let seq = parse_seq(&id)
            .ok_or_else(|| StoreError::corrupt(room, None, format!("log entry id {id:?}")))?;
        // Entries the snapshot covers (a late append after a compaction) are not replayed.
        if seq <= doc.last_seq {
            continue;
        }
        let value = match <[Vec<u8>; 2]>::try_from(fields) {
            Ok([field, value]) if field == b"u" => value,
            _ => {
                return Err(StoreError::corrupt(
                    room,
                    Some(seq),
                    format!("log entry {id} has no update field"),
                ))
            }
        };
        let update = frame::open_owned(Kind::Log, room.as_str(), seq, value)
            .map_err(|m| StoreError::corrupt(room, Some(seq), m.to_string()))?;
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
        self.checked().await?;
        let (snapshot, upto, log) = self.read_raw(room).await?;
        let mut doc = StoredDoc::default();
        if let Some(snapshot) = snapshot {
            let upto = upto
                .as_deref()
                .and_then(|u| u.parse().ok())
                .ok_or_else(|| {
                    StoreError::corrupt(
                        room,
                        None,
                        format!("snapshot without a valid upto: {upto:?}"),
                    )
                })?;
            let snapshot = frame::open_owned(Kind::Snapshot, room.as_str(), upto, snapshot)
                .map_err(|m| StoreError::corrupt(room, Some(upto), m.to_string()))?;
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
        self.checked().await?;
        let mut pipe = redis::pipe();
        let mut buf = Vec::new();
        for (room, entries) in group_by_room(batch) {
            pipe.cmd("SADD").arg(ROOMS_KEY).arg(room.as_str()).ignore();
            let cmd = pipe
                .cmd("EVAL")
                .arg(APPEND_SCRIPT)
                .arg(1)
                .arg(log_key(room));
            for e in entries {
                frame::seal_into(&mut buf, Kind::Log, room.as_str(), e.seq, &e.update);
                cmd.arg(e.seq).arg(buf.as_slice());
            }
            cmd.ignore();
        }
        let mut conn = self.conn.clone();
        pipe.exec_async(&mut conn).await.map_err(backend)
    }

    async fn compact(&self, room: &RoomId, snapshot: &[u8], upto: u64) -> Result<(), StoreError> {
        self.checked().await?;
        let snapshot = frame::seal(Kind::Snapshot, room.as_str(), upto, snapshot);
        let mut conn = self.conn.clone();
        let _: (i64, i64) = redis::pipe()
            .cmd("EVAL")
            .arg(COMPACT_SCRIPT)
            .arg(2)
            .arg(snap_key(room))
            .arg(log_key(room))
            .arg(snapshot.as_slice())
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
        self.checked().await?;
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
    /// write-back is empty), and it is armed again at once — and so is the format key, gone
    /// with the rest. The first probe checks the format (and migrates), like any first call.
    async fn probe(&self) -> Result<Probe, StoreError> {
        self.checked().await?;
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
            _ => {
                redis::cmd("SET")
                    .arg(FORMAT_KEY)
                    .arg(frame::FORMAT.to_string())
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(backend)?;
                Probe::Reset
            }
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
        let entry = |id: &str, seq: u64, b: u8| {
            let framed = frame::seal(Kind::Log, room.as_str(), seq, &[b]);
            (id.to_owned(), vec![b"u".to_vec(), framed])
        };
        parse_log(
            &room,
            vec![entry("5-0", 5, 5), entry("6-0", 6, 6)],
            &mut doc,
        )
        .unwrap();
        assert_eq!(doc.updates, vec![vec![6]]);
        assert_eq!(doc.last_seq, 6);
        assert!(parse_log(&room, vec![entry("bad", 1, 1)], &mut doc).is_err());
    }

    #[test]
    fn a_changed_or_misplaced_log_entry_is_corrupt() {
        let room = RoomId::parse("a.b.c").unwrap();
        let framed = frame::seal(Kind::Log, room.as_str(), 7, b"Durable 1");
        let mut flipped = framed.clone();
        flipped[frame::HEADER] = b'X';
        let cases = [
            ("7-0", flipped, Some(7)),
            ("8-0", framed.clone(), Some(8)),
            ("7-0", b"Durable 1".to_vec(), Some(7)),
        ];
        for (id, value, seq) in cases {
            let mut doc = StoredDoc::default();
            let err = parse_log(
                &room,
                vec![(id.into(), vec![b"u".to_vec(), value])],
                &mut doc,
            )
            .unwrap_err();
            match err {
                StoreError::Corrupt { seq: s, .. } => assert_eq!(s, seq, "{id}"),
                e => panic!("{e}"),
            }
        }
    }
}
