//! The access-aware data layer: entity descriptions, permissions, and the one query
//! compiler every read path goes through, so forbidden columns are never read and
//! forbidden fields can be neither filtered, sorted nor grouped on.

pub mod entity;
pub mod permission;
pub mod query;
pub mod store;
pub mod values;
pub mod write;
