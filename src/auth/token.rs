//! What a signed okrhub token says, once its signature has been checked.
//!
//! A token is a JWT whose claims ([`Claims`]) name the user (`sub`), their org (`org`) and
//! the roles they hold in rooms of that org (`roles`: room pattern → role). Signature and time
//! checks live in [`super::keys::Verifier`]; this file turns checked claims into a
//! [`Verified`] principal, answers "which role in this room" ([`Verified::role_in`]) and mints
//! HS256 tokens for `okrhub token`.
//!
//! Nothing crosses orgs: every grant of a token must name the token's own org, and
//! [`Verified::role_in`] gives nothing in another org's rooms.

use std::collections::BTreeMap;
use std::fmt;

use crate::identity::{Role, UserId};
use crate::room_id::{RoomId, MAX_ROOM_ID_LEN};

/// Shortest HS256 secret accepted, in bytes (for verifying and for minting).
pub const MIN_SECRET_LEN: usize = 32;

/// Most grants (entries of `roles`) one token may carry.
pub const MAX_GRANTS: usize = 64;

/// Longest org (and room-id part) accepted in a claim, in bytes.
pub const MAX_ORG_LEN: usize = 64;

/// Claims of an okrhub token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    /// The user id; must parse as a [`UserId`].
    pub sub: String,
    /// A display name, if the issuer gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The user's org: a valid room-id part (`[A-Za-z0-9_-]`, 1 to 64 bytes).
    pub org: String,
    /// Room pattern (`acme.sales.*`, `acme.*.*`) → role there.
    #[serde(default)]
    pub roles: BTreeMap<String, Role>,
    /// Expiry, unix seconds. Required.
    pub exp: u64,
    /// Not before, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued at, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Issuer; checked only when the server is configured with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience; checked only when the server is configured with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// Why a token is refused. [`TokenError::code`] is the stable detail clients see.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TokenError {
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token is not valid yet (its nbf is in the future)")]
    NotYetValid,
    #[error("token issuer (iss) is missing or not the expected one")]
    WrongIssuer,
    #[error("token audience (aud) is missing or not the expected one")]
    WrongAudience,
    #[error("token names a key (kid) that is not configured")]
    UnknownKey,
    #[error("token algorithm refused: {0}")]
    Algorithm(String),
    #[error("invalid token claims: {0}")]
    InvalidClaims(String),
}

impl TokenError {
    /// A stable snake_case detail for error bodies and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Malformed(_) => "malformed",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::WrongIssuer => "wrong_issuer",
            TokenError::WrongAudience => "wrong_audience",
            TokenError::UnknownKey => "unknown_key",
            TokenError::Algorithm(_) => "algorithm",
            TokenError::InvalidClaims(_) => "invalid_claims",
        }
    }
}

/// A verified token: who, of which org, with which grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub user: UserId,
    pub name: Option<String>,
    pub org: String,
    pub grants: Vec<Grant>,
    /// Unix seconds.
    pub expires_at: u64,
}

/// One role grant: a room pattern and the role it gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub pattern: RoomPattern,
    pub role: Role,
}

/// One part of a [`RoomPattern`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum PatternPart {
    /// `*`: any one part.
    Any,
    /// A literal part, matched exactly.
    Exact(String),
}

impl PatternPart {
    fn matches(&self, part: &str) -> bool {
        match self {
            PatternPart::Any => true,
            PatternPart::Exact(p) => p == part,
        }
    }
}

impl fmt::Display for PatternPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatternPart::Any => f.write_str("*"),
            PatternPart::Exact(p) => f.write_str(p),
        }
    }
}

/// `{org}.{team}.{cycle}` where any part may be `*` (matches any one part, personal `~x`
/// teams included); a literal part matches exactly.
///
/// ```
/// use okrhub::auth::token::RoomPattern;
/// use okrhub::room_id::RoomId;
/// let p = RoomPattern::parse("acme.*.2026-Q3").unwrap();
/// assert!(p.matches(&RoomId::parse("acme.sales.2026-Q3").unwrap()));
/// assert!(p.matches(&RoomId::parse("acme.~ana.2026-Q3").unwrap()));
/// assert!(!p.matches(&RoomId::parse("acme.sales.2026-Q4").unwrap()));
/// assert_eq!(p.org(), Some("acme"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomPattern {
    parts: [PatternPart; 3],
}

impl RoomPattern {
    /// Parses a pattern: exactly three dot-separated parts, each `*` or a valid room-id part
    /// (`[A-Za-z0-9_-]+`; the team part may start with `~`), at most 128 bytes in all.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("room pattern is empty".into());
        }
        if s.len() > MAX_ROOM_ID_LEN {
            return Err(format!(
                "room pattern is longer than {MAX_ROOM_ID_LEN} bytes"
            ));
        }
        let raw: Vec<&str> = s.split('.').collect();
        let [org, team, cycle] = raw.as_slice() else {
            return Err(
                "room pattern must have three dot-separated parts, {org}.{team}.{cycle}".into(),
            );
        };
        let part = |i: usize, p: &str| -> Result<PatternPart, String> {
            if p == "*" {
                return Ok(PatternPart::Any);
            }
            let body = if i == 1 {
                p.strip_prefix('~').unwrap_or(p)
            } else {
                p
            };
            if is_room_part(body) {
                Ok(PatternPart::Exact(p.to_owned()))
            } else {
                Err(format!(
                    "room pattern part {} ({p:?}) must be '*' or [A-Za-z0-9_-]+{}",
                    i + 1,
                    if i == 1 {
                        " (optionally after '~')"
                    } else {
                        ""
                    }
                ))
            }
        };
        Ok(RoomPattern {
            parts: [part(0, org)?, part(1, team)?, part(2, cycle)?],
        })
    }

    /// Whether `room` is one of the rooms this pattern names.
    pub fn matches(&self, room: &RoomId) -> bool {
        let (org, team, cycle) = room_parts(room);
        self.parts[0].matches(org) && self.parts[1].matches(team) && self.parts[2].matches(cycle)
    }

    /// The org this pattern is limited to; `None` for `*`.
    pub fn org(&self) -> Option<&str> {
        match &self.parts[0] {
            PatternPart::Any => None,
            PatternPart::Exact(org) => Some(org),
        }
    }
}

impl fmt::Display for RoomPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [org, team, cycle] = &self.parts;
        write!(f, "{org}.{team}.{cycle}")
    }
}

/// `[A-Za-z0-9_-]+`: what every room-id part is made of.
fn is_room_part(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A room id's `(org, team, cycle)`; a [`RoomId`] always has three parts.
fn room_parts(room: &RoomId) -> (&str, &str, &str) {
    let mut it = room.as_str().splitn(3, '.');
    let org = it.next().unwrap_or_default();
    let team = it.next().unwrap_or_default();
    let cycle = it.next().unwrap_or_default();
    (org, team, cycle)
}

impl Verified {
    /// Checks what the claims say (after the signature and times have been checked):
    /// `sub` is a [`UserId`], `org` a room-id part of at most 64 bytes, at most 64 grants, and
    /// every grant's pattern parses and names the token's own org (a `*` org is refused too:
    /// nothing crosses orgs). Any failure refuses the whole token.
    pub fn from_claims(claims: Claims) -> Result<Verified, TokenError> {
        let user = UserId::parse(&claims.sub)
            .map_err(|e| TokenError::InvalidClaims(format!("sub: {e}")))?;
        if claims.org.len() > MAX_ORG_LEN || !is_room_part(&claims.org) {
            return Err(TokenError::InvalidClaims(format!(
                "org {:?} must be 1 to {MAX_ORG_LEN} of [A-Za-z0-9_-]",
                claims.org.chars().take(80).collect::<String>()
            )));
        }
        if claims.roles.len() > MAX_GRANTS {
            return Err(TokenError::InvalidClaims(format!(
                "{} role grants; at most {MAX_GRANTS} are accepted",
                claims.roles.len()
            )));
        }
        let mut grants = Vec::with_capacity(claims.roles.len());
        for (pattern, role) in claims.roles {
            let shown: String = pattern.chars().take(140).collect();
            let parsed = RoomPattern::parse(&pattern)
                .map_err(|e| TokenError::InvalidClaims(format!("role pattern {shown:?}: {e}")))?;
            if parsed.org() != Some(claims.org.as_str()) {
                return Err(TokenError::InvalidClaims(format!(
                    "role pattern {shown:?} is not limited to the token's org {:?}: nothing crosses orgs",
                    claims.org
                )));
            }
            grants.push(Grant {
                pattern: parsed,
                role,
            });
        }
        Ok(Verified {
            user,
            name: claims.name,
            org: claims.org,
            grants,
            expires_at: claims.exp,
        })
    }

    /// The role this token gives in `room`, if any.
    ///
    /// - A room of another org: `None`, whatever the grants say.
    /// - A team room: the highest role among the grants whose pattern matches the room
    ///   (`None` when none matches).
    /// - A personal room `{org}.~{user}.{cycle}`: its owner (`user` is this token's user)
    ///   is `Admin` there. Anyone else gets at most `Viewer` — an `editor` grant on
    ///   `acme.*.*` lets a colleague read `acme.~ana.q1`, not write in it — unless a matching
    ///   grant gives `Admin`. With no matching grant, a colleague gets `None`.
    pub fn role_in(&self, room: &RoomId) -> Option<Role> {
        let (org, team, _) = room_parts(room);
        if org != self.org {
            return None;
        }
        let granted = self
            .grants
            .iter()
            .filter(|g| g.pattern.matches(room))
            .map(|g| g.role)
            .max();
        match team.strip_prefix('~') {
            None => granted,
            Some(owner) if owner == self.user.as_str() => Some(Role::Admin),
            Some(_) => granted.map(|r| if r == Role::Admin { r } else { Role::Viewer }),
        }
    }
}

/// Mints an HS256 token (for `okrhub token`). The claims are checked as a server would check
/// them ([`Verified::from_claims`]), so a token that would be refused for its claims is never
/// minted; the secret must be at least [`MIN_SECRET_LEN`] bytes (else
/// [`TokenError::Algorithm`]).
pub fn mint_hs256(secret: &[u8], claims: &Claims) -> Result<String, TokenError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(TokenError::Algorithm(format!(
            "an HS256 secret must be at least {MIN_SECRET_LEN} bytes"
        )));
    }
    Verified::from_claims(claims.clone())?;
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let key = jsonwebtoken::EncodingKey::from_secret(secret)
        .map_err(|e| TokenError::Algorithm(format!("HS256 secret: {e}")))?;
    jsonwebtoken::encode(&header, claims, &key)
        .map_err(|e| TokenError::Algorithm(format!("HS256 signing failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(s: &str) -> RoomId {
        RoomId::parse(s).unwrap()
    }

    fn claims(sub: &str, org: &str, roles: &[(&str, Role)]) -> Claims {
        Claims {
            sub: sub.into(),
            name: None,
            org: org.into(),
            roles: roles.iter().map(|(p, r)| (p.to_string(), *r)).collect(),
            exp: 4_000_000_000,
            nbf: None,
            iat: None,
            iss: None,
            aud: None,
        }
    }

    fn verified(sub: &str, roles: &[(&str, Role)]) -> Verified {
        Verified::from_claims(claims(sub, "acme", roles)).unwrap()
    }

    #[test]
    fn pattern_parse_accepts_literals_and_wildcards() {
        for ok in [
            "acme.sales.2026-Q3",
            "acme.*.*",
            "acme.~ana.*",
            "*.*.*",
            "acme.sales.*",
            "A_1.b-2.c_3",
        ] {
            let p = RoomPattern::parse(ok).unwrap();
            assert_eq!(p.to_string(), ok, "display round-trips");
        }
    }

    #[test]
    fn pattern_parse_rejects_bad_shapes() {
        for bad in [
            "",
            "acme",
            "acme.sales",
            "acme.sales.q3.x",
            "acme..q3",
            "acme.~.q3",
            "acme.sa*.q3",
            "acme.**.q3",
            "acme.~*.q3",
            "~acme.sales.q3",
            "acme.sales.~q3",
            "acme.sa les.q3",
            "acme.sales.q3/x",
        ] {
            assert!(RoomPattern::parse(bad).is_err(), "{bad:?} must be refused");
        }
        let longest = format!("acme.{}.q3", "t".repeat(120));
        assert_eq!(longest.len(), 128);
        assert!(RoomPattern::parse(&longest).is_ok());
        let long = format!("acme.{}.q3", "t".repeat(121));
        assert!(RoomPattern::parse(&long).unwrap_err().contains("128"));
    }

    #[test]
    fn pattern_matches_exact_and_wildcard_parts() {
        let exact = RoomPattern::parse("acme.sales.q3").unwrap();
        assert!(exact.matches(&room("acme.sales.q3")));
        assert!(!exact.matches(&room("acme.sales.q4")));
        assert!(!exact.matches(&room("acme.Sales.q3")));
        assert!(!exact.matches(&room("other.sales.q3")));

        let team_any = RoomPattern::parse("acme.*.q3").unwrap();
        assert!(team_any.matches(&room("acme.sales.q3")));
        assert!(
            team_any.matches(&room("acme.~ana.q3")),
            "* includes personal teams"
        );
        assert!(!team_any.matches(&room("acme.sales.q4")));

        let personal = RoomPattern::parse("acme.~ana.*").unwrap();
        assert!(personal.matches(&room("acme.~ana.q1")));
        assert!(!personal.matches(&room("acme.ana.q1")));
        assert!(!personal.matches(&room("acme.~bob.q1")));

        let all = RoomPattern::parse("*.*.*").unwrap();
        assert!(all.matches(&room("x.y.z")));
    }

    #[test]
    fn pattern_org() {
        assert_eq!(RoomPattern::parse("acme.*.*").unwrap().org(), Some("acme"));
        assert_eq!(RoomPattern::parse("*.sales.q3").unwrap().org(), None);
    }

    #[test]
    fn claims_with_a_grant_in_another_org_are_refused() {
        let err = Verified::from_claims(claims(
            "ann",
            "acme",
            &[("acme.sales.*", Role::Editor), ("globex.*.*", Role::Admin)],
        ))
        .unwrap_err();
        let TokenError::InvalidClaims(msg) = &err else {
            panic!("{err:?}")
        };
        assert!(msg.contains("globex.*.*"), "{msg}");
        assert!(msg.contains("nothing crosses orgs"), "{msg}");
        assert_eq!(err.code(), "invalid_claims");

        let err =
            Verified::from_claims(claims("ann", "acme", &[("*.*.*", Role::Viewer)])).unwrap_err();
        assert!(
            matches!(&err, TokenError::InvalidClaims(m) if m.contains("*.*.*")),
            "{err:?}"
        );
    }

    #[test]
    fn claims_with_bad_patterns_sub_or_org_are_refused() {
        let err = Verified::from_claims(claims("ann", "acme", &[("acme.sales", Role::Viewer)]))
            .unwrap_err();
        assert!(
            matches!(&err, TokenError::InvalidClaims(m) if m.contains("acme.sales")),
            "{err:?}"
        );
        for sub in ["", "a b", "<script>"] {
            let err = Verified::from_claims(claims(sub, "acme", &[])).unwrap_err();
            assert!(
                matches!(&err, TokenError::InvalidClaims(m) if m.starts_with("sub")),
                "{err:?}"
            );
        }
        for org in ["", "ac.me", "~acme", "*", &"o".repeat(65)] {
            let err = Verified::from_claims(claims("ann", org, &[])).unwrap_err();
            assert!(
                matches!(&err, TokenError::InvalidClaims(m) if m.starts_with("org")),
                "{org:?}: {err:?}"
            );
        }
        assert!(Verified::from_claims(claims("ann", &"o".repeat(64), &[])).is_ok());
    }

    #[test]
    fn at_most_64_grants() {
        let patterns: Vec<String> = (0..65).map(|i| format!("acme.t{i}.*")).collect();
        let mut c = claims("ann", "acme", &[]);
        c.roles = patterns.iter().map(|p| (p.clone(), Role::Viewer)).collect();
        assert!(matches!(
            Verified::from_claims(c.clone()),
            Err(TokenError::InvalidClaims(m)) if m.contains("64")
        ));
        c.roles.pop_last();
        assert_eq!(Verified::from_claims(c).unwrap().grants.len(), 64);
    }

    #[test]
    fn verified_carries_the_claims() {
        let mut c = claims("ann", "acme", &[("acme.sales.*", Role::Editor)]);
        c.name = Some("Ann Lee".into());
        let v = Verified::from_claims(c).unwrap();
        assert_eq!(v.user.as_str(), "ann");
        assert_eq!(v.name.as_deref(), Some("Ann Lee"));
        assert_eq!(v.org, "acme");
        assert_eq!(v.expires_at, 4_000_000_000);
        assert_eq!(
            v.grants,
            vec![Grant {
                pattern: RoomPattern::parse("acme.sales.*").unwrap(),
                role: Role::Editor
            }]
        );
    }

    #[test]
    fn role_in_highest_matching_grant_wins() {
        let v = verified(
            "ann",
            &[
                ("acme.*.*", Role::Viewer),
                ("acme.sales.*", Role::Editor),
                ("acme.sales.q3", Role::Admin),
                ("acme.ops.q3", Role::Editor),
            ],
        );
        assert_eq!(v.role_in(&room("acme.sales.q3")), Some(Role::Admin));
        assert_eq!(v.role_in(&room("acme.sales.q4")), Some(Role::Editor));
        assert_eq!(v.role_in(&room("acme.hr.q3")), Some(Role::Viewer));
        assert_eq!(v.role_in(&room("acme.ops.q3")), Some(Role::Editor));

        let narrow = verified("ann", &[("acme.sales.*", Role::Editor)]);
        assert_eq!(narrow.role_in(&room("acme.hr.q3")), None);
    }

    #[test]
    fn role_in_another_org_is_none() {
        let v = verified("ann", &[("acme.*.*", Role::Admin)]);
        assert_eq!(v.role_in(&room("globex.sales.q3")), None);
        assert_eq!(
            v.role_in(&room("globex.~ann.q3")),
            None,
            "not even a personal room"
        );
    }

    #[test]
    fn role_in_personal_rooms() {
        let ana = verified("ana", &[]);
        assert_eq!(ana.role_in(&room("acme.~ana.q1")), Some(Role::Admin));
        assert_eq!(ana.role_in(&room("acme.~bob.q1")), None);

        let colleague = verified("bob", &[("acme.*.*", Role::Editor)]);
        assert_eq!(colleague.role_in(&room("acme.~ana.q1")), Some(Role::Viewer));
        assert_eq!(
            colleague.role_in(&room("acme.sales.q1")),
            Some(Role::Editor)
        );

        let viewer = verified("bob", &[("acme.*.*", Role::Viewer)]);
        assert_eq!(viewer.role_in(&room("acme.~ana.q1")), Some(Role::Viewer));

        let admin = verified("bob", &[("acme.*.*", Role::Admin)]);
        assert_eq!(admin.role_in(&room("acme.~ana.q1")), Some(Role::Admin));

        let targeted = verified(
            "bob",
            &[("acme.*.*", Role::Editor), ("acme.~ana.*", Role::Admin)],
        );
        assert_eq!(targeted.role_in(&room("acme.~ana.q1")), Some(Role::Admin));
        assert_eq!(targeted.role_in(&room("acme.~cy.q1")), Some(Role::Viewer));
    }

    #[test]
    fn error_codes_are_stable() {
        let all = [
            (TokenError::Malformed("x".into()), "malformed"),
            (TokenError::BadSignature, "bad_signature"),
            (TokenError::Expired, "expired"),
            (TokenError::NotYetValid, "not_yet_valid"),
            (TokenError::WrongIssuer, "wrong_issuer"),
            (TokenError::WrongAudience, "wrong_audience"),
            (TokenError::UnknownKey, "unknown_key"),
            (TokenError::Algorithm("x".into()), "algorithm"),
            (TokenError::InvalidClaims("x".into()), "invalid_claims"),
        ];
        for (e, code) in all {
            assert_eq!(e.code(), code);
            assert!(!e.to_string().is_empty());
        }
        assert_eq!(TokenError::Expired.to_string(), "token expired");
        assert_eq!(
            TokenError::BadSignature.to_string(),
            "token signature does not verify"
        );
    }

    #[test]
    fn mint_refuses_short_secrets_and_bad_claims() {
        let c = claims("ann", "acme", &[("acme.sales.*", Role::Editor)]);
        assert!(matches!(
            mint_hs256(&[7u8; 31], &c),
            Err(TokenError::Algorithm(_))
        ));
        let token = mint_hs256(&[7u8; 32], &c).unwrap();
        assert_eq!(token.split('.').count(), 3);

        let bad = claims("ann", "acme", &[("globex.*.*", Role::Editor)]);
        assert!(matches!(
            mint_hs256(&[7u8; 32], &bad),
            Err(TokenError::InvalidClaims(_))
        ));
    }

    #[test]
    fn claims_serde_skips_absent_options() {
        let c = claims("ann", "acme", &[("acme.sales.*", Role::Editor)]);
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"sub":"ann","org":"acme","roles":{"acme.sales.*":"editor"},"exp":4000000000u64})
        );
        let back: Claims =
            serde_json::from_value(serde_json::json!({"sub":"ann","org":"acme","exp":1})).unwrap();
        assert!(back.roles.is_empty());
    }
}
