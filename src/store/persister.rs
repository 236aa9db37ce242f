//! The persister: one task that writes every applied update to the store, in batches.
//!
//! Rooms hand their updates to [`Persister::append`] while they hold their doc lock (so the log
//! order is the apply order); that call only pushes onto a channel and never waits. The task
//! takes whatever has queued up — one update when the hub is quiet, thousands under load — and
//! writes it with one [`DocStore::append`] call (one fsync for the embedded store, one
//! pipelined round trip for Redis). This is group commit: no timer, so a quiet server writes an
//! update as soon as it arrives, and a busy one amortises each write over many updates.
//!
//! A failed write is retried with backoff, keeping the batch: an update is never dropped. The
//! queue is unbounded for now; its depth is exported as a metric.
//!
//! [`Persister::flush`] is a barrier: it resolves once everything appended before it is durable.
//! Rooms use it before their final snapshot, and the server at shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

use super::{DocStore, LogEntry, StoreError};
use crate::metrics::Metrics;
use crate::room_id::RoomId;

/// The most entries written in one store call.
const MAX_BATCH: usize = 4096;
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

enum Op {
    Append(LogEntry),
    Flush(oneshot::Sender<()>),
}

/// A cheap, cloneable handle to the persister task.
#[derive(Clone)]
pub struct Persister {
    tx: mpsc::UnboundedSender<Op>,
    metrics: Arc<Metrics>,
}

impl Persister {
    /// Starts the persister task on `tracker`. The task ends once every handle is dropped and
    /// the queue is drained.
    pub fn start(store: Arc<dyn DocStore>, metrics: Arc<Metrics>, tracker: &TaskTracker) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tracker.spawn(run(store, rx, metrics.clone()));
        Persister { tx, metrics }
    }

    /// Queues one update for the room's log. Never blocks.
    pub fn append(&self, room: RoomId, seq: u64, update: Bytes) {
        self.metrics.persist_queue.inc();
        if self
            .tx
            .send(Op::Append(LogEntry { room, seq, update }))
            .is_err()
        {
            // Only possible after the task died, which it does not do while handles exist.
            self.metrics.persist_queue.dec();
            tracing::error!("persister is gone; update not queued");
        }
    }

    /// Waits until every update appended before this call is durable in the store.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Op::Flush(done))
            .map_err(|_| StoreError::Task("persister is gone".into()))?;
        wait.await
            .map_err(|_| StoreError::Task("persister is gone".into()))
    }
}

async fn run(store: Arc<dyn DocStore>, mut rx: mpsc::UnboundedReceiver<Op>, metrics: Arc<Metrics>) {
    let mut batch: Vec<LogEntry> = Vec::new();
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.recv().await {
        push(first, &mut batch, &mut waiters);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => push(op, &mut batch, &mut waiters),
                Err(_) => break,
            }
        }
        write_with_retry(store.as_ref(), &batch, &metrics).await;
        metrics.persist_queue.dec_by(batch.len() as i64);
        batch.clear();
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    }
}

fn push(op: Op, batch: &mut Vec<LogEntry>, waiters: &mut Vec<oneshot::Sender<()>>) {
    match op {
        Op::Append(entry) => batch.push(entry),
        Op::Flush(w) => waiters.push(w),
    }
}

async fn write_with_retry(store: &dyn DocStore, batch: &[LogEntry], metrics: &Metrics) {
    if batch.is_empty() {
        return;
    }
    let mut delay = RETRY_MIN;
    loop {
        let started = Instant::now();
        match store.append(batch).await {
            Ok(()) => {
                metrics
                    .store_append_seconds
                    .observe(started.elapsed().as_secs_f64());
                metrics.store_appended.inc_by(batch.len() as u64);
                return;
            }
            Err(e) => {
                metrics.store_errors.inc();
                tracing::error!(
                    store = store.name(),
                    entries = batch.len(),
                    error = %e,
                    retry_in_ms = delay.as_millis() as u64,
                    "store append failed; keeping the batch and retrying"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(RETRY_MAX);
            }
        }
    }
}
