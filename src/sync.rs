//! The `/sync/{room}` endpoint: the y-websocket protocol between one Yjs client and its room.
//!
//! The WebSocket session (one task, the outbox, close frames) is [`crate::ws::session`]; this
//! file says how a `/sync` connection joins its room and hands the client's binary frames to
//! [`Room::receive`].

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tungstenite::Message;

use crate::hub::Hub;
use crate::identity::{Role, UserId};
use crate::protocol::CloseReason;
use crate::room::{Client, PeerId, Room};
use crate::room_id::RoomId;
use crate::ws::session::{self, Handler, Settings};
use crate::ws::{Opcode, Outbox, Upgraded};

/// A `/sync` connection admitted at the upgrade: its room, who it is with its role there,
/// and when its token expires — or why it is refused (an invalid room id).
pub type Joining = Result<(RoomId, (Option<UserId>, Role), Option<u64>), CloseReason>;

/// Serves one upgraded `/sync/{room}` socket until it ends.
pub async fn serve(up: Upgraded, hub: Hub<Outbox>, joining: Joining, shutdown: CancellationToken) {
    let settings = Settings {
        max_message: hub.config().max_message_size,
        opcode: Opcode::Binary,
        send_queue: hub.config().send_queue,
        rate: hub.config().message_rate,
    };
    let metrics = hub.metrics().clone();
    session::serve(up, settings, metrics, shutdown, |outbox| async move {
        let (id, (user, role), expires_at) = joining?;
        let client = Client {
            user,
            role,
            expires_at,
        };
        let (room, peer) = hub
            .join(&id, client, outbox)
            .await
            .map_err(CloseReason::from)?;
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
    fn future_size<A, B, C, D, F>(_: fn(A, B, C, D) -> F) -> usize {
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
