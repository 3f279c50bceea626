//! Suspicious activity reports (DESIGN.md "SAR", API.md "SARs"): filing types and the filing
//! deadline, a pure function of dates.
//!
//! # The deadline (31 CFR 1020.320(b)(3), and FinCEN's guidance on continuing activity)
//! - **Initial report**: no later than **30 calendar days** after the date of initial detection
//!   of facts that may constitute a basis for filing (the originating case's `detected_at`).
//! - **No suspect identified** on the date of detection: filing may be delayed by another 30
//!   calendar days to identify one, and **in no case more than 60 calendar days** after the
//!   date of initial detection.
//! - **Continuing activity**: FinCEN's guidance (SAR FAQ; FIN-2012-G002) expects a review every
//!   90 days and the continuing report within 30 days after it: **120 calendar days after the
//!   prior report was filed**.
//! - **Correction of a prior report**: the rule sets no period; FinCEN asks for a corrected
//!   report as soon as the error is found. casegate sets an internal target of 30 calendar days
//!   from the day the correction is opened and marks it as such (`regulatory: false`).
//!
//! Calendar days, with no move off weekends or holidays: the rule counts calendar days. Dates
//! are the UTC calendar dates of the recorded times. A report is on time when filed on or
//! before its due date. Warnings go out 14, 7 and 1 days before the due date, and on it.
pub mod ack;
pub mod content;
pub mod fincen;
pub mod goaml;

use crate::cases::wire_enum;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use time::{Date, Duration};

wire_enum!(
    /// What a report is to the regulator.
    FilingType, "filing types" {
        /// The first report of the activity.
        Initial = "initial",
        /// Corrects a report already filed (needs its id).
        CorrectPrior = "correct_prior",
        /// Reports activity that went on after a report was filed (needs its id).
        ContinuingActivity = "continuing_activity",
    }
);

impl FilingType {
    /// Whether the filing type refers to a report already filed.
    pub fn needs_prior(self) -> bool {
        self != FilingType::Initial
    }
}

/// What the deadline of one report is computed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeadlineBasis {
    /// The filing type.
    pub filing_type: FilingType,
    /// The date of initial detection (the originating case's `detected_at`).
    pub detected_on: Date,
    /// Whether a suspect was identified on the date of detection.
    pub suspect_identified: bool,
    /// When the prior report was filed (continuing activity).
    pub prior_filed_on: Option<Date>,
    /// When this report was opened (a correction's internal target counts from it).
    pub opened_on: Date,
}

/// A report's deadline and why (the API shows `due_on` as `YYYY-MM-DD`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deadline {
    /// The last day on which filing is on time.
    pub due_on: Date,
    /// The date the period counts from.
    pub counted_from: Date,
    /// Calendar days in the period.
    pub days: i64,
    /// The rule applied, in words with its source.
    pub rule: &'static str,
    /// Whether the date is set by the regulation (`false`: an internal target).
    pub regulatory: bool,
}

/// Days in each period.
pub const INITIAL_DAYS: i64 = 30;
/// Days when no suspect was identified at detection.
pub const NO_SUSPECT_DAYS: i64 = 60;
/// Days after a prior filing for a continuing-activity report.
pub const CONTINUING_DAYS: i64 = 120;
/// The internal target for a correction.
pub const CORRECTION_DAYS: i64 = 30;
/// Warnings go out this many days before the due date (0: on it).
pub const WARN_DAYS_BEFORE: [i64; 4] = [14, 7, 1, 0];

/// The deadline of a report. 422 on `prior_filed_on` when a continuing-activity report has no
/// filed prior report to count from.
pub fn deadline(b: &DeadlineBasis) -> Result<Deadline> {
    let (counted_from, days, rule, regulatory) = match b.filing_type {
        FilingType::Initial if b.suspect_identified => (
            b.detected_on,
            INITIAL_DAYS,
            "31 CFR 1020.320(b)(3): 30 calendar days after the date of initial detection",
            true,
        ),
        FilingType::Initial => (
            b.detected_on,
            NO_SUSPECT_DAYS,
            "31 CFR 1020.320(b)(3): no suspect identified at detection, at most 60 calendar days \
             after the date of initial detection",
            true,
        ),
        FilingType::ContinuingActivity => (
            b.prior_filed_on.ok_or_else(|| {
                Error::validation(
                    "prior_report_id",
                    "a continuing-activity report counts from the filing of its prior report, \
                     which is not filed",
                )
            })?,
            CONTINUING_DAYS,
            "FinCEN guidance on continuing activity (FIN-2012-G002): 120 calendar days after \
             the prior report was filed",
            true,
        ),
        FilingType::CorrectPrior => (
            b.opened_on,
            CORRECTION_DAYS,
            "correction of a prior report: no period in the rule (file as soon as the error is \
             found); internal target of 30 calendar days from opening the correction",
            false,
        ),
    };
    Ok(Deadline {
        due_on: counted_from + Duration::days(days),
        counted_from,
        days,
        rule,
        regulatory,
    })
}

/// Days from `today` to the due date: positive before it, 0 on it, negative once overdue.
pub fn days_left(today: Date, due_on: Date) -> i64 {
    (due_on - today).whole_days()
}

/// Whether a report filed on `filed_on` met its deadline.
pub fn on_time(filed_on: Date, due_on: Date) -> bool {
    filed_on <= due_on
}

/// The dates on which the people owning a report are warned of its deadline.
pub fn warning_dates(due_on: Date) -> Vec<Date> {
    WARN_DAYS_BEFORE
        .iter()
        .map(|d| due_on - Duration::days(*d))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::date;

    fn basis(t: FilingType, detected_on: Date) -> DeadlineBasis {
        DeadlineBasis {
            filing_type: t,
            detected_on,
            suspect_identified: true,
            prior_filed_on: None,
            opened_on: detected_on,
        }
    }

    #[test]
    fn initial_reports_are_due_30_calendar_days_after_detection() {
        let due = |d: Date| deadline(&basis(FilingType::Initial, d)).unwrap().due_on;
        assert_eq!(due(date!(2026 - 03 - 02)), date!(2026 - 04 - 01));
        // Across a short February, a leap day, a year end; weekends do not move it.
        assert_eq!(due(date!(2026 - 01 - 31)), date!(2026 - 03 - 02));
        assert_eq!(due(date!(2028 - 01 - 31)), date!(2028 - 03 - 01));
        assert_eq!(due(date!(2026 - 12 - 15)), date!(2027 - 01 - 14));
        let saturday = due(date!(2026 - 10 - 02));
        assert_eq!(saturday, date!(2026 - 11 - 01));
        assert_eq!(saturday.weekday(), time::Weekday::Sunday);
        let d = deadline(&basis(FilingType::Initial, date!(2026 - 03 - 02))).unwrap();
        assert!(d.regulatory && d.rule.contains("1020.320") && d.days == 30);
    }

    #[test]
    fn without_a_suspect_the_limit_is_60_days() {
        let mut b = basis(FilingType::Initial, date!(2026 - 03 - 02));
        b.suspect_identified = false;
        let d = deadline(&b).unwrap();
        assert_eq!(d.due_on, date!(2026 - 05 - 01));
        assert_eq!(d.days, 60);
        b.detected_on = date!(2027 - 12 - 31);
        assert_eq!(deadline(&b).unwrap().due_on, date!(2028 - 02 - 29));
    }

    #[test]
    fn continuing_activity_counts_120_days_from_the_prior_filing() {
        let mut b = basis(FilingType::ContinuingActivity, date!(2026 - 01 - 05));
        let e = deadline(&b).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("prior_report_id"));
        b.prior_filed_on = Some(date!(2026 - 02 - 03));
        // The detection date no longer matters.
        b.detected_on = date!(2025 - 06 - 01);
        let d = deadline(&b).unwrap();
        assert_eq!(d.due_on, date!(2026 - 06 - 03));
        assert_eq!(d.counted_from, date!(2026 - 02 - 03));
        b.prior_filed_on = Some(date!(2027 - 11 - 01));
        assert_eq!(deadline(&b).unwrap().due_on, date!(2028 - 02 - 29));
    }

    #[test]
    fn corrections_get_an_internal_target() {
        let mut b = basis(FilingType::CorrectPrior, date!(2026 - 01 - 05));
        b.opened_on = date!(2026 - 03 - 10);
        let d = deadline(&b).unwrap();
        assert_eq!(d.due_on, date!(2026 - 04 - 09));
        assert!(!d.regulatory);
        assert!(FilingType::CorrectPrior.needs_prior() && !FilingType::Initial.needs_prior());
    }

    #[test]
    fn the_due_date_itself_is_on_time_and_the_day_after_is_late() {
        let due = date!(2026 - 04 - 01);
        assert!(on_time(date!(2026 - 03 - 31), due));
        assert!(on_time(due, due));
        assert!(!on_time(date!(2026 - 04 - 02), due));
        assert_eq!(days_left(date!(2026 - 03 - 31), due), 1);
        assert_eq!(days_left(due, due), 0);
        assert_eq!(days_left(date!(2026 - 04 - 02), due), -1);
        assert_eq!(
            warning_dates(due),
            [
                date!(2026 - 03 - 18),
                date!(2026 - 03 - 25),
                date!(2026 - 03 - 31),
                due
            ]
        );
    }

    #[test]
    fn filing_types_have_their_wire_names() {
        for t in FilingType::ALL {
            assert_eq!(FilingType::parse("filing_type", t.as_str()).unwrap(), *t);
        }
        let e = FilingType::parse("filing_type", "amended").unwrap_err();
        assert!(
            e.message
                .contains("initial, correct_prior, continuing_activity")
        );
    }

    proptest! {
        #[test]
        fn deadlines_are_exactly_their_days_after_their_basis(
            day in 0i32..40_000,
            suspect in any::<bool>(),
            prior_gap in 0i64..2_000,
        ) {
            let detected = Date::from_julian_day(2_451_545 + day).unwrap();
            let mut b = basis(FilingType::Initial, detected);
            b.suspect_identified = suspect;
            let d = deadline(&b).unwrap();
            prop_assert_eq!((d.due_on - detected).whole_days(), if suspect { 30 } else { 60 });
            prop_assert!(on_time(d.due_on, d.due_on));
            prop_assert!(!on_time(d.due_on + Duration::days(1), d.due_on));
            b.filing_type = FilingType::ContinuingActivity;
            b.prior_filed_on = Some(detected + Duration::days(prior_gap));
            let c = deadline(&b).unwrap();
            prop_assert_eq!((c.due_on - detected).whole_days(), prior_gap + 120);
        }
    }
}
