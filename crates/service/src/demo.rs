//! The sandbox tenant of `casegate demo` / `serve --demo`: one user and one fresh API key per
//! built-in role. Idempotent: run again, it reuses the tenant and users and mints new keys (the
//! earlier keys stay valid until revoked).
use crate::audit::{self, Actor};
use crate::{Result, Services, api_keys, password, random_id};
use casegate_domain::ids::{TenantId, UserId};
use casegate_domain::principal::Origin;
use casegate_domain::rbac::BUILTIN_ROLES;
use casegate_domain::validate;
use casegate_store::tenants::{self, Tenant};
use casegate_store::users::{self, User};
use std::collections::BTreeMap;

/// The password of every demo user (sandbox only; printed by `casegate demo`).
pub const DEMO_PASSWORD: &str = "casegate-demo-password";

/// What `casegate demo` prints.
#[derive(Debug)]
pub struct Demo {
    /// The sandbox tenant.
    pub tenant: Tenant,
    /// Role → fresh API key.
    pub api_keys: BTreeMap<String, String>,
    /// Role → login email.
    pub users: BTreeMap<String, String>,
}

/// The login email of the demo user holding `role`.
pub fn demo_email(slug: &str, role: &str) -> String {
    format!("{}@{slug}.example", role.replace('_', "."))
}

/// Creates or refreshes the sandbox tenant `slug`.
pub async fn ensure(svc: &Services, slug: &str) -> Result<Demo> {
    let slug = validate::slug("tenant", slug)?;
    let now = svc.clock.now();
    let hash = password::hash(DEMO_PASSWORD.to_string()).await?;
    let origin = Origin::default();
    let mut tx = svc.db.begin().await?;
    let tenant = match tenants::by_slug(&mut *tx, &slug).await? {
        // Never turn a real organisation into a sandbox with published passwords.
        Some(t) if t.settings.get("sandbox") != Some(&serde_json::Value::Bool(true)) => {
            return Err(crate::Error::validation(
                "tenant",
                format!("`{slug}` is a real organisation, not a sandbox tenant"),
            ));
        }
        Some(t) => t,
        None => {
            let t = Tenant {
                id: TenantId::new_v4(random_id()),
                slug: slug.clone(),
                name: "casegate sandbox".into(),
                settings: serde_json::json!({ "sandbox": true }),
                created_at: now,
            };
            tenants::insert(&mut *tx, &t).await?;
            let entry = crate::tenants::created_entry(&t);
            audit::append(&mut *tx, now, t.id, &Actor::System, &origin, entry).await?;
            t
        }
    };
    crate::case_types::ensure_builtins(&mut *tx, tenant.id, now).await?;
    if casegate_store::sars::profile(&mut *tx, tenant.id)
        .await?
        .is_none()
    {
        let profile = casegate_domain::sar::content::FilingProfile::sandbox();
        let value = serde_json::to_value(&profile).map_err(crate::Error::internal)?;
        casegate_store::sars::put_profile(&mut *tx, tenant.id, &value, None, now, 0).await?;
    }
    let mut keys = BTreeMap::new();
    let mut emails = BTreeMap::new();
    for role in BUILTIN_ROLES {
        let email = demo_email(&slug, role);
        let user = match users::by_email(&mut *tx, tenant.id, &email).await? {
            Some(u) => u,
            None => {
                let u = User {
                    tenant_id: tenant.id,
                    id: UserId::new_v4(random_id()),
                    email: email.clone(),
                    name: format!("Demo {}", role.replace('_', " ")),
                    roles: vec![role.to_string()],
                    password_hash: Some(hash.clone()),
                    active: true,
                    created_at: now,
                    updated_at: now,
                };
                users::insert(&mut *tx, &u).await?;
                audit::append(
                    &mut *tx,
                    now,
                    tenant.id,
                    &Actor::System,
                    &origin,
                    crate::users::created_entry(&u),
                )
                .await?;
                u
            }
        };
        let key = api_keys::mint(
            svc,
            &mut *tx,
            tenant.id,
            user.id,
            format!("demo {role}"),
            &Actor::System,
            &origin,
        )
        .await?;
        keys.insert(role.to_string(), key.secret);
        emails.insert(role.to_string(), email);
    }
    tx.commit().await?;
    Ok(Demo {
        tenant,
        api_keys: keys,
        users: emails,
    })
}
