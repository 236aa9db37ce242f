//! Who a request is, and whether it may come in: the one place that reads credentials.
//!
//! | file | owns |
//! |---|---|
//! | [`keys`] | the [`Verifier`](keys::Verifier): HS256 secret, RS256/ES256 public keys (PEM or JWKS, reloaded on change), `exp`/`nbf`/`iss`/`aud` |
//! | [`token`] | the claims, role grants by room pattern, `role_in` a room, minting (`okrhub token`) |
//! | this file | the [`Caller`] extractor (token from `?token=`, `Authorization: Bearer` or the `okrhub_token` cookie; `?user=` on an open server), the `Origin` check, refusals |
//!
//! A request is refused here — 401 or 403 with the standard error body, before any upgrade
//! and before any state is read — when its token is missing or does not verify, when it is
//! for another org, or when it comes from a web page of a foreign origin. What a caller may
//! do in a room is [`crate::service::access`]'s.

pub mod keys;
pub mod token;

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::identity::UserId;
use crate::protocol::live::{ErrorBody, ErrorResponse, ProtocolErrorCode};
use crate::room_id::RoomId;
use crate::service::{Access, Principal};
use keys::Verifier;
use token::Verified;

/// The cookie the built-in pages authenticate with (HttpOnly, `SameSite=Strict`).
pub const COOKIE: &str = "okrhub_token";

/// How requests are authenticated: the verifier (none: an open server) and the origins whose
/// pages may call the server besides its own.
#[derive(Clone, Default)]
pub struct Auth {
    pub verifier: Option<Verifier>,
    /// Exact origins (`https://okr.acme.com`) allowed besides the server's own.
    pub allowed_origins: Vec<String>,
    /// When set, `/metrics` wants `Authorization: Bearer` this.
    pub metrics_token: Option<String>,
}

impl Auth {
    /// An open server: no tokens, everyone may do everything.
    pub fn open() -> Self {
        Auth::default()
    }

    pub fn is_open(&self) -> bool {
        self.verifier.is_none()
    }
}

/// The address a request's TCP connection comes from (set by the accept loop on every
/// request; absent when the router is called without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// The client's IP address, when the accept loop said it ([`ClientAddr`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts.extensions.get::<ClientAddr>().map(|a| a.0.ip()),
        ))
    }
}

/// A request refused at the edge: its status and the standard error body.
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl Refusal {
    pub fn unauthenticated(reason: &str, message: impl Into<String>) -> Self {
        Refusal {
            status: StatusCode::UNAUTHORIZED,
            body: ErrorBody::protocol(ProtocolErrorCode::Unauthenticated, message).because(reason),
        }
    }

    pub fn forbidden(reason: &str, message: impl Into<String>) -> Self {
        Refusal {
            status: StatusCode::FORBIDDEN,
            body: ErrorBody::protocol(ProtocolErrorCode::Forbidden, message).because(reason),
        }
    }
}

/// A limit of the edge ([`crate::service::admission`]): 429 with the limit as `reason`; retry
/// later.
impl From<crate::service::admission::Limited> for Refusal {
    fn from(l: crate::service::admission::Limited) -> Self {
        Refusal {
            status: StatusCode::TOO_MANY_REQUESTS,
            body: ErrorBody::protocol(ProtocolErrorCode::RateLimited, l.message).because(l.reason),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        tracing::info!(status = %self.status, reason = ?self.body.reason, message = %self.body.message, "request refused");
        let mut response = (self.status, Json(ErrorResponse { error: self.body })).into_response();
        if response.status() == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"okrhub\""),
            );
        }
        response
    }
}

/// Where a token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Query,
    Bearer,
    Cookie,
}

/// Who a request is.
#[derive(Debug, Clone)]
pub enum Caller {
    /// An open server: whoever `?user=` names, if it names anyone.
    Open(Option<UserId>),
    /// A verified token, and where it came from.
    Token(Box<Verified>, Via),
}

impl Caller {
    /// The user, when known.
    pub fn user(&self) -> Option<&UserId> {
        match self {
            Caller::Open(user) => user.as_ref(),
            Caller::Token(v, _) => Some(&v.user),
        }
    }

    /// When the credentials stop being valid (unix seconds), if they ever do.
    pub fn expires_at(&self) -> Option<u64> {
        match self {
            Caller::Open(_) => None,
            Caller::Token(v, _) => Some(v.expires_at),
        }
    }

    /// The caller's access to `room`: refused (403) for a room of another org — nothing
    /// crosses orgs.
    pub fn access(&self, room: &RoomId) -> Result<Access, Refusal> {
        let Caller::Token(v, _) = self else {
            return Ok(Access::Open);
        };
        if room.org() != v.org {
            return Err(Refusal::forbidden(
                "other_org",
                format!(
                    "room {room} belongs to org {:?}; this token is for org {:?}",
                    room.org(),
                    v.org
                ),
            ));
        }
        Ok(match v.role_in(room) {
            Some(role) => Access::Member(role),
            None => Access::Org,
        })
    }

    /// The acting principal in `room`, for requests that must say who acts.
    pub fn principal(&self, room: &RoomId) -> Result<Principal, Refusal> {
        let access = self.access(room)?;
        let user = self.user().cloned().ok_or_else(|| {
            let mut r = Refusal::unauthenticated(
                "missing_user",
                "this request must say who acts: ?user=ID (open server)",
            );
            r.body.field = Some("user".into());
            r
        })?;
        Ok(Principal { user, access })
    }
}

/// The token a request carries: `?token=`, then `Authorization: Bearer`, then the cookie.
fn presented(parts: &Parts) -> Option<(String, Via)> {
    #[derive(serde::Deserialize)]
    struct Params {
        token: Option<String>,
    }
    if let Some(t) = Query::<Params>::try_from_uri(&parts.uri)
        .ok()
        .and_then(|q| q.0.token)
    {
        return Some((t, Via::Query));
    }
    if let Some(t) = bearer(&parts.headers) {
        return Some((t.to_owned(), Via::Bearer));
    }
    cookie(&parts.headers, COOKIE).map(|t| (t, Via::Cookie))
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))?;
    Some(token.trim())
}

/// The value of cookie `name`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// `?user=` of an open server.
fn open_user(parts: &Parts) -> Result<Option<UserId>, Refusal> {
    #[derive(serde::Deserialize)]
    struct Params {
        user: Option<String>,
    }
    // Other parameters are the handlers' business; a query that does not parse names no user.
    let params = Query::<Params>::try_from_uri(&parts.uri).map(|q| q.0);
    match params.ok().and_then(|p| p.user) {
        None => Ok(None),
        Some(v) => UserId::parse(&v).map(Some).map_err(|e| {
            let mut r = Refusal::unauthenticated("invalid_user", e.to_string());
            r.body.field = Some("user".into());
            r
        }),
    }
}

impl Auth {
    /// Who the request in `parts` is; refused when a token is needed and missing or bad.
    pub fn caller(&self, parts: &Parts) -> Result<Caller, Refusal> {
        let Some(verifier) = &self.verifier else {
            return open_user(parts).map(Caller::Open);
        };
        let Some((token, via)) = presented(parts) else {
            return Err(Refusal::unauthenticated(
                "missing_token",
                format!(
                    "a token is required: ?token=, Authorization: Bearer, or the {COOKIE} cookie"
                ),
            ));
        };
        match verifier.verify(&token) {
            Ok(v) => Ok(Caller::Token(Box::new(v), via)),
            Err(e) => Err(Refusal::unauthenticated(e.code(), e.to_string())),
        }
    }

    /// Whether a browser page of the request's `Origin` may make it: no `Origin` (not a
    /// browser, or a same-origin GET), the server's own origin (its `Host`), or one of the
    /// allowed origins.
    pub fn check_origin(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Ok(());
        };
        let origin = origin.to_str().unwrap_or("");
        let host = (headers.get(header::HOST))
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        let same = authority.is_some_and(|a| !host.is_empty() && a.eq_ignore_ascii_case(host));
        if same || self.allowed_origins.iter().any(|o| o == origin) {
            return Ok(());
        }
        Err(Refusal::forbidden(
            "origin",
            format!("origin {origin:?} is not allowed (--allowed-origins)"),
        ))
    }
}

impl<S> FromRequestParts<S> for Caller
where
    Arc<Auth>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Arc::<Auth>::from_ref(state).caller(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, Request};

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut req = Request::builder().uri(uri);
        for (k, v) in headers {
            req = req.header(*k, HeaderValue::from_str(v).unwrap());
        }
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_token_is_taken_from_the_query_the_header_or_the_cookie() {
        let p = parts("/sync/a.b.c?token=q", &[("authorization", "Bearer h")]);
        assert_eq!(presented(&p), Some(("q".into(), Via::Query)));
        let p = parts("/x", &[("authorization", "Bearer h")]);
        assert_eq!(presented(&p), Some(("h".into(), Via::Bearer)));
        let p = parts("/x", &[("cookie", "a=1; okrhub_token=c; b=2")]);
        assert_eq!(presented(&p), Some(("c".into(), Via::Cookie)));
        assert_eq!(presented(&parts("/x", &[])), None);
    }

    #[test]
    fn origins_are_checked_against_the_host_and_the_list() {
        let auth = Auth {
            allowed_origins: vec!["https://okr.acme.com".into()],
            ..Auth::default()
        };
        let h = |origin: &str| {
            let p = parts("/x", &[("host", "hub.acme.com:4680"), ("origin", origin)]);
            auth.check_origin(&p.headers).is_ok()
        };
        assert!(h("http://hub.acme.com:4680"), "same origin");
        assert!(h("https://okr.acme.com"), "allowed");
        assert!(!h("https://evil.example"));
        assert!(!h("null"));
        assert!(
            auth.check_origin(&parts("/x", &[]).headers).is_ok(),
            "no Origin"
        );
    }
}
