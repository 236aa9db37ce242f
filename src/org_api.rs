//! What the org-wide REST routes share (`/api/orgs/{org}/…`: robots, templates): who is the
//! org's admin, what an org name is, and how they answer.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::api::ApiError;
use crate::auth::{Auth, Caller, Refusal};
use crate::identity::Role;
use crate::protocol::live::{ErrorBody, ErrorResponse, ProtocolErrorCode};

/// An error answer with a protocol code.
pub fn error(status: StatusCode, code: ProtocolErrorCode, message: impl Into<String>) -> Response {
    let error = ErrorBody::protocol(code, message);
    (status, Json(ErrorResponse { error })).into_response()
}

/// `503`: the org settings could not be read or written.
pub fn store_failed(e: crate::store::StoreError) -> Response {
    tracing::error!(error = %e, "org settings: store failed");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        ProtocolErrorCode::Unavailable,
        "the store failed; retry",
    )
}

/// Whether `caller` is `org`'s admin (a grant of `admin` on `{org}.*.*`); for a write, also
/// that no foreign page sent it. `what` names what is refused (`"the robots"`).
pub fn admin_of(
    caller: Result<Caller, Refusal>,
    auth: &Auth,
    headers: &HeaderMap,
    org: &str,
    write: bool,
    what: &str,
) -> Result<(), Box<Response>> {
    let refuse = |r: Refusal| Box::new(ApiError::from(r).into_response());
    let caller = caller.map_err(refuse)?;
    if write {
        auth.check_origin(headers).map_err(refuse)?;
    }
    let Caller::Token(v, _) = &caller else {
        return Ok(()); // an open server: anyone may do anything
    };
    let whole_org = format!("{org}.*.*");
    let admin = v.org == org
        && (v.grants.iter()).any(|g| g.role == Role::Admin && g.pattern.to_string() == whole_org);
    if admin {
        return Ok(());
    }
    Err(refuse(Refusal::forbidden(
        "role",
        format!("{what} of org {org:?} are configured by its admins ({whole_org}: admin)"),
    )))
}

/// Whether `caller` belongs to `org` (its token's org; on an open server, anyone).
pub fn member_of(caller: Result<Caller, Refusal>, org: &str) -> Result<(), Box<Response>> {
    let refuse = |r: Refusal| Box::new(ApiError::from(r).into_response());
    match caller.map_err(refuse)? {
        Caller::Token(v, _) if v.org != org => Err(refuse(Refusal::forbidden(
            "org",
            format!("only org {org:?}'s own members read it"),
        ))),
        _ => Ok(()),
    }
}

/// An org name: 1 to 64 of `[A-Za-z0-9_-]`; `400` otherwise.
pub fn valid_org(org: &str) -> Result<(), Box<Response>> {
    if !org.is_empty()
        && org.len() <= 64
        && org
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Ok(());
    }
    Err(Box::new(error(
        StatusCode::BAD_REQUEST,
        ProtocolErrorCode::BadRequest,
        "an org is 1 to 64 of [A-Za-z0-9_-]",
    )))
}

/// A JSON body (`415` otherwise); `what` names it (`"the robot"`).
pub fn json_body(headers: &HeaderMap, what: &str) -> Result<(), Box<Response>> {
    let ct = (headers.get(header::CONTENT_TYPE))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("application/json") {
        return Ok(());
    }
    Err(Box::new(error(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ProtocolErrorCode::BadRequest,
        format!("send {what} as application/json"),
    )))
}

/// Longest name of a thing an org keeps (a robot, a template).
pub const MAX_NAME: usize = crate::notify::target::MAX_NAME;

/// A name of a thing an org keeps: 1 to [`MAX_NAME`] of `[A-Za-z0-9_-]`, as a robot's.
pub fn is_name(name: &str) -> bool {
    crate::notify::target::valid_name(name)
}

/// [`is_name`], or `400` saying what `what` (`"a robot name"`) is.
pub fn valid_name(name: &str, what: &str) -> Result<(), Box<Response>> {
    if is_name(name) {
        return Ok(());
    }
    Err(Box::new(error(
        StatusCode::BAD_REQUEST,
        ProtocolErrorCode::BadRequest,
        format!("{what} is 1 to {MAX_NAME} of [A-Za-z0-9_-]"),
    )))
}
