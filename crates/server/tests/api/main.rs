//! The API suite: every test drives a real server over HTTP and runs once on SQLite and once on
//! PostgreSQL (`CASEGATE_TEST_DATABASE_URL`, default the local server).
mod admin;
mod approvals;
mod audit;
mod auth;
mod cases;
mod common;
mod exports;
mod graphql;
mod jwt;
mod notifications;
mod ops;
mod process;
mod sars;
mod tasks;
mod webhooks;
mod workflows;
