//! The WebSocket handshake (RFC 6455 §4.2) as an axum extractor, handing the session the raw
//! `TcpStream` rather than a wrapped stream.
//!
//! The checks are the RFC's: `GET`, `Connection: upgrade`, `Upgrade: websocket`,
//! `Sec-WebSocket-Version: 13` and a `Sec-WebSocket-Key`, answered with `101 Switching
//! Protocols` and the derived `Sec-WebSocket-Accept` (tungstenite's `derive_accept_key`). No
//! subprotocol and no extension is negotiated (y-websocket uses neither), so a client offering
//! `permessage-deflate` simply gets plain frames.
//!
//! The upgraded connection is hyper's `Upgraded`; it is downcast back to the `TcpStream` it
//! came from, which works because [`crate::server`] serves HTTP/1.1 over plain `TcpStream`s.
//! Bytes the client sent right after its request (hyper may have read them already) come along
//! in [`Upgraded::read_buf`], and so does the connection's [`Slot`] (its place under the
//! server's connection caps, handed to each request by [`crate::server`]), so that it is
//! given back when the session ends rather than when hyper lets go of the socket.

use std::future::Future;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_util::task::TaskTracker;

use super::Slot;

/// A valid upgrade request, not answered yet.
pub struct WsUpgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
    slot: Option<Arc<Slot>>,
}

/// The socket after the handshake.
pub struct Upgraded {
    pub stream: TcpStream,
    /// What the client sent after its request and hyper already read: the start of its first
    /// frames.
    pub read_buf: Vec<u8>,
    /// The connection's place under the caps (`None` only for a router served by something
    /// other than [`crate::server`]): held until the session ends.
    pub slot: Option<Arc<Slot>>,
}

impl Upgraded {
    /// Copies out the few bytes hyper read ahead: its `Bytes` would keep hyper's whole read
    /// buffer (8 KiB) alive for as long as the connection lasts.
    fn from_parts(
        parts: hyper::upgrade::Parts<TokioIo<TcpStream>>,
        slot: Option<Arc<Slot>>,
    ) -> Upgraded {
        Upgraded {
            stream: parts.io.into_inner(),
            read_buf: parts.read_buf.to_vec(),
            slot,
        }
    }
}

/// Why a request is not a WebSocket upgrade.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UpgradeRejection {
    #[error("a WebSocket upgrade must be a GET request")]
    MethodNotGet,
    #[error("this is a WebSocket endpoint: send `Connection: upgrade` and `Upgrade: websocket`")]
    NotAnUpgrade,
    #[error("unsupported WebSocket version: send `Sec-WebSocket-Version: 13`")]
    Version,
    #[error("missing `Sec-WebSocket-Key` header")]
    MissingKey,
    #[error("this connection cannot be upgraded")]
    NotUpgradable,
}

impl IntoResponse for UpgradeRejection {
    fn into_response(self) -> Response {
        let status = match self {
            UpgradeRejection::MethodNotGet => StatusCode::METHOD_NOT_ALLOWED,
            UpgradeRejection::NotAnUpgrade | UpgradeRejection::NotUpgradable => {
                StatusCode::UPGRADE_REQUIRED
            }
            UpgradeRejection::Version | UpgradeRejection::MissingKey => StatusCode::BAD_REQUEST,
        };
        let mut response = (status, self.to_string()).into_response();
        if status == StatusCode::UPGRADE_REQUIRED || self == UpgradeRejection::Version {
            let h = response.headers_mut();
            h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            h.insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        response
    }
}

/// Whether a comma-separated header holds `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.as_bytes()
            .split(|b| *b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

impl<S: Send + Sync> FromRequestParts<S> for WsUpgrade {
    type Rejection = UpgradeRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if parts.method != Method::GET {
            return Err(UpgradeRejection::MethodNotGet);
        }
        let h = &parts.headers;
        if !has_token(h, header::CONNECTION, "upgrade")
            || !has_token(h, header::UPGRADE, "websocket")
        {
            return Err(UpgradeRejection::NotAnUpgrade);
        }
        if h.get(header::SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) != Some(b"13") {
            return Err(UpgradeRejection::Version);
        }
        let key = h
            .get(header::SEC_WEBSOCKET_KEY)
            .cloned()
            .ok_or(UpgradeRejection::MissingKey)?;
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or(UpgradeRejection::NotUpgradable)?;
        let slot = parts.extensions.remove::<Arc<Slot>>();
        Ok(WsUpgrade {
            key,
            on_upgrade,
            slot,
        })
    }
}

impl WsUpgrade {
    /// Answers `101 Switching Protocols` and, once hyper hands the connection over, runs
    /// `session` on it as a task of `sessions` (so that shutdown can wait for it).
    pub fn on_upgrade<F, Fut>(self, sessions: &TaskTracker, session: F) -> Response
    where
        F: FnOnce(Upgraded) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let accept = tungstenite::handshake::derive_accept_key(self.key.as_bytes());
        let on_upgrade = self.on_upgrade;
        let slot = self.slot;
        sessions.spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(u) => u,
                Err(e) => {
                    tracing::debug!(error = %e, "WebSocket upgrade did not complete");
                    return;
                }
            };
            match upgraded.downcast::<TokioIo<TcpStream>>() {
                Ok(parts) => session(Upgraded::from_parts(parts, slot)).await,
                // Only reachable if the server were given another kind of connection.
                Err(_) => tracing::error!("upgraded connection is not a TcpStream; dropped"),
            }
        });
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let h = response.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(v) = HeaderValue::from_str(&accept) {
            h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_matched_in_lists_and_case_insensitively() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(has_token(&h, header::CONNECTION, "upgrade"));
        assert!(!has_token(&h, header::CONNECTION, "close"));
        assert!(!has_token(&h, header::UPGRADE, "websocket"));
    }

    #[test]
    fn rejections_say_what_to_send() {
        let r = UpgradeRejection::NotAnUpgrade.into_response();
        assert_eq!(r.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(r.headers()[header::SEC_WEBSOCKET_VERSION], "13");
        assert_eq!(
            UpgradeRejection::MethodNotGet.into_response().status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
