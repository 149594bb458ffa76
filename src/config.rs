//! `Config`: validated settings for one process, built from the command line (and env).
//! Passed explicitly; there is no global config.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::cli::{Cli, ServeArgs, Synchronous};
use crate::db::DbOptions;
use crate::tenancy::{DataDir, MigratePolicy};

#[derive(Debug, Clone)]
pub struct Config {
    pub layout: DataDir,
    pub db: DbOptions,
    pub listen: SocketAddr,
    pub max_open_tenants: NonZeroUsize,
    pub migrate: MigratePolicy,
    pub demo: bool,
    pub request_timeout: Duration,
    pub body_limit: usize,
    /// Largest restore upload, in bytes (separate from the JSON limit).
    pub restore_body_limit: u64,
    /// Trash files older than this are purged while serving.
    pub trash_retention: Duration,
    /// `--backup-dir` and friends; `None` when scheduled backups are off.
    pub backup_schedule: Option<crate::tenancy::schedule::BackupSchedule>,
}

impl Config {
    /// Settings every command shares (data dir, durability).
    pub fn common(cli: &Cli) -> anyhow::Result<(DataDir, DbOptions)> {
        let root = if cli.data_dir.is_absolute() {
            cli.data_dir.clone()
        } else {
            std::env::current_dir()
                .context("current directory")?
                .join(&cli.data_dir)
        };
        let db = DbOptions {
            synchronous_full: cli.synchronous == Synchronous::Full,
            ..DbOptions::default()
        };
        Ok((DataDir::new(root), db))
    }

    pub fn for_serve(cli: &Cli, args: &ServeArgs) -> anyhow::Result<Self> {
        let (layout, mut db) = Self::common(cli)?;
        if !(1..=64).contains(&args.tenant_connections) {
            bail!("--tenant-connections must be between 1 and 64");
        }
        if args.statement_timeout_ms == 0 || args.request_timeout_secs == 0 {
            bail!("timeouts must be positive");
        }
        db.max_connections = args.tenant_connections;
        db.cache_kib = args.cache_kib.max(64);
        db.statement_timeout = Duration::from_millis(args.statement_timeout_ms);
        db.max_file_bytes = args.max_tenant_bytes;
        let trash_retention = crate::tenancy::trash::parse_duration(&args.trash_retention)
            .map_err(|e| anyhow::anyhow!("--trash-retention: {e}"))?;
        let backup_schedule = match &args.backup_dir {
            None => None,
            Some(dir) => {
                let every = crate::tenancy::trash::parse_duration(&args.backup_every)
                    .map_err(|e| anyhow::anyhow!("--backup-every: {e}"))?;
                if every.is_zero() || args.backup_keep == 0 {
                    bail!("--backup-every and --backup-keep must be positive");
                }
                let dir = if dir.is_absolute() {
                    dir.clone()
                } else {
                    std::env::current_dir()?.join(dir)
                };
                Some(crate::tenancy::schedule::BackupSchedule {
                    dir,
                    every,
                    keep: args.backup_keep,
                })
            }
        };
        let max_open_tenants = NonZeroUsize::new(args.max_open_tenants)
            .context("--max-open-tenants must be at least 1")?;
        Ok(Self {
            layout,
            db,
            listen: args.listen,
            max_open_tenants,
            migrate: args.migrate,
            demo: args.demo,
            request_timeout: Duration::from_secs(args.request_timeout_secs),
            body_limit: args.body_limit,
            restore_body_limit: args.restore_body_limit,
            trash_retention,
            backup_schedule,
        })
    }
}
