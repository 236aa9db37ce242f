//! A WebSocket session, the transport both protocols share: one task per connection, reading
//! the client's frames, and the connection's [`Outbox`] for everything sent to it. [`serve`]
//! is the whole life of a connection — join, read until the end, leave, close — and each
//! protocol (`/sync`, `/live`) only says how to join and what a message does ([`Handler`]).
//!
//! The upgraded `TcpStream` is shared (`Arc`): this task reads from it, and the outbox writes
//! to it — at a meeting's pace straight from whoever queued a frame (see `outbox.rs`), so the
//! task sleeps through deliveries and wakes only when the client sends something, when it is to
//! write (a stream of updates to batch, or a socket that was too full: it then waits until the
//! socket is writable and writes the rest), or when the connection is to close.
//!
//! Client frames are parsed by tungstenite's [`WebSocketContext`] (masking, fragments, control
//! frames, UTF-8, size limits) over a small adapter: reads come from the socket, and what
//! tungstenite writes by itself (pongs, the reply to a client's close) goes through the outbox,
//! in order with everything else. Messages go to the protocol's [`Handler`] one at a time.
//!
//! A connection ends because the client closes, the client sends something the protocol
//! refuses (the handler says why), the room cuts it off as a slow consumer, the keep-alive
//! closes it for silence ([`super::keepalive`]: the reads below note when the client was last
//! heard from), or the server shuts down. In the last four the client gets a close frame with
//! a code and a reason it can show, after what was queued for it (except for a slow
//! consumer). Then the server reads until the client's close frame in reply and drops the
//! socket (the server closes the TCP connection first, as RFC 6455 asks), all within
//! [`CLOSE_TIMEOUT`].

use std::future::{poll_fn, Future};
use std::io::{self, Read, Write};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tungstenite::error::ProtocolError;
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tungstenite::Message;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::keepalive::now_ms;
use super::{frame, Opcode, Outbox, Slot, Upgraded};
use crate::hub::RateLimit;
use crate::metrics::Metrics;
use crate::protocol::{CloseKind, CloseReason};
use crate::room::PeerId;
use crate::room_id::RoomId;

/// How long the server tries to deliver a close frame (and read the client's close frame in
/// reply) before it drops the socket.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Bytes tungstenite allocates up front per connection for reading, and reads per syscall.
/// y-sync frames are mostly tiny: 1 KiB (rather than the 128 KiB default) keeps an idle
/// connection cheap — measured at 9.3 KB → 6.2 KB of server RSS per idle connection going
/// from 4 KiB to 1 KiB — and a large frame still arrives, in more reads.
pub const READ_BUFFER: usize = 1024;

/// What a protocol does once its connection has joined a room.
pub trait Handler {
    /// Handles one binary or text message; returns the reason to close, if any.
    fn on_message(&mut self, message: Message) -> impl Future<Output = Option<CloseReason>>;

    /// The connection has ended (`reason`: why, when the server closed it or the client
    /// did): leave the room. Runs before the close handshake, so the room stops queueing.
    fn on_end(&mut self, reason: Option<&CloseReason>);
}

/// How one endpoint's connections are served.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Largest message accepted from the client; larger closes with 1009.
    pub max_message: usize,
    /// The opcode of the data frames sent (binary for y-sync, text for JSON).
    pub opcode: Opcode,
    /// Frames the connection may have queued before the room cuts it off.
    pub send_queue: usize,
    /// Messages a second the client may send (every message counts, pings too); beyond it
    /// the connection is closed (1008). None: no limit.
    pub rate: Option<RateLimit>,
}

/// Serves one upgraded socket until it ends. `join` subscribes the connection's outbox to its
/// room and returns the protocol's handler, or the reason to refuse the connection (an invalid
/// room, a room that could not be loaded): the client then gets a close frame saying why. A
/// join still waiting when the server shuts down is abandoned (1001).
pub async fn serve<H, F>(
    up: Upgraded,
    settings: Settings,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    join: impl FnOnce(Arc<Outbox>) -> F,
) where
    H: Handler,
    F: Future<Output = Result<H, CloseReason>>,
{
    metrics.connections.inc();
    // Boxed (inside `Session::new`), like every rare path below: an async fn is as large as
    // its largest state, and this task lives as long as the connection.
    let mut session = Session::new(up, settings.max_message, settings.rate);
    let outbox = Arc::new(Outbox::new(settings.send_queue.max(4), settings.opcode));
    let joined = Box::pin(async {
        tokio::select! {
            j = join(outbox.clone()) => j,
            _ = shutdown.cancelled() => Err(CloseReason::going_away()),
        }
    })
    .await;
    outbox.attach(session.socket(), &metrics);
    session.watch(&outbox);
    match joined {
        Err(reason) => {
            if !reason.kind.is_ordinary() {
                tracing::info!(code = reason.code(), reason = %reason.text, "refused connection");
            }
            outbox.close(reason);
        }
        Ok(mut handler) => {
            if shutdown.is_cancelled() {
                // Joined during shutdown, possibly after the hub closed every connection.
                outbox.close(CloseReason::going_away());
            }
            run(&mut session, &outbox, &mut handler, &metrics).await;
            handler.on_end(outbox.reason().as_ref());
        }
    }
    Box::pin(finish(&mut session, &outbox, &metrics)).await;
    metrics.connections.dec();
    // The outbox, then the session: the keep-alive lets go, the connection's slot is given
    // back, and then the socket closes (so a client that saw it close finds the slot free).
    drop(outbox);
    drop(session);
}

/// Logs why a connection of `room` ended: refusals at info, the rest at debug.
pub fn log_end(room: &RoomId, peer: PeerId, reason: Option<&CloseReason>) {
    match reason {
        Some(r) if !r.kind.is_ordinary() => {
            tracing::info!(%room, peer, code = r.code(), reason = %r.text, "closing connection")
        }
        _ => tracing::debug!(%room, peer, "disconnected"),
    }
}

/// An upgraded connection: the shared socket and the state of the client's frame stream.
pub struct Session {
    /// The connection's place under the server's caps. Declared before the socket: fields drop
    /// in order, so the slot is free before the socket closes.
    slot: Option<Arc<Slot>>,
    /// The connection's key in the keep-alive sweep, while it is watched.
    keepalive: Option<usize>,
    socket: Arc<TcpStream>,
    ws: WebSocketContext,
    /// The client sent a close frame; tungstenite has answered it.
    peer_closed: bool,
    /// The client's message rate, and the bucket it is held to.
    rate: Option<(RateLimit, DefaultDirectRateLimiter)>,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let (Some(slot), Some(key)) = (&self.slot, self.keepalive.take()) {
            slot.connections().keepalive().unregister(key);
        }
    }
}

impl Session {
    /// Takes over an upgraded socket whose client may send messages of up to `max_message`
    /// bytes. Boxed: the connection's task lives long, and every byte of it counts per idle
    /// connection.
    pub fn new(up: Upgraded, max_message: usize, rate: Option<RateLimit>) -> Box<Session> {
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_message_size(Some(max_message))
            .max_frame_size(Some(max_message));
        Box::new(Session {
            slot: up.slot,
            keepalive: None,
            socket: Arc::new(up.stream),
            ws: WebSocketContext::from_partially_read(up.read_buf, Role::Server, Some(config)),
            peer_closed: false,
            rate: rate.and_then(|r| {
                let quota = Quota::per_second(NonZeroU32::new(r.per_second)?)
                    .allow_burst(NonZeroU32::new(r.burst.max(r.per_second))?);
                Some((r, RateLimiter::direct(quota)))
            }),
        })
    }

    /// Takes one message from the client's bucket: the reason to close when it is empty.
    fn over_rate(&self, metrics: &Metrics) -> Option<CloseReason> {
        let (limit, bucket) = self.rate.as_ref()?;
        bucket.check().err()?;
        metrics.count_limit("message_rate");
        Some(CloseReason::rate_limited(limit.per_second, limit.burst))
    }

    /// The socket, for [`Outbox::attach`].
    pub fn socket(&self) -> Arc<TcpStream> {
        self.socket.clone()
    }

    /// Puts the connection under the server's keep-alive (pings, the idle timeout) until the
    /// session drops.
    pub fn watch(&mut self, outbox: &Arc<Outbox>) {
        if let Some(slot) = &self.slot {
            self.keepalive = slot.connections().keepalive().register(outbox);
        }
    }
}

/// tungstenite's view of the connection: reads from the socket (`WouldBlock` when it has
/// nothing), writes into the outbox.
struct Io<'a> {
    socket: &'a TcpStream,
    outbox: &'a Outbox,
    metrics: &'a Metrics,
}

fn io<'a>(socket: &'a TcpStream, outbox: &'a Outbox, metrics: &'a Metrics) -> Io<'a> {
    Io {
        socket,
        outbox,
        metrics,
    }
}

impl Read for Io<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.socket.try_read(buf);
        if matches!(read, Ok(n) if n > 0) {
            // Anything at all (a frame, part of one, a pong) shows the client is there.
            self.outbox.heard(now_ms());
        }
        read
    }
}

impl Write for Io<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outbox
            .send_control(Bytes::copy_from_slice(buf), self.metrics)
            .map_err(|_| io::Error::other("too many control frames queued"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs the connection until its outbox is closed (the reason is in the outbox) or the socket
/// fails. The caller then unsubscribes from the room and calls [`finish`].
async fn run<H: Handler>(conn: &mut Session, outbox: &Outbox, handler: &mut H, metrics: &Metrics) {
    let limit = conn.ws.get_config().max_message_size.unwrap_or(usize::MAX);
    loop {
        // Everything the socket holds now (the first turn also parses what came with the
        // upgrade request).
        loop {
            let read = conn.ws.read(&mut io(&conn.socket, outbox, metrics));
            let over = match &read {
                Ok(Message::Close(_)) | Err(_) => None,
                Ok(_) => conn.over_rate(metrics),
            };
            let refused = match read {
                _ if over.is_some() => over,
                Ok(data @ (Message::Binary(_) | Message::Text(_))) => {
                    metrics.frames_in.inc();
                    metrics.bytes_in.inc_by(data.len() as u64);
                    handler.on_message(data).await
                }
                Ok(Message::Close(_)) => {
                    // Writes tungstenite's reply through the outbox.
                    conn.peer_closed = true;
                    let _ = conn.ws.flush(&mut io(&conn.socket, outbox, metrics));
                    Some(CloseReason::normal())
                }
                Ok(_) => None, // ping (answered by tungstenite), pong
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => Some(read_error(&e, limit)),
            };
            if let Some(reason) = refused {
                outbox.close(reason);
            }
            if outbox.is_closed() {
                return;
            }
        }
        if poll_fn(|cx| poll_wait(cx, &conn.socket, outbox, metrics))
            .await
            .is_none()
        {
            return;
        }
    }
}

/// Waits until the socket has something to read (`Some`), writing the frames handed to this
/// task whenever the socket can take them; `None` once the outbox is closed.
fn poll_wait(
    cx: &mut Context<'_>,
    socket: &TcpStream,
    outbox: &Outbox,
    metrics: &Metrics,
) -> Poll<Option<()>> {
    outbox.register(cx.waker());
    loop {
        if outbox.is_closed() {
            return Poll::Ready(None);
        }
        if outbox.task_writes() {
            match socket.poll_write_ready(cx) {
                Poll::Ready(Ok(())) => {
                    outbox.resume(metrics);
                    continue;
                }
                Poll::Ready(Err(_)) => {
                    outbox.close(CloseReason::gone());
                    continue;
                }
                Poll::Pending => {}
            }
        }
        return match socket.poll_read_ready(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Some(())),
            Poll::Ready(Err(_)) => {
                outbox.close(CloseReason::gone());
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        };
    }
}

/// The close a client gets for a frame stream tungstenite refused; `gone` when the socket just
/// ended.
fn read_error(e: &tungstenite::Error, limit: usize) -> CloseReason {
    use tungstenite::Error as E;
    match e {
        E::Capacity(_) => CloseReason::too_big(limit),
        E::Protocol(ProtocolError::ResetWithoutClosingHandshake) => CloseReason::gone(),
        E::Protocol(p) => CloseReason::malformed(p),
        E::Utf8(_) => CloseReason::malformed("invalid UTF-8"),
        E::Io(err) => {
            tracing::debug!(error = %err, "socket read failed");
            CloseReason::gone()
        }
        _ => CloseReason::gone(),
    }
}

/// Ends a connection whose outbox was closed: delivers what was queued before the close (a
/// shutdown must not eat the last update) unless the peer is being cut off for falling behind,
/// then the close frame, and waits for the client's close frame in reply; the socket is closed
/// when the connection's last handle drops (the server closes first, as RFC 6455 asks). All
/// within [`CLOSE_TIMEOUT`]. Boxed by callers: it is rare, and the task lives long.
async fn finish(conn: &mut Session, outbox: &Outbox, metrics: &Metrics) {
    let Some(reason) = outbox.reason() else {
        return;
    };
    match reason.kind {
        CloseKind::Gone => return,
        CloseKind::SlowConsumer => outbox.discard_unstarted(),
        _ => {}
    }
    let Session {
        socket,
        ws,
        peer_closed,
        ..
    } = conn;
    if !*peer_closed {
        if reason.kind != CloseKind::Normal {
            metrics.count_close(reason.kind.label());
        }
        // Through tungstenite, so that it knows the client's close frame is the reply.
        let _ = ws.close(
            &mut io(socket, outbox, metrics),
            Some(frame::close(reason.code(), &reason.text)),
        );
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        while !outbox.is_empty() {
            if socket.writable().await.is_err() {
                return;
            }
            outbox.resume(metrics);
        }
        if *peer_closed {
            return;
        }
        loop {
            match ws.read(&mut io(socket, outbox, metrics)) {
                Ok(Message::Close(_)) => return,
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    if socket.readable().await.is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    })
    .await;
}
