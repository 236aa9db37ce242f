//! The REST bodies of the quarter's end and the next one (issue 15): templates and filling a
//! room from one. The review itself ([`crate::okr::review::Review`]) and carry-over
//! ([`crate::okr::carry`]) are domain types, served as they are.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::okr::templates::Template;

/// `GET /api/templates`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TemplateList {
    /// The languages every template is written in (`zh`, `en`).
    pub langs: Vec<String>,
    pub templates: Vec<Template>,
}

/// `POST /api/rooms/{room}/from-template`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FromTemplate {
    /// A template's `name`.
    pub template: String,
    /// `zh` (default) or `en`.
    #[serde(default)]
    pub lang: Option<String>,
}

/// `200` of `POST /api/rooms/{room}/from-template`: what it created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FilledFromTemplate {
    pub room: String,
    pub seq: u64,
    pub template: String,
    pub lang: String,
    /// The room had no cycle: it was set from its id (`2026-Q3` → the third quarter of 2026).
    pub cycle_set: bool,
    pub objectives: Vec<CreatedObjective>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CreatedObjective {
    pub objective: String,
    pub key_results: Vec<String>,
}
