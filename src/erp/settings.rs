//! Tenant settings: switches such as "sales users see only the customers they own".
//! Only known keys can be set; record rules read the enabled ones in the same transaction
//! as the query they restrict.

use std::collections::BTreeSet;

use rusqlite::{Connection, named_params};

use crate::error::{Error, Result};

/// Every setting a tenant can change, with what it does.
pub const KNOWN: &[(&str, &str)] = &[(
    crate::erp::parties::SALES_OWN_CUSTOMERS,
    "sales users see and change only the customers they created",
)];

/// The keys whose value is `true`.
pub fn enabled(conn: &Connection) -> Result<BTreeSet<String>> {
    let mut stmt = conn.prepare_cached("SELECT key FROM settings WHERE value = 'true'")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn set(tx: &Connection, key: &str, enabled: bool) -> Result<()> {
    if !KNOWN.iter().any(|(k, _)| *k == key) {
        return Err(Error::NotFound);
    }
    tx.prepare_cached(
        "INSERT INTO settings (key, value, updated_at) VALUES (:k, :v, :now) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )?
    .execute(
        named_params! { ":k": key, ":v": enabled.to_string(), ":now": crate::clock::now_rfc3339() },
    )?;
    Ok(())
}
