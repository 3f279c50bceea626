//! `/sars` and `/settings/filing-profile` (API.md "SARs", docs/sars.md). Reports carry
//! `ETag: "<version>"`; `If-Match` makes a content change conditional.
use crate::AppState;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody, Json};
use crate::rest::bodies::{CreateSarBody, FilingProfileBody, SarStatusBody, UpdateSarBody};
use crate::rest::cases::{expected, only, opt_str, opt_version, tagged};
use crate::rest::{Auth, int_param, paging, unknown_param};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use casegate_domain::Error;
use casegate_service::sars::{self, NewSar, SarQuery};
use casegate_service::xsd::SchemaCheck;
use serde_json::{Map, Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_sar, list_sars))
        .routes(routes!(get_sar, update_sar))
        .routes(routes!(set_sar_status))
        .routes(routes!(sar_document))
        .routes(routes!(submit_sar))
        .routes(routes!(acknowledge_sar))
        .routes(routes!(get_filing_profile, put_filing_profile))
}

fn opt_bool(b: &Map<String, Value>, key: &str) -> ApiResult<Option<bool>> {
    match b.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(v)) => Ok(Some(*v)),
        Some(_) => Err(ApiError(Error::validation(key, "must be true or false"))),
    }
}

fn required<'a>(b: &'a Map<String, Value>, key: &str) -> ApiResult<&'a str> {
    opt_str(b, key)?.ok_or_else(|| ApiError(Error::validation(key, format!("`{key}` is required"))))
}

/// Opens a report on a case (`sar.edit`): `case_id` (id or reference), `filing_type`
/// (`initial|correct_prior|continuing_activity`), `jurisdiction` (`fincen|goaml|ncis|<fiu
/// code>`), `prior_report_id` (required for the last two types), `prior_filed_on`
/// (`YYYY-MM-DD`, continuing activity on a report not filed through casegate),
/// `suspect_identified`, `submit_for_review`. The content is pre-filled from the case.
#[utoipa::path(post, path = "/api/v1/sars", tag = "sars",
    request_body = CreateSarBody,
    responses((status = 201, body = Object, description = "the SAR, `status` draft or pending_review, with `deadline`"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_sar(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(b): ApiJson<Map<String, Value>>,
) -> ApiResult<Response> {
    only(
        &b,
        &[
            "case_id",
            "filing_type",
            "jurisdiction",
            "prior_report_id",
            "prior_filed_on",
            "suspect_identified",
            "submit_for_review",
        ],
    )?;
    let n = NewSar {
        case_id: required(&b, "case_id")?.into(),
        filing_type: required(&b, "filing_type")?.into(),
        jurisdiction: required(&b, "jurisdiction")?.into(),
        prior_report_id: opt_str(&b, "prior_report_id")?.map(Into::into),
        prior_filed_on: opt_str(&b, "prior_filed_on")?.map(Into::into),
        suspect_identified: opt_bool(&b, "suspect_identified")?,
        submit_for_review: opt_bool(&b, "submit_for_review")?.unwrap_or(false),
    };
    let (v, refused) = sars::create(&st.svc, &p, n).await?;
    let mut body = serde_json::to_value(&v).map_err(|e| ApiError(Error::internal(e)))?;
    if let Some(e) = refused {
        // The report exists as a draft; say why it did not go on to review.
        body["submit_for_review_error"] = json!({ "code": e.code.as_str(), "message": e.message });
    }
    Ok(tagged(StatusCode::CREATED, v.version, &body))
}

/// Reports, newest first (`sar.view`). `deadline_before` takes a date (deadlines before that
/// day) or an RFC 3339 date-time: the urgency queue.
#[utoipa::path(get, path = "/api/v1/sars", tag = "sars",
    params(("status" = Option<String>, Query), ("jurisdiction" = Option<String>, Query),
        ("deadline_before" = Option<String>, Query), ("case_id" = Option<String>, Query),
        ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = Object, description = "{\"sars\": [...]}"),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_sars(
    State(st): State<AppState>,
    Auth(p): Auth,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let mut q = SarQuery::default();
    let (page, rest) = paging(
        params,
        &["status", "jurisdiction", "deadline_before", "case_id"],
    )?;
    for (k, v) in rest {
        match k.as_str() {
            "status" => q.status = Some(v),
            "jurisdiction" => q.jurisdiction = Some(v),
            "deadline_before" => q.deadline_before = Some(v),
            _ => q.case_id = Some(v),
        }
    }
    let found = sars::list(&st.svc, &p, q, page).await?;
    Ok(Json(
        json!({ "sars": found, "limit": page.limit, "offset": page.offset }),
    ))
}

/// One report with its subjects, activity, narrative, validation result and history
/// (`sar.view`).
#[utoipa::path(get, path = "/api/v1/sars/{id}", tag = "sars", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_sar(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let d = sars::get(&st.svc, &p, &id).await?;
    Ok(tagged(StatusCode::OK, d.sar.version, &d))
}

/// Changes the report's content (`sar.edit`): `subjects`, `suspect_identified`, `activity`,
/// `narrative`; only in `draft` or `returned` (422 `sar_locked`).
#[utoipa::path(patch, path = "/api/v1/sars/{id}", tag = "sars", params(("id" = String, Path)),
    request_body = UpdateSarBody,
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody, description = "validation_failed, sar_locked")))]
pub async fn update_sar(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(mut b): ApiJson<Map<String, Value>>,
) -> ApiResult<Response> {
    // `If-Match`, or `expected_version` in the body (API.md conventions); the header wins.
    let exp = expected(&headers, opt_version(&b)?)?;
    b.remove("expected_version");
    let v = sars::update(&st.svc, &p, &id, b, exp).await?;
    Ok(tagged(StatusCode::OK, v.version, &v))
}

/// Moves the report (`new_status`: `pending_review` needs `sar.edit`; `approved`, `returned`,
/// `withdrawn` need `sar.review`; `reason` required for `returned` and `withdrawn`;
/// `reviewer_id` assigns the review). `filed` is 403 `status_reserved`. An approval gate
/// answers 202 with the report and its `pending_request`.
#[utoipa::path(post, path = "/api/v1/sars/{id}/status", tag = "sars", params(("id" = String, Path)),
    request_body = SarStatusBody,
    responses((status = 200, body = Object), (status = 202, body = Object, description = "awaiting approval"),
        (status = 403, body = ErrorBody, description = "forbidden, role_not_permitted, status_reserved"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "invalid_transition, reason_required")))]
pub async fn set_sar_status(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<Map<String, Value>>,
) -> ApiResult<Response> {
    only(&b, &["new_status", "reason", "reviewer_id"])?;
    let to = required(&b, "new_status")?;
    let (d, requested) = sars::set_status(
        &st.svc,
        &p,
        &id,
        to,
        opt_str(&b, "reason")?,
        opt_str(&b, "reviewer_id")?,
    )
    .await?;
    let status = if requested {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok(tagged(status, d.sar.version, &d))
}

/// The filing document (`sar.view`), `format` `fincen_xml` or `goaml_xml` (default: the
/// jurisdiction's). 200 `application/xml` when every business rule passes and the configured
/// schema validates it; `Casegate-Schema-Check` says `passed` or `skipped` (with the reason in
/// `Casegate-Schema-Check-Reason`). 422 `document_invalid` lists every problem.
#[utoipa::path(get, path = "/api/v1/sars/{id}/document", tag = "sars",
    params(("id" = String, Path), ("format" = Option<String>, Query)),
    responses((status = 200, content_type = "application/xml", body = String),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "document_invalid (details.problems), validation_failed")))]
pub async fn sar_document(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let mut format = None;
    for (k, v) in params {
        match k.as_str() {
            "format" => format = Some(v),
            _ => return Err(unknown_param(&k, &["format"])),
        }
    }
    let doc = sars::document(&st.svc, &p, &id, format.as_deref()).await?;
    doc.require_valid()?;
    let mut r = (StatusCode::OK, doc.xml).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    h.insert(
        "casegate-schema-check",
        HeaderValue::from_static(doc.schema.outcome()),
    );
    if let SchemaCheck::Skipped { reason } = &doc.schema
        && let Ok(v) = HeaderValue::from_str(reason)
    {
        h.insert("casegate-schema-check-reason", v);
    }
    Ok(r)
}

/// Files an `approved` report through the configured transmitter (`sar.review`); the sandbox
/// answers `SANDBOX-SAR-XXXXXXXX` in `filing_reference` and the report becomes `filed`.
#[utoipa::path(post, path = "/api/v1/sars/{id}/submit", tag = "sars", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "invalid_transition (not approved), document_invalid")))]
pub async fn submit_sar(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let d = sars::submit(&st.svc, &p, &id).await?;
    Ok(tagged(StatusCode::OK, d.sar.version, &d))
}

/// Records the regulator's acknowledgement of a filed report (`sar.review`): the body is
/// FinCEN's acknowledgement XML; `activity_seq` picks the report's activity in a batch.
/// Answers the report with `bsa_id` and `acknowledgement` (`accepted`, `warnings`, `errors`).
#[utoipa::path(post, path = "/api/v1/sars/{id}/acknowledgement", tag = "sars",
    params(("id" = String, Path), ("activity_seq" = Option<i64>, Query)),
    request_body(content = String, content_type = "application/xml"),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "validation_failed (body, activity_seq), invalid_transition (not filed)")))]
pub async fn acknowledge_sar(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Response> {
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError(crate::error::too_large()),
        _ => ApiError(Error::new(
            casegate_domain::Code::MalformedRequest,
            "the body could not be read",
        )),
    })?;
    let mut seq = None;
    for (k, v) in params {
        match k.as_str() {
            "activity_seq" => seq = Some(int_param("activity_seq", &v)?),
            _ => return Err(unknown_param(&k, &["activity_seq"])),
        }
    }
    let d = sars::acknowledge(&st.svc, &p, &id, &body, seq).await?;
    Ok(tagged(StatusCode::OK, d.sar.version, &d))
}

/// The tenant's filing profile (`sar.view`): filer, transmitter, contact office and the
/// jurisdictions' codes.
#[utoipa::path(get, path = "/api/v1/settings/filing-profile", tag = "sars",
    responses((status = 200, body = Object), (status = 403, body = ErrorBody)))]
pub async fn get_filing_profile(State(st): State<AppState>, Auth(p): Auth) -> ApiResult<Response> {
    let (profile, version) = sars::filing_profile(&st.svc, &p).await?;
    Ok(tagged(StatusCode::OK, version, &profile))
}

/// Replaces the filing profile (`sar.review`); `If-Match` guards against a concurrent change.
#[utoipa::path(put, path = "/api/v1/settings/filing-profile", tag = "sars",
    request_body = FilingProfileBody,
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn put_filing_profile(
    State(st): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    ApiJson(b): ApiJson<Value>,
) -> ApiResult<Response> {
    let (profile, version) =
        sars::put_filing_profile(&st.svc, &p, b, expected(&headers, None)?).await?;
    Ok(tagged(StatusCode::OK, version, &profile))
}
