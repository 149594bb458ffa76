//! Backup and restore of one big tenant, and `erpd backup --all` over many small ones,
//! against the real server binary on loopback.
//!
//! `cargo bench --bench backup` (env `BENCH_MB`, default 100: the big tenant's file size;
//! `BENCH_FLEET`, default 10000: tenants for the `backup --all` run, 0 skips it;
//! `BENCH_FLEET_CONCURRENCY`, default 4: concurrent `POST /v1/tenants` to provision them).
//! Prints Markdown tables: `cp` of the (checkpointed) file vs SQLite's own copies vs the
//! online backup (HTTP download, and `erpd backup`, which fsyncs) vs a restore (HTTP
//! upload), as medians of 3; the latency of the tenant's other requests (reads and
//! writes) without and during back-to-back backups; and the fleet backup rate.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_erpd");

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data: &Path) -> Server {
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        // A 1 GB restore upload takes longer than the default 30 s request timeout allows
        // on a loaded machine.
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--request-timeout-secs",
            "600",
        ])
        .env("ERPD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning erpd");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines.next().expect("erpd exited").expect("reading stdout");
        if let Some(addr) = line.strip_prefix("erpd listening on ") {
            break addr.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server { child, base }
}

fn cli(data: &Path, args: &[&str]) -> String {
    cli_full(data, args).0
}

/// (last stdout line, stderr) of a successful `erpd` run.
fn cli_full(data: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("ERPD_LOG", "warn")
        .output()
        .expect("running erpd");
    assert!(
        out.status.success(),
        "erpd {args:?}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned();
    (last, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Create a tenant over HTTP; returns its owner token.
async fn create_tenant(client: &reqwest::Client, base: &str, pt: &str, id: &str) -> String {
    let resp = client
        .post(format!("{base}/v1/tenants"))
        .bearer_auth(pt)
        .json(&json!({ "id": id, "name": id, "base_currency": "EUR" }))
        .send()
        .await
        .expect("POST /v1/tenants");
    assert_eq!(resp.status().as_u16(), 201, "creating {id}");
    let v: serde_json::Value = resp.json().await.expect("tenant body");
    v["owner_token"].as_str().expect("owner token").to_owned()
}

/// `erpd backup --all` over `n` small tenants (provisioned over HTTP at `conc`, as the
/// foundation bench does), beside the running server. Prints its own table.
async fn fleet(root: &Path, n: usize, conc: usize) {
    let data = root.join("fleet");
    let server = start(&data);
    let base = server.base.clone();
    let pt = cli(&data, &["token", "create", "--platform"]);
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let load_before = loadavg();
    let t = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let (client, base, pt) = (&client, &base, &pt);
            async move { create_tenant(client, base, pt, &format!("fleet-{i:05}")).await }
        })
        .buffer_unordered(conc)
        .collect::<Vec<_>>()
        .await;
    let provision = t.elapsed().as_secs_f64();
    let tenant_bytes: u64 = std::fs::read_dir(data.join("tenants"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    let out = root.join("fleet-backups");
    let load_backup = loadavg();
    let t = Instant::now();
    let (summary, _) = cli_full(
        &data,
        &["backup", "--all", "--out-dir", out.to_str().unwrap()],
    );
    let took = t.elapsed().as_secs_f64();
    let files = std::fs::read_dir(&out).unwrap().count();
    assert_eq!(files, n, "one backup file per tenant");
    let copies = metrics_line(&client, &base, "erpd_backup_copies_total").await;
    println!(
        "\n`erpd backup --all` over {n} small tenants ({:.1} MiB of tenant files), beside the \
         running server:\n",
        tenant_bytes as f64 / 1048576.0
    );
    println!("| step | wall | rate | load average before |");
    println!("| --- | ---: | ---: | --- |");
    println!(
        "| provision {n} tenants (`POST /v1/tenants`, concurrency {conc}) | {provision:.1} s | {:.0} tenants/s | {load_before} |",
        n as f64 / provision
    );
    println!(
        "| `erpd backup --all` (fsync per file) | {took:.1} s | {:.0} tenants/s | {load_backup} |",
        n as f64 / took
    );
    println!("\nCLI summary: {summary}\nserver copies: {copies:?} (the CLI is another process)");
    drop(server);
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&data);
}

/// The `name{…} value` lines of one metric from a server's `/metrics`.
async fn metrics_line(client: &reqwest::Client, base: &str, name: &str) -> Vec<String> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(name))
        .map(str::to_owned)
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Grow the tenant file to about `mb` MiB with a padding table, then checkpoint.
fn fill(file: &Path, mb: usize) {
    let conn = rusqlite::Connection::open(file).expect("opening the tenant");
    conn.busy_timeout(Duration::from_secs(30)).unwrap();
    conn.execute_batch("CREATE TABLE IF NOT EXISTS bench_padding (b BLOB)")
        .unwrap();
    for _ in 0..mb {
        conn.execute_batch(
            "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 16) \
             INSERT INTO bench_padding SELECT randomblob(65536) FROM n; COMMIT;",
        )
        .unwrap();
    }
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
}

async fn timed_latencies(
    client: reqwest::Client,
    base: String,
    token: String,
    write: bool,
    stop: Arc<AtomicBool>,
) -> Vec<f64> {
    let mut out = Vec::new();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) && out.len() < 200_000 {
        i += 1;
        let started = Instant::now();
        let resp = if write {
            client
                .post(format!("{base}/v1/t/big/customers"))
                .bearer_auth(&token)
                .json(&json!({ "name": format!("bench-{i}") }))
                .send()
                .await
        } else {
            client
                .get(format!("{base}/v1/t/big/customers?limit=10"))
                .bearer_auth(&token)
                .send()
                .await
        };
        let ok = resp.is_ok_and(|r| r.status().is_success());
        assert!(ok, "a request failed during the benchmark");
        out.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    out
}

/// Reads and writes for `secs`, optionally with back-to-back backups; latencies in ms.
async fn load(
    client: &reqwest::Client,
    base: &str,
    pt: &str,
    token: &str,
    secs: u64,
    with_backups: bool,
) -> (Vec<f64>, Vec<f64>, usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn(timed_latencies(
        client.clone(),
        base.to_owned(),
        token.to_owned(),
        false,
        stop.clone(),
    ));
    let writer = tokio::spawn(timed_latencies(
        client.clone(),
        base.to_owned(),
        token.to_owned(),
        true,
        stop.clone(),
    ));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut backups = 0;
    while Instant::now() < deadline {
        if with_backups {
            let resp = client
                .get(format!("{base}/v1/tenants/big/backup"))
                .bearer_auth(pt)
                .send()
                .await
                .expect("backup");
            assert!(resp.status().is_success());
            let _ = resp.bytes().await.expect("backup body");
            backups += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    (
        reader.await.expect("reader"),
        writer.await.expect("writer"),
        backups,
    )
}

#[tokio::main]
async fn main() {
    let mb = env_usize("BENCH_MB", 100);
    let fleet_n = env_usize("BENCH_FLEET", 10_000);
    let fleet_conc = env_usize("BENCH_FLEET_CONCURRENCY", 4).max(1);
    let root = tempfile::tempdir().expect("temp dir");
    println!("load average at start: {}", loadavg());
    let data = root.path().join("data");
    let server = start(&data);
    let base = server.base.clone();
    let pt = cli(&data, &["token", "create", "--platform"]);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let token = create_tenant(&client, &base, &pt, "big").await;
    let file = data.join("tenants/big.db");
    fill(&file, mb);
    let size = std::fs::metadata(&file).unwrap().len();
    let mib = size as f64 / (1024.0 * 1024.0);

    let scratch = root.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let copy_to: PathBuf = scratch.join("cp.db");
    // Every timed copy starts with no dirty pages waiting (`sync`): at 1 GB, a copy that
    // follows another one otherwise pays for the previous one's write-back.
    let settle = || {
        let ok = Command::new("sync").status().unwrap();
        assert!(ok.success());
    };
    let timed = |out: &mut Vec<f64>, to: &Path, f: &mut dyn FnMut(&Path)| {
        let _ = std::fs::remove_file(to);
        settle();
        let t = Instant::now();
        f(to);
        out.push(t.elapsed().as_secs_f64());
        let _ = std::fs::remove_file(to);
    };
    let (mut cp, mut copy_sync, mut online, mut online_sync) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut vacuum, mut backup_api) = (Vec::new(), Vec::new());
    // Interleaved, so load from other processes hits every method alike.
    for _ in 0..3 {
        timed(&mut cp, &copy_to, &mut |to| {
            let ok = Command::new("cp").arg(&file).arg(to).status().unwrap();
            assert!(ok.success());
        });
        timed(&mut copy_sync, &scratch.join("cp-sync.db"), &mut |to| {
            std::fs::copy(&file, to).unwrap();
            std::fs::File::open(to).unwrap().sync_all().unwrap();
        });
        // erpd's backup copy itself (checkpoint, pinned snapshot, copy_file_range, header
        // check), without and with fsync, on a connection of this process.
        let src = rusqlite::Connection::open(&file).unwrap();
        for (durable, out) in [(false, &mut online), (true, &mut online_sync)] {
            timed(out, &scratch.join("online.db"), &mut |to| {
                let (_, method) =
                    erpd::tenancy::backup::online_copy(&src, to, durable, || {}).unwrap();
                assert_eq!(method, erpd::tenancy::backup::CopyMethod::FileCopy);
            });
        }
        // SQLite's own ways: VACUUM INTO (erpd's fallback) and the online backup API in
        // one step.
        timed(&mut vacuum, &scratch.join("vacuum.db"), &mut |to| {
            src.execute("VACUUM INTO ?1", [to.to_str().unwrap()])
                .unwrap();
        });
        timed(&mut backup_api, &scratch.join("api.db"), &mut |to| {
            let mut dst = rusqlite::Connection::open(to).unwrap();
            let b = rusqlite::backup::Backup::new(&src, &mut dst).unwrap();
            b.step(-1).unwrap();
        });
    }
    let mut download = Vec::new();
    let downloaded = scratch.join("download.db");
    for _ in 0..3 {
        settle();
        let t = Instant::now();
        let resp = client
            .get(format!("{base}/v1/tenants/big/backup"))
            .bearer_auth(&pt)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
        let bytes = resp.bytes().await.unwrap();
        std::fs::write(&downloaded, &bytes).unwrap();
        download.push(t.elapsed().as_secs_f64());
    }
    let mut cli_backup = Vec::new();
    let mut cli_methods = Vec::new();
    for _ in 0..3 {
        settle();
        let t = Instant::now();
        let (path, stderr) = cli_full(&data, &["backup", "big"]);
        cli_backup.push(t.elapsed().as_secs_f64());
        cli_methods.push(stderr.trim().rsplit(' ').next().unwrap_or("?").to_owned());
        let _ = std::fs::remove_file(path);
    }
    let download_methods = metrics_line(&client, &base, "erpd_backup_copies_total").await;
    let backup_bytes = std::fs::read(&downloaded).unwrap();
    let mut restore = Vec::new();
    for _ in 0..3 {
        settle();
        let t = Instant::now();
        let resp = client
            .put(format!("{base}/v1/tenants/big/backup"))
            .bearer_auth(&pt)
            .header("content-type", "application/vnd.sqlite3")
            .body(backup_bytes.clone())
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{:?}", resp.text().await);
        restore.push(t.elapsed().as_secs_f64());
    }
    for f in std::fs::read_dir(data.join("trash")).unwrap().flatten() {
        let _ = std::fs::remove_file(f.path());
    }

    let load_phase = loadavg();
    let (mut r0, mut w0, _) = load(&client, &base, &pt, &token, 5, false).await;
    let (mut r1, mut w1, n) = load(&client, &base, &pt, &token, 5, true).await;

    let (vacuum, backup_api) = (median(vacuum), median(backup_api));
    let (copy_sync, online, online_sync) = (median(copy_sync), median(online), median(online_sync));
    let (cp, dl, cb, rs) = (
        median(cp),
        median(download),
        median(cli_backup),
        median(restore),
    );
    println!(
        "tenant file: {mib:.1} MiB (backup download {:.1} MiB)\n",
        backup_bytes.len() as f64 / 1048576.0
    );
    println!("| operation | median of 3 | MiB/s | MB/s | ratio to cp |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (what, secs) in [
        ("`cp` of the checkpointed file", cp),
        ("`std::fs::copy` + fsync (in process)", copy_sync),
        (
            "erpd's online copy alone (checkpoint + pinned snapshot + copy, in process)",
            online,
        ),
        ("erpd's online copy + fsync (in process)", online_sync),
        ("`VACUUM INTO` alone (SQLite, in process)", vacuum),
        (
            "backup API `step(-1)` alone (SQLite, in process)",
            backup_api,
        ),
        ("`GET …/backup` (online copy + stream + write)", dl),
        ("`erpd backup ID` (online copy + fsync, new process)", cb),
        ("`PUT …/backup` (upload, checks, swap)", rs),
    ] {
        println!(
            "| {what} | {:.0} ms | {:.0} | {:.0} | {:.1}× |",
            secs * 1000.0,
            mib / secs,
            size as f64 / 1e6 / secs,
            secs / cp
        );
    }
    println!(
        "\nhow the copies were made: HTTP downloads {download_methods:?}, CLI {cli_methods:?}"
    );
    println!(
        "\nother requests of the same tenant, 5 s each (ms; load average before: {load_phase}):\n"
    );
    println!(
        "| phase | reads | read p50 | read p99 | read max | writes | write p50 | write p99 | write max |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (phase, r, w) in [
        ("no backup".to_owned(), &mut r0, &mut w0),
        (format!("{n} back-to-back backups"), &mut r1, &mut w1),
    ] {
        let (rn, wn) = (r.len(), w.len());
        println!(
            "| {phase} | {rn} | {:.2} | {:.2} | {:.1} | {wn} | {:.2} | {:.2} | {:.1} |",
            pct(r, 0.5),
            pct(r, 0.99),
            pct(r, 1.0),
            pct(w, 0.5),
            pct(w, 0.99),
            pct(w, 1.0)
        );
    }
    drop(server);
    // Free the big tenant's gigabytes before the fleet run.
    let _ = std::fs::remove_dir_all(&scratch);
    let _ = std::fs::remove_dir_all(&data);
    if fleet_n > 0 {
        fleet(root.path(), fleet_n, fleet_conc).await;
    }
    println!("\nload average at the end: {}", loadavg());
}
