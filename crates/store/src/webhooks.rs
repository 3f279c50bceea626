//! Webhook registrations, deliveries and attempts (API.md "Webhooks"). The dispatcher fans each
//! outbox event out into one delivery per matching registration ([`insert_delivery`], idempotent
//! per event and registration); deliverers claim due deliveries under a lease ([`claim_due`],
//! `SKIP LOCKED` on PostgreSQL) so that several processes never send one attempt twice, and a
//! case's events reach each registration in order.
use crate::{Conn, Row, StoreResult, Val, Where, bind_row, page_clause, value_lists};
use casegate_domain::ids::{TenantId, UserId};
use serde_json::Value as Json;
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// A registration.
#[derive(Clone, Debug, PartialEq)]
pub struct Webhook {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Registration id.
    pub id: Uuid,
    /// Where deliveries go.
    pub url: String,
    /// What it is for.
    pub description: Option<String>,
    /// Event names (or `*`) as a JSON array.
    pub events: Json,
    /// Whether deliveries are made.
    pub active: bool,
    /// Why it was disabled (a 410 answer).
    pub disabled_reason: Option<String>,
    /// The signing secret (`whsec_…`).
    pub secret: String,
    /// The secret replaced by the last rotation, still signing until `previous_secret_until`.
    pub previous_secret: Option<String>,
    /// End of the rotation overlap.
    pub previous_secret_until: Option<OffsetDateTime>,
    /// Failed attempts in a row (circuit breaker).
    pub consecutive_failures: i64,
    /// No attempt before this time (circuit open).
    pub circuit_open_until: Option<OffsetDateTime>,
    /// Who registered it.
    pub created_by: Option<UserId>,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// Deleted (kept for its delivery record).
    pub deleted_at: Option<OffsetDateTime>,
    /// Grows by one on every change.
    pub version: i64,
}

const HOOK_COLS: &str = "tenant_id, id, url, description, events, active, disabled_reason, secret, \
    previous_secret, previous_secret_until, consecutive_failures, circuit_open_until, created_by, \
    created_at, updated_at, deleted_at, version";

fn hook_row(r: &Row) -> StoreResult<Webhook> {
    Ok(Webhook {
        tenant_id: TenantId(r.uuid("tenant_id")?),
        id: r.uuid("id")?,
        url: r.text("url")?,
        description: r.opt_text("description")?,
        events: r.json("events")?,
        active: r.bool("active")?,
        disabled_reason: r.opt_text("disabled_reason")?,
        secret: r.text("secret")?,
        previous_secret: r.opt_text("previous_secret")?,
        previous_secret_until: r.opt_time("previous_secret_until")?,
        consecutive_failures: r.int("consecutive_failures")?,
        circuit_open_until: r.opt_time("circuit_open_until")?,
        created_by: r.opt_uuid("created_by")?.map(UserId),
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
        deleted_at: r.opt_time("deleted_at")?,
        version: r.int("version")?,
    })
}

fn hook_vals(w: &Webhook) -> Vec<Val> {
    vec![
        w.tenant_id.into(),
        w.id.into(),
        w.url.as_str().into(),
        w.description.clone().into(),
        w.events.clone().into(),
        w.active.into(),
        w.disabled_reason.clone().into(),
        w.secret.as_str().into(),
        w.previous_secret.clone().into(),
        w.previous_secret_until.into(),
        w.consecutive_failures.into(),
        w.circuit_open_until.into(),
        w.created_by.into(),
        w.created_at.into(),
        w.updated_at.into(),
        w.deleted_at.into(),
        w.version.into(),
    ]
}

/// Adds a registration.
pub async fn insert(c: &mut dyn Conn, w: &Webhook) -> StoreResult<()> {
    c.execute(
        &format!(
            "INSERT INTO webhooks ({HOOK_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             $11, $12, $13, $14, $15, $16, $17)"
        ),
        &hook_vals(w),
    )
    .await
    .map(drop)
}

/// Writes `w` back if its stored version is still `expected`; answers whether it did.
pub async fn update(c: &mut dyn Conn, w: &Webhook, expected: i64) -> StoreResult<bool> {
    let mut args = hook_vals(w);
    args.push(expected.into());
    let n = c
        .execute(
            "UPDATE webhooks SET url = $3, description = $4, events = $5, active = $6, \
             disabled_reason = $7, secret = $8, previous_secret = $9, previous_secret_until = $10, \
             consecutive_failures = $11, circuit_open_until = $12, created_by = $13, \
             created_at = $14, updated_at = $15, deleted_at = $16, version = $17 \
             WHERE tenant_id = $1 AND id = $2 AND version = $18",
            &args,
        )
        .await?;
    Ok(n == 1)
}

/// Takes the row lock of registration `id` for the transaction (PostgreSQL; SQLite's one
/// writer already holds everything), deleted or not.
pub async fn lock(c: &mut dyn Conn, tenant: TenantId, id: Uuid) -> StoreResult<()> {
    let lock = c.dialect().row_lock(" FOR NO KEY UPDATE");
    c.fetch_optional(
        &format!("SELECT id FROM webhooks WHERE tenant_id = $1 AND id = $2{lock}"),
        &[tenant.into(), id.into()],
    )
    .await?;
    Ok(())
}

/// Registrations of every tenant whose secrets are stored as issued, from before secrets were
/// sealed (`enc:v1:` prefix), deleted ones included.
pub async fn unsealed(c: &mut dyn Conn) -> StoreResult<Vec<Webhook>> {
    c.fetch_all(
        &format!(
            "SELECT {HOOK_COLS} FROM webhooks WHERE secret NOT LIKE 'enc:v1:%' \
             OR (previous_secret IS NOT NULL AND previous_secret NOT LIKE 'enc:v1:%')"
        ),
        &[],
    )
    .await?
    .iter()
    .map(hook_row)
    .collect()
}

/// Replaces the stored secrets of `w` with `secret` and `previous`, if they are still the ones
/// read (`w`'s); answers whether they were.
pub async fn reseal(
    c: &mut dyn Conn,
    w: &Webhook,
    secret: &str,
    previous: Option<&str>,
) -> StoreResult<bool> {
    let n = c
        .execute(
            "UPDATE webhooks SET secret = $3, previous_secret = $4 \
             WHERE tenant_id = $1 AND id = $2 AND secret = $5",
            &[
                w.tenant_id.into(),
                w.id.into(),
                secret.into(),
                previous.into(),
                w.secret.as_str().into(),
            ],
        )
        .await?;
    Ok(n == 1)
}

/// A registration that is not deleted; `lock` takes its row for the transaction (PostgreSQL).
pub async fn get(
    c: &mut dyn Conn,
    tenant: TenantId,
    id: Uuid,
    lock: bool,
) -> StoreResult<Option<Webhook>> {
    let lock = if lock {
        c.dialect().row_lock(" FOR UPDATE")
    } else {
        ""
    };
    c.fetch_optional(
        &format!(
            "SELECT {HOOK_COLS} FROM webhooks WHERE tenant_id = $1 AND id = $2 \
             AND deleted_at IS NULL{lock}"
        ),
        &[tenant.into(), id.into()],
    )
    .await?
    .as_ref()
    .map(hook_row)
    .transpose()
}

/// A page of `tenant`'s registrations, oldest first, and how many there are.
pub async fn list(
    c: &mut dyn Conn,
    tenant: TenantId,
    limit: i64,
    offset: i64,
) -> StoreResult<(Vec<Webhook>, i64)> {
    let total = c
        .fetch_one(
            "SELECT COUNT(*) AS n FROM webhooks WHERE tenant_id = $1 AND deleted_at IS NULL",
            &[tenant.into()],
        )
        .await?
        .int("n")?;
    let mut args: Vec<Val> = vec![tenant.into()];
    let page = page_clause(&mut args, limit, offset);
    let rows = c
        .fetch_all(
            &format!(
                "SELECT {HOOK_COLS} FROM webhooks WHERE tenant_id = $1 AND deleted_at IS NULL \
                 ORDER BY created_at, id {page}"
            ),
            &args,
        )
        .await?;
    Ok((
        rows.iter().map(hook_row).collect::<StoreResult<_>>()?,
        total,
    ))
}

/// Tenants whose registrations [`active_of`] reads per statement: the list is padded to this
/// size, so the statement has one text (one prepared statement) whatever the batch.
const TENANTS_PER_STATEMENT: usize = 32;

/// The active registrations (what an event fans out to) of each of `tenants` (repeats allowed),
/// oldest first, in a few statements rather than one per tenant: a fan-out round of events
/// from many tenants would otherwise send one query per tenant.
pub async fn active_of(
    c: &mut dyn Conn,
    tenants: &[TenantId],
) -> StoreResult<HashMap<TenantId, Vec<Webhook>>> {
    let mut tenants = tenants.to_vec();
    tenants.sort_by_key(|t| t.0);
    tenants.dedup();
    let mut found: HashMap<TenantId, Vec<Webhook>> =
        tenants.iter().map(|t| (*t, Vec::new())).collect();
    for chunk in tenants.chunks(TENANTS_PER_STATEMENT) {
        // Padded with the chunk's first tenant; a repeated value matches nothing more.
        let mut args = Vec::with_capacity(TENANTS_PER_STATEMENT);
        let ids = bind_row(
            &mut args,
            (0..TENANTS_PER_STATEMENT).map(|i| (*chunk.get(i).unwrap_or(&chunk[0])).into()),
        );
        let sql = format!(
            "SELECT {HOOK_COLS} FROM webhooks WHERE tenant_id IN {ids} AND active \
             AND deleted_at IS NULL ORDER BY created_at, id"
        );
        for r in c.fetch_all(&sql, &args).await? {
            let w = hook_row(&r)?;
            found.entry(w.tenant_id).or_default().push(w);
        }
    }
    Ok(found)
}

/// What a round of attempts did to a registration's circuit breaker, in the order they
/// finished: a success closes the circuit and starts the count again, each failure counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcomes {
    /// Some attempt succeeded.
    pub succeeded: bool,
    /// Failures after the last success (all of them when none succeeded).
    pub failures_since: i64,
}

impl Outcomes {
    /// Adds one attempt's outcome.
    pub fn push(&mut self, success: bool) {
        if success {
            self.succeeded = true;
            self.failures_since = 0;
        } else {
            self.failures_since += 1;
        }
    }
}

/// Records a round's outcomes on the registration's circuit breaker: a success closes it and
/// resets the count of failures in a row; from `open_after` failures in a row it is open until
/// `open_until(n)`. One statement in the common case (all went well).
pub async fn record_outcome(
    c: &mut dyn Conn,
    tenant: TenantId,
    id: Uuid,
    o: Outcomes,
    open_after: i64,
    open_until: impl Fn(i64) -> OffsetDateTime,
) -> StoreResult<()> {
    if o.failures_since == 0 {
        if o.succeeded {
            c.execute(
                "UPDATE webhooks SET consecutive_failures = 0, circuit_open_until = NULL \
                 WHERE tenant_id = $1 AND id = $2 AND consecutive_failures <> 0",
                &[tenant.into(), id.into()],
            )
            .await?;
        }
        return Ok(());
    }
    let counted = if o.succeeded {
        "UPDATE webhooks SET consecutive_failures = $3, circuit_open_until = NULL \
         WHERE tenant_id = $1 AND id = $2 RETURNING consecutive_failures"
    } else {
        "UPDATE webhooks SET consecutive_failures = consecutive_failures + $3 \
         WHERE tenant_id = $1 AND id = $2 RETURNING consecutive_failures"
    };
    let Some(row) = c
        .fetch_optional(
            counted,
            &[tenant.into(), id.into(), o.failures_since.into()],
        )
        .await?
    else {
        return Ok(());
    };
    let n = row.int("consecutive_failures")?;
    if n >= open_after {
        c.execute(
            "UPDATE webhooks SET circuit_open_until = $3 WHERE tenant_id = $1 AND id = $2",
            &[tenant.into(), id.into(), open_until(n).into()],
        )
        .await?;
    }
    Ok(())
}

/// Turns a registration off (a 410 answer), keeping why.
pub async fn disable(
    c: &mut dyn Conn,
    tenant: TenantId,
    id: Uuid,
    reason: &str,
    now: OffsetDateTime,
) -> StoreResult<()> {
    c.execute(
        "UPDATE webhooks SET active = $3, disabled_reason = $4, updated_at = $5, \
         version = version + 1 WHERE tenant_id = $1 AND id = $2",
        &[
            tenant.into(),
            id.into(),
            false.into(),
            reason.into(),
            now.into(),
        ],
    )
    .await
    .map(drop)
}

/// `pending` (never tried or in flight), `failed` (will be retried), `succeeded`, `dead`.
pub const STATES: &[&str] = &["pending", "succeeded", "failed", "dead"];

/// One event for one registration.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Delivery id (`X-Casegate-Delivery`).
    pub id: Uuid,
    /// The registration.
    pub webhook_id: Uuid,
    /// The event (`webhook-id`, the body's `id`; the same on every attempt and redelivery).
    pub event_id: Uuid,
    /// Event name.
    pub event_type: String,
    /// The exact body sent.
    pub body: String,
    /// The case whose events go out in order.
    pub ordering_key: Option<String>,
    /// See [`STATES`].
    pub state: String,
    /// Attempts made (counted when claimed).
    pub attempt: i64,
    /// When it is next due (a claim's lease while in flight; none once final).
    pub next_attempt_at: Option<OffsetDateTime>,
    /// HTTP status of the last attempt.
    pub status_code: Option<i64>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// Duration of the last attempt.
    pub duration_ms: Option<i64>,
    /// The delivery this one repeats (manual redelivery).
    pub redelivery_of: Option<Uuid>,
    /// When the event was committed (fan-out) or the redelivery asked for.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

const DELIVERY_COLS: &str = "tenant_id, id, webhook_id, event_id, event_type, body, ordering_key, \
    state, attempt, next_attempt_at, status_code, error, duration_ms, redelivery_of, created_at, \
    updated_at";

fn delivery_row(r: &Row) -> StoreResult<Delivery> {
    Ok(Delivery {
        tenant_id: TenantId(r.uuid("tenant_id")?),
        id: r.uuid("id")?,
        webhook_id: r.uuid("webhook_id")?,
        event_id: r.uuid("event_id")?,
        event_type: r.text("event_type")?,
        body: r.text("body")?,
        ordering_key: r.opt_text("ordering_key")?,
        state: r.text("state")?,
        attempt: r.int("attempt")?,
        next_attempt_at: r.opt_time("next_attempt_at")?,
        status_code: r.opt_int("status_code")?,
        error: r.opt_text("error")?,
        duration_ms: r.opt_int("duration_ms")?,
        redelivery_of: r.opt_uuid("redelivery_of")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

/// Adds a delivery; a first delivery of an event to a registration that already has one is
/// skipped (answers false), so fan-out can be repeated safely.
pub async fn insert_delivery(c: &mut dyn Conn, d: &Delivery) -> StoreResult<bool> {
    Ok(insert_deliveries(c, std::slice::from_ref(d)).await? == 1)
}

/// Adds deliveries, a few hundred per statement (fan-out writes a batch of events at once);
/// skips first deliveries that exist already, as [`insert_delivery`]. Answers how many it
/// added.
pub async fn insert_deliveries(c: &mut dyn Conn, ds: &[Delivery]) -> StoreResult<u64> {
    let mut added = 0;
    for (rows, args) in value_lists(c.dialect(), ds, &[], |d| {
        [
            d.tenant_id.into(),
            d.id.into(),
            d.webhook_id.into(),
            d.event_id.into(),
            d.event_type.as_str().into(),
            d.body.as_str().into(),
            d.ordering_key.clone().into(),
            d.state.as_str().into(),
            d.attempt.into(),
            d.next_attempt_at.into(),
            d.status_code.into(),
            d.error.clone().into(),
            d.duration_ms.into(),
            d.redelivery_of.into(),
            d.created_at.into(),
            d.updated_at.into(),
        ]
    }) {
        added += c
            .execute(
                &format!(
                    "INSERT INTO webhook_deliveries ({DELIVERY_COLS}) VALUES {rows} \
                     ON CONFLICT (tenant_id, webhook_id, event_id) WHERE redelivery_of IS NULL \
                     DO NOTHING"
                ),
                &args,
            )
            .await?;
    }
    Ok(added)
}

/// One delivery of registration `webhook`.
pub async fn get_delivery(
    c: &mut dyn Conn,
    tenant: TenantId,
    webhook: Uuid,
    id: Uuid,
) -> StoreResult<Option<Delivery>> {
    c.fetch_optional(
        &format!(
            "SELECT {DELIVERY_COLS} FROM webhook_deliveries \
             WHERE tenant_id = $1 AND webhook_id = $2 AND id = $3"
        ),
        &[tenant.into(), webhook.into(), id.into()],
    )
    .await?
    .as_ref()
    .map(delivery_row)
    .transpose()
}

/// A page of `webhook`'s deliveries, newest first (optionally in one state), and the total.
pub async fn deliveries(
    c: &mut dyn Conn,
    tenant: TenantId,
    webhook: Uuid,
    state: Option<&str>,
    limit: i64,
    offset: i64,
) -> StoreResult<(Vec<Delivery>, i64)> {
    let mut w = Where::tenant("tenant_id", tenant);
    w.push("webhook_id = ?", [webhook.into()]);
    if let Some(s) = state {
        w.push("state = ?", [s.into()]);
    }
    let (clause, mut args) = w.finish();
    let total = c
        .fetch_one(
            &format!("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE {clause}"),
            &args,
        )
        .await?
        .int("n")?;
    let page = page_clause(&mut args, limit, offset);
    let rows = c
        .fetch_all(
            &format!(
                "SELECT {DELIVERY_COLS} FROM webhook_deliveries WHERE {clause} \
                 ORDER BY created_at DESC, id DESC {page}"
            ),
            &args,
        )
        .await?;
    Ok((
        rows.iter().map(delivery_row).collect::<StoreResult<_>>()?,
        total,
    ))
}

/// Registrations whose deliveries may go out at `$1`: on, not deleted, circuit closed.
const CLAIMABLE: &str = "w.active AND w.deleted_at IS NULL \
    AND (w.circuit_open_until IS NULL OR w.circuit_open_until <= $1)";

/// The keys of the deliveries of registration `tenant`.`webhook` (SQL expressions) due at
/// `$1`, at most `$2`, oldest due first, leaving out any whose case has an earlier event still
/// undelivered to it (a case's events go out in order). It walks `webhook_deliveries_due` and stops after
/// the batch, so its cost does not grow with the queue; the order check is a range of
/// `webhook_deliveries_in_order`, which holds exactly the rows it asks about.
fn due_of(tenant: &str, webhook: &str) -> String {
    format!(
        "SELECT d.tenant_id, d.id, d.next_attempt_at, d.created_at, d.event_id \
         FROM webhook_deliveries d \
         WHERE d.tenant_id = {tenant} AND d.webhook_id = {webhook} \
           AND d.state IN ('pending', 'failed') AND d.next_attempt_at <= $1 \
           AND (d.ordering_key IS NULL OR NOT EXISTS (\
             SELECT 1 FROM webhook_deliveries e WHERE e.tenant_id = d.tenant_id \
               AND e.webhook_id = d.webhook_id AND e.ordering_key = d.ordering_key \
               AND e.state IN ('pending', 'failed') AND e.redelivery_of IS NULL \
               AND (e.created_at, e.event_id) < (d.created_at, d.event_id))) \
         ORDER BY d.next_attempt_at, d.created_at, d.event_id LIMIT $2"
    )
}

/// Claims up to `max` deliveries due at `now`, oldest due first across registrations, for
/// sending: counts the attempt and hides them until `lease_until`. A registration that is off
/// or whose circuit is open is passed by without reading its queue. The candidates are chosen
/// without locks (PostgreSQL walks each claimable registration's due deliveries in one
/// statement, `LATERAL`; SQLite, one writer and no `LATERAL`, asks each registration with work
/// due, in-process, and merges); then one statement takes them, locking only those and
/// skipping any another deliverer took meanwhile (PostgreSQL re-checks that each is still due
/// once it holds it). Commit at once, then send outside this transaction.
pub async fn claim_due(
    c: &mut dyn Conn,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    max: i64,
) -> StoreResult<Vec<Delivery>> {
    let rows = match c.dialect() {
        crate::Dialect::Postgres => {
            let due = due_of("w.tenant_id", "w.id");
            c.fetch_all(
                &format!(
                    "SELECT d.tenant_id, d.id, d.next_attempt_at, d.created_at, d.event_id \
                     FROM webhooks w CROSS JOIN LATERAL ({due}) d WHERE {CLAIMABLE} \
                     ORDER BY d.next_attempt_at, d.created_at, d.event_id LIMIT $2"
                ),
                &[now.into(), max.into()],
            )
            .await?
        }
        crate::Dialect::Sqlite => {
            let hooks = c
                .fetch_all(
                    &format!(
                        "SELECT w.tenant_id, w.id FROM webhooks w WHERE {CLAIMABLE} \
                         AND EXISTS (SELECT 1 FROM webhook_deliveries d \
                           WHERE d.tenant_id = w.tenant_id AND d.webhook_id = w.id \
                             AND d.state IN ('pending', 'failed') AND d.next_attempt_at <= $1)"
                    ),
                    &[now.into()],
                )
                .await?;
            let due = due_of("$3", "$4");
            let mut rows = Vec::new();
            for h in &hooks {
                let args = [
                    now.into(),
                    max.into(),
                    h.uuid("tenant_id")?.into(),
                    h.uuid("id")?.into(),
                ];
                rows.extend(c.fetch_all(&due, &args).await?);
            }
            rows
        }
    };
    let mut chosen = rows
        .iter()
        .map(|r| {
            Ok((
                r.opt_time("next_attempt_at")?,
                r.time("created_at")?,
                r.uuid("event_id")?,
                TenantId(r.uuid("tenant_id")?),
                r.uuid("id")?,
            ))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    chosen.sort();
    chosen.truncate(usize::try_from(max).unwrap_or(0));
    if chosen.is_empty() {
        return Ok(Vec::new());
    }
    let mut args: Vec<Val> = vec![lease_until.into(), now.into()];
    let keys: Vec<String> = chosen
        .iter()
        .map(|(.., tenant, id)| bind_row(&mut args, [(*tenant).into(), (*id).into()]))
        .collect();
    let lock = c.dialect().row_lock(" FOR UPDATE SKIP LOCKED");
    let mut out = c
        .fetch_all(
            &format!(
                "UPDATE webhook_deliveries SET attempt = attempt + 1, next_attempt_at = $1 \
                 WHERE (tenant_id, id) IN (SELECT tenant_id, id FROM webhook_deliveries \
                   WHERE (tenant_id, id) IN ({}) AND state IN ('pending', 'failed') \
                     AND next_attempt_at <= $2{lock}) \
                 RETURNING {DELIVERY_COLS}",
                keys.join(", ")
            ),
            &args,
        )
        .await?
        .iter()
        .map(delivery_row)
        .collect::<StoreResult<Vec<_>>>()?;
    // RETURNING gives no order (and the claim overwrote the due times): commit order.
    out.sort_by_key(|d| (d.created_at, d.event_id));
    Ok(out)
}

/// Writes the outcome of attempt `d.attempt` (state, next time, status, error, duration) of
/// each of `ds`, in one statement, unless another deliverer claimed the delivery since;
/// answers the ids it wrote.
pub async fn finish(
    c: &mut dyn Conn,
    ds: &[Delivery],
    now: OffsetDateTime,
) -> StoreResult<Vec<Uuid>> {
    let mut done = Vec::with_capacity(ds.len());
    for (rows, args) in value_lists(c.dialect(), ds, &[now.into()], |d| {
        [
            d.tenant_id.into(),
            d.id.into(),
            d.attempt.into(),
            d.state.as_str().into(),
            d.next_attempt_at.into(),
            d.status_code.into(),
            d.error.clone().into(),
            d.duration_ms.into(),
        ]
    }) {
        // `VALUES` columns are `column1`, `column2`, … on both backends.
        let written = c
            .fetch_all(
                &format!(
                    "UPDATE webhook_deliveries SET state = v.column4, \
                     next_attempt_at = v.column5, status_code = v.column6, error = v.column7, \
                     duration_ms = v.column8, updated_at = $1 \
                     FROM (VALUES {rows}) AS v \
                     WHERE webhook_deliveries.tenant_id = v.column1 \
                       AND webhook_deliveries.id = v.column2 \
                       AND webhook_deliveries.attempt = v.column3 \
                     RETURNING webhook_deliveries.id"
                ),
                &args,
            )
            .await?;
        for r in &written {
            done.push(r.uuid("id")?);
        }
    }
    Ok(done)
}

/// Gives up every unfinished delivery of a registration (it was deleted).
pub async fn kill_pending(
    c: &mut dyn Conn,
    tenant: TenantId,
    webhook: Uuid,
    reason: &str,
    now: OffsetDateTime,
) -> StoreResult<u64> {
    c.execute(
        "UPDATE webhook_deliveries SET state = 'dead', next_attempt_at = NULL, error = $3, \
         updated_at = $4 WHERE tenant_id = $1 AND webhook_id = $2 AND state IN ('pending', 'failed')",
        &[tenant.into(), webhook.into(), reason.into(), now.into()],
    )
    .await
}

/// Deliveries waiting to be sent (pending or failed), across tenants: the queue depth.
pub async fn queue_depth(c: &mut dyn Conn) -> StoreResult<i64> {
    c.fetch_one(
        "SELECT COUNT(*) AS n FROM webhook_deliveries WHERE state IN ('pending', 'failed')",
        &[],
    )
    .await?
    .int("n")
}

/// One attempt at a delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    /// Tenant.
    pub tenant_id: TenantId,
    /// The delivery.
    pub delivery_id: Uuid,
    /// 1, 2, …
    pub attempt: i64,
    /// When it was sent.
    pub started_at: OffsetDateTime,
    /// HTTP status, when an answer came.
    pub status_code: Option<i64>,
    /// How long it took.
    pub duration_ms: i64,
    /// What went wrong.
    pub error: Option<String>,
}

/// Records attempts, in one statement (once each: a repeated record of the same attempt is
/// ignored).
pub async fn record_attempts(c: &mut dyn Conn, attempts: &[Attempt]) -> StoreResult<()> {
    for (rows, args) in value_lists(c.dialect(), attempts, &[], |a| {
        [
            a.tenant_id.into(),
            a.delivery_id.into(),
            a.attempt.into(),
            a.started_at.into(),
            a.status_code.into(),
            a.duration_ms.into(),
            a.error.clone().into(),
        ]
    }) {
        c.execute(
            &format!(
                "INSERT INTO webhook_attempts (tenant_id, delivery_id, attempt, started_at, \
                 status_code, duration_ms, error) VALUES {rows} \
                 ON CONFLICT (tenant_id, delivery_id, attempt) DO NOTHING"
            ),
            &args,
        )
        .await?;
    }
    Ok(())
}

/// Every attempt at a delivery, in order.
pub async fn attempts(
    c: &mut dyn Conn,
    tenant: TenantId,
    delivery: Uuid,
) -> StoreResult<Vec<Attempt>> {
    c.fetch_all(
        "SELECT tenant_id, delivery_id, attempt, started_at, status_code, duration_ms, error \
         FROM webhook_attempts WHERE tenant_id = $1 AND delivery_id = $2 ORDER BY attempt",
        &[tenant.into(), delivery.into()],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(Attempt {
            tenant_id: TenantId(r.uuid("tenant_id")?),
            delivery_id: r.uuid("delivery_id")?,
            attempt: r.int("attempt")?,
            started_at: r.time("started_at")?,
            status_code: r.opt_int("status_code")?,
            duration_ms: r.int("duration_ms")?,
            error: r.opt_text("error")?,
        })
    })
    .collect()
}
