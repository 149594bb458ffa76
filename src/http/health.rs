//! Process endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use super::json::Json;
use crate::app::AppState;
use crate::error::Result;

#[derive(Serialize, ToSchema)]
pub struct Status {
    /// `ok` when healthy.
    pub status: &'static str,
}

/// Process liveness.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "the process is alive", body = Status)))]
pub async fn healthz() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// Ready to serve: platform.db answers and the data directory is writable.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Status), (status = 503, description = "not ready", body = crate::error::Problem)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Status>> {
    state
        .tenancy
        .platform
        .read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
        .await?;
    let probe = state.tenancy.layout.root().join(".readyz");
    crate::db::blocking(move || {
        std::fs::write(&probe, b"ok")
            .and_then(|_| std::fs::remove_file(&probe))
            .map_err(|e| crate::error::Error::Unavailable {
                detail: format!("data dir not writable: {e}"),
                retry_after_secs: 5,
            })
    })
    .await?;
    Ok(Json(Status { status: "ok" }))
}

/// Prometheus text format. Series are per route and status, never per tenant.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let pools = &state.tenancy.pools;
    let s = pools.stats();
    metrics::gauge!("erpd_tenant_pools_open").set(s.open.load(Ordering::Relaxed) as f64);
    metrics::gauge!("erpd_tenant_pools_capacity").set(pools.capacity() as f64);
    metrics::gauge!("erpd_tenants_registered").set(state.tenancy.registry.len() as f64);
    metrics::counter!("erpd_tenant_opens_total").absolute(s.opens.load(Ordering::Relaxed));
    metrics::counter!("erpd_tenant_pool_hits_total").absolute(s.hits.load(Ordering::Relaxed));
    metrics::counter!("erpd_tenant_pool_misses_total").absolute(s.misses.load(Ordering::Relaxed));
    metrics::counter!("erpd_tenant_pool_evictions_total")
        .absolute(s.evictions.load(Ordering::Relaxed));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::metrics().render(),
    )
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "the OpenAPI 3 document", content_type = "application/json")))]
pub async fn openapi(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.clone(),
    )
}
