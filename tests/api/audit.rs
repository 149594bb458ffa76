//! The tenant audit log: one entry per change with its fields before and after, the actor
//! and the request id; nothing for a change that did not happen; sensitive values masked
//! for readers who may not see them; and `erpd audit verify` finding tampering in the
//! hash chain.

use reqwest::Method;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::fixtures::*;
use crate::helpers::*;

/// Send with a chosen `x-request-id`.
async fn with_rid(t: &Tenant, method: Method, path: &str, rid: &str, body: Option<Value>) -> Resp {
    let mut req = t
        .app
        .request(method, path)
        .bearer_auth(&t.owner)
        .header("x-request-id", rid);
    if let Some(b) = body {
        req = req.json(&b);
    }
    t.app.send(req).await
}

async fn owner_id(t: &Tenant) -> String {
    let me = t.app.me(&t.id, &t.owner).await;
    assert_eq!(me.status, 200, "{}", me.text);
    me.json()["user"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn create_update_delete_and_restore_each_write_one_entry_with_actor_request_id_and_changes() {
    let t = tenant("audit-life").await;
    let actor = format!("user:{}", owner_id(&t).await);
    let created = with_rid(
        &t,
        Method::POST,
        &t.path("customers"),
        "rid-create",
        Some(json!({"name": "Acme", "credit_limit": "100.00"})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let one = t.path(&format!("customers/{id}"));
    let updated = with_rid(
        &t,
        Method::PATCH,
        &one,
        "rid-update",
        Some(json!({"name": "Acme Ltd", "credit_limit": "100.00"})),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    let deleted = with_rid(&t, Method::DELETE, &one, "rid-delete", None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    let restored = with_rid(
        &t,
        Method::POST,
        &format!("{one}/restore"),
        "rid-restore",
        None,
    )
    .await;
    assert_eq!(restored.status, 200, "{}", restored.text);

    let entries = t.audit_of("customers", &id).await;

    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["restore", "delete", "update", "create"],
        "newest first"
    );
    let rids: Vec<&str> = entries
        .iter()
        .map(|e| e["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        rids,
        ["rid-restore", "rid-delete", "rid-update", "rid-create"]
    );
    for e in &entries {
        assert_eq!(e["actor"], actor.as_str(), "{e}");
        assert_eq!(e["entity"], "customers", "{e}");
        assert_eq!(e["entity_id"], id.as_str(), "{e}");
        assert!(e["id"].is_i64() || e["id"].is_string(), "{e}");
        assert!(
            e["at"]
                .as_str()
                .is_some_and(|a| OffsetDateTime::parse(a, &Rfc3339).is_ok()),
            "{e}"
        );
    }
    let create = &entries[3]["changes"];
    assert_eq!(create["name"], json!([null, "Acme"]), "{create}");
    assert_eq!(create["credit_limit"], json!([null, "100.00"]), "{create}");
    assert_eq!(
        entries[2]["changes"],
        json!({"name": ["Acme", "Acme Ltd"]}),
        "only the field that changed"
    );
}

#[tokio::test]
async fn a_patch_that_changes_nothing_writes_no_entry_and_keeps_the_version() {
    let t = tenant("audit-noop").await;
    let row = t
        .create_ok(
            &t.owner,
            "warehouses",
            &json!({"code": "W1", "name": "Main"}),
        )
        .await;
    let id = row["id"].as_str().unwrap();

    let resp = t
        .app
        .patch_json(
            &t.path(&format!("warehouses/{id}")),
            &t.owner,
            &json!({"name": "Main"}),
        )
        .await;

    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.json()["version"], 1);
    assert_eq!(t.audit_of("warehouses", id).await.len(), 1);
}

#[tokio::test]
async fn a_patch_refused_as_a_duplicate_sku_leaves_no_entry_and_no_change() {
    let t = tenant("audit-rollback").await;
    t.create_ok(&t.owner, "products", &json!({"sku": "A", "name": "First"}))
        .await;
    let b = t
        .create_ok(&t.owner, "products", &json!({"sku": "B", "name": "Second"}))
        .await;
    let b_id = b["id"].as_str().unwrap();

    let resp = t
        .app
        .patch_json(
            &t.path(&format!("products/{b_id}")),
            &t.owner,
            &json!({"sku": "A", "name": "Clash"}),
        )
        .await;

    resp.assert_problem(409);
    let now = t.get_one(&t.owner, "products", b_id).await.json();
    assert_eq!(
        (now["sku"].clone(), now["name"].clone()),
        (json!("B"), json!("Second"))
    );
    assert_eq!(now["version"], 1);
    let entries = t.audit_of("products", b_id).await;
    assert_eq!(entries.len(), 1, "only the create: {entries:#?}");
    assert_eq!(entries[0]["action"], "create");
}

#[tokio::test]
async fn sensitive_values_in_the_audit_log_are_masked_for_a_viewer_and_shown_to_an_accountant() {
    let t = tenant("audit-mask").await;
    let (_, viewer) = t.user("viewer@example.com", &["viewer"]).await;
    let (_, accountant) = t.user("acc@example.com", &["accountant"]).await;
    let row = t
        .create_ok(
            &t.owner,
            "customers",
            &json!({"name": "A", "credit_limit": "100.00", "payment_terms_days": 30}),
        )
        .await;
    let id = row["id"].as_str().unwrap();
    let resp = t
        .app
        .patch_json(
            &t.path(&format!("customers/{id}")),
            &t.owner,
            &json!({"name": "B", "credit_limit": "250.00"}),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    let query = [("entity", "customers"), ("entity_id", id)];

    let seen_by_viewer = t.audit(&viewer, &query).await;
    let seen_by_accountant = t.audit(&accountant, &query).await;

    assert_eq!(seen_by_viewer.len(), 2);
    let (update, create) = (&seen_by_viewer[0]["changes"], &seen_by_viewer[1]["changes"]);
    assert_eq!(create["credit_limit"], json!([null, "***"]), "{create}");
    assert_eq!(
        create["payment_terms_days"],
        json!([null, "***"]),
        "{create}"
    );
    assert_eq!(create["name"], json!([null, "A"]), "{create}");
    assert_eq!(update["credit_limit"], json!(["***", "***"]), "{update}");
    assert_eq!(update["name"], json!(["A", "B"]), "{update}");
    let raw = serde_json::to_string(&seen_by_viewer).unwrap();
    assert!(!raw.contains("250.00") && !raw.contains("100.00"), "{raw}");
    let (update, create) = (
        &seen_by_accountant[0]["changes"],
        &seen_by_accountant[1]["changes"],
    );
    assert_eq!(create["credit_limit"], json!([null, "100.00"]));
    assert_eq!(create["payment_terms_days"], json!([null, 30]));
    assert_eq!(update["credit_limit"], json!(["100.00", "250.00"]));
}

#[tokio::test]
async fn a_role_without_audit_permission_cannot_read_the_audit_log() {
    let t = tenant("audit-403").await;
    let (_, sales) = t.user("sales@example.com", &["sales"]).await;

    let resp = t.list(&sales, "audit-log", &[]).await;

    resp.assert_problem(403);
}

#[tokio::test]
async fn the_since_filter_keeps_entries_at_or_after_the_given_utc_time() {
    let t = tenant("audit-since").await;
    let row = t
        .create_ok(&t.owner, "customers", &sample_body("customers", 1))
        .await;
    let entry = &t.audit_of("customers", row["id"].as_str().unwrap()).await[0];
    let at = entry["at"].as_str().unwrap();

    let from_then = t
        .audit(&t.owner, &[("entity", "customers"), ("since", at)])
        .await;
    let from_future = t
        .audit(
            &t.owner,
            &[("entity", "customers"), ("since", "2999-01-01T00:00:00Z")],
        )
        .await;

    assert_eq!(from_then.len(), 1, "an entry exactly at `since` is kept");
    assert!(from_future.is_empty(), "{from_future:#?}");
    let bad = t
        .list(&t.owner, "audit-log", &[("since", "yesterday")])
        .await;
    bad.assert_problem(400);
}

#[tokio::test]
async fn the_since_filter_compares_instants_whatever_the_utc_offset() {
    let t = tenant("audit-since-offset").await;
    let row = t
        .create_ok(&t.owner, "customers", &sample_body("customers", 1))
        .await;
    let entry = &t.audit_of("customers", row["id"].as_str().unwrap()).await[0];
    let at = OffsetDateTime::parse(entry["at"].as_str().unwrap(), &Rfc3339).unwrap();
    let east = UtcOffset::from_hms(5, 0, 0).unwrap();
    let west = UtcOffset::from_hms(-5, 0, 0).unwrap();
    let hour_before = (at - Duration::hours(1))
        .to_offset(east)
        .format(&Rfc3339)
        .unwrap();
    let hour_after = (at + Duration::hours(1))
        .to_offset(west)
        .format(&Rfc3339)
        .unwrap();

    let before = t
        .audit(
            &t.owner,
            &[("entity", "customers"), ("since", &hour_before)],
        )
        .await;
    let after = t
        .audit(&t.owner, &[("entity", "customers"), ("since", &hour_after)])
        .await;

    assert_eq!(
        before.len(),
        1,
        "since {hour_before} (an hour before {at}) keeps the entry"
    );
    assert!(
        after.is_empty(),
        "since {hour_after} (an hour after {at}): {after:#?}"
    );
}

// ---------------------------------------------------------------------------------------
// `erpd audit verify` and tampering
// ---------------------------------------------------------------------------------------

/// A stopped server whose tenant has a few audit entries; returns the audit entry ids of
/// the tenant, oldest first.
async fn stopped_with_history(id: &str) -> (Tenant, Vec<i64>) {
    let mut t = tenant(id).await;
    for n in 0..3 {
        let row = t
            .create_ok(&t.owner, "customers", &sample_body("customers", n))
            .await;
        let resp = t
            .app
            .patch_json(
                &t.path(&format!("customers/{}", row["id"].as_str().unwrap())),
                &t.owner,
                &json!({"name": format!("Renamed {n}")}),
            )
            .await;
        assert_eq!(resp.status, 200, "{}", resp.text);
    }
    let mut ids: Vec<i64> = t
        .audit(&t.owner, &[("limit", "500")])
        .await
        .iter()
        .map(|e| e["id"].as_i64().expect("numeric audit id"))
        .collect();
    ids.sort();
    assert!(ids.len() >= 6, "{ids:?}");
    t.app.kill();
    (t, ids)
}

/// Tamper with the stopped tenant's file as someone with file access would: drop the
/// append-only triggers, then run `sql`.
fn tamper(t: &Tenant, sql: &str) {
    let conn =
        rusqlite::Connection::open(t.app.tenant_file(&t.id)).expect("opening the tenant file");
    conn.execute_batch(&format!(
        "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete; {sql}"
    ))
    .unwrap_or_else(|e| panic!("tampering with {sql}: {e}"));
}

fn verify(t: &Tenant) -> CliOutput {
    t.app.cli(&["audit", "verify", &t.id])
}

#[tokio::test]
async fn audit_verify_passes_on_an_untouched_chain() {
    let (t, _) = stopped_with_history("verify-ok").await;

    let out = verify(&t);

    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[tokio::test]
async fn the_audit_log_refuses_updates_and_deletes_even_with_file_access() {
    let (t, ids) = stopped_with_history("verify-triggers").await;
    let conn = rusqlite::Connection::open(t.app.tenant_file(&t.id)).unwrap();

    let update = conn.execute(
        "UPDATE audit_log SET actor = 'someone' WHERE id = ?1",
        [ids[1]],
    );
    let delete = conn.execute("DELETE FROM audit_log WHERE id = ?1", [ids[1]]);

    assert!(update.is_err(), "UPDATE went through");
    assert!(delete.is_err(), "DELETE went through");
    drop(conn);
    assert_eq!(verify(&t).status.code(), Some(0));
}

#[tokio::test]
async fn audit_verify_exits_1_naming_an_edited_entry() {
    let (t, ids) = stopped_with_history("verify-edit").await;
    let victim = ids[ids.len() / 2];
    tamper(
        &t,
        &format!(
            "UPDATE audit_log SET changes = '{{\"name\":[null,\"Forged\"]}}' WHERE id = {victim}"
        ),
    );

    let out = verify(&t);

    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.all_output().contains(&victim.to_string()),
        "names entry {victim}: {out:?}"
    );
}

#[tokio::test]
async fn audit_verify_exits_1_after_an_entry_in_the_middle_is_removed() {
    let (t, ids) = stopped_with_history("verify-remove").await;
    tamper(
        &t,
        &format!("DELETE FROM audit_log WHERE id = {}", ids[ids.len() / 2]),
    );

    let out = verify(&t);

    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[tokio::test]
async fn audit_verify_exits_1_after_the_newest_entry_is_removed() {
    let (t, ids) = stopped_with_history("verify-truncate").await;
    tamper(
        &t,
        &format!("DELETE FROM audit_log WHERE id = {}", ids[ids.len() - 1]),
    );

    let out = verify(&t);

    assert_eq!(out.status.code(), Some(1), "{out:?}");
}
