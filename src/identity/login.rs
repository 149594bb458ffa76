//! `POST /v1/t/{tenant}/auth/login`: email and password for a session token. Failures do
//! not say whether the email exists, and repeated failures are rate limited (429).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::store;
use crate::app::AppState;
use crate::audit::{self, AuditEvent};
use crate::auth::extract::TenantGate;
use crate::auth::{password, token};
use crate::db;
use crate::error::{Error, Problem, Result};
use crate::http::json::Json;

/// How long a login session token lives.
const SESSION_HOURS: i64 = 12;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub email: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct Session {
    pub token: String,
    pub expires_at: String,
}

/// Log in (no token needed).
#[utoipa::path(post, path = "/v1/t/{tenant}/auth/login", tag = "identity",
    params(("tenant" = String, Path)), request_body = Login,
    responses((status = 200, body = Session), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub async fn login(
    State(state): State<AppState>,
    gate: TenantGate,
    Json(body): Json<Login>,
) -> Result<Json<Session>> {
    let tenant = gate.tenant.id.clone();
    if let Some(wait) = state.login_limiter.locked_for(&tenant, &body.email) {
        return Err(Error::RateLimited {
            retry_after_secs: u32::try_from(wait).unwrap_or(u32::MAX),
        });
    }
    let email = body.email.clone();
    let found = gate
        .tenant
        .db
        .read(move |c| store::find_login(c, &email))
        .await?;
    let (user_id, hash, active) = match &found {
        Some((id, hash, active)) => (Some(id.clone()), hash.clone(), *active),
        None => (None, None, false),
    };
    let pw = body.password.clone();
    let ok = db::blocking(move || Ok(password::verify(&pw, hash.as_deref()))).await? && active;
    let Some(user_id) = user_id.filter(|_| ok) else {
        state.login_limiter.failed(&tenant, &body.email);
        tracing::info!(tenant = %tenant, "login failed");
        return Err(Error::Unauthorized("invalid email or password"));
    };
    state.login_limiter.succeeded(&tenant, &body.email);
    let secret = token::new_tenant_token(&tenant)?;
    let expires_at =
        crate::clock::format(crate::clock::now() + time::Duration::hours(SESSION_HOURS));
    let (hash, e, rid) = (
        token::hash(&secret),
        expires_at.clone(),
        gate.request_id.clone(),
    );
    gate.tenant
        .db
        .write(move |tx| {
            let id = store::insert_token(tx, &user_id, "login", &hash, Some(&e))?;
            audit::record(
                tx,
                &AuditEvent {
                    actor: &format!("user:{user_id}"),
                    action: "login",
                    entity: "tokens",
                    entity_id: Some(&id),
                    changes: json!({ "expires_at": [null, e] }),
                    request_id: rid.as_deref(),
                },
            )
        })
        .await?;
    Ok(Json(Session {
        token: secret,
        expires_at,
    }))
}
