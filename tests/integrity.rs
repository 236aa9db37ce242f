//! Integrity of the embedded store: a byte changed in a stored value (a snapshot, a log entry)
//! is refused and reported — 1011 on `/sync` and `/live`, 503 `store_corrupt` on REST, counted,
//! named in `/readyz` — never served, while the other rooms go on; and a data file that is not
//! a store (zero-length, garbage) or a data directory with other files is refused at start,
//! unless `--init-store` asks for a new store where that is safe.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::live::{get_room, live_url, post_command, LiveClient};
use common::process::HubProcess;
use common::*;
use okrhub::room_id::RoomId;
use okrhub::store::embedded::EmbeddedStore;
use okrhub::store::{DocStore, LogEntry};
use serde_json::json;
use yrs::{Map, WriteTxn};

const DB_FILE: &str = "okrhub.redb";

/// Changes the first byte of every occurrence of `needle` in `path` to `to`; returns how many.
/// (redb copies pages on write, so an old copy of a value may sit in a freed page beside the
/// live one: each occurrence gets one changed byte.)
fn flip_every(path: &Path, needle: &[u8], to: u8) -> usize {
    let mut bytes = std::fs::read(path).unwrap();
    let mut n = 0;
    let mut i = 0;
    while i + needle.len() <= bytes.len() {
        if &bytes[i..i + needle.len()] == needle {
            bytes[i] = to;
            n += 1;
            i += needle.len();
        } else {
            i += 1;
        }
    }
    std::fs::write(path, &bytes).unwrap();
    n
}

async fn create_objective(addr: std::net::SocketAddr, room: &str, title: &str) {
    let body = json!({"type": "objective.create", "title": title}).to_string();
    let r = post_command(addr, room, Some("ann"), &body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

fn titles(view: &serde_json::Value) -> Vec<String> {
    (view["okr"]["objectives"].as_array().expect("objectives"))
        .iter()
        .map(|o| o["title"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `/readyz`: status and body.
async fn readyz(addr: std::net::SocketAddr) -> (u16, String) {
    common::live::http(addr, "GET", "/readyz", None).await
}

/// The case: one changed byte in a stored snapshot came back through REST as
/// `"Xurable 1"`, `/readyz` ready, nothing logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_a_snapshot_is_refused_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (bad, good) = (room("flip-bad"), room("flip-good"));
    {
        let server = start_server(dir.path(), |_| {}).await;
        create_objective(server.local_addr(), &bad, "Durable 1").await;
        create_objective(server.local_addr(), &good, "Still fine").await;
        // A clean shutdown writes each room's snapshot and empties its log.
        server.shutdown().await.unwrap();
    }
    let flipped = flip_every(&dir.path().join(DB_FILE), b"Durable 1", b'X');
    assert!(flipped >= 1, "the title is in the data file");

    let server = start_server(dir.path(), |_| {}).await;
    let addr = server.local_addr();
    let (status, body) = readyz(addr).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("CORRUPT"), "nothing found yet: {body}");

    // A Yjs client: the existing 1011 close, nothing of the doc sent.
    let y = YClient::connect(&sync_url(&server, &bad)).await;
    let closed = y.wait_closed().await;
    assert_eq!(closed.code, Some(1011), "{closed:?}");
    assert!(
        closed.reason.contains("room could not be loaded"),
        "{closed:?}"
    );
    assert_eq!(y.frames_received(), 0, "nothing of the doc was sent");
    assert_eq!(metric(addr, "okrhub_store_corrupt_total").await, 1.0);
    assert_eq!(metric(addr, "okrhub_store_corrupt_rooms").await, 1.0);

    // REST: 503 with the standard error body and the reason; never the changed title.
    let r = get_room(addr, &bad).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "unavailable");
    assert_eq!(r.body["error"]["reason"], "store_corrupt");
    assert!(
        (r.body["error"]["message"].as_str().unwrap()).contains("integrity check"),
        "{:?}",
        r.body
    );
    // A command is refused the same way, and changes nothing.
    let cmd = json!({"type": "objective.create", "title": "over it"}).to_string();
    let r = post_command(addr, &bad, Some("ann"), &cmd).await;
    assert_eq!(
        (r.status, &r.body["error"]["reason"]),
        (503, &json!("store_corrupt"))
    );
    // /live: the same close as /sync.
    let live = LiveClient::connect(&live_url(addr, &bad, "user=ann"), "ann").await;
    assert_eq!(live.wait_closed().await.code, Some(1011));
    // Within --corrupt-recheck (30 s) those were refused without reading the store again.
    assert_eq!(metric(addr, "okrhub_store_corrupt_total").await, 1.0);

    // Ready — one corrupt room does not take the node out of rotation — and saying so.
    let (status, body) = readyz(addr).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("ready ("), "{body}");
    assert!(body.contains("STORE CORRUPT: 1 room is refused"), "{body}");
    assert!(!body.contains(&bad), "room ids are not published: {body}");

    // The other room is served, by REST and to Yjs clients.
    let r = get_room(addr, &good).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(titles(&r.body), vec!["Still fine".to_owned()]);
    let other = YClient::synced(&sync_url(&server, &good)).await;
    assert!(other.closed().is_none());
    server.shutdown().await.unwrap();

    // Nothing was written over the damaged value: it is still refused after a restart.
    let server = start_server(dir.path(), |_| {}).await;
    assert_eq!(get_room(server.local_addr(), &bad).await.status, 503);
    server.shutdown().await.unwrap();
}

/// A Yjs update setting `edits.k` to `text`.
fn update(text: &str) -> bytes::Bytes {
    let doc = yrs::Doc::new();
    let mut txn = yrs::Transact::transact_mut(&doc);
    txn.get_or_insert_map("edits").insert(&mut txn, "k", text);
    bytes::Bytes::from(txn.encode_update_v1())
}

/// A log entry (written by the store, the file closed cleanly before any snapshot) is checked
/// the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_a_log_entry_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (bad, good) = (room("logflip-bad"), room("logflip-good"));
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let entry = |room: &str, text| LogEntry {
            room: RoomId::parse(room).unwrap(),
            seq: 1,
            update: update(text),
            by: None,
        };
        store
            .append(&[entry(&bad, "Durable 1"), entry(&good, "Still fine")])
            .await
            .unwrap();
    }
    assert_eq!(flip_every(&dir.path().join(DB_FILE), b"Durable 1", b'X'), 1);

    let server = start_server(dir.path(), |_| {}).await;
    let addr = server.local_addr();
    let y = YClient::connect(&sync_url(&server, &bad)).await;
    assert_eq!(y.wait_closed().await.code, Some(1011));
    assert_eq!(metric(addr, "okrhub_store_corrupt_total").await, 1.0);
    let (status, body) = readyz(addr).await;
    assert!(status == 200 && body.contains("STORE CORRUPT"), "{body}");
    let ok = YClient::synced(&sync_url(&server, &good)).await;
    let text = ok.read(|d| {
        let edits = d.get_or_insert_map("edits");
        let txn = yrs::Transact::transact(d);
        edits.get(&txn, "k").map(|v| v.to_string(&txn))
    });
    assert_eq!(text.as_deref(), Some("Still fine"));
    server.shutdown().await.unwrap();
}

/// After a crash redb repairs the file at its next open, checking its own page checksums; a
/// changed byte in the last commit's pages makes it fall back to the commit before (what it
/// does for a write torn by the crash), and if that one is damaged too it refuses the whole
/// file. So the server either refuses to start, saying why, or serves the room as it was
/// before that commit (the Yjs client that made the edit resends it when it resyncs) — or, if
/// redb's repair passed the page, the value's own checksum refuses the room. Whichever: the
/// changed value is never served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_after_a_crash_is_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let bad = room("crashflip");
    let server = HubProcess::start(&["--data-dir", data]);
    let c = YClient::synced(&server.url(&bad)).await;
    c.edit(|_, txn| {
        txn.get_or_insert_map("edits").insert(txn, "k", "Durable 1");
    });
    c.round_trip().await;
    wait_metric(server.addr, "okrhub_store_appended_total", |v| v >= 1.0).await;
    server.sigkill();
    assert!(flip_every(&dir.path().join(DB_FILE), b"Durable 1", b'X') >= 1);
    match start_or_refuse(dir.path(), &[]) {
        Err(said) => assert!(said.contains("is not a store okrhub can open"), "{said}"),
        Ok(server) => {
            let y = YClient::connect(&server.url(&bad)).await;
            y.wait_for("synced or closed", |v| v.synced() || v.closed().is_some())
                .await;
            let text = y.read(|d| {
                let edits = d.get_or_insert_map("edits");
                let txn = yrs::Transact::transact(d);
                edits.get(&txn, "k").map(|v| v.to_string(&txn))
            });
            eprintln!(
                "after the crash: closed {:?}, k = {text:?}, corrupt_total {}",
                y.closed(),
                metric(server.addr, "okrhub_store_corrupt_total").await
            );
            assert_ne!(
                text.as_deref(),
                Some("Xurable 1"),
                "the changed value was served"
            );
            if let Some(closed) = y.closed() {
                assert_eq!(closed.code, Some(1011), "{closed:?}");
                assert_eq!(metric(server.addr, "okrhub_store_corrupt_total").await, 1.0);
            }
        }
    }
}

/// An `okrhub serve` that started; killed when dropped.
struct Started {
    child: std::process::Child,
    addr: std::net::SocketAddr,
}

impl Started {
    fn url(&self, room: &str) -> String {
        format!("ws://{}/sync/{room}", self.addr)
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `okrhub serve` on `data_dir`: `Ok` once it logs its address, `Err(stderr)` if it exits
/// first (it must exit with a failure then). Each outcome is told by the process itself: its
/// `listening` line, or its end.
fn start_or_refuse(data_dir: &Path, extra: &[&str]) -> Result<Started, String> {
    use std::io::{BufRead, BufReader, Read};
    let mut child = Command::new(env!("CARGO_BIN_EXE_okrhub"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("okrhub runs");
    let (stdout, mut stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel::<Option<String>>();
    std::thread::spawn(move || {
        let mut told = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let addr = line.split("addr=").nth(1);
            if let (Some(addr), false) = (addr.and_then(|a| a.split_whitespace().next()), told) {
                let _ = tx.send(Some(addr.to_owned()));
                told = true;
            }
        }
        let _ = tx.send(None); // stdout closed: the process ended
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    match rx
        .recv_timeout(WAIT)
        .expect("okrhub either starts or exits")
    {
        Some(addr) => Ok(Started {
            child,
            addr: addr.parse().unwrap(),
        }),
        None => {
            let status = child.wait().unwrap();
            assert!(
                !status.success(),
                "a refusal exits with a failure: {status:?}"
            );
            Err(errors.join().unwrap())
        }
    }
}

/// How `okrhub serve` on `data_dir` refused to start: its stderr. Fails the test if it starts.
fn refused_at_start(data_dir: &Path, extra: &[&str]) -> String {
    match start_or_refuse(data_dir, extra) {
        Err(said) => said,
        Ok(_) => panic!("okrhub started on {data_dir:?} {extra:?}; it should have refused"),
    }
}

/// `okrhub serve` starts on `data_dir` (it is killed again at once).
fn starts(data_dir: &Path, extra: &[&str]) {
    if let Err(said) = start_or_refuse(data_dir, extra) {
        panic!("okrhub refused to start on {data_dir:?} {extra:?}: {said}");
    }
}

#[test]
fn a_zero_length_data_file_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(DB_FILE);
    std::fs::write(&file, b"").unwrap();
    let said = refused_at_start(dir.path(), &[]);
    assert!(said.contains("is empty (0 bytes)"), "{said}");
    assert!(said.contains("--init-store"), "{said}");
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 0, "left as it is");
    // Asked for explicitly, a new store replaces the empty file; it then opens as a store.
    starts(dir.path(), &["--init-store"]);
    assert!(std::fs::metadata(&file).unwrap().len() > 0);
    starts(dir.path(), &[]);
}

#[test]
fn a_garbage_data_file_is_refused_at_start_even_with_init_store() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(DB_FILE);
    let garbage = b"this is not a database, but it is someone's data\n".repeat(100);
    std::fs::write(&file, &garbage).unwrap();
    for extra in [&[][..], &["--init-store"][..]] {
        let said = refused_at_start(dir.path(), extra);
        assert!(said.contains("is not a store okrhub can open"), "{said}");
    }
    assert_eq!(std::fs::read(&file).unwrap(), garbage, "never overwritten");
}

#[test]
fn a_data_dir_with_other_files_but_no_store_is_refused_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"not ours").unwrap();
    let said = refused_at_start(dir.path(), &[]);
    assert!(
        said.contains("notes.txt") && said.contains("--init-store"),
        "{said}"
    );
    assert!(!dir.path().join(DB_FILE).exists());
    // The environment variable says the same as the flag.
    let mut child = Command::new(env!("CARGO_BIN_EXE_okrhub"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("OKRHUB_INIT_STORE", "true")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let listening = lines.find(|l| l.as_ref().is_ok_and(|l| l.contains("listening")));
    let _ = child.kill();
    let _ = child.wait();
    assert!(listening.is_some(), "OKRHUB_INIT_STORE=true starts it");
    assert!(dir.path().join(DB_FILE).exists());
    assert!(
        dir.path().join("notes.txt").exists(),
        "the other file is left alone"
    );
}

/// `cargo run --release -- serve` on a fresh checkout: no `./data` at all.
#[test]
fn a_missing_data_dir_gets_a_new_store() {
    let base = tempfile::tempdir().unwrap();
    let data = base.path().join("fresh").join("data");
    starts(&data, &[]);
    assert!(data.join(DB_FILE).exists());
    starts(&data, &[]);
}
