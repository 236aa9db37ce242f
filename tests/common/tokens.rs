//! Minting test tokens: the claims of a user in an org with room-pattern roles, signed HS256
//! with the secret the test server was started with (`ServeArgs::security.jwt_secret`).

use std::collections::BTreeMap;

use okrhub::auth::token::Claims;
use okrhub::identity::Role;

/// Now, in unix seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The claims of `user` in `org` with `roles` (room pattern → role), valid for an hour.
pub fn claims(user: &str, org: &str, roles: &[(&str, Role)]) -> Claims {
    Claims {
        sub: user.into(),
        name: None,
        org: org.into(),
        roles: roles
            .iter()
            .map(|(p, r)| (p.to_string(), *r))
            .collect::<BTreeMap<_, _>>(),
        exp: now() + 3600,
        nbf: None,
        iat: None,
        iss: None,
        aud: None,
    }
}

/// `claims` signed HS256 with `secret`.
pub fn hs256(secret: &str, claims: &Claims) -> String {
    okrhub::auth::token::mint_hs256(secret.as_bytes(), claims).expect("mint an HS256 token")
}
