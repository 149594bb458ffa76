//! `GET /v1/tenants/{id}/backup` (download a consistent copy, taken online) and
//! `PUT /v1/tenants/{id}/backup` (validated, atomic restore). The work is in
//! `tenancy::backup`; here the bytes are streamed in and out without holding a file in
//! memory.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::json::{Json, etag};
use super::tenants::TenantView;
use crate::app::AppState;
use crate::auth::extract::PlatformCaller;
use crate::error::{Error, Problem, Result};
use crate::tenancy::{TenantId, backup, provision};

/// Chunk size for streaming a backup out.
const CHUNK: usize = 256 * 1024;

/// A transactionally consistent copy of the tenant's file, taken while it keeps serving.
#[utoipa::path(get, path = "/v1/tenants/{id}/backup", tag = "tenants", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "the tenant's single SQLite file", content_type = "application/vnd.sqlite3", body = Vec<u8>),
        (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 503, description = "tenant unavailable (restore in progress, pending migration)", body = Problem),
        (status = 507, description = "no space for the copy", body = Problem),
    ))]
pub async fn download_backup(
    State(state): State<AppState>,
    caller: PlatformCaller,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = TenantId::parse(&id)?;
    let layout = &state.tenancy.layout;
    let scratch = layout.backups_dir().join(format!(
        ".{id}.{}{}",
        uuid::Uuid::new_v4().simple(),
        crate::tenancy::layout::PARTIAL_SUFFIX
    ));
    let info = state
        .tenancy
        .backup_to(&id, &scratch, false, &caller.actor)
        .await?;
    let file = tokio::fs::File::open(&info.path).await;
    // Unlinked while open: the bytes stay readable through the handle, and nothing is
    // left behind however the download ends.
    let _ = tokio::fs::remove_file(&info.path).await;
    let file = file?;
    let stream = futures::stream::unfold(file, |mut f| async move {
        let mut buf = vec![0u8; CHUNK];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    let name = backup::default_backup_name(&id);
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.sqlite3".to_owned()),
            (header::CONTENT_LENGTH, info.bytes.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Restore the tenant from a SQLite file (creating the tenant if the id is free): checked,
/// migrated forward, swapped in atomically; on any failure the current data is untouched.
/// The replaced file goes to the trash.
#[utoipa::path(put, path = "/v1/tenants/{id}/backup", tag = "tenants", security(("bearer" = [])),
    params(("id" = String, Path)),
    request_body(description = "a tenant file, e.g. from GET …/backup",
        content(([u8] = "application/vnd.sqlite3"), ([u8] = "application/octet-stream"))),
    responses(
        (status = 200, description = "restored", body = TenantView),
        (status = 401, body = Problem),
        (status = 409, description = "the tenant is in the trash, or another restore runs", body = Problem),
        (status = 413, description = "larger than the restore body limit", body = Problem),
        (status = 415, body = Problem),
        (status = 422, description = "not a SQLite file, corrupt, truncated, not an erpd tenant, another tenant's file, or a newer schema", body = Problem),
        (status = 503, description = "the tenant stayed busy; retry", body = Problem),
        (status = 507, body = Problem),
    ))]
pub async fn restore_backup(
    State(state): State<AppState>,
    caller: PlatformCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let id = TenantId::parse(&id)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match content_type.as_deref() {
        Some("application/vnd.sqlite3" | "application/octet-stream") => {}
        other => {
            return Err(Error::UnsupportedMediaType(format!(
                "a restore body is application/vnd.sqlite3 or application/octet-stream, not {}",
                other.unwrap_or("missing")
            )));
        }
    }
    let staged = state.tenancy.layout.tenant_partial(&id);
    if let Err(e) = receive(body, &staged, state.config.restore_body_limit).await {
        let s = staged.clone();
        let _ = crate::db::blocking(move || {
            provision::remove_db_files(&s);
            Ok(())
        })
        .await;
        return Err(e);
    }
    let record = state
        .tenancy
        .restore_backup(&id, staged, &caller.actor, || {
            state.auth_cache.invalidate(&id)
        })
        .await?;
    let version = record.version;
    let view = TenantView::of(&state, record);
    Ok((StatusCode::OK, etag(version), Json(view)).into_response())
}

/// Stream the request body into `path`, refusing (413) past `limit` bytes.
async fn receive(body: Body, path: &std::path::Path, limit: u64) -> Result<()> {
    let mut file = tokio::fs::File::create(path).await?;
    let mut stream = body.into_data_stream();
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::bad_request(format!("reading the body: {e}")))?;
        total += chunk.len() as u64;
        if total > limit {
            return Err(Error::PayloadTooLarge);
        }
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    Ok(())
}
