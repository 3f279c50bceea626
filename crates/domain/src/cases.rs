//! The vocabulary of cases (DESIGN.md "Case", API.md "Cases"): priorities, dispositions and the
//! human reference `CASE-<year>-<6 digits>`, unique per tenant.
use serde::{Deserialize, Serialize};

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident, $what:literal { $($(#[$vm:meta])* $variant:ident = $wire:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name { $($(#[$vm])* #[serde(rename = $wire)] $variant,)* }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];
            /// Wire name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire,)* }
            }
            /// Parses a wire name, or says which names are allowed.
            pub fn parse(param: &str, s: &str) -> crate::Result<Self> {
                match s {
                    $($wire => Ok($name::$variant),)*
                    _ => Err(crate::Error::validation(
                        param,
                        format!(concat!("must be one of the ", $what, ": {}"), [$($wire),*].join(", ")),
                    )),
                }
            }
        }
    };
}
pub(crate) use wire_enum;

wire_enum!(
    /// How urgent a case is.
    Priority, "priorities" {
        /// Routine.
        Low = "low",
        /// The default.
        Medium = "medium",
        /// Work first.
        High = "high",
        /// Drop everything.
        Critical = "critical",
    }
);

wire_enum!(
    /// The analyst's decision on a case.
    Disposition, "dispositions" {
        /// The activity is what the alert suspected.
        TruePositive = "TRUE_POSITIVE",
        /// The alert was wrong.
        FalsePositive = "FALSE_POSITIVE",
        /// Handed on for a higher decision.
        Escalated = "ESCALATED",
        /// Nothing to do.
        NoActionRequired = "NO_ACTION_REQUIRED",
    }
);

/// The human reference of the `n`-th case a tenant opened in `year`: `CASE-2026-000042`.
/// Numbers past 999,999 keep all their digits (`CASE-2026-1000000`), so references stay unique.
pub fn reference(year: i32, n: i64) -> String {
    format!("CASE-{year}-{n:06}")
}

/// Parses a reference back into `(year, n)`.
pub fn parse_reference(s: &str) -> Option<(i32, i64)> {
    let rest = s.strip_prefix("CASE-")?;
    let (year, n) = rest.split_once('-')?;
    if year.len() != 4 || n.len() < 6 || !year.bytes().chain(n.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some((year.parse().ok()?, n.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wire_names_round_trip_and_unknown_names_list_the_allowed_ones() {
        for p in Priority::ALL {
            assert_eq!(Priority::parse("priority", p.as_str()).unwrap(), *p);
        }
        for d in Disposition::ALL {
            assert_eq!(Disposition::parse("disposition", d.as_str()).unwrap(), *d);
        }
        let e = Priority::parse("priority", "urgent").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("priority"));
        assert!(
            e.message.contains("low, medium, high, critical"),
            "{}",
            e.message
        );
        assert!(Disposition::parse("disposition", "true_positive").is_err());
        assert_eq!(
            serde_json::to_string(&Disposition::NoActionRequired).unwrap(),
            "\"NO_ACTION_REQUIRED\""
        );
    }

    #[test]
    fn references_have_six_digits_at_least() {
        assert_eq!(reference(2026, 42), "CASE-2026-000042");
        assert_eq!(reference(2026, 1_000_000), "CASE-2026-1000000");
        assert_eq!(parse_reference("CASE-2026-000042"), Some((2026, 42)));
        assert_eq!(parse_reference("CASE-2026-42"), None);
        assert_eq!(parse_reference("case-2026-000042"), None);
        assert_eq!(parse_reference("CASE-2026-00004x"), None);
    }

    proptest! {
        #[test]
        fn references_parse_back(year in 2000i32..2100, n in 1i64..100_000_000) {
            prop_assert_eq!(parse_reference(&reference(year, n)), Some((year, n)));
        }
    }
}
