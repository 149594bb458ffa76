//! The living demo: `erpd serve --demo` fills the `demo` tenant with warehouses, products,
//! parties, stock, and orders and invoices in every state, through the same workflow
//! functions the API uses (so the demo's books balance like any tenant's).

use rusqlite::{Connection, OptionalExtension};
use serde_json::{Map, Value as Json, json};

use crate::access::entity::Entity;
use crate::access::store;
use crate::access::write::{self, Mode};
use crate::erp::catalog::{PRICE_LISTS, PRODUCTS, WAREHOUSES};
use crate::erp::inventory::routes::adjust;
use crate::erp::orders::flow::{self, Cx};
use crate::erp::orders::{PURCHASES, SALES, Side};
use crate::erp::parties::{CUSTOMERS, SUPPLIERS};
use crate::erp::{invoices, settings};
use crate::error::{Error, Result};
use crate::http::scope::Scope;

fn obj(v: Json) -> Map<String, Json> {
    match v {
        Json::Object(m) => m,
        _ => Map::new(),
    }
}

/// `YYYY-MM-DD`, `days` before today.
fn days_ago(days: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    (crate::clock::now() - time::Duration::days(days))
        .date()
        .format(&fmt)
        .unwrap_or_default()
}

struct Seeder<'a> {
    tx: &'a Connection,
    scope: &'a Scope,
    settings: std::collections::BTreeSet<String>,
}

impl Seeder<'_> {
    fn cx(&self) -> Cx<'_> {
        Cx {
            scope: self.scope,
            settings: &self.settings,
        }
    }

    fn insert(&self, e: &'static Entity, body: Json) -> Result<String> {
        let viewer = self.scope.viewer(&self.settings);
        let ctx = self.scope.ctx();
        let body = obj(body);
        let currency = body
            .get("currency")
            .and_then(Json::as_str)
            .map(str::to_owned);
        let values = write::values(e, &viewer, &body, Mode::Create, currency.as_deref(), &ctx)?;
        store::insert(
            self.tx,
            e,
            &values,
            &self.scope.principal.user_id,
            &self.scope.act(),
            &ctx,
        )
    }

    fn order(&self, side: &Side, party: &str, days: i64, lines: Json) -> Result<String> {
        let party_field = side.party_field;
        flow::create(
            self.tx,
            side,
            &self.cx(),
            &obj(json!({ party_field: party, "order_date": days_ago(days), "lines": lines })),
        )
    }

    fn confirm(&self, side: &Side, id: &str) -> Result<()> {
        flow::confirm(self.tx, side, &self.cx(), id)
    }

    fn move_stock(&self, side: &Side, id: &str, days: i64, lines: Option<Json>) -> Result<()> {
        let mut body = json!({ "date": days_ago(days) });
        if let Some(l) = lines {
            body["lines"] = l;
        }
        flow::move_stock(self.tx, side, &self.cx(), id, &obj(body))
    }

    fn invoice(&self, side: &Side, id: &str, days: i64) -> Result<String> {
        flow::invoice(
            self.tx,
            side,
            &self.cx(),
            id,
            &obj(json!({ "date": days_ago(days) })),
        )
    }

    fn pay(&self, invoice: &str, amount: i64, days: i64) -> Result<String> {
        invoices::pay(self.tx, self.scope, invoice, amount, &days_ago(days))
    }

    fn amount_due(&self, invoice: &str) -> Result<i64> {
        Ok(invoices::find(self.tx, invoice)?
            .ok_or(Error::NotFound)?
            .amount_due)
    }
}

/// Fill a fresh tenant (base currency EUR) with sample data in every state.
pub fn seed(tx: &Connection, scope: &Scope) -> Result<()> {
    let s = Seeder {
        tx,
        scope,
        settings: settings::enabled(tx)?,
    };
    let main = s.insert(
        &WAREHOUSES,
        json!({"code": "MAIN", "name": "Main warehouse"}),
    )?;
    s.insert(&WAREHOUSES, json!({"code": "EAST", "name": "East depot"}))?;
    let catalog = [
        (
            "DESK-OAK", "Oak desk", "249.00", "standard", "goods", "unit",
        ),
        (
            "CHAIR-ERGO",
            "Ergonomic chair",
            "189.00",
            "standard",
            "goods",
            "unit",
        ),
        (
            "LAMP-LED",
            "LED desk lamp",
            "39.90",
            "standard",
            "goods",
            "unit",
        ),
        (
            "ARM-MON",
            "Monitor arm",
            "59.00",
            "standard",
            "goods",
            "unit",
        ),
        (
            "BOOK-GUIDE",
            "Office guide (book)",
            "24.00",
            "reduced",
            "goods",
            "unit",
        ),
        (
            "SVC-ASSEMBLY",
            "Assembly",
            "45.00",
            "standard",
            "service",
            "h",
        ),
    ];
    let mut products = Vec::new();
    for (sku, name, price, tax, kind, uom) in catalog {
        products.push(s.insert(
            &PRODUCTS,
            json!({"sku": sku, "name": name, "list_price": price, "tax_category": tax, "kind": kind, "uom": uom}),
        )?);
    }
    let (desk, chair, lamp, arm, book, assembly) = (
        &products[0],
        &products[1],
        &products[2],
        &products[3],
        &products[4],
        &products[5],
    );
    let trade = s.insert(&PRICE_LISTS, json!({"name": "Trade", "currency": "EUR"}))?;
    tx.execute(
        "INSERT INTO price_list_items (price_list_id, product_id, min_quantity, unit_price) VALUES \
         (?1, ?2, 0, 22900), (?1, ?2, 5000000, 21900), (?1, ?3, 0, 3600)",
        rusqlite::params![trade, desk, lamp],
    )?;
    let customers = [
        json!({"name": "Northwind Offices", "email": "buy@northwind.example", "payment_terms_days": 30, "credit_limit": "20000.00", "price_list_id": trade}),
        json!({"name": "Blue Harbor Cafe", "email": "hello@blueharbor.example", "payment_terms_days": 14}),
        json!({"name": "Studio Kimura", "email": "office@kimura.example", "payment_terms_days": 30, "credit_limit": "1500.00"}),
    ];
    let mut cust = Vec::new();
    for c in customers {
        cust.push(s.insert(&CUSTOMERS, c)?);
    }
    let furn = s.insert(
        &SUPPLIERS,
        json!({"name": "Nordic Furniture Works", "email": "orders@nordicfw.example", "payment_terms_days": 30}),
    )?;
    let light = s.insert(
        &SUPPLIERS,
        json!({"name": "Lumen Supply", "email": "sales@lumen.example"}),
    )?;

    // Procure to pay: received, billed and paid; received and billed; received only;
    // confirmed; draft.
    let po1 = s.order(
        &PURCHASES,
        &furn,
        95,
        json!([{"product_id": desk, "quantity": "20", "unit_price": "120.00"},
               {"product_id": chair, "quantity": "30", "unit_price": "85.00"}]),
    )?;
    s.confirm(&PURCHASES, &po1)?;
    s.move_stock(&PURCHASES, &po1, 90, None)?;
    let bill1 = s.invoice(&PURCHASES, &po1, 88)?;
    s.pay(&bill1, s.amount_due(&bill1)?, 60)?;
    let po2 = s.order(
        &PURCHASES,
        &light,
        70,
        json!([{"product_id": lamp, "quantity": "60", "unit_price": "14.50"},
               {"product_id": arm, "quantity": "25", "unit_price": "22.00"}]),
    )?;
    s.confirm(&PURCHASES, &po2)?;
    s.move_stock(&PURCHASES, &po2, 65, None)?;
    s.invoice(&PURCHASES, &po2, 64)?;
    let po3 = s.order(
        &PURCHASES,
        &furn,
        20,
        json!([{"product_id": desk, "quantity": "10", "unit_price": "126.00"}]),
    )?;
    s.confirm(&PURCHASES, &po3)?;
    s.move_stock(&PURCHASES, &po3, 15, None)?;
    let po4 = s.order(
        &PURCHASES,
        &light,
        5,
        json!([{"product_id": lamp, "quantity": "40", "unit_price": "14.00"}]),
    )?;
    s.confirm(&PURCHASES, &po4)?;
    s.order(
        &PURCHASES,
        &furn,
        1,
        json!([{"product_id": chair, "quantity": "12", "unit_price": "84.00"}]),
    )?;
    adjust(
        tx,
        &s.cx(),
        &obj(
            json!({"warehouse_id": main, "reason": "opening count", "date": days_ago(92),
                    "lines": [{"product_id": book, "quantity": "50", "unit_cost": "9.50"}]}),
        ),
    )?;

    // Order to cash, one order in every state.
    let paid = s.order(
        &SALES,
        &cust[0],
        80,
        json!([{"product_id": desk, "quantity": "6"}, {"product_id": assembly, "quantity": "3"}]),
    )?;
    s.confirm(&SALES, &paid)?;
    s.move_stock(&SALES, &paid, 78, None)?;
    let inv_paid = s.invoice(&SALES, &paid, 78)?;
    s.pay(&inv_paid, s.amount_due(&inv_paid)?, 50)?;

    let part_paid = s.order(
        &SALES,
        &cust[1],
        50,
        json!([{"product_id": lamp, "quantity": "10", "discount_percent": "0.1"},
               {"product_id": book, "quantity": "8"}]),
    )?;
    s.confirm(&SALES, &part_paid)?;
    s.move_stock(&SALES, &part_paid, 49, None)?;
    let inv_part = s.invoice(&SALES, &part_paid, 48)?;
    s.pay(&inv_part, s.amount_due(&inv_part)? / 2, 20)?;

    let overdue = s.order(
        &SALES,
        &cust[2],
        45,
        json!([{"product_id": chair, "quantity": "4"}, {"product_id": arm, "quantity": "4"}]),
    )?;
    s.confirm(&SALES, &overdue)?;
    s.move_stock(&SALES, &overdue, 44, None)?;
    s.invoice(&SALES, &overdue, 44)?;

    let credited = s.order(
        &SALES,
        &cust[1],
        30,
        json!([{"product_id": chair, "quantity": "1"}]),
    )?;
    s.confirm(&SALES, &credited)?;
    s.move_stock(&SALES, &credited, 29, None)?;
    let inv_credited = s.invoice(&SALES, &credited, 29)?;
    invoices::credit(tx, scope, &inv_credited, &days_ago(25))?;

    let delivered = s.order(
        &SALES,
        &cust[0],
        12,
        json!([{"product_id": desk, "quantity": "3"}, {"product_id": lamp, "quantity": "3"}]),
    )?;
    s.confirm(&SALES, &delivered)?;
    s.move_stock(&SALES, &delivered, 10, None)?;

    let partial = s.order(
        &SALES,
        &cust[0],
        6,
        json!([{"product_id": chair, "quantity": "8"}, {"product_id": assembly, "quantity": "4"}]),
    )?;
    s.confirm(&SALES, &partial)?;
    s.move_stock(
        &SALES,
        &partial,
        5,
        Some(json!([{"line_no": 1, "quantity": "5"}])),
    )?;

    let confirmed = s.order(
        &SALES,
        &cust[2],
        3,
        json!([{"product_id": lamp, "quantity": "5"}]),
    )?;
    s.confirm(&SALES, &confirmed)?;

    let cancelled = s.order(
        &SALES,
        &cust[1],
        4,
        json!([{"product_id": book, "quantity": "2"}]),
    )?;
    flow::cancel(tx, &SALES, &s.cx(), &cancelled)?;

    // Two drafts: the printed curl line confirms one, the other stays a draft.
    s.order(
        &SALES,
        &cust[1],
        1,
        json!([{"product_id": book, "quantity": "5"}]),
    )?;
    s.order(
        &SALES,
        &cust[0],
        0,
        json!([{"product_id": desk, "quantity": "2"}, {"product_id": chair, "quantity": "2"},
               {"product_id": assembly, "quantity": "2"}]),
    )?;
    Ok(())
}

/// A draft sales order of the demo (the one the printed curl line confirms).
pub fn draft_order(c: &Connection) -> Result<Option<String>> {
    Ok(c
        .query_row(
            "SELECT id FROM sales_orders WHERE status = 'draft' AND deleted_at IS NULL ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?)
}
