//! `casegate`: see `casegate --help`.
#![forbid(unsafe_code)]

use anyhow::Context;
use casegate_domain::clock::SystemClock;
use casegate_server::settings::{AuditCommand, Cli, Command, TenantCommand};
use casegate_server::{
    Settings, audit_signer, audit_verify, demo_summary, open_database, serve, services,
};
use clap::Parser;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// mimalloc instead of the system allocator: the request path allocates many small, short-lived
/// objects, and glibc's malloc showed up as about a tenth of the profile
/// (docs/benchmarks.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Fires the token on SIGTERM or Ctrl-C.
fn shutdown_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! { _ = ctrl_c => {}, _ = term => {} }
        tracing::info!("shutdown requested: draining requests");
        token.cancel();
    });
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::resolve(cli.options)?;
    let _log_guard = casegate_server::logs::init(&settings.log_format);
    // One TLS crypto provider for every crate (sqlx, reqwest, jsonwebtoken): aws-lc-rs.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let db = open_database(&settings).await?;
    let signer = audit_signer(&settings)?;
    let svc = services(&settings, db, Arc::new(SystemClock), signer)?;
    let base_url = format!("http://{}", settings.listen);
    match cli.command {
        Command::Migrate => {
            tracing::info!("migrations applied");
            svc.db.close().await;
        }
        Command::Demo { tenant, json } => {
            let d = casegate_service::demo::ensure(&svc, &tenant).await?;
            if json {
                let out = serde_json::json!({
                    "tenant_id": d.tenant.id.to_string(),
                    "tenant_slug": d.tenant.slug,
                    "api_keys": d.api_keys,
                });
                println!("{out}");
            } else {
                print!("{}", demo_summary(&d, &base_url));
            }
            svc.db.close().await;
        }
        Command::Tenant(TenantCommand::Create {
            slug,
            name,
            admin_email,
            admin_password,
        }) => {
            let p =
                casegate_service::tenants::create(&svc, &slug, &name, &admin_email, admin_password)
                    .await?;
            println!(
                "{}",
                serde_json::json!({
                    "tenant_id": p.tenant.id.to_string(),
                    "tenant_slug": p.tenant.slug,
                    "admin_user_id": p.admin.id.to_string(),
                    "admin_api_key": p.admin_key.secret,
                })
            );
            svc.db.close().await;
        }
        Command::Audit(AuditCommand::Verify { tenant }) => {
            let ok = audit_verify(&svc, tenant.as_deref()).await?;
            svc.db.close().await;
            if !ok {
                drop(_log_guard);
                std::process::exit(1);
            }
        }
        Command::Serve => {
            if settings.demo {
                let d = casegate_service::demo::ensure(&svc, "demo").await?;
                println!("{}", demo_summary(&d, &base_url));
            }
            let listener = tokio::net::TcpListener::bind(&settings.listen)
                .await
                .with_context(|| format!("listening on {}", settings.listen))?;
            tracing::info!(listen = %listener.local_addr()?, role = ?settings.role, "casegate serving");
            let token = CancellationToken::new();
            shutdown_on_signals(token.clone());
            serve(&settings, svc, listener, token).await?;
            tracing::info!("stopped");
        }
    }
    Ok(())
}
