//! okrhub — a real-time collaborative OKR server.
//!
//! Teams co-edit their OKR set (one team, one cycle) live: every set is a yrs (Rust Yjs)
//! document in a *room*, and any Yjs client — the JS `y-websocket` provider, yrs, pycrdt —
//! syncs with it over the standard y-websocket protocol on `/sync/{room}`; dashboards and bots
//! follow the same room as typed JSON events on `/live/{room}` or call REST under `/api/`.
//!
//! # Layers
//!
//! Dependencies run one way, down this table (a module uses only modules in rows below its
//! own; `tests/layers.rs` prints the edges and fails on a cycle or an upward one):
//!
//! | layer | module | owns |
//! |---|---|---|
//! | server | [`server`] | binding, the accept loop (HTTP/1.1: connection caps, header and body timeouts, body size), graceful shutdown |
//! | config, CLI | [`config`], [`cli`], [`telemetry`] | flags and `OKRHUB_*` environment (clap); `export` / `import`; logging and signals |
//! | HTTP | [`http`] | the router: every route below, `/healthz`, `/readyz`, `/metrics` |
//! | endpoints | [`sync`] | `GET /sync/{room}`: the y-websocket protocol for one Yjs client |
//! | | [`live`] | `GET /live/{room}`: JSON snapshot, events, commands; `GET /live/~inbox`: a user's mentions |
//! | | [`api`] | `/api/rooms/{room}`, `…/commands`, `…/key_results/{kr}/history`, `/api/session`: REST |
//! | | [`transfer_api`] | `…/export.json`, `…/export.csv`, `…/import`, `/api/orgs/{org}/cycles/{cycle}/export.*`: import and export over REST |
//! | | [`review_api`] | `…/review`, `…/review.md`, `…/carry-over`, `…/from-template`, `/api/templates`, `/api/orgs/{org}/templates/{name}`: the quarter's end and the next one |
//! | | [`web`] | `GET /`, `GET /web/{file}`: the built-in dashboard (`web/`, embedded) |
//! | | [`robots_api`] | `/api/orgs/{org}/robots[/{name}[/dead-letters]]`, `/api/orgs/{org}/notify`: an org's chat robots and webhooks |
//! | | [`org_api`] | what the `/api/orgs/{org}/…` routes share: the org's admin, org names, answers |
//! | request edge | [`auth`] | who a request is ([`auth::Caller`]: a verified token, or `?user=` on an open server), the `Origin` check, refusals before any state |
//! | WebSocket | [`ws`] | handshake, frame headers, each connection's outbox (socket writes) and session (reads, close), keep-alive (pings, idle timeout); every TCP connection's place under the caps ([`ws::conn`]) |
//! | services | [`service`] | applying a command as a principal ([`service::commands`]), who may do what ([`service::access`]), how much one client may take ([`service::admission`]) |
//! | | [`notify`] | chat robots and webhooks: the notice queue, signing (DingTalk, Lark, Slack, Standard Webhooks), delivery with retries, rate limits, dead letters, the persisted outbox |
//! | registry | [`hub`] | loaded rooms: load once on first join, snapshot, unload when idle, store probe |
//! | room core | [`room`] | one room: doc + awareness, subscribers and fan-out through a [`room::Sink`], lifecycle, OKR projection cut per reader, the document's rules on Yjs updates, its limits, users' inboxes; no sockets |
//! | persistence | [`store`] | the [`store::DocStore`] trait, the embedded redb store, the Redis store, the integrity frame on every stored value, the batching persister, export/import |
//! | wire formats | [`protocol`] | y-sync frames, the `/live` + REST JSON types and their schemas, close reasons |
//! | domain | [`okr`] | an OKR set on its doc: schema, typed model, rules, lint, commands, events, the incremental projection, who reads what (`audience`), what a Yjs update may change (`guard`) (pure, no I/O) |
//! | foundation | [`room_id`], [`identity`], [`metrics`], [`clock`] | room ids, user ids, Prometheus metrics, the wall clock |
//!
//! Where a new thing goes: a JSON command is a file in [`okr::commands`] (and a variant of
//! [`okr::Command`]); an authorization rule is [`service::access`] (what a role may do),
//! [`okr::audience`] (who reads what) or [`okr::guard`] (what a Yjs update may change); a third store is a file in
//! [`store`] implementing [`store::DocStore`]; a relay to other nodes is a new module beside
//! the store, called from the room's replication seam (`RoomState::commit` out,
//! [`room::Room::apply_remote`] in).
//!
//! # Data flow
//!
//! A frame arrives on a connection ([`ws::session`]) → [`room::Room::receive`] decodes it and,
//! under the room's lock, applies it to the doc → the resulting update is numbered and queued
//! for the persister, encoded once, and queued (shared bytes) on every other connection's
//! bounded [`room::Sink`] → as the lock is released, each outbox that was empty is written at
//! once (header + shared payload in one `writev`, [`ws::outbox`]); a socket too full to take
//! it leaves the rest to its connection's task. Nothing under the room lock waits on a socket
//! or the disk. A command (REST or `/live`) takes the same path from
//! [`service::commands::apply`] through [`room::Room::command`].

#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod http;
pub mod hub;
pub mod identity;
pub mod live;
pub mod metrics;
pub mod notify;
pub mod okr;
pub mod org_api;
pub mod protocol;
pub mod review_api;
pub mod robots_api;
pub mod room;
pub mod room_id;
pub mod server;
pub mod service;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod transfer_api;
pub mod web;
pub mod ws;
