//! Names in the doc: the root maps, the field names, and the limits commands enforce.
//!
//! These strings are the contract with every Yjs client (`proto/DOCUMENT.md` lists them for JS);
//! the reader and the commands both use these constants, so the two can never drift apart.

/// `Y.Map` of the cycle's fields: `id`, `kind`, `starts`, `ends`.
pub const CYCLE: &str = "cycle";
/// `Y.Map`: objective id → `Y.Map` of its fields.
pub const OBJECTIVES: &str = "objectives";
/// `Y.Map`: key result id → `Y.Map` of its fields.
pub const KEY_RESULTS: &str = "key_results";
/// `Y.Map`: check-in id → plain object (append-only).
pub const CHECKINS: &str = "checkins";
/// `Y.Map`: comment id → plain object (append-only).
pub const COMMENTS: &str = "comments";

/// The roots of an OKR set, in the order the reader lists their problems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Root {
    Cycle,
    Objectives,
    KeyResults,
    Checkins,
    Comments,
}

impl Root {
    pub const ALL: [Root; 5] = [
        Root::Cycle,
        Root::Objectives,
        Root::KeyResults,
        Root::Checkins,
        Root::Comments,
    ];

    /// The root map's name in the doc.
    pub fn name(self) -> &'static str {
        match self {
            Root::Cycle => CYCLE,
            Root::Objectives => OBJECTIVES,
            Root::KeyResults => KEY_RESULTS,
            Root::Checkins => CHECKINS,
            Root::Comments => COMMENTS,
        }
    }

    /// Whether its entries must be `Y.Map`s (edited in place) rather than plain objects.
    pub fn shared(self) -> bool {
        matches!(self, Root::Objectives | Root::KeyResults)
    }
}

/// Every root of an OKR set. Observe these (`observe_deep`) to know when to re-read; a change
/// anywhere else in the doc does not touch the OKR set.
pub const ROOTS: &[&str] = &[CYCLE, OBJECTIVES, KEY_RESULTS, CHECKINS, COMMENTS];

/// Field names, shared by objectives, key results, check-ins and comments where they coincide.
pub mod field {
    pub const ID: &str = "id";
    pub const KIND: &str = "kind";
    pub const STARTS: &str = "starts";
    pub const ENDS: &str = "ends";
    pub const TITLE: &str = "title";
    pub const DESCRIPTION: &str = "description";
    pub const OWNER: &str = "owner";
    pub const TEAM: &str = "team";
    pub const VISIBILITY: &str = "visibility";
    pub const COMMITMENT: &str = "commitment";
    pub const ORDER: &str = "order";
    pub const STATUS: &str = "status";
    pub const ALIGNED_TO: &str = "aligned_to";
    pub const CREATED_AT: &str = "created_at";
    pub const CREATED_BY: &str = "created_by";
    pub const UPDATED_AT: &str = "updated_at";
    pub const UPDATED_BY: &str = "updated_by";
    pub const OBJECTIVE: &str = "objective";
    pub const KEY_RESULT: &str = "key_result";
    pub const ROOM: &str = "room";
    pub const METRIC: &str = "metric";
    pub const WEIGHT: &str = "weight";
    pub const CADENCE_DAYS: &str = "cadence_days";
    pub const REVISIONS: &str = "revisions";
    pub const START: &str = "start";
    pub const TARGET: &str = "target";
    pub const UNIT: &str = "unit";
    pub const THRESHOLD: &str = "threshold";
    pub const MILESTONES: &str = "milestones";
    pub const DONE: &str = "done";
    pub const AT: &str = "at";
    pub const BY: &str = "by";
    pub const OLD: &str = "old";
    pub const NEW: &str = "new";
    pub const WHY: &str = "why";
    pub const AUTHOR: &str = "author";
    pub const VALUE: &str = "value";
    pub const CONFIDENCE: &str = "confidence";
    pub const COMMENT: &str = "comment";
    pub const MENTIONS: &str = "mentions";
    pub const TEXT: &str = "text";
    pub const REPLY_TO: &str = "reply_to";
    pub const CLOSED_AT: &str = "closed_at";
    pub const CLOSED_BY: &str = "closed_by";
    pub const CARRIED_FROM: &str = "carried_from";
    pub const RETRO: &str = "retro";
    pub const WORKED: &str = "worked";
    pub const DID_NOT: &str = "did_not";
    pub const NEXT: &str = "next";
    pub const SCORE_OVERRIDE: &str = "score_override";
    pub const SCORE: &str = "score";
    pub const REASON: &str = "reason";
}

/// `status` of an objective or KR in the doc (its lifecycle; the traffic light is derived).
pub const ACTIVE: &str = "active";
pub const ARCHIVED: &str = "archived";

/// What commands accept. Counted in Unicode scalar values (characters), not bytes.
pub mod limits {
    /// Ids (of entities, users, rooms, cycles).
    pub const ID_MAX: usize = 64;
    pub const TITLE_MAX: usize = 200;
    pub const DESCRIPTION_MAX: usize = 10_000;
    /// A comment's text, a check-in's comment.
    pub const COMMENT_MAX: usize = 4_000;
    /// A revision's `why`.
    pub const WHY_MAX: usize = 1_000;
    pub const UNIT_MAX: usize = 20;
    pub const TEAM_MAX: usize = 64;
    pub const MENTIONS_MAX: usize = 20;
    pub const ALIGNED_TO_MAX: usize = 10;
    pub const MILESTONES_MAX: usize = 20;
    /// Check-in cadence, in days (0 = no check-ins due).
    pub const CADENCE_DAYS_MAX: u32 = 366;
    /// Weights of KRs and milestones: 0 ..= this.
    pub const WEIGHT_MAX: f64 = 1_000.0;
    /// Absolute value of any number (start, target, threshold, check-in value).
    pub const NUMBER_MAX: f64 = 1e15;
    pub const CONFIDENCE_MAX: u8 = 10;
    /// A score override's reason.
    pub const REASON_MAX: usize = 1_000;
    /// Each part of a retrospective note.
    pub const RETRO_MAX: usize = 4_000;
}

/// Check-in cadence when a KR does not say.
pub const DEFAULT_CADENCE_DAYS: u32 = 7;
/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;
