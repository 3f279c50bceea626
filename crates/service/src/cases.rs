//! Case commands and queries (API.md "Cases", docs/cases.md). Each command: check the
//! permission, validate the input, then in one transaction lock the case, compare its version,
//! ask the lifecycle (the seam for the workflow engine), write the case and its record, append
//! the audit event and put the domain events in the outbox (DESIGN.md principles 3, 4, 7).
use crate::audit::{self, Entry};
use crate::case_types::{self, CaseType, version_conflict};
use crate::case_views::*;
use crate::{Code, Error, Page, Result, Services, approvals, random_id, tasks, users};
use casegate_domain::cases::{self as vocab, Disposition, Priority};
use casegate_domain::clock::wire_time;
use casegate_domain::expr::Scope;
use casegate_domain::fields::{self, FieldType, Mode, canonical_number};
use casegate_domain::ids::{CaseId, PartyId, TenantId};
use casegate_domain::lifecycle::{ALERT, Asking, Lifecycle};
use casegate_domain::principal::{Caller, Principal};
use casegate_domain::rbac::{Permission, permissions_of};
use casegate_domain::rules::PostAction;
use casegate_domain::validate;
use casegate_store::case_record::{self as record, Activity, By, Comment, HistoryEntry, Relation};
use casegate_store::cases::{self as store, CaseFilter, CaseSort, Count, FieldFilter, StoredCase};
use casegate_store::outbox::{self, PostActionRun};
use casegate_store::requests::{self, StoredRequest};
use casegate_store::{Conn, Tx};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

/// The most bytes a case's `source` payload may take as JSON.
pub const MAX_SOURCE_BYTES: usize = 64 * 1024;
/// Longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 20_000;
/// Longest reason (dispositions, transitions, escalations), in characters.
pub const MAX_REASON_CHARS: usize = 4_000;

fn by_of(p: &Principal) -> By {
    By {
        id: (!p.is_system()).then_some(p.user_id.0),
        label: p.audit_label(),
    }
}

fn new_id() -> Uuid {
    Uuid::from_bytes(crate::random_id())
}

// ---------------------------------------------------------------------------------------------
// Input parsing: one parser per attribute, shared by create and patch.

fn str_of<'a>(param: &str, v: &'a Value) -> Result<&'a str> {
    v.as_str()
        .ok_or_else(|| Error::validation(param, "must be a string"))
}

fn opt_text(param: &str, v: &Value, max: usize) -> Result<Option<String>> {
    match v {
        Value::Null => Ok(None),
        v => validate::text(param, str_of(param, v)?, max).map(Some),
    }
}

fn reason_of(param: &str, v: Option<&str>) -> Result<String> {
    validate::text(param, v.unwrap_or(""), MAX_REASON_CHARS)
}

fn parse_time(param: &str, s: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map(casegate_domain::clock::to_micros)
        .map_err(|_| Error::validation(param, "must be an RFC 3339 date-time"))
}

/// Sets one attribute of `k` from its JSON value (create and patch). `fields` merge into the
/// stored values; `null` clears an optional attribute.
fn set_attribute(
    ty: &CaseType,
    k: &mut StoredCase,
    key: &str,
    v: &Value,
    mode: Mode,
) -> Result<()> {
    match key {
        "title" => k.title = validate::text("title", str_of("title", v)?, 500)?,
        "priority" => {
            k.priority = Priority::parse("priority", str_of("priority", v)?)?
                .as_str()
                .into()
        }
        "score" => {
            k.score = match v {
                Value::Null => None,
                Value::Number(n) => match n.as_f64() {
                    Some(f) if (0.0..=100.0).contains(&f) => Some(f),
                    _ => return Err(Error::validation("score", "must be between 0 and 100")),
                },
                _ => {
                    return Err(Error::validation(
                        "score",
                        "must be a number between 0 and 100",
                    ));
                }
            }
        }
        "business_unit" => k.business_unit = opt_text(key, v, 200)?,
        "screening_id" => k.screening_id = opt_text(key, v, 200)?,
        "subject_id" => k.subject_id = opt_text(key, v, 200)?,
        "notes" => k.notes = opt_text(key, v, 100_000)?,
        "reasons" => {
            let list = v
                .as_array()
                .ok_or_else(|| Error::validation("reasons", "must be a list of strings"))?;
            if list.len() > 50 {
                return Err(Error::validation("reasons", "at most 50 reasons"));
            }
            k.reasons = list
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let p = format!("reasons[{i}]");
                    validate::text(&p, str_of(&p, r)?, 500)
                })
                .collect::<Result<_>>()?;
        }
        "fields" => {
            let given = v
                .as_object()
                .ok_or_else(|| Error::validation("fields", "must be an object"))?;
            let checked = fields::check_values(&ty.fields, given, mode)?;
            for (f, val) in checked {
                if val.is_null() {
                    k.fields.remove(&f);
                } else {
                    k.fields.insert(f, val);
                }
            }
        }
        "detected_at" => {
            k.detected_at = match v {
                Value::Null => None,
                v => Some(parse_time(key, str_of(key, v)?)?),
            }
        }
        "source" => {
            k.source = match v {
                Value::Null => None,
                Value::Object(_) => {
                    if serde_json::to_vec(v).map_or(usize::MAX, |b| b.len()) > MAX_SOURCE_BYTES {
                        return Err(Error::validation(
                            "source",
                            "must be at most 64 KiB of JSON",
                        ));
                    }
                    Some(v.clone())
                }
                _ => return Err(Error::validation("source", "must be a JSON object")),
            }
        }
        "status" | "assigned_to" | "disposition" | "escalated" | "escalated_to" => {
            return Err(Error::validation(
                key,
                format!(
                    "`{key}` changes through its own endpoint (transitions, assign, escalate, disposition)"
                ),
            ));
        }
        _ => return Err(Error::validation(key, format!("unknown field `{key}`"))),
    }
    Ok(())
}

/// Values of the type's indexed fields, as JSON text, for `case_field_values`.
fn indexed_values(ty: &CaseType, values: &Map<String, Value>) -> Vec<(String, String)> {
    ty.fields
        .iter()
        .filter(|f| f.indexed)
        .filter_map(|f| {
            values
                .get(&f.key)
                .filter(|v| !v.is_null())
                .map(|v| (f.key.clone(), v.to_string()))
        })
        .collect()
}

/// The attributes an audit event compares, in wire form.
fn snapshot(k: &StoredCase) -> Map<String, Value> {
    let json = json!({
        "title": k.title,
        "status": k.status,
        "priority": k.priority,
        "score": k.score,
        "assigned_to": k.assigned_to.map(|u| u.to_string()),
        "business_unit": k.business_unit,
        "fields": k.fields,
        "reasons": k.reasons,
        "notes": k.notes,
        "source": k.source,
        "screening_id": k.screening_id,
        "subject_id": k.subject_id,
        "case_id": k.parent_case_id,
        "disposition": k.disposition,
        "disposition_reason": k.disposition_reason,
        "escalated": k.escalated,
        "escalated_to": k.escalated_to.map(|u| u.to_string()),
        "detected_at": k.detected_at.map(wire_time),
    });
    match json {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// `{"field": {"before", "after"}}` for every attribute that differs.
fn diff(before: Option<&StoredCase>, after: &StoredCase) -> Value {
    let b = before.map(snapshot).unwrap_or_default();
    let mut out = Map::new();
    for (key, a) in snapshot(after) {
        let old = b.get(&key).cloned().unwrap_or(Value::Null);
        if old != a {
            out.insert(key, json!({ "before": old, "after": a }));
        }
    }
    Value::Object(out)
}

// ---------------------------------------------------------------------------------------------
// Loading and committing.

/// Parses a case id or reference; anything else is simply not found.
fn parse_ref(id: &str) -> Result<Ref> {
    if let Ok(u) = id.parse::<Uuid>() {
        return Ok(Ref::Id(CaseId(u)));
    }
    if vocab::parse_reference(id).is_some() {
        return Ok(Ref::Reference(id.to_string()));
    }
    Err(Error::not_found("case"))
}

enum Ref {
    Id(CaseId),
    Reference(String),
}

async fn read(c: &mut dyn Conn, tenant: TenantId, id: &str) -> Result<StoredCase> {
    let found = match parse_ref(id)? {
        Ref::Id(id) => store::get(c, tenant, id).await?,
        Ref::Reference(r) => store::by_reference(c, tenant, &r).await?,
    };
    found.ok_or_else(|| Error::not_found("case"))
}

/// Case `id` of `tenant` as the API shows it.
pub(crate) async fn view_of(c: &mut dyn Conn, tenant: TenantId, id: CaseId) -> Result<CaseView> {
    Ok(store::get(c, tenant, id)
        .await?
        .ok_or_else(|| Error::not_found("case"))?
        .into())
}

/// The id of case `id` (an id or a reference) of `tenant`; 404 otherwise.
pub(crate) async fn find(c: &mut dyn Conn, tenant: TenantId, id: &str) -> Result<CaseId> {
    Ok(read(c, tenant, id).await?.id)
}

/// An open command on one case: the transaction, the case as read (locked) and its type.
pub(crate) struct Open {
    pub(crate) tx: Box<dyn Tx>,
    pub(crate) before: StoredCase,
    pub(crate) ty: Arc<CaseType>,
    pub(crate) now: OffsetDateTime,
    /// A post-action this command carries out: recorded in its transaction, so it runs once.
    pub(crate) run: Option<PostActionRun>,
    /// Whether the case's pending request was superseded, or is known not to exist, in this
    /// transaction already.
    superseded: bool,
    /// A status this transaction found no open mandatory task holding the case in (set by
    /// `transition` from what `store::lock_for_move` read under the case's lock);
    /// `check_leaving` then asks no more.
    free_to_leave: Option<String>,
    /// This command among the tenant's in progress (for its audit append).
    turn: audit::ChainTurn,
}

pub(crate) async fn open(
    svc: &Services,
    p: &Caller,
    id: &str,
    expected: Option<i64>,
) -> Result<Open> {
    let (mut tx, id) = begin_on(svc, p, id).await?;
    let locked = store::lock(&mut *tx, p.tenant_id, id)
        .await?
        .ok_or_else(|| Error::not_found("case"))?;
    opened(svc, p, tx, locked, expected).await
}

/// [`open`] for a status change, with what may stop the case leaving its status, read with it
/// (`casegate_store::cases::lock_for_move`).
async fn open_for_move(
    svc: &Services,
    p: &Caller,
    id: &str,
    expected: Option<i64>,
) -> Result<(Open, store::Obstacles)> {
    let (mut tx, id) = begin_on(svc, p, id).await?;
    let (locked, found) = store::lock_for_move(&mut *tx, p.tenant_id, id)
        .await?
        .ok_or_else(|| Error::not_found("case"))?;
    Ok((opened(svc, p, tx, locked, expected).await?, found))
}

/// A transaction, and the id of the case `id` names (a reference is resolved to its id first:
/// the case is then read under its row lock, so concurrent commands queue on it).
async fn begin_on(svc: &Services, p: &Caller, id: &str) -> Result<(Box<dyn Tx>, CaseId)> {
    let mut tx = svc.db.begin().await?;
    let id = match parse_ref(id)? {
        Ref::Id(id) => id,
        Ref::Reference(_) => read(&mut *tx, p.tenant_id, id).await?.id,
    };
    Ok((tx, id))
}

/// The [`Open`] command on the case `locked` in `tx`, if its version is the `expected` one.
async fn opened(
    svc: &Services,
    p: &Caller,
    mut tx: Box<dyn Tx>,
    locked: store::Locked,
    expected: Option<i64>,
) -> Result<Open> {
    let before = locked.case;
    if let Some(v) = expected
        && v != before.version
    {
        return Err(version_conflict(before.version));
    }
    let key = &before.case_type;
    let ty = case_types::at_version(svc, &mut *tx, p.tenant_id, key, locked.type_version).await?;
    Ok(Open {
        tx,
        before,
        ty,
        now: svc.clock.now(),
        run: None,
        superseded: false,
        free_to_leave: None,
        turn: svc.chain_writers.enter(p.tenant_id),
    })
}

/// A domain event to put in the outbox with the case.
struct Event {
    name: &'static str,
    extra: Value,
    /// Work for the dispatcher (post-actions).
    actions: Option<Value>,
}

fn event(name: &'static str, extra: Value) -> Event {
    Event {
        name,
        extra,
        actions: None,
    }
}

async fn emit(
    c: &mut dyn Conn,
    tenant: TenantId,
    now: OffsetDateTime,
    view: &CaseView,
    events: Vec<Event>,
) -> Result<()> {
    for e in events {
        let data = json!({ "case": view });
        crate::enqueue_with(c, tenant, now, e.name, data, e.extra, e.actions).await?;
    }
    Ok(())
}

/// The next position in `k`'s record (the case row is locked, so positions never collide).
fn next_seq(k: &mut StoredCase) -> i64 {
    k.entry_seq += 1;
    k.entry_seq
}

/// The `case.status_changed` event announcing history entry `h`.
fn status_changed(h: &HistoryEntry) -> Event {
    event(
        "case.status_changed",
        json!({ "from": h.from, "to": h.to, "history_entry": HistoryView::from(h.clone()) }),
    )
}

/// A status history entry of `k` moving from `from` to `to`, made by `p` at `now`.
fn history_entry(
    p: &Caller,
    k: &mut StoredCase,
    from: Option<String>,
    to: &str,
    reason: Option<String>,
    now: OffsetDateTime,
) -> HistoryEntry {
    HistoryEntry {
        id: new_id(),
        case_id: k.id,
        seq: next_seq(k),
        from,
        to: to.to_string(),
        rule_id: None,
        request_id: None,
        actor: by_of(p),
        reason,
        approvals: json!([]),
        requested_at: now,
        approval_requested_at: None,
        approval_completed_at: None,
        effective_at: now,
    }
}

impl Open {
    /// Approvers signed off on the case as it was: any change supersedes their request. Done
    /// before anything else takes the audit head, so the lock order stays case, request, audit
    /// head on every path (the approval timer takes request, then audit head).
    async fn supersede(&mut self, p: &Caller, case: CaseId) -> Result<()> {
        if !self.superseded {
            approvals::supersede(&mut *self.tx, p, case, self.now).await?;
            self.superseded = true;
        }
        Ok(())
    }

    /// Writes the changed case (version + 1), its audit event and outbox events; commits.
    async fn commit(
        mut self,
        p: &Caller,
        mut k: StoredCase,
        action: &'static str,
        events: Vec<Event>,
    ) -> Result<CaseView> {
        k.version = self.before.version + 1;
        k.updated_at = self.now;
        // `before` was read under the case's row lock in this transaction: the version guard
        // cannot miss, so the write is deferred and goes out with the transaction's next
        // statement (for a plain move, together with the history row and the outbox event, and
        // with the audit append when no other case command of the tenant is in progress).
        store::update_locked(&mut *self.tx, &k, &self.before).await?;
        self.supersede(p, k.id).await?;
        if k.fields != self.before.fields {
            let values = indexed_values(&self.ty, &k.fields);
            store::set_field_values(&mut *self.tx, p.tenant_id, &k.case_type, k.id, &values)
                .await?;
        }
        let entry = Entry {
            action,
            entity_type: "case",
            entity_id: Some(k.id.to_string()),
            changes: diff(Some(&self.before), &k),
        };
        // The answer is the row as written, unless the database adds to what was written: the
        // e-mails joined for a new assignee or escalation target, or the normalised JSON of new
        // fields or payload. Then it is read back. (Times are whole microseconds already.)
        let b = &self.before;
        let view = if k.assigned_to == b.assigned_to
            && k.escalated_to == b.escalated_to
            && k.fields == b.fields
            && k.source == b.source
        {
            CaseView::from(k)
        } else {
            view_of(&mut *self.tx, p.tenant_id, k.id).await?
        };
        self.finish(p, view, entry, events).await
    }

    /// Audit, outbox, commit; answers `view`, the case as now stored.
    async fn finish(
        mut self,
        p: &Caller,
        view: CaseView,
        entry: Entry,
        events: Vec<Event>,
    ) -> Result<CaseView> {
        emit(&mut *self.tx, p.tenant_id, self.now, &view, events).await?;
        if let Some(run) = &self.run
            && !outbox::record_run(&mut *self.tx, run).await?
        {
            return Err(crate::dispatch::already_ran());
        }
        // Last before commit: the tenant's chain head stays locked from here to the commit, and
        // every command of the tenant queues on it. (When no other case command of the tenant
        // is in progress, on PostgreSQL it goes out with the writes queued before it: the
        // case's update, history row and outbox events.)
        audit::append_last_by(&self.turn, &mut *self.tx, self.now, p, entry).await?;
        self.tx.commit().await?;
        Ok(view)
    }

    fn activity(&self, p: &Caller, k: &mut StoredCase, kind: &str, data: Value) -> Activity {
        Activity {
            id: new_id(),
            case_id: k.id,
            seq: next_seq(k),
            kind: kind.into(),
            actor: by_of(p),
            data,
            created_at: self.now,
        }
    }

    /// Moves `k` to `to` (already decided) with a history entry; returns the entry and the
    /// events the move announces.
    async fn move_to(
        &mut self,
        p: &Caller,
        k: &mut StoredCase,
        to: &str,
        reason: Option<String>,
    ) -> Result<(HistoryEntry, Vec<Event>)> {
        self.move_by(p, k, to, reason, None).await
    }

    /// [`Self::move_to`], recording the rule that allowed the move.
    async fn move_by(
        &mut self,
        p: &Caller,
        k: &mut StoredCase,
        to: &str,
        reason: Option<String>,
        rule_id: Option<String>,
    ) -> Result<(HistoryEntry, Vec<Event>)> {
        let from = k.status.clone();
        let mut h = history_entry(p, k, Some(from.clone()), to, reason, self.now);
        h.rule_id = rule_id;
        self.move_with(p, k, h).await
    }

    /// Writes the history entry `h` (from `history_entry`) and moves `k` to its `to`: 422
    /// `unresolved_mandatory_tasks` while the status it leaves demands open tasks; opens the
    /// tasks the new status demands.
    async fn move_with(
        &mut self,
        p: &Caller,
        k: &mut StoredCase,
        h: HistoryEntry,
    ) -> Result<(HistoryEntry, Vec<Event>)> {
        self.check_leaving(p, k).await?;
        self.supersede(p, k.id).await?;
        record::add_history(&mut *self.tx, p.tenant_id, &h).await?;
        k.status = h.to.clone();
        let mut events = vec![status_changed(&h)];
        if self.ty.workflow.is_terminal(&h.to) {
            events.push(event("case.closed", json!({ "status": h.to })));
        }
        if k.case_type == crate::sars::WORK_ITEM_TYPE {
            // A SAR is worked as this case: its moves are the report's (API.md events).
            let data = json!({ "sar_id": k.id, "from": h.from, "to": h.to, "reason": h.reason });
            events.push(event("sar.status_changed", data.clone()));
            if h.to == crate::sars::FILED {
                events.push(event("sar.filed", data));
            }
        }
        let wf = &self.ty.workflow;
        for t in tasks::enter_status(&mut *self.tx, p, k.id, wf, &h.to, h.id, self.now).await? {
            events.push(event("task.created", json!({ "task": t })));
        }
        Ok((h, events))
    }

    /// 422 `unresolved_mandatory_tasks` while open mandatory tasks hold `k` in its status,
    /// unless this transaction found none already.
    async fn check_leaving(&mut self, p: &Caller, k: &StoredCase) -> Result<()> {
        if self.free_to_leave.as_deref() == Some(k.status.as_str()) {
            return Ok(());
        }
        tasks::check_leaving(&mut *self.tx, p.tenant_id, k.id, &k.status).await
    }

    /// Whether `k` may leave its status on its own (an automatic move on assignment or
    /// escalation): not while mandatory tasks keep it there.
    async fn may_leave(&mut self, k: &StoredCase) -> Result<bool> {
        let open = tasks::unresolved(&mut *self.tx, k.tenant_id, k.id, &k.status).await?;
        Ok(open.is_empty())
    }
}

/// 422 `field_restricted` unless `field` may be edited in the case's status.
fn check_unlocked(l: &Lifecycle, status: &str, field: &str) -> Result<()> {
    if l.is_locked(status, field) {
        let why = if l.is_terminal(status) {
            format!("the case is in the terminal status `{status}`: reopen it to change `{field}`")
        } else {
            format!("`{field}` cannot be changed in status `{status}`")
        };
        return Err(Error::new(Code::FieldRestricted, why).with_param(field));
    }
    Ok(())
}

/// Resolves a person (id or email) of the caller's tenant who can act (active).
async fn person(
    c: &mut dyn Conn,
    tenant: TenantId,
    param: &str,
    v: &str,
) -> Result<casegate_store::users::User> {
    let u = users::resolve(c, tenant, v)
        .await
        .map_err(|e| e.with_param(param))?;
    if !u.active {
        return Err(Error::validation(param, "this user is disabled"));
    }
    Ok(u)
}

// ---------------------------------------------------------------------------------------------
// Queries.

/// `GET /cases/{id}` (`case.view`): by id or reference, with the record.
pub async fn get(svc: &Services, p: &Caller, id: &str) -> Result<CaseDetail> {
    p.require(Permission::CaseView)?;
    let mut c = svc.db.conn().await?;
    let k = read(&mut *c, p.tenant_id, id).await?;
    let t = p.tenant_id;
    Ok(CaseDetail {
        comments: record::comments(&mut *c, t, k.id)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
        attachments: record::attachments(&mut *c, t, k.id)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
        status_history: record::history(&mut *c, t, k.id)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
        activities: record::activities(&mut *c, t, k.id)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
        relations: record::relations(&mut *c, t, k.id)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
        pending_request: approvals::pending_of(&mut *c, t, k.id).await?,
        tasks: tasks::of_case(&mut *c, t, k.id).await?,
        // What was filed about a case is for those who may see reports.
        sar_filing: if p.permissions.contains(Permission::SarView) {
            crate::sars::of_case(&mut *c, t, k.id, svc.clock.now().date()).await?
        } else {
            None
        },
        case: k.into(),
    })
}

/// `GET /cases/{id}/history` (`case.view`): oldest first.
pub async fn history(svc: &Services, p: &Caller, id: &str) -> Result<Vec<HistoryView>> {
    p.require(Permission::CaseView)?;
    let mut c = svc.db.conn().await?;
    let k = read(&mut *c, p.tenant_id, id).await?;
    Ok(record::history(&mut *c, p.tenant_id, k.id)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

/// A move as `GET /cases/{id}/transitions` lists it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TransitionOption {
    /// Target status.
    pub to: String,
    /// The rule that allows it (none under the fixed lifecycle).
    pub rule_id: Option<String>,
    /// Whether it goes through approval.
    pub requires_approval: bool,
    /// Whether a reason is needed.
    pub requires_reason: bool,
    /// What stands in the way (preconditions, tasks).
    pub blocked_by: Vec<Value>,
}

/// `GET /cases/{id}/transitions` (`case.view`): the moves open to the caller (none without
/// `case.transition`).
pub async fn transitions(svc: &Services, p: &Caller, id: &str) -> Result<Vec<TransitionOption>> {
    p.require(Permission::CaseView)?;
    let mut c = svc.db.conn().await?;
    let k = read(&mut *c, p.tenant_id, id).await?;
    if p.require(Permission::CaseTransition).is_err() {
        return Ok(Vec::new());
    }
    let ty = case_types::current(svc, &mut *c, p.tenant_id, &k.case_type)
        .await?
        .ok_or_else(|| case_types::missing(&k.case_type))?;
    let now = svc.clock.now();
    let scope = scope_of(p, &k, &ty.workflow, now)?;
    let asking = Asking {
        roles: &p.roles,
        scope: &scope,
        now,
    };
    let pending = requests::pending_for_case(&mut *c, p.tenant_id, k.id).await?;
    let unresolved = tasks::unresolved(&mut *c, p.tenant_id, k.id, &k.status).await?;
    Ok(ty
        .workflow
        .offers(&k.status, &asking)
        .into_iter()
        .map(|o| {
            let mut blocked_by = o.blocked_by;
            if let Some(q) = &pending {
                blocked_by.push(json!({
                    "code": "request_pending",
                    "message": "a transition request is waiting for approval on this case",
                    "request_id": q.id,
                }));
            }
            if !unresolved.is_empty() {
                blocked_by.push(json!({
                    "code": Code::UnresolvedMandatoryTasks.as_str(),
                    "message": format!("{} mandatory task(s) must be done first", unresolved.len()),
                    "unresolved_mandatory_tasks": unresolved,
                }));
            }
            TransitionOption {
                to: o.to,
                rule_id: o.rule_id,
                requires_approval: o.requires_approval,
                requires_reason: o.requires_reason,
                blocked_by,
            }
        })
        .collect())
}

/// What workflow expressions see: the case as the API shows it, the caller and the time. Empty
/// when `workflow` has no expression to evaluate (nothing reads it).
fn scope_of(
    p: &Caller,
    k: &StoredCase,
    workflow: &Lifecycle,
    now: OffsetDateTime,
) -> Result<Scope> {
    if !workflow.reads_scope() {
        return Ok(Scope::new(&Value::Null, &Value::Null, now));
    }
    let case = serde_json::to_value(CaseView::from(k.clone())).map_err(Error::internal)?;
    let actor = json!({ "id": p.user_id.to_string(), "email": p.email, "roles": p.roles });
    Ok(Scope::new(&case, &actor, now))
}

/// Filters of `GET /cases` as received.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    /// Status key.
    pub status: Option<String>,
    /// Priority.
    pub priority: Option<String>,
    /// Case type key.
    pub case_type: Option<String>,
    /// Id, email or `me`.
    pub assigned_to: Option<String>,
    /// Date or date-time.
    pub from_date: Option<String>,
    /// Date or date-time (a date includes the whole day).
    pub to_date: Option<String>,
    /// Full-text words.
    pub q: Option<String>,
    /// `-created_at` (default), `created_at`, `-updated_at`.
    pub sort: Option<String>,
    /// `fields.<key>` equalities.
    pub fields: Vec<(String, String)>,
    /// Count every match instead of stopping at `COUNT_CAP`.
    pub exact_total: bool,
}

fn date_bound(param: &str, s: &str, end_of_day: bool) -> Result<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s, &format).map_err(|_| {
        Error::validation(
            param,
            "must be a date (YYYY-MM-DD) or an RFC 3339 date-time",
        )
    })?;
    let d = if end_of_day {
        d.next_day().unwrap_or(d)
    } else {
        d
    };
    Ok(d.midnight().assume_utc())
}

/// The words of a full-text query: letters and digits, lowercased; at most 10.
pub fn words_of(q: &str) -> Result<Vec<String>> {
    if q.chars().count() > 200 {
        return Err(Error::validation("q", "must be at most 200 characters"));
    }
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    if words.is_empty() {
        return Err(Error::validation("q", "must contain a word"));
    }
    if words.len() > 10 {
        return Err(Error::validation("q", "at most 10 words"));
    }
    Ok(words)
}

/// Lists count matches up to here unless `exact_total` is asked for.
pub const COUNT_CAP: i64 = 10_000;

/// A page of cases and how many match (`total` is a lower bound when `total_exact` is false).
#[derive(Debug)]
pub struct CaseList {
    /// The page.
    pub cases: Vec<CaseView>,
    /// Matching cases, exact up to `COUNT_CAP`.
    pub total: i64,
    /// False when more than the cap match and `exact_total` was not asked for.
    pub total_exact: bool,
}

/// The id of the user `a` (id or email) names in `assigned_to`; 422 if no user of the caller's
/// organisation.
async fn assignee(c: &mut dyn Conn, p: &Caller, a: &str) -> Result<Uuid> {
    Ok(users::resolve(c, p.tenant_id, a)
        .await
        .map_err(|_| Error::validation("assigned_to", "no such user in this organisation"))?
        .id
        .0)
}

/// `GET /cases` (`case.view`).
pub async fn list(svc: &Services, p: &Caller, q: ListQuery, page: Page) -> Result<CaseList> {
    p.require(Permission::CaseView)?;
    let mut c = svc.db.conn().await?;
    let mut f = CaseFilter {
        status: q
            .status
            .map(|s| validate::text("status", &s, 64))
            .transpose()?,
        priority: q
            .priority
            .map(|s| Priority::parse("priority", &s).map(|p| p.as_str().to_string()))
            .transpose()?,
        case_type: q
            .case_type
            .map(|s| validate::text("case_type", &s, 32))
            .transpose()?,
        from: q
            .from_date
            .map(|s| date_bound("from_date", &s, false))
            .transpose()?,
        to: q
            .to_date
            .map(|s| date_bound("to_date", &s, true))
            .transpose()?,
        words: q
            .q
            .as_deref()
            .map(words_of)
            .transpose()?
            .unwrap_or_default(),
        ..CaseFilter::default()
    };
    // An assignee given by id is checked only if nothing matches: a case's assignee is a user
    // of its organisation (a foreign key), so a page with cases proves the user exists here.
    let mut unchecked_assignee = None;
    if let Some(a) = q.assigned_to {
        f.assigned_to = Some(if a == "me" {
            p.user_id.0
        } else if let Ok(id) = a.parse::<Uuid>() {
            unchecked_assignee = Some(a);
            id
        } else {
            assignee(&mut *c, p, &a).await?
        });
    }
    let sort = match q.sort.as_deref() {
        None | Some("-created_at") => CaseSort::CreatedDesc,
        Some("created_at") => CaseSort::CreatedAsc,
        Some("-updated_at") => CaseSort::UpdatedDesc,
        Some(_) => {
            return Err(Error::validation(
                "sort",
                "must be one of -created_at, created_at, -updated_at",
            ));
        }
    };
    if !q.fields.is_empty() {
        let Some(type_key) = f.case_type.clone() else {
            let param = format!("fields.{}", q.fields[0].0);
            return Err(Error::validation(
                param,
                "filtering on custom fields needs `case_type` too",
            ));
        };
        let ty = case_types::load(&mut *c, p.tenant_id, &type_key).await?;
        for (key, value) in q.fields {
            let param = format!("fields.{key}");
            let def = ty
                .as_ref()
                .and_then(|t| t.field(&key))
                .ok_or_else(|| Error::validation(&param, "is not a field of this case type"))?;
            let json = match def.field_type {
                FieldType::String | FieldType::Date => Value::String(value),
                FieldType::Number => serde_json::from_str::<serde_json::Number>(&value)
                    .map(|n| Value::Number(canonical_number(&n)))
                    .map_err(|_| Error::validation(&param, "must be a number"))?,
                FieldType::Boolean => match value.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => return Err(Error::validation(&param, "must be true or false")),
                },
            };
            f.fields.push(FieldFilter {
                key,
                value: json.to_string(),
                indexed: def.indexed,
            });
        }
    }
    let found = store::list(
        &mut *c,
        p.tenant_id,
        &f,
        sort,
        (page.limit, page.offset),
        if q.exact_total {
            Count::Exact
        } else {
            Count::UpTo(COUNT_CAP)
        },
    )
    .await?;
    if let Some(a) = unchecked_assignee
        && found.total == 0
    {
        assignee(&mut *c, p, &a).await?;
    }
    Ok(CaseList {
        cases: found.rows.into_iter().map(Into::into).collect(),
        total: found.total,
        total_exact: found.total_exact,
    })
}

// ---------------------------------------------------------------------------------------------
// Commands.

/// `POST /cases` (`case.create`): the body as a JSON object (docs/cases.md).
pub async fn create(svc: &Services, p: &Caller, body: Map<String, Value>) -> Result<CaseView> {
    p.require(Permission::CaseCreate)?;
    let type_key = match body.get("case_type") {
        None | Some(Value::Null) => {
            return Err(Error::validation("case_type", "`case_type` is required"));
        }
        Some(v) => str_of("case_type", v)?.to_string(),
    };
    if !body.contains_key("title") {
        return Err(Error::validation("title", "`title` is required"));
    }
    let mut tx = svc.db.begin().await?;
    let ty = case_types::current(svc, &mut *tx, p.tenant_id, &type_key)
        .await?
        .ok_or_else(|| Error::validation("case_type", format!("unknown case type `{type_key}`")))?;
    let now = svc.clock.now();
    let mut k = blank_case(p, &ty, now);
    let mut alert_ids = Vec::new();
    let mut saw_fields = false;
    for (key, v) in &body {
        match key.as_str() {
            "case_type" => {}
            "assigned_to" => {
                k.assigned_to = match v {
                    Value::Null => None,
                    v => Some(
                        person(&mut *tx, p.tenant_id, "assigned_to", str_of(key, v)?)
                            .await?
                            .id
                            .0,
                    ),
                }
            }
            "alert_ids" => {
                let list = v
                    .as_array()
                    .ok_or_else(|| Error::validation("alert_ids", "must be a list of alert ids"))?;
                if list.len() > 1000 {
                    return Err(Error::validation("alert_ids", "at most 1000 alerts"));
                }
                for (i, a) in list.iter().enumerate() {
                    let param = format!("alert_ids[{i}]");
                    let id = str_of(&param, a)?
                        .parse::<Uuid>()
                        .map_err(|_| Error::validation(&param, "must be an alert id"))?;
                    alert_ids.push((param, CaseId(id)));
                }
            }
            "fields" => {
                saw_fields = true;
                set_attribute(&ty, &mut k, key, v, Mode::Create)?;
            }
            _ => set_attribute(&ty, &mut k, key, v, Mode::Create)?,
        }
    }
    if !saw_fields {
        set_attribute(&ty, &mut k, "fields", &json!({}), Mode::Create)?;
    }
    if ty.key == ALERT && !alert_ids.is_empty() {
        return Err(Error::validation(
            "alert_ids",
            "an alert cannot hold other alerts",
        ));
    }
    let view = insert_new(&mut *tx, p, &ty, k, now, None, &alert_ids, json!({})).await?;
    tx.commit().await?;
    Ok(view)
}

/// A new case of type `ty` with every attribute unset, created by `p` at `now`.
fn blank_case(p: &Caller, ty: &CaseType, now: OffsetDateTime) -> StoredCase {
    StoredCase {
        tenant_id: p.tenant_id,
        id: CaseId::new_v4(random_id()),
        reference: String::new(),
        case_type: ty.key.clone(),
        title: String::new(),
        status: ty.workflow.initial_status.clone(),
        priority: Priority::Medium.as_str().into(),
        score: None,
        assigned_to: None,
        assigned_to_email: None,
        business_unit: None,
        fields: Map::new(),
        reasons: Vec::new(),
        notes: None,
        source: None,
        screening_id: None,
        subject_id: None,
        parent_case_id: None,
        disposition: None,
        disposition_reason: None,
        escalated: false,
        escalated_to: None,
        escalated_to_email: None,
        detected_at: None,
        created_by: Some(p.user_id.0),
        created_by_label: p.audit_label(),
        created_at: now,
        updated_at: now,
        version: 1,
        entry_seq: 0,
        alert_ids: Vec::new(),
    }
}

/// Stores a new case inside the open transaction `c`: its reference, the creation entry of its
/// status history (with `reason`), its indexed field values and the `alerts` it links (each
/// with the parameter that named it); then appends `case.created` to the audit trail and the
/// outbox (`extra` added to the event data). Answers the case as stored.
#[allow(clippy::too_many_arguments)]
async fn insert_new(
    c: &mut dyn Conn,
    p: &Caller,
    ty: &CaseType,
    mut k: StoredCase,
    now: OffsetDateTime,
    reason: Option<String>,
    alerts: &[(String, CaseId)],
    extra: Value,
) -> Result<CaseView> {
    let year = now.year();
    k.reference = vocab::reference(year, store::next_number(c, p.tenant_id, year).await?);
    let initial = k.status.clone();
    let mut entries = vec![history_entry(p, &mut k, None, &initial, reason, now)];
    let mut events = vec![event("case.created", extra)];
    // A case created with an assignee moves on assignment as if assigned right after (unless
    // its first status demands tasks, which keep it there).
    let demands = |s: &str| {
        ty.workflow
            .status(s)
            .is_some_and(|d| !d.mandatory_tasks.is_empty())
    };
    if k.assigned_to.is_some()
        && !demands(&initial)
        && let Some(next) = ty.workflow.after_assign(&initial)
    {
        let h = history_entry(p, &mut k, Some(initial.clone()), &next, None, now);
        events.push(status_changed(&h));
        entries.push(h);
        k.status = next;
    }
    store::insert_many(c, std::slice::from_ref(&k)).await?;
    for h in &entries {
        record::add_history(c, p.tenant_id, h).await?;
    }
    let values = indexed_values(ty, &k.fields);
    if !values.is_empty() {
        store::set_field_values(c, p.tenant_id, &k.case_type, k.id, &values).await?;
    }
    for (param, a) in alerts {
        link_alert(c, p.tenant_id, param, *a, k.id).await?;
    }

    let mut changes = diff(None, &k);
    if let Value::Object(m) = &mut changes {
        m.insert(
            "reference".into(),
            json!({ "before": null, "after": k.reference }),
        );
        m.insert(
            "case_type".into(),
            json!({ "before": null, "after": k.case_type }),
        );
        if !alerts.is_empty() {
            let ids: Vec<String> = alerts.iter().map(|(_, a)| a.to_string()).collect();
            m.insert("alert_ids".into(), json!({ "before": [], "after": ids }));
        }
    }
    let view = view_of(c, p.tenant_id, k.id).await?;
    let entry = Entry {
        action: "case.created",
        entity_type: "case",
        entity_id: Some(k.id.to_string()),
        changes,
    };
    if demands(&k.status) {
        // The tasks the status opens are audited after the case they belong to.
        audit::append_by(c, now, p, entry).await?;
        let last = entries.last().map(|h| h.id).unwrap_or_else(new_id);
        for t in tasks::enter_status(c, p, k.id, &ty.workflow, &k.status, last, now).await? {
            events.push(event("task.created", json!({ "task": t })));
        }
        emit(c, p.tenant_id, now, &view, events).await?;
    } else {
        // The audit event last: the tenant's audit head stays locked from the append to the
        // commit, and every case created in the tenant meanwhile waits for it.
        emit(c, p.tenant_id, now, &view, events).await?;
        audit::append_by(c, now, p, entry).await?;
    }
    Ok(view)
}

/// Creates the work item of a new SAR (a case of type [`crate::sars::WORK_ITEM_TYPE`] under
/// `parent`, the case the report comes from) in the caller's transaction, audited and
/// announced like any case. Permission checks are the caller's (`sar.edit`).
pub(crate) async fn create_work_item(
    c: &mut dyn Conn,
    p: &Caller,
    title: &str,
    parent: CaseId,
    now: OffsetDateTime,
) -> Result<CaseView> {
    let ty = case_types::of_case(c, p.tenant_id, crate::sars::WORK_ITEM_TYPE).await?;
    let mut k = blank_case(p, &ty, now);
    k.title = title.chars().take(500).collect();
    k.parent_case_id = Some(parent);
    k.priority = Priority::High.as_str().into();
    insert_new(c, p, &ty, k, now, None, &[], json!({})).await
}

/// Moves the SAR work item locked in `o` to the reserved status `filed` (the system's move on
/// a confirmed submission: no rule lookup, since `filed` answers 403 to everyone who asks),
/// with `reason` in its history entry; commits `o` with whatever else it holds.
pub(crate) async fn file_work_item(mut o: Open, p: &Caller, reason: String) -> Result<CaseView> {
    let mut k = o.before.clone();
    let (_, events) = o
        .move_by(
            p,
            &mut k,
            crate::sars::FILED,
            Some(reason),
            Some("file".into()),
        )
        .await?;
    o.commit(p, k, "case.status_changed", events).await
}

/// Links an alert to a case: the alert must be of this tenant, of type `ALERT`, and not linked
/// to another case already.
async fn link_alert(
    c: &mut dyn Conn,
    tenant: TenantId,
    param: &str,
    alert: CaseId,
    case: CaseId,
) -> Result<()> {
    match record::case_type_of(c, tenant, alert.0).await? {
        None => return Err(Error::not_found("alert").with_param(param)),
        Some(t) if t != ALERT => return Err(Error::validation(param, "is not an alert")),
        Some(_) => {}
    }
    if !store::link_alert(c, tenant, alert, case).await? {
        return Err(Error::validation(
            param,
            "this alert is already linked to another case",
        ));
    }
    Ok(())
}

/// `PATCH /cases/{id}` (`case.edit`): the attributes to change.
pub async fn update(
    svc: &Services,
    p: &Caller,
    id: &str,
    patch: Map<String, Value>,
    expected: Option<i64>,
) -> Result<CaseView> {
    p.require(Permission::CaseEdit)?;
    let o = open(svc, p, id, expected).await?;
    update_open(o, p, patch).await
}

/// [`update`] on the case opened in `o`.
pub(crate) async fn update_open(
    o: Open,
    p: &Caller,
    patch: Map<String, Value>,
) -> Result<CaseView> {
    let mut k = o.before.clone();
    for (key, v) in &patch {
        if key == "expected_version" {
            continue;
        }
        if key == "fields"
            && let Some(m) = v.as_object()
        {
            for f in m.keys() {
                check_unlocked(&o.ty.workflow, &k.status, &format!("fields.{f}"))?;
            }
        } else {
            check_unlocked(&o.ty.workflow, &k.status, key)?;
        }
        set_attribute(&o.ty, &mut k, key, v, Mode::Update)?;
    }
    let changed = diff(Some(&o.before), &k);
    if changed.as_object().is_some_and(|m| m.is_empty()) {
        // Nothing changes: no new version, no event.
        return Ok(o.before.into());
    }
    let fields: Vec<String> = changed
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    o.commit(
        p,
        k,
        "case.updated",
        vec![event("case.updated", json!({ "changed": fields }))],
    )
    .await
}

/// `POST /cases/{id}/assign` (`case.assign`): `None` unassigns. Moves the case along the
/// lifecycle's `on_assign` when it applies.
pub async fn assign(
    svc: &Services,
    p: &Caller,
    id: &str,
    to: Option<&str>,
    expected: Option<i64>,
) -> Result<CaseView> {
    p.require(Permission::CaseAssign)?;
    let o = open(svc, p, id, expected).await?;
    assign_open(o, p, to).await
}

/// [`assign`] on the case opened in `o`.
pub(crate) async fn assign_open(mut o: Open, p: &Caller, to: Option<&str>) -> Result<CaseView> {
    check_unlocked(&o.ty.workflow, &o.before.status, "assigned_to")?;
    let mut k = o.before.clone();
    let user = match to {
        Some(v) => Some(person(&mut *o.tx, p.tenant_id, "assigned_to", v).await?),
        None => None,
    };
    k.assigned_to = user.as_ref().map(|u| u.id.0);
    if k.assigned_to == o.before.assigned_to {
        return Ok(o.before.into());
    }
    let data = json!({
        "from": o.before.assigned_to_email, "from_id": o.before.assigned_to,
        "to": user.as_ref().map(|u| u.email.clone()), "to_id": k.assigned_to,
    });
    let a = o.activity(p, &mut k, "assignment", data.clone());
    record::add_activity(&mut *o.tx, p.tenant_id, &a).await?;
    let mut events = vec![event("case.assigned", json!({ "assignment": data }))];
    if user.is_some()
        && let Some(next) = o.ty.workflow.after_assign(&k.status)
        && o.may_leave(&k).await?
    {
        let (_, ev) = o.move_to(p, &mut k, &next, None).await?;
        events.extend(ev);
    }
    o.commit(p, k, "case.assigned", events).await
}

/// `POST /cases/{id}/transitions` (`case.transition`): decided by the lifecycle (the seam for
/// the workflow engine). Answers the case and the new history entry.
pub async fn transition(
    svc: &Services,
    p: &Caller,
    id: &str,
    to: &str,
    reason: Option<&str>,
    expected: Option<i64>,
) -> Result<Moved> {
    p.require(Permission::CaseTransition)?;
    // A blank reason is no reason (the lifecycle then says whether one is needed).
    let reason = reason
        .filter(|r| !r.trim().is_empty())
        .map(|r| validate::text("reason", r, MAX_REASON_CHARS))
        .transpose()?;
    let (mut o, found) = open_for_move(svc, p, id, expected).await?;
    // While approvers decide, the case takes no other move (whatever the rules would say).
    if let Some(q) = found.pending_request {
        return Err(approvals::request_pending(Some(q)));
    }
    // None is pending, and none can be opened while this transaction holds the case's lock:
    // there is nothing to supersede. Nor can a mandatory task be opened meanwhile.
    o.superseded = true;
    if !found.blocking_tasks {
        o.free_to_leave = Some(o.before.status.clone());
    }
    let mut k = o.before.clone();
    if k.case_type == crate::sars::WORK_ITEM_TYPE && to == crate::sars::FILED {
        // Whatever the tenant's stored workflow says (one saved before `filed` was reserved),
        // only a confirmed submission files a report.
        return Err(Error::new(
            Code::StatusReserved,
            "`filed` is set only by casegate, when a submission is confirmed (POST /sars/{id}/submit)",
        )
        .with_param("to"));
    }
    let scope = scope_of(p, &k, &o.ty.workflow, o.now)?;
    let asking = Asking {
        roles: &p.roles,
        scope: &scope,
        now: o.now,
    };
    let d =
        o.ty.workflow
            .decide(&k.status, to, reason.as_deref(), &asking)?;
    if d.approval.is_some() {
        // Approvers are not asked for a move the case could not make.
        o.check_leaving(p, &k).await?;
        let r = approvals::open_request(o, p, &k, d, reason).await?;
        return Ok(Moved::Requested(Box::new(r)));
    }
    let post_actions = d.post_actions.clone();
    let (h, mut events) = o.move_by(p, &mut k, to, reason, d.rule_id).await?;
    with_post_actions(&mut events, &h, &post_actions)?;
    let view = o.commit(p, k, "case.status_changed", events).await?;
    Ok(Moved::Applied(Box::new(view), Box::new(h.into())))
}

/// Hands the rule's post-actions to the dispatcher on the `case.status_changed` event of `h`
/// (they run after commit, from the outbox).
fn with_post_actions(events: &mut [Event], h: &HistoryEntry, actions: &[PostAction]) -> Result<()> {
    if actions.is_empty() {
        return Ok(());
    }
    if let Some(e) = events.iter_mut().find(|e| e.name == "case.status_changed") {
        e.actions = Some(json!({
            "case_id": h.case_id,
            "rule_id": h.rule_id,
            "history_entry_id": h.id,
            "post_actions": serde_json::to_value(actions).map_err(Error::internal)?,
        }));
    }
    Ok(())
}

/// What a transition did: applied at once, or waiting for approval.
#[derive(Clone, Debug)]
pub enum Moved {
    /// The case moved (200 `{"case", "history_entry"}`).
    Applied(Box<CaseView>, Box<HistoryView>),
    /// A request awaits approval (202 `{"request"}`).
    Requested(Box<approvals::RequestView>),
}

/// Applies an approved request `q` to its case (locked in `o`, unchanged since the request):
/// the history entry carries the request, the approvals and their times; the actor is the
/// requester. Commits.
pub(crate) async fn apply_request(
    mut o: Open,
    p: &Caller,
    mut k: StoredCase,
    q: &StoredRequest,
    approvals: Value,
) -> Result<(CaseView, HistoryView)> {
    let mut h = history_entry(
        p,
        &mut k,
        Some(q.from.clone()),
        &q.to,
        q.reason.clone(),
        o.now,
    );
    h.rule_id = q.rule_id.clone();
    h.request_id = Some(q.id);
    h.actor = By {
        id: Some(q.requested_by),
        label: q.requested_by_label.clone(),
    };
    h.approvals = approvals;
    h.requested_at = q.requested_at;
    h.approval_requested_at = Some(q.approval_requested_at);
    h.approval_completed_at = q.approval_completed_at;
    let post_actions: Vec<PostAction> =
        serde_json::from_value(q.post_actions.clone()).map_err(Error::internal)?;
    let (h, mut events) = o.move_with(p, &mut k, h).await?;
    with_post_actions(&mut events, &h, &post_actions)?;
    let view = o.commit(p, k, "case.status_changed", events).await?;
    Ok((view, h.into()))
}

/// `POST /cases/{id}/reopen` (`case.transition`): from a terminal status to `reopen_to`; the
/// disposition is cleared (kept in the activity).
pub async fn reopen(
    svc: &Services,
    p: &Caller,
    id: &str,
    reason: Option<&str>,
    expected: Option<i64>,
) -> Result<CaseView> {
    p.require(Permission::CaseTransition)?;
    let reason = reason_of("reason", reason)?;
    let mut o = open(svc, p, id, expected).await?;
    let mut k = o.before.clone();
    let to = o.ty.workflow.reopen(&k.status)?.to_string();
    let data = json!({ "from": k.status, "to": to, "reason": reason, "cleared_disposition": k.disposition });
    let a = o.activity(p, &mut k, "reopen", data);
    record::add_activity(&mut *o.tx, p.tenant_id, &a).await?;
    k.disposition = None;
    k.disposition_reason = None;
    let (_, mut events) = o.move_to(p, &mut k, &to, Some(reason.clone())).await?;
    events.insert(0, event("case.reopened", json!({ "reason": reason })));
    o.commit(p, k, "case.reopened", events).await
}

/// `POST /cases/{id}/escalate` (`case.escalate`).
pub async fn escalate(
    svc: &Services,
    p: &Caller,
    id: &str,
    reason: Option<&str>,
    escalated_to: Option<&str>,
    expected: Option<i64>,
) -> Result<CaseView> {
    p.require(Permission::CaseEscalate)?;
    let reason = reason_of("reason", reason)?;
    let target = escalated_to
        .ok_or_else(|| Error::validation("escalated_to", "`escalated_to` is required"))?;
    let mut o = open(svc, p, id, expected).await?;
    let mut k = o.before.clone();
    if o.ty.workflow.is_terminal(&k.status) {
        return Err(Error::new(
            Code::InvalidTransition,
            format!(
                "the case is in the terminal status `{}`: reopen it first",
                k.status
            ),
        )
        .with_details(json!({ "allowed": [] })));
    }
    let user = person(&mut *o.tx, p.tenant_id, "escalated_to", target).await?;
    k.escalated = true;
    k.escalated_to = Some(user.id.0);
    let data = json!({ "reason": reason, "escalated_to": user.email, "escalated_to_id": user.id });
    let a = o.activity(p, &mut k, "escalation", data.clone());
    record::add_activity(&mut *o.tx, p.tenant_id, &a).await?;
    let mut events = vec![event("case.escalated", json!({ "escalation": data }))];
    if let Some(next) = o.ty.workflow.after_escalate(&k.status)
        && o.may_leave(&k).await?
    {
        let (_, ev) = o.move_to(p, &mut k, &next, Some(reason)).await?;
        events.extend(ev);
    }
    o.commit(p, k, "case.escalated", events).await
}

/// `POST /cases/{id}/disposition` (`case.dispose`). A decided case answers 409
/// `already_decided`: decisions change through an override.
pub async fn dispose(
    svc: &Services,
    p: &Caller,
    id: &str,
    disposition: &str,
    reason: Option<&str>,
    expected: Option<i64>,
) -> Result<CaseView> {
    p.require(Permission::CaseDispose)?;
    let d = Disposition::parse("disposition", disposition)?;
    let reason = reason_of("reason", reason)?;
    let mut o = open(svc, p, id, expected).await?;
    let mut k = o.before.clone();
    if let Some(cur) = &k.disposition {
        return Err(Error::new(
            Code::AlreadyDecided,
            format!("the case is already decided ({cur}); change the decision with an override"),
        ));
    }
    k.disposition = Some(d.as_str().into());
    k.disposition_reason = Some(reason.clone());
    let data = json!({ "disposition": d.as_str(), "reason": reason });
    let a = o.activity(p, &mut k, "disposition", data.clone());
    record::add_activity(&mut *o.tx, p.tenant_id, &a).await?;
    o.commit(p, k, "case.disposed", vec![event("case.disposed", data)])
        .await
}

/// Input of `POST /cases/{id}/override`.
#[derive(Clone, Debug, Default)]
pub struct OverrideInput {
    /// The decision being replaced (must be the current one).
    pub original_decision: String,
    /// The new decision.
    pub new_decision: String,
    /// Why.
    pub reason: Option<String>,
    /// The approver (id or email), who must hold `approval.decide` and not be the caller.
    pub approved_by: Option<String>,
    /// Optional compare-and-swap.
    pub expected_version: Option<i64>,
}

/// `POST /cases/{id}/override` (`case.override`).
pub async fn override_decision(
    svc: &Services,
    p: &Caller,
    id: &str,
    input: OverrideInput,
) -> Result<OverrideView> {
    p.require(Permission::CaseOverride)?;
    let original = Disposition::parse("original_decision", &input.original_decision)?;
    let new = Disposition::parse("new_decision", &input.new_decision)?;
    if original == new {
        return Err(Error::validation(
            "new_decision",
            "must differ from the original decision",
        ));
    }
    let reason = reason_of("reason", input.reason.as_deref())?;
    let approver_ref = input
        .approved_by
        .ok_or_else(|| Error::validation("approved_by", "`approved_by` is required"))?;
    let mut o = open(svc, p, id, input.expected_version).await?;
    let approver = person(&mut *o.tx, p.tenant_id, "approved_by", &approver_ref).await?;
    if approver.id == p.user_id {
        return Err(Error::new(
            Code::SelfApprovalForbidden,
            "the approver of an override must be someone other than the person overriding",
        )
        .with_param("approved_by"));
    }
    if !permissions_of(&approver.roles).contains(Permission::ApprovalDecide) {
        return Err(Error::new(
            Code::NotAnEligibleApprover,
            "the approver of an override must hold `approval.decide`",
        )
        .with_param("approved_by"));
    }
    let mut k = o.before.clone();
    if k.disposition.as_deref() != Some(original.as_str()) {
        return Err(Error::validation(
            "original_decision",
            match &k.disposition {
                Some(d) => format!("the case's current decision is {d}"),
                None => "the case has no decision to override".to_string(),
            },
        ));
    }
    k.disposition = Some(new.as_str().into());
    k.disposition_reason = Some(reason.clone());
    let data = json!({
        "original_decision": original.as_str(), "new_decision": new.as_str(), "reason": reason,
        "approved_by": approver.email, "approved_by_id": approver.id,
    });
    let a = o.activity(p, &mut k, "override", data.clone());
    record::add_activity(&mut *o.tx, p.tenant_id, &a).await?;
    let view = OverrideView {
        id: a.id,
        case_id: k.id,
        original_decision: original.as_str().into(),
        new_decision: new.as_str().into(),
        reason,
        approved_by: approver.email.clone(),
        approved_by_id: approver.id.0,
        overridden_by: p.audit_label(),
        overridden_by_id: Some(p.user_id.0),
        created_at: o.now,
    };
    o.commit(
        p,
        k,
        "case.decision_overridden",
        vec![event("case.disposed", json!({ "override": data }))],
    )
    .await?;
    Ok(view)
}

/// Adds an entry that does not change the case's attributes (comment, attachment, relation):
/// audited and announced, the case's `updated_at` moves, its version does not.
async fn record_only(
    mut o: Open,
    p: &Caller,
    k: &StoredCase,
    action: &'static str,
    changes: Value,
    extra: Value,
) -> Result<CaseView> {
    store::touch(&mut *o.tx, p.tenant_id, k.id, k.entry_seq, o.now).await?;
    let entry = Entry {
        action,
        entity_type: "case",
        entity_id: Some(k.id.to_string()),
        changes,
    };
    let view = view_of(&mut *o.tx, p.tenant_id, k.id).await?;
    o.finish(p, view, entry, vec![event("case.updated", extra)])
        .await
}

/// `POST /cases/{id}/comments` (`case.edit`).
pub async fn comment(
    svc: &Services,
    p: &Caller,
    id: &str,
    content: Option<&str>,
) -> Result<CommentView> {
    p.require(Permission::CaseEdit)?;
    let content = validate::text("content", content.unwrap_or(""), MAX_COMMENT_CHARS)?;
    let mut o = open(svc, p, id, None).await?;
    let mut k = o.before.clone();
    let m = Comment {
        id: new_id(),
        case_id: k.id,
        seq: next_seq(&mut k),
        author: by_of(p),
        content,
        created_at: o.now,
    };
    record::add_comment(&mut *o.tx, p.tenant_id, &m).await?;
    let view = CommentView::from(m.clone());
    let changes =
        json!({ "comment": { "before": null, "after": { "id": m.id, "content": m.content } } });
    record_only(
        o,
        p,
        &k,
        "case.commented",
        changes,
        json!({ "comment": view }),
    )
    .await?;
    Ok(view)
}

/// A new attachment: an external link or uploaded bytes.
#[derive(Clone, Debug)]
pub enum NewAttachment {
    /// A file kept elsewhere.
    Link {
        /// File name.
        name: String,
        /// Declared media type.
        media_type: String,
        /// `https` URL.
        url: String,
        /// Optional hex SHA-256 the client vouches for.
        sha256: Option<String>,
        /// Optional size.
        size: Option<i64>,
    },
    /// Bytes uploaded to casegate.
    Upload {
        /// File name.
        name: String,
        /// Declared media type.
        media_type: String,
        /// The file.
        bytes: std::sync::Arc<Vec<u8>>,
    },
}

/// `POST /cases/{id}/attachments` (`case.edit`). Uploads are checked (allowed media type,
/// content matching it), stored by SHA-256 in the blob store, then recorded.
pub async fn attach(
    svc: &Services,
    p: &Caller,
    id: &str,
    input: NewAttachment,
) -> Result<AttachmentView> {
    p.require(Permission::CaseEdit)?;
    let (name, media_type, url, sha256, size, stored) = match input {
        NewAttachment::Link {
            name,
            media_type,
            url,
            sha256,
            size,
        } => {
            let name = crate::attachments::file_name(&name)?;
            let media_type = crate::attachments::media_type_syntax("type", &media_type)?;
            let url = crate::attachments::external_url(&url)?;
            if let Some(h) = &sha256
                && !(h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                return Err(Error::validation("sha256", "must be 64 hex digits"));
            }
            if size.is_some_and(|s| s < 0) {
                return Err(Error::validation("size", "must not be negative"));
            }
            (
                name,
                media_type,
                Some(url),
                sha256.map(|h| h.to_ascii_lowercase()),
                size,
                false,
            )
        }
        NewAttachment::Upload {
            name,
            media_type,
            bytes,
        } => {
            let name = crate::attachments::file_name(&name)?;
            let media_type = crate::attachments::check_upload(&media_type, &bytes)?;
            // Check the case exists before writing the file.
            let mut c = svc.db.conn().await?;
            read(&mut *c, p.tenant_id, id).await?;
            drop(c);
            let size = bytes.len() as i64;
            let hash = svc
                .blobs
                .for_tenant(p.tenant_id)
                .put(bytes)
                .await
                .map_err(Error::internal)?;
            (name, media_type, None, Some(hash), Some(size), true)
        }
    };
    let mut o = open(svc, p, id, None).await?;
    let mut k = o.before.clone();
    let a = record::Attachment {
        id: new_id(),
        case_id: k.id,
        seq: next_seq(&mut k),
        name,
        media_type,
        url,
        sha256,
        size,
        stored,
        uploaded_by: by_of(p),
        created_at: o.now,
    };
    record::add_attachment(&mut *o.tx, p.tenant_id, &a).await?;
    let view = AttachmentView::from(a.clone());
    let changes = json!({ "attachment": { "before": null, "after": {
        "id": a.id, "name": a.name, "type": a.media_type, "url": a.url, "sha256": a.sha256, "size": a.size,
    } } });
    record_only(
        o,
        p,
        &k,
        "case.attachment_added",
        changes,
        json!({ "attachment": view }),
    )
    .await?;
    Ok(view)
}

/// `GET /cases/{id}/attachments/{attachment_id}/download` (`case.view`): the record and the
/// open file of a stored attachment.
pub async fn attachment_file(
    svc: &Services,
    p: &Caller,
    id: &str,
    attachment: &str,
) -> Result<(AttachmentView, tokio::fs::File)> {
    p.require(Permission::CaseView)?;
    let aid: Uuid = attachment
        .parse()
        .map_err(|_| Error::not_found("attachment"))?;
    let mut c = svc.db.conn().await?;
    let k = read(&mut *c, p.tenant_id, id).await?;
    let a = record::attachment_of(&mut *c, p.tenant_id, k.id, aid)
        .await?
        .filter(|a| a.stored)
        .ok_or_else(|| Error::not_found("attachment"))?;
    let hash = a.sha256.clone().unwrap_or_default();
    let file = svc
        .blobs
        .for_tenant(p.tenant_id)
        .open(&hash)
        .await
        .map_err(Error::internal)?;
    Ok((a.into(), file))
}

/// Input of `POST /cases/{id}/relations`.
#[derive(Clone, Debug, Default)]
pub struct RelationInput {
    /// `case|alert|party` (with `target_id`).
    pub target_type: Option<String>,
    /// Target id.
    pub target_id: Option<String>,
    /// Or a new party to create and link.
    pub party: Option<PartyInput>,
    /// Label (`subject`, `counterparty`, `related`…), default `related`.
    pub relation: Option<String>,
}

/// A new party.
#[derive(Clone, Debug, Default)]
pub struct PartyInput {
    /// `person|organisation|account|device|address`.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Identifiers object.
    pub identifiers: Option<Value>,
}

/// Party kinds.
pub const PARTY_KINDS: &[&str] = &["person", "organisation", "account", "device", "address"];

fn check_party(input: &PartyInput, prefix: &str) -> Result<(String, String, Value)> {
    if !PARTY_KINDS.contains(&input.kind.as_str()) {
        return Err(Error::validation(
            format!("{prefix}kind"),
            format!("must be one of {}", PARTY_KINDS.join(", ")),
        ));
    }
    let name = validate::text(&format!("{prefix}name"), &input.name, 500)?;
    let identifiers = input.identifiers.clone().unwrap_or_else(|| json!({}));
    let ok = identifiers.as_object().is_some_and(|m| {
        m.len() <= 50
            && m.values()
                .all(|v| v.as_str().is_some_and(|s| s.chars().count() <= 200))
    });
    if !ok {
        return Err(Error::validation(
            format!("{prefix}identifiers"),
            "must be an object of at most 50 strings of at most 200 characters",
        ));
    }
    Ok((input.kind.clone(), name, identifiers))
}

/// `POST /cases/{id}/relations` (`case.edit`).
pub async fn relate(
    svc: &Services,
    p: &Caller,
    id: &str,
    input: RelationInput,
) -> Result<RelationView> {
    p.require(Permission::CaseEdit)?;
    let relation = validate::text(
        "relation",
        input.relation.as_deref().unwrap_or("related"),
        64,
    )?;
    let party = input
        .party
        .as_ref()
        .map(|x| check_party(x, "party."))
        .transpose()?;
    let target_type = match (&party, input.target_type.as_deref()) {
        (Some(_), None | Some("party")) => "party".to_string(),
        (Some(_), Some(_)) => {
            return Err(Error::validation(
                "target_type",
                "a new party is linked as `party`",
            ));
        }
        (None, Some(t @ ("case" | "alert" | "party"))) => t.to_string(),
        (None, Some(_)) => {
            return Err(Error::validation(
                "target_type",
                "must be one of case, alert, party",
            ));
        }
        (None, None) => {
            return Err(Error::validation(
                "target_type",
                "`target_type` is required (or `party`)",
            ));
        }
    };
    let mut o = open(svc, p, id, None).await?;
    let mut k = o.before.clone();
    let mut new_party = Value::Null;
    let target_id = match party {
        Some((kind, name, identifiers)) => {
            new_party = json!({ "kind": kind, "name": name, "identifiers": identifiers });
            let party = record::Party {
                tenant_id: p.tenant_id,
                id: PartyId::new_v4(random_id()),
                kind,
                name,
                identifiers,
                created_by: Some(p.user_id.0),
                created_at: o.now,
            };
            record::add_party(&mut *o.tx, &party).await?;
            party.id.0
        }
        None => {
            let raw = input
                .target_id
                .as_deref()
                .ok_or_else(|| Error::validation("target_id", "`target_id` is required"))?;
            let tid: Uuid = raw
                .parse()
                .map_err(|_| Error::validation("target_id", "must be an id"))?;
            let found = match target_type.as_str() {
                "party" => record::party(&mut *o.tx, p.tenant_id, PartyId(tid))
                    .await?
                    .is_some(),
                t => match record::case_type_of(&mut *o.tx, p.tenant_id, tid).await? {
                    Some(ct) => (ct == ALERT) == (t == "alert"),
                    None => false,
                },
            };
            if !found {
                return Err(Error::not_found(&target_type).with_param("target_id"));
            }
            if tid == k.id.0 {
                return Err(Error::validation(
                    "target_id",
                    "a case cannot be related to itself",
                ));
            }
            tid
        }
    };
    let l = Relation {
        id: new_id(),
        case_id: k.id,
        seq: next_seq(&mut k),
        target_type,
        target_id,
        relation,
        created_by: by_of(p),
        created_at: o.now,
    };
    record::add_relation(&mut *o.tx, p.tenant_id, &l)
        .await
        .map_err(|e| match e {
            casegate_store::StoreError::Conflict { .. } => {
                Error::new(Code::AlreadyExists, "this relation already exists")
                    .with_param("target_id")
            }
            e => e.into(),
        })?;
    let view = RelationView::from(l.clone());
    let changes = json!({ "relation": { "before": null, "after": {
        "id": l.id, "target_type": l.target_type, "target_id": l.target_id, "relation": l.relation,
    } }, "party": { "before": null, "after": new_party } });
    record_only(
        o,
        p,
        &k,
        "case.related",
        changes,
        json!({ "relation": view }),
    )
    .await?;
    Ok(view)
}

/// `POST /parties` (`case.edit`).
pub async fn create_party(svc: &Services, p: &Caller, input: PartyInput) -> Result<PartyView> {
    p.require(Permission::CaseEdit)?;
    let (kind, name, identifiers) = check_party(&input, "")?;
    let now = svc.clock.now();
    let party = record::Party {
        tenant_id: p.tenant_id,
        id: PartyId::new_v4(random_id()),
        kind,
        name,
        identifiers,
        created_by: Some(p.user_id.0),
        created_at: now,
    };
    let mut tx = svc.db.begin().await?;
    record::add_party(&mut *tx, &party).await?;
    let entry = Entry::new("party.created", "party", party.id)
        .change("kind", Value::Null, party.kind.as_str())
        .change("name", Value::Null, party.name.as_str())
        .change("identifiers", Value::Null, party.identifiers.clone());
    audit::append_by(&mut *tx, now, p, entry).await?;
    tx.commit().await?;
    Ok(party.into())
}

/// `GET /parties/{id}` (`case.view`): the party and the cases linking to it.
pub async fn party(svc: &Services, p: &Caller, id: &str) -> Result<PartyView> {
    p.require(Permission::CaseView)?;
    let pid: Uuid = id.parse().map_err(|_| Error::not_found("party"))?;
    let mut c = svc.db.conn().await?;
    let party = record::party(&mut *c, p.tenant_id, PartyId(pid))
        .await?
        .ok_or_else(|| Error::not_found("party"))?;
    let mut view = PartyView::from(party);
    view.relations = record::relations_to(&mut *c, p.tenant_id, "party", pid)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(view)
}

/// Input of `POST /alerts/{id}/disposition`.
#[derive(Clone, Debug, Default)]
pub struct AlertDecision {
    /// `true_positive|false_positive`.
    pub disposition: String,
    /// Why.
    pub reason: Option<String>,
    /// Open (or join) a case.
    pub escalate_to_case: bool,
    /// Join this existing case instead of opening one.
    pub case_id: Option<String>,
    /// Type of the new case (default `AML_INV`).
    pub case_type: Option<String>,
}

/// `POST /alerts/{id}/disposition` (`case.dispose`): records the decision, closes the alert and,
/// for a true positive with `escalate_to_case`, links it to an existing or a new case. All in one
/// transaction. Answers the alert and the case.
pub async fn decide_alert(
    svc: &Services,
    p: &Caller,
    id: &str,
    input: AlertDecision,
) -> Result<(CaseView, Option<CaseView>)> {
    p.require(Permission::CaseDispose)?;
    let d = match input.disposition.as_str() {
        "true_positive" => Disposition::TruePositive,
        "false_positive" => Disposition::FalsePositive,
        _ => {
            return Err(Error::validation(
                "disposition",
                "must be one of true_positive, false_positive",
            ));
        }
    };
    if input.escalate_to_case && d != Disposition::TruePositive {
        return Err(Error::validation(
            "escalate_to_case",
            "only a true positive can be escalated to a case",
        ));
    }
    // Deciding an alert closes it, and entering a terminal status needs a reason.
    let reason = Some(reason_of("reason", input.reason.as_deref())?);
    // The new case, if any, is created first (its own command and events), then linked with
    // the alert's decision in the alert's transaction.
    let mut o = open(svc, p, id, None).await?;
    if o.before.case_type != ALERT {
        return Err(Error::validation("id", "this case is not an alert"));
    }
    if o.before.disposition.is_some() {
        return Err(Error::new(
            Code::AlreadyDecided,
            "the alert is already decided",
        ));
    }
    let mut k = o.before.clone();
    let mut case = None;
    if input.escalate_to_case {
        let target = match &input.case_id {
            Some(cid) => {
                p.require(Permission::CaseEdit)?;
                let found = read(&mut *o.tx, p.tenant_id, cid)
                    .await
                    .map_err(|e| e.with_param("case_id"))?;
                // Locked: the case's record gains an entry in this transaction.
                let mut t = store::lock(&mut *o.tx, p.tenant_id, found.id)
                    .await?
                    .ok_or_else(|| Error::not_found("case").with_param("case_id"))?
                    .case;
                if t.case_type == ALERT {
                    return Err(Error::validation(
                        "case_id",
                        "alerts are escalated into cases, not other alerts",
                    ));
                }
                if !store::link_alert(&mut *o.tx, p.tenant_id, k.id, t.id).await? {
                    return Err(Error::validation(
                        "id",
                        "the alert is already linked to another case",
                    ));
                }
                // The case's own record says which alert joined it, and when.
                let joined = json!({ "alert_id": k.id, "alert_reference": k.reference });
                let a = o.activity(p, &mut t, "alert_linked", joined);
                record::add_activity(&mut *o.tx, p.tenant_id, &a).await?;
                store::touch(&mut *o.tx, p.tenant_id, t.id, t.entry_seq, o.now).await?;
                t.id
            }
            None => {
                p.require(Permission::CaseCreate)?;
                let type_key = input.case_type.clone().unwrap_or_else(|| "AML_INV".into());
                if type_key == ALERT {
                    return Err(Error::validation(
                        "case_type",
                        "alerts are escalated into cases, not other alerts",
                    ));
                }
                // The new case links the alert as it is created.
                new_case_from_alert(&mut o, p, &k, &type_key).await?
            }
        };
        k.parent_case_id = Some(target);
        case = Some(target);
    }
    k.disposition = Some(d.as_str().into());
    k.disposition_reason = reason.clone();
    let data = json!({ "disposition": d.as_str(), "reason": reason, "case_id": case });
    let a = o.activity(p, &mut k, "disposition", data.clone());
    record::add_activity(&mut *o.tx, p.tenant_id, &a).await?;
    let mut events = vec![event("case.disposed", data)];
    if !o.ty.workflow.is_terminal(&k.status)
        && let Some(close) = o.ty.workflow.closing_status().map(str::to_string)
    {
        let (_, ev) = o.move_to(p, &mut k, &close, reason).await?;
        events.extend(ev);
    }
    let tenant = p.tenant_id;
    // The alert is answered as written; the case is read after commit, so it lists the alert.
    let alert = o.commit(p, k, "case.disposed", events).await?;
    let case = match case {
        Some(cid) => {
            let mut c = svc.db.conn().await?;
            store::get(&mut *c, tenant, cid).await?.map(Into::into)
        }
        None => None,
    };
    Ok((alert, case))
}

/// Creates the case an alert escalates into, inside the alert's transaction.
async fn new_case_from_alert(
    o: &mut Open,
    p: &Caller,
    alert: &StoredCase,
    type_key: &str,
) -> Result<CaseId> {
    let ty = case_types::load(&mut *o.tx, p.tenant_id, type_key)
        .await?
        .ok_or_else(|| Error::validation("case_type", format!("unknown case type `{type_key}`")))?;
    if let Some(req) = ty.fields.iter().find(|f| f.required) {
        return Err(Error::validation(
            "case_type",
            format!(
                "`{type_key}` requires the field `{}`: create the case first and pass `case_id`",
                req.key
            ),
        ));
    }
    let mut k = blank_case(p, &ty, o.now);
    k.title = alert.title.clone();
    k.priority = alert.priority.clone();
    k.score = alert.score;
    k.business_unit = alert.business_unit.clone();
    k.reasons = alert.reasons.clone();
    k.screening_id = alert.screening_id.clone();
    k.subject_id = alert.subject_id.clone();
    k.detected_at = alert.detected_at.or(Some(alert.created_at));
    let view = insert_new(
        &mut *o.tx,
        p,
        &ty,
        k,
        o.now,
        Some(format!("escalated from alert {}", alert.reference)),
        &[("id".to_string(), alert.id)],
        json!({ "from_alert": alert.id }),
    )
    .await?;
    Ok(view.id)
}
