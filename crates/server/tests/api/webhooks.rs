//! Webhooks (API.md "Webhooks", docs/webhooks.md) against a real receiver started by each test
//! on 127.0.0.1: registration checks (SSRF, events, permissions, tenants), the ping, events
//! delivered in order with both signature schemes (verified with the Standard Webhooks library
//! and with a plain HMAC check), retries after 500s, timeouts and dropped connections, 410
//! disabling the registration, the circuit breaker, secret rotation, redelivery, a deliverer
//! that dies mid-delivery, two deliverers racing, and the outbox's retention.
use crate::both_backends;
use crate::cases::{create_case, id_of};
use crate::common::*;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use casegate_domain::clock::Clock;
use casegate_service::ServiceConfig;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use time::Duration;

both_backends!(
    registrations_are_checked_and_pinged,
    events_arrive_signed_in_order_and_failures_retry,
    gone_timeouts_and_broken_connections_are_recorded,
    rotated_secrets_overlap_and_redelivery_repeats_the_event,
    a_crashed_deliverer_loses_nothing_and_racing_ones_send_once,
    settled_events_go_after_their_retention_and_deliveries_outlive_them,
);

/// What the receiver saw.
#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: String,
}

#[derive(Clone, Default)]
pub(crate) struct Receiver {
    seen: Arc<Mutex<Vec<Received>>>,
    /// Statuses to answer, in order; 200 once empty. 0 means "close without answering".
    script: Arc<Mutex<VecDeque<u16>>>,
    /// Answer this late (milliseconds).
    delay_ms: Arc<Mutex<u64>>,
}

impl Receiver {
    fn seen(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }
    fn answer(&self, statuses: &[u16]) {
        self.script.lock().unwrap().extend(statuses);
    }
    fn events(&self) -> Vec<String> {
        self.seen()
            .iter()
            .map(|r| json_of(r)["type"].as_str().unwrap().to_string())
            .collect()
    }
}

fn json_of(r: &Received) -> Value {
    serde_json::from_str(&r.body).unwrap()
}

async fn hook(State(rx): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    rx.seen.lock().unwrap().push(Received { headers, body });
    let delay = *rx.delay_ms.lock().unwrap();
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    let next = rx.script.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(next).unwrap()
}

/// Starts a receiver; answers its URL.
pub(crate) async fn receiver() -> (Receiver, String) {
    let rx = Receiver::default();
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .with_state(rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (rx, url)
}

/// A port that accepts connections and closes them without a word.
async fn slammer() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            drop(sock);
        }
    });
    url
}

/// A server allowed to reach loopback receivers over plain HTTP, with a short attempt timeout.
pub(crate) async fn server(b: Backend) -> TestServer {
    let mut settings = settings();
    settings.allow_insecure_webhooks = true;
    let config = ServiceConfig {
        allow_insecure_webhooks: true,
        webhook_timeout: std::time::Duration::from_millis(500),
        ..ServiceConfig::default()
    };
    start_with(b, settings, config).await
}

/// The worker's webhook work: fan out committed events, then send what is due.
pub(crate) async fn pump(s: &TestServer) -> u64 {
    casegate_service::dispatch::run(&s.svc, 100)
        .await
        .expect("dispatch");
    casegate_service::webhooks::deliver(&s.svc, 32)
        .await
        .expect("deliver")
}

async fn register(s: &TestServer, url: &str, events: Value) -> Value {
    let r = s
        .post(
            "/webhooks",
            s.a.key("admin"),
            json!({"url": url, "events": events, "description": "SIEM"}),
        )
        .await;
    r.assert_ok(201).clone()
}

async fn patch(s: &TestServer, path: &str, body: Value) -> Resp {
    s.call(
        reqwest::Method::PATCH,
        path,
        Some(s.a.key("admin")),
        Some(body),
    )
    .await
}

async fn deliveries(s: &TestServer, hook: &str) -> Vec<Value> {
    s.get(
        &format!("/webhooks/{hook}/deliveries?limit=200"),
        s.a.key("admin"),
    )
    .await
    .assert_ok(200)["deliveries"]
        .as_array()
        .unwrap()
        .clone()
}

/// Checks both signature schemes of `r` with `secret`: the Standard Webhooks library, and a
/// plain HMAC-SHA256 of `"<t>.<body>"` against `X-Casegate-Signature`.
fn assert_signed(r: &Received, secret: &str) {
    let wh = standardwebhooks::Webhook::new(secret).expect("secret");
    let mut h = r.headers.clone();
    wh.verify(r.body.as_bytes(), &h)
        .expect("Standard Webhooks signature");
    let sig = r.headers["x-casegate-signature"].to_str().unwrap();
    let t = sig.split(',').next().unwrap().strip_prefix("t=").unwrap();
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    m.update(format!("{t}.{}", r.body).as_bytes());
    let want: String = m
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        sig.split(',').any(|p| p == format!("v1={want}")),
        "{sig} lacks v1={want}"
    );
    // A tampered body fails.
    h.insert("webhook-id", "x".parse().unwrap());
    assert!(wh.verify(r.body.as_bytes(), &h).is_err());
}

async fn registrations_are_checked_and_pinged(b: Backend) {
    let s = server(b).await;
    let (rx, url) = receiver().await;
    let admin = s.a.key("admin");
    let bad = |url: &str, events: Value| json!({"url": url, "events": events});
    for (body, param) in [
        (bad("ftp://127.0.0.1/x", json!(["*"])), "url"),
        (bad("https://10.0.0.8/hook", json!(["*"])), "url"),
        (
            bad("https://169.254.169.254/latest/meta-data", json!(["*"])),
            "url",
        ),
        (bad("https://[fd00:ec2::254]/", json!(["*"])), "url"),
        (bad("https://u:p@93.184.216.34/", json!(["*"])), "url"),
        (
            bad(
                &format!("https://x.example/{}", "a".repeat(3000)),
                json!(["*"]),
            ),
            "url",
        ),
        (bad(&url, json!(["case.exploded"])), "events[0]"),
        (bad(&url, json!([])), "events"),
        (json!({"url": url, "colour": "red"}), "colour"),
        (json!({"events": ["*"]}), "url"),
        (json!({"url": null, "events": ["*"]}), "url"),
        (json!({"url": url, "active": null}), "active"),
        (json!({"url": url, "events": null}), "events"),
    ] {
        let r = s.post("/webhooks", admin, body).await;
        r.assert_error(422, "validation_failed");
        assert_eq!(r.body["error"]["param"], param, "{:#}", r.body);
    }
    // `null` is refused as null, not taken for a missing key or a default.
    for body in [
        json!({"url": null, "events": ["*"]}),
        json!({"url": url, "active": null}),
    ] {
        let r = s.post("/webhooks", admin, body).await;
        let message = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("cannot be null"), "{:#}", r.body);
    }
    s.post("/webhooks", s.a.key("analyst"), bad(&url, json!(["*"])))
        .await
        .assert_error(403, "forbidden");
    let rb = s
        .http
        .post(s.url("/webhooks"))
        .bearer_auth(admin)
        .header("content-type", "application/json")
        .body("{\"url\": ");
    s.send(rb).await.assert_error(400, "malformed_request");
    let none = s.get("/webhooks", admin).await;
    assert_eq!(none.assert_ok(200)["total"], 0, "nothing was registered");

    let w = register(&s, &url, json!(["case.created"])).await;
    let secret = w["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let id = id_of(&w);
    let read = s.get(&format!("/webhooks/{id}"), admin).await;
    assert!(read.assert_ok(200).get("secret").is_none(), "shown once");
    assert_eq!(read.body["events"], json!(["case.created"]));
    // `null` would clear, and a registration cannot be without a receiver, an on/off state or
    // its events: each is refused by name, and nothing changes.
    for key in ["url", "active", "events"] {
        let r = patch(&s, &format!("/webhooks/{id}"), json!({ key: null })).await;
        r.assert_error(422, "validation_failed");
        assert_eq!(r.body["error"]["param"], key, "{:#}", r.body);
        if key != "events" {
            let message = r.body["error"]["message"].as_str().unwrap_or_default();
            assert!(message.starts_with("cannot be null"), "{:#}", r.body);
        }
    }
    let after = s.get(&format!("/webhooks/{id}"), admin).await;
    assert_eq!(after.assert_ok(200), &read.body);
    s.get(&format!("/webhooks/{id}"), s.b.key("admin"))
        .await
        .assert_error(404, "not_found");
    s.post(
        &format!("/webhooks/{id}/rotate-secret"),
        s.b.key("admin"),
        json!({}),
    )
    .await
    .assert_error(404, "not_found");

    // The ping arrives at once, signed both ways.
    assert_eq!(pump(&s).await, 1);
    let seen = rx.seen();
    assert_eq!(seen.len(), 1);
    let ping = json_of(&seen[0]);
    assert_eq!(ping["type"], "ping");
    assert_eq!(ping["tenant_id"], s.a.id.as_str());
    assert_eq!(seen[0].headers["x-casegate-event"], "ping");
    assert_eq!(seen[0].headers["webhook-id"], ping["id"].as_str().unwrap());
    assert_signed(&seen[0], &secret);
    let d = deliveries(&s, &id).await;
    assert_eq!(d[0]["state"], "succeeded");
    assert_eq!(d[0]["status_code"], 200);
    assert_eq!(d[0]["attempt"], 1);
    // Audited, without the secret.
    let audit = s.get("/audit/events?action=webhook.created", admin).await;
    let text = audit.assert_ok(200).to_string();
    assert!(text.contains("webhook.created"), "{text}");
    assert!(!text.contains(&secret));
    s.stop().await;
}

async fn events_arrive_signed_in_order_and_failures_retry(b: Backend) {
    let s = server(b).await;
    let (rx, url) = receiver().await;
    let w = register(
        &s,
        &url,
        json!(["case.created", "case.assigned", "case.status_changed"]),
    )
    .await;
    let (id, secret) = (id_of(&w), w["secret"].as_str().unwrap().to_string());
    pump(&s).await; // the ping
    let analyst = s.a.key("analyst");
    // The receiver fails the first event twice: the case's later events wait behind it.
    rx.answer(&[500, 503]);
    let c = create_case(
        &s,
        analyst,
        json!({"case_type": "AML_INV", "title": "Structuring", "assigned_to": "analyst@acme.example"}),
    )
    .await;
    let case = id_of(&c);
    assert_eq!(
        pump(&s).await,
        1,
        "only the first event of the case is sent"
    );
    let held: Vec<Value> = deliveries(&s, &id).await;
    let first = held
        .iter()
        .find(|d| d["event_type"] == "case.created")
        .unwrap();
    assert_eq!(first["state"], "failed");
    assert_eq!(first["status_code"], 500);
    assert!(first["next_attempt_at"].is_string());
    assert_eq!(pump(&s).await, 0, "not due yet");
    s.clock.advance(Duration::minutes(2));
    assert_eq!(pump(&s).await, 1);
    s.clock.advance(Duration::minutes(10));
    assert!(pump(&s).await >= 1);
    while pump(&s).await > 0 {}
    let types = rx.events();
    assert_eq!(
        types[..4],
        ["ping", "case.created", "case.created", "case.created"],
        "the failing first event is retried before the case's later events go"
    );
    assert_eq!(
        types[4..],
        ["case.status_changed"],
        "the move made by the assignment follows"
    );
    // Every attempt of one event carries the same event id; all are signed.
    let seen = rx.seen();
    let ids: Vec<&str> = seen[1..4]
        .iter()
        .map(|r| r.headers["webhook-id"].to_str().unwrap())
        .collect();
    assert!(ids.iter().all(|i| *i == ids[0]));
    for r in &seen {
        assert_signed(r, &secret);
    }
    let created = json_of(&seen[3]);
    assert_eq!(created["data"]["case"]["id"], case.as_str());
    // The record: three attempts with their outcomes.
    let d = deliveries(&s, &id).await;
    let first = d
        .iter()
        .find(|d| d["event_type"] == "case.created")
        .unwrap();
    assert_eq!(first["state"], "succeeded");
    assert_eq!(first["attempt"], 3);
    let detail = s
        .get(
            &format!("/webhooks/{id}/deliveries/{}", id_of(first)),
            s.a.key("admin"),
        )
        .await;
    let codes: Vec<i64> = detail.assert_ok(200)["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [500, 503, 200]);
    // An unsubscribed event (case.updated) is not sent.
    let before = rx.seen().len();
    s.call(
        reqwest::Method::PATCH,
        &format!("/cases/{case}"),
        Some(analyst),
        Some(json!({"title": "Structuring, two branches"})),
    )
    .await
    .assert_ok(200);
    while pump(&s).await > 0 {}
    assert_eq!(rx.seen().len(), before);
    s.get(
        &format!("/webhooks/{id}/deliveries?state=bogus"),
        s.a.key("admin"),
    )
    .await
    .assert_error(422, "validation_failed");
    s.stop().await;
}

async fn gone_timeouts_and_broken_connections_are_recorded(b: Backend) {
    let s = server(b).await;
    let admin = s.a.key("admin");

    // A connection closed without an answer, then a slow answer: both failed attempts.
    let slam = slammer().await;
    let w = register(&s, &slam, json!(["*"])).await;
    let id = id_of(&w);
    pump(&s).await;
    let d = &deliveries(&s, &id).await[0];
    assert_eq!(d["state"], "failed");
    assert!(d["status_code"].is_null());
    assert!(!d["error"].as_str().unwrap().is_empty());
    let (rx, url) = receiver().await;
    *rx.delay_ms.lock().unwrap() = 2_000;
    patch(&s, &format!("/webhooks/{id}"), json!({"url": url}))
        .await
        .assert_ok(200);
    s.clock.advance(Duration::minutes(2));
    pump(&s).await;
    let d = &deliveries(&s, &id).await[0];
    assert_eq!(d["attempt"], 2);
    assert!(d["error"].as_str().unwrap().contains("timed out"), "{d:#}");

    // Failures in a row open the circuit: nothing is tried until it closes.
    *rx.delay_ms.lock().unwrap() = 0;
    rx.answer(&[500, 500, 500]);
    for _ in 0..3 {
        s.clock.advance(Duration::hours(1));
        pump(&s).await;
    }
    let hook = s.get(&format!("/webhooks/{id}"), admin).await;
    assert_eq!(hook.assert_ok(200)["consecutive_failures"], 5);
    assert!(hook.body["circuit_open_until"].is_string());
    // With the circuit open even a delivery due now waits; once it closes, it goes.
    let tries = rx.seen().len();
    let first = id_of(&deliveries(&s, &id).await[0]);
    let again = s
        .post(
            &format!("/webhooks/{id}/deliveries/{first}/redeliver"),
            admin,
            json!({}),
        )
        .await;
    let again = id_of(again.assert_ok(202));
    assert_eq!(pump(&s).await, 0, "circuit open");
    // 410 Gone turns the registration off and the delivery dies.
    rx.answer(&[410]);
    s.clock.advance(Duration::minutes(2));
    assert_eq!(pump(&s).await, 1);
    assert_eq!(rx.seen().len(), tries + 1);
    let hook = s.get(&format!("/webhooks/{id}"), admin).await;
    assert_eq!(hook.assert_ok(200)["active"], false);
    assert_eq!(
        hook.body["disabled_reason"],
        "the endpoint answered 410 Gone"
    );
    let dead = s
        .get(&format!("/webhooks/{id}/deliveries/{again}"), admin)
        .await;
    assert_eq!(dead.assert_ok(200)["state"], "dead");
    assert_eq!(dead.body["status_code"], 410);
    // While off, events are not queued for it (a paused subscription); turned back on,
    // new events flow again.
    create_case(
        &s,
        s.a.key("analyst"),
        json!({"case_type": "AML_INV", "title": "While off"}),
    )
    .await;
    assert_eq!(pump(&s).await, 0);
    let on = patch(&s, &format!("/webhooks/{id}"), json!({"active": true})).await;
    assert!(on.assert_ok(200)["disabled_reason"].is_null());
    assert_eq!(on.body["consecutive_failures"], 0);
    create_case(
        &s,
        s.a.key("analyst"),
        json!({"case_type": "AML_INV", "title": "Back on"}),
    )
    .await;
    while pump(&s).await > 0 {}
    let last = json_of(rx.seen().last().unwrap());
    assert_eq!(last["data"]["case"]["title"], "Back on");
    s.stop().await;
}

async fn rotated_secrets_overlap_and_redelivery_repeats_the_event(b: Backend) {
    let s = server(b).await;
    let admin = s.a.key("admin");
    let (rx, url) = receiver().await;
    let w = register(&s, &url, json!(["*"])).await;
    let (id, old) = (id_of(&w), w["secret"].as_str().unwrap().to_string());
    pump(&s).await;
    let r = s
        .post(
            &format!("/webhooks/{id}/rotate-secret"),
            admin,
            json!({"overlap_hours": 24}),
        )
        .await;
    let new = r.assert_ok(200)["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    // Both secrets are stored sealed: the database alone does not give them away.
    let mut c = s.svc.db.conn().await.unwrap();
    let row = c
        .fetch_one(
            "SELECT secret, previous_secret FROM webhooks WHERE id = $1",
            &[id.parse::<uuid::Uuid>().unwrap().into()],
        )
        .await
        .unwrap();
    for col in ["secret", "previous_secret"] {
        let stored = row.text(col).unwrap();
        assert!(stored.starts_with("enc:v1:"), "{col}: {stored}");
        assert!(!stored.contains(&old) && !stored.contains(&new));
        assert!(!stored.contains(old.trim_start_matches("whsec_")));
    }
    // Secrets stored as issued (before sealing existed) are sealed at start-up, and still sign.
    let hook_id: casegate_store::Val = id.parse::<uuid::Uuid>().unwrap().into();
    c.execute(
        "UPDATE webhooks SET secret = $2, previous_secret = $3 WHERE id = $1",
        &[hook_id.clone(), new.as_str().into(), old.as_str().into()],
    )
    .await
    .unwrap();
    drop(c);
    assert_eq!(
        casegate_service::webhooks::seal_stored(&s.svc)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        casegate_service::webhooks::seal_stored(&s.svc)
            .await
            .unwrap(),
        0
    );
    let mut c = s.svc.db.conn().await.unwrap();
    let row = c
        .fetch_one(
            "SELECT secret, previous_secret FROM webhooks WHERE id = $1",
            &[hook_id],
        )
        .await
        .unwrap();
    assert!(row.text("secret").unwrap().starts_with("enc:v1:"));
    assert!(row.text("previous_secret").unwrap().starts_with("enc:v1:"));
    drop(c);
    s.post(
        &format!("/webhooks/{id}/rotate-secret"),
        admin,
        json!({"overlap_hours": 1000}),
    )
    .await
    .assert_error(422, "validation_failed");
    let ping = id_of(&deliveries(&s, &id).await[0]);
    let again = s
        .post(
            &format!("/webhooks/{id}/deliveries/{ping}/redeliver"),
            admin,
            json!({}),
        )
        .await;
    assert_eq!(again.assert_ok(202)["state"], "pending");
    assert_eq!(again.body["redelivery_of"], ping.as_str());
    pump(&s).await;
    let seen = rx.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body, seen[1].body, "the same event, byte for byte");
    assert_eq!(seen[0].headers["webhook-id"], seen[1].headers["webhook-id"]);
    assert_ne!(
        seen[0].headers["x-casegate-delivery"],
        seen[1].headers["x-casegate-delivery"]
    );
    // During the overlap both secrets sign; after it only the new one.
    assert_signed(&seen[1], &old);
    assert_signed(&seen[1], &new);
    s.clock.advance(Duration::hours(25));
    s.post(
        &format!("/webhooks/{id}/deliveries/{ping}/redeliver"),
        admin,
        json!({}),
    )
    .await
    .assert_ok(202);
    pump(&s).await;
    let last = rx.seen().pop().unwrap();
    assert_signed(&last, &new);
    let wh = standardwebhooks::Webhook::new(&old).unwrap();
    assert!(wh.verify(last.body.as_bytes(), &last.headers).is_err());
    s.post(
        &format!("/webhooks/{id}/deliveries/{ping}/redeliver"),
        s.b.key("admin"),
        json!({}),
    )
    .await
    .assert_error(404, "not_found");
    // Deleted: nothing more goes out, the record stays out of the list.
    s.delete(&format!("/webhooks/{id}"), admin).await;
    create_case(
        &s,
        s.a.key("analyst"),
        json!({"case_type": "AML_INV", "title": "After delete"}),
    )
    .await;
    let before = rx.seen().len();
    while pump(&s).await > 0 {}
    assert_eq!(rx.seen().len(), before);
    assert_eq!(s.get("/webhooks", admin).await.assert_ok(200)["total"], 0);
    s.stop().await;
}

async fn a_crashed_deliverer_loses_nothing_and_racing_ones_send_once(b: Backend) {
    let s = server(b).await;
    let (rx, url) = receiver().await;
    let w = register(&s, &url, json!(["case.created"])).await;
    let id = id_of(&w);
    pump(&s).await;
    let analyst = s.a.key("analyst");
    create_case(
        &s,
        analyst,
        json!({"case_type": "AML_INV", "title": "Crash"}),
    )
    .await;
    casegate_service::dispatch::run(&s.svc, 10).await.unwrap();
    // A deliverer claims the delivery and dies before sending or recording anything.
    let now = s.clock.now();
    let mut tx = s.svc.db.begin().await.unwrap();
    let claimed =
        casegate_store::webhooks::claim_due(&mut *tx, now, now + Duration::seconds(60), 10)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(pump(&s).await, 0, "the lease hides it");
    s.clock.advance(Duration::seconds(61));
    assert_eq!(
        pump(&s).await,
        1,
        "after the lease another deliverer sends it"
    );
    let created: Vec<Received> = rx
        .seen()
        .into_iter()
        .filter(|r| json_of(r)["type"] == "case.created")
        .collect();
    assert_eq!(created.len(), 1);
    let d = deliveries(&s, &id).await;
    assert_eq!(d[0]["attempt"], 2, "the lost attempt is counted");
    assert_eq!(d[0]["state"], "succeeded");

    // Two deliverers race over forty events: each is sent once.
    for i in 0..40 {
        create_case(
            &s,
            analyst,
            json!({"case_type": "AML_INV", "title": format!("Race {i}")}),
        )
        .await;
    }
    casegate_service::dispatch::run(&s.svc, 10).await.unwrap();
    let (one, two) = tokio::join!(
        casegate_service::webhooks::deliver(&s.svc, 32),
        casegate_service::webhooks::deliver(&s.svc, 32),
    );
    let sent = one.unwrap() + two.unwrap();
    while casegate_service::webhooks::deliver(&s.svc, 32)
        .await
        .unwrap()
        > 0
    {}
    let mut ids: Vec<String> = rx
        .seen()
        .iter()
        .filter(|r| json_of(r)["type"] == "case.created")
        .map(|r| json_of(r)["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 41, "sent {sent} in the race");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 41, "no event twice");
    s.stop().await;
}

/// Rows in the outbox, every tenant's.
async fn outbox_rows(s: &TestServer) -> i64 {
    let mut c = s.svc.db.conn().await.unwrap();
    let r = c.fetch_one("SELECT count(*) AS n FROM outbox", &[]).await;
    r.unwrap().int("n").unwrap()
}

/// The worker's purge of the outbox: nothing goes before the retention (30 days by default)
/// has passed since an event settled; then exactly the events settled before the cut-off go,
/// and a webhook delivery of a purged event can still be redelivered, byte for byte.
async fn settled_events_go_after_their_retention_and_deliveries_outlive_them(b: Backend) {
    let s = server(b).await;
    let admin = s.a.key("admin");
    let (rx, url) = receiver().await;
    let id = id_of(&register(&s, &url, json!(["case.created"])).await);
    let purge = || casegate_service::dispatch::purge_settled(&s.svc, 1000);
    let new_case = |title: &'static str| {
        create_case(
            &s,
            s.a.key("analyst"),
            json!({"case_type": "AML_INV", "title": title}),
        )
    };
    new_case("First").await;
    while pump(&s).await > 0 {}
    let first = outbox_rows(&s).await;
    assert!(first > 0);
    let delivered = deliveries(&s, &id)
        .await
        .into_iter()
        .find(|d| d["event_type"] == "case.created")
        .expect("the first case's delivery");
    s.clock.advance(Duration::days(29));
    new_case("Second").await;
    while pump(&s).await > 0 {}
    let both = outbox_rows(&s).await;
    assert!(both > first);
    assert_eq!(purge().await.unwrap(), 0, "29 days: within the retention");
    s.clock.advance(Duration::days(2));
    assert_eq!(
        purge().await.unwrap() as i64,
        first,
        "the first case's events"
    );
    assert_eq!(purge().await.unwrap(), 0);
    assert_eq!(
        outbox_rows(&s).await,
        both - first,
        "the second case's stay"
    );
    // The purged event's delivery still goes out again, the same body.
    let before = rx.seen().len();
    s.post(
        &format!("/webhooks/{id}/deliveries/{}/redeliver", id_of(&delivered)),
        admin,
        json!({}),
    )
    .await
    .assert_ok(202);
    pump(&s).await;
    let seen = rx.seen();
    assert_eq!(seen.len(), before + 1);
    let first_body = seen
        .iter()
        .find(|r| json_of(r)["type"] == "case.created")
        .unwrap();
    assert_eq!(seen[before].body, first_body.body);
    assert_eq!(json_of(&seen[before])["data"]["case"]["title"], "First");
    s.stop().await;
}
