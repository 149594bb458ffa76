//! `GET /v1/t/{tenant}/me`: the caller, its roles and effective permissions.

use serde::Serialize;
use utoipa::ToSchema;

use super::json::Json;
use crate::auth::extract::TenantCaller;

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub roles: Vec<String>,
    pub active: bool,
}

#[derive(Serialize, ToSchema)]
pub struct MeView {
    pub tenant: String,
    pub user: UserView,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
}

/// Who am I?
#[utoipa::path(get, path = "/v1/t/{tenant}/me", tag = "identity",
    params(("tenant" = String, Path, description = "tenant id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = MeView),
        (status = 400, description = "invalid tenant id", body = crate::error::Problem),
        (status = 401, description = "missing or invalid token", body = crate::error::Problem),
        (status = 403, description = "a platform token", body = crate::error::Problem),
        (status = 404, description = "unknown tenant, or a token of another tenant", body = crate::error::Problem),
        (status = 423, description = "tenant suspended", body = crate::error::Problem),
        (status = 503, description = "tenant unavailable (e.g. pending migration)", body = crate::error::Problem),
    ))]
pub async fn get_me(caller: TenantCaller) -> Json<MeView> {
    let p = caller.principal;
    Json(MeView {
        tenant: caller.tenant.id.to_string(),
        permissions: p.perms.to_strings(),
        roles: p.roles.clone(),
        user: UserView {
            id: p.user_id.clone(),
            email: p.email.clone(),
            name: p.name.clone(),
            roles: p.roles.clone(),
            active: true,
        },
    })
}
