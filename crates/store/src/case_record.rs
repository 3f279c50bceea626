//! The investigation record of a case: comments, attachments, activities, status history and
//! relations (append-only: the database refuses UPDATE and DELETE), and the parties relations
//! point at. Entries of one case are ordered by `seq`, handed out under the case's row lock.
use crate::{Conn, Dialect, Row, StoreResult, Val};
use casegate_domain::ids::{CaseId, PartyId, TenantId};
use serde_json::Value as Json;
use time::OffsetDateTime;
use uuid::Uuid;

/// Who made an entry: user id (absent for the system) and label as audited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct By {
    /// User id.
    pub id: Option<Uuid>,
    /// Email, `jwt:<sub>` or `system`.
    pub label: String,
}

impl By {
    fn read(r: &Row, id: &str, label: &str) -> StoreResult<Self> {
        Ok(Self {
            id: r.opt_uuid(id)?,
            label: r.text(label)?,
        })
    }
}

/// A comment.
#[derive(Clone, Debug, PartialEq)]
pub struct Comment {
    /// Comment id.
    pub id: Uuid,
    /// Case.
    pub case_id: CaseId,
    /// Position in the case's record.
    pub seq: i64,
    /// Author.
    pub author: By,
    /// Text.
    pub content: String,
    /// Written.
    pub created_at: OffsetDateTime,
}

/// An attachment: a stored blob or an external URL.
#[derive(Clone, Debug, PartialEq)]
pub struct Attachment {
    /// Attachment id.
    pub id: Uuid,
    /// Case.
    pub case_id: CaseId,
    /// Position in the case's record.
    pub seq: i64,
    /// File name.
    pub name: String,
    /// Media type.
    pub media_type: String,
    /// External location, for files kept elsewhere.
    pub url: Option<String>,
    /// Hex SHA-256 (the blob name of a stored file).
    pub sha256: Option<String>,
    /// Bytes.
    pub size: Option<i64>,
    /// Whether the bytes are in the blob store.
    pub stored: bool,
    /// Uploader.
    pub uploaded_by: By,
    /// Added.
    pub created_at: OffsetDateTime,
}

/// An activity: escalation, disposition, override, reopen, assignment…
#[derive(Clone, Debug, PartialEq)]
pub struct Activity {
    /// Activity id.
    pub id: Uuid,
    /// Case.
    pub case_id: CaseId,
    /// Position in the case's record.
    pub seq: i64,
    /// `escalation`, `disposition`, …
    pub kind: String,
    /// Who.
    pub actor: By,
    /// What (kind-specific).
    pub data: Json,
    /// When.
    pub created_at: OffsetDateTime,
}

/// One applied status change (the first entry of a case is its creation, `from` none).
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryEntry {
    /// Entry id.
    pub id: Uuid,
    /// Case.
    pub case_id: CaseId,
    /// Position in the case's record.
    pub seq: i64,
    /// Previous status.
    pub from: Option<String>,
    /// New status.
    pub to: String,
    /// The rule that allowed it (workflow engine).
    pub rule_id: Option<String>,
    /// The approved transition request, if the move needed approval.
    pub request_id: Option<Uuid>,
    /// Who moved it.
    pub actor: By,
    /// Why.
    pub reason: Option<String>,
    /// `[{"approver", "tier", "decision", "decided_at", "comment"}]`.
    pub approvals: Json,
    /// When it was asked for.
    pub requested_at: OffsetDateTime,
    /// When approval was requested.
    pub approval_requested_at: Option<OffsetDateTime>,
    /// When the last approval came in.
    pub approval_completed_at: Option<OffsetDateTime>,
    /// When the status changed.
    pub effective_at: OffsetDateTime,
}

/// A link from a case to something else.
#[derive(Clone, Debug, PartialEq)]
pub struct Relation {
    /// Relation id.
    pub id: Uuid,
    /// Case.
    pub case_id: CaseId,
    /// Position in the case's record.
    pub seq: i64,
    /// `case|alert|party|sar`.
    pub target_type: String,
    /// Target id.
    pub target_id: Uuid,
    /// Free label (`subject`, `counterparty`, `related`).
    pub relation: String,
    /// Who linked it.
    pub created_by: By,
    /// When.
    pub created_at: OffsetDateTime,
}

/// A party.
#[derive(Clone, Debug, PartialEq)]
pub struct Party {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Party id.
    pub id: PartyId,
    /// `person|organisation|account|device|address`.
    pub kind: String,
    /// Name (or account number, device id, address line).
    pub name: String,
    /// Identifiers (`{"passport": "X1", "iban": "…"}`).
    pub identifiers: Json,
    /// Creator.
    pub created_by: Option<Uuid>,
    /// Created.
    pub created_at: OffsetDateTime,
}

/// Inserts a comment. SQLite also gives it its full-text key.
pub async fn add_comment(c: &mut dyn Conn, tenant: TenantId, m: &Comment) -> StoreResult<()> {
    let rid = match c.dialect() {
        Dialect::Sqlite => ", (SELECT coalesce(max(rid), 0) + 1 FROM case_comments)",
        Dialect::Postgres => "",
    };
    let rid_col = if rid.is_empty() { "" } else { ", rid" };
    c.execute(
        &format!(
            "INSERT INTO case_comments (tenant_id, id, case_id, seq, author_id, author_label, content, created_at{rid_col}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8{rid})"
        ),
        &[
            tenant.into(),
            m.id.into(),
            m.case_id.into(),
            m.seq.into(),
            m.author.id.into(),
            m.author.label.as_str().into(),
            m.content.as_str().into(),
            m.created_at.into(),
        ],
    )
    .await
    .map(drop)
}

/// A case's comments in order.
pub async fn comments(
    c: &mut dyn Conn,
    tenant: TenantId,
    case: CaseId,
) -> StoreResult<Vec<Comment>> {
    c.fetch_all(
        "SELECT id, case_id, seq, author_id, author_label, content, created_at FROM case_comments \
         WHERE tenant_id = $1 AND case_id = $2 ORDER BY seq",
        &[tenant.into(), case.into()],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(Comment {
            id: r.uuid("id")?,
            case_id: CaseId(r.uuid("case_id")?),
            seq: r.int("seq")?,
            author: By::read(r, "author_id", "author_label")?,
            content: r.text("content")?,
            created_at: r.time("created_at")?,
        })
    })
    .collect()
}

/// Inserts an attachment.
pub async fn add_attachment(c: &mut dyn Conn, tenant: TenantId, a: &Attachment) -> StoreResult<()> {
    c.execute(
        "INSERT INTO case_attachments (tenant_id, id, case_id, seq, name, media_type, url, sha256, size, stored, \
         uploaded_by, uploaded_by_label, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        &[
            tenant.into(),
            a.id.into(),
            a.case_id.into(),
            a.seq.into(),
            a.name.as_str().into(),
            a.media_type.as_str().into(),
            a.url.clone().into(),
            a.sha256.clone().into(),
            a.size.into(),
            a.stored.into(),
            a.uploaded_by.id.into(),
            a.uploaded_by.label.as_str().into(),
            a.created_at.into(),
        ],
    )
    .await
    .map(drop)
}

const ATTACHMENT_COLS: &str = "id, case_id, seq, name, media_type, url, sha256, size, stored, uploaded_by, \
    uploaded_by_label, created_at";

fn attachment(r: &Row) -> StoreResult<Attachment> {
    Ok(Attachment {
        id: r.uuid("id")?,
        case_id: CaseId(r.uuid("case_id")?),
        seq: r.int("seq")?,
        name: r.text("name")?,
        media_type: r.text("media_type")?,
        url: r.opt_text("url")?,
        sha256: r.opt_text("sha256")?,
        size: r.opt_int("size")?,
        stored: r.bool("stored")?,
        uploaded_by: By::read(r, "uploaded_by", "uploaded_by_label")?,
        created_at: r.time("created_at")?,
    })
}

/// A case's attachments in order.
pub async fn attachments(
    c: &mut dyn Conn,
    tenant: TenantId,
    case: CaseId,
) -> StoreResult<Vec<Attachment>> {
    c.fetch_all(
        &format!(
            "SELECT {ATTACHMENT_COLS} FROM case_attachments WHERE tenant_id = $1 AND case_id = $2 ORDER BY seq"
        ),
        &[tenant.into(), case.into()],
    )
    .await?
    .iter()
    .map(attachment)
    .collect()
}

/// One attachment of one case.
pub async fn attachment_of(
    c: &mut dyn Conn,
    tenant: TenantId,
    case: CaseId,
    id: Uuid,
) -> StoreResult<Option<Attachment>> {
    c.fetch_optional(
        &format!(
            "SELECT {ATTACHMENT_COLS} FROM case_attachments WHERE tenant_id = $1 AND case_id = $2 AND id = $3"
        ),
        &[tenant.into(), case.into(), id.into()],
    )
    .await?
    .as_ref()
    .map(attachment)
    .transpose()
}

/// Inserts an activity.
pub async fn add_activity(c: &mut dyn Conn, tenant: TenantId, a: &Activity) -> StoreResult<()> {
    c.execute(
        "INSERT INTO case_activities (tenant_id, id, case_id, seq, kind, actor_id, actor_label, data, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            tenant.into(),
            a.id.into(),
            a.case_id.into(),
            a.seq.into(),
            a.kind.as_str().into(),
            a.actor.id.into(),
            a.actor.label.as_str().into(),
            a.data.clone().into(),
            a.created_at.into(),
        ],
    )
    .await
    .map(drop)
}

/// A case's activities in order.
pub async fn activities(
    c: &mut dyn Conn,
    tenant: TenantId,
    case: CaseId,
) -> StoreResult<Vec<Activity>> {
    c.fetch_all(
        "SELECT id, case_id, seq, kind, actor_id, actor_label, data, created_at FROM case_activities \
         WHERE tenant_id = $1 AND case_id = $2 ORDER BY seq",
        &[tenant.into(), case.into()],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(Activity {
            id: r.uuid("id")?,
            case_id: CaseId(r.uuid("case_id")?),
            seq: r.int("seq")?,
            kind: r.text("kind")?,
            actor: By::read(r, "actor_id", "actor_label")?,
            data: r.json("data")?,
            created_at: r.time("created_at")?,
        })
    })
    .collect()
}

/// Inserts a status history entry, deferred ([`Conn::defer`]): on PostgreSQL it goes out with
/// the transaction's next statement.
pub async fn add_history(c: &mut dyn Conn, tenant: TenantId, h: &HistoryEntry) -> StoreResult<()> {
    c.defer(
        "INSERT INTO case_status_history (tenant_id, id, case_id, seq, from_status, to_status, rule_id, request_id, \
         actor_id, actor_label, reason, approvals, requested_at, approval_requested_at, approval_completed_at, effective_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        vec![
            tenant.into(),
            h.id.into(),
            h.case_id.into(),
            h.seq.into(),
            h.from.clone().into(),
            h.to.as_str().into(),
            h.rule_id.clone().into(),
            h.request_id.into(),
            h.actor.id.into(),
            h.actor.label.as_str().into(),
            h.reason.clone().into(),
            h.approvals.clone().into(),
            h.requested_at.into(),
            h.approval_requested_at.into(),
            h.approval_completed_at.into(),
            h.effective_at.into(),
        ],
        1,
    )
    .await
}

/// A case's status history, oldest first.
pub async fn history(
    c: &mut dyn Conn,
    tenant: TenantId,
    case: CaseId,
) -> StoreResult<Vec<HistoryEntry>> {
    c.fetch_all(
        "SELECT id, case_id, seq, from_status, to_status, rule_id, request_id, actor_id, actor_label, reason, \
         approvals, requested_at, approval_requested_at, approval_completed_at, effective_at \
         FROM case_status_history WHERE tenant_id = $1 AND case_id = $2 ORDER BY seq",
        &[tenant.into(), case.into()],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(HistoryEntry {
            id: r.uuid("id")?,
            case_id: CaseId(r.uuid("case_id")?),
            seq: r.int("seq")?,
            from: r.opt_text("from_status")?,
            to: r.text("to_status")?,
            rule_id: r.opt_text("rule_id")?,
            request_id: r.opt_uuid("request_id")?,
            actor: By::read(r, "actor_id", "actor_label")?,
            reason: r.opt_text("reason")?,
            approvals: r.json("approvals")?,
            requested_at: r.time("requested_at")?,
            approval_requested_at: r.opt_time("approval_requested_at")?,
            approval_completed_at: r.opt_time("approval_completed_at")?,
            effective_at: r.time("effective_at")?,
        })
    })
    .collect()
}

/// Inserts a relation; `Conflict` if the same link already exists.
pub async fn add_relation(c: &mut dyn Conn, tenant: TenantId, l: &Relation) -> StoreResult<()> {
    c.execute(
        "INSERT INTO case_relations (tenant_id, id, case_id, seq, target_type, target_id, relation, created_by, \
         created_by_label, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            tenant.into(),
            l.id.into(),
            l.case_id.into(),
            l.seq.into(),
            l.target_type.as_str().into(),
            l.target_id.into(),
            l.relation.as_str().into(),
            l.created_by.id.into(),
            l.created_by.label.as_str().into(),
            l.created_at.into(),
        ],
    )
    .await
    .map(drop)
}

fn relation(r: &Row) -> StoreResult<Relation> {
    Ok(Relation {
        id: r.uuid("id")?,
        case_id: CaseId(r.uuid("case_id")?),
        seq: r.int("seq")?,
        target_type: r.text("target_type")?,
        target_id: r.uuid("target_id")?,
        relation: r.text("relation")?,
        created_by: By::read(r, "created_by", "created_by_label")?,
        created_at: r.time("created_at")?,
    })
}

const RELATION_COLS: &str =
    "id, case_id, seq, target_type, target_id, relation, created_by, created_by_label, created_at";

/// A case's outgoing relations in order.
pub async fn relations(
    c: &mut dyn Conn,
    tenant: TenantId,
    case: CaseId,
) -> StoreResult<Vec<Relation>> {
    c.fetch_all(
        &format!(
            "SELECT {RELATION_COLS} FROM case_relations WHERE tenant_id = $1 AND case_id = $2 ORDER BY seq"
        ),
        &[tenant.into(), case.into()],
    )
    .await?
    .iter()
    .map(relation)
    .collect()
}

/// Relations pointing at `target` (a party's cases, a case's inbound links), oldest first.
pub async fn relations_to(
    c: &mut dyn Conn,
    tenant: TenantId,
    target_type: &str,
    target: Uuid,
) -> StoreResult<Vec<Relation>> {
    c.fetch_all(
        &format!(
            "SELECT {RELATION_COLS} FROM case_relations WHERE tenant_id = $1 AND target_type = $2 AND target_id = $3 \
             ORDER BY created_at, id"
        ),
        &[tenant.into(), target_type.into(), target.into()],
    )
    .await?
    .iter()
    .map(relation)
    .collect()
}

/// Inserts a party.
pub async fn add_party(c: &mut dyn Conn, p: &Party) -> StoreResult<()> {
    c.execute(
        "INSERT INTO parties (tenant_id, id, kind, name, identifiers, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            p.tenant_id.into(),
            p.id.into(),
            p.kind.as_str().into(),
            p.name.as_str().into(),
            p.identifiers.clone().into(),
            p.created_by.into(),
            p.created_at.into(),
        ],
    )
    .await
    .map(drop)
}

/// One party of `tenant`.
pub async fn party(c: &mut dyn Conn, tenant: TenantId, id: PartyId) -> StoreResult<Option<Party>> {
    c.fetch_optional(
        "SELECT tenant_id, id, kind, name, identifiers, created_by, created_at FROM parties \
         WHERE tenant_id = $1 AND id = $2",
        &[tenant.into(), id.into()],
    )
    .await?
    .map(|r| {
        Ok(Party {
            tenant_id: TenantId(r.uuid("tenant_id")?),
            id: PartyId(r.uuid("id")?),
            kind: r.text("kind")?,
            name: r.text("name")?,
            identifiers: r.json("identifiers")?,
            created_by: r.opt_uuid("created_by")?,
            created_at: r.time("created_at")?,
        })
    })
    .transpose()
}

/// Whether `id` is a case of `tenant` (any type), and its type.
pub async fn case_type_of(
    c: &mut dyn Conn,
    tenant: TenantId,
    id: Uuid,
) -> StoreResult<Option<String>> {
    c.fetch_optional(
        "SELECT case_type FROM cases WHERE tenant_id = $1 AND id = $2",
        &[tenant.into(), Val::Uuid(Some(id))],
    )
    .await?
    .map(|r| r.text("case_type"))
    .transpose()
}
