//! The production store: Redis, after y-redis — one stream per room, replayed by id.
//!
//! # Keys
//!
//! | key | type | holds |
//! |---|---|---|
//! | `okrhub:{ROOM}:snap` | hash | `doc`: the framed snapshot (v1 update of the whole doc); `upto`: the last seq it covers |
//! | `okrhub:{ROOM}:log` | stream | one entry per update (or tick: an empty `u`), id `SEQ-0`; fields `u`: the framed v1 update, `n`: the node that made it, `l`: that node's number for it, `t`: when the log took it (Redis's clock, ms), `b`: its author (may be empty) |
//! | `okrhub:{ROOM}:seq` | string | the room's last seq (allocated by the append script) |
//! | `okrhub:{ROOM}:nodes` | hash | per node id: the highest node-local number appended (retries are no-ops) |
//! | `okrhub:{ROOM}:lease` | string | the node compacting the room now (expires) |
//! | `okrhub:{ROOM}:clock` | string | the node writing the room's tick entries (expires; renewed by its holder) |
//! | channel `okrhub:{ROOM}:relay` | pub/sub | the room's news: fast-path updates and awareness, and each entry's number ([`super::shared`]) |
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
//! The `{ROOM}` hash tag puts a room's keys in one Redis Cluster slot, so the scripts below,
//! which touch several, run on one node.
//!
//! # A log several nodes share: numbers allocated by Redis, idempotent appends
//!
//! Any number of nodes append to a room's stream. The number of an entry (its stream id,
//! `SEQ-0`, and the `seq` of everything derived from it) is allocated inside the append script
//! by `INCR okrhub:{ROOM}:seq`, so two nodes can never number two updates alike. A node's
//! [`LogEntry::seq`] is *its own* number for the update (increasing per room and node); the
//! script skips an entry whose node-local number is at or below the highest it appended for
//! that node (`okrhub:{ROOM}:nodes`), so a batch retried after a timeout (whose first attempt
//! may have landed) is harmless. A batch is one pipeline — one round trip — with one script
//! call per room; a script stops at the first real error, so what landed of a failed batch is
//! a prefix of each room's entries. The script then publishes each entry's number on the
//! room's channel, in log order (after y-redis, with the relay of [`super::shared`]).
//!
//! A stream written by a single-node okrhub (entries numbered by the node, field `u` only)
//! reads as it is; the counter starts above its top the first time a shared append runs.
//!
//! # Atomic, monotonic compaction
//!
//! `compact` is one script: unless the stored snapshot already covers more, it writes the new
//! snapshot and trims the stream to the entries after `upto - TRIM_MARGIN` — a node slower
//! than that finds its next entry trimmed and catches up from the snapshot — and moves the
//! counter up to `upto` (a write-back after Redis lost its data numbers on from there). A
//! script runs atomically, so a crash leaves either the old pair or the new one, and two
//! compactions racing can never replace a newer snapshot by an older one. Across nodes one
//! compacts at a time: the hub takes the room's lease ([`SharedLog::try_lease`]) first, and
//! the script writes only while the lease is still the writer's (a fence: a node whose lease
//! expired while it worked writes nothing). `load` reads snapshot and stream in one `MULTI`,
//! so it never sees a snapshot from before a trim together with the stream from after it.
//!
//! # Failures
//!
//! One multiplexed connection (a [`ConnectionManager`], or a cluster connection) serves every
//! call, and a second one (RESP3, resubscribing by itself after a reconnect) carries the
//! subscriptions. Both are made lazily: the server starts while Redis is down, reports not
//! ready, and works as soon as Redis answers. Every call has a response timeout, so a hung
//! Redis surfaces as an error the persister retries rather than a stuck task.
//!
//! # Redis Cluster
//!
//! With `--redis-cluster` the URL is a comma-separated list of seed nodes. Every script names
//! all its keys in `KEYS`, and a room's keys and channel share its `{ROOM}` hash tag, so each
//! runs on the room's shard; the relay uses sharded pub/sub (`SSUBSCRIBE` / `SPUBLISH`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, PushInfo, PushKind, RedisError, RedisFuture, Value};
use tokio::sync::{mpsc, OnceCell};

use super::frame::{self, Kind};
use super::shared::{EntryMeta, Heard, Origin, Read, SharedLog};
use super::{DocStore, LogEntry, Probe, StoreError, StoredDoc};
use crate::identity::UserId;
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

/// Appends one room's entries from one node and numbers them, each stamped with Redis's clock
/// (the `at` of the events every node derives from it). KEYS: the log, the counter, the
/// node marks, the snapshot hash. ARGV: the node id, the publish command (`PUBLISH` or
/// `SPUBLISH`), the channel, then (local number, author, framed update) per entry. An entry
/// whose local number is not above the node's mark is already written (a retry). Returns the
/// last seq.
const APPEND_SCRIPT: &str = r#"
local node = ARGV[1]
local mark = tonumber(redis.call('HGET', KEYS[3], node) or '0')
if redis.call('EXISTS', KEYS[2]) == 0 then
  local top = 0
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if #last > 0 then
    top = tonumber(string.match(last[1][1], '^(%d+)'))
  end
  local upto = tonumber(redis.call('HGET', KEYS[4], 'upto') or '0')
  redis.call('SET', KEYS[2], math.max(top, upto))
end
local seq = tonumber(redis.call('GET', KEYS[2]))
local now = redis.call('TIME')
local at = string.format('%.0f', now[1] * 1000 + math.floor(now[2] / 1000))
for i = 4, #ARGV, 3 do
  local l = tonumber(ARGV[i])
  if l > mark then
    seq = redis.call('INCR', KEYS[2])
    redis.call('XADD', KEYS[1], seq .. '-0', 'u', ARGV[i + 2], 'n', node, 'l', ARGV[i], 't', at, 'b', ARGV[i + 1])
    redis.call(ARGV[2], ARGV[3], 'L' .. seq .. ' ' .. node .. ' ' .. ARGV[i] .. ' ' .. at .. ' ' .. ARGV[i + 1])
    mark = l
  end
end
redis.call('HSET', KEYS[3], node, mark)
return seq
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

/// Writes snapshot ARGV[1] covering seq ARGV[2], trims the log below ARGV[3], and moves the
/// counter up to ARGV[2] — unless the stored snapshot covers more, or the lease (KEYS[4]) is
/// held by another node than ARGV[4] (empty: no lease asked). KEYS: snapshot, log, counter,
/// lease. Returns 1 if written, 0 if skipped.
const COMPACT_SCRIPT: &str = r#"
if ARGV[4] ~= '' then
  local holder = redis.call('GET', KEYS[4])
  if holder and holder ~= ARGV[4] then
    return 0
  end
end
local cur = redis.call('HGET', KEYS[1], 'upto')
if cur and tonumber(cur) > tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'upto', ARGV[2])
if tonumber(ARGV[3]) > 1 then
  redis.call('XTRIM', KEYS[2], 'MINID', ARGV[3] .. '-0')
end
local counter = tonumber(redis.call('GET', KEYS[3]) or '0')
if counter < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[3], ARGV[2])
end
return 1
"#;

/// Takes the lease KEYS[1] for ARGV[1] (PX ARGV[2]) if it is free, or renews it if ARGV[1]
/// holds it. Returns 1 if ARGV[1] holds it now.
const HOLD_SCRIPT: &str = r#"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"#;

/// Releases the lease KEYS[1] if ARGV[1] holds it.
const RELEASE_SCRIPT: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// Log entries kept below a snapshot's `upto` when it trims the log (by default), for nodes
/// that are a little behind: they read on from the log instead of catching up from the
/// snapshot.
pub const TRIM_MARGIN: u64 = 1024;

/// The snapshot hash of `room`.
pub fn snap_key(room: &RoomId) -> String {
    format!("okrhub:{{{room}}}:snap")
}

/// The update stream of `room`.
pub fn log_key(room: &RoomId) -> String {
    format!("okrhub:{{{room}}}:log")
}

/// The room's seq counter.
pub fn seq_key(room: &RoomId) -> String {
    format!("okrhub:{{{room}}}:seq")
}

/// The room's per-node marks (the highest node-local number appended).
pub fn nodes_key(room: &RoomId) -> String {
    format!("okrhub:{{{room}}}:nodes")
}

/// The room's compaction lease.
pub fn lease_key(room: &RoomId) -> String {
    format!("okrhub:{{{room}}}:lease")
}

/// The room's clock lease (the node writing its tick entries).
pub fn clock_key(room: &RoomId) -> String {
    format!("okrhub:{{{room}}}:clock")
}

/// The room's pub/sub channel (sharded on a cluster: same slot as its keys).
pub fn channel(room: &RoomId) -> String {
    format!("okrhub:{{{room}}}:relay")
}

/// The seq of a stream id written by [`RedisStore::append`] (`SEQ-0`).
fn parse_seq(id: &str) -> Option<u64> {
    let (ms, _) = id.split_once('-')?;
    ms.parse().ok()
}

fn backend(e: RedisError) -> StoreError {
    StoreError::backend("redis", e)
}

/// The hash of an org's settings (one key: one slot on a Cluster).
fn settings_key(org: &str) -> String {
    format!("okrhub:org:{{{org}}}:settings")
}

/// The payload of a stored org setting, checked.
fn open_setting(org: &str, key: &str, stored: &[u8]) -> Result<Vec<u8>, StoreError> {
    frame::open(Kind::Setting, &frame::setting_binding(org, key), 0, stored)
        .map(<[u8]>::to_vec)
        .map_err(|m| StoreError::Corrupt {
            room: format!("org {org}"),
            seq: None,
            reason: format!("setting {key:?}: {m}"),
        })
}

/// One multiplexed connection to a single Redis or to a cluster.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// How the store reaches Redis: connections made on first use (so a server starts while Redis
/// is down), one for commands and one for subscriptions. (One per store: its size is moot.)
#[allow(clippy::large_enum_variant)]
enum Source {
    Single {
        commands: ConnectionManager,
        /// RESP3, with the push sender and automatic resubscription.
        subscriptions: ConnectionManager,
    },
    Cluster {
        commands: ClusterClient,
        subscriptions: ClusterClient,
        made: OnceCell<(ClusterConnection, ClusterConnection)>,
    },
}

/// A fast-path message: channel and payload.
type Message = (String, Vec<u8>);
/// Fast-path messages waiting for the publisher task, in order.
type Outbox = mpsc::UnboundedSender<Message>;

/// A Redis-backed [`DocStore`] and [`SharedLog`]. Cheap to clone (the connections are shared).
#[derive(Clone)]
pub struct RedisStore {
    source: Arc<Source>,
    /// Set once the format was checked (and a format-1 Redis migrated): every call waits for it.
    format: Arc<OnceCell<()>>,
    /// This process's node id in the shared log.
    node: Arc<str>,
    /// The news of followed rooms, until the hub takes it.
    feed: Arc<Mutex<Option<mpsc::UnboundedReceiver<Heard>>>>,
    outbox: Outbox,
    outbox_rx: Arc<Mutex<Option<mpsc::UnboundedReceiver<Message>>>>,
    /// Entries kept below a snapshot when it trims the log ([`TRIM_MARGIN`]).
    trim_margin: u64,
    /// What the store was opened with (the publisher opens its own connection).
    urls: Arc<str>,
}

/// Parses the pushes of the subscription connection into [`Heard`] news.
struct Listener {
    tx: mpsc::UnboundedSender<Heard>,
    /// This node: its own fast-path messages come back on the channel and are dropped here,
    /// before their bytes are copied.
    own: Arc<str>,
}

impl redis::aio::AsyncPushSender for Listener {
    fn send(&self, info: PushInfo) -> Result<(), redis::aio::SendError> {
        let heard = match info.kind {
            PushKind::Message | PushKind::SMessage => match info.data.as_slice() {
                [Value::BulkString(channel), Value::BulkString(payload)] => {
                    parse_news(channel, payload, &self.own)
                }
                _ => None,
            },
            PushKind::Subscribe | PushKind::SSubscribe => None,
            // After a reconnect the connection resubscribes; news meanwhile is lost.
            PushKind::Disconnection => Some(Heard::Resubscribed),
            _ => None,
        };
        match heard {
            Some(h) => self.tx.send(h).map_err(|_| redis::aio::SendError),
            None => Ok(()),
        }
    }
}

/// The room a channel name (`okrhub:{ROOM}:relay`) is of.
fn channel_room(channel: &[u8]) -> Option<RoomId> {
    let s = std::str::from_utf8(channel).ok()?;
    let inner = s.strip_prefix("okrhub:{")?.strip_suffix("}:relay")?;
    RoomId::parse(inner).ok()
}

/// Parses one message of a room's channel: `U<node> <local> <by>\n<update>`,
/// `P<node>\n<JSON: user → /live connections>`, `Q<node>`,
/// `A<node>\n<awareness update>` or `L<seq> <node> <local> <at> <by>`. Anything else is ignored
/// (and a newer node's message kinds with it).
fn parse_news(channel: &[u8], payload: &[u8], own: &str) -> Option<Heard> {
    let (&kind, rest) = payload.split_first()?;
    // What this node itself said comes back too: only its log notices matter to it.
    if kind != b'L' {
        let end = rest.iter().position(|&b| b == b'\n' || b == b' ');
        if &rest[..end.unwrap_or(rest.len())] == own.as_bytes() {
            return None;
        }
    }
    let room = channel_room(channel)?;
    let by = |s: &str| (!s.is_empty()).then(|| UserId::parse(s).ok()).flatten();
    match kind {
        b'U' => {
            let nl = rest.iter().position(|&b| b == b'\n')?;
            let head = std::str::from_utf8(&rest[..nl]).ok()?;
            let mut parts = head.splitn(3, ' ');
            let node: Arc<str> = parts.next()?.into();
            let local = parts.next()?.parse().ok()?;
            let by = by(parts.next().unwrap_or(""));
            Some(Heard::Update {
                room,
                origin: Origin { node, local },
                by,
                update: Bytes::copy_from_slice(&rest[nl + 1..]),
            })
        }
        b'A' => {
            let nl = rest.iter().position(|&b| b == b'\n')?;
            let node = std::str::from_utf8(&rest[..nl]).ok()?.into();
            Some(Heard::Awareness {
                room,
                node,
                update: Bytes::copy_from_slice(&rest[nl + 1..]),
            })
        }
        b'P' => {
            let nl = rest.iter().position(|&b| b == b'\n')?;
            let node = std::str::from_utf8(&rest[..nl]).ok()?.into();
            let live = serde_json::from_slice(&rest[nl + 1..]).ok()?;
            Some(Heard::Presence { room, node, live })
        }
        b'Q' => {
            let node = std::str::from_utf8(rest).ok()?.into();
            Some(Heard::Query { room, node })
        }
        b'L' => {
            let head = std::str::from_utf8(rest).ok()?;
            let mut parts = head.splitn(5, ' ');
            let seq = parts.next()?.parse().ok()?;
            let node: Arc<str> = parts.next()?.into();
            let local = parts.next()?.parse().ok()?;
            let at = parts.next()?.parse().ok()?;
            let by = by(parts.next().unwrap_or(""));
            Some(Heard::Logged {
                room,
                seq,
                origin: Origin { node, local },
                by,
                at,
            })
        }
        _ => None,
    }
}

/// A new node id: random, so two processes (or one restarted) never share one.
fn new_node_id() -> Arc<str> {
    format!("{:016x}", fastrand::u64(..)).into()
}

impl RedisStore {
    /// A store for `url` (`redis://host:port/db`). Does not connect: the first call does, and
    /// every later call reconnects if needed. Fails only on a malformed URL.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, false)
    }

    /// A store for `urls`: one Redis URL, or with `cluster` a comma-separated list of seed
    /// nodes of a Redis Cluster.
    pub fn open_with(urls: &str, cluster: bool) -> Result<Self, StoreError> {
        let invalid = |e: RedisError| StoreError::backend(format!("invalid redis url {urls:?}"), e);
        let (tx, rx) = mpsc::unbounded_channel();
        let node = new_node_id();
        let listener = Listener {
            tx,
            own: node.clone(),
        };
        let source = if cluster {
            let seeds: Vec<&str> = urls.split(',').map(str::trim).collect();
            let builder = || {
                ClusterClient::builder(seeds.clone())
                    .response_timeout(RESPONSE_TIMEOUT)
                    .connection_timeout(CONNECT_TIMEOUT)
                    .retries(2)
            };
            Source::Cluster {
                commands: builder().build().map_err(invalid)?,
                subscriptions: builder()
                    .use_protocol(redis::ProtocolVersion::RESP3)
                    .push_sender(listener)
                    .build()
                    .map_err(invalid)?,
                made: OnceCell::new(),
            }
        } else {
            let client = redis::Client::open(urls).map_err(invalid)?;
            let config = ConnectionManagerConfig::new()
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(500));
            let commands =
                ConnectionManager::new_lazy_with_config(client, config.clone()).map_err(backend)?;
            let mut info = urls.parse::<redis::ConnectionInfo>().map_err(invalid)?;
            let redis_info = info
                .redis_settings()
                .clone()
                .set_protocol(redis::ProtocolVersion::RESP3);
            info = info.set_redis_settings(redis_info);
            let sub_client = redis::Client::open(info).map_err(invalid)?;
            let subscriptions = ConnectionManager::new_lazy_with_config(
                sub_client,
                config
                    .set_push_sender(listener)
                    .set_automatic_resubscription(),
            )
            .map_err(backend)?;
            Source::Single {
                commands,
                subscriptions,
            }
        };
        let (outbox, outbox_rx) = mpsc::unbounded_channel();
        Ok(RedisStore {
            source: Arc::new(source),
            format: Arc::new(OnceCell::new()),
            node,
            feed: Arc::new(Mutex::new(Some(rx))),
            outbox,
            outbox_rx: Arc::new(Mutex::new(Some(outbox_rx))),
            trim_margin: TRIM_MARGIN,
            urls: urls.into(),
        })
    }

    /// Keeps `margin` entries below each snapshot when trimming the log (default
    /// [`TRIM_MARGIN`]; 0 trims everything the snapshot covers).
    pub fn with_trim_margin(mut self, margin: u64) -> Self {
        self.trim_margin = margin;
        self
    }

    fn is_cluster(&self) -> bool {
        matches!(*self.source, Source::Cluster { .. })
    }

    /// Runs `cmds` in order: one pipeline on a single Redis; on a cluster, where a pipeline
    /// may not cross slots, each on its own (concurrently: each is whole by itself).
    async fn run_all(&self, cmds: Vec<Cmd>) -> Result<Vec<Value>, StoreError> {
        let mut conn = self.conn().await?;
        if !self.is_cluster() {
            let mut pipe = redis::pipe();
            for c in cmds {
                pipe.add_command(c);
            }
            return pipe.query_async(&mut conn).await.map_err(backend);
        }
        let runs = cmds.into_iter().map(|c| {
            let mut conn = conn.clone();
            async move { c.query_async::<Value>(&mut conn).await }
        });
        futures_util::future::try_join_all(runs)
            .await
            .map_err(backend)
    }

    /// The command connection (made on first use for a cluster).
    async fn conn(&self) -> Result<Conn, StoreError> {
        match &*self.source {
            Source::Single { commands, .. } => Ok(Conn::Single(commands.clone())),
            Source::Cluster { .. } => Ok(Conn::Cluster(self.cluster().await?.0)),
        }
    }

    async fn cluster(&self) -> Result<(ClusterConnection, ClusterConnection), StoreError> {
        let Source::Cluster {
            commands,
            subscriptions,
            made,
        } = &*self.source
        else {
            unreachable!("called for a cluster only");
        };
        made.get_or_try_init(|| async {
            let c = commands.get_async_connection().await.map_err(backend)?;
            let s = subscriptions
                .get_async_connection()
                .await
                .map_err(backend)?;
            Ok::<_, StoreError>((c, s))
        })
        .await
        .cloned()
    }

    /// Starts the task that publishes the fast-path messages in order, pipelining whatever
    /// queued up while the previous round trip was out. Called once by the first
    /// [`SharedLog::take_feed`].
    fn start_publisher(&self) {
        let Some(mut rx) = self
            .outbox_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
            return;
        };
        let (urls, cluster) = (self.urls.clone(), self.is_cluster());
        let publish = if cluster { "SPUBLISH" } else { "PUBLISH" };
        // Its own thread, runtime and connection: woken by the OS at once, rather than behind
        // the task that queued the message (tokio runs a task it wakes on the waking worker
        // once that task yields — after the room's local fan-out, which took 0.5–3.4 ms with
        // 10–133 local clients; see load-tests/RESULTS.md, "Several nodes").
        let spawned = std::thread::Builder::new()
            .name("okrhub-publish".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "redis: the publisher's runtime did not start");
                        return;
                    }
                };
                runtime.block_on(async move {
                    let store = match RedisStore::open_with(&urls, cluster) {
                        Ok(store) => store,
                        Err(e) => {
                            tracing::error!(error = %e, "redis: the publisher did not start");
                            return;
                        }
                    };
                    let mut batch = Vec::new();
                    while rx.recv_many(&mut batch, 256).await > 0 {
                        let mut pipe = redis::pipe();
                        for (channel, payload) in batch.drain(..) {
                            pipe.cmd(publish).arg(channel).arg(payload).ignore();
                        }
                        let sent = async {
                            let mut conn = store.conn().await?;
                            pipe.exec_async(&mut conn).await.map_err(backend)
                        };
                        // Lost fast-path news costs latency only: the log's notices and the
                        // heads check bring every node up to date.
                        if let Err(e) = sent.await {
                            tracing::warn!(error = %e, "redis: fast-path publish failed");
                        }
                    }
                });
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "redis: the publisher thread did not start");
        }
    }

    /// Queues a message for the room's channel: `KIND<node><head>`, then `\n<body>` if there
    /// is one (the formats of [`parse_news`]). Never waits.
    fn publish(&self, room: &RoomId, kind: u8, head: &str, body: Option<&[u8]>) {
        let len = 2 + self.node.len() + head.len() + body.map_or(0, <[u8]>::len);
        let mut payload = Vec::with_capacity(len);
        payload.push(kind);
        payload.extend_from_slice(self.node.as_bytes());
        payload.extend_from_slice(head.as_bytes());
        if let Some(body) = body {
            payload.push(b'\n');
            payload.extend_from_slice(body);
        }
        let _ = self.outbox.send((channel(room), payload));
    }

    /// Waits until the format is checked (once; a failure is retried by the next call).
    async fn checked(&self) -> Result<(), StoreError> {
        self.format
            .get_or_try_init(|| self.check_format())
            .await
            .map(|_| ())
    }

    async fn check_format(&self) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
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
        let mut conn = self.conn().await?;
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
        let mut conn = self.conn().await?;
        cmd.query_async::<()>(&mut conn).await.map_err(backend)?;
        Ok(Ok(changed))
    }

    /// A room's snapshot, its `upto` and its log as Redis holds them, read in one `MULTI`.
    async fn read_raw(&self, room: &RoomId) -> Result<RawRoom, StoreError> {
        let mut conn = self.conn().await?;
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

    /// This node's id in the shared log.
    pub fn node_id(&self) -> &Arc<str> {
        &self.node
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

/// One stream entry, checked.
struct Entry {
    meta: EntryMeta,
    update: Vec<u8>,
}

/// One stream entry, checked: its seq, where it was made (none for a single-node entry) and
/// the update.
fn parse_entry(room: &RoomId, id: &str, fields: Vec<Vec<u8>>) -> Result<Entry, StoreError> {
    let seq = parse_seq(id)
        .ok_or_else(|| StoreError::corrupt(room, None, format!("log entry id {id:?}")))?;
    let corrupt =
        |what: &str| StoreError::corrupt(room, Some(seq), format!("log entry {id}: {what}"));
    let (mut u, mut n, mut l, mut b, mut t) = (None, None, None, None, None);
    let mut it = fields.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        match k.as_slice() {
            b"u" => u = Some(v),
            b"n" => n = Some(v),
            b"l" => l = Some(v),
            b"b" => b = Some(v),
            b"t" => t = Some(v),
            _ => {}
        }
    }
    let value = u.ok_or_else(|| corrupt("no update field"))?;
    let Some(node) = n else {
        let update = frame::open_owned(Kind::Log, room.as_str(), seq, value)
            .map_err(|m| StoreError::corrupt(room, Some(seq), m.to_string()))?;
        let meta = EntryMeta {
            seq,
            origin: None,
            by: None,
            at: None,
        };
        return Ok(Entry { meta, update });
    };
    let node: Arc<str> = String::from_utf8(node)
        .map_err(|_| corrupt("node id"))?
        .into();
    let local: u64 = std::str::from_utf8(&l.ok_or_else(|| corrupt("no local number"))?)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| corrupt("local number"))?;
    let by = match b.as_deref() {
        None | Some(b"") => None,
        Some(b) => Some(
            std::str::from_utf8(b)
                .ok()
                .and_then(|s| UserId::parse(s).ok())
                .ok_or_else(|| corrupt("author"))?,
        ),
    };
    let at = t
        .as_deref()
        .and_then(|t| std::str::from_utf8(t).ok()?.parse().ok());
    let update = frame::open_owned(Kind::Entry, room.as_str(), local, value)
        .map_err(|m| StoreError::corrupt(room, Some(seq), m.to_string()))?;
    let meta = EntryMeta {
        seq,
        origin: Some(Origin { node, local }),
        by,
        at,
    };
    Ok(Entry { meta, update })
}

/// Parses `XRANGE` output, verifying each entry after the snapshot.
fn parse_log(room: &RoomId, entries: RawLog, doc: &mut StoredDoc) -> Result<(), StoreError> {
    for (id, fields) in entries {
        // Entries the snapshot covers (kept as a margin, or a late append after a compaction)
        // are not replayed.
        if parse_seq(&id).is_some_and(|seq| seq <= doc.last_seq) {
            continue;
        }
        let entry = parse_entry(room, &id, fields)?;
        doc.updates.push(entry.update);
        doc.last_seq = entry.meta.seq;
        doc.meta.push(entry.meta);
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
            doc.snapshot_seq = upto;
        }
        parse_log(room, log, &mut doc)?;
        Ok(doc)
    }

    async fn append(&self, batch: &[LogEntry]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.checked().await?;
        let publish = if self.is_cluster() {
            "SPUBLISH"
        } else {
            "PUBLISH"
        };
        let mut cmds = Vec::new();
        let mut buf = Vec::new();
        for (room, entries) in group_by_room(batch) {
            let mut sadd = redis::cmd("SADD");
            sadd.arg(ROOMS_KEY).arg(room.as_str());
            cmds.push(sadd);
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(APPEND_SCRIPT)
                .arg(4)
                .arg(log_key(room))
                .arg(seq_key(room))
                .arg(nodes_key(room))
                .arg(snap_key(room))
                .arg(&*self.node)
                .arg(publish)
                .arg(channel(room));
            for e in entries {
                frame::seal_into(&mut buf, Kind::Entry, room.as_str(), e.seq, &e.update);
                cmd.arg(e.seq)
                    .arg(e.by.as_ref().map_or("", UserId::as_str))
                    .arg(buf.as_slice());
            }
            cmds.push(cmd);
        }
        self.run_all(cmds).await.map(|_| ())
    }

    async fn compact(&self, room: &RoomId, snapshot: &[u8], upto: u64) -> Result<(), StoreError> {
        self.checked().await?;
        let snapshot = frame::seal(Kind::Snapshot, room.as_str(), upto, snapshot);
        let mut eval = redis::cmd("EVAL");
        eval.arg(COMPACT_SCRIPT)
            .arg(4)
            .arg(snap_key(room))
            .arg(log_key(room))
            .arg(seq_key(room))
            .arg(lease_key(room))
            .arg(snapshot.as_slice())
            .arg(upto)
            .arg((upto + 1).saturating_sub(self.trim_margin))
            .arg(&*self.node);
        let mut sadd = redis::cmd("SADD");
        sadd.arg(ROOMS_KEY).arg(room.as_str());
        let replies = self.run_all(vec![eval, sadd]).await?;
        let written: i64 = redis::from_redis_value(replies[0].clone())
            .map_err(|e| StoreError::backend("redis reply", e))?;
        if written == 0 {
            tracing::debug!(%room, upto, "snapshot not written: the store holds a newer one, or another node holds the lease");
        }
        Ok(())
    }

    fn shared(&self) -> Option<Arc<dyn SharedLog>> {
        Some(Arc::new(self.clone()))
    }

    async fn rooms(&self) -> Result<Vec<RoomId>, StoreError> {
        self.checked().await?;
        let mut conn = self.conn().await?;
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
    async fn setting_get(&self, org: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut conn = self.conn().await?;
        let v: Option<Vec<u8>> = redis::cmd("HGET")
            .arg(settings_key(org))
            .arg(key)
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        v.map(|v| open_setting(org, key, &v)).transpose()
    }

    async fn setting_put(&self, org: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let sealed = frame::seal(Kind::Setting, &frame::setting_binding(org, key), 0, value);
        let mut conn = self.conn().await?;
        redis::cmd("HSET")
            .arg(settings_key(org))
            .arg(key)
            .arg(sealed)
            .query_async::<()>(&mut conn)
            .await
            .map_err(backend)
    }

    async fn setting_delete(&self, org: &str, key: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        let n: u64 = redis::cmd("HDEL")
            .arg(settings_key(org))
            .arg(key)
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        Ok(n > 0)
    }

    async fn settings_list(
        &self,
        org: &str,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut conn = self.conn().await?;
        let all: Vec<(String, Vec<u8>)> = redis::cmd("HGETALL")
            .arg(settings_key(org))
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        let mut out = Vec::new();
        for (k, v) in all.into_iter().filter(|(k, _)| k.starts_with(prefix)) {
            let value = open_setting(org, &k, &v)?;
            out.push((k, value));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    async fn probe(&self) -> Result<Probe, StoreError> {
        self.checked().await?;
        let mut conn = self.conn().await?;
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

#[async_trait]
impl SharedLog for RedisStore {
    fn node(&self) -> &Arc<str> {
        &self.node
    }

    fn take_feed(&self) -> Option<mpsc::UnboundedReceiver<Heard>> {
        let feed = self.feed.lock().unwrap_or_else(|p| p.into_inner()).take();
        if feed.is_some() {
            self.start_publisher();
        }
        feed
    }

    async fn follow(&self, room: &RoomId) -> Result<(), StoreError> {
        match &*self.source {
            Source::Single { subscriptions, .. } => {
                let mut c = subscriptions.clone();
                c.subscribe(channel(room)).await.map_err(backend)
            }
            Source::Cluster { .. } => {
                let (_, mut s) = self.cluster().await?;
                s.ssubscribe(channel(room)).await.map_err(backend)
            }
        }
    }

    async fn unfollow(&self, room: &RoomId) -> Result<(), StoreError> {
        match &*self.source {
            Source::Single { subscriptions, .. } => {
                let mut c = subscriptions.clone();
                c.unsubscribe(channel(room)).await.map_err(backend)
            }
            Source::Cluster { .. } => {
                let (_, mut s) = self.cluster().await?;
                s.sunsubscribe(channel(room)).await.map_err(backend)
            }
        }
    }

    fn publish_update(&self, room: &RoomId, local: u64, by: Option<&UserId>, update: Bytes) {
        let by = by.map_or("", UserId::as_str);
        self.publish(room, b'U', &format!(" {local} {by}"), Some(&update));
    }

    fn publish_awareness(&self, room: &RoomId, update: Bytes) {
        self.publish(room, b'A', "", Some(&update));
    }

    fn publish_presence(&self, room: &RoomId, live: &std::collections::BTreeMap<String, usize>) {
        // A map of strings to numbers always serialises.
        let json = serde_json::to_vec(live).unwrap_or_default();
        self.publish(room, b'P', "", Some(&json));
    }

    fn publish_query(&self, room: &RoomId) {
        self.publish(room, b'Q', "", None);
    }

    async fn read_after(
        &self,
        room: &RoomId,
        after: u64,
        count: usize,
    ) -> Result<Read, StoreError> {
        self.checked().await?;
        let mut conn = self.conn().await?;
        let (upto, log): (Option<u64>, RawLog) = redis::pipe()
            .atomic()
            .cmd("HGET")
            .arg(snap_key(room))
            .arg("upto")
            .cmd("XRANGE")
            .arg(log_key(room))
            .arg(format!("{}-0", after + 1))
            .arg("+")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        let mut entries = Vec::with_capacity(log.len());
        for (id, fields) in log {
            let entry = parse_entry(room, &id, fields)?;
            entries.push(entry.meta.logged(entry.update.into()));
        }
        // The next entry is gone if the first one read is further on, or none is left, while
        // the snapshot covers it (trimmed — or lost by a Redis and written back since).
        let next = after + 1;
        let covered = upto.is_some_and(|u| u >= next);
        let trimmed = match entries.first() {
            Some(first) => first.seq > next && covered,
            None => covered,
        };
        Ok(if trimmed {
            Read::Trimmed
        } else {
            Read::Entries(entries)
        })
    }

    async fn heads(&self, rooms: &[RoomId]) -> Result<Vec<u64>, StoreError> {
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        let cmds = rooms
            .iter()
            .map(|room| {
                let mut get = redis::cmd("GET");
                get.arg(seq_key(room));
                get
            })
            .collect();
        let heads: Vec<Option<u64>> = (self.run_all(cmds).await?.into_iter())
            .map(redis::from_redis_value)
            .collect::<Result<_, _>>()
            .map_err(|e| StoreError::backend("redis reply", e))?;
        Ok(heads.into_iter().map(Option::unwrap_or_default).collect())
    }

    async fn try_lease(&self, room: &RoomId, ttl: Duration) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        let set: Value = redis::cmd("SET")
            .arg(lease_key(room))
            .arg(&*self.node)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        Ok(!matches!(set, Value::Nil))
    }

    async fn hold_clock(&self, room: &RoomId, ttl: Duration) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        let held: i64 = redis::cmd("EVAL")
            .arg(HOLD_SCRIPT)
            .arg(1)
            .arg(clock_key(room))
            .arg(&*self.node)
            .arg(ttl.as_millis() as u64)
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        Ok(held == 1)
    }

    async fn release_lease(&self, room: &RoomId) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        redis::cmd("EVAL")
            .arg(RELEASE_SCRIPT)
            .arg(1)
            .arg(lease_key(room))
            .arg(&*self.node)
            .query_async::<()>(&mut conn)
            .await
            .map_err(backend)
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
            by: None,
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
            last_seq: 5,
            ..StoredDoc::default()
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

    #[test]
    fn relay_messages_parse_and_foreign_ones_are_ignored() {
        let channel = b"okrhub:{acme.sales.2026-Q3}:relay";
        match parse_news(channel, b"U0a1b 7 ann\n\x01\x02", "me") {
            Some(Heard::Update {
                room,
                origin,
                by,
                update,
            }) => {
                assert_eq!(room.as_str(), "acme.sales.2026-Q3");
                assert_eq!((&*origin.node, origin.local), ("0a1b", 7));
                assert_eq!(by.unwrap().as_str(), "ann");
                assert_eq!(&update[..], b"\x01\x02");
            }
            other => panic!("{other:?}"),
        }
        match parse_news(channel, b"L42 0a1b 7 1796345953317 ", "me") {
            Some(Heard::Logged {
                seq,
                origin,
                by,
                at,
                ..
            }) => {
                assert_eq!((seq, origin.local, at), (42, 7, 1796345953317));
                assert!(by.is_none());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_news(channel, b"A0a1b\n\x01", "me"),
            Some(Heard::Awareness { .. })
        ));
        for (c, p) in [
            (&channel[..], &b"L42 0a1b"[..]),
            (&channel[..], &b"Lx 0a1b 7 1 ann"[..]),
            (&channel[..], &b"Z whatever"[..]),
            (&channel[..], &b""[..]),
            (&b"okrhub:{bad room}:relay"[..], &b"L1 n 1 1 "[..]),
            (&b"other:channel"[..], &b"L1 n 1 1 "[..]),
        ] {
            assert!(parse_news(c, p, "me").is_none(), "{p:?}");
        }
        // This node's own fast-path messages are dropped; its log notices are not.
        assert!(parse_news(channel, b"Ume 7 ann\n\x01", "me").is_none());
        assert!(parse_news(channel, b"Ame\n\x01", "me").is_none());
        assert!(parse_news(channel, b"Qme", "me").is_none());
        assert!(parse_news(channel, b"L1 me 7 1 ", "me").is_some());
    }
}
