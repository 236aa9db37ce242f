//! Decoding allocates only what the bytes can hold (issue 12): the decode guard
//! (`okrhub::protocol::bound`) against the frames that made yrs reserve hundreds of megabytes,
//! measured with a counting global allocator; and the guard against everything yrs and the JS
//! client encode, which it must never refuse.
//!
//! The allocator is process-wide, so every test here takes [`serial`] for its whole body:
//! nothing else in this binary allocates while one of them measures.

mod common;

use std::alloc::System;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cap::Cap;
use okrhub::metrics::Metrics;
use okrhub::protocol::bound::{self, Limits, Refusal};
use okrhub::protocol::{self, FrameError};
use okrhub::room::{Client, Room};
use okrhub::room_id::RoomId;
use okrhub::store::embedded::EmbeddedStore;
use okrhub::store::persister::Persister;
use okrhub::ws::{Opcode, Outbox};
use proptest::prelude::*;
use yrs::encoding::read::Error as ReadError;
use yrs::encoding::write::Write;
use yrs::sync::{Awareness, Message, SyncMessage};
use yrs::types::xml::{XmlElementPrelim, XmlFragment, XmlTextPrelim};
use yrs::types::ToJson;
use yrs::updates::decoder::{Decode, DecoderV1};
use yrs::updates::encoder::Encode;
use yrs::{
    Any, Array, ArrayPrelim, Doc, Map, MapPrelim, OffsetKind, Options, ReadTxn, StateVector, Text,
    TextPrelim, Transact, Update, WriteTxn, Xml, XmlTextRef,
};

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Bytes allocated (not net: every allocation counts, freed or not) while `f` runs.
fn allocated_by<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOC.total_allocated();
    let r = std::hint::black_box(f());
    (r, ALLOC.total_allocated() - before)
}

/// What a refused frame may cost: the bound the issue sets.
const BOUND: usize = 64 * 1024;

/// The count the hostile frames claim: 2^28, as in the 7-byte frame.
const HUGE: u64 = 1 << 28;

fn var(buf: &mut Vec<u8>, v: u64) {
    buf.write_var(v);
}

/// A message of type `kind` (bytes before the length) whose body is `payload` as a lib0 buffer.
fn message(kind: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut m = kind.to_vec();
    m.write_buf(payload);
    m
}

/// An update of one client with one item under the root `a` whose content is `content`
/// (its ref number in the low bits of `info`), with no delete set after it (append `0` for a
/// complete update).
fn item_update(info: u8, content: &[u8]) -> Vec<u8> {
    let mut u = vec![1, 1, 1, 0, info, 1];
    u.write_string("a");
    u.extend_from_slice(content);
    u
}

fn huge_var() -> Vec<u8> {
    let mut v = Vec::new();
    var(&mut v, HUGE);
    v
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A hostile frame, and whether yrs 0.28.1 reserves memory for its count before reading.
struct Hostile {
    what: String,
    frame: Vec<u8>,
    yrs_reserves: bool,
}

/// The 7-byte frame and its siblings: every count yrs reads from the wire, each
/// claiming 2^28 elements with no bytes behind it; the update ones in a sync step 2 and in an
/// update message.
fn hostile_frames() -> Vec<Hostile> {
    let h = huge_var();
    let mut out = vec![
        Hostile {
            what: "awareness entries (the issue's 7-byte frame)".into(),
            frame: vec![1, 5, 0x80, 0x80, 0x80, 0x80, 1],
            yrs_reserves: true,
        },
        Hostile {
            what: "sync step 1 state-vector entries".into(),
            frame: message(&[0, 0], &h),
            yrs_reserves: true,
        },
    ];
    let updates: Vec<(&str, Vec<u8>, bool)> = vec![
        ("update clients", h.clone(), true),
        ("blocks of a client", concat(&[&[1], &h, &[1, 0]]), true),
        ("delete-set clients", concat(&[&[0], &h]), false),
        ("delete-set ranges", concat(&[&[0, 1, 1], &h]), false),
        ("JSON strings", item_update(2, &h), true),
        ("Any values", item_update(8, &h), true),
        (
            "Any map entries",
            item_update(8, &concat(&[&[1, 118], &h])),
            true,
        ),
        (
            "Any array elements",
            item_update(8, &concat(&[&[1, 117], &h])),
            true,
        ),
        (
            "array nested in a map",
            item_update(8, &concat(&[&[1, 118, 1, 1, b'k', 117], &h])),
            true,
        ),
        (
            "map nested in an array",
            item_update(8, &concat(&[&[1, 117, 1, 118], &h])),
            true,
        ),
        (
            "sub-document options",
            item_update(9, &concat(&[&[1, b'g', 118], &h])),
            true,
        ),
    ];
    for (what, update, reserves) in updates {
        for (name, kind) in [("sync step 2", [0u8, 1]), ("update", [0, 2])] {
            out.push(Hostile {
                what: format!("{what} ({name})"),
                frame: message(&kind, &update),
                yrs_reserves: reserves,
            });
        }
    }
    out
}

/// Decodes a frame the way the server did before the guard: every message with yrs, then the
/// updates in them.
fn yrs_unguarded(frame: &[u8]) -> Result<(), ReadError> {
    let mut decoder = DecoderV1::from(frame);
    let message = Message::decode(&mut decoder)?;
    if let Message::Sync(SyncMessage::SyncStep2(u) | SyncMessage::Update(u)) = message {
        Update::decode_v1(&u)?;
    }
    Ok(())
}

#[test]
fn hostile_counts_are_refused_before_anything_is_allocated() {
    let _s = serial();
    for h in hostile_frames() {
        let (result, bytes) = allocated_by(|| protocol::decode_frame(&h.frame));
        assert!(
            bytes < BOUND,
            "{}: {bytes} bytes allocated to refuse {} bytes",
            h.what,
            h.frame.len()
        );
        match result {
            // (JSON: yrs reads one string more than the count)
            Err(FrameError::Refused(Refusal::Count { count, .. })) => {
                assert!(count == HUGE || count == HUGE + 1, "{}", h.what)
            }
            other => panic!("{}: refused by the guard as a count, got {other:?}", h.what),
        }
    }
}

#[test]
fn without_the_guard_yrs_would_reserve_them() {
    let _s = serial();
    let frames = hostile_frames();
    // Let yrs allocate at most 64 MiB more than what is allocated now: a reservation beyond
    // that fails (yrs uses try_reserve), so asking for it shows as NotEnoughMemory.
    let headroom = 64 << 20;
    ALLOC
        .set_limit(ALLOC.allocated() + headroom)
        .expect("limit above the current use");
    let results: Vec<_> = frames.iter().map(|h| yrs_unguarded(&h.frame)).collect();
    ALLOC.set_limit(usize::MAX).unwrap();
    for (h, result) in frames.iter().zip(results) {
        if h.yrs_reserves {
            assert!(
                matches!(result, Err(ReadError::NotEnoughMemory(_))),
                "{}: yrs asks for more than 64 MiB: {result:?}",
                h.what
            );
        } else {
            // IdSet::decode grows as it reads: it runs out of bytes first.
            assert!(
                matches!(result, Err(ReadError::EndOfBuffer(_))),
                "{}: {result:?}",
                h.what
            );
        }
    }
}

/// A room with no sockets, as the server builds one, and a peer in it.
struct TestRoom {
    rt: tokio::runtime::Runtime,
    room: Room<Outbox>,
    _dir: tempfile::TempDir,
}

fn test_room() -> TestRoom {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let metrics = Arc::new(Metrics::new());
    let room = {
        let _guard = rt.enter();
        let persister = Persister::start(
            store,
            metrics.clone(),
            Duration::from_millis(50),
            &tokio_util::task::TaskTracker::new(),
        );
        Room::new(
            RoomId::parse("t.decode.q1").unwrap(),
            Doc::new(),
            0,
            0,
            persister,
            metrics,
        )
    };
    TestRoom {
        rt,
        room,
        _dir: dir,
    }
}

#[test]
fn the_room_refuses_them_with_1002_within_the_bound() {
    let _s = serial();
    let t = test_room();
    let _guard = t.rt.enter();
    let outbox = Arc::new(Outbox::new(64, Opcode::Binary));
    let peer = t.room.join(&Client::anonymous(), outbox).unwrap();
    for h in hostile_frames() {
        let frame = bytes::Bytes::from(h.frame.clone());
        let (result, bytes) = allocated_by(|| t.room.receive(peer, frame));
        assert!(bytes < BOUND, "{}: {bytes} bytes", h.what);
        let reason = result.expect_err(&h.what);
        assert_eq!(reason.code(), 1002, "{}", h.what);
        assert!(
            reason.text.starts_with("malformed frame: ") && reason.text.contains("count"),
            "{}: {}",
            h.what,
            reason.text
        );
    }
    assert_eq!(
        t.room.read(|d| d.transact().state_vector()),
        StateVector::default()
    );
}

/// Updates that do not come in a frame — another node's (`Room::apply_remote`), the store's,
/// an import's — pass the same guard.
#[test]
fn updates_from_other_paths_are_guarded_too() {
    let _s = serial();
    let t = test_room();
    let _guard = t.rt.enter();
    let frames = hostile_frames();
    let updates: Vec<_> = frames
        .iter()
        .filter(|h| h.frame[0] == 0 && h.frame[1] == 2)
        .map(|h| {
            // the payload of the update message: [0, 2, length var-int, update]
            let mut r = yrs::encoding::read::Cursor::new(&h.frame[2..]);
            let payload = yrs::encoding::read::Read::read_buf(&mut r)
                .unwrap()
                .to_vec();
            (h.what.clone(), payload)
        })
        .collect();
    assert_eq!(updates.len(), 11);
    let room_id = RoomId::parse("t.decode.q1").unwrap();
    for (what, update) in updates {
        let u = bytes::Bytes::from(update.clone());
        let (result, bytes) = allocated_by(|| t.room.apply_remote(7, u, None));
        assert!(bytes < BOUND, "apply_remote, {what}: {bytes} bytes");
        assert!(result.is_err(), "apply_remote, {what}");
        let stored = okrhub::store::StoredDoc {
            snapshot: Some(update),
            last_seq: 1,
            ..Default::default()
        };
        let (result, bytes) = allocated_by(|| okrhub::store::doc_from_stored(&room_id, &stored));
        assert!(bytes < BOUND, "store load, {what}: {bytes} bytes");
        assert!(result.is_err(), "store load, {what}");
    }
}

fn text_of(doc: &Doc) -> String {
    yrs::GetString::get_string(&doc.get_or_insert_text("title"), &doc.transact())
}

/// Over a real server: each hostile frame closes its connection with 1002 and costs the
/// server what a connection costs; another client in the room keeps syncing throughout.
#[test]
fn over_a_real_server_they_close_with_1002_and_the_room_goes_on() {
    let _s = serial();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(over_a_real_server());
}

async fn over_a_real_server() {
    use common::*;
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let url = sync_url(&server, &room("hostile"));
    let a = YClient::synced(&url).await;
    a.edit(|_, txn| txn.get_or_insert_text("title").insert(txn, 0, "kept"));
    let b = YClient::synced(&url).await;
    b.wait_for("b has a's text", |v| text_of(v.doc()) == "kept")
        .await;

    let frames = hostile_frames();
    let before = ALLOC.total_allocated();
    for (i, h) in frames.iter().enumerate() {
        let bad = YClient::synced(&url).await;
        bad.send_raw(h.frame.clone());
        let closed = bad.wait_closed().await;
        assert_eq!(closed.code, Some(1002), "{}: {closed:?}", h.what);
        assert!(
            closed.reason.starts_with("malformed frame: ") && closed.reason.contains("count"),
            "{}: {}",
            h.what,
            closed.reason
        );
        // the room goes on: a's next edit reaches b
        a.edit(|_, txn| txn.get_or_insert_text("title").push(txn, "!"));
        let expected = format!("kept{}", "!".repeat(i + 1));
        b.wait_for("b keeps syncing", |v| text_of(v.doc()) == expected)
            .await;
    }
    let spent = ALLOC.total_allocated() - before;
    // A connection, its handshake and two edits cost ~0.2 MB here (client side included);
    // one reservation without the guard would be gigabytes.
    let per_frame = spent / frames.len();
    println!(
        "{} frames, {spent} bytes allocated, {per_frame} per frame",
        frames.len()
    );
    assert!(per_frame < 2 << 20, "{per_frame} bytes per hostile frame");

    assert!(a.closed().is_none() && b.closed().is_none());
    assert_eq!(a.read(text_of), b.read(text_of));
    let addr = server.local_addr();
    assert_eq!(
        metric(addr, "okrhub_decode_refusals_total{rule=\"count\"}").await,
        frames.len() as f64
    );
    assert_eq!(
        metric(addr, "okrhub_closes_total{reason=\"malformed\"}").await,
        frames.len() as f64
    );
    server.shutdown().await.unwrap();
}

/// What `Y.mergeUpdates` and yrs's `merge_updates_v1` make of many small edits — one block
/// per edit, thousands in a row — is legitimate, and yrs squashes such a run quadratically
/// when it applies it in one transaction. The room applies it in cuts
/// (`bound::split_v1`): linear, and the same doc.
#[test]
fn a_long_run_of_small_edits_costs_the_room_linear_memory() {
    let _s = serial();
    let writer = Doc::with_client_id(77);
    let mut edits = Vec::new();
    for i in 0..2500i64 {
        let mut txn = writer.transact_mut();
        txn.get_or_insert_array("list").push_back(&mut txn, i);
        edits.push(txn.encode_update_v1());
    }
    let merged = yrs::merge_updates_v1(edits.iter().map(|u| u.as_slice())).unwrap();
    let (whole, applied_whole) = allocated_by(|| {
        let doc = Doc::new();
        doc.transact_mut()
            .apply_update(Update::decode_v1(&merged).unwrap())
            .unwrap();
        doc
    });

    let t = test_room();
    let _guard = t.rt.enter();
    let peer = t
        .room
        .join(
            &Client::anonymous(),
            Arc::new(Outbox::new(64, Opcode::Binary)),
        )
        .unwrap();
    let frame = bytes::Bytes::from(message(&[0, 2], &merged));
    let (result, by_room) = allocated_by(|| t.room.receive(peer, frame));
    result.unwrap();
    println!(
        "{} bytes: {applied_whole} allocated applying it whole, {by_room} by the room",
        merged.len()
    );
    assert!(
        by_room < 256 * merged.len(),
        "{by_room} bytes allocated for a {}-byte update",
        merged.len()
    );
    assert!(applied_whole > 10 * by_room, "{applied_whole} vs {by_room}");
    let sv = StateVector::default();
    assert_eq!(
        t.room.read(|d| d.transact().encode_state_as_update_v1(&sv)),
        whole.transact().encode_state_as_update_v1(&sv)
    );
}

/// An update writing `depth` arrays nested in each other into the map `m`.
fn nested_update(depth: usize) -> Vec<u8> {
    let mut value = Any::from(1.0);
    for _ in 0..depth {
        value = Any::Array(vec![value].into());
    }
    let doc = Doc::new();
    let mut txn = doc.transact_mut();
    txn.get_or_insert_map("m").insert(&mut txn, "deep", value);
    txn.encode_update_v1()
}

#[test]
fn nesting_is_bounded_and_the_ceiling_is_safe_on_a_small_stack() {
    let _s = serial();
    let limits = Limits::default();
    let at = nested_update(Limits::DEFAULT_MAX_DEPTH);
    assert_eq!(bound::update_v1(&at, &limits), Ok(()));
    let over = nested_update(Limits::DEFAULT_MAX_DEPTH + 1);
    assert_eq!(
        bound::update_v1(&over, &limits),
        Err(Refusal::TooDeep {
            limit: Limits::DEFAULT_MAX_DEPTH
        })
    );
    // A deep nest in a frame costs what its bytes cost, no more.
    let deep = concat(&[&[1], &[117, 1].repeat(100_000), &[126]]);
    let frame = message(&[0, 2], &item_update(8, &deep));
    let (result, bytes) = allocated_by(|| protocol::decode_frame(&frame));
    assert!(matches!(
        result,
        Err(FrameError::Refused(Refusal::TooDeep { .. }))
    ));
    assert!(bytes < BOUND, "{bytes}");

    // What the store may hold: the ceiling. yrs decodes, applies, encodes and drops it on a
    // 2 MiB stack (a tokio worker's) in this debug build.
    let ceiling = nested_update(Limits::MAX_DEPTH_CEILING);
    assert_eq!(bound::update_v1(&ceiling, &Limits::STORED), Ok(()));
    assert!(bound::update_v1(
        &nested_update(Limits::MAX_DEPTH_CEILING + 1),
        &Limits::STORED
    )
    .is_err());
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let doc = Doc::new();
            for part in protocol::decode_update(&ceiling, &Limits::STORED).unwrap() {
                doc.transact_mut().apply_update(part).unwrap();
            }
            let again = doc
                .transact()
                .encode_state_as_update_v1(&StateVector::default());
            let json = doc
                .transact()
                .get_map("m")
                .unwrap()
                .to_json(&doc.transact());
            drop((doc, again, json));
        })
        .unwrap()
        .join()
        .expect("no stack overflow at the ceiling");
}

#[test]
fn what_yrs_would_panic_on_in_a_debug_build_is_refused() {
    let _s = serial();
    let limits = Limits::default();
    let mut client = Vec::new();
    var(&mut client, 1 << 53);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "client id beyond 53 bits in a state vector",
            concat(&[&[1], &client, &[0]]),
        ),
        (
            "client id beyond 53 bits in an update",
            concat(&[&[1, 0], &client, &[0, 0]]),
        ),
        (
            "clock overflowing u32",
            // one GC block of length 2 at clock 2^32 - 1
            concat(&[&[1, 1, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0, 2, 0]]),
        ),
        (
            "delete range overflowing u32",
            concat(&[&[0, 1, 1, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 2]]),
        ),
        (
            "signed var-int of 11 bytes",
            item_update(8, &concat(&[&[1, 125], &[0xFF; 10], &[0x01]])),
        ),
    ];
    for (what, bytes) in cases {
        let checked = if what.contains("state vector") {
            bound::state_vector(&bytes)
        } else {
            bound::update_v1(&bytes, &limits)
        };
        assert!(
            matches!(checked, Err(Refusal::Invalid(_))),
            "{what}: {checked:?}"
        );
    }
}

/// Content yrs reads but never writes: binary (Yjs's Uint8Array), an XML hook (yrs reads no
/// name), JSON (yrs reads one string more than its count), the `undefined` type, GC and skip
/// structs.
#[test]
fn contents_yrs_reads_but_does_not_write_pass_when_yrs_reads_them() {
    let _s = serial();
    let mut binary = Vec::new();
    binary.write_buf([1u8, 2, 3]);
    let mut json = vec![1];
    json.write_string("1");
    json.write_string("\"two\"");
    let mut element = vec![3];
    element.write_string("p");
    let complete = |info, content: &[u8]| concat(&[&item_update(info, content), &[0]]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("binary", complete(3, &binary)),
        ("XML hook", complete(7, &[5])),
        ("XML element", complete(7, &element)),
        ("undefined type", complete(7, &[15])),
        ("JSON", complete(2, &json)),
        ("GC struct", vec![1, 1, 1, 0, 0, 3, 0]),
        ("skip struct", vec![1, 2, 1, 0, 10, 3, 0, 2, 0]),
    ];
    for (what, update) in cases {
        assert_eq!(
            bound::update_v1(&update, &Limits::default()),
            Ok(()),
            "{what}"
        );
        Update::decode_v1(&update).unwrap_or_else(|e| panic!("{what}: yrs reads it: {e}"));
    }
    // An unknown content ref, type ref or Any tag: refused by yrs and by the guard alike.
    for update in [complete(11, &[]), complete(7, &[8]), complete(8, &[1, 100])] {
        assert!(Update::decode_v1(&update).is_err());
        assert!(bound::update_v1(&update, &Limits::default()).is_err());
    }
}

/// Everything the stock JS client encodes (`tests/interop/contents.mjs`: text with formats
/// and embeds, nested Any, binary, nested types, XML, sub-documents, deletions, GC, skips,
/// three clients, merges, y-websocket's frames) passes the guard, and yrs decodes it. The XML
/// hook, whose name yrs 0.28.1 does not read, is the one exception: there guard and yrs agree.
#[test]
fn the_guard_passes_what_the_js_client_encodes() {
    let _s = serial();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    let out = std::process::Command::new("node")
        .arg(dir.join("contents.mjs"))
        .current_dir(&dir)
        .output()
        .expect(
            "needs Node.js >= 18 and `npm ci --prefix tests/interop` (as the interop test does)",
        );
    assert!(
        out.status.success(),
        "contents.mjs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seen = 0;
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let what = v["what"].as_str().unwrap();
        let bytes = from_hex(v["hex"].as_str().unwrap());
        let limits = Limits::default();
        match v["kind"].as_str().unwrap() {
            "update" => {
                let guard = bound::update_v1(&bytes, &limits);
                let yrs = Update::decode_v1(&bytes);
                if what == "xml hook" {
                    assert_eq!(
                        guard.is_ok(),
                        yrs.is_ok(),
                        "{what}: {guard:?} / {:?}",
                        yrs.err()
                    );
                } else {
                    assert_eq!(guard, Ok(()), "{what}");
                    yrs.unwrap_or_else(|e| panic!("{what}: {e}"));
                }
            }
            "update_sv" => {
                assert_eq!(bound::state_vector(&bytes), Ok(()), "{what}");
                StateVector::decode_v1(&bytes).unwrap();
            }
            "frame" => {
                let decoded = protocol::decode_frame(&bytes);
                assert!(decoded.is_ok(), "{what}: {decoded:?}");
            }
            other => panic!("unknown kind {other}"),
        }
        seen += 1;
    }
    assert!(seen >= 20, "every sample was written ({seen})");
}

fn from_hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// ---- yrs's own encodings: the property test ----

/// Any values of every kind, nested up to 4 deep.
fn any_value() -> impl Strategy<Value = Any> {
    let leaf = prop_oneof![
        Just(Any::Null),
        Just(Any::Undefined),
        any::<bool>().prop_map(Any::Bool),
        any::<i64>().prop_map(|n| Any::Number(yrs::any::Number::Int(n))),
        any::<i32>().prop_map(|n| Any::from(n as i64)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Any::from),
        any::<f32>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| Any::from(f as f64)),
        ".{0,12}".prop_map(Any::from),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(|b| Any::Buffer(b.into())),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(|v| Any::Array(v.into())),
            proptest::collection::hash_map(".{0,6}", inner, 0..6).prop_map(Any::from),
        ]
    })
}

#[derive(Debug, Clone)]
enum Op {
    TextInsert {
        doc: usize,
        at: usize,
        text: String,
    },
    TextFormat {
        doc: usize,
        at: usize,
        len: usize,
        key: String,
        value: Any,
    },
    TextEmbed {
        doc: usize,
        at: usize,
        value: Any,
    },
    TextDelete {
        doc: usize,
        at: usize,
        len: usize,
    },
    MapSet {
        doc: usize,
        key: String,
        value: Any,
    },
    MapNested {
        doc: usize,
        key: String,
        kind: u8,
        text: String,
    },
    MapRemove {
        doc: usize,
        key: String,
    },
    ArrayInsert {
        doc: usize,
        at: usize,
        values: Vec<Any>,
    },
    ArrayDelete {
        doc: usize,
        at: usize,
        len: usize,
    },
    Xml {
        doc: usize,
        tag: String,
        attr: String,
        text: String,
        bold: bool,
    },
    XmlRemove {
        doc: usize,
    },
    SubDoc {
        doc: usize,
        key: String,
        variant: u8,
    },
    Sync {
        from: usize,
        to: usize,
    },
}

const DOCS: usize = 3;

fn op() -> impl Strategy<Value = Op> {
    let d = 0..DOCS;
    let key = "[a-e]{1,2}";
    prop_oneof![
        (d.clone(), any::<usize>(), "\\PC{1,8}").prop_map(|(doc, at, text)| Op::TextInsert {
            doc,
            at,
            text
        }),
        (d.clone(), any::<usize>(), 1..6usize, key, any_value()).prop_map(
            |(doc, at, len, key, value)| Op::TextFormat {
                doc,
                at,
                len,
                key,
                value
            }
        ),
        (d.clone(), any::<usize>(), any_value()).prop_map(|(doc, at, value)| Op::TextEmbed {
            doc,
            at,
            value
        }),
        (d.clone(), any::<usize>(), 1..6usize).prop_map(|(doc, at, len)| Op::TextDelete {
            doc,
            at,
            len
        }),
        (d.clone(), key, any_value()).prop_map(|(doc, key, value)| Op::MapSet { doc, key, value }),
        (d.clone(), key, 0..3u8, "\\PC{0,6}").prop_map(|(doc, key, kind, text)| Op::MapNested {
            doc,
            key,
            kind,
            text
        }),
        (d.clone(), key).prop_map(|(doc, key)| Op::MapRemove { doc, key }),
        (
            d.clone(),
            any::<usize>(),
            proptest::collection::vec(any_value(), 1..4)
        )
            .prop_map(|(doc, at, values)| Op::ArrayInsert { doc, at, values }),
        (d.clone(), any::<usize>(), 1..4usize).prop_map(|(doc, at, len)| Op::ArrayDelete {
            doc,
            at,
            len
        }),
        (
            d.clone(),
            "[a-z]{1,6}",
            "[a-z]{0,4}",
            "\\PC{0,6}",
            any::<bool>()
        )
            .prop_map(|(doc, tag, attr, text, bold)| Op::Xml {
                doc,
                tag,
                attr,
                text,
                bold
            }),
        d.clone().prop_map(|doc| Op::XmlRemove { doc }),
        (d.clone(), key, 0..4u8).prop_map(|(doc, key, variant)| Op::SubDoc { doc, key, variant }),
        (d.clone(), d).prop_map(|(from, to)| Op::Sync { from, to }),
    ]
}

/// UTF-16 offsets of the boundaries between the characters and embeds of `t` (yrs would split
/// a surrogate pair anywhere else).
fn boundaries<T: ReadTxn>(t: &yrs::TextRef, txn: &T) -> Vec<u32> {
    let mut out = vec![0];
    let mut at = 0;
    for chunk in t.diff(txn, |_| ()) {
        match chunk.insert {
            yrs::Out::Any(Any::String(s)) => {
                for c in s.chars() {
                    at += c.len_utf16() as u32;
                    out.push(at);
                }
            }
            _ => {
                at += 1;
                out.push(at);
            }
        }
    }
    out
}

fn apply_op(docs: &[Doc], op: &Op) {
    match op {
        Op::TextInsert { doc, at, text } => {
            let d = &docs[*doc];
            let mut txn = d.transact_mut();
            let t = txn.get_or_insert_text("title");
            let b = boundaries(&t, &txn);
            t.insert(&mut txn, b[at % b.len()], text);
        }
        Op::TextFormat {
            doc,
            at,
            len,
            key,
            value,
        } => {
            let d = &docs[*doc];
            let mut txn = d.transact_mut();
            let t = txn.get_or_insert_text("title");
            let b = boundaries(&t, &txn);
            let start = at % b.len();
            let end = (start + len).min(b.len() - 1);
            if end > start {
                let attrs = yrs::types::Attrs::from([(key.as_str().into(), value.clone())]);
                t.format(&mut txn, b[start], b[end] - b[start], attrs);
            }
        }
        Op::TextEmbed { doc, at, value } => {
            let d = &docs[*doc];
            let mut txn = d.transact_mut();
            let t = txn.get_or_insert_text("title");
            let b = boundaries(&t, &txn);
            t.insert_embed(&mut txn, b[at % b.len()], value.clone());
        }
        Op::TextDelete { doc, at, len } => {
            let d = &docs[*doc];
            let mut txn = d.transact_mut();
            let t = txn.get_or_insert_text("title");
            let b = boundaries(&t, &txn);
            let start = at % b.len();
            let end = (start + len).min(b.len() - 1);
            // An embedded string reads back like text (one unit in the doc, its length in
            // `boundaries`): never delete past the end.
            let (from, to) = (b[start], b[end].min(t.len(&txn)));
            if to > from {
                t.remove_range(&mut txn, from, to - from);
            }
        }
        Op::MapSet { doc, key, value } => {
            let d = &docs[*doc];
            let mut txn = d.transact_mut();
            txn.get_or_insert_map("kr")
                .insert(&mut txn, key.as_str(), value.clone());
        }
        Op::MapNested {
            doc,
            key,
            kind,
            text,
        } => {
            let d = &docs[*doc];
            let mut txn = d.transact_mut();
            let m = txn.get_or_insert_map("kr");
            match kind {
                0 => {
                    let inner = m.insert(&mut txn, key.as_str(), MapPrelim::default());
                    inner.insert(&mut txn, "t", TextPrelim::new(text.as_str()));
                    inner.insert(&mut txn, "n", 1.5);
                }
                1 => {
                    let inner = m.insert(&mut txn, key.as_str(), ArrayPrelim::default());
                    inner.push_back(&mut txn, text.as_str());
                    inner.push_back(&mut txn, MapPrelim::default());
                }
                _ => {
                    m.insert(&mut txn, key.as_str(), TextPrelim::new(text.as_str()));
                }
            }
        }
        Op::MapRemove { doc, key } => {
            let d = &docs[*doc];
            let mut txn = d.transact_mut();
            txn.get_or_insert_map("kr").remove(&mut txn, key);
        }
        Op::ArrayInsert { doc, at, values } => {
            let d = &docs[*doc];
            let mut txn = d.transact_mut();
            let a = txn.get_or_insert_array("list");
            let at = (*at % (a.len(&txn) as usize + 1)) as u32;
            a.insert_range(&mut txn, at, values.clone());
        }
        Op::ArrayDelete { doc, at, len } => {
            let d = &docs[*doc];
            let mut txn = d.transact_mut();
            let a = txn.get_or_insert_array("list");
            let n = a.len(&txn) as usize;
            if n > 0 {
                let start = at % n;
                let len = (*len).min(n - start);
                a.remove_range(&mut txn, start as u32, len as u32);
            }
        }
        Op::Xml {
            doc,
            tag,
            attr,
            text,
            bold,
        } => {
            let d = &docs[*doc];
            let mut txn = d.transact_mut();
            let frag = txn.get_or_insert_xml_fragment("prose");
            let el = frag.push_back(&mut txn, XmlElementPrelim::empty(tag.as_str()));
            el.insert_attribute(&mut txn, "class", attr.as_str());
            let t: XmlTextRef = el.push_back(&mut txn, XmlTextPrelim::new(text.as_str()));
            if *bold && !text.is_empty() {
                let attrs = yrs::types::Attrs::from([("b".into(), Any::Bool(true))]);
                t.format(&mut txn, 0, 1, attrs);
            }
            frag.push_back(&mut txn, XmlTextPrelim::new("tail"));
        }
        Op::XmlRemove { doc } => {
            let d = &docs[*doc];
            let mut txn = d.transact_mut();
            let frag = txn.get_or_insert_xml_fragment("prose");
            if frag.len(&txn) > 0 {
                frag.remove_range(&mut txn, 0, 1);
            }
        }
        Op::SubDoc { doc, key, variant } => {
            let d = &docs[*doc];
            let mut options = Options::default();
            match variant {
                0 => {}
                1 => options.collection_id = Some("col".into()),
                2 => options.skip_gc = true,
                _ => {
                    options.auto_load = true;
                    options.guid = "fixed-guid".into();
                }
            }
            let mut txn = d.transact_mut();
            txn.get_or_insert_map("docs").insert(
                &mut txn,
                key.as_str(),
                Doc::with_options(options),
            );
        }
        Op::Sync { from, to } => {
            if from != to {
                let sv = docs[*to].transact().state_vector();
                let diff = docs[*from].transact().encode_state_as_update_v1(&sv);
                let u = Update::decode_v1(&diff).unwrap();
                docs[*to].transact_mut().apply_update(u).unwrap();
            }
        }
    }
}

/// Passes the guard and yrs, alone and in each frame that can carry it.
fn check_update(what: &str, update: &[u8]) -> Result<(), TestCaseError> {
    let limits = Limits::default();
    prop_assert_eq!(bound::update_v1(update, &limits), Ok(()), "{}", what);
    prop_assert!(
        Update::decode_v1(update).is_ok(),
        "{}: yrs decodes it",
        what
    );
    for kind in [[0u8, 1], [0, 2]] {
        let frame = message(&kind, update);
        prop_assert!(
            protocol::decode_frame(&frame).is_ok(),
            "{}: in a frame",
            what
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever yrs encodes, the guard passes: every transaction's update, full states,
    /// diffs, merges (with the skips a gap makes), state vectors and awareness, in frames
    /// alone and together.
    #[test]
    fn the_guard_never_refuses_what_yrs_encodes(
        ops in proptest::collection::vec(op(), 1..24),
        ids in proptest::collection::vec(1u64..(1 << 53), DOCS),
        subset in proptest::collection::vec(any::<bool>(), 0..64),
        state in any_value(),
    ) {
        let _s = serial();
        let docs: Vec<Doc> = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| {
                // distinct ids, one of them at the top of the 53-bit range
                let id = if i == 0 { (1 << 53) - 1 } else { id ^ (i as u64) };
                Doc::with_options(Options {
                    offset_kind: OffsetKind::Utf16,
                    ..Options::with_client_id(yrs::block::ClientID::new(id.max(2 + i as u64)))
                })
            })
            .collect();
        let recorded = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
        for d in &docs {
            let r = recorded.clone();
            d.observe_update_v1("record", move |_, e| r.lock().unwrap().push(e.update.clone()))
                .unwrap();
        }
        for op in &ops {
            apply_op(&docs, op);
        }
        let updates = recorded.lock().unwrap().clone();
        for (i, u) in updates.iter().enumerate() {
            check_update(&format!("transaction {i}"), u)?;
        }
        for (i, d) in docs.iter().enumerate() {
            let full = d.transact().encode_state_as_update_v1(&StateVector::default());
            check_update(&format!("full state of doc {i}"), &full)?;
            for (j, other) in docs.iter().enumerate() {
                let diff = d.transact().encode_state_as_update_v1(&other.transact().state_vector());
                check_update(&format!("doc {i} against doc {j}"), &diff)?;
            }
            let sv = d.transact().state_vector().encode_v1();
            prop_assert_eq!(bound::state_vector(&sv), Ok(()));
            prop_assert!(protocol::decode_frame(&message(&[0, 0], &sv)).is_ok());
        }
        // merges of a subset of the transactions: gaps in a client's clocks become skips
        let chosen: Vec<&[u8]> = updates
            .iter()
            .zip(subset.iter().chain(std::iter::repeat(&true)))
            .filter(|(_, keep)| **keep)
            .map(|(u, _)| u.as_slice())
            .collect();
        if !chosen.is_empty() {
            let merged = yrs::merge_updates_v1(chosen).unwrap();
            check_update("merged subset", &merged)?;
        }
        let all = yrs::merge_updates_v1(updates.iter().map(|u| u.as_slice())).unwrap();
        check_update("merged", &all)?;

        // awareness with any JSON state, and a frame of several messages
        let mut awareness = Awareness::new(docs[1].clone());
        let json = serde_json::to_string(&state).unwrap_or_else(|_| "null".into());
        awareness.set_local_state_raw(json);
        let update = awareness.update().unwrap();
        let aw = Message::Awareness(update).encode_v1();
        let step1 = Message::Sync(SyncMessage::SyncStep1(docs[0].transact().state_vector())).encode_v1();
        let upd = Message::Sync(SyncMessage::Update(all)).encode_v1();
        let several = [step1, aw, upd, Message::AwarenessQuery.encode_v1(),
            Message::Auth(Some("denied".into())).encode_v1()].concat();
        let decoded = protocol::decode_frame(&several);
        prop_assert!(decoded.is_ok(), "{:?}", decoded.err());
        prop_assert_eq!(decoded.unwrap().len(), 5);
    }
}

/// The generator reaches every content kind and struct the guard walks: one run of each
/// operation, shown by yrs's own rendering of the updates it produced.
#[test]
fn the_generated_documents_cover_every_content() {
    let _s = serial();
    let docs: Vec<Doc> = (0..DOCS)
        .map(|i| {
            Doc::with_options(Options {
                offset_kind: OffsetKind::Utf16,
                ..Options::with_client_id(yrs::block::ClientID::new(10 + i as u64))
            })
        })
        .collect();
    let recorded = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    for d in &docs {
        let r = recorded.clone();
        d.observe_update_v1("record", move |_, e| {
            r.lock().unwrap().push(e.update.clone())
        })
        .unwrap();
    }
    let map = Any::from(std::collections::HashMap::from([(
        "k".to_owned(),
        Any::Array(vec![Any::from(1.5), Any::Null, Any::Buffer(vec![1].into())].into()),
    )]));
    let ops = [
        Op::TextInsert {
            doc: 0,
            at: 0,
            text: "héllo 👍🏽 wörld".into(),
        },
        Op::TextFormat {
            doc: 0,
            at: 1,
            len: 3,
            key: "bold".into(),
            value: Any::Bool(true),
        },
        Op::TextEmbed {
            doc: 0,
            at: 2,
            value: map.clone(),
        },
        Op::TextDelete {
            doc: 0,
            at: 4,
            len: 3,
        },
        Op::MapSet {
            doc: 0,
            key: "a".into(),
            value: map,
        },
        Op::MapNested {
            doc: 0,
            key: "b".into(),
            kind: 0,
            text: "inner".into(),
        },
        Op::MapNested {
            doc: 0,
            key: "c".into(),
            kind: 1,
            text: "x".into(),
        },
        Op::MapRemove {
            doc: 0,
            key: "b".into(),
        },
        Op::ArrayInsert {
            doc: 1,
            at: 0,
            values: vec![Any::from("s"), Any::from(-3)],
        },
        Op::ArrayDelete {
            doc: 1,
            at: 0,
            len: 1,
        },
        Op::Xml {
            doc: 1,
            tag: "p".into(),
            attr: "lead".into(),
            text: "hi".into(),
            bold: true,
        },
        Op::SubDoc {
            doc: 1,
            key: "d".into(),
            variant: 3,
        },
        Op::Sync { from: 0, to: 1 },
        Op::TextInsert {
            doc: 1,
            at: 3,
            text: "B".into(),
        },
    ];
    for op in &ops {
        apply_op(&docs, op);
    }
    let updates = recorded.lock().unwrap().clone();
    // a merge of transactions 0 and 2 of doc 0 leaves a gap: a skip
    let gap = yrs::merge_updates_v1([updates[0].as_slice(), updates[2].as_slice()]).unwrap();
    let full = docs[1]
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    let rendered: String = [&updates[..], &[gap, full]]
        .concat()
        .iter()
        .map(|u| format!("{}\n", Update::decode_v1(u).unwrap()))
        .collect();
    for needle in [
        "skip(",
        "gc(",
        "deleted(",
        "'h",
        "<bold=true>",
        "<map(",
        "<array",
        "<text",
        "<xml",
        "Doc(id",
        "{k: [1.5, null, 0x01]}",
        "delete set",
    ] {
        assert!(rendered.contains(needle), "no {needle:?} in\n{rendered}");
    }
}
