//! Access-layer benchmark (issue 3): reads through the access-aware query compiler over
//! HTTP, against the very same SQL run in-process with rusqlite, and audited, idempotent
//! creates.
//!
//! `cargo bench --bench access` starts the real `erpd` binary on a temp data dir, creates a
//! tenant, a `sales` user (who may not read `credit_limit` or `payment_terms_days`, so the
//! compiler drops those columns) and `ERPD_BENCH_CUSTOMERS` [2000] customers through
//! `POST customers` with an `Idempotency-Key` each (audit + idempotency in the transaction),
//! then measures for `ERPD_BENCH_SECS` [8] seconds each, with `ERPD_BENCH_CONNS` [16]
//! concurrent keep-alive connections from a single-threaded client in this process:
//!
//! - `GET customers/{id}` as the sales user, random ids;
//! - `GET customers?limit=50` as the sales user, random cursors over the first pages;
//! - the compiler's SQL for both, on one in-process rusqlite connection to the same file.
//!
//! Figures go to stdout and `target/bench-access.md`.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use erpd::access::permission::{Permissions, built_in};
use erpd::access::query::{self, ListSpec, Viewer};
use erpd::access::values::Ctx;
use erpd::erp::parties::CUSTOMERS;
use serde_json::{Value, json};

const ERPD: &str = env!("CARGO_BIN_EXE_erpd");

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &std::path::Path) -> (Server, String) {
    let mut child = Command::new(ERPD)
        .args([
            "--data-dir",
            dir.to_str().unwrap_or("."),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting erpd");
    let out = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .expect("listening line");
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_owned();
    (Server(child), addr)
}

fn platform_token(dir: &std::path::Path) -> String {
    let out = Command::new(ERPD)
        .args([
            "--data-dir",
            dir.to_str().unwrap_or("."),
            "token",
            "create",
            "--platform",
        ])
        .output()
        .expect("token create");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

struct Stats {
    rate: f64,
    p50: f64,
    p99: f64,
    errors: usize,
}

fn stats(mut lat: Vec<Duration>, wall: Duration, errors: usize) -> Stats {
    lat.sort();
    let pick = |q: f64| {
        lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    Stats {
        rate: lat.len() as f64 / wall.as_secs_f64(),
        p50: pick(0.5),
        p99: pick(0.99),
        errors,
    }
}

/// Closed-loop load: `conns` tasks, each sending requests made by `make` until `secs`.
async fn load(
    client: &reqwest::Client,
    conns: usize,
    secs: f64,
    make: impl Fn(&reqwest::Client, u64) -> reqwest::RequestBuilder + Clone + 'static,
) -> Stats {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for c in 0..conns {
        let (client, make) = (client.clone(), make.clone());
        tasks.push(tokio::task::spawn_local(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            let mut n = c as u64 * 7919;
            while Instant::now() < deadline {
                n = n
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let t = Instant::now();
                match make(&client, n >> 33).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((l, e)) = t.await {
            all.extend(l);
            errors += e;
        }
    }
    stats(all, start.elapsed(), errors)
}

fn main() {
    let customers: usize = env_or("ERPD_BENCH_CUSTOMERS", 2000);
    let secs: f64 = env_or("ERPD_BENCH_SECS", 8.0);
    let conns: usize = env_or("ERPD_BENCH_CONNS", 16);
    let dir = tempfile::tempdir().expect("temp dir");
    let pt = platform_token(dir.path());
    let (server, addr) = start(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    let mut report = String::new();
    local.block_on(&rt, async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(conns * 2).build().expect("client");
        let r: Value = client
            .post(format!("{addr}/v1/tenants"))
            .bearer_auth(&pt)
            .json(&json!({"id": "bench", "name": "Bench", "base_currency": "EUR"}))
            .send().await.expect("create tenant").json().await.expect("json");
        let owner = r["owner_token"].as_str().expect("owner token").to_owned();
        let base = format!("{addr}/v1/t/bench");
        client.post(format!("{base}/users")).bearer_auth(&owner)
            .json(&json!({"email": "sam@bench.example", "name": "Sam", "password": "sales person 1", "roles": ["sales"]}))
            .send().await.expect("user");
        let login: Value = client.post(format!("{base}/auth/login"))
            .json(&json!({"email": "sam@bench.example", "password": "sales person 1"}))
            .send().await.expect("login").json().await.expect("json");
        let sales = login["token"].as_str().expect("sales token").to_owned();

        // Audited, idempotent creates.
        let started = Instant::now();
        let next = std::rc::Rc::new(std::cell::Cell::new(0usize));
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let (client, base, owner, next) = (client.clone(), base.clone(), owner.clone(), next.clone());
            tasks.push(tokio::task::spawn_local(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.get();
                    if i >= customers {
                        break;
                    }
                    next.set(i + 1);
                    let t = Instant::now();
                    let r = client.post(format!("{base}/customers")).bearer_auth(&owner)
                        .header("Idempotency-Key", format!("c-{i}"))
                        .json(&json!({"name": format!("Customer {i:05}"), "email": format!("c{i}@x.example"),
                                      "credit_limit": "1000.00", "payment_terms_days": 30}))
                        .send().await;
                    if let Ok(r) = r && r.status() == 201 {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed());
                    }
                }
                lat
            }));
        }
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await.unwrap_or_default());
        }
        let create = stats(lat, started.elapsed(), 0);

        let page: Value = client.get(format!("{base}/customers?limit=500")).bearer_auth(&sales)
            .send().await.expect("list").json().await.expect("json");
        let ids: Vec<String> = page["items"].as_array().expect("items").iter()
            .filter_map(|c| c["id"].as_str().map(str::to_owned)).collect();
        assert!(page["items"][0].get("credit_limit").is_none(), "sales must not see credit_limit");

        let (b, s, i2) = (base.clone(), sales.clone(), ids.clone());
        let get_one = load(&client, conns, secs, move |c, n| {
            c.get(format!("{b}/customers/{}", i2[n as usize % i2.len()])).bearer_auth(&s)
        }).await;
        let (b, s) = (base.clone(), sales.clone());
        let get_list = load(&client, conns, secs, move |c, _| {
            c.get(format!("{b}/customers?limit=50")).bearer_auth(&s)
        }).await;

        // The same SQL, in-process, on the tenant's file.
        let conn = rusqlite::Connection::open_with_flags(
            dir.path().join("tenants/bench.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        ).expect("open tenant file");
        let mut pconn = rusqlite::Connection::open(dir.path().join("platform.db")).expect("platform");
        erpd::schema::migrate_platform(&mut pconn).expect("platform schema");
        let reference = erpd::reference::Reference::load(&pconn).expect("reference");
        let perms = Permissions::from_grants(built_in("sales").expect("sales").iter().copied());
        let (roles, settings) = (vec!["sales".to_string()], Default::default());
        let viewer = Viewer { perms: &perms, user_id: "u", roles: &roles, settings: &settings };
        let ctx = Ctx { reference: &reference, base_currency: "EUR" };
        let raw = |f: &dyn Fn(u64)| {
            let start = Instant::now();
            let deadline = start + Duration::from_secs_f64(secs);
            let mut lat = Vec::new();
            let mut n = 1u64;
            while Instant::now() < deadline {
                n = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let t = Instant::now();
                f(n >> 33);
                lat.push(t.elapsed());
            }
            stats(lat, start.elapsed(), 0)
        };
        let raw_one = raw(&|n| {
            let c = query::by_id(&CUSTOMERS, &viewer, &ids[n as usize % ids.len()], false).expect("sql");
            assert!(query::fetch_one(&conn, &c, &ctx).expect("row").is_some());
        });
        let raw_list = raw(&|_| {
            let spec = ListSpec { limit: 50, ..Default::default() };
            let c = query::list(&CUSTOMERS, &viewer, &spec, &ctx).expect("sql");
            assert_eq!(query::fetch_page(&conn, &c, 50, &ctx).expect("page").0.len(), 50);
        });

        let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpu.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).unwrap_or("?").trim().to_owned();
        let _ = writeln!(report, "machine: {} cpus, {model}; {customers} customers, {conns} connections, {secs} s per run; client and server share the CPUs", std::thread::available_parallelism().map_or(0, |n| n.get()));
        let _ = writeln!(report, "\n| measurement | rate | p50 ms | p99 ms | note |\n|---|---:|---:|---:|---|");
        let row = |r: &mut String, name: &str, s: &Stats, note: String| {
            let _ = writeln!(r, "| {name} | {:.0}/s | {:.3} | {:.3} | {note} |", s.rate, s.p50, s.p99);
        };
        row(&mut report, "POST customers (audit + Idempotency-Key), owner", &create, "target >= 5000/s".into());
        row(&mut report, "GET customers/{id}, sales (fields restricted), HTTP", &get_one, format!("{} errors", get_one.errors));
        row(&mut report, "same query, in-process rusqlite", &raw_one, String::new());
        row(&mut report, "GET customers?limit=50, sales, HTTP", &get_list, format!("{} errors", get_list.errors));
        row(&mut report, "same query, in-process rusqlite", &raw_list, String::new());
        let _ = writeln!(report, "\nratio HTTP / in-process: get {:.1}%, list {:.1}% (target >= 25%)",
            100.0 * get_one.rate / raw_one.rate, 100.0 * get_list.rate / raw_list.rate);
    });
    drop(server);
    println!("{report}");
    let _ = std::fs::create_dir_all("target");
    let _ = std::fs::write("target/bench-access.md", &report);
}
