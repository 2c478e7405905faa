//! Time as a value. The core never reads a clock: callers pass `now` in.
//!
//! [`Millis`] counts milliseconds from an origin chosen by the caller (the engine uses its
//! `Clock` port, the simulator its virtual clock, a replay the recording's first event). Only
//! differences between two values of the same origin carry meaning.

use std::fmt;

/// A point in time, in milliseconds since a caller-chosen origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub u64);

impl Millis {
    /// This point plus `ms` milliseconds, saturating at the end of time.
    #[must_use]
    pub const fn plus(self, ms: u64) -> Self {
        Millis(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self`; zero if `earlier` is later.
    #[must_use]
    pub const fn since(self, earlier: Millis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl Millis {
    /// This point as an ISO-8601 UTC timestamp with milliseconds (`2023-11-14T22:13:20.000Z`),
    /// taking it as milliseconds since the Unix epoch (the `Clock` port's origin).
    #[must_use]
    pub fn iso8601(self) -> String {
        let (days, ms_of_day) = (self.0 / 86_400_000, self.0 % 86_400_000);
        // Civil date from days since 1970-01-01 (the proleptic Gregorian calendar, in 400-year
        // eras of 146,097 days).
        let z = days + 719_468;
        let era = z / 146_097;
        let day_of_era = z % 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let mp = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = year_of_era + era * 400 + u64::from(month <= 2);
        let (h, m, s, ms) = (
            ms_of_day / 3_600_000,
            ms_of_day / 60_000 % 60,
            ms_of_day / 1_000 % 60,
            ms_of_day % 1_000,
        );
        if year > 9_999 {
            return format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z");
        }
        // Digits written in place: the REST list writes a time per task, and `format!` with
        // seven padded numbers was a quarter of its cost (issue 23).
        let mut text = *b"0000-00-00T00:00:00.000Z";
        for (at, width, value) in [
            (0, 4, year),
            (5, 2, month),
            (8, 2, day),
            (11, 2, h),
            (14, 2, m),
            (17, 2, s),
            (20, 3, ms),
        ] {
            let mut value = value;
            for digit in text[at..at + width].iter_mut().rev() {
                *digit = b'0' + (value % 10) as u8;
                value /= 10;
            }
        }
        text.iter().map(|&b| char::from(b)).collect()
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}s", self.0 / 1000, self.0 % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::Millis;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        assert_eq!(Millis(u64::MAX - 1).plus(5), Millis(u64::MAX));
        assert_eq!(Millis(3).since(Millis(10)), 0);
        assert_eq!(Millis(10).since(Millis(3)), 7);
    }

    #[test]
    fn iso8601_gives_the_utc_calendar_time() {
        assert_eq!(Millis(0).iso8601(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Millis(1_700_000_000_123).iso8601(),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            Millis(951_782_400_000).iso8601(),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            Millis(4_107_542_399_999).iso8601(),
            "2100-02-28T23:59:59.999Z"
        );
        assert_eq!(
            Millis(253_402_300_800_000).iso8601(),
            "10000-01-01T00:00:00.000Z",
            "past year 9999, more digits"
        );
    }

    #[test]
    fn displays_as_seconds_with_millisecond_precision() {
        assert_eq!(Millis(1_234).to_string(), "1.234s");
        assert_eq!(Millis(5).to_string(), "0.005s");
    }
}
