//! Online backup and validated, atomic restore: `GET/PUT /v1/tenants/{id}/backup`,
//! `erpd backup`, `erpd restore`, and what `erpd check` says about a torn copy.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

const SQLITE: &str = "application/vnd.sqlite3";

/// `GET /v1/tenants/{id}/backup` → (status, content type, bytes).
async fn download(api: &Api, token: &str, id: &str) -> (u16, String, Vec<u8>) {
    let resp = api
        .request(Method::GET, &format!("/v1/tenants/{id}/backup"))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET backup");
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, ct, resp.bytes().await.expect("body").to_vec())
}

async fn download_ok(app: &TestApp, id: &str) -> Vec<u8> {
    let (status, ct, bytes) = download(app, &app.platform_token, id).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(ct, SQLITE);
    bytes
}

async fn upload(api: &Api, token: &str, id: &str, bytes: Vec<u8>, ct: &str) -> Resp {
    api.send(
        api.request(Method::PUT, &format!("/v1/tenants/{id}/backup"))
            .bearer_auth(token)
            .header("content-type", ct)
            .body(bytes),
    )
    .await
}

async fn add_customer(api: &Api, tenant: &str, token: &str, name: &str) -> Resp {
    api.post_json(
        &format!("/v1/t/{tenant}/customers"),
        token,
        &json!({ "name": name }),
    )
    .await
}

/// Names of the tenant's customers, over HTTP.
async fn customer_names(api: &Api, tenant: &str, token: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let path = match &cursor {
            Some(c) => format!("/v1/t/{tenant}/customers?limit=500&cursor={c}"),
            None => format!("/v1/t/{tenant}/customers?limit=500"),
        };
        let resp = api.get(&path, token).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        let body = resp.json();
        for item in body["items"].as_array().expect("items") {
            names.insert(item["name"].as_str().expect("name").to_owned());
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return names,
        }
    }
    panic!("more than 100 pages of customers");
}

fn write_temp(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("writing a temp file");
    path
}

fn integrity(conn: &rusqlite::Connection) -> String {
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check")
}

fn names_in_file(conn: &rusqlite::Connection) -> BTreeSet<String> {
    let mut stmt = conn.prepare("SELECT name FROM customers").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

async fn platform_actions(app: &TestApp, tenant: &str) -> Vec<String> {
    let resp = app
        .get(
            &format!("/v1/audit-log?tenant={tenant}&limit=500"),
            &app.platform_token,
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_under_write_load_is_consistent_and_holds_every_acknowledged_write() {
    let app = spawn_app(&[]);
    let token = app.create_tenant_ok("acme").await;
    let acked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (api, token, acked, stop) =
                (app.clone_api(), token.clone(), acked.clone(), stop.clone());
            tokio::spawn(async move {
                for i in 0..2_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let name = format!("w{w}-{i}");
                    let resp = add_customer(&api, "acme", &token, &name).await;
                    assert_eq!(resp.status, 201, "{}", resp.text);
                    acked.lock().unwrap().push(name);
                }
            })
        })
        .collect();
    let warmed = poll_until(Duration::from_secs(20), || {
        let n = acked.lock().unwrap().len();
        async move { (n >= 60).then_some(()) }
    })
    .await;
    assert!(warmed.is_some(), "writers made progress");

    let before: Vec<String> = acked.lock().unwrap().clone();
    let bytes = download_ok(&app, "acme").await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }

    let dir = tempfile::tempdir().unwrap();
    let file = write_temp(dir.path(), "acme.db", &bytes);
    let sqlite3 = std::process::Command::new("sqlite3")
        .arg(&file)
        .arg("PRAGMA integrity_check;")
        .output();
    if let Ok(out) = sqlite3 {
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "ok",
            "the sqlite3 CLI opens the backup"
        );
    }
    let conn = open_ro(&file);
    assert_eq!(integrity(&conn), "ok");
    let in_backup = names_in_file(&conn);
    for name in &before {
        assert!(
            in_backup.contains(name),
            "{name} acknowledged before the backup is in it"
        );
    }
    // Never a partial transaction: every customer in the copy has its audit entry.
    let orphans: i64 = conn
        .query_row(
            "SELECT count(*) FROM customers c WHERE NOT EXISTS \
             (SELECT 1 FROM audit_log a WHERE a.entity = 'customers' AND a.entity_id = c.id)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0, "customers without their audit entry");
    let record = app.get("/v1/tenants/acme", &app.platform_token).await;
    assert!(
        record.json()["last_backup_at"].is_string(),
        "{}",
        record.text
    );
    assert!(
        platform_actions(&app, "acme")
            .await
            .contains(&"tenant.backup".to_owned())
    );
    assert!(
        file_names(&app.data_dir.join("backups")).is_empty(),
        "the download's scratch copy is gone"
    );
    // Under write load (and no long reader) the fast path is taken: checkpoint, pin a
    // snapshot of the main file, copy it.
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(&metrics, "erpd_backup_copies_total{method=\"file_copy\"}"),
        Some(1.0),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_restore_puts_the_backed_up_data_back_and_keeps_the_replaced_file_in_the_trash() {
    let app = spawn_app(&[]);
    let token = app.create_tenant_ok("acme").await;
    assert_eq!(
        add_customer(&app, "acme", &token, "before").await.status,
        201
    );
    let bytes = download_ok(&app, "acme").await;
    assert_eq!(
        add_customer(&app, "acme", &token, "after").await.status,
        201
    );

    let resp = upload(&app, &app.platform_token, "acme", bytes, SQLITE).await;

    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.json()["id"], "acme");
    let names = customer_names(&app, "acme", &token).await;
    assert_eq!(names, BTreeSet::from(["before".to_owned()]));
    let trash = file_names(&app.trash_dir());
    assert_eq!(trash.len(), 1, "{trash:?}");
    let replaced = open_ro(&app.trash_dir().join(&trash[0]));
    assert!(
        names_in_file(&replaced).contains("after"),
        "the replaced file can be undone"
    );
    assert!(
        platform_actions(&app, "acme")
            .await
            .contains(&"tenant.restore_backup".to_owned())
    );
    let leftovers: Vec<String> = file_names(&app.tenants_dir())
        .into_iter()
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn restoring_into_an_unknown_id_creates_the_tenant_from_the_file() {
    let source = spawn_app(&[]);
    let token = source.create_tenant_ok("moving").await;
    assert_eq!(
        add_customer(&source, "moving", &token, "carried")
            .await
            .status,
        201
    );
    let bytes = download_ok(&source, "moving").await;
    let target = spawn_app(&[]);

    let resp = upload(
        &target,
        &target.platform_token,
        "moving",
        bytes,
        "application/octet-stream",
    )
    .await;

    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.json()["name"], "Tenant moving");
    let names = customer_names(&target, "moving", &token).await;
    assert!(
        names.contains("carried"),
        "the owner token travels with the file"
    );
}

#[tokio::test]
async fn bad_restore_files_are_refused_and_the_tenant_is_untouched() {
    let app = spawn_app(&[]);
    let token = app.create_tenant_ok("acme").await;
    let other_token = app.create_tenant_ok("other").await;
    assert_eq!(add_customer(&app, "acme", &token, "keep").await.status, 201);
    assert_eq!(
        add_customer(&app, "other", &other_token, "foreign")
            .await
            .status,
        201
    );
    let good = download_ok(&app, "acme").await;
    let foreign = download_ok(&app, "other").await;

    let dir = tempfile::tempdir().unwrap();
    let newer = write_temp(dir.path(), "newer.db", &good);
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
             VALUES (999, 'future', '', '0')",
            [],
        )
        .unwrap();
    let plain = dir.path().join("plain.db");
    rusqlite::Connection::open(&plain)
        .unwrap()
        .execute_batch("CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('hi');")
        .unwrap();
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    for b in &mut flipped[mid..mid + 4096] {
        *b ^= 0x5a;
    }
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"this is not a database at all".repeat(500)),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("corrupt", flipped),
        ("not erpd", std::fs::read(&plain).unwrap()),
        ("newer schema", std::fs::read(&newer).unwrap()),
        ("another tenant's file", foreign),
        ("empty", Vec::new()),
    ];
    for (what, bytes) in cases {
        let resp = upload(&app, &app.platform_token, "acme", bytes, SQLITE).await;
        let problem = resp.assert_problem(422);
        eprintln!("{what}: {}", problem["detail"]);
        assert_eq!(
            customer_names(&app, "acme", &token).await,
            BTreeSet::from(["keep".to_owned()]),
            "after the {what} restore"
        );
    }
    // The server answers 415 before reading the body and then drops the connection; on
    // a loaded machine the client could otherwise pick that connection for the next
    // request before it sees the close (BrokenPipe), so this one is not kept alive.
    let wrong_type = app
        .send(
            app.request(Method::PUT, "/v1/tenants/acme/backup")
                .bearer_auth(&app.platform_token)
                .header("content-type", "application/json")
                .header("connection", "close")
                .body(good),
        )
        .await;
    wrong_type.assert_problem(415);
    assert!(
        file_names(&app.trash_dir()).is_empty(),
        "nothing was swapped"
    );
    let leftovers: Vec<String> = file_names(&app.tenants_dir())
        .into_iter()
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let health = app
        .get("/v1/tenants/acme/health", &app.platform_token)
        .await;
    assert_eq!(health.json()["status"], "ok", "{}", health.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_in_flight_during_a_restore_do_not_fail() {
    let app = spawn_app(&[]);
    let token = app.create_tenant_ok("acme").await;
    assert_eq!(add_customer(&app, "acme", &token, "kept").await.status, 201);
    let bytes = download_ok(&app, "acme").await;
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let (api, token, stop) = (app.clone_api(), token.clone(), stop.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for n in 0..5_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let resp = if i % 2 == 0 {
                        api.me("acme", &token).await
                    } else {
                        api.get("/v1/t/acme/customers", &token).await
                    };
                    statuses.push((n, resp.status, resp.text));
                }
                statuses
            })
        })
        .collect();

    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let resp = upload(&app, &app.platform_token, "acme", bytes.clone(), SQLITE).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
    }
    stop.store(true, Ordering::Relaxed);

    let mut total = 0;
    for c in clients {
        for (n, status, text) in c.await.expect("client") {
            total += 1;
            assert_eq!(status, 200, "request {n} during restores: {text}");
        }
    }
    assert!(
        total > 20,
        "the clients ran during the restores ({total} requests)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_a_restore_leaves_the_old_or_the_new_tenant_complete() {
    let mut app = spawn_app(&[]);
    let token = app.create_tenant_ok("acme").await;
    assert_eq!(add_customer(&app, "acme", &token, "v1").await.status, 201);
    let backup = download_ok(&app, "acme").await;
    assert_eq!(add_customer(&app, "acme", &token, "v2").await.status, 201);
    // Make the restore file big enough that the kill lands inside the restore.
    let dir = tempfile::tempdir().unwrap();
    let padded = write_temp(dir.path(), "padded.db", &backup);
    rusqlite::Connection::open(&padded)
        .unwrap()
        .execute_batch(
            "CREATE TABLE padding (b BLOB); \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400) \
             INSERT INTO padding SELECT randomblob(65536) FROM n;",
        )
        .unwrap();
    let bytes = std::fs::read(&padded).unwrap();
    let old = BTreeSet::from(["v1".to_owned(), "v2".to_owned()]);
    let new = BTreeSet::from(["v1".to_owned()]);

    let mut outcomes = Vec::new();
    for delay_ms in [5u64, 40, 120, 300] {
        let (api, pt, b) = (app.clone_api(), app.platform_token.clone(), bytes.clone());
        let put = tokio::spawn(async move {
            let req = api
                .request(Method::PUT, "/v1/tenants/acme/backup")
                .bearer_auth(pt)
                .header("content-type", SQLITE)
                .body(b);
            api.try_send(req).await.map(|r| r.status)
        });
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        app.kill();
        let _ = put.await;
        app.restart();

        let names = customer_names(&app, "acme", &token).await;
        assert!(
            names == old || names == new,
            "after kill at {delay_ms} ms: {names:?}"
        );
        assert_eq!(integrity(&open_ro(&app.tenant_file("acme"))), "ok");
        let check = app.cli(&["check", "acme"]);
        assert!(
            check.status.success(),
            "erpd check after the kill: {check:?}"
        );
        outcomes.push(names == new);
        if names == new {
            // Back to the old data for the next round.
            let resp = add_customer(&app, "acme", &token, "v2").await;
            assert_eq!(resp.status, 201);
        }
    }
    eprintln!("restored before the kill: {outcomes:?}");
}

#[tokio::test]
async fn the_cli_backs_up_online_and_restores_offline() {
    let mut app = spawn_app(&[]);
    let token = app.create_tenant_ok("acme").await;
    app.create_tenant_ok("beta").await;
    assert_eq!(
        add_customer(&app, "acme", &token, "first").await.status,
        201
    );

    let out = app.cli(&["backup", "acme"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.contains("(file_copy)"),
        "another process's backup beside the server copies the file too: {out:?}"
    );
    let file = PathBuf::from(out.last_line());
    assert!(file.starts_with(app.data_dir.join("backups")), "{file:?}");
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("acme-") && name.ends_with("Z.db"),
        "{name}"
    );
    assert_eq!(integrity(&open_ro(&file)), "ok");

    let refused = app.cli(&["restore", "acme", file.to_str().unwrap()]);
    assert!(!refused.status.success(), "restore refuses while served");
    assert!(refused.all_output().contains("serving"), "{refused:?}");

    assert_eq!(
        add_customer(&app, "acme", &token, "second").await.status,
        201
    );
    app.kill();
    let restored = app.cli(&["restore", "acme", file.to_str().unwrap()]);
    assert!(restored.status.success(), "{restored:?}");
    let conn = open_ro(&app.tenant_file("acme"));
    assert_eq!(names_in_file(&conn), BTreeSet::from(["first".to_owned()]));
    drop(conn);

    // --all continues past a broken tenant and names it.
    std::fs::write(app.tenant_file("beta"), b"not a database".repeat(400)).unwrap();
    let out_dir = app.data_dir.join("all");
    let all = app.cli(&["backup", "--all", "--out-dir", out_dir.to_str().unwrap()]);
    assert!(
        !all.status.success(),
        "a failure makes the exit non-zero: {all:?}"
    );
    assert!(all.stdout.contains("beta"), "{all:?}");
    let written = file_names(&out_dir);
    assert_eq!(written.len(), 1, "{written:?}");
    assert!(written[0].starts_with("acme-"));
}

#[tokio::test]
async fn scratch_copies_of_interrupted_backups_are_removed_at_start() {
    let mut app = spawn_app(&[]);
    let scratch = app.data_dir.join("backups/.acme.0123.partial");
    let kept = app.data_dir.join("backups/acme-20261127T100000Z.db");
    std::fs::write(&scratch, b"half a copy").unwrap();
    std::fs::write(&kept, b"an operator's file").unwrap();

    app.restart();

    assert!(!scratch.exists(), "the scratch copy is removed");
    assert!(kept.exists(), "finished backups are kept");
}

#[tokio::test]
async fn erpd_migrate_snapshots_a_tenant_before_migrating_it() {
    let mut app = spawn_app(&[]);
    app.create_tenant_ok("behind").await;
    app.kill();
    downgrade_one_migration(&app.tenant_file("behind"));
    let old_version = schema_version(&open_ro(&app.tenant_file("behind")));

    let out = app.cli(&["migrate", "behind"]);

    assert!(out.status.success(), "{out:?}");
    let snapshots: Vec<String> = file_names(&app.data_dir.join("backups"))
        .into_iter()
        .filter(|n| n.starts_with("behind-pre-v"))
        .collect();
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    let snap = open_ro(&app.data_dir.join("backups").join(&snapshots[0]));
    assert_eq!(
        schema_version(&snap),
        old_version,
        "the snapshot is the pre-migration file"
    );
    assert_eq!(integrity(&snap), "ok");
    assert_eq!(
        schema_version(&open_ro(&app.tenant_file("behind"))),
        tenant_schema_version()
    );
}

#[tokio::test]
async fn migrate_dry_run_changes_nothing_and_a_failing_canary_stops_the_fleet() {
    let mut app = spawn_app(&[]);
    for id in ["a-broken", "b-behind", "c-behind"] {
        app.create_tenant_ok(id).await;
    }
    app.kill();
    downgrade_one_migration(&app.tenant_file("b-behind"));
    downgrade_one_migration(&app.tenant_file("c-behind"));
    let behind = schema_version(&open_ro(&app.tenant_file("b-behind")));
    std::fs::write(app.tenant_file("a-broken"), b"not a database".repeat(400)).unwrap();

    let plan = app.cli(&["migrate", "--all", "--dry-run"]);
    assert!(plan.stdout.contains("would migrate"), "{plan:?}");
    assert_eq!(
        schema_version(&open_ro(&app.tenant_file("b-behind"))),
        behind
    );

    let canary = app.cli(&["migrate", "--all", "--canary", "1"]);
    assert!(!canary.status.success(), "{canary:?}");
    assert!(canary.stdout.contains("a-broken"), "{canary:?}");
    assert_eq!(
        schema_version(&open_ro(&app.tenant_file("c-behind"))),
        behind,
        "after a failed canary the fleet is untouched"
    );

    let all = app.cli(&["migrate", "--all"]);
    assert!(!all.status.success(), "a-broken still fails: {all:?}");
    for id in ["b-behind", "c-behind"] {
        assert_eq!(
            schema_version(&open_ro(&app.tenant_file(id))),
            tenant_schema_version(),
            "{id} migrated past the failing tenant"
        );
    }
}

#[tokio::test]
async fn erpd_check_reports_a_torn_copy() {
    let mut app = spawn_app(&[]);
    let token = app.create_tenant_ok("acme").await;
    for i in 0..20 {
        assert_eq!(
            add_customer(&app, "acme", &token, &format!("c{i}"))
                .await
                .status,
            201
        );
    }
    app.kill();
    let path = app.tenant_file("acme");
    let ok = app.cli(&["check", "acme"]);
    assert!(ok.status.success(), "{ok:?}");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();

    let torn = app.cli(&["check", "acme"]);

    assert!(!torn.status.success(), "{torn:?}");
    assert!(torn.stdout.contains("acme"), "{torn:?}");
    assert!(torn.stdout.contains("truncated"), "{torn:?}");
}

#[tokio::test]
async fn purge_empties_the_trash_and_frees_the_id() {
    let app = spawn_app(&[]);
    app.create_tenant_ok("gone").await;
    assert_eq!(
        app.delete("/v1/tenants/gone", &app.platform_token)
            .await
            .status,
        204
    );
    assert_eq!(file_names(&app.trash_dir()).len(), 1);

    let out = app.cli(&["tenant", "purge", "gone"]);

    assert!(out.status.success(), "{out:?}");
    assert!(file_names(&app.trash_dir()).is_empty());
    let freed = poll_until(Duration::from_secs(10), || async {
        let resp = app.create_tenant("gone").await;
        (resp.status == 201).then_some(())
    })
    .await;
    assert!(freed.is_some(), "the purged id can be created again");
}

#[tokio::test]
async fn expired_trash_is_purged_while_serving() {
    let app = spawn_app(&["--trash-retention", "1s"]);
    app.create_tenant_ok("old").await;
    assert_eq!(
        app.delete("/v1/tenants/old", &app.platform_token)
            .await
            .status,
        204
    );

    let purged = poll_until(Duration::from_secs(15), || async {
        file_names(&app.trash_dir()).is_empty().then_some(())
    })
    .await;

    assert!(
        purged.is_some(),
        "trash still holds {:?}",
        file_names(&app.trash_dir())
    );
    // The purge removes the files first and then forgets the tenant in the catalog.
    let audited = poll_until(Duration::from_secs(5), || async {
        let actions = platform_actions(&app, "old").await;
        actions.contains(&"tenant.purge".to_owned()).then_some(())
    })
    .await;
    assert!(
        audited.is_some(),
        "{:?}",
        platform_actions(&app, "old").await
    );
}

#[tokio::test]
async fn a_tenant_over_its_size_quota_gets_507_on_writes_and_keeps_reading() {
    let mut app = spawn_app(&[]);
    let token = app.create_tenant_ok("small").await;
    app.kill();
    let size = std::fs::metadata(app.tenant_file("small")).unwrap().len();
    let quota = (size + 64 * 1024).to_string();
    app.restart_with(&["--max-tenant-bytes", &quota]);
    let address = "x".repeat(1000);

    let mut full: Option<Value> = None;
    for i in 0..2_000 {
        let resp = app
            .post_json(
                "/v1/t/small/customers",
                &token,
                &json!({ "name": format!("c{i}"), "address": address }),
            )
            .await;
        if resp.status == 507 {
            full = Some(resp.assert_problem(507));
            break;
        }
        assert_eq!(resp.status, 201, "{}", resp.text);
    }

    let problem = full.expect("the quota was reached");
    assert!(
        problem["detail"].as_str().unwrap().contains("quota"),
        "{problem}"
    );
    let read = app.get("/v1/t/small/customers", &token).await;
    assert_eq!(read.status, 200, "reads keep working: {}", read.text);
    let me = app.me("small", &token).await;
    assert_eq!(me.status, 200);
}

fn backups_of(dir: &Path, id: &str) -> Vec<String> {
    file_names(dir)
        .into_iter()
        .filter(|n| {
            n.strip_prefix(&format!("{id}-"))
                .is_some_and(|rest| rest.len() == "20261127T100000Z.db".len())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduled_backups_copy_changed_tenants_and_honour_retention() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("scheduled");
    let app = spawn_app(&[
        "--backup-dir",
        dir.to_str().unwrap(),
        "--backup-every",
        "1s",
        "--backup-keep",
        "2",
    ]);
    let token = app.create_tenant_ok("busy").await;
    app.create_tenant_ok("idle").await;

    let mut last = String::new();
    for i in 0..7 {
        last = format!("c{i}");
        assert_eq!(add_customer(&app, "busy", &token, &last).await.status, 201);
        tokio::time::sleep(Duration::from_millis(800)).await;
        let kept = backups_of(&dir, "busy");
        // 3 only for the moment between a new copy and the pruning of the oldest.
        assert!(kept.len() <= 3, "retention keeps 2: {kept:?}");
    }
    let idle_before = backups_of(&dir, "idle");
    let newest = poll_until(Duration::from_secs(10), || {
        let (dir, last) = (dir.clone(), last.clone());
        async move {
            let newest = backups_of(&dir, "busy").pop()?;
            let conn = rusqlite::Connection::open_with_flags(
                dir.join(&newest),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .ok()?;
            names_in_file(&conn).contains(&last).then_some(newest)
        }
    })
    .await;
    assert!(newest.is_some(), "a backup holds the last change");
    let pruned = poll_until(Duration::from_secs(5), || {
        let dir = dir.clone();
        async move { (backups_of(&dir, "busy").len() == 2).then_some(()) }
    })
    .await;
    assert!(pruned.is_some(), "{:?}", backups_of(&dir, "busy"));
    tokio::time::sleep(Duration::from_millis(2500)).await;

    assert!(
        !idle_before.is_empty(),
        "the idle tenant was backed up once"
    );
    assert_eq!(
        backups_of(&dir, "idle"),
        idle_before,
        "an unchanged tenant is not copied again"
    );
    let health = app
        .get("/v1/tenants/busy/health", &app.platform_token)
        .await;
    assert_eq!(health.json()["status"], "ok", "{}", health.text);
    assert!(health.json()["checks"]["last_backup_at"].is_string());
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("erpd_backups_total{result=\"ok\"}"),
        "backups are counted"
    );
}

/// Issue 4: a report run against a tenant file restored from a backup gives the same figures.
#[tokio::test]
async fn reports_on_a_restored_backup_give_the_backed_up_figures() {
    let app = spawn_app(&[]);
    let owner = app.create_tenant_ok("books").await;
    let post = |debit: &str, credit: &str, amount: &str| {
        json!({ "date": "2026-06-01", "post": true, "lines": [
            { "account_id": debit, "debit": amount }, { "account_id": credit, "credit": amount } ] })
    };
    for (d, c, a) in [
        ("acc-1100", "acc-3000", "1000.00"),
        ("acc-1200", "acc-4000", "250.10"),
        ("acc-6000", "acc-1100", "99.99"),
    ] {
        let r = app
            .post_json("/v1/t/books/journal-entries", &owner, &post(d, c, a))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let reports = [
        "/v1/t/books/reports/trial-balance?as_of=2026-12-31",
        "/v1/t/books/reports/balance-sheet?as_of=2026-12-31",
        "/v1/t/books/reports/profit-and-loss?from=2026-01-01&to=2026-12-31",
    ];
    let mut before = Vec::new();
    for r in reports {
        let resp = app.get(r, &owner).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        before.push(resp.json());
    }
    let backup = download_ok(&app, "books").await;
    // Change the books after the backup, so a no-op restore could not pass.
    let r = app
        .post_json(
            "/v1/t/books/journal-entries",
            &owner,
            &post("acc-1000", "acc-4000", "5.00"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_ne!(app.get(reports[0], &owner).await.json(), before[0]);

    let restored = upload(&app, &app.platform_token, "books", backup, SQLITE).await;
    assert_eq!(restored.status, 200, "{}", restored.text);

    for (r, expected) in reports.iter().zip(&before) {
        let resp = app.get(r, &owner).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        assert_eq!(&resp.json(), expected, "{r}");
    }
}

fn migration_row(app: &TestApp, id: &str) -> Option<(i64, i64, String)> {
    let conn = open_ro(&app.data_dir.join("platform.db"));
    conn.query_row(
        "SELECT from_version, to_version, status FROM tenant_migrations WHERE tenant = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .ok()
}

#[tokio::test]
async fn migrate_records_each_tenants_status_and_rollback_puts_the_snapshot_back() {
    let mut app = spawn_app(&[]);
    app.create_tenant_ok("fleet-a").await;
    app.kill();
    downgrade_one_migration(&app.tenant_file("fleet-a"));
    let old = schema_version(&open_ro(&app.tenant_file("fleet-a")));
    let new = tenant_schema_version();

    let out = app.cli(&["migrate", "fleet-a"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        migration_row(&app, "fleet-a"),
        Some((old, new, "done".into()))
    );
    assert_eq!(schema_version(&open_ro(&app.tenant_file("fleet-a"))), new);

    let back = app.cli(&["migrate", "--rollback", "fleet-a"]);

    assert!(back.status.success(), "{back:?}");
    assert_eq!(
        migration_row(&app, "fleet-a"),
        Some((old, new, "rolled_back".into()))
    );
    let file = open_ro(&app.tenant_file("fleet-a"));
    assert_eq!(
        schema_version(&file),
        old,
        "the pre-migration snapshot is back"
    );
    assert_eq!(integrity(&file), "ok");
    assert!(
        file_names(&app.trash_dir())
            .iter()
            .any(|n| n.starts_with("fleet-a.")),
        "the migrated file is kept in the trash"
    );
    let again = app.cli(&["migrate", "--rollback", "fleet-a"]);
    assert!(
        !again.status.success(),
        "nothing left to roll back: {again:?}"
    );
}

#[tokio::test]
async fn rollback_refuses_while_the_server_runs() {
    let app = spawn_app(&[]);
    app.create_tenant_ok("live").await;

    let out = app.cli(&["migrate", "--rollback", "live"]);

    assert!(!out.status.success(), "{out:?}");
}
