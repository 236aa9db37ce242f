//! The default store: one redb file in the data directory.
//!
//! redb is an embedded, crash-safe B-tree store (copy-on-write pages, checksummed commits), so
//! the server keeps its documents across restarts — and across `SIGKILL` — with nothing else
//! installed. Three tables:
//!
//! | table | key | value |
//! |---|---|---|
//! | `snapshots` | room id | (last seq covered, the framed v1 update of the whole doc) |
//! | `log` | (room id, seq) | the framed v1 update |
//! | `meta` | `format` | the store format: 2 (every value framed) |
//!
//! Every value carries an integrity frame ([`super::frame`]: a CRC-32C over the update, the room
//! and the seq), verified by [`DocStore::load`]; a mismatch is [`StoreError::Corrupt`], never
//! served. redb checks its pages only when it repairs a file or is asked to (a full scan), so
//! a byte changed inside a value would otherwise be read back as data.
//!
//! Every `append` is one write transaction committed with `Durability::Immediate` (an fsync):
//! the persister calls it once per batch, so under load many updates share one fsync. redb
//! calls block, so each runs on tokio's blocking pool.
//!
//! # Opening
//!
//! [`EmbeddedStore::open_with`] never takes something it does not recognise for an empty store:
//!
//! - no data directory, or an empty one: a new store is created (in `okrhub.redb.init`,
//!   renamed to `okrhub.redb` once its tables are committed, so a crash never leaves a
//!   half-made store under the real name);
//! - `okrhub.redb` of zero bytes, or a data directory with other files but no `okrhub.redb`:
//!   refused, unless [`Init::Allowed`] (`--init-store`) says to create a new store there;
//! - `okrhub.redb` that redb cannot open, that is not an okrhub store, or of a newer format:
//!   refused, always — it is left as it is;
//! - a store of format 1 (written before values were framed, no `meta` table): every value is
//!   framed in one transaction, once, with a log line; from then on a value without a valid
//!   frame is corrupt.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{
    Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, StorageError,
    TableDefinition, TableError, TableHandle,
};

use super::frame::{self, Kind};
use super::{DocStore, LogEntry, StoreError, StoredDoc};
use crate::room_id::RoomId;

const SNAPSHOTS: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("snapshots");
const LOG: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Org settings: (org, key) → a framed value ([`Kind::Setting`]). Made on first write.
const SETTINGS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("settings");
const FORMAT_KEY: &str = "format";

/// The file name of the database inside the data directory.
pub const DB_FILE: &str = "okrhub.redb";
/// Where a new store is made before it is renamed to [`DB_FILE`].
const INIT_FILE: &str = "okrhub.redb.init";

/// redb's page cache (reads and the write buffer). redb's default is 1 GiB, and it keeps the
/// pages it writes: a server typing into fresh rooms grew by ~2.6 MB of cached pages a round,
/// round after round (`load-tests/soak.sh`, heaptrack: `PagedCachedFile::write`). Bounded, the
/// cache fills in the first round and RSS stays flat after it (`load-tests/RESULTS.md`); reads
/// past it come from the OS page cache, which holds the file anyway.
const CACHE_BYTES: usize = 4 << 20;

/// When [`EmbeddedStore::open_with`] may create a new store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// Only where there is nothing: no data directory, or an empty one (the default).
    IfEmpty,
    /// Also in a data directory holding other files, or over a zero-length `okrhub.redb`
    /// (`--init-store`). Never over a file that has content.
    Allowed,
}

impl Init {
    pub fn from_flag(init_store: bool) -> Self {
        if init_store {
            Init::Allowed
        } else {
            Init::IfEmpty
        }
    }
}

/// A redb-backed [`DocStore`].
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
}

fn backend<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::backend("redb", e)
}

/// How to start over, said in every refusal that can be answered by a new store.
const START_OVER: &str = "to start a new, empty store instead, pass --init-store \
                          (OKRHUB_INIT_STORE=true)";

impl EmbeddedStore {
    /// [`EmbeddedStore::open_with`] creating a store only where there is nothing.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, Init::IfEmpty)
    }

    /// Opens `dir/okrhub.redb`, or creates it as `init` allows (see the module docs). Fails if
    /// another process has the file open, and refuses anything that is not a store it can
    /// use, leaving it untouched.
    pub fn open_with(dir: &Path, init: Init) -> Result<Self, StoreError> {
        let path = dir.join(DB_FILE);
        let shown = path.display();
        match std::fs::metadata(&path) {
            Ok(m) if !m.is_file() => Err(StoreError::Refused(format!(
                "{shown} is not a file: it cannot be the store; move it away"
            ))),
            Ok(m) if m.len() == 0 => match init {
                Init::Allowed => {
                    tracing::warn!(path = %shown, "replacing the zero-length data file by a new, empty store (--init-store)");
                    std::fs::remove_file(&path)
                        .map_err(|e| StoreError::backend(format!("cannot remove {shown}"), e))?;
                    Self::create(dir, &path)
                }
                Init::IfEmpty => Err(StoreError::Refused(format!(
                    "{shown} is empty (0 bytes): it is not a store, and the store it should be is \
                     gone (truncated by a full disk, a bad copy or restore?). Restore it from a \
                     backup; {START_OVER}"
                ))),
            },
            Ok(_) => Self::open_existing(&path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let others = other_files(dir)?;
                if others.is_empty() {
                    return Self::create(dir, &path);
                }
                if init == Init::Allowed {
                    tracing::warn!(dir = %dir.display(), files = ?others, "creating a new store in a data directory that holds other files (--init-store)");
                    return Self::create(dir, &path);
                }
                Err(StoreError::Refused(format!(
                    "the data directory {} holds other files ({}) but no {DB_FILE}: is it the right \
                     --data-dir, or was the store moved or deleted? Restore it from a backup; \
                     {START_OVER}",
                    dir.display(),
                    others.join(", ")
                )))
            }
            Err(e) => Err(StoreError::backend(format!("cannot read {shown}"), e)),
        }
    }

    /// Makes a new store at `path` through [`INIT_FILE`], then opens it.
    fn create(dir: &Path, path: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::backend(format!("cannot create {}", dir.display()), e))?;
        let tmp = dir.join(INIT_FILE);
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(StoreError::backend(
                    format!("cannot remove {}", tmp.display()),
                    e,
                ))
            }
            _ => {}
        }
        {
            let db = Database::create(&tmp)
                .map_err(|e| StoreError::backend(format!("cannot create {}", tmp.display()), e))?;
            let mut txn = db.begin_write().map_err(backend)?;
            txn.set_durability(Durability::Immediate).map_err(backend)?;
            txn.open_table(SNAPSHOTS).map_err(backend)?;
            txn.open_table(LOG).map_err(backend)?;
            txn.open_table(META)
                .map_err(backend)?
                .insert(FORMAT_KEY, frame::FORMAT)
                .map_err(backend)?;
            txn.commit().map_err(backend)?;
        }
        std::fs::rename(&tmp, path)
            .map_err(|e| StoreError::backend(format!("cannot rename {}", tmp.display()), e))?;
        // The rename is durable once the directory is.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::backend(format!("cannot sync {}", dir.display()), e))?;
        tracing::info!(path = %path.display(), "created a new, empty store");
        Self::open_existing(path)
    }

    /// Opens an existing, non-empty `path`: it must be an okrhub store (format 1 is migrated).
    fn open_existing(path: &Path) -> Result<Self, StoreError> {
        let shown = path.display();
        let not_a_store = |why: String| {
            StoreError::Refused(format!(
                "{shown} is not a store okrhub can open: {why}. It is left as it is: restore it \
                 from a backup, or move it away and start on an empty data directory (or with \
                 --init-store) for a new, empty store"
            ))
        };
        // redb trusts a file that says it was closed cleanly and may panic on one damaged
        // outside it: a panic here is one more way of saying "not a store".
        let db = match std::panic::catch_unwind(|| {
            redb::Builder::new().set_cache_size(CACHE_BYTES).open(path)
        }) {
            Err(panic) => {
                return Err(not_a_store(format!(
                    "redb panicked reading it ({})",
                    panic_text(&panic)
                )))
            }
            Ok(Err(DatabaseError::DatabaseAlreadyOpen)) => {
                return Err(StoreError::Refused(format!(
                    "{shown} is in use by another process (another okrhub on the same --data-dir?)"
                )))
            }
            // What redb says of a file without its header ("not a redb database").
            Ok(Err(DatabaseError::Storage(StorageError::Io(e))))
                if e.kind() == std::io::ErrorKind::InvalidData =>
            {
                return Err(not_a_store(e.to_string()))
            }
            Ok(Err(DatabaseError::Storage(StorageError::Io(e)))) => {
                return Err(StoreError::backend(format!("cannot open {shown}"), e))
            }
            Ok(Err(e)) => return Err(not_a_store(e.to_string())),
            Ok(Ok(db)) => db,
        };
        let legacy = {
            let txn = db.begin_read().map_err(backend)?;
            match txn.open_table(META) {
                Ok(meta) => match meta.get(FORMAT_KEY).map_err(backend)?.map(|v| v.value()) {
                    Some(frame::FORMAT) => false,
                    Some(n) => {
                        return Err(StoreError::Refused(format!(
                            "{shown} holds store format {n}, written by a newer okrhub; this one \
                             reads format {}",
                            frame::FORMAT
                        )))
                    }
                    None => return Err(not_a_store("its meta table has no format".into())),
                },
                Err(TableError::TableDoesNotExist(_)) => {
                    let tables: Vec<String> = (txn.list_tables().map_err(backend)?)
                        .map(|t| t.name().to_owned())
                        .collect();
                    let has = |name: &str| tables.iter().any(|t| t == name);
                    if !(has("snapshots") && has("log")) {
                        return Err(not_a_store(format!(
                            "a redb database without okrhub's tables (it has {tables:?})"
                        )));
                    }
                    true
                }
                Err(e) => return Err(not_a_store(e.to_string())),
            }
        };
        if legacy {
            migrate(&db, path).map_err(|e| match e {
                StoreError::Backend { .. } => {
                    not_a_store(format!("framing its values failed: {e}"))
                }
                e => e,
            })?;
        }
        Ok(EmbeddedStore { db: Arc::new(db) })
    }

    /// Writes `bytes` as the raw stored value of `room`'s log entry `seq`, frame or not: for
    /// tests that damage a store.
    #[cfg(test)]
    pub(crate) fn put_raw_log(&self, room: &RoomId, seq: u64, bytes: &[u8]) {
        let txn = self.db.begin_write().unwrap();
        txn.open_table(LOG)
            .unwrap()
            .insert((room.as_str(), seq), bytes)
            .unwrap();
        txn.commit().unwrap();
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

/// What a panic carried, as text.
fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    (panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

/// The names in `dir` other than the store's own temporary file (removed if left over from
/// a crash mid-creation); none when `dir` does not exist.
fn other_files(dir: &Path) -> Result<Vec<String>, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(StoreError::backend(
                format!("cannot read the data directory {}", dir.display()),
                e,
            ))
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::backend("reading the data directory", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != INIT_FILE {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Every room the two tables hold something for. The log is keyed (room, seq): it jumps from
/// one room to the next instead of reading every entry.
fn room_names(
    snapshots: &impl ReadableTable<&'static str, (u64, &'static [u8])>,
    log: &impl ReadableTable<(&'static str, u64), &'static [u8]>,
) -> Result<BTreeSet<String>, StoreError> {
    let mut names = BTreeSet::new();
    for item in snapshots.iter().map_err(backend)? {
        let (key, _) = item.map_err(backend)?;
        names.insert(key.value().to_owned());
    }
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
    Ok(names)
}

/// Frames every value of a format-1 store (written before values carried a checksum), in one
/// transaction, and marks the store format 2. A value that already is a valid frame is left as
/// it is. This cannot tell whether a format-1 value was damaged before: from here on, changes
/// are caught.
fn migrate(db: &Database, path: &Path) -> Result<(), StoreError> {
    let (mut rooms, mut snaps, mut entries) = (0usize, 0usize, 0usize);
    let mut txn = db.begin_write().map_err(backend)?;
    txn.set_durability(Durability::Immediate).map_err(backend)?;
    {
        let mut snapshots = txn.open_table(SNAPSHOTS).map_err(backend)?;
        let mut log = txn.open_table(LOG).map_err(backend)?;
        let mut buf = Vec::new();
        for room in room_names(&snapshots, &log)? {
            rooms += 1;
            let snapshot = (snapshots.get(room.as_str()).map_err(backend)?).map(|g| {
                let (upto, bytes) = g.value();
                (upto, bytes.to_vec())
            });
            if let Some((upto, bytes)) = snapshot {
                if !frame::is_sealed(Kind::Snapshot, &room, upto, &bytes) {
                    frame::seal_into(&mut buf, Kind::Snapshot, &room, upto, &bytes);
                    snapshots
                        .insert(room.as_str(), (upto, buf.as_slice()))
                        .map_err(backend)?;
                    snaps += 1;
                }
            }
            let values: Vec<(u64, Vec<u8>)> = log
                .range((room.as_str(), 0)..=(room.as_str(), u64::MAX))
                .map_err(backend)?
                .map(|item| {
                    let (k, v) = item.map_err(backend)?;
                    Ok((k.value().1, v.value().to_vec()))
                })
                .collect::<Result<_, StoreError>>()?;
            for (seq, bytes) in values {
                if !frame::is_sealed(Kind::Log, &room, seq, &bytes) {
                    frame::seal_into(&mut buf, Kind::Log, &room, seq, &bytes);
                    log.insert((room.as_str(), seq), buf.as_slice())
                        .map_err(backend)?;
                    entries += 1;
                }
            }
        }
        txn.open_table(META)
            .map_err(backend)?
            .insert(FORMAT_KEY, frame::FORMAT)
            .map_err(backend)?;
    }
    txn.commit().map_err(backend)?;
    tracing::warn!(
        path = %path.display(),
        rooms,
        snapshots = snaps,
        log_entries = entries,
        "store written before values carried checksums (format 1): every value now carries one (format 2); done once"
    );
    Ok(())
}

#[async_trait]
impl DocStore for EmbeddedStore {
    fn name(&self) -> &'static str {
        "embedded"
    }

    async fn load(&self, room: &RoomId) -> Result<StoredDoc, StoreError> {
        let id = room.clone();
        let db = self.db.clone();
        let read = tokio::task::spawn_blocking(move || {
            let room = &id;
            let txn = db.begin_read().map_err(backend)?;
            let snapshots = txn.open_table(SNAPSHOTS).map_err(backend)?;
            let log = txn.open_table(LOG).map_err(backend)?;
            let corrupt =
                |seq, m: frame::Mismatch| StoreError::corrupt(room, Some(seq), m.to_string());
            let mut doc = StoredDoc::default();
            if let Some(guard) = snapshots.get(room.as_str()).map_err(backend)? {
                let (upto, bytes) = guard.value();
                let payload = frame::open(Kind::Snapshot, room.as_str(), upto, bytes)
                    .map_err(|m| corrupt(upto, m))?;
                doc.last_seq = upto;
                doc.snapshot = Some(payload.to_vec());
            }
            // Entries at or below the snapshot's seq are covered by it (a late append may have
            // left one behind); only the ones after it are replayed.
            let from = doc.last_seq.saturating_add(1);
            for item in log
                .range((room.as_str(), from)..=(room.as_str(), u64::MAX))
                .map_err(backend)?
            {
                let (key, value) = item.map_err(backend)?;
                let seq = key.value().1;
                let payload = frame::open(Kind::Log, room.as_str(), seq, value.value())
                    .map_err(|m| corrupt(seq, m))?;
                doc.last_seq = seq;
                doc.updates.push(payload.to_vec());
            }
            Ok(doc)
        });
        match read.await {
            Ok(read) => read,
            // redb panics on some damaged pages: for this room, that is corrupt data.
            Err(e) if e.is_panic() => Err(StoreError::corrupt(
                room,
                None,
                format!(
                    "reading it made the store panic: {}",
                    panic_text(&e.into_panic())
                ),
            )),
            Err(e) => Err(StoreError::Task(e.to_string())),
        }
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
                let mut buf = Vec::new();
                for entry in &batch {
                    let room = entry.room.as_str();
                    frame::seal_into(&mut buf, Kind::Log, room, entry.seq, &entry.update);
                    log.insert((room, entry.seq), buf.as_slice())
                        .map_err(backend)?;
                }
            }
            txn.commit().map_err(backend)
        })
        .await
    }

    async fn compact(&self, room: &RoomId, snapshot: &[u8], upto: u64) -> Result<(), StoreError> {
        let room = room.clone();
        let framed = frame::seal(Kind::Snapshot, room.as_str(), upto, snapshot);
        self.blocking(move |db| {
            let mut txn = db.begin_write().map_err(backend)?;
            txn.set_durability(Durability::Immediate).map_err(backend)?;
            {
                let mut snapshots = txn.open_table(SNAPSHOTS).map_err(backend)?;
                snapshots
                    .insert(room.as_str(), (upto, framed.as_slice()))
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
            super::parse_stored_rooms(room_names(&snapshots, &log)?)
        })
        .await
    }

    async fn setting_get(&self, org: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (org, key) = (org.to_owned(), key.to_owned());
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let table = match txn.open_table(SETTINGS) {
                Err(TableError::TableDoesNotExist(_)) => return Ok(None),
                t => t.map_err(backend)?,
            };
            let Some(v) = table.get((org.as_str(), key.as_str())).map_err(backend)? else {
                return Ok(None);
            };
            open_setting(&org, &key, v.value()).map(Some)
        })
        .await
    }

    async fn setting_put(&self, org: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let sealed = frame::seal(Kind::Setting, &frame::setting_binding(org, key), 0, value);
        let (org, key) = (org.to_owned(), key.to_owned());
        self.blocking(move |db| {
            let mut txn = db.begin_write().map_err(backend)?;
            txn.set_durability(Durability::Immediate).map_err(backend)?;
            txn.open_table(SETTINGS)
                .map_err(backend)?
                .insert((org.as_str(), key.as_str()), sealed.as_slice())
                .map_err(backend)?;
            txn.commit().map_err(backend)
        })
        .await
    }

    async fn setting_delete(&self, org: &str, key: &str) -> Result<bool, StoreError> {
        let (org, key) = (org.to_owned(), key.to_owned());
        self.blocking(move |db| {
            let mut txn = db.begin_write().map_err(backend)?;
            txn.set_durability(Durability::Immediate).map_err(backend)?;
            let was = txn
                .open_table(SETTINGS)
                .map_err(backend)?
                .remove((org.as_str(), key.as_str()))
                .map_err(backend)?
                .is_some();
            txn.commit().map_err(backend)?;
            Ok(was)
        })
        .await
    }

    async fn settings_list(
        &self,
        org: &str,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let (org, prefix) = (org.to_owned(), prefix.to_owned());
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let table = match txn.open_table(SETTINGS) {
                Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                t => t.map_err(backend)?,
            };
            let mut out = Vec::new();
            for row in table
                .range((org.as_str(), prefix.as_str())..)
                .map_err(backend)?
            {
                let (k, v) = row.map_err(backend)?;
                let (o, key) = k.value();
                if o != org || !key.starts_with(prefix.as_str()) {
                    break;
                }
                out.push((key.to_owned(), open_setting(o, key, v.value())?));
            }
            Ok(out)
        })
        .await
    }
}

/// The payload of a stored org setting, checked.
fn open_setting(org: &str, key: &str, stored: &[u8]) -> Result<Vec<u8>, StoreError> {
    frame::open(Kind::Setting, &frame::setting_binding(org, key), 0, stored)
        .map(<[u8]>::to_vec)
        .map_err(|m| StoreError::Corrupt {
            room: format!("org {org}"),
            seq: None,
            reason: format!("setting {key:?}: {m}"),
        })
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
            by: None,
        }
    }

    #[tokio::test]
    async fn org_settings_are_kept_listed_by_prefix_and_bound_to_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(store.setting_get("acme", "robot/a").await.unwrap(), None);
        assert!(store
            .settings_list("acme", "robot/")
            .await
            .unwrap()
            .is_empty());
        store.setting_put("acme", "robot/b", b"B").await.unwrap();
        store.setting_put("acme", "robot/a", b"A").await.unwrap();
        store.setting_put("acme", "notify", b"N").await.unwrap();
        store.setting_put("acmf", "robot/c", b"C").await.unwrap();
        let listed = store.settings_list("acme", "robot/").await.unwrap();
        assert_eq!(
            listed,
            vec![
                ("robot/a".into(), b"A".to_vec()),
                ("robot/b".into(), b"B".to_vec())
            ]
        );
        assert!(store.setting_delete("acme", "robot/a").await.unwrap());
        assert!(!store.setting_delete("acme", "robot/a").await.unwrap());
        // A value copied under another key fails its check.
        let db = store.db.clone();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(SETTINGS).unwrap();
            let b = t
                .get(("acme", "robot/b"))
                .unwrap()
                .unwrap()
                .value()
                .to_vec();
            t.insert(("acme", "robot/x"), b.as_slice()).unwrap();
        }
        txn.commit().unwrap();
        let err = store.setting_get("acme", "robot/x").await.unwrap_err();
        assert!(err.is_corrupt(), "{err}");
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

#[cfg(test)]
mod integrity_tests {
    use super::*;
    use bytes::Bytes;

    fn room(s: &str) -> RoomId {
        RoomId::parse(s).unwrap()
    }

    fn entry(room: &RoomId, seq: u64, text: &str) -> LogEntry {
        LogEntry {
            room: room.clone(),
            seq,
            update: Bytes::from(text.as_bytes().to_vec()),
            by: None,
        }
    }

    /// Rewrites the raw stored value of `room`'s log entry `seq` with `change` applied.
    fn tamper_log(
        store: &EmbeddedStore,
        room: &RoomId,
        seq: u64,
        change: impl FnOnce(&mut Vec<u8>),
    ) {
        let txn = store.db.begin_write().unwrap();
        {
            let mut log = txn.open_table(LOG).unwrap();
            let mut value = log
                .get((room.as_str(), seq))
                .unwrap()
                .unwrap()
                .value()
                .to_vec();
            change(&mut value);
            log.insert((room.as_str(), seq), value.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }

    fn corrupt_seq(e: StoreError) -> Option<u64> {
        match e {
            StoreError::Corrupt { seq, .. } => seq,
            e => panic!("not corrupt: {e}"),
        }
    }

    #[tokio::test]
    async fn a_flipped_byte_in_a_log_entry_or_a_snapshot_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let (a, b) = (room("acme.sales.q3"), room("acme.ops.q3"));
        store
            .append(&[
                entry(&a, 1, "Durable 1"),
                entry(&a, 2, "two"),
                entry(&b, 1, "Durable 1"),
            ])
            .await
            .unwrap();
        tamper_log(&store, &a, 2, |v| v[frame::HEADER] ^= 0x01);
        let err = store.load(&a).await.unwrap_err();
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
        assert_eq!(corrupt_seq(err), Some(2));
        // The other room, in the same table, is untouched.
        assert_eq!(
            store.load(&b).await.unwrap().updates,
            vec![b"Durable 1".to_vec()]
        );

        // A snapshot: its upto is bound too.
        store.compact(&b, b"Durable 1", 1).await.unwrap();
        {
            let txn = store.db.begin_write().unwrap();
            {
                let mut snaps = txn.open_table(SNAPSHOTS).unwrap();
                let v = snaps.get(b.as_str()).unwrap().unwrap().value().1.to_vec();
                // Same bytes, claiming to cover one more update.
                snaps.insert(b.as_str(), (2, v.as_slice())).unwrap();
            }
            txn.commit().unwrap();
        }
        assert_eq!(corrupt_seq(store.load(&b).await.unwrap_err()), Some(2));
    }

    #[tokio::test]
    async fn a_value_copied_to_another_seq_or_room_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let (a, b) = (room("acme.sales.q3"), room("acme.ops.q3"));
        store
            .append(&[entry(&a, 1, "one"), entry(&a, 2, "two")])
            .await
            .unwrap();
        let one = {
            let txn = store.db.begin_read().unwrap();
            let log = txn.open_table(LOG).unwrap();
            let v = log.get((a.as_str(), 1)).unwrap().unwrap().value().to_vec();
            v
        };
        tamper_log(&store, &a, 2, |v| *v = one.clone());
        assert_eq!(corrupt_seq(store.load(&a).await.unwrap_err()), Some(2));
        {
            let txn = store.db.begin_write().unwrap();
            txn.open_table(LOG)
                .unwrap()
                .insert((b.as_str(), 1), one.as_slice())
                .unwrap();
            txn.commit().unwrap();
        }
        assert_eq!(corrupt_seq(store.load(&b).await.unwrap_err()), Some(1));
    }

    /// A store as okrhub wrote it before values were framed: two tables, bare values, no meta.
    /// A room as format 1 held it: id, snapshot (upto, bytes), log entries (seq, bytes).
    type Format1Room<'a> = (&'a str, Option<(u64, &'a [u8])>, &'a [(u64, &'a [u8])]);

    fn write_format_1(dir: &Path, rooms: &[Format1Room]) {
        std::fs::create_dir_all(dir).unwrap();
        let db = Database::create(dir.join(DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut snaps = txn.open_table(SNAPSHOTS).unwrap();
            let mut log = txn.open_table(LOG).unwrap();
            for (room, snap, entries) in rooms {
                if let Some((upto, bytes)) = snap {
                    snaps.insert(*room, (*upto, *bytes)).unwrap();
                }
                for (seq, bytes) in *entries {
                    log.insert((*room, *seq), *bytes).unwrap();
                }
            }
        }
        txn.commit().unwrap();
    }

    #[tokio::test]
    async fn a_format_1_store_is_framed_once_at_open() {
        let dir = tempfile::tempdir().unwrap();
        write_format_1(
            dir.path(),
            &[
                (
                    "acme.sales.q3",
                    Some((2, b"snap")),
                    &[(3, b"three"), (4, b"four")],
                ),
                ("acme.ops.q3", None, &[(1, b"one")]),
            ],
        );
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let a = store.load(&room("acme.sales.q3")).await.unwrap();
        assert_eq!(a.snapshot.as_deref(), Some(&b"snap"[..]));
        assert_eq!(a.updates, vec![b"three".to_vec(), b"four".to_vec()]);
        assert_eq!(a.last_seq, 4);
        assert_eq!(
            store.load(&room("acme.ops.q3")).await.unwrap().updates,
            vec![b"one".to_vec()]
        );
        {
            let txn = store.db.begin_read().unwrap();
            let meta = txn.open_table(META).unwrap();
            assert_eq!(
                meta.get(FORMAT_KEY).unwrap().unwrap().value(),
                frame::FORMAT
            );
        }
        // From now on a bare value is corrupt, not legacy.
        tamper_log(&store, &room("acme.ops.q3"), 1, |v| *v = b"one".to_vec());
        assert_eq!(
            corrupt_seq(store.load(&room("acme.ops.q3")).await.unwrap_err()),
            Some(1)
        );
        // Opening again migrates nothing more: the values stay framed once.
        drop(store);
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(
            store
                .load(&room("acme.sales.q3"))
                .await
                .unwrap()
                .updates
                .len(),
            2
        );
    }

    fn refused(result: Result<EmbeddedStore, StoreError>) -> String {
        match result {
            Err(StoreError::Refused(why)) => why,
            Err(e) => panic!("failed, but not refused: {e}"),
            Ok(_) => panic!("opened"),
        }
    }

    #[test]
    fn a_zero_length_data_file_is_refused_unless_init_is_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DB_FILE), b"").unwrap();
        let why = refused(EmbeddedStore::open(dir.path()));
        assert!(
            why.contains("empty (0 bytes)") && why.contains("--init-store"),
            "{why}"
        );
        assert_eq!(
            std::fs::metadata(dir.path().join(DB_FILE)).unwrap().len(),
            0,
            "left as it is"
        );
        EmbeddedStore::open_with(dir.path(), Init::Allowed).expect("--init-store makes a store");
        EmbeddedStore::open(dir.path()).expect("which opens as one afterwards");
    }

    #[test]
    fn a_file_that_is_not_a_store_is_refused_even_with_init() {
        let dir = tempfile::tempdir().unwrap();
        let garbage: Vec<u8> = (0..8192u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        std::fs::write(dir.path().join(DB_FILE), &garbage).unwrap();
        for init in [Init::IfEmpty, Init::Allowed] {
            let why = refused(EmbeddedStore::open_with(dir.path(), init));
            assert!(why.contains("is not a store okrhub can open"), "{why}");
        }
        assert_eq!(
            std::fs::read(dir.path().join(DB_FILE)).unwrap(),
            garbage,
            "untouched"
        );

        // A redb database of something else.
        let other = tempfile::tempdir().unwrap();
        {
            let db = Database::create(other.path().join(DB_FILE)).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META).unwrap().insert("x", 1).unwrap();
            txn.commit().unwrap();
        }
        let why = refused(EmbeddedStore::open(other.path()));
        assert!(why.contains("no format"), "{why}");
        let foreign = tempfile::tempdir().unwrap();
        {
            let db = Database::create(foreign.path().join(DB_FILE)).unwrap();
            let txn = db.begin_write().unwrap();
            const THINGS: TableDefinition<u64, u64> = TableDefinition::new("things");
            txn.open_table(THINGS).unwrap().insert(1, 1).unwrap();
            txn.commit().unwrap();
        }
        let why = refused(EmbeddedStore::open(foreign.path()));
        assert!(why.contains("without okrhub's tables"), "{why}");
    }

    /// A real store whose bytes after redb's magic number are damaged, or cut short: refused
    /// (redb may panic on such a file: that is caught and said too).
    #[tokio::test]
    async fn a_damaged_or_truncated_store_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            store
                .compact(&room("a.b.c"), &[7; 100_000], 3)
                .await
                .unwrap();
        }
        let path = dir.path().join(DB_FILE);
        let good = std::fs::read(&path).unwrap();
        for keep in [9, 600, 4096] {
            let mut bad = good.clone();
            for (i, b) in bad.iter_mut().enumerate().skip(keep) {
                *b = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3];
            }
            std::fs::write(&path, &bad).unwrap();
            let why = refused(EmbeddedStore::open(dir.path()));
            assert!(
                why.contains("is not a store okrhub can open"),
                "{keep}: {why}"
            );
            bad.truncate(4096);
            std::fs::write(&path, &bad).unwrap();
            let why = refused(EmbeddedStore::open(dir.path()));
            assert!(
                why.contains("is not a store okrhub can open"),
                "{keep}, cut: {why}"
            );
        }
    }

    #[test]
    fn a_store_of_a_newer_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(EmbeddedStore::open(dir.path()).unwrap());
        {
            let db = Database::open(dir.path().join(DB_FILE)).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META).unwrap().insert(FORMAT_KEY, 3).unwrap();
            txn.commit().unwrap();
        }
        let why = refused(EmbeddedStore::open(dir.path()));
        assert!(why.contains("format 3"), "{why}");
    }

    #[test]
    fn a_new_store_is_made_only_where_there_is_nothing_or_when_asked() {
        // A missing directory, and an empty one: created.
        let base = tempfile::tempdir().unwrap();
        EmbeddedStore::open(&base.path().join("new/data")).expect("missing dir");
        let empty = tempfile::tempdir().unwrap();
        EmbeddedStore::open(empty.path()).expect("empty dir");
        assert!(!empty.path().join(INIT_FILE).exists());

        // Other files but no store: refused, unless asked.
        let volume = tempfile::tempdir().unwrap();
        std::fs::create_dir(volume.path().join("lost+found")).unwrap();
        let why = refused(EmbeddedStore::open(volume.path()));
        assert!(
            why.contains("lost+found") && why.contains("--init-store"),
            "{why}"
        );
        assert!(!volume.path().join(DB_FILE).exists());
        EmbeddedStore::open_with(volume.path(), Init::Allowed).expect("--init-store");

        // What a crash mid-creation leaves behind does not count as content.
        let crashed = tempfile::tempdir().unwrap();
        std::fs::write(crashed.path().join(INIT_FILE), b"half").unwrap();
        EmbeddedStore::open(crashed.path()).expect("leftover init file");
    }
}
