//! Application services: what a client may ask of a room, whichever transport it came by.
//!
//! | file | owns |
//! |---|---|
//! | [`admission`] | how much one client may take before any room is touched: connections per user, rooms loaded per address and user a minute |
//! | [`access`] | who acts ([`Principal`]) and what they may do ([`Access`]): every authorization rule goes here |
//! | [`commands`] | applying an OKR command to a room as a principal: access, validation, admission, durability, retry |
//! | [`import`] | importing a file's records into a room as commands, all or nothing |
//!
//! REST and `/live` both call [`commands::apply`]; neither knows how a command is checked,
//! applied or made durable. The services sit above the room core and the registry and below
//! every transport: they know rooms and principals, not sockets or HTTP.

pub mod access;
pub mod admission;
pub mod commands;
pub mod import;

pub use access::{Access, Principal};
pub use commands::{apply, Accepted, CommandFailed};
