//! Import and export over REST while the server runs (`proto/PROTOCOL.md`, "Import and
//! export"):
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/api/rooms/{room}/export.json` | [`RoomExport`]: what the caller may read of the room |
//! | GET | `/api/rooms/{room}/export.csv[?bom=false]` | the same as one CSV file ([`transfer::CSV_COLUMNS`]) |
//! | GET | `/api/orgs/{org}/cycles/{cycle}/export.json` | [`CycleExport`]: every room of the org and cycle the caller may read |
//! | GET | `/api/orgs/{org}/cycles/{cycle}/export.csv[?bom=false]` | the same as one CSV file (`room` column) |
//! | POST | `/api/rooms/{room}/import` | JSON (the export format) or CSV (`Content-Type: text/csv`): [`ImportAccepted`], or 422 [`ImportRefused`] with every refused row |
//!
//! An export reads exactly what `GET /api/rooms/{room}` gives the caller (its cut of the room:
//! a private objective only to its owner and the room's admins), so it can tell nothing more.
//! An import is an admin's, at most [`IMPORT_BODY_FACTOR`] × `--max-body` bytes (1 MiB by
//! default) and
//! [`MAX_IMPORT_ROWS`](crate::protocol::transfer::MAX_IMPORT_ROWS) records, and all or nothing
//! ([`crate::service::import`]).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::api::{self, ApiError, RoomFilter};
use crate::auth::{Auth, Caller, ClientIp, Refusal};
use crate::hub::Hub;
use crate::protocol::live::{ErrorBody, ProtocolErrorCode, RoomView};
use crate::protocol::transfer::{
    self, CycleExport, ImportAccepted, ImportRefused, RoomExport, FORMAT,
};
use crate::room_id::RoomId;
use crate::service::admission::Admission;
use crate::service::import::ImportFailed;
use crate::ws::Outbox;

/// How many times `--max-body` an import's body may be: 4, so 1 MiB by default — a room's
/// JSON export of [`MAX_IMPORT_ROWS`](crate::protocol::transfer::MAX_IMPORT_ROWS) records
/// (about 670 KB with every derived field, pretty-printed) goes back in whole.
pub const IMPORT_BODY_FACTOR: usize = 4;

/// Largest import body the router takes (the edge holds each to [`body_limit`]).
pub const MAX_IMPORT_BODY: usize = IMPORT_BODY_FACTOR * api::MAX_BODY;

/// The body limit of a request at the edge: `max_body` (`--max-body`), or
/// [`IMPORT_BODY_FACTOR`] times it for `POST /api/rooms/{room}/import`.
pub fn body_limit(method: &axum::http::Method, path: &str, max_body: usize) -> usize {
    let import = method == axum::http::Method::POST
        && path
            .strip_prefix("/api/rooms/")
            .and_then(|rest| rest.strip_suffix("/import"))
            .is_some_and(|room| !room.is_empty() && !room.contains('/'));
    if import {
        max_body.saturating_mul(IMPORT_BODY_FACTOR)
    } else {
        max_body
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct CsvQuery {
    /// Start the CSV with a UTF-8 byte order mark (default true: Excel needs it to read
    /// UTF-8, Chinese included).
    bom: Option<bool>,
}

/// What `reader` may read of room `id`, as `GET /api/rooms/{room}` answers it.
async fn room_export(
    hub: &Hub<Outbox>,
    admission: &Admission,
    caller: &Caller,
    ip: ClientIp,
    id: &RoomId,
) -> Result<RoomExport, ApiError> {
    let access = caller.access(id)?;
    api::enter(admission, hub, id, ip, caller)?;
    let room = hub.get_or_load(id).await.map_err(api::unavailable)?;
    let body = room.view_json_for(&access.reader(caller.user()));
    let view: RoomView = serde_json::from_slice(&body).map_err(|e| {
        tracing::error!(room = %id, error = %e, "a room view could not be read back");
        ApiError::protocol(
            StatusCode::INTERNAL_SERVER_ERROR,
            ProtocolErrorCode::Unavailable,
            "the room could not be exported",
        )
    })?;
    Ok(RoomExport {
        format: FORMAT.into(),
        room: view.room,
        seq: view.seq,
        okr: view.okr,
    })
}

/// A download: `Content-Disposition: attachment` with `name`.
fn attachment(content_type: &'static str, name: &str, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}

const JSON: &str = "application/json";
const CSV: &str = "text/csv; charset=utf-8; header=present";

fn pretty<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap_or_default()
}

/// `GET /api/rooms/{room}/export.json`.
pub async fn room_json(
    Path(room): Path<String>,
    caller: Caller,
    ip: ClientIp,
    State(hub): State<Hub<Outbox>>,
    State(admission): State<Arc<Admission>>,
) -> Result<Response, ApiError> {
    let id = api::room_id(&room)?;
    let export = room_export(&hub, &admission, &caller, ip, &id).await?;
    Ok(attachment(JSON, &format!("{id}.json"), pretty(&export)))
}

/// `GET /api/rooms/{room}/export.csv[?bom=false]`.
pub async fn room_csv(
    Path(room): Path<String>,
    Query(q): Query<CsvQuery>,
    caller: Caller,
    ip: ClientIp,
    State(hub): State<Hub<Outbox>>,
    State(admission): State<Arc<Admission>>,
) -> Result<Response, ApiError> {
    let id = api::room_id(&room)?;
    let export = room_export(&hub, &admission, &caller, ip, &id).await?;
    let body = transfer::to_csv([&export], q.bom.unwrap_or(true));
    Ok(attachment(CSV, &format!("{id}.csv"), body))
}

/// Every room of `org` and `cycle` the caller may read (as `GET /api/rooms?org=&cycle=` lists
/// them), exported.
async fn cycle_export(
    org: String,
    cycle: String,
    caller: Caller,
    ip: ClientIp,
    hub: Hub<Outbox>,
    admission: Arc<Admission>,
) -> Result<CycleExport, ApiError> {
    // The parts must be a room id's: checked on a room id made of them.
    api::room_id(&format!("{org}.x.{cycle}"))?;
    let filter = RoomFilter {
        org: Some(org.clone()),
        team: None,
        cycle: Some(cycle.clone()),
    };
    let Json(list) = api::list_rooms(caller.clone(), Query(filter), State(hub.clone())).await?;
    if list.truncated {
        return Err(ApiError::protocol(
            StatusCode::PAYLOAD_TOO_LARGE,
            ProtocolErrorCode::DocTooLarge,
            format!(
                "more than {} rooms: export them one by one",
                api::ROOM_LIST_MAX
            ),
        ));
    }
    let mut rooms = Vec::with_capacity(list.rooms.len());
    for entry in list.rooms {
        let id = api::room_id(&entry.room)?;
        rooms.push(room_export(&hub, &admission, &caller, ip, &id).await?);
    }
    Ok(CycleExport {
        format: FORMAT.into(),
        org,
        cycle,
        exported_at: crate::clock::now_millis(),
        rooms,
    })
}

/// `GET /api/orgs/{org}/cycles/{cycle}/export.json`.
pub async fn cycle_json(
    Path((org, cycle)): Path<(String, String)>,
    caller: Caller,
    ip: ClientIp,
    State(hub): State<Hub<Outbox>>,
    State(admission): State<Arc<Admission>>,
) -> Result<Response, ApiError> {
    let name = format!("{org}.{cycle}.json");
    let export = cycle_export(org, cycle, caller, ip, hub, admission).await?;
    Ok(attachment(JSON, &name, pretty(&export)))
}

/// `GET /api/orgs/{org}/cycles/{cycle}/export.csv[?bom=false]`.
pub async fn cycle_csv(
    Path((org, cycle)): Path<(String, String)>,
    Query(q): Query<CsvQuery>,
    caller: Caller,
    ip: ClientIp,
    State(hub): State<Hub<Outbox>>,
    State(admission): State<Arc<Admission>>,
) -> Result<Response, ApiError> {
    let name = format!("{org}.{cycle}.csv");
    let export = cycle_export(org, cycle, caller, ip, hub, admission).await?;
    let body = transfer::to_csv(&export.rooms, q.bom.unwrap_or(true));
    Ok(attachment(CSV, &name, body))
}

/// The body types an import takes.
enum Kind {
    Json,
    Csv,
}

/// The cross-site checks of an import: those of a command, with `text/csv` allowed too (a
/// foreign page cannot send that without a preflight either).
fn import_kind(auth: &Auth, headers: &HeaderMap, caller: &Caller) -> Result<Kind, ApiError> {
    let kind = crate::api::cross_site_as(
        auth,
        headers,
        caller,
        &["application/json", "text/csv"],
        "an import is sent as Content-Type: application/json or text/csv",
    )?;
    Ok(if kind == "text/csv" {
        Kind::Csv
    } else {
        Kind::Json
    })
}

/// 422 with every refused row.
fn refused_rows(rows: Vec<transfer::RowError>) -> Response {
    let message = match rows.first() {
        Some(first) => format!(
            "{} refused ({}: {}); nothing imported",
            if rows.len() == 1 {
                "1 row".to_owned()
            } else {
                format!("{} rows", rows.len())
            },
            first.at,
            first.message
        ),
        None => "nothing imported".into(),
    };
    let body = ImportRefused {
        error: ErrorBody::protocol(ProtocolErrorCode::BadRequest, message).because("import_rows"),
        rows,
    };
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

/// `POST /api/rooms/{room}/import`.
#[allow(clippy::too_many_arguments)] // axum extractors, one each
pub async fn import(
    Path(room): Path<String>,
    headers: HeaderMap,
    caller: Caller,
    ip: ClientIp,
    State(hub): State<Hub<Outbox>>,
    State(auth): State<Arc<Auth>>,
    State(admission): State<Arc<Admission>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let kind = import_kind(&auth, &headers, &caller)?;
    let id = api::room_id(&room)?;
    let principal = caller.principal(&id)?;
    if principal.access.role() != Some(crate::identity::Role::Admin) {
        return Err(Refusal::forbidden("role", "only an admin of the room imports into it").into());
    }
    api::enter(&admission, &hub, &id, ip, &caller)?;
    let file = match kind {
        Kind::Json => transfer::from_json(&body),
        Kind::Csv => transfer::from_csv(&body),
    };
    let steps = match file.and_then(transfer::plan) {
        Ok(steps) => steps,
        Err(rows) => return Ok(refused_rows(rows)),
    };
    match crate::service::import::import(&hub, &id, &principal, &steps).await {
        Ok(accepted) => Ok(Json::<ImportAccepted>(accepted).into_response()),
        Err(ImportFailed::Rows(rows)) => Ok(refused_rows(rows)),
        Err(ImportFailed::Forbidden) => {
            Err(Refusal::forbidden("role", "only an admin of the room imports into it").into())
        }
        Err(ImportFailed::Failed(e)) => Err(ApiError::from(ErrorBody::from(e))),
    }
}
