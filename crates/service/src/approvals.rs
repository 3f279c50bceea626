//! Approval gates (API.md "Approvals", docs/workflows.md): transition requests, the
//! approver's inbox, decisions and the timer.
//!
//! Lock order, the same on every path so concurrent commands never deadlock: the case row, then
//! the request row, then the tenant's audit head. A decision therefore locks the case first even
//! when it will not move it; the timer never touches the case (escalating or expiring leaves
//! its status alone) and takes request rows with `SKIP LOCKED`.
use crate::audit::{self, Actor, Entry};
use crate::case_views::{CaseView, HistoryView};
use crate::cases::{self, Open};
use crate::{Code, Error, Page, Result, Services};
use casegate_domain::approval::{
    Approver, Outcome, Request, RequestStatus, TierState, Timed, Verdict,
};
use casegate_domain::clock::{serialize_opt_wire_time, serialize_wire_time};
use casegate_domain::ids::{CaseId, TenantId};
use casegate_domain::lifecycle::Decision;
use casegate_domain::principal::{Caller, Origin};
use casegate_domain::rbac::Permission;
use casegate_domain::validate;
use casegate_store::cases::StoredCase;
use casegate_store::requests::{self as store, Filter, StoredRequest};
use casegate_store::{Conn, Tx};
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

/// Longest approval comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 4_000;

/// A transition request as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RequestView {
    /// Request id.
    pub id: Uuid,
    /// The case.
    #[schema(value_type = String, format = Uuid)]
    pub case_id: CaseId,
    /// Status left.
    pub from: String,
    /// Status asked for.
    pub to: String,
    /// The rule that asked for approval.
    pub rule_id: Option<String>,
    /// Requester (email or label).
    pub requested_by: String,
    /// Requester id.
    pub requested_by_id: Uuid,
    /// Why.
    pub reason: Option<String>,
    /// `pending|approved|applied|rejected|expired|cancelled|superseded`.
    pub status: String,
    /// Index of the tier taking decisions.
    pub current_tier: usize,
    /// Tiers with their slots, decisions and deadlines.
    #[schema(value_type = Vec<Object>)]
    pub tiers: Vec<TierState>,
    /// Whether the requester is barred and one person fills one slot.
    pub separation_of_duties: bool,
    /// When the move was asked for.
    #[serde(serialize_with = "serialize_wire_time")]
    pub requested_at: OffsetDateTime,
    /// When approvers were first asked.
    #[serde(serialize_with = "serialize_wire_time")]
    pub approval_requested_at: OffsetDateTime,
    /// When it stopped waiting.
    #[serde(serialize_with = "serialize_opt_wire_time")]
    pub approval_completed_at: Option<OffsetDateTime>,
    /// When the move was applied.
    #[serde(serialize_with = "serialize_opt_wire_time")]
    pub effective_at: Option<OffsetDateTime>,
    /// Grows by one on every change.
    pub version: i64,
}

/// The approval state of a stored request (the `status` column is authoritative).
fn state_of(q: &StoredRequest) -> Result<Request> {
    let mut r: Request = serde_json::from_value(q.approval.clone()).map_err(Error::internal)?;
    r.status = RequestStatus::parse(&q.status)
        .ok_or_else(|| Error::internal(format!("request status {}", q.status)))?;
    Ok(r)
}

fn view_of(q: &StoredRequest) -> Result<RequestView> {
    Ok(view(q, &state_of(q)?))
}

/// The view of `q` whose approval state `r` is already read.
fn view(q: &StoredRequest, r: &Request) -> RequestView {
    RequestView {
        id: q.id,
        case_id: q.case_id,
        from: q.from.clone(),
        to: q.to.clone(),
        rule_id: q.rule_id.clone(),
        requested_by: q.requested_by_label.clone(),
        requested_by_id: q.requested_by,
        reason: q.reason.clone(),
        status: q.status.clone(),
        current_tier: r.current_tier,
        tiers: r.tiers.clone(),
        separation_of_duties: r.separation_of_duties,
        requested_at: q.requested_at,
        approval_requested_at: q.approval_requested_at,
        approval_completed_at: q.approval_completed_at,
        effective_at: q.effective_at,
        version: q.version,
    }
}

/// Writes `r` back into `q` (status, tier, document, next timer time), bumping the version.
fn store_state(q: &mut StoredRequest, r: &Request, now: OffsetDateTime) -> Result<()> {
    q.status = r.status.as_str().to_string();
    q.current_tier = r.current_tier as i64;
    q.approval = serde_json::to_value(r).map_err(Error::internal)?;
    q.next_due_at = r.next_due();
    if r.status != RequestStatus::Pending && q.approval_completed_at.is_none() {
        q.approval_completed_at = Some(now);
    }
    q.updated_at = now;
    q.version += 1;
    Ok(())
}

async fn save(c: &mut dyn Conn, q: &StoredRequest) -> Result<()> {
    if !store::update(c, q, q.version - 1).await? {
        return Err(Error::new(
            Code::VersionConflict,
            "the request changed meanwhile; read it again",
        ));
    }
    Ok(())
}

/// Puts `name` in the outbox with the request `v` (of `q`) and the fields of `extra`.
async fn announce(
    c: &mut dyn Conn,
    q: &StoredRequest,
    v: &RequestView,
    now: OffsetDateTime,
    name: &str,
    extra: Value,
) -> Result<()> {
    crate::enqueue(c, q.tenant_id, now, name, json!({ "request": v }), extra).await
}

/// The approvers asked by tier `t` of `r`, as `{"tier", "roles", "users"}` for events.
fn asked(r: &Request, t: usize) -> Value {
    let tier = &r.tiers[t];
    let open = tier.slots.iter().filter(|s| s.decision.is_none());
    let roles: Vec<&String> = open.clone().filter_map(|s| s.role.as_ref()).collect();
    let users: Vec<&String> = open.filter_map(|s| s.user.as_ref()).collect();
    json!({ "tier": tier.name, "deadline_at": tier.deadline_at.map(casegate_domain::clock::wire_time), "roles": roles, "users": users })
}

/// Opens a request for a move that `d` says needs approval (inside `cases::transition`, the
/// case locked and unchanged): 409 `request_pending` when one is already waiting.
pub(crate) async fn open_request(
    mut o: Open,
    p: &Caller,
    k: &StoredCase,
    d: Decision,
    reason: Option<String>,
) -> Result<RequestView> {
    let policy = d
        .approval
        .as_ref()
        .ok_or_else(|| Error::internal("a request needs an approval policy"))?;
    let r = Request::open(policy, p.user_id.0, o.now);
    let q = StoredRequest {
        tenant_id: p.tenant_id,
        id: Uuid::from_bytes(crate::random_id()),
        case_id: k.id,
        case_version: k.version,
        from: k.status.clone(),
        to: d.to.clone(),
        rule_id: d.rule_id.clone(),
        requested_by: p.user_id.0,
        requested_by_label: p.audit_label(),
        reason,
        status: RequestStatus::Pending.as_str().into(),
        current_tier: 0,
        approval: serde_json::to_value(&r).map_err(Error::internal)?,
        post_actions: serde_json::to_value(&d.post_actions).map_err(Error::internal)?,
        requested_at: o.now,
        approval_requested_at: o.now,
        approval_completed_at: None,
        effective_at: None,
        next_due_at: r.next_due(),
        updated_at: o.now,
        version: 1,
    };
    store::insert(&mut *o.tx, &q).await.map_err(|e| match e {
        casegate_store::StoreError::Conflict { constraint } if constraint == store::ONE_PENDING => {
            request_pending(None)
        }
        e => e.into(),
    })?;
    let entry = Entry::new("transition_request.created", "transition_request", q.id)
        .change("status", Value::Null, "pending")
        .change("case_id", Value::Null, k.id.to_string())
        .change("from", Value::Null, q.from.as_str())
        .change("to", Value::Null, q.to.as_str())
        .change("rule_id", Value::Null, q.rule_id.clone());
    audit::append_by(&mut *o.tx, o.now, p, entry).await?;
    let v = view(&q, &r);
    announce(&mut *o.tx, &q, &v, o.now, "transition.requested", json!({})).await?;
    announce(
        &mut *o.tx,
        &q,
        &v,
        o.now,
        "approval.requested",
        asked(&r, 0),
    )
    .await?;
    o.tx.commit().await?;
    Ok(v)
}

/// 409 `request_pending`, naming the waiting request when known.
pub(crate) fn request_pending(id: Option<Uuid>) -> Error {
    let e = Error::new(
        Code::RequestPending,
        "a transition request is already waiting for approval on this case: decide or cancel it first",
    );
    match id {
        Some(id) => e.with_details(json!({ "request_id": id })),
        None => e,
    }
}

/// The case's pending request, as shown on `GET /cases/{id}`.
pub(crate) async fn pending_of(
    c: &mut dyn Conn,
    tenant: TenantId,
    case: CaseId,
) -> Result<Option<RequestView>> {
    store::pending_for_case(c, tenant, case)
        .await?
        .as_ref()
        .map(view_of)
        .transpose()
}

fn parse_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| Error::not_found("transition request"))
}

/// `GET /transition-requests/{id}` (`case.view`).
pub async fn get(svc: &Services, p: &Caller, id: &str) -> Result<RequestView> {
    p.require(Permission::CaseView)?;
    let mut c = svc.db.conn().await?;
    let q = store::get(&mut *c, p.tenant_id, parse_id(id)?)
        .await?
        .ok_or_else(|| Error::not_found("transition request"))?;
    view_of(&q)
}

/// Filters of `GET /approvals`.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    /// `status` (default `pending`; `all` for every status).
    pub status: Option<String>,
    /// Only requests the caller can decide now.
    pub mine: bool,
    /// Only this case's (id).
    pub case_id: Option<String>,
    /// `-requested_at` (default, newest first) or `requested_at` (oldest first).
    pub sort: Option<String>,
}

/// A page of requests and how many match.
#[derive(Clone, Debug)]
pub struct RequestPage {
    /// The page.
    pub requests: Vec<RequestView>,
    /// Matches in all.
    pub total: i64,
}

/// Rows read per round when `mine=true` filters in memory.
const SCAN_BATCH: i64 = 500;

/// `GET /approvals` (`case.view`): newest first unless `sort=requested_at`. With `mine=true`,
/// only pending requests whose current tier has an open slot the caller may fill (worked out
/// by the same domain code that checks a decision, and empty without `approval.decide`, so
/// the inbox and the decision never disagree).
pub async fn list(svc: &Services, p: &Caller, q: ListQuery, page: Page) -> Result<RequestPage> {
    p.require(Permission::CaseView)?;
    let status = match q.status.as_deref().unwrap_or("pending") {
        "all" => None,
        s => Some(
            RequestStatus::parse(s)
                .ok_or_else(|| {
                    Error::validation(
                        "status",
                        "status must be pending, approved, applied, rejected, expired, cancelled, superseded or all",
                    )
                })?
                .as_str()
                .to_string(),
        ),
    };
    let case_id = q
        .case_id
        .as_deref()
        .map(|s| {
            Uuid::parse_str(s)
                .map(CaseId)
                .map_err(|_| Error::validation("case_id", "case_id must be a case id"))
        })
        .transpose()?;
    let oldest_first = match q.sort.as_deref() {
        None | Some("-requested_at") => false,
        Some("requested_at") => true,
        Some(_) => {
            return Err(Error::validation(
                "sort",
                "sort must be -requested_at or requested_at",
            ));
        }
    };
    let mine = q.mine;
    let f = Filter {
        status: if mine { Some("pending".into()) } else { status },
        case_id,
        oldest_first,
    };
    let mut c = svc.db.conn().await?;
    if !mine {
        let requests = store::list(&mut *c, p.tenant_id, &f, page.limit, page.offset)
            .await?
            .iter()
            .map(view_of)
            .collect::<Result<_>>()?;
        let total = store::count(&mut *c, p.tenant_id, &f).await?;
        return Ok(RequestPage { requests, total });
    }
    let mut out = RequestPage {
        requests: Vec::new(),
        total: 0,
    };
    if p.require(Permission::ApprovalDecide).is_err() {
        return Ok(out);
    }
    // Eligibility lives in the approval document, so the pending requests are scanned in
    // batches (pending requests are few next to cases).
    let me = approver_of(p);
    let mut from = 0;
    loop {
        let rows = store::list(&mut *c, p.tenant_id, &f, SCAN_BATCH, from).await?;
        for q in &rows {
            let r = state_of(q)?;
            if !r.awaits(&me) {
                continue;
            }
            if out.total >= page.offset && (out.requests.len() as i64) < page.limit {
                out.requests.push(view(q, &r));
            }
            out.total += 1;
        }
        if (rows.len() as i64) < SCAN_BATCH {
            return Ok(out);
        }
        from += SCAN_BATCH;
    }
}

fn approver_of(p: &Caller) -> Approver {
    Approver {
        id: p.user_id.0,
        email: p.email.clone(),
        label: p.audit_label(),
        roles: p.roles.clone(),
    }
}

/// What a decision answered: the request, and when it applied the move, the case and entry.
#[derive(Clone, Debug)]
pub struct Decided {
    /// The request as now stored.
    pub request: RequestView,
    /// The moved case and its history entry, when this was the last approval.
    pub applied: Option<(CaseView, HistoryView)>,
}

/// `POST /transition-requests/{id}/approve` (`approval.decide`). The last approval needed
/// applies the move in the same transaction.
pub async fn approve(
    svc: &Services,
    p: &Caller,
    id: &str,
    comment: Option<&str>,
) -> Result<Decided> {
    let comment = comment
        .filter(|c| !c.trim().is_empty())
        .map(|c| validate::text("comment", c, MAX_COMMENT_CHARS))
        .transpose()?;
    decide(svc, p, id, Verdict::Approved, comment).await
}

/// `POST /transition-requests/{id}/reject` (`approval.decide`): `comment` is required. One
/// rejection vetoes the request.
pub async fn reject(
    svc: &Services,
    p: &Caller,
    id: &str,
    comment: Option<&str>,
) -> Result<Decided> {
    let comment = match comment.filter(|c| !c.trim().is_empty()) {
        Some(c) => validate::text("comment", c, MAX_COMMENT_CHARS)?,
        None => return Err(Error::validation("comment", "a rejection needs a comment")),
    };
    decide(svc, p, id, Verdict::Rejected, Some(comment)).await
}

/// Locks the request's case, then the request (the module's lock order).
async fn lock_both(svc: &Services, p: &Caller, id: &str) -> Result<(Open, StoredRequest)> {
    let rid = parse_id(id)?;
    let case_id = {
        let mut c = svc.db.conn().await?;
        store::get(&mut *c, p.tenant_id, rid)
            .await?
            .ok_or_else(|| Error::not_found("transition request"))?
            .case_id
    };
    let mut o = cases::open(svc, p, &case_id.to_string(), None).await?;
    let q = store::lock(&mut *o.tx, p.tenant_id, rid)
        .await?
        .ok_or_else(|| Error::not_found("transition request"))?;
    // Read the time once both locks are held: a timer may have acted while this waited.
    o.now = svc.clock.now();
    Ok((o, q))
}

async fn decide(
    svc: &Services,
    p: &Caller,
    id: &str,
    verdict: Verdict,
    comment: Option<String>,
) -> Result<Decided> {
    p.require(Permission::ApprovalDecide)?;
    let (mut o, mut q) = lock_both(svc, p, id).await?;
    let mut r = state_of(&q)?;
    let now = o.now;
    if r.status == RequestStatus::Pending
        && let Some(why) = stale(&o, &q)
    {
        // Commit the supersession, then say why the decision cannot be taken.
        r.end(RequestStatus::Superseded)?;
        store_state(&mut q, &r, now)?;
        save(&mut *o.tx, &q).await?;
        let entry = Entry::new("transition_request.superseded", "transition_request", q.id)
            .change("status", "pending", "superseded")
            .change("why", Value::Null, why);
        audit::append_by(&mut *o.tx, now, p, entry).await?;
        o.tx.commit().await?;
        return Err(Error::new(
            Code::RequestNotPending,
            format!("the request is superseded: {why}"),
        ));
    }
    let tier = r.current_tier;
    let outcome = r.decide(&approver_of(p), verdict, comment.clone(), now)?;
    if outcome == Outcome::Approved {
        r.end(RequestStatus::Applied)?;
        q.effective_at = Some(now);
    }
    store_state(&mut q, &r, now)?;
    save(&mut *o.tx, &q).await?;
    let mut entry = Entry::new("transition_request.decided", "transition_request", q.id)
        .change("tier", Value::Null, r.tiers[tier].name.as_str())
        .change("decision", Value::Null, json!(verdict))
        .change("comment", Value::Null, comment);
    if q.status != RequestStatus::Pending.as_str() {
        entry = entry.change("status", "pending", q.status.as_str());
    }
    audit::append_by(&mut *o.tx, now, p, entry).await?;
    let v = view(&q, &r);
    let (event, extra) = match outcome {
        Outcome::Recorded => (None, Value::Null),
        Outcome::NextTier => (Some("approval.requested"), asked(&r, r.current_tier)),
        Outcome::Rejected => (Some("transition.rejected"), json!({})),
        Outcome::Approved => (Some("transition.approved"), json!({})),
    };
    if let Some(event) = event {
        announce(&mut *o.tx, &q, &v, now, event, extra).await?;
    }
    let applied = if outcome == Outcome::Approved {
        let k = o.before.clone();
        Some(cases::apply_request(o, p, k, &q, r.decisions()).await?)
    } else {
        o.tx.commit().await?;
        None
    };
    Ok(Decided {
        request: v,
        applied,
    })
}

/// Why a pending request no longer fits its case: the case moved or changed (every change
/// supersedes at once; this is the check at the point of decision), or the workflow lost the
/// rule or target status that the request was made under.
fn stale(o: &Open, q: &StoredRequest) -> Option<&'static str> {
    let k = &o.before;
    if k.status != q.from || k.version != q.case_version {
        return Some("the case changed since the request");
    }
    let w = &o.ty.workflow;
    let rule_kept = q.rule_id.as_ref().is_none_or(|id| {
        w.rules
            .iter()
            .any(|r| &r.id == id && r.to == q.to && r.approval.is_some())
    });
    if w.status(&q.to).is_none() || !rule_kept {
        return Some("the workflow no longer has the rule or status the request was made under");
    }
    None
}

/// `POST /transition-requests/{id}/cancel`: the requester, or an administrator
/// (`workflow.admin`), withdraws a pending request.
pub async fn cancel(svc: &Services, p: &Caller, id: &str) -> Result<RequestView> {
    p.require(Permission::CaseView)?;
    let (mut o, mut q) = lock_both(svc, p, id).await?;
    if q.requested_by != p.user_id.0 && p.require(Permission::WorkflowAdmin).is_err() {
        return Err(Error::new(
            Code::Forbidden,
            "only the requester or an administrator can cancel a transition request",
        ));
    }
    let mut r = state_of(&q)?;
    r.end(RequestStatus::Cancelled)?;
    store_state(&mut q, &r, o.now)?;
    save(&mut *o.tx, &q).await?;
    let entry = Entry::new("transition_request.cancelled", "transition_request", q.id).change(
        "status",
        "pending",
        "cancelled",
    );
    audit::append_by(&mut *o.tx, o.now, p, entry).await?;
    o.tx.commit().await?;
    Ok(view(&q, &r))
}

/// Marks the case's pending request superseded (the case changed under it), audited, inside
/// the caller's transaction.
pub(crate) async fn supersede(
    c: &mut dyn Conn,
    p: &Caller,
    case: CaseId,
    now: OffsetDateTime,
) -> Result<()> {
    if let Some(id) = store::supersede_pending(c, p.tenant_id, case, now).await? {
        let entry = Entry::new("transition_request.superseded", "transition_request", id).change(
            "status",
            "pending",
            "superseded",
        );
        audit::append_by(c, now, p, entry).await?;
    }
    Ok(())
}

/// How long a request whose timer failed waits before the next attempt.
const TIMER_RETRY: time::Duration = time::Duration::minutes(5);

/// The timer: handles up to `max` due requests (reminders, escalations, expiries), each in a
/// transaction of its own holding the request's row lock, so two workers never fire one
/// request twice. A request that fails is logged and postponed, so it never holds up the
/// others. Returns how many requests it handled.
pub async fn run_timers(svc: &Services, max: u64) -> Result<u64> {
    let mut done = 0;
    while done < max {
        let now = svc.clock.now();
        // A plain read first: an idle timer takes no write lock (SQLite has one writer).
        if !store::any_due(&mut *svc.db.conn().await?, now).await? {
            break;
        }
        let mut tx = svc.db.begin().await?;
        let Some(q) = store::claim_due(&mut *tx, now).await? else {
            break;
        };
        let (tenant, id) = (q.tenant_id, q.id);
        if let Err(e) = fire(tx, q, now).await {
            tracing::warn!(request_id = %id, code = e.code.as_str(),
                cause = e.cause.as_deref().unwrap_or(""), "approval timer failed");
            let mut tx = svc.db.begin().await?;
            store::postpone(&mut *tx, tenant, id, now + TIMER_RETRY).await?;
            tx.commit().await?;
        }
        done += 1;
    }
    Ok(done)
}

/// Fires what is due on the claimed request `q` and commits.
async fn fire(mut tx: Box<dyn Tx>, mut q: StoredRequest, now: OffsetDateTime) -> Result<()> {
    let mut r = state_of(&q)?;
    let mut fired = Vec::new();
    while let Some(t) = r.tick(now) {
        fired.push(t);
    }
    store_state(&mut q, &r, now)?;
    save(&mut *tx, &q).await?;
    let v = view(&q, &r);
    for t in fired {
        let (action, event, extra) = match &t {
            Timed::Reminder { tier } => (
                "transition_request.reminded",
                "approval.reminder",
                asked(&r, *tier),
            ),
            Timed::Escalated { tier, role, user } => (
                "transition_request.escalated",
                "approval.escalated",
                json!({ "tier": r.tiers[*tier].name, "role": role, "user": user,
                        "deadline_at": r.tiers[*tier].deadline_at.map(casegate_domain::clock::wire_time) }),
            ),
            Timed::Expired { tier } => (
                "transition_request.expired",
                "transition.expired",
                json!({ "tier": r.tiers[*tier].name }),
            ),
        };
        let mut entry = Entry::new(action, "transition_request", q.id);
        entry.changes = extra.clone();
        if matches!(t, Timed::Expired { .. }) {
            entry = entry.change("status", "pending", "expired");
        }
        audit::append(
            &mut *tx,
            now,
            q.tenant_id,
            &Actor::System,
            &Origin::default(),
            entry,
        )
        .await?;
        announce(&mut *tx, &q, &v, now, event, extra).await?;
    }
    tx.commit().await?;
    Ok(())
}
