//! The backend-neutral connection interface.
use crate::error::{StoreError, StoreResult};
use async_trait::async_trait;
use serde_json::Value as Json;
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

/// The SQL dialect behind a connection, for the few queries that differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite 3 (embedded, single node).
    Sqlite,
    /// PostgreSQL 15+.
    Postgres,
}

impl Dialect {
    /// The row-locking clause `clause` (`" FOR UPDATE"`, `" FOR UPDATE SKIP LOCKED"`, …) on
    /// PostgreSQL; nothing on SQLite, whose one writer at a time already serialises claims.
    pub fn row_lock(self, clause: &'static str) -> &'static str {
        match self {
            Dialect::Postgres => clause,
            Dialect::Sqlite => "",
        }
    }

    /// How many rows of `params_per_row` parameters one multi-row statement should carry.
    /// PostgreSQL: a few hundred (each statement is a round trip; the limit is 65,535
    /// parameters). SQLite: a few dozen, because it finds a numbered parameter by a linear
    /// search, so a statement's cost grows with the square of its parameters (500 rows of 16
    /// took 250 ms), while its statements cost no round trip.
    pub fn rows_per_statement(self, params_per_row: usize) -> usize {
        let params = match self {
            Dialect::Postgres => 8_000,
            Dialect::Sqlite => 512,
        };
        (params / params_per_row.max(1)).clamp(1, 500)
    }
}

/// A typed SQL parameter or column value. Nulls are typed (`Text(None)`) because PostgreSQL
/// needs a type for every parameter.
///
/// Storage conventions: PostgreSQL uses native `uuid`, `timestamptz` and `jsonb`; SQLite stores
/// UUIDs as hyphenated lowercase TEXT, times as RFC 3339 TEXT with exactly six fractional digits
/// and a `Z` (so text order is time order) and JSON as TEXT.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    /// BOOLEAN (SQLite INTEGER 0/1).
    Bool(Option<bool>),
    /// BIGINT / INTEGER.
    Int(Option<i64>),
    /// DOUBLE PRECISION / REAL.
    Float(Option<f64>),
    /// TEXT.
    Text(Option<String>),
    /// UUID.
    Uuid(Option<Uuid>),
    /// TIMESTAMPTZ, always UTC.
    Time(Option<OffsetDateTime>),
    /// JSONB.
    Json(Option<Json>),
    /// BYTEA / BLOB.
    Bytes(Option<Vec<u8>>),
}

macro_rules! val_from {
    ($($t:ty => $v:ident),*) => {$(
        impl From<$t> for Val { fn from(x: $t) -> Self { Val::$v(Some(x.into())) } }
        impl From<Option<$t>> for Val { fn from(x: Option<$t>) -> Self { Val::$v(x.map(Into::into)) } }
    )*};
}
val_from!(bool => Bool, i64 => Int, f64 => Float, String => Text, &str => Text, Uuid => Uuid,
    OffsetDateTime => Time, Json => Json, Vec<u8> => Bytes);

macro_rules! id_val {
    ($($t:ty),*) => {$(
        impl From<$t> for Val { fn from(x: $t) -> Self { Val::Uuid(Some(x.0)) } }
        impl From<Option<$t>> for Val { fn from(x: Option<$t>) -> Self { Val::Uuid(x.map(|i| i.0)) } }
    )*};
}
use casegate_domain::ids::*;
id_val!(TenantId, UserId, ApiKeyId, SessionId, CaseId, PartyId);

/// A WHERE clause being built for a filtered list: it starts with the tenant as `$1`, and each
/// `?` of a pushed condition becomes the next numbered placeholder, bound to the next value.
/// Conditions are fixed SQL text; only values come from input.
pub struct Where {
    clauses: Vec<String>,
    args: Vec<Val>,
}

impl Where {
    /// `<column> = $1` with `tenant` bound.
    pub fn tenant(column: &str, tenant: TenantId) -> Self {
        Self {
            clauses: vec![format!("{column} = $1")],
            args: vec![tenant.into()],
        }
    }
    /// Adds a condition with one value per `?`, in order.
    pub fn push(&mut self, clause: &str, vals: impl IntoIterator<Item = Val>) {
        let mut clause = clause.to_string();
        for v in vals {
            self.args.push(v);
            clause = clause.replacen('?', &format!("${}", self.args.len()), 1);
        }
        self.clauses.push(clause);
    }
    /// The conditions joined with `AND`, and their arguments.
    pub fn finish(self) -> (String, Vec<Val>) {
        (self.clauses.join(" AND "), self.args)
    }
}

/// Binds `limit` and `offset` after `args` (a finished [`Where`]'s) and answers the matching
/// `LIMIT $n OFFSET $m` for a page of a filtered list.
pub fn page_clause(args: &mut Vec<Val>, limit: i64, offset: i64) -> String {
    args.push(limit.into());
    args.push(offset.into());
    format!("LIMIT ${} OFFSET ${}", args.len() - 1, args.len())
}

/// Binds `vals` after `args` and answers their placeholders as one row, `($n, $n+1, …)`: a
/// row of a multi-row `VALUES` list, or a key of `(a, b) IN (…)`.
pub fn bind_row(args: &mut Vec<Val>, vals: impl IntoIterator<Item = Val>) -> String {
    let first = args.len() + 1;
    args.extend(vals);
    let marks: Vec<String> = (first..=args.len()).map(|i| format!("${i}")).collect();
    format!("({})", marks.join(", "))
}

/// `items` as multi-row `VALUES` lists, one per statement, sized for dialect `d`
/// ([`Dialect::rows_per_statement`]): each answer is the rows' text, `($2, $3, …), (…)`, and
/// its arguments, `lead` first (bound as `$1…`, the same in every statement), then each
/// item's `row`.
pub fn value_lists<T, const N: usize>(
    d: Dialect,
    items: &[T],
    lead: &[Val],
    row: impl FnMut(&T) -> [Val; N],
) -> Vec<(String, Vec<Val>)> {
    value_lists_of(d, items, lead, N, row)
}

/// [`value_lists`] for rows whose width is known only at run time: `row` gives `width`
/// values per item, and is called once per item, in order.
pub fn value_lists_of<T, R: IntoIterator<Item = Val>>(
    d: Dialect,
    items: &[T],
    lead: &[Val],
    width: usize,
    mut row: impl FnMut(&T) -> R,
) -> Vec<(String, Vec<Val>)> {
    items
        .chunks(d.rows_per_statement(width))
        .map(|chunk| {
            let mut args = Vec::with_capacity(lead.len() + chunk.len() * width);
            args.extend_from_slice(lead);
            let rows: Vec<String> = chunk.iter().map(|t| bind_row(&mut args, row(t))).collect();
            (rows.join(", "), args)
        })
        .collect()
}

/// Formats a time the way SQLite stores it (see [`Val`]): the wire format.
pub use casegate_domain::clock::wire_time as sqlite_time;

/// One result row: column names shared by all rows of a result, values decoded by the backend.
#[derive(Clone, Debug)]
pub struct Row {
    /// Column names in select order, shared by every row of one result.
    pub columns: Arc<[String]>,
    /// The values, in column order.
    pub values: Vec<Val>,
}

/// A decoding error naming the column and the kinds involved, never the value (which may be an
/// email or a secret hash, and ends up in the log).
fn bad(col: &str, want: &str, got: &Val) -> StoreError {
    let kind = match got {
        Val::Bool(_) => "boolean",
        Val::Int(_) => "integer",
        Val::Float(_) => "float",
        Val::Text(_) => "text",
        Val::Uuid(_) => "uuid",
        Val::Time(_) => "timestamp",
        Val::Json(_) => "json",
        Val::Bytes(_) => "bytes",
    };
    StoreError::Other(format!("column {col}: expected {want}, found {kind}"))
}

fn no_column(col: &str) -> StoreError {
    StoreError::Other(format!("no column {col}"))
}

fn null(col: &str) -> StoreError {
    StoreError::Other(format!("column {col} is null"))
}

/// The typed reads of one value, shared by [`Row`] (which clones the value it reads) and
/// [`Reader`] (which takes it). Each turns the backend's value of column `col` into the Rust
/// type the store wants, accepting SQLite's storage conventions (see [`Val`]).
mod conv {
    use super::{Json, OffsetDateTime, StoreResult, Uuid, Val, bad};

    pub fn opt_uuid(col: &str, v: Val) -> StoreResult<Option<Uuid>> {
        match v {
            Val::Uuid(u) => Ok(u),
            Val::Text(None) | Val::Bytes(None) | Val::Int(None) => Ok(None),
            Val::Text(Some(s)) => Uuid::parse_str(&s)
                .map(Some)
                .map_err(|_| bad(col, "uuid", &Val::Text(None))),
            v => Err(bad(col, "uuid", &v)),
        }
    }
    pub fn opt_text(col: &str, v: Val) -> StoreResult<Option<String>> {
        match v {
            Val::Text(s) => Ok(s),
            Val::Int(None) | Val::Bytes(None) => Ok(None),
            v => Err(bad(col, "text", &v)),
        }
    }
    pub fn opt_int(col: &str, v: Val) -> StoreResult<Option<i64>> {
        match v {
            Val::Int(i) => Ok(i),
            Val::Text(None) => Ok(None),
            v => Err(bad(col, "integer", &v)),
        }
    }
    pub fn opt_float(col: &str, v: Val) -> StoreResult<Option<f64>> {
        match v {
            Val::Float(f) => Ok(f),
            Val::Int(i) => Ok(i.map(|i| i as f64)),
            Val::Text(None) => Ok(None),
            v => Err(bad(col, "float", &v)),
        }
    }
    pub fn bool(col: &str, v: Val) -> StoreResult<bool> {
        match v {
            Val::Bool(Some(b)) => Ok(b),
            Val::Int(Some(i)) => Ok(i != 0),
            v => Err(bad(col, "boolean", &v)),
        }
    }
    pub fn opt_time(col: &str, v: Val) -> StoreResult<Option<OffsetDateTime>> {
        match v {
            Val::Time(t) => Ok(t),
            Val::Text(None) | Val::Int(None) => Ok(None),
            Val::Text(Some(s)) => {
                OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
                    .map(Some)
                    .map_err(|_| bad(col, "timestamp", &Val::Text(None)))
            }
            v => Err(bad(col, "timestamp", &v)),
        }
    }
    pub fn json(col: &str, v: Val) -> StoreResult<Json> {
        match v {
            Val::Json(j) => Ok(j.unwrap_or(Json::Null)),
            Val::Text(None) | Val::Int(None) => Ok(Json::Null),
            Val::Text(Some(s)) => {
                serde_json::from_str(&s).map_err(|_| bad(col, "json", &Val::Text(None)))
            }
            v => Err(bad(col, "json", &v)),
        }
    }
}

/// The typed getters, each defined once over `self.value(col)`: [`Row`]'s clone the value,
/// [`Reader`]'s take it.
macro_rules! getters {
    ($s:ty) => {
        /// A nullable UUID (native, or TEXT in SQLite).
        pub fn opt_uuid(self: $s, col: &str) -> StoreResult<Option<Uuid>> {
            conv::opt_uuid(col, self.value(col)?)
        }
        /// A non-null UUID.
        pub fn uuid(self: $s, col: &str) -> StoreResult<Uuid> {
            self.opt_uuid(col)?.ok_or_else(|| null(col))
        }
        /// A nullable string.
        pub fn opt_text(self: $s, col: &str) -> StoreResult<Option<String>> {
            conv::opt_text(col, self.value(col)?)
        }
        /// A non-null string.
        pub fn text(self: $s, col: &str) -> StoreResult<String> {
            self.opt_text(col)?.ok_or_else(|| null(col))
        }
        /// A nullable integer.
        pub fn opt_int(self: $s, col: &str) -> StoreResult<Option<i64>> {
            conv::opt_int(col, self.value(col)?)
        }
        /// A non-null integer.
        pub fn int(self: $s, col: &str) -> StoreResult<i64> {
            self.opt_int(col)?.ok_or_else(|| null(col))
        }
        /// A nullable float (integers widen).
        pub fn opt_float(self: $s, col: &str) -> StoreResult<Option<f64>> {
            conv::opt_float(col, self.value(col)?)
        }
        /// A boolean (SQLite: INTEGER 0/1).
        pub fn bool(self: $s, col: &str) -> StoreResult<bool> {
            conv::bool(col, self.value(col)?)
        }
        /// A nullable timestamp (native, or RFC 3339 TEXT in SQLite).
        pub fn opt_time(self: $s, col: &str) -> StoreResult<Option<OffsetDateTime>> {
            conv::opt_time(col, self.value(col)?)
        }
        /// A non-null timestamp.
        pub fn time(self: $s, col: &str) -> StoreResult<OffsetDateTime> {
            self.opt_time(col)?.ok_or_else(|| null(col))
        }
        /// A JSON document (native, or TEXT in SQLite); SQL NULL reads as JSON null.
        pub fn json(self: $s, col: &str) -> StoreResult<Json> {
            conv::json(col, self.value(col)?)
        }
    };
}

impl Row {
    /// The value of column `col`, cloned.
    fn value(&self, col: &str) -> StoreResult<Val> {
        self.columns
            .iter()
            .position(|c| c == col)
            .map(|i| self.values[i].clone())
            .ok_or_else(|| no_column(col))
    }
    /// Reads this row's values by moving them out, for decoding a wide row once.
    pub fn reader(self) -> Reader {
        Reader {
            columns: self.columns,
            values: self.values,
            next: 0,
        }
    }
    getters!(&Self);
}

/// A row being decoded into a record: each getter moves its value out (no copy of a string or
/// a JSON document), and finds the column starting where the last one was found, so reading a
/// row in select order compares one name per column. A column read twice reads as SQL NULL
/// the second time.
#[derive(Debug)]
pub struct Reader {
    columns: Arc<[String]>,
    values: Vec<Val>,
    next: usize,
}

impl Reader {
    fn value(&mut self, col: &str) -> StoreResult<Val> {
        let n = self.columns.len();
        let i = (0..n)
            .map(|k| (self.next + k) % n)
            .find(|&i| self.columns[i] == col)
            .ok_or_else(|| no_column(col))?;
        self.next = i + 1;
        Ok(std::mem::replace(&mut self.values[i], Val::Text(None)))
    }
    getters!(&mut Self);
}

/// A connection: pooled, or inside a transaction. All SQL goes through these methods, always
/// with bound parameters; SQL text is never assembled from input (a PostgreSQL transaction
/// joins the store's own deferred statements, [`joined_writes`]).
#[async_trait]
pub trait Conn: Send {
    /// Which SQL dialect this connection speaks.
    fn dialect(&self) -> Dialect;
    /// Runs a statement; returns the number of rows affected.
    async fn execute(&mut self, sql: &str, args: &[Val]) -> StoreResult<u64>;
    /// Runs a query and returns every row.
    async fn fetch_all(&mut self, sql: &str, args: &[Val]) -> StoreResult<Vec<Row>>;
    /// Runs a query and returns its first row, if any.
    async fn fetch_optional(&mut self, sql: &str, args: &[Val]) -> StoreResult<Option<Row>> {
        Ok(self.fetch_all(sql, args).await?.into_iter().next())
    }
    /// Runs a query that must return a row; `NotFound` otherwise.
    async fn fetch_one(&mut self, sql: &str, args: &[Val]) -> StoreResult<Row> {
        self.fetch_optional(sql, args)
            .await?
            .ok_or(StoreError::NotFound)
    }
    /// Runs a write (`INSERT`, `UPDATE` or `DELETE` without `RETURNING`) that must change
    /// exactly `rows` rows, and whose answer the caller does not need before its next
    /// statement. A PostgreSQL transaction queues it, and sends what it queued before its next
    /// statement or its commit as one statement ([`joined_writes`]): one round trip for all of
    /// them, each round trip being a wake-up of the backend and of the server. Elsewhere it runs
    /// at once. So writes queued together must not depend on one another: they run under one
    /// snapshot, see none of each other's changes, and may not change the same row twice. A write
    /// that changes another number of rows fails the statement it went out with, and with it
    /// the transaction ([`StoreError::Other`]: the callers queue only writes that cannot miss).
    async fn defer(&mut self, sql: &str, args: Vec<Val>, rows: u64) -> StoreResult<()> {
        self.defer_with(&[], sql, args, rows).await
    }
    /// [`Conn::defer`] of a write that reads `with`: `WITH` items, each a name and a statement
    /// (a locking read, or a write with its `RETURNING`), that the write and every later item
    /// refer to as `{name}`. All of them share the write's parameters. Two writes with `with`
    /// items never go out in one statement: such a write reads rows to change them (a chain
    /// head, say), and a second one in the same statement would read them unchanged. The items
    /// run as written on every backend: a caller with PostgreSQL-only items (`FOR UPDATE`)
    /// checks the dialect first.
    async fn defer_with(
        &mut self,
        with: &'static [(&'static str, &'static str)],
        sql: &str,
        args: Vec<Val>,
        rows: u64,
    ) -> StoreResult<()> {
        let changed = self.execute(&with_items(with, sql), &args).await?;
        expect_rows(changed, rows)
    }
}

/// `sql` preceded by the `WITH` items `with` (see [`Conn::defer_with`]).
pub fn with_items(with: &[(&str, &str)], sql: &str) -> String {
    let (items, sql) = named_items(with, sql, "");
    if items.is_empty() {
        return sql;
    }
    format!("WITH {} {sql}", items.join(", "))
}

/// The `WITH` items `with` as `<prefix><name> AS (<statement>)`, and `sql`, with every `{name}`
/// in them written as `<prefix><name>`.
fn named_items(with: &[(&str, &str)], sql: &str, prefix: &str) -> (Vec<String>, String) {
    let names: Vec<(String, String)> = with
        .iter()
        .map(|(name, _)| (format!("{{{name}}}"), format!("{prefix}{name}")))
        .collect();
    let named = |text: &str| {
        names
            .iter()
            .fold(text.to_string(), |t, (from, to)| t.replace(from, to))
    };
    let items = with
        .iter()
        .map(|(name, item)| format!("{prefix}{name} AS ({})", named(item)))
        .collect();
    (items, named(sql))
}

/// `Ok` when a write queued with [`Conn::defer`] changed the `rows` it was queued for.
pub fn expect_rows(changed: u64, rows: u64) -> StoreResult<()> {
    if changed == rows {
        return Ok(());
    }
    Err(StoreError::Other(format!(
        "a deferred write changed {changed} rows instead of {rows}"
    )))
}

/// A write queued by [`Conn::defer`].
#[derive(Debug)]
pub struct Deferred {
    /// The `WITH` items the statement reads ([`Conn::defer_with`]).
    pub with: &'static [(&'static str, &'static str)],
    /// The statement, parameters numbered from `$1`.
    pub sql: String,
    /// Its arguments.
    pub args: Vec<Val>,
    /// How many rows it must change.
    pub rows: u64,
}

/// The writes `w` as one PostgreSQL statement, `WITH w0 AS (<write 0> RETURNING 1), w1 AS (…)
/// SELECT (SELECT count(*) FROM w0) AS n0, …`, each write's parameters renumbered after those
/// of the writes before it; and the statement's arguments. Each `nI` is the number of rows
/// write `I` changed. A write's own `WITH` items come just before it, named `wI_<name>`.
/// (PostgreSQL runs every data-modifying `WITH` item to completion, whether or not the outer
/// query reads it.)
pub fn joined_writes(w: Vec<Deferred>) -> (String, Vec<Val>) {
    let mut sql = String::from("WITH ");
    let mut counts = String::from(" SELECT ");
    let mut args = Vec::new();
    for (i, d) in w.into_iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
            counts.push_str(", ");
        }
        let (items, write) = named_items(d.with, &d.sql, &format!("w{i}_"));
        for item in items {
            renumber(&item, args.len(), &mut sql);
            sql.push_str(", ");
        }
        sql.push_str(&format!("w{i} AS ("));
        renumber(&write, args.len(), &mut sql);
        sql.push_str(" RETURNING 1)");
        counts.push_str(&format!("(SELECT count(*) FROM w{i}) AS n{i}"));
        args.extend(d.args);
    }
    sql.push_str(&counts);
    (sql, args)
}

/// Appends `sql` to `out` with each parameter `$N` outside a quoted literal written as
/// `$(N + offset)`. (Hand-written: the statements are the store's own, with `'…'` literals and
/// no dollar quoting, so this is the whole grammar involved.)
fn renumber(sql: &str, offset: usize, out: &mut String) {
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(ch) = chars.next() {
        out.push(ch);
        if ch == '\'' {
            quoted = !quoted;
        } else if ch == '$' && !quoted {
            let mut n = 0usize;
            let mut digits = false;
            while let Some(&d) = chars.peek() {
                let Some(v) = d.to_digit(10) else { break };
                n = n * 10 + v as usize;
                digits = true;
                chars.next();
            }
            if digits {
                out.push_str(&(n + offset).to_string());
            }
        }
    }
}

/// An open transaction. Dropping it without `commit` rolls it back, so an error anywhere in a
/// command leaves nothing half-applied (DESIGN.md principle 3).
#[async_trait]
pub trait Tx: Conn {
    /// Makes every change of the transaction durable.
    async fn commit(self: Box<Self>) -> StoreResult<()>;
    /// Undoes the transaction now and releases its locks before answering. (Dropping a
    /// transaction also undoes it, but only when its connection goes back to the pool, so
    /// its row locks may outlive the drop for a moment.)
    async fn rollback(self: Box<Self>) -> StoreResult<()>;
}

/// Connection-pool figures for the `/metrics` gauges.
#[derive(Clone, Copy, Debug, Default)]
pub struct PoolStats {
    /// Open connections.
    pub size: u32,
    /// Of those, idle ones.
    pub idle: u32,
    /// The configured maximum.
    pub max: u32,
}

/// What a command waits for before its first statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// A pooled connection, no transaction ([`Database::conn`]).
    Connection,
    /// A transaction, begun ([`Database::begin`]; on SQLite the writer's turn too, and the
    /// hourly `PRAGMA optimize` when it falls due then).
    Transaction,
}

/// Measures a wait for the database from its creation to its drop, and records it in
/// `/metrics` as `db_acquire_seconds{database, kind}` (kind `connection` or `transaction`):
/// given up or timed out too, since a wait that ends in an error or in the request's
/// cancellation still drops it. The pool gauges show how many connections are open or idle at
/// the moment of a scrape; this shows the pool's saturation as commands feel it (at 32
/// concurrent moves on a 16-connection pool, over half of a move's time).
pub struct Waiting {
    database: &'static str,
    kind: Wait,
    since: std::time::Instant,
}

impl Waiting {
    /// A wait of `kind` for database `d`, starting now.
    pub fn start(d: Dialect, kind: Wait) -> Self {
        let database = match d {
            Dialect::Postgres => "postgres",
            Dialect::Sqlite => "sqlite",
        };
        Self {
            database,
            kind,
            since: std::time::Instant::now(),
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let kind = match self.kind {
            Wait::Connection => "connection",
            Wait::Transaction => "transaction",
        };
        metrics::histogram!("db_acquire_seconds", "database" => self.database, "kind" => kind)
            .record(self.since.elapsed());
    }
}

/// A database: a pool of connections with migrations applied.
#[async_trait]
pub trait Database: Send + Sync + 'static {
    /// The dialect of every connection of this database.
    fn dialect(&self) -> Dialect;
    /// A pooled connection for reads (each statement commits on its own).
    async fn conn(&self) -> StoreResult<Box<dyn Conn>>;
    /// Starts a write transaction (SQLite: `BEGIN IMMEDIATE`, so writers queue instead of
    /// failing on lock upgrade).
    async fn begin(&self) -> StoreResult<Box<dyn Tx>>;
    /// Applies the embedded migrations that are not yet applied.
    async fn migrate(&self) -> StoreResult<()>;
    /// Whether the database answers and every embedded migration is applied (`/readyz`).
    async fn ready(&self) -> StoreResult<bool>;
    /// Pool figures.
    fn pool_stats(&self) -> PoolStats;
    /// Closes the pool, waiting for connections to be returned.
    async fn close(&self);
    /// The messages [`publish`]ed on `channel` by every process sharing this database, from now
    /// on: `Some(payload)` for each, `None` when the feed was interrupted and messages may have
    /// been missed. `None` for the whole feed where one process owns the database (SQLite).
    async fn subscribe(&self, _channel: &str) -> StoreResult<Option<Subscription>> {
        Ok(None)
    }
}

/// A feed of published messages (see [`Database::subscribe`]).
pub type Subscription = tokio::sync::mpsc::Receiver<Option<String>>;

/// Publishes `payload` on `channel` to every process sharing the database, when the
/// transaction `c` commits (PostgreSQL `pg_notify`; nothing on SQLite, which one process owns).
pub async fn publish(c: &mut dyn Conn, channel: &str, payload: &str) -> StoreResult<()> {
    if c.dialect() == Dialect::Postgres {
        c.execute(
            "SELECT pg_notify($1, $2)",
            &[channel.into(), payload.into()],
        )
        .await?;
    }
    Ok(())
}

/// Whether exactly the `expected` migration versions are applied successfully (`/readyz`).
/// Both backends keep sqlx's `_sqlx_migrations` table.
pub async fn migrations_applied(c: &mut dyn Conn, expected: &[i64]) -> StoreResult<bool> {
    let rows = c
        .fetch_all(
            "SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version",
            &[],
        )
        .await?;
    let applied: Vec<i64> = rows
        .iter()
        .map(|r| r.int("version"))
        .collect::<StoreResult<_>>()?;
    Ok(applied == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_writes_number_each_write_after_the_ones_before() {
        let w = |sql: &str, args: Vec<Val>| Deferred {
            with: &[],
            sql: sql.into(),
            args,
            rows: 1,
        };
        let (sql, args) = joined_writes(vec![
            w(
                "INSERT INTO a VALUES ($1, $2)",
                vec![1_i64.into(), 2_i64.into()],
            ),
            w(
                "UPDATE b SET x = $2 WHERE id = $1 AND y = $10 AND z <> '$1 stays' \
                 AND q <> 'it''s $2'",
                (3..=12).map(|i: i64| i.into()).collect(),
            ),
        ]);
        assert_eq!(
            sql,
            "WITH w0 AS (INSERT INTO a VALUES ($1, $2) RETURNING 1), \
             w1 AS (UPDATE b SET x = $4 WHERE id = $3 AND y = $12 AND z <> '$1 stays' \
             AND q <> 'it''s $2' RETURNING 1) \
             SELECT (SELECT count(*) FROM w0) AS n0, (SELECT count(*) FROM w1) AS n1"
        );
        assert_eq!(args.len(), 12);
        assert!(expect_rows(1, 1).is_ok());
        assert!(matches!(expect_rows(0, 1), Err(StoreError::Other(_))));
    }

    #[test]
    fn the_with_items_of_a_write_are_named_after_it_and_share_its_parameters() {
        const WITH: &[(&str, &str)] = &[
            ("head", "SELECT seq FROM h WHERE t = $1 FOR UPDATE"),
            (
                "ins",
                "INSERT INTO e SELECT $1, seq + 1, $2 FROM {head} RETURNING seq",
            ),
        ];
        const MOVE: &str = "UPDATE h SET seq = i.seq FROM {ins} i WHERE t = $1";
        assert_eq!(
            with_items(WITH, MOVE),
            "WITH head AS (SELECT seq FROM h WHERE t = $1 FOR UPDATE), \
             ins AS (INSERT INTO e SELECT $1, seq + 1, $2 FROM head RETURNING seq) \
             UPDATE h SET seq = i.seq FROM ins i WHERE t = $1"
        );
        assert_eq!(with_items(&[], MOVE), MOVE);
        let (sql, args) = joined_writes(vec![
            Deferred {
                with: &[],
                sql: "INSERT INTO a VALUES ($1)".into(),
                args: vec![1_i64.into()],
                rows: 1,
            },
            Deferred {
                with: WITH,
                sql: MOVE.into(),
                args: vec![2_i64.into(), 3_i64.into()],
                rows: 1,
            },
        ]);
        assert_eq!(
            sql,
            "WITH w0 AS (INSERT INTO a VALUES ($1) RETURNING 1), \
             w1_head AS (SELECT seq FROM h WHERE t = $2 FOR UPDATE), \
             w1_ins AS (INSERT INTO e SELECT $2, seq + 1, $3 FROM w1_head RETURNING seq), \
             w1 AS (UPDATE h SET seq = i.seq FROM w1_ins i WHERE t = $2 RETURNING 1) \
             SELECT (SELECT count(*) FROM w0) AS n0, (SELECT count(*) FROM w1) AS n1"
        );
        assert_eq!(args.len(), 3);
    }
}
