//! `Scope`: what a tenant request's data access needs (the caller's permissions, the
//! tenant's base currency, the platform reference data), owned so it can move onto the
//! blocking pool, and how to turn it into the access layer's `Viewer` and `Ctx`.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::access::query::Viewer;
use crate::access::store::Act;
use crate::access::values::Ctx;
use crate::app::AppState;
use crate::auth::Principal;
use crate::auth::extract::TenantCaller;
use crate::tenancy::Tenancy;

pub struct Scope {
    pub principal: Arc<Principal>,
    pub base_currency: String,
    pub actor: String,
    pub request_id: Option<String>,
    tenancy: Arc<Tenancy>,
}

impl Scope {
    pub fn new(state: &AppState, caller: &TenantCaller) -> Self {
        Self {
            principal: caller.principal.clone(),
            base_currency: caller.record.base_currency.clone(),
            actor: caller.principal.actor(),
            request_id: caller.request_id.clone(),
            tenancy: state.tenancy.clone(),
        }
    }

    /// A scope outside any HTTP request (the demo seeder acts as the tenant's owner).
    pub fn for_principal(
        tenancy: Arc<Tenancy>,
        principal: Arc<Principal>,
        base_currency: &str,
    ) -> Self {
        Self {
            actor: principal.actor(),
            principal,
            base_currency: base_currency.to_owned(),
            request_id: None,
            tenancy,
        }
    }

    pub fn viewer<'a>(&'a self, settings: &'a BTreeSet<String>) -> Viewer<'a> {
        Viewer {
            perms: &self.principal.perms,
            user_id: &self.principal.user_id,
            roles: &self.principal.roles,
            settings,
        }
    }

    pub fn ctx(&self) -> Ctx<'_> {
        Ctx {
            reference: &self.tenancy.reference,
            base_currency: &self.base_currency,
        }
    }

    pub fn reference(&self) -> &crate::reference::Reference {
        &self.tenancy.reference
    }

    /// The accounting posting context of this caller.
    pub fn posting(&self) -> crate::erp::accounting::posting::Ctx<'_> {
        crate::erp::accounting::posting::Ctx {
            base_currency: &self.base_currency,
            reference: &self.tenancy.reference,
            actor: &self.actor,
            user_id: &self.principal.user_id,
            request_id: self.request_id.as_deref(),
        }
    }

    /// An audit entry of this caller's request.
    pub fn audit(
        &self,
        tx: &rusqlite::Connection,
        entity: &str,
        action: &str,
        id: &str,
        changes: serde_json::Value,
    ) -> crate::error::Result<()> {
        crate::audit::record(
            tx,
            &crate::audit::AuditEvent {
                actor: &self.actor,
                action,
                entity,
                entity_id: Some(id),
                changes,
                request_id: self.request_id.as_deref(),
            },
        )
    }

    pub fn act(&self) -> Act<'_> {
        Act {
            actor: &self.actor,
            request_id: self.request_id.as_deref(),
        }
    }
}
