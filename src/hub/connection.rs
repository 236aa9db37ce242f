//! One `/sync` WebSocket connection: the y-websocket protocol between one client and its room.
//!
//! The transport (one task, the outbox, close frames) is [`super::socket`]; this
//! file joins the room, hands the client's binary frames to [`Room::receive`] and leaves.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tungstenite::Message;

use super::socket::{self, Conn, Handler};
use super::{Hub, PeerId, Room};
use crate::identity::UserId;
use crate::protocol::CloseReason;
use crate::room_id::{RoomId, RoomIdError};
use crate::ws::{Opcode, Upgraded};

/// Serves one upgraded `/sync/{room}` socket until it ends.
pub async fn serve(
    up: Upgraded,
    hub: Hub,
    room: Result<RoomId, RoomIdError>,
    user: Option<UserId>,
    shutdown: CancellationToken,
) {
    let metrics = hub.metrics().clone();
    metrics.connections.inc();
    // Boxed (inside `Conn::new`), like every rare path below: an async fn is as large as its
    // largest state, and this task lives as long as the connection.
    let mut conn = Conn::new(up, hub.config().max_message_size);
    match room {
        Err(e) => {
            let reason = CloseReason::invalid_room(e);
            tracing::info!(reason = %reason.text, "refused connection");
            Box::pin(socket::refuse(&mut conn, reason, Opcode::Binary, &metrics)).await;
        }
        Ok(id) => {
            let joined = Box::pin(async {
                tokio::select! {
                    j = hub.join(&id, user) => Some(j),
                    _ = shutdown.cancelled() => None,
                }
            })
            .await;
            match joined {
                None => {
                    let reason = CloseReason::going_away();
                    Box::pin(socket::refuse(&mut conn, reason, Opcode::Binary, &metrics)).await
                }
                Some(Err(e)) => {
                    tracing::error!(error = %e, "join failed");
                    let reason = CloseReason::load_failed();
                    Box::pin(socket::refuse(&mut conn, reason, Opcode::Binary, &metrics)).await;
                }
                Some(Ok((room, joined))) => {
                    joined.outbox.attach(conn.socket(), &metrics);
                    if shutdown.is_cancelled() {
                        // Joined during shutdown, possibly after the hub closed every peer.
                        joined.outbox.close(CloseReason::going_away());
                    }
                    tracing::debug!(room = %room.id(), peer = joined.peer, "connected");
                    let mut handler = SyncHandler {
                        room,
                        peer: joined.peer,
                    };
                    socket::run(&mut conn, &joined.outbox, &mut handler, &metrics).await;
                    handler.room.leave(handler.peer);
                    log_end(&handler.room, handler.peer, joined.outbox.reason());
                    Box::pin(socket::finish(&mut conn, &joined.outbox, &metrics)).await;
                }
            }
        }
    }
    metrics.connections.dec();
}

/// Logs why a connection ended: refusals at info, the rest at debug.
pub fn log_end(room: &Room, peer: PeerId, reason: Option<CloseReason>) {
    match reason {
        Some(r) if !matches!(r.label, "normal" | "gone" | "shutdown") => {
            tracing::info!(room = %room.id(), peer, code = r.code, reason = %r.text, "closing connection")
        }
        _ => tracing::debug!(room = %room.id(), peer, "disconnected"),
    }
}

struct SyncHandler {
    room: Arc<Room>,
    peer: PeerId,
}

impl Handler for SyncHandler {
    async fn on_message(&mut self, message: Message) -> Option<CloseReason> {
        match message {
            Message::Binary(data) => self.room.receive(self.peer, data).err(),
            _ => Some(CloseReason::text_frame()),
        }
    }
}

#[cfg(test)]
mod tests {
    /// The size of the future an async fn item returns.
    fn future_size<A, B, C, D, E, F>(_: fn(A, B, C, D, E) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// The connection task lives as long as the connection: every byte of its future counts
    /// per idle connection (it was 1.9 KB with the socket and the join inline; ~470 bytes in a
    /// release build now, a little more in a debug build).
    #[test]
    fn the_connection_future_stays_small() {
        let size = future_size(super::serve);
        assert!(size <= 768, "serve() future grew to {size} bytes");
    }
}
