//! Tenant provisioning: operator commands (`casegate tenant create`, `casegate demo`), not part
//! of the tenant-facing API, which never lets one organisation see another.
use crate::audit::{self, Actor, Entry};
use crate::{Code, Error, Result, Services, api_keys, random_id, users};
use casegate_domain::ids::TenantId;
use casegate_domain::principal::Origin;
use casegate_domain::validate;
use casegate_store::tenants::{self, Tenant};
use casegate_store::users::User;
use serde_json::Value;

/// A tenant with its first administrator and that administrator's API key.
#[derive(Debug)]
pub struct Provisioned {
    /// The new tenant.
    pub tenant: Tenant,
    /// Its first administrator.
    pub admin: User,
    /// An API key acting as the administrator (shown once).
    pub admin_key: api_keys::CreatedKey,
}

/// The audit entry of a new tenant.
pub(crate) fn created_entry(t: &Tenant) -> Entry {
    Entry::new("tenant.created", "tenant", t.id)
        .change("slug", Value::Null, t.slug.as_str())
        .change("name", Value::Null, t.name.as_str())
        .change("settings", Value::Null, t.settings.clone())
}

/// Creates a tenant and its first administrator, in one transaction.
pub async fn create(
    svc: &Services,
    slug: &str,
    name: &str,
    admin_email: &str,
    admin_password: Option<String>,
) -> Result<Provisioned> {
    let slug = validate::slug("slug", slug)?;
    let name = validate::text("name", name, 200)?;
    let now = svc.clock.now();
    let tenant = Tenant {
        id: TenantId::new_v4(random_id()),
        slug,
        name,
        settings: serde_json::json!({}),
        created_at: now,
    };
    let admin = users::prepare(
        tenant.id,
        users::NewUser {
            email: admin_email.into(),
            name: "Administrator".into(),
            roles: vec!["admin".into()],
            password: admin_password,
        },
        now,
    )
    .await?;
    let mut tx = svc.db.begin().await?;
    tenants::insert(&mut *tx, &tenant)
        .await
        .map_err(|e| match e {
            casegate_store::StoreError::Conflict { .. } => Error::new(
                Code::AlreadyExists,
                "a tenant with this slug already exists",
            )
            .with_param("slug"),
            e => e.into(),
        })?;
    let origin = Origin::default();
    audit::append(
        &mut *tx,
        now,
        tenant.id,
        &Actor::System,
        &origin,
        created_entry(&tenant),
    )
    .await?;
    crate::case_types::ensure_builtins(&mut *tx, tenant.id, now).await?;
    casegate_store::users::insert(&mut *tx, &admin).await?;
    audit::append(
        &mut *tx,
        now,
        tenant.id,
        &Actor::System,
        &origin,
        users::created_entry(&admin),
    )
    .await?;
    let admin_key = api_keys::mint(
        svc,
        &mut *tx,
        tenant.id,
        admin.id,
        "bootstrap".into(),
        &Actor::System,
        &origin,
    )
    .await?;
    tx.commit().await?;
    Ok(Provisioned {
        tenant,
        admin,
        admin_key,
    })
}
