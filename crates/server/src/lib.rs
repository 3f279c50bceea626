//! The `casegate` binary's library: settings, backend choice, process roles, start and
//! shutdown. `main` is thin; tests start a real server with [`serve`] on `127.0.0.1:0`.
//!
//! # Layout
//! - [`settings`]: the command line and the layered [`Settings`].
//! - [`open_database`]: picks SQLite or PostgreSQL from the URL scheme and migrates.
//! - [`services`]: builds the service layer from settings and a clock.
//! - [`serve`]: runs the API and/or the worker until the shutdown token fires.
//! - [`demo_summary`]: the friendly text `casegate demo` prints.
//! - [`logs`]: JSON log lines on stderr through a writer thread.
#![forbid(unsafe_code)]

pub mod logs;
pub mod settings;

use anyhow::Context;
use axum::ServiceExt;
use casegate_domain::clock::Clock;
use casegate_service::{ServiceConfig, Services, jwt::JwtConfig};
use casegate_store::Database;
pub use settings::{Role, Settings};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Opens the database named by the settings and applies pending migrations.
pub async fn open_database(s: &Settings) -> anyhow::Result<Arc<dyn Database>> {
    let db: Arc<dyn Database> = if s.database_url.starts_with("sqlite:") {
        let path = casegate_store_sqlite::path_from_url(&s.database_url)
            .context("sqlite URL without a path")?;
        Arc::new(
            casegate_store_sqlite::SqliteDb::open(&path, s.db_max_connections)
                .await
                .context("opening SQLite")?,
        )
    } else {
        Arc::new(
            casegate_store_pg::PgDb::connect(&s.database_url, s.db_max_connections)
                .await
                .context("connecting to PostgreSQL")?,
        )
    };
    db.migrate().await.context("applying migrations")?;
    Ok(db)
}

/// Loads the audit signing key, creating it (mode 0600) on first start.
pub fn audit_signer(s: &Settings) -> anyhow::Result<Arc<casegate_service::audit::AuditSigner>> {
    let signer = casegate_service::audit::AuditSigner::load_or_create(&s.audit_key_file)
        .with_context(|| format!("audit signing key {}", s.audit_key_file.display()))?;
    Ok(Arc::new(signer))
}

/// The service layer over `db`, with the given clock and audit signing key; the secrets-at-rest
/// key file is read (created on first start).
pub fn services(
    s: &Settings,
    db: Arc<dyn Database>,
    clock: Arc<dyn Clock>,
    signer: Arc<casegate_service::audit::AuditSigner>,
) -> anyhow::Result<Arc<Services>> {
    let config = ServiceConfig {
        key_env: s.key_env.clone(),
        session_ttl: time::Duration::minutes(s.session_ttl_minutes),
        auth_cache_ttl: Duration::from_secs(s.auth_cache_ttl_secs),
        jwt: s.jwt.as_ref().map(|j| JwtConfig {
            jwks_url: j.jwks_url.clone(),
            issuer: j.issuer.clone(),
            audience: j.audience.clone(),
            tenant_claim: j.tenant_claim.clone(),
            roles_claim: j.roles_claim.clone(),
            leeway: time::Duration::seconds(j.leeway_secs),
            min_refresh: casegate_service::jwt::REFRESH_FLOOR,
        }),
        blob_dir: s.data_dir.join("blobs"),
        audit_export_max_events: s.audit_export_max_events,
        audit_retention_days: s.audit_retention_days,
        outbox_retention: time::Duration::days(s.outbox_retention_days),
        allow_insecure_webhooks: s.allow_insecure_webhooks,
        allow_private_webhooks: s.allow_private_webhooks,
        webhook_timeout: Duration::from_secs(s.webhook_timeout_secs),
        smtp: s.smtp.clone(),
        sar: s.sar.clone(),
        secrets_key: casegate_service::secrets::SecretKey::load_or_create(
            &s.secrets_key_file,
            "secrets key",
        )
        .with_context(|| format!("secrets key {}", s.secrets_key_file.display()))?,
    };
    Ok(Services::new(db, clock, config, signer))
}

/// The HTTP application for these settings.
pub fn app(s: &Settings, svc: Arc<Services>) -> impl casegate_api::App {
    casegate_api::app(
        svc,
        casegate_api::ApiConfig {
            max_body_bytes: s.max_body_bytes,
            max_attachment_bytes: s.max_attachment_bytes,
            request_timeout: Duration::from_secs(s.request_timeout_secs),
            rate_limit_per_minute: s.rate_limit_per_minute,
            login_attempts_per_minute: s.login_attempts_per_minute,
        },
    )
}

/// Runs the API (on `listener`) and/or the worker, per the role, until `shutdown` fires; then
/// drains in-flight requests, stops the worker and closes the pool.
pub async fn serve(
    s: &Settings,
    svc: Arc<Services>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Tenants created before a built-in case type existed get it now (idempotent).
    casegate_service::case_types::ensure_builtins_everywhere(&svc)
        .await
        .map_err(|e| anyhow::anyhow!("seeding built-in case types: {e}"))?;
    // Webhook secrets stored before they were sealed at rest are sealed now (idempotent).
    casegate_service::webhooks::seal_stored(&svc)
        .await
        .map_err(|e| anyhow::anyhow!("sealing stored webhook secrets: {e}"))?;
    let worker = (s.role != Role::Api).then(|| {
        let w = casegate_worker::Worker::new(
            svc.clone(),
            Duration::from_millis(s.worker_tick_ms),
            Duration::from_millis(s.delivery_tick_ms),
            time::Duration::minutes(s.audit_checkpoint_minutes),
        );
        tokio::spawn(w.run(shutdown.child_token()))
    });
    if s.role != Role::Worker {
        // Credentials revoked or changed through another process sharing the database stop
        // working here at once (PostgreSQL; SQLite has one process). Subscribed before the
        // first request is served.
        let feed = casegate_service::auth::invalidations(&svc)
            .await
            .map_err(|e| anyhow::anyhow!("subscribing to credential invalidations: {e}"))?;
        let follower = feed.map(|feed| {
            let stop = shutdown.child_token().cancelled_owned();
            tokio::spawn(casegate_service::auth::follow_invalidations(
                svc.clone(),
                feed,
                stop,
            ))
        });
        let app = app(s, svc.clone()).into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .await?;
        if let Some(f) = follower {
            let _ = f.await;
        }
    } else {
        drop(listener);
        shutdown.cancelled().await;
    }
    if let Some(w) = worker {
        let _ = w.await;
    }
    svc.db.close().await;
    Ok(())
}

/// The human summary of `casegate demo` / `serve --demo`.
pub fn demo_summary(d: &casegate_service::demo::Demo, base_url: &str) -> String {
    let mut out = format!(
        "casegate sandbox tenant `{}` ({})\n\n  console & API docs: {base_url}/docs\n  API base:           {base_url}/api/v1\n\nAPI keys (shown once; earlier keys stay valid until revoked):\n",
        d.tenant.slug, d.tenant.id
    );
    for (role, key) in &d.api_keys {
        out.push_str(&format!("  {role:<20} {key}\n"));
    }
    out.push_str(&format!(
        "\nUsers (password `{}`):\n",
        casegate_service::demo::DEMO_PASSWORD
    ));
    for (role, email) in &d.users {
        out.push_str(&format!("  {role:<20} {email}\n"));
    }
    out.push_str(&format!(
        "\nTry: curl -H 'Authorization: Bearer {}' {base_url}/api/v1/me\n",
        d.api_keys.get("admin").map(String::as_str).unwrap_or("")
    ));
    out
}

/// `casegate audit verify`: one line per broken tenant; `Ok(false)` when any is broken.
pub async fn audit_verify(svc: &Services, tenant: Option<&str>) -> anyhow::Result<bool> {
    let tenants = {
        let mut c = svc.db.conn().await?;
        match tenant {
            Some(t) => vec![
                casegate_store::tenants::resolve(&mut *c, t)
                    .await
                    .with_context(|| format!("no tenant {t}"))?,
            ],
            None => casegate_store::tenants::list(&mut *c).await?,
        }
    };
    let mut all_ok = true;
    for t in tenants {
        let v = casegate_service::audit::verify_tenant(svc, t.id)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if v.valid {
            println!(
                "ok      {} ({}): {} events, head {} {}",
                t.slug, t.id, v.events_checked, v.head_seq, v.head_hash
            );
        } else {
            all_ok = false;
            println!(
                "BROKEN  {} ({}): first broken seq {}: {}",
                t.slug,
                t.id,
                v.first_broken_seq.unwrap_or_default(),
                v.reason.unwrap_or_default()
            );
        }
    }
    Ok(all_ok)
}
