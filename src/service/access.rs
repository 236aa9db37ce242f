//! Who acts, and what they may do.
//!
//! A [`Principal`] is the acting user with its [`Access`] to the room it acts in; every service
//! takes one, so authorization is decided here and nowhere else. Until signed tokens arrive
//! there is one access level, [`Access::Open`]: anyone who names a user may do everything
//! (`proto/PROTOCOL.md`, "Who acts"). Roles (viewer, editor, admin) become more variants of
//! [`Access`] and more rules in [`Access::permits`]; the callers do not change.

use crate::identity::UserId;
use crate::okr::Command;

/// What a principal may do in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// No authentication configured: every request may read and change everything.
    Open,
}

impl Access {
    /// Whether this access allows `command`.
    pub fn permits(&self, _command: &Command) -> bool {
        match self {
            Access::Open => true,
        }
    }
}

/// The acting user and its access to the room it acts in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: UserId,
    pub access: Access,
}

impl Principal {
    /// A principal with [`Access::Open`]: what every request gets until tokens are checked.
    pub fn open(user: UserId) -> Self {
        Principal {
            user,
            access: Access::Open,
        }
    }
}
