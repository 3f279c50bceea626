//! Request pipeline, outermost first: [`observe`] (request id, timeout, metrics, one JSON log
//! line) → routing → [`authenticate`] on `/api/v1` (credential → principal, `X-Tenant-ID`
//! cross-check, per-credential rate limit) → handler.
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
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// Name of the session cookie set by `POST /auth/login`.
pub const SESSION_COOKIE: &str = "casegate_session";

/// Who was served, carried to [`observe`] for the log line (ids only, never secrets).
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

/// Outermost layer: assigns the request id, bounds the time, records metrics and logs.
pub async fn observe(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let id = request_id(req.headers());
    let method = req.method().clone();
    let timeout = st.config.request_timeout;
    let mut resp = REQUEST_ID
        .scope(id.clone(), async move {
            match tokio::time::timeout(timeout, next.run(req)).await {
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
/// or emails) for [`observe`], which runs before routing. The API's own layers ([`authenticate`],
/// [`limit_by_ip`]) run after routing and do the same, so only the operations routes need this
/// extra layer.
pub async fn name_route(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    named(route, next.run(req).await)
}

/// `resp`, carrying the route template that matched (for [`observe`]).
pub(crate) fn named(route: Option<MatchedPath>, mut resp: Response) -> Response {
    if let Some(r) = route {
        resp.extensions_mut().insert(r);
    }
    resp
}

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
    let route = req.extensions().get::<MatchedPath>().cloned();
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
