//! The two stores side by side, in one run: log append throughput (batches of 100 and 1000
//! updates over 10 rooms — one redb transaction + fsync, or one pipelined Redis round trip),
//! compaction of a ~1 MB document (10k map entries), and a cold load of that room (read +
//! rebuild the doc). The Redis store runs against its own `redis-server` (free port, temp
//! dir, `appendonly yes`, `appendfsync everysec` — Redis's production default), started here.
//!
//! `integrity/…`: what the integrity frame (a CRC-32C per value, `store::frame`) costs — the
//! frame alone on a 40-byte update and on the ~1 MB snapshot, then append (batch of 100) and
//! cold load (read only, and read + rebuild) with the stores as they are ("new") beside the
//! same stores without the frame ("old": the code before it, kept below as `Legacy*`), in the
//! same run, against the same redb version and the same `redis-server`.
//!
//!     cargo bench --bench store
//!     cargo bench --bench store -- integrity       # only the frame's cost

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use okrhub::room_id::RoomId;
use okrhub::store::embedded::EmbeddedStore;
use okrhub::store::frame::{self, Kind};
use okrhub::store::redis::{log_key, snap_key, RedisStore};
use okrhub::store::transfer::encode_full;
use okrhub::store::{doc_from_stored, DocStore, LogEntry, StoreError, StoredDoc};
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
                                    by: None,
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

/// The embedded store before values were framed (its append and load, verbatim but for the
/// error plumbing): the "old" of `integrity/…`.
struct LegacyEmbedded {
    db: Arc<redb::Database>,
}

const L_SNAPSHOTS: redb::TableDefinition<&str, (u64, &[u8])> =
    redb::TableDefinition::new("snapshots");
const L_LOG: redb::TableDefinition<(&str, u64), &[u8]> = redb::TableDefinition::new("log");

fn legacy_err<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::backend("redb", e)
}

impl LegacyEmbedded {
    fn open(dir: &std::path::Path) -> Self {
        std::fs::create_dir_all(dir).expect("dir");
        let db = redb::Database::create(dir.join("legacy.redb")).expect("redb");
        let txn = db.begin_write().expect("txn");
        txn.open_table(L_SNAPSHOTS).expect("table");
        txn.open_table(L_LOG).expect("table");
        txn.commit().expect("commit");
        LegacyEmbedded { db: Arc::new(db) }
    }
}

#[async_trait::async_trait]
impl DocStore for LegacyEmbedded {
    fn name(&self) -> &'static str {
        "legacy-embedded"
    }
    async fn load(&self, room: &RoomId) -> Result<StoredDoc, StoreError> {
        use redb::ReadableDatabase;
        let room = room.clone();
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read().map_err(legacy_err)?;
            let snapshots = txn.open_table(L_SNAPSHOTS).map_err(legacy_err)?;
            let log = txn.open_table(L_LOG).map_err(legacy_err)?;
            let mut doc = StoredDoc::default();
            if let Some(guard) = snapshots.get(room.as_str()).map_err(legacy_err)? {
                let (upto, bytes) = guard.value();
                doc.last_seq = upto;
                doc.snapshot = Some(bytes.to_vec());
            }
            let from = doc.last_seq.saturating_add(1);
            for item in log
                .range((room.as_str(), from)..=(room.as_str(), u64::MAX))
                .map_err(legacy_err)?
            {
                let (key, value) = item.map_err(legacy_err)?;
                doc.last_seq = key.value().1;
                doc.updates.push(value.value().to_vec());
            }
            Ok(doc)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
    async fn append(&self, batch: &[LogEntry]) -> Result<(), StoreError> {
        let batch = batch.to_vec();
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut txn = db.begin_write().map_err(legacy_err)?;
            txn.set_durability(redb::Durability::Immediate)
                .map_err(legacy_err)?;
            {
                let mut log = txn.open_table(L_LOG).map_err(legacy_err)?;
                for entry in &batch {
                    log.insert((entry.room.as_str(), entry.seq), entry.update.as_ref())
                        .map_err(legacy_err)?;
                }
            }
            txn.commit().map_err(legacy_err)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
    async fn compact(&self, room: &RoomId, snapshot: &[u8], upto: u64) -> Result<(), StoreError> {
        let (room, snapshot, db) = (room.clone(), snapshot.to_vec(), self.db.clone());
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_write().map_err(legacy_err)?;
            txn.open_table(L_SNAPSHOTS)
                .map_err(legacy_err)?
                .insert(room.as_str(), (upto, snapshot.as_slice()))
                .map_err(legacy_err)?;
            txn.commit().map_err(legacy_err)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
    async fn rooms(&self) -> Result<Vec<RoomId>, StoreError> {
        Ok(Vec::new())
    }
}

/// The Redis store before values were framed: the same keys, scripts and round trips, bare
/// values (its append and load, verbatim but for the error plumbing).
struct LegacyRedis {
    conn: redis::aio::ConnectionManager,
}

const L_APPEND_SCRIPT: &str = r#"
for i = 1, #ARGV, 2 do
  local r = redis.pcall('XADD', KEYS[1], ARGV[i] .. '-0', 'u', ARGV[i + 1])
  if type(r) == 'table' and r.err and not string.find(r.err, 'equal or smaller', 1, true) then
    return redis.error_reply(r.err)
  end
end
return 1
"#;

#[async_trait::async_trait]
impl DocStore for LegacyRedis {
    fn name(&self) -> &'static str {
        "legacy-redis"
    }
    async fn load(&self, room: &RoomId) -> Result<StoredDoc, StoreError> {
        let mut conn = self.conn.clone();
        type Reply = (
            (Option<Vec<u8>>, Option<String>),
            Vec<(String, Vec<Vec<u8>>)>,
        );
        let ((snapshot, upto), log): Reply = redis::pipe()
            .atomic()
            .cmd("HMGET")
            .arg(snap_key(room))
            .arg("doc")
            .arg("upto")
            .cmd("XRANGE")
            .arg(log_key(room))
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .map_err(|e| StoreError::backend("redis", e))?;
        let mut doc = StoredDoc::default();
        if let Some(snapshot) = snapshot {
            doc.last_seq = upto.and_then(|u| u.parse().ok()).unwrap_or(0);
            doc.snapshot = Some(snapshot);
        }
        for (id, mut fields) in log {
            let seq: u64 = id
                .split('-')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if seq > doc.last_seq {
                doc.updates.push(fields.pop().unwrap_or_default());
                doc.last_seq = seq;
            }
        }
        Ok(doc)
    }
    async fn append(&self, batch: &[LogEntry]) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        let mut rooms: Vec<&RoomId> = batch.iter().map(|e| &e.room).collect();
        rooms.sort();
        rooms.dedup();
        for room in rooms {
            pipe.cmd("SADD")
                .arg("okrhub:rooms")
                .arg(room.as_str())
                .ignore();
            let cmd = pipe
                .cmd("EVAL")
                .arg(L_APPEND_SCRIPT)
                .arg(1)
                .arg(log_key(room));
            for e in batch.iter().filter(|e| &e.room == room) {
                cmd.arg(e.seq).arg(e.update.as_ref());
            }
            cmd.ignore();
        }
        let mut conn = self.conn.clone();
        pipe.exec_async(&mut conn)
            .await
            .map_err(|e| StoreError::backend("redis", e))
    }
    async fn compact(&self, room: &RoomId, snapshot: &[u8], upto: u64) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("HSET")
            .arg(snap_key(room))
            .arg("doc")
            .arg(snapshot)
            .arg("upto")
            .arg(upto)
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| StoreError::backend("redis", e))
    }
    async fn rooms(&self) -> Result<Vec<RoomId>, StoreError> {
        Ok(Vec::new())
    }
}

/// Prints the medians of `old` and `new` (measured alternately) and the median of their
/// paired ratios.
fn report_paired(what: &str, old: &[Duration], new: &[Duration]) {
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let us = |d: &[Duration]| d.iter().map(|d| d.as_secs_f64() * 1e6).collect::<Vec<_>>();
    let mut ratios: Vec<f64> = old
        .iter()
        .zip(new)
        .map(|(o, n)| n.as_secs_f64() / o.as_secs_f64())
        .collect();
    eprintln!(
        "integrity/paired/{what}: old {:.1} µs, new {:.1} µs (medians of {}), new/old {:.3} (median of paired ratios)",
        median(&mut us(old)),
        median(&mut us(new)),
        old.len(),
        median(&mut ratios)
    );
}

/// What the integrity frame costs: the frame alone, then old against new on append and load.
fn integrity_bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let redis = Redis::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let room = RoomId::parse("bench.integrity.q1").expect("room id");
    let update = vec![7u8; 40];
    let snapshot = big_doc();

    let mut g = c.benchmark_group("integrity/frame");
    g.sample_size(20).measurement_time(Duration::from_secs(2));
    for (label, payload) in [("40B", &update), ("1MB", &snapshot)] {
        g.throughput(Throughput::Bytes(payload.len() as u64));
        let mut buf = Vec::new();
        g.bench_function(BenchmarkId::new("seal", label), |b| {
            b.iter(|| {
                frame::seal_into(&mut buf, Kind::Log, room.as_str(), 42, payload);
                buf.len()
            })
        });
        let sealed = frame::seal(Kind::Log, room.as_str(), 42, payload);
        g.bench_function(BenchmarkId::new("open", label), |b| {
            b.iter(|| {
                frame::open(Kind::Log, room.as_str(), 42, &sealed)
                    .expect("valid")
                    .len()
            })
        });
    }
    g.finish();

    let stores: Vec<(&'static str, Arc<dyn DocStore>)> = rt.block_on(async {
        let conn = redis::Client::open(redis.url.as_str())
            .expect("redis url")
            .get_connection_manager()
            .await
            .expect("redis connects");
        vec![
            (
                "embedded-old",
                Arc::new(LegacyEmbedded::open(&dir.path().join("old"))) as Arc<dyn DocStore>,
            ),
            (
                "embedded-new",
                Arc::new(EmbeddedStore::open(&dir.path().join("new")).expect("redb")),
            ),
            ("redis-old", Arc::new(LegacyRedis { conn })),
            (
                "redis-new",
                Arc::new(RedisStore::open(&redis.url).expect("redis url")),
            ),
        ]
    });
    let update = Bytes::from(update);
    let mut g = c.benchmark_group("integrity/append_100");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(100));
    for (name, store) in &stores {
        // Each store its own rooms: old and new never write the same keys.
        let rooms: Vec<RoomId> = (0..10)
            .map(|i| RoomId::parse(&format!("bench.{name}{i}.q1")).expect("room id"))
            .collect();
        let mut seq = 0u64;
        g.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let entries: Vec<LogEntry> = (0..100)
                        .map(|i| {
                            seq += 1;
                            LogEntry {
                                room: rooms[i % rooms.len()].clone(),
                                seq,
                                update: update.clone(),
                                by: None,
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
    g.finish();

    // Old and new alternated call by call (robust to the drift of a busy machine, which moves
    // whole criterion runs by ±30 %): medians and the median of the paired ratios.
    for pair in stores.chunks(2) {
        let [(old_name, old), (new_name, new)] = pair else {
            continue;
        };
        let base = old_name.trim_end_matches("-old");
        let rooms = |tag: &str| -> Vec<RoomId> {
            (0..10)
                .map(|i| RoomId::parse(&format!("bench.paired{tag}{i}.q1")).expect("room id"))
                .collect()
        };
        let (old_rooms, new_rooms) = (rooms(old_name), rooms(new_name));
        let mut seq = 0u64;
        let batch = |rooms: &[RoomId], seq: u64| -> Vec<LogEntry> {
            (0..100)
                .map(|i| LogEntry {
                    room: rooms[i % rooms.len()].clone(),
                    seq: seq * 100 + i as u64 + 1,
                    update: update.clone(),
                    by: None,
                })
                .collect()
        };
        let (mut t_old, mut t_new) = (Vec::new(), Vec::new());
        for _ in 0..200 {
            seq += 1;
            let (a, b) = (batch(&old_rooms, seq), batch(&new_rooms, seq));
            let t = Instant::now();
            rt.block_on(old.append(&a)).expect("append");
            t_old.push(t.elapsed());
            let t = Instant::now();
            rt.block_on(new.append(&b)).expect("append");
            t_new.push(t.elapsed());
        }
        report_paired(&format!("append_100/{base}"), &t_old, &t_new);
    }

    // A ~1 MB snapshot and 200 log entries of 40 bytes after it.
    let mut g = c.benchmark_group("integrity/cold_load_1MB");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for (name, store) in &stores {
        let room = RoomId::parse(&format!("bench.{name}load.q1")).expect("room id");
        let log: Vec<LogEntry> = (1..=200)
            .map(|seq| LogEntry {
                room: room.clone(),
                seq: 1000 + seq,
                update: update.clone(),
                by: None,
            })
            .collect();
        rt.block_on(async {
            store
                .compact(&room, &snapshot, 1000)
                .await
                .expect("snapshot");
            store.append(&log).await.expect("log");
        });
        g.bench_function(BenchmarkId::new("read", *name), |b| {
            b.iter(|| rt.block_on(store.load(&room)).expect("load").updates.len())
        });
    }
    for pair in stores.chunks(2) {
        let [(old_name, old), (new_name, new)] = pair else {
            continue;
        };
        let room = |name: &str| RoomId::parse(&format!("bench.{name}load.q1")).expect("room id");
        let (a, b) = (room(old_name), room(new_name));
        let (mut t_old, mut t_new) = (Vec::new(), Vec::new());
        for _ in 0..200 {
            let t = Instant::now();
            rt.block_on(old.load(&a)).expect("load");
            t_old.push(t.elapsed());
            let t = Instant::now();
            rt.block_on(new.load(&b)).expect("load");
            t_new.push(t.elapsed());
        }
        let base = old_name.trim_end_matches("-old");
        report_paired(&format!("cold_load_1MB/read/{base}"), &t_old, &t_new);
    }
    // Read + rebuild the doc (what a room load does), the real snapshot without a log.
    for (name, store) in &stores {
        let room = RoomId::parse(&format!("bench.{name}doc.q1")).expect("room id");
        rt.block_on(store.compact(&room, &snapshot, 1))
            .expect("snapshot");
        g.bench_function(BenchmarkId::new("read_and_rebuild", *name), |b| {
            b.iter(|| {
                let stored = rt.block_on(store.load(&room)).expect("load");
                doc_from_stored(&room, &stored).expect("doc")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, store_bench, integrity_bench);
criterion_main!(benches);
