//! Events: what changed in an OKR set, as typed messages.
//!
//! [`diff`] defines them: the events that lead from one read of a set to another. It is pure and
//! its order deterministic: cycle, objectives (in board order), key results, check-ins,
//! comments (each followed by its mentions), reminders, lint. The room does not call it on its
//! hot path — the [`Projection`](super::Projection) derives the same events from what a
//! transaction touched — but the property tests hold the projection to it.
//!
//! A created entry carries all of itself. An update carries only what changed: `changed` lists
//! the stored or derived fields whose value differs, and `fields` their new values (quiet
//! fields included when they moved with a real change), so a dashboard applies it with one
//! `Object.assign` and a keystroke in a title costs the title, not the objective with its KRs.
//! `updated_at`, `updated_by` and `expected_progress` (which moves with the clock alone) never
//! count as a change on their own.
//!
//! Calling [`diff`] on two reads of the same doc at different times reports what time alone
//! changed — a KR becoming overdue (`kr.updated` with `overdue`, and a `reminder` for its owner)
//! or falling behind pace — so the caller can also diff on a timer to send reminders.

use std::collections::{HashMap, HashSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::model::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum Event {
    /// The cycle was set or changed (`None`: removed or unreadable).
    #[serde(rename = "cycle.updated")]
    CycleUpdated { cycle: Option<Cycle> },
    /// An admin closed the cycle (follows its `cycle.updated`): the room takes scores, retros
    /// and comments only; every KR now has a proposed score (`kr.updated` with `score`).
    #[serde(rename = "cycle.closed")]
    CycleClosed { cycle: Cycle },
    /// An admin reopened a closed cycle (follows its `cycle.updated`).
    #[serde(rename = "cycle.reopened")]
    CycleReopened { cycle: Cycle },
    #[serde(rename = "objective.created")]
    ObjectiveCreated { objective: Objective },
    /// Fields of an objective changed: `fields` holds their new values.
    #[serde(rename = "objective.updated")]
    ObjectiveUpdated {
        objective: String,
        changed: Vec<String>,
        fields: Patch,
    },
    /// The objective was archived; `fields` as for `objective.updated` (`archived` among them).
    #[serde(rename = "objective.archived")]
    ObjectiveArchived {
        objective: String,
        changed: Vec<String>,
        fields: Patch,
    },
    /// The entry disappeared (deleted by a Yjs client, or no longer readable).
    #[serde(rename = "objective.removed")]
    ObjectiveRemoved { objective: String },
    #[serde(rename = "kr.created")]
    KrCreated { key_result: KeyResult },
    /// Fields of a KR changed: `fields` holds their new values. `objective` is the KR's
    /// objective (after the change, if it moved).
    #[serde(rename = "kr.updated")]
    KrUpdated {
        key_result: String,
        objective: String,
        changed: Vec<String>,
        fields: Patch,
    },
    /// The KR was archived; `fields` as for `kr.updated` (`archived` among them).
    #[serde(rename = "kr.archived")]
    KrArchived {
        key_result: String,
        objective: String,
        changed: Vec<String>,
        fields: Patch,
    },
    #[serde(rename = "kr.removed")]
    KrRemoved {
        key_result: String,
        objective: String,
    },
    /// A KR's score was overridden, changed or its override removed (follows its
    /// `kr.updated`): `score` is its proposed and final score now.
    #[serde(rename = "kr.scored")]
    KrScored {
        key_result: String,
        objective: String,
        score: Option<KrScore>,
        score_override: Option<ScoreOverride>,
    },
    /// An objective's retrospective note was written or changed (follows its
    /// `objective.updated`).
    #[serde(rename = "objective.retro")]
    ObjectiveRetro {
        objective: String,
        retro: Option<Retro>,
    },
    #[serde(rename = "checkin.created")]
    CheckinCreated { checkin: Checkin },
    #[serde(rename = "comment.created")]
    CommentCreated { comment: Comment },
    /// `user` was mentioned by `author` in a check-in or comment (`source`, written at
    /// `mentioned_at`) about `target`. Not named `by` / `at`: those are the envelope's
    /// (the `EventMessage` of `protocol::live`), and a JSON object has each key once.
    #[serde(rename = "mention")]
    Mention {
        user: String,
        author: String,
        mentioned_at: Millis,
        source: MentionSource,
        target: Target,
    },
    /// A KR just became overdue: its owner should check in.
    #[serde(rename = "reminder")]
    Reminder {
        key_result: String,
        objective: String,
        owner: Option<String>,
        due_at: Millis,
    },
    /// The quality lint changed; the full new list.
    #[serde(rename = "lint.changed")]
    LintChanged { lint: Vec<LintFinding> },
}

/// The new values of an entry's changed fields, by field name, each as in [`Objective`] or
/// [`KeyResult`].
pub type Patch = serde_json::Map<String, serde_json::Value>;

/// Where a mention was made: `{"checkin": "ci-…"}` or `{"comment": "cm-…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MentionSource {
    Checkin(String),
    Comment(String),
}

/// Fields whose change alone is not worth an event.
const QUIET: &[&str] = &["updated_at", "updated_by", "expected_progress"];

/// The events that lead from `before` to `after`.
pub fn diff(before: &OkrSet, after: &OkrSet) -> Vec<Event> {
    let mut out = Vec::new();
    cycle_changed(&mut out, before.cycle.as_ref(), after.cycle.as_ref());

    let old: HashMap<&str, &Objective> = before
        .objectives
        .iter()
        .map(|o| (o.id.as_str(), o))
        .collect();
    for o in &after.objectives {
        match old.get(o.id.as_str()) {
            None => out.push(Event::ObjectiveCreated {
                objective: o.clone(),
            }),
            Some(prev) => objective_events(&mut out, prev, o),
        }
    }
    let now: HashSet<&str> = after.objectives.iter().map(|o| o.id.as_str()).collect();
    for o in before
        .objectives
        .iter()
        .filter(|o| !now.contains(o.id.as_str()))
    {
        out.push(Event::ObjectiveRemoved {
            objective: o.id.clone(),
        });
    }

    let old: HashMap<&str, &KeyResult> = before
        .key_results
        .iter()
        .map(|k| (k.id.as_str(), k))
        .collect();
    let mut reminders = Vec::new();
    for k in &after.key_results {
        match old.get(k.id.as_str()) {
            None => out.push(Event::KrCreated {
                key_result: k.clone(),
            }),
            Some(prev) => {
                kr_events(&mut out, prev, k);
                reminders.extend(reminder(prev, k, after.as_of));
            }
        }
    }
    let now: HashSet<&str> = after.key_results.iter().map(|k| k.id.as_str()).collect();
    for k in before
        .key_results
        .iter()
        .filter(|k| !now.contains(k.id.as_str()))
    {
        out.push(Event::KrRemoved {
            key_result: k.id.clone(),
            objective: k.objective.clone(),
        });
    }

    let seen: HashSet<&str> = before.checkins.iter().map(|c| c.id.as_str()).collect();
    for c in after
        .checkins
        .iter()
        .filter(|c| !seen.contains(c.id.as_str()))
    {
        checkin_created(&mut out, c);
    }
    let seen: HashSet<&str> = before.comments.iter().map(|c| c.id.as_str()).collect();
    for c in after
        .comments
        .iter()
        .filter(|c| !seen.contains(c.id.as_str()))
    {
        comment_created(&mut out, c);
    }

    out.append(&mut reminders);
    if before.lint != after.lint {
        out.push(Event::LintChanged {
            lint: after.lint.clone(),
        });
    }
    out
}

/// `cycle.updated` when the cycle changed, followed by `cycle.closed` or `cycle.reopened`
/// when that is the change.
pub(crate) fn cycle_changed(out: &mut Vec<Event>, before: Option<&Cycle>, after: Option<&Cycle>) {
    if before == after {
        return;
    }
    out.push(Event::CycleUpdated {
        cycle: after.cloned(),
    });
    let was = before.is_some_and(|c| c.closed);
    match after {
        Some(c) if c.closed && !was => out.push(Event::CycleClosed { cycle: c.clone() }),
        Some(c) if !c.closed && was => out.push(Event::CycleReopened { cycle: c.clone() }),
        _ => {}
    }
}

/// The events of an objective that was there before and is still there: its update, then
/// `objective.retro` if its note changed.
pub(crate) fn objective_events(out: &mut Vec<Event>, before: &Objective, after: &Objective) {
    out.extend(objective_changed(before, after));
    if before.retro != after.retro {
        out.push(Event::ObjectiveRetro {
            objective: after.id.clone(),
            retro: after.retro.clone(),
        });
    }
}

/// The events of a KR that was there before and is still there: its update, then `kr.scored`
/// if its score override changed.
pub(crate) fn kr_events(out: &mut Vec<Event>, before: &KeyResult, after: &KeyResult) {
    out.extend(kr_changed(before, after));
    if before.score_override != after.score_override {
        out.push(Event::KrScored {
            key_result: after.id.clone(),
            objective: after.objective.clone(),
            score: after.score.clone(),
            score_override: after.score_override.clone(),
        });
    }
}

/// The event for an objective that was there before and is still there, if anything changed.
pub(crate) fn objective_changed(before: &Objective, after: &Objective) -> Option<Event> {
    let (changed, fields) = patch(before, after)?;
    let objective = after.id.clone();
    Some(if after.archived && !before.archived {
        Event::ObjectiveArchived {
            objective,
            changed,
            fields,
        }
    } else {
        Event::ObjectiveUpdated {
            objective,
            changed,
            fields,
        }
    })
}

/// The event for a KR that was there before and is still there, if anything changed.
pub(crate) fn kr_changed(before: &KeyResult, after: &KeyResult) -> Option<Event> {
    let (changed, fields) = patch(before, after)?;
    let (key_result, objective) = (after.id.clone(), after.objective.clone());
    Some(if after.archived && !before.archived {
        Event::KrArchived {
            key_result,
            objective,
            changed,
            fields,
        }
    } else {
        Event::KrUpdated {
            key_result,
            objective,
            changed,
            fields,
        }
    })
}

/// A reminder when a KR just became overdue (`now`: the time of the read that found it).
pub(crate) fn reminder(before: &KeyResult, after: &KeyResult, now: Millis) -> Option<Event> {
    (after.overdue && !before.overdue).then(|| Event::Reminder {
        key_result: after.id.clone(),
        objective: after.objective.clone(),
        owner: after.owner.clone(),
        due_at: after.checkin_due_at.unwrap_or(now),
    })
}

/// `checkin.created` and its mentions.
pub(crate) fn checkin_created(out: &mut Vec<Event>, c: &Checkin) {
    out.push(Event::CheckinCreated { checkin: c.clone() });
    let target = Target::KeyResult(c.key_result.clone());
    mentions(
        out,
        &c.mentions,
        &c.author,
        c.at,
        MentionSource::Checkin(c.id.clone()),
        &target,
    );
}

/// `comment.created` and its mentions.
pub(crate) fn comment_created(out: &mut Vec<Event>, c: &Comment) {
    out.push(Event::CommentCreated { comment: c.clone() });
    mentions(
        out,
        &c.mentions,
        &c.author,
        c.at,
        MentionSource::Comment(c.id.clone()),
        &c.target,
    );
}

fn mentions(
    out: &mut Vec<Event>,
    users: &[String],
    by: &str,
    at: Millis,
    source: MentionSource,
    target: &Target,
) {
    for user in users {
        out.push(Event::Mention {
            user: user.clone(),
            author: by.to_owned(),
            mentioned_at: at,
            source: source.clone(),
            target: target.clone(),
        });
    }
}

/// The fields that differ (sorted; quiet ones left out) and the new values of every field that
/// differs, quiet ones included: they travel with a real change. `None` when nothing but quiet
/// fields changed.
fn patch<T: Fielded>(before: &T, after: &T) -> Option<(Vec<String>, Patch)> {
    let mut diff = FieldDiff::default();
    after.compare(before, &mut diff);
    if diff.changed.is_empty() {
        return None;
    }
    diff.changed.sort_unstable();
    Some((diff.changed, diff.fields))
}

/// The differing fields of two values, as [`patch`] reports them.
#[derive(Default)]
struct FieldDiff {
    changed: Vec<String>,
    fields: Patch,
}

impl FieldDiff {
    /// Compares one field; only a differing one is serialised.
    fn field<V: PartialEq + Serialize>(&mut self, name: &str, before: &V, after: &V) {
        if before == after {
            return;
        }
        if !QUIET.contains(&name) {
            self.changed.push(name.to_owned());
        }
        // Serialising a model field cannot fail (no maps with non-string keys).
        let value = serde_json::to_value(after).unwrap_or(serde_json::Value::Null);
        self.fields.insert(name.to_owned(), value);
    }
}

/// An entry whose fields can be compared one by one, by their JSON names. Each impl destructures
/// the whole struct, so a field added to the model without being compared does not compile.
trait Fielded {
    fn compare(&self, before: &Self, d: &mut FieldDiff);
}

impl Fielded for Objective {
    fn compare(&self, b: &Self, d: &mut FieldDiff) {
        let Objective {
            id,
            title,
            description,
            owner,
            team,
            kind,
            visibility,
            commitment,
            order,
            archived,
            aligned_to,
            carried_from,
            retro,
            created_at,
            created_by,
            updated_at,
            updated_by,
            key_results,
            progress,
            status,
            overdue,
            score,
        } = self;
        d.field("id", &b.id, id);
        d.field("title", &b.title, title);
        d.field("description", &b.description, description);
        d.field("owner", &b.owner, owner);
        d.field("team", &b.team, team);
        d.field("kind", &b.kind, kind);
        d.field("visibility", &b.visibility, visibility);
        d.field("commitment", &b.commitment, commitment);
        d.field("order", &b.order, order);
        d.field("archived", &b.archived, archived);
        d.field("aligned_to", &b.aligned_to, aligned_to);
        d.field("carried_from", &b.carried_from, carried_from);
        d.field("retro", &b.retro, retro);
        d.field("created_at", &b.created_at, created_at);
        d.field("created_by", &b.created_by, created_by);
        d.field("updated_at", &b.updated_at, updated_at);
        d.field("updated_by", &b.updated_by, updated_by);
        d.field("key_results", &b.key_results, key_results);
        d.field("progress", &b.progress, progress);
        d.field("status", &b.status, status);
        d.field("overdue", &b.overdue, overdue);
        d.field("score", &b.score, score);
    }
}

impl Fielded for KeyResult {
    fn compare(&self, b: &Self, d: &mut FieldDiff) {
        let KeyResult {
            id,
            objective,
            title,
            owner,
            metric,
            weight,
            cadence_days,
            order,
            archived,
            revisions,
            carried_from,
            score_override,
            created_at,
            created_by,
            updated_at,
            updated_by,
            current,
            raw_progress,
            progress,
            expected_progress,
            behind_pace,
            confidence,
            status,
            overdue,
            last_checkin_at,
            checkin_due_at,
            score,
        } = self;
        d.field("id", &b.id, id);
        d.field("objective", &b.objective, objective);
        d.field("title", &b.title, title);
        d.field("owner", &b.owner, owner);
        d.field("metric", &b.metric, metric);
        d.field("weight", &b.weight, weight);
        d.field("cadence_days", &b.cadence_days, cadence_days);
        d.field("order", &b.order, order);
        d.field("archived", &b.archived, archived);
        d.field("revisions", &b.revisions, revisions);
        d.field("carried_from", &b.carried_from, carried_from);
        d.field("score_override", &b.score_override, score_override);
        d.field("created_at", &b.created_at, created_at);
        d.field("created_by", &b.created_by, created_by);
        d.field("updated_at", &b.updated_at, updated_at);
        d.field("updated_by", &b.updated_by, updated_by);
        d.field("current", &b.current, current);
        d.field("raw_progress", &b.raw_progress, raw_progress);
        d.field("progress", &b.progress, progress);
        d.field("expected_progress", &b.expected_progress, expected_progress);
        d.field("behind_pace", &b.behind_pace, behind_pace);
        d.field("confidence", &b.confidence, confidence);
        d.field("status", &b.status, status);
        d.field("overdue", &b.overdue, overdue);
        d.field("last_checkin_at", &b.last_checkin_at, last_checkin_at);
        d.field("checkin_due_at", &b.checkin_due_at, checkin_due_at);
        d.field("score", &b.score, score);
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! The field comparison, by way of JSON: what [`super::patch`] must agree with.
    use serde::Serialize;

    use super::Patch;

    pub fn patch_by_json<T: Serialize>(before: &T, after: &T) -> Option<(Vec<String>, Patch)> {
        let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
            (serde_json::to_value(before), serde_json::to_value(after))
        else {
            return None;
        };
        let mut changed = Vec::new();
        let mut fields = Patch::new();
        for (k, v) in b {
            if a.get(k.as_str()) == Some(&v) {
                continue;
            }
            if !super::QUIET.contains(&k.as_str()) {
                changed.push(k.clone());
            }
            fields.insert(k, v);
        }
        changed.sort();
        (!changed.is_empty()).then_some((changed, fields))
    }

    /// [`super::patch`] for objectives and KRs, for tests.
    pub fn objective_patch(
        before: &crate::okr::Objective,
        after: &crate::okr::Objective,
    ) -> Option<(Vec<String>, Patch)> {
        super::patch(before, after)
    }

    pub fn kr_patch(
        before: &crate::okr::KeyResult,
        after: &crate::okr::KeyResult,
    ) -> Option<(Vec<String>, Patch)> {
        super::patch(before, after)
    }
}
