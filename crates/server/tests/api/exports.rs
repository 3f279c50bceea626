//! Audit exports through the API: queued, produced by the worker, signed; the JSON export
//! verifies on its own with nothing but an RFC 8785 library, SHA-256 and Ed25519; bad requests
//! change nothing; failures and crashed workers are handled.
use crate::audit::{hex, recompute, recompute_from};
use crate::both_backends;
use crate::common::*;
use base64::Engine;
use casegate_domain::clock::Clock;
use casegate_service::ServiceConfig;
use ed25519_dalek::{Signature, VerifyingKey};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

both_backends!(
    a_json_export_verifies_standalone,
    csv_and_pdf_exports_are_signed_and_readable,
    export_requests_are_checked_and_confined,
    a_failing_export_is_retried_then_reported,
    a_crashed_worker_does_not_lose_an_export,
);

const PERIOD_FROM: &str = "2026-03-01T00:00:00Z";
const PERIOD_TO: &str = "2026-03-03T00:00:00Z";

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

async fn request(s: &TestServer, key: &str, body: Value) -> Resp {
    s.post("/audit/exports", key, body).await
}

/// Queues an export that must be accepted; returns its id.
async fn queue(s: &TestServer, key: &str, body: Value) -> String {
    request(s, key, body).await.assert_ok(202)["export_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// An export's status.
async fn status_of(s: &TestServer, key: &str, id: &str) -> Value {
    s.get(&format!("/audit/exports/{id}"), key)
        .await
        .assert_ok(200)
        .clone()
}

/// Runs the worker's export job once.
async fn work(s: &TestServer) -> u64 {
    casegate_service::exports::run_pending(&s.svc, 10)
        .await
        .expect("export job")
}

/// Downloads a ready export: status, headers and raw bytes.
async fn download(
    s: &TestServer,
    key: &str,
    id: &str,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let r = s
        .http
        .get(s.url(&format!("/audit/exports/{id}/download")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.bytes().await.unwrap().to_vec())
}

async fn public_key(s: &TestServer, key: &str) -> VerifyingKey {
    let list = s
        .get("/audit/checkpoints", key)
        .await
        .assert_ok(200)
        .clone();
    let pk: [u8; 32] = b64()
        .decode(list["public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    VerifyingKey::from_bytes(&pk).unwrap()
}

fn signature(b64_sig: &str) -> Signature {
    let raw: [u8; 64] = b64().decode(b64_sig).unwrap().try_into().unwrap();
    Signature::from_bytes(&raw)
}

/// Events of `action` in the organisation behind `key`.
async fn audited(s: &TestServer, key: &str, action: &str) -> Vec<Value> {
    s.get(&format!("/audit/events?action={action}&limit=200"), key)
        .await
        .assert_ok(200)["events"]
        .as_array()
        .unwrap()
        .clone()
}

/// The `audit.export_ready` events in the outbox of the tenant `tenant_id`.
async fn ready_events(s: &TestServer, tenant_id: &str) -> Vec<Value> {
    let mut c = s.svc.db.conn().await.unwrap();
    let tenant = casegate_domain::ids::TenantId(tenant_id.parse().unwrap());
    casegate_store::outbox::by_type(&mut *c, tenant, "audit.export_ready")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.data)
        .collect()
}

async fn make_users(s: &TestServer, prefix: &str, n: usize) {
    for i in 0..n {
        s.post(
            "/users",
            s.a.key("admin"),
            json!({"email": format!("{prefix}{i}@acme.example"), "name": format!("Ñame «{i}» 名")}),
        )
        .await
        .assert_ok(201);
    }
}

async fn a_json_export_verifies_standalone(b: Backend) {
    let s = start(b).await;
    make_users(&s, "a", 3).await;
    let auditor = s.a.key("auditor");
    let r = request(
        &s,
        auditor,
        json!({"format": "json", "from": PERIOD_FROM, "to": PERIOD_TO}),
    )
    .await;
    let queued = r.assert_ok(202).clone();
    let id = queued["export_id"].as_str().unwrap().to_string();
    assert_eq!(queued["status"], "queued");
    assert_eq!(
        r.header("location").unwrap(),
        format!("/api/v1/audit/exports/{id}")
    );
    // Not downloadable before the worker ran.
    let early = download(&s, auditor, &id).await;
    assert_eq!(early.0, 409);
    assert_eq!(
        serde_json::from_slice::<Value>(&early.2).unwrap()["error"]["code"],
        "export_not_ready"
    );

    assert_eq!(work(&s).await, 1);
    assert_eq!(work(&s).await, 0, "an export is produced once");
    let st = status_of(&s, auditor, &id).await;
    assert_eq!(st["status"], "ready", "{st:#}");
    assert_eq!(
        st["download_url"],
        format!("/api/v1/audit/exports/{id}/download")
    );

    let (status, headers, bytes) = download(&s, auditor, &id).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    // The file is what the status vouches for: its SHA-256 and a detached Ed25519 signature
    // under the published key, repeated in the headers.
    assert_eq!(st["sha256"], hex(&Sha256::digest(&bytes)));
    assert_eq!(st["size_bytes"], bytes.len());
    assert_eq!(
        headers["x-casegate-signature-ed25519"].to_str().unwrap(),
        st["signature"]
    );
    let key = public_key(&s, auditor).await;
    key.verify_strict(&bytes, &signature(st["signature"].as_str().unwrap()))
        .expect("the file's signature verifies");
    let mut tampered = bytes.clone();
    tampered[10] ^= 1;
    assert!(
        key.verify_strict(&tampered, &signature(st["signature"].as_str().unwrap()))
            .is_err()
    );

    // Standalone verification of the content.
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(doc["tenant_id"], s.a.id);
    assert_eq!(doc["from"], "2026-03-01T00:00:00.000000Z");
    assert_eq!(doc["to"], "2026-03-03T00:00:00.000000Z");
    let events = doc["events"].as_array().unwrap();
    // Every event of the chain up to the request, exactly as the API returns them.
    let api = s
        .get("/audit/events?order=asc&limit=200", auditor)
        .await
        .assert_ok(200)["events"]
        .clone();
    let requested_seq = events.len();
    assert_eq!(events[..], api.as_array().unwrap()[..requested_seq]);
    assert_eq!(events.last().unwrap()["action"], "audit_export.requested");
    recompute(events).expect("the exported chain recomputes");
    let cp = &doc["checkpoint"];
    assert_eq!(cp["seq"], requested_seq);
    assert_eq!(cp["hash"], events.last().unwrap()["hash"]);
    let body = json!({"tenant_id": cp["tenant_id"], "seq": cp["seq"], "hash": cp["hash"], "signed_at": cp["signed_at"]});
    let cp_key: [u8; 32] = b64()
        .decode(cp["public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    VerifyingKey::from_bytes(&cp_key)
        .unwrap()
        .verify_strict(
            &serde_jcs::to_vec(&body).unwrap(),
            &signature(cp["signature"].as_str().unwrap()),
        )
        .expect("the checkpoint verifies");
    // Editing any exported event breaks the recomputation.
    let mut forged = events.clone();
    forged[1]["actor"] = json!("someone-else@acme.example");
    assert!(recompute(&forged).is_err());

    // The request, its completion and the download are audited; `audit.export_ready` is in the
    // outbox, committed with the completion.
    assert_eq!(
        audited(&s, auditor, "audit_export.requested").await.len(),
        1
    );
    let done = audited(&s, auditor, "audit_export.completed").await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["actor"], "system");
    assert_eq!(done[0]["entity_id"], id);
    assert_eq!(done[0]["changes"]["sha256"]["after"], st["sha256"]);
    assert_eq!(
        audited(&s, auditor, "audit_export.downloaded").await.len(),
        1
    );
    let ready = ready_events(&s, &s.a.id).await;
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0]["export_id"], id);
    assert_eq!(ready[0]["status"], "ready");
    assert_eq!(ready[0]["sha256"], st["sha256"]);
    assert!(ready_events(&s, &s.b.id).await.is_empty());

    // A later period starts mid-chain: it verifies from its first event's prev_hash on.
    s.clock.advance(time::Duration::hours(2));
    make_users(&s, "b", 2).await;
    s.clock.advance(time::Duration::minutes(1));
    let from = casegate_domain::clock::wire_time(s.clock.now());
    s.clock.advance(time::Duration::minutes(1));
    let id2 = queue(
        &s,
        auditor,
        json!({"format": "json", "from": from, "to": "2026-03-04T00:00:00Z"}),
    )
    .await;
    work(&s).await;
    let (_, _, bytes) = download(&s, auditor, &id2).await;
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    let events = doc["events"].as_array().unwrap();
    assert_eq!(
        events.len(),
        1,
        "only the second request falls in the period"
    );
    let first = &events[0];
    let prev: [u8; 32] = (0..32)
        .map(|i| {
            u8::from_str_radix(&first["prev_hash"].as_str().unwrap()[2 * i..2 * i + 2], 16).unwrap()
        })
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    recompute_from(events, prev, first["seq"].as_u64().unwrap() as usize).unwrap();
    assert_eq!(doc["checkpoint"]["hash"], first["hash"]);
    s.stop().await;
}

async fn csv_and_pdf_exports_are_signed_and_readable(b: Backend) {
    let s = start(b).await;
    make_users(&s, "a", 2).await;
    let officer = s.a.key("compliance_officer");
    let mut ids = Vec::new();
    for body in [
        json!({"format": "csv", "from": PERIOD_FROM, "to": PERIOD_TO, "entity_type": "user"}),
        json!({"format": "pdf", "from": PERIOD_FROM, "to": PERIOD_TO}),
        json!({"format": "csv", "from": PERIOD_FROM, "to": PERIOD_TO, "include_hash_chain": false}),
    ] {
        ids.push(queue(&s, officer, body).await);
    }
    assert_eq!(work(&s).await, 3);
    let key = public_key(&s, officer).await;
    let user_events = s
        .get(
            "/audit/events?entity_type=user&order=asc&limit=200",
            officer,
        )
        .await
        .assert_ok(200)["events"]
        .clone();

    // CSV filtered to users: a header row, then one row per user event, `changes` as JSON.
    let st = status_of(&s, officer, &ids[0]).await;
    let (_, headers, bytes) = download(&s, officer, &ids[0]).await;
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    key.verify_strict(&bytes, &signature(st["signature"].as_str().unwrap()))
        .unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let mut rows = csv_rows(&text);
    let header = rows.remove(0);
    assert_eq!(
        header,
        "tenant_id,seq,event_id,occurred_at,actor,actor_id,actor_ip,request_id,action,entity_type,entity_id,changes,prev_hash,hash"
            .split(',')
            .collect::<Vec<_>>()
    );
    assert_eq!(rows.len(), user_events.as_array().unwrap().len());
    assert_eq!(st["event_count"], rows.len());
    for (row, ev) in rows.iter().zip(user_events.as_array().unwrap()) {
        assert_eq!(row[1], ev["seq"].to_string());
        assert_eq!(row[8], ev["action"].as_str().unwrap());
        assert_eq!(
            serde_json::from_str::<Value>(&row[11]).unwrap(),
            ev["changes"]
        );
        assert_eq!(row[13], ev["hash"].as_str().unwrap());
    }

    // Without the chain the hash columns are absent.
    let (_, _, bytes) = download(&s, officer, &ids[2]).await;
    let rows = csv_rows(&String::from_utf8(bytes).unwrap());
    assert_eq!(rows[0].len(), 12);
    assert!(!rows[0].contains(&"hash".to_string()));

    // The PDF: a signed PDF/A-2b document, not a dump.
    let st = status_of(&s, officer, &ids[1]).await;
    let (_, headers, bytes) = download(&s, officer, &ids[1]).await;
    assert_eq!(headers["content-type"], "application/pdf");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .ends_with(".pdf\"")
    );
    key.verify_strict(&bytes, &signature(st["signature"].as_str().unwrap()))
        .unwrap();
    assert!(bytes.starts_with(b"%PDF-1.7"));
    let raw = String::from_utf8_lossy(&bytes);
    assert!(
        raw.contains("pdfaid:part") && raw.contains("pdfaid:conformance"),
        "PDF/A identification"
    );
    assert!(
        raw.contains("Audit trail report"),
        "the title is in the metadata"
    );
    s.stop().await;
}

/// Splits CSV text into rows of fields (RFC 4180 quoting).
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut field, mut quoted, mut chars) =
        (Vec::new(), String::new(), false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => row.push(std::mem::take(&mut field)),
            ('\n', false) => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (c, _) => field.push(c),
        }
    }
    rows
}

async fn export_requests_are_checked_and_confined(b: Backend) {
    let config = ServiceConfig {
        audit_export_max_events: 5,
        ..ServiceConfig::default()
    };
    let s = start_with(b, settings(), config).await;
    let auditor = s.a.key("auditor");
    let ok = json!({"format": "json", "from": PERIOD_FROM, "to": "2026-03-02T08:00:00Z"});
    for (body, param) in [
        (
            json!({"format": "xlsx", "from": PERIOD_FROM, "to": PERIOD_TO}),
            "format",
        ),
        (
            json!({"format": "json", "from": "yesterday", "to": PERIOD_TO}),
            "from",
        ),
        (
            json!({"format": "json", "from": PERIOD_FROM, "to": PERIOD_FROM}),
            "to",
        ),
        (
            json!({"format": "json", "from": "2025-03-01T00:00:00Z", "to": "2026-03-01T00:00:01Z"}),
            "to",
        ),
        (
            json!({"format": "json", "from": "2026-04-01T00:00:00Z", "to": "2026-05-01T00:00:00Z"}),
            "from",
        ),
        (
            json!({"format": "json", "from": PERIOD_FROM, "to": PERIOD_TO, "entity_type": "x".repeat(65)}),
            "entity_type",
        ),
        // The demo tenant's set-up alone holds more than five events.
        (
            json!({"format": "json", "from": PERIOD_FROM, "to": PERIOD_TO}),
            "to",
        ),
    ] {
        let r = request(&s, auditor, body.clone()).await;
        r.assert_error(422, "validation_failed");
        assert_eq!(r.body["error"]["param"], param, "{body}");
    }
    for bad in [
        json!({"format": "json", "from": PERIOD_FROM, "to": PERIOD_TO, "colour": "red"}),
        json!({"format": "json"}),
        json!([1, 2]),
    ] {
        let r = request(&s, auditor, bad).await;
        assert!(matches!(r.status.as_u16(), 400 | 422), "{:#}", r.body);
    }
    let r = s
        .send(
            s.http
                .post(s.url("/audit/exports"))
                .bearer_auth(auditor)
                .header("content-type", "application/json")
                .body("{\"format\": "),
        )
        .await;
    r.assert_error(400, "malformed_request");
    let r = s
        .send(
            s.http
                .post(s.url("/audit/exports"))
                .bearer_auth(auditor)
                .header("content-type", "application/json")
                .body(format!(
                    "{{\"format\": \"{}\"}}",
                    "j".repeat(2 * 1024 * 1024)
                )),
        )
        .await;
    r.assert_error(413, "payload_too_large");
    assert_eq!(
        s.get("/audit/exports", auditor).await.assert_ok(200)["total"],
        0,
        "refused requests change nothing"
    );

    // Permissions: an analyst cannot export (and the refusal is audited); no credential is 401.
    request(&s, s.a.key("analyst"), ok.clone())
        .await
        .assert_error(403, "forbidden");
    let denied = audited(&s, auditor, "auth.permission_denied").await;
    assert!(denied.iter().any(|e| e["entity_type"] == "audit_export"));
    s.call(Method::POST, "/audit/exports", None, Some(ok.clone()))
        .await
        .assert_error(401, "unauthenticated");
    s.get("/audit/exports", s.a.key("analyst"))
        .await
        .assert_error(403, "forbidden");
    s.get("/audit/exports?limit=201", auditor)
        .await
        .assert_error(422, "validation_failed");

    // Another organisation's export answers exactly like a missing one.
    let id = queue(&s, auditor, ok).await;
    work(&s).await;
    let other = s.b.key("auditor");
    for path in [
        format!("/audit/exports/{id}"),
        format!("/audit/exports/{id}/download"),
        format!("/audit/exports/{}", uuid::Uuid::new_v4()),
        "/audit/exports/not-a-uuid".to_string(),
    ] {
        s.get(&path, other).await.assert_error(404, "not_found");
    }
    assert_eq!(
        s.get("/audit/exports", other).await.assert_ok(200)["total"],
        0
    );
    let r = s
        .send(
            s.http
                .get(s.url(&format!("/audit/exports/{id}")))
                .bearer_auth(auditor)
                .header("x-tenant-id", &s.b.id),
        )
        .await;
    r.assert_error(403, "tenant_mismatch");
    assert_eq!(audited(&s, other, "audit_export.downloaded").await.len(), 0);
    let page = s
        .get("/audit/exports?offset=5", auditor)
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(page["total"], 1);
    assert_eq!(page["exports"], json!([]));
    s.stop().await;
}

async fn a_failing_export_is_retried_then_reported(b: Backend) {
    // A blob directory below a regular file cannot be created: every write fails.
    let blocker = std::env::temp_dir().join(format!("casegate-blocker-{}", uuid::Uuid::new_v4()));
    std::fs::write(&blocker, b"not a directory").unwrap();
    let config = ServiceConfig {
        blob_dir: blocker.join("blobs"),
        ..ServiceConfig::default()
    };
    let s = start_with(b, settings(), config).await;
    let auditor = s.a.key("auditor");
    let id = queue(
        &s,
        auditor,
        json!({"format": "csv", "from": PERIOD_FROM, "to": PERIOD_TO}),
    )
    .await;
    work(&s).await;
    let st = status_of(&s, auditor, &id).await;
    assert_eq!(st["status"], "failed", "{st:#}");
    assert_eq!(st["attempts"], casegate_service::exports::MAX_ATTEMPTS);
    assert!(st["error"].is_string());
    assert!(st["sha256"].is_null() && st["download_url"].is_null());
    let (status, _, _) = download(&s, auditor, &id).await;
    assert_eq!(status, 409);
    let failed = audited(&s, auditor, "audit_export.failed").await;
    assert_eq!(failed.len(), 1);
    let ready = ready_events(&s, &s.a.id).await;
    assert_eq!(ready.len(), 1, "subscribers hear about the failure once");
    assert_eq!(ready[0]["status"], "failed");
    assert_eq!(work(&s).await, 0, "a failed export is not retried again");
    s.stop().await;
    std::fs::remove_file(blocker).unwrap();
}

async fn a_crashed_worker_does_not_lose_an_export(b: Backend) {
    let s = start(b).await;
    let auditor = s.a.key("auditor");
    let id = queue(
        &s,
        auditor,
        json!({"format": "json", "from": PERIOD_FROM, "to": PERIOD_TO}),
    )
    .await;
    // A worker claims it and dies before finishing.
    let stale = {
        let now = s.clock.now();
        let mut tx = s.svc.db.begin().await.unwrap();
        let e = casegate_store::exports::claim_next(
            &mut *tx,
            now,
            now + casegate_service::exports::LEASE,
        )
        .await
        .unwrap()
        .expect("claimed");
        tx.commit().await.unwrap();
        e
    };
    assert_eq!(status_of(&s, auditor, &id).await["status"], "running");
    assert_eq!(work(&s).await, 0, "a live claim is respected");
    s.clock
        .advance(casegate_service::exports::LEASE + time::Duration::seconds(1));
    assert_eq!(work(&s).await, 1, "a lapsed claim is taken over");
    let st = status_of(&s, auditor, &id).await;
    assert_eq!(st["status"], "ready");
    assert_eq!(st["attempts"], 2);
    // The dead worker's late result is discarded.
    let mut tx = s.svc.db.begin().await.unwrap();
    let late = casegate_store::exports::ExportFile {
        event_count: 0,
        seq_range: None,
        size_bytes: 0,
        sha256: "0".repeat(64),
        signature: String::new(),
        key_id: String::new(),
    };
    assert!(
        !casegate_store::exports::mark_ready(&mut *tx, &stale, s.clock.now(), &late)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    let again = status_of(&s, auditor, &id).await;
    assert_eq!(again["sha256"], st["sha256"]);
    assert_eq!(ready_events(&s, &s.a.id).await.len(), 1);
    s.stop().await;
}
