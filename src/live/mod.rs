//! The live side of a room: OKR events as JSON, for dashboards, bots and any client that does
//! not speak Yjs (`proto/PROTOCOL.md`).
//!
//! | file | owns |
//! |---|---|
//! | [`messages`] | the JSON wire types (and the JSON Schemas generated from them) |
//! | [`projector`] | per room: the typed model kept in step with the doc, events, history, subscribers |
//! | [`connection`] | one `/live/{room}` WebSocket: commands in, snapshot/events/acks out |

pub mod connection;
pub mod messages;
pub mod projector;

pub use projector::{now_millis, Projector};
