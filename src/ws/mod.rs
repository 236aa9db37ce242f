//! The WebSocket layer under both protocols, and all of it: the HTTP upgrade ([`upgrade`])
//! that hands over the raw TCP socket, the framing of what the server sends ([`frame`]), each
//! connection's outgoing queue and socket writes ([`outbox`], the room core's [`crate::room::Sink`]),
//! the session that reads the client's frames and closes the connection ([`session`]), and
//! the keep-alive that pings quiet connections and closes silent ones ([`keepalive`]). It also
//! counts every TCP connection against the server's caps ([`conn`]): an upgraded socket's
//! count travels with it into its session. Nothing above this module touches a `TcpStream`
//! except the accept loop ([`crate::server`]).
//!
//! # Why not axum's `WebSocket`
//!
//! axum's `WebSocket` (tokio-tungstenite over hyper's `Upgraded`) owns the socket behind
//! `&mut self` and copies every outgoing message into a per-connection write buffer. For a hub
//! that sends the same update to hundreds of connections that costs, per delivery, a copy, a
//! task wake-up and a poll of the connection's task before the one `write` that matters; and a
//! connection that was once sent a 1 MB sync step 2 keeps a 1 MB write buffer for as long as it
//! stays. Here the upgraded `TcpStream` is shared (`Arc`) by the connection's task, which reads
//! and parses client frames with tungstenite's [`tungstenite::protocol::WebSocketContext`],
//! and its [`Outbox`], which writes shared payloads with a header in front (`writev`, no copy)
//! — straight from the task that produced them when the socket can take them, so most
//! deliveries wake nobody. See `docs/DECISIONS.md` and `load-tests/RESULTS.md`.

pub mod conn;
pub mod frame;
pub mod keepalive;
pub mod outbox;
pub mod session;
pub mod upgrade;

pub use conn::{Connections, Slot};
pub use frame::Opcode;
pub use outbox::Outbox;
pub use upgrade::{Upgraded, WsUpgrade};
