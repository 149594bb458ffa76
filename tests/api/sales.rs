//! Sales, purchasing and inventory over HTTP (issue 5): procure to pay and order to cash
//! with exact figures (quantities, moving average, every journal line), partial
//! deliveries and invoices, payments with exchange differences, credit notes, aging, the
//! bad-input cases (each changing nothing) and the sales-order record rule.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};

use crate::fixtures::{Tenant, tenant};
use crate::helpers::*;

/// A tenant with a warehouse, two products, a customer and a supplier.
pub struct Shop {
    pub t: Tenant,
    pub wh: String,
    pub widget: String,
    pub service: String,
    pub customer: String,
    pub supplier: String,
}

impl Shop {
    pub async fn new(id: &str) -> Self {
        let t = tenant(id).await;
        let o = t.owner.clone();
        let r = t
            .put_json(&t.path("tax-rules/standard"), &o, &json!({"rate": "0.2"}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let wh = t
            .create_ok(&o, "warehouses", &json!({"code": "MAIN", "name": "Main"}))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let widget = t
            .create_ok(
                &o,
                "products",
                &json!({"sku": "W-1", "name": "Widget", "list_price": "10.00"}),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let service = t
            .create_ok(
                &o,
                "products",
                &json!({"sku": "S-1", "name": "Installation", "kind": "service", "list_price": "50.00"}),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let customer = t
            .create_ok(
                &o,
                "customers",
                &json!({"name": "Ada", "payment_terms_days": 30}),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let supplier = t
            .create_ok(&o, "suppliers", &json!({"name": "Parts Ltd"}))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        Shop {
            t,
            wh,
            widget,
            service,
            customer,
            supplier,
        }
    }

    pub async fn post(&self, token: &str, path: &str, body: &Value) -> Resp {
        self.t.app.post_json(&self.t.path(path), token, body).await
    }

    /// POST as the owner; panics unless `status`.
    pub async fn post_ok(&self, path: &str, body: &Value, status: u16) -> Value {
        let r = self.post(&self.t.owner, path, body).await;
        let log = if r.status >= 500 {
            self.t.app.stderr()
        } else {
            String::new()
        };
        assert_eq!(r.status, status, "POST {path} {body}: {}\n{log}", r.text);
        r.json()
    }

    pub async fn get_ok(&self, path: &str) -> Value {
        let r = self.t.app.get(&self.t.path(path), &self.t.owner).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.text);
        r.json()
    }

    pub async fn order(&self, side: &str, party: &str, lines: Value) -> Value {
        let party_field = if side == "sales-orders" {
            "customer_id"
        } else {
            "supplier_id"
        };
        self.post_ok(
            side,
            &json!({ party_field: party, "order_date": "2026-03-01", "lines": lines }),
            201,
        )
        .await
    }

    /// `{code: balance}` of the trial balance on a date, plus the totals.
    pub async fn balances(&self, as_of: &str) -> BTreeMap<String, String> {
        let tb = self
            .get_ok(&format!("reports/trial-balance?as_of={as_of}"))
            .await;
        assert_eq!(tb["total_debit"], tb["total_credit"], "{tb}");
        tb["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["code"].as_str().unwrap().to_owned(),
                    l["balance"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    pub async fn stock(&self, product: &str) -> Value {
        let s = self
            .get_ok(&format!(
                "stock?product_id={product}&warehouse_id={}",
                self.wh
            ))
            .await;
        s["items"][0].clone()
    }

    /// Lines of a journal entry as (account code, debit, credit), sorted.
    pub async fn entry_lines(&self, entry_id: &str) -> Vec<(String, String, String)> {
        let e = self.get_ok(&format!("journal-entries/{entry_id}")).await;
        let accounts = self.get_ok("accounts?limit=200").await;
        let code_of = |id: &str| {
            accounts["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["id"] == id)
                .map(|a| a["code"].as_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        let mut out: Vec<_> = e["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    code_of(l["account_id"].as_str().unwrap()),
                    l["debit"].as_str().unwrap().to_owned(),
                    l["credit"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// The journal entries a document produced, oldest first.
    pub async fn entries_of(&self, source_id: &str) -> Vec<Value> {
        let all = self.get_ok("journal-entries?limit=500").await;
        all["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["source_id"] == source_id)
            .cloned()
            .collect()
    }
}

fn l(code: &str, debit: &str, credit: &str) -> (String, String, String) {
    (code.to_owned(), debit.to_owned(), credit.to_owned())
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn procure_to_pay_and_order_to_cash_with_exact_figures() {
    let s = Shop::new("shop").await;

    // --- Procure to pay: 10 at 5.00, then 30 at 7.00 received in two parts.
    let po1 = s
        .order(
            "purchase-orders",
            &s.supplier,
            json!([{"product_id": s.widget, "quantity": "10", "unit_price": "5.00"}]),
        )
        .await;
    assert_eq!(
        (
            &po1["number"],
            &po1["status"],
            &po1["subtotal"],
            &po1["tax_total"],
            &po1["total"]
        ),
        (
            &json!("PO-2026-000001"),
            &json!("draft"),
            &json!("50.00"),
            &json!("10.00"),
            &json!("60.00")
        )
    );
    let po1_id = id(&po1);
    s.post_ok(
        &format!("purchase-orders/{po1_id}/confirm"),
        &json!({}),
        200,
    )
    .await;
    let received = s
        .post_ok(
            &format!("purchase-orders/{po1_id}/receive"),
            &json!({"date": "2026-03-02"}),
            200,
        )
        .await;
    assert_eq!(received["status"], "received");
    assert_eq!(received["lines"][0]["received_quantity"], "10");
    let receipt = &s.entries_of(&po1_id).await[0];
    assert_eq!(
        s.entry_lines(receipt["id"].as_str().unwrap()).await,
        vec![l("1300", "50.00", "0.00"), l("2200", "0.00", "50.00")]
    );
    let bill = s
        .post_ok(
            &format!("purchase-orders/{po1_id}/bill"),
            &json!({"date": "2026-03-03"}),
            201,
        )
        .await;
    assert_eq!(
        (
            &bill["number"],
            &bill["kind"],
            &bill["total"],
            &bill["amount_due"],
            &bill["status"]
        ),
        (
            &json!("BILL-2026-000001"),
            &json!("supplier"),
            &json!("60.00"),
            &json!("60.00"),
            &json!("posted")
        )
    );
    assert_eq!(
        s.entry_lines(bill["journal_entry_id"].as_str().unwrap())
            .await,
        vec![
            l("1400", "10.00", "0.00"),
            l("2000", "0.00", "60.00"),
            l("2200", "50.00", "0.00"),
        ]
    );
    let po1_after = s.get_ok(&format!("purchase-orders/{po1_id}")).await;
    assert_eq!(po1_after["status"], "billed");

    let po2 = s
        .order(
            "purchase-orders",
            &s.supplier,
            json!([{"product_id": s.widget, "quantity": "30", "unit_price": "7.00"}]),
        )
        .await;
    let po2_id = id(&po2);
    s.post_ok(
        &format!("purchase-orders/{po2_id}/confirm"),
        &json!({}),
        200,
    )
    .await;
    let part = s
        .post_ok(
            &format!("purchase-orders/{po2_id}/receive"),
            &json!({"date": "2026-03-04", "lines": [{"line_no": 1, "quantity": "20"}]}),
            200,
        )
        .await;
    assert_eq!(
        (&part["status"], &part["lines"][0]["received_quantity"]),
        (&json!("confirmed"), &json!("20"))
    );
    s.post_ok(
        &format!("purchase-orders/{po2_id}/receive"),
        &json!({"date": "2026-03-05"}),
        200,
    )
    .await;
    // Moving average: (50.00 + 210.00) / 40 = 6.50.
    let widget = s.get_ok(&format!("products/{}", s.widget)).await;
    assert_eq!(widget["cost"], "6.50");
    assert_eq!(
        s.stock(&s.widget).await,
        json!({"product_id": s.widget, "warehouse_id": s.wh, "on_hand": "40", "reserved": "0", "available": "40"})
    );

    // --- Order to cash: 4 widgets at the list price and one service.
    let so = s
        .order(
            "sales-orders",
            &s.customer,
            json!([
                {"product_id": s.widget, "quantity": "4"},
                {"product_id": s.service, "quantity": "1"}
            ]),
        )
        .await;
    assert_eq!(
        (
            &so["number"],
            &so["subtotal"],
            &so["tax_total"],
            &so["total"],
            &so["currency"]
        ),
        (
            &json!("SO-2026-000001"),
            &json!("90.00"),
            &json!("18.00"),
            &json!("108.00"),
            &json!("EUR")
        )
    );
    assert_eq!(so["lines"][0]["unit_price"], "10.00");
    assert_eq!(so["lines"][0]["tax_rate"], "0.2");
    let so_id = id(&so);
    let confirmed = s
        .post_ok(&format!("sales-orders/{so_id}/confirm"), &json!({}), 200)
        .await;
    assert_eq!(confirmed["status"], "confirmed");
    assert_eq!(
        s.stock(&s.widget).await["available"],
        "36",
        "confirming reserves 4"
    );
    // Deliver 3 of 4: cost of goods sold 3 × 6.50.
    let d1 = s
        .post_ok(
            &format!("sales-orders/{so_id}/deliver"),
            &json!({"date": "2026-03-10", "lines": [{"line_no": 1, "quantity": "3"}]}),
            200,
        )
        .await;
    assert_eq!(
        (
            &d1["status"],
            &d1["lines"][0]["delivered_quantity"],
            &d1["lines"][0]["reserved_quantity"]
        ),
        (&json!("confirmed"), &json!("3"), &json!("1"))
    );
    assert_eq!(
        s.stock(&s.widget).await,
        json!({"product_id": s.widget, "warehouse_id": s.wh, "on_hand": "37", "reserved": "1", "available": "36"})
    );
    let delivery = &s.entries_of(&so_id).await[0];
    assert_eq!(
        s.entry_lines(delivery["id"].as_str().unwrap()).await,
        vec![l("1300", "0.00", "19.50"), l("5000", "19.50", "0.00")]
    );
    // Invoice what is delivered plus the service: 3 × 10 + 50 = 80, tax 16.
    let inv1 = s
        .post_ok(
            &format!("sales-orders/{so_id}/invoice"),
            &json!({"date": "2026-03-10"}),
            201,
        )
        .await;
    assert_eq!(
        (
            &inv1["number"],
            &inv1["subtotal"],
            &inv1["tax_total"],
            &inv1["total"],
            &inv1["due_date"]
        ),
        (
            &json!("INV-2026-000001"),
            &json!("80.00"),
            &json!("16.00"),
            &json!("96.00"),
            &json!("2026-04-09")
        )
    );
    assert_eq!(
        s.entry_lines(inv1["journal_entry_id"].as_str().unwrap())
            .await,
        vec![
            l("1200", "96.00", "0.00"),
            l("2100", "0.00", "16.00"),
            l("4000", "0.00", "80.00"),
        ]
    );
    // Deliver and invoice the last widget.
    let d2 = s
        .post_ok(
            &format!("sales-orders/{so_id}/deliver"),
            &json!({"date": "2026-03-11"}),
            200,
        )
        .await;
    assert_eq!(d2["status"], "delivered");
    let inv2 = s
        .post_ok(
            &format!("sales-orders/{so_id}/invoice"),
            &json!({"date": "2026-03-11"}),
            201,
        )
        .await;
    assert_eq!(
        (&inv2["number"], &inv2["total"]),
        (&json!("INV-2026-000002"), &json!("12.00"))
    );
    assert_eq!(
        s.get_ok(&format!("sales-orders/{so_id}")).await["status"],
        "invoiced"
    );

    // Payments: partial, then the rest; more than due is refused.
    let inv1_id = id(&inv1);
    let p1 = s
        .post_ok(
            "payments",
            &json!({"invoice_id": inv1_id, "amount": "50.00", "date": "2026-03-20"}),
            201,
        )
        .await;
    assert_eq!(p1["amount"], "50.00");
    let after = s.get_ok(&format!("invoices/{inv1_id}")).await;
    assert_eq!(
        (&after["amount_due"], &after["status"]),
        (&json!("46.00"), &json!("posted"))
    );
    let over = s
        .post(
            &s.t.owner,
            "payments",
            &json!({"invoice_id": inv1_id, "amount": "46.01"}),
        )
        .await;
    over.assert_problem(422);
    s.post_ok(
        "payments",
        &json!({"invoice_id": inv1_id, "amount": "46.00", "date": "2026-03-21"}),
        201,
    )
    .await;
    let paid = s.get_ok(&format!("invoices/{inv1_id}")).await;
    assert_eq!(
        (&paid["amount_due"], &paid["status"]),
        (&json!("0.00"), &json!("paid"))
    );

    // A paid invoice is credited, never deleted: the credit note owes the customer 96.00.
    let deleted =
        s.t.app
            .delete(&s.t.path(&format!("invoices/{inv1_id}")), &s.t.owner)
            .await;
    assert_eq!(deleted.status, 405, "{}", deleted.text);
    let cn = s
        .post_ok(
            &format!("invoices/{inv1_id}/credit"),
            &json!({"date": "2026-03-25"}),
            201,
        )
        .await;
    assert_eq!(
        (
            &cn["number"],
            &cn["credit_of"],
            &cn["total"],
            &cn["amount_due"],
            &cn["status"]
        ),
        (
            &json!("CN-2026-000001"),
            &json!(inv1_id),
            &json!("96.00"),
            &json!("96.00"),
            &json!("posted")
        )
    );
    assert_eq!(
        s.entry_lines(cn["journal_entry_id"].as_str().unwrap())
            .await,
        vec![
            l("1200", "0.00", "96.00"),
            l("2100", "16.00", "0.00"),
            l("4000", "80.00", "0.00"),
        ]
    );
    let original = s.get_ok(&format!("invoices/{inv1_id}")).await;
    assert_eq!(original["status"], "cancelled");
    s.post(
        &s.t.owner,
        &format!("invoices/{inv1_id}/credit"),
        &json!({}),
    )
    .await
    .assert_problem(409);
    // The credited quantities can be invoiced again.
    assert_eq!(
        s.get_ok(&format!("sales-orders/{so_id}")).await["status"],
        "delivered"
    );

    // Aging: INV-2 (12.00, due 2026-04-10) and the credit note (−96.00).
    let ar = s.get_ok("reports/ar-aging?as_of=2026-05-15").await;
    assert_eq!(ar["lines"][0]["party_id"], s.customer.as_str());
    assert_eq!(
        (&ar["lines"][0]["1-30"], &ar["lines"][0]["31-60"]),
        (&json!("-96.00"), &json!("12.00")),
        "{ar}"
    );
    assert_eq!(ar["totals"]["total"], "-84.00");
    let ap = s.get_ok("reports/ap-aging?as_of=2026-03-31").await;
    assert_eq!(ap["totals"]["total"], "60.00", "{ap}");

    // The books: receivables = open invoices; inventory = stock valuation.
    let b = s.balances("2026-12-31").await;
    assert_eq!(b["1200"], "-84.00");
    assert_eq!(b["2000"], "-60.00", "trial balances are debit-positive");
    let valuation = s.get_ok("reports/stock-valuation?as_of=2026-12-31").await;
    assert_eq!(valuation["total"], "234.00");
    assert_eq!(b["1300"], "234.00");
    assert_eq!(valuation["lines"][0]["quantity"], "36");
    let bs = s.get_ok("reports/balance-sheet?as_of=2026-12-31").await;
    let total = |k: &str| {
        bs[k]["total"]
            .as_str()
            .unwrap()
            .parse::<rust_decimal::Decimal>()
            .unwrap()
    };
    assert_eq!(
        total("assets"),
        total("liabilities") + total("equity"),
        "{bs}"
    );
}

#[tokio::test]
async fn price_lists_breaks_discounts_and_foreign_currency_payments() {
    let s = Shop::new("fx").await;
    let o = s.t.owner.clone();
    // Quantity breaks: 9.00 from 1, 8.00 from 10.
    let list = s
        .post_ok(
            "price-lists",
            &json!({"name": "Trade", "currency": "EUR", "items": [
                {"product_id": s.widget, "min_quantity": "1", "unit_price": "9.00"},
                {"product_id": s.widget, "min_quantity": "10", "unit_price": "8.00"}
            ]}),
            201,
        )
        .await;
    let trade = s
        .post_ok(
            "customers",
            &json!({"name": "Trader", "price_list_id": id(&list)}),
            201,
        )
        .await;
    let so = s
        .order(
            "sales-orders",
            &id(&trade),
            json!([
                {"product_id": s.widget, "quantity": "12"},
                {"product_id": s.widget, "quantity": "2", "discount_percent": "0.1"},
                {"product_id": s.widget, "quantity": "1", "unit_price": "11.11"}
            ]),
        )
        .await;
    let prices: Vec<_> = so["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["unit_price"].clone())
        .collect();
    assert_eq!(prices, [json!("8.00"), json!("9.00"), json!("11.11")]);
    // 96.00 + 16.20 + 11.11 = 123.31; tax 19.20 + 3.24 + 2.222 → 2.22 = 24.66.
    assert_eq!(
        (&so["subtotal"], &so["tax_total"], &so["total"]),
        (&json!("123.31"), &json!("24.66"), &json!("147.97"))
    );

    // A USD customer: invoice at 0.9, paid when the rate is 0.95 → exchange gain.
    let r =
        s.t.put_json(&s.t.path("currencies/USD"), &o, &json!({"enabled": true}))
            .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for (rate, date) in [("0.9", "2026-01-01"), ("0.95", "2026-04-01")] {
        s.post_ok(
            "exchange-rates",
            &json!({"from": "USD", "to": "EUR", "rate": rate, "date": date}),
            201,
        )
        .await;
    }
    let yank = s
        .post_ok(
            "customers",
            &json!({"name": "Yank", "currency": "USD"}),
            201,
        )
        .await;
    let usd = s
        .order(
            "sales-orders",
            &id(&yank),
            json!([{"product_id": s.service, "quantity": "1", "unit_price": "100.00"}]),
        )
        .await;
    assert_eq!(
        (&usd["currency"], &usd["total"]),
        (&json!("USD"), &json!("120.00"))
    );
    let usd_id = id(&usd);
    s.post_ok(&format!("sales-orders/{usd_id}/confirm"), &json!({}), 200)
        .await;
    let inv = s
        .post_ok(
            &format!("sales-orders/{usd_id}/invoice"),
            &json!({"date": "2026-03-15"}),
            201,
        )
        .await;
    assert_eq!(
        s.entry_lines(inv["journal_entry_id"].as_str().unwrap())
            .await,
        vec![
            l("1200", "108.00", "0.00"),
            l("2100", "0.00", "18.00"),
            l("4000", "0.00", "90.00")
        ]
    );
    let pay = s
        .post_ok(
            "payments",
            &json!({"invoice_id": id(&inv), "amount": "120.00", "date": "2026-04-10"}),
            201,
        )
        .await;
    assert_eq!(pay["exchange_difference"], "6.00");
    assert_eq!(
        s.entry_lines(pay["journal_entry_id"].as_str().unwrap())
            .await,
        vec![
            l("1100", "114.00", "0.00"),
            l("1200", "0.00", "108.00"),
            l("4100", "0.00", "6.00")
        ]
    );
    assert_eq!(
        s.get_ok(&format!("invoices/{}", id(&inv))).await["status"],
        "paid"
    );
    // A currency the tenant did not enable is refused.
    let gbp = s
        .post(
            &o,
            "sales-orders",
            &json!({"customer_id": s.customer, "currency": "GBP",
            "lines": [{"product_id": s.service, "quantity": "1"}]}),
        )
        .await;
    assert_eq!(gbp.assert_problem(422)["errors"][0]["field"], "currency");
}

/// Stock levels, order count, journal entry count and invoice count: what a failed
/// request must leave exactly as it was.
async fn footprint(s: &Shop) -> Value {
    let count = |v: &Value| v["items"].as_array().map_or(0, Vec::len);
    json!({
        "stock": s.get_ok("stock").await["items"],
        "orders": count(&s.get_ok("sales-orders?limit=500").await),
        "entries": count(&s.get_ok("journal-entries?limit=500").await),
        "invoices": count(&s.get_ok("invoices?limit=500").await),
        "moves": count(&s.get_ok("stock-moves?limit=500").await),
    })
}

#[tokio::test]
async fn bad_input_is_refused_clearly_and_changes_nothing() {
    let s = Shop::new("bad").await;
    let o = s.t.owner.clone();
    s.post_ok(
        "stock-adjustments",
        &json!({"warehouse_id": s.wh, "reason": "opening",
        "lines": [{"product_id": s.widget, "quantity": "5", "unit_cost": "4.00"}]}),
        201,
    )
    .await;
    let so = s
        .order(
            "sales-orders",
            &s.customer,
            json!([{"product_id": s.widget, "quantity": "2"}]),
        )
        .await;
    let so_id = id(&so);
    let before = footprint(&s).await;

    let (deliver, invoice) = (
        format!("sales-orders/{so_id}/deliver"),
        format!("sales-orders/{so_id}/invoice"),
    );
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "sales-orders",
            json!({"customer_id": s.customer, "lines": [{"product_id": "nope", "quantity": "1"}]}),
            422,
            "lines[0].product_id",
        ),
        (
            "sales-orders",
            json!({"customer_id": "nobody", "lines": [{"product_id": s.widget, "quantity": "1"}]}),
            422,
            "customer_id",
        ),
        (
            "sales-orders",
            json!({"customer_id": s.customer, "lines": [{"product_id": s.widget, "quantity": "0"}]}),
            422,
            "lines[0].quantity",
        ),
        (
            "sales-orders",
            json!({"customer_id": s.customer, "lines": [{"product_id": s.widget, "quantity": "-3"}]}),
            422,
            "lines[0].quantity",
        ),
        (
            "sales-orders",
            json!({"customer_id": s.customer, "lines": [{"product_id": s.widget, "quantity": 1}]}),
            422,
            "lines[0].quantity",
        ),
        (
            "sales-orders",
            json!({"customer_id": s.customer, "lines": []}),
            422,
            "lines",
        ),
        (
            "stock-adjustments",
            json!({"warehouse_id": s.wh, "lines": [{"product_id": s.widget, "quantity": "-6"}]}),
            409,
            "",
        ),
        (&deliver, json!({}), 409, ""),
        (&invoice, json!({}), 409, ""),
    ];
    for (path, body, status, field) in &cases {
        let r = s.post(&o, path, body).await;
        let p = r.assert_problem(*status);
        if !field.is_empty() {
            assert_eq!(p["errors"][0]["field"], *field, "{path} {body}: {p}");
        }
    }
    assert_eq!(
        footprint(&s).await,
        before,
        "refused requests changed nothing"
    );

    s.post_ok(&format!("sales-orders/{so_id}/confirm"), &json!({}), 200)
        .await;
    // Confirming twice, delivering more than ordered, invoicing undelivered goods.
    s.post(&o, &format!("sales-orders/{so_id}/confirm"), &json!({}))
        .await
        .assert_problem(409);
    let more = s
        .post(
            &o,
            &format!("sales-orders/{so_id}/deliver"),
            &json!({"lines": [{"line_no": 1, "quantity": "3"}]}),
        )
        .await;
    assert_eq!(
        more.assert_problem(422)["errors"][0]["field"],
        "lines[0].quantity"
    );
    let early = s
        .post(
            &o,
            &format!("sales-orders/{so_id}/invoice"),
            &json!({"lines": [{"line_no": 1, "quantity": "1"}]}),
        )
        .await;
    assert_eq!(
        early.assert_problem(422)["errors"][0]["field"],
        "lines[0].quantity"
    );
    let mid = footprint(&s).await;
    // The tenant may allow invoicing before delivery.
    let on =
        s.t.put_json(
            &s.t.path("settings/sales.invoice_before_delivery"),
            &o,
            &json!({"enabled": true}),
        )
        .await;
    assert_eq!(on.status, 200, "{}", on.text);
    s.post_ok(
        &format!("sales-orders/{so_id}/invoice"),
        &json!({"lines": [{"line_no": 1, "quantity": "1"}]}),
        201,
    )
    .await;
    assert_ne!(footprint(&s).await, mid);

    // Cancelling a delivered order is refused; cancelling a confirmed one releases stock.
    s.post_ok(&format!("sales-orders/{so_id}/deliver"), &json!({}), 200)
        .await;
    s.post(&o, &format!("sales-orders/{so_id}/cancel"), &json!({}))
        .await
        .assert_problem(409);
    let so2 = s
        .order(
            "sales-orders",
            &s.customer,
            json!([{"product_id": s.widget, "quantity": "3"}]),
        )
        .await;
    s.post_ok(
        &format!("sales-orders/{}/confirm", id(&so2)),
        &json!({}),
        200,
    )
    .await;
    assert_eq!(s.stock(&s.widget).await["available"], "0");
    let cancelled = s
        .post_ok(
            &format!("sales-orders/{}/cancel", id(&so2)),
            &json!({}),
            200,
        )
        .await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(s.stock(&s.widget).await["available"], "3");
    // A confirmed order cannot be deleted; a draft can.
    let r =
        s.t.app
            .delete(&s.t.path(&format!("sales-orders/{so_id}")), &o)
            .await;
    assert_eq!(r.status, 409, "{}", r.text);
}

#[tokio::test]
async fn the_credit_limit_is_enforced_at_confirm() {
    let s = Shop::new("credit").await;
    let c = s
        .post_ok(
            "customers",
            &json!({"name": "Careful", "credit_limit": "100.00"}),
            201,
        )
        .await;
    let big = s
        .order(
            "sales-orders",
            &id(&c),
            json!([{"product_id": s.service, "quantity": "2"}]),
        )
        .await; // 120.00
    let r = s
        .post(
            &s.t.owner,
            &format!("sales-orders/{}/confirm", id(&big)),
            &json!({}),
        )
        .await;
    let p = r.assert_problem(409);
    assert!(
        p["type"]
            .as_str()
            .unwrap()
            .ends_with("/credit-limit-exceeded"),
        "{p}"
    );
    assert_eq!(
        s.get_ok(&format!("sales-orders/{}", id(&big))).await["status"],
        "draft"
    );
    // 60.00 fits; once invoiced, it counts as open receivables and a second 60.00 does not.
    let first = s
        .order(
            "sales-orders",
            &id(&c),
            json!([{"product_id": s.service, "quantity": "1"}]),
        )
        .await;
    s.post_ok(
        &format!("sales-orders/{}/confirm", id(&first)),
        &json!({}),
        200,
    )
    .await;
    s.post_ok(
        &format!("sales-orders/{}/invoice", id(&first)),
        &json!({}),
        201,
    )
    .await;
    let second = s
        .order(
            "sales-orders",
            &id(&c),
            json!([{"product_id": s.service, "quantity": "1"}]),
        )
        .await;
    s.post(
        &s.t.owner,
        &format!("sales-orders/{}/confirm", id(&second)),
        &json!({}),
    )
    .await
    .assert_problem(409);
}

#[tokio::test]
async fn concurrent_confirms_for_the_last_units_have_exactly_one_winner() {
    let s = Shop::new("race").await;
    s.post_ok(
        "stock-adjustments",
        &json!({"warehouse_id": s.wh,
        "lines": [{"product_id": s.widget, "quantity": "3", "unit_cost": "2.00"}]}),
        201,
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(id(&s
            .order(
                "sales-orders",
                &s.customer,
                json!([{"product_id": s.widget, "quantity": "3"}]),
            )
            .await));
    }
    let api = s.t.app.clone_api();
    let mut tasks = Vec::new();
    for so in &ids {
        let (api, path, token) = (
            api.clone(),
            s.t.path(&format!("sales-orders/{so}/confirm")),
            s.t.owner.clone(),
        );
        tasks.push(tokio::spawn(async move {
            api.send(
                api.request(Method::POST, &path)
                    .bearer_auth(&token)
                    .json(&json!({})),
            )
            .await
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        if r.status == 409 {
            assert!(
                r.json()["type"]
                    .as_str()
                    .unwrap()
                    .ends_with("/insufficient-stock"),
                "{}",
                r.text
            );
        }
        statuses.push(r.status);
    }
    statuses.sort();
    assert_eq!(statuses, [200, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(
        s.stock(&s.widget).await,
        json!({"product_id": s.widget, "warehouse_id": s.wh, "on_hand": "3", "reserved": "3", "available": "0"})
    );
}

#[tokio::test]
async fn sales_users_see_only_their_own_orders_when_the_tenant_says_so() {
    let s = Shop::new("own").await;
    let (_, alice) = s.t.user("alice@example.com", &["sales"]).await;
    let (_, bob) = s.t.user("bob@example.com", &["sales"]).await;
    let body =
        json!({"customer_id": s.customer, "lines": [{"product_id": s.service, "quantity": "1"}]});
    let a = s.post(&alice, "sales-orders", &body).await;
    assert_eq!(a.status, 201, "{}", a.text);
    let a_id = id(&a.json());
    // Off: bob sees alice's order.
    assert_eq!(s.t.list_ok(&bob, "sales-orders", &[]).await.len(), 1);
    let on =
        s.t.put_json(
            &s.t.path("settings/sales.own_orders_only"),
            &s.t.owner,
            &json!({"enabled": true}),
        )
        .await;
    assert_eq!(on.status, 200, "{}", on.text);
    assert_eq!(s.t.list_ok(&bob, "sales-orders", &[]).await.len(), 0);
    assert_eq!(s.t.get_one(&bob, "sales-orders", &a_id).await.status, 404);
    s.post(&bob, &format!("sales-orders/{a_id}/confirm"), &json!({}))
        .await
        .assert_problem(404);
    assert_eq!(s.t.list_ok(&alice, "sales-orders", &[]).await.len(), 1);
    assert_eq!(
        s.t.list_ok(&s.t.owner, "sales-orders", &[]).await.len(),
        1,
        "the owner is not restricted"
    );
    // Sales users cannot invoice or read the ledger's sensitive costs.
    s.post(&alice, &format!("sales-orders/{a_id}/confirm"), &json!({}))
        .await;
    s.post(&alice, &format!("sales-orders/{a_id}/invoice"), &json!({}))
        .await
        .assert_problem(403);
    s.t.app
        .get(&s.t.path("reports/stock-valuation"), &alice)
        .await
        .assert_problem(403);
}

#[tokio::test]
async fn drafts_change_and_delete_confirmed_orders_do_not() {
    let s = Shop::new("drafts").await;
    let o = s.t.owner.clone();
    let so = s
        .order(
            "sales-orders",
            &s.customer,
            json!([{"product_id": s.service, "quantity": "1"}]),
        )
        .await;
    let so_id = id(&so);
    let path = s.t.path(&format!("sales-orders/{so_id}"));
    let r = s
        .t
        .app
        .patch_json(&path, &o, &json!({"lines": [{"product_id": s.service, "quantity": "2", "unit_price": "40.00"}], "memo": "two"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let changed = r.json();
    assert_eq!(
        (&changed["total"], &changed["memo"], &changed["version"]),
        (&json!("96.00"), &json!("two"), &json!(2))
    );
    let r =
        s.t.app
            .patch_json(&path, &o, &json!({"customer_id": s.customer}))
            .await;
    assert_eq!(r.assert_problem(422)["errors"][0]["field"], "customer_id");
    s.post_ok(&format!("sales-orders/{so_id}/confirm"), &json!({}), 200)
        .await;
    let r =
        s.t.app
            .patch_json(&path, &o, &json!({"memo": "late"}))
            .await;
    r.assert_problem(409);
    let draft = s
        .order(
            "sales-orders",
            &s.customer,
            json!([{"product_id": s.service, "quantity": "1"}]),
        )
        .await;
    let r =
        s.t.app
            .delete(&s.t.path(&format!("sales-orders/{}", id(&draft))), &o)
            .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        s.t.get_one(&o, "sales-orders", &id(&draft)).await.status,
        404
    );
}

#[tokio::test]
async fn negative_stock_only_when_the_tenant_allows_it_and_the_books_still_agree() {
    let s = Shop::new("negative").await;
    let o = s.t.owner.clone();
    s.post_ok(
        "stock-adjustments",
        &json!({"warehouse_id": s.wh,
        "lines": [{"product_id": s.widget, "quantity": "2", "unit_cost": "3.00"}]}),
        201,
    )
    .await;
    let so = s
        .order(
            "sales-orders",
            &s.customer,
            json!([{"product_id": s.widget, "quantity": "5"}]),
        )
        .await;
    let confirm = format!("sales-orders/{}/confirm", id(&so));
    let p = s.post(&o, &confirm, &json!({})).await.assert_problem(409);
    assert!(
        p["type"].as_str().unwrap().ends_with("/insufficient-stock"),
        "{p}"
    );
    let on =
        s.t.put_json(
            &s.t.path("settings/inventory.allow_negative_stock"),
            &o,
            &json!({"enabled": true}),
        )
        .await;
    assert_eq!(on.status, 200, "{}", on.text);
    s.post_ok(&confirm, &json!({}), 200).await;
    s.post_ok(
        &format!("sales-orders/{}/deliver", id(&so)),
        &json!({"date": "2026-03-02"}),
        200,
    )
    .await;
    // 2 units at 3.00, then 3 more at the last cost 3.00: COGS 15.00, stock −3 worth −9.00.
    assert_eq!(s.stock(&s.widget).await["on_hand"], "-3");
    let valuation = s.get_ok("reports/stock-valuation?as_of=2026-12-31").await;
    assert_eq!(valuation["total"], "-9.00");
    let b = s.balances("2026-12-31").await;
    assert_eq!((b["1300"].as_str(), b["5000"].as_str()), ("-9.00", "15.00"));
}

#[tokio::test]
async fn each_role_does_its_part_of_the_flows_and_no_more() {
    let s = Shop::new("roles").await;
    let t = &s.t;
    let (_, sales) = t.user("sally@example.com", &["sales"]).await;
    let (_, warehouse) = t.user("walt@example.com", &["warehouse"]).await;
    let (_, accountant) = t.user("anna@example.com", &["accountant"]).await;
    let (_, purchasing) = t.user("pete@example.com", &["purchasing"]).await;
    let (_, viewer) = t.user("vic@example.com", &["viewer"]).await;
    let status = |r: Resp| r.status;

    // Purchasing orders and confirms; the warehouse receives; the accountant bills.
    let po = s
        .post(
            &purchasing,
            "purchase-orders",
            &json!({"supplier_id": s.supplier,
            "lines": [{"product_id": s.widget, "quantity": "5", "unit_price": "4.00"}]}),
        )
        .await;
    assert_eq!(po.status, 201, "{}", po.text);
    let po = id(&po.json());
    assert_eq!(
        status(
            s.post(
                &purchasing,
                &format!("purchase-orders/{po}/confirm"),
                &json!({})
            )
            .await
        ),
        200
    );
    assert_eq!(
        status(
            s.post(
                &purchasing,
                &format!("purchase-orders/{po}/receive"),
                &json!({})
            )
            .await
        ),
        403
    );
    assert_eq!(
        status(
            s.post(
                &warehouse,
                &format!("purchase-orders/{po}/receive"),
                &json!({})
            )
            .await
        ),
        200
    );
    assert_eq!(
        status(
            s.post(
                &purchasing,
                &format!("purchase-orders/{po}/bill"),
                &json!({})
            )
            .await
        ),
        403
    );
    assert_eq!(
        status(
            s.post(
                &accountant,
                &format!("purchase-orders/{po}/bill"),
                &json!({})
            )
            .await
        ),
        201
    );

    // Sales orders and confirms; the warehouse delivers; the accountant invoices and
    // takes the payment; nobody else does.
    let so = s
        .post(
            &sales,
            "sales-orders",
            &json!({"customer_id": s.customer,
            "lines": [{"product_id": s.widget, "quantity": "2"}]}),
        )
        .await;
    assert_eq!(so.status, 201, "{}", so.text);
    let so = id(&so.json());
    assert_eq!(
        status(
            s.post(
                &warehouse,
                "sales-orders",
                &json!({"customer_id": s.customer, "lines": []})
            )
            .await
        ),
        403
    );
    assert_eq!(
        status(
            s.post(
                &accountant,
                &format!("sales-orders/{so}/confirm"),
                &json!({})
            )
            .await
        ),
        403
    );
    assert_eq!(
        status(
            s.post(&sales, &format!("sales-orders/{so}/confirm"), &json!({}))
                .await
        ),
        200
    );
    assert_eq!(
        status(
            s.post(&sales, &format!("sales-orders/{so}/deliver"), &json!({}))
                .await
        ),
        403
    );
    assert_eq!(
        status(
            s.post(
                &warehouse,
                &format!("sales-orders/{so}/deliver"),
                &json!({})
            )
            .await
        ),
        200
    );
    assert_eq!(
        status(
            s.post(
                &warehouse,
                &format!("sales-orders/{so}/invoice"),
                &json!({})
            )
            .await
        ),
        403
    );
    let inv = s
        .post(
            &accountant,
            &format!("sales-orders/{so}/invoice"),
            &json!({}),
        )
        .await;
    assert_eq!(inv.status, 201, "{}", inv.text);
    let inv = id(&inv.json());
    let pay = json!({"invoice_id": inv, "amount": "1.00"});
    assert_eq!(status(s.post(&sales, "payments", &pay).await), 403);
    assert_eq!(status(s.post(&accountant, "payments", &pay).await), 201);

    // Reading: the viewer reads documents but not costs; sales cannot see purchasing.
    for path in [
        "sales-orders",
        "purchase-orders",
        "invoices",
        "payments",
        "stock",
        "stock-moves",
    ] {
        assert_eq!(
            t.app.get(&t.path(path), &viewer).await.status,
            200,
            "viewer reads {path}"
        );
    }
    assert_eq!(
        t.app
            .get(&t.path("reports/stock-valuation"), &viewer)
            .await
            .status,
        403
    );
    assert_eq!(
        t.app
            .get(&t.path("reports/stock-valuation"), &accountant)
            .await
            .status,
        200
    );
    assert_eq!(
        t.app
            .get(&t.path("reports/ar-aging"), &accountant)
            .await
            .status,
        200
    );
    assert_eq!(
        t.app.get(&t.path("purchase-orders"), &sales).await.status,
        403
    );
    assert_eq!(
        status(
            s.post(
                &viewer,
                "stock-adjustments",
                &json!({"warehouse_id": s.wh,
        "lines": [{"product_id": s.widget, "quantity": "1"}]})
            )
            .await
        ),
        403
    );
    assert_eq!(
        status(
            s.post(
                &warehouse,
                "stock-adjustments",
                &json!({"warehouse_id": s.wh,
        "lines": [{"product_id": s.widget, "quantity": "1"}]})
            )
            .await
        ),
        201
    );
}

#[tokio::test]
async fn purchase_orders_cancel_until_goods_arrive() {
    let s = Shop::new("pocancel").await;
    let o = s.t.owner.clone();
    let lines = json!([{"product_id": s.widget, "quantity": "4", "unit_price": "2.50"}]);
    let po = id(&s.order("purchase-orders", &s.supplier, lines.clone()).await);
    s.post_ok(&format!("purchase-orders/{po}/confirm"), &json!({}), 200)
        .await;
    let cancelled = s
        .post_ok(&format!("purchase-orders/{po}/cancel"), &json!({}), 200)
        .await;
    assert_eq!(cancelled["status"], "cancelled");
    s.post(&o, &format!("purchase-orders/{po}/receive"), &json!({}))
        .await
        .assert_problem(409);
    // Once goods are received the order can no longer be cancelled.
    let po2 = id(&s.order("purchase-orders", &s.supplier, lines).await);
    s.post_ok(&format!("purchase-orders/{po2}/confirm"), &json!({}), 200)
        .await;
    s.post_ok(
        &format!("purchase-orders/{po2}/receive"),
        &json!({"lines": [{"line_no": 1, "quantity": "1"}]}),
        200,
    )
    .await;
    s.post(&o, &format!("purchase-orders/{po2}/cancel"), &json!({}))
        .await
        .assert_problem(409);
    assert_eq!(s.stock(&s.widget).await["on_hand"], "1");
}
