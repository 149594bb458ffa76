//! The command line: raw input only. [`crate::config::Config`] validates it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::tenancy::MigratePolicy;

#[derive(Debug, Parser)]
#[command(
    name = "erpd",
    version,
    about = "Multi-tenant ERP server: one SQLite file per tenant"
)]
pub struct Cli {
    /// The data directory (platform.db, tenants/, trash/, backups/).
    #[arg(long, global = true, env = "ERPD_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Durability of commits: `normal` survives a process crash, `full` also power loss.
    #[arg(long, global = true, env = "ERPD_SYNCHRONOUS", value_enum, default_value_t = Synchronous::Normal)]
    pub synchronous: Synchronous,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Synchronous {
    Normal,
    Full,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API.
    Serve(ServeArgs),
    /// Platform tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Tenant lifecycle.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Apply pending migrations to one tenant or all of them (a snapshot of each is
    /// written to `backups/` first).
    Migrate(MigrateArgs),
    /// Check integrity and schema of one tenant or all of them.
    Check(Selection),
    /// The tenant audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Consistent online copies of one tenant (`ID`) or all of them (`--all`).
    Backup(BackupArgs),
    /// Restore a tenant from a backup file (refused while a server serves the data dir;
    /// use `PUT /v1/tenants/{id}/backup` then). Creates the tenant if the id is free.
    Restore { id: String, file: PathBuf },
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The tenant id.
    #[arg(conflicts_with_all = ["all", "out_dir"], required_unless_present = "all")]
    pub id: Option<String>,
    /// Every tenant in the catalog (progress shown; continues past failures).
    #[arg(long, conflicts_with = "out")]
    pub all: bool,
    /// Where to write the one tenant's copy (default `<data>/backups/<id>-<UTC stamp>.db`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where `--all` writes its copies (default `<data>/backups/`).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute a tenant's audit hash chain; exit 1 naming the first edited or missing entry.
    Verify { id: String },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, env = "ERPD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Most tenant files kept open at once (each open tenant costs up to 2 fds per
    /// connection plus one; keep cap × (2 × connections + 1) well under `ulimit -n`).
    #[arg(long, env = "ERPD_MAX_OPEN_TENANTS", default_value_t = 1024)]
    pub max_open_tenants: usize,
    /// Connections (and so concurrent queries) per tenant: one hot tenant can use no more.
    #[arg(long, env = "ERPD_TENANT_CONNECTIONS", default_value_t = 4)]
    pub tenant_connections: u32,
    /// What to do with a tenant whose schema is behind this binary when it is opened.
    #[arg(long, env = "ERPD_MIGRATE", value_enum, default_value_t = MigratePolicy::OnOpen)]
    pub migrate: MigratePolicy,
    /// Create (or refresh) a `demo` tenant and print how to call it.
    #[arg(long)]
    pub demo: bool,
    /// Longest time a request may take, in seconds.
    #[arg(long, env = "ERPD_REQUEST_TIMEOUT", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Longest time one database call may run, in milliseconds, before it is interrupted.
    #[arg(long, env = "ERPD_STATEMENT_TIMEOUT_MS", default_value_t = 10_000)]
    pub statement_timeout_ms: u64,
    /// Largest JSON request body, in bytes.
    #[arg(long, env = "ERPD_BODY_LIMIT", default_value_t = 10 * 1024 * 1024)]
    pub body_limit: usize,
    /// Page cache per connection, in KiB.
    #[arg(long, env = "ERPD_CACHE_KIB", default_value_t = 2048)]
    pub cache_kib: u32,
    /// Largest restore upload (`PUT /v1/tenants/{id}/backup`), in bytes.
    #[arg(long, env = "ERPD_RESTORE_BODY_LIMIT", default_value_t = 4 * 1024 * 1024 * 1024)]
    pub restore_body_limit: u64,
    /// How long deleted tenants and files replaced by a restore stay in the trash before
    /// they are purged (`30d`, `12h`, `15m`, `90s`).
    #[arg(long, env = "ERPD_TRASH_RETENTION", default_value = "30d")]
    pub trash_retention: String,
    /// Largest size of one tenant file, in bytes: writes past it get 507, reads keep
    /// working. Unlimited when absent.
    #[arg(long, env = "ERPD_MAX_TENANT_BYTES")]
    pub max_tenant_bytes: Option<u64>,
    /// Back up changed tenants into this directory on a schedule (off when absent).
    #[arg(long, env = "ERPD_BACKUP_DIR")]
    pub backup_dir: Option<PathBuf>,
    /// How often scheduled backups run (`1h`, `30m`, …); copies are spread over it.
    #[arg(
        long,
        env = "ERPD_BACKUP_EVERY",
        default_value = "1h",
        requires = "backup_dir"
    )]
    pub backup_every: String,
    /// Scheduled backups kept per tenant in `--backup-dir` (older ones are removed).
    #[arg(
        long,
        env = "ERPD_BACKUP_KEEP",
        default_value_t = 24,
        requires = "backup_dir"
    )]
    pub backup_keep: usize,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once, alone on the last line.
    Create {
        /// A platform token (acts on /v1/tenants…).
        #[arg(long, required = true)]
        platform: bool,
        /// A label for the token.
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Provision a tenant; prints its owner token alone on the last line.
    Create {
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        base_currency: String,
        /// Email of the owner user.
        #[arg(long)]
        owner_email: Option<String>,
    },
    /// List tenants.
    List,
    /// Show one tenant.
    Show { id: String },
    /// Suspend a tenant: every request to it gets 423.
    Suspend { id: String },
    /// Resume a suspended tenant.
    Resume { id: String },
    /// Move a tenant's file to the trash (refused while a server serves the data dir).
    Delete { id: String },
    /// Bring a deleted tenant back from the trash (refused while a server serves the data dir).
    Restore { id: String },
    /// Remove every trash file of a tenant now (a deleted tenant is then forgotten and
    /// its id can be used again).
    Purge { id: String },
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// Say what would be migrated; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Migrate the first N tenants (in id order) first; the first of them that fails stops
    /// the run before any other tenant is touched.
    #[arg(long, value_name = "N")]
    pub canary: Option<usize>,
    /// Put back the snapshot taken before each selected tenant's last migration (server
    /// stopped; the tenant then runs at its old schema, under a binary of that schema).
    #[arg(long, conflicts_with_all = ["dry_run", "canary"])]
    pub rollback: bool,
}

/// One tenant by id, or `--all`.
#[derive(Debug, Args)]
pub struct Selection {
    /// The tenant id.
    #[arg(conflicts_with = "all", required_unless_present = "all")]
    pub id: Option<String>,
    /// Every tenant in the catalog.
    #[arg(long)]
    pub all: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        super::Cli::command().debug_assert();
    }
}
