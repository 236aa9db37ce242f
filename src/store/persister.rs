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
//! A failed write is retried with backoff, keeping the batch: an update is never dropped.
//!
//! # A bounded buffer that refuses rather than drops
//!
//! While the store is down, updates pile up in the queue. The queue is bounded by
//! [`BufferLimits`] (updates and bytes), but not by blocking the sender — a room's lock must
//! never wait on the store. Instead, writers ask first: [`Persister::admit`] compares two atomic
//! counters with the limits, and a room refuses an update (and closes that connection with
//! 1013 `store_unavailable`) *before* applying it when the buffer is full. Nothing accepted is
//! ever dropped; a refused update was never applied, so the client keeps it and resends it when
//! it reconnects and resyncs. The bound is soft by at most the updates admitted concurrently.
//!
//! [`Persister::readiness`] is what `/readyz` reports: not ready while the last write failed or
//! the buffer is more than half full.
//!
//! [`Persister::flush`] is a barrier: it resolves once everything appended before it is durable.
//! Rooms use it before their final snapshot, and the server at shutdown.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

use super::{DocStore, LogEntry, StoreError};
use crate::identity::UserId;
use crate::metrics::Metrics;
use crate::room_id::RoomId;

/// The most entries written in one store call.
const MAX_BATCH: usize = 4096;
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

enum Op {
    Append(LogEntry, Option<Arc<Share>>),
    Flush(oneshot::Sender<()>),
}

/// One writer's updates waiting in the persister (a connection's share of the buffer): its
/// bytes are counted in when an update is appended for it and out when the update is written.
#[derive(Debug, Default)]
pub struct Share {
    bytes: AtomicUsize,
}

impl Share {
    /// Bytes of this writer's updates not yet written.
    pub fn pending(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Whether `len` more bytes keep this writer within `limit`. One update is always
    /// admitted when nothing of the writer's is waiting, however large (the message size
    /// limit bounds it), so that a share smaller than an update cannot lock a writer out.
    pub fn admits(&self, len: usize, limit: usize) -> bool {
        let pending = self.pending();
        pending == 0 || pending.saturating_add(len) <= limit
    }
}

/// How much the persister may hold unwritten before writes are refused.
#[derive(Debug, Clone, Copy)]
pub struct BufferLimits {
    pub updates: usize,
    pub bytes: usize,
    /// Refuse every write while the store is failing, however empty the buffer (a store
    /// several nodes share: what one node cannot log, the others cannot see — its clients had
    /// better write through another node, which they do when they reconnect).
    pub refuse_while_failing: bool,
}

impl Default for BufferLimits {
    fn default() -> Self {
        BufferLimits {
            updates: 1_000_000,
            bytes: 256 * 1024 * 1024,
            refuse_while_failing: false,
        }
    }
}

/// A write refused because the store is behind: the persist buffer is full.
#[derive(Debug, Clone, thiserror::Error)]
#[error("store unavailable: {queued} updates ({bytes} bytes) wait to be written, the limit is {limit_updates} updates / {limit_bytes} bytes")]
pub struct StoreUnavailable {
    pub queued: usize,
    pub bytes: usize,
    pub limit_updates: usize,
    pub limit_bytes: usize,
}

/// What the handles and the task share: the buffer's fill and the store's last verdict.
struct Shared {
    limits: BufferLimits,
    queued: AtomicUsize,
    bytes: AtomicUsize,
    /// Whether the last append failed.
    append_failing: AtomicBool,
    /// Whether the last health probe failed (set by the server's probe task).
    probe_failing: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl Shared {
    fn set_error(&self, e: &StoreError) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
    }
}

/// A cheap, cloneable handle to the persister task.
#[derive(Clone)]
pub struct Persister {
    tx: mpsc::UnboundedSender<Op>,
    metrics: Arc<Metrics>,
    shared: Arc<Shared>,
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
        Self::start_with_limits(
            store,
            metrics,
            flush_interval,
            BufferLimits::default(),
            tracker,
        )
    }

    /// [`Persister::start`] with explicit buffer limits.
    pub fn start_with_limits(
        store: Arc<dyn DocStore>,
        metrics: Arc<Metrics>,
        flush_interval: Duration,
        limits: BufferLimits,
        tracker: &TaskTracker,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            limits,
            queued: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            append_failing: AtomicBool::new(false),
            probe_failing: AtomicBool::new(false),
            last_error: Mutex::new(None),
        });
        metrics.store_up.set(1);
        let task = Task {
            store,
            metrics: metrics.clone(),
            shared: shared.clone(),
            flush_interval,
        };
        tracker.spawn(task.run(rx));
        Persister {
            tx,
            metrics,
            shared,
        }
    }

    /// Whether one more write may be accepted: `Err` when the buffer is full. Two atomic loads;
    /// call it before applying a change (a refused change must not be applied).
    pub fn admit(&self) -> Result<(), StoreUnavailable> {
        let queued = self.shared.queued.load(Ordering::Relaxed);
        let bytes = self.shared.bytes.load(Ordering::Relaxed);
        let limits = self.shared.limits;
        let failing = limits.refuse_while_failing
            && (self.shared.append_failing.load(Ordering::Relaxed)
                || self.shared.probe_failing.load(Ordering::Relaxed));
        if queued < limits.updates && bytes < limits.bytes && !failing {
            return Ok(());
        }
        self.metrics.store_refused.inc();
        Err(StoreUnavailable {
            queued,
            bytes,
            limit_updates: limits.updates,
            limit_bytes: limits.bytes,
        })
    }

    /// Whether the server should take traffic: `Err(reason)` while the store is failing or the
    /// buffer is more than half full.
    pub fn readiness(&self) -> Result<(), String> {
        let sh = &self.shared;
        if sh.append_failing.load(Ordering::Relaxed) || sh.probe_failing.load(Ordering::Relaxed) {
            let error = sh
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            return Err(format!(
                "store failing: {}",
                error.as_deref().unwrap_or("unknown error")
            ));
        }
        let queued = sh.queued.load(Ordering::Relaxed);
        let bytes = sh.bytes.load(Ordering::Relaxed);
        if queued > sh.limits.updates / 2 || bytes > sh.limits.bytes / 2 {
            return Err(format!(
                "persist buffer over half full: {queued}/{} updates, {bytes}/{} bytes",
                sh.limits.updates, sh.limits.bytes
            ));
        }
        Ok(())
    }

    /// Records the result of a store health probe (see [`DocStore::probe`]).
    pub fn record_probe(&self, result: Result<(), &StoreError>) {
        match result {
            Ok(()) => self.shared.probe_failing.store(false, Ordering::Relaxed),
            Err(e) => {
                self.shared.set_error(e);
                self.shared.probe_failing.store(true, Ordering::Relaxed);
            }
        }
        self.shared.update_up(&self.metrics);
    }

    /// Updates queued and not yet written.
    pub fn queued(&self) -> usize {
        self.shared.queued.load(Ordering::Relaxed)
    }

    /// Queues one update for the room's log. Never blocks, never refuses: admission is
    /// [`Persister::admit`]'s job, before the update is applied.
    pub fn append(&self, room: RoomId, seq: u64, update: Bytes) {
        self.append_for(room, seq, update, None, None)
    }

    /// [`Persister::append`] of an update by `by`, counting it in `share` (its writer's)
    /// until it is written.
    pub fn append_for(
        &self,
        room: RoomId,
        seq: u64,
        update: Bytes,
        by: Option<UserId>,
        share: Option<Arc<Share>>,
    ) {
        let len = update.len();
        if let Some(share) = &share {
            share.bytes.fetch_add(len, Ordering::Relaxed);
        }
        self.shared.queued.fetch_add(1, Ordering::Relaxed);
        self.shared.bytes.fetch_add(len, Ordering::Relaxed);
        self.metrics.persist_queue.inc();
        self.metrics.persist_queue_bytes.inc_by(len as i64);
        if let Err(mpsc::error::SendError(op)) = self.tx.send(Op::Append(
            LogEntry {
                room,
                seq,
                update,
                by,
            },
            share,
        )) {
            // Only possible after the task died, which it does not do while handles exist.
            if let Op::Append(_, Some(share)) = op {
                share.bytes.fetch_sub(len, Ordering::Relaxed);
            }
            self.shared.queued.fetch_sub(1, Ordering::Relaxed);
            self.shared.bytes.fetch_sub(len, Ordering::Relaxed);
            self.metrics.persist_queue.dec();
            self.metrics.persist_queue_bytes.dec_by(len as i64);
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

impl Shared {
    fn update_up(&self, metrics: &Metrics) {
        let failing = self.append_failing.load(Ordering::Relaxed)
            || self.probe_failing.load(Ordering::Relaxed);
        metrics.store_up.set(i64::from(!failing));
    }
}

/// The persister task's state.
struct Task {
    store: Arc<dyn DocStore>,
    metrics: Arc<Metrics>,
    shared: Arc<Shared>,
    flush_interval: Duration,
}

impl Task {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Op>) {
        let mut batch: Vec<LogEntry> = Vec::new();
        let mut shares: Vec<(Arc<Share>, usize)> = Vec::new();
        let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
        while let Some(first) = rx.recv().await {
            let deadline = tokio::time::Instant::now() + self.flush_interval;
            push(first, &mut batch, &mut shares, &mut waiters);
            // Collect until the interval ends, the batch is full, or someone waits for a flush.
            while batch.len() < MAX_BATCH && waiters.is_empty() {
                let op = match rx.try_recv() {
                    Ok(op) => op,
                    Err(_) => match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(op)) => op,
                        Ok(None) | Err(_) => break,
                    },
                };
                push(op, &mut batch, &mut shares, &mut waiters);
            }
            self.write_with_retry(&batch).await;
            let bytes: usize = batch.iter().map(|e| e.update.len()).sum();
            self.shared.queued.fetch_sub(batch.len(), Ordering::Relaxed);
            self.shared.bytes.fetch_sub(bytes, Ordering::Relaxed);
            self.metrics.persist_queue.dec_by(batch.len() as i64);
            self.metrics.persist_queue_bytes.dec_by(bytes as i64);
            batch.clear();
            for (share, len) in shares.drain(..) {
                share.bytes.fetch_sub(len, Ordering::Relaxed);
            }
            for w in waiters.drain(..) {
                let _ = w.send(());
            }
        }
    }

    async fn write_with_retry(&self, batch: &[LogEntry]) {
        if batch.is_empty() {
            return;
        }
        let mut delay = RETRY_MIN;
        loop {
            let started = Instant::now();
            match self.store.append(batch).await {
                Ok(()) => {
                    self.metrics
                        .store_append_seconds
                        .observe(started.elapsed().as_secs_f64());
                    self.metrics.store_appended.inc_by(batch.len() as u64);
                    if self.shared.append_failing.swap(false, Ordering::Relaxed) {
                        tracing::info!(store = self.store.name(), "store writes succeed again");
                    }
                    self.shared.update_up(&self.metrics);
                    return;
                }
                Err(e) => {
                    self.metrics.store_errors.inc();
                    self.shared.set_error(&e);
                    self.shared.append_failing.store(true, Ordering::Relaxed);
                    self.shared.update_up(&self.metrics);
                    tracing::error!(
                        store = self.store.name(),
                        entries = batch.len(),
                        queued = self.shared.queued.load(Ordering::Relaxed),
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
}

fn push(
    op: Op,
    batch: &mut Vec<LogEntry>,
    shares: &mut Vec<(Arc<Share>, usize)>,
    waiters: &mut Vec<oneshot::Sender<()>>,
) {
    match op {
        Op::Append(entry, share) => {
            if let Some(share) = share {
                shares.push((share, entry.update.len()));
            }
            batch.push(entry)
        }
        Op::Flush(w) => waiters.push(w),
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
        async fn rooms(&self) -> Result<Vec<RoomId>, StoreError> {
            self.inner.rooms().await
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

    /// The embedded store, refusing appends while `down`.
    struct Flaky {
        inner: EmbeddedStore,
        down: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl DocStore for Flaky {
        fn name(&self) -> &'static str {
            "flaky"
        }
        async fn load(&self, room: &RoomId) -> Result<StoredDoc, StoreError> {
            self.inner.load(room).await
        }
        async fn append(&self, batch: &[LogEntry]) -> Result<(), StoreError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::backend("test", std::io::Error::other("down")));
            }
            self.inner.append(batch).await
        }
        async fn compact(&self, r: &RoomId, s: &[u8], upto: u64) -> Result<(), StoreError> {
            self.inner.compact(r, s, upto).await
        }
        async fn rooms(&self) -> Result<Vec<RoomId>, StoreError> {
            self.inner.rooms().await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_buffer_refuses_and_keeps_everything_it_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Flaky {
            inner: EmbeddedStore::open(dir.path()).unwrap(),
            down: std::sync::atomic::AtomicBool::new(true),
        });
        let metrics = Arc::new(Metrics::new());
        let limits = BufferLimits {
            updates: 4,
            bytes: 1 << 20,
            refuse_while_failing: false,
        };
        let p = Persister::start_with_limits(
            store.clone(),
            metrics.clone(),
            Duration::ZERO,
            limits,
            &TaskTracker::new(),
        );
        let room = RoomId::parse("t.full.q1").unwrap();
        let mut accepted = 0;
        for seq in 1..=10 {
            if p.admit().is_ok() {
                p.append(room.clone(), seq, Bytes::from_static(b"u"));
                accepted += 1;
            }
        }
        assert_eq!(accepted, 4);
        assert_eq!(metrics.store_refused.get(), 6);
        // Let the persister fail once: not ready, with the reason.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let reason = p.readiness().unwrap_err();
        assert!(reason.contains("store failing"), "{reason}");
        assert_eq!(metrics.store_up.get(), 0);

        store.down.store(false, Ordering::SeqCst);
        p.flush().await.unwrap();
        assert_eq!(store.load(&room).await.unwrap().updates.len(), 4);
        assert_eq!(p.queued(), 0);
        assert!(p.readiness().is_ok());
        assert!(p.admit().is_ok());
        assert_eq!(metrics.store_up.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_shared_store_refuses_every_write_while_it_fails() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Flaky {
            inner: EmbeddedStore::open(dir.path()).unwrap(),
            down: std::sync::atomic::AtomicBool::new(true),
        });
        let limits = BufferLimits {
            refuse_while_failing: true,
            ..BufferLimits::default()
        };
        let p = Persister::start_with_limits(
            store.clone(),
            Arc::new(Metrics::new()),
            Duration::ZERO,
            limits,
            &TaskTracker::new(),
        );
        let room = RoomId::parse("t.shared.q1").unwrap();
        assert!(p.admit().is_ok(), "nothing failed yet");
        p.append(room.clone(), 1, Bytes::from_static(b"u"));
        // The write fails once: from then on nothing more is taken, though the buffer is empty
        // but for that one update.
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(p.admit().is_err());
        store.down.store(false, Ordering::SeqCst);
        p.flush().await.unwrap();
        assert!(p.admit().is_ok(), "taken again once the store writes");
        assert_eq!(store.load(&room).await.unwrap().updates.len(), 1);
    }
}
