//! The PostgreSQL backend, for production and for several `casegate serve` processes sharing
//! one database. Native `uuid`, `timestamptz` and `jsonb` columns.
//!
//! # Layout
//! - [`PgDb`]: the [`Database`] implementation (pool, migrations, readiness, pool stats).
//! - `bind` / `decode`: the only PostgreSQL-specific value handling; the queries themselves live
//!   in `casegate-store`.
//! - `migrations/`: the embedded schema, applied at start-up (sqlx takes an advisory lock, so
//!   several processes starting at once migrate exactly once).
//! - [`testing`]: a uniquely named database per test, dropped afterwards.
#![forbid(unsafe_code)]

use async_trait::async_trait;
use casegate_store::conn::{Wait, Waiting};
use casegate_store::{
    Conn, Database, Deferred, Dialect, PoolStats, Row, StoreError, StoreResult, Subscription, Tx,
    Val, expect_rows, joined_writes, with_items,
};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{
    AssertSqlSafe, Column, PgConnection, Postgres, Row as _, SqlSafeStr, Transaction, TypeInfo,
    ValueRef,
};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// The embedded migrations, in order: (version, description, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("../migrations/0001_foundation.sql"),
    ),
    (2, "audit", include_str!("../migrations/0002_audit.sql")),
    (
        3,
        "exports_outbox",
        include_str!("../migrations/0003_exports_outbox.sql"),
    ),
    (4, "cases", include_str!("../migrations/0004_cases.sql")),
    (
        5,
        "approvals",
        include_str!("../migrations/0005_approvals.sql"),
    ),
    (
        6,
        "tasks_post_actions",
        include_str!("../migrations/0006_tasks_post_actions.sql"),
    ),
    (
        7,
        "webhooks",
        include_str!("../migrations/0007_webhooks.sql"),
    ),
    (
        8,
        "notification_email",
        include_str!("../migrations/0008_notification_email.sql"),
    ),
    (9, "sars", include_str!("../migrations/0009_sars.sql")),
    (
        10,
        "sar_filing_record",
        include_str!("../migrations/0010_sar_filing_record.sql"),
    ),
    (
        11,
        "webhook_claim_index",
        include_str!("../migrations/0011_webhook_claim_index.sql"),
    ),
    (
        12,
        "webhook_order_index",
        include_str!("../migrations/0012_webhook_order_index.sql"),
    ),
    (
        13,
        "plan_indexes",
        include_str!("../migrations/0013_plan_indexes.sql"),
    ),
    (
        14,
        "outbox_due_indexes",
        include_str!("../migrations/0014_outbox_due_indexes.sql"),
    ),
    (
        15,
        "case_search",
        include_str!("../migrations/0015_case_search.sql"),
    ),
    (
        16,
        "outbox_unused_indexes",
        include_str!("../migrations/0016_outbox_unused_indexes.sql"),
    ),
    (
        17,
        "outbox_plain_body",
        include_str!("../migrations/0017_outbox_plain_body.sql"),
    ),
    (
        18,
        "outbox_retention",
        include_str!("../migrations/0018_outbox_retention.sql"),
    ),
];

fn migrator() -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|(v, d, sql)| {
                Migration::new(
                    *v,
                    (*d).into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// Classifies a driver error (the one place sqlx errors are translated).
fn map_err(e: sqlx::Error) -> StoreError {
    use sqlx::error::ErrorKind;
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(d) => match d.kind() {
            ErrorKind::UniqueViolation | ErrorKind::ForeignKeyViolation => StoreError::Conflict {
                constraint: d
                    .constraint()
                    .map(str::to_string)
                    .unwrap_or_else(|| d.message().to_string()),
            },
            // serialization_failure, deadlock_detected, too_many_connections, admin_shutdown
            _ if matches!(
                d.code().as_deref(),
                Some("40001" | "40P01" | "53300" | "57P01")
            ) =>
            {
                StoreError::Unavailable(d.message().to_string())
            }
            _ => StoreError::Other(d.message().to_string()),
        },
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(e.to_string())
        }
        other => StoreError::Other(other.to_string()),
    }
}

type Query<'q> = sqlx::query::Query<'q, Postgres, <Postgres as sqlx::Database>::Arguments>;

fn bind<'q>(q: Query<'q>, v: &Val) -> Query<'q> {
    match v {
        Val::Bool(x) => q.bind(*x),
        Val::Int(x) => q.bind(*x),
        Val::Float(x) => q.bind(*x),
        Val::Text(x) => q.bind(x.clone()),
        Val::Uuid(x) => q.bind(*x),
        Val::Time(x) => q.bind(*x),
        Val::Json(x) => q.bind(x.clone().map(Json)),
        Val::Bytes(x) => q.bind(x.clone()),
    }
}

/// How a column's values are read, chosen once per result from the column's type.
#[derive(Clone, Copy)]
enum Kind {
    Uuid,
    Int8,
    Int4,
    Int2,
    Bool,
    Float8,
    Float4,
    Time,
    Json,
    Bytes,
    Text,
}

fn kind_of(type_name: &str) -> Option<Kind> {
    Some(match type_name {
        "UUID" => Kind::Uuid,
        "INT8" => Kind::Int8,
        "INT4" => Kind::Int4,
        "INT2" => Kind::Int2,
        "BOOL" => Kind::Bool,
        "FLOAT8" => Kind::Float8,
        "FLOAT4" => Kind::Float4,
        "TIMESTAMPTZ" => Kind::Time,
        "JSONB" | "JSON" => Kind::Json,
        "BYTEA" => Kind::Bytes,
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => Kind::Text,
        _ => return None,
    })
}

/// Decodes one non-null value as `T`. The column's type was matched once for the whole result,
/// so each value goes straight to its decoder instead of through `try_get`, which looks the
/// column up again and re-checks type compatibility for every value (a page of 50 cases holds
/// 1,550 of them).
fn value<'r, T: sqlx::Decode<'r, Postgres>>(
    raw: sqlx::postgres::PgValueRef<'r>,
    column: &str,
) -> StoreResult<T> {
    T::decode(raw).map_err(|source| {
        map_err(sqlx::Error::ColumnDecode {
            index: column.to_string(),
            source,
        })
    })
}

fn decode(rows: Vec<PgRow>) -> StoreResult<Vec<Row>> {
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let columns: Arc<[String]> = first
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let kinds: Vec<Option<Kind>> = first
        .columns()
        .iter()
        .map(|c| kind_of(c.type_info().name()))
        .collect();
    rows.iter()
        .map(|r| {
            let mut values = Vec::with_capacity(columns.len());
            for (i, &kind) in kinds.iter().enumerate() {
                let raw = r.try_get_raw(i).map_err(map_err)?;
                if raw.is_null() {
                    values.push(Val::Text(None));
                    continue;
                }
                let Some(kind) = kind else {
                    return Err(StoreError::Other(format!(
                        "unsupported column type {} for {}",
                        first.columns()[i].type_info().name(),
                        columns[i]
                    )));
                };
                let c = &columns[i];
                values.push(match kind {
                    Kind::Uuid => Val::Uuid(Some(value::<Uuid>(raw, c)?)),
                    Kind::Int8 => Val::Int(Some(value::<i64>(raw, c)?)),
                    Kind::Int4 => Val::Int(Some(value::<i32>(raw, c)?.into())),
                    Kind::Int2 => Val::Int(Some(value::<i16>(raw, c)?.into())),
                    Kind::Bool => Val::Bool(Some(value::<bool>(raw, c)?)),
                    Kind::Float8 => Val::Float(Some(value::<f64>(raw, c)?)),
                    Kind::Float4 => Val::Float(Some(value::<f32>(raw, c)?.into())),
                    Kind::Time => Val::Time(Some(value::<OffsetDateTime>(raw, c)?)),
                    Kind::Json => Val::Json(Some(value::<Json<serde_json::Value>>(raw, c)?.0)),
                    Kind::Bytes => Val::Bytes(Some(value::<Vec<u8>>(raw, c)?)),
                    Kind::Text => Val::Text(Some(value::<String>(raw, c)?)),
                });
            }
            Ok(Row {
                columns: columns.clone(),
                values,
            })
        })
        .collect()
}

async fn execute(c: &mut PgConnection, sql: &str, args: &[Val]) -> StoreResult<u64> {
    let q = args.iter().fold(sqlx::query(AssertSqlSafe(sql)), bind);
    q.execute(c)
        .await
        .map(|r| r.rows_affected())
        .map_err(map_err)
}

async fn fetch_optional(c: &mut PgConnection, sql: &str, args: &[Val]) -> StoreResult<Option<Row>> {
    let q = args.iter().fold(sqlx::query(AssertSqlSafe(sql)), bind);
    match q.fetch_optional(c).await.map_err(map_err)? {
        Some(r) => Ok(decode(vec![r])?.pop()),
        None => Ok(None),
    }
}

async fn fetch_all(c: &mut PgConnection, sql: &str, args: &[Val]) -> StoreResult<Vec<Row>> {
    let q = args.iter().fold(sqlx::query(AssertSqlSafe(sql)), bind);
    decode(q.fetch_all(c).await.map_err(map_err)?)
}

/// A pooled connection.
struct PooledConn(PoolConnection<Postgres>);

#[async_trait]
impl Conn for PooledConn {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
    async fn execute(&mut self, sql: &str, args: &[Val]) -> StoreResult<u64> {
        execute(&mut self.0, sql, args).await
    }
    async fn fetch_all(&mut self, sql: &str, args: &[Val]) -> StoreResult<Vec<Row>> {
        fetch_all(&mut self.0, sql, args).await
    }
    async fn fetch_optional(&mut self, sql: &str, args: &[Val]) -> StoreResult<Option<Row>> {
        fetch_optional(&mut self.0, sql, args).await
    }
}

/// A transaction (READ COMMITTED; commands take row locks where they need them), and the
/// writes [`Conn::defer`] queued in it, sent joined before its next statement or its commit.
struct PgTx {
    tx: Transaction<'static, Postgres>,
    deferred: Vec<Deferred>,
    /// Why queued writes failed, once they have: every later statement and the commit fail
    /// with it, so a caller that swallows the error of the statement that sent them cannot
    /// carry on and commit the transaction without them.
    failed: Option<String>,
}

impl PgTx {
    /// Sends the queued writes (one alone as it is, several as one statement), unless an
    /// earlier send failed.
    async fn flush(&mut self) -> StoreResult<()> {
        if let Some(why) = &self.failed {
            return Err(StoreError::Other(format!(
                "the transaction's deferred writes failed: {why}"
            )));
        }
        let w = std::mem::take(&mut self.deferred);
        let sent = self.send(w).await;
        if let Err(e) = &sent {
            self.failed = Some(e.to_string());
        }
        sent
    }

    async fn send(&mut self, mut w: Vec<Deferred>) -> StoreResult<()> {
        if w.len() <= 1 {
            return match w.pop() {
                Some(d) => {
                    let sql = with_items(d.with, &d.sql);
                    expect_rows(execute(&mut self.tx, &sql, &d.args).await?, d.rows)
                }
                None => Ok(()),
            };
        }
        let rows: Vec<u64> = w.iter().map(|d| d.rows).collect();
        let (sql, args) = joined_writes(w);
        let counts = fetch_optional(&mut self.tx, &sql, &args)
            .await?
            .ok_or(StoreError::NotFound)?;
        for (i, want) in rows.into_iter().enumerate() {
            expect_rows(counts.int(&format!("n{i}"))? as u64, want)
                .map_err(|e| StoreError::Other(format!("write {i} of {sql:.60}…: {e}")))?;
        }
        Ok(())
    }
}

#[async_trait]
impl Conn for PgTx {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
    async fn execute(&mut self, sql: &str, args: &[Val]) -> StoreResult<u64> {
        self.flush().await?;
        execute(&mut self.tx, sql, args).await
    }
    async fn fetch_all(&mut self, sql: &str, args: &[Val]) -> StoreResult<Vec<Row>> {
        self.flush().await?;
        fetch_all(&mut self.tx, sql, args).await
    }
    async fn fetch_optional(&mut self, sql: &str, args: &[Val]) -> StoreResult<Option<Row>> {
        self.flush().await?;
        fetch_optional(&mut self.tx, sql, args).await
    }
    async fn defer_with(
        &mut self,
        with: &'static [(&'static str, &'static str)],
        sql: &str,
        args: Vec<Val>,
        rows: u64,
    ) -> StoreResult<()> {
        // What `joined_writes` can renumber: `$N` parameters and `'…'` literals only.
        for text in with.iter().map(|(_, item)| *item).chain([sql]) {
            debug_assert!(
                !text.contains('"')
                    && !text.contains("--")
                    && !text.contains("$$")
                    && !text.contains("E'"),
                "a deferred write with quoting joined_writes cannot renumber: {text}"
            );
        }
        debug_assert!(!sql.to_ascii_uppercase().contains("RETURNING"), "{sql}");
        // A write that reads (a chain head, say) goes out apart from another one that does.
        if !with.is_empty() && self.deferred.iter().any(|d| !d.with.is_empty()) {
            self.flush().await?;
        }
        self.deferred.push(Deferred {
            with,
            sql: sql.to_string(),
            args,
            rows,
        });
        Ok(())
    }
}

#[async_trait]
impl Tx for PgTx {
    async fn commit(mut self: Box<Self>) -> StoreResult<()> {
        self.flush().await?;
        self.tx.commit().await.map_err(map_err)
    }
    async fn rollback(self: Box<Self>) -> StoreResult<()> {
        self.tx.rollback().await.map_err(map_err)
    }
}

/// A pooled connection idle for longer than this is checked with a round trip before it is
/// handed out (the server may have restarted, or a proxy dropped the connection meanwhile); one
/// in steady use is not. sqlx's default checks every connection on every acquire: one more
/// round trip per transaction, before its `BEGIN`, each waking the backend. A connection that
/// broke while in use fails its request and is closed when it goes back (sqlx checks on
/// release), so the next request gets a new one. HikariCP's default is the same rule at 500 ms
/// (`aliveBypassWindowMs`).
const CHECK_IF_IDLE_FOR: Duration = Duration::from_millis(500);

/// The PostgreSQL database.
pub struct PgDb {
    /// The connection pool.
    pool: PgPool,
    /// Configured maximum pool size, reported in `/metrics`.
    max: u32,
}

impl PgDb {
    /// Connects to `url` (`postgres://…`).
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        Self::connect_checking(url, max_connections, CHECK_IF_IDLE_FOR).await
    }

    /// [`PgDb::connect`], checking a pooled connection before handing it out only once it has
    /// been idle for longer than `check_if_idle_for` (tests set it to show both sides).
    pub async fn connect_checking(
        url: &str,
        max_connections: u32,
        check_if_idle_for: Duration,
    ) -> StoreResult<Self> {
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("bad database URL: {e}")))?;
        let max = max_connections.max(1);
        let pool = PgPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > check_if_idle_for {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(opts)
            .await
            .map_err(map_err)?;
        Ok(Self { pool, max })
    }
}

#[async_trait]
impl Database for PgDb {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
    async fn conn(&self) -> StoreResult<Box<dyn Conn>> {
        let waiting = Waiting::start(Dialect::Postgres, Wait::Connection);
        let c = self.pool.acquire().await.map_err(map_err)?;
        drop(waiting);
        Ok(Box::new(PooledConn(c)))
    }
    async fn begin(&self) -> StoreResult<Box<dyn Tx>> {
        let waiting = Waiting::start(Dialect::Postgres, Wait::Transaction);
        let tx = self.pool.begin().await.map_err(map_err)?;
        drop(waiting);
        Ok(Box::new(PgTx {
            tx,
            deferred: Vec::new(),
            failed: None,
        }))
    }
    async fn migrate(&self) -> StoreResult<()> {
        migrator()
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Other(format!("migration failed: {e}")))
    }
    async fn ready(&self) -> StoreResult<bool> {
        let expected: Vec<i64> = MIGRATIONS.iter().map(|m| m.0).collect();
        casegate_store::conn::migrations_applied(&mut *self.conn().await?, &expected).await
    }
    fn pool_stats(&self) -> PoolStats {
        PoolStats {
            size: self.pool.size(),
            idle: self.pool.num_idle() as u32,
            max: self.max,
        }
    }
    async fn close(&self) {
        self.pool.close().await;
    }
    async fn subscribe(&self, channel: &str) -> StoreResult<Option<Subscription>> {
        // A connection of its own, outside the pool: it stays open for the process's life and
        // must not take a pooled connection (or hold up `close`).
        let own = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with((*self.pool.connect_options()).clone())
            .await
            .map_err(map_err)?;
        let mut listener = sqlx::postgres::PgListener::connect_with(&own)
            .await
            .map_err(map_err)?;
        listener.listen(channel).await.map_err(map_err)?;
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    // The subscriber is gone: close the connection.
                    _ = tx.closed() => break,
                    r = listener.try_recv() => match r {
                        Ok(Some(n)) => Some(n.payload().to_string()),
                        // The connection was lost (and is re-established): say so.
                        Ok(None) => None,
                        // Not reachable now: the subscriber hears of the gap, and the listener
                        // tries again shortly.
                        Err(_) => {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            None
                        }
                    },
                };
                if tx.send(next).await.is_err() {
                    break;
                }
            }
            drop(listener);
            own.close().await;
        });
        Ok(Some(rx))
    }
}

/// Fresh databases for tests: `casegate_test_<uuid>` on the server named by
/// `CASEGATE_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`),
/// dropped afterwards.
pub mod testing {
    use super::*;
    use casegate_store::conformance::TestDb;

    /// The maintenance database URL tests create their databases from.
    pub fn admin_url() -> String {
        std::env::var("CASEGATE_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
    }

    /// The URL of database `name` on the test server.
    pub fn url_for(name: &str) -> String {
        let admin = admin_url();
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .unwrap_or(admin);
        format!("{base}/{name}")
    }

    /// Creates an empty database and returns its name and URL.
    pub async fn create_database() -> (String, String) {
        let name = format!("casegate_test_{}", uuid::Uuid::new_v4().simple());
        let admin = PgDb::connect(&admin_url(), 1)
            .await
            .expect("PostgreSQL for tests (CASEGATE_TEST_DATABASE_URL)");
        let mut c = admin.conn().await.expect("admin connection");
        c.execute(&format!("CREATE DATABASE {name}"), &[])
            .await
            .expect("create test database");
        drop(c);
        admin.close().await;
        let url = url_for(&name);
        (name, url)
    }

    /// Drops a test database, disconnecting anyone still on it.
    pub async fn drop_database(name: String) {
        if let Ok(admin) = PgDb::connect(&admin_url(), 1).await {
            if let Ok(mut c) = admin.conn().await {
                let _ = c
                    .execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"), &[])
                    .await;
            }
            admin.close().await;
        }
    }

    /// A migrated database of its own.
    pub async fn fresh() -> TestDb {
        let (name, url) = create_database().await;
        let db = PgDb::connect(&url, 8).await.expect("connect test database");
        db.migrate().await.expect("migrate");
        TestDb::new(Arc::new(db), drop_database(name))
    }
}
