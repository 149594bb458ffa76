//! Products, warehouses, price lists and exchange rates.

use crate::access::entity::{Bound, CurrencyOf, Entity, Field, Kind};

pub static PRODUCTS: Entity = Entity {
    name: "products",
    table: "products",
    fields: &[
        Field::new("sku", Kind::Text { max: 64 })
            .required()
            .unique(),
        Field::new("name", Kind::Text { max: 200 })
            .required()
            .query(),
        Field::new("kind", Kind::Enum(&["goods", "service"]))
            .query()
            .default("goods"),
        Field::new("uom", Kind::Uom).query().default("unit"),
        Field::new("list_price", Kind::Money(CurrencyOf::Base)).default("0"),
        Field::new("cost", Kind::Money(CurrencyOf::Base))
            .sensitive()
            .default("0"),
        Field::new("tax_category", Kind::TaxCategory)
            .query()
            .default("standard"),
    ],
    own_rows: None,
    guard_delete: None,
};

pub static WAREHOUSES: Entity = Entity {
    name: "warehouses",
    table: "warehouses",
    fields: &[
        Field::new("code", Kind::Text { max: 32 })
            .required()
            .unique(),
        Field::new("name", Kind::Text { max: 200 })
            .required()
            .query(),
    ],
    own_rows: None,
    guard_delete: None,
};

/// Price list headers; their items are handled by the price list workflow.
pub static PRICE_LISTS: Entity = Entity {
    name: "price-lists",
    table: "price_lists",
    fields: &[
        Field::new("name", Kind::Text { max: 200 })
            .required()
            .query(),
        Field::new("currency", Kind::Currency)
            .required()
            .query()
            .immutable(),
    ],
    own_rows: None,
    guard_delete: None,
};

/// Scale of quantities in SQLite (10^-6).
pub const QTY_SCALE: u32 = 6;

/// A stored quantity as its decimal string (`"2.5"`, no trailing zeros).
pub fn qty_str(q: i64) -> String {
    crate::access::values::from_scaled(q, QTY_SCALE)
        .normalize()
        .to_string()
}

/// Scale of exchange rates in SQLite (10^-9).
pub const RATE_SCALE: u32 = 9;

pub static EXCHANGE_RATES: Entity = Entity {
    name: "exchange-rates",
    table: "exchange_rates",
    fields: &[
        Field::new("from", Kind::Currency).required().query(),
        Field::new("to", Kind::Currency).required().query(),
        Field::new(
            "rate",
            Kind::Decimal {
                scale: RATE_SCALE,
                min: Bound::Positive,
            },
        )
        .required(),
        Field::new("date", Kind::Date).required().query(),
    ],
    own_rows: None,
    guard_delete: None,
};
