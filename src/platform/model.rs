//! Platform catalog records: what `platform.db` knows about each tenant.

use serde::Serialize;

use crate::error::Error;
use crate::tenancy::TenantId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    Active,
    Suspended,
    /// Soft-deleted: the file sits in the trash; only the platform sees the row.
    Deleted,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
            TenantStatus::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(TenantStatus::Active),
            "suspended" => Some(TenantStatus::Suspended),
            "deleted" => Some(TenantStatus::Deleted),
            _ => None,
        }
    }
}

/// One row of `platform.db`'s `tenants`.
#[derive(Debug, Clone)]
pub struct TenantRecord {
    pub id: TenantId,
    pub name: String,
    pub status: TenantStatus,
    pub base_currency: String,
    pub modules: Vec<String>,
    pub schema_version: i64,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    pub deleted_at: Option<String>,
    pub trash_file: Option<String>,
    pub last_backup_at: Option<String>,
}

/// The modules a tenant can enable; all are on by default.
pub const MODULES: &[&str] = &[
    "accounting",
    "sales",
    "purchasing",
    "inventory",
    "manufacturing",
];

/// What a new tenant needs; validated by [`NewTenant::parse`].
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub id: TenantId,
    pub name: String,
    pub base_currency: String,
    pub modules: Vec<String>,
    pub owner_email: String,
}

impl NewTenant {
    pub fn parse(
        id: &str,
        name: &str,
        base_currency: &str,
        modules: Option<Vec<String>>,
        owner_email: Option<String>,
    ) -> Result<Self, Error> {
        // A bad id is a 400 (the contract): it is an identifier, not a value.
        let id = TenantId::parse(id)?;
        let mut errors = Vec::new();
        let name = name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 200 {
            errors.push(crate::error::FieldError::new(
                "name",
                "must be 1-200 characters",
            ));
        }
        if base_currency.len() != 3 || !base_currency.bytes().all(|b| b.is_ascii_uppercase()) {
            errors.push(crate::error::FieldError::new(
                "base_currency",
                "must be an ISO 4217 code such as EUR",
            ));
        }
        let modules = modules.unwrap_or_else(|| MODULES.iter().map(|m| m.to_string()).collect());
        for m in &modules {
            if !MODULES.contains(&m.as_str()) {
                errors.push(crate::error::FieldError::new(
                    "modules",
                    format!("unknown module {m:?}"),
                ));
            }
        }
        let owner_email = owner_email.unwrap_or_else(|| format!("owner@{id}.invalid"));
        if !owner_email.contains('@') || owner_email.len() > 254 {
            errors.push(crate::error::FieldError::new(
                "owner_email",
                "must be an email address",
            ));
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        Ok(Self {
            id,
            name,
            base_currency: base_currency.to_owned(),
            modules,
            owner_email,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_tenant_validates_every_field() {
        assert!(NewTenant::parse("acme", "Acme", "EUR", None, None).is_ok());
        assert_eq!(
            NewTenant::parse("../x", "Acme", "EUR", None, None)
                .unwrap_err()
                .status(),
            400
        );
        let e = NewTenant::parse("acme", " ", "eur", Some(vec!["crm".into()]), None).unwrap_err();
        match e {
            Error::Invalid(errs) => assert_eq!(errs.len(), 3),
            other => panic!("{other:?}"),
        }
    }
}
