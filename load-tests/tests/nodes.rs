//! The generator against two okrhub nodes sharing rooms through one Redis (issue 13), both
//! started in-process on a `redis-server` the test starts itself (a free port, a temp dir, no
//! persistence): each room's clients are dealt over both nodes, every delivery is filed as
//! same-node or cross-node, and redis-server's CPU is reported apart.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use okrhub::config::{ServeArgs, StoreChoice};
use okrhub_load::{ApplyMode, Config, EditKind, Target};

struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    /// Fails the test (never skips it) without `redis-server`, like okrhub's own Redis tests.
    fn start() -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .arg("--dir")
            .arg(dir.path())
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run redis-server ({e}): this test needs it"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !Self::pong(port) {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Redis {
            child,
            port,
            _dir: dir,
        }
    }

    fn pong(port: u16) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_spread_over_two_nodes_time_same_and_cross_node_pairs() {
    let redis = Redis::start();
    let mut dirs = Vec::new();
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let mut args = ServeArgs::for_data_dir(dir.path());
        args.store.kind = StoreChoice::Redis;
        args.store.redis_url = format!("redis://127.0.0.1:{}", redis.port);
        nodes.push(okrhub::server::start(args).await.expect("node starts"));
        dirs.push(dir);
    }
    let url = |i: usize| Target::Base(format!("ws://{}/sync", nodes[i].local_addr()));
    let cfg = Config {
        target: url(0),
        more_nodes: vec![url(1)],
        scenario: "nodes-smoke".into(),
        label: "okrhub-test".into(),
        rooms: 2,
        clients: 4,
        editors: 2,
        rate: 20.0,
        duration: Duration::from_secs(1),
        warmup: Duration::from_millis(300),
        edit_kind: EditKind::Map,
        apply: ApplyMode::Immediate,
        // Both nodes run in this process.
        server_pids: vec![std::process::id()],
        store_pid: Some(redis.child.id()),
        run_id: "nodes-smoke".into(),
        quiesce_timeout: Duration::from_secs(10),
        ..Config::default()
    };
    let report = okrhub_load::run(&cfg).await.expect("run completes");
    println!("{}", report.summary());
    let m = &report.main;
    assert_eq!(report.nodes, 2);
    assert!(report.url.contains(','), "{}", report.url);
    assert_eq!(m.incomplete_edits, 0);
    assert_eq!(m.timed_deliveries, m.expected_deliveries);
    // Room r's clients are nodes [r, r+1, r, r+1] mod 2: each editor shares its node with one
    // of its three receivers.
    let (same, cross) = (
        m.same_node.as_ref().unwrap(),
        m.cross_node.as_ref().unwrap(),
    );
    assert_eq!(same.deliveries + cross.deliveries, m.timed_deliveries);
    assert_eq!(2 * same.deliveries, cross.deliveries, "{same:?} {cross:?}");
    assert!(same.p50_us > 0 && cross.p50_us > 0);
    assert!(m.store_cpu_s.unwrap() > 0.0, "redis-server did work");
    assert!(m.store_cpu_us_per_delivery.is_some());
    assert_eq!(report.client_errors, 0, "{:?}", report.first_error);
    assert!(report.converged);
    let json: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
    assert_eq!(json["nodes"], 2);
    assert!(json["main"]["cross_node"]["p99_us"].as_u64().is_some());
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}
