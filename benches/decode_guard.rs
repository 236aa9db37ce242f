//! What the decode guard (`protocol::bound`) costs beside the yrs decode it guards: a
//! keystroke's update frame, and a sync step 2 of a 1 MB+ document (text in several scripts,
//! maps of nested values, many clients).
//!
//!     cargo bench --bench decode_guard
//!
//! `guard` is the walk alone; `yrs` is what the room did before it (the message, then the
//! update in it); `decode_frame` is both, as the room runs them now.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use okrhub::protocol::{self, bound};
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{
    Any, Doc, Map, MapPrelim, Options, ReadTxn, StateVector, Text, TextPrelim, Transact, Update,
    WriteTxn,
};

/// The frame a client sends when it types one character into an objective's title.
fn keystroke_frame() -> Vec<u8> {
    let doc = Doc::with_client_id(7);
    {
        let mut txn = doc.transact_mut();
        let objectives = txn.get_or_insert_map("objectives");
        let o = objectives.insert(&mut txn, "o-01", MapPrelim::default());
        o.insert(
            &mut txn,
            "title",
            TextPrelim::new("Make onboarding delightful"),
        );
    }
    let mut txn = doc.transact_mut();
    let objectives = txn.get_or_insert_map("objectives");
    let title = objectives
        .get(&txn, "o-01")
        .and_then(|o| o.cast::<yrs::MapRef>().ok())
        .and_then(|o| o.get(&txn, "title"))
        .and_then(|t| t.cast::<yrs::TextRef>().ok())
        .expect("the title");
    title.insert(&mut txn, 4, "s");
    Message::Sync(SyncMessage::Update(txn.encode_update_v1())).encode_v1()
}

/// A sync step 2 carrying a document of a bit more than 1 MB, written by 8 clients.
fn large_frame() -> Vec<u8> {
    let doc = Doc::new();
    let mut i = 0u64;
    while doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default())
        .len()
        < 1 << 20
    {
        let writer = Doc::with_options(Options::with_client_id(yrs::block::ClientID::new(
            100 + i % 8,
        )));
        writer
            .transact_mut()
            .apply_update(
                Update::decode_v1(
                    &doc.transact()
                        .encode_state_as_update_v1(&StateVector::default()),
                )
                .unwrap(),
            )
            .unwrap();
        let before = writer.transact().state_vector();
        {
            let mut txn = writer.transact_mut();
            let text = txn.get_or_insert_text("notes");
            let len = text.len(&txn);
            text.insert(
                &mut txn,
                len,
                &format!("Entry {i}: grow revenue 让新用户留存 🚀 — ünïcödé. "),
            );
            let map = txn.get_or_insert_map("checkins");
            map.insert(
                &mut txn,
                format!("ci-{i:06}"),
                Any::from(std::collections::HashMap::from([
                    ("value".to_owned(), Any::from(i as f64)),
                    ("comment".to_owned(), Any::from(format!("comment {i} @ana"))),
                    (
                        "mentions".to_owned(),
                        Any::from(vec![Any::from("ana"), Any::from(i as i64)]),
                    ),
                ])),
            );
        }
        let diff = writer.transact().encode_state_as_update_v1(&before);
        doc.transact_mut()
            .apply_update(Update::decode_v1(&diff).unwrap())
            .unwrap();
        i += 1;
    }
    let full = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    Message::Sync(SyncMessage::SyncStep2(full)).encode_v1()
}

/// What the room did before the guard: yrs decodes the message, then the update in it.
fn yrs_decode(frame: &[u8]) -> Update {
    let Message::Sync(SyncMessage::Update(u) | SyncMessage::SyncStep2(u)) =
        Message::decode_v1(frame).unwrap()
    else {
        panic!("an update frame")
    };
    Update::decode_v1(&u).unwrap()
}

fn guard(c: &mut Criterion) {
    let limits = bound::Limits::default();
    for (name, frame) in [("keystroke", keystroke_frame()), ("1MB", large_frame())] {
        let mut group = c.benchmark_group(format!("decode_guard/{name}"));
        group.throughput(Throughput::Bytes(frame.len() as u64));
        if frame.len() > 1 << 16 {
            group.sample_size(20);
        }
        group.bench_function("guard", |b| {
            b.iter(|| bound::frame(std::hint::black_box(&frame), &limits).unwrap())
        });
        group.bench_function("yrs", |b| {
            b.iter(|| yrs_decode(std::hint::black_box(&frame)))
        });
        group.bench_function("decode_frame", |b| {
            b.iter(|| {
                let messages = protocol::decode_frame(std::hint::black_box(&frame)).unwrap();
                let Message::Sync(SyncMessage::Update(u) | SyncMessage::SyncStep2(u)) =
                    &messages[0]
                else {
                    panic!("an update frame")
                };
                Update::decode_v1(u).unwrap()
            })
        });
        group.finish();
    }
}

criterion_group!(benches, guard);
criterion_main!(benches);
