//! Cases through the API (docs/cases.md): creation and reading, conditional edits, assignment,
//! the fixed lifecycle, comments, attachments, escalation, dispositions and overrides, alerts,
//! relations, list and search, tenant isolation, and the audit trail of every command.
use crate::audit::hex;
use crate::both_backends;
use crate::common::*;
use casegate_service::ServiceConfig;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

both_backends!(
    cases_are_created_and_read_by_id_or_reference,
    bad_case_input_is_refused_and_changes_nothing,
    edits_are_conditional_and_merge_custom_fields,
    assignment_moves_the_case_along_its_workflow,
    transitions_follow_the_lifecycle_and_reopen_clears_the_decision,
    comments_are_recorded_and_bounded,
    attachments_are_linked_or_uploaded_and_checked,
    escalation_disposition_and_override,
    alert_dispositions_close_the_alert_and_link_the_case,
    relations_link_parties_and_cases,
    cases_are_listed_filtered_and_searched,
    other_tenants_cases_answer_404_and_stay_unchanged,
    every_case_command_is_audited_once,
);

/// A small but well-formed PDF.
const PDF: &[u8] = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";

async fn cases_are_created_and_read_by_id_or_reference(b: Backend) {
    let s = start(b).await;
    let analyst = s.a.key("analyst");
    // The built-in types are there; defining one needs workflow.admin.
    let types = s.get("/case-types", analyst).await.assert_ok(200).clone();
    let keys: Vec<&str> = types["case_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    for k in ["ALERT", "SCREENING", "AML_INV", "FRAUD", "KYC_REV"] {
        assert!(keys.contains(&k), "{keys:?}");
    }
    s.put("/case-types/TRADE_FIN", analyst, trade_fin_type())
        .await
        .assert_error(403, "forbidden");
    let tf = define_trade_fin(&s).await;
    assert_eq!(tf["key"], "TRADE_FIN");
    assert_eq!(tf["builtin"], false);
    assert_eq!(tf["workflow"]["initial_status"], "open", "{tf:#}");
    let got = s
        .get("/case-types/TRADE_FIN", analyst)
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(got["fields"].as_array().unwrap().len(), 3);

    s.clock.advance(time::Duration::minutes(5));
    let r = s
        .post(
            "/cases",
            analyst,
            json!({"case_type": "AML_INV", "title": "Structuring at branch 12"}),
        )
        .await;
    let c = r.assert_ok(201).clone();
    let id = id_of(&c);
    assert_eq!(
        r.header("location"),
        Some(format!("/api/v1/cases/{id}").as_str())
    );
    assert_eq!(r.header("etag"), Some("\"1\""));
    let first = reference_number(&c);
    assert_eq!(c["case_type"], "AML_INV");
    assert_eq!(c["status"], "open");
    assert_eq!(c["priority"], "medium");
    assert_eq!(c["version"], 1);
    assert_eq!(c["escalated"], false);
    assert!(c["assigned_to"].is_null() && c["disposition"].is_null());
    assert_eq!(c["created_by"], "analyst@acme.example");
    assert_eq!(c["created_at"], "2026-03-02T09:05:00.000000Z");

    // The detail, by id and by reference.
    let r = s.get(&format!("/cases/{id}"), analyst).await;
    let d = r.assert_ok(200).clone();
    assert_eq!(r.header("etag"), Some("\"1\""));
    assert_eq!(d["title"], "Structuring at branch 12");
    for list in ["comments", "attachments", "relations", "tasks"] {
        assert_eq!(d[list], json!([]), "{list}: {d:#}");
    }
    assert!(d["activities"].is_array(), "{d:#}");
    for nothing in ["pending_request", "sar_filing"] {
        assert!(
            d.get(nothing).is_some_and(Value::is_null),
            "{nothing}: {d:#}"
        );
    }
    let history = d["status_history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{d:#}");
    assert!(history[0]["from"].is_null());
    assert_eq!(history[0]["to"], "open");
    let reference = c["reference"].as_str().unwrap();
    let by_ref = s
        .get(&format!("/cases/{reference}"), analyst)
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(by_ref["id"], c["id"]);
    s.get(&format!("/cases/{}", uuid::Uuid::new_v4()), analyst)
        .await
        .assert_error(404, "not_found");
    s.get("/cases/CASE-2026-999999", analyst)
        .await
        .assert_error(404, "not_found");

    // Each type starts in its own initial status; references are sequential.
    let sc = create_case(
        &s,
        analyst,
        json!({"case_type": "SCREENING", "title": "Name match", "priority": "high"}),
    )
    .await;
    assert_eq!(sc["status"], "OPEN");
    assert_eq!(sc["priority"], "high");
    assert_eq!(reference_number(&sc), first + 1);

    // Custom fields round-trip.
    let tc = create_case(
        &s,
        analyst,
        json!({"case_type": "TRADE_FIN", "title": "LC discrepancy",
               "fields": {"amount": 5000, "counterparty": "Initech", "booked_on": "2026-02-27"}}),
    )
    .await;
    assert_eq!(reference_number(&tc), first + 2);
    assert_eq!(tc["status"], "open");
    for v in [tc.clone(), get_case(&s, analyst, &id_of(&tc)).await] {
        assert_eq!(v["fields"]["amount"].as_f64(), Some(5000.0), "{v:#}");
        assert_eq!(v["fields"]["counterparty"], "Initech");
        assert_eq!(v["fields"]["booked_on"], "2026-02-27");
    }
    // A changed type applies to the next case at once (creation keeps decoded types by
    // version): `booked_on` is no longer required, a new `desk` is.
    let mut changed = trade_fin_type();
    changed["fields"][2]["required"] = json!(false);
    changed["fields"].as_array_mut().unwrap().push(
        json!({"key": "desk", "label": "Desk", "type": "string", "size": "S", "required": true}),
    );
    s.put("/case-types/TRADE_FIN", s.a.key("admin"), changed)
        .await
        .assert_ok(200);
    let undated =
        json!({"case_type": "TRADE_FIN", "title": "LC discrepancy", "fields": {"amount": 1}});
    let r = s.post("/cases", analyst, undated.clone()).await;
    r.assert_error(422, "validation_failed");
    assert_eq!(r.body["error"]["param"], "fields.desk", "{:#}", r.body);
    let mut with_desk = undated;
    with_desk["fields"]["desk"] = json!("London");
    let tc2 = create_case(&s, analyst, with_desk).await;
    assert_eq!(tc2["fields"]["desk"], "London");

    // Globex has its own sequence; acme's goes on where it was.
    let other = s.b.key("analyst");
    let g1 = create_case(&s, other, json!({"case_type": "AML_INV", "title": "G1"})).await;
    let g2 = create_case(&s, other, json!({"case_type": "AML_INV", "title": "G2"})).await;
    assert_eq!(reference_number(&g1), first);
    assert_eq!(reference_number(&g2), first + 1);
    let next = create_case(
        &s,
        analyst,
        json!({"case_type": "FRAUD", "title": "Card fraud"}),
    )
    .await;
    assert_eq!(reference_number(&next), first + 4);
    s.stop().await;
}

async fn bad_case_input_is_refused_and_changes_nothing(b: Backend) {
    let s = start(b).await;
    define_trade_fin(&s).await;
    let analyst = s.a.key("analyst");
    create_case(
        &s,
        analyst,
        json!({"case_type": "AML_INV", "title": "Existing"}),
    )
    .await;
    let before = list(&s, analyst, "").await["total"].clone();
    assert_eq!(before, 1);
    let booked = "2026-02-27";
    let many_reasons: Vec<String> = (0..51).map(|i| format!("reason {i}")).collect();
    for (body, param) in [
        (
            json!({"case_type": "NOPE", "title": "x"}),
            Some("case_type"),
        ),
        (json!({"title": "x"}), Some("case_type")),
        (json!({"case_type": "AML_INV"}), Some("title")),
        (json!({"case_type": "AML_INV", "title": ""}), Some("title")),
        (
            json!({"case_type": "AML_INV", "title": "t".repeat(501)}),
            Some("title"),
        ),
        (
            json!({"case_type": "AML_INV", "title": "x", "priority": "urgent"}),
            Some("priority"),
        ),
        (
            json!({"case_type": "AML_INV", "title": "x", "score": 101}),
            None,
        ),
        (
            json!({"case_type": "AML_INV", "title": "x", "reasons": many_reasons}),
            None,
        ),
        (
            json!({"case_type": "AML_INV", "title": "x", "notes": "n".repeat(100_001)}),
            None,
        ),
        (
            json!({"case_type": "TRADE_FIN", "title": "x", "fields": {"amount": "lots", "booked_on": booked}}),
            Some("fields.amount"),
        ),
        (
            json!({"case_type": "TRADE_FIN", "title": "x", "fields": {"amount": 10}}),
            Some("fields.booked_on"),
        ),
        (
            json!({"case_type": "TRADE_FIN", "title": "x", "fields": {"booked_on": "yesterday"}}),
            Some("fields.booked_on"),
        ),
        (
            json!({"case_type": "TRADE_FIN", "title": "x", "fields": {"booked_on": booked, "colour": "red"}}),
            None,
        ),
    ] {
        let r = s.post("/cases", analyst, body.clone()).await;
        assert_eq!(r.status.as_u16(), 422, "{body}: {:#}", r.body);
        r.assert_error(422, "validation_failed");
        if let Some(p) = param {
            assert_eq!(r.body["error"]["param"], p, "{body}");
        }
    }

    // Malformed and oversized bodies.
    let raw = |text: String| {
        s.http
            .post(s.url("/cases"))
            .bearer_auth(analyst)
            .header("content-type", "application/json")
            .body(text)
    };
    s.send(raw("{\"case_type\": ".into()))
        .await
        .assert_error(400, "malformed_request");
    s.send(raw(format!(
        "{{\"case_type\": \"AML_INV\", \"title\": \"{}\"}}",
        "t".repeat(2 * 1024 * 1024)
    )))
    .await
    .assert_error(413, "payload_too_large");

    // A person of another organisation looks exactly like a missing one.
    let globex_analyst = user_id(&s, s.b.key("admin"), "analyst@globex.example").await;
    for who in [
        "analyst@globex.example",
        globex_analyst.as_str(),
        "nobody@acme.example",
    ] {
        s.post(
            "/cases",
            analyst,
            json!({"case_type": "AML_INV", "title": "x", "assigned_to": who}),
        )
        .await
        .assert_error(404, "not_found");
    }

    // Credentials and permissions.
    let ok = json!({"case_type": "AML_INV", "title": "Allowed shape"});
    s.call(Method::POST, "/cases", None, Some(ok.clone()))
        .await
        .assert_error(401, "unauthenticated");
    s.get("/cases", "cg_live_notarealkeynotarealkeynotarealkey12")
        .await
        .assert_error(401, "unauthenticated");
    for role in ["auditor", "compliance_officer", "legal_counsel"] {
        s.post("/cases", s.a.key(role), ok.clone())
            .await
            .assert_error(403, "forbidden");
    }
    // The auditor still reads.
    assert_eq!(list(&s, s.a.key("auditor"), "").await["total"], before);

    assert_eq!(
        list(&s, analyst, "").await["total"],
        before,
        "refused requests change nothing"
    );
    assert_eq!(list(&s, s.b.key("analyst"), "").await["total"], 0);
    s.stop().await;
}

async fn edits_are_conditional_and_merge_custom_fields(b: Backend) {
    let s = start(b).await;
    define_trade_fin(&s).await;
    let (analyst, senior) = (s.a.key("analyst"), s.a.key("senior_analyst"));
    let c = create_case(
        &s,
        analyst,
        json!({"case_type": "TRADE_FIN", "title": "LC discrepancy",
               "fields": {"amount": 100, "counterparty": "Initech", "booked_on": "2026-02-27"}}),
    )
    .await;
    let id = id_of(&c);
    let path = format!("/cases/{id}");

    let r = patch_if_match(
        &s,
        analyst,
        &id,
        "\"1\"",
        json!({"title": "LC discrepancy, Rotterdam", "priority": "high", "fields": {"amount": 250}}),
    )
    .await;
    let v2 = r.assert_ok(200).clone();
    assert_eq!(r.header("etag"), Some("\"2\""));
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["title"], "LC discrepancy, Rotterdam");
    assert_eq!(v2["priority"], "high");
    assert_eq!(v2["fields"]["amount"].as_f64(), Some(250.0), "{v2:#}");
    assert_eq!(v2["fields"]["counterparty"], "Initech", "fields merge");
    assert_eq!(v2["fields"]["booked_on"], "2026-02-27", "fields merge");

    // The same, now stale, If-Match: 409 naming the current version; nothing changes.
    let r = patch_if_match(&s, analyst, &id, "\"1\"", json!({"title": "Lost update"})).await;
    r.assert_error(409, "version_conflict");
    assert_eq!(r.body["error"]["details"]["current_version"], 2);
    let now = get_case(&s, analyst, &id).await;
    assert_eq!(now["title"], "LC discrepancy, Rotterdam");
    assert_eq!(now["version"], 2);

    // `expected_version` in the body works the same.
    let r = s
        .call(
            Method::PATCH,
            &path,
            Some(analyst),
            Some(json!({"title": "Lost update", "expected_version": 1})),
        )
        .await;
    r.assert_error(409, "version_conflict");
    assert_eq!(r.body["error"]["details"]["current_version"], 2);
    let v3 = s
        .call(
            Method::PATCH,
            &path,
            Some(analyst),
            Some(json!({"notes": "Checked with the issuing bank", "expected_version": 2})),
        )
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(v3["version"], 3);
    assert_eq!(v3["notes"], "Checked with the issuing bank");
    assert_eq!(v3["title"], "LC discrepancy, Rotterdam");

    // `null` clears an optional field; a required one cannot be cleared; types are checked.
    let v4 = s
        .call(
            Method::PATCH,
            &path,
            Some(analyst),
            Some(json!({"fields": {"counterparty": null}})),
        )
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(v4["version"], 4);
    assert!(
        v4["fields"].get("counterparty").is_none_or(Value::is_null),
        "{v4:#}"
    );
    assert_eq!(v4["fields"]["amount"].as_f64(), Some(250.0));
    for bad in [
        json!({"fields": {"booked_on": null}}),
        json!({"fields": {"amount": "lots"}}),
        json!({"priority": "urgent"}),
        json!({"title": ""}),
    ] {
        let r = s
            .call(Method::PATCH, &path, Some(analyst), Some(bad.clone()))
            .await;
        assert_eq!(r.status.as_u16(), 422, "{bad}: {:#}", r.body);
        r.assert_error(422, "validation_failed");
    }
    s.call(
        Method::PATCH,
        &path,
        Some(s.a.key("auditor")),
        Some(json!({"title": "Auditor edit"})),
    )
    .await
    .assert_error(403, "forbidden");
    assert_eq!(get_case(&s, analyst, &id).await["version"], 4);

    // Two editors holding the same ETag race: exactly one edit lands, the other gets 409.
    let (r1, r2) = tokio::join!(
        patch_if_match(&s, analyst, &id, "\"4\"", json!({"notes": "first editor"})),
        patch_if_match(&s, senior, &id, "\"4\"", json!({"notes": "second editor"}))
    );
    let (won, lost) = if r1.status.as_u16() == 200 {
        (r1, r2)
    } else {
        (r2, r1)
    };
    won.assert_ok(200);
    lost.assert_error(409, "version_conflict");
    let raced = get_case(&s, analyst, &id).await;
    assert_eq!(
        (&raced["version"], &raced["notes"]),
        (&json!(5), &won.body["notes"])
    );

    // A terminal status locks every field.
    transition(&s, analyst, &id, "closed", Some("Documents reconciled"))
        .await
        .assert_ok(200);
    let closed = get_case(&s, analyst, &id).await;
    let r = s
        .call(
            Method::PATCH,
            &path,
            Some(analyst),
            Some(json!({"title": "After the fact"})),
        )
        .await;
    r.assert_error(422, "field_restricted");
    assert_eq!(r.body["error"]["param"], "title");
    s.call(
        Method::PATCH,
        &path,
        Some(analyst),
        Some(json!({"fields": {"amount": 1}})),
    )
    .await
    .assert_error(422, "field_restricted");
    let after = get_case(&s, analyst, &id).await;
    assert_eq!(after["title"], "LC discrepancy, Rotterdam");
    assert_eq!(after["fields"]["amount"].as_f64(), Some(250.0));
    assert_eq!(after["version"], closed["version"]);
    s.stop().await;
}

async fn assignment_moves_the_case_along_its_workflow(b: Backend) {
    let s = start(b).await;
    let (analyst, admin) = (s.a.key("analyst"), s.a.key("admin"));
    let c = create_case(
        &s,
        analyst,
        json!({"case_type": "AML_INV", "title": "Cash structuring"}),
    )
    .await;
    let id = id_of(&c);
    let assign = format!("/cases/{id}/assign");

    let a = s
        .post(
            &assign,
            analyst,
            json!({"assigned_to": "senior.analyst@acme.example"}),
        )
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(a["assigned_to"], "senior.analyst@acme.example");
    let senior_id = user_id(&s, admin, "senior.analyst@acme.example").await;
    assert_eq!(a["assigned_to_id"], senior_id);
    assert_eq!(
        a["status"], "investigating",
        "open → investigating on assign"
    );
    assert_eq!(a["version"], 2);
    let assigned = case_events(&s, &id, "case.assigned").await;
    assert_eq!(assigned.len(), 1);
    assert_eq!(assigned[0]["actor"], "analyst@acme.example");

    // Another organisation's user, by email or id, answers like a missing one; nothing changes.
    let globex_analyst = user_id(&s, s.b.key("admin"), "analyst@globex.example").await;
    for who in [
        "analyst@globex.example",
        globex_analyst.as_str(),
        "nobody@acme.example",
    ] {
        s.post(&assign, analyst, json!({"assigned_to": who}))
            .await
            .assert_error(404, "not_found");
    }
    let same = get_case(&s, analyst, &id).await;
    assert_eq!(same["assigned_to"], "senior.analyst@acme.example");
    assert_eq!(same["version"], 2);

    // By id; the case is past on_assign's `from`, so it stays where it is.
    let analyst_id = user_id(&s, admin, "analyst@acme.example").await;
    let a = s
        .post(&assign, analyst, json!({"assigned_to": analyst_id}))
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(a["assigned_to"], "analyst@acme.example");
    assert_eq!(a["assigned_to_id"], analyst_id);
    assert_eq!(a["status"], "investigating");
    assert_eq!(a["version"], 3);

    // Stale version and missing permission.
    s.post(
        &assign,
        analyst,
        json!({"assigned_to": null, "expected_version": 2}),
    )
    .await
    .assert_error(409, "version_conflict");
    s.post(&assign, s.a.key("auditor"), json!({"assigned_to": null}))
        .await
        .assert_error(403, "forbidden");
    assert_eq!(
        get_case(&s, analyst, &id).await["assigned_to"],
        "analyst@acme.example"
    );

    // Unassign.
    let a = s
        .post(
            &assign,
            analyst,
            json!({"assigned_to": null, "expected_version": 3}),
        )
        .await
        .assert_ok(200)
        .clone();
    assert!(
        a["assigned_to"].is_null() && a["assigned_to_id"].is_null(),
        "{a:#}"
    );
    assert_eq!(a["status"], "investigating");
    assert_eq!(a["version"], 4);
    assert_eq!(case_events(&s, &id, "case.assigned").await.len(), 3);

    // A case opened with an assignee moves on assignment at once: created open, then moved.
    let opened = create_case(
        &s,
        analyst,
        json!({"case_type": "AML_INV", "title": "Mule ring", "assigned_to": "analyst@acme.example"}),
    )
    .await;
    assert_eq!(
        (&opened["status"], &opened["version"]),
        (&json!("investigating"), &json!(1))
    );
    assert_eq!(
        status_moves(&get_case(&s, analyst, &id_of(&opened)).await["status_history"]),
        [
            (Value::Null, json!("open")),
            (json!("open"), json!("investigating"))
        ]
    );
    s.stop().await;
}

async fn transitions_follow_the_lifecycle_and_reopen_clears_the_decision(b: Backend) {
    let s = start(b).await;
    let analyst = s.a.key("analyst");
    let c = create_case(
        &s,
        analyst,
        json!({"case_type": "AML_INV", "title": "Layering via shell companies"}),
    )
    .await;
    let id = id_of(&c);
    let moves = s
        .get(&format!("/cases/{id}/transitions"), analyst)
        .await
        .assert_ok(200)["transitions"]
        .as_array()
        .unwrap()
        .clone();
    let mut tos: Vec<&str> = moves.iter().map(|m| m["to"].as_str().unwrap()).collect();
    tos.sort();
    assert_eq!(
        tos,
        [
            "closed",
            "determination",
            "filed",
            "filing",
            "investigating",
            "no_sar"
        ]
    );
    for m in &moves {
        let terminal = matches!(m["to"].as_str().unwrap(), "filed" | "no_sar" | "closed");
        assert_eq!(m["requires_reason"], terminal, "{m}");
        assert_eq!(m["requires_approval"], false, "{m}");
        assert!(m["rule_id"].is_null(), "{m}");
        assert_eq!(m["blocked_by"], json!([]), "{m}");
    }

    // An unknown target names what is allowed; a terminal target needs a reason.
    let r = transition(&s, analyst, &id, "archived", None).await;
    r.assert_error(422, "invalid_transition");
    let allowed = r.body["error"]["details"]["allowed"].as_array().unwrap();
    assert!(allowed.contains(&json!("investigating")) && allowed.contains(&json!("closed")));
    assert!(!allowed.contains(&json!("archived")));
    transition(&s, analyst, &id, "closed", None)
        .await
        .assert_error(422, "reason_required");
    let unchanged = get_case(&s, analyst, &id).await;
    assert_eq!(
        (unchanged["status"].as_str(), unchanged["version"].as_i64()),
        (Some("open"), Some(1))
    );

    // A plain move, then the `/status` alias.
    let r = transition(&s, analyst, &id, "determination", None).await;
    let moved = r.assert_ok(200).clone();
    assert_eq!(moved["case"]["status"], "determination");
    assert_eq!(moved["case"]["version"], 2);
    assert_eq!(moved["history_entry"]["from"], "open");
    assert_eq!(moved["history_entry"]["to"], "determination");
    assert_eq!(moved["history_entry"]["actor"], "analyst@acme.example");
    let alias = s
        .post(
            &format!("/cases/{id}/status"),
            analyst,
            json!({"status": "investigating"}),
        )
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(alias["case"]["status"], "investigating");
    assert_eq!(alias["history_entry"]["from"], "determination");

    // Stale versions and missing permissions are refused.
    s.post(
        &format!("/cases/{id}/transitions"),
        analyst,
        json!({"to": "closed", "reason": "x", "expected_version": 1}),
    )
    .await
    .assert_error(409, "version_conflict");
    transition(&s, s.a.key("auditor"), &id, "determination", None)
        .await
        .assert_error(403, "forbidden");
    assert_eq!(get_case(&s, analyst, &id).await["status"], "investigating");

    // A decision, then closing with a reason (the compliance officer may transition).
    s.post(
        &format!("/cases/{id}/disposition"),
        analyst,
        json!({"disposition": "FALSE_POSITIVE", "reason": "Payroll payments"}),
    )
    .await
    .assert_ok(200);
    let r = transition(
        &s,
        s.a.key("compliance_officer"),
        &id,
        "closed",
        Some("No suspicious activity"),
    )
    .await;
    let closed = r.assert_ok(200).clone();
    assert_eq!(closed["case"]["status"], "closed");
    assert_eq!(closed["history_entry"]["reason"], "No suspicious activity");
    assert_eq!(
        closed["history_entry"]["actor"],
        "compliance.officer@acme.example"
    );

    // Only reopen leaves a terminal status.
    let r = transition(&s, analyst, &id, "investigating", Some("More to do")).await;
    r.assert_error(422, "invalid_transition");
    assert!(r.body["error"]["details"]["allowed"].is_array());
    assert_eq!(
        s.get(&format!("/cases/{id}/transitions"), analyst)
            .await
            .assert_ok(200)["transitions"],
        json!([])
    );

    // History, oldest first, from the creation on.
    let history = s
        .get(&format!("/cases/{id}/history"), analyst)
        .await
        .assert_ok(200)["status_history"]
        .clone();
    assert_eq!(
        status_moves(&history),
        [
            (Value::Null, json!("open")),
            (json!("open"), json!("determination")),
            (json!("determination"), json!("investigating")),
            (json!("investigating"), json!("closed")),
        ]
    );

    // Reopen: to the type's reopen_to, the decision cleared; an open case cannot be reopened.
    let reopened = s
        .post(
            &format!("/cases/{id}/reopen"),
            analyst,
            json!({"reason": "New evidence"}),
        )
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(reopened["status"], "investigating");
    assert!(reopened["disposition"].is_null(), "{reopened:#}");
    let again = get_case(&s, analyst, &id).await;
    assert_eq!(again["status"], "investigating");
    assert!(again["disposition"].is_null());
    let last = again["status_history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["from"].clone(), last["to"].clone()),
        (json!("closed"), json!("investigating"))
    );
    s.post(
        &format!("/cases/{id}/reopen"),
        analyst,
        json!({"reason": "Again"}),
    )
    .await
    .assert_error(422, "invalid_transition");
    assert_eq!(
        get_case(&s, analyst, &id).await["version"],
        again["version"]
    );
    s.stop().await;
}

async fn comments_are_recorded_and_bounded(b: Backend) {
    let s = start(b).await;
    let analyst = s.a.key("analyst");
    let c = create_case(
        &s,
        analyst,
        json!({"case_type": "FRAUD", "title": "Account takeover"}),
    )
    .await;
    let id = id_of(&c);
    let path = format!("/cases/{id}/comments");

    let first = s
        .post(
            &path,
            analyst,
            json!({"content": "Called the branch manager."}),
        )
        .await
        .assert_ok(201)
        .clone();
    assert_eq!(first["case_id"], id);
    assert_eq!(first["author"], "analyst@acme.example");
    assert_eq!(
        first["author_id"],
        user_id(&s, s.a.key("admin"), "analyst@acme.example").await
    );
    assert_eq!(first["content"], "Called the branch manager.");
    assert!(first["id"].is_string() && first["created_at"].is_string());
    let longest = s
        .post(
            &path,
            s.a.key("senior_analyst"),
            json!({"content": "x".repeat(20_000)}),
        )
        .await
        .assert_ok(201)
        .clone();
    assert_eq!(longest["author"], "senior.analyst@acme.example");

    for bad in [String::new(), "x".repeat(20_001)] {
        let r = s.post(&path, analyst, json!({"content": bad})).await;
        r.assert_error(422, "validation_failed");
    }
    s.post(
        &path,
        s.a.key("auditor"),
        json!({"content": "Auditor note"}),
    )
    .await
    .assert_error(403, "forbidden");
    // A comment is not an edit: it leaves the version (and so every editor's ETag) alone.
    s.post(
        &path,
        analyst,
        json!({"content": "Late", "expected_version": 1}),
    )
    .await
    .assert_error(422, "validation_failed");

    let d = get_case(&s, analyst, &id).await;
    let comments = d["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 2, "{d:#}");
    assert_eq!(comments[0]["id"], first["id"], "comments keep their order");
    assert_eq!(comments[0]["content"], first["content"]);
    assert_eq!(comments[1]["id"], longest["id"]);
    assert_eq!(d["version"], 1);
    // The case still accepts an edit conditional on the version read before the comments.
    let r = s
        .send(
            s.http
                .request(Method::PATCH, s.url(&format!("/cases/{id}")))
                .bearer_auth(analyst)
                .header("if-match", "\"1\"")
                .json(&json!({"notes": "after comments"})),
        )
        .await;
    assert_eq!(r.assert_ok(200)["version"], 2);
    s.stop().await;
}

async fn attachments_are_linked_or_uploaded_and_checked(b: Backend) {
    let mut settings = settings();
    settings.max_attachment_bytes = 4096;
    let s = start_with(b, settings, ServiceConfig::default()).await;
    let analyst = s.a.key("analyst");
    let c = create_case(
        &s,
        analyst,
        json!({"case_type": "KYC_REV", "title": "Periodic review"}),
    )
    .await;
    let id = id_of(&c);
    let path = format!("/cases/{id}/attachments");

    // A file kept elsewhere.
    let linked = s
        .post(
            &path,
            analyst,
            json!({"name": "statement.pdf", "type": "application/pdf",
                   "url": "https://files.example/statement.pdf"}),
        )
        .await
        .assert_ok(201)
        .clone();
    assert_eq!(linked["stored"], false);
    assert_eq!(linked["case_id"], id);
    assert_eq!(linked["url"], "https://files.example/statement.pdf");
    assert_eq!(linked["uploaded_by"], "analyst@acme.example");
    s.post(
        &path,
        analyst,
        json!({"name": "statement.pdf", "type": "application/pdf",
               "url": "http://files.example/statement.pdf"}),
    )
    .await
    .assert_error(422, "validation_failed");

    // An upload: stored by SHA-256, downloadable byte for byte.
    let r = upload(
        &s,
        analyst,
        &id,
        Some("Evidence"),
        "evidence.pdf",
        "application/pdf",
        PDF,
    )
    .await;
    let up = r.assert_ok(201).clone();
    assert_eq!(up["stored"], true);
    assert_eq!(up["sha256"], hex(&Sha256::digest(PDF)));
    assert_eq!(up["size"], PDF.len());
    assert_eq!(up["type"], "application/pdf");
    assert_eq!(up["name"], "Evidence");
    let att = id_of(&up);
    let dl = format!("/cases/{id}/attachments/{att}/download");
    let (status, headers, bytes) = download(&s, analyst, &dl).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, PDF);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/pdf"),
        "{headers:?}"
    );
    assert_eq!(download(&s, s.b.key("analyst"), &dl).await.0, 404);

    // Content that contradicts its type, a type not allowed, a file over the limit.
    let r = upload(
        &s,
        analyst,
        &id,
        None,
        "photo.png",
        "image/png",
        b"this is not a PNG image",
    )
    .await;
    r.assert_error(422, "validation_failed");
    assert_eq!(r.body["error"]["param"], "file");
    upload(
        &s,
        analyst,
        &id,
        None,
        "setup.exe",
        "application/x-msdownload",
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00",
    )
    .await
    .assert_error(422, "validation_failed");
    let mut big = PDF.to_vec();
    big.extend(std::iter::repeat_n(b'%', 8192));
    upload(&s, analyst, &id, None, "big.pdf", "application/pdf", &big)
        .await
        .assert_error(413, "payload_too_large");
    upload(
        &s,
        s.a.key("auditor"),
        &id,
        None,
        "evidence.pdf",
        "application/pdf",
        PDF,
    )
    .await
    .assert_error(403, "forbidden");

    let d = get_case(&s, analyst, &id).await;
    let atts = d["attachments"].as_array().unwrap();
    assert_eq!(atts.len(), 2, "refused files are not recorded: {d:#}");
    assert!(
        atts.iter()
            .any(|a| a["id"] == up["id"] && a["sha256"] == up["sha256"])
    );
    assert!(atts.iter().any(|a| a["id"] == linked["id"]));
    s.stop().await;
}

async fn escalation_disposition_and_override(b: Backend) {
    let s = start(b).await;
    let (analyst, senior) = (s.a.key("analyst"), s.a.key("senior_analyst"));
    let c = create_case(
        &s,
        analyst,
        json!({"case_type": "SCREENING", "title": "PEP match: J. Doe"}),
    )
    .await;
    let id = id_of(&c);
    let a = s
        .post(
            &format!("/cases/{id}/assign"),
            analyst,
            json!({"assigned_to": "analyst@acme.example"}),
        )
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(a["status"], "IN_REVIEW");

    // Escalation.
    let escalate = format!("/cases/{id}/escalate");
    s.post(
        &escalate,
        analyst,
        json!({"reason": "x", "escalated_to": "mlro@globex.example"}),
    )
    .await
    .assert_error(404, "not_found");
    s.post(
        &escalate,
        s.a.key("auditor"),
        json!({"reason": "x", "escalated_to": "mlro@acme.example"}),
    )
    .await
    .assert_error(403, "forbidden");
    assert_eq!(get_case(&s, analyst, &id).await["escalated"], false);
    let e = s
        .post(
            &escalate,
            analyst,
            json!({"reason": "Possible sanctions exposure", "escalated_to": "senior.analyst@acme.example"}),
        )
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(e["status"], "ESCALATED");
    assert_eq!(e["escalated"], true);
    assert_eq!(e["escalated_to"], "senior.analyst@acme.example");
    assert!(e["escalated_to_id"].is_string(), "{e:#}");

    // Disposition: once.
    let dispose = format!("/cases/{id}/disposition");
    s.post(
        &dispose,
        analyst,
        json!({"disposition": "MAYBE", "reason": "x"}),
    )
    .await
    .assert_error(422, "validation_failed");
    s.post(
        &dispose,
        s.a.key("compliance_officer"),
        json!({"disposition": "TRUE_POSITIVE", "reason": "x"}),
    )
    .await
    .assert_error(403, "forbidden");
    let d = s
        .post(
            &dispose,
            analyst,
            json!({"disposition": "TRUE_POSITIVE", "reason": "Confirmed match"}),
        )
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(d["disposition"], "TRUE_POSITIVE");
    assert_eq!(d["disposition_reason"], "Confirmed match");
    s.post(
        &dispose,
        analyst,
        json!({"disposition": "FALSE_POSITIVE", "reason": "Changed my mind"}),
    )
    .await
    .assert_error(409, "already_decided");
    assert_eq!(
        get_case(&s, analyst, &id).await["disposition"],
        "TRUE_POSITIVE"
    );

    // Override: a permission of its own, a second person's approval, the current decision.
    let over = format!("/cases/{id}/override");
    let body = |original: &str, approver: &str| {
        json!({"original_decision": original, "new_decision": "FALSE_POSITIVE",
               "reason": "Different date of birth", "approved_by": approver})
    };
    s.post(&over, analyst, body("TRUE_POSITIVE", "mlro@acme.example"))
        .await
        .assert_error(403, "forbidden");
    s.post(
        &over,
        senior,
        body("TRUE_POSITIVE", "senior.analyst@acme.example"),
    )
    .await
    .assert_error(403, "self_approval_forbidden");
    let r = s
        .post(&over, senior, body("TRUE_POSITIVE", "analyst@acme.example"))
        .await;
    r.assert_error(403, "not_an_eligible_approver");
    assert_eq!(r.body["error"]["param"], "approved_by");
    let r = s
        .post(&over, senior, body("FALSE_POSITIVE", "mlro@acme.example"))
        .await;
    assert_eq!(r.status.as_u16(), 422, "{:#}", r.body);
    assert_eq!(
        get_case(&s, analyst, &id).await["disposition"],
        "TRUE_POSITIVE"
    );

    let rec = s
        .post(&over, senior, body("TRUE_POSITIVE", "mlro@acme.example"))
        .await
        .assert_ok(201)
        .clone();
    assert!(rec["id"].is_string());
    assert_eq!(rec["case_id"], id);
    assert_eq!(rec["original_decision"], "TRUE_POSITIVE");
    assert_eq!(rec["new_decision"], "FALSE_POSITIVE");
    assert_eq!(rec["approved_by"], "mlro@acme.example");
    assert!(rec["approved_by_id"].is_string());
    assert_eq!(rec["overridden_by"], "senior.analyst@acme.example");
    assert_eq!(
        get_case(&s, analyst, &id).await["disposition"],
        "FALSE_POSITIVE"
    );
    // The old decision is no longer the current one.
    let r = s
        .post(&over, senior, body("TRUE_POSITIVE", "mlro@acme.example"))
        .await;
    assert_eq!(r.status.as_u16(), 422, "{:#}", r.body);
    s.stop().await;
}

async fn alert_dispositions_close_the_alert_and_link_the_case(b: Backend) {
    let s = start(b).await;
    let analyst = s.a.key("analyst");
    let alert = create_case(
        &s,
        analyst,
        json!({"case_type": "ALERT", "title": "Rapid movement of funds", "priority": "high",
               "score": 82, "subject_id": "CUST-0042"}),
    )
    .await;
    assert_eq!(alert["status"], "open");
    assert!(alert["case_id"].is_null());
    let a1 = id_of(&alert);
    let path = format!("/alerts/{a1}/disposition");

    // A false positive cannot be escalated; the auditor cannot decide.
    let r = s
        .post(
            &path,
            analyst,
            json!({"disposition": "false_positive", "escalate_to_case": true, "reason": "x"}),
        )
        .await;
    assert_eq!(r.status.as_u16(), 422, "{:#}", r.body);
    s.post(
        &path,
        s.a.key("auditor"),
        json!({"disposition": "true_positive", "reason": "x"}),
    )
    .await
    .assert_error(403, "forbidden");
    let still = get_case(&s, analyst, &a1).await;
    assert_eq!(still["status"], "open");
    assert!(still["disposition"].is_null());

    // A true positive escalated into a new AML case that takes over the alert's facts.
    let r = s
        .post(
            &path,
            analyst,
            json!({"disposition": "true_positive", "escalate_to_case": true, "reason": "Confirmed layering"}),
        )
        .await
        .assert_ok(200)
        .clone();
    let (al, case) = (&r["alert"], &r["case"]);
    assert_eq!(al["id"], a1);
    assert_eq!(al["status"], "closed");
    assert!(!al["disposition"].is_null());
    let case_id = id_of(case);
    assert_eq!(al["case_id"], case_id);
    assert_eq!(case["case_type"], "AML_INV");
    assert_eq!(case["status"], "open");
    assert_eq!(case["title"], "Rapid movement of funds");
    assert_eq!(case["priority"], "high");
    assert_eq!(case["score"].as_f64(), Some(82.0));
    assert_eq!(case["subject_id"], "CUST-0042");
    assert_eq!(case["alert_ids"], json!([a1]));
    let stored = get_case(&s, analyst, &a1).await;
    assert_eq!(
        (stored["status"].clone(), stored["case_id"].clone()),
        (json!("closed"), json!(case_id))
    );

    // A second alert joins the same case.
    let a2 = id_of(
        &create_case(
            &s,
            analyst,
            json!({"case_type": "ALERT", "title": "Second hop", "priority": "low"}),
        )
        .await,
    );
    let r = s
        .post(
            &format!("/alerts/{a2}/disposition"),
            analyst,
            json!({"disposition": "true_positive", "escalate_to_case": true, "case_id": case_id, "reason": "Same network"}),
        )
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(r["case"]["id"], case_id);
    let mut linked: Vec<String> = get_case(&s, analyst, &case_id).await["alert_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    linked.sort();
    let mut want = vec![a1.clone(), a2.clone()];
    want.sort();
    assert_eq!(linked, want);
    assert_eq!(get_case(&s, analyst, &a2).await["case_id"], case_id);
    // The joined case's own record says which alert joined it, and its updated_at moved.
    let joined = get_case(&s, analyst, &case_id).await;
    let entries: Vec<&Value> = joined["activities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "alert_linked")
        .collect();
    assert_eq!(entries.len(), 1, "{joined:#}");
    assert_eq!(entries[0]["data"]["alert_id"], a2);
    assert_eq!(joined["updated_at"], entries[0]["created_at"]);

    // Without escalation there is no case; with a case_type the new case has that type.
    let a3 = id_of(
        &create_case(
            &s,
            analyst,
            json!({"case_type": "ALERT", "title": "Salary spike"}),
        )
        .await,
    );
    let r = s
        .post(
            &format!("/alerts/{a3}/disposition"),
            analyst,
            json!({"disposition": "false_positive", "reason": "Annual bonus"}),
        )
        .await
        .assert_ok(200)
        .clone();
    assert!(r["case"].is_null(), "{r:#}");
    assert_eq!(r["alert"]["status"], "closed");
    assert!(r["alert"]["case_id"].is_null());
    let a4 = id_of(
        &create_case(
            &s,
            analyst,
            json!({"case_type": "ALERT", "title": "Watchlist hit"}),
        )
        .await,
    );
    let r = s
        .post(
            &format!("/alerts/{a4}/disposition"),
            analyst,
            json!({"disposition": "true_positive", "escalate_to_case": true, "case_type": "SCREENING", "reason": "Name and DOB match"}),
        )
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(r["case"]["case_type"], "SCREENING");
    assert_eq!(r["case"]["status"], "OPEN");

    // A case that is not an alert has no alert disposition.
    s.post(
        &format!("/alerts/{case_id}/disposition"),
        analyst,
        json!({"disposition": "true_positive", "reason": "x"}),
    )
    .await
    .assert_error(422, "validation_failed");

    // Creating a case with alert_ids links them; linked alerts and non-alerts are refused.
    let a5 = id_of(
        &create_case(
            &s,
            analyst,
            json!({"case_type": "ALERT", "title": "Dormant account reactivated"}),
        )
        .await,
    );
    let opened = create_case(
        &s,
        analyst,
        json!({"case_type": "AML_INV", "title": "Opened from alert", "alert_ids": [a5]}),
    )
    .await;
    assert_eq!(opened["alert_ids"], json!([a5]));
    assert_eq!(get_case(&s, analyst, &a5).await["case_id"], opened["id"]);
    let before = list(&s, analyst, "").await["total"].clone();
    for alert_ids in [json!([a5]), json!([case_id])] {
        let r = s
            .post(
                "/cases",
                analyst,
                json!({"case_type": "AML_INV", "title": "Duplicate link", "alert_ids": alert_ids}),
            )
            .await;
        assert_eq!(r.status.as_u16(), 422, "{alert_ids}: {:#}", r.body);
    }
    assert_eq!(list(&s, analyst, "").await["total"], before);
    assert_eq!(get_case(&s, analyst, &a5).await["case_id"], opened["id"]);
    s.stop().await;
}

async fn relations_link_parties_and_cases(b: Backend) {
    let s = start(b).await;
    let analyst = s.a.key("analyst");
    let c1 = id_of(
        &create_case(
            &s,
            analyst,
            json!({"case_type": "AML_INV", "title": "Mule network"}),
        )
        .await,
    );
    let c2 = id_of(
        &create_case(
            &s,
            analyst,
            json!({"case_type": "FRAUD", "title": "Mule recruitment ad"}),
        )
        .await,
    );
    let foreign = id_of(
        &create_case(
            &s,
            s.b.key("analyst"),
            json!({"case_type": "AML_INV", "title": "Globex case"}),
        )
        .await,
    );
    let path = format!("/cases/{c1}/relations");

    let party_rel = s
        .post(
            &path,
            analyst,
            json!({"party": {"kind": "person", "name": "Jane Roe", "identifiers": {"passport": "X1"}},
                   "relation": "subject"}),
        )
        .await
        .assert_ok(201)
        .clone();
    assert_eq!(party_rel["relation"], "subject");
    assert_eq!(party_rel["target_type"], "party");
    let party_id = party_rel["target_id"]
        .as_str()
        .expect("party id")
        .to_string();
    let party = s
        .get(&format!("/parties/{party_id}"), analyst)
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(party["name"], "Jane Roe");
    assert_eq!(party["kind"], "person");
    assert_eq!(party["identifiers"]["passport"], "X1");
    s.get(&format!("/parties/{party_id}"), s.b.key("analyst"))
        .await
        .assert_error(404, "not_found");

    let case_rel = s
        .post(
            &path,
            analyst,
            json!({"target_type": "case", "target_id": c2, "relation": "related"}),
        )
        .await
        .assert_ok(201)
        .clone();
    assert_eq!(case_rel["target_type"], "case");
    assert_eq!(case_rel["target_id"], c2);

    // Bad targets.
    for bad in [
        json!({"target_type": "planet", "target_id": c2, "relation": "related"}),
        json!({"party": {"kind": "alien", "name": "Zork", "identifiers": {}}, "relation": "subject"}),
    ] {
        s.post(&path, analyst, bad)
            .await
            .assert_error(422, "validation_failed");
    }
    for target in [foreign.clone(), uuid::Uuid::new_v4().to_string()] {
        s.post(
            &path,
            analyst,
            json!({"target_type": "case", "target_id": target, "relation": "related"}),
        )
        .await
        .assert_error(404, "not_found");
    }
    s.post(
        &path,
        s.a.key("auditor"),
        json!({"target_type": "case", "target_id": c2, "relation": "related"}),
    )
    .await
    .assert_error(403, "forbidden");

    let d = get_case(&s, analyst, &c1).await;
    let rels = d["relations"].as_array().unwrap();
    assert_eq!(rels.len(), 2, "{d:#}");
    assert!(
        rels.iter()
            .any(|r| r["target_type"] == "party" && r["target_id"] == party_id.as_str())
    );
    assert!(
        rels.iter()
            .any(|r| r["target_type"] == "case" && r["target_id"] == c2.as_str())
    );
    s.stop().await;
}

async fn cases_are_listed_filtered_and_searched(b: Backend) {
    let s = start(b).await;
    define_trade_fin(&s).await;
    let analyst = s.a.key("analyst");
    let booked = "2026-02-27";
    // One case a day from 2 March, two on 5 March a minute apart.
    let c1 = id_of(&create_case(&s, analyst, json!({"case_type": "AML_INV", "title": "Structuring at branch Leeds", "priority": "high"})).await);
    s.clock.advance(time::Duration::days(1));
    let c2 = id_of(
        &create_case(
            &s,
            analyst,
            json!({"case_type": "SCREENING", "title": "Sanctions hit Rotterdam", "priority": "low",
        "notes": "The vessel registry lists marmalade as cargo."}),
        )
        .await,
    );
    s.clock.advance(time::Duration::days(1));
    let c3 = id_of(&create_case(&s, analyst, json!({"case_type": "AML_INV", "title": "Wire transfers Leeds offshore", "priority": "critical"})).await);
    s.clock.advance(time::Duration::days(1));
    let c4 = id_of(
        &create_case(
            &s,
            analyst,
            json!({"case_type": "TRADE_FIN", "title": "Invoice mismatch",
        "fields": {"amount": 5000, "booked_on": booked}}),
        )
        .await,
    );
    s.clock.advance(time::Duration::minutes(1));
    let c5 = id_of(
        &create_case(
            &s,
            analyst,
            json!({"case_type": "TRADE_FIN", "title": "Invoice duplicate",
        "fields": {"amount": 7000, "booked_on": booked}}),
        )
        .await,
    );
    s.clock.advance(time::Duration::minutes(1));

    // Work on them: c1 and c3 end up investigating, c2 in review with the senior analyst.
    s.post(
        &format!("/cases/{c1}/assign"),
        analyst,
        json!({"assigned_to": "analyst@acme.example"}),
    )
    .await
    .assert_ok(200);
    let in_review = s
        .post(
            &format!("/cases/{c2}/assign"),
            analyst,
            json!({"assigned_to": "senior.analyst@acme.example"}),
        )
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(in_review["status"], "IN_REVIEW");
    let senior_id = in_review["assigned_to_id"].as_str().unwrap().to_string();
    transition(&s, analyst, &c3, "investigating", None)
        .await
        .assert_ok(200);
    s.post(
        &format!("/cases/{c3}/comments"),
        analyst,
        json!({"content": "The courier mentioned a zeppelin."}),
    )
    .await
    .assert_ok(201);
    // Globex's lookalike never shows up in acme's lists.
    let g = id_of(
        &create_case(
            &s,
            s.b.key("analyst"),
            json!({"case_type": "AML_INV", "title": "Structuring at branch Leeds"}),
        )
        .await,
    );

    let all = list(&s, analyst, "").await;
    assert_eq!(
        ids(&all),
        [
            c5.as_str(),
            c4.as_str(),
            c3.as_str(),
            c2.as_str(),
            c1.as_str()
        ],
        "newest first"
    );
    assert_eq!(
        (
            all["total"].as_i64(),
            all["limit"].as_i64(),
            all["offset"].as_i64()
        ),
        (Some(5), Some(20), Some(0))
    );
    assert_found(&s, analyst, "sort=created_at", &[&c1, &c2, &c3, &c4, &c5]).await;
    assert_found(&s, s.a.key("auditor"), "", &[&c5, &c4, &c3, &c2, &c1]).await;

    // Filters.
    assert_found(&s, analyst, "status=investigating", &[&c3, &c1]).await;
    assert_found(&s, analyst, "status=IN_REVIEW", &[&c2]).await;
    assert_found(&s, analyst, "status=open", &[&c5, &c4]).await;
    assert_found(&s, analyst, "priority=critical", &[&c3]).await;
    assert_found(&s, analyst, "priority=high", &[&c1]).await;
    assert_found(&s, analyst, "case_type=TRADE_FIN", &[&c5, &c4]).await;
    assert_found(&s, analyst, "case_type=AML_INV&priority=critical", &[&c3]).await;
    assert_found(&s, analyst, "assigned_to=me", &[&c1]).await;
    assert_found(&s, s.a.key("senior_analyst"), "assigned_to=me", &[&c2]).await;
    assert_found(
        &s,
        analyst,
        "assigned_to=senior.analyst@acme.example",
        &[&c2],
    )
    .await;
    assert_found(&s, analyst, &format!("assigned_to={senior_id}"), &[&c2]).await;
    // An assignee by id with no case is still checked: a user of this organisation lists
    // nothing, an unknown id or another organisation's user is refused.
    let admin_id = user_id(&s, s.a.key("admin"), "admin@acme.example").await;
    assert_found(&s, analyst, &format!("assigned_to={admin_id}"), &[]).await;
    let theirs = user_id(&s, s.b.key("admin"), "analyst@globex.example").await;
    for who in [
        theirs,
        uuid::Uuid::new_v4().to_string(),
        "ghost@acme.example".into(),
    ] {
        let r = s.get(&format!("/cases?assigned_to={who}"), analyst).await;
        r.assert_error(422, "validation_failed");
        assert_eq!(r.body["error"]["param"], "assigned_to", "{who}");
    }
    assert_found(
        &s,
        analyst,
        "from_date=2026-03-03&to_date=2026-03-04",
        &[&c3, &c2],
    )
    .await;
    assert_found(&s, analyst, "to_date=2026-03-02", &[&c1]).await;
    assert_found(
        &s,
        analyst,
        "from_date=2026-03-04T00:00:00Z",
        &[&c5, &c4, &c3],
    )
    .await;
    assert_found(
        &s,
        analyst,
        "case_type=TRADE_FIN&fields.amount=5000",
        &[&c4],
    )
    .await;
    s.get("/cases?fields.amount=5000", analyst)
        .await
        .assert_error(422, "validation_failed");
    // One spelling per number, whether the field is indexed or read from the case in place; the
    // index follows the type's `indexed` flag both ways.
    for indexed in [false, true] {
        let mut ty = trade_fin_type();
        ty["fields"][0]["indexed"] = json!(indexed);
        let r = s.put("/case-types/TRADE_FIN", s.a.key("admin"), ty).await;
        assert_eq!(r.status.as_u16(), 200, "{:#}", r.body);
        for amount in ["5000", "5000.0", "5e3"] {
            let q = format!("case_type=TRADE_FIN&fields.amount={amount}");
            assert_found(&s, analyst, &q, &[&c4]).await;
        }
        assert_found(&s, analyst, "case_type=TRADE_FIN&fields.amount=50", &[]).await;
    }

    // Full text: title, notes and comments; every word must match.
    assert_found(&s, analyst, "q=Leeds", &[&c3, &c1]).await;
    assert_found(&s, analyst, "q=marmalade", &[&c2]).await;
    assert_found(&s, analyst, "q=zeppelin", &[&c3]).await;
    assert_found(&s, analyst, "q=leeds%20offshore", &[&c3]).await;
    assert_found(&s, analyst, "q=Leeds%20marmalade", &[]).await;
    // A search sorts, combines with the other filters (on both the case's own text and its
    // comments), pages, and past its end still counts.
    assert_found(&s, analyst, "q=Leeds&sort=created_at", &[&c1, &c3]).await;
    assert_found(&s, analyst, "q=Leeds&from_date=2026-03-03", &[&c3]).await;
    assert_found(&s, analyst, "q=zeppelin&from_date=2026-03-03", &[&c3]).await;
    assert_found(&s, analyst, "q=zeppelin&to_date=2026-03-02", &[]).await;
    let second = list(&s, analyst, "q=Leeds&limit=1&offset=1").await;
    assert_eq!(ids(&second), [c1.as_str()]);
    assert_eq!(
        (&second["total"], &second["total_exact"]),
        (&json!(2), &json!(true))
    );
    let past = list(&s, analyst, "q=Leeds&limit=1&offset=3").await;
    assert_eq!(past["cases"], json!([]));
    assert_eq!(
        (&past["total"], &past["total_exact"]),
        (&json!(2), &json!(true))
    );

    // Paging.
    let page = list(&s, analyst, "limit=2&offset=2").await;
    assert_eq!(ids(&page), [c3.as_str(), c2.as_str()]);
    assert_eq!(
        (
            page["total"].as_i64(),
            page["limit"].as_i64(),
            page["offset"].as_i64()
        ),
        (Some(5), Some(2), Some(2))
    );
    let past = list(&s, analyst, "limit=2&offset=10").await;
    assert_eq!(past["cases"], json!([]));
    assert_eq!(past["total"], 5);
    assert_eq!(past["total_exact"], true);
    let exact = list(&s, analyst, "status=open&exact_total=true").await;
    assert_eq!(
        (&exact["total"], &exact["total_exact"]),
        (&json!(2), &json!(true))
    );
    let r = s.get("/cases?exact_total=yes", analyst).await;
    r.assert_error(422, "validation_failed");
    assert_eq!(r.body["error"]["param"], "exact_total");
    let r = s.get("/cases?limit=201", analyst).await;
    r.assert_error(422, "validation_failed");
    assert_eq!(r.body["error"]["param"], "limit");

    // The other tenant sees only its own.
    assert_found(&s, s.b.key("analyst"), "", &[&g]).await;
    assert_found(&s, s.b.key("analyst"), "q=Leeds", &[&g]).await;
    s.stop().await;
}

async fn other_tenants_cases_answer_404_and_stay_unchanged(b: Backend) {
    let s = start(b).await;
    let admin = s.a.key("admin");
    let theirs = create_case(
        &s,
        s.b.key("analyst"),
        json!({"case_type": "AML_INV", "title": "Globex private matter"}),
    )
    .await;
    let bid = id_of(&theirs);
    // Before acme has any case, even globex's reference is unknown to acme.
    let reference = theirs["reference"].as_str().unwrap();
    s.get(&format!("/cases/{reference}"), admin)
        .await
        .assert_error(404, "not_found");
    let own = id_of(
        &create_case(
            &s,
            admin,
            json!({"case_type": "AML_INV", "title": "Acme matter"}),
        )
        .await,
    );
    let attachment = uuid::Uuid::new_v4();

    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/cases/{bid}"), None),
        (
            Method::PATCH,
            format!("/cases/{bid}"),
            Some(json!({"title": "Hijacked"})),
        ),
        (
            Method::POST,
            format!("/cases/{bid}/assign"),
            Some(json!({"assigned_to": "admin@acme.example"})),
        ),
        (Method::GET, format!("/cases/{bid}/transitions"), None),
        (
            Method::POST,
            format!("/cases/{bid}/transitions"),
            Some(json!({"to": "investigating"})),
        ),
        (
            Method::POST,
            format!("/cases/{bid}/status"),
            Some(json!({"status": "closed", "reason": "x"})),
        ),
        (Method::GET, format!("/cases/{bid}/history"), None),
        (
            Method::POST,
            format!("/cases/{bid}/comments"),
            Some(json!({"content": "Peek"})),
        ),
        (
            Method::POST,
            format!("/cases/{bid}/attachments"),
            Some(
                json!({"name": "x.pdf", "type": "application/pdf", "url": "https://files.example/x.pdf"}),
            ),
        ),
        (
            Method::GET,
            format!("/cases/{bid}/attachments/{attachment}/download"),
            None,
        ),
        (
            Method::POST,
            format!("/cases/{bid}/escalate"),
            Some(json!({"reason": "x", "escalated_to": "mlro@acme.example"})),
        ),
        (
            Method::POST,
            format!("/cases/{bid}/disposition"),
            Some(json!({"disposition": "TRUE_POSITIVE", "reason": "x"})),
        ),
        (
            Method::POST,
            format!("/cases/{bid}/override"),
            Some(
                json!({"original_decision": "TRUE_POSITIVE", "new_decision": "FALSE_POSITIVE",
                        "reason": "x", "approved_by": "mlro@acme.example"}),
            ),
        ),
        (
            Method::POST,
            format!("/cases/{bid}/reopen"),
            Some(json!({"reason": "x"})),
        ),
        (
            Method::POST,
            format!("/cases/{bid}/relations"),
            Some(json!({"target_type": "case", "target_id": own, "relation": "related"})),
        ),
        (
            Method::POST,
            format!("/cases/{own}/relations"),
            Some(json!({"target_type": "case", "target_id": bid, "relation": "related"})),
        ),
        (
            Method::POST,
            format!("/alerts/{bid}/disposition"),
            Some(json!({"disposition": "true_positive", "reason": "x"})),
        ),
    ];
    for (method, path, body) in calls {
        let r = s.call(method.clone(), &path, Some(admin), body).await;
        assert_eq!(r.status.as_u16(), 404, "{method} {path}: {:#}", r.body);
        r.assert_error(404, "not_found");
    }
    // A missing id answers the same.
    s.get(&format!("/cases/{}", uuid::Uuid::new_v4()), admin)
        .await
        .assert_error(404, "not_found");
    assert_eq!(list(&s, admin, "").await["total"], 1);

    // Globex's case is untouched.
    let after = get_case(&s, s.b.key("analyst"), &bid).await;
    assert_eq!(after["version"], 1);
    assert_eq!(after["title"], "Globex private matter");
    assert_eq!(after["status"], "open");
    assert!(after["assigned_to"].is_null() && after["disposition"].is_null());
    assert_eq!(after["escalated"], false);
    for list in ["comments", "attachments", "relations"] {
        assert_eq!(after[list], json!([]), "{list}");
    }
    assert_eq!(after["status_history"].as_array().unwrap().len(), 1);
    let mine = get_case(&s, admin, &own).await;
    assert_eq!(mine["relations"], json!([]));
    assert_eq!(mine["version"], 1);
    s.stop().await;
}

async fn every_case_command_is_audited_once(b: Backend) {
    let s = start(b).await;
    let analyst = s.a.key("analyst");
    let c = create_case(
        &s,
        analyst,
        json!({"case_type": "AML_INV", "title": "Funnel account"}),
    )
    .await;
    let id = id_of(&c);
    patch_if_match(
        &s,
        analyst,
        &id,
        "\"1\"",
        json!({"title": "Funnel account, Leeds"}),
    )
    .await
    .assert_ok(200);
    // A refused edit leaves no trace.
    patch_if_match(&s, analyst, &id, "\"1\"", json!({"title": "Lost"}))
        .await
        .assert_error(409, "version_conflict");
    s.post(
        &format!("/cases/{id}/assign"),
        analyst,
        json!({"assigned_to": "analyst@acme.example"}),
    )
    .await
    .assert_ok(200);
    transition(&s, analyst, &id, "determination", None)
        .await
        .assert_ok(200);
    let e = s
        .post(
            &format!("/cases/{id}/escalate"),
            analyst,
            json!({"reason": "Large volumes", "escalated_to": "mlro@acme.example"}),
        )
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(
        (e["escalated"].clone(), e["escalated_to"].clone()),
        (json!(true), json!("mlro@acme.example"))
    );
    s.post(
        &format!("/cases/{id}/disposition"),
        analyst,
        json!({"disposition": "TRUE_POSITIVE", "reason": "Funds traced"}),
    )
    .await
    .assert_ok(200);
    transition(&s, analyst, &id, "closed", Some("Referred"))
        .await
        .assert_ok(200);
    s.post(
        &format!("/cases/{id}/reopen"),
        analyst,
        json!({"reason": "Regulator query"}),
    )
    .await
    .assert_ok(200);

    let events = case_events(&s, &id, "").await;
    for e in &events {
        assert_eq!(e["entity_type"], "case", "{e:#}");
        assert_eq!(e["entity_id"], id, "{e:#}");
        assert_eq!(e["actor"], "analyst@acme.example", "{e:#}");
    }
    let count = |action: &str| events.iter().filter(|e| e["action"] == action).count();
    assert_eq!(count("case.created"), 1);
    assert_eq!(count("case.updated"), 1, "the refused edit left no event");
    assert_eq!(count("case.assigned"), 1);
    assert!(count("case.status_changed") >= 2, "{events:#?}");
    assert_eq!(count("case.escalated"), 1);
    assert_eq!(count("case.disposed"), 1);
    assert_eq!(count("case.reopened"), 1);
    let updated = events
        .iter()
        .find(|e| e["action"] == "case.updated")
        .unwrap();
    assert_eq!(
        updated["changes"]["title"]["after"], "Funnel account, Leeds",
        "{updated:#}"
    );

    // The outbox carries the case with each event, in acme only.
    let created = outbox(&s, &s.a.id, "case.created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["case"]["id"], id);
    let reopened = outbox(&s, &s.a.id, "case.reopened").await;
    assert_eq!(reopened.len(), 1);
    assert_eq!(reopened[0]["case"]["status"], "investigating");
    assert!(outbox(&s, &s.b.id, "case.created").await.is_empty());
    s.stop().await;
}

// ---- helpers ----

/// `TRADE_FIN`: a custom type with an indexed number, a short string and a required date.
fn trade_fin_type() -> Value {
    json!({"name": "Trade finance", "fields": [
        {"key": "amount", "label": "Amount", "type": "number", "indexed": true},
        {"key": "counterparty", "label": "Counterparty", "type": "string", "size": "S"},
        {"key": "booked_on", "label": "Booked", "type": "date", "required": true}
    ]})
}

/// Defines `TRADE_FIN` in acme (as its administrator); returns the case type.
async fn define_trade_fin(s: &TestServer) -> Value {
    let r = s
        .put("/case-types/TRADE_FIN", s.a.key("admin"), trade_fin_type())
        .await;
    assert!(matches!(r.status.as_u16(), 200 | 201), "{:#}", r.body);
    r.body
}

/// The `(from, to)` pairs of a status history.
fn status_moves(history: &Value) -> Vec<(Value, Value)> {
    history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["from"].clone(), h["to"].clone()))
        .collect()
}

/// Creates a case that must be accepted; returns it.
pub(crate) async fn create_case(s: &TestServer, key: &str, body: Value) -> Value {
    s.post("/cases", key, body).await.assert_ok(201).clone()
}

/// A case's detail.
pub(crate) async fn get_case(s: &TestServer, key: &str, id: &str) -> Value {
    s.get(&format!("/cases/{id}"), key)
        .await
        .assert_ok(200)
        .clone()
}

pub(crate) fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// The number of a `CASE-2026-NNNNNN` reference, checking its form.
fn reference_number(c: &Value) -> u32 {
    let r = c["reference"].as_str().expect("reference");
    let n = r
        .strip_prefix("CASE-2026-")
        .unwrap_or_else(|| panic!("reference {r}"));
    assert!(
        n.len() == 6 && n.bytes().all(|b| b.is_ascii_digit()),
        "reference {r}"
    );
    n.parse().unwrap()
}

async fn patch_if_match(s: &TestServer, key: &str, id: &str, etag: &str, body: Value) -> Resp {
    s.send(
        s.http
            .request(Method::PATCH, s.url(&format!("/cases/{id}")))
            .bearer_auth(key)
            .header("if-match", etag)
            .json(&body),
    )
    .await
}

pub(crate) async fn transition(
    s: &TestServer,
    key: &str,
    id: &str,
    to: &str,
    reason: Option<&str>,
) -> Resp {
    let mut body = json!({"to": to});
    if let Some(r) = reason {
        body["reason"] = json!(r);
    }
    s.post(&format!("/cases/{id}/transitions"), key, body).await
}

/// `GET /cases?<query>`, which must succeed.
async fn list(s: &TestServer, key: &str, query: &str) -> Value {
    s.get(&format!("/cases?{query}"), key)
        .await
        .assert_ok(200)
        .clone()
}

fn ids(page: &Value) -> Vec<String> {
    page["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(id_of)
        .collect()
}

/// Asserts that `query` finds exactly `expected`, in that order, and counts them.
async fn assert_found(s: &TestServer, key: &str, query: &str, expected: &[&String]) {
    let page = list(s, key, query).await;
    let want: Vec<&str> = expected.iter().map(|e| e.as_str()).collect();
    assert_eq!(ids(&page), want, "{query}");
    assert_eq!(page["total"], expected.len(), "{query}");
}

/// The id of the user `email`, looked up with an administrator key of its organisation.
pub(crate) async fn user_id(s: &TestServer, admin_key: &str, email: &str) -> String {
    id_of(
        s.get(&format!("/users/{email}"), admin_key)
            .await
            .assert_ok(200),
    )
}

/// acme's audit events of the case `id` (of `action`, unless empty).
pub(crate) async fn case_events(s: &TestServer, id: &str, action: &str) -> Vec<Value> {
    let mut query = format!("/audit/events?entity_type=case&entity_id={id}&limit=200");
    if !action.is_empty() {
        query.push_str(&format!("&action={action}"));
    }
    s.get(&query, s.a.key("admin")).await.assert_ok(200)["events"]
        .as_array()
        .unwrap()
        .clone()
}

/// The `data` of the outbox events of `event_type` of the tenant `tenant_id`.
pub(crate) async fn outbox(s: &TestServer, tenant_id: &str, event_type: &str) -> Vec<Value> {
    let mut c = s.svc.db.conn().await.unwrap();
    let tenant = casegate_domain::ids::TenantId(tenant_id.parse().unwrap());
    casegate_store::outbox::by_type(&mut *c, tenant, event_type)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.data)
        .collect()
}

const BOUNDARY: &str = "casegate-test-boundary-7MA4YWxkTrZu0gW";

/// Uploads `data` as the multipart field `file` (with the optional text field `name`).
async fn upload(
    s: &TestServer,
    key: &str,
    case_id: &str,
    name: Option<&str>,
    filename: &str,
    media_type: &str,
    data: &[u8],
) -> Resp {
    let mut body = Vec::new();
    if let Some(n) = name {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n{n}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: {media_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    s.send(
        s.http
            .post(s.url(&format!("/cases/{case_id}/attachments")))
            .bearer_auth(key)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(body),
    )
    .await
}

/// Status, headers and raw bytes of a download.
async fn download(
    s: &TestServer,
    key: &str,
    path: &str,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let r = s
        .http
        .get(s.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.bytes().await.unwrap().to_vec())
}
