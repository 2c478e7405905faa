//! What an agent is doing: one typed state, from every piece of evidence Baton has.
//!
//! Evidence comes from three sources, each an [`Observation`] of a state and the moment it was
//! first seen: the agent's own **hooks** (Claude Code's, Codex's `notify`; reported by
//! `baton hook`), the **OSC** sequences it prints (notifications, progress), and the **screen**
//! (the prompt detector's reading, with how long the screen has stood still). The process itself
//! says when it ended. [`decide`] turns them into one [`Verdict`]: a pure function of the
//! evidence and `now`, so the same evidence always gives the same answer.
//!
//! The rules, in order:
//! 1. An ended process is [`AgentState::Exited`], whatever else was seen.
//! 2. The newest definite observation wins; at the same moment a hook beats OSC, which beats the
//!    screen (the agent's own word over a reading of its pixels). The screen is what covers the
//!    moments hooks cannot see: dialogs before a session starts (trust, sign-in, key approval),
//!    a menu answered by hand, a hook that never came. One exception: a screen that still asks
//!    its human is not overruled by a later hook or OSC word that the agent works (a tool
//!    running beside a permission prompt reports itself while the prompt waits); the screen
//!    moving on ends it.
//! 3. A screen no rule recognises, which has not changed for [`UNRECOGNISED_STILL_MS`] while
//!    nothing newer says the agent works, is [`Attention::UnrecognisedScreen`]: an agent stuck on
//!    a screen Baton does not know must be seen, never taken for busy forever.
//! 4. With no definite evidence yet, the agent is [`AgentState::Starting`].
//!
//! Baton's own actions are evidence too ([`Source::Process`]): a prompt typed means the agent
//! has work, until a source says otherwise.
//!
//! When the winning observation and a definite observation of another source disagree, the
//! verdict names the other one ([`Verdict::disagreement`]) so the shell can log it.

use crate::core::time::Millis;

/// How long a screen that no rule recognises may stand still, while nothing says the agent
/// works, before Baton says it needs attention. Longer than any pause of a working agent's
/// animated screen (spinners and timers redraw every second), short enough that a human hears
/// of a stuck agent within half a minute.
pub const UNRECOGNISED_STILL_MS: u64 = 20_000;

/// Why an agent needs a human.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Attention {
    /// It asks permission to use a tool (run a command, edit a file).
    Permission,
    /// It asks a question, or offers a choice, in a menu.
    Question,
    /// A dialog of the program itself, such as whether to trust the folder.
    Dialog,
    /// It wants its user to sign in, or to approve a key.
    SignIn,
    /// Its turn ended in an error (its model service failed, say).
    Error,
    /// A screen no rule recognises has stood still for [`UNRECOGNISED_STILL_MS`].
    UnrecognisedScreen,
}

impl Attention {
    /// Every reason, in a stable order.
    pub const ALL: [Attention; 6] = [
        Attention::Permission,
        Attention::Question,
        Attention::Dialog,
        Attention::SignIn,
        Attention::Error,
        Attention::UnrecognisedScreen,
    ];

    /// The name used in API results, traces and reports.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Attention::Permission => "permission",
            Attention::Question => "question",
            Attention::Dialog => "dialog",
            Attention::SignIn => "sign_in",
            Attention::Error => "error",
            Attention::UnrecognisedScreen => "unrecognised_screen",
        }
    }

    /// What a human should do, in a few words (for notifications and `baton explain`).
    #[must_use]
    pub const fn advice(self) -> &'static str {
        match self {
            Attention::Permission => "it asks permission to use a tool",
            Attention::Question => "it asks a question",
            Attention::Dialog => "a dialog waits for an answer",
            Attention::SignIn => "it wants its user to sign in",
            Attention::Error => "its turn ended in an error",
            Attention::UnrecognisedScreen => {
                "its screen has not changed for a while and is not one Baton knows"
            }
        }
    }
}

/// What an agent is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AgentState {
    /// Its process started; it has not shown its prompt or begun work yet.
    Starting,
    /// It works on a prompt.
    Working,
    /// Its turn is over: it waits at its prompt for the next one.
    WaitingForInput,
    /// A human must answer it before it can go on.
    NeedsAttention(Attention),
    /// Its process ended.
    Exited,
}

impl AgentState {
    /// The name used in API results and traces (without the reason).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            AgentState::Starting => "starting",
            AgentState::Working => "working",
            AgentState::WaitingForInput => "waiting_for_input",
            AgentState::NeedsAttention(_) => "needs_attention",
            AgentState::Exited => "exited",
        }
    }

    /// Why it needs a human, if it does.
    #[must_use]
    pub const fn attention(self) -> Option<Attention> {
        match self {
            AgentState::NeedsAttention(reason) => Some(reason),
            _ => None,
        }
    }
}

impl std::fmt::Display for AgentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentState::NeedsAttention(reason) => write!(f, "needs_attention({})", reason.name()),
            other => f.write_str(other.name()),
        }
    }
}

/// Where a piece of evidence came from. The order is the tie-break: a later source wins at the
/// same moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// Baton's own knowledge of the process: its start, a prompt typed, its exit.
    Process,
    /// The prompt detector's reading of the screen.
    Screen,
    /// An OSC sequence the agent printed.
    Osc,
    /// A hook of the agent's, reported by `baton hook`.
    Hook,
}

impl Source {
    /// The name used in API results and reports.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Source::Screen => "screen",
            Source::Osc => "osc",
            Source::Hook => "hook",
            Source::Process => "process",
        }
    }
}

/// A state one source saw, since when, and when it last said so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observation {
    /// What it saw.
    pub state: AgentState,
    /// When it first saw it (a repeat of the same state does not move this).
    pub since: Millis,
    /// When it last said so (a repeat moves this).
    pub last: Millis,
}

/// What the screen shows, as the agent-state rules need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScreenReading {
    /// A definite reading (see `detector::Detector::reading`).
    Definite(AgentState),
    /// Nothing a rule recognises; the screen last changed at `still_since`.
    Unrecognised {
        /// The last change of the screen.
        still_since: Millis,
    },
    /// Nothing new: a prompt that has not stood long enough to be trusted.
    Unsettled,
}

/// Everything known about one agent's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Evidence {
    /// When its process started (or was started again).
    pub started: Millis,
    /// When its process ended, if it did.
    pub exited: Option<Millis>,
    /// What Baton's own actions imply (a prompt typed: working).
    pub process: Option<Observation>,
    /// The screen's latest definite reading.
    pub screen: Option<Observation>,
    /// The screen's current reading is unrecognised, still since this moment.
    pub screen_still_since: Option<Millis>,
    /// The screen read nothing definite since its last definite reading: the next one is new,
    /// even of the same state (an agent back at its prompt after a turn).
    pub screen_interrupted: bool,
    /// The latest state its hooks reported.
    pub hook: Option<Observation>,
    /// The latest state its OSC sequences told.
    pub osc: Option<Observation>,
}

impl Evidence {
    /// Evidence of a process started at `now`, nothing seen yet.
    #[must_use]
    pub fn started(now: Millis) -> Self {
        Evidence {
            started: now,
            ..Evidence::default()
        }
    }

    /// The screen now reads `reading` (taken at `now`).
    pub fn screen(&mut self, now: Millis, reading: ScreenReading) {
        match reading {
            ScreenReading::Definite(state) => {
                if std::mem::take(&mut self.screen_interrupted) {
                    self.screen = None;
                }
                observe(&mut self.screen, now, state);
                self.screen_still_since = None;
            }
            // The last definite reading stands until the limit says otherwise.
            ScreenReading::Unrecognised { still_since } => {
                self.screen_still_since = Some(still_since);
                self.screen_interrupted = true;
            }
            ScreenReading::Unsettled => {
                self.screen_still_since = None;
                self.screen_interrupted = true;
            }
        }
    }

    /// Baton typed a prompt at `now`: the agent has work.
    pub fn prompt_sent(&mut self, now: Millis) {
        self.process = Some(Observation {
            state: AgentState::Working,
            since: now,
            last: now,
        });
    }

    /// A hook said the agent is in `state` at `now`. A hook's word is an event: each one is
    /// news, even of the same state (a second permission request after the first was answered).
    pub fn hook(&mut self, now: Millis, state: AgentState) {
        self.hook = Some(Observation {
            state,
            since: now,
            last: now,
        });
    }

    /// An OSC sequence said the agent is in `state` at `now`.
    pub fn osc(&mut self, now: Millis, state: AgentState) {
        observe(&mut self.osc, now, state);
    }

    /// The process ended at `now`.
    pub fn exited(&mut self, now: Millis) {
        self.exited.get_or_insert(now);
    }
}

/// Longest hook event name or notification type accepted, in bytes.
pub const HOOK_NAME_BYTES_MAX: usize = 64;

/// What an agent's hook reports, from the hook's event name (`hook_event_name`) and, for a
/// notification, its type (`notification_type`). The names are the agents' own: Claude Code's
/// (`UserPromptSubmit`, `PreToolUse`, `PostToolUse`, `PostToolUseFailure`, `PermissionRequest`,
/// `Notification` with `permission_prompt`, `idle_prompt` or `elicitation_dialog`, `Stop`,
/// `StopFailure`, `Elicitation`), Gemini CLI's (`BeforeAgent`, `BeforeTool`, `AfterTool`,
/// `AfterAgent`, `Notification` with `ToolPermission`) and Codex's (the same as Claude Code's,
/// and its `notify` program's `agent-turn-complete`). `None`: the hook is known but says nothing
/// of the state (a session starting or ending, a compaction); `Err`: no agent sends it.
///
/// # Errors
/// An event name or notification type no agent sends, or longer than [`HOOK_NAME_BYTES_MAX`].
pub fn hook_state(
    event: &str,
    notification: Option<&str>,
) -> Result<Option<AgentState>, UnknownHook> {
    if event.len() > HOOK_NAME_BYTES_MAX
        || notification.is_some_and(|n| n.len() > HOOK_NAME_BYTES_MAX)
    {
        return Err(UnknownHook);
    }
    use AgentState::{NeedsAttention, WaitingForInput, Working};
    Ok(match event {
        "UserPromptSubmit" | "PreToolUse" | "PostToolUse" | "PostToolUseFailure"
        | "PostToolBatch" | "BeforeAgent" | "BeforeTool" | "AfterTool" | "SubagentStart" => {
            Some(Working)
        }
        "PermissionRequest" => Some(NeedsAttention(Attention::Permission)),
        "Elicitation" => Some(NeedsAttention(Attention::Question)),
        "Stop" | "AfterAgent" | "agent-turn-complete" => Some(WaitingForInput),
        "StopFailure" => Some(NeedsAttention(Attention::Error)),
        "Notification" => match notification {
            Some("permission_prompt" | "ToolPermission") => {
                Some(NeedsAttention(Attention::Permission))
            }
            Some("elicitation_dialog") => Some(NeedsAttention(Attention::Question)),
            Some("idle_prompt") => Some(WaitingForInput),
            _ => None,
        },
        "SessionStart" | "SessionEnd" | "PreCompact" | "PostCompact" | "PreCompress"
        | "SubagentStop" | "MessageDisplay" => None,
        _ => return Err(UnknownHook),
    })
}

/// A hook event no agent sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown hook event")]
pub struct UnknownHook;

/// Keeps `since` when the state is the same as before.
fn observe(slot: &mut Option<Observation>, now: Millis, state: AgentState) {
    match slot {
        Some(seen) if seen.state == state => seen.last = now,
        _ => {
            *slot = Some(Observation {
                state,
                since: now,
                last: now,
            });
        }
    }
}

/// The agent's state, with the evidence that decided it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// What it is doing.
    pub state: AgentState,
    /// Which source decided.
    pub source: Source,
    /// Since when that source has said so.
    pub since: Millis,
    /// Another source that says otherwise, with what it says.
    pub disagreement: Option<(Source, AgentState)>,
    /// When the verdict may change without new evidence (an unrecognised screen reaching
    /// [`UNRECOGNISED_STILL_MS`]).
    pub recheck_at: Option<Millis>,
}

impl Verdict {
    /// A process started at `now`, nothing seen yet.
    #[must_use]
    pub const fn starting(now: Millis) -> Self {
        Verdict {
            state: AgentState::Starting,
            source: Source::Process,
            since: now,
            disagreement: None,
            recheck_at: None,
        }
    }
}

/// The agent's state at `now` from `evidence` (see the module documentation for the rules).
#[must_use]
pub fn decide(evidence: &Evidence, now: Millis) -> Verdict {
    if let Some(at) = evidence.exited {
        return Verdict {
            state: AgentState::Exited,
            source: Source::Process,
            since: at,
            disagreement: None,
            recheck_at: None,
        };
    }
    let seen = [
        (Source::Screen, evidence.screen),
        (Source::Osc, evidence.osc),
        (Source::Hook, evidence.hook),
        (Source::Process, evidence.process),
    ];
    let newest = seen
        .iter()
        .filter_map(|&(source, observation)| observation.map(|o| (source, o)))
        .max_by_key(|&(source, observation)| (observation.since, source));
    let mut recheck_at = None;
    // An unrecognised still screen, unless another source spoke since it last changed (a hook
    // or an agent's own state report saying it works vouches for a screen standing still
    // while a tool runs).
    if let Some(still_since) = evidence.screen_still_since {
        let due = still_since.plus(UNRECOGNISED_STILL_MS);
        let spoke_since = seen
            .iter()
            .filter(|(source, _)| *source != Source::Screen)
            .filter_map(|(_, observation)| *observation)
            .any(|o| o.last >= still_since);
        if !spoke_since {
            if now >= due {
                return Verdict {
                    state: AgentState::NeedsAttention(Attention::UnrecognisedScreen),
                    source: Source::Screen,
                    since: due,
                    // The screen's own last reading is no other witness.
                    disagreement: newest
                        .filter(|(source, _)| matches!(source, Source::Hook | Source::Osc))
                        .map(|(source, o)| (source, o.state)),
                    recheck_at: None,
                };
            }
            recheck_at = Some(due);
        }
    }
    let Some((mut source, mut observation)) = newest else {
        return Verdict {
            recheck_at,
            ..Verdict::starting(evidence.started)
        };
    };
    // A screen that still asks its human outranks a later word that the agent works: a tool
    // running beside a permission prompt (parallel calls) reports itself while the prompt waits.
    if let Some(screen) = evidence.screen.filter(|screen| {
        matches!(screen.state, AgentState::NeedsAttention(_))
            && !evidence.screen_interrupted
            && observation.state == AgentState::Working
            && matches!(source, Source::Hook | Source::Osc)
    }) {
        (source, observation) = (Source::Screen, screen);
    }
    // Baton's own action is no witness of the agent: only the agent's sources can disagree.
    let disagreement = seen
        .iter()
        .filter(|&&(other, _)| {
            other != source && other != Source::Process && source != Source::Process
        })
        .filter_map(|&(other, o)| o.map(|o| (other, o.state)))
        .find(|&(_, state)| state != observation.state);
    Verdict {
        state: observation.state,
        source,
        since: observation.since,
        disagreement,
        recheck_at,
    }
}

#[cfg(test)]
mod tests {
    use super::{
        AgentState, Attention, Evidence, ScreenReading, Source, UNRECOGNISED_STILL_MS, decide,
    };
    use crate::core::time::Millis;

    use AgentState::{NeedsAttention, Starting, WaitingForInput, Working};

    #[test]
    fn a_typed_prompt_means_work_until_a_source_says_otherwise() {
        let mut evidence = Evidence::started(Millis(0));
        evidence.screen(Millis(50), ScreenReading::Definite(WaitingForInput));
        evidence.prompt_sent(Millis(100));
        evidence.screen(Millis(120), ScreenReading::Unsettled);
        check(&evidence, 120, Working, Source::Process);
        evidence.screen(Millis(900), ScreenReading::Definite(WaitingForInput));
        check(&evidence, 900, WaitingForInput, Source::Screen);
    }

    fn check(evidence: &Evidence, now: u64, state: AgentState, source: Source) {
        let verdict = decide(evidence, Millis(now));
        assert_eq!(
            (verdict.state, verdict.source),
            (state, source),
            "{verdict:?}"
        );
    }

    #[test]
    fn nothing_seen_yet_is_starting() {
        check(&Evidence::started(Millis(5)), 10, Starting, Source::Process);
    }

    #[test]
    fn an_exit_wins_over_everything() {
        let mut evidence = Evidence::started(Millis(0));
        evidence.hook(Millis(10), Working);
        evidence.exited(Millis(20));
        evidence.hook(Millis(30), Working);
        let verdict = decide(&evidence, Millis(40));
        assert_eq!(
            (verdict.state, verdict.source, verdict.since),
            (AgentState::Exited, Source::Process, Millis(20))
        );
    }

    #[test]
    fn the_newest_observation_wins_and_the_other_is_named() {
        let mut evidence = Evidence::started(Millis(0));
        evidence.hook(Millis(100), WaitingForInput);
        evidence.screen(
            Millis(200),
            ScreenReading::Definite(NeedsAttention(Attention::Permission)),
        );
        let verdict = decide(&evidence, Millis(300));
        assert_eq!(verdict.state, NeedsAttention(Attention::Permission));
        assert_eq!(verdict.source, Source::Screen);
        assert_eq!(verdict.disagreement, Some((Source::Hook, WaitingForInput)));
        evidence.hook(Millis(400), WaitingForInput);
        check(&evidence, 400, WaitingForInput, Source::Hook);
    }

    #[test]
    fn a_screen_still_asking_its_human_is_not_overruled_by_word_of_work() {
        let permission = NeedsAttention(Attention::Permission);
        let mut evidence = Evidence::started(Millis(0));
        evidence.hook(Millis(100), permission);
        evidence.screen(Millis(150), ScreenReading::Definite(permission));
        // A second tool, called beside the first, runs while the prompt waits.
        evidence.hook(Millis(300), Working);
        evidence.osc(Millis(350), Working);
        let verdict = decide(&evidence, Millis(400));
        assert_eq!(
            (verdict.state, verdict.source, verdict.since),
            (permission, Source::Screen, Millis(150))
        );
        assert_eq!(verdict.disagreement, Some((Source::Osc, Working)));
        // The human answered: the screen moves on, and the word of work counts again.
        evidence.screen(Millis(500), ScreenReading::Unsettled);
        check(&evidence, 500, Working, Source::Osc);
        evidence.screen(Millis(600), ScreenReading::Definite(Working));
        check(&evidence, 600, Working, Source::Screen);
    }

    #[test]
    fn at_the_same_moment_a_hook_beats_the_screen() {
        let mut evidence = Evidence::started(Millis(0));
        evidence.screen(Millis(100), ScreenReading::Definite(WaitingForInput));
        evidence.hook(Millis(100), NeedsAttention(Attention::Permission));
        check(
            &evidence,
            100,
            NeedsAttention(Attention::Permission),
            Source::Hook,
        );
    }

    #[test]
    fn agreeing_sources_report_no_disagreement() {
        let mut evidence = Evidence::started(Millis(0));
        evidence.screen(Millis(100), ScreenReading::Definite(Working));
        evidence.osc(Millis(150), Working);
        let verdict = decide(&evidence, Millis(200));
        assert_eq!((verdict.source, verdict.disagreement), (Source::Osc, None));
    }

    #[test]
    fn a_repeated_screen_reading_keeps_its_first_moment() {
        let mut evidence = Evidence::started(Millis(0));
        evidence.screen(Millis(100), ScreenReading::Definite(Working));
        evidence.screen(Millis(900), ScreenReading::Definite(Working));
        assert_eq!(decide(&evidence, Millis(1_000)).since, Millis(100));
    }

    #[test]
    fn an_unrecognised_still_screen_needs_attention_after_the_limit() {
        let mut evidence = Evidence::started(Millis(0));
        evidence.screen(Millis(50), ScreenReading::Definite(Working));
        evidence.screen(
            Millis(100),
            ScreenReading::Unrecognised {
                still_since: Millis(100),
            },
        );
        let before = decide(&evidence, Millis(100 + UNRECOGNISED_STILL_MS - 1));
        assert_eq!(
            before.state, Working,
            "the last reading stands until the limit"
        );
        assert_eq!(before.recheck_at, Some(Millis(100 + UNRECOGNISED_STILL_MS)));
        check(
            &evidence,
            100 + UNRECOGNISED_STILL_MS,
            NeedsAttention(Attention::UnrecognisedScreen),
            Source::Screen,
        );
    }

    #[test]
    fn a_hook_saying_the_agent_works_vouches_for_a_still_screen() {
        let mut evidence = Evidence::started(Millis(0));
        evidence.screen(
            Millis(100),
            ScreenReading::Unrecognised {
                still_since: Millis(100),
            },
        );
        evidence.hook(Millis(150), Working);
        let verdict = decide(&evidence, Millis(100 + 10 * UNRECOGNISED_STILL_MS));
        assert_eq!((verdict.state, verdict.recheck_at), (Working, None));
    }

    #[test]
    fn a_repeated_report_of_work_vouches_for_a_still_screen() {
        let mut evidence = Evidence::started(Millis(0));
        evidence.osc(Millis(50), Working);
        evidence.screen(
            Millis(100),
            ScreenReading::Unrecognised {
                still_since: Millis(100),
            },
        );
        evidence.osc(Millis(5_000), Working);
        let verdict = decide(&evidence, Millis(100 + 10 * UNRECOGNISED_STILL_MS));
        assert_eq!((verdict.state, verdict.since), (Working, Millis(50)));
    }

    #[test]
    fn a_hook_older_than_the_still_screen_does_not_vouch_for_it() {
        let mut evidence = Evidence::started(Millis(0));
        evidence.hook(Millis(50), Working);
        evidence.screen(
            Millis(100),
            ScreenReading::Unrecognised {
                still_since: Millis(100),
            },
        );
        check(
            &evidence,
            100 + UNRECOGNISED_STILL_MS,
            NeedsAttention(Attention::UnrecognisedScreen),
            Source::Screen,
        );
    }

    #[test]
    fn hooks_say_what_the_agent_does_in_each_agents_own_words() {
        use super::hook_state;
        let check = |event, notification, expected| {
            assert_eq!(hook_state(event, notification), Ok(expected), "{event}");
        };
        check("UserPromptSubmit", None, Some(Working));
        check("PreToolUse", None, Some(Working));
        check("BeforeTool", None, Some(Working));
        check(
            "PermissionRequest",
            None,
            Some(NeedsAttention(Attention::Permission)),
        );
        check(
            "Notification",
            Some("permission_prompt"),
            Some(NeedsAttention(Attention::Permission)),
        );
        check(
            "Notification",
            Some("ToolPermission"),
            Some(NeedsAttention(Attention::Permission)),
        );
        check("Notification", Some("idle_prompt"), Some(WaitingForInput));
        check("Notification", Some("auth_success"), None);
        check("Stop", None, Some(WaitingForInput));
        check("AfterAgent", None, Some(WaitingForInput));
        check("StopFailure", None, Some(NeedsAttention(Attention::Error)));
        check("SessionStart", None, None);
        assert!(hook_state("Bogus", None).is_err());
        assert!(hook_state(&"x".repeat(65), None).is_err());
        assert!(hook_state("Notification", Some(&"x".repeat(65))).is_err());
    }

    #[test]
    fn states_and_reasons_have_names() {
        let names: Vec<String> = Attention::ALL
            .iter()
            .map(|&reason| NeedsAttention(reason).to_string())
            .collect();
        assert_eq!(
            names,
            [
                "needs_attention(permission)",
                "needs_attention(question)",
                "needs_attention(dialog)",
                "needs_attention(sign_in)",
                "needs_attention(error)",
                "needs_attention(unrecognised_screen)",
            ]
        );
        assert_eq!(WaitingForInput.to_string(), "waiting_for_input");
    }
}
