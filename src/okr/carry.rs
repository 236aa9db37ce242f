//! Carry-over: what starting the next cycle's room from this one creates. [`plan`] picks the
//! unfinished objectives and KRs (or the ones asked for), copies them with their metrics
//! restarted from where they stand (`start` = the current value, targets editable) and a link
//! back (`carried_from`), and skips what the target room already holds from an earlier
//! carry-over. The caller applies the commands in one transaction of the target room. Pure.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::commands::{validate, CycleSet, KrCreate, ObjectiveCreate};
use super::commands::{CommandError, ErrorCode};
use super::model::*;
use super::rules;
use super::schema::limits;

/// `POST /api/rooms/{room}/carry-over`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CarryOver {
    /// The next cycle's room, e.g. `acme.sales.2026-Q4`.
    pub to: String,
    /// The objectives to carry (default: every active one not finished — progress under 100
    /// or, in a closed cycle, a final score under 1.0).
    #[serde(default)]
    pub objectives: Option<Vec<String>>,
    /// New targets (thresholds for stay-above / stay-below KRs) by the carried KR's id here.
    #[serde(default)]
    pub targets: BTreeMap<String, f64>,
}

/// What a carry-over will create.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The cycle to set in the target room (it has none yet).
    pub cycle: Option<CycleSet>,
    pub objectives: Vec<PlannedObjective>,
    pub skipped: Vec<Skipped>,
}

/// One objective to carry: created, or (already carried earlier) `existing`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedObjective {
    pub from: String,
    pub existing: Option<String>,
    pub create: ObjectiveCreate,
    /// Its KRs to create (`objective` is filled in once the objective exists).
    pub key_results: Vec<(String, KrCreate)>,
}

/// `200` of a carry-over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CarryResult {
    /// The target room.
    pub room: String,
    pub seq: u64,
    /// The target room had no cycle: it was set to the period after this one.
    pub cycle_set: bool,
    pub objectives: Vec<CarriedObjective>,
    /// What was already carried into the target room before: left as it is.
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CarriedObjective {
    /// Its id in the target room.
    pub objective: String,
    /// Its id here.
    pub from: String,
    /// False: it was carried before, and only new KRs were added to it.
    pub created: bool,
    pub key_results: Vec<CarriedKr>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CarriedKr {
    pub key_result: String,
    pub from: String,
}

/// An item carried into the target room before, skipped this time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Skipped {
    /// `{objective}` or `{key_result}` here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_result: Option<String>,
    /// What it became in the target room.
    pub into: String,
    /// `already_carried`.
    pub reason: String,
}

fn unfinished_kr(k: &KeyResult) -> bool {
    !k.archived && (k.progress < 100.0 || k.score.as_ref().is_some_and(|s| s.final_score < 1.0))
}

fn unfinished_objective(o: &Objective) -> bool {
    o.progress < 100.0 || o.score.is_some_and(|s| s < 1.0)
}

/// Plans carrying `request`'s selection from `source` (room `source_room`) into `target`
/// (room `request.to`).
pub fn plan(
    source_room: &str,
    source: &OkrSet,
    target: &OkrSet,
    request: &CarryOver,
) -> Result<Plan, CommandError> {
    let err = |code, field: &str, message: String| CommandError::new(code, field, message);
    let selected: Vec<&Objective> = match &request.objectives {
        Some(ids) => {
            let mut out = Vec::new();
            for (i, id) in ids.iter().enumerate() {
                let field = format!("objectives[{i}]");
                match source.objectives.iter().find(|o| o.id == *id) {
                    Some(o) if o.archived => {
                        let message = format!("objective {id:?} is archived");
                        return Err(err(ErrorCode::Archived, &field, message));
                    }
                    Some(o) => {
                        if !out.iter().any(|p: &&Objective| p.id == o.id) {
                            out.push(o);
                        }
                    }
                    None => {
                        let message = format!("no objective {id:?}");
                        return Err(err(ErrorCode::NotFound, &field, message));
                    }
                }
            }
            out
        }
        None => source
            .objectives
            .iter()
            .filter(|o| !o.archived && unfinished_objective(o))
            .collect(),
    };
    let carried_objective = |id: &str| {
        target.objectives.iter().find(|o| {
            o.carried_from
                .as_ref()
                .is_some_and(|c| c.room == source_room && c.objective.as_deref() == Some(id))
        })
    };
    let carried_kr = |id: &str| {
        target.key_results.iter().find(|k| {
            k.carried_from
                .as_ref()
                .is_some_and(|c| c.room == source_room && c.key_result.as_deref() == Some(id))
        })
    };
    let team_room = !request.to.split('.').nth(1).unwrap_or("").starts_with('~');

    let mut used_targets = 0;
    let mut objectives = Vec::new();
    let mut skipped = Vec::new();
    for o in selected {
        let existing = carried_objective(&o.id).map(|t| t.id.clone());
        let mut key_results = Vec::new();
        for k in source
            .key_results
            .iter()
            .filter(|k| k.objective == o.id && unfinished_kr(k))
        {
            let new_target = request.targets.get(&k.id).copied();
            used_targets += usize::from(new_target.is_some());
            if let Some(t) = carried_kr(&k.id) {
                skipped.push(Skipped {
                    objective: None,
                    key_result: Some(k.id.clone()),
                    into: t.id.clone(),
                    reason: "already_carried".into(),
                });
                continue;
            }
            let field = format!("targets.{}", k.id);
            let metric = restarted(k, new_target, &field)?;
            let metric = validate::metric(&metric).map_err(|mut e| {
                e.field = Some(field.clone());
                e
            })?;
            let title = validate::text("title", &k.title, limits::TITLE_MAX, true)?;
            key_results.push((
                k.id.clone(),
                KrCreate {
                    objective: String::new(),
                    title,
                    owner: k.owner.clone(),
                    metric,
                    weight: Some(k.weight),
                    cadence_days: Some(k.cadence_days),
                    carried_from: Some(CarriedFrom {
                        room: source_room.to_owned(),
                        objective: None,
                        key_result: Some(k.id.clone()),
                    }),
                },
            ));
        }
        if let Some(into) = &existing {
            skipped.push(Skipped {
                objective: Some(o.id.clone()),
                key_result: None,
                into: into.clone(),
                reason: "already_carried".into(),
            });
            if key_results.is_empty() {
                continue;
            }
        }
        let visibility = match o.visibility {
            Visibility::Private if team_room => Visibility::Team,
            v => v,
        };
        objectives.push(PlannedObjective {
            from: o.id.clone(),
            existing,
            create: ObjectiveCreate {
                title: validate::text("title", &o.title, limits::TITLE_MAX, true)?,
                description: Some(o.description.clone()),
                owner: o.owner.clone(),
                team: o.team.clone(),
                kind: Some(o.kind),
                visibility: Some(visibility),
                commitment: Some(o.commitment),
                aligned_to: Vec::new(),
                carried_from: Some(CarriedFrom {
                    room: source_room.to_owned(),
                    objective: Some(o.id.clone()),
                    key_result: None,
                }),
            },
            key_results,
        });
    }
    if used_targets != request.targets.len() {
        let unknown = request
            .targets
            .keys()
            .find(|id| {
                !source.key_results.iter().any(|k| {
                    k.id == **id
                        && unfinished_kr(k)
                        && objectives.iter().any(|o| o.from == k.objective)
                })
            })
            .cloned()
            .unwrap_or_default();
        let message = format!("{unknown:?} is not a key result being carried");
        return Err(err(
            ErrorCode::InvalidValue,
            &format!("targets.{unknown}"),
            message,
        ));
    }
    let cycle = match (&target.cycle, &source.cycle) {
        (Some(_), _) => None,
        (None, Some(c)) => rules::next_period(c).map(|(starts, ends)| CycleSet {
            cycle: None,
            kind: c.kind,
            starts,
            ends,
        }),
        (None, None) => {
            let id = request.to.rsplit('.').next().unwrap_or("");
            rules::period_of(id).map(|(kind, starts, ends)| CycleSet {
                cycle: None,
                kind,
                starts,
                ends,
            })
        }
    };
    Ok(Plan {
        cycle,
        objectives,
        skipped,
    })
}

/// KR `k`'s metric restarted from where it stands, with `target` if given.
fn restarted(k: &KeyResult, target: Option<f64>, field: &str) -> Result<Metric, CommandError> {
    let fixed = |what: &str| {
        CommandError::new(
            ErrorCode::InvalidValue,
            field,
            format!("a {what} KR has no target to change"),
        )
    };
    Ok(match &k.metric {
        Metric::Increase {
            start,
            target: t,
            unit,
        } => Metric::Increase {
            start: k.current.unwrap_or(*start),
            target: target.or(*t),
            unit: unit.clone(),
        },
        Metric::Decrease {
            start,
            target: t,
            unit,
        } => Metric::Decrease {
            start: k.current.unwrap_or(*start),
            target: target.or(*t),
            unit: unit.clone(),
        },
        Metric::StayAbove { threshold, unit } => Metric::StayAbove {
            threshold: target.or(*threshold),
            unit: unit.clone(),
        },
        Metric::StayBelow { threshold, unit } => Metric::StayBelow {
            threshold: target.or(*threshold),
            unit: unit.clone(),
        },
        Metric::Percent if target.is_some() => return Err(fixed("percent")),
        Metric::Percent => Metric::Percent,
        Metric::Milestone { .. } if target.is_some() => return Err(fixed("milestone")),
        Metric::Milestone { milestones } => {
            let open: Vec<Milestone> = milestones.iter().filter(|m| !m.done).cloned().collect();
            let kept = if open.is_empty() {
                milestones.clone()
            } else {
                open
            };
            Metric::Milestone {
                milestones: kept
                    .into_iter()
                    .map(|m| Milestone { done: false, ..m })
                    .collect(),
            }
        }
    })
}
