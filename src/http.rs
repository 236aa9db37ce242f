//! The HTTP surface: the `/sync/{room}` (Yjs) and `/live/{room}` (JSON) WebSocket upgrades,
//! the REST API under `/api/rooms/` ([`crate::api`]), `/healthz`, `/readyz`, `/metrics`, and
//! the built-in dashboard on `/` and `/web/` ([`crate::web`]).
//!
//! `/healthz` is liveness: the process answers. `/readyz` is readiness: 200 `ready` when the
//! store takes writes, 503 with the reason (`not ready: store failing: …`, `not ready: persist
//! buffer over half full: …`) while it does not — a load balancer then sends new sessions
//! elsewhere while the rooms already here keep being served.

use axum::extract::{DefaultBodyLimit, FromRef, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use serde::Deserialize;

use crate::auth::Identity;
use crate::hub::Hub;
use crate::identity::IdentityError;
use crate::room_id::RoomId;
use crate::ws::{Outbox, WsUpgrade};
use crate::{api, live, sync, web};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub hub: Hub<Outbox>,
    /// Every WebSocket session runs on this tracker, so shutdown can wait for them (axum's
    /// graceful shutdown does not see upgraded connections).
    pub sessions: TaskTracker,
    pub shutdown: CancellationToken,
}

/// The REST handlers need only the hub.
impl FromRef<AppState> for Hub<Outbox> {
    fn from_ref(state: &AppState) -> Self {
        state.hub.clone()
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/sync/{room}", get(sync))
        .route("/live/{room}", get(live))
        .route("/api/rooms/{room}", get(api::get_room))
        .route(
            "/api/rooms/{room}/commands",
            post(api::post_command).layer(DefaultBodyLimit::max(api::MAX_BODY)),
        )
        .route(
            "/api/rooms/{room}/key_results/{kr}/history",
            get(api::kr_history),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/", get(web::index))
        .route("/web/{file}", get(web::file))
        .with_state(state)
}

/// Upgrades to the y-websocket protocol. An invalid room id still upgrades, so that the client
/// gets a close frame that says what is wrong (an HTTP error is invisible to a browser's
/// WebSocket).
async fn sync(
    ws: WsUpgrade,
    Path(room): Path<String>,
    identity: Identity,
    State(state): State<AppState>,
) -> Response {
    let room = RoomId::parse(&room);
    let sessions = state.sessions.clone();
    ws.on_upgrade(&sessions, move |up| {
        sync::serve(up, state.hub, room, identity.0, state.shutdown)
    })
}

#[derive(Deserialize)]
struct LiveParams {
    since: Option<u64>,
}

/// Upgrades to the live JSON protocol. Like `/sync`, a refusal (invalid room, no user) is a
/// close frame with the reason rather than an HTTP error a browser would hide.
async fn live(
    ws: WsUpgrade,
    Path(room): Path<String>,
    identity: Result<Identity, IdentityError>,
    Query(params): Query<LiveParams>,
    State(state): State<AppState>,
) -> Response {
    let room = RoomId::parse(&room);
    let user = identity.and_then(Identity::require);
    let since = params.since;
    let sessions = state.sessions.clone();
    ws.on_upgrade(&sessions, move |up| {
        live::serve(up, state.hub, room, user, since, state.shutdown)
    })
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.hub.readiness() {
        Ok(()) => "ready".into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}"),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.hub.metrics().render(),
    )
}
