//! Fiscal periods: closing a month or a year locks posting on its dates; closing a year
//! first posts the entry that moves the year's income and expenses into retained earnings.
//! Reopening (with its own permission) unlocks, and for a year reverses that entry.

use rust_decimal::Decimal;

use super::posting::{self, Ctx, Posting};
use super::store::{self, Period};
use crate::error::{Error, Result};

/// `2026-11` → a month, `2026` → a year; returns (kind, start, end).
pub fn parse_period(id: &str) -> Result<(&'static str, String, String)> {
    let bad = || Error::invalid("period", "a month such as 2026-11 or a year such as 2026");
    match id.len() {
        4 => {
            let y: i32 = id.parse().map_err(|_| bad())?;
            Ok(("year", format!("{y:04}-01-01"), format!("{y:04}-12-31")))
        }
        7 => {
            let (y, m) = id.split_once('-').ok_or_else(bad)?;
            let (y, m): (i32, u8) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
            let month = time::Month::try_from(m).map_err(|_| bad())?;
            let days = month.length(y);
            Ok((
                "month",
                format!("{y:04}-{m:02}-01"),
                format!("{y:04}-{m:02}-{days:02}"),
            ))
        }
        _ => Err(bad()),
    }
}

pub fn close(
    tx: &rusqlite::Connection,
    ctx: &Ctx<'_>,
    id: &str,
    base_minor: u32,
) -> Result<Period> {
    let (kind, start, end) = parse_period(id)?;
    if store::find_period(tx, id)?.is_some_and(|p| p.status == "closed") {
        return Err(Error::Conflict(format!("period {id} is already closed")));
    }
    let mut closing_entry_id = None;
    if kind == "year" {
        // Move each P&L account's balance for the year to retained earnings.
        let totals = store::totals(tx, &start, &end)?;
        let retained = store::account_by_key(tx, "retained_earnings")?;
        let mut postings = Vec::new();
        let mut net = 0i64;
        for t in totals
            .iter()
            .filter(|t| t.kind == "income" || t.kind == "expense")
        {
            let balance = t.debit - t.credit; // debit-positive
            if balance == 0 {
                continue;
            }
            net += balance;
            let amount = Decimal::new(balance.abs(), base_minor);
            let (debit, credit) = if balance > 0 {
                (Decimal::ZERO, amount)
            } else {
                (amount, Decimal::ZERO)
            };
            postings.push(Posting {
                account: &t.account_id,
                debit,
                credit,
                currency: None,
                memo: None,
            });
        }
        if !postings.is_empty() {
            let amount = Decimal::new(net.abs(), base_minor);
            let (debit, credit) = if net > 0 {
                (amount, Decimal::ZERO)
            } else {
                (Decimal::ZERO, amount)
            };
            postings.push(Posting {
                account: &retained,
                debit,
                credit,
                currency: None,
                memo: Some("net result of the year"),
            });
            let memo = format!("Year-end close {id}");
            closing_entry_id = Some(posting::post_document(
                tx, ctx, &end, &memo, "year-end", id, &postings,
            )?);
        }
    }
    let period = Period {
        id: id.to_owned(),
        kind: kind.into(),
        start_date: start,
        end_date: end,
        status: "closed".into(),
        closing_entry_id,
        version: 1,
    };
    store::upsert_period(tx, &period)?;
    crate::audit::record(
        tx,
        &crate::audit::AuditEvent {
            actor: ctx.actor,
            action: "close",
            entity: "fiscal-periods",
            entity_id: Some(id),
            changes: serde_json::json!({ "status": ["open", "closed"] }),
            request_id: ctx.request_id,
        },
    )?;
    store::find_period(tx, id)?.ok_or(Error::NotFound)
}

pub fn reopen(tx: &rusqlite::Connection, ctx: &Ctx<'_>, id: &str) -> Result<Period> {
    let mut p = store::find_period(tx, id)?
        .filter(|p| p.status == "closed")
        .ok_or(Error::NotFound)?;
    p.status = "open".into();
    store::upsert_period(tx, &p)?;
    if let Some(entry) = p.closing_entry_id.take() {
        posting::reverse(tx, ctx, &entry, None)?;
        tx.execute(
            "UPDATE fiscal_periods SET closing_entry_id = NULL WHERE id = ?1",
            [id],
        )?;
    }
    crate::audit::record(
        tx,
        &crate::audit::AuditEvent {
            actor: ctx.actor,
            action: "reopen",
            entity: "fiscal-periods",
            entity_id: Some(id),
            changes: serde_json::json!({ "status": ["closed", "open"] }),
            request_id: ctx.request_id,
        },
    )?;
    store::find_period(tx, id)?.ok_or(Error::NotFound)
}

#[cfg(test)]
mod tests {
    #[test]
    fn periods_parse() {
        assert_eq!(super::parse_period("2024-02").unwrap().2, "2024-02-29");
        assert_eq!(super::parse_period("2026").unwrap().1, "2026-01-01");
        assert!(super::parse_period("2026-13").is_err());
        assert!(super::parse_period("26").is_err());
    }
}
