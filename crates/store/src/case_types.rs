//! Case types: a tenant's custom-field definitions and lifecycle document per type key.
use crate::{Conn, Row, StoreResult};
use casegate_domain::ids::TenantId;
use serde_json::Value as Json;
use time::OffsetDateTime;

/// One case type as stored; `fields` and `workflow` are the JSON documents.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredCaseType {
    /// Tenant.
    pub tenant_id: TenantId,
    /// `AML_INV`, `ALERT`, …
    pub key: String,
    /// Display name.
    pub name: String,
    /// One of the types every tenant starts with.
    pub builtin: bool,
    /// `[FieldDef]`.
    pub fields: Json,
    /// The lifecycle document.
    pub workflow: Json,
    /// Grows by one on every change.
    pub version: i64,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

const COLS: &str =
    "tenant_id, key, name, builtin, fields, workflow, version, created_at, updated_at";

fn from_row(r: &Row) -> StoreResult<StoredCaseType> {
    Ok(StoredCaseType {
        tenant_id: TenantId(r.uuid("tenant_id")?),
        key: r.text("key")?,
        name: r.text("name")?,
        builtin: r.bool("builtin")?,
        fields: r.json("fields")?,
        workflow: r.json("workflow")?,
        version: r.int("version")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

/// Inserts a case type unless the key exists (seeding built-in types is idempotent). Returns
/// whether it was inserted.
pub async fn insert_if_missing(c: &mut dyn Conn, t: &StoredCaseType) -> StoreResult<bool> {
    let n = c
        .execute(
            &format!(
                "INSERT INTO case_types ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (tenant_id, key) DO NOTHING"
            ),
            &[
                t.tenant_id.into(),
                t.key.as_str().into(),
                t.name.as_str().into(),
                t.builtin.into(),
                t.fields.clone().into(),
                t.workflow.clone().into(),
                t.version.into(),
                t.created_at.into(),
                t.updated_at.into(),
            ],
        )
        .await?;
    Ok(n == 1)
}

/// Replaces name, fields and workflow if the stored version is still `expected`.
pub async fn update(c: &mut dyn Conn, t: &StoredCaseType, expected: i64) -> StoreResult<bool> {
    let n = c
        .execute(
            "UPDATE case_types SET name = $3, fields = $4, workflow = $5, version = $6, updated_at = $7 \
             WHERE tenant_id = $1 AND key = $2 AND version = $8",
            &[
                t.tenant_id.into(),
                t.key.as_str().into(),
                t.name.as_str().into(),
                t.fields.clone().into(),
                t.workflow.clone().into(),
                t.version.into(),
                t.updated_at.into(),
                expected.into(),
            ],
        )
        .await?;
    Ok(n == 1)
}

/// The stored version of case type `key` of `tenant`, if there is one: enough to tell whether
/// a decoded copy is current.
pub async fn version(c: &mut dyn Conn, tenant: TenantId, key: &str) -> StoreResult<Option<i64>> {
    c.fetch_optional(
        "SELECT version FROM case_types WHERE tenant_id = $1 AND key = $2",
        &[tenant.into(), key.into()],
    )
    .await?
    .map(|r| r.int("version"))
    .transpose()
}

/// One case type of `tenant`.
pub async fn get(
    c: &mut dyn Conn,
    tenant: TenantId,
    key: &str,
) -> StoreResult<Option<StoredCaseType>> {
    c.fetch_optional(
        &format!("SELECT {COLS} FROM case_types WHERE tenant_id = $1 AND key = $2"),
        &[tenant.into(), key.into()],
    )
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// Every case type of `tenant`, by key.
pub async fn list(c: &mut dyn Conn, tenant: TenantId) -> StoreResult<Vec<StoredCaseType>> {
    c.fetch_all(
        &format!("SELECT {COLS} FROM case_types WHERE tenant_id = $1 ORDER BY key"),
        &[tenant.into()],
    )
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// Every tenant id (for seeding built-in types at start-up).
pub async fn all_tenants(c: &mut dyn Conn) -> StoreResult<Vec<TenantId>> {
    c.fetch_all("SELECT id FROM tenants ORDER BY id", &[])
        .await?
        .iter()
        .map(|r| r.uuid("id").map(TenantId))
        .collect()
}
