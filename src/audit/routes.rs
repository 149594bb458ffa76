//! `GET /v1/t/{tenant}/audit-log`: the tenant's audit entries, newest first. Values of
//! sensitive fields are masked for readers without the field permission, so the log does
//! not leak what the record itself hides.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use utoipa::{IntoParams, ToSchema};

use super::store::{self, Entry, Filter};
use crate::access::entity::Entity;
use crate::access::permission::Permissions;
use crate::auth::extract::TenantCaller;
use crate::error::{Error, Problem, Result};
use crate::http::json::{Json as JsonOut, Query, page_limit};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Collection name, e.g. `customers`.
    pub entity: Option<String>,
    pub entity_id: Option<String>,
    /// RFC 3339: entries at or after this time.
    pub since: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditList {
    pub items: Vec<Entry>,
    pub next_cursor: Option<String>,
}

/// The placeholder for a value the reader may not see.
pub const MASK: &str = "***";

/// Mask the sensitive fields of `changes` the reader cannot read.
pub fn mask(entity: Option<&Entity>, perms: &Permissions, changes: &mut Json) {
    let (Some(entity), Json::Object(map)) = (entity, changes) else {
        return;
    };
    for (field, value) in map.iter_mut() {
        if let Some(f) = entity.field(field)
            && f.sensitive
            && !perms.allows_field(entity.name, f.name, true, "read")
        {
            *value = match value {
                Json::Array(pair) => Json::Array(
                    pair.iter()
                        .map(|v| {
                            if v.is_null() {
                                Json::Null
                            } else {
                                Json::from(MASK)
                            }
                        })
                        .collect(),
                ),
                _ => Json::from(MASK),
            };
        }
    }
}

/// The tenant's audit log.
#[utoipa::path(get, path = "/v1/t/{tenant}/audit-log", tag = "identity", security(("bearer" = [])),
    params(("tenant" = String, Path), AuditParams),
    responses((status = 200, body = AuditList), (status = 403, body = Problem)))]
pub async fn list_audit(
    caller: TenantCaller,
    Query(q): Query<AuditParams>,
) -> Result<JsonOut<AuditList>> {
    let p = &caller.principal;
    if !p.perms.allows("audit-log", "read") {
        return Err(Error::Forbidden("no permission audit-log:read".into()));
    }
    let limit = page_limit(q.limit)?;
    let before = match q.cursor.as_deref() {
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| Error::bad_field("cursor", "invalid cursor"))?,
        ),
        None => None,
    };
    // Stored times are UTC `…Z` text; normalise so any offset compares as an instant.
    let since = match q.since.as_deref() {
        None => None,
        Some(s) => Some(
            crate::clock::parse(s)
                .map(|t| {
                    // Stored times have whole seconds: round a fractional bound up.
                    let whole = t.replace_nanosecond(0).unwrap_or(t);
                    let up = if whole == t {
                        whole
                    } else {
                        whole + time::Duration::seconds(1)
                    };
                    crate::clock::format(up.to_offset(time::UtcOffset::UTC))
                })
                .ok_or_else(|| Error::bad_field("since", "must be an RFC 3339 timestamp"))?,
        ),
    };
    let filter = Filter {
        entity: q.entity,
        entity_id: q.entity_id,
        since,
        before,
        limit: limit + 1,
    };
    let mut items = caller
        .tenant
        .db
        .read(move |c| store::list(c, &filter))
        .await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|e| e.id.to_string())
    } else {
        None
    };
    for e in &mut items {
        let entity = crate::erp::ENTITIES
            .iter()
            .copied()
            .find(|d| d.name == e.entity);
        mask(entity, &p.perms, &mut e.changes);
    }
    Ok(JsonOut(AuditList { items, next_cursor }))
}
