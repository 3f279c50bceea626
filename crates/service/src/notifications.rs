//! Each person's in-app inbox (`GET /notifications`, `POST /notifications/{id}/read`), and the
//! e-mail copy of each message ([`crate::mail`] sends it after commit).
//!
//! Messages are written in the transaction of what they report, so a person hears of exactly
//! what was committed, once: [`of_event`] turns the outbox events people must hear of
//! (approvals asked, reminded, escalated and decided, assignments, tasks) into messages for
//! the people concerned, and `notify` post-actions write theirs from the dispatcher.
use crate::{Error, Page, Result, Services, random_id};
use casegate_domain::clock::{serialize_opt_wire_time, serialize_wire_time};
use casegate_domain::ids::{CaseId, TenantId, UserId};
use casegate_domain::principal::Caller;
use casegate_store::Conn;
use casegate_store::notifications::{self as store, Notification};
use casegate_store::users as user_store;
use serde::Serialize;
use serde_json::{Value, json};
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
    /// The e-mail copy: `pending`, `sent`, `failed`, `expired`, or null (none).
    pub email_state: Option<String>,
    /// When the SMTP server accepted the e-mail copy.
    #[serde(serialize_with = "serialize_opt_wire_time")]
    pub emailed_at: Option<OffsetDateTime>,
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
            email_state: n.email_state,
            emailed_at: n.emailed_at,
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
            // Every user has an address; whether a copy goes out is the mailer's business.
            email_state: Some("pending".into()),
            emailed_at: None,
        };
        added += u64::from(store::insert(c, &n).await?);
    }
    Ok(added)
}

/// Writes the messages that the outbox event `event_type` (id `event_id`, payload `data`)
/// owes people, in the transaction that commits the event; keyed by the event id, so a
/// message is never written twice. Events nobody needs to hear of cost nothing.
pub(crate) async fn of_event(
    c: &mut dyn Conn,
    tenant: TenantId,
    now: OffsetDateTime,
    event_id: Uuid,
    event_type: &str,
    data: &Value,
) -> Result<()> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let req = &data["request"];
    let step = format!("{} → {}", text(&req["from"]), text(&req["to"]));
    let due = match data["deadline_at"].as_str() {
        Some(d) => format!(", due {d}"),
        None => String::new(),
    };
    let tier = text(&data["tier"]);
    let requester: Option<UserId> = req["requested_by_id"].as_str().and_then(|u| u.parse().ok());
    let (readers, message, case_id) = match event_type {
        "approval.requested" | "approval.reminder" => {
            let mut readers =
                holders(c, tenant, &names(&data["roles"]), &names(&data["users"])).await?;
            // Separation of duties: the requester cannot approve, so is not asked.
            if req["separation_of_duties"] != Value::Bool(false) {
                readers.retain(|u| Some(*u) != requester);
            }
            let lead = if event_type == "approval.reminder" {
                "Reminder: your approval is still awaited"
            } else {
                "Your approval is requested"
            };
            (
                readers,
                format!("{lead}: {step} (tier {tier}){due}"),
                &req["case_id"],
            )
        }
        "approval.escalated" => (
            holders(c, tenant, &names(&data["role"]), &names(&data["user"])).await?,
            format!("Escalated to you: approval of {step} (tier {tier}) missed its deadline{due}"),
            &req["case_id"],
        ),
        "transition.approved" | "transition.rejected" | "transition.expired" => {
            let outcome = match event_type {
                "transition.approved" => "was approved and applied",
                "transition.rejected" => "was rejected",
                _ => "expired without a decision",
            };
            (
                requester.into_iter().collect(),
                format!("Your request {step} {outcome}"),
                &req["case_id"],
            )
        }
        "case.assigned" => {
            let k = &data["case"];
            let to = data["assignment"]["to_id"]
                .as_str()
                .and_then(|u| u.parse().ok());
            (
                to.map(UserId).into_iter().collect(),
                format!(
                    "Case {} was assigned to you: {}",
                    text(&k["reference"]),
                    text(&k["title"])
                ),
                &k["id"],
            )
        }
        "task.created" => {
            let t = &data["task"];
            let readers = match t["assigned_to_id"].as_str().and_then(|u| u.parse().ok()) {
                Some(u) => vec![UserId(u)],
                None => holders(c, tenant, &names(&t["assignee_role"]), &[]).await?,
            };
            (
                readers,
                format!("New task: {}", text(&t["title"])),
                &t["case_id"],
            )
        }
        _ => return Ok(()),
    };
    if readers.is_empty() {
        return Ok(());
    }
    let m = Message {
        kind: event_type,
        message: &message,
        case_id: case_id.as_str().and_then(|c| c.parse().ok()).map(CaseId),
        data: json!({ "event_id": event_id, "request_id": req.get("id"), "tier": data.get("tier") }),
        source_key: event_id.to_string(),
    };
    send(c, tenant, &readers, &m, now).await?;
    Ok(())
}

/// The strings of a JSON string or list of strings (anything else: none).
fn names(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|s| s.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

/// The active holders of `roles` and the active named `users` (ids or e-mails; a name that
/// is unknown or disabled is passed over), once each.
pub(crate) async fn holders(
    c: &mut dyn Conn,
    tenant: TenantId,
    roles: &[String],
    users: &[String],
) -> Result<Vec<UserId>> {
    let mut found: Vec<UserId> = user_store::active_with_roles(c, tenant, roles)
        .await?
        .into_iter()
        .map(|u| u.id)
        .collect();
    for n in users {
        if let Ok(u) = crate::users::resolve(c, tenant, n).await
            && u.active
            && !found.contains(&u.id)
        {
            found.push(u.id);
        }
    }
    Ok(found)
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
