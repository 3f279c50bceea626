//! The baselines of `scripts/bench-http.sh`: axum handlers with no middleware, authentication or
//! database, so the benchmark shows what casegate's request path costs on top of the bare
//! framework.
//! - `/me`: a small JSON object (the framework's floor).
//! - `/me-sized`: the body `GET /api/v1/me` answers for the demo admin (the same keys, the 22
//!   permission names, 528 bytes), built and serialised per request the way a plain handler
//!   would, so that the only difference left is casegate's layers.
//!
//! `cargo run --release -p casegate-api --example bare_axum -- 127.0.0.1:18081`
use axum::routing::get;
use axum::{Json, Router};
use casegate_domain::rbac::Permission;
use serde::Serialize;

#[derive(Serialize)]
struct Me {
    tenant_id: &'static str,
    tenant_slug: &'static str,
    user_id: &'static str,
    email: Option<&'static str>,
    roles: Vec<&'static str>,
    permissions: Vec<&'static str>,
    auth_method: &'static str,
}

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".into());
    let app = Router::new()
        .route(
            "/me",
            get(|| async { Json(serde_json::json!({"status": "ok", "user": "bench"})) }),
        )
        .route(
            "/me-sized",
            get(|| async {
                Json(Me {
                    tenant_id: "fb2dc549-1225-4ef8-9415-716aa25cef71",
                    tenant_slug: "demo",
                    user_id: "4e8b3df1-4a5e-465a-be6f-84ec9204670d",
                    email: Some("admin@demo.example"),
                    roles: vec!["admin"],
                    permissions: Permission::ALL.iter().map(|p| p.as_str()).collect(),
                    auth_method: "api_key",
                })
            }),
        );
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
