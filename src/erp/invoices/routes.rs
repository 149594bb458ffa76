//! HTTP for invoices (read, credit), payments and the aging reports.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rusqlite::Connection;
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::{INVOICES, PAYMENTS, aging};
use crate::access::query;
use crate::app::AppState;
use crate::auth::extract::TenantCaller;
use crate::erp::orders::flow::today;
use crate::erp::settings;
use crate::error::{Error, Result};
use crate::http::created::create_once;
use crate::http::json::{Json as JsonBody, Query, id_and_currency, optional_body, with_etag};
use crate::http::scope::Scope;
use crate::identity::require;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/t/{tenant}/invoices",
            get(|s, c, q| crate::http::entities::list_with(&INVOICES, s, c, q, with_lines)),
        )
        .route("/v1/t/{tenant}/invoices/{id}", get(read))
        .route(
            "/v1/t/{tenant}/invoices/{id}/pdf",
            get(super::pdf::read_pdf),
        )
        .route("/v1/t/{tenant}/invoices/{id}/credit", post(credit))
        .route(
            "/v1/t/{tenant}/payments",
            get(|s, c, q| crate::http::entities::list(&PAYMENTS, s, c, q)).post(pay),
        )
        .route(
            "/v1/t/{tenant}/payments/{id}",
            get(|s, c, p, q| crate::http::entities::read(&PAYMENTS, s, c, p, q)),
        )
        .route("/v1/t/{tenant}/reports/ar-aging", get(ar_aging))
        .route("/v1/t/{tenant}/reports/ap-aging", get(ap_aging))
}

fn with_lines(
    c: &Connection,
    mut header: Map<String, Json>,
    scope: &Scope,
) -> Result<Map<String, Json>> {
    let (id, currency) = id_and_currency(&header, &scope.base_currency);
    let ls = super::load_lines(c, &id)?;
    header.insert(
        "lines".into(),
        super::render_lines(&ls, &currency, scope.reference()),
    );
    Ok(header)
}

/// An invoice as the caller may see it, with its lines.
pub fn load(c: &Connection, scope: &Scope, id: &str) -> Result<Json> {
    let settings = settings::enabled(c)?;
    let viewer = scope.viewer(&settings);
    let compiled = query::by_id(&INVOICES, &viewer, id, false)?;
    let header = query::fetch_one(c, &compiled, &scope.ctx())?.ok_or(Error::NotFound)?;
    Ok(Json::Object(with_lines(c, header, scope)?))
}

fn load_payment(c: &Connection, scope: &Scope, id: &str) -> Result<Json> {
    let settings = settings::enabled(c)?;
    let viewer = scope.viewer(&settings);
    let compiled = query::by_id(&PAYMENTS, &viewer, id, false)?;
    Ok(Json::Object(
        query::fetch_one(c, &compiled, &scope.ctx())?.ok_or(Error::NotFound)?,
    ))
}

async fn read(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response> {
    let scope = Scope::new(&state, &caller);
    let v = caller.tenant.db.read(move |c| load(c, &scope, &id)).await?;
    Ok(with_etag(StatusCode::OK, v))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CreditBody {
    date: Option<String>,
}

/// `POST invoices/{id}/credit` → 201 with the credit note.
async fn credit(
    State(state): State<AppState>,
    caller: TenantCaller,
    OriginalUri(uri): OriginalUri,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    require(&caller.principal, "invoices", "write")?;
    let b: CreditBody = optional_body(&body)?;
    let request = serde_json::json!({ "date": b.date });
    let scope = Scope::new(&state, &caller);
    create_once(
        &caller,
        scope,
        &headers,
        uri.path(),
        &request,
        move |tx, scope, _| {
            // The caller must be able to see the invoice it credits.
            load(tx, scope, &id)?;
            let date = b.date.clone().unwrap_or_else(today);
            let note = super::credit(tx, scope, &id, &date)?;
            Ok((
                load(tx, scope, &note)?,
                format!("/v1/t/{tenant}/invoices/{note}"),
            ))
        },
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayBody {
    invoice_id: String,
    amount: String,
    date: Option<String>,
}

/// `POST payments {"invoice_id","amount","date"}` → 201 with the payment.
async fn pay(
    State(state): State<AppState>,
    caller: TenantCaller,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    JsonBody(raw): JsonBody<Json>,
) -> Result<Response> {
    require(&caller.principal, "payments", "write")?;
    let b: PayBody =
        serde_json::from_value(raw.clone()).map_err(|e| Error::invalid("body", e.to_string()))?;
    let path = uri.path().to_owned();
    let scope = Scope::new(&state, &caller);
    create_once(
        &caller,
        scope,
        &headers,
        &path.clone(),
        &raw,
        move |tx, scope, _| {
            let inv = super::find(tx, &b.invoice_id)?.ok_or_else(|| {
                Error::invalid("invoice_id", format!("no invoice {:?}", b.invoice_id))
            })?;
            let minor = scope.reference().minor_units(&inv.currency).unwrap_or(2);
            let amount =
                crate::erp::orders::lines::positive(&Json::String(b.amount.clone()), minor)
                    .map_err(|m| Error::invalid("amount", m))?;
            let date = b.date.clone().unwrap_or_else(today);
            let id = super::pay(tx, scope, &inv.id, amount, &date)?;
            Ok((load_payment(tx, scope, &id)?, format!("{path}/{id}")))
        },
    )
    .await
}

#[derive(Deserialize)]
struct AsOf {
    as_of: Option<String>,
}

async fn ar_aging(
    State(state): State<AppState>,
    caller: TenantCaller,
    Query(q): Query<AsOf>,
) -> Result<Response> {
    report(state, caller, q, "customer").await
}

async fn ap_aging(
    State(state): State<AppState>,
    caller: TenantCaller,
    Query(q): Query<AsOf>,
) -> Result<Response> {
    report(state, caller, q, "supplier").await
}

async fn report(
    state: AppState,
    caller: TenantCaller,
    q: AsOf,
    kind: &'static str,
) -> Result<Response> {
    require(&caller.principal, "reports", "read")?;
    let as_of = q.as_of.unwrap_or_else(today);
    crate::erp::accounting::posting::check_date(&as_of)
        .map_err(|_| Error::bad_field("as_of", "must be a date such as 2026-11-27"))?;
    let scope = Scope::new(&state, &caller);
    let v = caller
        .tenant
        .db
        .read(move |c| aging::report(c, &scope, kind, &as_of))
        .await?;
    Ok(axum::Json(v).into_response())
}
