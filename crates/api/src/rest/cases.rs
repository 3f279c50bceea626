//! `/cases`, `/case-types`, `/alerts`, `/parties` (API.md "Cases", docs/cases.md). Versioned
//! answers carry `ETag: "<version>"`; `If-Match` (or `expected_version`) makes a write
//! conditional.
use crate::AppState;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody, Json, json_rejection, too_large};
use crate::rest::bodies::{
    AlertDispositionBody, AssignCaseBody, CommentBody, CreateCaseBody, DispositionBody,
    EscalateBody, OverrideBody, PartyBody, RelationBody, ReopenBody, SetStatusBody, TransitionBody,
    UpdateCaseBody,
};
use crate::rest::{Auth, flag_param, int_param};
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use casegate_domain::Error;
use casegate_domain::fields::FieldDef;
use casegate_domain::lifecycle::Lifecycle;
use casegate_service::approvals::RequestView;
use casegate_service::case_types::{self, CaseType, CaseTypeInput};
use casegate_service::case_views::{
    AttachmentView, CaseDetail, CaseView, CommentView, HistoryView,
};
use casegate_service::cases::{
    self, AlertDecision, ListQuery, NewAttachment, OverrideInput, PartyInput, RelationInput,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_case_types))
        .routes(routes!(get_case_type, put_case_type))
        .routes(routes!(create_case, list_cases))
        .routes(routes!(get_case, update_case))
        .routes(routes!(assign_case))
        .routes(routes!(transition_case, list_transitions))
        .routes(routes!(set_status))
        .routes(routes!(case_history))
        .routes(routes!(add_comment))
        .routes(routes!(download_attachment))
        .routes(routes!(escalate_case))
        .routes(routes!(dispose_case))
        .routes(routes!(override_decision))
        .routes(routes!(reopen_case))
        .routes(routes!(add_relation))
        .routes(routes!(create_party))
        .routes(routes!(get_party))
        .routes(routes!(decide_alert))
        // Uploads are bounded by the attachment limit, checked while reading, not by the JSON
        // body limit.
        .merge(
            OpenApiRouter::new()
                .routes(routes!(add_attachment))
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
}

/// The expected version from `If-Match` (`"3"`, `W/"3"` or `3`; `*` means any), else from the
/// body's `expected_version`.
pub(crate) fn expected(headers: &HeaderMap, body: Option<i64>) -> ApiResult<Option<i64>> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(body);
    };
    let bad = || {
        ApiError(Error::validation(
            "If-Match",
            "must be the ETag of the resource, e.g. \"3\"",
        ))
    };
    let s = v.to_str().map_err(|_| bad())?.trim();
    if s == "*" {
        return Ok(body);
    }
    let s = s.strip_prefix("W/").unwrap_or(s).trim_matches('"');
    s.parse::<i64>().map(Some).map_err(|_| bad())
}

/// A JSON answer with the `ETag` of `version`.
pub(crate) fn tagged<T: Serialize>(status: StatusCode, version: i64, body: &T) -> Response {
    let mut r = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

fn case_answer(status: StatusCode, c: &CaseView) -> Response {
    tagged(status, c.version, c)
}

pub(crate) fn opt_str<'a>(body: &'a Map<String, Value>, key: &str) -> ApiResult<Option<&'a str>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError(Error::validation(key, "must be a string"))),
    }
}

pub(crate) fn opt_version(body: &Map<String, Value>) -> ApiResult<Option<i64>> {
    match body.get("expected_version") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| ApiError(Error::validation("expected_version", "must be an integer"))),
    }
}

/// Refuses keys a command does not take, naming the first.
pub(crate) fn only(body: &Map<String, Value>, keys: &[&str]) -> ApiResult<()> {
    match body.keys().find(|k| !keys.contains(&k.as_str())) {
        Some(k) => Err(ApiError(Error::validation(
            k.as_str(),
            format!("unknown field `{k}`"),
        ))),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Case types.

/// `GET /case-types` answer.
#[derive(Serialize, ToSchema)]
pub struct CaseTypesPage {
    /// Every case type of the organisation, by key.
    #[schema(value_type = Vec<Object>)]
    pub case_types: Vec<CaseType>,
}

/// `PUT /case-types/{key}` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutCaseType {
    /// Display name.
    pub name: String,
    /// Custom-field definitions (the complete list).
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub fields: Vec<FieldDef>,
    /// Statuses, initial status, reopen target, automatic moves; omitted keeps the current one.
    #[schema(value_type = Option<Object>)]
    pub workflow: Option<Lifecycle>,
    /// Compare-and-swap on the type's version.
    pub expected_version: Option<i64>,
}

/// The organisation's case types.
#[utoipa::path(get, path = "/api/v1/case-types", tag = "cases",
    responses((status = 200, body = CaseTypesPage), (status = 403, body = ErrorBody)))]
pub async fn list_case_types(
    State(st): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<CaseTypesPage>> {
    Ok(Json(CaseTypesPage {
        case_types: case_types::list(&st.svc, &p).await?,
    }))
}

/// One case type with its fields and lifecycle.
#[utoipa::path(get, path = "/api/v1/case-types/{key}", tag = "cases", params(("key" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn get_case_type(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(key): Path<String>,
) -> ApiResult<Response> {
    let t = case_types::get(&st.svc, &p, &key).await?;
    Ok(tagged(StatusCode::OK, t.version, &t))
}

/// Creates or replaces a case type (`workflow.admin`); 422 `invalid_workflow` lists every problem.
#[utoipa::path(put, path = "/api/v1/case-types/{key}", tag = "cases", params(("key" = String, Path)), request_body = PutCaseType,
    responses((status = 200, body = Object), (status = 201, body = Object), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_case_type(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(key): Path<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<PutCaseType>,
) -> ApiResult<Response> {
    let input = CaseTypeInput {
        name: b.name,
        fields: b.fields,
        workflow: b.workflow,
        expected_version: expected(&headers, b.expected_version)?,
    };
    let (t, created) = case_types::put(&st.svc, &p, &key, input).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(tagged(status, t.version, &t))
}

// ---------------------------------------------------------------------------------------------
// Cases.

/// `GET /cases` answer.
#[derive(Serialize, ToSchema)]
pub struct CasesPage {
    /// The page, newest first unless `sort` says otherwise.
    pub cases: Vec<CaseView>,
    /// Cases matching the filters; counting stops at 10,000 unless `exact_total=true`.
    pub total: i64,
    /// False when `total` is that cap (more cases match).
    pub total_exact: bool,
    /// Page size.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
}

/// Opens a case (`case.create`): `case_type`, `title`, optional `priority`, `assigned_to`,
/// `screening_id`, `subject_id`, `alert_ids`, `fields`, `reasons`, `notes`, `detected_at`,
/// `score`, `business_unit`, `source`.
#[utoipa::path(post, path = "/api/v1/cases", tag = "cases", request_body = CreateCaseBody,
    responses((status = 201, body = CaseView, description = "the case, with ETag and Location"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_case(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(b): ApiJson<Map<String, Value>>,
) -> ApiResult<Response> {
    let c = cases::create(&st.svc, &p, b).await?;
    let mut r = case_answer(StatusCode::CREATED, &c);
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/cases/{}", c.id)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

const LIST_PARAMS: &[&str] = &[
    "status",
    "priority",
    "case_type",
    "assigned_to",
    "from_date",
    "to_date",
    "q",
    "sort",
    "limit",
    "offset",
    "exact_total",
];

/// Lists and searches cases (`case.view`): filters `status`, `priority`, `case_type`,
/// `assigned_to` (id, email or `me`), `from_date`, `to_date`, `q`, `fields.<key>`; `sort`
/// `-created_at|created_at|-updated_at`; `limit` ≤ 200, `offset`.
#[utoipa::path(get, path = "/api/v1/cases", tag = "cases",
    params(("status" = Option<String>, Query), ("priority" = Option<String>, Query), ("case_type" = Option<String>, Query),
        ("assigned_to" = Option<String>, Query), ("from_date" = Option<String>, Query), ("to_date" = Option<String>, Query),
        ("q" = Option<String>, Query, description = "full text: every word must occur"), ("sort" = Option<String>, Query),
        ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query),
        ("exact_total" = Option<bool>, Query, description = "count every match (slower at scale)")),
    responses((status = 200, body = CasesPage), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_cases(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Json<CasesPage>> {
    let mut q = ListQuery::default();
    let (mut limit, mut offset) = (None, None);
    for (k, v) in params {
        if let Some(field) = k.strip_prefix("fields.") {
            q.fields.push((field.to_string(), v));
            continue;
        }
        if !LIST_PARAMS.contains(&k.as_str()) {
            return Err(ApiError(Error::validation(
                k.as_str(),
                format!("unknown parameter `{k}`"),
            )));
        }
        match k.as_str() {
            "status" => q.status = Some(v),
            "priority" => q.priority = Some(v),
            "case_type" => q.case_type = Some(v),
            "assigned_to" => q.assigned_to = Some(v),
            "from_date" => q.from_date = Some(v),
            "to_date" => q.to_date = Some(v),
            "q" => q.q = Some(v),
            "sort" => q.sort = Some(v),
            "limit" => limit = Some(int_param("limit", &v)?),
            "exact_total" => q.exact_total = flag_param("exact_total", &v)?,
            _ => offset = Some(int_param("offset", &v)?),
        }
    }
    let page = casegate_service::Page::new(limit, offset)?;
    let found = cases::list(&st.svc, &p, q, page).await?;
    Ok(Json(CasesPage {
        cases: found.cases,
        total: found.total,
        total_exact: found.total_exact,
        limit: page.limit,
        offset: page.offset,
    }))
}

/// A case by id or reference, with comments, attachments, status history, activities,
/// relations, pending request, tasks and SAR filing.
#[utoipa::path(get, path = "/api/v1/cases/{id}", tag = "cases", params(("id" = String, Path, description = "Case id or reference")),
    responses((status = 200, body = CaseDetail), (status = 404, body = ErrorBody)))]
pub async fn get_case(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let d = cases::get(&st.svc, &p, &id).await?;
    Ok(tagged(StatusCode::OK, d.case.version, &d))
}

/// Changes a case's attributes (`case.edit`); conditional with `If-Match`.
#[utoipa::path(patch, path = "/api/v1/cases/{id}", tag = "cases", params(("id" = String, Path)), request_body = UpdateCaseBody,
    responses((status = 200, body = CaseView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update_case(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<Map<String, Value>>,
) -> ApiResult<Response> {
    let exp = expected(&headers, opt_version(&b)?)?;
    let c = cases::update(&st.svc, &p, &id, b, exp).await?;
    Ok(case_answer(StatusCode::OK, &c))
}

/// Assigns (or with `null` unassigns) a case (`case.assign`).
#[utoipa::path(post, path = "/api/v1/cases/{id}/assign", tag = "cases", params(("id" = String, Path)), request_body = AssignCaseBody,
    responses((status = 200, body = CaseView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn assign_case(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<Map<String, Value>>,
) -> ApiResult<Response> {
    only(&b, &["assigned_to", "expected_version"])?;
    if !b.contains_key("assigned_to") {
        return Err(ApiError(Error::validation(
            "assigned_to",
            "`assigned_to` is required (null unassigns)",
        )));
    }
    let exp = expected(&headers, opt_version(&b)?)?;
    let c = cases::assign(&st.svc, &p, &id, opt_str(&b, "assigned_to")?, exp).await?;
    Ok(case_answer(StatusCode::OK, &c))
}

/// The answer of a move applied at once (`POST /cases/{id}/transitions` and `/status`).
#[derive(Serialize, ToSchema)]
pub struct MoveApplied {
    /// The case in its new status.
    pub case: CaseView,
    /// The status-history entry the move wrote.
    pub history_entry: HistoryView,
}

/// The answer of a move that waits for approval.
#[derive(Serialize, ToSchema)]
pub struct MoveRequested {
    /// The transition request opened for it.
    pub request: RequestView,
}

/// `GET /cases/{id}/history` answer.
#[derive(Serialize, ToSchema)]
pub struct CaseHistory {
    /// Every applied move, oldest first.
    pub status_history: Vec<HistoryView>,
}

async fn do_transition(
    st: &AppState,
    p: &casegate_domain::principal::Caller,
    id: &str,
    headers: &HeaderMap,
    b: &Map<String, Value>,
    to_key: &str,
) -> ApiResult<Response> {
    only(b, &[to_key, "reason", "expected_version"])?;
    let to = opt_str(b, to_key)?
        .ok_or_else(|| ApiError(Error::validation(to_key, format!("`{to_key}` is required"))))?;
    let exp = expected(headers, opt_version(b)?)?;
    Ok(
        match cases::transition(&st.svc, p, id, to, opt_str(b, "reason")?, exp).await? {
            cases::Moved::Applied(c, h) => tagged(
                StatusCode::OK,
                c.version,
                &MoveApplied {
                    case: *c,
                    history_entry: *h,
                },
            ),
            cases::Moved::Requested(r) => {
                (StatusCode::ACCEPTED, Json(MoveRequested { request: *r })).into_response()
            }
        },
    )
}

/// Moves a case to another status (`case.transition`): `{"to", "reason"}` → 200
/// `{"case", "history_entry"}`, or 202 `{"request"}` when the move needs approval.
#[utoipa::path(post, path = "/api/v1/cases/{id}/transitions", tag = "cases", params(("id" = String, Path)), request_body = TransitionBody,
    responses((status = 200, body = MoveApplied), (status = 202, body = MoveRequested, description = "awaiting approval"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "version_conflict, request_pending"),
        (status = 422, body = ErrorBody, description = "invalid_transition, reason_required")))]
pub async fn transition_case(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<Map<String, Value>>,
) -> ApiResult<Response> {
    do_transition(&st, &p, &id, &headers, &b, "to").await
}

/// Alias of `POST /cases/{id}/transitions` taking `{"status", "reason"}`.
#[utoipa::path(post, path = "/api/v1/cases/{id}/status", tag = "cases", params(("id" = String, Path)), request_body = SetStatusBody,
    responses((status = 200, body = MoveApplied), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_status(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<Map<String, Value>>,
) -> ApiResult<Response> {
    do_transition(&st, &p, &id, &headers, &b, "status").await
}

/// The moves open to the caller.
#[utoipa::path(get, path = "/api/v1/cases/{id}/transitions", tag = "cases", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn list_transitions(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let t = cases::transitions(&st.svc, &p, &id).await?;
    Ok(Json(json!({ "transitions": t })))
}

/// The status history, oldest first.
#[utoipa::path(get, path = "/api/v1/cases/{id}/history", tag = "cases", params(("id" = String, Path)),
    responses((status = 200, body = CaseHistory), (status = 404, body = ErrorBody)))]
pub async fn case_history(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<CaseHistory>> {
    let status_history = cases::history(&st.svc, &p, &id).await?;
    Ok(Json(CaseHistory { status_history }))
}

/// Adds a comment (`case.edit`).
#[utoipa::path(post, path = "/api/v1/cases/{id}/comments", tag = "cases", params(("id" = String, Path)), request_body = CommentBody,
    responses((status = 201, body = CommentView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_comment(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<Map<String, Value>>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    only(&b, &["content"])?;
    let m = cases::comment(&st.svc, &p, &id, opt_str(&b, "content")?).await?;
    Ok((StatusCode::CREATED, Json(json!(m))))
}

/// `POST /cases/{id}/attachments` JSON body (a file kept elsewhere).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkAttachment {
    /// File name.
    pub name: String,
    /// Media type.
    #[serde(rename = "type")]
    pub media_type: String,
    /// `https` URL.
    pub url: String,
    /// Hex SHA-256, if known.
    pub sha256: Option<String>,
    /// Size in bytes, if known.
    pub size: Option<i64>,
}

/// Adds an attachment (`case.edit`): JSON `{"name", "type", "url"}` for a file kept elsewhere,
/// or `multipart/form-data` with the file in field `file` (and optionally `name`).
#[utoipa::path(post, path = "/api/v1/cases/{id}/attachments", tag = "cases", params(("id" = String, Path)), request_body = LinkAttachment,
    responses((status = 201, body = AttachmentView), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn add_attachment(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    // Refuse before reading a large body the caller may not attach anyway.
    p.require(casegate_domain::rbac::Permission::CaseEdit)?;
    let input = if ctype.starts_with("multipart/form-data") {
        read_upload(&st, req).await?
    } else {
        let bytes = axum::body::to_bytes(req.into_body(), st.config.max_body_bytes)
            .await
            .map_err(|_| ApiError(too_large()))?;
        if !ctype.starts_with("application/json") {
            return Err(ApiError(Error::new(
                casegate_domain::Code::MalformedRequest,
                "expected application/json (a link) or multipart/form-data (an upload)",
            )));
        }
        let b = axum::Json::<LinkAttachment>::from_bytes(&bytes)
            .map_err(|r| ApiError(json_rejection(r)))?
            .0;
        NewAttachment::Link {
            name: b.name,
            media_type: b.media_type,
            url: b.url,
            sha256: b.sha256,
            size: b.size,
        }
    };
    let a = cases::attach(&st.svc, &p, &id, input).await?;
    Ok((StatusCode::CREATED, Json(json!(a))))
}

/// Reads a multipart upload, refusing it (413) as soon as the file passes the attachment limit.
async fn read_upload(st: &AppState, req: Request) -> ApiResult<NewAttachment> {
    let max = st.config.max_attachment_bytes;
    let malformed = |m: &str| {
        ApiError(Error::new(
            casegate_domain::Code::MalformedRequest,
            m.to_string(),
        ))
    };
    let mut mp = Multipart::from_request(req, st)
        .await
        .map_err(|_| malformed("the multipart body cannot be read"))?;
    let (mut file, mut name, mut media_type, mut file_name) = (None, None, None, None);
    while let Some(mut field) = mp
        .next_field()
        .await
        .map_err(|_| malformed("the multipart body cannot be read"))?
    {
        match field.name() {
            Some("file") => {
                media_type = field.content_type().map(str::to_string);
                file_name = field.file_name().map(str::to_string);
                let mut buf = Vec::new();
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|_| malformed("the multipart body cannot be read"))?
                {
                    if buf.len() + chunk.len() > max {
                        return Err(ApiError(Error::new(
                            casegate_domain::Code::PayloadTooLarge,
                            format!("attachments are limited to {max} bytes"),
                        )));
                    }
                    buf.extend_from_slice(&chunk);
                }
                file = Some(buf);
            }
            Some("name") => {
                let mut buf = Vec::new();
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|_| malformed("the `name` part cannot be read"))?
                {
                    if buf.len() + chunk.len() > 1024 {
                        return Err(ApiError(Error::validation(
                            "name",
                            "must be at most 255 characters",
                        )));
                    }
                    buf.extend_from_slice(&chunk);
                }
                name = Some(
                    String::from_utf8(buf)
                        .map_err(|_| ApiError(Error::validation("name", "must be UTF-8 text")))?,
                );
            }
            Some(other) => {
                return Err(ApiError(Error::validation(
                    other,
                    format!("unknown part `{other}`"),
                )));
            }
            None => return Err(malformed("a multipart part has no name")),
        }
    }
    let bytes =
        file.ok_or_else(|| ApiError(Error::validation("file", "the upload needs a `file` part")))?;
    Ok(NewAttachment::Upload {
        name: name.or(file_name).unwrap_or_else(|| "attachment".into()),
        media_type: media_type.unwrap_or_else(|| "application/octet-stream".into()),
        bytes: Arc::new(bytes),
    })
}

/// Downloads a stored attachment.
#[utoipa::path(get, path = "/api/v1/cases/{id}/attachments/{attachment_id}/download", tag = "cases",
    params(("id" = String, Path), ("attachment_id" = String, Path)),
    responses((status = 200, description = "the file"), (status = 404, body = ErrorBody)))]
pub async fn download_attachment(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path((id, attachment_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (a, file) = cases::attachment_file(&st.svc, &p, &id, &attachment_id).await?;
    let mut headers = HeaderMap::new();
    let mut put = |name: header::HeaderName, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    put(header::CONTENT_TYPE, a.media_type.clone());
    // The stored name is free of control characters and separators; quotes are escaped.
    let safe: String = a
        .name
        .chars()
        .map(|c| if c == '"' || !c.is_ascii() { '_' } else { c })
        .collect();
    put(
        header::CONTENT_DISPOSITION,
        format!("attachment; filename=\"{safe}\""),
    );
    put(
        header::HeaderName::from_static("x-content-type-options"),
        "nosniff".into(),
    );
    if let Some(n) = a.size {
        put(header::CONTENT_LENGTH, n.to_string());
    }
    if let Some(h) = &a.sha256
        && let Some(raw) = casegate_domain::audit::unhex32(h)
    {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        put(
            header::HeaderName::from_static("repr-digest"),
            format!("sha-256=:{b64}:"),
        );
    }
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((StatusCode::OK, headers, body).into_response())
}

/// Escalates a case (`case.escalate`): `{"reason", "escalated_to"}`.
#[utoipa::path(post, path = "/api/v1/cases/{id}/escalate", tag = "cases", params(("id" = String, Path)), request_body = EscalateBody,
    responses((status = 200, body = CaseView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn escalate_case(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<Map<String, Value>>,
) -> ApiResult<Response> {
    only(&b, &["reason", "escalated_to", "expected_version"])?;
    let exp = expected(&headers, opt_version(&b)?)?;
    let c = cases::escalate(
        &st.svc,
        &p,
        &id,
        opt_str(&b, "reason")?,
        opt_str(&b, "escalated_to")?,
        exp,
    )
    .await?;
    Ok(case_answer(StatusCode::OK, &c))
}

/// Records the decision (`case.dispose`): `{"disposition", "reason"}`.
#[utoipa::path(post, path = "/api/v1/cases/{id}/disposition", tag = "cases", params(("id" = String, Path)), request_body = DispositionBody,
    responses((status = 200, body = CaseView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn dispose_case(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<Map<String, Value>>,
) -> ApiResult<Response> {
    only(&b, &["disposition", "reason", "expected_version"])?;
    let d = opt_str(&b, "disposition")?.ok_or_else(|| {
        ApiError(Error::validation(
            "disposition",
            "`disposition` is required",
        ))
    })?;
    let exp = expected(&headers, opt_version(&b)?)?;
    let c = cases::dispose(&st.svc, &p, &id, d, opt_str(&b, "reason")?, exp).await?;
    Ok(case_answer(StatusCode::OK, &c))
}

/// Overrides a decision (`case.override`) with a second person's approval.
#[utoipa::path(post, path = "/api/v1/cases/{id}/override", tag = "cases", params(("id" = String, Path)), request_body = OverrideBody,
    responses((status = 201, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn override_decision(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<Map<String, Value>>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    only(
        &b,
        &[
            "original_decision",
            "new_decision",
            "reason",
            "approved_by",
            "expected_version",
        ],
    )?;
    let req = |k: &str| {
        opt_str(&b, k)?
            .map(str::to_string)
            .ok_or_else(|| ApiError(Error::validation(k, format!("`{k}` is required"))))
    };
    let input = OverrideInput {
        original_decision: req("original_decision")?,
        new_decision: req("new_decision")?,
        reason: opt_str(&b, "reason")?.map(str::to_string),
        approved_by: opt_str(&b, "approved_by")?.map(str::to_string),
        expected_version: expected(&headers, opt_version(&b)?)?,
    };
    let o = cases::override_decision(&st.svc, &p, &id, input).await?;
    Ok((StatusCode::CREATED, Json(json!(o))))
}

/// Reopens a closed case (`case.transition`): `{"reason"}`.
#[utoipa::path(post, path = "/api/v1/cases/{id}/reopen", tag = "cases", params(("id" = String, Path)), request_body = ReopenBody,
    responses((status = 200, body = CaseView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn reopen_case(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<Map<String, Value>>,
) -> ApiResult<Response> {
    only(&b, &["reason", "expected_version"])?;
    let exp = expected(&headers, opt_version(&b)?)?;
    let c = cases::reopen(&st.svc, &p, &id, opt_str(&b, "reason")?, exp).await?;
    Ok(case_answer(StatusCode::OK, &c))
}

fn party_input(v: &Value, prefix: &str) -> ApiResult<PartyInput> {
    let m = v.as_object().ok_or_else(|| {
        ApiError(Error::validation(
            prefix.trim_end_matches('.'),
            "must be an object",
        ))
    })?;
    if let Some(k) = m
        .keys()
        .find(|k| !["kind", "name", "identifiers"].contains(&k.as_str()))
    {
        return Err(ApiError(Error::validation(
            format!("{prefix}{k}"),
            format!("unknown field `{k}`"),
        )));
    }
    let s = |k: &str| {
        opt_str(m, k)
            .map_err(|_| {
                ApiError(Error::validation(
                    format!("{prefix}{k}"),
                    "must be a string",
                ))
            })
            .map(|o| o.unwrap_or_default().to_string())
    };
    Ok(PartyInput {
        kind: s("kind")?,
        name: s("name")?,
        identifiers: m.get("identifiers").cloned(),
    })
}

/// Links a case to a case, an alert or a party (existing, or created with `party`).
#[utoipa::path(post, path = "/api/v1/cases/{id}/relations", tag = "cases", params(("id" = String, Path)), request_body = RelationBody,
    responses((status = 201, body = Object), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn add_relation(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<Map<String, Value>>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    only(&b, &["target_type", "target_id", "party", "relation"])?;
    let input = RelationInput {
        target_type: opt_str(&b, "target_type")?.map(str::to_string),
        target_id: opt_str(&b, "target_id")?.map(str::to_string),
        party: b
            .get("party")
            .filter(|v| !v.is_null())
            .map(|v| party_input(v, "party."))
            .transpose()?,
        relation: opt_str(&b, "relation")?.map(str::to_string),
    };
    let l = cases::relate(&st.svc, &p, &id, input).await?;
    Ok((StatusCode::CREATED, Json(json!(l))))
}

/// Records a party (`case.edit`): `{"kind", "name", "identifiers"}`.
#[utoipa::path(post, path = "/api/v1/parties", tag = "cases", request_body = PartyBody,
    responses((status = 201, body = Object), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_party(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(b): ApiJson<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let input = party_input(&b, "")?;
    let party = cases::create_party(&st.svc, &p, input).await?;
    Ok((StatusCode::CREATED, Json(json!(party))))
}

/// A party and the cases linking to it.
#[utoipa::path(get, path = "/api/v1/parties/{id}", tag = "cases", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn get_party(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(cases::party(&st.svc, &p, &id).await?)))
}

/// Decides an alert (`case.dispose`): `{"disposition": "true_positive|false_positive",
/// "reason", "escalate_to_case", "case_id", "case_type"}` → `{"alert", "case"}`.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/disposition", tag = "cases", params(("id" = String, Path)), request_body = AlertDispositionBody,
    responses((status = 200, body = Object), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn decide_alert(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    only(
        &b,
        &[
            "disposition",
            "reason",
            "escalate_to_case",
            "case_id",
            "case_type",
        ],
    )?;
    let escalate = match b.get("escalate_to_case") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(x)) => *x,
        Some(_) => {
            return Err(ApiError(Error::validation(
                "escalate_to_case",
                "must be true or false",
            )));
        }
    };
    let input = AlertDecision {
        disposition: opt_str(&b, "disposition")?
            .ok_or_else(|| {
                ApiError(Error::validation(
                    "disposition",
                    "`disposition` is required",
                ))
            })?
            .to_string(),
        reason: opt_str(&b, "reason")?.map(str::to_string),
        escalate_to_case: escalate,
        case_id: opt_str(&b, "case_id")?.map(str::to_string),
        case_type: opt_str(&b, "case_type")?.map(str::to_string),
    };
    let (alert, case) = cases::decide_alert(&st.svc, &p, &id, input).await?;
    Ok(Json(json!({ "alert": alert, "case": case })))
}
