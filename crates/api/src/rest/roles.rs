//! `GET /roles`: the permission catalogue and the built-in roles.
use crate::AppState;
use crate::error::{ApiResult, Json};
use crate::rest::Auth;
use casegate_domain::rbac::{BUILTIN_ROLES, Permission, builtin_role};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// A role and its permissions.
#[derive(Serialize, ToSchema)]
pub struct RoleView {
    /// Role name.
    pub name: String,
    /// Whether the role is built in.
    pub builtin: bool,
    /// Permission names.
    pub permissions: Vec<String>,
}

/// The catalogue.
#[derive(Serialize, ToSchema)]
pub struct RolesView {
    /// Every role.
    pub roles: Vec<RoleView>,
    /// Every permission of the fixed catalogue.
    pub permissions: Vec<String>,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_roles))
}

/// The roles and permissions a user can be granted.
#[utoipa::path(get, path = "/api/v1/roles", tag = "administration",
    responses((status = 200, body = RolesView), (status = 401, body = crate::error::ErrorBody)))]
pub async fn list_roles(_auth: Auth) -> ApiResult<Json<RolesView>> {
    let roles = BUILTIN_ROLES
        .iter()
        .map(|r| RoleView {
            name: r.to_string(),
            builtin: true,
            permissions: builtin_role(r)
                .unwrap_or_default()
                .iter()
                .map(|p| p.as_str().to_string())
                .collect(),
        })
        .collect();
    let permissions = Permission::ALL
        .iter()
        .map(|p| p.as_str().to_string())
        .collect();
    Ok(Json(RolesView { roles, permissions }))
}
