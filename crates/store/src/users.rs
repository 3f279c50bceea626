//! Users of a tenant. Email is unique within a tenant (lowercased by the service).
use crate::{Conn, Row, StoreError, StoreResult};
use casegate_domain::ids::{TenantId, UserId};
use serde_json::Value as Json;
use time::OffsetDateTime;

/// A stored user.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    /// Owning tenant (first part of the key).
    pub tenant_id: TenantId,
    /// User id.
    pub id: UserId,
    /// Lowercased email, unique per tenant; the login name.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Granted role names.
    pub roles: Vec<String>,
    /// Argon2id PHC string; `None` for users who cannot log in with a password.
    pub password_hash: Option<String>,
    /// Whether the user may authenticate at all.
    pub active: bool,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change time.
    pub updated_at: OffsetDateTime,
}

const COLS: &str =
    "tenant_id, id, email, name, roles, password_hash, active, created_at, updated_at";

fn from_row(r: &Row) -> StoreResult<User> {
    let roles = match r.json("roles")? {
        Json::Array(a) => a
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    Ok(User {
        tenant_id: TenantId(r.uuid("tenant_id")?),
        id: UserId(r.uuid("id")?),
        email: r.text("email")?,
        name: r.text("name")?,
        roles,
        password_hash: r.opt_text("password_hash")?,
        active: r.bool("active")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

fn roles_json(roles: &[String]) -> Json {
    Json::Array(roles.iter().cloned().map(Json::String).collect())
}

/// Inserts a user; `Conflict` when the email is taken in this tenant.
pub async fn insert(c: &mut dyn Conn, u: &User) -> StoreResult<()> {
    c.execute(
        "INSERT INTO users (tenant_id, id, email, name, roles, password_hash, active, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            u.tenant_id.into(),
            u.id.into(),
            u.email.as_str().into(),
            u.name.as_str().into(),
            roles_json(&u.roles).into(),
            u.password_hash.clone().into(),
            u.active.into(),
            u.created_at.into(),
            u.updated_at.into(),
        ],
    )
    .await
    .map(drop)
}

/// A user of `tenant` by id.
pub async fn get(c: &mut dyn Conn, tenant: TenantId, id: UserId) -> StoreResult<Option<User>> {
    let sql = format!("SELECT {COLS} FROM users WHERE tenant_id = $1 AND id = $2");
    c.fetch_optional(&sql, &[tenant.into(), id.into()])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// A user of `tenant` by (lowercased) email.
pub async fn by_email(
    c: &mut dyn Conn,
    tenant: TenantId,
    email: &str,
) -> StoreResult<Option<User>> {
    let sql = format!("SELECT {COLS} FROM users WHERE tenant_id = $1 AND email = $2");
    c.fetch_optional(&sql, &[tenant.into(), email.into()])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Every active user with this email, across tenants: only for password login, where the
/// tenant is not known until the password matches one of them.
pub async fn login_candidates(c: &mut dyn Conn, email: &str) -> StoreResult<Vec<User>> {
    let sql = format!(
        "SELECT {COLS} FROM users WHERE email = $1 AND active = TRUE AND password_hash IS NOT NULL ORDER BY tenant_id LIMIT 20"
    );
    c.fetch_all(&sql, &[email.into()])
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// `tenant`'s active users holding any of `roles`, oldest first (roles are a JSON list in the
/// row, so the match happens here; an organisation has hundreds of users, not millions).
pub async fn active_with_roles(
    c: &mut dyn Conn,
    tenant: TenantId,
    roles: &[String],
) -> StoreResult<Vec<User>> {
    if roles.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {COLS} FROM users WHERE tenant_id = $1 AND active = TRUE ORDER BY created_at, id"
    );
    let rows = c.fetch_all(&sql, &[tenant.into()]).await?;
    let mut found = Vec::new();
    for r in &rows {
        let u = from_row(r)?;
        if u.roles.iter().any(|r| roles.contains(r)) {
            found.push(u);
        }
    }
    Ok(found)
}

/// A page of `tenant`'s users, newest first, and the total count.
pub async fn list(
    c: &mut dyn Conn,
    tenant: TenantId,
    limit: i64,
    offset: i64,
) -> StoreResult<(Vec<User>, i64)> {
    let sql = format!(
        "SELECT {COLS} FROM users WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    );
    let rows = c
        .fetch_all(&sql, &[tenant.into(), limit.into(), offset.into()])
        .await?;
    let total = c
        .fetch_one(
            "SELECT count(*) AS n FROM users WHERE tenant_id = $1",
            &[tenant.into()],
        )
        .await?
        .int("n")?;
    Ok((
        rows.iter().map(from_row).collect::<StoreResult<_>>()?,
        total,
    ))
}

/// Replaces a user's roles; `NotFound` when the user is not in `tenant`.
pub async fn set_roles(
    c: &mut dyn Conn,
    tenant: TenantId,
    id: UserId,
    roles: &[String],
    at: OffsetDateTime,
) -> StoreResult<()> {
    let n = c
        .execute(
            "UPDATE users SET roles = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
            &[
                tenant.into(),
                id.into(),
                roles_json(roles).into(),
                at.into(),
            ],
        )
        .await?;
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// Writes a user's name, active flag and password hash; `NotFound` when not in `tenant`.
pub async fn update_profile(c: &mut dyn Conn, u: &User) -> StoreResult<()> {
    let n = c
        .execute(
            "UPDATE users SET name = $3, active = $4, password_hash = $5, updated_at = $6 \
             WHERE tenant_id = $1 AND id = $2",
            &[
                u.tenant_id.into(),
                u.id.into(),
                u.name.as_str().into(),
                u.active.into(),
                u.password_hash.clone().into(),
                u.updated_at.into(),
            ],
        )
        .await?;
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}
