//! Master and reference data over HTTP: optimistic concurrency (ETag / If-Match),
//! idempotent POST under concurrent duplicates, soft delete and restore with unique keys,
//! validation of money and references, currencies, tax rules and price-list items.

use std::collections::BTreeSet;

use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

use crate::fixtures::*;

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

// ---------------------------------------------------------------------------------------
// ETag / If-Match
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn get_carries_the_version_as_etag_and_a_patch_bumps_it() {
    let t = tenant("etag").await;
    let row = t
        .create_ok(&t.owner, "customers", &sample_body("customers", 1))
        .await;
    let one = t.path(&format!("customers/{}", id_of(&row)));

    let got = t.app.get(&one, &t.owner).await;
    let patched = t
        .app
        .send(
            t.app
                .request(Method::PATCH, &one)
                .bearer_auth(&t.owner)
                .header("if-match", "\"1\"")
                .json(&json!({"name": "Renamed"})),
        )
        .await;

    assert_eq!(got.header("etag"), Some("\"1\""));
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.header("etag"), Some("\"2\""));
    assert_eq!(patched.json()["version"], 2);
    assert_eq!(patched.json()["name"], "Renamed");
}

#[tokio::test]
async fn a_patch_with_a_stale_if_match_is_409_and_changes_nothing() {
    let t = tenant("stale-patch").await;
    let row = t
        .create_ok(&t.owner, "products", &sample_body("products", 1))
        .await;
    let id = id_of(&row);
    let one = t.path(&format!("products/{id}"));
    let first = t
        .app
        .patch_json(&one, &t.owner, &json!({"name": "Second name"}))
        .await;
    assert_eq!(first.status, 200, "{}", first.text);

    let stale = t
        .app
        .send(
            t.app
                .request(Method::PATCH, &one)
                .bearer_auth(&t.owner)
                .header("if-match", "\"1\"")
                .json(&json!({"name": "Lost update"})),
        )
        .await;

    stale.assert_problem(409);
    let now = t.get_one(&t.owner, "products", &id).await.json();
    assert_eq!(now["name"], "Second name");
    assert_eq!(now["version"], 2);
    let audit = t.audit_of("products", &id).await;
    assert_eq!(audit.len(), 2, "create and one update: {audit:#?}");
}

#[tokio::test]
async fn a_delete_with_a_stale_if_match_is_409_and_keeps_the_record() {
    let t = tenant("stale-delete").await;
    let row = t
        .create_ok(&t.owner, "warehouses", &sample_body("warehouses", 1))
        .await;
    let id = id_of(&row);
    let one = t.path(&format!("warehouses/{id}"));
    t.app
        .patch_json(&one, &t.owner, &json!({"name": "Renamed"}))
        .await;

    let stale = t
        .app
        .send(
            t.app
                .request(Method::DELETE, &one)
                .bearer_auth(&t.owner)
                .header("if-match", "\"1\""),
        )
        .await;
    let current = t
        .app
        .send(
            t.app
                .request(Method::DELETE, &one)
                .bearer_auth(&t.owner)
                .header("if-match", "\"2\""),
        )
        .await;

    stale.assert_problem(409);
    assert_eq!(current.status, 204, "{}", current.text);
}

// ---------------------------------------------------------------------------------------
// Idempotency-Key
// ---------------------------------------------------------------------------------------

async fn post_with_key(
    api: &crate::helpers::Api,
    path: &str,
    token: &str,
    key: &str,
    body: &Value,
) -> crate::helpers::Resp {
    api.send(
        api.request(Method::POST, path)
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_simultaneous_posts_with_one_idempotency_key_create_one_record() {
    let t = tenant("idem-race").await;
    let body = json!({"name": "Only once", "email": "once@example.com"});
    let path = t.path("customers");

    let responses = join_all((0..10).map(|_| {
        let (api, path, token, body) = (
            t.app.clone_api(),
            path.clone(),
            t.owner.clone(),
            body.clone(),
        );
        tokio::spawn(async move { post_with_key(&api, &path, &token, "race-key-1", &body).await })
    }))
    .await;

    let responses: Vec<_> = responses.into_iter().map(|r| r.expect("task")).collect();
    for r in &responses {
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let ids: BTreeSet<String> = responses.iter().map(|r| id_of(&r.json())).collect();
    assert_eq!(
        ids.len(),
        1,
        "every response names the same record: {ids:?}"
    );
    let locations: BTreeSet<Option<&str>> =
        responses.iter().map(|r| r.header("location")).collect();
    assert_eq!(locations.len(), 1, "{locations:?}");
    let rows = t
        .list_ok(&t.owner, "customers", &[("name", "Only once")])
        .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let audit = t.audit(&t.owner, &[("entity", "customers")]).await;
    assert_eq!(audit.len(), 1, "one create entry: {audit:#?}");
}

#[tokio::test]
async fn a_repeated_post_with_one_idempotency_key_replays_the_first_response() {
    let t = tenant("idem-replay").await;
    let body = sample_body("products", 1);
    let path = t.path("products");
    let first = post_with_key(&t.app, &path, &t.owner, "replay-1", &body).await;
    assert_eq!(first.status, 201, "{}", first.text);
    // A change in between does not alter what the replay says.
    let id = id_of(&first.json());
    t.app
        .patch_json(
            &t.path(&format!("products/{id}")),
            &t.owner,
            &json!({"name": "Later"}),
        )
        .await;

    let again = post_with_key(&t.app, &path, &t.owner, "replay-1", &body).await;

    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.json(), first.json());
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(t.list_ok(&t.owner, "products", &[]).await.len(), 1);
}

#[tokio::test]
async fn the_same_idempotency_key_with_another_body_is_422_and_creates_nothing() {
    let t = tenant("idem-other").await;
    let path = t.path("customers");
    let first = post_with_key(&t.app, &path, &t.owner, "key-2", &json!({"name": "First"})).await;
    assert_eq!(first.status, 201, "{}", first.text);

    let other = post_with_key(&t.app, &path, &t.owner, "key-2", &json!({"name": "Second"})).await;

    other.assert_problem(422);
    let rows = t.list_ok(&t.owner, "customers", &[]).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["name"], "First");
}

#[tokio::test]
async fn a_repeated_price_list_post_with_one_idempotency_key_creates_one_price_list() {
    let t = tenant("idem-price-list").await;
    let body = sample_body("price-lists", 1);
    let path = t.path("price-lists");
    let first = post_with_key(&t.app, &path, &t.owner, "pl-1", &body).await;
    assert_eq!(first.status, 201, "{}", first.text);

    let again = post_with_key(&t.app, &path, &t.owner, "pl-1", &body).await;

    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(id_of(&again.json()), id_of(&first.json()));
    assert_eq!(t.list_ok(&t.owner, "price-lists", &[]).await.len(), 1);
}

// ---------------------------------------------------------------------------------------
// Soft delete and restore
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_deleted_record_disappears_from_reads_and_include_deleted_shows_it() {
    let t = tenant("soft-delete").await;
    let keep = t
        .create_ok(&t.owner, "customers", &sample_body("customers", 1))
        .await;
    let gone = t
        .create_ok(&t.owner, "customers", &sample_body("customers", 2))
        .await;
    let gone_id = id_of(&gone);

    let del = t
        .app
        .delete(&t.path(&format!("customers/{gone_id}")), &t.owner)
        .await;

    assert_eq!(del.status, 204, "{}", del.text);
    t.get_one(&t.owner, "customers", &gone_id)
        .await
        .assert_problem(404);
    let live = t.list_ok(&t.owner, "customers", &[]).await;
    assert_eq!(live.len(), 1);
    assert_eq!(live[0]["id"], keep["id"]);
    let all = t
        .list_ok(&t.owner, "customers", &[("include_deleted", "true")])
        .await;
    assert_eq!(all.len(), 2, "{all:?}");
    let shown = all.iter().find(|c| c["id"] == gone_id.as_str()).unwrap();
    assert!(shown["deleted_at"].is_string(), "{shown}");
    let one = t
        .app
        .get(
            &t.path(&format!("customers/{gone_id}?include_deleted=true")),
            &t.owner,
        )
        .await;
    assert_eq!(one.status, 200, "{}", one.text);
}

#[tokio::test]
async fn include_deleted_is_403_for_a_role_without_delete_permission() {
    let t = tenant("soft-delete-403").await;
    let (_, sales) = t.user("sales@example.com", &["sales"]).await;
    let row = t
        .create_ok(&t.owner, "customers", &sample_body("customers", 1))
        .await;

    let list = t
        .list(&sales, "customers", &[("include_deleted", "true")])
        .await;
    let one = t
        .app
        .get(
            &t.path(&format!("customers/{}?include_deleted=true", id_of(&row))),
            &sales,
        )
        .await;

    list.assert_problem(403);
    one.assert_problem(403);
}

#[tokio::test]
async fn restoring_a_deleted_record_brings_it_back_with_a_new_version() {
    let t = tenant("restore").await;
    let row = t
        .create_ok(&t.owner, "suppliers", &sample_body("suppliers", 1))
        .await;
    let id = id_of(&row);
    t.app
        .delete(&t.path(&format!("suppliers/{id}")), &t.owner)
        .await;

    let restored = t.restore(&t.owner, "suppliers", &id).await;

    assert_eq!(restored.status, 200, "{}", restored.text);
    let body = restored.json();
    assert_eq!(body["version"], 3, "create, delete, restore: {body}");
    assert!(body.get("deleted_at").is_none(), "{body}");
    assert_eq!(restored.header("etag"), Some("\"3\""));
    assert_eq!(t.get_one(&t.owner, "suppliers", &id).await.status, 200);
    assert_eq!(t.list_ok(&t.owner, "suppliers", &[]).await.len(), 1);
}

#[tokio::test]
async fn restoring_a_live_record_is_404() {
    let t = tenant("restore-live").await;
    let row = t
        .create_ok(&t.owner, "products", &sample_body("products", 1))
        .await;

    let resp = t.restore(&t.owner, "products", &id_of(&row)).await;

    resp.assert_problem(404);
}

#[tokio::test]
async fn a_deleted_products_sku_can_be_reused_and_restoring_the_old_one_is_then_409() {
    let t = tenant("sku-reuse").await;
    let old = t
        .create_ok(&t.owner, "products", &json!({"sku": "A-1", "name": "Old"}))
        .await;
    let old_id = id_of(&old);
    let del = t
        .app
        .delete(&t.path(&format!("products/{old_id}")), &t.owner)
        .await;
    assert_eq!(del.status, 204, "{}", del.text);

    let new = t
        .app
        .post_json(
            &t.path("products"),
            &t.owner,
            &json!({"sku": "A-1", "name": "New"}),
        )
        .await;
    let restore = t.restore(&t.owner, "products", &old_id).await;

    assert_eq!(
        new.status, 201,
        "a deleted sku does not block: {}",
        new.text
    );
    restore.assert_problem(409);
    let live = t.list_ok(&t.owner, "products", &[("sku", "A-1")]).await;
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0]["name"], "New");
    let audit = t.audit_of("products", &old_id).await;
    let actions: Vec<&str> = audit
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["delete", "create"],
        "no restore entry for the refused restore"
    );
}

#[tokio::test]
async fn a_deleted_warehouses_code_can_be_reused_and_restoring_the_old_one_is_then_409() {
    let t = tenant("code-reuse").await;
    let old = t
        .create_ok(
            &t.owner,
            "warehouses",
            &json!({"code": "MAIN", "name": "Old"}),
        )
        .await;
    let old_id = id_of(&old);
    t.app
        .delete(&t.path(&format!("warehouses/{old_id}")), &t.owner)
        .await;

    let new = t
        .app
        .post_json(
            &t.path("warehouses"),
            &t.owner,
            &json!({"code": "MAIN", "name": "New"}),
        )
        .await;
    let restore = t.restore(&t.owner, "warehouses", &old_id).await;

    assert_eq!(new.status, 201, "{}", new.text);
    restore.assert_problem(409);
    t.get_one(&t.owner, "warehouses", &old_id)
        .await
        .assert_problem(404);
}

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_duplicate_live_sku_is_409_and_writes_nothing() {
    let t = tenant("dup-sku").await;
    t.create_ok(&t.owner, "products", &json!({"sku": "X", "name": "First"}))
        .await;

    let dup = t
        .app
        .post_json(
            &t.path("products"),
            &t.owner,
            &json!({"sku": "X", "name": "Second"}),
        )
        .await;

    dup.assert_problem(409);
    assert!(detail(&dup).contains("sku"), "{}", dup.text);
    assert_eq!(t.list_ok(&t.owner, "products", &[]).await.len(), 1);
    assert_eq!(t.audit(&t.owner, &[("entity", "products")]).await.len(), 1);
}

#[tokio::test]
async fn money_sent_as_a_json_number_is_422_naming_the_field_and_writes_nothing() {
    let t = tenant("float-money").await;
    let cases = [
        ("customers", json!({"name": "A", "credit_limit": 1500.5})),
        ("suppliers", json!({"name": "A", "credit_limit": 10})),
        (
            "products",
            json!({"sku": "F-1", "name": "A", "list_price": 9.99}),
        ),
        ("products", json!({"sku": "F-2", "name": "A", "cost": 1.25})),
        (
            "exchange-rates",
            json!({"from": "USD", "to": "EUR", "rate": 0.9, "date": "2026-01-01"}),
        ),
    ];

    for (c, body) in cases {
        let field = body
            .as_object()
            .unwrap()
            .iter()
            .find(|(_, v)| v.is_number())
            .map(|(k, _)| k.clone())
            .unwrap();

        let resp = t.app.post_json(&t.path(c), &t.owner, &body).await;

        resp.assert_problem(422);
        assert_eq!(error_fields(&resp), [field], "{c}: {}", resp.text);
        assert!(t.list_ok(&t.owner, c, &[]).await.is_empty(), "{c}");
    }
    assert!(
        t.audit(&t.owner, &[("entity", "customers")])
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn money_in_a_patch_as_a_json_number_is_422_and_changes_nothing() {
    let t = tenant("float-patch").await;
    let row = t
        .create_ok(
            &t.owner,
            "products",
            &json!({"sku": "P", "name": "P", "list_price": "5.00"}),
        )
        .await;
    let id = id_of(&row);

    let resp = t
        .app
        .patch_json(
            &t.path(&format!("products/{id}")),
            &t.owner,
            &json!({"list_price": 6.5}),
        )
        .await;

    resp.assert_problem(422);
    assert_eq!(error_fields(&resp), ["list_price"]);
    let now = t.get_one(&t.owner, "products", &id).await.json();
    assert_eq!(now["list_price"], "5.00");
    assert_eq!(now["version"], 1);
}

#[tokio::test]
async fn an_unknown_currency_is_422_naming_the_field() {
    let t = tenant("bad-currency").await;

    let customer = t
        .app
        .post_json(
            &t.path("customers"),
            &t.owner,
            &json!({"name": "A", "currency": "ZZZ"}),
        )
        .await;
    let list = t
        .app
        .post_json(
            &t.path("price-lists"),
            &t.owner,
            &json!({"name": "L", "currency": "eur"}),
        )
        .await;
    let rate = t
        .app
        .post_json(
            &t.path("exchange-rates"),
            &t.owner,
            &json!({"from": "ZZZ", "to": "EUR", "rate": "2", "date": "2026-01-01"}),
        )
        .await;

    customer.assert_problem(422);
    assert_eq!(error_fields(&customer), ["currency"]);
    list.assert_problem(422);
    assert_eq!(error_fields(&list), ["currency"]);
    rate.assert_problem(422);
    assert_eq!(error_fields(&rate), ["from"]);
    assert!(t.list_ok(&t.owner, "customers", &[]).await.is_empty());
}

#[tokio::test]
async fn a_negative_list_price_is_422_naming_the_field() {
    let t = tenant("negative-price").await;

    let resp = t
        .app
        .post_json(
            &t.path("products"),
            &t.owner,
            &json!({"sku": "N", "name": "N", "list_price": "-0.01"}),
        )
        .await;

    resp.assert_problem(422);
    assert_eq!(error_fields(&resp), ["list_price"]);
    assert!(t.list_ok(&t.owner, "products", &[]).await.is_empty());
}

#[tokio::test]
async fn money_with_more_decimals_than_its_currency_has_is_422() {
    let t = tenant("minor-units").await;

    let eur = t
        .app
        .post_json(
            &t.path("customers"),
            &t.owner,
            &json!({"name": "A", "credit_limit": "1.005"}),
        )
        .await;
    let jpy = t
        .app
        .post_json(
            &t.path("customers"),
            &t.owner,
            &json!({"name": "B", "currency": "JPY", "credit_limit": "100.5"}),
        )
        .await;
    let kwd = t
        .app
        .post_json(
            &t.path("customers"),
            &t.owner,
            &json!({"name": "C", "currency": "KWD", "credit_limit": "1.005"}),
        )
        .await;

    eur.assert_problem(422);
    assert_eq!(error_fields(&eur), ["credit_limit"]);
    jpy.assert_problem(422);
    assert_eq!(error_fields(&jpy), ["credit_limit"]);
    assert_eq!(kwd.status, 201, "KWD has three decimals: {}", kwd.text);
    assert_eq!(kwd.json()["credit_limit"], "1.005");
}

#[tokio::test]
async fn several_invalid_fields_are_all_listed_in_one_422() {
    let t = tenant("many-errors").await;

    let resp = t
        .app
        .post_json(
            &t.path("products"),
            &t.owner,
            &json!({"sku": "", "name": "N", "kind": "gadget", "uom": "parsec", "list_price": 3, "bogus": 1}),
        )
        .await;

    resp.assert_problem(422);
    let fields: BTreeSet<String> = error_fields(&resp).into_iter().collect();
    let expected: BTreeSet<String> = ["sku", "kind", "uom", "list_price", "bogus"]
        .map(String::from)
        .into();
    assert_eq!(fields, expected, "{}", resp.text);
    for e in resp.json()["errors"].as_array().unwrap() {
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    }
}

#[tokio::test]
async fn a_reference_to_a_deleted_price_list_is_422() {
    let t = tenant("bad-ref").await;
    let pl = t
        .create_ok(&t.owner, "price-lists", &sample_body("price-lists", 1))
        .await;
    let pl_id = id_of(&pl);
    t.app
        .delete(&t.path(&format!("price-lists/{pl_id}")), &t.owner)
        .await;

    let resp = t
        .app
        .post_json(
            &t.path("customers"),
            &t.owner,
            &json!({"name": "A", "price_list_id": pl_id}),
        )
        .await;

    resp.assert_problem(422);
    assert_eq!(error_fields(&resp), ["price_list_id"]);
}

#[tokio::test]
async fn changing_a_customers_currency_does_not_silently_change_its_credit_limit() {
    let t = tenant("currency-change").await;
    let (_, sales) = t.user("sales@example.com", &["sales"]).await;
    let row = t
        .create_ok(
            &t.owner,
            "customers",
            &json!({"name": "A", "credit_limit": "100.50"}),
        )
        .await;
    let id = id_of(&row);

    let resp = t
        .app
        .patch_json(
            &t.path(&format!("customers/{id}")),
            &sales,
            &json!({"currency": "KWD"}),
        )
        .await;

    let now = t.get_one(&t.owner, "customers", &id).await.json();
    if resp.status == 200 {
        assert_eq!(now["credit_limit"], "100.500", "the amount is kept: {now}");
    } else {
        assert!((400..500).contains(&resp.status), "{}", resp.text);
        assert_eq!(now["credit_limit"], "100.50", "{now}");
        assert_eq!(now["currency"], "EUR", "{now}");
    }
}

// ---------------------------------------------------------------------------------------
// Currencies, tax rules, price lists
// ---------------------------------------------------------------------------------------

async fn currency(t: &Tenant, code: &str) -> Value {
    let items = t.list_ok(&t.owner, "currencies", &[]).await;
    items
        .into_iter()
        .find(|c| c["code"] == code)
        .unwrap_or_else(|| panic!("{code} is not listed"))
}

#[tokio::test]
async fn only_the_base_currency_is_enabled_at_first_and_others_can_be_enabled_and_disabled() {
    let t = tenant("currencies").await;
    let eur = currency(&t, "EUR").await;
    let usd = currency(&t, "USD").await;
    assert_eq!(eur["enabled"], true, "{eur}");
    assert_eq!(usd["enabled"], false, "{usd}");
    assert_eq!(usd["source"], "platform", "{usd}");
    assert_eq!(usd["minor_units"], 2, "{usd}");
    assert_eq!(currency(&t, "JPY").await["minor_units"], 0);

    let on = t
        .put_json(
            &t.path("currencies/USD"),
            &t.owner,
            &json!({"enabled": true}),
        )
        .await;

    assert_eq!(on.status, 200, "{}", on.text);
    assert_eq!(on.json()["enabled"], true);
    let usd = currency(&t, "USD").await;
    assert_eq!(
        (usd["enabled"].clone(), usd["source"].clone()),
        (json!(true), json!("tenant"))
    );
    let off = t
        .put_json(
            &t.path("currencies/USD"),
            &t.owner,
            &json!({"enabled": false}),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.text);
    assert_eq!(currency(&t, "USD").await["enabled"], false);
}

#[tokio::test]
async fn the_base_currency_cannot_be_disabled() {
    let t = tenant("base-currency").await;

    let resp = t
        .put_json(
            &t.path("currencies/EUR"),
            &t.owner,
            &json!({"enabled": false}),
        )
        .await;

    resp.assert_problem(409);
    assert_eq!(currency(&t, "EUR").await["enabled"], true);
}

#[tokio::test]
async fn enabling_an_unknown_currency_is_404() {
    let t = tenant("unknown-currency").await;

    let resp = t
        .put_json(
            &t.path("currencies/ZZZ"),
            &t.owner,
            &json!({"enabled": true}),
        )
        .await;

    resp.assert_problem(404);
}

#[tokio::test]
async fn a_tenant_tax_rate_overrides_the_platform_default_until_deleted() {
    let t = tenant("tax").await;
    let rule = t.path("tax-rules/standard");
    let default = t.app.get(&rule, &t.owner).await;
    assert_eq!(default.status, 200, "{}", default.text);
    assert_eq!(default.json()["source"], "platform");
    let platform_rate = default.json()["rate"].clone();
    let override_rate = if platform_rate == "0.2" {
        "0.19"
    } else {
        "0.2"
    };

    let put = t
        .put_json(&rule, &t.owner, &json!({"rate": override_rate}))
        .await;

    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.json()["rate"], override_rate);
    assert_eq!(put.json()["source"], "tenant");
    let listed = t.list_ok(&t.owner, "tax-rules", &[]).await;
    let standard = listed.iter().find(|r| r["category"] == "standard").unwrap();
    assert_eq!(standard["rate"], override_rate);
    assert_eq!(standard["source"], "tenant");
    let others: Vec<&Value> = listed
        .iter()
        .filter(|r| r["category"] != "standard")
        .collect();
    assert!(
        !others.is_empty() && others.iter().all(|r| r["source"] == "platform"),
        "{listed:?}"
    );

    let del = t.app.delete(&rule, &t.owner).await;

    assert_eq!(del.status, 204, "{}", del.text);
    let back = t.app.get(&rule, &t.owner).await.json();
    assert_eq!(back["source"], "platform");
    assert_eq!(back["rate"], platform_rate);
}

#[tokio::test]
async fn an_invalid_tax_rate_is_422_and_keeps_the_current_rate() {
    let t = tenant("tax-invalid").await;
    let rule = t.path("tax-rules/standard");
    let before = t.app.get(&rule, &t.owner).await.json();

    for bad in [json!(0.2), json!("1.5"), json!("-0.1"), json!("twenty")] {
        let resp = t.put_json(&rule, &t.owner, &json!({"rate": bad})).await;

        resp.assert_problem(422);
        assert_eq!(error_fields(&resp), ["rate"], "{bad}: {}", resp.text);
    }
    assert_eq!(t.app.get(&rule, &t.owner).await.json(), before);
    let unknown = t
        .put_json(
            &t.path("tax-rules/luxury"),
            &t.owner,
            &json!({"rate": "0.3"}),
        )
        .await;
    unknown.assert_problem(404);
}

fn sorted_items(v: &Value) -> Vec<Value> {
    let mut items = v["items"].as_array().expect("items").clone();
    items.sort_by_key(|i| i.to_string());
    items
}

#[tokio::test]
async fn price_list_items_round_trip_with_exact_decimals() {
    let t = tenant("price-items").await;
    let p1 = id_of(
        &t.create_ok(&t.owner, "products", &sample_body("products", 1))
            .await,
    );
    let p2 = id_of(
        &t.create_ok(&t.owner, "products", &sample_body("products", 2))
            .await,
    );
    let items = json!([
        {"product_id": p1, "min_quantity": "1", "unit_price": "9.99"},
        {"product_id": p1, "min_quantity": "10", "unit_price": "8.50"},
        {"product_id": p2, "min_quantity": "2.5", "unit_price": "0.05"},
    ]);

    let created = t
        .app
        .post_json(
            &t.path("price-lists"),
            &t.owner,
            &json!({"name": "Wholesale", "currency": "EUR", "items": items}),
        )
        .await;

    assert_eq!(created.status, 201, "{}", created.text);
    let expected = sorted_items(&json!({ "items": items }));
    assert_eq!(sorted_items(&created.json()), expected);
    let id = id_of(&created.json());
    let read = t.get_one(&t.owner, "price-lists", &id).await;
    assert_eq!(sorted_items(&read.json()), expected);
    let listed = t.list_ok(&t.owner, "price-lists", &[]).await;
    assert_eq!(sorted_items(&listed[0]), expected);
}

#[tokio::test]
async fn price_list_items_are_exact_in_a_three_decimal_currency_and_replaced_by_a_patch() {
    let t = tenant("price-items-kwd").await;
    let p1 = id_of(
        &t.create_ok(&t.owner, "products", &sample_body("products", 1))
            .await,
    );
    let created = t
        .create_ok(
            &t.owner,
            "price-lists",
            &json!({"name": "Gulf", "currency": "KWD",
                    "items": [{"product_id": p1, "min_quantity": "1", "unit_price": "1.234"}]}),
        )
        .await;
    assert_eq!(created["items"][0]["unit_price"], "1.234");
    let id = id_of(&created);

    let patched = t
        .app
        .patch_json(
            &t.path(&format!("price-lists/{id}")),
            &t.owner,
            &json!({"items": [{"product_id": p1, "min_quantity": "0.000001", "unit_price": "0.001"}]}),
        )
        .await;

    assert_eq!(patched.status, 200, "{}", patched.text);
    let body = patched.json();
    assert_eq!(
        body["items"],
        json!([{"product_id": p1, "min_quantity": "0.000001", "unit_price": "0.001"}])
    );
    assert!(body["version"].as_i64().unwrap() > created["version"].as_i64().unwrap());
}

#[tokio::test]
async fn invalid_price_list_items_are_422_naming_the_item_field_and_write_nothing() {
    let t = tenant("price-items-bad").await;
    let p1 = id_of(
        &t.create_ok(&t.owner, "products", &sample_body("products", 1))
            .await,
    );
    let cases = [
        (
            json!([{"product_id": p1, "unit_price": 9.99}]),
            "items[0].unit_price",
        ),
        (
            json!([{"product_id": p1, "unit_price": "9.999"}]),
            "items[0].unit_price",
        ),
        (
            json!([{"product_id": p1, "unit_price": "-1"}]),
            "items[0].unit_price",
        ),
        (
            json!([{"product_id": p1, "min_quantity": 1, "unit_price": "1"}]),
            "items[0].min_quantity",
        ),
        (
            json!([{"product_id": "no-such-product", "unit_price": "1"}]),
            "items[0].product_id",
        ),
    ];

    for (items, field) in cases {
        let resp = t
            .app
            .post_json(
                &t.path("price-lists"),
                &t.owner,
                &json!({"name": "Bad", "currency": "EUR", "items": items}),
            )
            .await;

        resp.assert_problem(422);
        assert_eq!(error_fields(&resp), [field], "{items}: {}", resp.text);
    }
    assert!(t.list_ok(&t.owner, "price-lists", &[]).await.is_empty());
    assert!(
        t.audit(&t.owner, &[("entity", "price-lists")])
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_price_list_patch_with_a_bad_item_changes_neither_header_nor_items() {
    let t = tenant("price-items-atomic").await;
    let p1 = id_of(
        &t.create_ok(&t.owner, "products", &sample_body("products", 1))
            .await,
    );
    let created = t
        .create_ok(
            &t.owner,
            "price-lists",
            &json!({"name": "Retail", "currency": "EUR",
                    "items": [{"product_id": p1, "min_quantity": "1", "unit_price": "2.00"}]}),
        )
        .await;
    let id = id_of(&created);
    let audit_before = t.audit_of("price-lists", &id).await.len();

    let resp = t
        .app
        .patch_json(
            &t.path(&format!("price-lists/{id}")),
            &t.owner,
            &json!({"name": "Renamed", "items": [{"product_id": "nope", "unit_price": "1.00"}]}),
        )
        .await;

    resp.assert_problem(422);
    let now = t.get_one(&t.owner, "price-lists", &id).await.json();
    assert_eq!(now["name"], "Retail");
    assert_eq!(now["items"], created["items"]);
    assert_eq!(now["version"], created["version"]);
    assert_eq!(t.audit_of("price-lists", &id).await.len(), audit_before);
}
