//! Platform reference data in memory: ISO 4217 currencies (with minor units), units of
//! measure, tax categories with default rates. Seeded by platform migrations, loaded once
//! at start, read-only to tenants; a tenant customises by overriding in its own file.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use rust_decimal::Decimal;

use crate::error::Result;

#[derive(Debug, Clone)]
pub struct Currency {
    pub code: String,
    pub name: String,
    pub minor_units: u32,
}

#[derive(Debug, Clone)]
pub struct TaxCategory {
    pub code: String,
    pub name: String,
    pub default_rate: Decimal,
}

#[derive(Debug, Clone, Default)]
pub struct Reference {
    pub currencies: BTreeMap<String, Currency>,
    pub units: BTreeSet<String>,
    pub tax_categories: BTreeMap<String, TaxCategory>,
}

impl Reference {
    pub fn load(conn: &rusqlite::Connection) -> Result<Self> {
        let mut r = Reference::default();
        let mut stmt = conn.prepare("SELECT code, name, minor_units FROM currencies")?;
        for row in stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })? {
            let (code, name, minor) = row?;
            let minor_units = u32::try_from(minor).unwrap_or(2);
            r.currencies.insert(
                code.clone(),
                Currency {
                    code,
                    name,
                    minor_units,
                },
            );
        }
        let mut stmt = conn.prepare("SELECT code FROM units")?;
        for row in stmt.query_map([], |r| r.get::<_, String>(0))? {
            r.units.insert(row?);
        }
        let mut stmt = conn.prepare("SELECT code, name, default_rate FROM tax_categories")?;
        for row in stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })? {
            let (code, name, rate) = row?;
            let default_rate = Decimal::from_str(&rate)
                .map_err(|e| anyhow::anyhow!("bad default rate for {code}: {e}"))?;
            r.tax_categories.insert(
                code.clone(),
                TaxCategory {
                    code,
                    name,
                    default_rate,
                },
            );
        }
        Ok(r)
    }

    pub fn currency(&self, code: &str) -> Option<&Currency> {
        self.currencies.get(code)
    }

    pub fn minor_units(&self, code: &str) -> Option<u32> {
        self.currency(code).map(|c| c.minor_units)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_seed_loads_with_correct_minor_units() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        crate::schema::migrate_platform(&mut c).unwrap();
        let r = Reference::load(&c).unwrap();
        assert_eq!(r.minor_units("EUR"), Some(2));
        assert_eq!(r.minor_units("JPY"), Some(0));
        assert_eq!(r.minor_units("KWD"), Some(3));
        assert!(r.currency("XXX").is_none());
        assert!(r.units.contains("kg"));
        assert_eq!(
            r.tax_categories["standard"].default_rate,
            Decimal::from_str("0.2").unwrap()
        );
        assert_eq!(r.tax_categories.len(), 4);
    }
}
