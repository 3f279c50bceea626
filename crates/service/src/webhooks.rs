//! Webhooks (API.md "Webhooks", docs/webhooks.md): registrations, the fan-out of outbox events
//! into deliveries, delivery with both signature schemes, retries, the circuit breaker, and the
//! delivery record.
//!
//! Delivery is at least once. The dispatcher turns each committed outbox event into one
//! delivery per matching registration in one transaction (repeatable: a registration gets one
//! first delivery per event). Deliverers claim due deliveries under a lease (`SKIP LOCKED` on
//! PostgreSQL), send outside any transaction, and write the outcome guarded by the attempt
//! number; a deliverer that dies mid-send leaves the delivery to be claimed again once the lease
//! runs out. Every attempt of an event carries the same event id (`webhook-id`), so receivers
//! can drop duplicates.
use crate::audit::{self, Entry};
use crate::secrets::SecretBox;
use crate::{Code, Error, Page, Result, ServiceConfig, Services};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use casegate_domain::clock::{serialize_opt_wire_time, serialize_wire_time};
use casegate_domain::events;
use casegate_domain::ids::TenantId;
use casegate_domain::principal::Caller;
use casegate_domain::rbac::Permission;
use casegate_domain::validate;
use casegate_store::Conn;
use casegate_store::outbox::{self, OutboxEvent};
use casegate_store::webhooks::{self as store, Attempt, Delivery, Webhook};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Attempts at one delivery before it is dead.
pub const MAX_ATTEMPTS: i64 = 10;
/// How long one attempt may take by default (`ServiceConfig::webhook_timeout`).
pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a claimed delivery is hidden from other deliverers: six attempt timeouts (60 s at
/// the default), well over the time a round of concurrent attempts can take.
fn lease(cfg: &ServiceConfig) -> Duration {
    Duration::seconds(6 * cfg.webhook_timeout.as_secs().max(1) as i64)
}
/// Waits after attempts 1..9: one minute growing to a day, about 47 hours in all.
const BACKOFF_SECS: [i64; 9] = [
    60,
    5 * 60,
    15 * 60,
    30 * 60,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    24 * 3600,
];
/// Failures in a row after which a registration's circuit opens.
pub const CIRCUIT_AFTER: i64 = 5;
/// Events fanned out per transaction.
const FAN_OUT_BATCH: i64 = 500;
/// Longest URL accepted.
const MAX_URL_CHARS: usize = 2048;
/// Default overlap of a rotated secret.
const DEFAULT_OVERLAP_HOURS: i64 = 24;

/// A registration as the API shows it (never its secret).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WebhookView {
    /// Registration id.
    pub id: Uuid,
    /// Receiver URL.
    pub url: String,
    /// What it is for.
    pub description: Option<String>,
    /// Subscribed event names (`*`: all).
    pub events: Value,
    /// Whether deliveries are made.
    pub active: bool,
    /// Why it was turned off (a 410 answer).
    pub disabled_reason: Option<String>,
    /// Until when the previous secret still signs (after a rotation).
    #[serde(serialize_with = "serialize_opt_wire_time")]
    pub previous_secret_until: Option<OffsetDateTime>,
    /// Failed attempts in a row.
    pub consecutive_failures: i64,
    /// No attempt before this time (the endpoint kept failing).
    #[serde(serialize_with = "serialize_opt_wire_time")]
    pub circuit_open_until: Option<OffsetDateTime>,
    /// Created.
    #[serde(serialize_with = "serialize_wire_time")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(serialize_with = "serialize_wire_time")]
    pub updated_at: OffsetDateTime,
    /// Grows by one on every change.
    pub version: i64,
}

impl From<&Webhook> for WebhookView {
    fn from(w: &Webhook) -> Self {
        Self {
            id: w.id,
            url: w.url.clone(),
            description: w.description.clone(),
            events: w.events.clone(),
            active: w.active,
            disabled_reason: w.disabled_reason.clone(),
            previous_secret_until: w.previous_secret_until,
            consecutive_failures: w.consecutive_failures,
            circuit_open_until: w.circuit_open_until,
            created_at: w.created_at,
            updated_at: w.updated_at,
            version: w.version,
        }
    }
}

/// A registration with its secret: the answer of create and rotate, the only time the secret
/// is shown.
#[derive(Clone, Debug, Serialize)]
pub struct WithSecret {
    /// The registration.
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_` + base64 of 32 random bytes.
    pub secret: String,
}

/// A delivery as the API shows it (API.md "Webhooks").
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeliveryView {
    /// Delivery id (`X-Casegate-Delivery`).
    pub id: Uuid,
    /// The registration.
    pub webhook_id: Uuid,
    /// The event (`webhook-id`; the same on every attempt).
    pub event_id: Uuid,
    /// Event name.
    pub event_type: String,
    /// Attempts made.
    pub attempt: i64,
    /// `pending|succeeded|failed|dead`.
    pub state: String,
    /// HTTP status of the last attempt.
    pub status_code: Option<i64>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// Duration of the last attempt.
    pub duration_ms: Option<i64>,
    /// The delivery a manual redelivery repeats.
    pub redelivery_of: Option<Uuid>,
    /// Created.
    #[serde(serialize_with = "serialize_wire_time")]
    pub created_at: OffsetDateTime,
    /// When it is next tried (none once it succeeded or died).
    #[serde(serialize_with = "serialize_opt_wire_time")]
    pub next_attempt_at: Option<OffsetDateTime>,
    /// Every attempt (in `GET …/deliveries/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Vec<AttemptView>>,
}

impl From<&Delivery> for DeliveryView {
    fn from(d: &Delivery) -> Self {
        Self {
            id: d.id,
            webhook_id: d.webhook_id,
            event_id: d.event_id,
            event_type: d.event_type.clone(),
            attempt: d.attempt,
            state: d.state.clone(),
            status_code: d.status_code,
            error: d.error.clone(),
            duration_ms: d.duration_ms,
            redelivery_of: d.redelivery_of,
            created_at: d.created_at,
            next_attempt_at: d.next_attempt_at,
            attempts: None,
        }
    }
}

/// One attempt.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttemptView {
    /// 1, 2, …
    pub attempt: i64,
    /// When it was sent.
    #[serde(serialize_with = "serialize_wire_time")]
    pub started_at: OffsetDateTime,
    /// HTTP status, when an answer came.
    pub status_code: Option<i64>,
    /// How long it took.
    pub duration_ms: i64,
    /// What went wrong.
    pub error: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Addresses (SSRF).

/// Why deliveries may not go to `ip`, if they may not. Loopback is allowed only with
/// `--allow-insecure-webhooks`, private ranges only with `allow_private_webhooks`; link-local
/// (cloud metadata at 169.254.169.254), unspecified, multicast and reserved addresses never.
pub fn refusal(ip: IpAddr, cfg: &ServiceConfig) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4, cfg),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return refusal_v4(v4, cfg);
            }
            let seg = v6.segments();
            if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                // NAT64: the IPv4 address it reaches.
                let [a, b] = seg[6].to_be_bytes();
                let [c, d] = seg[7].to_be_bytes();
                return refusal_v4(Ipv4Addr::new(a, b, c, d), cfg);
            }
            if v6.is_loopback() {
                (!cfg.allow_insecure_webhooks).then_some("a loopback address")
            } else if v6.is_unspecified() || v6.is_multicast() {
                Some("an unspecified or multicast address")
            } else if v6.is_unicast_link_local() {
                Some("a link-local address")
            } else if v6.is_unique_local() {
                (!cfg.allow_private_webhooks).then_some("a private address")
            } else if seg[0] == 0x2001 && seg[1] == 0x0db8 || v6 == Ipv6Addr::UNSPECIFIED {
                Some("a reserved address")
            } else {
                None
            }
        }
    }
}

fn refusal_v4(ip: Ipv4Addr, cfg: &ServiceConfig) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        (!cfg.allow_insecure_webhooks).then_some("a loopback address")
    } else if ip.is_link_local() {
        Some("a link-local address (cloud metadata lives there)")
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        (!cfg.allow_private_webhooks).then_some("a private address")
    } else if a == 0 || ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        Some("an unspecified, broadcast, multicast or reserved address")
    } else if ip.is_documentation() || (a == 198 && (18..20).contains(&b)) || (a == 192 && b == 0) {
        Some("a reserved address")
    } else {
        None
    }
}

/// Checks a registration URL: `https` (plain `http` only to loopback with
/// `--allow-insecure-webhooks`), no credentials in it, and every address its host resolves to
/// allowed by [`refusal`].
pub async fn check_url(cfg: &ServiceConfig, raw: &str) -> Result<reqwest::Url> {
    let bad = |m: String| Error::validation("url", m);
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(bad(format!("must be at most {MAX_URL_CHARS} characters")));
    }
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| bad(format!("not a URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry credentials".into()));
    }
    let insecure_hint =
        "must use https (plain http only to a loopback address, with --allow-insecure-webhooks)";
    match url.scheme() {
        "https" => {}
        "http" if cfg.allow_insecure_webhooks => {}
        "http" => return Err(bad(insecure_hint.into())),
        _ => return Err(bad("must use https".into())),
    }
    let host = url
        .host_str()
        .ok_or_else(|| bad("must name a host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| bad("must use https".into()))?;
    let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => {
            let found =
                tokio::time::timeout(TIMEOUT, tokio::net::lookup_host((host.as_str(), port)))
                    .await
                    .map_err(|_| bad(format!("`{host}` did not resolve in time")))?
                    .map_err(|_| bad(format!("`{host}` does not resolve")))?;
            found.map(|a| a.ip()).collect()
        }
    };
    if addrs.is_empty() {
        return Err(bad(format!("`{host}` does not resolve")));
    }
    if url.scheme() == "http" && !addrs.iter().all(IpAddr::is_loopback) {
        return Err(bad(insecure_hint.into()));
    }
    for ip in &addrs {
        if let Some(why) = refusal(*ip, cfg) {
            return Err(bad(format!(
                "`{host}` resolves to {why} ({ip}), which webhooks may not reach"
            )));
        }
    }
    Ok(url)
}

/// A DNS resolver for the delivery client that drops addresses [`refusal`] forbids, so a host
/// that resolved to a public address at registration cannot be pointed inside later (DNS
/// rebinding).
struct GuardedResolver {
    cfg: Arc<ServiceConfig>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let cfg = self.cfg.clone();
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> =
                found.filter(|a| refusal(a.ip(), &cfg).is_none()).collect();
            if allowed.is_empty() {
                return Err(
                    format!("{} resolves only to forbidden addresses", name.as_str()).into(),
                );
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The HTTP client deliveries use: no redirects (a redirect could lead inside), the guarded
/// resolver, the attempt timeout.
pub fn client(cfg: &ServiceConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(cfg.webhook_timeout)
        .connect_timeout(cfg.webhook_timeout)
        .user_agent(concat!("casegate-webhooks/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(GuardedResolver {
            cfg: Arc::new(cfg.clone()),
        }))
        .build()
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Signatures.

/// Seals the secrets stored as issued before sealing existed (run at start-up; nothing to do
/// once every row is sealed). Answers how many registrations it sealed.
pub async fn seal_stored(svc: &Services) -> Result<u64> {
    let mut tx = svc.db.begin().await?;
    let mut sealed = 0;
    for w in store::unsealed(&mut *tx).await? {
        let context = sealed_for(w.tenant_id, w.id);
        let seal = |s: &str| {
            if SecretBox::is_sealed(s) {
                s.to_string()
            } else {
                svc.secrets.seal(s, &context)
            }
        };
        let previous = w.previous_secret.as_deref().map(seal);
        sealed +=
            u64::from(store::reseal(&mut *tx, &w, &seal(&w.secret), previous.as_deref()).await?);
    }
    tx.commit().await?;
    Ok(sealed)
}

/// The row a webhook's sealed secrets are bound to.
fn sealed_for(tenant: TenantId, id: Uuid) -> String {
    format!("webhook:{tenant}:{id}")
}

/// A new secret: `whsec_` + base64 of 32 random bytes.
fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("whsec_{}", B64.encode(bytes))
}

/// The HMAC key of a secret: its 32 decoded bytes.
fn key_of(secret: &str) -> Vec<u8> {
    B64.decode(secret.trim_start_matches("whsec_"))
        .unwrap_or_else(|_| secret.as_bytes().to_vec())
}

fn mac(secret: &str, parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut m = Hmac::<Sha256>::new_from_slice(&key_of(secret)).expect("HMAC takes any key");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

/// The signature headers of one attempt, signed with every secret in `secrets` (two during a
/// rotation's overlap): `X-Casegate-Signature: t=<ts>,v1=<hex>[,v1=<hex>]` over
/// `"<ts>.<body>"`, and Standard Webhooks' `webhook-signature: v1,<base64>[ v1,<base64>]` over
/// `"<id>.<ts>.<body>"`.
pub fn signatures(secrets: &[&str], id: &str, ts: i64, body: &str) -> (String, String) {
    let t = ts.to_string();
    let casegate: Vec<String> = secrets
        .iter()
        .map(|s| {
            let sig = mac(s, &[t.as_bytes(), b".", body.as_bytes()]);
            format!("v1={}", casegate_domain::audit::hex(&sig))
        })
        .collect();
    let standard: Vec<String> = secrets
        .iter()
        .map(|s| {
            let sig = mac(
                s,
                &[id.as_bytes(), b".", t.as_bytes(), b".", body.as_bytes()],
            );
            format!("v1,{}", B64.encode(sig))
        })
        .collect();
    (format!("t={t},{}", casegate.join(",")), standard.join(" "))
}

// ---------------------------------------------------------------------------------------------
// Commands.

fn parse_id(id: &str, what: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| Error::not_found(what))
}

async fn load(c: &mut dyn Conn, p: &Caller, id: &str, lock: bool) -> Result<Webhook> {
    store::get(c, p.tenant_id, parse_id(id, "webhook")?, lock)
        .await?
        .ok_or_else(|| Error::not_found("webhook"))
}

/// Writes `w` (changed from its stored version) back as the next version at `now`; 409
/// `version_conflict` when another command changed it meanwhile.
async fn save(c: &mut dyn Conn, w: &mut Webhook, now: OffsetDateTime) -> Result<()> {
    let read = w.version;
    w.updated_at = now;
    w.version += 1;
    if !store::update(c, w, read).await? {
        return Err(Error::new(
            Code::VersionConflict,
            "the webhook changed meanwhile; read it again",
        ));
    }
    Ok(())
}

/// Registration `id` and its delivery `delivery_id` (404 for either unknown in `p`'s tenant).
async fn load_delivery(
    c: &mut dyn Conn,
    p: &Caller,
    id: &str,
    delivery_id: &str,
) -> Result<(Webhook, Delivery)> {
    let w = load(c, p, id, false).await?;
    let d = store::get_delivery(c, p.tenant_id, w.id, parse_id(delivery_id, "delivery")?)
        .await?
        .ok_or_else(|| Error::not_found("delivery"))?;
    Ok((w, d))
}

/// `events`: a non-empty list of known event names or `["*"]`.
fn events_of(v: &Value) -> Result<Value> {
    let list = v
        .as_array()
        .filter(|a| !a.is_empty() && a.len() <= events::EVENT_TYPES.len())
        .ok_or_else(|| {
            Error::validation(
                "events",
                "must be a non-empty list of event names, or [\"*\"]",
            )
        })?;
    let mut names = Vec::new();
    for (i, e) in list.iter().enumerate() {
        let name = e.as_str().unwrap_or_default();
        if name != "*" && !events::is_known(name) {
            return Err(Error::validation(
                format!("events[{i}]"),
                format!(
                    "unknown event `{}`; expected `*` or one of {}",
                    e.as_str().unwrap_or("?"),
                    events::EVENT_TYPES.join(", ")
                ),
            ));
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(json!(names))
}

fn description_of(v: Option<&Value>) -> Result<Option<String>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(validate::text("description", s, 500)?)),
        Some(_) => Err(Error::validation("description", "must be a string")),
    }
}

/// `null` clears an attribute throughout the API; a registration always has a receiver and an
/// on/off state, so `null` for `url` or `active` is refused rather than read as "unchanged".
fn bool_of(v: Option<&Value>, key: &str, default: bool) -> Result<bool> {
    match v {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Null) => Err(Error::validation(
            key,
            "cannot be null: leave the key out to keep it, or send true or false",
        )),
        Some(_) => Err(Error::validation(key, "must be true or false")),
    }
}

fn url_text(body: &Map<String, Value>) -> Result<Option<&str>> {
    match body.get("url") {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Null) => Err(Error::validation(
            "url",
            "cannot be null: a webhook always has a receiver; leave the key out to keep it",
        )),
        Some(_) => Err(Error::validation("url", "must be a string")),
    }
}

/// The webhook body of an event: `{"id", "type", "created_at", "tenant_id", "data"}`.
fn body_of(
    tenant: TenantId,
    id: Uuid,
    event_type: &str,
    at: OffsetDateTime,
    data: &Value,
) -> String {
    json!({
        "id": id,
        "type": event_type,
        "created_at": casegate_domain::clock::wire_time(at),
        "tenant_id": tenant.0,
        "data": data,
    })
    .to_string()
}

fn new_delivery(w: &Webhook, e: &OutboxEvent, now: OffsetDateTime) -> Delivery {
    Delivery {
        tenant_id: w.tenant_id,
        id: Uuid::now_v7(),
        webhook_id: w.id,
        event_id: e.id,
        event_type: e.event_type.clone(),
        body: body_of(e.tenant_id, e.id, &e.event_type, e.created_at, &e.data),
        ordering_key: ordering_key(&e.data),
        state: "pending".into(),
        attempt: 0,
        next_attempt_at: Some(now),
        status_code: None,
        error: None,
        duration_ms: None,
        redelivery_of: None,
        // The event's time, so a case's deliveries order as its events did.
        created_at: e.created_at,
        updated_at: now,
    }
}

/// The case an event concerns, whose events go out in order.
fn ordering_key(data: &Value) -> Option<String> {
    [
        &data["case"]["id"],
        &data["case_id"],
        &data["request"]["case_id"],
    ]
    .into_iter()
    .find_map(|v| v.as_str().map(str::to_string))
}

/// `POST /webhooks` (`webhook.admin`): `{url, events, description, active}`. Answers the
/// registration with its secret (shown only here); a `ping` is queued for it at once.
pub async fn create(svc: &Services, p: &Caller, body: Map<String, Value>) -> Result<WithSecret> {
    p.require(Permission::WebhookAdmin)?;
    let url = url_text(&body)?.ok_or_else(|| Error::validation("url", "`url` is required"))?;
    let url = check_url(&svc.config, url).await?;
    let events = events_of(body.get("events").unwrap_or(&json!(["*"])))?;
    let description = description_of(body.get("description"))?;
    let active = bool_of(body.get("active"), "active", true)?;
    let now = svc.clock.now();
    let secret = new_secret();
    let id = Uuid::now_v7();
    let w = Webhook {
        tenant_id: p.tenant_id,
        id,
        url: url.to_string(),
        description,
        events,
        active,
        disabled_reason: None,
        secret: svc.secrets.seal(&secret, &sealed_for(p.tenant_id, id)),
        previous_secret: None,
        previous_secret_until: None,
        consecutive_failures: 0,
        circuit_open_until: None,
        created_by: Some(p.user_id),
        created_at: now,
        updated_at: now,
        deleted_at: None,
        version: 1,
    };
    let mut tx = svc.db.begin().await?;
    store::insert(&mut *tx, &w).await?;
    let ping = OutboxEvent {
        tenant_id: p.tenant_id,
        id: Uuid::now_v7(),
        event_type: "ping".into(),
        created_at: now,
        data: json!({ "webhook_id": w.id, "message": "casegate can reach this endpoint" }),
        actions: None,
        dispatched_at: None,
        attempts: 0,
        last_error: None,
    };
    let mut d = new_delivery(&w, &ping, now);
    d.ordering_key = None;
    store::insert_delivery(&mut *tx, &d).await?;
    let view = WebhookView::from(&w);
    let entry = Entry::new("webhook.created", "webhook", w.id)
        .change("url", Value::Null, w.url.as_str())
        .change("events", Value::Null, w.events.clone())
        .change("active", Value::Null, w.active);
    audit::append_by(&mut *tx, now, p, entry).await?;
    tx.commit().await?;
    Ok(WithSecret {
        webhook: view,
        secret,
    })
}

/// `GET /webhooks` (`webhook.admin`): oldest first.
pub async fn list(svc: &Services, p: &Caller, page: Page) -> Result<(Vec<WebhookView>, i64)> {
    p.require(Permission::WebhookAdmin)?;
    let mut c = svc.db.conn().await?;
    let (rows, total) = store::list(&mut *c, p.tenant_id, page.limit, page.offset).await?;
    Ok((rows.iter().map(WebhookView::from).collect(), total))
}

/// `GET /webhooks/{id}` (`webhook.admin`).
pub async fn get(svc: &Services, p: &Caller, id: &str) -> Result<WebhookView> {
    p.require(Permission::WebhookAdmin)?;
    let mut c = svc.db.conn().await?;
    Ok(WebhookView::from(&load(&mut *c, p, id, false).await?))
}

/// `PATCH /webhooks/{id}` (`webhook.admin`): `url`, `events`, `description`, `active`. Turning
/// a registration back on clears why it was off and closes its circuit.
pub async fn update(
    svc: &Services,
    p: &Caller,
    id: &str,
    body: Map<String, Value>,
) -> Result<WebhookView> {
    p.require(Permission::WebhookAdmin)?;
    let url = match url_text(&body)? {
        Some(u) => Some(check_url(&svc.config, u).await?.to_string()),
        None => None,
    };
    let events = body.get("events").map(events_of).transpose()?;
    let now = svc.clock.now();
    let mut tx = svc.db.begin().await?;
    let before = load(&mut *tx, p, id, true).await?;
    let mut w = before.clone();
    if let Some(u) = url {
        w.url = u;
    }
    if let Some(e) = events {
        w.events = e;
    }
    if body.contains_key("description") {
        w.description = description_of(body.get("description"))?;
    }
    w.active = bool_of(body.get("active"), "active", w.active)?;
    if w.active && !before.active {
        w.disabled_reason = None;
        w.consecutive_failures = 0;
        w.circuit_open_until = None;
    }
    save(&mut *tx, &mut w, now).await?;
    let mut entry = Entry::new("webhook.updated", "webhook", w.id);
    if w.url != before.url {
        entry = entry.change("url", before.url.as_str(), w.url.as_str());
    }
    if w.events != before.events {
        entry = entry.change("events", before.events.clone(), w.events.clone());
    }
    if w.description != before.description {
        entry = entry.change(
            "description",
            before.description.clone(),
            w.description.clone(),
        );
    }
    if w.active != before.active {
        entry = entry.change("active", before.active, w.active);
    }
    audit::append_by(&mut *tx, now, p, entry).await?;
    tx.commit().await?;
    Ok(WebhookView::from(&w))
}

/// `DELETE /webhooks/{id}` (`webhook.admin`): no more deliveries; the unfinished ones die with
/// that reason, and the record stays for the audit.
pub async fn delete(svc: &Services, p: &Caller, id: &str) -> Result<()> {
    p.require(Permission::WebhookAdmin)?;
    let now = svc.clock.now();
    let mut tx = svc.db.begin().await?;
    let before = load(&mut *tx, p, id, true).await?;
    let mut w = before.clone();
    w.active = false;
    w.deleted_at = Some(now);
    save(&mut *tx, &mut w, now).await?;
    store::kill_pending(&mut *tx, p.tenant_id, w.id, "the webhook was deleted", now).await?;
    let entry = Entry::new("webhook.deleted", "webhook", w.id).change(
        "url",
        before.url.as_str(),
        Value::Null,
    );
    audit::append_by(&mut *tx, now, p, entry).await?;
    tx.commit().await?;
    Ok(())
}

/// `POST /webhooks/{id}/rotate-secret` (`webhook.admin`): a new secret, shown once; the old one
/// keeps signing beside it for `overlap_hours` (default 24, at most 168) so receivers can
/// switch without losing a delivery.
pub async fn rotate_secret(
    svc: &Services,
    p: &Caller,
    id: &str,
    overlap_hours: Option<i64>,
) -> Result<WithSecret> {
    p.require(Permission::WebhookAdmin)?;
    let hours = overlap_hours.unwrap_or(DEFAULT_OVERLAP_HOURS);
    if !(0..=168).contains(&hours) {
        return Err(Error::validation(
            "overlap_hours",
            "must be between 0 and 168",
        ));
    }
    let now = svc.clock.now();
    let mut tx = svc.db.begin().await?;
    let before = load(&mut *tx, p, id, true).await?;
    let mut w = before.clone();
    let secret = new_secret();
    // Both stay sealed: the previous one as it was stored, the new one sealed now.
    w.previous_secret = (hours > 0).then(|| before.secret.clone());
    w.previous_secret_until = (hours > 0).then(|| now + Duration::hours(hours));
    w.secret = svc.secrets.seal(&secret, &sealed_for(w.tenant_id, w.id));
    save(&mut *tx, &mut w, now).await?;
    let entry = Entry::new("webhook.secret_rotated", "webhook", w.id).change(
        "previous_secret_until",
        Value::Null,
        w.previous_secret_until
            .map(casegate_domain::clock::wire_time),
    );
    audit::append_by(&mut *tx, now, p, entry).await?;
    tx.commit().await?;
    Ok(WithSecret {
        webhook: WebhookView::from(&w),
        secret,
    })
}

/// `GET /webhooks/{id}/deliveries` (`webhook.admin`): newest first, optionally in one `state`.
pub async fn deliveries(
    svc: &Services,
    p: &Caller,
    id: &str,
    state: Option<&str>,
    page: Page,
) -> Result<(Vec<DeliveryView>, i64)> {
    p.require(Permission::WebhookAdmin)?;
    if let Some(s) = state
        && !store::STATES.contains(&s)
    {
        return Err(Error::validation(
            "state",
            "must be pending, succeeded, failed or dead",
        ));
    }
    let mut c = svc.db.conn().await?;
    let w = load(&mut *c, p, id, false).await?;
    let (rows, total) =
        store::deliveries(&mut *c, p.tenant_id, w.id, state, page.limit, page.offset).await?;
    Ok((rows.iter().map(DeliveryView::from).collect(), total))
}

/// `GET /webhooks/{id}/deliveries/{delivery_id}` (`webhook.admin`), with every attempt.
pub async fn delivery(
    svc: &Services,
    p: &Caller,
    id: &str,
    delivery_id: &str,
) -> Result<DeliveryView> {
    p.require(Permission::WebhookAdmin)?;
    let mut c = svc.db.conn().await?;
    let (_, d) = load_delivery(&mut *c, p, id, delivery_id).await?;
    let attempts = store::attempts(&mut *c, p.tenant_id, d.id).await?;
    let mut v = DeliveryView::from(&d);
    v.attempts = Some(
        attempts
            .into_iter()
            .map(|a| AttemptView {
                attempt: a.attempt,
                started_at: a.started_at,
                status_code: a.status_code,
                duration_ms: a.duration_ms,
                error: a.error,
            })
            .collect(),
    );
    Ok(v)
}

/// `POST /webhooks/{id}/deliveries/{delivery_id}/redeliver` (`webhook.admin`): sends the same
/// body (same event id) again as a new delivery, whatever became of the first.
pub async fn redeliver(
    svc: &Services,
    p: &Caller,
    id: &str,
    delivery_id: &str,
) -> Result<DeliveryView> {
    p.require(Permission::WebhookAdmin)?;
    let now = svc.clock.now();
    let mut tx = svc.db.begin().await?;
    let (w, first) = load_delivery(&mut *tx, p, id, delivery_id).await?;
    let d = Delivery {
        id: Uuid::now_v7(),
        state: "pending".into(),
        attempt: 0,
        next_attempt_at: Some(now),
        status_code: None,
        error: None,
        duration_ms: None,
        ordering_key: None,
        redelivery_of: Some(first.redelivery_of.unwrap_or(first.id)),
        created_at: now,
        updated_at: now,
        ..first
    };
    store::insert_delivery(&mut *tx, &d).await?;
    let entry = Entry::new("webhook.redelivered", "webhook", w.id)
        .change("event_id", Value::Null, d.event_id.to_string())
        .change("delivery_id", Value::Null, d.id.to_string());
    audit::append_by(&mut *tx, now, p, entry).await?;
    tx.commit().await?;
    Ok(DeliveryView::from(&d))
}

// ---------------------------------------------------------------------------------------------
// The worker's side.

/// Whether a registration subscribed to `event_type`.
fn wants(w: &Webhook, event_type: &str) -> bool {
    w.events
        .as_array()
        .is_some_and(|a| a.iter().any(|e| e == "*" || e == event_type))
}

/// Fans committed events out into deliveries and into the notifications people are owed
/// ([`crate::notifications::of_event`]), one transaction per batch; answers how many events it
/// handled. Part of the dispatcher's round.
pub async fn fan_out(svc: &Services) -> Result<u64> {
    let now = svc.clock.now();
    let mut tx = svc.db.begin().await?;
    let mut batch = outbox::take_for_fan_out(&mut *tx, now, FAN_OUT_BATCH).await?;
    if batch.is_empty() {
        return Ok(0);
    }
    let tenants: Vec<TenantId> = batch.iter().map(|e| e.tenant_id).collect();
    let hooks = store::active_of(&mut *tx, &tenants).await?;
    // The batch comes without the events' bodies; only those going somewhere are read.
    outbox::fill_data(&mut *tx, &mut batch, |e| {
        crate::notifications::tells_of(&e.event_type) || hooks_for(&hooks, e).next().is_some()
    })
    .await?;
    let mut deliveries = Vec::new();
    for e in &batch {
        deliveries.extend(hooks_for(&hooks, e).map(|w| new_delivery(w, e, now)));
        crate::notifications::of_event(&mut *tx, e).await?;
    }
    // The batch's deliveries go in a few statements, not one per event: at a backlog, round
    // trips per event are what bounds the drain rate.
    store::insert_deliveries(&mut *tx, &deliveries).await?;
    tx.commit().await?;
    Ok(batch.len() as u64)
}

/// The registrations of `hooks` that `e` goes to. `ping` goes only to the registration it
/// tests (queued by `create`).
fn hooks_for<'a>(
    hooks: &'a HashMap<TenantId, Vec<Webhook>>,
    e: &'a OutboxEvent,
) -> impl Iterator<Item = &'a Webhook> {
    hooks
        .get(&e.tenant_id)
        .into_iter()
        .flatten()
        .filter(|w| e.event_type != "ping" && wants(w, &e.event_type))
}

/// What one attempt came to.
#[derive(Clone)]
struct Sent {
    status: Option<u16>,
    duration_ms: i64,
    error: Option<String>,
}

async fn send(svc: &Services, d: &Delivery, w: &Webhook) -> Sent {
    let now = svc.clock.now();
    let context = sealed_for(w.tenant_id, w.id);
    let mut sealed = vec![w.secret.as_str()];
    if let (Some(prev), Some(until)) = (&w.previous_secret, w.previous_secret_until)
        && until > now
    {
        sealed.push(prev);
    }
    let mut secrets = Vec::with_capacity(sealed.len());
    for s in sealed {
        match svc.secrets.open(s, &context) {
            Ok(plain) => secrets.push(plain),
            Err(e) => {
                return Sent {
                    status: None,
                    duration_ms: 0,
                    error: Some(e.message),
                };
            }
        }
    }
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    // The signature time is the wall clock's: receivers compare it with theirs to refuse
    // replays, whatever clock drives casegate's business times.
    let ts = OffsetDateTime::now_utc().unix_timestamp();
    let id = d.event_id.to_string();
    let (casegate_sig, standard_sig) = signatures(&secrets, &id, ts, &d.body);
    let started = std::time::Instant::now();
    let r = svc
        .webhook_client
        .post(&w.url)
        .header("content-type", "application/json")
        .header("x-casegate-event", &d.event_type)
        .header("x-casegate-delivery", d.id.to_string())
        .header("x-casegate-signature", casegate_sig)
        .header("webhook-id", &id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", standard_sig)
        .body(d.body.clone())
        .send()
        .await;
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    match r {
        Ok(resp) => {
            let status = resp.status().as_u16();
            Sent {
                status: Some(status),
                duration_ms,
                error: (!resp.status().is_success()).then(|| format!("HTTP {status}")),
            }
        }
        Err(e) => Sent {
            status: None,
            duration_ms,
            error: Some(describe(&e)),
        },
    }
}

/// A transport failure in words, without the URL (it may carry tokens in its query).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the connection broke"
    } else {
        "the request failed"
    };
    let mut cause = String::new();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    if cause.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {cause}")
    }
}

/// The wait after attempt `attempt`, with ±10 % jitter so retries of many deliveries spread.
fn backoff(attempt: i64) -> Duration {
    let i = usize::try_from(attempt.clamp(1, BACKOFF_SECS.len() as i64) - 1).unwrap_or(0);
    let base = BACKOFF_SECS[i] as f64;
    let jitter = 0.9 + 0.2 * rand::random::<f64>();
    Duration::seconds_f64(base * jitter)
}

/// How long a registration's circuit stays open after `failures` in a row: one minute at
/// [`CIRCUIT_AFTER`], doubling, at most an hour.
fn circuit_for(failures: i64) -> Duration {
    let exp = (failures - CIRCUIT_AFTER).clamp(0, 6);
    Duration::minutes(1 << exp).min(Duration::hours(1))
}

/// One deliverer round: claims up to `max` due deliveries, sends them concurrently, records
/// each outcome. Answers how many it sent.
pub async fn deliver(svc: &Services, max: i64) -> Result<u64> {
    let now = svc.clock.now();
    let mut tx = svc.db.begin().await?;
    let claimed = store::claim_due(&mut *tx, now, now + lease(&svc.config), max).await?;
    tx.commit().await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let mut c = svc.db.conn().await?;
    let mut hooks: HashMap<(TenantId, Uuid), Option<Webhook>> = HashMap::new();
    let mut work = Vec::with_capacity(claimed.len());
    for d in claimed {
        let hook = match hooks.entry((d.tenant_id, d.webhook_id)) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(store::get(&mut *c, d.tenant_id, d.webhook_id, false).await?)
            }
        };
        match hook {
            Some(w) => work.push((d, w.clone())),
            None => tracing::warn!(delivery_id = %d.id, "delivery of a deleted webhook skipped"),
        }
    }
    drop(c);
    let sent = futures_util::future::join_all(work.iter().map(|(d, w)| send(svc, d, w))).await;
    let n = work.len() as u64;
    // One transaction records the whole round (one write turn on SQLite, one commit on
    // PostgreSQL). It locks the round's registrations first, in id order, as `delete` does
    // before touching deliveries, so deliverers and deletions take locks in one order. Should
    // it fail, each delivery is recorded on its own, so one bad row costs one outcome, not
    // the round's.
    let mut done: Vec<_> = work.into_iter().zip(sent).collect();
    done.sort_by_key(|((d, _), _)| (d.tenant_id.0, d.webhook_id, d.id));
    let now = svc.clock.now();
    let tallies = match record_round(svc, now, &done).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(
                code = e.code.as_str(),
                cause = e.cause.as_deref().unwrap_or(""),
                "recording a delivery round failed; recording its deliveries one by one"
            );
            let mut t = Vec::with_capacity(done.len());
            for one in done.chunks(1) {
                match record_round(svc, now, one).await {
                    Ok(x) => t.extend(x),
                    Err(e) => tracing::warn!(delivery_id = %one[0].0.0.id,
                        code = e.code.as_str(), "a delivery's outcome could not be recorded; \
                        it is sent again after its lease"),
                }
            }
            t
        }
    };
    for (outcome, secs, waited) in tallies {
        metrics::counter!("webhook_deliveries_total", "outcome" => outcome).increment(1);
        metrics::histogram!("webhook_attempt_duration_seconds").record(secs);
        if let Some(w) = waited {
            metrics::histogram!("webhook_commit_to_delivery_seconds").record(w);
        }
    }
    Ok(n)
}

/// Records the outcomes of `done` (sorted by registration) in one transaction; answers what
/// to count.
async fn record_round(
    svc: &Services,
    now: OffsetDateTime,
    done: &[((Delivery, Webhook), Sent)],
) -> Result<Vec<(String, f64, Option<f64>)>> {
    let mut tx = svc.db.begin().await?;
    let mut hooks: Vec<(TenantId, Uuid)> = done
        .iter()
        .map(|((d, _), _)| (d.tenant_id, d.webhook_id))
        .collect();
    hooks.dedup();
    for (tenant, id) in hooks {
        store::lock(&mut *tx, tenant, id).await?;
    }
    let mut settled = Vec::with_capacity(done.len());
    let mut attempts = Vec::with_capacity(done.len());
    for ((d, _), s) in done {
        let d = settle(d.clone(), s, now);
        attempts.push(Attempt {
            tenant_id: d.tenant_id,
            delivery_id: d.id,
            attempt: d.attempt,
            started_at: now,
            status_code: d.status_code,
            duration_ms: s.duration_ms,
            error: d.error.clone(),
        });
        settled.push(d);
    }
    store::record_attempts(&mut *tx, &attempts).await?;
    // A delivery whose lease ran out was taken by another deliverer: its outcome counts, and
    // this one is left out below.
    let finished: HashSet<Uuid> = store::finish(&mut *tx, &settled, now)
        .await?
        .into_iter()
        .collect();
    let mut tallies = Vec::with_capacity(settled.len());
    // `done` is sorted by registration, so each registration's outcomes are one run.
    for run in settled.chunk_by(|a, b| (a.tenant_id, a.webhook_id) == (b.tenant_id, b.webhook_id)) {
        let mut outcomes = store::Outcomes::default();
        let mut gone = false;
        for d in run.iter().filter(|d| finished.contains(&d.id)) {
            let ok = d.state == "succeeded";
            // A 410 turns the registration off; it is not a failure to count.
            if d.status_code == Some(410) {
                gone = true;
            } else {
                outcomes.push(ok);
            }
            let secs = d.duration_ms.unwrap_or(0) as f64 / 1000.0;
            let waited = ok.then(|| (now - d.created_at).as_seconds_f64().max(0.0));
            tallies.push((d.state.clone(), secs, waited));
        }
        let (tenant, hook) = (run[0].tenant_id, run[0].webhook_id);
        if gone {
            store::disable(
                &mut *tx,
                tenant,
                hook,
                "the endpoint answered 410 Gone",
                now,
            )
            .await?;
        }
        store::record_outcome(&mut *tx, tenant, hook, outcomes, CIRCUIT_AFTER, |n| {
            now + circuit_for(n)
        })
        .await?;
    }
    tx.commit().await?;
    Ok(tallies)
}

/// What attempt `d.attempt` came to: its answer, and the delivery's next state (succeeded; dead
/// on a 410 or after the last attempt; else failed, due again after the backoff).
fn settle(mut d: Delivery, s: &Sent, now: OffsetDateTime) -> Delivery {
    let ok = s.status.is_some_and(|c| (200..300).contains(&c));
    let gone = s.status == Some(410);
    d.status_code = s.status.map(i64::from);
    d.duration_ms = Some(s.duration_ms);
    d.error = s.error.clone();
    (d.state, d.next_attempt_at) = if ok {
        ("succeeded".into(), None)
    } else if gone || d.attempt >= MAX_ATTEMPTS {
        ("dead".into(), None)
    } else {
        ("failed".into(), Some(now + backoff(d.attempt)))
    };
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(insecure: bool, private: bool) -> ServiceConfig {
        ServiceConfig {
            allow_insecure_webhooks: insecure,
            allow_private_webhooks: private,
            ..ServiceConfig::default()
        }
    }

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        let strict = cfg(false, false);
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(refusal(ip, &strict).is_some(), "{ip} must be refused");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(refusal(ip, &strict), None, "{ip}");
        }
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(refusal(lo, &cfg(true, false)), None);
        let private: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(refusal(private, &cfg(false, true)), None);
        let metadata: IpAddr = "169.254.169.254".parse().unwrap();
        assert!(refusal(metadata, &cfg(true, true)).is_some(), "never");
    }

    #[tokio::test]
    async fn urls_are_checked_before_any_registration() {
        let strict = cfg(false, false);
        for (url, why) in [
            ("ftp://example.com/hook", "https"),
            ("http://93.184.216.34/hook", "https"),
            ("https://user:pw@93.184.216.34/", "credentials"),
            ("https://169.254.169.254/latest", "link-local"),
            ("https://[::1]/hook", "loopback"),
            ("https://10.0.0.5/hook", "private"),
            ("not a url", "not a URL"),
        ] {
            let e = check_url(&strict, url).await.unwrap_err();
            assert_eq!(e.code, Code::ValidationFailed);
            assert!(e.message.contains(why), "{url}: {}", e.message);
        }
        assert!(
            check_url(&strict, "https://93.184.216.34/hook")
                .await
                .is_ok()
        );
        let dev = cfg(true, false);
        assert!(check_url(&dev, "http://127.0.0.1:9/hook").await.is_ok());
        let e = check_url(&dev, "http://93.184.216.34/hook")
            .await
            .unwrap_err();
        assert!(e.message.contains("https"), "{}", e.message);
    }

    #[test]
    fn both_signature_schemes_sign_with_every_live_secret() {
        let a = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let b = new_secret();
        let (cg, std) = signatures(
            &[a, &b],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            "{\"test\": 2432232314}",
        );
        // Standard Webhooks' published test vector for this secret, id, time and body.
        assert!(
            std.starts_with("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,"),
            "{std}"
        );
        assert_eq!(std.split(' ').count(), 2);
        let parts: Vec<&str> = cg.split(',').collect();
        assert_eq!(parts[0], "t=1614265330");
        assert_eq!(parts.len(), 3);
        let expect = mac(a, &[b"1614265330.{\"test\": 2432232314}"]);
        assert_eq!(
            parts[1],
            format!("v1={}", casegate_domain::audit::hex(&expect))
        );
    }

    #[test]
    fn retries_spread_over_about_two_days() {
        let total: i64 = BACKOFF_SECS.iter().sum();
        assert!((40 * 3600..=56 * 3600).contains(&total), "{total}");
        assert_eq!(BACKOFF_SECS.len() as i64, MAX_ATTEMPTS - 1);
        for a in 1..MAX_ATTEMPTS {
            let d = backoff(a).whole_seconds() as f64;
            let base = BACKOFF_SECS[(a - 1) as usize] as f64;
            assert!(d >= base * 0.9 - 1.0 && d <= base * 1.1 + 1.0, "{a}: {d}");
        }
        assert_eq!(circuit_for(CIRCUIT_AFTER), Duration::minutes(1));
        assert_eq!(circuit_for(CIRCUIT_AFTER + 2), Duration::minutes(4));
        assert_eq!(circuit_for(100), Duration::hours(1));
    }
}
