//! The built-in dashboard: a real server on port 0 serves the embedded pages with the right
//! types and headers, every file a page or module refers to is served, and the board's model
//! (`web/model.js`, in Node.js: `tests/interop/board.test.mjs`) follows a live room exactly.
//!
//! The model test needs Node.js >= 18 on PATH and `npm ci --prefix tests/interop` (for `ws`);
//! without them it fails (it never skips).

mod common;

use std::path::Path;

use common::*;

/// Status code, lower-cased header names with their values, body.
struct Got {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn get(addr: std::net::SocketAddr, path: &str) -> Got {
    let raw = http_get(addr, path).await;
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Got {
        status,
        headers,
        body: body.to_owned(),
    }
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The paths a page or module refers to on this server: `src="/…"`, `href="/…"`,
/// `action="/…"`, and a module's `from './x.js'` (relative to `/web/`).
fn references(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\"", "action=\""] {
        for part in body.split(attr).skip(1) {
            let target = part.split('"').next().unwrap_or("");
            if target.starts_with('/') {
                out.push(target.to_owned());
            }
        }
    }
    for part in body.split("from './").skip(1) {
        let target = part.split('\'').next().unwrap_or("");
        out.push(format!("/web/{target}"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_dashboard_pages() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let addr = server.local_addr();

    for (path, content_type, needle) in [
        ("/", HTML, "/web/board.html"),
        ("/web/index.html", HTML, "/web/board.html"),
        ("/web/board.html", HTML, "/web/board.js"),
        ("/web/board.js", JS, "new WebSocket("),
        ("/web/model.js", JS, "export function applyEvent"),
        ("/web/style.css", CSS, "--on-track"),
    ] {
        let got = get(addr, path).await;
        assert_eq!(got.status, 200, "{path}");
        assert_eq!(got.header("content-type"), Some(content_type), "{path}");
        assert_eq!(got.header("cache-control"), Some("no-cache"), "{path}");
        assert_eq!(
            got.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert!(got.body.contains(needle), "{path} lacks {needle:?}");
        if content_type == HTML {
            let csp = got.header("content-security-policy").unwrap_or("");
            assert!(csp.contains("default-src 'self'"), "{path}: CSP {csp:?}");
        }
        for reference in references(&got.body) {
            let r = get(addr, &reference).await;
            assert_eq!(r.status, 200, "{path} refers to {reference}, not served");
        }
    }

    // What is served is what is in web/ (embedded at build time).
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    for name in [
        "index.html",
        "board.html",
        "board.js",
        "model.js",
        "style.css",
    ] {
        let on_disk = std::fs::read_to_string(web.join(name)).unwrap();
        assert_eq!(
            get(addr, &format!("/web/{name}")).await.body,
            on_disk,
            "{name}"
        );
    }

    for path in [
        "/web/nope.js",
        "/web/",
        "/web/..%2FCargo.toml",
        "/web/%2e%2e%2fCargo.toml",
        "/web/board.js/x",
        "/board.html",
    ] {
        assert_eq!(get(addr, path).await.status, 404, "{path}");
    }
    server.shutdown().await.unwrap();
}

use common::js::{interop_dir, require_node};

/// Runs `tests/interop/board.test.mjs` against a real server: the model's unit checks, then a
/// board fed the live events of a room (through a disconnect and a `?since=` resume) must end
/// equal to a fresh snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn board_model_follows_a_live_room() {
    require_node();

    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let url = format!("http://{}", server.local_addr());
    let run = tokio::process::Command::new("node")
        .arg(interop_dir().join("board.test.mjs"))
        .args(["--url", &url])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(WAIT * 2, run)
        .await
        .expect("board.test.mjs finishes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "board.test.mjs failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("unit: ok") && stdout.contains("server: ok"),
        "{stdout}"
    );
    server.shutdown().await.unwrap();
}
