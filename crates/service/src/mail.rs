//! E-mail copies of in-app notifications, sent over SMTP with lettre by the worker after the
//! notification committed (docs/notifications.md).
//!
//! Each notification is written with its copy `pending`. [`send_due`] claims due copies under a
//! lease (`SKIP LOCKED` on PostgreSQL, so several workers never send one twice while the lease
//! holds), sends them, and records the outcome on the row: `sent`; a transient failure (the
//! server answered 4xx, could not be reached, timed out) is retried with doubling waits; a
//! permanent refusal (5xx: an unknown mailbox) or [`MAX_ATTEMPTS`] failures give up (`failed`).
//! A copy still unsent a day after its notification was written is `expired`: old news is not
//! mailed, e.g. when SMTP is configured after notifications piled up. Without SMTP configured,
//! the worker only expires copies (one indexed read per tick, a write once a day's worth is
//! stale). Neither addresses nor message text are logged (PII): only notification ids.
use crate::{Error, Result, Services};
use casegate_store::notifications::{self as store, EmailJob, EmailOutcome};
use lettre::message::Mailbox;
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::{Duration, Instant};

/// How long a claimed copy is hidden from other senders (well over a batch's send time).
pub const LEASE: time::Duration = time::Duration::minutes(5);
/// Copies claimed per batch: [`BATCH`] × [`SEND_LIMIT`] stays under [`LEASE`], so a batch
/// sent to a slow relay never outlives its claim.
pub const BATCH: i64 = 10;
/// The most one copy may take to send, all SMTP exchanges included.
pub const SEND_LIMIT: Duration = Duration::from_secs(25);
/// Attempts before giving up on a copy.
pub const MAX_ATTEMPTS: i64 = 6;
/// A copy not sent this long after its notification was written is not sent at all.
pub const FRESHNESS: time::Duration = time::Duration::days(1);
/// Timeout of each SMTP exchange.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Where and as whom mail is sent.
#[derive(Clone)]
pub struct SmtpConfig {
    /// lettre's URL form: `smtp://host:port` (plain, for a relay on the same host),
    /// `smtp://host:587?tls=required` (STARTTLS), `smtps://host:465` (TLS), with
    /// `user:password@` when the relay needs credentials. Secret: never logged.
    pub url: String,
    /// The `From` address (`Casegate <casegate@bank.example>` or a bare address).
    pub from: String,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("url", &"<redacted>")
            .field("from", &self.from)
            .finish()
    }
}

/// The transport builder for `cfg`, or why the settings cannot work.
fn builder(cfg: &SmtpConfig) -> Result<AsyncSmtpTransportBuilder> {
    cfg.from
        .parse::<Mailbox>()
        .map_err(|e| Error::validation("smtp_from", format!("is not an address: {e}")))?;
    AsyncSmtpTransport::<Tokio1Executor>::from_url(&cfg.url)
        // lettre's message may echo the URL; say only which setting is wrong.
        .map_err(|_| Error::validation("smtp_url", "is not a valid smtp:// or smtps:// URL"))
}

/// Whether the settings can work (checked at start-up, before any connection is made).
pub fn check(cfg: &SmtpConfig) -> Result<()> {
    builder(cfg).map(|_| ())
}

/// The SMTP transport for `cfg` (its connection pool runs on the current Tokio runtime).
pub fn transport(cfg: &SmtpConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>> {
    Ok(builder(cfg)?.timeout(Some(TIMEOUT)).build())
}

/// Wait before attempt `attempts + 1`: 1 minute, doubling, at most an hour.
pub fn backoff(attempts: i64) -> time::Duration {
    time::Duration::minutes(1i64 << attempts.clamp(1, 7).saturating_sub(1))
        .min(time::Duration::hours(1))
}

/// Sends up to `max` due copies (or, without SMTP, expires stale ones). Returns how many
/// copies it settled (sent, failed or rescheduled).
pub async fn send_due(svc: &Services, max: i64) -> Result<u64> {
    let now = svc.clock.now();
    let stale_before = now - FRESHNESS;
    let Some(mailer) = &svc.mailer else {
        // One indexed read per tick; a write only once something is a day old.
        if store::email_due_before(&mut *svc.db.conn().await?, stale_before).await? {
            let mut tx = svc.db.begin().await?;
            let n = store::expire_emails(&mut *tx, now, stale_before, "e-mail is not configured")
                .await?;
            tx.commit().await?;
            metrics::counter!("notification_emails_total", "outcome" => "expired").increment(n);
        }
        return Ok(0);
    };
    // A plain read first: an idle mailer takes no write lock (SQLite has one writer).
    if !store::email_due_before(&mut *svc.db.conn().await?, now).await? {
        return Ok(0);
    }
    let mut tx = svc.db.begin().await?;
    let expired = store::expire_emails(
        &mut *tx,
        now,
        stale_before,
        "not sent within a day of the notification",
    )
    .await?;
    let jobs = store::claim_emails(&mut *tx, now, now + LEASE, max).await?;
    tx.commit().await?;
    metrics::counter!("notification_emails_total", "outcome" => "expired").increment(expired);
    let mut settled = 0;
    for job in jobs {
        let started = Instant::now();
        let outcome = match message(&svc.config, &job) {
            Err(why) => EmailOutcome::Failed(why),
            Ok(_) if !job.to_active => EmailOutcome::Failed("the reader is disabled".into()),
            Ok(m) => match tokio::time::timeout(SEND_LIMIT, mailer.send(m)).await {
                Ok(Ok(_)) => EmailOutcome::Sent,
                Ok(Err(e)) => judge(&e, job.attempts, svc.clock.now()),
                Err(_) => retry_or_give_up(
                    "the SMTP exchange took too long".into(),
                    job.attempts,
                    svc.clock.now(),
                ),
            },
        };
        let label = match &outcome {
            EmailOutcome::Sent => "sent",
            EmailOutcome::Retry(..) => "retry",
            EmailOutcome::Failed(_) => "failed",
        };
        metrics::counter!("notification_emails_total", "outcome" => label).increment(1);
        metrics::histogram!("notification_email_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        if let EmailOutcome::Failed(why) | EmailOutcome::Retry(_, why) = &outcome {
            tracing::warn!(notification_id = %job.notification.id, attempts = job.attempts,
                error = why.as_str(), "notification e-mail not sent");
        }
        let mut c = svc.db.conn().await?;
        if store::email_outcome(&mut *c, &job, &outcome, svc.clock.now()).await? {
            settled += 1;
        }
    }
    Ok(settled)
}

/// What a failed send means for the copy: a permanent refusal gives up; anything else is
/// retried until [`MAX_ATTEMPTS`].
fn judge(
    e: &lettre::transport::smtp::Error,
    attempts: i64,
    now: time::OffsetDateTime,
) -> EmailOutcome {
    // The reply code or the kind of failure only: a server's reply text often repeats the
    // address (`550 5.1.1 <someone@bank>: unknown`), which must stay out of logs and the row.
    let why = match e.status() {
        Some(code) => format!("the SMTP server answered {code}"),
        None if e.is_timeout() => "the SMTP server timed out".into(),
        None => "the SMTP server could not be reached or broke off".into(),
    };
    if e.is_permanent() {
        EmailOutcome::Failed(why)
    } else {
        retry_or_give_up(why, attempts, now)
    }
}

/// A transient failure: try again after the backoff, or give up after [`MAX_ATTEMPTS`].
fn retry_or_give_up(why: String, attempts: i64, now: time::OffsetDateTime) -> EmailOutcome {
    if attempts >= MAX_ATTEMPTS {
        EmailOutcome::Failed(why)
    } else {
        EmailOutcome::Retry(now + backoff(attempts), why)
    }
}

/// The e-mail for a claimed copy, or why none can be built (a malformed address: permanent).
fn message(cfg: &crate::ServiceConfig, job: &EmailJob) -> std::result::Result<Message, String> {
    let smtp = cfg.smtp.as_ref().ok_or("e-mail is not configured")?;
    let from: Mailbox = smtp
        .from
        .parse()
        .map_err(|_| "the From address is invalid")?;
    let to = format!(
        "{} <{}>",
        job.to_name.replace(['<', '>', '"'], ""),
        job.to_email
    )
    .parse::<Mailbox>()
    .or_else(|_| job.to_email.parse::<Mailbox>())
    .map_err(|_| "the reader's address is invalid".to_string())?;
    let n = &job.notification;
    let headline: String = n.message.chars().take(120).collect();
    let mut body = format!("{}\n", n.message);
    if let Some(c) = n.case_id {
        body.push_str(&format!("\nCase: {c}"));
    }
    body.push_str(&format!(
        "\nNotification: {} ({})\n\nThis message is a copy of your casegate inbox; \
         read and manage it there.\n",
        n.id, n.kind
    ));
    Message::builder()
        .from(from)
        .to(to)
        .subject(format!("[casegate] {headline}"))
        // Stable per notification: a copy sent twice (its answer lost) reads as one message.
        .message_id(Some(format!("<{}@casegate>", n.id)))
        .body(body)
        .map_err(|e| format!("the message could not be built: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_an_hour() {
        let mins: Vec<i64> = (1..=8).map(|a| backoff(a).whole_minutes()).collect();
        assert_eq!(mins, [1, 2, 4, 8, 16, 32, 60, 60]);
    }

    #[test]
    fn settings_are_checked_without_echoing_the_url() {
        let bad = SmtpConfig {
            url: "gopher://user:hunter2@mail".into(),
            from: "casegate@bank.example".into(),
        };
        let e = check(&bad).expect_err("refused");
        assert!(!e.message.contains("hunter2"), "{}", e.message);
        assert!(!format!("{bad:?}").contains("hunter2"));
        let bad_from = SmtpConfig {
            url: "smtp://127.0.0.1:2525".into(),
            from: "not an address".into(),
        };
        assert!(check(&bad_from).is_err());
        let ok = SmtpConfig {
            url: "smtp://127.0.0.1:2525".into(),
            from: "Casegate <casegate@bank.example>".into(),
        };
        assert!(check(&ok).is_ok());
    }
}
