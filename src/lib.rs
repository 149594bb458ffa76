//! erpd: a multi-tenant ERP server in one binary, each tenant in one SQLite file.
//!
//! How a request flows, and where each part lives:
//!
//! ```text
//! HTTP (axum on hyper/tokio)                       http/         routes, middleware, OpenAPI
//!   → request id, span {request_id, route, tenant, user}
//!   → /v1/t/{tenant}/…: slug check, token check     auth/extract  TenantCaller, PlatformCaller
//!   → tenant gate (exists? suspended?)              tenancy/      Registry (platform catalog in memory)
//!   → open tenant file (LRU of pools, single-flight, migrate policy)   tenancy/pools
//!   → handler → Db::read/write on the blocking pool (BEGIN IMMEDIATE, writer queue,
//!     per-tenant concurrency limit, statement time limit)             db.rs
//!   → JSON, or problem+json from the one Error type                   error.rs
//! ```
//!
//! The data directory (`tenancy::layout`) holds `platform.db` (the catalog: tenants,
//! platform tokens, platform audit), `tenants/<id>.db` (everything a tenant owns),
//! `trash/` (soft-deleted tenants) and `templates/` (the pre-migrated file new tenants are
//! copied from). Migrations are refinery's, embedded (`schema`).

pub mod access;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod db;
pub mod erp;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod identity;
pub mod platform;
pub mod reference;
pub mod schema;
pub mod telemetry;
pub mod tenancy;
