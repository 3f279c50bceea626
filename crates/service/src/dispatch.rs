//! The outbox dispatcher (DESIGN.md principle 3): after commit, the worker hands each event on.
//! Every event is fanned out into webhook deliveries (`webhooks::fan_out`), in batches; an
//! event without work is marked dispatched by that same update. An event carrying a rule's
//! post-actions is claimed under a lease; each action then runs in its own
//! transaction, which also records it in `post_action_runs` keyed by (event id, action index),
//! so a retried event (a crash, a lost lease, a failing database) skips what already ran: at
//! least once, each action once.
//!
//! An action that cannot be done (the assignee left, the field is locked in the new status) is
//! recorded as failed, audited (`post_action.failed`) and not retried; the others still run. A
//! transient failure (database, conflict) retries the event with exponential backoff; after
//! [`MAX_ATTEMPTS`] the remaining actions are recorded as failed, so nothing disappears silently.
use crate::audit::{self, Actor, Entry};
use crate::notifications::{self, Message};
use crate::tasks::{self, Generated};
use crate::{Code, Error, Result, Services, cases};
use casegate_domain::ids::{CaseId, TenantId};
use casegate_domain::principal::{Caller, Origin, Principal};
use casegate_domain::rules::{PostAction, parse_duration};
use casegate_store::outbox::{self, OutboxEvent, PostActionRun};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use time::Duration;
use uuid::Uuid;

/// How long a claimed event is hidden from other dispatchers while its actions run.
pub const LEASE: Duration = Duration::minutes(5);
/// Attempts at an event's actions before the remaining ones are recorded as failed.
pub const MAX_ATTEMPTS: i64 = 10;
/// Events without work marked dispatched per statement.
const PLAIN_BATCH: i64 = 1000;

/// The work an event carries (see `cases::with_post_actions`).
#[derive(Deserialize)]
struct Plan {
    case_id: Uuid,
    rule_id: Option<String>,
    post_actions: Vec<PostAction>,
}

/// The error a command gives when its post-action has a run recorded already (it ran in an
/// earlier attempt); the dispatcher skips the action.
pub(crate) fn already_ran() -> Error {
    Error::new(Code::AlreadyCompleted, "this post-action ran already")
}

/// Whether trying again later may succeed.
fn transient(e: &Error) -> bool {
    matches!(
        e.code,
        Code::Internal | Code::Unavailable | Code::Timeout | Code::VersionConflict
    )
}

/// The wait before attempt `attempts + 1`: 30 s doubling, at most an hour.
fn backoff(attempts: i64) -> Duration {
    let exp = attempts.clamp(1, 8) - 1;
    Duration::seconds(30 * (1 << exp)).min(Duration::hours(1))
}

/// One round: fans events out to webhooks (which also settles those without work), settles
/// any left unsettled, then runs the post-actions of at most `max` events. Answers how many
/// events it handed on.
pub async fn run(svc: &Services, max: u64) -> Result<u64> {
    let now = svc.clock.now();
    // A plain read first: an idle dispatcher takes no write lock (SQLite has one writer), and
    // a busy one opens no transaction for a step with nothing to do.
    let due = outbox::due(&mut *svc.db.conn().await?, now).await?;
    let mut handled = 0;
    if due.fan_out {
        handled += crate::webhooks::fan_out(svc).await?;
    }
    if due.settle {
        let mut tx = svc.db.begin().await?;
        handled += outbox::settle_plain(&mut *tx, now, PLAIN_BATCH).await?;
        tx.commit().await?;
    }
    if !due.work {
        return Ok(handled);
    }
    for _ in 0..max {
        let now = svc.clock.now();
        let mut tx = svc.db.begin().await?;
        let Some(e) = outbox::claim(&mut *tx, now, now + LEASE).await? else {
            break;
        };
        tx.commit().await?;
        let outcome = carry_out(svc, &e).await;
        let now = svc.clock.now();
        let mut tx = svc.db.begin().await?;
        match outcome {
            Ok(()) => {
                outbox::done(&mut *tx, &e, now).await?;
            }
            Err(err) => {
                tracing::warn!(event_id = %e.id, attempt = e.attempts, code = err.code.as_str(),
                    cause = err.cause.as_deref().unwrap_or(""), "post-actions failed; will retry");
                if e.attempts >= MAX_ATTEMPTS {
                    drop(tx);
                    give_up(svc, &e, &err).await?;
                    tx = svc.db.begin().await?;
                    outbox::done(&mut *tx, &e, now).await?;
                } else {
                    let why = format!("{}: {}", err.code.as_str(), err.message);
                    outbox::retry_at(&mut *tx, &e, now + backoff(e.attempts), &why).await?;
                }
            }
        }
        tx.commit().await?;
        handled += 1;
    }
    Ok(handled)
}

fn plan_of(e: &OutboxEvent) -> Result<Plan> {
    serde_json::from_value(e.actions.clone().unwrap_or(Value::Null)).map_err(Error::internal)
}

/// casegate itself acting for event `e`; its audit events carry the event id as request id.
fn system(e: &OutboxEvent) -> Caller {
    Caller {
        principal: Arc::new(Principal::system(e.tenant_id)),
        origin: Origin {
            ip: None,
            request_id: Some(format!("event:{}", e.id)),
        },
    }
}

fn type_of(a: &PostAction) -> &'static str {
    match a {
        PostAction::CreateTask { .. } => "create_task",
        PostAction::Assign { .. } => "assign",
        PostAction::SetField { .. } => "set_field",
        PostAction::Notify { .. } => "notify",
        PostAction::EmitEvent { .. } => "emit_event",
    }
}

/// The actions of `e` without a recorded run, each with the run it would record (`done`).
async fn not_run<'p>(
    svc: &Services,
    e: &OutboxEvent,
    plan: &'p Plan,
) -> Result<Vec<(PostActionRun, &'p PostAction)>> {
    let ran: Vec<i64> = outbox::runs_of(&mut *svc.db.conn().await?, e.tenant_id, e.id)
        .await?
        .iter()
        .map(|r| r.idx)
        .collect();
    Ok(plan
        .post_actions
        .iter()
        .enumerate()
        .map(|(i, a)| (i as i64, a))
        .filter(|(idx, _)| !ran.contains(idx))
        .map(|(idx, a)| {
            let run = PostActionRun {
                tenant_id: e.tenant_id,
                event_id: e.id,
                idx,
                action_type: type_of(a).into(),
                case_id: plan.case_id,
                outcome: "done".into(),
                error: None,
                ran_at: svc.clock.now(),
            };
            (run, a)
        })
        .collect())
}

/// Runs the actions of `e` that have no run yet. A transient failure stops here (the event is
/// retried); any other failure is recorded against its action.
async fn carry_out(svc: &Services, e: &OutboxEvent) -> Result<()> {
    let plan = plan_of(e)?;
    let sys = system(e);
    for (mut run, a) in not_run(svc, e, &plan).await? {
        run.ran_at = svc.clock.now();
        match one(svc, &sys, e, &plan, a, run.clone()).await {
            Ok(()) => {}
            Err(err) if err.code == Code::AlreadyCompleted => {}
            Err(err) if transient(&err) => return Err(err),
            Err(err) => failed(svc, &plan, run, &err).await?,
        }
    }
    Ok(())
}

/// Records action `run` as failed for good, audited.
async fn failed(svc: &Services, plan: &Plan, mut run: PostActionRun, err: &Error) -> Result<()> {
    run.outcome = "failed".into();
    run.error = Some(format!("{}: {}", err.code.as_str(), err.message));
    run.ran_at = svc.clock.now();
    let mut tx = svc.db.begin().await?;
    if !outbox::record_run(&mut *tx, &run).await? {
        return Ok(());
    }
    let mut entry = Entry::new("post_action.failed", "case", plan.case_id);
    entry.changes = json!({
        "event_id": run.event_id, "rule_id": plan.rule_id, "index": run.idx,
        "action": run.action_type, "code": err.code.as_str(), "message": err.message,
    });
    let origin = Origin {
        ip: None,
        request_id: Some(format!("event:{}", run.event_id)),
    };
    audit::append(
        &mut *tx,
        run.ran_at,
        run.tenant_id,
        &Actor::System,
        &origin,
        entry,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// After the last attempt: every action without a run is recorded as failed.
async fn give_up(svc: &Services, e: &OutboxEvent, err: &Error) -> Result<()> {
    let Ok(plan) = plan_of(e) else {
        // Work that cannot even be read: say so in the trail rather than drop it quietly.
        let mut entry = Entry::new("post_action.failed", "outbox_event", e.id);
        entry.changes = json!({ "event_id": e.id, "event_type": e.event_type,
                                "code": err.code.as_str(), "message": "unreadable post-actions" });
        let mut tx = svc.db.begin().await?;
        audit::append(
            &mut *tx,
            svc.clock.now(),
            e.tenant_id,
            &Actor::System,
            &system(e).origin,
            entry,
        )
        .await?;
        tx.commit().await?;
        return Ok(());
    };
    let last = Error::new(
        err.code,
        format!("gave up after {} attempts: {}", e.attempts, err.message),
    );
    for (run, _) in not_run(svc, e, &plan).await? {
        failed(svc, &plan, run, &last).await?;
    }
    Ok(())
}

/// Carries out one action; its transaction records `run` (or fails with [`already_ran`]).
async fn one(
    svc: &Services,
    sys: &Caller,
    e: &OutboxEvent,
    plan: &Plan,
    a: &PostAction,
    run: PostActionRun,
) -> Result<()> {
    let case = plan.case_id.to_string();
    match a {
        PostAction::Assign { to } => {
            let mut o = cases::open(svc, sys, &case, None).await?;
            o.run = Some(run.clone());
            cases::assign_open(o, sys, Some(to)).await?;
            // Assigning to the current assignee changes nothing and commits nothing: record it.
            settle(svc, &run).await
        }
        PostAction::SetField { field, value } => {
            let mut o = cases::open(svc, sys, &case, None).await?;
            o.run = Some(run.clone());
            let mut fields = Map::new();
            fields.insert(field.clone(), value.clone());
            let patch = Map::from_iter([("fields".to_string(), Value::Object(fields))]);
            cases::update_open(o, sys, patch).await?;
            settle(svc, &run).await
        }
        PostAction::CreateTask {
            title,
            assignee_role,
            due_in,
        } => {
            let due_at = due_in
                .as_deref()
                .and_then(parse_duration)
                .map(|d| e.created_at + d);
            let mut tx = svc.db.begin().await?;
            if !outbox::record_run(&mut *tx, &run).await? {
                return Ok(());
            }
            let g = Generated {
                case_id: CaseId(plan.case_id),
                title,
                assignee_role: assignee_role.as_deref(),
                due_at,
                blocks_status: None,
                source: "post_action",
                source_key: format!("{}#{}", e.id, run.idx),
            };
            let now = svc.clock.now();
            if let Some(t) =
                tasks::open_generated(&mut *tx, e.tenant_id, &sys.origin, g, now).await?
            {
                tasks::announce_created(&mut *tx, e.tenant_id, now, &t).await?;
            }
            tx.commit().await?;
            Ok(())
        }
        PostAction::Notify {
            roles,
            users: named,
            message,
        } => {
            let mut tx = svc.db.begin().await?;
            if !outbox::record_run(&mut *tx, &run).await? {
                return Ok(());
            }
            let readers: Vec<_> = notifications::holders(&mut *tx, e.tenant_id, roles, named)
                .await?
                .into_iter()
                .map(|u| u.id)
                .collect();
            if readers.is_empty() {
                return Err(Error::validation(
                    "users",
                    "nobody active holds these roles or names",
                ));
            }
            let now = svc.clock.now();
            let m = Message {
                kind: "post_action.notify",
                message,
                case_id: Some(CaseId(plan.case_id)),
                data: json!({ "rule_id": plan.rule_id, "event_id": e.id }),
                source_key: format!("{}#{}", e.id, run.idx),
            };
            let sent = notifications::send(&mut *tx, e.tenant_id, &readers, &m, now).await?;
            let mut entry = Entry::new("post_action.notify", "case", plan.case_id);
            entry.changes = json!({ "event_id": e.id, "rule_id": plan.rule_id,
                                    "recipients": sent, "message": message });
            audit::append_by(&mut *tx, now, sys, entry).await?;
            tx.commit().await?;
            Ok(())
        }
        PostAction::EmitEvent { event } => {
            let mut tx = svc.db.begin().await?;
            if !outbox::record_run(&mut *tx, &run).await? {
                return Ok(());
            }
            let view = cases::view_of(&mut *tx, e.tenant_id, CaseId(plan.case_id)).await?;
            let now = svc.clock.now();
            let data = json!({ "case": view, "rule_id": plan.rule_id, "cause_event_id": e.id });
            crate::enqueue(&mut *tx, e.tenant_id, now, event, data, json!({})).await?;
            let mut entry = Entry::new("post_action.emit_event", "case", plan.case_id);
            entry.changes = json!({ "event_id": e.id, "rule_id": plan.rule_id, "event": event });
            audit::append_by(&mut *tx, now, sys, entry).await?;
            tx.commit().await?;
            Ok(())
        }
    }
}

/// Records `run` unless its command already did (in the same transaction as its change).
async fn settle(svc: &Services, run: &PostActionRun) -> Result<()> {
    let mut tx = svc.db.begin().await?;
    outbox::record_run(&mut *tx, run).await?;
    tx.commit().await?;
    Ok(())
}

/// Purges up to `max` outbox events settled longer than the outbox retention ago
/// ([`crate::ServiceConfig::outbox_retention`]), with their post-action runs, in one
/// transaction; answers how many went. A plain read first, so an idle worker takes no write
/// lock.
pub async fn purge_settled(svc: &Services, max: i64) -> Result<u64> {
    let before = svc.clock.now() - svc.config.outbox_retention;
    if !outbox::any_settled_before(&mut *svc.db.conn().await?, before).await? {
        return Ok(0);
    }
    let mut tx = svc.db.begin().await?;
    let purged = outbox::purge_settled(&mut *tx, before, max).await?;
    tx.commit().await?;
    Ok(purged)
}

/// The runs of an event's post-actions, for operators and tests.
pub async fn runs_of(svc: &Services, tenant: TenantId, event: Uuid) -> Result<Vec<PostActionRun>> {
    Ok(outbox::runs_of(&mut *svc.db.conn().await?, tenant, event).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_thirty_seconds_to_an_hour() {
        assert_eq!(backoff(1), Duration::seconds(30));
        assert_eq!(backoff(2), Duration::seconds(60));
        assert_eq!(backoff(5), Duration::seconds(480));
        assert_eq!(backoff(8), Duration::hours(1));
        assert_eq!(backoff(50), Duration::hours(1));
    }

    #[test]
    fn only_infrastructure_failures_are_retried() {
        assert!(transient(&Error::internal("db down")));
        assert!(!transient(&Error::validation("to", "no such user")));
        assert!(!transient(&Error::not_found("user")));
    }
}
