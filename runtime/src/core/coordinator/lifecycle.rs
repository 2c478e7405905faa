//! A task's life from its create to its close: the one place that knows what is under way for
//! a task and who waits for it.
//!
//! A create, a merge and a close each need a job of slow IO, which the engine runs. The core
//! decides whether one may begin, who joins one under way, and what its end means. Each saves
//! its [`Intent`] first: the engine starts the job ([`Effect::Start`]) once the records holding
//! the intent are durable, and reports how the job ended ([`Coordinator::create_made`],
//! [`Coordinator::create_failed`], [`Coordinator::merge_ended`], [`Coordinator::close_ended`]);
//! the intent ends in that step. Callers are known by [`CallerId`] and answered by
//! [`Effect::Answer`], in the order the effects come.
//!
//! Decisions:
//! - A create holds one of the coordinator's [`TASKS_PER_COORDINATOR_MAX`] slots from the
//!   moment it is taken until its task is added or its job failed: tasks being made count
//!   against the bound. A task made after its coordinator left is rolled back
//!   ([`Effect::RollBack`]).
//! - One job at a time merges or closes a task. A second close (a retry after a lost answer,
//!   or after a restart resumed the close) joins the one under way and hears how it ends; so
//!   does a second merge. At most [`OPERATION_JOINERS_MAX`] callers join one operation.
//! - A close asked during a merge is held until the merge ends (the task's worktree is being
//!   committed and merged), then begins. A merge with cleanup begins the close itself; its
//!   caller hears the merge's result once that close ends. A task being closed is not merged.
//!
//! Invariant: a task is being made, merged or closed by at most one operation at a time, and
//! each operation under way has its intent in the records.

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;

use crate::core::ids::{AgentId, DoneToken, TaskId};
use crate::core::notify::{Completion, Fresh};
use crate::core::time::Millis;

use super::restore::{Intent, IntentKind};
use super::{
    Coordinator, CoreError, Effect, IdleOutcome, Lost, NewTask, Status, Task, WorktreeFile,
};

/// Sub-tasks one coordinator may have at once, those being made included: enough for any batch
/// a coordinator can review, few enough that a runaway coordinator cannot exhaust the machine.
pub const TASKS_PER_COORDINATOR_MAX: usize = 64;

/// Callers that may join one merge or close under way beside the one that began it (retries
/// after a lost answer, or after a restart resumed it); more are refused. As many as the
/// commands an actor's inbox holds (the engine's `COMMANDS_PENDING_MAX`), so joins alone
/// never grow past what could be asked at once.
pub const OPERATION_JOINERS_MAX: usize = 64;

/// Identifies one caller of a create, a merge or a close within its coordinator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallerId(pub u64);

/// A create, a merge or a close that was taken: its caller (answered by an [`Effect::Answer`]
/// naming it, now or later) and what to do now.
#[derive(Debug, PartialEq, Eq)]
pub struct Call {
    /// The caller.
    pub caller: CallerId,
    /// What to do now.
    pub effects: Vec<Effect>,
}

/// How to merge a task.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeOptions {
    /// One commit instead of a merge commit.
    pub squash: bool,
    /// Commit message of a squash merge.
    pub message: Option<String>,
    /// Close the task after a successful merge.
    pub cleanup: bool,
}

/// A task to make: what its create job needs. The job hands back the task ([`NewTask`]) with
/// what it learnt (its agent's launch, the files Baton wrote into its worktree).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Creation {
    /// Its id.
    pub id: TaskId,
    /// Display name.
    pub name: String,
    /// Its branch.
    pub branch: String,
    /// The branch it forks from, if the caller named one.
    pub base_branch: Option<String>,
    /// Its worktree.
    pub worktree: PathBuf,
    /// Its agent's session.
    pub agent: AgentId,
    /// Secret for `signal_done`.
    pub done_token: DoneToken,
    /// Its MCP config file.
    pub config: PathBuf,
    /// The agent to run: its command.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its assignment, typed when its agent first shows its prompt.
    pub assignment: Option<String>,
    /// What it may do with its finished work.
    pub policy: super::Policy,
    /// What must pass before it lands.
    pub checks: Vec<super::RequiredCheck>,
}

/// Slow IO of an operation, which the engine runs once the operation's intent is saved and
/// whose end it reports back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Job {
    /// Make a task: its worktree and branch, the files its agent needs, its agent; each step
    /// undone if a later one fails. Reported by [`Coordinator::create_made`] or
    /// [`Coordinator::create_failed`].
    Create(Box<Creation>),
    /// Merge a task's branch: the files Baton wrote taken out of its worktree, what it left
    /// uncommitted committed, its branch merged into its base branch (the main branch if none).
    /// Reported by [`Coordinator::merge_ended`].
    Merge {
        /// The task.
        task: TaskId,
        /// Its worktree.
        worktree: PathBuf,
        /// Its branch.
        branch: String,
        /// Where it merges into (`None`: the repository's main branch).
        base_branch: Option<String>,
        /// What Baton wrote into the worktree.
        worktree_files: Vec<WorktreeFile>,
        /// Squash the branch into one commit.
        squash: bool,
        /// The squash commit's message.
        message: Option<String>,
    },
    /// Close a task, in this order: its agent killed (it must not write into a worktree being
    /// removed), its worktree and branch removed, its config (holding its token) removed.
    /// Reported by [`Coordinator::close_ended`].
    Close {
        /// The task.
        task: TaskId,
        /// Its agent.
        agent: AgentId,
        /// Its worktree.
        worktree: PathBuf,
        /// Its branch.
        branch: String,
        /// Its MCP config file.
        config: Option<PathBuf>,
    },
}

/// How a merge job ended, as far as the core is concerned (what it reported is the engine's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeOutcome {
    /// The branch was merged.
    Merged,
    /// Nothing was merged (a conflict, a failed step).
    Failed,
}

/// What a half-made task left behind, to be removed; nobody waits for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leftovers {
    /// Its agent, if one was spawned: killed first.
    pub agent: Option<AgentId>,
    /// Its worktree.
    pub worktree: PathBuf,
    /// Its branch.
    pub branch: String,
    /// Its MCP config file.
    pub config: Option<PathBuf>,
}

/// What a caller of a create, a merge or a close hears.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Its task was made.
    Created(TaskId),
    /// What its job reported: a create's failure, a merge's result.
    Reported,
    /// Its merge went through and its task is being closed (the merge's cleanup): it hears
    /// the merge's result once the close ends, with an [`Answer::Closed`] or an
    /// [`Answer::Refused`] naming it again.
    Closing,
    /// How the close it asked for (or joined) ended: done, or what failed.
    Closed(Result<(), String>),
    /// Refused after all: its coordinator left while its task was made, or the task it would
    /// close went away while it waited.
    Refused(CoreError),
}

/// A merge under way: who waits for it, and the closes held until it ends.
#[derive(Debug)]
pub(super) struct Merging {
    /// The caller that began it.
    caller: CallerId,
    /// Close the task after a successful merge.
    cleanup: bool,
    /// Callers of the same merge since, answered with its result.
    joiners: Vec<CallerId>,
    /// Callers of a close since, whose close begins when the merge ends.
    held_closes: Vec<CallerId>,
}

/// A close under way: who waits for it, what it found when it began, and what it held back
/// since.
#[derive(Debug)]
pub(super) struct Closing {
    /// The caller that began it (for a merge's cleanup, the merge's caller).
    caller: CallerId,
    /// Callers of a close of the same task since, answered with how it ends.
    joiners: Vec<CallerId>,
    /// A wait returned the task's signal or exit (it was told, nothing pending), before the
    /// close or during it.
    pub(super) reported: bool,
    /// A notification of the task was pending and the close withdrew it.
    withdrew: bool,
    /// The agent's exit (with its code) that came while closing, not reported yet.
    pub(super) exit: Option<Option<i32>>,
    /// A `signal_done` with nobody waiting came while closing, not reported yet.
    pub(super) signalled: bool,
}

impl Coordinator {
    /// Adds a task whose worktree and agent exist: its status is `running` from now on.
    ///
    /// # Errors
    /// The coordinator was deregistered, or has [`TASKS_PER_COORDINATOR_MAX`] tasks already.
    pub(crate) fn add_task(&mut self, now: Millis, new: NewTask) -> Result<(), CoreError> {
        if !self.registered {
            return Err(CoreError::CoordinatorNotFound(self.id));
        }
        if self.tasks.len() >= TASKS_PER_COORDINATOR_MAX {
            return Err(CoreError::TooManyTasks);
        }
        let mut task = Task::new(new.spec, now);
        task.terminal.assignment = new.assignment.filter(|a| !a.trim().is_empty());
        self.tasks.push(task);
        Ok(())
    }

    /// Starts making a task: it takes one of the coordinator's slots, its intent is saved, then
    /// its job runs. `creation` is called only once the slot is taken (it draws the task's ids).
    ///
    /// # Errors
    /// The coordinator was deregistered, or its tasks and those being made number
    /// [`TASKS_PER_COORDINATOR_MAX`] already. Nothing changes then.
    pub fn create(&mut self, creation: impl FnOnce() -> Creation) -> Result<Call, CoreError> {
        if !self.registered {
            return Err(CoreError::CoordinatorNotFound(self.id));
        }
        if self.tasks.len() + self.creating.len() >= TASKS_PER_COORDINATOR_MAX {
            return Err(CoreError::TooManyTasks);
        }
        let creation = creation();
        let caller = self.new_caller();
        self.creating.insert(creation.id, caller);
        self.begin_intent(Intent::Create {
            task: creation.id,
            worktree: creation.worktree.clone(),
            branch: creation.branch.clone(),
            config: creation.config.clone(),
        });
        let effects = vec![Effect::Start(Job::Create(Box::new(creation)))];
        Ok(Call { caller, effects })
    }

    /// A create job made its task (worktree, files, agent): the task takes the slot its create
    /// held and is added, running; the app is told and its caller answered. If the coordinator
    /// left meanwhile, what was made is rolled back and the caller refused. Either way its
    /// intent ends.
    pub fn create_made(&mut self, now: Millis, new: NewTask) -> Vec<Effect> {
        let id = new.spec.id;
        let Some(caller) = self.creating.remove(&id) else {
            return Vec::new();
        };
        self.end_intent(id, IntentKind::Create);
        let leftovers = Leftovers {
            agent: Some(new.spec.agent),
            worktree: new.spec.worktree.clone(),
            branch: new.spec.branch.clone(),
            config: new.spec.mcp_config.clone(),
        };
        match self.add_task(now, new) {
            Ok(()) => vec![
                Effect::Created(id),
                Effect::Answer {
                    caller,
                    answer: Answer::Created(id),
                },
            ],
            Err(refused) => vec![
                Effect::RollBack(leftovers),
                Effect::Answer {
                    caller,
                    answer: Answer::Refused(refused),
                },
            ],
        }
    }

    /// A create job failed (it undid its own steps first): its slot is free again, its intent
    /// ends, and its caller hears the job's error.
    pub fn create_failed(&mut self, task: TaskId) -> Vec<Effect> {
        let Some(caller) = self.creating.remove(&task) else {
            return Vec::new();
        };
        self.end_intent(task, IntentKind::Create);
        vec![Effect::Answer {
            caller,
            answer: Answer::Reported,
        }]
    }

    /// Whether a task may be merged: not while it still works without having signalled done.
    ///
    /// # Errors
    /// No such task, or [`CoreError::NotMergeable`] saying why.
    pub fn check_merge(&self, task: TaskId) -> Result<(), CoreError> {
        let entry = self.task(task).ok_or(CoreError::TaskNotFound(task))?;
        match entry.terminal.status {
            Status::Running if entry.signal.is_none() => Err(CoreError::NotMergeable(format!(
                "Task {task} is still running. Use send_prompt for follow-up, or wait until it \
                 signals done or goes idle before calling merge_task."
            ))),
            _ => Ok(()),
        }
    }

    /// A merge of a task is asked: it begins (its intent saved, then its job), or, with one
    /// under way, the caller joins it and hears its result.
    ///
    /// # Errors
    /// As [`Self::check_merge`]; the task is being closed ([`CoreError::Closing`]);
    /// [`OPERATION_JOINERS_MAX`] callers joined its merge already ([`CoreError::BeingMerged`]).
    pub fn merge(&mut self, task: TaskId, options: MergeOptions) -> Result<Call, CoreError> {
        self.check_merge(task)?;
        if self.closing.contains_key(&task) {
            return Err(CoreError::Closing(task));
        }
        if let Some(merging) = self.merging.get(&task) {
            // A retry (after a lost answer, or a restart that resumed the merge) hears how the
            // merge under way ends.
            if merging.joiners.len() >= OPERATION_JOINERS_MAX {
                return Err(CoreError::BeingMerged(task));
            }
            let caller = self.new_caller();
            if let Some(merging) = self.merging.get_mut(&task) {
                merging.joiners.push(caller);
            }
            let effects = Vec::new();
            return Ok(Call { caller, effects });
        }
        let entry = self.task(task).ok_or(CoreError::TaskNotFound(task))?;
        let job = Job::Merge {
            task,
            worktree: entry.spec.worktree.clone(),
            branch: entry.spec.branch.clone(),
            base_branch: entry.spec.base_branch.clone(),
            worktree_files: entry.spec.worktree_files.clone(),
            squash: options.squash,
            message: options.message.clone(),
        };
        let caller = self.new_caller();
        let merging = Merging {
            caller,
            cleanup: options.cleanup,
            joiners: Vec::new(),
            held_closes: Vec::new(),
        };
        self.merging.insert(task, merging);
        self.begin_intent(Intent::Merge {
            task,
            squash: options.squash,
            message: options.message,
            cleanup: options.cleanup,
        });
        let effects = vec![Effect::Start(job)];
        Ok(Call { caller, effects })
    }

    /// A merge job ended. Its intent ends and, in order: the callers
    /// that joined it hear its result, the app is told of a merge that went through, and its
    /// caller hears the result, unless the merge went through with cleanup: then the close
    /// begins at once as that caller's, who hears the result once it ends. The closes held
    /// during the merge begin now (the first begins one, the others join it), or join the
    /// cleanup's close.
    pub fn merge_ended(
        &mut self,
        now: Millis,
        fresh: &mut dyn FnMut() -> Fresh,
        task: TaskId,
        outcome: MergeOutcome,
    ) -> Vec<Effect> {
        let merged = outcome == MergeOutcome::Merged;
        let Some(merging) = self.merging.remove(&task) else {
            return Vec::new();
        };
        self.end_intent(task, IntentKind::Merge);
        let mut effects: Vec<Effect> = merging
            .joiners
            .iter()
            .map(|&caller| Effect::Answer {
                caller,
                answer: Answer::Reported,
            })
            .collect();
        if merged {
            effects.push(Effect::Merged(task));
        }
        let held = merging.held_closes;
        if merged && merging.cleanup {
            if self.task(task).is_some() {
                effects.extend(self.begin_close(now, fresh(), task, merging.caller));
                // Closes asked for meanwhile hear how this one ends.
                if let Some(closing) = self.closing.get_mut(&task) {
                    closing.joiners.extend(held);
                }
                effects.push(Effect::Answer {
                    caller: merging.caller,
                    answer: Answer::Closing,
                });
                return effects;
            }
            // The app removed the task during the merge: there is nothing left to close.
            effects.push(Effect::Answer {
                caller: merging.caller,
                answer: Answer::Closing,
            });
            effects.push(Effect::Answer {
                caller: merging.caller,
                answer: Answer::Refused(CoreError::TaskNotFound(task)),
            });
        } else {
            effects.push(Effect::Answer {
                caller: merging.caller,
                answer: Answer::Reported,
            });
        }
        // Closes asked for during the merge begin now.
        for caller in held {
            match self.close_as(now, fresh, task, caller) {
                Ok(begun) => effects.extend(begun),
                Err(refused) => effects.push(Effect::Answer {
                    caller,
                    answer: Answer::Refused(refused),
                }),
            }
        }
        effects
    }

    /// A close of a task is asked: it begins (nothing more is reported for the task, its
    /// intent is saved, then its job runs), or the caller joins a close under way, or, while
    /// the task is being merged, waits for the merge to end. `fresh` is called only for a
    /// close that begins.
    ///
    /// # Errors
    /// No such task; [`OPERATION_JOINERS_MAX`] callers wait for its merge
    /// ([`CoreError::BeingMerged`]) or joined its close ([`CoreError::AlreadyClosing`])
    /// already.
    pub fn close(
        &mut self,
        now: Millis,
        fresh: &mut dyn FnMut() -> Fresh,
        task: TaskId,
    ) -> Result<Call, CoreError> {
        let caller = self.new_caller();
        let effects = self.close_as(now, fresh, task, caller)?;
        Ok(Call { caller, effects })
    }

    /// [`Self::close`] for `caller`.
    fn close_as(
        &mut self,
        now: Millis,
        fresh: &mut dyn FnMut() -> Fresh,
        task: TaskId,
        caller: CallerId,
    ) -> Result<Vec<Effect>, CoreError> {
        self.task(task).ok_or(CoreError::TaskNotFound(task))?;
        if let Some(merging) = self.merging.get_mut(&task) {
            // Its worktree is being committed and merged: the close waits for that to end.
            if merging.held_closes.len() >= OPERATION_JOINERS_MAX {
                return Err(CoreError::BeingMerged(task));
            }
            merging.held_closes.push(caller);
            return Ok(Vec::new());
        }
        if let Some(closing) = self.closing.get_mut(&task) {
            // A retry (after a lost answer, or a restart that resumed the close) hears how the
            // close under way ends.
            if closing.joiners.len() >= OPERATION_JOINERS_MAX {
                return Err(CoreError::AlreadyClosing(task));
            }
            closing.joiners.push(caller);
            return Ok(Vec::new());
        }
        Ok(self.begin_close(now, fresh(), task, caller))
    }

    /// Starts closing a task for `caller`: its pending notification is withdrawn and nothing
    /// more is reported for it; its intent is saved, then its job runs.
    fn begin_close(
        &mut self,
        now: Millis,
        fresh: Fresh,
        task: TaskId,
        caller: CallerId,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        let Some(entry) = self.task(task) else {
            return effects;
        };
        let job = Job::Close {
            task,
            agent: entry.terminal.agent,
            worktree: entry.spec.worktree.clone(),
            branch: entry.spec.branch.clone(),
            config: entry.spec.mcp_config.clone(),
        };
        // Told already: a wait returned it (silenced, nothing pending). A notification still
        // pending is withdrawn below, so the close itself must tell a blocked wait.
        let reported = self.notifications.is_flagged(task) && !self.notifications.has_pending(task);
        let withdrew = self.notifications.has_pending(task);
        if let Some(notice) = self.notifications.suppress(now, fresh, task) {
            effects.push(Effect::Notice(notice));
        }
        self.notifications.silence(task);
        let closing = Closing {
            caller,
            joiners: Vec::new(),
            reported,
            withdrew,
            exit: None,
            signalled: false,
        };
        self.closing.insert(task, closing);
        self.begin_intent(Intent::Close { task });
        effects.push(Effect::Start(job));
        effects
    }

    /// A close job ended: `Ok` once the task's agent, worktree, branch and config are gone,
    /// else what failed. Its intent ends and, in order: the callers that joined it hear how it
    /// ended; the task is forgotten (done) or stays, as if the close had not begun (failed);
    /// the app is told; its caller hears how it ended.
    pub fn close_ended(
        &mut self,
        now: Millis,
        fresh: Fresh,
        task: TaskId,
        result: Result<(), String>,
    ) -> Vec<Effect> {
        let Some(closing) = self.closing.remove(&task) else {
            return Vec::new();
        };
        let mut effects: Vec<Effect> = closing
            .joiners
            .iter()
            .map(|&caller| Effect::Answer {
                caller,
                answer: Answer::Closed(result.clone()),
            })
            .collect();
        self.end_intent(task, IntentKind::Close);
        match &result {
            Ok(()) => {
                self.finish_close(now, fresh, task, &closing, &mut effects);
                effects.push(Effect::Closed(task));
            }
            Err(error) => {
                self.close_failed(now, fresh, task, &closing, &mut effects);
                effects.push(Effect::CloseFailed {
                    task,
                    error: error.clone(),
                });
            }
        }
        effects.push(Effect::Answer {
            caller: closing.caller,
            answer: Answer::Closed(result),
        });
        effects
    }

    /// A task's worktree and branch are gone: its waits end, a blocked signal wait learns it
    /// ended (unless it was reported already), and the task is forgotten.
    fn finish_close(
        &mut self,
        now: Millis,
        fresh: Fresh,
        task: TaskId,
        closing: &Closing,
        effects: &mut Vec<Effect>,
    ) {
        let Some(entry) = self.task(task) else {
            return;
        };
        let name = entry.spec.name.clone();
        self.resolve_idle_waiters(task, IdleOutcome::Exited, effects);
        self.tasks.retain(|t| t.spec.id != task);
        if !closing.reported && !self.signal_waiters.is_empty() {
            self.answer_exited(now, fresh, task, name, effects);
        }
        self.notifications.unsilence(task);
    }

    /// Closing a task failed half-way: it stays, and may be closed again. It is left as if the
    /// close had not begun, with what happened meanwhile told now: its silence is restored, a
    /// notification the close withdrew is reported again, an exit or a signal held back during
    /// the close is reported (or answers a blocked wait), and held prompts may go out.
    fn close_failed(
        &mut self,
        now: Millis,
        fresh: Fresh,
        task: TaskId,
        closing: &Closing,
        effects: &mut Vec<Effect>,
    ) {
        if !closing.reported {
            self.notifications.unsilence(task);
        }
        if let Some(code) = closing.exit {
            effects.extend(self.on_exit(now, fresh, task, code));
        } else if closing.signalled {
            self.report_signal(now, fresh, task, effects);
        } else if closing.withdrew {
            let completion = match self
                .task(task)
                .map(|t| (t.terminal.status, t.terminal.exit_code))
            {
                Some((Status::Exited, code)) => Some(Completion::Exited(code)),
                Some((Status::Idle, _)) => Some(Completion::Idle),
                _ => None,
            };
            if let Some(completion) = completion {
                self.report(now, fresh, task, completion, None, effects);
            }
        }
        self.assess(now, fresh, task.into(), effects);
    }

    /// Whether a create or a close is under way: its job will report, and its callers wait to
    /// hear how it ended, so the engine keeps the coordinator until it does. (A merge whose
    /// report is lost keeps its intent: a restart carries it out again.)
    #[must_use]
    pub fn has_jobs_to_finish(&self) -> bool {
        !self.creating.is_empty() || !self.closing.is_empty()
    }

    /// The app removed a task on its own (its agent and worktree are the app's business now):
    /// its waits end with `removed` and it is forgotten. A close under way still ends as its
    /// job reports (its callers hear how).
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
        self.tasks.retain(|t| t.spec.id != task);
        self.notifications.unsilence(task);
        Ok(effects)
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
        if entry.terminal.status != Status::Exited {
            return refuse("still has its agent running; only an exited agent is started again");
        }
        if entry.spec.launch.is_empty() {
            return refuse("was made before Baton kept its agent's command line");
        }
        Ok((entry.spec.launch.clone(), entry.spec.worktree.clone()))
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
        let spec = Arc::make_mut(&mut entry.spec);
        spec.agent = agent;
        spec.launch = launch;
        spec.worktree_files = worktree_files;
        entry.lost = Lost::No;
        // The new agent starts its own MCP server: what it was asked waits for it again.
        entry.terminal.restart(agent, now);
        Ok(effects)
    }

    fn new_caller(&mut self) -> CallerId {
        self.next_caller += 1;
        CallerId(self.next_caller)
    }
}
