//! What the org-wide REST routes share (`/api/orgs/{org}/…`: robots, templates): who is the
//! org's admin, what an org name is, and how they answer.

use axum::http::{HeaderMap, StatusCode};
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

/// What a request does to an org's things: reads, deletes, or puts a JSON body (named for the
/// 415, e.g. `"the robot"`).
#[derive(Debug, Clone, Copy)]
pub enum OrgAccess<'a> {
    Read,
    Delete,
    Put(&'a str),
}

/// Whether `caller` may do `access` as `org`'s admin (a grant of `admin` on `{org}.*.*`), `org`
/// being a valid org name; a change must come from no foreign page, and a put must pass the
/// cross-site checks of a JSON body ([`crate::api::cross_site_as`]). `what` names what is
/// refused (`"the robots"`).
pub fn admin_of(
    caller: Result<Caller, Refusal>,
    auth: &Auth,
    headers: &HeaderMap,
    org: &str,
    access: OrgAccess<'_>,
    what: &str,
) -> Result<(), Box<Response>> {
    valid_org(org)?;
    let refuse = |r: Refusal| Box::new(ApiError::from(r).into_response());
    let caller = caller.map_err(refuse)?;
    if !matches!(access, OrgAccess::Read) {
        auth.check_origin(headers).map_err(refuse)?;
    }
    if let Caller::Token(v, _) = &caller {
        let whole_org = format!("{org}.*.*");
        let admin = v.org == org
            && (v.grants.iter())
                .any(|g| g.role == Role::Admin && g.pattern.to_string() == whole_org);
        if !admin {
            return Err(refuse(Refusal::forbidden(
                "role",
                format!("{what} of org {org:?} are configured by its admins ({whole_org}: admin)"),
            )));
        }
    } // an open server: anyone may do anything
    if let OrgAccess::Put(body) = access {
        crate::api::cross_site_as(
            auth,
            headers,
            &caller,
            &["application/json"],
            &format!("send {body} as application/json"),
        )
        .map_err(|e| Box::new(e.into_response()))?;
    }
    Ok(())
}

/// Whether `caller` belongs to `org`, a valid org name (its token's org; on an open server,
/// anyone).
pub fn member_of(caller: Result<Caller, Refusal>, org: &str) -> Result<(), Box<Response>> {
    valid_org(org)?;
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
