//! Built-in roles and the permissions they grant. The full catalogue (entities, field
//! permissions, custom roles) arrives with the access-control layer; until then the
//! built-in roles map to coarse permissions so `me` can say what a caller may do.

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

/// Effective permissions of a set of roles, sorted and deduplicated.
pub fn effective(roles: &[String]) -> Vec<String> {
    let mut out: Vec<String> = roles
        .iter()
        .flat_map(|r| grants(r).iter().map(|p| p.to_string()))
        .collect();
    out.sort();
    out.dedup();
    out
}

fn grants(role: &str) -> &'static [&'static str] {
    match role {
        "owner" | "admin" => &["*:*"],
        "accountant" => &[
            "accounting:*",
            "invoices:*",
            "payments:*",
            "reports:read",
            "customers:*",
            "suppliers:*",
            "products:*",
        ],
        "sales" => &["customers:*", "sales-orders:*", "products:read"],
        "purchasing" => &[
            "suppliers:*",
            "purchase-orders:*",
            "products:read",
            "products.cost:read",
        ],
        "warehouse" => &[
            "stock:*",
            "stock-adjustments:*",
            "sales-orders:read",
            "purchase-orders:read",
        ],
        "viewer" => &["*:read"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn owners_get_everything_and_unknown_roles_nothing() {
        assert_eq!(super::effective(&["owner".into()]), ["*:*"]);
        assert!(super::effective(&["nobody".into()]).is_empty());
    }
}
