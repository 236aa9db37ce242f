//! Applying an OKR command to a room, for every transport (REST and `/live`).
//!
//! The steps, in order: the principal's access must permit the command; the room is loaded
//! (or found loaded); the room applies it under its lock — asking the store for admission
//! first and validating the command in full before any write, so a refused command changes
//! nothing; then the answer waits until the change is durable (`Persister::flush`), so an
//! `ack` means the change survives a crash. A room that is closing (unloading after being
//! idle) is waited out for a moment and the command goes to its fresh copy.

use std::time::Duration;

use super::access::Principal;
use crate::hub::Hub;
use crate::okr::{Command, CommandError};
use crate::protocol::live::{ErrorBody, ProtocolErrorCode};
use crate::room::{Refused, Sink};
use crate::room_id::RoomId;

/// How long a command waits for a closing room to finish unloading before it is answered
/// `unavailable`. An idle unload takes one flush and one snapshot (milliseconds); a room
/// closing for shutdown never unloads, and its command must not hold the shutdown up.
const CLOSING_WAIT: Duration = Duration::from_secs(2);

/// A command that was applied and is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The room's sequence number its change is at (the current one if it changed nothing).
    pub seq: u64,
    /// The id of what a `*.create` command made.
    pub created_id: Option<String>,
}

/// The error `reason` of a room refused because its stored data is corrupt.
pub const STORE_CORRUPT: &str = "store_corrupt";

/// Why a command was not applied (or not confirmed).
#[derive(Debug, thiserror::Error)]
pub enum CommandFailed {
    /// The command is invalid for the set as it is; nothing changed.
    #[error(transparent)]
    Invalid(CommandError),
    /// The principal may not make this change.
    #[error("not allowed")]
    Forbidden,
    /// The room is closing and did not come back in time; nothing changed.
    #[error("the room is closing; retry")]
    Closing,
    /// The store is behind; nothing changed.
    #[error("{0}; nothing changed, retry later")]
    StoreBehind(String),
    /// The room could not be loaded.
    #[error("the room could not be loaded; retry later")]
    LoadFailed,
    /// The room's document is at its size limit; nothing changed.
    #[error("the room's document is at its size limit ({0} bytes); nothing changed")]
    DocTooLarge(usize),
    /// The room's stored data failed its integrity check: it is not served (`reason`
    /// `store_corrupt`).
    #[error("the room could not be loaded: its stored data failed its integrity check, and it is not served until it is restored")]
    Corrupt,
    /// Applied, but the store did not confirm the write.
    #[error("the change was applied but could not be confirmed durable; retry later")]
    NotDurable,
}

impl From<CommandFailed> for ErrorBody {
    fn from(e: CommandFailed) -> Self {
        let message = e.to_string();
        match e {
            CommandFailed::Invalid(e) => ErrorBody::from(e),
            CommandFailed::Forbidden => ErrorBody::protocol(ProtocolErrorCode::Forbidden, message),
            CommandFailed::DocTooLarge(_) => {
                ErrorBody::protocol(ProtocolErrorCode::DocTooLarge, message)
            }
            CommandFailed::Corrupt => {
                ErrorBody::protocol(ProtocolErrorCode::Unavailable, message).because(STORE_CORRUPT)
            }
            CommandFailed::Closing
            | CommandFailed::StoreBehind(_)
            | CommandFailed::LoadFailed
            | CommandFailed::NotDurable => {
                ErrorBody::protocol(ProtocolErrorCode::Unavailable, message)
            }
        }
    }
}

/// How long a durable command waits for the shared log to number it.
const SEQ_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Applies `command` to room `id` as `principal`, and waits until it is durable.
pub async fn apply<S: Sink>(
    hub: &Hub<S>,
    id: &RoomId,
    principal: &Principal,
    command: &Command,
) -> Result<Accepted, CommandFailed> {
    if !principal.access.permits(command) {
        return Err(CommandFailed::Forbidden);
    }
    let mut waited = false;
    let (room, seq, applied) = loop {
        let room = hub.get_or_load(id).await.map_err(|e| {
            tracing::error!(error = %e, "room could not be loaded");
            if e.is_corrupt() {
                CommandFailed::Corrupt
            } else {
                CommandFailed::LoadFailed
            }
        })?;
        if let Some(kr) = super::access::owner_only(command) {
            // The owner cannot change while the cycle is closed (the only time a score is
            // taken), so reading it before the command's own lock is not a race that matters.
            let owner = room.key_result_owner(kr);
            let admin = principal.access.role() == Some(crate::identity::Role::Admin);
            if !admin && owner.is_some_and(|o| o.as_deref() != Some(principal.user.as_str())) {
                return Err(CommandFailed::Forbidden);
            }
        }
        match room.command(command, &principal.user) {
            Ok((seq, applied)) => break (room, seq, applied),
            Err(Refused::Invalid(e)) => return Err(CommandFailed::Invalid(e)),
            Err(Refused::Unavailable(e)) => return Err(CommandFailed::StoreBehind(e.to_string())),
            Err(Refused::DocTooLarge(limit)) => return Err(CommandFailed::DocTooLarge(limit)),
            Err(Refused::Closing) if !waited => {
                // Unloading: its fresh copy (loaded again on the next turn) takes the command.
                waited = true;
                if tokio::time::timeout(CLOSING_WAIT, room.unloaded())
                    .await
                    .is_err()
                {
                    return Err(CommandFailed::Closing);
                }
            }
            Err(Refused::Closing) => return Err(CommandFailed::Closing),
        }
    };
    room.flush().await.map_err(|e| {
        tracing::error!(room = %id, error = %e, "command applied but not confirmed durable");
        CommandFailed::NotDurable
    })?;
    // On a shared log the number comes back from the log a round trip after the write (or,
    // had its notice been lost, with the relay's next check of the log's head).
    let seq = match tokio::time::timeout(SEQ_WAIT, room.seq_of(seq)).await {
        Ok(seq) => seq,
        Err(_) => {
            tracing::warn!(room = %id, "command durable, but its seq did not come back from the shared log in time; answering with the room's current seq");
            room.view().0
        }
    };
    Ok(Accepted {
        seq,
        created_id: applied.created_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::testing::hub;
    use crate::identity::UserId;
    use crate::okr::commands::ObjectiveCreate;

    fn create(title: &str) -> Command {
        Command::ObjectiveCreate(ObjectiveCreate {
            title: title.into(),
            description: None,
            owner: None,
            team: None,
            kind: None,
            visibility: None,
            commitment: None,
            aligned_to: Vec::new(),
            carried_from: None,
        })
    }

    fn ana() -> Principal {
        Principal::open(UserId::parse("ana").unwrap())
    }

    #[tokio::test]
    async fn a_command_during_an_unload_goes_to_the_fresh_room() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub(dir.path());
        let id = RoomId::parse("t.unload.q1").unwrap();
        let first = hub.get_or_load(&id).await.unwrap();
        // try_unload closes the room before its first await: the command finds it closing,
        // waits for the unload, and is applied to the room loaded afresh.
        let (who, command) = (ana(), create("Grow revenue"));
        let ((), accepted) = tokio::join!(hub.try_unload(&first), apply(&hub, &id, &who, &command));
        let accepted = accepted.unwrap();
        assert_eq!(accepted.seq, 1);
        assert!(accepted.created_id.is_some());
        let second = hub.get_or_load(&id).await.unwrap();
        assert!(
            !std::sync::Arc::ptr_eq(&first, &second),
            "the closing room took nothing"
        );
        let (_, set) = second.view();
        assert_eq!(set.objectives.len(), 1);
        assert_eq!(set.objectives[0].title, "Grow revenue");
    }

    #[tokio::test]
    async fn an_invalid_command_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub(dir.path());
        let id = RoomId::parse("t.invalid.q1").unwrap();
        let err = apply(&hub, &id, &ana(), &create("")).await.unwrap_err();
        assert!(matches!(err, CommandFailed::Invalid(_)), "{err:?}");
        let body = ErrorBody::from(err);
        assert!(matches!(
            body.code,
            crate::protocol::live::WireErrorCode::Command(_)
        ));
        let (seq, set) = hub.get_or_load(&id).await.unwrap().view();
        assert_eq!((seq, set.objectives.len()), (0, 0));
    }
}
