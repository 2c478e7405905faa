//! One sub-task as its coordinator sees it: what it is made of ([`TaskSpec`], the files Baton
//! wrote into its worktree), its agent's terminal, control and signal; and what a create hands
//! over ([`NewTask`]).

use std::path::PathBuf;
use std::sync::Arc;

use crate::core::detector::Profile;
use crate::core::ids::{AgentId, DoneToken, TaskId};
use crate::core::time::Millis;

use super::AgentTerminal;

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

/// A sub-task: what it is ([`TaskSpec`]), its agent's terminal ([`AgentTerminal`]), who drives
/// it, its signal. Fields are read by the engine and the API; the coordinator core changes them.
#[derive(Debug)]
pub struct Task {
    /// What it is. Its `agent` is its terminal's (both change together, at a respawn). Shared
    /// with the records saved (a save copies none of it).
    pub spec: Arc<TaskSpec>,
    /// Its agent's terminal: status, exit code, screen, prompts waiting.
    pub terminal: AgentTerminal,
    /// Who drives it.
    pub control: Control,
    /// Its latest `signal_done`.
    pub signal: Option<Signal>,
    /// Whether its assignment reached the agent (idle notifications wait for it).
    pub assignment_delivered: bool,
    /// Whether a restart lost its agent.
    pub(crate) lost: Lost,
}

impl Task {
    /// A task that was just made: running, under the coordinator's control, no signal, no
    /// assignment, its MCP server awaited for [`super::MCP_CONNECT_TIMEOUT_MS`].
    pub(crate) fn new(spec: impl Into<Arc<TaskSpec>>, now: Millis) -> Self {
        let spec = spec.into();
        Task {
            terminal: AgentTerminal::new(spec.agent, spec.profile, now),
            spec,
            control: Control::Coordinator,
            signal: None,
            assignment_delivered: false,
            lost: Lost::No,
        }
    }

    /// Its id.
    #[must_use]
    pub fn id(&self) -> TaskId {
        self.spec.id
    }

    /// Where it is in its life (its agent's).
    #[must_use]
    pub const fn status(&self) -> Status {
        self.terminal.status
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
    /// What it may do with its finished work.
    pub policy: super::Policy,
    /// What must pass before it lands (only under [`super::Policy::Land`]).
    pub checks: Vec<super::RequiredCheck>,
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
