//! The built-in pages: a real server on port 0 serves the embedded pages with the right types
//! and headers, every file a page or module refers to is served, the vendored Yjs modules are
//! the lock's, sign-in, the room list and the role in a room answer as documented, and the
//! board's model (`web/model.js`, in Node.js: `tests/interop/board.test.mjs`) follows a live
//! room exactly.
//!
//! The model test needs Node.js >= 18 on PATH and `npm ci --prefix tests/interop` (for `ws`);
//! without them it fails (it never skips).

mod common;

use std::path::Path;

use common::*;

async fn get(addr: std::net::SocketAddr, path: &str) -> common::http::Answer {
    common::http::request(addr, "GET", path, &[], "").await
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The paths a page or module refers to on this server: `src="/…"`, `href="/…"`, and a
/// module's `from './x.js'` or `import './x.js'` (relative to `/web/`).
fn references(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for part in body.split(attr).skip(1) {
            let target = part.split('"').next().unwrap_or("");
            if target.starts_with("/web/") {
                out.push(target.to_owned());
            }
        }
    }
    for prefix in ["from './", "import './"] {
        for part in body.split(prefix).skip(1) {
            let target = part.split('\'').next().unwrap_or("");
            out.push(format!("/web/{target}"));
        }
    }
    out
}

/// Every file below `web/` but the `*.md`, as a path relative to it.
fn web_files(dir: &Path, base: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            web_files(&path, base, out);
        } else if path.extension().is_none_or(|e| e != "md") {
            let rel = path.strip_prefix(base).unwrap().to_string_lossy();
            out.push(rel.replace('\\', "/"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_pages_and_everything_they_load() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let addr = server.local_addr();

    let mut queue: Vec<String> = Vec::new();
    for (path, content_type, needle) in [
        ("/", HTML, "/web/index.js"),
        ("/rooms/acme.sales.2026-Q3", HTML, "/web/board.js"),
        ("/rooms/acme.sales.2026-Q3/screen", HTML, "/web/screen.js"),
        ("/web/live.js", JS, "new WebSocket("),
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
        queue.extend(references(&got.body));
    }
    // Everything reachable from the pages, module by module, is served.
    let mut seen = std::collections::BTreeSet::new();
    while let Some(reference) = queue.pop() {
        if !seen.insert(reference.clone()) {
            continue;
        }
        let r = get(addr, &reference).await;
        assert_eq!(r.status, 200, "{reference} is referred to, not served");
        queue.extend(references(&r.body));
    }
    for module in [
        "/web/i18n.js",
        "/web/board-strings.js",
        "/web/screen-strings.js",
    ] {
        assert!(seen.contains(module), "{module} not reached: {seen:?}");
    }

    // What is served under /web/ is what is in web/, file for file.
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let mut files = Vec::new();
    web_files(&web, &web, &mut files);
    assert!(files.len() > 50, "{files:?}");
    for name in files {
        let on_disk = std::fs::read(web.join(&name)).unwrap();
        let got = get(addr, &format!("/web/{name}")).await;
        assert_eq!(got.status, 200, "{name}");
        if !name.ends_with(".html") {
            assert_eq!(got.body.as_bytes(), on_disk, "{name}");
        }
    }

    for path in [
        "/web/nope.js",
        "/web/",
        "/web/README.md",
        "/web/..%2FCargo.toml",
        "/web/%2e%2e%2fCargo.toml",
        "/web/vendor/..%2F..%2FCargo.toml",
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

/// The Yjs modules under `web/vendor/` are exactly the files of the npm packages pinned in
/// `tests/interop/package-lock.json` (`node tests/interop/vendor.mjs --check`), and the server
/// serves them where the import map says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendored_modules_match_the_lock_and_are_served() {
    require_node();
    let out = std::process::Command::new("node")
        .arg(interop_dir().join("vendor.mjs"))
        .arg("--check")
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "web/vendor/ differs from the lock:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let addr = server.local_addr();
    let map: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("web/vendor/importmap.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let imports = map["imports"].as_object().unwrap();
    for specifier in ["yjs", "y-websocket", "y-protocols/awareness"] {
        assert!(imports.contains_key(specifier), "{specifier}");
    }
    for (specifier, url) in imports {
        let got = get(addr, url.as_str().unwrap()).await;
        assert_eq!(got.status, 200, "{specifier} → {url}");
        assert_eq!(got.header("content-type"), Some(JS), "{url}");
    }
    server.shutdown().await.unwrap();
}

/// `/rooms/{room}` and `/rooms/{room}/screen` are the board and the screen, with the import
/// map in place and allowed by its hash; a malformed room id is a 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_pages_carry_the_import_map() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let addr = server.local_addr();
    let map = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("web/vendor/importmap.json"),
    )
    .unwrap();
    for (path, file) in [
        ("/rooms/acme.sales.2026-Q3", "board.html"),
        ("/rooms/acme.~ann.2026-Q3/screen", "screen.html"),
    ] {
        let got = get(addr, path).await;
        assert_eq!(got.status, 200, "{path}");
        assert_eq!(got.header("content-type"), Some(HTML), "{path}");
        let on_disk =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("web").join(file))
                .unwrap();
        if on_disk.contains(okrhub::web::IMPORTMAP_SLOT) {
            let script = format!("<script type=\"importmap\">{map}</script>");
            assert!(got.body.contains(&script), "{path}: no import map");
            assert!(!got.body.contains(okrhub::web::IMPORTMAP_SLOT));
            let csp = got.header("content-security-policy").unwrap();
            assert!(
                csp.contains(&okrhub::web::script_hash(&map)),
                "{path}: CSP {csp}"
            );
        }
    }
    for path in [
        "/rooms/acme.sales",
        "/rooms/acme..2026-Q3",
        "/rooms/acme.sales.2026-Q3/x",
        "/rooms/..%2F..%2Fetc/screen",
    ] {
        assert_eq!(get(addr, path).await.status, 404, "{path}");
    }
    server.shutdown().await.unwrap();
}

mod signed_in {
    //! With tokens: `/login`, the room list and the caller's role in a room.
    use super::common::http::request;
    use super::common::tokens::{claims, hs256};
    use super::*;
    use okrhub::identity::Role;

    const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

    async fn signed_server(dir: &Path) -> okrhub::server::RunningServer {
        start_server(dir, |a| a.security.jwt_secret = Some(SECRET.into())).await
    }

    fn token(user: &str, org: &str, roles: &[(&str, Role)]) -> String {
        hs256(SECRET, &claims(user, org, roles))
    }

    /// Creates `room` as `token`'s holder (an admin there).
    async fn create(addr: std::net::SocketAddr, room: &str, token: &str) {
        let auth = format!("Bearer {token}");
        let got = request(
            addr,
            "POST",
            &format!("/api/rooms/{room}/commands"),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            r#"{"type":"cycle.set","starts":"2026-07-01","ends":"2026-09-30"}"#,
        )
        .await;
        assert_eq!(got.status, 200, "{room}: {}", got.body);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn login_sets_the_cookie_and_leaves_the_token_behind() {
        let dir = tempfile::tempdir().unwrap();
        let server = signed_server(dir.path()).await;
        let addr = server.local_addr();
        let ann = token("ann", "acme", &[("acme.*.*", Role::Editor)]);

        let got = request(
            addr,
            "GET",
            &format!("/login?token={ann}&next=/rooms/acme.sales.2026-Q3"),
            &[],
            "",
        )
        .await;
        assert_eq!(got.status, 303, "{}", got.body);
        assert_eq!(got.header("location"), Some("/rooms/acme.sales.2026-Q3"));
        assert_eq!(got.header("cache-control"), Some("no-store"));
        let cookie = got.header("set-cookie").expect("a cookie");
        assert!(
            cookie.starts_with(&format!("okrhub_token={ann};")),
            "{cookie}"
        );
        for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
            assert!(cookie.contains(attr), "{cookie} lacks {attr}");
        }

        assert!(!cookie.contains("Secure"), "{cookie}: plain HTTP");
        // Behind a TLS-terminating proxy the cookie is Secure.
        for (header, value) in [
            ("X-Forwarded-Proto", "https"),
            ("Forwarded", "for=1.2.3.4;proto=https"),
        ] {
            let got = request(
                addr,
                "GET",
                &format!("/login?token={ann}"),
                &[(header, value)],
                "",
            )
            .await;
            let cookie = got.header("set-cookie").expect("a cookie");
            assert!(cookie.ends_with("; Secure"), "{header}: {cookie}");
        }

        // The cookie is what the pages then carry.
        let with_cookie = format!("okrhub_token={ann}");
        let me = request(addr, "GET", "/api/session", &[("Cookie", &with_cookie)], "").await;
        assert_eq!(me.status, 200);
        assert_eq!(me.json()["user"], "ann");

        // Anywhere but a path on this server is home instead.
        for next in [
            "//evil.example/x",
            "https://evil.example/",
            "/\\evil.example",
            "rooms",
        ] {
            let got = request(
                addr,
                "GET",
                &format!("/login?token={ann}&next={next}"),
                &[],
                "",
            )
            .await;
            assert_eq!(got.header("location"), Some("/"), "next={next}");
        }

        // A bad or missing token sets nothing.
        let forged = format!("{}x", &ann[..ann.len() - 1]);
        for path in [format!("/login?token={forged}"), "/login".to_owned()] {
            let got = request(addr, "GET", &path, &[], "").await;
            assert_eq!(got.status, 401, "{path}");
            assert!(got.header("set-cookie").is_none(), "{path}");
            assert!(got.json()["error"]["reason"].is_string(), "{}", got.body);
        }
        server.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_room_list_shows_what_the_caller_may_read() {
        let dir = tempfile::tempdir().unwrap();
        let server = signed_server(dir.path()).await;
        let addr = server.local_addr();
        let boss = token("boss", "acme", &[("acme.*.*", Role::Admin)]);
        for room in [
            "acme.sales.2026-Q3",
            "acme.sales.2026-Q4",
            "acme.hr.2026-Q3",
            "acme.~ann.2026-Q3",
            "acme.~li.2026-Q3",
        ] {
            create(addr, room, &boss).await;
        }
        let other = token("boss", "globex", &[("globex.*.*", Role::Admin)]);
        create(addr, "globex.sales.2026-Q3", &other).await;

        let list = |token: String, query: &'static str| async move {
            let auth = format!("Bearer {token}");
            let got = request(
                addr,
                "GET",
                &format!("/api/rooms{query}"),
                &[("Authorization", &auth)],
                "",
            )
            .await;
            assert_eq!(got.status, 200, "{}", got.body);
            let v = got.json();
            assert_eq!(v["truncated"], false);
            v["rooms"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| format!("{} {}", r["room"].as_str().unwrap(), r["role"]))
                .collect::<Vec<_>>()
        };

        // ann edits sales, has no role in hr (reads its public objectives), owns her personal
        // room and does not see li's; nothing of globex. Newest cycle first.
        let ann = token("ann", "acme", &[("acme.sales.*", Role::Editor)]);
        assert_eq!(
            list(ann.clone(), "").await,
            [
                "acme.sales.2026-Q4 \"editor\"",
                "acme.hr.2026-Q3 null",
                "acme.sales.2026-Q3 \"editor\"",
                "acme.~ann.2026-Q3 \"admin\"",
            ]
        );
        assert_eq!(
            list(ann.clone(), "?team=sales&cycle=2026-Q3").await,
            ["acme.sales.2026-Q3 \"editor\""]
        );
        assert!(list(ann, "?org=globex").await.is_empty());
        // An admin of the org sees every personal room.
        assert_eq!(list(boss, "?cycle=2026-Q3").await.len(), 4);

        // Without a token: 401.
        let got = request(addr, "GET", "/api/rooms", &[], "").await;
        assert_eq!(got.status, 401);
        server.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_session_says_the_role_in_a_room() {
        let dir = tempfile::tempdir().unwrap();
        let server = signed_server(dir.path()).await;
        let addr = server.local_addr();
        let role_in = |token: String, room: &'static str| async move {
            let auth = format!("Bearer {token}");
            request(
                addr,
                "GET",
                &format!("/api/session?room={room}"),
                &[("Authorization", &auth)],
                "",
            )
            .await
        };
        let screen = token("screen", "acme", &[("acme.sales.*", Role::Viewer)]);
        let got = role_in(screen.clone(), "acme.sales.2026-Q3").await.json();
        assert_eq!(
            (got["role"].as_str(), got["may_write"].as_bool()),
            (Some("viewer"), Some(false))
        );
        let ann = token("ann", "acme", &[("acme.sales.*", Role::Editor)]);
        let got = role_in(ann.clone(), "acme.sales.2026-Q3").await.json();
        assert_eq!(
            (got["role"].as_str(), got["may_write"].as_bool()),
            (Some("editor"), Some(true))
        );
        let got = role_in(ann.clone(), "acme.hr.2026-Q3").await.json();
        assert_eq!(
            (got["role"].is_null(), got["may_write"].as_bool()),
            (true, Some(false))
        );
        assert_eq!(
            role_in(ann.clone(), "globex.sales.2026-Q3").await.status,
            403
        );
        assert_eq!(role_in(ann, "not-a-room").await.status, 400);
        server.shutdown().await.unwrap();
    }
}
