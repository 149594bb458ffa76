//! Fixtures for the identity, access-control, master-data and audit tests: a server with
//! one tenant, users of given roles logged in, valid bodies for every master-data
//! collection, and small readers for the tenant audit log.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// The password every fixture user gets (at least 10 characters).
pub const PASSWORD: &str = "correct-horse-battery";

/// The master-data collections served by the generic entity routes, plus price lists.
pub const MASTER_DATA: [&str; 6] = [
    "customers",
    "suppliers",
    "products",
    "warehouses",
    "exchange-rates",
    "price-lists",
];

/// A running server with one tenant and its owner token.
pub struct Tenant {
    pub app: TestApp,
    pub id: String,
    pub owner: String,
}

impl Tenant {
    /// `/v1/t/{tenant}/{rest}`.
    pub fn path(&self, rest: &str) -> String {
        format!("/v1/t/{}/{rest}", self.id)
    }

    /// A new user with these roles, created by the owner and logged in: `(id, token)`.
    pub async fn user(&self, email: &str, roles: &[&str]) -> (String, String) {
        let id = self.create_user(email, roles).await;
        let token = self.login_ok(email).await;
        (id, token)
    }

    /// A new user (with [`PASSWORD`]) created by the owner; returns its id.
    pub async fn create_user(&self, email: &str, roles: &[&str]) -> String {
        let resp = self
            .app
            .post_json(
                &self.path("users"),
                &self.owner,
                &json!({ "email": email, "name": email, "password": PASSWORD, "roles": roles }),
            )
            .await;
        assert_eq!(resp.status, 201, "creating user {email}: {}", resp.text);
        resp.json()["id"].as_str().expect("user id").to_owned()
    }

    /// `POST auth/login`, no token.
    pub async fn login(&self, email: &str, password: &str) -> Resp {
        self.app
            .send(
                self.app
                    .request(Method::POST, &self.path("auth/login"))
                    .json(&json!({ "email": email, "password": password })),
            )
            .await
    }

    /// Log in with [`PASSWORD`]; panics unless 200. Returns the session token.
    pub async fn login_ok(&self, email: &str) -> String {
        let resp = self.login(email, PASSWORD).await;
        assert_eq!(resp.status, 200, "login of {email}: {}", resp.text);
        resp.json()["token"].as_str().expect("token").to_owned()
    }

    /// `POST {collection}` with `token`; panics unless 201. Returns the created resource.
    pub async fn create_ok(&self, token: &str, collection: &str, body: &Value) -> Value {
        let resp = self
            .app
            .post_json(&self.path(collection), token, body)
            .await;
        assert_eq!(
            resp.status, 201,
            "creating in {collection} with {body}: {}",
            resp.text
        );
        resp.json()
    }

    /// `GET {collection}/{id}` with `token`.
    pub async fn get_one(&self, token: &str, collection: &str, id: &str) -> Resp {
        self.app
            .get(&self.path(&format!("{collection}/{id}")), token)
            .await
    }

    /// `GET {collection}` with query pairs; panics unless 200. Returns the items.
    pub async fn list_ok(
        &self,
        token: &str,
        collection: &str,
        query: &[(&str, &str)],
    ) -> Vec<Value> {
        let resp = self.list(token, collection, query).await;
        assert_eq!(
            resp.status, 200,
            "listing {collection} {query:?}: {}",
            resp.text
        );
        resp.json()["items"].as_array().expect("items").clone()
    }

    /// `GET {collection}` with query pairs.
    pub async fn list(&self, token: &str, collection: &str, query: &[(&str, &str)]) -> Resp {
        let path = format!("{}{}", self.path(collection), query_string(query));
        self.app.get(&path, token).await
    }

    /// Tenant audit entries (newest first) matching the query, read with `token`.
    pub async fn audit(&self, token: &str, query: &[(&str, &str)]) -> Vec<Value> {
        self.list_ok(token, "audit-log", query).await
    }

    /// Audit entries about one record, read by the owner (newest first).
    pub async fn audit_of(&self, entity: &str, id: &str) -> Vec<Value> {
        self.audit(
            &self.owner,
            &[("entity", entity), ("entity_id", id), ("limit", "500")],
        )
        .await
    }

    /// `PUT` with a JSON body.
    pub async fn put_json(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.app
            .send(
                self.app
                    .request(Method::PUT, path)
                    .bearer_auth(token)
                    .json(body),
            )
            .await
    }

    /// `POST {collection}/{id}/restore`.
    pub async fn restore(&self, token: &str, collection: &str, id: &str) -> Resp {
        self.app
            .send(
                self.app
                    .request(
                        Method::POST,
                        &self.path(&format!("{collection}/{id}/restore")),
                    )
                    .bearer_auth(token),
            )
            .await
    }
}

/// A fresh server with tenant `id` (base currency EUR).
pub async fn tenant(id: &str) -> Tenant {
    let app = spawn_app(&[]);
    let owner = app.create_tenant_ok(id).await;
    Tenant {
        app,
        id: id.to_owned(),
        owner,
    }
}

/// A valid create body for a master-data collection; `n` keeps unique keys (sku,
/// warehouse code, exchange-rate date) distinct.
pub fn sample_body(collection: &str, n: u32) -> Value {
    match collection {
        "customers" => {
            json!({ "name": format!("Customer {n}"), "email": format!("c{n}@example.com") })
        }
        "suppliers" => {
            json!({ "name": format!("Supplier {n}"), "email": format!("s{n}@example.com") })
        }
        "products" => {
            json!({ "sku": format!("SKU-{n}"), "name": format!("Product {n}"), "list_price": "9.90" })
        }
        "warehouses" => json!({ "code": format!("WH-{n}"), "name": format!("Warehouse {n}") }),
        "exchange-rates" => json!({ "from": "USD", "to": "EUR", "rate": "0.9", "date": date(n) }),
        "price-lists" => json!({ "name": format!("Price list {n}"), "currency": "EUR" }),
        other => panic!("no sample body for {other}"),
    }
}

/// A valid update body for a master-data collection.
pub fn update_body(collection: &str) -> Value {
    match collection {
        "exchange-rates" => json!({ "rate": "0.95" }),
        _ => json!({ "name": "Renamed" }),
    }
}

/// A distinct valid date for each `n` below 336.
fn date(n: u32) -> String {
    format!("2026-{:02}-{:02}", 1 + n / 28, 1 + n % 28)
}

/// `?k=v&…` with keys and values percent-encoded (empty for no pairs).
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    if pairs.is_empty() {
        return String::new();
    }
    let joined: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    format!("?{}", joined.join("&"))
}

/// The problem detail of a response.
pub fn detail(resp: &Resp) -> String {
    resp.json()["detail"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The fields named in a problem's `errors[]`.
pub fn error_fields(resp: &Resp) -> Vec<String> {
    resp.json()["errors"]
        .as_array()
        .map(|errs| {
            errs.iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
