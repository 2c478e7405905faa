//! What callers see of a coordinator, in one moment of its actor: its tasks ([`TaskView`], the
//! phone's list of agents [`AgentsView`], [`Explanation`]), its own agent ([`OwnAgentView`]), a
//! task's diff and merge; and what a caller asks with ([`CreateTask`], [`OwnAgentStart`]).

use std::path::PathBuf;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::core::coordinator::{Control, Policy, RequiredCheck, Status};
use crate::core::ids::{AgentId, CoordinatorId, TaskId};
use crate::core::time::Millis;
use crate::ports::ChangedFile;

/// A request to create a sub-task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateTask {
    /// Display name.
    pub name: String,
    /// Assignment typed once the agent is ready.
    pub prompt: Option<String>,
    /// Branch to fork from and merge into.
    pub base_branch: Option<String>,
    /// Agent program instead of the coordinator's default.
    pub agent_command: Option<String>,
    /// Agent arguments instead of the coordinator's default.
    pub agent_args: Option<Vec<String>>,
    /// What the task may do with its finished work.
    pub policy: Policy,
    /// What must pass before it lands.
    pub checks: Vec<RequiredCheck>,
}

/// A task as callers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskView {
    /// Its id.
    pub id: TaskId,
    /// Display name.
    pub name: String,
    /// Its branch.
    pub branch: String,
    /// Its worktree.
    pub worktree: PathBuf,
    /// Its agent's terminal session.
    pub agent: crate::core::ids::AgentId,
    /// Its status.
    pub status: Status,
    /// Its agent's last exit code.
    pub exit_code: Option<i32>,
    /// When it signalled done, if it did since its last prompt.
    pub signalled_at: Option<Millis>,
    /// What its agent is doing, with the evidence that decided it.
    pub state: crate::core::state::Verdict,
    /// What it may do with its finished work.
    pub policy: Policy,
    /// What must pass before it lands.
    pub checks: Vec<RequiredCheck>,
}

/// A coordinator's tasks, oldest first, as its actor last listed them. The actor hands the same
/// snapshot to every reader while each of its tasks still shows as listed, and makes a new one
/// on the first read after one changed (or came or went): a reader never gets a stale list, and
/// what a reader makes of a snapshot once ([`Self::encoded`]) serves the readers after it.
#[derive(Debug, Default)]
pub struct TaskList {
    tasks: Vec<TaskView>,
    encoded: OnceLock<Bytes>,
}

impl TaskList {
    /// A snapshot of `tasks`.
    #[must_use]
    pub fn new(tasks: Vec<TaskView>) -> Self {
        TaskList {
            tasks,
            encoded: OnceLock::new(),
        }
    }

    /// The tasks, oldest first.
    #[must_use]
    pub fn tasks(&self) -> &[TaskView] {
        &self.tasks
    }

    /// The tasks as `encode` writes them, encoded by the first caller and shared with every later
    /// one (later callers' `encode` is not run). The API is the only caller and always encodes
    /// the REST list (`GET /api/tasks`'s body).
    pub fn encoded(&self, encode: impl FnOnce(&[TaskView]) -> Vec<u8>) -> Bytes {
        self.encoded
            .get_or_init(|| Bytes::from(encode(&self.tasks)))
            .clone()
    }
}

/// How coarsely the phone's list follows an agent's last activity: a busy agent makes the list
/// be sent again at most once per this many milliseconds (a quiet one not at all).
pub const LIST_ACTIVITY_STEP_MS: u64 = 10_000;

/// Why Baton thinks what it thinks of a task's agent: the verdict, every piece of evidence, and
/// the screen as the detector reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The task.
    pub task: TaskView,
    /// What is known of its agent's state, source by source.
    pub evidence: crate::core::state::Evidence,
    /// What the screen shows, as the detector reads it.
    pub readiness: crate::core::detector::Readiness,
    /// When the screen last changed.
    pub last_activity: Millis,
    /// The screen's text (its last [`EXPLAIN_SCREEN_LINES`] non-blank lines).
    pub screen: Vec<String>,
}

/// Lines of the screen an explanation shows.
pub const EXPLAIN_SCREEN_LINES: usize = 20;

/// A task's agent as the phone's list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentView {
    /// The task.
    pub task: TaskView,
    /// The last line of its output that is not blank.
    pub last_line: String,
    /// What it is doing, with the evidence that decided it.
    pub state: crate::core::state::Verdict,
    /// When its screen last changed.
    pub last_activity: Millis,
    /// Whether it signalled done and the coordinator has not collected that yet.
    pub signal_pending: bool,
    /// Who may type into its terminal.
    pub control: Control,
}

/// A coordinator and its tasks' agents, read in one moment of its actor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentsView {
    /// The coordinator.
    pub coordinator: CoordinatorId,
    /// The repository its sub-tasks branch from.
    pub project_root: PathBuf,
    /// Whether it is registered (else its tasks are orphans).
    pub registered: bool,
    /// Notifications waiting to be typed into it or acknowledged.
    pub notifications: usize,
    /// Its tasks' agents, oldest first.
    pub agents: Vec<AgentView>,
    /// Its own agent, if it started one.
    pub own: Option<OwnAgentView>,
}

/// How to start a coordinator's own agent (`baton coordinator start`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnAgentStart {
    /// Its terminal: command line, environment, project, size.
    pub spawn: crate::ports::SpawnSpec,
    /// How its screen is read.
    pub profile: crate::core::detector::Profile,
    /// Its first prompt (the coordinator preamble and the user's words), typed as a task's
    /// assignment is (see [`crate::core::coordinator::FIRST_PROMPT_WAIT_MS_MAX`]).
    pub first_prompt: Option<String>,
}

/// A coordinator's own agent as the app and the phone's list show it: as a task's agent, without
/// a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnAgentView {
    /// Its terminal's id.
    pub agent: AgentId,
    /// The program it runs.
    pub program: String,
    /// What its screen shows (ready, busy, …), while it runs.
    pub readiness: Option<crate::core::detector::Readiness>,
    /// How it ended, once it has (its exit code; the signal that ended it is not kept).
    pub exit: Option<crate::ports::ExitStatus>,
    /// Its last line that is not blank.
    pub last_line: String,
    /// When its screen last changed.
    pub last_activity: Millis,
    /// What it is doing, as a task's agent is, with the evidence that decided it.
    pub state: crate::core::state::Verdict,
}

/// A task's changes, as the coordinator reads them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffView {
    /// Changed files.
    pub files: Vec<ChangedFile>,
    /// The unified diff, cut at [`crate::core::diff::DIFF_CHARS_MAX`] characters.
    pub text: String,
    /// Whether it was cut.
    pub truncated: bool,
    /// Size of the whole diff in bytes.
    pub original_bytes: usize,
}

/// A merge that went through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeResult {
    /// The branch merged into.
    pub target: String,
    /// Lines added.
    pub added: u64,
    /// Lines removed.
    pub removed: u64,
}
