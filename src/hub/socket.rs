//! The transport both WebSocket protocols share: one task per connection, over the unsplit
//! socket, moving frames between the client and the connection's [`Outbox`].
//!
//! The task waits for either side: frames queued in the outbox (by the room, under its lock),
//! or a message from the client. Queued frames go first, as a burst (every frame already
//! queued, up to [`MAX_BURST`]) followed by one flush, so a burst costs one write syscall
//! rather than one per message. Messages from the client go to the protocol's [`Handler`].
//!
//! Keeping both directions in one `poll_fn`, rather than a split socket and a reader and a
//! writer future in a `select!`, saves the split's shared lock and most of the task's size: an
//! idle connection is one small task, its outbox and tungstenite's read buffer (3.3 KiB of RSS
//! in all, see `load-tests/RESULTS.md`). A socket that cannot take more right now does not stop
//! reading: the room cuts the peer off if its outbox overflows meanwhile.
//!
//! A connection ends because the client closes, the client sends something the protocol
//! refuses (the handler says why), the room cuts it off as a slow consumer, or the server shuts
//! down. In the last three the client gets a close frame with a code and a reason it can show,
//! within [`CLOSE_TIMEOUT`], after what was queued for it (except for a slow consumer).

use std::future::{poll_fn, Future};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};

use super::Outbox;
use crate::metrics::Metrics;
use crate::protocol::CloseReason;

/// How long the server tries to deliver a close frame before it drops the socket.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Most frames written between two flushes.
const MAX_BURST: usize = 64;

/// What a protocol does with the client's data frames.
pub trait Handler {
    /// Wraps a queued frame for the wire (binary for y-sync, text for JSON).
    fn frame(bytes: Bytes) -> WsMessage;

    /// Handles one binary or text message; returns the reason to close, if any.
    fn on_message(&mut self, message: WsMessage) -> impl Future<Output = Option<CloseReason>>;
}

/// Runs the connection until its outbox is closed (the reason is in the outbox) or the socket
/// fails. The caller then unsubscribes from the room and calls [`finish`].
pub async fn run<H: Handler>(
    ws: &mut WebSocket,
    outbox: &Outbox,
    handler: &mut H,
    metrics: &Metrics,
    max_message_size: usize,
) {
    let mut batch = Vec::new();
    let mut flushing = false;
    while let Some(message) =
        poll_fn(|cx| poll_event::<H>(cx, ws, outbox, metrics, &mut batch, &mut flushing)).await
    {
        let refused = match message {
            None | Some(Ok(WsMessage::Close(_))) => Some(CloseReason::normal()),
            Some(Err(e)) => classify_read_error(&e, max_message_size).or_else(|| {
                tracing::debug!(error = %e, "socket error");
                Some(CloseReason::gone())
            }),
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => None,
            Some(Ok(data)) => {
                let len = match &data {
                    WsMessage::Binary(b) => b.len(),
                    WsMessage::Text(t) => t.len(),
                    _ => 0,
                };
                metrics.frames_in.inc();
                metrics.bytes_in.inc_by(len as u64);
                handler.on_message(data).await
            }
        };
        if let Some(reason) = refused {
            outbox.close(reason);
        }
    }
}

/// Ends a connection whose outbox was closed: delivers what was queued before the close (a
/// shutdown must not eat the last update) unless the peer is being cut off for falling behind,
/// then sends the close frame. Boxed by callers: it is rare, and the task lives long.
pub async fn finish<H: Handler>(ws: &mut WebSocket, outbox: &Outbox, metrics: &Metrics) {
    let Some(reason) = outbox.reason() else {
        return;
    };
    if reason.label != "slow_consumer" && reason.label != "gone" {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, drain::<H>(ws, outbox, metrics)).await;
    }
    send_close(ws, &reason, metrics).await;
}

/// `Some(message)` from the client, or `None` once the outbox is closed or the socket failed.
fn poll_event<H: Handler>(
    cx: &mut Context<'_>,
    ws: &mut WebSocket,
    outbox: &Outbox,
    metrics: &Metrics,
    batch: &mut Vec<Bytes>,
    flushing: &mut bool,
) -> Poll<Option<Option<Result<WsMessage, axum::Error>>>> {
    loop {
        if *flushing {
            match ws.poll_flush_unpin(cx) {
                Poll::Ready(Ok(())) => *flushing = false,
                Poll::Ready(Err(_)) => return Poll::Ready(None),
                Poll::Pending => break,
            }
        }
        if outbox.is_closed() {
            return Poll::Ready(None);
        }
        match ws.poll_ready_unpin(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => return Poll::Ready(None),
            Poll::Pending => break,
        }
        if outbox.poll_frames(cx, batch, MAX_BURST).is_pending() || batch.is_empty() {
            // Nothing queued (the waker is registered), or closed (seen on the next turn).
            if outbox.is_closed() {
                return Poll::Ready(None);
            }
            break;
        }
        for frame in batch.drain(..) {
            count_out(metrics, &frame);
            if ws.start_send_unpin(H::frame(frame)).is_err() {
                return Poll::Ready(None);
            }
        }
        *flushing = true;
    }
    ws.poll_next_unpin(cx).map(Some)
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
async fn drain<H: Handler>(
    ws: &mut WebSocket,
    outbox: &Outbox,
    metrics: &Metrics,
) -> Result<(), axum::Error> {
    let mut frames = Vec::new();
    outbox.take(&mut frames, usize::MAX);
    for frame in frames {
        count_out(metrics, &frame);
        ws.feed(H::frame(frame)).await?;
    }
    ws.flush().await
}

/// Sends a close frame with `reason` (nothing for a socket that is gone).
pub async fn send_close(ws: &mut WebSocket, reason: &CloseReason, metrics: &Metrics) {
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
