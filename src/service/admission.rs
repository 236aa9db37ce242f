//! Admission at the edge: how much one client may take of the server before any room is
//! touched — WebSocket connections per user, and rooms loaded into memory per client address
//! and per user a minute. A refusal is cheap (a counter and a hash lookup) and says which
//! limit it was.
//!
//! Connections are counted with a [`ConnectionPermit`] that the connection holds for its life;
//! a user's entry goes away with their last connection. The per-minute buckets are governor's
//! keyed GCRA limiters; [`Admission::sweep`] forgets the keys whose buckets are full again, so
//! that neither map grows with the number of clients ever seen.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::hub::Hub;
use crate::identity::UserId;
use crate::metrics::Metrics;
use crate::room::Sink;
use crate::room_id::RoomId;

/// The edge's limits (0: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// WebSocket connections one user may hold at once.
    pub connections_per_user: usize,
    /// Rooms one client address, and one user, may load a minute.
    pub new_rooms_per_minute: u32,
}

/// Which limit refused a request: its stable `reason` and a message for humans.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Limited {
    pub reason: &'static str,
    pub message: String,
}

type Keyed<K, C> = RateLimiter<K, DashMapStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The edge's counters. Shared by every request (`Arc`).
pub struct Admission<C: Clock = DefaultClock> {
    limits: AdmissionLimits,
    connections: Mutex<HashMap<UserId, usize>>,
    rooms_by_ip: Option<Keyed<IpAddr, C>>,
    rooms_by_user: Option<Keyed<UserId, C>>,
    metrics: Arc<Metrics>,
}

impl Admission {
    pub fn new(limits: AdmissionLimits, metrics: Arc<Metrics>) -> Self {
        Self::with_clock(limits, metrics, &DefaultClock::default())
    }
}

impl<C: Clock + Clone> Admission<C> {
    /// With `clock` for the per-minute buckets (tests move a fake one).
    pub fn with_clock(limits: AdmissionLimits, metrics: Arc<Metrics>, clock: &C) -> Self {
        let per_minute = NonZeroU32::new(limits.new_rooms_per_minute)
            .map(|n| Quota::per_minute(n).allow_burst(n));
        Admission {
            limits,
            connections: Mutex::new(HashMap::new()),
            rooms_by_ip: per_minute.map(|q| RateLimiter::dashmap_with_clock(q, clock.clone())),
            rooms_by_user: per_minute.map(|q| RateLimiter::dashmap_with_clock(q, clock.clone())),
            metrics,
        }
    }

    fn refuse(&self, limit: &'static str, message: String) -> Limited {
        self.metrics.count_limit(limit);
        tracing::info!(limit, %message, "refused by a limit");
        Limited {
            reason: limit,
            message,
        }
    }

    /// Counts one more WebSocket connection of `user` (none: an open server's anonymous
    /// client, not counted here); refused when the user holds as many as they may.
    pub fn connect(
        self: &Arc<Self>,
        user: Option<&UserId>,
    ) -> Result<ConnectionPermit<C>, Limited> {
        let limit = self.limits.connections_per_user;
        let Some(user) = user.filter(|_| limit > 0) else {
            return Ok(ConnectionPermit {
                admission: self.clone(),
                user: None,
            });
        };
        let mut connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        let held = connections.entry(user.clone()).or_insert_with(|| {
            self.metrics.users_connected.inc();
            0
        });
        if *held >= limit {
            drop(connections);
            return Err(self.refuse(
                "user_connections",
                format!("{user} holds {limit} connections already, the most one user may; close one or retry later"),
            ));
        }
        *held += 1;
        Ok(ConnectionPermit {
            admission: self.clone(),
            user: Some(user.clone()),
        })
    }

    /// Charges the loading of a room into memory to the client's address and user: refused
    /// when either has loaded as many rooms this minute as it may. Call it only for a room
    /// that is not loaded (joining a loaded room costs nothing).
    pub fn open_room(&self, ip: Option<IpAddr>, user: Option<&UserId>) -> Result<(), Limited> {
        let n = self.limits.new_rooms_per_minute;
        if let (Some(bucket), Some(ip)) = (&self.rooms_by_ip, ip) {
            if bucket.check_key(&ip).is_err() {
                return Err(self.refuse(
                    "new_rooms_ip",
                    format!("{ip} opened {n} rooms in the last minute, the most one address may; retry later"),
                ));
            }
        }
        if let (Some(bucket), Some(user)) = (&self.rooms_by_user, user) {
            if bucket.check_key(user).is_err() {
                return Err(self.refuse(
                    "new_rooms_user",
                    format!("{user} opened {n} rooms in the last minute, the most one user may; retry later"),
                ));
            }
        }
        Ok(())
    }

    /// [`Admission::open_room`] for room `id` of `hub` if it is not loaded yet.
    pub fn enter<S: Sink>(
        &self,
        hub: &Hub<S>,
        id: &RoomId,
        ip: Option<IpAddr>,
        user: Option<&UserId>,
    ) -> Result<(), Limited> {
        if hub.is_loaded(id) {
            return Ok(());
        }
        self.open_room(ip, user)
    }

    /// Forgets the clients whose per-minute buckets are full again (run every minute or so).
    pub fn sweep(&self) {
        fn sweep_one<K: Hash + Eq + Clone, C: Clock>(bucket: &Option<Keyed<K, C>>) {
            if let Some(b) = bucket {
                b.retain_recent();
                b.shrink_to_fit();
            }
        }
        sweep_one(&self.rooms_by_ip);
        sweep_one(&self.rooms_by_user);
    }

    /// What the edge holds: users with connections, and addresses and users with per-minute
    /// buckets (for tests and the soak: it must come back to nothing).
    pub fn held(&self) -> (usize, usize, usize) {
        let users = self
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len();
        let ips = self.rooms_by_ip.as_ref().map_or(0, |b| b.len());
        let room_users = self.rooms_by_user.as_ref().map_or(0, |b| b.len());
        (users, ips, room_users)
    }
}

/// One counted connection of a user: held for the connection's life, counted out on drop.
pub struct ConnectionPermit<C: Clock = DefaultClock> {
    admission: Arc<Admission<C>>,
    user: Option<UserId>,
}

impl<C: Clock> Drop for ConnectionPermit<C> {
    fn drop(&mut self) {
        let Some(user) = self.user.take() else {
            return;
        };
        let mut connections = self
            .admission
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(held) = connections.get_mut(&user) {
            *held -= 1;
            if *held == 0 {
                connections.remove(&user);
                self.admission.metrics.users_connected.dec();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;
    use std::time::Duration;

    fn admission(
        per_user: usize,
        per_minute: u32,
    ) -> (Arc<Admission<FakeRelativeClock>>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let limits = AdmissionLimits {
            connections_per_user: per_user,
            new_rooms_per_minute: per_minute,
        };
        let a = Admission::with_clock(limits, Arc::new(Metrics::new()), &clock);
        (Arc::new(a), clock)
    }

    fn user(u: &str) -> UserId {
        UserId::parse(u).unwrap()
    }

    #[test]
    fn a_user_holds_at_most_the_limit_and_gets_them_back_on_drop() {
        let (a, _) = admission(2, 0);
        let ana = user("ana");
        let one = a.connect(Some(&ana)).unwrap();
        let two = a.connect(Some(&ana)).unwrap();
        let refused = a.connect(Some(&ana)).err().expect("third refused");
        assert_eq!(refused.reason, "user_connections");
        assert!(
            a.connect(Some(&user("bo"))).is_ok(),
            "another user is not affected"
        );
        drop(one);
        let three = a.connect(Some(&ana)).expect("a slot came back");
        drop((two, three));
        assert_eq!(
            a.held().0,
            0,
            "a user without connections leaves nothing behind"
        );
        // Anonymous (open server) connections are not counted here.
        let anon: Vec<_> = (0..5).map(|_| a.connect(None).unwrap()).collect();
        assert_eq!(anon.len(), 5);
    }

    #[test]
    fn new_rooms_are_charged_per_address_and_per_user_and_refill_with_time() {
        let (a, clock) = admission(0, 3);
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let ana = user("ana");
        for _ in 0..3 {
            a.open_room(Some(ip), Some(&ana)).unwrap();
        }
        assert_eq!(
            a.open_room(Some(ip), None).unwrap_err().reason,
            "new_rooms_ip"
        );
        let other: IpAddr = "10.1.2.4".parse().unwrap();
        assert_eq!(
            a.open_room(Some(other), Some(&ana)).unwrap_err().reason,
            "new_rooms_user",
            "the same user from another address"
        );
        a.open_room(Some(other), Some(&user("bo"))).unwrap();
        // A third of a minute later, one more room.
        clock.advance(Duration::from_secs(20));
        a.open_room(Some(ip), Some(&ana)).unwrap();
        assert!(a.open_room(Some(ip), Some(&ana)).is_err());
        // Once every bucket is full again (governor keeps a key one refill interval past
        // that), the sweep forgets them all.
        clock.advance(Duration::from_secs(100));
        a.sweep();
        assert_eq!(a.held(), (0, 0, 0));
    }

    #[test]
    fn zero_means_no_limit() {
        let (a, _) = admission(0, 0);
        let ana = user("ana");
        let permits: Vec<_> = (0..100).map(|_| a.connect(Some(&ana)).unwrap()).collect();
        for _ in 0..1000 {
            a.open_room(Some("10.0.0.1".parse().unwrap()), Some(&ana))
                .unwrap();
        }
        assert_eq!(permits.len(), 100);
        assert_eq!(a.held(), (0, 0, 0));
    }
}
