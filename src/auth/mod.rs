//! Who is calling: bearer tokens, the principal they resolve to, and the extractors that
//! authenticate platform and tenant requests.

pub mod cache;
pub mod extract;
pub mod limit;
pub mod password;
pub mod store;
pub mod token;

/// An authenticated tenant user, resolved from a token inside the tenant's own file.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: String,
    pub email: String,
    pub name: String,
    /// The token this request presented (for revocation and audit).
    pub token_id: String,
    pub roles: Vec<String>,
    /// Effective permissions of all the roles (built-in and custom).
    pub perms: crate::access::permission::Permissions,
    /// When the presented token expires (RFC 3339), if it does.
    pub token_expires_at: Option<String>,
}

impl Principal {
    /// How the principal appears in audit entries and logs.
    pub fn actor(&self) -> String {
        format!("user:{}", self.user_id)
    }
}
