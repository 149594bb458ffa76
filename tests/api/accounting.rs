//! The accounting core over HTTP (issue 4): journal entries with exact money, gapless
//! numbers, immutability and reversal, fiscal periods, the reports, the chart of accounts,
//! and who may do what. Every figure asserted here is exact (decimal strings as served).

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use reqwest::Method;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};

use crate::helpers::*;

/// Password of the users these tests create (at least 10 characters).
const PASSWORD: &str = "ledger-password-42";

/// A running server with one tenant (of a given base currency) and its owner token.
struct Books {
    app: TestApp,
    tenant: String,
    owner: String,
}

impl Books {
    /// A fresh server with tenant `acme` in EUR.
    async fn new() -> Self {
        Self::with_currency("acme", "EUR").await
    }

    async fn with_currency(tenant: &str, base_currency: &str) -> Self {
        let app = spawn_app(&[]);
        let owner = create_tenant_in(&app, tenant, base_currency).await;
        Self {
            app,
            tenant: tenant.to_owned(),
            owner,
        }
    }

    fn path(&self, rest: &str) -> String {
        format!("/v1/t/{}/{rest}", self.tenant)
    }

    /// `POST journal-entries` as the owner.
    async fn create(&self, body: &Value) -> Resp {
        self.create_as(&self.owner, body).await
    }

    async fn create_as(&self, token: &str, body: &Value) -> Resp {
        self.app
            .post_json(&self.path("journal-entries"), token, body)
            .await
    }

    /// Create and post in one request; panics unless 201 and posted. Returns the entry.
    async fn post_ok(&self, date: &str, lines: Vec<Value>) -> Value {
        let body = json!({ "date": date, "memo": "test", "lines": lines, "post": true });
        let resp = self.create(&body).await;
        assert_eq!(resp.status, 201, "posting {body}: {}", resp.text);
        let entry = resp.json();
        assert_eq!(entry["status"], "posted", "{entry}");
        entry
    }

    /// Create a draft; panics unless 201. Returns the entry.
    async fn draft_ok(&self, date: &str, lines: Vec<Value>) -> Value {
        let body = json!({ "date": date, "lines": lines });
        let resp = self.create(&body).await;
        assert_eq!(resp.status, 201, "drafting {body}: {}", resp.text);
        let entry = resp.json();
        assert_eq!(entry["status"], "draft", "{entry}");
        assert_eq!(
            entry["number"],
            Value::Null,
            "a draft has no number: {entry}"
        );
        entry
    }

    async fn action(&self, id: &str, action: &str, body: Option<Value>) -> Resp {
        self.action_as(&self.owner, id, action, body).await
    }

    async fn action_as(&self, token: &str, id: &str, action: &str, body: Option<Value>) -> Resp {
        let mut req = self
            .app
            .request(
                Method::POST,
                &self.path(&format!("journal-entries/{id}/{action}")),
            )
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.app.send(req).await
    }

    async fn get(&self, rest: &str) -> Resp {
        self.app.get(&self.path(rest), &self.owner).await
    }

    async fn get_ok(&self, rest: &str) -> Value {
        let resp = self.get(rest).await;
        assert_eq!(resp.status, 200, "GET {rest}: {}", resp.text);
        resp.json()
    }

    async fn trial_balance(&self, as_of: &str) -> Value {
        self.get_ok(&format!("reports/trial-balance?as_of={as_of}"))
            .await
    }

    async fn balance_sheet(&self, as_of: &str) -> Value {
        self.get_ok(&format!("reports/balance-sheet?as_of={as_of}"))
            .await
    }

    /// Every journal entry (drafts too), oldest id first.
    async fn entries(&self) -> Vec<Value> {
        let v = self.get_ok("journal-entries?limit=500").await;
        assert_eq!(v["next_cursor"], Value::Null, "more than one page: {v}");
        v["items"].as_array().expect("items").clone()
    }

    /// `POST exchange-rates`; panics unless 201.
    async fn rate(&self, from: &str, to: &str, rate: &str, date: &str) {
        let body = json!({ "from": from, "to": to, "rate": rate, "date": date });
        let resp = self
            .app
            .post_json(&self.path("exchange-rates"), &self.owner, &body)
            .await;
        assert_eq!(resp.status, 201, "creating rate {body}: {}", resp.text);
    }

    async fn close_period(&self, period: &str) -> Resp {
        self.app
            .post_json(
                &self.path("fiscal-periods"),
                &self.owner,
                &json!({ "period": period }),
            )
            .await
    }

    async fn reopen_period(&self, period: &str) -> Resp {
        self.app
            .send(
                self.app
                    .request(
                        Method::POST,
                        &self.path(&format!("fiscal-periods/{period}/reopen")),
                    )
                    .bearer_auth(&self.owner),
            )
            .await
    }

    /// A user with these roles, created by the owner and logged in; returns its token.
    async fn user(&self, email: &str, roles: &[&str]) -> String {
        let resp = self
            .app
            .post_json(
                &self.path("users"),
                &self.owner,
                &json!({ "email": email, "name": email, "password": PASSWORD, "roles": roles }),
            )
            .await;
        assert_eq!(resp.status, 201, "creating user {email}: {}", resp.text);
        let resp = self
            .app
            .send(
                self.app
                    .request(Method::POST, &self.path("auth/login"))
                    .json(&json!({ "email": email, "password": PASSWORD })),
            )
            .await;
        assert_eq!(resp.status, 200, "login of {email}: {}", resp.text);
        resp.json()["token"].as_str().expect("token").to_owned()
    }
}

/// Create a tenant with a base currency; returns the owner token.
async fn create_tenant_in(app: &TestApp, id: &str, base_currency: &str) -> String {
    let body = json!({ "id": id, "name": format!("Tenant {id}"), "base_currency": base_currency });
    let resp = app
        .post_json("/v1/tenants", &app.platform_token, &body)
        .await;
    assert_eq!(resp.status, 201, "creating {id}: {}", resp.text);
    resp.json()["owner_token"]
        .as_str()
        .expect("owner_token")
        .to_owned()
}

fn dr(account: &str, amount: &str) -> Value {
    json!({ "account_id": account, "debit": amount })
}

fn cr(account: &str, amount: &str) -> Value {
    json!({ "account_id": account, "credit": amount })
}

fn dr_in(account: &str, amount: &str, currency: &str) -> Value {
    json!({ "account_id": account, "debit": amount, "currency": currency })
}

fn cr_in(account: &str, amount: &str, currency: &str) -> Value {
    json!({ "account_id": account, "credit": amount, "currency": currency })
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap_or_else(|e| panic!("{s:?} is not a decimal: {e}"))
}

/// A decimal string field of a JSON object, parsed.
fn dec_of(v: &Value, key: &str) -> Decimal {
    dec(v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {v}")))
}

/// The trial balance as `account_id -> (debit, credit, balance)` strings, exactly as served.
fn tb_lines(tb: &Value) -> BTreeMap<String, (String, String, String)> {
    tb["lines"]
        .as_array()
        .unwrap_or_else(|| panic!("no lines in {tb}"))
        .iter()
        .map(|l| {
            let s = |k: &str| {
                l[k].as_str()
                    .unwrap_or_else(|| panic!("{k} in {l}"))
                    .to_owned()
            };
            (s("account_id"), (s("debit"), s("credit"), s("balance")))
        })
        .collect()
}

/// Assert the trial balance holds exactly these lines `(account, debit, credit, balance)`
/// and these equal totals.
fn assert_tb(tb: &Value, expected: &[(&str, &str, &str, &str)], total: &str) {
    let want: BTreeMap<String, (String, String, String)> = expected
        .iter()
        .map(|(a, d, c, b)| (a.to_string(), (d.to_string(), c.to_string(), b.to_string())))
        .collect();
    assert_eq!(tb_lines(tb), want, "trial balance lines: {tb}");
    assert_eq!(tb["total_debit"], total, "total debit: {tb}");
    assert_eq!(tb["total_credit"], total, "total credit: {tb}");
}

/// The `errors[].field` of a problem body.
fn error_fields(resp: &Resp) -> Vec<String> {
    resp.json()["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The line of a balance-sheet / P&L section with this account id (or name).
fn section_amount(section: &Value, key: &str, value: &str) -> Option<String> {
    section["lines"]
        .as_array()?
        .iter()
        .find(|l| l[key] == value)
        .map(|l| l["amount"].as_str().unwrap_or_default().to_owned())
}

// ---------------------------------------------------------------------------------------
// 1. Trial balance

#[tokio::test]
async fn a_posted_entry_shows_in_the_trial_balance_with_exact_figures_and_equal_totals() {
    let b = Books::new().await;

    let entry = b
        .post_ok(
            "2026-03-10",
            vec![
                dr("acc-1000", "1234.56"),
                dr("acc-1400", "0.44"),
                cr("acc-3000", "1235.00"),
            ],
        )
        .await;
    // A draft never shows in a report.
    b.draft_ok(
        "2026-03-11",
        vec![dr("acc-1000", "999.99"), cr("acc-3000", "999.99")],
    )
    .await;

    assert_eq!(entry["number"], "JE-2026-000001", "{entry}");
    assert_eq!(entry["total_debit"], "1235.00", "{entry}");
    assert_eq!(entry["total_credit"], "1235.00", "{entry}");
    assert_eq!(entry["lines"][0]["debit"], "1234.56", "{entry}");
    assert_eq!(entry["lines"][0]["credit"], "0.00", "{entry}");
    assert_eq!(entry["lines"][2]["credit"], "1235.00", "{entry}");
    let tb = b.trial_balance("2026-12-31").await;
    assert_eq!(tb["as_of"], "2026-12-31");
    assert_tb(
        &tb,
        &[
            ("acc-1000", "1234.56", "0.00", "1234.56"),
            ("acc-1400", "0.44", "0.00", "0.44"),
            ("acc-3000", "0.00", "1235.00", "-1235.00"),
        ],
        "1235.00",
    );
    let cash = tb["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["account_id"] == "acc-1000")
        .unwrap();
    assert_eq!(cash["code"], "1000", "{cash}");
    assert_eq!(cash["name"], "Cash", "{cash}");
    // The day before, nothing was posted yet.
    assert_tb(&b.trial_balance("2026-03-09").await, &[], "0.00");
}

#[tokio::test]
async fn the_general_ledger_lists_an_accounts_postings_with_a_running_balance() {
    let b = Books::new().await;
    b.post_ok(
        "2026-01-05",
        vec![dr("acc-1000", "100.00"), cr("acc-3000", "100.00")],
    )
    .await;
    b.post_ok(
        "2026-02-05",
        vec![dr("acc-6000", "30.25"), cr("acc-1000", "30.25")],
    )
    .await;
    b.post_ok(
        "2026-02-20",
        vec![dr("acc-1000", "0.10"), cr("acc-4000", "0.10")],
    )
    .await;

    let gl = b
        .get_ok("reports/general-ledger?account_id=acc-1000&from=2026-02-01&to=2026-12-31")
        .await;

    assert_eq!(gl["opening_balance"], "100.00", "{gl}");
    let lines = gl["lines"].as_array().expect("lines");
    let got: Vec<(&str, &str, &str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["number"].as_str().unwrap_or_default(),
                l["debit"].as_str().unwrap_or_default(),
                l["credit"].as_str().unwrap_or_default(),
                l["balance"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("JE-2026-000002", "0.00", "30.25", "69.75"),
            ("JE-2026-000003", "0.10", "0.00", "69.85"),
        ],
        "{gl}"
    );
    assert_eq!(gl["closing_balance"], "69.85", "{gl}");
}

// ---------------------------------------------------------------------------------------
// 2. Exact decimals

#[tokio::test]
async fn point_one_plus_point_two_is_exactly_point_three() {
    let b = Books::new().await;

    let entry = b
        .post_ok(
            "2026-04-01",
            vec![
                dr("acc-6000", "0.1"),
                dr("acc-6000", "0.2"),
                cr("acc-1000", "0.3"),
            ],
        )
        .await;

    assert_eq!(entry["total_debit"], "0.30", "{entry}");
    assert_eq!(entry["total_credit"], "0.30", "{entry}");
    assert_tb(
        &b.trial_balance("2026-04-01").await,
        &[
            ("acc-1000", "0.00", "0.30", "-0.30"),
            ("acc-6000", "0.30", "0.00", "0.30"),
        ],
        "0.30",
    );
}

#[tokio::test]
async fn thirds_of_one_hundred_balance_only_when_the_cents_add_up() {
    let b = Books::new().await;

    let off = b
        .create(&json!({ "date": "2026-04-01", "post": true, "lines": [
            cr("acc-4000", "100.00"),
            dr("acc-1000", "33.33"), dr("acc-1100", "33.33"), dr("acc-1200", "33.33"),
        ]}))
        .await;
    let ok = b
        .post_ok(
            "2026-04-01",
            vec![
                cr("acc-4000", "100.00"),
                dr("acc-1000", "33.33"),
                dr("acc-1100", "33.33"),
                dr("acc-1200", "33.34"),
            ],
        )
        .await;

    let body = off.assert_problem(422);
    assert_eq!(error_fields(&off), ["lines"], "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("unbalanced"),
        "{body}"
    );
    assert_eq!(
        ok["number"], "JE-2026-000001",
        "the refused one took no number"
    );
    assert_tb(
        &b.trial_balance("2026-12-31").await,
        &[
            ("acc-1000", "33.33", "0.00", "33.33"),
            ("acc-1100", "33.33", "0.00", "33.33"),
            ("acc-1200", "33.34", "0.00", "33.34"),
            ("acc-4000", "0.00", "100.00", "-100.00"),
        ],
        "100.00",
    );
}

#[tokio::test]
async fn a_yen_tenant_takes_whole_yen_and_a_dinar_tenant_three_decimals() {
    let app = spawn_app(&[]);
    let yen = create_tenant_in(&app, "yen", "JPY").await;
    let kwd = create_tenant_in(&app, "dinar", "KWD").await;
    let bhd = create_tenant_in(&app, "bahrain", "BHD").await;
    let post = |tenant: &'static str, token: String, lines: Value| {
        let app = app.clone_api();
        async move {
            app.post_json(
                &format!("/v1/t/{tenant}/journal-entries"),
                &token,
                &json!({ "date": "2026-05-01", "lines": lines, "post": true }),
            )
            .await
        }
    };

    let yen_frac = post(
        "yen",
        yen.clone(),
        json!([dr("acc-1000", "1000.5"), cr("acc-4000", "1000.5")]),
    )
    .await;
    let yen_ok = post(
        "yen",
        yen.clone(),
        json!([
            dr("acc-1000", "1000"),
            dr("acc-1200", "2001"),
            cr("acc-4000", "3001")
        ]),
    )
    .await;
    let kwd_four = post(
        "dinar",
        kwd.clone(),
        json!([dr("acc-1000", "1.2345"), cr("acc-4000", "1.2345")]),
    )
    .await;
    let kwd_ok = post(
        "dinar",
        kwd.clone(),
        json!([
            dr("acc-1000", "0.001"),
            dr("acc-1000", "1.234"),
            cr("acc-4000", "1.235")
        ]),
    )
    .await;
    let bhd_four = post(
        "bahrain",
        bhd.clone(),
        json!([dr("acc-1000", "0.0005"), cr("acc-4000", "0.0005")]),
    )
    .await;
    let bhd_ok = post(
        "bahrain",
        bhd.clone(),
        json!([dr("acc-1000", "10.005"), cr("acc-4000", "10.005")]),
    )
    .await;

    yen_frac.assert_problem(422);
    assert_eq!(error_fields(&yen_frac), ["lines[0]", "lines[1]"]);
    kwd_four.assert_problem(422);
    assert_eq!(error_fields(&kwd_four), ["lines[0]", "lines[1]"]);
    bhd_four.assert_problem(422);
    assert_eq!(error_fields(&bhd_four), ["lines[0]", "lines[1]"]);
    assert_eq!(yen_ok.status, 201, "{}", yen_ok.text);
    assert_eq!(yen_ok.json()["total_debit"], "3001");
    assert_eq!(kwd_ok.status, 201, "{}", kwd_ok.text);
    assert_eq!(kwd_ok.json()["total_debit"], "1.235");
    assert_eq!(bhd_ok.status, 201, "{}", bhd_ok.text);
    let tb = |tenant: &str, token: String| {
        let app = app.clone_api();
        let path = format!("/v1/t/{tenant}/reports/trial-balance?as_of=2026-12-31");
        async move {
            let resp = app.get(&path, &token).await;
            assert_eq!(resp.status, 200, "{}", resp.text);
            resp.json()
        }
    };
    assert_tb(
        &tb("yen", yen).await,
        &[
            ("acc-1000", "1000", "0", "1000"),
            ("acc-1200", "2001", "0", "2001"),
            ("acc-4000", "0", "3001", "-3001"),
        ],
        "3001",
    );
    assert_tb(
        &tb("dinar", kwd).await,
        &[
            ("acc-1000", "1.235", "0.000", "1.235"),
            ("acc-4000", "0.000", "1.235", "-1.235"),
        ],
        "1.235",
    );
    assert_tb(
        &tb("bahrain", bhd).await,
        &[
            ("acc-1000", "10.005", "0.000", "10.005"),
            ("acc-4000", "0.000", "10.005", "-10.005"),
        ],
        "10.005",
    );
}

#[tokio::test]
async fn a_euro_tenant_refuses_a_tenth_of_a_cent() {
    let b = Books::new().await;

    let resp = b
        .create(&json!({ "date": "2026-05-01", "post": true,
            "lines": [dr("acc-1000", "10.001"), cr("acc-4000", "10.001")] }))
        .await;
    let trailing_zero = b
        .post_ok(
            "2026-05-01",
            vec![dr("acc-1000", "10.010"), cr("acc-4000", "10.01")],
        )
        .await;

    resp.assert_problem(422);
    assert_eq!(error_fields(&resp), ["lines[0]", "lines[1]"]);
    assert_eq!(trailing_zero["total_debit"], "10.01");
    assert_tb(
        &b.trial_balance("2026-12-31").await,
        &[
            ("acc-1000", "10.01", "0.00", "10.01"),
            ("acc-4000", "0.00", "10.01", "-10.01"),
        ],
        "10.01",
    );
}

// ---------------------------------------------------------------------------------------
// 3. Foreign currencies

#[tokio::test]
async fn foreign_lines_keep_amount_currency_and_rate_and_the_rounding_cent_goes_to_6200() {
    let b = Books::new().await;
    b.rate("USD", "EUR", "0.9", "2026-11-01").await;
    b.rate("USD", "EUR", "0.95", "2026-11-20").await;
    b.rate("EUR", "GBP", "0.8", "2026-01-01").await;

    // 0.05 USD × 0.9 = 0.045 → 0.04 (half-even) twice, against 0.10 × 0.9 = 0.09:
    // one cent of rounding, debited to 6200.
    let rounding = b
        .post_ok(
            "2026-11-10",
            vec![
                dr_in("acc-6000", "0.05", "USD"),
                dr_in("acc-1400", "0.05", "USD"),
                cr_in("acc-1100", "0.10", "USD"),
            ],
        )
        .await;
    // The latest rate on or before the date: 0.95 from 2026-11-20.
    let later = b
        .post_ok(
            "2026-11-25",
            vec![dr_in("acc-6000", "100.00", "USD"), cr("acc-1000", "95.00")],
        )
        .await;
    // Only EUR → GBP exists: GBP → EUR is its inverse, 1.25.
    let inverse = b
        .post_ok(
            "2026-11-25",
            vec![dr_in("acc-6000", "10.00", "GBP"), cr("acc-1000", "12.50")],
        )
        .await;

    let lines = rounding["lines"].as_array().expect("lines");
    assert_eq!(
        lines.len(),
        4,
        "three lines plus the rounding line: {rounding}"
    );
    assert_eq!(lines[0]["currency"], "USD");
    assert_eq!(lines[0]["amount"], "0.05");
    assert_eq!(lines[0]["rate"], "0.9");
    assert_eq!(lines[0]["debit"], "0.04");
    assert_eq!(lines[1]["debit"], "0.04");
    assert_eq!(lines[2]["credit"], "0.09");
    assert_eq!(lines[2]["amount"], "0.10");
    assert_eq!(lines[3]["account_id"], "acc-6200", "{rounding}");
    assert_eq!(lines[3]["debit"], "0.01", "{rounding}");
    assert_eq!(lines[3]["credit"], "0.00", "{rounding}");
    assert_eq!(lines[3]["currency"], "EUR", "{rounding}");
    assert_eq!(rounding["total_debit"], "0.09");
    assert_eq!(rounding["total_credit"], "0.09");
    assert_eq!(later["lines"][0]["rate"], "0.95", "{later}");
    assert_eq!(later["lines"][0]["debit"], "95.00", "{later}");
    assert_eq!(
        later["lines"].as_array().unwrap().len(),
        2,
        "no rounding: {later}"
    );
    assert_eq!(inverse["lines"][0]["rate"], "1.25", "{inverse}");
    assert_eq!(inverse["lines"][0]["debit"], "12.50", "{inverse}");
    assert_tb(
        &b.trial_balance("2026-12-31").await,
        &[
            ("acc-1000", "0.00", "107.50", "-107.50"),
            ("acc-1100", "0.00", "0.09", "-0.09"),
            ("acc-1400", "0.04", "0.00", "0.04"),
            ("acc-6000", "107.54", "0.00", "107.54"),
            ("acc-6200", "0.01", "0.00", "0.01"),
        ],
        "107.59",
    );
}

#[tokio::test]
async fn a_yen_tenant_converts_euro_lines_to_whole_yen_and_books_the_rounding_yen() {
    let b = Books::with_currency("yen", "JPY").await;
    b.rate("EUR", "JPY", "161.5", "2026-01-01").await;

    // 10.01 × 161.5 = 1616.615 → 1617 on both sides: no rounding.
    let whole = b
        .post_ok(
            "2026-06-01",
            vec![
                dr_in("acc-6000", "10.01", "EUR"),
                cr_in("acc-1000", "10.01", "EUR"),
            ],
        )
        .await;
    // 0.01 × 161.5 = 1.615 → 2 twice, against 0.02 × 161.5 = 3.23 → 3: one yen credited
    // to the rounding account.
    let rounding = b
        .post_ok(
            "2026-06-02",
            vec![
                dr_in("acc-6000", "0.01", "EUR"),
                dr_in("acc-6000", "0.01", "EUR"),
                cr_in("acc-1000", "0.02", "EUR"),
            ],
        )
        .await;

    assert_eq!(whole["lines"][0]["debit"], "1617", "{whole}");
    assert_eq!(whole["lines"][1]["credit"], "1617", "{whole}");
    assert_eq!(whole["lines"].as_array().unwrap().len(), 2, "{whole}");
    assert_eq!(rounding["lines"][3]["account_id"], "acc-6200", "{rounding}");
    assert_eq!(rounding["lines"][3]["credit"], "1", "{rounding}");
    assert_tb(
        &b.trial_balance("2026-12-31").await,
        &[
            ("acc-1000", "0", "1620", "-1620"),
            ("acc-6000", "1621", "0", "1621"),
            ("acc-6200", "0", "1", "-1"),
        ],
        "1621",
    );
}

#[tokio::test]
async fn a_foreign_line_that_converts_exactly_leaves_no_room_for_a_one_cent_imbalance() {
    let b = Books::new().await;
    b.rate("USD", "EUR", "0.9", "2026-01-01").await;
    let before = b.trial_balance("2026-12-31").await;

    // 10.00 USD × 0.9 is exactly 9.00 EUR: nothing was rounded, so a 9.01 credit is an
    // unbalanced entry, not a rounding difference.
    let resp = b
        .create(&json!({ "date": "2026-06-01", "post": true, "lines": [
            dr_in("acc-6000", "10.00", "USD"), cr("acc-1000", "9.01"),
        ]}))
        .await;

    let body = resp.assert_problem(422);
    assert_eq!(error_fields(&resp), ["lines"], "{body}");
    assert_eq!(b.trial_balance("2026-12-31").await, before);
}

// ---------------------------------------------------------------------------------------
// 4. Gapless numbering

#[tokio::test]
async fn forty_concurrent_postings_get_numbers_one_to_forty_without_gap_or_duplicate() {
    let b = Books::new().await;
    // A closed month: postings dated in it fail after their draft was written, in the
    // same transaction, and must give nothing back but a 409.
    assert_eq!(b.close_period("2026-02").await.status, 201);
    let path = b.path("journal-entries");

    let mut tasks = Vec::new();
    for i in 0..50u32 {
        let (api, token, path) = (b.app.clone_api(), b.owner.clone(), path.clone());
        let date = if i % 5 == 4 {
            "2026-02-10"
        } else {
            "2026-06-15"
        };
        tasks.push(tokio::spawn(async move {
            let amount = format!("{}.{:02}", 10 + i, i);
            let body = json!({ "date": date, "post": true, "lines": [
                dr("acc-1000", &amount), dr("acc-1400", "0.01"),
                cr("acc-4000", &amount), cr("acc-2100", "0.01"),
            ]});
            (date, api.post_json(&path, &token, &body).await)
        }));
    }
    let mut numbers = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (date, resp) = t.await.expect("task");
        if date == "2026-02-10" {
            assert_eq!(resp.status, 409, "closed period: {}", resp.text);
            refused += 1;
        } else {
            assert_eq!(resp.status, 201, "{}", resp.text);
            numbers.push(resp.json()["number"].as_str().expect("number").to_owned());
        }
    }

    assert_eq!(refused, 10);
    numbers.sort();
    let expected: Vec<String> = (1..=40).map(|n| format!("JE-2026-{n:06}")).collect();
    assert_eq!(numbers, expected, "gapless, no duplicate");
    let entries = b.entries().await;
    assert_eq!(entries.len(), 40, "the refused ones left no draft behind");
    let stored: BTreeSet<&str> = entries
        .iter()
        .map(|e| e["number"].as_str().unwrap_or("none"))
        .collect();
    assert_eq!(stored.len(), 40);
    // And the next one continues the sequence.
    let next = b
        .post_ok(
            "2026-12-31",
            vec![dr("acc-1000", "1.00"), cr("acc-3000", "1.00")],
        )
        .await;
    assert_eq!(next["number"], "JE-2026-000041");
    let next_year = b
        .post_ok(
            "2027-01-01",
            vec![dr("acc-1000", "1.00"), cr("acc-3000", "1.00")],
        )
        .await;
    assert_eq!(next_year["number"], "JE-2027-000001", "per fiscal year");
}

// ---------------------------------------------------------------------------------------
// 5. Immutability and reversal

#[tokio::test]
async fn a_posted_entry_is_immutable_and_its_reversal_brings_the_accounts_back_to_zero() {
    let b = Books::new().await;
    b.post_ok(
        "2026-07-01",
        vec![dr("acc-1000", "500.00"), cr("acc-3000", "500.00")],
    )
    .await;
    let draft = b
        .draft_ok(
            "2026-07-02",
            vec![
                dr("acc-1200", "119.00"),
                cr("acc-4000", "100.00"),
                cr("acc-2100", "19.00"),
            ],
        )
        .await;
    let id = draft["id"].as_str().unwrap().to_owned();
    // A draft can still change, and be posted.
    let patched = b
        .app
        .patch_json(
            &b.path(&format!("journal-entries/{id}")),
            &b.owner,
            &json!({ "memo": "invoice 7" }),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let posted = b.action(&id, "post", None).await;
    assert_eq!(posted.status, 200, "{}", posted.text);
    let posted = posted.json();
    assert_eq!(posted["number"], "JE-2026-000002");
    assert_eq!(posted["memo"], "invoice 7");

    let patch = b
        .app
        .patch_json(
            &b.path(&format!("journal-entries/{id}")),
            &b.owner,
            &json!({ "memo": "changed" }),
        )
        .await;
    let patch_lines = b
        .app
        .patch_json(
            &b.path(&format!("journal-entries/{id}")),
            &b.owner,
            &json!({ "lines": [dr("acc-1200", "1.00"), cr("acc-4000", "1.00")] }),
        )
        .await;
    let delete = b
        .app
        .delete(&b.path(&format!("journal-entries/{id}")), &b.owner)
        .await;
    let post_again = b.action(&id, "post", None).await;
    patch.assert_problem(409);
    patch_lines.assert_problem(409);
    delete.assert_problem(409);
    post_again.assert_problem(409);
    assert_eq!(
        b.get_ok(&format!("journal-entries/{id}")).await["memo"],
        "invoice 7"
    );

    let reversed = b
        .action(&id, "reverse", Some(json!({ "date": "2026-07-15" })))
        .await;
    assert_eq!(reversed.status, 200, "{}", reversed.text);
    let reversed = reversed.json();
    let rev_id = reversed["reversed_by"]
        .as_str()
        .expect("reversed_by")
        .to_owned();
    let mirror = b.get_ok(&format!("journal-entries/{rev_id}")).await;
    assert_eq!(mirror["reversal_of"], id.as_str(), "{mirror}");
    assert_eq!(mirror["status"], "posted");
    assert_eq!(mirror["number"], "JE-2026-000003");
    assert_eq!(mirror["date"], "2026-07-15");
    assert_eq!(mirror["lines"][0]["credit"], "119.00", "{mirror}");
    assert_eq!(mirror["lines"][1]["debit"], "100.00", "{mirror}");
    assert_eq!(mirror["lines"][2]["debit"], "19.00", "{mirror}");

    // Before the reversal date the invoice still counts; after it, those accounts are zero.
    assert_tb(
        &b.trial_balance("2026-07-14").await,
        &[
            ("acc-1000", "500.00", "0.00", "500.00"),
            ("acc-1200", "119.00", "0.00", "119.00"),
            ("acc-2100", "0.00", "19.00", "-19.00"),
            ("acc-3000", "0.00", "500.00", "-500.00"),
            ("acc-4000", "0.00", "100.00", "-100.00"),
        ],
        "619.00",
    );
    assert_tb(
        &b.trial_balance("2026-12-31").await,
        &[
            ("acc-1000", "500.00", "0.00", "500.00"),
            ("acc-1200", "119.00", "119.00", "0.00"),
            ("acc-2100", "19.00", "19.00", "0.00"),
            ("acc-3000", "0.00", "500.00", "-500.00"),
            ("acc-4000", "100.00", "100.00", "0.00"),
        ],
        "738.00",
    );

    let twice = b.action(&id, "reverse", None).await;
    let of_reversal = b.action(&rev_id, "reverse", None).await;
    let delete_reversal = b
        .app
        .delete(&b.path(&format!("journal-entries/{rev_id}")), &b.owner)
        .await;
    twice.assert_problem(409);
    of_reversal.assert_problem(409);
    delete_reversal.assert_problem(409);
    assert_eq!(b.entries().await.len(), 3, "no fourth entry");
}

// ---------------------------------------------------------------------------------------
// 6. Fiscal periods

#[tokio::test]
async fn a_closed_month_refuses_postings_until_it_is_reopened() {
    let b = Books::new().await;
    b.post_ok(
        "2026-11-05",
        vec![dr("acc-1000", "50.00"), cr("acc-4000", "50.00")],
    )
    .await;
    let draft = b
        .draft_ok(
            "2026-11-20",
            vec![dr("acc-6000", "20.00"), cr("acc-1000", "20.00")],
        )
        .await;
    let draft_id = draft["id"].as_str().unwrap();

    let closed = b.close_period("2026-11").await;
    assert_eq!(closed.status, 201, "{}", closed.text);
    assert_eq!(closed.json()["status"], "closed");
    let tb_before = b.trial_balance("2026-12-31").await;
    let direct = b
        .create(&json!({ "date": "2026-11-30", "post": true,
            "lines": [dr("acc-6000", "1.00"), cr("acc-1000", "1.00")] }))
        .await;
    let later_post = b.action(draft_id, "post", None).await;
    let close_again = b.close_period("2026-11").await;
    // Outside the month posting goes on.
    let december = b
        .post_ok(
            "2026-12-01",
            vec![dr("acc-6000", "5.00"), cr("acc-1000", "5.00")],
        )
        .await;

    let body = direct.assert_problem(409);
    assert!(
        body["detail"].as_str().unwrap().contains("2026-11"),
        "{body}"
    );
    later_post.assert_problem(409);
    close_again.assert_problem(409);
    assert_eq!(
        december["number"], "JE-2026-000002",
        "refusals took no number"
    );
    assert_eq!(
        b.get_ok(&format!("journal-entries/{draft_id}")).await["status"],
        "draft"
    );
    assert_eq!(b.entries().await.len(), 3, "the refused one left no draft");
    assert_eq!(
        b.trial_balance("2026-11-30").await["lines"],
        tb_before["lines"],
        "nothing posted into November"
    );

    let reopened = b.reopen_period("2026-11").await;
    assert_eq!(reopened.status, 200, "{}", reopened.text);
    assert_eq!(reopened.json()["status"], "open");
    let posted = b.action(draft_id, "post", None).await;
    assert_eq!(posted.status, 200, "{}", posted.text);
    assert_eq!(posted.json()["number"], "JE-2026-000003");
    let reopen_open = b.reopen_period("2026-11").await;
    assert!(
        [404, 409].contains(&reopen_open.status),
        "reopening an open period: {}",
        reopen_open.text
    );
}

#[tokio::test]
async fn closing_the_year_moves_profit_and_loss_into_retained_earnings() {
    let b = Books::new().await;
    b.post_ok(
        "2026-01-02",
        vec![dr("acc-1100", "10000.00"), cr("acc-3000", "10000.00")],
    )
    .await;
    b.post_ok(
        "2026-03-15",
        vec![
            dr("acc-1200", "1190.00"),
            cr("acc-4000", "1000.00"),
            cr("acc-2100", "190.00"),
        ],
    )
    .await;
    b.post_ok(
        "2026-03-15",
        vec![dr("acc-5000", "400.10"), cr("acc-1300", "400.10")],
    )
    .await;
    b.post_ok(
        "2026-08-31",
        vec![dr("acc-6000", "123.45"), cr("acc-1100", "123.45")],
    )
    .await;
    b.post_ok(
        "2026-10-31",
        vec![dr("acc-1100", "0.55"), cr("acc-4100", "0.55")],
    )
    .await;
    // Net: 1000.00 + 0.55 − 400.10 − 123.45 = 477.00.
    let pl = b
        .get_ok("reports/profit-and-loss?from=2026-01-01&to=2026-12-31")
        .await;
    assert_eq!(pl["income"]["total"], "1000.55", "{pl}");
    assert_eq!(pl["expenses"]["total"], "523.55", "{pl}");
    assert_eq!(pl["net_income"], "477.00", "{pl}");

    let closed = b.close_period("2026").await;

    assert_eq!(closed.status, 201, "{}", closed.text);
    let closing = closed.json()["closing_entry_id"]
        .as_str()
        .expect("a closing entry")
        .to_owned();
    let entry = b.get_ok(&format!("journal-entries/{closing}")).await;
    assert_eq!(entry["status"], "posted", "{entry}");
    assert_eq!(entry["date"], "2026-12-31", "{entry}");
    assert_eq!(entry["number"], "JE-2026-000006", "{entry}");
    let tb = b.trial_balance("2026-12-31").await;
    assert_tb(
        &tb,
        &[
            ("acc-1100", "10000.55", "123.45", "9877.10"),
            ("acc-1200", "1190.00", "0.00", "1190.00"),
            ("acc-1300", "0.00", "400.10", "-400.10"),
            ("acc-2100", "0.00", "190.00", "-190.00"),
            ("acc-3000", "0.00", "10000.00", "-10000.00"),
            ("acc-3100", "0.00", "477.00", "-477.00"),
            ("acc-4000", "1000.00", "1000.00", "0.00"),
            ("acc-4100", "0.55", "0.55", "0.00"),
            ("acc-5000", "400.10", "400.10", "0.00"),
            ("acc-6000", "123.45", "123.45", "0.00"),
        ],
        "12714.65",
    );
    let bs = b.balance_sheet("2026-12-31").await;
    assert_eq!(bs["assets"]["total"], "10667.00", "{bs}");
    assert_eq!(bs["liabilities"]["total"], "190.00", "{bs}");
    assert_eq!(bs["equity"]["total"], "10477.00", "{bs}");
    assert_eq!(
        section_amount(&bs["equity"], "account_id", "acc-3100").as_deref(),
        Some("477.00"),
        "{bs}"
    );
    assert_eq!(
        section_amount(&bs["equity"], "name", "Current year earnings").as_deref(),
        Some("0.00"),
        "{bs}"
    );
    // Nothing more posts into the closed year; the next year goes on.
    let late = b
        .create(&json!({ "date": "2026-06-30", "post": true,
            "lines": [dr("acc-6000", "1.00"), cr("acc-1100", "1.00")] }))
        .await;
    late.assert_problem(409);
    let next = b
        .post_ok(
            "2027-01-10",
            vec![dr("acc-6000", "7.00"), cr("acc-1100", "7.00")],
        )
        .await;
    assert_eq!(next["number"], "JE-2027-000001");
    let bs = b.balance_sheet("2027-12-31").await;
    assert_eq!(bs["assets"]["total"], "10660.00", "{bs}");
    assert_eq!(bs["equity"]["total"], "10470.00", "{bs}");
    assert_eq!(
        section_amount(&bs["equity"], "name", "Current year earnings").as_deref(),
        Some("-7.00"),
        "{bs}"
    );

    // Reopening the year reverses the closing entry: P&L accounts carry the year again.
    let reopened = b.reopen_period("2026").await;
    assert_eq!(reopened.status, 200, "{}", reopened.text);
    let tb = tb_lines(&b.trial_balance("2026-12-31").await);
    assert_eq!(tb["acc-3100"].2, "0.00", "{tb:?}");
    assert_eq!(tb["acc-4000"].2, "-1000.00", "{tb:?}");
    assert_eq!(tb["acc-6000"].2, "123.45", "{tb:?}");
}

// ---------------------------------------------------------------------------------------
// 7. Bad input

#[tokio::test]
async fn bad_entries_are_refused_naming_the_line_and_nothing_is_posted() {
    let b = Books::new().await;
    b.rate("USD", "EUR", "0.9", "2026-11-01").await;
    b.post_ok(
        "2026-03-01",
        vec![dr("acc-1000", "10.00"), cr("acc-3000", "10.00")],
    )
    .await;
    assert_eq!(b.close_period("2026-04").await.status, 201);
    let tb_before = b.trial_balance("2026-12-31").await;

    let cases: Vec<(&str, Value, u16, Vec<&str>, &str)> = vec![
        (
            "unbalanced",
            json!([dr("acc-1000", "100.00"), cr("acc-4000", "99.99")]),
            422,
            vec!["lines"],
            "unbalanced",
        ),
        (
            "both debit and credit",
            json!([dr("acc-1000", "5.00"), { "account_id": "acc-4000", "debit": "5.00", "credit": "5.00" }]),
            422,
            vec!["lines[1]"],
            "both",
        ),
        (
            "negative",
            json!([dr("acc-1000", "-5.00"), cr("acc-4000", "-5.00")]),
            422,
            vec!["lines[0].debit", "lines[1].credit"],
            "negative",
        ),
        (
            "neither debit nor credit",
            json!([
                dr("acc-1000", "5.00"),
                cr("acc-4000", "5.00"),
                dr("acc-6000", "0.00")
            ]),
            422,
            vec!["lines[2]"],
            "neither",
        ),
        (
            "unknown account",
            json!([dr("acc-1000", "5.00"), cr("acc-9999", "5.00")]),
            422,
            vec!["lines[1].account_id"],
            "acc-9999",
        ),
        (
            "currency without a rate",
            json!([dr_in("acc-6000", "5.00", "CHF"), cr("acc-1000", "5.00")]),
            422,
            vec!["lines[0].currency"],
            "rate",
        ),
        (
            "rate only after the entry date",
            json!([cr("acc-1000", "4.50"), dr_in("acc-6000", "5.00", "USD")]),
            422,
            vec!["lines[1].currency"],
            "rate",
        ),
        (
            "unknown currency",
            json!([dr_in("acc-6000", "5.00", "ZZZ"), cr("acc-1000", "5.00")]),
            422,
            vec!["lines[0].currency"],
            "ZZZ",
        ),
        (
            "a JSON number",
            json!([{ "account_id": "acc-1000", "debit": 5.0 }, cr("acc-4000", "5.00")]),
            422,
            vec!["lines[0].debit"],
            "decimal string",
        ),
        (
            "not a number",
            json!([dr("acc-1000", "five"), cr("acc-4000", "5.00")]),
            422,
            vec!["lines[0].debit"],
            "five",
        ),
        (
            "one line",
            json!([dr("acc-1000", "5.00")]),
            422,
            vec!["lines"],
            "two lines",
        ),
        (
            "a missing account",
            json!([{ "debit": "5.00" }, cr("acc-4000", "5.00")]),
            422,
            vec!["lines[0].account_id"],
            "required",
        ),
        (
            "an amount out of range",
            json!([
                dr("acc-1000", "99999999999999999999.99"),
                cr("acc-4000", "99999999999999999999.99")
            ]),
            422,
            vec!["lines[0]", "lines[1]"],
            "range",
        ),
    ];
    let date_for = |what: &str| {
        if what == "rate only after the entry date" {
            "2026-10-31"
        } else {
            "2026-06-01"
        }
    };

    for (what, lines, status, fields, needle) in &cases {
        for post in [true, false] {
            let body = json!({ "date": date_for(what), "lines": lines, "post": post });
            let resp = b.create(&body).await;
            let problem = resp.assert_problem(*status);
            assert_eq!(error_fields(&resp), *fields, "{what}: {problem}");
            assert!(
                problem["detail"].as_str().unwrap().contains(needle),
                "{what}: the message says {needle:?}: {problem}"
            );
        }
    }
    // A date in a closed month: 409 naming the period.
    let closed = b
        .create(&json!({ "date": "2026-04-15", "post": true,
            "lines": [dr("acc-1000", "5.00"), cr("acc-4000", "5.00")] }))
        .await;
    let body = closed.assert_problem(409);
    assert!(
        body["detail"].as_str().unwrap().contains("2026-04"),
        "{body}"
    );
    let bad_date = b
        .create(&json!({ "date": "2026-02-30", "post": true,
            "lines": [dr("acc-1000", "5.00"), cr("acc-4000", "5.00")] }))
        .await;
    bad_date.assert_problem(422);
    assert_eq!(error_fields(&bad_date), ["date"]);

    assert_eq!(
        b.trial_balance("2026-12-31").await,
        tb_before,
        "nothing posted"
    );
    assert_eq!(b.entries().await.len(), 1, "no draft was left behind");
    let next = b
        .post_ok(
            "2026-06-01",
            vec![dr("acc-1000", "1.00"), cr("acc-3000", "1.00")],
        )
        .await;
    assert_eq!(next["number"], "JE-2026-000002", "no number was used up");
}

#[tokio::test]
async fn amounts_whose_sum_overflows_are_refused_not_wrapped() {
    let b = Books::new().await;
    // Each line fits in i64 minor units (9.2e18); their sum does not. 3 × 9.2e18 − 2^64 is
    // 9_153_255_926_290_448_384: a wrapping sum would "balance" against that credit.
    let huge = "92000000000000000.00";
    let wrapped = "91532559262904483.84";
    let tb_before = b.trial_balance("2026-12-31").await;

    let body = json!({ "date": "2026-06-01", "post": true, "lines": [
        dr("acc-1000", huge), dr("acc-1000", huge), dr("acc-1000", huge), cr("acc-4000", wrapped),
    ]});
    let resp = b
        .app
        .try_send(
            b.app
                .request(Method::POST, &b.path("journal-entries"))
                .bearer_auth(&b.owner)
                .json(&body),
        )
        .await;

    let resp = resp.unwrap_or_else(|e| {
        let log = b.app.stderr();
        let panic: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("panicked") || l.contains("overflow"))
            .take(4)
            .collect();
        panic!(
            "the server dropped the connection instead of answering 422 ({e}); its log: {panic:#?}"
        )
    });
    resp.assert_problem(422);
    assert_eq!(
        b.trial_balance("2026-12-31").await,
        tb_before,
        "nothing posted"
    );
    assert!(b.entries().await.is_empty());
}

#[tokio::test]
async fn entries_that_fit_one_by_one_never_make_the_reports_overflow() {
    let b = Books::new().await;
    // 6e18 minor units fit an i64; two of them on one account do not.
    let big = "60000000000000000.00";
    let first = b
        .create(&json!({ "date": "2026-06-01", "post": true,
            "lines": [dr("acc-1000", big), cr("acc-3000", big)] }))
        .await;
    let second = b
        .create(&json!({ "date": "2026-06-02", "post": true,
            "lines": [dr("acc-1000", big), cr("acc-3000", big)] }))
        .await;

    assert!(
        [201, 422].contains(&first.status) && [201, 422].contains(&second.status),
        "{} / {}",
        first.text,
        second.text
    );
    // Whatever was accepted, the books stay reportable.
    for report in [
        "reports/trial-balance?as_of=2026-12-31",
        "reports/balance-sheet?as_of=2026-12-31",
        "reports/profit-and-loss?from=2026-01-01&to=2026-12-31",
        "reports/general-ledger?account_id=acc-1000&from=2026-01-01&to=2026-12-31",
    ] {
        let resp = b.get(report).await;
        assert_eq!(
            resp.status, 200,
            "{report} after postings of {} and {}: {}",
            first.status, second.status, resp.text
        );
    }
}

// ---------------------------------------------------------------------------------------
// 8. Roles

#[tokio::test]
async fn an_accountant_posts_sales_and_warehouse_may_not_and_a_viewer_reads_the_reports() {
    let b = Books::new().await;
    let accountant = b.user("acct@example.com", &["accountant"]).await;
    let sales = b.user("sales@example.com", &["sales"]).await;
    let warehouse = b.user("wh@example.com", &["warehouse"]).await;
    let viewer = b.user("view@example.com", &["viewer"]).await;
    let body = json!({ "date": "2026-02-01", "post": true,
        "lines": [dr("acc-1000", "42.00"), cr("acc-4000", "42.00")] });

    let by_accountant = b.create_as(&accountant, &body).await;
    let by_sales = b.create_as(&sales, &body).await;
    let by_warehouse = b.create_as(&warehouse, &body).await;
    let by_viewer = b.create_as(&viewer, &body).await;

    assert_eq!(by_accountant.status, 201, "{}", by_accountant.text);
    let entry = by_accountant.json();
    assert_eq!(entry["number"], "JE-2026-000001");
    let id = entry["id"].as_str().unwrap();
    by_sales.assert_problem(403);
    by_warehouse.assert_problem(403);
    by_viewer.assert_problem(403);
    b.action_as(&sales, id, "reverse", None)
        .await
        .assert_problem(403);
    b.action_as(&viewer, id, "reverse", None)
        .await
        .assert_problem(403);
    let viewer_close = b
        .app
        .post_json(
            &b.path("fiscal-periods"),
            &viewer,
            &json!({ "period": "2026-01" }),
        )
        .await;
    viewer_close.assert_problem(403);

    let tb_path = b.path("reports/trial-balance?as_of=2026-12-31");
    let as_viewer = b.app.get(&tb_path, &viewer).await;
    assert_eq!(as_viewer.status, 200, "{}", as_viewer.text);
    assert_tb(
        &as_viewer.json(),
        &[
            ("acc-1000", "42.00", "0.00", "42.00"),
            ("acc-4000", "0.00", "42.00", "-42.00"),
        ],
        "42.00",
    );
    for report in [
        "reports/balance-sheet?as_of=2026-12-31",
        "reports/profit-and-loss?from=2026-01-01&to=2026-12-31",
        "reports/general-ledger?account_id=acc-1000&from=2026-01-01&to=2026-12-31",
        "journal-entries",
        "accounts",
    ] {
        let resp = b.app.get(&b.path(report), &viewer).await;
        assert_eq!(resp.status, 200, "viewer reads {report}: {}", resp.text);
    }
    let as_sales = b.app.get(&tb_path, &sales).await;
    as_sales.assert_problem(403);
    // The accountant reverses and closes periods.
    let rev = b.action_as(&accountant, id, "reverse", None).await;
    assert_eq!(rev.status, 200, "{}", rev.text);
    let close = b
        .app
        .post_json(
            &b.path("fiscal-periods"),
            &accountant,
            &json!({ "period": "2026-01" }),
        )
        .await;
    assert_eq!(close.status, 201, "{}", close.text);
    assert_eq!(
        b.entries().await.len(),
        2,
        "only the accountant's entry and its reversal"
    );
}

// ---------------------------------------------------------------------------------------
// 9. Chart of accounts

#[tokio::test]
async fn accounts_with_postings_cannot_be_deleted_and_an_inactive_account_takes_no_postings() {
    let b = Books::new().await;
    let chart = b.get_ok("accounts?limit=500").await;
    let codes: BTreeSet<&str> = chart["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["code"].as_str())
        .collect();
    for code in [
        "1000", "1200", "1300", "1400", "2000", "2100", "2200", "3100", "4000", "5000", "6200",
    ] {
        assert!(codes.contains(code), "seeded chart has {code}: {codes:?}");
    }
    b.post_ok(
        "2026-02-01",
        vec![dr("acc-6000", "12.00"), cr("acc-1000", "12.00")],
    )
    .await;

    let delete_used = b.app.delete(&b.path("accounts/acc-1000"), &b.owner).await;
    let created = b
        .app
        .post_json(
            &b.path("accounts"),
            &b.owner,
            &json!({ "code": "6400", "name": "Travel", "type": "expense" }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let travel = created.json()["id"].as_str().expect("id").to_owned();
    let used = b
        .post_ok(
            "2026-02-02",
            vec![dr(&travel, "80.00"), cr("acc-1000", "80.00")],
        )
        .await;
    let deactivated = b
        .app
        .patch_json(
            &b.path(&format!("accounts/{travel}")),
            &b.owner,
            &json!({ "active": false }),
        )
        .await;
    let to_inactive = b
        .create(&json!({ "date": "2026-02-03", "post": true,
            "lines": [cr("acc-1000", "5.00"), dr(&travel, "5.00")] }))
        .await;
    let delete_travel = b
        .app
        .delete(&b.path(&format!("accounts/{travel}")), &b.owner)
        .await;
    let unused = b
        .app
        .post_json(
            &b.path("accounts"),
            &b.owner,
            &json!({ "code": "6500", "name": "Unused", "type": "expense" }),
        )
        .await;
    let unused_id = unused.json()["id"].as_str().expect("id").to_owned();
    let delete_unused = b
        .app
        .delete(&b.path(&format!("accounts/{unused_id}")), &b.owner)
        .await;
    let to_deleted = b
        .create(&json!({ "date": "2026-02-03", "post": true,
            "lines": [dr(&unused_id, "5.00"), cr("acc-1000", "5.00")] }))
        .await;

    delete_used.assert_problem(409);
    assert_eq!(used["status"], "posted");
    assert_eq!(deactivated.status, 200, "{}", deactivated.text);
    assert_eq!(deactivated.json()["active"], false);
    let body = to_inactive.assert_problem(422);
    assert_eq!(
        error_fields(&to_inactive),
        ["lines[1].account_id"],
        "{body}"
    );
    assert!(
        body["detail"].as_str().unwrap().contains("inactive"),
        "{body}"
    );
    delete_travel.assert_problem(409);
    assert_eq!(delete_unused.status, 204, "{}", delete_unused.text);
    to_deleted.assert_problem(422);
    assert_eq!(error_fields(&to_deleted), ["lines[0].account_id"]);
    assert_tb(
        &b.trial_balance("2026-12-31").await,
        &[
            ("acc-1000", "0.00", "92.00", "-92.00"),
            ("acc-6000", "12.00", "0.00", "12.00"),
            (travel.as_str(), "80.00", "0.00", "80.00"),
        ],
        "92.00",
    );
    assert_eq!(b.get(&format!("accounts/{travel}")).await.status, 200);
}

#[tokio::test]
async fn a_draft_on_an_account_deactivated_later_cannot_be_posted() {
    let b = Books::new().await;
    let created = b
        .app
        .post_json(
            &b.path("accounts"),
            &b.owner,
            &json!({ "code": "6410", "name": "Meals", "type": "expense" }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let meals = created.json()["id"].as_str().unwrap().to_owned();
    let draft = b
        .draft_ok(
            "2026-02-01",
            vec![dr(&meals, "9.00"), cr("acc-1000", "9.00")],
        )
        .await;
    let deactivated = b
        .app
        .patch_json(
            &b.path(&format!("accounts/{meals}")),
            &b.owner,
            &json!({ "active": false }),
        )
        .await;
    assert_eq!(deactivated.status, 200, "{}", deactivated.text);

    let post = b.action(draft["id"].as_str().unwrap(), "post", None).await;

    let body = post.assert_problem(422);
    assert!(body["detail"].as_str().unwrap().contains(&meals), "{body}");
    assert_tb(&b.trial_balance("2026-12-31").await, &[], "0.00");
}

// ---------------------------------------------------------------------------------------
// 10. Balance sheet equation

/// Lines of one entry as `(account, debit, credit)` decimal strings.
type BookLines = Vec<(&'static str, &'static str, &'static str)>;

/// The books as the test keeps them: base-currency debit and credit per account.
#[derive(Default)]
struct Ledger {
    by_account: BTreeMap<String, (Decimal, Decimal)>,
}

impl Ledger {
    fn book(&mut self, account: &str, debit: Decimal, credit: Decimal) {
        let e = self.by_account.entry(account.to_owned()).or_default();
        e.0 += debit;
        e.1 += credit;
    }

    fn book_lines(&mut self, lines: &[(&str, &str, &str)], sign: i32) {
        for (account, debit, credit) in lines {
            let (d, c) = (dec(debit), dec(credit));
            if sign > 0 {
                self.book(account, d, c);
            } else {
                self.book(account, c, d);
            }
        }
    }

    /// Natural-sign total of the accounts of one type.
    fn total(&self, types: &BTreeMap<String, String>, kind: &str) -> Decimal {
        self.by_account
            .iter()
            .filter(|(a, _)| types[*a] == kind)
            .map(|(_, (d, c))| match kind {
                "asset" | "expense" => d - c,
                _ => c - d,
            })
            .sum()
    }
}

#[tokio::test]
async fn assets_equal_liabilities_plus_equity_after_a_mixed_sequence_of_entries() {
    let b = Books::new().await;
    b.rate("USD", "EUR", "0.9137", "2026-01-01").await;
    let chart = b.get_ok("accounts?limit=500").await;
    let types: BTreeMap<String, String> = chart["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_owned(),
                a["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut ledger = Ledger::default();

    // Base-currency entries: (date, lines as (account, debit, credit)).
    let base: Vec<(&str, BookLines)> = vec![
        (
            "2026-01-02",
            vec![("acc-1100", "25000.00", "0"), ("acc-3000", "0", "25000.00")],
        ),
        (
            "2026-01-10",
            vec![
                ("acc-1300", "4000.40", "0"),
                ("acc-1400", "760.08", "0"),
                ("acc-2000", "0", "4760.48"),
            ],
        ),
        (
            "2026-01-12",
            vec![("acc-1300", "333.33", "0"), ("acc-2200", "0", "333.33")],
        ),
        (
            "2026-02-01",
            vec![
                ("acc-1200", "2380.00", "0"),
                ("acc-4000", "0", "2000.00"),
                ("acc-2100", "0", "380.00"),
            ],
        ),
        (
            "2026-02-01",
            vec![("acc-5000", "1234.57", "0"), ("acc-1300", "0", "1234.57")],
        ),
        (
            "2026-02-15",
            vec![("acc-1100", "2380.00", "0"), ("acc-1200", "0", "2380.00")],
        ),
        (
            "2026-03-01",
            vec![("acc-2000", "4760.48", "0"), ("acc-1100", "0", "4760.48")],
        ),
        (
            "2026-03-31",
            vec![("acc-6300", "0.01", "0"), ("acc-1300", "0", "0.01")],
        ),
        (
            "2026-04-30",
            vec![("acc-1000", "100.00", "0"), ("acc-1100", "0", "100.00")],
        ),
    ];
    for (date, lines) in &base {
        let body: Vec<Value> = lines
            .iter()
            .map(
                |(a, d, c)| {
                    if dec(d).is_zero() { cr(a, c) } else { dr(a, d) }
                },
            )
            .collect();
        b.post_ok(date, body).await;
        ledger.book_lines(lines, 1);
    }
    // One that is reversed (net zero), and a draft that never counts.
    let reversed = b
        .post_ok(
            "2026-05-05",
            vec![dr("acc-6000", "999.99"), cr("acc-1000", "999.99")],
        )
        .await;
    let rev = b
        .action(reversed["id"].as_str().unwrap(), "reverse", None)
        .await;
    assert_eq!(rev.status, 200, "{}", rev.text);
    b.draft_ok(
        "2026-05-06",
        vec![dr("acc-6000", "1.00"), cr("acc-1000", "1.00")],
    )
    .await;
    // Foreign lines: the test computes their base amounts itself (half-even to cents) and
    // books whatever rounding is left to 6200.
    let usd: Vec<(&str, &str, bool)> = vec![
        ("acc-6000", "123.45", true),
        ("acc-1400", "7.77", true),
        ("acc-6100", "0.03", true),
        ("acc-1100", "131.25", false),
    ];
    let rate = dec("0.9137");
    let mut net = Decimal::ZERO;
    let mut body = Vec::new();
    for (account, amount, debit) in &usd {
        let base =
            (dec(amount) * rate).round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
        if *debit {
            ledger.book(account, base, Decimal::ZERO);
            net += base;
            body.push(dr_in(account, amount, "USD"));
        } else {
            ledger.book(account, Decimal::ZERO, base);
            net -= base;
            body.push(cr_in(account, amount, "USD"));
        }
    }
    if net > Decimal::ZERO {
        ledger.book("acc-6200", Decimal::ZERO, net);
    } else if net < Decimal::ZERO {
        ledger.book("acc-6200", -net, Decimal::ZERO);
    }
    let fx = b.post_ok("2026-06-30", body).await;
    assert_eq!(fx["total_debit"], fx["total_credit"], "{fx}");
    // After the as-of date: must not count.
    b.post_ok(
        "2027-01-01",
        vec![dr("acc-1000", "5000.00"), cr("acc-4000", "5000.00")],
    )
    .await;

    let bs = b.balance_sheet("2026-12-31").await;
    let tb = b.trial_balance("2026-12-31").await;

    // The trial balance matches the test's own books account by account.
    let served: BTreeMap<String, (Decimal, Decimal)> = tb["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["account_id"].as_str().unwrap().to_owned(),
                (dec_of(l, "debit"), dec_of(l, "credit")),
            )
        })
        .collect();
    let mine: BTreeMap<String, (Decimal, Decimal)> = ledger
        .by_account
        .iter()
        .filter(|(a, _)| *a != "acc-1000" && *a != "acc-6000")
        .map(|(a, v)| (a.clone(), *v))
        .collect();
    assert_eq!(
        served.keys().collect::<Vec<_>>(),
        ledger.by_account.keys().collect::<Vec<_>>(),
        "the accounts with postings: {tb}"
    );
    for (account, (d, c)) in &mine {
        assert_eq!(served.get(account), Some(&(*d, *c)), "{account}: {tb}");
    }
    // Cash and expenses also carry the reversed pair (999.99 each way).
    let gross = |a: &str| {
        let (d, c) = ledger.by_account[a];
        (d + dec("999.99"), c + dec("999.99"))
    };
    assert_eq!(served["acc-1000"], gross("acc-1000"), "{tb}");
    assert_eq!(served["acc-6000"], gross("acc-6000"), "{tb}");
    assert_eq!(tb["total_debit"], tb["total_credit"], "{tb}");

    let assets = ledger.total(&types, "asset");
    let liabilities = ledger.total(&types, "liability");
    let equity_accounts = ledger.total(&types, "equity");
    let earnings = ledger.total(&types, "income") - ledger.total(&types, "expense");
    assert_eq!(dec_of(&bs["assets"], "total"), assets, "{bs}");
    assert_eq!(dec_of(&bs["liabilities"], "total"), liabilities, "{bs}");
    assert_eq!(
        dec_of(&bs["equity"], "total"),
        equity_accounts + earnings,
        "{bs}"
    );
    assert_eq!(
        section_amount(&bs["equity"], "name", "Current year earnings").map(|s| dec(&s)),
        Some(earnings),
        "{bs}"
    );
    assert_eq!(
        assets,
        liabilities + equity_accounts + earnings,
        "the test's own books"
    );
    assert_eq!(
        dec_of(&bs["assets"], "total"),
        dec_of(&bs["liabilities"], "total") + dec_of(&bs["equity"], "total"),
        "assets = liabilities + equity: {bs}"
    );
    // And each section's lines add up to its total.
    for section in ["assets", "liabilities", "equity"] {
        let sum: Decimal = bs[section]["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| dec_of(l, "amount"))
            .sum();
        assert_eq!(sum, dec_of(&bs[section], "total"), "{section}: {bs}");
    }
    let pl = b
        .get_ok("reports/profit-and-loss?from=2026-01-01&to=2026-12-31")
        .await;
    assert_eq!(dec_of(&pl, "net_income"), earnings, "{pl}");
}
