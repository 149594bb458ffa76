//! Permissions: what a set of roles allows, on entities and on their fields.
//!
//! A grant is `resource:action`. The resource is an entity (`customers`), a field
//! (`customers.credit_limit`), or a wildcard (`*`, `customers.*`, `*.*`); the action is
//! `read`, `write`, `delete`, a document action (`confirm`, `post`, …) or `*`.
//! Ordinary fields follow their entity's permission; **sensitive** fields need a field
//! grant (`customers.credit_limit:read`), which only `*.*`, `customers.*` or the exact
//! field give — `*:read` (a viewer) does not reach them.

use std::collections::BTreeSet;

/// One parsed grant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    /// `*` or an entity name.
    entity: String,
    /// `None` for an entity grant; `Some("*")` or `Some(field)` for a field grant.
    field: Option<String>,
    /// `*` or an action.
    action: String,
}

impl Grant {
    /// Parse `entity:action` or `entity.field:action`.
    pub fn parse(raw: &str) -> Option<Self> {
        let (resource, action) = raw.split_once(':')?;
        let (entity, field) = match resource.split_once('.') {
            Some((e, f)) => (e, Some(f)),
            None => (resource, None),
        };
        let ok = |s: &str| {
            s == "*"
                || (!s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'-' || b == b'_'))
        };
        if !ok(entity) || !ok(action) || field.is_some_and(|f| !ok(f)) {
            return None;
        }
        Some(Grant {
            entity: entity.into(),
            field: field.map(Into::into),
            action: action.into(),
        })
    }

    fn matches_action(&self, action: &str) -> bool {
        self.action == "*" || self.action == action
    }

    fn matches_entity(&self, entity: &str) -> bool {
        self.entity == "*" || self.entity == entity
    }
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{}.{}:{}", self.entity, field, self.action),
            None => write!(f, "{}:{}", self.entity, self.action),
        }
    }
}

/// The effective permissions of a principal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    grants: BTreeSet<Grant>,
}

impl Permissions {
    pub fn from_grants<'a>(grants: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            grants: grants.into_iter().filter_map(Grant::parse).collect(),
        }
    }

    pub fn extend(&mut self, other: &Permissions) {
        self.grants.extend(other.grants.iter().cloned());
    }

    /// May the caller `action` on `entity` at all?
    pub fn allows(&self, entity: &str, action: &str) -> bool {
        self.grants
            .iter()
            .any(|g| g.field.is_none() && g.matches_entity(entity) && g.matches_action(action))
    }

    /// May the caller `action` (`read`/`write`) a field? Ordinary fields follow the entity;
    /// sensitive ones need a field grant.
    pub fn allows_field(&self, entity: &str, field: &str, sensitive: bool, action: &str) -> bool {
        if !self.allows(entity, action) {
            return false;
        }
        if !sensitive {
            return true;
        }
        self.grants.iter().any(|g| {
            g.matches_entity(entity)
                && g.field.as_deref().is_some_and(|f| f == "*" || f == field)
                && g.matches_action(action)
        })
    }

    /// Does this set grant everything `g` grants? (No one may hand out more than they hold.)
    pub fn covers(&self, g: &Grant) -> bool {
        self.grants.iter().any(|c| {
            (c.entity == "*" || c.entity == g.entity)
                && (c.action == "*" || c.action == g.action)
                && match (&c.field, &g.field) {
                    (None, None) => true,
                    (Some(cf), Some(gf)) => cf == "*" || cf == gf,
                    _ => false,
                }
        })
    }

    pub fn covers_all(&self, other: &Permissions) -> bool {
        other.grants.iter().all(|g| self.covers(g))
    }

    /// Sorted grants as strings (for `me`).
    pub fn to_strings(&self) -> Vec<String> {
        self.grants.iter().map(ToString::to_string).collect()
    }
}

/// The built-in role names of API.md.
pub const BUILT_IN_ROLES: &[&str] = &[
    "owner",
    "admin",
    "accountant",
    "sales",
    "purchasing",
    "warehouse",
    "viewer",
];

/// Grants of a built-in role; `None` for a custom role (stored in the tenant file).
pub fn built_in(role: &str) -> Option<&'static [&'static str]> {
    Some(match role {
        "owner" | "admin" => &["*:*", "*.*:*"],
        "accountant" => &[
            "accounts:*",
            "journal-entries:*",
            "fiscal-periods:*",
            "invoices:*",
            "payments:*",
            "reports:read",
            "customers:*",
            "customers.*:*",
            "suppliers:*",
            "suppliers.*:*",
            "products:*",
            "products.*:*",
            "currencies:*",
            "exchange-rates:*",
            "tax-rules:*",
            "price-lists:*",
            "warehouses:read",
            "sales-orders:read",
            "purchase-orders:read",
            "audit-log:read",
            "jobs:read",
            "exports:*",
        ],
        "sales" => &[
            "customers:read",
            "customers:write",
            "sales-orders:read",
            "sales-orders:write",
            "sales-orders:confirm",
            "sales-orders:cancel",
            "products:read",
            "price-lists:read",
            "warehouses:read",
            "currencies:read",
            "exchange-rates:read",
            "tax-rules:read",
            "stock:read",
        ],
        "purchasing" => &[
            "suppliers:read",
            "suppliers:write",
            "purchase-orders:read",
            "purchase-orders:write",
            "purchase-orders:confirm",
            "purchase-orders:cancel",
            "products:read",
            "products.cost:read",
            "warehouses:read",
            "currencies:read",
            "exchange-rates:read",
            "tax-rules:read",
            "stock:read",
        ],
        "warehouse" => &[
            "stock:read",
            "stock-moves:read",
            "stock-adjustments:read",
            "stock-adjustments:write",
            "sales-orders:read",
            "sales-orders:deliver",
            "purchase-orders:read",
            "purchase-orders:receive",
            "products:read",
            "warehouses:read",
            "warehouses:write",
            "work-orders:*",
            "boms:read",
        ],
        "viewer" => &["*:read"],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(r: &str) -> Permissions {
        Permissions::from_grants(built_in(r).unwrap().iter().copied())
    }

    #[test]
    fn grants_parse_and_refuse_garbage() {
        assert!(Grant::parse("customers:read").is_some());
        assert!(Grant::parse("customers.credit_limit:read").is_some());
        assert!(Grant::parse("*.*:*").is_some());
        for bad in [
            "customers",
            ":read",
            "customers:",
            "Customers:read",
            "a.b.c:read",
            "x;drop:read",
        ] {
            assert!(Grant::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn sensitive_fields_need_a_field_grant() {
        let viewer = role("viewer");
        assert!(viewer.allows("customers", "read"));
        assert!(!viewer.allows("customers", "write"));
        assert!(viewer.allows_field("customers", "name", false, "read"));
        assert!(!viewer.allows_field("customers", "credit_limit", true, "read"));
        let accountant = role("accountant");
        assert!(accountant.allows_field("customers", "credit_limit", true, "read"));
        assert!(accountant.allows_field("customers", "credit_limit", true, "write"));
        let sales = role("sales");
        assert!(!sales.allows_field("customers", "credit_limit", true, "read"));
        assert!(sales.allows_field("customers", "name", false, "write"));
        let purchasing = role("purchasing");
        assert!(purchasing.allows_field("products", "cost", true, "read"));
        assert!(!purchasing.allows_field("products", "cost", true, "write"));
        let owner = role("owner");
        assert!(owner.allows_field("products", "cost", true, "write"));
        assert!(owner.allows("anything", "delete"));
    }

    #[test]
    fn nobody_hands_out_more_than_they_hold() {
        assert!(role("owner").covers_all(&role("accountant")));
        assert!(role("admin").covers_all(&role("owner")));
        assert!(!role("accountant").covers_all(&role("owner")));
        assert!(!role("viewer").covers_all(&role("sales")));
        assert!(
            role("accountant")
                .covers_all(&Permissions::from_grants(["customers.credit_limit:read"]))
        );
        assert!(
            !role("sales").covers_all(&Permissions::from_grants(["customers.credit_limit:read"]))
        );
    }

    #[test]
    fn every_built_in_role_is_well_formed() {
        for r in BUILT_IN_ROLES {
            let grants = built_in(r).unwrap();
            assert_eq!(
                Permissions::from_grants(grants.iter().copied())
                    .to_strings()
                    .len(),
                grants.len(),
                "{r}"
            );
        }
    }
}
