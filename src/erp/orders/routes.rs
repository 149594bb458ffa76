//! HTTP for sales and purchase orders: the same handlers for both, parameterised by the
//! [`Side`]. Handlers parse, check the permission and shape the response; the work is
//! in [`super::flow`].

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
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
use crate::http::created::create_once;
use crate::http::json::{Json as JsonBody, id_and_currency, if_match, optional_body, with_etag};
use crate::http::scope::Scope;
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
    let (id, currency) = id_and_currency(&header, &scope.base_currency);
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
    Ok(with_etag(StatusCode::OK, v))
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
            let id = flow::create(tx, side, &Cx { scope, settings }, &body)?;
            Ok((load(tx, side, scope, &id)?, format!("{path}/{id}")))
        },
    )
    .await
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
    Ok(with_etag(StatusCode::OK, v))
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
    Ok(with_etag(StatusCode::OK, v))
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
    let request = Json::Object(body.clone());
    let scope = Scope::new(&state, &caller);
    create_once(
        &caller,
        scope,
        &headers,
        uri.path(),
        &request,
        move |tx, scope, settings| {
            let invoice_id = flow::invoice(tx, side, &Cx { scope, settings }, &id, &body)?;
            Ok((
                crate::erp::invoices::routes::load(tx, scope, &invoice_id)?,
                format!("/v1/t/{tenant}/invoices/{invoice_id}"),
            ))
        },
    )
    .await
}
