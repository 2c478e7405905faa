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
//! Layout:
//! - `actor`: one coordinator's actor (the loop, the commands, the jobs, each agent's terminal
//!   and viewers);
//! - `handle`: the door to an actor ([`CoordinatorHandle`], its commands, [`SignalDelivery`]);
//! - `views`: what callers see and ask with (tasks, the agents' list, the own agent);
//! - `events`: what leaves besides answers (the app's events, the agent feed, viewers and
//!   their terminal input);
//! - `writer`: one ordered writer per terminal, and how a prompt is typed;
//! - this module: the ports, a coordinator's settings, the errors, the bounds, and the
//!   [`Engine`] (the coordinators of one daemon).

mod actor;
mod events;
mod handle;
mod views;
mod writer;

#[cfg(test)]
mod own_tests;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::agents::McpLaunch;
use crate::core::coordinator::{CoreError, OPERATION_JOINERS_MAX, Records};
use crate::core::ids::CoordinatorId;
use crate::ports::{Clock, Entropy, Files, Journal, PtyHost, Repo};

pub use actor::{restore_coordinator, spawn_coordinator};
pub(crate) use events::hand_out;
pub use events::{AgentEvent, AgentFeed, AppEvent, TerminalInput, Viewer, Watched, Watching};
pub(crate) use handle::Command;
pub use handle::{CoordinatorHandle, SignalDelivery};
pub use views::{
    AgentView, AgentsView, CreateTask, DiffView, EXPLAIN_SCREEN_LINES, Explanation,
    LIST_ACTIVITY_STEP_MS, MergeResult, OwnAgentStart, OwnAgentView, TaskList, TaskView,
};
pub(crate) use writer::TypingFailed;
pub use writer::{
    PROMPT_ENTER_DELAY_MS, PROMPT_ENTER_DELAY_MS_MAX, PROMPT_ENTER_DELAY_PER_LINE_MS,
    enter_delay_ms,
};

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
