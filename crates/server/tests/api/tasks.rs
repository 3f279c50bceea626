//! Tasks and post-actions through the API (docs/workflows.md "Tasks" and "Post-actions"):
//! mandatory tasks opened on entering a status block leaving it (422
//! `unresolved_mandatory_tasks`) until done; the tasks API with its bad input; a rule's
//! post-actions run by the dispatcher after commit, once each even when the event is retried,
//! failures recorded and audited; the notification inbox.
use crate::both_backends;
use crate::cases::{case_events, create_case, get_case, id_of, outbox, transition, user_id};
use crate::common::*;
use casegate_domain::clock::Clock;
use serde_json::{Value, json};
use time::Duration;

both_backends!(
    mandatory_tasks_block_leaving_a_status_until_done,
    tasks_api_refuses_bad_input_and_other_tenants,
    post_actions_run_once_after_commit,
    failing_post_actions_are_recorded_and_the_rest_still_run,
);

/// `KYC_REVIEW`: open → investigating (demands two tasks) → closed; `close` may carry an
/// approval; `extra_rules` are appended.
fn kyc_type(extra_rules: Value) -> Value {
    let mut rules = vec![
        json!({"id": "start", "from": "open", "to": "investigating"}),
        json!({"id": "close", "from": "investigating", "to": "closed", "require_reason": true}),
        json!({"id": "escalate", "from": "investigating", "to": "escalated"}),
        json!({"id": "close_escalated", "from": "escalated", "to": "closed", "require_reason": true}),
    ];
    rules.extend(extra_rules.as_array().cloned().unwrap_or_default());
    json!({"name": "KYC review", "fields": [
            {"key": "risk_band", "label": "Risk band", "type": "string"},
            {"key": "exposure", "label": "Exposure", "type": "number"}
        ],
        "workflow": {
        "statuses": [
            {"key": "open", "label": "Open", "category": "open"},
            {"key": "investigating", "label": "Investigating", "category": "active",
             "mandatory_tasks": [
                {"title": "Collect KYC documents", "assignee_role": "analyst"},
                {"title": "Legal review of the account closure", "assignee_role": "legal_counsel"}
             ]},
            {"key": "escalated", "label": "Escalated", "category": "active"},
            {"key": "closed", "label": "Closed", "category": "terminal"}
        ],
        "initial_status": "open",
        "on_assign": {"from": "investigating", "to": "escalated"},
        "rules": rules
    }})
}

async fn install(s: &TestServer, body: Value) {
    let put = s
        .put("/case-types/KYC_REVIEW", s.a.key("admin"), body)
        .await;
    assert!([200, 201].contains(&put.status.as_u16()), "{:#}", put.body);
}

async fn new_case(s: &TestServer) -> String {
    id_of(
        &create_case(
            s,
            s.a.key("analyst"),
            json!({"case_type": "KYC_REVIEW", "title": "Dormant account reactivated", "priority": "high"}),
        )
        .await,
    )
}

fn titles(tasks: &Value) -> Vec<String> {
    tasks
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_string())
        .collect()
}

async fn complete(s: &TestServer, key: &str, task: &str, note: Value) -> Resp {
    s.post(&format!("/tasks/{task}/complete"), key, note).await
}

async fn mandatory_tasks_block_leaving_a_status_until_done(b: Backend) {
    let s = start(b).await;
    install(&s, kyc_type(json!([]))).await;
    let (analyst, legal, auditor) = (
        s.a.key("analyst"),
        s.a.key("legal_counsel"),
        s.a.key("auditor"),
    );
    let id = new_case(&s).await;
    assert_eq!(get_case(&s, analyst, &id).await["tasks"], json!([]));

    // Entering `investigating` opens its two tasks, announced with the move.
    transition(&s, analyst, &id, "investigating", None)
        .await
        .assert_ok(200);
    let detail = get_case(&s, analyst, &id).await;
    let tasks = detail["tasks"].clone();
    assert_eq!(
        titles(&tasks),
        [
            "Collect KYC documents",
            "Legal review of the account closure"
        ]
    );
    for t in tasks.as_array().unwrap() {
        assert_eq!(t["status"], "open");
        assert_eq!(t["mandatory"], true);
        assert_eq!(t["blocks_status"], "investigating");
        assert_eq!(t["source"], "workflow");
        assert_eq!(t["created_by"], "system");
    }
    let (kyc, legal_task) = (id_of(&tasks[0]), id_of(&tasks[1]));
    assert_eq!(outbox(&s, &s.a.id, "task.created").await.len(), 2);

    // What blocks the move is listed, and trying it changes nothing.
    let offers = s
        .get(&format!("/cases/{id}/transitions"), analyst)
        .await
        .assert_ok(200)
        .clone();
    let close = offers["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["to"] == "closed")
        .expect("close offered")
        .clone();
    assert_eq!(close["blocked_by"][0]["code"], "unresolved_mandatory_tasks");
    let version = detail["version"].clone();
    let r = transition(&s, analyst, &id, "closed", Some("Documents complete")).await;
    r.assert_error(422, "unresolved_mandatory_tasks");
    let listed = &r.body["error"]["details"]["unresolved_mandatory_tasks"];
    assert_eq!(
        titles(listed),
        [
            "Collect KYC documents",
            "Legal review of the account closure"
        ]
    );
    let after = get_case(&s, analyst, &id).await;
    assert_eq!(
        (after["status"].clone(), after["version"].clone()),
        (json!("investigating"), version)
    );

    // Assignment still happens, but the automatic move waits for the tasks.
    let assigned = s
        .post(
            &format!("/cases/{id}/assign"),
            analyst,
            json!({"assigned_to": "senior.analyst@acme.example"}),
        )
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(assigned["status"], "investigating");
    assert_eq!(assigned["assigned_to"], "senior.analyst@acme.example");

    // Who may complete: the role the task waits on, or case.edit; not an auditor.
    complete(&s, auditor, &legal_task, json!({}))
        .await
        .assert_error(403, "forbidden");
    let done = complete(
        &s,
        legal,
        &legal_task,
        json!({"note": "Closure letter reviewed"}),
    )
    .await
    .assert_ok(200)
    .clone();
    assert_eq!(done["status"], "done");
    assert_eq!(done["completed_by"], "legal.counsel@acme.example");
    assert_eq!(done["completion_note"], "Closure letter reviewed");
    complete(&s, legal, &legal_task, json!({}))
        .await
        .assert_error(409, "already_completed");
    let r = transition(&s, analyst, &id, "closed", Some("Documents complete")).await;
    r.assert_error(422, "unresolved_mandatory_tasks");
    assert_eq!(
        titles(&r.body["error"]["details"]["unresolved_mandatory_tasks"]),
        ["Collect KYC documents"]
    );
    complete(&s, analyst, &kyc, json!({})).await.assert_ok(200);
    transition(&s, analyst, &id, "closed", Some("Documents complete"))
        .await
        .assert_ok(200);

    // Completing is audited with the note.
    let ev = s
        .get(
            &format!("/audit/events?entity_type=task&entity_id={legal_task}&action=task.completed"),
            s.a.key("admin"),
        )
        .await
        .assert_ok(200)["events"]
        .clone();
    assert_eq!(ev.as_array().unwrap().len(), 1);
    assert_eq!(ev[0]["actor"], "legal.counsel@acme.example");

    // Re-entering the status demands the tasks again (new ones; the done ones stay done).
    s.post(
        &format!("/cases/{id}/reopen"),
        analyst,
        json!({"reason": "New adverse media"}),
    )
    .await
    .assert_ok(200);
    transition(&s, analyst, &id, "investigating", None)
        .await
        .assert_ok(200);
    let tasks = get_case(&s, analyst, &id).await["tasks"].clone();
    let open: Vec<&Value> = tasks
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "open")
        .collect();
    assert_eq!((tasks.as_array().unwrap().len(), open.len()), (4, 2));

    // A hand-made mandatory task blocks too, and an approval is not even asked for.
    let mut gated = kyc_type(json!([]));
    gated["workflow"]["rules"][1]["approval"] =
        json!({"tiers": [{"name": "MLRO", "slots": [{"role": "mlro"}], "quorum": "all"}]});
    install(&s, gated).await;
    let other = new_case(&s).await;
    transition(&s, analyst, &other, "investigating", None)
        .await
        .assert_ok(200);
    for t in get_case(&s, analyst, &other).await["tasks"]
        .as_array()
        .unwrap()
    {
        complete(&s, analyst, &id_of(t), json!({}))
            .await
            .assert_ok(200);
    }
    let manual = s
        .post(
            "/tasks",
            analyst,
            json!({"case_id": other, "title": "Obtain source-of-funds letter", "mandatory": true,
                   "assigned_to": "analyst@acme.example", "due_at": "2026-03-09T17:00:00Z"}),
        )
        .await
        .assert_ok(201)
        .clone();
    assert_eq!(manual["blocks_status"], "investigating");
    assert_eq!(manual["source"], "manual");
    assert_eq!(manual["due_at"], "2026-03-09T17:00:00.000000Z");
    transition(&s, analyst, &other, "closed", Some("Done"))
        .await
        .assert_error(422, "unresolved_mandatory_tasks");
    assert!(
        s.get(
            &format!("/approvals?case_id={other}&status=all"),
            s.a.key("mlro")
        )
        .await
        .assert_ok(200)["requests"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // A task naming a person is theirs (or case.edit's), not a role holder's.
    complete(&s, legal, &id_of(&manual), json!({}))
        .await
        .assert_error(403, "forbidden");
    complete(&s, analyst, &id_of(&manual), json!({}))
        .await
        .assert_ok(200);
    let r = transition(&s, analyst, &other, "closed", Some("Done")).await;
    assert_eq!(r.status.as_u16(), 202, "{:#}", r.body);
    // A mandatory task added while the approver decides holds the last approval back.
    let late = s
        .post(
            "/tasks",
            analyst,
            json!({"case_id": other, "title": "File the exit memo", "mandatory": true}),
        )
        .await
        .assert_ok(201)
        .clone();
    let approve = format!("/transition-requests/{}/approve", id_of(&r.body["request"]));
    let mlro = s.a.key("mlro");
    s.post(&approve, mlro, json!({}))
        .await
        .assert_error(422, "unresolved_mandatory_tasks");
    assert_eq!(
        get_case(&s, analyst, &other).await["pending_request"]["status"],
        "pending"
    );
    // Two people completing it at once: one does, the other is told it is done.
    let late = id_of(&late);
    let (x, y) = tokio::join!(
        complete(&s, analyst, &late, json!({"note": "memo filed"})),
        complete(&s, s.a.key("admin"), &late, json!({}))
    );
    let mut codes = [x.status.as_u16(), y.status.as_u16()];
    codes.sort();
    assert_eq!(codes, [200, 409], "{:#} {:#}", x.body, y.body);
    let loser = if x.status.as_u16() == 409 { &x } else { &y };
    loser.assert_error(409, "already_completed");
    assert_eq!(
        s.post(&approve, mlro, json!({})).await.assert_ok(200)["status"],
        "applied"
    );
    assert_eq!(get_case(&s, analyst, &other).await["status"], "closed");

    // The task list: open by default, soonest due first; `me` includes the caller's roles.
    let mine = s
        .get("/tasks?assigned_to=me&status=all", legal)
        .await
        .assert_ok(200)
        .clone();
    assert!(
        mine["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["assignee_role"] == "legal_counsel")
    );
    assert_eq!(mine["total"], 3);
    let open = s.get("/tasks", analyst).await.assert_ok(200).clone();
    assert_eq!(open["total"], 2);
    let of_case = s
        .get(&format!("/tasks?case_id={other}&status=done"), analyst)
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(of_case["total"], 4);
    assert_eq!(
        of_case["tasks"][0]["title"],
        "Obtain source-of-funds letter"
    );
    s.stop().await;
}

async fn tasks_api_refuses_bad_input_and_other_tenants(b: Backend) {
    let s = start(b).await;
    install(&s, kyc_type(json!([]))).await;
    let analyst = s.a.key("analyst");
    let id = new_case(&s).await;
    let ok = json!({"case_id": id, "title": "Call the customer"});
    let cases = [
        (json!({"title": "x"}), 422, "validation_failed", "case_id"),
        (json!({"case_id": id}), 422, "validation_failed", "title"),
        (
            json!({"case_id": id, "title": "  "}),
            422,
            "validation_failed",
            "title",
        ),
        (
            json!({"case_id": id, "title": "x".repeat(501)}),
            422,
            "validation_failed",
            "title",
        ),
        (
            json!({"case_id": id, "title": "x", "owner": "me"}),
            422,
            "validation_failed",
            "owner",
        ),
        (
            json!({"case_id": id, "title": "x", "assignee_role": "janitor"}),
            422,
            "validation_failed",
            "assignee_role",
        ),
        (
            json!({"case_id": id, "title": "x", "due_at": "next week"}),
            422,
            "validation_failed",
            "due_at",
        ),
        (
            json!({"case_id": id, "title": "x", "mandatory": "yes"}),
            422,
            "validation_failed",
            "mandatory",
        ),
        (
            json!({"case_id": id, "title": 5}),
            422,
            "validation_failed",
            "title",
        ),
        (
            json!({"case_id": id, "title": "x", "assigned_to": "nobody@acme.example"}),
            404,
            "not_found",
            "assigned_to",
        ),
        (
            json!({"case_id": "CASE-2026-999999", "title": "x"}),
            404,
            "not_found",
            "case_id",
        ),
    ];
    for (body, status, code, param) in cases {
        let r = s.post("/tasks", analyst, body.clone()).await;
        r.assert_error(status, code);
        assert_eq!(r.body["error"]["param"], param, "{body}");
    }
    // Malformed JSON, no credential, no permission, oversized body.
    let r = s
        .send(
            s.http
                .post(s.url("/tasks"))
                .bearer_auth(analyst)
                .header("content-type", "application/json")
                .body("{\"case_id\":"),
        )
        .await;
    r.assert_error(400, "malformed_request");
    s.send(s.http.post(s.url("/tasks")).json(&ok))
        .await
        .assert_error(401, "unauthenticated");
    s.post("/tasks", s.a.key("auditor"), ok.clone())
        .await
        .assert_error(403, "forbidden");
    let huge = json!({"case_id": id, "title": "x", "description": "y".repeat(2 * 1024 * 1024)});
    s.post("/tasks", analyst, huge)
        .await
        .assert_error(413, "payload_too_large");
    let lists = [
        ("/tasks?status=later", "status"),
        ("/tasks?limit=0", "limit"),
        ("/tasks?owner=me", "owner"),
        ("/tasks?assigned_to=ghost@acme.example", "assigned_to"),
        ("/notifications?unread=maybe", "unread"),
    ];
    for (q, param) in lists {
        let r = s.get(q, analyst).await;
        r.assert_error(422, "validation_failed");
        assert_eq!(r.body["error"]["param"], param, "{q}");
    }
    assert_eq!(get_case(&s, analyst, &id).await["tasks"], json!([]));

    // Another organisation sees none of it, and cannot complete it.
    let t = s
        .post("/tasks", analyst, ok.clone())
        .await
        .assert_ok(201)
        .clone();
    let task = id_of(&t);
    let other = s.b.key("admin");
    s.get(&format!("/tasks/{task}"), other)
        .await
        .assert_error(404, "not_found");
    complete(&s, other, &task, json!({}))
        .await
        .assert_error(404, "not_found");
    s.post("/tasks", other, ok.clone())
        .await
        .assert_error(404, "not_found");
    assert_eq!(
        s.get(&format!("/tasks?case_id={id}"), other)
            .await
            .status
            .as_u16(),
        422
    );
    assert_eq!(
        s.get("/tasks?status=all", other).await.assert_ok(200)["total"],
        0
    );
    s.get("/tasks/not-a-task", analyst)
        .await
        .assert_error(404, "not_found");
    complete(&s, analyst, &task, json!({"note": "x", "extra": 1}))
        .await
        .assert_error(422, "validation_failed");
    assert_eq!(
        s.get(&format!("/tasks/{task}"), analyst)
            .await
            .assert_ok(200)["status"],
        "open"
    );

    // A closed case takes no new task.
    transition(&s, analyst, &id, "investigating", None)
        .await
        .assert_ok(200);
    for t in get_case(&s, analyst, &id).await["tasks"]
        .as_array()
        .unwrap()
    {
        if t["status"] == "open" {
            s.post(
                &format!("/tasks/{}/complete", id_of(t)),
                s.a.key("admin"),
                json!({}),
            )
            .await
            .assert_ok(200);
        }
    }
    transition(&s, analyst, &id, "closed", Some("Done"))
        .await
        .assert_ok(200);
    s.post("/tasks", analyst, ok)
        .await
        .assert_error(422, "validation_failed");

    // A workflow demanding tasks on a terminal status, or of an unknown role, is refused.
    let mut bad = kyc_type(json!([]));
    bad["workflow"]["statuses"][3]["mandatory_tasks"] = json!([{"title": "Archive"}]);
    bad["workflow"]["statuses"][1]["mandatory_tasks"][0]["assignee_role"] = json!("janitor");
    bad["workflow"]["rules"][0]["post_actions"] =
        json!([{"type": "emit_event", "event": "case.closed"}]);
    let r = s.put("/case-types/KYC_REVIEW", s.a.key("admin"), bad).await;
    r.assert_error(422, "invalid_workflow");
    let paths: Vec<&str> = r.body["error"]["details"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"workflow.statuses[3].mandatory_tasks"),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"workflow.statuses[1].mandatory_tasks[0].assignee_role"),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"workflow.rules[0].post_actions[0].event"),
        "{paths:?}"
    );
    s.stop().await;
}

/// The rule `start` with every kind of post-action.
fn with_post_actions(assign_to: &str) -> Value {
    let mut t = kyc_type(json!([]));
    t["workflow"]["rules"][0]["post_actions"] = json!([
        {"type": "create_task", "title": "Request bank statements", "assignee_role": "analyst", "due_in": "P3D"},
        {"type": "assign", "to": assign_to},
        {"type": "set_field", "field": "risk_band", "value": "high"},
        {"type": "notify", "roles": ["mlro"], "users": ["legal.counsel@acme.example"], "message": "KYC investigation opened"},
        {"type": "emit_event", "event": "kyc.investigation_opened"}
    ]);
    // No automatic move on assignment here: the assign action leaves the status alone.
    t["workflow"]["on_assign"] = Value::Null;
    t
}

async fn dispatch(s: &TestServer) -> u64 {
    casegate_service::dispatch::run(&s.svc, 100)
        .await
        .expect("dispatcher")
}

/// Dispatches until nothing is left (the actions' own events included); answers how many.
async fn drain(s: &TestServer) -> u64 {
    let mut total = 0;
    loop {
        match dispatch(s).await {
            0 => return total,
            n => total += n,
        }
    }
}

async fn inbox(s: &TestServer, key: &str) -> Value {
    s.get("/notifications", key).await.assert_ok(200).clone()
}

/// Sets up the rule with post-actions and moves a case through it; answers the case id.
async fn moved_with_post_actions(s: &TestServer, assign_to: &str) -> String {
    install(s, with_post_actions(assign_to)).await;
    let id = new_case(s).await;
    transition(s, s.a.key("analyst"), &id, "investigating", None)
        .await
        .assert_ok(200);
    id
}

async fn post_actions_run_once_after_commit(b: Backend) {
    let s = start(b).await;
    let analyst = s.a.key("analyst");
    let id = moved_with_post_actions(&s, "senior.analyst@acme.example").await;
    // Nothing has run yet: the move committed, its work waits in the outbox.
    let before = get_case(&s, analyst, &id).await;
    assert_eq!(before["assigned_to"], Value::Null);
    assert_eq!(titles(&before["tasks"]).len(), 2);
    let ran_at = s.clock.now();
    s.clock.advance(Duration::seconds(5));
    assert!(drain(&s).await >= 1);

    let after = get_case(&s, analyst, &id).await;
    assert_eq!(after["assigned_to"], "senior.analyst@acme.example");
    assert_eq!(after["fields"]["risk_band"], "high");
    assert_eq!(after["status"], "investigating");
    let task = after["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["source"] == "post_action")
        .expect("post-action task")
        .clone();
    assert_eq!(task["title"], "Request bank statements");
    assert_eq!(task["mandatory"], false);
    // Due three days after the move committed (the event's time), not after the dispatch.
    let due = time::OffsetDateTime::parse(
        task["due_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(due, ran_at + Duration::days(3));
    // The MLRO (by role) and legal counsel (by name) are told; nobody else. (Tasks and the
    // assignment reach their people too: docs/notifications.md.)
    let told = |n: &Value| -> Vec<Value> {
        n["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["kind"] == "post_action.notify")
            .cloned()
            .collect()
    };
    for key in ["mlro", "legal_counsel"] {
        let n = told(&inbox(&s, s.a.key(key)).await);
        assert_eq!(n.len(), 1, "{key}");
        assert_eq!(n[0]["message"], "KYC investigation opened");
        assert_eq!(n[0]["case_id"], json!(id));
        assert!(n[0]["read_at"].is_null());
    }
    for key in ["analyst", "senior_analyst", "compliance_officer"] {
        assert!(told(&inbox(&s, s.a.key(key)).await).is_empty(), "{key}");
    }
    let assigned = inbox(&s, s.a.key("senior_analyst")).await;
    assert_eq!(assigned["notifications"][0]["kind"], "case.assigned");
    let emitted = outbox(&s, &s.a.id, "kyc.investigation_opened").await;
    assert_eq!(emitted.len(), 1);
    assert_eq!(emitted[0]["case"]["id"], json!(id));
    assert_eq!(emitted[0]["rule_id"], "start");
    // Done as the system, in the audit trail.
    let assigned = case_events(&s, &id, "case.assigned").await;
    assert_eq!(assigned.len(), 1);
    assert_eq!(assigned[0]["actor"], "system");

    // A crash before the event was marked dispatched: the retry skips what already ran.
    let counts = |d: &Value| (d["version"].clone(), titles(&d["tasks"]).len());
    let snapshot = counts(&get_case(&s, analyst, &id).await);
    let audit_len = case_events(&s, &id, "").await.len();
    {
        let mut tx = s.svc.db.begin().await.unwrap();
        tx.execute(
            "UPDATE outbox SET dispatched_at = NULL, next_attempt_at = NULL WHERE actions IS NOT NULL",
            &[],
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(dispatch(&s).await, 1);
    assert_eq!(counts(&get_case(&s, analyst, &id).await), snapshot);
    assert_eq!(case_events(&s, &id, "").await.len(), audit_len);
    assert_eq!(inbox(&s, s.a.key("mlro")).await["total"], 1);
    assert_eq!(
        outbox(&s, &s.a.id, "kyc.investigation_opened").await.len(),
        1
    );
    assert_eq!(dispatch(&s).await, 0, "nothing left to dispatch");

    // The inbox: mark read (twice is harmless); someone else's is not found.
    let mlro = s.a.key("mlro");
    let note = id_of(&inbox(&s, mlro).await["notifications"][0]);
    let read = s
        .post(&format!("/notifications/{note}/read"), mlro, json!({}))
        .await
        .assert_ok(200)
        .clone();
    assert!(read["read_at"].is_string());
    s.post(&format!("/notifications/{note}/read"), mlro, json!({}))
        .await
        .assert_ok(200);
    assert_eq!(inbox(&s, mlro).await["unread"], 0);
    assert_eq!(
        s.get("/notifications?unread=true", mlro)
            .await
            .assert_ok(200)["total"],
        0
    );
    s.post(&format!("/notifications/{note}/read"), analyst, json!({}))
        .await
        .assert_error(404, "not_found");
    s.post(
        &format!("/notifications/{note}/read"),
        s.b.key("mlro"),
        json!({}),
    )
    .await
    .assert_error(404, "not_found");
    s.stop().await;
}

async fn failing_post_actions_are_recorded_and_the_rest_still_run(b: Backend) {
    let s = start(b).await;
    let analyst = s.a.key("analyst");
    // The assignee named by the rule is disabled after the rule was saved.
    let admin = s.a.key("admin");
    let senior = user_id(&s, admin, "senior.analyst@acme.example").await;
    let id = moved_with_post_actions(&s, &senior).await;
    s.send(
        s.http
            .patch(s.url(&format!("/users/{senior}")))
            .bearer_auth(admin)
            .json(&json!({"active": false})),
    )
    .await
    .assert_ok(200);
    drain(&s).await;
    let after = get_case(&s, analyst, &id).await;
    assert_eq!(after["assigned_to"], Value::Null);
    assert_eq!(after["fields"]["risk_band"], "high");
    assert!(titles(&after["tasks"]).contains(&"Request bank statements".to_string()));
    let failed = case_events(&s, &id, "post_action.failed").await;
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0]["actor"], "system");
    assert_eq!(failed[0]["changes"]["action"], "assign");
    assert_eq!(failed[0]["changes"]["code"], "validation_failed");
    // Not retried: another round does nothing more.
    assert_eq!(dispatch(&s).await, 0);
    assert_eq!(case_events(&s, &id, "post_action.failed").await.len(), 1);

    // Approved moves run their post-actions too, once the last approval applied them.
    let mut gated = with_post_actions("senior.analyst@acme.example");
    gated["workflow"]["rules"][0]["approval"] = json!({"tiers": [{"name": "Supervisor", "slots": [{"role": "supervisor"}], "quorum": "all"}]});
    gated["workflow"]["rules"][0]["post_actions"] =
        json!([{"type": "set_field", "field": "exposure", "value": 125000}]);
    install(&s, gated).await;
    let other = new_case(&s).await;
    let r = transition(&s, analyst, &other, "investigating", None).await;
    assert_eq!(r.status.as_u16(), 202, "{:#}", r.body);
    drain(&s).await;
    assert_eq!(
        get_case(&s, analyst, &other).await["fields"]["exposure"],
        Value::Null
    );
    let request = id_of(&r.body["request"]);
    s.post(
        &format!("/transition-requests/{request}/approve"),
        s.a.key("supervisor"),
        json!({}),
    )
    .await
    .assert_ok(200);
    drain(&s).await;
    assert_eq!(
        get_case(&s, analyst, &other).await["fields"]["exposure"],
        125000
    );
    s.stop().await;
}
