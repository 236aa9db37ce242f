//! Moving rooms between stores: `okrhub export` and `okrhub import`, so a team can start on the
//! embedded store and move to Redis (or back, or to a backup).
//!
//! An export is a directory with, per room, `ROOM.ydoc` — the whole document as one v1 Yjs
//! update, what any Yjs library can apply — and `ROOM.json`, the typed OKR view of the doc, when
//! [`typed_json`] can produce one. Each file is written to a temporary name and renamed, so an
//! interrupted export never leaves a truncated file under a final name.
//!
//! Import reads every `ROOM.ydoc` and *merges* it into what the store holds for that room (Yjs
//! updates commute and are idempotent): importing twice, or into a store that already has the
//! room, loses nothing on either side. The merged doc is written as one snapshot covering the
//! room's existing log, in the store's atomic `compact`. Run it while no server serves those
//! rooms: a server that has a room loaded does not see the import until the room reloads.

use std::path::{Path, PathBuf};

use yrs::{Doc, ReadTxn, StateVector, Transact};

use super::{doc_from_stored, DocStore, StoreError};
use crate::protocol::{self, bound::Limits};
use crate::room_id::RoomId;

/// The file extension of a room's binary snapshot.
pub const YDOC_EXT: &str = "ydoc";

/// Why an export or import failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a Yjs v1 update: {reason}")]
    BadSnapshot { path: PathBuf, reason: String },
    #[error("{path}: file name is not a room id: {reason}")]
    BadName { path: PathBuf, reason: String },
    /// Some rooms' stored data failed its integrity check: they were not exported (the others
    /// were).
    #[error("exported {exported} rooms to {}, but refused {} whose stored data is corrupt: {}", out.display(), corrupt.len(), corrupt.join("; "))]
    Corrupt {
        exported: usize,
        out: PathBuf,
        /// Each refused room's error.
        corrupt: Vec<String>,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TransferError + '_ {
    move |source| TransferError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The typed JSON view of an OKR document, or None when the doc is not in the OKR shape.
///
/// The doc's OKR set, read as of now: the same typed JSON `GET /api/rooms/{room}` answers.
pub fn typed_json(doc: &Doc) -> Option<serde_json::Value> {
    let set = crate::okr::read(&doc.transact(), crate::clock::now_millis());
    serde_json::to_value(set).ok()
}

/// The whole doc as one v1 update.
pub fn encode_full(doc: &Doc) -> Vec<u8> {
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

/// Writes `bytes` to `path` through a temporary file and a rename.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TransferError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Writes every room of `store` into `out`. Returns the rooms written, sorted. A room whose
/// stored data is corrupt (it fails its checksum) is not written; the others are, and the
/// export then fails with [`TransferError::Corrupt`] naming it — so that what can be saved of a
/// damaged store is.
pub async fn export(store: &dyn DocStore, out: &Path) -> Result<Vec<RoomId>, TransferError> {
    std::fs::create_dir_all(out).map_err(io(out))?;
    let mut rooms = store.rooms().await?;
    rooms.sort();
    let mut exported = Vec::with_capacity(rooms.len());
    let mut corrupt = Vec::new();
    for room in rooms {
        let loaded = match store.load(&room).await {
            Ok(stored) => doc_from_stored(&room, &stored).map(|doc| (stored, doc)),
            Err(e) => Err(e),
        };
        let (stored, doc) = match loaded {
            Ok(loaded) => loaded,
            Err(e) if e.is_corrupt() => {
                tracing::error!(%room, error = %e, "not exported: its stored data is corrupt");
                corrupt.push(e.to_string());
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let room = &room;
        write_file(&out.join(format!("{room}.{YDOC_EXT}")), &encode_full(&doc))?;
        if let Some(json) = typed_json(&doc) {
            let text = serde_json::to_vec_pretty(&json).unwrap_or_default();
            write_file(&out.join(format!("{room}.json")), &text)?;
        }
        tracing::info!(%room, last_seq = stored.last_seq, "exported");
        exported.push(room.clone());
    }
    if !corrupt.is_empty() {
        return Err(TransferError::Corrupt {
            exported: exported.len(),
            out: out.to_owned(),
            corrupt,
        });
    }
    Ok(exported)
}

/// Reads every `ROOM.ydoc` of `from` into `store`, merged with what the store holds. Returns
/// the rooms imported, sorted. Stops at the first bad file, before writing it.
pub async fn import(store: &dyn DocStore, from: &Path) -> Result<Vec<RoomId>, TransferError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(from)
        .map_err(io(from))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == YDOC_EXT))
        .collect();
    files.sort();
    let mut rooms = Vec::with_capacity(files.len());
    for path in files {
        let room = room_of(&path)?;
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let bad = |reason: String| TransferError::BadSnapshot {
            path: path.clone(),
            reason,
        };
        let parts =
            protocol::decode_update(&bytes, &Limits::STORED).map_err(|e| bad(e.to_string()))?;
        let stored = store.load(&room).await?;
        let doc = doc_from_stored(&room, &stored)?;
        for part in parts {
            doc.transact_mut()
                .apply_update(part)
                .map_err(|e| bad(e.to_string()))?;
        }
        store
            .compact(&room, &encode_full(&doc), stored.last_seq)
            .await?;
        tracing::info!(%room, merged = !stored.is_empty(), "imported");
        rooms.push(room);
    }
    Ok(rooms)
}

fn room_of(path: &Path) -> Result<RoomId, TransferError> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    RoomId::parse(stem).map_err(|e| TransferError::BadName {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::embedded::EmbeddedStore;
    use crate::store::LogEntry;
    use bytes::Bytes;
    use yrs::{GetString, Text, WriteTxn};

    fn text_update(doc: &Doc, s: &str) -> Vec<u8> {
        let mut txn = doc.transact_mut();
        let t = txn.get_or_insert_text("title");
        let len = t.len(&txn);
        t.insert(&mut txn, len, s);
        txn.encode_update_v1()
    }

    fn title(doc: &Doc) -> String {
        doc.get_or_insert_text("title").get_string(&doc.transact())
    }

    #[tokio::test]
    async fn export_then_import_merges_into_another_store() {
        let (a_dir, b_dir, out) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let a = EmbeddedStore::open(a_dir.path()).unwrap();
        let room = RoomId::parse("acme.sales.q3").unwrap();
        let client = Doc::new();
        let u1 = text_update(&client, "grow ");
        a.compact(&room, &u1, 0).await.unwrap();
        let u2 = text_update(&client, "revenue");
        a.append(&[LogEntry {
            room: room.clone(),
            seq: 1,
            update: Bytes::from(u2),
            by: None,
        }])
        .await
        .unwrap();

        assert_eq!(export(&a, out.path()).await.unwrap(), vec![room.clone()]);
        let typed: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.path().join("acme.sales.q3.json")).expect("typed JSON written"),
        )
        .unwrap();
        assert!(typed["objectives"].is_array(), "the typed OKR set: {typed}");

        // The target already has its own edit of the room: both survive.
        let b = EmbeddedStore::open(b_dir.path()).unwrap();
        let other = Doc::new();
        b.compact(&room, &text_update(&other, "!"), 0)
            .await
            .unwrap();
        assert_eq!(import(&b, out.path()).await.unwrap(), vec![room.clone()]);
        let merged = doc_from_stored(&room, &b.load(&room).await.unwrap()).unwrap();
        let t = title(&merged);
        assert!(t.contains("grow revenue") && t.contains('!'), "{t:?}");

        // Importing again changes nothing.
        import(&b, out.path()).await.unwrap();
        let again = doc_from_stored(&room, &b.load(&room).await.unwrap()).unwrap();
        assert_eq!(title(&again), t);
    }

    #[tokio::test]
    async fn a_bad_file_is_refused() {
        let (dir, from) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let store = EmbeddedStore::open(dir.path()).unwrap();
        std::fs::write(from.path().join("a.b.c.ydoc"), b"\xff\xff\xff").unwrap();
        assert!(matches!(
            import(&store, from.path()).await,
            Err(TransferError::BadSnapshot { .. })
        ));
        std::fs::remove_file(from.path().join("a.b.c.ydoc")).unwrap();
        std::fs::write(from.path().join("not-a-room.ydoc"), [0, 0]).unwrap();
        assert!(matches!(
            import(&store, from.path()).await,
            Err(TransferError::BadName { .. })
        ));
        assert!(store.rooms().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn export_saves_the_rooms_that_pass_and_names_the_corrupt_ones() {
        let (dir, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let (good, bad) = (
            RoomId::parse("acme.good.q3").unwrap(),
            RoomId::parse("acme.bad.q3").unwrap(),
        );
        let client = Doc::new();
        store
            .compact(&good, &text_update(&client, "fine"), 0)
            .await
            .unwrap();
        let mut framed = crate::store::frame::seal(
            crate::store::frame::Kind::Log,
            bad.as_str(),
            1,
            &text_update(&Doc::new(), "Durable 1"),
        );
        *framed.last_mut().unwrap() ^= 0x20;
        store.put_raw_log(&bad, 1, &framed);

        let err = export(&store, out.path()).await.unwrap_err();
        let said = err.to_string();
        assert!(
            matches!(err, TransferError::Corrupt { exported: 1, .. }),
            "{said}"
        );
        assert!(
            said.contains("acme.bad.q3") && said.contains("at seq 1"),
            "{said}"
        );
        assert!(out.path().join("acme.good.q3.ydoc").exists());
        assert!(
            !out.path().join("acme.bad.q3.ydoc").exists(),
            "never written"
        );
    }
}
