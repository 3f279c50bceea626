//! Request bodies that the services read by hand, described for OpenAPI.
//!
//! Most commands take their JSON body as a map and read it key by key, in the service
//! (`casegate_service::cases::create`, `cases::update`, `sars::update`, `webhooks::create`…) or
//! in the handler (`cases::only`, `opt_str`), so that every 422 names the field at fault and a
//! key the command does not take is refused as `unknown field`. A map tells `/openapi.json`
//! nothing, so each struct here describes one such body: its keys, their JSON types, which are
//! required, the allowed values, limits and defaults, all read off the parsing code. They are
//! schemas only: the handlers keep taking the map and nothing deserializes into these structs.
//! `Deserialize` is derived all the same so that the field types are real Rust types the
//! compiler checks, and `deny_unknown_fields` says what the services do with other keys
//! (`additionalProperties: false`).
//!
//! `Option` marks a key that may be left out. For most of them the services take `null` as if
//! the key were absent (or, in a `PATCH`, as clearing the attribute); where they refuse `null`
//! the schema says so (`nullable = false`).
//!
//! A test keeps these structs in step with the services: `request_bodies_are_documented` in
//! `crates/server/tests/api/ops.rs` checks that every JSON request body in `/openapi.json` is a
//! component with properties, that the enums here list the services' own vocabularies, and
//! sends each documented property to its endpoint, which must not refuse it as an unknown field.
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Vocabularies.

/// How urgent a case is.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CasePriority {
    /// Routine.
    Low,
    /// The default.
    Medium,
    /// Work first.
    High,
    /// Drop everything.
    Critical,
}

/// The decision on a case (`casegate_domain::cases::Disposition`).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CaseDisposition {
    /// The activity is what the alert suspected.
    TruePositive,
    /// The alert was wrong.
    FalsePositive,
    /// Handed on for a higher decision.
    Escalated,
    /// Nothing to do.
    NoActionRequired,
}

/// The decision on an alert.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertDisposition {
    /// The alert is right; with `escalate_to_case` it opens (or joins) a case.
    TruePositive,
    /// The alert is wrong.
    FalsePositive,
}

/// What a relation points at.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RelationTarget {
    /// Another case.
    Case,
    /// An alert.
    Alert,
    /// A party (`POST /parties`).
    Party,
}

/// What a party is (`casegate_service::cases::PARTY_KINDS`).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PartyKind {
    /// A natural person.
    Person,
    /// A company, trust or other organisation.
    Organisation,
    /// An account.
    Account,
    /// A device.
    Device,
    /// A postal address.
    Address,
}

/// A built-in role (`casegate_domain::rbac::BUILTIN_ROLES`).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BuiltinRole {
    /// Works cases.
    Analyst,
    /// An analyst who also approves and overrides.
    SeniorAnalyst,
    /// A senior analyst who also reads the audit trail.
    Supervisor,
    /// Reviews SARs and approves.
    ComplianceOfficer,
    /// Approves; reads cases, SARs and the audit trail.
    LegalCounsel,
    /// Money-laundering reporting officer.
    Mlro,
    /// Reads cases, SARs and the audit trail.
    Auditor,
    /// Everything.
    Admin,
}

/// A webhook event type (`casegate_domain::events::EVENT_TYPES`), or `*` for all of them.
#[derive(Deserialize, ToSchema)]
pub enum WebhookEvent {
    /// Every event type, including those added later.
    #[serde(rename = "*")]
    All,
    /// A case was opened.
    #[serde(rename = "case.created")]
    CaseCreated,
    /// A case's attributes changed.
    #[serde(rename = "case.updated")]
    CaseUpdated,
    /// A case was assigned or unassigned.
    #[serde(rename = "case.assigned")]
    CaseAssigned,
    /// A case moved to another status.
    #[serde(rename = "case.status_changed")]
    CaseStatusChanged,
    /// A case was escalated.
    #[serde(rename = "case.escalated")]
    CaseEscalated,
    /// A case was decided (or its decision overridden).
    #[serde(rename = "case.disposed")]
    CaseDisposed,
    /// A case reached a closing status.
    #[serde(rename = "case.closed")]
    CaseClosed,
    /// A case was reopened.
    #[serde(rename = "case.reopened")]
    CaseReopened,
    /// A move awaits approval.
    #[serde(rename = "transition.requested")]
    TransitionRequested,
    /// Approvers were asked to decide.
    #[serde(rename = "approval.requested")]
    ApprovalRequested,
    /// Approvers were reminded.
    #[serde(rename = "approval.reminder")]
    ApprovalReminder,
    /// An approval tier timed out and was escalated.
    #[serde(rename = "approval.escalated")]
    ApprovalEscalated,
    /// A requested move was approved.
    #[serde(rename = "transition.approved")]
    TransitionApproved,
    /// A requested move was rejected.
    #[serde(rename = "transition.rejected")]
    TransitionRejected,
    /// A requested move expired.
    #[serde(rename = "transition.expired")]
    TransitionExpired,
    /// A task was opened.
    #[serde(rename = "task.created")]
    TaskCreated,
    /// A SAR was opened.
    #[serde(rename = "sar.created")]
    SarCreated,
    /// A SAR moved to another status.
    #[serde(rename = "sar.status_changed")]
    SarStatusChanged,
    /// A SAR was filed.
    #[serde(rename = "sar.filed")]
    SarFiled,
    /// An audit export finished (ready or failed).
    #[serde(rename = "audit.export_ready")]
    AuditExportReady,
    /// The test delivery sent when a registration is created.
    #[serde(rename = "ping")]
    Ping,
}

// ---------------------------------------------------------------------------------------------
// Cases.

/// `POST /cases` body (`casegate_service::cases::create`). `status`, `disposition`,
/// `escalated` and `escalated_to` change through their own endpoints and are refused here.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCaseBody {
    /// Case type key (`GET /case-types`); an unknown type is 422 `validation_failed`. The case
    /// starts in the type's initial status.
    #[schema(examples("AML_INV"))]
    pub case_type: String,
    /// Title, 1–500 characters once trimmed.
    #[schema(min_length = 1, max_length = 500)]
    pub title: String,
    /// Urgency [default: `medium`].
    #[schema(nullable = false)]
    pub priority: Option<CasePriority>,
    /// Risk score, 0–100; `null` leaves it unset.
    #[schema(minimum = 0, maximum = 100)]
    pub score: Option<f64>,
    /// Assignee: an active user of the organisation, by id or email. A workflow with
    /// `on_assign` moves the new case on at once (unless its first status has mandatory tasks).
    pub assigned_to: Option<String>,
    /// Business unit, at most 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub business_unit: Option<String>,
    /// The screening this case comes from, at most 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub screening_id: Option<String>,
    /// The subject's reference in another system, at most 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub subject_id: Option<String>,
    /// Alerts (ids of cases of type `ALERT`, at most 1,000) to link; each must be of this
    /// organisation and not linked to another case. Not for a case of type `ALERT`.
    #[schema(nullable = false, max_items = 1000)]
    pub alert_ids: Option<Vec<Uuid>>,
    /// Custom field values, checked against the case type's field definitions (unknown keys,
    /// wrong types and missing required fields are 422 naming `fields.<key>`).
    #[schema(value_type = Option<Object>, nullable = false)]
    pub fields: Option<Map<String, Value>>,
    /// Why the case was opened: at most 50 reasons of 1–500 characters.
    #[schema(nullable = false, max_items = 50, min_length = 1, max_length = 500)]
    pub reasons: Option<Vec<String>>,
    /// Free-text notes, at most 100,000 characters.
    #[schema(min_length = 1, max_length = 100000)]
    pub notes: Option<String>,
    /// When the activity was detected (RFC 3339); SAR deadlines count from it.
    #[schema(format = DateTime, examples("2026-03-01T15:30:00Z"))]
    pub detected_at: Option<String>,
    /// The originating payload (e.g. the transactions that raised the alert), a JSON object of
    /// at most 64 KiB. A SAR opened on the case takes its amounts and dates from it.
    #[schema(value_type = Option<Object>)]
    pub source: Option<Map<String, Value>>,
}

/// `PATCH /cases/{id}` body (`casegate_service::cases::update`): only the attributes to change.
/// A key the current status locks is 422 `field_restricted`; `assigned_to`, `status`,
/// `disposition`, `escalated` and `escalated_to` change through their own endpoints.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCaseBody {
    /// New title, 1–500 characters once trimmed.
    #[schema(nullable = false, min_length = 1, max_length = 500)]
    pub title: Option<String>,
    /// New urgency.
    #[schema(nullable = false)]
    pub priority: Option<CasePriority>,
    /// Risk score, 0–100; `null` clears it.
    #[schema(minimum = 0, maximum = 100)]
    pub score: Option<f64>,
    /// Business unit, at most 200 characters; `null` clears it.
    #[schema(min_length = 1, max_length = 200)]
    pub business_unit: Option<String>,
    /// Screening reference, at most 200 characters; `null` clears it.
    #[schema(min_length = 1, max_length = 200)]
    pub screening_id: Option<String>,
    /// Subject reference, at most 200 characters; `null` clears it.
    #[schema(min_length = 1, max_length = 200)]
    pub subject_id: Option<String>,
    /// Custom field values to merge into the stored ones; a field set to `null` is cleared.
    #[schema(value_type = Option<Object>, nullable = false)]
    pub fields: Option<Map<String, Value>>,
    /// The complete new list of reasons: at most 50, each 1–500 characters.
    #[schema(nullable = false, max_items = 50, min_length = 1, max_length = 500)]
    pub reasons: Option<Vec<String>>,
    /// Notes, at most 100,000 characters; `null` clears them.
    #[schema(min_length = 1, max_length = 100000)]
    pub notes: Option<String>,
    /// When the activity was detected (RFC 3339); `null` clears it.
    #[schema(format = DateTime)]
    pub detected_at: Option<String>,
    /// The originating payload, a JSON object of at most 64 KiB; `null` clears it.
    #[schema(value_type = Option<Object>)]
    pub source: Option<Map<String, Value>>,
    /// Compare-and-swap on the case's version (409 `version_conflict`); `If-Match` wins.
    pub expected_version: Option<i64>,
}

/// `POST /cases/{id}/assign` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignCaseBody {
    /// The new assignee (an active user of the organisation, by id or email), or `null` to
    /// unassign. The key is required, even to unassign.
    #[schema(required = true)]
    pub assigned_to: Option<String>,
    /// Compare-and-swap on the case's version (409 `version_conflict`); `If-Match` wins.
    pub expected_version: Option<i64>,
}

/// `POST /cases/{id}/transitions` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    /// The status to move to (a status key; `GET /cases/{id}/transitions` lists the moves open
    /// to the caller).
    pub to: String,
    /// Why, at most 4,000 characters; required when the rule says `require_reason` (422
    /// `reason_required`). A blank reason counts as none.
    #[schema(max_length = 4000)]
    pub reason: Option<String>,
    /// Compare-and-swap on the case's version (409 `version_conflict`); `If-Match` wins.
    pub expected_version: Option<i64>,
}

/// `POST /cases/{id}/status` body: `POST /cases/{id}/transitions` with `status` for `to`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetStatusBody {
    /// The status to move to (a status key).
    pub status: String,
    /// Why, at most 4,000 characters; required when the rule says `require_reason`. A blank
    /// reason counts as none.
    #[schema(max_length = 4000)]
    pub reason: Option<String>,
    /// Compare-and-swap on the case's version (409 `version_conflict`); `If-Match` wins.
    pub expected_version: Option<i64>,
}

/// `POST /cases/{id}/comments` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    /// The comment, 1–20,000 characters once trimmed.
    #[schema(min_length = 1, max_length = 20000)]
    pub content: String,
}

/// `POST /cases/{id}/escalate` body. A case in a terminal status is 422 `invalid_transition`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalateBody {
    /// Why, 1–4,000 characters once trimmed.
    #[schema(min_length = 1, max_length = 4000)]
    pub reason: String,
    /// Whom to escalate to: an active user of the organisation, by id or email.
    pub escalated_to: String,
    /// Compare-and-swap on the case's version (409 `version_conflict`); `If-Match` wins.
    pub expected_version: Option<i64>,
}

/// `POST /cases/{id}/disposition` body. A case already decided is 409 `already_decided`: its
/// decision changes through `POST /cases/{id}/override`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DispositionBody {
    /// The decision.
    pub disposition: CaseDisposition,
    /// Why, 1–4,000 characters once trimmed.
    #[schema(min_length = 1, max_length = 4000)]
    pub reason: String,
    /// Compare-and-swap on the case's version (409 `version_conflict`); `If-Match` wins.
    pub expected_version: Option<i64>,
}

/// `POST /cases/{id}/override` body: a decision changed with a second person's approval.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideBody {
    /// The decision being replaced; must be the case's current one.
    pub original_decision: CaseDisposition,
    /// The new decision; must differ from `original_decision`.
    pub new_decision: CaseDisposition,
    /// Why, 1–4,000 characters once trimmed.
    #[schema(min_length = 1, max_length = 4000)]
    pub reason: String,
    /// The approver (an active user, by id or email): someone other than the caller, holding
    /// `approval.decide` (403 `self_approval_forbidden`, `not_an_eligible_approver`).
    pub approved_by: String,
    /// Compare-and-swap on the case's version (409 `version_conflict`); `If-Match` wins.
    pub expected_version: Option<i64>,
}

/// `POST /cases/{id}/reopen` body: from a terminal status to the workflow's `reopen_to`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReopenBody {
    /// Why, 1–4,000 characters once trimmed.
    #[schema(min_length = 1, max_length = 4000)]
    pub reason: String,
    /// Compare-and-swap on the case's version (409 `version_conflict`); `If-Match` wins.
    pub expected_version: Option<i64>,
}

/// `POST /cases/{id}/relations` body: either `target_type` and `target_id` (an existing case,
/// alert or party), or `party` (a new party, created and linked).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RelationBody {
    /// What `target_id` names; required unless `party` is given (then it may only be `party`).
    pub target_type: Option<RelationTarget>,
    /// The id of the case, alert or party to link; required unless `party` is given.
    pub target_id: Option<Uuid>,
    /// A new party to create and link instead.
    pub party: Option<PartyBody>,
    /// What the link means (`subject`, `counterparty`…), 1–64 characters.
    #[schema(min_length = 1, max_length = 64, default = "related")]
    pub relation: Option<String>,
}

/// `POST /parties` body, and the `party` of `POST /cases/{id}/relations`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartyBody {
    /// What the party is.
    pub kind: PartyKind,
    /// Name, 1–500 characters once trimmed.
    #[schema(min_length = 1, max_length = 500)]
    pub name: String,
    /// Identifiers by scheme (`{"iban": "…", "lei": "…"}`): at most 50, each value a string of
    /// at most 200 characters. Not `null`; leave it out for none.
    #[schema(nullable = false)]
    pub identifiers: Option<BTreeMap<String, String>>,
}

/// `POST /alerts/{id}/disposition` body: decides and closes an alert.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertDispositionBody {
    /// The decision.
    pub disposition: AlertDisposition,
    /// Why, 1–4,000 characters once trimmed (closing the alert needs one).
    #[schema(min_length = 1, max_length = 4000)]
    pub reason: String,
    /// Link the alert to a case: `case_id`'s, or a new one of `case_type`. Only for
    /// `true_positive`.
    #[schema(default = false)]
    pub escalate_to_case: Option<bool>,
    /// With `escalate_to_case`: an existing case (id or reference) to join instead of opening
    /// one (`case.edit`).
    pub case_id: Option<String>,
    /// With `escalate_to_case` and no `case_id`: the type of the case to open (`case.create`).
    /// A type with required custom fields cannot be opened this way: create the case first
    /// and pass `case_id`.
    #[schema(default = "AML_INV")]
    pub case_type: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Approvals.

/// `POST /transition-requests/{id}/approve` body; the body may be left out.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    /// A comment for the record, at most 4,000 characters; blank counts as none.
    #[schema(max_length = 4000)]
    pub comment: Option<String>,
}

/// `POST /transition-requests/{id}/reject` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    /// Why, 1–4,000 characters once trimmed: a rejection needs a comment.
    #[schema(min_length = 1, max_length = 4000)]
    pub comment: String,
}

// ---------------------------------------------------------------------------------------------
// Tasks.

/// `POST /tasks` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTaskBody {
    /// The case (id or reference); not in a terminal status.
    pub case_id: String,
    /// What to do, 1–500 characters once trimmed.
    #[schema(min_length = 1, max_length = 500)]
    pub title: String,
    /// More detail, 1–4,000 characters once trimmed.
    #[schema(min_length = 1, max_length = 4000)]
    pub description: Option<String>,
    /// Assignee: an active user of the organisation, by id or email.
    pub assigned_to: Option<String>,
    /// A role whose holders may complete it (when no one is assigned).
    pub assignee_role: Option<BuiltinRole>,
    /// When it is due (RFC 3339).
    #[schema(format = DateTime)]
    pub due_at: Option<String>,
    /// Whether it blocks the case from leaving its current status until done.
    #[schema(default = false)]
    pub mandatory: Option<bool>,
}

/// `POST /tasks/{id}/complete` body; the body may be left out.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteTaskBody {
    /// A note for the record, at most 4,000 characters; blank counts as none.
    #[schema(max_length = 4000)]
    pub note: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// SARs.

/// The kind of SAR filing.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FilingType {
    /// The first report of the activity.
    Initial,
    /// Corrects a report already filed (needs `prior_report_id`).
    CorrectPrior,
    /// Activity that went on after a report was filed (needs `prior_report_id`).
    ContinuingActivity,
}

/// The statuses a SAR can be asked to move to (`filed` is 403 `status_reserved`: only a
/// confirmed submission files a report).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SarNewStatus {
    /// Send for review (`sar.edit`).
    PendingReview,
    /// Approve for filing (`sar.review`).
    Approved,
    /// Send back to the preparer (`sar.review`; needs a reason).
    Returned,
    /// Abandon the report (`sar.review`; needs a reason).
    Withdrawn,
}

/// `POST /sars` body: a draft report on a case, its content pre-filled from the case.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSarBody {
    /// The case the report is about (id or reference); not a SAR work item.
    pub case_id: String,
    /// The kind of filing.
    pub filing_type: FilingType,
    /// `fincen`, `goaml`, `ncis` or another FIU's code.
    #[schema(pattern = "^[a-z0-9_-]{2,32}$", examples("fincen"))]
    pub jurisdiction: String,
    /// The prior report's id, 1–64 characters: required for `correct_prior` and
    /// `continuing_activity`, refused for `initial`.
    #[schema(min_length = 1, max_length = 64)]
    pub prior_report_id: Option<String>,
    /// When the prior report was filed (`YYYY-MM-DD`, not in the future): needed for
    /// `continuing_activity` when the prior report was not filed through casegate.
    #[schema(format = Date, examples("2026-01-15"))]
    pub prior_filed_on: Option<String>,
    /// Whether a suspect was identified at detection (`false` gives the 60-day deadline).
    #[schema(default = true)]
    pub suspect_identified: Option<bool>,
    /// Send the report for review at once; when that move is refused the report stays a draft
    /// and the answer says why in `submit_for_review_error`.
    #[schema(default = false)]
    pub submit_for_review: Option<bool>,
}

/// `PATCH /sars/{id}` body: the parts of the content to replace, each replaced whole; only in
/// `draft` or `returned` (422 `sar_locked`). Conditional with `If-Match` or `expected_version`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSarBody {
    /// The subjects, at most 999.
    #[schema(nullable = false, max_items = 999)]
    pub subjects: Option<Vec<SarSubject>>,
    /// Whether a suspect was identified at detection; changing it moves the deadline (30 or
    /// 60 days).
    #[schema(nullable = false)]
    pub suspect_identified: Option<bool>,
    /// When, how much and what kind of activity.
    #[schema(nullable = false)]
    pub activity: Option<SarActivity>,
    /// The narrative (FinCEN Part V), at most 17,000 characters.
    #[schema(nullable = false, max_length = 17000)]
    pub narrative: Option<String>,
    /// Apply only if the report is still at this version (as `If-Match`; the header wins).
    pub expected_version: Option<i64>,
}

/// Whether a SAR subject is a person or an organisation.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SarSubjectKind {
    /// A natural person.
    Individual,
    /// A company, trust or other organisation.
    Entity,
}

/// A person or organisation a SAR is about. Text fields take at most 150 characters.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SarSubject {
    /// Individual or entity.
    pub kind: SarSubjectKind,
    /// Given name (individuals).
    #[schema(max_length = 150)]
    pub first_name: Option<String>,
    /// Family name (individuals).
    #[schema(max_length = 150)]
    pub last_name: Option<String>,
    /// Legal name (entities).
    #[schema(max_length = 150)]
    pub entity_name: Option<String>,
    /// Date of birth (individuals), `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub date_of_birth: Option<String>,
    /// Taxpayer identification number (SSN/ITIN or EIN).
    #[schema(max_length = 150)]
    pub tin: Option<String>,
    /// Address.
    pub address: Option<PostalAddress>,
    /// Account numbers at the filing institution involved in the activity.
    #[serde(default)]
    #[schema(max_length = 150)]
    pub accounts: Vec<String>,
}

/// A postal address; each line at most 150 characters.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostalAddress {
    /// Street line.
    #[schema(max_length = 150)]
    pub line1: Option<String>,
    /// City.
    #[schema(max_length = 150)]
    pub city: Option<String>,
    /// State, province or emirate (US: the two-letter code).
    #[schema(max_length = 150)]
    pub state: Option<String>,
    /// Postal code (US: ZIP, 5 or 9 digits).
    #[schema(max_length = 150)]
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    #[schema(max_length = 150, examples("US"))]
    pub country: Option<String>,
}

/// What happened, when, and how much.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SarActivity {
    /// First day of the suspicious activity, `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub from_date: Option<String>,
    /// Last day of the suspicious activity, `YYYY-MM-DD`; not before `from_date`.
    #[schema(format = Date)]
    pub to_date: Option<String>,
    /// Total amount involved.
    pub total_amount: Option<SarAmount>,
    /// Categories of the activity.
    #[serde(default)]
    pub classifications: Vec<SarClassification>,
}

/// A non-negative amount with at most two decimals: a JSON number (`9500`) or a decimal string
/// (`"9500.00"`), kept exact.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SarAmount {
    /// A JSON number.
    Number(f64),
    /// A decimal string.
    Text(String),
}

/// A suspicious-activity category by the regulator's codes (FinCEN:
/// `SuspiciousActivityTypeID` / `SuspiciousActivitySubtypeID`, e.g. 106 / 1999).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SarClassification {
    /// Category code.
    pub type_id: u32,
    /// Subcategory code.
    pub subtype_id: u32,
}

/// `POST /sars/{id}/status` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SarStatusBody {
    /// The status to move to.
    pub new_status: SarNewStatus,
    /// Why, at most 4,000 characters; required for `returned` and `withdrawn` (422
    /// `reason_required`).
    #[schema(max_length = 4000)]
    pub reason: Option<String>,
    /// With `pending_review` only: the reviewer (user id or email, active, holding
    /// `sar.review`), to whom the report's work item is assigned.
    pub reviewer_id: Option<String>,
}

/// `PUT /settings/filing-profile` body: the whole profile (keys left out are emptied).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilingProfileBody {
    /// The filing institution (FinCEN party 30; goAML reporting entity).
    #[serde(default)]
    pub filer: FilingParty,
    /// The transmitter (FinCEN party 35; its contact name is party 37).
    #[serde(default)]
    pub transmitter: FilingParty,
    /// FinCEN Transmitter Control Code (8 characters, `P…` in production), at most 64.
    #[schema(min_length = 1, max_length = 64)]
    pub transmitter_control_code: Option<String>,
    /// The contact office for reports (FinCEN party 8; goAML reporting person).
    #[serde(default)]
    pub contact_office: FilingParty,
    /// FinCEN: the filer's primary federal regulator code (`PrimaryRegulatorTypeCode`, e.g. 4
    /// OCC, 7 IRS, 9 CFTC, 99 not applicable).
    #[schema(min_length = 1, max_length = 64)]
    pub primary_regulator_code: Option<String>,
    /// FinCEN: the filer's institution type (`OrganizationTypeID`, e.g. 2 depository
    /// institution).
    #[schema(min_length = 1, max_length = 64)]
    pub institution_type_code: Option<String>,
    /// goAML: the reporting entity id the FIU assigned.
    #[schema(min_length = 1, max_length = 64)]
    pub goaml_rentity_id: Option<String>,
    /// goAML: the reporting entity branch.
    #[schema(min_length = 1, max_length = 64)]
    pub goaml_rentity_branch: Option<String>,
    /// goAML: the local currency (ISO 4217).
    #[schema(min_length = 1, max_length = 64, examples("AED"))]
    pub goaml_currency: Option<String>,
    /// goAML: the report code, `STR` (default) or `SAR` (FIUs that file activity without
    /// transactions as SAR, such as the UAE's).
    #[schema(min_length = 1, max_length = 64)]
    pub goaml_report_code: Option<String>,
}

/// A party of the filing profile; each text 1–150 characters once trimmed.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilingParty {
    /// Legal name.
    #[schema(min_length = 1, max_length = 150)]
    pub name: Option<String>,
    /// TIN (EIN), 9 digits for FinCEN.
    #[schema(min_length = 1, max_length = 150)]
    pub tin: Option<String>,
    /// Address (each line given must not be blank).
    #[serde(default)]
    pub address: PostalAddress,
    /// Telephone, digits only.
    #[schema(min_length = 1, max_length = 150)]
    pub phone: Option<String>,
    /// A contact person's name (transmitter contact, contact office).
    #[schema(min_length = 1, max_length = 150)]
    pub contact_name: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Webhooks.

/// `POST /webhooks` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookBody {
    /// The receiver, at most 2,048 characters: `https` (plain `http` only to a loopback
    /// address when the server runs with `--allow-insecure-webhooks`), never a private,
    /// link-local or metadata address.
    #[schema(max_length = 2048, examples("https://hooks.example.com/casegate"))]
    pub url: String,
    /// The event types to deliver, or `["*"]` for all; not empty.
    #[schema(nullable = false, min_items = 1, default = json!(["*"]))]
    pub events: Option<Vec<WebhookEvent>>,
    /// A label, at most 500 characters; blank counts as none.
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// Whether deliveries go out.
    #[schema(nullable = false, default = true)]
    pub active: Option<bool>,
}

/// `PATCH /webhooks/{id}` body: only the keys to change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookBody {
    /// The new receiver (same rules as on creation); leave it out to keep the current one.
    #[schema(nullable = false, max_length = 2048)]
    pub url: Option<String>,
    /// The new event types, or `["*"]` for all; not empty.
    #[schema(nullable = false, min_items = 1)]
    pub events: Option<Vec<WebhookEvent>>,
    /// The new label, at most 500 characters; `null` or blank clears it.
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// Turn deliveries off or on; turning a registration back on after a 410 clears its
    /// `disabled_reason` and closes its circuit. Leave it out to keep the current state.
    #[schema(nullable = false)]
    pub active: Option<bool>,
}

/// `POST /webhooks/{id}/rotate-secret` body; the body may be left out.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretBody {
    /// Hours the previous secret keeps signing beside the new one, 0–168.
    #[schema(minimum = 0, maximum = 168, default = 24)]
    pub overlap_hours: Option<i64>,
}
