//! Operations endpoints, the OpenAPI document and its request bodies, request ids, unknown
//! routes.
use crate::both_backends;
use crate::cases::{create_case, id_of};
use crate::common::*;
use casegate_domain::cases::{Disposition, Priority};
use casegate_domain::sar::FilingType;
use casegate_domain::sar::content::SubjectKind;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

both_backends!(
    database_waits_are_measured,
    operations_endpoints_answer,
    request_bodies_are_documented,
    request_ids_are_echoed_or_assigned,
    unknown_routes_answer_in_the_error_shape
);

/// The labels of `db_acquire_seconds` for `kind` on backend `b`.
fn wait_labels(b: Backend, kind: &str) -> String {
    let database = match b {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    format!("database=\"{database}\",kind=\"{kind}\"")
}

/// The count of `db_acquire_seconds{labels}` in a `/metrics` text (0 before any).
fn waits(metrics: &str, labels: &str) -> u64 {
    let series = format!("db_acquire_seconds_count{{{labels}}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series)?.parse().ok())
        .unwrap_or(0)
}

/// `/metrics` shows how long commands waited for a pooled connection and for a transaction to
/// begin, as histograms labelled by database, so an operator sees the pool saturate (the pool
/// gauges give one moment's count).
async fn database_waits_are_measured(b: Backend) {
    let s = start(b).await;
    let analyst = s.a.key("analyst");
    let (conn, tx) = (wait_labels(b, "connection"), wait_labels(b, "transaction"));
    let m = s.text("/metrics").await;
    let (conns, txs) = (waits(&m, &conn), waits(&m, &tx));
    let case = id_of(
        &create_case(
            &s,
            analyst,
            json!({"case_type": "AML_INV", "title": "Waited for"}),
        )
        .await,
    );
    s.get(&format!("/cases/{case}"), analyst)
        .await
        .assert_ok(200);
    let m = s.text("/metrics").await;
    // At least the creation's transaction; connections: the case's read and the scrape's own.
    // (Other tests of this process may add to the same global counts, never take from them;
    // the database label keeps the other backend's out.)
    assert!(waits(&m, &tx) > txs, "a transaction's wait: {m}");
    assert!(waits(&m, &conn) > conns, "a connection's wait: {m}");
    for labels in [conn, tx] {
        assert!(
            m.contains(&format!(
                "db_acquire_seconds_bucket{{{labels},le=\"0.0001\"}}"
            )),
            "{labels}: a histogram with sub-millisecond buckets: {m}"
        );
    }
}

async fn operations_endpoints_answer(b: Backend) {
    let s = start(b).await;
    let h = s.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(h.assert_ok(200)["status"], "ok");
    let r = s.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.assert_ok(200)["migrations"], "applied");
    s.get("/me", s.a.key("auditor")).await.assert_ok(200);
    // Refusals are counted under their route too: a 401 from authentication, a 405.
    s.call(Method::GET, "/api/v1/roles", None, None)
        .await
        .assert_error(401, "unauthenticated");
    s.call(Method::DELETE, "/api/v1/me", Some(s.a.key("auditor")), None)
        .await
        .assert_error(405, "method_not_allowed");
    s.call(Method::DELETE, "/readyz", None, None)
        .await
        .assert_error(405, "method_not_allowed");
    let m = s.text("/metrics").await;
    assert!(
        m.contains("http_requests_total{") && m.contains("route=\"/api/v1/me\""),
        "{m}"
    );
    for (route, status) in [
        ("/api/v1/roles", 401),
        ("/api/v1/me", 405),
        ("/readyz", 405),
    ] {
        assert!(
            m.lines().any(|l| l.starts_with("http_requests_total{")
                && l.contains(&format!("route=\"{route}\""))
                && l.contains(&format!("status=\"{status}\""))),
            "{route} {status} counted under its route: {m}"
        );
    }
    assert!(
        m.contains("http_request_duration_seconds_bucket{"),
        "latency histogram"
    );
    assert!(m.contains("db_pool_connections") && m.contains("db_pool_max_connections"));
    let o = s.call(Method::GET, "/openapi.json", None, None).await;
    let o = o.assert_ok(200);
    assert_eq!(o["openapi"], "3.1.0");
    for path in [
        "/users",
        "/users/{id}",
        "/users/{id}/roles",
        "/api-keys",
        "/api-keys/{id}",
        "/auth/login",
        "/me",
        "/roles",
    ] {
        assert!(o["paths"][path].is_object(), "{path} documented");
    }
    assert!(o["components"]["schemas"]["ErrorBody"].is_object());
    // Cases are documented field by field, not as a bare object.
    let case = &o["components"]["schemas"]["CaseView"];
    for field in [
        "reference",
        "status",
        "priority",
        "fields",
        "version",
        "detected_at",
    ] {
        assert!(case["properties"][field].is_object(), "CaseView.{field}");
    }
    let get = &o["paths"]["/cases/{id}"]["get"]["responses"]["200"]["content"]["application/json"];
    assert_eq!(
        get["schema"]["$ref"], "#/components/schemas/CaseDetail",
        "{get}"
    );
    let detail = o["components"]["schemas"]["CaseDetail"].to_string();
    assert!(
        detail.contains("CaseView") && detail.contains("status_history"),
        "{detail}"
    );
    let moved = &o["components"]["schemas"]["MoveApplied"]["properties"];
    assert_eq!(
        moved["case"]["$ref"], "#/components/schemas/CaseView",
        "{moved}"
    );
    assert_eq!(
        moved["history_entry"]["$ref"],
        "#/components/schemas/HistoryView"
    );
    let waits = &o["components"]["schemas"]["MoveRequested"]["properties"]["request"];
    assert_eq!(waits["$ref"], "#/components/schemas/RequestView", "{waits}");
    let request = &o["components"]["schemas"]["RequestView"]["properties"];
    assert!(request["current_tier"].is_object() && request["tiers"].is_object());
    let history = &o["components"]["schemas"]["CaseHistory"]["properties"]["status_history"];
    assert_eq!(history["items"]["$ref"], "#/components/schemas/HistoryView");
    let page = &o["components"]["schemas"]["CasesPage"]["properties"]["cases"]["items"];
    assert_eq!(page["$ref"], "#/components/schemas/CaseView", "{page}");
    assert!(o["components"]["securitySchemes"]["api_key"].is_object());
    let docs = s.http.get(s.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    let html = docs.text().await.unwrap();
    assert!(
        html.contains("/openapi.json")
            && html.contains("/docs/rapidoc-min.js")
            && !html.contains("https://"),
        "no CDN"
    );
    let js = s
        .http
        .get(s.url("/docs/rapidoc-min.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.bytes().await.unwrap().len() > 100_000);
    s.stop().await;
}

/// Whether `r` is a 422 refusing `key` as a key its endpoint does not take: the services say
/// "unknown field `key`", or "unknown field…" with `param` naming the key.
fn refused_as_unknown(r: &Resp, key: &str) -> bool {
    let e = &r.body["error"];
    let message = e["message"].as_str().unwrap_or_default();
    r.status.as_u16() == 422
        && (message.contains(&format!("unknown field `{key}`"))
            || (message.contains("unknown field") && e["param"] == key))
}

/// Every JSON request body in `/openapi.json` is documented property by property, and every
/// documented property is one its endpoint takes. Most services read their body as a map, key
/// by key, so the schemas of those bodies (`casegate_api::rest::bodies`) are written by hand;
/// this keeps them in step. Per endpoint, a key it does not know must come back 422 `unknown
/// field` (the control: it shows the probes reach the parsing, so they can fail), and no
/// documented property, sent with `null`, may.
async fn request_bodies_are_documented(b: Backend) {
    let s = start(b).await;
    let admin = s.a.key("admin");
    let o = s
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .assert_ok(200)
        .clone();
    let schemas = &o["components"]["schemas"];

    // No JSON request body is a bare object: each is a `$ref` to a component with properties.
    let mut documented = BTreeMap::<(String, String), Vec<String>>::new();
    let mut bare = Vec::new();
    for (path, item) in o["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let Some(schema) = op.pointer("/requestBody/content/application~1json/schema") else {
                continue;
            };
            let properties = schema["$ref"]
                .as_str()
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                .and_then(|name| schemas[name]["properties"].as_object())
                .filter(|p| !p.is_empty());
            let method = method.to_uppercase();
            match properties {
                Some(p) => {
                    documented.insert((method, path.clone()), p.keys().cloned().collect());
                }
                None => bare.push(format!("{method} {path}: {schema}")),
            }
        }
    }
    assert!(
        bare.is_empty(),
        "JSON request bodies documented without their properties:\n{}",
        bare.join("\n")
    );

    // The vocabularies the body schemas spell out are the services' own.
    let values = |name: &str| -> Vec<String> {
        schemas[name]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} is a string enum: {}", schemas[name]))
            .iter()
            .map(|v| v.as_str().expect("an enum value").to_string())
            .collect()
    };
    let mut events = vec!["*"];
    events.extend(casegate_domain::events::EVENT_TYPES);
    assert_eq!(values("WebhookEvent"), events);
    assert_eq!(values("BuiltinRole"), casegate_domain::rbac::BUILTIN_ROLES);
    assert_eq!(values("PartyKind"), casegate_service::cases::PARTY_KINDS);
    let priorities: Vec<&str> = Priority::ALL.iter().map(|p| p.as_str()).collect();
    assert_eq!(values("CasePriority"), priorities);
    let dispositions: Vec<&str> = Disposition::ALL.iter().map(|d| d.as_str()).collect();
    assert_eq!(values("CaseDisposition"), dispositions);
    let filing_types: Vec<&str> = FilingType::ALL.iter().map(|f| f.as_str()).collect();
    assert_eq!(values("FilingType"), filing_types);
    let subject_kinds: Vec<&str> = SubjectKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(values("SarSubjectKind"), subject_kinds);

    // Every documented property is taken. One row per endpoint with a JSON body, with the
    // smallest body the probes add their key to: empty where the endpoint looks at unknown keys
    // before anything else, valid where it reads other keys first (`POST /cases` loads the
    // case type before it reads the rest). Nothing is skipped: `{id}`s that are not a case, a
    // task or a report (alerts, transition requests, users, webhooks) take the case's id, since
    // those endpoints read the whole body before they look the id up (the control shows it
    // for each row), and `{key}` takes a case type that does not exist, since `PUT
    // /case-types/{key}` reads its body before anything else.
    let table = [
        ("POST", "/alerts/{id}/disposition", json!({})),
        ("POST", "/api-keys", json!({})),
        ("POST", "/audit/exports", json!({})),
        ("POST", "/auth/login", json!({})),
        ("PUT", "/case-types/{key}", json!({})),
        (
            "POST",
            "/cases",
            json!({"case_type": "AML_INV", "title": "Probe"}),
        ),
        ("PATCH", "/cases/{id}", json!({})),
        ("POST", "/cases/{id}/assign", json!({})),
        ("POST", "/cases/{id}/attachments", json!({})),
        ("POST", "/cases/{id}/comments", json!({})),
        ("POST", "/cases/{id}/disposition", json!({})),
        ("POST", "/cases/{id}/escalate", json!({})),
        ("POST", "/cases/{id}/override", json!({})),
        ("POST", "/cases/{id}/relations", json!({})),
        ("POST", "/cases/{id}/reopen", json!({})),
        ("POST", "/cases/{id}/status", json!({})),
        ("POST", "/cases/{id}/transitions", json!({})),
        ("POST", "/parties", json!({})),
        ("POST", "/sars", json!({})),
        ("PATCH", "/sars/{id}", json!({})),
        ("POST", "/sars/{id}/status", json!({})),
        ("PUT", "/settings/filing-profile", json!({})),
        ("POST", "/tasks", json!({})),
        ("POST", "/tasks/{id}/complete", json!({})),
        ("POST", "/transition-requests/{id}/approve", json!({})),
        ("POST", "/transition-requests/{id}/reject", json!({})),
        ("POST", "/users", json!({})),
        ("PATCH", "/users/{id}", json!({})),
        ("PUT", "/users/{id}/roles", json!({})),
        ("POST", "/webhooks", json!({})),
        ("PATCH", "/webhooks/{id}", json!({})),
        ("POST", "/webhooks/{id}/rotate-secret", json!({})),
    ];
    let probed: BTreeSet<(String, String)> = table
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    let with_bodies: BTreeSet<(String, String)> = documented.keys().cloned().collect();
    assert_eq!(
        probed, with_bodies,
        "the table lists every endpoint with a JSON body"
    );

    let case = id_of(
        &create_case(
            &s,
            admin,
            json!({"case_type": "AML_INV", "title": "Probed by every request body"}),
        )
        .await,
    );
    let task = id_of(
        s.post("/tasks", admin, json!({"case_id": case, "title": "Probe"}))
            .await
            .assert_ok(201),
    );
    let sar = id_of(
        s.post(
            "/sars",
            admin,
            json!({"case_id": case, "filing_type": "initial", "jurisdiction": "fincen"}),
        )
        .await
        .assert_ok(201),
    );
    let fill = |template: &str| -> String {
        let id = if template.starts_with("/tasks/") {
            task.as_str()
        } else if template.starts_with("/sars/") {
            sar.as_str()
        } else {
            case.as_str()
        };
        template.replace("{id}", id).replace("{key}", "PROBE_TYPE")
    };
    for (method, template, base) in &table {
        let (method, template) = (*method, *template);
        let m = Method::from_bytes(method.as_bytes()).expect("a method");
        let path = fill(template);
        let with_null = |key: &str| {
            let mut body = base.clone();
            body[key] = Value::Null;
            body
        };
        let r = s
            .call(
                m.clone(),
                &path,
                Some(admin),
                Some(with_null("not_a_field")),
            )
            .await;
        assert!(
            refused_as_unknown(&r, "not_a_field"),
            "{method} {template} must refuse a key it does not take, else its probes prove \
             nothing: {} {:#}",
            r.status,
            r.body
        );
        for key in &documented[&(method.to_string(), template.to_string())] {
            let r = s
                .call(m.clone(), &path, Some(admin), Some(with_null(key.as_str())))
                .await;
            assert!(
                !refused_as_unknown(&r, key),
                "{method} {template} documents `{key}` but refuses it: {:#}",
                r.body
            );
        }
    }
    s.stop().await;
}

async fn request_ids_are_echoed_or_assigned(b: Backend) {
    let s = start(b).await;
    let r = s
        .send(
            s.http
                .get(s.url("/me"))
                .bearer_auth(s.a.key("analyst"))
                .header("x-request-id", "trace-42"),
        )
        .await;
    assert_eq!(r.header("x-request-id"), Some("trace-42"));
    let r = s
        .send(s.http.get(s.url("/me")).header("x-request-id", "trace-43"))
        .await;
    r.assert_error(401, "unauthenticated");
    assert_eq!(r.body["error"]["request_id"], "trace-43");
    let r1 = s.get("/me", s.a.key("analyst")).await;
    let r2 = s.get("/me", s.a.key("analyst")).await;
    let (id1, id2) = (
        r1.header("x-request-id").unwrap(),
        r2.header("x-request-id").unwrap(),
    );
    assert!(id1.starts_with("req_") && id1 != id2);
    let r = s
        .send(
            s.http
                .get(s.url("/healthz"))
                .header("x-request-id", "has spaces and ; junk"),
        )
        .await;
    assert!(
        r.header("x-request-id").unwrap().starts_with("req_"),
        "unsafe ids are replaced"
    );
    s.stop().await;
}

async fn unknown_routes_answer_in_the_error_shape(b: Backend) {
    let s = start(b).await;
    let r = s
        .call(
            Method::GET,
            "/api/v1/nothing-here",
            Some(s.a.key("admin")),
            None,
        )
        .await;
    r.assert_error(404, "not_found");
    assert!(
        r.header("x-ratelimit-remaining").is_some(),
        "API 404s are rate limited too"
    );
    let r = s
        .call(Method::GET, "/api/v1/nothing-here", None, None)
        .await;
    r.assert_error(401, "unauthenticated");
    // The API's root is no endpoint either, and answered behind authentication too.
    let root = s.http.get(format!("{}/api/v1", s.base));
    let r = s.send(root.bearer_auth(s.a.key("admin"))).await;
    r.assert_error(404, "not_found");
    assert!(r.header("x-ratelimit-remaining").is_some());
    let r = s.send(s.http.get(format!("{}/nothing", s.base))).await;
    r.assert_error(404, "not_found");
    let r = s.call(Method::DELETE, "/healthz", None, None).await;
    r.assert_error(405, "method_not_allowed");
    // Unknown paths, inside the API or not, are counted as `unmatched`: never under the raw
    // path (which may hold ids), nor under the API's catch-all route.
    let m = s.text("/metrics").await;
    // A 401 is counted `unmatched` only when it comes from an unknown API path (the recorder is
    // the process's, shared with the other tests, whose known routes have their own names).
    assert!(
        m.lines().any(|l| l.starts_with("http_requests_total{")
            && l.contains("route=\"unmatched\"")
            && l.contains("status=\"401\"")),
        "{m}"
    );
    assert!(
        !m.contains("nothing-here") && !m.contains("{*rest}") && !m.contains("route=\"/api/v1\""),
        "{m}"
    );
    s.stop().await;
}
