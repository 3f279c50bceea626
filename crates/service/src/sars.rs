//! Suspicious activity reports (API.md "SARs", DESIGN.md "SAR", docs/sars.md).
//!
//! A report is worked as a case of type `SAR_FILING` (its *work item*, same id): the report's
//! status, history and approval gate are the workflow engine's, so reviews, MLRO sign-off,
//! reminders, escalation, notifications and the audit trail come with it. `filed` is a
//! reserved status: only [`submit`] enters it, after the transmitter confirmed the filing.
//! This module adds what only a report has: its content (locked outside `draft` and
//! `returned`), the regulatory deadline, the filing documents and their checks, submission
//! and the regulator's acknowledgement.
use crate::audit::{self, Entry};
use crate::case_views::{CaseDetail, HistoryView};
use crate::xsd::{SchemaCheck, Validator};
use crate::{Code, Error, Page, Result, Services, approvals, cases, random_id};
use casegate_domain::clock::wire_time;
use casegate_domain::ids::{CaseId, PartyId, TenantId, UserId};
use casegate_domain::principal::Caller;
use casegate_domain::rbac::Permission;
use casegate_domain::sar::content::{
    Activity, Address, Amount, FilingProfile, Problem, ReportHeader, SarContent, Subject,
    SubjectKind,
};
use casegate_domain::sar::{self, Deadline, DeadlineBasis, FilingType, ack, fincen, goaml};
use casegate_domain::validate;
use casegate_store::case_record as record;
use casegate_store::sars::{self as store, SarFilter, StoredSar};
use casegate_store::{Conn, cases as case_store};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, Time};
use uuid::Uuid;

/// The case type SARs are worked as.
pub const WORK_ITEM_TYPE: &str = "SAR_FILING";
/// The reserved status of a filed report.
pub const FILED: &str = "filed";
/// Statuses in which the content may change.
pub const EDITABLE: [&str; 2] = ["draft", "returned"];

/// Hands a filing document to a regulator's gateway (FinCEN's BSA E-Filing, an FIU's goAML
/// portal). casegate calls it once per submission, holding the report's lock, with the report id
/// as the idempotency key a real gateway needs; an error leaves the report `approved`.
#[async_trait::async_trait]
pub trait Transmitter: Send + Sync + std::fmt::Debug {
    /// The name recorded on the report (`sandbox`).
    fn name(&self) -> &str;
    /// Files `xml`, report `report`'s document in `format`; answers the gateway's reference.
    async fn transmit(&self, report: CaseId, format: Format, xml: &str) -> Result<String>;
}

/// The sandbox: nothing leaves casegate; it answers `SANDBOX-SAR-` and eight characters
/// `0-9A-Z`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SandboxTransmitter;

#[async_trait::async_trait]
impl Transmitter for SandboxTransmitter {
    fn name(&self) -> &str {
        "sandbox"
    }

    async fn transmit(&self, _report: CaseId, _format: Format, _xml: &str) -> Result<String> {
        Ok(sandbox_reference())
    }
}

/// Where the filing schemas are and how documents are checked and sent.
#[derive(Clone, Debug)]
pub struct SarConfig {
    /// FinCEN's `EFL_SARXBatchSchema.xsd` (none: the schema check is skipped and says so).
    pub fincen_xsd: Option<PathBuf>,
    /// The goAML `goAMLSchema.xsd` the FIU issued.
    pub goaml_xsd: Option<PathBuf>,
    /// The schema validator.
    pub validator: Validator,
    /// Where submissions go (the sandbox unless the operator installs a gateway).
    pub transmitter: std::sync::Arc<dyn Transmitter>,
}

impl Default for SarConfig {
    fn default() -> Self {
        SarConfig {
            fincen_xsd: None,
            goaml_xsd: None,
            validator: Validator::default(),
            transmitter: std::sync::Arc::new(SandboxTransmitter),
        }
    }
}

/// A filing document format (`GET /sars/{id}/document?format=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// FinCEN SAR XML batch.
    FincenXml,
    /// goAML STR XML.
    GoamlXml,
}

impl Format {
    /// Parses the wire name.
    pub fn parse(s: &str) -> Result<Format> {
        match s {
            "fincen_xml" => Ok(Format::FincenXml),
            "goaml_xml" => Ok(Format::GoamlXml),
            _ => Err(Error::validation(
                "format",
                "must be `fincen_xml` or `goaml_xml`",
            )),
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::FincenXml => "fincen_xml",
            Format::GoamlXml => "goaml_xml",
        }
    }

    /// The format a jurisdiction files in: FinCEN's own; goAML for `goaml` and FIU codes;
    /// none yet for the UK's NCIS/NCA portal.
    pub fn of_jurisdiction(j: &str) -> Option<Format> {
        match j {
            "fincen" => Some(Format::FincenXml),
            "ncis" => None,
            _ => Some(Format::GoamlXml),
        }
    }

    fn schema(self, cfg: &SarConfig) -> Option<&std::path::Path> {
        match self {
            Format::FincenXml => cfg.fincen_xsd.as_deref(),
            Format::GoamlXml => cfg.goaml_xsd.as_deref(),
        }
    }
}

/// A report as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SarView {
    /// Report id (its work item's case id).
    pub id: CaseId,
    /// Human reference (the work item's).
    pub reference: String,
    /// The case the report comes from.
    pub case_id: CaseId,
    /// `draft|pending_review|returned|approved|withdrawn|filed`.
    pub status: String,
    /// Filing type.
    pub filing_type: String,
    /// Jurisdiction.
    pub jurisdiction: String,
    /// The prior report's id.
    pub prior_report_id: Option<String>,
    /// The end of the deadline day, UTC (RFC 3339).
    pub deadline: String,
    /// How the deadline was computed: `due_on`, `counted_from`, `days`, `rule`, `regulatory`.
    pub deadline_basis: Value,
    /// Calendar days left until the due date (negative: overdue); none once filed or withdrawn.
    pub days_left: Option<i64>,
    /// Subjects.
    pub subjects: Value,
    /// Whether a suspect was identified.
    pub suspect_identified: bool,
    /// The activity.
    pub activity: Value,
    /// The narrative.
    pub narrative: String,
    /// The transmitter that filed it.
    pub transmitter: Option<String>,
    /// The transmitter's reference (`SANDBOX-SAR-…`).
    pub filing_reference: Option<String>,
    /// When it was submitted.
    pub submitted_at: Option<String>,
    /// The regulator's id (FinCEN BSA ID).
    pub bsa_id: Option<String>,
    /// The regulator's acknowledgement (`accepted`, `warnings`, …).
    pub acknowledgement: Option<Value>,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
    /// Optimistic-concurrency version (the `ETag`).
    pub version: i64,
}

/// A report with its checks and history (`GET /sars/{id}`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SarDetail {
    /// The report.
    #[serde(flatten)]
    pub sar: SarView,
    /// The business rules of the jurisdiction's format, checked now, and the last schema check
    /// of each document generated.
    pub validation: Value,
    /// The work item's status history, oldest first.
    pub history: Vec<HistoryView>,
    /// The request waiting for approval, if any.
    pub pending_request: Option<approvals::RequestView>,
}

fn content_of(s: &StoredSar) -> Result<SarContent> {
    serde_json::from_value(s.content.clone()).map_err(Error::internal)
}

fn view(s: &StoredSar, today: Date) -> Result<SarView> {
    let c = content_of(s)?;
    let open = !matches!(s.status.as_str(), FILED | "withdrawn");
    let due = s.deadline["due_on"].as_str().and_then(parse_date);
    Ok(SarView {
        id: s.id,
        reference: s.reference.clone(),
        case_id: s.case_id,
        status: s.status.clone(),
        filing_type: s.filing_type.clone(),
        jurisdiction: s.jurisdiction.clone(),
        prior_report_id: s.prior_report_id.clone(),
        deadline: wire_time(s.deadline_at),
        deadline_basis: s.deadline.clone(),
        days_left: due.filter(|_| open).map(|d| sar::days_left(today, d)),
        subjects: serde_json::to_value(&c.subjects).map_err(Error::internal)?,
        suspect_identified: c.suspect_identified,
        activity: serde_json::to_value(&c.activity).map_err(Error::internal)?,
        narrative: c.narrative,
        transmitter: s.transmitter.clone(),
        filing_reference: s.filing_reference.clone(),
        submitted_at: s.submitted_at.map(wire_time),
        bsa_id: s.bsa_id.clone(),
        acknowledgement: s.acknowledgement.clone(),
        created_at: wire_time(s.created_at),
        updated_at: wire_time(s.updated_at),
        version: s.version,
    })
}

fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

fn ymd(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The end of day `d` in UTC (the deadline instant).
fn end_of(d: Date) -> OffsetDateTime {
    d.with_time(Time::from_hms_micro(23, 59, 59, 999_999).expect("a valid time"))
        .assume_utc()
}

fn deadline_json(d: &Deadline) -> Value {
    json!({
        "due_on": ymd(d.due_on),
        "counted_from": ymd(d.counted_from),
        "days": d.days,
        "rule": d.rule,
        "regulatory": d.regulatory,
    })
}

/// Recomputes `s`'s deadline from its basis and content.
fn set_deadline(s: &mut StoredSar, c: &SarContent) -> Result<()> {
    let basis = DeadlineBasis {
        filing_type: FilingType::parse("filing_type", &s.filing_type)?,
        detected_on: parse_date(&s.detected_on)
            .ok_or_else(|| Error::internal("bad detected_on"))?,
        suspect_identified: c.suspect_identified,
        prior_filed_on: s.prior_filed_on.as_deref().and_then(parse_date),
        opened_on: parse_date(&s.opened_on).ok_or_else(|| Error::internal("bad opened_on"))?,
    };
    let d = sar::deadline(&basis)?;
    s.deadline_at = end_of(d.due_on);
    s.deadline = deadline_json(&d);
    Ok(())
}

/// What `POST /sars` takes.
#[derive(Clone, Debug, Default)]
pub struct NewSar {
    /// The originating case (id or reference).
    pub case_id: String,
    /// Filing type.
    pub filing_type: String,
    /// Jurisdiction.
    pub jurisdiction: String,
    /// The prior report's id (required for corrections and continuing activity).
    pub prior_report_id: Option<String>,
    /// When the prior report was filed (`YYYY-MM-DD`; continuing activity, when the prior
    /// report was not filed through casegate).
    pub prior_filed_on: Option<String>,
    /// Whether a suspect was identified (default true).
    pub suspect_identified: Option<bool>,
    /// Send it for review at once.
    pub submit_for_review: bool,
}

/// A jurisdiction: `fincen`, `goaml`, `ncis`, or an FIU code (2–32 of `a-z`, `0-9`, `_`, `-`).
fn check_jurisdiction(j: &str) -> Result<()> {
    let ok = (2..=32).contains(&j.len())
        && j.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::validation(
            "jurisdiction",
            "must be `fincen`, `goaml`, `ncis` or an FIU code (2-32 lowercase letters, digits, `_` or `-`)",
        ))
    }
}

/// `POST /sars` (`sar.edit`): a draft report from a case, its content pre-filled from the case,
/// its relations, linked alerts and comments; its deadline computed from the case's detection
/// date. With `submit_for_review` it goes on to `pending_review` at once.
pub async fn create(svc: &Services, p: &Caller, n: NewSar) -> Result<(SarView, Option<Error>)> {
    p.require(Permission::SarEdit)?;
    let filing_type = FilingType::parse("filing_type", &n.filing_type)?;
    check_jurisdiction(&n.jurisdiction)?;
    let prior = n
        .prior_report_id
        .as_deref()
        .map(|v| validate::text("prior_report_id", v, 64))
        .transpose()?;
    match (filing_type.needs_prior(), &prior) {
        (true, None) => {
            return Err(Error::validation(
                "prior_report_id",
                format!(
                    "a `{}` report needs the prior report's id",
                    filing_type.as_str()
                ),
            ));
        }
        (false, Some(_)) => {
            return Err(Error::validation(
                "prior_report_id",
                "an initial report has no prior report",
            ));
        }
        _ => {}
    }
    let prior_filed_on = n
        .prior_filed_on
        .as_deref()
        .map(|v| {
            parse_date(v).ok_or_else(|| Error::validation("prior_filed_on", "must be YYYY-MM-DD"))
        })
        .transpose()?;
    let detail = cases::get(svc, p, &n.case_id).await?;
    if detail.case.case_type == WORK_ITEM_TYPE {
        return Err(Error::validation(
            "case_id",
            "this is a SAR work item; name the case the report is about",
        ));
    }
    let now = svc.clock.now();
    let today = now.date();
    let mut c = svc.db.conn().await?;
    let mut content = prefill(&mut *c, p.tenant_id, &detail).await?;
    drop(c);
    if let Some(s) = n.suspect_identified {
        content.suspect_identified = s;
    }
    let detected = detail.case.detected_at.unwrap_or(detail.case.created_at);
    let mut tx = svc.db.begin().await?;
    // A continuing report counts from the prior filing: ours if we filed it, else as given.
    if prior_filed_on.is_some_and(|d| d > today) {
        return Err(Error::validation(
            "prior_filed_on",
            "must not be in the future",
        ));
    }
    // Our own record of the prior filing wins over what the caller says.
    let ours = match &prior {
        Some(id) => store::filed_at(&mut *tx, p.tenant_id, id)
            .await?
            .map(OffsetDateTime::date),
        None => None,
    };
    let prior_filed_on = ours.or(prior_filed_on);
    if filing_type == FilingType::ContinuingActivity && prior_filed_on.is_none() {
        return Err(Error::validation(
            "prior_filed_on",
            "no report with this id was filed through casegate: give the date the prior report was filed (YYYY-MM-DD)",
        ));
    }
    let title = format!(
        "SAR ({}) for {}: {}",
        filing_type.as_str(),
        detail.case.reference,
        detail.case.title
    );
    let item = cases::create_work_item(&mut *tx, p, &title, detail.case.id, now).await?;
    let mut s = StoredSar {
        tenant_id: p.tenant_id,
        id: item.id,
        case_id: detail.case.id,
        filing_type: filing_type.as_str().into(),
        jurisdiction: n.jurisdiction.clone(),
        prior_report_id: prior,
        prior_filed_on: prior_filed_on.map(ymd),
        detected_on: ymd(detected.date()),
        opened_on: ymd(today),
        deadline_at: now,
        deadline: Value::Null,
        content: serde_json::to_value(&content).map_err(Error::internal)?,
        checks: json!({}),
        transmitter: None,
        filing_reference: None,
        submitted_at: None,
        submitted_by: None,
        bsa_id: None,
        acknowledgement: None,
        acknowledged_at: None,
        warnings_sent: 0,
        next_warning_at: None,
        created_by: Some(p.user_id.0),
        created_at: now,
        updated_at: now,
        version: 1,
        status: item.status.clone(),
        reference: item.reference.clone(),
    };
    set_deadline(&mut s, &content)?;
    // The first warning's date may have passed already (a late report): then it goes at once.
    s.next_warning_at = next_warning(&s, 0);
    store::insert(&mut *tx, &s).await?;
    let v = view(&s, today)?;
    let entry = Entry {
        action: "sar.created",
        entity_type: "sar",
        entity_id: Some(s.id.to_string()),
        changes: json!({
            "case_id": {"before": null, "after": s.case_id},
            "filing_type": {"before": null, "after": s.filing_type},
            "jurisdiction": {"before": null, "after": s.jurisdiction},
            "prior_report_id": {"before": null, "after": s.prior_report_id},
            "deadline": {"before": null, "after": v.deadline},
        }),
    };
    audit::append_by(&mut *tx, now, p, entry).await?;
    crate::enqueue(
        &mut *tx,
        p.tenant_id,
        now,
        "sar.created",
        json!({ "sar": v }),
        json!({}),
    )
    .await?;
    tx.commit().await?;
    if n.submit_for_review {
        // The move is the workflow's (its own transaction and audit event). Should it be
        // refused, the report stays a draft and the caller hears why.
        return match set_status(svc, p, &s.id.to_string(), "pending_review", None, None).await {
            Ok((v, _)) => Ok((v.sar, None)),
            Err(e) => Ok((v, Some(e))),
        };
    }
    Ok((v, None))
}

/// The content a new report starts from: subjects and accounts from the case's related parties,
/// amounts and dates from the transactions in its source payload and its alerts', the
/// narrative from its title, reasons, notes and comments. Everything stays editable. Whether a
/// suspect was identified starts as `true` (the shorter, 30-day deadline) until someone says
/// otherwise.
async fn prefill(c: &mut dyn Conn, tenant: TenantId, d: &CaseDetail) -> Result<SarContent> {
    let mut content = SarContent::default();
    let mut accounts = Vec::new();
    for r in d.relations.iter().filter(|r| r.target_type == "party") {
        let Some(party) = record::party(c, tenant, PartyId(r.target_id)).await? else {
            continue;
        };
        let ids = &party.identifiers;
        let text = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| ids[*k].as_str().map(str::trim).filter(|v| !v.is_empty()))
                .map(str::to_string)
        };
        let tin = text(&["tin", "ssn", "itin", "ein", "tax_id"]).map(|t| {
            t.chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
        });
        let address = Address {
            line1: text(&["address", "street"]),
            city: text(&["city"]),
            state: text(&["state"]),
            postal_code: text(&["postal_code", "zip"]),
            country: text(&["country", "nationality"]).map(|c| c.to_ascii_uppercase()),
        };
        let address = (address != Address::default()).then_some(address);
        let subject = match party.kind.as_str() {
            "person" => {
                let (first, last) = match party.name.trim().rsplit_once(' ') {
                    Some((f, l)) => (Some(f.trim().to_string()), Some(l.to_string())),
                    None => (None, Some(party.name.trim().to_string())),
                };
                Subject {
                    kind: SubjectKind::Individual,
                    first_name: first,
                    last_name: last,
                    entity_name: None,
                    date_of_birth: text(&["date_of_birth", "dob"])
                        .as_deref()
                        .and_then(parse_date),
                    tin,
                    address,
                    accounts: Vec::new(),
                }
            }
            "organisation" => Subject {
                kind: SubjectKind::Entity,
                first_name: None,
                last_name: None,
                entity_name: Some(party.name.trim().to_string()),
                date_of_birth: None,
                tin,
                address,
                accounts: Vec::new(),
            },
            "account" => {
                accounts.push(party.name.trim().to_string());
                continue;
            }
            _ => continue,
        };
        content.subjects.push(subject);
    }
    if let Some(first) = content.subjects.first_mut() {
        first.accounts = accounts;
    }
    let mut sources: Vec<Value> = d.case.source.iter().cloned().collect();
    for a in &d.case.alert_ids {
        if let Some(k) = case_store::get(c, tenant, *a).await? {
            sources.extend(k.source);
        }
    }
    content.activity = activity_of(&sources);
    content.narrative = narrative_of(d);
    Ok(content)
}

/// Totals and dates of the transactions (`source.transactions: [{"amount", "date"}]`) in the
/// payloads; dates are the first ten characters of `date`, `booked_at` or `timestamp`.
fn activity_of(sources: &[Value]) -> Activity {
    let mut a = Activity::default();
    let mut total = 0i64;
    let mut any = false;
    for tx in sources
        .iter()
        .filter_map(|s| s["transactions"].as_array())
        .flatten()
    {
        let amount = match &tx["amount"] {
            Value::Number(n) => Amount::parse(&n.to_string()),
            Value::String(s) => Amount::parse(s),
            _ => None,
        };
        if let Some(m) = amount {
            total = total.saturating_add(m.0);
            any = true;
        }
        let day = ["date", "booked_at", "timestamp"]
            .iter()
            .find_map(|k| tx[*k].as_str())
            .and_then(|s| s.get(..10))
            .and_then(parse_date);
        if let Some(day) = day {
            a.from_date = Some(a.from_date.map_or(day, |f| f.min(day)));
            a.to_date = Some(a.to_date.map_or(day, |t| t.max(day)));
        }
    }
    if any {
        a.total_amount = Some(Amount(total));
    }
    a
}

fn narrative_of(d: &CaseDetail) -> String {
    let k = &d.case;
    let mut out = format!("{} (case {}", k.title.trim(), k.reference);
    if let Some(t) = k.detected_at {
        out.push_str(&format!(", activity detected on {}", ymd(t.date())));
    }
    out.push_str(").");
    if !k.reasons.is_empty() {
        out.push_str(&format!(
            "\n\nGrounds for suspicion: {}.",
            k.reasons.join("; ")
        ));
    }
    if let Some(n) = k.notes.as_deref().filter(|n| !n.trim().is_empty()) {
        out.push_str(&format!("\n\n{}", n.trim()));
    }
    if !d.comments.is_empty() {
        out.push_str("\n\nInvestigation notes:");
        for c in &d.comments {
            out.push_str(&format!(
                "\n- {}: {}",
                ymd(c.created_at.date()),
                c.content.trim()
            ));
        }
    }
    out.chars()
        .take(casegate_domain::sar::content::MAX_NARRATIVE_CHARS)
        .collect()
}

/// Loads report `id` (an id or the work item's reference) of the caller's tenant: 404 alike
/// for a foreign and a missing one.
async fn load(c: &mut dyn Conn, tenant: TenantId, id: &str) -> Result<StoredSar> {
    let case_id = match id.parse::<Uuid>() {
        Ok(u) => CaseId(u),
        Err(_) => match case_store::by_reference(c, tenant, id).await? {
            Some(k) => k.id,
            None => return Err(Error::not_found("sar")),
        },
    };
    store::get(c, tenant, case_id)
        .await?
        .ok_or_else(|| Error::not_found("sar"))
}

/// The header a document needs.
fn header(s: &StoredSar, today: Date) -> Result<ReportHeader> {
    Ok(ReportHeader {
        reference: s.reference.clone(),
        filing_type: FilingType::parse("filing_type", &s.filing_type)?,
        prior_report_id: s.prior_report_id.clone(),
        prepared_on: today,
    })
}

/// The tenant's filing profile (empty when none was saved).
async fn profile_of(c: &mut dyn Conn, tenant: TenantId) -> Result<(FilingProfile, i64)> {
    match store::profile(c, tenant).await? {
        Some((v, version)) => Ok((serde_json::from_value(v).map_err(Error::internal)?, version)),
        None => Ok((FilingProfile::default(), 0)),
    }
}

fn rules_of(f: Format, h: &ReportHeader, c: &SarContent, p: &FilingProfile) -> Vec<Problem> {
    match f {
        Format::FincenXml => fincen::check(h, c, p),
        Format::GoamlXml => goaml::check(h, c, p),
    }
}

fn render(f: Format, h: &ReportHeader, c: &SarContent, p: &FilingProfile) -> String {
    match f {
        Format::FincenXml => fincen::document(h, c, p),
        Format::GoamlXml => goaml::document(h, c, p),
    }
}

/// `GET /sars/{id}` (`sar.view`).
pub async fn get(svc: &Services, p: &Caller, id: &str) -> Result<SarDetail> {
    p.require(Permission::SarView)?;
    let today = svc.clock.now().date();
    let mut c = svc.db.conn().await?;
    let s = load(&mut *c, p.tenant_id, id).await?;
    let (profile, _) = profile_of(&mut *c, p.tenant_id).await?;
    let content = content_of(&s)?;
    let validation = match Format::of_jurisdiction(&s.jurisdiction) {
        Some(f) => {
            let problems = rules_of(f, &header(&s, today)?, &content, &profile);
            json!({
                "format": f.as_str(),
                "business_rules": if problems.is_empty() { "passed" } else { "failed" },
                "problems": problems,
                "last_document_checks": s.checks,
            })
        }
        None => json!({
            "format": null,
            "business_rules": "skipped",
            "problems": [],
            "reason": format!("casegate has no filing format for `{}` yet", s.jurisdiction),
        }),
    };
    let history = record::history(&mut *c, p.tenant_id, s.id)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    let pending_request = approvals::pending_of(&mut *c, p.tenant_id, s.id).await?;
    Ok(SarDetail {
        sar: view(&s, today)?,
        validation,
        history,
        pending_request,
    })
}

/// `GET /sars` filters.
#[derive(Clone, Debug, Default)]
pub struct SarQuery {
    /// Status.
    pub status: Option<String>,
    /// Jurisdiction.
    pub jurisdiction: Option<String>,
    /// A date (`YYYY-MM-DD`: deadlines before that day) or an RFC 3339 date-time.
    pub deadline_before: Option<String>,
    /// The originating case (id).
    pub case_id: Option<String>,
}

const STATUSES: [&str; 6] = [
    "draft",
    "pending_review",
    "returned",
    "approved",
    "withdrawn",
    FILED,
];

/// `GET /sars` (`sar.view`): newest first.
pub async fn list(svc: &Services, p: &Caller, q: SarQuery, page: Page) -> Result<Vec<SarView>> {
    p.require(Permission::SarView)?;
    if let Some(s) = &q.status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(Error::validation(
            "status",
            format!("must be one of {}", STATUSES.join(", ")),
        ));
    }
    if let Some(j) = &q.jurisdiction {
        check_jurisdiction(j)?;
    }
    let deadline_before = q
        .deadline_before
        .as_deref()
        .map(|v| {
            parse_date(v)
                .map(|d| d.midnight().assume_utc())
                .or_else(|| OffsetDateTime::parse(v, &Rfc3339).ok())
                .ok_or_else(|| {
                    Error::validation(
                        "deadline_before",
                        "must be a date (YYYY-MM-DD) or an RFC 3339 date-time",
                    )
                })
        })
        .transpose()?;
    let case_id = q
        .case_id
        .as_deref()
        .map(|v| {
            v.parse::<Uuid>()
                .map(CaseId)
                .map_err(|_| Error::validation("case_id", "must be a case id"))
        })
        .transpose()?;
    let f = SarFilter {
        status: q.status,
        jurisdiction: q.jurisdiction,
        deadline_before,
        case_id,
    };
    let today = svc.clock.now().date();
    let mut c = svc.db.conn().await?;
    store::list(&mut *c, p.tenant_id, &f, page.limit, page.offset)
        .await?
        .iter()
        .map(|s| view(s, today))
        .collect()
}

/// The latest report filed from case `case` (the case's `sar_filing`), if any.
pub(crate) async fn of_case(
    c: &mut dyn Conn,
    tenant: TenantId,
    case: CaseId,
    today: Date,
) -> Result<Option<Value>> {
    let f = SarFilter {
        case_id: Some(case),
        ..Default::default()
    };
    let Some(s) = store::list(c, tenant, &f, 1, 0).await?.into_iter().next() else {
        return Ok(None);
    };
    let v = view(&s, today)?;
    Ok(Some(json!({
        "id": v.id, "reference": v.reference, "status": v.status, "filing_type": v.filing_type,
        "jurisdiction": v.jurisdiction, "deadline": v.deadline, "days_left": v.days_left,
        "filing_reference": v.filing_reference, "bsa_id": v.bsa_id,
    })))
}

/// Opens report `id` for a change: its work item locked (the lock order every case command
/// takes), then the report, at version `expected` if given.
async fn open(
    svc: &Services,
    p: &Caller,
    id: &str,
    expected: Option<i64>,
) -> Result<(cases::Open, StoredSar)> {
    // The work item resolves the id or reference and takes the case's lock; a case that is no
    // report's work item is as unknown as a missing one.
    let mut o = cases::open(svc, p, id, None)
        .await
        .map_err(|e| match e.code {
            Code::NotFound => Error::not_found("sar"),
            _ => e,
        })?;
    let item = o.before.id;
    store::lock(&mut *o.tx, p.tenant_id, item).await?;
    let s = store::get(&mut *o.tx, p.tenant_id, item)
        .await?
        .ok_or_else(|| Error::not_found("sar"))?;
    if let Some(v) = expected
        && v != s.version
    {
        return Err(crate::case_types::version_conflict(s.version));
    }
    Ok((o, s))
}

const CONTENT_KEYS: [&str; 4] = ["subjects", "suspect_identified", "activity", "narrative"];

/// `PATCH /sars/{id}` (`sar.edit`): replaces the given parts of the content (`subjects`,
/// `suspect_identified`, `activity`, `narrative`); only in `draft` or `returned` (422
/// `sar_locked` otherwise). A change of `suspect_identified` moves the deadline.
pub async fn update(
    svc: &Services,
    p: &Caller,
    id: &str,
    body: Map<String, Value>,
    expected: Option<i64>,
) -> Result<SarView> {
    p.require(Permission::SarEdit)?;
    if let Some(k) = body.keys().find(|k| !CONTENT_KEYS.contains(&k.as_str())) {
        return Err(Error::validation(
            k.as_str(),
            format!(
                "unknown field; the content fields are {}",
                CONTENT_KEYS.join(", ")
            ),
        ));
    }
    let (mut o, before) = open(svc, p, id, expected).await?;
    if !EDITABLE.contains(&before.status.as_str()) {
        return Err(Error::new(
            Code::SarLocked,
            format!(
                "the report is `{}`: its content can change only in `draft` or `returned`",
                before.status
            ),
        ));
    }
    let mut merged = before.content.clone();
    for (k, v) in &body {
        check_part(k, v)?;
        merged[k] = v.clone();
    }
    let content: SarContent = serde_json::from_value(merged)
        .map_err(|e| Error::validation("body", format!("invalid report content: {e}")))?;
    content.check()?;
    let mut s = before.clone();
    s.content = serde_json::to_value(&content).map_err(Error::internal)?;
    set_deadline(&mut s, &content)?;
    if s.deadline_at != before.deadline_at {
        // A new due date gets its own warnings: those whose dates already passed count as sent.
        s.warnings_sent = warnings_passed(&s, o.now.date());
        s.next_warning_at = next_warning(&s, s.warnings_sent);
    }
    s.version += 1;
    s.updated_at = o.now;
    if !store::update(&mut *o.tx, &s, before.version).await? {
        return Err(crate::case_types::version_conflict(before.version + 1));
    }
    let mut changes = Map::new();
    for k in CONTENT_KEYS {
        if before.content[k] != s.content[k] {
            changes.insert(
                k.into(),
                json!({ "before": before.content[k], "after": s.content[k] }),
            );
        }
    }
    if before.deadline != s.deadline {
        changes.insert(
            "deadline".into(),
            json!({ "before": before.deadline, "after": s.deadline }),
        );
    }
    let entry = Entry {
        action: "sar.updated",
        entity_type: "sar",
        entity_id: Some(s.id.to_string()),
        changes: Value::Object(changes),
    };
    audit::append_by(&mut *o.tx, o.now, p, entry).await?;
    let today = o.now.date();
    o.tx.commit().await?;
    view(&s, today)
}

/// `s`'s warning dates (14, 7, 1 and 0 days before the due day).
fn warning_dates_of(s: &StoredSar) -> Vec<Date> {
    s.deadline["due_on"]
        .as_str()
        .and_then(parse_date)
        .map(sar::warning_dates)
        .unwrap_or_default()
}

/// How many of `s`'s warning dates are on or before `today`.
fn warnings_passed(s: &StoredSar, today: Date) -> i64 {
    warning_dates_of(s).iter().filter(|w| **w <= today).count() as i64
}

/// When warning number `sent` (0-based) of `s` is due: the start of its day, UTC.
fn next_warning(s: &StoredSar, sent: i64) -> Option<OffsetDateTime> {
    let dates = warning_dates_of(s);
    usize::try_from(sent)
        .ok()
        .and_then(|i| dates.get(i))
        .map(|d| d.midnight().assume_utc())
}

/// Reads one part of the content on its own, so an error names the part.
fn check_part(key: &str, v: &Value) -> Result<()> {
    let err = |e: serde_json::Error| Error::validation(key, format!("invalid `{key}`: {e}"));
    match key {
        "subjects" => serde_json::from_value::<Vec<Subject>>(v.clone()).map(drop),
        "activity" => serde_json::from_value::<Activity>(v.clone()).map(drop),
        "narrative" => serde_json::from_value::<String>(v.clone()).map(drop),
        _ => serde_json::from_value::<bool>(v.clone()).map(drop),
    }
    .map_err(err)
}

/// `POST /sars/{id}/status`: `pending_review` (`sar.edit`), `approved`, `returned`,
/// `withdrawn` (`sar.review`); `filed` is 403 `status_reserved`. The move is the workflow's: an
/// approval answers the report with its pending request (202 at the edge). `reviewer_id`
/// (with `pending_review`) assigns the work item to that reviewer, who must hold `sar.review`.
/// Answers the report and whether the move awaits approval.
pub async fn set_status(
    svc: &Services,
    p: &Caller,
    id: &str,
    to: &str,
    reason: Option<&str>,
    reviewer: Option<&str>,
) -> Result<(SarDetail, bool)> {
    let needs = match to {
        FILED => {
            return Err(Error::new(
                Code::StatusReserved,
                "`filed` is set only by casegate, when a submission is confirmed (POST /sars/{id}/submit)",
            )
            .with_param("new_status"));
        }
        "pending_review" => Permission::SarEdit,
        "approved" | "returned" | "withdrawn" => Permission::SarReview,
        _ => {
            return Err(Error::new(
                Code::InvalidTransition,
                "`new_status` must be pending_review, approved, returned or withdrawn",
            )
            .with_param("new_status"));
        }
    };
    p.require(Permission::SarView)?;
    p.require(needs)?;
    if matches!(to, "returned" | "withdrawn") && reason.is_none_or(|r| r.trim().is_empty()) {
        return Err(Error::new(
            Code::ReasonRequired,
            format!("a reason is required to move the report to `{to}`"),
        )
        .with_param("reason"));
    }
    let mut c = svc.db.conn().await?;
    let s = load(&mut *c, p.tenant_id, id).await?;
    drop(c);
    let key = s.id.to_string();
    if let Some(r) = reviewer {
        // Checked before assigning, which would otherwise supersede a pending approval.
        if !EDITABLE.contains(&s.status.as_str()) {
            return Err(Error::new(
                Code::InvalidTransition,
                format!(
                    "the report is `{}`: only a draft or returned report is sent for review",
                    s.status
                ),
            )
            .with_param("new_status"));
        }
        if to != "pending_review" {
            return Err(Error::validation(
                "reviewer_id",
                "a reviewer is named only when sending the report for review",
            ));
        }
        let u = crate::users::resolve(&mut *svc.db.conn().await?, p.tenant_id, r)
            .await
            .map_err(|e| e.with_param("reviewer_id"))?;
        let perms = casegate_domain::rbac::permissions_of(&u.roles);
        if !u.active || !perms.contains(Permission::SarReview) {
            return Err(Error::validation(
                "reviewer_id",
                "the reviewer must be an active user holding `sar.review`",
            ));
        }
        // Assigning is part of sending for review, whoever sends it.
        let sys = system_caller(p);
        cases::assign(svc, &sys, &key, Some(&u.id.to_string()), None).await?;
    }
    let moved = cases::transition(svc, p, &key, to, reason, None).await?;
    let requested = matches!(moved, cases::Moved::Requested(_));
    Ok((get(svc, p, &key).await?, requested))
}

/// The caller acting as the system for a step the SAR process takes on its behalf (audited
/// with the caller's origin).
fn system_caller(p: &Caller) -> Caller {
    let mut sys = casegate_domain::principal::Principal::system(p.tenant_id);
    sys.email = Some(format!("system (for {})", p.audit_label()));
    Caller {
        principal: std::sync::Arc::new(sys),
        origin: p.origin.clone(),
    }
}

/// A generated document and what its checks found.
#[derive(Clone, Debug)]
pub struct Document {
    /// The format.
    pub format: Format,
    /// The XML.
    pub xml: String,
    /// Business-rule problems (source `business_rule`).
    pub problems: Vec<Problem>,
    /// The schema check.
    pub schema: SchemaCheck,
}

impl Document {
    /// Every problem, business rules first.
    pub fn all_problems(&self) -> Vec<Problem> {
        let mut all = self.problems.clone();
        all.extend(self.schema.errors().iter().cloned());
        all
    }

    /// 422 `document_invalid` listing every problem, or nothing.
    pub fn require_valid(&self) -> Result<()> {
        let all = self.all_problems();
        if all.is_empty() {
            return Ok(());
        }
        Err(Error::new(
            Code::DocumentInvalid,
            format!(
                "the {} document has {} problem(s) to fix before filing",
                self.format.as_str(),
                all.len()
            ),
        )
        .with_details(json!({
            "format": self.format.as_str(),
            "problems": all,
            "schema": self.schema,
        })))
    }
}

async fn build(
    svc: &Services,
    s: &StoredSar,
    profile: &FilingProfile,
    f: Format,
    today: Date,
) -> Result<Document> {
    let h = header(s, today)?;
    let content = content_of(s)?;
    let problems = rules_of(f, &h, &content, profile);
    let xml = render(f, &h, &content, profile);
    let schema = svc
        .config
        .sar
        .validator
        .check(f.schema(&svc.config.sar), &xml)
        .await;
    Ok(Document {
        format: f,
        xml,
        problems,
        schema,
    })
}

/// `GET /sars/{id}/document?format=` (`sar.view`): the filing document, checked against the
/// business rules and the configured schema (the format defaults to the jurisdiction's).
pub async fn document(
    svc: &Services,
    p: &Caller,
    id: &str,
    format: Option<&str>,
) -> Result<Document> {
    p.require(Permission::SarView)?;
    let today = svc.clock.now().date();
    let mut c = svc.db.conn().await?;
    let s = load(&mut *c, p.tenant_id, id).await?;
    let f = match format {
        Some(f) => Format::parse(f)?,
        None => Format::of_jurisdiction(&s.jurisdiction).ok_or_else(|| {
            Error::validation(
                "format",
                format!("`{}` has no default format: name one", s.jurisdiction),
            )
        })?,
    };
    if s.status == FILED
        && Format::of_jurisdiction(&s.jurisdiction) == Some(f)
        && let Some(xml) = store::filed_document(&mut *c, p.tenant_id, s.id).await?
    {
        // A filed report's document is the one filed, byte for byte, with the checks it passed.
        let schema = serde_json::from_value(s.checks[f.as_str()]["schema"].clone()).unwrap_or(
            SchemaCheck::Skipped {
                reason: "the schema check of the filed document was not recorded".into(),
            },
        );
        return Ok(Document {
            format: f,
            xml,
            problems: Vec::new(),
            schema,
        });
    }
    let (profile, _) = profile_of(&mut *c, p.tenant_id).await?;
    drop(c);
    build(svc, &s, &profile, f, today).await
}

/// The sandbox transmitter's reference: `SANDBOX-SAR-` and eight characters `0-9A-Z`.
fn sandbox_reference() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let tail: String = random_id()[..8]
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    format!("SANDBOX-SAR-{tail}")
}

/// `POST /sars/{id}/submit` (`sar.review`): files an `approved` report through the configured
/// [`Transmitter`] (the sandbox: nothing leaves casegate; it answers `SANDBOX-SAR-XXXXXXXX`). The
/// document must pass every business rule and the schema check (422 `document_invalid`); the
/// report becomes `filed` with its reference, in one transaction with its audit events.
pub async fn submit(svc: &Services, p: &Caller, id: &str) -> Result<SarDetail> {
    p.require(Permission::SarView)?;
    p.require(Permission::SarReview)?;
    let today = svc.clock.now().date();
    let mut c = svc.db.conn().await?;
    let s = load(&mut *c, p.tenant_id, id).await?;
    let (profile, _) = profile_of(&mut *c, p.tenant_id).await?;
    drop(c);
    if s.status != "approved" {
        return Err(Error::new(
            Code::InvalidTransition,
            format!(
                "only an approved report is submitted; this one is `{}`",
                s.status
            ),
        )
        .with_details(json!({ "allowed": [] })));
    }
    let f = Format::of_jurisdiction(&s.jurisdiction).ok_or_else(|| {
        Error::validation(
            "jurisdiction",
            format!("casegate cannot file with `{}` yet", s.jurisdiction),
        )
    })?;
    let doc = build(svc, &s, &profile, f, today).await?;
    doc.require_valid()?;
    if let (Some(_), SchemaCheck::Skipped { reason }) = (f.schema(&svc.config.sar), &doc.schema) {
        // A schema is configured, so filing waits until the check can run.
        return Err(Error::new(
            Code::Unavailable,
            format!("the schema check could not run, so the report was not filed: {reason}"),
        ));
    }
    let (o, mut locked) = open(svc, p, &s.id.to_string(), Some(s.version)).await?;
    if locked.status != "approved" {
        return Err(crate::case_types::version_conflict(locked.version));
    }
    // Transmitted under the report's lock: a concurrent submission waits, then finds it filed.
    // Should recording fail after a real gateway accepted, a retry carries the same report id,
    // its idempotency key.
    let transmitter = svc.config.sar.transmitter.clone();
    let reference = transmitter.transmit(locked.id, f, &doc.xml).await?;
    let reference = validate::text("filing_reference", &reference, 128)?;
    let now = o.now;
    let before = locked.clone();
    locked.transmitter = Some(transmitter.name().to_string());
    locked.filing_reference = Some(reference.clone());
    locked.submitted_at = Some(now);
    locked.submitted_by = Some(p.user_id.0);
    locked.checks[f.as_str()] = json!({
        "checked_at": wire_time(now),
        "business_rules": "passed",
        "schema": doc.schema,
        "sha256": hex_sha256(&doc.xml),
    });
    locked.version += 1;
    locked.updated_at = now;
    locked.next_warning_at = None;
    let mut o = o;
    if !store::update(&mut *o.tx, &locked, before.version).await? {
        return Err(crate::case_types::version_conflict(before.version + 1));
    }
    store::set_filed_document(&mut *o.tx, p.tenant_id, locked.id, &doc.xml).await?;
    let entry = Entry {
        action: "sar.submitted",
        entity_type: "sar",
        entity_id: Some(locked.id.to_string()),
        changes: json!({
            "filing_reference": {"before": null, "after": reference},
            "transmitter": {"before": null, "after": transmitter.name()},
            "document": {"before": null, "after": locked.checks[f.as_str()]},
        }),
    };
    audit::append_by(&mut *o.tx, now, p, entry).await?;
    let reason = format!(
        "Filed through the {} transmitter: {reference}",
        transmitter.name()
    );
    cases::file_work_item(o, p, reason).await?;
    get(svc, p, &s.id.to_string()).await
}

fn hex_sha256(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `POST /sars/{id}/acknowledgement` (`sar.review`): records FinCEN's acknowledgement of a
/// filed report: the BSA ID and every warning or error, and whether it was accepted.
/// `activity_seq` picks the report's activity in a batch acknowledgement.
pub async fn acknowledge(
    svc: &Services,
    p: &Caller,
    id: &str,
    body: &[u8],
    activity_seq: Option<i64>,
) -> Result<SarDetail> {
    p.require(Permission::SarView)?;
    p.require(Permission::SarReview)?;
    let parsed = ack::parse(body)?;
    let a = parsed.activity(activity_seq)?.clone();
    if let Some(id) = &a.bsa_id
        && !(id.len() == 14 && id.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(Error::validation(
            "body",
            format!("`{id}` is not a BSA ID (14 digits)"),
        ));
    }
    let (mut o, before) = open(svc, p, id, None).await?;
    if before.status != FILED {
        return Err(Error::new(
            Code::InvalidTransition,
            format!(
                "only a filed report is acknowledged; this one is `{}`",
                before.status
            ),
        ));
    }
    if before.jurisdiction != "fincen" {
        return Err(Error::validation(
            "body",
            "acknowledgements are read in FinCEN's format; this report was filed elsewhere",
        ));
    }
    let mut s = before.clone();
    let warnings: Vec<_> = a.errors.iter().filter(|e| e.level == "WARN").collect();
    let errors: Vec<_> = a.errors.iter().filter(|e| e.level != "WARN").collect();
    // A rejection carries no BSA ID; it does not erase one recorded before.
    s.bsa_id = a.bsa_id.clone().or(before.bsa_id.clone());
    s.acknowledgement = Some(json!({
        "accepted": a.accepted(),
        "batch_status": parsed.batch_status,
        "activity_seq": a.seq_num,
        "bsa_id": a.bsa_id,
        "warnings": warnings,
        "errors": errors,
        "received_at": wire_time(o.now),
    }));
    s.acknowledged_at = Some(o.now);
    s.version += 1;
    s.updated_at = o.now;
    if !store::update(&mut *o.tx, &s, before.version).await? {
        return Err(crate::case_types::version_conflict(before.version + 1));
    }
    let entry = Entry {
        action: "sar.acknowledged",
        entity_type: "sar",
        entity_id: Some(s.id.to_string()),
        changes: json!({
            "bsa_id": {"before": before.bsa_id, "after": s.bsa_id},
            "acknowledgement": {"before": before.acknowledgement, "after": s.acknowledgement},
        }),
    };
    audit::append_by(&mut *o.tx, o.now, p, entry).await?;
    o.tx.commit().await?;
    get(svc, p, &s.id.to_string()).await
}

/// `GET /settings/filing-profile` (`sar.view`): the profile and its version.
pub async fn filing_profile(svc: &Services, p: &Caller) -> Result<(FilingProfile, i64)> {
    p.require(Permission::SarView)?;
    let mut c = svc.db.conn().await?;
    profile_of(&mut *c, p.tenant_id).await
}

/// `PUT /settings/filing-profile` (`sar.review`): replaces the profile; `expected` (If-Match)
/// guards against a concurrent change. Audited with before and after.
pub async fn put_filing_profile(
    svc: &Services,
    p: &Caller,
    body: Value,
    expected: Option<i64>,
) -> Result<(FilingProfile, i64)> {
    p.require(Permission::SarReview)?;
    let profile: FilingProfile = serde_json::from_value(body)
        .map_err(|e| Error::validation("body", format!("invalid filing profile: {e}")))?;
    check_profile(&profile)?;
    let now = svc.clock.now();
    let mut tx = svc.db.begin().await?;
    let (before, version) = profile_of(&mut *tx, p.tenant_id).await?;
    if let Some(v) = expected
        && v != version
    {
        return Err(crate::case_types::version_conflict(version));
    }
    let value = serde_json::to_value(&profile).map_err(Error::internal)?;
    if !store::put_profile(
        &mut *tx,
        p.tenant_id,
        &value,
        Some(p.user_id.0),
        now,
        version,
    )
    .await?
    {
        return Err(crate::case_types::version_conflict(version + 1));
    }
    let entry = Entry {
        action: "sar.filing_profile_updated",
        entity_type: "filing_profile",
        entity_id: Some(p.tenant_id.to_string()),
        changes: json!({ "profile": {
            "before": serde_json::to_value(&before).map_err(Error::internal)?,
            "after": value,
        }}),
    };
    audit::append_by(&mut *tx, now, p, entry).await?;
    tx.commit().await?;
    Ok((profile, version + 1))
}

fn check_profile(p: &FilingProfile) -> Result<()> {
    let parties = [
        ("filer", &p.filer),
        ("transmitter", &p.transmitter),
        ("contact_office", &p.contact_office),
    ];
    for (name, party) in parties {
        let texts = [
            ("name", &party.name),
            ("tin", &party.tin),
            ("phone", &party.phone),
            ("contact_name", &party.contact_name),
            ("address.line1", &party.address.line1),
            ("address.city", &party.address.city),
            ("address.state", &party.address.state),
            ("address.postal_code", &party.address.postal_code),
            ("address.country", &party.address.country),
        ];
        for (field, v) in texts {
            if let Some(v) = v {
                validate::text(&format!("{name}.{field}"), v, 150)?;
            }
        }
    }
    let codes = [
        ("transmitter_control_code", &p.transmitter_control_code),
        ("primary_regulator_code", &p.primary_regulator_code),
        ("institution_type_code", &p.institution_type_code),
        ("goaml_rentity_id", &p.goaml_rentity_id),
        ("goaml_rentity_branch", &p.goaml_rentity_branch),
        ("goaml_currency", &p.goaml_currency),
        ("goaml_report_code", &p.goaml_report_code),
    ];
    for (field, v) in codes {
        if let Some(v) = v {
            validate::text(field, v, 64)?;
        }
    }
    Ok(())
}

/// Deadline warnings (14, 7 and 1 days before, and on the day): each report not yet filed or
/// withdrawn notifies its creator, its work item's assignee and the MLROs (active users only)
/// once per warning date reached; a sweep that missed dates sends one message for the latest.
/// Run by the worker. Reads only the reports whose next warning is due (indexed), then handles
/// each in its own transaction, so one failing report neither blocks the others nor holds
/// locks across the batch. Idempotent: a warning is keyed by report and date, and the count
/// sent moves by compare-and-swap. Answers how many reports were warned.
pub async fn warn_deadlines(svc: &Services) -> Result<u64> {
    let now = svc.clock.now();
    let due = {
        let mut c = svc.db.conn().await?;
        store::warnings_due(&mut *c, now, 200).await?
    };
    let mut warned = 0;
    for s in due {
        match warn_one(svc, &s, now).await {
            Ok(true) => warned += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(sar = %s.id, error = %e, "SAR deadline warning failed"),
        }
    }
    Ok(warned)
}

async fn warn_one(svc: &Services, s: &StoredSar, now: OffsetDateTime) -> Result<bool> {
    let today = now.date();
    let mut tx = svc.db.begin().await?;
    let from = s.warnings_sent;
    if matches!(s.status.as_str(), FILED | "withdrawn") {
        store::mark_warned(&mut *tx, s.tenant_id, s.id, from, from, None).await?;
        tx.commit().await?;
        return Ok(false);
    }
    let reached = warnings_passed(s, today);
    if reached <= from {
        // Not due after all (the schedule predates a change): set it right.
        store::mark_warned(
            &mut *tx,
            s.tenant_id,
            s.id,
            from,
            from,
            next_warning(s, from),
        )
        .await?;
        tx.commit().await?;
        return Ok(false);
    }
    if !store::mark_warned(
        &mut *tx,
        s.tenant_id,
        s.id,
        from,
        reached,
        next_warning(s, reached),
    )
    .await?
    {
        return Ok(false);
    }
    let dates = warning_dates_of(s);
    let (Some(due_on), Some(latest)) = (dates.last().copied(), dates.get((reached - 1) as usize))
    else {
        return Ok(false);
    };
    let left = sar::days_left(today, due_on);
    let message = match left {
        0 => format!(
            "SAR {} is due today ({}): file it before the end of the day",
            s.reference,
            ymd(due_on)
        ),
        n if n < 0 => format!(
            "SAR {} is overdue: it was due on {}",
            s.reference,
            ymd(due_on)
        ),
        n => format!(
            "SAR {} is due in {n} day(s), on {}",
            s.reference,
            ymd(due_on)
        ),
    };
    // Only active users with a record get a message (a JWT caller without one has no inbox).
    let mut named: Vec<String> = s.created_by.iter().map(Uuid::to_string).collect();
    if let Some(k) = case_store::get(&mut *tx, s.tenant_id, s.id).await?
        && let Some(a) = k.assigned_to
    {
        named.push(a.to_string());
    }
    let readers: Vec<UserId> =
        crate::notifications::holders(&mut *tx, s.tenant_id, &["mlro".to_string()], &named)
            .await?
            .into_iter()
            .map(|u| u.id)
            .collect();
    let m = crate::notifications::Message {
        kind: "sar.deadline",
        message: &message,
        case_id: Some(s.id),
        data: json!({ "sar_id": s.id, "due_on": ymd(due_on), "days_left": left }),
        source_key: format!("sar-deadline:{}:{}", s.id, ymd(*latest)),
    };
    crate::notifications::send(&mut *tx, s.tenant_id, &readers, &m, now).await?;
    tx.commit().await?;
    Ok(true)
}
