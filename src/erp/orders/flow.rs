//! The order workflows as plain functions on a write transaction: create, change a draft,
//! confirm (reserve, credit limit), deliver/receive (stock and its entry), invoice/bill
//! (the invoice and its entry), cancel. Each either completes with its stock moves,
//! journal entry and audit entry, or fails and the transaction takes everything back.

use std::collections::BTreeSet;

use rusqlite::{Connection, named_params};
use rust_decimal::Decimal;
use serde_json::{Map, Value as Json, json};

use super::lines::{self, LineInput, PriceCtx, Priced};
use super::{
    INVOICE_BEFORE_DELIVERY, Line, Order, Side, find_order, load_lines, set_status, settle_status,
};
use crate::access::query;
use crate::erp::accounting::posting::{self, Posting};
use crate::erp::catalog::{QTY_SCALE, qty_str};
use crate::erp::inventory::{self, ALLOW_NEGATIVE_STOCK, Move};
use crate::erp::invoices::{self, InvLine, NewInvoice, to_base};
use crate::erp::parties::{CUSTOMERS, SUPPLIERS};
use crate::error::{Error, FieldError, Result};
use crate::http::json::{body_str, check_keys};
use crate::http::scope::Scope;

/// What every workflow step needs besides the transaction.
pub struct Cx<'a> {
    pub scope: &'a Scope,
    pub settings: &'a BTreeSet<String>,
}

impl Cx<'_> {
    fn allows(&self, setting: &str) -> bool {
        self.settings.contains(setting)
    }
}

pub fn today() -> String {
    let now = crate::clock::now();
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    now.date().format(&fmt).unwrap_or_default()
}

/// The order, if the caller may see it (record rules included): 404 otherwise.
pub fn visible(tx: &Connection, side: &Side, cx: &Cx<'_>, id: &str) -> Result<Order> {
    let viewer = cx.scope.viewer(cx.settings);
    let compiled = query::by_id(side.entity, &viewer, id, false)?;
    query::fetch_one(tx, &compiled, &cx.scope.ctx())?.ok_or(Error::NotFound)?;
    find_order(tx, side, id)?.ok_or(Error::NotFound)
}

struct Party {
    currency: String,
    price_list: Option<String>,
}

fn party(tx: &Connection, side: &Side, cx: &Cx<'_>, id: &str) -> Result<Party> {
    // The party must be one the caller can see (a sales user limited to their own
    // customers cannot sell to someone else's).
    let entity = if side.is_sales() {
        &CUSTOMERS
    } else {
        &SUPPLIERS
    };
    let viewer = cx.scope.viewer(cx.settings);
    let missing = || {
        Error::invalid(
            side.party_field,
            format!(
                "no {} with id {id:?}",
                &side.party_table[..side.party_table.len() - 1]
            ),
        )
    };
    if !viewer.perms.allows(entity.name, "read") {
        return Err(Error::Forbidden(format!(
            "no permission {}:read",
            entity.name
        )));
    }
    query::fetch_one(
        tx,
        &query::by_id(entity, &viewer, id, false)?,
        &cx.scope.ctx(),
    )?
    .ok_or_else(missing)?;
    Ok(tx
        .prepare_cached(&format!(
            "SELECT currency, price_list_id FROM {} WHERE id = :id",
            side.party_table
        ))?
        .query_row(named_params! { ":id": id }, |r| {
            Ok(Party {
                currency: r.get(0)?,
                price_list: r.get(1)?,
            })
        })?)
}

/// Documents use the base currency or one the tenant enabled.
fn check_currency(tx: &Connection, cx: &Cx<'_>, currency: &str) -> Result<()> {
    if currency == cx.scope.base_currency {
        return Ok(());
    }
    if cx.scope.reference().currency(currency).is_none() {
        return Err(Error::invalid(
            "currency",
            format!("unknown currency {currency:?}"),
        ));
    }
    let enabled = tx
        .prepare_cached("SELECT 1 FROM tenant_currencies WHERE code = :c AND enabled = 1")?
        .exists(named_params! { ":c": currency })?;
    if enabled {
        Ok(())
    } else {
        Err(Error::invalid(
            "currency",
            format!("{currency} is not enabled for this tenant (PUT currencies/{currency})"),
        ))
    }
}

fn warehouse(tx: &Connection, given: Option<&str>) -> Result<String> {
    match given {
        Some(w) if inventory::warehouse_exists(tx, w)? => Ok(w.to_owned()),
        Some(w) => Err(Error::invalid(
            "warehouse_id",
            format!("no warehouse with id {w:?}"),
        )),
        None => inventory::first_warehouse(tx)?.ok_or_else(|| {
            Error::invalid(
                "warehouse_id",
                "the tenant has no warehouse yet; create one first",
            )
        }),
    }
}

fn save_lines(tx: &Connection, side: &Side, order_id: &str, priced: &[Priced]) -> Result<()> {
    tx.prepare_cached(&format!(
        "DELETE FROM {} WHERE order_id = :id",
        side.lines_table
    ))?
    .execute(named_params! { ":id": order_id })?;
    let mut stmt = tx.prepare_cached(&format!(
        "INSERT INTO {} (order_id, line_no, product_id, quantity, unit_price, discount_percent, tax_rate, net, tax) \
         VALUES (:o, :n, :p, :q, :u, :d, :t, :net, :tax)",
        side.lines_table
    ))?;
    for (i, l) in priced.iter().enumerate() {
        stmt.execute(named_params! {
            ":o": order_id, ":n": i as i64 + 1, ":p": l.product_id, ":q": l.quantity, ":u": l.unit_price,
            ":d": l.discount, ":t": l.tax_rate, ":net": l.net, ":tax": l.tax,
        })?;
    }
    Ok(())
}

fn totals(priced: &[Priced]) -> (i64, i64) {
    (
        priced.iter().map(|l| l.net).sum(),
        priced.iter().map(|l| l.tax).sum(),
    )
}

fn bump(tx: &Connection, side: &Side, id: &str) -> Result<()> {
    tx.prepare_cached(&format!(
        "UPDATE {} SET version = version + 1, updated_at = :now WHERE id = :id",
        side.entity.table
    ))?
    .execute(named_params! { ":now": crate::clock::now_rfc3339(), ":id": id })?;
    Ok(())
}

/// A new draft order.
pub fn create(
    tx: &Connection,
    side: &Side,
    cx: &Cx<'_>,
    body: &Map<String, Json>,
) -> Result<String> {
    check_keys(
        body,
        &[
            side.party_field,
            "currency",
            "order_date",
            "warehouse_id",
            "memo",
            "lines",
        ],
    )?;
    let party_id = body_str(body, side.party_field)?
        .ok_or_else(|| Error::invalid(side.party_field, "is required"))?;
    let p = party(tx, side, cx, party_id)?;
    let currency = body_str(body, "currency")?
        .unwrap_or(&p.currency)
        .to_owned();
    check_currency(tx, cx, &currency)?;
    let date = match body_str(body, "order_date")? {
        Some(d) => d.to_owned(),
        None => today(),
    };
    posting::check_date(&date)
        .map_err(|_| Error::invalid("order_date", "must be a date such as 2026-11-27"))?;
    let wh = warehouse(tx, body_str(body, "warehouse_id")?)?;
    let memo = body_str(body, "memo")?;
    let input = lines::parse(body.get("lines"), &currency, cx.scope.reference())?;
    let priced = price(
        tx,
        side,
        cx,
        &currency,
        &date,
        p.price_list.as_deref(),
        &input,
    )?;
    let (subtotal, tax_total) = totals(&priced);
    let year: i64 = date.get(..4).and_then(|y| y.parse().ok()).unwrap_or(0);
    let seq = crate::erp::accounting::store::next_number(tx, side.number_scope, year)?;
    let number = format!("{}-{year}-{seq:06}", side.number_prefix);
    let id = uuid::Uuid::now_v7().to_string();
    let now = crate::clock::now_rfc3339();
    tx.prepare_cached(&format!(
        "INSERT INTO {} (id, version, created_at, updated_at, owner_id, number, {}, currency, order_date, \
         warehouse_id, status, subtotal, tax_total, total, memo) \
         VALUES (:id, 1, :now, :now, :o, :n, :p, :c, :d, :w, 'draft', :s, :t, :total, :m)",
        side.entity.table, side.party_field
    ))?
    .execute(named_params! {
        ":id": id, ":now": now, ":o": cx.scope.principal.user_id, ":n": number, ":p": party_id,
        ":c": currency, ":d": date, ":w": wh, ":s": subtotal, ":t": tax_total,
        ":total": subtotal + tax_total, ":m": memo,
    })?;
    save_lines(tx, side, &id, &priced)?;
    cx.scope.audit(
        tx,
        side.entity.name,
        "create",
        &id,
        json!({ "number": [null, number], side.party_field: [null, party_id], "lines": [null, priced.len()] }),
    )?;
    Ok(id)
}

fn price(
    tx: &Connection,
    side: &Side,
    cx: &Cx<'_>,
    currency: &str,
    date: &str,
    price_list: Option<&str>,
    input: &[LineInput],
) -> Result<Vec<Priced>> {
    lines::price(
        tx,
        &PriceCtx {
            side,
            currency,
            base_currency: &cx.scope.base_currency,
            date,
            price_list,
            reference: cx.scope.reference(),
        },
        input,
    )
}

/// Change a draft: date, warehouse, memo, lines (replaced and repriced as a whole).
pub fn update(
    tx: &Connection,
    side: &Side,
    cx: &Cx<'_>,
    id: &str,
    expected: Option<i64>,
    body: &Map<String, Json>,
) -> Result<()> {
    let o = visible(tx, side, cx, id)?;
    if let Some(k) = [side.party_field, "currency", "number", "status"]
        .into_iter()
        .find(|k| body.contains_key(*k))
    {
        return Err(Error::invalid(
            k,
            "cannot be changed; cancel the order and create a new one",
        ));
    }
    check_keys(body, &["order_date", "warehouse_id", "memo", "lines"])?;
    if o.status != "draft" {
        return Err(Error::Conflict(format!(
            "the order is {}; only drafts change",
            o.status
        )));
    }
    crate::error::ensure_version(expected, o.version)?;
    let date = match body_str(body, "order_date")? {
        Some(d) => {
            posting::check_date(d)
                .map_err(|_| Error::invalid("order_date", "must be a date such as 2026-11-27"))?;
            d.to_owned()
        }
        None => o.order_date.clone(),
    };
    let wh = match body_str(body, "warehouse_id")? {
        Some(w) => warehouse(tx, Some(w))?,
        None => o.warehouse_id.clone(),
    };
    if body.contains_key("lines") {
        let p = party(tx, side, cx, &o.party_id)?;
        let input = lines::parse(body.get("lines"), &o.currency, cx.scope.reference())?;
        let priced = price(
            tx,
            side,
            cx,
            &o.currency,
            &date,
            p.price_list.as_deref(),
            &input,
        )?;
        save_lines(tx, side, id, &priced)?;
        let (s, t) = totals(&priced);
        tx.prepare_cached(&format!(
            "UPDATE {} SET subtotal = :s, tax_total = :t, total = :total WHERE id = :id",
            side.entity.table
        ))?
        .execute(named_params! { ":s": s, ":t": t, ":total": s + t, ":id": id })?;
    }
    tx.prepare_cached(&format!(
        "UPDATE {} SET order_date = :d, warehouse_id = :w, version = version + 1, updated_at = :now WHERE id = :id",
        side.entity.table
    ))?
    .execute(named_params! { ":d": date, ":w": wh, ":now": crate::clock::now_rfc3339(), ":id": id })?;
    if body.contains_key("memo") {
        tx.prepare_cached(&format!(
            "UPDATE {} SET memo = :m WHERE id = :id",
            side.entity.table
        ))?
        .execute(named_params! { ":m": body_str(body, "memo")?, ":id": id })?;
    }
    cx.scope.audit(
        tx,
        side.entity.name,
        "update",
        id,
        json!({ "order_date": [o.order_date, date], "warehouse_id": [o.warehouse_id, wh] }),
    )
}

/// Receivables still open for a customer, in base minor units.
fn open_receivables(tx: &Connection, customer: &str) -> Result<i64> {
    Ok(tx
        .prepare_cached(
            "SELECT COALESCE(SUM(CASE WHEN credit_of IS NULL THEN amount_due_base ELSE -amount_due_base END), 0) \
             FROM invoices WHERE kind = 'customer' AND party_id = :p AND status = 'posted'",
        )?
        .query_row(named_params! { ":p": customer }, |r| r.get(0))?)
}

fn check_credit_limit(tx: &Connection, cx: &Cx<'_>, o: &Order) -> Result<()> {
    let (limit, currency): (Option<i64>, String) = tx
        .prepare_cached("SELECT credit_limit, currency FROM customers WHERE id = :id")?
        .query_row(named_params! { ":id": o.party_id }, |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let Some(limit) = limit else { return Ok(()) };
    let reference = cx.scope.reference();
    let base = cx.scope.base_currency.as_str();
    let base_minor = reference.minor_units(base).unwrap_or(2);
    let in_base = |amount: i64, cur: &str| -> Result<i64> {
        let rate = invoices::rate_on(tx, cur, base, &o.order_date)?;
        Ok(to_base(
            amount,
            reference.minor_units(cur).unwrap_or(2),
            rate,
            base_minor,
        ))
    };
    let limit_base = in_base(limit, &currency)?;
    let open = open_receivables(tx, &o.party_id)?;
    let order = in_base(o.total, &o.currency)?;
    if open + order > limit_base {
        let d = |v: i64| Decimal::new(v, base_minor);
        return Err(Error::rule(
            "credit-limit-exceeded",
            format!(
                "open receivables {} + this order {} = {} {base} exceed the customer's credit limit {} {base}",
                d(open),
                d(order),
                d(open + order),
                d(limit_base)
            ),
        ));
    }
    Ok(())
}

/// Confirm a draft: sales orders check the credit limit and reserve their goods.
pub fn confirm(tx: &Connection, side: &Side, cx: &Cx<'_>, id: &str) -> Result<()> {
    let o = visible(tx, side, cx, id)?;
    if o.status != "draft" {
        return Err(Error::Conflict(format!(
            "the order is already {}",
            o.status
        )));
    }
    if side.is_sales() {
        check_credit_limit(tx, cx, &o)?;
        let allow_negative = cx.allows(ALLOW_NEGATIVE_STOCK);
        for l in load_lines(tx, side, id)?
            .iter()
            .filter(|l| l.kind == "goods")
        {
            inventory::reserve(
                tx,
                &l.product_id,
                &o.warehouse_id,
                l.quantity,
                allow_negative,
            )?;
            set_line(tx, side, id, l.line_no, "reserved", l.quantity)?;
        }
    }
    set_status(tx, side, id, "confirmed")?;
    cx.scope.audit(
        tx,
        side.entity.name,
        "confirm",
        id,
        json!({ "status": ["draft", "confirmed"] }),
    )
}

fn set_line(
    tx: &Connection,
    side: &Side,
    order: &str,
    line_no: i64,
    column: &'static str,
    value: i64,
) -> Result<()> {
    tx.prepare_cached(&format!(
        "UPDATE {} SET {column} = :v WHERE order_id = :o AND line_no = :n",
        side.lines_table
    ))?
    .execute(named_params! { ":v": value, ":o": order, ":n": line_no })?;
    Ok(())
}

/// Cancel a draft or a confirmed order nothing has happened to; reservations go back.
pub fn cancel(tx: &Connection, side: &Side, cx: &Cx<'_>, id: &str) -> Result<()> {
    let o = visible(tx, side, cx, id)?;
    let ls = load_lines(tx, side, id)?;
    if !matches!(o.status.as_str(), "draft" | "confirmed") {
        return Err(Error::Conflict(format!(
            "the order is {}; only draft or confirmed orders are cancelled",
            o.status
        )));
    }
    if ls.iter().any(|l| l.moved > 0 || l.invoiced > 0) {
        return Err(Error::Conflict(format!(
            "goods were already {} or invoiced on this order; it cannot be cancelled",
            side.moved_status
        )));
    }
    for l in &ls {
        inventory::release(tx, &l.product_id, &o.warehouse_id, l.reserved)?;
        set_line(tx, side, id, l.line_no, "reserved", 0)?;
    }
    set_status(tx, side, id, "cancelled")?;
    cx.scope.audit(
        tx,
        side.entity.name,
        "cancel",
        id,
        json!({ "status": [o.status, "cancelled"] }),
    )
}

/// `lines: [{"line_no", "quantity"}]` of an action body, or everything `open` allows.
fn selection(
    body: &Map<String, Json>,
    ls: &[Line],
    open: impl Fn(&Line) -> i64,
    what: &str,
) -> Result<Vec<(usize, i64)>> {
    let Some(raw) = body.get("lines").filter(|v| !v.is_null()) else {
        return Ok(ls
            .iter()
            .enumerate()
            .map(|(i, l)| (i, open(l)))
            .filter(|(_, q)| *q > 0)
            .collect());
    };
    let arr = raw
        .as_array()
        .ok_or_else(|| Error::invalid("lines", "must be an array of {line_no, quantity}"))?;
    let mut out: Vec<(usize, i64)> = Vec::new();
    let mut errors = Vec::new();
    for (i, v) in arr.iter().enumerate() {
        let f = |k: &str| format!("lines[{i}].{k}");
        let no = v.get("line_no").and_then(Json::as_i64);
        let Some(idx) = no.and_then(|n| ls.iter().position(|l| l.line_no == n)) else {
            errors.push(FieldError::new(f("line_no"), "no such line on this order"));
            continue;
        };
        if out.iter().any(|(j, _)| *j == idx) {
            errors.push(FieldError::new(f("line_no"), "appears twice"));
            continue;
        }
        let q = match v.get("quantity") {
            None | Some(Json::Null) => Ok(open(&ls[idx])),
            Some(q) => lines::positive(q, QTY_SCALE),
        };
        match q {
            Err(m) => errors.push(FieldError::new(f("quantity"), m)),
            Ok(q) if q > open(&ls[idx]) => errors.push(FieldError::new(
                f("quantity"),
                format!(
                    "{what} {} of line {} but only {} is open",
                    qty_str(q),
                    ls[idx].line_no,
                    qty_str(open(&ls[idx]))
                ),
            )),
            Ok(q) if q > 0 => out.push((idx, q)),
            Ok(_) => errors.push(FieldError::new(f("quantity"), "nothing open on this line")),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Error::Invalid(errors))
    }
}

fn action_date(body: &Map<String, Json>) -> Result<String> {
    match body_str(body, "date")? {
        Some(d) => {
            posting::check_date(d)?;
            Ok(d.to_owned())
        }
        None => Ok(today()),
    }
}

fn require_open(o: &Order, side: &Side, action: &str) -> Result<()> {
    match o.status.as_str() {
        "draft" => Err(Error::Conflict(format!(
            "confirm the order before you {action} it"
        ))),
        "cancelled" => Err(Error::Conflict("the order is cancelled".into())),
        s if s == side.invoiced_status => Err(Error::Conflict(format!("the order is already {s}"))),
        _ => Ok(()),
    }
}

/// Deliver (sales) or receive (purchases) goods lines, in full or in part.
pub fn move_stock(
    tx: &Connection,
    side: &Side,
    cx: &Cx<'_>,
    id: &str,
    body: &Map<String, Json>,
) -> Result<()> {
    check_keys(body, &["warehouse_id", "date", "lines"])?;
    let o = visible(tx, side, cx, id)?;
    require_open(&o, side, side.move_action)?;
    let ls = load_lines(tx, side, id)?;
    if let Some(raw) = body.get("lines").and_then(Json::as_array) {
        for (i, v) in raw.iter().enumerate() {
            let no = v.get("line_no").and_then(Json::as_i64);
            if ls
                .iter()
                .any(|l| Some(l.line_no) == no && l.kind != "goods")
            {
                return Err(Error::invalid(
                    &format!("lines[{i}].line_no"),
                    "services are not delivered or received; invoice them",
                ));
            }
        }
    }
    let open = |l: &Line| {
        if l.kind == "goods" {
            l.quantity - l.moved
        } else {
            0
        }
    };
    let chosen = selection(body, &ls, open, side.move_action)?;
    if chosen.is_empty() {
        return Err(Error::Conflict(format!(
            "nothing is left to {} on this order",
            side.move_action
        )));
    }
    let wh = match body_str(body, "warehouse_id")? {
        Some(w) => warehouse(tx, Some(w))?,
        None => o.warehouse_id.clone(),
    };
    let date = action_date(body)?;
    let user = cx.scope.principal.user_id.as_str();
    let reference = cx.scope.reference();
    let base = cx.scope.base_currency.as_str();
    let base_minor = reference.minor_units(base).unwrap_or(2);
    let mut value_total = 0i64;
    let mut move_ids = Vec::new();
    let rate = if side.is_sales() {
        Decimal::ONE
    } else {
        invoices::rate_on(tx, &o.currency, base, &date)?
    };
    for &(idx, q) in &chosen {
        let l = &ls[idx];
        let m = Move {
            date: &date,
            product_id: &l.product_id,
            warehouse_id: &wh,
            quantity: q,
            kind: if side.is_sales() {
                "delivery"
            } else {
                "receipt"
            },
            source: side.entity.name,
            source_id: id,
            owner: user,
        };
        if side.is_sales() {
            let (value, move_id) = inventory::issue(tx, &m, cx.allows(ALLOW_NEGATIVE_STOCK))?;
            value_total += value;
            move_ids.push(move_id);
            let release = l.reserved.min(q);
            inventory::release(tx, &l.product_id, &o.warehouse_id, release)?;
            set_line(tx, side, id, l.line_no, "reserved", l.reserved - release)?;
        } else {
            // Stock comes in at the order's net unit price, converted at the receipt date.
            let (net, _) = lines::amounts(q, l.unit_price, l.discount, 0)?;
            let minor = reference.minor_units(&o.currency).unwrap_or(2);
            let value = to_base(net, minor, rate, base_minor);
            move_ids.push(inventory::receive(tx, &m, value)?);
            value_total += value;
            set_line(
                tx,
                side,
                id,
                l.line_no,
                "received_value",
                l.received_value + value,
            )?;
        }
        set_line(tx, side, id, l.line_no, "moved", l.moved + q)?;
    }
    if value_total != 0 {
        let v = Decimal::new(value_total.abs(), base_minor);
        let (dr, cr) = if side.is_sales() {
            ("cogs", "inventory")
        } else {
            ("inventory", "grni")
        };
        let (dr, cr) = if value_total > 0 { (dr, cr) } else { (cr, dr) };
        let memo = format!(
            "{} {}",
            if side.is_sales() {
                "Delivery of"
            } else {
                "Receipt for"
            },
            o.number
        );
        let entry = posting::post_document(
            tx,
            &cx.scope.posting(),
            &date,
            &memo,
            side.entity.name,
            id,
            &[Posting::debit(dr, v), Posting::credit(cr, v)],
        )?;
        inventory::link_entry(tx, &move_ids, &entry)?;
    }
    let status = settle_status(tx, side, id)?;
    let moved: Vec<Json> = chosen
        .iter()
        .map(|&(i, q)| json!({ "line_no": ls[i].line_no, "quantity": qty_str(q) }))
        .collect();
    cx.scope.audit(
        tx,
        side.entity.name,
        side.move_action,
        id,
        json!({ "status": [o.status, status], "lines": moved, "warehouse_id": wh }),
    )
}

/// Invoice (sales) or bill (purchases) what is open; returns the invoice id.
pub fn invoice(
    tx: &Connection,
    side: &Side,
    cx: &Cx<'_>,
    id: &str,
    body: &Map<String, Json>,
) -> Result<String> {
    check_keys(body, &["date", "lines"])?;
    let o = visible(tx, side, cx, id)?;
    require_open(&o, side, side.invoice_action)?;
    let ls = load_lines(tx, side, id)?;
    // Goods are invoiced once delivered (sales may switch that off); bills always follow
    // receipts, so GRNI is cleared at the value the receipt booked.
    let early = side.is_sales() && cx.allows(INVOICE_BEFORE_DELIVERY);
    let open = |l: &Line| {
        if l.kind == "goods" && !early {
            l.moved - l.invoiced
        } else {
            l.quantity - l.invoiced
        }
    };
    let chosen = selection(body, &ls, open, side.invoice_action)?;
    if chosen.is_empty() {
        return Err(Error::Conflict(format!(
            "nothing is ready to {} on this order ({} goods first)",
            side.invoice_action, side.move_action
        )));
    }
    let date = action_date(body)?;
    let mut inv_lines = Vec::with_capacity(chosen.len());
    for &(idx, q) in &chosen {
        let l = &ls[idx];
        let (net, tax) = lines::amounts(q, l.unit_price, l.discount, l.tax_rate)?;
        // Bills clear GRNI by the cumulative share of what receipts booked, so the last
        // bill clears exactly what is left.
        let cost_base = if side.is_sales() || l.kind != "goods" || l.moved == 0 {
            0
        } else {
            let cumulative =
                i128::from(l.received_value) * i128::from(l.invoiced + q) / i128::from(l.moved);
            i64::try_from(cumulative).unwrap_or(i64::MAX) - l.billed_value
        };
        inv_lines.push(InvLine {
            order_line_no: Some(l.line_no),
            product_id: l.product_id.clone(),
            quantity: q,
            unit_price: l.unit_price,
            discount: l.discount,
            tax_rate: l.tax_rate,
            net,
            tax,
            cost_base,
        });
    }
    let issued = invoices::create(
        tx,
        cx.scope,
        &NewInvoice {
            kind: side.invoice_kind,
            party_id: &o.party_id,
            order_id: Some(id),
            credit_of: None,
            date: &date,
            currency: &o.currency,
            rate: None,
            lines: &inv_lines,
        },
    )?;
    let entry = post_invoice(tx, side, cx, &o, &issued, &inv_lines, &ls, &chosen, &date)?;
    invoices::set_entry(tx, &issued.id, &entry)?;
    for (&(idx, q), il) in chosen.iter().zip(&inv_lines) {
        let l = &ls[idx];
        set_line(tx, side, id, l.line_no, "invoiced", l.invoiced + q)?;
        if il.cost_base != 0 {
            set_line(
                tx,
                side,
                id,
                l.line_no,
                "billed_value",
                l.billed_value + il.cost_base,
            )?;
        }
    }
    let status = settle_status(tx, side, id)?;
    cx.scope.audit(
        tx,
        side.entity.name,
        side.invoice_action,
        id,
        json!({ "status": [o.status, status], "invoice_id": issued.id, "number": issued.number }),
    )?;
    Ok(issued.id)
}

#[allow(clippy::too_many_arguments)]
fn post_invoice(
    tx: &Connection,
    side: &Side,
    cx: &Cx<'_>,
    o: &Order,
    issued: &invoices::Issued,
    inv_lines: &[InvLine],
    ls: &[Line],
    chosen: &[(usize, i64)],
    date: &str,
) -> Result<String> {
    let reference = cx.scope.reference();
    let minor = reference.minor_units(&o.currency).unwrap_or(2);
    let base_minor = reference.minor_units(&cx.scope.base_currency).unwrap_or(2);
    let m = |v: i64| Decimal::new(v, minor);
    let b = |v: i64| Decimal::new(v, base_minor);
    let cur = o.currency.as_str();
    let memo = format!("Invoice {} for {}", issued.number, o.number);
    let post = |postings: &[Posting<'_>]| {
        posting::post_document(
            tx,
            &cx.scope.posting(),
            date,
            &memo,
            "invoices",
            &issued.id,
            postings,
        )
    };
    if side.is_sales() {
        return post(&[
            Posting::debit("receivable", m(issued.total)).in_currency(cur),
            Posting::credit("revenue", m(issued.subtotal)).in_currency(cur),
            Posting::credit("tax_payable", m(issued.tax_total)).in_currency(cur),
        ]);
    }
    // A bill: GRNI cleared at receipt value, services to expenses, input tax, payable;
    // what the price differs from the receipt value goes to purchase price variance.
    let grni: i64 = inv_lines.iter().map(|l| l.cost_base).sum();
    let services: i64 = chosen
        .iter()
        .zip(inv_lines)
        .filter(|((idx, _), _)| ls[*idx].kind != "goods")
        .map(|(_, l)| l.net)
        .sum();
    let payable_base = to_base(issued.total, minor, issued.rate, base_minor);
    let tax_base = to_base(issued.tax_total, minor, issued.rate, base_minor);
    let services_base = to_base(services, minor, issued.rate, base_minor);
    let variance = payable_base - tax_base - services_base - grni;
    let variance_posting = if variance >= 0 {
        Posting::debit("price_variance", b(variance))
    } else {
        Posting::credit("price_variance", b(-variance))
    };
    post(&[
        Posting::debit("grni", b(grni)),
        Posting::debit("expenses", m(services)).in_currency(cur),
        Posting::debit("tax_receivable", m(issued.tax_total)).in_currency(cur),
        variance_posting,
        Posting::credit("payable", m(issued.total)).in_currency(cur),
    ])
}

/// A credit note took an invoice back: its quantities become invoiceable again.
pub fn uninvoice(tx: &Connection, kind: &str, order_id: &str, credited: &[InvLine]) -> Result<()> {
    let side = if kind == "customer" {
        &super::SALES
    } else {
        &super::PURCHASES
    };
    let ls = load_lines(tx, side, order_id)?;
    for c in credited {
        let Some(l) = ls.iter().find(|l| Some(l.line_no) == c.order_line_no) else {
            continue;
        };
        set_line(
            tx,
            side,
            order_id,
            l.line_no,
            "invoiced",
            (l.invoiced - c.quantity).max(0),
        )?;
        if c.cost_base != 0 {
            set_line(
                tx,
                side,
                order_id,
                l.line_no,
                "billed_value",
                l.billed_value - c.cost_base,
            )?;
        }
    }
    bump(tx, side, order_id)?;
    let status = find_order(tx, side, order_id)?.map(|o| o.status);
    if status.as_deref() != Some("cancelled") {
        settle_status(tx, side, order_id)?;
    }
    Ok(())
}
