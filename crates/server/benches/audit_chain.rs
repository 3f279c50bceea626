//! Audit-chain benchmark (docs/benchmarks.md, "Audit trail"): verification speed over a
//! chain of N events next to raw SHA-256 over the same bytes, and the cost the chain adds to a
//! write, on SQLite and PostgreSQL.
//!
//! `cargo bench -p casegate-server --bench audit_chain -- [N] [WRITES]` (defaults 1,000,000 and
//! 10,000; `--pure` stops after the in-memory part). PostgreSQL is used when `CASEGATE_TEST_DATABASE_URL` (default the local server)
//! answers; each run creates and drops its own database.
//!
//! A plain binary rather than criterion: each measurement is one long pass (a million events),
//! not a micro-benchmark needing statistical repetition, and the figures wanted are events/s.
use casegate_domain::audit::{self as chain, AuditRecord, ChainVerifier, StoredEvent};
use casegate_domain::clock::{ManualClock, wire_time};
use casegate_domain::ids::TenantId;
use casegate_domain::principal::Origin;
use casegate_service::audit::{self, Actor, AuditSigner, Entry};
use casegate_service::{ServiceConfig, Services};
use casegate_store::conformance::TestDb;
use casegate_store::{Database, Val};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use time::macros::datetime;
use uuid::Uuid;

fn record(tenant: &str, seq: i64, prev: &str) -> AuditRecord {
    AuditRecord {
        tenant_id: tenant.into(),
        seq,
        event_id: Uuid::new_v4().to_string(),
        occurred_at: "2026-03-02T09:00:00.123456Z".into(),
        actor: "analyst@acme.example".into(),
        actor_id: Some(Uuid::new_v4().to_string()),
        actor_ip: Some("203.0.113.7".into()),
        request_id: Some(Uuid::new_v4().to_string()),
        action: "case.status_changed".into(),
        entity_type: "case".into(),
        entity_id: Some(format!("CASE-2026-{seq:06}")),
        changes: json!({"status": {"before": "investigating", "after": "determination"},
                         "assigned_to": {"before": null, "after": "kim@acme.example"}}),
        prev_hash: prev.into(),
    }
}

struct Sealed {
    record: AuditRecord,
    bytes: Vec<u8>,
    hash: String,
}

fn per_sec(n: u64, secs: f64) -> String {
    format!("{:>12.0}/s", n as f64 / secs)
}

/// Verification of an in-memory chain: the pure work, without the database.
fn pure(n: i64) {
    let tenant = Uuid::new_v4().to_string();
    let t = Instant::now();
    let mut prev = chain::GENESIS;
    let mut events = Vec::with_capacity(n as usize);
    for seq in 1..=n {
        let r = record(&tenant, seq, &chain::hex(&prev));
        let (bytes, hash) = chain::seal(&r, &prev);
        prev = hash;
        events.push(Sealed {
            record: r,
            bytes,
            hash: chain::hex(&hash),
        });
    }
    let build = t.elapsed().as_secs_f64();
    let total_bytes: usize = events.iter().map(|e| e.bytes.len()).sum();
    println!(
        "chain of {n} events built (JCS + SHA-256 per event) in {build:.2} s: {}; mean record {} bytes",
        per_sec(n as u64, build),
        total_bytes / n as usize
    );

    // Raw SHA-256 over exactly the bytes verification hashes.
    let t = Instant::now();
    let mut p = chain::GENESIS;
    for e in &events {
        p = chain::chain_hash(&p, &e.bytes);
    }
    let raw = t.elapsed().as_secs_f64();
    assert_eq!(p, prev);
    println!(
        "raw SHA-256 chain over the same bytes:  {} ({:.0} MB/s)",
        per_sec(n as u64, raw),
        total_bytes as f64 / raw / 1e6
    );

    // What merely scanning the JSON of every record costs (the floor of the column checks).
    let t = Instant::now();
    for e in &events {
        let _: serde::de::IgnoredAny = serde_json::from_slice(&e.bytes).unwrap();
    }
    let scan = t.elapsed().as_secs_f64();
    println!(
        "JSON scan of the same records (serde_json, IgnoredAny): {}",
        per_sec(n as u64, scan)
    );

    let t = Instant::now();
    let mut v = ChainVerifier::new(&tenant, &[], None);
    for e in &events {
        let ok = v.push(&StoredEvent::of(&e.record, &e.bytes, &e.hash));
        assert!(ok);
    }
    let verdict = v.finish();
    let secs = t.elapsed().as_secs_f64();
    assert!(verdict.valid && verdict.events_checked == n as u64);
    println!(
        "ChainVerifier (hash + record/column checks): {} ({:.2}x raw SHA-256 time)",
        per_sec(n as u64, secs),
        secs / raw
    );

    // The same work on rows as verification receives them: batches of 10,000 rows decoded just
    // before they are checked (a fresh copy per batch, as the store's read makes), rather than
    // a million records allocated long before and scattered over a gigabyte. Only the checks
    // are timed; the copy stands for the database read, measured separately below.
    let mut v = ChainVerifier::new(&tenant, &[], None);
    let mut spent = 0.0;
    for batch in events.chunks(10_000) {
        let rows: Vec<(Vec<u8>, String, AuditRecord)> = batch
            .iter()
            .map(|e| (e.bytes.clone(), e.hash.clone(), e.record.clone()))
            .collect();
        let t = Instant::now();
        for (bytes, hash, r) in &rows {
            let ok = v.push(&StoredEvent::of(r, bytes, hash));
            assert!(ok);
        }
        spent += t.elapsed().as_secs_f64();
    }
    assert!(v.finish().valid);
    println!(
        "ChainVerifier on freshly read 10,000-row batches: {} ({:.2}x raw SHA-256 time)",
        per_sec(n as u64, spent),
        spent / raw
    );
}

fn services(db: Arc<dyn Database>) -> Arc<Services> {
    Services::new(
        db,
        Arc::new(ManualClock::new(datetime!(2026-03-02 09:00 UTC))),
        ServiceConfig::default(),
        Arc::new(AuditSigner::generate()),
    )
}

async fn tenant(svc: &Services) -> TenantId {
    casegate_service::demo::ensure(
        svc,
        &format!("bench-{}", &Uuid::new_v4().simple().to_string()[..8]),
    )
    .await
    .expect("tenant")
    .tenant
    .id
}

/// Loads a chain of `n` events (sealed exactly as `audit::append` seals them) with multi-row
/// inserts, then times `verify_tenant`: reading every event from the database and verifying it.
/// The append path itself is measured by [`write_cost`]; loading a million events through it
/// one transaction-statement at a time would only measure round trips.
async fn from_database(name: &str, db: &TestDb, raw: &Raw, n: i64) {
    let svc = services(db.db.clone());
    let tenant = tenant(&svc).await;
    let (mut seq, head) = {
        let mut c = svc.db.conn().await.unwrap();
        casegate_store::audit::head(&mut *c, tenant)
            .await
            .unwrap()
            .unwrap()
    };
    let mut prev = chain::unhex32(&head).unwrap();
    let t = Instant::now();
    let target = seq + n;
    let actor_id = Uuid::new_v4();
    while seq < target {
        let batch = (target - seq).min(500);
        let mut sql = String::from(
            "INSERT INTO audit_events (tenant_id, seq, event_id, occurred_at, actor, actor_id, action, entity_type, entity_id, record, hash) VALUES ",
        );
        let mut args: Vec<Val> = Vec::with_capacity(batch as usize * 11);
        for i in 0..batch {
            seq += 1;
            let mut r = record(&tenant.to_string(), seq, &chain::hex(&prev));
            r.actor_id = Some(actor_id.to_string());
            let (bytes, hash) = chain::seal(&r, &prev);
            prev = hash;
            let k = i as usize * 11;
            sql.push_str(if i == 0 { "(" } else { ", (" });
            sql.push_str(
                &(1..=11)
                    .map(|j| format!("${}", k + j))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            sql.push(')');
            args.extend([
                Val::from(tenant),
                seq.into(),
                r.event_id.parse::<Uuid>().unwrap().into(),
                datetime!(2026-03-02 09:00:00.123456 UTC).into(),
                r.actor.clone().into(),
                actor_id.into(),
                r.action.clone().into(),
                r.entity_type.clone().into(),
                r.entity_id.clone().into(),
                String::from_utf8(bytes).unwrap().into(),
                chain::hex(&hash).into(),
            ]);
        }
        let mut tx = svc.db.begin().await.unwrap();
        tx.execute(&sql, &args).await.unwrap();
        tx.commit().await.unwrap();
    }
    {
        let mut c = svc.db.conn().await.unwrap();
        c.execute(
            "UPDATE audit_heads SET seq = $2, hash = $3 WHERE tenant_id = $1",
            &[tenant.into(), seq.into(), chain::hex(&prev).into()],
        )
        .await
        .unwrap();
    }
    let load = t.elapsed().as_secs_f64();
    println!(
        "[{name}] loaded {n} sealed events (multi-row inserts of 500): {}",
        per_sec(n as u64, load)
    );
    // The first read of freshly loaded rows also sets their hint bits (PostgreSQL) or meets the
    // load's WAL (SQLite); each figure is taken twice, alternating, and both are printed.
    for round in 1..=2 {
        let t = Instant::now();
        let rows = raw.read_chain(tenant).await;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "[{name}] round {round}: raw driver read of the same rows and columns: {}",
            per_sec(rows, secs)
        );
        let t = Instant::now();
        let v = audit::verify_tenant(&svc, tenant).await.unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert!(v.valid, "{v:?}");
        println!(
            "[{name}] round {round}: verify_tenant over {} events (read + verify): {}",
            v.events_checked,
            per_sec(v.events_checked, secs)
        );
    }
}

/// The database beside the store, reached through the bare driver: the floor for reading a
/// chain (the rows and columns verification needs, each column decoded as borrowed text and
/// dropped, nothing checked).
enum Raw {
    Pg(String),
    Lite(std::path::PathBuf),
}

/// The columns verification reads, in one order for both backends.
const CHAIN_COLS: &str =
    "seq, event_id, occurred_at, actor, actor_id, action, entity_type, entity_id, record, hash";

impl Raw {
    async fn read_chain(&self, tenant: TenantId) -> u64 {
        use futures_util::TryStreamExt;
        use sqlx::{Connection, Row};
        let sql =
            format!("SELECT {CHAIN_COLS} FROM audit_events WHERE tenant_id = $1 ORDER BY seq");
        let mut n = 0u64;
        let mut bytes = 0usize;
        match self {
            Raw::Pg(url) => {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(tenant.0)
                    .fetch(&mut c);
                while let Some(r) = rows.try_next().await.unwrap() {
                    let _: i64 = r.get(0);
                    let _: Uuid = r.get(1);
                    let _: time::OffsetDateTime = r.get(2);
                    let _: Option<Uuid> = r.get(4);
                    for i in [3, 5, 6, 7, 8, 9] {
                        bytes += r.get::<Option<&str>, _>(i).map_or(0, str::len);
                    }
                    n += 1;
                }
            }
            Raw::Lite(path) => {
                let mut c = sqlx::SqliteConnection::connect_with(
                    &sqlx::sqlite::SqliteConnectOptions::new().filename(path),
                )
                .await
                .unwrap();
                let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(tenant.0.to_string())
                    .fetch(&mut c);
                while let Some(r) = rows.try_next().await.unwrap() {
                    let _: i64 = r.get(0);
                    for i in 1..10 {
                        bytes += r.get::<Option<&str>, _>(i).map_or(0, str::len);
                    }
                    n += 1;
                }
            }
        }
        assert!(bytes > 0);
        n
    }
}

/// A transition-shaped write (update the case row, insert its history row) with and without the
/// audit append, one transaction each, as a command does it.
async fn write_cost(name: &str, db: &TestDb, writes: i64) {
    let svc = services(db.db.clone());
    let tenant = tenant(&svc).await;
    {
        let mut c = svc.db.conn().await.unwrap();
        let ddl = [
            "CREATE TABLE bench_cases (tenant_id TEXT NOT NULL, id TEXT NOT NULL, status TEXT NOT NULL, version BIGINT NOT NULL, PRIMARY KEY (tenant_id, id))",
            "CREATE TABLE bench_history (tenant_id TEXT NOT NULL, case_id TEXT NOT NULL, n BIGINT NOT NULL, from_status TEXT NOT NULL, to_status TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (tenant_id, case_id, n))",
        ];
        for sql in ddl {
            c.execute(sql, &[]).await.unwrap();
        }
        c.execute(
            "INSERT INTO bench_cases VALUES ($1, 'c1', 'open', 0)",
            &[Val::Text(Some(tenant.to_string()))],
        )
        .await
        .unwrap();
    }
    let actor = Actor::System;
    let origin = Origin::default();
    for with_audit in [false, true, false, true] {
        let t = Instant::now();
        for _ in 0..writes {
            let mut tx = svc.db.begin().await.unwrap();
            let r = tx
                .fetch_one(
                    "UPDATE bench_cases SET version = version + 1, status = CASE WHEN status = 'open' THEN 'investigating' ELSE 'open' END \
                     WHERE tenant_id = $1 AND id = 'c1' RETURNING version, status",
                    &[Val::Text(Some(tenant.to_string()))],
                )
                .await
                .unwrap();
            let (version, status) = (r.int("version").unwrap(), r.text("status").unwrap());
            tx.execute(
                "INSERT INTO bench_history VALUES ($1, 'c1', $2, 'x', $3, $4)",
                &[
                    Val::Text(Some(tenant.to_string())),
                    version.into(),
                    status.as_str().into(),
                    wire_time(svc.clock.now()).into(),
                ],
            )
            .await
            .unwrap();
            if with_audit {
                let entry = Entry::new("case.status_changed", "case", "c1").change(
                    "status",
                    "open",
                    status.as_str(),
                );
                audit::append(&mut *tx, svc.clock.now(), tenant, &actor, &origin, entry)
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "[{name}] transition-shaped writes {} audit chain: {} (mean {:.0} µs)",
            if with_audit { "with   " } else { "without" },
            per_sec(writes as u64, secs),
            secs / writes as f64 * 1e6
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<i64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(1_000_000);
    let writes = args.get(1).copied().unwrap_or(10_000);
    println!("== pure verification ==");
    pure(n);
    if std::env::args().any(|a| a == "--pure") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("casegate-bench-{}", Uuid::new_v4().simple()));
    let file = dir.join("casegate.db");
    let lite = casegate_store_sqlite::SqliteDb::open(&file, 8)
        .await
        .expect("open sqlite");
    lite.migrate().await.expect("migrate sqlite");
    let sqlite = TestDb::new(Arc::new(lite), async move {
        let _ = std::fs::remove_dir_all(dir);
    });
    println!("== SQLite ==");
    from_database("sqlite", &sqlite, &Raw::Lite(file), n).await;
    write_cost("sqlite", &sqlite, writes).await;
    sqlite.finish().await;
    let pg = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        use casegate_store_pg::{PgDb, testing};
        let (name, url) = testing::create_database().await;
        let db = PgDb::connect(&url, 8).await.expect("connect");
        db.migrate().await.expect("migrate postgres");
        (TestDb::new(Arc::new(db), testing::drop_database(name)), url)
    })
    .await;
    match pg {
        Ok((pg, url)) => {
            println!("== PostgreSQL ==");
            from_database("postgres", &pg, &Raw::Pg(url), n).await;
            write_cost("postgres", &pg, writes).await;
            pg.finish().await;
        }
        Err(_) => println!("PostgreSQL not reachable: skipped"),
    }
}
