//! Process and operator endpoints (`/healthz`, `/readyz`, `/metrics`, the OpenAPI document)
//! and structured logs.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn healthz_reports_ok_without_a_token() {
    let app = spawn_app(&[]);

    let resp = app.get_no_auth("/healthz").await;

    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.json(), json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_is_200_when_the_data_dir_is_usable() {
    let app = spawn_app(&[]);

    let resp = app.get_no_auth("/readyz").await;

    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.json()["status"], "ok");
}

#[tokio::test]
async fn metrics_count_http_requests_in_prometheus_text() {
    let app = spawn_app(&[]);
    assert_eq!(app.get_no_auth("/healthz").await.status, 200);

    let resp = app.get_no_auth("/metrics").await;

    assert_eq!(resp.status, 200);
    assert!(
        resp.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{:?}",
        resp.headers
    );
    let line = resp
        .text
        .lines()
        .find(|l| l.starts_with("erpd_http_requests_total{") && l.contains("/healthz"))
        .unwrap_or_else(|| panic!("no /healthz request counted:\n{}", resp.text));
    let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(value >= 1.0, "{line}");
    assert!(metric_value(&resp.text, "erpd_tenant_pools_open").is_some());
    assert!(metric_value(&resp.text, "erpd_tenant_opens_total").is_some());
}

#[tokio::test]
async fn the_openapi_document_lists_every_served_path_and_method() {
    let app = spawn_app(&[]);

    let resp = app.get_no_auth("/v1/openapi.json").await;

    assert_eq!(resp.status, 200);
    let doc = resp.json();
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "openapi version: {}",
        doc["openapi"]
    );
    let expected: &[(&str, &[&str])] = &[
        ("/healthz", &["get"]),
        ("/readyz", &["get"]),
        ("/metrics", &["get"]),
        ("/v1/openapi.json", &["get"]),
        ("/v1/tenants", &["get", "post"]),
        ("/v1/tenants/{id}", &["get", "patch", "delete"]),
        ("/v1/tenants/{id}/restore", &["post"]),
        ("/v1/tenants/{id}/health", &["get"]),
        ("/v1/audit-log", &["get"]),
        ("/v1/t/{tenant}/me", &["get"]),
        ("/v1/t/{tenant}/sales-orders", &["get", "post"]),
        (
            "/v1/t/{tenant}/sales-orders/{id}",
            &["get", "patch", "delete"],
        ),
        ("/v1/t/{tenant}/sales-orders/{id}/confirm", &["post"]),
        ("/v1/t/{tenant}/sales-orders/{id}/deliver", &["post"]),
        ("/v1/t/{tenant}/sales-orders/{id}/invoice", &["post"]),
        ("/v1/t/{tenant}/purchase-orders/{id}/receive", &["post"]),
        ("/v1/t/{tenant}/purchase-orders/{id}/bill", &["post"]),
        ("/v1/t/{tenant}/invoices", &["get"]),
        ("/v1/t/{tenant}/invoices/{id}/credit", &["post"]),
        ("/v1/t/{tenant}/payments", &["get", "post"]),
        ("/v1/t/{tenant}/stock", &["get"]),
        ("/v1/t/{tenant}/stock-moves", &["get"]),
        ("/v1/t/{tenant}/stock-adjustments", &["get", "post"]),
        ("/v1/t/{tenant}/reports/ar-aging", &["get"]),
        ("/v1/t/{tenant}/reports/stock-valuation", &["get"]),
    ];
    let paths = doc["paths"].as_object().expect("paths");
    // Read-only documents do not advertise writes they do not serve.
    assert!(
        paths["/v1/t/{tenant}/invoices/{id}"]
            .get("delete")
            .is_none()
    );
    assert!(
        paths
            .get("/v1/t/{tenant}/sales-orders/{id}/restore")
            .is_none()
    );
    for (path, methods) in expected {
        let item = paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} is not documented; paths: {:?}", paths.keys()));
        for m in *methods {
            assert!(
                item.get(*m).is_some(),
                "{m} {path} is not documented: {item}"
            );
        }
    }
}

/// A field of a JSON log line, at the top level or in its `span` object.
fn log_field<'a>(line: &'a Value, key: &str) -> Option<&'a Value> {
    line.get(key)
        .or_else(|| line.get("span").and_then(|s| s.get(key)))
}

#[tokio::test]
async fn json_logs_carry_tenant_request_id_and_user_on_request_completion() {
    let app = spawn_app_with_env(&[], &[("ERPD_LOG_FORMAT", "json")]);
    let token = app.create_tenant_ok("acme").await;

    let resp = app
        .send(
            app.request(Method::GET, "/v1/t/acme/me")
                .bearer_auth(&token)
                .header("x-request-id", "log-probe-7f3a"),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    let user_id = resp.json()["user"]["id"].as_str().unwrap().to_owned();

    let completion = poll_until(Duration::from_secs(5), || async {
        app.stderr()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| {
                log_field(l, "message") == Some(&json!("request completed"))
                    && log_field(l, "request_id") == Some(&json!("log-probe-7f3a"))
            })
    })
    .await
    .unwrap_or_else(|| panic!("no completion line for the request:\n{}", app.stderr()));

    for line in app.stderr().lines().filter(|l| !l.trim().is_empty()) {
        let parsed: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line:?}"));
        assert!(parsed.is_object(), "{line}");
    }
    assert_eq!(
        log_field(&completion, "tenant"),
        Some(&json!("acme")),
        "{completion}"
    );
    assert_eq!(
        log_field(&completion, "user"),
        Some(&json!(user_id)),
        "{completion}"
    );
    assert_eq!(
        log_field(&completion, "status"),
        Some(&json!(200)),
        "{completion}"
    );
}
