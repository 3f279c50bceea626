//! Credentials: API keys, sessions with CSRF, the tenant cross-check, rate limits.
use crate::both_backends;
use crate::common::*;
use reqwest::Method;
use serde_json::json;

both_backends!(
    requests_without_credentials_are_refused,
    malformed_unknown_and_revoked_keys_are_refused,
    keys_work_in_both_headers_and_record_their_use,
    tenant_header_must_match_the_credential,
    sessions_need_csrf_for_writes_and_end_on_logout_or_expiry,
    login_failures_look_alike,
    request_floods_get_429_per_credential,
    login_attempts_have_their_own_tighter_quota,
);

async fn requests_without_credentials_are_refused(b: Backend) {
    let s = start(b).await;
    let r = s.call(Method::GET, "/me", None, None).await;
    r.assert_error(401, "unauthenticated");
    assert!(r.header("www-authenticate").is_some());
    // A scheme other than Bearer, or an empty token, is no credential either.
    let r = s
        .send(
            s.http
                .get(s.url("/me"))
                .header("authorization", "Basic YWRtaW46YWRtaW4="),
        )
        .await;
    r.assert_error(401, "unauthenticated");
    let r = s
        .send(s.http.get(s.url("/me")).header("authorization", "Bearer "))
        .await;
    r.assert_error(401, "unauthenticated");
    // Unauthenticated writes change nothing.
    let before = s.user_count(s.a.key("admin")).await;
    let r = s
        .call(
            Method::POST,
            "/users",
            None,
            Some(json!({"email": "x@acme.example", "name": "X"})),
        )
        .await;
    r.assert_error(401, "unauthenticated");
    assert_eq!(s.user_count(s.a.key("admin")).await, before);
    s.stop().await;
}

async fn malformed_unknown_and_revoked_keys_are_refused(b: Backend) {
    let s = start(b).await;
    for bad in [
        "cg_live_short",
        "cg_live_abc!defghijklmnopqrstuvwxyz0123456789",
        "not-a-key",
        "cg_LIVE_abcdefghijklmnopqrstuvwxyz0123456789",
    ] {
        s.get("/me", bad).await.assert_error(401, "unauthenticated");
    }
    // Well-formed but never issued.
    s.get("/me", "cg_live_abcdefghijklmnopqrstuvwxyz0123456789AB")
        .await
        .assert_error(401, "unauthenticated");
    // Issue a key, use it, revoke it: it is refused from the next request on.
    let created = s
        .post(
            "/api-keys",
            s.a.key("admin"),
            json!({"name": "ci", "user_id": "analyst@acme.example"}),
        )
        .await;
    let created = created.assert_ok(201).clone();
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("cg_live_") && key.len() >= 8 + 32);
    assert!(key.starts_with(created["prefix"].as_str().unwrap()));
    let me = s.get("/me", key).await;
    assert_eq!(me.assert_ok(200)["email"], "analyst@acme.example");
    let id = created["id"].as_str().unwrap();
    let revoked = s.delete(&format!("/api-keys/{id}"), s.a.key("admin")).await;
    assert!(revoked.assert_ok(200)["revoked_at"].is_string());
    s.get("/me", key).await.assert_error(401, "unauthenticated");
    // Revoking again keeps it revoked; an unknown id is 404.
    s.delete(&format!("/api-keys/{id}"), s.a.key("admin"))
        .await
        .assert_ok(200);
    s.delete(
        "/api-keys/00000000-0000-4000-8000-000000000000",
        s.a.key("admin"),
    )
    .await
    .assert_error(404, "not_found");
    s.delete("/api-keys/not-a-uuid", s.a.key("admin"))
        .await
        .assert_error(404, "not_found");
    s.stop().await;
}

async fn keys_work_in_both_headers_and_record_their_use(b: Backend) {
    let s = start(b).await;
    let created = s
        .post(
            "/api-keys",
            s.a.key("admin"),
            json!({"name": "reader", "user_id": "auditor@acme.example"}),
        )
        .await;
    let created = created.assert_ok(201).clone();
    let key = created["key"].as_str().unwrap();
    let via_header = s
        .send(s.http.get(s.url("/me")).header("x-api-key", key))
        .await;
    assert_eq!(via_header.assert_ok(200)["roles"], json!(["auditor"]));
    assert_eq!(via_header.body["auth_method"], "api_key");
    let list = s.get("/api-keys?limit=200", s.a.key("admin")).await;
    let list = list.assert_ok(200);
    let text = list.to_string();
    assert!(!text.contains(key), "listings never contain secrets");
    let row = list["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == created["id"])
        .unwrap();
    assert!(row["last_used_at"].is_string(), "use is recorded: {row}");
    assert!(row.get("key").is_none() && row.get("key_hash").is_none());
    s.stop().await;
}

async fn tenant_header_must_match_the_credential(b: Backend) {
    let s = start(b).await;
    let key = s.a.key("analyst");
    let simple = s.a.id.replace('-', "");
    let upper = s.a.id.to_uppercase();
    for ok in [
        s.a.id.as_str(),
        s.a.slug.as_str(),
        simple.as_str(),
        upper.as_str(),
    ] {
        let r = s
            .send(
                s.http
                    .get(s.url("/me"))
                    .bearer_auth(key)
                    .header("x-tenant-id", ok),
            )
            .await;
        r.assert_ok(200);
    }
    for bad in [s.b.id.as_str(), s.b.slug.as_str(), "nonsense"] {
        let r = s
            .send(
                s.http
                    .get(s.url("/me"))
                    .bearer_auth(key)
                    .header("x-tenant-id", bad),
            )
            .await;
        r.assert_error(403, "tenant_mismatch");
    }
    // A write with a mismatched header changes nothing.
    let before = s.user_count(s.b.key("admin")).await;
    let r = s
        .send(
            s.http
                .post(s.url("/users"))
                .bearer_auth(s.a.key("admin"))
                .header("x-tenant-id", &s.b.id)
                .json(&json!({"email": "m@x.example", "name": "M"})),
        )
        .await;
    r.assert_error(403, "tenant_mismatch");
    assert_eq!(s.user_count(s.b.key("admin")).await, before);
    assert_eq!(s.user_count(s.a.key("admin")).await, before);
    s.stop().await;
}

async fn login(s: &TestServer, user: &str) -> (String, String) {
    let r = s
        .call(Method::POST, "/auth/login", None, Some(json!({"username": user, "password": casegate_service::demo::DEMO_PASSWORD, "tenant": "acme"})))
        .await;
    r.assert_ok(200);
    let cookie = r.header("set-cookie").unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("Secure")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let csrf = r.header("x-csrf-token").unwrap().to_string();
    assert_eq!(r.body["csrf_token"], csrf.as_str());
    (cookie.split(';').next().unwrap().to_string(), csrf)
}

async fn sessions_need_csrf_for_writes_and_end_on_logout_or_expiry(b: Backend) {
    let s = start(b).await;
    let (cookie, csrf) = login(&s, "admin@acme.example").await;
    let me = s
        .send(s.http.get(s.url("/me")).header("cookie", &cookie))
        .await;
    assert_eq!(me.assert_ok(200)["auth_method"], "session");
    let before = s.user_count(s.a.key("admin")).await;
    let body = json!({"email": "new@acme.example", "name": "New"});
    let r = s
        .send(
            s.http
                .post(s.url("/users"))
                .header("cookie", &cookie)
                .json(&body),
        )
        .await;
    r.assert_error(403, "csrf_failed");
    let r = s
        .send(
            s.http
                .post(s.url("/users"))
                .header("cookie", &cookie)
                .header("x-csrf-token", "wrong")
                .json(&body),
        )
        .await;
    r.assert_error(403, "csrf_failed");
    assert_eq!(
        s.user_count(s.a.key("admin")).await,
        before,
        "refused writes change nothing"
    );
    let r = s
        .send(
            s.http
                .post(s.url("/users"))
                .header("cookie", &cookie)
                .header("x-csrf-token", &csrf)
                .json(&body),
        )
        .await;
    r.assert_ok(201);
    // Logout needs the CSRF token too, then the cookie is dead.
    s.send(s.http.post(s.url("/auth/logout")).header("cookie", &cookie))
        .await
        .assert_error(403, "csrf_failed");
    let r = s
        .send(
            s.http
                .post(s.url("/auth/logout"))
                .header("cookie", &cookie)
                .header("x-csrf-token", &csrf),
        )
        .await;
    assert_eq!(r.status.as_u16(), 204);
    s.send(s.http.get(s.url("/me")).header("cookie", &cookie))
        .await
        .assert_error(401, "unauthenticated");
    // A session ends after its lifetime (8 hours by default), by the injected clock.
    let (cookie, _) = login(&s, "auditor@acme.example").await;
    s.clock
        .advance(time::Duration::hours(8) - time::Duration::seconds(1));
    s.send(s.http.get(s.url("/me")).header("cookie", &cookie))
        .await
        .assert_ok(200);
    s.clock.advance(time::Duration::seconds(1));
    s.send(s.http.get(s.url("/me")).header("cookie", &cookie))
        .await
        .assert_error(401, "unauthenticated");
    s.stop().await;
}

async fn login_failures_look_alike(b: Backend) {
    let s = start(b).await;
    let wrong_pw = s
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": "admin@acme.example", "password": "wrong password!"})),
        )
        .await;
    wrong_pw.assert_error(401, "unauthenticated");
    let no_user = s
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": "ghost@acme.example", "password": "wrong password!"})),
        )
        .await;
    no_user.assert_error(401, "unauthenticated");
    assert_eq!(
        wrong_pw.body["error"]["message"],
        no_user.body["error"]["message"]
    );
    assert!(wrong_pw.header("set-cookie").is_none());
    // The same email and password in two organisations: the tenant must be named.
    let pw = casegate_service::demo::DEMO_PASSWORD;
    let creds = json!({"username": "admin@acme.example", "password": pw});
    s.call(Method::POST, "/auth/login", None, Some(creds.clone()))
        .await
        .assert_ok(200);
    let twin = json!({"email": "admin@acme.example", "name": "Twin", "roles": ["auditor"], "password": pw});
    s.post("/users", s.b.key("admin"), twin)
        .await
        .assert_ok(201);
    let r = s.call(Method::POST, "/auth/login", None, Some(creds)).await;
    r.assert_error(422, "validation_failed");
    assert_eq!(r.body["error"]["param"], "tenant");
    let r = s
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": "admin@acme.example", "password": pw, "tenant": "globex"})),
        )
        .await;
    assert_eq!(r.assert_ok(200)["user"]["tenant_slug"], "globex");
    assert_eq!(r.body["user"]["roles"], json!(["auditor"]));
    let r = s
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": "admin@acme.example", "pass": "x"})),
        )
        .await;
    r.assert_error(422, "validation_failed");
    s.stop().await;
}

async fn request_floods_get_429_per_credential(b: Backend) {
    let mut settings = settings();
    settings.rate_limit_per_minute = 5;
    let s = start_with(b, settings, Default::default()).await;
    let key = s.a.key("analyst");
    for i in 0..5u32 {
        let r = s.get("/me", key).await;
        r.assert_ok(200);
        assert_eq!(r.header("x-ratelimit-limit"), Some("5"));
        assert_eq!(
            r.header("x-ratelimit-remaining").unwrap(),
            (4 - i).to_string()
        );
        assert!(r.header("x-ratelimit-reset").is_some());
    }
    let r = s.get("/me", key).await;
    r.assert_error(429, "rate_limited");
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=12).contains(&wait), "{wait}");
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    // A limited write changes nothing, and another credential has its own bucket.
    let admin = s.a.key("admin");
    let before = s.user_count(admin).await;
    s.post(
        "/users",
        key,
        json!({"email": "flood@acme.example", "name": "F"}),
    )
    .await
    .assert_error(429, "rate_limited");
    assert_eq!(s.user_count(admin).await, before);
    // Requests without a valid credential are limited per client address.
    for _ in 0..5 {
        s.get("/me", "cg_live_abcdefghijklmnopqrstuvwxyz0123456789AB")
            .await
            .assert_error(401, "unauthenticated");
    }
    s.get("/me", "cg_live_abcdefghijklmnopqrstuvwxyz0123456789AB")
        .await
        .assert_error(429, "rate_limited");
    s.stop().await;
}

async fn login_attempts_have_their_own_tighter_quota(b: Backend) {
    let mut settings = settings();
    settings.login_attempts_per_minute = 3;
    let s = start_with(b, settings, Default::default()).await;
    let guess = json!({"username": "admin@acme.example", "password": "guess guess guess"});
    for _ in 0..3 {
        let r = s
            .call(Method::POST, "/auth/login", None, Some(guess.clone()))
            .await;
        r.assert_error(401, "unauthenticated");
        assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
    }
    let right = json!({"username": "admin@acme.example", "password": casegate_service::demo::DEMO_PASSWORD});
    let r = s.call(Method::POST, "/auth/login", None, Some(right)).await;
    r.assert_error(429, "rate_limited");
    assert!(r.header("retry-after").is_some());
    assert!(r.header("set-cookie").is_none());
    // API keys are unaffected by the login quota.
    s.get("/me", s.a.key("admin")).await.assert_ok(200);
    s.stop().await;
}
