//! The OKR set of a room, on its yrs doc: schema, typed model, rules, commands and events.
//!
//! A room's doc holds one team's OKRs for one cycle. This module is the only place that knows
//! how they are laid out in the doc (`proto/DOCUMENT.md` is the same contract, for JS), and it
//! is pure: no sockets, no clock, no room — the caller passes the transaction, the acting user
//! and `now`. That keeps every rule testable with hand-computed numbers.
//!
//! # Layout
//!
//! | file | owns |
//! |---|---|
//! | [`schema`] | root names ([`ROOTS`]), field names, limits |
//! | [`model`] | the typed, serde + JSON Schema model ([`OkrSet`]) |
//! | `fields` | tolerant access to one doc entry, reporting problems |
//! | [`read`](read()) | doc → [`OkrSet`], derived fields filled in; [`kr_history`] |
//! | [`rules`] | progress, pace, status, overdue: pure functions |
//! | [`lint`] | quality advice |
//! | [`events`] | [`diff()`] of two reads → typed [`Event`]s |
//! | [`commands`] | [`Command`]s: validate fully, then write ([`apply()`]) |
//!
//! # Data flow
//!
//! Any change to the doc (a Yjs client on `/sync`, or a command) → the caller re-reads with
//! [`read()`] → compares with the previous read. The doc is the only source of truth; the typed
//! model is always derived from it, never stored.

pub mod commands;
pub mod events;
mod fields;
pub mod lint;
pub mod model;
mod read;
pub mod rules;
pub mod schema;

pub use commands::{apply, apply_in_room, Applied, Command, CommandError, ErrorCode};
pub use events::{diff, Event, MentionSource};
pub use model::*;
pub use read::{kr_history, read};
pub use schema::ROOTS;

#[cfg(test)]
mod tests;
