//! Case types (docs/cases.md "Case types"): the built-in ones every tenant starts with, and
//! `PUT /case-types/{key}` to add or change a type's name, custom fields and lifecycle.
use crate::audit::{self, Entry};
use crate::{Code, Error, Result, Services};
use casegate_domain::fields::{self, FieldDef, Problem};
use casegate_domain::ids::TenantId;
use casegate_domain::lifecycle::{self, Lifecycle};
use casegate_domain::principal::Caller;
use casegate_domain::rbac::Permission;
use casegate_domain::rules::OnTimeout;
use casegate_store::Conn;
use casegate_store::case_types::{self as store, StoredCaseType};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// A case type, decoded: what commands on cases need.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaseType {
    /// `AML_INV`, `ALERT`, …
    pub key: String,
    /// Display name.
    pub name: String,
    /// One of the types every tenant starts with.
    pub builtin: bool,
    /// Custom-field definitions.
    pub fields: Vec<FieldDef>,
    /// Statuses and automatic moves.
    pub workflow: Lifecycle,
    /// Grows by one on every change.
    pub version: i64,
    /// RFC 3339.
    #[serde(serialize_with = "casegate_domain::clock::serialize_wire_time")]
    pub created_at: OffsetDateTime,
    /// RFC 3339.
    #[serde(serialize_with = "casegate_domain::clock::serialize_wire_time")]
    pub updated_at: OffsetDateTime,
}

impl CaseType {
    fn decode(t: StoredCaseType) -> Result<Self> {
        Ok(Self {
            fields: serde_json::from_value(t.fields).map_err(Error::internal)?,
            workflow: serde_json::from_value(t.workflow).map_err(Error::internal)?,
            key: t.key,
            name: t.name,
            builtin: t.builtin,
            version: t.version,
            created_at: t.created_at,
            updated_at: t.updated_at,
        })
    }

    /// The definition of custom field `key`.
    pub fn field(&self, key: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.key == key)
    }
}

/// Adds the built-in case types `tenant` lacks (idempotent; run at tenant creation and for every
/// tenant at start-up, so tenants created before a type was added get it too).
pub async fn ensure_builtins(
    c: &mut dyn Conn,
    tenant: TenantId,
    now: OffsetDateTime,
) -> Result<()> {
    for b in lifecycle::builtin_types() {
        let t = StoredCaseType {
            tenant_id: tenant,
            key: b.key.into(),
            name: b.name.into(),
            builtin: true,
            fields: json!([]),
            workflow: serde_json::to_value(&b.lifecycle).map_err(Error::internal)?,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        store::insert_if_missing(c, &t).await?;
    }
    Ok(())
}

/// [`ensure_builtins`] for every tenant.
pub async fn ensure_builtins_everywhere(svc: &Services) -> Result<()> {
    let now = svc.clock.now();
    let mut tx = svc.db.begin().await?;
    for t in store::all_tenants(&mut *tx).await? {
        ensure_builtins(&mut *tx, t, now).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Loads one case type of `tenant`; `None` if there is none with this key.
pub async fn load(c: &mut dyn Conn, tenant: TenantId, key: &str) -> Result<Option<CaseType>> {
    store::get(c, tenant, key)
        .await?
        .map(CaseType::decode)
        .transpose()
}

/// Decoded case types by tenant and key, each with the stored version it was decoded from.
/// A command reads the version with its case (`casegate_store::cases::lock`), so a hit costs no
/// query, and a change made by any process is seen by the next command: the versions differ and
/// the type is read again. Only types read at the start of a transaction are put here, never one
/// its own transaction may have written (and could roll back).
#[derive(Default)]
pub(crate) struct Cache(Mutex<Cached>);

/// The cache's content: each tenant's decoded types by key, each with its stored version, and
/// how many there are in all.
#[derive(Default)]
struct Cached {
    by_tenant: HashMap<TenantId, HashMap<String, (i64, Arc<CaseType>)>>,
    len: usize,
}

/// Entries kept before the cache starts again empty (a bound, not an eviction policy: a type
/// costs one read to come back).
const CACHE_MAX: usize = 10_000;

impl Cache {
    fn map(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, tenant: TenantId, key: &str, version: i64) -> Option<Arc<CaseType>> {
        let map = self.map();
        let (v, ty) = map.by_tenant.get(&tenant)?.get(key)?;
        (*v == version).then(|| ty.clone())
    }

    fn put(&self, tenant: TenantId, ty: Arc<CaseType>) {
        let mut map = self.map();
        if map.len >= CACHE_MAX {
            *map = Cached::default();
        }
        let added = map
            .by_tenant
            .entry(tenant)
            .or_default()
            .insert(ty.key.clone(), (ty.version, ty))
            .is_none();
        map.len += usize::from(added);
    }
}

/// The type `key` of a stored case of `tenant`: it exists (a type is never deleted while
/// cases use it), so its absence is an internal error.
pub(crate) async fn of_case(c: &mut dyn Conn, tenant: TenantId, key: &str) -> Result<CaseType> {
    load(c, tenant, key).await?.ok_or_else(|| missing(key))
}

/// The error for a stored case whose type `key` is not there (see [`of_case`]).
pub(crate) fn missing(key: &str) -> Error {
    Error::internal(format!("case type {key} missing"))
}

/// [`of_case`] at stored `version` (as read with the case): from the cache when it holds that
/// version; read (inside the caller's just-begun transaction) otherwise.
pub(crate) async fn at_version(
    svc: &Services,
    c: &mut dyn Conn,
    tenant: TenantId,
    key: &str,
    version: Option<i64>,
) -> Result<Arc<CaseType>> {
    if let Some(ty) = version.and_then(|v| svc.case_types.get(tenant, key, v)) {
        return Ok(ty);
    }
    let ty = Arc::new(of_case(c, tenant, key).await?);
    svc.case_types.put(tenant, ty.clone());
    Ok(ty)
}

/// Case type `key` of `tenant` as stored now, `None` if there is none: one read of its version,
/// and the decoded type from the cache when it holds that version (decoding compiles every
/// rule's expressions). Like [`at_version`], call it before the transaction writes anything.
pub(crate) async fn current(
    svc: &Services,
    c: &mut dyn Conn,
    tenant: TenantId,
    key: &str,
) -> Result<Option<Arc<CaseType>>> {
    match store::version(c, tenant, key).await? {
        Some(v) => at_version(svc, c, tenant, key, Some(v)).await.map(Some),
        None => Ok(None),
    }
}

/// `GET /case-types` (`case.view`).
pub async fn list(svc: &Services, p: &Caller) -> Result<Vec<CaseType>> {
    p.require(Permission::CaseView)?;
    let mut c = svc.db.conn().await?;
    store::list(&mut *c, p.tenant_id)
        .await?
        .into_iter()
        .map(CaseType::decode)
        .collect()
}

/// `GET /case-types/{key}` (`case.view`).
pub async fn get(svc: &Services, p: &Caller, key: &str) -> Result<CaseType> {
    p.require(Permission::CaseView)?;
    let mut c = svc.db.conn().await?;
    load(&mut *c, p.tenant_id, key)
        .await?
        .ok_or_else(|| Error::not_found("case type"))
}

/// Input of `PUT /case-types/{key}`.
#[derive(Clone, Debug)]
pub struct CaseTypeInput {
    /// Display name.
    pub name: String,
    /// Custom-field definitions (the complete new list).
    pub fields: Vec<FieldDef>,
    /// The lifecycle; `None` keeps the current one (or the generic one for a new type).
    pub workflow: Option<Lifecycle>,
    /// Optional compare-and-swap on the type's version.
    pub expected_version: Option<i64>,
}

/// Approvers named by user (slots and escalation targets) who are not users of `tenant`: such a
/// slot could never be filled, so the policy could never be met.
async fn unknown_approvers(
    c: &mut dyn Conn,
    tenant: TenantId,
    workflow: &Lifecycle,
) -> Result<Vec<Problem>> {
    let mut named = Vec::new();
    for (i, r) in workflow.rules.iter().enumerate() {
        let Some(a) = &r.approval else { continue };
        for (t, tier) in a.tiers.iter().enumerate() {
            let at = format!("workflow.rules[{i}].approval.tiers[{t}]");
            for (s, slot) in tier.slots.iter().enumerate() {
                if let Some(u) = &slot.user {
                    named.push((format!("{at}.slots[{s}].user"), u));
                }
            }
            if let Some(OnTimeout::Escalate { user: Some(u), .. }) = &tier.on_timeout {
                named.push((format!("{at}.on_timeout.user"), u));
            }
        }
    }
    let mut problems = Vec::new();
    for (path, u) in named {
        match crate::users::resolve(c, tenant, u).await {
            Ok(_) => {}
            Err(e) if e.code == Code::NotFound => problems.push(Problem {
                path,
                message: "is not a user of this organisation".into(),
            }),
            Err(e) => return Err(e),
        }
    }
    Ok(problems)
}

fn invalid(problems: Vec<Problem>) -> Error {
    let n = problems.len();
    Error::new(
        Code::InvalidWorkflow,
        format!(
            "the case type has {n} problem{}",
            if n == 1 { "" } else { "s" }
        ),
    )
    .with_details(json!({ "problems": problems }))
}

/// `PUT /case-types/{key}` (`workflow.admin`): creates or replaces a type. Every problem is
/// reported at once (422 `invalid_workflow`). Fields that become indexed are indexed over the
/// existing cases in the same transaction.
pub async fn put(
    svc: &Services,
    p: &Caller,
    key: &str,
    input: CaseTypeInput,
) -> Result<(CaseType, bool)> {
    p.require(Permission::WorkflowAdmin)?;
    lifecycle::check_type_key("key", key)?;
    let mut problems = fields::check_definitions(&input.fields);
    let name = input.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 {
        problems.push(Problem {
            path: "name".into(),
            message: "must be 1-200 characters".into(),
        });
    }
    let now = svc.clock.now();
    let mut tx = svc.db.begin().await?;
    let current = load(&mut *tx, p.tenant_id, key).await?;
    if let (Some(want), Some(cur)) = (input.expected_version, &current)
        && want != cur.version
    {
        return Err(version_conflict(cur.version));
    }
    let mut workflow = input
        .workflow
        .or_else(|| current.as_ref().map(|c| c.workflow.clone()))
        .unwrap_or_else(lifecycle::generic);
    let previous = current.as_ref().map_or(&[][..], |c| &c.workflow.rules[..]);
    casegate_domain::rules::settle_ids(&mut workflow.rules, previous, now);
    let keys: Vec<String> = input.fields.iter().map(|f| f.key.clone()).collect();
    problems.extend(workflow.check(&keys));
    problems.extend(unknown_approvers(&mut *tx, p.tenant_id, &workflow).await?);
    if key == lifecycle::ALERT
        && let Some(cur) = &current
        && cur.workflow.statuses != workflow.statuses
    {
        problems.push(Problem {
            path: "workflow.statuses".into(),
            message: "the statuses of ALERT are fixed: alert dispositions rely on them".into(),
        });
    }
    if let Some(cur) = &current {
        for s in &cur.workflow.statuses {
            if workflow.status(&s.key).is_none()
                && casegate_store::cases::any_in_status(&mut *tx, p.tenant_id, key, &s.key).await?
            {
                problems.push(Problem {
                    path: "workflow.statuses".into(),
                    message: format!("status `{}` is still held by cases of this type", s.key),
                });
            }
        }
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let t = CaseType {
        key: key.to_string(),
        name,
        builtin: current.as_ref().is_some_and(|c| c.builtin),
        fields: input.fields,
        workflow,
        version: current.as_ref().map_or(1, |c| c.version + 1),
        created_at: current.as_ref().map_or(now, |c| c.created_at),
        updated_at: now,
    };
    let row = StoredCaseType {
        tenant_id: p.tenant_id,
        key: t.key.clone(),
        name: t.name.clone(),
        builtin: t.builtin,
        fields: serde_json::to_value(&t.fields).map_err(Error::internal)?,
        workflow: serde_json::to_value(&t.workflow).map_err(Error::internal)?,
        version: t.version,
        created_at: t.created_at,
        updated_at: t.updated_at,
    };
    let before = match &current {
        Some(cur) => {
            if !store::update(&mut *tx, &row, cur.version).await? {
                return Err(version_conflict(cur.version + 1));
            }
            serde_json::to_value(cur).map_err(Error::internal)?
        }
        None => {
            if !store::insert_if_missing(&mut *tx, &row).await? {
                return Err(Error::new(
                    Code::VersionConflict,
                    "the case type was created concurrently; read it and retry",
                ));
            }
            Value::Null
        }
    };
    // Index maintenance for fields whose `indexed` flag changed (or that were added/removed).
    let was_indexed = |k: &str| {
        current
            .as_ref()
            .and_then(|c| c.field(k))
            .is_some_and(|f| f.indexed)
    };
    let mut touched: Vec<(String, bool)> = t
        .fields
        .iter()
        .filter(|f| f.indexed != was_indexed(&f.key))
        .map(|f| (f.key.clone(), f.indexed))
        .collect();
    if let Some(cur) = &current {
        touched.extend(
            cur.fields
                .iter()
                .filter(|f| f.indexed && t.field(&f.key).is_none())
                .map(|f| (f.key.clone(), false)),
        );
    }
    for (k, on) in touched {
        casegate_store::cases::reindex_field(&mut *tx, p.tenant_id, key, &k, on).await?;
    }
    let after = serde_json::to_value(&t).map_err(Error::internal)?;
    let entry = Entry {
        action: if current.is_some() {
            "case_type.updated"
        } else {
            "case_type.created"
        },
        entity_type: "case_type",
        entity_id: Some(key.to_string()),
        changes: json!({
            "name": { "before": before.get("name"), "after": after["name"] },
            "fields": { "before": before.get("fields"), "after": after["fields"] },
            "workflow": { "before": before.get("workflow"), "after": after["workflow"] },
            "version": { "before": before.get("version"), "after": after["version"] },
        }),
    };
    audit::append_by(&mut *tx, now, p, entry).await?;
    tx.commit().await?;
    Ok((t, current.is_none()))
}

/// Adds `rule` (the workflow document's JSON of one rule) to the workflow of case type `key`,
/// or replaces the rule with the same `id` (GraphQL `upsertTransitionRule`). The whole
/// workflow is checked again and saved as the type's next version, exactly as
/// `PUT /case-types/{key}` would (422 `invalid_workflow` listing every problem). Answers the
/// type and the rule as saved (with its assigned id).
pub async fn upsert_rule(
    svc: &Services,
    p: &Caller,
    key: &str,
    rule: Value,
) -> Result<(CaseType, casegate_domain::rules::Rule)> {
    p.require(Permission::WorkflowAdmin)?;
    let rule: casegate_domain::rules::Rule = serde_json::from_value(rule)
        .map_err(|e| Error::validation("rule", format!("not a valid rule: {e}")))?;
    let current = get(svc, p, key).await?;
    let mut workflow = current.workflow.clone();
    let at = match workflow
        .rules
        .iter()
        .position(|r| !rule.id.is_empty() && r.id == rule.id)
    {
        Some(i) => {
            workflow.rules[i] = rule;
            i
        }
        None => {
            workflow.rules.push(rule);
            workflow.rules.len() - 1
        }
    };
    let input = CaseTypeInput {
        name: current.name,
        fields: current.fields,
        workflow: Some(workflow),
        expected_version: Some(current.version),
    };
    let (t, _) = put(svc, p, key, input).await?;
    let saved = t
        .workflow
        .rules
        .get(at)
        .cloned()
        .ok_or_else(|| Error::internal("the saved workflow lost the rule"))?;
    Ok((t, saved))
}

/// 409 `version_conflict` naming the current version.
pub fn version_conflict(current: i64) -> Error {
    Error::new(
        Code::VersionConflict,
        "the record changed since you read it; read it again and retry",
    )
    .with_details(json!({ "current_version": current }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn ty(key: &str, version: i64) -> Arc<CaseType> {
        let b = &lifecycle::builtin_types()[0];
        Arc::new(CaseType {
            key: key.into(),
            name: key.into(),
            builtin: false,
            fields: Vec::new(),
            workflow: b.lifecycle.clone(),
            version,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        })
    }

    #[test]
    fn the_cache_answers_only_the_version_it_holds_and_stays_bounded() {
        let cache = Cache::default();
        let (a, b) = (TenantId(Uuid::new_v4()), TenantId(Uuid::new_v4()));
        cache.put(a, ty("AML_INV", 3));
        assert_eq!(cache.get(a, "AML_INV", 3).map(|t| t.version), Some(3));
        assert!(
            cache.get(a, "AML_INV", 4).is_none(),
            "a newer version is read"
        );
        assert!(
            cache.get(b, "AML_INV", 3).is_none(),
            "another tenant's type"
        );
        // A new version replaces the old one without counting twice.
        cache.put(a, ty("AML_INV", 4));
        assert!(cache.get(a, "AML_INV", 3).is_none());
        assert_eq!(cache.map().len, 1);
        for i in 1..CACHE_MAX {
            cache.put(b, ty(&format!("T{i}"), 1));
        }
        assert_eq!(cache.map().len, CACHE_MAX);
        assert!(
            cache.get(a, "AML_INV", 4).is_some(),
            "full, nothing dropped yet"
        );
        // One more starts again empty, with only the newcomer.
        cache.put(b, ty("NEW", 1));
        assert_eq!(cache.map().len, 1);
        assert!(cache.get(a, "AML_INV", 4).is_none());
        assert!(cache.get(b, "NEW", 1).is_some());
    }
}
