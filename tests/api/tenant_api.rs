//! The tenant API gate (`/v1/t/{tenant}/…`): slugs, tokens, and request ids.

use reqwest::Method;

use crate::helpers::*;

#[tokio::test]
async fn a_token_of_one_tenant_is_404_on_another_tenant() {
    let app = spawn_app(&[]);
    let token_a = app.create_tenant_ok("alpha").await;
    app.create_tenant_ok("beta").await;

    let resp = app.me("beta", &token_a).await;

    resp.assert_problem(404);
}

#[tokio::test]
async fn a_platform_token_on_a_tenant_path_is_403() {
    let app = spawn_app(&[]);
    app.create_tenant_ok("alpha").await;

    let resp = app.me("alpha", &app.platform_token).await;

    resp.assert_problem(403);
}

#[tokio::test]
async fn a_tenant_request_without_a_token_is_401() {
    let app = spawn_app(&[]);
    app.create_tenant_ok("alpha").await;

    let resp = app.get_no_auth("/v1/t/alpha/me").await;

    resp.assert_problem(401);
}

#[tokio::test]
async fn a_garbage_token_on_a_tenant_path_is_401() {
    let app = spawn_app(&[]);
    app.create_tenant_ok("alpha").await;
    let never_issued = forged_tenant_token("alpha");

    for token in ["garbage", "erpdt_alpha_xyz", never_issued.as_str()] {
        let resp = app.me("alpha", token).await;

        resp.assert_problem(401);
    }
}

#[tokio::test]
async fn an_invalid_tenant_slug_in_the_path_is_400_and_touches_no_file() {
    let app = spawn_app(&[]);
    let token = app.create_tenant_ok("alpha").await;
    let auth = format!("Bearer {token}");
    let before = list_tree(&app.data_dir);

    for target in [
        "/v1/t/A/me",
        "/v1/t/%2e%2e/me",
        "/v1/t/a/me",
        "/v1/t/a%00b/me",
    ] {
        let resp = raw_get(app.addr(), target, &[("Authorization", &auth)]).await;

        assert_eq!(resp.status, 400, "{target}: {resp:?}");
        assert_eq!(
            resp.header("content-type"),
            Some("application/problem+json"),
            "{target}"
        );
        let body: serde_json::Value = serde_json::from_str(&resp.body).expect("JSON body");
        assert_eq!(body["status"], 400, "{target}: {body}");
    }

    assert_eq!(list_tree(&app.data_dir), before, "no file appeared");
}

#[tokio::test]
async fn an_unknown_tenant_with_a_well_formed_token_for_it_is_404() {
    let app = spawn_app(&[]);
    let before = list_tree(&app.data_dir);

    let resp = app.me("ghost", &forged_tenant_token("ghost")).await;

    resp.assert_problem(404);
    assert_eq!(list_tree(&app.data_dir), before, "no file appeared");
}

#[tokio::test]
async fn a_client_request_id_is_echoed() {
    let app = spawn_app(&[]);
    let token = app.create_tenant_ok("alpha").await;

    let resp = app
        .send(
            app.request(Method::GET, "/v1/t/alpha/me")
                .bearer_auth(&token)
                .header("x-request-id", "req-from-client-42"),
        )
        .await;

    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.header("x-request-id"), Some("req-from-client-42"));
}

#[tokio::test]
async fn a_request_id_is_generated_when_the_client_sends_none() {
    let app = spawn_app(&[]);
    let token = app.create_tenant_ok("alpha").await;

    let first = app.me("alpha", &token).await;
    let second = app.me("alpha", &token).await;
    let failed = app.get_no_auth("/v1/t/alpha/me").await;

    let ids: Vec<&str> = [&first, &second, &failed]
        .iter()
        .map(|r| {
            r.header("x-request-id")
                .expect("x-request-id on every response")
        })
        .collect();
    for id in &ids {
        assert!(id.len() >= 16, "a generated id, got {id:?}");
    }
    assert_ne!(ids[0], ids[1], "each request gets its own id");
    assert_ne!(ids[1], ids[2], "each request gets its own id");
}
