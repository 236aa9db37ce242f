//! Importing a file's objectives, KRs, check-ins and comments into a room: all of them or
//! nothing.
//!
//! The file is a list of commands ([`crate::protocol::transfer::plan`]). They are run, as the
//! importer, on a copy of the room's doc — each validated in full exactly as a command from
//! `/live` or REST is ([`okr::apply_in_room`]), the ids they create fed to the ones after —
//! and every refused one is reported with its line. Only when none is refused does what they
//! wrote reach the room: as one update, committed like any command's (logged, persisted,
//! broadcast, turned into events) and answered once durable. The copy is taken from the room
//! as it is when the import starts; the import only adds entries, so an edit made meanwhile
//! merges with it as any two concurrent edits do.
//!
//! The document's rules hold: an imported check-in or comment is the importer's, at the
//! server's clock (one millisecond apart, in the file's order, so its order is kept) — an
//! import cannot put words in another user's mouth. Owners are kept.

use std::collections::{BTreeMap, HashMap};

use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

use super::access::Principal;
use super::commands::CommandFailed;
use crate::hub::Hub;
use crate::identity::Role;
use crate::okr::{self, Command, Projection};
use crate::protocol::transfer::{creates_kind, refs, resolve, ImportAccepted, RowError, Step};
use crate::room::{Refused, Sink};
use crate::room_id::RoomId;

/// Why an import was not applied. Nothing was.
#[derive(Debug, thiserror::Error)]
pub enum ImportFailed {
    /// Only a room's admin imports.
    #[error("only an admin of the room imports into it")]
    Forbidden,
    /// These rows were refused.
    #[error("{} rows refused; nothing imported", .0.len())]
    Rows(Vec<RowError>),
    /// The room could not take the change.
    #[error(transparent)]
    Failed(CommandFailed),
}

/// Imports `steps` into room `id` as `principal` (an admin), and waits until it is durable.
pub async fn import<S: Sink>(
    hub: &Hub<S>,
    id: &RoomId,
    principal: &Principal,
    steps: &[Step],
) -> Result<ImportAccepted, ImportFailed> {
    if principal.access.role() != Some(Role::Admin) {
        return Err(ImportFailed::Forbidden);
    }
    let load = || async {
        hub.get_or_load(id).await.map_err(|e| {
            tracing::error!(error = %e, "room could not be loaded");
            ImportFailed::Failed(if e.is_corrupt() {
                CommandFailed::Corrupt
            } else {
                CommandFailed::LoadFailed
            })
        })
    };
    let room = load().await?;
    let base = room.read(|doc| {
        doc.transact()
            .encode_state_as_update_v1(&StateVector::default())
    });
    let now = crate::clock::now_millis();
    let dry = dry_run(id, &base, steps, principal.user.as_str(), now)?;
    let mut accepted = dry.accepted;
    accepted.room = id.to_string();
    let mut room = room;
    let mut retried = false;
    loop {
        let update = dry.update.clone();
        let result = room.transact(Some(&principal.user), move |txn| {
            Update::decode_v1(&update)
                .map_err(|e| e.to_string())
                .and_then(|u| txn.apply_update(u).map_err(|e| e.to_string()))
        });
        match result {
            Ok(Ok(())) => break,
            Ok(Err(e)) => {
                tracing::error!(room = %id, error = %e, "an import's update could not be applied");
                return Err(ImportFailed::Failed(CommandFailed::NotDurable));
            }
            Err(Refused::Closing) if !retried => {
                retried = true;
                let _ =
                    tokio::time::timeout(std::time::Duration::from_secs(2), room.unloaded()).await;
                room = load().await?;
            }
            Err(Refused::Closing) => return Err(ImportFailed::Failed(CommandFailed::Closing)),
            Err(Refused::Unavailable(e)) => {
                return Err(ImportFailed::Failed(CommandFailed::StoreBehind(
                    e.to_string(),
                )))
            }
            Err(Refused::DocTooLarge(limit)) => {
                return Err(ImportFailed::Failed(CommandFailed::DocTooLarge(limit)))
            }
            Err(Refused::Invalid(e)) => {
                return Err(ImportFailed::Failed(CommandFailed::Invalid(e)));
            }
        }
    }
    room.flush().await.map_err(|e| {
        tracing::error!(room = %id, error = %e, "import applied but not confirmed durable");
        ImportFailed::Failed(CommandFailed::NotDurable)
    })?;
    accepted.seq = room.seq();
    Ok(accepted)
}

/// What a dry run found: the update to apply and what it creates.
struct Dry {
    update: Vec<u8>,
    accepted: ImportAccepted,
}

/// Runs `steps` on a copy of the doc whose state is `base`; the update they make, or every
/// refused row.
fn dry_run(
    id: &RoomId,
    base: &[u8],
    steps: &[Step],
    actor: &str,
    now: okr::Millis,
) -> Result<Dry, ImportFailed> {
    let doc = Doc::new();
    {
        let update = Update::decode_v1(base).map_err(|e| {
            tracing::error!(room = %id, error = %e, "the room's own state could not be read back");
            ImportFailed::Failed(CommandFailed::LoadFailed)
        })?;
        let mut txn = doc.transact_mut();
        txn.apply_update(update).map_err(|e| {
            tracing::error!(room = %id, error = %e, "the room's own state could not be read back");
            ImportFailed::Failed(CommandFailed::LoadFailed)
        })?;
    }
    let before = doc.transact().state_vector();
    // The set as the steps go, kept up to date from what each touched (as a room keeps its
    // own), so that each step is validated against all the ones before it.
    let watch = okr::Watch::new(&doc, "import");
    let mut view = Projection::load(&doc.transact(), now);
    let has_cycle = view.to_set().cycle.is_some();
    let mut ids: HashMap<String, String> = HashMap::new();
    // A refused step's file id → its row, so that what refers to it says so.
    let mut refused: HashMap<String, String> = HashMap::new();
    let mut errors = Vec::new();
    let mut accepted = ImportAccepted {
        room: String::new(),
        seq: 0,
        objectives: 0,
        key_results: 0,
        checkins: 0,
        comments: 0,
        cycle_set: false,
        ids: BTreeMap::new(),
    };
    for (i, step) in steps.iter().enumerate() {
        if step.only_without_cycle && has_cycle {
            continue;
        }
        if let Some(missing) = refs(&step.command)
            .iter()
            .find(|r| refused.contains_key(*r))
        {
            let message = format!(
                "refers to {missing}, which was refused ({})",
                refused[missing]
            );
            errors.push(step.locus.error(None, message));
            mark_refused(step, &mut refused);
            continue;
        }
        let mut command = step.command.clone();
        resolve(&mut command, &ids);
        let at = now + i as i64;
        let result = {
            let mut txn = doc.transact_mut();
            okr::apply_in_room(&mut txn, id.as_str(), &view, &command, actor, at)
        };
        view.apply(&doc.transact(), &watch.take());
        match result {
            Ok(applied) => {
                if let (Some(file_id), Some(kind), Some(new)) =
                    (&step.creates, creates_kind(&command), applied.created_id)
                {
                    if kind != "comment" {
                        accepted.ids.insert(file_id.clone(), new.clone());
                    }
                    ids.insert(format!("{kind}/{file_id}"), new);
                }
                match command {
                    Command::CycleSet(_) => accepted.cycle_set = true,
                    Command::ObjectiveCreate(_) => accepted.objectives += 1,
                    Command::KrCreate(_) => accepted.key_results += 1,
                    Command::CheckinCreate(_) => accepted.checkins += 1,
                    Command::CommentCreate(_) => accepted.comments += 1,
                    _ => {}
                }
            }
            Err(e) => {
                errors.push(step.locus.error(e.field.as_deref(), e.message));
                mark_refused(step, &mut refused);
            }
        }
    }
    if !errors.is_empty() {
        return Err(ImportFailed::Rows(errors));
    }
    let update = doc.transact().encode_state_as_update_v1(&before);
    Ok(Dry { update, accepted })
}

fn mark_refused(step: &Step, refused: &mut HashMap<String, String>) {
    if let (Some(file_id), Some(kind)) = (&step.creates, creates_kind(&step.command)) {
        refused.insert(format!("{kind}/{file_id}"), step.locus.at.clone());
    }
}
