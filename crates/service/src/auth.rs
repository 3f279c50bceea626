//! Authentication: credential → [`Principal`]. Three credentials are accepted (API.md
//! "Conventions"): API keys (`Authorization: Bearer cg_…` or `X-API-Key`), RS256 JWTs
//! (`Authorization: Bearer eyJ…`) and the session cookie of a password login, which needs the
//! `X-CSRF-Token` header on unsafe methods.
//!
//! Resolved API keys and sessions are cached in memory for `auth_cache_ttl`, keyed by the SHA-256
//! of the secret, so the request path does not query the database on every call. Revoking a key,
//! logging out or changing a user's roles invalidates the entries at once, in this process and,
//! on PostgreSQL, in every other process sharing the database: the change publishes on
//! [`INVALIDATIONS`] in its transaction and each process follows that channel
//! ([`follow_invalidations`]); a gap in the feed clears the whole cache.
use crate::audit::{self, Actor, Entry};
use crate::{Code, Error, Result, Services, password, random_id, random_token};
use casegate_domain::credentials::{hash_secret, is_api_key};
use casegate_domain::ids::{SessionId, TenantId, UserId};
use casegate_domain::principal::{AuthMethod, Caller, Origin, Principal};
use casegate_domain::rbac::permissions_of;
use casegate_domain::validate;
use casegate_store::sessions::{self, Session};
use casegate_store::tenants::{self, Tenant};
use casegate_store::users::{self, User};
use casegate_store::{Conn, StoreError, api_keys};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

/// A credential as presented by a request.
#[derive(Clone, Copy, Debug)]
pub enum Credential<'a> {
    /// `Authorization: Bearer <token>`: an API key or a JWT.
    Bearer(&'a str),
    /// `X-API-Key: <key>`.
    ApiKey(&'a str),
    /// The session cookie; `csrf` is the `X-CSRF-Token` header, required when `unsafe_method`.
    Session {
        /// The cookie value.
        token: &'a str,
        /// The `X-CSRF-Token` header, if sent.
        csrf: Option<&'a str>,
        /// Whether the request method changes state (anything but GET, HEAD, OPTIONS).
        unsafe_method: bool,
    },
}

/// A cached resolution of a secret.
#[derive(Clone)]
struct Cached {
    principal: Arc<Principal>,
    /// Sessions: SHA-256 of the CSRF token and the expiry.
    session: Option<(String, OffsetDateTime)>,
    fetched: Instant,
}

/// Resolved credentials by secret hash, for a bounded time.
pub(crate) struct AuthCache {
    ttl: Duration,
    /// Secret hash → resolution. Cleared when it grows past `MAX_ENTRIES`.
    entries: Mutex<HashMap<String, Cached>>,
    /// Bumped by every invalidation. A lookup that started before an invalidation is not
    /// cached, so a revocation racing a cache miss cannot resurrect the revoked credential.
    generation: AtomicU64,
}

const MAX_ENTRIES: usize = 100_000;

impl AuthCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn get(&self, hash: &str) -> Option<Cached> {
        if self.ttl.is_zero() {
            return None;
        }
        let mut m = self.lock();
        match m.get(hash) {
            Some(c) if c.fetched.elapsed() < self.ttl => Some(c.clone()),
            Some(_) => {
                m.remove(hash);
                None
            }
            None => None,
        }
    }
    /// The generation to pass to [`AuthCache::put`], read before the database lookup.
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
    fn put(&self, hash: String, c: Cached, generation: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let mut m = self.lock();
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if m.len() >= MAX_ENTRIES {
            m.clear();
        }
        m.insert(hash, c);
    }
    pub(crate) fn remove(&self, hash: &str) {
        let mut m = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        m.remove(hash);
    }
    /// Drops every cached credential of a user (roles changed, user disabled).
    pub(crate) fn remove_user(&self, tenant: TenantId, user: UserId) {
        let mut m = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        m.retain(|_, c| !(c.principal.tenant_id == tenant && c.principal.user_id == user));
    }
    /// Drops everything (the invalidation feed had a gap).
    fn clear(&self) {
        let mut m = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        m.clear();
    }
    /// Applies one published invalidation (see [`invalidation_of_key`], [`invalidation_of_user`]).
    fn apply(&self, payload: &str) {
        if let Some(hash) = payload.strip_prefix("key:") {
            self.remove(hash);
        } else if let Some((t, u)) = payload
            .strip_prefix("user:")
            .and_then(|r| r.split_once(':'))
            && let (Ok(t), Ok(u)) = (t.parse::<TenantId>(), u.parse::<UserId>())
        {
            self.remove_user(t, u);
        } else {
            // Unknown to this version: be safe.
            self.clear();
        }
    }
}

/// The channel credential invalidations are published on.
pub const INVALIDATIONS: &str = "casegate_auth";

/// The invalidation of a secret (an API key or a session), by its hash.
pub(crate) fn invalidation_of_key(hash: &str) -> String {
    format!("key:{hash}")
}

/// The invalidation of every credential of a user.
pub(crate) fn invalidation_of_user(tenant: TenantId, user: UserId) -> String {
    format!("user:{tenant}:{user}")
}

/// Starts hearing the invalidations other processes publish (none where one process owns the
/// database: SQLite). Called before serving, so a credential revoked elsewhere after this
/// process answers its first request is never missed.
pub async fn invalidations(svc: &Services) -> Result<Option<casegate_store::Subscription>> {
    Ok(svc.db.subscribe(INVALIDATIONS).await?)
}

/// Applies the invalidations of `feed` until it ends or `stop` fires; a gap in the feed clears
/// the whole cache. Run by `casegate serve`.
pub async fn follow_invalidations(
    svc: Arc<Services>,
    mut feed: casegate_store::Subscription,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            next = feed.recv() => match next {
                Some(Some(payload)) => svc.auth_cache.apply(&payload),
                Some(None) => {
                    tracing::warn!("credential invalidations may have been missed; cache cleared");
                    svc.auth_cache.clear();
                }
                None => return,
            },
        }
    }
}

fn unauthenticated(msg: &str) -> Error {
    Error::unauthenticated(msg)
}

/// The principal of a stored user.
pub(crate) fn principal_of(tenant: &Tenant, user: &User, method: AuthMethod) -> Principal {
    Principal {
        tenant_id: tenant.id,
        tenant_slug: tenant.slug.clone(),
        user_id: user.id,
        email: Some(user.email.clone()),
        permissions: permissions_of(&user.roles),
        roles: user.roles.clone(),
        method,
    }
}

async fn tenant_and_user(
    c: &mut dyn Conn,
    tenant: TenantId,
    user: UserId,
) -> Result<Option<(Tenant, User)>> {
    let Some(t) = tenants::get(c, tenant).await? else {
        return Ok(None);
    };
    Ok(users::get(c, tenant, user)
        .await?
        .filter(|u| u.active)
        .map(|u| (t, u)))
}

/// Resolves a credential. Every failure is 401 `unauthenticated`, except a session write
/// without a valid CSRF token (403 `csrf_failed`).
///
/// An API key or session found in the cache is answered without a database round trip; the
/// lookups on a miss, and JWT verification (JWKS fetch included), are boxed, so the future every
/// request carries through the middleware stays small instead of as large as the largest lookup.
pub async fn authenticate(svc: &Services, cred: Credential<'_>) -> Result<Arc<Principal>> {
    match cred {
        Credential::ApiKey(k) => api_key(svc, k).await,
        Credential::Bearer(t) if t.starts_with("cg_") => api_key(svc, t).await,
        Credential::Bearer(t) if t.split('.').count() == 3 => {
            Box::pin(crate::jwt::authenticate(svc, t))
                .await
                .map(Arc::new)
        }
        Credential::Bearer(_) => Err(unauthenticated(
            "the bearer token is neither an API key nor a JWT",
        )),
        Credential::Session {
            token,
            csrf,
            unsafe_method,
        } => session(svc, token, csrf, unsafe_method).await,
    }
}

async fn api_key(svc: &Services, key: &str) -> Result<Arc<Principal>> {
    if !is_api_key(key) {
        return Err(unauthenticated("malformed API key"));
    }
    let hash = hash_secret(key);
    match svc.auth_cache.get(&hash) {
        Some(c) => Ok(c.principal),
        None => Box::pin(api_key_lookup(svc, hash)).await,
    }
}

/// [`api_key`] on a cache miss.
async fn api_key_lookup(svc: &Services, hash: String) -> Result<Arc<Principal>> {
    let generation = svc.auth_cache.generation();
    let mut c = svc.db.conn().await?;
    let Some(k) = api_keys::find_active_by_hash(&mut *c, &hash).await? else {
        return Err(unauthenticated("invalid or revoked API key"));
    };
    let Some((tenant, user)) = tenant_and_user(&mut *c, k.tenant_id, k.user_id).await? else {
        return Err(unauthenticated("the API key's user is disabled"));
    };
    let now = svc.clock.now();
    if k.last_used_at
        .is_none_or(|t| now - t >= time::Duration::minutes(1))
    {
        // Bookkeeping only: a busy database must not turn a valid key into an error.
        if let Err(e) = api_keys::touch(&mut *c, k.tenant_id, k.id, now).await {
            tracing::warn!(error = %e, "could not record API key use");
        }
    }
    let principal = Arc::new(principal_of(&tenant, &user, AuthMethod::ApiKey(k.id)));
    let cached = Cached {
        principal: principal.clone(),
        session: None,
        fetched: Instant::now(),
    };
    svc.auth_cache.put(hash, cached, generation);
    Ok(principal)
}

async fn session(
    svc: &Services,
    token: &str,
    csrf: Option<&str>,
    unsafe_method: bool,
) -> Result<Arc<Principal>> {
    if token.is_empty() || token.len() > 128 {
        return Err(unauthenticated("invalid session"));
    }
    let hash = hash_secret(token);
    let now = svc.clock.now();
    let cached = match svc.auth_cache.get(&hash) {
        Some(c) => c,
        None => Box::pin(session_lookup(svc, hash, now)).await?,
    };
    let Some((csrf_hash, expires_at)) = cached.session else {
        return Err(unauthenticated("invalid session"));
    };
    if now >= expires_at {
        return Err(unauthenticated(
            "the session has expired or ended; log in again",
        ));
    }
    if unsafe_method {
        let sent = csrf.map(hash_secret).unwrap_or_default();
        if !bool::from(sent.as_bytes().ct_eq(csrf_hash.as_bytes())) {
            return Err(Error::new(
                Code::CsrfFailed,
                "missing or wrong X-CSRF-Token header",
            ));
        }
    }
    Ok(cached.principal)
}

/// [`session`] on a cache miss.
async fn session_lookup(svc: &Services, hash: String, now: OffsetDateTime) -> Result<Cached> {
    let generation = svc.auth_cache.generation();
    let mut c = svc.db.conn().await?;
    let Some(s) = sessions::find_active_by_hash(&mut *c, &hash, now).await? else {
        return Err(unauthenticated(
            "the session has expired or ended; log in again",
        ));
    };
    let Some((tenant, user)) = tenant_and_user(&mut *c, s.tenant_id, s.user_id).await? else {
        return Err(unauthenticated("the session's user is disabled"));
    };
    let cached = Cached {
        principal: Arc::new(principal_of(&tenant, &user, AuthMethod::Session(s.id))),
        session: Some((s.csrf_hash, s.expires_at)),
        fetched: Instant::now(),
    };
    svc.auth_cache.put(hash, cached.clone(), generation);
    Ok(cached)
}

/// A successful password login.
#[derive(Debug)]
pub struct Login {
    /// The cookie value (shown once; only its hash is stored).
    pub session_token: String,
    /// The CSRF token to echo in `X-CSRF-Token` on unsafe requests.
    pub csrf_token: String,
    /// When the session ends.
    pub expires_at: OffsetDateTime,
    /// The logged-in user's principal.
    pub principal: Principal,
}

/// Password login. `tenant` (id or slug) is needed only when the email exists in several
/// organisations with the same password. Failures are indistinguishable and take the time of
/// one Argon2id verification at least.
pub async fn login(
    svc: &Services,
    email: &str,
    password: &str,
    tenant: Option<&str>,
    origin: &Origin,
) -> Result<Login> {
    let bad = || unauthenticated("wrong email or password");
    let email = validate::email("username", email).map_err(|_| bad())?;
    if password.is_empty() || password.chars().count() > 1024 {
        return Err(bad());
    }
    let candidates = {
        let mut c = svc.db.conn().await?;
        match tenant {
            Some(t) => match tenants::resolve(&mut *c, t).await {
                Ok(t) => users::by_email(&mut *c, t.id, &email)
                    .await?
                    .filter(|u| u.active && u.password_hash.is_some())
                    .into_iter()
                    .collect(),
                Err(StoreError::NotFound) => Vec::new(),
                Err(e) => return Err(e.into()),
            },
            None => users::login_candidates(&mut *c, &email).await?,
        }
    };
    if candidates.is_empty() {
        password::verify(password.to_string(), password::DUMMY_HASH.clone()).await;
        return Err(bad());
    }
    let mut matched = Vec::new();
    let mut failed = Vec::new();
    for u in candidates {
        let ok = match u.password_hash.clone() {
            Some(h) => password::verify(password.to_string(), h).await,
            None => false,
        };
        if ok { matched.push(u) } else { failed.push(u) }
    }
    if matched.is_empty() {
        // A wrong password for a known account is recorded in that organisation's trail.
        for u in failed {
            let entry = Entry::new("auth.login_failed", "user", u.id);
            if let Err(e) = audit::record(
                svc,
                u.tenant_id,
                &Actor::Anonymous(email.clone()),
                origin,
                entry,
            )
            .await
            {
                tracing::warn!(code = e.code.as_str(), "could not audit a failed login");
            }
        }
        return Err(bad());
    }
    let user = match matched.len() {
        1 => matched.remove(0),
        _ => {
            return Err(Error::validation(
                "tenant",
                "this account exists in several organisations: name one in `tenant` (id or slug)",
            ));
        }
    };
    let now = svc.clock.now();
    let session_token = random_token(43);
    let csrf_token = random_token(43);
    let s = Session {
        tenant_id: user.tenant_id,
        id: SessionId::new_v4(random_id()),
        user_id: user.id,
        token_hash: hash_secret(&session_token),
        csrf_hash: hash_secret(&csrf_token),
        created_at: now,
        expires_at: now + svc.config.session_ttl,
    };
    let mut tx = svc.db.begin().await?;
    let tenant = tenants::get(&mut *tx, user.tenant_id)
        .await?
        .ok_or_else(|| Error::internal("user without tenant"))?;
    sessions::insert(&mut *tx, &s).await?;
    let actor = Actor::User {
        id: user.id,
        label: user.email.clone(),
    };
    audit::append(
        &mut *tx,
        now,
        user.tenant_id,
        &actor,
        origin,
        Entry::new("auth.login", "session", s.id),
    )
    .await?;
    tx.commit().await?;
    Ok(Login {
        session_token,
        csrf_token,
        expires_at: s.expires_at,
        principal: principal_of(&tenant, &user, AuthMethod::Session(s.id)),
    })
}

/// Ends the session behind `token` (logout). Ending an unknown session is not an error.
pub async fn logout(svc: &Services, principal: &Caller, token: &str) -> Result<()> {
    let AuthMethod::Session(id) = principal.method else {
        return Err(Error::validation(
            "session",
            "only a session can log out; API keys are revoked instead",
        ));
    };
    let mut tx = svc.db.begin().await?;
    if sessions::delete(&mut *tx, principal.tenant_id, id).await? {
        let entry = Entry::new("auth.logout", "session", id);
        audit::append(
            &mut *tx,
            svc.clock.now(),
            principal.tenant_id,
            &Actor::of(principal),
            &principal.origin,
            entry,
        )
        .await?;
    }
    casegate_store::publish(
        &mut *tx,
        INVALIDATIONS,
        &invalidation_of_key(&hash_secret(token)),
    )
    .await?;
    tx.commit().await?;
    svc.auth_cache.remove(&hash_secret(token));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use casegate_domain::rbac::PermissionSet;

    fn cached() -> Cached {
        Cached {
            principal: Arc::new(Principal {
                tenant_id: TenantId::new_v4([1; 16]),
                tenant_slug: "t".into(),
                user_id: UserId::new_v4([2; 16]),
                email: None,
                roles: vec![],
                permissions: PermissionSet::EMPTY,
                method: AuthMethod::Jwt("s".into()),
            }),
            session: None,
            fetched: Instant::now(),
        }
    }

    #[test]
    fn a_lookup_racing_an_invalidation_is_not_cached() {
        let cache = AuthCache::new(Duration::from_secs(60));
        let before = cache.generation();
        // A revocation commits while the lookup that started at `before` is still running…
        cache.remove("h");
        // …so that lookup's (stale) result must not enter the cache.
        cache.put("h".into(), cached(), before);
        assert!(cache.get("h").is_none());
        let now = cache.generation();
        cache.put("h".into(), cached(), now);
        assert!(cache.get("h").is_some());
        cache.remove_user(TenantId::new_v4([1; 16]), UserId::new_v4([2; 16]));
        assert!(cache.get("h").is_none());
    }

    #[test]
    fn a_zero_ttl_disables_the_cache() {
        let cache = AuthCache::new(Duration::ZERO);
        cache.put("h".into(), cached(), cache.generation());
        assert!(cache.get("h").is_none());
    }
}
