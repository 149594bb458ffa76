//! `erpd migrate --all` against a migration that really fails for some tenants.
//!
//! Debug builds of erpd (the binary these tests run) know one hidden test migration,
//! V9000, switched on by `ERPD_TEST_EXTRA_MIGRATION=fail-if:<glob>`: its CHECK refuses
//! tenant ids matching the glob, so those tenants fail a genuine SQL migration inside
//! refinery's transaction and the others migrate. The server itself runs without the
//! variable; only the `erpd migrate` runs get it, as an operator would run a new binary.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::helpers::*;

/// The variable and version of erpd's test-only migration (src/schema.rs).
const EXTRA: &str = "ERPD_TEST_EXTRA_MIGRATION";
const EXTRA_VERSION: i64 = 9000;

fn migrate_with(app: &TestApp, args: &[&str], fail_glob: &str) -> CliOutput {
    let spec = format!("fail-if:{fail_glob}");
    let mut all = vec!["migrate"];
    all.extend_from_slice(args);
    app.cli_with_env(&all, &[(EXTRA, &spec)])
}

/// Every row of `tenant_migrations`: tenant → (from, to, status).
fn statuses(app: &TestApp) -> BTreeMap<String, (i64, i64, String)> {
    let conn = open_ro(&app.data_dir.join("platform.db"));
    let mut stmt = conn
        .prepare("SELECT tenant, from_version, to_version, status FROM tenant_migrations")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn version_of(app: &TestApp, id: &str) -> i64 {
    schema_version(&open_ro(&app.tenant_file(id)))
}

fn integrity_of(path: &Path) -> String {
    open_ro(path)
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

fn snapshots_of(app: &TestApp, id: &str) -> Vec<String> {
    file_names(&app.data_dir.join("backups"))
        .into_iter()
        .filter(|n| n.starts_with(&format!("{id}-pre-v")))
        .collect()
}

/// A stopped server's data dir with these tenants, all at this build's real schema.
async fn fleet(ids: &[&str]) -> (TestApp, BTreeMap<String, String>) {
    let mut app = spawn_app(&[]);
    let mut tokens = BTreeMap::new();
    for id in ids {
        tokens.insert(id.to_string(), app.create_tenant_ok(id).await);
    }
    app.kill();
    (app, tokens)
}

#[tokio::test]
async fn without_a_canary_the_fleet_migrates_past_failing_tenants_and_records_each_status() {
    let (app, _) = fleet(&["a-good", "b-bad", "c-good", "d-bad"]).await;
    let old = tenant_schema_version();
    let bad_before: Vec<Vec<u8>> = ["b-bad", "d-bad"]
        .iter()
        .map(|id| std::fs::read(app.tenant_file(id)).unwrap())
        .collect();

    let out = migrate_with(&app, &["--all"], "*-bad");

    assert!(!out.status.success(), "{out:?}");
    let failed_list = out.stdout.split("failed:\n").nth(1).unwrap_or_default();
    for id in ["b-bad", "d-bad"] {
        assert!(failed_list.contains(id), "{id} is named: {out:?}");
    }
    assert!(!failed_list.contains("good"), "{out:?}");
    let done = |id: &str| (id.to_owned(), (old, EXTRA_VERSION, "done".to_owned()));
    let failed = |id: &str| (id.to_owned(), (old, EXTRA_VERSION, "failed".to_owned()));
    assert_eq!(
        statuses(&app),
        BTreeMap::from([
            done("a-good"),
            failed("b-bad"),
            done("c-good"),
            failed("d-bad")
        ])
    );
    for id in ["a-good", "c-good"] {
        assert_eq!(version_of(&app, id), EXTRA_VERSION, "{id}");
        assert!(has_table(
            &open_ro(&app.tenant_file(id)),
            "erpd_test_extra_migration"
        ));
    }
    for (id, before) in ["b-bad", "d-bad"].iter().zip(&bad_before) {
        assert_eq!(
            &std::fs::read(app.tenant_file(id)).unwrap(),
            before,
            "{id}'s file is untouched by its failed migration"
        );
        assert_eq!(version_of(&app, id), old, "{id}");
        assert_eq!(integrity_of(&app.tenant_file(id)), "ok", "{id}");
    }
}

#[tokio::test]
async fn a_rerun_skips_the_migrated_tenants_and_finishes_the_rest_once_the_migration_is_fixed() {
    let (app, _) = fleet(&["a-good", "b-bad"]).await;
    assert!(!migrate_with(&app, &["--all"], "b-*").status.success());
    assert_eq!(snapshots_of(&app, "a-good").len(), 1);
    assert!(
        snapshots_of(&app, "b-bad").is_empty(),
        "a failed migration leaves no snapshot behind"
    );

    let again = migrate_with(&app, &["--all"], "b-*");

    assert!(!again.status.success(), "b-bad still fails: {again:?}");
    assert!(
        again.stdout.contains("a-good: up to date"),
        "the migrated tenant is skipped: {again:?}"
    );
    assert_eq!(
        snapshots_of(&app, "a-good").len(),
        1,
        "no second snapshot of a skipped tenant"
    );

    let fixed = migrate_with(&app, &["--all"], "no-tenant-matches-this");

    assert!(fixed.status.success(), "{fixed:?}");
    let st = statuses(&app);
    for id in ["a-good", "b-bad"] {
        assert_eq!(st[id].2, "done", "{id}: {st:?}");
        assert_eq!(version_of(&app, id), EXTRA_VERSION, "{id}");
    }
}

#[tokio::test]
async fn a_failing_canary_stops_the_run_at_the_first_failure_and_a_rerun_resumes() {
    let (app, _) = fleet(&["a-good", "b-bad", "c-good", "d-good"]).await;
    let old = tenant_schema_version();

    let canary = migrate_with(&app, &["--all", "--canary", "3"], "b-bad");

    assert!(!canary.status.success(), "{canary:?}");
    assert!(
        canary.stdout.contains("a canary tenant failed"),
        "{canary:?}"
    );
    let st = statuses(&app);
    assert_eq!(st["a-good"].2, "done", "{st:?}");
    assert_eq!(st["b-bad"].2, "failed", "{st:?}");
    for id in ["c-good", "d-good"] {
        assert!(
            !st.contains_key(id),
            "{id} (a canary after the failing one, or not a canary) was not started: {st:?}"
        );
        assert_eq!(version_of(&app, id), old, "{id} untouched");
        assert!(snapshots_of(&app, id).is_empty(), "{id}");
    }

    let resumed = migrate_with(&app, &["--all"], "b-bad");

    assert!(!resumed.status.success(), "b-bad still fails: {resumed:?}");
    assert!(resumed.stdout.contains("a-good: up to date"), "{resumed:?}");
    let st = statuses(&app);
    for id in ["a-good", "c-good", "d-good"] {
        assert_eq!(st[id].2, "done", "{id}: {st:?}");
        assert_eq!(version_of(&app, id), EXTRA_VERSION, "{id}");
    }
    assert_eq!(st["b-bad"].2, "failed");
    assert_eq!(version_of(&app, "b-bad"), old);
}

#[tokio::test]
async fn rollback_all_puts_back_the_snapshots_of_migrated_tenants_and_skips_failed_ones() {
    let (mut app, tokens) = fleet(&["a-good", "b-bad"]).await;
    let old = tenant_schema_version();
    assert!(!migrate_with(&app, &["--all"], "b-*").status.success());
    // The server (built without the variable) does not open a file migrated past it.
    app.restart();
    assert_eq!(app.me("a-good", &tokens["a-good"]).await.status, 503);
    app.kill();

    let back = app.cli(&["migrate", "--rollback", "--all"]);

    assert!(back.status.success(), "{back:?}");
    assert!(
        back.stdout.contains("b-bad: nothing to roll back"),
        "{back:?}"
    );
    let st = statuses(&app);
    assert_eq!(st["a-good"], (old, EXTRA_VERSION, "rolled_back".into()));
    assert_eq!(st["b-bad"].2, "failed", "a failed tenant keeps its status");
    for id in ["a-good", "b-bad"] {
        assert_eq!(version_of(&app, id), old, "{id}");
        assert_eq!(integrity_of(&app.tenant_file(id)), "ok", "{id}");
    }
    assert!(!has_table(
        &open_ro(&app.tenant_file("a-good")),
        "erpd_test_extra_migration"
    ));
    app.restart();
    for id in ["a-good", "b-bad"] {
        let me = app.me(id, &tokens[id]).await;
        assert_eq!(me.status, 200, "{id} serves again: {}", me.text);
    }
}

#[tokio::test]
async fn a_fleet_migration_killed_midway_leaves_whole_files_and_a_rerun_finishes_it() {
    let ids: Vec<String> = (0..30).map(|i| format!("t{i:02}")).collect();
    let (app, _) = fleet(&ids.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let old = tenant_schema_version();
    let spec = "fail-if:no-tenant-matches-this";
    let mut run = spawn_cli_with_env(&app.data_dir, &["migrate", "--all"], &[(EXTRA, spec)]);

    // kill -9 once a few tenants are done (or when the run ends first, on a fast machine).
    let started = poll_until(Duration::from_secs(30), || {
        let finished = run.try_wait().ok().flatten().is_some();
        let done = statuses(&app).values().filter(|s| s.2 == "done").count();
        async move { (finished || done >= 3).then_some(()) }
    })
    .await;
    assert!(started.is_some(), "the migration made progress");
    let _ = run.kill();
    let _ = run.wait();

    for id in &ids {
        let v = version_of(&app, id);
        assert!(v == old || v == EXTRA_VERSION, "{id} at {v}");
        assert_eq!(integrity_of(&app.tenant_file(id)), "ok", "{id}");
    }
    let rerun = migrate_with(&app, &["--all"], "no-tenant-matches-this");
    assert!(rerun.status.success(), "{rerun:?}");
    let st = statuses(&app);
    for id in &ids {
        assert_eq!(st[id.as_str()].2, "done", "{id}: {st:?}");
        assert_eq!(version_of(&app, id), EXTRA_VERSION, "{id}");
    }
}

#[tokio::test]
async fn a_tenant_left_pending_after_its_migration_committed_is_marked_done_by_a_rerun() {
    let (app, _) = fleet(&["solo"]).await;
    let old = tenant_schema_version();
    assert!(migrate_with(&app, &["solo"], "nothing").status.success());
    // What a kill -9 between the migration's commit and its status update leaves.
    rusqlite::Connection::open(app.data_dir.join("platform.db"))
        .unwrap()
        .execute(
            "UPDATE tenant_migrations SET status = 'pending' WHERE tenant = 'solo'",
            [],
        )
        .unwrap();

    let rerun = migrate_with(&app, &["--all"], "nothing");

    assert!(rerun.status.success(), "{rerun:?}");
    assert_eq!(
        statuses(&app)["solo"],
        (old, EXTRA_VERSION, "done".to_owned())
    );
    let back = app.cli(&["migrate", "--rollback", "solo"]);
    assert!(
        back.status.success(),
        "the snapshot is still known: {back:?}"
    );
    assert_eq!(version_of(&app, "solo"), old);
}
