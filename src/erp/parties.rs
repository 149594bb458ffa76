//! Customers and suppliers: the parties documents are made out to.

use crate::access::entity::{CurrencyOf, Entity, Field, Kind, OwnRowsRule};
use crate::erp::catalog::PRICE_LISTS;

const PARTY_FIELDS: [Field; 9] = [
    Field::new("name", Kind::Text { max: 200 })
        .required()
        .query(),
    Field::new("email", Kind::Email).query(),
    Field::new("phone", Kind::Text { max: 50 }),
    Field::new("address", Kind::Text { max: 1000 }),
    // The currency scales credit_limit: fixed at creation, or a PATCH would silently
    // reinterpret the stored amount.
    Field::new("currency", Kind::Currency)
        .query()
        .default("base")
        .immutable(),
    Field::new("tax_id", Kind::Text { max: 50 }).query(),
    Field::new("price_list_id", Kind::Ref(&PRICE_LISTS)).query(),
    Field::new("credit_limit", Kind::Money(CurrencyOf::Field("currency"))).sensitive(),
    Field::new("payment_terms_days", Kind::Int { min: 0, max: 3650 })
        .sensitive()
        .query(),
];

/// The tenant setting that restricts sales users to the customers they own.
pub const SALES_OWN_CUSTOMERS: &str = "sales.own_customers_only";

pub static CUSTOMERS: Entity = Entity {
    name: "customers",
    table: "customers",
    fields: &PARTY_FIELDS,
    own_rows: Some(OwnRowsRule {
        setting: SALES_OWN_CUSTOMERS,
        column: "owner_id",
        roles: &["sales"],
    }),
    guard_delete: None,
};

pub static SUPPLIERS: Entity = Entity {
    name: "suppliers",
    table: "suppliers",
    fields: &PARTY_FIELDS,
    own_rows: None,
    guard_delete: None,
};
