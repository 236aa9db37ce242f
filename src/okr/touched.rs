//! What a transaction touched in the OKR roots: the cycle, and the ids of the entries whose
//! value or nested content changed. The room records it from yrs' deep-observer events as each
//! transaction commits; the [`Projection`](super::Projection) re-reads exactly these entries.

use std::collections::BTreeSet;

use yrs::types::{Event, Events, PathSegment};
use yrs::{Map, ReadTxn, TransactionMut};

use super::schema::Root;

/// Entries touched since the projection last caught up, by root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    pub cycle: bool,
    pub objectives: BTreeSet<String>,
    pub key_results: BTreeSet<String>,
    pub checkins: BTreeSet<String>,
    pub comments: BTreeSet<String>,
}

impl Touched {
    /// Every entry of every root of `txn`'s doc (to load a projection from scratch).
    pub fn everything<T: ReadTxn>(txn: &T) -> Self {
        let mut all = Touched {
            cycle: true,
            ..Touched::default()
        };
        for root in Root::ALL {
            if let Some(map) = txn.get_map(root.name()) {
                for (id, _) in map.iter(txn) {
                    all.insert(root, id);
                }
            }
        }
        all
    }

    /// Forgets everything noted.
    pub fn clear(&mut self) {
        *self = Touched::default();
    }

    pub fn is_empty(&self) -> bool {
        !self.cycle
            && self.objectives.is_empty()
            && self.key_results.is_empty()
            && self.checkins.is_empty()
            && self.comments.is_empty()
    }

    /// Notes that entry `id` of `root` changed (any id of the cycle: the cycle).
    pub fn insert(&mut self, root: Root, id: &str) {
        let ids = match root {
            Root::Cycle => {
                self.cycle = true;
                return;
            }
            Root::Objectives => &mut self.objectives,
            Root::KeyResults => &mut self.key_results,
            Root::Checkins => &mut self.checkins,
            Root::Comments => &mut self.comments,
        };
        if !ids.contains(id) {
            ids.insert(id.to_owned());
        }
    }

    /// Records what the deep-observer `events` of root `root` say changed: for an event on the
    /// root map itself, the keys it names; for one further down, the entry it is under (the
    /// first segment of its path from the root).
    pub fn record(&mut self, root: Root, txn: &TransactionMut, events: &Events) {
        if root == Root::Cycle {
            self.cycle = true;
            return;
        }
        for event in events.iter() {
            match event.path().front() {
                Some(PathSegment::Key(id)) => self.insert(root, id),
                Some(PathSegment::Index(_)) => {} // a root map has keys, not indexes
                None => {
                    if let Event::Map(map) = event {
                        for id in map.keys(txn).keys() {
                            self.insert(root, id);
                        }
                    }
                }
            }
        }
    }
}
