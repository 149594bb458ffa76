//! A randomised run of thousands of mixed sales, purchasing, inventory, invoicing and
//! payment operations on one tenant over HTTP, then the books' invariants: stock ledger
//! sums = on hand, stock valuation = inventory account, trial balance balanced, balance
//! sheet balanced, receivables and payables = the open invoices, reservations = what
//! confirmed orders hold, no stock below zero. No request may fail with 5xx.
//!
//! `ERPD_TEST_SEED` replays a run; `ERPD_TEST_OPS` sets its length (default 2000).

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::sales::Shop;

/// xorshift64*: small, deterministic, and enough to pick operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> Option<&'a T> {
        (!v.is_empty()).then(|| &v[self.below(v.len())])
    }
    /// Mostly one of the last 12 (documents move through their flow), sometimes any.
    fn recent<'a, T>(&mut self, v: &'a [T]) -> Option<&'a T> {
        if self.below(5) == 0 {
            self.pick(v)
        } else {
            self.pick(&v[v.len().saturating_sub(12)..])
        }
    }
    fn date(&mut self) -> String {
        format!("2026-{:02}-{:02}", 3 + self.below(4), 1 + self.below(28))
    }
    fn money(&mut self, max_cents: usize) -> String {
        let c = 1 + self.below(max_cents);
        format!("{}.{:02}", c / 100, c % 100)
    }
}

fn dec(v: &Value) -> Decimal {
    Decimal::from_str(
        v.as_str()
            .unwrap_or_else(|| panic!("not a decimal string: {v}")),
    )
    .unwrap_or_else(|_| panic!("not a decimal: {v}"))
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

/// Every item of a collection, following cursors.
async fn all(s: &Shop, collection: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let path = match &cursor {
            Some(c) => format!("{collection}?limit=500&cursor={c}"),
            None => format!("{collection}?limit=500"),
        };
        let page = s.get_ok(&path).await;
        out.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
    panic!("more than 1000 pages of {collection}")
}

#[tokio::test]
async fn thousands_of_mixed_operations_keep_every_invariant() {
    let seed: u64 = std::env::var("ERPD_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_cafe);
    let ops: usize = std::env::var("ERPD_TEST_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    eprintln!("invariants: seed {seed}, {ops} operations");
    let mut rng = Rng(seed | 1);
    let s = Shop::new("fuzz").await;
    let o = s.t.owner.clone();

    // More goods, a second warehouse, a USD customer and supplier with moving rates.
    let mut goods = vec![s.widget.clone()];
    for n in 2..=4 {
        let p = s
            .post_ok("products", &json!({"sku": format!("G-{n}"), "name": format!("Good {n}"), "list_price": format!("{n}.75")}), 201)
            .await;
        goods.push(id(&p));
    }
    let wh2 = id(&s
        .post_ok("warehouses", &json!({"code": "SIDE", "name": "Side"}), 201)
        .await);
    let r =
        s.t.put_json(&s.t.path("currencies/USD"), &o, &json!({"enabled": true}))
            .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for (rate, date) in [
        ("0.9", "2026-01-01"),
        ("0.93", "2026-04-01"),
        ("0.87", "2026-05-15"),
    ] {
        s.post_ok(
            "exchange-rates",
            &json!({"from": "USD", "to": "EUR", "rate": rate, "date": date}),
            201,
        )
        .await;
    }
    let mut customers = vec![s.customer.clone()];
    customers.push(id(&s
        .post_ok(
            "customers",
            &json!({"name": "Yank", "currency": "USD", "payment_terms_days": 14}),
            201,
        )
        .await));
    customers.push(id(&s
        .post_ok(
            "customers",
            &json!({"name": "Limited", "credit_limit": "2000.00"}),
            201,
        )
        .await));
    let suppliers = vec![
        s.supplier.clone(),
        id(&s
            .post_ok(
                "suppliers",
                &json!({"name": "Yankee Parts", "currency": "USD"}),
                201,
            )
            .await),
    ];

    let (mut pos, mut sos, mut invoices) = (Vec::new(), Vec::new(), Vec::new());
    let mut outcomes: BTreeMap<(String, u16), usize> = BTreeMap::new();
    for _ in 0..ops {
        let op = rng.below(15);
        let (name, path, body) = match op {
            0 => {
                let n = 1 + rng.below(3);
                let lines: Vec<Value> = (0..n)
                    .map(|_| json!({"product_id": rng.pick(&goods).unwrap(), "quantity": format!("{}", 1 + rng.below(20)), "unit_price": rng.money(2000)}))
                    .collect();
                let sup = rng.pick(&suppliers).unwrap().clone();
                (
                    "po",
                    "purchase-orders".to_owned(),
                    json!({"supplier_id": sup, "order_date": rng.date(), "lines": lines}),
                )
            }
            1 => match rng.recent(&pos) {
                Some(p) => (
                    "po-confirm",
                    format!("purchase-orders/{p}/confirm"),
                    json!({}),
                ),
                None => continue,
            },
            2 | 3 => match rng.recent(&pos) {
                Some(p) if rng.below(2) == 0 => (
                    "receive",
                    format!("purchase-orders/{p}/receive"),
                    json!({"date": rng.date()}),
                ),
                Some(p) => (
                    "receive-part",
                    format!("purchase-orders/{p}/receive"),
                    json!({"date": rng.date(), "lines": [{"line_no": 1, "quantity": format!("{}", 1 + rng.below(5))}]}),
                ),
                None => continue,
            },
            4 => match rng.recent(&pos) {
                Some(p) => (
                    "bill",
                    format!("purchase-orders/{p}/bill"),
                    json!({"date": rng.date()}),
                ),
                None => continue,
            },
            5 => {
                let n = 1 + rng.below(3);
                let lines: Vec<Value> = (0..n)
                    .map(|_| {
                        if rng.below(5) == 0 {
                            json!({"product_id": s.service, "quantity": "1"})
                        } else {
                            let mut l = json!({"product_id": rng.pick(&goods).unwrap(), "quantity": format!("{}", 1 + rng.below(6))});
                            if rng.below(3) == 0 {
                                l["discount_percent"] = json!("0.15");
                            }
                            l
                        }
                    })
                    .collect();
                let cust = rng.pick(&customers).unwrap().clone();
                (
                    "so",
                    "sales-orders".to_owned(),
                    json!({"customer_id": cust, "order_date": rng.date(), "lines": lines}),
                )
            }
            6 | 7 => match rng.recent(&sos) {
                Some(p) => ("so-confirm", format!("sales-orders/{p}/confirm"), json!({})),
                None => continue,
            },
            8 | 9 => match rng.recent(&sos) {
                Some(p) if rng.below(2) == 0 => (
                    "deliver",
                    format!("sales-orders/{p}/deliver"),
                    json!({"date": rng.date()}),
                ),
                Some(p) => (
                    "deliver-part",
                    format!("sales-orders/{p}/deliver"),
                    json!({"date": rng.date(), "warehouse_id": if rng.below(4) == 0 { &wh2 } else { &s.wh },
                           "lines": [{"line_no": 1, "quantity": "1"}]}),
                ),
                None => continue,
            },
            10 | 11 => match rng.recent(&sos) {
                Some(p) => (
                    "invoice",
                    format!("sales-orders/{p}/invoice"),
                    json!({"date": rng.date()}),
                ),
                None => continue,
            },
            12 | 13 => match rng.recent(&invoices) {
                Some(i) if rng.below(8) == 0 => (
                    "credit",
                    format!("invoices/{i}/credit"),
                    json!({"date": rng.date()}),
                ),
                Some(i) => {
                    let inv = s.get_ok(&format!("invoices/{i}")).await;
                    let due = dec(&inv["amount_due"]);
                    let amount = if rng.below(2) == 0 || due <= Decimal::ONE {
                        due
                    } else {
                        (due / Decimal::from(2)).round_dp(2)
                    };
                    (
                        "pay",
                        "payments".to_owned(),
                        json!({"invoice_id": i, "amount": amount.to_string(), "date": rng.date()}),
                    )
                }
                None => continue,
            },
            _ => {
                let q = if rng.below(3) == 0 {
                    format!("-{}", 1 + rng.below(3))
                } else {
                    format!("{}", 1 + rng.below(10))
                };
                (
                    "adjust",
                    "stock-adjustments".to_owned(),
                    json!({"warehouse_id": if rng.below(3) == 0 { &wh2 } else { &s.wh },
                    "reason": "count", "date": rng.date(), "lines": [{"product_id": rng.pick(&goods).unwrap(), "quantity": q, "unit_cost": rng.money(900)}]}),
                )
            }
        };
        let r = s.post(&o, &path, &body).await;
        assert!(
            r.status < 500,
            "{name} {path} {body} → {}: {}\n{}",
            r.status,
            r.text,
            s.t.app.stderr()
        );
        *outcomes.entry((name.to_owned(), r.status)).or_default() += 1;
        if r.status == 201 {
            let v = r.json();
            match name {
                "po" => pos.push(id(&v)),
                "so" => sos.push(id(&v)),
                "invoice" | "bill" | "credit" => invoices.push(id(&v)),
                _ => {}
            }
        }
    }
    eprintln!("outcomes: {outcomes:?}");
    // The run must have exercised the flows, not only been refused.
    for op in [
        "po",
        "receive",
        "bill",
        "so",
        "so-confirm",
        "deliver",
        "invoice",
        "pay",
        "credit",
        "adjust",
    ] {
        let ok = outcomes
            .iter()
            .filter(|((n, st), _)| n == op && (200..300).contains(st))
            .map(|(_, c)| c)
            .sum::<usize>();
        assert!(ok > 0, "no successful {op} in {outcomes:?}");
    }

    // 1. The stock ledger sums to on hand, and nothing is below zero.
    let mut ledger: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for m in all(&s, "stock-moves").await {
        *ledger
            .entry((
                m["product_id"].as_str().unwrap().into(),
                m["warehouse_id"].as_str().unwrap().into(),
            ))
            .or_default() += dec(&m["quantity"]);
    }
    let stock = all(&s, "stock").await;
    let mut reserved_total = Decimal::ZERO;
    for l in &stock {
        let key = (
            l["product_id"].as_str().unwrap().to_owned(),
            l["warehouse_id"].as_str().unwrap().to_owned(),
        );
        assert_eq!(
            ledger.get(&key).copied().unwrap_or_default(),
            dec(&l["on_hand"]),
            "{l}"
        );
        assert!(dec(&l["on_hand"]) >= Decimal::ZERO, "stock below zero: {l}");
        reserved_total += dec(&l["reserved"]);
    }
    for (key, qty) in &ledger {
        let level = stock
            .iter()
            .find(|l| l["product_id"] == key.0.as_str() && l["warehouse_id"] == key.1.as_str());
        assert_eq!(
            level.map_or(Decimal::ZERO, |l| dec(&l["on_hand"])),
            *qty,
            "{key:?}"
        );
    }

    // 2. Reservations are what confirmed sales orders still hold.
    let held: Decimal = all(&s, "sales-orders")
        .await
        .iter()
        .flat_map(|o| o["lines"].as_array().unwrap().clone())
        .map(|l| dec(&l["reserved_quantity"]))
        .sum();
    assert_eq!(held, reserved_total);

    // 3. The books balance; inventory = valuation; receivables/payables = open invoices.
    let far = "2099-12-31";
    let b = s.balances(far).await;
    let bal = |code: &str| {
        b.get(code)
            .map_or(Decimal::ZERO, |v| Decimal::from_str(v).unwrap())
    };
    assert_eq!(
        b.values()
            .map(|v| Decimal::from_str(v).unwrap())
            .sum::<Decimal>(),
        Decimal::ZERO
    );
    let valuation = s
        .get_ok(&format!("reports/stock-valuation?as_of={far}"))
        .await;
    assert_eq!(
        dec(&valuation["total"]),
        bal("1300"),
        "stock valuation vs inventory account"
    );
    let ar = s.get_ok(&format!("reports/ar-aging?as_of={far}")).await;
    assert_eq!(
        dec(&ar["totals"]["total"]),
        bal("1200"),
        "AR aging vs receivables"
    );
    let ap = s.get_ok(&format!("reports/ap-aging?as_of={far}")).await;
    assert_eq!(
        dec(&ap["totals"]["total"]),
        -bal("2000"),
        "AP aging vs payables"
    );
    // Independently of the aging query: the open base-currency invoices.
    let open_eur: Decimal = all(&s, "invoices")
        .await
        .iter()
        .filter(|i| i["kind"] == "customer" && i["currency"] == "EUR")
        .map(|i| {
            if i["credit_of"].is_null() {
                dec(&i["amount_due"])
            } else {
                -dec(&i["amount_due"])
            }
        })
        .sum();
    let usd_customer_open: Decimal = ar["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["party_id"] == customers[1].as_str())
        .map(|l| dec(&l["total"]))
        .sum();
    assert_eq!(open_eur + usd_customer_open, bal("1200"));
    let bs = s
        .get_ok(&format!("reports/balance-sheet?as_of={far}"))
        .await;
    assert_eq!(
        dec(&bs["assets"]["total"]),
        dec(&bs["liabilities"]["total"]) + dec(&bs["equity"]["total"]),
        "{bs}"
    );
    // 4. The audit chain is intact after all of it.
    let verify = s.t.app.cli(&["audit", "verify", "fuzz"]);
    assert!(verify.status.success(), "{}", verify.all_output());
}
