//! The decode guard: walks y-sync frames and v1 updates exactly as yrs 0.28.1 reads them,
//! allocating nothing, and refuses what would make yrs allocate more than the bytes can hold.
//!
//! yrs reserves room for a count it has just read from the wire before reading a single
//! element (`HashMap::try_reserve(count)` in `StateVector::decode`, `AwarenessUpdate::decode`,
//! `Update::decode` for clients and for each client's blocks, `Vec::try_reserve` for JSON and
//! Any contents, `Any::decode` for maps and arrays). Under Linux overcommit a reservation of
//! 2^28 entries succeeds, and a hash map then writes its control bytes: the 7-byte frame
//! `01 05 80 80 80 80 01` (an awareness update claiming 2^28 entries) cost ~525 MB of RSS and
//! half a second of CPU before yrs noticed the frame had ended. yrs also recurses without a
//! bound on nested Any arrays and maps (a stack overflow aborts the process), and in debug
//! builds panics on client ids beyond 53 bits and on clocks that overflow `u32` (in release it
//! silently wraps them into other ids and clocks).
//!
//! This module reads every field yrs reads, in the same order and with the same var-int rules,
//! and refuses a frame when
//!
//! - a count read from the wire is larger than what the rest of its buffer could hold: count ×
//!   the smallest encoding of one element > the bytes left ([`Refusal::Count`]);
//! - anything ends early ([`Refusal::Truncated`]);
//! - Any values nest deeper than [`Limits::max_depth`] ([`Refusal::TooDeep`]);
//! - yrs would panic or silently change the value: a client id of more than 53 bits, a block
//!   or delete range whose clock passes `u32::MAX`, a signed var-int longer than ten bytes or
//!   equal to `-2^63`; or the type tags yrs refuses ([`Refusal::Invalid`]).
//!
//! It never refuses what yrs or Yjs encode: the property test in `tests/decode_bounds.rs`
//! builds documents with every content type and checks that the guard passes their updates,
//! state vectors and awareness, and that yrs decodes them. It does not check UTF-8 (yrs does,
//! without allocating more than the string) nor the JSON inside embed, format and JSON
//! contents (serde_json parses it with its own nesting limit, allocating as it reads).
//!
//! The walk is a single pass over the bytes with no allocation; its cost is measured against
//! the decode it guards in `benches/hot_path.rs` (`decode_guard`).

/// What the guard allows beyond "no count larger than its bytes".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of Any arrays and maps (an array of scalars is 1).
    pub max_depth: usize,
}

impl Limits {
    /// The default nesting bound: serde_json's own, which yrs already applies to the JSON it
    /// parses (embeds, formats, awareness states).
    pub const DEFAULT_MAX_DEPTH: usize = 128;
    /// The highest nesting bound that may be configured. yrs decodes, encodes and drops Any
    /// recursively: on a 2 MiB stack (a tokio worker's) it overflows past ~6,150 levels in a
    /// release build and ~976 in a debug one; 256 keeps a fourfold margin in the worst of
    /// them (`tests/decode_bounds.rs` decodes, applies, encodes, reads and drops it on such a
    /// stack).
    pub const MAX_DEPTH_CEILING: usize = 256;

    /// The limits for bytes the server wrote itself (its store, an export being imported):
    /// everything in them passed the guard when it arrived, under whatever nesting bound was
    /// configured then, so only the ceiling applies.
    pub const STORED: Limits = Limits {
        max_depth: Self::MAX_DEPTH_CEILING,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: Self::DEFAULT_MAX_DEPTH,
        }
    }
}

/// Why the guard refused the bytes. yrs never saw them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A length or a field runs past the end of its buffer.
    #[error("{what} truncated: needs {need} bytes, {left} left")]
    Truncated {
        what: &'static str,
        need: u64,
        left: usize,
    },
    /// A count larger than the rest of its buffer could hold.
    #[error("{what} count {count} cannot fit in the {left} bytes left")]
    Count {
        what: &'static str,
        count: u64,
        left: usize,
    },
    /// Any arrays and maps nested deeper than the limit.
    #[error("values nested deeper than {limit}")]
    TooDeep { limit: usize },
    /// Something yrs refuses, or on which it would panic or silently change the value.
    #[error("{0}")]
    Invalid(&'static str),
}

impl Refusal {
    /// The label of the `okrhub_decode_refusals` metric.
    pub fn rule(&self) -> &'static str {
        match self {
            Refusal::Truncated { .. } => "truncated",
            Refusal::Count { .. } => "count",
            Refusal::TooDeep { .. } => "depth",
            Refusal::Invalid(_) => "invalid",
        }
    }
}

type Checked<T = ()> = Result<T, Refusal>;

/// Client ids are 53-bit (JavaScript's safe integers); yrs asserts it in debug builds and masks
/// the rest off in release ones.
const CLIENT_ID_LIMIT: u64 = 1 << 53;

/// Checks a y-sync frame: one or more messages back to back, each complete (see
/// `protocol::sync`), every update and state vector in them included.
pub fn frame(data: &[u8], limits: &Limits) -> Checked {
    if data.is_empty() {
        return Err(Refusal::Truncated {
            what: "frame",
            need: 1,
            left: 0,
        });
    }
    let mut r = Reader::new(data);
    while !r.is_empty() {
        message(&mut r, limits)?;
    }
    Ok(())
}

/// Checks a v1 update (`Update::decode_v1`'s input).
pub fn update_v1(data: &[u8], limits: &Limits) -> Checked {
    update(&mut Reader::new(data), limits)
}

/// Checks an encoded state vector (`StateVector::decode_v1`'s input).
pub fn state_vector(data: &[u8]) -> Checked {
    let mut r = Reader::new(data);
    let len = r.var_u32("state vector length")?;
    r.fits(len.into(), 2, "state vector entry")?;
    for _ in 0..len {
        r.client("state vector client")?;
        r.var_u32("state vector clock")?;
    }
    Ok(())
}

/// Checks an encoded awareness update (`AwarenessUpdate::decode_v1`'s input).
pub fn awareness(data: &[u8]) -> Checked {
    let mut r = Reader::new(data);
    let len = r.var_u64("awareness length")?;
    // client id, clock, the state's length: one byte each at least.
    r.fits(len, 3, "awareness entry")?;
    for _ in 0..len {
        r.client("awareness client")?;
        r.var_u32("awareness clock")?;
        r.buf("awareness state")?;
    }
    Ok(())
}

/// One message of a frame, as `yrs::sync::Message::decode` reads it.
fn message(r: &mut Reader, limits: &Limits) -> Checked {
    match r.var_u8("message type")? {
        0 => match r.var_u8("sync message type")? {
            0 => state_vector(r.buf("sync step 1")?),
            1 => update_v1(r.buf("sync step 2")?, limits),
            2 => update_v1(r.buf("sync update")?, limits),
            _ => Err(Refusal::Invalid("unknown sync message type")),
        },
        1 => awareness(r.buf("awareness update")?),
        2 => {
            // permission denied (0) carries a reason
            if r.var_u8("auth type")? == 0 {
                r.buf("auth reason")?;
            }
            Ok(())
        }
        3 => Ok(()),
        _ => r.buf("custom message").map(drop),
    }
}

/// `Update::decode` (v1): the clients' blocks, then the delete set.
fn update(r: &mut Reader, limits: &Limits) -> Checked {
    walk_update(r, limits, &mut ())
}

/// What a walk over an update may note on the way ([`split_v1`] notes where to cut); the
/// guard's own walk notes nothing, at no cost.
trait Visit {
    /// A client's section starts: its id, first clock and blocks count; its blocks start at
    /// `at`.
    fn client(&mut self, _client: u64, _clock: u32, _blocks: u32, _at: usize) {}
    /// Block `index` of the current section starts at `at`, at `clock`.
    fn block(&mut self, _index: u32, _clock: u64, _at: usize) {}
    /// The current section ends at `at`.
    fn client_end(&mut self, _at: usize) {}
}

impl Visit for () {}

fn walk_update(r: &mut Reader, limits: &Limits, v: &mut impl Visit) -> Checked {
    let clients = r.var_u32("update clients")?;
    // blocks count, client id, first clock
    r.fits(clients.into(), 3, "update client")?;
    for _ in 0..clients {
        let blocks = r.var_u32("blocks count")?;
        let client = r.client("update client")?;
        let first = r.var_u32("block clock")?;
        let mut clock = u64::from(first);
        // a GC or skip block: info byte and length
        r.fits(blocks.into(), 2, "block")?;
        v.client(client, first, blocks, r.pos);
        for i in 0..blocks {
            v.block(i, clock, r.pos);
            clock += block(r, limits)?;
            if clock > u64::from(u32::MAX) {
                return Err(Refusal::Invalid("block clocks pass 2^32"));
            }
        }
        v.client_end(r.pos);
    }
    delete_set(r)
}

/// Most blocks of one client an update is applied with in one yrs transaction (see
/// [`split_v1`]).
pub const MAX_RUN: u32 = 32;

/// One client's section of an update, and where [`split_v1`] cuts it.
struct Section {
    client: u64,
    blocks: u32,
    /// Every [`MAX_RUN`]-th block's offset and clock, the first block's included.
    cuts: Vec<(usize, u32)>,
    end: usize,
}

/// Notes the sections of an update and where to cut the long ones.
#[derive(Default)]
struct Cuts {
    sections: Vec<Section>,
}

impl Visit for Cuts {
    fn client(&mut self, client: u64, clock: u32, blocks: u32, at: usize) {
        self.sections.push(Section {
            client,
            blocks,
            cuts: vec![(at, clock)],
            end: at,
        });
    }
    fn block(&mut self, index: u32, clock: u64, at: usize) {
        if index > 0 && index.is_multiple_of(MAX_RUN) {
            if let Some(s) = self.sections.last_mut() {
                // within u32: the walk refuses clocks past it before a next block
                s.cuts.push((at, clock as u32));
            }
        }
    }
    fn client_end(&mut self, at: usize) {
        if let Some(s) = self.sections.last_mut() {
            s.end = at;
        }
    }
}

/// Cuts a v1 update whose clients have more than [`MAX_RUN`] blocks each into updates of at
/// most that many blocks per client, to be applied one after the other, each in its own
/// transaction; `None` when no client has that many (apply it whole).
///
/// Why: when a transaction commits, yrs squashes each client's new adjacent blocks from the
/// right end leftwards (`ClientBlockList::squash_left`), so every step copies everything
/// squashed so far, and frees nothing until the end — quadratic in a run's length, in time and
/// in memory. A run of n one-character items (what `Y.mergeUpdates` and yrs's
/// `merge_updates_v1` make of n keystrokes) costs n²/2 character copies: 200 KB of them held
/// ~700 MB and took 0.8 s. Applied in cuts of at most [`MAX_RUN`] blocks, each commit squashes
/// its own cut and appends it to what is already squashed: linear. 32 blocks a cut: a merged
/// run of 2,500 pushes costs the room 3.1 MB where applying it whole allocated 151 MB
/// (`tests/decode_bounds.rs`); 64 cost 4.9 MB, 128 8.7 MB.
///
/// The parts together are the update: the same blocks, the same clocks, the delete set in the
/// last part. Applying an update in parts is what a Yjs doc does with updates that arrive in
/// pieces; blocks whose dependencies are in a later part wait in yrs's pending set until it
/// comes.
pub fn split_v1(data: &[u8], limits: &Limits) -> Checked<Option<Vec<Vec<u8>>>> {
    // a client with more than MAX_RUN blocks needs at least twice that many bytes
    if data.len() <= 2 * MAX_RUN as usize {
        return update_v1(data, limits).map(|()| None);
    }
    let mut r = Reader::new(data);
    let mut cuts = Cuts::default();
    walk_update(&mut r, limits, &mut cuts)?;
    let parts = cuts
        .sections
        .iter()
        .map(|s| s.cuts.len())
        .max()
        .unwrap_or(0);
    if parts <= 1 {
        return Ok(None);
    }
    let delete_set = {
        let start = cuts.sections.last().map_or(0, |s| s.end);
        &data[start..r.pos]
    };
    let mut out = Vec::with_capacity(parts);
    for p in 0..parts {
        let chunks: Vec<_> = cuts.sections.iter().filter(|s| p < s.cuts.len()).collect();
        let mut part = Vec::new();
        write_var(&mut part, chunks.len() as u64);
        for s in chunks {
            let (from, clock) = s.cuts[p];
            let to = s.cuts.get(p + 1).map_or(s.end, |c| c.0);
            let first = p as u32 * MAX_RUN;
            let blocks = (s.blocks - first).min(MAX_RUN);
            write_var(&mut part, blocks.into());
            write_var(&mut part, s.client);
            write_var(&mut part, clock.into());
            part.extend_from_slice(&data[from..to]);
        }
        if p + 1 == parts {
            part.extend_from_slice(delete_set);
        } else {
            part.push(0);
        }
        out.push(part);
    }
    Ok(Some(out))
}

/// lib0's var-uint.
fn write_var(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7F) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// `IdSet::decode` (v1).
fn delete_set(r: &mut Reader) -> Checked {
    let clients = r.var_u32("delete set clients")?;
    // client id and ranges count
    r.fits(clients.into(), 2, "delete set client")?;
    for _ in 0..clients {
        r.client("delete set client")?;
        let ranges = r.var_u32("delete set ranges")?;
        r.fits(ranges.into(), 2, "delete set range")?;
        for _ in 0..ranges {
            let clock = r.var_u32("delete set clock")?;
            let len = r.var_u32("delete set length")?;
            if u64::from(clock) + u64::from(len) > u64::from(u32::MAX) {
                return Err(Refusal::Invalid("delete set range passes 2^32"));
            }
        }
    }
    Ok(())
}

const BLOCK_GC: u8 = 0;
const BLOCK_SKIP: u8 = 10;
const HAS_ORIGIN: u8 = 0b1000_0000;
const HAS_RIGHT_ORIGIN: u8 = 0b0100_0000;
const HAS_PARENT_SUB: u8 = 0b0010_0000;

/// `Update::decode_block`: returns how far the block moves its client's clock (yrs's
/// `block.len()`; 0 for an item yrs drops because its content is empty).
fn block(r: &mut Reader, limits: &Limits) -> Checked<u64> {
    let info = r.u8("block info")?;
    match info {
        BLOCK_SKIP | BLOCK_GC => match r.var_u32("block length")? {
            0 => Err(Refusal::Invalid("block of length 0")),
            len => Ok(len.into()),
        },
        _ => {
            let cant_copy_parent_info = info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN) == 0;
            if info & HAS_ORIGIN != 0 {
                r.id("origin")?;
            }
            if info & HAS_RIGHT_ORIGIN != 0 {
                r.id("right origin")?;
            }
            if cant_copy_parent_info {
                if r.var_u32("parent info")? == 1 {
                    r.buf("parent name")?;
                } else {
                    r.id("parent")?;
                }
                if info & HAS_PARENT_SUB != 0 {
                    r.buf("parent key")?;
                }
            }
            content(r, info, limits)
        }
    }
}

/// `ItemContent::decode`: returns the content's length in yrs's units (UTF-16 code units for
/// strings, elements for arrays, 1 for the rest).
fn content(r: &mut Reader, info: u8, limits: &Limits) -> Checked<u64> {
    match info & 0b1111 {
        // deleted
        1 => Ok(r.var_u32("deleted length")?.into()),
        // JSON: yrs reads one string more than its count says (`while remaining >= 0`), and a
        // count of 2^31 or more is negative to it, which it refuses.
        2 => {
            let count = r.var_u32("JSON count")?;
            if count > i32::MAX as u32 {
                return Err(Refusal::Invalid("JSON count beyond 2^31"));
            }
            let strings = u64::from(count) + 1;
            r.fits(strings, 1, "JSON value")?;
            for _ in 0..strings {
                r.buf("JSON value")?;
            }
            Ok(strings)
        }
        // binary
        3 => r.buf("binary content").map(|_| 1),
        // string
        4 => Ok(utf16_len(r.buf("string content")?)),
        // embed (JSON)
        5 => r.buf("embed").map(|_| 1),
        // format: key, then JSON
        6 => {
            r.buf("format key")?;
            r.buf("format value").map(|_| 1)
        }
        // type
        7 => {
            match r.u8("type ref")? {
                // array, map, text, XML fragment, XML hook (yrs reads no name), XML text,
                // sub-document, undefined
                0 | 1 | 2 | 4 | 5 | 6 | 9 | 15 => {}
                // XML element: its tag name
                3 => {
                    r.buf("XML element name")?;
                }
                // 7 is a weak link, which yrs reads only with its `weak` feature (off here)
                _ => return Err(Refusal::Invalid("unknown type ref")),
            }
            Ok(1)
        }
        // Any values
        8 => {
            let count = r.var_u32("any count")?;
            r.fits(count.into(), 1, "any value")?;
            for _ in 0..count {
                any(r, 0, limits)?;
            }
            Ok(count.into())
        }
        // sub-document: guid, then its options as an Any
        9 => {
            r.buf("sub-document guid")?;
            any(r, 0, limits)?;
            Ok(1)
        }
        _ => Err(Refusal::Invalid("unknown content ref")),
    }
}

/// `Any::decode`; `depth` is how many arrays and maps it sits in.
fn any(r: &mut Reader, depth: usize, limits: &Limits) -> Checked {
    match r.u8("any type")? {
        // undefined, null, false, true
        127 | 126 | 121 | 120 => Ok(()),
        // integer (signed var-int)
        125 => r.var_i64("integer").map(drop),
        // float32, float64, bigint
        124 => r.take(4, "float32").map(drop),
        123 => r.take(8, "float64").map(drop),
        122 => r.take(8, "bigint").map(drop),
        // string, buffer
        119 => r.buf("string").map(drop),
        116 => r.buf("buffer").map(drop),
        // map: key, value
        118 => {
            let len = r.var_u64("map length")?;
            r.fits(len, 2, "map entry")?;
            let depth = nested(depth, limits)?;
            for _ in 0..len {
                r.buf("map key")?;
                any(r, depth, limits)?;
            }
            Ok(())
        }
        // array
        117 => {
            let len = r.var_u64("array length")?;
            r.fits(len, 1, "array element")?;
            let depth = nested(depth, limits)?;
            for _ in 0..len {
                any(r, depth, limits)?;
            }
            Ok(())
        }
        _ => Err(Refusal::Invalid("unknown any type")),
    }
}

fn nested(depth: usize, limits: &Limits) -> Checked<usize> {
    if depth >= limits.max_depth {
        return Err(Refusal::TooDeep {
            limit: limits.max_depth,
        });
    }
    Ok(depth + 1)
}

/// The UTF-16 length of UTF-8 `bytes` (what yrs counts a string item's clock in): one unit per
/// character, two for those beyond the BMP (4-byte sequences). Invalid UTF-8 is refused by yrs
/// itself; the count is then only an estimate, which is all it needs to be.
fn utf16_len(bytes: &[u8]) -> u64 {
    let mut units = 0u64;
    for &b in bytes {
        // every byte that starts a character, plus one more for a 4-byte one
        units += u64::from((b & 0xC0) != 0x80) + u64::from(b >= 0xF0);
    }
    units
}

/// A cursor over one buffer, reading lib0's v1 encoding the way yrs's `Cursor` does.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn is_empty(&self) -> bool {
        self.left() == 0
    }

    /// Refuses `count` elements of at least `min` bytes each when the buffer has fewer left.
    fn fits(&self, count: u64, min: u64, what: &'static str) -> Checked {
        if count.saturating_mul(min) > self.left() as u64 {
            return Err(Refusal::Count {
                what,
                count,
                left: self.left(),
            });
        }
        Ok(())
    }

    fn take(&mut self, len: u64, what: &'static str) -> Checked<&'a [u8]> {
        if len > self.left() as u64 {
            return Err(Refusal::Truncated {
                what,
                need: len,
                left: self.left(),
            });
        }
        let start = self.pos;
        self.pos += len as usize;
        Ok(&self.buf[start..self.pos])
    }

    fn u8(&mut self, what: &'static str) -> Checked<u8> {
        Ok(self.take(1, what)?[0])
    }

    /// lib0's var-length buffer (and string): a `u32` length, then the bytes.
    fn buf(&mut self, what: &'static str) -> Checked<&'a [u8]> {
        let len = self.var_u32(what)?;
        self.take(len.into(), what)
    }

    /// yrs's `read_var_u64`: 7 bits a byte, shifts wrapping, at most 11 bytes.
    fn var_u64(&mut self, what: &'static str) -> Checked<u64> {
        let mut num = 0u64;
        let mut len = 0u32;
        loop {
            let b = self.u8(what)?;
            num |= u64::wrapping_shl(u64::from(b & 0x7F), len);
            len += 7;
            if b < 0x80 {
                return Ok(num);
            }
            if len > 70 {
                return Err(Refusal::Invalid("var-int too long"));
            }
        }
    }

    /// yrs's `read_var_u32`: like [`Reader::var_u64`], wrapping into 32 bits.
    fn var_u32(&mut self, what: &'static str) -> Checked<u32> {
        let mut num = 0u32;
        let mut len = 0u32;
        loop {
            let b = self.u8(what)?;
            num |= u32::wrapping_shl(u32::from(b & 0x7F), len);
            len += 7;
            if b < 0x80 {
                return Ok(num);
            }
            if len > 70 {
                return Err(Refusal::Invalid("var-int too long"));
            }
        }
    }

    /// `read_var::<u8>`: a `u32` var-int that must fit a byte.
    fn var_u8(&mut self, what: &'static str) -> Checked<u8> {
        u8::try_from(self.var_u32(what)?).map_err(|_| Refusal::Invalid("var-int beyond a byte"))
    }

    /// yrs's `read_var_i64`: 6 bits and a sign in the first byte, then 7 bits a byte. yrs
    /// shifts past 63 bits on an 11th byte and negates `-2^63`, both of which panic in a
    /// debug build: no encoder writes either, so both are refused.
    fn var_i64(&mut self, what: &'static str) -> Checked<i64> {
        let first = self.u8(what)?;
        let negative = first & 0x40 != 0;
        let mut num = i64::from(first & 0x3F);
        let mut shift = 6u32;
        let mut b = first;
        while b >= 0x80 {
            if shift > 63 {
                return Err(Refusal::Invalid("signed var-int too long"));
            }
            b = self.u8(what)?;
            num |= i64::from(b & 0x7F).wrapping_shl(shift);
            shift += 7;
        }
        if negative {
            num.checked_neg()
                .ok_or(Refusal::Invalid("signed var-int out of range"))
        } else {
            Ok(num)
        }
    }

    fn client(&mut self, what: &'static str) -> Checked<u64> {
        let id = self.var_u64(what)?;
        if id >= CLIENT_ID_LIMIT {
            return Err(Refusal::Invalid("client id beyond 53 bits"));
        }
        Ok(id)
    }

    /// An item id: client, then clock.
    fn id(&mut self, what: &'static str) -> Checked {
        self.client(what)?;
        self.var_u32(what).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_ok(data: &[u8]) -> Checked {
        frame(data, &Limits::default())
    }

    #[test]
    fn the_seven_byte_frame_is_refused_as_a_count() {
        let err = frame_ok(&[1, 5, 0x80, 0x80, 0x80, 0x80, 1]).unwrap_err();
        assert_eq!(
            err,
            Refusal::Count {
                what: "awareness entry",
                count: 1 << 28,
                left: 0
            }
        );
        assert_eq!(err.rule(), "count");
    }

    #[test]
    fn var_ints_read_as_yrs_reads_them() {
        let mut r = Reader::new(&[0xAC, 0x02]);
        assert_eq!(r.var_u64("x").unwrap(), 300);
        // u32 wraps, as yrs's does, rather than refusing
        let mut r = Reader::new(&[0xFF, 0xFF, 0xFF, 0xFF, 0x7F]);
        assert_eq!(r.var_u32("x").unwrap(), u32::MAX);
        // 11 bytes with a continuation bit on the last are refused
        let mut r = Reader::new(&[0xFF; 11]);
        assert_eq!(r.var_u64("x"), Err(Refusal::Invalid("var-int too long")));
        // a byte-sized var-int beyond 255
        let mut r = Reader::new(&[0x80, 0x02]);
        assert!(r.var_u8("x").is_err());
        // signed: -5 and a 10-byte value are fine, 11 bytes are not
        let mut r = Reader::new(&[0x45]);
        assert_eq!(r.var_i64("x").unwrap(), -5);
        let mut ten = [0xFF; 10];
        ten[0] = 0xBF;
        ten[9] = 0x01;
        assert!(Reader::new(&ten).var_i64("x").is_ok());
        let mut eleven = [0xFF; 11];
        eleven[10] = 0x01;
        assert!(Reader::new(&eleven).var_i64("x").is_err());
    }

    #[test]
    fn signed_var_ints_agree_with_yrs() {
        use yrs::encoding::read::{Cursor, Read};
        use yrs::encoding::write::Write;
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            1 << 31,
            -(1 << 40),
            i64::MAX,
            i64::MIN + 1,
        ] {
            let mut buf = Vec::new();
            buf.write_var(v);
            let ours = Reader::new(&buf).var_i64("x").unwrap();
            let theirs: i64 = Cursor::new(&buf).read_var().unwrap();
            assert_eq!(ours, theirs, "{v}");
            assert_eq!(ours, v);
        }
    }

    /// Applies `update` whole, and in the parts `split_v1` cuts it into (each in its own
    /// transaction), and returns both docs' states.
    fn whole_and_split(update: &[u8]) -> (Vec<u8>, Vec<u8>, usize) {
        use yrs::updates::decoder::Decode;
        use yrs::{ReadTxn, StateVector, Transact};
        let whole = yrs::Doc::new();
        whole
            .transact_mut()
            .apply_update(yrs::Update::decode_v1(update).unwrap())
            .unwrap();
        let parts = split_v1(update, &Limits::default())
            .unwrap()
            .expect("cut into parts");
        let split = yrs::Doc::new();
        for part in &parts {
            split
                .transact_mut()
                .apply_update(yrs::Update::decode_v1(part).unwrap())
                .unwrap();
        }
        let sv = StateVector::default();
        let a = whole.transact().encode_state_as_update_v1(&sv);
        let b = split.transact().encode_state_as_update_v1(&sv);
        (a, b, parts.len())
    }

    #[test]
    fn long_runs_are_cut_into_parts_that_make_the_same_doc() {
        use yrs::{Array, Doc, Map, Text, Transact, WriteTxn};
        // three writers, 700 transactions, merged: runs of hundreds of blocks per client
        let docs: Vec<Doc> = (1..=3).map(Doc::with_client_id).collect();
        let mut updates = Vec::new();
        for i in 0..700u32 {
            let d = &docs[(i % 7 % 3) as usize];
            let mut txn = d.transact_mut();
            match i % 5 {
                0 | 1 => {
                    let t = txn.get_or_insert_text("t");
                    let len = t.len(&txn);
                    t.insert(&mut txn, len, if i % 2 == 0 { "x" } else { "yz" });
                }
                2 => {
                    txn.get_or_insert_array("a").push_back(&mut txn, i as i64);
                }
                3 => {
                    txn.get_or_insert_map("m").insert(&mut txn, "k", i as i64);
                }
                _ => {
                    let t = txn.get_or_insert_text("t");
                    if t.len(&txn) > 2 {
                        t.remove_range(&mut txn, 1, 1);
                    }
                }
            }
            updates.push(txn.encode_update_v1());
        }
        let merged = yrs::merge_updates_v1(updates.iter().map(|u| u.as_slice())).unwrap();
        let (whole, split, parts) = whole_and_split(&merged);
        assert!(parts > 1, "{parts}");
        assert_eq!(whole, split);
        // short updates are not cut
        assert_eq!(split_v1(&updates[0], &Limits::default()), Ok(None));
    }

    #[test]
    fn utf16_length_counts_like_yrs() {
        for s in ["", "abc", "é", "日本語", "👍🏽 ok", "a\u{10FFFF}"] {
            assert_eq!(
                utf16_len(s.as_bytes()),
                s.encode_utf16().count() as u64,
                "{s}"
            );
        }
    }
}
