//! Request pipeline, outermost first: [`Observe`] (request id, timeout, panic guard, metrics,
//! one JSON log line) → routing → [`authenticate`] on `/api/v1` (credential → principal,
//! `X-Tenant-ID` cross-check, per-credential rate limit) → handler.
use crate::AppState;
use crate::error::{ApiError, REQUEST_ID};
use crate::rate_limit::{Bucket, Limiter};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use casegate_domain::ids::{TenantId, UserId};
use casegate_domain::principal::Principal;
use casegate_domain::{Code, Error};
use casegate_service::auth::{self, Credential};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;

/// Name of the session cookie set by `POST /auth/login`.
pub const SESSION_COOKIE: &str = "casegate_session";

/// Who was served, carried to [`Observe`] for the log line (ids only, never secrets).
#[derive(Clone, Copy)]
struct LogContext {
    tenant: TenantId,
    user: UserId,
}

/// Metric handles by route, then (method, status), so the hot path does not rebuild labelled
/// keys on every request.
#[derive(Default)]
pub struct RequestMetrics {
    handles: RwLock<HashMap<String, ByMethodStatus>>,
}

type Handles = (metrics::Counter, metrics::Histogram);
type ByMethodStatus = HashMap<(Method, u16), Handles>;

impl RequestMetrics {
    fn record(&self, method: &Method, route: &str, status: u16, elapsed: std::time::Duration) {
        let key = (method.clone(), status);
        let hit = {
            let m = self.handles.read().unwrap_or_else(|e| e.into_inner());
            m.get(route).and_then(|r| r.get(&key)).cloned()
        };
        let (count, latency) = hit.unwrap_or_else(|| {
            let labels = [
                ("method", method.to_string()),
                ("route", route.to_string()),
                ("status", status.to_string()),
            ];
            let h = (
                metrics::counter!("http_requests_total", &labels),
                metrics::histogram!("http_request_duration_seconds", &labels),
            );
            let mut m = self.handles.write().unwrap_or_else(|e| e.into_inner());
            m.entry(route.to_string())
                .or_default()
                .insert(key, h.clone());
            h
        });
        count.increment(1);
        latency.record(elapsed);
    }
}

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id: the client's `X-Request-Id` when it is a sane token (kept as received, no
/// copy), else a new `req_<uuid>`.
fn request_id(h: &HeaderMap) -> HeaderValue {
    let sent = h.get(X_REQUEST_ID).filter(|v| {
        let b = v.as_bytes();
        (1..=64).contains(&b.len())
            && b.iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
    });
    match sent {
        Some(v) => v.clone(),
        None => {
            let mut buf = [0u8; 4 + uuid::fmt::Simple::LENGTH];
            buf[..4].copy_from_slice(b"req_");
            uuid::Uuid::new_v4().simple().encode_lower(&mut buf[4..]);
            HeaderValue::from_bytes(&buf).expect("ASCII letters, digits and `_`")
        }
    }
}

/// The outermost service, around the whole router: assigns the request id, bounds the time,
/// answers a panic with a 500, records metrics and writes the request's log line.
#[derive(Clone)]
pub struct Observe<S> {
    st: AppState,
    inner: S,
}

impl<S> Observe<S> {
    /// `inner` observed with `st`'s settings and metrics.
    pub fn new(st: AppState, inner: S) -> Self {
        Self { st, inner }
    }
}

impl<S> tower::Service<Request> for Observe<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The service made ready is the one called; a clone takes its place.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        let st = self.st.clone();
        Box::pin(async move { Ok(observe(st, req, ready).await) })
    }
}

/// Calls `inner` and awaits its answer, answering 500 `internal` if either panics. (Written
/// here rather than with tower-http's `CatchPanic`, which boxes every response's body again.)
async fn unpanicked<S>(mut inner: S, req: Request) -> Response
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    let panicked = || ApiError(Error::internal("handler panicked")).into_response();
    let Ok(answer) = std::panic::catch_unwind(AssertUnwindSafe(|| inner.call(req))) else {
        return panicked();
    };
    let mut answer = std::pin::pin!(answer);
    std::future::poll_fn(|cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| answer.as_mut().poll(cx))) {
            Ok(Poll::Ready(Ok(r))) => Poll::Ready(r),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(panicked()),
        }
    })
    .await
}

async fn observe<S>(st: AppState, req: Request, inner: S) -> Response
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    let start = Instant::now();
    let id = request_id(req.headers());
    let method = req.method().clone();
    let timeout = st.config.request_timeout;
    let mut resp = REQUEST_ID
        .scope(id.clone(), async move {
            match tokio::time::timeout(timeout, unpanicked(inner, req)).await {
                Ok(r) => r,
                Err(_) => ApiError(Error::new(
                    Code::Timeout,
                    "the request took too long and was abandoned",
                ))
                .into_response(),
            }
        })
        .await;
    let elapsed = start.elapsed();
    let matched = resp.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", |m| m.as_str());
    let status = resp.status().as_u16();
    st.metrics.record(&method, route, status, elapsed);
    let ctx = resp.extensions().get::<LogContext>().copied();
    // The ids go to the log as text written into stack buffers, not through `Display`.
    let (mut tb, mut ub) = (uuid::Uuid::encode_buffer(), uuid::Uuid::encode_buffer());
    let (tenant, user) = match ctx {
        Some(c) => (
            Some(&*c.tenant.0.hyphenated().encode_lower(&mut tb)),
            Some(&*c.user.0.hyphenated().encode_lower(&mut ub)),
        ),
        None => (None, None),
    };
    tracing::info!(
        request_id = id.to_str().unwrap_or_default(),
        method = method.as_str(),
        route,
        status,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        tenant_id = tenant,
        user_id = user,
        "request"
    );
    resp.headers_mut().insert(X_REQUEST_ID, id);
    resp
}

/// Route layer: records which route template matched (never the raw path, which may hold ids
/// or emails) for [`Observe`], which runs before routing. The API's own layers ([`authenticate`],
/// [`limit_by_ip`]) run after routing and do the same, so only the operations routes need this
/// extra layer.
pub async fn name_route(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    named(route, next.run(req).await)
}

/// `resp`, carrying the route template that matched (for [`Observe`]).
pub(crate) fn named(route: Option<MatchedPath>, mut resp: Response) -> Response {
    if let Some(r) = route {
        resp.extensions_mut().insert(r);
    }
    resp
}

/// Where the REST API is served; the prefix of every `#[utoipa::path]`.
pub(crate) const API_PREFIX: &str = "/api/v1";

/// The routes of unknown paths under [`API_PREFIX`]: answered 404 behind authentication (so
/// limited, with the rate-limit headers), yet named as no route in the metrics and the log,
/// where every unknown path counts as `unmatched`.
pub(crate) const API_UNKNOWN: [&str; 2] = [API_PREFIX, "/api/v1/{*rest}"];

/// The value of cookie `name` in the `Cookie` header.
pub fn cookie<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn credential<'a>(h: &'a HeaderMap, method: &Method) -> Result<Option<Credential<'a>>, Error> {
    if let Some(v) = h.get("authorization") {
        let v = v
            .to_str()
            .map_err(|_| Error::unauthenticated("malformed Authorization header"))?;
        let (scheme, token) = v.split_once(' ').unwrap_or((v, ""));
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(Error::unauthenticated(
                "use `Authorization: Bearer <API key or JWT>`",
            ));
        }
        return Ok(Some(Credential::Bearer(token.trim())));
    }
    if let Some(v) = h.get("x-api-key") {
        let v = v
            .to_str()
            .map_err(|_| Error::unauthenticated("malformed API key"))?;
        return Ok(Some(Credential::ApiKey(v.trim())));
    }
    if let Some(token) = cookie(h, SESSION_COOKIE) {
        let unsafe_method = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        let csrf = h.get("x-csrf-token").and_then(|v| v.to_str().ok());
        return Ok(Some(Credential::Session {
            token,
            csrf,
            unsafe_method,
        }));
    }
    Ok(None)
}

fn client_key(req: &Request) -> Bucket {
    Bucket::Ip(
        req.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip()),
    )
}

/// Takes one request from `key`'s bucket: runs `then` if allowed, answers 429 otherwise, and
/// writes the rate-limit headers either way.
async fn limited(limiter: &Limiter, key: Bucket, then: impl Future<Output = Response>) -> Response {
    let d = limiter.check(key);
    let mut resp = match d {
        crate::rate_limit::Decision::Limited { .. } => ApiError(Error::new(
            Code::RateLimited,
            "too many requests; retry after the time in Retry-After",
        ))
        .into_response(),
        _ => then.await,
    };
    limiter.write_headers(d, resp.headers_mut());
    resp
}

/// Requests without a credential (login): limited per client IP, with the login quota.
pub async fn limit_by_ip(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let key = client_key(&req);
    named(route, limited(&st.login_limiter, key, next.run(req)).await)
}

/// Resolves the principal of an `/api/v1` request and enforces the tenant cross-check and the
/// per-credential rate limit. Failures count against the client IP's bucket.
pub async fn authenticate(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .filter(|m| !API_UNKNOWN.contains(&m.as_str()))
        .cloned();
    named(route, authenticated(&st, req, next).await)
}

async fn authenticated(st: &AppState, mut req: Request, next: Next) -> Response {
    let resolved: Result<Arc<Principal>, Error> = match credential(req.headers(), req.method()) {
        Ok(Some(c)) => auth::authenticate(&st.svc, c).await,
        Ok(None) => Err(Error::unauthenticated(
            "authentication required: send an API key, a JWT or a session cookie",
        )),
        Err(e) => Err(e),
    };
    let principal = match resolved {
        Ok(p) => p,
        Err(e) => {
            let key = client_key(&req);
            return limited(&st.limiter, key, async { ApiError(e).into_response() }).await;
        }
    };
    let mismatch = req
        .headers()
        .get("x-tenant-id")
        .is_some_and(|v| !principal.is_tenant(v.to_str().unwrap_or("").trim()));
    let ctx = LogContext {
        tenant: principal.tenant_id,
        user: principal.user_id,
    };
    let key = Bucket::from(&*principal);
    let mut resp = limited(&st.limiter, key, async move {
        if mismatch {
            return ApiError(
                Error::new(
                    Code::TenantMismatch,
                    "X-Tenant-ID does not match the credential's organisation",
                )
                .with_param("X-Tenant-ID"),
            )
            .into_response();
        }
        req.extensions_mut().insert(principal);
        next.run(req).await
    })
    .await;
    resp.extensions_mut().insert(ctx);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    /// The status and JSON body `unpanicked` answers for `svc`, run in a request id's scope as
    /// [`Observe`] runs it.
    async fn guarded<S>(svc: S) -> (u16, serde_json::Value)
    where
        S: tower::Service<Request, Response = Response, Error = Infallible>,
    {
        let id = HeaderValue::from_static("req_panic_test");
        let resp = REQUEST_ID
            .scope(id, unpanicked(svc, Request::new(Body::empty())))
            .await;
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_panic_in_a_handler_is_a_500_in_the_error_shape() {
        // Panicking while called (routing, building the future) …
        let in_call =
            tower::service_fn(|_: Request| -> std::future::Ready<_> { panic!("boom in call") });
        // … and while polled (the handler's body), after a first `Pending`.
        let in_poll = tower::service_fn(|_: Request| async {
            tokio::task::yield_now().await;
            if true {
                panic!("boom in poll");
            }
            Ok::<_, Infallible>(Response::new(Body::empty()))
        });
        for (status, body) in [guarded(in_call).await, guarded(in_poll).await] {
            assert_eq!(status, 500);
            assert_eq!(body["error"]["code"], "internal");
            assert_eq!(body["error"]["request_id"], "req_panic_test");
        }
        // An answer without a panic passes unchanged.
        let fine = tower::service_fn(|_: Request| async {
            let mut r = Response::new(Body::from("{}"));
            *r.status_mut() = axum::http::StatusCode::CREATED;
            Ok::<_, Infallible>(r)
        });
        assert_eq!(guarded(fine).await.0, 201);
    }

    #[test]
    fn cookies_and_request_ids() {
        let mut h = HeaderMap::new();
        h.insert(
            "cookie",
            HeaderValue::from_static("a=1; casegate_session=tok; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie(&h, "c"), None);
        h.insert("x-request-id", HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h), "abc-123");
        h.insert(
            "x-request-id",
            HeaderValue::from_static("bad id with spaces"),
        );
        let made = request_id(&h);
        let made = made.to_str().unwrap();
        assert!(made.starts_with("req_") && made.len() == 36, "{made}");
        assert_ne!(request_id(&h), made, "a new id per request");
    }
}
