//! The subcommands other than `serve`: `okrhub export` and `okrhub import` (the work is
//! [`crate::store::transfer`]'s; this file turns their arguments into it and reports), and
//! `okrhub token` (minting is [`crate::auth::token`]'s).

use std::collections::BTreeMap;

use crate::auth::token::{mint_hs256, Claims};
use crate::config::{ExportArgs, ImportArgs, TokenArgs};
use crate::store::{self, transfer};

/// `okrhub export`.
pub async fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let store = store::open(&args.store.store_config()).await?;
    let rooms = transfer::export(store.as_ref(), &args.out).await?;
    println!("exported {} rooms to {}", rooms.len(), args.out.display());
    Ok(())
}

/// `okrhub import`.
pub async fn import(args: &ImportArgs) -> anyhow::Result<()> {
    let store = store::open(&args.store.store_config()).await?;
    let rooms = transfer::import(store.as_ref(), &args.from).await?;
    println!(
        "imported {} rooms from {} into the {} store",
        rooms.len(),
        args.from.display(),
        store.name()
    );
    Ok(())
}

/// The token `okrhub token` prints: HS256, with the claims its arguments say.
pub fn mint(args: &TokenArgs, now_secs: u64) -> anyhow::Result<String> {
    let roles: BTreeMap<String, crate::identity::Role> =
        args.room.iter().map(|r| (r.clone(), args.role)).collect();
    let claims = Claims {
        sub: args.user.clone(),
        name: args.name.clone(),
        org: args.org.clone(),
        roles,
        exp: now_secs + args.ttl.as_secs(),
        nbf: None,
        iat: Some(now_secs),
        iss: args.issuer.clone(),
        aud: args.audience.clone(),
    };
    Ok(mint_hs256(args.jwt_secret.as_bytes(), &claims)?)
}

/// `okrhub token`: prints a token.
pub fn token(args: &TokenArgs) -> anyhow::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    println!("{}", mint(args, now)?);
    Ok(())
}
