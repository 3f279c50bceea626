//! The GraphQL object and input types. Outputs are read from the service's views (the structs
//! REST serialises), nested documents through their wire JSON, so a field means the same thing
//! in both APIs; lists that cost a query of their own carry a complexity weight.
use super::{COSTLY, caller, gql, services, wire};
use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use casegate_domain::clock::wire_time;
use casegate_service::approvals::RequestView;
use casegate_service::case_types::CaseType;
use casegate_service::case_views::{CaseDetail, CaseView, HistoryView};
use casegate_service::cases::{self, TransitionOption};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use uuid::Uuid;

fn id(u: Uuid) -> ID {
    ID(u.to_string())
}

/// A case or alert. Its record (history, allowed moves, pending request) is read on demand.
pub struct Case {
    view: CaseView,
    /// Present when the case was read with its record (`case(id:)`), saving the second reads.
    detail: Option<Arc<CaseDetail>>,
}

impl From<CaseView> for Case {
    fn from(view: CaseView) -> Self {
        Self { view, detail: None }
    }
}

impl From<CaseDetail> for Case {
    fn from(d: CaseDetail) -> Self {
        Self {
            view: d.case.clone(),
            detail: Some(Arc::new(d)),
        }
    }
}

/// A case (API.md "Case"); times are RFC 3339 strings.
#[Object]
impl Case {
    async fn id(&self) -> ID {
        id(self.view.id.0)
    }
    /// `CASE-2026-000042`.
    async fn reference(&self) -> &str {
        &self.view.reference
    }
    async fn case_type(&self) -> &str {
        &self.view.case_type
    }
    async fn title(&self) -> &str {
        &self.view.title
    }
    /// Status key of the case type's workflow.
    async fn status(&self) -> &str {
        &self.view.status
    }
    /// `low`, `medium`, `high` or `critical`.
    async fn priority(&self) -> &str {
        &self.view.priority
    }
    /// Risk score 0–100.
    async fn score(&self) -> Option<f64> {
        self.view.score
    }
    /// Assignee email.
    async fn assigned_to(&self) -> Option<&str> {
        self.view.assigned_to.as_deref()
    }
    async fn assigned_to_id(&self) -> Option<ID> {
        self.view.assigned_to_id.map(id)
    }
    async fn business_unit(&self) -> Option<&str> {
        self.view.business_unit.as_deref()
    }
    /// Custom field values by key.
    async fn fields(&self) -> Json<&Map<String, Value>> {
        Json(&self.view.fields)
    }
    async fn reasons(&self) -> &[String] {
        &self.view.reasons
    }
    async fn notes(&self) -> Option<&str> {
        self.view.notes.as_deref()
    }
    /// Alerts linked to this case.
    async fn alert_ids(&self) -> Vec<ID> {
        self.view.alert_ids.iter().map(|a| id(a.0)).collect()
    }
    /// For an alert: the case it was escalated into.
    async fn case_id(&self) -> Option<ID> {
        self.view.case_id.map(|c| id(c.0))
    }
    async fn screening_id(&self) -> Option<&str> {
        self.view.screening_id.as_deref()
    }
    async fn subject_id(&self) -> Option<&str> {
        self.view.subject_id.as_deref()
    }
    /// `TRUE_POSITIVE`, `FALSE_POSITIVE`, `ESCALATED` or `NO_ACTION_REQUIRED`.
    async fn disposition(&self) -> Option<&str> {
        self.view.disposition.as_deref()
    }
    async fn disposition_reason(&self) -> Option<&str> {
        self.view.disposition_reason.as_deref()
    }
    async fn escalated(&self) -> bool {
        self.view.escalated
    }
    /// Escalation target email.
    async fn escalated_to(&self) -> Option<&str> {
        self.view.escalated_to.as_deref()
    }
    async fn detected_at(&self) -> Option<String> {
        self.view.detected_at.map(wire_time)
    }
    async fn created_by(&self) -> &str {
        &self.view.created_by
    }
    async fn created_at(&self) -> String {
        wire_time(self.view.created_at)
    }
    async fn updated_at(&self) -> String {
        wire_time(self.view.updated_at)
    }
    /// Optimistic-concurrency version (the REST `ETag`).
    async fn version(&self) -> i64 {
        self.view.version
    }
    /// Every applied move, oldest first.
    #[graphql(complexity = "COSTLY + child_complexity")]
    async fn status_history(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<HistoryEntry>> {
        let entries = match &self.detail {
            Some(d) => d.status_history.clone(),
            None => cases::history(services(ctx), caller(ctx)?, &self.view.id.to_string())
                .await
                .map_err(gql)?,
        };
        Ok(entries.into_iter().map(HistoryEntry).collect())
    }
    /// The moves the caller may make now, and what blocks the others.
    #[graphql(complexity = "COSTLY + child_complexity")]
    async fn allowed_transitions(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<AllowedTransition>> {
        allowed(ctx, &self.view.id.to_string()).await
    }
    /// The transition request waiting for approval, if any.
    #[graphql(complexity = "COSTLY + child_complexity")]
    async fn pending_request(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<TransitionRequest>> {
        let d = match &self.detail {
            Some(d) => d.clone(),
            None => Arc::new(
                cases::get(services(ctx), caller(ctx)?, &self.view.id.to_string())
                    .await
                    .map_err(gql)?,
            ),
        };
        Ok(d.pending_request.clone().map(Into::into))
    }
}

/// `allowedTransitions` of case `case_id` (id or reference).
pub async fn allowed(
    ctx: &Context<'_>,
    case_id: &str,
) -> async_graphql::Result<Vec<AllowedTransition>> {
    let options = cases::transitions(services(ctx), caller(ctx)?, case_id)
        .await
        .map_err(gql)?;
    Ok(options.into_iter().map(AllowedTransition::from).collect())
}

/// A page of cases.
#[derive(SimpleObject)]
pub struct CasePage {
    /// The page, in the requested order.
    pub cases: Vec<Case>,
    /// Matching cases (a lower bound when `totalExact` is false).
    pub total: i64,
    /// False when more matched than the count cap and `exactTotal` was not asked for.
    pub total_exact: bool,
    pub limit: i64,
    pub offset: i64,
}

/// A move the caller could make.
#[derive(SimpleObject)]
pub struct AllowedTransition {
    /// Target status.
    pub to: String,
    /// The rule that allows it (none under the fixed lifecycle).
    pub rule_id: Option<String>,
    pub requires_approval: bool,
    pub requires_reason: bool,
    /// What stands in the way; empty when the move can be made now.
    pub blocked_by: Vec<Blocker>,
}

impl From<TransitionOption> for AllowedTransition {
    fn from(o: TransitionOption) -> Self {
        Self {
            to: o.to,
            rule_id: o.rule_id,
            requires_approval: o.requires_approval,
            requires_reason: o.requires_reason,
            blocked_by: o.blocked_by.into_iter().map(Blocker::from).collect(),
        }
    }
}

/// Why a move cannot be made now.
#[derive(SimpleObject)]
pub struct Blocker {
    /// The error code the move would get (`precondition_failed`, `request_pending`, …).
    pub code: String,
    pub message: String,
    /// The whole blocker as REST shows it (failing expressions, open tasks, request id).
    pub details: Json<Value>,
}

impl From<Value> for Blocker {
    fn from(v: Value) -> Self {
        let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        Self {
            code: text("code"),
            message: text("message"),
            details: Json(v),
        }
    }
}

/// An applied move (API.md "Status history entry").
pub struct HistoryEntry(pub HistoryView);

#[Object(name = "StatusHistoryEntry")]
impl HistoryEntry {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    /// Previous status (null for the creation).
    async fn from(&self) -> Option<&str> {
        self.0.from.as_deref()
    }
    async fn to(&self) -> &str {
        &self.0.to
    }
    async fn rule_id(&self) -> Option<&str> {
        self.0.rule_id.as_deref()
    }
    /// The approved transition request, if the move needed approval.
    async fn request_id(&self) -> Option<ID> {
        self.0.request_id.map(id)
    }
    /// Who asked for the move.
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    /// Their user id (null for the system).
    async fn actor_id(&self) -> Option<ID> {
        self.0.actor_id.map(id)
    }
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    /// The approvals that let it happen, in the order given.
    async fn approvals(&self) -> async_graphql::Result<Vec<HistoryApproval>> {
        wire(&self.0.approvals)
    }
    async fn requested_at(&self) -> String {
        wire_time(self.0.requested_at)
    }
    async fn approval_requested_at(&self) -> Option<String> {
        self.0.approval_requested_at.map(wire_time)
    }
    async fn approval_completed_at(&self) -> Option<String> {
        self.0.approval_completed_at.map(wire_time)
    }
    async fn effective_at(&self) -> String {
        wire_time(self.0.effective_at)
    }
}

/// One approval recorded with a move.
#[derive(SimpleObject, Deserialize)]
pub struct HistoryApproval {
    pub approver: Option<String>,
    pub approver_id: Option<ID>,
    /// Tier name.
    pub tier: String,
    /// `approved`.
    pub decision: String,
    pub decided_at: String,
    pub comment: Option<String>,
}

/// A move waiting for (or done with) approval (API.md "Transition request"), with the status
/// history entry of the move when the decision that returned it applied the move.
pub struct TransitionRequest(pub RequestView, pub Option<HistoryView>);

impl From<RequestView> for TransitionRequest {
    fn from(r: RequestView) -> Self {
        Self(r, None)
    }
}

#[Object]
impl TransitionRequest {
    /// The move this decision applied (the last approval needed), as recorded in the case's
    /// status history; null when the answer applied nothing.
    async fn applied_entry(&self) -> Option<HistoryEntry> {
        self.1.clone().map(HistoryEntry)
    }
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn case_id(&self) -> ID {
        id(self.0.case_id.0)
    }
    /// The case, as it is now.
    #[graphql(complexity = "COSTLY + child_complexity")]
    async fn case(&self, ctx: &Context<'_>) -> async_graphql::Result<Case> {
        let d = cases::get(services(ctx), caller(ctx)?, &self.0.case_id.to_string())
            .await
            .map_err(gql)?;
        Ok(d.into())
    }
    async fn from(&self) -> &str {
        &self.0.from
    }
    async fn to(&self) -> &str {
        &self.0.to
    }
    async fn rule_id(&self) -> Option<&str> {
        self.0.rule_id.as_deref()
    }
    async fn requested_by(&self) -> &str {
        &self.0.requested_by
    }
    async fn requested_by_id(&self) -> ID {
        id(self.0.requested_by_id)
    }
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    /// `pending`, `approved`, `applied`, `rejected`, `expired`, `cancelled` or `superseded`.
    async fn status(&self) -> &str {
        &self.0.status
    }
    /// Index of the tier taking decisions.
    async fn current_tier(&self) -> usize {
        self.0.current_tier
    }
    async fn tiers(&self) -> async_graphql::Result<Vec<ApprovalTier>> {
        wire(&self.0.tiers)
    }
    /// The requester cannot approve and one person fills at most one slot.
    async fn separation_of_duties(&self) -> bool {
        self.0.separation_of_duties
    }
    async fn requested_at(&self) -> String {
        wire_time(self.0.requested_at)
    }
    async fn approval_requested_at(&self) -> String {
        wire_time(self.0.approval_requested_at)
    }
    async fn approval_completed_at(&self) -> Option<String> {
        self.0.approval_completed_at.map(wire_time)
    }
    async fn effective_at(&self) -> Option<String> {
        self.0.effective_at.map(wire_time)
    }
    async fn version(&self) -> i64 {
        self.0.version
    }
}

/// One tier of approvers.
#[derive(SimpleObject, Deserialize)]
pub struct ApprovalTier {
    pub name: String,
    /// `all`, `any` or a number of slots, as text.
    #[serde(deserialize_with = "quorum_text")]
    pub quorum: String,
    /// Approvals this tier needs.
    pub needed: usize,
    /// ISO 8601 duration the tier has.
    pub deadline: Option<String>,
    pub deadline_at: Option<String>,
    pub started_at: Option<String>,
    /// Whether a missed deadline escalated it.
    #[serde(default)]
    pub escalated: bool,
    pub slots: Vec<ApprovalSlot>,
}

fn quorum_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        other => other.to_string(),
    })
}

/// A place for one approver: a role's holder or one named user.
#[derive(SimpleObject, Deserialize)]
pub struct ApprovalSlot {
    pub role: Option<String>,
    pub user: Option<String>,
    /// Added by an escalation.
    #[serde(default)]
    pub escalated: bool,
    pub decided_by: Option<String>,
    pub decided_by_id: Option<ID>,
    /// `approved` or `rejected`.
    pub decision: Option<String>,
    pub decided_at: Option<String>,
    pub comment: Option<String>,
}

/// What `requestTransition` did.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct TransitionResult {
    /// True when the case moved now; false when the move waits for approval.
    pub applied: bool,
    /// The new history entry, when applied.
    pub history_entry: Option<HistoryEntry>,
    /// The request opened, when the move needs approval.
    pub request: Option<TransitionRequest>,
    /// The case as an applied move left it. A requested move leaves the case as it was, so
    /// it is read only when the selection asks for it (`case_id`).
    #[graphql(skip)]
    pub moved: Option<CaseView>,
    /// The case's id or reference, as the caller gave it.
    #[graphql(skip)]
    pub case_id: String,
}

#[async_graphql::ComplexObject]
impl TransitionResult {
    /// The case after the command.
    async fn case(&self, ctx: &Context<'_>) -> async_graphql::Result<Case> {
        Ok(match &self.moved {
            Some(v) => Case::from(v.clone()),
            None => cases::get(services(ctx), caller(ctx)?, &self.case_id)
                .await
                .map_err(gql)?
                .into(),
        })
    }
}

/// A case type's workflow document, as `GET /case-types/{key}` shows it.
pub struct Workflow(pub CaseType);

#[Object]
impl Workflow {
    async fn case_type(&self) -> &str {
        &self.0.key
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Grows by one on every change of the case type.
    async fn version(&self) -> i64 {
        self.0.version
    }
    async fn initial_status(&self) -> &str {
        &self.0.workflow.initial_status
    }
    async fn reopen_to(&self) -> Option<&str> {
        self.0.workflow.reopen_to.as_deref()
    }
    async fn statuses(&self) -> async_graphql::Result<Vec<WorkflowStatus>> {
        wire(&self.0.workflow.statuses)
    }
    async fn rules(&self) -> async_graphql::Result<Vec<TransitionRule>> {
        wire(&self.0.workflow.rules)
    }
    /// The whole document (automatic moves included), as REST's `workflow`.
    async fn document(&self) -> Json<&casegate_domain::lifecycle::Lifecycle> {
        Json(&self.0.workflow)
    }
    async fn updated_at(&self) -> String {
        wire_time(self.0.updated_at)
    }
}

/// One status of a workflow.
#[derive(SimpleObject, Deserialize)]
pub struct WorkflowStatus {
    pub key: String,
    pub label: String,
    /// `open`, `active` or `terminal`.
    pub category: String,
    /// Fields that cannot be edited in this status.
    pub locked_fields: Vec<String>,
    /// Tasks opened on entry that block leaving.
    pub mandatory_tasks: Vec<MandatoryTask>,
}

/// A task a status demands.
#[derive(SimpleObject, Deserialize)]
pub struct MandatoryTask {
    pub title: String,
    pub assignee_role: Option<String>,
}

/// A transition rule (API.md "Workflow document").
#[derive(SimpleObject, Deserialize)]
pub struct TransitionRule {
    pub id: String,
    /// A status key or `*`.
    pub from: String,
    pub to: String,
    /// Higher wins.
    pub priority: i32,
    pub effect: RuleEffect,
    /// CEL: the rule is considered only when this holds.
    pub applies_when: Option<String>,
    pub preconditions: Vec<Precondition>,
    pub required_roles: Vec<String>,
    pub require_reason: bool,
    /// The approval policy (tiers, slots, quorum, deadlines), as in the workflow document.
    pub approval: Option<Json<Value>>,
    /// Post-actions, as in the workflow document.
    pub post_actions: Json<Value>,
    pub effective_from: Option<String>,
    pub effective_until: Option<String>,
    /// When the rule first appeared (breaks priority ties).
    pub created_at: Option<String>,
}

/// A CEL condition with the message shown when it fails.
#[derive(SimpleObject, InputObject, Deserialize)]
#[graphql(input_name = "PreconditionInput")]
pub struct Precondition {
    pub expr: String,
    pub message: String,
}

/// Allow or deny.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleEffect {
    Allow,
    Deny,
}

/// A rule to add, or to replace when `id` names an existing one.
#[derive(InputObject)]
pub struct TransitionRuleInput {
    /// Kept when given; assigned when left out.
    pub id: Option<String>,
    pub from: String,
    pub to: String,
    #[graphql(default)]
    pub priority: i32,
    #[graphql(default_with = "RuleEffect::Allow")]
    pub effect: RuleEffect,
    pub applies_when: Option<String>,
    #[graphql(default)]
    pub preconditions: Vec<Precondition>,
    #[graphql(default)]
    pub required_roles: Vec<String>,
    #[graphql(default)]
    pub require_reason: bool,
    /// `{"tiers": [...], "separation_of_duties"}` as in the workflow document.
    pub approval: Option<Json<Value>>,
    /// Post-actions as in the workflow document.
    pub post_actions: Option<Json<Value>>,
    /// RFC 3339.
    pub effective_from: Option<String>,
    /// RFC 3339.
    pub effective_until: Option<String>,
}

impl TransitionRuleInput {
    /// The rule as the workflow document spells it (validated by the domain's reader).
    pub fn document(self) -> Value {
        let mut m = Map::new();
        if let Some(id) = self.id {
            m.insert("id".into(), json!(id));
        }
        m.insert("from".into(), json!(self.from));
        m.insert("to".into(), json!(self.to));
        m.insert("priority".into(), json!(self.priority));
        let effect = match self.effect {
            RuleEffect::Allow => "allow",
            RuleEffect::Deny => "deny",
        };
        m.insert("effect".into(), json!(effect));
        let preconditions: Vec<Value> = self
            .preconditions
            .into_iter()
            .map(|p| json!({"expr": p.expr, "message": p.message}))
            .collect();
        m.insert("preconditions".into(), Value::Array(preconditions));
        m.insert("required_roles".into(), json!(self.required_roles));
        m.insert("require_reason".into(), json!(self.require_reason));
        let optional = [
            ("applies_when", self.applies_when.map(Value::String)),
            ("approval", self.approval.map(|j| j.0)),
            ("post_actions", self.post_actions.map(|j| j.0)),
            ("effective_from", self.effective_from.map(Value::String)),
            ("effective_until", self.effective_until.map(Value::String)),
        ];
        present(&mut m, optional);
        Value::Object(m)
    }
}

/// Adds the keys whose value was given (a REST body leaves the others out).
fn present<const N: usize>(m: &mut Map<String, Value>, pairs: [(&str, Option<Value>); N]) {
    m.extend(
        pairs
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v))),
    );
}

/// Filters of `cases` (REST `GET /cases` parameters).
#[derive(InputObject, Default)]
pub struct CaseFilter {
    pub status: Option<String>,
    pub priority: Option<String>,
    pub case_type: Option<String>,
    /// User id, email or `me`.
    pub assigned_to: Option<String>,
    /// Date (YYYY-MM-DD) or RFC 3339 date-time.
    pub from_date: Option<String>,
    /// Date (the whole day included) or RFC 3339 date-time.
    pub to_date: Option<String>,
    /// Full-text words over title, notes and comments.
    pub q: Option<String>,
    /// `-created_at` (default), `created_at` or `-updated_at`.
    pub sort: Option<String>,
    /// Custom-field equalities.
    #[graphql(default)]
    pub fields: Vec<FieldEquals>,
    /// Count every match instead of stopping at 10,000.
    #[graphql(default)]
    pub exact_total: bool,
}

/// `fields.<key> = value`.
#[derive(InputObject)]
pub struct FieldEquals {
    pub key: String,
    pub value: String,
}

impl From<CaseFilter> for cases::ListQuery {
    fn from(f: CaseFilter) -> Self {
        Self {
            status: f.status,
            priority: f.priority,
            case_type: f.case_type,
            assigned_to: f.assigned_to,
            from_date: f.from_date,
            to_date: f.to_date,
            q: f.q,
            sort: f.sort,
            fields: f.fields.into_iter().map(|e| (e.key, e.value)).collect(),
            exact_total: f.exact_total,
        }
    }
}

/// `createCase` input (REST `POST /cases` body).
#[derive(InputObject)]
pub struct CreateCaseInput {
    pub case_type: String,
    pub title: String,
    /// `low`, `medium`, `high` or `critical`.
    pub priority: Option<String>,
    /// User id or email.
    pub assigned_to: Option<String>,
    pub score: Option<f64>,
    pub business_unit: Option<String>,
    pub screening_id: Option<String>,
    pub subject_id: Option<String>,
    pub alert_ids: Option<Vec<ID>>,
    /// Custom field values by key.
    pub fields: Option<Json<Map<String, Value>>>,
    pub reasons: Option<Vec<String>>,
    pub notes: Option<String>,
    /// RFC 3339.
    pub detected_at: Option<String>,
    /// The originating payload.
    pub source: Option<Json<Value>>,
}

impl CreateCaseInput {
    /// The REST body with the same meaning.
    pub fn body(self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("case_type".into(), json!(self.case_type));
        m.insert("title".into(), json!(self.title));
        let optional = [
            ("priority", self.priority.map(Value::String)),
            ("assigned_to", self.assigned_to.map(Value::String)),
            ("score", self.score.map(|s| json!(s))),
            ("business_unit", self.business_unit.map(Value::String)),
            ("screening_id", self.screening_id.map(Value::String)),
            ("subject_id", self.subject_id.map(Value::String)),
            (
                "alert_ids",
                self.alert_ids
                    .map(|a| json!(a.into_iter().map(|i| i.0).collect::<Vec<_>>())),
            ),
            ("fields", self.fields.map(|f| Value::Object(f.0))),
            ("reasons", self.reasons.map(|r| json!(r))),
            ("notes", self.notes.map(Value::String)),
            ("detected_at", self.detected_at.map(Value::String)),
            ("source", self.source.map(|s| s.0)),
        ];
        present(&mut m, optional);
        m
    }
}
