//! What a receiving client does with the updates it gets, and the cheap path of deferred apply.
//!
//! In [`ApplyMode::Immediate`](crate::config::ApplyMode) every update is decoded and integrated
//! into the client's doc as it arrives, and an observer on the edited type reports each
//! delivery. In deferred mode, a client reads each update's edits straight from the v1 update
//! bytes ([`read_edits`]: the struct headers are skipped and the inserted content decoded, but
//! nothing is integrated), reports them, and keeps the bytes in a [`Deferred`] store that is
//! integrated later, outside the measured window. Both paths report through one
//! [`Deliveries`], which counts each `(editor, seq)` at most once per client, so an update that
//! is read cheaply and integrated later is not counted twice.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use yrs::block::{
    BLOCK_GC_REF_NUMBER, BLOCK_ITEM_ANY_REF_NUMBER, BLOCK_ITEM_DELETED_REF_NUMBER,
    BLOCK_ITEM_STRING_REF_NUMBER, BLOCK_SKIP_REF_NUMBER, HAS_ORIGIN, HAS_PARENT_SUB,
    HAS_RIGHT_ORIGIN,
};
use yrs::encoding::read::{Cursor, Read};
use yrs::sync::protocol::{MSG_AWARENESS, MSG_QUERY_AWARENESS, MSG_SYNC, MSG_SYNC_UPDATE};
use yrs::updates::decoder::{Decode, Decoder, DecoderV1};
use yrs::{Any, Doc, Number, Transact, Update};

use crate::stats::Shared;

/// One edit as a receiver sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edit {
    /// Index of the editor within its room.
    pub editor: u32,
    /// The editor's edit counter, from 1.
    pub seq: u64,
    /// Send time, µs since the run's shared start instant.
    pub ts_us: i64,
}

/// The value a map edit writes under the editor's key: `[send_µs, seq, editor]`. The editor is
/// in the value, not only in the key, because an update that overwrites a key encodes the key
/// only implicitly (through the item it replaces), and the cheap path reads the value alone.
pub fn map_value(edit: Edit) -> Any {
    Any::Array(Arc::from(vec![
        Any::Number(Number::Int(edit.ts_us)),
        Any::Number(Number::Int(edit.seq as i64)),
        Any::Number(Number::Int(edit.editor as i64)),
    ]))
}

/// Reads a value written by [`map_value`].
pub fn read_map_value(value: &Any) -> Option<Edit> {
    let Any::Array(parts) = value else {
        return None;
    };
    let [ts, seq, editor] = parts.as_ref() else {
        return None;
    };
    edit_of(ts, seq, editor)
}

fn edit_of(ts: &Any, seq: &Any, editor: &Any) -> Option<Edit> {
    Some(Edit {
        editor: u32::try_from(int(editor)?).ok()?,
        seq: u64::try_from(int(seq)?).ok()?,
        ts_us: int(ts)?,
    })
}

/// An integer from an `Any` (lib0 may carry it as a float).
fn int(a: &Any) -> Option<i64> {
    match a {
        Any::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// The text a text edit appends: `"{editor}:{seq}:{send_µs};"`.
pub fn text_token(edit: Edit) -> String {
    format!("{}:{}:{};", edit.editor, edit.seq, edit.ts_us)
}

/// Parses one token `{editor}:{seq}:{send_µs}` (without the `;`).
pub fn parse_text_token(tok: &str) -> Option<Edit> {
    let mut it = tok.split(':');
    let edit = Edit {
        editor: it.next()?.parse().ok()?,
        seq: it.next()?.parse().ok()?,
        ts_us: it.next()?.parse().ok()?,
    };
    it.next().is_none().then_some(edit)
}

/// Reads a string that must consist of whole tokens, each ending with `;` (several when a server
/// merged consecutive edits). `None` if any part is not a token: a string split mid-token is
/// left to the immediate path, which sees the whole text.
fn read_text_tokens(s: &str, out: &mut Vec<Edit>) -> Option<()> {
    let body = s.strip_suffix(';')?;
    for tok in body.split(';') {
        out.push(parse_text_token(tok)?);
    }
    Some(())
}

/// Reads the edits inserted by a v1 update without integrating it: walks every struct of every
/// client, skipping the headers (origins, parent, key) and reading the content in place (no
/// allocation for the edits' own shapes). Map edits are `Any` contents holding [`map_value`]s,
/// text edits string contents of whole tokens; deleted content, GC and skip structs carry no
/// edit. `None` if the update is malformed or inserts anything else (another value, a nested
/// type, formatting…): the caller then applies it the ordinary way. The delete set is not read:
/// it inserts nothing.
pub fn read_edits(update: &[u8], out: &mut Vec<Edit>) -> Option<()> {
    let mut d = DecoderV1::from(update);
    let clients: u32 = d.read_var().ok()?;
    for _ in 0..clients {
        let structs: u32 = d.read_var().ok()?;
        let _client = d.read_client().ok()?;
        let _clock: u32 = d.read_var().ok()?;
        for _ in 0..structs {
            read_struct(&mut d, out)?;
        }
    }
    Some(())
}

/// One struct of an update (the layout of `Update::decode_block` in yrs).
fn read_struct(d: &mut DecoderV1, out: &mut Vec<Edit>) -> Option<()> {
    let info = d.read_info().ok()?;
    match info {
        BLOCK_SKIP_REF_NUMBER => {
            let _len: u32 = d.read_var().ok()?;
        }
        BLOCK_GC_REF_NUMBER => {
            let _len = d.read_len().ok()?;
        }
        _ => {
            if info & HAS_ORIGIN != 0 {
                d.read_left_id().ok()?;
            }
            if info & HAS_RIGHT_ORIGIN != 0 {
                d.read_right_id().ok()?;
            }
            if info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN) == 0 {
                // No origin to inherit the parent from: the parent (and key) are written out.
                if d.read_parent_info().ok()? {
                    d.read_string().ok()?;
                } else {
                    d.read_left_id().ok()?;
                }
                if info & HAS_PARENT_SUB != 0 {
                    d.read_string().ok()?;
                }
            }
            read_content(d, info, out)?;
        }
    }
    Some(())
}

/// The content of an item (the layout of `ItemContent::decode`), where it can hold edits.
fn read_content(d: &mut DecoderV1, info: u8, out: &mut Vec<Edit>) -> Option<()> {
    match info & 0b1111 {
        BLOCK_ITEM_DELETED_REF_NUMBER => {
            let _len = d.read_len().ok()?;
        }
        BLOCK_ITEM_ANY_REF_NUMBER => {
            let len = d.read_len().ok()?;
            for _ in 0..len {
                out.push(read_edit_value(d)?);
            }
        }
        BLOCK_ITEM_STRING_REF_NUMBER => read_text_tokens(d.read_string().ok()?, out)?,
        _ => return None,
    }
    Some(())
}

/// lib0's `Any` tag of an array.
const ANY_ARRAY: u8 = 117;

/// Reads one encoded `Any` that must be a [`map_value`], without building the array (its
/// numbers decode without allocating).
fn read_edit_value(d: &mut DecoderV1) -> Option<Edit> {
    if d.read_u8().ok()? != ANY_ARRAY || d.read_var::<u32>().ok()? != 3 {
        return None;
    }
    let ts = Any::decode(d).ok()?;
    let seq = Any::decode(d).ok()?;
    let editor = Any::decode(d).ok()?;
    edit_of(&ts, &seq, &editor)
}

/// Where a frame's update payload lies, as a byte range of the frame.
pub type Span = std::ops::Range<usize>;

/// Reads a frame for deferred apply. If every message of the frame is an update whose edits
/// [`read_edits`] can read, or an awareness message or query (which carry no doc change and the
/// immediate path ignores too), pushes the updates' byte ranges to `updates`, their edits to
/// `edits`, and returns true. Otherwise (a sync step 1 or 2, an update it cannot read, anything
/// else) pushes nothing and returns false: the frame must be applied the ordinary way.
pub fn read_frame(frame: &[u8], updates: &mut Vec<Span>, edits: &mut Vec<Edit>) -> bool {
    let (n_updates, n_edits) = (updates.len(), edits.len());
    let readable = read_messages(frame, updates, edits).is_some();
    if !readable {
        updates.truncate(n_updates);
        edits.truncate(n_edits);
    }
    readable
}

/// The y-sync framing (see `yrs::sync::Message`): `varuint tag`, then for a sync message
/// `varuint kind` and a length-prefixed payload; an awareness message is one length-prefixed
/// payload, a query has none.
fn read_messages(frame: &[u8], updates: &mut Vec<Span>, edits: &mut Vec<Edit>) -> Option<()> {
    let mut c = Cursor::new(frame);
    while c.has_content() {
        match c.read_var::<u8>().ok()? {
            MSG_SYNC => {
                if c.read_var::<u8>().ok()? != MSG_SYNC_UPDATE {
                    return None;
                }
                let len: usize = c.read_var().ok()?;
                let span = c.next..c.next.checked_add(len)?;
                read_edits(frame.get(span.clone())?, edits)?;
                c.next = span.end;
                updates.push(span);
            }
            MSG_AWARENESS => {
                c.read_buf().ok()?;
            }
            MSG_QUERY_AWARENESS => {}
            _ => return None,
        }
    }
    Some(())
}

/// Updates kept for later, back to back in one buffer: a few bytes of bookkeeping each instead
/// of an allocation each (a saturation step may keep millions).
#[derive(Debug, Default)]
pub struct Deferred {
    bytes: Vec<u8>,
    /// End offset of each update in `bytes`.
    ends: Vec<usize>,
}

impl Deferred {
    pub fn push(&mut self, update: &[u8]) {
        self.bytes.extend_from_slice(update);
        self.ends.push(self.bytes.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The kept updates, in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(s, &e)| &self.bytes[s..e])
    }

    /// Integrates every kept update into `doc`, in arrival order and in one transaction (one
    /// observer call instead of one per update), and empties the store (keeping its capacity for
    /// the next window). Returns how many were applied.
    pub fn apply_to(&mut self, doc: &Doc) -> Result<usize> {
        let n = self.len();
        if n > 0 {
            let mut txn = doc.transact_mut();
            for bytes in self.iter() {
                let u = Update::decode_v1(bytes).context("undecodable update")?;
                txn.apply_update(u)
                    .map_err(|e| anyhow!("update does not apply: {e}"))?;
            }
        }
        self.bytes.clear();
        self.ends.clear();
        Ok(n)
    }
}

/// Reports one client's deliveries to [`Shared`]: every `(editor, seq)` at most once, and never
/// the client's own edits. An editor's edits reach a client in order, so a seq not above the
/// last one counted for that editor is a repeat (an update read cheaply, then integrated).
pub struct Deliveries {
    shared: Arc<Shared>,
    room: usize,
    /// The receiving client's index in its room.
    client: usize,
    own: Option<u32>,
    /// Highest seq counted per editor index of the room.
    last_seq: Vec<AtomicU64>,
}

impl Deliveries {
    pub fn new(
        shared: Arc<Shared>,
        room: usize,
        client: usize,
        own: Option<u32>,
        editors: usize,
    ) -> Self {
        Deliveries {
            shared,
            room,
            client,
            own,
            last_seq: (0..editors).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub fn record(&self, edit: Edit) {
        if Some(edit.editor) == self.own {
            return;
        }
        if let Some(last) = self.last_seq.get(edit.editor as usize) {
            if last.fetch_max(edit.seq, Relaxed) >= edit.seq {
                return;
            }
        }
        self.shared
            .on_delivery(self.room, self.client, edit.editor, edit.seq, edit.ts_us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::sync::{Message, SyncMessage};
    use yrs::updates::encoder::Encode;
    use yrs::{Map, ReadTxn, Text, WriteTxn};

    fn edit(editor: u32, seq: u64) -> Edit {
        Edit {
            editor,
            seq,
            ts_us: 1_000_000 + seq as i64,
        }
    }

    /// An update setting `m.e{editor}` as an editor does.
    fn map_update(doc: &Doc, e: Edit) -> Vec<u8> {
        let mut txn = doc.transact_mut();
        let m = txn.get_or_insert_map("m");
        m.insert(&mut txn, format!("e{}", e.editor), map_value(e));
        txn.encode_update_v1()
    }

    fn text_update(doc: &Doc, e: Edit) -> Vec<u8> {
        let mut txn = doc.transact_mut();
        let t = txn.get_or_insert_text("t");
        t.push(&mut txn, &text_token(e));
        txn.encode_update_v1()
    }

    fn frame_of(updates: &[&[u8]]) -> Vec<u8> {
        updates
            .iter()
            .flat_map(|u| Message::Sync(SyncMessage::Update(u.to_vec())).encode_v1())
            .collect()
    }

    #[test]
    fn reads_map_edits_first_and_overwriting() {
        let doc = Doc::with_client_id(7);
        let first = map_update(&doc, edit(3, 1));
        // The second write of the key has an origin: its key is not in the update.
        let second = map_update(&doc, edit(3, 2));
        for (u, seq) in [(&first, 1), (&second, 2)] {
            let mut out = Vec::new();
            read_edits(u, &mut out).unwrap();
            assert_eq!(out, vec![edit(3, seq)]);
        }
    }

    #[test]
    fn reads_text_edits_and_merged_updates() {
        let a = Doc::with_client_id(1);
        let b = Doc::with_client_id(2);
        let u1 = text_update(&a, edit(0, 1));
        let u2 = text_update(&a, edit(0, 2));
        let u3 = map_update(&b, edit(1, 5));
        // A server may merge updates (one struct holding both tokens, several clients).
        let merged = yrs::merge_updates_v1([&u1, &u2, &u3]).unwrap();
        let mut out = Vec::new();
        read_edits(&merged, &mut out).unwrap();
        out.sort_by_key(|e| (e.editor, e.seq));
        assert_eq!(out, vec![edit(0, 1), edit(0, 2), edit(1, 5)]);
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let doc = Doc::with_client_id(9);
        let mut txn = doc.transact_mut();
        let p = txn.get_or_insert_map("p");
        p.insert(&mut txn, "x", "not an edit");
        let u = txn.encode_update_v1();
        drop(txn);
        assert!(read_edits(&u, &mut Vec::new()).is_none());
        // A token cut in two by a re-encoding server.
        assert!(read_text_tokens("0:1:", &mut Vec::new()).is_none());
        // A map value of another shape.
        let doc = Doc::with_client_id(10);
        let mut txn = doc.transact_mut();
        let m = txn.get_or_insert_map("m");
        m.insert(
            &mut txn,
            "e1",
            Any::Array(Arc::from(vec![Any::Number(Number::Int(1)); 2])),
        );
        let u = txn.encode_update_v1();
        drop(txn);
        assert!(read_edits(&u, &mut Vec::new()).is_none());
        assert!(read_edits(&[1, 2, 3], &mut Vec::new()).is_none());
    }

    #[test]
    fn frames_with_several_messages_or_a_sync_step() {
        let doc = Doc::with_client_id(4);
        let u1 = map_update(&doc, edit(2, 1));
        let u2 = map_update(&doc, edit(2, 2));
        let (mut updates, mut edits) = (Vec::new(), Vec::new());
        let frame = frame_of(&[&u1, &u2]);
        assert!(read_frame(&frame, &mut updates, &mut edits));
        let got: Vec<&[u8]> = updates.iter().map(|r| &frame[r.clone()]).collect();
        assert_eq!(got, vec![&u1[..], &u2[..]]);
        assert_eq!(edits, vec![edit(2, 1), edit(2, 2)]);
        // An update then a sync step 2 in one frame: nothing is taken.
        let mut frame = frame_of(&[&u1]);
        frame.extend(Message::Sync(SyncMessage::SyncStep2(u2.clone())).encode_v1());
        let (mut updates, mut edits) = (Vec::new(), Vec::new());
        assert!(!read_frame(&frame, &mut updates, &mut edits));
        assert!(updates.is_empty() && edits.is_empty());
        // Awareness carries no doc change: skipped, as the immediate path skips it.
        let awareness = yrs::sync::Awareness::new(Doc::new());
        let mut frame = Message::Awareness(awareness.update().unwrap()).encode_v1();
        frame.extend(Message::AwarenessQuery.encode_v1());
        frame.extend(frame_of(&[&u1]));
        let mut edits = Vec::new();
        assert!(read_frame(&frame, &mut Vec::new(), &mut edits));
        assert_eq!(edits, vec![edit(2, 1)]);
        // Truncated: not readable.
        assert!(!read_frame(
            &frame[..frame.len() - 1],
            &mut Vec::new(),
            &mut Vec::new()
        ));
    }

    #[test]
    fn deferred_updates_apply_in_one_go() {
        let src = Doc::with_client_id(5);
        let mut store = Deferred::default();
        for seq in 1..=50 {
            store.push(&map_update(&src, edit(1, seq)));
        }
        assert_eq!(store.len(), 50);
        let dst = Doc::with_client_id(6);
        assert_eq!(store.apply_to(&dst).unwrap(), 50);
        assert!(store.is_empty());
        let (a, b) = (src.transact(), dst.transact());
        assert_eq!(a.state_vector(), b.state_vector());
        let m = b.get_map("m").unwrap();
        assert_eq!(
            m.get(&b, "e1").and_then(|v| match v {
                yrs::Out::Any(a) => read_map_value(&a),
                _ => None,
            }),
            Some(edit(1, 50))
        );
    }

    #[test]
    fn a_delivery_counts_once() {
        let shared = Arc::new(Shared::new(1, 3));
        let d = Deliveries::new(shared.clone(), 0, 0, Some(0), 2);
        shared.start_window();
        shared.on_send(0, 1, 1);
        d.record(edit(1, 1));
        d.record(edit(1, 1)); // the same edit again, when the deferred update is integrated
        d.record(edit(0, 1)); // its own edit
        shared.end_window();
        let h = shared.harvest();
        assert_eq!(h.delivered_in_window, 1);
        assert_eq!(h.deliveries.len(), 1);
    }
}
