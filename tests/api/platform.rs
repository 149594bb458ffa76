//! The platform API (`/v1/tenants…`, `/v1/audit-log`) with a platform token.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

// --- creating tenants ------------------------------------------------------------------

#[tokio::test]
async fn creating_a_tenant_returns_201_with_location_etag_and_the_full_record() {
    let app = spawn_app(&[]);

    let resp = app.create_tenant("acme").await;

    assert_eq!(resp.status, 201, "{}", resp.text);
    assert_eq!(resp.header("location"), Some("/v1/tenants/acme"));
    assert_eq!(resp.header("etag"), Some("\"1\""));
    let body = resp.json();
    let t = &body["tenant"];
    assert_eq!(t["id"], "acme");
    assert_eq!(t["name"], "Tenant acme");
    assert_eq!(t["status"], "active");
    assert_eq!(t["base_currency"], "EUR");
    assert_eq!(t["schema_version"], tenant_schema_version());
    assert!(t["size_bytes"].as_u64().is_some_and(|n| n > 0), "{t}");
    assert!(
        t["created_at"]
            .as_str()
            .is_some_and(|s| s.len() >= 20 && s.ends_with('Z')),
        "created_at is RFC 3339 UTC: {t}"
    );
    assert!(
        t["modules"].as_array().is_some_and(|m| !m.is_empty()),
        "{t}"
    );
    let owner_token = body["owner_token"].as_str().expect("owner_token");
    let secret = owner_token
        .strip_prefix("erpdt_acme_")
        .expect("owner token names its tenant");
    assert!(secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit()));
}

#[tokio::test]
async fn a_created_tenant_file_carries_its_identity_and_schema_history() {
    let app = spawn_app(&[]);

    let resp = app.create_tenant("acme").await;

    assert_eq!(resp.status, 201, "{}", resp.text);
    let path = app.tenant_file("acme");
    assert!(path.is_file(), "{} exists", path.display());
    let conn = open_ro(&path);
    let owner: String = conn
        .query_row("SELECT tenant_id FROM tenant", [], |r| r.get(0))
        .unwrap();
    assert_eq!(owner, "acme");
    let app_id: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap();
    assert_eq!(app_id, TENANT_APPLICATION_ID);
    assert_eq!(
        schema_version(&conn),
        resp.json()["tenant"]["schema_version"].as_i64().unwrap()
    );
}

#[tokio::test]
async fn the_owner_token_of_a_new_tenant_works_on_me() {
    let app = spawn_app(&[]);
    let token = app.create_tenant_ok("acme").await;

    let resp = app.me("acme", &token).await;

    assert_eq!(resp.status, 200, "{}", resp.text);
    let me = resp.json();
    assert_eq!(me["tenant"], "acme");
    assert_eq!(me["roles"], json!(["owner"]));
    assert_eq!(me["user"]["roles"], json!(["owner"]));
}

#[tokio::test]
async fn new_tenants_are_provisioned_from_a_template_file() {
    let app = spawn_app(&[]);

    let template = app
        .data_dir
        .join("templates")
        .join(format!("tenant-v{}.db", tenant_schema_version()));

    assert!(
        template.is_file(),
        "{} exists after start",
        template.display()
    );
    let conn = open_ro(&template);
    assert_eq!(schema_version(&conn), tenant_schema_version());
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM tenant", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0, "the template carries no identity");
}

#[tokio::test]
async fn invalid_tenant_ids_in_the_create_body_are_400_and_create_no_file() {
    let app = spawn_app(&[]);
    let long = "a".repeat(64);
    let before = list_tree(&app.data_dir);

    for bad in ["../x", "A", "a", long.as_str(), "%2e%2e", "a\u{0}b"] {
        let body = json!({ "id": bad, "name": "Bad", "base_currency": "EUR" });
        let resp = app
            .post_json("/v1/tenants", &app.platform_token, &body)
            .await;

        resp.assert_problem(400);
    }

    assert_eq!(list_tree(&app.data_dir), before, "no file appeared");
}

#[tokio::test]
async fn creating_a_tenant_twice_is_409() {
    let app = spawn_app(&[]);
    app.create_tenant_ok("acme").await;

    let resp = app.create_tenant("acme").await;

    resp.assert_problem(409);
}

#[tokio::test]
async fn creating_a_tenant_without_a_token_is_401() {
    let app = spawn_app(&[]);

    let resp = app
        .send(
            app.request(Method::POST, "/v1/tenants")
                .json(&tenant_body("acme")),
        )
        .await;

    resp.assert_problem(401);
    assert!(!app.tenant_file("acme").exists());
}

#[tokio::test]
async fn creating_a_tenant_with_an_invalid_token_is_401() {
    let app = spawn_app(&[]);
    let unknown = format!("erpdp_{}", "ab".repeat(32));

    for token in [unknown.as_str(), "garbage"] {
        let resp = app
            .post_json("/v1/tenants", token, &tenant_body("acme"))
            .await;

        resp.assert_problem(401);
    }
    assert!(!app.tenant_file("acme").exists());
}

#[tokio::test]
async fn creating_a_tenant_with_malformed_json_is_400() {
    let app = spawn_app(&[]);

    let resp = app
        .send(
            app.request(Method::POST, "/v1/tenants")
                .bearer_auth(&app.platform_token)
                .header("content-type", "application/json")
                .body(r#"{"id":"acme","name":"#),
        )
        .await;

    resp.assert_problem(400);
}

#[tokio::test]
async fn creating_a_tenant_with_a_text_body_is_415() {
    let app = spawn_app(&[]);

    let resp = app
        .send(
            app.request(Method::POST, "/v1/tenants")
                .bearer_auth(&app.platform_token)
                .header("content-type", "text/plain")
                .body(tenant_body("acme").to_string()),
        )
        .await;

    resp.assert_problem(415);
    assert!(!app.tenant_file("acme").exists());
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_app(&["--body-limit", "1024"]);
    let body = json!({ "id": "acme", "name": "x".repeat(2048), "base_currency": "EUR" });

    let resp = app
        .post_json("/v1/tenants", &app.platform_token, &body)
        .await;

    resp.assert_problem(413);
    assert!(!app.tenant_file("acme").exists());
}

#[tokio::test]
async fn an_unknown_field_in_the_create_body_is_422() {
    let app = spawn_app(&[]);
    let body = json!({ "id": "acme", "name": "Acme", "base_currency": "EUR", "colour": "red" });

    let resp = app
        .post_json("/v1/tenants", &app.platform_token, &body)
        .await;

    resp.assert_problem(422);
    assert!(!app.tenant_file("acme").exists());
}

#[tokio::test]
async fn a_lowercase_base_currency_is_422_naming_the_field() {
    let app = spawn_app(&[]);
    let body = json!({ "id": "acme", "name": "Acme", "base_currency": "eur" });

    let resp = app
        .post_json("/v1/tenants", &app.platform_token, &body)
        .await;

    let problem = resp.assert_problem(422);
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors[]")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["base_currency"]);
    assert!(!app.tenant_file("acme").exists());
}

// --- reading tenants -------------------------------------------------------------------

#[tokio::test]
async fn listing_tenants_pages_through_all_of_them_with_the_cursor() {
    let app = spawn_app(&[]);
    let ids = ["t-a", "t-b", "t-c", "t-d", "t-e"];
    for id in ids {
        app.create_tenant_ok(id).await;
    }

    let mut seen = Vec::new();
    let mut page_sizes = Vec::new();
    let mut path = "/v1/tenants?limit=2".to_owned();
    for _ in 0..10 {
        let resp = app.get(&path, &app.platform_token).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        let page = resp.json();
        let items = page["items"].as_array().expect("items").clone();
        page_sizes.push(items.len());
        seen.extend(items.iter().map(|t| t["id"].as_str().unwrap().to_owned()));
        match &page["next_cursor"] {
            Value::Null => break,
            Value::String(c) => path = format!("/v1/tenants?limit=2&cursor={c}"),
            other => panic!("next_cursor must be null or a string, got {other}"),
        }
    }

    assert_eq!(seen, ids);
    assert_eq!(page_sizes, [2, 2, 1]);
}

#[tokio::test]
async fn a_list_limit_outside_1_to_500_is_400() {
    let app = spawn_app(&[]);

    for limit in ["0", "501"] {
        let resp = app
            .get(&format!("/v1/tenants?limit={limit}"), &app.platform_token)
            .await;

        resp.assert_problem(400);
    }
}

#[tokio::test]
async fn getting_a_tenant_returns_it_with_its_etag() {
    let app = spawn_app(&[]);
    app.create_tenant_ok("acme").await;

    let resp = app.get("/v1/tenants/acme", &app.platform_token).await;

    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.header("etag"), Some("\"1\""));
    let t = resp.json();
    assert_eq!(t["id"], "acme");
    assert_eq!(t["status"], "active");
    assert_eq!(t["schema_version"], tenant_schema_version());
}

#[tokio::test]
async fn getting_an_unknown_tenant_is_404() {
    let app = spawn_app(&[]);

    let resp = app.get("/v1/tenants/nobody", &app.platform_token).await;

    resp.assert_problem(404);
}

#[tokio::test]
async fn getting_a_tenant_by_an_invalid_id_is_400() {
    let app = spawn_app(&[]);

    for bad in ["A", "a", "a_b"] {
        let resp = app
            .get(&format!("/v1/tenants/{bad}"), &app.platform_token)
            .await;

        resp.assert_problem(400);
    }
}

// --- suspending ------------------------------------------------------------------------

#[tokio::test]
async fn a_suspended_tenant_answers_423_until_it_is_resumed() {
    let app = spawn_app(&[]);
    let token = app.create_tenant_ok("acme").await;

    let suspended = app
        .patch_json(
            "/v1/tenants/acme",
            &app.platform_token,
            &json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(suspended.status, 200, "{}", suspended.text);
    assert_eq!(suspended.json()["status"], "suspended");
    app.me("acme", &token).await.assert_problem(423);

    let resumed = app
        .patch_json(
            "/v1/tenants/acme",
            &app.platform_token,
            &json!({"status": "active"}),
        )
        .await;
    assert_eq!(resumed.status, 200, "{}", resumed.text);
    assert_eq!(app.me("acme", &token).await.status, 200);
}

#[tokio::test]
async fn a_patch_with_a_stale_if_match_is_409_and_changes_nothing() {
    let app = spawn_app(&[]);
    let token = app.create_tenant_ok("acme").await;

    let resp = app
        .send(
            app.request(Method::PATCH, "/v1/tenants/acme")
                .bearer_auth(&app.platform_token)
                .header("if-match", "\"99\"")
                .json(&json!({"status": "suspended", "name": "Renamed"})),
        )
        .await;

    resp.assert_problem(409);
    let after = app.get("/v1/tenants/acme", &app.platform_token).await;
    assert_eq!(after.header("etag"), Some("\"1\""));
    assert_eq!(after.json()["status"], "active");
    assert_eq!(after.json()["name"], "Tenant acme");
    assert_eq!(app.me("acme", &token).await.status, 200);
}

#[tokio::test]
async fn suspending_a_tenant_with_the_cli_takes_effect_on_the_running_server() {
    let app = spawn_app(&[]);
    let token = app.create_tenant_ok("acme").await;
    assert_eq!(app.me("acme", &token).await.status, 200);

    let out = app.cli(&["tenant", "suspend", "acme"]);

    assert!(out.status.success(), "{out:?}");
    let status = poll_until(Duration::from_millis(1500), || async {
        let s = app.me("acme", &token).await.status;
        (s == 423).then_some(s)
    })
    .await;
    assert_eq!(
        status,
        Some(423),
        "the server saw the suspension within 1.5 s"
    );
}

// --- deleting and restoring ------------------------------------------------------------

#[tokio::test]
async fn deleting_a_tenant_moves_its_file_to_the_trash_and_hides_it() {
    let app = spawn_app(&[]);
    let token = app.create_tenant_ok("acme").await;
    assert_eq!(app.me("acme", &token).await.status, 200);

    let resp = app.delete("/v1/tenants/acme", &app.platform_token).await;

    assert_eq!(resp.status, 204, "{}", resp.text);
    app.get("/v1/tenants/acme", &app.platform_token)
        .await
        .assert_problem(404);
    app.me("acme", &token).await.assert_problem(404);
    assert!(!app.tenant_file("acme").exists(), "the file left tenants/");
    let listed = app.get("/v1/tenants", &app.platform_token).await.json();
    assert_eq!(listed["items"], json!([]), "deleted tenants are not listed");
    let trash: Vec<String> = file_names(&app.trash_dir())
        .into_iter()
        .filter(|n| n.starts_with("acme.") && n.ends_with(".db") && n.len() > "acme..db".len())
        .collect();
    assert_eq!(trash.len(), 1, "one trash/acme.<stamp>.db: {trash:?}");
}

#[tokio::test]
async fn restoring_a_deleted_tenant_brings_back_its_file_and_data() {
    let app = spawn_app(&[]);
    let token = app.create_tenant_ok("acme").await;
    let me_before = app.me("acme", &token).await.json();
    let deleted = app.delete("/v1/tenants/acme", &app.platform_token).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);

    let resp = app
        .send(
            app.request(Method::POST, "/v1/tenants/acme/restore")
                .bearer_auth(&app.platform_token),
        )
        .await;

    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.json()["status"], "active");
    assert!(app.tenant_file("acme").is_file(), "the file is back");
    let me_after = app.me("acme", &token).await;
    assert_eq!(me_after.status, 200, "{}", me_after.text);
    assert_eq!(me_after.json(), me_before, "the same owner, the same data");
    let conn = open_ro(&app.tenant_file("acme"));
    let (owner, name): (String, String) = conn
        .query_row("SELECT tenant_id, name FROM tenant", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((owner.as_str(), name.as_str()), ("acme", "Tenant acme"));
}

#[tokio::test]
async fn a_delete_with_a_stale_if_match_is_409_and_keeps_the_tenant() {
    let app = spawn_app(&[]);
    let token = app.create_tenant_ok("acme").await;

    let resp = app
        .send(
            app.request(Method::DELETE, "/v1/tenants/acme")
                .bearer_auth(&app.platform_token)
                .header("if-match", "\"99\""),
        )
        .await;

    resp.assert_problem(409);
    assert!(app.tenant_file("acme").is_file(), "the file did not move");
    let after = app.get("/v1/tenants/acme", &app.platform_token).await;
    assert_eq!(after.status, 200, "{}", after.text);
    assert_eq!(app.me("acme", &token).await.status, 200);
}

#[tokio::test]
async fn creating_a_tenant_with_the_id_of_a_deleted_one_is_409() {
    let app = spawn_app(&[]);
    app.create_tenant_ok("acme").await;
    let deleted = app.delete("/v1/tenants/acme", &app.platform_token).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);

    let resp = app.create_tenant("acme").await;

    resp.assert_problem(409);
    assert!(!app.tenant_file("acme").exists());
}

// --- audit and health ------------------------------------------------------------------

#[tokio::test]
async fn the_platform_audit_log_records_each_lifecycle_act_with_actor_and_request_id() {
    let app = spawn_app(&[]);
    let pt = app.platform_token.clone();
    let mut acts: Vec<(&str, String)> = Vec::new();
    let rid = |r: &Resp| {
        r.header("x-request-id")
            .expect("every response carries x-request-id")
            .to_owned()
    };

    let r = app.create_tenant("acme").await;
    assert_eq!(r.status, 201, "{}", r.text);
    acts.push(("tenant.create", rid(&r)));
    let r = app
        .patch_json("/v1/tenants/acme", &pt, &json!({"status": "suspended"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    acts.push(("tenant.suspend", rid(&r)));
    let r = app
        .patch_json("/v1/tenants/acme", &pt, &json!({"status": "active"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    acts.push(("tenant.resume", rid(&r)));
    let r = app
        .send(
            app.request(Method::DELETE, "/v1/tenants/acme")
                .bearer_auth(&pt)
                .header("x-request-id", "client-chosen-delete-1"),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(rid(&r), "client-chosen-delete-1");
    acts.push(("tenant.delete", rid(&r)));
    let r = app
        .send(
            app.request(Method::POST, "/v1/tenants/acme/restore")
                .bearer_auth(&pt),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    acts.push(("tenant.restore", rid(&r)));

    let log = app.get("/v1/audit-log?limit=500", &pt).await;

    assert_eq!(log.status, 200, "{}", log.text);
    let items = log.json()["items"].as_array().expect("items").clone();
    for (action, request_id) in &acts {
        let entry = items
            .iter()
            .find(|e| e["action"] == *action)
            .unwrap_or_else(|| panic!("no {action} entry in {items:#?}"));
        assert_eq!(entry["tenant"], "acme", "{entry}");
        assert_eq!(entry["request_id"], request_id.as_str(), "{entry}");
        assert!(
            entry["actor"]
                .as_str()
                .is_some_and(|a| a.starts_with("platform:")),
            "actor names the platform token: {entry}"
        );
        assert!(entry["at"].is_string(), "{entry}");
        assert!(entry.get("id").is_some_and(|v| !v.is_null()), "{entry}");
        assert!(entry.get("details").is_some(), "{entry}");
    }
    let request_ids: std::collections::HashSet<&String> = acts.iter().map(|(_, r)| r).collect();
    assert_eq!(request_ids.len(), acts.len(), "request ids are distinct");
}

#[tokio::test]
async fn tenant_health_reports_every_check_ok() {
    let app = spawn_app(&[]);
    app.create_tenant_ok("acme").await;

    let resp = app
        .get("/v1/tenants/acme/health", &app.platform_token)
        .await;

    assert_eq!(resp.status, 200, "{}", resp.text);
    let h = resp.json();
    assert_eq!(h["status"], "ok", "{h}");
    let c = &h["checks"];
    assert_eq!(c["open"], true, "{h}");
    assert_eq!(c["quick_check"], "ok", "{h}");
    assert_eq!(c["schema_version"], tenant_schema_version(), "{h}");
    assert_eq!(c["pending_jobs"], 0, "{h}");
    assert_eq!(c["last_backup_at"], Value::Null, "{h}");
    assert!(c.as_object().unwrap().contains_key("last_backup_at"), "{h}");
}
