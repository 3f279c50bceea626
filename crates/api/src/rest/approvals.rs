//! `/approvals` and `/transition-requests` (API.md "Approvals", docs/workflows.md).
use crate::AppState;
use crate::error::{ApiResult, ErrorBody, Json, OptJson};
use crate::rest::bodies::{ApproveBody, RejectBody};
use crate::rest::cases::{only, opt_str};
use crate::rest::{Auth, flag_param, paging};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use casegate_service::approvals::{self, Decided, ListQuery};
use serde_json::{Map, Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_approvals))
        .routes(routes!(get_request))
        .routes(routes!(approve_request))
        .routes(routes!(reject_request))
        .routes(routes!(cancel_request))
}

/// The approver's inbox: transition requests, newest first unless `sort=requested_at`
/// (`status` default `pending`, `all` for every status; `mine=true`: only those the caller can
/// decide now).
#[utoipa::path(get, path = "/api/v1/approvals", tag = "approvals",
    params(("status" = Option<String>, Query), ("mine" = Option<bool>, Query), ("case_id" = Option<String>, Query),
        ("sort" = Option<String>, Query, description = "-requested_at (default) or requested_at"),
        ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = Object, description = "{\"requests\": [...], \"total\", \"limit\", \"offset\"}"),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_approvals(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let mut q = ListQuery::default();
    let (page, rest) = paging(params, &["status", "case_id", "sort", "mine"])?;
    for (k, v) in rest {
        match k.as_str() {
            "status" => q.status = Some(v),
            "case_id" => q.case_id = Some(v),
            "sort" => q.sort = Some(v),
            _ => q.mine = flag_param("mine", &v)?,
        }
    }
    let found = approvals::list(&st.svc, &p, q, page).await?;
    Ok(Json(
        json!({ "requests": found.requests, "total": found.total,
        "limit": page.limit, "offset": page.offset }),
    ))
}

/// One transition request.
#[utoipa::path(get, path = "/api/v1/transition-requests/{id}", tag = "approvals", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn get_request(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(approvals::get(&st.svc, &p, &id).await?)))
}

/// The request, and when the decision applied the move, the case and history entry too.
fn decided(d: Decided) -> Response {
    let mut body = json!(d.request);
    if let (Some((case, entry)), Value::Object(m)) = (d.applied, &mut body) {
        m.insert("case".into(), json!(case));
        m.insert("history_entry".into(), json!(entry));
    }
    (StatusCode::OK, Json(body)).into_response()
}

/// Approves the current tier's slot the caller fills (`approval.decide`); `{"comment"}`
/// optional. The last approval needed applies the move (status `applied`).
#[utoipa::path(post, path = "/api/v1/transition-requests/{id}/approve", tag = "approvals", params(("id" = String, Path)),
    request_body(content = ApproveBody, description = "Optional: the body may be left out."),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody,
        description = "not_an_eligible_approver, self_approval_forbidden, duplicate_approver"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "already_decided, request_not_pending")))]
pub async fn approve_request(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    OptJson(b): OptJson<Map<String, Value>>,
) -> ApiResult<Response> {
    only(&b, &["comment"])?;
    let d = approvals::approve(&st.svc, &p, &id, opt_str(&b, "comment")?).await?;
    Ok(decided(d))
}

/// Rejects the request (`approval.decide`); `{"comment"}` required. One rejection vetoes.
#[utoipa::path(post, path = "/api/v1/transition-requests/{id}/reject", tag = "approvals", params(("id" = String, Path)),
    request_body = RejectBody,
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn reject_request(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    OptJson(b): OptJson<Map<String, Value>>,
) -> ApiResult<Response> {
    only(&b, &["comment"])?;
    let d = approvals::reject(&st.svc, &p, &id, opt_str(&b, "comment")?).await?;
    Ok(decided(d))
}

/// Withdraws a pending request (the requester, or an administrator).
#[utoipa::path(post, path = "/api/v1/transition-requests/{id}/cancel", tag = "approvals", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn cancel_request(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    OptJson(b): OptJson<Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    only(&b, &[])?;
    Ok(Json(json!(approvals::cancel(&st.svc, &p, &id).await?)))
}
