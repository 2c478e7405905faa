//! The coordinator runtime: drives the pure [`Coordinator`](crate::core::coordinator::Coordinator)
//! with the ports.
//!
//! Each coordinator runs as one actor ([`spawn_coordinator`]) that owns its core state alone; the
//! world reaches it through a [`CoordinatorHandle`] (a bounded command channel) and every answer
//! comes back on a oneshot. IO that takes time (git, files, spawning) runs in jobs off the actor,
//! which report back on the actor's own bounded channel, so no state is held across an await and
//! a slow merge never delays a `signal_done`. Each agent's PTY events are forwarded to the actor
//! by a pump task.
//!
//! The actor decides nothing itself: the core says when a task may be made, merged or closed,
//! who waits for each, and what each job's end means; the actor runs the jobs, answers, saves
//! and serves viewers. What an agent needs written into its worktree comes from `agents` as
//! data: no agent kind is named here.
//!
//! A coordinator's own agent (`baton coordinator start`) is its actor's too: one model of an
//! agent's terminal in the core serves it and the tasks' agents, and the actor spawns, pumps,
//! types into, shows and ends it as it does theirs (its first prompt typed as a task's
//! assignment is); nothing of a task's (waits, signals, notifications) concerns it.
//!
//! Layout: `actor` (the loop, the commands, the jobs, each agent's terminal and viewers),
//! `writer` (one ordered writer per terminal), this module (the handle, the commands, the
//! errors and the events the app receives).

mod actor;
mod writer;

#[cfg(test)]
mod own_tests;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{Notify, broadcast, mpsc, oneshot};

use crate::agents::McpLaunch;
use crate::core::coordinator::{
    Control, CoreError, IdleOutcome, MergeOptions, OPERATION_JOINERS_MAX, Records, Sent,
    SignalOutcome, Status,
};
use crate::core::ids::{AgentId, BatchId, CoordinatorId, TaskId};
use crate::core::notify::Notice;
use crate::core::replay::RequestId;
use crate::core::time::Millis;
use crate::ports::{ChangedFile, Clock, Entropy, Files, Journal, PtyHost, Repo};

pub use actor::{restore_coordinator, spawn_coordinator};

/// Commands waiting for a coordinator's actor: callers wait (backpressure) beyond this.
pub const COMMANDS_PENDING_MAX: usize = 64;
// A retry is one command: the callers that may join a merge or a close under way are bounded
// as the inbox is.
const _: () = assert!(OPERATION_JOINERS_MAX == COMMANDS_PENDING_MAX);
/// Events (PTY output, finished jobs) waiting for a coordinator's actor.
pub const INTERNAL_EVENTS_MAX: usize = 256;
/// Events for the app waiting to be read; the actor waits beyond this.
pub const APP_EVENTS_MAX: usize = 1_024;
/// Longest task name, in characters (checked before control characters are replaced).
pub const TASK_NAME_CHARS_MAX: usize = 200;
/// Shortest pause between typing a prompt and pressing Enter, so the agent takes the text as
/// typed, not as a pasted line it may not submit (see [`enter_delay_ms`]).
pub const PROMPT_ENTER_DELAY_MS: u64 = 50;
/// The pause grows by this much per line of the prompt: an agent takes longer over a longer
/// paste, and an Enter that comes while it still takes the paste in is lost (seen with Claude
/// Code on a loaded machine: the assignment stayed in its input box).
pub const PROMPT_ENTER_DELAY_PER_LINE_MS: u64 = 15;
/// Longest pause before Enter.
pub const PROMPT_ENTER_DELAY_MS_MAX: u64 = 500;

/// How typing a prompt failed.
#[derive(Debug)]
pub(crate) enum TypingFailed {
    /// The text could not be written (nothing reached the agent).
    Text(crate::ports::PtyError),
    /// The text was written; the Enter could not be.
    Enter(crate::ports::PtyError),
    /// Nothing was written: the terminal's writer could not take the prompt (its queue full,
    /// or ended).
    Gone,
}

/// Types `text` into `agent` as a person pastes a prompt: wrapped for bracketed paste if the
/// agent asked for it, then, after [`enter_delay_ms`], Enter. The engine types every prompt so
/// (its sub-tasks', a coordinator's own agent's first), through the terminal's writer.
pub(crate) async fn type_prompt(
    pty: &dyn crate::ports::PtyHost,
    agent: AgentId,
    text: &str,
    bracketed: bool,
) -> Result<(), TypingFailed> {
    let body = if bracketed {
        format!("\x1b[200~{text}\x1b[201~")
    } else {
        text.to_owned()
    };
    pty.write(agent, body.as_bytes())
        .await
        .map_err(TypingFailed::Text)?;
    tokio::time::sleep(std::time::Duration::from_millis(enter_delay_ms(text))).await;
    pty.write(agent, b"\r").await.map_err(TypingFailed::Enter)
}

/// The pause before Enter after typing `prompt`: [`PROMPT_ENTER_DELAY_PER_LINE_MS`] per line,
/// from [`PROMPT_ENTER_DELAY_MS`] to [`PROMPT_ENTER_DELAY_MS_MAX`] (the reference's paste
/// delay).
#[must_use]
pub fn enter_delay_ms(prompt: &str) -> u64 {
    let lines = prompt.bytes().filter(|&b| b == b'\n').count() as u64 + 1;
    (lines * PROMPT_ENTER_DELAY_PER_LINE_MS).clamp(PROMPT_ENTER_DELAY_MS, PROMPT_ENTER_DELAY_MS_MAX)
}
/// Most output bytes one event to a coordinator's actor carries: chunks an agent's terminal
/// already delivered are joined up to this.
pub const OUTPUT_COALESCE_BYTES_MAX: usize = 64 * 1024;
/// Terminal columns of an agent until a viewer resizes it: the detector's grid starts so wide.
pub const AGENT_COLS: u16 = crate::core::detector::SCREEN_COLS_DEFAULT;
/// Terminal rows of an agent until a viewer resizes it.
pub const AGENT_ROWS: u16 = crate::core::detector::SCREEN_ROWS_DEFAULT;
/// Agent events kept for live viewers ([`AgentFeed`]); a viewer further behind has missed some
/// and reads the list of agents again.
pub const AGENT_EVENTS_MAX: usize = 256;

/// The ports an engine uses.
#[derive(Clone)]
pub struct Ports {
    /// Wall time.
    pub clock: Arc<dyn Clock>,
    /// Randomness.
    pub entropy: Arc<dyn Entropy>,
    /// Terminals.
    pub pty: Arc<dyn PtyHost>,
    /// Git.
    pub repo: Arc<dyn Repo>,
    /// Files.
    pub files: Arc<dyn Files>,
    /// Where task records are persisted.
    pub journal: Arc<dyn Journal>,
}

/// A world of fake ports (feature `fakes`): a repository at `/repo` on `main` (one commit, no
/// file) whose checkouts are part of the one in-memory disk, terminals, a clock at a fixed
/// instant, entropy from `seed`. Tests, examples and load runs build on it.
#[cfg(any(test, feature = "fakes"))]
#[derive(Clone)]
pub struct FakeWorld {
    /// The ports, for an engine.
    pub ports: Ports,
    /// Its terminals.
    pub pty: Arc<crate::ports::fakes::FakePty>,
    /// Its repository: the worktrees' files, and what was committed and merged.
    pub repo: Arc<crate::ports::fakes::FakeRepo>,
    /// Its disk outside any checkout (configs), and the disk's faults.
    pub files: Arc<crate::ports::fakes::FakeFiles>,
    /// Its randomness.
    pub entropy: Arc<crate::ports::fakes::SeededEntropy>,
    /// Its journal.
    pub journal: Arc<crate::ports::fakes::MemoryJournal>,
}

#[cfg(any(test, feature = "fakes"))]
impl FakeWorld {
    /// The world of `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        use crate::ports::fakes::{
            FakeClock, FakeDisk, FakeFiles, FakePty, FakeRepo, MemoryJournal, SeededEntropy, Tree,
        };
        let pty = Arc::new(FakePty::default());
        let repo = Arc::new(FakeRepo::default());
        let files = Arc::new(FakeFiles::default());
        let entropy = Arc::new(SeededEntropy::new(seed));
        let journal = Arc::new(MemoryJournal::default());
        repo.add_repo(std::path::Path::new("/repo"), "main", Tree::new());
        let ports = Ports {
            clock: Arc::new(FakeClock::starting_at(crate::core::time::Millis(
                1_700_000_000_000,
            ))),
            entropy: entropy.clone(),
            pty: pty.clone(),
            repo: repo.clone(),
            files: Arc::new(FakeDisk::new(files.clone(), repo.clone())),
            journal: journal.clone(),
        };
        FakeWorld {
            ports,
            pty,
            repo,
            files,
            entropy,
            journal,
        }
    }

    /// An engine on these ports whose app events are read and dropped.
    #[must_use]
    pub fn engine(&self) -> Engine {
        let (events, mut drained) = mpsc::channel(APP_EVENTS_MAX);
        tokio::spawn(async move { while drained.recv().await.is_some() {} });
        Engine::new(self.ports.clone(), events)
    }
}

/// The agent a coordinator's sub-tasks run unless a request names another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpawnDefaults {
    /// Program.
    pub command: String,
    /// Arguments.
    pub args: Vec<String>,
}

/// What a coordinator is set up with.
#[derive(Clone, Debug)]
pub struct CoordinatorSettings {
    /// The repository its sub-tasks branch from.
    pub project_root: PathBuf,
    /// The agent its sub-tasks run.
    pub spawn: SpawnDefaults,
    /// Whether sub-task agents get their skip-permission flags (the coordinator runs that way).
    pub skip_permissions: bool,
    /// Wait between staging a notification batch and typing it.
    pub notification_delay_ms: u64,
    /// Directory for per-task MCP config files.
    pub config_dir: PathBuf,
    /// How sub-tasks' agents start Baton's MCP server.
    pub mcp: McpLaunch,
}

impl CoordinatorSettings {
    /// A coordinator on `project_root` whose sub-tasks run `command` with no arguments, without
    /// skip-permission flags, with the default notification delay, MCP configs in `config_dir`
    /// and the default [`McpLaunch`].
    #[must_use]
    pub fn new(
        project_root: impl Into<PathBuf>,
        command: impl Into<String>,
        config_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            project_root: project_root.into(),
            spawn: SpawnDefaults {
                command: command.into(),
                args: Vec::new(),
            },
            skip_permissions: false,
            notification_delay_ms: crate::core::notify::NOTIFICATION_DELAY_MS_DEFAULT,
            config_dir: config_dir.into(),
            mcp: McpLaunch::default(),
        }
    }
}

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

/// The name `api::dto` reads a coordinator's own agent by (that file is edited apart); it goes
/// once `api::dto` names [`OwnAgentView`].
pub mod sessions {
    /// See [`super::OwnAgentView`].
    pub type SessionInfo = super::OwnAgentView;
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

/// What the app is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppEvent {
    /// A sub-task was created.
    TaskCreated {
        /// Its coordinator.
        coordinator: CoordinatorId,
        /// The task.
        task: TaskView,
    },
    /// A sub-task's work was merged into its target branch.
    Merged {
        /// The task.
        task: TaskId,
        /// Where it went, and how much.
        merge: MergeResult,
    },
    /// A sub-task was closed: its worktree and branch are gone.
    TaskClosed(TaskId),
    /// Closing a sub-task failed half-way; it is still listed so the close can be retried.
    CleanupFailed {
        /// The task.
        task: TaskId,
        /// What failed.
        error: String,
    },
    /// The coordinator's notifications changed.
    Notice(CoordinatorId, Notice),
    /// A task's state changed (see [`crate::core::coordinator::StateChange`]).
    State(TaskId, crate::core::coordinator::StateChange),
    /// A coordinator's own MCP server started (its agent has Baton's tools, and its first prompt
    /// may be typed).
    CoordinatorMcpConnected(CoordinatorId),
    /// A task of a deregistered coordinator finished.
    Orphaned {
        /// The task.
        task: TaskId,
        /// How it finished.
        text: String,
    },
}

/// What live viewers of the agents (the WebSocket) are told, by every coordinator's actor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentEvent {
    /// The list of agents changed: one was spawned or closed, or its status or exit code changed.
    ListChanged,
    /// An agent's process ended (a [`AgentEvent::ListChanged`] follows).
    Exited {
        /// The agent.
        agent: AgentId,
        /// Its exit code, if it exited normally.
        code: Option<i32>,
    },
}

/// The engine's broadcast of [`AgentEvent`]s, holding the last [`AGENT_EVENTS_MAX`]. Cheap to
/// clone.
#[derive(Clone, Debug)]
pub struct AgentFeed(broadcast::Sender<AgentEvent>);

impl AgentFeed {
    /// A feed nobody listens to yet.
    #[must_use]
    pub fn new() -> Self {
        AgentFeed(broadcast::channel(AGENT_EVENTS_MAX).0)
    }

    /// Starts listening: events from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<AgentEvent> {
        self.0.subscribe()
    }

    pub(crate) fn send(&self, event: AgentEvent) {
        // Nobody listening is not a failure.
        let _ = self.0.send(event);
    }
}

impl Default for AgentFeed {
    fn default() -> Self {
        AgentFeed::new()
    }
}

/// What a viewer of an agent's terminal receives, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Watched {
    /// Bytes the agent wrote, as they came.
    Output(AgentId, Arc<[u8]>),
    /// The agent's process ended; nothing more comes for it.
    Exited(AgentId, Option<i32>),
}

/// A viewer of agents' terminals (one WebSocket connection). The actor puts what it watches
/// on `queue` without waiting; when the queue is full the viewer is dropped from every agent
/// of that coordinator and `overflowed` is notified, so a slow viewer costs a bounded queue,
/// never the agents' speed.
#[derive(Clone, Debug)]
pub struct Viewer {
    /// Tells the viewer's subscriptions apart (unique per viewer).
    pub id: u64,
    /// Where its output goes (bounded by its maker).
    pub queue: mpsc::Sender<Watched>,
    /// Notified when the queue overflowed.
    pub overflowed: Arc<Notify>,
}

/// Hands `watched` to each of `viewers` without waiting: a viewer whose queue is full is
/// notified and dropped, one whose queue closed is dropped; answers the ids of those that
/// overflowed.
pub(crate) fn hand_out(viewers: &mut Vec<Viewer>, watched: &Watched) -> Vec<u64> {
    let mut overflowed = Vec::new();
    viewers.retain(|viewer| match viewer.queue.try_send(watched.clone()) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            viewer.overflowed.notify_one();
            overflowed.push(viewer.id);
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    });
    overflowed
}

/// A watch that started: the agent's recent output, taken in the same step that registered the
/// viewer, so nothing is lost or repeated between the two.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watching {
    /// The scrollback ring, oldest byte first.
    pub scrollback: Vec<u8>,
    /// The terminal's width.
    pub cols: u16,
    /// The agent had exited already (with this code, if it exited normally): nothing more will
    /// come, and no viewer was added.
    pub exited: Option<Option<i32>>,
}

/// Direct input to an agent's terminal, from a viewer that may write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TerminalInput {
    /// Keystrokes.
    Write(Vec<u8>),
    /// A new terminal size.
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// End the agent's process.
    Kill,
}

/// Why an engine request failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// Refused by the coordinator's rules.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// Something the request names is not there (a base branch).
    #[error("{0}")]
    Missing(String),
    /// The repository's state does not allow it now: the merge conflicted (and was aborted), or
    /// the checkout it merges into has uncommitted changes. Nothing was changed.
    #[error("{0}")]
    Conflict(String),
    /// The done token does not match the task's.
    #[error("forbidden")]
    Forbidden,
    /// An operation on the outside world failed.
    #[error("{0}")]
    Io(String),
    /// Too much is waiting already (a terminal's input queue): try again later.
    #[error("{0}")]
    Busy(String),
    /// The coordinator's actor is gone.
    #[error("coordinator not available")]
    Unavailable,
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, EngineError>>;

/// A request to a coordinator's actor.
pub(crate) enum Command {
    Create(CreateTask, Reply<TaskView>),
    List(oneshot::Sender<Vec<TaskView>>),
    Status(TaskId, Reply<TaskView>),
    Explain(TaskId, Reply<Explanation>),
    Output(TaskId, Reply<String>),
    SendPrompt(TaskId, String, Reply<Sent>),
    Diff(TaskId, Reply<DiffView>),
    Merge(TaskId, MergeOptions, Reply<MergeResult>),
    AckNotification(BatchId),
    DropNotification(BatchId),
    RescheduleNotifications,
    /// A task's MCP server started: proven with its done token, or (`None`) told by the app.
    McpConnected(TaskId, Option<String>, Reply<()>),
    /// A hook of a task's agent fired: its done token, event name and notification type.
    Hook(TaskId, String, Option<String>, Option<String>, Reply<()>),
    Records(oneshot::Sender<Records>),
    /// Saves the records now; answered once they are durable.
    Flush(Reply<()>),
    Remove(TaskId, Reply<()>),
    WaitIdle(TaskId, Option<u64>, Reply<IdleOutcome>),
    WaitSignal(Option<RequestId>, Option<u64>, Reply<SignalOutcome>),
    /// A wait's answer its client never got (see [`SignalDelivery`]): taken back.
    GiveBack(SignalOutcome, Option<RequestId>),
    /// The client of the wait with this request id gave it up: its answer, if any, taken back.
    GiveBackRequest(RequestId, Reply<bool>),
    /// A task's `signal_done`: with its done token, or (`None`) from its coordinator.
    SignalDone(TaskId, Option<String>, Reply<()>),
    SetControl(TaskId, Control, Reply<()>),
    Respawn(TaskId, Reply<TaskView>),
    CoordinatorMcpConnected(Reply<()>),
    Close(TaskId, Reply<()>),
    Deregister(oneshot::Sender<()>),
    Scrollback(AgentId, Reply<Vec<u8>>),
    Agents(oneshot::Sender<AgentsView>),
    Watch(AgentId, Viewer, Reply<Watching>),
    Unwatch(AgentId, u64),
    Terminal(AgentId, TerminalInput, Reply<()>),
    /// Starts the coordinator's own agent; answered once it was spawned.
    StartOwnAgent(OwnAgentStart, Reply<AgentId>),
    OwnAgent(oneshot::Sender<Option<OwnAgentView>>),
}

/// A `wait_for_signal_done` answer on its way to its client: given back to the engine when
/// dropped, unless [`Self::delivered`] said the client has it.
#[derive(Debug)]
pub struct SignalDelivery {
    outcome: Option<SignalOutcome>,
    handle: CoordinatorHandle,
    request: Option<RequestId>,
}

impl SignalDelivery {
    /// The answer.
    #[must_use]
    pub fn outcome(&self) -> Option<&SignalOutcome> {
        self.outcome.as_ref()
    }

    /// The client has the answer: nothing is given back.
    #[must_use]
    pub fn delivered(mut self) -> SignalOutcome {
        self.outcome
            .take()
            .unwrap_or(SignalOutcome::TimedOut { remaining: 0 })
    }
}

impl Drop for SignalDelivery {
    fn drop(&mut self) {
        if let Some(outcome) = self.outcome.take() {
            self.handle.give_back(outcome, self.request.take());
        }
    }
}

/// A wait's receiver: dropped before the answer was taken, it gives back one that came.
struct PendingAnswer {
    answer: Option<oneshot::Receiver<Result<SignalOutcome, EngineError>>>,
    handle: CoordinatorHandle,
    request: Option<RequestId>,
}

impl Drop for PendingAnswer {
    fn drop(&mut self) {
        if let Some(mut answer) = self.answer.take() {
            answer.close();
            if let Ok(Ok(outcome)) = answer.try_recv() {
                self.handle.give_back(outcome, self.request.take());
            }
        }
    }
}

/// The way to a coordinator's actor. Cheap to clone.
#[derive(Clone, Debug)]
pub struct CoordinatorHandle {
    id: CoordinatorId,
    commands: mpsc::Sender<Command>,
}

impl CoordinatorHandle {
    /// The coordinator's id.
    #[must_use]
    pub const fn id(&self) -> CoordinatorId {
        self.id
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, EngineError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| EngineError::Unavailable)?;
        answer.await.map_err(|_| EngineError::Unavailable)?
    }

    /// [`Self::ask`], answered once the change it made is persisted (a restart after the
    /// answer finds it), or with the error that kept it from being persisted. Not for signal waits: a caller gone while the save runs would lose a
    /// consumed signal; the actor saves a consumption at the end of the step that made it.
    async fn ask_durable<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, EngineError> {
        let answer = self.ask(make).await?;
        // Only a change is saved: a refused call costs no write.
        self.ask(Command::Flush).await?;
        Ok(answer)
    }

    /// Creates a sub-task: worktree and branch, MCP config, agent. Rolled back on failure.
    ///
    /// # Errors
    /// Invalid name or base branch, too many tasks, or a failed step (after rollback).
    pub async fn create_task(&self, request: CreateTask) -> Result<TaskView, EngineError> {
        self.ask_durable(|reply| Command::Create(request, reply))
            .await
    }

    /// The coordinator's tasks, oldest first.
    ///
    /// # Errors
    /// The actor is gone.
    pub async fn list_tasks(&self) -> Result<Vec<TaskView>, EngineError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::List(reply))
            .await
            .map_err(|_| EngineError::Unavailable)?;
        answer.await.map_err(|_| EngineError::Unavailable)
    }

    /// One task.
    ///
    /// # Errors
    /// No such task.
    pub async fn task_status(&self, task: TaskId) -> Result<TaskView, EngineError> {
        self.ask(|reply| Command::Status(task, reply)).await
    }

    /// Why Baton thinks what it thinks of a task's agent (`baton explain`).
    ///
    /// # Errors
    /// No such task.
    pub async fn explain(&self, task: TaskId) -> Result<Explanation, EngineError> {
        self.ask(|reply| Command::Explain(task, reply)).await
    }

    /// A task's recent terminal output (the last [`crate::core::coordinator::SCROLLBACK_BYTES_MAX`]
    /// bytes) as plain text.
    ///
    /// # Errors
    /// No such task.
    pub async fn task_output(&self, task: TaskId) -> Result<String, EngineError> {
        self.ask(|reply| Command::Output(task, reply)).await
    }

    /// Types a prompt into a task's agent and presses Enter, or queues it behind the task's
    /// assignment, a human's hold or earlier prompts.
    ///
    /// # Errors
    /// No such task, an empty or oversized prompt, a full queue, or a PTY failure.
    pub async fn send_prompt(&self, task: TaskId, prompt: String) -> Result<Sent, EngineError> {
        // A queued prompt is a promise: kept on disk before the caller hears of it.
        self.ask_durable(|reply| Command::SendPrompt(task, prompt, reply))
            .await
    }

    /// A task's changes against the branch it forked from.
    ///
    /// # Errors
    /// No such task, or git failed.
    pub async fn task_diff(&self, task: TaskId) -> Result<DiffView, EngineError> {
        self.ask(|reply| Command::Diff(task, reply)).await
    }

    /// Commits what the task left uncommitted and merges its branch.
    ///
    /// # Errors
    /// No such task, a task still working, a conflict (the merge is aborted), or a failed
    /// cleanup.
    pub async fn merge_task(
        &self,
        task: TaskId,
        options: MergeOptions,
    ) -> Result<MergeResult, EngineError> {
        self.ask_durable(|reply| Command::Merge(task, options, reply))
            .await
    }

    /// A task's MCP server connected (its `baton mcp` process reached the daemon): its
    /// assignment may go out.
    ///
    /// # Errors
    /// No such task.
    pub async fn mcp_connected(&self, task: TaskId) -> Result<(), EngineError> {
        self.ask(|reply| Command::McpConnected(task, None, reply))
            .await
    }

    /// A task's MCP server says it started, proving it is that task's with its done token.
    ///
    /// # Errors
    /// No such task, or the wrong token.
    pub async fn mcp_connected_with(
        &self,
        task: TaskId,
        done_token: String,
    ) -> Result<(), EngineError> {
        self.ask(|reply| Command::McpConnected(task, Some(done_token), reply))
            .await
    }

    /// A hook of task `task`'s agent fired: its `event` name and a notification's type, as
    /// sent, presented with the task's done token (checked first).
    ///
    /// # Errors
    /// No such task, [`EngineError::Forbidden`] for a token that is not the task's, then
    /// [`EngineError::Invalid`] for an event no agent sends.
    pub async fn hook(
        &self,
        task: TaskId,
        done_token: String,
        event: Option<String>,
        notification: Option<String>,
    ) -> Result<(), EngineError> {
        self.ask(|reply| Command::Hook(task, done_token, event, notification, reply))
            .await
    }

    /// The diff of a task (taken before merging), then its merge with cleanup: the deprecated
    /// one-call review of the reference, kept for coordinators that use it.
    ///
    /// # Errors
    /// As [`task_diff`](Self::task_diff) and [`merge_task`](Self::merge_task).
    pub async fn review_and_merge(
        &self,
        task: TaskId,
        squash: bool,
        message: Option<String>,
    ) -> Result<(DiffView, MergeResult), EngineError> {
        let diff = self.task_diff(task).await?;
        let merged = self
            .merge_task(
                task,
                MergeOptions {
                    squash,
                    message,
                    cleanup: true,
                },
            )
            .await?;
        Ok((diff, merged))
    }

    /// The app typed a staged notification batch into the coordinator.
    ///
    /// # Errors
    /// The actor is gone.
    pub async fn ack_notification(&self, batch: BatchId) -> Result<(), EngineError> {
        self.commands
            .send(Command::AckNotification(batch))
            .await
            .map_err(|_| EngineError::Unavailable)
    }

    /// The app gave up typing a batch: its tasks need a human's review.
    ///
    /// # Errors
    /// The actor is gone.
    pub async fn drop_notification(&self, batch: BatchId) -> Result<(), EngineError> {
        self.commands
            .send(Command::DropNotification(batch))
            .await
            .map_err(|_| EngineError::Unavailable)
    }

    /// The user typed into the coordinator while a batch was staged: stage it again later.
    ///
    /// # Errors
    /// The actor is gone.
    pub async fn reschedule_notifications(&self) -> Result<(), EngineError> {
        self.commands
            .send(Command::RescheduleNotifications)
            .await
            .map_err(|_| EngineError::Unavailable)
    }

    /// Waits until a task is idle (or exited, or taken over by a human), at most `timeout_ms`.
    /// Dropping the future cancels the wait.
    ///
    /// # Errors
    /// No such task, or too many waits.
    pub async fn wait_for_idle(
        &self,
        task: TaskId,
        timeout_ms: Option<u64>,
    ) -> Result<IdleOutcome, EngineError> {
        self.ask(|reply| Command::WaitIdle(task, timeout_ms, reply))
            .await
    }

    /// Waits for a sub-task to signal done (or exit), at most `timeout_ms`. Dropping the future
    /// before its answer consumes no signal; the same `request` id replays a delivered answer.
    ///
    /// # Errors
    /// The coordinator was deregistered, or too many waits.
    pub async fn wait_for_signal(
        &self,
        request: Option<RequestId>,
        timeout_ms: Option<u64>,
    ) -> Result<SignalOutcome, EngineError> {
        self.wait_for_signal_delivery(request, timeout_ms)
            .await
            .map(SignalDelivery::delivered)
    }

    /// [`Self::wait_for_signal`], its answer held by a guard that gives it back to the engine
    /// unless [`SignalDelivery::delivered`] is called: a caller that goes away at any moment
    /// (while waiting, while the answer is on its way, while its response is being written)
    /// consumes nothing.
    ///
    /// # Errors
    /// As [`Self::wait_for_signal`].
    pub async fn wait_for_signal_delivery(
        &self,
        request: Option<RequestId>,
        timeout_ms: Option<u64>,
    ) -> Result<SignalDelivery, EngineError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::WaitSignal(request.clone(), timeout_ms, reply);
        self.commands
            .send(command)
            .await
            .map_err(|_| EngineError::Unavailable)?;
        // Dropped while it waits, the receiver takes back an answer that came meanwhile.
        let mut pending = PendingAnswer {
            answer: Some(answer),
            handle: self.clone(),
            request: request.clone(),
        };
        let outcome = match pending.answer.as_mut() {
            Some(answer) => answer.await,
            None => return Err(EngineError::Unavailable),
        };
        pending.answer = None;
        let outcome = outcome.map_err(|_| EngineError::Unavailable)??;
        Ok(SignalDelivery {
            outcome: Some(outcome),
            handle: self.clone(),
            request,
        })
    }

    /// The client of the wait with request id `request` gave it up (a cancelled MCP call) and
    /// may have missed its answer: the answer, if one was given, is offered again. Whether
    /// there was one.
    ///
    /// # Errors
    /// The actor is gone.
    pub async fn give_back_request(&self, request: RequestId) -> Result<bool, EngineError> {
        self.ask_durable(|reply| Command::GiveBackRequest(request, reply))
            .await
    }

    /// Gives a wait's answer back (nobody got it): the engine offers it again.
    fn give_back(&self, outcome: SignalOutcome, request: Option<RequestId>) {
        let command = Command::GiveBack(outcome, request);
        if let Err(mpsc::error::TrySendError::Full(command)) = self.commands.try_send(command) {
            // A full inbox only delays it: it is sent when there is room.
            let commands = self.commands.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = commands.send(command).await;
                });
            }
        }
    }

    /// A sub-task's agent reports it is done, proving it with its done token.
    ///
    /// # Errors
    /// No such task, or the wrong token.
    pub async fn signal_done(&self, task: TaskId, done_token: String) -> Result<(), EngineError> {
        self.ask_durable(|reply| Command::SignalDone(task, Some(done_token), reply))
            .await
    }

    /// The coordinator reports one of its own tasks done (the REST API lets a coordinator's
    /// credential do so without the task's done token).
    ///
    /// # Errors
    /// No such task.
    pub async fn signal_done_as_coordinator(&self, task: TaskId) -> Result<(), EngineError> {
        self.ask_durable(|reply| Command::SignalDone(task, None, reply))
            .await
    }

    /// Hands a task to a human or back to the coordinator.
    ///
    /// # Errors
    /// No such task.
    pub async fn set_control(&self, task: TaskId, control: Control) -> Result<(), EngineError> {
        self.ask_durable(|reply| Command::SetControl(task, control, reply))
            .await
    }

    /// The coordinator's own MCP server started: told to the app as
    /// [`AppEvent::CoordinatorMcpConnected`], and its own agent's first prompt may go out.
    ///
    /// # Errors
    /// The actor is gone.
    pub async fn coordinator_mcp_connected(&self) -> Result<(), EngineError> {
        self.ask(Command::CoordinatorMcpConnected).await
    }

    /// Starts a task's exited agent again, with the command line it first ran, in its
    /// worktree: a new session (a new agent id) on the same task.
    ///
    /// # Errors
    /// No such task; its agent still runs, it is closing, or its command line is not known
    /// ([`CoreError::NotRespawnable`]); the terminal could not start.
    pub async fn respawn(&self, task: TaskId) -> Result<TaskView, EngineError> {
        self.ask_durable(|reply| Command::Respawn(task, reply))
            .await
    }

    /// Closes a task: kills its agent, removes its worktree and branch and its config file.
    ///
    /// # Errors
    /// No such task, or a cleanup step failed (the task stays listed for a retry).
    pub async fn close_task(&self, task: TaskId) -> Result<(), EngineError> {
        self.ask_durable(|reply| Command::Close(task, reply)).await
    }

    /// The app removed a task on its own: its waits end with `removed`, its config file goes,
    /// and the engine forgets it (its agent and worktree are left to the app).
    ///
    /// # Errors
    /// No such task.
    pub async fn remove_task(&self, task: TaskId) -> Result<(), EngineError> {
        self.ask_durable(|reply| Command::Remove(task, reply)).await
    }

    /// What to persist of the coordinator.
    ///
    /// # Errors
    /// The actor is gone.
    pub async fn records(&self) -> Result<Records, EngineError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Records(reply))
            .await
            .map_err(|_| EngineError::Unavailable)?;
        answer.await.map_err(|_| EngineError::Unavailable)
    }

    /// The coordinator and every task's agent as the phone's list shows them, in one call.
    ///
    /// # Errors
    /// The actor is gone.
    pub async fn agents(&self) -> Result<AgentsView, EngineError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Agents(reply))
            .await
            .map_err(|_| EngineError::Unavailable)?;
        answer.await.map_err(|_| EngineError::Unavailable)
    }

    /// `agent`'s recent output, raw (the scrollback ring, oldest byte first).
    ///
    /// # Errors
    /// `agent` is none of this coordinator's ([`EngineError::Missing`]).
    pub async fn agent_scrollback(&self, agent: AgentId) -> Result<Vec<u8>, EngineError> {
        self.ask(|reply| Command::Scrollback(agent, reply)).await
    }

    /// Starts sending `agent`'s output to `viewer`, with the output so far.
    ///
    /// # Errors
    /// `agent` is none of this coordinator's ([`EngineError::Missing`]).
    pub async fn watch(&self, agent: AgentId, viewer: Viewer) -> Result<Watching, EngineError> {
        self.ask(|reply| Command::Watch(agent, viewer, reply)).await
    }

    /// Stops sending `agent`'s output to the viewer `viewer` (a no-op if it was not watching).
    ///
    /// # Errors
    /// The actor is gone.
    pub async fn unwatch(&self, agent: AgentId, viewer: u64) -> Result<(), EngineError> {
        self.commands
            .send(Command::Unwatch(agent, viewer))
            .await
            .map_err(|_| EngineError::Unavailable)
    }

    /// Writes to, resizes or kills `agent`'s terminal; answered once the PTY did it.
    ///
    /// # Errors
    /// `agent` is none of this coordinator's ([`EngineError::Missing`]), or the PTY failed.
    pub async fn terminal(&self, agent: AgentId, input: TerminalInput) -> Result<(), EngineError> {
        self.ask(|reply| Command::Terminal(agent, input, reply))
            .await
    }

    /// Starts the coordinator's own agent in its terminal, owned by its actor as its tasks'
    /// agents are: watched, typed into and listed like them; its first prompt typed once it
    /// waits at its prompt with its MCP server connected. An ended one is replaced.
    ///
    /// # Errors
    /// Its own agent runs already ([`EngineError::Conflict`]), or its terminal could not start.
    pub async fn start_own_agent(&self, start: OwnAgentStart) -> Result<AgentId, EngineError> {
        self.ask(|reply| Command::StartOwnAgent(start, reply)).await
    }

    /// The coordinator's own agent, if it started one (kept once it ended, until the
    /// coordinator is deregistered).
    ///
    /// # Errors
    /// The actor is gone.
    pub async fn own_agent(&self) -> Result<Option<OwnAgentView>, EngineError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::OwnAgent(reply))
            .await
            .map_err(|_| EngineError::Unavailable)?;
        answer.await.map_err(|_| EngineError::Unavailable)
    }

    /// Deregisters the coordinator: waits end, tasks stay as orphans, its own agent ends.
    ///
    /// # Errors
    /// The actor is gone.
    pub async fn deregister(&self) -> Result<(), EngineError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Deregister(reply))
            .await
            .map_err(|_| EngineError::Unavailable)?;
        answer.await.map_err(|_| EngineError::Unavailable)
    }
}

/// The coordinators of one daemon, each with its actor.
///
/// Registration is idempotent while a coordinator is registered (the first registration's
/// settings win). A deregistered coordinator's actor moves to the orphans, where the app still
/// sees and closes its tasks; registering its id again starts a fresh actor.
pub struct Engine {
    ports: Ports,
    events: mpsc::Sender<AppEvent>,
    feed: AgentFeed,
    coordinators: std::collections::BTreeMap<CoordinatorId, CoordinatorHandle>,
    orphans: Vec<CoordinatorHandle>,
}

impl Engine {
    /// An engine without coordinators; app events go to `events`.
    #[must_use]
    pub fn new(ports: Ports, events: mpsc::Sender<AppEvent>) -> Self {
        Engine {
            ports,
            events,
            feed: AgentFeed::new(),
            coordinators: std::collections::BTreeMap::new(),
            orphans: Vec::new(),
        }
    }

    /// Registers a coordinator, or returns the one registered under `id`.
    pub fn register(
        &mut self,
        id: CoordinatorId,
        settings: CoordinatorSettings,
    ) -> CoordinatorHandle {
        let (ports, events, feed) = (&self.ports, &self.events, &self.feed);
        self.coordinators
            .entry(id)
            .or_insert_with(|| {
                spawn_coordinator(ports.clone(), id, settings, events.clone(), feed.clone())
            })
            .clone()
    }

    /// The feed of agent events of every coordinator of this engine, for live viewers.
    #[must_use]
    pub fn agent_feed(&self) -> AgentFeed {
        self.feed.clone()
    }

    /// Registers a coordinator restored from `records` after a restart.
    pub fn restore(
        &mut self,
        id: CoordinatorId,
        settings: CoordinatorSettings,
        records: Records,
    ) -> CoordinatorHandle {
        let (ports, events, feed) = (&self.ports, &self.events, &self.feed);
        self.coordinators
            .entry(id)
            .or_insert_with(|| {
                let (events, feed) = (events.clone(), feed.clone());
                restore_coordinator(ports.clone(), id, settings, events, feed, records)
            })
            .clone()
    }

    /// Restores a deregistered coordinator's remaining tasks after a restart: orphans again,
    /// under human control, for the app to see and close.
    ///
    /// # Errors
    /// Its actor is gone.
    pub async fn restore_orphan(
        &mut self,
        id: CoordinatorId,
        settings: CoordinatorSettings,
        records: Records,
    ) -> Result<(), EngineError> {
        let (events, feed) = (self.events.clone(), self.feed.clone());
        let handle = restore_coordinator(self.ports.clone(), id, settings, events, feed, records);
        let result = handle.deregister().await;
        self.orphans.push(handle);
        result
    }

    /// The coordinator registered under `id`.
    #[must_use]
    pub fn coordinator(&self, id: CoordinatorId) -> Option<&CoordinatorHandle> {
        self.coordinators.get(&id)
    }

    /// The ids of the registered coordinators, in order (the reference's "active coordinator"
    /// question is whether this is empty).
    pub fn registered(&self) -> impl Iterator<Item = CoordinatorId> + '_ {
        self.coordinators.keys().copied()
    }

    /// Deregistered coordinators whose orphaned tasks the app may still see and close.
    #[must_use]
    pub fn orphans(&self) -> &[CoordinatorHandle] {
        &self.orphans
    }

    /// Deregisters a coordinator (its tasks stay as orphans). Unknown ids are a no-op.
    /// Orphaned coordinators with no task left are let go first.
    ///
    /// # Errors
    /// Its actor is gone.
    pub async fn deregister(&mut self, id: CoordinatorId) -> Result<(), EngineError> {
        let Some(handle) = self.coordinators.remove(&id) else {
            return Ok(());
        };
        self.prune_orphans().await;
        let result = handle.deregister().await;
        self.orphans.push(handle);
        result
    }

    /// Lets go of orphaned coordinators with no task left (all closed or removed), and of those
    /// whose actor is gone; their actors end. Returns how many were let go.
    pub async fn prune_orphans(&mut self) -> usize {
        let orphans = std::mem::take(&mut self.orphans);
        let total = orphans.len();
        for handle in orphans {
            if handle
                .list_tasks()
                .await
                .is_ok_and(|tasks| !tasks.is_empty())
            {
                self.orphans.push(handle);
            }
        }
        total - self.orphans.len()
    }
}
