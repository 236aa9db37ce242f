//! Who a request says it is: the one place that reads it.
//!
//! Every HTTP handler that needs the acting user asks for an [`Identity`]; nothing else reads
//! where it comes from. Until signed tokens arrive, the source is the `user` query parameter
//! (`/live/acme.sales.2026-Q3?user=ann`); swapping it for a verified token later touches this
//! file (and [`crate::service::access`] for what the token allows).

pub mod keys;
pub mod token;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::identity::{IdentityError, UserId};
use crate::protocol::live::{ErrorBody, ErrorResponse, ProtocolErrorCode};
use crate::service::Principal;

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

    /// The acting principal, for requests that must say who acts.
    pub fn principal(self) -> Result<Principal, IdentityError> {
        self.require().map(Principal::open)
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
