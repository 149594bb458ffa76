//! `erpd serve`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use tokio::net::TcpListener;

use crate::app::{self, AppState};
use crate::config::Config;
use crate::platform::model::NewTenant;
use crate::tenancy::lifecycle::Actor;
use crate::tenancy::{TenantId, provision};

pub async fn run(config: Config) -> anyhow::Result<ExitCode> {
    config
        .layout
        .ensure()
        .context("creating the data directory")?;
    // One server per data directory; offline-only commands check the same lock.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(config.layout.serve_lock())?;
    if lock.try_lock().is_err() {
        bail!(
            "another erpd server is already serving {}",
            config.layout.root().display()
        );
    }
    let demo = config.demo;
    let state = AppState::build(config).await?;
    let listener = TcpListener::bind(state.config.listen)
        .await
        .context("binding the listen address")?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, data_dir = %state.config.layout.root().display(), "erpd listening");
    let mut out = std::io::stdout().lock();
    writeln!(out, "erpd listening on http://{addr}")?;
    if demo {
        let token = demo_token(&state).await?;
        writeln!(out, "\nThe demo tenant is ready. Try:\n")?;
        writeln!(
            out,
            "  curl -s -H 'Authorization: Bearer {token}' http://{addr}/v1/t/demo/me\n"
        )?;
    }
    out.flush()?;
    drop(out);
    app::serve(listener, state, app::shutdown_signal()).await?;
    drop(lock);
    Ok(ExitCode::SUCCESS)
}

/// Create the `demo` tenant on first start; on later starts issue a fresh owner token
/// (tokens are shown once, so the old one cannot be printed again).
async fn demo_token(state: &AppState) -> anyhow::Result<String> {
    let id = TenantId::parse("demo")?;
    let actor = Actor {
        name: "erpd:demo".into(),
        request_id: None,
    };
    if state.tenancy.registry.get(&id).is_none() {
        let new = NewTenant::parse(
            "demo",
            "Demo Company",
            "EUR",
            None,
            Some("owner@demo.example".into()),
        )?;
        let (_, token) = state.tenancy.create_tenant(new, &actor).await?;
        return Ok(token);
    }
    state.tenancy.resolve(&id)?;
    let handle = state.tenancy.tenant_db(&id).await?;
    let tid = id.clone();
    Ok(handle
        .db
        .write(move |tx| provision::issue_owner_token(tx, &tid, "demo"))
        .await?)
}
