//! Writing and checking the audit trail. Every state-changing command appends its event with
//! [`append`] inside its own transaction, as the last step before commit, so the change and its
//! record commit together or not at all (DESIGN.md principle 3). Events that record a refusal
//! (failed login, permission denied) are written with [`record`] in a transaction of their own.
use crate::{Error, Result, Services};
use base64::Engine;
use casegate_domain::audit::{
    self as chain, AuditEvent, AuditRecord, ChainVerifier, Checkpoint, CheckpointBody, Unsealed,
    Verification,
};
use casegate_domain::clock::wire_time;
use casegate_domain::ids::{TenantId, UserId};
use casegate_domain::principal::{Caller, Origin, Principal};
use casegate_domain::rbac::Permission;
use casegate_store::Conn;
use casegate_store::audit::{self as store, AuditFilter, StoredAudit, StoredCheckpoint};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;
use uuid::Uuid;

/// Who an event is attributed to.
#[derive(Clone, Debug)]
pub enum Actor {
    /// A user or identity-provider principal.
    User {
        /// The user id.
        id: UserId,
        /// Email, or `jwt:<sub>`.
        label: String,
    },
    /// Someone not (yet) authenticated, e.g. a failed login naming this account.
    Anonymous(String),
    /// casegate itself (operator commands, workers).
    System,
}

impl Actor {
    /// The actor of a principal.
    pub fn of(p: &Principal) -> Self {
        if p.is_system() {
            return Actor::System;
        }
        Actor::User {
            id: p.user_id,
            label: p.audit_label(),
        }
    }
}

/// What happened, before it is placed in the chain.
#[derive(Clone, Debug)]
pub struct Entry {
    /// `<entity>.<verb>`.
    pub action: &'static str,
    /// Entity kind.
    pub entity_type: &'static str,
    /// Entity id.
    pub entity_id: Option<String>,
    /// `{"field": {"before": …, "after": …}}`; never secrets.
    pub changes: Value,
}

impl Entry {
    /// An entry with no field changes.
    pub fn new(action: &'static str, entity_type: &'static str, entity_id: impl ToString) -> Self {
        Self {
            action,
            entity_type,
            entity_id: Some(entity_id.to_string()),
            changes: json!({}),
        }
    }
    /// Adds one changed field.
    pub fn change(
        mut self,
        field: &str,
        before: impl Into<Value>,
        after: impl Into<Value>,
    ) -> Self {
        if let Value::Object(m) = &mut self.changes {
            m.insert(
                field.to_string(),
                json!({ "before": before.into(), "after": after.into() }),
            );
        }
        self
    }
}

/// The Ed25519 key that signs checkpoints and exports. Kept in the data directory (or
/// configured); its bytes never reach a log (`Debug` shows only the key id).
pub struct AuditSigner {
    key: SigningKey,
    /// First 16 hex digits of SHA-256 of the public key.
    pub key_id: String,
}

impl std::fmt::Debug for AuditSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl AuditSigner {
    /// A signer from 32 secret bytes.
    pub fn from_bytes(secret: [u8; 32]) -> Self {
        let key = SigningKey::from_bytes(&secret);
        let key_id = chain::hex(&Sha256::digest(key.verifying_key().as_bytes())[..8]);
        Self { key, key_id }
    }
    /// A fresh random key (tests, first start).
    pub fn generate() -> Self {
        Self::from_bytes(rand::random())
    }
    /// Loads the key file (base64 of the 32 secret bytes), creating it with mode 0600 if absent.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        Ok(Self::from_bytes(
            crate::secrets::SecretKey::load_or_create(path, "audit key")?.0,
        ))
    }
    /// The secret half, for signing inside this crate.
    pub(crate) fn key(&self) -> &SigningKey {
        &self.key
    }
    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }
}

/// `entry` as a record to append, its canonical form cut where the chain's fields go, and its
/// row (without those fields).
fn prepare(
    now: OffsetDateTime,
    tenant: TenantId,
    actor: &Actor,
    origin: &Origin,
    entry: Entry,
) -> Result<(AuditRecord, Unsealed, StoredAudit)> {
    let (actor_label, actor_id) = match actor {
        Actor::User { id, label } => (label.clone(), Some(*id)),
        Actor::Anonymous(label) => (label.clone(), None),
        Actor::System => ("system".to_string(), None),
    };
    let event_id = Uuid::new_v4();
    // Built and canonicalised before the chain head is locked; the head's place is joined in
    // by the append itself (`store::append`).
    let record = AuditRecord {
        tenant_id: tenant.to_string(),
        seq: 0,
        event_id: event_id.to_string(),
        occurred_at: wire_time(now),
        actor: actor_label.clone(),
        actor_id: actor_id.map(|u| u.to_string()),
        actor_ip: origin.ip.map(|ip| ip.to_string()),
        request_id: origin.request_id.clone(),
        action: entry.action.to_string(),
        entity_type: entry.entity_type.to_string(),
        entity_id: entry.entity_id,
        changes: entry.changes,
        prev_hash: String::new(),
    };
    let unsealed = Unsealed::of(&record)
        .ok_or_else(|| Error::internal("audit record without its chain fields"))?;
    let row = StoredAudit {
        tenant_id: tenant,
        seq: 0,
        event_id,
        occurred_at: now,
        actor: actor_label,
        actor_id: actor_id.map(|u| u.0),
        action: record.action.clone(),
        entity_type: record.entity_type.clone(),
        entity_id: record.entity_id.clone(),
        record: String::new(),
        hash: String::new(),
    };
    Ok((record, unsealed, row))
}

/// Appends `entry` to `tenant`'s chain inside the open transaction `c`.
pub async fn append(
    c: &mut dyn Conn,
    now: OffsetDateTime,
    tenant: TenantId,
    actor: &Actor,
    origin: &Origin,
    entry: Entry,
) -> Result<AuditEvent> {
    let (mut record, unsealed, row) = prepare(now, tenant, actor, origin, entry)?;
    let stored = store::append(c, row, &unsealed).await?;
    record.seq = stored.seq;
    record.prev_hash = unsealed
        .prev_hash_in(&stored.record)
        .ok_or_else(|| Error::internal("appended audit record is not the one sent"))?
        .to_string();
    Ok(AuditEvent {
        record,
        hash: stored.hash,
    })
}

/// The case commands (those holding a `cases::Open`, from the case's lock on) of each tenant in
/// progress in this process, so one can tell whether it is alone in appending to its tenant's
/// chain ([`append_last_by`]). Other writers of the chain (case creation, tasks, users, the
/// worker) are not counted: when one of them holds the head, a joined append only waits longer.
#[derive(Debug, Default)]
pub(crate) struct ChainWriters(Mutex<HashMap<TenantId, usize>>);

impl ChainWriters {
    /// Counts a command of `tenant` in progress until the answer is dropped.
    pub(crate) fn enter(self: &Arc<Self>, tenant: TenantId) -> ChainTurn {
        *self.counts().entry(tenant).or_default() += 1;
        ChainTurn {
            writers: self.clone(),
            tenant,
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, usize>> {
        // A panic while the map was held leaves counts that are still whole numbers.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A command of a tenant in progress ([`ChainWriters::enter`]).
#[derive(Debug)]
pub(crate) struct ChainTurn {
    writers: Arc<ChainWriters>,
    tenant: TenantId,
}

impl ChainTurn {
    /// Whether no other case command of the tenant is in progress in this process.
    pub(crate) fn alone(&self) -> bool {
        self.writers.counts().get(&self.tenant).copied() == Some(1)
    }
}

impl Drop for ChainTurn {
    fn drop(&mut self) {
        let mut counts = self.writers.counts();
        if let Some(n) = counts.get_mut(&self.tenant) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.tenant);
            }
        }
    }
}

/// [`append`] of `entry` by the caller, as the last write of a transaction that needs nothing
/// back from it. When `turn` is alone (no other case command of the tenant is in progress here), on
/// PostgreSQL the append goes out with the transaction's other queued writes
/// (`store::append_deferred`): one round trip fewer. Otherwise it is a statement of its own, as
/// [`append`]: an append that waits for the chain head's lock re-reads the head when it gets it
/// (the holder moved it), and PostgreSQL then sets up every part of the statement again, all
/// the joined writes and their indexes, with the head locked, so every writer queued on the
/// head waits longer. (Measured at one tenant and 32 clients: joined always, 610-684 moves/s
/// against 843-919; docs/benchmarks.md, Transitions run 16.)
pub(crate) async fn append_last_by(
    turn: &ChainTurn,
    c: &mut dyn Conn,
    now: OffsetDateTime,
    p: &Caller,
    entry: Entry,
) -> Result<()> {
    if !turn.alone() {
        return append_by(c, now, p, entry).await.map(drop);
    }
    let (_, unsealed, row) = prepare(now, p.tenant_id, &Actor::of(p), &p.origin, entry)?;
    Ok(store::append_deferred(c, row, &unsealed).await?)
}

/// [`append`] with the caller as actor and the request's origin.
pub async fn append_by(
    c: &mut dyn Conn,
    now: OffsetDateTime,
    p: &Caller,
    entry: Entry,
) -> Result<AuditEvent> {
    append(c, now, p.tenant_id, &Actor::of(p), &p.origin, entry).await
}

/// Records an event in a transaction of its own (refusals, which change nothing else).
pub async fn record(
    svc: &Services,
    tenant: TenantId,
    actor: &Actor,
    origin: &Origin,
    entry: Entry,
) -> Result<()> {
    let mut tx = svc.db.begin().await?;
    append(&mut *tx, svc.clock.now(), tenant, actor, origin, entry).await?;
    tx.commit().await?;
    Ok(())
}

/// Checks `p` holds `perm`; a refusal of a sensitive operation is itself audited.
pub async fn require_sensitive(
    svc: &Services,
    p: &Caller,
    perm: Permission,
    entity_type: &'static str,
) -> Result<()> {
    if let Err(e) = p.require(perm) {
        let entry = Entry {
            action: "auth.permission_denied",
            entity_type,
            entity_id: None,
            changes: json!({ "required_permission": perm.as_str() }),
        };
        if let Err(audit_err) = record(svc, p.tenant_id, &Actor::of(p), &p.origin, entry).await {
            tracing::warn!(
                code = audit_err.code.as_str(),
                "could not audit a permission denial"
            );
        }
        return Err(e);
    }
    Ok(())
}

/// An event as the API returns it: the stored canonical record plus its hash.
pub fn to_event(s: &StoredAudit) -> Result<AuditEvent> {
    let record: AuditRecord = serde_json::from_str(&s.record)
        .map_err(|e| Error::internal(format!("audit record {}: {e}", s.seq)))?;
    Ok(AuditEvent {
        record,
        hash: s.hash.clone(),
    })
}

/// `GET /audit/events`.
pub async fn events(
    svc: &Services,
    p: &Caller,
    f: &AuditFilter,
    page: crate::Page,
) -> Result<(Vec<AuditEvent>, i64)> {
    p.require(Permission::AuditView)?;
    let mut c = svc.db.conn().await?;
    let (rows, total) = store::list(&mut *c, p.tenant_id, f, page.limit, page.offset).await?;
    Ok((rows.iter().map(to_event).collect::<Result<_>>()?, total))
}

/// A stored checkpoint as the API returns it.
pub(crate) fn to_checkpoint(c: &StoredCheckpoint) -> Checkpoint {
    Checkpoint {
        body: CheckpointBody {
            tenant_id: c.tenant_id.to_string(),
            seq: c.seq,
            hash: c.hash.clone(),
            signed_at: wire_time(c.signed_at),
        },
        signature: c.signature.clone(),
    }
}

/// Rows read per batch by verification.
const VERIFY_BATCH: i64 = 10_000;

/// Recomputes `tenant`'s chain and checks its checkpoints against the configured key.
///
/// Reading and checking overlap: a reader task fetches the next batch on a connection of its
/// own while the last one is checked on a blocking thread (hashing is CPU work), so a pass
/// costs about the larger of the database's time and the verifier's, not their sum.
pub async fn verify_tenant(svc: &Services, tenant: TenantId) -> Result<Verification> {
    verify_tenant_in_batches(svc, tenant, VERIFY_BATCH).await
}

/// [`verify_tenant`], reading `batch` events at a time (tests cross batch boundaries with
/// small ones).
pub async fn verify_tenant_in_batches(
    svc: &Services,
    tenant: TenantId,
    batch: i64,
) -> Result<Verification> {
    let checkpoints: Vec<Checkpoint> = {
        let mut c = svc.db.conn().await?;
        store::checkpoints(&mut *c, tenant)
            .await?
            .iter()
            .map(to_checkpoint)
            .collect()
    };
    let vk = svc.audit_signer.verifying_key();
    let mut v = ChainVerifier::new(&tenant.to_string(), &checkpoints, Some(&vk));
    // Two batches in flight: one being checked, the next read meanwhile.
    let (batches, mut arrived) = tokio::sync::mpsc::channel(1);
    let mut c = svc.db.conn().await?;
    let reader = tokio::spawn(async move {
        let mut after = 0;
        loop {
            let read = store::chain_after(&mut *c, tenant, after, batch).await;
            let next = match &read {
                Ok(b) if b.len() as i64 == batch => b.last().map(|e| e.seq),
                _ => None,
            };
            // A send fails once the checker has stopped (the chain broke): stop reading.
            if batches.send(read).await.is_err() {
                return;
            }
            match next {
                Some(seq) => after = seq,
                None => return,
            }
        }
    });
    while let Some(batch) = arrived.recv().await {
        let batch = batch?;
        let (back, intact) = tokio::task::spawn_blocking(move || {
            let intact = check_batch(&mut v, &batch);
            (v, intact)
        })
        .await
        .map_err(Error::internal)?;
        v = back;
        if !intact {
            break;
        }
    }
    drop(arrived);
    reader.await.map_err(Error::internal)?;
    Ok(v.finish())
}

/// Feeds a batch of stored events to the verifier; `false` once the chain is broken.
fn check_batch(v: &mut ChainVerifier, batch: &[store::ChainLink]) -> bool {
    batch.iter().all(|e| v.push(&e.event()))
}

/// `GET /audit/verify`.
pub async fn verify(svc: &Services, p: &Caller) -> Result<Verification> {
    p.require(Permission::AuditView)?;
    verify_tenant(svc, p.tenant_id).await
}

/// Signs and stores a checkpoint at `(seq, hash)` and returns the one stored at that position
/// (a concurrent signer's, if it got there first).
pub(crate) async fn sign_at(
    svc: &Services,
    c: &mut dyn Conn,
    tenant: TenantId,
    seq: i64,
    hash: &str,
) -> Result<StoredCheckpoint> {
    let now = svc.clock.now();
    let body = CheckpointBody {
        tenant_id: tenant.to_string(),
        seq,
        hash: hash.to_string(),
        signed_at: wire_time(now),
    };
    let signed = chain::sign_checkpoint(&svc.audit_signer.key, body);
    let cp = StoredCheckpoint {
        tenant_id: tenant,
        seq,
        hash: hash.to_string(),
        signed_at: now,
        signature: signed.signature,
        key_id: svc.audit_signer.key_id.clone(),
    };
    store::insert_checkpoint(c, &cp).await?;
    Ok(store::checkpoint_at(c, tenant, seq).await?.unwrap_or(cp))
}

/// Signs a checkpoint at the tenant's current head (none for an empty chain).
pub async fn checkpoint_tenant(svc: &Services, tenant: TenantId) -> Result<Option<Checkpoint>> {
    let mut c = svc.db.conn().await?;
    let Some((seq, hash)) = store::head(&mut *c, tenant).await? else {
        return Ok(None);
    };
    let stored = sign_at(svc, &mut *c, tenant, seq, &hash).await?;
    Ok(Some(to_checkpoint(&stored)))
}

/// `POST /audit/checkpoints`: a checkpoint on demand.
pub async fn checkpoint(svc: &Services, p: &Caller) -> Result<Option<Checkpoint>> {
    require_sensitive(svc, p, Permission::AuditExport, "audit_checkpoint").await?;
    checkpoint_tenant(svc, p.tenant_id).await
}

/// Signs a checkpoint for every tenant whose chain moved since its last checkpoint and whose
/// last checkpoint is older than `every`. Returns how many were signed (worker job).
pub async fn checkpoint_due(svc: &Services, every: time::Duration) -> Result<u64> {
    let states = {
        let mut c = svc.db.conn().await?;
        store::checkpoint_states(&mut *c).await?
    };
    let now = svc.clock.now();
    let mut signed = 0;
    for st in states {
        let due = match (st.last_seq, st.last_signed_at) {
            (Some(seq), Some(at)) => seq < st.head_seq && now - at >= every,
            _ => true,
        };
        if due && checkpoint_tenant(svc, st.tenant_id).await?.is_some() {
            signed += 1;
        }
    }
    Ok(signed)
}

/// `GET /audit/checkpoints`: the public key and the tenant's checkpoints.
pub async fn checkpoints(svc: &Services, p: &Caller) -> Result<(String, String, Vec<Checkpoint>)> {
    p.require(Permission::AuditView)?;
    let mut c = svc.db.conn().await?;
    let cps = store::checkpoints(&mut *c, p.tenant_id)
        .await?
        .iter()
        .map(to_checkpoint)
        .collect();
    let public = base64::engine::general_purpose::STANDARD
        .encode(svc.audit_signer.verifying_key().as_bytes());
    Ok((public, svc.audit_signer.key_id.clone(), cps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_is_alone_while_no_other_of_its_tenant_is_in_progress() {
        let writers = Arc::new(ChainWriters::default());
        let (bank, other) = (TenantId(Uuid::new_v4()), TenantId(Uuid::new_v4()));
        let first = writers.enter(bank);
        let elsewhere = writers.enter(other);
        assert!(first.alone() && elsewhere.alone());
        let second = writers.enter(bank);
        assert!(!first.alone() && !second.alone());
        drop(first);
        assert!(second.alone());
        drop((second, elsewhere));
        assert!(writers.counts().is_empty(), "no tenant is left counted");
    }
}
