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
//! | [`read`](read()) | doc → [`OkrSet`], derived fields filled in: the definition |
//! | [`touched`](Touched) | what a transaction touched, from yrs' deep-observer events |
//! | [`projection`](Projection) | the set kept up to date from what each transaction touched |
//! | [`rules`] | progress, pace, status, overdue: pure functions |
//! | [`lint`] | quality advice |
//! | [`events`] | [`diff()`] of two reads → typed [`Event`]s: the definition |
//! | [`commands`] | [`Command`]s: validate fully, then write ([`apply()`]) |
//! | [`review`] | the review (复盘) of a cycle: scores, confidence history, red flags; JSON and Markdown |
//! | [`carry`] | what carrying unfinished objectives and KRs into the next cycle's room creates |
//! | [`templates`] | the built-in OKR templates (`templates.json`), in Chinese and English |
//!
//! # Data flow
//!
//! Any change to the doc (a Yjs client on `/sync`, or a command) → the room's observers note
//! which entries it [`Touched`] → the room's [`Projection`] re-reads those and derives the
//! events. [`read()`] and [`diff()`] define what the projection must give, and the property
//! tests hold it to them. The doc is the only source of truth; the typed model is always derived
//! from it, never stored.

pub mod audience;
pub mod carry;
pub mod commands;
pub mod events;
mod fields;
pub mod guard;
pub mod lint;
pub mod model;
pub mod notice;
mod projection;
mod read;
pub mod review;
pub mod rules;
pub mod schema;
pub mod templates;
mod touched;

pub use commands::{apply, apply_in_room, Applied, Command, CommandError, ErrorCode};
pub use events::{diff, Event, MentionSource, Patch};
pub use model::*;
pub use projection::Projection;
pub use read::{kr_history, read};
pub use schema::{Root, ROOTS};
pub use touched::{Scope, Touched, Watch};

#[cfg(test)]
mod tests;
