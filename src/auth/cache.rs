//! The tenant-scoped principal cache: a resolved principal keyed by (tenant, token hash),
//! so an authenticated request need not read the tenant file to find its caller.
//!
//! Invalidation is by generation: every change to a tenant's users, roles or tokens bumps
//! that tenant's generation, and entries of an older generation are misses. So a revoked
//! token, a deactivated user or a changed role take effect on the very next request.
//! Entries also carry the token's expiry.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;
use time::OffsetDateTime;

use super::Principal;
use crate::tenancy::TenantId;

struct Entry {
    principal: Arc<Principal>,
    generation: u64,
    expires_at: Option<OffsetDateTime>,
}

pub struct AuthCache {
    entries: Mutex<LruCache<(TenantId, String), Entry>>,
    generations: Mutex<HashMap<TenantId, u64>>,
}

impl AuthCache {
    pub fn new(capacity: NonZeroUsize) -> Self {
        Self {
            entries: Mutex::new(LruCache::new(capacity)),
            generations: Mutex::new(HashMap::new()),
        }
    }

    fn generation(&self, tenant: &TenantId) -> u64 {
        *self
            .generations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .unwrap_or(&0)
    }

    pub fn get(&self, tenant: &TenantId, token_hash: &str) -> Option<Arc<Principal>> {
        let generation = self.generation(tenant);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let key = (tenant.clone(), token_hash.to_owned());
        let fresh = entries.get(&key).is_some_and(|e| {
            e.generation == generation && e.expires_at.is_none_or(|t| t > OffsetDateTime::now_utc())
        });
        if fresh {
            return entries.get(&key).map(|e| e.principal.clone());
        }
        entries.pop(&key);
        None
    }

    /// Remember a principal read at `generation` (taken before the read, so a change that
    /// raced the read makes the entry stale rather than wrong).
    pub fn put(
        &self,
        tenant: &TenantId,
        token_hash: &str,
        principal: Arc<Principal>,
        expires_at: Option<OffsetDateTime>,
        generation: u64,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.put(
            (tenant.clone(), token_hash.to_owned()),
            Entry {
                principal,
                generation,
                expires_at,
            },
        );
    }

    pub fn current_generation(&self, tenant: &TenantId) -> u64 {
        self.generation(tenant)
    }

    /// Something about this tenant's identities changed: forget every cached principal.
    pub fn invalidate(&self, tenant: &TenantId) {
        *self
            .generations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(tenant.clone())
            .or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::permission::Permissions;

    fn principal() -> Principal {
        Principal {
            user_id: "u".into(),
            email: "e".into(),
            name: "n".into(),
            token_id: "t".into(),
            roles: vec![],
            perms: Permissions::default(),
            token_expires_at: None,
        }
    }

    #[test]
    fn invalidation_and_expiry_make_entries_misses() {
        let cache = AuthCache::new(NonZeroUsize::new(4).unwrap());
        let (a, b) = (
            TenantId::parse("aa").unwrap(),
            TenantId::parse("bb").unwrap(),
        );
        cache.put(
            &a,
            "h",
            Arc::new(principal()),
            None,
            cache.current_generation(&a),
        );
        cache.put(
            &b,
            "h",
            Arc::new(principal()),
            None,
            cache.current_generation(&b),
        );
        assert!(cache.get(&a, "h").is_some());
        cache.invalidate(&a);
        assert!(cache.get(&a, "h").is_none());
        assert!(cache.get(&b, "h").is_some(), "other tenants are untouched");
        let past = OffsetDateTime::now_utc() - time::Duration::seconds(1);
        cache.put(
            &b,
            "x",
            Arc::new(principal()),
            Some(past),
            cache.current_generation(&b),
        );
        assert!(cache.get(&b, "x").is_none());
    }
}
