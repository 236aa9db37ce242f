//! Applying a command: read the current set, validate against it, then write.
//!
//! Every handler has two phases and keeps them apart: first everything that can fail (values,
//! existence, archived, cycles; fetching the maps to write to), then the writes, which cannot
//! fail. That is what makes "a refused command changes nothing" hold, and the tests check it on
//! the encoded doc.
//!
//! Validation reads the typed set with [`read`]: one definition of what exists (an entry the
//! reader skips as garbage cannot be edited by a command either: it is "not found").

use yrs::{Map, MapRef, Out, ReadTxn, TransactionMut};

use super::validate;
use super::{Applied, Command, CommandError, ErrorCode};
use crate::okr::model::{AlignRef, KeyResult, Millis, Objective, OkrSet};
use crate::okr::read;

pub(crate) type Result<T> = std::result::Result<T, CommandError>;

/// What every handler needs besides its command.
pub(crate) struct Ctx<'a> {
    pub set: OkrSet,
    pub actor: &'a str,
    pub now: Millis,
    /// This room's id, when known: refs naming it are local.
    pub room: Option<&'a str>,
}

/// Applies `cmd` by `actor` at `now` in `txn`, or refuses it and changes nothing.
///
/// Alignment refs without a `room` are local to this doc; use [`apply_in_room`] so that refs
/// naming this room explicitly are checked as local too.
pub fn apply(txn: &mut TransactionMut, cmd: &Command, actor: &str, now: Millis) -> Result<Applied> {
    run(txn, None, cmd, actor, now)
}

/// [`apply`] for a doc known to be room `room`.
pub fn apply_in_room(
    txn: &mut TransactionMut,
    room: &str,
    cmd: &Command,
    actor: &str,
    now: Millis,
) -> Result<Applied> {
    run(txn, Some(room), cmd, actor, now)
}

fn run(
    txn: &mut TransactionMut,
    room: Option<&str>,
    cmd: &Command,
    actor: &str,
    now: Millis,
) -> Result<Applied> {
    validate::id("actor", actor)?;
    let ctx = Ctx {
        set: read(&*txn, now),
        actor,
        now,
        room,
    };
    use super::{activity, kr, objective};
    match cmd {
        Command::CycleSet(c) => activity::cycle_set(txn, &ctx, c),
        Command::ObjectiveCreate(c) => objective::create(txn, &ctx, c),
        Command::ObjectiveUpdate(c) => objective::update(txn, &ctx, c),
        Command::ObjectiveArchive(c) => objective::archive(txn, &ctx, c),
        Command::ObjectiveReorder(c) => objective::reorder(txn, &ctx, c),
        Command::ObjectiveAlign(c) => objective::align(txn, &ctx, c),
        Command::KrCreate(c) => kr::create(txn, &ctx, c),
        Command::KrUpdate(c) => kr::update(txn, &ctx, c),
        Command::KrArchive(c) => kr::archive(txn, &ctx, c),
        Command::KrReorder(c) => kr::reorder(txn, &ctx, c),
        Command::CheckinCreate(c) => activity::checkin_create(txn, &ctx, c),
        Command::CommentCreate(c) => activity::comment_create(txn, &ctx, c),
    }
}

impl Ctx<'_> {
    pub fn objective(&self, id: &str, field: &str) -> Result<&Objective> {
        self.set
            .objectives
            .iter()
            .find(|o| o.id == id)
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
        self.set
            .key_results
            .iter()
            .find(|k| k.id == id)
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
