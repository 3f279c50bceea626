//! The audit trail through the API: every command leaves its event, the chain recomputes
//! independently from what the API returns, checkpoints verify with the published key, and
//! tampering with the database directly is caught.
use crate::both_backends;
use crate::common::*;
use base64::Engine;
use casegate_domain::clock::Clock;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

both_backends!(
    every_command_leaves_its_event,
    every_mutating_endpoint_leaves_its_event,
    the_chain_recomputes_from_the_api_and_checkpoints_verify,
    tampering_of_each_kind_is_detected,
    audit_is_confined_and_its_input_checked,
    the_worker_checkpoints_moved_chains_once_per_interval,
);

async fn events(s: &TestServer, key: &str, query: &str) -> Vec<Value> {
    let r = s
        .get(&format!("/audit/events?limit=200&{query}"), key)
        .await;
    r.assert_ok(200)["events"].as_array().unwrap().clone()
}

async fn call_with_id(
    s: &TestServer,
    method: Method,
    path: &str,
    key: &str,
    body: Value,
    rid: &str,
) -> Resp {
    s.send(
        s.http
            .request(method, s.url(path))
            .bearer_auth(key)
            .header("x-request-id", rid)
            .json(&body),
    )
    .await
}

async fn every_command_leaves_its_event(b: Backend) {
    let s = start(b).await;
    let (admin, auditor) = (s.a.key("admin"), s.a.key("auditor"));
    let r = call_with_id(
        &s,
        Method::POST,
        "/users",
        admin,
        json!({"email": "zoe@acme.example", "name": "Zoe", "roles": ["analyst"]}),
        "rid-create",
    )
    .await;
    let zoe = r.assert_ok(201)["id"].as_str().unwrap().to_string();
    let e = &events(&s, auditor, &format!("entity_type=user&entity_id={zoe}")).await[0];
    assert_eq!(e["action"], "user.created");
    assert_eq!(e["actor"], "admin@acme.example");
    assert_eq!(e["request_id"], "rid-create");
    assert_eq!(e["actor_ip"], "127.0.0.1");
    assert_eq!(
        e["changes"]["roles"],
        json!({"before": null, "after": ["analyst"]})
    );
    call_with_id(
        &s,
        Method::PUT,
        &format!("/users/{zoe}/roles"),
        admin,
        json!({"roles": ["auditor"]}),
        "rid-roles",
    )
    .await
    .assert_ok(200);
    let e = &events(&s, auditor, "action=user.roles_changed").await[0];
    assert_eq!(
        e["changes"]["roles"],
        json!({"before": ["analyst"], "after": ["auditor"]})
    );
    assert_eq!(e["request_id"], "rid-roles");
    call_with_id(
        &s,
        Method::PATCH,
        &format!("/users/{zoe}"),
        admin,
        json!({"active": false, "password": "a long new password"}),
        "rid-patch",
    )
    .await
    .assert_ok(200);
    let e = &events(&s, auditor, "action=user.updated").await[0];
    assert_eq!(
        e["changes"]["active"],
        json!({"before": true, "after": false})
    );
    assert!(
        !e.to_string().contains("a long new password"),
        "no secret in the trail"
    );
    let k = call_with_id(
        &s,
        Method::POST,
        "/api-keys",
        admin,
        json!({"name": "etl", "user_id": "auditor@acme.example"}),
        "rid-key",
    )
    .await;
    let k = k.assert_ok(201).clone();
    let e = &events(&s, auditor, "action=api_key.created").await[0];
    assert_eq!(e["entity_id"], k["id"]);
    assert!(
        !e.to_string().contains(k["key"].as_str().unwrap()),
        "the key itself is never recorded"
    );
    s.delete(&format!("/api-keys/{}", k["id"].as_str().unwrap()), admin)
        .await
        .assert_ok(200);
    s.delete(&format!("/api-keys/{}", k["id"].as_str().unwrap()), admin)
        .await
        .assert_ok(200);
    assert_eq!(
        events(&s, auditor, "action=api_key.revoked").await.len(),
        1,
        "a second revoke changes nothing"
    );
    // Logins, failed logins, logouts.
    let pw = casegate_service::demo::DEMO_PASSWORD;
    let bad = json!({"username": "mlro@acme.example", "password": "not the password"});
    s.call(Method::POST, "/auth/login", None, Some(bad))
        .await
        .assert_error(401, "unauthenticated");
    let e = &events(&s, auditor, "action=auth.login_failed").await[0];
    assert_eq!(e["actor"], "mlro@acme.example");
    assert!(e["actor_id"].is_null());
    let r = s
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": "mlro@acme.example", "password": pw})),
        )
        .await;
    r.assert_ok(200);
    let (cookie, csrf) = (
        r.header("set-cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string(),
        r.header("x-csrf-token").unwrap().to_string(),
    );
    assert_eq!(
        events(&s, auditor, "action=auth.login").await[0]["actor"],
        "mlro@acme.example"
    );
    s.send(
        s.http
            .post(s.url("/auth/logout"))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf),
    )
    .await;
    assert_eq!(
        events(&s, auditor, "action=auth.logout&actor=mlro@acme.example")
            .await
            .len(),
        1
    );
    // A refused sensitive operation is recorded; a refused command leaves no other trace.
    s.post(
        "/users",
        s.a.key("analyst"),
        json!({"email": "x@acme.example", "name": "X"}),
    )
    .await
    .assert_error(403, "forbidden");
    let e = &events(&s, auditor, "action=auth.permission_denied").await[0];
    assert_eq!(e["actor"], "analyst@acme.example");
    assert_eq!(e["changes"]["required_permission"], "admin.users");
    let before = events(&s, auditor, "").await.len();
    s.post("/users", admin, json!({"email": "bad-email", "name": "X"}))
        .await
        .assert_error(422, "validation_failed");
    s.post(
        "/users",
        admin,
        json!({"email": "zoe@acme.example", "name": "Zoe"}),
    )
    .await
    .assert_error(409, "already_exists");
    assert_eq!(
        events(&s, auditor, "").await.len(),
        before,
        "failed commands append nothing"
    );
    // Filters: actor by id, time window, order.
    let asc = events(&s, auditor, "order=asc").await;
    assert_eq!(asc[0]["seq"], 1);
    assert_eq!(asc[0]["action"], "tenant.created");
    assert_eq!(asc[0]["actor"], "system");
    s.clock.advance(time::Duration::hours(1));
    let later = casegate_domain::clock::wire_time(s.clock.now());
    assert!(
        events(&s, auditor, &format!("from={later}"))
            .await
            .is_empty()
    );
    assert_eq!(
        events(&s, auditor, &format!("to={later}")).await.len(),
        before
    );
    s.stop().await;
}

/// Recomputes the chain from API events exactly as docs/audit-format.md tells a third party to.
/// Recomputes a chain from its genesis, as a third party would: RFC 8785 of each event minus
/// `hash`, SHA-256 over the previous hash and those bytes.
pub(crate) fn recompute(events: &[Value]) -> Result<(), String> {
    recompute_from(events, [0u8; 32], 1)
}

/// Recomputes a run of events whose first one sits at `first_seq` after `prev`.
pub(crate) fn recompute_from(
    events: &[Value],
    mut prev: [u8; 32],
    first_seq: usize,
) -> Result<(), String> {
    for (i, e) in events.iter().enumerate() {
        let mut record = e.as_object().unwrap().clone();
        let hash = record.remove("hash").unwrap();
        if record["seq"] != json!(i + first_seq) {
            return Err(format!("gap at {i}"));
        }
        if record["prev_hash"].as_str().unwrap() != hex(&prev) {
            return Err(format!("prev_hash of {}", i + first_seq));
        }
        let mut h = Sha256::new();
        h.update(prev);
        h.update(serde_jcs::to_vec(&record).unwrap());
        let digest: [u8; 32] = h.finalize().into();
        if hex(&digest) != hash.as_str().unwrap() {
            return Err(format!("hash of {}", i + first_seq));
        }
        prev = digest;
    }
    Ok(())
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn the_chain_recomputes_from_the_api_and_checkpoints_verify(b: Backend) {
    let s = start(b).await;
    let admin = s.a.key("admin");
    for i in 0..5 {
        s.post(
            "/users",
            admin,
            json!({"email": format!("u{i}@acme.example"), "name": format!("Üser «{i}» €")}),
        )
        .await
        .assert_ok(201);
    }
    let all = events(&s, admin, "order=asc").await;
    assert!(all.len() > 20);
    recompute(&all).unwrap();
    let v = s.get("/audit/verify", admin).await;
    let v = v.assert_ok(200).clone();
    assert_eq!(v["valid"], true);
    assert_eq!(v["events_checked"], all.len());
    assert_eq!(v["head_hash"], all.last().unwrap()["hash"]);
    assert!(v["first_broken_seq"].is_null());
    // A checkpoint on demand, verified with the published key by a plain Ed25519 check.
    let cp = s
        .call(
            Method::POST,
            "/audit/checkpoints",
            Some(s.a.key("compliance_officer")),
            None,
        )
        .await;
    let cp = cp.assert_ok(201).clone();
    assert_eq!(cp["seq"], all.len());
    let list = s
        .get("/audit/checkpoints", s.a.key("auditor"))
        .await
        .assert_ok(200)
        .clone();
    let b64 = base64::engine::general_purpose::STANDARD;
    let pk: [u8; 32] = b64
        .decode(list["public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&pk).unwrap();
    let listed = &list["checkpoints"][0];
    assert_eq!(listed["hash"], all.last().unwrap()["hash"]);
    let body = json!({"tenant_id": listed["tenant_id"], "seq": listed["seq"], "hash": listed["hash"], "signed_at": listed["signed_at"]});
    let sig: [u8; 64] = b64
        .decode(listed["signature"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    key.verify_strict(
        &serde_jcs::to_vec(&body).unwrap(),
        &ed25519_dalek::Signature::from_bytes(&sig),
    )
    .unwrap();
    s.call(
        Method::POST,
        "/audit/checkpoints",
        Some(s.a.key("legal_counsel")),
        None,
    )
    .await
    .assert_error(403, "forbidden");
    s.stop().await;
}

/// Runs raw SQL on the test database, as an attacker with database access would.
async fn sql(s: &TestServer, stmt: &str, args: &[casegate_store::Val]) -> u64 {
    let mut c = s.svc.db.conn().await.unwrap();
    c.execute(stmt, args)
        .await
        .unwrap_or_else(|e| panic!("{stmt}: {e}"))
}

async fn disable_triggers(s: &TestServer) {
    let mut c = s.svc.db.conn().await.unwrap();
    match c.dialect() {
        casegate_store::Dialect::Sqlite => {
            for t in ["audit_events_no_update", "audit_events_no_delete"] {
                c.execute(&format!("DROP TRIGGER {t}"), &[]).await.unwrap();
            }
        }
        casegate_store::Dialect::Postgres => {
            c.execute("ALTER TABLE audit_events DISABLE TRIGGER USER", &[])
                .await
                .unwrap();
        }
    }
}

async fn verdict(s: &TestServer, key: &str) -> Value {
    s.get("/audit/verify", key).await.assert_ok(200).clone()
}

/// The API's verdict on the tenant of `t` (id, admin key), after checking that verification in
/// batches of 1, 2 and 3 events (the reader and the checker crossing batch boundaries) reaches
/// the same one.
async fn verdict_of(s: &TestServer, t: &(uuid::Uuid, String)) -> Value {
    let v = verdict(s, &t.1).await;
    for batch in [1, 2, 3] {
        let small = casegate_service::audit::verify_tenant_in_batches(
            &s.svc,
            casegate_domain::ids::TenantId(t.0),
            batch,
        )
        .await
        .unwrap();
        assert_eq!(
            serde_json::to_value(&small).unwrap(),
            v,
            "batches of {batch}"
        );
    }
    v
}

async fn tenant_with_events(s: &TestServer, slug: &str) -> (uuid::Uuid, String) {
    let p = casegate_service::tenants::create(
        &s.svc,
        slug,
        slug,
        &format!("ciso@{slug}.example"),
        None,
    )
    .await
    .unwrap();
    for i in 0..4 {
        s.post(
            "/users",
            &p.admin_key.secret,
            json!({"email": format!("u{i}@{slug}.example"), "name": format!("Name{i}")}),
        )
        .await
        .assert_ok(201);
    }
    (p.tenant.id.0, p.admin_key.secret)
}

async fn tampering_of_each_kind_is_detected(b: Backend) {
    let s = start(b).await;
    let edited = tenant_with_events(&s, "edited").await;
    let deleted = tenant_with_events(&s, "deleted").await;
    let truncated = tenant_with_events(&s, "truncated").await;
    let reindexed = tenant_with_events(&s, "reindexed").await;
    let untouched = tenant_with_events(&s, "untouched").await;
    for t in [&edited, &deleted, &truncated, &reindexed, &untouched] {
        assert_eq!(verdict_of(&s, t).await["valid"], true);
    }
    // The tail is checkpointed before anything is touched.
    s.call(Method::POST, "/audit/checkpoints", Some(&truncated.1), None)
        .await
        .assert_ok(201);
    disable_triggers(&s).await;
    // 1. A record edited in place (seq 5 = the user named Name1).
    let n = sql(&s, "UPDATE audit_events SET record = replace(record, 'Name1', 'NameX') WHERE tenant_id = $1 AND seq = 5", &[edited.0.into()]).await;
    assert_eq!(n, 1);
    let v = verdict_of(&s, &edited).await;
    assert_eq!(
        (v["valid"].clone(), v["first_broken_seq"].clone()),
        (json!(false), json!(5)),
        "{v}"
    );
    // 2. A row deleted from the middle.
    sql(
        &s,
        "DELETE FROM audit_events WHERE tenant_id = $1 AND seq = 5",
        &[deleted.0.into()],
    )
    .await;
    assert_eq!(verdict_of(&s, &deleted).await["first_broken_seq"], 5);
    // 3. The tail truncated behind the signed checkpoint, head rewound to look consistent.
    let head = verdict_of(&s, &truncated).await["head_seq"]
        .as_i64()
        .unwrap();
    sql(
        &s,
        "DELETE FROM audit_events WHERE tenant_id = $1 AND seq > $2",
        &[truncated.0.into(), (head - 2).into()],
    )
    .await;
    let v = verdict_of(&s, &truncated).await;
    assert_eq!(v["first_broken_seq"], head - 1, "{v}");
    assert!(v["reason"].as_str().unwrap().contains("checkpoint"));
    // 4. An indexed column changed so that filters would hide the event.
    sql(
        &s,
        "UPDATE audit_events SET entity_id = 'someone-else' WHERE tenant_id = $1 AND seq = 7",
        &[reindexed.0.into()],
    )
    .await;
    assert_eq!(verdict_of(&s, &reindexed).await["first_broken_seq"], 7);
    // Other tenants' chains are unaffected.
    assert_eq!(verdict_of(&s, &untouched).await["valid"], true);
    assert_eq!(verdict(&s, s.a.key("admin")).await["valid"], true);
    // The command-line verifier reaches the same verdicts.
    let ok = casegate_server::audit_verify(&s.svc, Some("untouched"))
        .await
        .unwrap();
    assert!(ok);
    assert!(!casegate_server::audit_verify(&s.svc, None).await.unwrap());
    s.stop().await;
}

async fn audit_is_confined_and_its_input_checked(b: Backend) {
    let s = start(b).await;
    let a = events(&s, s.a.key("auditor"), "").await;
    assert!(!a.is_empty() && a.iter().all(|e| e["tenant_id"] == s.a.id.as_str()));
    assert!(!a.iter().any(|e| e.to_string().contains("globex")));
    for role in ["analyst", "senior_analyst"] {
        s.get("/audit/events", s.a.key(role))
            .await
            .assert_error(403, "forbidden");
        s.get("/audit/verify", s.a.key(role))
            .await
            .assert_error(403, "forbidden");
        s.get("/audit/checkpoints", s.a.key(role))
            .await
            .assert_error(403, "forbidden");
    }
    for role in [
        "supervisor",
        "compliance_officer",
        "legal_counsel",
        "mlro",
        "auditor",
        "admin",
    ] {
        s.get("/audit/events?limit=1", s.a.key(role))
            .await
            .assert_ok(200);
    }
    let key = s.a.key("auditor");
    for (q, param) in [
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("order=sideways", "order"),
        ("limit=201", "limit"),
        ("offset=-3", "offset"),
    ] {
        let r = s.get(&format!("/audit/events?{q}"), key).await;
        r.assert_error(422, "validation_failed");
        assert_eq!(r.body["error"]["param"], param, "{q}");
    }
    // Another tenant's entity ids find nothing.
    let b_user = s
        .get("/users/analyst@globex.example", s.b.key("admin"))
        .await
        .assert_ok(200)["id"]
        .clone();
    assert!(
        events(&s, key, &format!("entity_id={}", b_user.as_str().unwrap()))
            .await
            .is_empty()
    );
    s.stop().await;
}

async fn the_worker_checkpoints_moved_chains_once_per_interval(b: Backend) {
    let s = start(b).await;
    let hour = time::Duration::hours(1);
    let due = || casegate_service::audit::checkpoint_due(&s.svc, hour);
    assert_eq!(
        due().await.unwrap(),
        2,
        "both chains get a first checkpoint"
    );
    assert_eq!(due().await.unwrap(), 0, "nothing moved");
    s.post(
        "/users",
        s.a.key("admin"),
        json!({"email": "w@acme.example", "name": "W"}),
    )
    .await
    .assert_ok(201);
    s.clock.advance(hour - time::Duration::seconds(1));
    assert_eq!(
        due().await.unwrap(),
        0,
        "acme moved, but within the interval"
    );
    s.clock.advance(time::Duration::seconds(1));
    assert_eq!(due().await.unwrap(), 1, "only the chain that moved");
    let cps = s
        .get("/audit/checkpoints", s.a.key("auditor"))
        .await
        .assert_ok(200)["checkpoints"]
        .clone();
    let head = verdict(&s, s.a.key("auditor")).await["head_seq"].clone();
    assert_eq!(cps.as_array().unwrap().len(), 2);
    assert_eq!(cps[1]["seq"], head);
    assert_eq!(verdict(&s, s.a.key("auditor")).await["valid"], true);
    s.stop().await;
}

/// Session endpoints, whose events (`auth.login`, `auth.login_failed`, `auth.logout`)
/// `every_command_leaves_its_event` checks by action and actor (they take no bearer key).
const CHECKED_ABOVE: &[&str] = &["POST /auth/login", "POST /auth/logout"];

/// Mutating endpoints that write no audit event, and why.
const NOT_AUDITED: &[(&str, &str)] = &[(
    "POST /audit/checkpoints",
    "a checkpoint is itself an append-only, signed record of the chain; an event for it would \
     move the head it vouches for",
)];

/// Sends `method path` (the documented `route`) with a fresh request id and answers the body;
/// asserts the status and that the trail holds an `action` event carrying that request id.
#[allow(clippy::too_many_arguments)]
async fn audited(
    s: &TestServer,
    covered: &mut std::collections::BTreeSet<String>,
    method: Method,
    route: &str,
    path: &str,
    key: &str,
    body: Value,
    status: u16,
    action: &str,
) -> Value {
    let rid = format!("rid-{}", uuid::Uuid::new_v4().simple());
    let r = call_with_id(s, method.clone(), path, key, body, &rid).await;
    assert_eq!(r.status.as_u16(), status, "{method} {route}: {:#}", r.body);
    let answer = r.body.clone();
    let found = events(s, s.a.key("auditor"), &format!("action={action}")).await;
    assert!(
        found.iter().any(|e| e["request_id"] == rid.as_str()),
        "{method} {route}: no {action} event with request id {rid}: {found:#?}"
    );
    covered.insert(format!("{method} {route}"));
    answer
}

/// Every state-changing endpoint of the API leaves its audit event, with the request's id; the
/// list of endpoints is the OpenAPI document's, so a new endpoint without a check fails here.
async fn every_mutating_endpoint_leaves_its_event(b: Backend) {
    use crate::approvals::{ask_to_close, case_in_review, hv_fraud};
    let s = crate::webhooks::server(b).await;
    let mut covered = std::collections::BTreeSet::new();
    let c = &mut covered;
    let (admin, analyst, senior) = (
        s.a.key("admin"),
        s.a.key("analyst"),
        s.a.key("senior_analyst"),
    );
    let compliance = s.a.key("compliance_officer");
    let p = Method::POST;

    // Users and keys.
    let u = audited(
        &s,
        c,
        p.clone(),
        "/users",
        "/users",
        admin,
        json!({"email": "ines@acme.example", "name": "Ines", "roles": ["analyst"]}),
        201,
        "user.created",
    )
    .await;
    let u = u["id"].as_str().unwrap().to_string();
    audited(
        &s,
        c,
        Method::PATCH,
        "/users/{id}",
        &format!("/users/{u}"),
        admin,
        json!({"name": "Ines M."}),
        200,
        "user.updated",
    )
    .await;
    audited(
        &s,
        c,
        Method::PUT,
        "/users/{id}/roles",
        &format!("/users/{u}/roles"),
        admin,
        json!({"roles": ["senior_analyst"]}),
        200,
        "user.roles_changed",
    )
    .await;
    let key = audited(
        &s,
        c,
        p.clone(),
        "/api-keys",
        "/api-keys",
        admin,
        json!({"name": "etl", "user_id": u}),
        201,
        "api_key.created",
    )
    .await;
    let key = key["id"].as_str().unwrap().to_string();
    audited(
        &s,
        c,
        Method::DELETE,
        "/api-keys/{id}",
        &format!("/api-keys/{key}"),
        admin,
        json!({}),
        200,
        "api_key.revoked",
    )
    .await;

    // Case types and cases.
    audited(
        &s,
        c,
        Method::PUT,
        "/case-types/{key}",
        "/case-types/AUDITED",
        admin,
        hv_fraud(None),
        201,
        "case_type.created",
    )
    .await;
    let k = audited(
        &s,
        c,
        p.clone(),
        "/cases",
        "/cases",
        analyst,
        json!({"case_type": "AML_INV", "title": "Structuring at branch 12"}),
        201,
        "case.created",
    )
    .await;
    let id = k["id"].as_str().unwrap().to_string();
    let at = |tail: &str| format!("/cases/{id}{tail}");
    audited(
        &s,
        c,
        Method::PATCH,
        "/cases/{id}",
        &at(""),
        analyst,
        json!({"title": "Structuring at branch 12 and 14"}),
        200,
        "case.updated",
    )
    .await;
    audited(
        &s,
        c,
        p.clone(),
        "/cases/{id}/assign",
        &at("/assign"),
        analyst,
        json!({"assigned_to": "senior.analyst@acme.example"}),
        200,
        "case.assigned",
    )
    .await;
    audited(
        &s,
        c,
        p.clone(),
        "/cases/{id}/comments",
        &at("/comments"),
        analyst,
        json!({"content": "Cash deposits just under 10k"}),
        201,
        "case.commented",
    )
    .await;
    audited(&s, c, p.clone(), "/cases/{id}/attachments", &at("/attachments"), analyst,
        json!({"name": "statement.pdf", "type": "application/pdf", "url": "https://files.example/statement.pdf"}), 201, "case.attachment_added").await;
    audited(
        &s,
        c,
        p.clone(),
        "/cases/{id}/relations",
        &at("/relations"),
        analyst,
        json!({"party": {"kind": "person", "name": "Jane Roe"}, "relation": "subject"}),
        201,
        "case.related",
    )
    .await;
    audited(
        &s,
        c,
        p.clone(),
        "/parties",
        "/parties",
        analyst,
        json!({"kind": "organisation", "name": "Roe Trading Ltd"}),
        201,
        "party.created",
    )
    .await;
    audited(
        &s,
        c,
        p.clone(),
        "/cases/{id}/escalate",
        &at("/escalate"),
        analyst,
        json!({"reason": "Possible sanctions exposure", "escalated_to": "mlro@acme.example"}),
        200,
        "case.escalated",
    )
    .await;
    audited(
        &s,
        c,
        p.clone(),
        "/cases/{id}/status",
        &at("/status"),
        analyst,
        json!({"status": "determination"}),
        200,
        "case.status_changed",
    )
    .await;
    audited(
        &s,
        c,
        p.clone(),
        "/cases/{id}/disposition",
        &at("/disposition"),
        analyst,
        json!({"disposition": "TRUE_POSITIVE", "reason": "Confirmed structuring"}),
        200,
        "case.disposed",
    )
    .await;
    audited(
        &s,
        c,
        p.clone(),
        "/cases/{id}/override",
        &at("/override"),
        senior,
        json!({"original_decision": "TRUE_POSITIVE", "new_decision": "FALSE_POSITIVE",
               "reason": "Payroll payments", "approved_by": "mlro@acme.example"}),
        201,
        "case.decision_overridden",
    )
    .await;
    crate::cases::transition(
        &s,
        compliance,
        &id,
        "closed",
        Some("No suspicious activity"),
    )
    .await
    .assert_ok(200);
    audited(
        &s,
        c,
        p.clone(),
        "/cases/{id}/reopen",
        &at("/reopen"),
        analyst,
        json!({"reason": "New evidence"}),
        200,
        "case.reopened",
    )
    .await;

    // Alerts.
    let alert = crate::cases::create_case(&s, analyst,
        json!({"case_type": "ALERT", "title": "Rapid movement of funds", "subject_id": "CUST-0042"})).await;
    let a = alert["id"].as_str().unwrap();
    audited(
        &s,
        c,
        p.clone(),
        "/alerts/{id}/disposition",
        &format!("/alerts/{a}/disposition"),
        analyst,
        json!({"disposition": "true_positive", "escalate_to_case": true, "reason": "Mule pattern"}),
        200,
        "case.disposed",
    )
    .await;

    // Moves and approval gates.
    let gated = case_in_review(&s, None).await;
    let r = audited(
        &s,
        c,
        p.clone(),
        "/cases/{id}/transitions",
        &format!("/cases/{gated}/transitions"),
        analyst,
        json!({"to": "closed", "reason": "Funds recovered"}),
        202,
        "transition_request.created",
    )
    .await;
    let rid = r["request"]["id"].as_str().unwrap();
    audited(
        &s,
        c,
        p.clone(),
        "/transition-requests/{id}/cancel",
        &format!("/transition-requests/{rid}/cancel"),
        analyst,
        json!({}),
        200,
        "transition_request.cancelled",
    )
    .await;
    let rid = ask_to_close(&s, analyst, &gated).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    audited(
        &s,
        c,
        p.clone(),
        "/transition-requests/{id}/reject",
        &format!("/transition-requests/{rid}/reject"),
        compliance,
        json!({"comment": "Evidence incomplete"}),
        200,
        "transition_request.decided",
    )
    .await;
    let rid = ask_to_close(&s, analyst, &gated).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    audited(
        &s,
        c,
        p.clone(),
        "/transition-requests/{id}/approve",
        &format!("/transition-requests/{rid}/approve"),
        compliance,
        json!({}),
        200,
        "transition_request.decided",
    )
    .await;

    // Tasks and notifications.
    let t = audited(
        &s,
        c,
        p.clone(),
        "/tasks",
        "/tasks",
        analyst,
        json!({"case_id": id, "title": "Request statements"}),
        201,
        "task.created",
    )
    .await;
    let t = t["id"].as_str().unwrap();
    audited(
        &s,
        c,
        p.clone(),
        "/tasks/{id}/complete",
        &format!("/tasks/{t}/complete"),
        analyst,
        json!({}),
        200,
        "task.completed",
    )
    .await;
    casegate_service::dispatch::run(&s.svc, 100).await.unwrap();
    let inbox = s.get("/notifications", senior).await;
    let n = inbox.assert_ok(200)["notifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    audited(
        &s,
        c,
        p.clone(),
        "/notifications/{id}/read",
        &format!("/notifications/{n}/read"),
        senior,
        json!({}),
        200,
        "notification.read",
    )
    .await;

    // Webhooks.
    let (_rx, url) = crate::webhooks::receiver().await;
    let w = audited(
        &s,
        c,
        p.clone(),
        "/webhooks",
        "/webhooks",
        admin,
        json!({"url": url, "events": ["*"]}),
        201,
        "webhook.created",
    )
    .await;
    let w = w["id"].as_str().unwrap().to_string();
    audited(
        &s,
        c,
        Method::PATCH,
        "/webhooks/{id}",
        &format!("/webhooks/{w}"),
        admin,
        json!({"description": "SIEM"}),
        200,
        "webhook.updated",
    )
    .await;
    audited(
        &s,
        c,
        p.clone(),
        "/webhooks/{id}/rotate-secret",
        &format!("/webhooks/{w}/rotate-secret"),
        admin,
        json!({}),
        200,
        "webhook.secret_rotated",
    )
    .await;
    crate::webhooks::pump(&s).await;
    let list = s.get(&format!("/webhooks/{w}/deliveries"), admin).await;
    let d = list.assert_ok(200)["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    audited(
        &s,
        c,
        p.clone(),
        "/webhooks/{id}/deliveries/{delivery_id}/redeliver",
        &format!("/webhooks/{w}/deliveries/{d}/redeliver"),
        admin,
        json!({}),
        202,
        "webhook.redelivered",
    )
    .await;
    audited(
        &s,
        c,
        Method::DELETE,
        "/webhooks/{id}",
        &format!("/webhooks/{w}"),
        admin,
        json!({}),
        204,
        "webhook.deleted",
    )
    .await;

    // SARs and the filing profile.
    let profile = s
        .get("/settings/filing-profile", compliance)
        .await
        .assert_ok(200)
        .clone();
    audited(
        &s,
        c,
        Method::PUT,
        "/settings/filing-profile",
        "/settings/filing-profile",
        compliance,
        profile,
        200,
        "sar.filing_profile_updated",
    )
    .await;
    let case = crate::sars::structuring_case(&s).await;
    let sar = audited(
        &s,
        c,
        p.clone(),
        "/sars",
        "/sars",
        analyst,
        json!({"case_id": case, "filing_type": "initial", "jurisdiction": "fincen"}),
        201,
        "sar.created",
    )
    .await;
    let sar = sar["id"].as_str().unwrap().to_string();
    audited(
        &s,
        c,
        Method::PATCH,
        "/sars/{id}",
        &format!("/sars/{sar}"),
        analyst,
        json!({"activity": {"from_date": "2026-02-23", "to_date": "2026-02-25", "total_amount": 28500,
                            "classifications": [{"type_id": 1, "subtype_id": 114}]}}),
        200,
        "sar.updated",
    )
    .await;
    audited(
        &s,
        c,
        p.clone(),
        "/sars/{id}/status",
        &format!("/sars/{sar}/status"),
        analyst,
        json!({"new_status": "pending_review"}),
        200,
        "case.status_changed",
    )
    .await;
    let asked = s
        .post(
            &format!("/sars/{sar}/status"),
            compliance,
            json!({"new_status": "approved"}),
        )
        .await;
    let request = asked.assert_ok(202)["pending_request"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    crate::approvals::decide(&s, s.a.key("mlro"), &request, "approve", None)
        .await
        .assert_ok(200);
    audited(
        &s,
        c,
        p.clone(),
        "/sars/{id}/submit",
        &format!("/sars/{sar}/submit"),
        compliance,
        json!({}),
        200,
        "sar.submitted",
    )
    .await;
    let rid = format!("rid-{}", uuid::Uuid::new_v4().simple());
    let ack = "<EFilingBatchXML StatusCode=\"A\"><EFilingSubmissionXML><EFilingActivityXML SeqNum=\"1\">\
               <BSAID>31000055053784</BSAID></EFilingActivityXML></EFilingSubmissionXML></EFilingBatchXML>";
    let r = s
        .send(
            s.http
                .post(s.url(&format!("/sars/{sar}/acknowledgement")))
                .bearer_auth(compliance)
                .header("x-request-id", &rid)
                .header("content-type", "application/xml")
                .body(ack),
        )
        .await;
    assert_eq!(r.assert_ok(200)["bsa_id"], "31000055053784");
    let found = events(&s, s.a.key("auditor"), "action=sar.acknowledged").await;
    assert!(
        found.iter().any(|e| e["request_id"] == rid.as_str()),
        "{found:#?}"
    );
    c.insert("POST /sars/{id}/acknowledgement".into());

    // Audit exports.
    audited(
        &s,
        c,
        p.clone(),
        "/audit/exports",
        "/audit/exports",
        s.a.key("auditor"),
        json!({"format": "json", "from": "2026-03-01T00:00:00Z", "to": "2026-03-03T00:00:00Z"}),
        202,
        "audit_export.requested",
    )
    .await;

    // Every mutating operation of the OpenAPI document is accounted for.
    let doc = s.call(Method::GET, "/openapi.json", None, None).await;
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in doc.assert_ok(200)["paths"].as_object().unwrap() {
        for method in ["post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                documented.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    let accounted: std::collections::BTreeSet<String> = covered
        .iter()
        .cloned()
        .chain(CHECKED_ABOVE.iter().map(|o| o.to_string()))
        .chain(NOT_AUDITED.iter().map(|(o, _)| o.to_string()))
        .collect();
    let missing: Vec<_> = documented.difference(&accounted).collect();
    assert!(
        missing.is_empty(),
        "mutating endpoints without an audit check: {missing:?}"
    );
    let stale: Vec<_> = accounted.difference(&documented).collect();
    assert!(
        stale.is_empty(),
        "checked routes the API does not document: {stale:?}"
    );
    s.stop().await;
}
