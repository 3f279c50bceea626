//! `/api-keys`: service credentials (`admin.keys`). The key is returned once, at creation.
use crate::AppState;
use crate::error::{ApiJson, ApiQuery, ApiResult, ErrorBody, Json};
use crate::rest::{Auth, PageQuery};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use casegate_domain::Error;
use casegate_domain::clock::wire_time;
use casegate_domain::ids::ApiKeyId;
use casegate_service::api_keys;
use casegate_store::api_keys::ApiKey;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// A key without its secret.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyView {
    /// Key id.
    pub id: String,
    /// Label.
    pub name: String,
    /// The displayable start of the key (`cg_live_AbC123`).
    pub prefix: String,
    /// Email of the user the key acts as.
    pub user: Option<String>,
    /// The user the key acts as.
    pub user_id: String,
    /// Email of who created it (none for keys minted by operator commands).
    pub created_by: Option<String>,
    /// Id of who created it.
    pub created_by_id: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// Last authentication (recorded at most once a minute).
    pub last_used_at: Option<String>,
    /// Revocation time; a revoked key answers 401.
    pub revoked_at: Option<String>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id.to_string(),
            name: k.name,
            prefix: k.prefix,
            user: k.user_email,
            user_id: k.user_id.to_string(),
            created_by: k.created_by_email,
            created_by_id: k.created_by.map(|u| u.to_string()),
            created_at: wire_time(k.created_at),
            last_used_at: k.last_used_at.map(wire_time),
            revoked_at: k.revoked_at.map(wire_time),
        }
    }
}

/// A key just created. `key` is shown only here.
#[derive(Serialize, ToSchema)]
pub struct CreatedKeyView {
    /// Key id.
    pub id: String,
    /// The API key itself; store it now, it cannot be shown again.
    pub key: String,
    /// The displayable start of the key.
    pub prefix: String,
    /// Label.
    pub name: String,
    /// The user the key acts as.
    pub user_id: String,
    /// RFC 3339.
    pub created_at: String,
}

/// `POST /api-keys` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// Label.
    pub name: String,
    /// The user the key acts as (id or email); defaults to the caller.
    pub user_id: Option<String>,
}

/// A page of keys.
#[derive(Serialize, ToSchema)]
pub struct ApiKeysPage {
    /// Keys, newest first.
    pub api_keys: Vec<ApiKeyView>,
    /// Keys in the organisation.
    pub total: i64,
    /// Page size.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key))
}

/// Creates an API key acting as a user of the organisation.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "administration", request_body = CreateKey,
    responses((status = 201, body = CreatedKeyView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_key(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(b): ApiJson<CreateKey>,
) -> ApiResult<(StatusCode, Json<CreatedKeyView>)> {
    let k = api_keys::create(&st.svc, &p, &b.name, b.user_id.as_deref()).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKeyView {
            id: k.record.id.to_string(),
            key: k.secret,
            prefix: k.record.prefix,
            name: k.record.name,
            user_id: k.record.user_id.to_string(),
            created_at: wire_time(k.record.created_at),
        }),
    ))
}

/// Lists the organisation's keys (never their secrets).
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "administration", params(PageQuery),
    responses((status = 200, body = ApiKeysPage), (status = 403, body = ErrorBody)))]
pub async fn list_keys(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<ApiKeysPage>> {
    let page = q.page()?;
    let (list, total) = api_keys::list(&st.svc, &p, page).await?;
    Ok(Json(ApiKeysPage {
        api_keys: list.into_iter().map(Into::into).collect(),
        total,
        limit: page.limit,
        offset: page.offset,
    }))
}

/// Revokes a key; it answers 401 from the next request on.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "administration",
    params(("id" = String, Path, description = "Key id")),
    responses((status = 200, body = ApiKeyView), (status = 404, body = ErrorBody)))]
pub async fn revoke_key(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiKeyView>> {
    let id: ApiKeyId = id.parse().map_err(|_| Error::not_found("API key"))?;
    Ok(Json(api_keys::revoke(&st.svc, &p, id).await?.into()))
}
