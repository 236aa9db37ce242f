//! Who is acting.
//!
//! Every handler that needs the acting user asks for an [`Identity`]; nothing else reads where
//! it comes from. Until signed tokens arrive, the source is the `user` query parameter
//! (`/live/acme.sales.2026-Q3?user=ann`); swapping it for a verified token later touches this
//! file only.
//!
//! A user id is 1 to 64 characters: letters, digits and `.` `_` `-` `@`. It is what
//! check-ins, comments, mentions and events carry as `author`, `by`, `user`.

use std::fmt;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::live::messages::{ErrorBody, ErrorResponse, ProtocolErrorCode};

/// Longest user id accepted.
pub const MAX_USER_LEN: usize = 64;

/// A validated user id, cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(Arc<str>);

impl UserId {
    pub fn parse(s: &str) -> Result<Self, IdentityError> {
        let ok_char = |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
        if s.is_empty() || s.chars().count() > MAX_USER_LEN || !s.chars().all(ok_char) {
            return Err(IdentityError::InvalidUser(s.chars().take(80).collect()));
        }
        Ok(UserId(s.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("invalid user id {0:?}: 1 to 64 letters, digits, '.', '_', '-' or '@'")]
    InvalidUser(String),
    #[error("this request changes the OKR set: say who you are with ?user=ID")]
    Missing,
}

/// A missing or invalid user: 401 with the REST error body (`unauthenticated`, field `user`),
/// like every other error of the API.
impl IntoResponse for IdentityError {
    fn into_response(self) -> Response {
        let mut error = ErrorBody::protocol(ProtocolErrorCode::Unauthenticated, self.to_string());
        error.field = Some("user".into());
        (StatusCode::UNAUTHORIZED, Json(ErrorResponse { error })).into_response()
    }
}

/// The acting user, if the request says who it is.
#[derive(Debug, Clone, Default)]
pub struct Identity(pub Option<UserId>);

impl Identity {
    /// The user, or [`IdentityError::Missing`] for requests that must say who acts.
    pub fn require(self) -> Result<UserId, IdentityError> {
        self.0.ok_or(IdentityError::Missing)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Identity {
    type Rejection = IdentityError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        #[derive(serde::Deserialize)]
        struct Params {
            user: Option<String>,
        }
        // Other parameters are the handlers' business; a query that does not parse names no user.
        let params = Query::<Params>::try_from_uri(&parts.uri).map(|q| q.0);
        match params.ok().and_then(|p| p.user) {
            None => Ok(Identity(None)),
            Some(v) => UserId::parse(&v).map(|u| Identity(Some(u))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_checked() {
        assert!(UserId::parse("ann").is_ok());
        assert!(UserId::parse("li.wei@acme-cn").is_ok());
        assert!(UserId::parse("王芳").is_ok());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("a b").is_err());
        assert!(UserId::parse(&"x".repeat(65)).is_err());
    }
}
