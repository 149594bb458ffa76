//! Explicit, audited cross-tenant access. A platform token reads no tenant data; an
//! operator who must look inside a tenant asks for a grant: a short-lived tenant token for
//! a dedicated grant user with the stated roles, recorded with its reason in the platform
//! audit log and in the tenant's own.

use serde_json::json;

use crate::audit::{self, AuditEvent};
use crate::auth::token;
use crate::error::{Error, Result};
use crate::identity;
use crate::tenancy::lifecycle::Actor;
use crate::tenancy::{Tenancy, TenantId};

pub const MAX_TTL_SECS: i64 = 86_400;

pub struct Grant {
    pub token: String,
    pub expires_at: String,
    pub user_id: String,
}

impl Tenancy {
    pub async fn create_access_grant(
        &self,
        id: &TenantId,
        reason: String,
        ttl_seconds: i64,
        roles: Vec<String>,
        actor: &Actor,
    ) -> Result<Grant> {
        let mut errors = Vec::new();
        if reason.trim().len() < 3 || reason.chars().count() > 500 {
            errors.push(crate::error::FieldError::new(
                "reason",
                "state why, in 3-500 characters",
            ));
        }
        if !(1..=MAX_TTL_SECS).contains(&ttl_seconds) {
            errors.push(crate::error::FieldError::new(
                "ttl_seconds",
                format!("must be 1 to {MAX_TTL_SECS}"),
            ));
        }
        if roles.is_empty() {
            errors.push(crate::error::FieldError::new(
                "roles",
                "name at least one role",
            ));
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        self.resolve(id)?;
        let handle = self.tenant_db(id).await?;
        let secret = token::new_tenant_token(id)?;
        let expires_at =
            crate::clock::format(crate::clock::now() + time::Duration::seconds(ttl_seconds));
        let (hash, e, a, r, rs) = (
            token::hash(&secret),
            expires_at.clone(),
            actor.clone(),
            reason.clone(),
            roles.clone(),
        );
        let user_id = handle
            .db
            .write(move |tx| {
                for role in &rs {
                    if identity::role_grants(tx, role)?.is_none() {
                        return Err(Error::invalid(
                            "roles",
                            format!("no role {role:?} in this tenant"),
                        ));
                    }
                }
                let grant_id = uuid::Uuid::now_v7().simple().to_string();
                let email = format!("access-grant+{grant_id}@platform.invalid");
                let name = format!("Access grant for {}", a.name);
                let user_id = identity::store::insert_user(tx, &email, &name, None, true, &rs)?;
                identity::store::insert_token(tx, &user_id, "access-grant", &hash, Some(&e))?;
                audit::record(
                    tx,
                    &AuditEvent {
                        actor: &a.name,
                        action: "create",
                        entity: "access-grants",
                        entity_id: Some(&user_id),
                        changes: json!({ "reason": r, "roles": rs, "expires_at": e }),
                        request_id: a.request_id.as_deref(),
                    },
                )?;
                Ok(user_id)
            })
            .await?;
        let (tid, a, uid, e) = (
            id.clone(),
            actor.clone(),
            user_id.clone(),
            expires_at.clone(),
        );
        self.platform
            .write(move |tx| {
                let details = json!({ "reason": reason, "roles": roles, "ttl_seconds": ttl_seconds, "expires_at": e, "grant_user": uid });
                crate::platform::store::record_audit(tx, &a.name, "access_grant.create", Some(&tid), details, a.request_id.as_deref())
            })
            .await?;
        Ok(Grant {
            token: secret,
            expires_at,
            user_id,
        })
    }
}
