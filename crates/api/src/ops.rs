//! Operations endpoints, outside `/api/v1` and without authentication: liveness, readiness,
//! Prometheus metrics, the OpenAPI document and the documentation page (served from the binary,
//! no CDN).
use crate::AppState;
use crate::error::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use std::sync::{Arc, OnceLock};

/// The process-wide Prometheus recorder (the `metrics` facade has one global recorder, so every
/// server in a process, tests included, shares it).
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let buckets = [
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        // A connection's wait starts well under a millisecond when the pool has one idle.
        let waits = [
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            2.5, 5.0, 10.0,
        ];
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("http_request_duration_seconds".into()),
                &buckets,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full("db_acquire_seconds".into()), &waits)
            })
            .expect("bucket lists are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed; the handle still renders ours.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

const DOCS_HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>casegate API</title>
<script type="module" src="/docs/rapidoc-min.js"></script></head>
<body><rapi-doc spec-url="/openapi.json" theme="light" render-style="read" show-header="false"
allow-try="true" allow-server-selection="false" schema-style="table"></rapi-doc></body></html>"#;

static RAPIDOC_GZ: &[u8] = include_bytes!("../../../web/vendor/rapidoc/rapidoc-min.js.gz");

/// The operations routes; `openapi` is the document rendered once at start-up.
pub fn router(openapi: Arc<String>) -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(prometheus))
        .route("/openapi.json", get(move || openapi_json(openapi.clone())))
        .route("/graphql/schema.graphql", get(graphql_sdl))
        .route("/docs", get(|| async { Html(DOCS_HTML) }))
        .route("/docs/rapidoc-min.js", get(rapidoc))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(st): State<AppState>) -> Response {
    match st.svc.db.ready().await {
        Ok(true) => Json(json!({ "status": "ready", "database": "ok", "migrations": "applied" }))
            .into_response(),
        Ok(false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not_ready", "database": "ok", "migrations": "pending" })),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "not_ready", "database": "unreachable" })),
            )
                .into_response()
        }
    }
}

async fn prometheus(State(st): State<AppState>) -> Response {
    let h = metrics_handle();
    let pool = st.svc.db.pool_stats();
    metrics::gauge!("db_pool_connections").set(pool.size as f64);
    metrics::gauge!("db_pool_idle_connections").set(pool.idle as f64);
    metrics::gauge!("db_pool_max_connections").set(pool.max as f64);
    if let Ok(mut c) = st.svc.db.conn().await
        && let Ok(n) = casegate_store::webhooks::queue_depth(&mut *c).await
    {
        metrics::gauge!("webhook_queue_depth").set(n as f64);
        if let Ok(n) = casegate_store::notifications::emails_pending(&mut *c).await {
            metrics::gauge!("notification_email_queue_depth").set(n as f64);
        }
    }
    h.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        h.render(),
    )
        .into_response()
}

async fn openapi_json(doc: Arc<String>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.as_str().to_owned(),
    )
        .into_response()
}

/// The GraphQL schema in SDL (public, like the OpenAPI document).
async fn graphql_sdl(State(st): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        st.graphql.sdl(),
    )
        .into_response()
}

async fn rapidoc() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CONTENT_ENCODING, "gzip"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        RAPIDOC_GZ,
    )
        .into_response()
}
