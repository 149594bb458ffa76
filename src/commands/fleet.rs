//! `erpd migrate` and `erpd check` over one tenant or the whole fleet: a progress bar,
//! continuation past a failing tenant, and the failures listed at the end (exit 1).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{Cli, MigrateArgs, Selection};
use crate::db;
use crate::error::Result;
use crate::platform::model::TenantStatus;
use crate::platform::store;
use crate::schema::{self, SchemaState};
use crate::tenancy::{Tenancy, TenantId};

pub async fn migrate(cli: &Cli, args: &MigrateArgs) -> anyhow::Result<ExitCode> {
    let tenancy = super::tenancy(cli).await?;
    let mut ids = selected(&tenancy, &args.selection).await?;
    if args.rollback {
        super::require_offline(&tenancy.layout)?;
        // Over the fleet, a tenant whose last migration did not complete (failed, or none
        // recorded) has nothing to roll back; asked for by id, that is an error.
        let op = if args.selection.all {
            rollback_if_done
        } else {
            rollback_one
        };
        let results = for_each(&tenancy, ids, "rolling back", op, false).await;
        return report(&results, "migrate --rollback");
    }
    if args.dry_run {
        let results = for_each(&tenancy, ids, "planning", plan_one, false).await;
        return report(&results, "migrate --dry-run");
    }
    let mut results = Vec::new();
    if let Some(n) = args.canary {
        let rest = ids.split_off(n.min(ids.len()));
        let canaries = ids.len();
        // The first failing canary stops everything, the canaries after it included.
        results = for_each(&tenancy, ids, "canary", migrate_one, true).await;
        if results.iter().any(|(_, r)| r.is_err()) {
            println!(
                "a canary tenant failed: the other {} tenants were not migrated",
                rest.len() + canaries - results.len()
            );
            return report(&results, "migrate (canary)");
        }
        ids = rest;
    }
    results.extend(for_each(&tenancy, ids, "migrating", migrate_one, false).await);
    report(&results, "migrate")
}

/// `--dry-run`: what `erpd migrate` would do to one tenant, touching nothing.
fn plan_one(tenancy: &Tenancy, id: &TenantId) -> Result<String> {
    let path = tenancy.layout.tenant_file(id);
    if !path.is_file() {
        return Err(anyhow::anyhow!("file {} is missing", path.display()).into());
    }
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(&path, flags)?;
    if !schema::is_tenant_file(&conn)? {
        return Err(anyhow::anyhow!("not an erpd tenant file").into());
    }
    Ok(match schema::tenant_state(&conn)? {
        SchemaState::Current => "up to date".into(),
        SchemaState::Pending { found, target } => format!("would migrate {found} -> {target}"),
    })
}

pub async fn check(cli: &Cli, sel: &Selection) -> anyhow::Result<ExitCode> {
    let tenancy = super::tenancy(cli).await?;
    let ids = selected(&tenancy, sel).await?;
    let results = for_each(&tenancy, ids, "checking", check_one, false).await;
    report(&results, "check")
}

async fn selected(tenancy: &Tenancy, sel: &Selection) -> anyhow::Result<Vec<TenantId>> {
    if let Some(id) = &sel.id {
        let id = TenantId::parse(id)?;
        let r = tenancy.get_tenant(&id).await?;
        if r.status == TenantStatus::Deleted {
            bail!("tenant {id} is deleted (in the trash)");
        }
        return Ok(vec![id]);
    }
    let all = tenancy.platform.read(store::all_tenants).await?;
    Ok(all
        .into_iter()
        .filter(|r| r.status != TenantStatus::Deleted)
        .map(|r| r.id)
        .collect())
}

type Outcome = (TenantId, std::result::Result<String, String>);

async fn for_each(
    tenancy: &Arc<Tenancy>,
    ids: Vec<TenantId>,
    verb: &'static str,
    op: fn(&Tenancy, &TenantId) -> Result<String>,
    stop_at_first_failure: bool,
) -> Vec<Outcome> {
    let bar = ProgressBar::new(ids.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:<12} [{bar:40}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(verb);
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let (t, tid) = (tenancy.clone(), id.clone());
        let r = db::blocking(move || op(&t, &tid))
            .await
            .map_err(|e| e.to_string());
        let failed = r.is_err();
        if let Err(e) = &r {
            bar.println(format!("{id}: FAILED: {e}"));
        }
        out.push((id, r));
        bar.inc(1);
        if failed && stop_at_first_failure {
            break;
        }
    }
    bar.finish_and_clear();
    out
}

fn report(results: &[Outcome], what: &str) -> anyhow::Result<ExitCode> {
    let failed: Vec<_> = results
        .iter()
        .filter_map(|(id, r)| r.as_ref().err().map(|e| (id, e)))
        .collect();
    for (id, r) in results {
        if let Ok(msg) = r {
            println!("{id}: {msg}");
        }
    }
    println!(
        "{what}: {} tenants, {} ok, {} failed",
        results.len(),
        results.len() - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    println!("failed:");
    for (id, e) in failed {
        println!("  {id}: {e}");
    }
    Ok(ExitCode::FAILURE)
}

fn migrate_one(tenancy: &Tenancy, id: &TenantId) -> Result<String> {
    let path = tenancy.layout.tenant_file(id);
    if !path.is_file() {
        return Err(anyhow::anyhow!("file {} is missing", path.display()).into());
    }
    let mut conn = db::open_connection(&path, &tenancy.opts)?;
    if !schema::is_tenant_file(&conn)? {
        return Err(anyhow::anyhow!("not an erpd tenant file").into());
    }
    let msg = match schema::tenant_state(&conn)? {
        SchemaState::Current => {
            finish_interrupted(tenancy, id, schema::file_version(&conn)?)?;
            format!("up to date (schema {})", schema::tenant_target_version())
        }
        SchemaState::Pending { found, target } => {
            // A consistent snapshot first, so a migration that goes wrong can be undone
            // with `erpd migrate --rollback ID` (under a binary of the old schema).
            let snapshot = snapshot_path(tenancy, id, target);
            let platform = db::open_connection(&tenancy.layout.platform_db(), &tenancy.opts)?;
            let snap = snapshot.display().to_string();
            // `pending` names the snapshot, so a run killed at any later point leaves a
            // row that a re-run completes and a rollback can use.
            let migrated = crate::tenancy::backup::vacuum_into(&conn, &snapshot, true)
                .and_then(|_| {
                    store::set_migration_status(
                        &platform,
                        id,
                        found,
                        target,
                        "pending",
                        Some(&snap),
                        None,
                    )
                })
                .and_then(|_| schema::migrate_tenant(&mut conn));
            match migrated {
                Ok(to) => {
                    store::set_migration_status(
                        &platform,
                        id,
                        found,
                        to,
                        "done",
                        Some(&snap),
                        None,
                    )?;
                    format!("migrated {found} -> {to} (snapshot {snap})")
                }
                Err(e) => {
                    // The migration rolled back and left the file as it was: its
                    // snapshot is of no use, and a re-run takes a new one.
                    let _ = std::fs::remove_file(&snapshot);
                    let why = e.to_string();
                    store::set_migration_status(
                        &platform,
                        id,
                        found,
                        target,
                        "failed",
                        None,
                        Some(&why),
                    )?;
                    return Err(e);
                }
            }
        }
    };
    let version = schema::file_version(&conn)?;
    let platform = db::open_connection(&tenancy.layout.platform_db(), &tenancy.opts)?;
    store::set_schema_version(&platform, id, version)?;
    Ok(msg)
}

/// A run killed between a migration's commit and its `done` left the row `pending`
/// although the file is at the target version: the file is the truth, so say `done`.
fn finish_interrupted(tenancy: &Tenancy, id: &TenantId, version: i64) -> Result<()> {
    let platform = db::open_connection(&tenancy.layout.platform_db(), &tenancy.opts)?;
    if let Some((from, to, status, _)) = store::migration_status(&platform, id)?
        && status == "pending"
        && to == version
    {
        store::set_migration_status(&platform, id, from, to, "done", None, None)?;
    }
    Ok(())
}

/// `backups/<id>-pre-v<target>-<stamp>.db`, with `-<n>` added when a run in the same
/// second already took that name.
fn snapshot_path(tenancy: &Tenancy, id: &TenantId, target: i64) -> std::path::PathBuf {
    let dir = tenancy.layout.backups_dir();
    let stem = format!("{id}-pre-v{target}-{}", crate::clock::file_stamp());
    let first = dir.join(format!("{stem}.db"));
    if !first.exists() {
        return first;
    }
    (1..)
        .map(|n| dir.join(format!("{stem}-{n}.db")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// `rollback_one` for `--rollback --all`: a tenant whose last recorded migration is not
/// `done` is skipped, not failed (a failed migration changed nothing).
fn rollback_if_done(tenancy: &Tenancy, id: &TenantId) -> Result<String> {
    let platform = db::open_connection(&tenancy.layout.platform_db(), &tenancy.opts)?;
    match store::migration_status(&platform, id)? {
        Some((_, _, status, _)) if status == "done" => rollback_one(tenancy, id),
        Some((_, _, status, _)) => Ok(format!("nothing to roll back (last migration: {status})")),
        None => Ok("nothing to roll back (no migration recorded)".into()),
    }
}

/// Put back the snapshot taken before the tenant's last completed migration. The current
/// file (WAL folded in first) goes to the trash, so the rollback can itself be undone.
fn rollback_one(tenancy: &Tenancy, id: &TenantId) -> Result<String> {
    use crate::tenancy::layout;
    let platform = db::open_connection(&tenancy.layout.platform_db(), &tenancy.opts)?;
    let Some((from, to, status, Some(snapshot))) = store::migration_status(&platform, id)? else {
        return Err(anyhow::anyhow!("no migration with a snapshot is recorded").into());
    };
    if status != "done" {
        return Err(anyhow::anyhow!("the last migration is {status}, not done").into());
    }
    let snapshot = std::path::PathBuf::from(snapshot);
    crate::tenancy::backup::check_header(&snapshot)
        .map_err(|e| anyhow::anyhow!("snapshot: {e}"))?;
    let snap_conn = rusqlite::Connection::open_with_flags(
        &snapshot,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let owner: String = snap_conn.query_row("SELECT tenant_id FROM tenant", [], |r| r.get(0))?;
    if !schema::is_tenant_file(&snap_conn)? || owner != id.as_str() {
        return Err(anyhow::anyhow!("the snapshot is not this tenant's file").into());
    }
    drop(snap_conn);
    let target = tenancy.layout.tenant_file(id);
    // Fold any WAL into the current file so nothing is left behind under its name.
    let current = db::open_connection(&target, &tenancy.opts)?;
    current.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    drop(current);
    let staged = tenancy.layout.tenant_partial(id);
    std::fs::copy(&snapshot, &staged)?;
    std::fs::File::open(&staged)?.sync_all()?;
    let trash = tenancy.layout.trash_file(id, &crate::clock::file_stamp());
    std::fs::rename(&target, &trash)?;
    crate::tenancy::provision::remove_db_files(&target);
    std::fs::rename(&staged, &target)?;
    layout::sync_dir(&tenancy.layout.tenants_dir())?;
    layout::sync_dir(&tenancy.layout.trash_dir())?;
    store::set_schema_version(&platform, id, from)?;
    store::set_migration_status(&platform, id, from, to, "rolled_back", None, None)?;
    Ok(format!(
        "rolled back {to} -> {from} (the migrated file is in {})",
        trash.display()
    ))
}

fn check_one(tenancy: &Tenancy, id: &TenantId) -> Result<String> {
    let path = tenancy.layout.tenant_file(id);
    if !path.is_file() {
        return Err(anyhow::anyhow!("file {} is missing", path.display()).into());
    }
    // A torn copy (a `cp` of a file being written, a truncated transfer) is caught here
    // even where integrity_check alone would not open it.
    crate::tenancy::backup::check_header(&path).map_err(|e| anyhow::anyhow!(e))?;
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(&path, flags)?;
    if !schema::is_tenant_file(&conn)? {
        return Err(anyhow::anyhow!("not an erpd tenant file").into());
    }
    let integrity: Vec<String> = conn
        .prepare("PRAGMA integrity_check")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if integrity != ["ok"] {
        return Err(anyhow::anyhow!("integrity_check: {}", integrity.join("; ")).into());
    }
    let owner: String = conn.query_row("SELECT tenant_id FROM tenant", [], |r| r.get(0))?;
    if owner != id.as_str() {
        return Err(anyhow::anyhow!("file carries identity {owner:?}").into());
    }
    Ok(match schema::tenant_state(&conn)? {
        SchemaState::Current => "ok".into(),
        SchemaState::Pending { found, target } => {
            format!("ok (schema {found}, {target} pending: run erpd migrate)")
        }
    })
}
