//! Applying a command: read the current set, validate against it, then write. This file only
//! dispatches; what the handlers share is in `context.rs`, each handler in its own file.
//!
//! Every handler has two phases and keeps them apart: first everything that can fail (values,
//! existence, archived, cycles; fetching the maps to write to), then the writes, which cannot
//! fail. That is what makes "a refused command changes nothing" hold, and the tests check it on
//! the encoded doc.
//!
//! Validation looks at the typed set ([`Projection`]): one definition of what exists (an entry
//! the reader skips as garbage cannot be edited by a command either: it is "not found"). A room
//! passes its own projection, up to date with its doc, so a command costs no read of the set.

use yrs::TransactionMut;

use super::context::{Ctx, Result};
use super::{activity, kr, objective, review, validate};
use super::{Applied, Command};
use super::{CommandError, ErrorCode};
use crate::okr::model::Millis;
use crate::okr::Projection;

/// Applies `cmd` by `actor` at `now` in `txn`, or refuses it and changes nothing. Reads the set
/// first; a room, which keeps it, calls [`apply_in_room`].
///
/// Alignment refs without a `room` are local to this doc; use [`apply_in_room`] so that refs
/// naming this room explicitly are checked as local too.
pub fn apply(txn: &mut TransactionMut, cmd: &Command, actor: &str, now: Millis) -> Result<Applied> {
    let view = Projection::load(&*txn, now);
    run(txn, None, &view, cmd, actor, now)
}

/// [`apply`] for a doc known to be room `room`, whose set is `view` (up to date with `txn`).
pub fn apply_in_room(
    txn: &mut TransactionMut,
    room: &str,
    view: &Projection,
    cmd: &Command,
    actor: &str,
    now: Millis,
) -> Result<Applied> {
    run(txn, Some(room), view, cmd, actor, now)
}

fn run(
    txn: &mut TransactionMut,
    room: Option<&str>,
    view: &Projection,
    cmd: &Command,
    actor: &str,
    now: Millis,
) -> Result<Applied> {
    validate::id("actor", actor)?;
    let ctx = Ctx {
        view,
        actor,
        now,
        room,
    };
    if view.cycle().is_some_and(|c| c.closed) && !cmd.allowed_when_closed() {
        return Err(CommandError::new(
            ErrorCode::CycleClosed,
            "",
            "the cycle is closed: the room takes scores (kr.score), retrospective notes \
             (objective.retro) and comments only; an admin may reopen it (cycle.reopen)",
        ));
    }
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
        Command::CycleClose(_) => review::cycle_close(txn, &ctx),
        Command::CycleReopen(_) => review::cycle_reopen(txn, &ctx),
        Command::KrScore(c) => review::kr_score(txn, &ctx, c),
        Command::ObjectiveRetro(c) => review::objective_retro(txn, &ctx, c),
    }
}
