//! What a transaction touched in the OKR roots: the cycle, and the ids of the entries whose
//! value or nested content changed. The room records it from yrs' deep-observer events as each
//! transaction commits; the [`Projection`](super::Projection) re-reads exactly these entries.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use yrs::types::{Event, Events, PathSegment};
use yrs::{DeepObservable, Doc, Map, ReadTxn, TransactionMut};

use super::schema::{field as f, Root};

/// How much of an objective or KR changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Only the text inside these `Y.Text` fields (`title`, `description`): a keystroke. The
    /// entry's other fields, and the type of these, are as they were.
    Text(BTreeSet<&'static str>),
    /// Anything else: the entry is read again whole.
    Entry,
}

impl Scope {
    fn merge(&mut self, other: Scope) {
        match (&mut *self, other) {
            (Scope::Text(mine), Scope::Text(theirs)) => mine.extend(theirs),
            (_, _) => *self = Scope::Entry,
        }
    }
}

/// Entries touched since the projection last caught up, by root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    pub cycle: bool,
    pub objectives: BTreeMap<String, Scope>,
    pub key_results: BTreeMap<String, Scope>,
    pub checkins: BTreeSet<String>,
    pub comments: BTreeSet<String>,
}

/// The collaborative-text fields of objectives and KRs, whose keystrokes take the short way.
const TEXT_FIELDS: &[&str] = &[f::TITLE, f::DESCRIPTION];

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

    /// Adds what `other` touched.
    pub fn extend(&mut self, other: Touched) {
        self.cycle |= other.cycle;
        for (id, scope) in other.objectives {
            self.insert_scoped(Root::Objectives, &id, scope);
        }
        for (id, scope) in other.key_results {
            self.insert_scoped(Root::KeyResults, &id, scope);
        }
        self.checkins.extend(other.checkins);
        self.comments.extend(other.comments);
    }

    /// Notes that entry `id` of `root` changed (any id of the cycle: the cycle).
    pub fn insert(&mut self, root: Root, id: &str) {
        self.insert_scoped(root, id, Scope::Entry);
    }

    fn insert_scoped(&mut self, root: Root, id: &str, scope: Scope) {
        let ids = match root {
            Root::Cycle => {
                self.cycle = true;
                return;
            }
            Root::Objectives => &mut self.objectives,
            Root::KeyResults => &mut self.key_results,
            Root::Checkins | Root::Comments => {
                let ids = match root {
                    Root::Checkins => &mut self.checkins,
                    _ => &mut self.comments,
                };
                if !ids.contains(id) {
                    ids.insert(id.to_owned());
                }
                return;
            }
        };
        match ids.get_mut(id) {
            Some(have) => have.merge(scope),
            None => {
                ids.insert(id.to_owned(), scope);
            }
        }
    }

    /// Records what the deep-observer `events` of root `root` say changed: for an event on the
    /// root map itself, the keys it names; for one further down, the entry it is under (the
    /// first segment of its path from the root) — with [`Scope::Text`] when it is an edit of
    /// the text inside an entry's title or description.
    pub fn record(&mut self, root: Root, txn: &TransactionMut, events: &Events) {
        if root == Root::Cycle {
            self.cycle = true;
            return;
        }
        for event in events.iter() {
            let path = event.path();
            match path.front() {
                Some(PathSegment::Key(id)) => {
                    let text = match (event, path.get(1), path.len()) {
                        (Event::Text(_), Some(PathSegment::Key(field)), 2) => {
                            TEXT_FIELDS.iter().find(|f| **f == &**field).copied()
                        }
                        _ => None,
                    };
                    let scope = match text {
                        Some(field) if root.shared() => Scope::Text(BTreeSet::from([field])),
                        _ => Scope::Entry,
                    };
                    self.insert_scoped(root, id, scope);
                }
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

/// What a doc's transactions touched in its OKR roots, recorded by deep observers on each root
/// as the transactions commit, until [`Watch::take`].
#[derive(Clone)]
pub struct Watch(Arc<Mutex<Touched>>);

impl Watch {
    /// Starts watching `doc`'s OKR roots (the observers live as long as the doc; `key` names
    /// them).
    pub fn new(doc: &Doc, key: &'static str) -> Self {
        let watch = Watch(Arc::default());
        for root in Root::ALL {
            let w = watch.clone();
            doc.get_or_insert_map(root.name())
                .observe_deep(key, move |txn, events| w.lock().record(root, txn, events));
        }
        watch
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Touched> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What was touched since the last call (nothing: an empty `Touched`).
    pub fn take(&self) -> Touched {
        std::mem::take(&mut *self.lock())
    }
}
