//! The subcommands other than `serve`: `okrhub export` and `okrhub import` (the work is
//! [`crate::store::transfer`]'s; this file turns their arguments into it and reports).

use crate::config::{ExportArgs, ImportArgs};
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
