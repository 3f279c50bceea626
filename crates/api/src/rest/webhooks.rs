//! `/webhooks` (API.md "Webhooks", docs/webhooks.md): registrations, secret rotation, the
//! delivery record and manual redelivery. All need `webhook.admin`.
use crate::AppState;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody, Json, OptJson};
use crate::rest::bodies::{CreateWebhookBody, RotateSecretBody, UpdateWebhookBody};
use crate::rest::cases::only;
use crate::rest::{Auth, paging};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use casegate_domain::Error;
use casegate_service::webhooks;
use serde_json::{Map, Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What a registration body may carry.
const FIELDS: &[&str] = &["url", "events", "description", "active"];

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(rotate_secret))
        .routes(routes!(list_deliveries))
        .routes(routes!(get_delivery))
        .routes(routes!(redeliver))
}

/// Registers a receiver: `url` (https; plain http only to loopback with
/// `--allow-insecure-webhooks`; never private, link-local or metadata addresses), `events`
/// (event names or `["*"]`, default all), `description`, `active`. The answer carries `secret`
/// (`whsec_…`), shown only here. A `ping` delivery is queued at once.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks",
    request_body = CreateWebhookBody,
    responses((status = 201, body = Object), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_webhook(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(b): ApiJson<Map<String, Value>>,
) -> ApiResult<(StatusCode, Json<webhooks::WithSecret>)> {
    only(&b, FIELDS)?;
    let w = webhooks::create(&st.svc, &p, b).await?;
    Ok((StatusCode::CREATED, Json(w)))
}

/// The organisation's registrations, oldest first (no secrets).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    params(("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = Object, description = "{\"webhooks\": [...], \"total\", \"limit\", \"offset\"}"),
        (status = 403, body = ErrorBody)))]
pub async fn list_webhooks(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let (page, _) = paging(params, &[])?;
    let (hooks, total) = webhooks::list(&st.svc, &p, page).await?;
    Ok(Json(
        json!({ "webhooks": hooks, "total": total, "limit": page.limit, "offset": page.offset }),
    ))
}

/// One registration.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_webhook(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<webhooks::WebhookView>> {
    Ok(Json(webhooks::get(&st.svc, &p, &id).await?))
}

/// Changes `url`, `events`, `description` or `active`; turning a registration back on after a
/// 410 clears `disabled_reason` and closes its circuit.
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    request_body = UpdateWebhookBody,
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update_webhook(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<Map<String, Value>>,
) -> ApiResult<Json<webhooks::WebhookView>> {
    only(&b, FIELDS)?;
    Ok(Json(webhooks::update(&st.svc, &p, &id, b).await?))
}

/// Deletes a registration: no more deliveries (unfinished ones become `dead`).
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_webhook(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    webhooks::delete(&st.svc, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new secret, shown once; the previous one keeps signing beside it for `overlap_hours`
/// (default 24, 0–168).
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/rotate-secret", tag = "webhooks", params(("id" = String, Path)),
    request_body(content = RotateSecretBody, description = "Optional: the body may be left out."),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn rotate_secret(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    OptJson(b): OptJson<Map<String, Value>>,
) -> ApiResult<Json<webhooks::WithSecret>> {
    only(&b, &["overlap_hours"])?;
    let hours =
        match b.get("overlap_hours") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_i64().ok_or_else(|| {
                ApiError(Error::validation("overlap_hours", "must be an integer"))
            })?),
        };
    Ok(Json(
        webhooks::rotate_secret(&st.svc, &p, &id, hours).await?,
    ))
}

/// The registration's deliveries, newest first; `state` filters
/// (`pending|succeeded|failed|dead`).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks", params(("id" = String, Path),
        ("state" = Option<String>, Query), ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = Object, description = "{\"deliveries\": [...], \"total\", \"limit\", \"offset\"}"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_deliveries(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let (page, rest) = paging(params, &["state"])?;
    let state = rest.last().map(|(_, v)| v.as_str());
    let (list, total) = webhooks::deliveries(&st.svc, &p, &id, state, page).await?;
    Ok(Json(
        json!({ "deliveries": list, "total": total, "limit": page.limit, "offset": page.offset }),
    ))
}

/// One delivery with every attempt (status, latency, error).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}", tag = "webhooks",
    params(("id" = String, Path), ("delivery_id" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_delivery(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path((id, delivery_id)): Path<(String, String)>,
) -> ApiResult<Json<webhooks::DeliveryView>> {
    Ok(Json(
        webhooks::delivery(&st.svc, &p, &id, &delivery_id).await?,
    ))
}

/// Sends the delivery's event again (same body, same event id) as a new delivery.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", tag = "webhooks",
    params(("id" = String, Path), ("delivery_id" = String, Path)),
    responses((status = 202, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn redeliver(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path((id, delivery_id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<webhooks::DeliveryView>)> {
    let d = webhooks::redeliver(&st.svc, &p, &id, &delivery_id).await?;
    Ok((StatusCode::ACCEPTED, Json(d)))
}
