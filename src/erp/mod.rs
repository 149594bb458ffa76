//! The business areas. Each describes its entities as data for the access layer and adds
//! the workflows the generic layer cannot express.

pub mod accounting;
pub mod catalog;
pub mod demo;
pub mod inventory;
pub mod invoices;
pub mod orders;
pub mod parties;
pub mod price_lists;
pub mod reference;
pub mod settings;

use crate::access::entity::Entity;

/// Every described entity served by the generic collection routes.
pub const ENTITIES: &[&Entity] = &[
    &parties::CUSTOMERS,
    &parties::SUPPLIERS,
    &catalog::PRODUCTS,
    &catalog::WAREHOUSES,
    &catalog::EXCHANGE_RATES,
    &accounting::ACCOUNTS,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::entity::{CurrencyOf, Kind};

    #[test]
    fn money_fields_follow_their_currency_and_currencies_are_not_sensitive() {
        for e in ENTITIES {
            for (i, f) in e.fields.iter().enumerate() {
                if let Kind::Money(CurrencyOf::Field(c)) = f.kind {
                    let pos = e
                        .fields
                        .iter()
                        .position(|g| g.name == c)
                        .expect("currency field exists");
                    assert!(pos < i, "{}.{} comes before its currency", e.name, f.name);
                    assert!(!e.fields[pos].sensitive);
                }
                assert!(!(f.unique && f.sensitive), "{}.{}", e.name, f.name);
            }
        }
    }
}
