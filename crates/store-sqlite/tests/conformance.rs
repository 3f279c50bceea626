//! The store conformance suite on SQLite.
casegate_store::conformance_suite!(casegate_store_sqlite::testing::fresh);
