//! Operations endpoints, request ids, unknown routes.
use crate::both_backends;
use crate::common::*;
use reqwest::Method;

both_backends!(
    operations_endpoints_answer,
    request_ids_are_echoed_or_assigned,
    unknown_routes_answer_in_the_error_shape
);

async fn operations_endpoints_answer(b: Backend) {
    let s = start(b).await;
    let h = s.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(h.assert_ok(200)["status"], "ok");
    let r = s.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.assert_ok(200)["migrations"], "applied");
    s.get("/me", s.a.key("auditor")).await.assert_ok(200);
    let m = s
        .http
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("http_requests_total{") && m.contains("route=\"/api/v1/me\""),
        "{m}"
    );
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
    let r = s.send(s.http.get(format!("{}/nothing", s.base))).await;
    r.assert_error(404, "not_found");
    let r = s.call(Method::DELETE, "/healthz", None, None).await;
    r.assert_error(405, "method_not_allowed");
    s.stop().await;
}
