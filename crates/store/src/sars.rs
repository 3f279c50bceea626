//! Suspicious activity reports and the tenant's filing profile. A SAR's status lives on its
//! work item (a case of type `SAR_FILING` with the same id); reads join it in.
use crate::{Conn, Row, StoreResult, Where, page_clause};
use casegate_domain::ids::{CaseId, TenantId};
use serde_json::Value as Json;
use time::OffsetDateTime;
use uuid::Uuid;

/// One report as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredSar {
    /// Tenant.
    pub tenant_id: TenantId,
    /// The report's id (its work item's case id).
    pub id: CaseId,
    /// The case the report comes from.
    pub case_id: CaseId,
    /// `initial|correct_prior|continuing_activity`.
    pub filing_type: String,
    /// `fincen`, `goaml`, `ncis` or an FIU code.
    pub jurisdiction: String,
    /// The prior report's id (BSA ID) for corrections and continuing activity.
    pub prior_report_id: Option<String>,
    /// When the prior report was filed (`YYYY-MM-DD`; continuing activity).
    pub prior_filed_on: Option<String>,
    /// Date of initial detection (`YYYY-MM-DD`).
    pub detected_on: String,
    /// The day the report was opened (`YYYY-MM-DD`).
    pub opened_on: String,
    /// The end of the deadline day (UTC).
    pub deadline_at: OffsetDateTime,
    /// How the deadline was computed.
    pub deadline: Json,
    /// The report's content.
    pub content: Json,
    /// The last document check per format.
    pub checks: Json,
    /// The transmitter that filed it.
    pub transmitter: Option<String>,
    /// The transmitter's reference for the filing.
    pub filing_reference: Option<String>,
    /// When it was submitted.
    pub submitted_at: Option<OffsetDateTime>,
    /// Who submitted it.
    pub submitted_by: Option<Uuid>,
    /// The regulator's id for the filing (FinCEN BSA ID).
    pub bsa_id: Option<String>,
    /// The regulator's acknowledgement, as read.
    pub acknowledgement: Option<Json>,
    /// When the acknowledgement was recorded.
    pub acknowledged_at: Option<OffsetDateTime>,
    /// Deadline warnings sent so far.
    pub warnings_sent: i64,
    /// When the next deadline warning is due (none: no warning left, or filed).
    pub next_warning_at: Option<OffsetDateTime>,
    /// Creator.
    pub created_by: Option<Uuid>,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last changed.
    pub updated_at: OffsetDateTime,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// The work item's status (read only: joined from `cases`).
    pub status: String,
    /// The work item's human reference (read only).
    pub reference: String,
}

const COLS: &str = "s.tenant_id, s.id, s.case_id, s.filing_type, s.jurisdiction, s.prior_report_id, \
    s.prior_filed_on, s.detected_on, s.opened_on, s.deadline_at, s.deadline, s.content, s.checks, \
    s.transmitter, s.filing_reference, s.submitted_at, s.submitted_by, s.bsa_id, s.acknowledgement, \
    s.acknowledged_at, s.warnings_sent, s.next_warning_at, s.created_by, s.created_at, s.updated_at, s.version, \
    k.status, k.reference";

const FROM: &str = "FROM sars s JOIN cases k ON k.tenant_id = s.tenant_id AND k.id = s.id";

fn from_row(r: &Row) -> StoreResult<StoredSar> {
    Ok(StoredSar {
        tenant_id: TenantId(r.uuid("tenant_id")?),
        id: CaseId(r.uuid("id")?),
        case_id: CaseId(r.uuid("case_id")?),
        filing_type: r.text("filing_type")?,
        jurisdiction: r.text("jurisdiction")?,
        prior_report_id: r.opt_text("prior_report_id")?,
        prior_filed_on: r.opt_text("prior_filed_on")?,
        detected_on: r.text("detected_on")?,
        opened_on: r.text("opened_on")?,
        deadline_at: r.time("deadline_at")?,
        deadline: r.json("deadline")?,
        content: r.json("content")?,
        checks: r.json("checks")?,
        transmitter: r.opt_text("transmitter")?,
        filing_reference: r.opt_text("filing_reference")?,
        submitted_at: r.opt_time("submitted_at")?,
        submitted_by: r.opt_uuid("submitted_by")?,
        bsa_id: r.opt_text("bsa_id")?,
        acknowledgement: match r.json("acknowledgement")? {
            Json::Null => None,
            v => Some(v),
        },
        acknowledged_at: r.opt_time("acknowledged_at")?,
        warnings_sent: r.int("warnings_sent")?,
        next_warning_at: r.opt_time("next_warning_at")?,
        created_by: r.opt_uuid("created_by")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
        version: r.int("version")?,
        status: r.text("status")?,
        reference: r.text("reference")?,
    })
}

/// Stores a new report (its work item must exist).
pub async fn insert(c: &mut dyn Conn, s: &StoredSar) -> StoreResult<()> {
    c.execute(
        "INSERT INTO sars (tenant_id, id, case_id, filing_type, jurisdiction, prior_report_id, \
         prior_filed_on, detected_on, opened_on, deadline_at, deadline, content, checks, \
         warnings_sent, created_by, created_at, updated_at, version, next_warning_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        &[
            s.tenant_id.into(),
            s.id.into(),
            s.case_id.into(),
            s.filing_type.as_str().into(),
            s.jurisdiction.as_str().into(),
            s.prior_report_id.as_deref().into(),
            s.prior_filed_on.as_deref().into(),
            s.detected_on.as_str().into(),
            s.opened_on.as_str().into(),
            s.deadline_at.into(),
            s.deadline.clone().into(),
            s.content.clone().into(),
            s.checks.clone().into(),
            s.warnings_sent.into(),
            s.created_by.into(),
            s.created_at.into(),
            s.updated_at.into(),
            s.version.into(),
            s.next_warning_at.into(),
        ],
    )
    .await
    .map(drop)
}

/// Writes every changeable column of `s` if its version is still `expected`; answers whether it
/// did (a `false` is a lost race).
pub async fn update(c: &mut dyn Conn, s: &StoredSar, expected: i64) -> StoreResult<bool> {
    let n = c
        .execute(
            "UPDATE sars SET prior_report_id = $3, prior_filed_on = $4, deadline_at = $5, \
             deadline = $6, content = $7, checks = $8, transmitter = $9, filing_reference = $10, \
             submitted_at = $11, submitted_by = $12, bsa_id = $13, acknowledgement = $14, \
             acknowledged_at = $15, updated_at = $16, version = $17, warnings_sent = $19, next_warning_at = $20 \
             WHERE tenant_id = $1 AND id = $2 AND version = $18",
            &[
                s.tenant_id.into(),
                s.id.into(),
                s.prior_report_id.as_deref().into(),
                s.prior_filed_on.as_deref().into(),
                s.deadline_at.into(),
                s.deadline.clone().into(),
                s.content.clone().into(),
                s.checks.clone().into(),
                s.transmitter.as_deref().into(),
                s.filing_reference.as_deref().into(),
                s.submitted_at.into(),
                s.submitted_by.into(),
                s.bsa_id.as_deref().into(),
                s.acknowledgement.clone().into(),
                s.acknowledged_at.into(),
                s.updated_at.into(),
                s.version.into(),
                expected.into(),
                s.warnings_sent.into(),
                s.next_warning_at.into(),
            ],
        )
        .await?;
    Ok(n == 1)
}

/// One report of `tenant`.
pub async fn get(c: &mut dyn Conn, tenant: TenantId, id: CaseId) -> StoreResult<Option<StoredSar>> {
    let sql = format!("SELECT {COLS} {FROM} WHERE s.tenant_id = $1 AND s.id = $2");
    c.fetch_optional(&sql, &[tenant.into(), id.into()])
        .await?
        .map(|r| from_row(&r))
        .transpose()
}

/// Filters for [`list`].
#[derive(Clone, Debug, Default)]
pub struct SarFilter {
    /// Work item status.
    pub status: Option<String>,
    /// Jurisdiction.
    pub jurisdiction: Option<String>,
    /// Deadline strictly before.
    pub deadline_before: Option<OffsetDateTime>,
    /// Reports from this case.
    pub case_id: Option<CaseId>,
}

/// Reports of `tenant`, newest first.
pub async fn list(
    c: &mut dyn Conn,
    tenant: TenantId,
    f: &SarFilter,
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<StoredSar>> {
    let mut w = Where::tenant("s.tenant_id", tenant);
    if let Some(v) = &f.status {
        w.push("k.status = ?", [v.as_str().into()]);
    }
    if let Some(v) = &f.jurisdiction {
        w.push("s.jurisdiction = ?", [v.as_str().into()]);
    }
    if let Some(v) = f.deadline_before {
        w.push("s.deadline_at < ?", [v.into()]);
    }
    if let Some(v) = f.case_id {
        w.push("s.case_id = ?", [v.into()]);
    }
    let (clause, mut args) = w.finish();
    let page = page_clause(&mut args, limit, offset);
    let sql = format!(
        "SELECT {COLS} {FROM} WHERE {clause} ORDER BY s.created_at DESC, k.reference DESC {page}"
    );
    c.fetch_all(&sql, &args)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// Reports of every tenant whose next deadline warning is due at `now`, the most overdue
/// first: the deadline sweep's input (an index on `next_warning_at` keeps it to those).
pub async fn warnings_due(
    c: &mut dyn Conn,
    now: OffsetDateTime,
    limit: i64,
) -> StoreResult<Vec<StoredSar>> {
    let sql = format!(
        "SELECT {COLS} {FROM} WHERE s.next_warning_at <= $1 ORDER BY s.next_warning_at, s.id LIMIT $2"
    );
    c.fetch_all(&sql, &[now.into(), limit.into()])
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// Records that warnings up to `to` went out for report `id` and when the next is due, if
/// `from` were sent before; answers whether this call moved it (so one sweep of several
/// workers warns once).
pub async fn mark_warned(
    c: &mut dyn Conn,
    tenant: TenantId,
    id: CaseId,
    from: i64,
    to: i64,
    next: Option<OffsetDateTime>,
) -> StoreResult<bool> {
    let n = c
        .execute(
            "UPDATE sars SET warnings_sent = $4, next_warning_at = $5 \
             WHERE tenant_id = $1 AND id = $2 AND warnings_sent = $3",
            &[
                tenant.into(),
                id.into(),
                from.into(),
                to.into(),
                next.into(),
            ],
        )
        .await?;
    Ok(n == 1)
}

/// Keeps the document a report was filed with, exactly as sent.
pub async fn set_filed_document(
    c: &mut dyn Conn,
    tenant: TenantId,
    id: CaseId,
    xml: &str,
) -> StoreResult<()> {
    c.execute(
        "UPDATE sars SET filed_document = $3 WHERE tenant_id = $1 AND id = $2",
        &[tenant.into(), id.into(), xml.into()],
    )
    .await
    .map(drop)
}

/// The document report `id` was filed with, if it was filed.
pub async fn filed_document(
    c: &mut dyn Conn,
    tenant: TenantId,
    id: CaseId,
) -> StoreResult<Option<String>> {
    Ok(c.fetch_optional(
        "SELECT filed_document FROM sars WHERE tenant_id = $1 AND id = $2",
        &[tenant.into(), id.into()],
    )
    .await?
    .map(|r| r.opt_text("filed_document"))
    .transpose()?
    .flatten())
}

/// Locks report `id` for the rest of the transaction (PostgreSQL; SQLite serialises writers).
pub async fn lock(c: &mut dyn Conn, tenant: TenantId, id: CaseId) -> StoreResult<bool> {
    let sql = format!(
        "SELECT id FROM sars WHERE tenant_id = $1 AND id = $2 {}",
        c.dialect().row_lock("FOR UPDATE")
    );
    Ok(c.fetch_optional(&sql, &[tenant.into(), id.into()])
        .await?
        .is_some())
}

/// A tenant's filing profile and its version.
pub async fn profile(c: &mut dyn Conn, tenant: TenantId) -> StoreResult<Option<(Json, i64)>> {
    c.fetch_optional(
        "SELECT profile, version FROM filing_profiles WHERE tenant_id = $1",
        &[tenant.into()],
    )
    .await?
    .map(|r| Ok((r.json("profile")?, r.int("version")?)))
    .transpose()
}

/// Writes a tenant's filing profile if its version is still `expected` (0: none yet); answers
/// whether it did.
pub async fn put_profile(
    c: &mut dyn Conn,
    tenant: TenantId,
    profile: &Json,
    by: Option<Uuid>,
    now: OffsetDateTime,
    expected: i64,
) -> StoreResult<bool> {
    let n = if expected == 0 {
        c.execute(
            "INSERT INTO filing_profiles (tenant_id, profile, version, updated_by, updated_at) \
             VALUES ($1, $2, 1, $3, $4) ON CONFLICT (tenant_id) DO NOTHING",
            &[tenant.into(), profile.clone().into(), by.into(), now.into()],
        )
        .await?
    } else {
        c.execute(
            "UPDATE filing_profiles SET profile = $2, version = version + 1, updated_by = $3, \
             updated_at = $4 WHERE tenant_id = $1 AND version = $5",
            &[
                tenant.into(),
                profile.clone().into(),
                by.into(),
                now.into(),
                expected.into(),
            ],
        )
        .await?
    };
    Ok(n == 1)
}

/// When the report of `tenant` filed under `id` (a BSA ID or a transmitter reference) was
/// submitted, if casegate filed it.
pub async fn filed_at(
    c: &mut dyn Conn,
    tenant: TenantId,
    id: &str,
) -> StoreResult<Option<OffsetDateTime>> {
    // One branch per identifier, each answered from its own index (as one `OR`, SQLite read
    // every report of the tenant).
    Ok(c.fetch_optional(
        "SELECT submitted_at FROM (\
         SELECT submitted_at FROM sars WHERE tenant_id = $1 AND bsa_id = $2 \
         AND submitted_at IS NOT NULL \
         UNION ALL SELECT submitted_at FROM sars WHERE tenant_id = $1 AND filing_reference = $2 \
         AND submitted_at IS NOT NULL) filings ORDER BY submitted_at LIMIT 1",
        &[tenant.into(), id.into()],
    )
    .await?
    .map(|r| r.opt_time("submitted_at"))
    .transpose()?
    .flatten())
}
