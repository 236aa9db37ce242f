//! The `/sync/{room}` endpoint: the y-websocket protocol between one Yjs client and its room.
//!
//! The WebSocket session (one task, the outbox, close frames) is [`crate::ws::session`]; this
//! file says how a `/sync` connection joins its room and hands the client's binary frames to
//! [`Room::receive`].

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tungstenite::Message;

use crate::hub::Hub;
use crate::identity::UserId;
use crate::protocol::CloseReason;
use crate::room::{PeerId, Room};
use crate::room_id::{RoomId, RoomIdError};
use crate::ws::session::{self, Handler, Settings};
use crate::ws::{Opcode, Outbox, Upgraded};

/// Serves one upgraded `/sync/{room}` socket until it ends.
pub async fn serve(
    up: Upgraded,
    hub: Hub<Outbox>,
    room: Result<RoomId, RoomIdError>,
    user: Option<UserId>,
    shutdown: CancellationToken,
) {
    let settings = Settings {
        max_message: hub.config().max_message_size,
        opcode: Opcode::Binary,
        send_queue: hub.config().send_queue,
    };
    let metrics = hub.metrics().clone();
    session::serve(up, settings, metrics, shutdown, |outbox| async move {
        let id = room.map_err(CloseReason::invalid_room)?;
        let (room, peer) = hub.join(&id, user, outbox).await.map_err(|e| {
            tracing::error!(error = %e, "join failed");
            CloseReason::load_failed()
        })?;
        tracing::debug!(room = %room.id(), peer, "connected");
        Ok(SyncSession { room, peer })
    })
    .await
}

/// A `/sync` connection that has joined its room.
struct SyncSession {
    room: Arc<Room<Outbox>>,
    peer: PeerId,
}

impl Handler for SyncSession {
    async fn on_message(&mut self, message: Message) -> Option<CloseReason> {
        match message {
            Message::Binary(data) => self.room.receive(self.peer, data).err(),
            _ => Some(CloseReason::text_frame()),
        }
    }

    fn on_end(&mut self, reason: Option<&CloseReason>) {
        self.room.leave(self.peer);
        session::log_end(self.room.id(), self.peer, reason);
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
