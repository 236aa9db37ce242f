//! One `/live/{room}` WebSocket: JSON text frames (`proto/PROTOCOL.md`).
//!
//! On join the client gets a `snapshot` (or, with `?since=SEQ`, a `resumed` and the events it
//! missed), then every event of the room as it happens. It may send commands; each is answered
//! by an `ack` once its change is durable, or an `error` — after the events the command caused,
//! which the client thus sees first. A command that cannot be read is answered with an `error`
//! too: one bad message does not cost the connection. Binary frames and oversized messages do
//! (1003, 1009).
//!
//! The transport is [`crate::hub::socket`], shared with `/sync`.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tungstenite::Message;

use super::messages::{ClientCommand, Control, ErrorBody, ProtocolErrorCode, ServerMessage};
use super::projector::encode;
use crate::hub::connection::log_end;
use crate::hub::socket::{self, Conn, Handler};
use crate::hub::{CommandRefused, Hub, Outbox, Room};
use crate::identity::{IdentityError, UserId};
use crate::metrics::Metrics;
use crate::protocol::CloseReason;
use crate::room_id::{RoomId, RoomIdError};
use crate::ws::{Opcode, Upgraded};

/// Largest `/live` message accepted: commands are small.
pub const MAX_LIVE_MESSAGE: usize = 256 * 1024;

/// Longest client command id.
const MAX_COMMAND_ID: usize = 64;

/// Serves one upgraded `/live/{room}` socket until it ends.
pub async fn serve(
    up: Upgraded,
    hub: Hub,
    room: Result<RoomId, RoomIdError>,
    user: Result<UserId, IdentityError>,
    since: Option<u64>,
    shutdown: CancellationToken,
) {
    let metrics = hub.metrics().clone();
    metrics.connections.inc();
    let mut conn = Conn::new(up, MAX_LIVE_MESSAGE);
    let (id, user) = match (room, user) {
        (Ok(id), Ok(user)) => (id, user),
        (room, user) => {
            let reason = match (room, user) {
                (Err(e), _) => CloseReason::invalid_room(e),
                (_, Err(e)) => CloseReason::new(1008, "unauthenticated", e.to_string()),
                _ => CloseReason::normal(),
            };
            tracing::info!(reason = %reason.text, "refused /live connection");
            Box::pin(socket::refuse(&mut conn, reason, Opcode::Text, &metrics)).await;
            metrics.connections.dec();
            return;
        }
    };
    let joined = Box::pin(async {
        tokio::select! {
            j = hub.join_live(&id, user.clone(), since) => Some(j),
            _ = shutdown.cancelled() => None,
        }
    })
    .await;
    match joined {
        None => {
            let reason = CloseReason::going_away();
            Box::pin(socket::refuse(&mut conn, reason, Opcode::Text, &metrics)).await;
        }
        Some(Err(e)) => {
            tracing::error!(error = %e, "join failed");
            let reason = CloseReason::load_failed();
            Box::pin(socket::refuse(&mut conn, reason, Opcode::Text, &metrics)).await;
        }
        Some(Ok((room, joined))) => {
            joined.outbox.attach(conn.socket(), &metrics);
            if shutdown.is_cancelled() {
                joined.outbox.close(CloseReason::going_away());
            }
            tracing::debug!(room = %room.id(), peer = joined.peer, %user, "live connected");
            let mut handler = LiveHandler {
                room,
                user,
                outbox: joined.outbox.clone(),
                metrics: metrics.clone(),
            };
            socket::run(&mut conn, &joined.outbox, &mut handler, &metrics).await;
            handler.room.leave_live(joined.peer);
            log_end(&handler.room, joined.peer, joined.outbox.reason());
            Box::pin(socket::finish(&mut conn, &joined.outbox, &metrics)).await;
        }
    }
    metrics.connections.dec();
}

struct LiveHandler {
    room: Arc<Room>,
    user: UserId,
    outbox: Arc<Outbox>,
    metrics: Arc<Metrics>,
}

impl Handler for LiveHandler {
    async fn on_message(&mut self, message: Message) -> Option<CloseReason> {
        let text = match message {
            Message::Text(t) => t,
            _ => {
                return Some(CloseReason::new(
                    1003,
                    "binary_frame",
                    "/live speaks JSON text frames; Yjs binary frames go to /sync",
                ))
            }
        };
        let reply = self.answer(text.as_str()).await;
        // A full outbox means the room is cutting this connection off anyway.
        let _ = self
            .outbox
            .send(encode(&ServerMessage::Control(reply)), &self.metrics);
        None
    }
}

impl LiveHandler {
    /// The `ack` or `error` for one client message.
    async fn answer(&self, text: &str) -> Control {
        let command: ClientCommand = match serde_json::from_str(text) {
            Ok(c) => c,
            Err(e) => {
                return Control::Error {
                    id: id_of(text),
                    error: ErrorBody::protocol(
                        ProtocolErrorCode::BadRequest,
                        format!("not a command: {e}"),
                    ),
                }
            }
        };
        if command.id.is_empty() || command.id.chars().count() > MAX_COMMAND_ID {
            let mut error = ErrorBody::protocol(
                ProtocolErrorCode::BadRequest,
                format!("a command id is 1 to {MAX_COMMAND_ID} characters"),
            );
            error.field = Some("id".into());
            return Control::Error { id: None, error };
        }
        let id = command.id;
        match apply(&self.room, &command.command, &self.user).await {
            Ok((seq, created_id)) => Control::Ack {
                id,
                seq,
                created_id,
            },
            Err(error) => Control::Error {
                id: Some(id),
                error,
            },
        }
    }
}

/// Applies a command to a room the caller is in, and waits until it is durable.
pub async fn apply(
    room: &Room,
    command: &crate::okr::Command,
    user: &UserId,
) -> Result<(u64, Option<String>), ErrorBody> {
    let (seq, applied) = room.command(command, user).map_err(|e| match e {
        CommandRefused::Invalid(e) => ErrorBody::from(e),
        CommandRefused::Closing => {
            ErrorBody::protocol(ProtocolErrorCode::Unavailable, "the room is closing; retry")
        }
        CommandRefused::Unavailable(e) => ErrorBody::protocol(
            ProtocolErrorCode::Unavailable,
            format!("{e}; nothing changed, retry later"),
        ),
    })?;
    room.flush().await.map_err(|e| {
        tracing::error!(room = %room.id(), error = %e, "command applied but not confirmed durable");
        ErrorBody::protocol(
            ProtocolErrorCode::Unavailable,
            "the change was applied but could not be confirmed durable; retry later",
        )
    })?;
    Ok((seq, applied.created_id))
}

/// The `id` of a message that is not a valid command, when it has one.
fn id_of(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let id = value.get("id")?.as_str()?;
    (!id.is_empty() && id.chars().count() <= MAX_COMMAND_ID).then(|| id.to_owned())
}
