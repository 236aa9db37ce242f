//! The chat robots and webhooks of an org, over REST (`proto/PROTOCOL.md`, "Chat robots and
//! webhooks"). The org's admin only: a token with `admin` on `{org}.*.*` (on an open server,
//! anyone, as for everything there).
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/api/orgs/{org}/robots` | every robot, secrets left out |
//! | GET / PUT / DELETE | `/api/orgs/{org}/robots/{name}` | one robot (`PUT`: create or replace, 201 / 200) |
//! | GET | `/api/orgs/{org}/robots/{name}/dead-letters` | the deliveries given up, oldest first |
//! | GET / PUT | `/api/orgs/{org}/notify` | the org's settings (`lang`: `zh` or `en`) |
//!
//! Secrets are write-only: a `GET` says `secret_set: true`, never the value; a `PUT` without
//! `secret` keeps the stored one.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;

use crate::auth::{Auth, Caller, Refusal};
use crate::hub::Hub;
use crate::notify::target::{self, OrgSettings, Robot};
use crate::notify::{dead_prefix, DeadLetter};
use crate::org_api::{admin_of, error, store_failed, valid_name, OrgAccess};
use crate::protocol::live::ProtocolErrorCode;
use crate::ws::Outbox;

/// What [`admin_of`] refuses here.
const ROBOTS: &str = "the robots";

/// Largest robot configuration accepted, in bytes.
pub const MAX_BODY: usize = 64 * 1024;

type Org = Path<String>;
type OrgRobot = Path<(String, String)>;

/// `GET /api/orgs/{org}/robots`.
pub async fn list(
    Path(org): Org,
    State(hub): State<Hub<Outbox>>,
    State(auth): State<Arc<Auth>>,
    headers: HeaderMap,
    caller: Result<Caller, Refusal>,
) -> Response {
    if let Err(r) = admin_of(caller, &auth, &headers, &org, OrgAccess::Read, ROBOTS) {
        return *r;
    }
    match hub.store().settings_list(&org, "robot/").await {
        Ok(all) => {
            let views: Vec<_> = (all.iter())
                .filter_map(|(k, v)| {
                    let robot: Robot = serde_json::from_slice(v).ok()?;
                    Some(robot.view(k.strip_prefix("robot/")?))
                })
                .collect();
            Json(serde_json::json!({ "robots": views })).into_response()
        }
        Err(e) => store_failed(e),
    }
}

/// `GET /api/orgs/{org}/robots/{name}`.
pub async fn get_robot(
    Path((org, name)): OrgRobot,
    State(hub): State<Hub<Outbox>>,
    State(auth): State<Arc<Auth>>,
    headers: HeaderMap,
    caller: Result<Caller, Refusal>,
) -> Response {
    if let Err(r) = valid_name(&name, "a robot name")
        .and_then(|_| admin_of(caller, &auth, &headers, &org, OrgAccess::Read, ROBOTS))
    {
        return *r;
    }
    match hub.store().setting_get(&org, &target::key(&name)).await {
        Ok(Some(v)) => match serde_json::from_slice::<Robot>(&v) {
            Ok(robot) => Json(robot.view(&name)).into_response(),
            Err(e) => store_failed(crate::store::StoreError::Task(e.to_string())),
        },
        Ok(None) => not_found(&name),
        Err(e) => store_failed(e),
    }
}

fn not_found(name: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        ProtocolErrorCode::NotFound,
        format!("no robot {name:?}"),
    )
}

/// `PUT /api/orgs/{org}/robots/{name}`: creates or replaces the robot (and starts it again if
/// it was stopped).
pub async fn put_robot(
    Path((org, name)): OrgRobot,
    State(hub): State<Hub<Outbox>>,
    State(auth): State<Arc<Auth>>,
    headers: HeaderMap,
    caller: Result<Caller, Refusal>,
    body: Bytes,
) -> Response {
    if let Err(r) = valid_name(&name, "a robot name").and_then(|_| {
        admin_of(
            caller,
            &auth,
            &headers,
            &org,
            OrgAccess::Put("the robot"),
            ROBOTS,
        )
    }) {
        return *r;
    }
    let mut robot: Robot = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                ProtocolErrorCode::BadRequest,
                format!("not a robot: {e}"),
            )
        }
    };
    robot.disabled = None;
    let store = hub.store();
    let key = target::key(&name);
    let existing = match store.setting_get(&org, &key).await {
        Ok(v) => v.and_then(|v| serde_json::from_slice::<Robot>(&v).ok()),
        Err(e) => return store_failed(e),
    };
    if robot.secret.is_none() {
        // Write-only: a PUT that leaves it out keeps the stored one.
        robot.secret = existing.as_ref().and_then(|r| r.secret.clone());
    }
    if let Err(why) = robot.validate(&org) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            ProtocolErrorCode::BadRequest,
            why,
        );
    }
    if existing.is_none() {
        match store.settings_list(&org, "robot/").await {
            Ok(all) if all.len() >= target::MAX_ROBOTS => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ProtocolErrorCode::BadRequest,
                    format!("an org has at most {} robots", target::MAX_ROBOTS),
                )
            }
            Ok(_) => {}
            Err(e) => return store_failed(e),
        }
    }
    let value = serde_json::to_vec(&robot).unwrap_or_default();
    if let Err(e) = store.setting_put(&org, &key, &value).await {
        return store_failed(e);
    }
    let status = match existing {
        Some(_) => StatusCode::OK,
        None => StatusCode::CREATED,
    };
    (status, Json(robot.view(&name))).into_response()
}

/// `DELETE /api/orgs/{org}/robots/{name}`: the robot and its dead letters.
pub async fn delete_robot(
    Path((org, name)): OrgRobot,
    State(hub): State<Hub<Outbox>>,
    State(auth): State<Arc<Auth>>,
    headers: HeaderMap,
    caller: Result<Caller, Refusal>,
) -> Response {
    if let Err(r) = valid_name(&name, "a robot name")
        .and_then(|_| admin_of(caller, &auth, &headers, &org, OrgAccess::Delete, ROBOTS))
    {
        return *r;
    }
    let store = hub.store();
    match store.setting_delete(&org, &target::key(&name)).await {
        Ok(true) => {}
        Ok(false) => return not_found(&name),
        Err(e) => return store_failed(e),
    }
    if let Ok(letters) = store.settings_list(&org, &dead_prefix(&name)).await {
        for (k, _) in letters {
            let _ = store.setting_delete(&org, &k).await;
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /api/orgs/{org}/robots/{name}/dead-letters`.
pub async fn dead_letters(
    Path((org, name)): OrgRobot,
    State(hub): State<Hub<Outbox>>,
    State(auth): State<Arc<Auth>>,
    headers: HeaderMap,
    caller: Result<Caller, Refusal>,
) -> Response {
    if let Err(r) = valid_name(&name, "a robot name")
        .and_then(|_| admin_of(caller, &auth, &headers, &org, OrgAccess::Read, ROBOTS))
    {
        return *r;
    }
    match hub.store().settings_list(&org, &dead_prefix(&name)).await {
        Ok(all) => {
            let letters: Vec<DeadLetter> = (all.iter())
                .filter_map(|(_, v)| serde_json::from_slice(v).ok())
                .collect();
            Json(serde_json::json!({ "dead_letters": letters })).into_response()
        }
        Err(e) => store_failed(e),
    }
}

/// `GET /api/orgs/{org}/notify`.
pub async fn get_settings(
    Path(org): Org,
    State(hub): State<Hub<Outbox>>,
    State(auth): State<Arc<Auth>>,
    headers: HeaderMap,
    caller: Result<Caller, Refusal>,
) -> Response {
    if let Err(r) = admin_of(caller, &auth, &headers, &org, OrgAccess::Read, ROBOTS) {
        return *r;
    }
    match hub.store().setting_get(&org, "notify").await {
        Ok(v) => {
            let s: OrgSettings = v
                .and_then(|v| serde_json::from_slice(&v).ok())
                .unwrap_or_default();
            Json(s).into_response()
        }
        Err(e) => store_failed(e),
    }
}

/// `PUT /api/orgs/{org}/notify`.
pub async fn put_settings(
    Path(org): Org,
    State(hub): State<Hub<Outbox>>,
    State(auth): State<Arc<Auth>>,
    headers: HeaderMap,
    caller: Result<Caller, Refusal>,
    body: Bytes,
) -> Response {
    if let Err(r) = admin_of(
        caller,
        &auth,
        &headers,
        &org,
        OrgAccess::Put("the robot"),
        ROBOTS,
    ) {
        return *r;
    }
    let s: OrgSettings = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                ProtocolErrorCode::BadRequest,
                format!("not the org's settings: {e}"),
            )
        }
    };
    let value = serde_json::to_vec(&s).unwrap_or_default();
    match hub.store().setting_put(&org, "notify", &value).await {
        Ok(()) => Json(s).into_response(),
        Err(e) => store_failed(e),
    }
}
