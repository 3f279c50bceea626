//! Time is injected (DESIGN.md principle 6): code asks a [`Clock`] instead of the system, so
//! tests move time forward instead of sleeping.
use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

/// A source of the current time, always UTC and truncated to microseconds (the wire precision).
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> OffsetDateTime;
}

/// Truncates to whole microseconds so that what is stored equals what is returned on the wire.
pub fn to_micros(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    let micros = t.microsecond();
    t.replace_microsecond(micros).unwrap_or(t)
}

/// Formats a time for the wire and for text storage: RFC 3339, UTC, exactly six fractional
/// digits and `Z` (`2026-03-01T09:30:00.123456Z`), so that text order is time order.
pub fn wire_time(t: OffsetDateTime) -> String {
    // Written digit by digit into a fixed template: every timestamp on the wire and every log
    // line comes through here (a page of 50 cases holds hundreds), and `format!` with seven
    // padded fields cost about 3,000 instructions, `time`'s formatter 2,000; this is a few
    // hundred. RFC 3339 has four-digit years only: a time before year 0 (`+01:00` on the first
    // day of year 0 reaches it) or after 9999 is written as the first or last instant that
    // fits, so text order stays time order.
    fn put(field: &mut [u8], mut n: u32) {
        for d in field.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
    }
    let t = t.to_offset(time::UtcOffset::UTC);
    if t.year() < 0 {
        return "0000-01-01T00:00:00.000000Z".into();
    }
    if t.year() > 9999 {
        return "9999-12-31T23:59:59.999999Z".into();
    }
    let mut b = *b"0000-00-00T00:00:00.000000Z";
    put(&mut b[0..4], t.year().unsigned_abs());
    put(&mut b[5..7], u8::from(t.month()).into());
    put(&mut b[8..10], t.day().into());
    put(&mut b[11..13], t.hour().into());
    put(&mut b[14..16], t.minute().into());
    put(&mut b[17..19], t.second().into());
    put(&mut b[20..26], t.microsecond());
    String::from_utf8_lossy(&b).into_owned()
}

/// Serialises a time as [`wire_time`] (`#[serde(serialize_with = …)]`).
pub fn serialize_wire_time<S: serde::Serializer>(
    t: &OffsetDateTime,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&wire_time(*t))
}

/// Serialises an optional time as [`wire_time`] or `null`.
pub fn serialize_opt_wire_time<S: serde::Serializer>(
    t: &Option<OffsetDateTime>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&wire_time(*t)),
        None => s.serialize_none(),
    }
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        to_micros(OffsetDateTime::now_utc())
    }
}

/// A clock that only moves when told to. Used by tests and simulations.
#[derive(Debug)]
pub struct ManualClock {
    /// The instant reported by `now`, moved by `advance` and `set`.
    now: Mutex<OffsetDateTime>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            now: Mutex::new(to_micros(start)),
        }
    }
    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now = to_micros(*now + by);
    }
    /// Sets the clock to `t`.
    pub fn set(&self, t: OffsetDateTime) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to_micros(t);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(datetime!(2026-01-01 00:00:00.123456789 UTC));
        assert_eq!(c.now(), datetime!(2026-01-01 00:00:00.123456 UTC));
        c.advance(Duration::hours(25));
        assert_eq!(c.now(), datetime!(2026-01-02 01:00:00.123456 UTC));
    }

    #[test]
    fn wire_time_has_six_digits_and_z() {
        assert_eq!(
            wire_time(datetime!(2026-03-01 09:30:00 UTC)),
            "2026-03-01T09:30:00.000000Z"
        );
        assert_eq!(
            wire_time(datetime!(2026-03-01 10:30:00.5 +01:00)),
            "2026-03-01T09:30:00.500000Z"
        );
        // Every field padded; nanoseconds cut, not rounded (what is stored is what is shown).
        assert_eq!(
            wire_time(datetime!(0999-01-02 03:04:05.123456789 UTC)),
            "0999-01-02T03:04:05.123456Z"
        );
        assert_eq!(
            wire_time(datetime!(2026-12-31 23:59:59.999999999 -00:30)),
            "2027-01-01T00:29:59.999999Z"
        );
        // Before year 0 in UTC: the first instant RFC 3339 can write, still sorting first.
        let early = wire_time(datetime!(0000-01-01 00:00:00 +01:00));
        assert_eq!(early, "0000-01-01T00:00:00.000000Z");
        assert!(early < wire_time(datetime!(0000-01-01 00:00:00.000001 UTC)));
    }

    #[test]
    fn system_clock_is_utc_micros() {
        let t = SystemClock.now();
        assert_eq!(t.offset(), time::UtcOffset::UTC);
        assert_eq!(t.nanosecond() % 1000, 0);
    }
}
