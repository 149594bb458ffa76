//! What each CLI command does. Commands share the tenancy services the server uses; the
//! only difference is who the actor is (`cli:<user>`).

mod audit;
mod backup;
mod fleet;
mod serve;
mod tenant;
mod token;

use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::tenancy::{DataDir, MigratePolicy, Tenancy};

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Serve(args) => serve::run(Config::for_serve(&cli, args)?).await,
        Command::Token { command } => token::run(&cli, command).await,
        Command::Tenant { command } => tenant::run(&cli, command).await,
        Command::Migrate(args) => fleet::migrate(&cli, args).await,
        Command::Check(sel) => fleet::check(&cli, sel).await,
        Command::Audit { command } => audit::run(&cli, command).await,
        Command::Backup(args) => backup::backup(&cli, args).await,
        Command::Restore { id, file } => backup::restore(&cli, id, file).await,
    }
}

/// The tenancy services for a one-shot command (no pools are kept open).
async fn tenancy(cli: &Cli) -> anyhow::Result<std::sync::Arc<Tenancy>> {
    let (layout, opts) = Config::common(cli)?;
    let one = std::num::NonZeroUsize::MIN;
    Tenancy::open(layout, opts, MigratePolicy::Explicit, one)
        .await
        .context("opening the data directory")
}

/// Commands that move tenant files refuse while a server holds the data directory.
fn require_offline(layout: &DataDir) -> anyhow::Result<()> {
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(layout.serve_lock())
        .context("opening the data dir lock")?;
    match lock.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "an erpd server is serving {}; use the HTTP API instead (or stop the server)",
            layout.root().display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).context("locking the data dir"),
    }
}
