//! Prometheus metrics, one registry per server instance.
//!
//! `prometheus-client` (the Prometheus project's Rust client) keeps the registry a plain value
//! rather than a process global, so every server — including the several a test binary starts at
//! once — counts only its own traffic. `/metrics` renders [`Metrics::render`] in the text format.

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry};

/// Labels of [`Metrics::closes`]: why the server closed a connection.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloseLabels {
    pub reason: &'static str,
}

/// Labels of [`Metrics::limits`]: which limit refused something.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    pub limit: &'static str,
}

/// Labels of the transport's refusal counters ([`Metrics::connections_refused`],
/// [`Metrics::http_refused`]): which limit tripped.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

/// Labels of [`Metrics::decode_refusals`]: which rule of the decode guard refused the bytes
/// (`count`, `truncated`, `depth`, `invalid`; see `protocol::bound::Refusal::rule`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecodeLabels {
    pub rule: &'static str,
}

/// Every metric the hub exports. Fields are cheap atomics; clone-free access through an `Arc`.
pub struct Metrics {
    registry: Registry,
    /// Open WebSocket connections.
    pub connections: Gauge,
    /// Rooms held in memory.
    pub rooms_loaded: Gauge,
    pub frames_in: Counter,
    pub frames_out: Counter,
    pub bytes_in: Counter,
    pub bytes_out: Counter,
    /// Connections closed because their outgoing queue overflowed.
    pub slow_consumer_disconnects: Counter,
    /// Connections the server closed, by reason.
    pub closes: Family<CloseLabels, Counter>,
    /// Seconds per store append call (one batch).
    pub store_append_seconds: Histogram,
    /// Log entries written to the store.
    pub store_appended: Counter,
    pub store_errors: Counter,
    /// Updates waiting for the persister.
    pub persist_queue: Gauge,
    /// Bytes of the updates waiting for the persister.
    pub persist_queue_bytes: Gauge,
    /// 1 while the store's last write and probe succeeded, 0 while either fails.
    pub store_up: Gauge,
    /// Writes refused because the persist buffer was full.
    pub store_refused: Counter,
    /// Loaded rooms written back after the store came back empty.
    pub store_writebacks: Counter,
    /// Shared log: entries the store has numbered that this node has not applied yet (summed
    /// over its rooms, at the last check of the log's heads).
    pub relay_lag_entries: Gauge,
    /// Shared log: how long this node has been behind the log's head, in milliseconds (0 when
    /// up to date at the last check).
    pub relay_lag_ms: Gauge,
    /// Shared log: other nodes' updates and awareness applied here.
    pub relayed: Counter,
    /// Shared log: news that could not be applied, reads that failed, checks that failed.
    pub relay_errors: Counter,
    /// Shared log: updates applied here and not numbered by the log yet.
    pub relay_pending: Gauge,
    /// Shared log: compaction leases this node took (it compacted the room).
    pub compaction_leases: Counter,
    /// Shared log: compactions skipped because another node held the room's lease.
    pub compaction_lease_busy: Counter,
    /// Shared log: tick entries this node wrote (as the holder of rooms' clock leases).
    pub ticks_written: Counter,
    /// Room loads that found a stored value failing its integrity check.
    pub store_corrupt: Counter,
    /// Rooms refused now because their stored data failed its integrity check.
    pub store_corrupt_rooms: Gauge,
    /// Seconds to load a room from the store.
    pub room_load_seconds: Histogram,
    /// Snapshots written (compactions).
    pub compactions: Counter,
    /// `/sync` updates refused or undone: a viewer's, one writing as another's Yjs client,
    /// one breaking the document's rules.
    pub refused_updates: Counter,
    /// Requests and upgrades refused before any state was sent: no or a bad token, no access
    /// to the room, a foreign Origin.
    pub auth_refusals: Counter,
    /// Inputs refused by a limit, by limit (`doc_size`, `message_rate`, `room_connections`,
    /// `user_connections`, `new_rooms_ip`, `new_rooms_user`, `awareness_states`,
    /// `awareness_bytes`, `persist_share`, …).
    pub limits: Family<LimitLabels, Counter>,
    /// Presence changes held back and sent as one `present` message (coalesced bursts).
    pub presence_coalesced: Counter,
    /// Users holding WebSocket connections (the per-user counts the edge keeps).
    pub users_connected: Gauge,
    /// Room objects in memory, loaded or not yet dropped after unloading: equal to
    /// `rooms_loaded` at rest, or something holds an unloaded room (a leak).
    pub rooms_alive: Gauge,
    /// Open TCP connections (plain HTTP and WebSocket), as counted against
    /// `--max-connections`.
    pub tcp_connections: Gauge,
    /// Connections refused at accept, by limit (`max_connections`, `max_connections_per_ip`).
    pub connections_refused: Family<ReasonLabels, Counter>,
    /// Failed `accept` calls (out of file descriptors, typically).
    pub accept_errors: Counter,
    /// HTTP connections and requests cut off, by limit (`header_timeout`, `body_timeout`,
    /// `body_too_large`).
    pub http_refused: Family<ReasonLabels, Counter>,
    /// Keep-alive pings sent to WebSocket clients.
    pub ws_pings: Counter,
    /// Frames and updates the decode guard refused before yrs read them, by rule.
    pub decode_refusals: Family<DecodeLabels, Counter>,
    /// Chat robot and webhook messages delivered (a 2xx from the receiver).
    pub notify_sent: Counter,
    /// Delivery attempts that failed (retried, dead-lettered or stopping the target).
    pub notify_failed: Counter,
    /// Deliveries given up and kept in their target's dead-letter list.
    pub notify_dead_lettered: Counter,
    /// Notices refused because the notice queue was full (the newest is refused).
    pub notify_dropped: Counter,
    /// Deliveries waiting: queued notices and pending deliveries.
    pub notify_queue_depth: Gauge,
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("okrhub");
        let latency = || Histogram::new(exponential_buckets(0.000_1, 2.0, 16));
        Metrics {
            connections: add(
                &mut r,
                "connections",
                "Open WebSocket connections",
                Gauge::default(),
            ),
            rooms_loaded: add(
                &mut r,
                "rooms_loaded",
                "Rooms held in memory",
                Gauge::default(),
            ),
            frames_in: add(
                &mut r,
                "frames_in",
                "WebSocket frames received",
                Counter::default(),
            ),
            frames_out: add(
                &mut r,
                "frames_out",
                "WebSocket frames sent",
                Counter::default(),
            ),
            bytes_in: add(
                &mut r,
                "bytes_in",
                "Payload bytes received",
                Counter::default(),
            ),
            bytes_out: add(
                &mut r,
                "bytes_out",
                "Payload bytes sent",
                Counter::default(),
            ),
            slow_consumer_disconnects: add(
                &mut r,
                "slow_consumer_disconnects",
                "Connections closed because their outgoing queue overflowed",
                Counter::default(),
            ),
            closes: add(
                &mut r,
                "closes",
                "Connections closed by the server, by reason",
                Family::default(),
            ),
            store_append_seconds: add(
                &mut r,
                "store_append_seconds",
                "Duration of one store append (one batch of updates)",
                latency(),
            ),
            store_appended: add(
                &mut r,
                "store_appended",
                "Updates written to the store's log",
                Counter::default(),
            ),
            store_errors: add(
                &mut r,
                "store_errors",
                "Failed store calls",
                Counter::default(),
            ),
            persist_queue: add(
                &mut r,
                "persist_queue",
                "Updates waiting to be written to the store",
                Gauge::default(),
            ),
            persist_queue_bytes: add(
                &mut r,
                "persist_queue_bytes",
                "Bytes of the updates waiting to be written to the store",
                Gauge::default(),
            ),
            store_up: add(
                &mut r,
                "store_up",
                "1 while the store's writes and health probes succeed, 0 while either fails",
                Gauge::default(),
            ),
            store_refused: add(
                &mut r,
                "store_refused",
                "Writes refused because the persist buffer was full",
                Counter::default(),
            ),
            store_writebacks: add(
                &mut r,
                "store_writebacks",
                "Loaded rooms written back after the store came back empty",
                Counter::default(),
            ),
            relay_lag_entries: add(
                &mut r,
                "relay_lag_entries",
                "Shared log entries numbered but not applied here yet, over all loaded rooms",
                Gauge::default(),
            ),
            relay_lag_ms: add(
                &mut r,
                "relay_lag_ms",
                "How long this node has been behind the shared log's head (ms; 0 when up to date)",
                Gauge::default(),
            ),
            relayed: add(
                &mut r,
                "relayed",
                "Other nodes' updates and awareness changes applied here",
                Counter::default(),
            ),
            relay_errors: add(
                &mut r,
                "relay_errors",
                "Shared log news that could not be applied, and failed reads or head checks",
                Counter::default(),
            ),
            relay_pending: add(
                &mut r,
                "relay_pending",
                "Updates applied here that the shared log has not numbered yet",
                Gauge::default(),
            ),
            compaction_leases: add(
                &mut r,
                "compaction_leases",
                "Room compaction leases this node took",
                Counter::default(),
            ),
            compaction_lease_busy: add(
                &mut r,
                "compaction_lease_busy",
                "Compactions skipped because another node held the room's lease",
                Counter::default(),
            ),
            ticks_written: add(
                &mut r,
                "ticks_written",
                "Tick entries this node wrote to the shared log (it held the rooms' clock leases)",
                Counter::default(),
            ),
            store_corrupt: add(
                &mut r,
                "store_corrupt",
                "Room loads that found a stored value failing its integrity check (checksum), refused",
                Counter::default(),
            ),
            store_corrupt_rooms: add(
                &mut r,
                "store_corrupt_rooms",
                "Rooms refused now because their stored data failed its integrity check",
                Gauge::default(),
            ),
            room_load_seconds: add(
                &mut r,
                "room_load_seconds",
                "Duration of loading a room from the store",
                latency(),
            ),
            compactions: add(
                &mut r,
                "compactions",
                "Snapshots written to the store",
                Counter::default(),
            ),
            refused_updates: add(
                &mut r,
                "refused_updates",
                "Yjs updates refused or undone (role, foreign client id, document rules)",
                Counter::default(),
            ),
            auth_refusals: add(
                &mut r,
                "auth_refusals",
                "Requests refused before any state was sent (token, access, origin)",
                Counter::default(),
            ),
            limits: add(
                &mut r,
                "limit_refusals",
                "Inputs refused by a limit, by limit",
                Family::default(),
            ),
            presence_coalesced: add(
                &mut r,
                "presence_coalesced",
                "Presence changes held back in a burst and sent as one present message",
                Counter::default(),
            ),
            users_connected: add(
                &mut r,
                "users_connected",
                "Users holding WebSocket connections (counted per user at the edge)",
                Gauge::default(),
            ),
            rooms_alive: add(
                &mut r,
                "rooms_alive",
                "Room objects in memory (loaded, or unloaded and not yet freed)",
                Gauge::default(),
            ),
            tcp_connections: add(
                &mut r,
                "tcp_connections",
                "Open TCP connections (HTTP and WebSocket), as counted against --max-connections",
                Gauge::default(),
            ),
            connections_refused: add(
                &mut r,
                "connections_refused",
                "Connections refused at accept, by limit",
                Family::default(),
            ),
            accept_errors: add(
                &mut r,
                "accept_errors",
                "Failed accept calls (out of file descriptors, typically)",
                Counter::default(),
            ),
            http_refused: add(
                &mut r,
                "http_refused",
                "HTTP connections and requests cut off, by limit",
                Family::default(),
            ),
            ws_pings: add(
                &mut r,
                "ws_pings",
                "Keep-alive pings sent to WebSocket clients",
                Counter::default(),
            ),
            decode_refusals: add(
                &mut r,
                "decode_refusals",
                "Frames and updates refused before decoding: a count beyond its bytes, truncated, nested too deep, invalid",
                Family::default(),
            ),
            notify_sent: add(
                &mut r,
                "notify_sent",
                "Chat robot and webhook messages delivered",
                Counter::default(),
            ),
            notify_failed: add(
                &mut r,
                "notify_failed",
                "Chat robot and webhook delivery attempts that failed",
                Counter::default(),
            ),
            notify_dead_lettered: add(
                &mut r,
                "notify_dead_lettered",
                "Chat robot and webhook deliveries given up (dead letters)",
                Counter::default(),
            ),
            notify_dropped: add(
                &mut r,
                "notify_dropped",
                "Notices refused because the notice queue was full",
                Counter::default(),
            ),
            notify_queue_depth: add(
                &mut r,
                "notify_queue_depth",
                "Chat robot and webhook deliveries waiting (queued notices and pending deliveries)",
                Gauge::default(),
            ),
            registry: r,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// Counts an input refused by `limit`.
    pub fn count_limit(&self, limit: &'static str) {
        self.limits.get_or_create(&LimitLabels { limit }).inc();
    }

    /// Counts a connection refused at accept by the limit `reason`.
    pub fn count_connection_refused(&self, reason: &'static str) {
        (self.connections_refused)
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Counts an HTTP connection or request cut off by the limit `reason`.
    pub fn count_http_refused(&self, reason: &'static str) {
        self.http_refused
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Counts a refusal of the decode guard.
    pub fn count_decode_refusal(&self, rule: &'static str) {
        self.decode_refusals
            .get_or_create(&DecodeLabels { rule })
            .inc();
    }

    /// Counts a server-side close.
    pub fn count_close(&self, reason: &'static str) {
        self.closes.get_or_create(&CloseLabels { reason }).inc();
    }
}

/// Registers `metric` under `name` and returns it (metrics are shared handles).
fn add<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
