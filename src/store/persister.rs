//! The persister: one task that writes every applied update to the store, in batches.
//!
//! Rooms hand their updates to [`Persister::append`] while they hold their doc lock (so the log
//! order is the apply order); that call only pushes onto a channel and never waits. When an
//! update arrives the task collects for at most `flush_interval` more (or until
//! [`MAX_BATCH`] entries, or a flush is asked for), then writes everything with one
//! [`DocStore::append`] call: one fsync for the embedded store, one pipelined round trip for
//! Redis. An update is thus durable within `flush_interval` plus one commit; the interval is
//! what turns a meeting's trickle of edits into a few commits per second (an fsync costs
//! about as much server CPU as delivering an update to a dozen clients). With an interval of
//! zero it is plain group commit: whatever queued up during the previous commit.
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
    pub fn start(
        store: Arc<dyn DocStore>,
        metrics: Arc<Metrics>,
        flush_interval: Duration,
        tracker: &TaskTracker,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tracker.spawn(run(store, rx, metrics.clone(), flush_interval));
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

async fn run(
    store: Arc<dyn DocStore>,
    mut rx: mpsc::UnboundedReceiver<Op>,
    metrics: Arc<Metrics>,
    flush_interval: Duration,
) {
    let mut batch: Vec<LogEntry> = Vec::new();
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.recv().await {
        let deadline = tokio::time::Instant::now() + flush_interval;
        push(first, &mut batch, &mut waiters);
        // Collect until the interval ends, the batch is full, or someone waits for a flush.
        while batch.len() < MAX_BATCH && waiters.is_empty() {
            let op = match rx.try_recv() {
                Ok(op) => op,
                Err(_) => match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(op)) => op,
                    Ok(None) | Err(_) => break,
                },
            };
            push(op, &mut batch, &mut waiters);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::embedded::EmbeddedStore;
    use crate::store::StoredDoc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The embedded store, counting append calls.
    struct Counting {
        inner: EmbeddedStore,
        appends: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl DocStore for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        async fn load(&self, room: &RoomId) -> Result<StoredDoc, StoreError> {
            self.inner.load(room).await
        }
        async fn append(&self, batch: &[LogEntry]) -> Result<(), StoreError> {
            self.appends.fetch_add(1, Ordering::SeqCst);
            self.inner.append(batch).await
        }
        async fn compact(
            &self,
            room: &RoomId,
            snapshot: &[u8],
            upto: u64,
        ) -> Result<(), StoreError> {
            self.inner.compact(room, snapshot, upto).await
        }
    }

    /// Two updates 20 ms apart, then a flush: how many store writes?
    async fn writes_for_two_spaced_updates(interval: Duration) -> usize {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Counting {
            inner: EmbeddedStore::open(dir.path()).unwrap(),
            appends: AtomicUsize::new(0),
        });
        let p = Persister::start(
            store.clone(),
            Arc::new(Metrics::new()),
            interval,
            &TaskTracker::new(),
        );
        let room = RoomId::parse("t.persist.q1").unwrap();
        p.append(room.clone(), 1, Bytes::from_static(b"a"));
        // Paused clock: this returns once every other task is idle and 20 ms have passed, so
        // the persister has taken `a` and is waiting out its interval (or already writing).
        tokio::time::sleep(Duration::from_millis(20)).await;
        p.append(room.clone(), 2, Bytes::from_static(b"b"));
        p.flush().await.unwrap();
        assert_eq!(store.load(&room).await.unwrap().updates.len(), 2);
        store.appends.load(Ordering::SeqCst)
    }

    #[tokio::test(start_paused = true)]
    async fn updates_within_the_interval_share_one_write() {
        assert_eq!(
            writes_for_two_spaced_updates(Duration::from_millis(200)).await,
            1
        );
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_interval_each_update_is_written_at_once() {
        assert_eq!(writes_for_two_spaced_updates(Duration::ZERO).await, 2);
    }
}
