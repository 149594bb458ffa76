//! Tenant-customised platform data: currencies (enabled per tenant) and tax rules (the
//! platform default rate per category unless the tenant overrides it). Responses say
//! where each value comes from (`source`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use rusqlite::{Connection, OptionalExtension, named_params};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::access::values::{from_scaled, to_scaled};
use crate::app::AppState;
use crate::audit::{self, AuditEvent};
use crate::auth::extract::TenantCaller;
use crate::error::{Error, Problem, Result};
use crate::http::json::Json;
use crate::identity::require;

/// Scale of tax rates in SQLite (10^-6).
pub const TAX_RATE_SCALE: u32 = 6;

#[derive(Serialize, ToSchema)]
pub struct CurrencyView {
    pub code: String,
    pub name: String,
    pub minor_units: u32,
    pub enabled: bool,
    /// `platform` (default: only the base currency is enabled) or `tenant` (overridden).
    pub source: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct CurrencyList {
    pub items: Vec<CurrencyView>,
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Enable {
    pub enabled: bool,
}

fn currency_overrides(c: &Connection) -> Result<std::collections::HashMap<String, bool>> {
    let mut stmt = c.prepare_cached("SELECT code, enabled FROM tenant_currencies")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? == 1))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every ISO 4217 currency, with whether this tenant uses it.
#[utoipa::path(get, path = "/v1/t/{tenant}/currencies", tag = "reference", security(("bearer" = [])),
    params(("tenant" = String, Path)), responses((status = 200, body = CurrencyList)))]
pub async fn list_currencies(
    State(state): State<AppState>,
    caller: TenantCaller,
) -> Result<Json<CurrencyList>> {
    require(&caller.principal, "currencies", "read")?;
    let overrides = caller.tenant.db.read(currency_overrides).await?;
    let base = &caller.record.base_currency;
    let items = state
        .tenancy
        .reference
        .currencies
        .values()
        .map(|c| {
            let (enabled, source) = match overrides.get(&c.code) {
                Some(e) => (*e, "tenant"),
                None => (&c.code == base, "platform"),
            };
            CurrencyView {
                code: c.code.clone(),
                name: c.name.clone(),
                minor_units: c.minor_units,
                enabled,
                source,
            }
        })
        .collect();
    Ok(Json(CurrencyList {
        items,
        next_cursor: None,
    }))
}

/// Enable or disable a currency for this tenant (the base currency stays enabled).
#[utoipa::path(put, path = "/v1/t/{tenant}/currencies/{code}", tag = "reference", security(("bearer" = [])),
    params(("tenant" = String, Path), ("code" = String, Path)), request_body = Enable,
    responses((status = 200, body = CurrencyView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn set_currency(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path(path): Path<(String, String)>,
    Json(body): Json<Enable>,
) -> Result<Json<CurrencyView>> {
    let (_, code) = path;
    require(&caller.principal, "currencies", "write")?;
    let c = state
        .tenancy
        .reference
        .currency(&code)
        .ok_or(Error::NotFound)?
        .clone();
    if code == caller.record.base_currency && !body.enabled {
        return Err(Error::Conflict(
            "the base currency cannot be disabled".into(),
        ));
    }
    let (p, rid, enabled) = (
        caller.principal.clone(),
        caller.request_id.clone(),
        body.enabled,
    );
    let k = code.clone();
    caller
        .tenant
        .db
        .write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO tenant_currencies (code, enabled, updated_at) VALUES (:c, :e, :now) \
                 ON CONFLICT (code) DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at",
            )?
            .execute(named_params! { ":c": k, ":e": enabled, ":now": crate::clock::now_rfc3339() })?;
            audit::record(tx, &AuditEvent { actor: &p.actor(), action: "update", entity: "currencies", entity_id: Some(&k),
                changes: json!({ "enabled": [null, enabled] }), request_id: rid.as_deref() })
        })
        .await?;
    Ok(Json(CurrencyView {
        code: c.code,
        name: c.name,
        minor_units: c.minor_units,
        enabled,
        source: "tenant",
    }))
}

#[derive(Serialize, ToSchema)]
pub struct TaxRule {
    pub category: String,
    pub name: String,
    /// A fraction: `"0.2"` is 20 %.
    pub rate: String,
    /// `platform` (the default rate) or `tenant` (this tenant's override).
    pub source: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct TaxRuleList {
    pub items: Vec<TaxRule>,
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRate {
    /// A decimal string fraction between 0 and 1, at most 6 decimal places.
    pub rate: serde_json::Value,
}

fn tax_override(c: &Connection, category: &str) -> Result<Option<i64>> {
    Ok(
        c.prepare_cached("SELECT rate FROM tax_rules WHERE category = :c")?
            .query_row(named_params! { ":c": category }, |r| r.get(0))
            .optional()?,
    )
}

/// The effective rate of a tax category for a tenant (used by documents too).
pub fn effective_tax_rate(
    c: &Connection,
    reference: &crate::reference::Reference,
    category: &str,
) -> Result<Option<(Decimal, &'static str)>> {
    let Some(cat) = reference.tax_categories.get(category) else {
        return Ok(None);
    };
    Ok(Some(match tax_override(c, category)? {
        Some(scaled) => (from_scaled(scaled, TAX_RATE_SCALE).normalize(), "tenant"),
        None => (cat.default_rate, "platform"),
    }))
}

async fn rules(
    state: &AppState,
    caller: &TenantCaller,
    only: Option<String>,
) -> Result<Vec<TaxRule>> {
    let t = state.tenancy.clone();
    caller
        .tenant
        .db
        .read(move |c| {
            let mut out = Vec::new();
            for cat in t.reference.tax_categories.values() {
                if only.as_ref().is_some_and(|o| o != &cat.code) {
                    continue;
                }
                if let Some((rate, source)) = effective_tax_rate(c, &t.reference, &cat.code)? {
                    out.push(TaxRule {
                        category: cat.code.clone(),
                        name: cat.name.clone(),
                        rate: rate.to_string(),
                        source,
                    });
                }
            }
            Ok(out)
        })
        .await
}

/// One rule per platform tax category, with this tenant's effective rate.
#[utoipa::path(get, path = "/v1/t/{tenant}/tax-rules", tag = "reference", security(("bearer" = [])),
    params(("tenant" = String, Path)), responses((status = 200, body = TaxRuleList)))]
pub async fn list_tax_rules(
    State(state): State<AppState>,
    caller: TenantCaller,
) -> Result<Json<TaxRuleList>> {
    require(&caller.principal, "tax-rules", "read")?;
    let items = rules(&state, &caller, None).await?;
    Ok(Json(TaxRuleList {
        items,
        next_cursor: None,
    }))
}

/// One category's effective rule.
#[utoipa::path(get, path = "/v1/t/{tenant}/tax-rules/{category}", tag = "reference", security(("bearer" = [])),
    params(("tenant" = String, Path), ("category" = String, Path)), responses((status = 200, body = TaxRule), (status = 404, body = Problem)))]
pub async fn get_tax_rule(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path(path): Path<(String, String)>,
) -> Result<Json<TaxRule>> {
    let (_, category) = path;
    require(&caller.principal, "tax-rules", "read")?;
    rules(&state, &caller, Some(category))
        .await?
        .pop()
        .map(Json)
        .ok_or(Error::NotFound)
}

/// Override a category's rate for this tenant.
#[utoipa::path(put, path = "/v1/t/{tenant}/tax-rules/{category}", tag = "reference", security(("bearer" = [])),
    params(("tenant" = String, Path), ("category" = String, Path)), request_body = SetRate,
    responses((status = 200, body = TaxRule), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn set_tax_rule(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path(path): Path<(String, String)>,
    Json(body): Json<SetRate>,
) -> Result<Json<TaxRule>> {
    let (_, category) = path;
    require(&caller.principal, "tax-rules", "write")?;
    if !state
        .tenancy
        .reference
        .tax_categories
        .contains_key(&category)
    {
        return Err(Error::NotFound);
    }
    let raw = body.rate.as_str().ok_or_else(|| {
        Error::invalid(
            "rate",
            "must be a decimal string such as \"0.2\", not a JSON number",
        )
    })?;
    let rate: Decimal = raw
        .trim()
        .parse()
        .map_err(|_| Error::invalid("rate", "is not a decimal number"))?;
    if rate.is_sign_negative() || rate > Decimal::ONE {
        return Err(Error::invalid(
            "rate",
            "must be a fraction between 0 and 1 (\"0.2\" is 20 %)",
        ));
    }
    let scaled = to_scaled(rate, TAX_RATE_SCALE)
        .ok_or_else(|| Error::invalid("rate", "has more than 6 decimal places"))?;
    let (p, rid, k) = (
        caller.principal.clone(),
        caller.request_id.clone(),
        category.clone(),
    );
    caller
        .tenant
        .db
        .write(move |tx| {
            let before = tax_override(tx, &k)?.map(|v| from_scaled(v, TAX_RATE_SCALE).normalize().to_string());
            tx.prepare_cached(
                "INSERT INTO tax_rules (category, rate, version, updated_at) VALUES (:c, :r, 1, :now) \
                 ON CONFLICT (category) DO UPDATE SET rate = excluded.rate, version = version + 1, updated_at = excluded.updated_at",
            )?
            .execute(named_params! { ":c": k, ":r": scaled, ":now": crate::clock::now_rfc3339() })?;
            audit::record(tx, &AuditEvent { actor: &p.actor(), action: "update", entity: "tax-rules", entity_id: Some(&k),
                changes: json!({ "rate": [before, rate.normalize().to_string()] }), request_id: rid.as_deref() })
        })
        .await?;
    rules(&state, &caller, Some(category))
        .await?
        .pop()
        .map(Json)
        .ok_or(Error::NotFound)
}

/// Drop the override: the platform default applies again.
#[utoipa::path(delete, path = "/v1/t/{tenant}/tax-rules/{category}", tag = "reference", security(("bearer" = [])),
    params(("tenant" = String, Path), ("category" = String, Path)),
    responses((status = 204, description = "back to the platform default"), (status = 404, body = Problem)))]
pub async fn delete_tax_rule(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode> {
    let (_, category) = path;
    require(&caller.principal, "tax-rules", "write")?;
    if !state
        .tenancy
        .reference
        .tax_categories
        .contains_key(&category)
    {
        return Err(Error::NotFound);
    }
    let (p, rid) = (caller.principal.clone(), caller.request_id.clone());
    caller
        .tenant
        .db
        .write(move |tx| {
            let Some(before) = tax_override(tx, &category)? else { return Ok(()) };
            tx.prepare_cached("DELETE FROM tax_rules WHERE category = :c")?.execute(named_params! { ":c": category })?;
            audit::record(tx, &AuditEvent { actor: &p.actor(), action: "delete", entity: "tax-rules", entity_id: Some(&category),
                changes: json!({ "rate": [from_scaled(before, TAX_RATE_SCALE).normalize().to_string(), null] }), request_id: rid.as_deref() })
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
