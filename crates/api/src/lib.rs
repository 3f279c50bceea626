//! The HTTP surface of casegate: REST under `/api/v1`, operations endpoints, OpenAPI and docs.
//! GraphQL (`graphql/`) sits beside `rest/` and calls the same service functions.
//!
//! # Layout
//! - [`app`]: assembles the router and its layers; [`AppState`] is what handlers share.
//! - [`middleware`]: request id, timeout, metrics and logs ([`middleware::Observe`]);
//!   authentication, `X-Tenant-ID` cross-check and rate limit ([`middleware::authenticate`]).
//! - [`error`]: service errors → the API.md error shape; JSON/query extractors with the same
//!   shape for malformed input.
//! - [`rate_limit`]: per-credential GCRA buckets and the `X-RateLimit-*` headers.
//! - [`rest`]: one module per resource (`users`, `api_keys`, `auth`, `roles`, `cases`,
//!   `approvals`, `tasks`, `audit`, `sars`, `webhooks`), and `bodies`: the OpenAPI schemas of
//!   the JSON bodies the services read key by key.
//! - [`graphql`]: `POST /graphql`, its schema, depth and complexity limits, error extensions.
//! - [`ops`]: `/healthz`, `/readyz`, `/metrics`, `/openapi.json`, `/graphql/schema.graphql`,
//!   `/docs`.
#![forbid(unsafe_code)]

pub mod error;
pub mod graphql;
pub mod middleware;
pub mod ops;
pub mod rate_limit;
pub mod rest;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::response::{IntoResponse, Response};
use casegate_domain::{Code, Error};
use casegate_service::Services;
use error::ApiError;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tower::Layer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// HTTP settings.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Largest JSON body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Largest case attachment upload (413 beyond).
    pub max_attachment_bytes: usize,
    /// Requests running longer are abandoned with 503 `timeout`.
    pub request_timeout: Duration,
    /// Requests a minute per credential (0 = unlimited).
    pub rate_limit_per_minute: u32,
    /// Login attempts a minute per client address (0 = unlimited).
    pub login_attempts_per_minute: u32,
}

/// What every handler can reach: one shared [`Shared`] behind one `Arc`, because each layer and
/// each `State` extractor clones the state once per request.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The contents of [`AppState`].
pub struct Shared {
    /// The use cases.
    pub svc: Arc<Services>,
    /// HTTP settings.
    pub config: Arc<ApiConfig>,
    /// Per-credential buckets, shared by every request.
    pub limiter: Arc<rate_limit::Limiter>,
    /// Per-address buckets of the login endpoint, tighter to slow password guessing.
    pub login_limiter: Arc<rate_limit::Limiter>,
    /// Request counters and latency histograms.
    pub metrics: Arc<middleware::RequestMetrics>,
    /// The GraphQL schema (built once; cheap to clone).
    pub graphql: graphql::CasegateSchema,
}

/// The OpenAPI description; paths are added by the routers.
#[derive(OpenApi)]
#[openapi(
    info(title = "casegate API", description = "Case management for financial-crime compliance: cases, workflows, approvals, audit trail and SARs. Errors use one shape: {\"error\": {type, code, message, param, request_id, details}}."),
    servers((url = "/api/v1")),
    modifiers(&SecuritySchemes),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    tags((name = "authentication", description = "Sessions and the caller's identity"),
        (name = "administration", description = "Users, roles and API keys of the organisation"),
        (name = "cases", description = "Case types, cases, alerts, their investigation record and parties"),
        (name = "approvals", description = "Transition requests awaiting approval and the approver's inbox"),
        (name = "tasks", description = "Tasks on cases (mandatory ones block leaving a status) and each person's notifications"),
        (name = "sars", description = "Suspicious activity reports: content, deadline, review and approval, filing documents checked against the regulator's schema, submission and acknowledgement"),
        (name = "webhooks", description = "Signed event deliveries to the organisation's receivers, with retries and a delivery record"),
        (name = "audit", description = "The hash-chained audit trail, its verification and signed checkpoints"))
)]
struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::*;
        let c = api.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("API key or RS256 JWT")
                    .build(),
            ),
        );
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(middleware::SESSION_COOKIE))),
        );
    }
}

fn api_routes(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    // Unknown paths under /api/v1 pass through authentication too, so they are limited and
    // carry the rate-limit headers like every other API response.
    let protected = rest::protected()
        .route(middleware::API_UNKNOWN[0], axum::routing::any(not_found))
        .route(middleware::API_UNKNOWN[1], axum::routing::any(not_found))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::authenticate,
        ));
    let public = rest::public().layer(axum::middleware::from_fn_with_state(
        state.clone(),
        middleware::limit_by_ip,
    ));
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(protected)
        .merge(public)
        .split_for_parts();
    // The handlers are routed at their full paths (`/api/v1/...`) rather than nested under a
    // prefix: a nested router wraps every route in a prefix-stripping service that rebuilds
    // the request's URI, on every request. The description keeps its paths relative to its
    // server, `/api/v1`.
    doc.paths.paths = std::mem::take(&mut doc.paths.paths)
        .into_iter()
        .map(
            |(path, item)| match path.strip_prefix(middleware::API_PREFIX) {
                Some(rest) => (rest.to_string(), item),
                // Served outside the API while documented inside it: a mistake, caught at start-up.
                None => panic!(
                    "#[utoipa::path] `{path}` is not under {}",
                    middleware::API_PREFIX
                ),
            },
        )
        .collect();
    (router, doc)
}

async fn not_found() -> Response {
    ApiError(Error::new(Code::NotFound, "no such endpoint")).into_response()
}

/// Replaces each route's own 405 answer, and with it the layers around that answer, so it names
/// its route for the metrics and the log itself.
async fn method_not_allowed(route: Option<axum::extract::MatchedPath>) -> Response {
    middleware::named(
        route,
        ApiError(Error::new(
            Code::MethodNotAllowed,
            "this endpoint does not accept that method",
        ))
        .into_response(),
    )
}

/// The application as one tower service, ready for `axum::serve`.
pub trait App:
    tower::Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<T> App for T where
    T: tower::Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// Builds the whole application.
///
/// The layers every request passes (request id, timeout, panic guard, metrics, log; the body
/// limit) wrap the router once, as plain services, instead of being laid on each route with
/// `Router::layer`: a route's layers are boxed services that are cloned, box by box, on every
/// request that takes the route.
pub fn app(svc: Arc<Services>, config: ApiConfig) -> impl App {
    // Install the recorder before the first request so that no measurement is lost.
    ops::metrics_handle();
    let state = AppState(Arc::new(Shared {
        limiter: Arc::new(rate_limit::Limiter::new(config.rate_limit_per_minute)),
        login_limiter: Arc::new(rate_limit::Limiter::new(config.login_attempts_per_minute)),
        config: Arc::new(config),
        graphql: graphql::schema(svc.clone()),
        svc,
        metrics: Arc::default(),
    }));
    rate_limit::purge_periodically(&state.limiter);
    rate_limit::purge_periodically(&state.login_limiter);
    let (api, doc) = api_routes(&state);
    let openapi = Arc::new(doc.to_pretty_json().unwrap_or_default());
    // GraphQL answers behind the same authentication, tenant check and rate limit as REST.
    let graphql = Router::new()
        .route("/graphql", axum::routing::post(graphql::graphql))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::authenticate,
        ));
    let router = Router::new()
        .merge(api)
        .merge(graphql)
        .merge(ops::router(openapi).route_layer(axum::middleware::from_fn(middleware::name_route)))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    let limited = DefaultBodyLimit::max(state.config.max_body_bytes).layer(router);
    middleware::Observe::new(state, limited)
}
