//! `users`: list, create, read, update (incl. password, roles, active), soft delete and
//! restore. Passwords are write-only and hashed before the write transaction starts.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::store::{self, User};
use super::{check_assignable, require};
use crate::app::AppState;
use crate::audit::{self, AuditEvent};
use crate::auth::extract::TenantCaller;
use crate::auth::password;
use crate::db;
use crate::error::{Error, Problem, Result};
use crate::http::json::{Json, Query, etag, if_match, page_limit};
use crate::idempotency::{self, Stored};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    /// Write-only; at least 10 characters. Without one the user can only use tokens.
    pub password: Option<String>,
    pub roles: Vec<String>,
    pub active: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub email: Option<String>,
    pub name: Option<String>,
    pub password: Option<String>,
    pub roles: Option<Vec<String>>,
    pub active: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct UserList {
    pub items: Vec<User>,
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserParams {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub include_deleted: Option<bool>,
}

fn check_email(email: &str) -> Result<()> {
    let ok = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(a, d)| !a.is_empty() && d.contains('.'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("email", "must be an email address"))
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.chars().count() > 200 {
        return Err(Error::invalid("name", "must be 1-200 characters"));
    }
    Ok(())
}

async fn hash_password(password: Option<String>) -> Result<Option<String>> {
    match password {
        None => Ok(None),
        Some(p) => {
            password::validate(&p)?;
            db::blocking(move || password::hash(&p)).await.map(Some)
        }
    }
}

fn with_etag(status: StatusCode, user: &User) -> Response {
    (status, etag(user.version), axum::Json(user)).into_response()
}

/// List users.
#[utoipa::path(get, path = "/v1/t/{tenant}/users", tag = "identity", security(("bearer" = [])),
    params(("tenant" = String, Path), UserParams),
    responses((status = 200, body = UserList), (status = 403, body = Problem)))]
pub async fn list_users(
    caller: TenantCaller,
    Query(q): Query<UserParams>,
) -> Result<Json<UserList>> {
    require(&caller.principal, "users", "read")?;
    let limit = page_limit(q.limit)?;
    let all = q.include_deleted.unwrap_or(false);
    if all {
        require(&caller.principal, "users", "delete")?;
    }
    let after = q.cursor.unwrap_or_default();
    let mut items = caller
        .tenant
        .db
        .read(move |c| store::list_users(c, &after, limit + 1, all))
        .await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|u| u.id.clone())
    } else {
        None
    };
    Ok(Json(UserList { items, next_cursor }))
}

/// Create a user with roles (you cannot grant a role that holds more than you do).
#[utoipa::path(post, path = "/v1/t/{tenant}/users", tag = "identity", security(("bearer" = [])),
    params(("tenant" = String, Path)), request_body = NewUser,
    responses((status = 201, body = User), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: TenantCaller,
    headers: HeaderMap,
    Json(body): Json<NewUser>,
) -> Result<Response> {
    require(&caller.principal, "users", "write")?;
    check_email(&body.email)?;
    check_name(&body.name)?;
    let key = idempotency::key(&headers)?;
    // The password is left out of the fingerprint: no derivative of it is kept for 24 h.
    let fingerprint = idempotency::fingerprint(
        "POST",
        &format!("/v1/t/{}/users", caller.tenant.id),
        &json!({ "email": body.email, "name": body.name, "roles": body.roles, "active": body.active }),
    );
    let hash = hash_password(body.password).await?;
    let (p, rid) = (caller.principal.clone(), caller.request_id.clone());
    let location_base = format!("/v1/t/{}/users", caller.tenant.id);
    let stored = caller
        .tenant
        .db
        .write(move |tx| idempotency::once(tx, &p.user_id, key.as_deref(), &fingerprint, || {
            check_assignable(tx, &p, &body.roles)?;
            let active = body.active.unwrap_or(true);
            let id = store::insert_user(tx, body.email.trim(), body.name.trim(), hash.as_deref(), active, &body.roles)?;
            let changes = json!({ "email": [null, body.email], "name": [null, body.name], "roles": [null, body.roles],
                                  "active": [null, active], "password": [null, if hash.is_some() { "set" } else { "none" }] });
            audit::record(tx, &AuditEvent { actor: &p.actor(), action: "create", entity: "users", entity_id: Some(&id), changes, request_id: rid.as_deref() })?;
            let user = store::get_user(tx, &id, false)?;
            let body = serde_json::to_value(&user).map_err(anyhow::Error::from)?;
            Ok(Stored { status: 201, body, location: Some(format!("{location_base}/{id}")) })
        }))
        .await?;
    state.auth_cache.invalidate(&caller.tenant.id);
    Ok(stored.into_response())
}

/// One user.
#[utoipa::path(get, path = "/v1/t/{tenant}/users/{id}", tag = "identity", security(("bearer" = [])),
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = User), (status = 404, body = Problem)))]
pub async fn get_user(
    caller: TenantCaller,
    Path(path): Path<(String, String)>,
) -> Result<Response> {
    let (_, id) = path;
    if id != caller.principal.user_id {
        require(&caller.principal, "users", "read")?;
    }
    let user = caller
        .tenant
        .db
        .read(move |c| store::get_user(c, &id, false))
        .await?;
    Ok(with_etag(StatusCode::OK, &user))
}

/// Change a user. Deactivating, demoting or deleting the last active owner is refused (409).
#[utoipa::path(patch, path = "/v1/t/{tenant}/users/{id}", tag = "identity", security(("bearer" = [])),
    params(("tenant" = String, Path), ("id" = String, Path)), request_body = UserPatch,
    responses((status = 200, body = User), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update_user(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<UserPatch>,
) -> Result<Response> {
    let (_, id) = path;
    let own_password_only = id == caller.principal.user_id
        && body.email.is_none()
        && body.roles.is_none()
        && body.active.is_none();
    if !own_password_only {
        require(&caller.principal, "users", "write")?;
    }
    let expected = if_match(&headers)?;
    if let Some(e) = &body.email {
        check_email(e)?;
    }
    if let Some(n) = &body.name {
        check_name(n)?;
    }
    let hash = hash_password(body.password).await?;
    let (p, rid) = (caller.principal.clone(), caller.request_id.clone());
    let user = caller
        .tenant
        .db
        .write(move |tx| {
            let before = store::get_user(tx, &id, false)?;
            crate::error::ensure_version(expected, before.version)?;
            if let Some(roles) = &body.roles {
                let added: Vec<String> = roles
                    .iter()
                    .filter(|r| !before.roles.contains(r))
                    .cloned()
                    .collect();
                check_assignable(tx, &p, &added)?;
            }
            let loses_owner = before.roles.iter().any(|r| r == "owner")
                && (body
                    .roles
                    .as_ref()
                    .is_some_and(|r| !r.iter().any(|x| x == "owner"))
                    || body.active == Some(false));
            if loses_owner && store::other_active_owners(tx, &id)? == 0 {
                return Err(Error::Conflict(
                    "the last active owner cannot be removed or deactivated".into(),
                ));
            }
            store::update_user(
                tx,
                &id,
                body.email.as_deref(),
                body.name.as_deref(),
                hash.as_deref(),
                body.active,
                body.roles.as_deref(),
            )?;
            let after = store::get_user(tx, &id, false)?;
            let mut changes = serde_json::Map::new();
            for (k, a, b) in [
                ("email", json!(before.email), json!(after.email)),
                ("name", json!(before.name), json!(after.name)),
                ("roles", json!(before.roles), json!(after.roles)),
                ("active", json!(before.active), json!(after.active)),
            ] {
                if a != b {
                    changes.insert(k.into(), json!([a, b]));
                }
            }
            if hash.is_some() {
                changes.insert("password".into(), json!([null, "changed"]));
            }
            audit::record(
                tx,
                &AuditEvent {
                    actor: &p.actor(),
                    action: "update",
                    entity: "users",
                    entity_id: Some(&id),
                    changes: changes.into(),
                    request_id: rid.as_deref(),
                },
            )?;
            Ok(after)
        })
        .await?;
    state.auth_cache.invalidate(&caller.tenant.id);
    Ok(with_etag(StatusCode::OK, &user))
}

/// Soft delete a user; their tokens stop working at once.
#[utoipa::path(delete, path = "/v1/t/{tenant}/users/{id}", tag = "identity", security(("bearer" = [])),
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete_user(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode> {
    let (_, id) = path;
    require(&caller.principal, "users", "delete")?;
    let expected = if_match(&headers)?;
    let (p, rid) = (caller.principal.clone(), caller.request_id.clone());
    caller
        .tenant
        .db
        .write(move |tx| {
            let before = store::get_user(tx, &id, false)?;
            crate::error::ensure_version(expected, before.version)?;
            if before.roles.iter().any(|r| r == "owner")
                && store::other_active_owners(tx, &id)? == 0
            {
                return Err(Error::Conflict(
                    "the last active owner cannot be deleted".into(),
                ));
            }
            store::set_user_deleted(tx, &id, true)?;
            store::revoke_user_tokens(tx, &id)?;
            audit::record(
                tx,
                &AuditEvent {
                    actor: &p.actor(),
                    action: "delete",
                    entity: "users",
                    entity_id: Some(&id),
                    changes: json!({}),
                    request_id: rid.as_deref(),
                },
            )
        })
        .await?;
    state.auth_cache.invalidate(&caller.tenant.id);
    Ok(StatusCode::NO_CONTENT)
}

/// Bring a deleted user back (without their old tokens).
#[utoipa::path(post, path = "/v1/t/{tenant}/users/{id}/restore", tag = "identity", security(("bearer" = [])),
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = User), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn restore_user(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path(path): Path<(String, String)>,
) -> Result<Response> {
    let (_, id) = path;
    require(&caller.principal, "users", "delete")?;
    let (p, rid) = (caller.principal.clone(), caller.request_id.clone());
    let user = caller
        .tenant
        .db
        .write(move |tx| {
            let before = store::get_user(tx, &id, true)?;
            if before.deleted_at.is_none() {
                return Err(Error::NotFound);
            }
            store::set_user_deleted(tx, &id, false)?;
            audit::record(
                tx,
                &AuditEvent {
                    actor: &p.actor(),
                    action: "restore",
                    entity: "users",
                    entity_id: Some(&id),
                    changes: json!({}),
                    request_id: rid.as_deref(),
                },
            )?;
            store::get_user(tx, &id, false)
        })
        .await?;
    state.auth_cache.invalidate(&caller.tenant.id);
    Ok(with_etag(StatusCode::OK, &user))
}
