//! One `/sync` WebSocket connection: the y-websocket protocol between one client and its room.
//!
//! The transport (one task, the outbox, bursts and close frames) is [`super::socket`]; this
//! file joins the room, hands the client's binary frames to [`Room::receive`] and leaves.

use std::sync::Arc;

use axum::extract::ws::{Message as WsMessage, WebSocket};
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::socket::{self, Handler};
use super::{Hub, PeerId, Room};
use crate::identity::UserId;
use crate::protocol::CloseReason;
use crate::room_id::{RoomId, RoomIdError};

/// Serves one upgraded `/sync/{room}` socket until it ends.
///
/// The socket comes boxed: held inline, its ~370 bytes would be laid out in several states of
/// this async fn and of the futures it awaits, and this task lives as long as the connection.
pub async fn serve(
    mut ws: Box<WebSocket>,
    hub: Hub,
    room: Result<RoomId, RoomIdError>,
    user: Option<UserId>,
    shutdown: CancellationToken,
) {
    let metrics = hub.metrics().clone();
    metrics.connections.inc();
    match room {
        Err(e) => {
            let reason = CloseReason::invalid_room(e);
            tracing::info!(reason = %reason.text, "refused connection");
            Box::pin(socket::send_close(&mut ws, &reason, &metrics)).await;
        }
        Ok(id) => {
            // Boxed, like every rare path here: an async fn is as large as its largest state,
            // and this task lives as long as the connection.
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
                    Box::pin(socket::send_close(&mut ws, &reason, &metrics)).await
                }
                Some(Err(e)) => {
                    tracing::error!(error = %e, "join failed");
                    let reason = CloseReason::load_failed();
                    Box::pin(socket::send_close(&mut ws, &reason, &metrics)).await;
                }
                Some(Ok((room, joined))) => {
                    if shutdown.is_cancelled() {
                        // Joined during shutdown, possibly after the hub closed every peer.
                        joined.outbox.close(CloseReason::going_away());
                    }
                    tracing::debug!(room = %room.id(), peer = joined.peer, "connected");
                    let mut handler = SyncHandler {
                        room,
                        peer: joined.peer,
                    };
                    let max = hub.config().max_message_size;
                    socket::run(&mut ws, &joined.outbox, &mut handler, &metrics, max).await;
                    handler.room.leave(handler.peer);
                    log_end(&handler.room, handler.peer, joined.outbox.reason());
                    Box::pin(socket::finish::<SyncHandler>(
                        &mut ws,
                        &joined.outbox,
                        &metrics,
                    ))
                    .await;
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
    fn frame(bytes: Bytes) -> WsMessage {
        WsMessage::Binary(bytes)
    }

    async fn on_message(&mut self, message: WsMessage) -> Option<CloseReason> {
        match message {
            WsMessage::Binary(data) => self.room.receive(self.peer, data).err(),
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
