//! Invoices (customer and supplier, with credit notes), payments and aging.
//!
//! An invoice remembers the rate it was posted at and the base amount the receivable or
//! payable account still carries for it (`amount_due_base`). A payment clears exactly that
//! share; the difference to the bank's base amount at the payment date is an exchange gain
//! or loss. So the receivable/payable account always equals the open invoices.
//!
//! Must not: delete or change a posted invoice (a credit note reverses it); accept a
//! payment above `amount_due`.

pub mod aging;
pub mod pdf;
pub mod routes;

use rusqlite::{Connection, OptionalExtension, named_params};
use rust_decimal::Decimal;
use serde_json::{Map, Value as Json, json};

use crate::access::entity::{CurrencyOf, Entity, Field, Kind};
use crate::access::values::{from_scaled, to_scaled};
use crate::erp::accounting::model::{RATE_SCALE, round_money};
use crate::erp::accounting::posting::{self, Posting};
use crate::erp::accounting::store as acc_store;
use crate::erp::catalog::qty_str;
use crate::erp::orders::lines;
use crate::error::{Error, Result};
use crate::http::scope::Scope;
use crate::reference::Reference;

pub static INVOICES: Entity = Entity {
    name: "invoices",
    table: "invoices",
    fields: &[
        Field::new("number", Kind::Text { max: 40 }).query(),
        Field::new("kind", Kind::Enum(&["customer", "supplier"])).query(),
        Field::new("party_id", Kind::Text { max: 64 }).query(),
        Field::new("order_id", Kind::Text { max: 64 }).query(),
        Field::new("credit_of", Kind::Text { max: 64 }).query(),
        Field::new("credited_by", Kind::Text { max: 64 }),
        Field::new("date", Kind::Date).query(),
        Field::new("due_date", Kind::Date).query(),
        Field::new("currency", Kind::Currency).query(),
        Field::new("subtotal", Kind::Money(CurrencyOf::Field("currency"))),
        Field::new("tax_total", Kind::Money(CurrencyOf::Field("currency"))),
        Field::new("total", Kind::Money(CurrencyOf::Field("currency"))).query(),
        Field::new("amount_due", Kind::Money(CurrencyOf::Field("currency"))).query(),
        Field::new("status", Kind::Enum(&["posted", "paid", "cancelled"])).query(),
        Field::new("journal_entry_id", Kind::Text { max: 64 }),
    ],
    own_rows: None,
    guard_delete: None,
};

pub static PAYMENTS: Entity = Entity {
    name: "payments",
    table: "payments",
    fields: &[
        Field::new("invoice_id", Kind::Text { max: 64 }).query(),
        Field::new("kind", Kind::Enum(&["payment", "credit"])).query(),
        Field::new("date", Kind::Date).query(),
        Field::new("currency", Kind::Currency).query(),
        Field::new("amount", Kind::Money(CurrencyOf::Field("currency"))),
        Field::new("exchange_difference", Kind::Money(CurrencyOf::Base)),
        Field::new("journal_entry_id", Kind::Text { max: 64 }),
    ],
    own_rows: None,
    guard_delete: None,
};

/// `amount` (minor units of a currency with `minor` places) × `rate` in base minor units,
/// rounded as the posting API rounds a foreign line.
pub fn to_base(amount: i64, minor: u32, rate: Decimal, base_minor: u32) -> i64 {
    let base = round_money(Decimal::new(amount, minor) * rate, base_minor);
    to_scaled(base, base_minor).unwrap_or(i64::MAX)
}

/// The rate `currency → base` on `date` (1 for the base currency); 422 when missing.
pub fn rate_on(c: &Connection, currency: &str, base: &str, date: &str) -> Result<Decimal> {
    if currency == base {
        return Ok(Decimal::ONE);
    }
    acc_store::rate_on(c, currency, base, date)?.ok_or_else(|| {
        Error::invalid(
            "currency",
            format!("no exchange rate {currency} → {base} on or before {date}"),
        )
    })
}

/// One invoice line.
#[derive(Debug, Clone)]
pub struct InvLine {
    pub order_line_no: Option<i64>,
    pub product_id: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub discount: i64,
    pub tax_rate: i64,
    pub net: i64,
    pub tax: i64,
    pub cost_base: i64,
}

pub struct NewInvoice<'a> {
    pub kind: &'a str,
    pub party_id: &'a str,
    pub order_id: Option<&'a str>,
    pub credit_of: Option<&'a str>,
    pub date: &'a str,
    pub currency: &'a str,
    /// The rate to book at; `None`: the rate on `date`.
    pub rate: Option<Decimal>,
    pub lines: &'a [InvLine],
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Issued {
    pub id: String,
    pub number: String,
    pub subtotal: i64,
    pub tax_total: i64,
    pub total: i64,
    pub rate: Decimal,
    pub total_base: i64,
}

fn party_table(kind: &str) -> &'static str {
    if kind == "customer" {
        "customers"
    } else {
        "suppliers"
    }
}

fn add_days(date: &str, days: i64) -> Result<String> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(date, &fmt)
        .map_err(|_| Error::invalid("date", "must be a date such as 2026-11-27"))?;
    let due = d
        .checked_add(time::Duration::days(days))
        .ok_or_else(|| Error::invalid("date", "out of range"))?;
    due.format(&fmt).map_err(|e| Error::Other(e.into()))
}

/// Write an invoice (header, lines, gapless number); the caller posts its entry and
/// calls [`set_entry`] in the same transaction.
pub fn create(tx: &Connection, scope: &Scope, n: &NewInvoice<'_>) -> Result<Issued> {
    posting::check_date(n.date)?;
    let reference = scope.reference();
    let base = scope.base_currency.as_str();
    let rate = match n.rate {
        Some(r) => r,
        None => rate_on(tx, n.currency, base, n.date)?,
    };
    let terms: Option<i64> = tx
        .prepare_cached(&format!(
            "SELECT payment_terms_days FROM {} WHERE id = :id",
            party_table(n.kind)
        ))?
        .query_row(named_params! { ":id": n.party_id }, |r| r.get(0))
        .optional()?
        .flatten();
    let due_date = add_days(n.date, terms.unwrap_or(0))?;
    let subtotal: i64 = n.lines.iter().map(|l| l.net).sum();
    let tax_total: i64 = n.lines.iter().map(|l| l.tax).sum();
    let total = subtotal + tax_total;
    let minor = reference.minor_units(n.currency).unwrap_or(2);
    let base_minor = reference.minor_units(base).unwrap_or(2);
    let total_base = to_base(total, minor, rate, base_minor);
    let (prefix, scope_name) = match (n.kind, n.credit_of.is_some()) {
        ("customer", false) => ("INV", "invoice-customer"),
        ("customer", true) => ("CN", "credit-customer"),
        (_, false) => ("BILL", "invoice-supplier"),
        (_, true) => ("SCN", "credit-supplier"),
    };
    let year: i64 = n.date.get(..4).and_then(|y| y.parse().ok()).unwrap_or(0);
    let seq = acc_store::next_number(tx, scope_name, year)?;
    let number = format!("{prefix}-{year}-{seq:06}");
    let id = uuid::Uuid::now_v7().to_string();
    let now = crate::clock::now_rfc3339();
    tx.prepare_cached(
        "INSERT INTO invoices (id, version, created_at, updated_at, owner_id, number, kind, party_id, \
         order_id, credit_of, date, due_date, currency, rate, subtotal, tax_total, total, total_base, \
         amount_due, amount_due_base, status) VALUES (:id, 1, :now, :now, :owner, :number, :kind, :party, \
         :order, :credit_of, :date, :due, :cur, :rate, :sub, :tax, :total, :total_base, :total, :total_base, 'posted')",
    )?
    .execute(named_params! {
        ":id": id, ":now": now, ":owner": scope.principal.user_id, ":number": number, ":kind": n.kind,
        ":party": n.party_id, ":order": n.order_id, ":credit_of": n.credit_of, ":date": n.date,
        ":due": due_date, ":cur": n.currency,
        ":rate": to_scaled(rate.round_dp(RATE_SCALE), RATE_SCALE).unwrap_or(0),
        ":sub": subtotal, ":tax": tax_total, ":total": total, ":total_base": total_base,
    })?;
    let mut stmt = tx.prepare_cached(
        "INSERT INTO invoice_lines (invoice_id, line_no, order_line_no, product_id, quantity, unit_price, \
         discount_percent, tax_rate, net, tax, cost_base) VALUES (:i, :n, :o, :p, :q, :u, :d, :t, :net, :tax, :cb)",
    )?;
    for (i, l) in n.lines.iter().enumerate() {
        stmt.execute(named_params! {
            ":i": id, ":n": i as i64 + 1, ":o": l.order_line_no, ":p": l.product_id, ":q": l.quantity,
            ":u": l.unit_price, ":d": l.discount, ":t": l.tax_rate, ":net": l.net, ":tax": l.tax,
            ":cb": l.cost_base,
        })?;
    }
    scope.audit(
        tx,
        "invoices",
        "create",
        &id,
        json!({ "number": [null, number], "total": [null, Decimal::new(total, minor).to_string()] }),
    )?;
    Ok(Issued {
        id,
        number,
        subtotal,
        tax_total,
        total,
        rate,
        total_base,
    })
}

pub fn set_entry(tx: &Connection, invoice_id: &str, entry_id: &str) -> Result<()> {
    tx.prepare_cached("UPDATE invoices SET journal_entry_id = :e WHERE id = :id")?
        .execute(named_params! { ":e": entry_id, ":id": invoice_id })?;
    Ok(())
}

/// An invoice as the workflows need it.
#[derive(Debug, Clone)]
pub struct Invoice {
    pub id: String,
    pub number: String,
    pub kind: String,
    pub party_id: String,
    pub order_id: Option<String>,
    pub credit_of: Option<String>,
    pub credited_by: Option<String>,
    pub date: String,
    pub currency: String,
    pub rate: i64,
    pub total: i64,
    pub total_base: i64,
    pub amount_due: i64,
    pub amount_due_base: i64,
    pub status: String,
    pub journal_entry_id: Option<String>,
}

impl Invoice {
    /// Money comes in when it settles a customer invoice or a supplier credit note.
    fn money_in(&self) -> bool {
        (self.kind == "customer") != self.credit_of.is_some()
    }
    fn party_account(&self) -> &'static str {
        if self.kind == "customer" {
            "receivable"
        } else {
            "payable"
        }
    }
}

pub fn find(c: &Connection, id: &str) -> Result<Option<Invoice>> {
    Ok(c
        .prepare_cached(
            "SELECT id, number, kind, party_id, order_id, credit_of, credited_by, date, currency, rate, \
             total, total_base, amount_due, amount_due_base, status, journal_entry_id \
             FROM invoices WHERE id = :id AND deleted_at IS NULL",
        )?
        .query_row(named_params! { ":id": id }, |r| {
            Ok(Invoice {
                id: r.get(0)?,
                number: r.get(1)?,
                kind: r.get(2)?,
                party_id: r.get(3)?,
                order_id: r.get(4)?,
                credit_of: r.get(5)?,
                credited_by: r.get(6)?,
                date: r.get(7)?,
                currency: r.get(8)?,
                rate: r.get(9)?,
                total: r.get(10)?,
                total_base: r.get(11)?,
                amount_due: r.get(12)?,
                amount_due_base: r.get(13)?,
                status: r.get(14)?,
                journal_entry_id: r.get(15)?,
            })
        })
        .optional()?)
}

pub fn load_lines(c: &Connection, invoice_id: &str) -> Result<Vec<InvLine>> {
    let mut stmt = c.prepare_cached(
        "SELECT order_line_no, product_id, quantity, unit_price, discount_percent, tax_rate, net, tax, cost_base \
         FROM invoice_lines WHERE invoice_id = :id ORDER BY line_no",
    )?;
    let rows = stmt.query_map(named_params! { ":id": invoice_id }, |r| {
        Ok(InvLine {
            order_line_no: r.get(0)?,
            product_id: r.get(1)?,
            quantity: r.get(2)?,
            unit_price: r.get(3)?,
            discount: r.get(4)?,
            tax_rate: r.get(5)?,
            net: r.get(6)?,
            tax: r.get(7)?,
            cost_base: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn render_lines(ls: &[InvLine], currency: &str, reference: &Reference) -> Json {
    let minor = reference.minor_units(currency).unwrap_or(2);
    Json::Array(
        ls.iter()
            .map(|l| {
                let mut o = Map::new();
                o.insert("order_line_no".into(), json!(l.order_line_no));
                o.insert("product_id".into(), json!(l.product_id));
                o.insert("quantity".into(), json!(qty_str(l.quantity)));
                o.insert(
                    "unit_price".into(),
                    json!(from_scaled(l.unit_price, minor).to_string()),
                );
                let rate = |r: i64| from_scaled(r, lines::RATE_SCALE).normalize().to_string();
                o.insert("discount_percent".into(), json!(rate(l.discount)));
                o.insert("tax_rate".into(), json!(rate(l.tax_rate)));
                o.insert("net".into(), json!(from_scaled(l.net, minor).to_string()));
                o.insert("tax".into(), json!(from_scaled(l.tax, minor).to_string()));
                Json::Object(o)
            })
            .collect(),
    )
}

fn settle(tx: &Connection, inv: &Invoice, amount: i64, cleared_base: i64) -> Result<()> {
    let due = inv.amount_due - amount;
    let status = if due == 0 { "paid" } else { "posted" };
    tx.prepare_cached(
        "UPDATE invoices SET amount_due = :d, amount_due_base = amount_due_base - :b, status = :s, \
         version = version + 1, updated_at = :now WHERE id = :id",
    )?
    .execute(named_params! {
        ":d": due, ":b": cleared_base, ":s": status, ":now": crate::clock::now_rfc3339(), ":id": inv.id,
    })?;
    Ok(())
}

/// One row of `payments`: a payment, or a credit note applied to an invoice.
struct Settlement<'a> {
    id: &'a str,
    invoice: &'a Invoice,
    kind: &'a str,
    date: &'a str,
    amount: i64,
    rate: Decimal,
    cleared_base: i64,
    difference: i64,
    entry: Option<&'a str>,
}

fn insert_settlement(tx: &Connection, scope: &Scope, s: &Settlement<'_>) -> Result<()> {
    let now = crate::clock::now_rfc3339();
    tx.prepare_cached(
        "INSERT INTO payments (id, created_at, updated_at, owner_id, invoice_id, kind, date, currency, amount, \
         rate, cleared_base, exchange_difference, journal_entry_id) \
         VALUES (:id, :now, :now, :o, :inv, :k, :d, :cur, :a, :r, :cb, :x, :je)",
    )?
    .execute(named_params! {
        ":id": s.id, ":now": now, ":o": scope.principal.user_id, ":inv": s.invoice.id, ":k": s.kind,
        ":d": s.date, ":cur": s.invoice.currency, ":a": s.amount,
        ":r": to_scaled(s.rate.round_dp(RATE_SCALE), RATE_SCALE).unwrap_or(0),
        ":cb": s.cleared_base, ":x": s.difference, ":je": s.entry,
    })?;
    Ok(())
}

/// Record a payment (or a refund of a credit note) and post it; returns the payment id.
pub fn pay(
    tx: &Connection,
    scope: &Scope,
    invoice_id: &str,
    amount: i64,
    date: &str,
) -> Result<String> {
    posting::check_date(date)?;
    let inv = find(tx, invoice_id)?
        .ok_or_else(|| Error::invalid("invoice_id", format!("no invoice {invoice_id:?}")))?;
    let reference = scope.reference();
    let minor = reference.minor_units(&inv.currency).unwrap_or(2);
    if inv.status != "posted" || inv.amount_due == 0 {
        return Err(Error::invalid(
            "invoice_id",
            format!("invoice {} is {}; nothing is due", inv.number, inv.status),
        ));
    }
    if amount <= 0 {
        return Err(Error::invalid("amount", "must be more than zero"));
    }
    if amount > inv.amount_due {
        return Err(Error::invalid(
            "amount",
            format!(
                "{} is more than the amount due ({} {})",
                Decimal::new(amount, minor),
                Decimal::new(inv.amount_due, minor),
                inv.currency
            ),
        ));
    }
    let base = scope.base_currency.as_str();
    let base_minor = reference.minor_units(base).unwrap_or(2);
    let pay_rate = rate_on(tx, &inv.currency, base, date)?;
    let bank_base = to_base(amount, minor, pay_rate, base_minor);
    // The share of the receivable/payable this payment clears, at the invoice's rate; the
    // last payment clears whatever is left, so nothing lingers from rounding.
    let cleared = if amount == inv.amount_due {
        inv.amount_due_base
    } else {
        to_base(amount, minor, from_scaled(inv.rate, RATE_SCALE), base_minor)
    };
    // Positive: the business gained by the rate change.
    let gain = if inv.money_in() {
        bank_base - cleared
    } else {
        cleared - bank_base
    };
    let m = |v: i64| Decimal::new(v, minor);
    let b = |v: i64| Decimal::new(v, base_minor);
    let (bank, party) = if inv.money_in() {
        (
            Posting::debit("bank", m(amount)),
            Posting::credit(inv.party_account(), b(cleared)),
        )
    } else {
        (
            Posting::credit("bank", m(amount)),
            Posting::debit(inv.party_account(), b(cleared)),
        )
    };
    let fx = if gain >= 0 {
        Posting::credit("fx_gain", b(gain))
    } else {
        Posting::debit("fx_loss", b(-gain))
    };
    let postings = [bank.in_currency(&inv.currency), party, fx];
    let id = uuid::Uuid::now_v7().to_string();
    let memo = format!("Payment of {}", inv.number);
    let entry = posting::post_document(
        tx,
        &scope.posting(),
        date,
        &memo,
        "payments",
        &id,
        &postings,
    )?;
    insert_settlement(
        tx,
        scope,
        &Settlement {
            id: &id,
            invoice: &inv,
            kind: "payment",
            date,
            amount,
            rate: pay_rate,
            cleared_base: cleared,
            difference: gain,
            entry: Some(&entry),
        },
    )?;
    settle(tx, &inv, amount, cleared)?;
    scope.audit(
        tx,
        "payments",
        "create",
        &id,
        json!({ "invoice_id": [null, inv.id], "amount": [null, m(amount).to_string()] }),
    )?;
    Ok(id)
}

/// Credit an invoice in full: a credit note mirrors it (its journal entry is the reversal
/// of the invoice's), is applied to what is still due, and whatever was already paid
/// becomes due back to the party. Order lines become invoiceable again.
pub fn credit(tx: &Connection, scope: &Scope, invoice_id: &str, date: &str) -> Result<String> {
    posting::check_date(date)?;
    let inv = find(tx, invoice_id)?.ok_or(Error::NotFound)?;
    if inv.credit_of.is_some() {
        return Err(Error::Conflict("a credit note cannot be credited".into()));
    }
    if inv.credited_by.is_some() || inv.status == "cancelled" {
        return Err(Error::Conflict(format!(
            "invoice {} is already credited",
            inv.number
        )));
    }
    let ls = load_lines(tx, &inv.id)?;
    let issued = create(
        tx,
        scope,
        &NewInvoice {
            kind: &inv.kind,
            party_id: &inv.party_id,
            order_id: inv.order_id.as_deref(),
            credit_of: Some(&inv.id),
            date,
            currency: &inv.currency,
            rate: Some(from_scaled(inv.rate, RATE_SCALE)),
            lines: &ls,
        },
    )?;
    // The credit note's entry is exactly the mirror of the invoice's.
    let entry = inv
        .journal_entry_id
        .as_deref()
        .ok_or_else(|| Error::Conflict("the invoice has no journal entry".into()))?;
    let reversal = posting::reverse(tx, &scope.posting(), entry, Some(date))?;
    tx.prepare_cached("UPDATE invoices SET total_base = :tb, amount_due_base = :tb, journal_entry_id = :e WHERE id = :id")?
        .execute(named_params! { ":tb": inv.total_base, ":e": reversal, ":id": issued.id })?;
    let note = find(tx, &issued.id)?.ok_or(Error::NotFound)?;
    let (applied, applied_base) = (inv.amount_due, inv.amount_due_base);
    if applied > 0 {
        let rate = from_scaled(inv.rate, RATE_SCALE);
        for invoice in [&inv, &note] {
            let id = uuid::Uuid::now_v7().to_string();
            insert_settlement(
                tx,
                scope,
                &Settlement {
                    id: &id,
                    invoice,
                    kind: "credit",
                    date,
                    amount: applied,
                    rate,
                    cleared_base: applied_base,
                    difference: 0,
                    entry: None,
                },
            )?;
        }
        settle(tx, &inv, applied, applied_base)?;
        settle(tx, &note, applied, applied_base)?;
    }
    tx.prepare_cached(
        "UPDATE invoices SET status = 'cancelled', credited_by = :n, version = version + 1, updated_at = :now \
         WHERE id = :id",
    )?
    .execute(named_params! { ":n": issued.id, ":now": crate::clock::now_rfc3339(), ":id": inv.id })?;
    if let Some(order_id) = inv.order_id.as_deref() {
        crate::erp::orders::flow::uninvoice(tx, &inv.kind, order_id, &ls)?;
    }
    scope.audit(
        tx,
        "invoices",
        "credit",
        &inv.id,
        json!({ "credited_by": [null, issued.id] }),
    )?;
    Ok(issued.id)
}
