//! Rate limiting per credential (API.md "Limits": 600 requests a minute by default), a GCRA
//! bucket per key from `governor`. Requests that carry no valid credential are limited per
//! client IP instead, which also slows password guessing on the login endpoint.
use axum::http::{HeaderMap, HeaderName, HeaderValue, header::RETRY_AFTER};
use casegate_domain::ids::{ApiKeyId, SessionId, TenantId, UserId};
use casegate_domain::principal::{AuthMethod, Principal};
use governor::clock::Clock;
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;

const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// Whose bucket a request takes from: its credential, or, for a request without a valid one,
/// the client address. A plain value, so that checking a bucket allocates and formats nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// One API key.
    ApiKey(ApiKeyId),
    /// One login session.
    Session(SessionId),
    /// One identity of the identity provider in one tenant (the user id derives from the
    /// tenant, the issuer and `sub`; the tenant is kept too so that no derivation can merge
    /// two tenants' buckets).
    Jwt(TenantId, UserId),
    /// casegate's own post-actions in a tenant (never from a request).
    System(TenantId),
    /// A client address (`None` when the connection's address is unknown).
    Ip(Option<IpAddr>),
}

impl From<&Principal> for Bucket {
    fn from(p: &Principal) -> Self {
        match &p.method {
            AuthMethod::ApiKey(id) => Self::ApiKey(*id),
            AuthMethod::Session(id) => Self::Session(*id),
            AuthMethod::Jwt(_) => Self::Jwt(p.tenant_id, p.user_id),
            AuthMethod::System => Self::System(p.tenant_id),
        }
    }
}

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Limiting is off (`rate_limit_per_minute = 0`).
    Off,
    /// Allowed; `remaining` more requests fit in the bucket now, which is full again after
    /// `reset_secs`.
    Allowed {
        /// Requests left in the bucket.
        remaining: u32,
        /// Seconds until the bucket is full again.
        reset_secs: u64,
    },
    /// Refused; the next request fits after `retry_after_secs`.
    Limited {
        /// Seconds to wait (the `Retry-After` header).
        retry_after_secs: u64,
    },
}

/// Keyed limiter; `None` when limiting is off.
pub struct Limiter {
    inner: Option<DefaultKeyedRateLimiter<Bucket, StateInformationMiddleware>>,
    /// Requests per minute per key.
    per_minute: u32,
    /// `per_minute` as the `X-RateLimit-Limit` value, the same on every response.
    limit: HeaderValue,
}

impl Limiter {
    /// A limiter allowing `per_minute` requests a minute per key (0 = unlimited).
    pub fn new(per_minute: u32) -> Self {
        let inner = NonZeroU32::new(per_minute).map(|n| {
            RateLimiter::keyed(Quota::per_minute(n)).with_middleware::<StateInformationMiddleware>()
        });
        Self {
            inner,
            per_minute,
            limit: HeaderValue::from(per_minute),
        }
    }

    /// Takes one request from `key`'s bucket.
    pub fn check(&self, key: Bucket) -> Decision {
        let Some(l) = &self.inner else {
            return Decision::Off;
        };
        match l.check_key(&key) {
            Ok(snap) => {
                let remaining = snap.remaining_burst_capacity();
                let missing = u64::from(self.per_minute.saturating_sub(remaining));
                Decision::Allowed {
                    remaining,
                    reset_secs: (missing * 60).div_ceil(u64::from(self.per_minute)),
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(l.clock().now());
                Decision::Limited {
                    retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                }
            }
        }
    }

    /// Drops buckets that are full again, so idle keys do not accumulate.
    pub fn purge(&self) {
        if let Some(l) = &self.inner {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// Writes the `X-RateLimit-*` (and on refusal `Retry-After`) headers (names built at compile
    /// time: every API response carries them).
    pub fn write_headers(&self, d: Decision, h: &mut HeaderMap) {
        let num = |n: u64| HeaderValue::from(n);
        match d {
            Decision::Off => {}
            Decision::Allowed {
                remaining,
                reset_secs,
            } => {
                h.insert(LIMIT, self.limit.clone());
                h.insert(REMAINING, num(remaining.into()));
                h.insert(RESET, num(reset_secs));
            }
            Decision::Limited { retry_after_secs } => {
                h.insert(LIMIT, self.limit.clone());
                h.insert(REMAINING, num(0));
                h.insert(RESET, num(retry_after_secs));
                h.insert(RETRY_AFTER, num(retry_after_secs));
            }
        }
    }
}

/// Purges idle buckets every minute for as long as the limiter is alive (it holds only a weak
/// reference, so the task ends with the application).
pub fn purge_periodically(limiter: &std::sync::Arc<Limiter>) {
    let weak = std::sync::Arc::downgrade(limiter);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        tick.tick().await;
        loop {
            tick.tick().await;
            match weak.upgrade() {
                Some(l) => l.purge(),
                None => break,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_per_key_and_refuse_past_the_limit() {
        let ip = |n: u8| Bucket::Ip(Some(IpAddr::from([127, 0, 0, n])));
        let l = Limiter::new(3);
        assert_eq!(
            l.check(ip(1)),
            Decision::Allowed {
                remaining: 2,
                reset_secs: 20
            }
        );
        assert!(matches!(
            l.check(ip(1)),
            Decision::Allowed { remaining: 1, .. }
        ));
        assert!(matches!(
            l.check(ip(1)),
            Decision::Allowed {
                remaining: 0,
                reset_secs: 60
            }
        ));
        match l.check(ip(1)) {
            Decision::Limited { retry_after_secs } => assert!((1..=20).contains(&retry_after_secs)),
            d => panic!("{d:?}"),
        }
        assert!(matches!(
            l.check(ip(2)),
            Decision::Allowed { remaining: 2, .. }
        ));
        assert_eq!(Limiter::new(0).check(ip(1)), Decision::Off);
    }

    #[test]
    fn each_credential_has_its_own_bucket() {
        let id = |n: u8| uuid::Uuid::from_bytes([n; 16]);
        let principal = |user: u8, method| Principal {
            tenant_id: TenantId(id(1)),
            tenant_slug: "acme".into(),
            user_id: UserId(id(user)),
            email: None,
            roles: vec![],
            permissions: Default::default(),
            method,
        };
        let bucket = |user, method| Bucket::from(&principal(user, method));
        // Two keys of one user: two buckets; one key whatever the user: one.
        let key = |n| AuthMethod::ApiKey(ApiKeyId(id(n)));
        assert_ne!(bucket(2, key(10)), bucket(2, key(11)));
        assert_eq!(bucket(2, key(10)), bucket(3, key(10)));
        // Identity-provider users are told apart by their user id (issuer and `sub`).
        let jwt = || AuthMethod::Jwt("same-sub".into());
        assert_ne!(bucket(2, jwt()), bucket(3, jwt()));
        let mut elsewhere = principal(2, jwt());
        elsewhere.tenant_id = TenantId(id(9));
        assert_ne!(Bucket::from(&elsewhere), bucket(2, jwt()), "another tenant");
        let session = AuthMethod::Session(SessionId(id(10)));
        assert_ne!(bucket(2, session), bucket(2, key(10)));

        // The limit header is the configured quota on every response.
        let l = Limiter::new(600);
        let mut h = HeaderMap::new();
        l.write_headers(l.check(bucket(2, key(10))), &mut h);
        assert_eq!(h[LIMIT], "600");
        assert_eq!(h[REMAINING], "599");
    }
}
