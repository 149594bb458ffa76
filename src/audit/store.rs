//! Reading the tenant audit log.

use rusqlite::{Connection, named_params};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::Result;

#[derive(Debug, Serialize, ToSchema)]
pub struct Entry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub entity: String,
    pub entity_id: Option<String>,
    #[schema(value_type = Object)]
    pub changes: serde_json::Value,
    pub request_id: Option<String>,
}

pub struct Filter {
    pub entity: Option<String>,
    pub entity_id: Option<String>,
    pub since: Option<String>,
    pub before: Option<i64>,
    pub limit: i64,
}

pub fn list(conn: &Connection, f: &Filter) -> Result<Vec<Entry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, actor, action, entity, entity_id, changes, request_id FROM audit_log \
         WHERE (:entity IS NULL OR entity = :entity) AND (:eid IS NULL OR entity_id = :eid) \
         AND (:since IS NULL OR at >= :since) AND id < :before ORDER BY id DESC LIMIT :limit",
    )?;
    let rows = stmt.query_map(
        named_params! {
            ":entity": f.entity, ":eid": f.entity_id, ":since": f.since,
            ":before": f.before.unwrap_or(i64::MAX), ":limit": f.limit,
        },
        |r| {
            let changes: String = r.get(6)?;
            Ok(Entry {
                id: r.get(0)?,
                at: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                entity: r.get(4)?,
                entity_id: r.get(5)?,
                changes: serde_json::from_str(&changes).unwrap_or(serde_json::Value::Null),
                request_id: r.get(7)?,
            })
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
