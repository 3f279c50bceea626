//! Webhook delivery (docs/benchmarks.md, "Webhooks"): delivered events per second to a local
//! receiver, and the time from commit to delivery at a steady 200 events/s.
//!
//! `cargo bench -p casegate-server --bench webhooks -- <database_url> [backlog] [secs] [rate]`
//! (defaults 5000, 30, 200). It runs the real server in this process (API, and the worker with
//! its default ticks) on `database_url` (`sqlite://…` or `postgres://…`, a fresh database),
//! and a receiver on 127.0.0.1 that answers 204 at once.
//!
//! 1. **Backlog.** With the worker stopped, `backlog` cases are created through the API (one
//!    `case.created` event each, fanned out to one registration); then the worker starts and
//!    the time until the receiver has them all gives delivered events/s.
//! 2. **Steady rate.** With the worker running, cases are created at `rate` a second for
//!    `secs` seconds; for each delivery the receiver records now − the event's `created_at`
//!    (stamped inside the committing transaction, so the figure slightly overstates the
//!    commit-to-delivery time). Prints p50/p99/max.
//! 3. **Ceiling.** The same receiver sent the same bodies by a plain HTTP client, 32 at a time:
//!    what delivery would cost with no database and no signing at all.
//!
//! A plain binary, not criterion: the figures are throughput and latency percentiles of long
//! runs.
use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use casegate_domain::clock::SystemClock;
use casegate_server::settings::{Options, Redacted, Role, Settings};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

/// What the receiver saw: per delivery, milliseconds since the event's `created_at`.
#[derive(Default)]
struct Seen {
    lat_ms: Vec<f64>,
    ids: std::collections::HashSet<String>,
}

async fn receiver(seen: Arc<Mutex<Seen>>) -> String {
    let app = Router::new().route(
        "/hook",
        post(move |body: Bytes| {
            let seen = seen.clone();
            async move {
                let now = OffsetDateTime::now_utc();
                if let Ok(v) = serde_json::from_slice::<Value>(&body)
                    && v["type"] == "case.created"
                {
                    let at = v["created_at"].as_str().and_then(|t| {
                        OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                            .ok()
                    });
                    let mut s = seen.lock().unwrap();
                    if let Some(at) = at
                        && s.ids
                            .insert(v["id"].as_str().unwrap_or_default().to_string())
                    {
                        s.lat_ms.push((now - at).as_seconds_f64() * 1000.0);
                    }
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    url
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

struct Server {
    base: String,
    key: String,
    svc: Arc<casegate_service::Services>,
    settings: Settings,
    stop: CancellationToken,
}

async fn server(url: &str) -> Server {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = std::env::temp_dir().join(format!("casegate-bench-webhooks-{}", std::process::id()));
    let mut s = Settings::resolve(Options {
        database_url: Some(Redacted(url.to_string())),
        data_dir: Some(dir),
        ..Default::default()
    })
    .expect("settings");
    s.role = Role::Api;
    s.allow_insecure_webhooks = true;
    s.rate_limit_per_minute = 0;
    s.db_max_connections = 16;
    let db = casegate_server::open_database(&s).await.expect("database");
    let signer = casegate_server::audit_signer(&s).expect("signing key");
    let svc = casegate_server::services(&s, db, Arc::new(SystemClock), signer).expect("services");
    let d = casegate_service::demo::ensure(&svc, "bench-hooks")
        .await
        .expect("tenant");
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/v1", l.local_addr().unwrap());
    let stop = CancellationToken::new();
    {
        let (s, svc, stop) = (s.clone(), svc.clone(), stop.clone());
        tokio::spawn(async move { casegate_server::serve(&s, svc, l, stop).await });
    }
    Server {
        base,
        key: d.api_keys["admin"].clone(),
        svc,
        settings: s,
        stop,
    }
}

impl Server {
    fn worker(&self) -> CancellationToken {
        let stop = self.stop.child_token();
        let w = casegate_worker::Worker::new(
            self.svc.clone(),
            Duration::from_millis(self.settings.worker_tick_ms),
            Duration::from_millis(self.settings.delivery_tick_ms),
            time::Duration::minutes(60),
        );
        tokio::spawn(w.run(stop.clone()));
        stop
    }
}

async fn create(http: &reqwest::Client, base: &str, key: &str, i: usize) -> bool {
    http.post(format!("{base}/cases"))
        .bearer_auth(key)
        .json(&json!({"case_type": "FRAUD", "title": format!("Bench case {i}")}))
        .send()
        .await
        .is_ok_and(|r| r.status().as_u16() == 201)
}

async fn wait_for(seen: &Arc<Mutex<Seen>>, n: usize, limit: Duration) -> bool {
    let t = Instant::now();
    while seen.lock().unwrap().ids.len() < n {
        if t.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    true
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let url = args.first().expect("database url").clone();
    let backlog: usize = args.get(1).map_or(5000, |a| a.parse().expect("backlog"));
    let secs: u64 = args.get(2).map_or(30, |a| a.parse().expect("secs"));
    let rate: u64 = args.get(3).map_or(200, |a| a.parse().expect("rate"));

    let seen = Arc::new(Mutex::new(Seen::default()));
    let hook = receiver(seen.clone()).await;
    let s = server(&url).await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let r = http
        .post(format!("{}/webhooks", s.base))
        .bearer_auth(&s.key)
        .json(&json!({"url": hook, "events": ["case.created"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());

    // 1. Backlog.
    let t = Instant::now();
    let mut made = 0;
    for chunk in (0..backlog).collect::<Vec<_>>().chunks(32) {
        let rs = futures_util::future::join_all(
            chunk.iter().map(|&i| create(&http, &s.base, &s.key, i)),
        )
        .await;
        made += rs.into_iter().filter(|ok| *ok).count();
    }
    println!(
        "backlog: {made} cases created in {:.1} s (worker stopped)",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let worker = s.worker();
    let all = wait_for(&seen, made, Duration::from_secs(600)).await;
    let took = t.elapsed().as_secs_f64();
    println!(
        "backlog drained: {} events in {took:.2} s = {:.0} delivered events/s{}",
        made,
        made as f64 / took,
        if all { "" } else { " (TIMED OUT)" }
    );

    // 2. Steady rate, worker running.
    seen.lock().unwrap().lat_ms.clear();
    let before = seen.lock().unwrap().ids.len();
    let n = (rate * secs) as usize;
    let gap = Duration::from_secs_f64(1.0 / rate as f64);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        tokio::time::sleep_until(start + gap * i as u32).await;
        let (http, base, key) = (http.clone(), s.base.clone(), s.key.clone());
        tasks.push(tokio::spawn(
            async move { create(&http, &base, &key, i).await },
        ));
    }
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap_or(false));
    }
    let offered = start.elapsed().as_secs_f64();
    let all = wait_for(&seen, before + ok, Duration::from_secs(120)).await;
    let mut lat = seen.lock().unwrap().lat_ms.clone();
    lat.sort_by(f64::total_cmp);
    println!(
        "steady: {ok} events offered at {:.0}/s; delivered {}{}; commit-to-delivery ms p50 {:.1} p99 {:.1} max {:.1}",
        ok as f64 / offered,
        lat.len(),
        if all { "" } else { " (SOME MISSING)" },
        pct(&lat, 0.50),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );
    worker.cancel();

    // 3. Ceiling: the receiver alone.
    let body = serde_json::to_vec(
        &json!({"id": "x", "type": "ping", "created_at": "2026-01-01T00:00:00Z",
        "tenant_id": "t", "data": {"case": {"title": "Bench case"}}}),
    )
    .unwrap();
    let m = 20_000;
    let t = Instant::now();
    for chunk in (0..m).collect::<Vec<_>>().chunks(32) {
        futures_util::future::join_all(chunk.iter().map(|_| {
            http.post(&hook)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
        }))
        .await;
    }
    println!(
        "ceiling: {m} plain POSTs to the receiver, 32 at a time: {:.0}/s",
        m as f64 / t.elapsed().as_secs_f64()
    );
    s.stop.cancel();
}
