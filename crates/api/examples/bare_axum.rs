//! The baseline of `scripts/bench-http.sh`: a minimal axum handler returning a small JSON object,
//! with no middleware, authentication or database, so the benchmark shows what casegate's request
//! path costs on top of the bare framework.
//!
//! `cargo run --release -p casegate-api --example bare_axum -- 127.0.0.1:18081`
use axum::routing::get;
use axum::{Json, Router};

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".into());
    let app = Router::new().route(
        "/me",
        get(|| async { Json(serde_json::json!({"status": "ok", "user": "bench"})) }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
