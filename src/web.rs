//! The built-in pages: the static files of `web/` (plain HTML, CSS and ES modules, no build
//! step; `web/README.md`), embedded in the release binary so that neither it nor the Docker
//! image needs the directory at runtime. A debug build reads them from `web/` as it runs
//! (rust-embed's default), so a page edit shows on reload; the files are the same.
//!
//! | path | answer |
//! |---|---|
//! | `/` | the rooms the caller may read (`web/index.html`) |
//! | `/rooms/{room}` | the planning board (`web/board.html`) |
//! | `/rooms/{room}/screen` | the room screen (`web/screen.html`) |
//! | `/web/{path}` | any file below `web/` (not the `*.md`), including `web/vendor/` |
//!
//! Every answer says `Cache-Control: no-cache` (a browser revalidates, so a new binary's pages
//! are picked up at once), `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`.
//! Pages carry a Content-Security-Policy that allows only this origin's scripts, styles and
//! WebSockets — and the one inline script there is: the import map (`web/vendor/importmap.json`,
//! written by `tests/interop/vendor.mjs`), which the server puts where a page says
//! `<!-- okrhub:importmap -->` and allows by its SHA-256.

use axum::extract::Path;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rust_embed::RustEmbed;

use crate::room_id::RoomId;

#[derive(RustEmbed)]
#[folder = "web/"]
#[exclude = "*.md"]
struct Files;

/// Where a page wants the import map.
pub const IMPORTMAP_SLOT: &str = "<!-- okrhub:importmap -->";
const IMPORTMAP_FILE: &str = "vendor/importmap.json";

/// The content type of a file name, by its extension (`None`: not served).
pub fn content_type(name: &str) -> Option<&'static str> {
    if name.ends_with("/LICENSE") {
        return Some("text/plain; charset=utf-8");
    }
    Some(match name.rsplit_once('.')?.1 {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        _ => return None,
    })
}

/// The embedded file at `path` (relative to `web/`), with its content type. Names are matched
/// exactly: no `..`, no empty parts, nothing hidden.
pub fn asset(path: &str) -> Option<(std::borrow::Cow<'static, [u8]>, &'static str)> {
    let plain = !path.is_empty()
        && path
            .split('/')
            .all(|p| !p.is_empty() && !p.starts_with('.') && !p.contains('\\'));
    if !plain {
        return None;
    }
    let ty = content_type(path)?;
    Files::get(path).map(|f| (f.data, ty))
}

/// Every embedded file name.
pub fn names() -> Vec<String> {
    Files::iter().map(|n| n.into_owned()).collect()
}

/// `GET /`: the room list.
pub async fn index() -> Response {
    page("index.html")
}

/// `GET /rooms/{room}`: the planning board.
pub async fn board(Path(room): Path<String>) -> Response {
    room_page(&room, "board.html")
}

/// `GET /rooms/{room}/screen`: the room screen.
pub async fn screen(Path(room): Path<String>) -> Response {
    room_page(&room, "screen.html")
}

/// `GET /web/{path}`.
pub async fn file(Path(path): Path<String>) -> Response {
    if path.ends_with(".html") {
        return page(&path);
    }
    match asset(&path) {
        Some((body, ty)) => with_headers(body.into_owned(), ty, None),
        None => not_found(),
    }
}

fn room_page(room: &str, name: &str) -> Response {
    // The page reads the room from its own path; a malformed one is a 404 here, not a page
    // that opens a socket bound to fail.
    if RoomId::parse(room).is_err() {
        return not_found();
    }
    page(name)
}

/// An HTML page, with the import map in its slot and the page CSP.
fn page(name: &str) -> Response {
    let Some((body, ty)) = asset(name) else {
        return not_found();
    };
    let html = String::from_utf8_lossy(&body);
    let importmap = asset(IMPORTMAP_FILE).map(|(m, _)| m);
    let (html, hash) = match (&importmap, html.contains(IMPORTMAP_SLOT)) {
        (Some(map), true) => {
            let map = String::from_utf8_lossy(map);
            let script = format!("<script type=\"importmap\">{map}</script>");
            (
                html.replacen(IMPORTMAP_SLOT, &script, 1),
                Some(script_hash(&map)),
            )
        }
        _ => (html.into_owned(), None),
    };
    with_headers(html.into_bytes(), ty, Some(csp(hash.as_deref())))
}

/// `'sha256-…'` of an inline script's text, as CSP wants it.
pub fn script_hash(text: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// What the pages may load: their own scripts (and the import map by hash) and styles, this
/// origin's sockets and API, no framing.
pub fn csp(importmap_hash: Option<&str>) -> String {
    let scripts = match importmap_hash {
        Some(h) => format!("'self' {h}"),
        None => "'self'".to_owned(),
    };
    format!(
        "default-src 'self'; script-src {scripts}; connect-src 'self' ws: wss:; \
         img-src 'self' data:; style-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'self'"
    )
}

fn with_headers(body: Vec<u8>, ty: &'static str, csp: Option<String>) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, ty),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response();
    if let Some(Ok(value)) = csp.map(|c| HeaderValue::from_str(&c)) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("content-security-policy"), value);
    }
    response
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, "no-cache")],
        "not found",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_file_has_a_type() {
        let names = names();
        assert!(names.iter().any(|n| n == "board.js"), "{names:?}");
        assert!(names.iter().any(|n| n == "vendor/yjs/dist/yjs.mjs"));
        for name in names {
            let (body, _) = asset(&name).unwrap_or_else(|| panic!("{name} is not served"));
            assert!(!body.is_empty(), "{name} is empty");
        }
    }

    #[test]
    fn only_embedded_names_are_found() {
        assert!(asset("board.js").is_some());
        assert!(asset("vendor/lib0/math.js").is_some());
        for name in [
            "",
            "..",
            "../Cargo.toml",
            "vendor/../board.js",
            "vendor//lib0/math.js",
            "board.js/",
            "/board.js",
            "BOARD.JS",
            "web/board.js",
            "README.md",
            ".hidden",
        ] {
            assert!(asset(name).is_none(), "{name:?}");
        }
    }

    #[test]
    fn pages_get_the_import_map_and_its_hash() {
        let response = page("board.html");
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        let map = String::from_utf8(asset(IMPORTMAP_FILE).unwrap().0.into_owned()).unwrap();
        assert!(csp.contains(&script_hash(&map)), "{csp}");
        assert!(csp.contains("script-src 'self' 'sha256-"), "{csp}");
    }

    #[test]
    fn the_hash_is_what_browsers_compute() {
        // `echo -n 'alert(1)' | openssl dgst -sha256 -binary | base64`
        assert_eq!(
            script_hash("alert(1)"),
            "'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='"
        );
    }
}
