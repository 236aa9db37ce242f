//! A connection's outgoing side: its queue of frames, the socket they go to, and its close
//! signal, in one small object shared by the room (which queues frames under its lock, through
//! the [`Sink`] interface) and the connection's task.
//!
//! # Who writes
//!
//! Whoever queues a frame on an empty outbox sees that it is written: the room queues under
//! its lock and records the outbox in its [`crate::room::Kicks`]; right after the lock is
//! released, the kick either writes the queue to the socket at once (`writev` of header + shared
//! payload, several frames at once; no copy, no task wake-up) or hands it to the connection's
//! task, which writes it — with whatever else was queued by the time it runs — when the socket
//! is writable ([`Outbox::resume`]).
//!
//! Which one is adaptive. A connection that was last written to [`COALESCE`] ago or more (a
//! meeting's pace: a few updates a second) is written at once: one syscall, nothing else. One
//! written to more recently is in a stream of updates, and handing it over lets the frames of
//! several updates leave in one `writev` (measured in `saturate`: writing each update at once
//! made a delivery cost twice as much at 100k+ deliveries/s, for want of batching). A socket
//! that cannot take everything (its kernel buffer is full) is handed over too.
//!
//! While an outbox is not empty somebody is responsible for it (a pending kick, or the task),
//! so frames queued meanwhile just join the queue, and the order is the order the room queued
//! them in. Every write happens under the outbox's own lock, so two writers never interleave
//! bytes.
//!
//! # Bounds
//!
//! The queue is bounded by frames ([`Outbox::capacity`]). Beyond a moment's batching it only
//! grows while the socket is full, so a full queue means a client that does not read: the room
//! cuts it off (see [`crate::room::fanout`]) rather than wait for it or drop an update.
//!
//! # Why not a tokio `mpsc` channel
//!
//! A bounded `mpsc` allocates its first block of 32 slots and a cache-padded header up front:
//! ~1.5 KB per connection (massif) before a frame is queued. An idle outbox here is an empty
//! `VecDeque` (no allocation), the close reason, the socket handle and a waker, behind one
//! `Arc`.
//!
//! An outbox with no socket attached (a connection still joining, or the unit tests and
//! benches, which use [`Outbox::take`]) only queues.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use tokio::net::TcpStream;

use super::frame::Header;
use super::Opcode;
use crate::metrics::Metrics;
use crate::protocol::CloseReason;
use crate::room::{Full, Pushed, Sink};

/// Above this many slots an emptied queue gives its memory back, so that one burst does not
/// leave an idle connection holding a large ring.
const KEEP_SLOTS: usize = 16;

/// Most frames handed to one `writev`.
const BATCH: usize = 32;

/// Control frames (pongs, close replies) a client may have waiting beyond the data capacity.
const CONTROL_SLACK: usize = 8;

/// A connection written to less than this long ago gets its next frames through its task, to
/// be batched with what follows (see the module docs).
pub const COALESCE: Duration = Duration::from_millis(2);

struct Frame {
    bytes: Bytes,
    /// `bytes` is a whole pre-built frame (control frames); otherwise it is the payload of one
    /// data frame of the outbox's opcode, whose header is made when it is written.
    raw: bool,
}

impl Frame {
    fn header(&self, opcode: Opcode) -> Header {
        if self.raw {
            Header::NONE
        } else {
            Header::data(opcode, self.bytes.len())
        }
    }
}

#[derive(Default)]
struct State {
    frames: VecDeque<Frame>,
    /// Bytes of the first frame (header included) already written.
    written: usize,
    reason: Option<CloseReason>,
    socket: Option<Arc<TcpStream>>,
    /// The connection's task writes what is queued, once it runs and the socket is writable
    /// (the socket was full, or the frames were handed over to be batched).
    task_writes: bool,
    /// When bytes last went out.
    last_write: Option<Instant>,
}

pub struct Outbox {
    state: Mutex<State>,
    waker: AtomicWaker,
    capacity: usize,
    opcode: Opcode,
    /// When bytes last arrived from the client, on the keep-alive clock
    /// ([`super::keepalive::now_ms`]): written by the connection's task as it reads, read by
    /// the keep-alive sweep.
    heard: AtomicU64,
}

impl Outbox {
    /// An empty, detached outbox of data frames of `opcode`, holding at most `capacity` frames.
    pub fn new(capacity: usize, opcode: Opcode) -> Self {
        Outbox {
            state: Mutex::new(State::default()),
            waker: AtomicWaker::new(),
            capacity: capacity.max(1),
            opcode,
            heard: AtomicU64::new(super::keepalive::now_ms()),
        }
    }

    /// Bytes arrived from the client at `now_ms` (keep-alive clock).
    pub fn heard(&self, now_ms: u64) {
        self.heard.store(now_ms, Ordering::Relaxed);
    }

    /// When bytes last arrived from the client (keep-alive clock, ms).
    pub fn last_heard(&self) -> u64 {
        self.heard.load(Ordering::Relaxed)
    }

    /// Queues the keep-alive ping and writes it at once, unless the connection is closing (no
    /// frame may follow a close frame) or its queue is full (it is about to be cut off as a
    /// slow consumer anyway). Whether it was queued.
    pub fn ping(&self, metrics: &Metrics) -> bool {
        let mut st = self.lock();
        if st.reason.is_some() || st.frames.len() >= self.capacity + CONTROL_SLACK {
            return false;
        }
        st.frames.push_back(Frame {
            bytes: Bytes::from_static(&super::frame::PING),
            raw: true,
        });
        self.write(&mut st, metrics, Instant::now(), true);
        true
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding this lock; if something did, the queue is still valid.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Most frames the queue holds before [`Outbox::push`] fails.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Connects the outbox to its socket and writes what was queued before.
    pub fn attach(&self, socket: Arc<TcpStream>, metrics: &Metrics) {
        self.lock().socket = Some(socket);
        self.write_now(metrics);
    }

    /// Queues the payload of one data frame. Cheap: it never writes (see [`Pushed::Kick`]).
    pub fn push(&self, payload: Bytes) -> Result<Pushed, Full> {
        let mut st = self.lock();
        if st.reason.is_some() {
            return Ok(Pushed::Dropped);
        }
        if st.frames.len() >= self.capacity {
            return Err(Full);
        }
        let kick = st.frames.is_empty() && st.socket.is_some();
        st.frames.push_back(Frame {
            bytes: payload,
            raw: false,
        });
        Ok(if kick { Pushed::Kick } else { Pushed::Queued })
    }

    /// Queues a data frame and writes it at once: for callers that hold no room lock.
    pub fn send(&self, payload: Bytes, metrics: &Metrics) -> Result<(), Full> {
        if self.push(payload)? == Pushed::Kick {
            self.write_now(metrics);
        }
        Ok(())
    }

    /// Queues a pre-built control frame (close, pong) and writes it at once. Unlike data, it
    /// is queued after a close too: the close frame itself comes this way.
    pub fn send_control(&self, frame: Bytes, metrics: &Metrics) -> Result<(), Full> {
        let mut st = self.lock();
        if st.frames.len() >= self.capacity + CONTROL_SLACK {
            return Err(Full);
        }
        st.frames.push_back(Frame {
            bytes: frame,
            raw: true,
        });
        self.write(&mut st, metrics, Instant::now(), true);
        Ok(())
    }

    /// Writes the queue now, unless the connection's task is to, or there is no socket yet.
    pub fn write_now(&self, metrics: &Metrics) {
        let mut st = self.lock();
        self.write(&mut st, metrics, Instant::now(), true);
    }

    /// A kick at `now`: writes the queue at once, or — if the connection was written to less
    /// than [`COALESCE`] ago — hands it to the connection's task to batch.
    fn kick(&self, now: Instant, metrics: &Metrics) {
        let mut st = self.lock();
        let streaming = st
            .last_write
            .is_some_and(|t| now.saturating_duration_since(t) < COALESCE);
        if streaming {
            self.hand_over_locked(&mut st);
        } else {
            self.write(&mut st, metrics, now, true);
        }
    }

    /// Leaves the queue to the connection's task: it writes as soon as it runs and the socket
    /// is writable. For a kick its holder is not going to write.
    fn hand_over(&self) {
        let mut st = self.lock();
        self.hand_over_locked(&mut st);
    }

    fn hand_over_locked(&self, st: &mut State) {
        if st.socket.is_some() && !st.task_writes && !st.frames.is_empty() {
            st.task_writes = true;
            self.waker.wake();
        }
    }

    /// The connection's task, with the socket writable: writes what is queued.
    pub fn resume(&self, metrics: &Metrics) {
        let mut st = self.lock();
        st.task_writes = false;
        self.write(&mut st, metrics, Instant::now(), false);
    }

    /// Whether the connection's task is to write (when the socket is writable).
    pub fn task_writes(&self) -> bool {
        self.lock().task_writes
    }

    /// Frames queued and not yet (fully) written.
    pub fn len(&self) -> usize {
        self.lock().frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes as much of the queue as the socket takes. If it would block, hands the rest to
    /// the connection's task (waking it when `wake`, i.e. the caller is not that task).
    fn write(&self, st: &mut State, metrics: &Metrics, now: Instant, wake: bool) {
        if st.task_writes {
            return;
        }
        let State {
            frames,
            written,
            socket,
            ..
        } = &mut *st;
        let Some(socket) = socket.as_deref() else {
            return;
        };
        if frames.is_empty() {
            return;
        }
        let mut result = Ok(());
        while !frames.is_empty() && result.is_ok() {
            result = write_batch(self.opcode, frames, written, socket, metrics);
        }
        st.last_write = Some(now);
        match result {
            Ok(()) => {
                if st.frames.capacity() > KEEP_SLOTS {
                    st.frames = VecDeque::new();
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                st.task_writes = true;
                if wake {
                    self.waker.wake();
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "socket write failed");
                st.frames.clear();
                st.written = 0;
                if st.reason.is_none() {
                    st.reason = Some(CloseReason::gone());
                }
                self.waker.wake();
            }
        }
    }

    /// Drops every frame not started yet (a slow consumer's backlog), keeping one partly
    /// written so that the stream stays well-formed for the close frame after it.
    pub fn discard_unstarted(&self) {
        let mut st = self.lock();
        let keep = usize::from(st.written > 0);
        st.frames.truncate(keep);
    }

    /// Asks the connection to close with `reason`; the first reason given wins. Data queued
    /// afterwards is dropped.
    pub fn close(&self, reason: CloseReason) {
        let mut st = self.lock();
        if st.reason.is_none() {
            st.reason = Some(reason);
        }
        drop(st);
        self.waker.wake();
    }

    pub fn is_closed(&self) -> bool {
        self.lock().reason.is_some()
    }

    /// The reason given to [`Outbox::close`], if any.
    pub fn reason(&self) -> Option<CloseReason> {
        self.lock().reason.clone()
    }

    /// Registers the connection's task to be woken by a close or by frames it is to write.
    pub fn register(&self, waker: &Waker) {
        self.waker.register(waker);
    }

    /// Moves up to `max` queued frames' bytes into `out` (a detached outbox: tests and
    /// benches); whether it moved any.
    pub fn take(&self, out: &mut Vec<Bytes>, max: usize) -> bool {
        let mut st = self.lock();
        let n = st.frames.len().min(max);
        out.extend(st.frames.drain(..n).map(|f| f.bytes));
        if st.frames.is_empty() && st.frames.capacity() > KEEP_SLOTS {
            st.frames = VecDeque::new();
        }
        n > 0
    }
}

/// One `writev` of up to [`BATCH`] frames (headers made here, payloads shared); drops the
/// frames it finished and records how far into the next one it got.
fn write_batch(
    opcode: Opcode,
    frames: &mut VecDeque<Frame>,
    written: &mut usize,
    socket: &TcpStream,
    metrics: &Metrics,
) -> io::Result<()> {
    let n = frames.len().min(BATCH);
    let mut headers = [Header::NONE; BATCH];
    for (h, f) in headers.iter_mut().zip(frames.iter()) {
        *h = f.header(opcode);
    }
    let mut slices = [IoSlice::new(&[]); 2 * BATCH];
    let mut k = 0;
    let mut skip = *written;
    for (h, f) in headers.iter().zip(frames.iter()).take(n) {
        for part in [h.as_slice(), &f.bytes[..]] {
            if skip >= part.len() {
                skip -= part.len();
            } else {
                slices[k] = IoSlice::new(&part[skip..]);
                skip = 0;
                k += 1;
            }
        }
    }
    let wrote = socket.try_write_vectored(&slices[..k])?;
    if wrote == 0 {
        return Err(io::ErrorKind::WriteZero.into());
    }
    let mut done = *written + wrote;
    for h in headers.iter().take(n) {
        let Some(front) = frames.front() else {
            break;
        };
        let total = h.as_slice().len() + front.bytes.len();
        if done < total {
            break;
        }
        done -= total;
        if !front.raw {
            metrics.frames_out.inc();
            metrics.bytes_out.inc_by(front.bytes.len() as u64);
        }
        frames.pop_front();
    }
    *written = done;
    Ok(())
}

impl Sink for Outbox {
    fn push(&self, payload: Bytes) -> Result<Pushed, Full> {
        Outbox::push(self, payload)
    }
    fn kick(&self, now: Instant, metrics: &Metrics) {
        Outbox::kick(self, now, metrics)
    }
    fn hand_over(&self) {
        Outbox::hand_over(self)
    }
    fn close(&self, reason: CloseReason) {
        Outbox::close(self, reason)
    }
    fn capacity(&self) -> usize {
        Outbox::capacity(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use std::task::{Context, Poll};
    use tokio::io::AsyncReadExt;

    fn metrics() -> Metrics {
        Metrics::new()
    }

    #[test]
    fn bounded_in_order_and_first_close_reason_wins() {
        let o = Outbox::new(2, Opcode::Binary);
        assert_eq!(o.push(Bytes::from_static(b"a")), Ok(Pushed::Queued));
        assert_eq!(o.push(Bytes::from_static(b"b")), Ok(Pushed::Queued));
        assert_eq!(o.push(Bytes::from_static(b"c")), Err(Full));
        let mut out = Vec::new();
        assert!(o.take(&mut out, 8));
        assert_eq!(
            out,
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]
        );
        o.close(CloseReason::going_away());
        o.close(CloseReason::normal());
        assert_eq!(o.reason().unwrap().code(), 1001);
        // Pushes after a close are dropped, not errors.
        assert_eq!(o.push(Bytes::from_static(b"d")), Ok(Pushed::Dropped));
        assert!(o.is_empty());
    }

    #[tokio::test]
    async fn a_close_wakes_the_waiting_consumer() {
        let o = Arc::new(Outbox::new(8, Opcode::Binary));
        // The connection task's wait: registered, then woken by the close.
        let waiter = {
            let o = o.clone();
            tokio::spawn(async move {
                poll_fn(|cx: &mut Context<'_>| {
                    o.register(cx.waker());
                    if o.is_closed() {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                })
                .await
            })
        };
        tokio::task::yield_now().await;
        o.close(CloseReason::normal());
        waiter.await.unwrap();
    }

    #[test]
    fn an_emptied_large_queue_gives_its_memory_back() {
        let o = Outbox::new(1000, Opcode::Binary);
        for _ in 0..100 {
            let _ = o.push(Bytes::from_static(b"f")).unwrap();
        }
        let mut out = Vec::new();
        o.take(&mut out, 1000);
        assert_eq!(o.lock().frames.capacity(), 0);
    }

    /// A connected pair: the server side (attached to an outbox) and the client side.
    async fn pair() -> (Arc<TcpStream>, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (Arc::new(server.unwrap().0), client.unwrap())
    }

    /// Reads `n` bytes from the client side.
    async fn read_n(client: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        client.read_exact(&mut buf).await.unwrap();
        buf
    }

    #[tokio::test]
    async fn queued_frames_are_written_on_attach_with_their_headers_in_order() {
        let (server, mut client) = pair().await;
        let m = metrics();
        let o = Outbox::new(8, Opcode::Binary);
        assert_eq!(o.push(Bytes::from_static(b"one")), Ok(Pushed::Queued));
        let _ = o.push(Bytes::from_static(b"two"));
        o.attach(server, &m);
        assert!(o.is_empty(), "a writable socket takes everything at once");
        assert_eq!(read_n(&mut client, 10).await, b"\x82\x03one\x82\x03two");
        // Once attached, a push on an empty outbox asks for a kick, and the kick writes it.
        assert_eq!(o.push(Bytes::from_static(b"3")), Ok(Pushed::Kick));
        assert_eq!(o.push(Bytes::from_static(b"4")), Ok(Pushed::Queued));
        o.write_now(&m);
        assert_eq!(read_n(&mut client, 6).await, b"\x82\x013\x82\x014");
        assert_eq!(m.frames_out.get(), 4);
    }

    #[tokio::test]
    async fn a_connection_in_a_stream_of_updates_is_written_by_its_task_in_one_batch() {
        let (server, mut client) = pair().await;
        let m = metrics();
        let o = Outbox::new(8, Opcode::Binary);
        o.attach(server, &m);
        assert_eq!(o.push(Bytes::from_static(b"a")), Ok(Pushed::Kick));
        let t0 = Instant::now();
        o.kick(t0, &m);
        assert_eq!(
            read_n(&mut client, 3).await,
            b"\x82\x01a",
            "idle: written at once"
        );
        let written = o.lock().last_write.unwrap();

        // Soon after a write: handed to the task, and what follows joins the same batch.
        assert_eq!(o.push(Bytes::from_static(b"b")), Ok(Pushed::Kick));
        o.kick(written + COALESCE / 2, &m);
        assert!(o.task_writes() && o.len() == 1, "handed over, not written");
        assert_eq!(o.push(Bytes::from_static(b"c")), Ok(Pushed::Queued));
        o.resume(&m);
        assert!(o.is_empty());
        assert_eq!(read_n(&mut client, 6).await, b"\x82\x01b\x82\x01c");

        // Quiet again: written at once.
        let written = o.lock().last_write.unwrap();
        assert_eq!(o.push(Bytes::from_static(b"d")), Ok(Pushed::Kick));
        o.kick(written + COALESCE, &m);
        assert!(!o.task_writes() && o.is_empty());
        assert_eq!(read_n(&mut client, 3).await, b"\x82\x01d");
    }

    #[tokio::test]
    async fn a_kick_never_run_is_left_to_the_task() {
        let (server, _client) = pair().await;
        let m = metrics();
        let o = Arc::new(Outbox::new(8, Opcode::Binary));
        o.attach(server, &m);
        let mut kicks = crate::room::Kicks::default();
        kicks.push(&o, Bytes::from_static(b"x")).unwrap();
        drop(kicks);
        assert!(o.task_writes(), "the task is told to write it");
        assert_eq!(o.len(), 1);
    }

    #[tokio::test]
    async fn a_full_socket_blocks_and_resumes_without_losing_or_reordering_a_byte() {
        let (server, mut client) = pair().await;
        let m = metrics();
        let o = Outbox::new(100_000, Opcode::Text);
        o.attach(server.clone(), &m);
        // Far more than the kernel buffers hold: the outbox must block part-way.
        let payload: Vec<Bytes> = (0..64u32)
            .map(|i| Bytes::from(vec![b'a' + (i % 26) as u8; 100_000]))
            .collect();
        for p in &payload {
            o.send(p.clone(), &m).unwrap();
        }
        assert!(o.task_writes(), "the socket cannot take 6.4 MB at once");
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            client.read_to_end(&mut all).await.unwrap();
            all
        });
        while !o.is_empty() {
            server.writable().await.unwrap();
            o.resume(&m);
        }
        drop(o);
        drop(server);
        let all = reader.await.unwrap();
        let mut expected = Vec::new();
        for p in &payload {
            expected.extend_from_slice(Header::data(Opcode::Text, p.len()).as_slice());
            expected.extend_from_slice(p);
        }
        assert_eq!(all.len(), expected.len());
        assert!(all == expected, "bytes out of order or corrupted");
    }

    #[tokio::test]
    async fn a_ping_is_written_at_once_but_never_after_a_close() {
        let (server, mut client) = pair().await;
        let m = metrics();
        let o = Outbox::new(4, Opcode::Binary);
        o.attach(server, &m);
        assert!(o.ping(&m));
        assert_eq!(read_n(&mut client, 2).await, crate::ws::frame::PING);
        o.close(CloseReason::going_away());
        assert!(!o.ping(&m), "no frame may follow the close frame");
        assert!(o.is_empty());
    }

    #[tokio::test]
    async fn control_frames_pass_a_close_and_a_slow_backlog_is_discarded() {
        let (server, mut client) = pair().await;
        let m = metrics();
        let o = Outbox::new(4, Opcode::Binary);
        let _ = o.push(Bytes::from_static(b"x"));
        let _ = o.push(Bytes::from_static(b"y"));
        o.close(CloseReason::slow_consumer(4));
        o.discard_unstarted();
        o.attach(server, &m);
        o.send_control(crate::ws::frame::close_bytes(1013, "slow"), &m)
            .unwrap();
        let got = read_n(&mut client, 8).await;
        assert_eq!(&got[..2], b"\x88\x06", "only the close frame is sent");
        assert_eq!(&got[2..4], &1013u16.to_be_bytes());
    }
}
