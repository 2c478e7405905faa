//! The human-readable trace of a simulation: one line per event, stamped with simulated time.

use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// At most this many lines are kept; a trace that would grow past it ends with a note instead.
pub const TRACE_LINES_MAX: usize = 100_000;

/// What happened, in order: `[t=<ms>] <actor>: <what>`, time counted from the world's start.
///
/// Lines are kept in the order of their times, and in the order they were recorded within one
/// millisecond: hosts run one after another within a simulation step, so a host may record a
/// line stamped earlier than one another host recorded before it in the same step.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Trace {
    lines: Vec<(u64, String)>,
    truncated: bool,
}

impl Trace {
    /// Records one event at `elapsed_ms` after the start.
    pub fn record(&mut self, elapsed_ms: u64, actor: &str, what: impl Display) {
        if self.lines.len() >= TRACE_LINES_MAX {
            self.truncated = true;
            return;
        }
        let line = format!("[t={elapsed_ms}] {actor}: {what}");
        // Usually the last; a line of another host's earlier millisecond goes before later ones.
        let at = self.lines.partition_point(|(t, _)| *t <= elapsed_ms);
        self.lines.insert(at, (elapsed_ms, line));
    }

    /// The lines recorded, in time order.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().map(|(_, line)| line.as_str())
    }

    /// How many lines are stamped later than `ms`.
    #[must_use]
    pub fn later_than(&self, ms: u64) -> usize {
        self.lines.len() - self.lines.partition_point(|(t, _)| *t <= ms)
    }

    /// How many lines were recorded.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether nothing was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The whole trace, one event per line.
    #[must_use]
    pub fn render(&self) -> String {
        let mut text = self.lines().collect::<Vec<_>>().join("\n");
        text.push('\n');
        if self.truncated {
            text.push_str(&format!("(trace cut at {TRACE_LINES_MAX} lines)\n"));
        }
        text
    }
}

/// A handle that several actors of one world record through, stamping simulated time: the
/// simulation's own clock inside any of its hosts (so lines from every host agree), and the
/// time the driving loop last set outside them.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    trace: Arc<Mutex<Trace>>,
    outside_ms: Arc<AtomicU64>,
}

impl Recorder {
    /// A recorder with an empty trace; time zero is the simulation's start.
    #[must_use]
    pub fn new() -> Self {
        Recorder::default()
    }

    /// Simulated milliseconds since the simulation started.
    #[must_use]
    pub fn elapsed_ms(&self) -> u64 {
        turmoil::sim_elapsed().map_or_else(
            || self.outside_ms.load(Ordering::Relaxed),
            |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        )
    }

    /// Sets the time of lines recorded outside the simulation's hosts (by its driving loop).
    pub fn set_outside_ms(&self, ms: u64) {
        self.outside_ms.store(ms, Ordering::Relaxed);
    }

    /// Records an event of `actor` now.
    pub fn record(&self, actor: &str, what: impl Display) {
        let at = self.elapsed_ms();
        self.trace
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(at, actor, what);
    }

    /// How many lines so far are stamped later than `ms`.
    #[must_use]
    pub fn later_than(&self, ms: u64) -> usize {
        self.trace
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .later_than(ms)
    }

    /// The trace so far.
    #[must_use]
    pub fn snapshot(&self) -> Trace {
        self.trace
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::{TRACE_LINES_MAX, Trace};

    #[test]
    fn a_line_stamped_earlier_goes_before_later_ones() {
        let mut trace = Trace::default();
        trace.record(5, "daemon", "a");
        trace.record(9, "daemon", "b");
        trace.record(7, "scenario", "c");
        trace.record(9, "scenario", "d");
        assert_eq!(
            trace.render(),
            "[t=5] daemon: a\n[t=7] scenario: c\n[t=9] daemon: b\n[t=9] scenario: d\n"
        );
    }

    #[test]
    fn lines_are_stamped_and_bounded() {
        let mut trace = Trace::default();
        trace.record(5, "app", "hello");
        assert_eq!(trace.render(), "[t=5] app: hello\n");
        for _ in 0..TRACE_LINES_MAX {
            trace.record(6, "app", "more");
        }
        assert_eq!(trace.len(), TRACE_LINES_MAX);
        assert!(trace.render().ends_with("(trace cut at 100000 lines)\n"));
    }
}
