//! The built-in pages in a real browser: each `tests/interop/browser/NAME.test.mjs` runs in
//! Debian's headless Chromium (through `playwright-core`, `tests/interop/browser/harness.mjs`)
//! against a real server on port 0 with HS256 tokens, one `#[tokio::test]` per scenario.
//!
//! The scenario gets `OKRHUB_URL`, `OKRHUB_TOKENS` (JSON: `ann` and `wang` editors, `boss`
//! admin, `screen` viewer, all of `acme.*.*`; `zed`, admin of org `globex`), `OKRHUB_ARTIFACTS` (`target/browser-artifacts`,
//! for screenshots) and `OKRHUB_DRIVER=1`. Its output is streamed into the test's output. When
//! it prints the line `OKRHUB:RESTART` the server is shut down gracefully and started again on
//! the same port and data dir, then `OKRHUB:RESTARTED` is written to its stdin. The test passes
//! when the scenario exits 0 within [`SCENARIO_TIMEOUT`].
//!
//! Needs Node.js >= 18, `npm ci --prefix tests/interop` and Debian's `chromium`
//! (`/usr/bin/chromium`, or `$CHROMIUM`); without them the tests fail (they never skip).
//!
//! To add a scenario: write `tests/interop/browser/NAME.test.mjs` and add `NAME` to
//! `scenarios!` below (`every_scenario_file_has_a_test` checks that none is forgotten).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::js::{interop_dir, require_node, SETUP_HINT};
use common::tokens::{claims, hs256};
use okrhub::config::ServeArgs;
use okrhub::identity::Role;
use okrhub::server::{self, RunningServer};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const SECRET: &str = "a-browser-test-secret-of-at-least-32-bytes";

/// The longest a scenario may run (the harness gives up by itself 10 s earlier).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(180);

/// How long a restart may wait for the port to be free again.
const REBIND_FOR: Duration = Duration::from_secs(10);

/// One Chromium at a time: the CI machine has two cores, and timing assertions in one scenario
/// must not pay for another's browser.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        /// Every scenario with a test below.
        const SCENARIOS: &[&str] = &[$(stringify!($name)),*];
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                run_scenario(stringify!($name)).await;
            }
        )*
    };
}

scenarios!(smoke, board, screen, index, meeting);

fn browser_dir() -> PathBuf {
    interop_dir().join("browser")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Fails the test (never skips) when Node.js, the JS packages or Chromium are missing.
fn require_browser() {
    require_node();
    let modules = interop_dir().join("node_modules");
    for dep in ["playwright-core", "axe-core"] {
        assert!(
            modules.join(dep).join("package.json").is_file(),
            "{} is missing: {SETUP_HINT}",
            modules.join(dep).display()
        );
    }
    let chromium = chromium();
    let out = std::process::Command::new(&chromium)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): the browser tests need Debian's chromium \
                 (`apt-get install -y chromium`), or $CHROMIUM naming another build",
                chromium.display()
            )
        });
    assert!(
        out.status.success(),
        "`{} --version` failed ({}): install Debian's chromium (`apt-get install -y chromium`)",
        chromium.display(),
        out.status
    );
}

fn serve_args(data_dir: &Path, listen: SocketAddr) -> ServeArgs {
    let mut args = ServeArgs::for_data_dir(data_dir);
    args.listen = listen;
    args.security.jwt_secret = Some(SECRET.into());
    args
}

/// Starts the server on `listen`; on a fixed port, retries for [`REBIND_FOR`] while the old
/// socket lets go of it.
async fn start(data_dir: &Path, listen: SocketAddr) -> RunningServer {
    let deadline = tokio::time::Instant::now() + REBIND_FOR;
    loop {
        match server::start(serve_args(data_dir, listen)).await {
            Ok(s) => return s,
            Err(e) if listen.port() != 0 && tokio::time::Instant::now() < deadline => {
                eprintln!("[browser] restart on {listen}: {e:#}; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("server does not start on {listen}: {e:#}"),
        }
    }
}

/// The scenarios' users: of org `acme`, and `zed`, an admin of another org (`globex`).
fn tokens() -> serde_json::Value {
    let all = "acme.*.*";
    let token = |user: &str, role: Role| hs256(SECRET, &claims(user, "acme", &[(all, role)]));
    json!({
        "ann": token("ann", Role::Editor),
        "wang": token("wang", Role::Editor),
        "boss": token("boss", Role::Admin),
        "screen": token("screen", Role::Viewer),
        "zed": hs256(SECRET, &claims("zed", "globex", &[("globex.*.*", Role::Admin)])),
    })
}

/// Runs `tests/interop/browser/NAME.test.mjs` against a fresh server (see the module docs).
async fn run_scenario(name: &str) {
    require_browser();
    let script = browser_dir().join(format!("{name}.test.mjs"));
    assert!(script.is_file(), "no scenario {}", script.display());
    let _turn = ONE_AT_A_TIME.lock().await;

    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = start(&data_dir, "127.0.0.1:0".parse().unwrap()).await;
    let addr = server.local_addr();
    let mut server = Some(server);
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();

    let mut child = Command::new("node")
        .arg(&script)
        .current_dir(interop_dir())
        .env("OKRHUB_URL", format!("http://{addr}"))
        .env("OKRHUB_TOKENS", tokens().to_string())
        .env("OKRHUB_ARTIFACTS", &artifacts)
        .env("OKRHUB_DRIVER", "1")
        .env("FORCE_COLOR", "0")
        .env("NO_COLOR", "1")
        .env(
            "OKRHUB_SCENARIO_TIMEOUT_MS",
            (SCENARIO_TIMEOUT - Duration::from_secs(10))
                .as_millis()
                .to_string(),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn node {}: {e}: {SETUP_HINT}", script.display()));
    let mut stdin = child.stdin.take();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let stderr = child.stderr.take().unwrap();
    let tag = name.to_owned();
    let stderr_task = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("[{tag}] {line}");
        }
    });

    let started = std::time::Instant::now();
    let mut restarts = 0u32;
    let run = async {
        while let Some(line) = stdout
            .next_line()
            .await
            .expect("read the scenario's stdout")
        {
            println!("[{name}] {line}");
            if line.trim_end() == "OKRHUB:RESTART" {
                let old = server.take().expect("a running server");
                old.shutdown().await.expect("server shuts down cleanly");
                server = Some(start(&data_dir, addr).await);
                restarts += 1;
                println!("[{name}] (server restarted on {addr})");
                let pipe = stdin.as_mut().expect("the scenario's stdin is open");
                pipe.write_all(b"OKRHUB:RESTARTED\n")
                    .await
                    .expect("write OKRHUB:RESTARTED");
                pipe.flush().await.unwrap();
            }
        }
        child.wait().await.expect("wait for node")
    };
    let status = tokio::time::timeout(SCENARIO_TIMEOUT, run).await;
    let status = match status {
        Ok(status) => status,
        Err(_) => {
            // Closing stdin tells the harness the driver is gone: it closes its browsers.
            drop(stdin.take());
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
            panic!("scenario {name} did not finish within {SCENARIO_TIMEOUT:?}");
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), stderr_task).await;
    println!(
        "[{name}] exited with {status} after {:.1} s ({restarts} server restart(s))",
        started.elapsed().as_secs_f64()
    );
    assert!(
        status.success(),
        "scenario {name} failed ({status}); its output is above, screenshots in {}",
        artifacts.display()
    );
    let server = server.take().expect("a running server");
    server.shutdown().await.expect("server shuts down cleanly");
}

#[test]
fn every_scenario_file_has_a_test() {
    let mut files: Vec<String> = std::fs::read_dir(browser_dir())
        .expect("tests/interop/browser")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".test.mjs").map(str::to_owned)
        })
        .collect();
    files.sort();
    let mut listed: Vec<String> = SCENARIOS.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        files, listed,
        "each tests/interop/browser/NAME.test.mjs needs NAME in scenarios!(…) in tests/browser.rs"
    );
}
