//! Identity and cross-tenant access: login failures and their rate limit, revoked tokens,
//! deactivated users and role changes taking effect on the very next request (the
//! principal cache is invalidated), access grants for platform operators, and probing
//! one tenant's ids on another tenant's path.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::fixtures::*;
use crate::helpers::*;

#[tokio::test]
async fn an_unknown_email_and_a_wrong_password_get_the_same_401() {
    let t = tenant("login-same").await;
    t.create_user("known@example.com", &["viewer"]).await;

    let wrong_password = t.login("known@example.com", "not-the-password").await;
    let unknown_email = t.login("nobody@example.com", "not-the-password").await;

    wrong_password.assert_problem(401);
    unknown_email.assert_problem(401);
    assert_eq!(wrong_password.text, unknown_email.text);
}

#[tokio::test]
async fn a_deactivated_user_with_the_right_password_gets_the_same_401_as_a_wrong_password() {
    let t = tenant("login-inactive").await;
    let id = t.create_user("gone@example.com", &["viewer"]).await;
    let resp = t
        .app
        .patch_json(
            &t.path(&format!("users/{id}")),
            &t.owner,
            &json!({"active": false}),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);

    let inactive = t.login("gone@example.com", PASSWORD).await;
    let wrong_password = t.login("gone@example.com", "not-the-password").await;

    inactive.assert_problem(401);
    assert_eq!(inactive.text, wrong_password.text);
}

#[tokio::test]
async fn after_five_failed_logins_the_next_attempt_is_429_even_with_the_right_password() {
    let t = tenant("login-limit").await;
    t.create_user("target@example.com", &["viewer"]).await;
    for i in 0..5 {
        let resp = t.login("target@example.com", "not-the-password").await;
        assert_eq!(resp.status, 401, "attempt {i}: {}", resp.text);
    }

    let locked = t.login("target@example.com", PASSWORD).await;

    locked.assert_problem(429);
    let other = t
        .login("owner-of-nothing@example.com", "not-the-password")
        .await;
    assert_eq!(
        other.status, 401,
        "other emails are not locked: {}",
        other.text
    );
}

#[tokio::test]
async fn repeated_failed_logins_for_an_unknown_email_are_limited_too() {
    let t = tenant("login-limit-unknown").await;
    for i in 0..5 {
        let resp = t.login("ghost@example.com", "not-the-password").await;
        assert_eq!(resp.status, 401, "attempt {i}: {}", resp.text);
    }

    let sixth = t.login("ghost@example.com", "not-the-password").await;

    sixth.assert_problem(429);
}

#[tokio::test]
async fn a_rate_limited_login_says_when_to_retry() {
    let t = tenant("login-retry-after").await;
    t.create_user("target@example.com", &["viewer"]).await;
    for _ in 0..5 {
        t.login("target@example.com", "not-the-password").await;
    }

    let locked = t.login("target@example.com", PASSWORD).await;

    locked.assert_problem(429);
    let secs: u64 = locked
        .header("retry-after")
        .unwrap_or_else(|| panic!("429 without Retry-After: {:?}", locked.headers))
        .parse()
        .expect("Retry-After is whole seconds");
    assert!((1..=15 * 60).contains(&secs), "Retry-After {secs}");
}

/// The caller's tokens, as listed by `GET tokens`.
async fn tokens_of(t: &Tenant, token: &str) -> Vec<Value> {
    let resp = t.app.get(&t.path("tokens"), token).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.json()["items"].as_array().expect("items").clone()
}

#[tokio::test]
async fn a_revoked_token_is_401_on_the_very_next_request() {
    let t = tenant("revoke").await;
    let (_, session) = t.user("sales@example.com", &["sales"]).await;
    let created = t
        .app
        .post_json(&t.path("tokens"), &session, &json!({"name": "script"}))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let (token_id, personal) = (
        created.json()["id"].as_str().unwrap().to_owned(),
        created.json()["token"].as_str().unwrap().to_owned(),
    );
    // Warm the principal cache with the token about to be revoked.
    assert_eq!(t.app.me(&t.id, &personal).await.status, 200);
    assert_eq!(t.list(&personal, "customers", &[]).await.status, 200);

    let revoke = t
        .app
        .delete(&t.path(&format!("tokens/{token_id}")), &session)
        .await;

    assert_eq!(revoke.status, 204, "{}", revoke.text);
    t.list(&personal, "customers", &[])
        .await
        .assert_problem(401);
    t.app.me(&t.id, &personal).await.assert_problem(401);
    assert_eq!(
        t.app.me(&t.id, &session).await.status,
        200,
        "the user's other token still works"
    );
    let listed = tokens_of(&t, &session).await;
    let entry = listed
        .iter()
        .find(|tok| tok["id"] == token_id.as_str())
        .expect("the revoked token is still listed");
    assert!(entry["revoked_at"].is_string(), "{entry}");
    assert!(
        listed.iter().all(|tok| tok.get("token").is_none()),
        "secrets are never listed: {listed:?}"
    );
}

#[tokio::test]
async fn a_token_revoked_by_the_owner_is_401_on_the_very_next_request() {
    let t = tenant("revoke-by-owner").await;
    let (_, session) = t.user("sales@example.com", &["sales"]).await;
    assert_eq!(t.app.me(&t.id, &session).await.status, 200);
    let token_id = tokens_of(&t, &session).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let revoke = t
        .app
        .delete(&t.path(&format!("tokens/{token_id}")), &t.owner)
        .await;

    assert_eq!(revoke.status, 204, "{}", revoke.text);
    t.app.me(&t.id, &session).await.assert_problem(401);
}

#[tokio::test]
async fn a_deactivated_users_token_is_401_on_the_very_next_request() {
    let t = tenant("deactivate").await;
    let (id, token) = t.user("sales@example.com", &["sales"]).await;
    assert_eq!(t.list(&token, "customers", &[]).await.status, 200);

    let resp = t
        .app
        .patch_json(
            &t.path(&format!("users/{id}")),
            &t.owner,
            &json!({"active": false}),
        )
        .await;

    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.json()["active"], false);
    t.list(&token, "customers", &[]).await.assert_problem(401);
}

#[tokio::test]
async fn a_deleted_users_token_is_401_on_the_very_next_request() {
    let t = tenant("delete-user").await;
    let (id, token) = t.user("sales@example.com", &["sales"]).await;
    assert_eq!(t.list(&token, "customers", &[]).await.status, 200);

    let resp = t
        .app
        .delete(&t.path(&format!("users/{id}")), &t.owner)
        .await;

    assert_eq!(resp.status, 204, "{}", resp.text);
    t.list(&token, "customers", &[]).await.assert_problem(401);
}

#[tokio::test]
async fn a_demotion_takes_effect_on_the_very_next_request() {
    let t = tenant("demote").await;
    let (id, token) = t.user("acc@example.com", &["accountant"]).await;
    let before = t
        .create_ok(
            &token,
            "customers",
            &json!({"name": "A", "credit_limit": "10.00"}),
        )
        .await;
    assert_eq!(before["credit_limit"], "10.00");
    let cid = before["id"].as_str().unwrap();

    let resp = t
        .app
        .patch_json(
            &t.path(&format!("users/{id}")),
            &t.owner,
            &json!({"roles": ["viewer"]}),
        )
        .await;

    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.json()["roles"], json!(["viewer"]));
    let write = t
        .app
        .post_json(&t.path("customers"), &token, &json!({"name": "B"}))
        .await;
    write.assert_problem(403);
    let read = t.get_one(&token, "customers", cid).await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert!(
        read.json().get("credit_limit").is_none(),
        "a viewer no longer sees the credit limit: {}",
        read.text
    );
}

#[tokio::test]
async fn a_promotion_takes_effect_on_the_very_next_request() {
    let t = tenant("promote").await;
    let (id, token) = t.user("v@example.com", &["viewer"]).await;
    t.app
        .post_json(&t.path("customers"), &token, &json!({"name": "B"}))
        .await
        .assert_problem(403);

    let resp = t
        .app
        .patch_json(
            &t.path(&format!("users/{id}")),
            &t.owner,
            &json!({"roles": ["accountant"]}),
        )
        .await;

    assert_eq!(resp.status, 200, "{}", resp.text);
    let created = t
        .create_ok(
            &token,
            "customers",
            &json!({"name": "B", "credit_limit": "5.00"}),
        )
        .await;
    assert_eq!(created["credit_limit"], "5.00");
}

#[tokio::test]
async fn a_customer_id_of_one_tenant_is_404_on_another_tenants_path() {
    let t = tenant("tenant-a").await;
    let owner_b = t.app.create_tenant_ok("tenant-b").await;
    let row = t
        .create_ok(&t.owner, "customers", &sample_body("customers", 1))
        .await;
    let id = row["id"].as_str().unwrap();
    let on_b = format!("/v1/t/tenant-b/customers/{id}");
    let never = "/v1/t/tenant-b/customers/0190aaaa-0000-7000-8000-000000000000";

    let get = t.app.get(&on_b, &owner_b).await;
    let patch = t
        .app
        .patch_json(&on_b, &owner_b, &json!({"name": "Probed"}))
        .await;
    let delete = t.app.delete(&on_b, &owner_b).await;
    let restore = t
        .app
        .send(
            t.app
                .request(Method::POST, &format!("{on_b}/restore"))
                .bearer_auth(&owner_b),
        )
        .await;
    let unknown = t.app.get(never, &owner_b).await;

    for resp in [&get, &patch, &delete, &restore] {
        resp.assert_problem(404);
        assert_eq!(
            resp.text, unknown.text,
            "indistinguishable from an unknown id"
        );
    }
    let still = t.get_one(&t.owner, "customers", id).await.json();
    assert_eq!(still["name"], row["name"]);
    assert_eq!(still["version"], 1);
}

#[tokio::test]
async fn tenant_a_token_on_tenant_b_path_with_an_id_of_b_is_404() {
    let t = tenant("tenant-a2").await;
    let owner_b = t.app.create_tenant_ok("tenant-b2").await;
    let row = t
        .app
        .post_json(
            "/v1/t/tenant-b2/products",
            &owner_b,
            &sample_body("products", 1),
        )
        .await;
    assert_eq!(row.status, 201, "{}", row.text);
    let id = row.json()["id"].as_str().unwrap().to_owned();

    let resp = t
        .app
        .get(&format!("/v1/t/tenant-b2/products/{id}"), &t.owner)
        .await;

    resp.assert_problem(404);
}

async fn grant(t: &Tenant, body: &Value) -> Resp {
    t.app
        .post_json(
            &format!("/v1/tenants/{}/access-grants", t.id),
            &t.app.platform_token,
            body,
        )
        .await
}

#[tokio::test]
async fn an_access_grant_gives_the_operator_a_token_with_the_granted_roles_only() {
    let t = tenant("granted").await;
    let customer = t
        .create_ok(
            &t.owner,
            "customers",
            &json!({"name": "A", "credit_limit": "10.00"}),
        )
        .await;
    t.app
        .get(&t.path("customers"), &t.app.platform_token)
        .await
        .assert_problem(403);

    let resp = grant(
        &t,
        &json!({"reason": "ticket 42: customer cannot log in", "ttl_seconds": 600, "roles": ["viewer"]}),
    )
    .await;

    assert_eq!(resp.status, 201, "{}", resp.text);
    let body = resp.json();
    let token = body["token"].as_str().expect("token").to_owned();
    let expires = body["expires_at"].as_str().expect("expires_at");
    assert!(expires.ends_with('Z'), "{expires}");
    let items = t.list_ok(&token, "customers", &[]).await;
    assert_eq!(items.len(), 1);
    assert!(items[0].get("credit_limit").is_none(), "viewer: {items:?}");
    let write = t
        .app
        .patch_json(
            &t.path(&format!("customers/{}", customer["id"].as_str().unwrap())),
            &token,
            &json!({"name": "Changed by an operator"}),
        )
        .await;
    write.assert_problem(403);
    t.app
        .get("/v1/t/other/customers", &token)
        .await
        .assert_problem(404);
}

#[tokio::test]
async fn an_access_grant_is_recorded_in_the_platform_and_the_tenant_audit_logs() {
    let t = tenant("granted-audit").await;
    let reason = "ticket 43: reconcile invoices";

    let resp = grant(
        &t,
        &json!({"reason": reason, "ttl_seconds": 600, "roles": ["viewer"]}),
    )
    .await;

    assert_eq!(resp.status, 201, "{}", resp.text);
    let request_id = resp.header("x-request-id").expect("request id").to_owned();
    let platform = t
        .app
        .get("/v1/audit-log?limit=500", &t.app.platform_token)
        .await;
    assert_eq!(platform.status, 200, "{}", platform.text);
    let entry = platform.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "access_grant.create")
        .cloned()
        .unwrap_or_else(|| panic!("no access_grant.create in {}", platform.text));
    assert_eq!(entry["tenant"], t.id.as_str());
    assert_eq!(entry["details"]["reason"], reason, "{entry}");
    assert_eq!(entry["request_id"], request_id.as_str(), "{entry}");
    assert!(
        entry["actor"].as_str().unwrap().starts_with("platform:"),
        "{entry}"
    );

    let tenant_log = t.audit(&t.owner, &[("entity", "access-grants")]).await;
    assert_eq!(tenant_log.len(), 1, "{tenant_log:#?}");
    let e = &tenant_log[0];
    assert_eq!(e["action"], "create");
    assert_eq!(e["request_id"], request_id.as_str(), "{e}");
    assert!(e["actor"].as_str().unwrap().starts_with("platform:"), "{e}");
    let logged_reason = &e["changes"]["reason"];
    assert!(
        *logged_reason == json!(reason) || *logged_reason == json!([null, reason]),
        "the tenant's entry carries the reason: {e}"
    );
}

#[tokio::test]
async fn an_access_grant_outside_1_to_86400_seconds_is_422_and_issues_nothing() {
    let t = tenant("granted-ttl").await;

    for ttl in [0, 86_401, -5] {
        let resp = grant(
            &t,
            &json!({"reason": "ticket 44", "ttl_seconds": ttl, "roles": ["viewer"]}),
        )
        .await;

        resp.assert_problem(422);
        assert!(
            error_fields(&resp).iter().any(|f| f == "ttl_seconds"),
            "ttl {ttl}: {}",
            resp.text
        );
    }
    let tenant_log = t.audit(&t.owner, &[("entity", "access-grants")]).await;
    assert!(tenant_log.is_empty(), "{tenant_log:#?}");
}

#[tokio::test]
async fn an_access_grant_token_is_401_once_its_ttl_has_passed() {
    let t = tenant("granted-expiry").await;
    let resp = grant(
        &t,
        &json!({"reason": "ticket 45", "ttl_seconds": 2, "roles": ["viewer"]}),
    )
    .await;
    assert_eq!(resp.status, 201, "{}", resp.text);
    let token = resp.json()["token"].as_str().unwrap().to_owned();
    // Used (and cached) while valid: at least one second of its life is left.
    assert_eq!(t.list(&token, "customers", &[]).await.status, 200);

    let expired = poll_until(Duration::from_secs(6), || {
        let t = &t;
        let token = token.clone();
        async move {
            let resp = t.list(&token, "customers", &[]).await;
            (resp.status != 200).then_some(resp)
        }
    })
    .await
    .expect("the grant token still works 6 s after a 2 s grant");

    expired.assert_problem(401);
}
