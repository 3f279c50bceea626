//! RS256 JWT bearer tokens from an external identity provider (RFC 7519, RFC 7515).
//!
//! Keys come from the configured JWKS URL (RFC 7517), cached by `kid` and refetched when a token
//! names an unknown `kid` (at most once every [`REFRESH_FLOOR`], so random `kid`s cannot make us
//! hammer the provider). Only RS256 is accepted: `alg: none`, HS256 (including the classic
//! confusion attack that signs with the RSA public key as an HMAC secret) and every other
//! algorithm are refused before any key is used. `exp` and `nbf` are checked against the injected
//! clock, `iss` and `aud` against the configuration. The tenant comes from a configurable claim
//! (id or slug) and roles from another; the user id is derived from `iss` and `sub`, so users from
//! the identity provider need no registration.
use crate::{Error, Result, Services};
use casegate_domain::ids::{TenantId, UserId};
use casegate_domain::principal::{AuthMethod, Principal};
use casegate_domain::rbac::{builtin_role, permissions_of};
use casegate_store::tenants;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Minimum time between two JWKS fetches triggered by unknown `kid`s.
pub const REFRESH_FLOOR: Duration = Duration::from_secs(10);
/// Cached keys are refetched after this long, so keys the provider retires stop being trusted.
pub const MAX_KEY_AGE: Duration = Duration::from_secs(3600);

/// JWT settings (`CASEGATE_JWKS_URL`, `CASEGATE_JWT_ISSUER`, …).
#[derive(Clone, Debug)]
pub struct JwtConfig {
    /// Where the identity provider publishes its keys.
    pub jwks_url: String,
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud`.
    pub audience: String,
    /// Claim holding the tenant id or slug (default `org_id`).
    pub tenant_claim: String,
    /// Claim holding the role names (default `roles`): an array, or a space-separated string.
    pub roles_claim: String,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: time::Duration,
    /// Minimum time between two fetches triggered by unknown `kid`s ([`REFRESH_FLOOR`]).
    pub min_refresh: Duration,
}

/// The cached key set.
pub(crate) struct Jwks {
    config: JwtConfig,
    /// Decoding keys by `kid`.
    keys: RwLock<HashMap<String, DecodingKey>>,
    /// When the keys were last fetched; serialises fetches.
    fetched: Mutex<Option<Instant>>,
    /// Tenant claim value → (id, slug); tenants are never renamed or deleted.
    tenants: RwLock<HashMap<String, (TenantId, String)>>,
    http: reqwest::Client,
}

fn unauth(msg: impl Into<String>) -> Error {
    Error::unauthenticated(msg)
}

impl Jwks {
    pub(crate) fn new(config: JwtConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            config,
            keys: RwLock::default(),
            fetched: Mutex::new(None),
            tenants: RwLock::default(),
            http,
        }
    }

    fn cached(&self, kid: &str) -> Option<DecodingKey> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(kid)
            .cloned()
    }

    fn fresh(&self) -> bool {
        self.fetched
            .try_lock()
            .map(|f| f.is_some_and(|t| t.elapsed() < MAX_KEY_AGE))
            .unwrap_or(true)
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey> {
        if self.fresh()
            && let Some(k) = self.cached(kid)
        {
            return Ok(k);
        }
        let mut fetched = self.fetched.lock().await;
        let stale = fetched.is_none_or(|t| t.elapsed() >= MAX_KEY_AGE);
        // Another request may have refreshed while we waited.
        if !stale && let Some(k) = self.cached(kid) {
            return Ok(k);
        }
        if stale || fetched.is_none_or(|t| t.elapsed() >= self.config.min_refresh) {
            *fetched = Some(Instant::now());
            let set = self.fetch().await?;
            *self.keys.write().unwrap_or_else(|e| e.into_inner()) = set;
        }
        self.cached(kid)
            .ok_or_else(|| unauth("the token is signed by an unknown key"))
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>> {
        let fail = |e: &dyn std::fmt::Display| {
            tracing::warn!(error = %e, "JWKS fetch failed");
            Error::new(
                crate::Code::Unavailable,
                "the identity provider's keys could not be fetched",
            )
        };
        let resp = self
            .http
            .get(&self.config.jwks_url)
            .send()
            .await
            .map_err(|e| fail(&e))?;
        let resp = resp.error_for_status().map_err(|e| fail(&e))?;
        let set: JwkSet = resp.json().await.map_err(|e| fail(&e))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), AlgorithmParameters::RSA(_)) = (&jwk.common.key_id, &jwk.algorithm)
            else {
                continue;
            };
            // Only signature keys meant for RS256 (RFC 7517 §4.2, §4.4).
            let for_signing = jwk
                .common
                .public_key_use
                .as_ref()
                .is_none_or(|u| *u == PublicKeyUse::Signature);
            let for_rs256 = jwk
                .common
                .key_algorithm
                .is_none_or(|a| a == KeyAlgorithm::RS256);
            if !(for_signing && for_rs256) {
                continue;
            }
            if let Ok(k) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid.clone(), k);
            }
        }
        Ok(keys)
    }

    async fn tenant(&self, svc: &Services, claim: &str) -> Result<(TenantId, String)> {
        if let Some(t) = self
            .tenants
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(claim)
        {
            return Ok(t.clone());
        }
        let mut c = svc.db.conn().await?;
        let t = tenants::resolve(&mut *c, claim)
            .await
            .map_err(|e| match e {
                casegate_store::StoreError::NotFound => {
                    unauth("the token's organisation is unknown")
                }
                e => e.into(),
            })?;
        let v = (t.id, t.slug);
        self.tenants
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(claim.to_string(), v.clone());
        Ok(v)
    }
}

fn roles_from(v: Option<&Value>) -> Vec<String> {
    let names: Vec<String> = match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|r| r.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        _ => Vec::new(),
    };
    let mut out: Vec<String> = names
        .into_iter()
        .filter(|r| builtin_role(r).is_some())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Verifies a JWT and builds its principal.
pub(crate) async fn authenticate(svc: &Services, token: &str) -> Result<Principal> {
    let Some(jwks) = &svc.jwks else {
        return Err(unauth(
            "JWT authentication is not configured on this server",
        ));
    };
    let cfg = &jwks.config;
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| unauth("malformed token or unsupported algorithm"))?;
    if header.alg != Algorithm::RS256 {
        return Err(unauth(
            "unsupported token algorithm: only RS256 is accepted",
        ));
    }
    let kid = header
        .kid
        .ok_or_else(|| unauth("the token header has no kid"))?;
    let key = jwks.key(&kid).await?;
    let mut v = Validation::new(Algorithm::RS256);
    v.validate_exp = false; // checked below against the injected clock
    v.validate_nbf = false;
    v.set_issuer(&[&cfg.issuer]);
    v.set_audience(&[&cfg.audience]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind::*;
        unauth(match e.kind() {
            InvalidIssuer => "the token was issued by another issuer",
            InvalidAudience => "the token is meant for another audience",
            InvalidSignature => "the token signature is invalid",
            InvalidAlgorithm => "unsupported token algorithm: only RS256 is accepted",
            MissingRequiredClaim(_) => "the token lacks a required claim (exp, iss, aud, sub)",
            _ => "malformed token",
        })
    })?;
    let claims = data.claims;
    let now = svc.clock.now().unix_timestamp();
    let leeway = cfg.leeway.whole_seconds();
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or_else(|| unauth("the token's exp is not a number"))?;
    if now > exp + leeway {
        return Err(unauth("the token has expired"));
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = nbf
            .as_i64()
            .ok_or_else(|| unauth("the token's nbf is not a number"))?;
        if now + leeway < nbf {
            return Err(unauth("the token is not valid yet"));
        }
    }
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or_else(|| unauth("the token's sub is not a string"))?;
    let tenant_claim = claims
        .get(&cfg.tenant_claim)
        .and_then(Value::as_str)
        .ok_or_else(|| {
            unauth(format!(
                "the token has no `{}` claim naming the organisation",
                cfg.tenant_claim
            ))
        })?;
    let (tenant_id, tenant_slug) = jwks.tenant(svc, tenant_claim).await?;
    let roles = roles_from(claims.get(&cfg.roles_claim));
    let user_id = UserId(uuid::Uuid::new_v5(
        &tenant_id.0,
        format!("jwt:{}:{sub}", cfg.issuer).as_bytes(),
    ));
    Ok(Principal {
        tenant_id,
        tenant_slug,
        user_id,
        email: claims
            .get("email")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase),
        permissions: permissions_of(&roles),
        roles,
        method: AuthMethod::Jwt(sub.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roles_keep_only_known_names() {
        assert_eq!(
            roles_from(Some(&json!(["mlro", "root", "analyst", "mlro"]))),
            ["analyst", "mlro"]
        );
        assert_eq!(roles_from(Some(&json!("auditor superuser"))), ["auditor"]);
        assert!(roles_from(Some(&json!(42))).is_empty());
        assert!(roles_from(None).is_empty());
    }
}
