//! Financial reports, computed in SQL from posted lines (one indexed GROUP BY per report)
//! and shaped here. Amounts are exact decimal strings in the base currency.

use rusqlite::Connection;
use rust_decimal::Decimal;
use serde_json::{Value as Json, json};

use super::store::{self, AccountTotals};
use crate::error::{Error, Result};

const BEGINNING: &str = "0000-01-01";

fn money(n: i64, minor: u32) -> Json {
    Json::String(Decimal::new(n, minor).to_string())
}

/// Trial balance as of a date: every account with postings; totals equal.
pub fn trial_balance(c: &Connection, as_of: &str, minor: u32) -> Result<Json> {
    let rows = store::totals(c, BEGINNING, as_of)?;
    let (td, tc) = rows
        .iter()
        .fold((0, 0), |(d, cr), r| (d + r.debit, cr + r.credit));
    let lines: Vec<Json> = rows
        .iter()
        .map(|r| json!({ "account_id": r.account_id, "code": r.code, "name": r.name, "type": r.kind,
                         "debit": money(r.debit, minor), "credit": money(r.credit, minor), "balance": money(r.debit - r.credit, minor) }))
        .collect();
    Ok(
        json!({ "as_of": as_of, "lines": lines, "total_debit": money(td, minor), "total_credit": money(tc, minor) }),
    )
}

/// Natural-sign amount of an account: debit-nature types count debit minus credit.
fn natural(r: &AccountTotals) -> i64 {
    match r.kind.as_str() {
        "asset" | "expense" => r.debit - r.credit,
        _ => r.credit - r.debit,
    }
}

fn section(rows: &[&AccountTotals], minor: u32) -> (Json, i64) {
    let total: i64 = rows.iter().map(|r| natural(r)).sum();
    let lines: Vec<Json> = rows
        .iter()
        .map(|r| json!({ "account_id": r.account_id, "code": r.code, "name": r.name, "amount": money(natural(r), minor) }))
        .collect();
    (
        json!({ "lines": lines, "total": money(total, minor) }),
        total,
    )
}

/// Profit and loss between two dates (inclusive).
pub fn profit_and_loss(c: &Connection, from: &str, to: &str, minor: u32) -> Result<Json> {
    if from > to {
        return Err(Error::bad_field("from", "must not be after `to`"));
    }
    let rows = store::totals(c, from, to)?;
    let pick = |k: &str| rows.iter().filter(|r| r.kind == k).collect::<Vec<_>>();
    let (income, ti) = section(&pick("income"), minor);
    let (expenses, te) = section(&pick("expense"), minor);
    Ok(
        json!({ "from": from, "to": to, "income": income, "expenses": expenses, "net_income": money(ti - te, minor) }),
    )
}

/// Balance sheet as of a date. Equity includes the earnings not yet closed into retained
/// earnings (all income minus expenses still on P&L accounts), so assets = liabilities +
/// equity always holds.
pub fn balance_sheet(c: &Connection, as_of: &str, minor: u32) -> Result<Json> {
    let rows = store::totals(c, BEGINNING, as_of)?;
    let pick = |k: &str| rows.iter().filter(|r| r.kind == k).collect::<Vec<_>>();
    let (assets, ta) = section(&pick("asset"), minor);
    let (liabilities, tl) = section(&pick("liability"), minor);
    let earnings: i64 = rows
        .iter()
        .filter(|r| r.kind == "income")
        .map(natural)
        .sum::<i64>()
        - rows
            .iter()
            .filter(|r| r.kind == "expense")
            .map(natural)
            .sum::<i64>();
    let equity_rows = pick("equity");
    let te: i64 = equity_rows.iter().map(|r| natural(r)).sum::<i64>() + earnings;
    let mut lines: Vec<Json> = equity_rows
        .iter()
        .map(|r| json!({ "account_id": r.account_id, "code": r.code, "name": r.name, "amount": money(natural(r), minor) }))
        .collect();
    lines.push(json!({ "account_id": null, "code": null, "name": "Current year earnings", "amount": money(earnings, minor) }));
    Ok(json!({
        "as_of": as_of,
        "assets": assets,
        "liabilities": liabilities,
        "equity": { "lines": lines, "total": money(te, minor) },
        "balanced": ta == tl + te,
    }))
}

/// One account's posted lines with a running balance (debit-positive).
pub fn general_ledger(
    c: &Connection,
    account_id: &str,
    from: &str,
    to: &str,
    minor: u32,
) -> Result<Json> {
    let info = store::find_account(c, account_id)?.ok_or(Error::NotFound)?;
    let (od, oc) = store::balance_before(c, account_id, from)?;
    let mut running = od - oc;
    let opening = running;
    let lines: Vec<Json> = store::ledger(c, account_id, from, to, 100_000)?
        .into_iter()
        .map(|l| {
            running += l.debit - l.credit;
            json!({ "entry_id": l.entry_id, "number": l.number, "date": l.date, "memo": l.memo,
                    "debit": money(l.debit, minor), "credit": money(l.credit, minor), "balance": money(running, minor) })
        })
        .collect();
    Ok(
        json!({ "account_id": account_id, "type": info.kind, "from": from, "to": to,
               "opening_balance": money(opening, minor), "lines": lines, "closing_balance": money(running, minor) }),
    )
}
