//! The storage interface of casegate and the SQL that implements it once for both backends.
//!
//! # Layout
//! - [`conn`]: the [`Database`] trait (pool, transactions, health) and the [`Conn`]/[`Tx`]
//!   traits each backend crate implements, plus [`Val`]/[`Row`], the small typed value layer.
//! - [`error`]: [`StoreError`] (`NotFound`, `Conflict { constraint }`, `Other`), translated from
//!   the driver in each backend crate, and its mapping to the service error.
//! - [`tenants`], [`users`], [`api_keys`], [`sessions`]: repositories. Every function takes a
//!   `&mut dyn Conn` (a pooled connection or an open transaction) and a `TenantId` where the
//!   table is tenant-scoped, so a command composes several of them in one transaction.
//! - [`audit`], [`exports`]: the hash-chained audit trail and its exports.
//! - [`case_types`], [`cases`], [`case_record`]: case types, cases (list and full-text search)
//!   and their append-only investigation record (comments, attachments, activities, status
//!   history, relations, parties).
//! - [`requests`]: transition requests waiting for approval (one pending per case) and the
//!   timer's claim on due ones.
//! - [`tasks`]: tasks on cases; open mandatory ones block leaving their status.
//! - [`outbox`]: domain events committed with the change they announce, the dispatcher's
//!   claims on them and the record of post-actions run.
//! - [`notifications`]: the in-app inbox of each person.
//! - [`webhooks`]: registrations, deliveries fanned out from the outbox (claimed under a
//!   lease, in order per case and registration) and every attempt.
//! - [`conformance`]: the conformance suite; `store-sqlite` and `store-pg` run it, each test on
//!   a fresh database.
//!
//! # Why one SQL implementation
//! sqlx's `Any` driver cannot carry UUIDs, JSON or timestamps (DEPENDENCIES.md), and writing
//! every query twice invites the two backends to drift. Instead each backend crate implements
//! only [`Conn`] (bind a [`Val`], decode a column into a [`Val`]) plus its migrations, and the
//! queries here are written once in the SQL both dialects accept (`$1` placeholders, `RETURNING`,
//! `ON CONFLICT`). Where the dialects differ the query branches on [`Dialect`].
#![forbid(unsafe_code)]

pub mod api_keys;
pub mod audit;
pub mod case_record;
pub mod case_types;
pub mod cases;
pub mod conformance;
pub mod conn;
pub mod error;
pub mod exports;
pub mod notifications;
pub mod outbox;
pub mod requests;
pub mod sars;
pub mod sessions;
pub mod tasks;
pub mod tenants;
pub mod users;
pub mod webhooks;

pub use conn::{
    Conn, Database, Deferred, Dialect, PoolStats, Reader, Row, Subscription, Tx, Val, Where,
    bind_row, expect_rows, joined_writes, page_clause, publish, value_lists, value_lists_of,
    with_items,
};
pub use error::{StoreError, StoreResult};
