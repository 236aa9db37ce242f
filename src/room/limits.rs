//! What one room, and each connection in it, may take: the room-level limits against inputs
//! that cost more than they are worth (`docs/DECISIONS.md`, "No input costs more than it is
//! worth"). Each is checked under the room's lock at the price of a comparison.

use std::time::{Duration, Instant};

/// The limits of one room and its connections (from the hub's settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomLimits {
    /// Largest the room's document may grow, in bytes of its v1 encoding (measured at load
    /// and at every snapshot, plus the size of every update since: see [`DocSize`]).
    pub max_doc_bytes: usize,
    /// Connections (`/sync` and `/live` together) the room takes at once.
    pub max_connections: usize,
    /// Awareness states one `/sync` connection may publish (a browser tab publishes one).
    pub max_awareness_states: usize,
    /// Largest awareness message: the sum of its states' JSON, in bytes.
    pub max_awareness_bytes: usize,
    /// Presence changes sent to `/live` subscribers one by one between two ticks of the
    /// sweeper; beyond that they are coalesced into one `present` message at the next tick,
    /// so that no burst of joins (or fake awareness states) can fill a subscriber's queue.
    pub presence_per_tick: usize,
    /// Bytes of one connection's updates that may wait in the persister: its share of the
    /// persist buffer, so that one writer cannot fill it (and take the node out of
    /// readiness) alone.
    pub persist_share_bytes: usize,
}

impl Default for RoomLimits {
    fn default() -> Self {
        RoomLimits {
            max_doc_bytes: 64 << 20,
            max_connections: 1_000,
            max_awareness_states: 16,
            max_awareness_bytes: 64 << 10,
            presence_per_tick: 128,
            persist_share_bytes: 16 << 20,
        }
    }
}

/// The size of a room's document, cheaply kept: its exact v1 encoding's length when last
/// measured (at load, at every snapshot), plus the length of every update applied since. The
/// sum over-estimates a little (an update's encoding repeats what merging folds), never
/// under-estimates by more than a delete set's growth, and costs an addition per update — an
/// exact size would cost an encoding of the whole doc.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DocSize {
    bytes: usize,
}

impl DocSize {
    /// A document whose encoding is `bytes` long.
    pub fn measured(bytes: usize) -> Self {
        DocSize { bytes }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether `update_len` more bytes keep the document within `limit`.
    pub fn admits(&self, update_len: usize, limit: usize) -> bool {
        self.bytes.saturating_add(update_len) <= limit
    }

    /// An update of `len` bytes was applied.
    pub fn grew(&mut self, len: usize) {
        self.bytes = self.bytes.saturating_add(len);
    }
}

/// The presence announcements a room may still send one by one before the next tick, and
/// whether some were held back (to be sent as one `present` message at the tick).
#[derive(Debug, Clone, Copy)]
pub struct PresenceBudget {
    per_tick: usize,
    left: usize,
    held: bool,
}

impl PresenceBudget {
    pub fn new(per_tick: usize) -> Self {
        PresenceBudget {
            per_tick,
            left: per_tick,
            held: false,
        }
    }

    /// Whether one more announcement may go out now; if not, it is held (coalesced).
    pub fn spend(&mut self) -> bool {
        if self.left > 0 && !self.held {
            self.left -= 1;
            true
        } else {
            self.held = true;
            false
        }
    }

    /// A tick: the budget is renewed; whether announcements were held back since the last one
    /// (the caller then sends who is present as one message).
    pub fn tick(&mut self) -> bool {
        self.left = self.per_tick;
        std::mem::take(&mut self.held)
    }
}

/// What encoding a view of a room cost, and when: a view that costs more than
/// [`EncodeCost::CHEAP`] is encoded again at most every [`EncodeCost::SHARE`] times its cost, so
/// that a client alternating edits and reads cannot keep the room encoding a large set (at most
/// a fifth of the time goes to it); until then readers get the last encoding, with its `seq`.
#[derive(Debug, Clone, Copy)]
pub struct EncodeCost {
    pub at: Instant,
    pub took: Duration,
}

impl EncodeCost {
    /// Encodings this quick are always made afresh (every realistic room's).
    pub const CHEAP: Duration = Duration::from_millis(2);
    /// Time between two encodings, in multiples of what one cost.
    pub const SHARE: u32 = 4;

    /// Whether a view this costly, made then, may be encoded again at `now`.
    pub fn renewable(&self, now: Instant) -> bool {
        self.took < Self::CHEAP || now.saturating_duration_since(self.at) >= self.took * Self::SHARE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_doc_size_admits_up_to_the_limit() {
        let mut size = DocSize::measured(90);
        assert!(size.admits(10, 100));
        assert!(!size.admits(11, 100));
        size.grew(10);
        assert_eq!(size.bytes(), 100);
        assert!(size.admits(0, 100));
        assert!(!size.admits(1, 100));
        assert!(!DocSize::measured(usize::MAX).admits(1, usize::MAX - 1));
    }

    #[test]
    fn a_costly_view_is_renewed_at_most_every_few_times_its_cost() {
        let t0 = Instant::now();
        let cheap = EncodeCost {
            at: t0,
            took: Duration::from_micros(300),
        };
        assert!(cheap.renewable(t0), "cheap views are always fresh");
        let costly = EncodeCost {
            at: t0,
            took: Duration::from_millis(50),
        };
        assert!(!costly.renewable(t0));
        assert!(!costly.renewable(t0 + Duration::from_millis(199)));
        assert!(costly.renewable(t0 + Duration::from_millis(200)));
    }

    #[test]
    fn presence_beyond_the_budget_is_held_until_the_tick() {
        let mut b = PresenceBudget::new(2);
        assert!(b.spend());
        assert!(b.spend());
        assert!(!b.spend(), "over the budget");
        assert!(b.tick(), "something was held");
        // Renewed, and nothing held since.
        assert!(b.spend());
        assert!(!b.tick());
        assert!(b.spend() && b.spend());
        assert!(!b.spend());
        // Once something is held, later ones are held too until the tick (no reordering).
        assert!(b.tick());
    }
}
