//! Accounting benchmark: the real `erpd` binary as a child process, driven over HTTP.
//!
//! `cargo bench --bench accounting` measures
//!
//! 1. posting a 4-line journal entry (`POST /v1/t/{id}/journal-entries` with
//!    `"post": true`, answered 201 with its gapless number) with a closed-loop load
//!    generator on keep-alive connections: all on one tenant, then spread over many
//!    tenants; entries/s and latency percentiles, then a check that the books add up (the
//!    trial balance holds exactly every acknowledged entry and the numbers have no gap);
//! 2. `GET reports/trial-balance` over a tenant holding 1,000,000 posted journal lines.
//!    Those lines are written straight into the stopped server's tenant file with
//!    rusqlite (entries and lines consistent with the schema, one transaction), then the
//!    server is started again and the report is timed; its totals are checked against the
//!    sums written.
//!
//! Scale it down for a smoke run with environment variables (defaults in brackets):
//! `ERPD_BENCH_SECS` [10] and `ERPD_BENCH_WARMUP_SECS` [2] per load run,
//! `ERPD_BENCH_CONNS` [32] keep-alive connections, `ERPD_BENCH_TENANTS` [100] tenants of
//! the spread run, `ERPD_BENCH_LINES` [1000000] journal lines of the report tenant (4 per
//! entry), `ERPD_BENCH_TB_RUNS` [10] timed trial balances, `ERPD_BENCH_DIR` [the system
//! temp dir] where the data dir is made.
//!
//! The load generator is a minimal HTTP/1.1 client on a single-threaded tokio runtime in
//! this process, so client and server share the machine's cores; the report shows how the
//! CPU time was split. Results are printed and written to `target/bench-accounting.md`.

mod common;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::*;

/// The date of every benchmark entry (one fiscal year: one number sequence).
const DATE: &str = "2026-06-15";
/// Base amount of one benchmark entry's debits (= its credits), in cents.
const ENTRY_CENTS: i64 = 17_900;

// ---------------------------------------------------------------------------------------
// Settings

struct Settings {
    secs: f64,
    warmup_secs: f64,
    conns: usize,
    tenants: usize,
    lines: usize,
    tb_runs: usize,
    base_dir: PathBuf,
}

impl Settings {
    fn from_env() -> Self {
        Self {
            secs: env_or("ERPD_BENCH_SECS", 10.0_f64).max(0.1),
            warmup_secs: env_or("ERPD_BENCH_WARMUP_SECS", 2.0_f64).max(0.0),
            conns: env_or("ERPD_BENCH_CONNS", 32).max(1),
            tenants: env_or("ERPD_BENCH_TENANTS", 100).max(1),
            lines: env_or("ERPD_BENCH_LINES", 1_000_000).max(4),
            tb_runs: env_or("ERPD_BENCH_TB_RUNS", 10).max(1),
            base_dir: std::env::var_os("ERPD_BENCH_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir),
        }
    }
}

/// The 4-line entry every benchmark request posts: 179.00 each side.
fn entry_body() -> Value {
    json!({ "date": DATE, "memo": "bench", "post": true, "lines": [
        { "account_id": "acc-1200", "debit": "119.00" },
        { "account_id": "acc-5000", "debit": "60.00" },
        { "account_id": "acc-4000", "credit": "160.00" },
        { "account_id": "acc-2100", "credit": "19.00" },
    ]})
}

// ---------------------------------------------------------------------------------------
// Phase 1: posting load

#[derive(Default)]
struct ConnOutcome {
    lat: Vec<Duration>,
    counted_ok: usize,
    counted_errors: usize,
    /// Every 201, warm-up and tail included, per tenant: what the books must hold.
    posted: Vec<usize>,
    first_error: Option<String>,
}

struct LoadResult {
    label: String,
    ok: usize,
    errors: usize,
    first_error: Option<String>,
    window: Duration,
    lat: Summary,
    cpu: CpuSplit,
    posted: Vec<usize>,
}

impl LoadResult {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64().max(1e-9)
    }
}

/// `conns` connections, each posting its next entry as soon as the previous answer is
/// read, for `warmup + secs`; only the last `secs` are counted. Tenant `i` of `requests`
/// is drawn uniformly per request.
async fn post_load(
    s: &Settings,
    server: &Server,
    label: &str,
    requests: Arc<Vec<Vec<u8>>>,
) -> Res<LoadResult> {
    let addr = server.addr;
    let started = Instant::now();
    let measure_from = started + Duration::from_secs_f64(s.warmup_secs);
    let end = measure_from + Duration::from_secs_f64(s.secs);
    let mut tasks = Vec::with_capacity(s.conns);
    for c in 0..s.conns {
        let requests = requests.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = ConnOutcome {
                lat: Vec::with_capacity(65_536),
                posted: vec![0; requests.len()],
                ..Default::default()
            };
            let mut rng = Rng(0xACC0_0000 + c as u64);
            let mut conn: Option<HttpConn> = None;
            while Instant::now() < end {
                let t = (rng.next_u64() % requests.len() as u64) as usize;
                let t0 = Instant::now();
                let result = tokio::time::timeout(REQUEST_TIMEOUT, async {
                    if conn.is_none() {
                        conn = Some(HttpConn::connect(addr).await?);
                    }
                    match conn.as_mut() {
                        Some(c) => c.request(&requests[t]).await,
                        None => Err(std::io::ErrorKind::NotConnected.into()),
                    }
                })
                .await;
                let took = t0.elapsed();
                let counted = t0 >= measure_from && Instant::now() <= end;
                let failure = match result {
                    Ok(Ok(201)) => {
                        out.posted[t] += 1;
                        None
                    }
                    Ok(Ok(status)) => Some(format!(
                        "status {status}: {}",
                        conn.as_ref()
                            .map(|c| String::from_utf8_lossy(c.body()).into_owned())
                            .unwrap_or_default()
                    )),
                    Ok(Err(e)) => {
                        conn = None;
                        Some(format!("io: {e}"))
                    }
                    Err(_) => {
                        conn = None;
                        Some("timed out".into())
                    }
                };
                if let Some(f) = &failure {
                    out.first_error.get_or_insert_with(|| f.clone());
                }
                if counted {
                    match failure {
                        None => {
                            out.counted_ok += 1;
                            out.lat.push(took);
                        }
                        Some(_) => out.counted_errors += 1,
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
    let (mut ok, mut errors, mut first_error) = (0, 0, None);
    let mut posted = vec![0; requests.len()];
    for t in tasks {
        let o = t.await?;
        lat.extend(o.lat);
        ok += o.counted_ok;
        errors += o.counted_errors;
        first_error = first_error.or(o.first_error);
        for (p, n) in posted.iter_mut().zip(o.posted) {
            *p += n;
        }
    }
    Ok(LoadResult {
        label: label.to_owned(),
        ok,
        errors,
        first_error,
        window: end - measure_from,
        lat: summarize(lat),
        cpu: cpu_split(cpu0, cpu1, window),
        posted,
    })
}

/// The books of one tenant must hold exactly the acknowledged entries: trial-balance
/// totals of `posted × 179.00`, and the list of posted entries numbered 1..=posted.
async fn check_books(addr: SocketAddr, tenant: &str, token: &str, posted: usize) -> Res<()> {
    let (_, tb) = get_json(
        addr,
        &format!("/v1/t/{tenant}/reports/trial-balance?as_of=2026-12-31"),
        token,
    )
    .await?;
    let want = cents(posted as i64 * ENTRY_CENTS);
    if tb["total_debit"] != want.as_str() || tb["total_credit"] != want.as_str() {
        return Err(format!(
            "{tenant}: {posted} entries acknowledged, expected totals {want}, trial balance says {} / {}",
            tb["total_debit"], tb["total_credit"]
        )
        .into());
    }
    // The highest number equals the count: with the unique (year, seq) index, no gap.
    let mut cursor = String::new();
    let mut max_seq = 0usize;
    let mut seen = 0usize;
    for _ in 0..10_000 {
        let path = format!("/v1/t/{tenant}/journal-entries?limit=500&status=posted{cursor}");
        let (_, page) = get_json(addr, &path, token).await?;
        for e in page["items"].as_array().ok_or("no items")? {
            seen += 1;
            let seq: usize = e["number"]
                .as_str()
                .and_then(|n| n.rsplit('-').next())
                .and_then(|n| n.parse().ok())
                .ok_or("entry without a number")?;
            max_seq = max_seq.max(seq);
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    if seen != posted || max_seq != posted {
        return Err(format!(
            "{tenant}: {posted} acknowledged, {seen} posted entries listed, highest number {max_seq}"
        )
        .into());
    }
    Ok(())
}

fn cents(n: i64) -> String {
    format!("{}.{:02}", n / 100, n % 100)
}

// ---------------------------------------------------------------------------------------
// Phase 2: a million lines, written straight into the stopped server's tenant file

struct Written {
    entries: usize,
    lines: usize,
    total_cents: i64,
    took: Duration,
    file_mib: f64,
}

/// Write `lines` posted lines (4 per entry, dated across 2025 and 2026, over the seeded
/// accounts) into the empty ledger of `file`, in one transaction.
fn write_lines(file: &Path, lines: usize) -> Res<Written> {
    const ACCOUNTS: [&str; 17] = [
        "acc-1000", "acc-1100", "acc-1200", "acc-1300", "acc-1400", "acc-2000", "acc-2100",
        "acc-2200", "acc-3000", "acc-3100", "acc-4000", "acc-4100", "acc-5000", "acc-6000",
        "acc-6100", "acc-6200", "acc-6300",
    ];
    let started = Instant::now();
    let mut conn = rusqlite::Connection::open(file)?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;")?;
    let existing: i64 = conn.query_row("SELECT count(*) FROM journal_entries", [], |r| r.get(0))?;
    if existing != 0 {
        return Err(format!("the report tenant already has {existing} entries").into());
    }
    let entries = lines / 4;
    let mut rng = Rng(0x1ED6E);
    let mut seq_by_year = [0i64; 2];
    let mut total = 0i64;
    let tx = conn.transaction()?;
    {
        let mut entry = tx.prepare(
            "INSERT INTO journal_entries (id, version, created_at, updated_at, owner_id, date, memo, status, \
             number, fiscal_year, seq, source, posted_at) \
             VALUES (?1, 2, ?2, ?2, NULL, ?3, 'bench', 'posted', ?4, ?5, ?6, 'manual', ?2)",
        )?;
        let mut line = tx.prepare(
            "INSERT INTO journal_lines (entry_id, line_no, account_id, debit, credit, currency, amount, rate, memo, date, posted) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'EUR', ?6, 1000000000, NULL, ?7, 1)",
        )?;
        for i in 0..entries {
            let year = 2025 + (i % 2) as i64;
            let day = (rng.next_u64() % 365) as i64;
            let date = date_of(year, day);
            seq_by_year[(year - 2025) as usize] += 1;
            let seq = seq_by_year[(year - 2025) as usize];
            let id = format!("00000000-bench-{i:012}");
            let now = format!("{date}T12:00:00Z");
            entry.execute(rusqlite::params![
                id,
                now,
                date,
                format!("JE-{year}-{seq:06}"),
                year,
                seq
            ])?;
            // Two debits and two credits on four different accounts, balanced.
            let a = (rng.next_u64() % 1_000_000) as i64 + 1;
            let b = (rng.next_u64() % 1_000_000) as i64 + 1;
            let c = (rng.next_u64() % (a + b - 1).max(1) as u64) as i64 + 1;
            let c = c.min(a + b - 1);
            let d = a + b - c;
            let mut pick = [0usize; 4];
            let first = (rng.next_u64() % ACCOUNTS.len() as u64) as usize;
            for (k, p) in pick.iter_mut().enumerate() {
                *p = (first + k * 4) % ACCOUNTS.len();
            }
            for (n, (acc, dr, cr)) in [
                (pick[0], a, 0),
                (pick[1], b, 0),
                (pick[2], 0, c),
                (pick[3], 0, d),
            ]
            .into_iter()
            .enumerate()
            {
                line.execute(rusqlite::params![
                    id,
                    n as i64,
                    ACCOUNTS[acc],
                    dr,
                    cr,
                    dr + cr,
                    date
                ])?;
            }
            total += a + b;
        }
        for (k, last) in seq_by_year.iter().enumerate() {
            tx.execute(
                "INSERT INTO number_sequences (scope, year, last) VALUES ('journal', ?1, ?2) \
                 ON CONFLICT (scope, year) DO UPDATE SET last = excluded.last",
                rusqlite::params![2025 + k as i64, last],
            )?;
        }
    }
    tx.commit()?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    conn.execute_batch("ANALYZE;")?;
    drop(conn);
    let file_mib = std::fs::metadata(file)?.len() as f64 / 1024.0 / 1024.0;
    Ok(Written {
        entries,
        lines: entries * 4,
        total_cents: total,
        took: started.elapsed(),
        file_mib,
    })
}

/// `YYYY-MM-DD` of day `day` (0-based, < 365) of a non-leap year.
fn date_of(year: i64, day: i64) -> String {
    const MONTHS: [i64; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut d = day;
    for (m, len) in MONTHS.iter().enumerate() {
        if d < *len {
            return format!("{year:04}-{:02}-{:02}", m + 1, d + 1);
        }
        d -= len;
    }
    format!("{year:04}-12-31")
}

fn load_rows(r: &LoadResult, target: Option<f64>) -> Vec<Row> {
    let target_text = target.map_or("-".to_owned(), |t| format!("≥ {t:.0}/s"));
    vec![
        row(
            format!("post 4-line entry, {}: entries/s", r.label),
            format!("{:.0}", r.rate()),
            &target_text,
            target.map(|t| r.rate() >= t && r.errors == 0),
        ),
        row(
            format!("post 4-line entry, {}: p50 / p99 / max", r.label),
            format!(
                "{:.2} / {:.2} / {:.2} ms",
                ms(r.lat.p50),
                ms(r.lat.p99),
                ms(r.lat.max)
            ),
            "-",
            None,
        ),
        row(
            format!("post 4-line entry, {}: errors", r.label),
            match &r.first_error {
                Some(e) => format!(
                    "{} (first: {})",
                    r.errors,
                    e.chars().take(120).collect::<String>()
                ),
                None => r.errors.to_string(),
            },
            "0",
            Some(r.errors == 0),
        ),
        row(
            format!(
                "post 4-line entry, {}: CPU server / client / other",
                r.label
            ),
            format!(
                "{:.2} / {:.2} / {:.2} of {:.2} cores",
                r.cpu.server,
                r.cpu.client,
                r.cpu.not_ours(),
                r.cpu.cores
            ),
            "-",
            None,
        ),
    ]
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
    let busy_before = busy_before().await;
    let dir = tempfile::Builder::new()
        .prefix("erpd-bench-acc-")
        .tempdir_in(&s.base_dir)?;
    let data = dir.path().join("data");
    let log = dir.path().join("erpd.log");
    eprintln!(
        "erpd accounting bench: {} connections, {} s (+{} s warm-up) per load run, {} tenants, {} lines, data dir {}",
        s.conns,
        s.secs,
        s.warmup_secs,
        s.tenants,
        s.lines,
        data.display()
    );

    let platform = platform_token(&data)?;
    let mut srv = Server::start(&data, &log)?;
    let mut ids: Vec<String> = vec!["one".into(), "ledger".into()];
    ids.extend((0..s.tenants).map(|i| format!("t{i:03}")));
    eprintln!("creating {} tenants…", ids.len());
    let tokens = create_tenants(srv.addr, &platform, &ids, 4).await?;
    let request_for = |i: usize| {
        post_request(
            &format!("/v1/t/{}/journal-entries", ids[i]),
            &tokens[i],
            &entry_body(),
        )
    };

    // 1a. One tenant.
    eprintln!("[1/3] posting on one tenant…");
    let one = post_load(&s, &srv, "one tenant", Arc::new(vec![request_for(0)])).await?;
    check_books(srv.addr, &ids[0], &tokens[0], one.posted[0]).await?;
    // 1b. Spread over the tenants.
    eprintln!("[2/3] posting across {} tenants…", s.tenants);
    let spread_requests: Vec<Vec<u8>> = (2..ids.len()).map(request_for).collect();
    let label = format!("{} tenants", s.tenants);
    let spread = post_load(&s, &srv, &label, Arc::new(spread_requests)).await?;
    for (k, posted) in spread.posted.iter().enumerate() {
        check_books(srv.addr, &ids[k + 2], &tokens[k + 2], *posted).await?;
    }
    srv.stop()?;

    // 2. A million lines, then the trial balance.
    eprintln!("[3/3] writing {} posted lines into tenant ledger…", s.lines);
    let written = write_lines(&data.join("tenants").join("ledger.db"), s.lines)?;
    eprintln!(
        "wrote {} entries / {} lines in {:.1} s ({:.0} MiB file); timing the trial balance…",
        written.entries,
        written.lines,
        written.took.as_secs_f64(),
        written.file_mib
    );
    let srv = Server::start(&data, &log)?;
    let path = "/v1/t/ledger/reports/trial-balance?as_of=2026-12-31";
    // The first request opens the tenant (cold); it is reported apart from the timed runs.
    let (cold, tb) = get_json(srv.addr, path, &tokens[1]).await?;
    let want = cents(written.total_cents);
    if tb["total_debit"] != want.as_str() || tb["total_credit"] != want.as_str() {
        return Err(format!(
            "trial balance totals {} / {}, expected {want}",
            tb["total_debit"], tb["total_credit"]
        )
        .into());
    }
    let mut runs = Vec::with_capacity(s.tb_runs);
    for _ in 0..s.tb_runs {
        let (took, _) = get_json(srv.addr, path, &tokens[1]).await?;
        runs.push(took);
    }
    let tb_lat = summarize(runs);
    let half = "/v1/t/ledger/reports/trial-balance?as_of=2025-12-31";
    let mut half_runs = Vec::new();
    for _ in 0..s.tb_runs {
        half_runs.push(get_json(srv.addr, half, &tokens[1]).await?.0);
    }
    let half_lat = summarize(half_runs);
    let mut bs_runs = Vec::new();
    for _ in 0..s.tb_runs {
        bs_runs.push(
            get_json(
                srv.addr,
                "/v1/t/ledger/reports/balance-sheet?as_of=2026-12-31",
                &tokens[1],
            )
            .await?
            .0,
        );
    }
    let bs_lat = summarize(bs_runs);
    drop(srv);
    let load_end = loadavg();

    // Report.
    let mut rows = load_rows(&one, Some(3000.0));
    rows.extend(load_rows(&spread, None));
    rows.push(row(
        format!(
            "trial balance over {} posted lines: median of {}",
            written.lines, tb_lat.n
        ),
        format!(
            "{:.1} ms (min {:.1}, max {:.1})",
            ms(tb_lat.p50),
            ms(tb_lat.min),
            ms(tb_lat.max)
        ),
        "≤ 200 ms",
        Some(tb_lat.p50 <= Duration::from_millis(200)),
    ));
    rows.push(row(
        "trial balance, first request (opens the tenant)",
        format!("{:.1} ms", ms(cold)),
        "-",
        None,
    ));
    rows.push(row(
        "trial balance as of 2025-12-31 (half the lines): median",
        format!("{:.1} ms", ms(half_lat.p50)),
        "-",
        None,
    ));
    rows.push(row(
        format!("balance sheet over {} lines: median", written.lines),
        format!("{:.1} ms", ms(bs_lat.p50)),
        "-",
        None,
    ));
    rows.push(row(
        "writing the lines with rusqlite (one transaction)",
        format!(
            "{:.1} s, file {:.0} MiB",
            written.took.as_secs_f64(),
            written.file_mib
        ),
        "-",
        None,
    ));
    let mut md = String::new();
    for (k, v) in machine() {
        let _ = writeln!(md, "- {k}: {v}");
    }
    let _ = writeln!(
        md,
        "- load average before / after: {load_start} / {load_end}"
    );
    let _ = writeln!(md, "- {busy_before}");
    let _ = writeln!(
        md,
        "- settings: {} connections, {} s measured after {} s warm-up per load run, {} tenants, {} lines, {} report runs",
        s.conns, s.secs, s.warmup_secs, s.tenants, written.lines, s.tb_runs
    );
    let _ = writeln!(
        md,
        "- books checked after each load run: trial-balance totals = acknowledged entries × 179.00, numbers 1..n without gap ({} + {} entries)",
        one.posted.iter().sum::<usize>(),
        spread.posted.iter().sum::<usize>()
    );
    md.push('\n');
    md.push_str(&markdown_table(&rows));
    publish("bench-accounting.md", &md);
    Ok(())
}
