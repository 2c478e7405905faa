//! `baton detect`: replays a terminal recording through the prompt detector and reports every
//! change of its judgement. This is how a terminal recording becomes a bug report.
//!
//! Two inputs are understood, read by [`crate::agents::recording`]: an asciinema cast (v2,
//! absolute times; or v3, intervals), whose output events are fed one by one at their times, and
//! raw bytes (`script` output, a PTY dump), fed a byte at a time so that every change is placed
//! at its exact offset. Raw bytes carry no time, so their report has readiness only; a cast's
//! report also says when the agent would be idle (stability, quiet period), including changes
//! that happen between two events.

use std::fmt::Write as _;

use crate::agents::recording::Recording;
use crate::core::detector::{Detector, Profile, Readiness, TerminalQuery};
use crate::core::time::Millis;
use crate::engine::{AGENT_COLS, AGENT_ROWS};

/// Largest recording `baton detect` reads.
pub const RECORDING_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// One change in the detector's judgement, or a query the program made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// When (casts only).
    pub at: Option<Millis>,
    /// Bytes fed so far.
    pub offset: u64,
    /// What changed.
    pub what: ChangeKind,
}

/// What a [`Change`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// The judgement is now this (`idle` is `None` for raw recordings).
    State {
        /// What the screen shows.
        readiness: Readiness,
        /// Whether a prompt may be typed.
        idle: Option<bool>,
    },
    /// The program asked the terminal this; the PTY host owes the reply.
    Query(TerminalQuery),
}

/// What a replay found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replay {
    /// Every change, in order.
    pub changes: Vec<Change>,
    /// The screen as the detector read it at the end (see `Detector::screen_text`).
    pub screen: String,
    /// The grid's size (columns, rows), for profiles read off a grid.
    pub size: Option<(u16, u16)>,
}

/// Replays `recording` through a fresh detector for `profile` and lists every change. A raw
/// recording is read at the daemon's terminal size ([`AGENT_COLS`] by [`AGENT_ROWS`]), a cast at
/// its header's (resize events are not followed).
#[must_use]
pub fn replay(recording: &Recording, profile: Profile) -> Replay {
    let mut changes = Vec::new();
    let mut detector = Detector::new(profile, Millis(0));
    let (cols, rows) = match recording {
        Recording::Cast {
            size: Some(size), ..
        } => *size,
        _ => (AGENT_COLS, AGENT_ROWS),
    };
    detector.resize(cols, rows);
    match recording {
        Recording::Raw(bytes) => {
            let mut last = None;
            for (index, byte) in bytes.iter().enumerate() {
                detector.feed(Millis(0), std::slice::from_ref(byte));
                let offset = index as u64 + 1;
                push_queries(&mut detector, None, offset, &mut changes);
                let readiness = detector.readiness();
                if last != Some(readiness) {
                    last = Some(readiness);
                    changes.push(Change {
                        at: None,
                        offset,
                        what: ChangeKind::State {
                            readiness,
                            idle: None,
                        },
                    });
                }
            }
        }
        Recording::Cast { events, .. } => {
            let start = Millis(0);
            let mut last = None;
            let mut offset = 0;
            let mut note =
                |detector: &Detector, at: Millis, offset: u64, changes: &mut Vec<Change>| {
                    let assessment = detector.assess(at);
                    let state = (assessment.readiness, assessment.idle);
                    if last != Some(state) {
                        last = Some(state);
                        let what = ChangeKind::State {
                            readiness: state.0,
                            idle: Some(state.1),
                        };
                        changes.push(Change {
                            at: Some(at),
                            offset,
                            what,
                        });
                    }
                    assessment.recheck_at
                };
            let mut recheck = note(&detector, start, 0, &mut changes);
            for event in events {
                while let Some(at) = recheck.filter(|&at| at <= event.at) {
                    recheck = note(&detector, at, offset, &mut changes).filter(|&next| next > at);
                }
                detector.feed(event.at, &event.data);
                offset += event.data.len() as u64;
                push_queries(&mut detector, Some(event.at), offset, &mut changes);
                recheck = note(&detector, event.at, offset, &mut changes);
            }
            while let Some(at) = recheck {
                recheck = note(&detector, at, offset, &mut changes).filter(|&next| next > at);
            }
        }
    }
    Replay {
        changes,
        screen: detector.screen_text(),
        size: detector.size(),
    }
}

/// Renders the screen a replay ended on, as `baton detect --screen` prints it after the report.
#[must_use]
pub fn render_screen(replay: &Replay) -> String {
    let mut out = match replay.size {
        Some((cols, rows)) => format!("# the screen at the end ({cols}x{rows})\n"),
        None => "# the text at the end\n".to_owned(),
    };
    for line in replay.screen.lines() {
        let _ = writeln!(out, "| {}", crate::core::text::terminal_safe(line));
    }
    out
}

fn push_queries(
    detector: &mut Detector,
    at: Option<Millis>,
    offset: u64,
    changes: &mut Vec<Change>,
) {
    while let Some(query) = detector.poll_query() {
        changes.push(Change {
            at,
            offset,
            what: ChangeKind::Query(query),
        });
    }
}

/// Renders a replay as the text `baton detect` prints.
#[must_use]
pub fn render(recording: &Recording, profile: Profile, changes: &[Change]) -> String {
    let mut out = String::new();
    let (kind, bytes, events) = match recording {
        Recording::Raw(bytes) => ("raw bytes".to_owned(), bytes.len(), None),
        Recording::Cast {
            version, events, ..
        } => (
            format!("asciinema v{version}"),
            events.iter().map(|event| event.data.len()).sum(),
            Some(events.len()),
        ),
    };
    let events = events.map_or(String::new(), |n| format!(", {n} output events"));
    let _ = writeln!(out, "# profile {profile}, {kind}{events}, {bytes} bytes");
    let timed = matches!(recording, Recording::Cast { .. });
    if timed {
        let _ = writeln!(
            out,
            "{:>10}  {:>9}  {:<18}  idle",
            "time", "offset", "readiness"
        );
    } else {
        let _ = writeln!(out, "{:>9}  readiness", "offset");
    }
    for change in changes {
        if let Some(at) = change.at {
            let _ = write!(out, "{:>10}  ", at.to_string());
        }
        let _ = write!(out, "{:>9}  ", change.offset);
        match change.what {
            ChangeKind::State {
                readiness,
                idle: Some(idle),
            } => {
                let _ = writeln!(
                    out,
                    "{:<18}  {}",
                    readiness.name(),
                    if idle { "yes" } else { "no" }
                );
            }
            ChangeKind::State {
                readiness,
                idle: None,
            } => {
                let _ = writeln!(out, "{}", readiness.name());
            }
            ChangeKind::Query(query) => {
                let reply = String::from_utf8_lossy(query.reply()).replace('\u{1b}', "ESC");
                let _ = writeln!(out, "query {} (reply {reply})", query.name());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Change, ChangeKind, replay};
    use crate::agents::recording::{Format, parse_recording};
    use crate::core::detector::{Profile, Readiness};
    use crate::core::time::Millis;

    #[test]
    fn a_cast_reports_idle_once_the_prompt_is_stable_even_between_events() {
        let cast =
            "{\"version\": 2}\n[1.0, \"o\", \"working\\r\\n\"]\n[2.0, \"o\", \"\\u276f \"]\n";
        let recording = parse_recording(cast.as_bytes(), Format::Auto).unwrap();
        let states: Vec<_> = replay(&recording, Profile::Claude)
            .changes
            .into_iter()
            .map(|Change { at, what, .. }| (at, what))
            .collect();
        let state = |readiness, idle| ChangeKind::State {
            readiness,
            idle: Some(idle),
        };
        assert_eq!(
            states,
            [
                (Some(Millis(0)), state(Readiness::NoPrompt, false)),
                (Some(Millis(2_000)), state(Readiness::Ready, false)),
                (Some(Millis(2_050)), state(Readiness::Ready, true)),
            ]
        );
    }
}
