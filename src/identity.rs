//! User ids: who acts.
//!
//! A user id is 1 to 64 characters: letters, digits and `.` `_` `-` `@`. It is what
//! check-ins, comments, mentions and events carry as `author`, `by`, `user`.

use std::fmt;
use std::sync::Arc;

/// Longest user id accepted.
pub const MAX_USER_LEN: usize = 64;

/// A validated user id, cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(Arc<str>);

impl UserId {
    pub fn parse(s: &str) -> Result<Self, IdentityError> {
        let ok_char = |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
        if s.is_empty() || s.chars().count() > MAX_USER_LEN || !s.chars().all(ok_char) {
            return Err(IdentityError::InvalidUser(s.chars().take(80).collect()));
        }
        Ok(UserId(s.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a user may do in a room, lowest first (`Viewer < Editor < Admin`).
///
/// - `viewer`: reads and presence (a meeting-room screen); never changes the doc.
/// - `editor`: co-edits every objective and key result of the room, checks in, comments.
/// - `admin`: also archives and deletes, changes the cycle, and writes in other people's
///   personal rooms.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Editor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "editor" => Ok(Role::Editor),
            "admin" => Ok(Role::Admin),
            _ => Err(format!("unknown role {s:?}: viewer, editor or admin")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("invalid user id {0:?}: 1 to 64 letters, digits, '.', '_', '-' or '@'")]
    InvalidUser(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_checked() {
        assert!(UserId::parse("ann").is_ok());
        assert!(UserId::parse("li.wei@acme-cn").is_ok());
        assert!(UserId::parse("王芳").is_ok());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("a b").is_err());
        assert!(UserId::parse(&"x".repeat(65)).is_err());
    }
}
