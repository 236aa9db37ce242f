//! The default store: one redb file in the data directory.
//!
//! redb is an embedded, crash-safe B-tree store (copy-on-write pages, checksummed commits), so
//! the server keeps its documents across restarts — and across `SIGKILL` — with nothing else
//! installed. Two tables:
//!
//! | table | key | value |
//! |---|---|---|
//! | `snapshots` | room id | (last seq covered, v1 update of the whole doc) |
//! | `log` | (room id, seq) | v1 update |
//!
//! Every `append` is one write transaction committed with `Durability::Immediate` (an fsync):
//! the persister calls it once per batch, so under load many updates share one fsync. redb
//! calls block, so each runs on tokio's blocking pool.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::{DocStore, LogEntry, StoreError, StoredDoc};
use crate::room_id::RoomId;

const SNAPSHOTS: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("snapshots");
const LOG: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("log");

/// The file name of the database inside the data directory.
pub const DB_FILE: &str = "okrhub.redb";

/// A redb-backed [`DocStore`].
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
}

fn backend<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::backend("redb", e)
}

impl EmbeddedStore {
    /// Opens (or creates) `dir/okrhub.redb`, creating `dir` if needed. Fails if another process
    /// has the file open.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::backend(format!("cannot create {}", dir.display()), e))?;
        let path = dir.join(DB_FILE);
        let db = redb::Builder::new()
            .set_cache_size(16 << 20)
            .create(&path)
            .map_err(|e| StoreError::backend(format!("cannot open {}", path.display()), e))?;
        // Create the tables up front so that reads of a fresh database find them.
        let txn = db.begin_write().map_err(backend)?;
        txn.open_table(SNAPSHOTS).map_err(backend)?;
        txn.open_table(LOG).map_err(backend)?;
        txn.commit().map_err(backend)?;
        Ok(EmbeddedStore { db: Arc::new(db) })
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

#[async_trait]
impl DocStore for EmbeddedStore {
    fn name(&self) -> &'static str {
        "embedded"
    }

    async fn load(&self, room: &RoomId) -> Result<StoredDoc, StoreError> {
        let room = room.clone();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let snapshots = txn.open_table(SNAPSHOTS).map_err(backend)?;
            let log = txn.open_table(LOG).map_err(backend)?;
            let mut doc = StoredDoc::default();
            if let Some(guard) = snapshots.get(room.as_str()).map_err(backend)? {
                let (upto, bytes) = guard.value();
                doc.last_seq = upto;
                doc.snapshot = Some(bytes.to_vec());
            }
            // Entries at or below the snapshot's seq are covered by it (a late append may have
            // left one behind); only the ones after it are replayed.
            let from = doc.last_seq.saturating_add(1);
            for item in log
                .range((room.as_str(), from)..=(room.as_str(), u64::MAX))
                .map_err(backend)?
            {
                let (key, value) = item.map_err(backend)?;
                doc.last_seq = key.value().1;
                doc.updates.push(value.value().to_vec());
            }
            Ok(doc)
        })
        .await
    }

    async fn append(&self, batch: &[LogEntry]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let batch = batch.to_vec();
        self.blocking(move |db| {
            let mut txn = db.begin_write().map_err(backend)?;
            txn.set_durability(Durability::Immediate).map_err(backend)?;
            {
                let mut log = txn.open_table(LOG).map_err(backend)?;
                for entry in &batch {
                    log.insert((entry.room.as_str(), entry.seq), entry.update.as_ref())
                        .map_err(backend)?;
                }
            }
            txn.commit().map_err(backend)
        })
        .await
    }

    async fn compact(&self, room: &RoomId, snapshot: &[u8], upto: u64) -> Result<(), StoreError> {
        let room = room.clone();
        let snapshot = snapshot.to_vec();
        self.blocking(move |db| {
            let mut txn = db.begin_write().map_err(backend)?;
            txn.set_durability(Durability::Immediate).map_err(backend)?;
            {
                let mut snapshots = txn.open_table(SNAPSHOTS).map_err(backend)?;
                snapshots
                    .insert(room.as_str(), (upto, snapshot.as_slice()))
                    .map_err(backend)?;
                let mut log = txn.open_table(LOG).map_err(backend)?;
                log.retain_in((room.as_str(), 0)..=(room.as_str(), upto), |_, _| false)
                    .map_err(backend)?;
            }
            txn.commit().map_err(backend)
        })
        .await
    }

    async fn rooms(&self) -> Result<Vec<RoomId>, StoreError> {
        self.blocking(|db| {
            let txn = db.begin_read().map_err(backend)?;
            let snapshots = txn.open_table(SNAPSHOTS).map_err(backend)?;
            let log = txn.open_table(LOG).map_err(backend)?;
            let mut names: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
            for item in snapshots.iter().map_err(backend)? {
                let (key, _) = item.map_err(backend)?;
                names.insert(key.value().to_owned());
            }
            // The log is keyed (room, seq): jump from one room to the next instead of reading
            // every entry.
            let mut next = log
                .first()
                .map_err(backend)?
                .map(|(k, _)| k.value().0.to_owned());
            while let Some(name) = next {
                let after = log
                    .range((name.as_str(), u64::MAX)..)
                    .map_err(backend)?
                    .find(|item| item.as_ref().map_or(true, |(k, _)| k.value().0 != name));
                next = match after {
                    Some(item) => Some(item.map_err(backend)?.0.value().0.to_owned()),
                    None => None,
                };
                names.insert(name);
            }
            super::parse_stored_rooms(names)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn entry(room: &RoomId, seq: u64, byte: u8) -> LogEntry {
        LogEntry {
            room: room.clone(),
            seq,
            update: Bytes::from(vec![byte; 3]),
        }
    }

    #[tokio::test]
    async fn append_compact_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let a = RoomId::parse("acme.sales.q3").unwrap();
        let b = RoomId::parse("acme.ops.q3").unwrap();

        assert!(store.load(&a).await.unwrap().is_empty());
        store
            .append(&[entry(&a, 1, 1), entry(&b, 1, 9), entry(&a, 2, 2)])
            .await
            .unwrap();
        let doc = store.load(&a).await.unwrap();
        assert_eq!(doc.snapshot, None);
        assert_eq!(doc.updates, vec![vec![1; 3], vec![2; 3]]);
        assert_eq!(doc.last_seq, 2);

        store.compact(&a, b"snap", 1).await.unwrap();
        store.append(&[entry(&a, 3, 3)]).await.unwrap();
        let doc = store.load(&a).await.unwrap();
        assert_eq!(doc.snapshot.as_deref(), Some(&b"snap"[..]));
        assert_eq!(doc.updates, vec![vec![2; 3], vec![3; 3]]);
        assert_eq!(doc.last_seq, 3);

        // The other room is untouched by a's compaction.
        assert_eq!(store.load(&b).await.unwrap().updates, vec![vec![9; 3]]);

        let mut rooms = store.rooms().await.unwrap();
        rooms.sort();
        assert_eq!(rooms, vec![b.clone(), a.clone()]);

        // Reopening the file finds the same state.
        drop(store);
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(store.load(&a).await.unwrap().last_seq, 3);
    }

    #[tokio::test]
    async fn late_entry_covered_by_snapshot_is_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let a = RoomId::parse("acme.sales.q3").unwrap();
        store.compact(&a, b"snap", 5).await.unwrap();
        store.append(&[entry(&a, 4, 4)]).await.unwrap();
        let doc = store.load(&a).await.unwrap();
        assert!(doc.updates.is_empty());
        assert_eq!(doc.last_seq, 5);
    }
}
