//! Failed-login rate limiting: after `MAX_FAILURES` failures for one (tenant, email) in a
//! window, further attempts get 429 until the window ends — whether or not the email
//! exists, so the limiter reveals nothing either.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lru::LruCache;

use crate::tenancy::TenantId;

pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

pub struct LoginLimiter {
    failures: Mutex<LruCache<(TenantId, String), (u32, Instant)>>,
}

impl LoginLimiter {
    pub fn new(capacity: NonZeroUsize) -> Self {
        Self {
            failures: Mutex::new(LruCache::new(capacity)),
        }
    }

    fn key(tenant: &TenantId, email: &str) -> (TenantId, String) {
        (tenant.clone(), email.trim().to_lowercase())
    }

    /// Seconds to wait, if this key is locked out now.
    pub fn locked_for(&self, tenant: &TenantId, email: &str) -> Option<u64> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let (count, since) = *map.get(&Self::key(tenant, email))?;
        let elapsed = since.elapsed();
        if elapsed >= WINDOW {
            map.pop(&Self::key(tenant, email));
            return None;
        }
        (count >= MAX_FAILURES).then(|| (WINDOW - elapsed).as_secs().max(1))
    }

    pub fn failed(&self, tenant: &TenantId, email: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let key = Self::key(tenant, email);
        let entry = match map.get(&key) {
            Some(&(n, since)) if since.elapsed() < WINDOW => (n + 1, since),
            _ => (1, Instant::now()),
        };
        map.put(key, entry);
    }

    pub fn succeeded(&self, tenant: &TenantId, email: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop(&Self::key(tenant, email));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_failures_per_tenant_and_email() {
        let l = LoginLimiter::new(NonZeroUsize::new(8).unwrap());
        let (a, b) = (
            TenantId::parse("aa").unwrap(),
            TenantId::parse("bb").unwrap(),
        );
        for _ in 0..MAX_FAILURES {
            assert!(l.locked_for(&a, "X@y.z").is_none());
            l.failed(&a, "x@y.z");
        }
        assert!(l.locked_for(&a, "x@Y.z").is_some());
        assert!(l.locked_for(&b, "x@y.z").is_none());
        l.succeeded(&a, "x@y.z");
        assert!(l.locked_for(&a, "x@y.z").is_none());
    }
}
