//! Room identifiers, validated once at the edge.
//!
//! A room is one team's OKR set for one cycle, named `{org}.{team}.{cycle}` — for example
//! `acme.sales.2026-Q3`, or `acme.~ana.2026-Q3` for Ana's personal OKRs. The id travels in URLs
//! and becomes part of store keys (`okrhub:{room}:…` in Redis), so it is kept to a small, safe
//! alphabet: every id that reaches the hub has passed [`RoomId::parse`].

use std::fmt;
use std::sync::Arc;

/// The longest room id accepted, in bytes.
pub const MAX_ROOM_ID_LEN: usize = 128;

/// A validated room id. Cheap to clone (an `Arc<str>`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(Arc<str>);

/// Why a string is not a room id; the message is what the client sees as its close reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomIdError {
    #[error("room id is empty")]
    Empty,
    #[error("room id is longer than {MAX_ROOM_ID_LEN} bytes")]
    TooLong,
    #[error("room id must have three dot-separated parts, {{org}}.{{team}}.{{cycle}}")]
    WrongShape,
    #[error("room id part {0} is empty")]
    EmptyPart(usize),
    #[error("room id may only contain a-z A-Z 0-9 '-' '_' (and '~' to start the team part)")]
    BadChar,
}

impl RoomId {
    /// Validates `s` as `{org}.{team}.{cycle}`: three non-empty parts of `[A-Za-z0-9_-]`, the
    /// team part optionally starting with `~` (a personal OKR set), at most
    /// [`MAX_ROOM_ID_LEN`] bytes in all.
    ///
    /// ```
    /// use okrhub::room_id::RoomId;
    /// assert!(RoomId::parse("acme.sales.2026-Q3").is_ok());
    /// assert!(RoomId::parse("acme.~ana.2026-Q3").is_ok());
    /// assert!(RoomId::parse("acme/sales").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, RoomIdError> {
        if s.is_empty() {
            return Err(RoomIdError::Empty);
        }
        if s.len() > MAX_ROOM_ID_LEN {
            return Err(RoomIdError::TooLong);
        }
        let parts: Vec<&str> = s.split('.').collect();
        if parts.len() != 3 {
            return Err(RoomIdError::WrongShape);
        }
        for (i, part) in parts.iter().enumerate() {
            let body = if i == 1 {
                part.strip_prefix('~').unwrap_or(part)
            } else {
                part
            };
            if body.is_empty() {
                return Err(RoomIdError::EmptyPart(i + 1));
            }
            let ok = body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(RoomIdError::BadChar);
            }
        }
        Ok(RoomId(Arc::from(s)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The org part.
    pub fn org(&self) -> &str {
        self.0.split('.').next().unwrap_or_default()
    }

    /// The team part (`~ana` for a personal room).
    pub fn team(&self) -> &str {
        self.0.split('.').nth(1).unwrap_or_default()
    }

    /// The cycle part.
    pub fn cycle(&self) -> &str {
        self.0.split('.').nth(2).unwrap_or_default()
    }

    /// The owner of a personal room (`acme.~ana.2026-Q3` → `ana`), or `None` for a team room.
    pub fn personal_owner(&self) -> Option<&str> {
        self.0.split('.').nth(1)?.strip_prefix('~')
    }

    /// Whether this is a personal room (`{org}.~{user}.{cycle}`).
    pub fn is_personal(&self) -> bool {
        self.personal_owner().is_some()
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomId({})", self.0)
    }
}

impl std::str::FromStr for RoomId {
    type Err = RoomIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RoomId::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_team_and_personal_sets() {
        for ok in [
            "acme.sales.2026-Q3",
            "acme.~ana.2026-Q3",
            "a.b.c",
            "A_1.b-2.c_3",
        ] {
            assert_eq!(RoomId::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_each_kind_of_bad_id() {
        assert_eq!(RoomId::parse(""), Err(RoomIdError::Empty));
        assert_eq!(RoomId::parse(&"a".repeat(129)), Err(RoomIdError::TooLong));
        assert_eq!(RoomId::parse("acme.sales"), Err(RoomIdError::WrongShape));
        assert_eq!(RoomId::parse("a.b.c.d"), Err(RoomIdError::WrongShape));
        assert_eq!(RoomId::parse("acme..q3"), Err(RoomIdError::EmptyPart(2)));
        assert_eq!(RoomId::parse("acme.~.q3"), Err(RoomIdError::EmptyPart(2)));
        assert_eq!(RoomId::parse("acme.sa les.q3"), Err(RoomIdError::BadChar));
        assert_eq!(RoomId::parse("acme.sales.q3/x"), Err(RoomIdError::BadChar));
        assert_eq!(RoomId::parse("~acme.sales.q3"), Err(RoomIdError::BadChar));
        assert_eq!(RoomId::parse("acme.sales.{q3}"), Err(RoomIdError::BadChar));
    }
}
