//! okrhub — a real-time collaborative OKR server.
//!
//! Teams co-edit their OKR set (one team, one cycle) live: every set is a yrs (Rust Yjs)
//! document in a *room*, and any Yjs client — the JS `y-websocket` provider, yrs, pycrdt —
//! syncs with it over the standard y-websocket protocol on `/sync/{room}`.
//!
//! # Layout
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | flags and `OKRHUB_*` environment (clap) |
//! | [`server`] | binding, serving, graceful shutdown |
//! | [`http`] | the routes: `/sync/{room}`, `/healthz`, `/readyz`, `/metrics` |
//! | [`protocol`] | y-sync frames (over `yrs::sync`) and close reasons |
//! | [`hub`] | the room registry ([`hub::Hub`]), a room's doc + awareness + subscribers ([`hub::Room`]), one connection ([`hub::connection`]) |
//! | [`okr`] | an OKR set on its doc: schema, typed model, rules, lint, commands, events (pure, no I/O) |
//! | [`store`] | the [`store::DocStore`] trait, the embedded redb store, the Redis store, the batching persister with its bounded buffer, export/import |
//! | [`room_id`] | room ids, validated at the edge |
//! | [`metrics`] | Prometheus metrics |
//! | [`telemetry`] | logging and signals |
//! | [`web`] | the built-in dashboard (`web/`, embedded): `/` and `/web/{file}` |
//! | [`ws`] | the WebSocket handshake (the raw socket to the connection) and outgoing frame headers |
//!
//! # Data flow
//!
//! A frame arrives on a connection → [`hub::Room::receive`] decodes it and, under the room's
//! lock, applies it to the doc → the resulting update is numbered and queued for the
//! persister, encoded once, and queued (shared bytes) on every other connection's bounded
//! outbox → as the lock is released, each outbox that was empty is written at once (header +
//! shared payload in one `writev`, [`hub::outbox`]); a socket too full to take it leaves the
//! rest to its connection's task. Nothing under the room lock waits on a socket or the disk.

pub mod api;
pub mod config;
pub mod http;
pub mod hub;
pub mod identity;
pub mod live;
pub mod metrics;
pub mod okr;
pub mod protocol;
pub mod room_id;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod web;
pub mod ws;
