//! JWT bearer tokens against a JWKS served by the test itself, including the classic attacks.
use crate::both_backends;
use crate::common::*;
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const KEY1: &[u8] = include_bytes!("../fixtures/idp_key1.pem");
const KEY1_PUB: &[u8] = include_bytes!("../fixtures/idp_key1.pub.pem");
const KEY2: &[u8] = include_bytes!("../fixtures/idp_key2.pem");
const ISS: &str = "https://idp.test";
const AUD: &str = "casegate";

both_backends!(
    jwt_tokens_are_verified_and_attacks_refused,
    jwks_is_cached_by_kid_and_refreshed_on_unknown_kid
);

/// A JWKS endpoint whose key set the test can change, counting fetches.
struct Idp {
    url: String,
    keys: Arc<Mutex<Vec<Jwk>>>,
    fetches: Arc<AtomicUsize>,
}

fn jwk(pem: &[u8], kid: &str) -> Jwk {
    let mut j =
        Jwk::from_encoding_key(&EncodingKey::from_rsa_pem(pem).unwrap(), Algorithm::RS256).unwrap();
    j.common.key_id = Some(kid.into());
    j
}

async fn idp(keys: Vec<Jwk>) -> Idp {
    let keys = Arc::new(Mutex::new(keys));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (k, f) = (keys.clone(), fetches.clone());
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let (k, f) = (k.clone(), f.clone());
            async move {
                f.fetch_add(1, Ordering::SeqCst);
                axum::Json(JwkSet {
                    keys: k.lock().unwrap().clone(),
                })
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    Idp { url, keys, fetches }
}

async fn start_jwt(b: Backend, idp: &Idp) -> TestServer {
    let config = casegate_service::ServiceConfig {
        jwt: Some(casegate_service::jwt::JwtConfig {
            jwks_url: idp.url.clone(),
            issuer: ISS.into(),
            audience: AUD.into(),
            tenant_claim: "org_id".into(),
            roles_claim: "roles".into(),
            leeway: time::Duration::seconds(30),
            min_refresh: std::time::Duration::ZERO,
        }),
        ..Default::default()
    };
    start_with(b, settings(), config).await
}

fn claims(org: &str, roles: Value) -> Value {
    let now = START.unix_timestamp();
    json!({"sub": "user-123", "iss": ISS, "aud": AUD, "exp": now + 600, "nbf": now - 60, "iat": now - 60,
           "org_id": org, "roles": roles, "email": "Ana@Acme.Example"})
}

fn sign(pem: &[u8], kid: &str, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.into());
    encode(&h, claims, &EncodingKey::from_rsa_pem(pem).unwrap()).unwrap()
}

fn with(mut c: Value, k: &str, v: Value) -> Value {
    c[k] = v;
    c
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

async fn jwt_tokens_are_verified_and_attacks_refused(b: Backend) {
    let idp = idp(vec![jwk(KEY1, "k1")]).await;
    let s = start_jwt(b, &idp).await;
    let good = claims(&s.a.slug, json!(["analyst", "unknown-role"]));
    let me = s.get("/me", &sign(KEY1, "k1", &good)).await;
    let me = me.assert_ok(200).clone();
    assert_eq!(me["auth_method"], "jwt");
    assert_eq!(me["tenant_id"], s.a.id.as_str());
    assert_eq!(me["roles"], json!(["analyst"]));
    assert_eq!(me["email"], "ana@acme.example");
    // The tenant claim may hold the id too; the user id is stable for one (iss, sub).
    let by_id = s
        .get(
            "/me",
            &sign(KEY1, "k1", &with(good.clone(), "org_id", json!(s.a.id))),
        )
        .await;
    assert_eq!(by_id.assert_ok(200)["user_id"], me["user_id"]);
    // Permissions come from the roles claim.
    s.get("/users", &sign(KEY1, "k1", &good))
        .await
        .assert_error(403, "forbidden");
    let admin = sign(KEY1, "k1", &with(good.clone(), "roles", json!("admin")));
    s.get("/users", &admin).await.assert_ok(200);
    // Tenant isolation holds for token principals.
    let b_user = s
        .get("/users/analyst@globex.example", s.b.key("admin"))
        .await
        .assert_ok(200)["id"]
        .clone();
    s.get(&format!("/users/{}", b_user.as_str().unwrap()), &admin)
        .await
        .assert_error(404, "not_found");
    let now = START.unix_timestamp();
    let refused = [
        (
            "expired",
            sign(KEY1, "k1", &with(good.clone(), "exp", json!(now - 31))),
        ),
        (
            "not yet valid",
            sign(KEY1, "k1", &with(good.clone(), "nbf", json!(now + 31))),
        ),
        (
            "wrong issuer",
            sign(
                KEY1,
                "k1",
                &with(good.clone(), "iss", json!("https://evil.test")),
            ),
        ),
        (
            "wrong audience",
            sign(
                KEY1,
                "k1",
                &with(good.clone(), "aud", json!("someone-else")),
            ),
        ),
        (
            "no exp",
            sign(KEY1, "k1", &{
                let mut c = good.clone();
                c.as_object_mut().unwrap().remove("exp");
                c
            }),
        ),
        ("unknown key", sign(KEY2, "k2", &good)),
        ("wrong key for kid", sign(KEY2, "k1", &good)),
        (
            "no tenant claim",
            sign(KEY1, "k1", &{
                let mut c = good.clone();
                c.as_object_mut().unwrap().remove("org_id");
                c
            }),
        ),
        (
            "unknown tenant",
            sign(KEY1, "k1", &with(good.clone(), "org_id", json!("initech"))),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "kid": "k1", "typ": "JWT"})),
                b64(&good)
            ),
        ),
        ("HS256 with the RSA public key as secret", {
            let mut h = Header::new(Algorithm::HS256);
            h.kid = Some("k1".into());
            encode(&h, &good, &EncodingKey::from_secret(KEY1_PUB)).unwrap()
        }),
        ("tampered payload", {
            let t = sign(KEY1, "k1", &good);
            let parts: Vec<&str> = t.split('.').collect();
            format!(
                "{}.{}.{}",
                parts[0],
                b64(&with(good.clone(), "roles", json!(["admin"]))),
                parts[2]
            )
        }),
    ];
    for (what, token) in refused {
        let r = s.get("/me", &token).await;
        assert_eq!(r.status.as_u16(), 401, "{what}: {:#}", r.body);
        r.assert_error(401, "unauthenticated");
    }
    // Within the leeway the token is still accepted.
    s.get(
        "/me",
        &sign(KEY1, "k1", &with(good.clone(), "exp", json!(now - 29))),
    )
    .await
    .assert_ok(200);
    // The clock is the injected one: moving it expires a valid token.
    let token = sign(KEY1, "k1", &good);
    s.clock.advance(time::Duration::seconds(600 + 31));
    s.get("/me", &token)
        .await
        .assert_error(401, "unauthenticated");
    s.stop().await;
}

async fn jwks_is_cached_by_kid_and_refreshed_on_unknown_kid(b: Backend) {
    let idp = idp(vec![jwk(KEY1, "k1")]).await;
    let s = start_jwt(b, &idp).await;
    let c = claims(&s.a.slug, json!(["auditor"]));
    for _ in 0..3 {
        s.get("/me", &sign(KEY1, "k1", &c)).await.assert_ok(200);
    }
    assert_eq!(
        idp.fetches.load(Ordering::SeqCst),
        1,
        "keys are cached by kid"
    );
    // The provider rotates in a new key: a token naming it triggers one refetch.
    idp.keys.lock().unwrap().push(jwk(KEY2, "k2"));
    s.get("/me", &sign(KEY2, "k2", &c)).await.assert_ok(200);
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 2);
    s.get("/me", &sign(KEY1, "k1", &c)).await.assert_ok(200);
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 2);
    s.stop().await;
}
