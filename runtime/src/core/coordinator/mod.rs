//! One coordinator and its sub-tasks: the engine's decisions, without effects.
//!
//! [`Coordinator`] owns the state of one coordinator: its tasks (in creation order), what is
//! under way for them (creates, merges, closes, and who waits for each), their idle and signal
//! waiters, the replay cache of its signal waits, its notifications, and the terminal of its own
//! agent (`baton coordinator start`), modelled as a task's agent's is ([`AgentTerminal`]). Every method takes
//! `now` (wall time from the `Clock` port) and, where something new may be named, [`Fresh`]
//! ids; it returns [`Effect`]s for the engine to carry out: start a job, answer a caller or a
//! waiter, tell the app, type into or answer a terminal. The engine runs one of these per
//! coordinator in its own actor and sleeps until [`Coordinator::next_deadline`], then calls
//! [`Coordinator::tick`].
//!
//! Layout:
//! - `lifecycle`: a task from its create to its close: slots and the task bound, create or
//!   roll back, merges and closes, who joins one under way, closes held during a merge;
//!   respawns and removals.
//! - `waits`: `wait_for_idle`, `wait_for_signal_done`, signals and exits, reports.
//! - `prompts`: prompts typed or queued, control, what an agent's terminal shows and its
//!   state decided, for a task's agent and the coordinator's own (a [`Terminal`] names which);
//!   the own agent's start, first prompt and end.
//! - `terminal`: one agent's terminal ([`AgentTerminal`]): scrollback, detector, state, the MCP
//!   gate, queued prompts, typing, Enter pressed again, exit.
//! - `restore`: what is saved ([`Records`], [`Intent`]) and how a restart carries on.
//! - `task`: one task: its [`TaskSpec`], its terminal, control and signal.
//! - `landing`: what a sub-task may do with its finished work ([`Policy`]) and the checks its
//!   coordinator requires before it lands ([`RequiredCheck`]).
//!
//! Invariants:
//! - A signal is returned by at most one wait; an answer the engine could not deliver is taken
//!   back ([`Coordinator::signal_undelivered`]) and offered again.
//! - A multi-step operation (create, merge, close) saves its [`Intent`] before its job starts
//!   and drops it in the step that records its end; one operation at a time per task.
//! - Every collection is bounded: tasks, those being made included, by
//!   [`TASKS_PER_COORDINATOR_MAX`] (a restore keeps every task it is given), the callers that
//!   join an operation by [`OPERATION_JOINERS_MAX`], waiters by [`SIGNAL_WAITERS_MAX`] and
//!   [`IDLE_WAITERS_PER_TASK_MAX`], prompts by [`PROMPT_QUEUE_MAX`], the replay cache and the
//!   notifications by their own bounds.
//! - The coordinator's own agent is no task: no wait, signal, notification or report is ever
//!   about it; its changes are told as [`Effect::Own`].
//!
//! It must not depend on anything but the rest of `core`: no IO, no runtime, no clock.

mod landing;
mod lifecycle;
mod prompts;
mod restore;
mod task;
mod terminal;
mod waits;

#[cfg(test)]
mod own_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};

pub use landing::{
    CHECK_COMMAND_CHARS_MAX, CHECK_NAME_CHARS_MAX, CHECK_TIMEOUT_MS_DEFAULT, CHECK_TIMEOUT_MS_MAX,
    CHECK_TIMEOUT_MS_MIN, CHECKS_PER_TASK_MAX, CHECKS_TOTAL_MS_MAX, Policy, RequiredCheck,
    read as read_policy,
};
pub use lifecycle::{
    Answer, Call, CallerId, Creation, Job, Leftovers, MergeOptions, MergeOutcome,
    OPERATION_JOINERS_MAX, TASKS_PER_COORDINATOR_MAX,
};
pub use prompts::{
    ENTER_RETRIES_MAX, ENTER_RETRY_MS, MCP_CONNECT_TIMEOUT_MS, PROMPT_BYTES_MAX,
    PROMPT_QUEUE_BYTES_MAX, PROMPT_QUEUE_MAX, Sent, Typed, sanitize_prompt, text_to_type,
};
pub use restore::{Intent, IntentKind, Records, ReplayRecord, TaskRecord};
pub(crate) use task::Lost;
pub use task::{Control, NewTask, Signal, Status, Task, TaskSpec, WorktreeFile, WorktreeFileKind};
pub use terminal::{
    AgentTerminal, FIRST_PROMPT_WAIT_MS_MAX, LAST_LINE_TAIL_BYTES, McpState, SCROLLBACK_BYTES_MAX,
    Terminal,
};
pub use waits::{
    IDLE_WAITERS_PER_TASK_MAX, IdleOutcome, SIGNAL_WAITERS_MAX, SignalOutcome,
    WAIT_TIMEOUT_MS_DEFAULT, WAIT_TIMEOUT_MS_MAX, Wait, WaiterId,
};

use super::ids::{AgentId, CoordinatorId, TaskId};
use super::notify::{Fresh, Notice, Notifications};
use super::replay::ReplayCache;
use super::state::Verdict;
use super::time::Millis;
use lifecycle::{Closing, Merging};
use waits::{IdleWaiter, SignalWaiter};

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

/// A change of the coordinator's own agent, for the engine to log (the app is told of its
/// terminal through the agents' list, not as a task's state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnChange {
    /// What it is doing changed.
    Agent(Verdict),
    /// Its Baton MCP server did not announce itself within [`MCP_CONNECT_TIMEOUT_MS`]: its
    /// first prompt went out without Baton's tools.
    McpStartupTimedOut,
    /// Its first prompt was dropped: it showed no prompt within [`FIRST_PROMPT_WAIT_MS_MAX`]
    /// (the user, attached, can type it).
    FirstPromptDropped,
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
    /// Type a prompt into an agent (a task's, or the coordinator's own) and press Enter (the
    /// core already counts it as being typed), then report how it went with
    /// [`Coordinator::prompt_typed`].
    Type {
        /// The agent's terminal.
        terminal: Terminal,
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
    /// Start a job once the records holding its operation's intent are saved; report its end
    /// to the core ([`Coordinator::create_made`], [`Coordinator::merge_ended`], …).
    Start(Job),
    /// Remove what a half-made task left (nobody waits for it).
    RollBack(Leftovers),
    /// Answer a caller of a create, a merge or a close.
    Answer {
        /// The caller.
        caller: CallerId,
        /// Its answer.
        answer: Answer,
    },
    /// Tell the app a task was made (its agent's terminal is the task's from now on).
    Created(TaskId),
    /// Tell the app a task's branch was merged (with what the merge job reported).
    Merged(TaskId),
    /// Tell the app a task was closed: its agent, worktree, branch and config are gone.
    Closed(TaskId),
    /// Tell the app a close failed half-way (the task stays, to be closed again).
    CloseFailed {
        /// The task.
        task: TaskId,
        /// What failed.
        error: String,
    },
    /// The coordinator's own agent changed (to log).
    Own(OwnChange),
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
    /// The task is being closed: it cannot be merged.
    #[error("Task {0} is closing")]
    Closing(TaskId),
    /// The task is being merged and [`OPERATION_JOINERS_MAX`] callers wait for that already.
    #[error("Task {0} is being merged")]
    BeingMerged(TaskId),
    /// The task is being closed and [`OPERATION_JOINERS_MAX`] callers joined that already.
    #[error("Task {0} is already closing")]
    AlreadyClosing(TaskId),
    /// Too many waits are blocked already.
    #[error("Too many concurrent waits ({0} at most)")]
    TooManyWaiters(usize),
}

/// Why the coordinator's own agent cannot start: it runs (or starts) already.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the coordinator's agent is running already")]
pub struct OwnAgentRunning;

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
    next_caller: u64,
    /// Tasks being made (not yet in `tasks`), each holding a slot, with their callers.
    creating: BTreeMap<TaskId, CallerId>,
    /// Tasks being merged.
    merging: BTreeMap<TaskId, Merging>,
    /// Tasks being closed.
    closing: BTreeMap<TaskId, Closing>,
    /// Operations under way (saved with the records).
    intents: Vec<Intent>,
    /// Its own agent's terminal, from its start until it is stopped (kept once it exited, to
    /// be watched and listed so).
    own: Option<AgentTerminal>,
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
            next_caller: 0,
            creating: BTreeMap::new(),
            merging: BTreeMap::new(),
            closing: BTreeMap::new(),
            intents: Vec::new(),
            own: None,
        }
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
        self.tasks.iter().find(|task| task.spec.id == id)
    }

    /// Its notifications.
    #[must_use]
    pub const fn notifications(&self) -> &Notifications {
        &self.notifications
    }

    /// Its own agent's terminal, if it started one.
    #[must_use]
    pub const fn own(&self) -> Option<&AgentTerminal> {
        self.own.as_ref()
    }

    /// A terminal: a task's agent's, or its own agent's.
    #[must_use]
    pub fn terminal(&self, terminal: Terminal) -> Option<&AgentTerminal> {
        match terminal {
            Terminal::Task(task) => self.task(task).map(|t| &t.terminal),
            Terminal::Own => self.own.as_ref(),
        }
    }

    /// Which terminal `agent` is: a task's agent's (tasks first), or its own agent's.
    #[must_use]
    pub fn terminal_of(&self, agent: AgentId) -> Option<Terminal> {
        self.tasks
            .iter()
            .find(|task| task.terminal.agent == agent)
            .map(|task| Terminal::Task(task.spec.id))
            .or_else(|| {
                self.own
                    .as_ref()
                    .filter(|own| own.agent == agent)
                    .map(|_| Terminal::Own)
            })
    }

    fn terminal_mut(&mut self, terminal: Terminal) -> Option<&mut AgentTerminal> {
        match terminal {
            Terminal::Task(task) => self.task_mut(task).ok().map(|t| &mut t.terminal),
            Terminal::Own => self.own.as_mut(),
        }
    }

    fn task_mut(&mut self, id: TaskId) -> Result<&mut Task, CoreError> {
        self.tasks
            .iter_mut()
            .find(|task| task.spec.id == id)
            .ok_or(CoreError::TaskNotFound(id))
    }

    /// Tasks still to report to `wait_for_signal_done`: all but those whose signal a wait
    /// returned and those that exited without signalling.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.tasks
            .iter()
            .filter(|task| match task.signal {
                Some(signal) => !signal.consumed,
                None => task.terminal.status != Status::Exited || task.lost == Lost::Untold,
            })
            .count()
    }

    /// When [`tick`](Self::tick) next has something to do: a wait's deadline, a terminal whose
    /// prompt becomes stable (or whose MCP gate ends, Enter is due again, first prompt is to be
    /// dropped), or a batch to stage again.
    #[must_use]
    pub fn next_deadline(&self, now: Millis) -> Option<Millis> {
        let waits = self
            .signal_waiters
            .iter()
            .map(|w| w.deadline)
            .chain(self.idle_waiters.iter().map(|w| w.deadline));
        let terminals = self
            .tasks
            .iter()
            .map(|task| &task.terminal)
            .chain(&self.own)
            .flat_map(|terminal| terminal.deadlines(now));
        waits
            .chain(terminals)
            .chain(self.notifications.restage_at())
            .min()
    }

    /// Does what is due at `now`: times out waits, re-assesses the terminals (tasks' and its own
    /// agent's) whose prompt became stable, stages unacknowledged notifications again.
    pub fn tick(&mut self, now: Millis, fresh: Fresh) -> Vec<Effect> {
        let mut effects = Vec::new();
        while let Some(index) = self.signal_waiters.iter().position(|w| w.deadline <= now) {
            if let Some(waiter) = self.signal_waiters.remove(index) {
                let outcome = SignalOutcome::TimedOut {
                    remaining: self.remaining(),
                };
                self.answer_signal_waiter(now, fresh, waiter, outcome, &mut effects);
            }
        }
        let (due, kept): (Vec<IdleWaiter>, Vec<IdleWaiter>) =
            self.idle_waiters.iter().partition(|w| w.deadline <= now);
        self.idle_waiters = kept;
        effects.extend(due.into_iter().map(|w| Effect::Idle {
            waiter: w.id,
            outcome: IdleOutcome::TimedOut,
        }));
        let ids: Vec<TaskId> = self.tasks.iter().map(|task| task.spec.id).collect();
        for task in ids {
            self.assess(now, fresh, task.into(), &mut effects);
        }
        self.assess(now, fresh, Terminal::Own, &mut effects);
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
        self.replay.forget();
        for task in &mut self.tasks {
            task.control = Control::Human;
            task.terminal.assignment = None;
            task.terminal.queued.clear();
            if !task.assignment_delivered {
                self.notifications.silence(task.spec.id);
            }
            let needs_review = task.assignment_delivered;
            effects.push(Effect::State(
                task.spec.id,
                StateChange::Orphaned { needs_review },
            ));
        }
        effects
    }
}
