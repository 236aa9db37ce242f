//! The built-in dashboard: the static pages of `web/` (plain HTML, CSS and ES modules, no build
//! step), embedded in the binary so that neither `cargo run` nor the Docker image needs the
//! directory at runtime.
//!
//! `GET /` is the room picker (`web/index.html`); `GET /web/{file}` serves the files below.
//! Every answer says `Cache-Control: no-cache` (a browser revalidates, so a new binary's pages
//! are picked up at once) and `X-Content-Type-Options: nosniff`; pages also carry a
//! Content-Security-Policy that allows only this origin's scripts and styles, and WebSockets.

use axum::extract::Path;
use axum::http::{header, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// What the pages may load: their own scripts and styles, the `/live` socket, no framing.
const PAGE_CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; \
                        object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'";

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
}

/// Every file served under `/web/`.
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: HTML,
        body: include_str!("../web/index.html"),
    },
    Asset {
        name: "board.html",
        content_type: HTML,
        body: include_str!("../web/board.html"),
    },
    Asset {
        name: "board.js",
        content_type: JS,
        body: include_str!("../web/board.js"),
    },
    Asset {
        name: "model.js",
        content_type: JS,
        body: include_str!("../web/model.js"),
    },
    Asset {
        name: "style.css",
        content_type: CSS,
        body: include_str!("../web/style.css"),
    },
];

/// The embedded file `name` (a bare file name: there are no directories).
pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// `GET /`: the room picker.
pub async fn index() -> Response {
    match asset("index.html") {
        Some(a) => respond(a),
        None => not_found(),
    }
}

/// `GET /web/{file}`.
pub async fn file(Path(name): Path<String>) -> Response {
    match asset(&name) {
        Some(a) => respond(a),
        None => not_found(),
    }
}

fn respond(asset: &'static Asset) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // Board URLs carry the user id: do not hand them to other sites.
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        asset.body,
    )
        .into_response();
    if asset.content_type == HTML {
        response.headers_mut().insert(
            HeaderName::from_static("content-security-policy"),
            header::HeaderValue::from_static(PAGE_CSP),
        );
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
    fn every_asset_has_a_type_from_its_extension() {
        for a in ASSETS {
            let ext = a.name.rsplit_once('.').map(|(_, e)| e);
            let want = match ext {
                Some("html") => HTML,
                Some("js") => JS,
                Some("css") => CSS,
                other => panic!("{}: unexpected extension {other:?}", a.name),
            };
            assert_eq!(a.content_type, want, "{}", a.name);
            assert!(!a.body.is_empty(), "{} is empty", a.name);
        }
    }

    #[test]
    fn only_embedded_names_are_found() {
        assert!(asset("board.js").is_some());
        for name in [
            "",
            "..",
            "../Cargo.toml",
            "board.js/",
            "BOARD.JS",
            "web/board.js",
        ] {
            assert!(asset(name).is_none(), "{name:?}");
        }
    }
}
