//! `TenantId`: the validated slug that names a tenant. Parse, don't validate: once a value
//! is a `TenantId` it is safe to put in a file name, a log line or a cache key.

use std::fmt;

use crate::error::Error;

/// A tenant id: `^[a-z0-9][a-z0-9-]{1,62}$` (2–63 characters). Nothing else — no dots,
/// slashes, upper case, NUL or percent escapes — can ever become part of a path.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    pub const MAX_LEN: usize = 63;

    pub fn parse(raw: &str) -> Result<Self, Error> {
        if is_valid(raw) {
            Ok(TenantId(raw.to_owned()))
        } else {
            Err(Error::bad_field(
                "id",
                "tenant ids are 2-63 characters of a-z, 0-9 and '-', starting with a letter or digit",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_valid(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    (2..=TenantId::MAX_LEN).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase() | bytes[0].is_ascii_digit()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({})", self.0)
    }
}

impl std::str::FromStr for TenantId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        TenantId::parse(s)
    }
}

impl serde::Serialize for TenantId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_slugs() {
        for ok in ["ab", "acme", "acme-2", "0a", &"a".repeat(63)] {
            assert!(TenantId::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_anything_path_like_or_odd() {
        let long = "a".repeat(64);
        for bad in [
            "", "a", "A", "Acme", "../x", "..", "%2e%2e", "a/b", "a\\b", "a\0b", "-ab", "a_b",
            "a.b", "é1", " ab", &long,
        ] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
