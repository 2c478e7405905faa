//! FakeClock: wall time that follows tokio time, so it is virtual wherever tokio time is.

use crate::core::time::Millis;
use crate::ports::Clock;

/// Wall time that follows tokio time from a fixed start: virtual when tokio time is paused.
#[derive(Debug)]
pub struct FakeClock {
    start: Millis,
    origin: tokio::time::Instant,
}

impl FakeClock {
    /// A clock reading `start` now.
    #[must_use]
    pub fn starting_at(start: Millis) -> Self {
        FakeClock {
            start,
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Millis {
        let elapsed = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.start.plus(elapsed)
    }
}
