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
}

const COLS: &str =
    "tenant_id, id, user_id, kind, message, case_id, data, source_key, created_at, read_at";

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
    })
}

/// Adds `n` unless its reader already has one with its `source_key`; returns whether it did.
pub async fn insert(c: &mut dyn Conn, n: &Notification) -> StoreResult<bool> {
    let added = c
        .execute(
            &format!(
                "INSERT INTO notifications ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (tenant_id, user_id, source_key) DO NOTHING"
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
/// notification, or none when it is not theirs.
pub async fn mark_read(
    c: &mut dyn Conn,
    tenant: TenantId,
    user: UserId,
    id: Uuid,
    now: OffsetDateTime,
) -> StoreResult<Option<Notification>> {
    c.fetch_optional(
        &format!(
            "UPDATE notifications SET read_at = COALESCE(read_at, $4) \
             WHERE tenant_id = $1 AND user_id = $2 AND id = $3 RETURNING {COLS}"
        ),
        &[tenant.into(), user.into(), id.into(), now.into()],
    )
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}
