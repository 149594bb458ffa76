//! Bearer tokens. A token is 32 random bytes, hex-encoded, behind a prefix that says what
//! it may act on: `erpdp_…` for the platform, `erpdt_<tenant>_…` for one tenant. Embedding
//! the tenant binds the token to it: presented on another tenant's path it is refused
//! (404) without touching that tenant's file. Only the SHA-256 of a token is stored; the
//! tokens are high-entropy, so a slow password hash would buy nothing here.

use sha2::{Digest, Sha256};

use crate::tenancy::TenantId;

const PLATFORM_PREFIX: &str = "erpdp_";
const TENANT_PREFIX: &str = "erpdt_";

/// What a presented bearer token claims to be (before any lookup).
#[derive(Debug, PartialEq, Eq)]
pub enum Presented<'a> {
    Platform,
    Tenant(&'a str),
    Malformed,
}

pub fn classify(token: &str) -> Presented<'_> {
    if let Some(secret) = token.strip_prefix(PLATFORM_PREFIX) {
        return if is_secret(secret) {
            Presented::Platform
        } else {
            Presented::Malformed
        };
    }
    if let Some(rest) = token.strip_prefix(TENANT_PREFIX) {
        // Tenant ids never contain '_', so the first '_' ends the id.
        if let Some((tenant, secret)) = rest.split_once('_')
            && is_secret(secret)
        {
            return Presented::Tenant(tenant);
        }
    }
    Presented::Malformed
}

fn is_secret(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(hex::encode(bytes))
}

pub fn new_platform_token() -> anyhow::Result<String> {
    Ok(format!("{PLATFORM_PREFIX}{}", secret()?))
}

pub fn new_tenant_token(tenant: &TenantId) -> anyhow::Result<String> {
    Ok(format!("{TENANT_PREFIX}{tenant}_{}", secret()?))
}

/// The stored form of a token.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Read `Authorization: Bearer <token>`.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_say_what_they_act_on() {
        let t = TenantId::parse("acme-2").unwrap();
        let tt = new_tenant_token(&t).unwrap();
        assert_eq!(classify(&tt), Presented::Tenant("acme-2"));
        assert_eq!(
            classify(&new_platform_token().unwrap()),
            Presented::Platform
        );
        assert_eq!(classify("erpdt_acme"), Presented::Malformed);
        assert_eq!(classify("erpdp_xyz"), Presented::Malformed);
        assert_eq!(classify("Bearer"), Presented::Malformed);
    }

    #[test]
    fn tokens_are_unique_and_hashes_stable() {
        let a = new_platform_token().unwrap();
        assert_ne!(a, new_platform_token().unwrap());
        assert_eq!(hash(&a), hash(&a));
        assert_eq!(hash(&a).len(), 64);
    }
}
