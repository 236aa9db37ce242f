//! A room's place in a log several nodes share: bookkeeping under the room's lock, no I/O.
//!
//! On a shared log (Redis) the store numbers the updates, so a node applies an update — its
//! client's, or another node's from the fast path — before it knows its number. Such an update
//! is **pending**: applied to the doc and fanned out to the `/sync` peers at once, but kept here
//! with what it touched until its number comes back from the log; only then is it projected
//! into `/live` events, at that `seq`, in log order. So every node publishes each event under
//! the same `seq`, in the same order, once, and a client may resume with `?since=` anywhere.
//!
//! An update is known by its [`Origin`] (node, node-local number). Recently numbered origins
//! are remembered, so a fast-path copy that arrives after its log entry is not applied again.
//! A pending update of another node that stays unnumbered (its node died between the fast path
//! and its log write) is logged again by this node after a while ([`LogOrder::stale`]): what
//! anyone saw is never lost. Logging an update twice is harmless (Yjs updates are idempotent).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::identity::UserId;
use crate::okr::Touched;
use crate::store::shared::{Origin, SharedLog};

/// How many numbered origins a room remembers (fast-path copies arriving later are ignored).
const RECENT: usize = 4096;
/// How many of its own updates' numbers a room remembers (for commands awaiting theirs).
const OWN: usize = 1024;

/// What a room on a shared log needs: the log and this node's local numbering.
#[derive(Clone)]
pub struct SharedCtx {
    pub log: Arc<dyn SharedLog>,
    /// This node's local numbers, increasing across every room it ever loads (a room loaded
    /// again must not reuse a number the log has seen from this node).
    pub locals: Arc<AtomicU64>,
}

impl SharedCtx {
    pub fn node(&self) -> &Arc<str> {
        self.log.node()
    }

    pub fn next_local(&self) -> u64 {
        self.locals.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// An update applied here whose number the log has not given yet.
pub struct Pending {
    pub touched: Touched,
    pub by: Option<UserId>,
    pub update: Bytes,
    pub since: Instant,
}

#[derive(Default)]
pub struct LogOrder {
    pending: HashMap<Origin, Pending>,
    recent: HashSet<Origin>,
    recent_order: VecDeque<Origin>,
    own: VecDeque<(u64, u64)>,
}

impl LogOrder {
    /// Whether `origin`'s update is already applied here (pending or numbered lately).
    pub fn knows(&self, origin: &Origin) -> bool {
        self.pending.contains_key(origin) || self.recent.contains(origin)
    }

    pub fn hold(&mut self, origin: Origin, pending: Pending) {
        self.pending.insert(origin, pending);
    }

    /// The log numbered `origin`'s update `seq`: its pending state, if it was applied here.
    pub fn numbered(&mut self, origin: &Origin, seq: u64, own_node: &str) -> Option<Pending> {
        if &*origin.node == own_node {
            if self.own.len() == OWN {
                self.own.pop_front();
            }
            self.own.push_back((origin.local, seq));
        }
        if self.recent.insert(origin.clone()) {
            self.recent_order.push_back(origin.clone());
            if self.recent_order.len() > RECENT {
                if let Some(old) = self.recent_order.pop_front() {
                    self.recent.remove(&old);
                }
            }
        }
        self.pending.remove(origin)
    }

    /// The seq the log gave this node's update `local`, if it did lately.
    pub fn seq_of(&self, local: u64) -> Option<u64> {
        self.own.iter().find(|(l, _)| *l == local).map(|(_, s)| *s)
    }

    /// Other nodes' pending updates older than `age`: taken out, to be logged again by this
    /// node.
    pub fn stale(&mut self, own_node: &str, age: Duration) -> Vec<Pending> {
        let old: Vec<Origin> = (self.pending.iter())
            .filter(|(o, p)| &*o.node != own_node && p.since.elapsed() >= age)
            .map(|(o, _)| o.clone())
            .collect();
        old.iter().filter_map(|o| self.pending.remove(o)).collect()
    }

    /// Updates applied here and not numbered yet.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(node: &str, local: u64) -> Origin {
        Origin {
            node: node.into(),
            local,
        }
    }

    fn pending(since: Instant) -> Pending {
        Pending {
            touched: Touched::default(),
            by: None,
            update: Bytes::from_static(b"u"),
            since,
        }
    }

    #[test]
    fn a_numbered_update_is_known_and_its_seq_remembered_for_its_node() {
        let mut order = LogOrder::default();
        order.hold(origin("me", 1), pending(Instant::now()));
        assert!(order.knows(&origin("me", 1)));
        assert!(order.numbered(&origin("me", 1), 9, "me").is_some());
        // Numbered: still known (a late fast-path copy is ignored), no longer pending.
        assert!(order.knows(&origin("me", 1)));
        assert_eq!(order.pending_len(), 0);
        assert_eq!(order.seq_of(1), Some(9));
        // Another node's update numbered here without being applied first.
        assert!(order.numbered(&origin("them", 4), 10, "me").is_none());
        assert!(order.knows(&origin("them", 4)));
        assert_eq!(order.seq_of(4), None, "not this node's");
    }

    #[test]
    fn only_other_nodes_stale_updates_are_taken_for_logging_again() {
        let mut order = LogOrder::default();
        let old = Instant::now() - Duration::from_secs(60);
        order.hold(origin("me", 1), pending(old));
        order.hold(origin("them", 1), pending(old));
        order.hold(origin("them", 2), pending(Instant::now()));
        let stale = order.stale("me", Duration::from_secs(10));
        assert_eq!(stale.len(), 1);
        assert!(!order.knows(&origin("them", 1)));
        assert!(order.knows(&origin("them", 2)));
        assert!(
            order.knows(&origin("me", 1)),
            "this node's own: its persister retries"
        );
    }
}
