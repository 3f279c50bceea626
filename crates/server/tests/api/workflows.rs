//! Rule-based workflows through the API (docs/workflows.md): documents checked as a whole, rule
//! ids kept across versions, and transitions decided by rules for each caller: allowed moves,
//! deny rules, roles, reasons and preconditions, with nothing changed by a refused move.
use crate::both_backends;
use crate::cases::{create_case, get_case, id_of, transition};
use crate::common::*;
use serde_json::{Value, json};

both_backends!(
    rule_workflows_are_checked_as_a_whole,
    rules_decide_each_move_for_the_caller,
);

/// `CARD_FRAUD`: open → investigating → review → closed. Only senior analysts submit for review,
/// and only with a reason code and an amount; closing needs a reason; critical cases cannot be
/// closed from anywhere; a wildcard lets anyone close an open case as a duplicate.
fn hv_fraud() -> Value {
    json!({"name": "High-value fraud", "fields": [
        {"key": "amount", "label": "Amount", "type": "number"}
    ], "workflow": {
        "statuses": [
            {"key": "open", "label": "Open", "category": "open"},
            {"key": "investigating", "label": "Investigating", "category": "active"},
            {"key": "review", "label": "Review", "category": "active"},
            {"key": "closed", "label": "Closed", "category": "terminal"}
        ],
        "initial_status": "open",
        "rules": [
            {"id": "start", "from": "open", "to": "investigating"},
            {"id": "submit", "from": "investigating", "to": "review", "required_roles": ["senior_analyst"],
             "preconditions": [
                {"expr": "size(case.reasons) > 0", "message": "Record at least one reason code"},
                {"expr": "has(case.fields.amount) && case.fields.amount > 0", "message": "Record the amount at stake"}
             ]},
            {"id": "close", "from": "review", "to": "closed", "require_reason": true},
            {"from": "open", "to": "closed", "priority": -1, "require_reason": true},
            {"id": "no-critical-close", "from": "*", "to": "closed", "priority": 10, "effect": "deny",
             "applies_when": "case.priority == 'critical'"}
        ]
    }})
}

async fn rule_workflows_are_checked_as_a_whole(b: Backend) {
    let s = start(b).await;
    let admin = s.a.key("admin");
    let mut bad = hv_fraud();
    let rules = &mut bad["workflow"]["rules"];
    rules[0]["to"] = json!("nowhere");
    rules[1]["required_roles"] = json!(["wizard"]);
    rules[1]["preconditions"][0]["expr"] = json!("size(case.reasons) >");
    rules[2]["id"] = json!("start");
    rules[4]["applies_when"] = json!("case.priority == ");
    rules[3]["approval"] =
        json!({"tiers": [{"name": "Board", "slots": [{"role": "mlro"}], "quorum": 2}]});
    let r = s.put("/case-types/CARD_FRAUD", admin, bad).await;
    r.assert_error(422, "invalid_workflow");
    let mut paths: Vec<&str> = r.body["error"]["details"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    paths.sort_unstable();
    paths.dedup();
    for expected in [
        "workflow.rules[0].to",
        "workflow.rules[1].required_roles[0]",
        "workflow.rules[1].preconditions[0].expr",
        "workflow.rules[2].id",
        "workflow.rules[3].approval.tiers[0].quorum",
        "workflow.rules[4].applies_when",
    ] {
        assert!(paths.contains(&expected), "{expected} not in {paths:#?}");
    }
    s.get("/case-types/CARD_FRAUD", admin)
        .await
        .assert_error(404, "not_found");

    // Only workflow administrators change workflows.
    s.put("/case-types/CARD_FRAUD", s.a.key("analyst"), hv_fraud())
        .await
        .assert_error(403, "forbidden");

    // Ids sent are kept, missing ones assigned; a new version keeps them and each rule's age.
    let v1 = s.put("/case-types/CARD_FRAUD", admin, hv_fraud()).await;
    assert_eq!(v1.status.as_u16(), 201, "{:#}", v1.body);
    let ids = |t: &Value| -> Vec<String> {
        t["workflow"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(&v1.body),
        ["start", "submit", "close", "rule-1", "no-critical-close"]
    );
    let mut again = v1.body.clone();
    again["workflow"]["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({"from": "investigating", "to": "closed", "require_reason": true}));
    let v2 = s
        .put("/case-types/CARD_FRAUD", admin, json!({"name": again["name"], "fields": again["fields"], "workflow": again["workflow"]}))
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(
        ids(&v2),
        [
            "start",
            "submit",
            "close",
            "rule-1",
            "no-critical-close",
            "rule-2"
        ]
    );
    assert_eq!(
        v2["workflow"]["rules"][0]["created_at"],
        v1.body["workflow"]["rules"][0]["created_at"]
    );
    assert_eq!(v2["version"], 2);

    // A status no rule reaches is reported.
    let mut stranded = hv_fraud();
    stranded["workflow"]["rules"] = json!([{"from": "open", "to": "investigating"}]);
    let r = s.put("/case-types/CARD_FRAUD", admin, stranded).await;
    r.assert_error(422, "invalid_workflow");
    let problems = r.body["error"]["details"]["problems"].as_array().unwrap();
    let stranded: Vec<&Value> = problems.iter().map(|p| &p["path"]).collect();
    assert_eq!(
        stranded,
        [
            &json!("workflow.statuses[2]"),
            &json!("workflow.statuses[3]")
        ]
    );
    s.stop().await;
}

async fn rules_decide_each_move_for_the_caller(b: Backend) {
    let s = start(b).await;
    let (analyst, senior) = (s.a.key("analyst"), s.a.key("senior_analyst"));
    let r = s
        .put("/case-types/CARD_FRAUD", s.a.key("admin"), hv_fraud())
        .await;
    assert_eq!(r.status.as_u16(), 201, "{:#}", r.body);
    let c = create_case(
        &s,
        analyst,
        json!({"case_type": "CARD_FRAUD", "title": "Card-not-present ring", "priority": "high"}),
    )
    .await;
    let id = id_of(&c);
    let from_open = offered(&s, analyst, &id).await;
    let tos: Vec<&Value> = from_open.iter().map(|t| &t["to"]).collect();
    assert_eq!(tos, [&json!("investigating"), &json!("closed")]);
    assert_eq!(from_open[0]["rule_id"], "start");
    assert_eq!(from_open[1]["rule_id"], "rule-1");
    assert_eq!(from_open[1]["requires_reason"], true);

    // Not a move any rule allows: the allowed ones are listed.
    let r = transition(&s, analyst, &id, "review", None).await;
    r.assert_error(422, "invalid_transition");
    assert_eq!(
        r.body["error"]["details"]["allowed"],
        json!(["investigating", "closed"])
    );
    let moved = transition(&s, analyst, &id, "investigating", None)
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(moved["history_entry"]["rule_id"], "start");
    assert_eq!(moved["case"]["status"], "investigating");

    // The analyst sees why review is out of reach: the role and both preconditions.
    let from_inv = offered(&s, analyst, &id).await;
    let review = from_inv.iter().find(|t| t["to"] == "review").unwrap();
    let codes: Vec<&Value> = review["blocked_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| &b["code"])
        .collect();
    assert_eq!(
        codes,
        [
            &json!("role_not_permitted"),
            &json!("precondition_failed"),
            &json!("precondition_failed")
        ]
    );
    let r = transition(&s, analyst, &id, "review", None).await;
    r.assert_error(403, "role_not_permitted");
    assert_eq!(
        r.body["error"]["details"]["required_roles"],
        json!(["senior_analyst"])
    );
    let r = transition(&s, senior, &id, "review", None).await;
    r.assert_error(422, "precondition_failed");
    let failures: Vec<&Value> = r.body["error"]["details"]["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["message"])
        .collect();
    assert_eq!(
        failures,
        [
            &json!("Record at least one reason code"),
            &json!("Record the amount at stake")
        ]
    );
    let unchanged = get_case(&s, analyst, &id).await;
    assert_eq!(
        (&unchanged["status"], &unchanged["version"]),
        (&json!("investigating"), &json!(2))
    );

    // With the facts recorded the senior analyst submits it; closing needs a reason.
    patch(
        &s,
        analyst,
        &id,
        json!({"reasons": ["structuring"], "fields": {"amount": 250000}}),
    )
    .await;
    let moved = transition(&s, senior, &id, "review", None)
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(moved["history_entry"]["rule_id"], "submit");
    transition(&s, analyst, &id, "closed", None)
        .await
        .assert_error(422, "reason_required");

    // Raised to critical, it can no longer be closed at all: the deny rule outranks `close`.
    patch(&s, analyst, &id, json!({"priority": "critical"})).await;
    let r = transition(&s, analyst, &id, "closed", Some("Chargebacks recovered")).await;
    r.assert_error(422, "transition_denied");
    assert_eq!(r.body["error"]["details"]["rule_id"], "no-critical-close");
    assert!(offered(&s, analyst, &id).await.is_empty());
    patch(&s, analyst, &id, json!({"priority": "high"})).await;
    let closed = transition(&s, analyst, &id, "closed", Some("Chargebacks recovered"))
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(closed["history_entry"]["rule_id"], "close");
    let history = s
        .get(&format!("/cases/{id}/history"), analyst)
        .await
        .assert_ok(200)["status_history"]
        .clone();
    let rules: Vec<&Value> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| &h["rule_id"])
        .collect();
    assert_eq!(
        rules,
        [
            &Value::Null,
            &json!("start"),
            &json!("submit"),
            &json!("close")
        ]
    );

    // A changed workflow decides the next move at once (no earlier version is remembered).
    transition(&s, analyst, &id, "review", Some("New evidence"))
        .await
        .assert_error(422, "invalid_transition");
    let mut doc = hv_fraud();
    doc["workflow"]["rules"].as_array_mut().unwrap().push(
        json!({"id": "reopen-review", "from": "closed", "to": "review", "require_reason": true}),
    );
    s.put("/case-types/CARD_FRAUD", s.a.key("admin"), doc)
        .await
        .assert_ok(200);
    let moved = transition(&s, analyst, &id, "review", Some("New evidence"))
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(moved["history_entry"]["rule_id"], "reopen-review");
    // The answer is the case as stored, attribute for attribute.
    let stored = get_case(&s, analyst, &id).await;
    for (k, v) in moved["case"].as_object().unwrap() {
        assert_eq!(&stored[k], v, "{k}");
    }

    // Another organisation's case is not found, whatever its rules would say.
    s.post(
        &format!("/cases/{id}/transitions"),
        s.b.key("admin"),
        json!({"to": "open", "reason": "x"}),
    )
    .await
    .assert_error(404, "not_found");
    s.stop().await;
}

/// The moves `GET /cases/{id}/transitions` offers to the holder of `key`.
async fn offered(s: &TestServer, key: &str, id: &str) -> Vec<Value> {
    s.get(&format!("/cases/{id}/transitions"), key)
        .await
        .assert_ok(200)["transitions"]
        .as_array()
        .unwrap()
        .clone()
}

/// Edits a case; the edit must be accepted.
async fn patch(s: &TestServer, key: &str, id: &str, body: Value) {
    s.call(
        reqwest::Method::PATCH,
        &format!("/cases/{id}"),
        Some(key),
        Some(body),
    )
    .await
    .assert_ok(200);
}
