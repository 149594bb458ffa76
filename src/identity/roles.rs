//! Roles: the built-in ones (read-only) and the tenant's custom roles.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::require;
use super::store::{self, Role};
use crate::access::permission::{self, Grant, Permissions};
use crate::app::AppState;
use crate::audit::{self, AuditEvent};
use crate::auth::extract::TenantCaller;
use crate::error::{Error, FieldError, Problem, Result};
use crate::http::json::{Json, etag, if_match};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    pub name: String,
    /// Grants such as `customers:read`, `customers.credit_limit:read`.
    pub permissions: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolePatch {
    pub permissions: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RoleList {
    pub items: Vec<Role>,
    pub next_cursor: Option<String>,
}

fn built_in(name: &str) -> Option<Role> {
    permission::built_in(name).map(|g| Role {
        name: name.to_owned(),
        permissions: g.iter().map(|s| s.to_string()).collect(),
        built_in: true,
        version: None,
    })
}

fn check_name(name: &str) -> Result<()> {
    let ok = (2..=50).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(Error::invalid(
            "name",
            "2-50 characters of a-z, 0-9 and '-'",
        ));
    }
    if permission::built_in(name).is_some() {
        return Err(Error::Conflict(format!("{name} is a built-in role")));
    }
    Ok(())
}

/// Parse grants; the caller must hold each one.
fn check_grants(caller: &Permissions, grants: &[String]) -> Result<()> {
    let mut errors = Vec::new();
    for g in grants {
        match Grant::parse(g) {
            None => errors.push(FieldError::new(
                "permissions",
                format!("{g:?} is not entity:action or entity.field:action"),
            )),
            Some(parsed) if !caller.covers(&parsed) => {
                return Err(Error::Forbidden(format!(
                    "cannot grant {g}: you do not hold it"
                )));
            }
            Some(_) => {}
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(errors))
    }
}

/// Built-in and custom roles.
#[utoipa::path(get, path = "/v1/t/{tenant}/roles", tag = "identity", security(("bearer" = [])),
    params(("tenant" = String, Path)), responses((status = 200, body = RoleList)))]
pub async fn list_roles(caller: TenantCaller) -> Result<Json<RoleList>> {
    require(&caller.principal, "roles", "read")?;
    let custom = caller.tenant.db.read(store::list_custom_roles).await?;
    let mut items: Vec<Role> = permission::BUILT_IN_ROLES
        .iter()
        .filter_map(|r| built_in(r))
        .collect();
    items.extend(custom);
    Ok(Json(RoleList {
        items,
        next_cursor: None,
    }))
}

/// Create a custom role.
#[utoipa::path(post, path = "/v1/t/{tenant}/roles", tag = "identity", security(("bearer" = [])),
    params(("tenant" = String, Path)), request_body = NewRole,
    responses((status = 201, body = Role), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_role(
    State(state): State<AppState>,
    caller: TenantCaller,
    Json(body): Json<NewRole>,
) -> Result<Response> {
    require(&caller.principal, "roles", "write")?;
    check_name(&body.name)?;
    check_grants(&caller.principal.perms, &body.permissions)?;
    let (p, rid) = (caller.principal.clone(), caller.request_id.clone());
    let role = caller
        .tenant
        .db
        .write(move |tx| {
            if store::find_custom_role(tx, &body.name)?.is_some() {
                return Err(Error::Conflict(format!("role {} exists", body.name)));
            }
            store::upsert_role(tx, &body.name, &body.permissions, None)?;
            audit::record(
                tx,
                &AuditEvent {
                    actor: &p.actor(),
                    action: "create",
                    entity: "roles",
                    entity_id: Some(&body.name),
                    changes: json!({ "permissions": [null, body.permissions] }),
                    request_id: rid.as_deref(),
                },
            )?;
            store::find_custom_role(tx, &body.name)?.ok_or(Error::NotFound)
        })
        .await?;
    state.auth_cache.invalidate(&caller.tenant.id);
    Ok((
        StatusCode::CREATED,
        etag(role.version.unwrap_or(1)),
        axum::Json(role),
    )
        .into_response())
}

/// One role.
#[utoipa::path(get, path = "/v1/t/{tenant}/roles/{name}", tag = "identity", security(("bearer" = [])),
    params(("tenant" = String, Path), ("name" = String, Path)), responses((status = 200, body = Role), (status = 404, body = Problem)))]
pub async fn get_role(
    caller: TenantCaller,
    Path(path): Path<(String, String)>,
) -> Result<Json<Role>> {
    let (_, name) = path;
    require(&caller.principal, "roles", "read")?;
    if let Some(r) = built_in(&name) {
        return Ok(Json(r));
    }
    Ok(Json(
        caller
            .tenant
            .db
            .read(move |c| store::find_custom_role(c, &name))
            .await?
            .ok_or(Error::NotFound)?,
    ))
}

/// Replace a custom role's permissions; holders are affected on their next request.
#[utoipa::path(patch, path = "/v1/t/{tenant}/roles/{name}", tag = "identity", security(("bearer" = [])),
    params(("tenant" = String, Path), ("name" = String, Path)), request_body = RolePatch,
    responses((status = 200, body = Role), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn update_role(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<RolePatch>,
) -> Result<Response> {
    let (_, name) = path;
    require(&caller.principal, "roles", "write")?;
    if permission::built_in(&name).is_some() {
        return Err(Error::Conflict(format!("{name} is a built-in role")));
    }
    check_grants(&caller.principal.perms, &body.permissions)?;
    let expected = if_match(&headers)?;
    let (p, rid) = (caller.principal.clone(), caller.request_id.clone());
    let role = caller
        .tenant
        .db
        .write(move |tx| {
            let before = store::find_custom_role(tx, &name)?.ok_or(Error::NotFound)?;
            store::upsert_role(tx, &name, &body.permissions, expected)?;
            audit::record(
                tx,
                &AuditEvent {
                    actor: &p.actor(),
                    action: "update",
                    entity: "roles",
                    entity_id: Some(&name),
                    changes: json!({ "permissions": [before.permissions, body.permissions] }),
                    request_id: rid.as_deref(),
                },
            )?;
            store::find_custom_role(tx, &name)?.ok_or(Error::NotFound)
        })
        .await?;
    state.auth_cache.invalidate(&caller.tenant.id);
    Ok((etag(role.version.unwrap_or(1)), axum::Json(role)).into_response())
}

/// Delete a custom role no live user holds (409 naming the conflict otherwise).
#[utoipa::path(delete, path = "/v1/t/{tenant}/roles/{name}", tag = "identity", security(("bearer" = [])),
    params(("tenant" = String, Path), ("name" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete_role(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode> {
    let (_, name) = path;
    require(&caller.principal, "roles", "write")?;
    if permission::built_in(&name).is_some() {
        return Err(Error::Conflict(format!("{name} is a built-in role")));
    }
    let (p, rid) = (caller.principal.clone(), caller.request_id.clone());
    caller
        .tenant
        .db
        .write(move |tx| {
            store::find_custom_role(tx, &name)?.ok_or(Error::NotFound)?;
            if store::role_in_use(tx, &name)? {
                return Err(Error::Conflict(format!("role {name} is assigned to users")));
            }
            store::delete_role(tx, &name)?;
            audit::record(
                tx,
                &AuditEvent {
                    actor: &p.actor(),
                    action: "delete",
                    entity: "roles",
                    entity_id: Some(&name),
                    changes: json!({}),
                    request_id: rid.as_deref(),
                },
            )
        })
        .await?;
    state.auth_cache.invalidate(&caller.tenant.id);
    Ok(StatusCode::NO_CONTENT)
}
