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
use prometheus_client::registry::Registry;

/// Labels of [`Metrics::closes`]: why the server closed a connection.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloseLabels {
    pub reason: &'static str,
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
    /// Seconds to load a room from the store.
    pub room_load_seconds: Histogram,
    /// Snapshots written (compactions).
    pub compactions: Counter,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("okrhub");
        let m = Metrics {
            connections: Gauge::default(),
            rooms_loaded: Gauge::default(),
            frames_in: Counter::default(),
            frames_out: Counter::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            slow_consumer_disconnects: Counter::default(),
            closes: Family::default(),
            store_append_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
            store_appended: Counter::default(),
            store_errors: Counter::default(),
            persist_queue: Gauge::default(),
            room_load_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
            compactions: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "connections",
            "Open WebSocket connections",
            m.connections.clone(),
        );
        registry.register(
            "rooms_loaded",
            "Rooms held in memory",
            m.rooms_loaded.clone(),
        );
        registry.register(
            "frames_in",
            "WebSocket frames received",
            m.frames_in.clone(),
        );
        registry.register("frames_out", "WebSocket frames sent", m.frames_out.clone());
        registry.register("bytes_in", "Payload bytes received", m.bytes_in.clone());
        registry.register("bytes_out", "Payload bytes sent", m.bytes_out.clone());
        registry.register(
            "slow_consumer_disconnects",
            "Connections closed because their outgoing queue overflowed",
            m.slow_consumer_disconnects.clone(),
        );
        registry.register(
            "closes",
            "Connections closed by the server, by reason",
            m.closes.clone(),
        );
        registry.register(
            "store_append_seconds",
            "Duration of one store append (one batch of updates)",
            m.store_append_seconds.clone(),
        );
        registry.register(
            "store_appended",
            "Updates written to the store's log",
            m.store_appended.clone(),
        );
        registry.register("store_errors", "Failed store calls", m.store_errors.clone());
        registry.register(
            "persist_queue",
            "Updates waiting to be written to the store",
            m.persist_queue.clone(),
        );
        registry.register(
            "room_load_seconds",
            "Duration of loading a room from the store",
            m.room_load_seconds.clone(),
        );
        registry.register(
            "compactions",
            "Snapshots written to the store",
            m.compactions.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// Counts a server-side close.
    pub fn count_close(&self, reason: &'static str) {
        self.closes.get_or_create(&CloseLabels { reason }).inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
