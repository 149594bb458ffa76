//! Sales benchmark: the real `erpd` binary as a child process, driven over HTTP.
//!
//! `cargo bench --bench sales` measures, with a closed-loop load generator on keep-alive
//! connections (warm-up, then a measured window):
//!
//! 1. **create + confirm** a 3-line sales order (`POST sales-orders`, then
//!    `POST sales-orders/{id}/confirm`, which reserves the stock), all on one tenant:
//!    orders/s and the latency of the pair;
//! 2. the same with the tenant drawn uniformly per order from `ERPD_BENCH_TENANTS`
//!    [1000] tenants, provisioned (and timed) before the run;
//! 3. the **order-to-cash cycle** on one tenant: create, confirm, deliver, invoice, and a
//!    payment of the whole invoice; cycles/s and the latency of the cycle.
//!
//! Every tenant gets the same shop beforehand: a 20 % standard tax rule, a warehouse,
//! three goods products (10.00, 20.00, 30.00; ordered 1, 2 and 3 at a time, so an order
//! is 140.00 + 28.00 tax), a customer without credit limit, and one stock adjustment that
//! puts `ERPD_BENCH_STOCK` units of each product in at 4.00, 8.00 and 12.00, so no confirm
//! fails for lack of stock. After each run every tenant's books are checked against what
//! the server acknowledged: orders per status, on hand and reserved per product, trial
//! balance totals equal, receivables (account 1200, the AR aging and the open invoices)
//! and inventory (account 1300 and the stock valuation).
//!
//! Knobs (defaults in brackets): `ERPD_BENCH_SECS` [10] and `ERPD_BENCH_WARMUP_SECS` [2]
//! per run, `ERPD_BENCH_CONNS` [32] connections, `ERPD_BENCH_TENANTS` [1000] tenants of
//! run 2, `ERPD_BENCH_SETUP_CONCURRENCY` [4] parallel provisioning, `ERPD_BENCH_STOCK`
//! [1000000] units per product, `ERPD_BENCH_RUNS` [one,spread,cash] which runs,
//! `ERPD_BENCH_DIR` [the system temp dir] where the data dir is made. Smoke run:
//! `ERPD_BENCH_SECS=2 ERPD_BENCH_WARMUP_SECS=0.5 ERPD_BENCH_TENANTS=20`.
//!
//! Client and server share the machine's cores; the report shows how the CPU was split.
//! Results are printed and written to `target/bench-sales.md`.

mod common;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use common::*;

/// The date of every document (one fiscal year: one number sequence each).
const DATE: &str = "2026-06-15";
/// List prices, unit costs (cents) and ordered quantities of the three products.
const PRICES: [i64; 3] = [1_000, 2_000, 3_000];
const COSTS: [i64; 3] = [400, 800, 1_200];
const QTY: [i64; 3] = [1, 2, 3];
/// One order: net 140.00, tax 28.00 (20 %), total 168.00; its goods cost 56.00.
const ORDER_NET: i64 = 14_000;
const ORDER_TOTAL: i64 = 16_800;
const ORDER_COST: i64 = 5_600;
/// The steps of a cycle, in order; a create + confirm run does the first two.
const STEPS: [&str; 5] = ["create", "confirm", "deliver", "invoice", "pay"];

// ---------------------------------------------------------------------------------------
// Settings

struct Settings {
    secs: f64,
    warmup_secs: f64,
    conns: usize,
    tenants: usize,
    setup_concurrency: usize,
    stock: i64,
    runs: Vec<String>,
    base_dir: PathBuf,
}

impl Settings {
    fn from_env() -> Self {
        Self {
            secs: env_or("ERPD_BENCH_SECS", 10.0_f64).max(0.1),
            warmup_secs: env_or("ERPD_BENCH_WARMUP_SECS", 2.0_f64).max(0.0),
            conns: env_or("ERPD_BENCH_CONNS", 32).max(1),
            tenants: env_or("ERPD_BENCH_TENANTS", 1000).max(1),
            setup_concurrency: env_or("ERPD_BENCH_SETUP_CONCURRENCY", 4).max(1),
            stock: env_or("ERPD_BENCH_STOCK", 1_000_000_i64).max(1),
            runs: env_or("ERPD_BENCH_RUNS", "one,spread,cash".to_owned())
                .split(',')
                .map(|r| r.trim().to_owned())
                .filter(|r| !r.is_empty())
                .collect(),
            base_dir: std::env::var_os("ERPD_BENCH_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir),
        }
    }

    fn wants(&self, run: &str) -> bool {
        self.runs.iter().any(|r| r == run)
    }
}

// ---------------------------------------------------------------------------------------
// The shop every tenant gets

struct Shop {
    id: String,
    token: String,
    warehouse: String,
    customer: String,
    products: [String; 3],
    /// `POST sales-orders` for one order, built once.
    create: Vec<u8>,
}

fn cents(n: i64) -> String {
    let sign = if n < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", n.abs() / 100, n.abs() % 100)
}

/// "-84.00" → -8400 (two decimals, as the API formats EUR amounts).
fn parse_cents(v: &Value) -> Res<i64> {
    let s = v.as_str().ok_or_else(|| format!("{v} is not an amount"))?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (units, frac) = s.split_once('.').unwrap_or((s, "0"));
    let frac = format!("{frac:0<2}");
    let n = units.parse::<i64>()? * 100 + frac.get(..2).unwrap_or("0").parse::<i64>()?;
    Ok(if neg { -n } else { n })
}

fn id_of(v: &Value) -> Res<String> {
    Ok(v["id"].as_str().ok_or("no id in the answer")?.to_owned())
}

/// Tax rule, warehouse, products, customer and one stock adjustment, as the owner.
async fn setup_shop(addr: SocketAddr, id: &str, token: &str, stock: i64) -> Res<Shop> {
    let mut c = HttpConn::connect(addr).await?;
    let p = |rest: &str| format!("/v1/t/{id}/{rest}");
    c.call(
        &body_request(
            "PUT",
            &p("tax-rules/standard"),
            token,
            &json!({"rate": "0.2"}),
        ),
        200,
    )
    .await?;
    let warehouse = id_of(
        &c.call(
            &post_request(
                &p("warehouses"),
                token,
                &json!({"code": "MAIN", "name": "Main"}),
            ),
            201,
        )
        .await?,
    )?;
    let mut products: [String; 3] = Default::default();
    for (i, product) in products.iter_mut().enumerate() {
        let body = json!({"sku": format!("P-{i}"), "name": format!("Product {i}"),
                          "list_price": cents(PRICES[i])});
        *product = id_of(
            &c.call(&post_request(&p("products"), token, &body), 201)
                .await?,
        )?;
    }
    let customer = id_of(
        &c.call(
            &post_request(&p("customers"), token, &json!({"name": "Bench customer"})),
            201,
        )
        .await?,
    )?;
    let lines: Vec<Value> = (0..3)
        .map(|i| json!({"product_id": products[i], "quantity": stock.to_string(), "unit_cost": cents(COSTS[i])}))
        .collect();
    c.call(
        &post_request(
            &p("stock-adjustments"),
            token,
            &json!({"warehouse_id": warehouse, "reason": "opening", "date": "2026-01-01", "lines": lines}),
        ),
        201,
    )
    .await?;
    let order: Vec<Value> = (0..3)
        .map(|i| json!({"product_id": products[i], "quantity": QTY[i].to_string()}))
        .collect();
    let create = post_request(
        &p("sales-orders"),
        token,
        &json!({"customer_id": customer, "order_date": DATE, "lines": order}),
    );
    Ok(Shop {
        id: id.to_owned(),
        token: token.to_owned(),
        warehouse,
        customer,
        products,
        create,
    })
}

struct Provisioned {
    shops: Vec<Shop>,
    /// `POST /v1/tenants` for all of them.
    tenants_took: Duration,
    /// The shop of each (7 requests per tenant).
    shops_took: Duration,
}

async fn provision(
    addr: SocketAddr,
    platform: &str,
    ids: &[String],
    s: &Settings,
) -> Res<Provisioned> {
    let t0 = Instant::now();
    let tokens = create_tenants(addr, platform, ids, s.setup_concurrency).await?;
    let tenants_took = t0.elapsed();
    let t1 = Instant::now();
    let results: Vec<Res<Shop>> = futures::stream::iter(ids.iter().zip(&tokens))
        .map(|(id, token)| setup_shop(addr, id, token, s.stock))
        .buffered(s.setup_concurrency)
        .collect()
        .await;
    let shops = results.into_iter().collect::<Res<Vec<_>>>()?;
    Ok(Provisioned {
        shops,
        tenants_took,
        shops_took: t1.elapsed(),
    })
}

// ---------------------------------------------------------------------------------------
// One order's flow

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// create + confirm.
    Confirm,
    /// create, confirm, deliver, invoice, pay.
    Cash,
}

impl Flow {
    fn steps(self) -> usize {
        match self {
            Flow::Confirm => 2,
            Flow::Cash => 5,
        }
    }
}

/// Acknowledged steps (2xx) of one tenant, indexed like [`STEPS`].
type Acks = [usize; 5];

#[derive(Deserialize)]
struct Created {
    id: String,
    total: String,
}

fn post_raw(path: &str, token: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One request of a flow: `Err` on an I/O error (`true`: drop the connection) or on an
/// unexpected status.
async fn step(conn: &mut HttpConn, req: &[u8], want: u16) -> Result<(), (bool, String)> {
    match conn.request(req).await {
        Ok(s) if s == want => Ok(()),
        Ok(s) => Err((
            false,
            format!(
                "{}: status {s}: {}",
                String::from_utf8_lossy(req)
                    .lines()
                    .next()
                    .unwrap_or_default(),
                conn.body_text()
            ),
        )),
        Err(e) => Err((true, format!("io: {e}"))),
    }
}

fn created(conn: &HttpConn, what: &str) -> Result<Created, (bool, String)> {
    let c: Created = serde_json::from_slice(conn.body())
        .map_err(|e| (false, format!("{what}: unreadable answer: {e}")))?;
    if c.total != "168.00" {
        return Err((
            false,
            format!("{what}: total {} instead of 168.00", c.total),
        ));
    }
    Ok(c)
}

/// Run one flow on `shop`; counts each acknowledged step in `acks` and its latency in
/// `took`.
async fn run_flow(
    conn: &mut HttpConn,
    shop: &Shop,
    flow: Flow,
    acks: &mut Acks,
    took: &mut [Duration; 5],
) -> Result<(), (bool, String)> {
    let base = format!("/v1/t/{}", shop.id);
    let mut t = Instant::now();
    let mut lap = |i: usize, acks: &mut Acks| {
        acks[i] += 1;
        took[i] = t.elapsed();
        t = Instant::now();
    };
    step(conn, &shop.create, 201).await?;
    let order = created(conn, "create")?;
    lap(0, acks);
    let order_path = format!("{base}/sales-orders/{}", order.id);
    step(
        conn,
        &post_raw(&format!("{order_path}/confirm"), &shop.token, "{}"),
        200,
    )
    .await?;
    lap(1, acks);
    if flow == Flow::Confirm {
        return Ok(());
    }
    let dated = format!(r#"{{"date":"{DATE}"}}"#);
    step(
        conn,
        &post_raw(&format!("{order_path}/deliver"), &shop.token, &dated),
        200,
    )
    .await?;
    lap(2, acks);
    step(
        conn,
        &post_raw(&format!("{order_path}/invoice"), &shop.token, &dated),
        201,
    )
    .await?;
    let invoice = created(conn, "invoice")?;
    lap(3, acks);
    let pay = format!(
        r#"{{"invoice_id":"{}","amount":"168.00","date":"{DATE}"}}"#,
        invoice.id
    );
    step(
        conn,
        &post_raw(&format!("{base}/payments"), &shop.token, &pay),
        201,
    )
    .await?;
    lap(4, acks);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The closed loop

#[derive(Default)]
struct ConnOutcome {
    lat: Vec<Duration>,
    steps: [Vec<Duration>; 5],
    counted_ok: usize,
    counted_errors: usize,
    /// Every acknowledged step, warm-up and tail included, per shop.
    acks: Vec<Acks>,
    first_error: Option<String>,
}

struct LoadResult {
    label: String,
    flow: Flow,
    ok: usize,
    errors: usize,
    first_error: Option<String>,
    window: Duration,
    lat: Summary,
    steps: Vec<Summary>,
    cpu: CpuSplit,
    acks: Vec<Acks>,
}

impl LoadResult {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64().max(1e-9)
    }

    /// Server CPU per completed flow, in µs.
    fn server_us(&self) -> f64 {
        self.cpu.server * self.window.as_secs_f64() * 1e6 / self.ok.max(1) as f64
    }
}

/// `conns` connections, each starting its next flow as soon as the previous one ended,
/// for `warmup + secs`; only flows started and finished in the last `secs` are counted.
/// The shop is drawn uniformly per flow.
async fn load(
    s: &Settings,
    server: &Server,
    label: &str,
    flow: Flow,
    shops: Arc<Vec<Shop>>,
) -> Res<LoadResult> {
    let addr = server.addr;
    let started = Instant::now();
    let measure_from = started + Duration::from_secs_f64(s.warmup_secs);
    let end = measure_from + Duration::from_secs_f64(s.secs);
    let flow_timeout = REQUEST_TIMEOUT * flow.steps() as u32;
    let mut tasks = Vec::with_capacity(s.conns);
    for c in 0..s.conns {
        let shops = shops.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = ConnOutcome {
                lat: Vec::with_capacity(16_384),
                acks: vec![[0; 5]; shops.len()],
                ..Default::default()
            };
            let mut rng = Rng(0x5A1E_0000 + c as u64);
            let mut conn: Option<HttpConn> = None;
            while Instant::now() < end {
                let k = rng.below(shops.len());
                let mut took = [Duration::ZERO; 5];
                let t0 = Instant::now();
                let result = tokio::time::timeout(flow_timeout, async {
                    if conn.is_none() {
                        conn = Some(
                            HttpConn::connect(addr)
                                .await
                                .map_err(|e| (true, format!("connect: {e}")))?,
                        );
                    }
                    match conn.as_mut() {
                        Some(c) => run_flow(c, &shops[k], flow, &mut out.acks[k], &mut took).await,
                        None => Err((true, "not connected".to_owned())),
                    }
                })
                .await
                .unwrap_or_else(|_| Err((true, "timed out".to_owned())));
                let elapsed = t0.elapsed();
                let counted = t0 >= measure_from && Instant::now() <= end;
                if let Err((reset, e)) = &result {
                    if *reset {
                        conn = None;
                    }
                    out.first_error.get_or_insert_with(|| e.clone());
                }
                if counted {
                    if result.is_ok() {
                        out.counted_ok += 1;
                        out.lat.push(elapsed);
                        for (v, d) in out.steps.iter_mut().zip(took).take(flow.steps()) {
                            v.push(d);
                        }
                    } else {
                        out.counted_errors += 1;
                    }
                }
            }
            out
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu0 = CpuMark::now(server.pid);
    let w0 = Instant::now();
    tokio::time::sleep_until(end.into()).await;
    let cpu1 = CpuMark::now(server.pid);
    let window = w0.elapsed();
    let mut lat = Vec::new();
    let mut steps: [Vec<Duration>; 5] = Default::default();
    let (mut ok, mut errors, mut first_error) = (0, 0, None);
    let mut acks = vec![[0; 5]; shops.len()];
    for t in tasks {
        let o = t.await?;
        lat.extend(o.lat);
        for (all, mine) in steps.iter_mut().zip(o.steps) {
            all.extend(mine);
        }
        ok += o.counted_ok;
        errors += o.counted_errors;
        first_error = first_error.or(o.first_error);
        for (a, mine) in acks.iter_mut().zip(o.acks) {
            for (x, y) in a.iter_mut().zip(mine) {
                *x += y;
            }
        }
    }
    Ok(LoadResult {
        label: label.to_owned(),
        flow,
        ok,
        errors,
        first_error,
        window: end - measure_from,
        lat: summarize(lat),
        steps: steps
            .into_iter()
            .take(flow.steps())
            .map(summarize)
            .collect(),
        cpu: cpu_split(cpu0, cpu1, window),
        acks,
    })
}

// ---------------------------------------------------------------------------------------
// The books after a run

/// Every page of a list; `f` sees each item.
async fn each_item(
    c: &mut HttpConn,
    shop: &Shop,
    collection: &str,
    mut f: impl FnMut(&Value),
) -> Res<()> {
    let mut cursor = String::new();
    loop {
        let path = format!("/v1/t/{}/{collection}?limit=500{cursor}", shop.id);
        let page = c.call(&get_request(&path, &shop.token), 200).await?;
        for item in page["items"].as_array().ok_or("no items")? {
            f(item);
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return Ok(()),
        }
    }
}

/// What did not add up in a tenant's books.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn expect(&mut self, what: &str, got: i64, want: i64) {
        if got != want {
            self.0.push(format!("{what}: {got}, expected {want}"));
        }
    }
}

/// The tenant's data must hold exactly the acknowledged steps (and nothing half-done).
async fn check_shop(addr: SocketAddr, shop: &Shop, acks: Acks, stock: i64) -> Res<()> {
    let [created, confirmed, delivered, invoiced, paid] = acks.map(|n| n as i64);
    let mut c = HttpConn::connect(addr).await?;
    let mut problems = Problems::default();

    // Orders per status.
    let mut by_status = std::collections::BTreeMap::<String, i64>::new();
    each_item(&mut c, shop, "sales-orders", |o| {
        *by_status
            .entry(o["status"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    })
    .await?;
    let n = |s: &str| by_status.get(s).copied().unwrap_or(0);
    problems.expect("orders", by_status.values().sum(), created);
    problems.expect("draft orders", n("draft"), created - confirmed);
    problems.expect("confirmed orders", n("confirmed"), confirmed - delivered);
    problems.expect("delivered orders", n("delivered"), delivered - invoiced);
    problems.expect("invoiced orders", n("invoiced"), invoiced);

    // Stock: on hand and reserved per product.
    let path = format!("/v1/t/{}/stock?warehouse_id={}", shop.id, shop.warehouse);
    let levels = c.call(&get_request(&path, &shop.token), 200).await?;
    for (i, product) in shop.products.iter().enumerate() {
        let level = levels["items"]
            .as_array()
            .and_then(|a| a.iter().find(|l| l["product_id"] == product.as_str()))
            .ok_or_else(|| format!("no stock level for product {i}"))?;
        let qty = |k: &str| level[k].as_str().and_then(|v| v.parse::<i64>().ok());
        problems.expect(
            &format!("on hand of product {i}"),
            qty("on_hand").unwrap_or(-1),
            stock - delivered * QTY[i],
        );
        problems.expect(
            &format!("reserved of product {i}"),
            qty("reserved").unwrap_or(-1),
            (confirmed - delivered) * QTY[i],
        );
    }

    // Invoices: open ones and paid ones, and what is still due.
    let (mut open, mut settled, mut due) = (0i64, 0i64, 0i64);
    let mut bad_amount = None;
    each_item(&mut c, shop, "invoices", |inv| {
        match inv["status"].as_str() {
            Some("posted") => open += 1,
            Some("paid") => settled += 1,
            _ => {}
        }
        match parse_cents(&inv["amount_due"]) {
            Ok(v) => due += v,
            Err(e) => bad_amount = Some(e.to_string()),
        }
    })
    .await?;
    if let Some(e) = bad_amount {
        problems.0.push(format!("invoice amount_due: {e}"));
    }
    let receivable = (invoiced - paid) * ORDER_TOTAL;
    problems.expect("open invoices", open, invoiced - paid);
    problems.expect("paid invoices", settled, paid);
    problems.expect("sum of amount_due", due, receivable);

    // The ledger.
    let tb_path = format!("/v1/t/{}/reports/trial-balance?as_of=2026-12-31", shop.id);
    let tb = c.call(&get_request(&tb_path, &shop.token), 200).await?;
    let (dr, cr) = (
        parse_cents(&tb["total_debit"])?,
        parse_cents(&tb["total_credit"])?,
    );
    problems.expect("trial balance credit total (= debit total)", cr, dr);
    let balance = |code: &str| -> Res<i64> {
        match tb["lines"]
            .as_array()
            .and_then(|ls| ls.iter().find(|l| l["code"] == code))
        {
            Some(l) => parse_cents(&l["balance"]),
            None => Ok(0),
        }
    };
    let stock_value: i64 = (0..3).map(|i| stock * COSTS[i]).sum::<i64>() - delivered * ORDER_COST;
    problems.expect("receivables (1200)", balance("1200")?, receivable);
    problems.expect("inventory (1300)", balance("1300")?, stock_value);
    problems.expect("revenue (4000)", balance("4000")?, -invoiced * ORDER_NET);
    problems.expect(
        "cost of goods sold (5000)",
        balance("5000")?,
        delivered * ORDER_COST,
    );
    let aging_path = format!("/v1/t/{}/reports/ar-aging?as_of=2026-12-31", shop.id);
    let aging = c.call(&get_request(&aging_path, &shop.token), 200).await?;
    problems.expect(
        "AR aging total",
        parse_cents(&aging["totals"]["total"]).unwrap_or(-1),
        receivable,
    );
    let val_path = format!("/v1/t/{}/reports/stock-valuation?as_of=2026-12-31", shop.id);
    let valuation = c.call(&get_request(&val_path, &shop.token), 200).await?;
    problems.expect(
        "stock valuation total",
        parse_cents(&valuation["total"]).unwrap_or(-1),
        stock_value,
    );
    if problems.0.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "tenant {} (acknowledged {acks:?}; customer {}): {}",
            shop.id,
            shop.customer,
            problems.0.join("; ")
        )
        .into())
    }
}

/// Check every shop of a run, a few at a time; returns how many orders were checked.
async fn check_run(addr: SocketAddr, shops: &[Shop], r: &LoadResult, stock: i64) -> Res<usize> {
    let results: Vec<Res<()>> = futures::stream::iter(shops.iter().zip(&r.acks))
        .map(|(shop, acks)| check_shop(addr, shop, *acks, stock))
        .buffer_unordered(4)
        .collect()
        .await;
    results.into_iter().collect::<Res<Vec<()>>>()?;
    Ok(r.acks.iter().map(|a| a[0]).sum())
}

// ---------------------------------------------------------------------------------------
// Report

fn load_rows(r: &LoadResult, target: Option<f64>) -> Vec<Row> {
    let (what, unit) = match r.flow {
        Flow::Confirm => ("create + confirm", "orders/s"),
        Flow::Cash => ("order to cash", "cycles/s"),
    };
    let name = |m: &str| format!("{what}, {}: {m}", r.label);
    let target_text = target.map_or("-".to_owned(), |t| format!("≥ {t:.0} {unit}"));
    let mut rows = vec![
        row(
            name(unit),
            format!("{:.0}", r.rate()),
            &target_text,
            target.map(|t| r.rate() >= t && r.errors == 0),
        ),
        row(
            name("p50 / p99 / max"),
            format!(
                "{:.2} / {:.2} / {:.2} ms",
                ms(r.lat.p50),
                ms(r.lat.p99),
                ms(r.lat.max)
            ),
            "-",
            None,
        ),
    ];
    let steps: Vec<String> = r
        .steps
        .iter()
        .zip(STEPS)
        .map(|(s, n)| format!("{n} {:.2} / {:.2}", ms(s.p50), ms(s.p99)))
        .collect();
    rows.push(row(
        name("per step p50 / p99 (ms)"),
        steps.join(", "),
        "-",
        None,
    ));
    rows.push(row(
        name("errors"),
        match &r.first_error {
            Some(e) => format!(
                "{} (first: {})",
                r.errors,
                e.chars().take(160).collect::<String>().replace('|', "/")
            ),
            None => r.errors.to_string(),
        },
        "0",
        Some(r.errors == 0),
    ));
    rows.push(row(
        name("CPU server / client / irq / others"),
        format!(
            "{:.2} / {:.2} / {:.2} / {:.2} of {:.2} cores",
            r.cpu.server,
            r.cpu.client,
            r.cpu.irq,
            r.cpu.others + r.cpu.steal,
            r.cpu.cores
        ),
        "-",
        None,
    ));
    rows.push(row(
        name("server CPU per flow / per request"),
        format!(
            "{:.0} µs / {:.0} µs",
            r.server_us(),
            r.server_us() / r.flow.steps() as f64
        ),
        "-",
        None,
    ));
    rows
}

// ---------------------------------------------------------------------------------------

fn main() -> Res<()> {
    let s = Settings::from_env();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(s))
}

async fn run(s: Settings) -> Res<()> {
    let load_start = loadavg();
    let busy = busy_before().await;
    let dir = tempfile::Builder::new()
        .prefix("erpd-bench-sales-")
        .tempdir_in(&s.base_dir)?;
    let data = dir.path().join("data");
    let log = dir.path().join("erpd.log");
    eprintln!(
        "erpd sales bench: {} connections, {} s (+{} s warm-up) per run, {} tenants, runs {:?}, data dir {}",
        s.conns,
        s.secs,
        s.warmup_secs,
        s.tenants,
        s.runs,
        data.display()
    );
    let platform = platform_token(&data)?;
    let srv = Server::start(&data, &log)?;
    eprintln!("erpd pid {} on {}", srv.pid, srv.addr);

    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut checked = Vec::new();
    let two = provision(srv.addr, &platform, &["one".into(), "cash".into()], &s).await?;
    let mut shops = two.shops.into_iter();
    let (one, cash) = (
        Arc::new(vec![shops.next().ok_or("no shop")?]),
        Arc::new(vec![shops.next().ok_or("no shop")?]),
    );

    if s.wants("one") {
        eprintln!("[one] create + confirm on one tenant…");
        let r = load(&s, &srv, "one tenant", Flow::Confirm, one.clone()).await?;
        let n = check_run(srv.addr, &one, &r, s.stock).await?;
        checked.push(format!("one tenant: {n} orders"));
        rows.extend(load_rows(&r, Some(2000.0)));
    }
    if s.wants("spread") {
        eprintln!("[spread] provisioning {} tenants…", s.tenants);
        let ids: Vec<String> = (0..s.tenants).map(|i| format!("t{i:04}")).collect();
        let p = provision(srv.addr, &platform, &ids, &s).await?;
        notes.push(format!(
            "provisioning the {} tenants of run 2 at concurrency {}: {:.1} s of POST /v1/tenants \
             ({:.1} ms each on average) + {:.1} s for their shops (7 requests each)",
            s.tenants,
            s.setup_concurrency,
            p.tenants_took.as_secs_f64(),
            ms(p.tenants_took) / s.tenants as f64,
            p.shops_took.as_secs_f64()
        ));
        let spread = Arc::new(p.shops);
        eprintln!("[spread] create + confirm across {} tenants…", s.tenants);
        let label = format!("{} tenants", s.tenants);
        let r = load(&s, &srv, &label, Flow::Confirm, spread.clone()).await?;
        let n = check_run(srv.addr, &spread, &r, s.stock).await?;
        checked.push(format!("{label}: {n} orders"));
        rows.extend(load_rows(&r, None));
    }
    if s.wants("cash") {
        eprintln!("[cash] order to cash on one tenant…");
        let r = load(&s, &srv, "one tenant", Flow::Cash, cash.clone()).await?;
        let n = check_run(srv.addr, &cash, &r, s.stock).await?;
        checked.push(format!("order to cash: {n} orders"));
        rows.extend(load_rows(&r, None));
    }
    drop(srv);
    let load_end = loadavg();

    let mut md = String::new();
    for (k, v) in machine() {
        let _ = writeln!(md, "- {k}: {v}");
    }
    let _ = writeln!(
        md,
        "- load average before / after: {load_start} / {load_end}"
    );
    let _ = writeln!(md, "- {busy}");
    let _ = writeln!(
        md,
        "- settings: {} connections, {} s measured after {} s warm-up per run, {} tenants in run 2, {} units of stock per product",
        s.conns, s.secs, s.warmup_secs, s.tenants, s.stock
    );
    for n in &notes {
        let _ = writeln!(md, "- {n}");
    }
    let _ = writeln!(
        md,
        "- books checked after each run (orders per status, on hand and reserved, trial balance totals, \
         receivables = AR aging = open invoices, inventory = stock valuation): {}",
        checked.join(", ")
    );
    md.push('\n');
    md.push_str(&markdown_table(&rows));
    publish("bench-sales.md", &md);
    Ok(())
}
