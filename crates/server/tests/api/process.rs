//! The real binary: the README's commands, SIGTERM shutdown, and logs without secrets.
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn casegate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_casegate"))
}

fn temp_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("casegate-bin-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `casegate demo --json --data-dir <dir> <extra>`: its one JSON object.
fn demo_json(dir: &std::path::Path, extra: &[&str]) -> Value {
    let out = casegate()
        .args(["demo", "--json", "--data-dir"])
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout).expect("stdout is one JSON object")
}

#[test]
fn demo_is_idempotent_and_prints_only_json() {
    let dir = temp_dir();
    let (first, second) = (demo_json(&dir, &[]), demo_json(&dir, &[]));
    assert_eq!(first["tenant_id"], second["tenant_id"]);
    assert_eq!(first["tenant_slug"], "demo");
    let roles = [
        "admin",
        "analyst",
        "auditor",
        "compliance_officer",
        "legal_counsel",
        "mlro",
        "senior_analyst",
        "supervisor",
    ];
    for role in roles {
        let (k1, k2) = (
            first["api_keys"][role].as_str().unwrap(),
            second["api_keys"][role].as_str().unwrap(),
        );
        assert!(
            k1.starts_with("cg_live_") && k1 != k2,
            "a fresh key per run"
        );
    }
    assert!(
        dir.join("casegate.db").exists(),
        "SQLite file under the data dir"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// Starts `casegate serve --demo`, makes requests with a demo key, sends SIGTERM: the process
/// drains and exits 0, and no key appears in its logs.
#[test]
fn serve_stops_on_sigterm_and_logs_no_secrets() {
    let dir = temp_dir();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = casegate()
        .args([
            "serve",
            "--demo",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The demo summary comes first on stdout; read until the first key line.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut key = String::new();
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 {
        if let Some(k) = line.split_whitespace().find(|w| w.starts_with("cg_live_")) {
            key = k.to_string();
            break;
        }
        line.clear();
    }
    assert!(!key.is_empty(), "serve --demo prints keys");
    // Wait, deterministically, for the log line that says the listener is bound.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut early = String::new();
    loop {
        let mut l = String::new();
        assert!(
            stderr.read_line(&mut l).unwrap() > 0,
            "server exited early: {early}"
        );
        early.push_str(&l);
        if l.contains("casegate serving") {
            break;
        }
    }
    let logs = std::thread::spawn(move || early + &std::io::read_to_string(stderr).unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let r = http.get(format!("{base}/api/v1/me")).bearer_auth(&key).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let r = http.get(format!("{base}/api/v1/me")).header("x-api-key", format!("{key}x")).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let r = http.post(format!("{base}/api/v1/auth/login"))
            .json(&serde_json::json!({"username": "admin@demo.example", "password": casegate_service::demo::DEMO_PASSWORD}))
            .send().await.unwrap();
        assert_eq!(r.status(), 200);
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap()
    });
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
    let logs = logs.join().unwrap();
    assert!(
        logs.contains("\"message\":\"request\""),
        "JSON request logs: {logs}"
    );
    assert!(logs.contains("\"message\":\"stopped\""));
    assert!(!logs.contains(&key[8..]), "no API key in logs");
    assert!(
        !logs.contains(casegate_service::demo::DEMO_PASSWORD),
        "no password in logs"
    );
    assert!(
        !logs.contains("casegate_session="),
        "no session token in logs"
    );
    for l in logs.lines() {
        serde_json::from_str::<Value>(l).unwrap_or_else(|_| panic!("every log line is JSON: {l}"));
    }
    std::fs::remove_dir_all(dir).ok();
}

/// `casegate audit verify` exits 0 on an intact trail and 1 naming the first broken seq after
/// the database is edited behind casegate's back.
#[test]
fn audit_verify_command_names_the_first_broken_seq() {
    let dir = temp_dir();
    let out = casegate()
        .args(["demo", "--json", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let verify = || {
        casegate()
            .args(["audit", "verify", "--data-dir"])
            .arg(&dir)
            .output()
            .unwrap()
    };
    let ok = verify();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let text = String::from_utf8_lossy(&ok.stdout).to_string();
    assert!(text.starts_with("ok") && text.contains("demo"), "{text}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use casegate_store::Database;
        let db = casegate_store_sqlite::SqliteDb::open(&dir.join("casegate.db"), 1)
            .await
            .unwrap();
        let mut c = db.conn().await.unwrap();
        c.execute("DROP TRIGGER audit_events_no_update", &[])
            .await
            .unwrap();
        let n = c
            .execute(
                "UPDATE audit_events SET record = replace(record, 'Demo analyst', 'Fake analyst') WHERE seq = 2",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(n, 1);
        drop(c);
        db.close().await;
    });
    let broken = verify();
    assert_eq!(broken.status.code(), Some(1));
    let text = String::from_utf8_lossy(&broken.stdout).to_string();
    assert!(
        text.contains("BROKEN") && text.contains("first broken seq 2"),
        "{text}"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// What the crash test's receiver saw: `(event id, case id)` of every `case.created` that
/// arrived, and of every one it answered 204.
#[derive(Default)]
struct Received {
    hold: std::sync::atomic::AtomicBool,
    arrived: std::sync::Mutex<Vec<(String, String)>>,
    acked: std::sync::Mutex<Vec<(String, String)>>,
}

/// A receiver that, while `hold` is set, takes requests and never answers (the server is
/// killed with them in flight), and otherwise answers 204.
async fn crash_receiver(seen: std::sync::Arc<Received>) -> String {
    use axum::extract::State;
    use std::sync::atomic::Ordering;
    async fn hook(
        State(seen): State<std::sync::Arc<Received>>,
        body: String,
    ) -> axum::http::StatusCode {
        let v: Value = serde_json::from_str(&body).unwrap_or_default();
        if v["type"] != "case.created" {
            return axum::http::StatusCode::NO_CONTENT;
        }
        let key = (
            v["id"].as_str().unwrap_or_default().to_string(),
            v["data"]["case"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        seen.arrived.lock().unwrap().push(key.clone());
        if seen.hold.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        seen.acked.lock().unwrap().push(key);
        axum::http::StatusCode::NO_CONTENT
    }
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// Polls `cond` every 20 ms for up to `secs` seconds (a condition, not a timed sleep).
async fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..secs * 50 {
        if cond() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    cond()
}

/// `casegate serve` on `url` with short webhook timeouts and worker ticks (timers polled every
/// 50 ms), waited for until ready.
async fn serve_until_ready(dir: &std::path::Path, url: &str, port: u16) -> std::process::Child {
    let mut child = casegate()
        .args([
            "serve",
            "--allow-insecure-webhooks",
            "--webhook-timeout-secs",
            "3",
        ])
        .args([
            "--delivery-tick-ms",
            "50",
            "--worker-tick-ms",
            "50",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--data-dir")
        .arg(dir)
        .args(["--database-url", url])
        .env("CASEGATE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let ready = format!("http://127.0.0.1:{port}/readyz");
    for _ in 0..500 {
        if let Ok(r) = http.get(&ready).send().await
            && r.status() == 200
        {
            return child;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("casegate serve did not become ready");
}

/// `GET url` with `key`, answered as JSON.
async fn get_json(http: &reqwest::Client, url: &str, key: &str) -> Value {
    http.get(url)
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Issue "webhooks and notifications": a server killed (`kill -9`) with deliveries in flight
/// and events not yet fanned out loses none of them. After a restart on the same database
/// every committed event reaches the receiver; an event seen twice carries the same id.
fn killed_server_loses_no_committed_event(postgres: bool) {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::atomic::Ordering;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = temp_dir();
    let (pg_name, url) = if postgres {
        let (name, url) = rt.block_on(casegate_store_pg::testing::create_database());
        (Some(name), url)
    } else {
        (
            None,
            format!("sqlite://{}", dir.join("casegate.db").display()),
        )
    };
    let demo = demo_json(&dir, &["--database-url", &url]);
    let key = demo["api_keys"]["admin"].as_str().unwrap().to_string();
    rt.block_on(async {
        let seen = std::sync::Arc::new(Received::default());
        seen.hold.store(true, Ordering::SeqCst);
        let hook = crash_receiver(seen.clone()).await;
        let port = free_port();
        let mut first = serve_until_ready(&dir, &url, port).await;
        let http = reqwest::Client::new();
        let api = format!("http://127.0.0.1:{port}/api/v1");
        let r = http
            .post(format!("{api}/webhooks"))
            .bearer_auth(&key)
            .json(&serde_json::json!({"url": hook, "events": ["case.created"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let webhook: Value = r.json().await.unwrap();
        // Cases are created one after another until the server dies; the first deliveries are
        // held in flight by the receiver, and the server is killed outright the moment one
        // arrives: some events are mid-delivery, some not yet fanned out, some requests cut.
        let created = {
            let (http, api, key) = (http.clone(), api.clone(), key.clone());
            tokio::spawn(async move {
                let mut cases = BTreeSet::new();
                for i in 0..500 {
                    let r = http
                        .post(format!("{api}/cases"))
                        .bearer_auth(&key)
                        .json(&serde_json::json!({"case_type": "FRAUD", "title": format!("Crash test {i}")}))
                        .send()
                        .await;
                    let Ok(r) = r else { break };
                    if r.status() != 201 {
                        break;
                    }
                    let Ok(c) = r.json::<Value>().await else { break };
                    cases.insert(c["id"].as_str().unwrap().to_string());
                }
                cases
            })
        };
        assert!(
            eventually(30, || !seen.arrived.lock().unwrap().is_empty()).await,
            "deliveries started"
        );
        first.kill().unwrap();
        first.wait().unwrap();
        let cases = created.await.unwrap();
        assert!(!cases.is_empty());
        assert!(seen.acked.lock().unwrap().is_empty(), "nothing was answered");
        let in_flight = seen.arrived.lock().unwrap().len();

        // Restarted on the same database, with the receiver answering: everything arrives.
        seen.hold.store(false, Ordering::SeqCst);
        let port = free_port();
        let mut second = serve_until_ready(&dir, &url, port).await;
        let all = eventually(60, || {
            let acked = seen.acked.lock().unwrap();
            cases.iter().all(|c| acked.iter().any(|(_, k)| k == c))
        })
        .await;
        let acked = seen.acked.lock().unwrap().clone();
        let arrived = seen.arrived.lock().unwrap().clone();
        assert!(all, "every committed event delivered: {} of {}", acked.len(), cases.len());
        // One event id per case, however often it arrived. (A case whose creation answer was
        // cut by the kill may have committed too: it is delivered as well.)
        let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (event, case) in arrived.iter().chain(acked.iter()) {
            ids.entry(case.clone()).or_default().insert(event.clone());
        }
        assert!(ids.len() >= cases.len() && ids.len() <= cases.len() + 1);
        assert!(ids.values().all(|e| e.len() == 1), "{ids:?}");
        // The deliveries killed in flight were sent again, after their lease.
        assert!(in_flight >= 1);
        for (_, case) in &arrived[..in_flight] {
            assert!(acked.iter().any(|(_, k)| k == case), "in-flight {case} resent");
        }
        // The deliveries record their success once the round's answers are in.
        let succeeded = format!(
            "http://127.0.0.1:{port}/api/v1/webhooks/{}/deliveries?state=succeeded&limit=100",
            webhook["id"].as_str().unwrap()
        );
        let mut total = Value::Null;
        for _ in 0..500 {
            let list: Value = get_json(&http, &succeeded, &key).await;
            total = list["total"].clone();
            if total == ids.len() + 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(total, ids.len() + 1, "every case.created and the ping succeeded");
        Command::new("kill")
            .args(["-TERM", &second.id().to_string()])
            .status()
            .unwrap();
        second.wait().unwrap();
        if let Some(name) = pg_name {
            casegate_store_pg::testing::drop_database(name).await;
        }
    });
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn killed_server_loses_no_committed_event_sqlite() {
    killed_server_loses_no_committed_event(false);
}

#[test]
fn killed_server_loses_no_committed_event_postgres() {
    killed_server_loses_no_committed_event(true);
}

/// Of two answers to the same command sent twice at once, one is 200 and the other `status`
/// with `code`.
fn one_wins(round: usize, x: &(u16, Value), y: &(u16, Value), status: u16, code: &str) {
    let (winner, loser) = if x.0 == 200 { (x, y) } else { (y, x) };
    assert_eq!(winner.0, 200, "round {round}: {x:?} {y:?}");
    assert_eq!(loser.0, status, "round {round}: {x:?} {y:?}");
    assert_eq!(loser.1["error"]["code"], code, "round {round}: {x:?} {y:?}");
}

/// Stops `casegate serve` processes with SIGTERM and waits for them.
fn stop(children: &mut [std::process::Child]) {
    for child in children {
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        child.wait().unwrap();
    }
}

/// Runs `body` against two `casegate serve` processes on one fresh PostgreSQL database that
/// holds the demo sandbox, giving it the demo's JSON object (its keys) and the two ports; then
/// stops the processes and removes the database and the data directory.
fn with_two_servers(body: impl AsyncFnOnce(Value, [u16; 2])) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = temp_dir();
    let (pg_name, url) = rt.block_on(casegate_store_pg::testing::create_database());
    let demo = demo_json(&dir, &["--database-url", &url]);
    rt.block_on(async {
        let ports = [free_port(), free_port()];
        let a = serve_until_ready(&dir, &url, ports[0]).await;
        let b = serve_until_ready(&dir, &url, ports[1]).await;
        body(demo, ports).await;
        stop(&mut [a, b]);
    });
    rt.block_on(casegate_store_pg::testing::drop_database(pg_name));
    std::fs::remove_dir_all(dir).ok();
}

/// A request's status and JSON answer (`null` when it has no JSON body).
async fn answer(rb: reqwest::RequestBuilder) -> (u16, Value) {
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json::<Value>().await.unwrap_or(Value::Null))
}

/// Issue "workflows and approval gates": two `casegate serve` processes on one PostgreSQL.
/// The same move of one case sent to both (with the version both read) applies once, the other
/// gets 409; the same approval sent to both counts once, the other gets 409; the case ends with
/// one history entry per move and the request with one decision per approver. Five rounds.
#[test]
fn two_processes_on_one_postgres_apply_each_move_and_approval_once() {
    with_two_servers(async |demo, [pa, pb]| {
        let key = |role: &str| demo["api_keys"][role].as_str().unwrap().to_string();
        let (analyst, co, legal) = (
            key("analyst"),
            key("compliance_officer"),
            key("legal_counsel"),
        );
        let http = reqwest::Client::new();
        let base = |port: u16| format!("http://127.0.0.1:{port}/api/v1");
        let (api_a, api_b) = (base(pa), base(pb));
        let send = |api: &str, key: &str, path: &str, body: Value, etag: Option<&str>| {
            let mut rb = http
                .post(format!("{api}{path}"))
                .bearer_auth(key)
                .json(&body);
            if let Some(e) = etag {
                rb = rb.header("if-match", e);
            }
            answer(rb)
        };
        for round in 0..5 {
            let (s, case) = send(
                &api_a,
                &analyst,
                "/cases",
                serde_json::json!({"case_type": "HV_FRAUD", "title": format!("Race {round}"),
                                   "reasons": ["mule account"]}),
                None,
            )
            .await;
            assert_eq!(s, 201, "{case}");
            let id = case["id"].as_str().unwrap().to_string();
            let moves = format!("/cases/{id}/transitions");
            let (s, moved) = send(
                &api_a,
                &analyst,
                &moves,
                serde_json::json!({"to": "investigating"}),
                None,
            )
            .await;
            assert_eq!(s, 200, "{moved}");
            let etag = format!("\"{}\"", moved["case"]["version"]);

            // The same move through both processes at once: one applies, one loses.
            let body = serde_json::json!({"to": "pending_closure", "reason": "recovered"});
            let (x, y) = tokio::join!(
                send(&api_a, &analyst, &moves, body.clone(), Some(&etag)),
                send(&api_b, &analyst, &moves, body, Some(&etag)),
            );
            one_wins(round, &x, &y, 409, "version_conflict");

            // Closing asks compliance, then legal. The same approval through both at once
            // counts once.
            let (s, asked) = send(
                &api_b,
                &analyst,
                &moves,
                serde_json::json!({"to": "closed", "reason": "recovered"}),
                None,
            )
            .await;
            assert_eq!(s, 202, "{asked}");
            let request = asked["request"]["id"].as_str().unwrap().to_string();
            let approve = format!("/transition-requests/{request}/approve");
            // The compliance officer's second approval is the same person again: 403.
            let (x, y) = tokio::join!(
                send(&api_a, &co, &approve, serde_json::json!({}), None),
                send(&api_b, &co, &approve, serde_json::json!({}), None),
            );
            one_wins(round, &x, &y, 403, "duplicate_approver");
            // Legal's second finds the request decided: 409.
            let (x, y) = tokio::join!(
                send(&api_b, &legal, &approve, serde_json::json!({}), None),
                send(&api_a, &legal, &approve, serde_json::json!({}), None),
            );
            one_wins(round, &x, &y, 409, "request_not_pending");

            // One history entry per move, and the request decided once per approver.
            let detail: Value = get_json(&http, &format!("{api_a}/cases/{id}"), &analyst).await;
            assert_eq!(detail["status"], "closed", "{detail}");
            let path: Vec<&str> = detail["status_history"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["to"].as_str().unwrap())
                .collect();
            assert_eq!(path, ["open", "investigating", "pending_closure", "closed"]);
            let approvals = detail["status_history"][3]["approvals"]
                .as_array()
                .unwrap()
                .len();
            assert_eq!(approvals, 2, "{detail}");
        }
    });
}

/// Issue "workflows and approval gates": two `casegate serve` processes on one PostgreSQL, both
/// polling the approval timers every 50 ms, race for the same deadlines. Every request is
/// reminded once and expires once (one audit event each, written in the transaction that fires
/// the timer and puts its events in the outbox), with its case left where it was. The deadlines
/// are real seconds: the binary runs on the wall clock, and the test waits for conditions,
/// never for a time.
#[test]
fn two_processes_on_one_postgres_fire_each_timer_once() {
    with_two_servers(async |demo, [pa, pb]| {
        let key = |role: &str| demo["api_keys"][role].as_str().unwrap().to_string();
        let (admin, analyst) = (key("admin"), key("analyst"));
        let http = reqwest::Client::new();
        let apis = [pa, pb].map(|port| format!("http://127.0.0.1:{port}/api/v1"));
        let call = |method: reqwest::Method, url: String, key: &str, body: Option<Value>| {
            let mut rb = http.request(method, url).bearer_auth(key);
            if let Some(b) = body {
                rb = rb.json(&b);
            }
            answer(rb)
        };
        let tier = serde_json::json!([{"name": "Compliance", "slots": [{"role": "compliance_officer"}],
            "quorum": "all", "deadline": "PT2S", "reminders": ["PT1S"], "on_timeout": {"action": "expire"}}]);
        let doc = serde_json::json!({"name": "Timed", "workflow": {
            "statuses": [{"key": "open", "label": "Open", "category": "open"},
                         {"key": "closed", "label": "Closed", "category": "terminal"}],
            "initial_status": "open",
            "rules": [{"id": "close", "from": "open", "to": "closed", "approval": {"tiers": tier}}]}});
        let put = format!("{}/case-types/TIMED", apis[0]);
        let (s, body) = call(reqwest::Method::PUT, put, &admin, Some(doc)).await;
        assert_eq!(s, 201, "{body}");
        // Requests asked through either process, each due at its own deadline.
        let ask = async |n: usize| {
            let api = &apis[n % 2];
            let new = serde_json::json!({"case_type": "TIMED", "title": format!("Timed {n}")});
            let (s, case) = call(
                reqwest::Method::POST,
                format!("{api}/cases"),
                &analyst,
                Some(new),
            )
            .await;
            assert_eq!(s, 201, "{case}");
            let case = case["id"].as_str().unwrap().to_string();
            let moves = format!("{api}/cases/{case}/transitions");
            let to = serde_json::json!({"to": "closed"});
            let (s, asked) = call(reqwest::Method::POST, moves, &analyst, Some(to)).await;
            assert_eq!(s, 202, "{asked}");
            (case, asked["request"]["id"].as_str().unwrap().to_string())
        };
        let expired = async |rid: &str| {
            for _ in 0..500 {
                let url = format!("{}/transition-requests/{rid}", apis[1]);
                let (_, q) = call(reqwest::Method::GET, url, &analyst, None).await;
                if q["status"] == "expired" {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            panic!("request {rid} never expired");
        };
        let mut asked = Vec::new();
        for n in 0..6 {
            asked.push(ask(n).await);
        }
        for (_, rid) in &asked {
            expired(rid).await;
        }
        // A later request's whole life (two more seconds of both timers polling) lets any
        // second firing of the first ones show.
        let (_, late) = ask(6).await;
        expired(&late).await;

        let url = format!(
            "{}/audit/events?entity_type=transition_request&limit=200",
            apis[0]
        );
        let (s, audit) = call(reqwest::Method::GET, url, &admin, None).await;
        assert_eq!(s, 200, "{audit}");
        for (case, rid) in &asked {
            let mut actions: Vec<&str> = audit["events"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["entity_id"] == rid.as_str())
                .filter_map(|e| e["action"].as_str())
                .filter(|a| {
                    a.starts_with("transition_request.") && *a != "transition_request.created"
                })
                .collect();
            actions.sort_unstable();
            assert_eq!(
                actions,
                ["transition_request.expired", "transition_request.reminded"],
                "request {rid}"
            );
            let url = format!("{}/cases/{case}", apis[0]);
            let detail = get_json(&http, &url, &analyst).await;
            assert_eq!(detail["status"], "open", "{detail}");
        }
        let url = format!("{}/audit/verify", apis[1]);
        let verdict = get_json(&http, &url, &admin).await;
        assert_eq!(verdict["valid"], true, "{verdict}");
    });
}

/// Issue "server foundation": a key revoked through one `casegate serve` is refused by another
/// sharing the same PostgreSQL at once, although that one had it cached (for 10 s by default).
#[test]
fn a_key_revoked_through_one_process_is_refused_by_the_other_at_once() {
    with_two_servers(async |demo, [pa, pb]| {
        let admin = demo["api_keys"]["admin"].as_str().unwrap().to_string();
        let analyst = demo["api_keys"]["analyst"].as_str().unwrap().to_string();
        let http = reqwest::Client::new();
        let me_on_b = || {
            http.get(format!("http://127.0.0.1:{pb}/api/v1/me"))
                .bearer_auth(&analyst)
                .send()
        };
        assert_eq!(me_on_b().await.unwrap().status(), 200, "cached on B now");
        let keys: Value = get_json(
            &http,
            &format!("http://127.0.0.1:{pa}/api/v1/api-keys"),
            &admin,
        )
        .await;
        let id = keys["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| analyst.starts_with(k["prefix"].as_str().unwrap()))
            .expect("the analyst's key")["id"]
            .as_str()
            .unwrap()
            .to_string();
        let r = http
            .delete(format!("http://127.0.0.1:{pa}/api/v1/api-keys/{id}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // Within two seconds, far inside the cache's ten: B heard of it.
        let mut refused = false;
        for _ in 0..100 {
            if me_on_b().await.unwrap().status() == 401 {
                refused = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(refused, "B still accepts a key revoked through A");
    });
}
