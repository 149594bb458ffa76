//! The HTTP surface: every route, the middleware stack, and the OpenAPI document that is
//! generated from the same route list (so no endpoint can be served undocumented).

pub mod backup;
pub mod created;
pub mod entities;
pub mod entity_docs;
pub mod health;
pub mod json;
pub mod me;
pub mod scope;
pub mod tenants;

use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnRequest, TraceLayer};
use tracing::{Level, field::Empty};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::AppState;
use crate::error::{Error, Problem, problem_response};

#[derive(OpenApi)]
#[openapi(
    info(title = "erpd", description = "Multi-tenant ERP server: one SQLite file per tenant."),
    modifiers(&BearerAuth),
    tags(
        (name = "operations", description = "process health, metrics, this document"),
        (name = "tenants", description = "platform endpoints (platform token)"),
        (name = "identity", description = "tenant users and tokens (tenant token)"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Every route with its documentation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(health::openapi))
        .routes(routes!(tenants::create_tenant, tenants::list_tenants))
        .routes(routes!(
            tenants::get_tenant,
            tenants::update_tenant,
            tenants::delete_tenant
        ))
        .routes(routes!(tenants::restore_tenant))
        .routes(routes!(tenants::tenant_health))
        .routes(routes!(backup::download_backup, backup::restore_backup))
        .routes(routes!(tenants::create_access_grant))
        .routes(routes!(tenants::platform_audit_log))
        .routes(routes!(me::get_me))
        .merge(crate::identity::routes())
        .routes(routes!(crate::audit::routes::list_audit))
        .routes(routes!(crate::erp::reference::list_currencies))
        .routes(routes!(crate::erp::settings::routes::list_settings))
        .routes(routes!(crate::erp::settings::routes::set_setting))
        .routes(routes!(crate::erp::settings::routes::list_modules))
        .routes(routes!(crate::erp::settings::routes::list_features))
        .routes(routes!(crate::erp::reference::set_currency))
        .routes(routes!(crate::erp::reference::list_tax_rules))
        .routes(routes!(
            crate::erp::reference::get_tax_rule,
            crate::erp::reference::set_tax_rule,
            crate::erp::reference::delete_tax_rule
        ))
}

/// The OpenAPI document as served: the annotated routes plus the generic entity routes
/// generated from their descriptions.
pub fn openapi_json() -> String {
    let (_, api) = routes().split_for_parts();
    let mut doc = serde_json::to_value(&api).unwrap_or_default();
    for e in crate::erp::ENTITIES {
        entity_docs::add(&mut doc, e, &[]);
    }
    let items = serde_json::json!({ "type": "array", "items": { "type": "object", "properties": {
        "product_id": { "type": "string" }, "min_quantity": { "type": "string", "format": "decimal" },
        "unit_price": { "type": "string", "format": "decimal" } } } });
    entity_docs::add(
        &mut doc,
        &crate::erp::catalog::PRICE_LISTS,
        &[("items", items)],
    );
    domain_docs(&mut doc);
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into())
}

/// Sales, purchasing, inventory and invoicing: documents with lines, their actions, and
/// the reports, from the same entity descriptions that serve them.
fn domain_docs(doc: &mut serde_json::Value) {
    use crate::erp::{inventory, invoices, orders};
    use entity_docs::{READ_ONLY, Served, add_action, add_get, add_served};
    let lines = serde_json::json!({ "type": "array", "items": { "type": "object", "properties": {
        "product_id": { "type": "string" }, "quantity": { "type": "string", "format": "decimal" },
        "unit_price": { "type": "string", "format": "decimal" },
        "discount_percent": { "type": "string", "format": "decimal" } } } });
    let orders_served = Served {
        write: true,
        restore: false,
    };
    for side in [&orders::SALES, &orders::PURCHASES] {
        add_served(
            doc,
            side.entity,
            &[("lines", lines.clone())],
            &orders_served,
        );
        add_action(
            doc,
            side.entity,
            "confirm",
            "confirm a draft (sales: reserve stock, check the credit limit)",
            None,
        );
        add_action(
            doc,
            side.entity,
            "cancel",
            "cancel a draft or confirmed order; releases reservations",
            None,
        );
        add_action(
            doc,
            side.entity,
            side.move_action,
            "move goods (all open, or {\"lines\":[{\"line_no\",\"quantity\"}]})",
            None,
        );
        add_action(
            doc,
            side.entity,
            side.invoice_action,
            "create and post the invoice for what is open",
            Some("Invoices"),
        );
    }
    add_served(doc, &invoices::INVOICES, &[("lines", lines)], &READ_ONLY);
    add_action(
        doc,
        &invoices::INVOICES,
        "credit",
        "credit the invoice in full (a credit note)",
        Some("Invoices"),
    );
    invoices::pdf::add_docs(doc);
    add_served(doc, &invoices::PAYMENTS, &[], &READ_ONLY);
    if let Some(item) = doc["paths"]["/v1/t/{tenant}/payments"].as_object_mut() {
        item.insert("post".into(), serde_json::json!({ "tags": ["documents"], "summary": "pay an invoice: {\"invoice_id\",\"amount\",\"date\"}; more than amount_due → 422",
            "security": [{ "bearer": [] }], "responses": { "201": { "description": "the payment" } } }));
    }
    add_served(doc, &inventory::STOCK_MOVES, &[], &READ_ONLY);
    add_served(doc, &inventory::routes::STOCK_ADJUSTMENTS, &[], &READ_ONLY);
    if let Some(item) = doc["paths"]["/v1/t/{tenant}/stock-adjustments"].as_object_mut() {
        item.insert("post".into(), serde_json::json!({ "tags": ["documents"], "summary": "count stock in or out: {\"warehouse_id\",\"reason\",\"lines\":[{\"product_id\",\"quantity\",\"unit_cost\"}]}",
            "security": [{ "bearer": [] }], "responses": { "201": { "description": "the adjustment" } } }));
    }
    add_get(
        doc,
        "stock",
        "on hand, reserved and available per product and warehouse",
        &["product_id", "warehouse_id", "limit", "cursor"],
    );
    add_get(
        doc,
        "reports/ar-aging",
        "receivables by days past due (base currency)",
        &["as_of"],
    );
    add_get(
        doc,
        "reports/ap-aging",
        "payables by days past due (base currency)",
        &["as_of"],
    );
    add_get(
        doc,
        "reports/stock-valuation",
        "quantity and value per product and warehouse",
        &["as_of"],
    );
}

/// The full router with its middleware stack.
pub fn router(state: AppState) -> axum::Router {
    let (router, _) = routes().split_for_parts();
    let router = router
        .merge(entities::router())
        .merge(crate::erp::price_lists::router())
        .merge(crate::erp::accounting::routes::router())
        .merge(crate::erp::inventory::routes::router())
        .merge(crate::erp::orders::routes::router())
        .merge(crate::erp::invoices::routes::router());
    let x_request_id = HeaderName::from_static("x-request-id");
    let timeout = state.config.request_timeout;
    let body_limit = state.config.body_limit;
    router
        .fallback(not_found)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(
                    x_request_id.clone(),
                    MakeRequestUuid,
                ))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(make_span)
                        .on_request(DefaultOnRequest::new().level(Level::DEBUG))
                        .on_response(on_response)
                        .on_failure(()),
                )
                .layer(PropagateRequestIdLayer::new(x_request_id))
                .layer(middleware::from_fn(record_metrics))
                .layer(middleware::from_fn(problem_for_bare_errors))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    timeout,
                ))
                .layer(DefaultBodyLimit::max(body_limit)),
        )
        .with_state(state)
}

fn make_span(req: &Request) -> tracing::Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str());
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "http",
        request_id,
        method = %req.method(),
        route,
        tenant = Empty,
        user = Empty,
    )
}

fn on_response(resp: &Response, latency: Duration, _span: &tracing::Span) {
    let status = resp.status().as_u16();
    let latency_ms = latency.as_secs_f64() * 1000.0;
    tracing::info!(status, latency_ms, "request completed");
}

async fn record_metrics(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("erpd_http_requests_total", &labels).increment(1);
    metrics::histogram!("erpd_http_request_duration_seconds", &labels[..2])
        .record(started.elapsed().as_secs_f64());
    resp
}

/// Errors produced outside our handlers (405, timeouts, ...) arrive without a body: give
/// them the same problem+json envelope as every other error.
async fn problem_for_bare_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error())
        || resp.headers().contains_key(header::CONTENT_TYPE)
    {
        return resp;
    }
    let detail = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this path".to_owned(),
        StatusCode::SERVICE_UNAVAILABLE => "the request took too long and was stopped".to_owned(),
        s => s.canonical_reason().unwrap_or("error").to_owned(),
    };
    let kind = status
        .canonical_reason()
        .unwrap_or("error")
        .to_lowercase()
        .replace(' ', "-");
    let problem = Problem {
        kind: format!("https://erpd.dev/problems/{kind}"),
        title: status.canonical_reason().unwrap_or("error").into(),
        status: status.as_u16(),
        detail,
        errors: Vec::new(),
    };
    let mut out = problem_response(status, &problem, None);
    for (k, v) in resp.headers() {
        out.headers_mut()
            .entry(k.clone())
            .or_insert_with(|| v.clone());
    }
    out
}

async fn not_found() -> Response {
    Error::NotFound.into_response()
}
