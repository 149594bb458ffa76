//! `Idempotency-Key` for POST: the first response to a key (per tenant user, 24 h) is
//! stored in the same transaction as the change it reports; a repeat with the same request
//! gets that response back and creates nothing; the same key with another request is 422.
//! Because writes to one tenant are serialised, two simultaneous requests with one key
//! cannot both create.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rusqlite::{Connection, OptionalExtension, named_params};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// How long a key is remembered.
const RETENTION_SECS: i64 = 24 * 3600;

/// A stored (or fresh) response to a POST.
#[derive(Debug, Clone)]
pub struct Stored {
    pub status: u16,
    pub body: serde_json::Value,
    pub location: Option<String>,
}

impl IntoResponse for Stored {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let etag = self.body.get("version").and_then(|v| v.as_i64());
        let mut resp = (status, axum::Json(self.body)).into_response();
        if let Some(loc) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            resp.headers_mut().insert(header::LOCATION, loc);
        }
        if let Some(v) = etag.and_then(|v| HeaderValue::from_str(&format!("\"{v}\"")).ok()) {
            resp.headers_mut().insert(header::ETAG, v);
        }
        resp
    }
}

/// The key a client sent, if any (1-255 visible ASCII characters).
pub fn key(headers: &HeaderMap) -> Result<Option<String>> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let k = v
        .to_str()
        .map_err(|_| Error::bad_request("Idempotency-Key must be ASCII"))?
        .trim();
    if k.is_empty() || k.len() > 255 {
        return Err(Error::bad_request(
            "Idempotency-Key must be 1-255 characters",
        ));
    }
    Ok(Some(k.to_owned()))
}

/// A fingerprint of the request: method, path and canonical JSON body.
pub fn fingerprint(method: &str, path: &str, body: &serde_json::Value) -> String {
    let material = format!("{method} {path}\n{body}");
    hex::encode(Sha256::digest(material.as_bytes()))
}

/// Inside the write transaction: replay the stored response for `key`, or run `create`
/// and store what it returns. Without a key, just run `create`.
pub fn once(
    tx: &Connection,
    user_id: &str,
    key: Option<&str>,
    fingerprint: &str,
    create: impl FnOnce() -> Result<Stored>,
) -> Result<Stored> {
    let Some(key) = key else { return create() };
    if let Some(replay) = find(tx, user_id, key, fingerprint)? {
        return Ok(replay);
    }
    let stored = create()?;
    save(tx, user_id, key, fingerprint, &stored)?;
    Ok(stored)
}

/// Inside the write transaction: the stored response for this key, if any.
pub fn find(
    tx: &Connection,
    user_id: &str,
    key: &str,
    fingerprint: &str,
) -> Result<Option<Stored>> {
    let cutoff =
        crate::clock::format(crate::clock::now() - time::Duration::seconds(RETENTION_SECS));
    let row: Option<(String, i64, String, Option<String>)> = tx
        .prepare_cached(
            "SELECT request_hash, status, response, location FROM idempotency_keys \
             WHERE user_id = :u AND key = :k AND created_at > :cutoff",
        )?
        .query_row(
            named_params! { ":u": user_id, ":k": key, ":cutoff": cutoff },
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((hash, status, response, location)) = row else {
        return Ok(None);
    };
    if hash != fingerprint {
        return Err(Error::invalid(
            "Idempotency-Key",
            "this key was already used for a different request",
        ));
    }
    let body = serde_json::from_str(&response).map_err(anyhow::Error::from)?;
    Ok(Some(Stored {
        status: u16::try_from(status).unwrap_or(200),
        body,
        location,
    }))
}

/// Inside the write transaction: remember the response (and forget expired keys).
pub fn save(
    tx: &Connection,
    user_id: &str,
    key: &str,
    fingerprint: &str,
    stored: &Stored,
) -> Result<()> {
    let now = crate::clock::now();
    let cutoff = crate::clock::format(now - time::Duration::seconds(RETENTION_SECS));
    tx.prepare_cached("DELETE FROM idempotency_keys WHERE created_at <= :cutoff")?
        .execute(named_params! { ":cutoff": cutoff })?;
    tx.prepare_cached(
        "INSERT OR REPLACE INTO idempotency_keys (key, user_id, request_hash, status, response, location, created_at) \
         VALUES (:k, :u, :h, :s, :r, :l, :at)",
    )?
    .execute(named_params! {
        ":k": key, ":u": user_id, ":h": fingerprint, ":s": i64::from(stored.status),
        ":r": stored.body.to_string(), ":l": stored.location, ":at": crate::clock::format(now),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_replays_its_first_response_and_refuses_another_request() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::schema::migrate_tenant(&mut c).unwrap();
        let body = serde_json::json!({"name": "A"});
        let fp = fingerprint("POST", "/x", &body);
        assert!(find(&c, "u", "k1", &fp).unwrap().is_none());
        let stored = Stored {
            status: 201,
            body: serde_json::json!({"id": "1"}),
            location: Some("/x/1".into()),
        };
        save(&c, "u", "k1", &fp, &stored).unwrap();
        let replay = find(&c, "u", "k1", &fp).unwrap().unwrap();
        assert_eq!(
            (replay.status, replay.body["id"].as_str()),
            (201, Some("1"))
        );
        let other = fingerprint("POST", "/x", &serde_json::json!({"name": "B"}));
        assert_eq!(find(&c, "u", "k1", &other).unwrap_err().status(), 422);
        assert!(find(&c, "someone-else", "k1", &fp).unwrap().is_none());
    }
}
