//! Audit exports: formats, lifecycle and the rule that bounds a request (API.md "Audit").
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The file format of an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// `{"tenant_id", "from", "to", "generated_at", "events", "checkpoint"}`; verifies standalone.
    Json,
    /// One header row of the event fields, `changes` as JSON text.
    Csv,
    /// A readable PDF/A-2b report.
    Pdf,
}

impl ExportFormat {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Csv => "csv",
            Self::Pdf => "pdf",
        }
    }
    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "json" => Some(Self::Json),
            "csv" => Some(Self::Csv),
            "pdf" => Some(Self::Pdf),
            _ => None,
        }
    }
    /// `Content-Type` of the file.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Csv => "text/csv; charset=utf-8",
            Self::Pdf => "application/pdf",
        }
    }
    /// The most events one export of this format may hold. A PDF is a report meant to be read,
    /// so it is bounded well below the machine-readable formats.
    pub fn max_events(self, machine_readable_max: i64) -> i64 {
        match self {
            Self::Pdf => machine_readable_max.min(PDF_MAX_EVENTS),
            _ => machine_readable_max,
        }
    }
}

/// Events per PDF report (about 600 pages).
pub const PDF_MAX_EVENTS: i64 = 20_000;

/// Where an export is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker holds it.
    Running,
    /// The file and its signature are available.
    Ready,
    /// Gave up; `error` says why.
    Failed,
}

impl ExportStatus {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }
    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "queued" => Some(Self::Queued),
            "running" => Some(Self::Running),
            "ready" => Some(Self::Ready),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// The latest end an export starting at `from` may have: the same instant twelve calendar
/// months later (29 February maps to 28 February).
pub fn max_end(from: OffsetDateTime) -> OffsetDateTime {
    let year = from.year() + 1;
    let date = from
        .date()
        .replace_year(year)
        .or_else(|_| {
            from.date()
                .replace_day(28)
                .and_then(|d| d.replace_year(year))
        })
        .unwrap_or(from.date());
    from.replace_date(date)
}

/// Checks `[from, to)`: `from` before `to`, at most twelve months apart, not in the future
/// beyond `now` for `from`.
pub fn check_range(from: OffsetDateTime, to: OffsetDateTime, now: OffsetDateTime) -> Result<()> {
    if from >= to {
        return Err(Error::validation("to", "must be after `from`"));
    }
    if from > now {
        return Err(Error::validation("from", "must not be in the future"));
    }
    if to > max_end(from) {
        return Err(Error::validation(
            "to",
            "an export covers at most 12 months; split the period",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    #[test]
    fn twelve_months_is_the_calendar_year() {
        let now = datetime!(2027-06-01 0:00 UTC);
        let from = datetime!(2025-03-02 09:00 UTC);
        assert!(check_range(from, datetime!(2026-03-02 09:00 UTC), now).is_ok());
        let e = check_range(from, datetime!(2026-03-02 09:00:00.000001 UTC), now).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("to"));
        assert_eq!(
            max_end(datetime!(2024-02-29 12:00 UTC)),
            datetime!(2025-02-28 12:00 UTC)
        );
    }

    #[test]
    fn empty_reversed_and_future_ranges_are_refused() {
        let now = datetime!(2026-03-02 09:00 UTC);
        let t = datetime!(2026-01-01 0:00 UTC);
        assert_eq!(
            check_range(t, t, now).unwrap_err().param.as_deref(),
            Some("to")
        );
        assert!(check_range(datetime!(2026-02-01 0:00 UTC), t, now).is_err());
        assert_eq!(
            check_range(
                datetime!(2026-04-01 0:00 UTC),
                datetime!(2026-05-01 0:00 UTC),
                now
            )
            .unwrap_err()
            .param
            .as_deref(),
            Some("from")
        );
    }

    #[test]
    fn names_round_trip() {
        for f in [ExportFormat::Json, ExportFormat::Csv, ExportFormat::Pdf] {
            assert_eq!(ExportFormat::parse(f.as_str()), Some(f));
        }
        for s in [
            ExportStatus::Queued,
            ExportStatus::Running,
            ExportStatus::Ready,
            ExportStatus::Failed,
        ] {
            assert_eq!(ExportStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(ExportFormat::parse("xlsx"), None);
        assert_eq!(ExportFormat::Pdf.max_events(1_000_000), PDF_MAX_EVENTS);
        assert_eq!(ExportFormat::Csv.max_events(1_000_000), 1_000_000);
    }

    proptest! {
        #[test]
        fn max_end_is_about_a_year_later(secs in 0i64..4_000_000_000) {
            let from = OffsetDateTime::from_unix_timestamp(secs).unwrap();
            let end = max_end(from);
            let days = (end - from).whole_days();
            prop_assert!((364..=366).contains(&days), "{from} -> {end}");
            prop_assert_eq!(end.time(), from.time());
        }
    }
}
