//! The shapes cases and their record take on the wire (API.md "Case", docs/cases.md), shared
//! by REST, GraphQL and the outbox so that all three say the same thing.
use casegate_domain::clock::{serialize_opt_wire_time, serialize_wire_time};
use casegate_domain::ids::CaseId;
use casegate_store::case_record::{Activity, Attachment, Comment, HistoryEntry, Party, Relation};
use casegate_store::cases::StoredCase;
use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// A case (alerts included).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct CaseView {
    /// Case id.
    #[schema(value_type = String, format = Uuid)]
    pub id: CaseId,
    /// `CASE-2026-000042`.
    pub reference: String,
    /// Case type key.
    pub case_type: String,
    /// Title.
    pub title: String,
    /// Status key.
    pub status: String,
    /// `low|medium|high|critical`.
    pub priority: String,
    /// Risk score 0–100.
    pub score: Option<f64>,
    /// Assignee email.
    pub assigned_to: Option<String>,
    /// Assignee id.
    pub assigned_to_id: Option<Uuid>,
    /// Business unit.
    pub business_unit: Option<String>,
    /// Custom field values.
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    /// Reasons.
    pub reasons: Vec<String>,
    /// Notes.
    pub notes: Option<String>,
    /// Linked alerts (for a case).
    #[schema(value_type = Vec<String>)]
    pub alert_ids: Vec<CaseId>,
    /// The case an alert was escalated into.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub case_id: Option<CaseId>,
    /// Screening reference.
    pub screening_id: Option<String>,
    /// Subject reference.
    pub subject_id: Option<String>,
    /// Originating payload.
    #[schema(value_type = Option<Object>)]
    pub source: Option<Value>,
    /// `TRUE_POSITIVE|FALSE_POSITIVE|ESCALATED|NO_ACTION_REQUIRED`.
    pub disposition: Option<String>,
    /// Why.
    pub disposition_reason: Option<String>,
    /// Whether escalated.
    pub escalated: bool,
    /// Escalation target email.
    pub escalated_to: Option<String>,
    /// Escalation target id.
    pub escalated_to_id: Option<Uuid>,
    /// When the activity was detected.
    #[serde(serialize_with = "serialize_opt_wire_time")]
    pub detected_at: Option<OffsetDateTime>,
    /// Creator as audited.
    pub created_by: String,
    /// Creator id.
    pub created_by_id: Option<Uuid>,
    /// Created.
    #[serde(serialize_with = "serialize_wire_time")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(serialize_with = "serialize_wire_time")]
    pub updated_at: OffsetDateTime,
    /// Optimistic-concurrency version (the `ETag`).
    pub version: i64,
}

impl From<StoredCase> for CaseView {
    fn from(k: StoredCase) -> Self {
        Self {
            id: k.id,
            reference: k.reference,
            case_type: k.case_type,
            title: k.title,
            status: k.status,
            priority: k.priority,
            score: k.score,
            assigned_to: k.assigned_to_email,
            assigned_to_id: k.assigned_to,
            business_unit: k.business_unit,
            fields: k.fields,
            reasons: k.reasons,
            notes: k.notes,
            alert_ids: k.alert_ids,
            case_id: k.parent_case_id,
            screening_id: k.screening_id,
            subject_id: k.subject_id,
            source: k.source,
            disposition: k.disposition,
            disposition_reason: k.disposition_reason,
            escalated: k.escalated,
            escalated_to: k.escalated_to_email,
            escalated_to_id: k.escalated_to,
            detected_at: k.detected_at,
            created_by: k.created_by_label,
            created_by_id: k.created_by,
            created_at: k.created_at,
            updated_at: k.updated_at,
            version: k.version,
        }
    }
}

/// A comment.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct CommentView {
    /// Comment id.
    pub id: Uuid,
    /// Case.
    #[schema(value_type = String, format = Uuid)]
    pub case_id: CaseId,
    /// Author as audited (email).
    pub author: String,
    /// Author id.
    pub author_id: Option<Uuid>,
    /// Text.
    pub content: String,
    /// Written.
    #[serde(serialize_with = "serialize_wire_time")]
    pub created_at: OffsetDateTime,
}

impl From<Comment> for CommentView {
    fn from(m: Comment) -> Self {
        Self {
            id: m.id,
            case_id: m.case_id,
            author: m.author.label,
            author_id: m.author.id,
            content: m.content,
            created_at: m.created_at,
        }
    }
}

/// An attachment.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct AttachmentView {
    /// Attachment id.
    pub id: Uuid,
    /// Case.
    #[schema(value_type = String, format = Uuid)]
    pub case_id: CaseId,
    /// File name.
    pub name: String,
    /// Media type.
    #[serde(rename = "type")]
    pub media_type: String,
    /// External location (files kept elsewhere).
    pub url: Option<String>,
    /// Hex SHA-256.
    pub sha256: Option<String>,
    /// Bytes.
    pub size: Option<i64>,
    /// Whether casegate holds the bytes (download them from `download_url`).
    pub stored: bool,
    /// Where to download a stored file.
    pub download_url: Option<String>,
    /// Uploader (email).
    pub uploaded_by: String,
    /// Uploader id.
    pub uploaded_by_id: Option<Uuid>,
    /// Added.
    #[serde(serialize_with = "serialize_wire_time")]
    pub created_at: OffsetDateTime,
}

impl From<Attachment> for AttachmentView {
    fn from(a: Attachment) -> Self {
        Self {
            download_url: a
                .stored
                .then(|| format!("/api/v1/cases/{}/attachments/{}/download", a.case_id, a.id)),
            id: a.id,
            case_id: a.case_id,
            name: a.name,
            media_type: a.media_type,
            url: a.url,
            sha256: a.sha256,
            size: a.size,
            stored: a.stored,
            uploaded_by: a.uploaded_by.label,
            uploaded_by_id: a.uploaded_by.id,
            created_at: a.created_at,
        }
    }
}

/// An activity.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ActivityView {
    /// Activity id.
    pub id: Uuid,
    /// `escalation`, `disposition`, `override`, `reopen`, `assignment`, `comment`,
    /// `attachment`, `relation`.
    pub kind: String,
    /// Who (email).
    pub actor: String,
    /// Who (id).
    pub actor_id: Option<Uuid>,
    /// Kind-specific details.
    #[schema(value_type = Object)]
    pub data: Value,
    /// When.
    #[serde(serialize_with = "serialize_wire_time")]
    pub created_at: OffsetDateTime,
}

impl From<Activity> for ActivityView {
    fn from(a: Activity) -> Self {
        Self {
            id: a.id,
            kind: a.kind,
            actor: a.actor.label,
            actor_id: a.actor.id,
            data: a.data,
            created_at: a.created_at,
        }
    }
}

/// A status history entry (API.md "Status history entry").
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct HistoryView {
    /// Entry id.
    pub id: Uuid,
    /// Previous status (null for the creation).
    pub from: Option<String>,
    /// New status.
    pub to: String,
    /// The rule that allowed the move.
    pub rule_id: Option<String>,
    /// The approved request, if any.
    pub request_id: Option<Uuid>,
    /// Who (email).
    pub actor: String,
    /// Who (id).
    pub actor_id: Option<Uuid>,
    /// Why.
    pub reason: Option<String>,
    /// Approvals that let it happen.
    #[schema(value_type = Object)]
    pub approvals: Value,
    /// Asked for.
    #[serde(serialize_with = "serialize_wire_time")]
    pub requested_at: OffsetDateTime,
    /// Approval requested.
    #[serde(serialize_with = "serialize_opt_wire_time")]
    pub approval_requested_at: Option<OffsetDateTime>,
    /// Last approval.
    #[serde(serialize_with = "serialize_opt_wire_time")]
    pub approval_completed_at: Option<OffsetDateTime>,
    /// Applied.
    #[serde(serialize_with = "serialize_wire_time")]
    pub effective_at: OffsetDateTime,
}

impl From<HistoryEntry> for HistoryView {
    fn from(h: HistoryEntry) -> Self {
        Self {
            id: h.id,
            from: h.from,
            to: h.to,
            rule_id: h.rule_id,
            request_id: h.request_id,
            actor: h.actor.label,
            actor_id: h.actor.id,
            reason: h.reason,
            approvals: h.approvals,
            requested_at: h.requested_at,
            approval_requested_at: h.approval_requested_at,
            approval_completed_at: h.approval_completed_at,
            effective_at: h.effective_at,
        }
    }
}

/// A relation.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct RelationView {
    /// Relation id.
    pub id: Uuid,
    /// Case.
    #[schema(value_type = String, format = Uuid)]
    pub case_id: CaseId,
    /// `case|alert|party|sar`.
    pub target_type: String,
    /// Target id.
    pub target_id: Uuid,
    /// Label.
    pub relation: String,
    /// Who linked it.
    pub created_by: String,
    /// When.
    #[serde(serialize_with = "serialize_wire_time")]
    pub created_at: OffsetDateTime,
}

impl From<Relation> for RelationView {
    fn from(l: Relation) -> Self {
        Self {
            id: l.id,
            case_id: l.case_id,
            target_type: l.target_type,
            target_id: l.target_id,
            relation: l.relation,
            created_by: l.created_by.label,
            created_at: l.created_at,
        }
    }
}

/// A party.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct PartyView {
    /// Party id.
    pub id: Uuid,
    /// `person|organisation|account|device|address`.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Identifiers.
    #[schema(value_type = Object)]
    pub identifiers: Value,
    /// Created.
    #[serde(serialize_with = "serialize_wire_time")]
    pub created_at: OffsetDateTime,
    /// Cases linking to it (filled by `GET /parties/{id}`).
    pub relations: Vec<RelationView>,
}

impl From<Party> for PartyView {
    fn from(p: Party) -> Self {
        Self {
            id: p.id.0,
            kind: p.kind,
            name: p.name,
            identifiers: p.identifiers,
            created_at: p.created_at,
            relations: Vec::new(),
        }
    }
}

/// A case with its record (`GET /cases/{id}`).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct CaseDetail {
    /// The case.
    #[serde(flatten)]
    pub case: CaseView,
    /// Comments in order.
    pub comments: Vec<CommentView>,
    /// Attachments in order.
    pub attachments: Vec<AttachmentView>,
    /// Status history, oldest first.
    pub status_history: Vec<HistoryView>,
    /// Activities in order.
    pub activities: Vec<ActivityView>,
    /// Outgoing relations.
    pub relations: Vec<RelationView>,
    /// The transition request waiting for approval, if any.
    pub pending_request: Option<crate::approvals::RequestView>,
    /// Every task of the case, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub tasks: Vec<crate::tasks::TaskView>,
    /// The SAR filed from this case (none yet).
    #[schema(value_type = Option<Object>)]
    pub sar_filing: Option<Value>,
}

/// A decision override (`POST /cases/{id}/override`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OverrideView {
    /// Override id (the activity id).
    pub id: Uuid,
    /// Case.
    pub case_id: CaseId,
    /// The decision replaced.
    pub original_decision: String,
    /// The decision now in force.
    pub new_decision: String,
    /// Why.
    pub reason: String,
    /// Approver email.
    pub approved_by: String,
    /// Approver id.
    pub approved_by_id: Uuid,
    /// Who overrode (email).
    pub overridden_by: String,
    /// Who overrode (id).
    pub overridden_by_id: Option<Uuid>,
    /// When.
    #[serde(serialize_with = "serialize_wire_time")]
    pub created_at: OffsetDateTime,
}
