//! Extractors that authenticate a request. Handlers take [`PlatformCaller`] or
//! [`TenantCaller`] and never see a token.
//!
//! The tenant path is checked in a fixed order, before any file is touched: the id must be
//! a valid slug (400), a token must be present (401), a platform token never reads tenant
//! data (403), a tenant token is bound to its tenant (404 elsewhere), the tenant must exist
//! and be active (404/423); only then is its file opened and the token looked up in it.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde::Deserialize;
use tracing::Span;

use super::token::{self, Presented};
use super::{Principal, store};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::platform::model::TenantRecord;
use crate::platform::store as platform_store;
use crate::tenancy::lifecycle::Actor;
use crate::tenancy::{TenantDb, TenantId};

/// The `x-request-id` of this request (set or echoed by the request-id layer).
pub fn request_id(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// An authenticated platform operator.
pub struct PlatformCaller {
    pub actor: Actor,
}

impl FromRequestParts<AppState> for PlatformCaller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let presented =
            token::bearer(&parts.headers).ok_or(Error::Unauthorized("missing bearer token"))?;
        if token::classify(presented) != Presented::Platform {
            return Err(Error::Unauthorized("a platform token is required"));
        }
        let (id, name) = verify_platform_token(state, presented)
            .await?
            .ok_or(Error::Unauthorized("invalid or revoked token"))?;
        Span::current().record("user", format!("platform:{id}"));
        Ok(Self {
            actor: Actor {
                name: format!("platform:{name}:{id}"),
                request_id: request_id(parts),
            },
        })
    }
}

async fn verify_platform_token(
    state: &AppState,
    presented: &str,
) -> Result<Option<(String, String)>> {
    let hash = token::hash(presented);
    state
        .tenancy
        .platform
        .read(move |c| platform_store::find_platform_token(c, &hash))
        .await
}

#[derive(Deserialize)]
struct TenantPath {
    tenant: String,
}

/// Parse the `{tenant}` path segment (400 on anything but a valid slug).
pub async fn tenant_id(parts: &mut Parts, state: &AppState) -> Result<TenantId> {
    let Path(p) = Path::<TenantPath>::from_request_parts(parts, state)
        .await
        .map_err(|e| Error::bad_request(format!("invalid path: {}", e.body_text())))?;
    let id = TenantId::parse(&p.tenant)?;
    Span::current().record("tenant", id.as_str());
    Ok(id)
}

/// An authenticated user of the tenant named in the path, with its open file.
pub struct TenantCaller {
    pub tenant: Arc<TenantDb>,
    /// The catalog record (base currency, modules) as of this request.
    pub record: Arc<TenantRecord>,
    /// Shared with the principal cache: cloning it is a reference count.
    pub principal: Arc<Principal>,
    pub request_id: Option<String>,
}

impl FromRequestParts<AppState> for TenantCaller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let id = tenant_id(parts, state).await?;
        let presented =
            token::bearer(&parts.headers).ok_or(Error::Unauthorized("missing bearer token"))?;
        match token::classify(presented) {
            Presented::Malformed => return Err(Error::Unauthorized("invalid token")),
            Presented::Platform => {
                return match verify_platform_token(state, presented).await? {
                    Some(_) => Err(Error::Forbidden(
                        "platform tokens carry no access to tenant data; request an access grant"
                            .into(),
                    )),
                    None => Err(Error::Unauthorized("invalid or revoked token")),
                };
            }
            // Bound to another tenant: this tenant does not exist for the caller.
            Presented::Tenant(owner) if owner != id.as_str() => return Err(Error::NotFound),
            Presented::Tenant(_) => {}
        }
        let record = state.tenancy.resolve(&id)?;
        let tenant = state.tenancy.tenant_db(&id).await?;
        let hash = token::hash(presented);
        let principal = match state.auth_cache.get(&id, &hash) {
            Some(p) => p,
            None => {
                // Read the generation first: a change racing this read leaves a stale entry.
                let generation = state.auth_cache.current_generation(&id);
                let h = hash.clone();
                let p = tenant
                    .db
                    .read(move |c| store::find_principal_by_token(c, &h))
                    .await?
                    .ok_or(Error::Unauthorized("invalid, revoked or expired token"))?;
                let expires = p.token_expires_at.as_deref().and_then(crate::clock::parse);
                let p = Arc::new(p);
                state
                    .auth_cache
                    .put(&id, &hash, p.clone(), expires, generation);
                p
            }
        };
        Span::current().record("user", principal.user_id.as_str());
        Ok(Self {
            tenant,
            record,
            principal,
            request_id: request_id(parts),
        })
    }
}

/// A tenant request that needs no token (login): the tenant is resolved, gated and opened.
pub struct TenantGate {
    pub tenant: Arc<TenantDb>,
    pub record: Arc<TenantRecord>,
    pub request_id: Option<String>,
}

impl FromRequestParts<AppState> for TenantGate {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let id = tenant_id(parts, state).await?;
        let record = state.tenancy.resolve(&id)?;
        let tenant = state.tenancy.tenant_db(&id).await?;
        Ok(Self {
            tenant,
            record,
            request_id: request_id(parts),
        })
    }
}
