//! The prompt detector: is the agent in this terminal waiting for a prompt?
//!
//! A sans-IO state machine fed with the PTY's output in chunks of any size
//! ([`Detector::feed`]), with time passed in. It answers three questions:
//!
//! - **What does the screen show?** [`Readiness`]: ready, busy, starting up or in a dialog, or no
//!   prompt, per agent [`Profile`] (see `classify`). This depends only on the bytes so far, never
//!   on how they were chunked.
//! - **Is it safe to type now?** [`Assessment::idle`]: the prompt has been on screen for
//!   [`PROMPT_STABLE_MS`], no earlier prompt can be mistaken for a new one (sending a prompt clears
//!   the window and raises the echo guard), or, for profiles without a prompt glyph, the terminal
//!   has been quiet for the profile's quiet period. [`Assessment::recheck_at`] says when the answer
//!   may change with no new output, so the caller can set one timer instead of polling.
//! - **Does the program wait for the terminal?** Cursor-position and device-attribute queries are
//!   queued as [`TerminalQuery`] values ([`Detector::poll_query`]); the PTY host writes
//!   [`TerminalQuery::reply`] back. Claude Code stalls for about a minute at start-up without it.
//!
//! Two screen models, by profile. Full-screen agents (Claude, Codex, Gemini) are read off a grid
//! of the terminal's size (`grid`: what a terminal would show, cell by cell, so a frame redrawn
//! in place replaces the one before); the grid follows the terminal's size
//! ([`Detector::resize`], [`SCREEN_COLS_DEFAULT`] by [`SCREEN_ROWS_DEFAULT`] until told). Line
//! programs (shell, generic) are read off a window of recent text (`window`), which survives
//! scrolling and does not depend on the size.
//!
//! Memory is bounded: the grid ([`SCREEN_COLS_MAX`] by [`SCREEN_ROWS_MAX`] cells and its text) or
//! the text window ([`TEXT_WINDOW_BYTES`] visible, in a buffer of eight times that), the query queue
//! ([`QUERIES_PENDING_MAX`]) and the echo text (the last [`TEXT_WINDOW_BYTES`] of the prompt and
//! of a chunk's text); the parser keeps a few integers. No input panics.
//!
//! Layout: `vt` parses bytes into text and terminal operations, `screen` takes them into the
//! screen model of the profile (`grid` or `window`) and queues the queries, `classify` reads a
//! frame's readiness from its text, `osc` what OSC strings report; `types` holds the public
//! vocabulary (profiles, settings, readiness, assessments, queries) and `text` the line model's
//! text as strings (for readers, and normalised for the echo guard); this module adds time
//! (stability, echo guard, quiet period).

mod classify;
mod grid;
mod osc;
mod screen;
mod text;
mod types;
mod vt;
mod window;

#[cfg(test)]
mod tests;

use crate::core::state::{AgentState, Evidence, ScreenReading};
use crate::core::time::Millis;

pub use classify::{BLOCKER_CHARS, SHELL_LINE_CHARS, TAIL_CHARS};
pub use grid::{SCREEN_COLS_MAX, SCREEN_ROWS_MAX};
use screen::{Mark, Model, Screen};
use text::normalise_into;
pub use text::plain_text;
pub use types::{Assessment, DetectorConfig, Profile, Readiness, TerminalQuery, UnknownProfile};

/// The grid's width until the detector is told the terminal's size.
pub const SCREEN_COLS_DEFAULT: u16 = 120;
/// The grid's height until the detector is told the terminal's size.
pub const SCREEN_ROWS_DEFAULT: u16 = 40;

/// Bytes of recent screen text kept. Large enough for the bottom of a full-screen frame with
/// box drawing (three bytes a character) and padding; small enough to keep per agent.
pub const TEXT_WINDOW_BYTES: usize = 8_192;
/// How long a prompt must stay on screen before typing into it: a frame drawn half-way shows a
/// prompt for a moment before the busy line under it.
pub const PROMPT_STABLE_MS: u64 = 50;
/// After a prompt is sent, how long its echo is swallowed and a prompt on screen is not trusted
/// (unless the agent showed it is busy first).
pub const ECHO_GUARD_MS: u64 = 2_000;
/// Quiet period after which an agent without a prompt glyph counts as idle.
pub const QUIET_PERIOD_MS_DEFAULT: u64 = 5_000;
/// Terminal queries waiting for a reply; more are dropped (and counted) until the host drains.
pub const QUERIES_PENDING_MAX: usize = 32;

/// What a chunk was, seen from the echo guard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Echo {
    /// No guard is up (none, expired or lifted).
    Unguarded,
    /// Its new text is part of the sent prompt: taken back out of the window.
    Swallowed,
    /// It added no visible text (line breaks, modes, colours): neither echo nor reaction.
    Blank,
    /// Anything else: the program's own output.
    Other,
}

/// The window after a prompt was sent.
#[derive(Clone, Debug)]
struct EchoGuard {
    until: Millis,
    /// The prompt, normalised (see [`normalise_into`]): at most its last [`TEXT_WINDOW_BYTES`].
    text: Vec<u8>,
    /// The agent showed it took the prompt: a busy frame or a screen asking its human something;
    /// for line-oriented profiles (shell, generic), also visible output that is not an echo of
    /// the prompt.
    lifted: bool,
}

/// The prompt detector of one terminal. See the module documentation.
#[derive(Clone, Debug)]
pub struct Detector {
    config: DetectorConfig,
    parser: vt::Parser,
    screen: Screen,
    scratch: classify::Scratch,
    readiness: Readiness,
    /// The grid's generation that `readiness` was read from (`None`: the text window, always
    /// read again, or no reading to reuse since a prompt was sent).
    classified: Option<u64>,
    /// When the prompt was first seen in the current unbroken run of ready frames.
    ready_since: Option<Millis>,
    /// When the current run of frames asking a human began (read as such only once it stood
    /// for [`PROMPT_STABLE_MS`], as a prompt is: a frame drawn half-way proves nothing).
    attention_since: Option<Millis>,
    /// Whether the screen ever showed anything (a blank screen is a program still starting).
    shown_anything: bool,
    guard: Option<EchoGuard>,
    /// Last change of the screen text that was not an echo, or the last prompt sent, or the
    /// start.
    last_activity: Millis,
    /// A chunk's new text, normalised, while the echo guard is up (reused, not reallocated).
    echo_scratch: Vec<u8>,
}

impl Detector {
    /// A detector with the defaults of `profile`, started at `now`.
    #[must_use]
    pub fn new(profile: Profile, now: Millis) -> Self {
        Detector::with_config(DetectorConfig::for_profile(profile), now)
    }

    /// A detector with explicit settings, started at `now`.
    #[must_use]
    pub fn with_config(config: DetectorConfig, now: Millis) -> Self {
        Detector {
            config,
            parser: if config.profile.full_screen() {
                vt::Parser::tracking_faint()
            } else {
                vt::Parser::default()
            },
            screen: Screen::new(config.profile),
            scratch: classify::Scratch::default(),
            readiness: Readiness::NoPrompt,
            classified: None,
            ready_since: None,
            attention_since: None,
            shown_anything: false,
            guard: None,
            last_activity: now,
            echo_scratch: Vec::new(),
        }
    }

    /// The settings in force.
    #[must_use]
    pub const fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// Takes in output that arrived at `now`.
    pub fn feed(&mut self, now: Millis, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let guarded = self
            .guard
            .as_ref()
            .is_some_and(|guard| !guard.lifted && now < guard.until);
        let mark = self.screen.mark(guarded);
        self.parser.advance(bytes, &mut self.screen);
        // Activity is a change of the screen text, not any byte: a program toggling its cursor
        // or colours is as quiet as one that prints nothing.
        let changed = self.screen.changed_since(mark);
        let echo = self.swallow_echo(now, mark);
        if changed && echo != Echo::Swallowed {
            self.last_activity = now;
            self.shown_anything = true;
        }
        // A grid whose cells did not change since it was last read reads the same.
        let generation = self.screen.generation();
        if generation.is_none() || generation != self.classified {
            self.readiness =
                classify::classify(self.config.profile, self.screen.frame(), &mut self.scratch);
            self.classified = generation;
        }
        if let Some(guard) = &mut self.guard {
            // Busy, or already asking its human something: either way the agent took the
            // prompt, and an Enter pressed again now would answer its question.
            let reacted = matches!(self.readiness, Readiness::Busy | Readiness::Attention(_))
                || (echo == Echo::Other && !self.config.profile.full_screen());
            guard.lifted |= reacted;
        }
        if self.readiness == Readiness::Ready {
            self.ready_since.get_or_insert(now);
        } else {
            self.ready_since = None;
        }
        if matches!(self.readiness, Readiness::Attention(_)) {
            self.attention_since.get_or_insert(now);
        } else {
            self.attention_since = None;
        }
    }

    /// While the echo guard is up, output whose text is part of the sent prompt is taken back
    /// out of the window. Says what this chunk was, for the guard.
    fn swallow_echo(&mut self, now: Millis, mark: Mark) -> Echo {
        let Some(guard) = &self.guard else {
            return Echo::Unguarded;
        };
        if now >= guard.until || guard.lifted {
            return Echo::Unguarded;
        }
        let Some(added) = self.screen.since(mark) else {
            // Text was erased or rewritten: not an echo of typing.
            return Echo::Other;
        };
        let added_text = &mut self.echo_scratch;
        normalise_into(added, added_text);
        if added_text.is_empty() {
            return Echo::Blank;
        }
        if memchr::memmem::find(&guard.text, added_text).is_none() {
            return Echo::Other;
        }
        self.screen.rewind(mark);
        Echo::Swallowed
    }

    /// Records that a prompt was typed at `now`: forgets the text so far (line programs: no
    /// earlier prompt can be taken for the answer) and raises the echo guard.
    pub fn prompt_sent(&mut self, now: Millis, prompt: &str) {
        self.screen.forget();
        self.readiness = Readiness::NoPrompt;
        self.classified = None;
        self.ready_since = None;
        self.attention_since = None;
        let mut text = Vec::new();
        normalise_into(prompt.as_bytes(), &mut text);
        self.guard = Some(EchoGuard {
            until: now.plus(self.config.echo_guard_ms),
            text,
            lifted: false,
        });
        self.last_activity = now;
    }

    /// Starts over, as for a respawned process: text, modes, queries and timers are reset (the
    /// grid keeps its size).
    pub fn reset(&mut self, now: Millis) {
        let size = self.size();
        *self = Detector::with_config(self.config, now);
        if let Some((cols, rows)) = size {
            self.resize(cols, rows);
        }
    }

    /// Whether its memory is within the bounds: the screen model's and the pending queries'
    /// (for the tests and the fuzz targets).
    #[cfg(test)]
    pub(crate) fn within_bounds(&mut self) -> bool {
        self.screen.within_bounds() && self.screen.queries.len() <= QUERIES_PENDING_MAX
    }

    /// The terminal now has `cols` by `rows` cells: the grid follows (clamped to
    /// [`SCREEN_COLS_MAX`] by [`SCREEN_ROWS_MAX`]). The text window has no size.
    pub fn resize(&mut self, cols: u16, rows: u16) {
        if let Model::Grid { grid, .. } = &mut self.screen.model {
            grid.resize(cols, rows);
        }
    }

    /// The grid's size (columns, rows); `None` for the text window.
    #[must_use]
    pub fn size(&self) -> Option<(u16, u16)> {
        match &self.screen.model {
            Model::Grid { grid, .. } => Some(grid.size()),
            Model::Lines(_) => None,
        }
    }

    /// Whether the agent showed it took the last prompt sent (see the echo guard: a busy frame
    /// or a screen asking its human something; for line programs also output that is not its
    /// echo). True when no prompt was sent.
    #[must_use]
    pub fn prompt_taken(&self) -> bool {
        self.guard.as_ref().is_none_or(|guard| guard.lifted)
    }

    /// What the screen shows now.
    #[must_use]
    pub const fn readiness(&self) -> Readiness {
        self.readiness
    }

    /// When the screen last changed (a prompt sent counts as a change).
    #[must_use]
    pub const fn last_activity(&self) -> Millis {
        self.last_activity
    }

    /// The full judgement at `now`.
    #[must_use]
    pub fn assess(&self, now: Millis) -> Assessment {
        let guard_until = self
            .guard
            .as_ref()
            .filter(|g| !g.lifted && now < g.until)
            .map(|g| g.until);
        let mut recheck_at: Option<Millis> = None;
        let mut idle = false;
        if let Some(since) = self.ready_since {
            let stable_at = since.plus(self.config.prompt_stable_ms);
            let idle_at = guard_until.map_or(stable_at, |until| until.max(stable_at));
            if now >= idle_at {
                idle = true;
            } else {
                recheck_at = Some(idle_at);
            }
        }
        if let Some(quiet) = self.config.quiet_period_ms
            && !idle
            && !self.readiness.blocks()
        {
            // Quiet, and past the echo guard: silence right after a prompt proves nothing.
            let quiet_at = self
                .last_activity
                .plus(quiet)
                .max(guard_until.unwrap_or_default());
            if now >= quiet_at {
                idle = true;
                recheck_at = None;
            } else {
                recheck_at = Some(recheck_at.map_or(quiet_at, |at| at.min(quiet_at)));
            }
        }
        if let Some(since) = self.attention_since {
            let stable_at = since.plus(self.config.prompt_stable_ms);
            if now < stable_at {
                recheck_at = Some(recheck_at.map_or(stable_at, |at| at.min(stable_at)));
            }
        }
        Assessment {
            readiness: self.readiness,
            idle,
            recheck_at,
        }
    }

    /// The screen as evidence of the agent's state at `now` (see `core::state`): at a stable
    /// prompt (or quiet, for profiles with a quiet period) it waits for input; busy is working;
    /// start-up is starting; a screen waiting for a human, once it stood for
    /// [`PROMPT_STABLE_MS`], needs attention. A blank screen says nothing yet. Anything else is
    /// unrecognised for full-screen agents, whose every state has a screen the rules know; a
    /// line program printing output works.
    #[must_use]
    pub fn reading(&self, now: Millis) -> ScreenReading {
        let assessment = self.assess(now);
        if assessment.idle {
            return ScreenReading::Definite(AgentState::WaitingForInput);
        }
        match assessment.readiness {
            Readiness::Ready => ScreenReading::Unsettled,
            Readiness::Busy => ScreenReading::Definite(AgentState::Working),
            Readiness::Starting => ScreenReading::Definite(AgentState::Starting),
            Readiness::Attention(reason) => {
                let stood = self
                    .attention_since
                    .is_some_and(|since| now >= since.plus(self.config.prompt_stable_ms));
                if stood {
                    ScreenReading::Definite(AgentState::NeedsAttention(reason))
                } else {
                    ScreenReading::Unsettled
                }
            }
            // Nothing on screen yet: still starting, however long it takes.
            Readiness::NoPrompt if !self.shown_anything => ScreenReading::Unsettled,
            Readiness::NoPrompt if self.config.profile.full_screen() => {
                ScreenReading::Unrecognised {
                    still_since: self.last_activity,
                }
            }
            Readiness::NoPrompt => ScreenReading::Definite(AgentState::Working),
        }
    }

    /// The state the agent last reported in an OSC string (see `osc`), if it reported one
    /// since the last call: evidence for `core::state` beside [`Detector::reading`].
    pub fn take_osc(&mut self) -> Option<AgentState> {
        self.screen.osc.take()
    }

    /// Gives `evidence` what the terminal says at `now`: the agent's last OSC report, if new,
    /// and the screen's reading.
    pub fn observe_into(&mut self, now: Millis, evidence: &mut Evidence) {
        if let Some(reported) = self.take_osc() {
            evidence.osc(now, reported);
        }
        evidence.screen(now, self.reading(now));
    }

    /// The next query the program is waiting on, oldest first.
    pub fn poll_query(&mut self) -> Option<TerminalQuery> {
        self.screen.queries.pop_front()
    }

    /// Queries dropped because [`QUERIES_PENDING_MAX`] were already waiting.
    #[must_use]
    pub const fn queries_dropped(&self) -> u64 {
        self.screen.queries_dropped
    }

    /// Whether the program turned on bracketed paste (`ESC[?2004h`): prompts should then be
    /// wrapped in `ESC[200~` … `ESC[201~`.
    #[must_use]
    pub const fn bracketed_paste(&self) -> bool {
        self.screen.bracketed_paste
    }

    /// The visible text the detector judges by (for reports and tests).
    #[must_use]
    pub fn screen_text(&self) -> String {
        self.screen.text_now()
    }
}
