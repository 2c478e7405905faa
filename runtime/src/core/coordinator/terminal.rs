//! One agent's terminal as the core models it, the same for a task's agent and for the
//! coordinator's own agent ([`Terminal`] names which): its scrollback, its prompt detector, what
//! is known of its state and the state decided from it, whether its Baton MCP server connected,
//! the prompts waiting for it (its assignment first), the prompt being typed, the Enter pressed
//! again while it shows nothing of that prompt, and its exit.
//!
//! What a terminal decides alone lives here: what its output does to the detector and which
//! terminal queries it owes answers to, which prompt goes next and when (the typing gate, the MCP
//! gate of [`MCP_CONNECT_TIMEOUT_MS`]), when Enter is pressed again, when its state may change
//! with no new output. What it means for a task (its waits, signals, notifications, its control)
//! is `prompts`' and `waits`', and none of it reaches the coordinator's own agent.

use std::collections::VecDeque;

use crate::core::detector::{Detector, Profile, Readiness};
use crate::core::ids::{AgentId, TaskId};
use crate::core::state::{AgentState, Evidence, Verdict};
use crate::core::time::Millis;

use super::{
    CoreError, ENTER_RETRIES_MAX, ENTER_RETRY_MS, Effect, MCP_CONNECT_TIMEOUT_MS,
    PROMPT_QUEUE_BYTES_MAX, PROMPT_QUEUE_MAX, Status, Typed,
};

/// Bytes of an agent's recent output kept for `get_task_output` and for viewers.
pub const SCROLLBACK_BYTES_MAX: usize = 65_536;

/// How long the coordinator's own agent's first prompt waits for the agent to show its prompt;
/// past it, the prompt is dropped (the user, attached, can type it).
pub const FIRST_PROMPT_WAIT_MS_MAX: u64 = 10 * 60 * 1_000;

/// Which agent's terminal: a task's, or the coordinator's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Terminal {
    /// The agent of a task.
    Task(TaskId),
    /// The coordinator's own agent (`baton coordinator start`).
    Own,
}

impl From<TaskId> for Terminal {
    fn from(task: TaskId) -> Self {
        Terminal::Task(task)
    }
}

/// Whether the agent's Baton MCP server (the `baton mcp` process it launched) has connected.
/// Agents start their MCP servers in the background, so a prompt typed at the first prompt
/// glyph could reach the model before Baton's tools exist: the assignment waits for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum McpState {
    /// Not yet; the assignment waits until this time at the latest.
    Waiting {
        /// When to stop waiting.
        until: Millis,
    },
    /// It connected.
    Connected,
    /// It did not connect in time; the assignment went out without it.
    GaveUp,
}

/// How much of the end of an agent's output its last line is looked for in: the phone's list
/// needs that line, not the whole ring in plain text.
pub const LAST_LINE_TAIL_BYTES: usize = 4_096;

/// Bounded ring of an agent's most recent output bytes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scrollback {
    bytes: VecDeque<u8>,
}

impl Scrollback {
    /// Appends output, dropping the oldest bytes past [`SCROLLBACK_BYTES_MAX`]; a character
    /// cut in two by the drop goes whole (at most three UTF-8 continuation bytes), so the ring
    /// starts where a character does.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        let chunk = &chunk[chunk.len().saturating_sub(SCROLLBACK_BYTES_MAX)..];
        let overflow = (self.bytes.len() + chunk.len()).saturating_sub(SCROLLBACK_BYTES_MAX);
        self.bytes.drain(..overflow);
        self.bytes.extend(chunk);
        if overflow > 0 {
            let cut = self
                .bytes
                .iter()
                .take(3)
                .take_while(|b| (0x80..=0xbf).contains(*b))
                .count();
            self.bytes.drain(..cut);
        }
    }

    /// The last line that is not blank, in plain text, read from the last
    /// [`LAST_LINE_TAIL_BYTES`] bytes (starting where a character does: a UTF-8 continuation
    /// byte would read as a C1 control and could swallow the text after it).
    pub(crate) fn last_line(&self) -> String {
        let tail: Vec<u8> = self
            .bytes
            .iter()
            .skip(self.bytes.len().saturating_sub(LAST_LINE_TAIL_BYTES))
            .copied()
            .collect();
        let start = tail
            .iter()
            .take(3)
            .take_while(|b| (0x80..=0xbf).contains(*b))
            .count();
        crate::core::detector::plain_text(&tail[start..])
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .unwrap_or_default()
            .to_owned()
    }

    /// The bytes held, oldest first.
    #[must_use]
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        self.bytes.iter().copied().collect()
    }
}

/// What comes next for a terminal whose agent waits at its prompt ([`AgentTerminal::next`]).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// A prompt is being typed, or one waits for its gate (its MCP server, a human's hold): the
    /// agent does not count as idle.
    Busy,
    /// This prompt is to be typed.
    Type(String),
    /// Nothing waits.
    Nothing,
}

/// One agent's terminal. Fields are read by the engine and the API; the coordinator core
/// changes them.
#[derive(Debug)]
pub struct AgentTerminal {
    /// Its agent's PTY session.
    pub agent: AgentId,
    /// Whether its agent works, waits at its prompt, or ended.
    pub status: Status,
    /// The last exit code of its agent.
    pub exit_code: Option<i32>,
    /// Its assignment (a task's, or the coordinator's first prompt), until its agent first
    /// shows its prompt.
    pub assignment: Option<String>,
    /// When an assignment not typed by then is dropped (the coordinator's first prompt, at
    /// [`FIRST_PROMPT_WAIT_MS_MAX`]); a task's waits as long as it must.
    pub(crate) assignment_until: Option<Millis>,
    /// Prompts waiting to be typed, oldest first (at most `PROMPT_QUEUE_MAX`).
    pub queued: VecDeque<String>,
    /// Whether its MCP server connected.
    pub mcp: McpState,
    /// Whether a prompt is being typed into its agent (the next waits until it is done).
    pub typing: bool,
    /// A typed prompt the agent has not shown it took: when to press Enter again, and how many
    /// more times (see [`ENTER_RETRY_MS`]).
    pub(crate) enter_retry: Option<(Millis, u8)>,
    pub(crate) detector: Detector,
    pub(crate) scrollback: Scrollback,
    /// What is known of its agent's state (screen, hooks, OSC, process).
    pub(crate) evidence: Evidence,
    /// Its agent's state as last decided and acted on.
    pub(crate) state: Verdict,
}

impl AgentTerminal {
    /// The terminal of `agent`, just started and read with `profile`: running, nothing waiting,
    /// its MCP server awaited for [`MCP_CONNECT_TIMEOUT_MS`].
    pub(crate) fn new(agent: AgentId, profile: Profile, now: Millis) -> Self {
        AgentTerminal {
            agent,
            status: Status::Running,
            exit_code: None,
            assignment: None,
            assignment_until: None,
            queued: VecDeque::new(),
            mcp: McpState::Waiting {
                until: now.plus(MCP_CONNECT_TIMEOUT_MS),
            },
            typing: false,
            enter_retry: None,
            detector: Detector::new(profile, now),
            scrollback: Scrollback::default(),
            evidence: Evidence::started(now),
            state: Verdict::starting(now),
        }
    }

    /// Its agent was started again as `agent`: it runs, its screen, state and exit code start
    /// over and its MCP server is awaited again; what waits to be typed (its assignment, queued
    /// prompts) stays, for the new agent.
    pub(crate) fn restart(&mut self, agent: AgentId, now: Millis) {
        self.agent = agent;
        self.status = Status::Running;
        self.exit_code = None;
        self.mcp = McpState::Waiting {
            until: now.plus(MCP_CONNECT_TIMEOUT_MS),
        };
        self.typing = false;
        self.enter_retry = None;
        self.detector.reset(now);
        self.evidence = Evidence::started(now);
        self.state = Verdict::starting(now);
        self.scrollback = Scrollback::default();
    }

    /// Its agent's state, with the evidence that decided it.
    #[must_use]
    pub const fn agent_state(&self) -> Verdict {
        self.state
    }

    /// What is known of its agent's state.
    #[must_use]
    pub const fn evidence(&self) -> &Evidence {
        &self.evidence
    }

    /// What its screen shows, as the detector reads it.
    #[must_use]
    pub const fn readiness(&self) -> Readiness {
        self.detector.readiness()
    }

    /// When its screen last changed.
    #[must_use]
    pub const fn last_activity(&self) -> Millis {
        self.detector.last_activity()
    }

    /// The prompt detector's profile it is read with.
    #[must_use]
    pub const fn profile(&self) -> Profile {
        self.detector.config().profile
    }

    /// The text its screen shows (the detector's screen).
    #[must_use]
    pub fn screen_text(&self) -> String {
        self.detector.screen_text()
    }

    /// Whether its agent turned on bracketed paste (prompts are then wrapped for it).
    #[must_use]
    pub fn bracketed_paste(&self) -> bool {
        self.detector.bracketed_paste()
    }

    /// Recent output of its agent.
    #[must_use]
    pub fn scrollback(&self) -> Vec<u8> {
        self.scrollback.to_vec()
    }

    /// The last line of its agent's output that is not blank, read from the last
    /// [`LAST_LINE_TAIL_BYTES`] bytes.
    #[must_use]
    pub fn last_line(&self) -> String {
        self.scrollback.last_line()
    }

    /// Recent output of its agent as plain text (escape sequences gone), at most
    /// [`SCROLLBACK_BYTES_MAX`] bytes: bytes that are no UTF-8 each become a replacement
    /// character, and past the bound the oldest characters go.
    #[must_use]
    pub fn output_text(&self) -> String {
        let text = crate::core::detector::plain_text(&self.scrollback());
        let mut start = text.len().saturating_sub(SCROLLBACK_BYTES_MAX);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        text[start..].to_owned()
    }

    /// Whether its agent's process ended.
    #[must_use]
    pub fn has_exited(&self) -> bool {
        self.status == Status::Exited
    }

    /// Whether a new prompt must wait in the queue: its assignment, earlier prompts or a
    /// prompt being typed are ahead of it, or its screen asks a human (text and Enter typed
    /// there would answer it: a permission prompt's first choice is "Yes").
    pub(super) fn must_queue(&self) -> bool {
        self.assignment.is_some()
            || !self.queued.is_empty()
            || self.typing
            || self.state.state.attention().is_some()
    }

    /// Puts `prompt` at the end of its queue.
    ///
    /// # Errors
    /// [`PROMPT_QUEUE_MAX`] prompts or [`PROMPT_QUEUE_BYTES_MAX`] bytes would be passed.
    pub(super) fn queue(&mut self, prompt: String) -> Result<(), CoreError> {
        if self.queued.len() >= PROMPT_QUEUE_MAX {
            return Err(CoreError::QueueFull);
        }
        let held: usize = self.queued.iter().map(String::len).sum();
        if held + prompt.len() > PROMPT_QUEUE_BYTES_MAX {
            return Err(CoreError::QueueBytesFull);
        }
        self.queued.push_back(prompt);
        Ok(())
    }

    /// Output of its agent arrived: kept, read by the detector, and every terminal query it
    /// made answered (an agent stalls at start without the answers).
    pub(super) fn output(&mut self, now: Millis, bytes: &[u8], effects: &mut Vec<Effect>) {
        self.scrollback.push(bytes);
        self.detector.feed(now, bytes);
        while let Some(query) = self.detector.poll_query() {
            effects.push(Effect::Write {
                agent: self.agent,
                bytes: query.reply(),
            });
        }
    }

    /// Its agent's process ended with `code`.
    pub(super) fn exited(&mut self, now: Millis, code: Option<i32>) {
        self.status = Status::Exited;
        self.exit_code = code;
        self.evidence.exited(now);
    }

    /// A prompt starts being typed: the agent works again, and its screen so far proves
    /// nothing.
    pub(super) fn start_typing(&mut self, now: Millis, text: &str) {
        self.detector.prompt_sent(now, text);
        self.evidence.prompt_sent(now);
        self.typing = true;
        self.enter_retry = None;
        if self.status != Status::Exited {
            self.status = Status::Running;
        }
    }

    /// Typing a prompt ended: Enter is pressed again at [`ENTER_RETRY_MS`] while the agent shows
    /// nothing of it; a prompt whose text could not be written goes back to the head of the
    /// queue; one whose Enter failed is not typed again (its text is in the agent's input
    /// already). Whether it was typed whole.
    pub(super) fn typed(&mut self, now: Millis, outcome: Typed) -> bool {
        self.typing = false;
        match outcome {
            Typed::Done => {
                self.enter_retry = Some((now.plus(ENTER_RETRY_MS), ENTER_RETRIES_MAX));
                true
            }
            Typed::TextFailed(text) => {
                self.queued.push_front(text);
                false
            }
            Typed::EnterFailed => false,
        }
    }

    /// Presses Enter again if the agent shows nothing of its last prompt by now; never on a
    /// screen that asks a human (an Enter there answers it), nor while a human holds the
    /// terminal (`held`).
    pub(super) fn retry_enter(&mut self, now: Millis, held: bool, effects: &mut Vec<Effect>) {
        let Some((at, left)) = self.enter_retry else {
            return;
        };
        let asks = self.state.state.attention().is_some()
            || matches!(self.detector.readiness(), Readiness::Attention(_));
        if self.detector.prompt_taken() || held || asks {
            self.enter_retry = None;
        } else if now >= at {
            // The agent shows nothing of the prompt it was given: its Enter was lost.
            effects.push(Effect::Write {
                agent: self.agent,
                bytes: b"\r",
            });
            self.enter_retry = (left > 1).then(|| (now.plus(ENTER_RETRY_MS), left - 1));
        }
    }

    /// What comes next now that its agent waits at its prompt: the assignment once its MCP
    /// server connected (or [`MCP_CONNECT_TIMEOUT_MS`] passed: then the second value is true,
    /// once), else the oldest queued prompt; nothing while a human holds it (`held`). The
    /// prompt returned is taken off; [`start_typing`](Self::start_typing) follows.
    pub(super) fn next(&mut self, now: Millis, held: bool) -> (Next, bool) {
        if self.typing {
            return (Next::Busy, false);
        }
        let mut gave_up = false;
        if self.assignment.is_some() {
            if held {
                return (Next::Busy, false);
            }
            match self.mcp {
                McpState::Waiting { until } if now < until => return (Next::Busy, false),
                McpState::Waiting { .. } => {
                    self.mcp = McpState::GaveUp;
                    gave_up = true;
                }
                McpState::Connected | McpState::GaveUp => {}
            }
        }
        if held {
            return (Next::Nothing, gave_up);
        }
        let next = match self.assignment.take() {
            Some(assignment) => {
                self.assignment_until = None;
                Next::Type(assignment)
            }
            None => self.queued.pop_front().map_or(Next::Nothing, Next::Type),
        };
        (next, gave_up)
    }

    /// Drops an assignment still untyped at its deadline ([`Self::assignment_until`]); whether
    /// it did.
    pub(super) fn drop_stale_assignment(&mut self, now: Millis) -> bool {
        match self.assignment_until {
            Some(until) if now >= until && self.assignment.is_some() => {
                self.assignment = None;
                self.assignment_until = None;
                true
            }
            _ => false,
        }
    }

    /// Takes the screen's reading into its evidence and decides its agent's state: the state
    /// it was in before, and the verdict now.
    pub(super) fn observe(&mut self, now: Millis) -> (AgentState, Verdict) {
        self.detector.observe_into(now, &mut self.evidence);
        let verdict = crate::core::state::decide(&self.evidence, now);
        let before = self.state.state;
        self.state = verdict;
        (before, verdict)
    }

    /// When something of its may be due with no new output (a prompt becoming stable, a state
    /// reaching its limit, the MCP gate's end, an Enter to press again, an assignment to
    /// drop); nothing once its agent ended. A past MCP deadline is acted on at the agent's
    /// next prompt: waking for it again would spin.
    pub(super) fn deadlines(&self, now: Millis) -> impl Iterator<Item = Millis> + use<> {
        let live = self.status != Status::Exited;
        let rechecks = [self.detector.assess(now).recheck_at, self.state.recheck_at];
        let mcp = match self.mcp {
            McpState::Waiting { until } if until > now && self.assignment.is_some() => Some(until),
            _ => None,
        };
        let enter = self.enter_retry.map(|(at, _)| at.max(now));
        let stale = self.assignment_until.filter(|_| self.assignment.is_some());
        rechecks
            .into_iter()
            .chain([mcp, enter, stale])
            .flatten()
            .filter(move |_| live)
    }
}

#[cfg(test)]
mod tests {
    use super::{AgentTerminal, Next, SCROLLBACK_BYTES_MAX, Scrollback, Status, Terminal};
    use crate::core::coordinator::{ENTER_RETRY_MS, Effect, MCP_CONNECT_TIMEOUT_MS, Typed};
    use crate::core::detector::Profile;
    use crate::core::ids::{AgentId, TaskId};
    use crate::core::time::Millis;

    fn terminal() -> AgentTerminal {
        AgentTerminal::new(AgentId::from_random([4; 16]), Profile::Claude, Millis(0))
    }

    #[test]
    fn a_task_id_names_its_terminal() {
        let task = TaskId::from_random([1; 16]);
        assert_eq!(Terminal::from(task), Terminal::Task(task));
        assert!(Terminal::Task(task) < Terminal::Own);
    }

    #[test]
    fn the_assignment_waits_for_the_mcp_server_then_goes_out_without_it() {
        let mut t = terminal();
        t.assignment = Some("go".into());
        t.queued.push_back("then this".into());
        assert_eq!(t.next(Millis(10), false), (Next::Busy, false));
        // A human's hold keeps it, even past the gate.
        assert_eq!(
            t.next(Millis(MCP_CONNECT_TIMEOUT_MS), true),
            (Next::Busy, false)
        );
        assert_eq!(
            t.next(Millis(MCP_CONNECT_TIMEOUT_MS), false),
            (Next::Type("go".into()), true)
        );
        t.start_typing(Millis(MCP_CONNECT_TIMEOUT_MS), "go");
        assert_eq!(t.next(Millis(MCP_CONNECT_TIMEOUT_MS), false).0, Next::Busy);
        assert!(t.typed(Millis(MCP_CONNECT_TIMEOUT_MS), Typed::Done));
        assert_eq!(
            t.next(Millis(MCP_CONNECT_TIMEOUT_MS), false),
            (Next::Type("then this".into()), false)
        );
        assert_eq!(
            t.next(Millis(MCP_CONNECT_TIMEOUT_MS), false).0,
            Next::Nothing
        );
    }

    #[test]
    fn a_prompt_whose_text_failed_goes_back_first_and_one_whose_enter_failed_does_not() {
        let mut t = terminal();
        t.queued.push_back("later".into());
        t.start_typing(Millis(0), "first");
        assert!(!t.typed(Millis(1), Typed::TextFailed("first".into())));
        assert_eq!(t.queued, ["first", "later"]);
        t.start_typing(Millis(2), "first");
        assert!(!t.typed(Millis(3), Typed::EnterFailed));
        assert_eq!(t.enter_retry, None);
    }

    #[test]
    fn enter_is_pressed_again_while_the_agent_shows_nothing_of_its_prompt() {
        let mut t = terminal();
        t.start_typing(Millis(0), "go");
        assert!(t.typed(Millis(0), Typed::Done));
        let mut effects = Vec::new();
        t.retry_enter(Millis(ENTER_RETRY_MS - 1), false, &mut effects);
        assert!(effects.is_empty());
        t.retry_enter(Millis(ENTER_RETRY_MS), false, &mut effects);
        assert_eq!(
            effects,
            [Effect::Write {
                agent: t.agent,
                bytes: b"\r"
            }]
        );
        // Held by a human: never again.
        t.retry_enter(Millis(10 * ENTER_RETRY_MS), true, &mut effects);
        assert_eq!((effects.len(), t.enter_retry), (1, None));
    }

    #[test]
    fn terminal_queries_are_answered_and_an_exit_ends_every_deadline() {
        let mut t = terminal();
        let mut effects = Vec::new();
        t.output(Millis(0), b"\x1b[6n", &mut effects);
        assert!(matches!(effects.as_slice(), [Effect::Write { .. }]));
        t.assignment = Some("go".into());
        t.assignment_until = Some(Millis(500));
        assert!(t.deadlines(Millis(0)).count() > 0);
        t.exited(Millis(1), Some(0));
        assert_eq!((t.status, t.exit_code), (Status::Exited, Some(0)));
        assert_eq!(t.deadlines(Millis(1)).count(), 0);
    }

    #[test]
    fn an_assignment_with_a_deadline_is_dropped_then_and_not_before() {
        let mut t = terminal();
        t.assignment = Some("go".into());
        t.assignment_until = Some(Millis(500));
        assert!(t.deadlines(Millis(0)).any(|at| at == Millis(500)));
        assert!(!t.drop_stale_assignment(Millis(499)));
        assert!(t.drop_stale_assignment(Millis(500)));
        assert_eq!(t.assignment, None);
        assert!(!t.drop_stale_assignment(Millis(501)));
    }

    #[test]
    fn a_restart_keeps_what_waits_and_starts_the_rest_over() {
        let mut t = terminal();
        t.queued.push_back("kept".into());
        let mut effects = Vec::new();
        t.output(Millis(0), b"old screen", &mut effects);
        t.exited(Millis(1), Some(1));
        let agent = AgentId::from_random([5; 16]);
        t.restart(agent, Millis(2));
        assert_eq!(
            (t.agent, t.status, t.exit_code),
            (agent, Status::Running, None)
        );
        assert_eq!(t.queued, ["kept"]);
        assert!(t.scrollback().is_empty());
    }

    #[test]
    fn scrollback_keeps_the_most_recent_bytes() {
        let mut ring = Scrollback::default();
        ring.push(&vec![b'a'; SCROLLBACK_BYTES_MAX - 2]);
        ring.push(b"bcde");
        let held = ring.to_vec();
        assert_eq!(held.len(), SCROLLBACK_BYTES_MAX);
        assert!(held.ends_with(b"bcde"));
        ring.push(&vec![b'z'; SCROLLBACK_BYTES_MAX + 10]);
        assert_eq!(ring.to_vec(), vec![b'z'; SCROLLBACK_BYTES_MAX]);
    }

    #[test]
    fn the_last_line_is_read_from_the_tail_only() {
        let mut ring = Scrollback::default();
        ring.push(b"\x1b[1mfirst\x1b[0m\r\n");
        assert_eq!(ring.last_line(), "first");
        ring.push(&vec![b'x'; super::LAST_LINE_TAIL_BYTES * 2]);
        ring.push(b"\r\n\x1b[32mlast one\x1b[0m\r\n\r\n   \r\n");
        assert_eq!(ring.last_line(), "last one");
        // A tail that starts inside a character: its continuation bytes are not read as C1
        // controls (0x90 would open a device control string and swallow the rest).
        let mut cut = Scrollback::default();
        let mut bytes = "\u{4000}".repeat(super::LAST_LINE_TAIL_BYTES).into_bytes();
        bytes.extend_from_slice("\r\n❯ ".as_bytes());
        cut.push(&bytes);
        let held = cut.to_vec();
        assert!((0x80..=0xbf).contains(&held[held.len() - super::LAST_LINE_TAIL_BYTES]));
        assert_eq!(cut.last_line(), "❯ ");
        assert_eq!(Scrollback::default().last_line(), "");
    }

    #[test]
    fn a_character_cut_by_the_ring_goes_whole() {
        let mut ring = Scrollback::default();
        // 16,400 four-byte characters: the oldest kept would start mid-character.
        ring.push("😀".repeat(16_400).as_bytes());
        let held = ring.to_vec();
        assert_eq!(
            held.len(),
            SCROLLBACK_BYTES_MAX,
            "65,536 is a multiple of four"
        );
        ring.push(b"x");
        let held = ring.to_vec();
        assert!(std::str::from_utf8(&held).is_ok(), "starts on a character");
        assert_eq!(held.len(), SCROLLBACK_BYTES_MAX - 3);
        assert!(held.ends_with("😀x".as_bytes()));
        // Bytes that are no UTF-8 at all are kept as they came.
        let mut binary = Scrollback::default();
        binary.push(&vec![0x80; SCROLLBACK_BYTES_MAX + 5]);
        binary.push(&[0x80; 2]);
        assert_eq!(binary.to_vec().len(), SCROLLBACK_BYTES_MAX - 3);
    }
}
