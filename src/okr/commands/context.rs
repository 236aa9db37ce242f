//! What every command handler shares: the context it runs in ([`Ctx`]: the set as it is
//! before the command, the actor, the time, the room), lookups that fail with the right error,
//! and the two-phase helpers (fetch every map to write, then write).

use std::collections::HashMap;

use yrs::{Map, MapRef, Out, ReadTxn, TransactionMut};

use super::{CommandError, ErrorCode};
use crate::okr::model::{AlignRef, KeyResult, Millis, Objective, Visibility};
use crate::okr::schema::field as f;
use crate::okr::Projection;

pub(crate) type Result<T> = std::result::Result<T, CommandError>;

/// What every handler needs besides its command.
pub(crate) struct Ctx<'a> {
    /// The set before the command (the room's own projection: no read per command).
    pub view: &'a Projection,
    pub actor: &'a str,
    pub now: Millis,
    /// This room's id, when known: refs naming it are local.
    pub room: Option<&'a str>,
}

impl Ctx<'_> {
    /// Refuses `private` in a team room: a private objective lives in its owner's personal
    /// room (`{org}.~{user}.{cycle}`), whose doc only the owner and admins sync, so that no
    /// Yjs client of a team room ever holds an objective it may not read.
    pub fn visibility_allowed(&self, v: Option<Visibility>, was: Option<Visibility>) -> Result<()> {
        let team_room = self
            .room
            .is_some_and(|r| !r.split('.').nth(1).unwrap_or("").starts_with('~'));
        if team_room && v == Some(Visibility::Private) && was != Some(Visibility::Private) {
            return Err(CommandError::new(
                ErrorCode::InvalidValue,
                "visibility",
                "a private objective lives in its owner's personal room ({org}.~{user}.{cycle}); \
                 a team room's objectives are public or team",
            ));
        }
        Ok(())
    }

    pub fn objective(&self, id: &str, field: &str) -> Result<&Objective> {
        self.view
            .objective(id)
            .ok_or_else(|| not_found(field, "objective", id))
    }

    /// An objective that may be changed: it exists and is not archived.
    pub fn active_objective(&self, id: &str, field: &str) -> Result<&Objective> {
        let o = self.objective(id, field)?;
        if o.archived {
            return Err(CommandError::new(
                ErrorCode::Archived,
                field,
                format!("objective {id:?} is archived"),
            ));
        }
        Ok(o)
    }

    pub fn kr(&self, id: &str, field: &str) -> Result<&KeyResult> {
        self.view
            .key_result(id)
            .ok_or_else(|| not_found(field, "key result", id))
    }

    /// A KR that may be changed: neither it nor its objective is archived.
    pub fn active_kr(&self, id: &str, field: &str) -> Result<&KeyResult> {
        let k = self.kr(id, field)?;
        if k.archived {
            return Err(CommandError::new(
                ErrorCode::Archived,
                field,
                format!("key result {id:?} is archived"),
            ));
        }
        self.active_objective(&k.objective, field)?;
        Ok(k)
    }

    /// Whether a parent ref points into this doc.
    pub fn is_local(&self, r: &AlignRef) -> bool {
        match &r.room {
            None => true,
            Some(room) => self.room == Some(room.as_str()),
        }
    }

    /// The objective a local ref points to (a KR's objective for a KR ref).
    pub fn parent_objective(&self, r: &AlignRef, field: &str) -> Result<String> {
        match (&r.objective, &r.key_result) {
            (Some(o), _) => Ok(self.objective(o, field)?.id.clone()),
            (None, Some(k)) => Ok(self.kr(k, field)?.objective.clone()),
            (None, None) => Err(CommandError::new(
                ErrorCode::MissingField,
                field,
                "empty ref",
            )),
        }
    }
}

pub(crate) fn not_found(field: &str, what: &str, id: &str) -> CommandError {
    CommandError::new(ErrorCode::NotFound, field, format!("no {what} {id:?}"))
}

/// The `Y.Map` of entry `id` in root `root`, to write to (checked before any write).
pub(crate) fn entry<T: ReadTxn>(txn: &T, root: &str, id: &str) -> Result<MapRef> {
    match txn.get_map(root).and_then(|m| m.get(txn, id)) {
        Some(Out::YMap(map)) => Ok(map),
        _ => Err(not_found("", root, id)),
    }
}

/// Moves entry `moved` of root `root` to position `index` among `others` (the root's other
/// entries that share its list, in order, with their orders): it gets an order between its new
/// neighbours, or — when they tie — the whole list is renumbered 1, 2, 3, … with it in place.
/// Fetches every map first, so it fails before any write. Returns the moved entry's map.
pub(crate) fn move_to(
    txn: &mut TransactionMut,
    root: &str,
    others: &[(&str, f64)],
    moved: &str,
    index: usize,
) -> Result<MapRef> {
    let mut maps = HashMap::new();
    for (id, _) in others {
        maps.insert(*id, entry(&*txn, root, id)?);
    }
    let map = entry(&*txn, root, moved)?;
    let orders: Vec<f64> = others.iter().map(|(_, o)| *o).collect();

    // Writes only from here on.
    match order_at(&orders, index) {
        Some(order) => {
            map.insert(txn, f::ORDER, order);
        }
        None => {
            let mut ids: Vec<&str> = others.iter().map(|(id, _)| *id).collect();
            ids.insert(index.min(ids.len()), moved);
            for (i, id) in ids.iter().enumerate() {
                let m = maps.get(id).unwrap_or(&map);
                m.insert(txn, f::ORDER, (i + 1) as f64);
            }
        }
    }
    Ok(map)
}

/// The order that puts an item at `index` among `orders` (the others, in order): between its
/// neighbours, or `None` when they tie and everything must be renumbered.
pub(crate) fn order_at(orders: &[f64], index: usize) -> Option<f64> {
    let index = index.min(orders.len());
    let before = index.checked_sub(1).map(|i| orders[i]);
    let after = orders.get(index).copied();
    match (before, after) {
        (None, None) => Some(0.0),
        (Some(b), None) => Some(b + 1.0),
        (None, Some(a)) => Some(a - 1.0),
        (Some(b), Some(a)) => {
            let mid = b + (a - b) / 2.0;
            (b < mid && mid < a).then_some(mid)
        }
    }
}
