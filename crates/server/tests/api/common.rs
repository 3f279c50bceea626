//! The API test harness: a real server on `127.0.0.1:0` over a fresh database of the chosen
//! backend, a manual clock, and two sandbox tenants with one API key per built-in role.
#![allow(dead_code)]

use casegate_domain::clock::ManualClock;
use casegate_server::settings::Options;
use casegate_server::{Role, Settings};
use casegate_service::{ServiceConfig, Services};
use casegate_store::conformance::TestDb;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use time::macros::datetime;
use tokio_util::sync::CancellationToken;

/// Which database a test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each listed `async fn name(Backend)` once per backend.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::Backend::Sqlite).await }
        )*}
        mod postgres {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::Backend::Postgres).await }
        )*}
    };
}

/// A sandbox tenant: its id, slug and one key per built-in role.
pub struct Org {
    pub id: String,
    pub slug: String,
    pub keys: BTreeMap<String, String>,
}

impl Org {
    pub fn key(&self, role: &str) -> &str {
        &self.keys[role]
    }
}

/// A running server.
pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub svc: Arc<Services>,
    /// Tenant `acme`.
    pub a: Org,
    /// Tenant `globex`, the other organisation of every isolation test.
    pub b: Org,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    db: Option<TestDb>,
}

/// The time every test starts at.
pub const START: time::OffsetDateTime = datetime!(2026-03-02 09:00:00 UTC);

pub fn settings() -> Settings {
    let mut s = Settings::resolve(Options::default()).expect("default settings");
    s.role = Role::Api;
    s
}

/// Starts a server with the default settings.
pub async fn start(backend: Backend) -> TestServer {
    start_with(backend, settings(), ServiceConfig::default()).await
}

/// Starts a server with these HTTP settings and service configuration.
pub async fn start_with(backend: Backend, settings: Settings, config: ServiceConfig) -> TestServer {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let db = match backend {
        Backend::Sqlite => casegate_store_sqlite::testing::fresh().await,
        Backend::Postgres => casegate_store_pg::testing::fresh().await,
    };
    let clock = Arc::new(ManualClock::new(START));
    let svc = Services::new(
        db.db.clone(),
        clock.clone(),
        config,
        Arc::new(casegate_service::audit::AuditSigner::generate()),
    );
    let a = org(&svc, "acme").await;
    let b = org(&svc, "globex").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let task = {
        let (svc, shutdown) = (svc.clone(), shutdown.clone());
        tokio::spawn(
            async move { casegate_server::serve(&settings, svc, listener, shutdown).await },
        )
    };
    TestServer {
        base,
        http: reqwest::Client::new(),
        clock,
        svc,
        a,
        b,
        shutdown,
        task: Some(task),
        db: Some(db),
    }
}

async fn org(svc: &Services, slug: &str) -> Org {
    let d = casegate_service::demo::ensure(svc, slug)
        .await
        .expect("demo tenant");
    Org {
        id: d.tenant.id.to_string(),
        slug: d.tenant.slug,
        keys: d.api_keys,
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Asserts the API.md error shape with this status and code, and that the error's
    /// request id equals the `X-Request-Id` header.
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status.as_u16(), status, "{:#}", self.body);
        let e = &self.body["error"];
        assert_eq!(e["code"], code, "{:#}", self.body);
        assert!(
            e["type"].is_string() && e["message"].is_string(),
            "{:#}",
            self.body
        );
        let rid = self.header("x-request-id").expect("X-Request-Id");
        assert_eq!(e["request_id"], rid);
        self
    }
    pub fn assert_ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{:#}", self.body);
        &self.body
    }
}

impl TestServer {
    /// Waits until every pooled connection is back in the pool. A command that failed drops its
    /// transaction, and the pool sends the rollback from a background task after the answer has
    /// gone out; until then the failed command's row locks stand, and a worker step claiming
    /// with `SKIP LOCKED` would pass those rows by. Tests that run a worker step right after a
    /// refused command wait for this first (a condition, polled, not a timed sleep).
    pub async fn settled(&self) {
        for _ in 0..5_000 {
            let p = self.svc.db.pool_stats();
            if p.idle >= p.size {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        panic!("pooled connections were not returned within 5 s");
    }

    /// The body of an unauthenticated `GET` of `base`-relative `path`, as text (metrics, SDL).
    pub async fn text(&self, path: &str) -> String {
        let r = self.http.get(format!("{}{path}", self.base)).send().await;
        r.unwrap().text().await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with('/')
            && !path.starts_with("/api/")
            && !path.starts_with("/healthz")
            && !path.starts_with("/readyz")
            && !path.starts_with("/metrics")
            && !path.starts_with("/openapi")
            && !path.starts_with("/docs")
        {
            format!("{}/api/v1{path}", self.base)
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Sends a request with an optional bearer credential and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut rb = self.http.request(method, self.url(path));
        if let Some(k) = key {
            rb = rb.bearer_auth(k);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        self.send(rb).await
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Resp {
        // A body over the server's limit is answered 413 before it is read to the end, and the
        // connection closes; a client still writing can see the reset before it reads that
        // answer (an HTTP/1.1 race, not a server fault). Such requests get ten tries (three
        // once all failed in a row on a loaded CI machine); each is a few milliseconds.
        let large = rb
            .try_clone()
            .and_then(|b| b.build().ok())
            .and_then(|r| r.body().and_then(|b| b.as_bytes()).map(<[u8]>::len))
            .is_some_and(|n| n > 1 << 20);
        let mut tries = if large { 10 } else { 1 };
        let r = loop {
            let Some(attempt) = rb.try_clone() else {
                break rb.send().await.expect("request");
            };
            match attempt.send().await {
                Ok(r) => break r,
                Err(_) if tries > 1 => tries -= 1,
                Err(e) => panic!("request: {e}"),
            }
        };
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, key: &str) -> Resp {
        self.call(Method::GET, path, Some(key), None).await
    }
    pub async fn post(&self, path: &str, key: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }
    pub async fn put(&self, path: &str, key: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, Some(key), Some(body)).await
    }
    pub async fn delete(&self, path: &str, key: &str) -> Resp {
        self.call(Method::DELETE, path, Some(key), None).await
    }

    /// The number of users of the organisation behind `admin_key`.
    pub async fn user_count(&self, admin_key: &str) -> i64 {
        self.get("/users", admin_key).await.assert_ok(200)["total"]
            .as_i64()
            .unwrap()
    }

    /// Stops the server and removes its database.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.task.take() {
            t.await.expect("server task").expect("server result");
        }
        if let Some(db) = self.db.take() {
            db.finish().await;
        }
    }
}
