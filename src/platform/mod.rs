//! The platform catalog in `platform.db`: tenants, platform tokens, the platform audit
//! log. It never holds tenant business data.

pub mod grants;
pub mod model;
pub mod store;
