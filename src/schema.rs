//! The embedded refinery migrations of both kinds of file, and the schema-version rules.
//!
//! Migrations always run grouped (all pending ones and their history rows in one
//! transaction), because refinery's default mode records each migration in a separate
//! transaction and a crash in between would leave a changed but unrecorded schema.

use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};

mod embedded {
    pub mod platform {
        refinery::embed_migrations!("migrations/platform");
    }
    pub mod tenant {
        refinery::embed_migrations!("migrations/tenant");
    }
}

/// `PRAGMA application_id` of a tenant file ('erpd').
pub const TENANT_APPLICATION_ID: i64 = 0x6572_7064;

/// The tenant schema version this binary writes (the highest embedded migration).
pub fn tenant_target_version() -> i64 {
    max_version(embedded::tenant::migrations::runner().get_migrations())
}

fn max_version(migrations: &[refinery::Migration]) -> i64 {
    migrations
        .iter()
        .map(|m| i64::from(m.version()))
        .max()
        .unwrap_or(0)
}

/// The schema version recorded in a file (0 for a file refinery never touched).
pub fn file_version(conn: &Connection) -> Result<i64> {
    let has_history: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'refinery_schema_history'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if has_history.is_none() {
        return Ok(0);
    }
    Ok(conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM refinery_schema_history",
        [],
        |r| r.get(0),
    )?)
}

/// Where a tenant file stands against this binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaState {
    Current,
    Pending { found: i64, target: i64 },
}

/// Classify a tenant file; a newer file is an error: this binary must never open it.
pub fn tenant_state(conn: &Connection) -> Result<SchemaState> {
    let found = file_version(conn)?;
    let target = tenant_target_version();
    match found.cmp(&target) {
        std::cmp::Ordering::Equal => Ok(SchemaState::Current),
        std::cmp::Ordering::Less => Ok(SchemaState::Pending { found, target }),
        std::cmp::Ordering::Greater => Err(Error::SchemaTooNew {
            found,
            supported: target,
        }),
    }
}

/// Apply pending tenant migrations in one transaction. Refuses newer files.
pub fn migrate_tenant(conn: &mut Connection) -> Result<i64> {
    tenant_state(conn)?;
    embedded::tenant::migrations::runner()
        .set_grouped(true)
        .run(conn)
        .map_err(|e| Error::Other(anyhow::anyhow!("tenant migration failed: {e}")))?;
    file_version(conn)
}

/// Apply pending platform migrations in one transaction.
pub fn migrate_platform(conn: &mut Connection) -> Result<i64> {
    let found = file_version(conn)?;
    let target = max_version(embedded::platform::migrations::runner().get_migrations());
    if found > target {
        return Err(Error::Other(anyhow::anyhow!(
            "platform.db schema version {found} is newer than this erpd supports ({target})"
        )));
    }
    embedded::platform::migrations::runner()
        .set_grouped(true)
        .run(conn)
        .map_err(|e| Error::Other(anyhow::anyhow!("platform migration failed: {e}")))?;
    file_version(conn)
}

/// Is this connection's file an erpd tenant file?
pub fn is_tenant_file(conn: &Connection) -> Result<bool> {
    let id: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    Ok(id == TENANT_APPLICATION_ID)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_file_migrates_to_target_and_is_marked() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(
            tenant_state(&conn).unwrap(),
            SchemaState::Pending {
                found: 0,
                target: tenant_target_version()
            }
        );
        assert_eq!(migrate_tenant(&mut conn).unwrap(), tenant_target_version());
        assert_eq!(tenant_state(&conn).unwrap(), SchemaState::Current);
        assert!(is_tenant_file(&conn).unwrap());
    }

    #[test]
    fn newer_files_are_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_tenant(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) VALUES (9999, 'future', '', '0')",
            [],
        )
        .unwrap();
        assert!(matches!(
            tenant_state(&conn),
            Err(Error::SchemaTooNew { found: 9999, .. })
        ));
        assert!(matches!(
            migrate_tenant(&mut conn),
            Err(Error::SchemaTooNew { .. })
        ));
    }

    #[test]
    fn platform_migrates() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert!(migrate_platform(&mut conn).unwrap() >= 1);
    }
}
