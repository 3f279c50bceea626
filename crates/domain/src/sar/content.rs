//! What a report says (API.md "SAR content") and who files it (the tenant's filing profile),
//! as plain values the document generators read. Checks here are the ones any jurisdiction
//! needs (lengths, dates in order, amounts not negative); each format adds its own rules.
use crate::cases::wire_enum;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use time::Date;

// Dates on the wire are `YYYY-MM-DD`.
time::serde::format_description!(ymd, Date, "[year]-[month]-[day]");

/// Longest narrative accepted (FinCEN's limit: 17,000 characters in at most five blocks).
pub const MAX_NARRATIVE_CHARS: usize = 17_000;
/// Most subjects on one report (FinCEN allows 999 subject parties).
pub const MAX_SUBJECTS: usize = 999;
/// Longest short text field (names, city, TIN…).
pub const MAX_FIELD_CHARS: usize = 150;

wire_enum!(
    /// Whether a subject is a person or an organisation.
    SubjectKind, "subject kinds" {
        /// A natural person.
        Individual = "individual",
        /// A company, trust or other organisation.
        Entity = "entity",
    }
);

/// A postal address.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Address {
    /// Street line.
    pub line1: Option<String>,
    /// City.
    pub city: Option<String>,
    /// State, province or emirate (US: the two-letter code).
    pub state: Option<String>,
    /// Postal code (US: ZIP, 5 or 9 digits).
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub country: Option<String>,
}

/// A person or organisation the report is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// Individual or entity.
    pub kind: SubjectKind,
    /// Given name (individuals).
    #[serde(default)]
    pub first_name: Option<String>,
    /// Family name (individuals).
    #[serde(default)]
    pub last_name: Option<String>,
    /// Legal name (entities).
    #[serde(default)]
    pub entity_name: Option<String>,
    /// Date of birth (individuals).
    #[serde(default, with = "ymd::option")]
    pub date_of_birth: Option<Date>,
    /// Taxpayer identification number (SSN/ITIN or EIN), digits only once normalised.
    #[serde(default)]
    pub tin: Option<String>,
    /// Address.
    #[serde(default)]
    pub address: Option<Address>,
    /// Account numbers at the filing institution involved in the activity.
    #[serde(default)]
    pub accounts: Vec<String>,
}

impl Subject {
    /// The name shown to people: "First Last" or the entity name.
    pub fn display_name(&self) -> String {
        match self.kind {
            SubjectKind::Entity => self.entity_name.clone().unwrap_or_default(),
            SubjectKind::Individual => [self.first_name.as_deref(), self.last_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// A suspicious-activity category, by the regulator's codes (FinCEN: `SuspiciousActivityTypeID`
/// and `SuspiciousActivitySubtypeID`, e.g. 106 / 1999 … structuring).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Classification {
    /// Category code.
    pub type_id: u32,
    /// Subcategory code.
    pub subtype_id: u32,
}

/// Money in minor units (cents). On the wire a JSON number or decimal string with at most two
/// decimals; kept exact (never a float).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Amount(pub i64);

impl Amount {
    /// Whole currency units rounded up (FinCEN: "round up to the next whole dollar").
    pub fn whole_rounded_up(self) -> i64 {
        self.0.div_euclid(100) + i64::from(self.0.rem_euclid(100) != 0)
    }

    /// Parses `"1234"`, `"1234.5"` or `"1234.56"`.
    pub fn parse(s: &str) -> Option<Amount> {
        let s = s.trim();
        let (units, frac) = s.split_once('.').unwrap_or((s, ""));
        if units.is_empty()
            || units.len() > 15
            || frac.len() > 2
            || !units.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let units: i64 = units.parse().ok()?;
        let cents: i64 = format!("{frac:0<2}").parse().ok()?;
        Some(Amount(units * 100 + cents))
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        // A decimal string keeps the cents exact through every JSON reader.
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let text = match &v {
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) => s.clone(),
            _ => String::new(),
        };
        Amount::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(
                "must be a non-negative amount with at most two decimals (e.g. 9500 or \"9500.00\")",
            )
        })
    }
}

/// What happened, when, and how much.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Activity {
    /// First day of the suspicious activity.
    #[serde(with = "ymd::option")]
    pub from_date: Option<Date>,
    /// Last day of the suspicious activity.
    #[serde(with = "ymd::option")]
    pub to_date: Option<Date>,
    /// Total amount involved.
    pub total_amount: Option<Amount>,
    /// Categories of the activity.
    pub classifications: Vec<Classification>,
}

/// The report's content (`PATCH /sars/{id}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SarContent {
    /// Subjects.
    pub subjects: Vec<Subject>,
    /// Whether a suspect was identified at detection (false: the 60-day deadline).
    pub suspect_identified: bool,
    /// The activity.
    pub activity: Activity,
    /// The narrative (FinCEN Part V).
    pub narrative: String,
}

impl Default for SarContent {
    fn default() -> Self {
        SarContent {
            subjects: Vec::new(),
            suspect_identified: true,
            activity: Activity::default(),
            narrative: String::new(),
        }
    }
}

impl SarContent {
    /// The checks every format shares; the first failure names its field.
    pub fn check(&self) -> Result<()> {
        if self.subjects.len() > MAX_SUBJECTS {
            return Err(Error::validation(
                "subjects",
                format!("at most {MAX_SUBJECTS} subjects"),
            ));
        }
        for (i, s) in self.subjects.iter().enumerate() {
            let fields = [
                ("first_name", &s.first_name),
                ("last_name", &s.last_name),
                ("entity_name", &s.entity_name),
                ("tin", &s.tin),
            ];
            for (name, v) in fields {
                short(&format!("subjects[{i}].{name}"), v.as_deref())?;
            }
            if let Some(a) = &s.address {
                let fields = [
                    ("line1", &a.line1),
                    ("city", &a.city),
                    ("state", &a.state),
                    ("postal_code", &a.postal_code),
                    ("country", &a.country),
                ];
                for (name, v) in fields {
                    short(&format!("subjects[{i}].address.{name}"), v.as_deref())?;
                }
            }
            for (j, acct) in s.accounts.iter().enumerate() {
                short(&format!("subjects[{i}].accounts[{j}]"), Some(acct))?;
            }
        }
        if let (Some(f), Some(t)) = (self.activity.from_date, self.activity.to_date)
            && f > t
        {
            return Err(Error::validation(
                "activity.to_date",
                "must not be before activity.from_date",
            ));
        }
        // Counted as filed: a browser's CRLF line breaks are one character, edges trimmed.
        if self.narrative.replace("\r\n", "\n").trim().chars().count() > MAX_NARRATIVE_CHARS {
            return Err(Error::validation(
                "narrative",
                format!("at most {MAX_NARRATIVE_CHARS} characters"),
            ));
        }
        Ok(())
    }
}

/// Invisible formatting characters (zero-width spaces and joiners, direction marks and
/// overrides, word joiners, the byte-order mark, the soft hyphen): valid XML, but a name made
/// of them is blank to the reader, so the documents leave them out.
pub fn is_invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
}

fn short(param: &str, v: Option<&str>) -> Result<()> {
    match v {
        Some(v) if v.chars().count() > MAX_FIELD_CHARS => Err(Error::validation(
            param,
            format!("at most {MAX_FIELD_CHARS} characters"),
        )),
        _ => Ok(()),
    }
}

/// A party of the filing profile (the filer, the transmitter, the contact office).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProfileParty {
    /// Legal name.
    pub name: Option<String>,
    /// TIN (EIN), 9 digits for FinCEN.
    pub tin: Option<String>,
    /// Address.
    pub address: Address,
    /// Telephone, digits only.
    pub phone: Option<String>,
    /// A contact person's name (transmitter contact, contact office).
    pub contact_name: Option<String>,
}

/// The tenant's filing profile (`GET|PUT /settings/filing-profile`): who files, who transmits,
/// whom the regulator calls.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilingProfile {
    /// The filing institution (FinCEN party 30; goAML reporting entity).
    pub filer: ProfileParty,
    /// The transmitter (FinCEN party 35; contact name → party 37).
    pub transmitter: ProfileParty,
    /// FinCEN Transmitter Control Code (TCC, 8 characters, `P…` for production).
    pub transmitter_control_code: Option<String>,
    /// The contact office for the report (FinCEN party 8; goAML reporting person).
    pub contact_office: ProfileParty,
    /// FinCEN: the filer's primary federal regulator code (`PrimaryRegulatorTypeCode`: 4 = OCC,
    /// 7 = IRS, 9 = CFTC, 99 = not applicable; see `fincen::PRIMARY_REGULATOR_CODES`).
    pub primary_regulator_code: Option<String>,
    /// FinCEN: the filer's institution type (`OrganizationTypeID`, e.g. 2 = depository institution;
    /// see `fincen::INSTITUTION_TYPE_CODES`).
    pub institution_type_code: Option<String>,
    /// goAML: the reporting entity id the FIU assigned.
    pub goaml_rentity_id: Option<String>,
    /// goAML: the reporting entity branch.
    pub goaml_rentity_branch: Option<String>,
    /// goAML: the local currency (ISO 4217).
    pub goaml_currency: Option<String>,
    /// goAML: the report code, `STR` (default) or `SAR` (FIUs that file activity without
    /// transactions as SAR, such as the UAE's).
    pub goaml_report_code: Option<String>,
}

impl FilingProfile {
    /// The profile `casegate demo` gives its sandbox organisation: a fictitious US bank that
    /// files itself through a fictitious transmitter, with goAML ids, so documents in both
    /// formats pass every rule. Not for real filings.
    pub fn sandbox() -> FilingProfile {
        let us = |line1: &str, city: &str, state: &str, zip: &str| Address {
            line1: Some(line1.into()),
            city: Some(city.into()),
            state: Some(state.into()),
            postal_code: Some(zip.into()),
            country: Some("US".into()),
        };
        FilingProfile {
            filer: ProfileParty {
                name: Some("Casegate Sandbox Bank N.A.".into()),
                tin: Some("361234567".into()),
                address: us("100 Main Street", "Springfield", "IL", "62701"),
                phone: Some("2175550100".into()),
                contact_name: None,
            },
            transmitter: ProfileParty {
                name: Some("Casegate Filing Sandbox LLC".into()),
                tin: Some("471234567".into()),
                address: us("5 Harbor Way", "Boston", "MA", "02110"),
                phone: Some("6175550199".into()),
                contact_name: Some("Dana Whitfield".into()),
            },
            transmitter_control_code: Some("TCGT0001".into()),
            contact_office: ProfileParty {
                name: Some("BSA AML Compliance Office".into()),
                tin: None,
                address: us("100 Main Street", "Springfield", "IL", "62701"),
                phone: Some("2175550142".into()),
                contact_name: Some("Morgan Lee".into()),
            },
            primary_regulator_code: Some("4".into()),
            institution_type_code: Some("2".into()),
            goaml_rentity_id: Some("101".into()),
            goaml_rentity_branch: Some("HQ".into()),
            goaml_currency: Some("USD".into()),
            goaml_report_code: None,
        }
    }
}

/// What a generator needs about the report itself beyond its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportHeader {
    /// The SAR's human reference (`SAR-2026-000007`), the filer's own report id.
    pub reference: String,
    /// Filing type.
    pub filing_type: super::FilingType,
    /// The prior report's id (BSA ID) for corrections and continuing activity.
    pub prior_report_id: Option<String>,
    /// The day the document is prepared (FinCEN `FilingDateText`, goAML `submission_date`).
    pub prepared_on: Date,
}

/// One thing wrong with a document, phrased so a compliance officer can fix it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// `schema` (the official XSD said so) or `business_rule` (the regulator's rules the schema
    /// does not check).
    pub source: String,
    /// A stable rule name (`narrative_required`, `subject_name_required`, …; `xsd` for schema errors).
    pub rule: String,
    /// Where in the report: a content field (`subjects[0].tin`) or the profile field, or the XML
    /// line for schema errors.
    pub location: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl Problem {
    /// A business-rule problem.
    pub fn rule(rule: &str, location: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            source: "business_rule".into(),
            rule: rule.into(),
            location: location.into(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_and_round_up_to_whole_units() {
        assert_eq!(Amount::parse("9500"), Some(Amount(950_000)));
        assert_eq!(Amount::parse("9500.5"), Some(Amount(950_050)));
        assert_eq!(Amount::parse("0.01").unwrap().whole_rounded_up(), 1);
        assert_eq!(
            Amount::parse("28500.00").unwrap().whole_rounded_up(),
            28_500
        );
        assert_eq!(
            Amount::parse("28500.01").unwrap().whole_rounded_up(),
            28_501
        );
        for bad in ["", "-1", "1.234", "1e3", "abc", ".5", "1,000"] {
            assert_eq!(Amount::parse(bad), None, "{bad}");
        }
        let c: Activity =
            serde_json::from_value(serde_json::json!({"total_amount": 9500.25})).unwrap();
        assert_eq!(c.total_amount, Some(Amount(950_025)));
        assert_eq!(
            serde_json::to_value(c.total_amount).unwrap(),
            serde_json::json!("9500.25")
        );
    }

    #[test]
    fn content_checks_name_the_field_at_fault() {
        let mut c = SarContent::default();
        assert!(c.suspect_identified);
        c.narrative = "x".repeat(MAX_NARRATIVE_CHARS + 1);
        assert_eq!(c.check().unwrap_err().param.as_deref(), Some("narrative"));
        // 17,000 characters typed in a browser form, with CRLF line breaks, fit.
        c.narrative = "x\r\n".repeat(MAX_NARRATIVE_CHARS / 2);
        assert!(c.check().is_ok());
        c.narrative.clear();
        c.activity.from_date = Some(time::macros::date!(2026 - 05 - 02));
        c.activity.to_date = Some(time::macros::date!(2026 - 05 - 01));
        assert_eq!(
            c.check().unwrap_err().param.as_deref(),
            Some("activity.to_date")
        );
    }
}
