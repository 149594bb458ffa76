//! SQL for users and tokens inside a tenant file.

use rusqlite::{Connection, OptionalExtension, named_params};

use super::Principal;
use crate::access::permission::{self, Permissions};
use crate::error::Result;

/// Insert a user with its roles; returns the new id.
pub fn insert_user(tx: &Connection, email: &str, name: &str, roles: &[&str]) -> Result<String> {
    let id = uuid::Uuid::now_v7().to_string();
    let now = crate::clock::now_rfc3339();
    tx.prepare_cached(
        "INSERT INTO users (id, email, name, created_at, updated_at) VALUES (:id, :email, :name, :now, :now)",
    )?
    .execute(named_params! { ":id": id, ":email": email, ":name": name, ":now": now })?;
    let mut stmt = tx.prepare_cached("INSERT INTO user_roles (user_id, role) VALUES (:u, :r)")?;
    for role in roles {
        stmt.execute(named_params! { ":u": id, ":r": role })?;
    }
    Ok(id)
}

/// Store a token's hash for a user; returns the token id.
pub fn insert_token(
    tx: &Connection,
    user_id: &str,
    name: &str,
    token_hash: &str,
) -> Result<String> {
    let id = uuid::Uuid::now_v7().to_string();
    tx.prepare_cached(
        "INSERT INTO api_tokens (id, user_id, name, token_hash, created_at) VALUES (:id, :u, :name, :hash, :now)",
    )?
    .execute(named_params! {
        ":id": id, ":u": user_id, ":name": name, ":hash": token_hash, ":now": crate::clock::now_rfc3339(),
    })?;
    Ok(id)
}

/// The principal behind a live token: unrevoked, unexpired, of an active, undeleted user.
pub fn find_principal_by_token(conn: &Connection, token_hash: &str) -> Result<Option<Principal>> {
    let found = conn
        .prepare_cached(
            "SELECT u.id, u.email, u.name, t.id, t.expires_at FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = :hash AND t.revoked_at IS NULL \
             AND (t.expires_at IS NULL OR t.expires_at > :now) \
             AND u.active = 1 AND u.deleted_at IS NULL",
        )?
        .query_row(
            named_params! { ":hash": token_hash, ":now": crate::clock::now_rfc3339() },
            |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    let Some((user_id, email, name, token_id, token_expires_at)) = found else {
        return Ok(None);
    };
    let roles = list_roles(conn, &user_id)?;
    let perms = permissions_of(conn, &roles)?;
    Ok(Some(Principal {
        user_id,
        email,
        name,
        token_id,
        roles,
        perms,
        token_expires_at,
    }))
}

/// Effective permissions of roles: built-in ones from code, custom ones from the file.
pub fn permissions_of(conn: &Connection, roles: &[String]) -> Result<Permissions> {
    let mut perms = Permissions::default();
    for role in roles {
        match permission::built_in(role) {
            Some(grants) => perms.extend(&Permissions::from_grants(grants.iter().copied())),
            None => {
                let stored: Option<String> = conn
                    .prepare_cached("SELECT permissions FROM roles WHERE name = :name")?
                    .query_row(named_params! { ":name": role }, |r| r.get(0))
                    .optional()?;
                let grants: Vec<String> = stored
                    .and_then(|s| serde_json::from_str(&s).ok())
                    .unwrap_or_default();
                perms.extend(&Permissions::from_grants(grants.iter().map(String::as_str)));
            }
        }
    }
    Ok(perms)
}

pub fn list_roles(conn: &Connection, user_id: &str) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT role FROM user_roles WHERE user_id = :u ORDER BY role")?;
    let rows = stmt.query_map(named_params! { ":u": user_id }, |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The first user holding a role (e.g. the owner), if any.
pub fn find_user_with_role(conn: &Connection, role: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT u.id FROM users u JOIN user_roles r ON r.user_id = u.id \
             WHERE r.role = :role AND u.deleted_at IS NULL ORDER BY u.created_at LIMIT 1",
        )?
        .query_row(named_params! { ":role": role }, |r| r.get(0))
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_live_tokens_of_active_users_resolve() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::schema::migrate_tenant(&mut c).unwrap();
        let u = insert_user(&c, "a@b.c", "A", &["owner"]).unwrap();
        insert_token(&c, &u, "t", "h1").unwrap();
        let p = find_principal_by_token(&c, "h1").unwrap().unwrap();
        assert_eq!(p.roles, ["owner"]);
        assert!(find_principal_by_token(&c, "h2").unwrap().is_none());
        c.execute(
            "UPDATE api_tokens SET revoked_at = '2020-01-01T00:00:00Z'",
            [],
        )
        .unwrap();
        assert!(find_principal_by_token(&c, "h1").unwrap().is_none());
        insert_token(&c, &u, "t2", "h3").unwrap();
        c.execute("UPDATE users SET active = 0", []).unwrap();
        assert!(find_principal_by_token(&c, "h3").unwrap().is_none());
    }
}
