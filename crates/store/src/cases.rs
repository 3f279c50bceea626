//! Case rows: insert, read (with the assignee's and escalation target's emails and the linked
//! alerts), compare-and-swap update, list and search, per-tenant reference numbers and the side
//! table that serves equality filters on indexed custom fields.
use crate::{
    Conn, Dialect, Reader, Row, StoreError, StoreResult, Val, Where, page_clause, value_lists_of,
};
use casegate_domain::ids::{CaseId, TenantId};
use serde_json::{Map, Value as Json};
use time::OffsetDateTime;
use uuid::Uuid;

/// One case as stored (alerts are cases of type `ALERT`).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredCase {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Case id.
    pub id: CaseId,
    /// `CASE-<year>-<n>`.
    pub reference: String,
    /// Case type key.
    pub case_type: String,
    /// Title.
    pub title: String,
    /// Current status key.
    pub status: String,
    /// `low|medium|high|critical`.
    pub priority: String,
    /// Risk score 0–100.
    pub score: Option<f64>,
    /// Assignee user id.
    pub assigned_to: Option<Uuid>,
    /// Assignee email (read only: joined from users).
    pub assigned_to_email: Option<String>,
    /// Business unit.
    pub business_unit: Option<String>,
    /// Custom field values.
    pub fields: Map<String, Json>,
    /// Reasons (strings).
    pub reasons: Vec<String>,
    /// Investigator notes.
    pub notes: Option<String>,
    /// The originating payload.
    pub source: Option<Json>,
    /// Screening reference.
    pub screening_id: Option<String>,
    /// Subject reference.
    pub subject_id: Option<String>,
    /// For an alert: the case it was escalated into.
    pub parent_case_id: Option<CaseId>,
    /// Disposition wire name.
    pub disposition: Option<String>,
    /// Why.
    pub disposition_reason: Option<String>,
    /// Whether escalated.
    pub escalated: bool,
    /// Escalation target user id.
    pub escalated_to: Option<Uuid>,
    /// Escalation target email (read only).
    pub escalated_to_email: Option<String>,
    /// When the activity was detected (SAR deadlines count from here).
    pub detected_at: Option<OffsetDateTime>,
    /// Creator user id.
    pub created_by: Option<Uuid>,
    /// Creator as audited.
    pub created_by_label: String,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// Optimistic-concurrency version, from 1.
    pub version: i64,
    /// Last seq handed to the case's record.
    pub entry_seq: i64,
    /// Alerts linked to this case (read only: from their `parent_case_id`), oldest first.
    pub alert_ids: Vec<CaseId>,
}

/// The columns [`from_row`] reads but the linked alerts, with the assignee's and escalation
/// target's e-mails given as SQL expressions, in [`from_row`]'s order (its reader then finds each
/// column with one comparison).
macro_rules! case_cols {
    ($assigned_email:literal, $escalated_email:literal) => {
        concat!(
            "c.tenant_id, c.id, c.reference, c.case_type, c.title, c.status, c.priority, c.score, \
             c.assigned_to, ",
            $assigned_email,
            " AS assigned_to_email, c.business_unit, c.fields, c.reasons, c.notes, c.source, \
             c.screening_id, c.subject_id, c.parent_case_id, c.disposition, c.disposition_reason, \
             c.escalated, c.escalated_to, ",
            $escalated_email,
            " AS escalated_to_email, c.detected_at, c.created_by, c.created_by_label, \
             c.created_at, c.updated_at, c.version, c.entry_seq"
        )
    };
}

const BASE_COLS: &str = case_cols!("ua.email", "ue.email");

const JOINS: &str = "LEFT JOIN users ua ON ua.tenant_id = c.tenant_id AND ua.id = c.assigned_to \
    LEFT JOIN users ue ON ue.tenant_id = c.tenant_id AND ue.id = c.escalated_to";

/// The ids of the alerts linked to case `case` of `tenant` (SQL expressions), oldest first, as
/// a JSON array, per dialect.
fn alert_ids(d: Dialect, tenant: &str, case: &str) -> String {
    match d {
        Dialect::Postgres => format!(
            "(SELECT coalesce(json_agg(a.id ORDER BY a.created_at, a.id), '[]'::json) FROM cases a \
             WHERE a.tenant_id = {tenant} AND a.parent_case_id = {case})"
        ),
        Dialect::Sqlite => format!(
            "(SELECT json_group_array(id) FROM (SELECT a.id FROM cases a \
             WHERE a.tenant_id = {tenant} AND a.parent_case_id = {case} ORDER BY a.created_at, a.id))"
        ),
    }
}

/// The select list, with the linked alerts aggregated per dialect.
fn select_list(d: Dialect) -> String {
    format!(
        "SELECT {BASE_COLS}, {} AS alert_ids",
        alert_ids(d, "c.tenant_id", "c.id")
    )
}

/// `SELECT … FROM cases c` with the joined users.
fn select(d: Dialect) -> String {
    format!("{} FROM cases c {JOINS}", select_list(d))
}

fn json_of<T: serde::de::DeserializeOwned>(r: &mut Reader, col: &str) -> StoreResult<T> {
    serde_json::from_value(r.json(col)?)
        .map_err(|e| StoreError::Other(format!("column {col}: {e}")))
}

/// The JSON kind of `v`, for a decoding error that must not quote the value.
fn kind_of(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Decodes a case from a row of [`select_list`], moving its values out (a page is 50 wide rows).
fn from_row(r: &mut Reader) -> StoreResult<StoredCase> {
    Ok(StoredCase {
        tenant_id: TenantId(r.uuid("tenant_id")?),
        id: CaseId(r.uuid("id")?),
        reference: r.text("reference")?,
        case_type: r.text("case_type")?,
        title: r.text("title")?,
        status: r.text("status")?,
        priority: r.text("priority")?,
        score: r.opt_float("score")?,
        assigned_to: r.opt_uuid("assigned_to")?,
        assigned_to_email: r.opt_text("assigned_to_email")?,
        business_unit: r.opt_text("business_unit")?,
        fields: match r.json("fields")? {
            // The common case, without rebuilding the map through a deserializer.
            Json::Object(m) => m,
            other => {
                return Err(StoreError::Other(format!(
                    "column fields: expected an object, found {}",
                    kind_of(&other)
                )));
            }
        },
        reasons: json_of(r, "reasons")?,
        notes: r.opt_text("notes")?,
        source: Some(r.json("source")?).filter(|s| !s.is_null()),
        screening_id: r.opt_text("screening_id")?,
        subject_id: r.opt_text("subject_id")?,
        parent_case_id: r.opt_uuid("parent_case_id")?.map(CaseId),
        disposition: r.opt_text("disposition")?,
        disposition_reason: r.opt_text("disposition_reason")?,
        escalated: r.bool("escalated")?,
        escalated_to: r.opt_uuid("escalated_to")?,
        escalated_to_email: r.opt_text("escalated_to_email")?,
        detected_at: r.opt_time("detected_at")?,
        created_by: r.opt_uuid("created_by")?,
        created_by_label: r.text("created_by_label")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
        version: r.int("version")?,
        entry_seq: r.int("entry_seq")?,
        alert_ids: json_of::<Vec<Uuid>>(r, "alert_ids")?
            .into_iter()
            .map(CaseId)
            .collect(),
    })
}

/// Hands out the next reference number of `tenant` in `year` (1, 2, …). The counter row is
/// locked until the transaction ends, so numbers are unique and without gaps.
pub async fn next_number(c: &mut dyn Conn, tenant: TenantId, year: i32) -> StoreResult<i64> {
    c.fetch_one(
        "INSERT INTO case_counters (tenant_id, year, last) VALUES ($1, $2, 1) \
         ON CONFLICT (tenant_id, year) DO UPDATE SET last = case_counters.last + 1 RETURNING last",
        &[tenant.into(), i64::from(year).into()],
    )
    .await?
    .int("last")
}

/// Reserves `n` consecutive reference numbers at once (bulk loads); returns the first.
pub async fn reserve_numbers(
    c: &mut dyn Conn,
    tenant: TenantId,
    year: i32,
    n: i64,
) -> StoreResult<i64> {
    let last = c
        .fetch_one(
            "INSERT INTO case_counters (tenant_id, year, last) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, year) DO UPDATE SET last = case_counters.last + $3 RETURNING last",
            &[tenant.into(), i64::from(year).into(), n.into()],
        )
        .await?
        .int("last")?;
    Ok(last - n + 1)
}

fn insert_args(k: &StoredCase) -> Vec<Val> {
    vec![
        k.tenant_id.into(),
        k.id.into(),
        k.reference.as_str().into(),
        k.case_type.as_str().into(),
        k.title.as_str().into(),
        k.status.as_str().into(),
        k.priority.as_str().into(),
        k.score.into(),
        k.assigned_to.into(),
        k.business_unit.clone().into(),
        Json::Object(k.fields.clone()).into(),
        Json::from(k.reasons.clone()).into(),
        k.notes.clone().into(),
        k.source.clone().into(),
        k.screening_id.clone().into(),
        k.subject_id.clone().into(),
        k.parent_case_id.into(),
        k.disposition.clone().into(),
        k.disposition_reason.clone().into(),
        k.escalated.into(),
        k.escalated_to.into(),
        k.detected_at.into(),
        k.created_by.into(),
        k.created_by_label.as_str().into(),
        k.created_at.into(),
        k.updated_at.into(),
        k.version.into(),
        k.entry_seq.into(),
    ]
}

const INSERT_COLS: &str = "tenant_id, id, reference, case_type, title, status, priority, score, assigned_to, \
    business_unit, fields, reasons, notes, source, screening_id, subject_id, parent_case_id, disposition, \
    disposition_reason, escalated, escalated_to, detected_at, created_by, created_by_label, created_at, \
    updated_at, version, entry_seq";

/// Inserts cases: one statement for a create; for a bulk load, multi-row statements of the
/// dialect's size ([`Dialect::rows_per_statement`]: a few hundred rows on PostgreSQL, a dozen
/// or so on SQLite, whose statements slow with the square of their parameters). SQLite also
/// gives each row its stable full-text key (`rid`): the largest is read once, then each row
/// takes the next.
pub async fn insert_many(c: &mut dyn Conn, cases: &[StoredCase]) -> StoreResult<()> {
    if cases.is_empty() {
        return Ok(());
    }
    let d = c.dialect();
    let mut rid = match d {
        Dialect::Postgres => None,
        Dialect::Sqlite => Some(
            c.fetch_one("SELECT coalesce(max(rid), 0) AS m FROM cases", &[])
                .await?
                .int("m")?,
        ),
    };
    let rid_col = if rid.is_some() { ", rid" } else { "" };
    let width = INSERT_COLS.split(',').count() + usize::from(rid.is_some());
    for (rows, args) in value_lists_of(d, cases, &[], width, |k| {
        rid = rid.map(|r| r + 1);
        insert_args(k).into_iter().chain(rid.map(Val::from))
    }) {
        let sql = format!("INSERT INTO cases ({INSERT_COLS}{rid_col}) VALUES {rows}");
        c.execute(&sql, &args).await?;
    }
    Ok(())
}

/// One case of `tenant`.
pub async fn get(
    c: &mut dyn Conn,
    tenant: TenantId,
    id: CaseId,
) -> StoreResult<Option<StoredCase>> {
    let sql = format!(
        "{} WHERE c.tenant_id = $1 AND c.id = $2",
        select(c.dialect())
    );
    c.fetch_optional(&sql, &[tenant.into(), id.into()])
        .await?
        .map(|r| from_row(&mut r.reader()))
        .transpose()
}

/// One case of `tenant` by reference.
pub async fn by_reference(
    c: &mut dyn Conn,
    tenant: TenantId,
    reference: &str,
) -> StoreResult<Option<StoredCase>> {
    let sql = format!(
        "{} WHERE c.tenant_id = $1 AND c.reference = $2",
        select(c.dialect())
    );
    c.fetch_optional(&sql, &[tenant.into(), reference.into()])
        .await?
        .map(|r| from_row(&mut r.reader()))
        .transpose()
}

/// A case read for change, with the version of its type's stored document as of the same
/// statement (so a command that has that version decoded already reads nothing more).
#[derive(Clone, Debug)]
pub struct Locked {
    /// The case.
    pub case: StoredCase,
    /// `case_types.version` of the case's type; `None` if the type is missing.
    pub type_version: Option<i64>,
}

/// Reads a case for change inside a transaction, locking its row on PostgreSQL (SQLite's write
/// transaction is already exclusive), so commands on one case run one after the other.
pub async fn lock(c: &mut dyn Conn, tenant: TenantId, id: CaseId) -> StoreResult<Option<Locked>> {
    // One statement: the row lock (PostgreSQL; only the case's row, not the joined users'), the
    // read and the type's version, so a command pays one round trip for all three.
    //
    // On PostgreSQL a locking read that waited for another transaction returns the case's
    // newest row, but reads everything else (the joined e-mails, the linked alerts, the type's
    // version) as of the statement's start. `moved` says the row changed after that start
    // (its `xmin` differs from the one the statement's snapshot sees); the read is then made
    // again, with the lock held, so it sees that change in full.
    let (lock, moved) = match c.dialect() {
        Dialect::Postgres => (
            " FOR UPDATE OF c",
            ", c.xmin::text IS DISTINCT FROM (SELECT s.xmin::text FROM cases s \
             WHERE s.tenant_id = c.tenant_id AND s.id = c.id) AS moved",
        ),
        Dialect::Sqlite => ("", ""),
    };
    let sql = format!(
        "{}, (SELECT t.version FROM case_types t WHERE t.tenant_id = c.tenant_id AND t.key = c.case_type) \
         AS type_version{moved} FROM cases c {JOINS} WHERE c.tenant_id = $1 AND c.id = $2{lock}",
        select_list(c.dialect())
    );
    let args = [tenant.into(), id.into()];
    let mut found = c.fetch_optional(&sql, &args).await?;
    if let Some(r) = &found
        && !moved.is_empty()
        && r.bool("moved")?
    {
        found = c.fetch_optional(&sql, &args).await?;
    }
    match found {
        Some(r) => {
            let mut r = r.reader();
            Ok(Some(Locked {
                case: from_row(&mut r)?,
                type_version: r.opt_int("type_version")?,
            }))
        }
        None => Ok(None),
    }
}

/// What may stop a case from leaving its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Obstacles {
    /// The case's pending transition request.
    pub pending_request: Option<Uuid>,
    /// Whether open mandatory tasks hold the case in the status asked about.
    pub blocking_tasks: bool,
}

/// The select items of [`Obstacles`]: `$1` the tenant, `$2` the case, `$3` the status.
macro_rules! obstacle_items {
    () => {
        "(SELECT q.id FROM transition_requests q WHERE q.tenant_id = $1 AND q.case_id = $2 \
         AND q.status = 'pending' LIMIT 1) AS pending_request, \
         EXISTS (SELECT 1 FROM tasks t WHERE t.tenant_id = $1 AND t.case_id = $2 AND t.status = 'open' \
         AND t.mandatory AND t.blocks_status = $3) AS blocking_tasks"
    };
}

fn obstacles_of(r: &Row) -> StoreResult<Obstacles> {
    Ok(Obstacles {
        pending_request: r.opt_uuid("pending_request")?,
        blocking_tasks: r.bool("blocking_tasks")?,
    })
}

/// The [`Obstacles`] of case `case` leaving `status`, in one statement. Read after the case's
/// lock is held, in a statement of its own: on PostgreSQL it then sees what the command the lock
/// waited for committed (a locking read's subqueries would not).
pub async fn obstacles(
    c: &mut dyn Conn,
    tenant: TenantId,
    case: CaseId,
    status: &str,
) -> StoreResult<Obstacles> {
    let r = c
        .fetch_one(
            concat!("SELECT ", obstacle_items!()),
            &[tenant.into(), case.into(), status.into()],
        )
        .await?;
    obstacles_of(&r)
}

/// What [`lock`] and then [`obstacles`] of the case's own status read, for a status change, in
/// two statements that cost PostgreSQL less than those two.
///
/// The locking read takes the case row's own columns only: a locking read over joins and
/// subqueries sets up and runs all of them under the lock, and must read again when the lock
/// waited (see [`lock`]). The second statement reads the rest (the assignee's and escalation
/// target's e-mails, the linked alerts, the type's version) together with the obstacles; it
/// starts once the lock is held, so it sees all that the transaction the lock waited for
/// committed. (Measured: 70,000-120,000 fewer PostgreSQL instructions per move, 4-7 % of its
/// work; docs/benchmarks.md, Transitions run 14.)
pub async fn lock_for_move(
    c: &mut dyn Conn,
    tenant: TenantId,
    id: CaseId,
) -> StoreResult<Option<(Locked, Obstacles)>> {
    let d = c.dialect();
    // The e-mails and alerts are filled in from the second statement; `from_row` reads them by
    // name, so the first names them empty.
    let sql = format!(
        "SELECT {}, '[]' AS alert_ids FROM cases c WHERE c.tenant_id = $1 AND c.id = $2{}",
        case_cols!("NULL", "NULL"),
        d.row_lock(" FOR UPDATE")
    );
    let Some(r) = c.fetch_optional(&sql, &[tenant.into(), id.into()]).await? else {
        return Ok(None);
    };
    let mut case = from_row(&mut r.reader())?;
    let rest = format!(
        "SELECT {}, (SELECT u.email FROM users u WHERE u.tenant_id = $1 AND u.id = $4) AS assigned_to_email, \
         (SELECT u.email FROM users u WHERE u.tenant_id = $1 AND u.id = $5) AS escalated_to_email, \
         {} AS alert_ids, \
         (SELECT t.version FROM case_types t WHERE t.tenant_id = $1 AND t.key = $6) AS type_version",
        obstacle_items!(),
        alert_ids(d, "$1", "$2")
    );
    let args = [
        tenant.into(),
        id.into(),
        case.status.as_str().into(),
        case.assigned_to.into(),
        case.escalated_to.into(),
        case.case_type.as_str().into(),
    ];
    let r = c.fetch_one(&rest, &args).await?;
    let found = obstacles_of(&r)?;
    let type_version = r.opt_int("type_version")?;
    case.assigned_to_email = r.opt_text("assigned_to_email")?;
    case.escalated_to_email = r.opt_text("escalated_to_email")?;
    case.alert_ids = json_of::<Vec<Uuid>>(&mut r.reader(), "alert_ids")?
        .into_iter()
        .map(CaseId)
        .collect();
    Ok(Some((Locked { case, type_version }, found)))
}

/// Writes `k` over `before` (the case as read in this transaction) if the stored version is
/// still `before.version`; bumps nothing itself (the caller sets `k.version`). Returns whether
/// the row was written.
///
/// Only the columns that differ are sent and set. A status change then neither ships the case's
/// custom fields, reasons and originating payload again nor has PostgreSQL parse them as `jsonb`
/// and store them anew (an unchanged value it is not handed keeps its place, a large one its
/// TOAST storage). Each set of changed columns is its own statement text, so the few a workload
/// uses are each prepared once per connection (deferred, [`update_locked`], it becomes part of
/// the joined statement's text, so each combination it goes out in is prepared once).
pub async fn update(c: &mut dyn Conn, k: &StoredCase, before: &StoredCase) -> StoreResult<bool> {
    let (sql, args) = update_statement(k, before);
    Ok(c.execute(&sql, &args).await? == 1)
}

/// [`update`] of a case `before` read under its row lock in this transaction, so the version
/// guard cannot miss: the write is deferred ([`Conn::defer`]), to go out with the
/// transaction's other writes, and fails the transaction if it writes no row after all.
pub async fn update_locked(
    c: &mut dyn Conn,
    k: &StoredCase,
    before: &StoredCase,
) -> StoreResult<()> {
    let (sql, args) = update_statement(k, before);
    c.defer(&sql, args, 1).await
}

/// The statement of [`update`].
fn update_statement(k: &StoredCase, before: &StoredCase) -> (String, Vec<Val>) {
    let mut sql = String::with_capacity(160);
    sql.push_str("UPDATE cases SET ");
    let mut args: Vec<Val> = vec![k.tenant_id.into(), k.id.into(), before.version.into()];
    let mut put = |column: &str, value: Val| {
        args.push(value);
        if args.len() > 4 {
            sql.push_str(", ");
        }
        sql.push_str(column);
        sql.push_str(" = $");
        sql.push_str(&args.len().to_string());
    };
    // Each column is named by its field, so the one compared is the one written.
    macro_rules! put_changed {
        ($($column:ident => $value:expr),* $(,)?) => {$(
            if k.$column != before.$column {
                put(stringify!($column), $value);
            }
        )*};
    }
    put_changed! {
        title => k.title.as_str().into(),
        status => k.status.as_str().into(),
        priority => k.priority.as_str().into(),
        score => k.score.into(),
        assigned_to => k.assigned_to.into(),
        business_unit => k.business_unit.as_deref().into(),
        fields => Json::Object(k.fields.clone()).into(),
        reasons => Json::from(k.reasons.clone()).into(),
        notes => k.notes.as_deref().into(),
        source => k.source.clone().into(),
        screening_id => k.screening_id.as_deref().into(),
        subject_id => k.subject_id.as_deref().into(),
        parent_case_id => k.parent_case_id.into(),
        disposition => k.disposition.as_deref().into(),
        disposition_reason => k.disposition_reason.as_deref().into(),
        escalated => k.escalated.into(),
        escalated_to => k.escalated_to.into(),
        detected_at => k.detected_at.into(),
        updated_at => k.updated_at.into(),
        entry_seq => k.entry_seq.into(),
    }
    // Always written, so the statement sets something and the guard below is a write.
    put("version", k.version.into());
    sql.push_str(" WHERE tenant_id = $1 AND id = $2 AND version = $3");
    (sql, args)
}

/// Records activity on a case that does not change its fields (a comment, an attachment): the
/// record's seq and `updated_at` move, the version does not.
pub async fn touch(
    c: &mut dyn Conn,
    tenant: TenantId,
    id: CaseId,
    entry_seq: i64,
    now: OffsetDateTime,
) -> StoreResult<()> {
    c.execute(
        "UPDATE cases SET entry_seq = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
        &[tenant.into(), id.into(), entry_seq.into(), now.into()],
    )
    .await
    .map(drop)
}

/// Orders of `GET /cases`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CaseSort {
    /// Newest first (the default).
    #[default]
    CreatedDesc,
    /// Oldest first.
    CreatedAsc,
    /// Most recently changed first.
    UpdatedDesc,
}

/// An equality filter on one custom field; `value` is the value as JSON text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldFilter {
    /// Field key (validated: `[a-z][a-z0-9_]*`).
    pub key: String,
    /// JSON text of the value (`"abc"`, `5000`, `true`).
    pub value: String,
    /// Served by `case_field_values` (the field is indexed) or by reading the JSON.
    pub indexed: bool,
}

/// Filters of `GET /cases`, already validated.
#[derive(Clone, Debug, Default)]
pub struct CaseFilter {
    /// Status key.
    pub status: Option<String>,
    /// Priority wire name.
    pub priority: Option<String>,
    /// Case type key.
    pub case_type: Option<String>,
    /// Assignee user id.
    pub assigned_to: Option<Uuid>,
    /// Created at or after.
    pub from: Option<OffsetDateTime>,
    /// Created before.
    pub to: Option<OffsetDateTime>,
    /// Words that must all occur in the title and notes, or in one comment.
    pub words: Vec<String>,
    /// Custom-field equalities (need `case_type`).
    pub fields: Vec<FieldFilter>,
}

/// The conditions of `f` on `cases c` but its words (see [`word_matches`]), and their arguments.
fn filter_clause(d: Dialect, tenant: TenantId, f: &CaseFilter) -> (String, Vec<Val>) {
    let mut w = Where::tenant("c.tenant_id", tenant);
    let mut push = |clause: &str, vals: Vec<Val>| w.push(clause, vals);
    if let Some(v) = &f.status {
        push("c.status = ?", vec![v.as_str().into()]);
    }
    if let Some(v) = &f.priority {
        push("c.priority = ?", vec![v.as_str().into()]);
    }
    if let Some(v) = &f.case_type {
        push("c.case_type = ?", vec![v.as_str().into()]);
    }
    if let Some(v) = f.assigned_to {
        push("c.assigned_to = ?", vec![v.into()]);
    }
    if let Some(v) = f.from {
        push("c.created_at >= ?", vec![v.into()]);
    }
    if let Some(v) = f.to {
        push("c.created_at < ?", vec![v.into()]);
    }
    for ff in &f.fields {
        if ff.indexed {
            push(
                "c.id IN (SELECT fv.case_id FROM case_field_values fv WHERE fv.tenant_id = $1 \
                 AND fv.case_type = ? AND fv.key = ? AND fv.value = ?)",
                vec![
                    f.case_type.as_deref().unwrap_or_default().into(),
                    ff.key.as_str().into(),
                    ff.value.as_str().into(),
                ],
            );
        } else {
            let clause = match d {
                Dialect::Postgres => "c.fields -> ? = CAST(? AS jsonb)",
                Dialect::Sqlite => "c.fields -> ('$.' || ?) = json(?)",
            };
            push(
                clause,
                vec![ff.key.as_str().into(), ff.value.as_str().into()],
            );
        }
    }
    w.finish()
}

/// How far `list` counts the matches. Counting every match of a broad filter at a million cases
/// costs a scan of all of them, while a page costs one index walk; so lists count up to a cap
/// unless the caller asks for the exact number.
#[derive(Debug, Clone, Copy)]
pub enum Count {
    /// Every match.
    Exact,
    /// At most this many; beyond, the total is the cap and marked inexact.
    UpTo(i64),
}

/// A page of cases and how many match.
#[derive(Debug)]
pub struct CasePage {
    /// The page.
    pub rows: Vec<StoredCase>,
    /// Matching cases: exact, or the cap when more match.
    pub total: i64,
    /// False when `total` is the cap, a lower bound.
    pub total_exact: bool,
}

/// The search argument of `words` (bound as one value) for the dialect's full-text match.
fn words_arg(d: Dialect, words: &[String]) -> Val {
    match d {
        Dialect::Postgres => words.join(" ").into(),
        // Each word quoted: FTS5 then reads it as a plain token, never as syntax.
        Dialect::Sqlite => words
            .iter()
            .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" ")
            .into(),
    }
}

/// The cases matching `filter` (on `cases c`) whose title and notes, or one of whose comments,
/// hold every word of the search argument `w` (a placeholder): `SELECT {cols}` from each side,
/// united. Each side takes the matched cases' own columns (`created_at` to sort by, say), so a
/// page of matches is sorted among the matches alone, never by walking the tenant's whole
/// `created_at` index to find them.
fn word_matches(d: Dialect, filter: &str, w: &str, cols: &str) -> String {
    match d {
        Dialect::Postgres => format!(
            "SELECT {cols} FROM case_search s JOIN cases c ON c.tenant_id = s.tenant_id AND c.id = s.case_id \
             WHERE s.tenant_id = $1 AND s.search @@ plainto_tsquery('simple', {w}) AND {filter} \
             UNION SELECT {cols} FROM case_comments cm JOIN cases c ON c.tenant_id = cm.tenant_id AND c.id = cm.case_id \
             WHERE cm.tenant_id = $1 AND cm.search @@ plainto_tsquery('simple', {w}) AND {filter}"
        ),
        // `CROSS JOIN` fixes SQLite's join order: the full-text index first, then each match's
        // row. Otherwise, without statistics, it walked the tenant's cases and asked the
        // full-text index about each.
        Dialect::Sqlite => format!(
            "SELECT {cols} FROM cases_fts CROSS JOIN cases c ON c.rid = cases_fts.rowid \
             WHERE cases_fts MATCH {w} AND {filter} \
             UNION SELECT {cols} FROM case_comments_fts \
             CROSS JOIN case_comments cm ON cm.rid = case_comments_fts.rowid \
             CROSS JOIN cases c ON c.tenant_id = cm.tenant_id AND c.id = cm.case_id \
             WHERE case_comments_fts MATCH {w} AND cm.tenant_id = $1 AND {filter}"
        ),
    }
}

/// The condition picking a page's rows (on `cases c`) of tenant `$1` from `ids`, a query of
/// their ids. SQLite is given the rows as `(tenant_id, id)` row values, which it can only answer
/// from the page's ids: asked `c.tenant_id = $1 AND c.id IN (…)` without statistics, it walked
/// the tenant's whole `created_at` index and used the page as a filter.
fn page_rows(d: Dialect, ids: &str) -> String {
    match d {
        Dialect::Postgres => format!("c.tenant_id = $1 AND c.id IN ({ids})"),
        Dialect::Sqlite => format!("(c.tenant_id, c.id) IN (SELECT $1, id FROM ({ids}))"),
    }
}

/// One page of the cases matching `f`, with the total counted as `count` says.
pub async fn list(
    c: &mut dyn Conn,
    tenant: TenantId,
    f: &CaseFilter,
    sort: CaseSort,
    (limit, offset): (i64, i64),
    count: Count,
) -> StoreResult<CasePage> {
    let d = c.dialect();
    let (filter, mut args) = filter_clause(d, tenant, f);
    let cap = match count {
        Count::Exact => i64::MAX,
        Count::UpTo(cap) => cap,
    };
    let capped = |from: &str| match count {
        Count::Exact => format!("SELECT count(*) AS n FROM {from}"),
        Count::UpTo(cap) => format!(
            "SELECT count(*) AS n FROM (SELECT 1 FROM {from} LIMIT {}) x",
            cap.saturating_add(1)
        ),
    };
    // The sort, on the rows of alias `a`.
    let order = |a: &str| match sort {
        CaseSort::CreatedDesc => format!("{a}.created_at DESC, {a}.id DESC"),
        CaseSort::CreatedAsc => format!("{a}.created_at ASC, {a}.id ASC"),
        CaseSort::UpdatedDesc => format!("{a}.updated_at DESC, {a}.id DESC"),
    };
    let by = order("c");
    let page_of = |total: i64, rows: Vec<Row>| -> StoreResult<CasePage> {
        Ok(CasePage {
            rows: rows
                .into_iter()
                .map(|r| from_row(&mut r.reader()))
                .collect::<StoreResult<_>>()?,
            total: total.min(cap),
            total_exact: total <= cap,
        })
    };
    // The page with its capped count as a scalar subquery (evaluated once), so a page is one
    // round trip; and the count alone, with the arguments before the page's.
    let (sql, count_sql, bound) = if f.words.is_empty() {
        // The page is chosen on the cases table alone (an index walk), then joined.
        let count_sql = capped(&format!("cases c WHERE {filter}"));
        let bound = args.len();
        let page = page_clause(&mut args, limit, offset);
        let sql = format!(
            "{}, ({count_sql}) AS total_n FROM cases c {JOINS} WHERE {} ORDER BY {by}",
            select_list(d),
            page_rows(
                d,
                &format!("SELECT c.id FROM cases c WHERE {filter} ORDER BY {by} {page}")
            ),
        );
        (sql, count_sql, bound)
    } else {
        // A search: the matches are found once (the full-text indexes, then each match's
        // row), and both the page and the count are taken from them, read back as `m`.
        args.push(words_arg(d, &f.words));
        let w = format!("${}", args.len());
        let matched = word_matches(d, &filter, &w, "c.id, c.created_at, c.updated_at");
        let total_sql = capped("matched");
        let bound = args.len();
        let page = page_clause(&mut args, limit, offset);
        let sql = format!(
            "WITH matched AS MATERIALIZED ({matched}), \
             p AS (SELECT m.id FROM matched m ORDER BY {} {page}) \
             {}, ({total_sql}) AS total_n FROM cases c {JOINS} \
             WHERE {} ORDER BY {by}",
            order("m"),
            select_list(d),
            page_rows(d, "SELECT id FROM p"),
        );
        (
            sql,
            format!("WITH matched AS ({matched}) {total_sql}"),
            bound,
        )
    };
    let rows = c.fetch_all(&sql, &args).await?;
    if let Some(first) = rows.first() {
        return page_of(first.int("total_n")?, rows);
    }
    // No row: nothing matches, or a page past the end, which still reports the total.
    let counted = c.fetch_one(&count_sql, &args[..bound]).await?.int("n")?;
    page_of(counted, Vec::new())
}

/// Whether any case of `case_type` is in `status` (a status may not be removed while used).
pub async fn any_in_status(
    c: &mut dyn Conn,
    tenant: TenantId,
    case_type: &str,
    status: &str,
) -> StoreResult<bool> {
    Ok(c.fetch_optional(
        "SELECT 1 AS x FROM cases WHERE tenant_id = $1 AND status = $2 AND case_type = $3 LIMIT 1",
        &[tenant.into(), status.into(), case_type.into()],
    )
    .await?
    .is_some())
}

/// Links alert `alert` to case `case`. Returns false if the alert is already linked elsewhere.
pub async fn link_alert(
    c: &mut dyn Conn,
    tenant: TenantId,
    alert: CaseId,
    case: CaseId,
) -> StoreResult<bool> {
    let n = c
        .execute(
            "UPDATE cases SET parent_case_id = $3 WHERE tenant_id = $1 AND id = $2 \
             AND (parent_case_id IS NULL OR parent_case_id = $3)",
            &[tenant.into(), alert.into(), case.into()],
        )
        .await?;
    Ok(n == 1)
}

/// Replaces a case's rows in `case_field_values` (the values of its type's indexed fields).
pub async fn set_field_values(
    c: &mut dyn Conn,
    tenant: TenantId,
    case_type: &str,
    case: CaseId,
    values: &[(String, String)],
) -> StoreResult<()> {
    c.execute(
        "DELETE FROM case_field_values WHERE tenant_id = $1 AND case_id = $2",
        &[tenant.into(), case.into()],
    )
    .await?;
    for (key, value) in values {
        c.execute(
            "INSERT INTO case_field_values (tenant_id, case_type, key, value, case_id) VALUES ($1, $2, $3, $4, $5)",
            &[
                tenant.into(),
                case_type.into(),
                key.as_str().into(),
                value.as_str().into(),
                case.into(),
            ],
        )
        .await?;
    }
    Ok(())
}

/// Rebuilds the index rows of one field of a case type from the stored values (a field became
/// indexed) or removes them (`indexed` false).
pub async fn reindex_field(
    c: &mut dyn Conn,
    tenant: TenantId,
    case_type: &str,
    key: &str,
    indexed: bool,
) -> StoreResult<()> {
    c.execute(
        "DELETE FROM case_field_values WHERE tenant_id = $1 AND case_type = $2 AND key = $3",
        &[tenant.into(), case_type.into(), key.into()],
    )
    .await?;
    if !indexed {
        return Ok(());
    }
    let sql = match c.dialect() {
        Dialect::Postgres => {
            "INSERT INTO case_field_values (tenant_id, case_type, key, value, case_id) \
             SELECT tenant_id, case_type, $3, (fields -> $3)::text, id FROM cases \
             WHERE tenant_id = $1 AND case_type = $2 AND fields ? $3 AND fields -> $3 <> 'null'::jsonb"
        }
        Dialect::Sqlite => {
            "INSERT INTO case_field_values (tenant_id, case_type, key, value, case_id) \
             SELECT tenant_id, case_type, $3, fields -> ('$.' || $3), id FROM cases \
             WHERE tenant_id = $1 AND case_type = $2 AND json_type(fields, '$.' || $3) NOT IN ('null') \
             AND json_type(fields, '$.' || $3) IS NOT NULL"
        }
    };
    c.execute(sql, &[tenant.into(), case_type.into(), key.into()])
        .await
        .map(drop)
}
