//! `/tasks` (API.md "Tasks", docs/workflows.md "Tasks") and `/notifications` (each caller's
//! in-app inbox).
use crate::AppState;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody, Json, OptJson};
use crate::rest::bodies::{CompleteTaskBody, CreateTaskBody};
use crate::rest::cases::{only, opt_str};
use crate::rest::{Auth, flag_param, paging};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use casegate_domain::Error;
use casegate_service::notifications;
use casegate_service::tasks::{self, ListQuery, NewTask};
use serde_json::{Map, Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tasks, create_task))
        .routes(routes!(get_task))
        .routes(routes!(complete_task))
        .routes(routes!(list_notifications))
        .routes(routes!(read_notification))
}

/// Tasks, the soonest due first. `status`: `open` (default), `done` or `all`; `assigned_to`:
/// a user id or email, or `me` (the caller's, and those waiting on one of the caller's roles);
/// `case_id`: an id or reference.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks",
    params(("status" = Option<String>, Query), ("assigned_to" = Option<String>, Query),
        ("case_id" = Option<String>, Query), ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = Object, description = "{\"tasks\": [...], \"total\", \"limit\", \"offset\"}"),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_tasks(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let mut q = ListQuery::default();
    let (page, rest) = paging(params, &["status", "assigned_to", "case_id"])?;
    for (k, v) in rest {
        match k.as_str() {
            "status" => q.status = Some(v),
            "assigned_to" => q.assigned_to = Some(v),
            _ => q.case_id = Some(v),
        }
    }
    let found = tasks::list(&st.svc, &p, q, page).await?;
    Ok(Json(json!({ "tasks": found.tasks, "total": found.total,
        "limit": page.limit, "offset": page.offset })))
}

/// Opens a task on a case (`case.edit`): `case_id` and `title` required; `description`,
/// `assigned_to` (user id or email), `assignee_role`, `due_at` (RFC 3339), `mandatory` (blocks
/// leaving the case's current status until done).
#[utoipa::path(post, path = "/api/v1/tasks", tag = "tasks",
    request_body = CreateTaskBody,
    responses((status = 201, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_task(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(b): ApiJson<Map<String, Value>>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    only(
        &b,
        &[
            "case_id",
            "title",
            "description",
            "assigned_to",
            "assignee_role",
            "due_at",
            "mandatory",
        ],
    )?;
    let mandatory = match b.get("mandatory") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(m)) => *m,
        Some(_) => {
            return Err(ApiError(Error::validation(
                "mandatory",
                "must be true or false",
            )));
        }
    };
    let s = |k: &str| opt_str(&b, k).map(|v| v.map(str::to_string));
    let input = NewTask {
        case_id: s("case_id")?,
        title: s("title")?,
        description: s("description")?,
        assigned_to: s("assigned_to")?,
        assignee_role: s("assignee_role")?,
        due_at: s("due_at")?,
        mandatory,
    };
    let t = tasks::create(&st.svc, &p, input).await?;
    Ok((StatusCode::CREATED, Json(json!(t))))
}

/// One task.
#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "tasks", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn get_task(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(tasks::get(&st.svc, &p, &id).await?)))
}

/// Marks a task done (its assignee, a holder of its role, or `case.edit`); `{"note"}`
/// optional. 409 `already_completed` when it is done.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/complete", tag = "tasks", params(("id" = String, Path)),
    request_body(content = CompleteTaskBody, description = "Optional: the body may be left out."),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "already_completed"), (status = 422, body = ErrorBody)))]
pub async fn complete_task(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    OptJson(b): OptJson<Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    only(&b, &["note"])?;
    let t = tasks::complete(&st.svc, &p, &id, opt_str(&b, "note")?).await?;
    Ok(Json(json!(t)))
}

/// The caller's notifications, newest first (`unread=true`: only unread ones).
#[utoipa::path(get, path = "/api/v1/notifications", tag = "tasks",
    params(("unread" = Option<bool>, Query), ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = Object, description = "{\"notifications\": [...], \"total\", \"unread\", \"limit\", \"offset\"}"),
        (status = 422, body = ErrorBody)))]
pub async fn list_notifications(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let (page, rest) = paging(params, &["unread"])?;
    let mut unread = false;
    for (_, v) in rest {
        unread = flag_param("unread", &v)?;
    }
    let inbox = notifications::list(&st.svc, &p, unread, page).await?;
    Ok(Json(
        json!({ "notifications": inbox.notifications, "total": inbox.total,
        "unread": inbox.unread, "limit": page.limit, "offset": page.offset }),
    ))
}

/// Marks one of the caller's notifications read.
#[utoipa::path(post, path = "/api/v1/notifications/{id}/read", tag = "tasks", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn read_notification(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    OptJson(b): OptJson<Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    only(&b, &[])?;
    Ok(Json(json!(
        notifications::mark_read(&st.svc, &p, &id).await?
    )))
}
