//! The tenant audit log: append-only and hash-chained inside the tenant file.
//!
//! Each entry stores the hash of the previous one and its own hash over (previous hash,
//! every field). Editing or removing any entry breaks the chain, which [`verify`] finds.
//! Entries are written by the caller's transaction, so they commit or roll back with the
//! change they describe. SQLite triggers refuse UPDATE and DELETE on the table.

pub mod routes;
pub mod store;

use rusqlite::{Connection, OptionalExtension, named_params};
use sha2::{Digest, Sha256};

use crate::error::Result;

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One change to record.
#[derive(Debug, Clone)]
pub struct AuditEvent<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub entity: &'a str,
    pub entity_id: Option<&'a str>,
    pub changes: serde_json::Value,
    pub request_id: Option<&'a str>,
}

fn entry_hash(prev: &str, at: &str, ev: &AuditEvent<'_>, changes: &str) -> String {
    // A JSON array is an unambiguous encoding of the fields (no delimiter games).
    let material = serde_json::json!([
        prev,
        at,
        ev.actor,
        ev.action,
        ev.entity,
        ev.entity_id,
        changes,
        ev.request_id
    ]);
    hex::encode(Sha256::digest(material.to_string().as_bytes()))
}

/// Append an entry in the caller's transaction.
pub fn record(tx: &Connection, ev: &AuditEvent<'_>) -> Result<()> {
    let prev: String = tx
        .prepare_cached("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1")?
        .query_row([], |r| r.get(0))
        .optional()?
        .unwrap_or_else(|| GENESIS.to_owned());
    let at = crate::clock::now_rfc3339();
    let changes = ev.changes.to_string();
    let hash = entry_hash(&prev, &at, ev, &changes);
    tx.prepare_cached(
        "INSERT INTO audit_log (at, actor, action, entity, entity_id, changes, request_id, prev_hash, hash) \
         VALUES (:at, :actor, :action, :entity, :eid, :changes, :rid, :prev, :hash)",
    )?
    .execute(named_params! {
        ":at": at, ":actor": ev.actor, ":action": ev.action, ":entity": ev.entity,
        ":eid": ev.entity_id, ":changes": changes, ":rid": ev.request_id, ":prev": prev, ":hash": hash,
    })?;
    tx.prepare_cached(
        "UPDATE audit_head SET entries = entries + 1, hash = :hash WHERE singleton = 1",
    )?
    .execute(named_params! { ":hash": hash })?;
    Ok(())
}

/// The outcome of checking a chain: how many entries, and the first broken one.
#[derive(Debug, PartialEq, Eq)]
pub struct Verification {
    pub entries: u64,
    pub first_broken: Option<i64>,
}

/// Recompute the whole chain.
pub fn verify(conn: &Connection) -> Result<Verification> {
    let mut stmt = conn.prepare(
        "SELECT id, at, actor, action, entity, entity_id, changes, request_id, prev_hash, hash \
         FROM audit_log ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    let mut prev = GENESIS.to_owned();
    let mut entries = 0;
    while let Some(r) = rows.next()? {
        entries += 1;
        let id: i64 = r.get(0)?;
        let (at, actor, action, entity): (String, String, String, String) =
            (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        let (entity_id, changes, request_id): (Option<String>, String, Option<String>) =
            (r.get(5)?, r.get(6)?, r.get(7)?);
        let (stored_prev, stored_hash): (String, String) = (r.get(8)?, r.get(9)?);
        let ev = AuditEvent {
            actor: &actor,
            action: &action,
            entity: &entity,
            entity_id: entity_id.as_deref(),
            changes: serde_json::Value::Null,
            request_id: request_id.as_deref(),
        };
        if stored_prev != prev || entry_hash(&prev, &at, &ev, &changes) != stored_hash {
            return Ok(Verification {
                entries,
                first_broken: Some(id),
            });
        }
        prev = stored_hash;
    }
    // Entries cut off the end leave an intact but shorter chain: the head says so.
    let head: Option<(i64, String)> = conn
        .query_row("SELECT entries, hash FROM audit_head", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    if let Some((n, hash)) = head
        && (u64::try_from(n).ok() != Some(entries) || hash != prev)
    {
        let next = i64::try_from(entries).unwrap_or(i64::MAX).saturating_add(1);
        return Ok(Verification {
            entries,
            first_broken: Some(next),
        });
    }
    Ok(Verification {
        entries,
        first_broken: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::schema::migrate_tenant(&mut c).unwrap();
        c
    }

    fn ev(action: &str) -> AuditEvent<'_> {
        AuditEvent {
            actor: "user:1",
            action,
            entity: "customers",
            entity_id: Some("c1"),
            changes: serde_json::json!({"name": [null, "Acme"]}),
            request_id: Some("r1"),
        }
    }

    #[test]
    fn an_intact_chain_verifies() {
        let c = db();
        for a in ["create", "update", "delete"] {
            record(&c, &ev(a)).unwrap();
        }
        assert_eq!(
            verify(&c).unwrap(),
            Verification {
                entries: 3,
                first_broken: None
            }
        );
    }

    #[test]
    fn edited_or_removed_entries_are_detected() {
        let c = db();
        for a in ["create", "update", "delete"] {
            record(&c, &ev(a)).unwrap();
        }
        // Bypass the append-only triggers as an attacker with file access would.
        c.execute_batch("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
            .unwrap();
        c.execute(
            "UPDATE audit_log SET actor = 'someone-else' WHERE id = 2",
            [],
        )
        .unwrap();
        assert_eq!(verify(&c).unwrap().first_broken, Some(2));
        c.execute("UPDATE audit_log SET actor = 'user:1' WHERE id = 2", [])
            .unwrap();
        c.execute("DELETE FROM audit_log WHERE id = 2", []).unwrap();
        assert_eq!(verify(&c).unwrap().first_broken, Some(3));
    }

    #[test]
    fn entries_cut_off_the_end_are_detected() {
        let c = db();
        for a in ["create", "update", "delete"] {
            record(&c, &ev(a)).unwrap();
        }
        c.execute_batch("DROP TRIGGER audit_log_no_delete;")
            .unwrap();
        c.execute("DELETE FROM audit_log WHERE id = 3", []).unwrap();
        assert!(verify(&c).unwrap().first_broken.is_some());
    }

    #[test]
    fn the_log_refuses_updates() {
        let c = db();
        record(&c, &ev("create")).unwrap();
        assert!(c.execute("UPDATE audit_log SET actor = 'x'", []).is_err());
        assert!(c.execute("DELETE FROM audit_log", []).is_err());
    }
}
