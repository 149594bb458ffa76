//! HTTP for sales and purchase orders: the same handlers for both, parameterised by the
//! [`Side`]. Handlers parse, check the permission and shape the response; the work is
//! in [`super::flow`].

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rusqlite::Connection;
use serde_json::{Map, Value as Json};

use super::flow::{self, Cx};
use super::{PURCHASES, SALES, Side, load_lines, render_lines};
use crate::access::query;
use crate::app::AppState;
use crate::auth::extract::TenantCaller;
use crate::erp::settings;
use crate::error::{Error, Result};
use crate::http::json::{Json as JsonBody, etag, if_match, optional_body};
use crate::http::scope::Scope;
use crate::idempotency::{self, Stored};
use crate::identity::require;

pub fn router() -> Router<AppState> {
    let mut r = Router::new();
    for side in [&SALES, &PURCHASES] {
        let base = format!("/v1/t/{{tenant}}/{}", side.entity.name);
        r = r
            .route(
                &base,
                get(move |s, c, q| {
                    crate::http::entities::list_with(side.entity, s, c, q, move |c, item, scope| {
                        with_lines(c, side, item, scope)
                    })
                })
                .post(move |s, c, u, h, b| create(side, s, c, u, h, b)),
            )
            .route(
                &format!("{base}/{{id}}"),
                get(move |s, c, p| read(side, s, c, p))
                    .patch(move |s, c, p, h, b| update(side, s, c, p, h, b))
                    .delete(move |s, c, p, h| {
                        crate::http::entities::delete(side.entity, s, c, p, h)
                    }),
            )
            .route(
                &format!("{base}/{{id}}/confirm"),
                post(move |s, c, p, b| act(side, "confirm", s, c, p, b)),
            )
            .route(
                &format!("{base}/{{id}}/cancel"),
                post(move |s, c, p, b| act(side, "cancel", s, c, p, b)),
            )
            .route(
                &format!("{base}/{{id}}/{}", side.move_action),
                post(move |s, c, p, b| act(side, side.move_action, s, c, p, b)),
            )
            .route(
                &format!("{base}/{{id}}/{}", side.invoice_action),
                post(move |s, c, u, p, h, b| invoice(side, s, c, u, p, h, b)),
            );
    }
    r
}

/// Attach the lines to a header the access layer read.
fn with_lines(
    c: &Connection,
    side: &Side,
    mut header: Map<String, Json>,
    scope: &Scope,
) -> Result<Map<String, Json>> {
    let id = header
        .get("id")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_owned();
    let currency = header
        .get("currency")
        .and_then(Json::as_str)
        .unwrap_or(&scope.base_currency)
        .to_owned();
    let ls = load_lines(c, side, &id)?;
    header.insert(
        "lines".into(),
        render_lines(&ls, side, &currency, scope.reference()),
    );
    Ok(header)
}

/// The order as the caller may see it, with its lines.
pub fn load(c: &Connection, side: &Side, scope: &Scope, id: &str) -> Result<Json> {
    let settings = settings::enabled(c)?;
    let viewer = scope.viewer(&settings);
    let compiled = query::by_id(side.entity, &viewer, id, false)?;
    let header = query::fetch_one(c, &compiled, &scope.ctx())?.ok_or(Error::NotFound)?;
    Ok(Json::Object(with_lines(c, side, header, scope)?))
}

fn respond(status: StatusCode, v: Json) -> Response {
    let version = v.get("version").and_then(Json::as_i64).unwrap_or(0);
    (status, etag(version), axum::Json(v)).into_response()
}

async fn read(
    side: &'static Side,
    State(state): State<AppState>,
    caller: TenantCaller,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response> {
    let scope = Scope::new(&state, &caller);
    let v = caller
        .tenant
        .db
        .read(move |c| load(c, side, &scope, &id))
        .await?;
    Ok(respond(StatusCode::OK, v))
}

async fn create(
    side: &'static Side,
    State(state): State<AppState>,
    caller: TenantCaller,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Map<String, Json>>,
) -> Result<Response> {
    require(&caller.principal, side.entity.name, "write")?;
    let key = idempotency::key(&headers)?;
    let path = uri.path().to_owned();
    let fingerprint = idempotency::fingerprint("POST", &path, &Json::Object(body.clone()));
    let scope = Scope::new(&state, &caller);
    let stored = caller
        .tenant
        .db
        .write(move |tx| {
            let user = scope.principal.user_id.clone();
            idempotency::once(tx, &user, key.as_deref(), &fingerprint, || {
                let settings = settings::enabled(tx)?;
                let cx = Cx {
                    scope: &scope,
                    settings: &settings,
                };
                let id = flow::create(tx, side, &cx, &body)?;
                Ok(Stored {
                    status: 201,
                    body: load(tx, side, &scope, &id)?,
                    location: Some(format!("{path}/{id}")),
                })
            })
        })
        .await?;
    Ok(stored.into_response())
}

async fn update(
    side: &'static Side,
    State(state): State<AppState>,
    caller: TenantCaller,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Map<String, Json>>,
) -> Result<Response> {
    require(&caller.principal, side.entity.name, "write")?;
    let expected = if_match(&headers)?;
    let scope = Scope::new(&state, &caller);
    let v = caller
        .tenant
        .db
        .write(move |tx| {
            let settings = settings::enabled(tx)?;
            let cx = Cx {
                scope: &scope,
                settings: &settings,
            };
            flow::update(tx, side, &cx, &id, expected, &body)?;
            load(tx, side, &scope, &id)
        })
        .await?;
    Ok(respond(StatusCode::OK, v))
}

/// confirm, cancel, deliver/receive: 200 with the updated order.
async fn act(
    side: &'static Side,
    action: &'static str,
    State(state): State<AppState>,
    caller: TenantCaller,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response> {
    require(&caller.principal, side.entity.name, action)?;
    let body: Map<String, Json> = optional_body(&body)?;
    let scope = Scope::new(&state, &caller);
    let v = caller
        .tenant
        .db
        .write(move |tx| {
            let settings = settings::enabled(tx)?;
            let cx = Cx {
                scope: &scope,
                settings: &settings,
            };
            match action {
                "confirm" => {
                    if let Some(k) = body.keys().next() {
                        return Err(Error::invalid(k, "unknown field"));
                    }
                    flow::confirm(tx, side, &cx, &id)?
                }
                "cancel" => flow::cancel(tx, side, &cx, &id)?,
                _ => flow::move_stock(tx, side, &cx, &id, &body)?,
            }
            load(tx, side, &scope, &id)
        })
        .await?;
    Ok(respond(StatusCode::OK, v))
}

/// invoice/bill: 201 with the invoice it created.
async fn invoice(
    side: &'static Side,
    State(state): State<AppState>,
    caller: TenantCaller,
    OriginalUri(uri): OriginalUri,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    require(&caller.principal, side.entity.name, "read")?;
    require(&caller.principal, "invoices", "write")?;
    let body: Map<String, Json> = optional_body(&body)?;
    let key = idempotency::key(&headers)?;
    let fingerprint = idempotency::fingerprint("POST", uri.path(), &Json::Object(body.clone()));
    let scope = Scope::new(&state, &caller);
    let stored = caller
        .tenant
        .db
        .write(move |tx| {
            let user = scope.principal.user_id.clone();
            idempotency::once(tx, &user, key.as_deref(), &fingerprint, || {
                let settings = settings::enabled(tx)?;
                let cx = Cx {
                    scope: &scope,
                    settings: &settings,
                };
                let invoice_id = flow::invoice(tx, side, &cx, &id, &body)?;
                Ok(Stored {
                    status: 201,
                    body: crate::erp::invoices::routes::load(tx, &scope, &invoice_id)?,
                    location: Some(format!("/v1/t/{tenant}/invoices/{invoice_id}")),
                })
            })
        })
        .await?;
    Ok(stored.into_response())
}
