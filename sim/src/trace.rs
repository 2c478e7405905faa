//! The human-readable trace of a simulation: one line per event, stamped with simulated time.

use std::fmt::Display;

/// At most this many lines are kept; a trace that would grow past it ends with a note instead.
pub const TRACE_LINES_MAX: usize = 100_000;

/// What happened, in order: `[t=<ms>] <actor>: <what>`, time counted from the world's start.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Trace {
    lines: Vec<String>,
    truncated: bool,
}

impl Trace {
    /// Records one event at `elapsed_ms` after the start.
    pub fn record(&mut self, elapsed_ms: u64, actor: &str, what: impl Display) {
        if self.lines.len() >= TRACE_LINES_MAX {
            self.truncated = true;
            return;
        }
        self.lines.push(format!("[t={elapsed_ms}] {actor}: {what}"));
    }

    /// The lines recorded.
    #[must_use]
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The whole trace, one event per line.
    #[must_use]
    pub fn render(&self) -> String {
        let mut text = self.lines.join("\n");
        text.push('\n');
        if self.truncated {
            text.push_str(&format!("(trace cut at {TRACE_LINES_MAX} lines)\n"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::{TRACE_LINES_MAX, Trace};

    #[test]
    fn lines_are_stamped_and_bounded() {
        let mut trace = Trace::default();
        trace.record(5, "app", "hello");
        assert_eq!(trace.render(), "[t=5] app: hello\n");
        for _ in 0..TRACE_LINES_MAX {
            trace.record(6, "app", "more");
        }
        assert_eq!(trace.lines().len(), TRACE_LINES_MAX);
        assert!(trace.render().ends_with("(trace cut at 100000 lines)\n"));
    }
}
