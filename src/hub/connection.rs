//! One `/sync` WebSocket connection: a reader and a writer over the split socket.
//!
//! The reader decodes frames and hands them to the room; the writer drains the connection's
//! bounded outbox, feeding every frame that is already queued and flushing once, so a burst
//! costs one write syscall rather than one per message. Both run in one task (`select!`), which
//! keeps an idle connection to one task and two small buffers.
//!
//! A connection ends for one of four reasons: the client closes; the client sends something
//! the server refuses (a malformed or oversized frame, a text frame); the room cuts it off as a
//! slow consumer; or the server shuts down. In the last three the writer sends a close frame
//! with a code and a reason the client can show, within [`CLOSE_TIMEOUT`].

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Hub, PeerControl, PeerId, Room};
use crate::metrics::Metrics;
use crate::protocol::CloseReason;
use crate::room_id::{RoomId, RoomIdError};

/// How long the server tries to deliver a close frame before it drops the socket.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Most frames written between two flushes.
const MAX_BURST: usize = 64;

/// Serves one upgraded `/sync/{room}` socket until it ends.
pub async fn serve(
    socket: WebSocket,
    hub: Hub,
    room: Result<RoomId, RoomIdError>,
    max_message_size: usize,
    shutdown: CancellationToken,
) {
    let metrics = hub.metrics().clone();
    metrics.connections.inc();
    let (mut sink, stream) = socket.split();
    match room {
        Err(e) => {
            let reason = CloseReason::invalid_room(e);
            tracing::info!(reason = %reason.text, "refused connection");
            send_close(&mut sink, &reason, &metrics).await;
        }
        Ok(id) => {
            let joined = tokio::select! {
                j = hub.join(&id) => Some(j),
                _ = shutdown.cancelled() => None,
            };
            match joined {
                None => send_close(&mut sink, &CloseReason::going_away(), &metrics).await,
                Some(Err(e)) => {
                    tracing::error!(error = %e, "join failed");
                    send_close(&mut sink, &CloseReason::load_failed(), &metrics).await;
                }
                Some(Ok((room, joined))) => {
                    let session = Session {
                        room,
                        peer: joined.peer,
                        control: joined.control,
                        metrics: metrics.clone(),
                        max_message_size,
                    };
                    session.run(sink, stream, joined.outbox, shutdown).await;
                }
            }
        }
    }
    metrics.connections.dec();
}

struct Session {
    room: Arc<Room>,
    peer: PeerId,
    control: Arc<PeerControl>,
    metrics: Arc<Metrics>,
    max_message_size: usize,
}

impl Session {
    async fn run(
        self,
        mut sink: SplitSink<WebSocket, WsMessage>,
        mut stream: SplitStream<WebSocket>,
        mut outbox: mpsc::Receiver<Bytes>,
        shutdown: CancellationToken,
    ) {
        tracing::debug!(room = %self.room.id(), peer = self.peer, "connected");
        {
            let writer = write_loop(&mut sink, &mut outbox, &self.control, &self.metrics);
            let reader = self.read_loop(&mut stream);
            tokio::select! {
                _ = writer => {}
                _ = reader => {}
                _ = shutdown.cancelled() => self.control.close(CloseReason::going_away()),
            }
        }
        self.room.leave(self.peer);
        if let Some(reason) = self.control.reason() {
            // Deliver what was queued before the close (a shutdown must not eat the last
            // update), unless this peer is being cut off for falling behind.
            if reason.label != "slow_consumer" {
                let _ = tokio::time::timeout(
                    CLOSE_TIMEOUT,
                    drain(&mut sink, &mut outbox, &self.metrics),
                )
                .await;
            }
            send_close(&mut sink, reason, &self.metrics).await;
        }
        tracing::debug!(room = %self.room.id(), peer = self.peer, "disconnected");
    }

    /// Reads frames until the client closes or sends something refused (then asks for a close
    /// with the reason).
    async fn read_loop(&self, stream: &mut SplitStream<WebSocket>) {
        loop {
            let frame = tokio::select! {
                f = stream.next() => f,
                _ = self.control.closed() => return,
            };
            let refused = match frame {
                None | Some(Ok(WsMessage::Close(_))) => {
                    self.control.close(CloseReason::normal());
                    return;
                }
                Some(Err(e)) => match classify_read_error(&e, self.max_message_size) {
                    Some(reason) => reason,
                    None => {
                        tracing::debug!(peer = self.peer, error = %e, "socket error");
                        return;
                    }
                },
                Some(Ok(WsMessage::Binary(data))) => {
                    self.metrics.frames_in.inc();
                    self.metrics.bytes_in.inc_by(data.len() as u64);
                    match self.room.receive(self.peer, data) {
                        Ok(()) => continue,
                        Err(reason) => reason,
                    }
                }
                Some(Ok(WsMessage::Text(_))) => CloseReason::text_frame(),
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
            };
            tracing::info!(room = %self.room.id(), peer = self.peer, code = refused.code, reason = %refused.text, "closing connection");
            self.control.close(refused);
            return;
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

/// Writes queued frames until the room drops this peer or a close is asked for.
async fn write_loop(
    sink: &mut SplitSink<WebSocket, WsMessage>,
    outbox: &mut mpsc::Receiver<Bytes>,
    control: &PeerControl,
    metrics: &Metrics,
) {
    loop {
        let first = tokio::select! {
            biased;
            _ = control.closed() => return,
            f = outbox.recv() => f,
        };
        let Some(first) = first else { return };
        let burst = async {
            feed(sink, first, metrics).await?;
            for _ in 1..MAX_BURST {
                match outbox.try_recv() {
                    Ok(frame) => feed(sink, frame, metrics).await?,
                    Err(_) => break,
                }
            }
            sink.flush().await
        };
        tokio::select! {
            r = burst => if r.is_err() { control.close(CloseReason::normal()); return },
            _ = control.closed() => return,
        }
    }
}

async fn feed(
    sink: &mut SplitSink<WebSocket, WsMessage>,
    frame: Bytes,
    metrics: &Metrics,
) -> Result<(), axum::Error> {
    metrics.frames_out.inc();
    metrics.bytes_out.inc_by(frame.len() as u64);
    sink.feed(WsMessage::Binary(frame)).await
}

/// Sends what is still queued (the room no longer adds to it).
async fn drain(
    sink: &mut SplitSink<WebSocket, WsMessage>,
    outbox: &mut mpsc::Receiver<Bytes>,
    metrics: &Metrics,
) -> Result<(), axum::Error> {
    outbox.close();
    while let Some(frame) = outbox.recv().await {
        feed(sink, frame, metrics).await?;
    }
    sink.flush().await
}

async fn send_close(
    sink: &mut SplitSink<WebSocket, WsMessage>,
    reason: &CloseReason,
    metrics: &Metrics,
) {
    if reason.label != "normal" {
        metrics.count_close(reason.label);
    }
    let frame = CloseFrame {
        code: reason.code,
        reason: Utf8Bytes::from(reason.text.as_str()),
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        sink.send(WsMessage::Close(Some(frame))).await?;
        sink.close().await
    })
    .await;
}
