//! The REST API under `/api/rooms/{room}`: the same reads and commands as `/live`, for callers
//! that do not keep a socket (`proto/PROTOCOL.md`).
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/api/rooms/{room}` | [`RoomView`]: the typed OKR set and its sequence number |
//! | POST | `/api/rooms/{room}/commands?user=ID` | [`CommandAccepted`] once durable, or an error |
//! | GET | `/api/rooms/{room}/key_results/{kr}/history` | [`KrHistory`]: its check-ins over time |
//!
//! Every error is one JSON shape, [`ErrorResponse`], with a status that fits: 400 for a body or
//! room id that cannot be read, 401 without a user, 404 for what does not exist, 409 for a
//! conflict with the set's state (archived, alignment cycle), 422 for invalid values, 503 when
//! the store cannot confirm the write.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::http::AppState;
use crate::identity::Identity;
use crate::live::connection::apply;
use crate::live::messages::{
    CommandAccepted, ErrorBody, ErrorResponse, KrHistory, ProtocolErrorCode, RoomView,
    WireErrorCode,
};
use crate::okr::{self, Command, ErrorCode};
use crate::room_id::RoomId;

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

/// `GET /api/rooms/{room}`.
pub async fn get_room(
    Path(room): Path<String>,
    State(state): State<AppState>,
) -> Result<Json<RoomView>, ApiError> {
    let id = room_id(&room)?;
    let room = state.hub.get_or_load(&id).await.map_err(unavailable)?;
    let (seq, okr) = room.view();
    Ok(Json(RoomView {
        room: id.to_string(),
        seq,
        okr,
    }))
}

/// `POST /api/rooms/{room}/commands`: a command as on `/live`, without the `id`.
pub async fn post_command(
    Path(room): Path<String>,
    identity: Identity,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<CommandAccepted>, ApiError> {
    let id = room_id(&room)?;
    let user = identity.require().map_err(|e| {
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
    // A room that unloads between the load and the command is loaded again.
    loop {
        let room = state.hub.get_or_load(&id).await.map_err(unavailable)?;
        match apply(&room, &command, &user).await {
            Ok((seq, created_id)) => return Ok(Json(CommandAccepted { seq, created_id })),
            Err(e) if e.code == WireErrorCode::Protocol(ProtocolErrorCode::Unavailable) => {
                if room.is_closing() {
                    room.unloaded().await;
                    continue;
                }
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// `GET /api/rooms/{room}/key_results/{kr}/history`.
pub async fn kr_history(
    Path((room, kr)): Path<(String, String)>,
    State(state): State<AppState>,
) -> Result<Json<KrHistory>, ApiError> {
    let id = room_id(&room)?;
    let room = state.hub.get_or_load(&id).await.map_err(unavailable)?;
    let (_, set) = room.view();
    let points = okr::kr_history(&set, &kr).ok_or_else(|| {
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
