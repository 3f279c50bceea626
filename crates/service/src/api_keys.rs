//! API-key administration (`admin.keys`). A key acts as one user with that user's roles; the
//! secret is returned once and only its SHA-256 is stored.
use crate::{Error, Page, Result, Services, random_id, random_token, users};
use casegate_domain::credentials::{
    API_KEY_RANDOM_LEN, api_key_prefix, format_api_key, hash_secret,
};
use casegate_domain::ids::{ApiKeyId, TenantId, UserId};
use casegate_domain::principal::Principal;
use casegate_domain::rbac::Permission;
use casegate_domain::validate;
use casegate_store::Conn;
use casegate_store::api_keys::{self, ApiKey};

/// A key just created: the record and the secret, which is never retrievable again.
#[derive(Debug)]
pub struct CreatedKey {
    /// The stored record.
    pub record: ApiKey,
    /// The key itself (`cg_<env>_…`).
    pub secret: String,
}

/// Mints a key for `user` inside an open transaction (used by `create` and by `casegate demo`).
pub(crate) async fn mint(
    svc: &Services,
    c: &mut dyn Conn,
    tenant: TenantId,
    user: UserId,
    name: String,
    created_by: Option<UserId>,
) -> Result<CreatedKey> {
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
    Ok(CreatedKey { record, secret })
}

/// `POST /api-keys`. `user` (id or email) defaults to the caller; the caller must hold every
/// permission of that user, so a key cannot be used to escalate.
pub async fn create(
    svc: &Services,
    p: &Principal,
    name: &str,
    user: Option<&str>,
) -> Result<CreatedKey> {
    p.require(Permission::AdminKeys)?;
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
    let created = mint(svc, &mut *tx, p.tenant_id, owner.id, name, Some(p.user_id)).await?;
    tx.commit().await?;
    Ok(created)
}

/// `GET /api-keys`.
pub async fn list(svc: &Services, p: &Principal, page: Page) -> Result<(Vec<ApiKey>, i64)> {
    p.require(Permission::AdminKeys)?;
    let mut c = svc.db.conn().await?;
    Ok(api_keys::list(&mut *c, p.tenant_id, page.limit, page.offset).await?)
}

/// `DELETE /api-keys/{id}`: revokes the key; it answers 401 from the next request on.
pub async fn revoke(svc: &Services, p: &Principal, id: ApiKeyId) -> Result<ApiKey> {
    p.require(Permission::AdminKeys)?;
    let mut tx = svc.db.begin().await?;
    let key = api_keys::revoke(&mut *tx, p.tenant_id, id, svc.clock.now())
        .await
        .map_err(|e| match e {
            casegate_store::StoreError::NotFound => Error::not_found("API key"),
            e => e.into(),
        })?;
    tx.commit().await?;
    svc.auth_cache.remove(&key.key_hash);
    Ok(key)
}
