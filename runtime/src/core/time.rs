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
    fn displays_as_seconds_with_millisecond_precision() {
        assert_eq!(Millis(1_234).to_string(), "1.234s");
        assert_eq!(Millis(5).to_string(), "0.005s");
    }
}
