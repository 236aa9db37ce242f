//! A real `redis-server` per test, on a free port, with its data in a temp dir — never the
//! machine's own Redis. It can be stopped (SIGTERM: Redis writes its AOF and exits), killed
//! (SIGKILL), started again on the same port and dir, or started again empty.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::WAIT;

pub struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    /// The dir the server runs in now (a fresh subdir after [`RedisServer::restart_empty`]).
    data: PathBuf,
    generation: u32,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a fresh server. Fails the test (never skips it) if `redis-server` is missing.
    pub fn start() -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("0");
        let mut server = RedisServer {
            port: super::free_ports(1)[0],
            dir,
            data,
            generation: 0,
            child: None,
        };
        server.spawn();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        std::fs::create_dir_all(&self.data).unwrap();
        let mut child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .arg("--dir")
            .arg(&self.data)
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .args(["--daemonize", "no", "--logfile", ""])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-server ({e}): the Redis tests need it installed, \
                     e.g. `apt-get install redis-server` (Debian/Ubuntu) or `brew install redis`"
                )
            });
        // Redis logs "Ready to accept connections" once it has loaded its data: wait for it,
        // then keep draining the log so the server never blocks on a full pipe.
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
        ready
            .recv_timeout(WAIT)
            .expect("redis-server logs `Ready to accept connections`");
        self.child = Some(child);
    }

    fn signal(&mut self, signal: &str) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args([signal, &pid]).status();
            let _ = child.wait();
        }
    }

    /// SIGTERM: Redis finishes its AOF and exits; [`RedisServer::restart`] finds everything.
    pub fn stop(&mut self) {
        self.signal("-TERM");
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        self.signal("-KILL");
    }

    /// Starts again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Starts again on the same port with an empty data dir: Redis lost everything.
    pub fn restart_empty(&mut self) {
        self.kill();
        self.generation += 1;
        self.data = self.dir.path().join(self.generation.to_string());
        self.spawn();
    }

    /// A plain connection for the test's own commands.
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test redis")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
