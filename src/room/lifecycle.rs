//! A room's place in its life: the log sequence numbers it has handed out and snapshotted,
//! whether it is closing (unloading, or reset after an internal error), and since when nobody
//! is connected. Pure bookkeeping under the room's lock; the hub decides when to act on it.

use std::time::{Duration, Instant};

pub struct Lifecycle {
    /// The last log sequence number of the room (handed to the persister, or applied from
    /// the shared log).
    last_seq: u64,
    /// The log sequence number the last snapshot covers.
    compacted_seq: u64,
    /// Set when the room starts to unload; joins are refused from then on.
    closing: bool,
    /// Set when a panic inside yrs left the doc in doubt: it is never snapshotted again.
    poisoned: bool,
    /// When the last connection left (None while someone is connected).
    idle_since: Option<Instant>,
}

impl Lifecycle {
    /// A room loaded at `last_seq`, whose snapshot covers `compacted_seq`; nobody connected.
    pub fn new(last_seq: u64, compacted_seq: u64) -> Self {
        Lifecycle {
            last_seq,
            compacted_seq,
            closing: false,
            poisoned: false,
            idle_since: Some(Instant::now()),
        }
    }

    pub fn seq(&self) -> u64 {
        self.last_seq
    }

    /// Allocates the next sequence number for a local update. Per node: see "Sequence numbers
    /// are per node" in `docs/DECISIONS.md` before two nodes may serve one room.
    pub fn next_seq(&mut self) -> u64 {
        self.last_seq += 1;
        self.last_seq
    }

    /// Moves to `seq`, a number the shared log gave an update of another node; never back.
    pub fn advance_to(&mut self, seq: u64) {
        self.last_seq = self.last_seq.max(seq);
    }

    /// Updates logged since the last snapshot.
    pub fn log_len(&self) -> u64 {
        self.last_seq.saturating_sub(self.compacted_seq)
    }

    /// Whether a snapshot may be taken: the doc is trusted.
    pub fn snapshottable(&self) -> bool {
        !self.poisoned
    }

    /// Whether a snapshot would cover anything new.
    pub fn dirty(&self) -> bool {
        self.last_seq > self.compacted_seq
    }

    /// A snapshot covering `upto` was written.
    pub fn compacted(&mut self, upto: u64) {
        self.compacted_seq = self.compacted_seq.max(upto);
    }

    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// The doc can no longer be trusted: close, and never snapshot again.
    pub fn poison(&mut self) {
        self.poisoned = true;
        self.closing = true;
    }

    /// Starts closing if the room is `empty` and has been for `idle`; a poisoned room is
    /// already closing and may go. Returns whether the caller may unload it.
    pub fn try_begin_close(&mut self, empty: bool, idle: Duration) -> bool {
        if self.closing {
            return self.poisoned;
        }
        let idle_enough = empty && self.idle_since.is_some_and(|t| t.elapsed() >= idle);
        if idle_enough {
            self.closing = true;
        }
        idle_enough
    }

    /// Closes regardless of connections (shutdown).
    pub fn begin_close(&mut self) {
        self.closing = true;
    }

    /// Takes back a close whose final snapshot failed: the room stays.
    pub fn abort_close(&mut self) {
        if !self.poisoned {
            self.closing = false;
            self.idle_since = Some(Instant::now());
        }
    }

    /// Someone connected.
    pub fn occupied(&mut self) {
        self.idle_since = None;
    }

    /// The last connection left (only the first call of an idle period counts).
    pub fn vacated(&mut self) {
        if self.idle_since.is_none() {
            self.idle_since = Some(Instant::now());
        }
    }
}
