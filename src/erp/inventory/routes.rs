//! HTTP for inventory: `stock`, `stock-moves` (the ledger, read-only), `stock-adjustments`
//! and `reports/stock-valuation`.

use axum::Router;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rusqlite::{Connection, named_params};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use super::{ALLOW_NEGATIVE_STOCK, Move, STOCK_MOVES};
use crate::access::entity::{Entity, Field, Kind};
use crate::access::values::{from_scaled, to_scaled};
use crate::app::AppState;
use crate::auth::extract::TenantCaller;
use crate::erp::accounting::posting::{self, Posting};
use crate::erp::catalog::{QTY_SCALE, WAREHOUSES, qty_str};
use crate::erp::orders::flow::{Cx, today};
use crate::erp::settings;
use crate::error::{Error, FieldError, Result};
use crate::http::created::create_once;
use crate::http::json::{Json as JsonBody, Query, check_keys, page_limit, with_etag};
use crate::http::scope::Scope;
use crate::identity::require;

pub static STOCK_ADJUSTMENTS: Entity = Entity {
    name: "stock-adjustments",
    table: "stock_adjustments",
    fields: &[
        Field::new("warehouse_id", Kind::Ref(&WAREHOUSES)).query(),
        Field::new("date", Kind::Date).query(),
        Field::new("reason", Kind::Text { max: 500 }),
        Field::new("journal_entry_id", Kind::Text { max: 64 }),
    ],
    own_rows: None,
    guard_delete: None,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/t/{tenant}/stock", get(stock))
        .route(
            "/v1/t/{tenant}/stock-moves",
            get(|s, c, q| crate::http::entities::list(&STOCK_MOVES, s, c, q)),
        )
        .route(
            "/v1/t/{tenant}/stock-moves/{id}",
            get(|s, c, p, q| crate::http::entities::read(&STOCK_MOVES, s, c, p, q)),
        )
        .route(
            "/v1/t/{tenant}/stock-adjustments",
            get(|s, c, q| crate::http::entities::list(&STOCK_ADJUSTMENTS, s, c, q))
                .post(create_adjustment),
        )
        .route(
            "/v1/t/{tenant}/stock-adjustments/{id}",
            get(read_adjustment),
        )
        .route(
            "/v1/t/{tenant}/reports/stock-valuation",
            get(stock_valuation),
        )
}

#[derive(Deserialize)]
struct StockParams {
    product_id: Option<String>,
    warehouse_id: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// On hand, reserved and available per product and warehouse.
async fn stock(caller: TenantCaller, Query(q): Query<StockParams>) -> Result<Response> {
    require(&caller.principal, "stock", "read")?;
    let limit = page_limit(q.limit)?;
    let body = caller
        .tenant
        .db
        .read(move |c| {
            let (cp, cw) = match q.cursor.as_deref().and_then(|k| k.split_once('/')) {
                Some((p, w)) => (p.to_owned(), w.to_owned()),
                None => (String::new(), String::new()),
            };
            let mut stmt = c.prepare_cached(
                "SELECT product_id, warehouse_id, on_hand, reserved FROM stock_levels \
                 WHERE (:p IS NULL OR product_id = :p) AND (:w IS NULL OR warehouse_id = :w) \
                 AND (product_id, warehouse_id) > (:cp, :cw) \
                 ORDER BY product_id, warehouse_id LIMIT :n",
            )?;
            let rows = stmt.query_map(
                named_params! { ":p": q.product_id, ":w": q.warehouse_id, ":cp": cp, ":cw": cw, ":n": limit + 1 },
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                },
            )?;
            let mut rows = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            let next = (rows.len() as i64 > limit).then(|| {
                rows.truncate(limit as usize);
                rows.last().map(|(p, w, _, _)| format!("{p}/{w}"))
            });
            let items: Vec<Json> = rows
                .iter()
                .map(|(p, w, on_hand, reserved)| {
                    json!({ "product_id": p, "warehouse_id": w, "on_hand": qty_str(*on_hand),
                            "reserved": qty_str(*reserved), "available": qty_str(on_hand - reserved) })
                })
                .collect();
            Ok(json!({ "items": items, "next_cursor": next.flatten() }))
        })
        .await?;
    Ok(axum::Json(body).into_response())
}

/// A signed, non-zero decimal string at `scale`.
fn signed(v: &Json, scale: u32) -> std::result::Result<i64, String> {
    let Json::String(s) = v else {
        return Err("must be a decimal string such as \"-2.5\"".into());
    };
    let d: Decimal = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a decimal number"))?;
    if d.is_zero() {
        return Err("must not be zero".into());
    }
    to_scaled(d, scale).ok_or_else(|| format!("has more than {scale} decimal places"))
}

struct AdjLine {
    product_id: String,
    quantity: i64,
    unit_cost: Option<i64>,
}

fn parse_adjustment(body: &Map<String, Json>, base_minor: u32) -> Result<Vec<AdjLine>> {
    let arr = body
        .get("lines")
        .and_then(Json::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Error::invalid("lines", "must be a non-empty array"))?;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, v) in arr.iter().enumerate() {
        let f = |k: &str| format!("lines[{i}].{k}");
        let product = v.get("product_id").and_then(Json::as_str);
        let q = v
            .get("quantity")
            .map_or(Err("is required".to_string()), |q| signed(q, QTY_SCALE));
        let cost = match v.get("unit_cost") {
            None | Some(Json::Null) => Ok(None),
            Some(c) => crate::erp::price_lists::decimal(c, base_minor).map(Some),
        };
        match (product, q, cost) {
            (Some(p), Ok(q), Ok(c)) => out.push(AdjLine {
                product_id: p.to_owned(),
                quantity: q,
                unit_cost: c,
            }),
            (p, q, c) => {
                if p.is_none() {
                    errors.push(FieldError::new(f("product_id"), "is required"));
                }
                if let Err(m) = q {
                    errors.push(FieldError::new(f("quantity"), m));
                }
                if let Err(m) = c {
                    errors.push(FieldError::new(f("unit_cost"), m));
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

/// Count stock in or out with a reason; the value difference posts to the inventory
/// adjustment account.
pub fn adjust(tx: &Connection, cx: &Cx<'_>, body: &Map<String, Json>) -> Result<String> {
    check_keys(body, &["warehouse_id", "reason", "date", "lines"])?;
    let reference = cx.scope.reference();
    let base_minor = reference.minor_units(&cx.scope.base_currency).unwrap_or(2);
    let wh = body
        .get("warehouse_id")
        .and_then(Json::as_str)
        .ok_or_else(|| Error::invalid("warehouse_id", "is required"))?;
    if !super::warehouse_exists(tx, wh)? {
        return Err(Error::invalid(
            "warehouse_id",
            format!("no warehouse with id {wh:?}"),
        ));
    }
    let reason = body
        .get("reason")
        .and_then(Json::as_str)
        .unwrap_or("stock count");
    let date = match body.get("date").and_then(Json::as_str) {
        Some(d) => d.to_owned(),
        None => today(),
    };
    posting::check_date(&date)?;
    let lines = parse_adjustment(body, base_minor)?;
    let id = uuid::Uuid::now_v7().to_string();
    let user = cx.scope.principal.user_id.as_str();
    let mut net = 0i64;
    let mut moves = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        match super::product_kind(tx, &l.product_id)?.as_deref() {
            Some("goods") => {}
            Some(_) => {
                return Err(Error::invalid(
                    &format!("lines[{i}].product_id"),
                    "services have no stock",
                ));
            }
            None => {
                return Err(Error::invalid(
                    &format!("lines[{i}].product_id"),
                    format!("no product with id {:?}", l.product_id),
                ));
            }
        }
        let m = Move {
            date: &date,
            product_id: &l.product_id,
            warehouse_id: wh,
            quantity: l.quantity.abs(),
            kind: "adjustment",
            source: "stock-adjustments",
            source_id: &id,
            owner: user,
        };
        if l.quantity > 0 {
            let cost = match l.unit_cost {
                Some(c) => c,
                None => tx
                    .prepare_cached("SELECT cost FROM products WHERE id = :p")?
                    .query_row(named_params! { ":p": l.product_id }, |r| r.get(0))?,
            };
            let value = crate::erp::orders::lines::amounts(l.quantity, cost, 0, 0)?.0;
            moves.push(super::receive(tx, &m, value)?);
            net += value;
        } else {
            let (taken, move_id) =
                super::issue(tx, &m, cx.settings.contains(ALLOW_NEGATIVE_STOCK))?;
            moves.push(move_id);
            net -= taken;
        }
    }
    let mut entry = None;
    if net != 0 {
        let v = Decimal::new(net.abs(), base_minor);
        let (dr, cr) = if net > 0 {
            ("inventory", "inventory_adjustment")
        } else {
            ("inventory_adjustment", "inventory")
        };
        let e = posting::post_document(
            tx,
            &cx.scope.posting(),
            &date,
            &format!("Stock adjustment: {reason}"),
            "stock-adjustments",
            &id,
            &[Posting::debit(dr, v), Posting::credit(cr, v)],
        )?;
        super::link_entry(tx, &moves, &e)?;
        entry = Some(e);
    }
    let now = crate::clock::now_rfc3339();
    tx.prepare_cached(
        "INSERT INTO stock_adjustments (id, created_at, updated_at, owner_id, warehouse_id, date, reason, journal_entry_id) \
         VALUES (:id, :now, :now, :o, :w, :d, :r, :e)",
    )?
    .execute(named_params! { ":id": id, ":now": now, ":o": user, ":w": wh, ":d": date, ":r": reason, ":e": entry })?;
    cx.scope.audit(
        tx,
        "stock-adjustments",
        "create",
        &id,
        json!({ "warehouse_id": [null, wh], "reason": [null, reason], "lines": [null, lines.len()] }),
    )?;
    Ok(id)
}

fn load_adjustment(c: &Connection, scope: &Scope, id: &str) -> Result<Json> {
    let settings = settings::enabled(c)?;
    let viewer = scope.viewer(&settings);
    let ctx = scope.ctx();
    let compiled = crate::access::query::by_id(&STOCK_ADJUSTMENTS, &viewer, id, false)?;
    let mut header = crate::access::query::fetch_one(c, &compiled, &ctx)?.ok_or(Error::NotFound)?;
    let base_minor = ctx.reference.minor_units(ctx.base_currency).unwrap_or(2);
    let mut stmt = c.prepare_cached(
        "SELECT product_id, quantity, value FROM stock_moves WHERE source_id = :id ORDER BY id",
    )?;
    let lines = stmt
        .query_map(named_params! { ":id": id }, |r| {
            Ok(
                json!({ "product_id": r.get::<_, String>(0)?, "quantity": qty_str(r.get(1)?),
                       "value": from_scaled(r.get(2)?, base_minor).to_string() }),
            )
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    header.insert("lines".into(), Json::Array(lines));
    Ok(Json::Object(header))
}

async fn create_adjustment(
    State(state): State<AppState>,
    caller: TenantCaller,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Map<String, Json>>,
) -> Result<Response> {
    require(&caller.principal, "stock-adjustments", "write")?;
    let path = uri.path().to_owned();
    let request = Json::Object(body.clone());
    let scope = Scope::new(&state, &caller);
    create_once(
        &caller,
        scope,
        &headers,
        &path.clone(),
        &request,
        move |tx, scope, settings| {
            let id = adjust(tx, &Cx { scope, settings }, &body)?;
            Ok((load_adjustment(tx, scope, &id)?, format!("{path}/{id}")))
        },
    )
    .await
}

async fn read_adjustment(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response> {
    let scope = Scope::new(&state, &caller);
    let v = caller
        .tenant
        .db
        .read(move |c| load_adjustment(c, &scope, &id))
        .await?;
    Ok(with_etag(StatusCode::OK, v))
}

#[derive(Deserialize)]
struct AsOf {
    as_of: Option<String>,
}

/// Quantity and value per product and warehouse on a date, from the ledger; the total
/// equals the inventory account's balance on that date.
async fn stock_valuation(
    State(state): State<AppState>,
    caller: TenantCaller,
    Query(q): Query<AsOf>,
) -> Result<Response> {
    require(&caller.principal, "reports", "read")?;
    // The report shows moving-average values: the cost field's permission guards it.
    if !caller
        .principal
        .perms
        .allows_field("products", "cost", true, "read")
    {
        return Err(Error::Forbidden(
            "the stock valuation shows products.cost; no permission products.cost:read".into(),
        ));
    }
    let as_of = q.as_of.unwrap_or_else(today);
    posting::check_date(&as_of).map_err(|_| Error::bad_field("as_of", "must be a date"))?;
    let scope = Scope::new(&state, &caller);
    let body = caller
        .tenant
        .db
        .read(move |c| {
            let base_minor = scope
                .reference()
                .minor_units(&scope.base_currency)
                .unwrap_or(2);
            let money = |v: i64| from_scaled(v, base_minor).to_string();
            let mut stmt = c.prepare_cached(
                "SELECT m.product_id, p.sku, m.warehouse_id, SUM(m.quantity), SUM(m.value) \
                 FROM stock_moves m JOIN products p ON p.id = m.product_id WHERE m.date <= :d \
                 GROUP BY m.product_id, m.warehouse_id ORDER BY p.sku, m.warehouse_id",
            )?;
            let mut total = 0i64;
            let lines = stmt
                .query_map(named_params! { ":d": as_of }, |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .filter(|(_, _, _, q, v)| *q != 0 || *v != 0)
                .map(|(p, sku, w, q, v)| {
                    total += v;
                    json!({ "product_id": p, "sku": sku, "warehouse_id": w, "quantity": qty_str(q), "value": money(v) })
                })
                .collect::<Vec<_>>();
            Ok(json!({ "as_of": as_of, "currency": scope.base_currency, "lines": lines, "total": money(total) }))
        })
        .await?;
    Ok(axum::Json(body).into_response())
}
