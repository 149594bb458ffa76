//! The one error type of erpd and its rendering as `application/problem+json` (RFC 9457).
//!
//! Handlers and services return [`Result`]; the variant decides the status code and the
//! public `type`/`title`. 5xx bodies stay opaque: the cause is logged once, inside the
//! request's span, and never sent to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One field-level validation failure, as sent in `errors[]`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed request (bad JSON, bad query, invalid tenant id in a path or body).
    #[error("{detail}")]
    BadRequest {
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error("authentication required: {0}")]
    Unauthorized(&'static str),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    /// A business rule refused the action (409) with its own problem type, e.g.
    /// `credit-limit-exceeded`, `insufficient-stock`.
    #[error("{kind}: {detail}")]
    Rule { kind: &'static str, detail: String },
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// Well-formed but invalid input.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("tenant is suspended")]
    Suspended,
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u32 },
    /// The tenant cannot be served right now (pending migration, maintenance, overload).
    #[error("tenant unavailable: {detail}")]
    Unavailable {
        detail: String,
        retry_after_secs: u32,
    },
    /// The tenant's file was written by a newer erpd; this binary refuses to open it.
    #[error("tenant schema version {found} is newer than this erpd supports ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    /// A statement ran past the statement time limit and was interrupted.
    #[error("statement time limit exceeded")]
    StatementTimeout,
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Pool(#[from] r2d2::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Error {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Error::BadRequest {
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn bad_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Error::BadRequest {
            detail: format!("{field}: {message}"),
            errors: vec![FieldError::new(field, message)],
        }
    }

    pub fn rule(kind: &'static str, detail: impl Into<String>) -> Self {
        Error::Rule {
            kind,
            detail: detail.into(),
        }
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Error::Invalid(vec![FieldError::new(field, message)])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::Conflict(_) | Error::Rule { .. } => StatusCode::CONFLICT,
            Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Suspended => StatusCode::LOCKED,
            Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable { .. } | Error::SchemaTooNew { .. } | Error::StatementTimeout => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::Sqlite(e) if is_interrupt(e) => StatusCode::SERVICE_UNAVAILABLE,
            e if e.is_storage_full() => StatusCode::INSUFFICIENT_STORAGE,
            Error::Sqlite(_) | Error::Pool(_) | Error::Io(_) | Error::Other(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The stable, machine-readable problem type slug.
    fn kind(&self) -> &'static str {
        match self {
            Error::BadRequest { .. } => "bad-request",
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound => "not-found",
            Error::Conflict(_) => "conflict",
            Error::Rule { kind, .. } => kind,
            Error::PayloadTooLarge => "payload-too-large",
            Error::UnsupportedMediaType(_) => "unsupported-media-type",
            Error::Invalid(_) => "validation-failed",
            Error::Suspended => "tenant-suspended",
            Error::RateLimited { .. } => "rate-limited",
            Error::Unavailable { .. } => "tenant-unavailable",
            Error::SchemaTooNew { .. } => "tenant-schema-too-new",
            Error::StatementTimeout => "statement-timeout",
            Error::Sqlite(e) if is_interrupt(e) => "statement-timeout",
            e if e.is_storage_full() => "storage-full",
            Error::Sqlite(_) | Error::Pool(_) | Error::Io(_) | Error::Other(_) => "internal",
        }
    }

    fn detail(&self) -> String {
        match self {
            Error::Invalid(errors) => errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; "),
            Error::Sqlite(e) if is_interrupt(e) => Error::StatementTimeout.to_string(),
            Error::Unauthorized(why) => why.to_string(),
            Error::Forbidden(why) | Error::Conflict(why) => why.clone(),
            Error::Rule { detail, .. } => detail.clone(),
            Error::Unavailable { detail, .. } => detail.clone(),
            e if e.is_storage_full() => "the tenant's storage is full (its size quota is \
                reached, or the disk is full): writes are refused, reads keep working; \
                delete data or ask the operator to raise the quota"
                .into(),
            // Never leak internals: the cause is logged, not sent.
            Error::Sqlite(_) | Error::Pool(_) | Error::Io(_) | Error::Other(_) => {
                "internal error; the request id identifies it in the server log".into()
            }
            other => other.to_string(),
        }
    }
}

impl Error {
    /// SQLITE_FULL (a `max_page_count` quota or a full disk) or ENOSPC: a 507, not a 500.
    pub fn is_storage_full(&self) -> bool {
        match self {
            Error::Sqlite(e) => e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull),
            Error::Io(e) => e.kind() == std::io::ErrorKind::StorageFull,
            _ => false,
        }
    }
}

fn is_interrupt(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted)
}

/// The RFC 9457 body. `errors` appears only for validation failures.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// Marks a response whose error was already logged with its cause, so the trace layer
/// can log 5xx causes once, inside the request span.
#[derive(Clone, Debug)]
pub struct LoggedCause(pub String);

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let errors = match &self {
            Error::Invalid(errors) | Error::BadRequest { errors, .. } => errors.clone(),
            _ => Vec::new(),
        };
        let problem = Problem {
            kind: format!("https://erpd.dev/problems/{}", self.kind()),
            title: status.canonical_reason().unwrap_or("error").to_string(),
            status: status.as_u16(),
            detail: self.detail(),
            errors,
        };
        if status.is_server_error() {
            tracing::error!(error = %self, debug = ?self, "request failed");
        }
        let retry_after = match &self {
            Error::Unavailable {
                retry_after_secs, ..
            }
            | Error::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        problem_response(status, &problem, retry_after)
    }
}

/// Renders a problem body; also used for rejections produced outside handlers.
pub fn problem_response(
    status: StatusCode,
    problem: &Problem,
    retry_after: Option<u32>,
) -> Response {
    let body = serde_json::to_vec(problem).unwrap_or_default();
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if let Some(secs) = retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// Optimistic concurrency: an `If-Match` version that is not the current one is a 409.
pub fn ensure_version(expected: Option<i64>, current: i64) -> Result<()> {
    match expected {
        Some(v) if v != current => Err(Error::Conflict(format!(
            "version mismatch: If-Match {v}, current version {current}"
        ))),
        _ => Ok(()),
    }
}

/// Translate SQLite constraint failures into domain errors at the call site.
pub trait ResultExt<T> {
    fn on_constraint(self, needle: &str, f: impl FnOnce() -> Error) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn on_constraint(self, needle: &str, f: impl FnOnce() -> Error) -> Result<T> {
        self.map_err(|e| match e.into() {
            Error::Sqlite(rusqlite::Error::SqliteFailure(code, Some(msg)))
                if code.code == rusqlite::ErrorCode::ConstraintViolation
                    && msg.contains(needle) =>
            {
                f()
            }
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_are_opaque() {
        let e = Error::Other(anyhow::anyhow!("secret path /etc/x"));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.detail().contains("/etc/x"));
    }

    #[test]
    fn unavailable_carries_retry_after() {
        let resp = Error::Unavailable {
            detail: "x".into(),
            retry_after_secs: 7,
        }
        .into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "7");
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }

    #[test]
    fn a_full_quota_is_507_and_reads_still_work() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x BLOB); PRAGMA max_page_count=3;")
            .unwrap();
        let full = conn
            .execute("INSERT INTO t VALUES (zeroblob(100000))", [])
            .map_err(Error::from)
            .unwrap_err();
        assert_eq!(full.status(), StatusCode::INSUFFICIENT_STORAGE);
        assert!(full.detail().contains("quota"));
        let n: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn constraint_violations_map_at_call_site() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY)")
            .unwrap();
        conn.execute("INSERT INTO t VALUES ('a')", []).unwrap();
        let r = conn
            .execute("INSERT INTO t VALUES ('a')", [])
            .on_constraint("t.k", || Error::Conflict("taken".into()));
        assert!(matches!(r, Err(Error::Conflict(_))));
    }
}
