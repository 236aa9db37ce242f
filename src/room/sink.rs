//! The narrow interface through which a room hands frames to a connection: the room core knows
//! no sockets.
//!
//! A room queues a frame on each subscriber's [`Sink`] under its lock, never writing or waiting
//! there. A sink that needs writing after the push ([`Pushed::Kick`]) is remembered in the
//! room's [`Kicks`], which run once the lock is released (the WebSocket layer's outbox then
//! writes the socket, or hands the frames to its connection's task). A sink that is full makes
//! the room cut its connection off ([`Full`]).
//!
//! The room is generic over its sink type rather than holding `dyn Sink`: the fan-out loop is
//! the hot path, and a concrete type keeps every push a direct (inlinable) call. The server
//! uses `ws::Outbox`; the room's unit tests use a plain in-memory queue.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::metrics::Metrics;
use crate::protocol::CloseReason;

/// The sink is full: its consumer is too slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// What [`Sink::push`] did.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued on an empty sink that can write: the caller must see that [`Sink::kick`] runs
    /// (through [`Kicks`]).
    Kick,
    /// Queued behind frames somebody is already writing, or on a sink not yet connected.
    Queued,
    /// The sink is closed: the frame was dropped (the client resyncs if it comes back).
    Dropped,
}

/// One connection's outgoing side, as the room sees it.
pub trait Sink: Send + Sync + 'static {
    /// Queues the payload of one data frame. Cheap, and never writes (see [`Pushed::Kick`]).
    fn push(&self, payload: Bytes) -> Result<Pushed, Full>;

    /// Writes what was queued, or hands it to the connection's task; called with no room lock
    /// held, after a push answered [`Pushed::Kick`].
    fn kick(&self, now: Instant, metrics: &Metrics);

    /// A kick that is not going to run: the connection's task takes over the writing.
    fn hand_over(&self);

    /// Asks the connection to close with `reason`; the first reason given wins.
    fn close(&self, reason: CloseReason);

    /// Most frames the sink holds before [`Sink::push`] fails.
    fn capacity(&self) -> usize;
}

/// Sinks that got frames while a room's lock was held ([`Pushed::Kick`]), to be written once
/// the lock is released: the room's critical section only queues, and the socket writes (one
/// syscall per recipient, the bulk of a delivery's cost) run outside it.
pub struct Kicks<S: Sink>(Vec<Arc<S>>);

impl<S: Sink> Default for Kicks<S> {
    fn default() -> Self {
        Kicks(Vec::new())
    }
}

impl<S: Sink> Kicks<S> {
    /// Queues `payload` on `sink`, remembering it if it needs writing.
    pub fn push(&mut self, sink: &Arc<S>, payload: Bytes) -> Result<(), Full> {
        if sink.push(payload)? == Pushed::Kick {
            self.0.push(sink.clone());
        }
        Ok(())
    }

    /// Moves `other`'s sinks into this list.
    pub fn append(&mut self, other: &mut Kicks<S>) {
        self.0.append(&mut other.0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Takes the list, leaving an empty one.
    pub fn take(&mut self) -> Kicks<S> {
        Kicks(std::mem::take(&mut self.0))
    }

    /// Writes every sink, or hands it to its task to batch (call with no room lock held).
    pub fn run(mut self, metrics: &Metrics) {
        let now = Instant::now();
        for sink in self.0.drain(..) {
            sink.kick(now, metrics);
        }
    }
}

impl<S: Sink> Drop for Kicks<S> {
    /// Kicks never run (an early return, a cancelled task) go to the connections' tasks, so
    /// that no queued frame is left without a writer.
    fn drop(&mut self) {
        for sink in self.0.drain(..) {
            sink.hand_over();
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A sink for tests of the room core and the hub: no socket, just the frames in order.
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::time::Instant;

    use bytes::Bytes;

    use super::{Full, Pushed, Sink};
    use crate::metrics::Metrics;
    use crate::protocol::CloseReason;

    /// A sink that only queues: what the room handed to a connection, in order.
    pub struct Queue {
        frames: Mutex<VecDeque<Bytes>>,
        reason: Mutex<Option<CloseReason>>,
        capacity: usize,
    }

    impl Queue {
        pub fn new(capacity: usize) -> Self {
            Queue {
                frames: Mutex::default(),
                reason: Mutex::default(),
                capacity,
            }
        }
        /// Takes every frame queued so far.
        pub fn drain(&self) -> Vec<Bytes> {
            self.frames.lock().unwrap().drain(..).collect()
        }
        pub fn is_closed(&self) -> bool {
            self.reason.lock().unwrap().is_some()
        }
        pub fn reason(&self) -> Option<CloseReason> {
            self.reason.lock().unwrap().clone()
        }
    }

    impl Sink for Queue {
        fn push(&self, payload: Bytes) -> Result<Pushed, Full> {
            if self.is_closed() {
                return Ok(Pushed::Dropped);
            }
            let mut frames = self.frames.lock().unwrap();
            if frames.len() >= self.capacity {
                return Err(Full);
            }
            frames.push_back(payload);
            Ok(Pushed::Queued)
        }
        fn kick(&self, _: Instant, _: &Metrics) {}
        fn hand_over(&self) {}
        fn close(&self, reason: CloseReason) {
            self.reason.lock().unwrap().get_or_insert(reason);
        }
        fn capacity(&self) -> usize {
            self.capacity
        }
    }
}
