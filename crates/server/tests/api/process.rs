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

#[test]
fn demo_is_idempotent_and_prints_only_json() {
    let dir = temp_dir();
    let run = || {
        let out = casegate()
            .args(["demo", "--json", "--data-dir"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).expect("stdout is one JSON object")
    };
    let (first, second) = (run(), run());
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
