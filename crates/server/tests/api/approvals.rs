//! Approval gates through the API (docs/workflows.md "Approval gates"): the seed scenario (a
//! high-value fraud case closes only after the compliance officer and then legal counsel
//! approve), vetoes, separation of duties, superseded and cancelled requests, the inbox,
//! deadlines with reminders, escalation and expiry fired by the timer, and races.
use crate::both_backends;
use crate::cases::{create_case, get_case, id_of, outbox, transition};
use crate::common::*;
use serde_json::{Value, json};
use time::Duration;

both_backends!(
    a_fraud_closure_needs_compliance_then_legal,
    one_rejection_vetoes_and_a_changed_case_supersedes,
    missed_deadlines_remind_escalate_and_expire_once,
    racing_approvers_and_timers_never_apply_twice,
    the_builtin_high_value_fraud_template_runs_end_to_end,
);

/// `CARD_FRAUD`: open → review → closed, closing through two sequential tiers (compliance, then
/// legal). `tiers` replaces the closing rule's tiers when given.
pub(crate) fn hv_fraud(tiers: Option<Value>) -> Value {
    let tiers = tiers.unwrap_or_else(|| {
        json!([
            {"name": "Compliance", "slots": [{"role": "compliance_officer"}], "quorum": "all",
             "deadline": "P2D", "reminders": ["PT24H"], "on_timeout": {"action": "escalate", "role": "mlro"}},
            {"name": "Legal", "slots": [{"role": "legal_counsel"}], "quorum": "all"}
        ])
    });
    json!({"name": "High-value fraud", "workflow": {
        "statuses": [
            {"key": "open", "label": "Open", "category": "open"},
            {"key": "review", "label": "Review", "category": "active"},
            {"key": "closed", "label": "Closed", "category": "terminal"}
        ],
        "initial_status": "open",
        "rules": [
            {"id": "submit", "from": "open", "to": "review"},
            {"id": "close", "from": "review", "to": "closed", "require_reason": true,
             "approval": {"tiers": tiers}}
        ]
    }})
}

/// Installs `CARD_FRAUD` and opens a case in `review`; answers its id.
pub(crate) async fn case_in_review(s: &TestServer, tiers: Option<Value>) -> String {
    let put = s
        .put("/case-types/CARD_FRAUD", s.a.key("admin"), hv_fraud(tiers))
        .await;
    assert!([200, 201].contains(&put.status.as_u16()), "{:#}", put.body);
    let analyst = s.a.key("analyst");
    let c = create_case(
        s,
        analyst,
        json!({"case_type": "CARD_FRAUD", "title": "Card fraud ring, EUR 2.4m", "priority": "high"}),
    )
    .await;
    let id = id_of(&c);
    transition(s, analyst, &id, "review", None)
        .await
        .assert_ok(200);
    id
}

/// Asks to close case `id` as `key`; answers the pending request.
pub(crate) async fn ask_to_close(s: &TestServer, key: &str, id: &str) -> Value {
    let r = transition(
        s,
        key,
        id,
        "closed",
        Some("Funds recovered, customer exited"),
    )
    .await;
    assert_eq!(r.status.as_u16(), 202, "{:#}", r.body);
    r.body["request"].clone()
}

pub(crate) async fn decide(
    s: &TestServer,
    key: &str,
    request: &str,
    verb: &str,
    comment: Option<&str>,
) -> Resp {
    let body = comment.map_or(json!({}), |c| json!({ "comment": c }));
    s.post(&format!("/transition-requests/{request}/{verb}"), key, body)
        .await
}

async fn inbox(s: &TestServer, key: &str) -> Vec<String> {
    s.get("/approvals?mine=true", key).await.assert_ok(200)["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect()
}

pub(crate) async fn timers(s: &TestServer) -> u64 {
    s.settled().await;
    casegate_service::approvals::run_timers(&s.svc, 100)
        .await
        .expect("approval timers")
}

async fn a_fraud_closure_needs_compliance_then_legal(b: Backend) {
    let s = start(b).await;
    let id = case_in_review(&s, None).await;
    let (analyst, co, legal) = (
        s.a.key("analyst"),
        s.a.key("compliance_officer"),
        s.a.key("legal_counsel"),
    );

    // A reason is still required before anything is asked of approvers.
    transition(&s, analyst, &id, "closed", None)
        .await
        .assert_error(422, "reason_required");
    let req = ask_to_close(&s, analyst, &id).await;
    let rid = id_of(&req);
    assert_eq!(req["status"], "pending");
    assert_eq!(
        (req["from"].as_str(), req["to"].as_str()),
        (Some("review"), Some("closed"))
    );
    assert_eq!(req["rule_id"], "close");
    assert_eq!(req["requested_by"], "analyst@acme.example");
    assert_eq!(req["current_tier"], 0);
    assert_eq!(
        req["tiers"][0]["deadline_at"],
        "2026-03-04T09:00:00.000000Z"
    );
    assert_eq!(
        req["tiers"][1]["deadline_at"],
        Value::Null,
        "not started yet"
    );

    // The case keeps its status, shows the request, and takes no other move meanwhile.
    let case = get_case(&s, analyst, &id).await;
    assert_eq!(case["status"], "review");
    assert_eq!(case["pending_request"]["id"], rid.as_str());
    transition(&s, analyst, &id, "closed", Some("again"))
        .await
        .assert_error(409, "request_pending");
    let moves = s.get(&format!("/cases/{id}/transitions"), analyst).await;
    let close = &moves.assert_ok(200)["transitions"][0];
    assert_eq!(close["requires_approval"], true);
    assert_eq!(close["blocked_by"][0]["code"], "request_pending");

    // The inbox shows the request to the compliance officer only.
    assert_eq!(inbox(&s, co).await, [rid.as_str()]);
    assert!(inbox(&s, legal).await.is_empty());
    let all = s.get("/approvals", analyst).await;
    assert_eq!(all.assert_ok(200)["requests"].as_array().unwrap().len(), 1);

    // Out of turn, without the permission, or from another organisation: refused, nothing changes.
    decide(&s, legal, &rid, "approve", None)
        .await
        .assert_error(403, "not_an_eligible_approver");
    decide(&s, analyst, &rid, "approve", None)
        .await
        .assert_error(403, "forbidden");
    decide(&s, s.b.key("compliance_officer"), &rid, "approve", None)
        .await
        .assert_error(404, "not_found");
    s.get(&format!("/transition-requests/{rid}"), s.b.key("admin"))
        .await
        .assert_error(404, "not_found");
    decide(&s, co, "not-a-uuid", "approve", None)
        .await
        .assert_error(404, "not_found");
    decide(&s, co, &rid, "approve", Some(&"x".repeat(5000)))
        .await
        .assert_error(422, "validation_failed");
    let r = s
        .post(
            &format!("/transition-requests/{rid}/approve"),
            co,
            json!({"comment": 5}),
        )
        .await;
    r.assert_error(422, "validation_failed");
    let r = s
        .post(
            &format!("/transition-requests/{rid}/approve"),
            co,
            json!({"vote": "yes"}),
        )
        .await;
    r.assert_error(422, "validation_failed");
    let unchanged = s.get(&format!("/transition-requests/{rid}"), co).await;
    assert_eq!(unchanged.assert_ok(200)["version"], 1);

    // Compliance approves: the legal tier becomes current, with its own deadline clock.
    s.clock.advance(Duration::hours(3));
    let r = decide(&s, co, &rid, "approve", Some("Evidence reviewed")).await;
    let after = r.assert_ok(200);
    assert_eq!(after["status"], "pending");
    assert_eq!(after["current_tier"], 1);
    assert_eq!(
        after["tiers"][0]["slots"][0]["decided_by"],
        "compliance.officer@acme.example"
    );
    assert_eq!(after["tiers"][0]["slots"][0]["decision"], "approved");
    assert!(after.get("case").is_none(), "nothing applied yet");
    assert_eq!(get_case(&s, analyst, &id).await["status"], "review");
    assert!(inbox(&s, co).await.is_empty());
    assert_eq!(inbox(&s, legal).await, [rid.as_str()]);
    decide(&s, co, &rid, "approve", None)
        .await
        .assert_error(403, "duplicate_approver");

    // Legal approves: the move is applied in the same transaction.
    s.clock.advance(Duration::hours(1));
    let r = decide(&s, legal, &rid, "approve", None).await;
    let done = r.assert_ok(200);
    assert_eq!(done["status"], "applied");
    assert_eq!(done["case"]["status"], "closed");
    assert_eq!(done["effective_at"], "2026-03-02T13:00:00.000000Z");
    let h = &done["history_entry"];
    assert_eq!(h["request_id"], rid.as_str());
    assert_eq!(h["rule_id"], "close");
    assert_eq!(h["actor"], "analyst@acme.example");
    assert_eq!(h["reason"], "Funds recovered, customer exited");
    assert_eq!(h["requested_at"], "2026-03-02T09:00:00.000000Z");
    assert_eq!(h["approval_completed_at"], "2026-03-02T13:00:00.000000Z");
    let approvals = h["approvals"].as_array().unwrap();
    assert_eq!(approvals.len(), 2);
    assert_eq!(approvals[0]["tier"], "Compliance");
    assert_eq!(approvals[0]["approver"], "compliance.officer@acme.example");
    assert_eq!(approvals[0]["decided_at"], "2026-03-02T12:00:00.000000Z");
    assert_eq!(approvals[1]["tier"], "Legal");
    decide(&s, legal, &rid, "approve", None)
        .await
        .assert_error(409, "request_not_pending");

    // The record: one history row for the move, the request no longer pending, events out.
    let case = get_case(&s, analyst, &id).await;
    let history = case["status_history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["request_id"], rid.as_str());
    assert_eq!(history.iter().filter(|e| e["to"] == "closed").count(), 1);
    assert_eq!(case["pending_request"], Value::Null);
    for (event, n) in [
        ("transition.requested", 1),
        ("approval.requested", 2),
        ("transition.approved", 1),
        ("case.closed", 1),
    ] {
        assert_eq!(outbox(&s, &s.a.id, event).await.len(), n, "{event}");
    }
    let audit = s
        .get(
            &format!("/audit/events?entity_type=transition_request&entity_id={rid}&order=asc"),
            s.a.key("admin"),
        )
        .await;
    let actions: Vec<&str> = audit.assert_ok(200)["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "transition_request.created",
            "transition_request.decided",
            "transition_request.decided"
        ]
    );
    s.stop().await;
}

async fn one_rejection_vetoes_and_a_changed_case_supersedes(b: Backend) {
    let s = start(b).await;
    // A slot or escalation naming someone outside the organisation could never be filled.
    let outsider = json!([{"name": "Named", "slots": [{"user": "compliance.officer@globex.example"},
        {"user": "compliance.officer@acme.example"}], "quorum": "all", "deadline": "P1D",
        "on_timeout": {"action": "escalate", "user": "nobody@acme.example"}}]);
    let r = s
        .put(
            "/case-types/CARD_FRAUD",
            s.a.key("admin"),
            hv_fraud(Some(outsider)),
        )
        .await;
    r.assert_error(422, "invalid_workflow");
    let paths: Vec<&str> = r.body["error"]["details"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "workflow.rules[1].approval.tiers[0].slots[0].user",
            "workflow.rules[1].approval.tiers[0].on_timeout.user"
        ]
    );
    let id = case_in_review(&s, None).await;
    let (analyst, co) = (s.a.key("analyst"), s.a.key("compliance_officer"));

    // A rejection needs a comment, and vetoes the whole request.
    let rid = id_of(&ask_to_close(&s, analyst, &id).await);
    decide(&s, co, &rid, "reject", None)
        .await
        .assert_error(422, "validation_failed");
    decide(&s, co, &rid, "reject", Some("   "))
        .await
        .assert_error(422, "validation_failed");
    let r = decide(&s, co, &rid, "reject", Some("Recovery not evidenced")).await;
    assert_eq!(r.assert_ok(200)["status"], "rejected");
    assert_eq!(get_case(&s, analyst, &id).await["status"], "review");
    decide(&s, s.a.key("legal_counsel"), &rid, "approve", None)
        .await
        .assert_error(409, "request_not_pending");
    assert_eq!(outbox(&s, &s.a.id, "transition.rejected").await.len(), 1);

    // A new request may follow; editing the case supersedes it.
    s.clock.advance(Duration::minutes(1));
    let rid2 = id_of(&ask_to_close(&s, analyst, &id).await);
    assert_ne!(rid, rid2);
    let patched = s
        .call(
            reqwest::Method::PATCH,
            &format!("/cases/{id}"),
            Some(analyst),
            Some(json!({"priority": "critical"})),
        )
        .await;
    patched.assert_ok(200);
    let q = s.get(&format!("/transition-requests/{rid2}"), co).await;
    assert_eq!(q.assert_ok(200)["status"], "superseded");
    decide(&s, co, &rid2, "approve", None)
        .await
        .assert_error(409, "request_not_pending");
    assert_eq!(
        get_case(&s, analyst, &id).await["pending_request"],
        Value::Null
    );

    // Only the requester (or an administrator) cancels; a cancelled request is over.
    s.clock.advance(Duration::minutes(1));
    let rid3 = id_of(&ask_to_close(&s, analyst, &id).await);
    s.post(
        &format!("/transition-requests/{rid3}/cancel"),
        s.a.key("senior_analyst"),
        json!({}),
    )
    .await
    .assert_error(403, "forbidden");
    let r = s
        .post(
            &format!("/transition-requests/{rid3}/cancel"),
            analyst,
            json!({}),
        )
        .await;
    assert_eq!(r.assert_ok(200)["status"], "cancelled");
    s.post(
        &format!("/transition-requests/{rid3}/cancel"),
        analyst,
        json!({}),
    )
    .await
    .assert_error(409, "request_not_pending");

    // The requester never approves their own move, whatever their roles.
    s.clock.advance(Duration::minutes(1));
    let rid4 = id_of(&ask_to_close(&s, co, &id).await);
    decide(&s, co, &rid4, "approve", None)
        .await
        .assert_error(403, "self_approval_forbidden");
    assert!(
        inbox(&s, co).await.is_empty(),
        "not in the requester's inbox"
    );
    let listed = s
        .get("/approvals?status=all&sort=requested_at", analyst)
        .await;
    assert_eq!(listed.body["total"], 4);
    let statuses: Vec<&str> = listed.assert_ok(200)["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["rejected", "superseded", "cancelled", "pending"]);
    s.get("/approvals?status=maybe", analyst)
        .await
        .assert_error(422, "validation_failed");
    s.get("/approvals?mine=perhaps", analyst)
        .await
        .assert_error(422, "validation_failed");
    let newest = s.get("/approvals?status=all&limit=1", analyst).await;
    assert_eq!(newest.assert_ok(200)["requests"][0]["id"], rid4.as_str());
    assert_eq!(newest.body["total"], 4);
    s.get("/approvals?sort=age", analyst)
        .await
        .assert_error(422, "validation_failed");
    s.get("/approvals?limit=500", analyst)
        .await
        .assert_error(422, "validation_failed");
    let other = s.get("/approvals?status=all", s.b.key("admin")).await;
    assert!(
        other.assert_ok(200)["requests"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    s.stop().await;
}

async fn missed_deadlines_remind_escalate_and_expire_once(b: Backend) {
    let s = start(b).await;
    let id = case_in_review(&s, None).await;
    let analyst = s.a.key("analyst");
    let rid = id_of(&ask_to_close(&s, analyst, &id).await);
    assert_eq!(timers(&s).await, 0, "nothing is due yet");

    // The reminder goes out once, at 24 hours.
    s.clock.advance(Duration::hours(24));
    assert_eq!(timers(&s).await, 1);
    assert_eq!(timers(&s).await, 0);
    assert_eq!(outbox(&s, &s.a.id, "approval.reminder").await.len(), 1);

    // At the deadline the tier escalates to the MLRO, with a fresh deadline.
    s.clock.advance(Duration::hours(24));
    decide(&s, s.a.key("compliance_officer"), &rid, "approve", None)
        .await
        .assert_error(403, "not_an_eligible_approver");
    assert_eq!(timers(&s).await, 1);
    assert_eq!(timers(&s).await, 0);
    let escalated = outbox(&s, &s.a.id, "approval.escalated").await;
    assert_eq!(escalated.len(), 1);
    assert_eq!(escalated[0]["role"], "mlro");
    let q = s.get(&format!("/transition-requests/{rid}"), analyst).await;
    let q = q.assert_ok(200);
    assert_eq!(q["tiers"][0]["slots"][1]["role"], "mlro");
    assert_eq!(q["tiers"][0]["deadline_at"], "2026-03-06T09:00:00.000000Z");
    let mlro = s.a.key("mlro");
    assert_eq!(inbox(&s, mlro).await, [rid.as_str()]);

    // Missed again: the request expires; the case stays where it was.
    s.clock.advance(Duration::days(2));
    assert_eq!(timers(&s).await, 1);
    let q = s.get(&format!("/transition-requests/{rid}"), analyst).await;
    assert_eq!(q.assert_ok(200)["status"], "expired");
    assert_eq!(outbox(&s, &s.a.id, "transition.expired").await.len(), 1);
    decide(&s, mlro, &rid, "approve", None)
        .await
        .assert_error(409, "request_not_pending");
    assert_eq!(get_case(&s, analyst, &id).await["status"], "review");

    // With `expire`, the first miss ends it; the escalated MLRO could have saved it.
    let expire = json!([{"name": "Compliance", "slots": [{"role": "compliance_officer"}], "quorum": 1,
        "deadline": "PT4H", "on_timeout": {"action": "expire"}}]);
    let id2 = case_in_review(&s, Some(expire)).await;
    let rid2 = id_of(&ask_to_close(&s, analyst, &id2).await);
    s.clock.advance(Duration::hours(4));
    assert_eq!(timers(&s).await, 1);
    let q = s
        .get(&format!("/transition-requests/{rid2}"), analyst)
        .await;
    assert_eq!(q.assert_ok(200)["status"], "expired");
    assert_eq!(
        outbox(&s, &s.a.id, "approval.reminder").await.len(),
        1,
        "no new reminder"
    );
    s.stop().await;
}

async fn racing_approvers_and_timers_never_apply_twice(b: Backend) {
    let s = start(b).await;
    // One tier, two parallel slots: both approvals are needed, in any order.
    let parallel = json!([{"name": "Sign-off", "slots": [{"role": "compliance_officer"}, {"role": "legal_counsel"}],
        "quorum": "all", "deadline": "PT8H", "reminders": ["PT1H"]}]);
    let id = case_in_review(&s, Some(parallel)).await;

    // Two requesters at once: one request, the other told it is pending.
    let (r1, r2) = tokio::join!(
        transition(&s, s.a.key("analyst"), &id, "closed", Some("first")),
        transition(&s, s.a.key("senior_analyst"), &id, "closed", Some("second"))
    );
    let mut codes = [r1.status.as_u16(), r2.status.as_u16()];
    codes.sort_unstable();
    assert_eq!(codes, [202, 409], "{:#} {:#}", r1.body, r2.body);
    let (won, lost) = if r1.status.as_u16() == 202 {
        (&r1, &r2)
    } else {
        (&r2, &r1)
    };
    lost.assert_error(409, "request_pending");
    let rid = id_of(&won.body["request"]);
    assert_eq!(lost.body["error"]["details"]["request_id"], rid.as_str());
    // The requester (who may cancel) is whoever won.
    let analyst = if won.body["request"]["reason"] == "first" {
        s.a.key("analyst")
    } else {
        s.a.key("senior_analyst")
    };

    // The same approver twice at once: one decision counts, the other is told it is taken.
    let co = s.a.key("compliance_officer");
    let (r1, r2) = tokio::join!(
        decide(&s, co, &rid, "approve", None),
        decide(&s, co, &rid, "approve", None)
    );
    let mut codes = [r1.status.as_u16(), r2.status.as_u16()];
    codes.sort_unstable();
    assert_eq!(codes, [200, 409], "{:#} {:#}", r1.body, r2.body);
    let loser = if r1.status.as_u16() == 409 { &r1 } else { &r2 };
    loser.assert_error(409, "already_decided");

    // Two timer workers at once: the reminder fires once.
    s.clock.advance(Duration::hours(1));
    let (t1, t2) = tokio::join!(timers(&s), timers(&s));
    assert_eq!(t1 + t2, 1);
    assert_eq!(outbox(&s, &s.a.id, "approval.reminder").await.len(), 1);

    // The last approval racing a cancellation: exactly one wins, nothing half-applied.
    let legal = s.a.key("legal_counsel");
    let cancel_path = format!("/transition-requests/{rid}/cancel");
    let cancel = s.post(&cancel_path, analyst, json!({}));
    let (approved, cancelled) = tokio::join!(decide(&s, legal, &rid, "approve", None), cancel);
    let case = get_case(&s, analyst, &id).await;
    let q = s.get(&format!("/transition-requests/{rid}"), analyst).await;
    let q = q.assert_ok(200);
    match (approved.status.as_u16(), cancelled.status.as_u16()) {
        (200, 409) => {
            assert_eq!(q["status"], "applied");
            assert_eq!(case["status"], "closed");
        }
        (409, 200) => {
            assert_eq!(q["status"], "cancelled");
            assert_eq!(case["status"], "review");
        }
        other => panic!("{other:?}: {:#} {:#}", approved.body, cancelled.body),
    }
    let moves = case["status_history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["to"] == "closed")
        .count();
    assert_eq!(moves, usize::from(q["status"] == "applied"));
    s.stop().await;
}

async fn the_builtin_high_value_fraud_template_runs_end_to_end(b: Backend) {
    let s = start(b).await;
    let (analyst, co, legal) = (
        s.a.key("analyst"),
        s.a.key("compliance_officer"),
        s.a.key("legal_counsel"),
    );
    let c = create_case(
        &s,
        analyst,
        json!({"case_type": "HV_FRAUD", "title": "Account takeover, EUR 900k", "priority": "critical",
               "reasons": ["mule account"], "assigned_to": "analyst@acme.example"}),
    )
    .await;
    let id = id_of(&c);
    assert_eq!(
        c["status"], "investigating",
        "assignment starts the investigation"
    );
    transition(&s, analyst, &id, "pending_closure", Some("Loss recovered"))
        .await
        .assert_ok(200);
    let rid = id_of(&ask_to_close(&s, analyst, &id).await);
    decide(&s, legal, &rid, "approve", None)
        .await
        .assert_error(403, "not_an_eligible_approver");
    decide(&s, co, &rid, "approve", Some("Checked the recovery"))
        .await
        .assert_ok(200);
    let done = decide(&s, legal, &rid, "approve", Some("No litigation hold")).await;
    assert_eq!(done.assert_ok(200)["case"]["status"], "closed");
    let tiers: Vec<&str> = done.body["history_entry"]["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["tier"].as_str().unwrap())
        .collect();
    assert_eq!(tiers, ["Compliance", "Legal"]);
    // Any rejection vetoes: reopened and asked again, legal counsel says no.
    s.post(
        &format!("/cases/{id}/reopen"),
        analyst,
        json!({"reason": "New transactions"}),
    )
    .await
    .assert_ok(200);
    transition(&s, analyst, &id, "pending_closure", Some("Recovered again"))
        .await
        .assert_ok(200);
    let rid = id_of(&ask_to_close(&s, analyst, &id).await);
    decide(&s, co, &rid, "approve", None).await.assert_ok(200);
    let r = decide(&s, legal, &rid, "reject", Some("Pending litigation")).await;
    assert_eq!(r.assert_ok(200)["status"], "rejected");
    assert_eq!(
        get_case(&s, analyst, &id).await["status"],
        "pending_closure"
    );
    s.stop().await;
}
