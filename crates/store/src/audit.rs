//! The audit trail's storage: events (append-only, enforced by triggers on both backends), the
//! per-tenant chain head that serialises appends, and signed checkpoints. Hashing and
//! verification are pure and live in `casegate_domain::audit`.
use crate::{Conn, Dialect, Row, StoreError, StoreResult, Val, Where, page_clause, with_items};
use casegate_domain::audit::{Unsealed, hex};
use casegate_domain::ids::TenantId;
use std::sync::LazyLock;
use time::OffsetDateTime;
use uuid::Uuid;

/// One stored event: the canonical record as hashed, its hash, and the indexed columns.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredAudit {
    /// Owning tenant (its chain).
    pub tenant_id: TenantId,
    /// Position in the chain.
    pub seq: i64,
    /// Event id.
    pub event_id: Uuid,
    /// When it happened.
    pub occurred_at: OffsetDateTime,
    /// Actor as recorded (email, `jwt:<sub>`, `system`).
    pub actor: String,
    /// Actor's user id.
    pub actor_id: Option<Uuid>,
    /// `<entity>.<verb>`.
    pub action: String,
    /// Entity kind.
    pub entity_type: String,
    /// Entity id.
    pub entity_id: Option<String>,
    /// RFC 8785 canonical JSON of the record, exactly the hashed bytes.
    pub record: String,
    /// Lowercase hex SHA-256.
    pub hash: String,
}

const COLS: &str = "tenant_id, seq, event_id, occurred_at, actor, actor_id, action, entity_type, entity_id, record, hash";

fn from_row(r: &Row) -> StoreResult<StoredAudit> {
    Ok(StoredAudit {
        tenant_id: TenantId(r.uuid("tenant_id")?),
        seq: r.int("seq")?,
        event_id: r.uuid("event_id")?,
        occurred_at: r.time("occurred_at")?,
        actor: r.text("actor")?,
        actor_id: r.opt_uuid("actor_id")?,
        action: r.text("action")?,
        entity_type: r.text("entity_type")?,
        entity_id: r.opt_text("entity_id")?,
        record: r.text("record")?,
        hash: r.text("hash")?,
    })
}

/// Locks the tenant's chain head until the transaction ends and returns `(seq, hash)` of the
/// last event (`(0, 64 zeros)` for an empty chain). PostgreSQL takes a row lock, so concurrent
/// writers of one tenant queue here and the chain stays linear across server processes; SQLite
/// transactions are already serialised by `BEGIN IMMEDIATE`.
async fn lock_head(c: &mut dyn Conn, tenant: TenantId) -> StoreResult<(i64, String)> {
    let sql = match c.dialect() {
        Dialect::Postgres => "SELECT seq, hash FROM audit_heads WHERE tenant_id = $1 FOR UPDATE",
        Dialect::Sqlite => "SELECT seq, hash FROM audit_heads WHERE tenant_id = $1",
    };
    if let Some(r) = c.fetch_optional(sql, &[tenant.into()]).await? {
        return Ok((r.int("seq")?, r.text("hash")?));
    }
    let genesis = "0".repeat(64);
    c.execute(
        "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (tenant_id) DO NOTHING",
        &[tenant.into(), genesis.as_str().into()],
    )
    .await?;
    let r = c.fetch_one(sql, &[tenant.into()]).await?;
    Ok((r.int("seq")?, r.text("hash")?))
}

/// PostgreSQL's append (see [`append`]), `$1`-`$8` the event's columns and `$9`-`$11` the
/// record's cuts: the `WITH` items that lock the head and insert the event, and the statement
/// that moves the head (without its `RETURNING`).
const APPEND_PG_WITH: &[(&str, &str)] = &[
    (
        "head",
        "SELECT seq + 1 AS seq, hash AS prev FROM audit_heads WHERE tenant_id = $1 FOR UPDATE",
    ),
    (
        "sealed",
        "SELECT seq, prev, $9 || prev || $10 || seq::text || $11 AS record FROM {head}",
    ),
    (
        "appended",
        "INSERT INTO audit_events (tenant_id, seq, event_id, occurred_at, actor, \
         actor_id, action, entity_type, entity_id, record, hash) \
         SELECT $1, seq, $2, $3, $4, $5, $6, $7, $8, record, \
         encode(sha256(decode(prev, 'hex') || convert_to(record, 'UTF8')), 'hex') FROM {sealed} \
         RETURNING seq, record, hash",
    ),
];
const APPEND_PG_MOVE: &str =
    "UPDATE audit_heads h SET seq = a.seq, hash = a.hash FROM {appended} a WHERE h.tenant_id = $1";

/// `$1`-`$8` of an append of `e`: the event's columns.
fn event_args(e: &StoredAudit) -> Vec<Val> {
    vec![
        e.tenant_id.into(),
        e.event_id.into(),
        e.occurred_at.into(),
        e.actor.as_str().into(),
        e.actor_id.into(),
        e.action.as_str().into(),
        e.entity_type.as_str().into(),
        e.entity_id.clone().into(),
    ]
}

/// The arguments of PostgreSQL's append of `e`: its columns, then the record's cuts.
fn append_pg_args(e: &StoredAudit, record: &Unsealed) -> Vec<Val> {
    let mut args = event_args(e);
    args.extend([
        record.head.as_str().into(),
        record.middle.as_str().into(),
        record.tail.as_str().into(),
    ]);
    args
}

/// [`append`], when the caller needs nothing back: on PostgreSQL the append is deferred
/// ([`Conn::defer_with`]) and goes out with the transaction's other queued writes, or alone
/// before its next statement or commit, the head locked from then to the commit as before. The
/// tenant's head must exist: every tenant's creation appends its first event with [`append`].
pub async fn append_deferred(
    c: &mut dyn Conn,
    e: StoredAudit,
    record: &Unsealed,
) -> StoreResult<()> {
    if c.dialect() == Dialect::Postgres {
        let args = append_pg_args(&e, record);
        return c.defer_with(APPEND_PG_WITH, APPEND_PG_MOVE, args, 1).await;
    }
    append(c, e, record).await.map(drop)
}

/// Appends event `e` at the head of its tenant's chain and answers it as stored: `record` is
/// its canonical form cut where the head's `prev_hash` and `seq` go; `e`'s own `seq`, `record`
/// and `hash` are set here.
///
/// PostgreSQL locks the head, joins the record with the head's hash and next `seq`, hashes it
/// (`sha256` is built in), inserts it and moves the head in one statement, so the tenant's head
/// stays locked for that statement and the commit only: every writer of the tenant queues on
/// it, and a second round trip (with the server's work between the two) held them all up.
/// SQLite (one in-process writer, already serialised by `BEGIN IMMEDIATE`) reads the head and
/// seals the record here.
pub async fn append(
    c: &mut dyn Conn,
    mut e: StoredAudit,
    record: &Unsealed,
) -> StoreResult<StoredAudit> {
    const INSERT_SQLITE: &str = "INSERT INTO audit_events (tenant_id, event_id, occurred_at, \
         actor, actor_id, action, entity_type, entity_id, seq, record, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
    // The head moves only from the event's predecessor: a writer without the head lock fails.
    const MOVE_HEAD_SQLITE: &str =
        "UPDATE audit_heads SET seq = $2, hash = $3 WHERE tenant_id = $1 AND seq = $2 - 1";
    if c.dialect() == Dialect::Postgres {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            with_items(
                APPEND_PG_WITH,
                &format!("{APPEND_PG_MOVE} RETURNING a.seq, a.record, a.hash"),
            )
        });
        let args = append_pg_args(&e, record);
        let mut r = c.fetch_optional(&SQL, &args).await?;
        if r.is_none() {
            // The tenant's first event: create the genesis head, then append at it.
            lock_head(c, e.tenant_id).await?;
            r = c.fetch_optional(&SQL, &args).await?;
        }
        let r = r.ok_or_else(|| StoreError::Other("audit head missing after creation".into()))?;
        (e.seq, e.record, e.hash) = (r.int("seq")?, r.text("record")?, r.text("hash")?);
        return Ok(e);
    }
    let mut args = event_args(&e);
    let (seq, prev) = lock_head(c, e.tenant_id).await?;
    let (r, hash) = record
        .seal(seq + 1, &prev)
        .ok_or_else(|| StoreError::Other("audit head hash is not hex".into()))?;
    (e.seq, e.record, e.hash) = (seq + 1, r, hex(&hash));
    args.extend([
        e.seq.into(),
        e.record.as_str().into(),
        e.hash.as_str().into(),
    ]);
    c.execute(INSERT_SQLITE, &args).await?;
    let moved = c
        .execute(
            MOVE_HEAD_SQLITE,
            &[e.tenant_id.into(), e.seq.into(), e.hash.as_str().into()],
        )
        .await?;
    if moved != 1 {
        return Err(StoreError::Conflict {
            constraint: "audit_heads: the chain moved; the head lock was not held".into(),
        });
    }
    Ok(e)
}

/// Filters of `GET /audit/events`.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Entity kind.
    pub entity_type: Option<String>,
    /// Entity id.
    pub entity_id: Option<String>,
    /// Actor as recorded (email, `system`…) or actor user id.
    pub actor: Option<String>,
    /// Action.
    pub action: Option<String>,
    /// From this time on (inclusive).
    pub from: Option<OffsetDateTime>,
    /// Before this time (exclusive).
    pub to: Option<OffsetDateTime>,
    /// Oldest first when true; newest first otherwise.
    pub ascending: bool,
}

/// The WHERE clause of a filter over `tenant`'s events and its arguments (`$1` is the tenant).
fn filter_clause(tenant: TenantId, f: &AuditFilter) -> (String, Vec<Val>) {
    let mut w = Where::tenant("tenant_id", tenant);
    let mut push = |clause: &str, v: Val| w.push(clause, [v]);
    if let Some(v) = &f.entity_type {
        push("entity_type = ?", v.as_str().into());
    }
    if let Some(v) = &f.entity_id {
        push("entity_id = ?", v.as_str().into());
    }
    if let Some(v) = &f.action {
        push("action = ?", v.as_str().into());
    }
    if let Some(v) = &f.actor {
        match v.parse::<Uuid>() {
            Ok(id) => push("actor_id = ?", id.into()),
            Err(_) => push("actor = ?", v.to_ascii_lowercase().into()),
        }
    }
    if let Some(v) = f.from {
        push("occurred_at >= ?", v.into());
    }
    if let Some(v) = f.to {
        push("occurred_at < ?", v.into());
    }
    w.finish()
}

/// How many of `tenant`'s events match the filter.
pub async fn count(c: &mut dyn Conn, tenant: TenantId, f: &AuditFilter) -> StoreResult<i64> {
    let (filter, args) = filter_clause(tenant, f);
    c.fetch_one(
        &format!("SELECT count(*) AS n FROM audit_events WHERE {filter}"),
        &args,
    )
    .await?
    .int("n")
}

/// A page of `tenant`'s events and the number matching the filter.
pub async fn list(
    c: &mut dyn Conn,
    tenant: TenantId,
    f: &AuditFilter,
    limit: i64,
    offset: i64,
) -> StoreResult<(Vec<StoredAudit>, i64)> {
    let total = count(c, tenant, f).await?;
    let (filter, mut args) = filter_clause(tenant, f);
    let order = if f.ascending { "ASC" } else { "DESC" };
    let page = page_clause(&mut args, limit, offset);
    let sql = format!("SELECT {COLS} FROM audit_events WHERE {filter} ORDER BY seq {order} {page}");
    let rows = c.fetch_all(&sql, &args).await?;
    Ok((
        rows.iter().map(from_row).collect::<StoreResult<_>>()?,
        total,
    ))
}

/// The next `limit` events matching the filter with `seq > after`, oldest first: exports read
/// a period this way, by key rather than by offset, so a long period costs no more per batch.
pub async fn matching_after(
    c: &mut dyn Conn,
    tenant: TenantId,
    f: &AuditFilter,
    after: i64,
    limit: i64,
) -> StoreResult<Vec<StoredAudit>> {
    let (filter, mut args) = filter_clause(tenant, f);
    let n = args.len();
    args.push(after.into());
    args.push(limit.into());
    let sql = format!(
        "SELECT {COLS} FROM audit_events WHERE {filter} AND seq > ${} ORDER BY seq LIMIT ${}",
        n + 1,
        n + 2
    );
    c.fetch_all(&sql, &args)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// One event as verification reads it: the hashed record, its hash and the indexed columns the
/// record must agree with, each column as text in the wire format. SQLite stores them so and
/// they are moved out of the row as they are; PostgreSQL's native uuid and timestamp values are
/// formatted. Nothing is parsed only to be printed again.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainLink {
    /// Position in the chain.
    pub seq: i64,
    /// Event id.
    pub event_id: String,
    /// When it happened, in the wire format.
    pub occurred_at: String,
    /// Actor as recorded.
    pub actor: String,
    /// Actor's user id.
    pub actor_id: Option<String>,
    /// `<entity>.<verb>`.
    pub action: String,
    /// Entity kind.
    pub entity_type: String,
    /// Entity id.
    pub entity_id: Option<String>,
    /// RFC 8785 canonical JSON of the record, exactly the hashed bytes.
    pub record: String,
    /// Lowercase hex SHA-256.
    pub hash: String,
}

impl ChainLink {
    /// The event as the verifier takes it.
    pub fn event(&self) -> casegate_domain::audit::StoredEvent<'_> {
        casegate_domain::audit::StoredEvent {
            seq: self.seq,
            record: self.record.as_bytes(),
            hash: &self.hash,
            event_id: &self.event_id,
            actor: &self.actor,
            actor_id: self.actor_id.as_deref(),
            action: &self.action,
            entity_type: &self.entity_type,
            entity_id: self.entity_id.as_deref(),
            occurred_at: &self.occurred_at,
        }
    }
}

/// A column as wire text, taken out of its row.
fn wire_text(v: Val, col: &str) -> StoreResult<Option<String>> {
    match v {
        Val::Text(s) => Ok(s),
        Val::Uuid(u) => Ok(u.map(|u| u.to_string())),
        Val::Time(t) => Ok(t.map(casegate_domain::clock::wire_time)),
        Val::Int(None) | Val::Bytes(None) => Ok(None),
        _ => Err(StoreError::Other(format!("column {col}: expected text"))),
    }
}

/// Events with `seq > after`, oldest first, at most `limit` (verification reads the chain in
/// such batches).
pub async fn chain_after(
    c: &mut dyn Conn,
    tenant: TenantId,
    after: i64,
    limit: i64,
) -> StoreResult<Vec<ChainLink>> {
    const NAMES: [&str; 10] = [
        "seq",
        "event_id",
        "occurred_at",
        "actor",
        "actor_id",
        "action",
        "entity_type",
        "entity_id",
        "record",
        "hash",
    ];
    let sql = format!(
        "SELECT {} FROM audit_events WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        NAMES.join(", ")
    );
    let rows = c
        .fetch_all(&sql, &[tenant.into(), after.into(), limit.into()])
        .await?;
    rows.into_iter()
        .map(|r| {
            let vals: [Val; 10] = r
                .values
                .try_into()
                .map_err(|_| StoreError::Other("audit chain row: wrong column count".into()))?;
            let [
                seq,
                event_id,
                occurred_at,
                actor,
                actor_id,
                action,
                entity_type,
                entity_id,
                record,
                hash,
            ] = vals;
            let required = |v: Val, col: &str| {
                wire_text(v, col)?.ok_or_else(|| StoreError::Other(format!("column {col} is null")))
            };
            Ok(ChainLink {
                seq: match seq {
                    Val::Int(Some(s)) => s,
                    _ => return Err(StoreError::Other("column seq: expected integer".into())),
                },
                event_id: required(event_id, "event_id")?,
                occurred_at: required(occurred_at, "occurred_at")?,
                actor: required(actor, "actor")?,
                actor_id: wire_text(actor_id, "actor_id")?,
                action: required(action, "action")?,
                entity_type: required(entity_type, "entity_type")?,
                entity_id: wire_text(entity_id, "entity_id")?,
                record: required(record, "record")?,
                hash: required(hash, "hash")?,
            })
        })
        .collect()
}

/// A stored checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredCheckpoint {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Chain position vouched for.
    pub seq: i64,
    /// Hash at that position.
    pub hash: String,
    /// Signing time.
    pub signed_at: OffsetDateTime,
    /// Base64 Ed25519 signature.
    pub signature: String,
    /// Which key signed.
    pub key_id: String,
}

/// Stores a checkpoint; signing the same `seq` twice keeps the first.
pub async fn insert_checkpoint(c: &mut dyn Conn, cp: &StoredCheckpoint) -> StoreResult<()> {
    c.execute(
        "INSERT INTO audit_checkpoints (tenant_id, seq, hash, signed_at, signature, key_id) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (tenant_id, seq) DO NOTHING",
        &[cp.tenant_id.into(), cp.seq.into(), cp.hash.as_str().into(), cp.signed_at.into(), cp.signature.as_str().into(), cp.key_id.as_str().into()],
    )
    .await
    .map(drop)
}

fn checkpoint_from_row(r: &Row) -> StoreResult<StoredCheckpoint> {
    Ok(StoredCheckpoint {
        tenant_id: TenantId(r.uuid("tenant_id")?),
        seq: r.int("seq")?,
        hash: r.text("hash")?,
        signed_at: r.time("signed_at")?,
        signature: r.text("signature")?,
        key_id: r.text("key_id")?,
    })
}

/// The checkpoint at `seq`, if one was signed there.
pub async fn checkpoint_at(
    c: &mut dyn Conn,
    tenant: TenantId,
    seq: i64,
) -> StoreResult<Option<StoredCheckpoint>> {
    c.fetch_optional(
        "SELECT tenant_id, seq, hash, signed_at, signature, key_id FROM audit_checkpoints WHERE tenant_id = $1 AND seq = $2",
        &[tenant.into(), seq.into()],
    )
    .await?
    .as_ref()
    .map(checkpoint_from_row)
    .transpose()
}

/// Every checkpoint of `tenant`, oldest first.
pub async fn checkpoints(c: &mut dyn Conn, tenant: TenantId) -> StoreResult<Vec<StoredCheckpoint>> {
    let rows = c
        .fetch_all(
            "SELECT tenant_id, seq, hash, signed_at, signature, key_id FROM audit_checkpoints WHERE tenant_id = $1 ORDER BY seq",
            &[tenant.into()],
        )
        .await?;
    rows.iter().map(checkpoint_from_row).collect()
}

/// A tenant's chain head and its latest checkpoint, for the checkpoint job.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointState {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Current head seq (> 0).
    pub head_seq: i64,
    /// Seq of the latest checkpoint, if any.
    pub last_seq: Option<i64>,
    /// When the latest checkpoint was signed.
    pub last_signed_at: Option<OffsetDateTime>,
}

/// Every non-empty chain with its latest checkpoint, in one query. Like `tenants::list`, this
/// spans tenants: it serves the worker, never a tenant's request.
pub async fn checkpoint_states(c: &mut dyn Conn) -> StoreResult<Vec<CheckpointState>> {
    let rows = c
        .fetch_all(
            "SELECT h.tenant_id, h.seq AS head_seq, cp.seq AS last_seq, cp.signed_at AS last_signed_at \
             FROM audit_heads h \
             LEFT JOIN audit_checkpoints cp ON cp.tenant_id = h.tenant_id \
               AND cp.seq = (SELECT max(x.seq) FROM audit_checkpoints x WHERE x.tenant_id = h.tenant_id) \
             WHERE h.seq > 0",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(CheckpointState {
                tenant_id: TenantId(r.uuid("tenant_id")?),
                head_seq: r.int("head_seq")?,
                last_seq: r.opt_int("last_seq")?,
                last_signed_at: r.opt_time("last_signed_at")?,
            })
        })
        .collect()
}

/// The current head `(seq, hash)` without locking, if the tenant has events.
pub async fn head(c: &mut dyn Conn, tenant: TenantId) -> StoreResult<Option<(i64, String)>> {
    let r = c
        .fetch_optional(
            "SELECT seq, hash FROM audit_heads WHERE tenant_id = $1",
            &[tenant.into()],
        )
        .await?;
    match r {
        Some(r) if r.int("seq")? > 0 => Ok(Some((r.int("seq")?, r.text("hash")?))),
        _ => Ok(None),
    }
}
