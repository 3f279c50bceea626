//! Session login and logout, and `GET /me` (who the credential is).
use crate::AppState;
use crate::error::{ApiJson, ApiResult, ErrorBody, Json};
use crate::middleware::{SESSION_COOKIE, cookie};
use crate::rest::{Auth, ReqOrigin};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use casegate_domain::Error;
use casegate_domain::clock::wire_time;
use casegate_domain::ids::{TenantId, UserId};
use casegate_domain::principal::{AuthMethod, Principal};
use casegate_service::auth;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The caller as resolved from its credential, borrowed from the principal (`GET /me` is the
/// cheapest authenticated request, so its answer is written without copying each name).
#[derive(Serialize, ToSchema)]
pub struct MeView<'a> {
    /// Organisation id.
    #[schema(value_type = String)]
    pub tenant_id: TenantId,
    /// Organisation slug.
    pub tenant_slug: &'a str,
    /// User id.
    #[schema(value_type = String)]
    pub user_id: UserId,
    /// Email, when known.
    pub email: Option<&'a str>,
    /// Roles.
    pub roles: &'a [String],
    /// The union of the roles' permissions.
    pub permissions: Vec<&'static str>,
    /// `api_key`, `jwt` or `session`.
    pub auth_method: &'static str,
}

impl<'a> From<&'a Principal> for MeView<'a> {
    fn from(p: &'a Principal) -> Self {
        Self {
            tenant_id: p.tenant_id,
            tenant_slug: &p.tenant_slug,
            user_id: p.user_id,
            email: p.email.as_deref(),
            roles: &p.roles,
            permissions: p.permissions.iter().map(|x| x.as_str()).collect(),
            auth_method: match p.method {
                AuthMethod::ApiKey(_) => "api_key",
                AuthMethod::Jwt(_) => "jwt",
                AuthMethod::Session(_) => "session",
                AuthMethod::System => "system",
            },
        }
    }
}

/// `POST /auth/login` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The user's email.
    pub username: String,
    /// The password.
    pub password: String,
    /// Organisation id or slug; needed only when the email exists in several organisations.
    pub tenant: Option<String>,
}

/// A successful login. The session cookie is set `HttpOnly; Secure; SameSite=Strict`.
#[derive(Serialize, ToSchema)]
pub struct LoginView<'a> {
    /// Send this back as `X-CSRF-Token` on every unsafe request (also in the header).
    pub csrf_token: String,
    /// When the session ends (RFC 3339).
    pub expires_at: String,
    /// Who logged in.
    pub user: MeView<'a>,
}

pub fn public_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(login))
}

pub fn protected_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(logout))
        .routes(routes!(me))
}

/// Password login; starts a browser session.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "authentication", request_body = LoginRequest, security(()),
    responses((status = 200, body = LoginView, headers(("X-CSRF-Token" = String), ("Set-Cookie" = String))),
        (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(st): State<AppState>,
    ReqOrigin(origin): ReqOrigin,
    ApiJson(b): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let l = auth::login(
        &st.svc,
        &b.username,
        &b.password,
        b.tenant.as_deref(),
        &origin,
    )
    .await?;
    let max_age = st.svc.config.session_ttl.whole_seconds();
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age}",
        l.session_token
    );
    let mut resp = Json(LoginView {
        csrf_token: l.csrf_token.clone(),
        expires_at: wire_time(l.expires_at),
        user: (&l.principal).into(),
    })
    .into_response();
    let h = resp.headers_mut();
    h.insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(Error::internal)?,
    );
    h.insert(
        "x-csrf-token",
        HeaderValue::from_str(&l.csrf_token).map_err(Error::internal)?,
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// Ends the current session (requires `X-CSRF-Token`).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "authentication",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn logout(
    State(st): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let token = cookie(&headers, SESSION_COOKIE).unwrap_or_default();
    auth::logout(&st.svc, &p, token).await?;
    let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&clear).map_err(Error::internal)?,
    );
    Ok(resp)
}

/// Who the credential belongs to: organisation, user, roles and permissions.
#[utoipa::path(get, path = "/api/v1/me", tag = "authentication",
    responses((status = 200, body = MeView), (status = 401, body = ErrorBody)))]
pub async fn me(Auth(p): Auth) -> Response {
    Json(MeView::from(p.principal.as_ref())).into_response()
}
