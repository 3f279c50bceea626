//! API keys. Only the SHA-256 of a key is stored (`key_hash`, unique); the key itself is
//! shown once at creation. A key acts as its user, with that user's roles.
use crate::{Conn, Row, StoreError, StoreResult};
use casegate_domain::ids::{ApiKeyId, TenantId, UserId};
use time::OffsetDateTime;

/// A stored API key (never the secret).
#[derive(Clone, Debug, PartialEq)]
pub struct ApiKey {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Key id.
    pub id: ApiKeyId,
    /// The user the key acts as.
    pub user_id: UserId,
    /// A label chosen at creation.
    pub name: String,
    /// Displayable start of the key (`cg_live_AbC123`).
    pub prefix: String,
    /// SHA-256 hex of the whole key.
    pub key_hash: String,
    /// Who created the key.
    pub created_by: Option<UserId>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// When the key last authenticated a request (updated at most once a minute).
    pub last_used_at: Option<OffsetDateTime>,
    /// When the key was revoked; a revoked key never authenticates again.
    pub revoked_at: Option<OffsetDateTime>,
    /// Email of `user_id` (read from `users`; ignored on insert).
    pub user_email: Option<String>,
    /// Email of `created_by` (read from `users`; ignored on insert).
    pub created_by_email: Option<String>,
}

/// Key columns with the emails of the user and the creator.
const COLS: &str = "k.tenant_id, k.id, k.user_id, k.name, k.prefix, k.key_hash, k.created_by, \
    k.created_at, k.last_used_at, k.revoked_at, u.email AS user_email, c.email AS created_by_email \
    FROM api_keys k \
    LEFT JOIN users u ON u.tenant_id = k.tenant_id AND u.id = k.user_id \
    LEFT JOIN users c ON c.tenant_id = k.tenant_id AND c.id = k.created_by";

fn from_row(r: &Row) -> StoreResult<ApiKey> {
    Ok(ApiKey {
        tenant_id: TenantId(r.uuid("tenant_id")?),
        id: ApiKeyId(r.uuid("id")?),
        user_id: UserId(r.uuid("user_id")?),
        name: r.text("name")?,
        prefix: r.text("prefix")?,
        key_hash: r.text("key_hash")?,
        created_by: r.opt_uuid("created_by")?.map(UserId),
        created_at: r.time("created_at")?,
        last_used_at: r.opt_time("last_used_at")?,
        revoked_at: r.opt_time("revoked_at")?,
        user_email: r.opt_text("user_email")?,
        created_by_email: r.opt_text("created_by_email")?,
    })
}

/// Inserts a key.
pub async fn insert(c: &mut dyn Conn, k: &ApiKey) -> StoreResult<()> {
    c.execute(
        "INSERT INTO api_keys (tenant_id, id, user_id, name, prefix, key_hash, created_by, created_at, last_used_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            k.tenant_id.into(),
            k.id.into(),
            k.user_id.into(),
            k.name.as_str().into(),
            k.prefix.as_str().into(),
            k.key_hash.as_str().into(),
            k.created_by.into(),
            k.created_at.into(),
            k.last_used_at.into(),
            k.revoked_at.into(),
        ],
    )
    .await
    .map(drop)
}

/// A key of `tenant` by id.
pub async fn get(c: &mut dyn Conn, tenant: TenantId, id: ApiKeyId) -> StoreResult<Option<ApiKey>> {
    let sql = format!("SELECT {COLS} WHERE k.tenant_id = $1 AND k.id = $2");
    c.fetch_optional(&sql, &[tenant.into(), id.into()])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// The unrevoked key with this hash, in any tenant. This is the one lookup that is not scoped
/// by tenant: the credential is what tells which tenant the caller belongs to.
pub async fn find_active_by_hash(c: &mut dyn Conn, key_hash: &str) -> StoreResult<Option<ApiKey>> {
    let sql = format!("SELECT {COLS} WHERE k.key_hash = $1 AND k.revoked_at IS NULL");
    c.fetch_optional(&sql, &[key_hash.into()])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// A page of `tenant`'s keys, newest first, and the total.
pub async fn list(
    c: &mut dyn Conn,
    tenant: TenantId,
    limit: i64,
    offset: i64,
) -> StoreResult<(Vec<ApiKey>, i64)> {
    let sql = format!(
        "SELECT {COLS} WHERE k.tenant_id = $1 ORDER BY k.created_at DESC, k.id DESC LIMIT $2 OFFSET $3"
    );
    let rows = c
        .fetch_all(&sql, &[tenant.into(), limit.into(), offset.into()])
        .await?;
    let total = c
        .fetch_one(
            "SELECT count(*) AS n FROM api_keys WHERE tenant_id = $1",
            &[tenant.into()],
        )
        .await?
        .int("n")?;
    Ok((
        rows.iter().map(from_row).collect::<StoreResult<_>>()?,
        total,
    ))
}

/// Revokes a key. Returns the key as stored afterwards and whether this call revoked it
/// (revoking twice keeps the first time). `NotFound` when the key is not in `tenant`.
pub async fn revoke(
    c: &mut dyn Conn,
    tenant: TenantId,
    id: ApiKeyId,
    at: OffsetDateTime,
) -> StoreResult<(ApiKey, bool)> {
    let n = c
        .execute(
            "UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
            &[tenant.into(), id.into(), at.into()],
        )
        .await?;
    let key = get(c, tenant, id).await?.ok_or(StoreError::NotFound)?;
    Ok((key, n == 1))
}

/// Records use of a key, unless it was recorded less than a minute before `at`.
pub async fn touch(
    c: &mut dyn Conn,
    tenant: TenantId,
    id: ApiKeyId,
    at: OffsetDateTime,
) -> StoreResult<()> {
    c.execute(
        "UPDATE api_keys SET last_used_at = $3 WHERE tenant_id = $1 AND id = $2 \
         AND (last_used_at IS NULL OR last_used_at < $4)",
        &[
            tenant.into(),
            id.into(),
            at.into(),
            (at - time::Duration::minutes(1)).into(),
        ],
    )
    .await
    .map(drop)
}
