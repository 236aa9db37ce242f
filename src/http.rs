//! The HTTP surface: the `/sync/{room}` (Yjs) and `/live/{room}` (JSON) WebSocket upgrades,
//! the REST API under `/api/rooms/` ([`crate::api`]), `/healthz`, `/readyz`, `/metrics`, and
//! the built-in dashboard on `/` and `/web/` ([`crate::web`]).
//!
//! `/healthz` is liveness: the process answers. `/readyz` is readiness: 200 `ready` when the
//! store takes writes, 503 with the reason (`not ready: store failing: …`, `not ready: persist
//! buffer over half full: …`) while it does not — a load balancer then sends new sessions
//! elsewhere while the rooms already here keep being served. Rooms refused because their
//! stored data is corrupt are reported in the body (`ready (STORE CORRUPT: …)`) but leave the
//! node ready (see [`readyz`]).

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRef, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use serde::Deserialize;

use crate::auth::{Auth, Caller, ClientIp, Refusal};
use crate::hub::Hub;
use crate::protocol::CloseReason;
use crate::room_id::RoomId;
use crate::service::admission::{Admission, ConnectionPermit};
use crate::ws::{Outbox, WsUpgrade};
use crate::{api, live, review_api, robots_api, sync, transfer_api, web};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub hub: Hub<Outbox>,
    /// Every WebSocket session runs on this tracker, so shutdown can wait for them (axum's
    /// graceful shutdown does not see upgraded connections).
    pub sessions: TaskTracker,
    pub shutdown: CancellationToken,
    /// How requests are authenticated ([`crate::auth`]).
    pub auth: Arc<Auth>,
    /// How much one client may take ([`crate::service::admission`]).
    pub admission: Arc<Admission>,
}

/// The REST handlers need only the hub.
impl FromRef<AppState> for Hub<Outbox> {
    fn from_ref(state: &AppState) -> Self {
        state.hub.clone()
    }
}

impl FromRef<AppState> for Arc<Admission> {
    fn from_ref(state: &AppState) -> Self {
        state.admission.clone()
    }
}

impl FromRef<AppState> for Arc<Auth> {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

/// Counts a refusal at the edge and answers it.
fn refused(state: &AppState, refusal: Refusal) -> Response {
    state.hub.metrics().auth_refusals.inc();
    refusal.into_response()
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/sync/{room}", get(sync))
        .route("/live/{room}", get(live))
        .route("/api/rooms", get(api::list_rooms))
        .route("/api/rooms/{room}", get(api::get_room))
        .route(
            "/api/rooms/{room}/commands",
            post(api::post_command).layer(DefaultBodyLimit::max(api::MAX_BODY)),
        )
        .route(
            "/api/rooms/{room}/key_results/{kr}/history",
            get(api::kr_history),
        )
        .route("/api/rooms/{room}/review", get(review_api::get_review))
        .route(
            "/api/rooms/{room}/review.md",
            get(review_api::get_review_md),
        )
        .route(
            "/api/rooms/{room}/carry-over",
            post(review_api::post_carry_over).layer(DefaultBodyLimit::max(api::MAX_BODY)),
        )
        .route(
            "/api/rooms/{room}/from-template",
            post(review_api::post_from_template).layer(DefaultBodyLimit::max(api::MAX_BODY)),
        )
        .route("/api/templates", get(review_api::list_templates))
        .route(
            "/api/orgs/{org}/templates/{name}",
            get(review_api::get_org_template)
                .put(review_api::put_org_template)
                .delete(review_api::delete_org_template)
                .layer(DefaultBodyLimit::max(crate::okr::templates::MAX_BODY)),
        )
        .route(
            "/api/rooms/{room}/export.json",
            get(transfer_api::room_json),
        )
        .route("/api/rooms/{room}/export.csv", get(transfer_api::room_csv))
        .route(
            "/api/rooms/{room}/import",
            post(transfer_api::import).layer(DefaultBodyLimit::max(transfer_api::MAX_IMPORT_BODY)),
        )
        .route(
            "/api/orgs/{org}/cycles/{cycle}/export.json",
            get(transfer_api::cycle_json),
        )
        .route(
            "/api/orgs/{org}/cycles/{cycle}/export.csv",
            get(transfer_api::cycle_csv),
        )
        .route(
            "/api/session",
            get(api::session_get)
                .post(api::session_post)
                .delete(api::session_delete),
        )
        .route("/api/orgs/{org}/robots", get(robots_api::list))
        .route(
            "/api/orgs/{org}/robots/{name}",
            get(robots_api::get_robot)
                .put(robots_api::put_robot)
                .delete(robots_api::delete_robot)
                .layer(DefaultBodyLimit::max(robots_api::MAX_BODY)),
        )
        .route(
            "/api/orgs/{org}/robots/{name}/dead-letters",
            get(robots_api::dead_letters),
        )
        .route(
            "/api/orgs/{org}/notify",
            get(robots_api::get_settings)
                .put(robots_api::put_settings)
                .layer(DefaultBodyLimit::max(robots_api::MAX_BODY)),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/", get(web::index))
        .route("/login", get(api::login))
        .route("/rooms/{room}", get(web::board))
        .route("/rooms/{room}/screen", get(web::screen))
        .route("/web/{*path}", get(web::file))
        .with_state(state)
}

/// Upgrades to the y-websocket protocol, once the caller has shown it may sync the room: a
/// valid token of the room's org with a role in it (in a personal room: its owner or an
/// admin), from no web page or an allowed one. A refusal is an HTTP 401/403 with the error
/// body, before any state is sent. An invalid room id still upgrades, so that the client gets
/// a close frame that says what is wrong (an HTTP error is invisible to a browser's
/// WebSocket).
async fn sync(
    ws: WsUpgrade,
    Path(room): Path<String>,
    headers: HeaderMap,
    caller: Result<Caller, Refusal>,
    ip: ClientIp,
    State(state): State<AppState>,
) -> Response {
    let admitted = admit_upgrade(&state, &headers, caller, ip, &room, |caller, id| {
        let access = caller.access(id)?;
        if !access.may_sync(id) {
            let why = match access.role() {
                None => "no role in this room: read its public objectives at /live or /api",
                Some(_) => "a personal room's doc holds its private objectives: only its owner and admins sync it; read it at /live or /api",
            };
            return Err(Refusal::forbidden("role", why));
        }
        let role = access.role().unwrap_or(crate::identity::Role::Viewer);
        Ok((caller.user().cloned(), role))
    });
    let (joining, permit) = match admitted {
        Ok(j) => j,
        Err(response) => return *response,
    };
    let sessions = state.sessions.clone();
    ws.on_upgrade(&sessions, move |up| async move {
        let _counted = permit;
        sync::serve(up, state.hub, joining, state.shutdown).await
    })
}

/// The checks every upgrade passes before it is answered: the `Origin`, the caller (a valid
/// token), `check` on the room (its access), and the limits: the user's connections, and —
/// for a room not loaded yet — the rooms the client loaded this minute. An invalid room id
/// passes (as a close reason for the socket). The permit counts the connection while held.
fn admit_upgrade<T>(
    state: &AppState,
    headers: &HeaderMap,
    caller: Result<Caller, Refusal>,
    ip: ClientIp,
    room: &str,
    check: impl FnOnce(&Caller, &RoomId) -> Result<T, Refusal>,
) -> Result<(Admitted<T>, ConnectionPermit), Box<Response>> {
    let answer = |r: Refusal| Box::new(refused(state, r));
    state.auth.check_origin(headers).map_err(answer)?;
    let caller = caller.map_err(answer)?;
    let permit = state
        .admission
        .connect(caller.user())
        .map_err(|l| answer(l.into()))?;
    let id = match RoomId::parse(room) {
        Ok(id) => id,
        Err(e) => return Ok((Err(CloseReason::invalid_room(e)), permit)),
    };
    let admitted = check(&caller, &id).map_err(answer)?;
    (state.admission)
        .enter(&state.hub, &id, ip.0, caller.user())
        .map_err(|l| answer(l.into()))?;
    Ok((Ok((id, admitted, caller.expires_at())), permit))
}

/// An upgrade admitted: the room, what the check found, when the token expires — or the
/// close reason for an invalid room id.
type Admitted<T> = Result<(RoomId, T, Option<u64>), CloseReason>;

#[derive(Deserialize)]
struct LiveParams {
    since: Option<u64>,
}

/// Upgrades to the live JSON protocol, once the caller has shown who it is (and, with tokens,
/// that the room is of its org). Everything it is then sent is cut to what it may read. As on
/// `/sync`, an invalid room id is a close frame with the reason. `/live/~inbox` is the
/// caller's mentions from every room ([`crate::live::inbox`]).
async fn live(
    ws: WsUpgrade,
    Path(room): Path<String>,
    headers: HeaderMap,
    caller: Result<Caller, Refusal>,
    ip: ClientIp,
    Query(params): Query<LiveParams>,
    State(state): State<AppState>,
) -> Response {
    let since = params.since;
    if room == live::INBOX {
        if let Err(r) = state.auth.check_origin(&headers) {
            return refused(&state, r);
        }
        let caller = match caller.and_then(|c| match c.user() {
            Some(_) => Ok(c),
            None => Err(Refusal::unauthenticated(
                "missing_user",
                "the inbox is a user's: ?user=ID (open server) or a token",
            )),
        }) {
            Ok(c) => c,
            Err(r) => return refused(&state, r),
        };
        let permit = match state.admission.connect(caller.user()) {
            Ok(p) => p,
            Err(l) => return refused(&state, l.into()),
        };
        let sessions = state.sessions.clone();
        return ws.on_upgrade(&sessions, move |up| async move {
            let _counted = permit;
            live::inbox::serve(up, state.hub, caller, since, state.shutdown).await
        });
    }
    let admitted = admit_upgrade(&state, &headers, caller, ip, &room, |caller, id| {
        caller.principal(id)
    });
    let (joining, permit) = match admitted {
        Ok(j) => j,
        Err(response) => return *response,
    };
    let sessions = state.sessions.clone();
    ws.on_upgrade(&sessions, move |up| async move {
        let _counted = permit;
        live::serve(up, state.hub, joining, since, state.shutdown).await
    })
}

async fn healthz() -> &'static str {
    "ok"
}

/// `200 ready`, with notes in parentheses (an open server; rooms refused as corrupt), or `503
/// not ready: <reason>`. Corrupt rooms do not make the node unready: every node reading the
/// same store would find the same values, so taking nodes out of rotation would turn one bad
/// room into an outage of all of them.
async fn readyz(State(state): State<AppState>) -> Response {
    let corrupt = state.hub.corruption();
    match state.hub.readiness() {
        Ok(()) => {
            let mut body = String::from("ready");
            if state.auth.is_open() {
                body.push_str(" (OPEN: no authentication configured; anyone who can reach this address reads and changes every room)");
            }
            if let Some(corrupt) = corrupt {
                body.push_str(&format!(" ({corrupt})"));
            }
            body.into_response()
        }
        Err(reason) => {
            let mut body = format!("not ready: {reason}");
            if let Some(corrupt) = corrupt {
                body.push_str(&format!("; {corrupt}"));
            }
            (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.auth.metrics_token {
        if crate::auth::bearer(&headers) != Some(token.as_str()) {
            return refused(
                &state,
                Refusal::unauthenticated(
                    "metrics_token",
                    "/metrics wants Authorization: Bearer (the --metrics-token)",
                ),
            );
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.hub.metrics().render(),
    )
        .into_response()
}
