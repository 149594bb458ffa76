//! Journal entries as plain Rust: parsing lines, converting to the base currency with
//! explicit rounding, and the balance rule. No SQL here; unit tests beside.

use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value as Json;

use crate::access::values::to_scaled;
use crate::error::{Error, FieldError, Result};
use crate::reference::Reference;

/// Scale of stored exchange rates (10^-9), as in `exchange_rates`.
pub const RATE_SCALE: u32 = crate::erp::catalog::RATE_SCALE;

/// The largest amount one line may carry, in minor units (10^13: a hundred billion in a
/// two-decimal currency). It keeps every report sum far inside i64: a tenant would need
/// ~900,000 maximal lines on one account before SQLite's SUM could overflow.
pub const MAX_LINE_MINOR: i64 = 10_000_000_000_000;

/// One line as the client sent it, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct LineInput {
    pub account_id: String,
    /// Exactly one of debit and credit is positive, in the line's currency.
    pub debit: Decimal,
    pub credit: Decimal,
    pub currency: String,
    pub memo: Option<String>,
}

/// A line ready to store: base amounts and the original amount, currency and rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseLine {
    pub account_id: String,
    pub debit: i64,
    pub credit: i64,
    pub currency: String,
    pub amount: i64,
    pub rate: i64,
    pub memo: Option<String>,
}

fn line_field(i: usize, f: &str) -> String {
    format!("lines[{i}].{f}")
}

fn money(v: Option<&Json>, field: &str) -> std::result::Result<Decimal, FieldError> {
    match v {
        None | Some(Json::Null) => Ok(Decimal::ZERO),
        Some(Json::String(s)) => {
            let d = Decimal::from_str(s.trim())
                .map_err(|_| FieldError::new(field, format!("{s:?} is not a decimal number")))?;
            if d.is_sign_negative() && !d.is_zero() {
                return Err(FieldError::new(field, "must not be negative"));
            }
            Ok(d)
        }
        Some(Json::Number(_)) => Err(FieldError::new(
            field,
            "must be a decimal string such as \"12.30\", not a JSON number",
        )),
        Some(_) => Err(FieldError::new(field, "must be a decimal string")),
    }
}

/// Parse `lines` (all problems reported, each naming its line).
pub fn parse_lines(
    raw: &Json,
    base_currency: &str,
    reference: &Reference,
) -> Result<Vec<LineInput>> {
    let arr = raw
        .as_array()
        .ok_or_else(|| Error::invalid("lines", "must be an array"))?;
    if arr.len() < 2 {
        return Err(Error::invalid("lines", "an entry needs at least two lines"));
    }
    if arr.len() > 1000 {
        return Err(Error::invalid("lines", "at most 1000 lines"));
    }
    let mut errors = Vec::new();
    let mut out = Vec::with_capacity(arr.len());
    for (i, v) in arr.iter().enumerate() {
        let Some(o) = v.as_object() else {
            errors.push(FieldError::new(format!("lines[{i}]"), "must be an object"));
            continue;
        };
        if let Some(k) = o
            .keys()
            .find(|k| !["account_id", "debit", "credit", "currency", "memo"].contains(&k.as_str()))
        {
            errors.push(FieldError::new(line_field(i, k), "unknown field"));
        }
        let account = o.get("account_id").and_then(Json::as_str);
        if account.is_none() {
            errors.push(FieldError::new(line_field(i, "account_id"), "is required"));
        }
        let currency = o
            .get("currency")
            .and_then(Json::as_str)
            .unwrap_or(base_currency)
            .to_owned();
        let Some(minor) = reference.minor_units(&currency) else {
            errors.push(FieldError::new(
                line_field(i, "currency"),
                format!("unknown currency {currency:?}"),
            ));
            continue;
        };
        let (debit, credit) = match (
            money(o.get("debit"), &line_field(i, "debit")),
            money(o.get("credit"), &line_field(i, "credit")),
        ) {
            (Ok(d), Ok(c)) => (d, c),
            (d, c) => {
                errors.extend(d.err());
                errors.extend(c.err());
                continue;
            }
        };
        match (debit.is_zero(), credit.is_zero()) {
            (false, false) => errors.push(FieldError::new(
                format!("lines[{i}]"),
                "has both a debit and a credit",
            )),
            (true, true) => errors.push(FieldError::new(
                format!("lines[{i}]"),
                "has neither a debit nor a credit",
            )),
            _ => {}
        }
        if debit.normalize().scale() > minor || credit.normalize().scale() > minor {
            errors.push(FieldError::new(
                format!("lines[{i}]"),
                format!("has more decimal places than {currency} allows ({minor})"),
            ));
        }
        let memo = o.get("memo").and_then(Json::as_str).map(str::to_owned);
        if let Some(account_id) = account {
            out.push(LineInput {
                account_id: account_id.to_owned(),
                debit,
                credit,
                currency,
                memo,
            });
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Error::Invalid(errors))
    }
}

/// The result of converting an entry to the base currency.
#[derive(Debug, PartialEq, Eq)]
pub struct Converted {
    pub lines: Vec<BaseLine>,
    /// Debit-minus-credit difference left by rounding foreign lines to base minor units;
    /// the caller books it to the rounding account (never lost).
    pub rounding: i64,
}

/// `n × num / den` rounded half to even, in integers (amounts, quantities and rates are
/// scaled integers; i128 keeps the product of two i64 values exact).
pub fn mul_div_half_even(n: i128, num: i128, den: i128) -> i128 {
    let p = n * num;
    let (q, r) = (p.div_euclid(den), p.rem_euclid(den));
    match (2 * r).cmp(&den) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    }
}

/// Money rounding everywhere in erpd: half to even at the currency's minor units.
pub fn round_money(d: Decimal, minor: u32) -> Decimal {
    d.round_dp_with_strategy(minor, RoundingStrategy::MidpointNearestEven)
}

/// Convert lines to base minor units and check the balance.
///
/// Base-currency lines are exact, so an entry of only base lines must balance exactly.
/// A foreign line's base amount is `amount × rate` rounded half-even to the base minor
/// units, which can be off by half a minor unit per line; a difference no larger than
/// that bound is rounding and goes to the rounding account. Anything larger is an
/// unbalanced entry (422).
pub fn convert(
    lines: &[LineInput],
    base_currency: &str,
    reference: &Reference,
    rate_of: &mut dyn FnMut(&str) -> Option<Decimal>,
) -> Result<Converted> {
    let base_minor = reference.minor_units(base_currency).unwrap_or(2);
    let mut out = Vec::with_capacity(lines.len());
    let mut errors = Vec::new();
    // The rounding each foreign line's conversion introduced, in base units: the only
    // imbalance that may be booked to the rounding account.
    let mut rounding_room = Decimal::ZERO;
    for (i, l) in lines.iter().enumerate() {
        let minor = reference.minor_units(&l.currency).unwrap_or(2);
        let rate = if l.currency == base_currency {
            Decimal::ONE
        } else {
            match rate_of(&l.currency) {
                Some(r) => r,
                None => {
                    errors.push(FieldError::new(
                        line_field(i, "currency"),
                        format!(
                            "no exchange rate {} → {base_currency} on or before the entry date",
                            l.currency
                        ),
                    ));
                    continue;
                }
            }
        };
        let original = if l.debit.is_zero() { l.credit } else { l.debit };
        let Some(exact) = original.checked_mul(rate) else {
            errors.push(FieldError::new(
                format!("lines[{i}]"),
                "amount is out of range",
            ));
            continue;
        };
        let base = round_money(exact, base_minor);
        rounding_room += (base - exact).abs();
        let (Some(amount), Some(base_minor_units), Some(rate_scaled)) = (
            to_scaled(original, minor),
            to_scaled(base, base_minor),
            to_scaled(rate.round_dp(RATE_SCALE), RATE_SCALE),
        ) else {
            errors.push(FieldError::new(
                format!("lines[{i}]"),
                "amount is out of range",
            ));
            continue;
        };
        if amount > MAX_LINE_MINOR || base_minor_units > MAX_LINE_MINOR {
            errors.push(FieldError::new(
                format!("lines[{i}]"),
                format!("amount is out of range (at most {MAX_LINE_MINOR} minor units)"),
            ));
            continue;
        }
        let (debit, credit) = if l.debit.is_zero() {
            (0, base_minor_units)
        } else {
            (base_minor_units, 0)
        };
        out.push(BaseLine {
            account_id: l.account_id.clone(),
            debit,
            credit,
            currency: l.currency.clone(),
            amount,
            rate: rate_scaled,
            memo: l.memo.clone(),
        });
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    // Sums in i128: a thousand lines of i64 amounts cannot overflow it.
    let debits: i128 = out.iter().map(|l| i128::from(l.debit)).sum();
    let credits: i128 = out.iter().map(|l| i128::from(l.credit)).sum();
    let too_large = || Error::invalid("lines", "the entry's totals are out of range");
    let (debits, credits) = (
        i64::try_from(debits).map_err(|_| too_large())?,
        i64::try_from(credits).map_err(|_| too_large())?,
    );
    let diff = debits - credits;
    if Decimal::new(diff.abs(), base_minor) > rounding_room {
        let scale = |n: i64| Decimal::new(n, base_minor);
        return Err(Error::invalid(
            "lines",
            format!(
                "unbalanced: debits {} ≠ credits {} ({base_currency})",
                scale(debits),
                scale(credits)
            ),
        ));
    }
    Ok(Converted {
        lines: out,
        rounding: diff,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reference() -> Reference {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        crate::schema::migrate_platform(&mut c).unwrap();
        Reference::load(&c).unwrap()
    }

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn lines(v: Json, base: &str) -> Result<Vec<LineInput>> {
        parse_lines(&v, base, &reference())
    }

    #[test]
    fn point_one_plus_point_two_balances_point_three_exactly() {
        let r = reference();
        let l = lines(json!([
            {"account_id": "a", "debit": "0.1"}, {"account_id": "b", "debit": "0.2"}, {"account_id": "c", "credit": "0.3"}
        ]), "EUR").unwrap();
        let c = convert(&l, "EUR", &r, &mut |_| None).unwrap();
        assert_eq!(c.rounding, 0);
        assert_eq!(c.lines.iter().map(|l| l.debit).sum::<i64>(), 30);
    }

    #[test]
    fn thirds_split_over_lines_must_add_up_in_minor_units() {
        let r = reference();
        // 100.00 split in thirds: 33.33 + 33.33 + 33.34.
        let ok = lines(json!([
            {"account_id": "a", "credit": "100.00"},
            {"account_id": "b", "debit": "33.33"}, {"account_id": "c", "debit": "33.33"}, {"account_id": "d", "debit": "33.34"}
        ]), "EUR").unwrap();
        assert_eq!(convert(&ok, "EUR", &r, &mut |_| None).unwrap().rounding, 0);
        // 33.33 × 3 = 99.99: a base-only entry has no rounding excuse.
        let off = lines(json!([
            {"account_id": "a", "credit": "100.00"},
            {"account_id": "b", "debit": "33.33"}, {"account_id": "c", "debit": "33.33"}, {"account_id": "d", "debit": "33.33"}
        ]), "EUR").unwrap();
        let e = convert(&off, "EUR", &r, &mut |_| None).unwrap_err();
        assert!(
            matches!(e, Error::Invalid(ref errs) if errs[0].message.contains("unbalanced")),
            "{e:?}"
        );
    }

    #[test]
    fn currencies_with_zero_two_and_three_minor_units() {
        let r = reference();
        assert!(lines(json!([{"account_id": "a", "debit": "1.5", "currency": "JPY"}, {"account_id": "b", "credit": "1.5", "currency": "JPY"}]), "EUR").is_err());
        assert!(lines(json!([{"account_id": "a", "debit": "1.234"}, {"account_id": "b", "credit": "1.234"}]), "KWD").is_ok());
        assert!(lines(json!([{"account_id": "a", "debit": "1.234"}, {"account_id": "b", "credit": "1.234"}]), "EUR").is_err());
        // JPY base: foreign EUR lines convert to whole yen.
        let l = lines(json!([
            {"account_id": "a", "debit": "10.01", "currency": "EUR"}, {"account_id": "b", "credit": "10.01", "currency": "EUR"}
        ]), "JPY").unwrap();
        let c = convert(&l, "JPY", &r, &mut |_| Some(d("161.5"))).unwrap();
        assert_eq!(c.lines[0].debit, 1617); // 1616.615 → 1617 yen
        assert_eq!(c.rounding, 0);
    }

    #[test]
    fn rounding_differences_are_reported_not_lost() {
        let r = reference();
        // Two USD lines and one EUR line: each USD line rounds on its own.
        let l = lines(
            json!([
                {"account_id": "a", "debit": "0.05", "currency": "USD"},
                {"account_id": "b", "debit": "0.05", "currency": "USD"},
                {"account_id": "c", "credit": "0.09"}
            ]),
            "EUR",
        )
        .unwrap();
        let c = convert(&l, "EUR", &r, &mut |_| Some(d("0.9"))).unwrap();
        // 0.045 → 0.04 (half-even) twice = 0.08 against 0.09: 1 cent to the rounding account.
        assert_eq!((c.lines[0].debit, c.lines[1].debit, c.rounding), (4, 4, -1));
    }

    #[test]
    fn bad_lines_are_named() {
        let e = lines(json!([
            {"account_id": "a", "debit": "1", "credit": "1"}, {"account_id": "b", "credit": "-1"}, {"account_id": "c", "debit": 1.0}
        ]), "EUR").unwrap_err();
        match e {
            Error::Invalid(errs) => {
                let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
                assert_eq!(fields, ["lines[0]", "lines[1].credit", "lines[2].debit"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_missing_rate_names_the_line() {
        let r = reference();
        let l = lines(json!([{"account_id": "a", "debit": "1", "currency": "USD"}, {"account_id": "b", "credit": "1"}]), "EUR").unwrap();
        let e = convert(&l, "EUR", &r, &mut |_| None).unwrap_err();
        assert!(matches!(e, Error::Invalid(ref errs) if errs[0].field == "lines[0].currency"));
    }
}
