//! The real HAProxy of the deployment (`deploy/haproxy.cfg`, the file docker-compose.yml mounts)
//! in front of three nodes, on free ports, in the foreground (`haproxy -db`). It is ready when its
//! stats page shows every node up (health checks passed) and `/readyz` answers 200 through it.
//! Fails the test (never skips) when `haproxy` is missing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{free_ports, WAIT};

const SETUP_HINT: &str = "the proxy tests need HAProxy >= 2.6 on PATH, e.g. \
     `apt-get install haproxy` (Debian/Ubuntu) or `brew install haproxy`";

/// The nodes `deploy/haproxy.cfg` balances over (`OKRHUB_HUB1..3`).
pub const NODES: usize = 3;

pub struct Haproxy {
    child: Child,
    addr: SocketAddr,
    stats: SocketAddr,
    /// What HAProxy printed (alerts, the request log), for failure messages.
    log: Arc<Mutex<Vec<String>>>,
    /// The threads draining its stdout and stderr (they end when it exits).
    drains: Vec<std::thread::JoinHandle<()>>,
}

/// A blocking HTTP/1.1 GET (`Connection: close`): status and body (de-chunked), or `None` when
/// the connection fails.
fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let mut body = &raw[split + 4..];
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    if !head.contains("transfer-encoding: chunked") {
        return Some((status, String::from_utf8_lossy(body).into_owned()));
    }
    // HAProxy's stats page is chunked (even to HTTP/1.0): SIZE-IN-HEX\r\nDATA\r\n…, then 0.
    let mut out = Vec::new();
    loop {
        let eol = body.windows(2).position(|w| w == b"\r\n")?;
        let size_line = std::str::from_utf8(&body[..eol]).ok()?;
        let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            break;
        }
        let data = body.get(eol + 2..eol + 2 + size)?;
        out.extend_from_slice(data);
        body = body.get(eol + 2 + size + 2..)?;
    }
    Some((status, String::from_utf8_lossy(&out).into_owned()))
}

impl Haproxy {
    /// Runs `haproxy -f deploy/haproxy.cfg -db` with `OKRHUB_PROXY_BIND`, `OKRHUB_PROXY_STATS_BIND`
    /// and `OKRHUB_HUB1..3` set; returns once every node is up behind it and `/readyz` answers
    /// 200 through it.
    pub fn start(backends: &[SocketAddr]) -> Haproxy {
        assert_eq!(
            backends.len(),
            NODES,
            "deploy/haproxy.cfg balances over {NODES} nodes"
        );
        let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy.cfg");
        let ports = free_ports(2);
        let addr: SocketAddr = format!("127.0.0.1:{}", ports[0]).parse().unwrap();
        let stats: SocketAddr = format!("127.0.0.1:{}", ports[1]).parse().unwrap();
        let mut cmd = Command::new("haproxy");
        cmd.arg("-f")
            .arg(&cfg)
            .arg("-db")
            .env("OKRHUB_PROXY_BIND", addr.to_string())
            .env("OKRHUB_PROXY_STATS_BIND", stats.to_string());
        for (i, b) in backends.iter().enumerate() {
            cmd.env(format!("OKRHUB_HUB{}", i + 1), b.to_string());
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run haproxy ({e}): {SETUP_HINT}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        // Drain both pipes so HAProxy never blocks on them, keeping the lines.
        let stdout: Box<dyn Read + Send> = Box::new(child.stdout.take().unwrap());
        let stderr: Box<dyn Read + Send> = Box::new(child.stderr.take().unwrap());
        let drains = [stdout, stderr]
            .into_iter()
            .map(|pipe| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(pipe).lines() {
                        let Ok(line) = line else { break };
                        log.lock().unwrap().push(line);
                    }
                })
            })
            .collect();
        let mut proxy = Haproxy {
            child,
            addr,
            stats,
            log,
            drains,
        };
        proxy.wait_ready();
        proxy
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The stats page.
    pub fn stats_addr(&self) -> SocketAddr {
        self.stats
    }

    /// Each node's state as HAProxy sees it (`hub1` → `UP`, `DOWN`, `UP 1/2`, …), from the stats
    /// page's CSV; empty when the page does not answer.
    pub fn node_states(&self) -> Vec<(String, String)> {
        let Some((200, csv)) = get(self.stats, "/;csv") else {
            return Vec::new();
        };
        let mut lines = csv.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or("")
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let col = |name: &str| header.iter().position(|h| *h == name);
        let (Some(px), Some(sv), Some(status)) = (col("pxname"), col("svname"), col("status"))
        else {
            return Vec::new();
        };
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f.len() > status && f[px] == "hubs" && f[sv].starts_with("hub"))
            .map(|f| (f[sv].to_owned(), f[status].to_owned()))
            .collect()
    }

    /// What HAProxy printed so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Polls (HAProxy has no readiness event) until its stats page shows every node `UP` and
    /// `/readyz` through the proxy answers 200; fails after [`WAIT`] with what it saw.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + WAIT;
        let mut seen = String::new();
        while Instant::now() < deadline {
            // An exit here is a config or bind error; HAProxy's alerts say which.
            if let Ok(Some(status)) = self.child.try_wait() {
                for drain in self.drains.drain(..) {
                    let _ = drain.join();
                }
                panic!("haproxy exited at start ({status}):\n{}", self.log());
            }
            let states = self.node_states();
            let all_up = states.len() == NODES && states.iter().all(|(_, s)| s == "UP");
            if all_up {
                match get(self.addr, "/readyz") {
                    Some((200, _)) => return,
                    other => seen = format!("nodes up, but /readyz through the proxy: {other:?}"),
                }
            } else {
                seen = format!("node states: {states:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "haproxy on {} never became ready ({seen}); its output:\n{}",
            self.addr,
            self.log()
        )
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
