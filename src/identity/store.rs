//! SQL for users, tokens and custom roles (beyond what authentication itself needs,
//! which is in `auth::store`).

use rusqlite::{Connection, OptionalExtension, Row, named_params};
use serde::Serialize;

use crate::error::{Error, Result, ResultExt};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub roles: Vec<String>,
    pub active: bool,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
}

const USER_COLUMNS: &str = "id, email, name, active, version, created_at, updated_at, deleted_at";

fn user_from_row(r: &Row) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        email: r.get(1)?,
        name: r.get(2)?,
        active: r.get::<_, i64>(3)? == 1,
        version: r.get(4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
        deleted_at: r.get(7)?,
        roles: Vec::new(),
    })
}

pub fn find_user(conn: &Connection, id: &str, include_deleted: bool) -> Result<Option<User>> {
    let user = conn
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = :id AND (:all OR deleted_at IS NULL)"
        ))?
        .query_row(
            named_params! { ":id": id, ":all": include_deleted },
            user_from_row,
        )
        .optional()?;
    user.map(|mut u| {
        u.roles = crate::auth::store::list_roles(conn, &u.id)?;
        Ok(u)
    })
    .transpose()
}

pub fn get_user(conn: &Connection, id: &str, include_deleted: bool) -> Result<User> {
    find_user(conn, id, include_deleted)?.ok_or(Error::NotFound)
}

pub fn list_users(
    conn: &Connection,
    after: &str,
    limit: i64,
    include_deleted: bool,
) -> Result<Vec<User>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id > :after AND (:all OR deleted_at IS NULL) ORDER BY id LIMIT :limit"
    ))?;
    let users: Vec<User> = stmt
        .query_map(
            named_params! { ":after": after, ":all": include_deleted, ":limit": limit },
            user_from_row,
        )?
        .collect::<rusqlite::Result<_>>()?;
    users
        .into_iter()
        .map(|mut u| {
            u.roles = crate::auth::store::list_roles(conn, &u.id)?;
            Ok(u)
        })
        .collect()
}

/// The live user with this email (case-insensitive) and its password hash.
pub fn find_login(
    conn: &Connection,
    email: &str,
) -> Result<Option<(String, Option<String>, bool)>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, password_hash, active FROM users WHERE lower(email) = lower(:email) AND deleted_at IS NULL",
        )?
        .query_row(named_params! { ":email": email }, |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? == 1)))
        .optional()?)
}

pub fn insert_user(
    tx: &Connection,
    email: &str,
    name: &str,
    password_hash: Option<&str>,
    active: bool,
    roles: &[String],
) -> Result<String> {
    let refs: Vec<&str> = roles.iter().map(String::as_str).collect();
    let id = crate::auth::store::insert_user(tx, email, name, &refs)
        .on_constraint("users", || {
            Error::Conflict(format!("a user with email {email} exists"))
        })?;
    tx.prepare_cached("UPDATE users SET password_hash = :h, active = :a WHERE id = :id")?
        .execute(named_params! { ":h": password_hash, ":a": active, ":id": id })?;
    Ok(id)
}

/// Apply the given changes and bump the version.
pub fn update_user(
    tx: &Connection,
    id: &str,
    email: Option<&str>,
    name: Option<&str>,
    password_hash: Option<&str>,
    active: Option<bool>,
    roles: Option<&[String]>,
) -> Result<()> {
    tx.prepare_cached(
        "UPDATE users SET email = COALESCE(:email, email), name = COALESCE(:name, name), \
         password_hash = COALESCE(:hash, password_hash), active = COALESCE(:active, active), \
         version = version + 1, updated_at = :now WHERE id = :id",
    )?
    .execute(named_params! {
        ":email": email, ":name": name, ":hash": password_hash, ":active": active,
        ":now": crate::clock::now_rfc3339(), ":id": id,
    })
    .on_constraint("users", || {
        Error::Conflict("a user with this email exists".into())
    })?;
    if let Some(roles) = roles {
        tx.prepare_cached("DELETE FROM user_roles WHERE user_id = :id")?
            .execute(named_params! { ":id": id })?;
        let mut stmt =
            tx.prepare_cached("INSERT INTO user_roles (user_id, role) VALUES (:u, :r)")?;
        for r in roles {
            stmt.execute(named_params! { ":u": id, ":r": r })?;
        }
    }
    Ok(())
}

pub fn set_user_deleted(tx: &Connection, id: &str, deleted: bool) -> Result<()> {
    let now = crate::clock::now_rfc3339();
    tx.prepare_cached(
        "UPDATE users SET deleted_at = :d, version = version + 1, updated_at = :now WHERE id = :id",
    )?
    .execute(named_params! { ":d": deleted.then_some(now.clone()), ":now": now, ":id": id })
    .on_constraint("users", || {
        Error::Conflict("a live user with this email exists".into())
    })?;
    Ok(())
}

/// Live, active owners other than `except`.
pub fn other_active_owners(conn: &Connection, except: &str) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM users u JOIN user_roles r ON r.user_id = u.id \
         WHERE r.role = 'owner' AND u.active = 1 AND u.deleted_at IS NULL AND u.id != :id",
        )?
        .query_row(named_params! { ":id": except }, |r| r.get(0))?)
}

// ---- tokens ----

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

pub fn insert_token(
    tx: &Connection,
    user_id: &str,
    name: &str,
    hash: &str,
    expires_at: Option<&str>,
) -> Result<String> {
    let id = crate::auth::store::insert_token(tx, user_id, name, hash)?;
    tx.prepare_cached("UPDATE api_tokens SET expires_at = :e WHERE id = :id")?
        .execute(named_params! { ":e": expires_at, ":id": id })?;
    Ok(id)
}

pub fn list_tokens(conn: &Connection, user_id: &str) -> Result<Vec<TokenInfo>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, user_id, name, created_at, expires_at, revoked_at FROM api_tokens \
         WHERE user_id = :u ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map(named_params! { ":u": user_id }, |r| {
        Ok(TokenInfo {
            id: r.get(0)?,
            user_id: r.get(1)?,
            name: r.get(2)?,
            created_at: r.get(3)?,
            expires_at: r.get(4)?,
            revoked_at: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The owner of an unrevoked token.
pub fn token_owner(conn: &Connection, id: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT user_id FROM api_tokens WHERE id = :id AND revoked_at IS NULL")?
        .query_row(named_params! { ":id": id }, |r| r.get(0))
        .optional()?)
}

pub fn revoke_token(tx: &Connection, id: &str) -> Result<()> {
    tx.prepare_cached(
        "UPDATE api_tokens SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL",
    )?
    .execute(named_params! { ":now": crate::clock::now_rfc3339(), ":id": id })?;
    Ok(())
}

pub fn revoke_user_tokens(tx: &Connection, user_id: &str) -> Result<()> {
    tx.prepare_cached(
        "UPDATE api_tokens SET revoked_at = :now WHERE user_id = :u AND revoked_at IS NULL",
    )?
    .execute(named_params! { ":now": crate::clock::now_rfc3339(), ":u": user_id })?;
    Ok(())
}

// ---- custom roles ----

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Role {
    pub name: String,
    pub permissions: Vec<String>,
    pub built_in: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

pub fn find_custom_role(conn: &Connection, name: &str) -> Result<Option<Role>> {
    let row: Option<(String, i64)> = conn
        .prepare_cached("SELECT permissions, version FROM roles WHERE name = :n")?
        .query_row(named_params! { ":n": name }, |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row.map(|(p, v)| Role {
        name: name.to_owned(),
        permissions: serde_json::from_str(&p).unwrap_or_default(),
        built_in: false,
        version: Some(v),
    }))
}

pub fn list_custom_roles(conn: &Connection) -> Result<Vec<Role>> {
    let mut stmt = conn.prepare_cached("SELECT name FROM roles ORDER BY name")?;
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    names
        .iter()
        .filter_map(|n| find_custom_role(conn, n).transpose())
        .collect()
}

pub fn upsert_role(
    tx: &Connection,
    name: &str,
    permissions: &[String],
    expected: Option<i64>,
) -> Result<()> {
    let json = serde_json::to_string(permissions).map_err(anyhow::Error::from)?;
    let now = crate::clock::now_rfc3339();
    match find_custom_role(tx, name)? {
        None => {
            tx.prepare_cached(
                "INSERT INTO roles (name, permissions, version, created_at, updated_at) VALUES (:n, :p, 1, :now, :now)",
            )?
            .execute(named_params! { ":n": name, ":p": json, ":now": now })?;
        }
        Some(existing) => {
            crate::error::ensure_version(expected, existing.version.unwrap_or(1))?;
            tx.prepare_cached(
                "UPDATE roles SET permissions = :p, version = version + 1, updated_at = :now WHERE name = :n",
            )?
            .execute(named_params! { ":n": name, ":p": json, ":now": now })?;
        }
    }
    Ok(())
}

pub fn role_in_use(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM user_roles r JOIN users u ON u.id = r.user_id WHERE r.role = :n AND u.deleted_at IS NULL LIMIT 1",
        )?
        .query_row(named_params! { ":n": name }, |r| r.get::<_, i64>(0))
        .optional()?
        .is_some())
}

pub fn delete_role(tx: &Connection, name: &str) -> Result<()> {
    tx.prepare_cached("DELETE FROM roles WHERE name = :n")?
        .execute(named_params! { ":n": name })?;
    Ok(())
}
