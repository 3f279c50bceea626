//! Transition requests: moves waiting for approval. The approval state is one JSON document
//! (`approval`, the domain's `approval::Request`) written whole under the row's `version`; the
//! `status` column is authoritative (a case change supersedes pending requests in SQL). At most
//! one request per case is pending: a partial unique index enforces it.
use crate::{Conn, Row, StoreResult, Val, Where, page_clause};
use casegate_domain::ids::{CaseId, TenantId};
use serde_json::Value as Json;
use time::OffsetDateTime;
use uuid::Uuid;

/// The constraint that refuses a second pending request on one case.
pub const ONE_PENDING: &str = "transition_requests_one_pending";

/// One transition request as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRequest {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Request id.
    pub id: Uuid,
    /// The case to move.
    pub case_id: CaseId,
    /// The case's version when the move was asked for.
    pub case_version: i64,
    /// The status it leaves.
    pub from: String,
    /// The status it goes to.
    pub to: String,
    /// The rule that asked for approval.
    pub rule_id: Option<String>,
    /// Requester user id.
    pub requested_by: Uuid,
    /// Requester as audited.
    pub requested_by_label: String,
    /// Why.
    pub reason: Option<String>,
    /// `pending|approved|applied|rejected|expired|cancelled|superseded`.
    pub status: String,
    /// Index of the tier taking decisions.
    pub current_tier: i64,
    /// Tiers, slots, decisions and deadlines.
    pub approval: Json,
    /// The rule's post-actions, run once the move is applied.
    pub post_actions: Json,
    /// When the move was asked for.
    pub requested_at: OffsetDateTime,
    /// When approval was first asked of approvers.
    pub approval_requested_at: OffsetDateTime,
    /// When the request stopped waiting (approved, rejected, expired…).
    pub approval_completed_at: Option<OffsetDateTime>,
    /// When the move was applied.
    pub effective_at: Option<OffsetDateTime>,
    /// When the timer next has work on it (reminder or deadline).
    pub next_due_at: Option<OffsetDateTime>,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// Optimistic-concurrency version, from 1.
    pub version: i64,
}

const COLS: &str = "tenant_id, id, case_id, case_version, from_status, to_status, rule_id, \
    requested_by, requested_by_label, reason, status, current_tier, approval, post_actions, \
    requested_at, approval_requested_at, approval_completed_at, effective_at, next_due_at, \
    updated_at, version";

fn from_row(r: &Row) -> StoreResult<StoredRequest> {
    Ok(StoredRequest {
        tenant_id: TenantId(r.uuid("tenant_id")?),
        id: r.uuid("id")?,
        case_id: CaseId(r.uuid("case_id")?),
        case_version: r.int("case_version")?,
        from: r.text("from_status")?,
        to: r.text("to_status")?,
        rule_id: r.opt_text("rule_id")?,
        requested_by: r.uuid("requested_by")?,
        requested_by_label: r.text("requested_by_label")?,
        reason: r.opt_text("reason")?,
        status: r.text("status")?,
        current_tier: r.int("current_tier")?,
        approval: r.json("approval")?,
        post_actions: r.json("post_actions")?,
        requested_at: r.time("requested_at")?,
        approval_requested_at: r.time("approval_requested_at")?,
        approval_completed_at: r.opt_time("approval_completed_at")?,
        effective_at: r.opt_time("effective_at")?,
        next_due_at: r.opt_time("next_due_at")?,
        updated_at: r.time("updated_at")?,
        version: r.int("version")?,
    })
}

/// Adds a request. A second pending request on the case fails with
/// `StoreError::Conflict { constraint: ONE_PENDING }`.
pub async fn insert(c: &mut dyn Conn, q: &StoredRequest) -> StoreResult<()> {
    let args: Vec<Val> = vec![
        q.tenant_id.into(),
        q.id.into(),
        q.case_id.into(),
        q.case_version.into(),
        q.from.as_str().into(),
        q.to.as_str().into(),
        q.rule_id.clone().into(),
        q.requested_by.into(),
        q.requested_by_label.as_str().into(),
        q.reason.clone().into(),
        q.status.as_str().into(),
        q.current_tier.into(),
        q.approval.clone().into(),
        q.post_actions.clone().into(),
        q.requested_at.into(),
        q.approval_requested_at.into(),
        q.approval_completed_at.into(),
        q.effective_at.into(),
        q.next_due_at.into(),
        q.updated_at.into(),
        q.version.into(),
    ];
    c.execute(
        &format!(
            "INSERT INTO transition_requests ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
        ),
        &args,
    )
    .await
    .map(drop)
    .map_err(|e| e.name_unique(ONE_PENDING, "transition_requests.case_id"))
}

/// Writes the changing columns of `q` if the stored version is still `expected` (the caller
/// sets `q.version`). Returns whether the row was written.
pub async fn update(c: &mut dyn Conn, q: &StoredRequest, expected: i64) -> StoreResult<bool> {
    let n = c
        .execute(
            "UPDATE transition_requests SET status = $3, current_tier = $4, approval = $5, \
             approval_completed_at = $6, effective_at = $7, next_due_at = $8, updated_at = $9, \
             version = $10 WHERE tenant_id = $1 AND id = $2 AND version = $11",
            &[
                q.tenant_id.into(),
                q.id.into(),
                q.status.as_str().into(),
                q.current_tier.into(),
                q.approval.clone().into(),
                q.approval_completed_at.into(),
                q.effective_at.into(),
                q.next_due_at.into(),
                q.updated_at.into(),
                q.version.into(),
                expected.into(),
            ],
        )
        .await?;
    Ok(n == 1)
}

/// One request of `tenant`.
pub async fn get(
    c: &mut dyn Conn,
    tenant: TenantId,
    id: Uuid,
) -> StoreResult<Option<StoredRequest>> {
    one(c, tenant, id, "").await
}

/// [`get`] under a row lock (PostgreSQL) held to the end of the transaction.
pub async fn lock(
    c: &mut dyn Conn,
    tenant: TenantId,
    id: Uuid,
) -> StoreResult<Option<StoredRequest>> {
    let lock = c.dialect().row_lock(" FOR UPDATE");
    one(c, tenant, id, lock).await
}

async fn one(
    c: &mut dyn Conn,
    tenant: TenantId,
    id: Uuid,
    lock: &str,
) -> StoreResult<Option<StoredRequest>> {
    c.fetch_optional(
        &format!("SELECT {COLS} FROM transition_requests WHERE tenant_id = $1 AND id = $2{lock}"),
        &[tenant.into(), id.into()],
    )
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// The pending request of a case, if any.
pub async fn pending_for_case(
    c: &mut dyn Conn,
    tenant: TenantId,
    case: CaseId,
) -> StoreResult<Option<StoredRequest>> {
    c.fetch_optional(
        &format!(
            "SELECT {COLS} FROM transition_requests \
             WHERE tenant_id = $1 AND case_id = $2 AND status = 'pending'"
        ),
        &[tenant.into(), case.into()],
    )
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// Marks the case's pending request (if any) superseded; answers its id.
pub async fn supersede_pending(
    c: &mut dyn Conn,
    tenant: TenantId,
    case: CaseId,
    now: OffsetDateTime,
) -> StoreResult<Option<Uuid>> {
    c.fetch_optional(
        "UPDATE transition_requests SET status = 'superseded', approval_completed_at = $3, \
         next_due_at = NULL, updated_at = $3, version = version + 1 \
         WHERE tenant_id = $1 AND case_id = $2 AND status = 'pending' RETURNING id",
        &[tenant.into(), case.into(), now.into()],
    )
    .await?
    .map(|r| r.uuid("id"))
    .transpose()
}

/// Filters of a request list.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only this status.
    pub status: Option<String>,
    /// Only this case's.
    pub case_id: Option<CaseId>,
    /// Oldest first (the order an inbox is worked in) instead of newest first.
    pub oldest_first: bool,
}

fn filtered(tenant: TenantId, f: &Filter) -> (String, Vec<Val>) {
    let mut w = Where::tenant("tenant_id", tenant);
    if let Some(s) = &f.status {
        w.push("status = ?", [s.as_str().into()]);
    }
    if let Some(k) = f.case_id {
        w.push("case_id = ?", [k.into()]);
    }
    w.finish()
}

/// How many of `tenant`'s requests match `f`.
pub async fn count(c: &mut dyn Conn, tenant: TenantId, f: &Filter) -> StoreResult<i64> {
    let (clause, args) = filtered(tenant, f);
    c.fetch_one(
        &format!("SELECT count(*) AS n FROM transition_requests WHERE {clause}"),
        &args,
    )
    .await?
    .int("n")
}

/// `tenant`'s requests matching `f`, newest first unless `f.oldest_first`.
pub async fn list(
    c: &mut dyn Conn,
    tenant: TenantId,
    f: &Filter,
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<StoredRequest>> {
    let (clause, mut args) = filtered(tenant, f);
    let page = page_clause(&mut args, limit, offset);
    let order = if f.oldest_first {
        "requested_at, id"
    } else {
        "requested_at DESC, id DESC"
    };
    c.fetch_all(
        &format!("SELECT {COLS} FROM transition_requests WHERE {clause} ORDER BY {order} {page}"),
        &args,
    )
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// Locks and answers the pending request that is due soonest at `now`, skipping requests
/// another transaction holds (PostgreSQL `SKIP LOCKED`), so several timer workers share the
/// work and none fires a request another is handling. Keep the transaction short.
pub async fn claim_due(
    c: &mut dyn Conn,
    now: OffsetDateTime,
) -> StoreResult<Option<StoredRequest>> {
    let lock = c.dialect().row_lock(" FOR UPDATE SKIP LOCKED");
    c.fetch_optional(
        &format!(
            "SELECT {COLS} FROM transition_requests \
             WHERE status = 'pending' AND next_due_at IS NOT NULL AND next_due_at <= $1 \
             ORDER BY next_due_at LIMIT 1{lock}"
        ),
        &[now.into()],
    )
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// Whether any pending request is due at `now` (a plain read, so an idle timer takes no write
/// lock).
pub async fn any_due(c: &mut dyn Conn, now: OffsetDateTime) -> StoreResult<bool> {
    Ok(c.fetch_optional(
        "SELECT 1 AS one FROM transition_requests \
             WHERE status = 'pending' AND next_due_at IS NOT NULL AND next_due_at <= $1 LIMIT 1",
        &[now.into()],
    )
    .await?
    .is_some())
}

/// Moves a pending request's next timer time to `until` (after a failed attempt, so one bad
/// request does not hold up the others).
pub async fn postpone(
    c: &mut dyn Conn,
    tenant: TenantId,
    id: Uuid,
    until: OffsetDateTime,
) -> StoreResult<()> {
    c.execute(
        "UPDATE transition_requests SET next_due_at = $3 \
         WHERE tenant_id = $1 AND id = $2 AND status = 'pending'",
        &[tenant.into(), id.into(), until.into()],
    )
    .await
    .map(drop)
}
