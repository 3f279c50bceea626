//! Tasks on cases: opened by hand, by a status's `mandatory_tasks` when a case enters it, or by
//! a `create_task` post-action. An open mandatory task blocks leaving its `blocks_status`.
use crate::{Conn, Row, StoreResult, Val, Where, page_clause};
use casegate_domain::ids::{CaseId, TenantId};
use time::OffsetDateTime;
use uuid::Uuid;

/// One task as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredTask {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Task id.
    pub id: Uuid,
    /// The case it belongs to.
    pub case_id: CaseId,
    /// What to do.
    pub title: String,
    /// More detail.
    pub description: Option<String>,
    /// `open` or `done`.
    pub status: String,
    /// Whether it blocks leaving `blocks_status` while open.
    pub mandatory: bool,
    /// The case status it blocks leaving (mandatory tasks).
    pub blocks_status: Option<String>,
    /// The role expected to do it.
    pub assignee_role: Option<String>,
    /// The person expected to do it.
    pub assigned_to: Option<Uuid>,
    /// Email of `assigned_to` (joined on read).
    pub assigned_to_email: Option<String>,
    /// When it is due.
    pub due_at: Option<OffsetDateTime>,
    /// `manual`, `workflow` (a status's mandatory tasks) or `post_action`.
    pub source: String,
    /// Idempotency key of generated tasks.
    pub source_key: Option<String>,
    /// Creator's user id (none for the system).
    pub created_by: Option<Uuid>,
    /// Creator as audited.
    pub created_by_label: String,
    /// When it was opened.
    pub created_at: OffsetDateTime,
    /// When it was done.
    pub completed_at: Option<OffsetDateTime>,
    /// Who did it.
    pub completed_by: Option<Uuid>,
    /// Who did it, as audited.
    pub completed_by_label: Option<String>,
    /// What they said.
    pub completion_note: Option<String>,
    /// Optimistic-concurrency version, from 1.
    pub version: i64,
}

const COLS: &str = "t.tenant_id, t.id, t.case_id, t.title, t.description, t.status, t.mandatory, \
    t.blocks_status, t.assignee_role, t.assigned_to, u.email AS assigned_to_email, t.due_at, \
    t.source, t.source_key, t.created_by, t.created_by_label, t.created_at, t.completed_at, \
    t.completed_by, t.completed_by_label, t.completion_note, t.version";

const FROM: &str =
    "tasks t LEFT JOIN users u ON u.tenant_id = t.tenant_id AND u.id = t.assigned_to";

fn from_row(r: &Row) -> StoreResult<StoredTask> {
    Ok(StoredTask {
        tenant_id: TenantId(r.uuid("tenant_id")?),
        id: r.uuid("id")?,
        case_id: CaseId(r.uuid("case_id")?),
        title: r.text("title")?,
        description: r.opt_text("description")?,
        status: r.text("status")?,
        mandatory: r.bool("mandatory")?,
        blocks_status: r.opt_text("blocks_status")?,
        assignee_role: r.opt_text("assignee_role")?,
        assigned_to: r.opt_uuid("assigned_to")?,
        assigned_to_email: r.opt_text("assigned_to_email")?,
        due_at: r.opt_time("due_at")?,
        source: r.text("source")?,
        source_key: r.opt_text("source_key")?,
        created_by: r.opt_uuid("created_by")?,
        created_by_label: r.text("created_by_label")?,
        created_at: r.time("created_at")?,
        completed_at: r.opt_time("completed_at")?,
        completed_by: r.opt_uuid("completed_by")?,
        completed_by_label: r.opt_text("completed_by_label")?,
        completion_note: r.opt_text("completion_note")?,
        version: r.int("version")?,
    })
}

/// Adds a task; `false` (and nothing written) when a task with its `source_key` exists already
/// (`ON CONFLICT DO NOTHING`: a caught violation would abort a PostgreSQL transaction).
pub async fn insert(c: &mut dyn Conn, t: &StoredTask) -> StoreResult<bool> {
    let args: Vec<Val> = vec![
        t.tenant_id.into(),
        t.id.into(),
        t.case_id.into(),
        t.title.as_str().into(),
        t.description.clone().into(),
        t.status.as_str().into(),
        t.mandatory.into(),
        t.blocks_status.clone().into(),
        t.assignee_role.clone().into(),
        t.assigned_to.into(),
        t.due_at.into(),
        t.source.as_str().into(),
        t.source_key.clone().into(),
        t.created_by.into(),
        t.created_by_label.as_str().into(),
        t.created_at.into(),
        t.version.into(),
    ];
    c.execute(
        "INSERT INTO tasks (tenant_id, id, case_id, title, description, status, mandatory, \
         blocks_status, assignee_role, assigned_to, due_at, source, source_key, created_by, \
         created_by_label, created_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
         ON CONFLICT (tenant_id, source_key) WHERE source_key IS NOT NULL DO NOTHING",
        &args,
    )
    .await
    .map(|n| n == 1)
}

/// One task of `tenant`.
pub async fn get(c: &mut dyn Conn, tenant: TenantId, id: Uuid) -> StoreResult<Option<StoredTask>> {
    c.fetch_optional(
        &format!("SELECT {COLS} FROM {FROM} WHERE t.tenant_id = $1 AND t.id = $2"),
        &[tenant.into(), id.into()],
    )
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// Marks an open task done if its stored version is still `expected`; returns whether it was.
pub async fn complete(c: &mut dyn Conn, t: &StoredTask, expected: i64) -> StoreResult<bool> {
    let n = c
        .execute(
            "UPDATE tasks SET status = 'done', completed_at = $3, completed_by = $4, \
             completed_by_label = $5, completion_note = $6, version = version + 1 \
             WHERE tenant_id = $1 AND id = $2 AND status = 'open' AND version = $7",
            &[
                t.tenant_id.into(),
                t.id.into(),
                t.completed_at.into(),
                t.completed_by.into(),
                t.completed_by_label.clone().into(),
                t.completion_note.clone().into(),
                expected.into(),
            ],
        )
        .await?;
    Ok(n == 1)
}

/// Every task of a case, oldest first.
pub async fn of_case(
    c: &mut dyn Conn,
    tenant: TenantId,
    case: CaseId,
) -> StoreResult<Vec<StoredTask>> {
    c.fetch_all(
        &format!(
            "SELECT {COLS} FROM {FROM} WHERE t.tenant_id = $1 AND t.case_id = $2 \
             ORDER BY t.created_at, t.source_key, t.id"
        ),
        &[tenant.into(), case.into()],
    )
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// The open mandatory tasks that block a case from leaving `status`, oldest first.
pub async fn blocking(
    c: &mut dyn Conn,
    tenant: TenantId,
    case: CaseId,
    status: &str,
) -> StoreResult<Vec<StoredTask>> {
    c.fetch_all(
        &format!(
            "SELECT {COLS} FROM {FROM} WHERE t.tenant_id = $1 AND t.case_id = $2 \
             AND t.status = 'open' AND t.mandatory AND t.blocks_status = $3 \
             ORDER BY t.created_at, t.source_key, t.id"
        ),
        &[tenant.into(), case.into(), status.into()],
    )
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// Filters of a task list.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only this status (`open`, `done`).
    pub status: Option<String>,
    /// Only tasks assigned to this user.
    pub assigned_to: Option<Uuid>,
    /// Only tasks waiting on one of these roles (and not on a named person).
    pub assignee_roles: Option<Vec<String>>,
    /// Only this case's.
    pub case_id: Option<CaseId>,
}

fn filtered(tenant: TenantId, f: &Filter) -> (String, Vec<Val>) {
    let mut w = Where::tenant("t.tenant_id", tenant);
    if let Some(s) = &f.status {
        w.push("t.status = ?", [s.as_str().into()]);
    }
    if let Some(k) = f.case_id {
        w.push("t.case_id = ?", [k.into()]);
    }
    match (f.assigned_to, &f.assignee_roles) {
        (Some(u), Some(roles)) if !roles.is_empty() => {
            let marks = vec!["?"; roles.len()].join(", ");
            let any = format!(
                "(t.assigned_to = ? OR (t.assigned_to IS NULL AND t.assignee_role IN ({marks})))"
            );
            let mut vals: Vec<Val> = vec![u.into()];
            vals.extend(roles.iter().map(|r| Val::from(r.as_str())));
            w.push(&any, vals);
        }
        (Some(u), _) => w.push("t.assigned_to = ?", [u.into()]),
        (None, _) => {}
    }
    w.finish()
}

/// How many of `tenant`'s tasks match `f`.
pub async fn count(c: &mut dyn Conn, tenant: TenantId, f: &Filter) -> StoreResult<i64> {
    let (clause, args) = filtered(tenant, f);
    c.fetch_one(
        &format!("SELECT count(*) AS n FROM tasks t WHERE {clause}"),
        &args,
    )
    .await?
    .int("n")
}

/// `tenant`'s tasks matching `f`: the soonest due first (undated last), then the oldest.
pub async fn list(
    c: &mut dyn Conn,
    tenant: TenantId,
    f: &Filter,
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<StoredTask>> {
    let (clause, mut args) = filtered(tenant, f);
    let page = page_clause(&mut args, limit, offset);
    c.fetch_all(
        &format!(
            "SELECT {COLS} FROM {FROM} WHERE {clause} \
             ORDER BY t.due_at IS NULL, t.due_at, t.created_at, t.source_key, t.id {page}"
        ),
        &args,
    )
    .await?
    .iter()
    .map(from_row)
    .collect()
}
