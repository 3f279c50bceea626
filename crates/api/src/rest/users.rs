//! `/users`: tenant user administration (`admin.users`).
use crate::AppState;
use crate::error::{ApiJson, ApiQuery, ApiResult, ErrorBody, Json};
use crate::rest::{Auth, PageQuery};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use casegate_domain::clock::wire_time;
use casegate_service::users::{self, NewUser};
use casegate_store::users::User;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// A user as the API shows it (never the password hash).
#[derive(Serialize, ToSchema)]
pub struct UserView {
    /// User id.
    pub id: String,
    /// Login email.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Granted roles.
    pub roles: Vec<String>,
    /// Whether the user can authenticate.
    pub active: bool,
    /// Whether a password is set (console login).
    pub has_password: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id.to_string(),
            email: u.email,
            name: u.name,
            roles: u.roles,
            active: u.active,
            has_password: u.password_hash.is_some(),
            created_at: wire_time(u.created_at),
            updated_at: wire_time(u.updated_at),
        }
    }
}

/// `POST /users` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Login email, unique in the organisation.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Roles to grant (built-in role names).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Optional password (12–1024 characters) for console login.
    pub password: Option<String>,
}

/// `PUT /users/{id}/roles` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRoles {
    /// The complete new set of roles.
    pub roles: Vec<String>,
}

/// `PATCH /users/{id}` body: only the fields to change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// New display name.
    pub name: Option<String>,
    /// `false` disables the user: its API keys and sessions stop working at once.
    pub active: Option<bool>,
    /// New password (12–1024 characters); ends the user's sessions.
    pub password: Option<String>,
}

/// A page of users.
#[derive(Serialize, ToSchema)]
pub struct UsersPage {
    /// The users, newest first.
    pub users: Vec<UserView>,
    /// Users in the organisation.
    pub total: i64,
    /// Page size.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_user, list_users))
        .routes(routes!(get_user, update_user))
        .routes(routes!(set_user_roles))
}

/// Creates a user of the caller's organisation.
#[utoipa::path(post, path = "/api/v1/users", tag = "administration", request_body = CreateUser,
    responses((status = 201, body = UserView), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_user(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(b): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let input = NewUser {
        email: b.email,
        name: b.name,
        roles: b.roles,
        password: b.password,
    };
    let u = users::create(&st.svc, &p, input).await?;
    Ok((StatusCode::CREATED, Json(u.into())))
}

/// Lists the organisation's users, newest first.
#[utoipa::path(get, path = "/api/v1/users", tag = "administration", params(PageQuery),
    responses((status = 200, body = UsersPage), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_users(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<UsersPage>> {
    let page = q.page()?;
    let (list, total) = users::list(&st.svc, &p, page).await?;
    Ok(Json(UsersPage {
        users: list.into_iter().map(Into::into).collect(),
        total,
        limit: page.limit,
        offset: page.offset,
    }))
}

/// A user by id or email.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "administration",
    params(("id" = String, Path, description = "User id or email")),
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(users::get(&st.svc, &p, &id).await?.into()))
}

/// Replaces a user's roles; effective from the user's next request.
#[utoipa::path(put, path = "/api/v1/users/{id}/roles", tag = "administration", request_body = SetRoles,
    params(("id" = String, Path, description = "User id or email")),
    responses((status = 200, body = UserView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_user_roles(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<SetRoles>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(
        users::set_roles(&st.svc, &p, &id, b.roles).await?.into(),
    ))
}

/// Renames, disables or re-enables a user, or sets a new password.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "administration", request_body = UpdateUser,
    params(("id" = String, Path, description = "User id or email")),
    responses((status = 200, body = UserView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_user(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<UpdateUser>,
) -> ApiResult<Json<UserView>> {
    let patch = users::UserPatch {
        name: b.name,
        active: b.active,
        password: b.password,
    };
    Ok(Json(users::update(&st.svc, &p, &id, patch).await?.into()))
}
