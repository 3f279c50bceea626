//! Background work of `casegate serve --role worker|all`. It polls every `worker_tick`, the
//! outbox and webhook deliveries every (shorter) `delivery_tick`, and stops cleanly when its
//! cancellation token fires (SIGTERM).
//!
//! # Layout
//! - [`Worker`]: the loop and its jobs. Today: purging expired sessions and settled outbox
//!   events past their retention, signing audit checkpoints for tenants whose chain moved,
//!   producing queued audit exports, firing due approval timers (reminders, escalations,
//!   expiries) and e-mailing notifications; on the
//!   delivery lane, dispatching the outbox (rules' post-actions, webhook fan-out) and delivering
//!   webhooks. Each job claims its rows itself (`FOR UPDATE SKIP LOCKED` on PostgreSQL) so
//!   several worker processes can share one database.
#![forbid(unsafe_code)]

use casegate_service::Services;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Audit exports produced per round at most, so other jobs are not starved behind a queue.
const EXPORTS_PER_ROUND: u64 = 4;

/// Approval timers (reminders, escalations, expiries) handled per round at most.
const TIMERS_PER_ROUND: u64 = 100;

/// Outbox events whose post-actions run per round at most.
const POST_ACTIONS_PER_ROUND: u64 = 100;
/// Webhook deliveries sent (concurrently) per round.
const WEBHOOKS_PER_ROUND: i64 = 32;
/// A delivery round that handled fewer items than this found the outbox drained, and the lane
/// waits for its next tick; a fuller one suggests a backlog, and the lane goes round at once.
/// Each round costs a few transactions whatever its size, so under a steady stream of events
/// (a busy API in the same process) going round at once after every item would settle the
/// outbox one event per round, a read and two transactions each (fan-out, delivery claim), on
/// the cores serving requests.
const BACKLOG_ROUND: u64 = 32;
/// Settled outbox events purged per round at most: a thousand a second at the default tick, so
/// a backlog (an upgrade from a version that kept every event) drains without one long delete.
const OUTBOX_PURGE_PER_ROUND: i64 = 1000;
/// Notification e-mails sent per round.
const EMAILS_PER_ROUND: i64 = casegate_service::mail::BATCH;

/// The background worker.
pub struct Worker {
    /// The use cases the jobs call.
    svc: Arc<Services>,
    /// How often to poll (`CASEGATE_WORKER_TICK_MS`).
    tick: Duration,
    /// How often to dispatch the outbox and deliver webhooks (`CASEGATE_DELIVERY_TICK_MS`).
    delivery_tick: Duration,
    /// Minimum time between two automatic audit checkpoints of one tenant.
    checkpoint_every: time::Duration,
}

impl Worker {
    /// A worker polling every `tick`, and the outbox every `delivery_tick`.
    pub fn new(
        svc: Arc<Services>,
        tick: Duration,
        delivery_tick: Duration,
        checkpoint_every: time::Duration,
    ) -> Self {
        Self {
            svc,
            tick,
            delivery_tick,
            checkpoint_every,
        }
    }

    /// Runs one round of every job; returns how many items were processed.
    pub async fn run_once(&self) -> casegate_service::Result<u64> {
        let housekept = self.housekeeping().await?;
        Ok(housekept + self.deliveries().await?)
    }

    /// The delivery lane: the outbox's post-actions and fan-out, then webhook deliveries.
    pub async fn deliveries(&self) -> casegate_service::Result<u64> {
        let dispatched = casegate_service::dispatch::run(&self.svc, POST_ACTIONS_PER_ROUND).await?;
        let delivered = casegate_service::webhooks::deliver(&self.svc, WEBHOOKS_PER_ROUND).await?;
        Ok(dispatched + delivered)
    }

    /// Everything else, each `tick`.
    async fn housekeeping(&self) -> casegate_service::Result<u64> {
        let mut c = self.svc.db.conn().await?;
        let purged = casegate_store::sessions::purge_expired(&mut *c, self.svc.clock.now()).await?;
        drop(c);
        let signed =
            casegate_service::audit::checkpoint_due(&self.svc, self.checkpoint_every).await?;
        let exported = casegate_service::exports::run_pending(&self.svc, EXPORTS_PER_ROUND).await?;
        let timed = casegate_service::approvals::run_timers(&self.svc, TIMERS_PER_ROUND).await?;
        // A failing sweep is logged and must not hold up the e-mail after it.
        let warned = casegate_service::sars::warn_deadlines(&self.svc)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "SAR deadline sweep failed");
                0
            });
        let mailed = casegate_service::mail::send_due(&self.svc, EMAILS_PER_ROUND).await?;
        let dropped =
            casegate_service::dispatch::purge_settled(&self.svc, OUTBOX_PURGE_PER_ROUND).await?;
        Ok(purged + signed + exported + timed + warned + mailed + dropped)
    }

    /// Polls until `cancel` fires. A failing round is logged and retried on the next tick. The
    /// two lanes run concurrently, so a slow housekeeping job (an export, a slow SMTP relay)
    /// never holds up deliveries. The delivery lane goes round again at once while its rounds
    /// come back full (a backlog drains at full speed) and otherwise polls every
    /// `delivery_tick`, taking what arrived meanwhile in one round ([`BACKLOG_ROUND`]).
    pub async fn run(self, cancel: CancellationToken) {
        let housekeeping = async {
            let mut slow = tokio::time::interval(self.tick);
            slow.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = slow.tick() => report(self.housekeeping().await),
                }
            }
        };
        let deliveries = async {
            let mut fast = tokio::time::interval(self.delivery_tick);
            fast.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = fast.tick() => {
                        let mut busy = true;
                        while busy && !cancel.is_cancelled() {
                            let r = self.deliveries().await;
                            busy = matches!(r, Ok(n) if n >= BACKLOG_ROUND);
                            report(r);
                        }
                    }
                }
            }
        };
        tokio::join!(housekeeping, deliveries);
        tracing::info!("worker stopped");
    }
}

fn report(r: casegate_service::Result<u64>) {
    if let Err(e) = r {
        tracing::warn!(
            code = e.code.as_str(),
            cause = e.cause.as_deref().unwrap_or(""),
            "worker round failed"
        );
    }
}
