//! Waits and signals: `wait_for_idle`, `wait_for_signal_done`, a task's `signal_done` and its
//! agent's exit, and how a finished task is reported when nobody waits (a notification, or an
//! orphan's notice).
//!
//! Invariants:
//! - A signal is returned by at most one wait. A waiter removed before its answer (timed out,
//!   or its client went away) consumes nothing; an answer the engine could not deliver is taken
//!   back ([`Coordinator::signal_undelivered`]) and offered again.
//! - Waiters are served first come, first served, one event each; at most
//!   [`SIGNAL_WAITERS_MAX`] block at once, and [`IDLE_WAITERS_PER_TASK_MAX`] per task.
//! - Nothing is reported of a task being closed until its close ends (the close tells it).

use crate::core::ids::TaskId;
use crate::core::notify::{Completion, Finished, Fresh, SIGNAL_DONE_DELAY_MS, describe};
use crate::core::replay::RequestId;
use crate::core::state::{AgentState, Attention};
use crate::core::time::Millis;

use super::{Control, Coordinator, CoreError, Effect, Lost, Signal, StateChange, Status, Terminal};

/// `wait_for_signal_done` calls blocked at once for one coordinator.
pub const SIGNAL_WAITERS_MAX: usize = 16;
/// `wait_for_idle` calls blocked at once for one task.
pub const IDLE_WAITERS_PER_TASK_MAX: usize = 16;
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

/// A blocked `wait_for_signal_done`.
#[derive(Clone, Debug)]
pub(super) struct SignalWaiter {
    pub(super) id: WaiterId,
    pub(super) deadline: Millis,
    pub(super) request: Option<RequestId>,
}

/// A blocked `wait_for_idle`.
#[derive(Clone, Copy, Debug)]
pub(super) struct IdleWaiter {
    pub(super) id: WaiterId,
    pub(super) task: TaskId,
    pub(super) deadline: Millis,
}

impl Coordinator {
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
        let ready = match (
            entry.control,
            entry.terminal.status,
            entry.terminal.state.state,
        ) {
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
            && let Some(answer) = self.replay.get(now, request)
        {
            return Ok((Wait::Ready(answer.clone()), effects));
        }
        let unconsumed = self
            .tasks
            .iter()
            .find(|task| task.signal.is_some_and(|s| !s.consumed));
        if let Some(task) = unconsumed {
            let (id, name, status) = (task.spec.id, task.spec.name.clone(), task.terminal.status);
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
                self.replay.insert(now, request, outcome.clone());
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
            let (id, name, status) = (task.spec.id, task.spec.name.clone(), task.terminal.status);
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
                self.replay.insert(now, request, outcome.clone());
            }
            return Ok((Wait::Ready(outcome), effects));
        }
        // A task that needs a human and was not told yet: the wait tells it at once (its
        // notification would be withdrawn by the wait, and nothing would say it).
        let stuck = self.tasks.iter().find(|task| {
            task.terminal.state.state.attention().is_some()
                && self.notifications.pending_attention(task.spec.id)
        });
        if let Some(task) = stuck
            && let Some(reason) = task.terminal.state.state.attention()
        {
            let outcome = SignalOutcome::NeedsAttention {
                task: task.spec.id,
                name: task.spec.name.clone(),
                reason,
                status: task.terminal.status,
                at: task.terminal.state.since,
                remaining: self.remaining(),
            };
            let id = task.spec.id;
            if let Some(notice) = self.notifications.suppress(now, fresh, id) {
                effects.push(Effect::Notice(notice));
            }
            if let Some(request) = request {
                self.replay.insert(now, request, outcome.clone());
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
    pub(super) fn answer_first_signal_waiter(
        &mut self,
        now: Millis,
        fresh: Fresh,
        outcome: SignalOutcome,
        effects: &mut Vec<Effect>,
    ) {
        if let Some(waiter) = self.signal_waiters.pop_front() {
            self.answer_signal_waiter(now, fresh, waiter, outcome, effects);
        }
    }

    /// Answers the first blocked signal waiter with `task` (named `name`) exited at `now`.
    pub(super) fn answer_exited(
        &mut self,
        now: Millis,
        fresh: Fresh,
        task: TaskId,
        name: String,
        effects: &mut Vec<Effect>,
    ) {
        let outcome = SignalOutcome::Task {
            task,
            name,
            status: Status::Exited,
            at: now,
            remaining: self.remaining(),
        };
        self.answer_first_signal_waiter(now, fresh, outcome, effects);
    }

    /// Gives `outcome` to `waiter`, taken off the blocked ones (remembering it for replay), and
    /// lets notifications resume if it was the last.
    pub(super) fn answer_signal_waiter(
        &mut self,
        now: Millis,
        fresh: Fresh,
        waiter: SignalWaiter,
        outcome: SignalOutcome,
        effects: &mut Vec<Effect>,
    ) {
        if let Some(request) = waiter.request {
            self.replay.insert(now, request, outcome.clone());
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
            && self.replay.take(request).is_none()
        {
            return effects;
        }
        if let SignalOutcome::NeedsAttention { task, reason, .. } = outcome {
            // Told to nobody: told again, if the agent still waits for a human.
            if self
                .task(task)
                .is_some_and(|t| t.terminal.state.state.attention() == Some(reason))
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
        let (name, current) = (entry.spec.name.clone(), entry.terminal.status);
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
        let Some(outcome) = self.replay.get(now, request).cloned() else {
            return (false, Vec::new());
        };
        (
            true,
            self.signal_undelivered(now, fresh, outcome, Some(request)),
        )
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
        let (name, status) = (entry.spec.name.clone(), entry.terminal.status);
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

    /// An agent (a task's, or the coordinator's own) exited. A task's exit answers its idle
    /// waits and is reported (a blocked signal wait returns it, or a notification tells it).
    pub fn on_exit(
        &mut self,
        now: Millis,
        fresh: Fresh,
        terminal: impl Into<Terminal>,
        code: Option<i32>,
    ) -> Vec<Effect> {
        let terminal = terminal.into();
        let mut effects = Vec::new();
        let Some(entry) = self.terminal_mut(terminal) else {
            return effects;
        };
        entry.exited(now, code);
        self.observe_state(now, fresh, terminal, &mut effects);
        let Terminal::Task(task) = terminal else {
            return effects;
        };
        let Some(name) = self.task(task).map(|t| t.spec.name.clone()) else {
            return effects;
        };
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
            self.answer_exited(now, fresh, task, name, &mut effects);
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

    /// Tells the coordinator that a task's agent needs a human: its first blocked signal wait
    /// returns with it, or, with none blocked, a notification.
    pub(super) fn tell_attention(
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
            name: entry.spec.name.clone(),
            reason,
            status: entry.terminal.status,
            at: entry.terminal.state.since,
            remaining: self.remaining(),
        };
        self.answer_first_signal_waiter(now, fresh, outcome, effects);
    }

    /// A task signalled with nobody waiting: it is reported finished (idle, or its exit) after
    /// [`SIGNAL_DONE_DELAY_MS`].
    pub(super) fn report_signal(
        &mut self,
        now: Millis,
        fresh: Fresh,
        task: TaskId,
        effects: &mut Vec<Effect>,
    ) {
        let completion = match self
            .task(task)
            .map(|t| (t.terminal.status, t.terminal.exit_code))
        {
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
    pub(super) fn report(
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
            name: entry.spec.name.clone(),
            branch: entry.spec.branch.clone(),
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

    pub(super) fn resolve_idle_waiters(
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
