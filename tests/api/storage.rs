//! The storage engine: opening tenant files (once, within a cap), migration policies,
//! schema versions, and the fleet commands `erpd migrate` / `erpd check`.

use std::io::{Seek, SeekFrom, Write};

use futures::StreamExt;
use futures::future::join_all;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_first_requests_to_a_cold_tenant_open_it_once() {
    let app = spawn_app(&[]);
    let token = app.create_tenant_ok("cold").await;
    let opens_before = app.metric("erpd_tenant_opens_total").await;

    let start = std::sync::Arc::new(tokio::sync::Barrier::new(100));
    let requests = (0..100).map(|_| {
        let (api, token, start) = (app.clone_api(), token.clone(), start.clone());
        tokio::spawn(async move {
            start.wait().await;
            api.me("cold", &token).await.status
        })
    });
    let statuses: Vec<u16> = join_all(requests)
        .await
        .into_iter()
        .map(|r| r.expect("request task"))
        .collect();

    assert!(
        statuses.iter().all(|s| *s == 200),
        "every first request is served: {statuses:?}"
    );
    let opens_after = app.metric("erpd_tenant_opens_total").await;
    assert_eq!(opens_after - opens_before, 1.0, "the file was opened once");
}

#[tokio::test(flavor = "multi_thread")]
async fn open_tenant_files_stay_within_max_open_tenants() {
    let app = spawn_app(&["--max-open-tenants", "8"]);
    let ids: Vec<String> = (0..50).map(|i| format!("cap-{i:02}")).collect();
    let tokens: Vec<String> = futures::stream::iter(ids.iter())
        .map(|id| app.create_tenant_ok(id))
        .buffered(4)
        .collect()
        .await;

    for (id, token) in ids.iter().zip(&tokens) {
        let resp = app.me(id, token).await;
        assert_eq!(resp.status, 200, "{id}: {}", resp.text);
        let open = app.metric("erpd_tenant_pools_open").await;
        assert!(open <= 8.0, "after {id}: {open} tenant files open, cap 8");
    }

    let evictions = app.metric("erpd_tenant_pool_evictions_total").await;
    assert!(
        evictions >= 42.0,
        "{evictions} evictions for 50 tenants, cap 8"
    );
}

#[tokio::test]
async fn with_explicit_migrations_a_behind_tenant_is_503_until_erpd_migrate_runs() {
    let mut app = spawn_app(&[]);
    let token = app.create_tenant_ok("behind").await;
    app.kill();
    downgrade_one_migration(&app.tenant_file("behind"));
    app.restart_with(&["--migrate", "explicit"]);

    let pending = app.me("behind", &token).await;

    pending.assert_problem(503);
    assert!(
        pending
            .header("retry-after")
            .is_some_and(|v| v.parse::<u64>().is_ok()),
        "503 carries Retry-After: {:?}",
        pending.headers
    );
    let out = app.cli(&["migrate", "behind"]);
    assert!(out.status.success(), "erpd migrate: {out:?}");
    let served = app.me("behind", &token).await;
    assert_eq!(served.status, 200, "{}", served.text);
    assert_eq!(
        schema_version(&open_ro(&app.tenant_file("behind"))),
        tenant_schema_version()
    );
}

#[tokio::test]
async fn with_migrate_on_open_a_behind_tenant_is_migrated_at_its_first_request() {
    let mut app = spawn_app(&[]);
    let token = app.create_tenant_ok("behind").await;
    app.kill();
    let dropped = downgrade_one_migration(&app.tenant_file("behind"));
    assert!(!dropped.is_empty(), "the latest migration created tables");
    app.restart();

    let resp = app.me("behind", &token).await;

    assert_eq!(resp.status, 200, "{}", resp.text);
    let conn = open_ro(&app.tenant_file("behind"));
    assert_eq!(schema_version(&conn), tenant_schema_version());
    for table in &dropped {
        assert!(has_table(&conn, table), "{table} exists again");
    }
    let record = app.get("/v1/tenants/behind", &app.platform_token).await;
    assert_eq!(record.json()["schema_version"], tenant_schema_version());
}

/// Stop the server, mark a tenant file as written by a newer erpd (schema 99), restart.
async fn app_with_future_tenant() -> (TestApp, String) {
    let mut app = spawn_app(&[]);
    let token = app.create_tenant_ok("future").await;
    app.kill();
    let conn = rusqlite::Connection::open(app.tenant_file("future")).unwrap();
    conn.execute(
        "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
         VALUES (99, 'future', '', '0')",
        [],
    )
    .unwrap();
    drop(conn);
    app.restart();
    (app, token)
}

#[tokio::test]
async fn a_tenant_file_with_a_newer_schema_is_503_naming_the_version() {
    let (app, token) = app_with_future_tenant().await;

    let resp = app.me("future", &token).await;

    let problem = resp.assert_problem(503);
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("99"),
        "the detail names the version: {detail}"
    );
    let conn = open_ro(&app.tenant_file("future"));
    assert_eq!(schema_version(&conn), 99, "the file was left alone");
}

#[tokio::test]
async fn erpd_check_fails_on_a_tenant_file_with_a_newer_schema() {
    let (app, _token) = app_with_future_tenant().await;

    let out = app.cli(&["check", "future"]);

    assert!(!out.status.success(), "erpd check must fail: {out:?}");
    assert!(out.all_output().contains("99"), "{out:?}");
}

/// Three tenants, the first of which (in id order) has a corrupt file; server stopped.
async fn fleet_with_a_corrupt_tenant() -> TestApp {
    let mut app = spawn_app(&[]);
    for id in ["fleet-a", "fleet-b", "fleet-c"] {
        app.create_tenant_ok(id).await;
    }
    app.kill();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(app.tenant_file("fleet-a"))
        .unwrap();
    let mut x: u32 = 0x2545_f491;
    let garbage: Vec<u8> = (100..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    f.seek(SeekFrom::Start(100)).unwrap();
    f.write_all(&garbage).unwrap();
    f.sync_all().unwrap();
    app
}

/// Assert a fleet report: the corrupt tenant is listed as failed, the others as ok.
fn assert_fleet_report(out: &CliOutput) {
    assert!(
        !out.status.success(),
        "a failing tenant fails the run: {out:?}"
    );
    let stdout = &out.stdout;
    for good in ["fleet-b", "fleet-c"] {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{good}:")))
            .unwrap_or_else(|| panic!("{good} is reported: {out:?}"));
        assert!(
            !line.to_lowercase().contains("fail"),
            "{good} is ok: {line:?}"
        );
    }
    let failed_section = stdout
        .split_once("failed:\n")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("a failed section: {out:?}"));
    assert!(
        failed_section.contains("fleet-a"),
        "fleet-a is listed as failed: {out:?}"
    );
    assert!(
        !failed_section.contains("fleet-b") && !failed_section.contains("fleet-c"),
        "only fleet-a failed: {out:?}"
    );
}

#[tokio::test]
async fn erpd_migrate_all_continues_past_a_corrupt_tenant() {
    let app = fleet_with_a_corrupt_tenant().await;

    let out = app.cli(&["migrate", "--all"]);

    assert_fleet_report(&out);
}

#[tokio::test]
async fn erpd_check_all_continues_past_a_corrupt_tenant() {
    let app = fleet_with_a_corrupt_tenant().await;

    let out = app.cli(&["check", "--all"]);

    assert_fleet_report(&out);
}
