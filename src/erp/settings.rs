//! Tenant settings: switches such as "sales users see only the customers they own".
//! Only known keys can be set; record rules read the enabled ones in the same transaction
//! as the query they restrict.

use std::collections::BTreeSet;

use rusqlite::{Connection, named_params};

use crate::error::{Error, Result};

/// Every setting a tenant can change, with what it does.
pub const KNOWN: &[(&str, &str)] = &[
    (
        crate::erp::parties::SALES_OWN_CUSTOMERS,
        "sales users see and change only the customers they created",
    ),
    (
        crate::erp::orders::SALES_OWN_ORDERS,
        "sales users see and act only on the sales orders they created",
    ),
    (
        crate::erp::orders::INVOICE_BEFORE_DELIVERY,
        "goods on sales orders may be invoiced before they are delivered",
    ),
    (
        crate::erp::inventory::ALLOW_NEGATIVE_STOCK,
        "deliveries and adjustments may take stock on hand below zero",
    ),
];

/// The keys whose value is `true`.
pub fn enabled(conn: &Connection) -> Result<BTreeSet<String>> {
    let mut stmt = conn.prepare_cached("SELECT key FROM settings WHERE value = 'true'")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn set(tx: &Connection, key: &str, enabled: bool) -> Result<()> {
    if !KNOWN.iter().any(|(k, _)| *k == key) {
        return Err(Error::NotFound);
    }
    tx.prepare_cached(
        "INSERT INTO settings (key, value, updated_at) VALUES (:k, :v, :now) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )?
    .execute(
        named_params! { ":k": key, ":v": enabled.to_string(), ":now": crate::clock::now_rfc3339() },
    )?;
    Ok(())
}

pub mod routes {
    //! `GET /settings`, `PUT /settings/{key}`; `GET /modules`, `GET /features`.

    use axum::extract::{Path, State};
    use serde::{Deserialize, Serialize};
    use serde_json::json;
    use utoipa::ToSchema;

    use crate::app::AppState;
    use crate::audit::{self, AuditEvent};
    use crate::auth::extract::TenantCaller;
    use crate::error::{Error, Problem, Result};
    use crate::http::json::Json;
    use crate::identity::require;

    #[derive(Serialize, ToSchema)]
    pub struct Setting {
        pub key: String,
        pub enabled: bool,
        pub description: String,
    }

    #[derive(Serialize, ToSchema)]
    pub struct SettingList {
        pub items: Vec<Setting>,
        pub next_cursor: Option<String>,
    }

    #[derive(Deserialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct SetSetting {
        pub enabled: bool,
    }

    /// The tenant's settings.
    #[utoipa::path(get, path = "/v1/t/{tenant}/settings", tag = "reference", security(("bearer" = [])),
        params(("tenant" = String, Path)), responses((status = 200, body = SettingList)))]
    pub async fn list_settings(caller: TenantCaller) -> Result<Json<SettingList>> {
        require(&caller.principal, "settings", "read")?;
        let on = caller.tenant.db.read(super::enabled).await?;
        let items = super::KNOWN
            .iter()
            .map(|(k, d)| Setting {
                key: (*k).into(),
                enabled: on.contains(*k),
                description: (*d).into(),
            })
            .collect();
        Ok(Json(SettingList {
            items,
            next_cursor: None,
        }))
    }

    /// Switch a setting on or off (owner and admin).
    #[utoipa::path(put, path = "/v1/t/{tenant}/settings/{key}", tag = "reference", security(("bearer" = [])),
        params(("tenant" = String, Path), ("key" = String, Path)), request_body = SetSetting,
        responses((status = 200, body = Setting), (status = 403, body = Problem), (status = 404, body = Problem)))]
    pub async fn set_setting(
        State(state): State<AppState>,
        caller: TenantCaller,
        Path(path): Path<(String, String)>,
        Json(body): Json<SetSetting>,
    ) -> Result<Json<Setting>> {
        let (_, key) = path;
        require(&caller.principal, "settings", "write")?;
        let description = super::KNOWN
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, d)| *d)
            .ok_or(Error::NotFound)?;
        let (p, rid, k, enabled) = (
            caller.principal.clone(),
            caller.request_id.clone(),
            key.clone(),
            body.enabled,
        );
        caller
            .tenant
            .db
            .write(move |tx| {
                super::set(tx, &k, enabled)?;
                audit::record(
                    tx,
                    &AuditEvent {
                        actor: &p.actor(),
                        action: "update",
                        entity: "settings",
                        entity_id: Some(&k),
                        changes: json!({ "enabled": [null, enabled] }),
                        request_id: rid.as_deref(),
                    },
                )
            })
            .await?;
        state.auth_cache.invalidate(&caller.tenant.id);
        Ok(Json(Setting {
            key,
            enabled,
            description: description.into(),
        }))
    }

    #[derive(Serialize, ToSchema)]
    pub struct Names {
        pub items: Vec<String>,
        pub next_cursor: Option<String>,
    }

    /// The modules enabled for this tenant (set by the platform).
    #[utoipa::path(get, path = "/v1/t/{tenant}/modules", tag = "reference", security(("bearer" = [])),
        params(("tenant" = String, Path)), responses((status = 200, body = Names)))]
    pub async fn list_modules(caller: TenantCaller) -> Json<Names> {
        Json(Names {
            items: caller.record.modules.clone(),
            next_cursor: None,
        })
    }

    /// Feature flags enabled for this tenant (none exist yet).
    #[utoipa::path(get, path = "/v1/t/{tenant}/features", tag = "reference", security(("bearer" = [])),
        params(("tenant" = String, Path)), responses((status = 200, body = Names)))]
    pub async fn list_features(_caller: TenantCaller) -> Json<Names> {
        Json(Names {
            items: Vec::new(),
            next_cursor: None,
        })
    }
}
