//! Sales and purchase orders: one implementation for both sides (a [`Side`] names the
//! tables, the party and the words), a header described for the access layer (so lists,
//! filters, field permissions and the "own orders" record rule are the generic ones),
//! and lines priced, taxed and totalled here.
//!
//! Must not: change a line once the order left draft (actions move quantities, never
//! prices); write stock or journal rows except through `inventory` and `posting`.

pub mod flow;
pub mod lines;
pub mod routes;

use rusqlite::{Connection, OptionalExtension, named_params};
use serde_json::{Map, Value as Json, json};

use crate::access::entity::{CurrencyOf, Entity, Field, Kind, OwnRowsRule};
use crate::access::values::from_scaled;
use crate::erp::catalog::{WAREHOUSES, qty_str};
use crate::erp::parties::{CUSTOMERS, SUPPLIERS};
use crate::error::{Error, Result};
use crate::reference::Reference;

/// Tenant setting: sales users see and act only on the sales orders they created.
pub const SALES_OWN_ORDERS: &str = "sales.own_orders_only";
/// Tenant setting: goods may be invoiced before they are delivered.
pub const INVOICE_BEFORE_DELIVERY: &str = "sales.invoice_before_delivery";

/// What differs between selling and buying.
pub struct Side {
    pub entity: &'static Entity,
    pub lines_table: &'static str,
    pub party_table: &'static str,
    pub party_field: &'static str,
    pub number_scope: &'static str,
    pub number_prefix: &'static str,
    /// The action moving stock (`deliver`/`receive`) and its status.
    pub move_action: &'static str,
    pub moved_status: &'static str,
    /// The action invoicing (`invoice`/`bill`) and its status.
    pub invoice_action: &'static str,
    pub invoiced_status: &'static str,
    /// JSON names of the line quantities kept in `moved` and `invoiced`.
    pub moved_name: &'static str,
    pub invoiced_name: &'static str,
    /// `customer` or `supplier` invoices.
    pub invoice_kind: &'static str,
}

impl Side {
    pub fn is_sales(&self) -> bool {
        self.invoice_kind == "customer"
    }
}

fn guard_sales_delete(c: &Connection, id: &str) -> Result<()> {
    only_drafts(c, "sales_orders", id)
}

fn guard_purchase_delete(c: &Connection, id: &str) -> Result<()> {
    only_drafts(c, "purchase_orders", id)
}

fn only_drafts(c: &Connection, table: &'static str, id: &str) -> Result<()> {
    let status: Option<String> = c
        .prepare_cached(&format!("SELECT status FROM {table} WHERE id = :id"))?
        .query_row(named_params! { ":id": id }, |r| r.get(0))
        .optional()?;
    match status.as_deref() {
        None | Some("draft") => Ok(()),
        Some(s) => Err(Error::Conflict(format!(
            "the order is {s}; only drafts are deleted (cancel it instead)"
        ))),
    }
}

const fn header(party: Field, statuses: &'static [&'static str]) -> [Field; 10] {
    [
        Field::new("number", Kind::Text { max: 40 }).query(),
        party,
        Field::new("currency", Kind::Currency).query(),
        Field::new("order_date", Kind::Date).query(),
        Field::new("warehouse_id", Kind::Ref(&WAREHOUSES)).query(),
        Field::new("status", Kind::Enum(statuses)).query(),
        Field::new("subtotal", Kind::Money(CurrencyOf::Field("currency"))),
        Field::new("tax_total", Kind::Money(CurrencyOf::Field("currency"))),
        Field::new("total", Kind::Money(CurrencyOf::Field("currency"))).query(),
        Field::new("memo", Kind::Text { max: 1000 }),
    ]
}

const SALES_FIELDS: [Field; 10] = header(
    Field::new("customer_id", Kind::Ref(&CUSTOMERS)).query(),
    &["draft", "confirmed", "delivered", "invoiced", "cancelled"],
);
const PURCHASE_FIELDS: [Field; 10] = header(
    Field::new("supplier_id", Kind::Ref(&SUPPLIERS)).query(),
    &["draft", "confirmed", "received", "billed", "cancelled"],
);

pub static SALES_ORDERS: Entity = Entity {
    name: "sales-orders",
    table: "sales_orders",
    fields: &SALES_FIELDS,
    own_rows: Some(OwnRowsRule {
        setting: SALES_OWN_ORDERS,
        column: "owner_id",
        roles: &["sales"],
    }),
    guard_delete: Some(guard_sales_delete),
};

pub static PURCHASE_ORDERS: Entity = Entity {
    name: "purchase-orders",
    table: "purchase_orders",
    fields: &PURCHASE_FIELDS,
    own_rows: None,
    guard_delete: Some(guard_purchase_delete),
};

pub static SALES: Side = Side {
    entity: &SALES_ORDERS,
    lines_table: "sales_order_lines",
    party_table: "customers",
    party_field: "customer_id",
    number_scope: "sales-order",
    number_prefix: "SO",
    move_action: "deliver",
    moved_status: "delivered",
    invoice_action: "invoice",
    invoiced_status: "invoiced",
    moved_name: "delivered_quantity",
    invoiced_name: "invoiced_quantity",
    invoice_kind: "customer",
};

pub static PURCHASES: Side = Side {
    entity: &PURCHASE_ORDERS,
    lines_table: "purchase_order_lines",
    party_table: "suppliers",
    party_field: "supplier_id",
    number_scope: "purchase-order",
    number_prefix: "PO",
    move_action: "receive",
    moved_status: "received",
    invoice_action: "bill",
    invoiced_status: "billed",
    moved_name: "received_quantity",
    invoiced_name: "billed_quantity",
    invoice_kind: "supplier",
};

/// An order header as the workflow needs it (not access-filtered: for internal use).
#[derive(Debug, Clone)]
pub struct Order {
    pub id: String,
    pub version: i64,
    pub number: String,
    pub party_id: String,
    pub currency: String,
    pub order_date: String,
    pub warehouse_id: String,
    pub status: String,
    pub total: i64,
}

/// A stored order line.
#[derive(Debug, Clone)]
pub struct Line {
    pub line_no: i64,
    pub product_id: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub discount: i64,
    pub tax_rate: i64,
    pub net: i64,
    pub tax: i64,
    pub moved: i64,
    pub invoiced: i64,
    pub reserved: i64,
    /// Purchase lines: the base value booked by receipts and cleared by bills.
    pub received_value: i64,
    pub billed_value: i64,
    /// `goods` or `service`.
    pub kind: String,
}

pub fn find_order(c: &Connection, side: &Side, id: &str) -> Result<Option<Order>> {
    let sql = format!(
        "SELECT id, version, number, {}, currency, order_date, warehouse_id, status, total \
         FROM {} WHERE id = :id AND deleted_at IS NULL",
        side.party_field, side.entity.table
    );
    Ok(c.prepare_cached(&sql)?
        .query_row(named_params! { ":id": id }, |r| {
            Ok(Order {
                id: r.get(0)?,
                version: r.get(1)?,
                number: r.get(2)?,
                party_id: r.get(3)?,
                currency: r.get(4)?,
                order_date: r.get(5)?,
                warehouse_id: r.get(6)?,
                status: r.get(7)?,
                total: r.get(8)?,
            })
        })
        .optional()?)
}

pub fn load_lines(c: &Connection, side: &Side, order_id: &str) -> Result<Vec<Line>> {
    let value_cols = if side.is_sales() {
        "0, 0"
    } else {
        "l.received_value, l.billed_value"
    };
    let sql = format!(
        "SELECT l.line_no, l.product_id, l.quantity, l.unit_price, l.discount_percent, l.tax_rate, \
         l.net, l.tax, l.moved, l.invoiced, l.reserved, {value_cols}, p.kind \
         FROM {} l JOIN products p ON p.id = l.product_id WHERE l.order_id = :id ORDER BY l.line_no",
        side.lines_table
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(named_params! { ":id": order_id }, |r| {
        Ok(Line {
            line_no: r.get(0)?,
            product_id: r.get(1)?,
            quantity: r.get(2)?,
            unit_price: r.get(3)?,
            discount: r.get(4)?,
            tax_rate: r.get(5)?,
            net: r.get(6)?,
            tax: r.get(7)?,
            moved: r.get(8)?,
            invoiced: r.get(9)?,
            reserved: r.get(10)?,
            received_value: r.get(11)?,
            billed_value: r.get(12)?,
            kind: r.get(13)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Lines as JSON, in the order's currency.
pub fn render_lines(lines: &[Line], side: &Side, currency: &str, reference: &Reference) -> Json {
    let minor = reference.minor_units(currency).unwrap_or(2);
    let qty = qty_str;
    let money = |m: i64| from_scaled(m, minor).to_string();
    let rate = |r: i64| from_scaled(r, lines::RATE_SCALE).normalize().to_string();
    Json::Array(
        lines
            .iter()
            .map(|l| {
                let mut o = Map::new();
                o.insert("line_no".into(), json!(l.line_no));
                o.insert("product_id".into(), json!(l.product_id));
                o.insert("quantity".into(), json!(qty(l.quantity)));
                o.insert("unit_price".into(), json!(money(l.unit_price)));
                o.insert("discount_percent".into(), json!(rate(l.discount)));
                o.insert("tax_rate".into(), json!(rate(l.tax_rate)));
                o.insert("net".into(), json!(money(l.net)));
                o.insert("tax".into(), json!(money(l.tax)));
                o.insert(side.moved_name.into(), json!(qty(l.moved)));
                o.insert(side.invoiced_name.into(), json!(qty(l.invoiced)));
                if side.is_sales() {
                    o.insert("reserved_quantity".into(), json!(qty(l.reserved)));
                }
                Json::Object(o)
            })
            .collect(),
    )
}

/// Set the status an order's quantities imply (after an action moved them).
pub fn settle_status(tx: &Connection, side: &Side, order_id: &str) -> Result<String> {
    let lines = load_lines(tx, side, order_id)?;
    let all_invoiced = lines.iter().all(|l| l.invoiced >= l.quantity);
    let all_moved = lines
        .iter()
        .all(|l| l.kind != "goods" || l.moved >= l.quantity);
    let status = if all_invoiced && all_moved {
        side.invoiced_status
    } else if all_moved && lines.iter().any(|l| l.kind == "goods") {
        side.moved_status
    } else {
        "confirmed"
    };
    set_status(tx, side, order_id, status)?;
    Ok(status.to_owned())
}

/// Write an order's status (and bump its version).
pub fn set_status(tx: &Connection, side: &Side, order_id: &str, status: &str) -> Result<()> {
    tx.prepare_cached(&format!(
        "UPDATE {} SET status = :s, version = version + 1, updated_at = :now WHERE id = :id",
        side.entity.table
    ))?
    .execute(
        named_params! { ":s": status, ":now": crate::clock::now_rfc3339(), ":id": order_id },
    )?;
    Ok(())
}
