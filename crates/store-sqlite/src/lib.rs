//! The SQLite backend: the embedded default. One database file under the data directory, WAL
//! journal, a busy timeout so writers queue, and `BEGIN IMMEDIATE` for every write transaction.
//!
//! # Layout
//! - [`SqliteDb`]: the [`Database`] implementation (pool, migrations, readiness, pool stats).
//! - `bind` / `decode`: the only SQLite-specific value handling (see the storage conventions on
//!   [`Val`]); the queries themselves live in `casegate-store`.
//! - `migrations/`: the embedded schema, applied at start-up.
//! - [`testing`]: fresh databases for the conformance and API suites.
#![forbid(unsafe_code)]

use async_trait::async_trait;
use casegate_store::conn::{Wait, Waiting, sqlite_time};
use casegate_store::{Conn, Database, Dialect, PoolStats, Row, StoreError, StoreResult, Tx, Val};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{
    AssertSqlSafe, Column, Row as _, SqlSafeStr, Sqlite, SqliteConnection, Transaction, TypeInfo,
    ValueRef,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    // 17 is PostgreSQL's only (outbox_plain_body); the numbers stay those of PostgreSQL's list.
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
            // SQLITE_BUSY (5) / SQLITE_LOCKED (6): the busy timeout ran out.
            _ if matches!(d.code().as_deref(), Some("5") | Some("6") | Some("517")) => {
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

type Query<'q> = sqlx::query::Query<'q, Sqlite, <Sqlite as sqlx::Database>::Arguments>;

fn bind<'q>(q: Query<'q>, v: &Val) -> Query<'q> {
    match v {
        Val::Bool(x) => q.bind(*x),
        Val::Int(x) => q.bind(*x),
        Val::Float(x) => q.bind(*x),
        Val::Text(x) => q.bind(x.clone()),
        Val::Uuid(x) => q.bind(x.map(|u| u.hyphenated().to_string())),
        Val::Time(x) => q.bind(x.map(sqlite_time)),
        Val::Json(x) => q.bind(x.as_ref().map(|j| j.to_string())),
        Val::Bytes(x) => q.bind(x.clone()),
    }
}

fn decode(rows: Vec<SqliteRow>) -> StoreResult<Vec<Row>> {
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let columns: Arc<[String]> = first
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    rows.iter()
        .map(|r| {
            let mut values = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                let raw = r.try_get_raw(i).map_err(map_err)?;
                let kind = if raw.is_null() {
                    "NULL"
                } else {
                    storage_class(raw.type_info().name())
                };
                values.push(match kind {
                    "NULL" => Val::Text(None),
                    "INTEGER" => Val::Int(Some(r.try_get(i).map_err(map_err)?)),
                    "REAL" => Val::Float(Some(r.try_get(i).map_err(map_err)?)),
                    "BLOB" => Val::Bytes(Some(r.try_get(i).map_err(map_err)?)),
                    _ => Val::Text(Some(r.try_get(i).map_err(map_err)?)),
                });
            }
            Ok(Row {
                columns: columns.clone(),
                values,
            })
        })
        .collect()
}

fn storage_class(name: &str) -> &'static str {
    match name {
        "INTEGER" | "BOOLEAN" | "INT8" | "BIGINT" => "INTEGER",
        "REAL" | "FLOAT" | "DOUBLE" => "REAL",
        "BLOB" => "BLOB",
        _ => "TEXT",
    }
}

async fn execute(c: &mut SqliteConnection, sql: &str, args: &[Val]) -> StoreResult<u64> {
    let q = args.iter().fold(sqlx::query(AssertSqlSafe(sql)), bind);
    q.execute(c)
        .await
        .map(|r| r.rows_affected())
        .map_err(map_err)
}

async fn fetch_optional(
    c: &mut SqliteConnection,
    sql: &str,
    args: &[Val],
) -> StoreResult<Option<Row>> {
    let q = args.iter().fold(sqlx::query(AssertSqlSafe(sql)), bind);
    match q.fetch_optional(c).await.map_err(map_err)? {
        Some(r) => Ok(decode(vec![r])?.pop()),
        None => Ok(None),
    }
}

async fn fetch_all(c: &mut SqliteConnection, sql: &str, args: &[Val]) -> StoreResult<Vec<Row>> {
    let q = args.iter().fold(sqlx::query(AssertSqlSafe(sql)), bind);
    decode(q.fetch_all(c).await.map_err(map_err)?)
}

/// A pooled connection.
struct PooledConn(PoolConnection<Sqlite>);

#[async_trait]
impl Conn for PooledConn {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
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

/// A write transaction opened with `BEGIN IMMEDIATE`, holding the process's writer turn until
/// it commits or is dropped. (A transaction dropped without commit has its rollback sent when
/// the connection goes back to the pool, so the next writer may briefly meet the lock and wait
/// in the busy handler; writes made outside transactions, through `conn()`, also bypass the
/// queue and do the same.)
struct SqliteTx(
    Transaction<'static, Sqlite>,
    #[allow(dead_code)] tokio::sync::OwnedSemaphorePermit,
);

#[async_trait]
impl Conn for SqliteTx {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
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

#[async_trait]
impl Tx for SqliteTx {
    async fn commit(self: Box<Self>) -> StoreResult<()> {
        self.0.commit().await.map_err(map_err)
    }
    async fn rollback(self: Box<Self>) -> StoreResult<()> {
        self.0.rollback().await.map_err(map_err)
    }
}

/// The SQLite database.
pub struct SqliteDb {
    /// The connection pool; every connection has WAL, foreign keys and the busy timeout set.
    pool: SqlitePool,
    /// Configured maximum pool size, reported in `/metrics`.
    max: u32,
    /// One writer at a time in this process, in arrival order. SQLite has one writer anyway;
    /// without this queue, writers that find the lock taken poll it through the busy handler,
    /// whose growing sleeps collapse throughput under concurrent writes (measured: 32
    /// concurrent case creations ran at 36/s). Other processes on the same file still queue
    /// through the busy timeout.
    writer: Arc<tokio::sync::Semaphore>,
    /// When the planner's statistics were last refreshed (see [`SqliteDb::optimize`]).
    optimized: std::sync::Mutex<Instant>,
}

/// How often the planner's statistics are refreshed, as SQLite advises for long-lived
/// connections ("once per day or once per hour").
const OPTIMIZE_EVERY: Duration = Duration::from_secs(3600);

/// The database file a `sqlite:` URL names (`sqlite://path/to/file.db` or `sqlite:file.db`).
pub fn path_from_url(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty()).then(|| PathBuf::from(path))
}

impl SqliteDb {
    /// Opens (creating if needed) the database file, with its parent directory.
    pub async fn open(path: &Path, max_connections: u32) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Other(format!("cannot create {}: {e}", dir.display())))?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // 32 MiB of page cache per connection instead of SQLite's 2 MB: the audit trail and
            // case tables grow to millions of rows, and index inserts then stay in memory.
            .pragma("cache_size", "-32768")
            .pragma("temp_store", "memory")
            // `PRAGMA optimize` (see `optimize`) reads at most this many rows of each index.
            .analysis_limit(1000);
        let max = max_connections.max(1);
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(10))
            // A file opened in-process does not go stale as a network connection can; sqlx's
            // check before each acquire would be one hand-off to the connection's worker thread
            // and back per transaction, for nothing.
            .test_before_acquire(false)
            .connect_with(opts)
            .await
            .map_err(map_err)?;
        Ok(Self {
            pool,
            max,
            writer: Arc::new(tokio::sync::Semaphore::new(1)),
            optimized: std::sync::Mutex::new(Instant::now()),
        })
    }

    /// Refreshes the planner's statistics; the caller holds the writer turn. SQLite has no
    /// autovacuum to gather them, and without them it chooses indexes by shape alone (it once
    /// read a tenant's every case to answer one case's alert list; migration 0013 and the
    /// plan test keep the frequent reads right without them). `PRAGMA optimize=0x10002`
    /// analyses the tables never analysed or changed ten-fold since, reading at most
    /// `analysis_limit` rows of each index. It takes the write lock, so it runs only inside
    /// this process's writer queue: after migrations, then at most hourly before a write.
    /// A failure only leaves the old statistics, so it is logged, not returned.
    async fn optimize(&self) {
        *self.optimized.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        let run = async {
            let mut c = self.pool.acquire().await?;
            sqlx::query("PRAGMA optimize=0x10002")
                .execute(&mut *c)
                .await
        };
        if let Err(e) = run.await {
            tracing::warn!(error = %e, "could not refresh SQLite's planner statistics");
        }
    }

    fn optimize_due(&self) -> bool {
        self.optimized
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
            >= OPTIMIZE_EVERY
    }
}

#[async_trait]
impl Database for SqliteDb {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
    async fn conn(&self) -> StoreResult<Box<dyn Conn>> {
        let waiting = Waiting::start(Dialect::Sqlite, Wait::Connection);
        let c = self.pool.acquire().await.map_err(map_err)?;
        drop(waiting);
        Ok(Box::new(PooledConn(c)))
    }
    async fn begin(&self) -> StoreResult<Box<dyn Tx>> {
        let waiting = Waiting::start(Dialect::Sqlite, Wait::Transaction);
        // As long as the busy timeout: a task that opened a second write transaction while
        // holding one fails as it would without the queue, instead of waiting forever.
        let turn =
            tokio::time::timeout(Duration::from_secs(10), self.writer.clone().acquire_owned())
                .await
                .map_err(|_| {
                    StoreError::Unavailable(
                        "the database is busy: no write turn within 10 s".into(),
                    )
                })?
                .map_err(|_| StoreError::Other("the database is closed".into()))?;
        if self.optimize_due() {
            self.optimize().await;
        }
        let tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        drop(waiting);
        Ok(Box::new(SqliteTx(tx, turn)))
    }
    async fn migrate(&self) -> StoreResult<()> {
        let _turn = self
            .writer
            .acquire()
            .await
            .map_err(|_| StoreError::Other("the database is closed".into()))?;
        migrator()
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Other(format!("migration failed: {e}")))?;
        self.optimize().await;
        Ok(())
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
}

/// Fresh databases for tests: a new file in the system temp directory, deleted afterwards.
pub mod testing {
    use super::*;
    use casegate_store::conformance::TestDb;

    /// A migrated database in a new temporary file.
    pub async fn fresh() -> TestDb {
        let dir =
            std::env::temp_dir().join(format!("casegate-test-{}", uuid::Uuid::new_v4().simple()));
        let db = SqliteDb::open(&dir.join("casegate.db"), 8)
            .await
            .expect("open sqlite");
        db.migrate().await.expect("migrate sqlite");
        TestDb::new(Arc::new(db), async move {
            let _ = std::fs::remove_dir_all(dir);
        })
    }
}
