//! okrhub-load: a load generator for okrhub and other y-websocket servers (y-sweet too).
//!
//! Every simulated user is a real yrs `Doc` over its own WebSocket doing the full sync
//! handshake. Editors change the doc at a fixed rate; every edit carries its send time, so
//! receivers measure delivery latency, and the run measures the latency until the last client
//! of the room has each edit. With the server's PID it also reports the server's CPU and RSS.
//! It connects to loopback addresses only, bounds clients and time, and stops by itself.
//! Rooms can be seeded with a realistic OKR set ([`seed`]) for edits the server projects, and
//! watched by okrhub `/live` room screens ([`live`]).
//!
//! [`run`] is the whole thing as a library call; the `okrhub-load` binary is a thin CLI on top.

pub mod cli;
pub mod client;
pub mod config;
pub mod http;
pub mod live;
pub mod procfs;
pub mod receive;
pub mod report;
pub mod run;
pub mod saturate;
pub mod seed;
pub mod stats;
pub mod target;

pub use config::{ApplyMode, Config, EditKind, Saturate};
pub use report::{Report, StepReport};
pub use run::run;
pub use target::Target;
