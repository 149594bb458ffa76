//! The application: state shared by every request, and the server's run loop.

use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::auth::cache::AuthCache;
use crate::auth::limit::LoginLimiter;

use crate::config::Config;
use crate::error::Result;
use crate::tenancy::{Tenancy, reconcile};

/// Shared, cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<App>);

pub struct App {
    /// Validated settings of this process.
    pub config: Config,
    /// The catalog, the tenant pools and the lifecycle.
    pub tenancy: Arc<Tenancy>,
    /// The OpenAPI document, rendered once.
    pub openapi: String,
    /// Resolved principals per (tenant, token), invalidated per tenant on identity changes.
    pub auth_cache: AuthCache,
    /// Failed-login counters per (tenant, email).
    pub login_limiter: LoginLimiter,
}

impl std::ops::Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

impl AppState {
    /// Open the data directory (creating it on first start), reconcile it, load the catalog.
    pub async fn build(config: Config) -> Result<Self> {
        // Install the recorder before the first request records anything.
        crate::telemetry::metrics();
        let tenancy = Tenancy::open(
            config.layout.clone(),
            config.db.clone(),
            config.migrate,
            config.max_open_tenants,
        )
        .await?;
        let (layout, opts) = (config.layout.clone(), config.db.clone());
        crate::db::blocking(move || reconcile::run(&layout, &opts)).await?;
        tenancy.reload_registry().await?;
        let cache_size = NonZeroUsize::new(10_000).unwrap_or(NonZeroUsize::MIN);
        Ok(Self(Arc::new(App {
            config,
            tenancy,
            openapi: crate::http::openapi_json(),
            auth_cache: AuthCache::new(cache_size),
            login_limiter: LoginLimiter::new(cache_size),
        })))
    }
}

/// Serve until `shutdown` resolves; then finish in-flight requests, and checkpoint and
/// close every tenant file.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(state.tenancy.clone().watch_catalog(stop_rx.clone()));
    let retention = state.config.trash_retention;
    let every = (retention / 2).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    let purger = tokio::spawn(state.tenancy.clone().purge_trash_periodically(
        retention,
        every,
        stop_rx.clone(),
    ));
    let scheduler =
        state.config.backup_schedule.clone().map(|schedule| {
            tokio::spawn(state.tenancy.clone().run_backup_schedule(schedule, stop_rx))
        });
    let app = crate::http::router(state.clone());
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(anyhow::Error::from)?;
    let _ = stop_tx.send(true);
    let _ = watcher.await;
    let _ = purger.await;
    if let Some(s) = scheduler {
        let _ = s.await;
    }
    state.tenancy.pools.close_all().await;
    let platform = state.tenancy.platform.clone_pool();
    let _ = crate::db::blocking(move || {
        let conn = platform.get()?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    })
    .await;
    tracing::info!("erpd stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
