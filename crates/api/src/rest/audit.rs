//! `/audit`: the tenant's hash-chained trail, its verification and its signed checkpoints.
//! Events are serialised straight from `casegate_domain::audit::AuditEvent`, so the JSON a
//! client receives is exactly the hashed record plus `hash` (docs/audit-format.md).
use crate::AppState;
use crate::error::{ApiQuery, ApiResult, ErrorBody};
use crate::rest::{Auth, PageQuery};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use casegate_domain::Error;
use casegate_domain::audit::{AuditEvent, Checkpoint, Verification};
use casegate_service::audit;
use casegate_store::audit::AuditFilter;
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

fn time_param(name: &str, v: &Option<String>) -> Result<Option<OffsetDateTime>, Error> {
    v.as_deref()
        .map(|s| {
            OffsetDateTime::parse(s, &Rfc3339)
                .map_err(|_| Error::validation(name, "must be an RFC 3339 date-time"))
        })
        .transpose()
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(verify_chain))
        .routes(routes!(list_checkpoints, create_checkpoint))
}

/// The organisation's audit events (`audit.view`).
#[utoipa::path(get, path = "/audit/events", tag = "audit", params(EventsQuery),
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
#[utoipa::path(get, path = "/audit/verify", tag = "audit",
    responses((status = 200, body = VerificationView), (status = 403, body = ErrorBody)))]
pub async fn verify_chain(
    State(st): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<Verification>> {
    Ok(Json(audit::verify(&st.svc, &p).await?))
}

/// The signed checkpoints and the public key that verifies them.
#[utoipa::path(get, path = "/audit/checkpoints", tag = "audit",
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
#[utoipa::path(post, path = "/audit/checkpoints", tag = "audit",
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
