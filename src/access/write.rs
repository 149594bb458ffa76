//! Checking a create or update body against an entity description and the caller's
//! permissions, before any SQL runs: unknown fields and bad values are 422 (all of them
//! listed), a field the caller may not write is 403 naming the field.

use rusqlite::types::Value;
use serde_json::{Map, Value as Json};

use super::entity::{CurrencyOf, Entity, Field, Kind, SYSTEM_COLUMNS};
use super::query::Viewer;
use super::values::{self, Ctx};
use crate::error::{Error, FieldError, Result};

/// Validated column values, in description order.
pub type Values = Vec<(&'static Field, Value)>;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
}

/// Validate a body. `row_currency` is the stored currency of the row being updated.
pub fn values(
    entity: &'static Entity,
    viewer: &Viewer<'_>,
    body: &Map<String, Json>,
    mode: Mode,
    row_currency: Option<&str>,
    ctx: &Ctx<'_>,
) -> Result<Values> {
    if !viewer.perms.allows(entity.name, "write") {
        return Err(Error::Forbidden(format!(
            "no permission to write {}",
            entity.name
        )));
    }
    let mut errors = Vec::new();
    // Permission first: a forbidden field is refused as such, whatever its value.
    for key in body.keys() {
        match entity.field(key) {
            Some(f)
                if !viewer
                    .perms
                    .allows_field(entity.name, f.name, f.sensitive, "write") =>
            {
                return Err(Error::Forbidden(format!(
                    "no permission to write {}.{}",
                    entity.name, f.name
                )));
            }
            Some(f) if f.immutable && mode == Mode::Update => {
                errors.push(FieldError::new(key, "cannot be changed after creation"));
            }
            Some(_) => {}
            None if SYSTEM_COLUMNS.contains(&key.as_str()) => {
                errors.push(FieldError::new(key, "is read-only"))
            }
            None => errors.push(FieldError::new(key, "unknown field")),
        }
    }
    let currency_of = |f: &Field| -> Option<String> {
        match f.kind {
            Kind::Money(CurrencyOf::Base) => Some(ctx.base_currency.to_owned()),
            Kind::Money(CurrencyOf::Field(cf)) => body
                .get(cf)
                .and_then(Json::as_str)
                .map(str::to_owned)
                .or_else(|| row_currency.map(str::to_owned))
                .or_else(|| {
                    entity
                        .field(cf)
                        .and_then(|f| default_value(f, ctx))
                        .and_then(|d| d.as_str().map(str::to_owned))
                })
                .or_else(|| Some(ctx.base_currency.to_owned())),
            _ => None,
        }
    };
    let mut out = Vec::new();
    for f in entity.fields {
        let given = body.get(f.name);
        let v = match (given, mode) {
            (Some(v), _) => v.clone(),
            (None, Mode::Update) => continue,
            (None, Mode::Create) if f.required => {
                errors.push(FieldError::new(f.name, "is required"));
                continue;
            }
            (None, Mode::Create) => match default_value(f, ctx) {
                Some(v) => v,
                None => continue,
            },
        };
        match values::to_sql(f, &v, currency_of(f).as_deref(), ctx) {
            Ok(sql) => out.push((f, sql)),
            Err(message) => errors.push(FieldError::new(f.name, message)),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Error::Invalid(errors))
    }
}

fn default_value(f: &Field, ctx: &Ctx<'_>) -> Option<Json> {
    match (f.kind, f.default) {
        (Kind::Currency, Some("base")) => Some(Json::String(ctx.base_currency.to_owned())),
        (Kind::Bool, Some(d)) => Some(Json::Bool(d == "true")),
        (Kind::Int { .. }, Some(d)) => d.parse::<i64>().ok().map(Json::from),
        (_, Some(d)) => Some(Json::String(d.to_owned())),
        (_, None) => None,
    }
}
