//! WebSocket keep-alive: one sweep over every open WebSocket per `--ws-ping-interval` pings
//! the quiet ones and closes the silent ones.
//!
//! A connection notes when bytes last arrived from its client ([`Outbox::heard`], one relaxed
//! atomic store per socket read). Every ping interval, one task ([`KeepAlive::run`]) looks at
//! every registered connection:
//!
//! - nothing heard for `--ws-idle-timeout` or more: closed with 1001 `idle timeout` (the peer
//!   is gone, or its network path is dead; the close frame is sent in case it is not);
//! - nothing heard for half the ping interval or more: sent a ping (written at once by the
//!   sweep, like any control frame: [`Outbox::ping`]). A live client answers with a pong, which
//!   counts as hearing from it. Browsers and the stock y-websocket clients do so by themselves.
//!
//! A silent connection is therefore closed between `idle_timeout` and `idle_timeout +
//! ping_interval` after the last byte it sent, and never before.
//!
//! # Why a sweep, not a timer per connection
//!
//! A `tokio::time::Sleep` in each connection's task would add its timer entry (~100 bytes) to
//! every idle connection's future and wake every task once per interval. The sweep costs a
//! connection one slot in a slab (16 bytes) and one atomic in its outbox, wakes no task (the
//! ping is written by the sweep, the pong is read when the task wakes for it anyway), and
//! takes the slab's lock only long enough to decide (the pings and closes happen after). See
//! `docs/DECISIONS.md` ("Transport limits").

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use slab::Slab;
use tokio_util::sync::CancellationToken;

use super::Outbox;
use crate::metrics::Metrics;
use crate::protocol::CloseReason;

/// When the keep-alive clock started (the first time anything read it).
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The keep-alive clock: milliseconds since the process first read it. Monotonic.
pub fn now_ms() -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    Instant::now().saturating_duration_since(epoch).as_millis() as u64
}

/// `--ws-ping-interval` and `--ws-idle-timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAliveConfig {
    /// How often the sweep runs (and pings quiet connections); zero turns keep-alive off.
    pub ping_interval: Duration,
    /// Silence after which a connection is closed; zero never closes one for silence.
    pub idle_timeout: Duration,
}

impl Default for KeepAliveConfig {
    fn default() -> Self {
        KeepAliveConfig {
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(75),
        }
    }
}

impl KeepAliveConfig {
    /// Refuses an idle timeout that a client answering every ping could not meet.
    pub fn validate(&self) -> Result<(), String> {
        if !self.ping_interval.is_zero()
            && !self.idle_timeout.is_zero()
            && self.idle_timeout <= self.ping_interval
        {
            return Err(format!(
                "--ws-idle-timeout ({}) must be longer than --ws-ping-interval ({}): a client \
                 is heard from at best once per ping",
                humantime::format_duration(self.idle_timeout),
                humantime::format_duration(self.ping_interval)
            ));
        }
        Ok(())
    }
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub pinged: usize,
    pub closed: usize,
}

/// The open WebSockets, for the sweep.
pub struct KeepAlive {
    config: KeepAliveConfig,
    sockets: Mutex<Slab<Arc<Outbox>>>,
    metrics: Arc<Metrics>,
}

impl KeepAlive {
    pub fn new(config: KeepAliveConfig, metrics: Arc<Metrics>) -> Self {
        KeepAlive {
            config,
            sockets: Mutex::new(Slab::new()),
            metrics,
        }
    }

    pub fn config(&self) -> KeepAliveConfig {
        self.config
    }

    fn lock(&self) -> MutexGuard<'_, Slab<Arc<Outbox>>> {
        // Nothing panics while holding this lock; if something did, the slab is still valid.
        self.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Watches a connection from now on (it counts as just heard from); the key is for
    /// [`KeepAlive::unregister`]. `None` when keep-alive is off.
    pub fn register(&self, outbox: &Arc<Outbox>) -> Option<usize> {
        if self.config.ping_interval.is_zero() {
            return None;
        }
        outbox.heard(now_ms());
        Some(self.lock().insert(outbox.clone()))
    }

    /// Stops watching a connection (it ended).
    pub fn unregister(&self, key: usize) {
        let removed = self.lock().try_remove(key);
        debug_assert!(removed.is_some(), "keep-alive key {key} registered once");
    }

    /// Connections watched.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One sweep at `now` (keep-alive clock, ms): closes the connections silent for the idle
    /// timeout and pings those quiet for half a ping interval. `due` is scratch space, kept
    /// between sweeps so that a sweep allocates nothing once it has seen the largest set.
    pub fn sweep(&self, now: u64, due: &mut Vec<(Arc<Outbox>, bool)>) -> Swept {
        let idle = self.config.idle_timeout.as_millis() as u64;
        let quiet = (self.config.ping_interval / 2).as_millis() as u64;
        due.clear();
        {
            let sockets = self.lock();
            for (_, outbox) in sockets.iter() {
                let silent = now.saturating_sub(outbox.last_heard());
                // Both stamps are whole milliseconds, floored: `silent` may read 1 ms more than
                // has really passed, so only more than the timeout is surely the timeout.
                if idle > 0 && silent > idle {
                    due.push((outbox.clone(), true));
                } else if silent >= quiet {
                    due.push((outbox.clone(), false));
                }
            }
        }
        let mut swept = Swept::default();
        for (outbox, close) in due.drain(..) {
            if close {
                outbox.close(CloseReason::idle_timeout(self.config.idle_timeout));
                swept.closed += 1;
            } else if outbox.ping(&self.metrics) {
                self.metrics.ws_pings.inc();
                swept.pinged += 1;
            }
        }
        swept
    }

    /// Sweeps every ping interval until `shutdown` (nothing to do when keep-alive is off).
    pub async fn run(&self, shutdown: CancellationToken) {
        if self.config.ping_interval.is_zero() {
            return;
        }
        let mut ticks = tokio::time::interval(self.config.ping_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await; // the first tick is immediate
        let mut due = Vec::new();
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            let swept = self.sweep(now_ms(), &mut due);
            if swept.closed > 0 {
                tracing::debug!(
                    closed = swept.closed,
                    pinged = swept.pinged,
                    "keep-alive sweep"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::Opcode;

    fn keepalive(ping_s: u64, idle_s: u64) -> KeepAlive {
        KeepAlive::new(
            KeepAliveConfig {
                ping_interval: Duration::from_secs(ping_s),
                idle_timeout: Duration::from_secs(idle_s),
            },
            Arc::new(Metrics::new()),
        )
    }

    #[test]
    fn quiet_connections_are_pinged_and_silent_ones_closed_never_before_the_timeout() {
        let ka = keepalive(30, 75);
        let (a, b) = (
            Arc::new(Outbox::new(8, Opcode::Binary)),
            Arc::new(Outbox::new(8, Opcode::Binary)),
        );
        let (ka_a, ka_b) = (ka.register(&a).unwrap(), ka.register(&b).unwrap());
        let t0 = 1_000_000;
        a.heard(t0);
        b.heard(t0);
        let mut due = Vec::new();
        // Heard 10 s ago: under half an interval, nothing to do.
        assert_eq!(ka.sweep(t0 + 10_000, &mut due), Swept::default());
        // b answers; a stays silent.
        b.heard(t0 + 40_000);
        let s = ka.sweep(t0 + 45_000, &mut due);
        assert_eq!((s.pinged, s.closed), (1, 0), "a pinged, b heard 5 s ago");
        assert_eq!(a.len(), 1, "the ping waits in a's (detached) outbox");
        // Exactly the timeout on the millisecond clock (which may be up to 1 ms less in real
        // time): still open.
        let s = ka.sweep(t0 + 75_000, &mut due);
        assert_eq!(s.closed, 0);
        assert!(!a.is_closed());
        let s = ka.sweep(t0 + 75_001, &mut due);
        assert_eq!(s.closed, 1);
        assert_eq!(a.reason().unwrap().code(), 1001);
        assert!(a.reason().unwrap().text.starts_with("idle timeout"));
        assert!(!b.is_closed());
        ka.unregister(ka_a);
        ka.unregister(ka_b);
        assert!(ka.is_empty());
    }

    #[test]
    fn off_registers_nothing_and_a_too_short_idle_timeout_is_refused() {
        let off = keepalive(0, 75);
        assert_eq!(off.register(&Arc::new(Outbox::new(8, Opcode::Text))), None);
        let bad = KeepAliveConfig {
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
        };
        assert!(bad.validate().unwrap_err().contains("--ws-idle-timeout"));
        assert!(KeepAliveConfig::default().validate().is_ok());
    }
}
