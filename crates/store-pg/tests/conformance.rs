//! The store conformance suite on PostgreSQL.
casegate_store::conformance_suite!(casegate_store_pg::testing::fresh);
