//! Rate limiting per credential (API.md "Limits": 600 requests a minute by default), a GCRA
//! bucket per key from `governor`. Requests that carry no valid credential are limited per
//! client IP instead, which also slows password guessing on the login endpoint.
use axum::http::{HeaderMap, HeaderName, HeaderValue, header::RETRY_AFTER};
use governor::clock::Clock;
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;

const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

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
    inner: Option<DefaultKeyedRateLimiter<String, StateInformationMiddleware>>,
    /// Requests per minute per key.
    per_minute: u32,
}

impl Limiter {
    /// A limiter allowing `per_minute` requests a minute per key (0 = unlimited).
    pub fn new(per_minute: u32) -> Self {
        let inner = NonZeroU32::new(per_minute).map(|n| {
            RateLimiter::keyed(Quota::per_minute(n)).with_middleware::<StateInformationMiddleware>()
        });
        Self { inner, per_minute }
    }

    /// Takes one request from `key`'s bucket (owned: governor keys its map by `String`).
    pub fn check(&self, key: String) -> Decision {
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
                h.insert(LIMIT, num(self.per_minute.into()));
                h.insert(REMAINING, num(remaining.into()));
                h.insert(RESET, num(reset_secs));
            }
            Decision::Limited { retry_after_secs } => {
                h.insert(LIMIT, num(self.per_minute.into()));
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
        let l = Limiter::new(3);
        assert_eq!(
            l.check("a".into()),
            Decision::Allowed {
                remaining: 2,
                reset_secs: 20
            }
        );
        assert!(matches!(
            l.check("a".into()),
            Decision::Allowed { remaining: 1, .. }
        ));
        assert!(matches!(
            l.check("a".into()),
            Decision::Allowed {
                remaining: 0,
                reset_secs: 60
            }
        ));
        match l.check("a".into()) {
            Decision::Limited { retry_after_secs } => assert!((1..=20).contains(&retry_after_secs)),
            d => panic!("{d:?}"),
        }
        assert!(matches!(
            l.check("b".into()),
            Decision::Allowed { remaining: 2, .. }
        ));
        assert_eq!(Limiter::new(0).check("a".into()), Decision::Off);
    }
}
