//! Document lines: parsing, default prices (price list with quantity breaks, then the
//! product's price), tax from the tenant's effective rules, and exact amounts.
//!
//! Amounts are integers: quantity ×10^6, prices and amounts in minor units of the
//! document currency, discount and tax rates ×10^6 (fractions: 0.2 is 20 %). A line's net
//! is `quantity × unit price × (1 − discount)` and its tax `net × rate`, each rounded half
//! to even once; document totals are the sums of the lines.

use rusqlite::{Connection, OptionalExtension, named_params};
use rust_decimal::Decimal;
use serde_json::Value as Json;

use super::Side;
use crate::access::values::to_scaled;
use crate::erp::accounting::model::{mul_div_half_even, round_money};
use crate::erp::accounting::store as acc_store;
use crate::erp::catalog::QTY_SCALE;
use crate::erp::price_lists::decimal;
use crate::error::{Error, FieldError, Result};
use crate::reference::Reference;

/// Scale of discount and tax rates (10^-6).
pub const RATE_SCALE: u32 = 6;
const ONE: i128 = 1_000_000;

/// A line as the client sent it.
#[derive(Debug, Clone)]
pub struct LineInput {
    pub product_id: String,
    pub quantity: i64,
    pub unit_price: Option<i64>,
    pub discount: i64,
}

/// A priced line, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priced {
    pub product_id: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub discount: i64,
    pub tax_rate: i64,
    pub net: i64,
    pub tax: i64,
}

/// (net, tax) of `quantity` at `unit_price` less `discount`, taxed at `tax_rate`.
pub fn amounts(quantity: i64, unit_price: i64, discount: i64, tax_rate: i64) -> Result<(i64, i64)> {
    let net = mul_div_half_even(
        i128::from(quantity) * i128::from(unit_price),
        ONE - i128::from(discount),
        ONE * ONE,
    );
    let tax = mul_div_half_even(net, i128::from(tax_rate), ONE);
    let cap = i128::from(crate::erp::accounting::model::MAX_LINE_MINOR);
    if net > cap || tax > cap {
        return Err(Error::invalid(
            "lines",
            "a line amount is out of range (at most 10^13 minor units)",
        ));
    }
    Ok((net as i64, tax as i64))
}

/// Parse `lines` (every problem reported, each naming its line).
pub fn parse(raw: Option<&Json>, currency: &str, reference: &Reference) -> Result<Vec<LineInput>> {
    let arr = raw
        .and_then(Json::as_array)
        .ok_or_else(|| Error::invalid("lines", "must be an array of lines"))?;
    if arr.is_empty() {
        return Err(Error::invalid("lines", "an order needs at least one line"));
    }
    if arr.len() > 1000 {
        return Err(Error::invalid("lines", "at most 1000 lines"));
    }
    let minor = reference.minor_units(currency).unwrap_or(2);
    let mut errors = Vec::new();
    let mut out = Vec::with_capacity(arr.len());
    for (i, v) in arr.iter().enumerate() {
        let field = |k: &str| format!("lines[{i}].{k}");
        let Some(o) = v.as_object() else {
            errors.push(FieldError::new(format!("lines[{i}]"), "must be an object"));
            continue;
        };
        if let Some(k) = o.keys().find(|k| {
            !["product_id", "quantity", "unit_price", "discount_percent"].contains(&k.as_str())
        }) {
            errors.push(FieldError::new(field(k), "unknown field"));
        }
        let product = o.get("product_id").and_then(Json::as_str);
        if product.is_none() {
            errors.push(FieldError::new(field("product_id"), "is required"));
        }
        let quantity = match o.get("quantity") {
            None | Some(Json::Null) => Err("is required".to_string()),
            Some(q) => positive(q, QTY_SCALE),
        };
        let unit_price = match o.get("unit_price") {
            None | Some(Json::Null) => Ok(None),
            Some(p) => decimal(p, minor).map(Some),
        };
        let discount = match o.get("discount_percent") {
            None | Some(Json::Null) => Ok(0),
            Some(d) => decimal(d, RATE_SCALE).and_then(|d| {
                if i128::from(d) > ONE {
                    Err("must be a fraction from 0 to 1 (0.1 is 10 %)".into())
                } else {
                    Ok(d)
                }
            }),
        };
        match (product, quantity, unit_price, discount) {
            (Some(p), Ok(q), Ok(u), Ok(d)) => out.push(LineInput {
                product_id: p.to_owned(),
                quantity: q,
                unit_price: u,
                discount: d,
            }),
            (_, q, u, d) => {
                if let Err(m) = q {
                    errors.push(FieldError::new(field("quantity"), m));
                }
                if let Err(m) = u {
                    errors.push(FieldError::new(field("unit_price"), m));
                }
                if let Err(m) = d {
                    errors.push(FieldError::new(field("discount_percent"), m));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Error::Invalid(errors))
    }
}

/// A decimal string strictly above zero at `scale`.
pub fn positive(v: &Json, scale: u32) -> std::result::Result<i64, String> {
    if let Json::String(s) = v
        && s.trim()
            .parse::<Decimal>()
            .is_ok_and(|d| d <= Decimal::ZERO)
    {
        return Err("must be more than zero".into());
    }
    decimal(v, scale)
}

struct Product {
    list_price: i64,
    cost: i64,
    tax_category: String,
}

fn product(c: &Connection, id: &str) -> Result<Option<Product>> {
    Ok(c.prepare_cached(
        "SELECT list_price, cost, tax_category FROM products WHERE id = :id AND deleted_at IS NULL",
    )?
    .query_row(named_params! { ":id": id }, |r| {
        Ok(Product {
            list_price: r.get(0)?,
            cost: r.get(1)?,
            tax_category: r.get(2)?,
        })
    })
    .optional()?)
}

/// The party's price list price for this quantity, if its list is in `currency`.
fn list_price(
    c: &Connection,
    price_list: Option<&str>,
    currency: &str,
    product_id: &str,
    quantity: i64,
) -> Result<Option<i64>> {
    let Some(list) = price_list else {
        return Ok(None);
    };
    Ok(c.prepare_cached(
        "SELECT i.unit_price FROM price_list_items i JOIN price_lists l ON l.id = i.price_list_id \
             WHERE l.id = :l AND l.currency = :cur AND l.deleted_at IS NULL AND i.product_id = :p \
             AND i.min_quantity <= :q ORDER BY i.min_quantity DESC LIMIT 1",
    )?
    .query_row(
        named_params! { ":l": list, ":cur": currency, ":p": product_id, ":q": quantity },
        |r| r.get(0),
    )
    .optional()?)
}

/// What pricing a document needs to know.
pub struct PriceCtx<'a> {
    pub side: &'a Side,
    pub currency: &'a str,
    pub base_currency: &'a str,
    pub date: &'a str,
    pub price_list: Option<&'a str>,
    pub reference: &'a Reference,
}

/// Price and tax every line; unknown products and missing prices name their line.
pub fn price(c: &Connection, pc: &PriceCtx<'_>, input: &[LineInput]) -> Result<Vec<Priced>> {
    let minor = pc.reference.minor_units(pc.currency).unwrap_or(2);
    let base_minor = pc.reference.minor_units(pc.base_currency).unwrap_or(2);
    let mut out = Vec::with_capacity(input.len());
    let mut errors = Vec::new();
    for (i, l) in input.iter().enumerate() {
        let Some(p) = product(c, &l.product_id)? else {
            errors.push(FieldError::new(
                format!("lines[{i}].product_id"),
                format!("no product with id {:?}", l.product_id),
            ));
            continue;
        };
        let unit_price = match l.unit_price {
            Some(u) => u,
            None => match list_price(c, pc.price_list, pc.currency, &l.product_id, l.quantity)? {
                Some(u) => u,
                None => {
                    // The product's own price (sales: list price; purchases: cost) is in
                    // the base currency; convert it at the document date.
                    let base = if pc.side.is_sales() {
                        p.list_price
                    } else {
                        p.cost
                    };
                    if pc.currency == pc.base_currency {
                        base
                    } else {
                        let Some(rate) =
                            acc_store::rate_on(c, pc.currency, pc.base_currency, pc.date)?
                        else {
                            errors.push(FieldError::new(
                                format!("lines[{i}].unit_price"),
                                format!(
                                    "no price in {} and no exchange rate {} → {} to convert the product's price",
                                    pc.currency, pc.currency, pc.base_currency
                                ),
                            ));
                            continue;
                        };
                        let converted = round_money(Decimal::new(base, base_minor) / rate, minor);
                        to_scaled(converted, minor).unwrap_or(0)
                    }
                }
            },
        };
        let Some((rate, _)) =
            crate::erp::reference::effective_tax_rate(c, pc.reference, &p.tax_category)?
        else {
            errors.push(FieldError::new(
                format!("lines[{i}].product_id"),
                format!("the product's tax category {:?} is unknown", p.tax_category),
            ));
            continue;
        };
        let tax_rate = to_scaled(rate, RATE_SCALE).unwrap_or(0);
        let (net, tax) = amounts(l.quantity, unit_price, l.discount, tax_rate)?;
        out.push(Priced {
            product_id: l.product_id.clone(),
            quantity: l.quantity,
            unit_price,
            discount: l.discount,
            tax_rate,
            net,
            tax,
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Error::Invalid(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: i64 = 1_000_000;

    #[test]
    fn net_and_tax_are_rounded_once_half_to_even() {
        // 3 × 19.99 = 59.97; 20 % tax = 11.994 → 11.99.
        assert_eq!(amounts(3 * U, 1999, 0, 200_000).unwrap(), (5997, 1199));
        // 1.5 kg × 0.33 = 0.495 → 0.50 (half to even: 49.5 cents → 50).
        assert_eq!(amounts(1_500_000, 33, 0, 0).unwrap(), (50, 0));
        // 10 % off 2 × 12.25 = 22.05; 7.7 % tax = 1.69785 → 1.70.
        assert_eq!(amounts(2 * U, 1225, 100_000, 77_000).unwrap(), (2205, 170));
        // A 100 % discount is free.
        assert_eq!(amounts(5 * U, 1000, U, 200_000).unwrap(), (0, 0));
    }

    #[test]
    fn huge_lines_are_refused_not_wrapped() {
        assert!(amounts(1_000_000_000 * U, 1_000_000_000_000, 0, 0).is_err());
    }

    #[test]
    fn bad_lines_are_named() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::schema::migrate_platform(&mut c).unwrap();
        let r = Reference::load(&c).unwrap();
        let raw = serde_json::json!([
            {"product_id": "p", "quantity": "0"},
            {"product_id": "p", "quantity": "-1"},
            {"quantity": "1", "unit_price": 3},
            {"product_id": "p", "quantity": "1", "discount_percent": "1.5"},
            {"product_id": "p", "quantity": "1", "colour": "red"}
        ]);
        let Err(Error::Invalid(errs)) = parse(Some(&raw), "EUR", &r) else {
            panic!("expected 422")
        };
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "lines[0].quantity",
                "lines[1].quantity",
                "lines[2].product_id",
                "lines[2].unit_price",
                "lines[3].discount_percent",
                "lines[4].colour"
            ]
        );
    }
}
