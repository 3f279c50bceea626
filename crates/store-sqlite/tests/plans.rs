//! SQLite's query plans on a database without statistics.

#[tokio::test]
async fn reads_search_indexes_without_statistics() {
    let t = casegate_store_sqlite::testing::fresh().await;
    casegate_store::conformance::sqlite_reads_search_indexes_without_statistics(t.db.clone()).await;
    t.finish().await;
}
