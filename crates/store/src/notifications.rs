//! The in-app inbox: one row per message per person. A `source_key` makes writing one
//! idempotent (a retried post-action does not notify twice).
use crate::{Conn, Row, StoreResult, Where, page_clause};
use casegate_domain::ids::{CaseId, TenantId, UserId};
use serde_json::Value as Json;
use time::OffsetDateTime;
use uuid::Uuid;

/// One notification.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Notification id.
    pub id: Uuid,
    /// Its reader.
    pub user_id: UserId,
    /// What it is about (`post_action.notify`, …).
    pub kind: String,
    /// The text.
    pub message: String,
    /// The case it concerns.
    pub case_id: Option<CaseId>,
    /// Structured context (rule, event).
    pub data: Json,
    /// Idempotency key, unique per reader.
    pub source_key: String,
    /// When it was written.
    pub created_at: OffsetDateTime,
    /// When its reader marked it read.
    pub read_at: Option<OffsetDateTime>,
    /// The e-mail copy: none, `pending`, `sent`, `failed` or `expired`.
    pub email_state: Option<String>,
    /// When the e-mail copy was accepted by the SMTP server.
    pub emailed_at: Option<OffsetDateTime>,
}

const COLS: &str = "tenant_id, id, user_id, kind, message, case_id, data, source_key, created_at, \
                    read_at, email_state, emailed_at";

fn from_row(r: &Row) -> StoreResult<Notification> {
    Ok(Notification {
        tenant_id: TenantId(r.uuid("tenant_id")?),
        id: r.uuid("id")?,
        user_id: UserId(r.uuid("user_id")?),
        kind: r.text("kind")?,
        message: r.text("message")?,
        case_id: r.opt_uuid("case_id")?.map(CaseId),
        data: r.json("data")?,
        source_key: r.text("source_key")?,
        created_at: r.time("created_at")?,
        read_at: r.opt_time("read_at")?,
        email_state: r.opt_text("email_state")?,
        emailed_at: r.opt_time("emailed_at")?,
    })
}

/// Adds `n` unless its reader already has one with its `source_key`; returns whether it did.
pub async fn insert(c: &mut dyn Conn, n: &Notification) -> StoreResult<bool> {
    let added = c
        .execute(
            &format!(
                "INSERT INTO notifications ({COLS}, email_next_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (tenant_id, user_id, source_key) DO NOTHING"
            ),
            &[
                n.tenant_id.into(),
                n.id.into(),
                n.user_id.into(),
                n.kind.as_str().into(),
                n.message.as_str().into(),
                n.case_id.into(),
                n.data.clone().into(),
                n.source_key.as_str().into(),
                n.created_at.into(),
                n.read_at.into(),
                n.email_state.as_deref().into(),
                n.emailed_at.into(),
                // A pending copy is due at once.
                n.email_state.as_ref().map(|_| n.created_at).into(),
            ],
        )
        .await?;
    Ok(added == 1)
}

fn filtered(tenant: TenantId, user: UserId, unread_only: bool) -> (String, Vec<crate::Val>) {
    let mut w = Where::tenant("tenant_id", tenant);
    w.push("user_id = ?", [user.into()]);
    if unread_only {
        w.push("read_at IS NULL", []);
    }
    w.finish()
}

/// `user`'s notifications, newest first.
pub async fn list(
    c: &mut dyn Conn,
    tenant: TenantId,
    user: UserId,
    unread_only: bool,
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<Notification>> {
    let (clause, mut args) = filtered(tenant, user, unread_only);
    let page = page_clause(&mut args, limit, offset);
    c.fetch_all(
        &format!(
            "SELECT {COLS} FROM notifications WHERE {clause} \
             ORDER BY created_at DESC, id DESC {page}"
        ),
        &args,
    )
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// How many of `user`'s notifications there are (unread only, or all).
pub async fn count(
    c: &mut dyn Conn,
    tenant: TenantId,
    user: UserId,
    unread_only: bool,
) -> StoreResult<i64> {
    let (clause, args) = filtered(tenant, user, unread_only);
    c.fetch_one(
        &format!("SELECT count(*) AS n FROM notifications WHERE {clause}"),
        &args,
    )
    .await?
    .int("n")
}

/// Marks `user`'s notification `id` read (once: an earlier read time is kept). Answers the
/// notification and whether this call read it first, or none when it is not theirs.
pub async fn mark_read(
    c: &mut dyn Conn,
    tenant: TenantId,
    user: UserId,
    id: Uuid,
    now: OffsetDateTime,
) -> StoreResult<Option<(Notification, bool)>> {
    let args = [tenant.into(), user.into(), id.into(), now.into()];
    if let Some(r) = c
        .fetch_optional(
            &format!(
                "UPDATE notifications SET read_at = $4 \
                 WHERE tenant_id = $1 AND user_id = $2 AND id = $3 AND read_at IS NULL \
                 RETURNING {COLS}"
            ),
            &args,
        )
        .await?
    {
        return Ok(Some((from_row(&r)?, true)));
    }
    c.fetch_optional(
        &format!(
            "SELECT {COLS} FROM notifications WHERE tenant_id = $1 AND user_id = $2 AND id = $3"
        ),
        &args[..3],
    )
    .await?
    .as_ref()
    .map(|r| Ok((from_row(r)?, false)))
    .transpose()
}

/// A claimed e-mail copy: the notification and its reader's address.
#[derive(Clone, Debug, PartialEq)]
pub struct EmailJob {
    /// The notification.
    pub notification: Notification,
    /// The reader's address.
    pub to_email: String,
    /// The reader's name.
    pub to_name: String,
    /// Whether the reader is still active (a disabled reader is not mailed).
    pub to_active: bool,
    /// Attempts including this claim (the claim's token: see [`email_outcome`]).
    pub attempts: i64,
}

/// Whether some copy is pending and due at or before `at` (a plain read, so an idle mailer
/// takes no write lock).
pub async fn email_due_before(c: &mut dyn Conn, at: OffsetDateTime) -> StoreResult<bool> {
    Ok(c.fetch_optional(
        "SELECT 1 AS due FROM notifications \
             WHERE email_state = 'pending' AND email_next_at <= $1 LIMIT 1",
        &[at.into()],
    )
    .await?
    .is_some())
}

/// Gives up on due copies whose notification was written before `written_before` (state
/// `expired`, with `reason`); answers how many.
pub async fn expire_emails(
    c: &mut dyn Conn,
    now: OffsetDateTime,
    written_before: OffsetDateTime,
    reason: &str,
) -> StoreResult<u64> {
    c.execute(
        "UPDATE notifications SET email_state = 'expired', email_next_at = NULL, email_error = $3 \
         WHERE email_state = 'pending' AND email_next_at <= $1 AND created_at < $2",
        &[now.into(), written_before.into(), reason.into()],
    )
    .await
}

/// Claims up to `max` due copies until `lease_until`, soonest due first, passing over rows
/// another sender holds. Across tenants: this is the worker's queue.
pub async fn claim_emails(
    c: &mut dyn Conn,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    max: i64,
) -> StoreResult<Vec<EmailJob>> {
    let lock = c.dialect().row_lock(" FOR UPDATE OF n SKIP LOCKED");
    let cols: String = COLS.split(", ").map(|c| format!("n.{c}, ")).collect();
    let rows = c
        .fetch_all(
            &format!(
                "SELECT {cols}n.email_attempts, u.email AS to_email, u.name AS to_name, u.active AS to_active \
                 FROM notifications n \
                 JOIN users u ON u.tenant_id = n.tenant_id AND u.id = n.user_id \
                 WHERE n.email_state = 'pending' AND n.email_next_at <= $1 \
                 ORDER BY n.email_next_at, n.id LIMIT $2{lock}"
            ),
            &[now.into(), max.into()],
        )
        .await?;
    let mut jobs = Vec::with_capacity(rows.len());
    for r in &rows {
        let n = from_row(r)?;
        c.execute(
            "UPDATE notifications SET email_attempts = email_attempts + 1, email_next_at = $3 \
             WHERE tenant_id = $1 AND id = $2",
            &[n.tenant_id.into(), n.id.into(), lease_until.into()],
        )
        .await?;
        jobs.push(EmailJob {
            to_email: r.text("to_email")?,
            to_name: r.text("to_name")?,
            to_active: r.bool("to_active")?,
            attempts: r.int("email_attempts")? + 1,
            notification: n,
        });
    }
    Ok(jobs)
}

/// How a claimed copy ended.
#[derive(Clone, Debug, PartialEq)]
pub enum EmailOutcome {
    /// Accepted by the SMTP server.
    Sent,
    /// Try again at this time.
    Retry(OffsetDateTime, String),
    /// Given up (a permanent refusal, or too many attempts).
    Failed(String),
}

/// Records how the claim `job` ended, unless the copy was claimed again since (the lease ran
/// out); answers whether this claim was still the copy's.
pub async fn email_outcome(
    c: &mut dyn Conn,
    job: &EmailJob,
    outcome: &EmailOutcome,
    now: OffsetDateTime,
) -> StoreResult<bool> {
    let n = &job.notification;
    let (state, next, sent, error) = match outcome {
        EmailOutcome::Sent => ("sent", None, Some(now), None),
        EmailOutcome::Retry(at, e) => ("pending", Some(*at), None, Some(e.as_str())),
        EmailOutcome::Failed(e) => ("failed", None, None, Some(e.as_str())),
    };
    let changed = c
        .execute(
            "UPDATE notifications SET email_state = $4, email_next_at = $5, emailed_at = $6, \
             email_error = $7 \
             WHERE tenant_id = $1 AND id = $2 AND email_state = 'pending' AND email_attempts = $3",
            &[
                n.tenant_id.into(),
                n.id.into(),
                job.attempts.into(),
                state.into(),
                next.into(),
                sent.into(),
                error.into(),
            ],
        )
        .await?;
    Ok(changed == 1)
}

/// Copies waiting to be e-mailed (the `notification_email_queue_depth` gauge).
pub async fn emails_pending(c: &mut dyn Conn) -> StoreResult<i64> {
    c.fetch_one(
        "SELECT count(*) AS n FROM notifications WHERE email_state = 'pending'",
        &[],
    )
    .await?
    .int("n")
}
