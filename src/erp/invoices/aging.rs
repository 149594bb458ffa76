//! AR and AP aging: what each party owes (or is owed) on a date, by days past due, in
//! the base currency at the invoices' own rates, so the total equals the receivable (or
//! payable) account's balance on that date. Credit notes count negative.

use std::collections::BTreeMap;

use rusqlite::{Connection, named_params};
use serde_json::{Map, Value as Json, json};

use crate::access::values::from_scaled;
use crate::error::Result;
use crate::http::scope::Scope;

pub const BUCKETS: [&str; 5] = ["current", "1-30", "31-60", "61-90", "90+"];

/// The bucket of an amount `days` past its due date.
pub fn bucket(days: i64) -> usize {
    match days {
        ..=0 => 0,
        1..=30 => 1,
        31..=60 => 2,
        61..=90 => 3,
        _ => 4,
    }
}

pub fn report(c: &Connection, scope: &Scope, kind: &str, as_of: &str) -> Result<Json> {
    let mut stmt = c.prepare_cached(
        "SELECT i.party_id, COALESCE(c.name, s.name, ''), CAST(julianday(:d) - julianday(i.due_date) AS INTEGER), \
         (CASE WHEN i.credit_of IS NULL THEN 1 ELSE -1 END) * (i.total_base - COALESCE(( \
             SELECT SUM(p.cleared_base) FROM payments p WHERE p.invoice_id = i.id AND p.date <= :d), 0)) \
         FROM invoices i LEFT JOIN customers c ON i.kind = 'customer' AND c.id = i.party_id \
         LEFT JOIN suppliers s ON i.kind = 'supplier' AND s.id = i.party_id \
         WHERE i.kind = :k AND i.date <= :d AND i.deleted_at IS NULL",
    )?;
    let rows = stmt.query_map(named_params! { ":d": as_of, ":k": kind }, |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    let mut by_party: BTreeMap<(String, String), [i64; 5]> = BTreeMap::new();
    let mut totals = [0i64; 5];
    for row in rows {
        let (party, name, days, open) = row?;
        if open == 0 {
            continue;
        }
        let b = bucket(days);
        by_party.entry((name, party)).or_default()[b] += open;
        totals[b] += open;
    }
    let minor = scope
        .reference()
        .minor_units(&scope.base_currency)
        .unwrap_or(2);
    let money = |v: i64| Json::String(from_scaled(v, minor).to_string());
    let shape = |amounts: &[i64; 5]| {
        let mut o = Map::new();
        for (name, v) in BUCKETS.iter().zip(amounts) {
            o.insert((*name).into(), money(*v));
        }
        o.insert("total".into(), money(amounts.iter().sum()));
        o
    };
    let lines: Vec<Json> = by_party
        .iter()
        .map(|((name, party), amounts)| {
            let mut o = shape(amounts);
            o.insert("party_id".into(), json!(party));
            o.insert("party_name".into(), json!(name));
            Json::Object(o)
        })
        .collect();
    Ok(json!({
        "as_of": as_of,
        "currency": scope.base_currency,
        "lines": lines,
        "totals": Json::Object(shape(&totals)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_days_past_due() {
        let got: Vec<usize> = [-5, 0, 1, 30, 31, 60, 61, 90, 91, 400]
            .into_iter()
            .map(bucket)
            .collect();
        assert_eq!(got, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
    }
}
