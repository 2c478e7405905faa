//! One coordinator and its sub-tasks: the engine's decisions, without effects.
//!
//! [`Coordinator`] owns the state of one coordinator: its tasks (in creation order), their
//! idle and signal waiters, the replay cache of its signal waits, and its notifications. Every
//! method takes `now` (wall time from the `Clock` port) and, where something new may be named,
//! [`Fresh`] ids; it returns [`Effect`]s for the engine to carry out: resolve a waiter, tell the
//! app, answer a terminal. The engine runs one of these per coordinator in its own actor and
//! sleeps until [`Coordinator::next_deadline`], then calls [`Coordinator::tick`].
//!
//! Invariants:
//! - A signal is returned by at most one wait. A waiter removed before its answer (timed out, or
//!   its client went away) consumes nothing; an answer the engine could not deliver is taken
//!   back ([`Coordinator::signal_undelivered`]) and offered again.
//! - Waiters are served first come, first served, one event each.
//! - Every collection is bounded: new tasks by [`TASKS_PER_COORDINATOR_MAX`] (a restore keeps
//!   every task it is given), waiters by
//!   [`SIGNAL_WAITERS_MAX`] and [`IDLE_WAITERS_PER_TASK_MAX`], the replay cache and the
//!   notifications by their own bounds.

mod task;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;

pub use task::{
    Control, LAST_LINE_TAIL_BYTES, McpState, SCROLLBACK_BYTES_MAX, Signal, Status, Task,
};
pub(crate) use task::{Lost, Scrollback};

use super::detector::{Profile, Readiness};
use super::ids::{AgentId, CoordinatorId, DoneToken, TaskId};
use super::notify::{
    Completion, Finished, Fresh, Notice, Notifications, SIGNAL_DONE_DELAY_MS, describe,
};
use super::replay::{ReplayCache, RequestId};
use super::state::{AgentState, Attention, Verdict};
use super::time::Millis;

/// Sub-tasks one coordinator may have at once: enough for any batch a coordinator can review,
/// few enough that a runaway coordinator cannot exhaust the machine.
pub const TASKS_PER_COORDINATOR_MAX: usize = 64;
/// `wait_for_signal_done` calls blocked at once for one coordinator.
pub const SIGNAL_WAITERS_MAX: usize = 16;
/// `wait_for_idle` calls blocked at once for one task.
pub const IDLE_WAITERS_PER_TASK_MAX: usize = 16;
/// Longest prompt typed into an agent, in bytes.
pub const PROMPT_BYTES_MAX: usize = 65_536;

/// A prompt as it may be typed into a terminal: every control character but the newline (the
/// escape that could end a bracketed paste early, a carriage return that would submit half a
/// prompt, Ctrl-C) becomes a space. Typed as the user wrote it otherwise.
#[must_use]
pub fn sanitize_prompt(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect()
}
/// What is typed for `prompt` into an agent's terminal: [`sanitize_prompt`]'s text, with each
/// newline a space when the agent did not turn on bracketed paste (a newline would submit what
/// came before it as a prompt of its own). The same for a sub-task's agent and a coordinator's.
#[must_use]
pub fn text_to_type(prompt: &str, bracketed: bool) -> String {
    let clean = sanitize_prompt(prompt);
    if bracketed {
        clean
    } else {
        clean.replace('\n', " ")
    }
}

/// Prompts waiting for one task (behind its assignment, a human's hold, or earlier prompts).
pub const PROMPT_QUEUE_MAX: usize = 32;
/// Bytes of prompts waiting for one task: the queue is saved in the state file at every change
/// (a queued prompt survives a restart), so it is bounded in bytes as well as in prompts. With
/// [`TASKS_PER_COORDINATOR_MAX`] tasks, each with an assignment of [`PROMPT_BYTES_MAX`], a
/// coordinator's records stay under 13 MiB.
pub const PROMPT_QUEUE_BYTES_MAX: usize = 131_072;
/// How long a task's assignment waits for its MCP server to connect before it goes out anyway
/// (agents start MCP servers in the background; most connect within seconds).
pub const MCP_CONNECT_TIMEOUT_MS: u64 = 30_000;
/// How long after a prompt's Enter the agent has to show it took the prompt (a busy frame; for
/// line programs, output): otherwise Enter is pressed again. Under load an Enter that follows a
/// paste too closely was seen to be lost (Claude Code kept the pasted text in its input).
pub const ENTER_RETRY_MS: u64 = 1_500;
/// How many times Enter is pressed again for one prompt.
pub const ENTER_RETRIES_MAX: u8 = 2;
/// Wait used when a caller gives no timeout.
pub const WAIT_TIMEOUT_MS_DEFAULT: u64 = 300_000;
/// Longest wait a caller may ask for; longer requests are clamped to it.
pub const WAIT_TIMEOUT_MS_MAX: u64 = 3_600_000;

/// Identifies one blocked wait within its coordinator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WaiterId(pub u64);

/// How a `wait_for_idle` ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleOutcome {
    /// The agent waits at its prompt.
    Idle,
    /// The agent's process ended (or the task was closed, or its coordinator left).
    Exited,
    /// A human holds the task's terminal.
    HumanControl,
    /// The agent waits for a human (a permission prompt, a dialog, a sign-in…): nobody but a
    /// human can move it on.
    NeedsAttention(Attention),
    /// The app removed the task.
    Removed,
    /// Nothing happened within the timeout.
    TimedOut,
}

/// How a `wait_for_signal_done` ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignalOutcome {
    /// A task signalled done, or exited (then `status` is exited and `at` the exit time).
    Task {
        /// The task.
        task: TaskId,
        /// Its name.
        name: String,
        /// Its status when returned.
        status: Status,
        /// When it signalled (or exited).
        at: Millis,
        /// Tasks of the coordinator still to report.
        remaining: usize,
    },
    /// A task's agent needs a human: the wait returns so its coordinator can say so (nothing
    /// is consumed; its signal, if it comes, is still waited for).
    NeedsAttention {
        /// The task.
        task: TaskId,
        /// Its name.
        name: String,
        /// Why.
        reason: Attention,
        /// Its status.
        status: Status,
        /// Since when.
        at: Millis,
        /// Tasks of the coordinator still to report.
        remaining: usize,
    },
    /// Nothing within the timeout.
    TimedOut {
        /// Tasks of the coordinator still to report.
        remaining: usize,
    },
    /// The coordinator was deregistered while waiting.
    CoordinatorGone {
        /// When.
        at: Millis,
    },
}

/// The start of a wait: answered at once, or blocked until a deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wait<T> {
    /// The answer.
    Ready(T),
    /// Blocked; the answer will come as an [`Effect`] for this waiter, by the deadline at the
    /// latest.
    Blocked {
        /// The waiter.
        waiter: WaiterId,
        /// When it times out.
        deadline: Millis,
    },
}

/// A change of a task's state the app shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateChange {
    /// The task signalled done; `consumed` if a wait returned it already.
    SignalReceived {
        /// When it signalled.
        at: Millis,
        /// Whether a wait returned it.
        consumed: bool,
    },
    /// A wait returned the task's earlier signal.
    SignalConsumed,
    /// The task needs a human's review (its notification could not be delivered).
    NeedsReview,
    /// A new prompt went to the task: its earlier signal no longer counts.
    SignalReset,
    /// Who drives the task changed.
    ControlChanged(Control),
    /// The task's coordinator was deregistered: a human drives it now; `needs_review` if it had
    /// its assignment (its work may be ready).
    Orphaned {
        /// Whether a human should look at its work.
        needs_review: bool,
    },
    /// The task's MCP server did not connect within [`MCP_CONNECT_TIMEOUT_MS`]; its assignment
    /// went out anyway (the agent may lack `signal_done`).
    McpStartupTimedOut,
    /// What its agent is doing changed.
    Agent(Verdict),
}

/// What the engine must do after a decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Tell the app about the coordinator's notifications.
    Notice(Notice),
    /// Tell the app about a task.
    State(TaskId, StateChange),
    /// A task of a deregistered coordinator finished: the app shows it for review.
    Orphaned {
        /// The task.
        task: TaskId,
        /// One line describing how it finished.
        text: String,
    },
    /// Answer a blocked `wait_for_idle`.
    Idle {
        /// The waiter.
        waiter: WaiterId,
        /// Its answer.
        outcome: IdleOutcome,
    },
    /// Answer a blocked `wait_for_signal_done`; if it cannot be delivered, call
    /// [`Coordinator::signal_undelivered`].
    Signal {
        /// The waiter.
        waiter: WaiterId,
        /// Its answer.
        outcome: SignalOutcome,
    },
    /// Type a prompt into a task's agent and press Enter (the core already counts it as being
    /// typed), then report how it went with [`Coordinator::prompt_typed`].
    Type {
        /// The task.
        task: TaskId,
        /// Its agent.
        agent: AgentId,
        /// The prompt.
        text: String,
        /// Wrap it for bracketed paste: the agent asked for it.
        bracketed: bool,
    },
    /// Write to an agent's terminal (a reply to its terminal query).
    Write {
        /// The agent.
        agent: AgentId,
        /// What to write.
        bytes: &'static [u8],
    },
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// No such task under this coordinator.
    #[error("Task not found: {0}")]
    TaskNotFound(TaskId),
    /// The coordinator was deregistered.
    #[error("Coordinator not found: {0}")]
    CoordinatorNotFound(CoordinatorId),
    /// A prompt that is empty or too long.
    #[error("{0}")]
    InvalidPrompt(String),
    /// [`PROMPT_QUEUE_MAX`] prompts wait already.
    #[error("Prompt queue full ({PROMPT_QUEUE_MAX} pending)")]
    QueueFull,
    /// The prompt would take the queue past [`PROMPT_QUEUE_BYTES_MAX`] bytes.
    #[error("Prompt queue full ({PROMPT_QUEUE_BYTES_MAX} bytes of prompts pending at most)")]
    QueueBytesFull,
    /// The task cannot be merged in its state.
    #[error("{0}")]
    NotMergeable(String),
    /// The task's agent cannot be started again in its state.
    #[error("{0}")]
    NotRespawnable(String),
    /// [`TASKS_PER_COORDINATOR_MAX`] tasks exist already.
    #[error(
        "Too many sub-tasks: a coordinator may have {TASKS_PER_COORDINATOR_MAX} at once; close some first"
    )]
    TooManyTasks,
    /// Too many waits are blocked already.
    #[error("Too many concurrent waits ({0} at most)")]
    TooManyWaiters(usize),
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

/// What survives a restart of a task: enough to list it, merge or close it, take its signal,
/// and respawn its agent in its worktree. Its process is gone; a restored task is `exited`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskRecord {
    /// What it is (its done token stays valid after the restart).
    pub spec: TaskSpec,
    /// Its latest signal.
    pub signal: Option<Signal>,
    /// Whether its assignment was delivered.
    pub assignment_delivered: bool,
    /// Who drives it.
    pub control: Control,
    /// Its agent's last exit code.
    pub exit_code: Option<i32>,
    /// Its assignment, while it was not typed yet.
    pub assignment: Option<String>,
    /// Prompts waiting to be typed, oldest first.
    pub queued: Vec<String>,
    /// Whether its agent ran when this was saved (after a restart it did not survive; the
    /// coordinator is told).
    pub alive: bool,
    /// Whether a restart lost its agent and no wait or notification told the coordinator yet.
    pub lost_untold: bool,
}

/// A multi-step operation under way, saved before its first step so that a restart finds it
/// and carries it to an end: rolled back (a create) or forward (a merge, a close).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Intent {
    /// A task is being made: its worktree, branch and config may exist, its record does not.
    /// Rolled back.
    Create {
        /// The task.
        task: TaskId,
        /// Its worktree.
        worktree: PathBuf,
        /// Its branch.
        branch: String,
        /// Its MCP config file.
        config: PathBuf,
    },
    /// A task's branch is being merged (and the task closed after, if `cleanup`). Carried out
    /// again: a merge of what is merged already changes nothing.
    Merge {
        /// The task.
        task: TaskId,
        /// Squash the branch into one commit.
        squash: bool,
        /// The squash commit's message.
        message: Option<String>,
        /// Close the task after.
        cleanup: bool,
    },
    /// A task is being closed. Carried out again: every step of a close is idempotent.
    Close {
        /// The task.
        task: TaskId,
    },
}

/// What kind of operation an [`Intent`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntentKind {
    /// [`Intent::Create`].
    Create,
    /// [`Intent::Merge`].
    Merge,
    /// [`Intent::Close`].
    Close,
}

impl Intent {
    /// Its kind.
    #[must_use]
    pub const fn kind(&self) -> IntentKind {
        match self {
            Intent::Create { .. } => IntentKind::Create,
            Intent::Merge { .. } => IntentKind::Merge,
            Intent::Close { .. } => IntentKind::Close,
        }
    }

    /// The task it is about.
    #[must_use]
    pub const fn task(&self) -> TaskId {
        match self {
            Intent::Create { task, .. } | Intent::Merge { task, .. } | Intent::Close { task } => {
                *task
            }
        }
    }
}

/// A result a `wait_for_signal_done` delivered, kept for its retries ([`ReplayCache`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayRecord {
    /// The client's request id.
    pub request: RequestId,
    /// What it was answered.
    pub outcome: SignalOutcome,
    /// Until when a retry gets it again.
    pub expires_at: Millis,
}

/// Everything of a coordinator's that a restart must find: its tasks, the results its waits
/// delivered (for retries), and the operations under way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Records {
    /// Its tasks, oldest first.
    pub tasks: Vec<TaskRecord>,
    /// Its replay cache's live entries, oldest first.
    pub replay: Vec<ReplayRecord>,
    /// Its operations under way, oldest first.
    pub intents: Vec<Intent>,
}

/// How typing a prompt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Typed {
    /// Text and Enter reached the agent.
    Done,
    /// The text could not be written; here it is, to be typed again.
    TextFailed(String),
    /// The text was written but Enter failed.
    EnterFailed,
}

/// What became of a prompt sent to a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// Typed now (an [`Effect::Type`] follows).
    Typed,
    /// Queued behind the assignment, a human's hold, or earlier prompts.
    Queued,
}

#[derive(Clone, Debug)]
struct SignalWaiter {
    id: WaiterId,
    deadline: Millis,
    request: Option<RequestId>,
}

#[derive(Clone, Copy, Debug)]
struct IdleWaiter {
    id: WaiterId,
    task: TaskId,
    deadline: Millis,
}

/// One coordinator's state. See the module documentation.
#[derive(Debug)]
pub struct Coordinator {
    id: CoordinatorId,
    registered: bool,
    tasks: Vec<Task>,
    notifications: Notifications,
    signal_waiters: VecDeque<SignalWaiter>,
    idle_waiters: Vec<IdleWaiter>,
    replay: ReplayCache<SignalOutcome>,
    next_waiter: u64,
    /// Tasks being closed.
    closing: BTreeMap<TaskId, Closing>,
    /// Operations under way (saved with the records).
    intents: Vec<Intent>,
}

/// What a close found when it began, and what it held back since.
#[derive(Clone, Copy, Debug)]
struct Closing {
    /// A wait returned the task's signal or exit (it was told, nothing pending), before the
    /// close or during it.
    reported: bool,
    /// A notification of the task was pending and the close withdrew it.
    withdrew: bool,
    /// The agent's exit (with its code) that came while closing, not reported yet.
    exit: Option<Option<i32>>,
    /// A `signal_done` with nobody waiting came while closing, not reported yet.
    signalled: bool,
}

impl Coordinator {
    /// A registered coordinator without tasks; notifications wait `notification_delay_ms`.
    #[must_use]
    pub fn new(id: CoordinatorId, notification_delay_ms: u64) -> Self {
        Coordinator {
            id,
            registered: true,
            tasks: Vec::new(),
            notifications: Notifications::new(notification_delay_ms),
            signal_waiters: VecDeque::new(),
            idle_waiters: Vec::new(),
            replay: ReplayCache::default(),
            next_waiter: 0,
            closing: BTreeMap::new(),
            intents: Vec::new(),
        }
    }

    /// A registered coordinator restored from `records` after a restart: every task is
    /// `exited` (its process died with the old daemon) and keeps its done token, signal,
    /// untyped assignment and queued prompts (typed once its agent is started again). A task
    /// whose agent ran is *lost* until the coordinator is told (by its next
    /// `wait_for_signal_done`, or [`Self::report_lost`]): `remaining` counts it. The replay
    /// cache and the operations under way come back too (the engine carries the operations to
    /// an end).
    #[must_use]
    pub fn restore(
        id: CoordinatorId,
        notification_delay_ms: u64,
        now: Millis,
        records: Records,
    ) -> Self {
        let mut coordinator = Coordinator::new(id, notification_delay_ms);
        // Every record is kept, even past the bound: those tasks exist on disk and must stay
        // reachable to be closed. The bound stops new ones.
        for record in records.tasks {
            let mut task = Task::new(record.spec, now);
            task.status = Status::Exited;
            task.exit_code = record.exit_code;
            task.control = record.control;
            task.signal = record.signal;
            task.assignment_delivered = record.assignment_delivered;
            task.assignment = record.assignment;
            task.queued = record.queued.into_iter().take(PROMPT_QUEUE_MAX).collect();
            task.lost = if record.alive || record.lost_untold {
                Lost::Untold
            } else {
                Lost::No
            };
            task.mcp = McpState::GaveUp;
            task.evidence.exited(now);
            task.state = crate::core::state::decide(&task.evidence, now);
            coordinator.tasks.push(task);
        }
        for entry in records.replay {
            coordinator
                .replay
                .restore(id, entry.request, entry.outcome, entry.expires_at);
        }
        coordinator.intents = records.intents;
        coordinator
    }

    /// What to persist: its tasks, its replay cache, its operations under way.
    #[must_use]
    pub fn records(&self) -> Records {
        let tasks = self
            .tasks
            .iter()
            .map(|task| TaskRecord {
                spec: task.spec(),
                signal: task.signal,
                assignment_delivered: task.assignment_delivered,
                control: task.control,
                exit_code: task.exit_code,
                assignment: task.assignment.clone(),
                queued: task.queued.iter().cloned().collect(),
                alive: task.status != Status::Exited,
                lost_untold: task.lost == Lost::Untold,
            })
            .collect();
        let replay = self
            .replay
            .live(self.id)
            .into_iter()
            .map(|(request, outcome, expires_at)| ReplayRecord {
                request,
                outcome,
                expires_at,
            })
            .collect();
        Records {
            tasks,
            replay,
            intents: self.intents.clone(),
        }
    }

    /// An operation begins: saved with the next records, until [`Self::end_intent`].
    pub fn begin_intent(&mut self, intent: Intent) {
        self.intents.retain(|held| held != &intent);
        self.intents.push(intent);
    }

    /// An operation on `task` of the kind of `like` ended (done, or undone).
    pub fn end_intent(&mut self, task: TaskId, like: IntentKind) {
        self.intents
            .retain(|held| held.task() != task || held.kind() != like);
    }

    /// The operations under way.
    #[must_use]
    pub fn intents(&self) -> &[Intent] {
        &self.intents
    }

    /// How many tasks' agents a restart lost without the coordinator being told yet.
    #[must_use]
    pub fn lost_untold(&self) -> usize {
        self.tasks
            .iter()
            .filter(|task| task.lost == Lost::Untold)
            .count()
    }

    /// Tells the coordinator, by notification, of every task whose agent a restart lost and
    /// that nothing told it of yet (a wait that comes first returns them instead). An orphan's
    /// task is shown to the app.
    pub fn report_lost(&mut self, now: Millis, fresh: Fresh) -> Vec<Effect> {
        let mut effects = Vec::new();
        let lost: Vec<(TaskId, usize)> = self
            .tasks
            .iter()
            .filter(|task| task.lost == Lost::Untold)
            .map(|task| {
                (
                    task.id,
                    usize::from(task.assignment.is_some()) + task.queued.len(),
                )
            })
            .collect();
        for (task, held) in lost {
            self.report(
                now,
                fresh,
                task,
                Completion::Lost { held },
                None,
                &mut effects,
            );
        }
        effects
    }

    /// Its id.
    #[must_use]
    pub const fn id(&self) -> CoordinatorId {
        self.id
    }

    /// Whether it is registered (not yet deregistered).
    #[must_use]
    pub const fn is_registered(&self) -> bool {
        self.registered
    }

    /// Its tasks, oldest first.
    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.iter()
    }

    /// One of its tasks.
    #[must_use]
    pub fn task(&self, id: TaskId) -> Option<&Task> {
        self.tasks.iter().find(|task| task.id == id)
    }

    /// Its notifications.
    #[must_use]
    pub const fn notifications(&self) -> &Notifications {
        &self.notifications
    }

    fn task_mut(&mut self, id: TaskId) -> Result<&mut Task, CoreError> {
        self.tasks
            .iter_mut()
            .find(|task| task.id == id)
            .ok_or(CoreError::TaskNotFound(id))
    }

    /// Adds a task whose agent runs: its status is `running` from now on.
    ///
    /// # Errors
    /// The coordinator was deregistered, or has [`TASKS_PER_COORDINATOR_MAX`] tasks already.
    pub fn add_task(&mut self, now: Millis, new: NewTask) -> Result<(), CoreError> {
        if !self.registered {
            return Err(CoreError::CoordinatorNotFound(self.id));
        }
        if self.tasks.len() >= TASKS_PER_COORDINATOR_MAX {
            return Err(CoreError::TooManyTasks);
        }
        let mut task = Task::new(new.spec, now);
        task.assignment = new.assignment.filter(|a| !a.trim().is_empty());
        self.tasks.push(task);
        Ok(())
    }

    /// A prompt starts being typed into a task's agent: the task works again (it is its
    /// assignment if it had none), and its screen so far proves nothing.
    fn start_typing(&mut self, now: Millis, task: TaskId, prompt: &str) {
        let Ok(entry) = self.task_mut(task) else {
            return;
        };
        entry.detector.prompt_sent(now, prompt);
        entry.evidence.prompt_sent(now);
        entry.typing = true;
        entry.enter_retry = None;
        entry.assignment_delivered = true;
        if entry.status != Status::Exited {
            entry.status = Status::Running;
        }
    }

    /// The engine finished typing a prompt. A typed prompt starts a new round: the task's
    /// earlier signal no longer counts (it is waited for again; the reference kept it out of
    /// `remaining` until it signalled again) and its completions are reported again. A prompt
    /// whose text could not be written goes back to the head of the queue, to be typed at the
    /// agent's next prompt; one whose Enter failed is not typed again (its text is in the
    /// agent's input already). The next queued prompt may follow.
    pub fn prompt_typed(
        &mut self,
        now: Millis,
        fresh: Fresh,
        task: TaskId,
        outcome: Typed,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        let Ok(entry) = self.task_mut(task) else {
            return effects;
        };
        entry.typing = false;
        match outcome {
            Typed::Done => {
                entry.enter_retry = Some((now.plus(ENTER_RETRY_MS), ENTER_RETRIES_MAX));
                // Every signal until the Enter belongs to the round before: the agent could not
                // have read the new prompt before it was submitted.
                if entry.signal.is_some() {
                    entry.signal = None;
                    effects.push(Effect::State(task, StateChange::SignalReset));
                }
                if !self.closing.contains_key(&task) {
                    self.notifications.unsilence(task);
                }
            }
            Typed::TextFailed(text) => entry.queued.push_front(text),
            Typed::EnterFailed => {}
        }
        self.assess(now, fresh, task, &mut effects);
        effects
    }

    /// Starts closing a task: its pending notification is withdrawn and nothing more is
    /// reported for it; the engine then kills its agent and removes its worktree, and calls
    /// [`finish_close`](Self::finish_close) or [`close_failed`](Self::close_failed).
    ///
    /// # Errors
    /// No such task.
    pub fn begin_close(
        &mut self,
        now: Millis,
        fresh: Fresh,
        task: TaskId,
    ) -> Result<Vec<Effect>, CoreError> {
        self.task_mut(task)?;
        let mut effects = Vec::new();
        // Told already: a wait returned it (silenced, nothing pending). A notification still
        // pending is withdrawn below, so the close itself must tell a blocked wait.
        let reported = self.notifications.is_flagged(task) && !self.notifications.has_pending(task);
        let withdrew = self.notifications.has_pending(task);
        if let Some(notice) = self.notifications.suppress(now, fresh, task) {
            effects.push(Effect::Notice(notice));
        }
        self.notifications.silence(task);
        let closing = Closing {
            reported,
            withdrew,
            exit: None,
            signalled: false,
        };
        self.closing.insert(task, closing);
        Ok(effects)
    }

    /// The app removed a task on its own (its agent and worktree are the app's business now):
    /// its waits end with `removed` and it is forgotten.
    ///
    /// # Errors
    /// No such task.
    pub fn remove_task(
        &mut self,
        now: Millis,
        fresh: Fresh,
        task: TaskId,
    ) -> Result<Vec<Effect>, CoreError> {
        self.task_mut(task)?;
        let mut effects = Vec::new();
        if let Some(notice) = self.notifications.suppress(now, fresh, task) {
            effects.push(Effect::Notice(notice));
        }
        self.resolve_idle_waiters(task, IdleOutcome::Removed, &mut effects);
        self.tasks.retain(|t| t.id != task);
        self.notifications.unsilence(task);
        self.closing.remove(&task);
        Ok(effects)
    }

    /// Closing a task failed half-way: it stays, and may be closed again. It is left as if the
    /// close had not begun, with what happened meanwhile told now: its silence is restored, a
    /// notification the close withdrew is reported again, an exit or a signal held back during
    /// the close is reported (or answers a blocked wait), and held prompts may go out.
    pub fn close_failed(&mut self, now: Millis, fresh: Fresh, task: TaskId) -> Vec<Effect> {
        let mut effects = Vec::new();
        let Some(closing) = self.closing.remove(&task) else {
            return effects;
        };
        if !closing.reported {
            self.notifications.unsilence(task);
        }
        if let Some(code) = closing.exit {
            effects.extend(self.on_exit(now, fresh, task, code));
        } else if closing.signalled {
            self.report_signal(now, fresh, task, &mut effects);
        } else if closing.withdrew {
            let completion = match self.task(task).map(|t| (t.status, t.exit_code)) {
                Some((Status::Exited, code)) => Some(Completion::Exited(code)),
                Some((Status::Idle, _)) => Some(Completion::Idle),
                _ => None,
            };
            if let Some(completion) = completion {
                self.report(now, fresh, task, completion, None, &mut effects);
            }
        }
        self.assess(now, fresh, task, &mut effects);
        effects
    }

    /// A task's worktree and branch are gone: its waits end, a blocked signal wait learns it
    /// ended (unless it was reported already), and the task is forgotten.
    pub fn finish_close(&mut self, now: Millis, fresh: Fresh, task: TaskId) -> Vec<Effect> {
        let mut effects = Vec::new();
        let Some(entry) = self.task(task) else {
            return effects;
        };
        let name = entry.name.clone();
        let reported = self.closing.remove(&task).is_some_and(|c| c.reported);
        self.resolve_idle_waiters(task, IdleOutcome::Exited, &mut effects);
        if !reported && !self.signal_waiters.is_empty() {
            self.tasks.retain(|t| t.id != task);
            let remaining = self.remaining();
            let outcome = SignalOutcome::Task {
                task,
                name,
                status: Status::Exited,
                at: now,
                remaining,
            };
            self.answer_first_signal_waiter(now, fresh, outcome, &mut effects);
        } else {
            self.tasks.retain(|t| t.id != task);
        }
        self.notifications.unsilence(task);
        effects
    }

    /// A prompt for a task: typed at once, or queued behind its assignment, a human's hold, a
    /// prompt being typed or earlier prompts (typed, in order, when its agent next shows its
    /// prompt).
    ///
    /// # Errors
    /// No such task; an empty prompt or one over [`PROMPT_BYTES_MAX`]; a full queue. Nothing
    /// changes then.
    pub fn send_prompt(
        &mut self,
        now: Millis,
        task: TaskId,
        prompt: String,
    ) -> Result<(Sent, Vec<Effect>), CoreError> {
        let prompt = sanitize_prompt(&prompt);
        if self.closing.contains_key(&task) {
            return Err(CoreError::InvalidPrompt(format!("Task {task} is closing")));
        }
        let entry = self.task_mut(task)?;
        if entry.status == Status::Exited {
            // Its agent is gone and is never respawned: nothing would read the prompt.
            return Err(CoreError::InvalidPrompt(format!("Task {task} has exited")));
        }
        if prompt.trim().is_empty() {
            return Err(CoreError::InvalidPrompt(
                "prompt must be a non-empty string".into(),
            ));
        }
        if prompt.len() > PROMPT_BYTES_MAX {
            return Err(CoreError::InvalidPrompt(format!(
                "Prompt exceeds {PROMPT_BYTES_MAX} byte limit"
            )));
        }
        // A screen asking a human is not the agent's prompt: text and Enter typed there would
        // answer it (a permission prompt's first choice is "Yes").
        let must_wait = entry.assignment.is_some()
            || !entry.queued.is_empty()
            || entry.typing
            || entry.control == Control::Human
            || entry.state.state.attention().is_some();
        if must_wait {
            if entry.queued.len() >= PROMPT_QUEUE_MAX {
                return Err(CoreError::QueueFull);
            }
            let held: usize = entry.queued.iter().map(String::len).sum();
            if held + prompt.len() > PROMPT_QUEUE_BYTES_MAX {
                return Err(CoreError::QueueBytesFull);
            }
            entry.queued.push_back(prompt);
            return Ok((Sent::Queued, Vec::new()));
        }
        let mut effects = Vec::new();
        self.type_prompt(now, task, prompt, &mut effects);
        Ok((Sent::Typed, effects))
    }

    /// Types the task's assignment or its oldest queued prompt, if the coordinator drives it
    /// (the assignment only once its MCP server connected, or gave up). Returns whether work
    /// is typed or still waiting for the task (then it does not count as idle).
    fn flush_prompt(&mut self, now: Millis, task: TaskId, effects: &mut Vec<Effect>) -> bool {
        // Nothing is typed into a task being closed; a failed close lets its queue go on.
        if self.closing.contains_key(&task) {
            return false;
        }
        let Ok(entry) = self.task_mut(task) else {
            return false;
        };
        if entry.typing {
            return true;
        }
        if entry.assignment.is_some() {
            if entry.control == Control::Human {
                return true;
            }
            match entry.mcp {
                McpState::Waiting { until } if now < until => return true,
                McpState::Waiting { .. } => {
                    entry.mcp = McpState::GaveUp;
                    effects.push(Effect::State(task, StateChange::McpStartupTimedOut));
                }
                McpState::Connected | McpState::GaveUp => {}
            }
        }
        let Ok(entry) = self.task_mut(task) else {
            return false;
        };
        if entry.control == Control::Human {
            return false;
        }
        let next = match entry.assignment.take() {
            Some(assignment) => {
                entry.assignment_delivered = true;
                Some(assignment)
            }
            None => entry.queued.pop_front(),
        };
        match next {
            Some(prompt) => {
                self.type_prompt(now, task, prompt, effects);
                true
            }
            None => false,
        }
    }

    /// A task's MCP server connected: its assignment may go out (at once if its agent waits).
    ///
    /// # Errors
    /// No such task.
    pub fn mcp_connected(
        &mut self,
        now: Millis,
        fresh: Fresh,
        task: TaskId,
    ) -> Result<Vec<Effect>, CoreError> {
        self.task_mut(task)?.mcp = McpState::Connected;
        let mut effects = Vec::new();
        self.assess(now, fresh, task, &mut effects);
        Ok(effects)
    }

    /// A hook of a task's agent reported `state` (see `core::state::hook_state`): evidence for
    /// its agent's state, acted on at once.
    ///
    /// # Errors
    /// No such task.
    pub fn on_hook(
        &mut self,
        now: Millis,
        fresh: Fresh,
        task: TaskId,
        state: Option<AgentState>,
    ) -> Result<Vec<Effect>, CoreError> {
        let entry = self.task_mut(task)?;
        let mut effects = Vec::new();
        if let Some(state) = state
            && entry.status != Status::Exited
        {
            entry.evidence.hook(now, state);
            self.observe_state(now, fresh, task, &mut effects);
        }
        Ok(effects)
    }

    /// Starts typing `prompt` (see [`start_typing`](Self::start_typing)) and asks the engine to
    /// type it.
    fn type_prompt(
        &mut self,
        now: Millis,
        task: TaskId,
        prompt: String,
        effects: &mut Vec<Effect>,
    ) {
        let Some(bracketed) = self.task(task).map(Task::bracketed_paste) else {
            return;
        };
        let text = text_to_type(&prompt, bracketed);
        self.start_typing(now, task, &text);
        if let Some(entry) = self.task(task) {
            effects.push(Effect::Type {
                task,
                agent: entry.agent,
                text,
                bracketed,
            });
        }
    }

    /// Whether a task may be merged: not while it still works without having signalled done.
    ///
    /// # Errors
    /// No such task, or [`CoreError::NotMergeable`] saying why.
    pub fn check_merge(&self, task: TaskId) -> Result<(), CoreError> {
        let entry = self.task(task).ok_or(CoreError::TaskNotFound(task))?;
        match entry.status {
            Status::Running if entry.signal.is_none() => Err(CoreError::NotMergeable(format!(
                "Task {task} is still running. Use send_prompt for follow-up, or wait until it \
                 signals done or goes idle before calling merge_task."
            ))),
            _ => Ok(()),
        }
    }

    /// The app typed a notification batch into the coordinator.
    pub fn ack_notification(&mut self, batch: crate::core::ids::BatchId) {
        self.notifications.ack(batch);
    }

    /// The app gave up typing a notification batch: its tasks need a human's review.
    pub fn drop_notification(&mut self, batch: crate::core::ids::BatchId) -> Vec<Effect> {
        let tasks = self.notifications.drop_batch(batch);
        tasks
            .into_iter()
            .map(|task| Effect::State(task, StateChange::NeedsReview))
            .collect()
    }

    /// The user typed into the coordinator while a batch was staged: stage it again later.
    pub fn reschedule_notifications(&mut self, now: Millis) {
        self.notifications.reschedule_restage(now);
    }

    /// Records that a task's agent has the assignment (idle notifications may follow).
    ///
    /// # Errors
    /// No such task.
    pub fn assignment_delivered(
        &mut self,
        now: Millis,
        task: TaskId,
        prompt: &str,
    ) -> Result<(), CoreError> {
        let task = self.task_mut(task)?;
        task.assignment_delivered = true;
        task.detector.prompt_sent(now, prompt);
        if task.status == Status::Idle {
            task.status = Status::Running;
        }
        Ok(())
    }

    /// Tasks still to report to `wait_for_signal_done`: all but those whose signal a wait
    /// returned and those that exited without signalling.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.tasks
            .iter()
            .filter(|task| match task.signal {
                Some(signal) => !signal.consumed,
                None => task.status != Status::Exited || task.lost == Lost::Untold,
            })
            .count()
    }

    /// A task's terminal was resized: its detector's screen follows.
    pub fn on_resize(&mut self, task: TaskId, cols: u16, rows: u16) {
        if let Ok(entry) = self.task_mut(task) {
            entry.detector.resize(cols, rows);
        }
    }

    /// How a task's exited agent would be started again: its command line and worktree.
    ///
    /// # Errors
    /// No such task, or [`CoreError::NotRespawnable`]: its agent still runs, it is being closed,
    /// or its command line is not known.
    pub fn respawn_spec(&self, task: TaskId) -> Result<(Vec<String>, PathBuf), CoreError> {
        let entry = self.task(task).ok_or(CoreError::TaskNotFound(task))?;
        let refuse = |why: &str| Err(CoreError::NotRespawnable(format!("Task {task} {why}")));
        if self.closing.contains_key(&task) {
            return refuse("is closing");
        }
        if entry.status != Status::Exited {
            return refuse("still has its agent running; only an exited agent is started again");
        }
        if entry.launch.is_empty() {
            return refuse("was made before Baton kept its agent's command line");
        }
        Ok((entry.launch.clone(), entry.worktree.clone()))
    }

    /// A task's agent was started again as `agent`, with the command line `launch` and the
    /// files Baton wrote for it now: the task runs, its screen starts over, and its exit code is
    /// gone. Its assignment, queued prompts, signal and control stay as they were (what waits
    /// is typed once the new agent is ready and its MCP server connected).
    ///
    /// # Errors
    /// As [`respawn_spec`](Self::respawn_spec).
    pub fn respawned(
        &mut self,
        now: Millis,
        fresh: Fresh,
        task: TaskId,
        agent: AgentId,
        launch: Vec<String>,
        worktree_files: Vec<WorktreeFile>,
    ) -> Result<Vec<Effect>, CoreError> {
        self.respawn_spec(task)?;
        // A notification that its agent ended (or was lost) is no news any more; one of its
        // signal still is.
        let mut effects = Vec::new();
        let stale = self.notifications.pending().iter().any(|p| {
            p.finished.task == task
                && matches!(
                    p.finished.completion,
                    Completion::Exited(_) | Completion::Lost { .. }
                )
        });
        if stale && let Some(notice) = self.notifications.suppress(now, fresh, task) {
            effects.push(Effect::Notice(notice));
        }
        self.notifications.unsilence(task);
        let entry = self.task_mut(task)?;
        entry.agent = agent;
        entry.launch = launch;
        entry.worktree_files = worktree_files;
        entry.status = Status::Running;
        entry.exit_code = None;
        entry.lost = Lost::No;
        // The new agent starts its own MCP server: what it was asked waits for it again.
        entry.mcp = McpState::Waiting {
            until: now.plus(MCP_CONNECT_TIMEOUT_MS),
        };
        entry.typing = false;
        entry.enter_retry = None;
        entry.detector.reset(now);
        entry.evidence = crate::core::state::Evidence::started(now);
        entry.state = Verdict::starting(now);
        entry.scrollback = Scrollback::default();
        Ok(effects)
    }

    /// Output of a task's agent arrived.
    pub fn on_output(
        &mut self,
        now: Millis,
        fresh: Fresh,
        task: TaskId,
        bytes: &[u8],
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        let Ok(entry) = self.task_mut(task) else {
            return effects;
        };
        entry.scrollback.push(bytes);
        entry.detector.feed(now, bytes);
        while let Some(query) = entry.detector.poll_query() {
            effects.push(Effect::Write {
                agent: entry.agent,
                bytes: query.reply(),
            });
        }
        self.assess(now, fresh, task, &mut effects);
        effects
    }

    /// Applies the detector's judgement of a task at `now`, then what its agent's state became.
    fn assess(&mut self, now: Millis, fresh: Fresh, task: TaskId, effects: &mut Vec<Effect>) {
        self.assess_screen(now, fresh, task, effects);
        self.observe_state(now, fresh, task, effects);
    }

    /// The detector's judgement: an idle agent gets its next prompt or is reported idle.
    fn assess_screen(
        &mut self,
        now: Millis,
        fresh: Fresh,
        task: TaskId,
        effects: &mut Vec<Effect>,
    ) {
        let Ok(entry) = self.task_mut(task) else {
            return;
        };
        if entry.status == Status::Exited {
            return;
        }
        if let Some((at, left)) = entry.enter_retry {
            // Never on a screen that asks a human: an Enter there answers it (a permission
            // prompt's first choice is "Yes").
            let asks = entry.state.state.attention().is_some()
                || matches!(entry.detector.readiness(), Readiness::Attention(_));
            if entry.detector.prompt_taken() || entry.control == Control::Human || asks {
                entry.enter_retry = None;
            } else if now >= at {
                // The agent shows nothing of the prompt it was given: its Enter was lost.
                effects.push(Effect::Write {
                    agent: entry.agent,
                    bytes: b"\r",
                });
                entry.enter_retry = (left > 1).then(|| (now.plus(ENTER_RETRY_MS), left - 1));
            }
        }
        let assessment = entry.detector.assess(now);
        if assessment.idle && self.flush_prompt(now, task, effects) {
            return;
        }
        let Ok(entry) = self.task_mut(task) else {
            return;
        };
        if assessment.idle {
            let became_idle = entry.status == Status::Running;
            entry.status = Status::Idle;
            self.resolve_idle_waiters(task, IdleOutcome::Idle, effects);
            if became_idle {
                self.report(now, fresh, task, Completion::Idle, None, effects);
            }
        } else if assessment.readiness != Readiness::Ready && entry.status == Status::Idle {
            entry.status = Status::Running;
        }
    }

    /// Takes the screen's reading of a task into its evidence and acts on a change of its
    /// agent's state: the app is told; a state that needs a human answers the task's idle waits
    /// and tells the coordinator (its blocked signal wait, or a notification); leaving it
    /// withdraws that notification if it is still pending.
    fn observe_state(
        &mut self,
        now: Millis,
        fresh: Fresh,
        task: TaskId,
        effects: &mut Vec<Effect>,
    ) {
        let Ok(entry) = self.task_mut(task) else {
            return;
        };
        entry.detector.observe_into(now, &mut entry.evidence);
        let verdict = crate::core::state::decide(&entry.evidence, now);
        let before = entry.state.state;
        entry.state = verdict;
        if verdict.state == before {
            return;
        }
        effects.push(Effect::State(task, StateChange::Agent(verdict)));
        if before.attention().is_some() && self.notifications.pending_attention(task) {
            // Answered: what it asked is no news any more, but how it stands now may be.
            if let Some(notice) = self.notifications.suppress(now, fresh, task) {
                effects.push(Effect::Notice(notice));
            }
            let completion = match self.task(task).map(|t| (t.status, t.exit_code)) {
                Some((Status::Idle, _)) => Some(Completion::Idle),
                Some((Status::Exited, code)) => Some(Completion::Exited(code)),
                _ => None,
            };
            if let Some(completion) = completion {
                self.report(now, fresh, task, completion, None, effects);
            }
        }
        let Some(reason) = verdict.state.attention() else {
            return;
        };
        // A human at the terminal answers it: nothing for the coordinator.
        if self.task(task).is_some_and(|t| t.control == Control::Human) {
            return;
        }
        self.resolve_idle_waiters(task, IdleOutcome::NeedsAttention(reason), effects);
        if !self.closing.contains_key(&task) {
            self.tell_attention(now, fresh, task, reason, effects);
        }
    }

    /// Tells the coordinator that a task's agent needs a human: its first blocked signal wait
    /// returns with it, or, with none blocked, a notification.
    fn tell_attention(
        &mut self,
        now: Millis,
        fresh: Fresh,
        task: TaskId,
        reason: Attention,
        effects: &mut Vec<Effect>,
    ) {
        let Some(entry) = self.task(task) else { return };
        if self.signal_waiters.is_empty() {
            self.report(
                now,
                fresh,
                task,
                Completion::NeedsAttention(reason),
                None,
                effects,
            );
            return;
        }
        let outcome = SignalOutcome::NeedsAttention {
            task,
            name: entry.name.clone(),
            reason,
            status: entry.status,
            at: entry.state.since,
            remaining: self.remaining(),
        };
        self.answer_first_signal_waiter(now, fresh, outcome, effects);
    }

    /// A task's agent exited.
    pub fn on_exit(
        &mut self,
        now: Millis,
        fresh: Fresh,
        task: TaskId,
        code: Option<i32>,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        let Ok(entry) = self.task_mut(task) else {
            return effects;
        };
        entry.status = Status::Exited;
        entry.exit_code = code;
        entry.evidence.exited(now);
        let name = entry.name.clone();
        self.observe_state(now, fresh, task, &mut effects);
        self.resolve_idle_waiters(task, IdleOutcome::Exited, &mut effects);
        if let Some(closing) = self.closing.get_mut(&task) {
            // Most likely killed by its close: told when the close ends, once.
            closing.exit = Some(code);
            return effects;
        }
        if !self.signal_waiters.is_empty() {
            if let Some(notice) = self.notifications.suppress(now, fresh, task) {
                effects.push(Effect::Notice(notice));
            }
            self.notifications.silence(task);
            let remaining = self.remaining();
            let outcome = SignalOutcome::Task {
                task,
                name,
                status: Status::Exited,
                at: now,
                remaining,
            };
            self.answer_first_signal_waiter(now, fresh, outcome, &mut effects);
            return effects;
        }
        self.report(
            now,
            fresh,
            task,
            Completion::Exited(code),
            None,
            &mut effects,
        );
        effects
    }

    /// A task's agent called `signal_done`.
    ///
    /// # Errors
    /// No such task.
    pub fn signal_done(
        &mut self,
        now: Millis,
        fresh: Fresh,
        task: TaskId,
    ) -> Result<Vec<Effect>, CoreError> {
        let mut effects = Vec::new();
        let entry = self.task_mut(task)?;
        entry.assignment_delivered = true;
        entry.signal = Some(Signal {
            at: now,
            consumed: false,
        });
        let (name, status) = (entry.name.clone(), entry.status);
        if self.signal_waiters.is_empty() {
            if let Some(closing) = self.closing.get_mut(&task) {
                closing.signalled = true;
            }
            effects.push(Effect::State(
                task,
                StateChange::SignalReceived {
                    at: now,
                    consumed: false,
                },
            ));
            self.report_signal(now, fresh, task, &mut effects);
            return Ok(effects);
        }
        self.consume_signal(now, fresh, task, &mut effects);
        effects.push(Effect::State(
            task,
            StateChange::SignalReceived {
                at: now,
                consumed: true,
            },
        ));
        let remaining = self.remaining();
        let outcome = SignalOutcome::Task {
            task,
            name,
            status,
            at: now,
            remaining,
        };
        self.answer_first_signal_waiter(now, fresh, outcome, &mut effects);
        Ok(effects)
    }

    /// Marks a task's signal returned by a wait: its pending notification is withdrawn and no
    /// other is made for it.
    fn consume_signal(
        &mut self,
        now: Millis,
        fresh: Fresh,
        task: TaskId,
        effects: &mut Vec<Effect>,
    ) {
        if let Ok(entry) = self.task_mut(task)
            && let Some(signal) = &mut entry.signal
        {
            signal.consumed = true;
        }
        if let Some(closing) = self.closing.get_mut(&task) {
            closing.reported = true;
        }
        if let Some(notice) = self.notifications.suppress(now, fresh, task) {
            effects.push(Effect::Notice(notice));
        }
        self.notifications.silence(task);
    }

    /// Starts a `wait_for_signal_done`: a replayed answer for a known request id, an unconsumed
    /// signal, or a blocked waiter. `timeout_ms` is clamped to [`WAIT_TIMEOUT_MS_MAX`].
    ///
    /// # Errors
    /// The coordinator was deregistered, or [`SIGNAL_WAITERS_MAX`] waits are blocked already.
    pub fn wait_for_signal(
        &mut self,
        now: Millis,
        fresh: Fresh,
        request: Option<RequestId>,
        timeout_ms: Option<u64>,
    ) -> Result<(Wait<SignalOutcome>, Vec<Effect>), CoreError> {
        if !self.registered {
            return Err(CoreError::CoordinatorNotFound(self.id));
        }
        let mut effects = Vec::new();
        if let Some(request) = &request
            && let Some(answer) = self.replay.get(now, self.id, request)
        {
            return Ok((Wait::Ready(answer.clone()), effects));
        }
        let unconsumed = self
            .tasks
            .iter()
            .find(|task| task.signal.is_some_and(|s| !s.consumed));
        if let Some(task) = unconsumed {
            let (id, name, status) = (task.id, task.name.clone(), task.status);
            let at = task.signal.map_or(now, |signal| signal.at);
            self.consume_signal(now, fresh, id, &mut effects);
            effects.push(Effect::State(id, StateChange::SignalConsumed));
            let outcome = SignalOutcome::Task {
                task: id,
                name,
                status,
                at,
                remaining: self.remaining(),
            };
            if let Some(request) = request {
                self.replay.insert(now, self.id, request, outcome.clone());
            }
            return Ok((Wait::Ready(outcome), effects));
        }
        // A task whose agent a restart lost, not told yet: returned as exited.
        // (One that signalled was told by its signal.)
        let lost = self
            .tasks
            .iter_mut()
            .find(|task| task.lost == Lost::Untold && task.signal.is_none());
        if let Some(task) = lost {
            task.lost = Lost::Told;
            let (id, name, status) = (task.id, task.name.clone(), task.status);
            if let Some(notice) = self.notifications.suppress(now, fresh, id) {
                effects.push(Effect::Notice(notice));
            }
            self.notifications.silence(id);
            let outcome = SignalOutcome::Task {
                task: id,
                name,
                status,
                at: now,
                remaining: self.remaining(),
            };
            if let Some(request) = request {
                self.replay.insert(now, self.id, request, outcome.clone());
            }
            return Ok((Wait::Ready(outcome), effects));
        }
        // A task that needs a human and was not told yet: the wait tells it at once (its
        // notification would be withdrawn by the wait, and nothing would say it).
        let stuck = self.tasks.iter().find(|task| {
            task.state.state.attention().is_some() && self.notifications.pending_attention(task.id)
        });
        if let Some(task) = stuck
            && let Some(reason) = task.state.state.attention()
        {
            let outcome = SignalOutcome::NeedsAttention {
                task: task.id,
                name: task.name.clone(),
                reason,
                status: task.status,
                at: task.state.since,
                remaining: self.remaining(),
            };
            let id = task.id;
            if let Some(notice) = self.notifications.suppress(now, fresh, id) {
                effects.push(Effect::Notice(notice));
            }
            if let Some(request) = request {
                self.replay.insert(now, self.id, request, outcome.clone());
            }
            return Ok((Wait::Ready(outcome), effects));
        }
        if self.signal_waiters.len() >= SIGNAL_WAITERS_MAX {
            return Err(CoreError::TooManyWaiters(SIGNAL_WAITERS_MAX));
        }
        if let Some(notice) = self.notifications.begin_signal_wait() {
            effects.push(Effect::Notice(notice));
        }
        let waiter = self.new_waiter();
        let deadline = now.plus(clamp_timeout(timeout_ms));
        self.signal_waiters.push_back(SignalWaiter {
            id: waiter,
            deadline,
            request,
        });
        Ok((Wait::Blocked { waiter, deadline }, effects))
    }

    /// Gives `outcome` to the first blocked signal waiter (remembering it for replay) and lets
    /// notifications resume if it was the last.
    fn answer_first_signal_waiter(
        &mut self,
        now: Millis,
        fresh: Fresh,
        outcome: SignalOutcome,
        effects: &mut Vec<Effect>,
    ) {
        let Some(waiter) = self.signal_waiters.pop_front() else {
            return;
        };
        if let Some(request) = waiter.request {
            self.replay.insert(now, self.id, request, outcome.clone());
        }
        effects.push(Effect::Signal {
            waiter: waiter.id,
            outcome,
        });
        if let Some(notice) = self.notifications.finish_signal_wait(now, fresh) {
            effects.push(Effect::Notice(notice));
        }
    }

    /// A blocked signal wait's client went away before any answer: it consumes nothing.
    pub fn cancel_signal_wait(
        &mut self,
        now: Millis,
        fresh: Fresh,
        waiter: WaiterId,
    ) -> Vec<Effect> {
        let before = self.signal_waiters.len();
        self.signal_waiters.retain(|w| w.id != waiter);
        if self.signal_waiters.len() == before {
            return Vec::new();
        }
        self.notifications
            .finish_signal_wait(now, fresh)
            .map(Effect::Notice)
            .into_iter()
            .collect()
    }

    /// The engine could not deliver a signal wait's answer (its client went away in the
    /// meantime). A task's signal is taken back, unconsumed, and offered to the next waiter; or,
    /// with none, reported as a notification. Its replay entry is dropped.
    pub fn signal_undelivered(
        &mut self,
        now: Millis,
        fresh: Fresh,
        outcome: SignalOutcome,
        request: Option<&RequestId>,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        // An answer with a request id is known by its replay entry: gone, it was given back
        // already (the engine and the client can both give one back) or never answered.
        if let Some(request) = request
            && self.replay.take(self.id, request).is_none()
        {
            return effects;
        }
        if let SignalOutcome::NeedsAttention { task, reason, .. } = outcome {
            // Told to nobody: told again, if the agent still waits for a human.
            if self
                .task(task)
                .is_some_and(|t| t.state.state.attention() == Some(reason))
            {
                self.tell_attention(now, fresh, task, reason, &mut effects);
            }
            return effects;
        }
        let SignalOutcome::Task {
            task, at: told_at, ..
        } = outcome
        else {
            return effects;
        };
        let Ok(entry) = self.task_mut(task) else {
            return effects;
        };
        let signalled_at = entry.signal.filter(|s| s.consumed).map(|s| s.at);
        if let Some(signal) = &mut entry.signal {
            signal.consumed = false;
        }
        if entry.lost == Lost::Told {
            entry.lost = Lost::Untold;
        }
        let (name, current) = (entry.name.clone(), entry.status);
        self.notifications.unsilence(task);
        if !self.signal_waiters.is_empty() {
            self.consume_signal(now, fresh, task, &mut effects);
            // An exit keeps the time it was first told with, not the time it is passed on.
            let at = self
                .task(task)
                .and_then(|t| t.signal)
                .map_or(told_at, |s| s.at);
            let remaining = self.remaining();
            let outcome = SignalOutcome::Task {
                task,
                name,
                status: current,
                at,
                remaining,
            };
            self.answer_first_signal_waiter(now, fresh, outcome, &mut effects);
            return effects;
        }
        if let Some(at) = signalled_at {
            effects.push(Effect::State(
                task,
                StateChange::SignalReceived {
                    at,
                    consumed: false,
                },
            ));
        }
        self.report_signal(now, fresh, task, &mut effects);
        effects
    }

    /// The client of the wait with request id `request` gave it up and may have missed its
    /// answer (`baton mcp` after a cancelled call): the answer, if one was given, is taken
    /// back as [`Self::signal_undelivered`] does. Whether there was one to take back.
    pub fn give_back_request(
        &mut self,
        now: Millis,
        fresh: Fresh,
        request: &RequestId,
    ) -> (bool, Vec<Effect>) {
        let Some(outcome) = self.replay.get(now, self.id, request).cloned() else {
            return (false, Vec::new());
        };
        (
            true,
            self.signal_undelivered(now, fresh, outcome, Some(request)),
        )
    }

    /// Starts a `wait_for_idle` on a task. `timeout_ms` is clamped to [`WAIT_TIMEOUT_MS_MAX`].
    ///
    /// # Errors
    /// No such task, or [`IDLE_WAITERS_PER_TASK_MAX`] waits on it are blocked already.
    pub fn wait_for_idle(
        &mut self,
        now: Millis,
        task: TaskId,
        timeout_ms: Option<u64>,
    ) -> Result<Wait<IdleOutcome>, CoreError> {
        let entry = self.task_mut(task)?;
        let ready = match (entry.control, entry.status, entry.state.state) {
            (Control::Human, _, _) => Some(IdleOutcome::HumanControl),
            (_, Status::Exited, _) => Some(IdleOutcome::Exited),
            (_, Status::Idle, _) => Some(IdleOutcome::Idle),
            (_, _, AgentState::NeedsAttention(reason)) => Some(IdleOutcome::NeedsAttention(reason)),
            _ => None,
        };
        if let Some(outcome) = ready {
            return Ok(Wait::Ready(outcome));
        }
        if self.idle_waiters.iter().filter(|w| w.task == task).count() >= IDLE_WAITERS_PER_TASK_MAX
        {
            return Err(CoreError::TooManyWaiters(IDLE_WAITERS_PER_TASK_MAX));
        }
        let waiter = self.new_waiter();
        let deadline = now.plus(clamp_timeout(timeout_ms));
        self.idle_waiters.push(IdleWaiter {
            id: waiter,
            task,
            deadline,
        });
        Ok(Wait::Blocked { waiter, deadline })
    }

    /// A blocked idle wait's client went away.
    pub fn cancel_idle_wait(&mut self, waiter: WaiterId) {
        self.idle_waiters.retain(|w| w.id != waiter);
    }

    /// Hands a task to a human or back to the coordinator. Taking it answers its idle waits with
    /// `human_control`; giving it back answers them with `idle` only if it is idle.
    ///
    /// # Errors
    /// No such task.
    pub fn set_control(
        &mut self,
        now: Millis,
        fresh: Fresh,
        task: TaskId,
        control: Control,
    ) -> Result<Vec<Effect>, CoreError> {
        self.task_mut(task)?;
        if control == Control::Coordinator && !self.registered {
            return Err(CoreError::CoordinatorNotFound(self.id));
        }
        let entry = self.task_mut(task)?;
        let changed = entry.control != control;
        entry.control = control;
        let status = entry.status;
        let mut effects = Vec::new();
        if changed {
            effects.push(Effect::State(task, StateChange::ControlChanged(control)));
        }
        match control {
            Control::Human => {
                self.resolve_idle_waiters(task, IdleOutcome::HumanControl, &mut effects)
            }
            Control::Coordinator if status == Status::Idle => {
                if !self.flush_prompt(now, task, &mut effects) {
                    self.resolve_idle_waiters(task, IdleOutcome::Idle, &mut effects);
                }
            }
            // Work held for the human (the assignment, queued prompts) may go out now.
            Control::Coordinator => self.assess(now, fresh, task, &mut effects),
        }
        Ok(effects)
    }

    /// When [`tick`](Self::tick) next has something to do: a wait's deadline, a task whose
    /// prompt becomes stable, or a batch to stage again.
    #[must_use]
    pub fn next_deadline(&self, now: Millis) -> Option<Millis> {
        let waits = self
            .signal_waiters
            .iter()
            .map(|w| w.deadline)
            .chain(self.idle_waiters.iter().map(|w| w.deadline));
        let rechecks = self
            .tasks
            .iter()
            .filter(|task| matches!(task.status, Status::Running | Status::Idle))
            .flat_map(|task| [task.detector.assess(now).recheck_at, task.state.recheck_at])
            .flatten();
        let mcp_timeouts = self
            .tasks
            .iter()
            .filter(|task| task.assignment.is_some() && task.status != Status::Exited)
            .filter_map(|task| match task.mcp {
                // A past deadline is acted on at the agent's next prompt; waking for it again
                // would spin.
                McpState::Waiting { until } if until > now => Some(until),
                McpState::Waiting { .. } | McpState::Connected | McpState::GaveUp => None,
            });
        let enter_retries = self
            .tasks
            .iter()
            .filter(|task| task.status != Status::Exited)
            .filter_map(|task| task.enter_retry.map(|(at, _)| at.max(now)));
        waits
            .chain(rechecks)
            .chain(mcp_timeouts)
            .chain(enter_retries)
            .chain(self.notifications.restage_at())
            .min()
    }

    /// Does what is due at `now`: times out waits, re-assesses tasks whose prompt became stable,
    /// stages unacknowledged notifications again.
    pub fn tick(&mut self, now: Millis, fresh: Fresh) -> Vec<Effect> {
        let mut effects = Vec::new();
        while let Some(index) = self.signal_waiters.iter().position(|w| w.deadline <= now) {
            if let Some(waiter) = self.signal_waiters.remove(index) {
                let outcome = SignalOutcome::TimedOut {
                    remaining: self.remaining(),
                };
                if let Some(request) = waiter.request {
                    self.replay.insert(now, self.id, request, outcome.clone());
                }
                effects.push(Effect::Signal {
                    waiter: waiter.id,
                    outcome,
                });
                if let Some(notice) = self.notifications.finish_signal_wait(now, fresh) {
                    effects.push(Effect::Notice(notice));
                }
            }
        }
        let (due, kept): (Vec<IdleWaiter>, Vec<IdleWaiter>) =
            self.idle_waiters.iter().partition(|w| w.deadline <= now);
        self.idle_waiters = kept;
        effects.extend(due.into_iter().map(|w| Effect::Idle {
            waiter: w.id,
            outcome: IdleOutcome::TimedOut,
        }));
        let ids: Vec<TaskId> = self.tasks.iter().map(|task| task.id).collect();
        for task in ids {
            self.assess(now, fresh, task, &mut effects);
        }
        if let Some(notice) = self.notifications.restage_due(now, fresh) {
            effects.push(Effect::Notice(notice));
        }
        effects
    }

    /// The coordinator was deregistered: every signal wait ends, every task's idle waits end,
    /// its tasks stay as orphans under human control, and those never given their assignment
    /// are silenced.
    pub fn deregister(&mut self, now: Millis) -> Vec<Effect> {
        let mut effects = Vec::new();
        if !self.registered {
            return effects;
        }
        self.registered = false;
        for waiter in std::mem::take(&mut self.signal_waiters) {
            effects.push(Effect::Signal {
                waiter: waiter.id,
                outcome: SignalOutcome::CoordinatorGone { at: now },
            });
        }
        for waiter in std::mem::take(&mut self.idle_waiters) {
            effects.push(Effect::Idle {
                waiter: waiter.id,
                outcome: IdleOutcome::Exited,
            });
        }
        if !self.notifications.pending().is_empty() || self.notifications.staged().is_some() {
            effects.push(Effect::Notice(Notice::Cleared));
        }
        self.notifications = Notifications::new(self.notifications.delay_ms());
        self.replay.forget(self.id);
        for task in &mut self.tasks {
            task.control = Control::Human;
            task.assignment = None;
            task.queued.clear();
            if !task.assignment_delivered {
                self.notifications.silence(task.id);
            }
            let needs_review = task.assignment_delivered;
            effects.push(Effect::State(
                task.id,
                StateChange::Orphaned { needs_review },
            ));
        }
        effects
    }

    /// A task signalled with nobody waiting: it is reported finished (idle, or its exit) after
    /// [`SIGNAL_DONE_DELAY_MS`].
    fn report_signal(
        &mut self,
        now: Millis,
        fresh: Fresh,
        task: TaskId,
        effects: &mut Vec<Effect>,
    ) {
        let completion = match self.task(task).map(|t| (t.status, t.exit_code)) {
            Some((Status::Exited, code)) => Completion::Exited(code),
            Some(_) => Completion::Idle,
            None => return,
        };
        self.report(
            now,
            fresh,
            task,
            completion,
            Some(SIGNAL_DONE_DELAY_MS),
            effects,
        );
    }

    /// Reports a finished task: a notification for a registered coordinator, an orphaned
    /// notice otherwise. Idle before the assignment was delivered is not news.
    fn report(
        &mut self,
        now: Millis,
        fresh: Fresh,
        task: TaskId,
        completion: Completion,
        delay_ms: Option<u64>,
        effects: &mut Vec<Effect>,
    ) {
        let Some(entry) = self.task(task) else { return };
        if completion == Completion::Idle && !entry.assignment_delivered {
            return;
        }
        // An orphan's one notice is for how it finished; the app sees its state anyway.
        if !self.registered && matches!(completion, Completion::NeedsAttention(_)) {
            return;
        }
        let finished = Finished {
            task,
            name: entry.name.clone(),
            branch: entry.branch.clone(),
            completion,
        };
        if !self.registered {
            if !self.notifications.is_flagged(task) {
                self.notifications.silence(task);
                effects.push(Effect::Orphaned {
                    task,
                    text: describe(&finished),
                });
            }
            return;
        }
        if let Some(notice) = self.notifications.report(now, fresh, finished, delay_ms) {
            effects.push(Effect::Notice(notice));
        }
    }

    fn resolve_idle_waiters(
        &mut self,
        task: TaskId,
        outcome: IdleOutcome,
        effects: &mut Vec<Effect>,
    ) {
        self.idle_waiters.retain(|waiter| {
            let due = waiter.task == task;
            if due {
                effects.push(Effect::Idle {
                    waiter: waiter.id,
                    outcome,
                });
            }
            !due
        });
    }

    fn new_waiter(&mut self) -> WaiterId {
        self.next_waiter += 1;
        WaiterId(self.next_waiter)
    }
}

fn clamp_timeout(timeout_ms: Option<u64>) -> u64 {
    timeout_ms
        .unwrap_or(WAIT_TIMEOUT_MS_DEFAULT)
        .min(WAIT_TIMEOUT_MS_MAX)
}
