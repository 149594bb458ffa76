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

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ERPD: &str = env!("CARGO_BIN_EXE_erpd");
/// Linux reports process CPU times in clock ticks of 1/100 s (USER_HZ).
const TICKS_PER_SEC: f64 = 100.0;
/// The longest one request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The date of every benchmark entry (one fiscal year: one number sequence).
const DATE: &str = "2026-06-15";
/// Base amount of one benchmark entry's debits (= its credits), in cents.
const ENTRY_CENTS: i64 = 17_900;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

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

fn env_or<T: FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
        Err(_) => default,
    }
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

// ---------------------------------------------------------------------------------------
// The server under test

struct Server {
    child: Option<Child>,
    pid: u32,
    addr: SocketAddr,
}

impl Server {
    /// `erpd --data-dir D serve --listen 127.0.0.1:0`; stderr goes to `log`. Returns once
    /// the listening line is printed.
    fn start(data_dir: &Path, log: &Path) -> Res<Self> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let mut child = Command::new(ERPD)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()?;
        let pid = child.id();
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("erpd listening on http://")
            .and_then(|a| a.parse().ok());
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("unexpected first stdout line from erpd: {line:?}").into());
        };
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = stdout.read_to_end(&mut sink);
        });
        Ok(Self {
            child: Some(child),
            pid,
            addr,
        })
    }

    /// SIGTERM (the server checkpoints and closes its tenants), then wait (bounded).
    fn stop(&mut self) -> Res<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    eprintln!("warning: erpd exited with {status} after SIGTERM");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err("erpd did not stop within 60 s of SIGTERM; killed".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `erpd --data-dir D token create --platform`: the token is alone on the last line.
fn platform_token(data_dir: &Path) -> Res<String> {
    let out = Command::new(ERPD)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["token", "create", "--platform", "--name", "bench"])
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "token create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let stdout = String::from_utf8(out.stdout)?;
    let token = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or("token create printed nothing")?;
    Ok(token.trim().to_owned())
}

// ---------------------------------------------------------------------------------------
// CPU accounting from /proc

/// utime + stime of a process (`self` or a pid), in clock ticks.
fn cpu_ticks(who: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{who}/stat")) else {
        return 0;
    };
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

/// (busy, total) clock ticks of the whole machine since boot.
fn machine_ticks() -> (u64, u64) {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return (0, 0);
    };
    let Some(line) = stat.lines().next() else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

#[derive(Clone, Copy, Debug, Default)]
struct CpuMark {
    server: u64,
    bench: u64,
    busy: u64,
    total: u64,
}

impl CpuMark {
    fn now(server_pid: u32) -> Self {
        let (busy, total) = machine_ticks();
        Self {
            server: cpu_ticks(&server_pid.to_string()),
            bench: cpu_ticks("self"),
            busy,
            total,
        }
    }
}

/// CPU used between two marks, in cores (CPU-seconds per wall second).
#[derive(Clone, Copy, Debug, Default)]
struct CpuSplit {
    server: f64,
    client: f64,
    other: f64,
    cores: f64,
}

fn cpu_split(a: CpuMark, b: CpuMark, wall: Duration) -> CpuSplit {
    let w = wall.as_secs_f64().max(1e-9) * TICKS_PER_SEC;
    let server = b.server.saturating_sub(a.server) as f64 / w;
    let client = b.bench.saturating_sub(a.bench) as f64 / w;
    let busy = b.busy.saturating_sub(a.busy) as f64 / w;
    CpuSplit {
        server,
        client,
        other: (busy - server - client).max(0.0),
        cores: b.total.saturating_sub(a.total) as f64 / w,
    }
}

// ---------------------------------------------------------------------------------------
// A minimal HTTP/1.1 keep-alive client (Content-Length bodies only).

struct HttpConn {
    stream: TcpStream,
    buf: Vec<u8>,
    body: std::ops::Range<usize>,
}

impl HttpConn {
    async fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(8192),
            body: 0..0,
        })
    }

    /// Send one request and read its whole response; returns the status code.
    async fn request(&mut self, req: &[u8]) -> std::io::Result<u16> {
        use std::io::{Error, ErrorKind};
        self.stream.write_all(req).await?;
        self.buf.clear();
        let (head_len, status, content_len) = loop {
            if let Some(pos) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..pos])
                    .map_err(|e| Error::new(ErrorKind::InvalidData, e))?;
                let status: u16 = head
                    .get(9..12)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| Error::new(ErrorKind::InvalidData, "bad status line"))?;
                let mut len = None;
                for line in head.split("\r\n").skip(1) {
                    if let Some((k, v)) = line.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            len = v.trim().parse::<usize>().ok();
                        } else if k.eq_ignore_ascii_case("transfer-encoding") {
                            return Err(Error::new(
                                ErrorKind::Unsupported,
                                "chunked responses are not supported by the bench client",
                            ));
                        }
                    }
                }
                break (pos + 4, status, len.unwrap_or(0));
            }
            self.fill().await?;
        };
        while self.buf.len() < head_len + content_len {
            self.fill().await?;
        }
        if self.buf.len() > head_len + content_len {
            return Err(Error::new(
                ErrorKind::InvalidData,
                "unexpected bytes after response",
            ));
        }
        self.body = head_len..head_len + content_len;
        Ok(status)
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        if self.buf.capacity() - self.buf.len() < 2048 {
            self.buf.reserve(8192);
        }
        let n = self.stream.read_buf(&mut self.buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    fn body(&self) -> &[u8] {
        &self.buf[self.body.clone()]
    }
}

fn get_request(path: &str, token: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n")
        .into_bytes()
}

fn post_request(path: &str, token: &str, body: &Value) -> Vec<u8> {
    let body = body.to_string();
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One GET on a fresh connection; the body as JSON unless the status is not 200.
async fn get_json(addr: SocketAddr, path: &str, token: &str) -> Res<(Duration, Value)> {
    let mut c = HttpConn::connect(addr).await?;
    let started = Instant::now();
    let status = c.request(&get_request(path, token)).await?;
    let took = started.elapsed();
    if status != 200 {
        return Err(format!(
            "GET {path} answered {status}: {}",
            String::from_utf8_lossy(c.body())
        )
        .into());
    }
    Ok((took, serde_json::from_slice(c.body())?))
}

// ---------------------------------------------------------------------------------------
// Statistics

#[derive(Clone, Copy, Debug, Default)]
struct Summary {
    n: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
    min: Duration,
}

fn summarize(mut v: Vec<Duration>) -> Summary {
    if v.is_empty() {
        return Summary::default();
    }
    v.sort_unstable();
    let n = v.len();
    let rank = |p: f64| v[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1];
    Summary {
        n,
        p50: rank(50.0),
        p99: rank(99.0),
        max: v[n - 1],
        min: v[0],
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// splitmix64, to draw tenants.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

// ---------------------------------------------------------------------------------------
// Tenants

async fn create_tenants(addr: SocketAddr, platform: &str, ids: &[String]) -> Res<Vec<String>> {
    let base = format!("http://{addr}");
    let client = reqwest::Client::builder().no_proxy().build()?;
    let results: Vec<Res<String>> = futures::stream::iter(ids.iter())
        .map(|id| {
            let (client, base) = (&client, &base);
            async move {
                let resp = client
                    .post(format!("{base}/v1/tenants"))
                    .bearer_auth(platform)
                    .json(
                        &json!({ "id": id, "name": format!("Bench {id}"), "base_currency": "EUR" }),
                    )
                    .send()
                    .await?;
                let status = resp.status().as_u16();
                let v: Value = resp.json().await?;
                if status != 201 {
                    return Err(format!("POST /v1/tenants {id}: {status}: {v}").into());
                }
                Ok(v["owner_token"]
                    .as_str()
                    .ok_or("no owner_token")?
                    .to_owned())
            }
        })
        .buffered(4)
        .collect()
        .await;
    results.into_iter().collect()
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

// ---------------------------------------------------------------------------------------
// Machine and report

fn machine() -> Vec<(String, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    vec![
        ("cpus".into(), cores.to_string()),
        ("cpu model".into(), model),
        ("kernel".into(), kernel),
    ]
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

struct Row {
    what: String,
    result: String,
    target: String,
    verdict: &'static str,
}

fn row(what: impl Into<String>, result: String, target: &str, met: Option<bool>) -> Row {
    Row {
        what: what.into(),
        result,
        target: target.into(),
        verdict: match met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "-",
        },
    }
}

fn markdown_table(rows: &[Row]) -> String {
    let mut out = String::from("| metric | result | target | verdict |\n|---|---:|---|---|\n");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            r.what, r.result, r.target, r.verdict
        );
    }
    out
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
                r.cpu.server, r.cpu.client, r.cpu.other, r.cpu.cores
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
    let (b0, t0) = machine_ticks();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (b1, t1) = machine_ticks();
    let busy_before = format!(
        "{:.2} of {:.2} cores busy in the second before the start",
        b1.saturating_sub(b0) as f64 / TICKS_PER_SEC,
        t1.saturating_sub(t0) as f64 / TICKS_PER_SEC
    );
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
    let tokens = create_tenants(srv.addr, &platform, &ids).await?;
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
    println!("\n{md}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-accounting.md");
    if let Err(e) = std::fs::write(&out, &md) {
        eprintln!("could not write {}: {e}", out.display());
    }
    Ok(())
}
