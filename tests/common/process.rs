//! The `okrhub` binary, started as a user would (flags, human logs), on a free port.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use super::WAIT;

pub struct HubProcess {
    child: Child,
    pub addr: SocketAddr,
}

impl HubProcess {
    /// `okrhub serve --listen 127.0.0.1:0 ARGS…`; returns once it logs its address.
    pub fn start(args: &[&str]) -> HubProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_okrhub"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("okrhub starts");
        let stdout = child.stdout.take().unwrap();
        let (found, addr) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("OKRHUB_TEST_LOGS").is_some()
                    && (line.contains("WARN") || line.contains("ERROR"))
                {
                    eprintln!("[node] {line}");
                }
                let addr = line
                    .split("addr=")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .map(str::to_owned);
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
        HubProcess { child, addr }
    }

    pub fn url(&self, room: &str) -> String {
        format!("ws://{}/sync/{room}", self.addr)
    }

    pub fn sigkill(mut self) {
        self.child.kill().unwrap(); // SIGKILL on Unix
        self.child.wait().unwrap();
    }

    pub fn sigterm(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(ok.success());
        self.child.wait().unwrap()
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `okrhub ARGS…` to completion (export, import) and returns its stdout; fails the test if
/// it fails.
pub fn run_okrhub(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_okrhub"))
        .args(args)
        .output()
        .expect("okrhub runs");
    assert!(
        out.status.success(),
        "okrhub {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
