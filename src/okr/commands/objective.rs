//! `objective.*` commands.

use std::collections::{HashMap, HashSet};

use yrs::{In, Map, MapPrelim, TextPrelim, TransactionMut, WriteTxn};

use super::context::{entry, move_to, Ctx, Result};
use super::write::{new_id, set_array, set_text, stamp, to_any};
use super::{validate, Applied, CommandError, ErrorCode};
use super::{ObjectiveAlign, ObjectiveArchive, ObjectiveCreate, ObjectiveReorder, ObjectiveUpdate};
use crate::okr::model::AlignRef;
use crate::okr::schema::{self, field as f, limits};

pub(crate) fn create(txn: &mut TransactionMut, ctx: &Ctx, c: &ObjectiveCreate) -> Result<Applied> {
    let title = validate::text("title", &c.title, limits::TITLE_MAX, true)?;
    let description = validate::text(
        "description",
        c.description.as_deref().unwrap_or(""),
        limits::DESCRIPTION_MAX,
        false,
    )?;
    let owner = validate::id("owner", c.owner.as_deref().unwrap_or(ctx.actor))?;
    let team = c
        .team
        .as_deref()
        .map(|t| validate::text("team", t, limits::TEAM_MAX, true))
        .transpose()?;
    let aligned_to = validate::align_refs("aligned_to", &c.aligned_to)?;
    for (i, r) in aligned_to.iter().enumerate() {
        if ctx.is_local(r) {
            ctx.parent_objective(r, &format!("aligned_to[{i}]"))?;
        }
    }
    ctx.visibility_allowed(c.visibility, None)?;
    let carried_from = c
        .carried_from
        .as_ref()
        .map(|r| validate::carried_from("carried_from", r, true))
        .transpose()?;
    let order = ctx.view.objectives().map(|o| o.order).fold(0.0, f64::max) + 1.0;

    // Writes only from here on.
    let root = txn.get_or_insert_map(schema::OBJECTIVES);
    let id = new_id(&root, txn, "o-");
    let mut fields: Vec<(&str, In)> = vec![
        (f::TITLE, TextPrelim::new(title).into()),
        (f::DESCRIPTION, TextPrelim::new(description).into()),
        (f::OWNER, owner.into()),
        (f::KIND, In::Any(to_any(&c.kind.unwrap_or_default()))),
        (
            f::VISIBILITY,
            In::Any(to_any(&c.visibility.unwrap_or_default())),
        ),
        (
            f::COMMITMENT,
            In::Any(to_any(&c.commitment.unwrap_or_default())),
        ),
        (f::ORDER, order.into()),
        (f::STATUS, schema::ACTIVE.into()),
        (
            f::ALIGNED_TO,
            yrs::ArrayPrelim::from(aligned_to.iter().map(to_any).collect::<Vec<_>>()).into(),
        ),
        (f::CREATED_AT, ctx.now.into()),
        (f::CREATED_BY, ctx.actor.into()),
        (f::UPDATED_AT, ctx.now.into()),
        (f::UPDATED_BY, ctx.actor.into()),
    ];
    if let Some(team) = team {
        fields.push((f::TEAM, team.into()));
    }
    if let Some(from) = carried_from {
        fields.push((f::CARRIED_FROM, In::Any(to_any(&from))));
    }
    root.insert(txn, id.as_str(), MapPrelim::from_iter(fields));
    Ok(Applied {
        created_id: Some(id),
    })
}

pub(crate) fn update(txn: &mut TransactionMut, ctx: &Ctx, c: &ObjectiveUpdate) -> Result<Applied> {
    ctx.active_objective(&c.objective, "objective")?;
    let title = c
        .title
        .as_deref()
        .map(|t| validate::text("title", t, limits::TITLE_MAX, true))
        .transpose()?;
    let description = c
        .description
        .as_deref()
        .map(|d| validate::text("description", d, limits::DESCRIPTION_MAX, false))
        .transpose()?;
    let owner = c
        .owner
        .as_deref()
        .map(|o| validate::id("owner", o))
        .transpose()?;
    let team = c
        .team
        .as_deref()
        .map(|t| validate::text("team", t, limits::TEAM_MAX, true))
        .transpose()?;
    let nothing = title.is_none()
        && description.is_none()
        && owner.is_none()
        && team.is_none()
        && c.kind.is_none()
        && c.visibility.is_none()
        && c.commitment.is_none();
    if nothing {
        return Err(CommandError::new(
            ErrorCode::EmptyUpdate,
            "",
            "nothing to update",
        ));
    }
    let was = ctx.objective(&c.objective, "objective")?.visibility;
    ctx.visibility_allowed(c.visibility, Some(was))?;
    let map = entry(&*txn, schema::OBJECTIVES, &c.objective)?;

    // Writes only from here on.
    if let Some(t) = title {
        set_text(txn, &map, f::TITLE, &t);
    }
    if let Some(d) = description {
        set_text(txn, &map, f::DESCRIPTION, &d);
    }
    if let Some(o) = owner {
        map.insert(txn, f::OWNER, o);
    }
    if let Some(t) = team {
        map.insert(txn, f::TEAM, t);
    }
    if let Some(k) = c.kind {
        map.insert(txn, f::KIND, to_any(&k));
    }
    if let Some(v) = c.visibility {
        map.insert(txn, f::VISIBILITY, to_any(&v));
    }
    if let Some(t) = c.commitment {
        map.insert(txn, f::COMMITMENT, to_any(&t));
    }
    stamp(txn, &map, ctx.actor, ctx.now);
    Ok(Applied::default())
}

pub(crate) fn archive(
    txn: &mut TransactionMut,
    ctx: &Ctx,
    c: &ObjectiveArchive,
) -> Result<Applied> {
    let o = ctx.objective(&c.objective, "objective")?;
    if o.archived == c.archived {
        return Ok(Applied::default());
    }
    let map = entry(&*txn, schema::OBJECTIVES, &c.objective)?;
    let status = if c.archived {
        schema::ARCHIVED
    } else {
        schema::ACTIVE
    };
    map.insert(txn, f::STATUS, status);
    stamp(txn, &map, ctx.actor, ctx.now);
    Ok(Applied::default())
}

pub(crate) fn reorder(
    txn: &mut TransactionMut,
    ctx: &Ctx,
    c: &ObjectiveReorder,
) -> Result<Applied> {
    ctx.objective(&c.objective, "objective")?;
    let others: Vec<(&str, f64)> = ctx
        .view
        .objectives()
        .filter(|o| o.id != c.objective)
        .map(|o| (o.id.as_str(), o.order))
        .collect();
    let map = move_to(
        txn,
        schema::OBJECTIVES,
        &others,
        &c.objective,
        c.index as usize,
    )?;
    stamp(txn, &map, ctx.actor, ctx.now);
    Ok(Applied::default())
}

pub(crate) fn align(txn: &mut TransactionMut, ctx: &Ctx, c: &ObjectiveAlign) -> Result<Applied> {
    let o = ctx.active_objective(&c.objective, "objective")?;
    // Each parent with the command field it comes from, for errors: `set[i]`, `add[i]`, or
    // `objective` for a parent it already had.
    let mut refs: Vec<(AlignRef, String)> = match &c.set {
        Some(set) => validate::align_refs("set", set)?
            .into_iter()
            .enumerate()
            .map(|(i, r)| (r, format!("set[{i}]")))
            .collect(),
        None => o
            .aligned_to
            .iter()
            .map(|r| (r.clone(), "objective".to_owned()))
            .collect(),
    };
    let remove = validate::align_refs("remove", &c.remove)?;
    refs.retain(|(r, _)| !remove.contains(r));
    for (i, r) in validate::align_refs("add", &c.add)?.into_iter().enumerate() {
        if !refs.iter().any(|(have, _)| *have == r) {
            refs.push((r, format!("add[{i}]")));
        }
    }
    if refs.len() > limits::ALIGNED_TO_MAX {
        let message = format!("at most {} parents", limits::ALIGNED_TO_MAX);
        return Err(CommandError::new(ErrorCode::TooMany, "add", message));
    }
    check_cycles(ctx, &c.objective, &refs)?;
    let refs: Vec<AlignRef> = refs.into_iter().map(|(r, _)| r).collect();
    let map = entry(&*txn, schema::OBJECTIVES, &c.objective)?;

    // Writes only from here on.
    set_array(txn, &map, f::ALIGNED_TO, refs.iter().map(to_any).collect());
    stamp(txn, &map, ctx.actor, ctx.now);
    Ok(Applied::default())
}

/// Refuses parents that do not exist here, or that (through their own parents, in this room)
/// lead back to `objective`. Each ref comes with the command field an error names.
fn check_cycles(ctx: &Ctx, objective: &str, refs: &[(AlignRef, String)]) -> Result<()> {
    // The local parent graph, objective → parent objectives, with `objective`'s new parents.
    let mut parents: HashMap<&str, Vec<String>> = HashMap::new();
    for o in ctx.view.objectives().filter(|o| o.id != objective) {
        let local = o.aligned_to.iter().filter(|r| ctx.is_local(r));
        let ps = local
            .filter_map(|r| ctx.parent_objective(r, "").ok())
            .collect();
        parents.insert(&o.id, ps);
    }
    let mut new_parents = Vec::new();
    for (r, field) in refs.iter().filter(|(r, _)| ctx.is_local(r)) {
        new_parents.push((field, ctx.parent_objective(r, field)?));
    }
    for (field, start) in new_parents {
        let mut seen = HashSet::new();
        let mut stack = vec![start];
        while let Some(p) = stack.pop() {
            if p == objective {
                return Err(CommandError::new(
                    ErrorCode::AlignmentCycle,
                    field,
                    "this parent leads back to the objective itself",
                ));
            }
            if seen.insert(p.clone()) {
                stack.extend(parents.get(p.as_str()).into_iter().flatten().cloned());
            }
        }
    }
    Ok(())
}
