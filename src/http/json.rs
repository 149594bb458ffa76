//! Request/response helpers: a `Json` extractor whose rejections are problem+json with
//! the right status (415 wrong type, 400 malformed, 422 wrong shape, 413 too large), the
//! same for query strings, and `If-Match` parsing.

use axum::extract::{FromRequest, FromRequestParts, Request, rejection::JsonRejection};
use axum::http::{HeaderMap, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, FieldError};

/// JSON in and out, with problem+json rejections.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> Error {
    let detail = r.body_text();
    match r.status() {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            Error::UnsupportedMediaType("expected Content-Type: application/json".into())
        }
        StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge,
        StatusCode::UNPROCESSABLE_ENTITY => Error::Invalid(vec![data_error(&detail)]),
        _ => Error::bad_request(format!("malformed JSON body: {detail}")),
    }
}

/// serde's data errors read "Failed to deserialize the JSON body into the target type:
/// name: missing field `x` at line 1 column 2"; pull out the field where there is one.
fn data_error(detail: &str) -> FieldError {
    let msg = detail
        .split_once("target type: ")
        .map_or(detail, |(_, m)| m);
    let field = msg
        .split_once("field `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(f, _)| f.to_owned())
        .or_else(|| {
            msg.split_once(": ")
                .map(|(path, _)| path.to_owned())
                .filter(|p| !p.contains(' '))
        })
        .unwrap_or_else(|| "body".into());
    FieldError::new(field, msg)
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// An action's optional JSON body: empty means the default (`{}` is also accepted).
pub fn optional_body<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => Error::Invalid(vec![data_error(&e.to_string())]),
        _ => Error::bad_request(format!("malformed JSON body: {e}")),
    })
}

/// A query string, with 400 problem+json on failure.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Query(v))
            .map_err(|e| Error::bad_request(format!("invalid query string: {}", e.body_text())))
    }
}

/// `If-Match: "3"` (or `3`) → `Some(3)`; absent or `*` → `None`.
pub fn if_match(headers: &HeaderMap) -> Result<Option<i64>, Error> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .map_err(|_| Error::bad_request("If-Match is not ASCII"))?
        .trim();
    if s == "*" {
        return Ok(None);
    }
    let s = s.strip_prefix("W/").unwrap_or(s).trim_matches('"');
    s.parse()
        .map(Some)
        .map_err(|_| Error::bad_request("If-Match must be a resource version such as \"3\""))
}

/// `ETag: "<version>"`.
pub fn etag(version: i64) -> [(header::HeaderName, String); 1] {
    [(header::ETAG, format!("\"{version}\""))]
}

/// An optional string field of a JSON body (null or absent: `None`; anything else: 422).
pub fn body_str<'a>(
    b: &'a serde_json::Map<String, serde_json::Value>,
    k: &str,
) -> Result<Option<&'a str>, Error> {
    match b.get(k) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::invalid(k, "must be a string")),
    }
}

/// 422 naming every key of a JSON body that is not in `allowed`.
pub fn check_keys(
    b: &serde_json::Map<String, serde_json::Value>,
    allowed: &[&str],
) -> Result<(), Error> {
    let unknown: Vec<crate::error::FieldError> = b
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| crate::error::FieldError::new(k, "unknown field"))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(unknown))
    }
}

/// A resource's `id` and `currency` (`default` when it has none), for attaching its lines.
pub fn id_and_currency(
    item: &serde_json::Map<String, serde_json::Value>,
    default: &str,
) -> (String, String) {
    let text = |k: &str| item.get(k).and_then(serde_json::Value::as_str);
    (
        text("id").unwrap_or_default().to_owned(),
        text("currency").unwrap_or(default).to_owned(),
    )
}

/// A resource with its `ETag` (its `version` field).
pub fn with_etag(status: axum::http::StatusCode, v: impl Into<serde_json::Value>) -> Response {
    let v: serde_json::Value = v.into();
    let version = v
        .get("version")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0);
    (status, etag(version), axum::Json(v)).into_response()
}

/// `?limit=` bounds of API.md.
pub fn page_limit(limit: Option<i64>) -> Result<i64, Error> {
    match limit {
        None => Ok(50),
        Some(n) if (1..=500).contains(&n) => Ok(n),
        Some(_) => Err(Error::bad_field("limit", "must be between 1 and 500")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(if_match(&h).unwrap(), None);
        h.insert(header::IF_MATCH, "\"3\"".parse().unwrap());
        assert_eq!(if_match(&h).unwrap(), Some(3));
        h.insert(header::IF_MATCH, "W/\"4\"".parse().unwrap());
        assert_eq!(if_match(&h).unwrap(), Some(4));
        h.insert(header::IF_MATCH, "abc".parse().unwrap());
        assert!(if_match(&h).is_err());
    }

    #[test]
    fn data_errors_name_the_field() {
        let e = data_error(
            "Failed to deserialize the JSON body into the target type: missing field `name` at line 1 column 9",
        );
        assert_eq!(e.field, "name");
    }
}
