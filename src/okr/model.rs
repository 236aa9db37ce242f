//! The typed OKR set: what [`read`](super::read) materialises from a doc, what a snapshot sends
//! and what events carry.
//!
//! Two kinds of fields live side by side. *Stored* fields mirror the doc (`proto/DOCUMENT.md`);
//! *derived* fields (`progress`, `status`, `overdue`, …) are computed by [`rules`](super::rules)
//! at read time and never written back, so there is one source of truth — the doc — and a
//! derived value can never disagree with the data it comes from.
//!
//! Every type here is a wire type: serde + JSON Schema, snake_case fields, tagged enums, so the
//! lead's `proto/*.schema.json` is generated from exactly what the server sends.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Epoch milliseconds (JS `Date.now()`).
pub type Millis = i64;

/// A team's OKR set for one cycle, as read at `as_of`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct OkrSet {
    /// The time the derived fields were computed for.
    pub as_of: Millis,
    /// `None` until someone sets the cycle (then expected progress and pace are unknown).
    pub cycle: Option<Cycle>,
    /// Ordered by `order`, then id. Archived ones included (`archived: true`).
    pub objectives: Vec<Objective>,
    /// Ordered by their objective's position, then `order`, then id. Each objective lists its own
    /// in `Objective::key_results`.
    pub key_results: Vec<KeyResult>,
    /// Ordered by `at`, then id.
    pub checkins: Vec<Checkin>,
    /// Ordered by `at`, then id.
    pub comments: Vec<Comment>,
    /// Entries or fields of the doc that could not be read (see `proto/DOCUMENT.md`).
    pub problems: Vec<Problem>,
    /// Quality advice (never a block).
    pub lint: Vec<LintFinding>,
}

/// Something in the doc the reader had to skip or ignore.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Problem {
    /// Where, as `root/key/field…`, e.g. `key_results/k1/metric/target`.
    pub path: String,
    pub message: String,
}

/// The period the OKR set covers. Dates are ISO `YYYY-MM-DD`, both inclusive, in UTC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Cycle {
    /// E.g. `2026-Q3`.
    pub id: String,
    pub kind: CycleKind,
    pub starts: String,
    pub ends: String,
    /// When an admin closed the cycle (`cycle.close`); `None` while it is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<Millis>,
    /// Who closed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<String>,
    /// Derived: `closed_at` is set. A closed room takes scores, retros and comments only.
    #[serde(default)]
    pub closed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum CycleKind {
    Month,
    #[default]
    Quarter,
    Half,
    Year,
    Custom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum ObjectiveKind {
    #[default]
    Team,
    Personal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    #[default]
    Public,
    Team,
    Private,
}

/// Committed (1.0 expected) or aspirational (0.7 is a good result).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Commitment {
    #[default]
    Committed,
    Aspirational,
}

/// The traffic light. Ordered from best to worst, so `max` is the worst.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    OnTrack,
    AtRisk,
    OffTrack,
}

/// What a comment (or a mention) is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// `{"objective": "o1"}`
    Objective(String),
    /// `{"key_result": "k1"}`
    KeyResult(String),
}

/// A parent this objective supports: an objective or a key result, here or in another room.
/// Exactly one of `objective` / `key_result` is set. `room` omitted means this room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AlignRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_result: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Objective {
    pub id: String,
    pub title: String,
    pub description: String,
    pub owner: Option<String>,
    pub team: Option<String>,
    pub kind: ObjectiveKind,
    pub visibility: Visibility,
    pub commitment: Commitment,
    pub order: f64,
    pub archived: bool,
    pub aligned_to: Vec<AlignRef>,
    /// Where a carried-over objective came from (`POST …/carry-over`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried_from: Option<CarriedFrom>,
    /// The retrospective note (复盘) of a closed cycle: what worked, what did not, what next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retro: Option<Retro>,
    pub created_at: Millis,
    pub created_by: Option<String>,
    pub updated_at: Millis,
    pub updated_by: Option<String>,
    /// Derived: ids of its key results (archived ones included), in order.
    pub key_results: Vec<String>,
    /// Derived: weighted mean of its active KRs' progress, 0–100 (0 without active KRs).
    pub progress: f64,
    /// Derived: its worst active KR's status; `None` without active KRs.
    pub status: Option<Status>,
    /// Derived: one of its active KRs is overdue (shown above `status`).
    pub overdue: bool,
    /// Derived, once the cycle is closed: its active KRs' final scores, weighted by their
    /// weights, 0.0–1.0 rounded to 0.01 (`None` while open or without active KRs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

/// A link back to the objective or KR an item was carried over from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CarriedFrom {
    pub room: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_result: Option<String>,
}

/// An objective's retrospective note, written once the cycle is closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Retro {
    /// What worked.
    pub worked: String,
    /// What did not.
    pub did_not: String,
    /// What to do next.
    pub next: String,
    pub by: String,
    pub at: Millis,
}

/// A KR's score set by its owner or an admin, overriding the proposed one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScoreOverride {
    /// 0.0–1.0.
    pub score: f64,
    pub reason: String,
    pub by: String,
    pub at: Millis,
}

/// A KR's score in a closed cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KrScore {
    /// From its progress: progress / 100, clamped to 0–1, rounded to 0.1.
    pub proposed: f64,
    /// The override's score if there is one, else the proposed one.
    #[serde(rename = "final")]
    pub final_score: f64,
}

/// How a key result is measured: `{"kind": "increase", "start": 0, "target": 500, "unit": "users"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Metric {
    /// The value is a percentage, 0–100.
    Percent,
    /// From `start` up to `target` (`target` > `start`).
    Increase {
        start: f64,
        target: Option<f64>,
        #[serde(default)]
        unit: Option<String>,
    },
    /// From `start` down to `target` (`target` < `start`).
    Decrease {
        start: f64,
        target: Option<f64>,
        #[serde(default)]
        unit: Option<String>,
    },
    /// Hold the value at or above `threshold`.
    StayAbove {
        threshold: Option<f64>,
        #[serde(default)]
        unit: Option<String>,
    },
    /// Hold the value at or below `threshold`.
    StayBelow {
        threshold: Option<f64>,
        #[serde(default)]
        unit: Option<String>,
    },
    /// Weighted milestones; a single done / not done KR has one.
    Milestone { milestones: Vec<Milestone> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Milestone {
    pub title: String,
    #[serde(default = "one")]
    pub weight: f64,
    #[serde(default)]
    pub done: bool,
}

fn one() -> f64 {
    1.0
}

/// A change of a KR's metric (its target, usually), kept so history stays explainable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Revision {
    pub at: Millis,
    pub by: String,
    pub old: Metric,
    pub new: Metric,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KeyResult {
    pub id: String,
    pub objective: String,
    pub title: String,
    pub owner: Option<String>,
    pub metric: Metric,
    /// Relative weight in its objective's progress (default 1).
    pub weight: f64,
    /// A check-in is due every `cadence_days` days (default 7; 0 = never due).
    pub cadence_days: u32,
    pub order: f64,
    pub archived: bool,
    pub revisions: Vec<Revision>,
    /// Where a carried-over KR came from (`POST …/carry-over`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried_from: Option<CarriedFrom>,
    /// The owner's or an admin's score with its reason (`kr.score`), kept across a reopen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_override: Option<ScoreOverride>,
    pub created_at: Millis,
    pub created_by: Option<String>,
    pub updated_at: Millis,
    pub updated_by: Option<String>,
    /// Derived: the latest check-in's value, else the metric's `start` (if any).
    pub current: Option<f64>,
    /// Derived: progress as the formula gives it (may be below 0 or above 100).
    pub raw_progress: f64,
    /// Derived: `raw_progress` clamped to 0–100 (what roll-ups and pace use).
    pub progress: f64,
    /// Derived: where progress should be by now, 0–100; `None` without a cycle.
    pub expected_progress: Option<f64>,
    /// Derived: `progress < 0.75 × expected_progress`.
    pub behind_pace: bool,
    /// Derived: the latest check-in's confidence, 0–10.
    pub confidence: Option<u8>,
    /// Derived: from `confidence`; from pace before any confidence.
    pub status: Status,
    /// Derived: active, and no check-in within its cadence. Shown above `status`.
    pub overdue: bool,
    pub last_checkin_at: Option<Millis>,
    /// Derived: when the next check-in is due; `None` if `cadence_days` is 0.
    pub checkin_due_at: Option<Millis>,
    /// Derived, once the cycle is closed: the proposed and the final score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<KrScore>,
}

/// Append-only: a check-in updates its KR's current value and confidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Checkin {
    pub id: String,
    pub key_result: String,
    pub author: String,
    pub at: Millis,
    /// The KR's new current value (for a percent or milestone KR: its percentage).
    pub value: f64,
    /// 0–10; `None` only when a client wrote an invalid one (reported in `problems`).
    pub confidence: Option<u8>,
    pub comment: String,
    pub mentions: Vec<String>,
    /// Milestone KRs: the done flags this check-in set, in milestone order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub milestones: Option<Vec<bool>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Comment {
    pub id: String,
    pub target: Target,
    pub author: String,
    pub at: Millis,
    pub text: String,
    pub mentions: Vec<String>,
    pub reply_to: Option<String>,
}

/// One piece of quality advice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LintFinding {
    pub target: Target,
    pub code: LintCode,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LintCode {
    /// Fewer than 3 active KRs.
    TooFewKrs,
    /// More than 5 active KRs.
    TooManyKrs,
    /// An objective or KR with an empty title.
    EmptyTitle,
    /// An objective title that is only a vague wish.
    VagueObjective,
    /// A number KR without a target (or threshold), a milestone KR without milestones.
    KrNoTarget,
    /// A KR title with no number, and the KR is not a milestone KR.
    KrNotMeasurable,
    /// An increase KR whose target is not above its start, or a decrease KR whose target is
    /// not below it.
    MetricDirection,
}

/// One check-in of a KR, as a point of its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HistoryPoint {
    pub checkin: String,
    pub at: Millis,
    pub value: f64,
    /// 0–100, measured against the metric in force at `at` (revisions taken into account).
    pub progress: f64,
    pub confidence: Option<u8>,
    pub author: String,
}
