//! `GET /live/~inbox`: the caller's mentions from every room they may read, live, as JSON text
//! frames (`proto/PROTOCOL.md`, "The inbox"). The inboxes themselves are the room core's
//! ([`crate::room::inbox`]); this file connects one to a WebSocket and decides, from the
//! caller's token, which mentions it may be shown.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tungstenite::Message;

use crate::auth::Caller;
use crate::hub::Hub;
use crate::protocol::live::{encode, Control, ErrorBody, ProtocolErrorCode, ServerMessage};
use crate::protocol::CloseReason;
use crate::room::inbox::MayRead;
use crate::ws::session::{self, Handler};
use crate::ws::{Outbox, Upgraded};

/// Largest message accepted on the inbox (it takes none; each gets an `error`).
const MAX_INBOX_MESSAGE: usize = 4096;

/// Serves one upgraded `/live/~inbox` socket until it ends. `caller` has a user.
pub async fn serve(
    up: Upgraded,
    hub: Hub<Outbox>,
    caller: Caller,
    since: Option<u64>,
    shutdown: CancellationToken,
) {
    let settings = super::text_settings(&hub, MAX_INBOX_MESSAGE);
    let metrics = hub.metrics().clone();
    session::serve(
        up,
        settings,
        metrics.clone(),
        shutdown,
        |outbox| async move {
            let user = caller
                .user()
                .cloned()
                .ok_or_else(|| CloseReason::unauthenticated("the inbox is a user's"))?;
            // A mention is shown when the caller may read the room it was made in (its org, a
            // role or the org's public objectives) and the objective it is about.
            let may_read: MayRead = Arc::new(move |room, audience| {
                caller.access(room).is_ok_and(|access| {
                    (access.reader(caller.user())).may_read_audience(Some(audience))
                })
            });
            let id = hub
                .inboxes()
                .subscribe(user.as_str(), since, outbox.clone(), may_read);
            tracing::debug!(%user, "inbox connected");
            Ok(InboxSession {
                hub,
                user,
                id,
                outbox,
                metrics,
            })
        },
    )
    .await
}

struct InboxSession {
    hub: Hub<Outbox>,
    user: crate::identity::UserId,
    id: u64,
    outbox: Arc<Outbox>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Handler for InboxSession {
    async fn on_message(&mut self, message: Message) -> Option<CloseReason> {
        if !matches!(message, Message::Text(_)) {
            return Some(CloseReason::binary_frame());
        }
        // The inbox is read-only: say so, keep the connection.
        let error = Control::Error {
            id: None,
            error: ErrorBody::protocol(
                ProtocolErrorCode::BadRequest,
                "the inbox takes no commands; send them to /live/{room}",
            ),
        };
        let _ = self
            .outbox
            .send(encode(&ServerMessage::Control(error)), &self.metrics);
        None
    }

    fn on_end(&mut self, _reason: Option<&CloseReason>) {
        self.hub.inboxes().unsubscribe(self.user.as_str(), self.id);
    }
}
