//! OpenAPI for the generic collection endpoints, generated from the same entity
//! descriptions that drive them, so the document cannot drift from what is served.

use serde_json::{Map, Value as Json, json};

use crate::access::entity::{Entity, Kind};

fn field_schema(kind: Kind) -> Json {
    match kind {
        Kind::Text { max } => json!({ "type": "string", "maxLength": max }),
        Kind::Email => json!({ "type": "string", "format": "email" }),
        Kind::Money(_) => {
            json!({ "type": "string", "format": "decimal", "description": "money, exact decimal string in the row's currency" })
        }
        Kind::Decimal { .. } => json!({ "type": "string", "format": "decimal" }),
        Kind::Int { min, max } => json!({ "type": "integer", "minimum": min, "maximum": max }),
        Kind::Bool => json!({ "type": "boolean" }),
        Kind::Currency => {
            json!({ "type": "string", "description": "ISO 4217 code", "pattern": "^[A-Z]{3}$" })
        }
        Kind::Date => json!({ "type": "string", "format": "date" }),
        Kind::Ref(target) => {
            json!({ "type": "string", "description": format!("id of a {}", target.name) })
        }
        Kind::Enum(options) => json!({ "type": "string", "enum": options }),
        Kind::Uom => {
            json!({ "type": "string", "description": "platform unit code (unit, kg, h, …)" })
        }
        Kind::TaxCategory => {
            json!({ "type": "string", "description": "platform tax category (standard, reduced, zero, exempt)" })
        }
    }
}

fn schema_name(e: &Entity) -> String {
    e.name
        .split('-')
        .map(|w| w[..1].to_uppercase() + &w[1..])
        .collect::<String>()
}

/// The resource schema and its input schema.
fn schemas(e: &Entity, extra: &[(&str, Json)]) -> (Json, Json) {
    let mut props = Map::new();
    for (k, t) in [
        ("id", "string"),
        ("version", "integer"),
        ("created_at", "string"),
        ("updated_at", "string"),
        ("deleted_at", "string"),
    ] {
        props.insert(k.into(), json!({ "type": t, "readOnly": true }));
    }
    let mut input = Map::new();
    let mut required = Vec::new();
    for f in e.fields {
        let mut s = field_schema(f.kind);
        if f.sensitive {
            s["description"] = json!(format!(
                "sensitive: present only with the field permission {}.{}:read",
                e.name, f.name
            ));
        }
        props.insert(f.name.into(), s.clone());
        input.insert(f.name.into(), s);
        if f.required {
            required.push(f.name);
        }
    }
    for (k, s) in extra {
        props.insert((*k).into(), s.clone());
        input.insert((*k).into(), s.clone());
    }
    (
        json!({ "type": "object", "properties": props }),
        json!({ "type": "object", "properties": input, "required": required, "additionalProperties": false }),
    )
}

fn problem(desc: &str) -> Json {
    json!({ "description": desc, "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } })
}

/// Which of the generic endpoints an entity serves.
pub struct Served {
    pub write: bool,
    pub restore: bool,
}

/// Every generic endpoint (the master data).
pub const ALL: Served = Served {
    write: true,
    restore: true,
};
/// List and get only (ledgers, invoices, payments).
pub const READ_ONLY: Served = Served {
    write: false,
    restore: false,
};

/// Add the paths and schemas of `e` to an OpenAPI document.
pub fn add(doc: &mut Json, e: &Entity, extra: &[(&str, Json)]) {
    add_served(doc, e, extra, &ALL);
}

/// A document action `POST /v1/t/{tenant}/<entity>/{id}/<action>`.
pub fn add_action(doc: &mut Json, e: &Entity, action: &str, summary: &str, created: Option<&str>) {
    let tenant =
        json!({ "name": "tenant", "in": "path", "required": true, "schema": { "type": "string" } });
    let id =
        json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } });
    let (status, schema) = match created {
        Some(s) => ("201", s.to_owned()),
        None => ("200", schema_name(e)),
    };
    doc["paths"][format!("/v1/t/{{tenant}}/{}/{{id}}/{action}", e.name)] = json!({
        "post": { "tags": ["documents"], "summary": summary, "security": [{ "bearer": [] }], "parameters": [tenant, id],
                  "requestBody": { "required": false, "content": { "application/json": { "schema": { "type": "object" } } } },
                  "responses": { status: { "description": "done", "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } },
                                 "403": problem("no permission"), "404": problem("not found (or not yours)"),
                                 "409": problem("not allowed in the document's state, insufficient stock, credit limit"),
                                 "422": problem("invalid lines or quantities") } },
    });
}

/// A read-only tenant endpoint with query parameters (reports, stock).
pub fn add_get(doc: &mut Json, path: &str, summary: &str, params: &[&str]) {
    let mut parameters = vec![
        json!({ "name": "tenant", "in": "path", "required": true, "schema": { "type": "string" } }),
    ];
    for p in params {
        parameters.push(json!({ "name": p, "in": "query", "schema": { "type": "string" } }));
    }
    doc["paths"][format!("/v1/t/{{tenant}}/{path}")] = json!({
        "get": { "tags": ["reports"], "summary": summary, "security": [{ "bearer": [] }], "parameters": parameters,
                 "responses": { "200": { "description": "the report", "content": { "application/json": { "schema": { "type": "object" } } } },
                                "400": problem("bad query"), "403": problem("no permission") } },
    });
}

/// Add the endpoints of `e` that `served` names.
pub fn add_served(doc: &mut Json, e: &Entity, extra: &[(&str, Json)], served: &Served) {
    let name = schema_name(e);
    let (resource, input) = schemas(e, extra);
    doc["components"]["schemas"][&name] = resource;
    doc["components"]["schemas"][format!("{name}Input")] = input;
    let one = json!({ "$ref": format!("#/components/schemas/{name}") });
    let body = json!({ "required": true, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{name}Input") } } } });
    let tenant =
        json!({ "name": "tenant", "in": "path", "required": true, "schema": { "type": "string" } });
    let id =
        json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } });
    let ok = |d: &str| json!({ "description": d, "content": { "application/json": { "schema": one.clone() } } });
    let sec = json!([{ "bearer": [] }]);
    let tag = json!(["data"]);
    let list_params = json!([tenant,
        { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 500 } },
        { "name": "cursor", "in": "query", "schema": { "type": "string" } },
        { "name": "sort", "in": "query", "schema": { "type": "string" }, "description": "field, or -field for descending; only fields you can read" },
        { "name": "include_deleted", "in": "query", "schema": { "type": "boolean" } }]);
    let base = format!("/v1/t/{{tenant}}/{}", e.name);
    doc["paths"][&base] = json!({
        "get": { "tags": tag, "summary": format!("List {} (filter with ?field=value on queryable fields)", e.name), "security": sec, "parameters": list_params,
                 "responses": { "200": { "description": "a page", "content": { "application/json": { "schema": {
                     "type": "object", "properties": { "items": { "type": "array", "items": one }, "next_cursor": { "type": "string", "nullable": true } } } } } },
                     "400": problem("bad query"), "403": problem("no permission, or a filter/sort on a field you cannot read") } },
        "post": { "tags": tag, "summary": format!("Create one of {} (honours Idempotency-Key)", e.name), "security": sec, "parameters": [tenant], "requestBody": body,
                  "responses": { "201": ok("created"), "403": problem("no permission for the entity or a named field"),
                                 "409": problem("duplicate key"), "422": problem("invalid fields") } },
    });
    doc["paths"][format!("{base}/{{id}}")] = json!({
        "get": { "tags": tag, "security": sec, "parameters": [tenant, id], "responses": { "200": ok("the record"), "404": problem("not found") } },
        "patch": { "tags": tag, "security": sec, "parameters": [tenant, id], "requestBody": body,
                   "responses": { "200": ok("updated"), "403": problem("forbidden field"), "404": problem("not found"), "409": problem("If-Match mismatch or duplicate key"), "422": problem("invalid fields") } },
        "delete": { "tags": tag, "security": sec, "parameters": [tenant, id], "responses": { "204": { "description": "soft deleted" }, "404": problem("not found"), "409": problem("If-Match mismatch") } },
    });
    if served.restore {
        doc["paths"][format!("{base}/{{id}}/restore")] = json!({
            "post": { "tags": tag, "security": sec, "parameters": [tenant, id], "responses": { "200": ok("restored"), "404": problem("no deleted record with this id"), "409": problem("its unique key is taken") } },
        });
    }
    if !served.write {
        for path in [base.clone(), format!("{base}/{{id}}")] {
            if let Some(item) = doc["paths"][&path].as_object_mut() {
                for m in ["post", "patch", "delete"] {
                    item.remove(m);
                }
            }
        }
    }
}
