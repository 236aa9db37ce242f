//! A real Redis Cluster per test: three `redis-server --cluster-enabled yes` masters on free ports,
//! each in its own temp dir with its own `nodes.conf`, joined by `redis-cli --cluster create`
//! (slots 0-5460, 5461-10922, 10923-16383 in the order of [`RedisCluster::urls`]) — never the
//! machine's own Redis.
//!
//! No persistence runs on its own (`--save "" --appendonly no`): a master that is killed comes
//! back with what it last saved — nothing, unless [`RedisCluster::stop`] or
//! [`RedisCluster::restart`] (which stops a running master with `SHUTDOWN SAVE` first) saved it.
//! [`RedisCluster::restart_empty`] kills it and deletes its data. Both restarts keep its
//! `nodes.conf`: the master comes back with the same node id and the same slots.
//!
//! `cluster-require-full-coverage no`: while a master is down, the other two go on serving their
//! own slots and only the dead master's slots fail — a test sees exactly which rooms are cut off.
//! `cluster-node-timeout 2000` ms: a dead master is flagged failed within seconds, and the flag is
//! cleared 4 s after it is back (Redis waits twice the node timeout before it trusts a master
//! again); [`RedisCluster::restart`] returns only then.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_ports, WAIT};

/// Masters in the cluster.
pub const MASTERS: usize = 3;

const SETUP_HINT: &str = "the Redis Cluster tests need redis-server and redis-cli (Redis >= 7) \
     installed, e.g. `apt-get install redis-server` (Debian/Ubuntu) or `brew install redis`";

struct Node {
    port: u16,
    /// The cluster bus port (`--cluster-port`), chosen free like `port`: the default (port +
    /// 10000) could fall outside the port range or on a busy port.
    bus_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

pub struct RedisCluster {
    _tmp: tempfile::TempDir,
    nodes: Vec<Node>,
}

/// Runs `redis-cli ARGS…` and returns its stdout; fails the test if it cannot run.
fn redis_cli(args: &[&str]) -> std::process::Output {
    Command::new("redis-cli")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run redis-cli ({e}): {SETUP_HINT}"))
}

/// `redis-cli -p PORT ARGS…`'s stdout, or `None` when it fails (the node is down).
fn node_cli(port: u16, args: &[&str]) -> Option<String> {
    let port = port.to_string();
    let mut all = vec!["-p", &port];
    all.extend_from_slice(args);
    let out = redis_cli(&all);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // redis-cli exits 0 with an error on stdout when the node refuses a connection.
    (out.status.success() && !text.starts_with("Could not connect")).then_some(text)
}

impl Node {
    fn spawn(&mut self) {
        std::fs::create_dir_all(&self.dir).unwrap();
        let mut child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .arg("--dir")
            .arg(&self.dir)
            .args(["--cluster-enabled", "yes", "--cluster-config-file"])
            .arg(self.dir.join("nodes.conf"))
            .arg("--cluster-port")
            .arg(self.bus_port.to_string())
            .args(["--cluster-node-timeout", "2000"])
            .args(["--cluster-require-full-coverage", "no"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--logfile", ""])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run redis-server ({e}): {SETUP_HINT}"));
        // "Ready to accept connections" once it has loaded nodes.conf and its data; the log is
        // drained afterwards so the server never blocks on a full pipe.
        let stdout = child.stdout.take().unwrap();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("Ready to accept connections") {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
            }
        });
        if ready.recv_timeout(WAIT).is_err() {
            let _ = child.kill();
            let status = child.wait().ok();
            panic!(
                "redis-server on port {} never logged `Ready to accept connections` \
                 (exit: {status:?}); {SETUP_HINT}",
                self.port
            );
        }
        self.child = Some(child);
    }

    fn signal(&mut self, signal: &str) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args([signal, &pid]).status();
            let _ = child.wait();
        }
    }
}

impl RedisCluster {
    /// Starts three masters, creates the cluster, and returns once every node reports
    /// `cluster_state:ok` and knows the other two. Fails the test (never skips it) if
    /// `redis-server` or `redis-cli` is missing.
    pub fn start() -> RedisCluster {
        let tmp = tempfile::tempdir().unwrap();
        let ports = free_ports(2 * MASTERS);
        let mut nodes: Vec<Node> = (0..MASTERS)
            .map(|i| Node {
                port: ports[2 * i],
                bus_port: ports[2 * i + 1],
                dir: tmp.path().join(format!("node{i}")),
                child: None,
            })
            .collect();
        for node in &mut nodes {
            node.spawn();
        }
        let cluster = RedisCluster { _tmp: tmp, nodes };
        let addrs: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addrs.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let out = redis_cli(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("[OK] All 16384 slots covered"),
            "redis-cli --cluster create failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.wait_healthy();
        cluster
    }

    /// `redis://127.0.0.1:PORT` of each master, in slot order.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    /// The masters' URLs, comma-separated: what `--redis-url` takes for a cluster.
    pub fn url_list(&self) -> String {
        self.urls().join(",")
    }

    pub fn port(&self, i: usize) -> u16 {
        self.nodes[i].port
    }

    /// SIGKILL master `i`: its slots fail (the other masters go on); what it held since it last
    /// saved is lost.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].signal("-KILL");
    }

    /// `SHUTDOWN SAVE` master `i`: it writes its data (an RDB in its dir) and exits.
    pub fn stop(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if let Some(mut child) = node.child.take() {
            // The connection ends as the server exits: no reply to check. Its exit is the signal.
            let _ = node_cli(node.port, &["shutdown", "save"]);
            let pid = child.id().to_string();
            let (exited_tx, exited) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = exited_tx.send(child.wait());
            });
            if exited.recv_timeout(WAIT).is_err() {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
                let _ = exited.recv();
                panic!("redis-server on port {} ignored SHUTDOWN SAVE", node.port);
            }
        }
    }

    /// Starts master `i` again on the same port and dir, after stopping it with `SHUTDOWN SAVE`
    /// if it runs: same node id and slots (`nodes.conf`), and its data if it was stopped rather
    /// than killed (after a kill: what it last saved, usually nothing). Returns once the whole
    /// cluster is healthy again.
    pub fn restart(&mut self, i: usize) {
        self.stop(i);
        self.nodes[i].spawn();
        self.wait_healthy();
    }

    /// Kills master `i` and starts it again with its data gone but its `nodes.conf` kept: the
    /// same node with the same slots, and no keys — a Redis that lost everything it held.
    /// Returns once the whole cluster is healthy again.
    pub fn restart_empty(&mut self, i: usize) {
        self.kill(i);
        let dir = &self.nodes[i].dir;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n != "nodes.conf") {
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_dir_all(&path);
            }
        }
        self.nodes[i].spawn();
        self.wait_healthy();
    }

    /// Polls every master until each says `cluster_state:ok`, knows all three and flags none
    /// as failing (a readiness poll: Redis has no event to wait on). Fails after [`WAIT`].
    pub fn wait_healthy(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut why = None;
            for n in &self.nodes {
                let info = node_cli(n.port, &["cluster", "info"]).unwrap_or_default();
                let nodes = node_cli(n.port, &["cluster", "nodes"]).unwrap_or_default();
                if !info.contains("cluster_state:ok") {
                    why = Some(format!("port {}: {info}", n.port));
                } else if !info.contains(&format!("cluster_known_nodes:{MASTERS}")) {
                    why = Some(format!("port {} does not know all: {info}", n.port));
                } else if nodes.contains("fail") {
                    why = Some(format!("port {} flags a node: {nodes}", n.port));
                }
                if why.is_some() {
                    break;
                }
            }
            let Some(why) = why else { return };
            assert!(
                Instant::now() < deadline,
                "the Redis Cluster never became healthy: {why}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Which master (index into [`RedisCluster::urls`]) owns `key`'s slot, as the cluster says
    /// (`CLUSTER KEYSLOT` and `CLUSTER SLOTS` on the first master that runs).
    pub async fn owner_of(&self, key: &str) -> usize {
        let i = self
            .nodes
            .iter()
            .position(|n| n.child.is_some())
            .expect("a master runs");
        let mut conn = self.node_conn(i).await;
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query_async(&mut conn)
            .await
            .expect("CLUSTER KEYSLOT");
        // Each range: [start, end, [ip, port, id, …] of the master, replicas…].
        let ranges: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut conn)
            .await
            .expect("CLUSTER SLOTS");
        for range in &ranges {
            let int = |v: &redis::Value| match v {
                redis::Value::Int(x) => *x,
                other => panic!("CLUSTER SLOTS: not an integer: {other:?}"),
            };
            let (start, end) = (int(&range[0]), int(&range[1]));
            if (start..=end).contains(&slot) {
                let redis::Value::Array(master) = &range[2] else {
                    panic!("CLUSTER SLOTS: no master in {range:?}");
                };
                let port = int(&master[1]);
                return self
                    .nodes
                    .iter()
                    .position(|n| i64::from(n.port) == port)
                    .unwrap_or_else(|| panic!("slot {slot} on unknown port {port}"));
            }
        }
        panic!("no master owns slot {slot} of {key}: {ranges:?}")
    }

    /// A plain (non-cluster) connection to master `i`, for the test's own commands.
    pub async fn node_conn(&self, i: usize) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.urls()[i].as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("connect to a cluster master")
    }

    /// A cluster connection (follows `MOVED`) that fails fast: one retry, short timeouts.
    pub async fn cluster_conn(&self) -> redis::cluster_async::ClusterConnection {
        redis::cluster::ClusterClientBuilder::new(self.urls())
            .retries(1)
            .min_retry_wait(10)
            .max_retry_wait(50)
            .connection_timeout(Duration::from_secs(1))
            .response_timeout(Duration::from_secs(2))
            .build()
            .unwrap()
            .get_async_connection()
            .await
            .expect("connect to the Redis Cluster")
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.signal("-KILL");
        }
    }
}
