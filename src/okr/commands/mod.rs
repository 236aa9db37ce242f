//! Commands: the changes a JSON or REST client asks for, and why one may be refused.
//!
//! A command is validated in full against the current doc before anything is written, so a
//! refused command changes nothing (not even a timestamp). It then becomes ordinary yrs edits
//! in the caller's transaction — the same kind of update a Yjs client makes — and everything
//! downstream (fan-out, persistence, events) treats it like any other update.
//!
//! Entity ids of created objects are generated here (short, random); the command never carries
//! a field named `id`, so an envelope may put its own client `id` beside `type`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::model::{
    AlignRef, CarriedFrom, Commitment, CycleKind, Metric, ObjectiveKind, Target, Visibility,
};

/// Everything a client can ask to change. JSON: `{"type": "kr.create", ...fields}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum Command {
    /// Sets the cycle (the room's period). Not in the first API sketch: needed to create a room.
    #[serde(rename = "cycle.set")]
    CycleSet(CycleSet),
    #[serde(rename = "objective.create")]
    ObjectiveCreate(ObjectiveCreate),
    #[serde(rename = "objective.update")]
    ObjectiveUpdate(ObjectiveUpdate),
    #[serde(rename = "objective.archive")]
    ObjectiveArchive(ObjectiveArchive),
    #[serde(rename = "objective.reorder")]
    ObjectiveReorder(ObjectiveReorder),
    #[serde(rename = "objective.align")]
    ObjectiveAlign(ObjectiveAlign),
    #[serde(rename = "kr.create")]
    KrCreate(KrCreate),
    #[serde(rename = "kr.update")]
    KrUpdate(KrUpdate),
    #[serde(rename = "kr.archive")]
    KrArchive(KrArchive),
    #[serde(rename = "kr.reorder")]
    KrReorder(KrReorder),
    #[serde(rename = "checkin.create")]
    CheckinCreate(CheckinCreate),
    #[serde(rename = "comment.create")]
    CommentCreate(CommentCreate),
    /// Closes the cycle (an admin's): the room then takes scores, retros and comments only.
    #[serde(rename = "cycle.close")]
    CycleClose(CycleClose),
    /// Reopens a closed cycle (an admin's).
    #[serde(rename = "cycle.reopen")]
    CycleReopen(CycleReopen),
    /// Overrides a KR's proposed score, with a reason (its owner or an admin; closed cycles).
    #[serde(rename = "kr.score")]
    KrScore(KrScoreSet),
    /// Writes an objective's retrospective note (closed cycles).
    #[serde(rename = "objective.retro")]
    ObjectiveRetro(ObjectiveRetro),
}

impl Command {
    /// Whether a closed cycle still takes this command: scores, retros, comments, and closing
    /// or reopening the cycle itself.
    pub fn allowed_when_closed(&self) -> bool {
        matches!(
            self,
            Command::KrScore(_)
                | Command::ObjectiveRetro(_)
                | Command::CommentCreate(_)
                | Command::CycleClose(_)
                | Command::CycleReopen(_)
        )
    }
}

/// `{}`: closes the room's cycle now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct CycleClose {}

/// `{}`: reopens the room's cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct CycleReopen {}

/// A KR's final score, overriding the proposed one. `score: null` removes the override.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KrScoreSet {
    pub key_result: String,
    /// 0.0–1.0; `null` goes back to the proposed score.
    pub score: Option<f64>,
    /// Why (1–1000 characters; required with a score).
    #[serde(default)]
    pub reason: Option<String>,
}

/// An objective's retrospective note (复盘): each part ≤ 4000 characters, at least one not blank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ObjectiveRetro {
    pub objective: String,
    /// What worked.
    #[serde(default)]
    pub worked: String,
    /// What did not.
    #[serde(default)]
    pub did_not: String,
    /// What next.
    #[serde(default)]
    pub next: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CycleSet {
    /// The cycle's id, e.g. `2026-Q3`; by default the room id's last part
    /// (`acme.sales.2026-Q3` → `2026-Q3`). Not named `id`: that is the envelope's.
    #[serde(default)]
    pub cycle: Option<String>,
    #[serde(default)]
    pub kind: CycleKind,
    /// `YYYY-MM-DD`, inclusive.
    pub starts: String,
    /// `YYYY-MM-DD`, inclusive.
    pub ends: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ObjectiveCreate {
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Defaults to the acting user.
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub team: Option<String>,
    #[serde(default)]
    pub kind: Option<ObjectiveKind>,
    #[serde(default)]
    pub visibility: Option<Visibility>,
    #[serde(default)]
    pub commitment: Option<Commitment>,
    #[serde(default)]
    pub aligned_to: Vec<AlignRef>,
    /// The objective this one continues (set by carry-over): `{room, objective}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried_from: Option<CarriedFrom>,
}

/// Sets the fields given; at least one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ObjectiveUpdate {
    pub objective: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub team: Option<String>,
    #[serde(default)]
    pub kind: Option<ObjectiveKind>,
    #[serde(default)]
    pub visibility: Option<Visibility>,
    #[serde(default)]
    pub commitment: Option<Commitment>,
}

/// Archives (or, with `archived: false`, restores) an objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ObjectiveArchive {
    pub objective: String,
    #[serde(default = "yes")]
    pub archived: bool,
}

/// Moves an objective to position `index` (0-based) among the room's objectives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ObjectiveReorder {
    pub objective: String,
    pub index: u32,
}

/// Changes an objective's parents: `set` replaces them all, then `remove`, then `add` apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ObjectiveAlign {
    pub objective: String,
    #[serde(default)]
    pub set: Option<Vec<AlignRef>>,
    #[serde(default)]
    pub add: Vec<AlignRef>,
    #[serde(default)]
    pub remove: Vec<AlignRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KrCreate {
    pub objective: String,
    pub title: String,
    /// Defaults to the acting user.
    #[serde(default)]
    pub owner: Option<String>,
    pub metric: Metric,
    /// Default 1.
    #[serde(default)]
    pub weight: Option<f64>,
    /// Default 7; 0 = no check-ins due.
    #[serde(default)]
    pub cadence_days: Option<u32>,
    /// The KR this one continues (set by carry-over): `{room, key_result}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried_from: Option<CarriedFrom>,
}

/// Sets the fields given; at least one. A change of `metric` (other than milestone `done`
/// flags) is recorded as a revision with `why`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KrUpdate {
    pub key_result: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub metric: Option<Metric>,
    #[serde(default)]
    pub weight: Option<f64>,
    #[serde(default)]
    pub cadence_days: Option<u32>,
    /// Moves the KR to another (active) objective of this room.
    #[serde(default)]
    pub objective: Option<String>,
    /// Why the metric changed (kept in the revision).
    #[serde(default)]
    pub why: Option<String>,
}

/// Archives (or, with `archived: false`, restores) a key result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KrArchive {
    pub key_result: String,
    #[serde(default = "yes")]
    pub archived: bool,
}

/// Moves a KR to position `index` (0-based) among its objective's KRs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KrReorder {
    pub key_result: String,
    pub index: u32,
}

/// A check-in: the KR's new value (a milestone KR: its milestones' done flags) and confidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CheckinCreate {
    pub key_result: String,
    /// Required unless the KR is a milestone KR (percent KRs: 0–100).
    #[serde(default)]
    pub value: Option<f64>,
    /// Milestone KRs only: every milestone's done flag, in order.
    #[serde(default)]
    pub milestones: Option<Vec<bool>>,
    /// 0–10: ≥ 7 on track, 4–6 at risk, ≤ 3 off track.
    pub confidence: i64,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub mentions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CommentCreate {
    pub target: Target,
    pub text: String,
    #[serde(default)]
    pub mentions: Vec<String>,
    /// A comment on the same target this one answers.
    #[serde(default)]
    pub reply_to: Option<String>,
}

fn yes() -> bool {
    true
}

/// What an accepted command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
pub struct Applied {
    /// The id of the entity a `*.create` command made.
    pub created_id: Option<String>,
}

/// Why a command was refused. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct CommandError {
    pub code: ErrorCode,
    /// For humans.
    pub message: String,
    /// The offending field of the command, e.g. `metric.target`, `mentions[2]`.
    pub field: Option<String>,
}

/// Stable, machine-readable reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A value is malformed or contradicts another (e.g. a decrease target above its start).
    InvalidValue,
    /// A field the command needs in this case is absent.
    MissingField,
    /// The objective, key result or comment referred to does not exist.
    NotFound,
    /// The target (or its objective) is archived.
    Archived,
    /// A number is outside its range (confidence 0–10, percent 0–100, weights, cadence, …).
    OutOfRange,
    /// The alignment would make an objective support itself.
    AlignmentCycle,
    /// A text is longer than its limit.
    TooLong,
    /// A list has more items than its limit.
    TooMany,
    /// An update that sets nothing.
    EmptyUpdate,
    /// The cycle is closed: the room takes scores, retros and comments only.
    CycleClosed,
    /// A score or retrospective note needs a closed cycle.
    CycleOpen,
    /// The room already holds objectives (filling it from a template).
    NotEmpty,
}

impl CommandError {
    pub(crate) fn new(code: ErrorCode, field: &str, message: impl Into<String>) -> Self {
        CommandError {
            code,
            message: message.into(),
            field: (!field.is_empty()).then(|| field.to_owned()),
        }
    }
}

mod activity;
mod apply;
mod context;
mod kr;
mod objective;
mod review;
pub(crate) mod validate;
mod write;

pub use apply::{apply, apply_in_room};

#[cfg(test)]
pub(crate) mod testing {
    pub(crate) use super::write::to_any;
}
