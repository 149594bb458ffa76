//! Online backup and validated restore of one tenant file, shared by the API and the CLI.
//!
//! Backup copies the main file under a read transaction pinned to it after a full
//! checkpoint (see [`online_copy`]): transactionally consistent while writers carry on
//! (into the WAL), at file-copy speed, and a single file with no `-wal` to carry along.
//! When the WAL cannot be emptied first, it falls back to `VACUUM INTO` (one read
//! transaction too, about ten times slower).
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
    pub method: CopyMethod,
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
        let to = dest.to_owned();
        let started = Instant::now();
        let (bytes, method) = handle
            .db
            .with_writer_lock(move |conn, writers| {
                online_copy(conn, &to, durable, || drop(writers))
            })
            .await?;
        drop(handle);
        metrics::counter!("erpd_backup_copies_total", "method" => method.label()).increment(1);
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
        tracing::info!(tenant = %id, bytes, took_ms = took.as_millis() as u64, method = method.label(), "tenant backed up");
        Ok(BackupInfo {
            path: dest.to_owned(),
            bytes,
            took,
            method,
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

/// How long a backup's checkpoint may wait for readers (with this process's writers held
/// off) before the backup falls back to `VACUUM INTO`, which needs no checkpoint.
const CHECKPOINT_WAIT: Duration = Duration::from_millis(500);

/// Which way an online backup copied the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyMethod {
    /// The main file, byte for byte, under a read transaction pinned to it.
    FileCopy,
    /// `VACUUM INTO`, when the WAL could not be emptied first.
    VacuumInto,
}

impl CopyMethod {
    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Self::FileCopy => "file_copy",
            Self::VacuumInto => "vacuum_into",
        }
    }
}

/// Blocking: a consistent copy of `conn`'s database at `dest`, at near file-copy speed.
///
/// 1. `wal_checkpoint(TRUNCATE)` (callers hold their process's writer lock, so it is not
///    starved): every committed page is in the main file and the WAL is empty.
/// 2. A read transaction starts on `conn`. With the WAL fully backfilled, SQLite's reader
///    takes WAL read-lock 0 ("read the database file, ignore the WAL"), and no checkpoint,
///    in any process, writes the main file while a read-lock-0 reader exists: backfilling
///    needs an exclusive lock on that slot (wal.c, `walCheckpoint`). Its snapshot *is* the
///    main file.
/// 3. `unlock_writers` runs: writers carry on, into the WAL only.
/// 4. The `-wal` is checked to be still empty *after* the snapshot began. That proves no
///    commit slipped in between 1 and 2 (e.g. from another process), because an empty WAL
///    cannot be emptied again while a reader holds any other read lock. Otherwise the main
///    file might not equal the snapshot, and `VACUUM INTO` copies instead.
/// 5. The main file is copied (`copy_file_range` on Linux), the read transaction ends, the
///    copy's header and size are checked.
///
/// The copy goes to a scratch name and is renamed to `dest` when complete (and fsync'd
/// first when `durable`).
pub fn online_copy(
    conn: &Connection,
    dest: &Path,
    durable: bool,
    unlock_writers: impl FnOnce(),
) -> Result<(u64, CopyMethod)> {
    let source = conn
        .path()
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("online backup of a database without a file"))?;
    let mut method = CopyMethod::VacuumInto;
    let bytes = write_atomically(dest, durable, |scratch| {
        let pinned = pin_main_file(conn, &source);
        unlock_writers();
        match pinned? {
            Some(snapshot) => {
                let expected = std::fs::metadata(&source)?.len();
                let copied = std::fs::copy(&source, scratch)?;
                drop(snapshot);
                // The source cannot change under the snapshot, so this guards against a
                // short copy (I/O), not against SQLite: a whole file of the same length
                // whose header agrees with that length.
                if copied != expected {
                    return Err(anyhow::anyhow!(
                        "copied {copied} bytes of {expected} from {}",
                        source.display()
                    )
                    .into());
                }
                check_header(scratch).map_err(|why| {
                    anyhow::anyhow!("the copy of {} is not whole: {why}", source.display())
                })?;
                method = CopyMethod::FileCopy;
                Ok(())
            }
            None => vacuum(conn, scratch),
        }
    })?;
    Ok((bytes, method))
}

/// Steps 1, 2 and 4 of [`online_copy`]: `Some(read transaction)` when the main file is
/// the snapshot and will not change until the transaction ends; `None` when a plain copy
/// would not be consistent (readers kept the checkpoint from finishing, or a commit came
/// in between).
fn pin_main_file<'c>(
    conn: &'c Connection,
    source: &Path,
) -> Result<Option<rusqlite::Transaction<'c>>> {
    conn.busy_timeout(CHECKPOINT_WAIT)?;
    let checkpoint = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
    });
    // Back to what every erpd connection runs with.
    conn.busy_timeout(db::BUSY_TIMEOUT)?;
    // (busy, frames left in the WAL): anything but (0, 0) means not fully checkpointed
    // (-1 when the file is not in WAL mode at all).
    if checkpoint? != (0, 0) {
        tracing::debug!("backup checkpoint incomplete; falling back to VACUUM INTO");
        return Ok(None);
    }
    let tx = conn.unchecked_transaction()?;
    // A deferred transaction takes its snapshot (and its WAL read lock) at the first read.
    tx.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
    let mut wal = source.as_os_str().to_owned();
    wal.push("-wal");
    if !std::fs::metadata(PathBuf::from(wal)).is_ok_and(|m| m.len() == 0) {
        tracing::debug!("a commit came in before the backup's snapshot; VACUUM INTO");
        return Ok(None);
    }
    Ok(Some(tx))
}

/// Blocking: `VACUUM INTO` (one read transaction: a consistent snapshot) a scratch name
/// beside `dest`, then rename it to `dest`, so a backup file is whole whenever it has its
/// name. Returns the copy's size. A failed copy is removed.
pub fn vacuum_into(conn: &Connection, dest: &Path, durable: bool) -> Result<u64> {
    write_atomically(dest, durable, |scratch| vacuum(conn, scratch))
}

fn vacuum(conn: &Connection, to: &Path) -> Result<()> {
    let target = to
        .to_str()
        .ok_or_else(|| Error::bad_request("the backup path is not valid UTF-8"))?;
    conn.execute("VACUUM INTO ?1", [target])?;
    Ok(())
}

/// Blocking: `write` fills a fresh scratch path beside `dest`, which is then (fsync'd when
/// `durable`, as SQLite does not fsync a `VACUUM INTO` target) renamed to `dest`; a
/// failure removes the scratch file. `dest` must not exist. Returns the file's size.
fn write_atomically(
    dest: &Path,
    durable: bool,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<u64> {
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
    let copied = (|| -> Result<u64> {
        write(&scratch)?;
        if durable {
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

    /// A WAL-mode file with `rows` rows of 4 KB, the last ones still in the WAL.
    fn busy_file(dir: &Path, rows: i64) -> (PathBuf, Connection) {
        let path = dir.join("t.db");
        let conn = db::create_connection(&path, &DbOptions::default()).unwrap();
        conn.execute_batch(
            "PRAGMA wal_autocheckpoint=0; CREATE TABLE t (x INTEGER PRIMARY KEY, b BLOB);",
        )
        .unwrap();
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
             INSERT INTO t SELECT i, randomblob(4000) FROM n",
            [rows],
        )
        .unwrap();
        (path, conn)
    }

    fn rows_and_integrity(path: &Path) -> (i64, String) {
        let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let n = c
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        let ok = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        (n, ok)
    }

    /// The claim `online_copy` rests on: once the WAL is checkpointed and a read
    /// transaction has begun, commits go to the WAL only and no checkpoint of any mode
    /// writes the main file until that transaction ends, so the copied main file is
    /// exactly the snapshot.
    #[test]
    fn writes_during_a_file_copy_backup_stay_out_of_the_main_file_and_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let (path, conn) = busy_file(dir.path(), 300);
        let writer = db::open_connection(&path, &DbOptions::default()).unwrap();
        let dest = dir.path().join("copy.db");

        let (bytes, method) = online_copy(&conn, &dest, true, || {
            let main_before = std::fs::read(&path).unwrap();
            writer
                .execute("INSERT INTO t VALUES (-1, x'00')", [])
                .unwrap();
            writer.busy_timeout(Duration::from_millis(50)).unwrap();
            for mode in ["PASSIVE", "FULL", "RESTART", "TRUNCATE"] {
                let _ = writer.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()));
            }
            assert_eq!(
                std::fs::read(&path).unwrap(),
                main_before,
                "a checkpoint wrote the main file under the pinned snapshot"
            );
        })
        .unwrap();

        assert_eq!(method, CopyMethod::FileCopy);
        assert_eq!(bytes, std::fs::metadata(&dest).unwrap().len());
        assert_eq!(
            rows_and_integrity(&dest),
            (300, "ok".into()),
            "the copy is the state before the write"
        );
        let seen: i64 = writer
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(seen, 301, "the write itself committed");
        assert!(
            !std::fs::read_dir(dir.path()).unwrap().flatten().any(|e| e
                .file_name()
                .to_string_lossy()
                .ends_with(layout::PARTIAL_SUFFIX)),
            "no scratch file is left"
        );
    }

    #[test]
    fn a_reader_that_keeps_the_wal_busy_makes_the_backup_fall_back_to_vacuum_into() {
        let dir = tempfile::tempdir().unwrap();
        let (path, conn) = busy_file(dir.path(), 50);
        // A reader whose snapshot includes WAL frames: the WAL cannot be restarted.
        let reader = db::open_connection(&path, &DbOptions::default()).unwrap();
        let tx = reader.unchecked_transaction().unwrap();
        tx.query_row("SELECT count(*) FROM t", [], |_| Ok(()))
            .unwrap();
        let dest = dir.path().join("copy.db");

        let (_, method) = online_copy(&conn, &dest, false, || {}).unwrap();

        assert_eq!(method, CopyMethod::VacuumInto);
        assert_eq!(rows_and_integrity(&dest), (50, "ok".into()));
        drop(tx);
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
