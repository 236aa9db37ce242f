//! `cycle.set`, `checkin.create` and `comment.create`.
//!
//! Check-ins and comments are plain objects, written once and never edited (append-only):
//! concurrent check-ins from two clients never conflict, they are two entries.

use std::collections::HashMap;
use std::sync::Arc;

use yrs::{Any, Map, TransactionMut, WriteTxn};

use super::context::{entry, not_found, Ctx, Result};
use super::write::{new_id, to_any};
use super::{validate, Applied, CommandError, ErrorCode};
use super::{CheckinCreate, CommentCreate, CycleSet};
use crate::okr::model::{Metric, Target};
use crate::okr::rules;
use crate::okr::schema::{self, field as f, limits};

pub(crate) fn cycle_set(txn: &mut TransactionMut, ctx: &Ctx, c: &CycleSet) -> Result<Applied> {
    let from_room = ctx.room.and_then(|r| r.rsplit('.').next());
    let Some(cycle) = c.cycle.as_deref().or(from_room) else {
        let message = "name the cycle (e.g. 2026-Q3)";
        return Err(CommandError::new(ErrorCode::MissingField, "cycle", message));
    };
    let id = validate::id("cycle", cycle)?;
    let bad_date = |field: &str| {
        CommandError::new(
            ErrorCode::InvalidValue,
            field,
            format!("{field} must be a YYYY-MM-DD date"),
        )
    };
    let starts = rules::parse_date(&c.starts).ok_or_else(|| bad_date("starts"))?;
    let ends = rules::parse_date(&c.ends).ok_or_else(|| bad_date("ends"))?;
    if ends < starts {
        let message = "the cycle cannot end before it starts";
        return Err(CommandError::new(ErrorCode::InvalidValue, "ends", message));
    }

    // Writes only from here on.
    let root = txn.get_or_insert_map(schema::CYCLE);
    root.insert(txn, f::ID, id);
    root.insert(txn, f::KIND, to_any(&c.kind));
    root.insert(txn, f::STARTS, c.starts.clone());
    root.insert(txn, f::ENDS, c.ends.clone());
    Ok(Applied::default())
}

fn object(fields: Vec<(&str, Any)>) -> Any {
    let map: HashMap<String, Any> = fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    Any::Map(Arc::new(map))
}

fn strings(list: &[String]) -> Any {
    Any::Array(list.iter().map(|s| Any::from(s.as_str())).collect())
}

pub(crate) fn checkin_create(
    txn: &mut TransactionMut,
    ctx: &Ctx,
    c: &CheckinCreate,
) -> Result<Applied> {
    let kr = ctx.active_kr(&c.key_result, "key_result")?;
    let confidence = validate::confidence(c.confidence)?;
    let comment = validate::text(
        "comment",
        c.comment.as_deref().unwrap_or(""),
        limits::COMMENT_MAX,
        false,
    )?;
    let mentions = validate::mentions("mentions", &c.mentions)?;
    // The value to record, and for a milestone KR its metric with the new done flags.
    let (value, new_metric) = match (&kr.metric, c.value, &c.milestones) {
        (Metric::Milestone { .. }, Some(_), _) => {
            let message = "a milestone KR is checked in with `milestones`, not `value`";
            return Err(CommandError::new(ErrorCode::InvalidValue, "value", message));
        }
        (Metric::Milestone { milestones }, None, Some(done)) => {
            if done.len() != milestones.len() {
                let message = format!(
                    "expected {} done flags, one per milestone",
                    milestones.len()
                );
                return Err(CommandError::new(
                    ErrorCode::InvalidValue,
                    "milestones",
                    message,
                ));
            }
            let mut milestones = milestones.clone();
            for (m, d) in milestones.iter_mut().zip(done) {
                m.done = *d;
            }
            let metric = Metric::Milestone { milestones };
            (rules::raw_progress(&metric, None), Some(metric))
        }
        (Metric::Milestone { .. }, None, None) => {
            let message = "a milestone KR's check-in needs `milestones`";
            return Err(CommandError::new(
                ErrorCode::MissingField,
                "milestones",
                message,
            ));
        }
        (_, _, Some(_)) => {
            let message = "only a milestone KR is checked in with `milestones`";
            return Err(CommandError::new(
                ErrorCode::InvalidValue,
                "milestones",
                message,
            ));
        }
        (_, None, None) => {
            return Err(CommandError::new(
                ErrorCode::MissingField,
                "value",
                "a check-in needs a value",
            ));
        }
        (metric, Some(v), None) => {
            let v = validate::number("value", v)?;
            if matches!(metric, Metric::Percent) && !(0.0..=100.0).contains(&v) {
                let message = "a percent KR's value is within 0–100";
                return Err(CommandError::new(ErrorCode::OutOfRange, "value", message));
            }
            (v, None)
        }
    };
    let kr_map = entry(&*txn, schema::KEY_RESULTS, &kr.id)?;

    // Writes only from here on.
    let mut fields = vec![
        (f::KEY_RESULT, Any::from(kr.id.as_str())),
        (f::AUTHOR, Any::from(ctx.actor)),
        (f::AT, Any::from(ctx.now)),
        (f::VALUE, Any::from(value)),
        (f::CONFIDENCE, Any::from(i64::from(confidence))),
        (f::COMMENT, Any::from(comment)),
        (f::MENTIONS, strings(&mentions)),
    ];
    if let Some(done) = &c.milestones {
        fields.push((
            f::MILESTONES,
            Any::Array(done.iter().map(|d| Any::Bool(*d)).collect()),
        ));
    }
    if let Some(metric) = new_metric {
        kr_map.insert(txn, f::METRIC, to_any(&metric));
    }
    let root = txn.get_or_insert_map(schema::CHECKINS);
    let id = new_id(&root, txn, "ci-");
    root.insert(txn, id.as_str(), object(fields));
    Ok(Applied {
        created_id: Some(id),
    })
}

pub(crate) fn comment_create(
    txn: &mut TransactionMut,
    ctx: &Ctx,
    c: &CommentCreate,
) -> Result<Applied> {
    match &c.target {
        Target::Objective(o) => ctx.objective(o, "target.objective").map(drop)?,
        Target::KeyResult(k) => ctx.kr(k, "target.key_result").map(drop)?,
    }
    let text = validate::text("text", &c.text, limits::COMMENT_MAX, true)?;
    let mentions = validate::mentions("mentions", &c.mentions)?;
    if let Some(parent) = &c.reply_to {
        let parent =
            (ctx.view.comment(parent)).ok_or_else(|| not_found("reply_to", "comment", parent))?;
        if parent.target != c.target {
            let message = "a reply must be about the same target as the comment it answers";
            return Err(CommandError::new(
                ErrorCode::InvalidValue,
                "reply_to",
                message,
            ));
        }
    }

    // Writes only from here on.
    let mut fields = vec![
        (f::TARGET, to_any(&c.target)),
        (f::AUTHOR, Any::from(ctx.actor)),
        (f::AT, Any::from(ctx.now)),
        (f::TEXT, Any::from(text)),
        (f::MENTIONS, strings(&mentions)),
    ];
    if let Some(parent) = &c.reply_to {
        fields.push((f::REPLY_TO, Any::from(parent.as_str())));
    }
    let root = txn.get_or_insert_map(schema::COMMENTS);
    let id = new_id(&root, txn, "cm-");
    root.insert(txn, id.as_str(), object(fields));
    Ok(Applied {
        created_id: Some(id),
    })
}
