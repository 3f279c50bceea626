//! `/audit`: the tenant's hash-chained trail, its verification, its signed checkpoints and
//! its exports.
//! Events are serialised straight from `casegate_domain::audit::AuditEvent`, so the JSON a
//! client receives is exactly the hashed record plus `hash` (docs/audit-format.md).
use crate::AppState;
use crate::error::{ApiJson, ApiQuery, ApiResult, ErrorBody, Json};
use crate::rest::{Auth, PageQuery};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use casegate_domain::Error;
use casegate_domain::audit::{AuditEvent, Checkpoint, Verification};
use casegate_domain::clock::wire_time;
use casegate_domain::export::{ExportFormat, ExportStatus};
use casegate_service::audit;
use casegate_service::exports::{self, ExportRequest};
use casegate_store::audit::AuditFilter;
use casegate_store::exports::StoredExport;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// An audit event (documentation of the shape; the body is the domain event itself).
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct AuditEventView {
    /// Tenant whose chain holds the event.
    pub tenant_id: String,
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// Event id.
    pub event_id: String,
    /// RFC 3339 UTC, microseconds.
    pub occurred_at: String,
    /// Email, `jwt:<sub>` or `system`.
    pub actor: String,
    /// The actor's user id.
    pub actor_id: Option<String>,
    /// Client address.
    pub actor_ip: Option<String>,
    /// The request that caused it.
    pub request_id: Option<String>,
    /// `<entity>.<verb>`.
    pub action: String,
    /// Entity kind.
    pub entity_type: String,
    /// Entity id.
    pub entity_id: Option<String>,
    /// `{"field": {"before", "after"}}`.
    pub changes: Value,
    /// Hash of the previous event (hex; genesis 64 zeros).
    pub prev_hash: String,
    /// SHA-256(prev_hash bytes ‖ RFC 8785 JSON of this object without `hash`), hex.
    pub hash: String,
}

/// A page of events.
#[derive(Serialize, ToSchema)]
pub struct EventsPage {
    /// Events, newest first unless `order=asc`.
    #[schema(value_type = Vec<AuditEventView>)]
    pub events: Vec<AuditEvent>,
    /// Events matching the filter.
    pub total: i64,
    /// Page size.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
}

/// `GET /audit/verify` answer.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct VerificationView {
    /// Whether the chain and every checkpoint hold.
    pub valid: bool,
    /// Events recomputed.
    pub events_checked: u64,
    /// Last intact seq.
    pub head_seq: i64,
    /// Its hash.
    pub head_hash: String,
    /// First seq at which the chain or a checkpoint fails.
    pub first_broken_seq: Option<i64>,
    /// What failed there.
    pub reason: Option<String>,
}

/// A signed checkpoint.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct CheckpointView {
    /// Tenant.
    pub tenant_id: String,
    /// Chain position vouched for.
    pub seq: i64,
    /// Hash at that position.
    pub hash: String,
    /// RFC 3339.
    pub signed_at: String,
    /// Base64 Ed25519 signature over the RFC 8785 form of `{tenant_id, seq, hash, signed_at}`.
    pub signature: String,
}

/// `GET /audit/checkpoints` answer.
#[derive(Serialize, ToSchema)]
pub struct CheckpointsView {
    /// Base64 of the raw 32-byte Ed25519 public key.
    pub public_key: String,
    /// Identifies the key (first 16 hex digits of its SHA-256).
    pub key_id: String,
    /// Checkpoints, oldest first.
    #[schema(value_type = Vec<CheckpointView>)]
    pub checkpoints: Vec<Checkpoint>,
}

/// Filters of `GET /audit/events`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Entity kind (`user`, `api_key`, `case`…).
    pub entity_type: Option<String>,
    /// Entity id.
    pub entity_id: Option<String>,
    /// Actor email, `system`, or actor user id.
    pub actor: Option<String>,
    /// Action (`user.created`…).
    pub action: Option<String>,
    /// RFC 3339, inclusive.
    pub from: Option<String>,
    /// RFC 3339, exclusive.
    pub to: Option<String>,
    /// `desc` (default) or `asc`.
    pub order: Option<String>,
    /// Rows per page, 1–200.
    pub limit: Option<i64>,
    /// Rows to skip.
    pub offset: Option<i64>,
}

fn parse_time(name: &str, s: &str) -> Result<OffsetDateTime, Error> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|_| Error::validation(name, "must be an RFC 3339 date-time"))
}

fn time_param(name: &str, v: &Option<String>) -> Result<Option<OffsetDateTime>, Error> {
    v.as_deref().map(|s| parse_time(name, s)).transpose()
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(verify_chain))
        .routes(routes!(list_checkpoints, create_checkpoint))
        .routes(routes!(create_export, list_exports))
        .routes(routes!(get_export))
        .routes(routes!(download_export))
}

/// The organisation's audit events (`audit.view`).
#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit", params(EventsQuery),
    responses((status = 200, body = EventsPage), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_events(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<Json<EventsPage>> {
    let page = PageQuery {
        limit: q.limit,
        offset: q.offset,
    }
    .page()?;
    let ascending = match q.order.as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(_) => return Err(Error::validation("order", "must be asc or desc").into()),
    };
    let filter = AuditFilter {
        entity_type: q.entity_type,
        entity_id: q.entity_id,
        actor: q.actor,
        action: q.action,
        from: time_param("from", &q.from)?,
        to: time_param("to", &q.to)?,
        ascending,
    };
    let (events, total) = audit::events(&st.svc, &p, &filter, page).await?;
    Ok(Json(EventsPage {
        events,
        total,
        limit: page.limit,
        offset: page.offset,
    }))
}

/// Recomputes the organisation's hash chain and checks its signed checkpoints.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = VerificationView), (status = 403, body = ErrorBody)))]
pub async fn verify_chain(
    State(st): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<Verification>> {
    Ok(Json(audit::verify(&st.svc, &p).await?))
}

/// The signed checkpoints and the public key that verifies them.
#[utoipa::path(get, path = "/api/v1/audit/checkpoints", tag = "audit",
    responses((status = 200, body = CheckpointsView), (status = 403, body = ErrorBody)))]
pub async fn list_checkpoints(
    State(st): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<CheckpointsView>> {
    let (public_key, key_id, checkpoints) = audit::checkpoints(&st.svc, &p).await?;
    Ok(Json(CheckpointsView {
        public_key,
        key_id,
        checkpoints,
    }))
}

/// Signs a checkpoint at the current head now (`audit.export`).
#[utoipa::path(post, path = "/api/v1/audit/checkpoints", tag = "audit",
    responses((status = 201, body = CheckpointView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_checkpoint(
    State(st): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<(StatusCode, Json<Checkpoint>)> {
    match audit::checkpoint(&st.svc, &p).await? {
        Some(c) => Ok((StatusCode::CREATED, Json(c))),
        None => Err(Error::validation("audit", "the audit trail is empty").into()),
    }
}

/// An audit export and, once ready, how to check its file.
#[derive(Serialize, ToSchema)]
pub struct ExportView {
    /// Export id.
    pub export_id: String,
    /// `queued`, `running`, `ready` or `failed`.
    pub status: String,
    /// `json`, `csv` or `pdf`.
    pub format: String,
    /// Period start (RFC 3339, inclusive).
    pub from: String,
    /// Period end (RFC 3339, exclusive).
    pub to: String,
    /// Only events of this entity type.
    pub entity_type: Option<String>,
    /// Whether events carry `prev_hash` and `hash`.
    pub include_hash_chain: bool,
    /// Who asked for it.
    pub requested_by: String,
    /// RFC 3339.
    pub requested_at: String,
    /// When a worker first took it up.
    pub started_at: Option<String>,
    /// When it became ready or failed.
    pub finished_at: Option<String>,
    /// Worker attempts so far.
    pub attempts: i64,
    /// Events in the file.
    pub event_count: Option<i64>,
    /// Chain position of the first exported event.
    pub first_seq: Option<i64>,
    /// Chain position of the last exported event.
    pub last_seq: Option<i64>,
    /// File size in bytes.
    pub size_bytes: Option<i64>,
    /// Hex SHA-256 of the file.
    pub sha256: Option<String>,
    /// Base64 Ed25519 signature over the file's bytes (key: `GET /audit/checkpoints`).
    pub signature: Option<String>,
    /// The signing key's id.
    pub key_id: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Where to fetch the file once ready.
    pub download_url: Option<String>,
}

impl From<StoredExport> for ExportView {
    fn from(e: StoredExport) -> Self {
        let ready = e.status == ExportStatus::Ready;
        Self {
            download_url: ready.then(|| format!("/api/v1/audit/exports/{}/download", e.id)),
            export_id: e.id.to_string(),
            status: e.status.as_str().into(),
            format: e.format.as_str().into(),
            from: wire_time(e.from),
            to: wire_time(e.to),
            entity_type: e.entity_type,
            include_hash_chain: e.include_hash_chain,
            requested_by: e.requested_by_label,
            requested_at: wire_time(e.requested_at),
            started_at: e.started_at.map(wire_time),
            finished_at: e.finished_at.map(wire_time),
            attempts: e.attempts,
            event_count: e.event_count,
            first_seq: e.first_seq,
            last_seq: e.last_seq,
            size_bytes: e.size_bytes,
            sha256: e.sha256,
            signature: e.signature,
            key_id: e.key_id,
            error: e.error,
        }
    }
}

/// A page of exports.
#[derive(Serialize, ToSchema)]
pub struct ExportsPage {
    /// Newest first.
    pub exports: Vec<ExportView>,
    /// Exports in all.
    pub total: i64,
    /// Page size.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
}

/// `POST /audit/exports` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateExport {
    /// `json`, `csv` or `pdf`.
    pub format: String,
    /// RFC 3339, inclusive.
    pub from: String,
    /// RFC 3339, exclusive; at most twelve months after `from`.
    pub to: String,
    /// Only events of this entity type (`case`, `user`…).
    pub entity_type: Option<String>,
    /// Whether events carry `prev_hash`/`hash` and the JSON a signed checkpoint [default: true].
    pub include_hash_chain: Option<bool>,
}

/// Queues an export of the audit trail (`audit.export`); the worker produces it and
/// `audit.export_ready` fires when it is done.
#[utoipa::path(post, path = "/api/v1/audit/exports", tag = "audit", request_body = CreateExport,
    responses((status = 202, body = ExportView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_export(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(b): ApiJson<CreateExport>,
) -> ApiResult<(
    StatusCode,
    [(header::HeaderName, String); 1],
    Json<ExportView>,
)> {
    let format = ExportFormat::parse(&b.format)
        .ok_or_else(|| Error::validation("format", "must be json, csv or pdf"))?;
    let req = ExportRequest {
        format,
        from: parse_time("from", &b.from)?,
        to: parse_time("to", &b.to)?,
        entity_type: b.entity_type,
        include_hash_chain: b.include_hash_chain.unwrap_or(true),
    };
    let e = exports::request(&st.svc, &p, req).await?;
    let location = format!("/api/v1/audit/exports/{}", e.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(e.into()),
    ))
}

/// The organisation's audit exports, newest first (`audit.export`).
#[utoipa::path(get, path = "/api/v1/audit/exports", tag = "audit", params(PageQuery),
    responses((status = 200, body = ExportsPage), (status = 403, body = ErrorBody)))]
pub async fn list_exports(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<ExportsPage>> {
    let page = q.page()?;
    let (rows, total) = exports::list(&st.svc, &p, page).await?;
    Ok(Json(ExportsPage {
        exports: rows.into_iter().map(Into::into).collect(),
        total,
        limit: page.limit,
        offset: page.offset,
    }))
}

/// One export's status (`audit.export`).
#[utoipa::path(get, path = "/api/v1/audit/exports/{id}", tag = "audit",
    responses((status = 200, body = ExportView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_export(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ExportView>> {
    Ok(Json(exports::get(&st.svc, &p, &id).await?.into()))
}

/// The export file (`audit.export`); its detached Ed25519 signature is repeated in
/// `X-Casegate-Signature-Ed25519`, its SHA-256 in `Repr-Digest` (RFC 9530).
#[utoipa::path(get, path = "/api/v1/audit/exports/{id}/download", tag = "audit",
    responses((status = 200, description = "the file", content_type = "application/octet-stream"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn download_export(
    State(st): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (e, file) = exports::download(&st.svc, &p, &id).await?;
    let sha = e
        .sha256
        .as_deref()
        .and_then(casegate_domain::audit::unhex32);
    let mut headers = HeaderMap::new();
    let mut put = |name: header::HeaderName, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    put(header::CONTENT_TYPE, e.format.media_type().into());
    put(
        header::CONTENT_DISPOSITION,
        format!(
            "attachment; filename=\"casegate-audit-{}.{}\"",
            e.id,
            e.format.as_str()
        ),
    );
    if let Some(n) = e.size_bytes {
        put(header::CONTENT_LENGTH, n.to_string());
    }
    if let Some(sig) = &e.signature {
        put(
            header::HeaderName::from_static("x-casegate-signature-ed25519"),
            sig.clone(),
        );
    }
    if let Some(k) = &e.key_id {
        put(
            header::HeaderName::from_static("x-casegate-signature-key-id"),
            k.clone(),
        );
    }
    if let Some(d) = sha {
        put(
            header::HeaderName::from_static("repr-digest"),
            format!(
                "sha-256=:{}:",
                base64::engine::general_purpose::STANDARD.encode(d)
            ),
        );
    }
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((headers, body).into_response())
}
