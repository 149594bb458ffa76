//! The embedded refinery migrations of both kinds of file, and the schema-version rules.
//!
//! Migrations always run grouped (all pending ones and their history rows in one
//! transaction), because refinery's default mode records each migration in a separate
//! transaction and a crash in between would leave a changed but unrecorded schema.
//!
//! Debug builds (the ones `cargo test` runs) also know one hidden, test-only tenant
//! migration, switched on by an environment variable (see [`test_migration`]), so the
//! fleet-migration tests can make a real migration fail for chosen tenants. Release builds
//! do not contain it.

use std::sync::OnceLock;

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

/// The tenant migrations this binary applies, read once per process: the embedded ones,
/// plus the test hook's extra one in a debug build when its variable is set.
fn tenant_migrations() -> &'static [refinery::Migration] {
    static ALL: OnceLock<Vec<refinery::Migration>> = OnceLock::new();
    ALL.get_or_init(|| {
        #[allow(unused_mut)] // only debug builds push the test migration
        let mut all = embedded::tenant::migrations::runner()
            .get_migrations()
            .clone();
        #[cfg(debug_assertions)]
        all.extend(test_migration::from_env());
        all
    })
}

/// The tenant schema version this binary writes (the highest migration it applies).
pub fn tenant_target_version() -> i64 {
    max_version(tenant_migrations())
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
    refinery::Runner::new(tenant_migrations())
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

/// Test-only, compiled into debug builds alone: `ERPD_TEST_EXTRA_MIGRATION=fail-if:<glob>`
/// adds tenant migration V9000, which creates a table whose CHECK refuses tenant ids that
/// match the SQLite GLOB pattern and copies the tenant's id into it. Tenants whose id
/// matches fail that migration (a genuine SQL error inside refinery's grouped
/// transaction); the others migrate to 9000. The template has no identity row, so it
/// migrates. 9000 stays clear of real migrations; a file at 9000 is "too new" for a binary
/// without the variable, as it would be for an older release.
#[cfg(debug_assertions)]
pub mod test_migration {
    /// The variable that switches the migration on.
    pub const ENV: &str = "ERPD_TEST_EXTRA_MIGRATION";
    /// Its version: far above the real migrations, which are being added one by one.
    pub const VERSION: i64 = 9000;

    pub(super) fn from_env() -> Option<refinery::Migration> {
        let spec = std::env::var(ENV).ok()?;
        let Some(glob) = spec.strip_prefix("fail-if:") else {
            tracing::warn!(spec, "{ENV} ignored: expected fail-if:<glob>");
            return None;
        };
        migration(glob)
    }

    pub(super) fn migration(glob: &str) -> Option<refinery::Migration> {
        // A SQL string literal: quotes doubled, so any pattern stays one literal.
        let glob = glob.replace('\'', "''");
        let sql = format!(
            "CREATE TABLE erpd_test_extra_migration (\n\
             \x20   tenant_id TEXT NOT NULL CHECK (tenant_id NOT GLOB '{glob}')\n\
             ) STRICT;\n\
             INSERT INTO erpd_test_extra_migration (tenant_id) SELECT tenant_id FROM tenant;\n"
        );
        match refinery::Migration::unapplied(&format!("V{VERSION}__test_fail_if"), &sql) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(error = %e, "{ENV} ignored");
                None
            }
        }
    }
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

    #[cfg(debug_assertions)]
    #[test]
    fn the_test_migration_fails_only_for_matching_tenants() {
        let extra = test_migration::migration("b*").unwrap();
        assert_eq!(i64::from(extra.version()), test_migration::VERSION);
        let mut migrations = embedded::tenant::migrations::runner()
            .get_migrations()
            .clone();
        migrations.push(extra);
        let with_extra = refinery::Runner::new(&migrations);
        for (id, ok) in [("alpha", true), ("beta", false)] {
            let mut conn = Connection::open_in_memory().unwrap();
            embedded::tenant::migrations::runner()
                .set_grouped(true)
                .run(&mut conn)
                .unwrap();
            let before = file_version(&conn).unwrap();
            conn.execute(
                "INSERT INTO tenant (singleton, tenant_id, name, base_currency, created_at) \
                 VALUES (1, ?1, 'T', 'EUR', '2026-01-01T00:00:00Z')",
                [id],
            )
            .unwrap();
            let ran = with_extra.run(&mut conn);
            assert_eq!(ran.is_ok(), ok, "{id}: {ran:?}");
            let after = file_version(&conn).unwrap();
            let expected = if ok { test_migration::VERSION } else { before };
            assert_eq!(after, expected, "{id}");
        }
    }

    #[test]
    fn platform_migrates() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert!(migrate_platform(&mut conn).unwrap() >= 1);
    }
}
