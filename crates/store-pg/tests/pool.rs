//! The connection pool after PostgreSQL drops its connections (a restart, a failover, an
//! administrator's `pg_terminate_backend`). A pooled connection in steady use is not checked
//! before it is handed out, so at most one request per broken connection fails and the next
//! gets a new connection; one idle past the threshold is checked and replaced unnoticed.
use casegate_store::{Database, StoreResult};
use casegate_store_pg::{PgDb, testing};
use std::time::Duration;

async fn one(db: &PgDb) -> StoreResult<i64> {
    let mut c = db.conn().await?;
    c.fetch_one("SELECT 1 AS one", &[]).await?.int("one")
}

/// A database whose pool holds one connection, checked once idle for `check_if_idle_for`, after
/// one query; then that connection is terminated (waiting until it is gone).
async fn pool_with_a_dead_connection(check_if_idle_for: Duration) -> (String, PgDb) {
    let (name, url) = testing::create_database().await;
    let db = PgDb::connect_checking(&url, 1, check_if_idle_for)
        .await
        .expect("connect");
    assert_eq!(one(&db).await.expect("before"), 1);
    let admin = PgDb::connect(&testing::admin_url(), 1)
        .await
        .expect("admin");
    let mut a = admin.conn().await.expect("admin connection");
    let killed = a
        .fetch_one(
            &format!(
                "SELECT count(pg_terminate_backend(pid, 5000)) AS n FROM pg_stat_activity \
                 WHERE datname = '{name}' AND backend_type = 'client backend' \
                 AND pid <> pg_backend_pid()"
            ),
            &[],
        )
        .await
        .expect("terminate")
        .int("n")
        .expect("count");
    assert_eq!(killed, 1, "the pool's one connection");
    drop(a);
    admin.close().await;
    (name, db)
}

#[tokio::test]
async fn a_busy_pool_loses_one_request_per_broken_connection() {
    // The connection was in use a moment ago (the threshold is far away), so it is not checked:
    // no round trip before every transaction. The first request meets the dead connection,
    // which is closed on its way back, and the next runs on a new one.
    let (name, db) = pool_with_a_dead_connection(Duration::from_secs(3600)).await;
    assert!(one(&db).await.is_err(), "the terminated connection");
    assert_eq!(
        one(&db)
            .await
            .expect("a new connection after the broken one"),
        1
    );
    db.close().await;
    testing::drop_database(name).await;
}

#[tokio::test]
async fn an_idle_connection_is_checked_and_replaced_unnoticed() {
    // Past the threshold (zero here), the connection is checked before it is handed out; the
    // check finds it dead and the pool opens a new one, so no request fails.
    let (name, db) = pool_with_a_dead_connection(Duration::ZERO).await;
    assert_eq!(one(&db).await.expect("checked, then a new connection"), 1);
    db.close().await;
    testing::drop_database(name).await;
}
