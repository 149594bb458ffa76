//! Online backup and validated restore of one tenant file, shared by the API and the CLI.
//!
//! Backup is `VACUUM INTO` a new file on a connection of the tenant's own pool: one read
//! transaction, so the copy is transactionally consistent while writers carry on (WAL), and
//! the output is a single compacted file with no `-wal` to carry along.
//!
//! Restore never touches the live file until the very end. The upload is staged as a
//! `.partial` beside the tenant files, checked (SQLite header and size, `integrity_check`,
//! erpd's `application_id`, the identity row names this tenant, schema not newer than this
//! binary), migrated forward and checkpointed there, fsync'd. Only then is the tenant
//! fenced and drained, the live file hard-linked into the trash (so a wrong restore can be
//! undone) and the staged file `rename`d over it — one atomic step, so a crash at any point
//! leaves either the old or the new file, complete — and the directory fsync'd.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use serde_json::json;

use super::lifecycle::Actor;
use super::{DataDir, Tenancy, TenantId, layout, provision};
use crate::db;
use crate::error::{Error, Result};
use crate::platform::model::{MODULES, TenantRecord, TenantStatus};
use crate::platform::store;
use crate::schema;

/// How long a restore waits for in-flight requests on the tenant to finish.
const DRAIN_WAIT: Duration = Duration::from_secs(10);

/// What one backup produced.
#[derive(Debug, Clone)]
pub struct BackupInfo {
    pub path: PathBuf,
    pub bytes: u64,
    pub took: Duration,
}

/// What a validated restore file carries (read from its identity row).
#[derive(Debug, Clone)]
pub struct Inspected {
    pub name: String,
    pub base_currency: String,
    pub created_at: String,
    pub schema_found: i64,
    pub schema_now: i64,
}

impl Tenancy {
    /// Write a consistent copy of a tenant's file to `dest` (which must not exist) while it
    /// keeps serving. `durable` fsyncs the copy and its directory. Records `last_backup_at`
    /// and a `tenant.backup` audit entry.
    pub async fn backup_to(
        &self,
        id: &TenantId,
        dest: &Path,
        durable: bool,
        actor: &Actor,
    ) -> Result<BackupInfo> {
        let result = self.backup_inner(id, dest, durable, actor).await;
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        metrics::counter!("erpd_backups_total", "result" => outcome).increment(1);
        if let Ok(info) = &result {
            metrics::histogram!("erpd_backup_duration_seconds").record(info.took.as_secs_f64());
            metrics::counter!("erpd_backup_bytes_total").increment(info.bytes);
        }
        result
    }

    async fn backup_inner(
        &self,
        id: &TenantId,
        dest: &Path,
        durable: bool,
        actor: &Actor,
    ) -> Result<BackupInfo> {
        let record = self.get_tenant(id).await?;
        if record.status == TenantStatus::Deleted {
            return Err(Error::NotFound);
        }
        // Holding the handle keeps a concurrent restore or delete from moving the file
        // away under the copy (they wait for every handle to drop).
        let handle = self.pools.get(id).await?;
        let pool = handle.db.clone_pool();
        let to = dest.to_owned();
        let started = Instant::now();
        let bytes = db::blocking(move || {
            let conn = pool.get()?;
            vacuum_into(&conn, &to, durable)
        })
        .await?;
        drop(handle);
        let took = started.elapsed();
        let (tid, a, at) = (id.clone(), actor.clone(), crate::clock::now_rfc3339());
        let file = dest.display().to_string();
        let updated = self
            .platform
            .write(move |tx| {
                store::set_last_backup_at(tx, &tid, &at)?;
                let details = json!({ "file": file, "bytes": bytes });
                store::record_audit(
                    tx,
                    &a.name,
                    "tenant.backup",
                    Some(&tid),
                    details,
                    a.request_id.as_deref(),
                )?;
                store::get_tenant(tx, &tid)
            })
            .await?;
        self.registry.put(updated);
        tracing::info!(tenant = %id, bytes, took_ms = took.as_millis() as u64, "tenant backed up");
        Ok(BackupInfo {
            path: dest.to_owned(),
            bytes,
            took,
        })
    }

    /// Restore a tenant from `staged`, a file this call now owns (it is consumed: moved
    /// into place or removed). `staged` must be on the tenants' filesystem; use
    /// [`DataDir::tenant_partial`]. A tenant that does not exist is created from the
    /// file. `before_unfence` runs after the swap and before requests reach the new file
    /// (the server drops its cached principals there).
    pub async fn restore_backup(
        &self,
        id: &TenantId,
        staged: PathBuf,
        actor: &Actor,
        before_unfence: impl FnOnce(),
    ) -> Result<TenantRecord> {
        let result = self.restore_inner(id, &staged, actor, before_unfence).await;
        provision::remove_db_files(&staged);
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        metrics::counter!("erpd_restores_total", "result" => outcome).increment(1);
        result
    }

    async fn restore_inner(
        &self,
        id: &TenantId,
        staged: &Path,
        actor: &Actor,
        before_unfence: impl FnOnce(),
    ) -> Result<TenantRecord> {
        let _busy = self.begin_busy(id)?;
        let existing = {
            let tid = id.clone();
            self.platform
                .read(move |c| store::find_tenant(c, &tid))
                .await?
        };
        if existing
            .as_ref()
            .is_some_and(|r| r.status == TenantStatus::Deleted)
        {
            return Err(Error::Conflict(format!(
                "tenant {id} is in the trash; restore or purge it first"
            )));
        }
        let (s, tid) = (staged.to_owned(), id.clone());
        let inspected = db::blocking(move || prepare_restore(&s, &tid)).await?;
        let (tid, a) = (id.clone(), actor.clone());
        let record = match existing {
            Some(_) => {
                self.pools.fence_and_close(id, DRAIN_WAIT).await?;
                let (l, s, t) = (self.layout.clone(), staged.to_owned(), id.clone());
                let swapped = db::blocking(move || swap_in(&l, &t, &s)).await;
                if swapped.is_ok() {
                    before_unfence();
                }
                self.pools.unfence(id);
                let trash = swapped?.display().to_string();
                let insp = inspected.clone();
                self.platform
                    .write(move |tx| {
                        store::set_schema_version(tx, &tid, insp.schema_now)?;
                        let details = json!({
                            "replaced_file": trash,
                            "schema_found": insp.schema_found, "schema": insp.schema_now,
                        });
                        store::record_audit(
                            tx,
                            &a.name,
                            "tenant.restore_backup",
                            Some(&tid),
                            details,
                            a.request_id.as_deref(),
                        )?;
                        store::get_tenant(tx, &tid)
                    })
                    .await?
            }
            None => {
                let (l, s, t) = (self.layout.clone(), staged.to_owned(), id.clone());
                db::blocking(move || link_new(&l, &t, &s)).await?;
                let now = crate::clock::now_rfc3339();
                let record = TenantRecord {
                    id: id.clone(),
                    name: inspected.name.clone(),
                    status: TenantStatus::Active,
                    base_currency: inspected.base_currency.clone(),
                    modules: MODULES.iter().map(|m| m.to_string()).collect(),
                    schema_version: inspected.schema_now,
                    version: 1,
                    created_at: inspected.created_at.clone(),
                    updated_at: now,
                    deleted_at: None,
                    trash_file: None,
                    last_backup_at: None,
                };
                let insp = inspected.clone();
                let inserted = self
                    .platform
                    .write(move |tx| {
                        store::insert_tenant(tx, &record)?;
                        let details = json!({
                            "created": true,
                            "schema_found": insp.schema_found, "schema": insp.schema_now,
                        });
                        store::record_audit(
                            tx,
                            &a.name,
                            "tenant.restore_backup",
                            Some(&tid),
                            details,
                            a.request_id.as_deref(),
                        )?;
                        store::get_tenant(tx, &tid)
                    })
                    .await;
                if inserted.is_err() {
                    // Keep "file present ⇔ catalog row" true: take the new file back out.
                    provision::remove_db_files(&self.layout.tenant_file(id));
                }
                inserted?
            }
        };
        self.registry.put(record.clone());
        tracing::info!(tenant = %id, from = inspected.schema_found, schema = inspected.schema_now, "tenant restored from a backup");
        Ok(record)
    }

    /// Mark a tenant busy with a restore or purge; a second concurrent one is a 409.
    pub(super) fn begin_busy(&self, id: &TenantId) -> Result<BusyGuard<'_>> {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        if !busy.insert(id.clone()) {
            return Err(Error::Conflict(format!(
                "another restore or purge of {id} is in progress"
            )));
        }
        Ok(BusyGuard {
            tenancy: self,
            id: id.clone(),
        })
    }
}

pub(super) struct BusyGuard<'a> {
    tenancy: &'a Tenancy,
    id: TenantId,
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        let mut busy = self.tenancy.busy.lock().unwrap_or_else(|p| p.into_inner());
        busy.remove(&self.id);
    }
}

/// Blocking: `VACUUM INTO` (one read transaction: a consistent snapshot) a scratch name
/// beside `dest`, then rename it to `dest`, so a backup file is whole whenever it has its
/// name. Returns the copy's size. A failed copy is removed.
pub fn vacuum_into(conn: &Connection, dest: &Path, durable: bool) -> Result<u64> {
    if dest.exists() {
        return Err(Error::Conflict(format!(
            "{} already exists",
            dest.display()
        )));
    }
    let mut scratch = dest.as_os_str().to_owned();
    scratch.push(format!(
        ".{}{}",
        uuid::Uuid::new_v4().simple(),
        layout::PARTIAL_SUFFIX
    ));
    let scratch = PathBuf::from(scratch);
    let target = scratch
        .to_str()
        .ok_or_else(|| Error::bad_request("the backup path is not valid UTF-8"))?;
    let copied = (|| -> Result<u64> {
        conn.execute("VACUUM INTO ?1", [target])?;
        if durable {
            // SQLite does not fsync a VACUUM INTO target.
            std::fs::File::open(&scratch)?.sync_all()?;
        }
        std::fs::rename(&scratch, dest)?;
        if durable && let Some(dir) = dest.parent() {
            layout::sync_dir(dir)?;
        }
        Ok(std::fs::metadata(dest)?.len())
    })();
    if copied.is_err() {
        let _ = std::fs::remove_file(&scratch);
    }
    copied
}

/// The 100-byte SQLite header says how big the file must be; a file shorter than that is
/// a torn or truncated copy. Returns a human reason when the file is not a whole SQLite
/// database.
pub fn check_header(path: &Path) -> std::result::Result<(), String> {
    use std::io::Read;
    let len = std::fs::metadata(path)
        .map_err(|e| format!("cannot read the file: {e}"))?
        .len();
    let mut header = [0u8; 100];
    let mut f = std::fs::File::open(path).map_err(|e| format!("cannot read the file: {e}"))?;
    if len < 100 || f.read_exact(&mut header).is_err() {
        return Err(format!(
            "not a SQLite database: {len} bytes, shorter than a header"
        ));
    }
    if &header[..16] != b"SQLite format 3\0" {
        return Err("not a SQLite database (no SQLite header)".into());
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536u64,
        n if n >= 512 && n.is_power_of_two() => u64::from(n),
        n => return Err(format!("corrupt SQLite header (page size {n})")),
    };
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let (change_counter, pages, valid_for) = (be32(24), u64::from(be32(28)), be32(92));
    // The in-header size is only authoritative when it was written by the same change.
    if pages > 0 && valid_for == change_counter && len < pages * page_size {
        return Err(format!(
            "truncated: the header says {} bytes ({pages} pages of {page_size}), the file has {len}",
            pages * page_size
        ));
    }
    if len % page_size != 0 {
        return Err(format!(
            "truncated: {len} bytes is not a whole number of {page_size}-byte pages"
        ));
    }
    Ok(())
}

/// Blocking: validate a staged restore file for tenant `id` and migrate it forward in
/// place. Every refusal is a 422 naming the reason; the live tenant is not touched here.
pub fn prepare_restore(staged: &Path, id: &TenantId) -> Result<Inspected> {
    let refuse = |why: String| Error::invalid("file", why);
    check_header(staged).map_err(refuse)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(staged, flags)
        .map_err(|e| refuse(format!("cannot open as SQLite: {e}")))?;
    let integrity: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(|e| refuse(format!("not a readable SQLite database: {e}")))?;
    if integrity != ["ok"] {
        let mut shown = integrity;
        shown.truncate(3);
        return Err(refuse(format!(
            "integrity_check failed: {}",
            shown.join("; ")
        )));
    }
    if !schema::is_tenant_file(&conn)? {
        return Err(refuse(
            "not an erpd tenant file (wrong PRAGMA application_id)".into(),
        ));
    }
    let found = schema::file_version(&conn)?;
    let target = schema::tenant_target_version();
    if found > target {
        return Err(refuse(format!(
            "the file's schema version {found} is newer than this erpd supports ({target}); \
             restore it with a newer erpd"
        )));
    }
    let identity = conn.query_row(
        "SELECT tenant_id, name, base_currency, created_at FROM tenant",
        [],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        },
    );
    let (owner, name, base_currency, created_at) =
        identity.map_err(|e| refuse(format!("the file has no tenant identity row: {e}")))?;
    if owner != id.as_str() {
        return Err(refuse(format!(
            "the file belongs to tenant {owner:?}, not {id}; erpd restores a file only under \
             the id it carries (its tokens are bound to that id)"
        )));
    }
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
    let now = if found < target {
        schema::migrate_tenant(&mut conn)?
    } else {
        found
    };
    // Closing the only connection checkpoints the WAL into the file and removes it.
    drop(conn);
    let mut wal = staged.as_os_str().to_owned();
    wal.push("-wal");
    if std::fs::metadata(PathBuf::from(wal)).is_ok_and(|m| m.len() > 0) {
        return Err(anyhow::anyhow!("the staged file kept a WAL after close").into());
    }
    std::fs::File::open(staged)?.sync_all()?;
    Ok(Inspected {
        name,
        base_currency,
        created_at,
        schema_found: found,
        schema_now: now,
    })
}

/// Blocking, with the tenant fenced and drained: the live file gets a second name in the
/// trash, then the staged file is renamed over the live name (atomic), then both
/// directories are fsync'd. Returns the trash path of the replaced file.
fn swap_in(layout: &DataDir, id: &TenantId, staged: &Path) -> Result<PathBuf> {
    let target = layout.tenant_file(id);
    let trash = unique_trash_file(layout, id);
    std::fs::hard_link(&target, &trash)?;
    // The drain checkpointed and closed the file, so its WAL is gone or empty. A WAL with
    // frames means another process wrote meanwhile: stop, the live file is untouched.
    let side = |suffix: &str| {
        let mut p = target.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    };
    if std::fs::metadata(side("-wal")).is_ok_and(|m| m.len() > 0) {
        let _ = std::fs::remove_file(&trash);
        return Err(Error::Unavailable {
            detail: format!("tenant {id} is being written by another process; try again"),
            retry_after_secs: 2,
        });
    }
    // A stale WAL must never meet the new file.
    for suffix in ["-wal", "-shm"] {
        match std::fs::remove_file(side(suffix)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                let _ = std::fs::remove_file(&trash);
                return Err(e.into());
            }
            _ => {}
        }
    }
    if let Err(e) = std::fs::rename(staged, &target) {
        let _ = std::fs::remove_file(&trash);
        return Err(e.into());
    }
    layout::sync_dir(&layout.tenants_dir())?;
    layout::sync_dir(&layout.trash_dir())?;
    Ok(trash)
}

/// Blocking: a restore that creates the tenant links the staged file into place (never
/// overwriting one that appeared meanwhile).
fn link_new(layout: &DataDir, id: &TenantId, staged: &Path) -> Result<()> {
    let target = layout.tenant_file(id);
    std::fs::hard_link(staged, &target).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            Error::Conflict(format!("a file for tenant {id} already exists"))
        }
        _ => Error::Other(e.into()),
    })?;
    layout::sync_dir(&layout.tenants_dir())?;
    Ok(())
}

/// `trash/<id>.<stamp>.db`, or `<id>.<stamp>-<n>.db` when that name is taken.
fn unique_trash_file(layout: &DataDir, id: &TenantId) -> PathBuf {
    let stamp = crate::clock::file_stamp();
    let first = layout.trash_file(id, &stamp);
    if !first.exists() {
        return first;
    }
    (1..)
        .map(|n| layout.trash_file(id, &format!("{stamp}-{n}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// The default backup file name: `<id>-<UTC stamp>.db`.
pub fn default_backup_name(id: &TenantId) -> String {
    format!("{id}-{}.db", crate::clock::file_stamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::DbOptions;
    use crate::platform::model::NewTenant;

    fn tenant_file(dir: &Path) -> (DataDir, PathBuf) {
        let layout = DataDir::new(dir);
        layout.ensure().unwrap();
        let opts = DbOptions::default();
        let template = provision::ensure_template(&layout, &opts).unwrap();
        let new = NewTenant::parse("acme", "Acme", "EUR", None, None).unwrap();
        provision::provision(&layout, &template, &new, "2026-11-27T00:00:00Z", None).unwrap();
        let path = layout.tenant_file(&new.id);
        (layout, path)
    }

    #[test]
    fn header_check_spots_garbage_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let (_, path) = tenant_file(dir.path());
        assert_eq!(check_header(&path), Ok(()));
        let bytes = std::fs::read(&path).unwrap();
        let half = dir.path().join("half.db");
        std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
        assert!(check_header(&half).unwrap_err().contains("truncated"));
        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, vec![7u8; 8192]).unwrap();
        assert!(check_header(&garbage).unwrap_err().contains("not a SQLite"));
    }

    #[test]
    fn a_restore_file_must_carry_the_target_identity() {
        let dir = tempfile::tempdir().unwrap();
        let (layout, path) = tenant_file(dir.path());
        let copy = layout.tenant_partial(&TenantId::parse("acme").unwrap());
        let conn = Connection::open(&path).unwrap();
        vacuum_into(&conn, &copy, false).unwrap();
        let other = TenantId::parse("other").unwrap();
        let err = prepare_restore(&copy, &other).unwrap_err();
        assert_eq!(err.status(), axum::http::StatusCode::UNPROCESSABLE_ENTITY);
        let ok = prepare_restore(&copy, &TenantId::parse("acme").unwrap()).unwrap();
        assert_eq!(ok.name, "Acme");
        assert_eq!(ok.schema_now, schema::tenant_target_version());
    }
}
