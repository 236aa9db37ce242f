//! Where a room's notices go: the check-ins, comments and reminders worth a chat message
//! ([`crate::okr::notice`]), handed over as the room publishes them.
//!
//! **One node sends each.** On a shared log every node holding a room projects every entry
//! and publishes the same events; only the node the entry came from — whose client made the
//! update (the entry's origin), or that wrote the tick entry a reminder came from — hands its
//! notices on. The others drop theirs. On one node every update is local.
//!
//! [`Notices::notices`] is called under the room's lock: an implementation only queues.

use crate::okr::notice::Notice;

/// The receiver of a room's notices (the chat robots and webhooks).
pub trait Notices: Send + Sync + 'static {
    /// Takes notices of one update, in order. Must not block: it runs under the room's lock.
    fn notices(&self, notices: Vec<Notice>);
}
