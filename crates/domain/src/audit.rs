//! The tamper-evident audit trail (DESIGN.md "Audit trail", `docs/audit-format.md`).
//!
//! One SHA-256 hash chain per tenant with a gap-free `seq`:
//! `hash = SHA-256(prev_hash_bytes || JCS(record))`, where `record` is the event exactly as the
//! API returns it minus its `hash` field and JCS is RFC 8785 canonical JSON (`serde_jcs`). The
//! genesis `prev_hash` is 32 zero bytes. Signed checkpoints (Ed25519 over the JCS form of
//! `{"tenant_id", "seq", "hash", "signed_at"}`) make truncation of the tail detectable.
//!
//! Everything here is pure: sealing a record, and a streaming verifier that names the first
//! broken `seq`.
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The `prev_hash` of the first event of every chain.
pub const GENESIS: [u8; 32] = [0; 32];

/// An audit event minus its `hash`: exactly what is hashed. Field names are the wire contract.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// The tenant whose chain this is (binds the event to it).
    pub tenant_id: String,
    /// Position in the tenant's chain, from 1, without gaps.
    pub seq: i64,
    /// Unique id of the event (UUID).
    pub event_id: String,
    /// RFC 3339 UTC with microseconds.
    pub occurred_at: String,
    /// Who acted: an email, `jwt:<sub>` for identity-provider users without one, or `system`.
    pub actor: String,
    /// The actor's user id, when a user acted.
    pub actor_id: Option<String>,
    /// The client address the request came from.
    pub actor_ip: Option<String>,
    /// The `X-Request-Id` of the request that caused the event.
    pub request_id: Option<String>,
    /// What happened, `<entity>.<verb>` (`user.created`, `api_key.revoked`, `auth.login_failed`).
    pub action: String,
    /// The kind of object acted on (`user`, `api_key`, `session`, `case`…).
    pub entity_type: String,
    /// The object's id.
    pub entity_id: Option<String>,
    /// Changed fields: `{"field": {"before": …, "after": …}}` (secrets never appear).
    pub changes: Value,
    /// Lowercase hex of the previous event's hash (genesis: 64 zeros).
    pub prev_hash: String,
}

/// An audit event as the API and the JSON export return it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEvent {
    /// The hashed part.
    #[serde(flatten)]
    pub record: AuditRecord,
    /// Lowercase hex SHA-256 over `prev_hash` bytes and the canonical record.
    pub hash: String,
}

/// The fields verification compares, borrowed from a stored record without building
/// `changes`: the same shape as [`AuditRecord`] (unknown fields refused). Strings holding JSON
/// escapes cannot be borrowed; such a record is read as an [`AuditRecord`] instead.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordView<'a> {
    tenant_id: &'a str,
    seq: i64,
    event_id: &'a str,
    occurred_at: &'a str,
    actor: &'a str,
    actor_id: Option<&'a str>,
    #[allow(dead_code)]
    actor_ip: Option<serde::de::IgnoredAny>,
    #[allow(dead_code)]
    request_id: Option<serde::de::IgnoredAny>,
    action: &'a str,
    entity_type: &'a str,
    entity_id: Option<&'a str>,
    #[allow(dead_code)]
    changes: serde::de::IgnoredAny,
    prev_hash: &'a str,
}

impl<'a> RecordView<'a> {
    /// Whether the record agrees with the stored columns and the chain position.
    fn agrees(&self, e: &StoredEvent<'_>, tenant_id: &str, seq: i64, prev_hex: &[u8; 64]) -> bool {
        self.seq == seq
            && self.tenant_id == tenant_id
            && self.prev_hash.as_bytes() == prev_hex
            && self.event_id == e.event_id
            && self.actor == e.actor
            && self.actor_id == e.actor_id
            && self.action == e.action
            && self.entity_type == e.entity_type
            && self.entity_id == e.entity_id
            && self.occurred_at == e.occurred_at
    }
}

/// Reads the compared fields of `bytes` and checks them; `None` if it is no audit record.
fn record_agrees(
    bytes: &[u8],
    e: &StoredEvent<'_>,
    tenant_id: &str,
    seq: i64,
    prev_hex: &[u8; 64],
) -> Option<bool> {
    if canonical_agrees(bytes, e, tenant_id, seq, prev_hex) {
        return Some(true);
    }
    parsed_agrees(bytes, e, tenant_id, seq, prev_hex)
}

/// [`record_agrees`] by the full serde parse: the reference the fast path must never contradict.
fn parsed_agrees(
    bytes: &[u8],
    e: &StoredEvent<'_>,
    tenant_id: &str,
    seq: i64,
    prev_hex: &[u8; 64],
) -> Option<bool> {
    if let Ok(v) = serde_json::from_slice::<RecordView<'_>>(bytes) {
        return Some(v.agrees(e, tenant_id, seq, prev_hex));
    }
    let r: AuditRecord = serde_json::from_slice(bytes).ok()?;
    let v = RecordView {
        tenant_id: &r.tenant_id,
        seq: r.seq,
        event_id: &r.event_id,
        occurred_at: &r.occurred_at,
        actor: &r.actor,
        actor_id: r.actor_id.as_deref(),
        actor_ip: None,
        request_id: None,
        action: &r.action,
        entity_type: &r.entity_type,
        entity_id: r.entity_id.as_deref(),
        changes: serde::de::IgnoredAny,
        prev_hash: &r.prev_hash,
    };
    Some(v.agrees(e, tenant_id, seq, prev_hex))
}

/// The fast path of the record/column check, for records as casegate seals them: RFC 8785
/// output, an object whose 13 members come in key order with no whitespace. It walks the
/// top-level members without building or unescaping anything and compares the raw bytes of
/// each checked value with the column it must equal; the other values (`changes`, `actor_ip`,
/// `request_id`) are only scanned as JSON. It answers `true` only when every member
/// is where it belongs and every compared value is byte-equal; anything else (an escape inside
/// a compared string, an unknown or missing member, an unexpected byte) answers `false`, and
/// the caller then decides with the full serde parse. So it can speed up a verdict of
/// "agrees" but never change one.
///
/// Written by hand because deserialising the record, however fast, matches every field name
/// and decodes every compared string, which costs about as much as the SHA-256 itself
/// (docs/benchmarks.md, "Audit trail"); here the members are found by position and compared as
/// bytes.
fn canonical_agrees(
    b: &[u8],
    e: &StoredEvent<'_>,
    tenant_id: &str,
    seq: i64,
    prev_hex: &[u8; 64],
) -> bool {
    /// The members of a sealed record, in RFC 8785 (key) order, with what each must equal.
    enum Want<'a> {
        Str(&'a [u8]),
        OptStr(Option<&'a str>),
        Int(i64),
        Any,
    }
    let members: [(&[u8], Want<'_>); 13] = [
        (b"action", Want::Str(e.action.as_bytes())),
        (b"actor", Want::Str(e.actor.as_bytes())),
        (b"actor_id", Want::OptStr(e.actor_id)),
        (b"actor_ip", Want::Any),
        (b"changes", Want::Any),
        (b"entity_id", Want::OptStr(e.entity_id)),
        (b"entity_type", Want::Str(e.entity_type.as_bytes())),
        (b"event_id", Want::Str(e.event_id.as_bytes())),
        (b"occurred_at", Want::Str(e.occurred_at.as_bytes())),
        (b"prev_hash", Want::Str(prev_hex)),
        (b"request_id", Want::Any),
        (b"seq", Want::Int(seq)),
        (b"tenant_id", Want::Str(tenant_id.as_bytes())),
    ];
    let mut i = 0;
    for (n, (key, want)) in members.iter().enumerate() {
        // `{"key":` for the first member, `,"key":` after.
        let open = if n == 0 { b'{' } else { b',' };
        if b.get(i) != Some(&open) || b.get(i + 1) != Some(&b'"') {
            return false;
        }
        i += 2;
        if b.get(i..i + key.len()) != Some(*key)
            || b.get(i + key.len()..i + key.len() + 2) != Some(b"\":")
        {
            return false;
        }
        i += key.len() + 2;
        // The value's length: a compared value is matched in place (its end follows from the
        // column's length), so only the values not compared are scanned.
        let rest = &b[i..];
        let len = match want {
            Want::Str(s) => quoted_len(rest, s),
            Want::OptStr(None) => rest.starts_with(b"null").then_some(4),
            Want::OptStr(Some(s)) => quoted_len(rest, s.as_bytes()),
            Want::Int(v) => {
                use std::io::Write;
                let mut digits = [0u8; 20];
                let mut w = &mut digits[..];
                let _ = write!(w, "{v}");
                let n = 20 - w.len();
                rest.starts_with(&digits[..n]).then_some(n)
            }
            // Not compared, but checked as JSON all the same (serde's scanner, nothing built),
            // so the fast path never passes a record the full parse would refuse.
            Want::Any => json_value_len(rest),
        };
        let Some(len) = len else {
            return false;
        };
        // What follows must open the next member (or close the record): checked above on the
        // next turn, and below after the last.
        i += len;
    }
    i + 1 == b.len() && b[i] == b'}'
}

/// The length of `rest`'s leading JSON string when it is exactly `"s"`, `s` holding no escape
/// or control character (which JSON must escape): then the closing quote right after `s` ends
/// it. Anything else answers `None` (an escaped string is never taken as equal here).
fn quoted_len(rest: &[u8], s: &[u8]) -> Option<usize> {
    let n = s.len();
    (rest.len() >= n + 2
        && rest[0] == b'"'
        && &rest[1..=n] == s
        && rest[n + 1] == b'"'
        && !s.iter().any(|&c| c == b'\\' || c < 0x20))
    .then_some(n + 2)
}

/// The length of the one JSON value `rest` starts with, checked by serde's scanner (nothing
/// built); `None` when it is not valid JSON.
fn json_value_len(rest: &[u8]) -> Option<usize> {
    let mut values =
        serde_json::Deserializer::from_slice(rest).into_iter::<serde::de::IgnoredAny>();
    match values.next() {
        Some(Ok(_)) => Some(values.byte_offset()),
        _ => None,
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of a SHA-256 digest, on the stack.
pub fn hex64(d: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (i, b) in d.iter().enumerate() {
        out[2 * i] = HEX_DIGITS[(b >> 4) as usize];
        out[2 * i + 1] = HEX_DIGITS[(b & 0xf) as usize];
    }
    out
}

/// Lowercase hex (on every API-key and session check, via `hash_secret`: digits are written as
/// bytes into a buffer of the final size and the text checked once, not each pushed as a
/// `char`).
pub fn hex(bytes: &[u8]) -> String {
    let mut s = vec![0; bytes.len() * 2];
    for (pair, b) in s.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX_DIGITS[(b >> 4) as usize];
        pair[1] = HEX_DIGITS[(b & 0xf) as usize];
    }
    String::from_utf8(s).expect("hex digits")
}

/// Parses 64 lowercase hex digits.
pub fn unhex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nib(b[2 * i])? << 4) | nib(b[2 * i + 1])?;
    }
    Some(out)
}

/// RFC 8785 canonical JSON of a value.
pub fn canonical<T: Serialize>(v: &T) -> Vec<u8> {
    // serde_jcs fails only for values JSON cannot hold (non-finite floats), which serde_json's
    // Value and our records never contain.
    serde_jcs::to_vec(v).unwrap_or_default()
}

/// `SHA-256(prev || canonical)`.
pub fn chain_hash(prev: &[u8; 32], canonical: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(canonical);
    h.finalize().into()
}

/// Seals a record whose `seq` and `prev_hash` are set: returns its canonical bytes and hash.
pub fn seal(record: &AuditRecord, prev: &[u8; 32]) -> (Vec<u8>, [u8; 32]) {
    let bytes = canonical(record);
    let hash = chain_hash(prev, &bytes);
    (bytes, hash)
}

/// A record's canonical form before its place in the chain is known: the JCS bytes with the
/// `prev_hash` and `seq` values cut out, so that the head's writer can join them in without
/// canonicalising again. Lets PostgreSQL seal the record in the same statement that locks the
/// chain head (`casegate_store::audit::append`), so the head is held for one statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsealed {
    /// Up to and including `"prev_hash":"`.
    pub head: String,
    /// From the quote closing `prev_hash` up to and including `"seq":`.
    pub middle: String,
    /// After the `seq` value, to the end.
    pub tail: String,
}

impl Unsealed {
    /// Cuts `record`'s canonical form around its `prev_hash` and `seq` (their values in
    /// `record` are ignored). `None` only if the canonical form lacked either key, which an
    /// `AuditRecord` cannot.
    pub fn of(record: &AuditRecord) -> Option<Self> {
        let blank = AuditRecord {
            seq: 0,
            prev_hash: String::new(),
            ..record.clone()
        };
        // JCS orders keys by code unit, and the record's keys after `prev_hash` are
        // `request_id`, `seq` and `tenant_id`, whose values (strings, an integer) cannot hold
        // an unescaped quote. So the last `"prev_hash":""` and the last `"seq":0` are the
        // record's own, whatever `changes` holds (a custom field may be called `seq`).
        let text = String::from_utf8(canonical(&blank)).unwrap_or_default();
        const PREV: &str = "\"prev_hash\":\"";
        const SEQ: &str = "\"seq\":";
        let p = text.rfind("\"prev_hash\":\"\"").map(|i| i + PREV.len());
        let q = text.rfind("\"seq\":0").map(|i| i + SEQ.len());
        match (p, q) {
            (Some(p), Some(q)) if p < q => Some(Self {
                head: text[..p].to_string(),
                middle: text[p..q].to_string(),
                tail: text[q + 1..].to_string(),
            }),
            _ => None,
        }
    }

    /// The canonical record at `seq` after the event hashed `prev_hex`.
    pub fn record(&self, seq: i64, prev_hex: &str) -> String {
        let mut s =
            String::with_capacity(self.head.len() + self.middle.len() + self.tail.len() + 84);
        s.push_str(&self.head);
        s.push_str(prev_hex);
        s.push_str(&self.middle);
        s.push_str(&seq.to_string());
        s.push_str(&self.tail);
        s
    }

    /// The `prev_hash` that [`Self::record`] joined into `record`; `None` if `record` is not
    /// one of this cut's records.
    pub fn prev_hash_in<'a>(&self, record: &'a str) -> Option<&'a str> {
        let at = self.head.len();
        record
            .get(at..at + 64)
            .filter(|_| record.starts_with(&self.head))
    }

    /// [`Self::record`] and its chained hash; `None` when `prev_hex` is not a hash.
    pub fn seal(&self, seq: i64, prev_hex: &str) -> Option<(String, [u8; 32])> {
        let prev = unhex32(prev_hex)?;
        let record = self.record(seq, prev_hex);
        let hash = chain_hash(&prev, record.as_bytes());
        Some((record, hash))
    }
}

/// The signed statement of a checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointBody {
    /// Tenant id.
    pub tenant_id: String,
    /// The chain position vouched for.
    pub seq: i64,
    /// The hash of the event at `seq` (lowercase hex).
    pub hash: String,
    /// When the checkpoint was signed (RFC 3339).
    pub signed_at: String,
}

/// A checkpoint with its base64 Ed25519 signature over `canonical(body)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// What is vouched for.
    #[serde(flatten)]
    pub body: CheckpointBody,
    /// Standard base64 of the 64-byte signature.
    pub signature: String,
}

/// Signs a checkpoint.
pub fn sign_checkpoint(key: &SigningKey, body: CheckpointBody) -> Checkpoint {
    let sig = key.sign(&canonical(&body));
    Checkpoint {
        body,
        signature: base64::engine::general_purpose::STANDARD.encode(sig.to_bytes()),
    }
}

/// Whether a checkpoint's signature is valid under `key`.
pub fn checkpoint_signature_ok(key: &VerifyingKey, c: &Checkpoint) -> bool {
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(&c.signature) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(&raw) else {
        return false;
    };
    key.verify(&canonical(&c.body), &sig).is_ok()
}

/// One stored event as verification reads it: the stored canonical record, the stored hash, and
/// the indexed columns that must agree with the record (so filters cannot be made to hide events).
#[derive(Clone, Debug)]
pub struct StoredEvent<'a> {
    /// The `seq` column.
    pub seq: i64,
    /// The canonical record bytes as stored.
    pub record: &'a [u8],
    /// The `hash` column.
    pub hash: &'a str,
    /// Indexed column `event_id`.
    pub event_id: &'a str,
    /// Indexed column `actor`.
    pub actor: &'a str,
    /// Indexed column `actor_id`.
    pub actor_id: Option<&'a str>,
    /// Indexed column `action`.
    pub action: &'a str,
    /// Indexed column `entity_type`.
    pub entity_type: &'a str,
    /// Indexed column `entity_id`.
    pub entity_id: Option<&'a str>,
    /// Indexed column `occurred_at`, in the wire format.
    pub occurred_at: &'a str,
}

impl<'a> StoredEvent<'a> {
    /// The stored event whose indexed columns are those of `r` (exports, tests, benchmarks).
    pub fn of(r: &'a AuditRecord, record: &'a [u8], hash: &'a str) -> Self {
        Self {
            seq: r.seq,
            record,
            hash,
            event_id: &r.event_id,
            actor: &r.actor,
            actor_id: r.actor_id.as_deref(),
            action: &r.action,
            entity_type: &r.entity_type,
            entity_id: r.entity_id.as_deref(),
            occurred_at: &r.occurred_at,
        }
    }
}

/// The result of verifying one tenant's chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Whether chain and checkpoints are intact.
    pub valid: bool,
    /// Events examined.
    pub events_checked: u64,
    /// Last intact `seq` read (0 for an empty chain).
    pub head_seq: i64,
    /// Hash of the last event read.
    pub head_hash: String,
    /// The first `seq` at which the chain or a checkpoint does not hold.
    pub first_broken_seq: Option<i64>,
    /// What broke there.
    pub reason: Option<String>,
}

/// Streaming verifier: feed events in `seq` order, then [`ChainVerifier::finish`].
pub struct ChainVerifier {
    tenant_id: String,
    next_seq: i64,
    prev: [u8; 32],
    /// `prev` as lowercase hex, kept so each event is compared without decoding hex.
    prev_hex: [u8; 64],
    checked: u64,
    /// seq → expected hash, from checkpoints whose signature holds.
    checkpoints: BTreeMap<i64, String>,
    broken: Option<(i64, String)>,
}

impl ChainVerifier {
    /// A verifier for `tenant_id` that also checks `checkpoints` against `key`.
    pub fn new(tenant_id: &str, checkpoints: &[Checkpoint], key: Option<&VerifyingKey>) -> Self {
        let mut v = Self {
            tenant_id: tenant_id.to_string(),
            next_seq: 1,
            prev: GENESIS,
            prev_hex: [b'0'; 64],
            checked: 0,
            checkpoints: BTreeMap::new(),
            broken: None,
        };
        for c in checkpoints {
            let sig_ok = key.is_some_and(|k| checkpoint_signature_ok(k, c));
            if !sig_ok || c.body.tenant_id != tenant_id {
                v.fail(c.body.seq, "checkpoint signature does not verify".into());
            } else {
                v.checkpoints.insert(c.body.seq, c.body.hash.clone());
            }
        }
        v
    }

    fn fail(&mut self, seq: i64, reason: String) {
        match &self.broken {
            Some((s, _)) if *s <= seq => {}
            _ => self.broken = Some((seq, reason)),
        }
    }

    /// Whether a break has been found at or before the events read so far.
    pub fn is_broken(&self) -> bool {
        self.broken
            .as_ref()
            .is_some_and(|(s, _)| *s < self.next_seq)
    }

    /// Checks the next event. Returns `false` once the chain is broken (the rest need not be read).
    pub fn push(&mut self, e: &StoredEvent<'_>) -> bool {
        if self.is_broken() {
            return false;
        }
        let expected = self.next_seq;
        if e.seq != expected {
            self.fail(
                expected,
                format!("event {expected} is missing (found {})", e.seq),
            );
            return false;
        }
        let computed = chain_hash(&self.prev, e.record);
        let computed_hex = hex64(&computed);
        if e.hash.as_bytes() != computed_hex {
            self.fail(
                expected,
                "hash does not match the record and the previous hash".into(),
            );
            return false;
        }
        match record_agrees(e.record, e, &self.tenant_id, expected, &self.prev_hex) {
            Some(true) => {}
            Some(false) => {
                self.fail(
                    expected,
                    "indexed columns or embedded seq/prev_hash disagree with the record".into(),
                );
                return false;
            }
            None => {
                self.fail(expected, "record is not a valid audit record".into());
                return false;
            }
        }
        if let Some(h) = self.checkpoints.get(&expected)
            && *h != e.hash
        {
            self.fail(expected, "event differs from the signed checkpoint".into());
            return false;
        }
        self.prev = computed;
        self.prev_hex = computed_hex;
        self.next_seq += 1;
        self.checked += 1;
        true
    }

    /// The verdict. A checkpoint beyond the last event read means the tail was truncated.
    pub fn finish(mut self) -> Verification {
        let head_seq = self.next_seq - 1;
        if let Some((&seq, _)) = self.checkpoints.range(self.next_seq..).next()
            && !self.is_broken()
        {
            let _ = seq;
            let missing = self.next_seq;
            self.fail(
                missing,
                format!("events from {missing} on are missing behind a signed checkpoint"),
            );
        }
        let (first_broken_seq, reason) = match self.broken {
            Some((s, r)) => (Some(s), Some(r)),
            None => (None, None),
        };
        Verification {
            valid: first_broken_seq.is_none(),
            events_checked: self.checked,
            head_seq,
            head_hash: String::from_utf8_lossy(&self.prev_hex).into_owned(),
            first_broken_seq,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn record(
        tenant: &str,
        seq: i64,
        prev: &[u8; 32],
        action: &str,
        changes: Value,
    ) -> AuditRecord {
        AuditRecord {
            tenant_id: tenant.into(),
            seq,
            event_id: format!("00000000-0000-4000-8000-{seq:012}"),
            occurred_at: format!("2026-03-01T09:{:02}:00.000000Z", seq % 60),
            actor: "ana@bank.example".into(),
            actor_id: Some("u1".into()),
            actor_ip: None,
            request_id: Some(format!("req_{seq}")),
            action: action.into(),
            entity_type: "user".into(),
            entity_id: Some(format!("e{seq}")),
            changes,
            prev_hash: hex(prev),
        }
    }

    /// (record bytes, hash hex, record) for a chain of `changes`.
    fn chain(tenant: &str, changes: &[Value]) -> Vec<(Vec<u8>, String, AuditRecord)> {
        let mut prev = GENESIS;
        let mut out = Vec::new();
        for (i, c) in changes.iter().enumerate() {
            let r = record(tenant, i as i64 + 1, &prev, "user.updated", c.clone());
            let (bytes, h) = seal(&r, &prev);
            out.push((bytes, hex(&h), r));
            prev = h;
        }
        out
    }

    fn verify(
        tenant: &str,
        events: &[(Vec<u8>, String, AuditRecord)],
        cps: &[Checkpoint],
        key: Option<&VerifyingKey>,
    ) -> Verification {
        let mut v = ChainVerifier::new(tenant, cps, key);
        for (bytes, h, r) in events {
            let e = StoredEvent::of(r, bytes, h);
            if !v.push(&e) {
                break;
            }
        }
        v.finish()
    }

    #[test]
    fn canonical_form_is_rfc8785() {
        // RFC 8785 §3.2.3: keys sorted by UTF-16 code units, no whitespace, ES6 numbers.
        let v = json!({"b": 1.0, "a": [true, null, "é"], "\u{20ac}": 2e-7, "1": 1e21});
        assert_eq!(
            String::from_utf8(canonical(&v)).unwrap(),
            r#"{"1":1e+21,"a":[true,null,"é"],"b":1,"€":2e-7}"#
        );
    }

    #[test]
    fn genesis_and_known_answer() {
        let r = record("t", 1, &GENESIS, "user.created", json!({}));
        assert_eq!(r.prev_hash, "0".repeat(64));
        let (bytes, h) = seal(&r, &GENESIS);
        let mut manual = Sha256::new();
        manual.update([0u8; 32]);
        manual.update(&bytes);
        assert_eq!(h, <[u8; 32]>::from(manual.finalize()));
        assert!(
            std::str::from_utf8(&bytes)
                .unwrap()
                .starts_with(r#"{"action":"user.created","actor":"ana@bank.example""#)
        );
        assert_eq!(unhex32(&hex(&h)), Some(h));
        assert_eq!(unhex32("zz"), None);
    }

    #[test]
    fn checkpoints_detect_truncation_and_forgery() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let vk = key.verifying_key();
        let events = chain("t", &[json!(1), json!(2), json!(3), json!(4)]);
        let cp = |seq: usize| {
            sign_checkpoint(
                &key,
                CheckpointBody {
                    tenant_id: "t".into(),
                    seq: seq as i64,
                    hash: events[seq - 1].1.clone(),
                    signed_at: "2026-03-01T10:00:00.000000Z".into(),
                },
            )
        };
        let ok = verify("t", &events, &[cp(2), cp(4)], Some(&vk));
        assert!(ok.valid, "{ok:?}");
        assert_eq!((ok.events_checked, ok.head_seq), (4, 4));
        // Drop the last event: the chain alone looks fine, the checkpoint at 4 does not.
        let cut = verify("t", &events[..3], &[cp(2), cp(4)], Some(&vk));
        assert_eq!(cut.first_broken_seq, Some(4));
        assert!(verify("t", &events[..3], &[cp(2)], Some(&vk)).valid);
        // A checkpoint signed by someone else, or for another tenant, is itself a break.
        let other = SigningKey::from_bytes(&[8; 32]);
        let forged = sign_checkpoint(&other, cp(2).body);
        assert_eq!(
            verify("t", &events, &[forged], Some(&vk)).first_broken_seq,
            Some(2)
        );
        assert!(
            !verify("u", &events, &[], None).valid,
            "records name their tenant"
        );
        let mut wrong = cp(3);
        wrong.body.hash = events[1].1.clone();
        let wrong = sign_checkpoint(&key, wrong.body);
        assert_eq!(
            verify("t", &events, &[wrong], Some(&vk)).first_broken_seq,
            Some(3)
        );
    }

    fn arb_changes() -> impl Strategy<Value = Vec<Value>> {
        prop::collection::vec(
            prop_oneof![
                any::<i64>().prop_map(|n| json!({"n": {"before": null, "after": n}})),
                "[a-zA-Z0-9 éü€]{0,20}".prop_map(|s| json!({"name": {"before": "x", "after": s}})),
                prop::collection::vec(any::<bool>(), 0..4).prop_map(|v| json!({"flags": v})),
            ],
            1..40,
        )
    }

    proptest! {
        /// A record cut before its place in the chain is known, then joined with any `seq` and
        /// previous hash, is byte for byte the record sealed whole, with the same hash, and
        /// verifies: whatever its fields hold, including `changes` keys named `prev_hash` or
        /// `seq` and quotes, escapes or non-ASCII text in any string.
        #[test]
        fn an_unsealed_record_joined_at_the_head_is_the_sealed_record(
            changes in arb_changes(),
            trap in "[a-z\\\\\"\u{1}é ]{0,10}",
            actor in "[a-z@.\\\\\"\u{7f}€]{0,16}",
            request in proptest::option::of("[a-zA-Z0-9_-]{1,20}"),
            entity in proptest::option::of("[a-z0-9\\\\\"]{0,8}"),
            seq in 1i64..(1i64 << 53),
            prev in any::<[u8; 32]>(),
        ) {
            let mut c = changes[0].clone();
            if let Value::Object(m) = &mut c {
                // The very patterns the cut looks for, inside `changes`.
                m.insert("prev_hash".into(), json!(""));
                m.insert("seq".into(), json!(0));
                m.insert("title".into(), json!({"before": "\"prev_hash\":\"\"", "after": trap}));
            }
            let mut r = record("t", seq, &prev, "case.updated", c);
            r.actor = actor;
            r.request_id = request;
            r.entity_id = entity;
            let (bytes, hash) = seal(&r, &prev);
            let u = Unsealed::of(&r).expect("an audit record cuts");
            let (joined, joined_hash) = u.seal(seq, &hex(&prev)).expect("a hex hash");
            prop_assert_eq!(joined.as_bytes(), &bytes[..]);
            let prev_hex = hex(&prev);
            prop_assert_eq!(u.prev_hash_in(&joined), Some(prev_hex.as_str()));
            prop_assert_eq!(joined_hash, hash);
            // The cut does not depend on the seq or previous hash the record was built with.
            let mut other = r.clone();
            other.seq = 1;
            other.prev_hash = hex(&GENESIS);
            prop_assert_eq!(Unsealed::of(&other), Some(u.clone()));
            // Joined as the first event of a chain, the record verifies.
            let (first, first_hash) = u.seal(1, &hex(&GENESIS)).expect("a hex hash");
            let at_one = AuditRecord { seq: 1, prev_hash: hex(&GENESIS), ..r };
            let mut v = ChainVerifier::new("t", &[], None);
            prop_assert!(v.push(&StoredEvent::of(&at_one, first.as_bytes(), &hex(&first_hash))));
            prop_assert!(v.finish().valid);
        }

        /// The hand-written fast path says "agrees" only when the full parse does, for any
        /// field contents (quotes, backslashes, control characters, non-ASCII) and any columns,
        /// and it does say so for every sealed record whose compared fields need no escape.
        #[test]
        fn the_fast_check_never_disagrees_with_the_parser(
            actor in "[a-z\\\\\"\u{1}é€ ]{0,12}",
            column_actor in "[a-z\\\\\"\u{1}é€ ]{0,12}",
            entity in proptest::option::of("[a-z0-9\\\\\"\u{7f}]{0,8}"),
            column_entity in proptest::option::of("[a-z0-9\\\\\"\u{7f}]{0,8}"),
            changes in arb_changes(),
            seq in 1i64..1_000_000,
            same in any::<bool>(),
        ) {
            let prev = [7u8; 32];
            let mut r = record("t", seq, &prev, "case.updated", changes[0].clone());
            r.actor = actor.clone();
            r.entity_id = entity.clone();
            r.actor_ip = Some("203.0.113.7".into());
            let (bytes, _) = seal(&r, &prev);
            let (col_actor, col_entity) = if same {
                (actor.clone(), entity.clone())
            } else {
                (column_actor, column_entity)
            };
            let e = StoredEvent {
                seq,
                record: &bytes,
                hash: "",
                event_id: &r.event_id,
                actor: &col_actor,
                actor_id: r.actor_id.as_deref(),
                action: &r.action,
                entity_type: &r.entity_type,
                entity_id: col_entity.as_deref(),
                occurred_at: &r.occurred_at,
            };
            let prev_hex = hex64(&prev);
            let fast = canonical_agrees(&bytes, &e, "t", seq, &prev_hex);
            let parsed = parsed_agrees(&bytes, &e, "t", seq, &prev_hex);
            if fast {
                prop_assert_eq!(parsed, Some(true));
            }
            let plain = |s: &str| !s.chars().any(|c| c == '"' || c == '\\' || c < ' ');
            if same && plain(&actor) && entity.as_deref().is_none_or(plain) {
                prop_assert!(fast, "{}", String::from_utf8_lossy(&bytes));
            }
            prop_assert_eq!(record_agrees(&bytes, &e, "t", seq, &prev_hex), parsed);
            // A wrong seq, tenant or previous hash is never taken for agreement.
            prop_assert!(!canonical_agrees(&bytes, &e, "t", seq + 1, &prev_hex));
            prop_assert!(!canonical_agrees(&bytes, &e, "u", seq, &prev_hex));
            prop_assert!(!canonical_agrees(&bytes, &e, "t", seq, &hex64(&[8u8; 32])));
        }

        /// Damaged records (any byte changed, or cut short) are never confirmed by the fast path
        /// unless the full parse confirms them too.
        #[test]
        fn the_fast_check_confirms_no_damaged_record(
            changes in arb_changes(),
            pick in any::<prop::sample::Index>(),
            to in any::<u8>(),
            cut in any::<bool>(),
        ) {
            let prev = [3u8; 32];
            let r = record("t", 9, &prev, "case.updated", changes[0].clone());
            let (mut bytes, _) = seal(&r, &prev);
            let k = pick.index(bytes.len());
            if cut {
                bytes.truncate(k);
            } else {
                bytes[k] = to;
            }
            let e = StoredEvent::of(&r, &bytes, "");
            let prev_hex = hex64(&prev);
            if canonical_agrees(&bytes, &e, "t", 9, &prev_hex) {
                prop_assert_eq!(parsed_agrees(&bytes, &e, "t", 9, &prev_hex), Some(true));
            }
        }

        #[test]
        fn intact_chains_verify(changes in arb_changes()) {
            let events = chain("t", &changes);
            let v = verify("t", &events, &[], None);
            prop_assert!(v.valid);
            prop_assert_eq!(v.events_checked as usize, changes.len());
            prop_assert_eq!(v.head_hash.clone(), events.last().unwrap().1.clone());
        }

        #[test]
        fn any_edit_is_caught_at_its_seq(changes in arb_changes(), pick in any::<prop::sample::Index>(), byte in any::<prop::sample::Index>(), flip in 1u8..=255) {
            let mut events = chain("t", &changes);
            let k = pick.index(events.len());
            let b = byte.index(events[k].0.len());
            events[k].0[b] ^= flip;
            let v = verify("t", &events, &[], None);
            prop_assert_eq!(v.first_broken_seq, Some(k as i64 + 1));
        }

        #[test]
        fn any_deletion_or_swap_is_caught(changes in arb_changes(), pick in any::<prop::sample::Index>()) {
            prop_assume!(changes.len() >= 2);
            let events = chain("t", &changes);
            let k = pick.index(events.len() - 1);
            let mut deleted = events.clone();
            deleted.remove(k);
            prop_assert_eq!(verify("t", &deleted, &[], None).first_broken_seq, Some(k as i64 + 1));
            let mut swapped = events.clone();
            swapped.swap(k, k + 1);
            prop_assert_eq!(verify("t", &swapped, &[], None).first_broken_seq, Some(k as i64 + 1));
        }

        #[test]
        fn rewriting_a_record_and_its_hash_is_caught_by_the_next_link(changes in arb_changes(), pick in any::<prop::sample::Index>()) {
            prop_assume!(changes.len() >= 2);
            let mut events = chain("t", &changes);
            let k = pick.index(events.len() - 1);
            // The attacker edits event k and recomputes its own hash, but not the successors'.
            let prev = if k == 0 { GENESIS } else { unhex32(&events[k - 1].1).unwrap() };
            let mut r = events[k].2.clone();
            r.changes = json!({"forged": true});
            let (bytes, h) = seal(&r, &prev);
            events[k] = (bytes, hex(&h), r);
            prop_assert_eq!(verify("t", &events, &[], None).first_broken_seq, Some(k as i64 + 2));
        }
    }
}
