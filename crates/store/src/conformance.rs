//! The store conformance suite: the same behaviour checked against every backend, each test on
//! a fresh database. A backend crate runs it with
//! `casegate_store::conformance_suite!(fresh_db);` where `fresh_db()` is an async fn returning a
//! [`TestDb`].
use crate::api_keys::{self, ApiKey};
use crate::audit;
use crate::sessions::{self, Session};
use crate::tenants::{self, Tenant};
use crate::users::{self, User};
use crate::{Database, StoreError};
use casegate_domain::ids::*;
use serde_json::json;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

type Cleanup = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A fresh, migrated database for one test, and how to remove it afterwards.
pub struct TestDb {
    /// The database under test.
    pub db: Arc<dyn Database>,
    /// Drops the database (PostgreSQL) or deletes its file (SQLite).
    cleanup: Option<Cleanup>,
}

impl TestDb {
    /// Wraps a database and its cleanup.
    pub fn new(db: Arc<dyn Database>, cleanup: impl Future<Output = ()> + Send + 'static) -> Self {
        Self {
            db,
            cleanup: Some(Box::pin(cleanup)),
        }
    }
    /// Closes the pool and removes the database.
    pub async fn finish(mut self) {
        self.db.close().await;
        if let Some(c) = self.cleanup.take() {
            c.await;
        }
    }
}

/// Runs every conformance test against databases made by `$fresh` (an async fn returning
/// [`TestDb`]).
#[macro_export]
macro_rules! conformance_suite {
    ($fresh:path) => {
        $crate::conformance_suite!(@each $fresh;
            migrations_are_idempotent_and_ready,
            tenant_slugs_are_unique,
            users_are_confined_to_their_tenant,
            user_lists_page_newest_first,
            api_keys_authenticate_until_revoked,
            api_keys_cannot_point_at_another_tenants_user,
            key_use_is_recorded_at_most_once_a_minute,
            sessions_expire_and_end,
            uncommitted_transactions_leave_nothing,
            values_round_trip_exactly,
            concurrent_writers_all_commit,
            audit_rows_cannot_be_updated_or_deleted,
            concurrent_audit_appends_form_one_chain,
            case_lists_count_up_to_the_cap_and_page_stably,
            bulk_inserts_store_every_case_under_its_own_words,
            search_follows_edits_of_title_and_notes_only,
            updates_write_what_changed_and_keep_the_rest,
            a_lock_that_waited_reads_the_change_in_full,
            a_move_reads_its_case_and_what_holds_it,
            case_numbers_are_gap_free_under_concurrency,
            case_record_rows_are_append_only,
            one_pending_request_per_case_and_claims_never_overlap,
            tasks_block_their_status_and_generated_ones_are_unique,
            outbox_claims_are_leased_and_each_post_action_runs_once,
            notification_emails_are_claimed_once_under_a_lease,
            sars_join_their_work_item_and_warnings_are_claimed_once,
            webhook_claims_take_the_oldest_due_in_case_order,
            fan_out_settles_plain_events_and_reads_hooks_of_many_tenants,
            fan_out_reads_the_bodies_it_is_asked_for,
            settled_events_are_purged_after_their_retention,
            deferred_writes_go_out_before_the_next_statement
        );
    };
    (@each $fresh:path; $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let t = $fresh().await;
            $crate::conformance::$name(t.db.clone()).await;
            t.finish().await;
        }
    )*};
}

const T0: OffsetDateTime = datetime!(2026-03-01 09:30:00.123456 UTC);

/// A tenant fixture.
pub fn tenant(slug: &str) -> Tenant {
    Tenant {
        id: TenantId(Uuid::new_v4()),
        slug: slug.into(),
        name: format!("{slug} Ltd"),
        settings: json!({"modules": ["cases"]}),
        created_at: T0,
    }
}

/// A user fixture.
pub fn user(t: TenantId, email: &str, at: OffsetDateTime) -> User {
    User {
        tenant_id: t,
        id: UserId(Uuid::new_v4()),
        email: email.into(),
        name: "Ana Analyst".into(),
        roles: vec!["analyst".into(), "auditor".into()],
        password_hash: Some("$argon2id$v=19$fake".into()),
        active: true,
        created_at: at,
        updated_at: at,
    }
}

fn key(t: TenantId, u: UserId, hash: &str) -> ApiKey {
    ApiKey {
        tenant_id: t,
        id: ApiKeyId(Uuid::new_v4()),
        user_id: u,
        name: "ci".into(),
        prefix: "cg_test_abcdef".into(),
        key_hash: hash.into(),
        created_by: None,
        created_at: T0,
        last_used_at: None,
        revoked_at: None,
        user_email: None,
        created_by_email: None,
    }
}

async fn setup(db: &dyn Database, slug: &str) -> (Tenant, User) {
    let t = tenant(slug);
    let u = user(t.id, "ana@bank.example", T0);
    let mut tx = db.begin().await.unwrap();
    tenants::insert(&mut *tx, &t).await.unwrap();
    users::insert(&mut *tx, &u).await.unwrap();
    tx.commit().await.unwrap();
    (t, u)
}

/// Running the migrations again changes nothing, and the database reports ready.
pub async fn migrations_are_idempotent_and_ready(db: Arc<dyn Database>) {
    db.migrate().await.unwrap();
    db.migrate().await.unwrap();
    assert!(db.ready().await.unwrap());
}

/// A second tenant with a taken slug is refused; tenants resolve by id and by slug.
pub async fn tenant_slugs_are_unique(db: Arc<dyn Database>) {
    let (t, _) = setup(&*db, "acme").await;
    let mut c = db.conn().await.unwrap();
    let dup = tenants::insert(&mut *c, &tenant("acme")).await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
    assert_eq!(tenants::resolve(&mut *c, "acme").await.unwrap(), t);
    assert_eq!(
        tenants::resolve(&mut *c, &t.id.to_string()).await.unwrap(),
        t
    );
    assert!(matches!(
        tenants::resolve(&mut *c, "nope").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(tenants::list(&mut *c).await.unwrap().len(), 1);
}

/// Users of one tenant are invisible and untouchable from another; emails are unique per tenant.
pub async fn users_are_confined_to_their_tenant(db: Arc<dyn Database>) {
    let (a, ana) = setup(&*db, "bank-a").await;
    let (b, _) = setup(&*db, "bank-b").await; // the same email in another tenant is fine
    let mut c = db.conn().await.unwrap();
    assert_eq!(
        users::get(&mut *c, a.id, ana.id).await.unwrap(),
        Some(ana.clone())
    );
    assert_eq!(users::get(&mut *c, b.id, ana.id).await.unwrap(), None);
    assert_eq!(
        users::by_email(&mut *c, a.id, "ana@bank.example")
            .await
            .unwrap()
            .map(|u| u.id),
        Some(ana.id)
    );
    let dup = users::insert(&mut *c, &user(a.id, "ana@bank.example", T0)).await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
    let foreign = users::set_roles(&mut *c, b.id, ana.id, &["admin".into()], T0).await;
    assert!(matches!(foreign, Err(StoreError::NotFound)));
    users::set_roles(
        &mut *c,
        a.id,
        ana.id,
        &["mlro".into()],
        T0 + Duration::hours(1),
    )
    .await
    .unwrap();
    let after = users::get(&mut *c, a.id, ana.id).await.unwrap().unwrap();
    assert_eq!(after.roles, vec!["mlro".to_string()]);
    assert_eq!(after.updated_at, T0 + Duration::hours(1));
    assert_eq!(
        users::login_candidates(&mut *c, "ana@bank.example")
            .await
            .unwrap()
            .len(),
        2
    );
}

/// Lists are newest first with a total, and a page past the end is empty.
pub async fn user_lists_page_newest_first(db: Arc<dyn Database>) {
    let (t, _) = setup(&*db, "bank").await;
    let (other, _) = setup(&*db, "noise").await;
    let mut c = db.conn().await.unwrap();
    for i in 0..5 {
        users::insert(
            &mut *c,
            &user(
                t.id,
                &format!("u{i}@bank.example"),
                T0 + Duration::minutes(i + 1),
            ),
        )
        .await
        .unwrap();
    }
    users::insert(
        &mut *c,
        &user(other.id, "x@noise.example", T0 + Duration::days(1)),
    )
    .await
    .unwrap();
    let (page, total) = users::list(&mut *c, t.id, 2, 0).await.unwrap();
    assert_eq!(total, 6);
    assert_eq!(
        page.iter().map(|u| u.email.as_str()).collect::<Vec<_>>(),
        ["u4@bank.example", "u3@bank.example"]
    );
    let (page, _) = users::list(&mut *c, t.id, 2, 4).await.unwrap();
    assert_eq!(
        page.iter().map(|u| u.email.as_str()).collect::<Vec<_>>(),
        ["u0@bank.example", "ana@bank.example"]
    );
    let (page, total) = users::list(&mut *c, t.id, 10, 50).await.unwrap();
    assert!(page.is_empty());
    assert_eq!(total, 6);
}

/// A key is found by its hash until revoked; revocation is confined to the owning tenant.
pub async fn api_keys_authenticate_until_revoked(db: Arc<dyn Database>) {
    let (t, u) = setup(&*db, "bank").await;
    let (other, _) = setup(&*db, "other").await;
    let mut c = db.conn().await.unwrap();
    let k = key(t.id, u.id, "h1");
    api_keys::insert(&mut *c, &k).await.unwrap();
    let dup = api_keys::insert(&mut *c, &key(t.id, u.id, "h1")).await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
    let found = api_keys::find_active_by_hash(&mut *c, "h1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        found.user_email.as_deref(),
        Some("ana@bank.example"),
        "joined from users"
    );
    assert_eq!(
        ApiKey {
            user_email: None,
            ..found
        },
        k
    );
    assert_eq!(
        api_keys::find_active_by_hash(&mut *c, "h2").await.unwrap(),
        None
    );
    let foreign = api_keys::revoke(&mut *c, other.id, k.id, T0).await;
    assert!(matches!(foreign, Err(StoreError::NotFound)));
    assert!(
        api_keys::find_active_by_hash(&mut *c, "h1")
            .await
            .unwrap()
            .is_some()
    );
    let (revoked, newly) = api_keys::revoke(&mut *c, t.id, k.id, T0 + Duration::hours(1))
        .await
        .unwrap();
    assert!(newly);
    assert_eq!(revoked.revoked_at, Some(T0 + Duration::hours(1)));
    let (again, newly) = api_keys::revoke(&mut *c, t.id, k.id, T0 + Duration::hours(2))
        .await
        .unwrap();
    assert!(!newly, "a second revocation changes nothing");
    assert_eq!(
        again.revoked_at,
        Some(T0 + Duration::hours(1)),
        "first revocation time is kept"
    );
    assert_eq!(
        api_keys::find_active_by_hash(&mut *c, "h1").await.unwrap(),
        None
    );
    let (list, total) = api_keys::list(&mut *c, t.id, 20, 0).await.unwrap();
    assert_eq!((list.len(), total), (1, 1));
    assert_eq!(api_keys::list(&mut *c, other.id, 20, 0).await.unwrap().1, 0);
}

/// The composite foreign key (tenant_id, user_id) refuses a key for another tenant's user.
pub async fn api_keys_cannot_point_at_another_tenants_user(db: Arc<dyn Database>) {
    let (_, ana) = setup(&*db, "bank").await;
    let (other, _) = setup(&*db, "other").await;
    let mut c = db.conn().await.unwrap();
    let r = api_keys::insert(&mut *c, &key(other.id, ana.id, "hx")).await;
    assert!(matches!(r, Err(StoreError::Conflict { .. })), "{r:?}");
}

/// `last_used_at` is written at most once a minute, so authentication does not write per request.
pub async fn key_use_is_recorded_at_most_once_a_minute(db: Arc<dyn Database>) {
    let (t, u) = setup(&*db, "bank").await;
    let mut c = db.conn().await.unwrap();
    let k = key(t.id, u.id, "h1");
    api_keys::insert(&mut *c, &k).await.unwrap();
    api_keys::touch(&mut *c, t.id, k.id, T0).await.unwrap();
    api_keys::touch(&mut *c, t.id, k.id, T0 + Duration::seconds(30))
        .await
        .unwrap();
    let got = api_keys::get(&mut *c, t.id, k.id).await.unwrap().unwrap();
    assert_eq!(got.last_used_at, Some(T0));
    api_keys::touch(&mut *c, t.id, k.id, T0 + Duration::seconds(61))
        .await
        .unwrap();
    let got = api_keys::get(&mut *c, t.id, k.id).await.unwrap().unwrap();
    assert_eq!(got.last_used_at, Some(T0 + Duration::seconds(61)));
}

/// A session is valid strictly before `expires_at`, ends on delete, and expired ones are purged.
pub async fn sessions_expire_and_end(db: Arc<dyn Database>) {
    let (t, u) = setup(&*db, "bank").await;
    let mut c = db.conn().await.unwrap();
    let s = Session {
        tenant_id: t.id,
        id: SessionId(Uuid::new_v4()),
        user_id: u.id,
        token_hash: "tok".into(),
        csrf_hash: "csrf".into(),
        created_at: T0,
        expires_at: T0 + Duration::hours(8),
    };
    sessions::insert(&mut *c, &s).await.unwrap();
    let later = T0 + Duration::hours(8) - Duration::microseconds(1);
    assert_eq!(
        sessions::find_active_by_hash(&mut *c, "tok", later)
            .await
            .unwrap(),
        Some(s.clone())
    );
    assert_eq!(
        sessions::find_active_by_hash(&mut *c, "tok", s.expires_at)
            .await
            .unwrap(),
        None
    );
    assert_eq!(sessions::purge_expired(&mut *c, later).await.unwrap(), 0);
    assert_eq!(
        sessions::purge_expired(&mut *c, s.expires_at)
            .await
            .unwrap(),
        1
    );
    sessions::insert(
        &mut *c,
        &Session {
            id: SessionId(Uuid::new_v4()),
            ..s.clone()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        sessions::delete_for_user(&mut *c, t.id, u.id)
            .await
            .unwrap(),
        1
    );
    assert!(!sessions::delete(&mut *c, t.id, s.id).await.unwrap());
}

/// A transaction dropped without commit leaves no trace; a committed one is visible.
pub async fn uncommitted_transactions_leave_nothing(db: Arc<dyn Database>) {
    let t = tenant("ghost");
    {
        let mut tx = db.begin().await.unwrap();
        tenants::insert(&mut *tx, &t).await.unwrap();
        users::insert(&mut *tx, &user(t.id, "a@b.example", T0))
            .await
            .unwrap();
        // dropped here: rolled back
    }
    let mut c = db.conn().await.unwrap();
    assert_eq!(tenants::get(&mut *c, t.id).await.unwrap(), None);
    let mut tx = db.begin().await.unwrap();
    tenants::insert(&mut *tx, &t).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(tenants::get(&mut *c, t.id).await.unwrap(), Some(t));
}

/// Microsecond times, Unicode text and nested JSON come back exactly as written.
pub async fn values_round_trip_exactly(db: Arc<dyn Database>) {
    let mut t = tenant("round-trip");
    t.name = "Société Générale — Zürich 🏦".into();
    t.settings = json!({"a": [1, 2.5, null, true], "b": {"c": "ü"}, "big": 9007199254740993_i64});
    t.created_at = datetime!(1999-12-31 23:59:59.999999 UTC);
    let mut c = db.conn().await.unwrap();
    tenants::insert(&mut *c, &t).await.unwrap();
    assert_eq!(tenants::get(&mut *c, t.id).await.unwrap(), Some(t));
}

/// Many concurrent write transactions all commit (SQLite queues writers with BEGIN IMMEDIATE
/// and a busy timeout rather than failing).
pub async fn concurrent_writers_all_commit(db: Arc<dyn Database>) {
    let (t, _) = setup(&*db, "busy").await;
    let mut handles = Vec::new();
    for i in 0..16 {
        let tenant = t.id;
        let db = db.clone();
        handles.push(tokio::spawn(async move {
            let mut tx = db.begin().await?;
            users::insert(&mut *tx, &user(tenant, &format!("w{i}@bank.example"), T0)).await?;
            users::list(&mut *tx, tenant, 1, 0).await?;
            tx.commit().await
        }));
    }
    for h in handles {
        h.await.unwrap().unwrap();
    }
    let mut c = db.conn().await.unwrap();
    assert_eq!(users::list(&mut *c, t.id, 1, 0).await.unwrap().1, 17);
}

/// Appends an event at the head of `tenant`'s chain in the open transaction, through
/// [`audit::append`] (on PostgreSQL the database joins, hashes and chains it). Its changes hold
/// non-ASCII text, escapes and the keys the record is cut at, so a hash that PostgreSQL computed
/// over other bytes than the verifier reads would show.
async fn append_event(
    c: &mut dyn crate::Conn,
    tenant: TenantId,
    action: &str,
) -> crate::audit::StoredAudit {
    let (e, record) = audit_event(tenant, action);
    audit::append(c, e, &record).await.unwrap()
}

/// The event [`append_event`] appends, and its record cut for the append.
fn audit_event(
    tenant: TenantId,
    action: &str,
) -> (audit::StoredAudit, casegate_domain::audit::Unsealed) {
    use casegate_domain::audit::{AuditRecord, Unsealed};
    let event_id = Uuid::new_v4();
    let record = AuditRecord {
        tenant_id: tenant.to_string(),
        seq: 0,
        event_id: event_id.to_string(),
        occurred_at: casegate_domain::clock::wire_time(T0),
        actor: "système".into(),
        actor_id: None,
        actor_ip: None,
        request_id: None,
        action: action.into(),
        entity_type: "test".into(),
        entity_id: Some(event_id.to_string()),
        changes: json!({"title": {"before": "a \"quoted\" €", "after": "z\\\n"}, "prev_hash": "", "seq": 0}),
        prev_hash: String::new(),
    };
    let e = audit::StoredAudit {
        tenant_id: tenant,
        seq: 0,
        event_id,
        occurred_at: T0,
        actor: record.actor.clone(),
        actor_id: None,
        action: record.action.clone(),
        entity_type: record.entity_type.clone(),
        entity_id: record.entity_id.clone(),
        record: String::new(),
        hash: String::new(),
    };
    (e, Unsealed::of(&record).unwrap())
}

/// The database itself refuses to change or remove audit events and checkpoints.
pub async fn audit_rows_cannot_be_updated_or_deleted(db: Arc<dyn Database>) {
    let (t, _) = setup(&*db, "bank").await;
    let mut tx = db.begin().await.unwrap();
    let e = append_event(&mut *tx, t.id, "user.created").await;
    tx.commit().await.unwrap();
    let mut c = db.conn().await.unwrap();
    audit::insert_checkpoint(
        &mut *c,
        &audit::StoredCheckpoint {
            tenant_id: t.id,
            seq: 1,
            hash: e.hash.clone(),
            signed_at: T0,
            signature: "sig".into(),
            key_id: "k".into(),
        },
    )
    .await
    .unwrap();
    for sql in [
        "UPDATE audit_events SET action = 'user.deleted'",
        "UPDATE audit_events SET record = '{}'",
        "DELETE FROM audit_events",
        "UPDATE audit_checkpoints SET hash = 'x'",
        "DELETE FROM audit_checkpoints",
    ] {
        assert!(c.execute(sql, &[]).await.is_err(), "{sql} must be refused");
    }
    if c.dialect() == crate::Dialect::Postgres {
        assert!(c.execute("TRUNCATE audit_events", &[]).await.is_err());
    }
    let (rows, total) = audit::list(&mut *c, t.id, &Default::default(), 10, 0)
        .await
        .unwrap();
    assert_eq!((total, rows[0].clone()), (1, e));
    assert_eq!(audit::checkpoints(&mut *c, t.id).await.unwrap().len(), 1);
}

/// Concurrent writers of one tenant queue on the chain head: seqs are gap-free and every event
/// links to its predecessor, on both backends. Appends answered at once and deferred ones
/// (`append_deferred`: on PostgreSQL sent with the transaction's other queued writes, or before
/// its next statement or commit) mix in one chain; two deferred in one transaction take
/// consecutive places, and one rolled back takes none.
pub async fn concurrent_audit_appends_form_one_chain(db: Arc<dyn Database>) {
    let (t, t_user) = setup(&*db, "busy").await;
    let (other, other_user) = setup(&*db, "other").await;
    // Each tenant's first event creates its head (as a tenant's creation does); a deferred
    // append needs it.
    let mut appended = std::collections::HashMap::<TenantId, i64>::new();
    for tenant in [t.id, other.id] {
        let mut tx = db.begin().await.unwrap();
        append_event(&mut *tx, tenant, "tenant.created").await;
        tx.commit().await.unwrap();
        appended.insert(tenant, 1);
    }
    let mut handles = Vec::new();
    for i in 0..30 {
        let db = db.clone();
        let (tenant, user) = if i % 3 == 0 {
            (other.id, other_user.id.0)
        } else {
            (t.id, t_user.id.0)
        };
        *appended.entry(tenant).or_default() += [1, 1, 2, 1, 0][i % 5];
        handles.push(tokio::spawn(async move {
            let touch = "UPDATE tenants SET name = name WHERE id = $1";
            let touch_user = "UPDATE users SET name = name WHERE tenant_id = $1 AND id = $2";
            let mut tx = db.begin().await.unwrap();
            match i % 5 {
                0 => {
                    append_event(&mut *tx, tenant, "case.updated").await;
                }
                1 => {
                    let (e, r) = audit_event(tenant, "case.updated");
                    audit::append_deferred(&mut *tx, e, &r).await.unwrap();
                }
                2 => {
                    for _ in 0..2 {
                        let (e, r) = audit_event(tenant, "case.updated");
                        audit::append_deferred(&mut *tx, e, &r).await.unwrap();
                    }
                }
                3 => {
                    tx.defer(touch, vec![tenant.into()], 1).await.unwrap();
                    let (e, r) = audit_event(tenant, "case.status_changed");
                    let id = e.event_id;
                    audit::append_deferred(&mut *tx, e, &r).await.unwrap();
                    let args = vec![tenant.into(), user.into()];
                    tx.defer(touch_user, args, 1).await.unwrap();
                    let n = tx
                        .fetch_one(
                            "SELECT count(*) AS n FROM audit_events WHERE tenant_id = $1 AND event_id = $2",
                            &[tenant.into(), id.into()],
                        )
                        .await
                        .unwrap();
                    assert_eq!(n.int("n").unwrap(), 1, "the next statement sees the event");
                }
                _ => {
                    let (e, r) = audit_event(tenant, "case.updated");
                    audit::append_deferred(&mut *tx, e, &r).await.unwrap();
                    tx.rollback().await.unwrap();
                    return;
                }
            }
            tx.commit().await.unwrap();
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let mut c = db.conn().await.unwrap();
    for (tenant, n) in [(t.id, appended[&t.id]), (other.id, appended[&other.id])] {
        let events = audit::chain_after(&mut *c, tenant, 0, 100).await.unwrap();
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=n).collect::<Vec<_>>()
        );
        let mut v = casegate_domain::audit::ChainVerifier::new(&tenant.to_string(), &[], None);
        for e in &events {
            assert!(v.push(&e.event()));
        }
        assert!(v.finish().valid);
        assert_eq!(
            audit::head(&mut *c, tenant).await.unwrap().map(|h| h.0),
            Some(n)
        );
    }
}

async fn case_fixture(db: &dyn Database, t: &Tenant) {
    let mut c = db.conn().await.unwrap();
    crate::case_types::insert_if_missing(
        &mut *c,
        &crate::case_types::StoredCaseType {
            tenant_id: t.id,
            key: "AML_INV".into(),
            name: "AML investigation".into(),
            builtin: true,
            fields: json!([]),
            workflow: json!({}),
            version: 1,
            created_at: T0,
            updated_at: T0,
        },
    )
    .await
    .unwrap();
}

fn stored_case(t: TenantId, n: i64, status: &str, at: OffsetDateTime) -> crate::cases::StoredCase {
    crate::cases::StoredCase {
        tenant_id: t,
        id: CaseId(Uuid::new_v4()),
        reference: casegate_domain::cases::reference(2026, n),
        case_type: "AML_INV".into(),
        title: format!("case {n}"),
        status: status.into(),
        priority: "medium".into(),
        score: None,
        assigned_to: None,
        assigned_to_email: None,
        business_unit: None,
        fields: Default::default(),
        reasons: vec![],
        notes: None,
        source: None,
        screening_id: None,
        subject_id: None,
        parent_case_id: None,
        disposition: None,
        disposition_reason: None,
        escalated: false,
        escalated_to: None,
        escalated_to_email: None,
        detected_at: None,
        created_by: None,
        created_by_label: "system".into(),
        created_at: at,
        updated_at: at,
        version: 1,
        entry_seq: 0,
        alert_ids: vec![],
    }
}

/// A bulk insert spans several statements (more rows than one statement carries on either
/// backend), stores every case, and files each under its own words: a search for a word of the
/// first, a middle or the last case finds that case and no other (on SQLite, each row's
/// full-text key is its own); a second bulk insert carries on after the first.
pub async fn bulk_inserts_store_every_case_under_its_own_words(db: Arc<dyn Database>) {
    use crate::cases::{self, CaseFilter, CaseSort, Count};
    let (t, _) = setup(&*db, "bank").await;
    case_fixture(&*db, &t).await;
    let batch = |from: i64, n: i64| -> Vec<_> {
        (from..from + n)
            .map(|i| {
                let mut k = stored_case(t.id, i, "open", T0 + Duration::seconds(i));
                k.title = format!("Bulk w{i}");
                k
            })
            .collect()
    };
    let (first, second) = (batch(1, 600), batch(601, 40));
    let mut tx = db.begin().await.unwrap();
    cases::insert_many(&mut *tx, &first).await.unwrap();
    tx.commit().await.unwrap();
    let mut c = db.conn().await.unwrap();
    cases::insert_many(&mut *c, &second).await.unwrap();
    let all = cases::list(
        &mut *c,
        t.id,
        &CaseFilter::default(),
        CaseSort::CreatedAsc,
        (200, 0),
        Count::Exact,
    )
    .await
    .unwrap();
    assert_eq!(all.total, 640, "every case stored");
    assert_eq!(all.rows[0].id, first[0].id);
    for k in [&first[0], &first[299], &first[599], &second[0], &second[39]] {
        let word = k.title.split(' ').nth(1).unwrap().to_lowercase();
        let search = CaseFilter {
            words: vec![word.clone()],
            ..CaseFilter::default()
        };
        let found = cases::list(
            &mut *c,
            t.id,
            &search,
            CaseSort::CreatedDesc,
            (50, 0),
            Count::Exact,
        )
        .await
        .unwrap();
        let ids: Vec<_> = found.rows.iter().map(|r| r.id).collect();
        assert_eq!(ids, [k.id], "`{word}` finds its case alone");
    }
}

/// An update stores every column the command changed, leaves the others as they are (even one
/// written in the same transaction since the read), and writes nothing once the version it read
/// has moved on.
pub async fn updates_write_what_changed_and_keep_the_rest(db: Arc<dyn Database>) {
    use crate::cases;
    let (t, u) = setup(&*db, "bank").await;
    case_fixture(&*db, &t).await;
    let mut before = stored_case(t.id, 1, "open", T0);
    before.fields = json!({"amount": 5000, "country": "GB"})
        .as_object()
        .unwrap()
        .clone();
    before.reasons = vec!["structuring".into()];
    before.source = Some(json!({"alert": {"rule": "R-17", "hits": [1, 2, 3]}}));
    before.notes = Some("first look".into());
    let parent = stored_case(t.id, 2, "open", T0);
    let mut c = db.conn().await.unwrap();
    cases::insert_many(&mut *c, &[before.clone(), parent.clone()])
        .await
        .unwrap();
    let id = before.id;
    // Every changeable column at once.
    let mut all = before.clone();
    all.title = "Retitled".into();
    all.status = "working".into();
    all.priority = "critical".into();
    all.score = Some(87.5);
    all.assigned_to = Some(u.id.0);
    all.assigned_to_email = Some(u.email.clone());
    all.business_unit = Some("retail".into());
    all.fields.insert("amount".into(), json!(7000));
    all.reasons.push("velocity".into());
    all.notes = None;
    all.source = Some(json!({"alert": {"rule": "R-18"}}));
    all.screening_id = Some("scr-1".into());
    all.subject_id = Some("sub-1".into());
    all.parent_case_id = Some(parent.id);
    all.disposition = Some("true_positive".into());
    all.disposition_reason = Some("confirmed".into());
    all.escalated = true;
    all.escalated_to = Some(u.id.0);
    all.escalated_to_email = Some(u.email.clone());
    all.detected_at = Some(T0 - Duration::days(3));
    all.updated_at = T0 + Duration::minutes(5);
    all.version = 2;
    all.entry_seq = 4;
    assert!(cases::update(&mut *c, &all, &before).await.unwrap());
    assert_eq!(cases::get(&mut *c, t.id, id).await.unwrap().unwrap(), all);
    // One column: the rest, JSON included, stays as stored.
    let mut one = all.clone();
    one.status = "closed".into();
    one.version = 3;
    assert!(cases::update(&mut *c, &one, &all).await.unwrap());
    assert_eq!(cases::get(&mut *c, t.id, id).await.unwrap().unwrap(), one);
    // A column this command did not change is not written: a write made to it in the same
    // transaction since the read stands.
    let mut tx = db.begin().await.unwrap();
    tx.execute(
        "UPDATE cases SET notes = 'written meanwhile' WHERE tenant_id = $1 AND id = $2",
        &[t.id.into(), id.into()],
    )
    .await
    .unwrap();
    let mut two = one.clone();
    two.priority = "low".into();
    two.version = 4;
    assert!(cases::update(&mut *tx, &two, &one).await.unwrap());
    tx.commit().await.unwrap();
    two.notes = Some("written meanwhile".into());
    assert_eq!(cases::get(&mut *c, t.id, id).await.unwrap().unwrap(), two);
    // A stale read writes nothing.
    let mut stale = all.clone();
    stale.title = "Lost".into();
    stale.version = 3;
    assert!(!cases::update(&mut *c, &stale, &all).await.unwrap());
    assert_eq!(cases::get(&mut *c, t.id, id).await.unwrap().unwrap(), two);
}

/// A case is found by the words of its title and notes as they now are: an edit of either
/// replaces its words (old ones no longer find it), and an update that leaves both alone, such
/// as a status change, keeps it findable by the same words.
pub async fn search_follows_edits_of_title_and_notes_only(db: Arc<dyn Database>) {
    use crate::cases::{self, CaseFilter, CaseSort, Count, StoredCase};
    /// Whether a search for `word` finds case `k` (and nothing else).
    async fn found(c: &mut dyn crate::Conn, k: &StoredCase, word: &str) -> bool {
        let search = CaseFilter {
            words: vec![word.into()],
            ..CaseFilter::default()
        };
        let page = cases::list(
            c,
            k.tenant_id,
            &search,
            CaseSort::CreatedDesc,
            (10, 0),
            Count::Exact,
        )
        .await
        .unwrap();
        match page.rows.as_slice() {
            [] => false,
            [only] if only.id == k.id => true,
            other => panic!("`{word}` found {other:?}"),
        }
    }
    /// The PostgreSQL row version of `k`'s search document.
    async fn document_version(c: &mut dyn crate::Conn, k: &StoredCase) -> String {
        let sql = "SELECT xmin::text AS v FROM case_search WHERE tenant_id = $1 AND case_id = $2";
        let args = [k.tenant_id.into(), k.id.into()];
        c.fetch_one(sql, &args).await.unwrap().text("v").unwrap()
    }
    async fn write(c: &mut dyn crate::Conn, k: &mut StoredCase) {
        let before = cases::get(c, k.tenant_id, k.id).await.unwrap().unwrap();
        k.version += 1;
        assert!(cases::update(c, k, &before).await.unwrap());
    }
    let (t, _) = setup(&*db, "bank").await;
    case_fixture(&*db, &t).await;
    let mut k = stored_case(t.id, 1, "open", T0);
    k.title = "Ledger review".into();
    k.notes = Some("Wire from Leeds".into());
    let mut c = db.conn().await.unwrap();
    cases::insert_many(&mut *c, std::slice::from_ref(&k))
        .await
        .unwrap();
    for word in ["ledger", "review", "wire", "leeds"] {
        assert!(found(&mut *c, &k, word).await, "`{word}` after insert");
    }
    // On PostgreSQL the document is a row of its own: a change that leaves title and notes
    // alone does not write it again.
    let pg = c.dialect() == crate::Dialect::Postgres;
    let written = if pg {
        Some(document_version(&mut *c, &k).await)
    } else {
        None
    };
    k.status = "working".into();
    write(&mut *c, &mut k).await;
    for word in ["ledger", "leeds"] {
        assert!(
            found(&mut *c, &k, word).await,
            "`{word}` after a status change"
        );
    }
    if pg {
        let now = Some(document_version(&mut *c, &k).await);
        assert_eq!(now, written, "the document was written again");
    }
    k.notes = Some("Cash in Zagreb".into());
    write(&mut *c, &mut k).await;
    assert!(!found(&mut *c, &k, "leeds").await, "old notes forgotten");
    assert!(found(&mut *c, &k, "zagreb").await, "new notes found");
    assert!(found(&mut *c, &k, "ledger").await, "title kept");
    // Notes alone, to none and back.
    k.notes = None;
    write(&mut *c, &mut k).await;
    assert!(!found(&mut *c, &k, "zagreb").await, "notes removed");
    k.notes = Some("Zagreb again".into());
    write(&mut *c, &mut k).await;
    assert!(found(&mut *c, &k, "zagreb").await, "notes back");
    k.title = "Trade finance".into();
    k.notes = None;
    write(&mut *c, &mut k).await;
    for gone in ["ledger", "zagreb"] {
        assert!(!found(&mut *c, &k, gone).await, "`{gone}` forgotten");
    }
    assert!(found(&mut *c, &k, "finance").await, "new title found");
}

/// Lists count matches up to the cap the caller gives (marking the total inexact beyond it),
/// count exactly when asked, keep other tenants out, and page newest first with ties broken by
/// id, so paging past the cap still walks every case once.
pub async fn case_lists_count_up_to_the_cap_and_page_stably(db: Arc<dyn Database>) {
    use crate::cases::{self, CaseFilter, CaseSort, Count};
    let (t, _) = setup(&*db, "bank").await;
    let (other, _) = setup(&*db, "other").await;
    case_fixture(&*db, &t).await;
    case_fixture(&*db, &other).await;
    // Seven cases in two timestamps (ties), one closed; three in the other tenant.
    let mine: Vec<_> = (1..=7)
        .map(|n| {
            let at = T0 + Duration::minutes(if n <= 4 { 1 } else { 2 });
            let mut k = stored_case(t.id, n, if n == 7 { "closed" } else { "open" }, at);
            k.title = format!("Ledger review {n}");
            k
        })
        .collect();
    let theirs: Vec<_> = (1..=3)
        .map(|n| {
            let mut k = stored_case(other.id, n, "open", T0);
            k.title = format!("Ledger review {n}");
            k
        })
        .collect();
    let mut tx = db.begin().await.unwrap();
    cases::insert_many(&mut *tx, &mine).await.unwrap();
    cases::insert_many(&mut *tx, &theirs).await.unwrap();
    tx.commit().await.unwrap();
    let mut c = db.conn().await.unwrap();
    let all = CaseFilter::default();
    let sort = CaseSort::CreatedDesc;
    let capped = cases::list(&mut *c, t.id, &all, sort, (3, 0), Count::UpTo(5))
        .await
        .unwrap();
    assert_eq!((capped.total, capped.total_exact), (5, false));
    let exact = cases::list(&mut *c, t.id, &all, sort, (3, 0), Count::Exact)
        .await
        .unwrap();
    assert_eq!((exact.total, exact.total_exact), (7, true));
    let at_cap = cases::list(&mut *c, t.id, &all, sort, (3, 0), Count::UpTo(7))
        .await
        .unwrap();
    assert_eq!((at_cap.total, at_cap.total_exact), (7, true));
    // Walk the pages beyond the cap: every case once, newest first, ties by id descending.
    let mut walked = Vec::new();
    for offset in [0, 3, 6, 9] {
        let page = cases::list(&mut *c, t.id, &all, sort, (3, offset), Count::UpTo(5))
            .await
            .unwrap();
        walked.extend(page.rows.into_iter().map(|k| (k.created_at, k.id)));
    }
    let mut expected: Vec<_> = mine.iter().map(|k| (k.created_at, k.id)).collect();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(walked, expected);
    let open = CaseFilter {
        status: Some("closed".into()),
        ..CaseFilter::default()
    };
    let closed = cases::list(&mut *c, t.id, &open, sort, (50, 0), Count::UpTo(5))
        .await
        .unwrap();
    assert_eq!(
        (closed.total, closed.total_exact, closed.rows.len()),
        (1, true, 1)
    );
    assert_eq!(closed.rows[0].id, mine[6].id);
    let past_end = cases::list(&mut *c, other.id, &all, sort, (50, 3), Count::UpTo(5))
        .await
        .unwrap();
    assert_eq!((past_end.total, past_end.rows.len()), (3, 0));

    // A search counts and pages the same way (its matches found once, page and count taken
    // from them), past its end too.
    let search = CaseFilter {
        words: vec!["ledger".into()],
        ..CaseFilter::default()
    };
    let found = |offset: i64, count: Count| {
        let db = db.clone();
        let search = search.clone();
        async move {
            let mut c = db.conn().await.unwrap();
            cases::list(&mut *c, t.id, &search, sort, (3, offset), count)
                .await
                .unwrap()
        }
    };
    let capped = found(0, Count::UpTo(5)).await;
    assert_eq!(
        (capped.total, capped.total_exact, capped.rows.len()),
        (5, false, 3)
    );
    let exact = found(0, Count::Exact).await;
    assert_eq!((exact.total, exact.total_exact), (7, true));
    let mut walked = Vec::new();
    for offset in [0, 3, 6, 9] {
        let page = found(offset, Count::UpTo(5)).await;
        walked.extend(page.rows.into_iter().map(|k| (k.created_at, k.id)));
    }
    assert_eq!(walked, expected);
    let beyond = found(9, Count::UpTo(5)).await;
    assert_eq!(
        (beyond.total, beyond.total_exact, beyond.rows.len()),
        (5, false, 0)
    );
    let beyond = found(9, Count::Exact).await;
    assert_eq!(
        (beyond.total, beyond.total_exact, beyond.rows.len()),
        (7, true, 0)
    );
    let closed = CaseFilter {
        status: Some("closed".into()),
        ..search.clone()
    };
    let one = cases::list(&mut *c, t.id, &closed, sort, (50, 0), Count::UpTo(5))
        .await
        .unwrap();
    assert_eq!((one.total, one.rows[0].id), (1, mine[6].id));
    let theirs_found = cases::list(&mut *c, other.id, &search, sort, (50, 0), Count::UpTo(5))
        .await
        .unwrap();
    assert_eq!((theirs_found.total, theirs_found.rows.len()), (3, 3));
}

/// A case read for change after waiting for another transaction's lock sees that
/// transaction's change in full: the row, the new assignee's e-mail, a newly linked alert and
/// the type's new version (on PostgreSQL a locking read that waited reads all but the row as of
/// its start, unless it reads again).
pub async fn a_lock_that_waited_reads_the_change_in_full(db: Arc<dyn Database>) {
    use crate::cases;
    let (t, u) = setup(&*db, "bank").await;
    case_fixture(&*db, &t).await;
    let k = stored_case(t.id, 1, "open", T0);
    let alert = stored_case(t.id, 2, "open", T0);
    let mut c = db.conn().await.unwrap();
    cases::insert_many(&mut *c, &[k.clone(), alert.clone()])
        .await
        .unwrap();
    let mut holder = db.begin().await.unwrap();
    let mut held = cases::lock(&mut *holder, t.id, k.id)
        .await
        .unwrap()
        .unwrap()
        .case;
    let read = held.clone();
    held.assigned_to = Some(u.id.0);
    held.version = 2;
    assert!(cases::update(&mut *holder, &held, &read).await.unwrap());
    assert!(
        cases::link_alert(&mut *holder, t.id, alert.id, k.id)
            .await
            .unwrap()
    );
    let ty = crate::case_types::get(&mut *holder, t.id, "AML_INV")
        .await
        .unwrap()
        .unwrap();
    let newer = crate::case_types::StoredCaseType { version: 2, ..ty };
    assert!(
        crate::case_types::update(&mut *holder, &newer, 1)
            .await
            .unwrap()
    );
    // Two waiters: a command's read (`lock`) and a move's (`lock_for_move`, which reads all but
    // the row in a second statement).
    let waiter = |for_move: bool| {
        let db = db.clone();
        tokio::spawn(async move {
            let mut tx = db.begin().await.unwrap();
            let l = if for_move {
                let (l, found) = cases::lock_for_move(&mut *tx, t.id, k.id)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(
                    found,
                    cases::obstacles(&mut *tx, t.id, k.id, "open")
                        .await
                        .unwrap()
                );
                l
            } else {
                cases::lock(&mut *tx, t.id, k.id).await.unwrap().unwrap()
            };
            tx.commit().await.unwrap();
            l
        })
    };
    let waiters = [waiter(false), waiter(true)];
    if db.dialect() == crate::Dialect::Postgres {
        // Commit only once both locking reads are queued behind the holder.
        let waiting = "SELECT count(*) AS n FROM pg_stat_activity \
                       WHERE datname = current_database() AND wait_event_type = 'Lock'";
        let mut queued = false;
        for _ in 0..500 {
            if c.fetch_one(waiting, &[]).await.unwrap().int("n").unwrap() == 2 {
                queued = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(queued, "the second locking read never waited");
    }
    holder.commit().await.unwrap();
    for w in waiters {
        let l = w.await.unwrap();
        assert_eq!(
            (
                l.case.version,
                l.case.assigned_to,
                l.case.assigned_to_email.as_deref(),
                l.case.alert_ids,
                l.type_version
            ),
            (
                2,
                Some(u.id.0),
                Some("ana@bank.example"),
                vec![alert.id],
                Some(2)
            )
        );
    }
}

/// A move's read (`lock_for_move`) gives the case as every other read does (both e-mails, the
/// linked alerts, the type's version) and what may stop it leaving its own status: an open
/// mandatory task holding it there (not one holding another status), a pending request. Another
/// tenant finds nothing.
pub async fn a_move_reads_its_case_and_what_holds_it(db: Arc<dyn Database>) {
    use crate::{cases, tasks};
    let (t, u) = setup(&*db, "bank").await;
    case_fixture(&*db, &t).await;
    let mut c = db.conn().await.unwrap();
    let eve = user(t.id, "eve@bank.example", T0);
    users::insert(&mut *c, &eve).await.unwrap();
    let mut k = stored_case(t.id, 1, "open", T0);
    (k.assigned_to, k.escalated, k.escalated_to) = (Some(u.id.0), true, Some(eve.id.0));
    let alert = stored_case(t.id, 2, "open", T0);
    cases::insert_many(&mut *c, &[k.clone(), alert.clone()])
        .await
        .unwrap();
    assert!(
        cases::link_alert(&mut *c, t.id, alert.id, k.id)
            .await
            .unwrap()
    );
    let legal = task(t.id, k.id, "Legal review", Some("review"), None);
    assert!(tasks::insert(&mut *c, &legal).await.unwrap());
    let stored = cases::get(&mut *c, t.id, k.id).await.unwrap().unwrap();
    assert_eq!(
        (
            stored.assigned_to_email.as_deref(),
            stored.escalated_to_email.as_deref(),
            &stored.alert_ids
        ),
        (
            Some("ana@bank.example"),
            Some("eve@bank.example"),
            &vec![alert.id]
        )
    );
    let read = async |tenant: TenantId| {
        let mut c = db.conn().await.unwrap();
        cases::lock_for_move(&mut *c, tenant, k.id).await.unwrap()
    };
    let (l, found) = read(t.id).await.unwrap();
    assert_eq!((&l.case, l.type_version), (&stored, Some(1)));
    assert_eq!(
        found,
        cases::Obstacles {
            pending_request: None,
            blocking_tasks: false
        },
        "the task holds `review`, the case is `open`"
    );
    let mut moved = stored.clone();
    (moved.status, moved.version) = ("review".into(), 2);
    assert!(cases::update(&mut *c, &moved, &stored).await.unwrap());
    let (l, found) = read(t.id).await.unwrap();
    assert_eq!(
        (
            l.case.status.as_str(),
            found.blocking_tasks,
            found.pending_request
        ),
        ("review", true, None)
    );
    let q = request(t.id, k.id, u.id, None);
    crate::requests::insert(&mut *c, &q).await.unwrap();
    assert_eq!(read(t.id).await.unwrap().1.pending_request, Some(q.id));
    let (other, _) = setup(&*db, "other").await;
    assert!(read(other.id).await.is_none(), "another tenant's case");
}

/// Concurrent case creations of one tenant get consecutive reference numbers without gaps or
/// repeats; each tenant and year counts on its own.
pub async fn case_numbers_are_gap_free_under_concurrency(db: Arc<dyn Database>) {
    use crate::cases;
    let (t, _) = setup(&*db, "bank").await;
    let (other, _) = setup(&*db, "other").await;
    let mut handles = Vec::new();
    for i in 0..12 {
        let db = db.clone();
        let tenant = t.id;
        handles.push(tokio::spawn(async move {
            let mut tx = db.begin().await.unwrap();
            let n = cases::next_number(&mut *tx, tenant, 2026).await.unwrap();
            // Every third transaction is dropped (rolled back): its number is handed out again.
            if i % 3 == 0 {
                drop(tx);
                None
            } else {
                tx.commit().await.unwrap();
                Some(n)
            }
        }));
    }
    let mut got = Vec::new();
    for h in handles {
        got.extend(h.await.unwrap());
    }
    got.sort_unstable();
    assert_eq!(got, (1..=8).collect::<Vec<i64>>());
    let mut c = db.conn().await.unwrap();
    assert_eq!(
        cases::next_number(&mut *c, other.id, 2026).await.unwrap(),
        1
    );
    assert_eq!(cases::next_number(&mut *c, t.id, 2027).await.unwrap(), 1);
    assert_eq!(
        cases::reserve_numbers(&mut *c, t.id, 2026, 100)
            .await
            .unwrap(),
        9
    );
    assert_eq!(cases::next_number(&mut *c, t.id, 2026).await.unwrap(), 109);
}

/// The database itself refuses to change or remove a case's comments and status history.
pub async fn case_record_rows_are_append_only(db: Arc<dyn Database>) {
    use crate::case_record::{self, By, Comment, HistoryEntry};
    let (t, _) = setup(&*db, "bank").await;
    case_fixture(&*db, &t).await;
    let k = stored_case(t.id, 1, "open", T0);
    let by = By {
        id: None,
        label: "system".into(),
    };
    let mut tx = db.begin().await.unwrap();
    crate::cases::insert_many(&mut *tx, std::slice::from_ref(&k))
        .await
        .unwrap();
    case_record::add_comment(
        &mut *tx,
        t.id,
        &Comment {
            id: Uuid::new_v4(),
            case_id: k.id,
            seq: 1,
            author: by.clone(),
            content: "customer called".into(),
            created_at: T0,
        },
    )
    .await
    .unwrap();
    case_record::add_history(
        &mut *tx,
        t.id,
        &HistoryEntry {
            id: Uuid::new_v4(),
            case_id: k.id,
            seq: 2,
            from: None,
            to: "open".into(),
            rule_id: None,
            request_id: None,
            actor: by,
            reason: None,
            approvals: json!([]),
            requested_at: T0,
            approval_requested_at: None,
            approval_completed_at: None,
            effective_at: T0,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut c = db.conn().await.unwrap();
    for sql in [
        "UPDATE case_comments SET content = 'nothing to see'",
        "DELETE FROM case_comments",
        "UPDATE case_status_history SET to_status = 'closed'",
        "DELETE FROM case_status_history",
    ] {
        assert!(c.execute(sql, &[]).await.is_err(), "{sql} must be refused");
    }
    let comments = case_record::comments(&mut *c, t.id, k.id).await.unwrap();
    assert_eq!(comments[0].content, "customer called");
    assert_eq!(
        case_record::history(&mut *c, t.id, k.id)
            .await
            .unwrap()
            .len(),
        1
    );
}

fn request(
    t: TenantId,
    case: CaseId,
    by: UserId,
    due: Option<OffsetDateTime>,
) -> crate::requests::StoredRequest {
    crate::requests::StoredRequest {
        tenant_id: t,
        id: Uuid::new_v4(),
        case_id: case,
        case_version: 1,
        from: "review".into(),
        to: "closed".into(),
        rule_id: Some("close".into()),
        requested_by: by.0,
        requested_by_label: "ana@bank.example".into(),
        reason: Some("recovered".into()),
        status: "pending".into(),
        current_tier: 0,
        approval: json!({"tiers": []}),
        post_actions: json!([]),
        requested_at: T0,
        approval_requested_at: T0,
        approval_completed_at: None,
        effective_at: None,
        next_due_at: due,
        updated_at: T0,
        version: 1,
    }
}

/// A case has at most one pending transition request (the database refuses a second, naming
/// the constraint); a superseded one frees the case; updates are version-guarded; the timer's
/// claim takes only due requests, and while one transaction holds a due request another
/// transaction's claim passes it by (PostgreSQL `SKIP LOCKED`) or waits (SQLite's single
/// writer), so no request is handed to two workers at once.
pub async fn one_pending_request_per_case_and_claims_never_overlap(db: Arc<dyn Database>) {
    use crate::requests;
    let (t, u) = setup(&*db, "bank").await;
    case_fixture(&*db, &t).await;
    let (k1, k2) = (
        stored_case(t.id, 1, "review", T0),
        stored_case(t.id, 2, "review", T0),
    );
    let mut c = db.conn().await.unwrap();
    crate::cases::insert_many(&mut *c, &[k1.clone(), k2.clone()])
        .await
        .unwrap();
    let obstacles = |tenant: TenantId| {
        let db = db.clone();
        async move {
            let mut c = db.conn().await.unwrap();
            crate::cases::obstacles(&mut *c, tenant, k1.id, "review")
                .await
                .unwrap()
                .pending_request
        }
    };
    assert_eq!(obstacles(t.id).await, None);
    // A case read for change comes with its type's stored version.
    let locked = crate::cases::lock(&mut *c, t.id, k1.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((locked.case, locked.type_version), (k1.clone(), Some(1)));
    let first = request(t.id, k1.id, u.id, Some(T0 + Duration::hours(1)));
    requests::insert(&mut *c, &first).await.unwrap();
    assert_eq!(obstacles(t.id).await, Some(first.id));
    match requests::insert(&mut *c, &request(t.id, k1.id, u.id, None)).await {
        Err(StoreError::Conflict { constraint }) => assert_eq!(constraint, requests::ONE_PENDING),
        other => panic!("second pending request: {other:?}"),
    }
    // Another tenant sees nothing of it.
    let (other, _) = setup(&*db, "other").await;
    assert!(
        requests::get(&mut *c, other.id, first.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        requests::pending_for_case(&mut *c, other.id, k1.id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(obstacles(other.id).await, None);

    // A stale version writes nothing.
    let mut stale = first.clone();
    stale.version = 2;
    stale.status = "cancelled".into();
    assert!(!requests::update(&mut *c, &stale, 7).await.unwrap());
    assert_eq!(
        requests::get(&mut *c, t.id, first.id)
            .await
            .unwrap()
            .unwrap(),
        first
    );

    // Superseding frees the case for a new request.
    let gone = requests::supersede_pending(&mut *c, t.id, k1.id, T0)
        .await
        .unwrap();
    assert_eq!(gone, Some(first.id));
    assert_eq!(
        obstacles(t.id).await,
        None,
        "a superseded request is no obstacle"
    );
    assert_eq!(
        requests::supersede_pending(&mut *c, t.id, k1.id, T0)
            .await
            .unwrap(),
        None
    );
    let again = request(t.id, k1.id, u.id, None);
    requests::insert(&mut *c, &again).await.unwrap();
    let second = request(t.id, k2.id, u.id, Some(T0 + Duration::hours(2)));
    requests::insert(&mut *c, &second).await.unwrap();
    drop(c);

    // Nothing is due before its time; then the soonest first.
    let mut tx = db.begin().await.unwrap();
    assert!(requests::claim_due(&mut *tx, T0).await.unwrap().is_none());
    drop(tx);
    let at = T0 + Duration::hours(3);
    let mut holder = db.begin().await.unwrap();
    let claimed = requests::claim_due(&mut *holder, at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, second.id, "the superseded request is never due");
    if db.dialect() == crate::Dialect::Postgres {
        let mut rival = db.begin().await.unwrap();
        assert!(
            requests::claim_due(&mut *rival, at)
                .await
                .unwrap()
                .is_none(),
            "a held request is skipped"
        );
        // Undone at once, releasing what it holds before the next claim (a dropped
        // transaction lets go only when its connection goes back to the pool).
        rival.rollback().await.unwrap();
    }
    let mut done = claimed.clone();
    done.next_due_at = None;
    done.version += 1;
    assert!(
        requests::update(&mut *holder, &done, claimed.version)
            .await
            .unwrap()
    );
    holder.commit().await.unwrap();
    let mut tx = db.begin().await.unwrap();
    assert!(requests::claim_due(&mut *tx, at).await.unwrap().is_none());
    drop(tx);
    let mut c = db.conn().await.unwrap();
    let listed = requests::list(&mut *c, t.id, &requests::Filter::default(), 10, 0)
        .await
        .unwrap();
    assert_eq!(listed.len(), 3);
    let pending = requests::Filter {
        status: Some("pending".into()),
        case_id: Some(k1.id),
        ..Default::default()
    };
    assert_eq!(requests::count(&mut *c, t.id, &pending).await.unwrap(), 1);
    assert!(!requests::any_due(&mut *c, at).await.unwrap());
    let found = requests::list(&mut *c, t.id, &pending, 10, 0)
        .await
        .unwrap();
    assert_eq!(found.iter().map(|r| r.id).collect::<Vec<_>>(), [again.id]);
}

fn task(
    t: TenantId,
    case: CaseId,
    title: &str,
    blocks: Option<&str>,
    key: Option<&str>,
) -> crate::tasks::StoredTask {
    crate::tasks::StoredTask {
        tenant_id: t,
        id: Uuid::new_v4(),
        case_id: case,
        title: title.into(),
        description: None,
        status: "open".into(),
        mandatory: blocks.is_some(),
        blocks_status: blocks.map(str::to_string),
        assignee_role: Some("legal_counsel".into()),
        assigned_to: None,
        assigned_to_email: None,
        due_at: None,
        source: "workflow".into(),
        source_key: key.map(str::to_string),
        created_by: None,
        created_by_label: "system".into(),
        created_at: T0,
        completed_at: None,
        completed_by: None,
        completed_by_label: None,
        completion_note: None,
        version: 1,
    }
}

/// Open mandatory tasks are what blocks a case's status (done ones and other statuses' do not);
/// a generated task's `source_key` is written once in its tenant, without failing the transaction;
/// completing is version-guarded and happens once; role filters match unnamed tasks only; other
/// tenants see nothing.
pub async fn tasks_block_their_status_and_generated_ones_are_unique(db: Arc<dyn Database>) {
    use crate::tasks::{self, Filter};
    let (t, u) = setup(&*db, "bank").await;
    case_fixture(&*db, &t).await;
    let k = stored_case(t.id, 1, "review", T0);
    let mut c = db.conn().await.unwrap();
    crate::cases::insert_many(&mut *c, std::slice::from_ref(&k))
        .await
        .unwrap();
    let legal = task(
        t.id,
        k.id,
        "Legal review",
        Some("review"),
        Some("status:e1#00"),
    );
    let docs = task(
        t.id,
        k.id,
        "Collect documents",
        Some("review"),
        Some("status:e1#01"),
    );
    let later = task(t.id, k.id, "Archive", Some("closed"), None);
    let mut mine = task(t.id, k.id, "Call customer", None, None);
    mine.assigned_to = Some(u.id.0);
    mine.assignee_role = None;
    for x in [&legal, &docs, &later, &mine] {
        assert!(tasks::insert(&mut *c, x).await.unwrap());
    }
    // A generated task is written once per source key (in a transaction that goes on working).
    let mut tx = db.begin().await.unwrap();
    let dup = task(t.id, k.id, "again", None, Some("status:e1#00"));
    assert!(!tasks::insert(&mut *tx, &dup).await.unwrap());
    assert!(tasks::get(&mut *tx, t.id, dup.id).await.unwrap().is_none());
    tx.commit().await.unwrap();
    let titles = |v: Vec<tasks::StoredTask>| v.into_iter().map(|x| x.title).collect::<Vec<_>>();
    assert_eq!(
        titles(
            tasks::blocking(&mut *c, t.id, k.id, "review")
                .await
                .unwrap()
        ),
        ["Legal review", "Collect documents"]
    );
    let blocked = async |tenant: TenantId, status: &str| {
        let mut c = db.conn().await.unwrap();
        crate::cases::obstacles(&mut *c, tenant, k.id, status)
            .await
            .unwrap()
            .blocking_tasks
    };
    assert!(blocked(t.id, "review").await);
    assert!(
        !blocked(t.id, "open").await,
        "tasks hold a case only in their status"
    );
    // Completion: once, guarded by version.
    let mut done = legal.clone();
    done.completed_at = Some(T0 + Duration::minutes(5));
    done.completed_by = Some(u.id.0);
    done.completed_by_label = Some("ana@bank.example".into());
    assert!(!tasks::complete(&mut *c, &done, 9).await.unwrap());
    assert!(tasks::complete(&mut *c, &done, 1).await.unwrap());
    assert!(
        !tasks::complete(&mut *c, &done, 2).await.unwrap(),
        "done stays done"
    );
    let stored = tasks::get(&mut *c, t.id, legal.id).await.unwrap().unwrap();
    assert_eq!((stored.status.as_str(), stored.version), ("done", 2));
    assert_eq!(
        titles(
            tasks::blocking(&mut *c, t.id, k.id, "review")
                .await
                .unwrap()
        ),
        ["Collect documents"]
    );
    assert!(
        blocked(t.id, "review").await,
        "one open task still holds it"
    );
    // Lists and filters.
    let open = Filter {
        status: Some("open".into()),
        ..Default::default()
    };
    assert_eq!(tasks::count(&mut *c, t.id, &open).await.unwrap(), 3);
    let for_me = Filter {
        assigned_to: Some(u.id.0),
        assignee_roles: Some(vec!["legal_counsel".into()]),
        ..Default::default()
    };
    let found = tasks::list(&mut *c, t.id, &for_me, 10, 0).await.unwrap();
    assert_eq!(found.len(), 4);
    assert_eq!(
        found
            .iter()
            .find(|x| x.id == mine.id)
            .unwrap()
            .assigned_to_email
            .as_deref(),
        Some("ana@bank.example")
    );
    let only_me = Filter {
        assigned_to: Some(u.id.0),
        ..Default::default()
    };
    assert_eq!(
        titles(tasks::list(&mut *c, t.id, &only_me, 10, 0).await.unwrap()),
        ["Call customer"]
    );
    assert_eq!(tasks::of_case(&mut *c, t.id, k.id).await.unwrap().len(), 4);
    let (other, _) = setup(&*db, "other").await;
    assert!(
        tasks::get(&mut *c, other.id, legal.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        tasks::of_case(&mut *c, other.id, k.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        tasks::count(&mut *c, other.id, &Filter::default())
            .await
            .unwrap(),
        0
    );
    assert!(!blocked(other.id, "review").await);
}

/// A `case.status_changed` event of `tenant` committed at `at`, carrying `actions`.
fn outbox_event(
    tenant: TenantId,
    actions: Option<serde_json::Value>,
    at: OffsetDateTime,
) -> crate::outbox::OutboxEvent {
    crate::outbox::OutboxEvent {
        tenant_id: tenant,
        id: Uuid::new_v4(),
        event_type: "case.status_changed".into(),
        created_at: at,
        data: json!({"case": {"id": "x"}}),
        actions,
        dispatched_at: None,
        attempts: 0,
        last_error: None,
    }
}

/// The dispatcher's store: events without work are settled in bulk; an event with work is
/// claimed (attempt counted) and hidden until its lease ends, and a rival transaction passes a
/// held claim by (PostgreSQL `SKIP LOCKED`); a post-action run is recorded once per (event,
/// action); a retry comes due at its time; a finished event is never claimed again.
pub async fn outbox_claims_are_leased_and_each_post_action_runs_once(db: Arc<dyn Database>) {
    use crate::outbox::{self, PostActionRun};
    let (t, _) = setup(&*db, "bank").await;
    let ev =
        |actions: Option<serde_json::Value>, at: OffsetDateTime| outbox_event(t.id, actions, at);
    let plain = ev(None, T0);
    let work = ev(
        Some(json!({"post_actions": [{"type": "emit_event", "event": "x"}]})),
        T0,
    );
    let newer = ev(Some(json!({"post_actions": []})), T0 + Duration::seconds(1));
    let mut c = db.conn().await.unwrap();
    for e in [&plain, &work, &newer] {
        outbox::insert(&mut *c, e).await.unwrap();
    }
    let now = T0 + Duration::minutes(1);
    assert!(outbox::due(&mut *c, now).await.unwrap().work);
    assert_eq!(
        outbox::settle_plain(&mut *c, now, 100).await.unwrap(),
        0,
        "an event not yet fanned out is settled by its fan-out"
    );
    drop(c);

    let lease = now + Duration::minutes(5);
    let mut holder = db.begin().await.unwrap();
    let claimed = outbox::claim(&mut *holder, now, lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((claimed.id, claimed.attempts), (work.id, 1));
    assert_eq!(claimed.actions, work.actions);
    if db.dialect() == crate::Dialect::Postgres {
        let mut rival = db.begin().await.unwrap();
        let next = outbox::claim(&mut *rival, now, lease)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(next.id, newer.id, "a held event is skipped");
        // Undone at once, releasing what it holds before the next claim (a dropped
        // transaction lets go only when its connection goes back to the pool).
        rival.rollback().await.unwrap();
    }
    holder.commit().await.unwrap();
    // Leased: the next claim takes the newer event, then nothing until the lease ends.
    let mut tx = db.begin().await.unwrap();
    let newer = outbox::claim(&mut *tx, now, lease).await.unwrap().unwrap();
    assert_eq!(newer.event_type, "case.status_changed");
    assert_eq!(newer.actions, Some(json!({"post_actions": []})));
    tx.commit().await.unwrap();
    let mut tx = db.begin().await.unwrap();
    assert!(outbox::claim(&mut *tx, now, lease).await.unwrap().is_none());
    drop(tx);
    // A holder that never came back (its lease ran out): the event is claimed again, and the
    // stale holder can no longer finish it.
    let mut tx = db.begin().await.unwrap();
    let reclaimed = outbox::claim(&mut *tx, lease, lease + Duration::minutes(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((reclaimed.id, reclaimed.attempts), (work.id, 2));
    assert!(
        !outbox::done(&mut *tx, &claimed, lease).await.unwrap(),
        "a stale claim"
    );
    tx.commit().await.unwrap();
    let claimed = reclaimed;

    // Runs: once per action of an event.
    let run = PostActionRun {
        tenant_id: t.id,
        event_id: work.id,
        idx: 0,
        action_type: "emit_event".into(),
        case_id: Uuid::new_v4(),
        outcome: "done".into(),
        error: None,
        ran_at: now,
    };
    let mut c = db.conn().await.unwrap();
    assert!(outbox::record_run(&mut *c, &run).await.unwrap());
    let mut twice = run.clone();
    twice.outcome = "failed".into();
    assert!(!outbox::record_run(&mut *c, &twice).await.unwrap());
    assert_eq!(
        outbox::runs_of(&mut *c, t.id, work.id).await.unwrap(),
        [run]
    );

    // A retry comes due at its time; a finished event never again.
    outbox::retry_at(
        &mut *c,
        &claimed,
        now + Duration::minutes(2),
        "internal: db",
    )
    .await
    .unwrap();
    assert!(outbox::done(&mut *c, &newer, now).await.unwrap());
    drop(c);
    let mut tx = db.begin().await.unwrap();
    assert!(outbox::claim(&mut *tx, now, lease).await.unwrap().is_none());
    let again = outbox::claim(&mut *tx, now + Duration::minutes(2), lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.id, again.attempts), (work.id, 3));
    assert_eq!(again.last_error.as_deref(), Some("internal: db"));
    assert!(outbox::done(&mut *tx, &again, now).await.unwrap());
    tx.commit().await.unwrap();
    let mut c = db.conn().await.unwrap();
    // The post-actions are done; the webhook fan-out of every event is still due.
    let due = outbox::due(&mut *c, now + Duration::hours(1))
        .await
        .unwrap();
    assert!(due.fan_out && !due.work && !due.settle, "{due:?}");
    let first = outbox::take_for_fan_out(&mut *c, now, 1).await.unwrap();
    let rest = outbox::take_for_fan_out(&mut *c, now, 100).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(!rest.is_empty(), "every event awaits fan-out");
    assert!(
        rest.windows(2)
            .all(|w| (w[0].created_at, w[0].id) < (w[1].created_at, w[1].id))
            && (first[0].created_at, first[0].id) < (rest[0].created_at, rest[0].id),
        "oldest first"
    );
    assert!(
        outbox::take_for_fan_out(&mut *c, now, 100)
            .await
            .unwrap()
            .is_empty(),
        "each is taken once"
    );
    assert_eq!(
        outbox::due(&mut *c, now + Duration::hours(1))
            .await
            .unwrap(),
        outbox::Due::default(),
        "nothing left to do"
    );
}

/// The mailer's store: due copies are claimed oldest first under a lease (a rival passes held
/// rows by on PostgreSQL), hidden until the lease ends, claimed again after it with the stale
/// claim unable to record its outcome; stale copies expire; a sent copy is never claimed again.
pub async fn notification_emails_are_claimed_once_under_a_lease(db: Arc<dyn Database>) {
    use crate::notifications::{self as n, EmailOutcome, Notification};
    let (t, u) = setup(&*db, "bank").await;
    let note = |at: OffsetDateTime, key: &str| Notification {
        tenant_id: t.id,
        id: Uuid::new_v4(),
        user_id: u.id,
        kind: "case.assigned".into(),
        message: "Case CASE-2026-000001 was assigned to you".into(),
        case_id: None,
        data: json!({}),
        source_key: key.into(),
        created_at: at,
        read_at: None,
        email_state: Some("pending".into()),
        emailed_at: None,
    };
    let (a, b, c) = (
        note(T0, "a"),
        note(T0 + Duration::seconds(1), "b"),
        note(T0 + Duration::seconds(2), "c"),
    );
    let mut conn = db.conn().await.unwrap();
    for x in [&a, &b, &c] {
        assert!(n::insert(&mut *conn, x).await.unwrap());
    }
    assert!(
        !n::insert(&mut *conn, &a).await.unwrap(),
        "once per source key"
    );
    drop(conn);
    let now = T0 + Duration::minutes(1);
    let lease = now + Duration::minutes(5);
    let mut holder = db.begin().await.unwrap();
    let first = n::claim_emails(&mut *holder, now, lease, 2).await.unwrap();
    let ids: Vec<Uuid> = first.iter().map(|j| j.notification.id).collect();
    assert_eq!(ids, [a.id, b.id], "oldest due first");
    assert_eq!(first[0].to_email, "ana@bank.example");
    assert!(first[0].to_active && first[0].attempts == 1);
    if db.dialect() == crate::Dialect::Postgres {
        let mut rival = db.begin().await.unwrap();
        let next = n::claim_emails(&mut *rival, now, lease, 10).await.unwrap();
        let ids: Vec<Uuid> = next.iter().map(|j| j.notification.id).collect();
        assert_eq!(ids, [c.id], "held copies are passed by");
        // Undone at once, releasing what it holds before the next claim (a dropped
        // transaction lets go only when its connection goes back to the pool).
        rival.rollback().await.unwrap();
    }
    holder.commit().await.unwrap();
    // Leased: only the third is due now.
    let mut tx = db.begin().await.unwrap();
    let rest = n::claim_emails(&mut *tx, now, lease, 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    tx.commit().await.unwrap();
    let mut conn = db.conn().await.unwrap();
    assert!(
        n::email_outcome(&mut *conn, &rest[0], &EmailOutcome::Sent, now)
            .await
            .unwrap()
    );
    // After the lease, `a` and `b` come back with a new attempt; the first claim is stale.
    let later = lease + Duration::seconds(1);
    let mut tx = db.begin().await.unwrap();
    let again = n::claim_emails(&mut *tx, later, later + Duration::minutes(5), 10)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(again.len(), 2, "the sent copy is not claimed again");
    // Equal lease ends: which of the two comes first is the id's business.
    let job = |id: Uuid| again.iter().find(|j| j.notification.id == id).unwrap();
    let (ja, jb) = (job(a.id), job(b.id));
    assert_eq!((ja.attempts, jb.attempts), (2, 2));
    let stale = first.iter().find(|j| j.notification.id == a.id).unwrap();
    assert!(
        !n::email_outcome(&mut *conn, stale, &EmailOutcome::Sent, later)
            .await
            .unwrap()
    );
    assert!(
        n::email_outcome(&mut *conn, ja, &EmailOutcome::Failed("550".into()), later)
            .await
            .unwrap()
    );
    // `b` is retried later, then expires once it is a day old.
    let retry_at = later + Duration::minutes(1);
    assert!(
        n::email_outcome(
            &mut *conn,
            jb,
            &EmailOutcome::Retry(retry_at, "421".into()),
            later
        )
        .await
        .unwrap()
    );
    assert!(!n::email_due_before(&mut *conn, later).await.unwrap());
    assert!(n::email_due_before(&mut *conn, retry_at).await.unwrap());
    let day_on = T0 + Duration::days(1) + Duration::seconds(2);
    assert_eq!(
        n::expire_emails(&mut *conn, day_on, day_on - Duration::days(1), "stale")
            .await
            .unwrap(),
        1
    );
    assert_eq!(n::emails_pending(&mut *conn).await.unwrap(), 0);
    let states: Vec<Option<String>> = n::list(&mut *conn, t.id, u.id, false, 10, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.email_state)
        .collect();
    assert_eq!(
        states,
        [
            Some("sent".into()),
            Some("expired".into()),
            Some("failed".into())
        ],
        "newest first: c sent, b expired, a failed"
    );
}

fn stored_sar(
    t: TenantId,
    work_item: CaseId,
    case: CaseId,
    deadline_at: OffsetDateTime,
) -> crate::sars::StoredSar {
    crate::sars::StoredSar {
        tenant_id: t,
        id: work_item,
        case_id: case,
        filing_type: "initial".into(),
        jurisdiction: "fincen".into(),
        prior_report_id: None,
        prior_filed_on: None,
        detected_on: "2026-03-01".into(),
        opened_on: "2026-03-01".into(),
        deadline_at,
        deadline: json!({"due_on": "2026-03-31", "days": 30}),
        content: json!({"narrative": "Structured cash deposits", "subjects": []}),
        checks: json!({}),
        transmitter: None,
        filing_reference: None,
        submitted_at: None,
        submitted_by: None,
        bsa_id: None,
        acknowledgement: None,
        acknowledged_at: None,
        warnings_sent: 0,
        next_warning_at: Some(datetime!(2026-03-17 00:00 UTC)),
        created_by: None,
        created_at: T0,
        updated_at: T0,
        version: 1,
        status: String::new(),
        reference: String::new(),
    }
}

/// A report reads its status and reference from its work item; lists filter by status,
/// jurisdiction and deadline, newest first, inside the tenant; a version check refuses a stale
/// write; the deadline sweep sees only reports whose next warning is due, and a warning is
/// claimed once (compare-and-swap); the filed document and the prior filing are found again.
pub async fn sars_join_their_work_item_and_warnings_are_claimed_once(db: Arc<dyn Database>) {
    use crate::sars::{self, SarFilter};
    let (t, _) = setup(&*db, "acme").await;
    let (other, _) = setup(&*db, "globex").await;
    case_fixture(&*db, &t).await;
    case_fixture(&*db, &other).await;
    let mut c = db.conn().await.unwrap();
    let origin = stored_case(t.id, 1, "investigating", T0);
    let item = stored_case(t.id, 2, "draft", T0);
    let later_item = stored_case(t.id, 3, "pending_review", T0 + Duration::seconds(1));
    let foreign_case = stored_case(other.id, 1, "open", T0);
    let foreign_item = stored_case(other.id, 2, "draft", T0);
    crate::cases::insert_many(&mut *c, &[origin.clone(), item.clone(), later_item.clone()])
        .await
        .unwrap();
    crate::cases::insert_many(&mut *c, &[foreign_case.clone(), foreign_item.clone()])
        .await
        .unwrap();
    let due = datetime!(2026-03-31 23:59:59.999999 UTC);
    let first = stored_sar(t.id, item.id, origin.id, due);
    let mut second = stored_sar(t.id, later_item.id, origin.id, due + Duration::days(30));
    second.created_at = T0 + Duration::seconds(1);
    second.jurisdiction = "goaml".into();
    second.next_warning_at = Some(datetime!(2026-04-16 00:00 UTC));
    sars::insert(&mut *c, &first).await.unwrap();
    sars::insert(&mut *c, &second).await.unwrap();
    let mut foreign = stored_sar(other.id, foreign_item.id, foreign_case.id, due);
    foreign.next_warning_at = Some(datetime!(2026-03-18 00:00 UTC));
    sars::insert(&mut *c, &foreign).await.unwrap();

    // Read back with the work item's status and reference, and exactly what was written.
    let got = sars::get(&mut *c, t.id, item.id).await.unwrap().unwrap();
    assert_eq!(got.status, "draft");
    assert_eq!(got.reference, item.reference);
    assert_eq!(got.deadline_at, due);
    assert_eq!(got.content, first.content);
    assert_eq!(got.next_warning_at, first.next_warning_at);
    assert!(
        sars::get(&mut *c, other.id, item.id)
            .await
            .unwrap()
            .is_none(),
        "tenant in every key"
    );

    let ids = |v: Vec<crate::sars::StoredSar>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
    let all = sars::list(&mut *c, t.id, &SarFilter::default(), 50, 0)
        .await
        .unwrap();
    assert_eq!(
        ids(all),
        vec![later_item.id, item.id],
        "newest first, own tenant only"
    );
    let f = SarFilter {
        status: Some("pending_review".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(sars::list(&mut *c, t.id, &f, 50, 0).await.unwrap()),
        vec![later_item.id]
    );
    let f = SarFilter {
        deadline_before: Some(datetime!(2026-04-01 00:00 UTC)),
        ..Default::default()
    };
    assert_eq!(
        ids(sars::list(&mut *c, t.id, &f, 50, 0).await.unwrap()),
        vec![item.id]
    );
    let f = SarFilter {
        jurisdiction: Some("goaml".into()),
        case_id: Some(origin.id),
        ..Default::default()
    };
    assert_eq!(
        ids(sars::list(&mut *c, t.id, &f, 50, 0).await.unwrap()),
        vec![later_item.id]
    );

    // Optimistic concurrency.
    let mut changed = got.clone();
    changed.version = 2;
    changed.content = json!({"narrative": "edited"});
    assert!(sars::update(&mut *c, &changed, 1).await.unwrap());
    assert!(
        !sars::update(&mut *c, &changed, 1).await.unwrap(),
        "a stale version loses"
    );
    assert_eq!(
        sars::get(&mut *c, t.id, item.id)
            .await
            .unwrap()
            .unwrap()
            .content,
        changed.content
    );

    // The sweep's view: what is due, across tenants, most overdue first.
    let due_now = |at| {
        let db = db.clone();
        async move {
            let mut c = db.conn().await.unwrap();
            ids(sars::warnings_due(&mut *c, at, 10).await.unwrap())
        }
    };
    assert!(due_now(datetime!(2026-03-16 23:00 UTC)).await.is_empty());
    assert_eq!(
        due_now(datetime!(2026-03-18 08:00 UTC)).await,
        vec![item.id, foreign_item.id]
    );
    let next = Some(datetime!(2026-03-24 00:00 UTC));
    assert!(
        sars::mark_warned(&mut *c, t.id, item.id, 0, 1, next)
            .await
            .unwrap()
    );
    assert!(
        !sars::mark_warned(&mut *c, t.id, item.id, 0, 1, next)
            .await
            .unwrap(),
        "claimed once"
    );
    assert!(
        !sars::mark_warned(&mut *c, other.id, item.id, 1, 2, None)
            .await
            .unwrap()
    );
    assert_eq!(
        due_now(datetime!(2026-03-18 08:00 UTC)).await,
        vec![foreign_item.id]
    );
    assert!(
        sars::mark_warned(&mut *c, t.id, item.id, 1, 1, None)
            .await
            .unwrap()
    );
    assert!(
        !due_now(datetime!(2027-01-01 00:00 UTC))
            .await
            .contains(&item.id),
        "none left"
    );

    // The filed document and the prior filing.
    assert_eq!(
        sars::filed_document(&mut *c, t.id, item.id).await.unwrap(),
        None
    );
    let xml = "<fc2:EFilingBatchXML>é &amp; ü</fc2:EFilingBatchXML>";
    sars::set_filed_document(&mut *c, t.id, item.id, xml)
        .await
        .unwrap();
    assert_eq!(
        sars::filed_document(&mut *c, t.id, item.id)
            .await
            .unwrap()
            .as_deref(),
        Some(xml)
    );
    assert_eq!(
        sars::filed_document(&mut *c, other.id, item.id)
            .await
            .unwrap(),
        None
    );
    let mut filed = sars::get(&mut *c, t.id, item.id).await.unwrap().unwrap();
    filed.version = 3;
    filed.filing_reference = Some("SANDBOX-SAR-ABCD1234".into());
    filed.submitted_at = Some(T0 + Duration::days(2));
    assert!(sars::update(&mut *c, &filed, 2).await.unwrap());
    assert_eq!(
        sars::filed_at(&mut *c, t.id, "SANDBOX-SAR-ABCD1234")
            .await
            .unwrap(),
        Some(T0 + Duration::days(2))
    );
    assert_eq!(
        sars::filed_at(&mut *c, other.id, "SANDBOX-SAR-ABCD1234")
            .await
            .unwrap(),
        None
    );

    // The filing profile: created once, then compare-and-swap.
    let p = json!({"filer": {"name": "Acme Bank"}});
    assert_eq!(sars::profile(&mut *c, t.id).await.unwrap(), None);
    assert!(
        sars::put_profile(&mut *c, t.id, &p, None, T0, 0)
            .await
            .unwrap()
    );
    assert!(
        !sars::put_profile(&mut *c, t.id, &p, None, T0, 0)
            .await
            .unwrap(),
        "already there"
    );
    assert!(
        sars::put_profile(&mut *c, t.id, &json!({}), None, T0, 1)
            .await
            .unwrap()
    );
    assert!(
        !sars::put_profile(&mut *c, t.id, &p, None, T0, 1)
            .await
            .unwrap(),
        "stale"
    );
    assert_eq!(
        sars::profile(&mut *c, t.id).await.unwrap(),
        Some((json!({}), 2))
    );
    assert_eq!(sars::profile(&mut *c, other.id).await.unwrap(), None);
}

/// An active registration of `tenant`, sending every event to `url`.
fn webhook(tenant: TenantId, url: &str, at: OffsetDateTime) -> crate::webhooks::Webhook {
    crate::webhooks::Webhook {
        tenant_id: tenant,
        id: Uuid::now_v7(),
        url: url.into(),
        description: None,
        events: json!(["*"]),
        active: true,
        disabled_reason: None,
        secret: "sealed".into(),
        previous_secret: None,
        previous_secret_until: None,
        consecutive_failures: 0,
        circuit_open_until: None,
        created_by: None,
        created_at: at,
        updated_at: at,
        deleted_at: None,
        version: 1,
    }
}

/// The fan-out takes events without their bodies and reads those of the events it names, of
/// each tenant, in statements of a fixed size.
pub async fn fan_out_reads_the_bodies_it_is_asked_for(db: Arc<dyn Database>) {
    use crate::outbox;
    let (a, _) = setup(&*db, "bank").await;
    let (b, _) = setup(&*db, "other").await;
    let mut c = db.conn().await.unwrap();
    let mut sent = Vec::new();
    for i in 0..100 {
        let mut e = outbox_event(
            if i % 2 == 0 { a.id } else { b.id },
            None,
            T0 + Duration::seconds(i),
        );
        // Every kind of JSON value, escapes and non-ASCII text: PostgreSQL keeps the body as
        // the text sent (`json`), SQLite as TEXT; both must give back the same document.
        e.data = json!({ "case": { "n": i, "title": format!("case \"{i}\" ✓\n\t\\ 🙂"),
            "score": -12.5, "big": 9_007_199_254_740_993_i64, "ok": i % 2 == 0, "none": null,
            "reasons": ["a", {"b": [1, 2.25, []]}], "fields": {} } });
        outbox::insert(&mut *c, &e).await.unwrap();
        sent.push(e);
    }
    let now = T0 + Duration::minutes(5);
    let mut taken = outbox::take_for_fan_out(&mut *c, now, 200).await.unwrap();
    assert_eq!(taken.len(), 100);
    assert!(
        taken.iter().all(|e| e.data.is_null()),
        "taken without bodies"
    );
    // Two in three, from both tenants: more than two statements' worth.
    let wanted = |e: &outbox::OutboxEvent| (e.created_at - T0).whole_seconds() % 3 != 0;
    outbox::fill_data(&mut *c, &mut taken, wanted)
        .await
        .unwrap();
    for (got, sent) in taken.iter().zip(&sent) {
        assert_eq!(got.id, sent.id, "in commit order");
        if wanted(sent) {
            assert_eq!(got.data, sent.data);
        } else {
            assert!(got.data.is_null(), "{} not read", got.id);
        }
    }
    let mut none = outbox::take_for_fan_out(&mut *c, now, 100).await.unwrap();
    outbox::fill_data(&mut *c, &mut none, |_| true)
        .await
        .unwrap();
    assert!(none.is_empty());
}

/// Fan-out marks the plain events it takes dispatched (an event with work stays due), an event
/// an earlier version fanned out without settling is reported and settled, and the active
/// registrations of a round's tenants are read for many tenants at once: each tenant's own,
/// once, oldest first, none that is off or deleted, none of a tenant outside the list.
pub async fn fan_out_settles_plain_events_and_reads_hooks_of_many_tenants(db: Arc<dyn Database>) {
    use crate::outbox::{self, Due};
    use crate::webhooks as w;
    let (t, _) = setup(&*db, "bank").await;
    let ev = |actions: Option<serde_json::Value>, secs: i64| {
        outbox_event(t.id, actions, T0 + Duration::seconds(secs))
    };
    let (plain, work) = (ev(None, 1), ev(Some(json!({"post_actions": []})), 2));
    let mut c = db.conn().await.unwrap();
    let now = T0 + Duration::minutes(1);
    assert_eq!(outbox::due(&mut *c, now).await.unwrap(), Due::default());
    for e in [&plain, &work] {
        outbox::insert(&mut *c, e).await.unwrap();
    }
    let due = |work, fan_out, settle| Due {
        work,
        fan_out,
        settle,
    };
    assert_eq!(
        outbox::due(&mut *c, now).await.unwrap(),
        due(true, true, false)
    );
    let taken = outbox::take_for_fan_out(&mut *c, now, 10).await.unwrap();
    assert_eq!(
        taken.iter().map(|e| e.id).collect::<Vec<_>>(),
        [plain.id, work.id]
    );
    let stored = outbox::by_type(&mut *c, t.id, "case.status_changed")
        .await
        .unwrap();
    let dispatched: Vec<_> = stored.iter().map(|e| (e.id, e.dispatched_at)).collect();
    assert_eq!(dispatched, [(plain.id, Some(now)), (work.id, None)]);
    assert_eq!(
        outbox::due(&mut *c, now).await.unwrap(),
        due(true, false, false)
    );

    // Fanned out by an earlier version, which left settling to a second statement.
    let left = ev(None, 3);
    outbox::insert(&mut *c, &left).await.unwrap();
    c.execute(
        "UPDATE outbox SET fanned_out_at = $3 WHERE tenant_id = $1 AND id = $2",
        &[t.id.into(), left.id.into(), now.into()],
    )
    .await
    .unwrap();
    assert_eq!(
        outbox::due(&mut *c, now).await.unwrap(),
        due(true, false, true)
    );
    assert_eq!(outbox::settle_plain(&mut *c, now, 10).await.unwrap(), 1);
    assert_eq!(
        outbox::due(&mut *c, now).await.unwrap(),
        due(true, false, false)
    );

    // More tenants than one statement reads.
    let mut tenants = vec![t.id];
    let mut expected = std::collections::HashMap::new();
    for i in 0..40 {
        let other = tenant(&format!("bank-{i}"));
        tenants::insert(&mut *c, &other).await.unwrap();
        let h = webhook(other.id, &format!("https://{i}.example"), T0);
        w::insert(&mut *c, &h).await.unwrap();
        tenants.push(other.id);
        expected.insert(other.id, vec![h.id]);
    }
    let older = webhook(t.id, "https://older.example", T0 - Duration::days(1));
    let newer = webhook(t.id, "https://newer.example", T0);
    let mut off = webhook(t.id, "https://off.example", T0);
    off.active = false;
    let mut gone = webhook(t.id, "https://gone.example", T0);
    gone.deleted_at = Some(now);
    for h in [&newer, &off, &gone, &older] {
        w::insert(&mut *c, h).await.unwrap();
    }
    expected.insert(t.id, vec![older.id, newer.id]);
    let quiet = tenant("quiet");
    tenants::insert(&mut *c, &quiet).await.unwrap();
    tenants.push(quiet.id);
    expected.insert(quiet.id, vec![]);
    let outside = tenant("outside");
    tenants::insert(&mut *c, &outside).await.unwrap();
    w::insert(&mut *c, &webhook(outside.id, "https://x.example", T0))
        .await
        .unwrap();

    // A tenant named twice (by two events of a round) gets its registrations once.
    tenants.push(t.id);
    let found = w::active_of(&mut *c, &tenants).await.unwrap();
    let ids: std::collections::HashMap<_, Vec<_>> = found
        .into_iter()
        .map(|(k, hooks)| (k, hooks.into_iter().map(|h| h.id).collect()))
        .collect();
    assert_eq!(ids, expected);
    assert!(w::active_of(&mut *c, &[]).await.unwrap().is_empty());
}

/// Deliveries are claimed oldest due first across registrations, a case's later event waits
/// for its earlier one, registrations that are off or whose circuit is open are passed by, a
/// stale attempt cannot record its outcome, and a round's outcomes move the circuit breaker as
/// the same attempts one by one would.
pub async fn webhook_claims_take_the_oldest_due_in_case_order(db: Arc<dyn Database>) {
    use crate::webhooks::{self as w, Delivery, Outcomes, Webhook};
    let (t, _) = setup(&*db, "bank").await;
    let hook = |url: &str| webhook(t.id, url, T0);
    let (a, b, off) = (
        hook("https://a.example"),
        hook("https://b.example"),
        hook("https://c.example"),
    );
    let delivery = |h: &Webhook, case: &str, secs: i64| Delivery {
        tenant_id: t.id,
        id: Uuid::new_v4(),
        webhook_id: h.id,
        event_id: Uuid::now_v7(),
        event_type: "case.updated".into(),
        body: "{}".into(),
        ordering_key: Some(case.into()),
        state: "pending".into(),
        attempt: 0,
        next_attempt_at: Some(T0 + Duration::seconds(secs)),
        status_code: None,
        error: None,
        duration_ms: None,
        redelivery_of: None,
        created_at: T0 + Duration::seconds(secs),
        updated_at: T0 + Duration::seconds(secs),
    };
    let x1 = delivery(&a, "x", 1);
    let bx = delivery(&b, "x", 2);
    let y = delivery(&a, "y", 3);
    let x2 = delivery(&a, "x", 4);
    // Committed in the same instant as x2, after it: the event id breaks the tie.
    let mut x3 = delivery(&a, "x", 4);
    x3.event_id = Uuid::from_u128(x2.event_id.as_u128() + 1);
    let paused = delivery(&off, "z", 0);
    let mut c = db.conn().await.unwrap();
    for h in [&a, &b, &off] {
        w::insert(&mut *c, h).await.unwrap();
    }
    let mut off_now = off.clone();
    off_now.active = false;
    assert!(w::update(&mut *c, &off_now, 1).await.unwrap());
    let all = [
        x1.clone(),
        y.clone(),
        bx.clone(),
        x3.clone(),
        x2.clone(),
        paused.clone(),
    ];
    assert_eq!(w::insert_deliveries(&mut *c, &all).await.unwrap(), 6);
    assert_eq!(
        w::insert_deliveries(&mut *c, &all).await.unwrap(),
        0,
        "a first delivery is added once"
    );
    drop(c);
    let now = T0 + Duration::minutes(1);
    let lease = now + Duration::minutes(1);
    let claim = |max: i64| {
        let db = db.clone();
        async move {
            let mut tx = db.begin().await.unwrap();
            let got = w::claim_due(&mut *tx, now, lease, max).await.unwrap();
            tx.commit().await.unwrap();
            got
        }
    };
    let ids = |ds: &[Delivery]| ds.iter().map(|d| d.id).collect::<Vec<_>>();
    let first = claim(2).await;
    assert_eq!(
        ids(&first),
        [x1.id, bx.id],
        "oldest due first across registrations, at most max"
    );
    let mut c = db.conn().await.unwrap();
    let stored = w::get_delivery(&mut *c, t.id, a.id, x1.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.attempt, stored.next_attempt_at), (1, Some(lease)));
    drop(c);
    assert_eq!(
        ids(&claim(10).await),
        [y.id],
        "x's second event to a waits for its first; the paused registration's is passed by"
    );
    assert!(
        claim(10).await.is_empty(),
        "claimed ones are hidden by their lease"
    );

    // x1 succeeds, bx's outcome comes from an attempt that lost its lease: only x1 is written.
    let mut done = first.clone();
    done[0].state = "succeeded".into();
    done[0].next_attempt_at = None;
    done[1].attempt = 0;
    done[1].state = "succeeded".into();
    let mut tx = db.begin().await.unwrap();
    assert_eq!(w::finish(&mut *tx, &done, now).await.unwrap(), [x1.id]);
    tx.commit().await.unwrap();
    assert_eq!(
        ids(&claim(10).await),
        [x2.id],
        "now x's second event goes; its third, of the same instant, waits for it"
    );

    // Outcomes of a round: failures, then a success, then two failures leave two in a row and
    // the circuit closed; five more open it, and a's deliveries wait.
    let mut o = Outcomes::default();
    for ok in [false, false, true, false, false] {
        o.push(ok);
    }
    assert_eq!(
        o,
        Outcomes {
            succeeded: true,
            failures_since: 2
        }
    );
    let opened = now + Duration::minutes(30);
    let mut c = db.conn().await.unwrap();
    w::record_outcome(&mut *c, t.id, a.id, o, 5, |_| opened)
        .await
        .unwrap();
    let got = w::get(&mut *c, t.id, a.id, false).await.unwrap().unwrap();
    assert_eq!(
        (got.consecutive_failures, got.circuit_open_until),
        (2, None)
    );
    let mut more = Outcomes::default();
    for _ in 0..3 {
        more.push(false);
    }
    w::record_outcome(&mut *c, t.id, a.id, more, 5, |n| {
        assert_eq!(n, 5);
        opened
    })
    .await
    .unwrap();
    let got = w::get(&mut *c, t.id, a.id, false).await.unwrap().unwrap();
    assert_eq!(
        (got.consecutive_failures, got.circuit_open_until),
        (5, Some(opened))
    );
    let late = delivery(&a, "q", 5);
    assert!(w::insert_delivery(&mut *c, &late).await.unwrap());
    drop(c);
    assert!(
        claim(10).await.is_empty(),
        "an open circuit holds its deliveries"
    );
    let mut c = db.conn().await.unwrap();
    let mut ok = Outcomes::default();
    ok.push(true);
    w::record_outcome(&mut *c, t.id, a.id, ok, 5, |_| opened)
        .await
        .unwrap();
    drop(c);
    assert_eq!(
        ids(&claim(10).await),
        [late.id],
        "a success closes it again (x's third event still waits for its second)"
    );
}

/// A statement and its arguments.
type Sent = (String, Vec<crate::Val>);

/// A connection that records every statement sent through it, for checking their plans.
struct Recording<'a> {
    inner: &'a mut dyn crate::Conn,
    sent: Vec<Sent>,
}

#[async_trait::async_trait]
impl crate::Conn for Recording<'_> {
    fn dialect(&self) -> crate::Dialect {
        self.inner.dialect()
    }
    async fn execute(&mut self, sql: &str, args: &[crate::Val]) -> crate::StoreResult<u64> {
        self.sent.push((sql.to_string(), args.to_vec()));
        self.inner.execute(sql, args).await
    }
    async fn fetch_all(
        &mut self,
        sql: &str,
        args: &[crate::Val],
    ) -> crate::StoreResult<Vec<crate::Row>> {
        self.sent.push((sql.to_string(), args.to_vec()));
        self.inner.fetch_all(sql, args).await
    }
}

/// SQLite only (PostgreSQL plans from the statistics its autovacuum gathers): on a database
/// never analysed, the frequent reads are answered by index searches, never by reading a whole
/// tenant or table. Without statistics SQLite took `tenant_id = ?` to match a handful of rows,
/// so a case read walked the tenant's cases for its alert list, a list page walked the tenant's
/// `created_at` index, a search asked the full-text index once per case, the idle outbox poll
/// read the whole outbox and a transition's task check read every open task of the tenant.
/// Each statement the store sends is recorded and its `EXPLAIN QUERY PLAN` checked: no step
/// searches by the tenant alone or scans a table, and the named indexes are the ones used.
pub async fn sqlite_reads_search_indexes_without_statistics(db: Arc<dyn Database>) {
    use crate::cases::{self, CaseFilter, CaseSort, Count};
    assert_eq!(db.dialect(), crate::Dialect::Sqlite);
    let (t, u) = setup(&*db, "bank").await;
    case_fixture(&*db, &t).await;
    let mut k = stored_case(t.id, 1, "open", T0);
    k.assigned_to = Some(u.id.0);
    let mut tx = db.begin().await.unwrap();
    cases::insert_many(&mut *tx, std::slice::from_ref(&k))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut c = db.conn().await.unwrap();
    // New connections gather statistics (`PRAGMA optimize`); forget them, on this connection
    // too, to see what a database not yet analysed, or analysed while small, is planned like.
    if c.fetch_optional(
        "SELECT 1 AS x FROM sqlite_master WHERE name = 'sqlite_stat1'",
        &[],
    )
    .await
    .unwrap()
    .is_some()
    {
        c.execute("DELETE FROM sqlite_stat1", &[]).await.unwrap();
        c.execute("ANALYZE sqlite_schema", &[]).await.unwrap();
    }
    // (what, the statements it sends, an index each must use where it names one)
    let mut checks: Vec<(&str, Vec<Sent>, Option<&str>)> = Vec::new();
    macro_rules! record {
        ($what:expr, $index:expr, |$r:ident| $call:expr) => {{
            let mut $r = Recording {
                inner: &mut *c,
                sent: Vec::new(),
            };
            $call.await.unwrap();
            checks.push(($what, $r.sent, $index));
        }};
    }
    record!("a case read", Some("cases_by_parent"), |r| cases::get(
        &mut r, t.id, k.id
    ));
    let lists = [
        (
            "a list page by status",
            CaseFilter {
                status: Some("open".into()),
                ..Default::default()
            },
        ),
        (
            "a list page by assignee",
            CaseFilter {
                assigned_to: Some(u.id.0),
                ..Default::default()
            },
        ),
        (
            "a search",
            CaseFilter {
                words: vec!["ledger".into()],
                ..Default::default()
            },
        ),
    ];
    for (what, f) in &lists {
        record!(*what, None, |r| cases::list(
            &mut r,
            t.id,
            f,
            CaseSort::CreatedDesc,
            (50, 0),
            Count::UpTo(10_000)
        ));
    }
    record!("the idle outbox poll", Some("outbox_to_settle"), |r| {
        crate::outbox::due(&mut r, T0)
    });
    record!("a transition's task check", Some("tasks_by_case"), |r| {
        crate::tasks::blocking(&mut r, t.id, k.id, "open")
    });
    record!("the unread count", Some("notifications_unread"), |r| {
        crate::notifications::count(&mut r, t.id, u.id, true)
    });
    record!("a filing looked up", None, |r| crate::sars::filed_at(
        &mut r,
        t.id,
        "31000000000001"
    ));
    let by_actor = audit::AuditFilter {
        actor: Some(u.id.to_string()),
        ..Default::default()
    };
    record!(
        "the audit trail of one actor",
        Some("audit_by_actor_id"),
        |r| { audit::list(&mut r, t.id, &by_actor, 50, 0) }
    );
    for (what, sent, index) in checks {
        assert!(!sent.is_empty(), "{what}: nothing was sent");
        let mut plans = Vec::new();
        for (sql, args) in &sent {
            let plan: Vec<String> = c
                .fetch_all(&format!("EXPLAIN QUERY PLAN {sql}"), args)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.text("detail").unwrap())
                .collect();
            for step in &plan {
                // A scan may read a full-text match, a subquery or a query's own intermediate
                // rows (`matched`, `m`, `p`, `x`), or one of the outbox's partial indexes, which
                // hold only the events still waiting; never a table or a whole index.
                let whole_table = step.strip_prefix("SCAN ").is_some_and(|rest| {
                    let partial = ["outbox_to_fan_out", "outbox_work", "outbox_to_settle"]
                        .iter()
                        .any(|i| rest.ends_with(&format!("INDEX {i}")));
                    !partial
                        && !rest.contains("VIRTUAL TABLE")
                        && !rest.starts_with('(')
                        && !["CONSTANT ROW", "matched", "m", "p", "x"].contains(&rest)
                });
                assert!(
                    !whole_table && !step.ends_with("(tenant_id=?)"),
                    "{what}: `{step}` reads a whole table or tenant\n{sql}\n{plan:#?}"
                );
            }
            plans.extend(plan);
        }
        if let Some(index) = index {
            assert!(
                plans.iter().any(|s| s.contains(&format!("INDEX {index} "))
                    || s.ends_with(&format!("INDEX {index}"))),
                "{what}: {index} unused\n{plans:#?}"
            );
        }
    }
}

/// The outbox's retention: events settled (fanned out and dispatched) before the cut-off go,
/// the earliest first, in batches, with their post-action runs; an event still retrying its
/// work, one not yet fanned out (with or without its work done) and one settled after the
/// cut-off stay, and so do the runs of the retrying one. A rival purge passes events another holds by (PostgreSQL).
pub async fn settled_events_are_purged_after_their_retention(db: Arc<dyn Database>) {
    use crate::outbox::{self, PostActionRun};
    let (a, _) = setup(&*db, "bank").await;
    let (b, _) = setup(&*db, "other").await;
    let work = || Some(json!({"post_actions": [{"type": "emit_event", "event": "x"}]}));
    let settled_at = T0 + Duration::minutes(1);
    let run_of = |e: &outbox::OutboxEvent| PostActionRun {
        tenant_id: e.tenant_id,
        event_id: e.id,
        idx: 0,
        action_type: "emit_event".into(),
        case_id: Uuid::new_v4(),
        outcome: "done".into(),
        error: None,
        ran_at: settled_at,
    };
    // 40 events with work, from both tenants (more than one statement's worth of runs), and
    // one plain event, all settled a minute after T0; one event whose work is still retrying.
    let worked: Vec<_> = (0..40)
        .map(|i| {
            let t = if i % 2 == 0 { a.id } else { b.id };
            outbox_event(t, work(), T0 + Duration::milliseconds(i))
        })
        .collect();
    let plain = outbox_event(a.id, None, T0);
    let retrying = outbox_event(b.id, work(), T0);
    let mut c = db.conn().await.unwrap();
    for e in worked.iter().chain([&plain, &retrying]) {
        outbox::insert(&mut *c, e).await.unwrap();
    }
    assert_eq!(
        outbox::take_for_fan_out(&mut *c, settled_at, 100)
            .await
            .unwrap()
            .len(),
        42
    );
    for e in &worked {
        assert!(outbox::record_run(&mut *c, &run_of(e)).await.unwrap());
        assert!(outbox::done(&mut *c, e, settled_at).await.unwrap());
    }
    let retry_run = run_of(&retrying);
    assert!(outbox::record_run(&mut *c, &retry_run).await.unwrap());
    outbox::retry_at(
        &mut *c,
        &retrying,
        settled_at + Duration::hours(1),
        "internal: db",
    )
    .await
    .unwrap();
    // Settled two days later, and one not fanned out at all.
    let recent = outbox_event(a.id, None, T0 + Duration::days(2));
    outbox::insert(&mut *c, &recent).await.unwrap();
    outbox::take_for_fan_out(&mut *c, T0 + Duration::days(2), 100)
        .await
        .unwrap();
    let waiting = outbox_event(a.id, None, T0);
    outbox::insert(&mut *c, &waiting).await.unwrap();
    // Its work done before its fan-out: dispatched long ago, still owed to the webhooks.
    let unfanned = outbox_event(b.id, work(), T0);
    outbox::insert(&mut *c, &unfanned).await.unwrap();
    assert!(outbox::done(&mut *c, &unfanned, settled_at).await.unwrap());

    let cut = T0 + Duration::days(1);
    assert!(
        !outbox::any_settled_before(&mut *c, settled_at)
            .await
            .unwrap(),
        "the cut-off is exclusive"
    );
    assert!(outbox::any_settled_before(&mut *c, cut).await.unwrap());
    drop(c);
    let purge = |max: i64| {
        let db = db.clone();
        async move {
            let mut tx = db.begin().await.unwrap();
            let n = outbox::purge_settled(&mut *tx, cut, max).await.unwrap();
            tx.commit().await.unwrap();
            n
        }
    };
    if db.dialect() == crate::Dialect::Postgres {
        let mut holder = db.begin().await.unwrap();
        assert_eq!(
            outbox::purge_settled(&mut *holder, cut, 1).await.unwrap(),
            1
        );
        let mut rival = db.begin().await.unwrap();
        assert_eq!(
            outbox::purge_settled(&mut *rival, cut, 5).await.unwrap(),
            5,
            "the held event is passed by, not waited for"
        );
        rival.rollback().await.unwrap();
        holder.commit().await.unwrap();
        assert_eq!(purge(30).await, 30);
    } else {
        assert_eq!(purge(31).await, 31);
    }
    assert_eq!(purge(100).await, 10, "41 in all");
    assert_eq!(purge(100).await, 0);

    let mut c = db.conn().await.unwrap();
    assert!(!outbox::any_settled_before(&mut *c, cut).await.unwrap());
    let mut left: Vec<Uuid> = Vec::new();
    for t in [a.id, b.id] {
        for e in outbox::by_type(&mut *c, t, "case.status_changed")
            .await
            .unwrap()
        {
            left.push(e.id);
        }
    }
    left.sort();
    let mut kept = vec![retrying.id, recent.id, waiting.id, unfanned.id];
    kept.sort();
    assert_eq!(left, kept);
    for e in &worked {
        assert!(
            outbox::runs_of(&mut *c, e.tenant_id, e.id)
                .await
                .unwrap()
                .is_empty()
        );
    }
    assert_eq!(
        outbox::runs_of(&mut *c, b.id, retrying.id).await.unwrap(),
        [retry_run],
        "a retrying event keeps what already ran"
    );
    // Past the later event's retention it goes too.
    drop(c);
    let mut tx = db.begin().await.unwrap();
    assert_eq!(
        outbox::purge_settled(&mut *tx, T0 + Duration::days(3), 100)
            .await
            .unwrap(),
        1
    );
    tx.commit().await.unwrap();
}

/// Writes queued with `Conn::defer` (a move's history row, case update and outbox event): the
/// transaction's next statement (a read or a write) sees them, each checked for the rows it
/// must change, its commit sends what is still queued; a queued write that misses its rows or
/// breaks a constraint fails the transaction with nothing of it kept (on PostgreSQL every later
/// statement fails too, so a caller cannot carry on without them), and a transaction rolled back
/// or dropped with queued writes leaves nothing. On PostgreSQL they are really held back until
/// then: the queued update has not yet locked its row.
pub async fn deferred_writes_go_out_before_the_next_statement(db: Arc<dyn Database>) {
    use crate::{Conn, Val, outbox};
    let (t, u) = setup(&*db, "bank").await;
    let pg = db.dialect() == crate::Dialect::Postgres;
    let rename = |id: Uuid, name: &str| -> Vec<Val> { vec![t.id.into(), id.into(), name.into()] };
    const RENAME: &str = "UPDATE users SET name = $3 WHERE tenant_id = $1 AND id = $2";
    async fn seen(c: &mut dyn Conn, t: TenantId, u: UserId) -> (String, i64) {
        let sql = "SELECT (SELECT name FROM users WHERE tenant_id = $1 AND id = $2) AS name, \
                   (SELECT count(*) FROM outbox WHERE tenant_id = $1 AND last_error IS NULL) \
                   AS events";
        let r = c.fetch_one(sql, &[t.into(), u.into()]).await.unwrap();
        (r.text("name").unwrap(), r.int("events").unwrap())
    }
    let now = |db: Arc<dyn Database>| async move {
        seen(&mut *db.conn().await.unwrap(), t.id, u.id).await
    };
    let ana = |events: i64| ("Ana Deferred".to_string(), events);

    let mut tx = db.begin().await.unwrap();
    tx.defer(RENAME, rename(u.id.0, "Ana Deferred"), 1)
        .await
        .unwrap();
    let first = outbox_event(t.id, None, T0);
    outbox::insert(&mut *tx, &first).await.unwrap();
    if pg {
        let mut other = db.begin().await.unwrap();
        let probe = "SELECT id FROM users WHERE tenant_id = $1 AND id = $2 FOR UPDATE NOWAIT";
        let args = [t.id.into(), u.id.0.into()];
        assert!(
            other.fetch_optional(probe, &args).await.is_ok(),
            "the queued update has not gone out"
        );
        other.rollback().await.unwrap();
        assert_eq!(seen(&mut *tx, t.id, u.id).await, ana(1));
        let mut other = db.begin().await.unwrap();
        let locked = other.fetch_optional(probe, &args).await.unwrap_err();
        assert!(locked.to_string().contains("lock"), "{locked}");
        drop(other);
    } else {
        assert_eq!(seen(&mut *tx, t.id, u.id).await, ana(1));
    }
    // Queued last: the commit sends it.
    outbox::insert(&mut *tx, &outbox_event(t.id, None, T0))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(now(db.clone()).await, ana(2));

    // Each write is held to its own count (two events, one person), and a write sends them.
    let mut tx = db.begin().await.unwrap();
    let mark = "UPDATE outbox SET last_error = $2 WHERE tenant_id = $1";
    tx.defer(mark, vec![t.id.into(), "marked".into()], 2)
        .await
        .unwrap();
    tx.defer(RENAME, rename(u.id.0, "Ana Marked"), 1)
        .await
        .unwrap();
    let touched = tx
        .execute(
            "UPDATE tenants SET name = name WHERE id = $1",
            &[t.id.into()],
        )
        .await
        .unwrap();
    assert_eq!(touched, 1);
    assert_eq!(
        seen(&mut *tx, t.id, u.id).await,
        ("Ana Marked".to_string(), 0)
    );
    // Rolled back with writes queued: none of it stays.
    outbox::insert(&mut *tx, &outbox_event(t.id, None, T0))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(now(db.clone()).await, ana(2));

    // A queued write that misses its row fails the transaction; none of it stays.
    let mut tx = db.begin().await.unwrap();
    outbox::insert(&mut *tx, &outbox_event(t.id, None, T0))
        .await
        .unwrap();
    tx.defer(RENAME, rename(u.id.0, "Ana Again"), 1)
        .await
        .unwrap();
    let missed = match tx.defer(RENAME, rename(Uuid::new_v4(), "Nobody"), 1).await {
        Err(e) => {
            drop(tx);
            Err(e)
        }
        Ok(()) => tx.commit().await,
    };
    assert!(matches!(missed, Err(StoreError::Other(_))), "{missed:?}");
    assert_eq!(now(db.clone()).await, ana(2));

    // A queued write that breaks a constraint (an event id used before) fails as a conflict,
    // at the statement that sent it on PostgreSQL, and the transaction cannot go on.
    let mut tx = db.begin().await.unwrap();
    tx.defer(RENAME, rename(u.id.0, "Ana Twice"), 1)
        .await
        .unwrap();
    let twice = outbox::insert(&mut *tx, &first).await;
    let sent = if pg {
        twice.unwrap();
        tx.execute(
            "UPDATE tenants SET name = name WHERE id = $1",
            &[t.id.into()],
        )
        .await
    } else {
        twice.map(|()| 0)
    };
    assert!(matches!(sent, Err(StoreError::Conflict { .. })), "{sent:?}");
    if pg {
        let after = tx.fetch_optional("SELECT 1 AS one", &[]).await;
        assert!(after.is_err(), "a later statement after the failed send");
        assert!(tx.commit().await.is_err());
    } else {
        drop(tx);
    }
    assert_eq!(now(db.clone()).await, ana(2));

    // Dropped with queued writes: nothing.
    let mut tx = db.begin().await.unwrap();
    outbox::insert(&mut *tx, &outbox_event(t.id, None, T0))
        .await
        .unwrap();
    tx.defer(RENAME, rename(u.id.0, "Ana Dropped"), 1)
        .await
        .unwrap();
    drop(tx);
    assert_eq!(now(db.clone()).await, ana(2));
}
