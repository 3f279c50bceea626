//! Audit exports (API.md "Audit"): requested through the API, produced by the worker, stored in
//! the blob store, each file signed with the audit key (detached Ed25519 over its bytes).
//!
//! A request is checked (period of at most twelve months, event count within the format's
//! bound) and queued in one transaction with its audit event. A worker claims it under a lease,
//! writes the file, signs a checkpoint at the last exported event so the JSON verifies on its
//! own, and in one transaction marks it ready, audits the completion and puts
//! `audit.export_ready` in the outbox. A worker that dies mid-export loses its lease and the
//! export is taken up again; after [`MAX_ATTEMPTS`] failures it is marked `failed`.
use crate::audit::{self, Actor, Entry};
use crate::report::{self, CsvExport, ExportCheckpoint, JsonExport, ReportMeta};
use crate::{Error, Page, Result, Services};
use base64::Engine;
use casegate_domain::audit::AuditEvent;
use casegate_domain::clock::wire_time;
use casegate_domain::events::AUDIT_EXPORT_READY;
use casegate_domain::export::{self, ExportFormat, ExportStatus};
use casegate_domain::ids::TenantId;
use casegate_domain::principal::{Caller, Origin};
use casegate_domain::rbac::Permission;
use casegate_store::audit::{self as audit_store, AuditFilter};
use casegate_store::exports::{self as store, ExportFile, StoredExport};
use casegate_store::{Conn, tenants};
use ed25519_dalek::Signer;
use serde_json::json;
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

/// Attempts before an export is marked `failed`.
pub const MAX_ATTEMPTS: i64 = 3;
/// How long a worker's claim on an export lasts before another worker may take it over.
pub const LEASE: time::Duration = time::Duration::minutes(15);
/// Events read from the database per batch while writing a file.
const BATCH: i64 = 5_000;

/// A validated export request.
#[derive(Clone, Debug)]
pub struct ExportRequest {
    /// File format.
    pub format: ExportFormat,
    /// Period start (inclusive).
    pub from: OffsetDateTime,
    /// Period end (exclusive).
    pub to: OffsetDateTime,
    /// Only this entity type.
    pub entity_type: Option<String>,
    /// Whether events carry `prev_hash`/`hash` (default true).
    pub include_hash_chain: bool,
}

fn filter_of(from: OffsetDateTime, to: OffsetDateTime, entity_type: Option<String>) -> AuditFilter {
    AuditFilter {
        entity_type,
        from: Some(from),
        to: Some(to),
        ..AuditFilter::default()
    }
}

/// `POST /audit/exports`: queues an export (`audit.export`).
pub async fn request(svc: &Services, p: &Caller, req: ExportRequest) -> Result<StoredExport> {
    audit::require_sensitive(svc, p, Permission::AuditExport, "audit_export").await?;
    let now = svc.clock.now();
    export::check_range(req.from, req.to, now)?;
    let entity_type = req
        .entity_type
        .as_deref()
        .map(|t| casegate_domain::validate::text("entity_type", t, 64))
        .transpose()?;
    let max = req.format.max_events(svc.config.audit_export_max_events);
    let filter = filter_of(req.from, req.to, entity_type.clone());
    let mut tx = svc.db.begin().await?;
    let count = audit_store::count(&mut *tx, p.tenant_id, &filter).await?;
    if count > max {
        return Err(Error::validation(
            "to",
            format!(
                "the period holds {count} events; a {} export holds at most {max}: shorten the period or filter by entity_type",
                req.format.as_str()
            ),
        ));
    }
    let e = StoredExport {
        tenant_id: p.tenant_id,
        id: Uuid::from_bytes(crate::random_id()),
        format: req.format,
        from: req.from,
        to: req.to,
        entity_type,
        include_hash_chain: req.include_hash_chain,
        status: ExportStatus::Queued,
        requested_by: Some(p.user_id.0),
        requested_by_label: p.audit_label(),
        requested_at: now,
        attempts: 0,
        lease_until: None,
        started_at: None,
        finished_at: None,
        event_count: None,
        first_seq: None,
        last_seq: None,
        size_bytes: None,
        sha256: None,
        signature: None,
        key_id: None,
        error: None,
    };
    store::insert(&mut *tx, &e).await?;
    let entry = Entry {
        action: "audit_export.requested",
        entity_type: "audit_export",
        entity_id: Some(e.id.to_string()),
        changes: json!({
            "format": { "before": null, "after": e.format.as_str() },
            "from": { "before": null, "after": wire_time(e.from) },
            "to": { "before": null, "after": wire_time(e.to) },
            "entity_type": { "before": null, "after": e.entity_type },
            "include_hash_chain": { "before": null, "after": e.include_hash_chain },
        }),
    };
    audit::append_by(&mut *tx, now, p, entry).await?;
    tx.commit().await?;
    Ok(e)
}

async fn get_own(svc: &Services, p: &Caller, id: &str) -> Result<StoredExport> {
    let id: Uuid = id.parse().map_err(|_| Error::not_found("export"))?;
    let mut c = svc.db.conn().await?;
    store::get(&mut *c, p.tenant_id, id)
        .await?
        .ok_or_else(|| Error::not_found("export"))
}

/// `GET /audit/exports/{id}` (`audit.export`).
pub async fn get(svc: &Services, p: &Caller, id: &str) -> Result<StoredExport> {
    p.require(Permission::AuditExport)?;
    get_own(svc, p, id).await
}

/// `GET /audit/exports` (`audit.export`): newest first.
pub async fn list(svc: &Services, p: &Caller, page: Page) -> Result<(Vec<StoredExport>, i64)> {
    p.require(Permission::AuditExport)?;
    let mut c = svc.db.conn().await?;
    Ok(store::list(&mut *c, p.tenant_id, page.limit, page.offset).await?)
}

/// `GET /audit/exports/{id}/download` (`audit.export`): the ready export and its open file.
/// The download itself is audited.
pub async fn download(
    svc: &Services,
    p: &Caller,
    id: &str,
) -> Result<(StoredExport, tokio::fs::File)> {
    audit::require_sensitive(svc, p, Permission::AuditExport, "audit_export").await?;
    let e = get_own(svc, p, id).await?;
    let (ExportStatus::Ready, Some(sha)) = (e.status, e.sha256.as_deref()) else {
        return Err(Error::new(
            casegate_domain::Code::ExportNotReady,
            format!(
                "the export is {}; download it once it is ready",
                e.status.as_str()
            ),
        ));
    };
    let file = svc.blobs.open(sha).await.map_err(|err| {
        let mut e = Error::new(
            casegate_domain::Code::Unavailable,
            "the export file is not in this server's data directory",
        );
        e.cause = Some(err.to_string());
        e
    })?;
    audit::record(
        svc,
        p.tenant_id,
        &Actor::of(p),
        &p.origin,
        Entry::new("audit_export.downloaded", "audit_export", e.id),
    )
    .await?;
    Ok((e, file))
}

/// Runs queued exports until none is left or `max` have been handled (worker job). Returns how
/// many were handled.
pub async fn run_pending(svc: &Services, max: u64) -> Result<u64> {
    let mut done = 0;
    while done < max {
        let claimed = {
            let now = svc.clock.now();
            let mut tx = svc.db.begin().await?;
            let e = store::claim_next(&mut *tx, now, now + LEASE).await?;
            tx.commit().await?;
            e
        };
        let Some(e) = claimed else { break };
        run_one(svc, e).await?;
        done += 1;
    }
    Ok(done)
}

async fn run_one(svc: &Services, e: StoredExport) -> Result<()> {
    match produce(svc, &e).await {
        Ok(file) => finish(svc, &e, Ok(file)).await,
        Err(err) => {
            tracing::warn!(
                export_id = %e.id,
                attempt = e.attempts,
                code = err.code.as_str(),
                cause = err.cause.as_deref().unwrap_or(""),
                "audit export failed"
            );
            finish(svc, &e, Err(err)).await
        }
    }
}

/// Records the outcome: ready (audited, `audit.export_ready` queued), retried, or failed for
/// good (audited, `audit.export_ready` with status `failed`).
async fn finish(svc: &Services, e: &StoredExport, outcome: Result<ExportFile>) -> Result<()> {
    let now = svc.clock.now();
    let mut tx = svc.db.begin().await?;
    let (status, entry, file) = match outcome {
        Ok(f) => {
            if !store::mark_ready(&mut *tx, e, now, &f).await? {
                return Ok(()); // another worker took it over; its outcome counts
            }
            let entry = Entry::new("audit_export.completed", "audit_export", e.id)
                .change("status", "running", "ready")
                .change("sha256", serde_json::Value::Null, f.sha256.as_str())
                .change("event_count", serde_json::Value::Null, f.event_count);
            (ExportStatus::Ready, entry, Some(f))
        }
        Err(err) => {
            let give_up = e.attempts >= MAX_ATTEMPTS;
            let message = err.message.clone();
            if !store::mark_failed(&mut *tx, e, now, &message, give_up).await? {
                return Ok(());
            }
            if !give_up {
                return Ok(tx.commit().await?);
            }
            let entry = Entry::new("audit_export.failed", "audit_export", e.id)
                .change("status", "running", "failed")
                .change("error", serde_json::Value::Null, message);
            (ExportStatus::Failed, entry, None)
        }
    };
    audit::append(
        &mut *tx,
        now,
        e.tenant_id,
        &Actor::System,
        &Origin::default(),
        entry,
    )
    .await?;
    let data = json!({
        "export_id": e.id.to_string(),
        "status": status.as_str(),
        "format": e.format.as_str(),
        "from": wire_time(e.from),
        "to": wire_time(e.to),
        "event_count": file.as_ref().map(|f| f.event_count),
        "sha256": file.as_ref().map(|f| f.sha256.clone()),
        "signature": file.as_ref().map(|f| f.signature.clone()),
    });
    crate::enqueue(
        &mut *tx,
        e.tenant_id,
        now,
        AUDIT_EXPORT_READY,
        data,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The checkpoint vouching for `(seq, hash)`: the one stored at that position, signed now if
/// there was none.
async fn checkpoint_at(
    svc: &Services,
    c: &mut dyn Conn,
    tenant: TenantId,
    seq: i64,
    hash: &str,
) -> Result<ExportCheckpoint> {
    let stored = audit::sign_at(svc, c, tenant, seq, hash).await?;
    Ok(ExportCheckpoint {
        checkpoint: audit::to_checkpoint(&stored),
        key_id: stored.key_id,
        public_key: base64::engine::general_purpose::STANDARD
            .encode(svc.audit_signer.verifying_key().as_bytes()),
    })
}

enum Writer {
    Json(JsonExport),
    Csv(Box<CsvExport>),
    Pdf(Vec<AuditEvent>),
}

/// Writes the file, stores it and signs it.
async fn produce(svc: &Services, e: &StoredExport) -> Result<ExportFile> {
    let mut c = svc.db.conn().await?;
    let tenant = tenants::get(&mut *c, e.tenant_id)
        .await?
        .ok_or_else(|| Error::internal("export of an unknown tenant"))?;
    let meta = ReportMeta {
        tenant_id: tenant.id.to_string(),
        tenant_name: tenant.name,
        tenant_slug: tenant.slug,
        from: wire_time(e.from),
        to: wire_time(e.to),
        generated_at: wire_time(svc.clock.now()),
        entity_type: e.entity_type.clone(),
        include_hash_chain: e.include_hash_chain,
        requested_by: e.requested_by_label.clone(),
        retention_days: svc.config.audit_retention_days,
    };
    let max = e.format.max_events(svc.config.audit_export_max_events);
    let mut w = match e.format {
        ExportFormat::Json => Writer::Json(JsonExport::begin(&meta)),
        ExportFormat::Csv => Writer::Csv(Box::new(CsvExport::begin(&meta))),
        ExportFormat::Pdf => Writer::Pdf(Vec::new()),
    };
    let filter = filter_of(e.from, e.to, e.entity_type.clone());
    let (mut count, mut first, mut last) = (0i64, None, None::<(i64, String)>);
    let mut after = 0;
    loop {
        let batch =
            audit_store::matching_after(&mut *c, e.tenant_id, &filter, after, BATCH).await?;
        let Some(tail) = batch.last() else { break };
        after = tail.seq;
        count += batch.len() as i64;
        if count > max {
            return Err(Error::validation(
                "to",
                format!("the period now holds more than {max} events; request a shorter one"),
            ));
        }
        for row in &batch {
            let ev = audit::to_event(row)?;
            first.get_or_insert(ev.record.seq);
            last = Some((ev.record.seq, ev.hash.clone()));
            match &mut w {
                Writer::Json(j) => j.event(&ev),
                Writer::Csv(x) => x.event(&ev),
                Writer::Pdf(v) => v.push(ev),
            }
        }
        if (batch.len() as i64) < BATCH {
            break;
        }
    }
    let checkpoint = match &last {
        Some((seq, hash)) if e.include_hash_chain => {
            Some(checkpoint_at(svc, &mut *c, e.tenant_id, *seq, hash).await?)
        }
        _ => None,
    };
    drop(c);
    let bytes = match w {
        Writer::Json(j) => j.finish(checkpoint.as_ref()),
        Writer::Csv(x) => x.finish().map_err(Error::internal)?,
        Writer::Pdf(events) => {
            // Laying out and compressing hundreds of pages is CPU work: keep it off the runtime.
            tokio::task::spawn_blocking(move || report::pdf(&meta, &events, checkpoint.as_ref()))
                .await
                .map_err(Error::internal)?
                .map_err(Error::internal)?
        }
    };
    let bytes = Arc::new(bytes);
    let signature = {
        let (signer, bytes) = (svc.audit_signer.clone(), bytes.clone());
        tokio::task::spawn_blocking(move || {
            base64::engine::general_purpose::STANDARD.encode(signer.key().sign(&bytes).to_bytes())
        })
        .await
        .map_err(Error::internal)?
    };
    let size_bytes = bytes.len() as i64;
    let sha256 = svc
        .blobs
        .put(bytes)
        .await
        .map_err(|err| Error::internal(format!("writing the export file: {err}")))?;
    Ok(ExportFile {
        event_count: count,
        seq_range: first.zip(last.map(|l| l.0)),
        size_bytes,
        sha256,
        signature,
        key_id: svc.audit_signer.key_id.clone(),
    })
}
