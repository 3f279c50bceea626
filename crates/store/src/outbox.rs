//! The transactional outbox: domain events written in the transaction of the change they
//! announce (DESIGN.md principle 3). The dispatcher of the webhook and notification issues
//! reads the undispatched rows after commit.
use crate::{Conn, StoreResult};
use casegate_domain::ids::TenantId;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

/// One outgoing event.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEvent {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Event id (the webhook body's `id`; kept across redeliveries).
    pub id: Uuid,
    /// One of `casegate_domain::events::EVENT_TYPES`.
    pub event_type: String,
    /// When the change committed.
    pub created_at: OffsetDateTime,
    /// The webhook body's `data`.
    pub data: Value,
    /// When the dispatcher handed it on.
    pub dispatched_at: Option<OffsetDateTime>,
}

/// Adds an event in the caller's transaction.
pub async fn insert(c: &mut dyn Conn, e: &OutboxEvent) -> StoreResult<()> {
    c.execute(
        "INSERT INTO outbox (tenant_id, id, event_type, created_at, data) VALUES ($1, $2, $3, $4, $5)",
        &[
            e.tenant_id.into(),
            e.id.into(),
            e.event_type.as_str().into(),
            e.created_at.into(),
            e.data.clone().into(),
        ],
    )
    .await
    .map(drop)
}

/// `tenant`'s events of one type, oldest first.
pub async fn by_type(
    c: &mut dyn Conn,
    tenant: TenantId,
    event_type: &str,
) -> StoreResult<Vec<OutboxEvent>> {
    let rows = c
        .fetch_all(
            "SELECT tenant_id, id, event_type, created_at, data, dispatched_at FROM outbox \
             WHERE tenant_id = $1 AND event_type = $2 ORDER BY created_at, id",
            &[tenant.into(), event_type.into()],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(OutboxEvent {
                tenant_id: TenantId(r.uuid("tenant_id")?),
                id: r.uuid("id")?,
                event_type: r.text("event_type")?,
                created_at: r.time("created_at")?,
                data: r.json("data")?,
                dispatched_at: r.opt_time("dispatched_at")?,
            })
        })
        .collect()
}
