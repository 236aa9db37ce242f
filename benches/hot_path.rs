//! Micro-benchmarks of the hub's hot path, so a regression shows without a full load run:
//! decoding a frame, and one update received by a room and queued to k other connections
//! (decode, apply to the doc, hand to the persister, queue the shared frame, and the k
//! dequeues a writer would do).
//!
//!     cargo bench --bench hot_path

mod common;

use bytes::Bytes;
use common::{dequeue, join, Rooms};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use okrhub::protocol;
use yrs::sync::{Message, SyncMessage};
use yrs::updates::encoder::Encode;
use yrs::{Doc, Map, Transact, WriteTxn};

/// A client doc that makes one small edit per call, as a check-in would.
struct Editor {
    doc: Doc,
    n: u64,
}

impl Editor {
    fn next_frame(&mut self) -> Bytes {
        self.n += 1;
        let mut txn = self.doc.transact_mut();
        let map = txn.get_or_insert_map("kr");
        map.insert(&mut txn, format!("k{}", self.n % 64), self.n as i64);
        let update = txn.encode_update_v1();
        Bytes::from(Message::Sync(SyncMessage::Update(update)).encode_v1())
    }
}

fn decode(c: &mut Criterion) {
    let frame = Editor {
        doc: Doc::new(),
        n: 0,
    }
    .next_frame();
    c.bench_function("decode_frame", |b| {
        b.iter(|| protocol::decode_frame(std::hint::black_box(&frame)).unwrap())
    });
}

fn receive_and_fan_out(c: &mut Criterion) {
    let rooms = Rooms::new();
    let _guard = rooms.rt.enter();
    let mut group = c.benchmark_group("room_receive_fan_out");
    for k in [1usize, 10, 100] {
        let room = rooms.room("bench.room.q1", Doc::new());
        let (writer, _) = join(&room, 1024);
        let readers: Vec<_> = (0..k).map(|_| join(&room, 1024).1).collect();
        let mut editor = Editor {
            doc: Doc::new(),
            n: 0,
        };
        group.throughput(Throughput::Elements(k as u64));
        group.bench_with_input(BenchmarkId::from_parameter(k), &k, |b, _| {
            b.iter_batched(
                || editor.next_frame(),
                |frame| {
                    room.receive(writer, frame).unwrap();
                    dequeue(&readers);
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, decode, receive_and_fan_out);
criterion_main!(benches);
