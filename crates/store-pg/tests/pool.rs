//! The connection pool after PostgreSQL drops its connections (a restart, a failover, an
//! administrator's `pg_terminate_backend`): a pooled connection in steady use is not checked
//! before it is handed out, so at most one request per broken connection fails, and the next
//! gets a new connection.
use casegate_store::{Database, StoreResult};
use casegate_store_pg::{PgDb, testing};

async fn one(db: &PgDb) -> StoreResult<i64> {
    let mut c = db.conn().await?;
    c.fetch_one("SELECT 1 AS one", &[]).await?.int("one")
}

#[tokio::test]
async fn a_pool_recovers_from_terminated_connections() {
    let (name, url) = testing::create_database().await;
    let db = PgDb::connect(&url, 1).await.expect("connect");
    let admin = PgDb::connect(&testing::admin_url(), 1)
        .await
        .expect("admin");
    assert_eq!(one(&db).await.expect("before"), 1);

    let mut a = admin.conn().await.expect("admin connection");
    let killed = a
        .fetch_one(
            &format!(
                "SELECT count(pg_terminate_backend(pid, 5000)) AS n FROM pg_stat_activity \
                 WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            ),
            &[],
        )
        .await
        .expect("terminate")
        .int("n")
        .expect("count");
    assert_eq!(killed, 1, "the pool's one connection");
    drop(a);

    // The first use meets the dead connection (it was in use a moment ago, so it is not
    // checked: no round trip before every transaction); it is closed on its way back, and the
    // next request runs on a new one.
    assert!(one(&db).await.is_err(), "the terminated connection");
    assert_eq!(
        one(&db)
            .await
            .expect("a new connection after the broken one"),
        1
    );
    db.close().await;
    admin.close().await;
    testing::drop_database(name).await;
}
