//! The harness: the real `erpd` binary as a child process on its own temporary data
//! directory, an HTTP client for it, its command line, and small readers for what it
//! leaves on disk (files, SQLite state, Prometheus text, logs).
//!
//! Every wait is bounded in time; every server listens on 127.0.0.1 only; every child is
//! killed when its `TestApp` is dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a server may take to print its listening line.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a one-shot CLI command may take.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one HTTP request may take.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// The line `erpd serve` prints first on stdout.
const LISTENING: &str = "erpd listening on http://";

/// `PRAGMA application_id` of a tenant file ('erpd').
pub const TENANT_APPLICATION_ID: i64 = 1_701_998_692;

pub fn erpd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_erpd")
}

// ---------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------

/// One running `erpd serve` on its own data directory, plus a platform token for it.
pub struct TestApp {
    /// The sandbox: `data/` (the data dir) and the server's stderr logs; removed on drop.
    _sandbox: TempDir,
    pub data_dir: PathBuf,
    /// Where every start of the server appends its stderr.
    pub stderr_log: PathBuf,
    pub platform_token: String,
    api: Api,
    child: Option<Child>,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Deref for TestApp {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `erpd --data-dir <tmp>/data serve --listen 127.0.0.1:0 <args…>`, and a platform token
/// made with the CLI while it runs.
pub fn spawn_app(args: &[&str]) -> TestApp {
    spawn_app_with_env(args, &[])
}

/// As [`spawn_app`], with extra environment variables for the server process.
pub fn spawn_app_with_env(args: &[&str], env: &[(&str, &str)]) -> TestApp {
    let root = tempfile::Builder::new()
        .prefix("erpd-test-")
        .tempdir()
        .expect("creating a temp dir");
    let data_dir = root.path().join("data");
    let stderr_log = root.path().join("erpd.stderr.log");
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (child, base) = start_server(&data_dir, &args, &env, &stderr_log);
    let mut app = TestApp {
        _sandbox: root,
        data_dir,
        stderr_log,
        platform_token: String::new(),
        api: Api::new(base),
        child: Some(child),
        args,
        env,
    };
    app.platform_token = app.new_platform_token();
    app
}

fn start_server(
    data_dir: &Path,
    args: &[String],
    env: &[(String, String)],
    stderr_log: &Path,
) -> (Child, String) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(stderr_log)
        .expect("opening the stderr log");
    let mut cmd = Command::new(erpd_bin());
    cmd.arg("--data-dir")
        .arg(data_dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log));
    clear_erpd_env(&mut cmd);
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let mut child = cmd.spawn().expect("spawning erpd serve");

    // Drain stdout on a thread for the child's whole life (so it can never block on a full
    // pipe) and hand its lines over a channel.
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            match line {
                Ok(l) => {
                    let _ = tx.send(l);
                }
                Err(_) => break,
            }
        }
    });
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(addr) = line.strip_prefix(LISTENING) {
                    let base = format!("http://{}", addr.trim());
                    assert!(
                        base.starts_with("http://127.0.0.1:"),
                        "the server must listen on loopback only, got {base}"
                    );
                    return (child, base);
                }
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(stderr_log).unwrap_or_default();
                panic!("erpd serve did not print its listening line ({e:?}); stderr:\n{log}");
            }
        }
    }
}

/// The test process's own `ERPD_*` settings must not leak into the children.
fn clear_erpd_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ERPD_") {
            cmd.env_remove(k);
        }
    }
}

impl TestApp {
    /// The HTTP client, to move into tasks.
    pub fn clone_api(&self) -> Api {
        self.api.clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is not running").id()
    }

    /// A fresh platform token from `erpd token create --platform` (alone on the last line).
    pub fn new_platform_token(&self) -> String {
        let out = self.cli(&["token", "create", "--platform"]);
        assert!(out.status.success(), "token create failed: {out:?}");
        let token = out.last_line().to_owned();
        assert!(
            token.len() == 6 + 64
                && token.starts_with("erpdp_")
                && token[6..].bytes().all(|b| b.is_ascii_hexdigit()),
            "unexpected platform token {token:?}"
        );
        token
    }

    /// `erpd --data-dir <data> <args…>`.
    pub fn cli(&self, args: &[&str]) -> CliOutput {
        run_cli(&self.data_dir, args)
    }

    pub fn cli_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> CliOutput {
        run_cli_with_env(&self.data_dir, args, env)
    }

    /// kill -9 the server and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            child.wait().expect("reaping the server");
        }
    }

    /// Start the server again on the same data directory with the same arguments.
    pub fn restart(&mut self) {
        let args = self.args.clone();
        self.restart_with(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }

    /// Kill the server (if it runs) and start it again on the same data directory with
    /// other `serve` arguments.
    pub fn restart_with(&mut self, args: &[&str]) {
        self.kill();
        self.args = args.iter().map(|s| s.to_string()).collect();
        let (child, base) = start_server(&self.data_dir, &self.args, &self.env, &self.stderr_log);
        self.child = Some(child);
        self.api = Api::new(base);
    }

    /// Send SIGTERM (does not wait).
    pub fn send_sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("running kill -TERM");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Wait (bounded) for the server process to exit on its own; `None` on timeout.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut().expect("the server is not running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the server wrote to stderr so far (every start of it).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    pub fn tenants_dir(&self) -> PathBuf {
        self.data_dir.join("tenants")
    }

    pub fn trash_dir(&self) -> PathBuf {
        self.data_dir.join("trash")
    }

    pub fn tenant_file(&self, id: &str) -> PathBuf {
        self.tenants_dir().join(format!("{id}.db"))
    }

    /// Create a tenant and return its owner token; panics unless 201.
    pub async fn create_tenant_ok(&self, id: &str) -> String {
        let resp = self.create_tenant(id).await;
        assert_eq!(resp.status, 201, "creating {id}: {}", resp.text);
        resp.json()["owner_token"]
            .as_str()
            .expect("owner_token")
            .to_owned()
    }

    pub async fn create_tenant(&self, id: &str) -> Resp {
        self.post_json("/v1/tenants", &self.platform_token, &tenant_body(id))
            .await
    }
}

/// The body of `POST /v1/tenants` for `id`.
pub fn tenant_body(id: &str) -> Value {
    json!({ "id": id, "name": format!("Tenant {id}"), "base_currency": "EUR" })
}

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

/// An HTTP client bound to one server; cheap to clone into tasks.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
}

/// A response, read to the end.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Resp {
    /// The body as JSON; panics (showing the body) if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Assert an RFC 9457 problem with this status; returns the body.
    pub fn assert_problem(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "content type of a {status}"
        );
        let body = self.json();
        assert!(body["type"].is_string(), "problem has a type: {body}");
        assert!(body["title"].is_string(), "problem has a title: {body}");
        assert_eq!(body["status"], status, "problem status: {body}");
        assert!(body["detail"].is_string(), "problem has a detail: {body}");
        body
    }
}

impl Api {
    fn new(base: String) -> Self {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(HTTP_TIMEOUT)
            .build()
            .expect("building the HTTP client");
        Self { base, client }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The `host:port` the server listens on.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        self.try_send(req).await.expect("sending the request")
    }

    /// As [`Api::send`], but a transport failure (e.g. a killed server) is an `Err`.
    pub async fn try_send(&self, req: reqwest::RequestBuilder) -> Result<Resp, reqwest::Error> {
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await?;
        Ok(Resp {
            status,
            headers,
            text,
        })
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.send(self.request(Method::GET, path).bearer_auth(token))
            .await
    }

    pub async fn get_no_auth(&self, path: &str) -> Resp {
        self.send(self.request(Method::GET, path)).await
    }

    pub async fn post_json(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.send(
            self.request(Method::POST, path)
                .bearer_auth(token)
                .json(body),
        )
        .await
    }

    pub async fn patch_json(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.send(
            self.request(Method::PATCH, path)
                .bearer_auth(token)
                .json(body),
        )
        .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.send(self.request(Method::DELETE, path).bearer_auth(token))
            .await
    }

    /// `GET /v1/t/{tenant}/me`.
    pub async fn me(&self, tenant: &str, token: &str) -> Resp {
        self.get(&format!("/v1/t/{tenant}/me"), token).await
    }

    pub async fn metrics(&self) -> String {
        let resp = self.get_no_auth("/metrics").await;
        assert_eq!(resp.status, 200, "GET /metrics: {}", resp.text);
        resp.text
    }

    /// One unlabelled series from `/metrics`; panics if it is absent.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.metrics().await;
        metric_value(&text, name)
            .unwrap_or_else(|| panic!("metric {name} not in /metrics:\n{text}"))
    }
}

/// The value of an unlabelled series in Prometheus text: the line that starts with the
/// name, then a space, then the value.
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// A well-formed tenant token for `tenant` that was never issued.
pub fn forged_tenant_token(tenant: &str) -> String {
    format!("erpdt_{tenant}_{}", "0123456789abcdef".repeat(4))
}

/// A response read off a raw socket.
#[derive(Debug)]
pub struct RawResp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Send a request line and headers exactly as given (no URL normalisation: `%2e%2e` stays
/// as it is), with `Connection: close`, and read the whole response.
pub async fn raw_get(addr: &str, target: &str, headers: &[(&str, &str)]) -> RawResp {
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connecting");
    stream.write_all(req.as_bytes()).await.expect("writing");
    read_raw_response(&mut stream).await
}

/// Read a full HTTP/1.1 response (the server closes the connection after it).
pub async fn read_raw_response(stream: &mut tokio::net::TcpStream) -> RawResp {
    let mut buf = Vec::new();
    tokio::time::timeout(HTTP_TIMEOUT, stream.read_to_end(&mut buf))
        .await
        .expect("the response did not arrive in time")
        .expect("reading the response");
    parse_raw_response(&buf)
}

pub fn parse_raw_response(buf: &[u8]) -> RawResp {
    let text = String::from_utf8_lossy(buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    RawResp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

// ---------------------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
pub struct CliOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    pub fn last_line(&self) -> &str {
        self.stdout.lines().last().unwrap_or_default().trim()
    }

    /// stdout and stderr together, for messages that may go to either.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// `erpd --data-dir <data_dir> <args…>`, bounded by [`CLI_TIMEOUT`].
pub fn run_cli(data_dir: &Path, args: &[&str]) -> CliOutput {
    run_cli_with_env(data_dir, args, &[])
}

/// `erpd --data-dir <data_dir> <args…>` started in the background (output piped), with
/// extra environment variables set after the `ERPD_*` ones are cleared.
pub fn spawn_cli_with_env(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(erpd_bin());
    cmd.arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    clear_erpd_env(&mut cmd);
    cmd.envs(env.iter().copied());
    cmd.spawn().expect("spawning the erpd CLI")
}

/// [`run_cli`] with extra environment variables (set after the `ERPD_*` ones are cleared).
pub fn run_cli_with_env(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> CliOutput {
    let mut child = spawn_cli_with_env(data_dir, args, env);
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + CLI_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("erpd {args:?} did not finish within {CLI_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    CliOutput {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------------------------
// Files and SQLite
// ---------------------------------------------------------------------------------------

/// Every path (files and directories) under `dir`, relative to it.
pub fn list_tree(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            out.insert(path.strip_prefix(dir).unwrap_or(&path).to_path_buf());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            }
        }
    }
    out
}

/// File names in one directory.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Open a SQLite file read-only (the server may have it open).
pub fn open_ro(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()))
}

/// `MAX(version)` of refinery's history table.
pub fn schema_version(conn: &rusqlite::Connection) -> i64 {
    conn.query_row(
        "SELECT MAX(version) FROM refinery_schema_history",
        [],
        |r| r.get(0),
    )
    .expect("reading refinery_schema_history")
}

pub fn has_table(conn: &rusqlite::Connection, name: &str) -> bool {
    conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .expect("reading sqlite_schema")
        == 1
}

/// The tenant migrations erpd embeds (`migrations/tenant/V<n>__<name>.sql`), by version.
pub fn tenant_migrations() -> Vec<(i64, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/tenant");
    let mut found: Vec<(i64, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let version = name.strip_prefix('V')?.split_once("__")?.0.parse().ok()?;
            name.ends_with(".sql").then(|| (version, e.path()))
        })
        .collect();
    found.sort();
    assert!(
        !found.is_empty(),
        "no tenant migrations in {}",
        dir.display()
    );
    found
}

/// The tenant schema version this build of erpd writes: its highest migration.
pub fn tenant_schema_version() -> i64 {
    tenant_migrations().last().expect("migrations").0
}

/// The schema objects of a SQLite file, `(type, name) -> sql`, without SQLite's own and
/// refinery's history table.
fn schema_objects(conn: &rusqlite::Connection) -> BTreeMap<(String, String), Option<String>> {
    let mut stmt = conn
        .prepare(
            "SELECT type, name, sql FROM sqlite_schema \
             WHERE name NOT LIKE 'sqlite_%' AND name != 'refinery_schema_history'",
        )
        .unwrap();
    stmt.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// Make a (stopped server's) tenant file look one migration behind: undo the latest
/// migration — drop every object it created, remove its history row. Returns the tables
/// it dropped. (What the latest migration created is found by replaying the earlier
/// migrations into memory and comparing schemas; a migration that alters an earlier
/// table cannot be undone this way, and this panics rather than guess.)
pub fn downgrade_one_migration(path: &Path) -> Vec<String> {
    let migrations = tenant_migrations();
    let (latest, _) = migrations.last().unwrap();
    let earlier = rusqlite::Connection::open_in_memory().unwrap();
    for (_, sql) in &migrations[..migrations.len() - 1] {
        earlier
            .execute_batch(&std::fs::read_to_string(sql).unwrap())
            .unwrap_or_else(|e| panic!("replaying {}: {e}", sql.display()));
    }
    let before = schema_objects(&earlier);
    let conn = rusqlite::Connection::open(path).expect("opening the tenant file");
    let now = schema_objects(&conn);
    for (key, sql) in &before {
        assert_eq!(
            now.get(key),
            Some(sql),
            "V{latest} changes {key:?}; downgrade_one_migration cannot undo that"
        );
    }
    let added: Vec<&(String, String)> = now.keys().filter(|k| !before.contains_key(*k)).collect();
    let mut script = String::new();
    for kind in ["trigger", "view", "index", "table"] {
        for (_, name) in added.iter().filter(|(t, _)| t == kind) {
            script.push_str(&format!("DROP {kind} IF EXISTS \"{name}\";\n"));
        }
    }
    script.push_str(&format!(
        "DELETE FROM refinery_schema_history WHERE version = {latest};"
    ));
    conn.execute_batch(&script)
        .unwrap_or_else(|e| panic!("downgrading with {script}: {e}"));
    assert_eq!(schema_version(&conn), migrations[migrations.len() - 2].0);
    added
        .iter()
        .filter(|(t, _)| t == "table")
        .map(|(_, n)| n.clone())
        .collect()
}

/// Poll `check` every 20 ms until it returns `Some`, for at most `timeout`.
pub async fn poll_until<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
