//! `erpd serve`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use tokio::net::TcpListener;

use crate::app::{self, AppState};
use crate::config::Config;
use crate::erp::demo;
use crate::http::scope::Scope;
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
        let (token, draft) = demo_token(&state).await?;
        let base = format!("http://{addr}/v1/t/demo");
        // The owner token is in every line, so each can be pasted as it is; it is also
        // printed alone on the last line, like every secret erpd prints.
        let auth = format!("-H 'Authorization: Bearer {token}'");
        writeln!(
            out,
            "\nThe demo tenant is ready: warehouses, products, customers, suppliers, stock, \
             and orders and invoices in every state. Try:\n"
        )?;
        writeln!(out, "  curl -s {auth} {base}/sales-orders")?;
        if let Some(id) = draft {
            writeln!(
                out,
                "  curl -s -X POST {auth} {base}/sales-orders/{id}/confirm"
            )?;
        }
        let today = crate::erp::orders::flow::today();
        writeln!(
            out,
            "  curl -s {auth} '{base}/reports/trial-balance?as_of={today}'"
        )?;
        writeln!(out, "  curl -s {auth} {base}/reports/ar-aging")?;
        writeln!(out, "  curl -s {auth} {base}/stock")?;
        writeln!(
            out,
            "\nOwner token of the demo tenant (shown once):\n{token}"
        )?;
    }
    out.flush()?;
    drop(out);
    app::serve(listener, state, app::shutdown_signal()).await?;
    drop(lock);
    Ok(ExitCode::SUCCESS)
}

/// Create and fill the `demo` tenant on first start; on later starts issue a fresh owner
/// token (tokens are shown once, so the old one cannot be printed again). Also returns a
/// draft sales order to confirm, if one is left.
async fn demo_token(state: &AppState) -> anyhow::Result<(String, Option<String>)> {
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
        let (record, token) = state.tenancy.create_tenant(new, &actor).await?;
        let handle = state.tenancy.tenant_db(&id).await?;
        let tenancy = state.tenancy.clone();
        let owner_token = token.clone();
        let draft = handle
            .db
            .write(move |tx| {
                let principal = crate::auth::store::find_principal_by_token(
                    tx,
                    &crate::auth::token::hash(&owner_token),
                )?
                .ok_or(crate::error::Error::NotFound)?;
                let scope = Scope::for_principal(
                    tenancy,
                    std::sync::Arc::new(principal),
                    &record.base_currency,
                );
                demo::seed(tx, &scope)?;
                demo::draft_order(tx)
            })
            .await
            .context("seeding the demo tenant")?;
        return Ok((token, draft));
    }
    state.tenancy.resolve(&id)?;
    let handle = state.tenancy.tenant_db(&id).await?;
    let tid = id.clone();
    Ok(handle
        .db
        .write(move |tx| {
            let token = provision::issue_owner_token(tx, &tid, "demo")?;
            Ok((token, demo::draft_order(tx)?))
        })
        .await?)
}
