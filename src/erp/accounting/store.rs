//! All SQL of the accounting area.

use rusqlite::{Connection, OptionalExtension, named_params};
use rust_decimal::Decimal;
use serde::Serialize;

use super::model::{BaseLine, RATE_SCALE};
use crate::access::values::from_scaled;
use crate::error::{Error, Result};

/// An account as the posting rules need it.
pub struct AccountInfo {
    pub active: bool,
    pub kind: String,
}

pub fn find_account(c: &Connection, id: &str) -> Result<Option<AccountInfo>> {
    Ok(
        c.prepare_cached(
            "SELECT active, type FROM accounts WHERE id = :id AND deleted_at IS NULL",
        )?
        .query_row(named_params! { ":id": id }, |r| {
            Ok(AccountInfo {
                active: r.get::<_, i64>(0)? == 1,
                kind: r.get(1)?,
            })
        })
        .optional()?,
    )
}

/// The account the posting API books a purpose to (`receivable`, `rounding`, …).
pub fn account_by_key(c: &Connection, key: &str) -> Result<String> {
    c.prepare_cached("SELECT id FROM accounts WHERE system_key = :k AND deleted_at IS NULL")?
        .query_row(named_params! { ":k": key }, |r| r.get(0))
        .optional()?
        .ok_or_else(|| Error::Conflict(format!("the chart of accounts has no {key} account")))
}

pub fn has_postings(c: &Connection, account_id: &str) -> Result<bool> {
    Ok(
        c.prepare_cached("SELECT 1 FROM journal_lines WHERE account_id = :a LIMIT 1")?
            .exists(named_params! { ":a": account_id })?,
    )
}

/// Latest rate `from → to` on or before `date` (inverting `to → from` if only that exists).
pub fn rate_on(c: &Connection, from: &str, to: &str, date: &str) -> Result<Option<Decimal>> {
    let sql = "SELECT rate FROM exchange_rates WHERE \"from\" = :f AND \"to\" = :t AND date <= :d \
               AND deleted_at IS NULL ORDER BY date DESC LIMIT 1";
    let direct: Option<i64> = c
        .prepare_cached(sql)?
        .query_row(named_params! { ":f": from, ":t": to, ":d": date }, |r| {
            r.get(0)
        })
        .optional()?;
    if let Some(r) = direct {
        return Ok(Some(from_scaled(r, RATE_SCALE)));
    }
    let inverse: Option<i64> = c
        .prepare_cached(sql)?
        .query_row(named_params! { ":f": to, ":t": from, ":d": date }, |r| {
            r.get(0)
        })
        .optional()?;
    Ok(inverse.and_then(|r| Decimal::ONE.checked_div(from_scaled(r, RATE_SCALE))))
}

/// The closed period covering `date`, if any.
pub fn closed_period_on(c: &Connection, date: &str) -> Result<Option<String>> {
    Ok(c.prepare_cached(
        "SELECT id FROM fiscal_periods WHERE status = 'closed' AND start_date <= :d AND end_date >= :d LIMIT 1",
    )?
    .query_row(named_params! { ":d": date }, |r| r.get(0))
    .optional()?)
}

/// The next number of a gapless sequence, in the caller's transaction: a rollback gives
/// the number back, so there are no gaps.
pub fn next_number(tx: &Connection, scope: &str, year: i64) -> Result<i64> {
    Ok(tx
        .prepare_cached(
            "INSERT INTO number_sequences (scope, year, last) VALUES (:s, :y, 1) \
         ON CONFLICT (scope, year) DO UPDATE SET last = last + 1 RETURNING last",
        )?
        .query_row(named_params! { ":s": scope, ":y": year }, |r| r.get(0))?)
}

pub struct NewEntry<'a> {
    pub id: &'a str,
    pub date: &'a str,
    pub memo: Option<&'a str>,
    pub source: &'a str,
    pub source_id: Option<&'a str>,
    pub reversal_of: Option<&'a str>,
    pub owner: &'a str,
}

pub fn insert_entry(tx: &Connection, e: &NewEntry<'_>) -> Result<()> {
    let now = crate::clock::now_rfc3339();
    tx.prepare_cached(
        "INSERT INTO journal_entries (id, version, created_at, updated_at, owner_id, date, memo, status, source, source_id, reversal_of) \
         VALUES (:id, 1, :now, :now, :owner, :date, :memo, 'draft', :source, :sid, :rev)",
    )?
    .execute(named_params! {
        ":id": e.id, ":now": now, ":owner": e.owner, ":date": e.date, ":memo": e.memo,
        ":source": e.source, ":sid": e.source_id, ":rev": e.reversal_of,
    })?;
    Ok(())
}

pub fn replace_lines(
    tx: &Connection,
    entry_id: &str,
    date: &str,
    lines: &[BaseLine],
) -> Result<()> {
    tx.prepare_cached("DELETE FROM journal_lines WHERE entry_id = :id")?
        .execute(named_params! { ":id": entry_id })?;
    let mut stmt = tx.prepare_cached(
        "INSERT INTO journal_lines (entry_id, line_no, account_id, debit, credit, currency, amount, rate, memo, date) \
         VALUES (:e, :n, :a, :d, :c, :cur, :amt, :rate, :memo, :date)",
    )?;
    for (i, l) in lines.iter().enumerate() {
        stmt.execute(named_params! {
            ":e": entry_id, ":n": i as i64, ":a": l.account_id, ":d": l.debit, ":c": l.credit,
            ":cur": l.currency, ":amt": l.amount, ":rate": l.rate, ":memo": l.memo, ":date": date,
        })?;
    }
    Ok(())
}

pub fn load_lines(c: &Connection, entry_id: &str) -> Result<Vec<BaseLine>> {
    let mut stmt = c.prepare_cached(
        "SELECT account_id, debit, credit, currency, amount, rate, memo FROM journal_lines WHERE entry_id = :e ORDER BY line_no",
    )?;
    let rows = stmt.query_map(named_params! { ":e": entry_id }, |r| {
        Ok(BaseLine {
            account_id: r.get(0)?,
            debit: r.get(1)?,
            credit: r.get(2)?,
            currency: r.get(3)?,
            amount: r.get(4)?,
            rate: r.get(5)?,
            memo: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Header of an entry.
#[derive(Debug, Clone)]
pub struct Header {
    pub id: String,
    pub version: i64,
    pub date: String,
    pub memo: Option<String>,
    pub status: String,
    pub number: Option<String>,
    pub source: String,
    pub source_id: Option<String>,
    pub reversal_of: Option<String>,
    pub reversed_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub posted_at: Option<String>,
}

const HEADER: &str = "id, version, date, memo, status, number, source, source_id, reversal_of, reversed_by, created_at, updated_at, posted_at";

fn header_from_row(r: &rusqlite::Row) -> rusqlite::Result<Header> {
    Ok(Header {
        id: r.get(0)?,
        version: r.get(1)?,
        date: r.get(2)?,
        memo: r.get(3)?,
        status: r.get(4)?,
        number: r.get(5)?,
        source: r.get(6)?,
        source_id: r.get(7)?,
        reversal_of: r.get(8)?,
        reversed_by: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
        posted_at: r.get(12)?,
    })
}

pub fn find_header(c: &Connection, id: &str) -> Result<Option<Header>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {HEADER} FROM journal_entries WHERE id = :id AND deleted_at IS NULL"
    ))?
    .query_row(named_params! { ":id": id }, header_from_row)
    .optional()?)
}

pub fn list_headers(
    c: &Connection,
    status: Option<&str>,
    after: &str,
    limit: i64,
) -> Result<Vec<Header>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {HEADER} FROM journal_entries WHERE deleted_at IS NULL AND (:s IS NULL OR status = :s) AND id > :after \
         ORDER BY id LIMIT :limit"
    ))?;
    let rows = stmt.query_map(
        named_params! { ":s": status, ":after": after, ":limit": limit },
        header_from_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn update_draft(tx: &Connection, id: &str, date: &str, memo: Option<&str>) -> Result<()> {
    tx.prepare_cached(
        "UPDATE journal_entries SET date = :d, memo = :m, version = version + 1, updated_at = :now WHERE id = :id",
    )?
    .execute(named_params! { ":d": date, ":m": memo, ":now": crate::clock::now_rfc3339(), ":id": id })?;
    Ok(())
}

pub fn mark_posted(tx: &Connection, id: &str, number: &str, year: i64, seq: i64) -> Result<()> {
    let now = crate::clock::now_rfc3339();
    tx.prepare_cached(
        "UPDATE journal_entries SET status = 'posted', number = :n, fiscal_year = :y, seq = :s, posted_at = :now, \
         version = version + 1, updated_at = :now WHERE id = :id",
    )?
    .execute(named_params! { ":n": number, ":y": year, ":s": seq, ":now": now, ":id": id })?;
    tx.prepare_cached("UPDATE journal_lines SET posted = 1 WHERE entry_id = :id")?
        .execute(named_params! { ":id": id })?;
    Ok(())
}

pub fn set_reversed_by(tx: &Connection, id: &str, by: &str) -> Result<()> {
    tx.prepare_cached(
        "UPDATE journal_entries SET reversed_by = :b, version = version + 1, updated_at = :now WHERE id = :id",
    )?
    .execute(named_params! { ":b": by, ":now": crate::clock::now_rfc3339(), ":id": id })?;
    Ok(())
}

pub fn soft_delete_draft(tx: &Connection, id: &str) -> Result<()> {
    let now = crate::clock::now_rfc3339();
    tx.prepare_cached("UPDATE journal_entries SET deleted_at = :now, version = version + 1, updated_at = :now WHERE id = :id")?
        .execute(named_params! { ":now": now, ":id": id })?;
    Ok(())
}

// ---- reports ----

/// Posted totals of one account.
#[derive(Debug, Clone, Serialize)]
pub struct AccountTotals {
    pub account_id: String,
    pub code: String,
    pub name: String,
    pub kind: String,
    pub debit: i64,
    pub credit: i64,
}

/// Posted debit/credit per account with lines dated in `[from, to]`, in one indexed pass.
pub fn totals(c: &Connection, from: &str, to: &str) -> Result<Vec<AccountTotals>> {
    let mut stmt = c.prepare_cached(
        "SELECT a.id, a.code, a.name, a.type, t.debit, t.credit FROM accounts a JOIN ( \
             SELECT account_id, SUM(debit) AS debit, SUM(credit) AS credit FROM journal_lines \
             WHERE posted = 1 AND date >= :from AND date <= :to GROUP BY account_id \
         ) t ON t.account_id = a.id ORDER BY a.code",
    )?;
    let rows = stmt.query_map(named_params! { ":from": from, ":to": to }, |r| {
        Ok(AccountTotals {
            account_id: r.get(0)?,
            code: r.get(1)?,
            name: r.get(2)?,
            kind: r.get(3)?,
            debit: r.get(4)?,
            credit: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// One posted line of an account, for the general ledger.
#[derive(Debug, Clone)]
pub struct LedgerLine {
    pub entry_id: String,
    pub number: Option<String>,
    pub date: String,
    pub memo: Option<String>,
    pub debit: i64,
    pub credit: i64,
}

pub fn ledger(
    c: &Connection,
    account_id: &str,
    from: &str,
    to: &str,
    limit: i64,
) -> Result<Vec<LedgerLine>> {
    let mut stmt = c.prepare_cached(
        "SELECT l.entry_id, e.number, l.date, COALESCE(l.memo, e.memo), l.debit, l.credit FROM journal_lines l \
         JOIN journal_entries e ON e.id = l.entry_id \
         WHERE l.posted = 1 AND l.account_id = :a AND l.date >= :from AND l.date <= :to \
         ORDER BY l.date, e.fiscal_year, e.seq, l.line_no LIMIT :limit",
    )?;
    let rows = stmt.query_map(
        named_params! { ":a": account_id, ":from": from, ":to": to, ":limit": limit },
        |r| {
            Ok(LedgerLine {
                entry_id: r.get(0)?,
                number: r.get(1)?,
                date: r.get(2)?,
                memo: r.get(3)?,
                debit: r.get(4)?,
                credit: r.get(5)?,
            })
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn balance_before(c: &Connection, account_id: &str, date: &str) -> Result<(i64, i64)> {
    Ok(c.prepare_cached(
        "SELECT COALESCE(SUM(debit), 0), COALESCE(SUM(credit), 0) FROM journal_lines \
         WHERE posted = 1 AND account_id = :a AND date < :d",
    )?
    .query_row(named_params! { ":a": account_id, ":d": date }, |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?)
}

// ---- fiscal periods ----

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Period {
    pub id: String,
    pub kind: String,
    pub start_date: String,
    pub end_date: String,
    pub status: String,
    pub closing_entry_id: Option<String>,
    pub version: i64,
}

pub fn find_period(c: &Connection, id: &str) -> Result<Option<Period>> {
    Ok(c.prepare_cached("SELECT id, kind, start_date, end_date, status, closing_entry_id, version FROM fiscal_periods WHERE id = :id")?
        .query_row(named_params! { ":id": id }, |r| {
            Ok(Period { id: r.get(0)?, kind: r.get(1)?, start_date: r.get(2)?, end_date: r.get(3)?, status: r.get(4)?, closing_entry_id: r.get(5)?, version: r.get(6)? })
        })
        .optional()?)
}

pub fn list_periods(c: &Connection) -> Result<Vec<Period>> {
    let mut stmt = c.prepare_cached("SELECT id FROM fiscal_periods ORDER BY start_date, kind")?;
    let ids: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    ids.iter()
        .filter_map(|id| find_period(c, id).transpose())
        .collect()
}

pub fn upsert_period(tx: &Connection, p: &Period) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO fiscal_periods (id, kind, start_date, end_date, status, closing_entry_id, version, updated_at) \
         VALUES (:id, :k, :s, :e, :st, :ce, 1, :now) ON CONFLICT (id) DO UPDATE SET status = excluded.status, \
         closing_entry_id = COALESCE(excluded.closing_entry_id, closing_entry_id), version = version + 1, updated_at = excluded.updated_at",
    )?
    .execute(named_params! {
        ":id": p.id, ":k": p.kind, ":s": p.start_date, ":e": p.end_date, ":st": p.status,
        ":ce": p.closing_entry_id, ":now": crate::clock::now_rfc3339(),
    })?;
    Ok(())
}
