//! Use cases of casegate: who may do what, in which tenant, in one transaction per command.
//! REST handlers and GraphQL resolvers are thin and call these functions; neither calls the other.
//!
//! # Layout
//! - [`Services`]: the shared handle (database, clock, configuration, caches) every use case
//!   takes; built once at start-up and passed explicitly.
//! - [`auth`]: turning a credential (API key, JWT, session cookie) into a
//!   [`casegate_domain::principal::Principal`], with a short-lived cache so the hot path does not
//!   hit the database; password login and logout.
//! - [`jwt`]: RS256 verification against a JWKS fetched over HTTP and cached by `kid`.
//! - [`password`]: Argon2id hashing, off the async runtime.
//! - [`users`], [`api_keys`], [`tenants`]: administration commands.
//! - [`demo`]: the idempotent sandbox tenant of `casegate demo`.
//! - [`audit`]: appending to and verifying the hash-chained audit trail, signed checkpoints.
//! - [`exports`], [`report`]: audit exports (JSON, CSV, PDF) produced by the worker, signed.
//! - [`case_types`], [`cases`], [`case_views`], [`attachments`]: case types, cases and alerts
//!   with their investigation record; the wire shapes REST, GraphQL and the outbox share.
//! - [`approvals`]: transition requests, the approver's inbox, decisions and the approval
//!   timer (reminders, escalation, expiry).
//! - [`tasks`]: tasks on cases, mandatory ones blocking a status.
//! - [`dispatch`]: the outbox dispatcher, running rules' post-actions after commit (at least
//!   once, each action once, keyed by the event id).
//! - [`notifications`]: each person's in-app inbox, fed by the events people must hear of.
//! - [`mail`]: e-mail copies of notifications over SMTP, sent by the worker after commit.
//! - [`webhooks`]: registrations, the fan-out of outbox events into deliveries, signed delivery
//!   with retries and a circuit breaker, the delivery record.
//! - [`blobs`]: the content-addressed file store under the data directory.
//! - [`secrets`]: secrets at rest (webhook signing secrets) sealed with AES-256-GCM under a key
//!   kept outside the database.
#![forbid(unsafe_code)]

pub mod api_keys;
pub mod approvals;
pub mod attachments;
pub mod audit;
pub mod auth;
pub mod blobs;
pub mod case_types;
pub mod case_views;
pub mod cases;
pub mod demo;
pub mod dispatch;
pub mod exports;
pub mod jwt;
pub mod mail;
pub mod notifications;
pub mod password;
pub mod report;
pub mod sars;
pub mod secrets;
pub mod tasks;
pub mod tenants;
pub mod users;
pub mod webhooks;
pub mod xsd;

use casegate_domain::clock::Clock;
use casegate_store::Database;
use std::sync::Arc;
use std::time::Duration;

pub use casegate_domain::{Code, Error, Result};

/// Settings of the service layer (a slice of the server's `Settings`).
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// The `<env>` part of generated API keys (`cg_<env>_…`).
    pub key_env: String,
    /// How long a login session lasts.
    pub session_ttl: time::Duration,
    /// How long a resolved credential is served from memory before it is looked up again.
    /// Revocation and role changes made through this process invalidate the cache at once.
    pub auth_cache_ttl: Duration,
    /// JWT verification, when an identity provider is configured.
    pub jwt: Option<jwt::JwtConfig>,
    /// Root of the blob store (audit exports, attachments): `<data dir>/blobs`.
    pub blob_dir: std::path::PathBuf,
    /// Most events one JSON or CSV audit export may hold (PDF reports hold fewer).
    pub audit_export_max_events: i64,
    /// How long audit events are kept at the least, in days (stated in exports; the trail has
    /// no deletion path at all).
    pub audit_retention_days: i64,
    /// Plain-HTTP webhooks to loopback addresses (`--allow-insecure-webhooks`, development).
    pub allow_insecure_webhooks: bool,
    /// Webhooks to private (RFC 1918, unique-local, shared) addresses, for receivers inside
    /// the operator's network. Link-local and metadata addresses stay refused.
    pub allow_private_webhooks: bool,
    /// How long one webhook attempt may take (10 s).
    pub webhook_timeout: Duration,
    /// SMTP for e-mail copies of notifications (none: in-app only).
    pub smtp: Option<mail::SmtpConfig>,
    /// The key sealing secrets at rest (default: random, for tests).
    pub secrets_key: secrets::SecretKey,
    /// SAR filing: the regulators' schemas and the validator.
    pub sar: sars::SarConfig,
    /// How long a settled outbox event (fanned out and dispatched) is kept before the worker
    /// purges it ([`dispatch::purge_settled`]). Webhook deliveries keep their own copy of the
    /// body and the audit trail its own record, so this is the transport's retention only.
    pub outbox_retention: time::Duration,
}

/// The default outbox retention, in days.
pub const DEFAULT_OUTBOX_RETENTION_DAYS: i64 = 30;

/// Seven years, the default audit retention.
pub const DEFAULT_AUDIT_RETENTION_DAYS: i64 = 2557;
/// The shortest retention accepted: five years, the record-keeping period of the Bank Secrecy
/// Act (31 CFR 1010.430(d)).
pub const MIN_AUDIT_RETENTION_DAYS: i64 = 1827;

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            key_env: "live".into(),
            session_ttl: time::Duration::hours(8),
            auth_cache_ttl: Duration::from_secs(10),
            jwt: None,
            blob_dir: std::env::temp_dir().join("casegate-blobs"),
            audit_export_max_events: 1_000_000,
            audit_retention_days: DEFAULT_AUDIT_RETENTION_DAYS,
            allow_insecure_webhooks: false,
            allow_private_webhooks: false,
            webhook_timeout: webhooks::TIMEOUT,
            smtp: None,
            secrets_key: secrets::SecretKey::default(),
            sar: sars::SarConfig::default(),
            outbox_retention: time::Duration::days(DEFAULT_OUTBOX_RETENTION_DAYS),
        }
    }
}

/// The shared handle of every use case.
pub struct Services {
    /// The database (SQLite or PostgreSQL).
    pub db: Arc<dyn Database>,
    /// The injected clock: every business time comes from here.
    pub clock: Arc<dyn Clock>,
    /// Service settings.
    pub config: ServiceConfig,
    /// Resolved credentials, keyed by the SHA-256 of the secret.
    pub(crate) auth_cache: auth::AuthCache,
    /// JWKS keys by `kid`, when JWT is configured.
    pub(crate) jwks: Option<jwt::Jwks>,
    /// Signs audit checkpoints and exports.
    pub audit_signer: Arc<audit::AuditSigner>,
    /// Files too large for a row: audit exports, attachments.
    pub blobs: blobs::BlobStore,
    /// The HTTP client of webhook deliveries (guarded resolver, no redirects, timeout).
    pub(crate) webhook_client: reqwest::Client,
    /// The SMTP transport when e-mail is configured (its settings were checked at start-up).
    pub(crate) mailer: Option<lettre::AsyncSmtpTransport<lettre::Tokio1Executor>>,
    /// Seals and opens secrets at rest.
    pub(crate) secrets: secrets::SecretBox,
    /// Decoded case types, checked against the stored version on every use.
    pub(crate) case_types: case_types::Cache,
    /// The commands of each tenant in progress that end with an audit append.
    pub(crate) chain_writers: Arc<audit::ChainWriters>,
}

impl Services {
    /// Builds the services over a migrated database.
    pub fn new(
        db: Arc<dyn Database>,
        clock: Arc<dyn Clock>,
        config: ServiceConfig,
        audit_signer: Arc<audit::AuditSigner>,
    ) -> Arc<Self> {
        let jwks = config.jwt.clone().map(jwt::Jwks::new);
        Arc::new(Self {
            audit_signer,
            blobs: blobs::BlobStore::new(&config.blob_dir),
            auth_cache: auth::AuthCache::new(config.auth_cache_ttl),
            webhook_client: webhooks::client(&config),
            mailer: config.smtp.as_ref().and_then(|c| mail::transport(c).ok()),
            secrets: secrets::SecretBox::new(&config.secrets_key),
            case_types: case_types::Cache::default(),
            chain_writers: Arc::default(),
            db,
            clock,
            config,
            jwks,
        })
    }
}

/// A page request, validated: `limit` 1..=200 (default 20), `offset` ≥ 0 (API.md "Lists").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// Rows per page.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
}

impl Page {
    /// The largest `limit` a client may ask for.
    pub const MAX_LIMIT: i64 = 200;

    /// Validates optional `limit`/`offset` query values.
    pub fn new(limit: Option<i64>, offset: Option<i64>) -> Result<Self> {
        let limit = limit.unwrap_or(20);
        let offset = offset.unwrap_or(0);
        if !(1..=Self::MAX_LIMIT).contains(&limit) {
            return Err(Error::validation("limit", "must be between 1 and 200"));
        }
        if offset < 0 {
            return Err(Error::validation("offset", "must not be negative"));
        }
        Ok(Self { limit, offset })
    }
}

/// Random alphanumeric (base62) string of `n` characters from the OS-seeded CSPRNG.
pub(crate) fn random_token(n: usize) -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(&rand::distr::Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// Puts the domain event `event_type` in the outbox inside the caller's transaction: `data`
/// (an object) with the fields of `extra` (an object) added.
pub(crate) async fn enqueue(
    c: &mut dyn casegate_store::Conn,
    tenant: casegate_domain::ids::TenantId,
    now: time::OffsetDateTime,
    event_type: &str,
    data: serde_json::Value,
    extra: serde_json::Value,
) -> Result<()> {
    enqueue_with(c, tenant, now, event_type, data, extra, None).await
}

/// [`enqueue`], with work for the dispatcher (`actions`: a rule's post-actions).
pub(crate) async fn enqueue_with(
    c: &mut dyn casegate_store::Conn,
    tenant: casegate_domain::ids::TenantId,
    now: time::OffsetDateTime,
    event_type: &str,
    mut data: serde_json::Value,
    extra: serde_json::Value,
    actions: Option<serde_json::Value>,
) -> Result<()> {
    if let (serde_json::Value::Object(d), serde_json::Value::Object(x)) = (&mut data, extra) {
        d.extend(x);
    }
    // Time-ordered ids: events written by one transaction keep their order behind equal
    // `created_at` (webhooks deliver a case's events in that order).
    let e = casegate_store::outbox::OutboxEvent {
        tenant_id: tenant,
        id: uuid::Uuid::now_v7(),
        event_type: event_type.into(),
        created_at: now,
        data,
        actions,
        dispatched_at: None,
        attempts: 0,
        last_error: None,
    };
    Ok(casegate_store::outbox::insert(c, &e).await?)
}

/// 16 random bytes for a v4 id.
pub(crate) fn random_id() -> [u8; 16] {
    rand::random()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_bounded() {
        assert_eq!(
            Page::new(None, None).unwrap(),
            Page {
                limit: 20,
                offset: 0
            }
        );
        assert_eq!(Page::new(Some(200), Some(5)).unwrap().limit, 200);
        assert_eq!(
            Page::new(Some(201), None).unwrap_err().param.as_deref(),
            Some("limit")
        );
        assert!(Page::new(Some(0), None).is_err());
        assert_eq!(
            Page::new(None, Some(-1)).unwrap_err().param.as_deref(),
            Some("offset")
        );
    }

    #[test]
    fn tokens_are_base62_and_distinct() {
        let a = random_token(40);
        assert_eq!(a.len(), 40);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, random_token(40));
    }
}
