//! The tenant lifecycle, shared by the HTTP API and the CLI: create, rename, suspend,
//! resume, soft delete to the trash, restore from the trash, and a health probe. Every act
//! writes a platform audit entry in the same `platform.db` transaction as its change.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{Tenancy, TenantId, layout, provision};
use crate::db;
use crate::error::{Error, Result};
use crate::platform::model::{NewTenant, TenantRecord, TenantStatus};
use crate::platform::store;
use crate::schema;

/// Who did it and under which request: carried into every audit entry.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub request_id: Option<String>,
}

impl Actor {
    pub fn cli() -> Self {
        Self {
            name: format!("cli:{}", whoami()),
            request_id: None,
        }
    }
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "operator".into())
}

/// How long a delete waits for in-flight requests on the tenant to finish.
const DRAIN_WAIT: Duration = Duration::from_secs(10);

impl Tenancy {
    /// Provision a tenant; returns its catalog record and the owner token (shown once).
    pub async fn create_tenant(
        &self,
        new: NewTenant,
        actor: &Actor,
    ) -> Result<(TenantRecord, String)> {
        if self.registry.get(&new.id).is_some() {
            // The registry may lag a purge made by another process (`erpd tenant purge`
            // deletes the catalog row): the catalog decides.
            let tid = new.id.clone();
            let Some(existing) = self
                .platform
                .read(move |c| store::find_tenant(c, &tid))
                .await?
            else {
                self.registry.remove(&new.id);
                return Box::pin(self.create_tenant(new, actor)).await;
            };
            let why = if existing.status == TenantStatus::Deleted {
                format!(
                    "tenant {} is in the trash; restore it or choose another id",
                    new.id
                )
            } else {
                format!("tenant {} already exists", new.id)
            };
            return Err(Error::Conflict(why));
        }
        let created_at = crate::clock::now_rfc3339();
        let (layout, template) = (self.layout.clone(), self.template.clone());
        let (n, at, rid) = (new.clone(), created_at.clone(), actor.request_id.clone());
        let owner_token =
            db::blocking(move || provision::provision(&layout, &template, &n, &at, rid.as_deref()))
                .await?;
        let record = TenantRecord {
            id: new.id.clone(),
            name: new.name.clone(),
            status: TenantStatus::Active,
            base_currency: new.base_currency.clone(),
            modules: new.modules.clone(),
            schema_version: schema::tenant_target_version(),
            version: 1,
            created_at: created_at.clone(),
            updated_at: created_at,
            deleted_at: None,
            trash_file: None,
            last_backup_at: None,
        };
        let (r, a) = (record.clone(), actor.clone());
        let inserted = self
            .platform
            .write(move |tx| {
                store::insert_tenant(tx, &r)?;
                let details = json!({ "name": r.name, "base_currency": r.base_currency });
                store::record_audit(
                    tx,
                    &a.name,
                    "tenant.create",
                    Some(&r.id),
                    details,
                    a.request_id.as_deref(),
                )?;
                store::get_tenant(tx, &r.id)
            })
            .await;
        match inserted {
            Ok(record) => {
                self.registry.put(record.clone());
                Ok((record, owner_token))
            }
            Err(e) => {
                // The catalog refused it (e.g. a concurrent twin): take our file back out.
                let path = self.layout.tenant_file(&new.id);
                if !matches!(e, Error::Conflict(_)) {
                    provision::remove_db_files(&path);
                }
                Err(e)
            }
        }
    }

    pub async fn get_tenant(&self, id: &TenantId) -> Result<TenantRecord> {
        let tid = id.clone();
        self.platform
            .read(move |c| store::get_tenant(c, &tid))
            .await
    }

    pub async fn list_tenants(
        &self,
        after: Option<String>,
        limit: i64,
    ) -> Result<Vec<TenantRecord>> {
        self.platform
            .read(move |c| store::list_tenants(c, after.as_deref(), limit, false))
            .await
    }

    /// PATCH: rename and/or suspend/resume, with optional If-Match.
    pub async fn update_tenant(
        &self,
        id: &TenantId,
        expected_version: Option<i64>,
        name: Option<String>,
        status: Option<TenantStatus>,
        actor: &Actor,
    ) -> Result<TenantRecord> {
        if status == Some(TenantStatus::Deleted) {
            return Err(Error::invalid("status", "use DELETE to delete a tenant"));
        }
        let (tid, a) = (id.clone(), actor.clone());
        let record = self
            .platform
            .write(move |tx| {
                let before = store::get_tenant(tx, &tid)?;
                if before.status == TenantStatus::Deleted {
                    return Err(Error::NotFound);
                }
                let after =
                    store::update_tenant(tx, &tid, expected_version, name.as_deref(), status)?;
                let rid = a.request_id.as_deref();
                if before.status != after.status {
                    let action = match after.status {
                        TenantStatus::Suspended => "tenant.suspend",
                        _ => "tenant.resume",
                    };
                    store::record_audit(tx, &a.name, action, Some(&tid), json!({}), rid)?;
                }
                if before.name != after.name {
                    let details = json!({ "name": [before.name, after.name] });
                    store::record_audit(tx, &a.name, "tenant.update", Some(&tid), details, rid)?;
                }
                Ok(after)
            })
            .await?;
        self.registry.put(record.clone());
        Ok(record)
    }

    /// Soft delete: stop serving, move the file to the trash, mark the catalog row.
    pub async fn delete_tenant(
        &self,
        id: &TenantId,
        expected_version: Option<i64>,
        actor: &Actor,
    ) -> Result<()> {
        let record = self.get_tenant(id).await?;
        if record.status == TenantStatus::Deleted {
            return Err(Error::NotFound);
        }
        crate::error::ensure_version(expected_version, record.version)?;
        // New requests get 404 from here on; in-flight ones finish first.
        self.registry.put(TenantRecord {
            status: TenantStatus::Deleted,
            ..record.clone()
        });
        if let Err(e) = self.pools.fence_and_close(id, DRAIN_WAIT).await {
            self.registry.put(record);
            return Err(e);
        }
        let result = self.move_to_trash(id, actor).await;
        self.pools.unfence(id);
        match result {
            Ok(updated) => {
                self.registry.put(updated);
                Ok(())
            }
            Err(e) => {
                self.registry.put(record);
                Err(e)
            }
        }
    }

    async fn move_to_trash(&self, id: &TenantId, actor: &Actor) -> Result<TenantRecord> {
        let layout = self.layout.clone();
        let tid = id.clone();
        let trash = db::blocking(move || {
            let from = layout.tenant_file(&tid);
            let to = layout.trash_file(&tid, &crate::clock::file_stamp());
            if to.exists() {
                return Err(Error::Conflict(
                    "a trash entry with this timestamp exists; retry".into(),
                ));
            }
            std::fs::rename(&from, &to)?;
            provision::remove_db_files(&from); // stale -wal/-shm after the checkpoint
            layout::sync_dir(&layout.trash_dir())?;
            layout::sync_dir(&layout.tenants_dir())?;
            Ok(to)
        })
        .await?;
        let (tid, a) = (id.clone(), actor.clone());
        let trash_name = trash.display().to_string();
        self.platform
            .write(move |tx| {
                store::mark_deleted(tx, &tid, &trash_name)?;
                let details = json!({ "trash_file": trash_name });
                store::record_audit(
                    tx,
                    &a.name,
                    "tenant.delete",
                    Some(&tid),
                    details,
                    a.request_id.as_deref(),
                )?;
                store::get_tenant(tx, &tid)
            })
            .await
    }

    /// Bring a soft-deleted tenant back from the trash.
    pub async fn restore_tenant(&self, id: &TenantId, actor: &Actor) -> Result<TenantRecord> {
        let record = self.get_tenant(id).await?;
        let trash = match (&record.status, &record.trash_file) {
            (TenantStatus::Deleted, Some(t)) => std::path::PathBuf::from(t),
            (TenantStatus::Deleted, None) => {
                return Err(Error::Conflict(format!(
                    "tenant {id} has no file in the trash"
                )));
            }
            _ => return Err(Error::Conflict(format!("tenant {id} is not deleted"))),
        };
        let layout = self.layout.clone();
        let tid = id.clone();
        db::blocking(move || {
            let target = layout.tenant_file(&tid);
            if !trash.is_file() {
                return Err(Error::Conflict(format!(
                    "the trash file of {tid} is gone (purged?)"
                )));
            }
            // link, not rename: never overwrite a file that appeared under the id.
            std::fs::hard_link(&trash, &target).map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => {
                    Error::Conflict(format!("a file for {tid} already exists"))
                }
                _ => Error::Other(e.into()),
            })?;
            std::fs::remove_file(&trash)?;
            layout::sync_dir(&layout.tenants_dir())?;
            Ok(())
        })
        .await?;
        let (tid, a) = (id.clone(), actor.clone());
        let restored = self
            .platform
            .write(move |tx| {
                store::mark_restored(tx, &tid)?;
                store::record_audit(
                    tx,
                    &a.name,
                    "tenant.restore",
                    Some(&tid),
                    json!({}),
                    a.request_id.as_deref(),
                )?;
                store::get_tenant(tx, &tid)
            })
            .await?;
        self.registry.put(restored.clone());
        Ok(restored)
    }

    /// Size of a tenant's file plus its WAL, in bytes.
    pub fn size_bytes(&self, id: &TenantId) -> u64 {
        let main = self.layout.tenant_file(id);
        let mut wal = main.as_os_str().to_owned();
        wal.push("-wal");
        [main, wal.into()]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Open the tenant (through the pool cache), run `quick_check`, count pending jobs.
    pub async fn health(self: &Arc<Self>, id: &TenantId) -> Result<TenantHealth> {
        let record = self.get_tenant(id).await?;
        if record.status == TenantStatus::Deleted {
            return Err(Error::NotFound);
        }
        let opened = self.tenant_db(id).await;
        let (open_error, quick_check, schema_version, pending_jobs) = match opened {
            Err(e) => (Some(e.to_string()), None, None, None),
            Ok(handle) => {
                let probe = handle
                    .db
                    .with_conn(|c| {
                        let qc: String = c.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
                        let sv = schema::file_version(c)?;
                        let jobs: i64 = c.query_row(
                            "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')",
                            [],
                            |r| r.get(0),
                        )?;
                        Ok((qc, sv, jobs))
                    })
                    .await;
                match probe {
                    Ok((qc, sv, jobs)) => (None, Some(qc), Some(sv), Some(jobs)),
                    Err(e) => (Some(e.to_string()), None, None, None),
                }
            }
        };
        let backup_error = self.backup_failure(id);
        let status = match (&open_error, quick_check.as_deref()) {
            (Some(_), _) => "down",
            (None, Some("ok"))
                if record.status == TenantStatus::Active && backup_error.is_none() =>
            {
                "ok"
            }
            _ => "degraded",
        };
        Ok(TenantHealth {
            status,
            open: open_error.is_none(),
            error: open_error,
            quick_check,
            schema_version,
            pending_jobs,
            last_backup_at: record.last_backup_at,
            last_backup_error: backup_error,
        })
    }
}

/// What `GET /v1/tenants/{id}/health` reports.
pub struct TenantHealth {
    pub status: &'static str,
    pub open: bool,
    pub error: Option<String>,
    pub quick_check: Option<String>,
    pub schema_version: Option<i64>,
    pub pending_jobs: Option<i64>,
    pub last_backup_at: Option<String>,
    /// Why the last scheduled backup failed (none after a success).
    pub last_backup_error: Option<String>,
}
