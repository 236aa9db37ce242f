//! A connection's outgoing queue and its close signal, in one small object shared by the room
//! (which pushes frames under its lock) and the connection task (which sends them).
//!
//! # Why not a tokio `mpsc` channel
//!
//! A bounded `mpsc` channel allocates its first block of 32 slots and a cache-padded shared
//! header up front: about 1.5 KB per connection, measured with massif, before a single frame
//! is queued — a quarter of what an idle connection cost. Here an idle connection's queue is
//! an empty `VecDeque` (no allocation), the close reason and a waker, all behind one `Arc`.
//!
//! Only one task consumes an outbox (its connection), so one [`AtomicWaker`] suffices: every
//! wait on it — frames to send, or a close — is made by that task.
//!
//! The queue is bounded by frames, not bytes: a connection that lets `capacity` frames pile up
//! is too slow for its room and the room cuts it off (see `room.rs`), it is never waited for.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::task::AtomicWaker;

use crate::protocol::CloseReason;

/// Above this many slots an emptied queue gives its memory back, so that one burst does not
/// leave an idle connection holding a large ring.
const KEEP_SLOTS: usize = 16;

/// The queue is full: the consumer is too slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

pub struct Outbox {
    state: Mutex<State>,
    waker: AtomicWaker,
    capacity: usize,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Bytes>,
    reason: Option<CloseReason>,
}

impl Outbox {
    /// An empty outbox holding at most `capacity` frames.
    pub fn new(capacity: usize) -> Self {
        Outbox {
            state: Mutex::new(State::default()),
            waker: AtomicWaker::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding this lock; if something did, the queue is still valid.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Most frames the queue holds before [`Outbox::push`] fails.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Queues a frame. After a close the frame is dropped quietly: the connection is going
    /// away and will resync if it comes back.
    pub fn push(&self, frame: Bytes) -> Result<(), Full> {
        let mut st = self.lock();
        if st.reason.is_some() {
            return Ok(());
        }
        if st.frames.len() >= self.capacity {
            return Err(Full);
        }
        let was_empty = st.frames.is_empty();
        st.frames.push_back(frame);
        drop(st);
        if was_empty {
            self.waker.wake();
        }
        Ok(())
    }

    /// Asks the connection to close with `reason`; the first reason given wins.
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

    /// Moves up to `max` queued frames into `out`. Ready when it moved some or the outbox is
    /// closed; otherwise registers the task to be woken by the next push or close.
    pub fn poll_frames(&self, cx: &mut Context<'_>, out: &mut Vec<Bytes>, max: usize) -> Poll<()> {
        if self.take(out, max) || self.is_closed() {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // A push or close between the check and the registration would otherwise be missed.
        if self.take(out, max) || self.is_closed() {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Moves up to `max` queued frames into `out`; whether it moved any.
    pub fn take(&self, out: &mut Vec<Bytes>, max: usize) -> bool {
        let mut st = self.lock();
        let n = st.frames.len().min(max);
        out.extend(st.frames.drain(..n));
        if st.frames.is_empty() && st.frames.capacity() > KEEP_SLOTS {
            st.frames = VecDeque::new();
        }
        n > 0
    }

    /// Resolves once the outbox is closed.
    pub async fn closed(&self) {
        poll_fn(|cx| {
            if self.is_closed() {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            if self.is_closed() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// Frames queued and not yet taken.
    pub fn len(&self) -> usize {
        self.lock().frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn bounded_in_order_and_first_close_reason_wins() {
        let o = Outbox::new(2);
        o.push(Bytes::from_static(b"a")).unwrap();
        o.push(Bytes::from_static(b"b")).unwrap();
        assert_eq!(o.push(Bytes::from_static(b"c")), Err(Full));
        let mut out = Vec::new();
        assert!(o.take(&mut out, 8));
        assert_eq!(
            out,
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]
        );
        o.close(CloseReason::going_away());
        o.close(CloseReason::normal());
        assert_eq!(o.reason().unwrap().code, 1001);
        // Pushes after a close are dropped, not errors.
        assert_eq!(o.push(Bytes::from_static(b"d")), Ok(()));
        assert!(o.is_empty());
    }

    #[tokio::test]
    async fn a_push_wakes_the_waiting_consumer() {
        let o = Arc::new(Outbox::new(8));
        let consumer = {
            let o = o.clone();
            tokio::spawn(async move {
                let mut out = Vec::new();
                poll_fn(|cx| o.poll_frames(cx, &mut out, 8)).await;
                out
            })
        };
        tokio::task::yield_now().await;
        o.push(Bytes::from_static(b"x")).unwrap();
        assert_eq!(consumer.await.unwrap(), vec![Bytes::from_static(b"x")]);
    }

    #[tokio::test]
    async fn a_close_wakes_the_waiting_consumer() {
        let o = Arc::new(Outbox::new(8));
        let waiter = {
            let o = o.clone();
            tokio::spawn(async move { o.closed().await })
        };
        tokio::task::yield_now().await;
        o.close(CloseReason::normal());
        waiter.await.unwrap();
    }

    #[test]
    fn an_emptied_large_queue_gives_its_memory_back() {
        let o = Outbox::new(1000);
        for _ in 0..100 {
            o.push(Bytes::from_static(b"f")).unwrap();
        }
        let mut out = Vec::new();
        o.take(&mut out, 1000);
        assert_eq!(o.lock().frames.capacity(), 0);
    }
}
