//! Passwords: argon2id (the crate's defaults: 19 MiB, 2 passes), PHC strings in the
//! tenant file. Hashing is slow on purpose, so callers run it on a blocking thread and
//! never inside a tenant's write transaction.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

use crate::error::{Error, Result};

/// Shortest password accepted.
pub const MIN_LEN: usize = 10;

pub fn validate(password: &str) -> Result<()> {
    let n = password.chars().count();
    if !(MIN_LEN..=1024).contains(&n) {
        return Err(Error::invalid(
            "password",
            format!("must be {MIN_LEN} to 1024 characters"),
        ));
    }
    Ok(())
}

pub fn hash(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Other(anyhow::anyhow!("password hashing failed: {e}")))
}

/// Verify against a stored hash. With no stored hash (unknown user, token-only user) a
/// dummy verification still runs, so timing does not reveal whether the email exists.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    let argon = Argon2::default();
    match stored {
        Some(h) => argon.verify_password(password.as_bytes(), h).is_ok(),
        None => {
            let _ = argon.verify_password(password.as_bytes(), DUMMY);
            false
        }
    }
}

/// A valid argon2id hash of a random string nobody knows.
const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$yxBBrAGJF2kF7hLM9ZP8uJ6E0IeNzjBgJgeE3x5aCzQ";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_wrong_passwords_do_not() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", Some(&h)));
        assert!(!verify("wrong horse battery", Some(&h)));
        assert!(!verify("anything at all", None));
        assert!(validate("short").is_err());
        // The dummy must parse, or unknown users would be answered measurably faster.
        assert!(argon2::PasswordHash::new(DUMMY).is_ok());
    }
}
