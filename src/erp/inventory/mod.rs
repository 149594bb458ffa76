//! Inventory: the append-only stock ledger (`stock_moves`), the levels kept beside it
//! (on hand, reserved) and moving-average valuation per product.
//!
//! Every move's signed `value` (base minor units) is what the inventory account moves by;
//! the caller posts that amount in the same transaction, so the stock valuation and the
//! inventory account agree by construction. Plain functions on a transaction.
//!
//! Must not: update or delete a stock move; let on-hand go below zero unless the tenant
//! setting `inventory.allow_negative_stock` is on.

pub mod routes;
pub mod valuation;

use rusqlite::{Connection, OptionalExtension, named_params};

use crate::access::entity::{Bound, Entity, Field, Kind};
use crate::erp::catalog::{PRODUCTS, QTY_SCALE, WAREHOUSES, qty_str};
use crate::error::{Error, Result};
use valuation::Valuation;

/// Tenant setting: deliveries and adjustments may take on-hand below zero.
pub const ALLOW_NEGATIVE_STOCK: &str = "inventory.allow_negative_stock";

/// The stock ledger, read-only through the generic list/get routes.
pub static STOCK_MOVES: Entity = Entity {
    name: "stock-moves",
    table: "stock_moves",
    fields: &[
        Field::new("date", Kind::Date).query(),
        Field::new("product_id", Kind::Ref(&PRODUCTS)).query(),
        Field::new("warehouse_id", Kind::Ref(&WAREHOUSES)).query(),
        Field::new(
            "quantity",
            Kind::Decimal {
                scale: QTY_SCALE,
                min: Bound::Any,
            },
        ),
        Field::new("kind", Kind::Enum(&["receipt", "delivery", "adjustment"])).query(),
        Field::new("source", Kind::Text { max: 40 }).query(),
        Field::new("source_id", Kind::Text { max: 64 }).query(),
        Field::new("journal_entry_id", Kind::Text { max: 64 }).query(),
    ],
    own_rows: None,
    guard_delete: None,
};

/// One move to write. `quantity` is positive; `kind` says the direction.
pub struct Move<'a> {
    pub date: &'a str,
    pub product_id: &'a str,
    pub warehouse_id: &'a str,
    pub quantity: i64,
    pub kind: &'static str,
    pub source: &'static str,
    pub source_id: &'a str,
    pub owner: &'a str,
}

/// The product's kind, if it is a live product.
pub fn product_kind(c: &Connection, product_id: &str) -> Result<Option<String>> {
    Ok(
        c.prepare_cached("SELECT kind FROM products WHERE id = :id AND deleted_at IS NULL")?
            .query_row(named_params! { ":id": product_id }, |r| r.get(0))
            .optional()?,
    )
}

pub fn warehouse_exists(c: &Connection, id: &str) -> Result<bool> {
    Ok(
        c.prepare_cached("SELECT 1 FROM warehouses WHERE id = :id AND deleted_at IS NULL")?
            .exists(named_params! { ":id": id })?,
    )
}

/// The tenant's first warehouse (documents default to it).
pub fn first_warehouse(c: &Connection) -> Result<Option<String>> {
    Ok(c.prepare_cached(
        "SELECT id FROM warehouses WHERE deleted_at IS NULL ORDER BY created_at, id LIMIT 1",
    )?
    .query_row([], |r| r.get(0))
    .optional()?)
}

/// (on hand, reserved) of a product in a warehouse.
pub fn level(c: &Connection, product_id: &str, warehouse_id: &str) -> Result<(i64, i64)> {
    Ok(c.prepare_cached(
        "SELECT on_hand, reserved FROM stock_levels WHERE product_id = :p AND warehouse_id = :w",
    )?
    .query_row(
        named_params! { ":p": product_id, ":w": warehouse_id },
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?
    .unwrap_or((0, 0)))
}

fn add_level(
    tx: &Connection,
    product_id: &str,
    warehouse_id: &str,
    on_hand: i64,
    reserved: i64,
) -> Result<()> {
    // UPDATE first: an upsert would check the CHECK constraints against the INSERT values
    // (a negative reserved delta) even when the row exists.
    let updated = tx
        .prepare_cached(
            "UPDATE stock_levels SET on_hand = on_hand + :o, reserved = reserved + :r \
             WHERE product_id = :p AND warehouse_id = :w",
        )?
        .execute(
            named_params! { ":p": product_id, ":w": warehouse_id, ":o": on_hand, ":r": reserved },
        )?;
    if updated == 0 {
        tx.prepare_cached(
            "INSERT INTO stock_levels (product_id, warehouse_id, on_hand, reserved) VALUES (:p, :w, :o, :r)",
        )?
        .execute(named_params! { ":p": product_id, ":w": warehouse_id, ":o": on_hand, ":r": reserved })?;
    }
    Ok(())
}

fn valuation_of(c: &Connection, product_id: &str) -> Result<(Valuation, i64)> {
    let v = c
        .prepare_cached("SELECT quantity, value FROM stock_valuation WHERE product_id = :p")?
        .query_row(named_params! { ":p": product_id }, |r| {
            Ok(Valuation {
                quantity: r.get(0)?,
                value: r.get(1)?,
            })
        })
        .optional()?
        .unwrap_or_default();
    let cost: i64 = c
        .prepare_cached("SELECT cost FROM products WHERE id = :p")?
        .query_row(named_params! { ":p": product_id }, |r| r.get(0))?;
    Ok((v, cost))
}

fn save_valuation(tx: &Connection, product_id: &str, v: Valuation) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO stock_valuation (product_id, quantity, value) VALUES (:p, :q, :v) \
         ON CONFLICT (product_id) DO UPDATE SET quantity = :q, value = :v",
    )?
    .execute(named_params! { ":p": product_id, ":q": v.quantity, ":v": v.value })?;
    // The product's cost field shows the moving average; it keeps the last one while
    // nothing is on hand.
    if let Some(cost) = v.unit_cost() {
        tx.prepare_cached(
            "UPDATE products SET cost = :c, version = version + 1, updated_at = :now \
             WHERE id = :p AND cost <> :c",
        )?
        .execute(
            named_params! { ":p": product_id, ":c": cost, ":now": crate::clock::now_rfc3339() },
        )?;
    }
    Ok(())
}

fn insert_move(tx: &Connection, m: &Move<'_>, signed_qty: i64, value: i64) -> Result<String> {
    let now = crate::clock::now_rfc3339();
    let id = uuid::Uuid::now_v7().to_string();
    tx.prepare_cached(
        "INSERT INTO stock_moves (id, created_at, updated_at, owner_id, date, product_id, warehouse_id, \
         quantity, value, kind, source, source_id) \
         VALUES (:id, :now, :now, :o, :d, :p, :w, :q, :v, :k, :s, :sid)",
    )?
    .execute(named_params! {
        ":id": id, ":now": now, ":o": m.owner, ":d": m.date,
        ":p": m.product_id, ":w": m.warehouse_id, ":q": signed_qty, ":v": value, ":k": m.kind,
        ":s": m.source, ":sid": m.source_id,
    })?;
    Ok(id)
}

/// Stock in at `value` (base minor units for the whole quantity); updates the moving
/// average. Returns the move's id.
pub fn receive(tx: &Connection, m: &Move<'_>, value: i64) -> Result<String> {
    if m.quantity <= 0 {
        return Err(Error::invalid("quantity", "must be more than zero"));
    }
    let (v, _) = valuation_of(tx, m.product_id)?;
    let id = insert_move(tx, m, m.quantity, value)?;
    add_level(tx, m.product_id, m.warehouse_id, m.quantity, 0)?;
    save_valuation(tx, m.product_id, v.receive(m.quantity, value))?;
    Ok(id)
}

/// Stock out at valuation cost; returns the value taken (positive base minor units) and
/// the move's id.
pub fn issue(tx: &Connection, m: &Move<'_>, allow_negative: bool) -> Result<(i64, String)> {
    if m.quantity <= 0 {
        return Err(Error::invalid("quantity", "must be more than zero"));
    }
    let (on_hand, _) = level(tx, m.product_id, m.warehouse_id)?;
    if on_hand < m.quantity && !allow_negative {
        return Err(Error::rule(
            "insufficient-stock",
            format!(
                "product {} has {} on hand in warehouse {}; {} requested",
                m.product_id,
                qty_str(on_hand),
                m.warehouse_id,
                qty_str(m.quantity)
            ),
        ));
    }
    let (v, cost) = valuation_of(tx, m.product_id)?;
    let (taken, after) = v.issue(m.quantity, cost);
    let id = insert_move(tx, m, -m.quantity, -taken)?;
    add_level(tx, m.product_id, m.warehouse_id, -m.quantity, 0)?;
    save_valuation(tx, m.product_id, after)?;
    Ok((taken, id))
}

/// Reserve for a confirmed order: available (on hand − reserved) must cover it.
pub fn reserve(
    tx: &Connection,
    product_id: &str,
    warehouse_id: &str,
    qty: i64,
    allow_negative: bool,
) -> Result<()> {
    let (on_hand, reserved) = level(tx, product_id, warehouse_id)?;
    if on_hand - reserved < qty && !allow_negative {
        return Err(Error::rule(
            "insufficient-stock",
            format!(
                "product {product_id} has {} available in warehouse {warehouse_id}; {} requested",
                qty_str(on_hand - reserved),
                qty_str(qty)
            ),
        ));
    }
    add_level(tx, product_id, warehouse_id, 0, qty)
}

pub fn release(tx: &Connection, product_id: &str, warehouse_id: &str, qty: i64) -> Result<()> {
    if qty > 0 {
        add_level(tx, product_id, warehouse_id, 0, -qty)?;
    }
    Ok(())
}

/// Point moves at the journal entry that booked their value.
pub fn link_entry(tx: &Connection, move_ids: &[String], entry_id: &str) -> Result<()> {
    let mut stmt =
        tx.prepare_cached("UPDATE stock_moves SET journal_entry_id = :e WHERE id = :id")?;
    for id in move_ids {
        stmt.execute(named_params! { ":e": entry_id, ":id": id })?;
    }
    Ok(())
}
