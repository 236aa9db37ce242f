//! One `/sync` WebSocket connection, served by one task over the unsplit socket.
//!
//! The task waits for either side: frames queued in its [`Outbox`] by the room, or a message
//! from the client. Queued frames go first, as a burst (every frame already queued, up to
//! [`MAX_BURST`]) followed by one flush, so a burst costs one write syscall rather than one per
//! message. Messages from the client are decoded and handed to the room inline. Keeping both
//! directions in one `poll_fn` rather than a split socket and two futures in a `select!` saves
//! the split's shared lock and most of the task's size: an idle connection is one small task,
//! its outbox and tungstenite's read buffer (see `load-tests/RESULTS.md` for the bytes).
//!
//! A connection ends for one of four reasons: the client closes; the client sends something
//! the server refuses (a malformed or oversized frame, a text frame); the room cuts it off as a
//! slow consumer; or the server shuts down. In the last three the writer sends a close frame
//! with a code and a reason the client can show, within [`CLOSE_TIMEOUT`].

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket};
use bytes::Bytes;
use std::future::poll_fn;
use std::task::{Context, Poll};

use futures_util::{SinkExt, StreamExt};
use tokio_util::sync::CancellationToken;

use super::{Hub, Outbox, PeerId, Room};
use crate::metrics::Metrics;
use crate::protocol::CloseReason;
use crate::room_id::{RoomId, RoomIdError};

/// How long the server tries to deliver a close frame before it drops the socket.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Most frames written between two flushes.
const MAX_BURST: usize = 64;

/// Serves one upgraded `/sync/{room}` socket until it ends.
///
/// The socket comes boxed: held inline, its ~370 bytes would be laid out in several states of
/// this async fn and of the futures it awaits, and this task lives as long as the connection.
pub async fn serve(
    socket: Box<WebSocket>,
    hub: Hub,
    room: Result<RoomId, RoomIdError>,
    max_message_size: usize,
    shutdown: CancellationToken,
) {
    let metrics = hub.metrics().clone();
    metrics.connections.inc();
    let mut ws = socket;
    match room {
        Err(e) => {
            let reason = CloseReason::invalid_room(e);
            tracing::info!(reason = %reason.text, "refused connection");
            Box::pin(send_close(&mut ws, &reason, &metrics)).await;
        }
        Ok(id) => {
            // Boxed, like every rare path below: an async fn is as large as its largest
            // state, and this task lives as long as the connection.
            let joined = Box::pin(async {
                tokio::select! {
                    j = hub.join(&id) => Some(j),
                    _ = shutdown.cancelled() => None,
                }
            })
            .await;
            match joined {
                None => Box::pin(send_close(&mut ws, &CloseReason::going_away(), &metrics)).await,
                Some(Err(e)) => {
                    tracing::error!(error = %e, "join failed");
                    Box::pin(send_close(&mut ws, &CloseReason::load_failed(), &metrics)).await;
                }
                Some(Ok((room, joined))) => {
                    if shutdown.is_cancelled() {
                        // Joined during shutdown, possibly after the hub closed every peer.
                        joined.outbox.close(CloseReason::going_away());
                    }
                    let session = Session {
                        room,
                        peer: joined.peer,
                        outbox: joined.outbox,
                        metrics: metrics.clone(),
                        max_message_size,
                    };
                    session.run(&mut ws).await;
                }
            }
        }
    }
    metrics.connections.dec();
}

struct Session {
    room: Arc<Room>,
    peer: PeerId,
    outbox: Arc<Outbox>,
    metrics: Arc<Metrics>,
    max_message_size: usize,
}

/// What woke the session up.
enum Event {
    /// A message (or a read error) from the client.
    Received(Option<Result<WsMessage, axum::Error>>),
    /// The outbox was closed (by this session, the room, or the server), or writing to the
    /// socket failed: the client is gone.
    Stop,
}

impl Session {
    /// Runs the connection in one task over the unsplit socket: no lock shared by a reader and
    /// a writer half, no second future, and an idle connection is one small task.
    async fn run(self, ws: &mut WebSocket) {
        tracing::debug!(room = %self.room.id(), peer = self.peer, "connected");
        let mut batch = Vec::new();
        let mut flushing = false;
        while let Event::Received(message) =
            poll_fn(|cx| self.poll_event(cx, ws, &mut batch, &mut flushing)).await
        {
            if let Some(reason) = self.on_message(message) {
                if reason.label != "normal" {
                    tracing::info!(room = %self.room.id(), peer = self.peer, code = reason.code, reason = %reason.text, "closing connection");
                }
                self.outbox.close(reason);
            }
        }
        self.room.leave(self.peer);
        if let Some(reason) = self.outbox.reason() {
            Box::pin(self.finish(ws, &reason)).await;
        }
        tracing::debug!(room = %self.room.id(), peer = self.peer, "disconnected");
    }

    /// Delivers what was queued before the close (a shutdown must not eat the last update),
    /// unless this peer is being cut off for falling behind, then the close frame.
    async fn finish(&self, ws: &mut WebSocket, reason: &CloseReason) {
        if reason.label != "slow_consumer" && reason.label != "gone" {
            let _ =
                tokio::time::timeout(CLOSE_TIMEOUT, drain(ws, &self.outbox, &self.metrics)).await;
        }
        send_close(ws, reason, &self.metrics).await;
    }

    /// Sends what is queued (a burst of frames, then one flush), then reads. A socket that
    /// cannot take more right now does not stop reading: the room cuts the peer off if its
    /// queue overflows meanwhile.
    fn poll_event(
        &self,
        cx: &mut Context<'_>,
        ws: &mut WebSocket,
        batch: &mut Vec<Bytes>,
        flushing: &mut bool,
    ) -> Poll<Event> {
        loop {
            if *flushing {
                match ws.poll_flush_unpin(cx) {
                    Poll::Ready(Ok(())) => *flushing = false,
                    Poll::Ready(Err(_)) => return Poll::Ready(Event::Stop),
                    Poll::Pending => break,
                }
            }
            if self.outbox.is_closed() {
                return Poll::Ready(Event::Stop);
            }
            match ws.poll_ready_unpin(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Poll::Ready(Event::Stop),
                Poll::Pending => break,
            }
            if self.outbox.poll_frames(cx, batch, MAX_BURST).is_pending() || batch.is_empty() {
                // Nothing queued (the waker is registered), or closed: checked above next time.
                if self.outbox.is_closed() {
                    return Poll::Ready(Event::Stop);
                }
                break;
            }
            for frame in batch.drain(..) {
                count_out(&self.metrics, &frame);
                if ws.start_send_unpin(WsMessage::Binary(frame)).is_err() {
                    return Poll::Ready(Event::Stop);
                }
            }
            *flushing = true;
        }
        ws.poll_next_unpin(cx).map(Event::Received)
    }

    /// Handles one message from the client; the reason to close, if any.
    fn on_message(&self, message: Option<Result<WsMessage, axum::Error>>) -> Option<CloseReason> {
        match message {
            None | Some(Ok(WsMessage::Close(_))) => Some(CloseReason::normal()),
            Some(Err(e)) => classify_read_error(&e, self.max_message_size).or_else(|| {
                tracing::debug!(peer = self.peer, error = %e, "socket error");
                Some(CloseReason::gone())
            }),
            Some(Ok(WsMessage::Binary(data))) => {
                self.metrics.frames_in.inc();
                self.metrics.bytes_in.inc_by(data.len() as u64);
                self.room.receive(self.peer, data).err()
            }
            Some(Ok(WsMessage::Text(_))) => Some(CloseReason::text_frame()),
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => None,
        }
    }
}

/// Maps a read error to the close the client should get; None when the socket is just gone.
fn classify_read_error(e: &axum::Error, limit: usize) -> Option<CloseReason> {
    use std::error::Error as _;
    let mut source = e.source();
    while let Some(err) = source {
        if let Some(ws) = err.downcast_ref::<tungstenite::Error>() {
            return match ws {
                tungstenite::Error::Capacity(_) => Some(CloseReason::too_big(limit)),
                tungstenite::Error::Protocol(p) => Some(CloseReason::malformed(p)),
                tungstenite::Error::Utf8(_) => Some(CloseReason::malformed("invalid UTF-8")),
                _ => None,
            };
        }
        source = err.source();
    }
    None
}

fn count_out(metrics: &Metrics, frame: &Bytes) {
    metrics.frames_out.inc();
    metrics.bytes_out.inc_by(frame.len() as u64);
}

/// Sends what is still queued (the room no longer adds to it).
async fn drain(ws: &mut WebSocket, outbox: &Outbox, metrics: &Metrics) -> Result<(), axum::Error> {
    let mut frames = Vec::new();
    outbox.take(&mut frames, usize::MAX);
    for frame in frames {
        count_out(metrics, &frame);
        ws.feed(WsMessage::Binary(frame)).await?;
    }
    ws.flush().await
}

async fn send_close(ws: &mut WebSocket, reason: &CloseReason, metrics: &Metrics) {
    if reason.label == "gone" {
        return;
    }
    if reason.label != "normal" {
        metrics.count_close(reason.label);
    }
    let frame = CloseFrame {
        code: reason.code,
        reason: Utf8Bytes::from(reason.text.as_str()),
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        ws.send(WsMessage::Close(Some(frame))).await?;
        ws.close().await
    })
    .await;
}
#[cfg(test)]
mod tests {
    /// The size of the future an async fn item returns.
    fn future_size<A, B, C, D, E, F>(_: fn(A, B, C, D, E) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// The connection task lives as long as the connection: every byte of its future counts
    /// per idle connection (it was 1.9 KB with the socket and the join inline).
    #[test]
    fn the_connection_future_stays_small() {
        let size = future_size(super::serve);
        assert!(size <= 512, "serve() future grew to {size} bytes");
    }
}
