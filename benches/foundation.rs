//! Foundation benchmark: the real `erpd` binary as a child process, driven over HTTP.
//!
//! `cargo bench --bench foundation` measures
//!
//! 1. provisioning over HTTP (`POST /v1/tenants`), sequential, one client;
//! 2. cold open + first authenticated query (`GET /v1/t/{id}/me`) once per tenant file,
//!    after a restart so that no tenant is open in the server process;
//! 3. `GET /v1/t/{id}/me` throughput and latency with a closed-loop load generator, tenants
//!    drawn Zipf-like from every file with `--max-open-tenants 256`, then all on one tenant;
//! 4. the server's peak RSS, open fds and threads while 2 and 3 run (sampled from /proc).
//!
//! Scale it down for a smoke run with environment variables (defaults in brackets):
//! `ERPD_BENCH_TENANTS` [10000] tenant files, `ERPD_BENCH_PROVISION` [1000] sequential
//! creations timed, `ERPD_BENCH_PROVISION_CONCURRENCY` [4] for the rest,
//! `ERPD_BENCH_SECS` [10] and `ERPD_BENCH_WARMUP_SECS` [2] per load run,
//! `ERPD_BENCH_CONNS` [32] keep-alive connections, `ERPD_BENCH_CAP` [256] and
//! `ERPD_BENCH_COLD_CAP` [1024] for `--max-open-tenants`, `ERPD_BENCH_ZIPF_S` [1.0],
//! `ERPD_BENCH_DIR` [the system temp dir] where the data dir is made.
//!
//! The load generator is a minimal HTTP/1.1 keep-alive client on a single-threaded tokio
//! runtime in this process, so client and server share the machine's cores; the report
//! shows how the CPU time was split. Results are printed as a table and written to
//! `target/bench-foundation.md`.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ERPD: &str = env!("CARGO_BIN_EXE_erpd");
/// Linux reports process CPU times in clock ticks of 1/100 s (USER_HZ) on every common arch.
const TICKS_PER_SEC: f64 = 100.0;
/// The longest one request of the load generator may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

// ---------------------------------------------------------------------------------------
// Settings

struct Settings {
    tenants: usize,
    provision_seq: usize,
    provision_conc: usize,
    secs: f64,
    warmup_secs: f64,
    conns: usize,
    cap: usize,
    cold_cap: usize,
    zipf_s: f64,
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
        let tenants: usize = env_or("ERPD_BENCH_TENANTS", 10_000).max(1);
        Self {
            tenants,
            provision_seq: env_or("ERPD_BENCH_PROVISION", 1_000).clamp(1, tenants),
            provision_conc: env_or("ERPD_BENCH_PROVISION_CONCURRENCY", 4).max(1),
            secs: env_or("ERPD_BENCH_SECS", 10.0_f64).max(0.1),
            warmup_secs: env_or("ERPD_BENCH_WARMUP_SECS", 2.0_f64).max(0.0),
            conns: env_or("ERPD_BENCH_CONNS", 32).max(1),
            cap: env_or("ERPD_BENCH_CAP", 256).max(1),
            cold_cap: env_or("ERPD_BENCH_COLD_CAP", 1024).max(1),
            zipf_s: env_or("ERPD_BENCH_ZIPF_S", 1.0),
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
    started_in: Duration,
}

impl Server {
    /// `erpd --data-dir D serve --listen 127.0.0.1:0 [extra…]`; stderr (the server's log)
    /// goes to `log`. Returns once the listening line is printed.
    fn start(data_dir: &Path, extra: &[String], log: &Path) -> Res<Self> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let started = Instant::now();
        let mut child = Command::new(ERPD)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
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
        // Keep draining stdout so that the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = stdout.read_to_end(&mut sink);
        });
        Ok(Self {
            child: Some(child),
            pid,
            addr,
            started_in: started.elapsed(),
        })
    }

    /// SIGTERM (graceful: the server checkpoints and closes its open tenants), then wait.
    fn stop(&mut self) -> Res<Duration> {
        let Some(mut child) = self.child.take() else {
            return Ok(Duration::ZERO);
        };
        let started = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = started + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    eprintln!("warning: erpd exited with {status} after SIGTERM");
                }
                return Ok(started.elapsed());
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

/// `erpd --data-dir D token create --platform`: the token is alone on the last stdout line.
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
// /proc sampling

#[derive(Clone, Copy, Default, Debug)]
struct ProcSample {
    rss_kib: u64,
    hwm_kib: u64,
    threads: u64,
    fds: u64,
}

fn sample_proc(pid: u32) -> Option<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(ProcSample {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
        threads: field("Threads:"),
        fds,
    })
}

#[derive(Clone, Copy, Default, Debug)]
struct Peaks {
    max: ProcSample,
    last: ProcSample,
    samples: usize,
}

/// Samples the server every ~100 ms on its own OS thread until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Peaks>,
}

impl Sampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut p = Peaks::default();
            loop {
                if let Some(s) = sample_proc(pid) {
                    p.max.rss_kib = p.max.rss_kib.max(s.rss_kib);
                    p.max.hwm_kib = p.max.hwm_kib.max(s.hwm_kib);
                    p.max.threads = p.max.threads.max(s.threads);
                    p.max.fds = p.max.fds.max(s.fds);
                    p.last = s;
                    p.samples += 1;
                }
                if flag.load(Ordering::Relaxed) {
                    return p;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Self { stop, handle }
    }

    fn finish(self) -> Peaks {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

/// utime + stime of a process (`self` or a pid), in clock ticks.
fn cpu_ticks(who: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{who}/stat")) else {
        return 0;
    };
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

/// Clock ticks of the whole machine since boot, from the first line of /proc/stat.
#[derive(Clone, Copy, Debug, Default)]
struct MachineTicks {
    /// user + nice + system: time charged to processes (ours and everyone else's).
    procs: u64,
    /// irq + softirq: not charged to any process (loopback TCP receive work lands here).
    irq: u64,
    /// Time the hypervisor gave to other guests.
    steal: u64,
    total: u64,
}

impl MachineTicks {
    fn busy(&self) -> u64 {
        self.procs + self.irq + self.steal
    }
}

fn machine_ticks() -> MachineTicks {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return MachineTicks::default();
    };
    let Some(line) = stat.lines().next() else {
        return MachineTicks::default();
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice: already in user]
    let f = |i: usize| v.get(i).copied().unwrap_or(0);
    MachineTicks {
        procs: f(0) + f(1) + f(2),
        irq: f(5) + f(6),
        steal: f(7),
        total: (0..8).map(f).sum(),
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct CpuMark {
    server: u64,
    bench: u64,
    machine: MachineTicks,
}

impl CpuMark {
    fn now(server_pid: u32) -> Self {
        Self {
            machine: machine_ticks(),
            server: cpu_ticks(&server_pid.to_string()),
            bench: cpu_ticks("self"),
        }
    }
}

/// CPU used between two marks, in cores (CPU-seconds per wall second).
#[derive(Clone, Copy, Debug, Default)]
struct CpuSplit {
    server: f64,
    client: f64,
    /// Other processes on the machine (another build or test run, kernel threads).
    others: f64,
    irq: f64,
    steal: f64,
    cores: f64,
}

fn cpu_split(a: CpuMark, b: CpuMark, wall: Duration) -> CpuSplit {
    let w = wall.as_secs_f64().max(1e-9) * TICKS_PER_SEC;
    let d = |x: u64, y: u64| y.saturating_sub(x) as f64 / w;
    let server = d(a.server, b.server);
    let client = d(a.bench, b.bench);
    CpuSplit {
        server,
        client,
        others: (d(a.machine.procs, b.machine.procs) - server - client).max(0.0),
        irq: d(a.machine.irq, b.machine.irq),
        steal: d(a.machine.steal, b.machine.steal),
        cores: d(a.machine.total, b.machine.total),
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// A minimal HTTP/1.1 keep-alive client (GET only; Content-Length bodies).

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

fn get_request(path: &str, token: Option<&str>) -> Vec<u8> {
    let mut r = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    if let Some(t) = token {
        let _ = write!(r, "Authorization: Bearer {t}\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}

async fn fetch_metrics(addr: SocketAddr) -> Res<String> {
    let mut c = HttpConn::connect(addr).await?;
    let status = c.request(&get_request("/metrics", None)).await?;
    if status != 200 {
        return Err(format!("/metrics answered {status}").into());
    }
    Ok(String::from_utf8_lossy(c.body()).into_owned())
}

/// Sum of every series of one metric in a Prometheus text exposition.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let base = series.split('{').next()?;
            (base == name).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

#[derive(Clone, Copy, Debug, Default)]
struct PoolCounters {
    open: f64,
    opens: f64,
    hits: f64,
    misses: f64,
    evictions: f64,
}

impl PoolCounters {
    fn parse(text: &str) -> Self {
        Self {
            open: metric(text, "erpd_tenant_pools_open"),
            opens: metric(text, "erpd_tenant_opens_total"),
            hits: metric(text, "erpd_tenant_pool_hits_total"),
            misses: metric(text, "erpd_tenant_pool_misses_total"),
            evictions: metric(text, "erpd_tenant_pool_evictions_total"),
        }
    }

    fn delta(self, before: Self) -> Self {
        Self {
            open: self.open,
            opens: self.opens - before.opens,
            hits: self.hits - before.hits,
            misses: self.misses - before.misses,
            evictions: self.evictions - before.evictions,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Statistics and randomness

#[derive(Clone, Copy, Debug, Default)]
struct Summary {
    n: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
    mean: Duration,
}

fn summarize(mut v: Vec<Duration>) -> Summary {
    if v.is_empty() {
        return Summary::default();
    }
    v.sort_unstable();
    let n = v.len();
    let rank = |p: f64| v[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1];
    let total: Duration = v.iter().sum();
    Summary {
        n,
        p50: rank(50.0),
        p99: rank(99.0),
        max: v[n - 1],
        mean: total / n as u32,
    }
}

/// Medians of the first and the last tenth of a series, in the order it was measured.
fn drift(v: &[Duration]) -> (Duration, Duration) {
    let k = (v.len() / 10).max(1).min(v.len());
    (
        summarize(v[..k].to_vec()).p50,
        summarize(v[v.len() - k..].to_vec()).p50,
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// splitmix64: small, fast, good enough to draw tenants.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// Zipf over ranks 0..n with exponent s, sampled by inverting the CDF.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|k| {
                acc += 1.0 / (k as f64).powf(s);
                acc
            })
            .collect();
        for c in &mut cdf {
            *c /= acc;
        }
        Self { cdf }
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }

    /// Share of draws that land in the `k` most popular ranks.
    fn top_share(&self, k: usize) -> f64 {
        if k == 0 {
            0.0
        } else {
            self.cdf[k.min(self.cdf.len()) - 1]
        }
    }
}

// ---------------------------------------------------------------------------------------
// Phase 1: provisioning

struct Tenants {
    ids: Vec<String>,
    tokens: Vec<String>,
}

fn tenant_id(i: usize) -> String {
    format!("bench-{i:05}")
}

async fn create_tenant(
    client: &reqwest::Client,
    base: &str,
    platform: &str,
    i: usize,
) -> Res<(Duration, String)> {
    let id = tenant_id(i);
    let body = json!({ "id": id, "name": format!("Bench {i}"), "base_currency": "EUR" });
    let started = Instant::now();
    let resp = client
        .post(format!("{base}/v1/tenants"))
        .bearer_auth(platform)
        .json(&body)
        .send()
        .await?;
    let status = resp.status();
    let bytes = resp.bytes().await?;
    let took = started.elapsed();
    if status.as_u16() != 201 {
        return Err(format!(
            "POST /v1/tenants {id}: {status}: {}",
            String::from_utf8_lossy(&bytes)
        )
        .into());
    }
    let v: Value = serde_json::from_slice(&bytes)?;
    let token = v["owner_token"]
        .as_str()
        .ok_or("no owner_token in the answer")?
        .to_owned();
    if !token.starts_with(&format!("erpdt_{id}_")) {
        return Err(format!("unexpected owner token shape for {id}").into());
    }
    Ok((took, token))
}

struct ProvisionResult {
    seq: Summary,
    seq_drift: (Duration, Duration),
    seq_wall: Duration,
    rest: usize,
    rest_wall: Duration,
}

async fn provision(
    s: &Settings,
    addr: SocketAddr,
    platform: &str,
) -> Res<(Tenants, ProvisionResult)> {
    let base = format!("http://{addr}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let mut tokens = vec![String::new(); s.tenants];
    let mut lat = Vec::with_capacity(s.provision_seq);
    let started = Instant::now();
    for (i, slot) in tokens.iter_mut().enumerate().take(s.provision_seq) {
        let (took, token) = create_tenant(&client, &base, platform, i).await?;
        lat.push(took);
        *slot = token;
    }
    let seq_wall = started.elapsed();
    let started = Instant::now();
    let rest: Vec<Res<(usize, String)>> = futures::stream::iter(s.provision_seq..s.tenants)
        .map(|i| {
            let (client, base) = (&client, &base);
            async move {
                let (_, token) = create_tenant(client, base, platform, i).await?;
                Ok((i, token))
            }
        })
        .buffer_unordered(s.provision_conc)
        .collect()
        .await;
    let rest_wall = started.elapsed();
    for r in rest {
        let (i, token) = r?;
        tokens[i] = token;
    }
    let ids = (0..s.tenants).map(tenant_id).collect();
    Ok((
        Tenants { ids, tokens },
        ProvisionResult {
            seq_drift: drift(&lat),
            seq: summarize(lat),
            seq_wall,
            rest: s.tenants - s.provision_seq,
            rest_wall,
        },
    ))
}

// ---------------------------------------------------------------------------------------
// Phase 2: cold open + first query

struct ColdResult {
    lat: Summary,
    drift: (Duration, Duration),
    wall: Duration,
    pools: PoolCounters,
    peaks: Peaks,
}

async fn cold_opens(server: &Server, t: &Tenants, order: &[usize]) -> Res<ColdResult> {
    let sampler = Sampler::start(server.pid);
    let before = PoolCounters::parse(&fetch_metrics(server.addr).await?);
    let mut conn = HttpConn::connect(server.addr).await?;
    // Warm the connection (and the server's code paths that do not touch tenant files).
    conn.request(&get_request("/healthz", None)).await?;
    let mut lat = Vec::with_capacity(order.len());
    let started = Instant::now();
    for &i in order {
        let req = get_request(&format!("/v1/t/{}/me", t.ids[i]), Some(&t.tokens[i]));
        let t0 = Instant::now();
        let status = conn.request(&req).await?;
        lat.push(t0.elapsed());
        if status != 200 {
            return Err(format!(
                "GET /v1/t/{}/me answered {status}: {}",
                t.ids[i],
                String::from_utf8_lossy(conn.body())
            )
            .into());
        }
    }
    let wall = started.elapsed();
    let after = PoolCounters::parse(&fetch_metrics(server.addr).await?);
    Ok(ColdResult {
        drift: drift(&lat),
        lat: summarize(lat),
        wall,
        pools: after.delta(before),
        peaks: sampler.finish(),
    })
}

// ---------------------------------------------------------------------------------------
// Phase 3: closed-loop load

struct LoadResult {
    label: String,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    window: Duration,
    lat: Summary,
    pools: PoolCounters,
    cpu: CpuSplit,
    peaks: Peaks,
}

impl LoadResult {
    fn rps(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }
}

#[derive(Default)]
struct ConnOutcome {
    lat: Vec<Duration>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
}

/// `conns` connections, each sending its next request as soon as the previous answer is
/// read, for `warmup + secs`; only the last `secs` are counted.
async fn load(
    s: &Settings,
    server: &Server,
    label: &str,
    requests: Arc<Vec<Vec<u8>>>,
    pick: Arc<dyn Fn(&mut Rng) -> usize + Send + Sync>,
) -> Res<LoadResult> {
    let addr = server.addr;
    let sampler = Sampler::start(server.pid);
    let started = Instant::now();
    let measure_from = started + Duration::from_secs_f64(s.warmup_secs);
    let end = measure_from + Duration::from_secs_f64(s.secs);
    let mut tasks = Vec::with_capacity(s.conns);
    for c in 0..s.conns {
        let (requests, pick) = (requests.clone(), pick.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = ConnOutcome {
                lat: Vec::with_capacity(65_536),
                ..Default::default()
            };
            let mut rng = Rng(0x5EED_0000 + c as u64);
            let mut conn: Option<HttpConn> = None;
            while Instant::now() < end {
                let req = &requests[pick(&mut rng)];
                let t0 = Instant::now();
                let result = tokio::time::timeout(REQUEST_TIMEOUT, async {
                    if conn.is_none() {
                        conn = Some(HttpConn::connect(addr).await?);
                    }
                    match conn.as_mut() {
                        Some(c) => c.request(req).await,
                        None => Err(std::io::ErrorKind::NotConnected.into()),
                    }
                })
                .await;
                let took = t0.elapsed();
                let counted = t0 >= measure_from && Instant::now() <= end;
                let failure = match result {
                    Ok(Ok(200)) => None,
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
                if counted {
                    match failure {
                        None => {
                            out.ok += 1;
                            out.lat.push(took);
                        }
                        Some(f) => {
                            out.errors += 1;
                            out.first_error.get_or_insert(f);
                        }
                    }
                }
            }
            out
        }));
    }
    // Snapshot the counters and CPU times at the edges of the measured window.
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu0 = CpuMark::now(server.pid);
    let w0 = Instant::now();
    let before = fetch_metrics(addr).await.map(|t| PoolCounters::parse(&t));
    tokio::time::sleep_until(end.into()).await;
    let cpu1 = CpuMark::now(server.pid);
    let window = w0.elapsed();
    let mut all = ConnOutcome::default();
    for t in tasks {
        let o = t.await?;
        all.lat.extend(o.lat);
        all.ok += o.ok;
        all.errors += o.errors;
        if all.first_error.is_none() {
            all.first_error = o.first_error;
        }
    }
    let after = fetch_metrics(addr).await.map(|t| PoolCounters::parse(&t));
    let pools = match (before, after) {
        (Ok(b), Ok(a)) => a.delta(b),
        _ => PoolCounters::default(),
    };
    Ok(LoadResult {
        label: label.to_owned(),
        ok: all.ok,
        errors: all.errors,
        first_error: all.first_error,
        window: end - measure_from,
        lat: summarize(all.lat),
        pools,
        cpu: cpu_split(cpu0, cpu1, window),
        peaks: sampler.finish(),
    })
}

// ---------------------------------------------------------------------------------------
// Machine description

fn machine() -> Vec<(String, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    vec![
        ("cpus".into(), cores.to_string()),
        ("cpu model".into(), model),
        ("memory".into(), mem),
        ("kernel".into(), kernel),
    ]
}

/// Filesystem type of the mount holding `path` (longest mount-point prefix).
fn fs_type(path: &Path) -> String {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let path = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3 && path.starts_with(f[1])).then(|| (f[1].len(), f[2].to_owned()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, t)| t)
        .unwrap_or_else(|| "unknown".into())
}

// ---------------------------------------------------------------------------------------
// Report

struct Row {
    what: String,
    result: String,
    target: String,
    verdict: &'static str,
}

fn row(
    what: impl Into<String>,
    result: String,
    target: impl Into<String>,
    met: Option<bool>,
) -> Row {
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

fn text_table(rows: &[Row]) -> String {
    let w0 = rows.iter().map(|r| r.what.len()).max().unwrap_or(0).max(6);
    let w1 = rows
        .iter()
        .map(|r| r.result.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let w2 = rows
        .iter()
        .map(|r| r.target.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<w0$}  {:>w1$}  {:<w2$}  verdict",
        "metric", "result", "target"
    );
    let _ = writeln!(out, "{}", "-".repeat(w0 + w1 + w2 + 13));
    for r in rows {
        let _ = writeln!(
            out,
            "{:<w0$}  {:>w1$}  {:<w2$}  {}",
            r.what, r.result, r.target, r.verdict
        );
    }
    out
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

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

// ---------------------------------------------------------------------------------------

fn main() -> Res<()> {
    // `cargo bench` passes `--bench`; a plain main has no other arguments to honour.
    let s = Settings::from_env();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(s))
}

async fn run(s: Settings) -> Res<()> {
    let run_started = Instant::now();
    let load_start = loadavg();
    // How busy the machine is before we start (another build or test run skews everything).
    let m0 = machine_ticks();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let m1 = machine_ticks();
    let busy_before = format!(
        "{:.2} of {:.2} cores busy in the second before the start",
        m1.busy().saturating_sub(m0.busy()) as f64 / TICKS_PER_SEC,
        m1.total.saturating_sub(m0.total) as f64 / TICKS_PER_SEC
    );
    let log_filter = std::env::var("ERPD_LOG").unwrap_or_else(|_| "unset (info)".into());
    let dir = tempfile::Builder::new()
        .prefix("erpd-bench-")
        .tempdir_in(&s.base_dir)?;
    let data = dir.path().join("data");
    let log = dir.path().join("erpd.log");
    let fs = fs_type(dir.path());
    eprintln!(
        "erpd foundation bench: {} tenants, {} sequential creations, {} connections, {} s (+{} s warm-up) per load run, data dir {} ({fs})",
        s.tenants,
        s.provision_seq,
        s.conns,
        s.secs,
        s.warmup_secs,
        data.display()
    );

    // 1. Provisioning.
    let platform = platform_token(&data)?;
    let mut srv = Server::start(&data, &[], &log)?;
    eprintln!(
        "[1/3] provisioning {} tenants ({} sequential, then concurrency {})…",
        s.tenants, s.provision_seq, s.provision_conc
    );
    let (tenants, prov) = provision(&s, srv.addr, &platform).await?;
    let provision_peaks = sample_proc(srv.pid).unwrap_or_default();
    srv.stop()?;
    let disk: u64 = std::fs::read_dir(data.join("tenants"))?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();

    // 2. Cold opens after a restart.
    eprintln!(
        "[2/3] cold open + first GET me for each of {} tenants (--max-open-tenants {})…",
        s.tenants, s.cold_cap
    );
    let mut srv = Server::start(
        &data,
        &["--max-open-tenants".into(), s.cold_cap.to_string()],
        &log,
    )?;
    let restart_in = srv.started_in;
    let mut order: Vec<usize> = (0..s.tenants).collect();
    Rng(42).shuffle(&mut order);
    let cold = cold_opens(&srv, &tenants, &order).await?;
    let cold_stop = srv.stop()?;

    // 3. Throughput: Zipf over every file, then one tenant.
    eprintln!(
        "[3/3] GET me load, --max-open-tenants {}: Zipf(s={}) over {} tenants, then one tenant…",
        s.cap, s.zipf_s, s.tenants
    );
    let mut srv = Server::start(
        &data,
        &["--max-open-tenants".into(), s.cap.to_string()],
        &log,
    )?;
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..s.tenants)
            .map(|i| {
                get_request(
                    &format!("/v1/t/{}/me", tenants.ids[i]),
                    Some(&tenants.tokens[i]),
                )
            })
            .collect(),
    );
    let zipf = Arc::new(Zipf::new(s.tenants, s.zipf_s));
    let top_share = zipf.top_share(s.cap);
    let mut rank_to_tenant: Vec<usize> = (0..s.tenants).collect();
    Rng(7).shuffle(&mut rank_to_tenant);
    let hot = rank_to_tenant[0];
    let rank_to_tenant = Arc::new(rank_to_tenant);
    let z = zipf.clone();
    let zipf_run = load(
        &s,
        &srv,
        "zipf",
        requests.clone(),
        Arc::new(move |rng: &mut Rng| rank_to_tenant[z.sample(rng)]),
    )
    .await?;
    let one_run = load(
        &s,
        &srv,
        "one",
        requests.clone(),
        Arc::new(move |_: &mut Rng| hot),
    )
    .await?;
    let final_sample = sample_proc(srv.pid).unwrap_or_default();
    srv.stop()?;
    let load_end = loadavg();

    // Report.
    let one_rps = one_run.rps();
    let zipf_rps = zipf_run.rps();
    let cap_bound_mib = |open: usize| 64.0 + 0.5 * open as f64;
    let fd_bound = |cap: usize| cap * 9 + 128;
    let mut rows = vec![
        row(
            format!(
                "provision, median ({} sequential POST /v1/tenants)",
                prov.seq.n
            ),
            format!("{:.2} ms", ms(prov.seq.p50)),
            "<= 2 ms",
            Some(ms(prov.seq.p50) <= 2.0),
        ),
        row(
            "provision, p99",
            format!("{:.2} ms", ms(prov.seq.p99)),
            "(report)",
            None,
        ),
        row(
            format!("cold open + first GET me, median ({} files)", cold.lat.n),
            format!("{:.3} ms", ms(cold.lat.p50)),
            "<= 1 ms",
            Some(ms(cold.lat.p50) <= 1.0),
        ),
        row(
            "cold open + first GET me, p99",
            format!("{:.3} ms", ms(cold.lat.p99)),
            "<= 5 ms",
            Some(ms(cold.lat.p99) <= 5.0),
        ),
        row(
            format!("GET me, one tenant ({} conns)", s.conns),
            format!("{one_rps:.0} req/s"),
            ">= 20000 req/s",
            Some(one_rps >= 20_000.0),
        ),
        row(
            "GET me, one tenant, p50 / p99",
            format!("{:.2} / {:.2} ms", ms(one_run.lat.p50), ms(one_run.lat.p99)),
            "(report)",
            None,
        ),
        row(
            format!(
                "GET me, Zipf s={} over {} tenants, cap {}",
                s.zipf_s, s.tenants, s.cap
            ),
            format!(
                "{zipf_rps:.0} req/s ({:.0}%)",
                100.0 * zipf_rps / one_rps.max(1.0)
            ),
            ">= 50% of one tenant",
            Some(zipf_rps >= 0.5 * one_rps),
        ),
        row(
            "GET me, Zipf, p50 / p99",
            format!(
                "{:.2} / {:.2} ms",
                ms(zipf_run.lat.p50),
                ms(zipf_run.lat.p99)
            ),
            "(report)",
            None,
        ),
    ];
    let zipf_rss = mib(zipf_run.peaks.max.rss_kib.max(one_run.peaks.max.rss_kib));
    rows.push(row(
        format!("peak RSS during load (cap {})", s.cap),
        format!("{zipf_rss:.1} MiB"),
        format!("<= {:.0} MiB", cap_bound_mib(s.cap)),
        Some(zipf_rss <= cap_bound_mib(s.cap)),
    ));
    let load_fds = zipf_run.peaks.max.fds.max(one_run.peaks.max.fds);
    rows.push(row(
        format!("peak open fds during load (cap {})", s.cap),
        load_fds.to_string(),
        format!("<= {} (cap x 9 + 128)", fd_bound(s.cap)),
        Some(load_fds as usize <= fd_bound(s.cap)),
    ));
    let cold_rss = mib(cold.peaks.max.rss_kib);
    rows.push(row(
        format!(
            "peak RSS, cold pass over {} files (cap {})",
            s.tenants, s.cold_cap
        ),
        format!("{cold_rss:.1} MiB"),
        format!("<= {:.0} MiB", cap_bound_mib(s.cold_cap.min(s.tenants))),
        Some(cold_rss <= cap_bound_mib(s.cold_cap.min(s.tenants))),
    ));
    rows.push(row(
        format!("peak open fds, cold pass (cap {})", s.cold_cap),
        cold.peaks.max.fds.to_string(),
        format!("<= {}", fd_bound(s.cold_cap.min(s.tenants))),
        Some(cold.peaks.max.fds as usize <= fd_bound(s.cold_cap.min(s.tenants))),
    ));

    let mut details = String::new();
    let _ = writeln!(
        details,
        "provisioning: {} sequential in {:.2} s (mean {:.2} ms, max {:.2} ms; median of the first tenth {:.2} ms, of the last tenth {:.2} ms); {} more at concurrency {} in {:.2} s ({:.0}/s); {:.1} MiB of tenant files",
        prov.seq.n,
        prov.seq_wall.as_secs_f64(),
        ms(prov.seq.mean),
        ms(prov.seq.max),
        ms(prov.seq_drift.0),
        ms(prov.seq_drift.1),
        prov.rest,
        s.provision_conc,
        prov.rest_wall.as_secs_f64(),
        prov.rest as f64 / prov.rest_wall.as_secs_f64().max(1e-9),
        disk as f64 / 1024.0 / 1024.0,
    );
    let _ = writeln!(
        details,
        "  server after provisioning: RSS {:.1} MiB, HWM {:.1} MiB, {} fds, {} threads",
        mib(provision_peaks.rss_kib),
        mib(provision_peaks.hwm_kib),
        provision_peaks.fds,
        provision_peaks.threads
    );
    let _ = writeln!(
        details,
        "cold pass: restart took {:.0} ms; {} GETs in {:.2} s, mean {:.3} ms, max {:.2} ms, median of the first tenth {:.3} ms, of the last tenth {:.3} ms; opens {}, misses {}, evictions {}, pools open at end {}; peak RSS {:.1} MiB (HWM {:.1}), fds {}, threads {}; stop took {:.0} ms",
        ms(restart_in),
        cold.lat.n,
        cold.wall.as_secs_f64(),
        ms(cold.lat.mean),
        ms(cold.lat.max),
        ms(cold.drift.0),
        ms(cold.drift.1),
        cold.pools.opens,
        cold.pools.misses,
        cold.pools.evictions,
        cold.pools.open,
        mib(cold.peaks.max.rss_kib),
        mib(cold.peaks.max.hwm_kib),
        cold.peaks.max.fds,
        cold.peaks.max.threads,
        ms(cold_stop),
    );
    let _ = writeln!(
        details,
        "Zipf: the top {} ranks draw {:.1}% of requests (so ~{:.1}% must miss with a perfect LRU); tenant {} is the hot one",
        s.cap,
        100.0 * top_share,
        100.0 * (1.0 - top_share),
        tenants.ids[hot],
    );
    for r in [&zipf_run, &one_run] {
        let _ = writeln!(
            details,
            "load {:>4}: {} ok, {} errors in {:.1} s = {:.0} req/s; p50 {:.3} ms, p99 {:.3} ms, max {:.2} ms; opens {}, hits {}, misses {}, evictions {}, pools open {}; CPU cores used: server {:.2} ({:.0} us/request), client {:.2}, irq/softirq {:.2}, steal {:.2}, other processes {:.2}, of {:.2}; peak RSS {:.1} MiB, fds {}, threads {}",
            r.label,
            r.ok,
            r.errors,
            r.window.as_secs_f64(),
            r.rps(),
            ms(r.lat.p50),
            ms(r.lat.p99),
            ms(r.lat.max),
            r.pools.opens,
            r.pools.hits,
            r.pools.misses,
            r.pools.evictions,
            r.pools.open,
            r.cpu.server,
            1e6 * r.cpu.server / r.rps().max(1e-9),
            r.cpu.client,
            r.cpu.irq,
            r.cpu.steal,
            r.cpu.others,
            r.cpu.cores,
            mib(r.peaks.max.rss_kib),
            r.peaks.max.fds,
            r.peaks.max.threads,
        );
        if let Some(e) = &r.first_error {
            let _ = writeln!(details, "  first error: {e}");
        }
    }
    let _ = writeln!(
        details,
        "server at the end: RSS {:.1} MiB, HWM {:.1} MiB, {} fds, {} threads",
        mib(final_sample.rss_kib),
        mib(final_sample.hwm_kib),
        final_sample.fds,
        final_sample.threads
    );
    let _ = writeln!(
        details,
        "machine: {busy_before}; load average {load_start} at start, {load_end} at end; whole run {:.0} s",
        run_started.elapsed().as_secs_f64()
    );

    let machine = machine();
    let mut header = String::new();
    for (k, v) in &machine {
        let _ = write!(header, "{k}: {v}; ");
    }
    let _ = write!(header, "data dir on {fs}; server ERPD_LOG {log_filter}");

    println!("\nerpd foundation benchmark — {header}");
    println!(
        "client and server share the same {} CPUs (closed loop, {} keep-alive connections, {} s after {} s warm-up)\n",
        machine[0].1, s.conns, s.secs, s.warmup_secs
    );
    print!("{}", text_table(&rows));
    println!("\n{details}");
    if zipf_run.errors + one_run.errors > 0 {
        println!("WARNING: the load runs saw errors (see above)");
    }

    let mut md = String::new();
    let _ = writeln!(md, "### erpd foundation benchmark\n");
    let _ = writeln!(md, "- machine: {header}");
    let _ = writeln!(
        md,
        "- settings: {} tenants, {} sequential creations, {} keep-alive connections, {} s + {} s warm-up per load run, caps {} (load) and {} (cold pass)",
        s.tenants, s.provision_seq, s.conns, s.secs, s.warmup_secs, s.cap, s.cold_cap
    );
    let _ = writeln!(md, "- client and server share the same CPUs\n");
    md.push_str(&markdown_table(&rows));
    let _ = writeln!(md, "\n```text\n{}```", details);
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let md_path = target.join("bench-foundation.md");
    match std::fs::write(&md_path, md) {
        Ok(()) => println!("(markdown written to {})", md_path.display()),
        Err(e) => eprintln!("could not write {}: {e}", md_path.display()),
    }
    if std::env::var_os("ERPD_BENCH_KEEP").is_some() {
        let kept = dir.keep();
        println!("(data dir and server log kept in {})", kept.display());
    }
    Ok(())
}
