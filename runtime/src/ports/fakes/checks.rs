//! FakeChecks: checks that do what a rule for their command line says, in tokio time (virtual
//! under a paused clock and in the simulator).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use super::lock;
use crate::ports::{
    BoxFuture, CHECK_OUTPUT_TAIL_BYTES, CheckEnd, CheckRequest, CheckRun, Checks, Tail,
};

/// Runs a [`FakeChecks`] remembers, the oldest dropped beyond this many.
pub const FAKE_CHECK_RUNS_MAX: usize = 1_024;

/// What a check with a given command line does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckRule {
    /// The status it exits with.
    pub exit: i32,
    /// What it prints.
    pub output: String,
    /// Bytes it prints after that (counted, not held: a flood costs no memory).
    pub flood_bytes: u64,
    /// How long it runs, in milliseconds.
    pub duration_ms: u64,
    /// Whether it runs until it is killed.
    pub hang: bool,
}

/// Checks by rule. A command line without a rule is not found by the shell: it exits with status
/// 127 at once, as `/bin/sh -c` does.
#[derive(Debug, Default)]
pub struct FakeChecks {
    rules: Mutex<BTreeMap<String, CheckRule>>,
    runs: Mutex<Vec<CheckRequest>>,
}

impl FakeChecks {
    /// Checks whose command line `command` does what `rule` says.
    pub fn rule(&self, command: &str, rule: CheckRule) {
        lock(&self.rules).insert(command.to_owned(), rule);
    }

    /// The checks run so far, oldest first (the last [`FAKE_CHECK_RUNS_MAX`]).
    #[must_use]
    pub fn runs(&self) -> Vec<CheckRequest> {
        lock(&self.runs).clone()
    }
}

impl Checks for FakeChecks {
    fn run(&self, request: CheckRequest) -> BoxFuture<'_, CheckRun> {
        let rule = lock(&self.rules).get(&request.command).cloned();
        {
            let mut runs = lock(&self.runs);
            if runs.len() == FAKE_CHECK_RUNS_MAX {
                runs.remove(0);
            }
            runs.push(request.clone());
        }
        Box::pin(async move {
            let rule = rule.unwrap_or_else(|| CheckRule {
                exit: 127,
                output: format!("sh: 1: {}: not found\n", request.command),
                ..CheckRule::default()
            });
            let timed_out = rule.hang || rule.duration_ms > request.timeout_ms;
            let ran = if timed_out {
                request.timeout_ms
            } else {
                rule.duration_ms
            };
            crate::time::sleep(Duration::from_millis(ran)).await;
            let mut tail = Tail::new(CHECK_OUTPUT_TAIL_BYTES);
            tail.push(rule.output.as_bytes());
            // A flood's end is all that is kept: only that much is made.
            let flood = usize::try_from(rule.flood_bytes).unwrap_or(usize::MAX);
            let made = flood.min(CHECK_OUTPUT_TAIL_BYTES);
            tail.push(&vec![b'y'; made]);
            CheckRun {
                end: if timed_out {
                    CheckEnd::TimedOut
                } else {
                    CheckEnd::Exited(rule.exit)
                },
                duration_ms: ran,
                output_bytes: tail.seen() + (rule.flood_bytes - made as u64),
                tail: tail.into_bytes(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{CheckRule, FakeChecks};
    use crate::ports::{CHECK_OUTPUT_TAIL_BYTES, CheckEnd, CheckRequest, Checks};

    fn request(command: &str, timeout_ms: u64) -> CheckRequest {
        CheckRequest {
            dir: "/repo/.worktrees/t".into(),
            command: command.into(),
            timeout_ms,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_fake_check_does_what_its_rule_says_in_virtual_time() {
        let checks = FakeChecks::default();
        let fails = CheckRule {
            exit: 2,
            output: "1 failed\n".into(),
            duration_ms: 4_000,
            ..CheckRule::default()
        };
        checks.rule("cargo test", fails);
        checks.rule(
            "sleep",
            CheckRule {
                hang: true,
                ..CheckRule::default()
            },
        );
        checks.rule(
            "flood",
            CheckRule {
                flood_bytes: 50_000_000,
                ..CheckRule::default()
            },
        );
        let start = tokio::time::Instant::now();
        let failed = checks.run(request("cargo test", 60_000)).await;
        assert_eq!(
            (failed.end, failed.duration_ms),
            (CheckEnd::Exited(2), 4_000)
        );
        assert_eq!(failed.tail, b"1 failed\n");
        assert_eq!(start.elapsed().as_millis(), 4_000);
        let hung = checks.run(request("sleep", 2_000)).await;
        assert_eq!((hung.end, hung.duration_ms), (CheckEnd::TimedOut, 2_000));
        let flood = checks.run(request("flood", 2_000)).await;
        assert_eq!(flood.output_bytes, 50_000_000);
        assert_eq!(flood.tail.len(), CHECK_OUTPUT_TAIL_BYTES);
        let unknown = checks.run(request("make check", 2_000)).await;
        assert_eq!(unknown.end, CheckEnd::Exited(127));
        assert_eq!(unknown.tail, b"sh: 1: make check: not found\n");
        assert_eq!(checks.runs().len(), 4);
    }
}
