//! The REST API under `/api/rooms/{room}`: the same reads and commands as `/live`, for callers
//! that do not keep a socket (`proto/PROTOCOL.md`).
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/api/rooms?org=&team=&cycle=` | [`RoomList`]: the rooms the caller may read, with its role in each |
//! | GET | `/api/rooms/{room}` | [`RoomView`](crate::protocol::live::RoomView): the typed OKR set (what the caller may read) and its sequence number |
//! | POST | `/api/rooms/{room}/commands` | [`CommandAccepted`] once durable, or an error |
//! | GET | `/api/rooms/{room}/key_results/{kr}/history` | [`KrHistory`]: its check-ins over time |
//! | GET / POST / DELETE | `/api/session[?room=]` | who the caller is (and its role in `room`); set / clear the `okrhub_token` cookie |
//! | GET | `/login?token=…[&next=/path]` | sets the cookie from the token and redirects to `next` (a path here) or `/` |
//!
//! Every error is one JSON shape, [`ErrorResponse`], with a status that fits: 400 for a body or
//! room id that cannot be read, 401 without a valid token (or, on an open server, a user),
//! 403 for what the principal may not do (or a foreign `Origin`), 404 for what does not exist
//! (or may not be read), 409 for a conflict with the set's state (archived, alignment cycle),
//! 415 for a command that is not `application/json`, 422 for invalid values, 503 when the
//! store cannot confirm the write. Commands go through the command service
//! ([`crate::service::commands`]), exactly as on `/live`.
//!
//! Cross-site requests: a command must be `Content-Type: application/json` (which a foreign
//! page cannot send without a CORS preflight this server never grants) and come from no page,
//! the server's own or an allowed origin; one authenticated by the cookie must carry an
//! `Origin` (every browser sends one on a POST), and the cookie itself is `SameSite=Strict`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::auth::{Auth, Caller, ClientIp, Refusal, Via, COOKIE};
use crate::hub::Hub;
use crate::okr::{Command, ErrorCode};
use crate::protocol::live::{
    CommandAccepted, ErrorBody, ErrorResponse, KrHistory, ProtocolErrorCode, RoomEntry, RoomList,
    WireErrorCode,
};
use crate::room_id::RoomId;
use crate::service;
use crate::service::admission::Admission;
use crate::ws::Outbox;

/// Largest command body accepted.
pub const MAX_BODY: usize = 256 * 1024;

/// An error answer: a status and the body every error shares.
#[derive(Debug)]
pub struct ApiError(pub(crate) StatusCode, pub(crate) ErrorBody);

impl ApiError {
    pub(crate) fn protocol(
        status: StatusCode,
        code: ProtocolErrorCode,
        message: impl Into<String>,
    ) -> Self {
        ApiError(status, ErrorBody::protocol(code, message))
    }
}

impl From<ErrorBody> for ApiError {
    fn from(body: ErrorBody) -> Self {
        let status = match body.code {
            WireErrorCode::Command(ErrorCode::NotFound) => StatusCode::NOT_FOUND,
            WireErrorCode::Command(
                ErrorCode::Archived
                | ErrorCode::AlignmentCycle
                | ErrorCode::CycleClosed
                | ErrorCode::CycleOpen
                | ErrorCode::NotEmpty,
            ) => StatusCode::CONFLICT,
            WireErrorCode::Command(_) => StatusCode::UNPROCESSABLE_ENTITY,
            WireErrorCode::Protocol(p) => match p {
                ProtocolErrorCode::BadRequest | ProtocolErrorCode::InvalidRoom => {
                    StatusCode::BAD_REQUEST
                }
                ProtocolErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
                ProtocolErrorCode::Forbidden => StatusCode::FORBIDDEN,
                ProtocolErrorCode::NotFound => StatusCode::NOT_FOUND,
                ProtocolErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                ProtocolErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
                ProtocolErrorCode::DocTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            },
        };
        ApiError(status, body)
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        ApiError(r.status, r.body)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorResponse { error: self.1 })).into_response()
    }
}

pub(crate) fn room_id(raw: &str) -> Result<RoomId, ApiError> {
    RoomId::parse(raw).map_err(|e| {
        ApiError::protocol(
            StatusCode::BAD_REQUEST,
            ProtocolErrorCode::InvalidRoom,
            e.to_string(),
        )
    })
}

/// Charges loading room `id` (when it is not loaded yet) to the caller: 429 over the limit.
pub(crate) fn enter(
    admission: &Admission,
    hub: &Hub<Outbox>,
    id: &RoomId,
    ip: ClientIp,
    caller: &Caller,
) -> Result<(), ApiError> {
    admission
        .enter(hub, id, ip.0, caller.user())
        .map_err(|l| Refusal::from(l).into())
}

/// A room that could not be loaded: 503 `unavailable`, with `reason: store_corrupt` when its
/// stored data failed its integrity check.
pub(crate) fn unavailable(e: crate::hub::JoinError) -> ApiError {
    tracing::error!(error = %e, "room could not be loaded");
    let failed = if e.is_corrupt() {
        service::commands::CommandFailed::Corrupt
    } else {
        service::commands::CommandFailed::LoadFailed
    };
    ApiError::from(ErrorBody::from(failed))
}

/// `GET /api/rooms/{room}`: a `RoomView` of what the caller may read (the shared encoding
/// when that is everything).
pub async fn get_room(
    Path(room): Path<String>,
    caller: Caller,
    ip: ClientIp,
    State(hub): State<Hub<Outbox>>,
    State(admission): State<Arc<Admission>>,
) -> Result<Response, ApiError> {
    let id = room_id(&room)?;
    let access = caller.access(&id)?;
    enter(&admission, &hub, &id, ip, &caller)?;
    let room = hub.get_or_load(&id).await.map_err(unavailable)?;
    let body = room.view_json_for(&access.reader(caller.user()));
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The cross-site checks of a command: [`cross_site_as`] JSON.
pub(crate) fn cross_site(
    auth: &Auth,
    headers: &HeaderMap,
    caller: &Caller,
) -> Result<(), ApiError> {
    cross_site_as(
        auth,
        headers,
        caller,
        &["application/json"],
        "a command is sent as Content-Type: application/json",
    )
    .map(|_| ())
}

/// The cross-site checks of a state-changing request: its `Origin`; its content type, one of
/// `accepted` (types a foreign page cannot send without a CORS preflight, which this server never
/// grants — JSON, CSV — else 415 with `refusal` as the message), returned; and — when the cookie
/// authenticates it — that it says where it comes from.
pub(crate) fn cross_site_as(
    auth: &Auth,
    headers: &HeaderMap,
    caller: &Caller,
    accepted: &[&'static str],
    refusal: &str,
) -> Result<&'static str, ApiError> {
    auth.check_origin(headers)?;
    let given = (headers.get(header::CONTENT_TYPE))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .unwrap_or_default();
    let Some(kind) = accepted.iter().find(|t| given.eq_ignore_ascii_case(t)) else {
        let mut e =
            ErrorBody::protocol(ProtocolErrorCode::BadRequest, refusal).because("content_type");
        e.field = Some("content-type".into());
        return Err(ApiError(StatusCode::UNSUPPORTED_MEDIA_TYPE, e));
    };
    if matches!(caller, Caller::Token(_, Via::Cookie)) && headers.get(header::ORIGIN).is_none() {
        return Err(Refusal::forbidden(
            "origin",
            "a request authenticated by the cookie must carry an Origin",
        )
        .into());
    }
    Ok(kind)
}

/// `POST /api/rooms/{room}/commands`: a command as on `/live`, without the `id`.
#[allow(clippy::too_many_arguments)] // axum extractors, one each
pub async fn post_command(
    Path(room): Path<String>,
    headers: HeaderMap,
    caller: Caller,
    ip: ClientIp,
    State(hub): State<Hub<Outbox>>,
    State(auth): State<Arc<Auth>>,
    State(admission): State<Arc<Admission>>,
    body: Bytes,
) -> Result<Json<CommandAccepted>, ApiError> {
    cross_site(&auth, &headers, &caller)?;
    let id = room_id(&room)?;
    let principal = caller.principal(&id)?;
    enter(&admission, &hub, &id, ip, &caller)?;
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

/// `GET /api/rooms/{room}/key_results/{kr}/history`: 404 as well for a KR of an objective the
/// caller may not read.
pub async fn kr_history(
    Path((room, kr)): Path<(String, String)>,
    caller: Caller,
    ip: ClientIp,
    State(hub): State<Hub<Outbox>>,
    State(admission): State<Arc<Admission>>,
) -> Result<Json<KrHistory>, ApiError> {
    let id = room_id(&room)?;
    let reader = caller.access(&id)?.reader(caller.user());
    enter(&admission, &hub, &id, ip, &caller)?;
    let room = hub.get_or_load(&id).await.map_err(unavailable)?;
    let points = room.kr_history_for(&kr, &reader).ok_or_else(|| {
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

/// Who the caller is: `GET /api/session`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Session {
    /// With `?room=`: the caller's role in that room (`null`: none, it reads what the org
    /// may read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<crate::identity::Role>,
    /// With `?room=`: whether the caller may change the room (an editor or admin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub may_write: Option<bool>,
    /// No authentication configured: everyone may do everything.
    pub open: bool,
    pub user: Option<String>,
    pub name: Option<String>,
    pub org: Option<String>,
    /// Unix seconds.
    pub expires_at: Option<u64>,
}

fn session_of(caller: &Caller) -> Session {
    match caller {
        Caller::Open(user) => Session {
            room: None,
            role: None,
            may_write: None,
            open: true,
            user: user.as_ref().map(|u| u.to_string()),
            name: None,
            org: None,
            expires_at: None,
        },
        Caller::Token(v, _) => Session {
            room: None,
            role: None,
            may_write: None,
            open: false,
            user: Some(v.user.to_string()),
            name: v.name.clone(),
            org: Some(v.org.clone()),
            expires_at: Some(v.expires_at),
        },
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct SessionQuery {
    room: Option<String>,
}

/// `GET /api/session[?room=]`: who the request's credentials say it is, and its role in
/// `room` (403 for a room of another org).
pub async fn session_get(
    caller: Caller,
    Query(q): Query<SessionQuery>,
) -> Result<Json<Session>, ApiError> {
    let mut session = session_of(&caller);
    if let Some(room) = q.room {
        let id = room_id(&room)?;
        let role = caller.access(&id)?.role();
        session.room = Some(id.to_string());
        session.role = role;
        session.may_write = Some(role.is_some_and(|r| r != crate::identity::Role::Viewer));
    }
    Ok(Json(session))
}

/// `GET /login?token=…[&next=/path]`: the sign-in step of the built-in pages until an identity
/// provider is wired. The token is verified like any other (401 with the reason when it is
/// not); the `okrhub_token` cookie is set from it and the browser is sent on to `next` — a path
/// on this server, anything else means `/` — so the token leaves the address bar at once. On an
/// open server there is nothing to set: it only redirects.
pub async fn login(
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Result<Response, ApiError> {
    let next = q
        .next
        .as_deref()
        .filter(|n| is_local_path(n))
        .unwrap_or("/");
    let mut response = (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, next),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
    )
        .into_response();
    match (&caller, q.token) {
        (Caller::Open(_), _) => {}
        (Caller::Token(v, Via::Query), Some(token)) => {
            let cookie = session_cookie(&token, v.expires_at, over_https(&headers));
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
        }
        _ => {
            return Err(Refusal::unauthenticated(
                "missing_token",
                "sign in with /login?token=TOKEN",
            )
            .into())
        }
    }
    Ok(response)
}

#[derive(Debug, serde::Deserialize)]
pub struct LoginQuery {
    token: Option<String>,
    next: Option<String>,
}

/// A path on this server: `/…`, not `//host` or `/\host` (which browsers read as another
/// site), no scheme, no control characters.
fn is_local_path(p: &str) -> bool {
    p.starts_with('/')
        && !p.starts_with("//")
        && !p.starts_with("/\\")
        && p.len() <= 2048
        && !p.chars().any(|c| c.is_control())
}

/// The cookie the pages authenticate with, valid as long as the token; `Secure` when the
/// browser reached us over HTTPS (so it is never sent back over plain HTTP).
fn session_cookie(token: &str, expires_at: u64, secure: bool) -> String {
    let now = (crate::clock::now_millis() / 1000).max(0) as u64;
    let max_age = expires_at.saturating_sub(now);
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// Whether the request came over HTTPS: okrhub speaks plain HTTP, so only a TLS-terminating
/// proxy's `X-Forwarded-Proto: https` (or `Forwarded: proto=https`) says so. A client could send
/// the header itself, but it can only make its own cookie stricter.
fn over_https(headers: &HeaderMap) -> bool {
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.to_ascii_lowercase())
    };
    value("x-forwarded-proto")
        .is_some_and(|v| v.split(',').next().is_some_and(|p| p.trim() == "https"))
        || value("forwarded").is_some_and(|v| {
            v.split(',').next().is_some_and(|first| {
                first
                    .split(';')
                    .any(|pair| pair.trim().trim_matches('"') == "proto=https")
            })
        })
}

/// Filters of `GET /api/rooms`: each part of the room id, matched exactly.
#[derive(Debug, Default, serde::Deserialize)]
pub struct RoomFilter {
    pub(crate) org: Option<String>,
    pub(crate) team: Option<String>,
    pub(crate) cycle: Option<String>,
}

/// The most rooms one answer lists (`truncated` says when there were more).
pub const ROOM_LIST_MAX: usize = 2000;

/// `GET /api/rooms?org=&team=&cycle=`: every stored or loaded room the caller may read —
/// its org's rooms, but another user's personal room only for an admin — newest cycle first.
/// A token reads its own org only (another `org=` lists nothing).
pub async fn list_rooms(
    caller: Caller,
    Query(filter): Query<RoomFilter>,
    State(hub): State<Hub<Outbox>>,
) -> Result<Json<RoomList>, ApiError> {
    let mut ids = hub.store().rooms().await.map_err(|e| {
        tracing::error!(error = %e, "rooms could not be listed");
        ApiError::from(ErrorBody::from(
            service::commands::CommandFailed::LoadFailed,
        ))
    })?;
    ids.extend(hub.loaded().iter().map(|r| r.id().clone()));
    ids.sort_by(|a, b| (b.cycle(), a.org(), a.team()).cmp(&(a.cycle(), b.org(), b.team())));
    ids.dedup();
    let wanted = |part: &str, want: &Option<String>| want.as_deref().is_none_or(|w| w == part);
    let mut rooms = Vec::new();
    let mut truncated = false;
    for id in ids {
        if !(wanted(id.org(), &filter.org)
            && wanted(id.team(), &filter.team)
            && wanted(id.cycle(), &filter.cycle))
        {
            continue;
        }
        let Ok(access) = caller.access(&id) else {
            continue;
        };
        if id.is_personal() && !access.may_sync(&id) {
            continue;
        }
        if rooms.len() == ROOM_LIST_MAX {
            truncated = true;
            break;
        }
        rooms.push(RoomEntry {
            room: id.to_string(),
            org: id.org().to_owned(),
            team: id.team().to_owned(),
            cycle: id.cycle().to_owned(),
            personal: id.is_personal(),
            role: access.role(),
        });
    }
    Ok(Json(RoomList { rooms, truncated }))
}

/// `POST /api/session` with `Authorization: Bearer TOKEN`: sets the `okrhub_token` cookie
/// (HttpOnly, `SameSite=Strict`, until the token expires) for the built-in pages.
pub async fn session_post(
    headers: HeaderMap,
    caller: Caller,
    State(auth): State<Arc<Auth>>,
) -> Result<Response, ApiError> {
    auth.check_origin(&headers)?;
    let Caller::Token(v, Via::Bearer) = &caller else {
        return Err(Refusal::unauthenticated(
            "missing_token",
            "send the token as Authorization: Bearer to set the cookie",
        )
        .into());
    };
    let token = crate::auth::bearer(&headers).unwrap_or_default();
    let cookie = session_cookie(token, v.expires_at, over_https(&headers));
    let mut response = Json(session_of(&caller)).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// `DELETE /api/session`: clears the cookie.
pub async fn session_delete() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("okrhub_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}
