//! `kr.*` commands.

use yrs::{ArrayPrelim, In, Map, MapPrelim, TextPrelim, TransactionMut, WriteTxn};

use super::context::{entry, move_to, Ctx, Result};
use super::write::{new_id, push, set_text, stamp, to_any};
use super::{validate, Applied, CommandError, ErrorCode};
use super::{KrArchive, KrCreate, KrReorder, KrUpdate};
use crate::okr::model::{Metric, Revision};
use crate::okr::schema::{self, field as f, limits};

/// The next order among objective `objective`'s KRs.
fn next_order(ctx: &Ctx, objective: &str) -> f64 {
    let orders = ctx.view.key_results_of(objective);
    orders.map(|k| k.order).fold(0.0, f64::max) + 1.0
}

pub(crate) fn create(txn: &mut TransactionMut, ctx: &Ctx, c: &KrCreate) -> Result<Applied> {
    ctx.active_objective(&c.objective, "objective")?;
    let title = validate::text("title", &c.title, limits::TITLE_MAX, true)?;
    let owner = validate::id("owner", c.owner.as_deref().unwrap_or(ctx.actor))?;
    let metric = validate::metric(&c.metric)?;
    let weight = validate::weight("weight", c.weight.unwrap_or(1.0))?;
    let cadence = c.cadence_days.unwrap_or(schema::DEFAULT_CADENCE_DAYS);
    let cadence = validate::cadence("cadence_days", cadence)?;
    let order = next_order(ctx, &c.objective);
    let carried_from = c
        .carried_from
        .as_ref()
        .map(|r| validate::carried_from("carried_from", r, false))
        .transpose()?;

    // Writes only from here on.
    let root = txn.get_or_insert_map(schema::KEY_RESULTS);
    let id = new_id(&root, txn, "kr-");
    let mut fields: Vec<(&str, In)> = vec![
        (f::OBJECTIVE, c.objective.clone().into()),
        (f::TITLE, TextPrelim::new(title).into()),
        (f::OWNER, owner.into()),
        (f::METRIC, In::Any(to_any(&metric))),
        (f::WEIGHT, weight.into()),
        (f::CADENCE_DAYS, i64::from(cadence).into()),
        (f::ORDER, order.into()),
        (f::STATUS, schema::ACTIVE.into()),
        (f::REVISIONS, ArrayPrelim::default().into()),
        (f::CREATED_AT, ctx.now.into()),
        (f::CREATED_BY, ctx.actor.into()),
        (f::UPDATED_AT, ctx.now.into()),
        (f::UPDATED_BY, ctx.actor.into()),
    ];
    if let Some(from) = carried_from {
        fields.push((f::CARRIED_FROM, In::Any(to_any(&from))));
    }
    root.insert(txn, id.as_str(), MapPrelim::from_iter(fields));
    Ok(Applied {
        created_id: Some(id),
    })
}

/// A metric with every milestone marked not done: what a revision compares.
fn shape(m: &Metric) -> Metric {
    match m {
        Metric::Milestone { milestones } => Metric::Milestone {
            milestones: milestones
                .iter()
                .map(|m| crate::okr::model::Milestone {
                    done: false,
                    ..m.clone()
                })
                .collect(),
        },
        other => other.clone(),
    }
}

pub(crate) fn update(txn: &mut TransactionMut, ctx: &Ctx, c: &KrUpdate) -> Result<Applied> {
    let kr = ctx.active_kr(&c.key_result, "key_result")?;
    let title = c
        .title
        .as_deref()
        .map(|t| validate::text("title", t, limits::TITLE_MAX, true))
        .transpose()?;
    let owner = c
        .owner
        .as_deref()
        .map(|o| validate::id("owner", o))
        .transpose()?;
    let metric = c.metric.as_ref().map(validate::metric).transpose()?;
    let weight = c
        .weight
        .map(|w| validate::weight("weight", w))
        .transpose()?;
    let cadence = c
        .cadence_days
        .map(|d| validate::cadence("cadence_days", d))
        .transpose()?;
    let why = validate::text(
        "why",
        c.why.as_deref().unwrap_or(""),
        limits::WHY_MAX,
        false,
    )?;
    let moved_to = match &c.objective {
        Some(o) if *o != kr.objective => Some(ctx.active_objective(o, "objective")?.id.clone()),
        _ => None,
    };
    let nothing = title.is_none()
        && owner.is_none()
        && metric.is_none()
        && weight.is_none()
        && cadence.is_none()
        && moved_to.is_none();
    if nothing {
        return Err(CommandError::new(
            ErrorCode::EmptyUpdate,
            "",
            "nothing to update",
        ));
    }
    let revision = metric
        .as_ref()
        .filter(|m| shape(m) != shape(&kr.metric))
        .map(|m| Revision {
            at: ctx.now,
            by: ctx.actor.to_owned(),
            old: kr.metric.clone(),
            new: m.clone(),
            why: why.clone(),
        });
    let order = moved_to.as_deref().map(|o| next_order(ctx, o));
    let map = entry(&*txn, schema::KEY_RESULTS, &c.key_result)?;

    // Writes only from here on.
    if let Some(t) = title {
        set_text(txn, &map, f::TITLE, &t);
    }
    if let Some(o) = owner {
        map.insert(txn, f::OWNER, o);
    }
    if let Some(m) = &metric {
        if *m != kr.metric {
            map.insert(txn, f::METRIC, to_any(m));
        }
    }
    if let Some(r) = revision {
        push(txn, &map, f::REVISIONS, to_any(&r));
    }
    if let Some(w) = weight {
        map.insert(txn, f::WEIGHT, w);
    }
    if let Some(d) = cadence {
        map.insert(txn, f::CADENCE_DAYS, i64::from(d));
    }
    if let (Some(o), Some(order)) = (moved_to, order) {
        map.insert(txn, f::OBJECTIVE, o);
        map.insert(txn, f::ORDER, order);
    }
    stamp(txn, &map, ctx.actor, ctx.now);
    Ok(Applied::default())
}

pub(crate) fn archive(txn: &mut TransactionMut, ctx: &Ctx, c: &KrArchive) -> Result<Applied> {
    let kr = ctx.kr(&c.key_result, "key_result")?;
    if kr.archived == c.archived {
        return Ok(Applied::default());
    }
    if !c.archived {
        // Restoring into an archived objective would hide it again: restore the objective first.
        ctx.active_objective(&kr.objective, "key_result")?;
    }
    let map = entry(&*txn, schema::KEY_RESULTS, &c.key_result)?;
    let status = if c.archived {
        schema::ARCHIVED
    } else {
        schema::ACTIVE
    };
    map.insert(txn, f::STATUS, status);
    stamp(txn, &map, ctx.actor, ctx.now);
    Ok(Applied::default())
}

pub(crate) fn reorder(txn: &mut TransactionMut, ctx: &Ctx, c: &KrReorder) -> Result<Applied> {
    let kr = ctx.kr(&c.key_result, "key_result")?;
    let others: Vec<(&str, f64)> = ctx
        .view
        .key_results_of(&kr.objective)
        .filter(|k| k.id != kr.id)
        .map(|k| (k.id.as_str(), k.order))
        .collect();
    let map = move_to(
        txn,
        schema::KEY_RESULTS,
        &others,
        &c.key_result,
        c.index as usize,
    )?;
    stamp(txn, &map, ctx.actor, ctx.now);
    Ok(Applied::default())
}
