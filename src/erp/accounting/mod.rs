//! Double-entry accounting: the chart of accounts (a described entity), journal entries
//! (draft → post → reverse) with exact money and explicit rounding, gapless numbering per
//! fiscal year, closed periods, the reports, and the posting API other domains use.
//!
//! Must not: write journal rows from anywhere but `posting` (other areas call
//! [`posting::post_document`]); let a posted entry change.

pub mod model;
pub mod periods;
pub mod posting;
pub mod reports;
pub mod routes;
pub mod store;

use crate::access::entity::{Entity, Field, Kind};
use crate::error::{Error, Result};

fn guard_account_delete(c: &rusqlite::Connection, id: &str) -> Result<()> {
    if store::has_postings(c, id)? {
        return Err(Error::Conflict(
            "the account has journal lines; deactivate it instead".into(),
        ));
    }
    Ok(())
}

pub static ACCOUNTS: Entity = Entity {
    name: "accounts",
    table: "accounts",
    fields: &[
        Field::new("code", Kind::Text { max: 20 })
            .required()
            .unique(),
        Field::new("name", Kind::Text { max: 200 })
            .required()
            .query(),
        Field::new(
            "type",
            Kind::Enum(&["asset", "liability", "equity", "income", "expense"]),
        )
        .required()
        .query()
        .immutable(),
        Field::new("active", Kind::Bool).query().default("true"),
    ],
    own_rows: None,
    guard_delete: Some(guard_account_delete),
};
