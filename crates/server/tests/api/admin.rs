//! Administration endpoints: users, roles and keys, their permissions, tenant isolation and
//! bad input.
use crate::both_backends;
use crate::common::*;
use reqwest::Method;
use serde_json::json;

both_backends!(
    users_are_created_listed_and_found,
    role_changes_take_effect_at_once,
    missing_permissions_are_refused_and_change_nothing,
    other_tenants_ids_answer_404_and_change_nothing,
    bad_input_gets_a_clear_error_and_changes_nothing,
    roles_catalogue_matches_the_design,
    disabled_users_lose_access_at_once,
    key_listings_name_people_by_email_and_id,
    demo_never_adopts_a_real_organisation,
);

async fn users_are_created_listed_and_found(b: Backend) {
    let s = start(b).await;
    let admin = s.a.key("admin");
    s.clock.advance(time::Duration::minutes(1));
    let r = s.post("/users", admin, json!({"email": " Nina@Acme.Example ", "name": "Nina", "roles": ["analyst"], "password": "a long enough password"})).await;
    let nina = r.assert_ok(201).clone();
    assert_eq!(nina["email"], "nina@acme.example");
    assert_eq!(nina["has_password"], true);
    assert!(nina.get("password").is_none() && nina.get("password_hash").is_none());
    assert!(nina["created_at"].as_str().unwrap().ends_with('Z'));
    let id = nina["id"].as_str().unwrap();
    assert_eq!(
        s.get(&format!("/users/{id}"), admin).await.assert_ok(200)["email"],
        "nina@acme.example"
    );
    assert_eq!(
        s.get("/users/nina@acme.example", admin)
            .await
            .assert_ok(200)["id"],
        id
    );
    // Same email again: 409, still one Nina.
    let dup = s
        .post(
            "/users",
            admin,
            json!({"email": "nina@acme.example", "name": "Nina 2"}),
        )
        .await;
    dup.assert_error(409, "already_exists");
    assert_eq!(dup.body["error"]["param"], "email");
    // Listing: newest first, paged, with the total.
    let page = s.get("/users?limit=2", admin).await;
    let page = page.assert_ok(200);
    assert_eq!(page["total"], 9);
    assert_eq!(
        (page["limit"].as_i64(), page["offset"].as_i64()),
        (Some(2), Some(0))
    );
    assert_eq!(page["users"][0]["email"], "nina@acme.example");
    let past = s.get("/users?limit=5&offset=100", admin).await;
    assert_eq!(past.assert_ok(200)["users"], json!([]));
    assert_eq!(past.body["total"], 9);
    // Nina can log in with her password.
    let r = s
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": "nina@acme.example", "password": "a long enough password"})),
        )
        .await;
    assert_eq!(r.assert_ok(200)["user"]["roles"], json!(["analyst"]));
    s.stop().await;
}

async fn role_changes_take_effect_at_once(b: Backend) {
    let s = start(b).await;
    let admin = s.a.key("admin");
    let auditor = s.a.key("auditor");
    s.get("/users", auditor)
        .await
        .assert_error(403, "forbidden");
    let r = s
        .put(
            "/users/auditor@acme.example/roles",
            admin,
            json!({"roles": ["auditor", "admin"]}),
        )
        .await;
    assert_eq!(r.assert_ok(200)["roles"], json!(["auditor", "admin"]));
    s.get("/users", auditor).await.assert_ok(200);
    s.put(
        "/users/auditor@acme.example/roles",
        admin,
        json!({"roles": ["auditor"]}),
    )
    .await
    .assert_ok(200);
    s.get("/users", auditor)
        .await
        .assert_error(403, "forbidden");
    s.stop().await;
}

async fn missing_permissions_are_refused_and_change_nothing(b: Backend) {
    let s = start(b).await;
    let admin = s.a.key("admin");
    let before = s.user_count(admin).await;
    for role in [
        "analyst",
        "senior_analyst",
        "supervisor",
        "compliance_officer",
        "legal_counsel",
        "mlro",
        "auditor",
    ] {
        let key = s.a.key(role);
        let r = s
            .post(
                "/users",
                key,
                json!({"email": format!("{role}-made@acme.example"), "name": "X"}),
            )
            .await;
        r.assert_error(403, "forbidden");
        assert_eq!(
            r.body["error"]["details"]["required_permission"],
            "admin.users"
        );
        s.get("/users", key).await.assert_error(403, "forbidden");
        s.put(
            "/users/analyst@acme.example/roles",
            key,
            json!({"roles": ["admin"]}),
        )
        .await
        .assert_error(403, "forbidden");
        s.post("/api-keys", key, json!({"name": "mine"}))
            .await
            .assert_error(403, "forbidden");
        s.get("/api-keys", key).await.assert_error(403, "forbidden");
    }
    assert_eq!(s.user_count(admin).await, before);
    assert_eq!(
        s.get("/users/analyst@acme.example", admin)
            .await
            .assert_ok(200)["roles"],
        json!(["analyst"])
    );
    assert_eq!(s.get("/api-keys", admin).await.assert_ok(200)["total"], 8);
    s.stop().await;
}

async fn other_tenants_ids_answer_404_and_change_nothing(b: Backend) {
    let s = start(b).await;
    let (a, bk) = (s.a.key("admin"), s.b.key("admin"));
    let b_user = s
        .get("/users/analyst@globex.example", bk)
        .await
        .assert_ok(200)
        .clone();
    let b_user_id = b_user["id"].as_str().unwrap();
    let missing = s
        .get("/users/00000000-0000-4000-8000-000000000000", a)
        .await;
    missing.assert_error(404, "not_found");
    let foreign = s.get(&format!("/users/{b_user_id}"), a).await;
    foreign.assert_error(404, "not_found");
    assert_eq!(
        foreign.body["error"]["message"], missing.body["error"]["message"],
        "a foreign id looks missing"
    );
    s.get("/users/analyst@globex.example", a)
        .await
        .assert_error(404, "not_found");
    s.put(
        &format!("/users/{b_user_id}/roles"),
        a,
        json!({"roles": ["admin"]}),
    )
    .await
    .assert_error(404, "not_found");
    assert_eq!(
        s.get(&format!("/users/{b_user_id}"), bk)
            .await
            .assert_ok(200)["roles"],
        json!(["analyst"])
    );
    // Keys: B's key cannot be revoked from A, and A cannot mint a key acting as B's user.
    let b_keys = s.get("/api-keys", bk).await.assert_ok(200).clone();
    let b_key_id = b_keys["api_keys"][0]["id"].as_str().unwrap();
    s.delete(&format!("/api-keys/{b_key_id}"), a)
        .await
        .assert_error(404, "not_found");
    let r = s
        .post(
            "/api-keys",
            a,
            json!({"name": "sneaky", "user_id": b_user_id}),
        )
        .await;
    r.assert_error(404, "not_found");
    assert_eq!(s.get("/api-keys", a).await.assert_ok(200)["total"], 8);
    assert!(
        s.get("/api-keys", bk).await.assert_ok(200)["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["revoked_at"].is_null())
    );
    s.get("/me", s.b.key("analyst")).await.assert_ok(200);
    // Lists never show the other organisation.
    let listed = s
        .get("/users?limit=200", a)
        .await
        .assert_ok(200)
        .to_string();
    assert!(!listed.contains("globex"));
    s.stop().await;
}

async fn bad_input_gets_a_clear_error_and_changes_nothing(b: Backend) {
    let s = start(b).await;
    let admin = s.a.key("admin");
    let before = s.user_count(admin).await;
    let url = s.url("/users");
    // Not JSON at all.
    let r = s
        .send(
            s.http
                .post(&url)
                .bearer_auth(admin)
                .header("content-type", "application/json")
                .body("{\"email\": "),
        )
        .await;
    r.assert_error(400, "malformed_request");
    // No JSON content type.
    let r = s
        .send(s.http.post(&url).bearer_auth(admin).body("{}"))
        .await;
    r.assert_error(400, "malformed_request");
    // Wrong shapes name the field.
    let cases = [
        (json!({"name": "No Email"}), "email"),
        (json!({"email": 42, "name": "N"}), "email"),
        (
            json!({"email": "a@acme.example", "name": "N", "roles": [1]}),
            "roles[0]",
        ),
        (
            json!({"email": "a@acme.example", "name": "N", "roles": ["wizard"]}),
            "roles[0]",
        ),
        (json!({"email": "not-an-email", "name": "N"}), "email"),
        (json!({"email": "a@acme.example", "name": "   "}), "name"),
        (
            json!({"email": "a@acme.example", "name": "x".repeat(201)}),
            "name",
        ),
        (
            json!({"email": "a@acme.example", "name": "N", "password": "short"}),
            "password",
        ),
        (
            json!({"email": "a@acme.example", "name": "N", "is_admin": true}),
            "is_admin",
        ),
    ];
    for (body, param) in cases {
        let r = s.post("/users", admin, body.clone()).await;
        r.assert_error(422, "validation_failed");
        assert_eq!(r.body["error"]["param"], param, "{body}");
    }
    // Oversized bodies: 413 before anything is parsed.
    let huge = json!({"email": "big@acme.example", "name": "x".repeat(2 * 1024 * 1024)});
    s.post("/users", admin, huge)
        .await
        .assert_error(413, "payload_too_large");
    // Paging limits.
    let r = s.get("/users?limit=201", admin).await;
    r.assert_error(422, "validation_failed");
    assert_eq!(r.body["error"]["param"], "limit");
    s.get("/users?limit=abc", admin)
        .await
        .assert_error(422, "validation_failed");
    s.get("/users?offset=-1", admin)
        .await
        .assert_error(422, "validation_failed");
    // Keys: missing name, unknown user.
    s.post("/api-keys", admin, json!({}))
        .await
        .assert_error(422, "validation_failed");
    s.post(
        "/api-keys",
        admin,
        json!({"name": "k", "user_id": "nobody@acme.example"}),
    )
    .await
    .assert_error(404, "not_found");
    s.put(
        "/users/analyst@acme.example/roles",
        admin,
        json!({"roles": "admin"}),
    )
    .await
    .assert_error(422, "validation_failed");
    assert_eq!(s.user_count(admin).await, before);
    assert_eq!(s.get("/api-keys", admin).await.assert_ok(200)["total"], 8);
    let r = s.call(Method::PATCH, "/users", Some(admin), None).await;
    r.assert_error(405, "method_not_allowed");
    s.stop().await;
}

async fn roles_catalogue_matches_the_design(b: Backend) {
    let s = start(b).await;
    let r = s.get("/roles", s.a.key("auditor")).await;
    let r = r.assert_ok(200);
    assert_eq!(r["permissions"].as_array().unwrap().len(), 22);
    let auditor = r["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "auditor")
        .unwrap();
    assert_eq!(
        auditor["permissions"],
        json!([
            "case.view",
            "audit.view",
            "audit.export",
            "sar.view",
            "graph.view"
        ])
    );
    s.stop().await;
}

async fn disabled_users_lose_access_at_once(b: Backend) {
    let s = start(b).await;
    let admin = s.a.key("admin");
    let analyst = s.a.key("analyst");
    s.get("/me", analyst).await.assert_ok(200);
    let r = s
        .call(
            Method::PATCH,
            "/users/analyst@acme.example",
            Some(admin),
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(r.assert_ok(200)["active"], false);
    s.get("/me", analyst)
        .await
        .assert_error(401, "unauthenticated");
    let login = json!({"username": "analyst@acme.example", "password": casegate_service::demo::DEMO_PASSWORD});
    s.call(Method::POST, "/auth/login", None, Some(login.clone()))
        .await
        .assert_error(401, "unauthenticated");
    s.call(
        Method::PATCH,
        "/users/analyst@acme.example",
        Some(admin),
        Some(json!({"active": true})),
    )
    .await
    .assert_ok(200);
    s.get("/me", analyst).await.assert_ok(200);
    // A new password ends existing sessions and replaces the old one.
    let r = s
        .call(Method::POST, "/auth/login", None, Some(login.clone()))
        .await;
    r.assert_ok(200);
    let cookie = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let patch = json!({"password": "a brand new passphrase", "name": "Ana Renamed"});
    let r = s
        .call(
            Method::PATCH,
            "/users/analyst@acme.example",
            Some(admin),
            Some(patch),
        )
        .await;
    assert_eq!(r.assert_ok(200)["name"], "Ana Renamed");
    s.send(s.http.get(s.url("/me")).header("cookie", &cookie))
        .await
        .assert_error(401, "unauthenticated");
    s.call(Method::POST, "/auth/login", None, Some(login))
        .await
        .assert_error(401, "unauthenticated");
    let new_login =
        json!({"username": "analyst@acme.example", "password": "a brand new passphrase"});
    s.call(Method::POST, "/auth/login", None, Some(new_login))
        .await
        .assert_ok(200);
    // Nobody disables themselves; bad values and foreign users change nothing.
    let r = s
        .call(
            Method::PATCH,
            "/users/admin@acme.example",
            Some(admin),
            Some(json!({"active": false})),
        )
        .await;
    r.assert_error(422, "validation_failed");
    s.call(
        Method::PATCH,
        "/users/analyst@acme.example",
        Some(admin),
        Some(json!({"password": "short"})),
    )
    .await
    .assert_error(422, "validation_failed");
    s.call(
        Method::PATCH,
        "/users/analyst@acme.example",
        Some(admin),
        Some(json!({"active": "no"})),
    )
    .await
    .assert_error(422, "validation_failed");
    s.call(
        Method::PATCH,
        "/users/analyst@globex.example",
        Some(admin),
        Some(json!({"active": false})),
    )
    .await
    .assert_error(404, "not_found");
    s.get("/me", s.b.key("analyst")).await.assert_ok(200);
    s.call(
        Method::PATCH,
        "/users/auditor@acme.example",
        Some(s.a.key("mlro")),
        Some(json!({"active": false})),
    )
    .await
    .assert_error(403, "forbidden");
    s.get("/me", s.a.key("auditor")).await.assert_ok(200);
    s.stop().await;
}

async fn key_listings_name_people_by_email_and_id(b: Backend) {
    let s = start(b).await;
    let admin = s.a.key("admin");
    let created = s
        .post(
            "/api-keys",
            admin,
            json!({"name": "etl", "user_id": "auditor@acme.example"}),
        )
        .await;
    let id = created.assert_ok(201)["id"].clone();
    let list = s.get("/api-keys", admin).await;
    let row = list.assert_ok(200)["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(row["user"], "auditor@acme.example");
    assert!(row["user_id"].is_string());
    assert_eq!(row["created_by"], "admin@acme.example");
    assert!(row["created_by_id"].is_string());
    s.stop().await;
}

async fn demo_never_adopts_a_real_organisation(b: Backend) {
    let s = start(b).await;
    let real = casegate_service::tenants::create(
        &s.svc,
        "real-bank",
        "Real Bank",
        "ciso@real.example",
        None,
    )
    .await
    .unwrap();
    let e = casegate_service::demo::ensure(&s.svc, "real-bank")
        .await
        .unwrap_err();
    assert_eq!(e.code, casegate_domain::Code::ValidationFailed);
    let users = s.get("/users", &real.admin_key.secret).await;
    assert_eq!(users.assert_ok(200)["total"], 1, "no demo users were added");
    // The sandbox itself stays idempotent.
    casegate_service::demo::ensure(&s.svc, "acme")
        .await
        .unwrap();
    assert_eq!(s.user_count(s.a.key("admin")).await, 8);
    s.stop().await;
}
