//! The integrity frame every stored value carries: a format tag and a CRC-32C.
//!
//! Both stores keep each snapshot and each log entry as
//!
//! ```text
//! [tag: 1 byte = 0xC5][crc32c: 4 bytes, little-endian][payload: the v1 Yjs update]
//! ```
//!
//! The checksum covers the payload *and* what the value is: its kind (snapshot or log entry),
//! its room id and its sequence number (a log entry's seq, a snapshot's `upto`). So a flipped
//! byte anywhere in the payload, a value copied under another room or seq, a snapshot's `upto`
//! changed beside it, or a log entry moved into a snapshot's place all fail [`open`]. The stores
//! verify every value they read ([`crate::store::DocStore::load`], and therefore export and
//! import too) and refuse the room with [`crate::store::StoreError::Corrupt`] on a mismatch.
//!
//! CRC-32C (Castagnoli; the `crc32c` crate, SSE 4.2 / ARMv8 instructions with a software
//! fallback) rather than a 64-bit hash: it detects *every* error burst of up to 32 bits — one
//! flipped byte, or up to four adjacent ones, is caught with certainty, not with a probability
//! — and anything wider with probability 1 − 2⁻³². It is what ext4, iSCSI and LevelDB/RocksDB
//! use for the same job. It guards against accidents (a disk, a restore, a hand edit), not
//! against someone who can write the store: they could compute a CRC too, and can do worse.
//!
//! Values written before this framing existed (store format 1) are framed once when the store
//! is opened (see `embedded` and `redis`); afterwards every value must carry a valid frame.

/// The first byte of every framed value (format 2).
pub const TAG: u8 = 0xC5;
/// Bytes before the payload: the tag and the checksum.
pub const HEADER: usize = 5;
/// The store format of checksummed values. Format 1 (implicit: no marker) is the values
/// written before, bare Yjs updates.
pub const FORMAT: u64 = 2;

/// What a stored value is: part of what its checksum covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A room's snapshot; its seq is the last sequence number it covers (`upto`).
    Snapshot = 1,
    /// One update of a room's log; its seq is the update's.
    Log = 2,
    /// One update of a shared log (several nodes): its number is the writing node's own
    /// (the entry's `l`), since the log's seq is allocated by the store after it is sealed.
    Entry = 3,
    /// One org setting (a robot's configuration, a pending delivery, a dead letter): its
    /// "room" is `org` and the key joined by a newline, its seq 0 ([`setting_binding`]).
    Setting = 4,
}

/// What an org setting's checksum is bound to: its org and key, so that a value copied under
/// another key or org fails [`open`].
pub fn setting_binding(org: &str, key: &str) -> String {
    format!("{org}\n{key}")
}

impl Kind {
    fn describe(self, seq: u64) -> String {
        match self {
            Kind::Snapshot => format!("snapshot (upto {seq})"),
            Kind::Log => format!("log entry {seq}"),
            Kind::Entry => format!("log entry of node-local number {seq}"),
            Kind::Setting => "org setting".to_owned(),
        }
    }
}

/// Why a stored value failed [`open`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("{what}: {len} bytes, shorter than the {HEADER}-byte integrity header")]
    TooShort { what: String, len: usize },
    #[error("{what}: no integrity header (first byte {found:#04x}, expected {TAG:#04x})")]
    NoHeader { what: String, found: u8 },
    #[error("{what}: checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): the value was changed, or belongs to another room or seq")]
    Checksum {
        what: String,
        stored: u32,
        computed: u32,
    },
}

/// The checksum of `payload` as the value `kind` of `room` at `seq`.
fn checksum(kind: Kind, room: &str, seq: u64, payload: &[u8]) -> u32 {
    // The binding goes first, in one buffer: tag, kind, room length, room, seq. Room ids are at
    // most 128 bytes (`room_id::MAX_ROOM_ID_LEN`); a longer string only hashes in two steps.
    let mut head = [0u8; 3 + crate::room_id::MAX_ROOM_ID_LEN + 8];
    let room = room.as_bytes();
    let crc = if room.len() <= crate::room_id::MAX_ROOM_ID_LEN {
        head[0] = TAG;
        head[1] = kind as u8;
        head[2] = room.len() as u8;
        head[3..3 + room.len()].copy_from_slice(room);
        let end = 3 + room.len();
        head[end..end + 8].copy_from_slice(&seq.to_le_bytes());
        crc32c::crc32c(&head[..end + 8])
    } else {
        let crc = crc32c::crc32c(&[TAG, kind as u8, 0]);
        let crc = crc32c::crc32c_append(crc, room);
        crc32c::crc32c_append(crc, &seq.to_le_bytes())
    };
    crc32c::crc32c_append(crc, payload)
}

/// Writes `payload` framed as the value `kind` of `room` at `seq` into `out` (cleared first),
/// so that one buffer can serve a whole batch.
pub fn seal_into(out: &mut Vec<u8>, kind: Kind, room: &str, seq: u64, payload: &[u8]) {
    out.clear();
    out.reserve(HEADER + payload.len());
    out.push(TAG);
    out.extend_from_slice(&checksum(kind, room, seq, payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// `payload` framed as the value `kind` of `room` at `seq`.
pub fn seal(kind: Kind, room: &str, seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    seal_into(&mut out, kind, room, seq, payload);
    out
}

/// The payload of `stored`, if it is a valid frame of the value `kind` of `room` at `seq`.
pub fn open<'a>(kind: Kind, room: &str, seq: u64, stored: &'a [u8]) -> Result<&'a [u8], Mismatch> {
    let what = || kind.describe(seq);
    if stored.len() < HEADER {
        return Err(Mismatch::TooShort {
            what: what(),
            len: stored.len(),
        });
    }
    if stored[0] != TAG {
        return Err(Mismatch::NoHeader {
            what: what(),
            found: stored[0],
        });
    }
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&stored[1..HEADER]);
    let stored_crc = u32::from_le_bytes(crc);
    let payload = &stored[HEADER..];
    let computed = checksum(kind, room, seq, payload);
    if computed != stored_crc {
        return Err(Mismatch::Checksum {
            what: what(),
            stored: stored_crc,
            computed,
        });
    }
    Ok(payload)
}

/// [`open`] for an owned value: the payload, moved to the front of the same allocation.
pub fn open_owned(
    kind: Kind,
    room: &str,
    seq: u64,
    mut stored: Vec<u8>,
) -> Result<Vec<u8>, Mismatch> {
    open(kind, room, seq, &stored)?;
    stored.drain(..HEADER);
    Ok(stored)
}

/// Whether `stored` already is a valid frame of that value (a migration run twice, or cut short
/// and run again, leaves such values as they are). A bare Yjs update passes by accident with
/// probability 2⁻⁴⁰ (the tag and the checksum).
pub fn is_sealed(kind: Kind, room: &str, seq: u64, stored: &[u8]) -> bool {
    open(kind, room, seq, stored).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_to_its_payload() {
        let r = "acme.sales.q3";
        let sealed = seal(Kind::Log, r, 7, b"Durable 1");
        assert_eq!(sealed.len(), HEADER + 9);
        assert_eq!(open(Kind::Log, r, 7, &sealed), Ok(&b"Durable 1"[..]));
        assert_eq!(open_owned(Kind::Log, r, 7, sealed).unwrap(), b"Durable 1");
        let empty = seal(Kind::Snapshot, r, 0, b"");
        assert_eq!(open(Kind::Snapshot, r, 0, &empty), Ok(&b""[..]));
    }

    #[test]
    fn every_single_byte_change_is_caught() {
        let r = "acme.sales.q3";
        let sealed = seal(Kind::Snapshot, r, 42, b"Durable 1: ship the thing");
        for i in 0..sealed.len() {
            for flip in [0x01u8, 0x80, 0xff, b'D' ^ b'X'] {
                let mut bad = sealed.clone();
                bad[i] ^= flip;
                assert!(
                    open(Kind::Snapshot, r, 42, &bad).is_err(),
                    "byte {i} ^ {flip:#x} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn a_value_is_bound_to_its_room_seq_and_kind() {
        let r = "acme.sales.q3";
        let sealed = seal(Kind::Log, r, 7, b"update");
        let err = open(Kind::Log, "acme.ops.q3", 7, &sealed).unwrap_err();
        assert!(matches!(err, Mismatch::Checksum { .. }), "{err}");
        assert!(open(Kind::Log, r, 8, &sealed).is_err());
        assert!(open(Kind::Snapshot, r, 7, &sealed).is_err());
        assert!(err.to_string().contains("log entry 7"), "{err}");
    }

    #[test]
    fn bare_and_short_values_are_refused() {
        let r = "a.b.c";
        assert!(matches!(
            open(Kind::Log, r, 1, &[0xC5, 1, 2]),
            Err(Mismatch::TooShort { len: 3, .. })
        ));
        // A bare Yjs update (format 1): one client, …
        let bare = [1u8, 1, 0x9a, 0x8f, 0xb5, 0x07, 0, 0x28, 1];
        assert!(matches!(
            open(Kind::Log, r, 1, &bare),
            Err(Mismatch::NoHeader { found: 1, .. })
        ));
        assert!(!is_sealed(Kind::Log, r, 1, &bare));
        assert!(is_sealed(Kind::Log, r, 1, &seal(Kind::Log, r, 1, &bare)));
    }
}
