//! The FinCEN SAR as an XML batch (`EFilingBatchXML`, form type `SARX`) valid against FinCEN's
//! schema (regulatory/fincen/EFL_SARXBatchSchema.xsd, version 1.2), and the FinCEN rules that
//! schema does not check.
//!
//! # Why two functions
//! The XSD checks structure, code lists and lengths. It does not check that the filer's EIN has
//! nine digits, that a correction names the BSA ID of the report it corrects, that the activity
//! dates are in order… FinCEN finds those after transmission and rejects or flags the report.
//! [`check`] finds them before, each as a [`Problem`] naming the field to fix. [`document`]
//! writes the batch in every case (best effort: what is missing is left out), and whenever
//! [`check`] returns nothing the batch validates against the XSD: `check` also covers the few
//! schema limits a report could otherwise break (lengths, code pairs, date ranges).
//!
//! # The batch
//! One `Activity`, its children in the order the XSD demands:
//! - `EFilingPriorDocumentNumber` (the prior report's BSA ID; corrections and continuing
//!   activity only), `FilingDateText` (`prepared_on`), `ActivityAssociation` (exactly one of
//!   the continuing-activity, corrects/amends and initial indicators).
//! - Parties, in FinCEN's order: 35 transmitter (name, address, phone, TIN with type 4, TCC
//!   with type 28), 37 transmitter contact, 30 filing institution (primary regulator, name,
//!   address, EIN with type 2, the report's `reference` as the internal control/file number
//!   with type 29, institution type), 8 contact office (name, phone), 34 financial institution
//!   where the activity occurred (the filer again: casegate reports activity at the tenant's
//!   own institution), then one 33 subject per subject. A subject's accounts go under
//!   `PartyAccountAssociation` (type 7, activity affected account) → party 41 (the filer, by
//!   its TIN) → `Account` (type 5, institution where the account is held). A value casegate
//!   lacks is reported with the schema's unknown indicator (first name, last/entity name,
//!   date of birth, TIN, each address part); with no subject at all, one subject party says
//!   `AllCriticalSubjectInformationUnavailableIndicator`.
//! - `SuspiciousActivity`: from/to dates, the total in whole dollars rounded up (FinCEN's
//!   rule), `AmountUnknownIndicator` when there is no total, `NoAmountInvolvedIndicator` when
//!   it is zero, and one classification per distinct subtype.
//! - `ActivityNarrativeInformation`: the narrative in blocks of at most 4,000 characters,
//!   numbered 1 to 5.
//!
//! # Counts and sequence numbers
//! Batch attributes: `ActivityCount` 1; `PartyCount` the number of subject (33) parties, which
//! is what FinCEN counts for SARX; `TotalAmount` the `TotalSuspiciousAmountText` written (0
//! when unknown); no attachments. `SeqNum`s come from one counter for the whole document,
//! starting at 1 on the `Activity`, so they are unique and increasing by construction, and so
//! is the XSD's minimum of six parties (five profile parties and at least one subject): `check`
//! looks at neither.
//!
//! # Text
//! Every short value is trimmed, its inner whitespace runs (tabs, line breaks) become one
//! space and control characters are dropped: FinCEN rejects leading and trailing spaces and
//! non-printable characters, and libxml2 misses a leading space in the XSD's pattern
//! (regulatory/fincen/SOURCE.md). Country and state codes are upper-cased. The narrative keeps
//! its line breaks (its XSD type has no whitespace pattern); it is cut at the last whitespace
//! within the last 500 characters of a block (mid-word only when there is none), and the
//! whitespace at a cut is left out, so no block starts or ends with whitespace (FinCEN's rule
//! for every element value) and the blocks joined by one space give back the narrative.
//!
//! # Not reported
//! What casegate does not record, FinCEN asks for only "if known": branch of the institution
//! where the activity occurred, subject gender, occupation, relationship to the institution,
//! identification documents, law-enforcement contact, cumulative amount of continuing
//! activity, product and instrument types, IP addresses and cyber-event indicators.
use super::FilingType;
use super::content::{
    Address, FilingProfile, MAX_NARRATIVE_CHARS, MAX_SUBJECTS, Problem, ReportHeader, SarContent,
    Subject, SubjectKind, is_invisible,
};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use time::Date;

/// FinCEN's schema namespace, bound to the `fc2` prefix as in FinCEN's own examples.
pub const NAMESPACE: &str = "www.fincen.gov/base";
/// The batch's `xsi:schemaLocation`: the namespace and where FinCEN publishes the schema.
pub const SCHEMA_LOCATION: &str =
    "www.fincen.gov/base https://www.fincen.gov/base/EFL_SARXBatchSchema.xsd";
/// The batch's `FormTypeCode` (fixed by the XSD).
pub const FORM_TYPE: &str = "SARX";
/// Most characters in one narrative block (`ActivityNarrativeText`, `RestrictString4000`).
pub const NARRATIVE_BLOCK_CHARS: usize = 4_000;
/// Most narrative blocks (`ActivityNarrativeSequenceNumber` is 1 to 5).
pub const MAX_NARRATIVE_BLOCKS: usize = 5;
/// How far back from a block's end the cut looks for whitespace. With 17,000 characters at
/// most, four blocks of at least 3,500 leave at most 3,000 for the fifth: five blocks suffice.
const CUT_LOOKBACK: usize = 500;

/// `PrimaryRegulatorTypeCode` values (`ValidateFederalRegulatorCodeType`).
pub const PRIMARY_REGULATOR_CODES: &[(&str, &str)] = &[
    ("1", "Federal Reserve"),
    ("2", "FDIC"),
    ("3", "NCUA"),
    ("4", "OCC"),
    ("6", "SEC"),
    ("7", "IRS"),
    ("9", "CFTC"),
    ("13", "FHFA"),
    ("99", "Not applicable"),
];

/// `OrganizationTypeID` values (`ValidateOrganizationCodeType`). 999 (Other) needs a
/// description casegate does not hold, so [`check`] refuses it.
pub const INSTITUTION_TYPE_CODES: &[(&str, &str)] = &[
    ("1", "Casino/Card club"),
    ("2", "Depository institution"),
    ("3", "Insurance company"),
    ("4", "Money Services Business (MSB)"),
    ("5", "Securities/Futures"),
    ("11", "Loan or Finance Company"),
    ("12", "Housing GSE"),
    ("999", "Other"),
];

/// Each `SuspiciousActivityTypeID` with the `SuspiciousActivitySubtypeID`s under it. The XSD
/// lists both code sets (`ValidateSuspiciousActivityTypeID`, `ValidateSuspiciousActivitySubtypeID`)
/// without pairing them; a subtype's category is its leading digits (106 → 1, 1201 → 12,
/// x999 → x, "Other"), as the subtypes' documentation in the XSD confirms.
pub const ACTIVITY_SUBTYPES: &[(u32, &[u32])] = &[
    // Structuring; 114 = transaction(s) below CTR threshold.
    (1, &[106, 111, 112, 113, 114, 1999]),
    // Fraud.
    (
        3,
        &[
            301, 304, 305, 308, 309, 310, 312, 320, 321, 322, 323, 324, 325, 3999,
        ],
    ),
    // Identification documentation.
    (4, &[401, 402, 403, 404, 405, 409, 4999]),
    // Insurance.
    (5, &[501, 502, 504, 505, 506, 507, 5999]),
    // Securities/Futures/Options.
    (6, &[601, 603, 604, 608, 609, 6999]),
    // Terrorist financing.
    (7, &[701, 7999]),
    // Money laundering.
    (
        8,
        &[
            801, 804, 805, 806, 807, 808, 809, 812, 820, 821, 822, 823, 824, 8999,
        ],
    ),
    // Other suspicious activities.
    (
        9,
        &[
            901, 903, 904, 905, 907, 908, 909, 910, 911, 913, 917, 920, 921, 922, 924, 925, 926,
            927, 928, 9999,
        ],
    ),
    // Mortgage fraud.
    (10, &[1001, 1003, 1005, 1006, 1007, 10999]),
    // Cyber event.
    (11, &[1101, 1102, 11999]),
    // Gaming activities.
    (12, &[1201, 1202, 1203, 1204, 12999]),
];

/// US state, district, territory and military codes accepted as `RawStateCodeText` with US.
const US_STATES: &[&str] = &[
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA",
    "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM",
    "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA",
    "WV", "WI", "WY", "AS", "GU", "MP", "PR", "VI", "UM", "FM", "MH", "PW", "AA", "AE", "AP",
];
/// Countries whose addresses FinCEN expects a state for.
const STATE_COUNTRIES: &[&str] = &["US", "CA", "MX"];

// `ActivityPartyTypeCode`s.
const TRANSMITTER: &str = "35";
const TRANSMITTER_CONTACT: &str = "37";
const FILING_INSTITUTION: &str = "30";
const CONTACT_OFFICE: &str = "8";
const ACTIVITY_INSTITUTION: &str = "34";
const SUBJECT: &str = "33";
const ACCOUNT_INSTITUTION: &str = "41";
// `PartyIdentificationTypeCode`s.
const SSN_ITIN: &str = "1";
const EIN: &str = "2";
const TIN: &str = "4";
const FOREIGN_TIN: &str = "9";
const TCC: &str = "28";
const INTERNAL_CONTROL_NUMBER: &str = "29";
// `PartyAccountAssociationTypeCode`s.
const ACTIVITY_AFFECTED_ACCOUNT: &str = "7";
const ACCOUNT_HELD_AT: &str = "5";

// Longest values the XSD accepts (its `RestrictStringN` types).
const NAME_CHARS: usize = 150;
const FIRST_NAME_CHARS: usize = 35;
const STREET_CHARS: usize = 100;
const CITY_CHARS: usize = 50;
const STATE_CHARS: usize = 3;
const POSTAL_CODE_CHARS: usize = 9;
const ID_CHARS: usize = 25;
const ACCOUNT_CHARS: usize = 40;
const AMOUNT_CHARS: usize = 15;
/// Most accounts under one party 41 (`Account` maxOccurs).
const MAX_ACCOUNTS: usize = 99;

/// The FinCEN SAR batch document (one Activity) for the report.
pub fn document(h: &ReportHeader, c: &SarContent, p: &FilingProfile) -> String {
    let total = c.activity.total_amount.map_or(0, |a| a.whole_rounded_up());
    let subject_parties = c.subjects.len().max(1);
    let mut d = Doc::new();
    d.event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let mut root = BytesStart::new("fc2:EFilingBatchXML");
    let attributes = [
        ("ActivityCount", "1".to_string()),
        ("TotalAmount", total.to_string()),
        ("PartyCount", subject_parties.to_string()),
        ("ActivityAttachmentCount", "0".to_string()),
        ("AttachmentCount", "0".to_string()),
        ("xsi:schemaLocation", SCHEMA_LOCATION.to_string()),
        ("xmlns:fc2", NAMESPACE.to_string()),
        (
            "xmlns:xsi",
            "http://www.w3.org/2001/XMLSchema-instance".to_string(),
        ),
    ];
    for (name, value) in &attributes {
        root.push_attribute((*name, value.as_str()));
    }
    d.event(Event::Start(root));
    d.leaf("FormTypeCode", FORM_TYPE);

    d.open("Activity");
    if h.filing_type.needs_prior() {
        d.maybe(
            "EFilingPriorDocumentNumber",
            opt(&h.prior_report_id).as_deref(),
        );
    }
    d.leaf("FilingDateText", &ymd(h.prepared_on));
    d.open("ActivityAssociation");
    d.flag(
        "ContinuingActivityReportIndicator",
        h.filing_type == FilingType::ContinuingActivity,
    );
    d.flag(
        "CorrectsAmendsPriorReportIndicator",
        h.filing_type == FilingType::CorrectPrior,
    );
    d.flag(
        "InitialReportIndicator",
        h.filing_type == FilingType::Initial,
    );
    d.close("ActivityAssociation");

    transmitter(&mut d, p);
    institution(
        &mut d,
        FILING_INSTITUTION,
        p,
        clean(&h.reference).as_deref(),
    );
    contact_office(&mut d, p);
    institution(&mut d, ACTIVITY_INSTITUTION, p, None);
    if c.subjects.is_empty() {
        d.open("Party");
        d.leaf("ActivityPartyTypeCode", SUBJECT);
        d.flag("AllCriticalSubjectInformationUnavailableIndicator", true);
        d.close("Party");
    }
    let filer_tin = opt(&p.filer.tin);
    for s in &c.subjects {
        subject(&mut d, s, filer_tin.as_deref());
    }
    suspicious_activity(&mut d, c);
    for (i, block) in narrative_blocks(&narrative_text(&c.narrative))
        .iter()
        .enumerate()
    {
        d.open("ActivityNarrativeInformation");
        d.leaf("ActivityNarrativeSequenceNumber", &(i + 1).to_string());
        d.leaf("ActivityNarrativeText", block);
        d.close("ActivityNarrativeInformation");
    }
    d.close("Activity");
    d.event(Event::End(BytesEnd::new("fc2:EFilingBatchXML")));
    d.finish()
}

/// Every FinCEN rule the XSD does not check, as Problems a compliance officer can act on (empty = ok).
pub fn check(h: &ReportHeader, c: &SarContent, p: &FilingProfile) -> Vec<Problem> {
    let mut out = Checks(Vec::new());
    check_header(&mut out, h);
    check_profile(&mut out, p);
    check_activity(&mut out, h, c);
    check_subjects(&mut out, h, c);
    let chars = narrative_text(&c.narrative).chars().count();
    if chars == 0 {
        out.add(
            "narrative_required",
            "narrative",
            "FinCEN requires a narrative: describe who did what, when, where, how and why it \
             is suspicious",
        );
    } else if chars > MAX_NARRATIVE_CHARS {
        out.add(
            "narrative_too_long",
            "narrative",
            format!(
                "FinCEN accepts at most {MAX_NARRATIVE_CHARS} characters of narrative; this one \
                 has {chars}: shorten it"
            ),
        );
    }
    out.0
}

/// The writer: quick-xml with two-space indentation, every element in the `fc2` namespace,
/// one `SeqNum` counter for the document.
struct Doc {
    w: Writer<Vec<u8>>,
    seq: u64,
}

/// Why writing cannot fail.
const WRITING: &str = "writing to a Vec";

impl Doc {
    fn new() -> Doc {
        Doc {
            w: Writer::new_with_indent(Vec::new(), b' ', 2),
            seq: 0,
        }
    }

    fn event(&mut self, e: Event<'_>) {
        self.w.write_event(e).expect(WRITING);
    }

    /// Opens an element carrying the next `SeqNum`.
    fn open(&mut self, name: &str) {
        self.seq += 1;
        let seq = self.seq.to_string();
        let mut start = BytesStart::new(format!("fc2:{name}"));
        start.push_attribute(("SeqNum", seq.as_str()));
        self.event(Event::Start(start));
    }

    fn close(&mut self, name: &str) {
        self.event(Event::End(BytesEnd::new(format!("fc2:{name}"))));
    }

    /// An element holding text (escaped by `BytesText::new`).
    fn leaf(&mut self, name: &str, text: &str) {
        let tag = format!("fc2:{name}");
        self.event(Event::Start(BytesStart::new(tag.as_str())));
        self.event(Event::Text(BytesText::new(text)));
        self.event(Event::End(BytesEnd::new(tag.as_str())));
    }

    fn maybe(&mut self, name: &str, text: Option<&str>) {
        if let Some(text) = text {
            self.leaf(name, text);
        }
    }

    /// An indicator: `Y` when on, left out otherwise.
    fn flag(&mut self, name: &str, on: bool) {
        if on {
            self.leaf(name, "Y");
        }
    }

    fn finish(self) -> String {
        String::from_utf8(self.w.into_inner()).expect("the writer writes only text from &str")
    }
}

fn transmitter(d: &mut Doc, p: &FilingProfile) {
    let t = &p.transmitter;
    d.open("Party");
    d.leaf("ActivityPartyTypeCode", TRANSMITTER);
    legal_name(d, opt(&t.name).as_deref());
    write_address(d, &Addr::of(&t.address), false);
    phone(d, opt(&t.phone).as_deref());
    identification(d, opt(&t.tin).as_deref(), TIN);
    identification(d, opt(&p.transmitter_control_code).as_deref(), TCC);
    d.close("Party");

    d.open("Party");
    d.leaf("ActivityPartyTypeCode", TRANSMITTER_CONTACT);
    legal_name(d, opt(&t.contact_name).as_deref());
    d.close("Party");
}

/// The filing institution (30, with the report's internal control number) or the institution
/// where the activity occurred (34): both are the filer.
fn institution(d: &mut Doc, party_type: &str, p: &FilingProfile, internal_id: Option<&str>) {
    d.open("Party");
    d.leaf("ActivityPartyTypeCode", party_type);
    d.maybe(
        "PrimaryRegulatorTypeCode",
        opt(&p.primary_regulator_code).as_deref(),
    );
    legal_name(d, opt(&p.filer.name).as_deref());
    write_address(d, &Addr::of(&p.filer.address), false);
    identification(d, opt(&p.filer.tin).as_deref(), EIN);
    identification(d, internal_id, INTERNAL_CONTROL_NUMBER);
    if let Some(t) = opt(&p.institution_type_code) {
        d.open("OrganizationClassificationTypeSubtype");
        d.leaf("OrganizationTypeID", &t);
        d.close("OrganizationClassificationTypeSubtype");
    }
    d.close("Party");
}

fn contact_office(d: &mut Doc, p: &FilingProfile) {
    d.open("Party");
    d.leaf("ActivityPartyTypeCode", CONTACT_OFFICE);
    legal_name(d, opt(&p.contact_office.name).as_deref());
    phone(d, opt(&p.contact_office.phone).as_deref());
    d.close("Party");
}

fn subject(d: &mut Doc, s: &Subject, filer_tin: Option<&str>) {
    let individual = s.kind == SubjectKind::Individual;
    let (last, first) = if individual {
        (opt(&s.last_name), opt(&s.first_name))
    } else {
        (opt(&s.entity_name), None)
    };
    let birth = s.date_of_birth.filter(|_| individual);
    let accounts = accounts(s);
    let address = s.address.as_ref().map(Addr::of).unwrap_or_default();

    d.open("Party");
    d.leaf("ActivityPartyTypeCode", SUBJECT);
    d.flag("BirthDateUnknownIndicator", individual && birth.is_none());
    d.maybe("IndividualBirthDateText", birth.map(ymd).as_deref());
    d.flag("NoKnownAccountInvolvedIndicator", accounts.is_empty());
    d.flag("PartyAsEntityOrganizationIndicator", !individual);
    d.open("PartyName");
    d.flag("EntityLastNameUnknownIndicator", last.is_none());
    d.flag("FirstNameUnknownIndicator", individual && first.is_none());
    d.leaf("PartyNameTypeCode", "L");
    d.maybe("RawEntityIndividualLastName", last.as_deref());
    d.maybe("RawIndividualFirstName", first.as_deref());
    d.close("PartyName");
    write_address(d, &address, true);
    d.open("PartyIdentification");
    match opt(&s.tin) {
        Some(tin) => {
            d.leaf("PartyIdentificationNumberText", &tin);
            let kind = match (domestic(&address), s.kind) {
                (false, _) => FOREIGN_TIN,
                (true, SubjectKind::Individual) => SSN_ITIN,
                (true, SubjectKind::Entity) => EIN,
            };
            d.leaf("PartyIdentificationTypeCode", kind);
        }
        None => d.flag("TINUnknownIndicator", true),
    }
    d.close("PartyIdentification");
    if !accounts.is_empty() {
        d.open("PartyAccountAssociation");
        d.leaf("PartyAccountAssociationTypeCode", ACTIVITY_AFFECTED_ACCOUNT);
        d.open("Party");
        d.leaf("ActivityPartyTypeCode", ACCOUNT_INSTITUTION);
        identification(d, filer_tin, TIN);
        for account in &accounts {
            d.open("Account");
            d.leaf("AccountNumberText", account);
            d.open("PartyAccountAssociation");
            d.leaf("PartyAccountAssociationTypeCode", ACCOUNT_HELD_AT);
            d.close("PartyAccountAssociation");
            d.close("Account");
        }
        d.close("Party");
        d.close("PartyAccountAssociation");
    }
    d.close("Party");
}

fn suspicious_activity(d: &mut Doc, c: &SarContent) {
    let a = &c.activity;
    let amount = a.total_amount.map(|m| m.whole_rounded_up());
    d.open("SuspiciousActivity");
    d.flag("AmountUnknownIndicator", amount.is_none());
    d.flag("NoAmountInvolvedIndicator", amount == Some(0));
    d.maybe(
        "SuspiciousActivityFromDateText",
        a.from_date.map(ymd).as_deref(),
    );
    d.maybe(
        "SuspiciousActivityToDateText",
        a.to_date.map(ymd).as_deref(),
    );
    d.maybe(
        "TotalSuspiciousAmountText",
        amount.filter(|v| *v != 0).map(|v| v.to_string()).as_deref(),
    );
    // The XSD allows a subtype once per activity; a repeated pair adds nothing.
    let mut seen = Vec::new();
    for k in &a.classifications {
        if seen.contains(&k.subtype_id) {
            continue;
        }
        seen.push(k.subtype_id);
        d.open("SuspiciousActivityClassification");
        d.leaf("SuspiciousActivitySubtypeID", &k.subtype_id.to_string());
        d.leaf("SuspiciousActivityTypeID", &k.type_id.to_string());
        d.close("SuspiciousActivityClassification");
    }
    d.close("SuspiciousActivity");
}

fn legal_name(d: &mut Doc, name: Option<&str>) {
    d.open("PartyName");
    d.leaf("PartyNameTypeCode", "L");
    d.maybe("RawPartyFullName", name);
    d.close("PartyName");
}

fn phone(d: &mut Doc, number: Option<&str>) {
    if let Some(number) = number {
        d.open("PhoneNumber");
        d.leaf("PhoneNumberText", number);
        d.close("PhoneNumber");
    }
}

fn identification(d: &mut Doc, number: Option<&str>, type_code: &str) {
    if let Some(number) = number {
        d.open("PartyIdentification");
        d.leaf("PartyIdentificationNumberText", number);
        d.leaf("PartyIdentificationTypeCode", type_code);
        d.close("PartyIdentification");
    }
}

/// An address; with `unknown_flags` (subjects) each missing part gets its unknown indicator
/// (the state's only where FinCEN expects a state).
fn write_address(d: &mut Doc, a: &Addr, unknown_flags: bool) {
    let unknown = |v: &Option<String>| unknown_flags && v.is_none();
    let state_expected = a.country.is_none() || a.country_in(STATE_COUNTRIES);
    d.open("Address");
    d.flag("CityUnknownIndicator", unknown(&a.city));
    d.flag("CountryCodeUnknownIndicator", unknown(&a.country));
    d.maybe("RawCityText", a.city.as_deref());
    d.maybe("RawCountryCodeText", a.country.as_deref());
    d.maybe("RawStateCodeText", a.state.as_deref());
    d.maybe("RawStreetAddress1Text", a.line1.as_deref());
    d.maybe("RawZIPCode", a.postal_code.as_deref());
    d.flag(
        "StateCodeUnknownIndicator",
        unknown(&a.state) && state_expected,
    );
    d.flag("StreetAddressUnknownIndicator", unknown(&a.line1));
    d.flag("ZIPCodeUnknownIndicator", unknown(&a.postal_code));
    d.close("Address");
}

/// An address as written: every part cleaned, codes upper-cased.
#[derive(Default)]
struct Addr {
    line1: Option<String>,
    city: Option<String>,
    state: Option<String>,
    postal_code: Option<String>,
    country: Option<String>,
}

impl Addr {
    fn of(a: &Address) -> Addr {
        Addr {
            line1: opt(&a.line1),
            city: opt(&a.city),
            state: opt(&a.state).map(|s| s.to_ascii_uppercase()),
            postal_code: opt(&a.postal_code),
            country: opt(&a.country).map(|s| s.to_ascii_uppercase()),
        }
    }

    fn country_in(&self, codes: &[&str]) -> bool {
        self.country.as_deref().is_some_and(|c| codes.contains(&c))
    }
}

/// Whether a subject's TIN is a US one (SSN/ITIN or EIN): its address is in the US, or its
/// country is not known.
fn domestic(a: &Addr) -> bool {
    a.country.as_deref().is_none_or(|c| c == "US")
}

/// A subject's account numbers as written: cleaned, blanks dropped, each once.
fn accounts(s: &Subject) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in s.accounts.iter().filter_map(|a| clean(a)) {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// A short value as written: control characters dropped, whitespace runs made one space,
/// trimmed; `None` when nothing is left.
fn clean(s: &str) -> Option<String> {
    let kept: String = s
        .chars()
        .filter(|c| c.is_whitespace() || !(c.is_control() || is_nonchar(*c) || is_invisible(*c)))
        .collect();
    let out = kept.split_whitespace().collect::<Vec<_>>().join(" ");
    (!out.is_empty()).then_some(out)
}

fn opt(v: &Option<String>) -> Option<String> {
    v.as_deref().and_then(clean)
}

/// U+FFFE and U+FFFF may not appear in XML.
fn is_nonchar(c: char) -> bool {
    matches!(c, '\u{FFFE}' | '\u{FFFF}')
}

/// The narrative as written: line breaks kept (as `\n`), other whitespace controls made
/// spaces, other control characters dropped, trimmed.
fn narrative_text(s: &str) -> String {
    let s = s.replace("\r\n", "\n").replace('\r', "\n");
    let kept: String = s
        .chars()
        .filter_map(|c| match c {
            '\n' => Some('\n'),
            c if c.is_control() && c.is_whitespace() => Some(' '),
            c if c.is_control() || is_nonchar(c) || is_invisible(c) => None,
            c => Some(c),
        })
        .collect();
    kept.trim().to_string()
}

/// The narrative cut into blocks of at most [`NARRATIVE_BLOCK_CHARS`] characters, each cut
/// at the last whitespace within the block's last [`CUT_LOOKBACK`] characters if any; the
/// whitespace at a cut belongs to no block, so none starts or ends with whitespace. Blocks
/// beyond [`MAX_NARRATIVE_BLOCKS`] are kept (the schema then rejects them; `check` reports the
/// length), never dropped.
fn narrative_blocks(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut blocks = Vec::new();
    let mut start = 0;
    loop {
        while start < chars.len() && chars[start].is_whitespace() {
            start += 1;
        }
        if start == chars.len() {
            break;
        }
        let mut end = (start + NARRATIVE_BLOCK_CHARS).min(chars.len());
        let mut next = end;
        if end < chars.len() {
            let floor = start.max(end.saturating_sub(CUT_LOOKBACK));
            if let Some(i) = (floor..end).rev().find(|i| chars[*i].is_whitespace()) {
                end = i;
                next = i + 1;
            }
        }
        while end > start && chars[end - 1].is_whitespace() {
            end -= 1;
        }
        blocks.push(chars[start..end].iter().collect());
        start = next;
    }
    blocks
}

/// `YYYYMMDD`.
fn ymd(d: Date) -> String {
    format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The XSD's date patterns take years 1900 to 2099.
fn in_schema_range(d: Date) -> bool {
    (1900..=2099).contains(&d.year())
}

fn all_digits(s: &str, lengths: &[usize]) -> bool {
    s.bytes().all(|b| b.is_ascii_digit()) && lengths.contains(&s.len())
}

/// The problems found so far.
struct Checks(Vec<Problem>);

impl Checks {
    fn add(&mut self, rule: &str, location: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::rule(rule, location, message));
    }

    /// A profile value FinCEN requires, cleaned; reported when missing.
    fn required(&mut self, location: &str, v: &Option<String>, what: &str) -> Option<String> {
        let v = opt(v);
        if v.is_none() {
            self.add(
                "profile_field_required",
                location,
                format!("FinCEN requires {what}: set it in the filing profile"),
            );
        }
        v
    }

    fn max_chars(&mut self, location: &str, v: &str, max: usize) {
        let n = v.chars().count();
        if n > max {
            self.add(
                "field_too_long",
                location,
                format!("FinCEN accepts at most {max} characters here; this has {n}: shorten it"),
            );
        }
    }
}

fn check_header(out: &mut Checks, h: &ReportHeader) {
    if !in_schema_range(h.prepared_on) {
        out.add(
            "date_out_of_range",
            "prepared_on",
            "FinCEN accepts dates from 1900 to 2099 only",
        );
    }
    if let Some(r) = clean(&h.reference) {
        out.max_chars("reference", &r, ID_CHARS);
    }
    match (h.filing_type, opt(&h.prior_report_id)) {
        (t, None) if t.needs_prior() => out.add(
            "prior_report_id_required",
            "prior_report_id",
            format!(
                "a {} report must give the BSA ID of the report it follows (the 14 digits in \
                 FinCEN's acknowledgement of that report)",
                t.as_str().replace('_', " ")
            ),
        ),
        (t, Some(id)) if t.needs_prior() && !all_digits(&id, &[14]) => out.add(
            "prior_report_id_invalid",
            "prior_report_id",
            format!(
                "\"{id}\" is not a BSA ID: enter the 14 digits from FinCEN's acknowledgement of \
                 the prior report"
            ),
        ),
        (FilingType::Initial, Some(_)) => out.add(
            "prior_report_id_not_allowed",
            "prior_report_id",
            "an initial report has no prior report: remove the prior report id, or file a \
             correction or continuing-activity report instead",
        ),
        _ => {}
    }
}

fn check_profile(out: &mut Checks, p: &FilingProfile) {
    let f = &p.filer;
    if let Some(n) = out.required(
        "profile.filer.name",
        &f.name,
        "the filing institution's legal name",
    ) {
        out.max_chars("profile.filer.name", &n, NAME_CHARS);
    }
    if let Some(t) = out.required("profile.filer.tin", &f.tin, "the filing institution's EIN")
        && !all_digits(&t, &[9])
    {
        out.add(
            "tin_invalid",
            "profile.filer.tin",
            "the filing institution's EIN is 9 digits, without hyphen or spaces",
        );
    }
    check_address(
        out,
        "profile.filer.address",
        &Addr::of(&f.address),
        Some("the filing institution's"),
    );

    let t = &p.transmitter;
    if let Some(n) = out.required(
        "profile.transmitter.name",
        &t.name,
        "the transmitter's legal name",
    ) {
        out.max_chars("profile.transmitter.name", &n, NAME_CHARS);
    }
    if let Some(tin) = out.required("profile.transmitter.tin", &t.tin, "the transmitter's TIN")
        && !all_digits(&tin, &[9])
    {
        out.add(
            "tin_invalid",
            "profile.transmitter.tin",
            "the transmitter's TIN is 9 digits, without hyphen or spaces",
        );
    }
    check_address(
        out,
        "profile.transmitter.address",
        &Addr::of(&t.address),
        Some("the transmitter's"),
    );
    check_phone(
        out,
        "profile.transmitter.phone",
        &t.phone,
        "the transmitter's",
    );
    if let Some(n) = out.required(
        "profile.transmitter.contact_name",
        &t.contact_name,
        "the name of the transmitter's contact",
    ) {
        out.max_chars("profile.transmitter.contact_name", &n, NAME_CHARS);
    }
    if let Some(tcc) = out.required(
        "profile.transmitter_control_code",
        &p.transmitter_control_code,
        "the transmitter control code (TCC) FinCEN issued",
    ) && !(tcc.len() == 8 && tcc.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        out.add(
            "tcc_invalid",
            "profile.transmitter_control_code",
            format!(
                "\"{tcc}\" is not a transmitter control code: a TCC is the 8 letters and digits \
                 FinCEN issued (starting with P for production)"
            ),
        );
    }

    if let Some(n) = out.required(
        "profile.contact_office.name",
        &p.contact_office.name,
        "the name of the office FinCEN and law enforcement contact about the report",
    ) {
        out.max_chars("profile.contact_office.name", &n, NAME_CHARS);
    }
    check_phone(
        out,
        "profile.contact_office.phone",
        &p.contact_office.phone,
        "the contact office's",
    );

    if let Some(r) = out.required(
        "profile.primary_regulator_code",
        &p.primary_regulator_code,
        "the filer's primary federal regulator code",
    ) && !PRIMARY_REGULATOR_CODES.iter().any(|(c, _)| *c == r)
    {
        out.add(
            "regulator_code_invalid",
            "profile.primary_regulator_code",
            format!(
                "\"{r}\" is not a FinCEN primary regulator code; use one of {}",
                code_list(PRIMARY_REGULATOR_CODES)
            ),
        );
    }
    if let Some(t) = out.required(
        "profile.institution_type_code",
        &p.institution_type_code,
        "the filer's type of financial institution",
    ) {
        if t == "999" {
            out.add(
                "institution_type_invalid",
                "profile.institution_type_code",
                "FinCEN needs a description with institution type 999 (Other), which the \
                 filing profile cannot hold: choose the closest listed type",
            );
        } else if !INSTITUTION_TYPE_CODES.iter().any(|(c, _)| *c == t) {
            out.add(
                "institution_type_invalid",
                "profile.institution_type_code",
                format!(
                    "\"{t}\" is not a FinCEN institution type code; use one of {}",
                    code_list(&INSTITUTION_TYPE_CODES[..INSTITUTION_TYPE_CODES.len() - 1])
                ),
            );
        }
    }
}

fn code_list(codes: &[(&str, &str)]) -> String {
    codes
        .iter()
        .map(|(c, what)| format!("{c} ({what})"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_phone(out: &mut Checks, location: &str, v: &Option<String>, whose: &str) {
    if let Some(n) = out.required(location, v, &format!("{whose} telephone number"))
        && !(n.len() <= 16 && n.bytes().all(|b| b.is_ascii_digit()))
    {
        out.add(
            "phone_invalid",
            location,
            format!(
                "{whose} telephone number is digits only (at most 16), no punctuation or spaces"
            ),
        );
    }
}

/// An address's formats; with `required` (the profile's parties: whose) its parts too.
fn check_address(out: &mut Checks, location: &str, a: &Addr, required: Option<&str>) {
    let at = |field: &str| format!("{location}.{field}");
    if let Some(whose) = required {
        let parts = [
            ("line1", &a.line1, "street address"),
            ("city", &a.city, "city"),
            ("postal_code", &a.postal_code, "ZIP/postal code"),
            ("country", &a.country, "country code"),
        ];
        for (field, v, what) in parts {
            if v.is_none() {
                out.add(
                    "profile_field_required",
                    at(field),
                    format!("FinCEN requires {whose} {what}: set it in the filing profile"),
                );
            }
        }
        if a.state.is_none() && (a.country.is_none() || a.country_in(STATE_COUNTRIES)) {
            out.add(
                "profile_field_required",
                at("state"),
                format!("FinCEN requires {whose} state: set it in the filing profile"),
            );
        }
    }
    if let Some(v) = &a.line1 {
        out.max_chars(&at("line1"), v, STREET_CHARS);
    }
    if let Some(v) = &a.city {
        out.max_chars(&at("city"), v, CITY_CHARS);
    }
    if let Some(c) = &a.country
        && !(c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
    {
        out.add(
            "country_code_invalid",
            at("country"),
            format!(
                "\"{c}\" is not a country code: use the two-letter ISO 3166 code (US, CA, MX…)"
            ),
        );
    }
    let us = a.country_in(&["US"]);
    if let Some(s) = &a.state {
        if us && !US_STATES.contains(&s.as_str()) {
            out.add(
                "state_code_invalid",
                at("state"),
                format!("\"{s}\" is not a US state code: use the two-letter postal code (NY, PR…)"),
            );
        } else if !us {
            out.max_chars(&at("state"), s, STATE_CHARS);
        }
    }
    if let Some(z) = &a.postal_code {
        if us && !all_digits(z, &[5, 9]) {
            out.add(
                "zip_code_invalid",
                at("postal_code"),
                format!("\"{z}\" is not a US ZIP code: 5 or 9 digits, without hyphen"),
            );
        } else if !us {
            out.max_chars(&at("postal_code"), z, POSTAL_CODE_CHARS);
        }
    }
}

fn check_activity(out: &mut Checks, h: &ReportHeader, c: &SarContent) {
    let a = &c.activity;
    for (field, date) in [("from_date", a.from_date), ("to_date", a.to_date)] {
        let location = format!("activity.{field}");
        match date {
            None => out.add(
                "activity_date_required",
                location,
                "FinCEN requires the first and last day of the suspicious activity (the same \
                 day twice for a single day)",
            ),
            Some(d) if d > h.prepared_on => out.add(
                "activity_date_in_future",
                location,
                format!(
                    "{d} is after the report's date ({}): a report covers activity that has \
                     happened",
                    h.prepared_on
                ),
            ),
            Some(d) if !in_schema_range(d) => out.add(
                "date_out_of_range",
                location,
                "FinCEN accepts dates from 1900 to 2099 only",
            ),
            Some(_) => {}
        }
    }
    if let (Some(from), Some(to)) = (a.from_date, a.to_date)
        && from > to
    {
        out.add(
            "activity_dates_out_of_order",
            "activity.to_date",
            format!(
                "the activity ends ({to}) before it starts ({from}): swap or correct the dates"
            ),
        );
    }

    if a.classifications.is_empty() {
        out.add(
            "classification_required",
            "activity.classifications",
            "FinCEN requires at least one category of suspicious activity (e.g. 1/114 \
             structuring: transactions below the CTR threshold)",
        );
    }
    for (i, k) in a.classifications.iter().enumerate() {
        let location = format!("activity.classifications[{i}]");
        if !ACTIVITY_SUBTYPES
            .iter()
            .any(|(t, subs)| *t == k.type_id && subs.contains(&k.subtype_id))
        {
            let home = ACTIVITY_SUBTYPES
                .iter()
                .find(|(_, subs)| subs.contains(&k.subtype_id))
                .map(|(t, _)| *t);
            let message = match home {
                Some(t) => format!(
                    "subtype {} belongs to type {t}, not {}: correct the type or the subtype",
                    k.subtype_id, k.type_id
                ),
                None => format!(
                    "{}/{} is not a FinCEN suspicious-activity category: choose a type and \
                     subtype from FinCEN's list",
                    k.type_id, k.subtype_id
                ),
            };
            out.add("classification_invalid", location, message);
        } else if k.subtype_id % 1000 == 999 {
            out.add(
                "classification_other_unsupported",
                location,
                format!(
                    "FinCEN needs a description with subtype {} (Other), which casegate cannot \
                     hold: choose the specific subtype that fits and explain the rest in the \
                     narrative",
                    k.subtype_id
                ),
            );
        }
    }

    if let Some(m) = a.total_amount {
        if m.0 < 0 {
            out.add(
                "amount_invalid",
                "activity.total_amount",
                "the total amount cannot be negative",
            );
        } else if m.whole_rounded_up().to_string().len() > AMOUNT_CHARS {
            out.add(
                "amount_invalid",
                "activity.total_amount",
                format!("FinCEN accepts at most {AMOUNT_CHARS} digits of whole dollars"),
            );
        }
    }
}

fn check_subjects(out: &mut Checks, h: &ReportHeader, c: &SarContent) {
    if c.subjects.len() > MAX_SUBJECTS {
        out.add(
            "too_many_subjects",
            "subjects",
            format!(
                "FinCEN accepts at most {MAX_SUBJECTS} subjects on one report; this has {}: \
                 file the rest on another report",
                c.subjects.len()
            ),
        );
    }
    for (i, s) in c.subjects.iter().enumerate() {
        let at = |field: &str| format!("subjects[{i}].{field}");
        let address = s.address.as_ref().map(Addr::of).unwrap_or_default();
        match s.kind {
            SubjectKind::Individual => {
                match opt(&s.last_name) {
                    None => out.add(
                        "subject_name_required",
                        at("last_name"),
                        "enter the subject's last name (FinCEN accepts an individual without \
                         one only as an unknown subject)",
                    ),
                    Some(n) => out.max_chars(&at("last_name"), &n, NAME_CHARS),
                }
                if let Some(n) = opt(&s.first_name) {
                    out.max_chars(&at("first_name"), &n, FIRST_NAME_CHARS);
                }
                if let Some(b) = s.date_of_birth {
                    if b > h.prepared_on {
                        out.add(
                            "dob_in_future",
                            at("date_of_birth"),
                            format!(
                                "the date of birth {b} is after the report's date ({}): \
                                 correct it",
                                h.prepared_on
                            ),
                        );
                    } else if !in_schema_range(b) {
                        out.add(
                            "date_out_of_range",
                            at("date_of_birth"),
                            "FinCEN accepts dates of birth from 1900 on only",
                        );
                    }
                }
            }
            SubjectKind::Entity => match opt(&s.entity_name) {
                None => out.add(
                    "subject_name_required",
                    at("entity_name"),
                    "enter the entity's legal name",
                ),
                Some(n) => out.max_chars(&at("entity_name"), &n, NAME_CHARS),
            },
        }
        if let Some(tin) = opt(&s.tin) {
            if domestic(&address) {
                if !all_digits(&tin, &[9]) {
                    out.add(
                        "tin_invalid",
                        at("tin"),
                        "a US TIN (SSN/ITIN or EIN) is 9 digits, without hyphens or spaces",
                    );
                }
            } else if !(tin.len() <= ID_CHARS && tin.bytes().all(|b| b.is_ascii_alphanumeric())) {
                out.add(
                    "tin_invalid",
                    at("tin"),
                    format!(
                        "a foreign TIN is at most {ID_CHARS} letters and digits, without \
                         punctuation or spaces"
                    ),
                );
            }
        }
        check_address(out, &at("address"), &address, None);
        for (j, account) in s.accounts.iter().enumerate() {
            if let Some(v) = clean(account) {
                out.max_chars(&at(&format!("accounts[{j}]")), &v, ACCOUNT_CHARS);
            }
        }
        if accounts(s).len() > MAX_ACCOUNTS {
            out.add(
                "too_many_accounts",
                at("accounts"),
                format!(
                    "FinCEN accepts at most {MAX_ACCOUNTS} accounts per subject: keep those \
                     the activity affected"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sar::content::{Activity, Amount, Classification, ProfileParty};
    use quick_xml::Reader;
    use time::macros::date;

    fn us(line1: &str, city: &str, state: &str, zip: &str) -> Address {
        Address {
            line1: Some(line1.into()),
            city: Some(city.into()),
            state: Some(state.into()),
            postal_code: Some(zip.into()),
            country: Some("US".into()),
        }
    }

    /// A 9,000-character narrative about the deposits.
    fn narrative_9000() -> String {
        let para = "On March 2, 4 and 6, 2026 the customer Jordan Reyes deposited $9,500.00 in \
                    cash at the Springfield main office into checking account 0012345678, each \
                    deposit just under the $10,000 currency transaction report threshold. ";
        let mut s = String::new();
        while s.len() < 9_000 {
            s.push_str(para);
        }
        s.truncate(9_000);
        if s.ends_with(' ') {
            s.pop();
            s.push('.');
        }
        s
    }

    /// A structuring case: three cash deposits of $9,500 under the $10,000 CTR threshold.
    fn complete() -> (ReportHeader, SarContent, FilingProfile) {
        let h = ReportHeader {
            reference: "SAR-2026-000007".into(),
            filing_type: FilingType::Initial,
            prior_report_id: None,
            prepared_on: date!(2026 - 03 - 20),
        };
        let c = SarContent {
            subjects: vec![Subject {
                kind: SubjectKind::Individual,
                first_name: Some("Jordan".into()),
                last_name: Some("Reyes".into()),
                entity_name: None,
                date_of_birth: Some(date!(1980 - 10 - 25)),
                tin: Some("123456789".into()),
                address: Some(us("42 Elm Street", "Springfield", "IL", "62704")),
                accounts: vec!["0012345678".into()],
            }],
            suspect_identified: true,
            activity: Activity {
                from_date: Some(date!(2026 - 03 - 02)),
                to_date: Some(date!(2026 - 03 - 06)),
                total_amount: Some(Amount(3 * 950_000)),
                classifications: vec![Classification {
                    type_id: 1,
                    subtype_id: 114,
                }],
            },
            narrative: narrative_9000(),
        };
        let p = FilingProfile {
            filer: ProfileParty {
                name: Some("First Prairie Bank, N.A.".into()),
                tin: Some("361234567".into()),
                address: us("100 Main Street", "Springfield", "IL", "62701"),
                phone: Some("2175550100".into()),
                contact_name: None,
            },
            transmitter: ProfileParty {
                name: Some("Casegate Filing Services LLC".into()),
                tin: Some("471234567".into()),
                address: us("5 Harbor Way", "Boston", "MA", "021101234"),
                phone: Some("6175550199".into()),
                contact_name: Some("Dana Whitfield".into()),
            },
            transmitter_control_code: Some("PCGT0001".into()),
            contact_office: ProfileParty {
                name: Some("BSA & AML Compliance Office".into()),
                phone: Some("2175550142".into()),
                ..Default::default()
            },
            primary_regulator_code: Some("4".into()),
            institution_type_code: Some("2".into()),
            ..Default::default()
        };
        (h, c, p)
    }

    /// Every element in document order: local name, `SeqNum`, text (escapes resolved).
    fn elements(xml: &str) -> Vec<(String, Option<u64>, String)> {
        let mut r = Reader::from_str(xml);
        let mut out: Vec<(String, Option<u64>, String)> = Vec::new();
        let mut open: Vec<usize> = Vec::new();
        loop {
            match r.read_event().expect("well-formed XML") {
                Event::Start(s) => {
                    let seq = s
                        .attributes()
                        .map(|a| a.expect("an attribute"))
                        .find(|a| a.key.as_ref() == "SeqNum")
                        .map(|a| a.value.parse::<u64>().expect("a numeric SeqNum"));
                    open.push(out.len());
                    out.push((s.local_name().as_ref().to_string(), seq, String::new()));
                }
                Event::End(_) => {
                    open.pop();
                }
                Event::Text(t) => {
                    if let Some(&i) = open.last() {
                        out[i].2.push_str(&t.xml10_content());
                    }
                }
                Event::GeneralRef(g) => {
                    if let Some(&i) = open.last() {
                        let name: &str = &g;
                        let v = quick_xml::escape::resolve_predefined_entity(name)
                            .expect("a predefined entity");
                        out[i].2.push_str(v);
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        out
    }

    fn texts(xml: &str, name: &str) -> Vec<String> {
        elements(xml)
            .into_iter()
            .filter(|e| e.0 == name)
            .map(|e| e.2)
            .collect()
    }

    fn text(xml: &str, name: &str) -> String {
        let all = texts(xml, name);
        assert_eq!(all.len(), 1, "{name}: {all:?}");
        all[0].clone()
    }

    /// The problems of the complete report changed by `f`.
    fn problems(
        f: impl FnOnce(&mut ReportHeader, &mut SarContent, &mut FilingProfile),
    ) -> Vec<Problem> {
        let (mut h, mut c, mut p) = complete();
        f(&mut h, &mut c, &mut p);
        // Whatever is wrong, a document is still written.
        assert!(document(&h, &c, &p).contains("<fc2:EFilingBatchXML "));
        check(&h, &c, &p)
    }

    #[track_caller]
    fn assert_clean(found: &[Problem]) {
        assert!(found.is_empty(), "{found:#?}");
    }

    #[track_caller]
    fn assert_problem(found: &[Problem], rule: &str, location: &str) {
        assert!(
            found
                .iter()
                .any(|p| p.rule == rule && p.location == location && p.source == "business_rule"),
            "no {rule} at {location} in {found:#?}"
        );
    }

    #[test]
    fn the_complete_report_passes_every_rule() {
        let (h, c, p) = complete();
        assert_clean(&check(&h, &c, &p));
    }

    #[test]
    fn the_document_carries_the_report() {
        let (h, c, p) = complete();
        let xml = document(&h, &c, &p);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
        for attr in [
            "ActivityCount=\"1\"",
            "TotalAmount=\"28500\"",
            "PartyCount=\"1\"",
            "ActivityAttachmentCount=\"0\"",
            "AttachmentCount=\"0\"",
            "xmlns:fc2=\"www.fincen.gov/base\"",
        ] {
            assert!(xml.contains(attr), "{attr}");
        }
        assert_eq!(text(&xml, "FormTypeCode"), "SARX");
        assert_eq!(text(&xml, "FilingDateText"), "20260320");
        assert_eq!(text(&xml, "InitialReportIndicator"), "Y");
        assert!(texts(&xml, "EFilingPriorDocumentNumber").is_empty());
        assert_eq!(
            texts(&xml, "ActivityPartyTypeCode"),
            ["35", "37", "30", "8", "34", "33", "41"]
        );
        assert_eq!(
            texts(&xml, "PartyIdentificationTypeCode"),
            ["4", "28", "2", "29", "2", "1", "4"]
        );
        assert_eq!(
            texts(&xml, "PartyIdentificationNumberText"),
            [
                "471234567",
                "PCGT0001",
                "361234567",
                "SAR-2026-000007",
                "361234567",
                "123456789",
                "361234567"
            ]
        );
        assert_eq!(texts(&xml, "PrimaryRegulatorTypeCode"), ["4", "4"]);
        assert_eq!(texts(&xml, "OrganizationTypeID"), ["2", "2"]);
        assert_eq!(
            texts(&xml, "RawPartyFullName"),
            [
                "Casegate Filing Services LLC",
                "Dana Whitfield",
                "First Prairie Bank, N.A.",
                "BSA & AML Compliance Office",
                "First Prairie Bank, N.A."
            ]
        );
        assert!(xml.contains("BSA &amp; AML Compliance Office"));
        assert_eq!(text(&xml, "RawEntityIndividualLastName"), "Reyes");
        assert_eq!(text(&xml, "RawIndividualFirstName"), "Jordan");
        assert_eq!(text(&xml, "IndividualBirthDateText"), "19801025");
        assert_eq!(text(&xml, "AccountNumberText"), "0012345678");
        assert_eq!(texts(&xml, "PartyAccountAssociationTypeCode"), ["7", "5"]);
        assert_eq!(text(&xml, "SuspiciousActivityFromDateText"), "20260302");
        assert_eq!(text(&xml, "SuspiciousActivityToDateText"), "20260306");
        assert_eq!(text(&xml, "TotalSuspiciousAmountText"), "28500");
        assert_eq!(text(&xml, "SuspiciousActivityTypeID"), "1");
        assert_eq!(text(&xml, "SuspiciousActivitySubtypeID"), "114");
        for unknown in [
            "AmountUnknownIndicator",
            "TINUnknownIndicator",
            "BirthDateUnknownIndicator",
            "FirstNameUnknownIndicator",
            "CityUnknownIndicator",
            "NoKnownAccountInvolvedIndicator",
            "AllCriticalSubjectInformationUnavailableIndicator",
        ] {
            assert!(texts(&xml, unknown).is_empty(), "{unknown}");
        }
        // 9,000 characters: three blocks, cut between words, that give back the narrative.
        assert_eq!(
            texts(&xml, "ActivityNarrativeSequenceNumber"),
            ["1", "2", "3"]
        );
        let blocks = texts(&xml, "ActivityNarrativeText");
        assert!(
            blocks
                .iter()
                .all(|b| b.chars().count() <= NARRATIVE_BLOCK_CHARS)
        );
        assert!(
            blocks.iter().all(|b| b.trim() == b.as_str()),
            "no edge whitespace"
        );
        assert_eq!(blocks.join(" "), c.narrative);
    }

    #[test]
    fn seq_nums_are_unique_and_increasing_from_1() {
        let (h, mut c, p) = complete();
        let mut second = c.subjects[0].clone();
        second.accounts.push("0099887766".into());
        c.subjects.push(second);
        let xml = document(&h, &c, &p);
        let seqs: Vec<u64> = elements(&xml).iter().filter_map(|e| e.1).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
        let with_seq: Vec<String> = elements(&xml)
            .into_iter()
            .filter(|e| e.1.is_some())
            .map(|e| e.0)
            .collect();
        assert_eq!(with_seq[..3], ["Activity", "ActivityAssociation", "Party"]);
        assert!(xml.contains("PartyCount=\"2\""));
    }

    #[test]
    fn amounts_are_whole_dollars_rounded_up_or_unknown() {
        let (h, mut c, p) = complete();
        c.activity.total_amount = Some(Amount(2_850_001));
        let xml = document(&h, &c, &p);
        assert_eq!(text(&xml, "TotalSuspiciousAmountText"), "28501");
        assert!(xml.contains("TotalAmount=\"28501\""));

        c.activity.total_amount = None;
        assert_clean(&check(&h, &c, &p)); // the schema has an unknown indicator
        let xml = document(&h, &c, &p);
        assert_eq!(text(&xml, "AmountUnknownIndicator"), "Y");
        assert!(texts(&xml, "TotalSuspiciousAmountText").is_empty());
        assert!(xml.contains("TotalAmount=\"0\""));

        c.activity.total_amount = Some(Amount(0));
        let xml = document(&h, &c, &p);
        assert_eq!(text(&xml, "NoAmountInvolvedIndicator"), "Y");
        assert!(texts(&xml, "TotalSuspiciousAmountText").is_empty());
    }

    #[test]
    fn text_is_trimmed_and_whitespace_collapsed() {
        let (h, mut c, mut p) = complete();
        c.subjects[0].last_name = Some("  Reyes \t".into());
        c.subjects[0].first_name = Some(" Jordan\tLee\n".into());
        p.filer.name = Some("\u{a0}First Prairie  Bank, N.A. ".into());
        c.narrative = format!("\n  {}  \r\n", c.narrative);
        c.subjects[0].address.as_mut().expect("an address").state = Some(" il".into());
        assert_clean(&check(&h, &c, &p));
        let xml = document(&h, &c, &p);
        assert_eq!(text(&xml, "RawEntityIndividualLastName"), "Reyes");
        assert_eq!(text(&xml, "RawIndividualFirstName"), "Jordan Lee");
        assert_eq!(
            texts(&xml, "RawPartyFullName")[2],
            "First Prairie Bank, N.A."
        );
        assert_eq!(texts(&xml, "RawStateCodeText")[3], "IL");
        assert_eq!(
            texts(&xml, "ActivityNarrativeText").join(" "),
            narrative_9000()
        );
    }

    #[test]
    fn filing_types_set_the_association_and_the_prior_bsa_id() {
        let (mut h, c, p) = complete();
        for (t, indicator) in [
            (
                FilingType::CorrectPrior,
                "CorrectsAmendsPriorReportIndicator",
            ),
            (
                FilingType::ContinuingActivity,
                "ContinuingActivityReportIndicator",
            ),
        ] {
            h.filing_type = t;
            h.prior_report_id = Some(" 31000012345678 ".into());
            assert_clean(&check(&h, &c, &p));
            let xml = document(&h, &c, &p);
            assert_eq!(text(&xml, indicator), "Y");
            assert!(texts(&xml, "InitialReportIndicator").is_empty());
            assert_eq!(text(&xml, "EFilingPriorDocumentNumber"), "31000012345678");
        }
        h.filing_type = FilingType::Initial;
        let xml = document(&h, &c, &p);
        assert!(texts(&xml, "EFilingPriorDocumentNumber").is_empty());
    }

    #[test]
    fn a_report_without_subjects_has_one_unknown_subject() {
        let (h, mut c, p) = complete();
        c.subjects.clear();
        assert_clean(&check(&h, &c, &p));
        let xml = document(&h, &c, &p);
        assert_eq!(
            text(&xml, "AllCriticalSubjectInformationUnavailableIndicator"),
            "Y"
        );
        assert_eq!(
            texts(&xml, "ActivityPartyTypeCode"),
            ["35", "37", "30", "8", "34", "33"]
        );
        assert!(xml.contains("PartyCount=\"1\""));
    }

    #[test]
    fn missing_subject_details_are_reported_unknown() {
        let (h, mut c, p) = complete();
        c.subjects[0] = Subject {
            kind: SubjectKind::Individual,
            first_name: None,
            last_name: Some("Reyes".into()),
            entity_name: None,
            date_of_birth: None,
            tin: Some("   ".into()),
            address: None,
            accounts: vec![" ".into()],
        };
        assert_clean(&check(&h, &c, &p));
        let xml = document(&h, &c, &p);
        for unknown in [
            "BirthDateUnknownIndicator",
            "NoKnownAccountInvolvedIndicator",
            "FirstNameUnknownIndicator",
            "CityUnknownIndicator",
            "CountryCodeUnknownIndicator",
            "StateCodeUnknownIndicator",
            "StreetAddressUnknownIndicator",
            "ZIPCodeUnknownIndicator",
            "TINUnknownIndicator",
        ] {
            assert_eq!(text(&xml, unknown), "Y", "{unknown}");
        }
        assert!(texts(&xml, "AccountNumberText").is_empty());
        assert_eq!(
            texts(&xml, "ActivityPartyTypeCode")
                .last()
                .map(String::as_str),
            Some("33")
        );
    }

    #[test]
    fn entities_and_foreign_subjects() {
        let (h, mut c, p) = complete();
        c.subjects[0] = Subject {
            kind: SubjectKind::Entity,
            first_name: Some("ignored".into()),
            last_name: None,
            entity_name: Some("Reyes Trading LLC".into()),
            date_of_birth: Some(date!(1980 - 10 - 25)),
            tin: Some("987654321".into()),
            address: None,
            accounts: vec![],
        };
        assert_clean(&check(&h, &c, &p));
        let xml = document(&h, &c, &p);
        assert_eq!(text(&xml, "PartyAsEntityOrganizationIndicator"), "Y");
        assert_eq!(
            text(&xml, "RawEntityIndividualLastName"),
            "Reyes Trading LLC"
        );
        assert!(texts(&xml, "RawIndividualFirstName").is_empty());
        assert!(texts(&xml, "FirstNameUnknownIndicator").is_empty());
        assert!(texts(&xml, "IndividualBirthDateText").is_empty());
        assert!(texts(&xml, "BirthDateUnknownIndicator").is_empty());
        assert_eq!(texts(&xml, "PartyIdentificationTypeCode")[5], "2");

        c.subjects[0].address = Some(Address {
            line1: Some("Av. Reforma 100".into()),
            city: Some("Ciudad de Mexico".into()),
            state: Some("CMX".into()),
            postal_code: Some("06600".into()),
            country: Some("mx".into()),
        });
        c.subjects[0].tin = Some("RTL010101AB1".into());
        assert_clean(&check(&h, &c, &p));
        let xml = document(&h, &c, &p);
        assert_eq!(texts(&xml, "PartyIdentificationTypeCode")[5], "9");
        assert_eq!(texts(&xml, "RawCountryCodeText")[3], "MX");
    }

    #[test]
    fn classifications_are_written_once_per_subtype() {
        let (h, mut c, p) = complete();
        let k = |type_id, subtype_id| Classification {
            type_id,
            subtype_id,
        };
        c.activity.classifications = vec![k(1, 114), k(8, 807), k(1, 114)];
        assert_clean(&check(&h, &c, &p));
        let xml = document(&h, &c, &p);
        assert_eq!(texts(&xml, "SuspiciousActivitySubtypeID"), ["114", "807"]);
        assert_eq!(texts(&xml, "SuspiciousActivityTypeID"), ["1", "8"]);
    }

    #[test]
    fn narratives_are_cut_between_words_into_at_most_five_blocks() {
        // Worst case for the cut: words just shorter than the look-back.
        let word = "x".repeat(CUT_LOOKBACK - 1);
        let mut text = String::new();
        while text.chars().count() + word.len() < MAX_NARRATIVE_CHARS {
            text.push_str(&word);
            text.push(' ');
        }
        text.push_str(&"y".repeat(MAX_NARRATIVE_CHARS - text.chars().count()));
        assert_eq!(text.chars().count(), MAX_NARRATIVE_CHARS);
        let blocks = narrative_blocks(&text);
        assert!(blocks.len() <= MAX_NARRATIVE_BLOCKS, "{}", blocks.len());
        assert!(
            blocks
                .iter()
                .all(|b| b.chars().count() <= NARRATIVE_BLOCK_CHARS)
        );
        // Joined by one space they give back the text (its trailing space is no block's).
        assert!(
            blocks.join(" ") == text.trim_end(),
            "blocks lose or add characters"
        );
        // A run of whitespace across a cut is left out whole.
        let text = format!("{}  \n {}", "a".repeat(3_999), "b".repeat(100));
        let blocks = narrative_blocks(&text);
        assert_eq!(blocks, ["a".repeat(3_999), "b".repeat(100)]);

        // No whitespace at all: cut at 4,000 characters, on char boundaries.
        let text = "é".repeat(9_000);
        let blocks = narrative_blocks(&text);
        let sizes: Vec<usize> = blocks.iter().map(|b| b.chars().count()).collect();
        assert_eq!(sizes, [4_000, 4_000, 1_000]);
        assert!(narrative_blocks("").is_empty());
        assert_eq!(narrative_text(" a\tb\u{0}c\r\nd \n"), "a bc\nd");
    }

    #[test]
    fn rule_narrative_required() {
        let found = problems(|_, c, _| c.narrative = " \n ".into());
        assert_problem(&found, "narrative_required", "narrative");
    }

    #[test]
    fn rule_narrative_too_long() {
        let found = problems(|_, c, _| c.narrative = "word ".repeat(3_401));
        assert_problem(&found, "narrative_too_long", "narrative");
    }

    #[test]
    fn rule_profile_field_required() {
        let found = problems(|_, _, p| {
            p.filer.name = None;
            p.filer.address.city = Some(" ".into());
            p.filer.address.state = None;
            p.transmitter.tin = None;
            p.transmitter.phone = None;
            p.transmitter.contact_name = None;
            p.transmitter_control_code = None;
            p.contact_office.name = None;
            p.contact_office.phone = None;
            p.primary_regulator_code = None;
            p.institution_type_code = None;
        });
        for location in [
            "profile.filer.name",
            "profile.filer.address.city",
            "profile.filer.address.state",
            "profile.transmitter.tin",
            "profile.transmitter.phone",
            "profile.transmitter.contact_name",
            "profile.transmitter_control_code",
            "profile.contact_office.name",
            "profile.contact_office.phone",
            "profile.primary_regulator_code",
            "profile.institution_type_code",
        ] {
            assert_problem(&found, "profile_field_required", location);
        }
    }

    #[test]
    fn rule_tin_invalid() {
        let found = problems(|_, c, p| {
            p.filer.tin = Some("36-1234567".into());
            p.transmitter.tin = Some("12345".into());
            c.subjects[0].tin = Some("123-45-6789".into());
        });
        assert_problem(&found, "tin_invalid", "profile.filer.tin");
        assert_problem(&found, "tin_invalid", "profile.transmitter.tin");
        assert_problem(&found, "tin_invalid", "subjects[0].tin");
    }

    #[test]
    fn rule_tcc_invalid() {
        let found = problems(|_, _, p| p.transmitter_control_code = Some("PCGT01".into()));
        assert_problem(&found, "tcc_invalid", "profile.transmitter_control_code");
    }

    #[test]
    fn rule_phone_invalid() {
        let found = problems(|_, _, p| {
            p.contact_office.phone = Some("(217) 555-0142".into());
            p.transmitter.phone = Some("12345678901234567".into());
        });
        assert_problem(&found, "phone_invalid", "profile.contact_office.phone");
        assert_problem(&found, "phone_invalid", "profile.transmitter.phone");
    }

    #[test]
    fn rule_regulator_code_invalid() {
        let found = problems(|_, _, p| p.primary_regulator_code = Some("5".into()));
        assert_problem(
            &found,
            "regulator_code_invalid",
            "profile.primary_regulator_code",
        );
    }

    #[test]
    fn rule_institution_type_invalid() {
        for code in ["6", "999"] {
            let found = problems(|_, _, p| p.institution_type_code = Some(code.into()));
            assert_problem(
                &found,
                "institution_type_invalid",
                "profile.institution_type_code",
            );
        }
    }

    #[test]
    fn rule_prior_report_id_required() {
        let found = problems(|h, _, _| h.filing_type = FilingType::ContinuingActivity);
        assert_problem(&found, "prior_report_id_required", "prior_report_id");
    }

    #[test]
    fn rule_prior_report_id_invalid() {
        let found = problems(|h, _, _| {
            h.filing_type = FilingType::CorrectPrior;
            h.prior_report_id = Some("SAR-2025-000001".into());
        });
        assert_problem(&found, "prior_report_id_invalid", "prior_report_id");
    }

    #[test]
    fn rule_prior_report_id_not_allowed() {
        let found = problems(|h, _, _| h.prior_report_id = Some("31000012345678".into()));
        assert_problem(&found, "prior_report_id_not_allowed", "prior_report_id");
    }

    #[test]
    fn rule_activity_date_required() {
        let found = problems(|_, c, _| {
            c.activity.from_date = None;
            c.activity.to_date = None;
        });
        assert_problem(&found, "activity_date_required", "activity.from_date");
        assert_problem(&found, "activity_date_required", "activity.to_date");
    }

    #[test]
    fn rule_activity_dates_out_of_order() {
        let found = problems(|_, c, _| c.activity.to_date = Some(date!(2026 - 03 - 01)));
        assert_problem(&found, "activity_dates_out_of_order", "activity.to_date");
    }

    #[test]
    fn rule_activity_date_in_future() {
        let found = problems(|_, c, _| c.activity.to_date = Some(date!(2026 - 03 - 21)));
        assert_problem(&found, "activity_date_in_future", "activity.to_date");
    }

    #[test]
    fn rule_classification_required() {
        let found = problems(|_, c, _| c.activity.classifications.clear());
        assert_problem(
            &found,
            "classification_required",
            "activity.classifications",
        );
    }

    #[test]
    fn rule_classification_invalid() {
        let found = problems(|_, c, _| {
            c.activity.classifications.push(Classification {
                type_id: 106,
                subtype_id: 1999,
            });
            c.activity.classifications.push(Classification {
                type_id: 0,
                subtype_id: 0,
            });
        });
        assert_problem(
            &found,
            "classification_invalid",
            "activity.classifications[1]",
        );
        assert_problem(
            &found,
            "classification_invalid",
            "activity.classifications[2]",
        );
        assert!(found[0].message.contains("belongs to type 1"), "{found:#?}");
    }

    #[test]
    fn rule_classification_other_unsupported() {
        let found = problems(|_, c, _| c.activity.classifications[0].subtype_id = 1999);
        assert_problem(
            &found,
            "classification_other_unsupported",
            "activity.classifications[0]",
        );
    }

    #[test]
    fn rule_amount_invalid() {
        let found = problems(|_, c, _| c.activity.total_amount = Some(Amount(-100)));
        assert_problem(&found, "amount_invalid", "activity.total_amount");
    }

    #[test]
    fn rule_subject_name_required() {
        let found = problems(|_, c, _| {
            // Blank to the reader: spaces and a zero-width space.
            c.subjects[0].last_name = Some(" \u{200B} ".into());
            let mut entity = c.subjects[0].clone();
            entity.kind = SubjectKind::Entity;
            c.subjects.push(entity);
        });
        assert_problem(&found, "subject_name_required", "subjects[0].last_name");
        assert_problem(&found, "subject_name_required", "subjects[1].entity_name");
    }

    #[test]
    fn rule_dob_in_future() {
        let found = problems(|_, c, _| c.subjects[0].date_of_birth = Some(date!(2026 - 03 - 21)));
        assert_problem(&found, "dob_in_future", "subjects[0].date_of_birth");
    }

    #[test]
    fn rule_date_out_of_range() {
        let found = problems(|_, c, _| c.subjects[0].date_of_birth = Some(date!(1899 - 12 - 31)));
        assert_problem(&found, "date_out_of_range", "subjects[0].date_of_birth");
    }

    #[test]
    fn rule_country_code_invalid() {
        let found = problems(|_, c, p| {
            c.subjects[0].address.as_mut().expect("an address").country = Some("USA".into());
            p.filer.address.country = Some("U1".into());
        });
        assert_problem(
            &found,
            "country_code_invalid",
            "subjects[0].address.country",
        );
        assert_problem(
            &found,
            "country_code_invalid",
            "profile.filer.address.country",
        );
    }

    #[test]
    fn rule_state_code_invalid() {
        let found = problems(|_, c, _| {
            c.subjects[0].address.as_mut().expect("an address").state = Some("Illinois".into());
        });
        assert_problem(&found, "state_code_invalid", "subjects[0].address.state");
    }

    #[test]
    fn rule_zip_code_invalid() {
        let found = problems(|_, c, p| {
            c.subjects[0]
                .address
                .as_mut()
                .expect("an address")
                .postal_code = Some("62704-1234".into());
            p.transmitter.address.postal_code = Some("0211".into());
        });
        assert_problem(
            &found,
            "zip_code_invalid",
            "subjects[0].address.postal_code",
        );
        assert_problem(
            &found,
            "zip_code_invalid",
            "profile.transmitter.address.postal_code",
        );
    }

    #[test]
    fn rule_too_many_subjects() {
        let found = problems(|_, c, _| c.subjects = vec![c.subjects[0].clone(); MAX_SUBJECTS + 1]);
        assert_problem(&found, "too_many_subjects", "subjects");
    }

    #[test]
    fn rule_too_many_accounts() {
        let found = problems(|_, c, _| {
            c.subjects[0].accounts = (0..=MAX_ACCOUNTS).map(|n| format!("ACCT{n}")).collect();
        });
        assert_problem(&found, "too_many_accounts", "subjects[0].accounts");
    }

    #[test]
    fn rule_field_too_long() {
        let found = problems(|h, c, _| {
            c.subjects[0].first_name = Some("J".repeat(FIRST_NAME_CHARS + 1));
            c.subjects[0].accounts = vec!["1".repeat(ACCOUNT_CHARS + 1)];
            h.reference = "R".repeat(ID_CHARS + 1);
        });
        assert_problem(&found, "field_too_long", "subjects[0].first_name");
        assert_problem(&found, "field_too_long", "subjects[0].accounts[0]");
        assert_problem(&found, "field_too_long", "reference");
    }
}
