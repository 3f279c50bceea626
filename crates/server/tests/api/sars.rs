//! SARs: from a case to a filed report, the reserved `filed` status, locked content, the
//! filing documents checked against the official schemas (../shared/regulatory, test data the
//! project does not copy), deadlines and their warnings, and bad input.
use crate::approvals::decide;
use crate::both_backends;
use crate::cases::{create_case, get_case, id_of, outbox, transition};
use crate::common::*;
use casegate_service::ServiceConfig;
use casegate_service::sars::SarConfig;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;

/// The shared regulatory test data: `CASEGATE_TEST_REGULATORY_DIR`, else `../shared/regulatory`
/// beside the checkout.
fn regulatory() -> PathBuf {
    let candidates = [
        std::env::var_os("CASEGATE_TEST_REGULATORY_DIR").map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/regulatory")),
        Some(PathBuf::from("/work/shared/regulatory")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("fincen/EFL_SARXBatchSchema.xsd").is_file())
        .expect("the regulatory schemas (set CASEGATE_TEST_REGULATORY_DIR)")
}

/// Whether `xmllint` runs here. CI installs it and sets `CASEGATE_REQUIRE_XMLLINT`, so a
/// missing validator fails there instead of passing as "skipped".
fn xmllint() -> bool {
    let present = std::process::Command::new("xmllint")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if std::env::var_os("CASEGATE_REQUIRE_XMLLINT").is_some() {
        assert!(
            present,
            "CASEGATE_REQUIRE_XMLLINT is set but xmllint does not run"
        );
    }
    present
}

fn schemas() -> ServiceConfig {
    let dir = regulatory();
    ServiceConfig {
        sar: SarConfig {
            fincen_xsd: Some(dir.join("fincen/EFL_SARXBatchSchema.xsd")),
            goaml_xsd: Some(dir.join("goaml/uae-fiu-5.0.2/goAMLSchema.xsd")),
            ..SarConfig::default()
        },
        ..ServiceConfig::default()
    }
}

async fn with_schemas(b: Backend) -> TestServer {
    start_with(b, settings(), schemas()).await
}

/// A structuring case: three cash deposits of $9,500 over three days, just under the $10,000
/// CTR threshold, by one customer with one account; detected on 2026-03-01.
pub(crate) async fn structuring_case(s: &TestServer) -> String {
    let analyst = s.a.key("analyst");
    let case = create_case(
        s,
        analyst,
        json!({
            "case_type": "AML_INV",
            "title": "Cash deposits structured below the CTR threshold",
            "detected_at": "2026-03-01T15:30:00Z",
            "reasons": ["structuring"],
            "source": {"transactions": [
                {"amount": 9500, "date": "2026-02-23", "type": "cash_deposit"},
                {"amount": "9500.00", "date": "2026-02-24", "type": "cash_deposit"},
                {"amount": 9500.5, "date": "2026-02-25", "type": "cash_deposit"}
            ]}
        }),
    )
    .await;
    let id = id_of(&case);
    s.post(
        &format!("/cases/{id}/relations"),
        analyst,
        json!({"party": {"kind": "person", "name": "Jordan Reyes",
                          "identifiers": {"ssn": "123-45-6789", "date_of_birth": "1980-10-25",
                                          "address": "42 Elm Street", "city": "Springfield",
                                          "state": "IL", "zip": "62704", "country": "us"}},
               "relation": "subject"}),
    )
    .await
    .assert_ok(201);
    s.post(
        &format!("/cases/{id}/relations"),
        analyst,
        json!({"party": {"kind": "account", "name": "0012345678"}, "relation": "account"}),
    )
    .await
    .assert_ok(201);
    s.post(
        &format!("/cases/{id}/comments"),
        analyst,
        json!({"content": "Teller reports the customer asked how to avoid the cash report."}),
    )
    .await
    .assert_ok(201);
    id
}

async fn patch(s: &TestServer, key: &str, id: &str, body: Value) -> Resp {
    s.call(Method::PATCH, &format!("/sars/{id}"), Some(key), Some(body))
        .await
}

async fn status(s: &TestServer, key: &str, id: &str, body: Value) -> Resp {
    s.post(&format!("/sars/{id}/status"), key, body).await
}

async fn document(s: &TestServer, key: &str, id: &str, format: &str) -> reqwest::Response {
    s.http
        .get(s.url(&format!("/sars/{id}/document?format={format}")))
        .bearer_auth(key)
        .send()
        .await
        .expect("request")
}

/// Posts an acknowledgement document (`query` after the path, e.g. `?activity_seq=3`).
async fn acknowledge(
    s: &TestServer,
    key: &str,
    id: &str,
    query: &str,
    body: impl Into<reqwest::Body>,
) -> Resp {
    let url = s.url(&format!("/sars/{id}/acknowledgement{query}"));
    s.send(
        s.http
            .post(url)
            .bearer_auth(key)
            .header("content-type", "application/xml")
            .body(body),
    )
    .await
}

/// Drafts a SAR on `case` and brings it to `approved` through the gate (compliance officer
/// asks, the MLRO signs off).
async fn approved_sar(s: &TestServer, case: &str) -> String {
    approved(s, case, false).await
}

/// [`approved_sar`], its activity classified first (`classified`) so its documents pass.
async fn approved(s: &TestServer, case: &str, classified: bool) -> String {
    let (analyst, co, mlro) = (
        s.a.key("analyst"),
        s.a.key("compliance_officer"),
        s.a.key("mlro"),
    );
    let sar = s
        .post(
            "/sars",
            analyst,
            json!({"case_id": case, "filing_type": "initial", "jurisdiction": "fincen",
                   "submit_for_review": !classified}),
        )
        .await
        .assert_ok(201)
        .clone();
    let id = id_of(&sar);
    if classified {
        let activity = json!({"from_date": "2026-02-23", "to_date": "2026-02-25", "total_amount": 28500,
                              "classifications": [{"type_id": 1, "subtype_id": 114}]});
        patch(s, analyst, &id, json!({ "activity": activity }))
            .await
            .assert_ok(200);
        status(s, analyst, &id, json!({"new_status": "pending_review"}))
            .await
            .assert_ok(200);
    } else {
        assert_eq!(sar["status"], "pending_review", "{sar:#}");
    }
    let r = status(s, co, &id, json!({"new_status": "approved"})).await;
    let waiting = r.assert_ok(202);
    assert_eq!(waiting["status"], "pending_review");
    let request = waiting["pending_request"]["id"]
        .as_str()
        .expect("request")
        .to_string();
    decide(
        s,
        mlro,
        &request,
        "approve",
        Some("Narrative and subjects complete"),
    )
    .await
    .assert_ok(200);
    id
}

async fn a_structuring_case_becomes_a_filed_sar(b: Backend) {
    let s = with_schemas(b).await;
    let (analyst, co) = (s.a.key("analyst"), s.a.key("compliance_officer"));
    let case = structuring_case(&s).await;

    let sar = s
        .post(
            "/sars",
            analyst,
            json!({"case_id": case, "filing_type": "initial", "jurisdiction": "fincen"}),
        )
        .await
        .assert_ok(201)
        .clone();
    let id = id_of(&sar);
    assert_eq!(sar["status"], "draft");
    // 30 calendar days from the day of detection, to the end of that day (31 CFR 1020.320).
    assert_eq!(sar["deadline"], "2026-03-31T23:59:59.999999Z");
    assert_eq!(sar["deadline_basis"]["days"], 30);
    // Pre-filled from the case: the subject, its account, the amounts and dates, the narrative.
    let subject = &sar["subjects"][0];
    assert_eq!(subject["kind"], "individual");
    assert_eq!(subject["first_name"], "Jordan");
    assert_eq!(subject["last_name"], "Reyes");
    assert_eq!(subject["tin"], "123456789");
    assert_eq!(subject["date_of_birth"], "1980-10-25");
    assert_eq!(subject["address"]["country"], "US");
    assert_eq!(subject["accounts"], json!(["0012345678"]));
    assert_eq!(sar["activity"]["total_amount"], "28500.50");
    assert_eq!(sar["activity"]["from_date"], "2026-02-23");
    assert_eq!(sar["activity"]["to_date"], "2026-02-25");
    let narrative = sar["narrative"].as_str().unwrap();
    assert!(narrative.contains("structuring"), "{narrative}");
    assert!(narrative.contains("avoid the cash report"), "{narrative}");

    // The rules say what is missing before anyone files: the activity's category.
    let d = s
        .get(&format!("/sars/{id}"), analyst)
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(d["validation"]["business_rules"], "failed");
    let rules: Vec<&str> = d["validation"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["classification_required"], "{d:#}");
    let r = patch(
        &s,
        analyst,
        &id,
        json!({"activity": {"from_date": "2026-02-23", "to_date": "2026-02-25",
                            "total_amount": "28500.50",
                            "classifications": [{"type_id": 1, "subtype_id": 114}]}}),
    )
    .await;
    assert_eq!(r.assert_ok(200)["version"], 2);
    assert_eq!(
        s.get(&format!("/sars/{id}"), analyst).await.body["validation"]["business_rules"],
        "passed"
    );

    // Review and MLRO sign-off through the gate.
    status(&s, analyst, &id, json!({"new_status": "pending_review"}))
        .await
        .assert_ok(200);
    let r = status(&s, co, &id, json!({"new_status": "approved"})).await;
    let request = r.assert_ok(202)["pending_request"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The one who asked cannot sign off on it (separation of duties); the MLRO can.
    decide(&s, co, &request, "approve", None)
        .await
        .assert_error(403, "self_approval_forbidden");
    decide(&s, s.a.key("mlro"), &request, "approve", None)
        .await
        .assert_ok(200);
    let d = s
        .get(&format!("/sars/{id}"), analyst)
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(d["status"], "approved");
    let path: Vec<&str> = d["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["to"].as_str().unwrap())
        .collect();
    assert_eq!(path, ["draft", "pending_review", "approved"]);

    // Both documents pass their schema.
    let checked = xmllint();
    for (format, root) in [("fincen_xml", "EFilingBatchXML"), ("goaml_xml", "<report>")] {
        let r = document(&s, analyst, &id, format).await;
        assert_eq!(r.status(), 200, "{format}");
        let outcome = r.headers()["casegate-schema-check"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(
            outcome,
            if checked { "passed" } else { "skipped" },
            "{format}"
        );
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/xml")
        );
        let xml = r.text().await.unwrap();
        assert!(xml.contains(root), "{format}");
        if format == "fincen_xml" {
            // Whole dollars, rounded up; dates as YYYYMMDD.
            assert!(
                xml.contains("<fc2:TotalSuspiciousAmountText>28501<"),
                "{xml}"
            );
            assert!(xml.contains("20260223"), "{xml}");
        }
    }

    // Filing: the sandbox answers a reference and the report is filed.
    let filed = s
        .post(&format!("/sars/{id}/submit"), co, json!({}))
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(filed["status"], "filed");
    let reference = filed["filing_reference"].as_str().unwrap();
    let tail = reference
        .strip_prefix("SANDBOX-SAR-")
        .expect("sandbox reference");
    assert!(
        tail.len() == 8
            && tail
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()),
        "{reference}"
    );
    assert_eq!(filed["transmitter"], "sandbox");
    let check = &filed["validation"]["last_document_checks"]["fincen_xml"];
    assert_eq!(
        check["schema"]["schema"],
        if checked { "passed" } else { "skipped" }
    );
    assert_eq!(filed["days_left"], Value::Null);
    // The case shows what was filed from it.
    let k = get_case(&s, analyst, &case).await;
    assert_eq!(k["sar_filing"]["filing_reference"], reference);
    assert_eq!(k["sar_filing"]["status"], "filed");

    // What was filed stays what was filed: a later profile change does not alter its document.
    let filed_doc = document(&s, analyst, &id, "fincen_xml")
        .await
        .text()
        .await
        .unwrap();
    assert!(filed_doc.contains("Casegate Sandbox Bank N.A."));
    let mut profile = s
        .get("/settings/filing-profile", co)
        .await
        .assert_ok(200)
        .clone();
    profile["filer"]["name"] = json!("Renamed Bank N.A.");
    s.put("/settings/filing-profile", co, profile)
        .await
        .assert_ok(200);
    let again = document(&s, analyst, &id, "fincen_xml")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(again, filed_doc);

    // FinCEN's acknowledgement gives the BSA ID and its warnings.
    let ack = std::fs::read(regulatory().join("fincen/samples/sar_acknowledgement.xml")).unwrap();
    let r = acknowledge(&s, co, &id, "?activity_seq=3", ack).await;
    let d = r.assert_ok(200).clone();
    assert_eq!(d["bsa_id"], "31000055053784");
    assert_eq!(d["acknowledgement"]["accepted"], true);
    assert_eq!(
        d["acknowledgement"]["warnings"].as_array().unwrap().len(),
        2
    );
    assert_eq!(d["acknowledgement"]["warnings"][0]["code"], "C21");
    // An acknowledgement whose BSA ID is not one is refused and changes nothing.
    let bad = "<EFilingBatchXML StatusCode=\"A\"><EFilingActivityXML SeqNum=\"1\"><BSAID>12AB</BSAID></EFilingActivityXML></EFilingBatchXML>";
    acknowledge(&s, co, &id, "", bad)
        .await
        .assert_error(422, "validation_failed");
    assert_eq!(
        s.get(&format!("/sars/{id}"), co).await.body["bsa_id"],
        "31000055053784"
    );

    // Announced and audited.
    let events = |t: &'static str| outbox(&s, &s.a.id, t);
    assert_eq!(events("sar.created").await.len(), 1);
    let moves: Vec<Value> = events("sar.status_changed").await;
    let tos: Vec<&str> = moves.iter().map(|e| e["to"].as_str().unwrap()).collect();
    assert_eq!(tos, ["pending_review", "approved", "filed"]);
    assert_eq!(events("sar.filed").await.len(), 1);
    for action in [
        "sar.created",
        "sar.updated",
        "sar.submitted",
        "sar.acknowledged",
    ] {
        let found = s
            .get(
                &format!("/audit/events?entity_type=sar&entity_id={id}&action={action}"),
                s.a.key("admin"),
            )
            .await
            .assert_ok(200)["events"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(found, 1, "{action}");
    }
    s.stop().await;
}

async fn filed_is_reserved_and_content_is_locked_outside_draft(b: Backend) {
    let s = with_schemas(b).await;
    let (analyst, co, mlro) = (
        s.a.key("analyst"),
        s.a.key("compliance_officer"),
        s.a.key("mlro"),
    );
    let case = structuring_case(&s).await;
    let id = approved_sar(&s, &case).await;

    // Nobody sets `filed` by hand: not through the SAR, not through its work item.
    status(&s, mlro, &id, json!({"new_status": "filed"}))
        .await
        .assert_error(403, "status_reserved");
    transition(&s, s.a.key("admin"), &id, "filed", Some("sent by post"))
        .await
        .assert_error(403, "status_reserved");
    // Approved content is locked.
    patch(&s, analyst, &id, json!({"narrative": "changed"}))
        .await
        .assert_error(422, "sar_locked");
    status(&s, co, &id, json!({"new_status": "draft"}))
        .await
        .assert_error(422, "invalid_transition");
    // Returning needs a reason and the reviewer's permission; then the content opens again.
    status(&s, co, &id, json!({"new_status": "withdrawn"}))
        .await
        .assert_error(422, "reason_required");
    status(
        &s,
        analyst,
        &id,
        json!({"new_status": "withdrawn", "reason": "x"}),
    )
    .await
    .assert_error(403, "forbidden");

    // A draft cannot be submitted.
    let draft = id_of(
        s.post(
            "/sars",
            analyst,
            json!({"case_id": case, "filing_type": "initial", "jurisdiction": "fincen"}),
        )
        .await
        .assert_ok(201),
    );
    s.post(&format!("/sars/{draft}/submit"), co, json!({}))
        .await
        .assert_error(422, "invalid_transition");
    status(&s, analyst, &draft, json!({"new_status": "pending_review"}))
        .await
        .assert_ok(200);
    status(
        &s,
        co,
        &draft,
        json!({"new_status": "returned", "reason": "Add the teller's statement"}),
    )
    .await
    .assert_ok(200);
    patch(
        &s,
        analyst,
        &draft,
        json!({"narrative": "Teller statement added."}),
    )
    .await
    .assert_ok(200);

    // The approved report lacks its activity category: filing it is refused with the list.
    let r = s.post(&format!("/sars/{id}/submit"), co, json!({})).await;
    assert_eq!(
        r.body["error"]["details"]["problems"][0]["rule"], "classification_required",
        "{:#}",
        r.body
    );
    r.assert_error(422, "document_invalid");
    s.stop().await;
}

async fn deadlines_follow_the_rule_and_feed_the_urgency_queue(b: Backend) {
    let s = with_schemas(b).await;
    let analyst = s.a.key("analyst");
    let case = structuring_case(&s).await;
    let new = |body: Value| {
        let s = &s;
        async move { s.post("/sars", analyst, body).await.assert_ok(201).clone() }
    };
    let initial =
        new(json!({"case_id": case, "filing_type": "initial", "jurisdiction": "fincen"})).await;
    assert_eq!(initial["deadline"], "2026-03-31T23:59:59.999999Z");
    // No suspect identified: 60 days.
    let unknown = new(
        json!({"case_id": case, "filing_type": "initial", "jurisdiction": "goaml",
                             "suspect_identified": false}),
    )
    .await;
    assert_eq!(unknown["deadline"], "2026-04-30T23:59:59.999999Z");
    // Continuing activity: 120 days after the prior filing.
    let cont = new(
        json!({"case_id": case, "filing_type": "continuing_activity", "jurisdiction": "fincen",
                          "prior_report_id": "31000055053784", "prior_filed_on": "2026-01-10"}),
    )
    .await;
    assert_eq!(cont["deadline"], "2026-05-10T23:59:59.999999Z");
    // Saying later that a suspect is known brings the deadline in.
    let r = patch(
        &s,
        analyst,
        &id_of(&unknown),
        json!({"suspect_identified": true}),
    )
    .await;
    assert_eq!(r.assert_ok(200)["deadline"], "2026-03-31T23:59:59.999999Z");
    patch(
        &s,
        analyst,
        &id_of(&unknown),
        json!({"suspect_identified": false}),
    )
    .await
    .assert_ok(200);

    let queue = |q: &'static str| {
        let s = &s;
        async move {
            s.get(&format!("/sars?deadline_before={q}"), analyst)
                .await
                .assert_ok(200)["sars"]
                .as_array()
                .unwrap()
                .iter()
                .map(id_of)
                .collect::<Vec<_>>()
        }
    };
    // A date means "due before that day".
    assert_eq!(queue("2026-03-31").await, Vec::<String>::new());
    assert_eq!(queue("2026-04-01").await, vec![id_of(&initial)]);
    assert_eq!(
        queue("2026-05-01").await,
        vec![id_of(&unknown), id_of(&initial)]
    );
    assert_eq!(queue("2026-05-11T00:00:00Z").await.len(), 3);
    let fincen = s
        .get("/sars?jurisdiction=fincen&status=draft", analyst)
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(fincen["sars"].as_array().unwrap().len(), 2);
    s.stop().await;
}

/// The SAR deadline messages in `key`'s inbox, newest first.
async fn inbox(s: &TestServer, key: &str) -> Vec<String> {
    s.get("/notifications", key).await.assert_ok(200)["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "sar.deadline")
        .map(|n| n["message"].as_str().unwrap().to_string())
        .collect()
}

async fn deadline_warnings_reach_the_drafter_and_the_mlro_once_each(b: Backend) {
    let s = with_schemas(b).await;
    let analyst = s.a.key("analyst");
    let case = structuring_case(&s).await;
    s.post(
        "/sars",
        analyst,
        json!({"case_id": case, "filing_type": "initial", "jurisdiction": "fincen"}),
    )
    .await
    .assert_ok(201);
    let sweep = || casegate_service::sars::warn_deadlines(&s.svc);
    // Due 2026-03-31: nothing on 2026-03-16, the first warning on the 17th (14 days before).
    s.clock.set(time::macros::datetime!(2026-03-16 12:00 UTC));
    assert_eq!(sweep().await.unwrap(), 0);
    s.clock.set(time::macros::datetime!(2026-03-17 08:00 UTC));
    assert_eq!(sweep().await.unwrap(), 1);
    assert_eq!(sweep().await.unwrap(), 0, "warned once");
    let got = inbox(&s, analyst).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].contains("due in 14 day(s), on 2026-03-31"),
        "{got:?}"
    );
    assert_eq!(inbox(&s, s.a.key("mlro")).await.len(), 1);
    assert!(inbox(&s, s.a.key("auditor")).await.is_empty());
    // Missed sweeps catch up with one message for the latest date reached.
    s.clock.set(time::macros::datetime!(2026-03-31 09:00 UTC));
    assert_eq!(sweep().await.unwrap(), 1);
    let got = inbox(&s, analyst).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].contains("is due today"), "{got:?}");
    // The other organisation hears nothing.
    assert!(inbox(&s, s.b.key("mlro")).await.is_empty());
    // A later due date (no suspect identified: 60 days, 2026-04-30) gets its own warnings.
    let sar = id_of(&s.get("/sars", analyst).await.body["sars"][0]);
    patch(&s, analyst, &sar, json!({"suspect_identified": false}))
        .await
        .assert_ok(200);
    assert_eq!(sweep().await.unwrap(), 0, "nothing due yet for 2026-04-30");
    s.clock.set(time::macros::datetime!(2026-04-16 08:00 UTC));
    assert_eq!(sweep().await.unwrap(), 1);
    assert!(inbox(&s, analyst).await[0].contains("due in 14 day(s), on 2026-04-30"));
    s.stop().await;
}

async fn bad_input_is_refused_and_changes_nothing(b: Backend) {
    let s = with_schemas(b).await;
    let (analyst, co) = (s.a.key("analyst"), s.a.key("compliance_officer"));
    let case = structuring_case(&s).await;
    let post = |body: Value| s.post("/sars", analyst, body);
    let cases = [
        (
            json!({"case_id": case, "filing_type": "final", "jurisdiction": "fincen"}),
            "filing_type",
        ),
        (
            json!({"case_id": case, "filing_type": "initial", "jurisdiction": "FinCEN!"}),
            "jurisdiction",
        ),
        (
            json!({"case_id": case, "filing_type": "correct_prior", "jurisdiction": "fincen"}),
            "prior_report_id",
        ),
        (
            json!({"case_id": case, "filing_type": "initial", "jurisdiction": "fincen", "prior_report_id": "1"}),
            "prior_report_id",
        ),
        (
            json!({"case_id": case, "filing_type": "continuing_activity", "jurisdiction": "fincen", "prior_report_id": "31000055053784"}),
            "prior_filed_on",
        ),
        (
            json!({"case_id": case, "filing_type": "continuing_activity", "jurisdiction": "fincen",
                   "prior_report_id": "31000055053784", "prior_filed_on": "2099-01-01"}),
            "prior_filed_on",
        ),
        (
            json!({"case_id": case, "filing_type": "initial", "jurisdiction": "fincen", "colour": "red"}),
            "colour",
        ),
        (
            json!({"filing_type": "initial", "jurisdiction": "fincen"}),
            "case_id",
        ),
        (
            json!({"case_id": case, "filing_type": "initial", "jurisdiction": "fincen", "submit_for_review": "yes"}),
            "submit_for_review",
        ),
    ];
    for (body, param) in cases {
        let r = post(body).await;
        r.assert_error(422, "validation_failed");
        assert_eq!(r.body["error"]["param"], param, "{:#}", r.body);
    }
    post(json!({"case_id": "6f1c1f9e-8d5e-4e8e-9d55-0d3f5a0c9b11", "filing_type": "initial", "jurisdiction": "fincen"}))
        .await
        .assert_error(404, "not_found");
    // Another organisation's case is not found either.
    let foreign = id_of(
        &create_case(
            &s,
            s.b.key("analyst"),
            json!({"case_type": "AML_INV", "title": "Globex"}),
        )
        .await,
    );
    post(json!({"case_id": foreign, "filing_type": "initial", "jurisdiction": "fincen"}))
        .await
        .assert_error(404, "not_found");
    // Unauthorised and malformed.
    s.post(
        "/sars",
        s.a.key("auditor"),
        json!({"case_id": case, "filing_type": "initial", "jurisdiction": "fincen"}),
    )
    .await
    .assert_error(403, "forbidden");
    s.call(Method::POST, "/sars", None, Some(json!({})))
        .await
        .assert_error(401, "unauthenticated");
    s.send(
        s.http
            .post(s.url("/sars"))
            .bearer_auth(analyst)
            .header("content-type", "application/json")
            .body("{"),
    )
    .await
    .assert_error(400, "malformed_request");
    assert_eq!(
        s.get("/sars", analyst).await.assert_ok(200)["sars"],
        json!([]),
        "nothing was created"
    );

    let id = id_of(
        post(json!({"case_id": case, "filing_type": "initial", "jurisdiction": "fincen"}))
            .await
            .assert_ok(201),
    );
    let before = s
        .get(&format!("/sars/{id}"), analyst)
        .await
        .assert_ok(200)
        .clone();
    for (body, param) in [
        (json!({"narrative": "x".repeat(17_001)}), "narrative"),
        (json!({"subjects": [{"kind": "robot"}]}), "subjects"),
        (json!({"activity": {"total_amount": "12.345"}}), "activity"),
        (
            json!({"activity": {"from_date": "2026-03-05", "to_date": "2026-03-01"}}),
            "activity.to_date",
        ),
        (json!({"status": "approved"}), "status"),
    ] {
        let r = patch(&s, analyst, &id, body).await;
        r.assert_error(422, "validation_failed");
        assert_eq!(r.body["error"]["param"], param, "{:#}", r.body);
    }
    let big = json!({"narrative": "x".repeat(2 << 20)});
    assert_eq!(patch(&s, analyst, &id, big).await.status.as_u16(), 413);
    patch(&s, co, &id, json!({"narrative": "co cannot edit"}))
        .await
        .assert_error(403, "forbidden");
    // A stale If-Match loses.
    let r = s
        .send(
            s.http
                .patch(s.url(&format!("/sars/{id}")))
                .bearer_auth(analyst)
                .header("if-match", "\"7\"")
                .json(&json!({"narrative": "stale"})),
        )
        .await;
    r.assert_error(409, "version_conflict");
    // So does a stale `expected_version` in the body; a malformed one is refused by name.
    patch(
        &s,
        analyst,
        &id,
        json!({"narrative": "stale", "expected_version": 7}),
    )
    .await
    .assert_error(409, "version_conflict");
    let r = patch(
        &s,
        analyst,
        &id,
        json!({"narrative": "x", "expected_version": "7"}),
    )
    .await;
    r.assert_error(422, "validation_failed");
    assert_eq!(r.body["error"]["param"], "expected_version");
    let after = s
        .get(&format!("/sars/{id}"), analyst)
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(before, after, "nothing changed");

    // The other organisation cannot see, edit, move, render or file it.
    let other = s.b.key("mlro");
    s.get(&format!("/sars/{id}"), other)
        .await
        .assert_error(404, "not_found");
    patch(&s, other, &id, json!({"narrative": "x"}))
        .await
        .assert_error(404, "not_found");
    status(&s, other, &id, json!({"new_status": "pending_review"}))
        .await
        .assert_error(404, "not_found");
    s.get(&format!("/sars/{id}/document?format=fincen_xml"), other)
        .await
        .assert_error(404, "not_found");
    s.post(&format!("/sars/{id}/submit"), other, json!({}))
        .await
        .assert_error(404, "not_found");
    assert_eq!(
        s.get("/sars", other).await.assert_ok(200)["sars"],
        json!([])
    );

    // Queries and documents.
    for q in [
        "status=lost",
        "deadline_before=tomorrow",
        "jurisdiction=Bad!",
        "limit=500",
        "colour=red",
    ] {
        let r = s.get(&format!("/sars?{q}"), analyst).await;
        assert_eq!(r.status.as_u16(), 422, "{q}: {:#}", r.body);
    }
    s.get(&format!("/sars/{id}/document?format=pdf"), analyst)
        .await
        .assert_error(422, "validation_failed");
    // An incomplete report's document lists every problem for the officer.
    let current = after["version"].as_i64().expect("the report's version");
    let body = json!({"narrative": "", "subjects": [], "expected_version": current});
    patch(&s, analyst, &id, body).await.assert_ok(200);
    let r = s
        .get(&format!("/sars/{id}/document?format=fincen_xml"), analyst)
        .await;
    r.assert_error(422, "document_invalid");
    let rules: Vec<&str> = r.body["error"]["details"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"narrative_required"), "{rules:?}");
    assert!(rules.contains(&"classification_required"), "{rules:?}");
    // Acknowledgements: only for a filed report, only well-formed.
    let ack = |body: &'static str| acknowledge(&s, co, &id, "", body);
    ack("<not-closed")
        .await
        .assert_error(422, "validation_failed");
    let huge = format!("<EFilingBatchXML>{}</EFilingBatchXML>", " ".repeat(2 << 20));
    acknowledge(&s, co, &id, "", huge)
        .await
        .assert_error(413, "payload_too_large");
    ack("<EFilingBatchXML StatusCode=\"A\"><EFilingSubmissionXML><EFilingActivityXML SeqNum=\"3\"><BSAID>31000055053784</BSAID></EFilingActivityXML></EFilingSubmissionXML></EFilingBatchXML>")
        .await
        .assert_error(422, "invalid_transition");
    s.stop().await;
}

async fn without_schemas_the_rules_are_checked_and_the_skip_is_said(b: Backend) {
    let s = start(b).await;
    let case = structuring_case(&s).await;
    let id = approved_sar(&s, &case).await;
    let r = document(&s, s.a.key("analyst"), &id, "goaml_xml").await;
    assert_eq!(
        r.status(),
        422,
        "goAML needs an indicator the category maps to"
    );
    let id2 = id;
    patch(&s, s.a.key("analyst"), &id2, json!({}))
        .await
        .assert_error(422, "sar_locked");
    let r = document(&s, s.a.key("analyst"), &id2, "fincen_xml").await;
    // Rules fail (no classification), so the answer lists them even without a schema.
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["details"]["schema"]["schema"], "skipped");
    assert!(
        body["error"]["details"]["schema"]["reason"]
            .as_str()
            .unwrap()
            .contains("no schema file is configured")
    );
    s.stop().await;
}

/// A document the schema refuses comes back as located schema problems. The FinCEN document is
/// checked here against the goAML schema, which refuses its root element.
async fn schema_errors_come_back_as_problems_the_officer_can_read(b: Backend) {
    let mut config = schemas();
    config.sar.fincen_xsd = config.sar.goaml_xsd.clone();
    let s = start_with(b, settings(), config).await;
    let analyst = s.a.key("analyst");
    let case = structuring_case(&s).await;
    let id = id_of(
        s.post(
            "/sars",
            analyst,
            json!({"case_id": case, "filing_type": "initial", "jurisdiction": "fincen"}),
        )
        .await
        .assert_ok(201),
    );
    patch(
        &s,
        analyst,
        &id,
        json!({"activity": {"from_date": "2026-02-23", "to_date": "2026-02-25", "total_amount": 28500,
                            "classifications": [{"type_id": 1, "subtype_id": 114}]}}),
    )
    .await
    .assert_ok(200);
    let r = s
        .get(&format!("/sars/{id}/document?format=fincen_xml"), analyst)
        .await;
    if !xmllint() {
        assert_eq!(r.status.as_u16(), 200);
        return s.stop().await;
    }
    r.assert_error(422, "document_invalid");
    let details = &r.body["error"]["details"];
    assert_eq!(details["schema"]["schema"], "failed", "{details:#}");
    let problems = details["problems"].as_array().unwrap();
    assert!(!problems.is_empty());
    for p in problems {
        assert_eq!(p["source"], "schema", "{p:#}");
        assert!(
            p["location"].as_str().unwrap().starts_with("line "),
            "{p:#}"
        );
        // Namespaces are stripped; the element is named plainly.
        assert!(!p["message"].as_str().unwrap().contains('{'), "{p:#}");
    }
    assert!(
        problems[0]["message"]
            .as_str()
            .unwrap()
            .contains("EFilingBatchXML"),
        "{problems:#?}"
    );
    s.stop().await;
}

/// With a schema configured, a report is not filed unchecked: a validator that cannot run
/// answers 503 and the report stays approved.
async fn a_configured_schema_check_that_cannot_run_stops_the_filing(b: Backend) {
    let mut config = schemas();
    config.sar.validator.program = PathBuf::from("/nonexistent/xmllint");
    let s = start_with(b, settings(), config).await;
    let case = structuring_case(&s).await;
    let id = approved(&s, &case, true).await;
    let co = s.a.key("compliance_officer");
    let r = s.post(&format!("/sars/{id}/submit"), co, json!({})).await;
    r.assert_error(503, "unavailable");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not installed"),
        "{:#}",
        r.body
    );
    let d = s
        .get(&format!("/sars/{id}"), co)
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(d["status"], "approved");
    assert_eq!(d["filing_reference"], Value::Null);
    s.stop().await;
}

/// A gateway that refuses everything.
#[derive(Debug)]
struct Down;

#[async_trait::async_trait]
impl casegate_service::sars::Transmitter for Down {
    fn name(&self) -> &str {
        "down"
    }
    async fn transmit(
        &self,
        _: casegate_domain::ids::CaseId,
        _: casegate_service::sars::Format,
        _: &str,
    ) -> casegate_service::Result<String> {
        Err(casegate_domain::Error::new(
            casegate_domain::Code::Unavailable,
            "the gateway is down",
        ))
    }
}

/// When the transmitter fails, nothing is recorded: the report stays approved, unfiled.
async fn a_transmitter_failure_leaves_the_report_approved(b: Backend) {
    let mut config = schemas();
    config.sar.transmitter = std::sync::Arc::new(Down);
    let s = start_with(b, settings(), config).await;
    let case = structuring_case(&s).await;
    let id = approved(&s, &case, true).await;
    let co = s.a.key("compliance_officer");
    s.post(&format!("/sars/{id}/submit"), co, json!({}))
        .await
        .assert_error(503, "unavailable");
    let d = s
        .get(&format!("/sars/{id}"), co)
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(d["status"], "approved");
    assert_eq!(d["filing_reference"], Value::Null);
    assert_eq!(d["transmitter"], Value::Null);
    assert!(outbox(&s, &s.a.id, "sar.filed").await.is_empty());
    s.stop().await;
}

both_backends!(
    a_transmitter_failure_leaves_the_report_approved,
    a_configured_schema_check_that_cannot_run_stops_the_filing,
    schema_errors_come_back_as_problems_the_officer_can_read,
    a_structuring_case_becomes_a_filed_sar,
    filed_is_reserved_and_content_is_locked_outside_draft,
    deadlines_follow_the_rule_and_feed_the_urgency_queue,
    deadline_warnings_reach_the_drafter_and_the_mlro_once_each,
    bad_input_is_refused_and_changes_nothing,
    without_schemas_the_rules_are_checked_and_the_skip_is_said,
);
