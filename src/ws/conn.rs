//! Every TCP connection the server holds, plain HTTP or WebSocket: the caps counted at accept
//! (`--max-connections` in all, `--max-connections-per-ip` from one address), the [`Slot`]
//! each admitted connection holds until its socket is closed, and the WebSocket keep-alive
//! ([`super::keepalive`]).
//!
//! # A slot follows the socket
//!
//! [`Connections::admit`] counts a connection as [`crate::server`] accepts it and returns its
//! [`Slot`] (an `Arc`); the count is given back when the last handle drops. The accept loop's
//! task holds one for as long as hyper serves the connection, and hands each request a handle
//! of its own (an extension, taken by [`super::WsUpgrade`]). An upgraded WebSocket outlives
//! hyper's connection future: its handle travels in [`super::Upgraded`] into the session,
//! which drops it just before the socket, so the count follows the socket whichever way it
//! ends.
//!
//! # Refusing
//!
//! Over a cap the connection is still accepted — leaving it in the kernel's backlog would keep
//! the client waiting and the listener full — and answered at once with a ready-made `503`
//! (`Retry-After`, the standard error body, `Connection: close`), written without waiting and
//! followed by a close. A refusal costs a file descriptor for a few microseconds, so the
//! default total cap leaves headroom below `RLIMIT_NOFILE` for it (see
//! [`default_max_connections`]). Refusals are counted (`okrhub_connections_refused_total`) and
//! logged at most once per [`WARN_EVERY`] per limit, with how many there were since.
//!
//! # Addresses
//!
//! Per-IP counting keys an IPv4 address (or an IPv4-mapped IPv6 one) by itself and an IPv6
//! address by its /64 prefix: one host gets a whole /64, so counting single IPv6 addresses
//! would cap nothing. Behind a reverse proxy every connection comes from the proxy's address:
//! there, set `--max-connections-per-ip 0` and let the proxy limit clients.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;

use super::keepalive::{now_ms, KeepAlive, KeepAliveConfig};
use crate::metrics::Metrics;
use crate::protocol::live::{ErrorBody, ErrorResponse, ProtocolErrorCode};

/// File descriptors the default `--max-connections` leaves for everything else: the store's
/// files, Redis connections, the listener, the runtime's epoll and event fds, stdio, a JWKS
/// file being re-read, and accepting a connection only to refuse it.
pub const FD_RESERVE: u64 = 64;

/// The default `--max-connections` under a `RLIMIT_NOFILE` (soft) limit of `nofile`:
/// [`FD_RESERVE`] below it, or half of it when it is tiny.
pub fn default_max_connections(nofile: u64) -> usize {
    let reserve = FD_RESERVE.min(nofile / 2);
    usize::try_from(nofile - reserve).unwrap_or(usize::MAX)
}

/// How often a refusal (or an `accept` error) is logged, at most, per kind.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// What the client is told to wait before it tries again.
const RETRY_AFTER_S: u32 = 5;

/// `--max-connections` and `--max-connections-per-ip`; 0 is no cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_ip: usize,
}

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `--max-connections` are open.
    MaxConnections,
    /// `--max-connections-per-ip` are open from this address (or IPv6 /64).
    MaxPerIp,
}

impl Refused {
    /// The `reason` of the error body and the label of `okrhub_connections_refused_total`.
    pub fn label(self) -> &'static str {
        match self {
            Refused::MaxConnections => "max_connections",
            Refused::MaxPerIp => "max_connections_per_ip",
        }
    }

    fn message(self, limits: Limits) -> String {
        match self {
            Refused::MaxConnections => format!(
                "the server holds its maximum of {} connections; retry later",
                limits.max_connections
            ),
            Refused::MaxPerIp => format!(
                "{} connections are open from this address, the most allowed; close one or \
                 retry later",
                limits.max_per_ip
            ),
        }
    }

    /// The whole HTTP response: status line, headers, the standard error body.
    fn response(self, limits: Limits) -> Bytes {
        let body = ErrorResponse {
            error: ErrorBody::protocol(ProtocolErrorCode::Unavailable, self.message(limits))
                .because(self.label()),
        };
        // Serializing these plain structs cannot fail.
        let body = serde_json::to_string(&body).unwrap_or_default();
        Bytes::from(format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             retry-after: {RETRY_AFTER_S}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        ))
    }
}

/// Logs something at most once per [`WARN_EVERY`], saying how often it happened meanwhile.
pub struct Throttle {
    next_ms: AtomicU64,
    count: AtomicU64,
}

impl Throttle {
    pub const fn new() -> Self {
        Throttle {
            next_ms: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Counts one occurrence at `now` (ms); `Some(n)` when it is time to log, `n` being the
    /// occurrences since the last log, this one included.
    pub fn hit(&self, now: u64) -> Option<u64> {
        self.count.fetch_add(1, Ordering::Relaxed);
        let next = self.next_ms.load(Ordering::Relaxed);
        if now < next {
            return None;
        }
        let every = WARN_EVERY.as_millis() as u64;
        (self.next_ms)
            .compare_exchange(next, now + every, Ordering::Relaxed, Ordering::Relaxed)
            .ok()
            .map(|_| self.count.swap(0, Ordering::Relaxed))
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new()
    }
}

struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, u32>,
}

/// Every connection of one server: the counts, the keep-alive of its WebSockets.
pub struct Connections {
    limits: Limits,
    counts: Mutex<Counts>,
    keepalive: KeepAlive,
    metrics: Arc<Metrics>,
    responses: [Bytes; 2],
    warned: [Throttle; 2],
}

/// One admitted connection: it counts against the caps until the last handle drops.
pub struct Slot {
    connections: Arc<Connections>,
    ip: IpAddr,
}

impl Slot {
    /// The server's connections (for the keep-alive of a WebSocket).
    pub fn connections(&self) -> &Connections {
        &self.connections
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connections.release(self.ip);
    }
}

/// The per-IP key: an IPv4 address, or an IPv6 address's /64.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        },
    }
}

impl Connections {
    pub fn new(limits: Limits, keepalive: KeepAliveConfig, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Connections {
            limits,
            counts: Mutex::new(Counts {
                total: 0,
                per_ip: HashMap::new(),
            }),
            keepalive: KeepAlive::new(keepalive, metrics.clone()),
            metrics,
            responses: [
                Refused::MaxConnections.response(limits),
                Refused::MaxPerIp.response(limits),
            ],
            warned: [Throttle::new(), Throttle::new()],
        })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn keepalive(&self) -> &KeepAlive {
        &self.keepalive
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // Nothing panics while holding this lock; if something did, the counts are still valid.
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a connection from `ip`, or says which cap it would exceed (counted and, at most
    /// once per [`WARN_EVERY`], logged).
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Arc<Slot>, Refused> {
        let ip = ip_key(ip);
        let Limits {
            max_connections,
            max_per_ip,
        } = self.limits;
        let refused = {
            let mut counts = self.lock();
            if max_connections > 0 && counts.total >= max_connections {
                Some(Refused::MaxConnections)
            } else if max_per_ip > 0
                && counts.per_ip.get(&ip).copied().unwrap_or(0) as usize >= max_per_ip
            {
                Some(Refused::MaxPerIp)
            } else {
                counts.total += 1;
                if max_per_ip > 0 {
                    *counts.per_ip.entry(ip).or_insert(0) += 1;
                }
                None
            }
        };
        match refused {
            None => {
                self.metrics.tcp_connections.inc();
                Ok(Arc::new(Slot {
                    connections: self.clone(),
                    ip,
                }))
            }
            Some(why) => {
                self.metrics.count_connection_refused(why.label());
                if let Some(n) = self.warned[why as usize].hit(now_ms()) {
                    match why {
                        Refused::MaxConnections => tracing::warn!(
                            refused = n,
                            max_connections = max_connections,
                            "connection cap reached: refusing new connections with 503 \
                             (count since the last warning)"
                        ),
                        Refused::MaxPerIp => tracing::warn!(
                            refused = n,
                            %ip,
                            max_connections_per_ip = max_per_ip,
                            "per-address connection cap reached: refusing new connections \
                             from it with 503 (count since the last warning, all addresses)"
                        ),
                    }
                }
                Err(why)
            }
        }
    }

    /// The ready-made answer to a refused connection.
    pub fn refusal(&self, why: Refused) -> &Bytes {
        &self.responses[why as usize]
    }

    fn release(&self, ip: IpAddr) {
        let mut counts = self.lock();
        counts.total = counts.total.saturating_sub(1);
        if self.limits.max_per_ip > 0 {
            if let Some(n) = counts.per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    counts.per_ip.remove(&ip);
                }
            }
        }
        drop(counts);
        self.metrics.tcp_connections.dec();
    }

    /// Connections counted now.
    pub fn open(&self) -> usize {
        self.lock().total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connections(max_connections: usize, max_per_ip: usize) -> Arc<Connections> {
        Connections::new(
            Limits {
                max_connections,
                max_per_ip,
            },
            KeepAliveConfig::default(),
            Arc::new(Metrics::new()),
        )
    }

    #[test]
    fn the_caps_count_at_admit_and_give_back_on_the_last_drop() {
        let c = connections(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = c.admit(a).unwrap();
        let a2 = c.admit(a).unwrap();
        assert_eq!(c.admit(a).err(), Some(Refused::MaxPerIp));
        let b1 = c.admit(b).unwrap();
        assert_eq!(c.admit(b).err(), Some(Refused::MaxConnections));
        assert_eq!(c.open(), 3);
        // A second handle (an upgraded socket's) keeps the slot.
        let a1_session = a1.clone();
        drop(a1);
        assert_eq!(c.admit(b).err(), Some(Refused::MaxConnections));
        drop(a1_session);
        let b2 = c.admit(b).unwrap();
        assert_eq!(c.metrics.tcp_connections.get(), 3);
        drop((a2, b1, b2));
        assert_eq!(c.open(), 0);
        assert!(c.lock().per_ip.is_empty(), "no entry is left behind");
        assert_eq!(c.metrics.tcp_connections.get(), 0);
    }

    #[test]
    fn zero_is_no_cap() {
        let c = connections(0, 0);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let slots: Vec<_> = (0..1000).map(|_| c.admit(ip).unwrap()).collect();
        assert_eq!(c.open(), 1000);
        assert!(
            c.lock().per_ip.is_empty(),
            "no per-IP bookkeeping without a cap"
        );
        drop(slots);
        assert_eq!(c.open(), 0);
    }

    #[test]
    fn ipv6_is_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let c = connections(0, 1);
        let _x = c.admit("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert_eq!(
            c.admit("2001:db8:1:2:ffff::9".parse().unwrap()).err(),
            Some(Refused::MaxPerIp),
            "same /64"
        );
        let _y = c.admit("2001:db8:1:3::1".parse().unwrap()).unwrap();
        let _z = c.admit("192.0.2.7".parse().unwrap()).unwrap();
        assert_eq!(
            c.admit("::ffff:192.0.2.7".parse().unwrap()).err(),
            Some(Refused::MaxPerIp)
        );
    }

    #[test]
    fn the_refusal_is_a_complete_503_with_the_error_body() {
        let c = connections(1, 0);
        let text = String::from_utf8(c.refusal(Refused::MaxConnections).to_vec()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        assert!(head.contains("retry-after: 5") && head.contains("connection: close"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "unavailable");
        assert_eq!(json["error"]["reason"], "max_connections");
    }

    #[test]
    fn a_burst_is_logged_once_with_its_count() {
        let t = Throttle::new();
        assert_eq!(t.hit(1_000), Some(1));
        assert_eq!(t.hit(1_001), None);
        assert_eq!(t.hit(5_000), None);
        let later = 1_000 + WARN_EVERY.as_millis() as u64;
        assert_eq!(t.hit(later), Some(3), "the two in between and this one");
        assert_eq!(t.hit(later + 1), None);
    }

    #[test]
    fn the_default_cap_leaves_a_reserve_below_the_fd_limit() {
        assert_eq!(default_max_connections(1024), 960);
        assert_eq!(default_max_connections(20_000), 19_936);
        assert_eq!(default_max_connections(64), 32);
    }
}
