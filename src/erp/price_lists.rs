//! Price lists: a header described for the access layer (name, currency) plus items
//! `[{product_id, min_quantity, unit_price}]` (quantity breaks). Items are replaced as a
//! whole when given, in the same transaction and audit entry as the header.

use axum::Router;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rusqlite::{Connection, named_params};
use rust_decimal::Decimal;
use serde_json::{Map, Value as Json, json};

use super::catalog::{PRICE_LISTS, QTY_SCALE, qty_str};
use crate::access::query;
use crate::access::store;
use crate::access::values::{from_scaled, to_scaled};
use crate::access::write::{self, Mode};
use crate::app::AppState;
use crate::audit::{self, AuditEvent};
use crate::auth::extract::TenantCaller;
use crate::erp::settings;
use crate::error::{Error, FieldError, Result};
use crate::http::created::create_once;
use crate::http::json::{Json as JsonBody, Query, id_and_currency, if_match, with_etag};
use crate::http::scope::Scope;
use crate::reference::Reference;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/t/{tenant}/price-lists", get(list).post(create))
        .route(
            "/v1/t/{tenant}/price-lists/{id}",
            // A price list's delete is the generic soft delete; its items stay with it.
            get(read)
                .patch(update)
                .delete(|s, c, p, h| crate::http::entities::delete(&PRICE_LISTS, s, c, p, h)),
        )
        .route("/v1/t/{tenant}/price-lists/{id}/restore", post(restore))
}

/// One validated item: (product id, min quantity ×10^6, unit price in minor units).
type Item = (String, i64, i64);

fn parse_items(raw: &Json, currency: &str, reference: &Reference) -> Result<Vec<Item>> {
    let arr = raw
        .as_array()
        .ok_or_else(|| Error::invalid("items", "must be an array"))?;
    let minor = reference.minor_units(currency).unwrap_or(2);
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for (i, it) in arr.iter().enumerate() {
        let field = |k: &str| format!("items[{i}].{k}");
        let Some(obj) = it.as_object() else {
            errors.push(FieldError::new(format!("items[{i}]"), "must be an object"));
            continue;
        };
        if let Some(k) = obj
            .keys()
            .find(|k| !["product_id", "min_quantity", "unit_price"].contains(&k.as_str()))
        {
            errors.push(FieldError::new(field(k), "unknown field"));
        }
        let product = obj.get("product_id").and_then(Json::as_str);
        let qty = decimal(obj.get("min_quantity").unwrap_or(&json!("0")), QTY_SCALE);
        let price = decimal(obj.get("unit_price").unwrap_or(&Json::Null), minor);
        match (product, qty, price) {
            (Some(p), Ok(q), Ok(u)) => out.push((p.to_owned(), q, u)),
            (p, q, u) => {
                if p.is_none() {
                    errors.push(FieldError::new(field("product_id"), "is required"));
                }
                if let Err(m) = q {
                    errors.push(FieldError::new(field("min_quantity"), m));
                }
                if let Err(m) = u {
                    errors.push(FieldError::new(field("unit_price"), m));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Error::Invalid(errors))
    }
}

/// A non-negative decimal string at `scale` (shared by the document line parsers).
pub fn decimal(v: &Json, scale: u32) -> std::result::Result<i64, String> {
    let s = match v {
        Json::String(s) => s,
        Json::Number(_) => return Err("must be a decimal string, not a JSON number".into()),
        _ => return Err("must be a decimal string".into()),
    };
    let d: Decimal = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a decimal number"))?;
    if d.is_sign_negative() && !d.is_zero() {
        return Err("must not be negative".into());
    }
    to_scaled(d, scale).ok_or_else(|| format!("has more than {scale} decimal places"))
}

fn save_items(tx: &Connection, list_id: &str, items: &[Item]) -> Result<()> {
    tx.prepare_cached("DELETE FROM price_list_items WHERE price_list_id = :id")?
        .execute(named_params! { ":id": list_id })?;
    let mut exists =
        tx.prepare_cached("SELECT 1 FROM products WHERE id = :id AND deleted_at IS NULL")?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO price_list_items (price_list_id, product_id, min_quantity, unit_price) VALUES (:l, :p, :q, :u)",
    )?;
    for (i, (p, q, u)) in items.iter().enumerate() {
        if !exists.exists(named_params! { ":id": p })? {
            return Err(Error::invalid(
                &format!("items[{i}].product_id"),
                format!("no product with id {p:?}"),
            ));
        }
        insert
            .execute(named_params! { ":l": list_id, ":p": p, ":q": q, ":u": u })
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    Error::invalid(
                        "items",
                        "a product appears twice with the same min_quantity",
                    )
                }
                e => e.into(),
            })?;
    }
    Ok(())
}

fn load_items(
    c: &Connection,
    list_id: &str,
    currency: &str,
    reference: &Reference,
) -> Result<Json> {
    let minor = reference.minor_units(currency).unwrap_or(2);
    let mut stmt = c.prepare_cached(
        "SELECT product_id, min_quantity, unit_price FROM price_list_items WHERE price_list_id = :id \
         ORDER BY product_id, min_quantity",
    )?;
    let rows = stmt.query_map(named_params! { ":id": list_id }, |r| {
        Ok(json!({
            "product_id": r.get::<_, String>(0)?,
            "min_quantity": qty_str(r.get(1)?),
            "unit_price": from_scaled(r.get(2)?, minor).to_string(),
        }))
    })?;
    Ok(Json::Array(rows.collect::<rusqlite::Result<_>>()?))
}

fn with_items(
    c: &Connection,
    mut header: Map<String, Json>,
    reference: &Reference,
) -> Result<Map<String, Json>> {
    let (id, currency) = id_and_currency(&header, "EUR");
    header.insert("items".into(), load_items(c, &id, &currency, reference)?);
    Ok(header)
}

fn audit_items(tx: &Connection, scope: &Scope, id: &str, items: &[Item]) -> Result<()> {
    audit::record(
        tx,
        &AuditEvent {
            actor: &scope.actor,
            action: "update",
            entity: "price-list-items",
            entity_id: Some(id),
            changes: json!({ "items": [null, items.len()] }),
            request_id: scope.request_id.as_deref(),
        },
    )
}

async fn list(
    State(state): State<AppState>,
    caller: TenantCaller,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response> {
    // The same query grammar as every collection (limit, cursor, sort, include_deleted, filters).
    let spec = crate::http::entities::list_spec(q)?;
    let scope = Scope::new(&state, &caller);
    let body = caller
        .tenant
        .db
        .read(move |c| {
            let s = settings::enabled(c)?;
            let (viewer, ctx) = (scope.viewer(&s), scope.ctx());
            let compiled = query::list(&PRICE_LISTS, &viewer, &spec, &ctx)?;
            let (items, next) = query::fetch_page(c, &compiled, spec.limit, &ctx)?;
            let items = items
                .into_iter()
                .map(|h| with_items(c, h, ctx.reference))
                .collect::<Result<Vec<_>>>()?;
            Ok(json!({ "items": items, "next_cursor": next }))
        })
        .await?;
    Ok(axum::Json(body).into_response())
}

async fn read(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path(path): Path<(String, String)>,
) -> Result<Response> {
    let (_, id) = path;
    let scope = Scope::new(&state, &caller);
    let item = caller
        .tenant
        .db
        .read(move |c| {
            let s = settings::enabled(c)?;
            let (viewer, ctx) = (scope.viewer(&s), scope.ctx());
            let header =
                query::fetch_one(c, &query::by_id(&PRICE_LISTS, &viewer, &id, false)?, &ctx)?
                    .ok_or(Error::NotFound)?;
            with_items(c, header, ctx.reference)
        })
        .await?;
    Ok(with_etag(StatusCode::OK, item))
}

async fn create(
    State(state): State<AppState>,
    caller: TenantCaller,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    JsonBody(mut body): JsonBody<Map<String, Json>>,
) -> Result<Response> {
    let path = uri.path().to_owned();
    let request = Json::Object(body.clone());
    let items = body.remove("items");
    let scope = Scope::new(&state, &caller);
    create_once(
        &caller,
        scope,
        &headers,
        &path.clone(),
        &request,
        move |tx, scope, settings| {
            let (viewer, ctx) = (scope.viewer(settings), scope.ctx());
            let values = write::values(&PRICE_LISTS, &viewer, &body, Mode::Create, None, &ctx)?;
            let (_, currency) = id_and_currency(&body, ctx.base_currency);
            let parsed = items
                .map(|i| parse_items(&i, &currency, ctx.reference))
                .transpose()?
                .unwrap_or_default();
            let user = &scope.principal.user_id;
            let id = store::insert(tx, &PRICE_LISTS, &values, user, &scope.act(), &ctx)?;
            save_items(tx, &id, &parsed)?;
            audit_items(tx, scope, &id, &parsed)?;
            let header = store::read_back(tx, &PRICE_LISTS, &viewer, &id, &ctx)?;
            let body = Json::Object(with_items(tx, header, ctx.reference)?);
            Ok((body, format!("{path}/{id}")))
        },
    )
    .await
}

async fn update(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(mut body): JsonBody<Map<String, Json>>,
) -> Result<Response> {
    let (_, id) = path;
    let expected = if_match(&headers)?;
    let items = body.remove("items");
    let scope = Scope::new(&state, &caller);
    let item = caller
        .tenant
        .db
        .write(move |tx| {
            let s = settings::enabled(tx)?;
            let (viewer, ctx) = (scope.viewer(&s), scope.ctx());
            let (version, before) = store::current(tx, &PRICE_LISTS, &viewer, &id, false)?;
            crate::error::ensure_version(expected, version)?;
            let currency = store::raw_text(&before, "currency")
                .unwrap_or_else(|| ctx.base_currency.to_owned());
            let values = write::values(
                &PRICE_LISTS,
                &viewer,
                &body,
                Mode::Update,
                Some(&currency),
                &ctx,
            )?;
            store::update(tx, &PRICE_LISTS, &id, before, &values, &scope.act(), &ctx)?;
            if let Some(raw) = items {
                let parsed = parse_items(&raw, &currency, ctx.reference)?;
                save_items(tx, &id, &parsed)?;
                tx.prepare_cached("UPDATE price_lists SET version = version + 1 WHERE id = :id")?
                    .execute(named_params! { ":id": id })?;
                audit_items(tx, &scope, &id, &parsed)?;
            }
            let header = store::read_back(tx, &PRICE_LISTS, &viewer, &id, &ctx)?;
            with_items(tx, header, ctx.reference)
        })
        .await?;
    Ok(with_etag(StatusCode::OK, item))
}

async fn restore(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path(path): Path<(String, String)>,
) -> Result<Response> {
    let (_, id) = path;
    let scope = Scope::new(&state, &caller);
    let item = caller
        .tenant
        .db
        .write(move |tx| {
            let s = settings::enabled(tx)?;
            let (viewer, ctx) = (scope.viewer(&s), scope.ctx());
            store::set_deleted(tx, &PRICE_LISTS, &viewer, &id, None, false, &scope.act())?;
            let header = store::read_back(tx, &PRICE_LISTS, &viewer, &id, &ctx)?;
            with_items(tx, header, ctx.reference)
        })
        .await?;
    Ok(with_etag(StatusCode::OK, item))
}
