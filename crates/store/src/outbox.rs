//! The transactional outbox: domain events written in the transaction of the change they
//! announce (DESIGN.md principle 3). The dispatcher reads the undispatched rows after commit:
//! an event carrying `actions` (a rule's post-actions) is claimed under a lease, its actions run
//! each in a transaction of its own that also writes a [`PostActionRun`] (so a retried event
//! skips what already ran), and it is then marked dispatched.
use crate::{Conn, Dialect, Row, StoreResult};
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
    /// Work for the dispatcher: `{"case_id", "rule_id", "post_actions": [...]}`. Never part
    /// of a webhook body.
    pub actions: Option<Value>,
    /// When the dispatcher handed it on.
    pub dispatched_at: Option<OffsetDateTime>,
    /// How often the dispatcher has claimed it.
    pub attempts: i64,
    /// Why the last attempt did not finish.
    pub last_error: Option<String>,
}

/// Every column of an event but `data`, written once for [`HEAD_COLS`] and [`COLS`].
macro_rules! head_cols {
    () => {
        "tenant_id, id, event_type, created_at, actions, dispatched_at, attempts, last_error"
    };
}

/// What the fan-out reads of every event it takes ([`take_for_fan_out`]).
const HEAD_COLS: &str = head_cols!();

const COLS: &str = concat!(head_cols!(), ", data");

fn from_row(r: &Row) -> StoreResult<OutboxEvent> {
    let mut e = head_row(r)?;
    e.data = r.json("data")?;
    Ok(e)
}

/// An event read without its `data` (left `null`).
fn head_row(r: &Row) -> StoreResult<OutboxEvent> {
    Ok(OutboxEvent {
        tenant_id: TenantId(r.uuid("tenant_id")?),
        id: r.uuid("id")?,
        event_type: r.text("event_type")?,
        created_at: r.time("created_at")?,
        data: Value::Null,
        actions: Some(r.json("actions")?).filter(|a| !a.is_null()),
        dispatched_at: r.opt_time("dispatched_at")?,
        attempts: r.int("attempts")?,
        last_error: r.opt_text("last_error")?,
    })
}

/// Adds an event in the caller's transaction, deferred ([`Conn::defer`]): it goes out with
/// the transaction's next statement.
///
/// The body goes as JSON text: PostgreSQL's column is `json` (migration 0017), which keeps the
/// text after checking it, where a `jsonb` parameter would first be parsed into binary form;
/// SQLite's is TEXT.
pub async fn insert(c: &mut dyn Conn, e: &OutboxEvent) -> StoreResult<()> {
    let sql = match c.dialect() {
        Dialect::Postgres => {
            "INSERT INTO outbox (tenant_id, id, event_type, created_at, data, actions) \
             VALUES ($1, $2, $3, $4, CAST($5 AS json), $6)"
        }
        Dialect::Sqlite => {
            "INSERT INTO outbox (tenant_id, id, event_type, created_at, data, actions) \
             VALUES ($1, $2, $3, $4, $5, $6)"
        }
    };
    c.defer(
        sql,
        vec![
            e.tenant_id.into(),
            e.id.into(),
            e.event_type.as_str().into(),
            e.created_at.into(),
            e.data.to_string().into(),
            e.actions.clone().into(),
        ],
        1,
    )
    .await
}

/// `tenant`'s events of one type, oldest first.
pub async fn by_type(
    c: &mut dyn Conn,
    tenant: TenantId,
    event_type: &str,
) -> StoreResult<Vec<OutboxEvent>> {
    c.fetch_all(
        &format!(
            "SELECT {COLS} FROM outbox WHERE tenant_id = $1 AND event_type = $2 \
             ORDER BY created_at, id"
        ),
        &[tenant.into(), event_type.into()],
    )
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// Marks up to `max` fanned-out, undispatched events that carry no work dispatched at `now`;
/// answers how many. [`take_for_fan_out`] marks the plain events it takes itself; this settles
/// those an earlier version fanned out and left to this statement.
pub async fn settle_plain(c: &mut dyn Conn, now: OffsetDateTime, max: i64) -> StoreResult<u64> {
    let lock = c.dialect().row_lock(" FOR UPDATE SKIP LOCKED");
    c.execute(
        &format!(
            "UPDATE outbox SET dispatched_at = $1 WHERE (tenant_id, id) IN (\
             SELECT tenant_id, id FROM outbox WHERE dispatched_at IS NULL AND actions IS NULL \
             AND fanned_out_at IS NOT NULL ORDER BY created_at, id LIMIT $2{lock})"
        ),
        &[now.into(), max.into()],
    )
    .await
}

/// Takes up to `max` events not yet fanned out to webhooks, oldest first, and marks them
/// fanned out at `now`, in one statement: the caller writes their deliveries in the same
/// transaction, so a failure un-marks them. PostgreSQL skips events another dispatcher holds.
/// An event carrying no work has nothing left to do once fanned out, so it is marked
/// dispatched by the same update (one row version per event instead of two).
///
/// The events come without their `data` (`null`): most need none (no webhook of their tenant
/// wants them and no notification reads them), and `data` is most of an event's bytes, which
/// PostgreSQL would render as text and the dispatcher parse back for nothing. [`fill_data`]
/// reads it for those that do.
pub async fn take_for_fan_out(
    c: &mut dyn Conn,
    now: OffsetDateTime,
    max: i64,
) -> StoreResult<Vec<OutboxEvent>> {
    let lock = c.dialect().row_lock(" FOR UPDATE SKIP LOCKED");
    let mut taken = c
        .fetch_all(
            &format!(
                "UPDATE outbox SET fanned_out_at = $1, dispatched_at = CASE \
                 WHEN actions IS NULL AND dispatched_at IS NULL THEN $1 ELSE dispatched_at END \
                 WHERE (tenant_id, id) IN (\
                 SELECT tenant_id, id FROM outbox WHERE fanned_out_at IS NULL \
                 ORDER BY created_at, id LIMIT $2{lock}) RETURNING {HEAD_COLS}"
            ),
            &[now.into(), max.into()],
        )
        .await?
        .iter()
        .map(head_row)
        .collect::<StoreResult<Vec<_>>>()?;
    // RETURNING gives no order; events are handed on in commit order.
    taken.sort_by_key(|e| (e.created_at, e.id));
    Ok(taken)
}

/// Events per statement of [`fill_data`]; a short chunk is padded with its first event (a
/// repeated pair matches nothing more), so every statement has the same text and stays
/// prepared.
const EVENTS_PER_STATEMENT: usize = 32;

/// `VALUES ($1, $2), …` of [`EVENTS_PER_STATEMENT`] (tenant, event) pairs from `chunk` (at
/// most that many, at least one), padded with its first pair, and their arguments.
fn padded_keys(chunk: &[(TenantId, Uuid)]) -> (String, Vec<crate::Val>) {
    let mut args = Vec::with_capacity(2 * EVENTS_PER_STATEMENT);
    let pairs: Vec<String> = (0..EVENTS_PER_STATEMENT)
        .map(|i| {
            let (t, id) = *chunk.get(i).unwrap_or(&chunk[0]);
            crate::bind_row(&mut args, [t.into(), id.into()])
        })
        .collect();
    (format!("VALUES {}", pairs.join(", ")), args)
}

/// Reads the `data` of each event of `events` for which `wanted` holds (events taken by
/// [`take_for_fan_out`]).
pub async fn fill_data(
    c: &mut dyn Conn,
    events: &mut [OutboxEvent],
    wanted: impl Fn(&OutboxEvent) -> bool,
) -> StoreResult<()> {
    let keys: Vec<(TenantId, Uuid)> = events
        .iter()
        .filter(|e| wanted(e))
        .map(|e| (e.tenant_id, e.id))
        .collect();
    let mut found = std::collections::HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(EVENTS_PER_STATEMENT) {
        let (pairs, args) = padded_keys(chunk);
        let sql =
            format!("SELECT tenant_id, id, data FROM outbox WHERE (tenant_id, id) IN ({pairs})");
        for r in c.fetch_all(&sql, &args).await? {
            found.insert(
                (TenantId(r.uuid("tenant_id")?), r.uuid("id")?),
                r.json("data")?,
            );
        }
    }
    for e in events {
        if let Some(d) = found.remove(&(e.tenant_id, e.id)) {
            e.data = d;
        }
    }
    Ok(())
}

const DUE: &str = "dispatched_at IS NULL AND actions IS NOT NULL \
    AND (next_attempt_at IS NULL OR next_attempt_at <= $1)";

/// What the dispatcher has to do at a given time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Due {
    /// Events carrying work are due ([`claim`]).
    pub work: bool,
    /// Events await webhook fan-out ([`take_for_fan_out`]).
    pub fan_out: bool,
    /// Events without work were fanned out but not marked dispatched ([`settle_plain`]).
    pub settle: bool,
}

/// What the dispatcher has to do at `now`: one plain read, so an idle dispatcher takes no
/// write lock and a busy one skips the steps with nothing to do.
pub async fn due(c: &mut dyn Conn, now: OffsetDateTime) -> StoreResult<Due> {
    // Three EXISTS, each answered from its own partial index (`outbox_work`,
    // `outbox_to_fan_out`, `outbox_to_settle`), which holds only the rows it asks about; as
    // one `OR` SQLite read the whole outbox, which keeps every event, on every idle tick.
    let r = c
        .fetch_one(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM outbox WHERE {DUE}) AS work, \
                 EXISTS (SELECT 1 FROM outbox WHERE fanned_out_at IS NULL) AS fan_out, \
                 EXISTS (SELECT 1 FROM outbox WHERE dispatched_at IS NULL AND actions IS NULL \
                   AND fanned_out_at IS NOT NULL) AS settle"
            ),
            &[now.into()],
        )
        .await?;
    Ok(Due {
        work: r.bool("work")?,
        fan_out: r.bool("fan_out")?,
        settle: r.bool("settle")?,
    })
}

/// Claims the oldest due event carrying work: counts the attempt and hides it from other
/// dispatchers until `lease_until` (PostgreSQL skips rows another transaction holds). Commit
/// at once, then run the work outside this transaction.
pub async fn claim(
    c: &mut dyn Conn,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
) -> StoreResult<Option<OutboxEvent>> {
    let lock = c.dialect().row_lock(" FOR UPDATE SKIP LOCKED");
    let Some(found) = c
        .fetch_optional(
            &format!("SELECT {COLS} FROM outbox WHERE {DUE} ORDER BY created_at, id LIMIT 1{lock}"),
            &[now.into()],
        )
        .await?
    else {
        return Ok(None);
    };
    let mut e = from_row(&found)?;
    c.execute(
        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $3 \
         WHERE tenant_id = $1 AND id = $2",
        &[e.tenant_id.into(), e.id.into(), lease_until.into()],
    )
    .await?;
    e.attempts += 1;
    Ok(Some(e))
}

/// Marks a claimed event dispatched, unless another dispatcher claimed it since (its lease ran
/// out); answers whether this claim was still the event's.
pub async fn done(c: &mut dyn Conn, e: &OutboxEvent, now: OffsetDateTime) -> StoreResult<bool> {
    let n = c
        .execute(
            "UPDATE outbox SET dispatched_at = $3, next_attempt_at = NULL, last_error = NULL \
             WHERE tenant_id = $1 AND id = $2 AND attempts = $4",
            &[
                e.tenant_id.into(),
                e.id.into(),
                now.into(),
                e.attempts.into(),
            ],
        )
        .await?;
    Ok(n == 1)
}

/// Leaves a claimed event for another attempt at `at`, with why this one stopped (unless
/// another dispatcher claimed it since).
pub async fn retry_at(
    c: &mut dyn Conn,
    e: &OutboxEvent,
    at: OffsetDateTime,
    error: &str,
) -> StoreResult<()> {
    c.execute(
        "UPDATE outbox SET next_attempt_at = $3, last_error = $4 \
         WHERE tenant_id = $1 AND id = $2 AND attempts = $5",
        &[
            e.tenant_id.into(),
            e.id.into(),
            at.into(),
            error.into(),
            e.attempts.into(),
        ],
    )
    .await
    .map(drop)
}

/// Which events [`purge_settled`] may delete: settled (fanned out to webhooks and dispatched,
/// so no step reads them again; a delivery keeps its own copy of the body) before `$1`. Read
/// in dispatch order from the partial index `outbox_settled` (migration 0018).
const SETTLED_BEFORE: &str =
    "fanned_out_at IS NOT NULL AND dispatched_at IS NOT NULL AND dispatched_at < $1";

/// Whether any event settled before `before` awaits [`purge_settled`]: a plain read, so an
/// idle worker takes no write lock (SQLite has one writer).
pub async fn any_settled_before(c: &mut dyn Conn, before: OffsetDateTime) -> StoreResult<bool> {
    c.fetch_one(
        &format!("SELECT EXISTS (SELECT 1 FROM outbox WHERE {SETTLED_BEFORE}) AS found"),
        &[before.into()],
    )
    .await?
    .bool("found")
}

/// Deletes up to `max` events settled before `before`, the earliest settled first, with the
/// runs of their post-actions (which only a retry of the event reads, and a settled event is
/// never retried); answers how many events went. Run it in a transaction, so an event never
/// goes without its runs. PostgreSQL skips events another purge holds.
pub async fn purge_settled(c: &mut dyn Conn, before: OffsetDateTime, max: i64) -> StoreResult<u64> {
    let lock = c.dialect().row_lock(" FOR UPDATE SKIP LOCKED");
    let gone = c
        .fetch_all(
            &format!(
                "DELETE FROM outbox WHERE (tenant_id, id) IN (\
                 SELECT tenant_id, id FROM outbox WHERE {SETTLED_BEFORE} \
                 ORDER BY dispatched_at LIMIT $2{lock}) \
                 RETURNING tenant_id, id, actions IS NOT NULL AS had_work"
            ),
            &[before.into(), max.into()],
        )
        .await?;
    let mut worked = Vec::new();
    for r in &gone {
        if r.bool("had_work")? {
            worked.push((TenantId(r.uuid("tenant_id")?), r.uuid("id")?));
        }
    }
    for chunk in worked.chunks(EVENTS_PER_STATEMENT) {
        let (pairs, args) = padded_keys(chunk);
        c.execute(
            &format!("DELETE FROM post_action_runs WHERE (tenant_id, event_id) IN ({pairs})"),
            &args,
        )
        .await?;
    }
    Ok(gone.len() as u64)
}

/// One post-action of one event that has run (`done`) or failed for good (`failed`).
#[derive(Clone, Debug, PartialEq)]
pub struct PostActionRun {
    /// Tenant.
    pub tenant_id: TenantId,
    /// The event carrying the action.
    pub event_id: Uuid,
    /// Position of the action in the rule.
    pub idx: i64,
    /// `create_task`, `assign`, …
    pub action_type: String,
    /// The case acted on.
    pub case_id: Uuid,
    /// `done` or `failed`.
    pub outcome: String,
    /// Why it failed (a client-safe message).
    pub error: Option<String>,
    /// When.
    pub ran_at: OffsetDateTime,
}

/// Records a run in the caller's transaction; `false` when this action of this event already
/// has one (the caller then rolls back: the action ran before).
pub async fn record_run(c: &mut dyn Conn, r: &PostActionRun) -> StoreResult<bool> {
    let n = c
        .execute(
            "INSERT INTO post_action_runs (tenant_id, event_id, idx, action_type, case_id, outcome, \
             error, ran_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (tenant_id, event_id, idx) DO NOTHING",
            &[
                r.tenant_id.into(),
                r.event_id.into(),
                r.idx.into(),
                r.action_type.as_str().into(),
                r.case_id.into(),
                r.outcome.as_str().into(),
                r.error.clone().into(),
                r.ran_at.into(),
            ],
        )
        .await?;
    Ok(n == 1)
}

/// The runs of one event's actions, in action order.
pub async fn runs_of(
    c: &mut dyn Conn,
    tenant: TenantId,
    event: Uuid,
) -> StoreResult<Vec<PostActionRun>> {
    c.fetch_all(
        "SELECT tenant_id, event_id, idx, action_type, case_id, outcome, error, ran_at \
         FROM post_action_runs WHERE tenant_id = $1 AND event_id = $2 ORDER BY idx",
        &[tenant.into(), event.into()],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(PostActionRun {
            tenant_id: TenantId(r.uuid("tenant_id")?),
            event_id: r.uuid("event_id")?,
            idx: r.int("idx")?,
            action_type: r.text("action_type")?,
            case_id: r.uuid("case_id")?,
            outcome: r.text("outcome")?,
            error: r.opt_text("error")?,
            ran_at: r.time("ran_at")?,
        })
    })
    .collect()
}
