//! The document's rules for writers who bypass commands: a Yjs client on `/sync` edits the doc
//! directly, so what its update changed is checked here against the set as it was before.
//!
//! JSON commands keep these rules by construction; a Yjs update is held to the same ones:
//!
//! - check-ins and comments are append-only: an existing one is never changed, and removed
//!   only by an admin;
//! - a new check-in or comment is readable, its `author` is the writer and its `at` the
//!   server's clock, give or take [`SKEW_MS`];
//! - removing an objective or a key result, archiving or restoring one, and changing the cycle
//!   are an admin's acts (so deleting every root's entries in one update is one too);
//! - no objective becomes `private` in a team room: a private objective lives in its owner's
//!   personal room (`{org}.~{user}.{cycle}`), whose doc only its owner and admins sync;
//! - once the cycle is closed (and the update does not reopen it) nothing changes but KR score
//!   overrides (the KR's owner's or an admin's, written as the writer), objectives'
//!   retrospective notes (written as the writer) and new comments — no title keystroke, no
//!   check-in, no new or removed entry; while it is open, no score or note is written.
//!
//! The check reads only what the update touched ([`Touched`]); a keystroke in a title
//! ([`Scope::Text`]) needs no check at all. Pure: the room decides what to do with a
//! [`Violation`] (undo the update and close the connection).

use yrs::ReadTxn;

use super::model::{Cycle, KeyResult, Millis, Objective, Status, Visibility};
use super::projection::Projection;
use super::read::{self, parse_entry};
use super::schema::Root;
use super::touched::{Scope, Touched};

/// How far a new check-in's or comment's `at` may be from the server's clock (ms).
pub const SKEW_MS: Millis = 2 * 60 * 1000;

/// Who wrote an update, as far as the rules care.
#[derive(Debug, Clone, Copy)]
pub struct Writer<'a> {
    /// The writer's user id; `None` for an anonymous writer of an open server (loopback only,
    /// for trying things out and for the load generator, which seeds a quarter of history):
    /// then a new entry's author and time are not checked — there is nobody to hold them to.
    pub user: Option<&'a str>,
    /// Whether the writer is an admin of the room.
    pub admin: bool,
    /// Whether the room is a team room (not a personal one).
    pub team_room: bool,
}

/// Why an update breaks the rules: the reason a client is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Violation(pub String);

fn refuse<T>(message: impl Into<String>) -> Result<T, Violation> {
    Err(Violation(message.into()))
}

/// Checks what an update touched (`touched`, with `txn` reading the doc after it) against the
/// set before it (`before`), for `writer`, at server time `now`.
pub fn check<T: ReadTxn>(
    txn: &T,
    before: &Projection,
    touched: &Touched,
    writer: &Writer<'_>,
    now: Millis,
) -> Result<(), Violation> {
    if touched.cycle && !writer.admin {
        return refuse("only an admin changes the cycle");
    }
    let was_closed = before.cycle().is_some_and(|c| c.closed);
    let closed = if touched.cycle {
        let (after, _) = read::read_cycle(txn);
        let now_closed = after.as_ref().is_some_and(|c| c.closed);
        if was_closed && now_closed && !same_cycle(before.cycle(), after.as_ref()) {
            return refuse("the cycle is closed: reopen it before changing it");
        }
        was_closed && now_closed
    } else {
        was_closed
    };
    if closed {
        check_closed(txn, before, touched, writer)?;
    } else {
        check_open(txn, before, touched)?;
    }
    let present = |root: Root, id: &str| {
        txn.get_map(root.name())
            .is_some_and(|m| yrs::Map::get(&m, txn, id).is_some())
    };
    // A touched objective or KR: its removal is an admin's; whether its fields are to be
    // checked (it is still there, and more than its text changed).
    let kept = |root: Root, id: &str, scope: &Scope, what: &str| {
        if !present(root, id) {
            if before.has_entry(root, id) && !writer.admin {
                return refuse(format!("only an admin removes {what} ({id})"));
            }
            return Ok(false);
        }
        Ok(!matches!(scope, Scope::Text(_)))
    };
    // Archiving or restoring (or creating archived: `was` is `None`) is an admin's.
    let archiving = |was: Option<bool>, now: bool, what: &str, id: &str| {
        if was.map_or(now, |w| w != now) && !writer.admin {
            return refuse(format!("only an admin archives or restores {what} ({id})"));
        }
        Ok(())
    };
    for (id, scope) in &touched.objectives {
        if !kept(Root::Objectives, id, scope, "an objective")? {
            continue;
        }
        let (after, _) = parse_entry(txn, Root::Objectives, id, read::objective);
        let Some(after) = after else { continue };
        let was = before.objective(id);
        archiving(was.map(|w| w.archived), after.archived, "an objective", id)?;
        let was_private = was.is_some_and(|w| w.visibility == Visibility::Private);
        if writer.team_room && after.visibility == Visibility::Private && !was_private {
            return refuse(format!(
                "objective {id}: a private objective lives in its owner's personal room"
            ));
        }
    }
    for (id, scope) in &touched.key_results {
        if !kept(Root::KeyResults, id, scope, "a key result")? || writer.admin {
            continue;
        }
        let (after, _) = parse_entry(txn, Root::KeyResults, id, read::key_result);
        let Some(after) = after else { continue };
        let was = before.key_result(id).map(|k| k.archived);
        archiving(was, after.archived, "a key result", id)?;
    }
    for (root, ids) in [
        (Root::Checkins, &touched.checkins),
        (Root::Comments, &touched.comments),
    ] {
        let what = match root {
            Root::Checkins => "check-in",
            _ => "comment",
        };
        for id in ids {
            let existed = before.has_entry(root, id);
            let here = present(root, id);
            match (existed, here) {
                (true, false) if writer.admin => continue,
                (true, false) => {
                    return refuse(format!("{what}s are append-only: {id} was removed"))
                }
                (true, true) => {
                    return refuse(format!("{what}s are append-only: {id} was changed"))
                }
                (false, false) => continue,
                (false, true) => {}
            }
            let (author, at) = match root {
                Root::Checkins => match parse_entry(txn, root, id, read::checkin) {
                    (Some(c), _) => (c.author, c.at),
                    (None, problems) => return refuse(unreadable(what, id, &problems)),
                },
                _ => match parse_entry(txn, root, id, read::comment) {
                    (Some(c), _) => (c.author, c.at),
                    (None, problems) => return refuse(unreadable(what, id, &problems)),
                },
            };
            let Some(user) = writer.user else {
                continue;
            };
            if author != user {
                return refuse(format!(
                    "{what} {id}: its author must be you ({user}), not {author:?}"
                ));
            }
            if (at - now).abs() > SKEW_MS {
                return refuse(format!(
                    "{what} {id}: its time must be the server's (now {now}, ±{} s), not {at}",
                    SKEW_MS / 1000
                ));
            }
        }
    }
    Ok(())
}

fn unreadable(what: &str, id: &str, problems: &[super::model::Problem]) -> String {
    let why = problems
        .first()
        .map_or("unreadable", |p| p.message.as_str());
    format!("{what} {id} is not valid: {why}")
}

/// Whether two cycles are the same but for who closed it and when.
fn same_cycle(a: Option<&Cycle>, b: Option<&Cycle>) -> bool {
    let plain = |c: Option<&Cycle>| {
        c.map(|c| Cycle {
            closed_at: None,
            closed_by: None,
            ..c.clone()
        })
    };
    plain(a) == plain(b)
}

/// An objective's stored fields that a closed cycle keeps as they are (all but its note and
/// the update stamps).
fn frozen_objective(o: &Objective) -> Objective {
    Objective {
        retro: None,
        updated_at: 0,
        updated_by: None,
        key_results: Vec::new(),
        progress: 0.0,
        status: None,
        overdue: false,
        score: None,
        ..o.clone()
    }
}

/// A KR's stored fields that a closed cycle keeps as they are (all but its score override and
/// the update stamps).
fn frozen_kr(k: &KeyResult) -> KeyResult {
    KeyResult {
        score_override: None,
        updated_at: 0,
        updated_by: None,
        current: None,
        raw_progress: 0.0,
        progress: 0.0,
        expected_progress: None,
        behind_pace: false,
        confidence: None,
        status: Status::OnTrack,
        overdue: false,
        last_checkin_at: None,
        checkin_due_at: None,
        score: None,
        ..k.clone()
    }
}

const CLOSED: &str = "the cycle is closed: only scores, retrospective notes and comments change";

/// The rules of a closed cycle (see the module's list).
fn check_closed<T: ReadTxn>(
    txn: &T,
    before: &Projection,
    touched: &Touched,
    writer: &Writer<'_>,
) -> Result<(), Violation> {
    if let Some(id) = touched.checkins.iter().next() {
        return refuse(format!("{CLOSED} (check-in {id})"));
    }
    let as_writer = |by: &str, what: &str, id: &str| match writer.user {
        Some(user) if user != by => refuse(format!(
            "{what} of {id}: it must be written as you ({user}), not {by:?}"
        )),
        _ => Ok(()),
    };
    for (id, scope) in &touched.objectives {
        let was = before.objective(id);
        let (after, _) = parse_entry(txn, Root::Objectives, id, read::objective);
        let (Some(was), Some(after), Scope::Entry) = (was, after.as_ref(), scope) else {
            if was.is_none() && after.is_none() {
                continue;
            }
            return refuse(format!("{CLOSED} (objective {id})"));
        };
        if frozen_objective(was) != frozen_objective(after) {
            return refuse(format!("{CLOSED} (objective {id})"));
        }
        if was.retro != after.retro {
            if let Some(note) = &after.retro {
                as_writer(&note.by, "the retrospective note", id)?;
            }
        }
    }
    for (id, scope) in &touched.key_results {
        let was = before.key_result(id);
        let (after, _) = parse_entry(txn, Root::KeyResults, id, read::key_result);
        let (Some(was), Some(after), Scope::Entry) = (was, after.as_ref(), scope) else {
            if was.is_none() && after.is_none() {
                continue;
            }
            return refuse(format!("{CLOSED} (key result {id})"));
        };
        if frozen_kr(was) != frozen_kr(after) {
            return refuse(format!("{CLOSED} (key result {id})"));
        }
        if was.score_override != after.score_override {
            let owner = writer.user.is_some() && writer.user == was.owner.as_deref();
            if !writer.admin && !owner {
                return refuse(format!(
                    "only the owner of key result {id} or an admin scores it"
                ));
            }
            if let Some(o) = &after.score_override {
                as_writer(&o.by, "the score", id)?;
            }
        }
    }
    Ok(())
}

/// While the cycle is open no score and no retrospective note is written.
fn check_open<T: ReadTxn>(
    txn: &T,
    before: &Projection,
    touched: &Touched,
) -> Result<(), Violation> {
    const OPEN: &str = "scores and retrospective notes are written once the cycle is closed";
    for (id, scope) in &touched.objectives {
        if !matches!(scope, Scope::Entry) {
            continue;
        }
        let (after, _) = parse_entry(txn, Root::Objectives, id, read::objective);
        let was = before.objective(id).and_then(|o| o.retro.as_ref());
        if after.as_ref().and_then(|o| o.retro.as_ref()) != was && after.is_some() {
            return refuse(format!("{OPEN} (objective {id})"));
        }
    }
    for (id, scope) in &touched.key_results {
        if !matches!(scope, Scope::Entry) {
            continue;
        }
        let (after, _) = parse_entry(txn, Root::KeyResults, id, read::key_result);
        let was = before
            .key_result(id)
            .and_then(|k| k.score_override.as_ref());
        if after.as_ref().and_then(|k| k.score_override.as_ref()) != was && after.is_some() {
            return refuse(format!("{OPEN} (key result {id})"));
        }
    }
    Ok(())
}
