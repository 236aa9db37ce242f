//! Events: what changed between two reads of an OKR set, as typed messages.
//!
//! Events are derived by comparing two [`OkrSet`]s, not by interpreting yrs deltas, so an edit
//! by a plain Yjs client on `/sync` and a JSON command produce the same events, and a burst of
//! updates can be diffed once. [`diff`] is pure and its order deterministic: cycle, objectives
//! (in board order), key results, check-ins, comments (each followed by its mentions),
//! reminders, lint.
//!
//! Each event carries the new state of what it is about (the whole objective or KR, derived
//! fields included), so a dashboard applies it without refetching. `changed` lists the stored
//! or derived fields whose value differs; `updated_at`, `updated_by` and `expected_progress`
//! (which moves with the clock alone) never count as a change on their own.
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
    #[serde(rename = "objective.created")]
    ObjectiveCreated { objective: Objective },
    #[serde(rename = "objective.updated")]
    ObjectiveUpdated {
        objective: Objective,
        changed: Vec<String>,
    },
    #[serde(rename = "objective.archived")]
    ObjectiveArchived { objective: Objective },
    /// The entry disappeared (deleted by a Yjs client, or no longer readable).
    #[serde(rename = "objective.removed")]
    ObjectiveRemoved { objective: String },
    #[serde(rename = "kr.created")]
    KrCreated { key_result: KeyResult },
    #[serde(rename = "kr.updated")]
    KrUpdated {
        key_result: KeyResult,
        changed: Vec<String>,
    },
    #[serde(rename = "kr.archived")]
    KrArchived { key_result: KeyResult },
    #[serde(rename = "kr.removed")]
    KrRemoved {
        key_result: String,
        objective: String,
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
    if before.cycle != after.cycle {
        out.push(Event::CycleUpdated {
            cycle: after.cycle.clone(),
        });
    }

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
            Some(prev) if o.archived && !prev.archived => out.push(Event::ObjectiveArchived {
                objective: o.clone(),
            }),
            Some(prev) => {
                let changed = changed(*prev, o);
                if !changed.is_empty() {
                    out.push(Event::ObjectiveUpdated {
                        objective: o.clone(),
                        changed,
                    });
                }
            }
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
            Some(prev) if k.archived && !prev.archived => out.push(Event::KrArchived {
                key_result: k.clone(),
            }),
            Some(prev) => {
                let changed = changed(*prev, k);
                if !changed.is_empty() {
                    out.push(Event::KrUpdated {
                        key_result: k.clone(),
                        changed,
                    });
                }
                if k.overdue && !prev.overdue {
                    reminders.push(Event::Reminder {
                        key_result: k.id.clone(),
                        objective: k.objective.clone(),
                        owner: k.owner.clone(),
                        due_at: k.checkin_due_at.unwrap_or(after.as_of),
                    });
                }
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
        out.push(Event::CheckinCreated { checkin: c.clone() });
        let target = Target::KeyResult(c.key_result.clone());
        mentions(
            &mut out,
            &c.mentions,
            &c.author,
            c.at,
            MentionSource::Checkin(c.id.clone()),
            &target,
        );
    }
    let seen: HashSet<&str> = before.comments.iter().map(|c| c.id.as_str()).collect();
    for c in after
        .comments
        .iter()
        .filter(|c| !seen.contains(c.id.as_str()))
    {
        out.push(Event::CommentCreated { comment: c.clone() });
        mentions(
            &mut out,
            &c.mentions,
            &c.author,
            c.at,
            MentionSource::Comment(c.id.clone()),
            &c.target,
        );
    }

    out.append(&mut reminders);
    if before.lint != after.lint {
        out.push(Event::LintChanged {
            lint: after.lint.clone(),
        });
    }
    out
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

/// The names of the fields that differ, sorted.
fn changed<T: Serialize>(before: &T, after: &T) -> Vec<String> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return Vec::new();
    };
    let mut names: Vec<String> = b
        .iter()
        .filter(|(k, v)| !QUIET.contains(&k.as_str()) && a.get(k.as_str()) != Some(v))
        .map(|(k, _)| k.clone())
        .collect();
    names.sort();
    names
}
