//! Case benchmark fixture and raw-database baseline (docs/benchmarks.md, "Cases at a million").
//!
//! `cargo bench -p casegate-server --bench cases -- load <database_url> [N] [noise_tenants] [noise_cases]`
//! loads N cases (default 1,000,000) into the sandbox tenant `demo` and `noise_cases` (default
//! 50,000) into each of `noise_tenants` (default 4) other tenants, through the store's bulk path
//! (multi-row inserts of 500, one transaction per 5,000), with one status-history entry per case
//! and a comment on every tenth.
//!
//! `cargo bench -p casegate-server --bench cases -- raw <database_url> <get|status|assignee|search> <secs> <tasks>`
//! runs the same reads the API performs, straight through sqlx (no casegate layer, no HTTP),
//! from `tasks` concurrent tasks for `secs` seconds, and prints `req/s p50_ms p99_ms`: the
//! baseline `scripts/bench-cases.sh` puts beside the HTTP figures.
//!
//! A plain binary, not criterion: the figures are throughput and latency percentiles of long
//! runs, as `wrk` reports them for the HTTP side.
use casegate_domain::ids::{CaseId, TenantId};
use casegate_server::settings::{Options, Settings};
use casegate_store::cases::{self, StoredCase};
use casegate_store::{Conn, Dialect, Val};
use serde_json::{Map, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::macros::datetime;
use uuid::Uuid;

/// splitmix64: a deterministic generator so every run loads the same data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn uuid(&mut self) -> Uuid {
        let b = ((self.next() as u128) << 64) | self.next() as u128;
        uuid::Builder::from_random_bytes(b.to_be_bytes()).into_uuid()
    }
}

const STATUSES: &[(&str, u64)] = &[
    ("open", 25),
    ("investigating", 25),
    ("determination", 15),
    ("filing", 10),
    ("closed", 25),
];
const PRIORITIES: &[&str] = &["low", "medium", "medium", "high", "critical"];
const WORDS: &[&str] = &[
    "wire",
    "transfer",
    "cash",
    "deposit",
    "structuring",
    "offshore",
    "shell",
    "company",
    "crypto",
    "exchange",
    "card",
    "fraud",
    "account",
    "takeover",
    "mule",
    "sanctions",
    "screening",
    "hit",
    "trade",
    "invoice",
    "layering",
    "remittance",
    "cheque",
    "velocity",
    "dormant",
    "reactivated",
];
/// The rare word the search benchmark looks for (about 1 % of notes and comments).
const RARE: &str = "smurfing";

fn sentence(r: &mut Rng, n: usize) -> String {
    let mut s: Vec<&str> = (0..n)
        .map(|_| WORDS[r.below(WORDS.len() as u64) as usize])
        .collect();
    if r.below(100) == 0 {
        s.push(RARE);
    }
    s.join(" ")
}

async fn settings_for(url: &str) -> Settings {
    let opts = Options {
        database_url: Some(casegate_server::settings::Redacted(url.to_string())),
        ..Options::default()
    };
    Settings::resolve(opts).expect("settings")
}

async fn load(url: &str, n: i64, noise_tenants: i64, noise_cases: i64) {
    let s = settings_for(url).await;
    let db = casegate_server::open_database(&s).await.expect("database");
    let svc = casegate_server::services(
        &s,
        db.clone(),
        Arc::new(casegate_domain::clock::SystemClock),
        Arc::new(casegate_service::audit::AuditSigner::generate()),
    )
    .expect("services");
    let demo = casegate_service::demo::ensure(&svc, "demo")
        .await
        .expect("demo tenant");
    let t = Instant::now();
    load_tenant(&*db, demo.tenant.id, n, 1).await;
    let main_secs = t.elapsed().as_secs_f64();
    eprintln!(
        "loaded {n} cases into demo in {main_secs:.1} s ({:.0} cases/s)",
        n as f64 / main_secs
    );
    for i in 0..noise_tenants {
        let d = casegate_service::demo::ensure(&svc, &format!("noise-{i}"))
            .await
            .expect("noise tenant");
        load_tenant(&*db, d.tenant.id, noise_cases, 100 + i as u64).await;
    }
    let mut c = db.conn().await.expect("conn");
    // Planner statistics, and on PostgreSQL the visibility map that index-only counts rely on
    // (autovacuum would get there later; a benchmark should not depend on when).
    let sql = match db.dialect() {
        Dialect::Postgres => "VACUUM ANALYZE",
        Dialect::Sqlite => "ANALYZE",
    };
    c.execute(sql, &[]).await.expect("analyze");
    eprintln!("total load {:.1} s", t.elapsed().as_secs_f64());
    println!("{main_secs:.1}");
}

async fn load_tenant(db: &dyn casegate_store::Database, tenant: TenantId, n: i64, seed: u64) {
    let mut r = Rng(seed);
    let mut c = db.conn().await.expect("conn");
    let users: Vec<Uuid> = c
        .fetch_all(
            "SELECT id FROM users WHERE tenant_id = $1 ORDER BY email",
            &[tenant.into()],
        )
        .await
        .expect("users")
        .iter()
        .map(|row| row.uuid("id").expect("id"))
        .collect();
    drop(c);
    let start = datetime!(2026-01-01 00:00:00 UTC);
    let mut done = 0i64;
    while done < n {
        let mut tx = db.begin().await.expect("tx");
        let chunk = (n - done).min(5_000);
        let first = cases::reserve_numbers(&mut *tx, tenant, 2026, chunk)
            .await
            .expect("numbers");
        let mut batch = Vec::with_capacity(500);
        for i in 0..chunk {
            let k = done + i;
            let roll = r.below(100);
            let mut acc = 0;
            let status = STATUSES
                .iter()
                .find(|(_, w)| {
                    acc += w;
                    roll < acc
                })
                .map_or("open", |s| s.0);
            let at = start + Duration::from_secs(k as u64 * 25);
            let assigned = (r.below(10) < 8).then(|| users[r.below(users.len() as u64) as usize]);
            batch.push(StoredCase {
                tenant_id: tenant,
                id: CaseId(r.uuid()),
                reference: casegate_domain::cases::reference(2026, first + i),
                case_type: "AML_INV".into(),
                title: sentence(&mut r, 5),
                status: status.into(),
                priority: PRIORITIES[r.below(PRIORITIES.len() as u64) as usize].into(),
                score: Some(r.below(101) as f64),
                assigned_to: assigned,
                assigned_to_email: None,
                business_unit: Some(format!("BU-{}", r.below(12))),
                fields: Map::new(),
                reasons: vec!["transaction monitoring".into()],
                notes: Some(sentence(&mut r, 20)),
                source: Some(
                    json!({"rule": format!("TM-{}", r.below(40)), "amount": r.below(1_000_000)}),
                ),
                screening_id: None,
                subject_id: Some(format!("CUST-{}", r.below(200_000))),
                parent_case_id: None,
                disposition: None,
                disposition_reason: None,
                escalated: false,
                escalated_to: None,
                escalated_to_email: None,
                detected_at: Some(at),
                created_by: None,
                created_by_label: "system".into(),
                created_at: at,
                updated_at: at,
                version: 1,
                entry_seq: 1 + i64::from(k % 10 == 0),
                alert_ids: Vec::new(),
            });
            if batch.len() == 500 {
                flush(&mut *tx, tenant, &mut batch, &mut r).await;
            }
        }
        flush(&mut *tx, tenant, &mut batch, &mut r).await;
        tx.commit().await.expect("commit");
        done += chunk;
    }
}

/// Inserts a batch of cases, their creation history entries, and a comment on every tenth.
async fn flush(c: &mut dyn Conn, tenant: TenantId, batch: &mut Vec<StoredCase>, r: &mut Rng) {
    if batch.is_empty() {
        return;
    }
    cases::insert_many(c, batch).await.expect("insert cases");
    let mut rows = Vec::new();
    let mut args: Vec<Val> = vec![tenant.into()];
    for k in batch.iter() {
        let b = args.len();
        rows.push(format!(
            "($1, ${}, ${}, 1, NULL, ${}, 'system', '[]', ${}, ${})",
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 4
        ));
        args.extend([
            Val::from(r.uuid()),
            k.id.into(),
            k.status.as_str().into(),
            k.created_at.into(),
        ]);
    }
    let sql = format!(
        "INSERT INTO case_status_history (tenant_id, id, case_id, seq, from_status, to_status, actor_label, approvals, requested_at, effective_at) VALUES {}",
        rows.join(", ")
    );
    c.execute(&sql, &args).await.expect("history");
    for k in batch.iter().filter(|k| k.entry_seq == 2) {
        let m = casegate_store::case_record::Comment {
            id: r.uuid(),
            case_id: k.id,
            seq: 2,
            author: casegate_store::case_record::By {
                id: None,
                label: "system".into(),
            },
            content: sentence(r, 12),
            created_at: k.created_at,
        };
        casegate_store::case_record::add_comment(c, tenant, &m)
            .await
            .expect("comment");
    }
    batch.clear();
}

// ---------------------------------------------------------------------------------------------
// The raw baseline.

#[derive(Clone, Copy, PartialEq)]
enum Read {
    Get,
    Status,
    Assignee,
    Search,
}

/// The SQL of one read: the minimal work any implementation must do (the row, or a count and a
/// page of 50 newest), written for the dialect.
fn statements(d: Dialect, read: Read) -> Vec<&'static str> {
    let pg = d == Dialect::Postgres;
    match read {
        Read::Get => vec![
            if pg {
                "SELECT * FROM cases WHERE tenant_id = $1::uuid AND reference = $2"
            } else {
                "SELECT * FROM cases WHERE tenant_id = $1 AND reference = $2"
            },
            if pg {
                "SELECT * FROM case_status_history WHERE tenant_id = $1::uuid AND case_id = (SELECT id FROM cases WHERE tenant_id = $1::uuid AND reference = $2) ORDER BY seq"
            } else {
                "SELECT * FROM case_status_history WHERE tenant_id = $1 AND case_id = (SELECT id FROM cases WHERE tenant_id = $1 AND reference = $2) ORDER BY seq"
            },
            if pg {
                "SELECT * FROM case_comments WHERE tenant_id = $1::uuid AND case_id = (SELECT id FROM cases WHERE tenant_id = $1::uuid AND reference = $2) ORDER BY seq"
            } else {
                "SELECT * FROM case_comments WHERE tenant_id = $1 AND case_id = (SELECT id FROM cases WHERE tenant_id = $1 AND reference = $2) ORDER BY seq"
            },
            if pg {
                "SELECT * FROM case_attachments WHERE tenant_id = $1::uuid AND case_id = (SELECT id FROM cases WHERE tenant_id = $1::uuid AND reference = $2) ORDER BY seq"
            } else {
                "SELECT * FROM case_attachments WHERE tenant_id = $1 AND case_id = (SELECT id FROM cases WHERE tenant_id = $1 AND reference = $2) ORDER BY seq"
            },
            if pg {
                "SELECT * FROM case_activities WHERE tenant_id = $1::uuid AND case_id = (SELECT id FROM cases WHERE tenant_id = $1::uuid AND reference = $2) ORDER BY seq"
            } else {
                "SELECT * FROM case_activities WHERE tenant_id = $1 AND case_id = (SELECT id FROM cases WHERE tenant_id = $1 AND reference = $2) ORDER BY seq"
            },
            if pg {
                "SELECT * FROM case_relations WHERE tenant_id = $1::uuid AND case_id = (SELECT id FROM cases WHERE tenant_id = $1::uuid AND reference = $2) ORDER BY seq"
            } else {
                "SELECT * FROM case_relations WHERE tenant_id = $1 AND case_id = (SELECT id FROM cases WHERE tenant_id = $1 AND reference = $2) ORDER BY seq"
            },
        ],
        // One statement each, as the API sends it: the page of 50 newest with the capped count
        // as a scalar subquery.
        Read::Status => vec![if pg {
            "SELECT c.*, (SELECT count(*) FROM (SELECT 1 FROM cases WHERE tenant_id = $1::uuid AND status = $2 LIMIT 10001) x) AS total \
             FROM cases c WHERE c.tenant_id = $1::uuid AND c.status = $2 ORDER BY c.created_at DESC, c.id DESC LIMIT 50"
        } else {
            "SELECT c.*, (SELECT count(*) FROM (SELECT 1 FROM cases WHERE tenant_id = $1 AND status = $2 LIMIT 10001) x) AS total \
             FROM cases c WHERE c.tenant_id = $1 AND c.status = $2 ORDER BY c.created_at DESC, c.id DESC LIMIT 50"
        }],
        Read::Assignee => vec![if pg {
            "SELECT c.*, (SELECT count(*) FROM (SELECT 1 FROM cases WHERE tenant_id = $1::uuid AND assigned_to = $2::uuid LIMIT 10001) x) AS total \
             FROM cases c WHERE c.tenant_id = $1::uuid AND c.assigned_to = $2::uuid ORDER BY c.created_at DESC, c.id DESC LIMIT 50"
        } else {
            "SELECT c.*, (SELECT count(*) FROM (SELECT 1 FROM cases WHERE tenant_id = $1 AND assigned_to = $2 LIMIT 10001) x) AS total \
             FROM cases c WHERE c.tenant_id = $1 AND c.assigned_to = $2 ORDER BY c.created_at DESC, c.id DESC LIMIT 50"
        }],
        // One statement, as the API sends it: the matches once, the page and the capped count
        // from them.
        Read::Search => vec![if pg {
            "WITH m AS MATERIALIZED (SELECT c.id, c.created_at FROM case_search s JOIN cases c ON c.tenant_id = s.tenant_id AND c.id = s.case_id \
             WHERE s.tenant_id = $1::uuid AND s.search @@ plainto_tsquery('simple', $2) \
             UNION SELECT c.id, c.created_at FROM case_comments m JOIN cases c ON c.tenant_id = m.tenant_id AND c.id = m.case_id \
             WHERE m.tenant_id = $1::uuid AND m.search @@ plainto_tsquery('simple', $2)) \
             SELECT c.*, (SELECT count(*) FROM (SELECT 1 FROM m LIMIT 10001) x) AS total FROM cases c WHERE c.tenant_id = $1::uuid \
             AND c.id IN (SELECT id FROM m ORDER BY created_at DESC, id DESC LIMIT 50) ORDER BY c.created_at DESC, c.id DESC"
        } else {
            "WITH m AS MATERIALIZED (SELECT c.id, c.created_at FROM cases_fts JOIN cases c ON c.rid = cases_fts.rowid \
             WHERE cases_fts MATCH $2 AND c.tenant_id = $1 \
             UNION SELECT c.id, c.created_at FROM case_comments_fts JOIN case_comments m ON m.rid = case_comments_fts.rowid \
             JOIN cases c ON c.tenant_id = m.tenant_id AND c.id = m.case_id WHERE case_comments_fts MATCH $2 AND m.tenant_id = $1) \
             SELECT c.*, (SELECT count(*) FROM (SELECT 1 FROM m LIMIT 10001) x) AS total FROM cases c WHERE c.tenant_id = $1 \
             AND c.id IN (SELECT id FROM m ORDER BY created_at DESC, id DESC LIMIT 50) ORDER BY c.created_at DESC, c.id DESC"
        }],
    }
}

async fn raw(
    url: &str,
    read: Read,
    secs: u64,
    tasks: usize,
    tenant: String,
    assignee: String,
    n: u64,
) {
    let d = if url.starts_with("postgres") {
        Dialect::Postgres
    } else {
        Dialect::Sqlite
    };
    let sql = statements(d, read);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut handles = Vec::new();
    enum Pool {
        Pg(sqlx::PgPool),
        Lite(sqlx::SqlitePool),
    }
    let pool = Arc::new(match d {
        Dialect::Postgres => Pool::Pg(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(16)
                .connect(url)
                .await
                .expect("pg"),
        ),
        Dialect::Sqlite => {
            let path = casegate_store_sqlite::path_from_url(url).expect("path");
            let opts = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(path)
                .read_only(true)
                .pragma("cache_size", "-32768")
                .pragma("temp_store", "memory");
            Pool::Lite(
                sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(16)
                    .connect_with(opts)
                    .await
                    .expect("sqlite"),
            )
        }
    });
    for t in 0..tasks {
        let (pool, sql, tenant, assignee) =
            (pool.clone(), sql.clone(), tenant.clone(), assignee.clone());
        handles.push(tokio::spawn(async move {
            let mut r = Rng(t as u64 + 7);
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let arg = match read {
                    Read::Get => casegate_domain::cases::reference(2026, 1 + r.below(n) as i64),
                    Read::Status => "investigating".to_string(),
                    Read::Assignee => assignee.clone(),
                    Read::Search => match &*pool {
                        Pool::Pg(_) => RARE.to_string(),
                        Pool::Lite(_) => format!("\"{RARE}\""),
                    },
                };
                let t0 = Instant::now();
                for q in &sql {
                    match &*pool {
                        Pool::Pg(p) => {
                            sqlx::query(*q)
                                .bind(&tenant)
                                .bind(&arg)
                                .fetch_all(p)
                                .await
                                .expect("query");
                        }
                        Pool::Lite(p) => {
                            sqlx::query(*q)
                                .bind(&tenant)
                                .bind(&arg)
                                .fetch_all(p)
                                .await
                                .expect("query");
                        }
                    }
                }
                lat.push(t0.elapsed().as_micros() as u64);
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.expect("task"));
    }
    all.sort_unstable();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)] as f64 / 1000.0;
    println!(
        "{:.0} {:.3} {:.3}",
        all.len() as f64 / secs as f64,
        pct(0.50),
        pct(0.99)
    );
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let num = |i: usize, d: i64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    match args.first().map(String::as_str) {
        Some("load") => load(&args[1], num(2, 1_000_000), num(3, 4), num(4, 50_000)).await,
        Some("raw") => {
            let read = match args[2].as_str() {
                "get" => Read::Get,
                "status" => Read::Status,
                "assignee" => Read::Assignee,
                _ => Read::Search,
            };
            let tenant = std::env::var("BENCH_TENANT").expect("BENCH_TENANT");
            let assignee = std::env::var("BENCH_ASSIGNEE").unwrap_or_default();
            let n = std::env::var("BENCH_CASES")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(1_000_000);
            raw(
                &args[1],
                read,
                num(3, 15) as u64,
                num(4, 32) as usize,
                tenant,
                assignee,
                n,
            )
            .await
        }
        _ => eprintln!(
            "usage: cases load <url> [n] [noise_tenants] [noise_cases] | cases raw <url> <get|status|assignee|search> <secs> <tasks>"
        ),
    }
}
