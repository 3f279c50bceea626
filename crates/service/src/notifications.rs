//! Each person's in-app inbox (`GET /notifications`, `POST /notifications/{id}/read`). Written
//! by `notify` post-actions today; approval requests, reminders and SAR deadlines join with the
//! notification issue.
use crate::{Error, Page, Result, Services, random_id};
use casegate_domain::clock::{serialize_opt_wire_time, serialize_wire_time};
use casegate_domain::ids::{CaseId, TenantId, UserId};
use casegate_domain::principal::Caller;
use casegate_store::Conn;
use casegate_store::notifications::{self as store, Notification};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

/// A notification as its reader sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NotificationView {
    /// Id.
    pub id: Uuid,
    /// What it is about.
    pub kind: String,
    /// The text.
    pub message: String,
    /// The case it concerns.
    pub case_id: Option<Uuid>,
    /// Context.
    pub data: Value,
    /// When.
    #[serde(serialize_with = "serialize_wire_time")]
    pub created_at: OffsetDateTime,
    /// When it was read.
    #[serde(serialize_with = "serialize_opt_wire_time")]
    pub read_at: Option<OffsetDateTime>,
}

impl From<Notification> for NotificationView {
    fn from(n: Notification) -> Self {
        Self {
            id: n.id,
            kind: n.kind,
            message: n.message,
            case_id: n.case_id.map(|c| c.0),
            data: n.data,
            created_at: n.created_at,
            read_at: n.read_at,
        }
    }
}

/// One message to several people, keyed for idempotency.
pub(crate) struct Message<'a> {
    pub(crate) kind: &'a str,
    pub(crate) message: &'a str,
    pub(crate) case_id: Option<CaseId>,
    pub(crate) data: Value,
    /// The same key never notifies the same person twice.
    pub(crate) source_key: String,
}

/// Writes `m` to each of `readers` in the caller's transaction; answers how many were new.
pub(crate) async fn send(
    c: &mut dyn Conn,
    tenant: TenantId,
    readers: &[UserId],
    m: &Message<'_>,
    now: OffsetDateTime,
) -> Result<u64> {
    let mut added = 0;
    for r in readers {
        let n = Notification {
            tenant_id: tenant,
            id: Uuid::from_bytes(random_id()),
            user_id: *r,
            kind: m.kind.into(),
            message: m.message.into(),
            case_id: m.case_id,
            data: m.data.clone(),
            source_key: m.source_key.clone(),
            created_at: now,
            read_at: None,
        };
        added += u64::from(store::insert(c, &n).await?);
    }
    Ok(added)
}

/// One page of the caller's inbox.
#[derive(Clone, Debug)]
pub struct Inbox {
    /// Newest first.
    pub notifications: Vec<NotificationView>,
    /// How many match the filter.
    pub total: i64,
    /// How many are unread in all.
    pub unread: i64,
}

/// `GET /notifications`: the caller's own messages (any authenticated principal), newest first.
pub async fn list(svc: &Services, p: &Caller, unread_only: bool, page: Page) -> Result<Inbox> {
    let mut c = svc.db.conn().await?;
    let (t, u) = (p.tenant_id, p.user_id);
    let notifications = store::list(&mut *c, t, u, unread_only, page.limit, page.offset)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    let total = store::count(&mut *c, t, u, unread_only).await?;
    let unread = if unread_only {
        total
    } else {
        store::count(&mut *c, t, u, true).await?
    };
    Ok(Inbox {
        notifications,
        total,
        unread,
    })
}

/// `POST /notifications/{id}/read`: marks one of the caller's messages read (again: no change).
/// Someone else's answers 404.
pub async fn mark_read(svc: &Services, p: &Caller, id: &str) -> Result<NotificationView> {
    let id = id
        .parse::<Uuid>()
        .map_err(|_| Error::not_found("notification"))?;
    let mut c = svc.db.conn().await?;
    store::mark_read(&mut *c, p.tenant_id, p.user_id, id, svc.clock.now())
        .await?
        .map(Into::into)
        .ok_or_else(|| Error::not_found("notification"))
}
