//! Generic writes for described entities: insert, update, soft delete and restore, each
//! with its version bump and its audit entry (changed fields, before and after, as shown
//! on the wire) in the caller's transaction. Reads go through [`super::query`].

use std::collections::BTreeMap;

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OptionalExtension};
use serde_json::{Map, Value as Json, json};

use super::entity::{CurrencyOf, Entity, Kind};
use super::query::{self, Viewer, quote};
use super::values::{self, Ctx};
use super::write::Values;
use crate::audit::{self, AuditEvent};
use crate::error::{Error, Result};

/// Who acts, for the audit log.
pub struct Act<'a> {
    pub actor: &'a str,
    pub request_id: Option<&'a str>,
}

type Raw = BTreeMap<&'static str, Value>;

/// Check that every reference points at a live row of its entity (422 otherwise).
fn check_refs(tx: &Connection, values: &Values) -> Result<()> {
    for (f, v) in values {
        if let (Kind::Ref(target), Value::Text(id)) = (f.kind, v) {
            let sql = format!(
                "SELECT 1 FROM {} WHERE id = ? AND deleted_at IS NULL",
                quote(target.table)
            );
            let found: Option<i64> = tx
                .prepare_cached(&sql)?
                .query_row([id], |r| r.get(0))
                .optional()?;
            if found.is_none() {
                return Err(Error::invalid(
                    f.name,
                    format!("no {} with id {id:?}", target.name),
                ));
            }
        }
    }
    Ok(())
}

/// A UNIQUE violation on a live business key is a 409 naming the key's fields.
fn conflict(entity: &'static Entity) -> impl Fn(rusqlite::Error) -> Error {
    move |e| {
        let msg = e.to_string();
        let prefix = format!("UNIQUE constraint failed: {}.", entity.table);
        if let Some(cols) = msg
            .strip_prefix("UNIQUE constraint failed: ")
            .filter(|_| msg.starts_with(&prefix))
        {
            let names: Vec<&str> = cols
                .split(", ")
                .filter_map(|c| c.split_once('.').map(|(_, n)| n))
                .collect();
            return Error::Conflict(format!(
                "{}: {} already in use by a live record",
                entity.name,
                names.join(", ")
            ));
        }
        Error::Sqlite(e)
    }
}

/// Wire form of raw stored values (money scaled by the row's currency).
fn display(entity: &Entity, raw: &Raw, ctx: &Ctx<'_>) -> Map<String, Json> {
    let mut out = Map::new();
    for (name, v) in raw {
        let Some(f) = entity.field(name) else {
            continue;
        };
        let currency = match f.kind {
            Kind::Money(CurrencyOf::Field(c)) => match raw.get(c) {
                Some(Value::Text(code)) => Some(code.clone()),
                _ => Some(ctx.base_currency.to_owned()),
            },
            Kind::Money(CurrencyOf::Base) => Some(ctx.base_currency.to_owned()),
            _ => None,
        };
        out.insert(
            (*name).to_owned(),
            values::to_json(f, ValueRef::from(v), currency.as_deref(), ctx),
        );
    }
    out
}

/// Insert a row; returns its id.
pub fn insert(
    tx: &Connection,
    entity: &'static Entity,
    values: &Values,
    owner: &str,
    act: &Act<'_>,
    ctx: &Ctx<'_>,
) -> Result<String> {
    check_refs(tx, values)?;
    let id = uuid::Uuid::now_v7().to_string();
    let now = crate::clock::now_rfc3339();
    let mut cols: Vec<String> = ["id", "version", "created_at", "updated_at", "owner_id"]
        .into_iter()
        .map(quote)
        .collect();
    let mut params = vec![
        Value::Text(id.clone()),
        Value::Integer(1),
        Value::Text(now.clone()),
        Value::Text(now),
        Value::Text(owner.into()),
    ];
    for (f, v) in values {
        cols.push(quote(f.name));
        params.push(v.clone());
    }
    let marks = vec!["?"; cols.len()].join(", ");
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({marks})",
        quote(entity.table),
        cols.join(", ")
    );
    tx.prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(params.iter()))
        .map_err(conflict(entity))?;
    let after: Raw = values.iter().map(|(f, v)| (f.name, v.clone())).collect();
    let changes: Map<String, Json> = display(entity, &after, ctx)
        .into_iter()
        .map(|(k, v)| (k, json!([null, v])))
        .collect();
    audit::record(
        tx,
        &AuditEvent {
            actor: act.actor,
            action: "create",
            entity: entity.name,
            entity_id: Some(&id),
            changes: Json::Object(changes),
            request_id: act.request_id,
        },
    )?;
    Ok(id)
}

/// Version and raw field values of a row the viewer can see (record rules apply to
/// writes too), live or deleted as asked; 404 otherwise.
pub fn current(
    tx: &Connection,
    entity: &'static Entity,
    viewer: &Viewer<'_>,
    id: &str,
    deleted: bool,
) -> Result<(i64, Raw)> {
    let probe = query::by_id(entity, viewer, id, true)?;
    let row: Option<(i64, Option<String>)> = tx
        .prepare_cached(&probe.sql)?
        .query_row(rusqlite::params_from_iter(probe.params.iter()), |r| {
            Ok((r.get(1)?, r.get(4)?))
        })
        .optional()?;
    let (version, deleted_at) = row.ok_or(Error::NotFound)?;
    if deleted_at.is_some() != deleted {
        return Err(Error::NotFound);
    }
    let cols: Vec<String> = entity.fields.iter().map(|f| quote(f.name)).collect();
    let sql = format!(
        "SELECT {} FROM {} WHERE id = ?",
        cols.join(", "),
        quote(entity.table)
    );
    let raw = tx.prepare_cached(&sql)?.query_row([id], |r| {
        let mut m = Raw::new();
        for (i, f) in entity.fields.iter().enumerate() {
            m.insert(f.name, r.get::<_, Value>(i)?);
        }
        Ok(m)
    })?;
    Ok((version, raw))
}

/// The stored text of one column of a row (e.g. its currency, for money in an update).
pub fn raw_text(raw: &Raw, field: &str) -> Option<String> {
    match raw.get(field) {
        Some(Value::Text(s)) => Some(s.clone()),
        _ => None,
    }
}

/// Update the given fields, bump the version, audit what changed.
pub fn update(
    tx: &Connection,
    entity: &'static Entity,
    id: &str,
    before: Raw,
    values: &Values,
    act: &Act<'_>,
    ctx: &Ctx<'_>,
) -> Result<()> {
    let mut after = before.clone();
    for (f, v) in values {
        after.insert(f.name, v.clone());
    }
    let (old, new) = (display(entity, &before, ctx), display(entity, &after, ctx));
    let changes: Map<String, Json> = new
        .into_iter()
        .filter(|(k, v)| old.get(k) != Some(v))
        .map(|(k, v)| {
            let was = old.get(&k).cloned().unwrap_or(Json::Null);
            (k, json!([was, v]))
        })
        .collect();
    if changes.is_empty() {
        // Nothing changes: no version bump, and no audit entry claiming a change.
        return Ok(());
    }
    check_refs(tx, values)?;
    let mut sets = vec![
        "\"version\" = \"version\" + 1".to_owned(),
        "\"updated_at\" = ?".to_owned(),
    ];
    let mut params = vec![Value::Text(crate::clock::now_rfc3339())];
    for (f, v) in values {
        sets.push(format!("{} = ?", quote(f.name)));
        params.push(v.clone());
    }
    params.push(Value::Text(id.to_owned()));
    let sql = format!(
        "UPDATE {} SET {} WHERE id = ?",
        quote(entity.table),
        sets.join(", ")
    );
    tx.prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(params.iter()))
        .map_err(conflict(entity))?;
    audit::record(
        tx,
        &AuditEvent {
            actor: act.actor,
            action: "update",
            entity: entity.name,
            entity_id: Some(id),
            changes: Json::Object(changes),
            request_id: act.request_id,
        },
    )
}

/// Soft delete (`deleted = true`) or restore (`false`) a row the caller can see.
pub fn set_deleted(
    tx: &Connection,
    entity: &'static Entity,
    viewer: &Viewer<'_>,
    id: &str,
    expected: Option<i64>,
    deleted: bool,
    act: &Act<'_>,
) -> Result<()> {
    if !viewer.perms.allows(entity.name, "delete") {
        return Err(Error::Forbidden(format!(
            "no permission to delete or restore {}",
            entity.name
        )));
    }
    let (version, _) = current(tx, entity, viewer, id, !deleted)?;
    crate::error::ensure_version(expected, version)?;
    if deleted && let Some(guard) = entity.guard_delete {
        guard(tx, id)?;
    }
    let now = crate::clock::now_rfc3339();
    let sql = format!(
        "UPDATE {} SET deleted_at = ?, version = version + 1, updated_at = ? WHERE id = ?",
        quote(entity.table)
    );
    let stamp = if deleted {
        Value::Text(now.clone())
    } else {
        Value::Null
    };
    tx.prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(
            [stamp, Value::Text(now), Value::Text(id.to_owned())].iter(),
        ))
        .map_err(conflict(entity))?;
    audit::record(
        tx,
        &AuditEvent {
            actor: act.actor,
            action: if deleted { "delete" } else { "restore" },
            entity: entity.name,
            entity_id: Some(id),
            changes: json!({}),
            request_id: act.request_id,
        },
    )
}

/// Read one row back for the viewer (after a write).
pub fn read_back(
    tx: &Connection,
    entity: &'static Entity,
    viewer: &Viewer<'_>,
    id: &str,
    ctx: &Ctx<'_>,
) -> Result<Map<String, Json>> {
    let c = query::by_id(entity, viewer, id, true)?;
    query::fetch_one(tx, &c, ctx)?.ok_or(Error::NotFound)
}
