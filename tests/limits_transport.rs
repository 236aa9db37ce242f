//! The transport's limits against real clients (issue 12): a silent WebSocket is closed after
//! the idle timeout while one answering pings stays; a connection that sends no request (or
//! stops mid-headers) is closed after the header timeout; a body that trickles in is cut off
//! (408) and one too large refused (413); the per-IP and total connection caps answer 503
//! while the connections already held keep working, and free their slot when one leaves; and
//! the real binary under a low file-descriptor limit refuses at its cap before it runs out of
//! descriptors, and survives running out (EMFILE) when the cap is set above the limit.
//!
//! Every wait is on the event itself (a close frame, EOF, an answer), bounded by [`WAIT`].

mod common;

use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::live::{post_command, validate};
use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use yrs::{Text, Transact, WriteTxn};

const SHORT: Duration = Duration::from_millis(300);
/// The idle timeout of the keep-alive test: long enough that a client answering pings (every
/// 100 ms) is never late, even on a loaded machine.
const IDLE: Duration = Duration::from_secs(1);

/// A WebSocket client that never sends a byte after its upgrade request (so it answers no
/// ping) but reads what the server sends, frame by frame.
struct SilentWs {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl SilentWs {
    async fn connect(addr: SocketAddr, path: &str) -> SilentWs {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = tokio::time::timeout(WAIT, tcp.read(&mut chunk))
                .await
                .expect("an answer to the upgrade")
                .unwrap();
            assert!(n > 0, "closed before the 101");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        buf.drain(..end);
        SilentWs { tcp, buf }
    }

    /// The next frame the server sends (opcode, payload); `None` at EOF.
    async fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some((opcode, payload, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                return Some((opcode, payload));
            }
            let n = self.tcp.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads until the server's close frame: (pings seen before it, code, reason).
    async fn until_close(&mut self) -> (usize, u16, String) {
        let mut pings = 0;
        tokio::time::timeout(WAIT, async {
            loop {
                match self.frame().await {
                    Some((0x9, _)) => pings += 1,
                    Some((0x8, p)) => {
                        let code = u16::from_be_bytes([p[0], p[1]]);
                        return (pings, code, String::from_utf8_lossy(&p[2..]).into_owned());
                    }
                    Some(_) => {}
                    None => panic!("EOF without a close frame"),
                }
            }
        })
        .await
        .expect("a close frame in time")
    }

    /// Answers the close (a masked close frame, as a client must) and waits for EOF.
    async fn finish(mut self) {
        let mask = [1u8, 2, 3, 4];
        let code = 1000u16.to_be_bytes();
        let frame = [
            0x88,
            0x82,
            mask[0],
            mask[1],
            mask[2],
            mask[3],
            code[0] ^ mask[0],
            code[1] ^ mask[1],
        ];
        let _ = self.tcp.write_all(&frame).await;
        let eof = tokio::time::timeout(WAIT, async { while self.frame().await.is_some() {} });
        eof.await
            .expect("the server closes after the close handshake");
    }
}

/// One unmasked server frame at the start of `b`: opcode, payload, bytes used.
fn parse_frame(b: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    if b.len() < 2 {
        return None;
    }
    let (len, header) = match b[1] & 0x7f {
        126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
        127 if b.len() >= 10 => (
            u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
            10,
        ),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    (b.len() >= header + len).then(|| (b[0] & 0x0f, b[header..header + len].to_vec(), header + len))
}

/// A TCP connection to `addr` from the source address `from` (another loopback address is
/// another client as far as the per-IP cap is concerned).
async fn connect_from(from: IpAddr, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Reads everything until the server closes; fails the test if that takes longer than WAIT.
async fn read_to_eof(tcp: &mut TcpStream) -> String {
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut raw))
        .await
        .expect("the server closes the connection")
        .expect("no reset");
    String::from_utf8_lossy(&raw).into_owned()
}

/// The connection answered with a 503 refusal for `reason`: status, `Retry-After`, the
/// standard error body; then closed.
async fn assert_refused(tcp: &mut TcpStream, reason: &str) {
    let reply = read_to_eof(tcp).await;
    let (head, body) = reply.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 5"),
        "{head}"
    );
    let body: Value = serde_json::from_str(body).unwrap();
    validate("error-response", &body);
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert_eq!(body["error"]["reason"], reason, "{body}");
}

/// `GET path` from the source address `from`: the whole answer.
async fn http_get_from(from: IpAddr, addr: SocketAddr, path: &str) -> String {
    let mut tcp = connect_from(from, addr).await;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    read_to_eof(&mut tcp).await
}

/// The value of the sample `name` in a `/metrics` answer (0 when absent).
fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            (k == name).then(|| v.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// A tokio-tungstenite client closing cleanly: close handshake, then EOF (the server frees the
/// connection's slot before it closes the socket).
async fn close_and_wait_eof(
    mut ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
) {
    ws.close(None).await.unwrap();
    tokio::time::timeout(WAIT, async {
        while let Some(Ok(_)) = ws.next().await {}
        let tokio_tungstenite::MaybeTlsStream::Plain(mut tcp) = ws.into_inner() else {
            unreachable!("plain ws://")
        };
        let mut rest = Vec::new();
        let _ = tcp.read_to_end(&mut rest).await;
    })
    .await
    .expect("the server closes after the close handshake");
}

#[tokio::test]
async fn a_silent_websocket_is_closed_after_the_idle_timeout_while_one_answering_pings_stays() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |a| {
        a.transport.ws_ping_interval = Duration::from_millis(100);
        a.transport.ws_idle_timeout = IDLE;
    })
    .await;
    let addr = server.local_addr();
    let r = room("idle");
    // Sends nothing after its handshake: only its automatic pongs keep it alive.
    let answering = YClient::synced(&sync_url(&server, &r)).await;

    let started = Instant::now();
    let mut silent = SilentWs::connect(addr, &format!("/sync/{r}")).await;
    let mut silent_live = SilentWs::connect(addr, &format!("/live/{r}?user=ann")).await;
    let (pings, code, reason) = silent.until_close().await;
    let silent_for = started.elapsed();
    assert_eq!(code, 1001, "{reason}");
    assert_eq!(reason, "idle timeout: nothing received for 1s");
    assert!(pings >= 1, "pinged before it was given up");
    assert!(
        silent_for >= IDLE,
        "closed after {silent_for:?}, before the idle timeout"
    );
    let (_, code, reason) = silent_live.until_close().await;
    assert_eq!(
        (code, reason.as_str()),
        (1001, "idle timeout: nothing received for 1s")
    );
    silent.finish().await;
    silent_live.finish().await;

    // Connected longer than the silent ones, and still there.
    answering.edit(|_, txn| txn.get_or_insert_text("t").push(txn, "still here"));
    answering.round_trip().await;
    assert_eq!(answering.closed(), None);
    let m = http_get(addr, "/metrics").await;
    assert_eq!(
        sample(&m, "okrhub_closes_total{reason=\"idle_timeout\"}"),
        2.0
    );
    assert!(sample(&m, "okrhub_ws_pings_total") >= 3.0, "{m}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_connection_sending_no_request_or_half_its_headers_is_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |a| a.transport.header_timeout = SHORT).await;
    let addr = server.local_addr();
    // A WebSocket quiet for longer than the header timeout is not an HTTP request in waiting.
    let ws = YClient::synced(&sync_url(&server, &room("headers"))).await;

    let started = Instant::now();
    let mut nothing = TcpStream::connect(addr).await.unwrap();
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_to_eof(&mut nothing).await, "", "closed, nothing said");
    assert_eq!(read_to_eof(&mut half).await, "");
    let after_idle = read_to_eof(&mut idle).await;
    assert!(after_idle.starts_with("HTTP/1.1 200"), "{after_idle}");
    assert!(
        started.elapsed() >= SHORT,
        "closed before the header timeout"
    );

    ws.round_trip().await;
    assert_eq!(ws.closed(), None);
    let m = http_get(addr, "/metrics").await;
    assert_eq!(
        sample(&m, "okrhub_http_refused_total{reason=\"header_timeout\"}"),
        3.0
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_trickling_body_is_cut_off_with_408_and_a_large_one_refused_with_413() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |a| {
        a.transport.body_timeout = SHORT;
        a.transport.max_body = 4096;
    })
    .await;
    let addr = server.local_addr();
    let r = room("body");
    let path = format!("/api/rooms/{r}/commands?user=ann");
    let head = |len: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{len}\r\n\r\n"
        )
    };

    // 1 byte every 50 ms of a 100-byte body: cut off at the body timeout.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(head("Content-Length: 100").as_bytes())
        .await
        .unwrap();
    let (mut rd, mut wr) = slow.into_split();
    let trickle = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(50));
        for _ in 0..99 {
            every.tick().await;
            if wr.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    let mut reply = Vec::new();
    tokio::time::timeout(WAIT, rd.read_to_end(&mut reply))
        .await
        .expect("answered and closed")
        .unwrap();
    trickle.abort();
    let reply = String::from_utf8(reply).unwrap();
    let (status, body) = reply.split_once("\r\n\r\n").unwrap();
    assert!(status.starts_with("HTTP/1.1 408"), "{reply}");
    let body: Value = serde_json::from_str(body).unwrap();
    validate("error-response", &body);
    assert_eq!(body["error"]["reason"], "body_timeout");

    // Declared too large: refused before a byte of it is read.
    let mut big = TcpStream::connect(addr).await.unwrap();
    big.write_all(head("Content-Length: 1000000").as_bytes())
        .await
        .unwrap();
    let reply = read_to_eof(&mut big).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("\"body_too_large\""), "{reply}");
    // Chunked, so not declared: refused once it passes the limit.
    let mut chunked = TcpStream::connect(addr).await.unwrap();
    let mut req = head("Transfer-Encoding: chunked").into_bytes();
    for _ in 0..3 {
        req.extend_from_slice(format!("800\r\n{}\r\n", " ".repeat(0x800)).as_bytes());
    }
    chunked.write_all(&req).await.unwrap();
    let reply = read_to_eof(&mut chunked).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");

    // A malformed chunk: the body cannot be read, and the answer says so.
    let mut broken = TcpStream::connect(addr).await.unwrap();
    let mut req = head("Transfer-Encoding: chunked").into_bytes();
    req.extend_from_slice(b"zz\r\nnot a chunk\r\n");
    broken.write_all(&req).await.unwrap();
    let reply = read_to_eof(&mut broken).await;
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(reply.contains("\"body_broken\""), "{reply}");

    // A command sent at once still goes through.
    let ok = post_command(
        addr,
        &r,
        Some("ann"),
        &json!({"type": "objective.create", "title": "Ship it"}).to_string(),
    )
    .await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    let m = http_get(addr, "/metrics").await;
    assert_eq!(
        sample(&m, "okrhub_http_refused_total{reason=\"body_timeout\"}"),
        1.0
    );
    assert_eq!(
        sample(&m, "okrhub_http_refused_total{reason=\"body_too_large\"}"),
        2.0
    );
    assert_eq!(
        sample(&m, "okrhub_http_refused_total{reason=\"body_broken\"}"),
        1.0
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_per_ip_cap_answers_503_serves_other_addresses_and_frees_a_slot_when_one_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |a| a.transport.max_connections_per_ip = 3).await;
    let addr = server.local_addr();
    let url = sync_url(&server, &room("per-ip"));
    let other: IpAddr = "127.0.0.2".parse().unwrap();

    let a = YClient::synced(&url).await;
    let b = YClient::synced(&url).await;
    let (c, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let mut refused = TcpStream::connect(addr).await.unwrap();
    assert_refused(&mut refused, "max_connections_per_ip").await;
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 503),
        other => panic!("a fourth WebSocket from 127.0.0.1 was not refused: {other:?}"),
    }

    // Another address is served, WebSockets included.
    let health = http_get_from(other, addr, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let (mut d, _) = tokio_tungstenite::client_async(&url, connect_from(other, addr).await)
        .await
        .expect("another address may connect");
    // And the connections held go on: an edit from one reaches the other.
    a.edit(|_, txn| txn.get_or_insert_text("t").push(txn, "hello"));
    b.wait_for("a's edit", |v| {
        yrs::GetString::get_string(&v.doc().get_or_insert_text("t"), &v.doc().transact()) == "hello"
    })
    .await;

    close_and_wait_eof(c).await;
    let again = YClient::synced(&url).await;
    again.round_trip().await;
    d.close(None).await.unwrap();

    let m = http_get_from(other, addr, "/metrics").await;
    assert_eq!(
        sample(
            &m,
            "okrhub_connections_refused_total{reason=\"max_connections_per_ip\"}"
        ),
        2.0
    );
    assert_eq!(
        sample(
            &m,
            "okrhub_connections_refused_total{reason=\"max_connections\"}"
        ),
        0.0
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_total_cap_answers_503_keeps_serving_what_it_holds_and_admits_once_one_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |a| {
        a.transport.max_connections = Some(3);
        a.transport.max_connections_per_ip = 0;
    })
    .await;
    let addr = server.local_addr();
    let url = sync_url(&server, &room("total"));

    let a = YClient::synced(&url).await;
    let b = YClient::synced(&url).await;
    let (c, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let mut refused = TcpStream::connect(addr).await.unwrap();
    assert_refused(&mut refused, "max_connections").await;
    let mut also = TcpStream::connect(addr).await.unwrap();
    also.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_refused(&mut also, "max_connections").await;

    a.edit(|_, txn| txn.get_or_insert_text("t").push(txn, "held"));
    b.wait_for("a's edit", |v| {
        yrs::GetString::get_string(&v.doc().get_or_insert_text("t"), &v.doc().transact()) == "held"
    })
    .await;

    close_and_wait_eof(c).await;
    let m = http_get(addr, "/metrics").await;
    assert_eq!(
        sample(
            &m,
            "okrhub_connections_refused_total{reason=\"max_connections\"}"
        ),
        2.0
    );
    assert_eq!(
        sample(&m, "okrhub_tcp_connections"),
        3.0,
        "a, b and this request"
    );
    server.shutdown().await.unwrap();
}

/// The binary under `prlimit --nofile=N:N`, its log lines collected.
struct LimitedHub {
    child: Child,
    addr: SocketAddr,
    /// Its stdout so far, and a signal for each new line.
    log: Arc<(Mutex<Vec<String>>, Condvar)>,
}

impl LimitedHub {
    fn start(nofile: u32, args: &[&str], data_dir: &std::path::Path) -> LimitedHub {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new("prlimit")
            .arg(format!("--nofile={nofile}:{nofile}"))
            .arg(env!("CARGO_BIN_EXE_okrhub"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("prlimit runs okrhub (util-linux)");
        let stdout = child.stdout.take().unwrap();
        let log = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let (found, addr) = std::sync::mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(a) = line.split("addr=").nth(1) {
                    let _ = found.send(a.split_whitespace().next().unwrap_or("").to_owned());
                }
                lines.0.lock().unwrap().push(line);
                lines.1.notify_all();
            }
        });
        let addr = addr
            .recv_timeout(WAIT)
            .expect("okrhub starts")
            .parse()
            .unwrap();
        LimitedHub { child, addr, log }
    }

    fn lines_with(&self, what: &str) -> Vec<String> {
        let log = self.log.0.lock().unwrap();
        log.iter().filter(|l| l.contains(what)).cloned().collect()
    }

    /// Waits (at most [`WAIT`]) until a line containing `what` has been logged; then every
    /// such line so far.
    fn wait_lines_with(&self, what: &str) -> Vec<String> {
        let (log, new_line) = &*self.log;
        let log = new_line
            .wait_timeout_while(log.lock().unwrap(), WAIT, |l| {
                !l.iter().any(|l| l.contains(what))
            })
            .unwrap()
            .0;
        let found: Vec<String> = log.iter().filter(|l| l.contains(what)).cloned().collect();
        assert!(!found.is_empty(), "no log line with {what:?}");
        found
    }
}

impl Drop for LimitedHub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn under_a_low_fd_limit_the_default_cap_refuses_before_descriptors_run_out() {
    let dir = tempfile::tempdir().unwrap();
    // 128 descriptors: the default cap is 64.
    let hub = LimitedHub::start(128, &["--header-timeout", "1s"], dir.path());
    let url = format!("ws://{}/sync/{}", hub.addr, room("fd-cap"));
    let ws = YClient::synced(&url).await;
    let mut held = Vec::new();
    for _ in 0..63 {
        held.push(TcpStream::connect(hub.addr).await.unwrap());
    }
    // Accepted in order: the 65th connection finds 64 counted.
    let mut refused = Vec::new();
    for _ in 0..20 {
        refused.push(TcpStream::connect(hub.addr).await.unwrap());
    }
    for tcp in &mut refused {
        assert_refused(tcp, "max_connections").await;
    }
    ws.round_trip().await;
    // The held ones send no request: the header timeout closes them, and their slots are free.
    for tcp in &mut held {
        assert_eq!(read_to_eof(tcp).await, "");
    }
    let m = http_get(hub.addr, "/metrics").await;
    assert_eq!(
        sample(
            &m,
            "okrhub_connections_refused_total{reason=\"max_connections\"}"
        ),
        20.0
    );
    assert_eq!(
        sample(&m, "okrhub_accept_errors_total"),
        0.0,
        "never out of descriptors"
    );
    ws.round_trip().await;
    assert_eq!(
        hub.wait_lines_with("connection cap reached").len(),
        1,
        "one warning per burst"
    );
    assert!(hub.lines_with("accept failed").is_empty());
}

#[tokio::test]
async fn out_of_descriptors_the_accept_loop_backs_off_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    // A cap above the limit, so that descriptors run out first.
    let hub = LimitedHub::start(
        64,
        &["--max-connections", "1000", "--header-timeout", "2s"],
        dir.path(),
    );
    let url = format!("ws://{}/sync/{}", hub.addr, room("emfile"));
    let ws = YClient::synced(&url).await;
    let mut conns = Vec::new();
    for _ in 0..80 {
        conns.push(TcpStream::connect(hub.addr).await.unwrap());
    }
    // Some of those wait in the backlog while accept fails; the WebSocket held is served.
    ws.edit(|_, txn| txn.get_or_insert_text("t").push(txn, "x"));
    ws.round_trip().await;
    // The header timeout frees descriptors; the backlog is accepted and timed out in turn.
    for tcp in &mut conns {
        assert_eq!(read_to_eof(tcp).await, "");
    }
    let health = http_get(hub.addr, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let m = http_get(hub.addr, "/metrics").await;
    assert!(sample(&m, "okrhub_accept_errors_total") >= 1.0, "{m}");
    let warnings = hub.wait_lines_with("accept failed");
    assert!(
        (1..=2).contains(&warnings.len()),
        "throttled to one per 10 s: {warnings:?}"
    );
    assert_eq!(
        hub.wait_lines_with("above the file-descriptor limit").len(),
        1
    );
}
