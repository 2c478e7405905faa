//! What survives a restart of a coordinator, and how a restored one carries on.
//!
//! [`Records`] are what the engine saves after every step that changed them: the tasks
//! ([`TaskRecord`]), the answers its signal waits delivered (for their retries) and the
//! operations under way ([`Intent`]). [`Coordinator::restore`] makes a coordinator of them
//! again; [`Coordinator::report_lost`] tells it of the agents that died with the old daemon,
//! and [`Coordinator::resume`] carries each interrupted operation to an end before the engine
//! takes a request: a create rolled back, a merge or a close carried out again (each of their
//! steps is idempotent).
//!
//! Invariant: an intent is saved before its operation's first step and dropped in the save
//! that records its end, so a crash at any instant leaves nothing unknown.

use crate::core::ids::{CoordinatorId, TaskId};
use crate::core::notify::{Completion, Fresh};
use crate::core::replay::{ReplayCache, ReplayLog, Replayed};
use crate::core::time::Millis;

use super::lifecycle::{Leftovers, MergeOptions};
use super::{
    Control, Coordinator, Effect, Lost, McpState, PROMPT_QUEUE_MAX, Signal, SignalOutcome, Status,
    Task, TaskSpec,
};
use std::path::PathBuf;
use std::sync::Arc;

/// What survives a restart of a task: enough to list it, merge or close it, take its signal,
/// and respawn its agent in its worktree. Its process is gone; a restored task is `exited`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskRecord {
    /// What it is (its done token stays valid after the restart).
    pub spec: Arc<TaskSpec>,
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
pub type ReplayRecord = Replayed<SignalOutcome>;

/// Everything of a coordinator's that a restart must find: its tasks, the results its waits
/// delivered (for retries), and the operations under way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Records {
    /// Its tasks, oldest first.
    pub tasks: Vec<TaskRecord>,
    /// Its replay cache's live entries, oldest first (shared with the cache: see
    /// [`ReplayCache::snapshot`]).
    pub replay: ReplayLog<SignalOutcome>,
    /// Its operations under way, oldest first.
    pub intents: Vec<Intent>,
}

impl Coordinator {
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
            task.terminal.status = Status::Exited;
            task.terminal.exit_code = record.exit_code;
            task.control = record.control;
            task.signal = record.signal;
            task.assignment_delivered = record.assignment_delivered;
            task.terminal.assignment = record.assignment;
            task.terminal.queued = record.queued.into_iter().take(PROMPT_QUEUE_MAX).collect();
            task.lost = if record.alive || record.lost_untold {
                Lost::Untold
            } else {
                Lost::No
            };
            task.terminal.mcp = McpState::GaveUp;
            task.terminal.evidence.exited(now);
            task.terminal.state = crate::core::state::decide(&task.terminal.evidence, now);
            coordinator.tasks.push(task);
        }
        coordinator.replay = ReplayCache::restored(&records.replay);
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
                spec: task.spec.clone(),
                signal: task.signal,
                assignment_delivered: task.assignment_delivered,
                control: task.control,
                exit_code: task.terminal.exit_code,
                assignment: task.terminal.assignment.clone(),
                queued: task.terminal.queued.iter().cloned().collect(),
                alive: task.terminal.status != Status::Exited,
                lost_untold: task.lost == Lost::Untold,
            })
            .collect();
        Records {
            tasks,
            replay: self.replay.snapshot(),
            intents: self.intents.clone(),
        }
    }

    /// An operation begins: saved with the next records, until [`Self::end_intent`].
    pub(super) fn begin_intent(&mut self, intent: Intent) {
        self.intents.retain(|held| held != &intent);
        self.intents.push(intent);
    }

    /// An operation on `task` of the kind of `like` ended (done, or undone).
    pub(super) fn end_intent(&mut self, task: TaskId, like: IntentKind) {
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
                    task.spec.id,
                    usize::from(task.terminal.assignment.is_some()) + task.terminal.queued.len(),
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

    /// After a restart: carries `intent`, one of those the records held ([`Self::intents`]),
    /// to an end. A create is rolled back: its intent ends now and [`Effect::RollBack`] says
    /// what to remove, which the engine removes before it takes a request (nothing the
    /// coordinator lists or makes can meet the half-made task). A merge or a close begins
    /// again (each of its steps is idempotent), unless its task is gone; nobody waits for its
    /// answer: its caller's connection died with the old daemon. A fresh id is drawn only for
    /// a close that begins.
    pub fn resume(
        &mut self,
        now: Millis,
        fresh: &mut dyn FnMut() -> Fresh,
        intent: Intent,
    ) -> Vec<Effect> {
        let (task, kind) = (intent.task(), intent.kind());
        match intent {
            Intent::Create {
                worktree,
                branch,
                config,
                ..
            } => {
                self.end_intent(task, IntentKind::Create);
                vec![Effect::RollBack(Leftovers {
                    agent: None,
                    worktree,
                    branch,
                    config: Some(config),
                })]
            }
            Intent::Merge { .. } | Intent::Close { .. } if self.task(task).is_none() => {
                self.end_intent(task, kind);
                Vec::new()
            }
            Intent::Merge {
                squash,
                message,
                cleanup,
                ..
            } => {
                let options = MergeOptions {
                    squash,
                    message,
                    cleanup,
                };
                self.merge(task, options)
                    .map(|call| call.effects)
                    .unwrap_or_default()
            }
            Intent::Close { .. } => self
                .close(now, fresh, task)
                .map(|call| call.effects)
                .unwrap_or_default(),
        }
    }
}
