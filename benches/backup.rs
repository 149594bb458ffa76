//! Backup and restore of one big tenant, against the real server binary on loopback.
//!
//! `cargo bench --bench backup` (env `BENCH_MB`, default 100: the tenant file size).
//! Prints a Markdown table: `cp` of the (checkpointed) file vs the online backup (HTTP
//! download and `erpd backup`, which fsyncs) vs a restore (HTTP upload), as medians of 3,
//! and the latency of the tenant's other requests (reads and writes) without and during
//! back-to-back backups.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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
        .args(["serve", "--listen", "127.0.0.1:0"])
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
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("ERPD_LOG", "warn")
        .output()
        .expect("running erpd");
    assert!(out.status.success(), "erpd {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned()
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
    let mb: usize = std::env::var("BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let root = tempfile::tempdir().expect("temp dir");
    let data = root.path().join("data");
    let server = start(&data);
    let base = server.base.clone();
    let pt = cli(&data, &["token", "create", "--platform"]);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let created: serde_json::Value = client
        .post(format!("{base}/v1/tenants"))
        .bearer_auth(&pt)
        .json(&json!({ "id": "big", "name": "Big", "base_currency": "EUR" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = created["owner_token"]
        .as_str()
        .expect("owner token")
        .to_owned();
    let file = data.join("tenants/big.db");
    fill(&file, mb);
    let size = std::fs::metadata(&file).unwrap().len();
    let mib = size as f64 / (1024.0 * 1024.0);

    let scratch = root.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let copy_to: PathBuf = scratch.join("cp.db");
    let mut cp = Vec::new();
    for _ in 0..3 {
        let _ = std::fs::remove_file(&copy_to);
        let t = Instant::now();
        let ok = Command::new("cp")
            .arg(&file)
            .arg(&copy_to)
            .status()
            .unwrap();
        assert!(ok.success());
        cp.push(t.elapsed().as_secs_f64());
    }
    // The SQLite part alone, in this process: what erpd uses (VACUUM INTO) and the online
    // backup API in one step (the alternative considered in docs/DECISIONS.md).
    let (mut vacuum, mut backup_api) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let src = rusqlite::Connection::open(&file).unwrap();
        let to = scratch.join("vacuum.db");
        let _ = std::fs::remove_file(&to);
        let t = Instant::now();
        src.execute("VACUUM INTO ?1", [to.to_str().unwrap()])
            .unwrap();
        vacuum.push(t.elapsed().as_secs_f64());
        let to = scratch.join("api.db");
        let _ = std::fs::remove_file(&to);
        let t = Instant::now();
        let mut dst = rusqlite::Connection::open(&to).unwrap();
        let b = rusqlite::backup::Backup::new(&src, &mut dst).unwrap();
        b.step(-1).unwrap();
        drop(b);
        drop(dst);
        backup_api.push(t.elapsed().as_secs_f64());
    }
    let mut download = Vec::new();
    let downloaded = scratch.join("download.db");
    for _ in 0..3 {
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
    for _ in 0..3 {
        let t = Instant::now();
        let path = cli(&data, &["backup", "big"]);
        cli_backup.push(t.elapsed().as_secs_f64());
        let _ = std::fs::remove_file(path);
    }
    let backup_bytes = std::fs::read(&downloaded).unwrap();
    let mut restore = Vec::new();
    for _ in 0..3 {
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

    let (mut r0, mut w0, _) = load(&client, &base, &pt, &token, 5, false).await;
    let (mut r1, mut w1, n) = load(&client, &base, &pt, &token, 5, true).await;

    let (vacuum, backup_api) = (median(vacuum), median(backup_api));
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
    println!("| operation | median of 3 | MiB/s | ratio to cp |");
    println!("| --- | ---: | ---: | ---: |");
    for (what, secs) in [
        ("`cp` of the checkpointed file", cp),
        ("`VACUUM INTO` alone (SQLite, in process)", vacuum),
        (
            "backup API `step(-1)` alone (SQLite, in process)",
            backup_api,
        ),
        ("`GET …/backup` (VACUUM INTO + stream + write)", dl),
        ("`erpd backup ID` (VACUUM INTO + fsync, new process)", cb),
        ("`PUT …/backup` (upload, checks, swap)", rs),
    ] {
        println!(
            "| {what} | {:.0} ms | {:.0} | {:.1}× |",
            secs * 1000.0,
            mib / secs,
            secs / cp
        );
    }
    println!("\nother requests of the same tenant, 5 s each (ms):\n");
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
}
