//! A room's subscribers of one kind (the `/sync` peers, or the `/live` subscribers) and the
//! fan-out to them: every frame queued on each sink, shared bytes, and a full sink cut off on
//! the spot.
//!
//! Cutting off closes the sink (1013, "slow consumer") and removes the member; what else its
//! departure means (awareness states to remove, presence to announce) is the caller's, which
//! gets the ids back.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::sink::{Kicks, Sink};
use crate::identity::{Role, UserId};
use crate::metrics::Metrics;
use crate::protocol::CloseReason;

/// A connection's id within its room (unique across both protocols).
pub type PeerId = u64;

/// One subscriber: where its frames go, who it is (when known) and its role in the room.
pub struct Member<S> {
    pub sink: Arc<S>,
    pub user: Option<UserId>,
    pub role: Role,
    /// When its credentials expire (unix seconds): it is closed then.
    pub expires_at: Option<u64>,
}

pub struct Fanout<S: Sink> {
    members: HashMap<PeerId, Member<S>>,
    /// Sinks given frames under the room's lock, written when it is released.
    kicks: Kicks<S>,
}

impl<S: Sink> Default for Fanout<S> {
    fn default() -> Self {
        Fanout {
            members: HashMap::new(),
            kicks: Kicks::default(),
        }
    }
}

impl<S: Sink> Fanout<S> {
    pub fn insert(&mut self, peer: PeerId, sink: Arc<S>, user: Option<UserId>, role: Role) {
        let expires_at = None;
        self.members.insert(
            peer,
            Member {
                sink,
                user,
                role,
                expires_at,
            },
        );
    }

    /// Closes the member at `expires_at` (unix seconds; see [`Fanout::close_expired`]).
    pub fn expire_at(&mut self, peer: PeerId, expires_at: Option<u64>) {
        if let Some(m) = self.members.get_mut(&peer) {
            m.expires_at = expires_at;
        }
    }

    /// Closes every member whose credentials have expired by `now` (unix seconds); their
    /// sessions then end and leave.
    pub fn close_expired(&self, now: u64) {
        for m in self.members.values() {
            if m.expires_at.is_some_and(|at| at <= now) {
                m.sink.close(CloseReason::unauthenticated(
                    "token expired: reconnect with a new token",
                ));
            }
        }
    }

    pub fn remove(&mut self, peer: PeerId) -> Option<Member<S>> {
        self.members.remove(&peer)
    }

    pub fn contains(&self, peer: PeerId) -> bool {
        self.members.contains_key(&peer)
    }

    pub fn user(&self, peer: PeerId) -> Option<&UserId> {
        self.members.get(&peer).and_then(|m| m.user.as_ref())
    }

    /// The member's role (a viewer for one that is not here).
    pub fn role(&self, peer: PeerId) -> Role {
        self.members.get(&peer).map_or(Role::Viewer, |m| m.role)
    }

    /// Whether two members are known to be the same user.
    pub fn same_user(&self, a: PeerId, b: PeerId) -> bool {
        matches!((self.user(a), self.user(b)), (Some(x), Some(y)) if x == y)
    }

    /// Queues `frame` for the members `to` accepts. Like [`Fanout::broadcast`], returns those
    /// whose sink was full (closed, still registered).
    #[must_use]
    pub fn broadcast_to(
        &mut self,
        frame: &Bytes,
        to: impl Fn(PeerId) -> bool,
        metrics: &Metrics,
    ) -> Vec<PeerId> {
        let mut overflowed = Vec::new();
        for (&id, m) in &self.members {
            if to(id) && self.kicks.push(&m.sink, frame.clone()).is_err() {
                overflowed.push(id);
            }
        }
        for &id in &overflowed {
            self.close_slow(id, metrics);
        }
        overflowed
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The sinks to write once the room's lock is released.
    pub fn kicks(&mut self) -> &mut Kicks<S> {
        &mut self.kicks
    }

    /// Queues `frame` for every member but `except`. Members whose sink is full are closed as
    /// slow consumers and returned, still registered: the caller removes them.
    #[must_use]
    pub fn broadcast(
        &mut self,
        frame: &Bytes,
        except: Option<PeerId>,
        metrics: &Metrics,
    ) -> Vec<PeerId> {
        let mut overflowed = Vec::new();
        for (&id, m) in &self.members {
            if Some(id) == except {
                continue;
            }
            if self.kicks.push(&m.sink, frame.clone()).is_err() {
                overflowed.push(id);
            }
        }
        for &id in &overflowed {
            self.close_slow(id, metrics);
        }
        overflowed
    }

    /// Queues `frame` for one member; whether its sink was full (it is then closed as a slow
    /// consumer, and the caller removes it).
    #[must_use]
    pub fn send_to(&mut self, peer: PeerId, frame: Bytes, metrics: &Metrics) -> bool {
        let full = self
            .members
            .get(&peer)
            .is_some_and(|m| self.kicks.push(&m.sink, frame).is_err());
        if full {
            self.close_slow(peer, metrics);
        }
        full
    }

    fn close_slow(&self, peer: PeerId, metrics: &Metrics) {
        if let Some(m) = self.members.get(&peer) {
            let queue = m.sink.capacity();
            tracing::warn!(
                peer,
                queue,
                "slow consumer: outgoing queue full, closing its connection"
            );
            metrics.slow_consumer_disconnects.inc();
            m.sink.close(CloseReason::slow_consumer(queue));
        }
    }

    /// Closes every member with `reason`.
    pub fn close_all(&self, reason: &CloseReason) {
        for m in self.members.values() {
            m.sink.close(reason.clone());
        }
    }
}
