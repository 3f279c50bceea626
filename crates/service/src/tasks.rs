//! Tasks on cases (API.md "Tasks", docs/workflows.md "Tasks"): opened by hand, by a status's
//! `mandatory_tasks` when a case enters it, or by a `create_task` post-action. An open
//! mandatory task blocks every requested move out of its status (422
//! `unresolved_mandatory_tasks`); automatic moves (on assignment or escalation) are skipped
//! instead (the case stays where it is).
use crate::audit::{self, Entry};
use crate::{Code, Error, Page, Result, Services, random_id, users};
use casegate_domain::clock::{serialize_opt_wire_time, serialize_wire_time};
use casegate_domain::ids::{CaseId, TenantId};
use casegate_domain::lifecycle::Lifecycle;
use casegate_domain::principal::{Caller, Origin};
use casegate_domain::rbac::{BUILTIN_ROLES, Permission};
use casegate_domain::validate;
use casegate_store::Conn;
use casegate_store::cases as case_store;
use casegate_store::tasks::{self as store, Filter, StoredTask};
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

/// Longest task title, in characters.
pub const MAX_TITLE_CHARS: usize = 500;
/// Longest description or completion note, in characters.
pub const MAX_NOTE_CHARS: usize = 4_000;

/// A task as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskView {
    /// Task id.
    pub id: Uuid,
    /// The case.
    pub case_id: Uuid,
    /// What to do.
    pub title: String,
    /// More detail.
    pub description: Option<String>,
    /// `open` or `done`.
    pub status: String,
    /// Whether it blocks leaving `blocks_status`.
    pub mandatory: bool,
    /// The status it blocks leaving.
    pub blocks_status: Option<String>,
    /// The role expected to do it.
    pub assignee_role: Option<String>,
    /// The person expected to do it (email).
    pub assigned_to: Option<String>,
    /// The person expected to do it (id).
    pub assigned_to_id: Option<Uuid>,
    /// When it is due.
    #[serde(serialize_with = "serialize_opt_wire_time")]
    pub due_at: Option<OffsetDateTime>,
    /// `manual`, `workflow` or `post_action`.
    pub source: String,
    /// Who opened it (`system` for generated tasks).
    pub created_by: String,
    /// When.
    #[serde(serialize_with = "serialize_wire_time")]
    pub created_at: OffsetDateTime,
    /// When it was done.
    #[serde(serialize_with = "serialize_opt_wire_time")]
    pub completed_at: Option<OffsetDateTime>,
    /// Who did it.
    pub completed_by: Option<String>,
    /// What they noted.
    pub completion_note: Option<String>,
    /// Version.
    pub version: i64,
}

impl From<StoredTask> for TaskView {
    fn from(t: StoredTask) -> Self {
        Self {
            id: t.id,
            case_id: t.case_id.0,
            title: t.title,
            description: t.description,
            status: t.status,
            mandatory: t.mandatory,
            blocks_status: t.blocks_status,
            assignee_role: t.assignee_role,
            assigned_to: t.assigned_to_email,
            assigned_to_id: t.assigned_to,
            due_at: t.due_at,
            source: t.source,
            created_by: t.created_by_label,
            created_at: t.created_at,
            completed_at: t.completed_at,
            completed_by: t.completed_by_label,
            completion_note: t.completion_note,
            version: t.version,
        }
    }
}

/// An open, optional, unassigned task made by hand (`manual`), not yet stored.
fn blank(
    tenant: TenantId,
    case_id: CaseId,
    title: String,
    by: Option<Uuid>,
    by_label: String,
    now: OffsetDateTime,
) -> StoredTask {
    StoredTask {
        tenant_id: tenant,
        id: Uuid::from_bytes(random_id()),
        case_id,
        title,
        description: None,
        status: "open".into(),
        mandatory: false,
        blocks_status: None,
        assignee_role: None,
        assigned_to: None,
        assigned_to_email: None,
        due_at: None,
        source: "manual".into(),
        source_key: None,
        created_by: by,
        created_by_label: by_label,
        created_at: now,
        completed_at: None,
        completed_by: None,
        completed_by_label: None,
        completion_note: None,
        version: 1,
    }
}

/// A task about to be opened by casegate itself (a status's demand or a post-action).
pub(crate) struct Generated<'a> {
    pub(crate) case_id: CaseId,
    pub(crate) title: &'a str,
    pub(crate) assignee_role: Option<&'a str>,
    pub(crate) due_at: Option<OffsetDateTime>,
    /// The status it blocks leaving (mandatory), if any.
    pub(crate) blocks_status: Option<&'a str>,
    /// `workflow` or `post_action`.
    pub(crate) source: &'static str,
    /// Idempotency key.
    pub(crate) source_key: String,
}

/// Opens a generated task in the caller's transaction (audited as the system, with the
/// caller's origin; the caller puts `task.created` in the outbox). `None` when a task with its
/// `source_key` exists already.
pub(crate) async fn open_generated(
    c: &mut dyn Conn,
    tenant: TenantId,
    origin: &Origin,
    g: Generated<'_>,
    now: OffsetDateTime,
) -> Result<Option<TaskView>> {
    let mut t = blank(
        tenant,
        g.case_id,
        g.title.to_string(),
        None,
        "system".into(),
        now,
    );
    t.mandatory = g.blocks_status.is_some();
    t.blocks_status = g.blocks_status.map(str::to_string);
    t.assignee_role = g.assignee_role.map(str::to_string);
    t.due_at = g.due_at;
    t.source = g.source.into();
    t.source_key = Some(g.source_key);
    if !store::insert(c, &t).await? {
        return Ok(None);
    }
    let view = TaskView::from(t);
    audit::append(
        c,
        now,
        tenant,
        &audit::Actor::System,
        origin,
        created_entry(&view),
    )
    .await?;
    Ok(Some(view))
}

fn created_entry(t: &TaskView) -> Entry {
    let mut e = Entry::new("task.created", "task", t.id);
    e.changes = json!({
        "case_id": { "before": null, "after": t.case_id },
        "title": { "before": null, "after": t.title },
        "mandatory": { "before": null, "after": t.mandatory },
        "blocks_status": { "before": null, "after": t.blocks_status },
        "assignee_role": { "before": null, "after": t.assignee_role },
        "assigned_to": { "before": null, "after": t.assigned_to },
    });
    e
}

/// Opens the mandatory tasks `status` demands on case `case` as it enters it (an open one of
/// the same title already blocking that status is not opened twice). `entry` (the status
/// history entry id) keys them.
pub(crate) async fn enter_status(
    c: &mut dyn Conn,
    p: &Caller,
    case: CaseId,
    workflow: &Lifecycle,
    status: &str,
    entry: Uuid,
    now: OffsetDateTime,
) -> Result<Vec<TaskView>> {
    let Some(def) = workflow.status(status) else {
        return Ok(Vec::new());
    };
    if def.mandatory_tasks.is_empty() {
        return Ok(Vec::new());
    }
    let tenant = p.tenant_id;
    let already = store::blocking(c, tenant, case, status).await?;
    let mut opened = Vec::new();
    for (i, m) in def.mandatory_tasks.iter().enumerate() {
        if already.iter().any(|t| t.title == m.title) {
            continue;
        }
        let g = Generated {
            case_id: case,
            title: &m.title,
            assignee_role: m.assignee_role.as_deref(),
            due_at: None,
            blocks_status: Some(status),
            source: "workflow",
            source_key: format!("status:{entry}#{i:02}"),
        };
        opened.extend(open_generated(c, tenant, &p.origin, g, now).await?);
    }
    Ok(opened)
}

/// The open mandatory tasks keeping case `case` in `status`, as `details` lists them.
pub(crate) async fn unresolved(
    c: &mut dyn Conn,
    tenant: TenantId,
    case: CaseId,
    status: &str,
) -> Result<Vec<Value>> {
    Ok(store::blocking(c, tenant, case, status)
        .await?
        .into_iter()
        .map(|t| {
            json!({ "id": t.id, "title": t.title, "assignee_role": t.assignee_role,
                    "assigned_to": t.assigned_to_email })
        })
        .collect())
}

/// 422 `unresolved_mandatory_tasks` (with `details.unresolved_mandatory_tasks`) while case
/// `case` has open mandatory tasks for `status`.
pub(crate) async fn check_leaving(
    c: &mut dyn Conn,
    tenant: TenantId,
    case: CaseId,
    status: &str,
) -> Result<()> {
    let open = unresolved(c, tenant, case, status).await?;
    if open.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        Code::UnresolvedMandatoryTasks,
        format!(
            "{} mandatory task(s) must be done before the case leaves `{status}`",
            open.len()
        ),
    )
    .with_details(json!({ "unresolved_mandatory_tasks": open })))
}

/// Every task of a case, oldest first (the case detail's `tasks`).
pub(crate) async fn of_case(
    c: &mut dyn Conn,
    tenant: TenantId,
    case: CaseId,
) -> Result<Vec<TaskView>> {
    Ok(store::of_case(c, tenant, case)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

fn parse_id(id: &str) -> Result<Uuid> {
    id.parse::<Uuid>().map_err(|_| Error::not_found("task"))
}

async fn read(c: &mut dyn Conn, tenant: TenantId, id: &str) -> Result<StoredTask> {
    store::get(c, tenant, parse_id(id)?)
        .await?
        .ok_or_else(|| Error::not_found("task"))
}

/// `GET /tasks/{id}` (`case.view`).
pub async fn get(svc: &Services, p: &Caller, id: &str) -> Result<TaskView> {
    p.require(Permission::CaseView)?;
    let mut c = svc.db.conn().await?;
    Ok(read(&mut *c, p.tenant_id, id).await?.into())
}

/// Filters of `GET /tasks`, as given.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    /// `open` (default), `done` or `all`.
    pub status: Option<String>,
    /// A user id or email, or `me`: the caller's tasks and those waiting on one of their roles.
    pub assigned_to: Option<String>,
    /// A case id or reference.
    pub case_id: Option<String>,
}

/// One page of tasks.
#[derive(Clone, Debug)]
pub struct TaskPage {
    /// The tasks.
    pub tasks: Vec<TaskView>,
    /// How many match.
    pub total: i64,
}

/// `GET /tasks` (`case.view`): the soonest due first.
pub async fn list(svc: &Services, p: &Caller, q: ListQuery, page: Page) -> Result<TaskPage> {
    p.require(Permission::CaseView)?;
    let mut c = svc.db.conn().await?;
    let mut f = Filter {
        status: match q.status.as_deref() {
            None | Some("open") => Some("open".into()),
            Some("done") => Some("done".into()),
            Some("all") => None,
            Some(_) => {
                return Err(Error::validation("status", "must be open, done or all"));
            }
        },
        ..Filter::default()
    };
    match q.assigned_to.as_deref() {
        None => {}
        Some("me") => {
            f.assigned_to = Some(p.user_id.0);
            f.assignee_roles = Some(p.roles.clone());
        }
        Some(v) => {
            let u = users::resolve(&mut *c, p.tenant_id, v).await.map_err(|_| {
                Error::validation("assigned_to", "is not a user of this organisation")
            })?;
            f.assigned_to = Some(u.id.0);
        }
    }
    if let Some(k) = q.case_id.as_deref() {
        let found = crate::cases::find(&mut *c, p.tenant_id, k)
            .await
            .map_err(|_| Error::validation("case_id", "is not a case of this organisation"))?;
        f.case_id = Some(found);
    }
    let total = store::count(&mut *c, p.tenant_id, &f).await?;
    let tasks = store::list(&mut *c, p.tenant_id, &f, page.limit, page.offset)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(TaskPage { tasks, total })
}

/// `POST /tasks`, as given.
#[derive(Clone, Debug, Default)]
pub struct NewTask {
    /// Case id or reference (required).
    pub case_id: Option<String>,
    /// What to do (required).
    pub title: Option<String>,
    /// More detail.
    pub description: Option<String>,
    /// A user id or email.
    pub assigned_to: Option<String>,
    /// A role.
    pub assignee_role: Option<String>,
    /// RFC 3339.
    pub due_at: Option<String>,
    /// Blocks the case from leaving its current status until done.
    pub mandatory: bool,
}

/// `POST /tasks` (`case.edit`): a task on an open case. A mandatory task blocks leaving the
/// status the case is in now. The case row is locked, so a concurrent move either sees the task
/// or happens first (and the task then blocks a status the case already left, which it says).
pub async fn create(svc: &Services, p: &Caller, input: NewTask) -> Result<TaskView> {
    p.require(Permission::CaseEdit)?;
    let case_ref = input
        .case_id
        .ok_or_else(|| Error::validation("case_id", "`case_id` is required"))?;
    let title = validate::text(
        "title",
        input
            .title
            .as_deref()
            .ok_or_else(|| Error::validation("title", "`title` is required"))?,
        MAX_TITLE_CHARS,
    )?;
    let description = input
        .description
        .as_deref()
        .map(|d| validate::text("description", d, MAX_NOTE_CHARS))
        .transpose()?;
    if let Some(r) = input.assignee_role.as_deref()
        && !BUILTIN_ROLES.contains(&r)
    {
        return Err(Error::validation("assignee_role", "is not a role"));
    }
    let due_at = input
        .due_at
        .as_deref()
        .map(|s| {
            OffsetDateTime::parse(s, &Rfc3339)
                .map(|t| t.to_offset(time::UtcOffset::UTC))
                .map_err(|_| Error::validation("due_at", "must be an RFC 3339 time"))
        })
        .transpose()?;
    let mut tx = svc.db.begin().await?;
    let case_id = crate::cases::find(&mut *tx, p.tenant_id, &case_ref)
        .await
        .map_err(|e| e.with_param("case_id"))?;
    let locked = case_store::lock(&mut *tx, p.tenant_id, case_id)
        .await?
        .ok_or_else(|| Error::not_found("case").with_param("case_id"))?;
    let k = locked.case;
    let key = &k.case_type;
    let ty =
        crate::case_types::at_version(svc, &mut *tx, p.tenant_id, key, locked.type_version).await?;
    if ty.workflow.is_terminal(&k.status) {
        return Err(Error::validation(
            "case_id",
            format!(
                "the case is in the terminal status `{}`: reopen it first",
                k.status
            ),
        ));
    }
    let assignee = match input.assigned_to.as_deref() {
        Some(v) => {
            let u = users::resolve(&mut *tx, p.tenant_id, v)
                .await
                .map_err(|e| e.with_param("assigned_to"))?;
            if !u.active {
                return Err(Error::validation("assigned_to", "this user is disabled"));
            }
            Some(u)
        }
        None => None,
    };
    let now = svc.clock.now();
    let mut t = blank(
        p.tenant_id,
        case_id,
        title,
        Some(p.user_id.0),
        p.audit_label(),
        now,
    );
    t.description = description;
    t.mandatory = input.mandatory;
    t.blocks_status = input.mandatory.then(|| k.status.clone());
    t.assignee_role = input.assignee_role;
    t.assigned_to = assignee.as_ref().map(|u| u.id.0);
    t.assigned_to_email = assignee.map(|u| u.email);
    t.due_at = due_at;
    store::insert(&mut *tx, &t).await?;
    let view = TaskView::from(t);
    audit::append_by(&mut *tx, now, p, created_entry(&view)).await?;
    announce_created(&mut *tx, p.tenant_id, now, &view).await?;
    tx.commit().await?;
    Ok(view)
}

/// Puts `task.created` in the outbox.
pub(crate) async fn announce_created(
    c: &mut dyn Conn,
    tenant: TenantId,
    now: OffsetDateTime,
    t: &TaskView,
) -> Result<()> {
    crate::enqueue(
        c,
        tenant,
        now,
        "task.created",
        json!({ "task": t }),
        json!({}),
    )
    .await
}

/// `POST /tasks/{id}/complete` (`case.view`, and the task's assignee, a holder of its role, or
/// `case.edit`): marks it done with an optional note. 409 `already_completed` when it is.
pub async fn complete(
    svc: &Services,
    p: &Caller,
    id: &str,
    note: Option<&str>,
) -> Result<TaskView> {
    p.require(Permission::CaseView)?;
    let note = note
        .filter(|n| !n.trim().is_empty())
        .map(|n| validate::text("note", n, MAX_NOTE_CHARS))
        .transpose()?;
    let mut tx = svc.db.begin().await?;
    let mut t = read(&mut *tx, p.tenant_id, id).await?;
    let mine = t.assigned_to == Some(p.user_id.0)
        || t.assigned_to.is_none()
            && t.assignee_role
                .as_ref()
                .is_some_and(|r| p.roles.contains(r));
    if !mine && p.require(Permission::CaseEdit).is_err() {
        return Err(Error::new(
            Code::Forbidden,
            "only the task's assignee, a holder of its role, or a holder of case.edit can complete it",
        ));
    }
    if t.status == "done" {
        return Err(already_completed(&t));
    }
    let now = svc.clock.now();
    let expected = t.version;
    t.completed_at = Some(now);
    t.completed_by = Some(p.user_id.0);
    t.completed_by_label = Some(p.audit_label());
    t.completion_note = note;
    if !store::complete(&mut *tx, &t, expected).await? {
        // Someone completed it between our read and our write.
        let now_stored = read(&mut *tx, p.tenant_id, id).await?;
        return Err(already_completed(&now_stored));
    }
    let mut e = Entry::new("task.completed", "task", t.id).change("status", "open", "done");
    if let Value::Object(m) = &mut e.changes {
        m.insert("case_id".into(), json!(t.case_id.0));
        m.insert(
            "completion_note".into(),
            json!({ "before": null, "after": t.completion_note }),
        );
    }
    audit::append_by(&mut *tx, now, p, e).await?;
    let done = store::get(&mut *tx, p.tenant_id, t.id)
        .await?
        .ok_or_else(|| Error::not_found("task"))?;
    tx.commit().await?;
    Ok(done.into())
}

fn already_completed(t: &StoredTask) -> Error {
    Error::new(
        Code::AlreadyCompleted,
        format!(
            "this task was completed by {} already",
            t.completed_by_label.as_deref().unwrap_or("someone")
        ),
    )
    .with_details(json!({ "completed_at": t.completed_at.map(casegate_domain::clock::wire_time) }))
}
