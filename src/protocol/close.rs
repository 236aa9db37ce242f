//! Why the server closes a WebSocket: the close code and reason text a client sees, on `/sync`
//! and `/live` alike (`proto/SYNC.md` and `proto/PROTOCOL.md` list every one).
//!
//! Each reason has a [`CloseKind`]: what the server does around the close depends on it (a
//! broken socket gets no close frame, a slow consumer's backlog is dropped before its close
//! frame) and it is the stable label of the `okrhub_closes` metric. Code paths match on the
//! kind, never on the text.

/// What kind of close this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseKind {
    /// The client closed, or the server answers its close: 1000.
    Normal,
    /// The socket broke (reset, EOF mid-frame): nothing can be sent.
    Gone,
    /// The server is shutting down: 1001.
    Shutdown,
    /// A frame or message the protocol cannot read: 1002.
    Malformed,
    /// A text frame on `/sync`: 1003.
    TextFrame,
    /// A binary frame on `/live`: 1003.
    BinaryFrame,
    /// The room id in the URL is not valid: 1008.
    InvalidRoom,
    /// `/live` without a valid user, or a token that expired while connected: 1008.
    Unauthenticated,
    /// The connection tried what its role or the document's rules forbid (a viewer's update,
    /// a forged check-in, a write as another user's Yjs client): 1008. The doc is as if the
    /// update never came.
    Forbidden,
    /// A message over the size limit: 1009.
    TooBig,
    /// The room could not be loaded from the store: 1011.
    LoadFailed,
    /// The room was reset after an internal error: 1011.
    RoomReset,
    /// The store is behind; the update was not applied: 1013.
    StoreUnavailable,
    /// The connection's outgoing queue overflowed: 1013.
    SlowConsumer,
    /// The connection sent more messages than its rate limit allows: 1008.
    RateLimited,
    /// The room already has as many connections as it may: 1013 (try again later).
    RoomFull,
    /// The update would grow the room's document past its size limit; not applied: 1009.
    DocTooLarge,
    /// An awareness message over the limits (states per connection, bytes): 1008.
    AwarenessLimit,
    /// Nothing (no frame, no pong) arrived for the idle timeout: 1001.
    IdleTimeout,
}

impl CloseKind {
    /// The label of the `okrhub_closes` metric.
    pub fn label(self) -> &'static str {
        match self {
            CloseKind::Normal => "normal",
            CloseKind::Gone => "gone",
            CloseKind::Shutdown => "shutdown",
            CloseKind::Malformed => "malformed",
            CloseKind::TextFrame => "text_frame",
            CloseKind::BinaryFrame => "binary_frame",
            CloseKind::InvalidRoom => "invalid_room",
            CloseKind::Unauthenticated => "unauthenticated",
            CloseKind::Forbidden => "forbidden",
            CloseKind::TooBig => "too_big",
            CloseKind::LoadFailed => "load_failed",
            CloseKind::RoomReset => "room_reset",
            CloseKind::StoreUnavailable => "store_unavailable",
            CloseKind::SlowConsumer => "slow_consumer",
            CloseKind::RateLimited => "rate_limited",
            CloseKind::RoomFull => "room_full",
            CloseKind::DocTooLarge => "doc_too_large",
            CloseKind::AwarenessLimit => "awareness_limit",
            CloseKind::IdleTimeout => "idle_timeout",
        }
    }

    /// The WebSocket close code (RFC 6455 §7.4).
    pub fn code(self) -> u16 {
        match self {
            CloseKind::Normal => 1000,
            CloseKind::Shutdown | CloseKind::IdleTimeout => 1001,
            CloseKind::Malformed => 1002,
            CloseKind::TextFrame | CloseKind::BinaryFrame => 1003,
            CloseKind::Gone => 1006,
            CloseKind::InvalidRoom
            | CloseKind::Unauthenticated
            | CloseKind::Forbidden
            | CloseKind::RateLimited
            | CloseKind::AwarenessLimit => 1008,
            CloseKind::TooBig | CloseKind::DocTooLarge => 1009,
            CloseKind::LoadFailed | CloseKind::RoomReset => 1011,
            CloseKind::StoreUnavailable | CloseKind::SlowConsumer | CloseKind::RoomFull => 1013,
        }
    }

    /// An ordinary end of a connection, logged quietly (not a refusal). An idle timeout is
    /// one: when a network path dies, every connection over it times out at once.
    pub fn is_ordinary(self) -> bool {
        matches!(
            self,
            CloseKind::Normal | CloseKind::Gone | CloseKind::Shutdown | CloseKind::IdleTimeout
        )
    }
}

/// Why the server closes a connection: its kind (which fixes the code) and the reason text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    pub kind: CloseKind,
    pub text: String,
}

impl CloseReason {
    pub fn new(kind: CloseKind, text: impl Into<String>) -> Self {
        let mut text = text.into();
        // A close frame's reason must fit in 123 bytes.
        if text.len() > 123 {
            let mut end = 120;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push_str("...");
        }
        CloseReason { kind, text }
    }

    /// The WebSocket close code, from the kind.
    pub fn code(&self) -> u16 {
        self.kind.code()
    }

    pub fn normal() -> Self {
        Self::new(CloseKind::Normal, "bye")
    }
    /// The socket broke (reset, EOF mid-frame): nothing is sent, the connection just ends.
    pub fn gone() -> Self {
        Self::new(CloseKind::Gone, "connection lost")
    }
    pub fn going_away() -> Self {
        Self::new(CloseKind::Shutdown, "server shutting down")
    }
    pub fn malformed(detail: impl std::fmt::Display) -> Self {
        Self::new(CloseKind::Malformed, format!("malformed frame: {detail}"))
    }
    pub fn text_frame() -> Self {
        Self::new(
            CloseKind::TextFrame,
            "text frames are not part of the y-sync protocol; send binary frames",
        )
    }
    pub fn binary_frame() -> Self {
        Self::new(
            CloseKind::BinaryFrame,
            "/live speaks JSON text frames; Yjs binary frames go to /sync",
        )
    }
    pub fn invalid_room(detail: impl std::fmt::Display) -> Self {
        Self::new(CloseKind::InvalidRoom, format!("invalid room id: {detail}"))
    }
    pub fn unauthenticated(detail: impl std::fmt::Display) -> Self {
        Self::new(CloseKind::Unauthenticated, detail.to_string())
    }
    /// "forbidden: …": what the connection tried is not its to do; nothing of it was kept.
    pub fn forbidden(detail: impl std::fmt::Display) -> Self {
        Self::new(CloseKind::Forbidden, format!("forbidden: {detail}"))
    }
    pub fn too_big(limit: usize) -> Self {
        Self::new(
            CloseKind::TooBig,
            format!("message exceeds the {limit}-byte limit"),
        )
    }
    pub fn load_failed() -> Self {
        Self::new(
            CloseKind::LoadFailed,
            "room could not be loaded; try again later",
        )
    }
    /// The room's doc is no longer trusted (yrs panicked): everyone reconnects and the room
    /// reloads from the store.
    pub fn room_reset() -> Self {
        Self::new(
            CloseKind::RoomReset,
            "room reset after an internal error; reconnect",
        )
    }
    /// The store is behind (the persist buffer is full): the update was not applied. The
    /// client keeps it and sends it again when it reconnects and resyncs.
    pub fn store_unavailable() -> Self {
        Self::new(
            CloseKind::StoreUnavailable,
            "store unavailable: update not applied; reconnect later",
        )
    }
    /// More messages than the connection's token bucket allows.
    pub fn rate_limited(per_second: u32, burst: u32) -> Self {
        Self::new(
            CloseKind::RateLimited,
            format!("rate limit: more than {per_second} messages a second (burst {burst})"),
        )
    }
    /// The room has `limit` connections already.
    pub fn room_full(limit: usize) -> Self {
        Self::new(
            CloseKind::RoomFull,
            format!("room full: it has {limit} connections; try again later"),
        )
    }
    /// The update would take the room's document past `limit` bytes; it was not applied.
    pub fn doc_too_large(limit: usize) -> Self {
        Self::new(
            CloseKind::DocTooLarge,
            format!("room document would exceed {limit} bytes; update not applied"),
        )
    }
    /// An awareness message over a limit (`detail` says which).
    pub fn awareness_limit(detail: impl std::fmt::Display) -> Self {
        Self::new(CloseKind::AwarenessLimit, format!("awareness: {detail}"))
    }
    /// The connection's own updates waiting for the store reached its share of the persist
    /// buffer: this update was not applied.
    pub fn writer_ahead(share: usize) -> Self {
        Self::new(
            CloseKind::StoreUnavailable,
            format!("store unavailable: this connection has {share} bytes waiting to be written; update not applied"),
        )
    }
    /// Nothing at all arrived from the client (no frame, no pong to the server's pings) for
    /// `idle`: the peer is gone or its network path is dead.
    pub fn idle_timeout(idle: std::time::Duration) -> Self {
        Self::new(
            CloseKind::IdleTimeout,
            format!(
                "idle timeout: nothing received for {}",
                humantime::format_duration(idle)
            ),
        )
    }
    pub fn slow_consumer(queue: usize) -> Self {
        Self::new(
            CloseKind::SlowConsumer,
            format!("connection fell {queue} messages behind; reconnect to resync"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reason_fits_a_close_frame() {
        let r = CloseReason::malformed("é".repeat(200));
        assert!(r.text.len() <= 123);
        assert!(r.text.ends_with("..."));
        assert_eq!(r.code(), 1002);
    }

    #[test]
    fn the_kind_fixes_the_code() {
        assert_eq!(CloseReason::slow_consumer(8).code(), 1013);
        assert_eq!(CloseReason::store_unavailable().code(), 1013);
        assert_eq!(CloseReason::room_reset().code(), 1011);
        assert_eq!(CloseReason::unauthenticated("x").code(), 1008);
        assert_eq!(CloseReason::binary_frame().code(), 1003);
        let idle = CloseReason::idle_timeout(std::time::Duration::from_secs(75));
        assert_eq!(
            (idle.code(), idle.text.as_str()),
            (1001, "idle timeout: nothing received for 1m 15s")
        );
    }
}
