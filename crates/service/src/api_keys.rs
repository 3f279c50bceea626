//! API-key administration (`admin.keys`). A key acts as one user with that user's roles; the
//! secret is returned once and only its SHA-256 is stored.
use crate::audit::{self, Actor, Entry};
use crate::{Error, Page, Result, Services, random_id, random_token, users};
use casegate_domain::clock::wire_time;
use casegate_domain::credentials::{
    API_KEY_RANDOM_LEN, api_key_prefix, format_api_key, hash_secret,
};
use casegate_domain::ids::{ApiKeyId, TenantId, UserId};
use casegate_domain::principal::{Caller, Origin};
use casegate_domain::rbac::Permission;
use casegate_domain::validate;
use casegate_store::Conn;
use casegate_store::api_keys::{self, ApiKey};
use serde_json::Value;

/// A key just created: the record and the secret, which is never retrievable again.
#[derive(Debug)]
pub struct CreatedKey {
    /// The stored record.
    pub record: ApiKey,
    /// The key itself (`cg_<env>_…`).
    pub secret: String,
}

/// Mints a key for `user` inside an open transaction and audits it (used by `create`,
/// `casegate tenant create` and `casegate demo`).
pub(crate) async fn mint(
    svc: &Services,
    c: &mut dyn Conn,
    tenant: TenantId,
    user: UserId,
    name: String,
    actor: &Actor,
    origin: &Origin,
) -> Result<CreatedKey> {
    let created_by = match actor {
        Actor::User { id, .. } => Some(*id),
        _ => None,
    };
    let secret = format_api_key(&svc.config.key_env, &random_token(API_KEY_RANDOM_LEN));
    let record = ApiKey {
        tenant_id: tenant,
        id: ApiKeyId::new_v4(random_id()),
        user_id: user,
        name,
        prefix: api_key_prefix(&secret),
        key_hash: hash_secret(&secret),
        created_by,
        created_at: svc.clock.now(),
        last_used_at: None,
        revoked_at: None,
        user_email: None,
        created_by_email: None,
    };
    api_keys::insert(c, &record).await?;
    let entry = Entry::new("api_key.created", "api_key", record.id)
        .change("name", Value::Null, record.name.as_str())
        .change("prefix", Value::Null, record.prefix.as_str())
        .change("user_id", Value::Null, record.user_id.to_string());
    audit::append(c, record.created_at, tenant, actor, origin, entry).await?;
    Ok(CreatedKey { record, secret })
}

/// `POST /api-keys`. `user` (id or email) defaults to the caller; the caller must hold every
/// permission of that user, so a key cannot be used to escalate.
pub async fn create(
    svc: &Services,
    p: &Caller,
    name: &str,
    user: Option<&str>,
) -> Result<CreatedKey> {
    audit::require_sensitive(svc, p, Permission::AdminKeys, "api_key").await?;
    let name = validate::text("name", name, 200)?;
    let mut tx = svc.db.begin().await?;
    let owner = match user {
        Some(u) => users::resolve(&mut *tx, p.tenant_id, u)
            .await
            .map_err(|e| e.with_param("user_id"))?,
        None => users::resolve(&mut *tx, p.tenant_id, &p.user_id.to_string())
            .await
            .map_err(|_| Error::validation("user_id", "name the user the key acts as"))?,
    };
    if !owner.active {
        return Err(Error::validation("user_id", "the user is disabled"));
    }
    users::check_grant(p, &owner.roles)?;
    let created = mint(
        svc,
        &mut *tx,
        p.tenant_id,
        owner.id,
        name,
        &Actor::of(p),
        &p.origin,
    )
    .await?;
    tx.commit().await?;
    Ok(created)
}

/// `GET /api-keys`.
pub async fn list(svc: &Services, p: &Caller, page: Page) -> Result<(Vec<ApiKey>, i64)> {
    p.require(Permission::AdminKeys)?;
    let mut c = svc.db.conn().await?;
    Ok(api_keys::list(&mut *c, p.tenant_id, page.limit, page.offset).await?)
}

/// `DELETE /api-keys/{id}`: revokes the key; it answers 401 from the next request on.
pub async fn revoke(svc: &Services, p: &Caller, id: ApiKeyId) -> Result<ApiKey> {
    audit::require_sensitive(svc, p, Permission::AdminKeys, "api_key").await?;
    let mut tx = svc.db.begin().await?;
    let now = svc.clock.now();
    let (key, newly) = api_keys::revoke(&mut *tx, p.tenant_id, id, now)
        .await
        .map_err(|e| match e {
            casegate_store::StoreError::NotFound => Error::not_found("API key"),
            e => e.into(),
        })?;
    // Revoking an already revoked key changes nothing and records nothing.
    if newly {
        let entry = Entry::new("api_key.revoked", "api_key", key.id).change(
            "revoked_at",
            Value::Null,
            wire_time(now),
        );
        audit::append_by(&mut *tx, now, p, entry).await?;
    }
    let note = crate::auth::invalidation_of_key(&key.key_hash);
    casegate_store::publish(&mut *tx, crate::auth::INVALIDATIONS, &note).await?;
    tx.commit().await?;
    svc.auth_cache.remove(&key.key_hash);
    Ok(key)
}
