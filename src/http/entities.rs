//! The generic collection endpoints of every described entity:
//! `GET|POST /v1/t/{tenant}/<name>`, `GET|PATCH|DELETE /v1/t/{tenant}/<name>/{id}`,
//! `POST /v1/t/{tenant}/<name>/{id}/restore`. Handlers only parse and shape; all access
//! decisions are the access layer's.

use axum::Router;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value as Json, json};

use super::created::create_once;
use super::json::{Json as JsonBody, Query, if_match, page_limit, with_etag};
use super::scope::Scope;
use crate::access::entity::Entity;
use crate::access::query::{self, Dir, ListSpec};
use crate::access::store;
use crate::access::write::{self, Mode};
use crate::app::AppState;
use crate::auth::extract::TenantCaller;
use crate::erp::{self, settings};
use crate::error::{Error, Result};

pub fn router() -> Router<AppState> {
    let mut r = Router::new();
    for &e in erp::ENTITIES {
        let base = format!("/v1/t/{{tenant}}/{}", e.name);
        r = r
            .route(
                &base,
                get(move |s, c, q| list(e, s, c, q))
                    .post(move |s, c, u, h, b| create(e, s, c, u, h, b)),
            )
            .route(
                &format!("{base}/{{id}}"),
                get(move |s, c, p, q| read(e, s, c, p, q))
                    .patch(move |s, c, p, h, b| update(e, s, c, p, h, b))
                    .delete(move |s, c, p, h| delete(e, s, c, p, h)),
            )
            .route(
                &format!("{base}/{{id}}/restore"),
                post(move |s, c, p| restore(e, s, c, p)),
            );
    }
    r
}

/// `?limit=&cursor=&sort=[-]field&include_deleted=true&<field>=<value>…`
pub fn list_spec(pairs: Vec<(String, String)>) -> Result<ListSpec> {
    let mut spec = ListSpec::default();
    let mut limit = None;
    for (k, v) in pairs {
        match k.as_str() {
            "limit" => {
                limit = Some(
                    v.parse::<i64>()
                        .map_err(|_| Error::bad_field("limit", "must be an integer"))?,
                )
            }
            "cursor" => spec.cursor = Some(v),
            "sort" => {
                spec.sort = Some(match v.strip_prefix('-') {
                    Some(f) => (f.to_owned(), Dir::Desc),
                    None => (v, Dir::Asc),
                })
            }
            "include_deleted" => spec.include_deleted = v == "true",
            _ => spec.filters.push((k, v)),
        }
    }
    spec.limit = page_limit(limit)?;
    Ok(spec)
}

fn include_deleted(pairs: &[(String, String)]) -> bool {
    pairs
        .iter()
        .any(|(k, v)| k == "include_deleted" && v == "true")
}

pub async fn list(
    e: &'static Entity,
    state: State<AppState>,
    caller: TenantCaller,
    pairs: Query<Vec<(String, String)>>,
) -> Result<Response> {
    list_with(e, state, caller, pairs, |_, item, _| Ok(item)).await
}

/// The generic list, with each item completed by `decorate` (e.g. a document's lines)
/// in the same read transaction.
pub async fn list_with<F>(
    e: &'static Entity,
    State(state): State<AppState>,
    caller: TenantCaller,
    Query(pairs): Query<Vec<(String, String)>>,
    decorate: F,
) -> Result<Response>
where
    F: Fn(&rusqlite::Connection, Map<String, Json>, &Scope) -> Result<Map<String, Json>>
        + Send
        + 'static,
{
    let spec = list_spec(pairs)?;
    let scope = Scope::new(&state, &caller);
    let (items, next) = caller
        .tenant
        .db
        .read(move |c| {
            let settings = settings::enabled(c)?;
            let (viewer, ctx) = (scope.viewer(&settings), scope.ctx());
            let compiled = query::list(e, &viewer, &spec, &ctx)?;
            let (items, next) = query::fetch_page(c, &compiled, spec.limit, &ctx)?;
            let items = items
                .into_iter()
                .map(|item| decorate(c, item, &scope))
                .collect::<Result<Vec<_>>>()?;
            Ok((items, next))
        })
        .await?;
    Ok(axum::Json(json!({ "items": items, "next_cursor": next })).into_response())
}

pub async fn read(
    e: &'static Entity,
    State(state): State<AppState>,
    caller: TenantCaller,
    Path((_, id)): Path<(String, String)>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response> {
    let deleted = include_deleted(&pairs);
    let scope = Scope::new(&state, &caller);
    let item = caller
        .tenant
        .db
        .read(move |c| {
            let settings = settings::enabled(c)?;
            let (viewer, ctx) = (scope.viewer(&settings), scope.ctx());
            if deleted && !viewer.perms.allows(e.name, "delete") {
                return Err(Error::Forbidden(format!(
                    "include_deleted needs permission {}:delete",
                    e.name
                )));
            }
            let compiled = query::by_id(e, &viewer, &id, deleted)?;
            query::fetch_one(c, &compiled, &ctx)?.ok_or(Error::NotFound)
        })
        .await?;
    Ok(with_etag(StatusCode::OK, item))
}

async fn create(
    e: &'static Entity,
    State(state): State<AppState>,
    caller: TenantCaller,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Map<String, Json>>,
) -> Result<Response> {
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
            let (viewer, ctx) = (scope.viewer(settings), scope.ctx());
            let values = write::values(e, &viewer, &body, Mode::Create, None, &ctx)?;
            let user = &scope.principal.user_id;
            let id = store::insert(tx, e, &values, user, &scope.act(), &ctx)?;
            let item = store::read_back(tx, e, &viewer, &id, &ctx)?;
            Ok((Json::Object(item), format!("{path}/{id}")))
        },
    )
    .await
}

async fn update(
    e: &'static Entity,
    State(state): State<AppState>,
    caller: TenantCaller,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Map<String, Json>>,
) -> Result<Response> {
    let expected = if_match(&headers)?;
    let scope = Scope::new(&state, &caller);
    let item = caller
        .tenant
        .db
        .write(move |tx| {
            let settings = settings::enabled(tx)?;
            let (viewer, ctx) = (scope.viewer(&settings), scope.ctx());
            let (version, before) = store::current(tx, e, &viewer, &id, false)?;
            crate::error::ensure_version(expected, version)?;
            let currency = store::raw_text(&before, "currency");
            let values = write::values(e, &viewer, &body, Mode::Update, currency.as_deref(), &ctx)?;
            store::update(tx, e, &id, before, &values, &scope.act(), &ctx)?;
            store::read_back(tx, e, &viewer, &id, &ctx)
        })
        .await?;
    Ok(with_etag(StatusCode::OK, item))
}

/// Soft delete (shared with entities that add their own routes).
pub async fn delete(
    e: &'static Entity,
    State(state): State<AppState>,
    caller: TenantCaller,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode> {
    let expected = if_match(&headers)?;
    let scope = Scope::new(&state, &caller);
    caller
        .tenant
        .db
        .write(move |tx| {
            let settings = settings::enabled(tx)?;
            store::set_deleted(
                tx,
                e,
                &scope.viewer(&settings),
                &id,
                expected,
                true,
                &scope.act(),
            )
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn restore(
    e: &'static Entity,
    State(state): State<AppState>,
    caller: TenantCaller,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response> {
    let scope = Scope::new(&state, &caller);
    let item = caller
        .tenant
        .db
        .write(move |tx| {
            let settings = settings::enabled(tx)?;
            let (viewer, ctx) = (scope.viewer(&settings), scope.ctx());
            store::set_deleted(tx, e, &viewer, &id, None, false, &scope.act())?;
            store::read_back(tx, e, &viewer, &id, &ctx)
        })
        .await?;
    Ok(with_etag(StatusCode::OK, item))
}
