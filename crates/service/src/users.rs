//! User administration (`admin.users`). Inputs naming a person accept a user id or an email of
//! the same tenant (API.md "People").
use crate::audit::{self, Entry};
use crate::{Error, Page, Result, Services, password, random_id};
use casegate_domain::ids::{TenantId, UserId};
use casegate_domain::principal::{Caller, Principal};
use casegate_domain::rbac::{Permission, builtin_role, permissions_of};
use casegate_domain::validate;
use casegate_store::users::{self, User};
use casegate_store::{Conn, sessions};
use time::OffsetDateTime;

/// Input of `POST /users`.
#[derive(Clone, Debug)]
pub struct NewUser {
    /// Login email (unique in the tenant).
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role names.
    pub roles: Vec<String>,
    /// Optional password for console login (Argon2id-hashed).
    pub password: Option<String>,
}

/// Validates role names (built-in roles) and removes duplicates.
pub fn check_roles(roles: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(roles.len());
    for (i, r) in roles.iter().enumerate() {
        if builtin_role(r).is_none() {
            return Err(
                Error::validation(format!("roles[{i}]"), format!("unknown role `{r}`"))
                    .with_details(
                        serde_json::json!({ "known_roles": casegate_domain::rbac::BUILTIN_ROLES }),
                    ),
            );
        }
        if !out.contains(r) {
            out.push(r.clone());
        }
    }
    Ok(out)
}

/// Refuses to grant permissions the granting principal does not hold itself, so that a
/// delegated administrator cannot escalate.
pub(crate) fn check_grant(p: &Principal, roles: &[String]) -> Result<()> {
    let missing: Vec<&str> = permissions_of(roles)
        .iter()
        .filter(|perm| !p.permissions.contains(*perm))
        .map(Permission::as_str)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::new(
            crate::Code::Forbidden,
            "cannot grant permissions you do not hold",
        )
        .with_details(serde_json::json!({ "missing_permissions": missing })))
    }
}

/// Finds a user of `tenant` by id or email; 404 otherwise (also for another tenant's user).
pub async fn resolve(c: &mut dyn Conn, tenant: TenantId, id_or_email: &str) -> Result<User> {
    let found = match id_or_email.parse::<UserId>() {
        Ok(id) => users::get(c, tenant, id).await?,
        Err(_) => users::by_email(c, tenant, &id_or_email.trim().to_ascii_lowercase()).await?,
    };
    found.ok_or_else(|| Error::not_found("user"))
}

/// Builds a validated user row (password hashed).
pub(crate) async fn prepare(tenant: TenantId, input: NewUser, now: OffsetDateTime) -> Result<User> {
    let email = validate::email("email", &input.email)?;
    let name = validate::text("name", &input.name, 200)?;
    let roles = check_roles(&input.roles)?;
    let password_hash = match input.password {
        Some(pw) => {
            validate::password("password", &pw)?;
            Some(password::hash(pw).await?)
        }
        None => None,
    };
    Ok(User {
        tenant_id: tenant,
        id: UserId::new_v4(random_id()),
        email,
        name,
        roles,
        password_hash,
        active: true,
        created_at: now,
        updated_at: now,
    })
}

/// `POST /users`.
pub async fn create(svc: &Services, p: &Caller, input: NewUser) -> Result<User> {
    audit::require_sensitive(svc, p, Permission::AdminUsers, "user").await?;
    check_grant(p, &check_roles(&input.roles)?)?;
    let user = prepare(p.tenant_id, input, svc.clock.now()).await?;
    let mut tx = svc.db.begin().await?;
    users::insert(&mut *tx, &user).await.map_err(|e| match e {
        casegate_store::StoreError::Conflict { .. } => Error::new(
            crate::Code::AlreadyExists,
            "a user with this email already exists",
        )
        .with_param("email"),
        e => e.into(),
    })?;
    audit::append_by(&mut *tx, user.created_at, p, created_entry(&user)).await?;
    tx.commit().await?;
    Ok(user)
}

/// The audit entry of a new user (never the password hash).
pub(crate) fn created_entry(u: &User) -> Entry {
    Entry::new("user.created", "user", u.id)
        .change("email", serde_json::Value::Null, u.email.as_str())
        .change("name", serde_json::Value::Null, u.name.as_str())
        .change("roles", serde_json::Value::Null, u.roles.clone())
        .change("has_password", false, u.password_hash.is_some())
}

/// `GET /users`.
pub async fn list(svc: &Services, p: &Caller, page: Page) -> Result<(Vec<User>, i64)> {
    p.require(Permission::AdminUsers)?;
    let mut c = svc.db.conn().await?;
    Ok(users::list(&mut *c, p.tenant_id, page.limit, page.offset).await?)
}

/// `GET /users/{id}`: by id or email.
pub async fn get(svc: &Services, p: &Caller, id_or_email: &str) -> Result<User> {
    p.require(Permission::AdminUsers)?;
    let mut c = svc.db.conn().await?;
    resolve(&mut *c, p.tenant_id, id_or_email).await
}

/// `PUT /users/{id}/roles`. Takes effect at once: cached credentials of the user are dropped.
pub async fn set_roles(
    svc: &Services,
    p: &Caller,
    id_or_email: &str,
    roles: Vec<String>,
) -> Result<User> {
    audit::require_sensitive(svc, p, Permission::AdminUsers, "user").await?;
    let roles = check_roles(&roles)?;
    check_grant(p, &roles)?;
    let mut tx = svc.db.begin().await?;
    let user = resolve(&mut *tx, p.tenant_id, id_or_email).await?;
    // Removing rights is as sensitive as granting them: the caller must hold what it takes away.
    check_grant(p, &user.roles)?;
    let now = svc.clock.now();
    users::set_roles(&mut *tx, p.tenant_id, user.id, &roles, now).await?;
    let entry = Entry::new("user.roles_changed", "user", user.id).change(
        "roles",
        user.roles.clone(),
        roles.clone(),
    );
    audit::append_by(&mut *tx, now, p, entry).await?;
    let note = crate::auth::invalidation_of_user(p.tenant_id, user.id);
    casegate_store::publish(&mut *tx, crate::auth::INVALIDATIONS, &note).await?;
    tx.commit().await?;
    svc.auth_cache.remove_user(p.tenant_id, user.id);
    Ok(User {
        roles,
        updated_at: now,
        ..user
    })
}

/// Input of `PATCH /users/{id}`: each field optional.
#[derive(Clone, Debug, Default)]
pub struct UserPatch {
    /// New display name.
    pub name: Option<String>,
    /// Enable or disable the user; a disabled user's keys and sessions stop working at once.
    pub active: Option<bool>,
    /// New password (ends the user's sessions).
    pub password: Option<String>,
}

/// `PATCH /users/{id}`.
pub async fn update(
    svc: &Services,
    p: &Caller,
    id_or_email: &str,
    patch: UserPatch,
) -> Result<User> {
    audit::require_sensitive(svc, p, Permission::AdminUsers, "user").await?;
    let name = patch
        .name
        .as_deref()
        .map(|n| validate::text("name", n, 200))
        .transpose()?;
    if let Some(pw) = &patch.password {
        validate::password("password", pw)?;
    }
    let password_hash = match patch.password {
        Some(pw) => Some(password::hash(pw).await?),
        None => None,
    };
    let mut tx = svc.db.begin().await?;
    let mut user = resolve(&mut *tx, p.tenant_id, id_or_email).await?;
    check_grant(p, &user.roles)?;
    if patch.active == Some(false) && user.id == p.user_id {
        return Err(Error::validation("active", "you cannot disable yourself"));
    }
    let ends_sessions = password_hash.is_some() || patch.active == Some(false);
    let mut entry = Entry::new("user.updated", "user", user.id);
    if let Some(n) = &name
        && *n != user.name
    {
        entry = entry.change("name", user.name.as_str(), n.as_str());
    }
    if let Some(a) = patch.active
        && a != user.active
    {
        entry = entry.change("active", user.active, a);
    }
    if password_hash.is_some() {
        entry = entry.change("password", "[redacted]", "[changed]");
    }
    if let Some(n) = name {
        user.name = n;
    }
    if let Some(a) = patch.active {
        user.active = a;
    }
    if password_hash.is_some() {
        user.password_hash = password_hash;
    }
    user.updated_at = svc.clock.now();
    users::update_profile(&mut *tx, &user).await?;
    if ends_sessions {
        sessions::delete_for_user(&mut *tx, p.tenant_id, user.id).await?;
    }
    audit::append_by(&mut *tx, user.updated_at, p, entry).await?;
    let note = crate::auth::invalidation_of_user(p.tenant_id, user.id);
    casegate_store::publish(&mut *tx, crate::auth::INVALIDATIONS, &note).await?;
    tx.commit().await?;
    svc.auth_cache.remove_user(p.tenant_id, user.id);
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use casegate_domain::principal::AuthMethod;

    fn principal(roles: &[&str]) -> Principal {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        Principal {
            tenant_id: TenantId::new_v4([1; 16]),
            tenant_slug: "t".into(),
            user_id: UserId::new_v4([2; 16]),
            email: None,
            permissions: permissions_of(&roles),
            roles,
            method: AuthMethod::Jwt("s".into()),
        }
    }

    #[test]
    fn unknown_roles_are_named() {
        let e = check_roles(&["analyst".into(), "god".into()]).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("roles[1]"));
        assert_eq!(
            check_roles(&["mlro".into(), "mlro".into()]).unwrap(),
            ["mlro"]
        );
    }

    #[test]
    fn grants_cannot_exceed_the_granter() {
        assert!(check_grant(&principal(&["admin"]), &["mlro".into(), "auditor".into()]).is_ok());
        let e = check_grant(&principal(&["supervisor"]), &["admin".into()]).unwrap_err();
        assert_eq!(e.code, crate::Code::Forbidden);
        assert!(check_grant(&principal(&["supervisor"]), &["analyst".into()]).is_ok());
    }
}
