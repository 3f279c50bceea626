//! People hear of what concerns them (docs/notifications.md): approval requests, reminders,
//! escalations and outcomes, assignments and tasks reach the right inboxes once, from the
//! outbox after commit; e-mail copies reach a real SMTP server (a sink started by
//! the test), transient refusals are retried, permanent ones given up, stale copies expired.
use crate::approvals::{ask_to_close, case_in_review, decide, timers};
use crate::both_backends;
use crate::cases::{create_case, id_of};
use crate::common::*;
use casegate_service::ServiceConfig;
use casegate_service::mail::{self, SmtpConfig};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

both_backends!(
    approvals_assignments_and_tasks_reach_the_people_concerned_once,
    email_copies_are_sent_retried_given_up_and_expired,
);

/// The dispatcher's fan-out, which writes the notifications of committed events.
async fn fan_out(s: &TestServer) {
    casegate_service::dispatch::run(&s.svc, 100)
        .await
        .expect("dispatch");
}

/// The caller's notifications, newest first (after the fan-out of what has committed).
async fn notes(s: &TestServer, key: &str) -> Vec<Value> {
    fan_out(s).await;
    s.get("/notifications?limit=200", key).await.assert_ok(200)["notifications"]
        .as_array()
        .unwrap()
        .clone()
}

/// The caller's notifications of `kind`.
async fn of_kind(s: &TestServer, key: &str, kind: &str) -> Vec<Value> {
    notes(s, key)
        .await
        .into_iter()
        .filter(|n| n["kind"] == kind)
        .collect()
}

async fn approvals_assignments_and_tasks_reach_the_people_concerned_once(b: Backend) {
    let s = start(b).await;
    let id = case_in_review(&s, None).await;
    let analyst = s.a.key("analyst");
    let compliance = s.a.key("compliance_officer");
    let legal = s.a.key("legal_counsel");
    let mlro = s.a.key("mlro");
    let rid = id_of(&ask_to_close(&s, analyst, &id).await);

    // The first tier's approver is asked; the requester and the later tier are not.
    let asked = of_kind(&s, compliance, "approval.requested").await;
    assert_eq!(asked.len(), 1, "{asked:#?}");
    assert_eq!(asked[0]["case_id"], id.as_str());
    assert_eq!(asked[0]["data"]["request_id"], rid.as_str());
    assert!(asked[0]["read_at"].is_null());
    let text = asked[0]["message"].as_str().unwrap();
    assert!(
        text.contains("review → closed") && text.contains("Compliance"),
        "{text}"
    );
    assert!(text.contains("due 2026-03-04T09:00:00"), "{text}");
    assert!(of_kind(&s, analyst, "approval.requested").await.is_empty());
    assert!(of_kind(&s, legal, "approval.requested").await.is_empty());

    // The reminder and the escalation reach the approver and then the MLRO, once each.
    s.clock.advance(Duration::hours(24));
    assert_eq!(timers(&s).await, 1);
    assert_eq!(timers(&s).await, 0);
    assert_eq!(of_kind(&s, compliance, "approval.reminder").await.len(), 1);
    s.clock.advance(Duration::hours(24));
    assert_eq!(timers(&s).await, 1);
    let escalated = of_kind(&s, mlro, "approval.escalated").await;
    assert_eq!(escalated.len(), 1);
    assert!(
        escalated[0]["message"]
            .as_str()
            .unwrap()
            .contains("missed its deadline")
    );
    assert!(
        of_kind(&s, compliance, "approval.escalated")
            .await
            .is_empty()
    );

    // The MLRO approves: legal is asked next; legal approves: the requester hears.
    decide(&s, mlro, &rid, "approve", None).await.assert_ok(200);
    assert_eq!(of_kind(&s, legal, "approval.requested").await.len(), 1);
    decide(&s, legal, &rid, "approve", None)
        .await
        .assert_ok(200);
    let done = of_kind(&s, analyst, "transition.approved").await;
    assert_eq!(done.len(), 1);
    assert!(done[0]["message"].as_str().unwrap().contains("approved"));

    // A rejection reaches the requester too.
    let id2 = case_in_review(&s, None).await;
    let rid2 = id_of(&ask_to_close(&s, analyst, &id2).await);
    decide(&s, compliance, &rid2, "reject", Some("Evidence incomplete"))
        .await
        .assert_ok(200);
    assert_eq!(of_kind(&s, analyst, "transition.rejected").await.len(), 1);

    // Assignment: the assignee hears, with the case reference.
    let senior = s.a.key("senior_analyst");
    let c = create_case(
        &s,
        analyst,
        json!({"case_type": "FRAUD", "title": "Mule account cluster"}),
    )
    .await;
    let cid = id_of(&c);
    s.post(
        &format!("/cases/{cid}/assign"),
        analyst,
        json!({"assigned_to": "senior.analyst@acme.example"}),
    )
    .await
    .assert_ok(200);
    let assigned = of_kind(&s, senior, "case.assigned").await;
    assert_eq!(assigned.len(), 1);
    let text = assigned[0]["message"].as_str().unwrap();
    assert!(text.contains(c["reference"].as_str().unwrap()), "{text}");
    assert_eq!(assigned[0]["case_id"], cid.as_str());

    // A task for a named person reaches that person; one for a role reaches its holders.
    s.post(
        "/tasks",
        analyst,
        json!({"case_id": cid, "title": "Request bank statements", "assigned_to": "senior.analyst@acme.example"}),
    )
    .await
    .assert_ok(201);
    s.post(
        "/tasks",
        analyst,
        json!({"case_id": cid, "title": "Sign off the exit", "assignee_role": "mlro"}),
    )
    .await
    .assert_ok(201);
    assert_eq!(of_kind(&s, senior, "task.created").await.len(), 1);
    let for_role = of_kind(&s, mlro, "task.created").await;
    assert_eq!(for_role.len(), 1);
    assert_eq!(for_role[0]["message"], "New task: Sign off the exit");

    // Separation of duties: a requester who holds the approving role is not asked to approve
    // their own request, nor told of its escalation as an approver.
    let id3 = case_in_review(&s, None).await;
    let rid3 = id_of(&ask_to_close(&s, compliance, &id3).await);
    let about = |n: &Vec<Value>| -> usize {
        n.iter()
            .filter(|x| x["data"]["request_id"] == rid3.as_str())
            .count()
    };
    assert_eq!(about(&notes(&s, compliance).await), 0);
    s.clock.advance(Duration::days(2));
    assert_eq!(timers(&s).await, 1);
    assert_eq!(about(&notes(&s, compliance).await), 0);
    assert_eq!(about(&of_kind(&s, mlro, "approval.escalated").await), 1);

    // Nothing reached the other tenant.
    assert!(notes(&s, s.b.key("admin")).await.is_empty());
    assert!(notes(&s, s.b.key("compliance_officer")).await.is_empty());

    // A repeated fan-out (a dispatcher that died before committing) writes nothing twice.
    let before = notes(&s, compliance).await.len();
    let mut c = s.svc.db.conn().await.unwrap();
    let reset = c
        .execute("UPDATE outbox SET fanned_out_at = NULL", &[])
        .await
        .unwrap();
    assert!(reset > 10, "{reset}");
    drop(c);
    assert_eq!(notes(&s, compliance).await.len(), before);
    assert_eq!(of_kind(&s, senior, "case.assigned").await.len(), 1);
    s.stop().await;
}

/// What the SMTP sink answers to `RCPT TO`.
#[derive(Clone, Copy)]
enum Answer {
    Accept,
    /// 421: try again later.
    Busy,
    /// 550: no such mailbox.
    Refuse,
}

/// One message the sink accepted.
#[derive(Clone, Debug)]
struct Mail {
    rcpt: String,
    data: String,
}

#[derive(Clone)]
struct Sink {
    url: String,
    answer: Arc<Mutex<Answer>>,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl Sink {
    /// A minimal SMTP server on 127.0.0.1 that keeps what it accepts: the test's own
    /// receiver, like the webhook tests' HTTP receivers.
    async fn start() -> Sink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sink = Sink {
            url: format!("smtp://{}", listener.local_addr().unwrap()),
            answer: Arc::new(Mutex::new(Answer::Accept)),
            mails: Arc::new(Mutex::new(Vec::new())),
        };
        let s = sink.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(s.clone().session(sock));
            }
        });
        sink
    }

    async fn session(self, sock: tokio::net::TcpStream) {
        let (r, mut w) = sock.into_split();
        let mut lines = BufReader::new(r).lines();
        let _ = w.write_all(b"220 sink ESMTP\r\n").await;
        let mut rcpt = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
            let reply = match verb.as_str() {
                "EHLO" | "HELO" => "250 sink".to_string(),
                "MAIL" | "RSET" | "NOOP" => "250 ok".to_string(),
                "RCPT" => {
                    rcpt = line.clone();
                    match *self.answer.lock().unwrap() {
                        Answer::Accept => "250 ok".into(),
                        Answer::Busy => "421 4.3.2 busy, try again later".into(),
                        Answer::Refuse => "550 5.1.1 no such mailbox".into(),
                    }
                }
                "DATA" => {
                    let _ = w.write_all(b"354 go ahead\r\n").await;
                    let mut data = String::new();
                    while let Ok(Some(l)) = lines.next_line().await {
                        if l == "." {
                            break;
                        }
                        data.push_str(&l);
                        data.push('\n');
                    }
                    self.mails.lock().unwrap().push(Mail {
                        rcpt: rcpt.clone(),
                        data,
                    });
                    "250 queued".into()
                }
                "QUIT" => {
                    let _ = w.write_all(b"221 bye\r\n").await;
                    return;
                }
                _ => "502 not implemented".into(),
            };
            if w.write_all(format!("{reply}\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    }

    fn set(&self, a: Answer) {
        *self.answer.lock().unwrap() = a;
    }

    fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

/// Assigns a fresh case to the senior analyst (one notification, one e-mail copy), a second
/// after the previous one (so it is the newest); answers the case reference.
async fn assign_one(s: &TestServer) -> String {
    s.clock.advance(Duration::seconds(1));
    let analyst = s.a.key("analyst");
    let c = create_case(
        s,
        analyst,
        json!({"case_type": "FRAUD", "title": "Mule account cluster"}),
    )
    .await;
    s.post(
        &format!("/cases/{}/assign", id_of(&c)),
        analyst,
        json!({"assigned_to": "senior.analyst@acme.example"}),
    )
    .await
    .assert_ok(200);
    fan_out(s).await;
    c["reference"].as_str().unwrap().to_string()
}

/// The e-mail state of the senior analyst's newest notification.
async fn newest_state(s: &TestServer) -> Value {
    notes(s, s.a.key("senior_analyst")).await[0]["email_state"].clone()
}

async fn email_copies_are_sent_retried_given_up_and_expired(b: Backend) {
    let sink = Sink::start().await;
    let config = ServiceConfig {
        smtp: Some(SmtpConfig {
            url: sink.url.clone(),
            from: "Casegate <casegate@acme.example>".into(),
        }),
        ..ServiceConfig::default()
    };
    let s = start_with(b, settings(), config.clone()).await;
    let send = || mail::send_due(&s.svc, 20);

    // Sent once, to the reader, with the message as subject; the inbox shows it sent.
    let reference = assign_one(&s).await;
    assert_eq!(newest_state(&s).await, "pending");
    assert_eq!(send().await.unwrap(), 1);
    assert_eq!(send().await.unwrap(), 0, "nothing is sent twice");
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].rcpt.contains("<senior.analyst@acme.example>"),
        "{mails:?}"
    );
    assert!(
        mails[0]
            .data
            .contains("From: Casegate <casegate@acme.example>")
    );
    assert!(
        mails[0].data.contains(&format!(
            "Subject: [casegate] Case {reference} was assigned to you"
        )),
        "{}",
        mails[0].data
    );
    let n = &notes(&s, s.a.key("senior_analyst")).await[0];
    assert_eq!(n["email_state"], "sent");
    assert_eq!(n["emailed_at"], "2026-03-02T09:00:01.000000Z");

    // A 421 is retried after the backoff, not before; then it goes through.
    sink.set(Answer::Busy);
    assign_one(&s).await;
    assert_eq!(send().await.unwrap(), 1);
    assert_eq!(newest_state(&s).await, "pending");
    sink.set(Answer::Accept);
    assert_eq!(send().await.unwrap(), 0, "not due before the backoff");
    s.clock.advance(Duration::minutes(1));
    assert_eq!(send().await.unwrap(), 1);
    assert_eq!(newest_state(&s).await, "sent");
    assert_eq!(sink.mails().len(), 2);

    // A 550 gives up at once.
    sink.set(Answer::Refuse);
    assign_one(&s).await;
    assert_eq!(send().await.unwrap(), 1);
    assert_eq!(newest_state(&s).await, "failed");
    s.clock.advance(Duration::hours(2));
    sink.set(Answer::Accept);
    assert_eq!(send().await.unwrap(), 0);
    assert_eq!(sink.mails().len(), 2);

    // A copy that could not go out for a day is expired, not sent late.
    sink.set(Answer::Busy);
    assign_one(&s).await;
    assert_eq!(send().await.unwrap(), 1);
    s.clock.advance(Duration::hours(25));
    sink.set(Answer::Accept);
    assert_eq!(send().await.unwrap(), 0);
    assert_eq!(newest_state(&s).await, "expired");
    assert_eq!(sink.mails().len(), 2);

    // A reader disabled after the notification is not mailed.
    sink.set(Answer::Accept);
    assign_one(&s).await;
    let senior = s
        .get("/users/senior.analyst@acme.example", s.a.key("admin"))
        .await;
    let senior_id = id_of(senior.assert_ok(200));
    s.call(
        reqwest::Method::PATCH,
        &format!("/users/{senior_id}"),
        Some(s.a.key("admin")),
        Some(json!({"active": false})),
    )
    .await
    .assert_ok(200);
    assert_eq!(send().await.unwrap(), 1);
    assert_eq!(sink.mails().len(), 2);
    let mut c = s.svc.db.conn().await.unwrap();
    let row = c
        .fetch_one(
            "SELECT email_state, email_error FROM notifications \
             ORDER BY created_at DESC, id DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.text("email_state").unwrap(), "failed");
    assert_eq!(row.text("email_error").unwrap(), "the reader is disabled");
    drop(c);
    s.stop().await;
    let s = start_with(b, settings(), config.clone()).await;
    let send = || mail::send_due(&s.svc, 20);

    // Six transient failures in a row give up.
    sink.set(Answer::Busy);
    assign_one(&s).await;
    for _ in 0..mail::MAX_ATTEMPTS {
        assert_eq!(send().await.unwrap(), 1);
        s.clock.advance(Duration::hours(1));
    }
    assert_eq!(newest_state(&s).await, "failed");
    s.stop().await;

    // Without SMTP, copies wait a day, then expire; nothing is sent.
    let s = start(b).await;
    assign_one(&s).await;
    assert_eq!(mail::send_due(&s.svc, 20).await.unwrap(), 0);
    assert_eq!(newest_state(&s).await, "pending");
    s.clock.advance(Duration::hours(25));
    mail::send_due(&s.svc, 20).await.unwrap();
    assert_eq!(newest_state(&s).await, "expired");
    s.stop().await;
}
