//! Start-up reconciliation of the data directory with the catalog, so that a crash at any
//! point of a lifecycle act leaves a consistent state after restart:
//!
//! * `.partial` files (a provisioning that never finished) are removed;
//! * a complete tenant file without a catalog row (crash between the file's atomic link
//!   and the catalog insert, or a file an operator put back) is adopted from the identity
//!   it carries — the file is the source of truth;
//! * a row whose file moved to the trash (crash during delete) is marked deleted, and a
//!   deleted row whose file is back (crash during restore) is marked active.

use serde_json::json;

use super::{DataDir, TenantId, layout, provision};
use crate::db::{self, DbOptions};
use crate::error::Result;
use crate::platform::model::{MODULES, TenantRecord, TenantStatus};
use crate::platform::store;
use crate::schema;

#[derive(Debug, Default)]
pub struct Report {
    pub partials_removed: usize,
    pub adopted: Vec<TenantId>,
    pub fixed: Vec<TenantId>,
}

/// Blocking. Run before serving.
pub fn run(layout: &DataDir, opts: &DbOptions) -> Result<Report> {
    let mut report = Report::default();
    let platform = db::open_connection(&layout.platform_db(), opts)?;
    let mut on_disk = Vec::new();
    for entry in std::fs::read_dir(layout.tenants_dir())? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with(layout::PARTIAL_SUFFIX) {
            provision::remove_db_files(&path);
            report.partials_removed += 1;
        } else if let Some(id) = layout::tenant_id_of_file(&path) {
            on_disk.push(id);
        }
    }
    // Scratch copies of backups a crash interrupted (downloads, `erpd backup`).
    if let Ok(entries) = std::fs::read_dir(layout.backups_dir()) {
        for path in entries.flatten().map(|e| e.path()) {
            let scratch = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(layout::PARTIAL_SUFFIX));
            if scratch && std::fs::remove_file(&path).is_ok() {
                report.partials_removed += 1;
            }
        }
    }
    for id in on_disk {
        match store::find_tenant(&platform, &id)? {
            None => match adopt(layout, opts, &platform, &id) {
                Ok(()) => report.adopted.push(id),
                Err(e) => tracing::error!(tenant = %id, error = %e, "cannot adopt tenant file"),
            },
            Some(r) if r.status == TenantStatus::Deleted => {
                store::mark_restored(&platform, &id)?;
                report.fixed.push(id);
            }
            Some(_) => {}
        }
    }
    for r in store::all_tenants(&platform)? {
        if r.status != TenantStatus::Deleted && !layout.tenant_file(&r.id).exists() {
            match newest_trash_file(layout, &r.id) {
                Some(trash) => {
                    store::mark_deleted(&platform, &r.id, &trash.display().to_string())?;
                    report.fixed.push(r.id);
                }
                None => {
                    tracing::error!(tenant = %r.id, "catalog lists a tenant whose file is missing")
                }
            }
        }
    }
    if report.partials_removed + report.adopted.len() + report.fixed.len() > 0 {
        tracing::info!(?report, "data directory reconciled");
    }
    Ok(report)
}

fn adopt(
    layout: &DataDir,
    opts: &DbOptions,
    platform: &rusqlite::Connection,
    id: &TenantId,
) -> Result<()> {
    let conn = db::open_connection(&layout.tenant_file(id), opts)?;
    if !schema::is_tenant_file(&conn)? {
        return Err(anyhow::anyhow!("not an erpd tenant file").into());
    }
    let (owner, name, currency, created_at): (String, String, String, String) = conn.query_row(
        "SELECT tenant_id, name, base_currency, created_at FROM tenant",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    if owner != id.as_str() {
        return Err(anyhow::anyhow!("file carries identity {owner:?}").into());
    }
    let record = TenantRecord {
        id: id.clone(),
        name,
        status: TenantStatus::Active,
        base_currency: currency,
        modules: MODULES.iter().map(|m| m.to_string()).collect(),
        schema_version: schema::file_version(&conn)?,
        version: 1,
        updated_at: created_at.clone(),
        created_at,
        deleted_at: None,
        trash_file: None,
        last_backup_at: None,
    };
    store::insert_tenant(platform, &record)?;
    store::record_audit(
        platform,
        "erpd",
        "tenant.adopt",
        Some(id),
        json!({ "reason": "file without catalog row" }),
        None,
    )?;
    Ok(())
}

fn newest_trash_file(layout: &DataDir, id: &TenantId) -> Option<std::path::PathBuf> {
    let prefix = format!("{id}.");
    let mut found: Vec<_> = std::fs::read_dir(layout.trash_dir())
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".db"))
        })
        .collect();
    found.sort();
    found.pop()
}
