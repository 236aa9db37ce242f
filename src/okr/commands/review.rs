//! The quarter's end: `cycle.close`, `cycle.reopen`, `kr.score` and `objective.retro`.
//!
//! Closing writes `closed_at` / `closed_by` into the cycle; every KR then has a proposed score
//! (derived, `rules::proposed_score`). A score override and a retrospective note are plain
//! objects in their KR's / objective's map, replaced as a whole, with who and when.

use std::collections::HashMap;
use std::sync::Arc;

use yrs::{Any, Map, TransactionMut, WriteTxn};

use super::context::{entry, Ctx, Result};
use super::write::stamp;
use super::{validate, Applied, CommandError, ErrorCode};
use super::{KrScoreSet, ObjectiveRetro};
use crate::okr::schema::{self, field as f, limits};

fn object(fields: Vec<(&str, Any)>) -> Any {
    let map: HashMap<String, Any> = fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    Any::Map(Arc::new(map))
}

/// The cycle must be set and closed for scores and notes.
fn closed(ctx: &Ctx) -> Result<()> {
    if ctx.view.cycle().is_some_and(|c| c.closed) {
        return Ok(());
    }
    Err(CommandError::new(
        ErrorCode::CycleOpen,
        "",
        "scores and retrospective notes are written once an admin has closed the cycle (cycle.close)",
    ))
}

pub(crate) fn cycle_close(txn: &mut TransactionMut, ctx: &Ctx) -> Result<Applied> {
    let Some(cycle) = ctx.view.cycle() else {
        let message = "set the cycle (cycle.set) before closing it";
        return Err(CommandError::new(ErrorCode::MissingField, "cycle", message));
    };
    if cycle.closed {
        return Ok(Applied::default());
    }

    // Writes only from here on.
    let root = txn.get_or_insert_map(schema::CYCLE);
    root.insert(txn, f::CLOSED_AT, ctx.now);
    root.insert(txn, f::CLOSED_BY, ctx.actor);
    Ok(Applied::default())
}

pub(crate) fn cycle_reopen(txn: &mut TransactionMut, ctx: &Ctx) -> Result<Applied> {
    if !ctx.view.cycle().is_some_and(|c| c.closed) {
        return Ok(Applied::default());
    }

    // Writes only from here on.
    let root = txn.get_or_insert_map(schema::CYCLE);
    root.remove(txn, f::CLOSED_AT);
    root.remove(txn, f::CLOSED_BY);
    Ok(Applied::default())
}

pub(crate) fn kr_score(txn: &mut TransactionMut, ctx: &Ctx, c: &KrScoreSet) -> Result<Applied> {
    closed(ctx)?;
    let kr = ctx.active_kr(&c.key_result, "key_result")?;
    let value = match c.score {
        None => None,
        Some(s) if s.is_finite() && (0.0..=1.0).contains(&s) => {
            let reason = c.reason.as_deref().unwrap_or("");
            let reason = validate::text("reason", reason, limits::REASON_MAX, true)?;
            Some(object(vec![
                (f::SCORE, Any::from(s)),
                (f::REASON, Any::from(reason)),
                (f::BY, Any::from(ctx.actor)),
                (f::AT, Any::from(ctx.now)),
            ]))
        }
        Some(_) => {
            let message = "a score is within 0.0–1.0";
            return Err(CommandError::new(ErrorCode::OutOfRange, "score", message));
        }
    };
    if value.is_none() && kr.score_override.is_none() {
        return Ok(Applied::default());
    }
    let map = entry(&*txn, schema::KEY_RESULTS, &kr.id)?;

    // Writes only from here on.
    match value {
        Some(v) => {
            map.insert(txn, f::SCORE_OVERRIDE, v);
        }
        None => {
            map.remove(txn, f::SCORE_OVERRIDE);
        }
    }
    stamp(txn, &map, ctx.actor, ctx.now);
    Ok(Applied::default())
}

pub(crate) fn objective_retro(
    txn: &mut TransactionMut,
    ctx: &Ctx,
    c: &ObjectiveRetro,
) -> Result<Applied> {
    closed(ctx)?;
    let o = ctx.active_objective(&c.objective, "objective")?;
    let worked = validate::text("worked", &c.worked, limits::RETRO_MAX, false)?;
    let did_not = validate::text("did_not", &c.did_not, limits::RETRO_MAX, false)?;
    let next = validate::text("next", &c.next, limits::RETRO_MAX, false)?;
    if [&worked, &did_not, &next]
        .iter()
        .all(|t| t.trim().is_empty())
    {
        let message = "write at least one of worked, did_not, next";
        return Err(CommandError::new(ErrorCode::EmptyUpdate, "", message));
    }
    let map = entry(&*txn, schema::OBJECTIVES, &o.id)?;

    // Writes only from here on.
    let note = object(vec![
        (f::WORKED, Any::from(worked)),
        (f::DID_NOT, Any::from(did_not)),
        (f::NEXT, Any::from(next)),
        (f::BY, Any::from(ctx.actor)),
        (f::AT, Any::from(ctx.now)),
    ]);
    map.insert(txn, f::RETRO, note);
    stamp(txn, &map, ctx.actor, ctx.now);
    Ok(Applied::default())
}
