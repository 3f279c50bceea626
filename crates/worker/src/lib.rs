//! Background work of `casegate serve --role worker|all`. It polls every `worker_tick` and
//! stops cleanly when its cancellation token fires (SIGTERM).
//!
//! # Layout
//! - [`Worker`]: the loop and its jobs. Today: purging expired sessions, signing audit
//!   checkpoints for tenants whose chain moved, producing queued audit exports, firing due
//!   approval timers (reminders, escalations, expiries) and dispatching the outbox (rules'
//!   post-actions). Webhook delivery joins it with its issue; each job claims its rows itself (`FOR UPDATE SKIP LOCKED` on PostgreSQL) so
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

/// The background worker.
pub struct Worker {
    /// The use cases the jobs call.
    svc: Arc<Services>,
    /// How often to poll (`CASEGATE_WORKER_TICK_MS`).
    tick: Duration,
    /// Minimum time between two automatic audit checkpoints of one tenant.
    checkpoint_every: time::Duration,
}

impl Worker {
    /// A worker polling every `tick`.
    pub fn new(svc: Arc<Services>, tick: Duration, checkpoint_every: time::Duration) -> Self {
        Self {
            svc,
            tick,
            checkpoint_every,
        }
    }

    /// Runs one round of every job; returns how many items were processed.
    pub async fn run_once(&self) -> casegate_service::Result<u64> {
        let mut c = self.svc.db.conn().await?;
        let purged = casegate_store::sessions::purge_expired(&mut *c, self.svc.clock.now()).await?;
        drop(c);
        let signed =
            casegate_service::audit::checkpoint_due(&self.svc, self.checkpoint_every).await?;
        let exported = casegate_service::exports::run_pending(&self.svc, EXPORTS_PER_ROUND).await?;
        let timed = casegate_service::approvals::run_timers(&self.svc, TIMERS_PER_ROUND).await?;
        let dispatched = casegate_service::dispatch::run(&self.svc, POST_ACTIONS_PER_ROUND).await?;
        let delivered = casegate_service::webhooks::deliver(&self.svc, WEBHOOKS_PER_ROUND).await?;
        Ok(purged + signed + exported + timed + dispatched + delivered)
    }

    /// Polls until `cancel` fires. A failing round is logged and retried on the next tick.
    pub async fn run(self, cancel: CancellationToken) {
        let mut interval = tokio::time::interval(self.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = interval.tick() => {
                    if let Err(e) = self.run_once().await {
                        tracing::warn!(code = e.code.as_str(), cause = e.cause.as_deref().unwrap_or(""), "worker round failed");
                    }
                }
            }
        }
        tracing::info!("worker stopped");
    }
}
