//! What the HTTP benchmarks share: the `erpd` child process on a fresh data dir, a
//! platform token from the CLI, tenant creation, a minimal keep-alive HTTP/1.1 client,
//! CPU accounting from `/proc`, nearest-rank percentiles, a small RNG and the markdown
//! result table.
//!
//! Each bench is its own crate and uses a subset of this module, hence the `dead_code`
//! allowance below. Nothing here knows about a particular ERP area.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const ERPD: &str = env!("CARGO_BIN_EXE_erpd");
/// Linux reports process CPU times in clock ticks of 1/100 s (USER_HZ).
pub const TICKS_PER_SEC: f64 = 100.0;
/// The longest one request may take before it counts as an error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Res<T> = Result<T, BoxError>;

/// An environment knob, or `default` when unset; panics on a value that does not parse.
pub fn env_or<T: FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
        Err(_) => default,
    }
}

// ---------------------------------------------------------------------------------------
// The server under test

pub struct Server {
    child: Option<Child>,
    pub pid: u32,
    pub addr: SocketAddr,
}

impl Server {
    /// `erpd --data-dir D serve --listen 127.0.0.1:0`; stderr goes to `log`. Returns once
    /// the listening line is printed.
    pub fn start(data_dir: &Path, log: &Path) -> Res<Self> {
        Self::start_with(data_dir, log, &[])
    }

    /// As [`Server::start`], with more `serve` arguments (`--max-open-tenants N`, …).
    pub fn start_with(data_dir: &Path, log: &Path, extra: &[&str]) -> Res<Self> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
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
    pub fn stop(&mut self) -> Res<()> {
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
pub fn platform_token(data_dir: &Path) -> Res<String> {
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

/// `POST /v1/tenants` for each id (EUR base currency), `concurrency` at a time; the owner
/// tokens, in the order of `ids`.
pub async fn create_tenants(
    addr: SocketAddr,
    platform: &str,
    ids: &[String],
    concurrency: usize,
) -> Res<Vec<String>> {
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
        .buffered(concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

// ---------------------------------------------------------------------------------------
// CPU accounting from /proc

/// utime + stime of a process (`self` or a pid), in clock ticks.
pub fn cpu_ticks(who: &str) -> u64 {
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
pub struct MachineTicks {
    /// user + nice + system: time charged to processes (ours and everyone else's).
    pub procs: u64,
    /// irq + softirq: not charged to any process (loopback TCP receive work lands here).
    pub irq: u64,
    /// Time the hypervisor gave to other guests.
    pub steal: u64,
    pub total: u64,
}

impl MachineTicks {
    pub fn busy(&self) -> u64 {
        self.procs + self.irq + self.steal
    }
}

pub fn machine_ticks() -> MachineTicks {
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
pub struct CpuMark {
    server: u64,
    bench: u64,
    machine: MachineTicks,
}

impl CpuMark {
    pub fn now(server_pid: u32) -> Self {
        Self {
            machine: machine_ticks(),
            server: cpu_ticks(&server_pid.to_string()),
            bench: cpu_ticks("self"),
        }
    }
}

/// CPU used between two marks, in cores (CPU-seconds per wall second).
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSplit {
    pub server: f64,
    /// This bench process: the load generator.
    pub client: f64,
    /// Other processes on the machine (another build or test run, kernel threads).
    pub others: f64,
    pub irq: f64,
    pub steal: f64,
    pub cores: f64,
}

impl CpuSplit {
    /// Everything that is neither the server nor the client: others + irq + steal.
    pub fn not_ours(&self) -> f64 {
        self.others + self.irq + self.steal
    }
}

pub fn cpu_split(a: CpuMark, b: CpuMark, wall: Duration) -> CpuSplit {
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

/// "x of y cores busy in the second before the start" (sleeps one second).
pub async fn busy_before() -> String {
    let a = machine_ticks();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let b = machine_ticks();
    format!(
        "{:.2} of {:.2} cores busy in the second before the start",
        b.busy().saturating_sub(a.busy()) as f64 / TICKS_PER_SEC,
        b.total.saturating_sub(a.total) as f64 / TICKS_PER_SEC
    )
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// CPU count, model and kernel, for the report.
pub fn machine() -> Vec<(String, String)> {
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

// ---------------------------------------------------------------------------------------
// A minimal HTTP/1.1 keep-alive client (Content-Length bodies only).

pub struct HttpConn {
    stream: TcpStream,
    buf: Vec<u8>,
    body: std::ops::Range<usize>,
}

impl HttpConn {
    pub async fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(8192),
            body: 0..0,
        })
    }

    /// Send one request and read its whole response; returns the status code.
    pub async fn request(&mut self, req: &[u8]) -> std::io::Result<u16> {
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

    /// The body of the last response.
    pub fn body(&self) -> &[u8] {
        &self.buf[self.body.clone()]
    }

    /// The body of the last response, lossily as text (for error messages).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(self.body()).into_owned()
    }

    /// One request whose answer must be `want`; its body as JSON (`null` if empty).
    pub async fn call(&mut self, req: &[u8], want: u16) -> Res<Value> {
        let status = self.request(req).await?;
        if status != want {
            let line = String::from_utf8_lossy(req);
            let line = line.lines().next().unwrap_or_default();
            return Err(format!(
                "{line} answered {status} (expected {want}): {}",
                self.body_text()
            )
            .into());
        }
        if self.body().is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_slice(self.body())?)
    }
}

pub fn get_request(path: &str, token: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n")
        .into_bytes()
}

/// A request with a JSON body (`method` is POST, PUT or PATCH).
pub fn body_request(method: &str, path: &str, token: &str, body: &Value) -> Vec<u8> {
    let body = body.to_string();
    format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub fn post_request(path: &str, token: &str, body: &Value) -> Vec<u8> {
    body_request("POST", path, token, body)
}

/// One GET on a fresh connection; the body as JSON unless the status is not 200.
pub async fn get_json(addr: SocketAddr, path: &str, token: &str) -> Res<(Duration, Value)> {
    let mut c = HttpConn::connect(addr).await?;
    let started = Instant::now();
    let status = c.request(&get_request(path, token)).await?;
    let took = started.elapsed();
    if status != 200 {
        return Err(format!("GET {path} answered {status}: {}", c.body_text()).into());
    }
    Ok((took, serde_json::from_slice(c.body())?))
}

// ---------------------------------------------------------------------------------------
// Statistics

#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    pub n: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub min: Duration,
}

/// Nearest-rank percentiles.
pub fn summarize(mut v: Vec<Duration>) -> Summary {
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

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// splitmix64, to draw tenants.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is negligible for small n).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

// ---------------------------------------------------------------------------------------
// Report

pub struct Row {
    pub what: String,
    pub result: String,
    pub target: String,
    pub verdict: &'static str,
}

pub fn row(what: impl Into<String>, result: String, target: &str, met: Option<bool>) -> Row {
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

pub fn markdown_table(rows: &[Row]) -> String {
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

/// Print `md` and write it to `target/<name>` (a failure to write is only reported).
pub fn publish(name: &str, md: &str) {
    println!("\n{md}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(name);
    if let Some(dir) = out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = std::fs::write(&out, md) {
        eprintln!("could not write {}: {e}", out.display());
    }
}
