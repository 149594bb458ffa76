//! Platform endpoints: `/v1/tenants…` and `/v1/audit-log`. Thin: parse, call the tenancy
//! lifecycle, shape the answer.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::json::{Json, Query, etag, if_match, page_limit};
use crate::app::AppState;
use crate::auth::extract::PlatformCaller;
use crate::error::{Error, Problem, Result};
use crate::platform::model::{NewTenant, TenantRecord, TenantStatus};
use crate::platform::store::{self as platform_store, PlatformAuditEntry};
use crate::tenancy::TenantId;

/// A tenant as the platform sees it.
#[derive(Serialize, ToSchema)]
pub struct TenantView {
    pub id: String,
    pub name: String,
    pub status: TenantStatus,
    pub base_currency: String,
    pub schema_version: i64,
    pub size_bytes: u64,
    pub created_at: String,
    pub updated_at: String,
    pub modules: Vec<String>,
    pub version: i64,
    pub last_backup_at: Option<String>,
}

impl TenantView {
    pub(crate) fn of(state: &AppState, r: TenantRecord) -> Self {
        Self {
            size_bytes: state.tenancy.size_bytes(&r.id),
            id: r.id.to_string(),
            name: r.name,
            status: r.status,
            base_currency: r.base_currency,
            schema_version: r.schema_version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            modules: r.modules,
            version: r.version,
            last_backup_at: r.last_backup_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// `^[a-z0-9][a-z0-9-]{1,62}$`, chosen by the operator.
    pub id: String,
    pub name: String,
    /// ISO 4217, fixed for the tenant's life.
    pub base_currency: String,
    /// Defaults to every module.
    pub modules: Option<Vec<String>>,
    /// The owner user's email (default `owner@<id>.invalid`).
    pub owner_email: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedTenant {
    pub tenant: TenantView,
    /// Shown once; only its hash is stored.
    pub owner_token: String,
}

#[derive(Serialize, ToSchema)]
pub struct TenantList {
    pub items: Vec<TenantView>,
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1-500, default 50.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    pub name: Option<String>,
    /// `active` or `suspended`.
    pub status: Option<TenantStatus>,
}

fn path_id(raw: &str) -> Result<TenantId> {
    TenantId::parse(raw)
}

/// Provision a tenant from the template; returns the owner token once.
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", security(("bearer" = [])),
    request_body = CreateTenant,
    responses(
        (status = 201, body = CreatedTenant),
        (status = 400, description = "malformed body or invalid tenant id", body = Problem),
        (status = 401, body = Problem), (status = 409, description = "id taken", body = Problem),
        (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem),
    ))]
pub async fn create_tenant(
    State(state): State<AppState>,
    caller: PlatformCaller,
    Json(body): Json<CreateTenant>,
) -> Result<Response> {
    let new = NewTenant::parse(
        &body.id,
        &body.name,
        &body.base_currency,
        body.modules,
        body.owner_email,
    )?;
    let (record, owner_token) = state.tenancy.create_tenant(new, &caller.actor).await?;
    let location = format!("/v1/tenants/{}", record.id);
    let version = record.version;
    let body = CreatedTenant {
        tenant: TenantView::of(&state, record),
        owner_token,
    };
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        etag(version),
        Json(body),
    )
        .into_response())
}

/// List tenants (not deleted ones), ordered by id.
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", security(("bearer" = [])),
    params(ListParams), responses((status = 200, body = TenantList), (status = 401, body = Problem)))]
pub async fn list_tenants(
    State(state): State<AppState>,
    _caller: PlatformCaller,
    Query(q): Query<ListParams>,
) -> Result<Json<TenantList>> {
    let limit = page_limit(q.limit)?;
    let mut rows = state.tenancy.list_tenants(q.cursor, limit + 1).await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    let st = state.clone();
    let items =
        crate::db::blocking(move || Ok(rows.into_iter().map(|r| TenantView::of(&st, r)).collect()))
            .await?;
    Ok(Json(TenantList { items, next_cursor }))
}

/// One tenant.
#[utoipa::path(get, path = "/v1/tenants/{id}", tag = "tenants", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = TenantView), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn get_tenant(
    State(state): State<AppState>,
    _caller: PlatformCaller,
    Path(id): Path<String>,
) -> Result<Response> {
    let record = state.tenancy.get_tenant(&path_id(&id)?).await?;
    if record.status == TenantStatus::Deleted {
        return Err(Error::NotFound);
    }
    Ok((etag(record.version), Json(TenantView::of(&state, record))).into_response())
}

/// Rename, suspend (`status: suspended` → every tenant request gets 423) or resume.
#[utoipa::path(patch, path = "/v1/tenants/{id}", tag = "tenants", security(("bearer" = [])),
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "expected version")),
    request_body = UpdateTenant,
    responses((status = 200, body = TenantView), (status = 404, body = Problem),
        (status = 409, description = "version mismatch", body = Problem), (status = 422, body = Problem)))]
pub async fn update_tenant(
    State(state): State<AppState>,
    caller: PlatformCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<UpdateTenant>,
) -> Result<Response> {
    let id = path_id(&id)?;
    let expected = if_match(&headers)?;
    if let Some(name) = &body.name
        && (name.trim().is_empty() || name.chars().count() > 200)
    {
        return Err(Error::invalid("name", "must be 1-200 characters"));
    }
    let name = body.name.map(|n| n.trim().to_owned());
    let record = state
        .tenancy
        .update_tenant(&id, expected, name, body.status, &caller.actor)
        .await?;
    Ok((etag(record.version), Json(TenantView::of(&state, record))).into_response())
}

/// Soft delete: the file moves to the trash and can be restored.
#[utoipa::path(delete, path = "/v1/tenants/{id}", tag = "tenants", security(("bearer" = [])),
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 204, description = "deleted"), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 503, description = "still in use; retry", body = Problem)))]
pub async fn delete_tenant(
    State(state): State<AppState>,
    caller: PlatformCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode> {
    let id = path_id(&id)?;
    state
        .tenancy
        .delete_tenant(&id, if_match(&headers)?, &caller.actor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Undo a soft delete.
#[utoipa::path(post, path = "/v1/tenants/{id}/restore", tag = "tenants", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = TenantView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn restore_tenant(
    State(state): State<AppState>,
    caller: PlatformCaller,
    Path(id): Path<String>,
) -> Result<Response> {
    let record = state
        .tenancy
        .restore_tenant(&path_id(&id)?, &caller.actor)
        .await?;
    Ok((etag(record.version), Json(TenantView::of(&state, record))).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct HealthChecks {
    pub open: bool,
    /// Why the tenant could not be opened, if it could not.
    pub error: Option<String>,
    pub quick_check: Option<String>,
    pub schema_version: Option<i64>,
    pub pending_jobs: Option<i64>,
    pub last_backup_at: Option<String>,
    /// Why the last scheduled backup failed; the tenant is `degraded` until one succeeds.
    pub last_backup_error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TenantHealthView {
    /// `ok`, `degraded` or `down`.
    pub status: &'static str,
    pub checks: HealthChecks,
}

/// Open the tenant, run `quick_check`, report schema version and pending jobs.
#[utoipa::path(get, path = "/v1/tenants/{id}/health", tag = "tenants", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = TenantHealthView), (status = 404, body = Problem)))]
pub async fn tenant_health(
    State(state): State<AppState>,
    _caller: PlatformCaller,
    Path(id): Path<String>,
) -> Result<Json<TenantHealthView>> {
    let h = state.tenancy.health(&path_id(&id)?).await?;
    Ok(Json(TenantHealthView {
        status: h.status,
        checks: HealthChecks {
            open: h.open,
            error: h.error,
            quick_check: h.quick_check,
            schema_version: h.schema_version,
            pending_jobs: h.pending_jobs,
            last_backup_at: h.last_backup_at,
            last_backup_error: h.last_backup_error,
        },
    }))
}

#[derive(Serialize, ToSchema)]
pub struct AuditList {
    pub items: Vec<PlatformAuditEntry>,
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only entries about this tenant.
    pub tenant: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The platform audit log, newest first.
#[utoipa::path(get, path = "/v1/audit-log", tag = "tenants", security(("bearer" = [])),
    params(AuditParams), responses((status = 200, body = AuditList), (status = 401, body = Problem)))]
pub async fn platform_audit_log(
    State(state): State<AppState>,
    _caller: PlatformCaller,
    Query(q): Query<AuditParams>,
) -> Result<Json<AuditList>> {
    let limit = page_limit(q.limit)?;
    let tenant = q.tenant.as_deref().map(TenantId::parse).transpose()?;
    let before = match q.cursor.as_deref() {
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| Error::bad_field("cursor", "invalid cursor"))?,
        ),
        None => None,
    };
    let mut items = state
        .tenancy
        .platform
        .read(move |c| platform_store::list_audit(c, tenant.as_ref(), before, limit + 1))
        .await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|e| e.id.to_string())
    } else {
        None
    };
    Ok(Json(AuditList { items, next_cursor }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccessGrant {
    /// Why the operator needs access (recorded in both audit logs).
    pub reason: String,
    /// 1 to 86400.
    pub ttl_seconds: i64,
    /// Tenant roles the grant carries, e.g. `["viewer"]`.
    pub roles: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AccessGrant {
    /// A tenant token, shown once, valid until `expires_at`.
    pub token: String,
    pub expires_at: String,
}

/// Explicit cross-tenant access: a short-lived tenant token, audited on both sides.
#[utoipa::path(post, path = "/v1/tenants/{id}/access-grants", tag = "tenants", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = NewAccessGrant,
    responses((status = 201, body = AccessGrant), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn create_access_grant(
    State(state): State<AppState>,
    caller: PlatformCaller,
    Path(id): Path<String>,
    Json(body): Json<NewAccessGrant>,
) -> Result<Response> {
    let id = path_id(&id)?;
    let grant = state
        .tenancy
        .create_access_grant(
            &id,
            body.reason,
            body.ttl_seconds,
            body.roles,
            &caller.actor,
        )
        .await?;
    state.auth_cache.invalidate(&id);
    let body = AccessGrant {
        token: grant.token,
        expires_at: grant.expires_at,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}
