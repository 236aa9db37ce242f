//! Crash safety of the real binary: SIGKILL in the middle of a stream of edits loses nothing
//! the server had written, and the server starts again on the same data directory.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::*;
use yrs::{Map, Transact, WriteTxn};

/// The `okrhub` binary, started as a user would, on a free port.
struct Process {
    child: Child,
    addr: SocketAddr,
}

impl Process {
    /// Configured by flags, human logs.
    fn start(data_dir: &Path) -> Process {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_okrhub"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir);
        Process::spawn(cmd)
    }

    /// Configured by `OKRHUB_*` variables alone, JSON logs.
    fn start_by_env(data_dir: &Path) -> Process {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_okrhub"));
        cmd.env("OKRHUB_LISTEN", "127.0.0.1:0")
            .env("OKRHUB_DATA_DIR", data_dir)
            .env("OKRHUB_LOG_FORMAT", "json");
        Process::spawn(cmd)
    }

    fn spawn(mut cmd: Command) -> Process {
        let mut child = cmd
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("okrhub starts");
        let stdout = child.stdout.take().unwrap();
        let (found, addr) = std::sync::mpsc::channel();
        // Read the log for the address, then keep draining it so the server never blocks on
        // a full pipe.
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let addr = if line.starts_with('{') {
                    // JSON logs: {"fields":{"message":"listening","addr":"127.0.0.1:PORT",…},…}
                    let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
                    v.pointer("/fields/addr")
                        .and_then(|a| a.as_str())
                        .map(str::to_owned)
                } else {
                    line.split("addr=")
                        .nth(1)
                        .and_then(|rest| rest.split_whitespace().next())
                        .map(str::to_owned)
                };
                if let (Some(addr), Some(tx)) = (addr, found.as_ref()) {
                    let _ = tx.send(addr);
                    found = None;
                }
            }
        });
        let addr = addr
            .recv_timeout(WAIT)
            .expect("okrhub logs `listening addr=…` at start")
            .parse()
            .unwrap();
        Process { child, addr }
    }

    fn url(&self, room: &str) -> String {
        format!("ws://{}/sync/{room}", self.addr)
    }

    fn sigkill(mut self) {
        self.child.kill().unwrap(); // SIGKILL on Unix
        self.child.wait().unwrap();
    }

    fn sigterm(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(ok.success());
        self.child.wait().unwrap()
    }
}

fn count(doc: &yrs::Doc, prefix: &str) -> usize {
    let map = doc.get_or_insert_map("edits");
    let txn = doc.transact();
    map.keys(&txn).filter(|k| k.starts_with(prefix)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_no_flushed_update() {
    let dir = tempfile::tempdir().unwrap();
    let room = room("sigkill");
    let server = Process::start(dir.path());
    let clients = [
        YClient::synced(&server.url(&room)).await,
        YClient::synced(&server.url(&room)).await,
        YClient::synced(&server.url(&room)).await,
    ];

    // Phase 1: 3 × 100 edits, each its own update; wait until the server reports all of them
    // written to the store.
    for (c, client) in clients.iter().enumerate() {
        for i in 0..100 {
            client.edit(|_, txn| {
                txn.get_or_insert_map("edits")
                    .insert(txn, format!("flushed-{c}-{i}"), i as i64);
            });
        }
    }
    for client in &clients {
        client.round_trip().await;
    }
    wait_metric(server.addr, "okrhub_store_appended_total", |v| v >= 300.0).await;

    // Phase 2: keep editing and kill the server in the middle of it.
    for (c, client) in clients.iter().enumerate() {
        for i in 0..100 {
            client.edit(|_, txn| {
                txn.get_or_insert_map("edits")
                    .insert(txn, format!("inflight-{c}-{i}"), i as i64);
            });
        }
    }
    server.sigkill();

    let server = Process::start(dir.path());
    let check = YClient::synced(&server.url(&room)).await;
    let flushed = check.read(|d| count(d, "flushed-"));
    let inflight = check.read(|d| count(d, "inflight-"));
    eprintln!(
        "after SIGKILL: {flushed}/300 flushed edits, {inflight}/300 in-flight edits survived"
    );
    assert_eq!(
        flushed, 300,
        "every update the server had written survives SIGKILL"
    );
    server.sigterm();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let room = room("sigterm");
    // This run is configured through the environment only, with JSON logs.
    let server = Process::start_by_env(dir.path());
    let a = YClient::synced(&server.url(&room)).await;
    for i in 0..50 {
        a.edit(|_, txn| {
            txn.get_or_insert_map("edits")
                .insert(txn, format!("flushed-{i}"), i as i64);
        });
    }
    a.round_trip().await;
    let status = server.sigterm();
    assert!(status.success(), "exit status {status:?}");
    let closed = a.wait_closed().await;
    assert_eq!(closed.code, Some(1001), "{closed:?}");

    let server = Process::start(dir.path());
    let b = YClient::synced(&server.url(&room)).await;
    assert_eq!(b.read(|d| count(d, "flushed-")), 50);
    server.sigterm();
}

/// An `ack` means durable in the embedded store too: SIGKILL while commands stream, count them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acked_command() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let acked =
        common::live::acked_commands_survive_sigkill(&["--data-dir", data], &room("acked")).await;
    assert!(acked.len() >= 90);
}
