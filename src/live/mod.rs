//! The `/live/{room}` endpoint: JSON text frames (`proto/PROTOCOL.md`).
//!
//! On join the client gets a `snapshot` (or, with `?since=SEQ`, a `resumed` and the events it
//! missed), then every event of the room as it happens. It may send commands; each goes to
//! the command service ([`crate::service::commands`]) and is answered by an `ack` once its
//! change is durable, or an `error` — after the events the command caused, which the client
//! thus sees first. A command that cannot be read is answered with an `error` too: one bad
//! message does not cost the connection. Binary frames and oversized messages do (1003, 1009).
//!
//! The WebSocket session is [`crate::ws::session`], shared with `/sync`.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tungstenite::Message;

use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::protocol::live::{
    encode, ClientCommand, Control, ErrorBody, ProtocolErrorCode, ServerMessage,
};
use crate::protocol::CloseReason;
use crate::room::{PeerId, Room};
use crate::room_id::RoomId;
use crate::service::{self, Principal};
use crate::ws::session::{self, Handler, Settings};
use crate::ws::{Opcode, Outbox, Upgraded};

/// Largest `/live` message accepted: commands are small.
pub const MAX_LIVE_MESSAGE: usize = 256 * 1024;

/// Longest client command id.
const MAX_COMMAND_ID: usize = 64;

pub mod inbox;

/// The path of the inbox (`/live/~inbox`): not a room.
pub const INBOX: &str = "~inbox";

/// A `/live` connection admitted at the upgrade: its room, its principal there and when its
/// token expires — or why it is refused (an invalid room id).
pub type Joining = Result<(RoomId, Principal, Option<u64>), CloseReason>;

/// Serves one upgraded `/live/{room}` socket until it ends.
pub async fn serve(
    up: Upgraded,
    hub: Hub<Outbox>,
    joining: Joining,
    since: Option<u64>,
    shutdown: CancellationToken,
) {
    let settings = text_settings(&hub, MAX_LIVE_MESSAGE);
    let metrics = hub.metrics().clone();
    session::serve(
        up,
        settings,
        metrics.clone(),
        shutdown,
        |outbox| async move {
            let (id, principal, expires_at) = joining?;
            let user = principal.user.clone();
            let reader = principal.reader();
            let (room, peer) = hub
                .join_live(&id, user.clone(), reader, expires_at, since, outbox.clone())
                .await
                .map_err(CloseReason::from)?;
            tracing::debug!(room = %room.id(), peer, %user, "live connected");
            Ok(LiveSession {
                hub,
                room,
                peer,
                principal,
                outbox,
                metrics,
            })
        },
    )
    .await
}

/// How a JSON WebSocket of this hub is served: text frames, messages up to `max_message`.
fn text_settings(hub: &Hub<Outbox>, max_message: usize) -> Settings {
    Settings {
        max_message,
        opcode: Opcode::Text,
        send_queue: hub.config().send_queue,
        rate: hub.config().message_rate,
    }
}

/// A `/live` connection that has joined its room.
struct LiveSession {
    hub: Hub<Outbox>,
    room: Arc<Room<Outbox>>,
    peer: PeerId,
    principal: Principal,
    outbox: Arc<Outbox>,
    metrics: Arc<Metrics>,
}

impl Handler for LiveSession {
    async fn on_message(&mut self, message: Message) -> Option<CloseReason> {
        let text = match message {
            Message::Text(t) => t,
            _ => return Some(CloseReason::binary_frame()),
        };
        let reply = self.answer(text.as_str()).await;
        // A full outbox means the room is cutting this connection off anyway.
        let _ = self
            .outbox
            .send(encode(&ServerMessage::Control(reply)), &self.metrics);
        None
    }

    fn on_end(&mut self, reason: Option<&CloseReason>) {
        self.room.leave_live(self.peer);
        session::log_end(self.room.id(), self.peer, reason);
    }
}

impl LiveSession {
    /// The `ack` or `error` for one client message.
    async fn answer(&self, text: &str) -> Control {
        let command = match parse_command(text) {
            Ok(c) => c,
            Err(refusal) => return refusal,
        };
        let id = command.id;
        match service::apply(&self.hub, self.room.id(), &self.principal, &command.command).await {
            Ok(accepted) => Control::Ack {
                id,
                seq: accepted.seq,
                created_id: accepted.created_id,
            },
            Err(e) => Control::Error {
                id: Some(id),
                error: e.into(),
            },
        }
    }
}

/// Reads one client message as a command, or the `error` that answers it: not JSON, not a
/// command, or an id that is empty or longer than [`MAX_COMMAND_ID`] characters. Pure (the
/// fuzz target `live_command` drives it).
pub fn parse_command(text: &str) -> Result<ClientCommand, Control> {
    let command: ClientCommand = match serde_json::from_str(text) {
        Ok(c) => c,
        Err(e) => {
            return Err(Control::Error {
                id: id_of(text),
                error: ErrorBody::protocol(
                    ProtocolErrorCode::BadRequest,
                    format!("not a command: {e}"),
                ),
            })
        }
    };
    if command.id.is_empty() || command.id.chars().count() > MAX_COMMAND_ID {
        let mut error = ErrorBody::protocol(
            ProtocolErrorCode::BadRequest,
            format!("a command id is 1 to {MAX_COMMAND_ID} characters"),
        );
        error.field = Some("id".into());
        return Err(Control::Error { id: None, error });
    }
    Ok(command)
}

/// The `id` of a message that is not a valid command, when it has one.
fn id_of(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let id = value.get("id")?.as_str()?;
    (!id.is_empty() && id.chars().count() <= MAX_COMMAND_ID).then(|| id.to_owned())
}
