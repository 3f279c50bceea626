//! Audit exports: the request row, the worker's claim (a lease, so a crashed worker's export
//! is picked up again) and the outcome. The file is kept in the blob store by its SHA-256.
use crate::{Conn, Row, StoreResult, Val};
use casegate_domain::export::{ExportFormat, ExportStatus};
use casegate_domain::ids::TenantId;
use time::OffsetDateTime;
use uuid::Uuid;

/// One export as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredExport {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Export id.
    pub id: Uuid,
    /// File format.
    pub format: ExportFormat,
    /// Period start (inclusive).
    pub from: OffsetDateTime,
    /// Period end (exclusive).
    pub to: OffsetDateTime,
    /// Only events of this entity type.
    pub entity_type: Option<String>,
    /// Whether events carry `prev_hash`/`hash` (and the JSON a checkpoint).
    pub include_hash_chain: bool,
    /// Lifecycle.
    pub status: ExportStatus,
    /// Requesting user id.
    pub requested_by: Option<Uuid>,
    /// Requesting actor as audited.
    pub requested_by_label: String,
    /// Request time.
    pub requested_at: OffsetDateTime,
    /// Worker attempts so far.
    pub attempts: i64,
    /// When the current claim lapses.
    pub lease_until: Option<OffsetDateTime>,
    /// First claim time.
    pub started_at: Option<OffsetDateTime>,
    /// Ready or failed time.
    pub finished_at: Option<OffsetDateTime>,
    /// Events in the file.
    pub event_count: Option<i64>,
    /// Seq of the first event in the file.
    pub first_seq: Option<i64>,
    /// Seq of the last event in the file.
    pub last_seq: Option<i64>,
    /// File size.
    pub size_bytes: Option<i64>,
    /// Hex SHA-256 of the file (its blob name).
    pub sha256: Option<String>,
    /// Base64 Ed25519 signature over the file.
    pub signature: Option<String>,
    /// Signing key id.
    pub key_id: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

const COLS: &str = "tenant_id, id, format, from_at, to_at, entity_type, include_hash_chain, status, requested_by, \
    requested_by_label, requested_at, attempts, lease_until, started_at, finished_at, event_count, first_seq, last_seq, \
    size_bytes, sha256, signature, key_id, error";

fn from_row(r: &Row) -> StoreResult<StoredExport> {
    let format = r.text("format")?;
    let status = r.text("status")?;
    Ok(StoredExport {
        tenant_id: TenantId(r.uuid("tenant_id")?),
        id: r.uuid("id")?,
        format: ExportFormat::parse(&format)
            .ok_or_else(|| crate::StoreError::Other(format!("unknown export format {format}")))?,
        from: r.time("from_at")?,
        to: r.time("to_at")?,
        entity_type: r.opt_text("entity_type")?,
        include_hash_chain: r.bool("include_hash_chain")?,
        status: ExportStatus::parse(&status)
            .ok_or_else(|| crate::StoreError::Other(format!("unknown export status {status}")))?,
        requested_by: r.opt_uuid("requested_by")?,
        requested_by_label: r.text("requested_by_label")?,
        requested_at: r.time("requested_at")?,
        attempts: r.int("attempts")?,
        lease_until: r.opt_time("lease_until")?,
        started_at: r.opt_time("started_at")?,
        finished_at: r.opt_time("finished_at")?,
        event_count: r.opt_int("event_count")?,
        first_seq: r.opt_int("first_seq")?,
        last_seq: r.opt_int("last_seq")?,
        size_bytes: r.opt_int("size_bytes")?,
        sha256: r.opt_text("sha256")?,
        signature: r.opt_text("signature")?,
        key_id: r.opt_text("key_id")?,
        error: r.opt_text("error")?,
    })
}

/// Stores a new, queued export.
pub async fn insert(c: &mut dyn Conn, e: &StoredExport) -> StoreResult<()> {
    c.execute(
        "INSERT INTO audit_exports (tenant_id, id, format, from_at, to_at, entity_type, include_hash_chain, status, \
         requested_by, requested_by_label, requested_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            e.tenant_id.into(),
            e.id.into(),
            e.format.as_str().into(),
            e.from.into(),
            e.to.into(),
            e.entity_type.clone().into(),
            e.include_hash_chain.into(),
            e.status.as_str().into(),
            e.requested_by.into(),
            e.requested_by_label.as_str().into(),
            e.requested_at.into(),
        ],
    )
    .await
    .map(drop)
}

/// One export of `tenant`.
pub async fn get(
    c: &mut dyn Conn,
    tenant: TenantId,
    id: Uuid,
) -> StoreResult<Option<StoredExport>> {
    let sql = format!("SELECT {COLS} FROM audit_exports WHERE tenant_id = $1 AND id = $2");
    c.fetch_optional(&sql, &[tenant.into(), id.into()])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// A page of `tenant`'s exports, newest first, and their number.
pub async fn list(
    c: &mut dyn Conn,
    tenant: TenantId,
    limit: i64,
    offset: i64,
) -> StoreResult<(Vec<StoredExport>, i64)> {
    let total = c
        .fetch_one(
            "SELECT count(*) AS n FROM audit_exports WHERE tenant_id = $1",
            &[tenant.into()],
        )
        .await?
        .int("n")?;
    let sql = format!(
        "SELECT {COLS} FROM audit_exports WHERE tenant_id = $1 ORDER BY requested_at DESC, id DESC LIMIT $2 OFFSET $3"
    );
    let rows = c
        .fetch_all(&sql, &[tenant.into(), limit.into(), offset.into()])
        .await?;
    Ok((
        rows.iter().map(from_row).collect::<StoreResult<_>>()?,
        total,
    ))
}

/// Claims the oldest export that is queued, or running under a lapsed lease (its worker died),
/// until `lease_until`. Call inside a transaction: PostgreSQL skips rows other workers hold,
/// SQLite's write transaction serialises claimers. Spans tenants: it serves the worker only.
pub async fn claim_next(
    c: &mut dyn Conn,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
) -> StoreResult<Option<StoredExport>> {
    let lock = c.dialect().row_lock(" FOR UPDATE SKIP LOCKED");
    let pick = format!(
        "SELECT tenant_id, id FROM audit_exports \
         WHERE status IN ('queued', 'running') AND (status = 'queued' OR lease_until < $1) \
         ORDER BY requested_at, id LIMIT 1{lock}"
    );
    let Some(r) = c.fetch_optional(&pick, &[now.into()]).await? else {
        return Ok(None);
    };
    let (tenant, id) = (TenantId(r.uuid("tenant_id")?), r.uuid("id")?);
    let sql = format!(
        "UPDATE audit_exports SET status = 'running', attempts = attempts + 1, lease_until = $3, \
         started_at = COALESCE(started_at, $4) WHERE tenant_id = $1 AND id = $2 RETURNING {COLS}"
    );
    let r = c
        .fetch_one(
            &sql,
            &[tenant.into(), id.into(), lease_until.into(), now.into()],
        )
        .await?;
    from_row(&r).map(Some)
}

/// What a finished export produced.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportFile {
    /// Events in the file.
    pub event_count: i64,
    /// First and last seq, if any event.
    pub seq_range: Option<(i64, i64)>,
    /// File size.
    pub size_bytes: i64,
    /// Hex SHA-256.
    pub sha256: String,
    /// Base64 Ed25519 signature.
    pub signature: String,
    /// Signing key id.
    pub key_id: String,
}

/// Marks a claimed export ready. Returns false when the claim `attempt` no longer holds (the
/// lease lapsed and another worker took it over), in which case nothing is written.
pub async fn mark_ready(
    c: &mut dyn Conn,
    e: &StoredExport,
    now: OffsetDateTime,
    f: &ExportFile,
) -> StoreResult<bool> {
    let n = c
        .execute(
            "UPDATE audit_exports SET status = 'ready', finished_at = $4, lease_until = NULL, event_count = $5, \
             first_seq = $6, last_seq = $7, size_bytes = $8, sha256 = $9, signature = $10, key_id = $11, error = NULL \
             WHERE tenant_id = $1 AND id = $2 AND status = 'running' AND attempts = $3",
            &[
                e.tenant_id.into(),
                e.id.into(),
                e.attempts.into(),
                now.into(),
                f.event_count.into(),
                f.seq_range.map(|r| r.0).into(),
                f.seq_range.map(|r| r.1).into(),
                f.size_bytes.into(),
                f.sha256.as_str().into(),
                f.signature.as_str().into(),
                f.key_id.as_str().into(),
            ],
        )
        .await?;
    Ok(n == 1)
}

/// Records a failed attempt: back to `queued` for another try, or `failed` for good when
/// `give_up`. Same claim check as [`mark_ready`].
pub async fn mark_failed(
    c: &mut dyn Conn,
    e: &StoredExport,
    now: OffsetDateTime,
    error: &str,
    give_up: bool,
) -> StoreResult<bool> {
    let (status, finished): (&str, Val) = if give_up {
        ("failed", now.into())
    } else {
        ("queued", Val::Time(None))
    };
    let n = c
        .execute(
            "UPDATE audit_exports SET status = $4, finished_at = $5, lease_until = NULL, error = $6 \
             WHERE tenant_id = $1 AND id = $2 AND status = 'running' AND attempts = $3",
            &[
                e.tenant_id.into(),
                e.id.into(),
                e.attempts.into(),
                status.into(),
                finished,
                error.into(),
            ],
        )
        .await?;
    Ok(n == 1)
}
