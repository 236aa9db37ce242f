//! The stock JS client as a test peer: `yjs` + `y-websocket` in Node.js (tests/interop/peer.mjs),
//! one process per peer, JSON lines on its stdout, commands on its stdin.
//!
//! Needs Node.js >= 18 on PATH and `npm ci --prefix tests/interop`; without them
//! [`require_node`] fails the test (it never skips).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::WAIT;

pub const SETUP_HINT: &str =
    "the interop test needs the JS peer: install Node.js >= 18 (`node` on PATH) and run \
     `npm ci --prefix tests/interop`";

pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// Fails the test (never skips) when Node.js or the JS dependencies are missing.
pub fn require_node() {
    let out = std::process::Command::new("node")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run `node --version` ({e}): {SETUP_HINT}"));
    assert!(
        out.status.success(),
        "`node --version` failed ({}): {SETUP_HINT}",
        out.status
    );
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(major >= 18, "found Node.js {version}: {SETUP_HINT}");
    let modules = interop_dir().join("node_modules");
    for dep in ["yjs", "y-websocket", "ws"] {
        assert!(
            modules.join(dep).join("package.json").is_file(),
            "{} is missing: {SETUP_HINT}",
            modules.join(dep).display()
        );
    }
}

/// One `node peer.mjs` process: JSON lines on stdout, commands on stdin, stderr inherited.
pub struct JsPeer {
    pub name: String,
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
}

impl JsPeer {
    /// A peer that prints its ready line once it sees every `expect` peer's key and presence.
    pub fn spawn(base_url: &str, room: &str, name: &str, expect: &[&str]) -> JsPeer {
        JsPeer::spawn_with_token(base_url, room, name, expect, "")
    }

    /// A peer whose provider sends `token` (`params: { token }`, i.e. `?token=`).
    pub fn spawn_with_token(
        base_url: &str,
        room: &str,
        name: &str,
        expect: &[&str],
        token: &str,
    ) -> JsPeer {
        let expect = expect.join(",");
        JsPeer::spawn_args(
            base_url,
            room,
            name,
            &["--expect", &expect, "--token", token],
            WAIT,
        )
    }

    /// A peer with more `peer.mjs` options (`--expect-keys`, …) that gives up after `timeout`
    /// (it then prints an `{"error":…}` line with what it sees and exits).
    pub fn spawn_args(
        base_url: &str,
        room: &str,
        name: &str,
        args: &[&str],
        timeout: Duration,
    ) -> JsPeer {
        let mut child = Command::new("node")
            .arg(interop_dir().join("peer.mjs"))
            .args(["--url", base_url, "--room", room, "--name", name])
            .args(args)
            .args(["--timeout-ms", &timeout.as_millis().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn node peer {name}: {e}: {SETUP_HINT}"));
        let stdin = child.stdin.take();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        JsPeer {
            name: name.to_owned(),
            child,
            stdin,
            lines,
        }
    }

    /// The next JSON line from the peer, an `{"error":..}` line included; fails on EOF or after
    /// [`WAIT`].
    pub async fn next_json(&mut self, what: &str) -> Value {
        let name = &self.name;
        let line = tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("peer {name}: timed out waiting for {what}"))
            .unwrap_or_else(|e| panic!("peer {name}: reading stdout: {e}"));
        let Some(line) = line else {
            let status = self.child.try_wait().ok().flatten();
            panic!("peer {name}: stdout closed before {what} (exit status: {status:?})");
        };
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("peer {name}: not JSON ({e}): {line}"))
    }

    /// The next JSON line from the peer; fails on `{"error":..}`, EOF or after [`WAIT`].
    pub async fn line(&mut self, what: &str) -> Value {
        let v = self.next_json(what).await;
        assert!(v.get("error").is_none(), "peer {} failed: {v}", self.name);
        v
    }

    pub async fn send(&mut self, cmd: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("{cmd}\n").as_bytes())
            .await
            .unwrap_or_else(|e| panic!("peer {}: write {cmd:?}: {e}", self.name));
        stdin.flush().await.unwrap();
    }

    /// Sends `dump` and returns the fresh state line.
    pub async fn dump(&mut self) -> Value {
        self.send("dump").await;
        let v = self.line("dump").await;
        assert_eq!(v["ready"], true, "dump answer: {v}");
        v
    }

    /// Waits (bounded) for the process to exit and returns its exit code.
    pub async fn wait_exit(&mut self) -> Option<i32> {
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("peer {} did not exit", self.name))
            .unwrap();
        status.code()
    }
}

/// The peer's map `interop` (key → string) in a ready, dump or error line.
pub fn js_map(v: &Value) -> BTreeMap<String, String> {
    v["map"]
        .as_object()
        .unwrap_or_else(|| panic!("no map in {v}"))
        .iter()
        .map(|(k, v)| {
            let s = v.as_str().unwrap_or_else(|| panic!("non-string {k}: {v}"));
            (k.clone(), s.to_owned())
        })
        .collect()
}

/// The names present in the peer's awareness.
pub fn js_names(v: &Value) -> Vec<String> {
    v["awareness"]
        .as_array()
        .unwrap_or_else(|| panic!("no awareness in {v}"))
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

/// The peer's text `title`.
pub fn js_title(v: &Value) -> String {
    v["title"].as_str().expect("title").to_owned()
}
