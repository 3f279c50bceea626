//! The pure core of casegate: identifiers, the permission catalogue, the clock abstraction,
//! credential formats and the error vocabulary shared by every layer.
//!
//! # Layout
//! - [`ids`]: one newtype per entity id (`TenantId`, `UserId`, …), parsed at the edge.
//! - [`clock`]: the injected [`clock::Clock`]; every decision takes a time reading from it.
//! - [`rbac`]: the fixed permission catalogue and the built-in roles of DESIGN.md.
//! - [`principal`]: who is calling, resolved from a credential by the service layer.
//! - [`credentials`]: API-key format (`cg_<env>_<random>`) and secret hashing.
//! - [`validate`]: small input validators (email, slug, lengths) used before any transaction.
//! - [`events`]: the catalogue of domain event names (webhook `type`s) and the outbox envelope.
//! - [`export`]: audit export formats, statuses and the 12-month range rule.
//! - [`cases`]: priorities, dispositions and the `CASE-<year>-<n>` reference.
//! - [`fields`]: custom-field definitions of a case type and the checking of their values.
//! - [`lifecycle`]: a case type's statuses, automatic moves and rules, the built-in types, and
//!   the decision on each move (`Lifecycle::decide`).
//! - [`rules`]: transition rules, approval policies and post-actions as documents, their
//!   checks, and priority-based conflict resolution.
//! - [`expr`]: CEL expressions over `case`, `actor` and `now` (compiled once, run on a grown
//!   stack).
//! - [`approval`]: the approval state machine of a transition request (tiers, quorum, veto,
//!   separation of duties, deadlines, reminders, escalation).
//! - [`sar`]: suspicious activity reports: filing types and the filing deadline of
//!   31 CFR 1020.320, with its warning dates.
//! - [`error`]: the one error type with stable snake_case codes (the `code` of API.md).
//!
//! Nothing here does I/O: no tokio, axum or sqlx (`cargo tree -p casegate-domain -i sqlx` is
//! empty). Randomness is supplied by callers.
#![forbid(unsafe_code)]

pub mod approval;
pub mod audit;
pub mod cases;
pub mod clock;
pub mod credentials;
pub mod error;
pub mod events;
pub mod export;
pub mod expr;
pub mod fields;
pub mod ids;
pub mod lifecycle;
pub mod principal;
pub mod rbac;
pub mod rules;
pub mod sar;
pub mod validate;

pub use error::{Code, Error, Result};
