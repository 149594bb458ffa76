//! The access-aware query compiler. From an entity description and the caller's
//! permissions it builds the SELECT list (only fields the caller may read: forbidden
//! columns are never read from SQLite), the WHERE predicates (soft delete, record rules,
//! filters), ORDER BY and keyset pagination, with every value bound as a parameter.
//! Filtering or sorting on a field the caller cannot read is refused (403): that is how
//! field security leaks elsewhere.

use std::collections::BTreeSet;

use rusqlite::types::Value;
use serde_json::{Map, Value as Json};

use super::entity::{CurrencyOf, Entity, Field, Kind};
use super::permission::Permissions;
use super::values::{self, Ctx};
use crate::error::{Error, Result};

/// Who is reading, as far as access is concerned.
pub struct Viewer<'a> {
    pub perms: &'a Permissions,
    pub user_id: &'a str,
    pub roles: &'a [String],
    /// Tenant settings that are switched on (record rules key off them).
    pub settings: &'a BTreeSet<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Asc,
    Desc,
}

/// A list request, as parsed from the query string.
#[derive(Debug, Default)]
pub struct ListSpec {
    pub filters: Vec<(String, String)>,
    pub sort: Option<(String, Dir)>,
    pub cursor: Option<String>,
    pub limit: i64,
    pub include_deleted: bool,
}

/// SQL ready to run, and how to read its rows.
#[derive(Debug)]
pub struct Compiled {
    pub sql: String,
    pub params: Vec<Value>,
    /// The entity fields in the SELECT list, after the system columns.
    pub fields: Vec<&'static Field>,
    /// The sort field (for the next cursor), `None` for the id.
    pub sort: Option<&'static Field>,
}

/// System columns at the head of every SELECT list.
const HEAD: &str = "id, version, created_at, updated_at, deleted_at";
const HEAD_LEN: usize = 5;

/// May the caller read this entity at all?
pub fn require_read(entity: &Entity, viewer: &Viewer<'_>) -> Result<()> {
    if viewer.perms.allows(entity.name, "read") {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "no permission to read {}",
            entity.name
        )))
    }
}

/// The fields the caller may read, in description order.
pub fn readable(entity: &Entity, viewer: &Viewer<'_>) -> Vec<&'static Field> {
    entity
        .fields
        .iter()
        .filter(|f| {
            viewer
                .perms
                .allows_field(entity.name, f.name, f.sensitive, "read")
        })
        .collect()
}

/// A field the caller names in a filter, sort or group: it must exist, be queryable and
/// be readable by the caller.
pub fn queryable(
    entity: &'static Entity,
    viewer: &Viewer<'_>,
    name: &str,
) -> Result<&'static Field> {
    let f = entity
        .field(name)
        .ok_or_else(|| Error::bad_field(name, format!("{} has no field {name:?}", entity.name)))?;
    if !viewer
        .perms
        .allows_field(entity.name, f.name, f.sensitive, "read")
    {
        return Err(Error::Forbidden(format!(
            "no permission to read {}.{}, so it cannot be filtered or sorted on",
            entity.name, f.name
        )));
    }
    if !f.query {
        return Err(Error::bad_field(name, "cannot be filtered or sorted on"));
    }
    Ok(f)
}

fn select_list(fields: &[&'static Field]) -> String {
    let mut s = String::from(HEAD);
    for f in fields {
        s.push_str(", ");
        s.push_str(&quote(f.name));
    }
    s
}

/// Quote an identifier. Identifiers only ever come from `'static` descriptions; quoting
/// keeps names such as `from` and `to` legal.
pub fn quote(ident: &str) -> String {
    debug_assert!(
        ident
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
    );
    format!("\"{ident}\"")
}

/// The record-rule predicate, if one applies to this viewer.
fn record_rules(entity: &Entity, viewer: &Viewer<'_>, sql: &mut String, params: &mut Vec<Value>) {
    let Some(rule) = entity.own_rows else { return };
    if !viewer.settings.contains(rule.setting) {
        return;
    }
    // Restricted when every role the viewer has is one the rule restricts.
    let restricted = !viewer.roles.is_empty()
        && viewer
            .roles
            .iter()
            .all(|r| rule.roles.contains(&r.as_str()));
    if restricted {
        sql.push_str(&format!(" AND {} = ?", quote(rule.column)));
        params.push(Value::Text(viewer.user_id.to_owned()));
    }
}

/// One row by id (404 is the caller's when no row comes back).
pub fn by_id(
    entity: &'static Entity,
    viewer: &Viewer<'_>,
    id: &str,
    include_deleted: bool,
) -> Result<Compiled> {
    require_read(entity, viewer)?;
    let fields = readable(entity, viewer);
    let mut sql = format!(
        "SELECT {} FROM {} WHERE id = ?",
        select_list(&fields),
        quote(entity.table)
    );
    let mut params = vec![Value::Text(id.to_owned())];
    if !include_deleted {
        sql.push_str(" AND deleted_at IS NULL");
    }
    record_rules(entity, viewer, &mut sql, &mut params);
    Ok(Compiled {
        sql,
        params,
        fields,
        sort: None,
    })
}

/// A page of rows. Fetches `limit + 1` so the caller knows whether there is a next page.
pub fn list(
    entity: &'static Entity,
    viewer: &Viewer<'_>,
    spec: &ListSpec,
    ctx: &Ctx<'_>,
) -> Result<Compiled> {
    require_read(entity, viewer)?;
    if spec.include_deleted && !viewer.perms.allows(entity.name, "delete") {
        return Err(Error::Forbidden(format!(
            "include_deleted needs permission {}:delete",
            entity.name
        )));
    }
    let fields = readable(entity, viewer);
    let mut sql = format!(
        "SELECT {} FROM {} WHERE 1 = 1",
        select_list(&fields),
        quote(entity.table)
    );
    let mut params = Vec::new();
    if !spec.include_deleted {
        sql.push_str(" AND deleted_at IS NULL");
    }
    record_rules(entity, viewer, &mut sql, &mut params);
    for (name, raw) in &spec.filters {
        let f = queryable(entity, viewer, name)?;
        let v = filter_value(f, raw, ctx).map_err(|m| Error::bad_field(name, m))?;
        sql.push_str(&format!(" AND {} = ?", quote(f.name)));
        params.push(v);
    }
    let (sort, dir) = match &spec.sort {
        Some((name, dir)) => {
            let f = queryable(entity, viewer, name)?;
            if !f.required {
                return Err(Error::bad_field(
                    "sort",
                    format!("{name} is optional and cannot be sorted on"),
                ));
            }
            (Some(f), *dir)
        }
        None => (None, Dir::Asc),
    };
    let (cmp, order) = match dir {
        Dir::Asc => (">", "ASC"),
        Dir::Desc => ("<", "DESC"),
    };
    if let Some(cursor) = &spec.cursor {
        let (value, id) = decode_cursor(cursor)?;
        match sort {
            Some(f) => {
                sql.push_str(&format!(
                    " AND ({0} {cmp} ? OR ({0} = ? AND id {cmp} ?))",
                    quote(f.name)
                ));
                let v = cursor_value(value)?;
                params.extend([v.clone(), v, Value::Text(id)]);
            }
            None => {
                sql.push_str(&format!(" AND id {cmp} ?"));
                params.push(Value::Text(id));
            }
        }
    }
    match sort {
        Some(f) => sql.push_str(&format!(" ORDER BY {} {order}, id {order}", quote(f.name))),
        None => sql.push_str(&format!(" ORDER BY id {order}")),
    }
    sql.push_str(" LIMIT ?");
    params.push(Value::Integer(spec.limit + 1));
    Ok(Compiled {
        sql,
        params,
        fields,
        sort,
    })
}

fn filter_value(f: &Field, raw: &str, ctx: &Ctx<'_>) -> std::result::Result<Value, String> {
    let json = match f.kind {
        Kind::Bool => Json::Bool(match raw {
            "true" => true,
            "false" => false,
            _ => return Err("must be true or false".into()),
        }),
        Kind::Int { .. } => Json::from(
            raw.parse::<i64>()
                .map_err(|_| "must be an integer".to_string())?,
        ),
        Kind::Money(_) => return Err("money fields cannot be filtered on".into()),
        _ => Json::String(raw.to_owned()),
    };
    values::to_sql(f, &json, None, ctx)
}

/// Cursor = hex(JSON [sort value, id]): opaque to clients, validated on the way back.
fn encode_cursor(value: Json, id: &str) -> String {
    hex::encode(serde_json::json!([value, id]).to_string())
}

fn decode_cursor(cursor: &str) -> Result<(Json, String)> {
    let bad = || Error::bad_field("cursor", "invalid cursor");
    let bytes = hex::decode(cursor).map_err(|_| bad())?;
    let v: Json = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    match v {
        Json::Array(mut a) if a.len() == 2 => {
            let id = a
                .pop()
                .and_then(|i| i.as_str().map(str::to_owned))
                .ok_or_else(bad)?;
            Ok((a.pop().unwrap_or(Json::Null), id))
        }
        _ => Err(bad()),
    }
}

fn cursor_value(v: Json) -> Result<Value> {
    Ok(match v {
        Json::String(s) => Value::Text(s),
        Json::Number(n) => Value::Integer(
            n.as_i64()
                .ok_or_else(|| Error::bad_field("cursor", "invalid cursor"))?,
        ),
        Json::Bool(b) => Value::Integer(b.into()),
        _ => return Err(Error::bad_field("cursor", "invalid cursor")),
    })
}

/// One row as JSON: system fields plus the readable fields.
pub fn row_to_json(
    row: &rusqlite::Row<'_>,
    c: &Compiled,
    ctx: &Ctx<'_>,
) -> rusqlite::Result<Map<String, Json>> {
    let mut m = Map::new();
    m.insert("id".into(), Json::String(row.get(0)?));
    m.insert("version".into(), Json::from(row.get::<_, i64>(1)?));
    m.insert("created_at".into(), Json::String(row.get(2)?));
    m.insert("updated_at".into(), Json::String(row.get(3)?));
    let deleted: Option<String> = row.get(4)?;
    if let Some(d) = deleted {
        m.insert("deleted_at".into(), Json::String(d));
    }
    // Currency fields come before the money they scale (descriptions order them so).
    for (i, f) in c.fields.iter().enumerate() {
        let currency: Option<String> = match f.kind {
            Kind::Money(CurrencyOf::Field(name)) => {
                m.get(name).and_then(Json::as_str).map(str::to_owned)
            }
            Kind::Money(CurrencyOf::Base) => Some(ctx.base_currency.to_owned()),
            _ => None,
        };
        let v = values::to_json(f, row.get_ref(HEAD_LEN + i)?, currency.as_deref(), ctx);
        m.insert(f.name.into(), v);
    }
    Ok(m)
}

/// A page of rows as JSON, and the cursor of the next page.
pub type Page = (Vec<Map<String, Json>>, Option<String>);

/// Run a compiled list; returns the items and the next cursor.
pub fn fetch_page(
    conn: &rusqlite::Connection,
    c: &Compiled,
    limit: i64,
    ctx: &Ctx<'_>,
) -> Result<Page> {
    let mut stmt = conn.prepare_cached(&c.sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(c.params.iter()))?;
    let mut items = Vec::new();
    while let Some(row) = rows.next()? {
        items.push(row_to_json(row, c, ctx)?);
    }
    let next = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|last| {
            let id = last.get("id").and_then(Json::as_str).unwrap_or_default();
            let sort_value = c.sort.map_or(Json::Null, |f| raw_sort_value(f, last));
            encode_cursor(sort_value, id)
        })
    } else {
        None
    };
    Ok((items, next))
}

/// The stored (not displayed) value of a sort field, for the cursor.
fn raw_sort_value(f: &Field, item: &Map<String, Json>) -> Json {
    let v = item.get(f.name).cloned().unwrap_or(Json::Null);
    match (f.kind, &v) {
        (Kind::Bool, Json::Bool(b)) => Json::from(i64::from(*b)),
        (Kind::Decimal { scale, .. }, Json::String(s)) => s
            .parse::<rust_decimal::Decimal>()
            .ok()
            .and_then(|d| values::to_scaled(d, scale))
            .map_or(Json::Null, Json::from),
        _ => v,
    }
}

/// Run a compiled single-row query.
pub fn fetch_one(
    conn: &rusqlite::Connection,
    c: &Compiled,
    ctx: &Ctx<'_>,
) -> Result<Option<Map<String, Json>>> {
    use rusqlite::OptionalExtension;
    let mut stmt = conn.prepare_cached(&c.sql)?;
    Ok(stmt
        .query_row(rusqlite::params_from_iter(c.params.iter()), |r| {
            row_to_json(r, c, ctx)
        })
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::permission::{Permissions, built_in};
    use crate::access::store::{self, Act};
    use crate::access::write::{self, Mode};
    use crate::erp::parties::{CUSTOMERS, SALES_OWN_CUSTOMERS};
    use crate::reference::Reference;
    use serde_json::json;

    struct Fixture {
        conn: rusqlite::Connection,
        reference: Reference,
    }

    fn fixture() -> Fixture {
        let mut p = rusqlite::Connection::open_in_memory().unwrap();
        crate::schema::migrate_platform(&mut p).unwrap();
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::schema::migrate_tenant(&mut conn).unwrap();
        Fixture {
            conn,
            reference: Reference::load(&p).unwrap(),
        }
    }

    fn perms(role: &str) -> Permissions {
        Permissions::from_grants(built_in(role).unwrap().iter().copied())
    }

    fn viewer<'a>(
        p: &'a Permissions,
        user: &'a str,
        roles: &'a [String],
        settings: &'a BTreeSet<String>,
    ) -> Viewer<'a> {
        Viewer {
            perms: p,
            user_id: user,
            roles,
            settings,
        }
    }

    fn add_customer(f: &Fixture, owner: &str, name: &str, limit: &str) -> String {
        let p = perms("owner");
        let (roles, settings) = (vec!["owner".to_string()], BTreeSet::new());
        let v = viewer(&p, owner, &roles, &settings);
        let ctx = Ctx {
            reference: &f.reference,
            base_currency: "EUR",
        };
        let body = json!({"name": name, "credit_limit": limit})
            .as_object()
            .unwrap()
            .clone();
        let values = write::values(&CUSTOMERS, &v, &body, Mode::Create, None, &ctx).unwrap();
        store::insert(
            &f.conn,
            &CUSTOMERS,
            &values,
            owner,
            &Act {
                actor: owner,
                request_id: None,
            },
            &ctx,
        )
        .unwrap()
    }

    #[test]
    fn forbidden_columns_are_never_selected() {
        let (p, roles, settings) = (perms("sales"), vec!["sales".to_string()], BTreeSet::new());
        let c = by_id(&CUSTOMERS, &viewer(&p, "u", &roles, &settings), "x", false).unwrap();
        assert!(
            !c.sql.contains("credit_limit") && !c.sql.contains("payment_terms_days"),
            "{}",
            c.sql
        );
        let (p, roles) = (perms("accountant"), vec!["accountant".to_string()]);
        let c = by_id(&CUSTOMERS, &viewer(&p, "u", &roles, &settings), "x", false).unwrap();
        assert!(c.sql.contains("\"credit_limit\""));
    }

    #[test]
    fn filtering_or_sorting_on_a_forbidden_field_is_403() {
        let f = fixture();
        let ctx = Ctx {
            reference: &f.reference,
            base_currency: "EUR",
        };
        let (p, roles, settings) = (perms("sales"), vec!["sales".to_string()], BTreeSet::new());
        let v = viewer(&p, "u", &roles, &settings);
        let spec = ListSpec {
            filters: vec![("payment_terms_days".into(), "30".into())],
            limit: 10,
            ..Default::default()
        };
        assert_eq!(list(&CUSTOMERS, &v, &spec, &ctx).unwrap_err().status(), 403);
        let spec = ListSpec {
            sort: Some(("credit_limit".into(), Dir::Desc)),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(list(&CUSTOMERS, &v, &spec, &ctx).unwrap_err().status(), 403);
        let spec = ListSpec {
            filters: vec![("nope".into(), "1".into())],
            limit: 10,
            ..Default::default()
        };
        assert_eq!(list(&CUSTOMERS, &v, &spec, &ctx).unwrap_err().status(), 400);
    }

    #[test]
    fn cursor_pages_cover_every_row_once_in_order() {
        let f = fixture();
        for i in 0..7 {
            add_customer(&f, "owner1", &format!("c{}", (7 - i) % 7), "10.00");
        }
        let ctx = Ctx {
            reference: &f.reference,
            base_currency: "EUR",
        };
        let (p, roles, settings) = (perms("viewer"), vec!["viewer".to_string()], BTreeSet::new());
        let v = viewer(&p, "u", &roles, &settings);
        let mut seen = Vec::new();
        let mut cursor = None;
        for _ in 0..10 {
            let spec = ListSpec {
                sort: Some(("name".into(), Dir::Asc)),
                cursor: cursor.clone(),
                limit: 3,
                ..Default::default()
            };
            let c = list(&CUSTOMERS, &v, &spec, &ctx).unwrap();
            let (items, next) = fetch_page(&f.conn, &c, 3, &ctx).unwrap();
            assert!(items.iter().all(|i| !i.contains_key("credit_limit")));
            seen.extend(
                items
                    .into_iter()
                    .map(|i| i["name"].as_str().unwrap().to_owned()),
            );
            cursor = next;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(seen, ["c0", "c1", "c2", "c3", "c4", "c5", "c6"]);
    }

    #[test]
    fn the_own_customers_rule_is_a_sql_predicate() {
        let f = fixture();
        add_customer(&f, "alice", "A", "1");
        add_customer(&f, "bob", "B", "1");
        let ctx = Ctx {
            reference: &f.reference,
            base_currency: "EUR",
        };
        let p = perms("sales");
        let roles = vec!["sales".to_string()];
        let on: BTreeSet<String> = [SALES_OWN_CUSTOMERS.to_string()].into();
        let off = BTreeSet::new();
        let spec = ListSpec {
            limit: 10,
            ..Default::default()
        };
        let count = |settings: &BTreeSet<String>, user: &str, roles: &[String], p: &Permissions| {
            let c = list(&CUSTOMERS, &viewer(p, user, roles, settings), &spec, &ctx).unwrap();
            fetch_page(&f.conn, &c, 10, &ctx).unwrap().0.len()
        };
        assert_eq!(count(&off, "alice", &roles, &p), 2);
        assert_eq!(count(&on, "alice", &roles, &p), 1);
        let c = list(&CUSTOMERS, &viewer(&p, "alice", &roles, &on), &spec, &ctx).unwrap();
        assert!(c.sql.contains("\"owner_id\" = ?"));
        let acc = perms("accountant");
        assert_eq!(count(&on, "alice", &["accountant".to_string()], &acc), 2);
    }

    #[test]
    fn writes_check_fields_and_values() {
        let f = fixture();
        let ctx = Ctx {
            reference: &f.reference,
            base_currency: "EUR",
        };
        let (p, roles, settings) = (perms("sales"), vec!["sales".to_string()], BTreeSet::new());
        let v = viewer(&p, "u", &roles, &settings);
        let body = |j: serde_json::Value| j.as_object().unwrap().clone();
        let e = write::values(
            &CUSTOMERS,
            &v,
            &body(json!({"name": "A", "credit_limit": "5"})),
            Mode::Create,
            None,
            &ctx,
        );
        assert!(matches!(e, Err(Error::Forbidden(m)) if m.contains("customers.credit_limit")));
        let e = write::values(
            &CUSTOMERS,
            &v,
            &body(json!({"name": "", "bogus": 1, "currency": "XXX"})),
            Mode::Create,
            None,
            &ctx,
        );
        match e {
            Err(Error::Invalid(errs)) => assert_eq!(errs.len(), 3, "{errs:?}"),
            other => panic!("{other:?}"),
        }
        let (p, roles) = (perms("accountant"), vec!["accountant".to_string()]);
        let v = viewer(&p, "u", &roles, &settings);
        let e = write::values(
            &CUSTOMERS,
            &v,
            &body(json!({"name": "A", "credit_limit": 12.5})),
            Mode::Create,
            None,
            &ctx,
        );
        assert!(matches!(e, Err(Error::Invalid(errs)) if errs[0].field == "credit_limit"));
    }
}
