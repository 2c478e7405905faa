//! One sub-task as its coordinator sees it: status, control, signal, terminal; what it is made
//! of ([`TaskSpec`], the files Baton wrote into its worktree) and what a create hands over
//! ([`NewTask`]).

use std::collections::VecDeque;
use std::path::PathBuf;

use crate::core::detector::{Detector, Profile};
use crate::core::ids::{AgentId, DoneToken, TaskId};
use crate::core::state::{Evidence, Verdict};
use crate::core::time::Millis;

use super::MCP_CONNECT_TIMEOUT_MS;

/// Bytes of an agent's recent output kept for `get_task_output`.
pub const SCROLLBACK_BYTES_MAX: usize = 65_536;

/// Where a task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Its agent works (or was just prompted).
    Running,
    /// Its agent waits at its prompt.
    Idle,
    /// Its agent's process ended.
    Exited,
}

impl Status {
    /// The name used in API results.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Idle => "idle",
            Status::Exited => "exited",
        }
    }
}

/// Who may type into the task's terminal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Control {
    /// The coordinator drives it (the default).
    #[default]
    Coordinator,
    /// A human took over: the coordinator's prompts wait.
    Human,
}

impl Control {
    /// The name used in API results and the app channel.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Control::Coordinator => "coordinator",
            Control::Human => "human",
        }
    }
}

/// Whether the task's MCP server (the `baton mcp` process its agent launched) has connected.
/// Agents start their MCP servers in the background, so a prompt typed at the first prompt
/// glyph could reach the model before `signal_done` exists: the assignment waits for it.
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

/// A `signal_done` from the task's agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signal {
    /// When it arrived (wall time).
    pub at: Millis,
    /// Whether a `wait_for_signal_done` returned it.
    pub consumed: bool,
}

/// Whether a daemon restart lost a task's agent, and whether its coordinator heard of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Lost {
    /// Its agent was not lost (or was started again since).
    #[default]
    No,
    /// Lost, and no wait or notification told the coordinator yet: `remaining` counts it.
    Untold,
    /// Lost, and a wait returned it.
    Told,
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

/// A sub-task. Fields are read by the engine and the API; the coordinator core changes them.
#[derive(Debug)]
pub struct Task {
    /// Its id.
    pub id: TaskId,
    /// Display name.
    pub name: String,
    /// Its branch.
    pub branch: String,
    /// The branch it forked from and merges into, if the caller named one.
    pub base_branch: Option<String>,
    /// Its worktree.
    pub worktree: PathBuf,
    /// Its agent's PTY session.
    pub agent: AgentId,
    /// Where it is in its life.
    pub status: Status,
    /// The last exit code of its agent.
    pub exit_code: Option<i32>,
    /// Who drives it.
    pub control: Control,
    /// Its latest `signal_done`.
    pub signal: Option<Signal>,
    /// Whether its assignment reached the agent (idle notifications wait for it).
    pub assignment_delivered: bool,
    /// Its assignment, until its agent first shows its prompt.
    pub assignment: Option<String>,
    /// Prompts waiting to be typed, oldest first (at most `PROMPT_QUEUE_MAX`).
    pub queued: VecDeque<String>,
    /// Whether its MCP server connected.
    pub mcp: McpState,
    /// A typed prompt the agent has not shown it took: when to press Enter again, and how many
    /// more times (see [`super::ENTER_RETRY_MS`]).
    pub(crate) enter_retry: Option<(Millis, u8)>,
    /// Whether a prompt is being typed into its agent (the next waits until it is done).
    pub typing: bool,
    /// Secret its agent presents with `signal_done`.
    pub done_token: Option<DoneToken>,
    /// Its MCP config file, removed when the task goes.
    pub mcp_config: Option<PathBuf>,
    /// Files Baton wrote into its worktree, taken out before a merge.
    pub worktree_files: Vec<WorktreeFile>,
    /// The command line its agent was started with (empty if not known).
    pub launch: Vec<String>,
    /// The agent it was asked to run (see [`TaskSpec::command`]).
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Whether a restart lost its agent.
    pub(crate) lost: Lost,
    pub(crate) detector: Detector,
    pub(crate) scrollback: Scrollback,
    /// What is known of its agent's state (screen, hooks, OSC, process).
    pub(crate) evidence: Evidence,
    /// Its agent's state as last decided and acted on (waits answered, the coordinator and the
    /// app told).
    pub(crate) state: Verdict,
}

impl Task {
    /// A task that was just made: running, under the coordinator's control, no signal, no
    /// assignment, its MCP server awaited for [`MCP_CONNECT_TIMEOUT_MS`].
    pub(crate) fn new(spec: TaskSpec, now: Millis) -> Self {
        Task {
            id: spec.id,
            name: spec.name,
            branch: spec.branch,
            base_branch: spec.base_branch,
            worktree: spec.worktree,
            agent: spec.agent,
            status: Status::Running,
            exit_code: None,
            control: Control::Coordinator,
            signal: None,
            assignment_delivered: false,
            assignment: None,
            queued: VecDeque::new(),
            mcp: McpState::Waiting {
                until: now.plus(MCP_CONNECT_TIMEOUT_MS),
            },
            typing: false,
            enter_retry: None,
            done_token: spec.done_token,
            mcp_config: spec.mcp_config,
            worktree_files: spec.worktree_files,
            launch: spec.launch,
            command: spec.command,
            args: spec.args,
            lost: Lost::No,
            detector: Detector::new(spec.profile, now),
            scrollback: Scrollback::default(),
            evidence: Evidence::started(now),
            state: Verdict::starting(now),
        }
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
    pub const fn readiness(&self) -> crate::core::detector::Readiness {
        self.detector.readiness()
    }

    /// When its screen last changed.
    #[must_use]
    pub const fn last_activity(&self) -> Millis {
        self.detector.last_activity()
    }

    /// The text its screen shows (the detector's screen).
    #[must_use]
    pub fn screen_text(&self) -> String {
        self.detector.screen_text()
    }

    /// What it is, as it was made.
    #[must_use]
    pub fn spec(&self) -> TaskSpec {
        TaskSpec {
            id: self.id,
            name: self.name.clone(),
            branch: self.branch.clone(),
            base_branch: self.base_branch.clone(),
            worktree: self.worktree.clone(),
            agent: self.agent,
            profile: self.detector.config().profile,
            done_token: self.done_token.clone(),
            mcp_config: self.mcp_config.clone(),
            worktree_files: self.worktree_files.clone(),
            launch: self.launch.clone(),
            command: self.command.clone(),
            args: self.args.clone(),
        }
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
}

/// What a task is, from its creation to its close: the same for a new task, a running one and
/// one restored after a restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskSpec {
    /// Its id.
    pub id: TaskId,
    /// Display name.
    pub name: String,
    /// Its branch.
    pub branch: String,
    /// The branch it forked from, if the caller named one.
    pub base_branch: Option<String>,
    /// Its worktree.
    pub worktree: PathBuf,
    /// Its agent's session.
    pub agent: AgentId,
    /// Which prompt the agent shows.
    pub profile: Profile,
    /// Secret for `signal_done`.
    pub done_token: Option<DoneToken>,
    /// Its MCP config file.
    pub mcp_config: Option<PathBuf>,
    /// Files Baton wrote into its worktree (the instruction block, an agent's MCP settings), to
    /// take out before a merge.
    pub worktree_files: Vec<WorktreeFile>,
    /// The command line its agent was started with, to start it again (empty for a task made
    /// before Baton kept it).
    pub launch: Vec<String>,
    /// The agent it was asked to run, before Baton's own arguments: its command (empty for a
    /// task made before Baton kept it) and arguments. A respawn builds its command line from
    /// them again, with the daemon's current address.
    pub command: String,
    /// See [`Self::command`].
    pub args: Vec<String>,
}

/// A file Baton wrote into a task's worktree: the file, what it held before and what Baton
/// wrote, so that it can be given back exactly.
#[derive(Clone, PartialEq, Eq)]
pub struct WorktreeFile {
    /// The file.
    pub path: PathBuf,
    /// What it held before (`None`: there was no file).
    pub original: Option<Vec<u8>>,
    /// What Baton wrote.
    pub written: Vec<u8>,
    /// What it is.
    pub kind: WorktreeFileKind,
}

/// What a [`WorktreeFile`] is, which says how to take Baton's part out of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorktreeFileKind {
    /// A Markdown instruction file holding the sub-task instruction block.
    Instructions,
    /// Claude Code's settings, the block in their `systemPrompt`: written by earlier versions
    /// of Baton only (the block is on Claude Code's command line now), still taken out of a
    /// task such a version made.
    ClaudeSettings,
    /// Settings naming MCP servers (Gemini's), Baton's server among them.
    McpSettings,
}

impl std::fmt::Debug for WorktreeFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorktreeFile")
            .field("path", &self.path)
            .field("original_bytes", &self.original.as_ref().map(Vec::len))
            .field("written_bytes", &self.written.len())
            .field("kind", &self.kind)
            .finish()
    }
}

/// A task to add, once its worktree exists and its agent was spawned.
#[derive(Debug)]
pub struct NewTask {
    /// What it is.
    pub spec: TaskSpec,
    /// Its assignment, typed when its agent first shows its prompt.
    pub assignment: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::{SCROLLBACK_BYTES_MAX, Scrollback};

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
