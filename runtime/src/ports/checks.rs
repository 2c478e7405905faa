//! Running a check: a command line the coordinator required before a sub-task lands, run by
//! Baton itself in the task's worktree, bounded in time and in the output it keeps.

use std::path::PathBuf;

use super::BoxFuture;

/// The end of a check's output that is kept (the rest is read and dropped): what a report shows
/// of a failure.
pub const CHECK_OUTPUT_TAIL_BYTES: usize = 16 * 1024;
/// Wait between asking a check that outlived its limit to end (SIGTERM to its process group) and
/// SIGKILL.
pub const CHECK_KILL_GRACE_MS: u64 = 2_000;

/// A check to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRequest {
    /// Where it runs: the task's worktree.
    pub dir: PathBuf,
    /// The command line, run by `/bin/sh -c`.
    pub command: String,
    /// How long it may run before it is killed.
    pub timeout_ms: u64,
}

/// How a check ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckEnd {
    /// It exited with this status.
    Exited(i32),
    /// A signal ended it (not Baton's).
    Signalled(i32),
    /// It ran past its limit and was killed.
    TimedOut,
    /// It could not be started, and why.
    NotStarted(String),
}

/// What a check did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRun {
    /// How it ended.
    pub end: CheckEnd,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
    /// How many bytes it printed (standard output and error together).
    pub output_bytes: u64,
    /// The last [`CHECK_OUTPUT_TAIL_BYTES`] of what it printed, as printed.
    pub tail: Vec<u8>,
}

impl CheckRun {
    /// Whether it passed: it exited with status 0 within its limit.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.end == CheckEnd::Exited(0)
    }
}

/// Runs checks. A check runs with the daemon's environment less Baton's credentials, standard
/// input empty, in a process group of its own, which is ended with it: whatever it started is
/// gone when its run is reported.
pub trait Checks: Send + Sync {
    /// Runs `request` to its end (or its limit).
    fn run(&self, request: CheckRequest) -> BoxFuture<'_, CheckRun>;
}

/// Keeps the last `cap` bytes of a stream handed over in pieces, and counts them all.
#[derive(Debug)]
pub struct Tail {
    kept: std::collections::VecDeque<u8>,
    seen: u64,
    cap: usize,
}

impl Tail {
    /// Nothing seen yet; at most `cap` bytes kept.
    #[must_use]
    pub fn new(cap: usize) -> Self {
        Tail {
            kept: std::collections::VecDeque::new(),
            seen: 0,
            cap,
        }
    }

    /// Takes `bytes`, dropping the oldest kept beyond the cap.
    pub fn push(&mut self, bytes: &[u8]) {
        self.seen += bytes.len() as u64;
        let bytes = &bytes[bytes.len().saturating_sub(self.cap)..];
        let overflow = (self.kept.len() + bytes.len()).saturating_sub(self.cap);
        self.kept.drain(..overflow);
        self.kept.extend(bytes);
    }

    /// How many bytes were taken in all.
    #[must_use]
    pub const fn seen(&self) -> u64 {
        self.seen
    }

    /// The bytes kept, oldest first.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.kept.into()
    }
}

#[cfg(test)]
mod tests {
    use super::Tail;

    #[test]
    fn a_tail_keeps_the_last_bytes_and_counts_them_all() {
        let mut tail = Tail::new(4);
        for piece in [&b"ab"[..], b"", b"cdefg", b"h"] {
            tail.push(piece);
        }
        assert_eq!(tail.seen(), 8);
        assert_eq!(tail.into_bytes(), b"efgh");
        let mut whole = Tail::new(16);
        whole.push(b"short");
        assert_eq!(whole.into_bytes(), b"short");
    }
}
