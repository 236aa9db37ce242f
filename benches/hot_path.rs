//! Micro-benchmarks of the hub's hot path, so a regression shows without a full load run:
//! decoding a frame, and one update received by a room and queued to k other connections
//! (decode, apply to the doc, hand to the persister, queue the shared frame, and the k
//! dequeues a writer would do).
//!
//!     cargo bench --bench hot_path

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use okrhub::metrics::Metrics;
use okrhub::protocol;
use okrhub::room::Room;
use okrhub::room_id::RoomId;
use okrhub::store::embedded::EmbeddedStore;
use okrhub::store::persister::Persister;
use okrhub::ws::{Opcode, Outbox};
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let metrics = Arc::new(Metrics::new());
    let tracker = tokio_util::task::TaskTracker::new();

    let mut group = c.benchmark_group("room_receive_fan_out");
    for k in [1usize, 10, 100] {
        let persister = Persister::start(
            store.clone(),
            metrics.clone(),
            Duration::from_millis(50),
            &tracker,
        );
        let room = Room::new(
            RoomId::parse("bench.room.q1").unwrap(),
            Doc::new(),
            0,
            0,
            persister,
            metrics.clone(),
        );
        // Detached outboxes (no socket): the room's side of a delivery, then the dequeue a
        // writer would do.
        let join = || {
            let outbox = Arc::new(Outbox::new(1024, Opcode::Binary));
            (room.join(None, outbox.clone()).unwrap(), outbox)
        };
        let (writer, _) = join();
        let readers: Vec<_> = (0..k).map(|_| join()).collect();
        let mut editor = Editor {
            doc: Doc::new(),
            n: 0,
        };
        let mut sent = Vec::new();
        group.throughput(Throughput::Elements(k as u64));
        group.bench_with_input(BenchmarkId::from_parameter(k), &k, |b, _| {
            b.iter_batched(
                || editor.next_frame(),
                |frame| {
                    room.receive(writer, frame).unwrap();
                    for (_, outbox) in &readers {
                        sent.clear();
                        outbox.take(&mut sent, usize::MAX);
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, decode, receive_and_fan_out);
criterion_main!(benches);
