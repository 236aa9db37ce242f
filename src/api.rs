//! The REST API under `/api/rooms/{room}`: the same reads and commands as `/live`, for callers
//! that do not keep a socket (`proto/PROTOCOL.md`).
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/api/rooms/{room}` | [`RoomView`](crate::protocol::live::RoomView): the typed OKR set and its sequence number |
//! | POST | `/api/rooms/{room}/commands?user=ID` | [`CommandAccepted`] once durable, or an error |
//! | GET | `/api/rooms/{room}/key_results/{kr}/history` | [`KrHistory`]: its check-ins over time |
//!
//! Every error is one JSON shape, [`ErrorResponse`], with a status that fits: 400 for a body or
//! room id that cannot be read, 401 without a user, 404 for what does not exist, 409 for a
//! conflict with the set's state (archived, alignment cycle), 422 for invalid values, 403 for
//! what the principal may not do, 503 when the store cannot confirm the write. Commands go
//! through the command service ([`crate::service::commands`]), exactly as on `/live`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::auth::Identity;
use crate::hub::Hub;
use crate::okr::{Command, ErrorCode};
use crate::protocol::live::{
    CommandAccepted, ErrorBody, ErrorResponse, KrHistory, ProtocolErrorCode, WireErrorCode,
};
use crate::room_id::RoomId;
use crate::service;
use crate::ws::Outbox;

/// Largest command body accepted.
pub const MAX_BODY: usize = 256 * 1024;

/// An error answer: a status and the body every error shares.
#[derive(Debug)]
pub struct ApiError(StatusCode, ErrorBody);

impl ApiError {
    fn protocol(status: StatusCode, code: ProtocolErrorCode, message: impl Into<String>) -> Self {
        ApiError(status, ErrorBody::protocol(code, message))
    }
}

impl From<ErrorBody> for ApiError {
    fn from(body: ErrorBody) -> Self {
        let status = match body.code {
            WireErrorCode::Command(ErrorCode::NotFound) => StatusCode::NOT_FOUND,
            WireErrorCode::Command(ErrorCode::Archived | ErrorCode::AlignmentCycle) => {
                StatusCode::CONFLICT
            }
            WireErrorCode::Command(_) => StatusCode::UNPROCESSABLE_ENTITY,
            WireErrorCode::Protocol(p) => match p {
                ProtocolErrorCode::BadRequest | ProtocolErrorCode::InvalidRoom => {
                    StatusCode::BAD_REQUEST
                }
                ProtocolErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
                ProtocolErrorCode::Forbidden => StatusCode::FORBIDDEN,
                ProtocolErrorCode::NotFound => StatusCode::NOT_FOUND,
                ProtocolErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            },
        };
        ApiError(status, body)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorResponse { error: self.1 })).into_response()
    }
}

fn room_id(raw: &str) -> Result<RoomId, ApiError> {
    RoomId::parse(raw).map_err(|e| {
        ApiError::protocol(
            StatusCode::BAD_REQUEST,
            ProtocolErrorCode::InvalidRoom,
            e.to_string(),
        )
    })
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "room could not be loaded");
    ApiError::protocol(
        StatusCode::SERVICE_UNAVAILABLE,
        ProtocolErrorCode::Unavailable,
        "the room could not be loaded; retry later",
    )
}

/// `GET /api/rooms/{room}`: a `RoomView`, from the set's JSON encoded once per change.
pub async fn get_room(
    Path(room): Path<String>,
    State(hub): State<Hub<Outbox>>,
) -> Result<Response, ApiError> {
    let id = room_id(&room)?;
    let room = hub.get_or_load(&id).await.map_err(unavailable)?;
    let body = room.view_json();
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `POST /api/rooms/{room}/commands`: a command as on `/live`, without the `id`.
pub async fn post_command(
    Path(room): Path<String>,
    identity: Identity,
    State(hub): State<Hub<Outbox>>,
    body: Bytes,
) -> Result<Json<CommandAccepted>, ApiError> {
    let id = room_id(&room)?;
    let principal = identity.principal().map_err(|e| {
        let mut error = ErrorBody::protocol(ProtocolErrorCode::Unauthenticated, e.to_string());
        error.field = Some("user".into());
        ApiError(StatusCode::UNAUTHORIZED, error)
    })?;
    let command: Command = serde_json::from_slice(&body).map_err(|e| {
        ApiError::protocol(
            StatusCode::BAD_REQUEST,
            ProtocolErrorCode::BadRequest,
            format!("not a command: {e}"),
        )
    })?;
    let accepted = service::apply(&hub, &id, &principal, &command)
        .await
        .map_err(|e| ApiError::from(ErrorBody::from(e)))?;
    Ok(Json(CommandAccepted {
        seq: accepted.seq,
        created_id: accepted.created_id,
    }))
}

/// `GET /api/rooms/{room}/key_results/{kr}/history`.
pub async fn kr_history(
    Path((room, kr)): Path<(String, String)>,
    State(hub): State<Hub<Outbox>>,
) -> Result<Json<KrHistory>, ApiError> {
    let id = room_id(&room)?;
    let room = hub.get_or_load(&id).await.map_err(unavailable)?;
    let points = room.kr_history(&kr).ok_or_else(|| {
        ApiError::protocol(
            StatusCode::NOT_FOUND,
            ProtocolErrorCode::NotFound,
            format!("no key result {kr:?} in room {id}"),
        )
    })?;
    Ok(Json(KrHistory {
        room: id.to_string(),
        key_result: kr,
        points,
    }))
}
