//! GraphQL at `POST /graphql` (API.md "GraphQL"): the seed scenario end to end (a high-value
//! fraud case closes only after the compliance officer and then legal counsel approve, a
//! rejection vetoes, a missed deadline escalates and then expires), the same permission checks
//! and error codes as REST in `extensions.code`, tenant isolation, workflow rules, depth and
//! complexity limits, and malformed, oversized and unauthenticated requests.
use crate::both_backends;
use crate::cases::get_case;
use crate::common::*;
use serde_json::{Value, json};
use time::Duration;

both_backends!(
    the_seed_scenario_runs_through_graphql,
    graphql_answers_with_the_rest_error_codes,
    workflow_rules_are_read_and_upserted_through_graphql,
    bad_documents_and_requests_are_refused_clearly,
);

/// Posts a GraphQL document; answers the raw response (status and JSON body).
async fn gql_raw(s: &TestServer, key: Option<&str>, query: &str, variables: Value) -> Resp {
    let mut rb = s
        .http
        .post(format!("{}/graphql", s.base))
        .json(&json!({"query": query, "variables": variables}));
    if let Some(k) = key {
        rb = rb.bearer_auth(k);
    }
    s.send(rb).await
}

/// Runs an operation that must succeed; answers `data`.
async fn ok(s: &TestServer, key: &str, query: &str, variables: Value) -> Value {
    let r = gql_raw(s, Some(key), query, variables).await;
    assert_eq!(r.status.as_u16(), 200, "{:#}", r.body);
    assert!(r.body.get("errors").is_none(), "{:#}", r.body);
    r.body["data"].clone()
}

/// Runs an operation that must fail; answers its one error's `extensions`, after checking the
/// HTTP status is 200 and the error names `code`.
async fn fails(s: &TestServer, key: &str, query: &str, variables: Value, code: &str) -> Value {
    let r = gql_raw(s, Some(key), query, variables).await;
    assert_eq!(r.status.as_u16(), 200, "{:#}", r.body);
    let Some(errors) = r.body["errors"].as_array() else {
        panic!("expected {code}: {:#}", r.body)
    };
    assert_eq!(errors.len(), 1, "{:#}", r.body);
    let x = &errors[0]["extensions"];
    assert_eq!(x["code"], code, "{:#}", r.body);
    assert!(!errors[0]["message"].as_str().unwrap().is_empty());
    assert!(x["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    x.clone()
}

const CREATE: &str = "mutation($input: CreateCaseInput!) {
    createCase(input: $input) { id reference status priority assignedTo reasons version }
}";

const MOVE: &str = "mutation($id: ID!, $to: String!, $reason: String) {
    requestTransition(caseId: $id, to: $to, reason: $reason) {
        applied
        case { status version }
        historyEntry { from to ruleId actor reason }
        request { id status from to currentTier tiers { name quorum slots { role decision } } }
    }
}";

const APPROVE: &str = "mutation($id: ID!, $comment: String) {
    approveTransition(requestId: $id, comment: $comment) { id status currentTier effectiveAt
        appliedEntry { to requestId actorId approvals { tier } } case { status } }
}";

const REJECT: &str = "mutation($id: ID!, $comment: String!) {
    rejectTransition(requestId: $id, comment: $comment) { id status }
}";

const INBOX: &str = "{ pendingApprovals { id to requestedBy case { reference status } } }";

/// A high-value fraud case opened by the analyst and asked to close; answers (case id,
/// request id).
async fn asked_to_close(s: &TestServer, title: &str) -> (String, String) {
    let analyst = s.a.key("analyst");
    let c = ok(
        s,
        analyst,
        CREATE,
        json!({"input": {"caseType": "HV_FRAUD", "title": title, "priority": "critical",
                         "reasons": ["mule account"], "assignedTo": "analyst@acme.example"}}),
    )
    .await["createCase"]
        .clone();
    assert_eq!(c["status"], "investigating", "assignment starts the work");
    let id = c["id"].as_str().unwrap().to_string();
    let m = ok(
        s,
        analyst,
        MOVE,
        json!({"id": id, "to": "pending_closure", "reason": "Loss recovered"}),
    )
    .await;
    assert_eq!(m["requestTransition"]["applied"], true);
    assert_eq!(
        m["requestTransition"]["historyEntry"]["ruleId"],
        "submit-closure"
    );
    let m = ok(
        s,
        analyst,
        MOVE,
        json!({"id": id, "to": "closed", "reason": "Funds recovered, customer exited"}),
    )
    .await["requestTransition"]
        .clone();
    assert_eq!(m["applied"], false, "closing waits for approval");
    assert_eq!(m["case"]["status"], "pending_closure");
    assert!(m["historyEntry"].is_null());
    let rq = &m["request"];
    assert_eq!(rq["status"], "pending");
    assert_eq!(rq["tiers"][0]["name"], "Compliance");
    assert_eq!(rq["tiers"][1]["slots"][0]["role"], "legal_counsel");
    (id, rq["id"].as_str().unwrap().to_string())
}

async fn inbox(s: &TestServer, key: &str) -> Vec<String> {
    ok(s, key, INBOX, json!({})).await["pendingApprovals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

async fn the_seed_scenario_runs_through_graphql(b: Backend) {
    let s = start(b).await;
    let (analyst, co, legal) = (
        s.a.key("analyst"),
        s.a.key("compliance_officer"),
        s.a.key("legal_counsel"),
    );
    let (id, rid) = asked_to_close(&s, "Account takeover, EUR 900k").await;

    // Legal counsel waits for compliance; an analyst decides nothing.
    assert!(inbox(&s, legal).await.is_empty());
    assert_eq!(inbox(&s, co).await, [rid.as_str()]);
    let vars = json!({"id": rid});
    fails(&s, legal, APPROVE, vars.clone(), "not_an_eligible_approver").await;
    fails(&s, analyst, APPROVE, vars.clone(), "forbidden").await;
    let a = ok(
        &s,
        co,
        APPROVE,
        json!({"id": rid, "comment": "Checked the recovery"}),
    )
    .await;
    assert_eq!(a["approveTransition"]["status"], "pending");
    assert_eq!(a["approveTransition"]["currentTier"], 1);
    assert!(
        a["approveTransition"]["appliedEntry"].is_null(),
        "nothing applied yet"
    );
    fails(&s, co, APPROVE, vars.clone(), "duplicate_approver").await;
    assert_eq!(
        get_case(&s, analyst, &id).await["status"],
        "pending_closure"
    );
    assert_eq!(inbox(&s, legal).await, [rid.as_str()]);
    let a = ok(
        &s,
        legal,
        APPROVE,
        json!({"id": rid, "comment": "No litigation hold"}),
    )
    .await;
    assert_eq!(a["approveTransition"]["status"], "applied");
    assert!(a["approveTransition"]["effectiveAt"].is_string());
    // The last approval answers the move it applied, as the status history records it.
    let applied = &a["approveTransition"]["appliedEntry"];
    assert_eq!(applied["to"], "closed", "{a:#}");
    assert_eq!(applied["requestId"], rid.as_str());
    assert!(applied["actorId"].is_string());
    assert_eq!(applied["approvals"].as_array().unwrap().len(), 2);
    assert_eq!(a["approveTransition"]["case"]["status"], "closed");
    // Deciding a decided request is refused with REST's code.
    fails(&s, legal, APPROVE, vars, "request_not_pending").await;

    // The case, its history and its request read back through GraphQL.
    let read = ok(
        &s,
        analyst,
        "query($id: ID!) {
            case(id: $id) { status pendingRequest { id } allowedTransitions { to } }
            statusHistory(caseId: $id) { from to ruleId requestId actor actorId
                approvals { approver tier decision comment } }
        }",
        json!({"id": id}),
    )
    .await;
    assert_eq!(read["case"]["status"], "closed");
    assert!(read["case"]["pendingRequest"].is_null());
    let last = read["statusHistory"].as_array().unwrap().last().unwrap();
    assert_eq!(last["to"], "closed");
    assert_eq!(last["requestId"], rid.as_str());
    assert_eq!(last["actor"], "analyst@acme.example");
    let analyst_id = s.get("/me", analyst).await.assert_ok(200)["user_id"].clone();
    assert_eq!(last["actorId"], analyst_id, "{last:#}");
    let approvals: Vec<(&str, &str)> = last["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["tier"].as_str().unwrap(), a["approver"].as_str().unwrap()))
        .collect();
    assert_eq!(
        approvals,
        [
            ("Compliance", "compliance.officer@acme.example"),
            ("Legal", "legal.counsel@acme.example")
        ]
    );

    // Any rejection vetoes.
    let (id2, rid2) = asked_to_close(&s, "Card testing ring").await;
    ok(&s, co, APPROVE, json!({"id": rid2})).await;
    fails(
        &s,
        legal,
        REJECT,
        json!({"id": rid2, "comment": " "}),
        "validation_failed",
    )
    .await;
    let r = ok(
        &s,
        legal,
        REJECT,
        json!({"id": rid2, "comment": "Pending litigation"}),
    )
    .await;
    assert_eq!(r["rejectTransition"]["status"], "rejected");
    assert_eq!(
        get_case(&s, analyst, &id2).await["status"],
        "pending_closure"
    );

    // A missed deadline escalates compliance's tier to the MLRO, then legal's expires.
    let (_, rid3) = asked_to_close(&s, "Invoice fraud").await;
    s.clock.advance(Duration::days(2) + Duration::minutes(1));
    casegate_service::approvals::run_timers(&s.svc, 100)
        .await
        .expect("timers");
    let q = "query($id: ID!) { transitionRequest(id: $id) { status currentTier
        tiers { name escalated slots { role escalated } } } }";
    let t = ok(&s, analyst, q, json!({"id": rid3})).await["transitionRequest"].clone();
    assert_eq!(t["status"], "pending");
    assert_eq!(t["tiers"][0]["escalated"], true);
    assert!(
        t["tiers"][0]["slots"]
            .as_array()
            .unwrap()
            .iter()
            .any(|sl| sl["role"] == "mlro" && sl["escalated"] == true),
        "{t:#}"
    );
    assert_eq!(inbox(&s, s.a.key("mlro")).await, [rid3.as_str()]);
    ok(&s, s.a.key("mlro"), APPROVE, json!({"id": rid3})).await;
    s.clock.advance(Duration::days(3) + Duration::minutes(1));
    casegate_service::approvals::run_timers(&s.svc, 100)
        .await
        .expect("timers");
    let t = ok(&s, analyst, q, json!({"id": rid3})).await;
    assert_eq!(t["transitionRequest"]["status"], "expired");
    s.stop().await;
}

async fn graphql_answers_with_the_rest_error_codes(b: Backend) {
    let s = start(b).await;
    // Legal counsel may read cases, not open or move them.
    let (analyst, viewer) = (s.a.key("analyst"), s.a.key("legal_counsel"));
    let input =
        json!({"input": {"caseType": "AML_INV", "title": "Structuring", "priority": "high"}});
    let c = ok(&s, analyst, CREATE, input.clone()).await["createCase"].clone();
    let id = c["id"].as_str().unwrap().to_string();
    let reference = c["reference"].as_str().unwrap().to_string();

    // Same permission checks: a viewer reads but does not create or move.
    let x = fails(&s, viewer, CREATE, input.clone(), "forbidden").await;
    assert_eq!(x["type"], "permission_error");
    fails(
        &s,
        viewer,
        MOVE,
        json!({"id": id, "to": "closed"}),
        "forbidden",
    )
    .await;
    let q = "query($id: ID!) { case(id: $id) { id reference title } }";
    let seen = ok(&s, viewer, q, json!({"id": reference})).await;
    assert_eq!(seen["case"]["id"], id.as_str(), "found by reference too");

    // Same validation: the field at fault is named.
    let x = fails(
        &s,
        analyst,
        CREATE,
        json!({"input": {"caseType": "AML_INV", "title": "x", "priority": "urgent"}}),
        "validation_failed",
    )
    .await;
    assert_eq!(x["param"], "priority");
    let x = fails(
        &s,
        analyst,
        CREATE,
        json!({"input": {"caseType": "NOPE", "title": "x"}}),
        "validation_failed",
    )
    .await;
    assert_eq!(x["param"], "case_type");
    let x = fails(
        &s,
        analyst,
        MOVE,
        json!({"id": id, "to": "nowhere"}),
        "invalid_transition",
    )
    .await;
    assert!(x["details"]["allowed"].is_array(), "{x:#}");

    // Another organisation's case does not exist here: null to read, not_found to move.
    let other = s.b.key("admin");
    let none = ok(&s, other, q, json!({"id": id})).await;
    assert!(none["case"].is_null());
    let none = ok(&s, other, q, json!({"id": reference})).await;
    assert!(none["case"].is_null());
    fails(
        &s,
        other,
        MOVE,
        json!({"id": id, "to": "closed", "reason": "x"}),
        "not_found",
    )
    .await;
    fails(
        &s,
        other,
        "query($id: ID!) { allowedTransitions(caseId: $id) { to } }",
        json!({"id": id}),
        "not_found",
    )
    .await;
    let list = ok(
        &s,
        other,
        "{ cases(filter: {caseType: \"AML_INV\"}) { total cases { id } } }",
        json!({}),
    )
    .await;
    assert_eq!(list["cases"]["total"], 0);
    let mine = ok(
        &s,
        analyst,
        "query($q: String) { cases(filter: {q: $q}, limit: 5) { total limit cases { id title } } }",
        json!({"q": "structuring"}),
    )
    .await;
    assert_eq!(mine["cases"]["total"], 1);
    assert_eq!(mine["cases"]["cases"][0]["id"], id.as_str());
    let x = fails(
        &s,
        analyst,
        "{ cases(limit: 500) { total } }",
        json!({}),
        "validation_failed",
    )
    .await;
    assert_eq!(x["param"], "limit");

    // Nothing of that changed the case.
    let after = get_case(&s, analyst, &id).await;
    assert_eq!(after["status"], c["status"]);
    assert_eq!(after["version"], c["version"]);
    s.stop().await;
}

async fn workflow_rules_are_read_and_upserted_through_graphql(b: Backend) {
    let s = start(b).await;
    let (admin, analyst) = (s.a.key("admin"), s.a.key("analyst"));
    let read = "{ workflow(caseType: \"HV_FRAUD\") { caseType version initialStatus
        statuses { key category } rules { id from to requireReason approval } } }";
    let w = ok(&s, analyst, read, json!({})).await["workflow"].clone();
    assert_eq!(w["initialStatus"], "open");
    let close = w["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "close")
        .unwrap();
    assert_eq!(close["approval"]["tiers"][1]["name"], "Legal");
    let version = w["version"].as_i64().unwrap();
    assert!(
        ok(
            &s,
            analyst,
            "{ workflow(caseType: \"NOPE\") { version } }",
            json!({})
        )
        .await["workflow"]
            .is_null()
    );

    let upsert = "mutation($rule: TransitionRuleInput!) {
        upsertTransitionRule(caseType: \"HV_FRAUD\", rule: $rule) {
            id from to priority effect requireReason preconditions { expr message } createdAt }
    }";
    // A deny rule that wins over `start` for low-priority cases.
    let rule = json!({"from": "open", "to": "investigating", "priority": 10, "effect": "DENY",
                      "appliesWhen": "case.priority == 'low'"});
    fails(&s, analyst, upsert, json!({"rule": rule}), "forbidden").await;
    let saved = ok(&s, admin, upsert, json!({"rule": rule})).await["upsertTransitionRule"].clone();
    assert_eq!(saved["effect"], "DENY");
    assert!(saved["createdAt"].is_string());
    let rule_id = saved["id"].as_str().unwrap().to_string();
    let w = ok(&s, analyst, read, json!({})).await["workflow"].clone();
    assert_eq!(w["version"], version + 1);
    let low = ok(
        &s,
        analyst,
        CREATE,
        json!({"input": {"caseType": "HV_FRAUD", "title": "Small refund", "priority": "low"}}),
    )
    .await["createCase"]["id"]
        .clone();
    fails(
        &s,
        analyst,
        MOVE,
        json!({"id": low, "to": "investigating"}),
        "transition_denied",
    )
    .await;

    // Replacing by id keeps one rule; a precondition now guards it instead of a deny.
    let rule = json!({"id": rule_id, "from": "open", "to": "investigating", "priority": 10,
                      "preconditions": [{"expr": "case.priority != 'low'", "message": "Low priority cases are not investigated"}]});
    let saved = ok(&s, admin, upsert, json!({"rule": rule})).await["upsertTransitionRule"].clone();
    assert_eq!(saved["id"], rule_id.as_str());
    assert_eq!(saved["effect"], "ALLOW");
    let w = ok(&s, analyst, read, json!({})).await["workflow"].clone();
    assert_eq!(w["version"], version + 2);
    assert_eq!(
        w["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["id"] == rule_id.as_str())
            .count(),
        1
    );
    let x = fails(
        &s,
        analyst,
        MOVE,
        json!({"id": low, "to": "investigating"}),
        "precondition_failed",
    )
    .await;
    assert_eq!(
        x["details"]["failures"][0]["message"],
        "Low priority cases are not investigated"
    );

    // The whole workflow is checked: every problem is listed and nothing is saved.
    let bad = json!({"from": "limbo", "to": "closed", "appliesWhen": "case.priority ==",
                     "approval": {"tiers": []}});
    let x = fails(&s, admin, upsert, json!({"rule": bad}), "invalid_workflow").await;
    let problems = x["details"]["problems"].as_array().unwrap();
    assert!(problems.len() >= 2, "{x:#}");
    let x = fails(
        &s,
        admin,
        upsert,
        json!({"rule": {"from": "open", "to": "closed", "effectiveFrom": "yesterday"}}),
        "validation_failed",
    )
    .await;
    assert_eq!(x["param"], "rule");
    // Each organisation has its own workflows: another's rule lands in its own copy of the
    // built-in type, and a type only this organisation defined does not exist for it.
    let theirs = ok(
        &s,
        s.b.key("admin"),
        upsert,
        json!({"rule": {"from": "open", "to": "closed"}}),
    )
    .await;
    assert_eq!(theirs["upsertTransitionRule"]["to"], "closed");
    s.put(
        "/case-types/CARD_FRAUD",
        admin,
        json!({"name": "Card fraud", "workflow": {
            "statuses": [{"key": "open", "label": "Open", "category": "open"},
                         {"key": "closed", "label": "Closed", "category": "terminal"}],
            "initial_status": "open", "rules": [{"id": "close", "from": "open", "to": "closed"}]}}),
    )
    .await
    .assert_ok(201);
    let x = fails(
        &s,
        s.b.key("admin"),
        "mutation { upsertTransitionRule(caseType: \"CARD_FRAUD\", rule: {from: \"open\", to: \"closed\"}) { id } }",
        json!({}),
        "not_found",
    )
    .await;
    assert_eq!(x["type"], "not_found_error");
    let w = ok(&s, analyst, read, json!({})).await["workflow"].clone();
    assert_eq!(w["version"], version + 2, "refused rules change nothing");
    s.stop().await;
}

async fn bad_documents_and_requests_are_refused_clearly(b: Backend) {
    let s = start(b).await;
    let analyst = s.a.key("analyst");

    // No credential: the same 401 as REST, before GraphQL runs.
    let r = gql_raw(&s, None, "{ pendingApprovals { id } }", json!({})).await;
    r.assert_error(401, "unauthenticated");
    let r = gql_raw(
        &s,
        Some("cg_test_notakey"),
        "{ pendingApprovals { id } }",
        json!({}),
    )
    .await;
    r.assert_error(401, "unauthenticated");
    // Another tenant named in X-Tenant-ID.
    let rb = s
        .http
        .post(format!("{}/graphql", s.base))
        .bearer_auth(analyst)
        .header("X-Tenant-ID", &s.b.id)
        .json(&json!({"query": "{ pendingApprovals { id } }"}));
    s.send(rb).await.assert_error(403, "tenant_mismatch");

    // A body that is not JSON, or too large, gets the REST error shape.
    let rb = s
        .http
        .post(format!("{}/graphql", s.base))
        .bearer_auth(analyst)
        .header("content-type", "application/json")
        .body("{ pendingApprovals");
    s.send(rb).await.assert_error(400, "malformed_request");
    // Just over the 1 MiB limit: the less is left unread when the server answers, the rarer
    // the reset that races the answer.
    let huge = format!(
        "{{ pendingApprovals {{ id }} }} #{}",
        "x".repeat((1 << 20) + (64 << 10))
    );
    gql_raw(&s, Some(analyst), &huge, json!({}))
        .await
        .assert_error(413, "payload_too_large");

    // GraphQL's own refusals carry codes too.
    fails(
        &s,
        analyst,
        "{ pendingApprovals { id ",
        json!({}),
        "malformed_request",
    )
    .await;
    fails(
        &s,
        analyst,
        "{ pendingApprovals { idd } }",
        json!({}),
        "validation_failed",
    )
    .await;
    fails(
        &s,
        analyst,
        "query($id: ID!) { case(id: $id) { id } }",
        json!({"id": 42.5}),
        "validation_failed",
    )
    .await;
    // Too deep: requests inside cases inside requests inside ...
    let mut deep = String::from("id");
    for _ in 0..8 {
        deep = format!("case {{ pendingRequest {{ {deep} }} }}");
    }
    let x = fails(
        &s,
        analyst,
        &format!("{{ pendingApprovals(limit: 1) {{ {deep} }} }}"),
        json!({}),
        "query_too_complex",
    )
    .await;
    assert_eq!(x["details"]["max_depth"], 15);
    // Too costly: 200 cases each reading history and allowed moves, twice over.
    fails(
        &s,
        analyst,
        "{ a: cases(limit: 200) { cases { statusHistory { to } allowedTransitions { to } } }
           b: cases(limit: 200) { cases { statusHistory { to } allowedTransitions { to } } } }",
        json!({}),
        "query_too_complex",
    )
    .await;

    // The standard introspection query fits within the limits.
    let intro = ok(&s, analyst, INTROSPECTION, json!({})).await;
    let names: Vec<&str> = intro["__schema"]["types"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for t in [
        "Case",
        "TransitionRequest",
        "StatusHistoryEntry",
        "Workflow",
    ] {
        assert!(names.contains(&t), "{t} missing from {names:?}");
    }

    // The schema, served in SDL without a credential, has the operations of API.md.
    let sdl = s.text("/graphql/schema.graphql").await;
    for op in [
        "case(id: ID!): Case",
        "cases(filter: CaseFilter, limit: Int, offset: Int): CasePage!",
        "allowedTransitions(caseId: ID!): [AllowedTransition!]!",
        "statusHistory(caseId: ID!): [StatusHistoryEntry!]!",
        "transitionRequest(id: ID!): TransitionRequest",
        "pendingApprovals(limit: Int, offset: Int): [TransitionRequest!]!",
        "workflow(caseType: String!): Workflow",
        "createCase(input: CreateCaseInput!): Case!",
        "requestTransition(caseId: ID!, to: String!, reason: String, expectedVersion: Int): TransitionResult!",
        "approveTransition(requestId: ID!, comment: String): TransitionRequest!",
        "rejectTransition(requestId: ID!, comment: String!): TransitionRequest!",
        "upsertTransitionRule(caseType: String!, rule: TransitionRuleInput!): TransitionRule!",
    ] {
        // Without descriptions and line breaks.
        let code: String = sdl.split("\"\"\"").step_by(2).collect();
        let flat = code.split_whitespace().collect::<Vec<_>>().join(" ");
        let flat = flat.replace("( ", "(").replace(" )", ")");
        assert!(flat.contains(op), "{op} missing from\n{flat}");
    }
    s.stop().await;
}

/// The introspection query GraphiQL and graphql-js send (`getIntrospectionQuery()`).
const INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description
    args { ...InputValue }
    type { ...TypeRef }
    isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name description type { ...TypeRef } defaultValue
}
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
}
"#;
