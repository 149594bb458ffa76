//! Identity inside a tenant: users (argon2id passwords), login, personal tokens, custom
//! roles. Every change is audited in the tenant file and invalidates the tenant's cached
//! principals, so it takes effect on the next request.

mod login;
mod roles;
pub mod store;
mod tokens;
mod users;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permission::{self, Permissions};
use crate::app::AppState;
use crate::auth::Principal;
use crate::error::{Error, Result};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login::login))
        .routes(routes!(users::list_users, users::create_user))
        .routes(routes!(
            users::get_user,
            users::update_user,
            users::delete_user
        ))
        .routes(routes!(users::restore_user))
        .routes(routes!(tokens::list_tokens, tokens::create_token))
        .routes(routes!(tokens::revoke_token))
        .routes(routes!(roles::list_roles, roles::create_role))
        .routes(routes!(
            roles::get_role,
            roles::update_role,
            roles::delete_role
        ))
}

pub fn require(p: &Principal, entity: &str, action: &str) -> Result<()> {
    if p.perms.allows(entity, action) {
        Ok(())
    } else {
        Err(Error::Forbidden(format!("no permission {entity}:{action}")))
    }
}

/// Grants of a role, built-in or custom (None: no such role).
pub fn role_grants(conn: &rusqlite::Connection, role: &str) -> Result<Option<Permissions>> {
    if let Some(g) = permission::built_in(role) {
        return Ok(Some(Permissions::from_grants(g.iter().copied())));
    }
    Ok(store::find_custom_role(conn, role)?
        .map(|r| Permissions::from_grants(r.permissions.iter().map(String::as_str))))
}

/// Roles must exist and the caller must hold everything they grant.
pub(crate) fn check_assignable(
    conn: &rusqlite::Connection,
    caller: &Principal,
    roles: &[String],
) -> Result<()> {
    for role in roles {
        let grants = role_grants(conn, role)?
            .ok_or_else(|| Error::invalid("roles", format!("no role {role:?}")))?;
        if !caller.perms.covers_all(&grants) {
            return Err(Error::Forbidden(format!(
                "cannot assign role {role}: it grants more than you hold"
            )));
        }
    }
    Ok(())
}
