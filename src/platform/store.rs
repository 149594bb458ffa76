//! All SQL against `platform.db`. Sync functions on a connection or transaction.

use rusqlite::{Connection, OptionalExtension, Row, named_params};

use super::model::{TenantRecord, TenantStatus};
use crate::error::{Error, Result, ResultExt};
use crate::tenancy::TenantId;

const TENANT_COLUMNS: &str = "id, name, status, base_currency, modules, schema_version, version, \
     created_at, updated_at, deleted_at, trash_file, last_backup_at";

fn tenant_from_row(r: &Row) -> rusqlite::Result<TenantRecord> {
    let id: String = r.get(0)?;
    let status: String = r.get(2)?;
    let modules: String = r.get(4)?;
    let bad = |what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("bad {what} in platform.db").into(),
        )
    };
    Ok(TenantRecord {
        id: TenantId::parse(&id).map_err(|_| bad("tenant id"))?,
        name: r.get(1)?,
        status: TenantStatus::parse(&status).ok_or_else(|| bad("status"))?,
        base_currency: r.get(3)?,
        modules: serde_json::from_str(&modules).map_err(|_| bad("modules"))?,
        schema_version: r.get(5)?,
        version: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        deleted_at: r.get(9)?,
        trash_file: r.get(10)?,
        last_backup_at: r.get(11)?,
    })
}

pub fn insert_tenant(conn: &Connection, t: &TenantRecord) -> Result<()> {
    let modules = serde_json::to_string(&t.modules).map_err(anyhow::Error::from)?;
    conn.prepare_cached(
        "INSERT INTO tenants (id, name, status, base_currency, modules, schema_version, version, \
         created_at, updated_at) VALUES (:id, :name, :status, :cur, :modules, :sv, 1, :at, :at)",
    )?
    .execute(named_params! {
        ":id": t.id.as_str(), ":name": t.name, ":status": t.status.as_str(),
        ":cur": t.base_currency, ":modules": modules, ":sv": t.schema_version, ":at": t.created_at,
    })
    .on_constraint("tenants.id", || {
        Error::Conflict(format!("tenant {} already exists", t.id))
    })?;
    Ok(())
}

pub fn find_tenant(conn: &Connection, id: &TenantId) -> Result<Option<TenantRecord>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants WHERE id = :id"
        ))?
        .query_row(named_params! { ":id": id.as_str() }, tenant_from_row)
        .optional()?)
}

pub fn get_tenant(conn: &Connection, id: &TenantId) -> Result<TenantRecord> {
    find_tenant(conn, id)?.ok_or(Error::NotFound)
}

/// Tenants ordered by id, after `after` (keyset pagination); deleted ones only if asked.
pub fn list_tenants(
    conn: &Connection,
    after: Option<&str>,
    limit: i64,
    include_deleted: bool,
) -> Result<Vec<TenantRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {TENANT_COLUMNS} FROM tenants WHERE id > :after \
         AND (:all OR status != 'deleted') ORDER BY id LIMIT :limit"
    ))?;
    let rows = stmt.query_map(
        named_params! { ":after": after.unwrap_or(""), ":all": include_deleted, ":limit": limit },
        tenant_from_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Rows changed at or after `since` (every change bumps `updated_at`).
pub fn tenants_changed_since(conn: &Connection, since: &str) -> Result<Vec<TenantRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {TENANT_COLUMNS} FROM tenants WHERE updated_at >= :since"
    ))?;
    let rows = stmt.query_map(named_params! { ":since": since }, tenant_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn all_tenants(conn: &Connection) -> Result<Vec<TenantRecord>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY id"))?;
    let rows = stmt.query_map([], tenant_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Bump version and set fields; `expected_version` enforces If-Match (409 on mismatch).
pub fn update_tenant(
    conn: &Connection,
    id: &TenantId,
    expected_version: Option<i64>,
    name: Option<&str>,
    status: Option<TenantStatus>,
) -> Result<TenantRecord> {
    let current = get_tenant(conn, id)?;
    crate::error::ensure_version(expected_version, current.version)?;
    conn.prepare_cached(
        "UPDATE tenants SET name = COALESCE(:name, name), status = COALESCE(:status, status), \
         version = version + 1, updated_at = :now WHERE id = :id",
    )?
    .execute(named_params! {
        ":name": name, ":status": status.map(|s| s.as_str()),
        ":now": crate::clock::now_rfc3339(), ":id": id.as_str(),
    })?;
    get_tenant(conn, id)
}

pub fn mark_deleted(conn: &Connection, id: &TenantId, trash_file: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE tenants SET status = 'deleted', deleted_at = :now, updated_at = :now, \
         trash_file = :trash, version = version + 1 WHERE id = :id",
    )?
    .execute(named_params! { ":now": crate::clock::now_rfc3339(), ":trash": trash_file, ":id": id.as_str() })?;
    Ok(())
}

pub fn mark_restored(conn: &Connection, id: &TenantId) -> Result<()> {
    conn.prepare_cached(
        "UPDATE tenants SET status = 'active', deleted_at = NULL, trash_file = NULL, \
         updated_at = :now, version = version + 1 WHERE id = :id",
    )?
    .execute(named_params! { ":now": crate::clock::now_rfc3339(), ":id": id.as_str() })?;
    Ok(())
}

pub fn set_schema_version(conn: &Connection, id: &TenantId, version: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE tenants SET schema_version = :v, updated_at = :now WHERE id = :id AND schema_version != :v",
    )?
    .execute(named_params! { ":v": version, ":id": id.as_str(), ":now": crate::clock::now_rfc3339() })?;
    Ok(())
}

pub fn set_last_backup_at(conn: &Connection, id: &TenantId, at: &str) -> Result<()> {
    conn.prepare_cached("UPDATE tenants SET last_backup_at = :at WHERE id = :id")?
        .execute(named_params! { ":at": at, ":id": id.as_str() })?;
    Ok(())
}

/// Forget a purged tenant: its id can be used again. Only deleted tenants are removed.
pub fn delete_tenant_row(conn: &Connection, id: &TenantId) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM tenants WHERE id = :id AND status = 'deleted'")?
        .execute(named_params! { ":id": id.as_str() })?;
    Ok(n == 1)
}

// ---- fleet migrations ----

/// Record where a tenant's migration stands.
pub fn set_migration_status(
    conn: &Connection,
    id: &TenantId,
    from: i64,
    to: i64,
    status: &str,
    snapshot: Option<&str>,
    error: Option<&str>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO tenant_migrations (tenant, from_version, to_version, status, snapshot, error, updated_at) \
         VALUES (:t, :f, :to, :s, :snap, :e, :now) ON CONFLICT (tenant) DO UPDATE SET \
         from_version = excluded.from_version, to_version = excluded.to_version, status = excluded.status, \
         snapshot = COALESCE(excluded.snapshot, snapshot), error = excluded.error, updated_at = excluded.updated_at",
    )?
    .execute(named_params! {
        ":t": id.as_str(), ":f": from, ":to": to, ":s": status, ":snap": snapshot, ":e": error,
        ":now": crate::clock::now_rfc3339(),
    })?;
    Ok(())
}

/// (from, to, status, snapshot) of a tenant's last fleet migration.
pub type MigrationStatus = (i64, i64, String, Option<String>);

pub fn migration_status(conn: &Connection, id: &TenantId) -> Result<Option<MigrationStatus>> {
    Ok(conn
        .prepare_cached("SELECT from_version, to_version, status, snapshot FROM tenant_migrations WHERE tenant = :t")?
        .query_row(named_params! { ":t": id.as_str() }, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?)
}

// ---- platform tokens ----

pub fn insert_platform_token(conn: &Connection, name: &str, token_hash: &str) -> Result<String> {
    let id = uuid::Uuid::now_v7().to_string();
    conn.prepare_cached(
        "INSERT INTO platform_tokens (id, name, token_hash, created_at) VALUES (:id, :name, :hash, :at)",
    )?
    .execute(named_params! { ":id": id, ":name": name, ":hash": token_hash, ":at": crate::clock::now_rfc3339() })?;
    Ok(id)
}

/// The id and name of a live (unrevoked, unexpired) platform token with this hash.
pub fn find_platform_token(
    conn: &Connection,
    token_hash: &str,
) -> Result<Option<(String, String)>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, name FROM platform_tokens WHERE token_hash = :hash AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > :now)",
        )?
        .query_row(
            named_params! { ":hash": token_hash, ":now": crate::clock::now_rfc3339() },
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

// ---- platform audit ----

/// One platform audit entry, as API.md shapes it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PlatformAuditEntry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub tenant: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub request_id: Option<String>,
}

pub fn record_audit(
    conn: &Connection,
    actor: &str,
    action: &str,
    tenant: Option<&TenantId>,
    details: serde_json::Value,
    request_id: Option<&str>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO platform_audit (at, actor, action, tenant, details, request_id) \
         VALUES (:at, :actor, :action, :tenant, :details, :rid)",
    )?
    .execute(named_params! {
        ":at": crate::clock::now_rfc3339(), ":actor": actor, ":action": action,
        ":tenant": tenant.map(|t| t.as_str()), ":details": details.to_string(), ":rid": request_id,
    })?;
    Ok(())
}

/// Newest first, before `before` (keyset), optionally for one tenant.
pub fn list_audit(
    conn: &Connection,
    tenant: Option<&TenantId>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<PlatformAuditEntry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, actor, action, tenant, details, request_id FROM platform_audit \
         WHERE (:tenant IS NULL OR tenant = :tenant) AND id < :before ORDER BY id DESC LIMIT :limit",
    )?;
    let rows = stmt.query_map(
        named_params! {
            ":tenant": tenant.map(|t| t.as_str()), ":before": before.unwrap_or(i64::MAX), ":limit": limit,
        },
        |r| {
            let details: String = r.get(5)?;
            Ok(PlatformAuditEntry {
                id: r.get(0)?,
                at: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                tenant: r.get(4)?,
                details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
                request_id: r.get(6)?,
            })
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::model::TenantStatus;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::schema::migrate_platform(&mut c).unwrap();
        c
    }

    fn record(id: &str) -> TenantRecord {
        TenantRecord {
            id: TenantId::parse(id).unwrap(),
            name: "Acme".into(),
            status: TenantStatus::Active,
            base_currency: "EUR".into(),
            modules: vec!["sales".into()],
            schema_version: 2,
            version: 1,
            created_at: crate::clock::now_rfc3339(),
            updated_at: crate::clock::now_rfc3339(),
            deleted_at: None,
            trash_file: None,
            last_backup_at: None,
        }
    }

    #[test]
    fn duplicate_tenant_is_a_conflict() {
        let c = db();
        insert_tenant(&c, &record("acme")).unwrap();
        assert!(matches!(
            insert_tenant(&c, &record("acme")),
            Err(Error::Conflict(_))
        ));
    }

    #[test]
    fn if_match_mismatch_is_a_conflict_and_changes_nothing() {
        let c = db();
        insert_tenant(&c, &record("acme")).unwrap();
        let id = TenantId::parse("acme").unwrap();
        assert!(matches!(
            update_tenant(&c, &id, Some(7), Some("X"), None),
            Err(Error::Conflict(_))
        ));
        let t = update_tenant(&c, &id, Some(1), None, Some(TenantStatus::Suspended)).unwrap();
        assert_eq!(
            (t.name.as_str(), t.status, t.version),
            ("Acme", TenantStatus::Suspended, 2)
        );
    }

    #[test]
    fn list_pages_by_id_and_hides_deleted() {
        let c = db();
        for id in ["aa", "bb", "cc"] {
            insert_tenant(&c, &record(id)).unwrap();
        }
        mark_deleted(&c, &TenantId::parse("bb").unwrap(), "trash/bb.db").unwrap();
        let page = list_tenants(&c, Some("aa"), 10, false).unwrap();
        assert_eq!(
            page.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            ["cc"]
        );
        assert_eq!(list_tenants(&c, None, 10, true).unwrap().len(), 3);
    }

    #[test]
    fn platform_audit_is_append_only() {
        let c = db();
        record_audit(&c, "op", "tenant.create", None, serde_json::json!({}), None).unwrap();
        assert!(
            c.execute("UPDATE platform_audit SET actor = 'x'", [])
                .is_err()
        );
        assert!(c.execute("DELETE FROM platform_audit", []).is_err());
    }
}
