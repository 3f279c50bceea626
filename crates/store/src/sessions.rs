//! Browser sessions from password login. The cookie carries a random token; only its SHA-256
//! is stored, together with the SHA-256 of the session's CSRF token.
use crate::{Conn, Row, StoreResult};
use casegate_domain::ids::{SessionId, TenantId, UserId};
use time::OffsetDateTime;

/// A stored session.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Session id.
    pub id: SessionId,
    /// The logged-in user.
    pub user_id: UserId,
    /// SHA-256 hex of the cookie token.
    pub token_hash: String,
    /// SHA-256 hex of the CSRF token.
    pub csrf_hash: String,
    /// Login time.
    pub created_at: OffsetDateTime,
    /// The session is refused from this instant on.
    pub expires_at: OffsetDateTime,
}

const COLS: &str = "tenant_id, id, user_id, token_hash, csrf_hash, created_at, expires_at";

fn from_row(r: &Row) -> StoreResult<Session> {
    Ok(Session {
        tenant_id: TenantId(r.uuid("tenant_id")?),
        id: SessionId(r.uuid("id")?),
        user_id: UserId(r.uuid("user_id")?),
        token_hash: r.text("token_hash")?,
        csrf_hash: r.text("csrf_hash")?,
        created_at: r.time("created_at")?,
        expires_at: r.time("expires_at")?,
    })
}

/// Inserts a session.
pub async fn insert(c: &mut dyn Conn, s: &Session) -> StoreResult<()> {
    c.execute(
        "INSERT INTO sessions (tenant_id, id, user_id, token_hash, csrf_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            s.tenant_id.into(),
            s.id.into(),
            s.user_id.into(),
            s.token_hash.as_str().into(),
            s.csrf_hash.as_str().into(),
            s.created_at.into(),
            s.expires_at.into(),
        ],
    )
    .await
    .map(drop)
}

/// The unexpired session with this token hash. Like API keys, the token names the tenant.
pub async fn find_active_by_hash(
    c: &mut dyn Conn,
    token_hash: &str,
    now: OffsetDateTime,
) -> StoreResult<Option<Session>> {
    let sql = format!("SELECT {COLS} FROM sessions WHERE token_hash = $1 AND expires_at > $2");
    c.fetch_optional(&sql, &[token_hash.into(), now.into()])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Ends a session (logout). Returns whether it existed.
pub async fn delete(c: &mut dyn Conn, tenant: TenantId, id: SessionId) -> StoreResult<bool> {
    let n = c
        .execute(
            "DELETE FROM sessions WHERE tenant_id = $1 AND id = $2",
            &[tenant.into(), id.into()],
        )
        .await?;
    Ok(n > 0)
}

/// Deletes every session of a user (after a role or password change).
pub async fn delete_for_user(c: &mut dyn Conn, tenant: TenantId, user: UserId) -> StoreResult<u64> {
    c.execute(
        "DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2",
        &[tenant.into(), user.into()],
    )
    .await
}

/// Deletes sessions that expired before `now`; returns how many.
pub async fn purge_expired(c: &mut dyn Conn, now: OffsetDateTime) -> StoreResult<u64> {
    c.execute("DELETE FROM sessions WHERE expires_at <= $1", &[now.into()])
        .await
}
