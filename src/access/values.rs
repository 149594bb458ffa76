//! Field values between JSON (decimal strings, never floats) and SQLite (INTEGER minor
//! units and scaled integers, so SQL sums stay exact).

use std::str::FromStr;

use rusqlite::types::{Value, ValueRef};
use rust_decimal::Decimal;
use serde_json::Value as Json;

use super::entity::{Bound, Field, Kind};
use crate::reference::Reference;

/// What converting needs to know besides the field.
pub struct Ctx<'a> {
    pub reference: &'a Reference,
    pub base_currency: &'a str,
}

/// JSON input → SQL value. `currency` is the row's currency for money fields.
pub fn to_sql(
    field: &Field,
    v: &Json,
    currency: Option<&str>,
    ctx: &Ctx<'_>,
) -> Result<Value, String> {
    if v.is_null() {
        return if field.required {
            Err("must not be null".into())
        } else {
            Ok(Value::Null)
        };
    }
    match field.kind {
        Kind::Text { max } => {
            let s = text(v)?;
            let n = s.chars().count();
            if n > max {
                return Err(format!("must be at most {max} characters"));
            }
            if field.required && s.trim().is_empty() {
                return Err("must not be empty".into());
            }
            Ok(Value::Text(s.trim().to_owned()))
        }
        Kind::Email => {
            let s = text(v)?.trim();
            let ok = s.len() <= 254
                && s.split_once('@')
                    .is_some_and(|(a, d)| !a.is_empty() && d.contains('.'));
            if !ok {
                return Err("must be an email address".into());
            }
            Ok(Value::Text(s.to_owned()))
        }
        Kind::Money(_) => {
            let code = currency.ok_or("needs a currency")?;
            let scale = ctx
                .reference
                .minor_units(code)
                .ok_or_else(|| format!("unknown currency {code}"))?;
            scaled(v, scale, Bound::NonNegative)
        }
        Kind::Decimal { scale, min } => scaled(v, scale, min),
        Kind::Int { min, max } => {
            let n = v.as_i64().ok_or("must be an integer")?;
            if !(min..=max).contains(&n) {
                return Err(format!("must be between {min} and {max}"));
            }
            Ok(Value::Integer(n))
        }
        Kind::Bool => v
            .as_bool()
            .map(|b| Value::Integer(b.into()))
            .ok_or_else(|| "must be true or false".into()),
        Kind::Currency => {
            let s = text(v)?;
            if ctx.reference.currency(s).is_none() {
                return Err(format!(
                    "unknown currency {s:?}; use an ISO 4217 code such as EUR"
                ));
            }
            Ok(Value::Text(s.to_owned()))
        }
        Kind::Date => {
            let s = text(v)?;
            let fmt = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(s, &fmt)
                .map_err(|_| "must be a date such as 2026-11-27".to_string())?;
            Ok(Value::Text(s.to_owned()))
        }
        Kind::Ref(_) => Ok(Value::Text(text(v)?.to_owned())),
        Kind::Enum(options) => {
            let s = text(v)?;
            if !options.contains(&s) {
                return Err(format!("must be one of {}", options.join(", ")));
            }
            Ok(Value::Text(s.to_owned()))
        }
        Kind::Uom => {
            let s = text(v)?;
            if !ctx.reference.units.contains(s) {
                return Err(format!("unknown unit {s:?}"));
            }
            Ok(Value::Text(s.to_owned()))
        }
        Kind::TaxCategory => {
            let s = text(v)?;
            if !ctx.reference.tax_categories.contains_key(s) {
                return Err(format!("unknown tax category {s:?}"));
            }
            Ok(Value::Text(s.to_owned()))
        }
    }
}

fn text(v: &Json) -> Result<&str, String> {
    v.as_str().ok_or_else(|| "must be a string".into())
}

/// A decimal string to an integer at `scale`. JSON numbers are refused: a float has
/// already lost exactness before we see it.
fn scaled(v: &Json, scale: u32, min: Bound) -> Result<Value, String> {
    let s = match v {
        Json::String(s) => s,
        Json::Number(_) => {
            return Err("must be a decimal string such as \"12.30\", not a JSON number".into());
        }
        _ => return Err("must be a decimal string".into()),
    };
    let d = Decimal::from_str(s.trim()).map_err(|_| format!("{s:?} is not a decimal number"))?;
    match min {
        Bound::NonNegative if d.is_sign_negative() && !d.is_zero() => {
            return Err("must not be negative".into());
        }
        Bound::Positive if d.is_sign_negative() || d.is_zero() => {
            return Err("must be more than zero".into());
        }
        _ => {}
    }
    if d.normalize().scale() > scale {
        return Err(format!("has more than {scale} decimal places"));
    }
    to_scaled(d, scale)
        .map(Value::Integer)
        .ok_or_else(|| "is too large".into())
}

/// Exact decimal → integer at `scale` (the caller checked the scale fits).
pub fn to_scaled(d: Decimal, scale: u32) -> Option<i64> {
    let mut d = d.normalize();
    if d.scale() > scale {
        return None;
    }
    d.rescale(scale);
    if d.scale() != scale {
        return None;
    }
    i64::try_from(d.mantissa()).ok()
}

/// Integer at `scale` → exact decimal.
pub fn from_scaled(n: i64, scale: u32) -> Decimal {
    Decimal::new(n, scale)
}

/// SQL value → JSON output.
pub fn to_json(field: &Field, v: ValueRef<'_>, currency: Option<&str>, ctx: &Ctx<'_>) -> Json {
    match (field.kind, v) {
        (_, ValueRef::Null) => Json::Null,
        (Kind::Money(_), ValueRef::Integer(n)) => {
            let scale = currency
                .and_then(|c| ctx.reference.minor_units(c))
                .unwrap_or(2);
            Json::String(from_scaled(n, scale).to_string())
        }
        (Kind::Decimal { scale, .. }, ValueRef::Integer(n)) => {
            Json::String(from_scaled(n, scale).normalize().to_string())
        }
        (Kind::Bool, ValueRef::Integer(n)) => Json::Bool(n != 0),
        (_, ValueRef::Integer(n)) => Json::from(n),
        (_, ValueRef::Real(f)) => Json::from(f),
        (_, ValueRef::Text(t)) => Json::String(String::from_utf8_lossy(t).into_owned()),
        (_, ValueRef::Blob(_)) => Json::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::entity::CurrencyOf;
    use serde_json::json;

    fn reference() -> Reference {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        crate::schema::migrate_platform(&mut c).unwrap();
        Reference::load(&c).unwrap()
    }

    #[test]
    fn money_is_exact_per_currency_and_refuses_floats() {
        let r = reference();
        let ctx = Ctx {
            reference: &r,
            base_currency: "EUR",
        };
        let f = Field::new("price", Kind::Money(CurrencyOf::Base));
        assert_eq!(
            to_sql(&f, &json!("12.30"), Some("EUR"), &ctx),
            Ok(Value::Integer(1230))
        );
        assert_eq!(
            to_sql(&f, &json!("12"), Some("JPY"), &ctx),
            Ok(Value::Integer(12))
        );
        assert_eq!(
            to_sql(&f, &json!("1.234"), Some("KWD"), &ctx),
            Ok(Value::Integer(1234))
        );
        assert!(to_sql(&f, &json!("12.345"), Some("EUR"), &ctx).is_err());
        assert!(to_sql(&f, &json!("1.5"), Some("JPY"), &ctx).is_err());
        assert!(
            to_sql(&f, &json!(12.3), Some("EUR"), &ctx)
                .unwrap_err()
                .contains("not a JSON number")
        );
        assert!(
            to_sql(&f, &json!("-1"), Some("EUR"), &ctx)
                .unwrap_err()
                .contains("negative")
        );
        assert_eq!(
            to_json(&f, ValueRef::Integer(1230), Some("EUR"), &ctx),
            json!("12.30")
        );
        assert_eq!(
            to_json(&f, ValueRef::Integer(1234), Some("KWD"), &ctx),
            json!("1.234")
        );
        assert_eq!(
            to_json(&f, ValueRef::Integer(5), Some("JPY"), &ctx),
            json!("5")
        );
    }

    #[test]
    fn decimals_round_trip_and_sum_exactly() {
        let a = to_scaled(Decimal::from_str("0.1").unwrap(), 6).unwrap();
        let b = to_scaled(Decimal::from_str("0.2").unwrap(), 6).unwrap();
        assert_eq!(from_scaled(a + b, 6), Decimal::from_str("0.3").unwrap());
        assert_eq!(to_scaled(Decimal::from_str("1.0000001").unwrap(), 6), None);
    }

    #[test]
    fn reference_kinds_are_checked() {
        let r = reference();
        let ctx = Ctx {
            reference: &r,
            base_currency: "EUR",
        };
        assert!(to_sql(&Field::new("c", Kind::Currency), &json!("XYZ"), None, &ctx).is_err());
        assert!(to_sql(&Field::new("c", Kind::Currency), &json!("USD"), None, &ctx).is_ok());
        assert!(to_sql(&Field::new("u", Kind::Uom), &json!("parsec"), None, &ctx).is_err());
        assert!(to_sql(&Field::new("e", Kind::Email), &json!("nope"), None, &ctx).is_err());
        assert!(
            to_sql(
                &Field::new("d", Kind::Date),
                &json!("2026-02-30"),
                None,
                &ctx
            )
            .is_err()
        );
    }
}
