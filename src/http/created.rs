//! The one shape of a creating `POST`: the Idempotency-Key replay, the tenant's settings,
//! the work in one write transaction, and `201` with the created resource, its `ETag` and
//! its `Location`.

use std::collections::BTreeSet;

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use rusqlite::Connection;
use serde_json::Value as Json;

use super::scope::Scope;
use crate::auth::extract::TenantCaller;
use crate::erp::settings;
use crate::error::Result;
use crate::idempotency::{self, Stored};

/// Run `work` once per Idempotency-Key; it returns the created resource and its
/// `Location`. `request` is what the key's fingerprint covers (the path and the body).
pub async fn create_once<F>(
    caller: &TenantCaller,
    scope: Scope,
    headers: &HeaderMap,
    path: &str,
    request: &Json,
    work: F,
) -> Result<Response>
where
    F: FnOnce(&Connection, &Scope, &BTreeSet<String>) -> Result<(Json, String)> + Send + 'static,
{
    let key = idempotency::key(headers)?;
    let fingerprint = idempotency::fingerprint("POST", path, request);
    let stored = caller
        .tenant
        .db
        .write(move |tx| {
            let user = scope.principal.user_id.clone();
            idempotency::once(tx, &user, key.as_deref(), &fingerprint, || {
                let settings = settings::enabled(tx)?;
                let (body, location) = work(tx, &scope, &settings)?;
                Ok(Stored {
                    status: 201,
                    body,
                    location: Some(location),
                })
            })
        })
        .await?;
    Ok(stored.into_response())
}
