//! The two stores side by side, in one run: log append throughput (batches of 100 and 1000
//! updates over 10 rooms — one redb transaction + fsync, or one pipelined Redis round trip),
//! compaction of a ~1 MB document (10k map entries), and a cold load of that room (read +
//! rebuild the doc). The Redis store runs against its own `redis-server` (free port, temp
//! dir, `appendonly yes`, `appendfsync everysec` — Redis's production default), started here.
//!
//!     cargo bench --bench store

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use okrhub::room_id::RoomId;
use okrhub::store::embedded::EmbeddedStore;
use okrhub::store::redis::RedisStore;
use okrhub::store::transfer::encode_full;
use okrhub::store::{doc_from_stored, DocStore, LogEntry};
use yrs::{Doc, Map, Transact, WriteTxn};

struct Redis {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--dir"])
            .arg(dir.path())
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server)");
        let out = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(out).lines();
        for line in lines.by_ref() {
            if line.map_or(true, |l| l.contains("Ready to accept connections")) {
                break;
            }
        }
        std::thread::spawn(move || lines.for_each(drop));
        Redis {
            child,
            url: format!("redis://127.0.0.1:{port}"),
            _dir: dir,
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A ~1 MB doc: 10k entries of ~100 bytes.
fn big_doc() -> Vec<u8> {
    let doc = Doc::new();
    {
        let mut txn = doc.transact_mut();
        let map = txn.get_or_insert_map("checkins");
        for i in 0..10_000 {
            map.insert(&mut txn, format!("kr-{i:05}"), "x".repeat(90));
        }
    }
    encode_full(&doc)
}

fn stores(redis: &Redis, dir: &std::path::Path) -> Vec<(&'static str, Arc<dyn DocStore>)> {
    vec![
        (
            "embedded",
            Arc::new(EmbeddedStore::open(dir).expect("redb")),
        ),
        (
            "redis",
            Arc::new(RedisStore::open(&redis.url).expect("redis url")),
        ),
    ]
}

fn store_bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let redis = Redis::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let stores = rt.block_on(async { stores(&redis, dir.path()) });
    let rooms: Vec<RoomId> = (0..10)
        .map(|i| RoomId::parse(&format!("bench.append{i}.q1")).expect("room id"))
        .collect();
    let update = Bytes::from(vec![7u8; 40]);

    let mut g = c.benchmark_group("append");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    for batch in [100usize, 1000] {
        g.throughput(Throughput::Elements(batch as u64));
        for (name, store) in &stores {
            let mut seq = 0u64;
            g.bench_with_input(BenchmarkId::new(*name, batch), &batch, |b, &batch| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let entries: Vec<LogEntry> = (0..batch)
                            .map(|i| {
                                seq += 1;
                                LogEntry {
                                    room: rooms[i % rooms.len()].clone(),
                                    seq,
                                    update: update.clone(),
                                }
                            })
                            .collect();
                        let t = Instant::now();
                        rt.block_on(store.append(&entries)).expect("append");
                        total += t.elapsed();
                    }
                    total
                })
            });
        }
    }
    g.finish();

    let snapshot = big_doc();
    eprintln!("big doc: {} bytes", snapshot.len());
    let room = RoomId::parse("bench.big.q1").expect("room id");
    let mut g = c.benchmark_group("1MB_doc");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    for (name, store) in &stores {
        let mut upto = 0u64;
        g.bench_function(BenchmarkId::new("compact", *name), |b| {
            b.iter(|| {
                upto += 1;
                rt.block_on(store.compact(&room, &snapshot, upto))
                    .expect("compact")
            })
        });
        g.bench_function(BenchmarkId::new("cold_load", *name), |b| {
            b.iter(|| {
                let stored = rt.block_on(store.load(&room)).expect("load");
                doc_from_stored(&room, &stored).expect("doc")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, store_bench);
criterion_main!(benches);
