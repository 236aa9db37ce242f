//! Who acts, and what they may do.
//!
//! A [`Principal`] is the acting user with its [`Access`] to the room it acts in; every service
//! takes one, so authorization is decided here and nowhere else. The request edge
//! ([`crate::auth`]) finds the access from a verified token (its role in the room, see
//! `Verified::role_in`) or, on an open server, gives [`Access::Open`].
//!
//! | access | reads | presence | Yjs updates | commands |
//! |---|---|---|---|---|
//! | none (same org, no role) | public objectives, REST and `/live` only | — | — | none |
//! | `viewer` | public and team objectives | yes | refused | none (`forbidden`) |
//! | `editor` | public and team objectives | yes | under the document's rules | all but `cycle.set`, `cycle.close`, `cycle.reopen`, `*.archive`; `kr.score` on their own KRs |
//! | `admin` (and a personal room's owner) | everything | yes | under the document's rules (may delete) | all |
//! | open server | everything | yes | under the document's rules (may delete) | all |
//!
//! A private objective is read by its owner and the room's admins only; so that a Yjs client
//! (which holds the whole doc) never holds one it may not read, private objectives live in
//! personal rooms, which only their owner and admins sync (`docs/DECISIONS.md`).

use crate::identity::{Role, UserId};
use crate::okr::audience::{Reader, Sees};
use crate::okr::Command;
use crate::room_id::RoomId;

/// What a principal may do in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No authentication configured (a loopback server for trying things out): every request
    /// may read and change everything.
    Open,
    /// A member of the room with this role.
    Member(Role),
    /// A user of the room's org without a role in it: reads its public objectives.
    Org,
}

impl Access {
    /// The role the access gives in the room (`None`: no role).
    pub fn role(&self) -> Option<Role> {
        match self {
            Access::Open => Some(Role::Admin),
            Access::Member(role) => Some(*role),
            Access::Org => None,
        }
    }

    /// How far it sees.
    pub fn sees(&self) -> Sees {
        match self.role() {
            Some(Role::Admin) => Sees::All,
            Some(_) => Sees::Members,
            None => Sees::Public,
        }
    }

    /// What `user` reads as with this access.
    pub fn reader(&self, user: Option<&UserId>) -> Reader {
        Reader {
            user: user.map(|u| u.to_string()),
            sees: self.sees(),
        }
    }

    /// Whether this access allows `command`.
    pub fn permits(&self, command: &Command) -> bool {
        match self.role() {
            Some(Role::Admin) => true,
            Some(Role::Editor) => !admin_only(command),
            Some(Role::Viewer) | None => false,
        }
    }

    /// Whether it may sync the room's whole doc over `/sync`: a member, and in a personal
    /// room (where private objectives live) its owner or an admin.
    pub fn may_sync(&self, room: &RoomId) -> bool {
        match self.role() {
            Some(Role::Admin) => true,
            Some(_) => !room.is_personal(),
            None => false,
        }
    }
}

/// The commands only an admin gives: archiving (and restoring), and the cycle (setting,
/// closing, reopening it).
pub fn admin_only(command: &Command) -> bool {
    matches!(
        command,
        Command::CycleSet(_)
            | Command::CycleClose(_)
            | Command::CycleReopen(_)
            | Command::ObjectiveArchive(_)
            | Command::KrArchive(_)
    )
}

/// The KR whose owner (besides an admin) alone may give `command`: a score override.
pub fn owner_only(command: &Command) -> Option<&str> {
    match command {
        Command::KrScore(c) => Some(&c.key_result),
        _ => None,
    }
}

/// The acting user and its access to the room it acts in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: UserId,
    pub access: Access,
}

impl Principal {
    /// A principal with [`Access::Open`]: every request of an open server.
    pub fn open(user: UserId) -> Self {
        Principal {
            user,
            access: Access::Open,
        }
    }

    /// What it reads as.
    pub fn reader(&self) -> Reader {
        self.access.reader(Some(&self.user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::okr::commands::{CycleSet, ObjectiveArchive};

    fn archive() -> Command {
        Command::ObjectiveArchive(ObjectiveArchive {
            objective: "o1".into(),
            archived: true,
        })
    }

    fn cycle() -> Command {
        Command::CycleSet(CycleSet {
            cycle: None,
            kind: Default::default(),
            starts: "2026-07-01".into(),
            ends: "2026-09-30".into(),
        })
    }

    #[test]
    fn each_role_may_what_the_table_says() {
        let comment: Command = serde_json::from_value(serde_json::json!({
            "type": "comment.create", "target": {"objective": "o1"}, "text": "hi"
        }))
        .unwrap();
        for (access, comments, archives) in [
            (Access::Org, false, false),
            (Access::Member(Role::Viewer), false, false),
            (Access::Member(Role::Editor), true, false),
            (Access::Member(Role::Admin), true, true),
            (Access::Open, true, true),
        ] {
            assert_eq!(access.permits(&comment), comments, "{access:?}");
            assert_eq!(access.permits(&archive()), archives, "{access:?}");
            assert_eq!(access.permits(&cycle()), archives, "{access:?}");
        }
    }

    #[test]
    fn closing_is_an_admins_and_scoring_an_owners_or_an_admins() {
        let of = |v: serde_json::Value| -> Command { serde_json::from_value(v).unwrap() };
        let close = of(serde_json::json!({"type": "cycle.close"}));
        let reopen = of(serde_json::json!({"type": "cycle.reopen"}));
        let score = of(
            serde_json::json!({"type": "kr.score", "key_result": "k1", "score": 0.7, "reason": "r"}),
        );
        let retro =
            of(serde_json::json!({"type": "objective.retro", "objective": "o1", "worked": "w"}));
        let editor = Access::Member(Role::Editor);
        assert!(!editor.permits(&close) && !editor.permits(&reopen));
        assert!(Access::Member(Role::Admin).permits(&close));
        assert!(editor.permits(&score) && editor.permits(&retro));
        assert!(!Access::Member(Role::Viewer).permits(&score));
        assert_eq!(owner_only(&score), Some("k1"));
        assert_eq!(owner_only(&retro), None);
    }

    #[test]
    fn personal_rooms_are_synced_by_owner_and_admins_only() {
        let team = RoomId::parse("acme.sales.q3").unwrap();
        let personal = RoomId::parse("acme.~ana.q3").unwrap();
        assert!(Access::Member(Role::Viewer).may_sync(&team));
        assert!(!Access::Org.may_sync(&team));
        assert!(!Access::Member(Role::Editor).may_sync(&personal));
        assert!(Access::Member(Role::Admin).may_sync(&personal));
        assert_eq!(Access::Member(Role::Editor).sees(), Sees::Members);
        assert_eq!(Access::Org.sees(), Sees::Public);
    }
}
