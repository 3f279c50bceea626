//! Tenants (organisations). The `tenants` table is keyed by the tenant id itself.
use crate::{Conn, Row, StoreError, StoreResult};
use casegate_domain::ids::TenantId;
use serde_json::Value as Json;
use time::OffsetDateTime;

/// A stored tenant.
#[derive(Clone, Debug, PartialEq)]
pub struct Tenant {
    /// Primary key.
    pub id: TenantId,
    /// Unique, URL-safe name (`acme-bank`), accepted wherever a tenant is named.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Tenant settings (enabled modules, filing profile…), a JSON object.
    pub settings: Json,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

const COLS: &str = "id, slug, name, settings, created_at";

fn from_row(r: &Row) -> StoreResult<Tenant> {
    Ok(Tenant {
        id: TenantId(r.uuid("id")?),
        slug: r.text("slug")?,
        name: r.text("name")?,
        settings: r.json("settings")?,
        created_at: r.time("created_at")?,
    })
}

/// Inserts a tenant; `Conflict` when the slug is taken.
pub async fn insert(c: &mut dyn Conn, t: &Tenant) -> StoreResult<()> {
    c.execute(
        "INSERT INTO tenants (id, slug, name, settings, created_at) VALUES ($1, $2, $3, $4, $5)",
        &[
            t.id.into(),
            t.slug.as_str().into(),
            t.name.as_str().into(),
            t.settings.clone().into(),
            t.created_at.into(),
        ],
    )
    .await
    .map(drop)
}

/// A tenant by id.
pub async fn get(c: &mut dyn Conn, id: TenantId) -> StoreResult<Option<Tenant>> {
    let sql = format!("SELECT {COLS} FROM tenants WHERE id = $1");
    c.fetch_optional(&sql, &[id.into()])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// A tenant by slug.
pub async fn by_slug(c: &mut dyn Conn, slug: &str) -> StoreResult<Option<Tenant>> {
    let sql = format!("SELECT {COLS} FROM tenants WHERE slug = $1");
    c.fetch_optional(&sql, &[slug.into()])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Every tenant, by slug (operator commands such as `audit verify`).
pub async fn list(c: &mut dyn Conn) -> StoreResult<Vec<Tenant>> {
    let sql = format!("SELECT {COLS} FROM tenants ORDER BY slug");
    c.fetch_all(&sql, &[]).await?.iter().map(from_row).collect()
}

/// Resolves a tenant named by id or slug.
pub async fn resolve(c: &mut dyn Conn, id_or_slug: &str) -> StoreResult<Tenant> {
    let found = match id_or_slug.parse::<TenantId>() {
        Ok(id) => get(c, id).await?,
        Err(_) => by_slug(c, id_or_slug).await?,
    };
    found.ok_or(StoreError::NotFound)
}
