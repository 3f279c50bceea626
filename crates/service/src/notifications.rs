//! Each person's in-app inbox (`GET /notifications`, `POST /notifications/{id}/read`), and the
//! e-mail copy of each message ([`crate::mail`] sends it after commit).
//!
//! Messages come from the outbox, after commit, so a person hears of exactly what was
//! committed, once: the dispatcher's fan-out turns the events people must hear of (approvals
//! asked, reminded, escalated and decided, assignments, tasks) into messages for the people
//! concerned ([`of_event`]), and `notify` post-actions write theirs.
use crate::{Error, Page, Result, Services, random_id};
use casegate_domain::approval::{Approver, Request, RequestStatus};
use casegate_domain::clock::{serialize_opt_wire_time, serialize_wire_time};
use casegate_domain::ids::{CaseId, TenantId, UserId};
use casegate_domain::principal::Caller;
use casegate_store::Conn;
use casegate_store::notifications::{self as store, Notification};
use casegate_store::outbox::OutboxEvent;
use casegate_store::users::{self as user_store, User};
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

/// The event types people are told of ([`of_event`] reads their `data`).
const TOLD: &[&str] = &[
    "approval.requested",
    "approval.reminder",
    "approval.escalated",
    "transition.approved",
    "transition.rejected",
    "transition.expired",
    "case.assigned",
    "task.created",
];

/// Whether [`of_event`] reads an event of this type (the fan-out then reads its `data`).
pub(crate) fn tells_of(event_type: &str) -> bool {
    TOLD.contains(&event_type)
}

/// Writes the messages that the outbox event `e` owes people. The dispatcher calls this when
/// it fans the event out, after the command committed (DESIGN.md principle 3: off the
/// command's hot path and its locks), in the fan-out transaction; messages are keyed by the
/// event id, so a repeated fan-out writes nothing twice. Events nobody needs to hear of cost
/// nothing. Readers are active users of the tenant only.
pub(crate) async fn of_event(c: &mut dyn Conn, e: &OutboxEvent) -> Result<()> {
    if !tells_of(&e.event_type) {
        return Ok(());
    }
    let (tenant, data) = (e.tenant_id, &e.data);
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let req = &data["request"];
    let step = format!("{} → {}", text(&req["from"]), text(&req["to"]));
    let due = match data["deadline_at"].as_str() {
        Some(d) => format!(", due {d}"),
        None => String::new(),
    };
    let tier = text(&data["tier"]);
    let (readers, message, case_id) = match e.event_type.as_str() {
        kind @ ("approval.requested" | "approval.reminder" | "approval.escalated") => {
            let (roles, users) = if kind == "approval.escalated" {
                (names(&data["role"]), names(&data["user"]))
            } else {
                (names(&data["roles"]), names(&data["users"]))
            };
            let candidates = holders(c, tenant, &roles, &users).await?;
            let lead = match kind {
                "approval.requested" => "Your approval is requested: ".to_string(),
                "approval.reminder" => "Reminder: your approval is still awaited: ".into(),
                _ => "Escalated to you: approval of ".into(),
            };
            let tail = if kind == "approval.escalated" {
                " missed its deadline"
            } else {
                ""
            };
            (
                awaited(req, candidates),
                format!("{lead}{step} (tier {tier}){tail}{due}"),
                &req["case_id"],
            )
        }
        kind @ ("transition.approved" | "transition.rejected" | "transition.expired") => {
            let outcome = match kind {
                "transition.approved" => "was approved and applied",
                "transition.rejected" => "was rejected",
                _ => "expired without a decision",
            };
            (
                holders(c, tenant, &[], &names(&req["requested_by_id"])).await?,
                format!("Your request {step} {outcome}"),
                &req["case_id"],
            )
        }
        "case.assigned" => {
            let k = &data["case"];
            (
                holders(c, tenant, &[], &names(&data["assignment"]["to_id"])).await?,
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
            let readers = match t["assigned_to_id"].as_str() {
                Some(_) => holders(c, tenant, &[], &names(&t["assigned_to_id"])).await?,
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
    let ids: Vec<UserId> = readers.iter().map(|u| u.id).collect();
    let m = Message {
        kind: &e.event_type,
        message: &message,
        case_id: case_id.as_str().and_then(|c| c.parse().ok()).map(CaseId),
        data: json!({ "event_id": e.id, "request_id": req.get("id"), "tier": data.get("tier") }),
        source_key: e.id.to_string(),
    };
    send(c, tenant, &ids, &m, e.created_at).await?;
    Ok(())
}

/// Of `candidates`, those the request `req` (its API view) awaits on its current tier, by the
/// same rule the approval gate applies (separation of duties: not the requester, not someone
/// who filled another slot). A view that cannot be read awaits nobody.
fn awaited(req: &Value, candidates: Vec<User>) -> Vec<User> {
    let Some(r) = request_of(req) else {
        return Vec::new();
    };
    candidates
        .into_iter()
        .filter(|u| {
            r.awaits(&Approver {
                id: u.id.0,
                email: Some(u.email.clone()),
                label: u.email.clone(),
                roles: u.roles.clone(),
            })
        })
        .collect()
}

/// The approval state of a request's API view.
fn request_of(v: &Value) -> Option<Request> {
    Some(Request {
        status: RequestStatus::parse(v["status"].as_str()?)?,
        current_tier: v["current_tier"].as_u64()? as usize,
        tiers: serde_json::from_value(v["tiers"].clone()).ok()?,
        separation_of_duties: v["separation_of_duties"].as_bool()?,
        requested_by: v["requested_by_id"].as_str()?.parse().ok()?,
    })
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
) -> Result<Vec<User>> {
    let mut found = user_store::active_with_roles(c, tenant, roles).await?;
    for n in users {
        if let Ok(u) = crate::users::resolve(c, tenant, n).await
            && u.active
            && !found.iter().any(|f| f.id == u.id)
        {
            found.push(u);
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
/// Someone else's answers 404. The first read is audited (`notification.read`): that an approver
/// had seen a request is part of the record.
pub async fn mark_read(svc: &Services, p: &Caller, id: &str) -> Result<NotificationView> {
    let id = id
        .parse::<Uuid>()
        .map_err(|_| Error::not_found("notification"))?;
    let now = svc.clock.now();
    let mut tx = svc.db.begin().await?;
    let (n, first) = store::mark_read(&mut *tx, p.tenant_id, p.user_id, id, now)
        .await?
        .ok_or_else(|| Error::not_found("notification"))?;
    if first {
        let entry = crate::audit::Entry::new("notification.read", "notification", n.id)
            .change(
                "read_at",
                Value::Null,
                casegate_domain::clock::wire_time(now),
            )
            .change("kind", Value::Null, n.kind.as_str());
        crate::audit::append_by(&mut *tx, now, p, entry).await?;
    }
    tx.commit().await?;
    Ok(n.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn told_events_are_known_event_types() {
        for t in TOLD {
            assert!(casegate_domain::events::is_known(t), "{t}");
        }
        assert!(tells_of("case.assigned") && !tells_of("case.status_changed"));
    }
}
