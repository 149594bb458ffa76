//! Personal tokens: create (shown once), list (never the secret), revoke.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::require;
use super::store::{self, TokenInfo};
use crate::app::AppState;
use crate::audit::{self, AuditEvent};
use crate::auth::extract::TenantCaller;
use crate::auth::token;
use crate::error::{Error, Problem, Result};
use crate::http::json::Json;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    /// RFC 3339, in the future; none: the token lives until revoked.
    pub expires_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    pub id: String,
    pub name: String,
    /// Shown once; only its hash is stored.
    pub token: String,
    pub created_at: String,
    pub expires_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenList {
    pub items: Vec<TokenInfo>,
    pub next_cursor: Option<String>,
}

/// The caller's tokens.
#[utoipa::path(get, path = "/v1/t/{tenant}/tokens", tag = "identity", security(("bearer" = [])),
    params(("tenant" = String, Path)), responses((status = 200, body = TokenList)))]
pub async fn list_tokens(caller: TenantCaller) -> Result<Json<TokenList>> {
    let user = caller.principal.user_id.clone();
    let items = caller
        .tenant
        .db
        .read(move |c| store::list_tokens(c, &user))
        .await?;
    Ok(Json(TokenList {
        items,
        next_cursor: None,
    }))
}

/// A new token for the caller.
#[utoipa::path(post, path = "/v1/t/{tenant}/tokens", tag = "identity", security(("bearer" = [])),
    params(("tenant" = String, Path)), request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 422, body = Problem)))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: TenantCaller,
    Json(body): Json<NewToken>,
) -> Result<Response> {
    if body.name.trim().is_empty() || body.name.chars().count() > 100 {
        return Err(Error::invalid("name", "must be 1-100 characters"));
    }
    let expires_at = match &body.expires_at {
        None => None,
        Some(s) => {
            let t = crate::clock::parse(s)
                .ok_or_else(|| Error::invalid("expires_at", "must be an RFC 3339 timestamp"))?;
            if t <= crate::clock::now() {
                return Err(Error::invalid("expires_at", "must be in the future"));
            }
            Some(crate::clock::format(t))
        }
    };
    let secret = token::new_tenant_token(&caller.tenant.id)?;
    let (p, rid, hash) = (
        caller.principal.clone(),
        caller.request_id.clone(),
        token::hash(&secret),
    );
    let name = body.name.trim().to_owned();
    let (e, n) = (expires_at.clone(), name.clone());
    let id = caller
        .tenant
        .db
        .write(move |tx| {
            let id = store::insert_token(tx, &p.user_id, &n, &hash, e.as_deref())?;
            audit::record(
                tx,
                &AuditEvent {
                    actor: &p.actor(),
                    action: "create",
                    entity: "tokens",
                    entity_id: Some(&id),
                    changes: json!({ "name": [null, n], "expires_at": [null, e] }),
                    request_id: rid.as_deref(),
                },
            )?;
            Ok(id)
        })
        .await?;
    state.auth_cache.invalidate(&caller.tenant.id);
    let created = CreatedToken {
        id,
        name,
        token: secret,
        created_at: crate::clock::now_rfc3339(),
        expires_at,
    };
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

/// Revoke a token: the caller's own, or anyone's with `users:write`. Effective on the next request.
#[utoipa::path(delete, path = "/v1/t/{tenant}/tokens/{id}", tag = "identity", security(("bearer" = [])),
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 204, description = "revoked"), (status = 404, body = Problem)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode> {
    let (_, id) = path;
    let (p, rid) = (caller.principal.clone(), caller.request_id.clone());
    caller
        .tenant
        .db
        .write(move |tx| {
            let owner = store::token_owner(tx, &id)?.ok_or(Error::NotFound)?;
            if owner != p.user_id {
                require(&p, "users", "write").map_err(|_| Error::NotFound)?;
            }
            store::revoke_token(tx, &id)?;
            audit::record(
                tx,
                &AuditEvent {
                    actor: &p.actor(),
                    action: "revoke",
                    entity: "tokens",
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
