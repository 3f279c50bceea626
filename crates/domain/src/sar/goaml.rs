//! The goAML report for the UAE FIU (goAML XML schema 5.0.2, `regulatory/goaml/uae-fiu-5.0.2`):
//! [`document`] writes it and [`check`] lists what the FIU would refuse, phrased for the
//! compliance officer who has to fix it.
//!
//! # What the document holds, and why
//! - **`report_code` STR, or SAR where the FIU says so** (`goaml_report_code` in the filing
//!   profile). The report's content is activity without transactions, so the document uses
//!   the schema's `activity` branch (report parties) rather than `transaction`, which the
//!   schema allows for either code. STR, the suspicious transaction report, is what most FIUs
//!   file on goAML and the default. The UAE FIU pairs its report types by that split
//!   (`report_type` in the XSD: AIF "without transaction" / AIFT "with transaction", HRCA
//!   "activity" / HRC "transaction", SAR "Suspicious Activity Report" / STR "Suspicious
//!   Transaction Report") and its samples file an STR with transactions and a SAR with an
//!   activity: a UAE filer sets `SAR`.
//! - **Corrections and continuing activity** keep the report code; the prior report's reference
//!   goes in `fiu_ref_number` and the `action` says what the report follows.
//! - **Subjects** are `person` / `entity` report parties (`t_person`, `t_entity`), not the
//!   `*_my_client` variants: those demand gender, nationality, residence, phones, identity
//!   documents and incorporation details the content does not carry. A party's `reason`
//!   (required) states the activity period and total; the report's `reason` is the narrative.
//! - **Accounts** are listed in the party's `comments`. A goAML `account` party needs the
//!   institution's `swift` or `institution_code`, which the filing profile does not hold yet.
//! - **Indicators** (`report_indicators`, at least one) are the FIU's own red-flag codes; there
//!   are 423 in this schema and they differ from FIU to FIU. Only activity categories
//!   ([`Classification`], FinCEN codes) with a UAE indicator meaning the same thing are mapped;
//!   the others add nothing, and a report with no indicator at all is a [`check`] problem.
//! - **Values** are trimmed and stripped of the control characters XML 1.0 cannot carry;
//!   country and currency codes are upper-cased; dates are the schema's `sql_date`
//!   (`YYYY-MM-DDT00:00:00`); amounts print as decimals (`28500.00`) in the local currency.
//!
//! # The checks
//! Whenever [`check`] finds nothing, [`document`] validates against the FIU's XSD (the service
//! runs xmllint on it as well). So the checks repeat the schema's limits on the values written
//! (lengths, the name pattern, the country and currency lists, the earliest date) and add the
//! FIU's rules the schema cannot express: a reporting person, a narrative, at least one
//! subject with a name, complete addresses, dates that make sense, the prior report of a
//! correction or continuing report, and at least one indicator.
use super::FilingType;
use super::content::{
    Address, Classification, FilingProfile, Problem, ProfileParty, ReportHeader, SarContent,
    Subject, SubjectKind,
};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use time::Date;

/// The writer every element goes through.
type Xml = Writer<Vec<u8>>;

/// What a failed write into the document buffer would be (it cannot fail).
const WRITE: &str = "writing to a Vec";

/// `schema_version`.
const SCHEMA_VERSION: &str = "5.0.2";
/// `submission_type` E: electronic.
const SUBMISSION_CODE: &str = "E";
/// `report_type` when the profile names none: STR (see the module docs).
const DEFAULT_REPORT_CODE: &str = "STR";
/// The report codes a suspicious-activity filing may carry.
const REPORT_CODES: [&str; 2] = ["STR", "SAR"];

/// The profile's report code, or the default.
fn report_code(p: &FilingProfile) -> String {
    field(&p.goaml_report_code)
        .map(|c| c.to_ascii_uppercase())
        .unwrap_or_else(|| DEFAULT_REPORT_CODE.to_string())
}
/// `contact_type` BU (business): the filer's and the contact office's addresses and phone, and
/// an entity subject's address.
const BUSINESS: &str = "BU";
/// `contact_type` PRIVT (private): an individual subject's address.
const PRIVATE: &str = "PRIVT";
/// `communication_type` L (landline): the contact office's phone, an office number.
const LANDLINE: &str = "L";

/// `comments_type` (the report's reason and action, a party's reason and comments).
const MAX_COMMENTS_CHARS: usize = 8_000;
/// `first_name` / `last_name` of `t_person` and of the reporting person.
const MAX_PERSON_NAME_CHARS: usize = 100;
/// `name` of `t_entity`.
const MAX_ENTITY_NAME_CHARS: usize = 255;
/// `address` (the street line) of `t_address`.
const MAX_STREET_CHARS: usize = 100;
/// `city` and `state` of `t_address`.
const MAX_CITY_STATE_CHARS: usize = 255;
/// `zip` of `t_address`.
const MAX_ZIP_CHARS: usize = 10;
/// `tph_number` of `t_phone`.
const MAX_PHONE_CHARS: usize = 50;
/// `tax_number` of `t_person` and `t_entity`.
const MAX_TAX_NUMBER_CHARS: usize = 100;
/// `rentity_branch`, `entity_reference` and `fiu_ref_number`.
const MAX_REFERENCE_CHARS: usize = 255;
/// `sql_date`'s lower bound.
const SQL_DATE_MIN: Date = time::macros::date!(1753 - 01 - 01);

/// Activity categories (FinCEN `SuspiciousActivityTypeID`, `SuspiciousActivitySubtypeID`) and
/// the UAE FIU indicator (`report_indicator_type`) that says the same thing.
const INDICATORS: &[(u32, u32, &str)] = &[
    // Structuring: alters or cancels transactions to avoid recordkeeping (111) or the CTR
    // (112), transactions below the recordkeeping (113) or CTR (114) threshold. ML002: "ML -
    // Customer structures transaction in an attempt to break up amounts to avoid reporting or
    // interrupt tracing of funds."
    (1, 111, "ML002"),
    (1, 112, "ML002"),
    (1, 113, "ML002"),
    (1, 114, "ML002"),
    // Money laundering, exchanges small bills for large bills or vice versa. FRESL: "Frequent
    // exchange of small denomination for larger denomination bills …"
    (8, 801, "FRESL"),
    // Money laundering, funnel account. FNACC: "A customer's A/C appears to function as a
    // funnel A/C …"
    (8, 824, "FNACC"),
];

/// `country_type` of the UAE FIU's schema, without its `-` (unknown), sorted.
const COUNTRIES: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AN", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX",
    "AZ", "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR",
    "BS", "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM",
    "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC",
    "EE", "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE",
    "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK",
    "HM", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE",
    "JM", "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KS", "KW", "KY", "KZ", "LA",
    "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG",
    "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY",
    "MZ", "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE",
    "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS",
    "RU", "RW", "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO",
    "SR", "SS", "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM",
    "TN", "TO", "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE",
    "VG", "VI", "VN", "VU", "WF", "WS", "XK", "YE", "YT", "ZA", "ZM", "ZW",
];

/// `currency_type` of the UAE FIU's schema, sorted (three-letter codes; the list also holds
/// `DIAMN`, which is no currency and is refused as a local currency).
const CURRENCIES: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "AOK", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD",
    "BDT", "BEC", "BEL", "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BUK",
    "BWP", "BYR", "BZD", "CAD", "CDF", "CDZ", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP",
    "COU", "CRC", "CUP", "CZK", "DIAMN", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR",
    "FJD", "FKP", "GBP", "GEL", "GHS", "GMD", "GNF", "GNS", "GTQ", "GYD", "HKD", "HNL", "HRK",
    "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS",
    "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LSM",
    "LTL", "LVL", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRO", "MUR", "MVR", "MWK",
    "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PES",
    "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR",
    "SDG", "SEK", "SGD", "SHP", "SLL", "SOS", "SRD", "SSP", "STD", "SYP", "SZL", "THB", "TJS",
    "TMT", "TND", "TOP", "TPE", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "USN", "USS",
    "UYP", "UYU", "UZS", "VEF", "VND", "VUV", "WST", "XAB", "XAF", "XAG", "XAU", "XBA", "XBB",
    "XBC", "XBD", "XBS", "XBT", "XCD", "XDH", "XDR", "XEC", "XES", "XET", "XFU", "XIT", "XLM",
    "XLN", "XMR", "XNO", "XOF", "XOM", "XOX", "XPD", "XPF", "XPT", "XRP", "XSA", "XTC", "XTG",
    "XTP", "XTS", "XXX", "XZC", "YER", "ZAR", "ZMK", "ZMW",
];

/// The goAML report document (`report_code` SAR: activity without transactions, see the module
/// docs) for the report, as UTF-8 XML. It validates against the UAE FIU's schema whenever
/// [`check`] finds no problem; otherwise it is a best effort with the faulty values as given.
pub fn document(h: &ReportHeader, c: &SarContent, p: &FilingProfile) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 4);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
        .expect(WRITE);
    node(&mut w, "report", |w| {
        leaf(w, "schema_version", SCHEMA_VERSION);
        leaf(
            w,
            "rentity_id",
            &field(&p.goaml_rentity_id).unwrap_or_default(),
        );
        if let Some(branch) = field(&p.goaml_rentity_branch) {
            leaf(w, "rentity_branch", &branch);
        }
        leaf(w, "submission_code", SUBMISSION_CODE);
        leaf(w, "report_code", &report_code(p));
        leaf(
            w,
            "entity_reference",
            &text(&h.reference).unwrap_or_default(),
        );
        if let Some(prior) = prior_reference(h) {
            leaf(w, "fiu_ref_number", &prior);
        }
        leaf(w, "submission_date", &sql_date(h.prepared_on));
        leaf(
            w,
            "currency_code_local",
            &code(&p.goaml_currency).unwrap_or_default(),
        );
        if let Some(name) = field(&p.contact_office.contact_name) {
            reporting_person(w, &name, &p.contact_office);
        }
        if !is_blank(&p.filer.address) {
            address(w, "location", BUSINESS, &p.filer.address);
        }
        if let Some(reason) = text(&c.narrative) {
            leaf(w, "reason", &reason);
        }
        leaf(w, "action", &action(h));
        node(w, "activity", |w| {
            node(w, "report_parties", |w| {
                let reason = party_reason(c, p);
                for s in &c.subjects {
                    report_party(w, s, &reason, p);
                }
            });
        });
        node(w, "report_indicators", |w| {
            for indicator in indicators(c) {
                leaf(w, "indicator", indicator);
            }
        });
    });
    String::from_utf8(w.into_inner()).expect("the writer only writes the UTF-8 text it is given")
}

/// Every goAML rule the XSD does not check, and every limit of the XSD on the values written,
/// as problems a compliance officer can act on (empty: the document validates and the FIU's
/// business rules known here are met).
pub fn check(h: &ReportHeader, c: &SarContent, p: &FilingProfile) -> Vec<Problem> {
    let mut out = Vec::new();
    check_profile(&mut out, p);
    check_header(&mut out, h);
    match text(&c.narrative) {
        None => out.push(Problem::rule(
            "narrative_required",
            "narrative",
            "Write the narrative: goAML files it as the report's reason for suspicion, which \
             the FIU requires.",
        )),
        Some(n) if n.chars().count() > MAX_COMMENTS_CHARS => out.push(Problem::rule(
            "narrative_too_long",
            "narrative",
            format!(
                "The narrative has {} characters; goAML's reason field holds at most \
                 {MAX_COMMENTS_CHARS}. Shorten it (keep the who, what, when, where and why).",
                n.chars().count()
            ),
        )),
        Some(_) => {}
    }
    if c.subjects.is_empty() {
        out.push(Problem::rule(
            "subject_required",
            "subjects",
            "Add the person or organisation the report is about: a goAML activity report needs \
             at least one report party.",
        ));
    }
    for (i, s) in c.subjects.iter().enumerate() {
        check_subject(&mut out, h, p, i, s);
    }
    check_activity(&mut out, h, c);
    out
}

/// The filing profile: reporting entity, local currency, reporting person, filer's address.
fn check_profile(out: &mut Vec<Problem>, p: &FilingProfile) {
    let report = report_code(p);
    if !REPORT_CODES.contains(&report.as_str()) {
        out.push(Problem::rule(
            "report_code_invalid",
            "profile.goaml_report_code",
            format!(
                "'{report}' is not a report code for a suspicious activity filing: set STR or \
                 SAR, as your FIU's goAML guide says."
            ),
        ));
    }
    match field(&p.goaml_rentity_id) {
        None => out.push(Problem::rule(
            "rentity_id_required",
            "profile.goaml_rentity_id",
            "Enter the reporting entity id the FIU assigned at goAML registration in the filing \
             profile.",
        )),
        Some(id) if !rentity_id_ok(&id) => out.push(Problem::rule(
            "rentity_id_invalid",
            "profile.goaml_rentity_id",
            format!(
                "'{id}' is not a goAML reporting entity id: it is a whole number from 1 to \
                 2147483647, digits only, as shown in the FIU's registration."
            ),
        )),
        Some(_) => {}
    }
    if let Some(branch) = field(&p.goaml_rentity_branch) {
        too_long(
            out,
            "profile.goaml_rentity_branch",
            &branch,
            MAX_REFERENCE_CHARS,
        );
    }
    match code(&p.goaml_currency) {
        None => out.push(Problem::rule(
            "currency_required",
            "profile.goaml_currency",
            "Enter the local currency in the filing profile as a three-letter ISO 4217 code \
             (AED for the UAE).",
        )),
        Some(cur) if !currency_ok(&cur) => out.push(Problem::rule(
            "currency_invalid",
            "profile.goaml_currency",
            format!(
                "'{cur}' is not a currency the FIU's goAML accepts: use the three-letter ISO \
                 4217 code (AED for the UAE)."
            ),
        )),
        Some(_) => {}
    }
    let office = &p.contact_office;
    let at = "profile.contact_office.contact_name";
    match field(&office.contact_name) {
        None => out.push(Problem::rule(
            "reporting_person_name_required",
            at,
            "Enter the contact office's contact person (first and last name) in the filing \
             profile: goAML reports name the reporting person, usually the MLRO.",
        )),
        Some(name) => {
            let (first, last) = split_name(&name);
            if last.is_empty() {
                out.push(Problem::rule(
                    "reporting_person_name_required",
                    at,
                    format!(
                        "goAML needs the reporting person's first and last name; '{name}' is \
                         one word. Enter both, e.g. 'Sara Khan'."
                    ),
                ));
            } else {
                name_problems(out, at, first, MAX_PERSON_NAME_CHARS);
                name_problems(out, at, last, MAX_PERSON_NAME_CHARS);
            }
        }
    }
    if let Some(phone) = field(&office.phone) {
        too_long(out, "profile.contact_office.phone", &phone, MAX_PHONE_CHARS);
    }
    address_problems(out, "profile.contact_office.address", &office.address);
    address_problems(out, "profile.filer.address", &p.filer.address);
}

/// The report's own reference, the prior report, the preparation date.
fn check_header(out: &mut Vec<Problem>, h: &ReportHeader) {
    match text(&h.reference) {
        None => out.push(Problem::rule(
            "reference_required",
            "reference",
            "The report has no reference; goAML files it as the entity reference the FIU quotes \
             back. Save the report to have one assigned.",
        )),
        Some(r) => too_long(out, "reference", &r, MAX_REFERENCE_CHARS),
    }
    if h.filing_type.needs_prior() {
        match field(&h.prior_report_id) {
            None => out.push(Problem::rule(
                "prior_report_required",
                "prior_report_id",
                "A correction or continuing-activity report names the report it follows: \
                 enter the prior report's FIU reference number.",
            )),
            Some(r) => too_long(out, "prior_report_id", &r, MAX_REFERENCE_CHARS),
        }
    }
    date_in_range(out, "prepared_on", h.prepared_on);
}

/// One subject: names, date of birth, TIN, address, accounts.
fn check_subject(
    out: &mut Vec<Problem>,
    h: &ReportHeader,
    p: &FilingProfile,
    i: usize,
    s: &Subject,
) {
    let at = |f: &str| format!("subjects[{i}].{f}");
    match s.kind {
        SubjectKind::Individual => {
            for (f, what, v) in [
                ("first_name", "first name", &s.first_name),
                ("last_name", "last name", &s.last_name),
            ] {
                match field(v) {
                    None => out.push(Problem::rule(
                        "subject_name_required",
                        at(f),
                        format!(
                            "goAML needs an individual subject's first and last name; enter \
                             the {what} (or make the subject an entity if it is an organisation)."
                        ),
                    )),
                    Some(name) => name_problems(out, &at(f), &name, MAX_PERSON_NAME_CHARS),
                }
            }
            if let Some(dob) = s.date_of_birth {
                if dob > h.prepared_on {
                    out.push(Problem::rule(
                        "date_of_birth_in_future",
                        at("date_of_birth"),
                        format!(
                            "The date of birth {} is after the report's date {}; correct it or \
                             leave it empty if unknown.",
                            ymd(dob),
                            ymd(h.prepared_on)
                        ),
                    ));
                } else {
                    date_in_range(out, &at("date_of_birth"), dob);
                }
            }
        }
        SubjectKind::Entity => match field(&s.entity_name) {
            None => out.push(Problem::rule(
                "subject_name_required",
                at("entity_name"),
                "goAML needs an entity subject's legal name; enter it (or make the subject an \
                 individual if it is a person).",
            )),
            Some(name) => name_problems(out, &at("entity_name"), &name, MAX_ENTITY_NAME_CHARS),
        },
    }
    if let Some(tin) = field(&s.tin) {
        too_long(out, &at("tin"), &tin, MAX_TAX_NUMBER_CHARS);
    }
    if let Some(a) = &s.address {
        address_problems(out, &at("address"), a);
    }
    if let Some(comment) = accounts_comment(s, p)
        && comment.chars().count() > MAX_COMMENTS_CHARS
    {
        out.push(Problem::rule(
            "too_long",
            at("accounts"),
            format!(
                "goAML holds the subject's accounts in one comment of at most \
                 {MAX_COMMENTS_CHARS} characters; list only the accounts involved in the \
                 activity."
            ),
        ));
    }
}

/// The activity: dates in order and not after the report, at least one indicator.
fn check_activity(out: &mut Vec<Problem>, h: &ReportHeader, c: &SarContent) {
    let a = &c.activity;
    if let (Some(from), Some(to)) = (a.from_date, a.to_date)
        && from > to
    {
        out.push(Problem::rule(
            "activity_dates_out_of_order",
            "activity.to_date",
            format!(
                "The activity ends ({}) before it starts ({}); correct one of the dates.",
                ymd(to),
                ymd(from)
            ),
        ));
    }
    for (at, date) in [
        ("activity.from_date", a.from_date),
        ("activity.to_date", a.to_date),
    ] {
        if let Some(d) = date
            && d > h.prepared_on
        {
            out.push(Problem::rule(
                "activity_date_in_future",
                at,
                format!(
                    "The activity date {} is after the report's date {}; a report covers \
                     activity that has happened.",
                    ymd(d),
                    ymd(h.prepared_on)
                ),
            ));
        }
    }
    if indicators(c).is_empty() {
        out.push(Problem::rule(
            "indicator_required",
            "activity.classifications",
            "goAML reports carry at least one of the FIU's red-flag indicators, and none of the \
             activity's categories maps to one. Add the category that describes the activity \
             (mapped today: structuring below a recordkeeping or CTR threshold or to avoid one, \
             exchanging small bills for large ones, funnel account).",
        ));
    }
}

/// Problems of an address written as a goAML `t_address`: a blank address is left out; any
/// other needs its street, city, state and country (the schema requires them).
fn address_problems(out: &mut Vec<Problem>, at: &str, a: &Address) {
    if is_blank(a) {
        return;
    }
    let parts = [
        ("line1", "street", &a.line1, MAX_STREET_CHARS, true),
        ("city", "city", &a.city, MAX_CITY_STATE_CHARS, true),
        (
            "state",
            "state (province or emirate)",
            &a.state,
            MAX_CITY_STATE_CHARS,
            true,
        ),
        (
            "postal_code",
            "postal code",
            &a.postal_code,
            MAX_ZIP_CHARS,
            false,
        ),
    ];
    for (f, what, v, max, required) in parts {
        match field(v) {
            None if required => out.push(Problem::rule(
                "address_incomplete",
                format!("{at}.{f}"),
                format!(
                    "goAML addresses need a street, a city, a state (province or emirate) and a \
                     country; enter the {what} or clear the address."
                ),
            )),
            None => {}
            Some(v) => too_long(out, &format!("{at}.{f}"), &v, max),
        }
    }
    match code(&a.country) {
        None => out.push(Problem::rule(
            "address_incomplete",
            format!("{at}.country"),
            "goAML addresses need a street, a city, a state (province or emirate) and a \
             country; enter the country (ISO 3166-1 two-letter code) or clear the address.",
        )),
        Some(cc) if !country_ok(&cc) => out.push(Problem::rule(
            "country_invalid",
            format!("{at}.country"),
            format!(
                "'{cc}' is not a country code the FIU's goAML accepts: use the ISO 3166-1 \
                 two-letter code (AE, US, GB …)."
            ),
        )),
        Some(_) => {}
    }
}

/// A name goAML will take: the characters of the schema's name pattern (`[a-zA-Z0-9 .'-]*`),
/// within its length.
fn name_problems(out: &mut Vec<Problem>, at: &str, name: &str, max: usize) {
    if let Some(bad) = name.chars().find(|c| !name_char(*c)) {
        out.push(Problem::rule(
            "name_characters",
            at,
            format!(
                "goAML names take only Latin letters, digits, spaces and . ' - ; {bad:?} in \
                 '{name}' is not accepted. Transliterate the name (José → Jose) and spell '&' \
                 as 'and'."
            ),
        ));
    }
    too_long(out, at, name, max);
}

/// A value longer than the schema allows.
fn too_long(out: &mut Vec<Problem>, at: &str, v: &str, max: usize) {
    let n = v.chars().count();
    if n > max {
        out.push(Problem::rule(
            "too_long",
            at,
            format!("goAML accepts at most {max} characters here; this has {n}. Shorten it."),
        ));
    }
}

/// A date before the schema's first date (1753-01-01, SQL Server's `datetime`).
fn date_in_range(out: &mut Vec<Problem>, at: &str, d: Date) {
    if d < SQL_DATE_MIN {
        out.push(Problem::rule(
            "date_out_of_range",
            at,
            format!(
                "goAML dates start on 1753-01-01; {} is earlier. Correct the date.",
                ymd(d)
            ),
        ));
    }
}

/// Whether a character may appear in a goAML name.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '\'' | '-')
}

/// Whether the text is an `xs:int` of at least 1 written in digits.
fn rentity_id_ok(id: &str) -> bool {
    id.bytes().all(|b| b.is_ascii_digit()) && id.parse::<i32>().is_ok_and(|n| n >= 1)
}

/// Whether the (upper-cased) code is a three-letter currency of the FIU's list.
fn currency_ok(cur: &str) -> bool {
    cur.len() == 3 && CURRENCIES.binary_search(&cur).is_ok()
}

/// Whether the (upper-cased) code is a country of the FIU's list.
fn country_ok(cc: &str) -> bool {
    COUNTRIES.binary_search(&cc).is_ok()
}

/// Whether a character can appear in an XML 1.0 document (tab, line feed, carriage return,
/// and everything from space up except U+FFFE and U+FFFF).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && !matches!(c, '\u{FFFE}' | '\u{FFFF}'))
}

/// A text value as written: without the characters XML cannot carry, trimmed; `None` when
/// nothing is left.
fn text(v: &str) -> Option<String> {
    let clean: String = v
        .chars()
        .filter(|c| xml_char(*c) && !super::content::is_invisible(*c))
        .collect();
    let clean = clean.trim();
    (!clean.is_empty()).then(|| clean.to_string())
}

/// An optional text value as written.
fn field(v: &Option<String>) -> Option<String> {
    v.as_deref().and_then(text)
}

/// A code (country, currency) as written: trimmed and upper-cased.
fn code(v: &Option<String>) -> Option<String> {
    field(v).map(|s| s.to_ascii_uppercase())
}

/// Whether an address has nothing in it (it is then left out of the document).
fn is_blank(a: &Address) -> bool {
    [&a.line1, &a.city, &a.state, &a.postal_code, &a.country]
        .into_iter()
        .all(|v| field(v).is_none())
}

/// A contact name as goAML's first and last name: the last word is the last name ("Mary Ann
/// Smith" → "Mary Ann", "Smith"); one word is a first name only.
fn split_name(name: &str) -> (&str, &str) {
    match name.rsplit_once(char::is_whitespace) {
        Some((first, last)) => (first.trim_end(), last),
        None => (name, ""),
    }
}

/// `YYYY-MM-DD`.
fn ymd(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The schema's `sql_date` (an `xs:dateTime`) for a calendar date: midnight.
fn sql_date(d: Date) -> String {
    format!("{}T00:00:00", ymd(d))
}

/// The FIU reference of the report a correction or continuing report follows.
fn prior_reference(h: &ReportHeader) -> Option<String> {
    if h.filing_type.needs_prior() {
        field(&h.prior_report_id)
    } else {
        None
    }
}

/// What the filer did (`action`).
fn action(h: &ReportHeader) -> String {
    let prior = prior_reference(h).map_or_else(
        || "an earlier report".to_string(),
        |r| format!("report {r}"),
    );
    match h.filing_type {
        FilingType::Initial => {
            "Report filed with the FIU; the customer relationship is under review.".to_string()
        }
        FilingType::CorrectPrior => format!(
            "Corrected report filed with the FIU, replacing {prior}; the customer relationship \
             is under review."
        ),
        FilingType::ContinuingActivity => format!(
            "Continuing-activity report filed with the FIU, following {prior}; the customer \
             relationship remains under review."
        ),
    }
}

/// A report party's `reason` (required): its part in the activity, with the period and total.
fn party_reason(c: &SarContent, p: &FilingProfile) -> String {
    let a = &c.activity;
    let mut s = String::from("Subject of the suspicious activity reported");
    match (a.from_date, a.to_date) {
        (Some(from), Some(to)) if from == to => s.push_str(&format!(", on {}", ymd(from))),
        (Some(from), Some(to)) => s.push_str(&format!(", from {} to {}", ymd(from), ymd(to))),
        (Some(from), None) => s.push_str(&format!(", from {}", ymd(from))),
        (None, Some(to)) => s.push_str(&format!(", until {}", ymd(to))),
        (None, None) => {}
    }
    if let Some(total) = a.total_amount {
        s.push_str(&format!("; total amount involved {total}"));
        if let Some(cur) = code(&p.goaml_currency) {
            s.push(' ');
            s.push_str(&cur);
        }
    }
    s.push_str("; details in the report reason.");
    s
}

/// A party's `comments`: the subject's accounts at the filing institution.
fn accounts_comment(s: &Subject, p: &FilingProfile) -> Option<String> {
    let accounts: Vec<String> = s.accounts.iter().filter_map(|a| text(a.as_str())).collect();
    if accounts.is_empty() {
        return None;
    }
    let at = field(&p.filer.name).unwrap_or_else(|| "the reporting entity".to_string());
    Some(format!("Accounts held at {at}: {}.", accounts.join(", ")))
}

/// The UAE FIU indicators of the activity's categories, each once, in the categories' order.
fn indicators(c: &SarContent) -> Vec<&'static str> {
    let mut out = Vec::new();
    for cl in &c.activity.classifications {
        if let Some(i) = indicator(*cl)
            && !out.contains(&i)
        {
            out.push(i);
        }
    }
    out
}

/// The UAE FIU indicator of one category, if one means the same thing.
fn indicator(c: Classification) -> Option<&'static str> {
    INDICATORS
        .iter()
        .find(|(t, s, _)| *t == c.type_id && *s == c.subtype_id)
        .map(|(_, _, i)| *i)
}

/// `<name>value</name>`, the value escaped.
fn leaf(w: &mut Xml, name: &str, value: &str) {
    w.create_element(name)
        .write_text_content(BytesText::new(value))
        .expect(WRITE);
}

/// `<name>…</name>` around what `inner` writes.
fn node(w: &mut Xml, name: &str, inner: impl FnOnce(&mut Xml)) {
    w.create_element(name)
        .write_inner_content(|w| {
            inner(w);
            Ok(())
        })
        .expect(WRITE);
}

/// A `t_address` element (`location`, or `address` inside `addresses`); parts that are missing
/// are left out (the checks report them).
fn address(w: &mut Xml, element: &str, kind: &str, a: &Address) {
    node(w, element, |w| {
        leaf(w, "address_type", kind);
        if let Some(v) = field(&a.line1) {
            leaf(w, "address", &v);
        }
        if let Some(v) = field(&a.city) {
            leaf(w, "city", &v);
        }
        if let Some(v) = field(&a.postal_code) {
            leaf(w, "zip", &v);
        }
        if let Some(v) = code(&a.country) {
            leaf(w, "country_code", &v);
        }
        if let Some(v) = field(&a.state) {
            leaf(w, "state", &v);
        }
    });
}

/// `addresses` with the one address, unless it is blank.
fn addresses(w: &mut Xml, kind: &str, a: Option<&Address>) {
    if let Some(a) = a
        && !is_blank(a)
    {
        node(w, "addresses", |w| address(w, "address", kind, a));
    }
}

/// `reporting_person` (`t_person_registration_in_report`) from the contact office.
fn reporting_person(w: &mut Xml, name: &str, office: &ProfileParty) {
    let (first, last) = split_name(name);
    node(w, "reporting_person", |w| {
        leaf(w, "first_name", first);
        leaf(w, "last_name", last);
        if let Some(phone) = field(&office.phone) {
            node(w, "phones", |w| {
                node(w, "phone", |w| {
                    leaf(w, "tph_contact_type", BUSINESS);
                    leaf(w, "tph_communication_type", LANDLINE);
                    leaf(w, "tph_number", &phone);
                });
            });
        }
        addresses(w, BUSINESS, Some(&office.address));
    });
}

/// One `report_party`: the subject as a `person` or an `entity`, why it is reported, and its
/// accounts.
fn report_party(w: &mut Xml, s: &Subject, reason: &str, p: &FilingProfile) {
    node(w, "report_party", |w| {
        match s.kind {
            SubjectKind::Individual => node(w, "person", |w| {
                leaf(w, "first_name", &field(&s.first_name).unwrap_or_default());
                leaf(w, "last_name", &field(&s.last_name).unwrap_or_default());
                if let Some(dob) = s.date_of_birth {
                    leaf(w, "birthdate", &sql_date(dob));
                }
                addresses(w, PRIVATE, s.address.as_ref());
                if let Some(tin) = field(&s.tin) {
                    leaf(w, "tax_number", &tin);
                }
            }),
            SubjectKind::Entity => node(w, "entity", |w| {
                leaf(w, "name", &field(&s.entity_name).unwrap_or_default());
                addresses(w, BUSINESS, s.address.as_ref());
                if let Some(tin) = field(&s.tin) {
                    leaf(w, "tax_number", &tin);
                }
            }),
        }
        leaf(w, "reason", reason);
        if let Some(accounts) = accounts_comment(s, p) {
            leaf(w, "comments", &accounts);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sar::content::{Activity, Amount};
    use quick_xml::Reader;
    use time::macros::date;

    /// What `document(complete())` writes; the same bytes are in
    /// `/tmp/sar-research/goaml_complete.xml`, validated with xmllint against the FIU's XSD.
    const COMPLETE_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<report>
    <schema_version>5.0.2</schema_version>
    <rentity_id>101</rentity_id>
    <rentity_branch>DXB-MAIN</rentity_branch>
    <submission_code>E</submission_code>
    <report_code>STR</report_code>
    <entity_reference>SAR-2026-000007</entity_reference>
    <submission_date>2026-03-20T00:00:00</submission_date>
    <currency_code_local>AED</currency_code_local>
    <reporting_person>
        <first_name>Sara</first_name>
        <last_name>Khan</last_name>
        <phones>
            <phone>
                <tph_contact_type>BU</tph_contact_type>
                <tph_communication_type>L</tph_communication_type>
                <tph_number>97144441234</tph_number>
            </phone>
        </phones>
        <addresses>
            <address>
                <address_type>BU</address_type>
                <address>Office 501, Compliance Tower</address>
                <city>Dubai</city>
                <country_code>AE</country_code>
                <state>Dubai</state>
            </address>
        </addresses>
    </reporting_person>
    <location>
        <address_type>BU</address_type>
        <address>Tower 2, Sheikh Zayed Road</address>
        <city>Dubai</city>
        <country_code>AE</country_code>
        <state>Dubai</state>
    </location>
    <reason>Between 2 and 4 March 2026 the customer made three cash deposits of AED 9,500.00 each (AED 28,500.00 in total) into account 1001234567 at the Deira branch, each just below the branch&apos;s AED 10,000 cash reporting threshold. The customer&apos;s declared income does not explain the cash.</reason>
    <action>Report filed with the FIU; the customer relationship is under review.</action>
    <activity>
        <report_parties>
            <report_party>
                <person>
                    <first_name>Layla</first_name>
                    <last_name>Hassan</last_name>
                    <birthdate>1989-07-02T00:00:00</birthdate>
                    <addresses>
                        <address>
                            <address_type>PRIVT</address_type>
                            <address>Villa 12, Al Wasl Road</address>
                            <city>Dubai</city>
                            <zip>12345</zip>
                            <country_code>AE</country_code>
                            <state>Dubai</state>
                        </address>
                    </addresses>
                    <tax_number>784198912345671</tax_number>
                </person>
                <reason>Subject of the suspicious activity reported, from 2026-03-02 to 2026-03-04; total amount involved 28500.00 AED; details in the report reason.</reason>
                <comments>Accounts held at Gulf Coast Bank PJSC: 1001234567.</comments>
            </report_party>
        </report_parties>
    </activity>
    <report_indicators>
        <indicator>ML002</indicator>
    </report_indicators>
</report>"#;

    fn header() -> ReportHeader {
        ReportHeader {
            reference: "SAR-2026-000007".into(),
            filing_type: FilingType::Initial,
            prior_report_id: None,
            prepared_on: date!(2026 - 03 - 20),
        }
    }

    fn dubai(line1: &str) -> Address {
        Address {
            line1: Some(line1.into()),
            city: Some("Dubai".into()),
            state: Some("Dubai".into()),
            postal_code: None,
            country: Some("AE".into()),
        }
    }

    #[test]
    fn the_report_code_is_str_unless_the_profile_says_sar() {
        let h = header();
        let c = content();
        let mut p = profile();
        p.goaml_report_code = Some(" sar ".into());
        clean(problems(&h, &c, &p));
        assert_eq!(
            value(&document(&h, &c, &p), "report/report_code").unwrap(),
            "SAR"
        );
        p.goaml_report_code = Some("CTR".into());
        only(
            problems(&h, &c, &p),
            "report_code_invalid",
            "profile.goaml_report_code",
        );
    }

    fn profile() -> FilingProfile {
        FilingProfile {
            filer: ProfileParty {
                name: Some("Gulf Coast Bank PJSC".into()),
                address: dubai("Tower 2, Sheikh Zayed Road"),
                phone: Some("97143000000".into()),
                ..ProfileParty::default()
            },
            contact_office: ProfileParty {
                name: Some("Financial Crime Compliance".into()),
                address: dubai("Office 501, Compliance Tower"),
                phone: Some("97144441234".into()),
                contact_name: Some("Sara Khan".into()),
                ..ProfileParty::default()
            },
            goaml_rentity_id: Some("101".into()),
            goaml_rentity_branch: Some("DXB-MAIN".into()),
            goaml_currency: Some("AED".into()),
            ..FilingProfile::default()
        }
    }

    fn layla() -> Subject {
        Subject {
            kind: SubjectKind::Individual,
            first_name: Some("Layla".into()),
            last_name: Some("Hassan".into()),
            entity_name: None,
            date_of_birth: Some(date!(1989 - 07 - 02)),
            tin: Some("784198912345671".into()),
            address: Some(Address {
                postal_code: Some("12345".into()),
                ..dubai("Villa 12, Al Wasl Road")
            }),
            accounts: vec!["1001234567".into()],
        }
    }

    /// Structuring: three cash deposits of AED 9,500.00 under a 10,000 threshold.
    fn content() -> SarContent {
        SarContent {
            subjects: vec![layla()],
            suspect_identified: true,
            activity: Activity {
                from_date: Some(date!(2026 - 03 - 02)),
                to_date: Some(date!(2026 - 03 - 04)),
                total_amount: Some(Amount(2_850_000)),
                classifications: vec![Classification {
                    type_id: 1,
                    subtype_id: 114,
                }],
            },
            narrative: "Between 2 and 4 March 2026 the customer made three cash deposits of AED \
                        9,500.00 each (AED 28,500.00 in total) into account 1001234567 at the \
                        Deira branch, each just below the branch's AED 10,000 cash reporting \
                        threshold. The customer's declared income does not explain the cash."
                .into(),
        }
    }

    fn complete() -> (ReportHeader, SarContent, FilingProfile) {
        (header(), content(), profile())
    }

    /// (rule, location) of every problem.
    fn problems(h: &ReportHeader, c: &SarContent, p: &FilingProfile) -> Vec<(String, String)> {
        check(h, c, p)
            .into_iter()
            .map(|p| {
                assert_eq!(p.source, "business_rule");
                assert!(!p.message.is_empty());
                (p.rule, p.location)
            })
            .collect()
    }

    fn has(found: &[(String, String)], rule: &str, location: &str) -> bool {
        found.iter().any(|(r, l)| r == rule && l == location)
    }

    /// Asserts no problem.
    fn clean(found: Vec<(String, String)>) {
        assert!(found.is_empty(), "{found:?}");
    }

    /// Asserts exactly one problem, with this rule and location.
    fn only(found: Vec<(String, String)>, rule: &str, location: &str) {
        assert_eq!(found, vec![(rule.to_string(), location.to_string())]);
    }

    /// Every leaf of the document as (path, text), read back with quick-xml.
    fn leaves(xml: &str) -> Vec<(String, String)> {
        let mut r = Reader::from_str(xml);
        let mut path: Vec<String> = Vec::new();
        let mut text = String::new();
        let mut out = Vec::new();
        let mut leaf = false;
        loop {
            match r.read_event().expect("well-formed XML") {
                Event::Start(s) => {
                    path.push(s.name().0.to_string());
                    text.clear();
                    leaf = true;
                }
                Event::End(_) => {
                    if leaf {
                        out.push((path.join("/"), std::mem::take(&mut text)));
                    }
                    leaf = false;
                    path.pop();
                }
                Event::Text(t) => text.push_str(&t.xml10_content()),
                Event::GeneralRef(g) => {
                    let name: &str = &g;
                    match g.resolve_char_ref().unwrap() {
                        Some(c) => text.push(c),
                        None => text
                            .push_str(quick_xml::escape::resolve_predefined_entity(name).unwrap()),
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        out
    }

    fn value(xml: &str, path: &str) -> Option<String> {
        leaves(xml)
            .into_iter()
            .find(|(p, _)| p == path)
            .map(|(_, v)| v)
    }

    #[test]
    fn a_complete_structuring_report_passes_and_is_written_as_traced() {
        let (h, c, p) = complete();
        let found = check(&h, &c, &p);
        assert!(found.is_empty(), "{found:?}");
        let xml = document(&h, &c, &p);
        assert_eq!(xml, COMPLETE_XML);
        let at = |path: &str| value(&xml, &format!("report/{path}")).unwrap();
        assert_eq!(at("schema_version"), "5.0.2");
        assert_eq!(at("rentity_id"), "101");
        assert_eq!(at("rentity_branch"), "DXB-MAIN");
        assert_eq!(at("submission_code"), "E");
        assert_eq!(at("report_code"), "STR");
        assert_eq!(at("entity_reference"), "SAR-2026-000007");
        assert_eq!(at("submission_date"), "2026-03-20T00:00:00");
        assert_eq!(at("currency_code_local"), "AED");
        assert_eq!(at("reporting_person/first_name"), "Sara");
        assert_eq!(at("reporting_person/last_name"), "Khan");
        assert_eq!(
            at("reporting_person/phones/phone/tph_number"),
            "97144441234"
        );
        assert_eq!(at("location/address"), "Tower 2, Sheikh Zayed Road");
        assert_eq!(at("reason"), c.narrative);
        let party = "activity/report_parties/report_party";
        assert_eq!(at(&format!("{party}/person/first_name")), "Layla");
        assert_eq!(at(&format!("{party}/person/last_name")), "Hassan");
        assert_eq!(
            at(&format!("{party}/person/birthdate")),
            "1989-07-02T00:00:00"
        );
        assert_eq!(at(&format!("{party}/person/tax_number")), "784198912345671");
        assert_eq!(
            at(&format!("{party}/person/addresses/address/address_type")),
            "PRIVT"
        );
        assert_eq!(
            at(&format!("{party}/person/addresses/address/zip")),
            "12345"
        );
        assert!(at(&format!("{party}/reason")).contains("from 2026-03-02 to 2026-03-04"));
        assert!(at(&format!("{party}/reason")).contains("28500.00 AED"));
        assert_eq!(
            at(&format!("{party}/comments")),
            "Accounts held at Gulf Coast Bank PJSC: 1001234567."
        );
        assert_eq!(at("report_indicators/indicator"), "ML002");
        assert!(!xml.contains("fiu_ref_number"));
    }

    #[test]
    fn the_code_lists_are_sorted_and_the_indicators_are_distinct_codes() {
        assert!(COUNTRIES.windows(2).all(|w| w[0] < w[1]));
        assert!(CURRENCIES.windows(2).all(|w| w[0] < w[1]));
        assert!(country_ok("AE") && country_ok("XK") && !country_ok("-") && !country_ok("UK"));
        assert!(currency_ok("AED") && currency_ok("USD") && !currency_ok("DIAMN"));
        for (_, _, i) in INDICATORS {
            assert_eq!(i.len(), 5);
        }
    }

    #[test]
    fn the_reporting_entity_id_is_required_and_a_positive_int() {
        let (h, c, mut p) = complete();
        p.goaml_rentity_id = Some("  ".into());
        only(
            problems(&h, &c, &p),
            "rentity_id_required",
            "profile.goaml_rentity_id",
        );
        for bad in ["DXB-101", "0", "-5", "+7", "2147483648", "1 01"] {
            p.goaml_rentity_id = Some(bad.into());
            only(
                problems(&h, &c, &p),
                "rentity_id_invalid",
                "profile.goaml_rentity_id",
            );
        }
        p.goaml_rentity_id = Some(" 2147483647 ".into());
        clean(problems(&h, &c, &p));
        assert!(document(&h, &c, &p).contains("<rentity_id>2147483647</rentity_id>"));
    }

    #[test]
    fn the_local_currency_is_required_and_in_the_fius_list() {
        let (h, c, mut p) = complete();
        p.goaml_currency = None;
        only(
            problems(&h, &c, &p),
            "currency_required",
            "profile.goaml_currency",
        );
        for bad in ["US", "DOLLAR", "ZZZ", "DIAMN", "US$"] {
            p.goaml_currency = Some(bad.into());
            only(
                problems(&h, &c, &p),
                "currency_invalid",
                "profile.goaml_currency",
            );
        }
        p.goaml_currency = Some(" usd ".into());
        clean(problems(&h, &c, &p));
        assert!(document(&h, &c, &p).contains("<currency_code_local>USD</currency_code_local>"));
    }

    #[test]
    fn the_reporting_person_needs_a_first_and_last_name_goaml_can_spell() {
        let at = "profile.contact_office.contact_name";
        let (h, c, mut p) = complete();
        p.contact_office.contact_name = None;
        only(problems(&h, &c, &p), "reporting_person_name_required", at);
        assert!(!document(&h, &c, &p).contains("reporting_person"));
        p.contact_office.contact_name = Some(" Sara ".into());
        only(problems(&h, &c, &p), "reporting_person_name_required", at);
        p.contact_office.contact_name = Some("Zoë Khan".into());
        only(problems(&h, &c, &p), "name_characters", at);
        p.contact_office.contact_name = Some("Mary Ann  O'Neil-Smith".into());
        clean(problems(&h, &c, &p));
        let xml = document(&h, &c, &p);
        assert_eq!(
            value(&xml, "report/reporting_person/first_name").unwrap(),
            "Mary Ann"
        );
        assert_eq!(
            value(&xml, "report/reporting_person/last_name").unwrap(),
            "O'Neil-Smith"
        );
        p.contact_office.phone = Some("9".repeat(51));
        only(
            problems(&h, &c, &p),
            "too_long",
            "profile.contact_office.phone",
        );
    }

    #[test]
    fn the_narrative_is_required_and_fits_the_reason_field() {
        let (h, mut c, p) = complete();
        c.narrative = " \n ".into();
        only(problems(&h, &c, &p), "narrative_required", "narrative");
        c.narrative = "x".repeat(MAX_COMMENTS_CHARS + 1);
        only(problems(&h, &c, &p), "narrative_too_long", "narrative");
        c.narrative = format!("  {}  ", "é".repeat(MAX_COMMENTS_CHARS));
        clean(problems(&h, &c, &p));
    }

    #[test]
    fn a_report_needs_a_subject() {
        let (h, mut c, p) = complete();
        c.subjects.clear();
        only(problems(&h, &c, &p), "subject_required", "subjects");
    }

    #[test]
    fn subjects_need_names_goaml_can_spell() {
        let (h, mut c, p) = complete();
        c.subjects[0].last_name = Some(" ".into());
        only(
            problems(&h, &c, &p),
            "subject_name_required",
            "subjects[0].last_name",
        );
        c.subjects[0].last_name = Some("Hassan".into());
        c.subjects[0].first_name = None;
        only(
            problems(&h, &c, &p),
            "subject_name_required",
            "subjects[0].first_name",
        );
        c.subjects[0].first_name = Some("Layla".into());
        c.subjects.push(Subject {
            kind: SubjectKind::Entity,
            first_name: Some("ignored".into()),
            last_name: None,
            entity_name: None,
            date_of_birth: None,
            tin: None,
            address: None,
            accounts: vec![],
        });
        only(
            problems(&h, &c, &p),
            "subject_name_required",
            "subjects[1].entity_name",
        );
        c.subjects[1].entity_name = Some("Smith & Sons, LLC".into());
        only(
            problems(&h, &c, &p),
            "name_characters",
            "subjects[1].entity_name",
        );
        c.subjects[1].entity_name = Some("x".repeat(MAX_ENTITY_NAME_CHARS + 1));
        only(problems(&h, &c, &p), "too_long", "subjects[1].entity_name");
        c.subjects[0].first_name = Some("Layla\tMay".into());
        c.subjects[1].entity_name = Some("Smith and Sons LLC".into());
        only(
            problems(&h, &c, &p),
            "name_characters",
            "subjects[0].first_name",
        );
    }

    #[test]
    fn entity_subjects_are_entity_parties_with_a_business_address() {
        let (h, mut c, p) = complete();
        c.subjects = vec![Subject {
            kind: SubjectKind::Entity,
            first_name: None,
            last_name: None,
            entity_name: Some(" Gulf Trading FZE ".into()),
            date_of_birth: None,
            tin: Some("100123456700003".into()),
            address: Some(dubai("Unit 4, JAFZA")),
            accounts: vec![" ".into()],
        }];
        clean(problems(&h, &c, &p));
        let xml = document(&h, &c, &p);
        let party = "report/activity/report_parties/report_party";
        assert_eq!(
            value(&xml, &format!("{party}/entity/name")).unwrap(),
            "Gulf Trading FZE"
        );
        assert_eq!(
            value(
                &xml,
                &format!("{party}/entity/addresses/address/address_type")
            )
            .unwrap(),
            "BU"
        );
        assert_eq!(
            value(&xml, &format!("{party}/entity/tax_number")).unwrap(),
            "100123456700003"
        );
        assert!(!xml.contains("<person>") && !xml.contains("<comments>"));
    }

    #[test]
    fn country_codes_are_two_letters_of_the_fius_list() {
        let (h, mut c, mut p) = complete();
        let addr = c.subjects[0].address.as_mut().unwrap();
        addr.country = Some("UAE".into());
        only(
            problems(&h, &c, &p),
            "country_invalid",
            "subjects[0].address.country",
        );
        c.subjects[0].address.as_mut().unwrap().country = Some(" ae ".into());
        p.filer.address.country = Some("-".into());
        only(
            problems(&h, &c, &p),
            "country_invalid",
            "profile.filer.address.country",
        );
        p.filer.address.country = Some("AE".into());
        p.contact_office.address.country = Some("UK".into());
        only(
            problems(&h, &c, &p),
            "country_invalid",
            "profile.contact_office.address.country",
        );
        p.contact_office.address.country = Some("GB".into());
        clean(problems(&h, &c, &p));
        assert!(document(&h, &c, &p).contains("<country_code>AE</country_code>"));
    }

    #[test]
    fn addresses_are_complete_or_left_out() {
        let (h, mut c, mut p) = complete();
        c.subjects[0].address.as_mut().unwrap().state = None;
        only(
            problems(&h, &c, &p),
            "address_incomplete",
            "subjects[0].address.state",
        );
        c.subjects[0].address.as_mut().unwrap().country = None;
        let found = problems(&h, &c, &p);
        assert!(has(
            &found,
            "address_incomplete",
            "subjects[0].address.country"
        ));
        assert_eq!(found.len(), 2);
        c.subjects[0].address = Some(Address {
            line1: Some(" ".into()),
            ..Address::default()
        });
        p.filer.address = Address::default();
        clean(problems(&h, &c, &p));
        let xml = document(&h, &c, &p);
        assert!(!xml.contains("<location>") && !xml.contains("<address_type>PRIVT"));
        p.contact_office.address.line1 = None;
        only(
            problems(&h, &c, &p),
            "address_incomplete",
            "profile.contact_office.address.line1",
        );
        p.contact_office.address.line1 = Some("x".repeat(MAX_STREET_CHARS + 1));
        only(
            problems(&h, &c, &p),
            "too_long",
            "profile.contact_office.address.line1",
        );
        p.contact_office.address.line1 = Some("Office 501".into());
        p.contact_office.address.postal_code = Some("12345678901".into());
        only(
            problems(&h, &c, &p),
            "too_long",
            "profile.contact_office.address.postal_code",
        );
    }

    #[test]
    fn dates_of_birth_are_not_in_the_future_nor_before_1753() {
        let (h, mut c, p) = complete();
        c.subjects[0].date_of_birth = Some(date!(2026 - 03 - 21));
        only(
            problems(&h, &c, &p),
            "date_of_birth_in_future",
            "subjects[0].date_of_birth",
        );
        c.subjects[0].date_of_birth = Some(date!(1752 - 12 - 31));
        only(
            problems(&h, &c, &p),
            "date_out_of_range",
            "subjects[0].date_of_birth",
        );
        c.subjects[0].date_of_birth = Some(date!(2026 - 03 - 20));
        clean(problems(&h, &c, &p));
    }

    #[test]
    fn activity_dates_are_in_order_and_not_after_the_report() {
        let (h, mut c, p) = complete();
        c.activity.from_date = Some(date!(2026 - 03 - 05));
        only(
            problems(&h, &c, &p),
            "activity_dates_out_of_order",
            "activity.to_date",
        );
        c.activity.from_date = Some(date!(2026 - 03 - 02));
        c.activity.to_date = Some(date!(2026 - 03 - 21));
        only(
            problems(&h, &c, &p),
            "activity_date_in_future",
            "activity.to_date",
        );
        c.activity.to_date = None;
        clean(problems(&h, &c, &p));
        let xml = document(&h, &c, &p);
        let reason = value(&xml, "report/activity/report_parties/report_party/reason").unwrap();
        assert!(reason.contains(", from 2026-03-02;"), "{reason}");
    }

    #[test]
    fn corrections_and_continuing_reports_name_the_prior_report() {
        let (mut h, c, p) = complete();
        for t in [FilingType::CorrectPrior, FilingType::ContinuingActivity] {
            h.filing_type = t;
            h.prior_report_id = None;
            only(
                problems(&h, &c, &p),
                "prior_report_required",
                "prior_report_id",
            );
            h.prior_report_id = Some(" FIU-2026-000123 ".into());
            clean(problems(&h, &c, &p));
            let xml = document(&h, &c, &p);
            assert_eq!(
                value(&xml, "report/fiu_ref_number").unwrap(),
                "FIU-2026-000123"
            );
            assert!(
                value(&xml, "report/action")
                    .unwrap()
                    .contains("report FIU-2026-000123")
            );
            assert_eq!(value(&xml, "report/report_code").unwrap(), "STR");
            h.prior_report_id = Some("x".repeat(MAX_REFERENCE_CHARS + 1));
            only(problems(&h, &c, &p), "too_long", "prior_report_id");
        }
        // An initial report does not carry a prior reference even if one is set.
        h.filing_type = FilingType::Initial;
        h.prior_report_id = Some("FIU-2026-000123".into());
        assert!(!document(&h, &c, &p).contains("fiu_ref_number"));
    }

    #[test]
    fn the_report_needs_its_reference_and_a_date_goaml_accepts() {
        let (mut h, c, p) = complete();
        h.reference = " ".into();
        only(problems(&h, &c, &p), "reference_required", "reference");
        h.reference = "R".repeat(MAX_REFERENCE_CHARS + 1);
        only(problems(&h, &c, &p), "too_long", "reference");
        h.reference = "SAR-1".into();
        h.prepared_on = date!(1700 - 01 - 01);
        let found = problems(&h, &c, &p);
        assert!(has(&found, "date_out_of_range", "prepared_on"));
    }

    #[test]
    fn indicators_come_from_mapped_categories_and_at_least_one_is_needed() {
        let (h, mut c, p) = complete();
        c.activity.classifications.clear();
        only(
            problems(&h, &c, &p),
            "indicator_required",
            "activity.classifications",
        );
        c.activity.classifications = vec![Classification {
            type_id: 3,
            subtype_id: 301,
        }];
        only(
            problems(&h, &c, &p),
            "indicator_required",
            "activity.classifications",
        );
        let cl = |type_id, subtype_id| Classification {
            type_id,
            subtype_id,
        };
        c.activity.classifications = vec![cl(3, 301), cl(1, 113), cl(8, 824), cl(1, 114)];
        clean(problems(&h, &c, &p));
        assert_eq!(indicators(&c), vec!["ML002", "FNACC"]);
        let xml = document(&h, &c, &p);
        assert!(xml.contains("<indicator>ML002</indicator>\n        <indicator>FNACC</indicator>"));
    }

    #[test]
    fn long_values_are_reported_where_they_are() {
        let (h, mut c, mut p) = complete();
        c.subjects[0].tin = Some("1".repeat(MAX_TAX_NUMBER_CHARS + 1));
        only(problems(&h, &c, &p), "too_long", "subjects[0].tin");
        c.subjects[0].tin = None;
        c.subjects[0].accounts = vec!["1".repeat(100); 100];
        only(problems(&h, &c, &p), "too_long", "subjects[0].accounts");
        c.subjects[0].accounts.clear();
        p.goaml_rentity_branch = Some("B".repeat(MAX_REFERENCE_CHARS + 1));
        only(
            problems(&h, &c, &p),
            "too_long",
            "profile.goaml_rentity_branch",
        );
    }

    #[test]
    fn text_is_escaped_and_stripped_of_what_xml_cannot_carry() {
        let (h, mut c, mut p) = complete();
        c.narrative = " Cash & cheques <under> \"10,000\"\u{1}\u{FFFF}\u{FEFF} ".into();
        p.filer.name = Some("A&B Bank".into());
        clean(problems(&h, &c, &p));
        let xml = document(&h, &c, &p);
        assert!(
            xml.contains("<reason>Cash &amp; cheques &lt;under&gt; &quot;10,000&quot;</reason>")
        );
        assert!(xml.contains("Accounts held at A&amp;B Bank: 1001234567."));
        assert_eq!(
            value(&xml, "report/reason").unwrap(),
            "Cash & cheques <under> \"10,000\""
        );
        // An address line of control characters only is no address line.
        c.subjects[0].address.as_mut().unwrap().line1 = Some("\u{2}\u{3}".into());
        only(
            problems(&h, &c, &p),
            "address_incomplete",
            "subjects[0].address.line1",
        );
    }

    #[test]
    fn an_empty_report_still_gets_a_document_and_every_problem() {
        let h = ReportHeader {
            reference: String::new(),
            filing_type: FilingType::ContinuingActivity,
            prior_report_id: None,
            prepared_on: date!(2026 - 03 - 20),
        };
        let c = SarContent::default();
        let p = FilingProfile::default();
        let xml = document(&h, &c, &p);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<report>"));
        assert!(xml.ends_with("</report>"));
        leaves(&xml);
        let found = problems(&h, &c, &p);
        for (rule, location) in [
            ("rentity_id_required", "profile.goaml_rentity_id"),
            ("currency_required", "profile.goaml_currency"),
            (
                "reporting_person_name_required",
                "profile.contact_office.contact_name",
            ),
            ("reference_required", "reference"),
            ("prior_report_required", "prior_report_id"),
            ("narrative_required", "narrative"),
            ("subject_required", "subjects"),
            ("indicator_required", "activity.classifications"),
        ] {
            assert!(
                has(&found, rule, location),
                "{rule} at {location} in {found:?}"
            );
        }
        assert_eq!(found.len(), 8, "{found:?}");
    }
}
