//! Applied transitions per second (docs/benchmarks.md, "Transitions"), driven by
//! `scripts/bench-transitions.sh`.
//!
//! `… --bench transitions -- tenants <database_url> <n>` creates the sandbox tenants
//! `bench-0` … `bench-<n-1>` and prints `{"<slug>": "<analyst API key>", "admin:<slug>": …}`.
//!
//! `… --bench transitions -- http <base_url> <keys.json> <tenants> <clients> <secs>` installs the
//! case type `BENCH` (open ↔ working, the fixed lifecycle) in each tenant, opens one case per
//! (tenant, client), then lets `clients` concurrent clients move their cases back and forth
//! through `POST /cases/{id}/transitions` for `secs` seconds. Each request goes to a tenant drawn
//! uniformly at random, as pgbench's `\set t random(0, :tenants - 1)` does, and to the client's
//! own case there, so no two clients ever race for a case and every request is an applied move.
//! (Clients used to walk the tenants in step, `(c + k) mod tenants`: a client that caught up with
//! the one ahead then queued behind it for the tenant's audit head on every later move, a convoy
//! the reference run does not have.) Prints `moves/s p50_ms p99_ms errors`.
//!
//! `… --bench transitions -- raw <database_url> <tenants> <clients> <secs>` runs the minimal
//! equivalent transaction straight through sqlx on tables of its own (`bench_*`): lock and read
//! the case, update it guarded by its version, insert the history row, lock the tenant's audit
//! head, insert the audit row chained by SHA-256, advance the head. On SQLite `clients` is 1 (the
//! single-writer loop); PostgreSQL's figure beside it comes from pgbench running the same SQL.
//!
//! A plain binary, not criterion: the figures are throughput and latency percentiles of long
//! runs.
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn percentiles(mut lat: Vec<u64>, secs: u64, errors: u64) {
    lat.sort_unstable();
    if lat.is_empty() {
        println!("0 0 0 {errors}");
        return;
    }
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    println!(
        "{:.0} {:.3} {:.3} {errors}",
        lat.len() as f64 / secs as f64,
        pct(0.50),
        pct(0.99)
    );
}

async fn tenants(url: &str, n: usize) {
    let opts = casegate_server::settings::Options {
        database_url: Some(casegate_server::settings::Redacted(url.to_string())),
        ..Default::default()
    };
    let s = casegate_server::settings::Settings::resolve(opts).expect("settings");
    let db = casegate_server::open_database(&s).await.expect("database");
    let svc = casegate_server::services(
        &s,
        db,
        Arc::new(casegate_domain::clock::SystemClock),
        Arc::new(casegate_service::audit::AuditSigner::generate()),
    )
    .expect("services");
    let mut keys = Map::new();
    for i in 0..n {
        let slug = format!("bench-{i}");
        let d = casegate_service::demo::ensure(&svc, &slug)
            .await
            .expect("tenant");
        // The case type is installed by an administrator; the moves are an analyst's.
        keys.insert(format!("admin:{slug}"), json!(d.api_keys["admin"]));
        keys.insert(slug, json!(d.api_keys["analyst"]));
    }
    println!("{}", Value::Object(keys));
}

/// The case type every tenant gets: the fixed lifecycle over three statuses.
fn bench_type() -> Value {
    json!({"name": "Benchmark", "workflow": {
        "statuses": [
            {"key": "open", "label": "Open", "category": "open"},
            {"key": "working", "label": "Working", "category": "active"},
            {"key": "closed", "label": "Closed", "category": "terminal"}
        ],
        "initial_status": "open"
    }})
}

async fn http(base: &str, keys_file: &str, n_tenants: usize, clients: usize, secs: u64) {
    let all: Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(keys_file).expect("keys")).expect("json");
    let keys: Vec<String> = (0..n_tenants)
        .map(|i| all[&format!("bench-{i}")].as_str().unwrap().to_string())
        .collect();
    let admins: Vec<String> = (0..n_tenants)
        .map(|i| {
            all.get(&format!("admin:bench-{i}"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients * 2)
        .build()
        .unwrap();
    let api = format!("{base}/api/v1");
    // cases[client][tenant] = case id
    let mut cases = vec![vec![String::new(); n_tenants]; clients];
    for t in 0..n_tenants {
        let admin = if admins[t].is_empty() {
            &keys[t]
        } else {
            &admins[t]
        };
        let r = http
            .put(format!("{api}/case-types/BENCH"))
            .bearer_auth(admin)
            .json(&bench_type())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        for (c, row) in cases.iter_mut().enumerate() {
            let r: Value = http
                .post(format!("{api}/cases"))
                .bearer_auth(&keys[t])
                .json(&json!({"case_type": "BENCH", "title": format!("bench case {c}"), "priority": "medium"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            row[t] = r["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{r}"))
                .to_string();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let keys = Arc::new(keys);
    let mut handles = Vec::new();
    for mine in cases {
        let (http, api, keys) = (http.clone(), api.clone(), keys.clone());
        handles.push(tokio::spawn(async move {
            let mut working = vec![false; mine.len()];
            let (mut lat, mut errors) = (Vec::new(), 0u64);
            while Instant::now() < deadline {
                let t = rand::random_range(0..mine.len());
                let to = if working[t] { "open" } else { "working" };
                let t0 = Instant::now();
                let r = http
                    .post(format!("{api}/cases/{}/transitions", mine[t]))
                    .bearer_auth(&keys[t])
                    .json(&json!({"to": to}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().as_u16() == 200 => {
                        let _ = r.bytes().await;
                        lat.push(t0.elapsed().as_micros() as u64);
                        working[t] = !working[t];
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let (mut lat, mut errors) = (Vec::new(), 0);
    for h in handles {
        let (l, e) = h.await.unwrap();
        lat.extend(l);
        errors += e;
    }
    percentiles(lat, secs, errors);
}

const SCHEMA: &[&str] = &[
    "DROP TABLE IF EXISTS bench_cases",
    "DROP TABLE IF EXISTS bench_history",
    "DROP TABLE IF EXISTS bench_audit",
    "DROP TABLE IF EXISTS bench_audit_head",
    "CREATE TABLE bench_cases (tenant_no integer NOT NULL, case_no integer NOT NULL, \
     status text NOT NULL, version bigint NOT NULL, updated_at text NOT NULL, \
     PRIMARY KEY (tenant_no, case_no))",
    "CREATE TABLE bench_history (tenant_no integer NOT NULL, case_no integer NOT NULL, \
     seq bigint NOT NULL, from_status text NOT NULL, to_status text NOT NULL, actor text NOT NULL, \
     at text NOT NULL, PRIMARY KEY (tenant_no, case_no, seq))",
    "CREATE TABLE bench_audit_head (tenant_no integer PRIMARY KEY, seq bigint NOT NULL, \
     hash text NOT NULL)",
    "CREATE TABLE bench_audit (tenant_no integer NOT NULL, seq bigint NOT NULL, action text NOT NULL, \
     case_no integer NOT NULL, changes text NOT NULL, prev_hash text NOT NULL, hash text NOT NULL, \
     at text NOT NULL, PRIMARY KEY (tenant_no, seq))",
];

/// The raw loop on one pool type (SQLite or PostgreSQL: the same statements).
macro_rules! raw_loop {
    ($pool:expr, $n_tenants:expr, $clients:expr, $secs:expr, $begin:expr, $lock:expr) => {{
        let (pool, n_tenants, clients, secs, begin, lock) =
            ($pool, $n_tenants, $clients, $secs, $begin, $lock);
        for q in SCHEMA {
            sqlx::query(*q).execute(&pool).await.unwrap();
        }
        let genesis = "0".repeat(64);
        for t in 0..n_tenants {
            sqlx::query("INSERT INTO bench_audit_head VALUES ($1, 0, $2)")
                .bind(t)
                .bind(&genesis)
                .execute(&pool)
                .await
                .unwrap();
            for c in 0..clients as i64 {
                sqlx::query("INSERT INTO bench_cases VALUES ($1, $2, 'open', 1, '')")
                    .bind(t)
                    .bind(c)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut handles = Vec::new();
        for c in 0..clients as i64 {
            let pool = pool.clone();
            handles.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = rand::random_range(0..n_tenants);
                    let t0 = Instant::now();
                    let mut conn = pool.acquire().await.unwrap();
                    sqlx::query(sqlx::AssertSqlSafe(begin)).execute(&mut *conn).await.unwrap();
                    let (status, version): (String, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "SELECT status, version FROM bench_cases WHERE tenant_no = $1 AND case_no = $2{lock}"
                    )))
                    .bind(t)
                    .bind(c)
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap();
                    let to = if status == "open" { "working" } else { "open" };
                    let now = casegate_domain::clock::wire_time(time::OffsetDateTime::now_utc());
                    let n = sqlx::query(
                        "UPDATE bench_cases SET status = $1, version = version + 1, updated_at = $2 \
                         WHERE tenant_no = $3 AND case_no = $4 AND version = $5",
                    )
                    .bind(to)
                    .bind(&now)
                    .bind(t)
                    .bind(c)
                    .bind(version)
                    .execute(&mut *conn)
                    .await
                    .unwrap();
                    assert_eq!(n.rows_affected(), 1);
                    sqlx::query("INSERT INTO bench_history VALUES ($1, $2, $3, $4, $5, 'bench', $6)")
                        .bind(t)
                        .bind(c)
                        .bind(version + 1)
                        .bind(&status)
                        .bind(to)
                        .bind(&now)
                        .execute(&mut *conn)
                        .await
                        .unwrap();
                    let (seq, prev): (i64, String) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "SELECT seq, hash FROM bench_audit_head WHERE tenant_no = $1{lock}"
                    )))
                    .bind(t)
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap();
                    let changes = json!({"status": {"before": status, "after": to}}).to_string();
                    let hash = hex(&Sha256::digest(
                        format!("{prev}{t}{}{c}{changes}{now}", seq + 1).as_bytes(),
                    ));
                    sqlx::query(
                        "INSERT INTO bench_audit VALUES ($1, $2, 'case.status_changed', $3, $4, $5, $6, $7)",
                    )
                    .bind(t)
                    .bind(seq + 1)
                    .bind(c)
                    .bind(&changes)
                    .bind(&prev)
                    .bind(&hash)
                    .bind(&now)
                    .execute(&mut *conn)
                    .await
                    .unwrap();
                    sqlx::query("UPDATE bench_audit_head SET seq = $1, hash = $2 WHERE tenant_no = $3")
                        .bind(seq + 1)
                        .bind(&hash)
                        .bind(t)
                        .execute(&mut *conn)
                        .await
                        .unwrap();
                    sqlx::query("COMMIT").execute(&mut *conn).await.unwrap();
                    lat.push(t0.elapsed().as_micros() as u64);
                }
                lat
            }));
        }
        let mut lat = Vec::new();
        for h in handles {
            lat.extend(h.await.unwrap());
        }
        percentiles(lat, secs, 0);
    }};
}

/// The raw loop: SQLite (one writer, `BEGIN IMMEDIATE`, WAL) or PostgreSQL (row locks).
async fn raw(url: &str, n_tenants: i64, clients: usize, secs: u64) {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(clients as u32)
            .connect_with(opts)
            .await
            .expect("sqlite");
        raw_loop!(pool, n_tenants, clients, secs, "BEGIN IMMEDIATE", "");
    } else {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(clients as u32)
            .connect(url)
            .await
            .expect("pg");
        raw_loop!(pool, n_tenants, clients, secs, "BEGIN", " FOR UPDATE");
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let num = |i: usize| -> usize { args[i].parse().expect("number") };
    match args.first().map(String::as_str) {
        Some("tenants") => tenants(&args[1], num(2)).await,
        Some("http") => http(&args[1], &args[2], num(3), num(4), num(5) as u64).await,
        Some("raw") => raw(&args[1], num(2) as i64, num(3), num(4) as u64).await,
        _ => eprintln!("usage: see the module documentation"),
    }
}
