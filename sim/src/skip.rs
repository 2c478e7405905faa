//! Skipping the steps in which nothing can happen, exactly.
//!
//! Turmoil moves every host's clock by [`TICK_MS`] per step (lockstep), and most steps have
//! nothing to do: a host acts only when one of its timers fires, a message reaches it, or a
//! task of another host wakes one of its tasks. So, at a step boundary where the network holds
//! nothing and no host has a woken task that has not run ([`turmoil::Sim::is_quiet`]), the
//! loop runs every step before the one in which the earliest pending timer fires as one
//! ([`turmoil::Sim::skip`]): each host's paused clock moves straight to the end of them, which is
//! what those idle steps would have done. The same events happen at the same simulated times.
//!
//! Timers: every timer the hosts' code makes goes through `baton_runtime::time`, which tells
//! [`Timers`] each deadline while it is pending (`sim/tests/timers_are_told.rs` keeps tokio's own
//! timer functions out of that code). A deadline told in simulated milliseconds rounded down,
//! or told where no host is running (then it counts as now), only makes a skip shorter.
//!
//! Architecture Invariant: a skip changes nothing, or the run fails. If a host acted inside a
//! skipped span anyway (a timer this module was not told of), turmoil reports it as an error
//! ("a timer the simulator did not know"), never silently. `Stepping::Lockstep` runs every
//! step, for comparing traces (`sim/tests/skipping.rs`).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};

use baton_runtime::time::Deadlines;
use tokio::time::Instant;

use crate::world::TICK_MS;

/// How a run moves its simulated time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stepping {
    /// Steps in which nothing can happen are run as one (the module documentation).
    #[default]
    Skip,
    /// Every step is run, one tick each.
    Lockstep,
}

/// The hosts' pending timers, in simulated milliseconds since the simulation began.
#[derive(Debug, Default)]
pub struct Timers {
    /// The key the next timer gets.
    next: Cell<u64>,
    /// Each pending timer's deadline, by key.
    at: RefCell<BTreeMap<u64, u64>>,
    /// The same, ordered by deadline.
    by_time: RefCell<BTreeSet<(u64, u64)>>,
}

impl Timers {
    /// The earliest pending deadline, in simulated milliseconds.
    #[must_use]
    pub fn earliest_ms(&self) -> Option<u64> {
        self.by_time.borrow().first().map(|&(at, _)| at)
    }

    /// How many timers are pending.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.at.borrow().len()
    }
}

impl Deadlines for Timers {
    fn tell(&self, at: Instant) -> u64 {
        // The deadline on the simulation's clock: the running host's elapsed time plus what is
        // left on its own clock. No running host: it counts as due now.
        let at_ms = turmoil::sim_elapsed().map_or(0, |elapsed| {
            let left = at.saturating_duration_since(Instant::now());
            u64::try_from((elapsed + left).as_millis()).unwrap_or(u64::MAX)
        });
        let key = self.next.get();
        self.next.set(key + 1);
        self.at.borrow_mut().insert(key, at_ms);
        self.by_time.borrow_mut().insert((at_ms, key));
        key
    }

    fn forget(&self, key: u64) {
        if let Some(at_ms) = self.at.borrow_mut().remove(&key) {
            self.by_time.borrow_mut().remove(&(at_ms, key));
        }
    }
}

/// How many steps can be run as one from `now_ms` (a step boundary): those that end before
/// the step in which `next_ms` falls (a step covers `(start, start + TICK_MS]`), none if it
/// falls in the next one. `next_ms` is the earliest moment anything is due: a timer, or a
/// moment the loop acts at itself.
#[must_use]
pub fn steps_before(now_ms: u64, next_ms: u64) -> u32 {
    let start = next_ms.saturating_sub(1) / TICK_MS * TICK_MS;
    u32::try_from(start.saturating_sub(now_ms) / TICK_MS).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::steps_before;

    #[test]
    fn only_the_steps_wholly_before_the_one_a_deadline_falls_in_are_skipped() {
        // A step covers (start, start + 5]: a deadline on a boundary falls in the step ending
        // there.
        assert_eq!(steps_before(100, 105), 0);
        assert_eq!(steps_before(100, 110), 1);
        assert_eq!(steps_before(100, 111), 2);
        assert_eq!(steps_before(100, 100), 0);
        assert_eq!(steps_before(100, 0), 0);
        assert_eq!(steps_before(0, 1_000), 199);
    }
}
