//! HTTP for journal entries, fiscal periods and reports. Accounts are a described entity
//! served by the generic collection routes.

use axum::Router;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use super::model::{self, RATE_SCALE};
use super::posting::{self, Ctx};
use super::{periods, reports, store};
use crate::access::values::from_scaled;
use crate::app::AppState;
use crate::auth::extract::TenantCaller;
use crate::error::{Error, Result};
use crate::http::json::{
    Json as JsonBody, Query, body_str, check_keys, if_match, optional_body, page_limit, with_etag,
};
use crate::idempotency::{self, Stored};
use crate::identity::require;
use crate::reference::Reference;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/t/{tenant}/journal-entries",
            get(list_entries).post(create_entry),
        )
        .route(
            "/v1/t/{tenant}/journal-entries/{id}",
            get(get_entry).patch(update_entry).delete(delete_entry),
        )
        .route("/v1/t/{tenant}/journal-entries/{id}/post", post(post_entry))
        .route(
            "/v1/t/{tenant}/journal-entries/{id}/reverse",
            post(reverse_entry),
        )
        .route(
            "/v1/t/{tenant}/fiscal-periods",
            get(list_periods).post(close_period),
        )
        .route(
            "/v1/t/{tenant}/fiscal-periods/{id}/reopen",
            post(reopen_period),
        )
        .route("/v1/t/{tenant}/reports/trial-balance", get(trial_balance))
        .route(
            "/v1/t/{tenant}/reports/profit-and-loss",
            get(profit_and_loss),
        )
        .route("/v1/t/{tenant}/reports/balance-sheet", get(balance_sheet))
        .route("/v1/t/{tenant}/reports/general-ledger", get(general_ledger))
}

/// What a blocking closure needs to post: owned copies of the caller's context.
struct Owned {
    base: String,
    actor: String,
    user_id: String,
    request_id: Option<String>,
    state: AppState,
}

impl Owned {
    fn new(state: &AppState, caller: &TenantCaller) -> Self {
        Self {
            base: caller.record.base_currency.clone(),
            actor: caller.principal.actor(),
            user_id: caller.principal.user_id.clone(),
            request_id: caller.request_id.clone(),
            state: state.clone(),
        }
    }
    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            base_currency: &self.base,
            reference: &self.state.tenancy.reference,
            actor: &self.actor,
            user_id: &self.user_id,
            request_id: self.request_id.as_deref(),
        }
    }
    fn minor(&self) -> u32 {
        self.state
            .tenancy
            .reference
            .minor_units(&self.base)
            .unwrap_or(2)
    }
}

/// An entry as JSON: base amounts as decimal strings, plus each line's original amount,
/// currency and rate.
fn render(
    c: &rusqlite::Connection,
    h: &store::Header,
    reference: &Reference,
    base: &str,
) -> Result<Json> {
    let minor = reference.minor_units(base).unwrap_or(2);
    let lines = store::load_lines(c, &h.id)?;
    let (td, tc) = lines
        .iter()
        .fold((0, 0), |(d, cr), l| (d + l.debit, cr + l.credit));
    let lines: Vec<Json> = lines
        .iter()
        .map(|l| {
            let lm = reference.minor_units(&l.currency).unwrap_or(2);
            json!({ "account_id": l.account_id, "debit": Decimal::new(l.debit, minor).to_string(),
                    "credit": Decimal::new(l.credit, minor).to_string(), "currency": l.currency,
                    "amount": Decimal::new(l.amount, lm).to_string(),
                    "rate": from_scaled(l.rate, RATE_SCALE).normalize().to_string(), "memo": l.memo })
        })
        .collect();
    Ok(json!({
        "id": h.id, "version": h.version, "number": h.number, "date": h.date, "memo": h.memo, "status": h.status,
        "source": h.source, "source_id": h.source_id, "reversal_of": h.reversal_of, "reversed_by": h.reversed_by,
        "posted_at": h.posted_at, "created_at": h.created_at, "updated_at": h.updated_at,
        "lines": lines, "total_debit": Decimal::new(td, minor).to_string(), "total_credit": Decimal::new(tc, minor).to_string(),
        "currency": base,
    }))
}

fn load(c: &rusqlite::Connection, id: &str, o: &Owned) -> Result<Json> {
    let h = store::find_header(c, id)?.ok_or(Error::NotFound)?;
    render(c, &h, &o.state.tenancy.reference, &o.base)
}

#[derive(Deserialize)]
struct ListParams {
    status: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

async fn list_entries(
    State(state): State<AppState>,
    caller: TenantCaller,
    Query(q): Query<ListParams>,
) -> Result<Response> {
    require(&caller.principal, "journal-entries", "read")?;
    let limit = page_limit(q.limit)?;
    let o = Owned::new(&state, &caller);
    let body = caller
        .tenant
        .db
        .read(move |c| {
            let mut headers = store::list_headers(
                c,
                q.status.as_deref(),
                q.cursor.as_deref().unwrap_or(""),
                limit + 1,
            )?;
            let next = (headers.len() as i64 > limit).then(|| {
                headers.truncate(limit as usize);
                headers.last().map(|h| h.id.clone())
            });
            let items = headers
                .iter()
                .map(|h| render(c, h, &o.state.tenancy.reference, &o.base))
                .collect::<Result<Vec<_>>>()?;
            Ok(json!({ "items": items, "next_cursor": next.flatten() }))
        })
        .await?;
    Ok(axum::Json(body).into_response())
}

async fn create_entry(
    State(state): State<AppState>,
    caller: TenantCaller,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Map<String, Json>>,
) -> Result<Response> {
    require(&caller.principal, "journal-entries", "write")?;
    check_keys(&body, &["date", "memo", "lines", "post"])?;
    let post_now = body.get("post").and_then(Json::as_bool).unwrap_or(false);
    if post_now {
        require(&caller.principal, "journal-entries", "post")?;
    }
    let date = body_str(&body, "date")?
        .ok_or_else(|| Error::invalid("date", "is required"))?
        .to_owned();
    let memo = body_str(&body, "memo")?.map(str::to_owned);
    let lines = model::parse_lines(
        body.get("lines").unwrap_or(&Json::Null),
        &caller.record.base_currency,
        &state.tenancy.reference,
    )?;
    let key = idempotency::key(&headers)?;
    let path = uri.path().to_owned();
    let fingerprint = idempotency::fingerprint("POST", &path, &Json::Object(body));
    let o = Owned::new(&state, &caller);
    let stored = caller
        .tenant
        .db
        .write(move |tx| {
            idempotency::once(tx, &o.user_id, key.as_deref(), &fingerprint, || {
                let ctx = o.ctx();
                let id = posting::create_draft(tx, &ctx, &date, memo.as_deref(), &lines)?;
                if post_now {
                    posting::post(tx, &ctx, &id)?;
                }
                Ok(Stored {
                    status: 201,
                    body: load(tx, &id, &o)?,
                    location: Some(format!("{path}/{id}")),
                })
            })
        })
        .await?;
    Ok(stored.into_response())
}

async fn get_entry(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path(path): Path<(String, String)>,
) -> Result<Response> {
    let (_, id) = path;
    require(&caller.principal, "journal-entries", "read")?;
    let o = Owned::new(&state, &caller);
    let v = caller.tenant.db.read(move |c| load(c, &id, &o)).await?;
    Ok(with_etag(StatusCode::OK, v))
}

async fn update_entry(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Map<String, Json>>,
) -> Result<Response> {
    let (_, id) = path;
    require(&caller.principal, "journal-entries", "write")?;
    check_keys(&body, &["date", "memo", "lines"])?;
    let expected = if_match(&headers)?;
    let date = body_str(&body, "date")?.map(str::to_owned);
    let memo = if body.contains_key("memo") {
        Some(body_str(&body, "memo")?.map(str::to_owned))
    } else {
        None
    };
    let lines = match body.get("lines") {
        Some(l) => Some(model::parse_lines(
            l,
            &caller.record.base_currency,
            &state.tenancy.reference,
        )?),
        None => None,
    };
    let o = Owned::new(&state, &caller);
    let v = caller
        .tenant
        .db
        .write(move |tx| {
            let memo = memo.as_ref().map(|m| m.as_deref());
            posting::update_draft(
                tx,
                &o.ctx(),
                &id,
                expected,
                date.as_deref(),
                memo,
                lines.as_deref(),
            )?;
            load(tx, &id, &o)
        })
        .await?;
    Ok(with_etag(StatusCode::OK, v))
}

async fn delete_entry(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode> {
    let (_, id) = path;
    require(&caller.principal, "journal-entries", "write")?;
    let expected = if_match(&headers)?;
    let o = Owned::new(&state, &caller);
    caller
        .tenant
        .db
        .write(move |tx| {
            let h = store::find_header(tx, &id)?.ok_or(Error::NotFound)?;
            if h.status != "draft" {
                return Err(Error::Conflict(
                    "posted entries are never deleted; reverse them".into(),
                ));
            }
            crate::error::ensure_version(expected, h.version)?;
            store::soft_delete_draft(tx, &id)?;
            crate::audit::record(
                tx,
                &crate::audit::AuditEvent {
                    actor: &o.actor,
                    action: "delete",
                    entity: "journal-entries",
                    entity_id: Some(&id),
                    changes: json!({}),
                    request_id: o.request_id.as_deref(),
                },
            )
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn post_entry(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path(path): Path<(String, String)>,
) -> Result<Response> {
    let (_, id) = path;
    require(&caller.principal, "journal-entries", "post")?;
    let o = Owned::new(&state, &caller);
    let v = caller
        .tenant
        .db
        .write(move |tx| {
            posting::post(tx, &o.ctx(), &id)?;
            load(tx, &id, &o)
        })
        .await?;
    Ok(with_etag(StatusCode::OK, v))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReverseBody {
    date: Option<String>,
}

async fn reverse_entry(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path(path): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response> {
    let (_, id) = path;
    require(&caller.principal, "journal-entries", "reverse")?;
    let date = optional_body::<ReverseBody>(&body)?.date;
    let o = Owned::new(&state, &caller);
    let v = caller
        .tenant
        .db
        .write(move |tx| {
            posting::reverse(tx, &o.ctx(), &id, date.as_deref())?;
            load(tx, &id, &o)
        })
        .await?;
    Ok(with_etag(StatusCode::OK, v))
}

async fn list_periods(caller: TenantCaller) -> Result<Response> {
    require(&caller.principal, "fiscal-periods", "read")?;
    let items = caller.tenant.db.read(store::list_periods).await?;
    Ok(axum::Json(json!({ "items": items, "next_cursor": null })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClosePeriod {
    period: String,
}

async fn close_period(
    State(state): State<AppState>,
    caller: TenantCaller,
    JsonBody(body): JsonBody<ClosePeriod>,
) -> Result<Response> {
    require(&caller.principal, "fiscal-periods", "write")?;
    let o = Owned::new(&state, &caller);
    let minor = o.minor();
    let p = caller
        .tenant
        .db
        .write(move |tx| periods::close(tx, &o.ctx(), &body.period, minor))
        .await?;
    let loc = format!("/v1/t/{}/fiscal-periods/{}", caller.tenant.id, p.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, loc)],
        axum::Json(p),
    )
        .into_response())
}

async fn reopen_period(
    State(state): State<AppState>,
    caller: TenantCaller,
    Path(path): Path<(String, String)>,
) -> Result<Response> {
    let (_, id) = path;
    require(&caller.principal, "fiscal-periods", "reopen")?;
    let o = Owned::new(&state, &caller);
    let p = caller
        .tenant
        .db
        .write(move |tx| periods::reopen(tx, &o.ctx(), &id))
        .await?;
    Ok(axum::Json(p).into_response())
}

#[derive(Deserialize)]
struct ReportParams {
    as_of: Option<String>,
    from: Option<String>,
    to: Option<String>,
    account_id: Option<String>,
}

fn date_param(v: Option<String>, name: &str) -> Result<String> {
    let v = v.ok_or_else(|| Error::bad_field(name, "is required (YYYY-MM-DD)"))?;
    posting::check_date(&v)
        .map_err(|_| Error::bad_field(name, "must be a date such as 2026-11-27"))?;
    Ok(v)
}

async fn report(
    state: AppState,
    caller: TenantCaller,
    f: impl FnOnce(&rusqlite::Connection, u32) -> Result<Json> + Send + 'static,
) -> Result<Response> {
    require(&caller.principal, "reports", "read")?;
    let minor = state
        .tenancy
        .reference
        .minor_units(&caller.record.base_currency)
        .unwrap_or(2);
    let mut v = caller.tenant.db.read(move |c| f(c, minor)).await?;
    v["currency"] = json!(caller.record.base_currency);
    Ok(axum::Json(v).into_response())
}

async fn trial_balance(
    State(state): State<AppState>,
    caller: TenantCaller,
    Query(q): Query<ReportParams>,
) -> Result<Response> {
    let as_of = date_param(q.as_of, "as_of")?;
    report(state, caller, move |c, m| {
        reports::trial_balance(c, &as_of, m)
    })
    .await
}

async fn profit_and_loss(
    State(state): State<AppState>,
    caller: TenantCaller,
    Query(q): Query<ReportParams>,
) -> Result<Response> {
    let (from, to) = (date_param(q.from, "from")?, date_param(q.to, "to")?);
    report(state, caller, move |c, m| {
        reports::profit_and_loss(c, &from, &to, m)
    })
    .await
}

async fn balance_sheet(
    State(state): State<AppState>,
    caller: TenantCaller,
    Query(q): Query<ReportParams>,
) -> Result<Response> {
    let as_of = date_param(q.as_of, "as_of")?;
    report(state, caller, move |c, m| {
        reports::balance_sheet(c, &as_of, m)
    })
    .await
}

async fn general_ledger(
    State(state): State<AppState>,
    caller: TenantCaller,
    Query(q): Query<ReportParams>,
) -> Result<Response> {
    let (from, to) = (date_param(q.from, "from")?, date_param(q.to, "to")?);
    let account = q
        .account_id
        .ok_or_else(|| Error::bad_field("account_id", "is required"))?;
    report(state, caller, move |c, m| {
        reports::general_ledger(c, &account, &from, &to, m)
    })
    .await
}
