//! REST for the quarter's end and the next one (issue 15): the review (复盘) as JSON and
//! Markdown, carry-over into the next cycle's room, and templates.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/api/rooms/{room}/review[?lang=]` | [`Review`]: scores, confidence history, red flags and what became of them |
//! | GET | `/api/rooms/{room}/review.md[?lang=en\|zh]` | the same as a Markdown download |
//! | POST | `/api/rooms/{room}/carry-over` | [`CarryResult`]: unfinished objectives and KRs created in `to` (admin of both rooms) |
//! | GET | `/api/templates[?org=]` | [`TemplateList`]: the built-in templates and the caller's org's own (`org:NAME`) |
//! | POST | `/api/rooms/{room}/from-template` | [`FilledFromTemplate`]: an empty room filled from one (admin) |
//! | GET / PUT / DELETE | `/api/orgs/{org}/templates/{name}` | one of the org's own templates (`PUT`: its admin; create or replace, 201 / 200) |
//!
//! Reads are cut to what the caller may read, like every read. The writes are one
//! transaction of the target room each (planned against the room as it is under its lock,
//! so two carry-overs of the same items cannot both create them), refused whole when any
//! command in them is, and answered once durable.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::api::{cross_site, enter, room_id, unavailable, ApiError};
use crate::auth::{Auth, Caller, ClientIp, Refusal};
use crate::hub::Hub;
use crate::identity::Role;
use crate::okr::carry::{self, CarriedKr, CarriedObjective, CarryOver, CarryResult};
use crate::okr::review::{self, Lang, Review};
use crate::okr::templates::Template;
use crate::okr::{self, templates, Command, CommandError, ErrorCode, Projection};
use crate::org_api::{self, admin_of, member_of, store_failed, valid_name, valid_org, OrgAccess};
use crate::protocol::live::{ErrorBody, ProtocolErrorCode};
use crate::protocol::review::{CreatedObjective, FilledFromTemplate, FromTemplate, TemplateList};
use crate::room::Refused;
use crate::room_id::RoomId;
use crate::service::admission::Admission;
use crate::service::commands::CommandFailed;
use crate::service::Principal;
use crate::store::{DocStore, StoreError};
use crate::ws::Outbox;

#[derive(Debug, Default, serde::Deserialize)]
pub struct ReviewQuery {
    lang: Option<Lang>,
}

/// The review of `room` as the caller may read it.
async fn build_review(
    room: &str,
    caller: &Caller,
    ip: ClientIp,
    hub: &Hub<Outbox>,
    admission: &Admission,
) -> Result<Review, ApiError> {
    let id = room_id(room)?;
    let reader = caller.access(&id)?.reader(caller.user());
    enter(admission, hub, &id, ip, caller)?;
    let room = hub.get_or_load(&id).await.map_err(unavailable)?;
    let (_, set) = room.view();
    let set = reader.hidden_in(&set).filter_set(&set);
    Ok(review::review(id.as_str(), &set))
}

/// `GET /api/rooms/{room}/review`.
pub async fn get_review(
    Path(room): Path<String>,
    caller: Caller,
    ip: ClientIp,
    State(hub): State<Hub<Outbox>>,
    State(admission): State<Arc<Admission>>,
) -> Result<Json<Review>, ApiError> {
    Ok(Json(
        build_review(&room, &caller, ip, &hub, &admission).await?,
    ))
}

/// `GET /api/rooms/{room}/review.md[?lang=en|zh]`: a Markdown download.
pub async fn get_review_md(
    Path(room): Path<String>,
    Query(q): Query<ReviewQuery>,
    caller: Caller,
    ip: ClientIp,
    State(hub): State<Hub<Outbox>>,
    State(admission): State<Arc<Admission>>,
) -> Result<Response, ApiError> {
    let r = build_review(&room, &caller, ip, &hub, &admission).await?;
    let md = review::markdown(&r, q.lang.unwrap_or_default());
    let disposition = format!("attachment; filename=\"review-{}.md\"", r.room);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/markdown; charset=utf-8".to_owned(),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        md,
    )
        .into_response())
}

/// The caller as an admin of `id`: 403 otherwise.
fn room_admin(caller: &Caller, id: &RoomId) -> Result<Principal, ApiError> {
    let principal = caller.principal(id)?;
    if principal.access.role() != Some(Role::Admin) {
        return Err(ApiError::from(ErrorBody::from(CommandFailed::Forbidden)));
    }
    Ok(principal)
}

fn settings_failed(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "org templates: store failed");
    ApiError::protocol(
        StatusCode::SERVICE_UNAVAILABLE,
        ProtocolErrorCode::Unavailable,
        "the store failed; retry",
    )
}

fn bad_body(e: serde_json::Error) -> ApiError {
    ApiError::protocol(
        StatusCode::BAD_REQUEST,
        ProtocolErrorCode::BadRequest,
        format!("the body cannot be read: {e}"),
    )
}

fn refused(e: Refused) -> ApiError {
    let failed = match e {
        Refused::Invalid(e) => CommandFailed::Invalid(e),
        Refused::Unavailable(e) => CommandFailed::StoreBehind(e.to_string()),
        Refused::DocTooLarge(limit) => CommandFailed::DocTooLarge(limit),
        Refused::Closing => CommandFailed::Closing,
    };
    ApiError::from(ErrorBody::from(failed))
}

fn invalid(e: CommandError) -> ApiError {
    ApiError::from(ErrorBody::from(e))
}

/// Applies `cmd` in `txn` of room `room`, reading the set as it now is; the created id.
fn run(
    txn: &mut yrs::TransactionMut,
    room: &str,
    cmd: &Command,
    actor: &str,
    now: i64,
) -> Result<Option<String>, CommandError> {
    let view = Projection::load(&*txn, now);
    okr::apply_in_room(txn, room, &view, cmd, actor, now).map(|a| a.created_id)
}

/// Refuses a closed target room before anything is written.
fn open_room(view: &Projection) -> Result<(), CommandError> {
    if view.cycle().is_some_and(|c| c.closed) {
        return Err(CommandError::new(
            ErrorCode::CycleClosed,
            "",
            "the target room's cycle is closed",
        ));
    }
    Ok(())
}

/// `POST /api/rooms/{room}/carry-over` with [`CarryOver`]: an admin of both rooms.
#[allow(clippy::too_many_arguments)] // axum extractors, one each
pub async fn post_carry_over(
    Path(room): Path<String>,
    headers: HeaderMap,
    caller: Caller,
    ip: ClientIp,
    State(hub): State<Hub<Outbox>>,
    State(auth): State<Arc<Auth>>,
    State(admission): State<Arc<Admission>>,
    body: Bytes,
) -> Result<Json<CarryResult>, ApiError> {
    cross_site(&auth, &headers, &caller)?;
    let source_id = room_id(&room)?;
    let request: CarryOver = serde_json::from_slice(&body).map_err(bad_body)?;
    let target_id = room_id(&request.to).map_err(|mut e| {
        e.1.field = Some("to".into());
        e
    })?;
    if target_id == source_id {
        let message = "carry over into another room (the next cycle's)";
        return Err(invalid(CommandError::new(
            ErrorCode::InvalidValue,
            "to",
            message,
        )));
    }
    room_admin(&caller, &source_id)?;
    let principal = room_admin(&caller, &target_id)?;
    enter(&admission, &hub, &source_id, ip, &caller)?;
    enter(&admission, &hub, &target_id, ip, &caller)?;
    let source = hub.get_or_load(&source_id).await.map_err(unavailable)?;
    let (_, source_set) = source.view();
    let target = hub.get_or_load(&target_id).await.map_err(unavailable)?;
    let (actor, to) = (principal.user.as_str(), target_id.as_str());
    let from = source_id.as_str();
    let now = crate::clock::now_millis();
    let done = target
        .transact(Some(&principal.user), |txn| {
            let view = Projection::load(&*txn, now);
            open_room(&view)?;
            let plan = carry::plan(from, &source_set, &view.to_set(), &request)?;
            let cycle_set = plan.cycle.is_some();
            if let Some(c) = plan.cycle {
                run(txn, to, &Command::CycleSet(c), actor, now)?;
            }
            let mut objectives = Vec::new();
            for o in plan.objectives {
                let (objective, created) = match o.existing {
                    Some(id) => (id, false),
                    None => {
                        let cmd = Command::ObjectiveCreate(o.create);
                        (run(txn, to, &cmd, actor, now)?.unwrap_or_default(), true)
                    }
                };
                let mut key_results = Vec::new();
                for (from, mut k) in o.key_results {
                    k.objective = objective.clone();
                    let id = run(txn, to, &Command::KrCreate(k), actor, now)?;
                    key_results.push(CarriedKr {
                        key_result: id.unwrap_or_default(),
                        from,
                    });
                }
                objectives.push(CarriedObjective {
                    objective,
                    from: o.from,
                    created,
                    key_results,
                });
            }
            Ok::<_, CommandError>((cycle_set, objectives, plan.skipped))
        })
        .map_err(refused)?;
    let (cycle_set, objectives, skipped) = done.map_err(invalid)?;
    target
        .flush()
        .await
        .map_err(|_| ApiError::from(ErrorBody::from(CommandFailed::NotDurable)))?;
    Ok(Json(CarryResult {
        room: target_id.to_string(),
        seq: target.seq(),
        cycle_set,
        objectives,
        skipped,
    }))
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct TemplatesQuery {
    org: Option<String>,
}

/// The org's template `name` as used: named `org:{name}`, marked `org`.
async fn org_template(
    store: &dyn DocStore,
    org: &str,
    name: &str,
) -> Result<Option<Template>, StoreError> {
    let Some(v) = store.setting_get(org, &templates::key(name)).await? else {
        return Ok(None);
    };
    let mut t: Template = serde_json::from_slice(&v)
        .map_err(|e| StoreError::Task(format!("template {name}: {e}")))?;
    t.name = format!("{}{name}", templates::ORG_PREFIX);
    t.org = true;
    Ok(Some(t))
}

/// Every template of `org`, as used. A store that keeps no org settings has none.
async fn org_templates(store: &dyn DocStore, org: &str) -> Result<Vec<Template>, StoreError> {
    let all = match store.settings_list(org, templates::KEY_PREFIX).await {
        Err(StoreError::Refused(_)) => return Ok(Vec::new()),
        r => r?,
    };
    Ok(all
        .into_iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix(templates::KEY_PREFIX)?;
            let mut t: Template = serde_json::from_slice(&v).ok()?;
            t.name = format!("{}{name}", templates::ORG_PREFIX);
            t.org = true;
            Some(t)
        })
        .collect())
}

/// `GET /api/templates[?org=]`: any caller who may use the API; the built-ins, then the
/// caller's org's own (a token's org; on an open server, `?org=`).
pub async fn list_templates(
    caller: Caller,
    Query(q): Query<TemplatesQuery>,
    State(hub): State<Hub<Outbox>>,
) -> Response {
    let org = match &caller {
        Caller::Token(v, _) => Some(v.org.clone()),
        Caller::Open(_) => q.org.filter(|o| valid_org(o).is_ok()),
    };
    let mut list = templates::builtin().to_vec();
    if let Some(org) = org {
        match org_templates(&**hub.store(), &org).await {
            Ok(own) => list.extend(own),
            Err(e) => return store_failed(e),
        }
    }
    Json(TemplateList {
        langs: templates::LANGS.iter().map(|l| (*l).to_owned()).collect(),
        templates: list,
    })
    .into_response()
}

/// What [`admin_of`] refuses here.
const TEMPLATES: &str = "the templates";
/// What a template name is.
const TEMPLATE_NAME: &str = "a template name";
/// Most templates an org may keep.
pub const MAX_ORG_TEMPLATES: usize = 100;

type OrgTemplate = Path<(String, String)>;

fn no_template(name: &str) -> Response {
    org_api::error(
        StatusCode::NOT_FOUND,
        ProtocolErrorCode::NotFound,
        format!("no template {name:?}"),
    )
}

/// `GET /api/orgs/{org}/templates/{name}`: anyone of the org.
pub async fn get_org_template(
    Path((org, name)): OrgTemplate,
    State(hub): State<Hub<Outbox>>,
    caller: Result<Caller, Refusal>,
) -> Response {
    if let Err(r) = valid_name(&name, TEMPLATE_NAME).and_then(|_| member_of(caller, &org)) {
        return *r;
    }
    match org_template(&**hub.store(), &org, &name).await {
        Ok(Some(t)) => Json(t).into_response(),
        Ok(None) => no_template(&name),
        Err(e) => store_failed(e),
    }
}

/// `PUT /api/orgs/{org}/templates/{name}` with a [`Template`]: the org's admin; checked whole
/// ([`templates::validate`]), created (201) or replaced (200).
pub async fn put_org_template(
    Path((org, name)): OrgTemplate,
    State(hub): State<Hub<Outbox>>,
    State(auth): State<Arc<Auth>>,
    headers: HeaderMap,
    caller: Result<Caller, Refusal>,
    body: Bytes,
) -> Response {
    if let Err(r) = valid_name(&name, TEMPLATE_NAME).and_then(|_| {
        admin_of(
            caller,
            &auth,
            &headers,
            &org,
            OrgAccess::Put("the template"),
            TEMPLATES,
        )
    }) {
        return *r;
    }
    let mut template: Template = match serde_json::from_slice(&body) {
        Ok(t) => t,
        Err(e) => {
            return org_api::error(
                StatusCode::UNPROCESSABLE_ENTITY,
                ProtocolErrorCode::BadRequest,
                format!("not a template: {e}"),
            )
        }
    };
    let used = format!("{}{name}", templates::ORG_PREFIX);
    if !(template.name.is_empty() || template.name == name || template.name == used) {
        let message = format!("the path names this template {name:?}");
        let e = CommandError::new(ErrorCode::InvalidValue, "name", message);
        return invalid(e).into_response();
    }
    if let Err(e) = templates::validate(&template) {
        return invalid(e).into_response();
    }
    let store = hub.store();
    let key = templates::key(&name);
    let existed = match store.setting_get(&org, &key).await {
        Ok(v) => v.is_some(),
        Err(e) => return store_failed(e),
    };
    if !existed {
        match store.settings_list(&org, templates::KEY_PREFIX).await {
            Ok(all) if all.len() >= MAX_ORG_TEMPLATES => {
                let message = format!("an org keeps at most {MAX_ORG_TEMPLATES} templates");
                let e = CommandError::new(ErrorCode::TooMany, "", message);
                return invalid(e).into_response();
            }
            Ok(_) => {}
            Err(e) => return store_failed(e),
        }
    }
    template.name = name;
    template.org = false;
    let value = serde_json::to_vec(&template).unwrap_or_default();
    if let Err(e) = store.setting_put(&org, &key, &value).await {
        return store_failed(e);
    }
    template.name = used;
    template.org = true;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    (status, Json(template)).into_response()
}

/// `DELETE /api/orgs/{org}/templates/{name}`: the org's admin. Rooms filled from it keep
/// what they were filled with.
pub async fn delete_org_template(
    Path((org, name)): OrgTemplate,
    State(hub): State<Hub<Outbox>>,
    State(auth): State<Arc<Auth>>,
    headers: HeaderMap,
    caller: Result<Caller, Refusal>,
) -> Response {
    if let Err(r) = valid_name(&name, TEMPLATE_NAME)
        .and_then(|_| admin_of(caller, &auth, &headers, &org, OrgAccess::Delete, TEMPLATES))
    {
        return *r;
    }
    match hub
        .store()
        .setting_delete(&org, &templates::key(&name))
        .await
    {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => no_template(&name),
        Err(e) => store_failed(e),
    }
}

/// `POST /api/rooms/{room}/from-template` with [`FromTemplate`]: an admin, into a room with no
/// objectives.
#[allow(clippy::too_many_arguments)] // axum extractors, one each
pub async fn post_from_template(
    Path(room): Path<String>,
    headers: HeaderMap,
    caller: Caller,
    ip: ClientIp,
    State(hub): State<Hub<Outbox>>,
    State(auth): State<Arc<Auth>>,
    State(admission): State<Arc<Admission>>,
    body: Bytes,
) -> Result<Json<FilledFromTemplate>, ApiError> {
    cross_site(&auth, &headers, &caller)?;
    let id = room_id(&room)?;
    let request: FromTemplate = serde_json::from_slice(&body).map_err(bad_body)?;
    let lang = request.lang.clone().unwrap_or_else(|| "zh".into());
    if !templates::LANGS.contains(&lang.as_str()) {
        let message = format!("lang is one of {}", templates::LANGS.join(", "));
        return Err(invalid(CommandError::new(
            ErrorCode::InvalidValue,
            "lang",
            message,
        )));
    }
    let principal = room_admin(&caller, &id)?;
    let not_found = || {
        let mut e = ErrorBody::protocol(
            ProtocolErrorCode::NotFound,
            format!(
                "no template {:?} (GET /api/templates lists them)",
                request.template
            ),
        );
        e.field = Some("template".into());
        ApiError(StatusCode::NOT_FOUND, e)
    };
    // An org's own template is `org:NAME`, of the room's org: it shadows no built-in.
    let template = match request.template.strip_prefix(templates::ORG_PREFIX) {
        Some(name) if org_api::is_name(name) => org_template(&**hub.store(), id.org(), name)
            .await
            .map_err(|e| match e {
                StoreError::Refused(_) => not_found(),
                e => settings_failed(e),
            })?
            .ok_or_else(not_found)?,
        Some(_) => return Err(not_found()),
        None => templates::find(&request.template)
            .cloned()
            .ok_or_else(not_found)?,
    };
    enter(&admission, &hub, &id, ip, &caller)?;
    let room = hub.get_or_load(&id).await.map_err(unavailable)?;
    let (actor, to) = (principal.user.as_str(), id.as_str());
    let now = crate::clock::now_millis();
    let done = room
        .transact(Some(&principal.user), |txn| {
            let view = Projection::load(&*txn, now);
            open_room(&view)?;
            if view.objectives().next().is_some() {
                let message = "the room already holds objectives: a template fills an empty room";
                return Err(CommandError::new(ErrorCode::NotEmpty, "", message));
            }
            let mut cycle_set = false;
            if view.cycle().is_none() {
                if let Some((kind, starts, ends)) = okr::rules::period_of(id.cycle()) {
                    let c = okr::commands::CycleSet {
                        cycle: None,
                        kind,
                        starts,
                        ends,
                    };
                    run(txn, to, &Command::CycleSet(c), actor, now)?;
                    cycle_set = true;
                }
            }
            let mut objectives = Vec::new();
            for (o, krs) in templates::commands(&template, &lang) {
                let cmd = Command::ObjectiveCreate(o);
                let objective = run(txn, to, &cmd, actor, now)?.unwrap_or_default();
                let mut key_results = Vec::new();
                for mut k in krs {
                    k.objective = objective.clone();
                    let kr = run(txn, to, &Command::KrCreate(k), actor, now)?;
                    key_results.push(kr.unwrap_or_default());
                }
                objectives.push(CreatedObjective {
                    objective,
                    key_results,
                });
            }
            Ok((cycle_set, objectives))
        })
        .map_err(refused)?;
    let (cycle_set, objectives) = done.map_err(invalid)?;
    room.flush()
        .await
        .map_err(|_| ApiError::from(ErrorBody::from(CommandFailed::NotDurable)))?;
    Ok(Json(FilledFromTemplate {
        room: id.to_string(),
        seq: room.seq(),
        template: template.name,
        lang,
        cycle_set,
        objectives,
    }))
}
