//! The detector's public vocabulary: what it is told ([`Profile`], [`DetectorConfig`]) and what
//! it answers ([`Readiness`], [`Assessment`], [`TerminalQuery`] with the reply it is owed).

use std::fmt;
use std::str::FromStr;

use super::{ECHO_GUARD_MS, PROMPT_STABLE_MS, QUIET_PERIOD_MS_DEFAULT};
use crate::core::state::Attention;
use crate::core::time::Millis;

/// What kind of program runs in the terminal: decides which prompt and phrases are recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Profile {
    /// Claude Code: `❯` input line, or vim mode's `-- INSERT --`.
    Claude,
    /// Codex CLI: `›` input line.
    Codex,
    /// Gemini CLI: `>` input line, or `> Type your message`.
    Gemini,
    /// An interactive shell: the last line ends in `❯`, `›` or `[y/n]`, in `$` and white space,
    /// or in `$`, `%` or `#` alone or after white space.
    Shell,
    /// Any other CLI: no prompt glyph; idle after a quiet period.
    Generic,
}

impl Profile {
    /// Every profile, in a stable order.
    pub const ALL: [Profile; 5] = [
        Profile::Claude,
        Profile::Codex,
        Profile::Gemini,
        Profile::Shell,
        Profile::Generic,
    ];

    /// The profile's name as users type it.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Profile::Claude => "claude",
            Profile::Codex => "codex",
            Profile::Gemini => "gemini",
            Profile::Shell => "shell",
            Profile::Generic => "generic",
        }
    }

    /// Full-screen agents draw frames in place, read off the grid, and redraw their input box
    /// right after a prompt is submitted, so a prompt seen then proves nothing; line-oriented
    /// programs print output and a fresh prompt, read off the text window.
    pub(super) const fn full_screen(self) -> bool {
        matches!(self, Profile::Claude | Profile::Codex | Profile::Gemini)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A profile name that is not one of [`Profile::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown profile {0:?}: expected one of claude, codex, gemini, shell, generic")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|profile| profile.name() == name)
            .ok_or_else(|| UnknownProfile(name.to_owned()))
    }
}

/// What the screen shows, judged from the text alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Readiness {
    /// The profile's prompt is on screen and nothing blocks it.
    Ready,
    /// A busy indicator is on screen (it wins over a visible prompt).
    Busy,
    /// Start-up: the model or the MCP servers are loading.
    Starting,
    /// A screen that waits for a human: a permission prompt, a menu, a dialog, a sign-in.
    Attention(Attention),
    /// Nothing recognisable.
    NoPrompt,
}

impl Readiness {
    /// The name used in traces and reports.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Readiness::Ready => "ready",
            Readiness::Busy => "busy",
            Readiness::Starting => "starting",
            Readiness::Attention(Attention::Permission) => "attention:permission",
            Readiness::Attention(Attention::Question) => "attention:question",
            Readiness::Attention(Attention::Dialog) => "attention:dialog",
            Readiness::Attention(Attention::SignIn) => "attention:sign_in",
            Readiness::Attention(Attention::Error) => "attention:error",
            Readiness::Attention(Attention::UnrecognisedScreen) => "attention:unrecognised_screen",
            Readiness::NoPrompt => "no_prompt",
        }
    }

    /// Whether the screen blocks typing however long it stands: busy, starting, or waiting for
    /// a human.
    #[must_use]
    pub const fn blocks(self) -> bool {
        matches!(
            self,
            Readiness::Busy | Readiness::Starting | Readiness::Attention(_)
        )
    }
}

impl fmt::Display for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A question the program asked the terminal; it may block until the reply arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TerminalQuery {
    /// DSR 6 (`ESC[6n`): where is the cursor?
    CursorPosition,
    /// DSR 5 (`ESC[5n`): are you well?
    DeviceStatus,
    /// DA1 (`ESC[c`): what kind of terminal are you?
    PrimaryAttributes,
    /// DA2 (`ESC[>c`): which version?
    SecondaryAttributes,
}

impl TerminalQuery {
    /// The bytes a terminal sends back. The cursor is reported home: the detector does not
    /// track it, and agents only wait for an answer, not a particular one.
    #[must_use]
    pub const fn reply(self) -> &'static [u8] {
        match self {
            TerminalQuery::CursorPosition => b"\x1b[1;1R",
            TerminalQuery::DeviceStatus => b"\x1b[0n",
            // A VT220 with ANSI colour, as many emulators answer.
            TerminalQuery::PrimaryAttributes => b"\x1b[?62;22c",
            TerminalQuery::SecondaryAttributes => b"\x1b[>1;10;0c",
        }
    }

    /// The name used in traces and reports.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            TerminalQuery::CursorPosition => "cursor_position",
            TerminalQuery::DeviceStatus => "device_status",
            TerminalQuery::PrimaryAttributes => "primary_attributes",
            TerminalQuery::SecondaryAttributes => "secondary_attributes",
        }
    }
}

/// Tunable settings of one detector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetectorConfig {
    /// Which prompt and phrases to recognise.
    pub profile: Profile,
    /// Idle after this long without output (echo aside); `None` relies on the prompt alone.
    pub quiet_period_ms: Option<u64>,
    /// See [`PROMPT_STABLE_MS`].
    pub prompt_stable_ms: u64,
    /// See [`ECHO_GUARD_MS`].
    pub echo_guard_ms: u64,
}

impl DetectorConfig {
    /// The defaults for `profile`: only the generic profile uses a quiet period.
    #[must_use]
    pub const fn for_profile(profile: Profile) -> Self {
        let quiet_period_ms = match profile {
            Profile::Generic => Some(QUIET_PERIOD_MS_DEFAULT),
            _ => None,
        };
        DetectorConfig {
            profile,
            quiet_period_ms,
            prompt_stable_ms: PROMPT_STABLE_MS,
            echo_guard_ms: ECHO_GUARD_MS,
        }
    }
}

/// The detector's judgement at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Assessment {
    /// What the screen shows.
    pub readiness: Readiness,
    /// Whether a prompt may be typed now.
    pub idle: bool,
    /// When `idle` may turn true without new output (stability reached, echo guard over, quiet
    /// period over); `None` if only new output can change it.
    pub recheck_at: Option<Millis>,
}
