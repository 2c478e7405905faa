//! Coordinator notifications: telling a coordinator which sub-tasks finished, in batches.
//!
//! When a sub-task goes idle after its assignment, exits, or signals done with nobody waiting,
//! the engine [`report`](Notifications::report)s it here. Pending notifications are *staged* as one
//! batch (an id, the notification ids, a rendered text and an auto-fire time) that the app types
//! into the coordinator's terminal and then acknowledges. One batch is staged at a time: staging
//! again replaces it. A staged batch nobody acknowledged is staged again after
//! [`RESTAGE_MS`]. While the coordinator blocks in `wait_for_signal_done` nothing is staged: the
//! wait itself will tell it.
//!
//! Pure state: time and fresh ids come in as arguments, [`Notice`]s (for the app) come out; the
//! engine owns one `Notifications` per coordinator and sets a timer for
//! [`Notifications::restage_at`].
//!
//! Invariant: a task has at most one pending notification (its *flag* marks it reported or
//! deliberately silenced), so the pending list is bounded by the coordinator's tasks; acknowledged
//! batch ids are kept up to [`ACKED_BATCHES_MAX`].

use std::collections::{BTreeSet, VecDeque};
use std::fmt::Write as _;

use super::ids::{BatchId, NotificationId, TaskId};
use super::state::Attention;
use super::time::Millis;

/// Default wait between staging a batch and typing it into the coordinator.
pub const NOTIFICATION_DELAY_MS_DEFAULT: u64 = 30_000;
/// Shortest delay a user can set: long enough to read what was staged.
pub const NOTIFICATION_DELAY_MS_MIN: u64 = 5_000;
/// Longest delay a user can set.
pub const NOTIFICATION_DELAY_MS_MAX: u64 = 300_000;
/// Shortest delay when a batch reports a failed exit (failures are told sooner: a quarter of the
/// delay, but not less than this).
pub const FAILURE_DELAY_MS_MIN: u64 = 10_000;
/// Delay for a task that signalled done while nobody waited.
pub const SIGNAL_DONE_DELAY_MS: u64 = 5_000;
/// Time after which an unacknowledged batch is staged again.
pub const RESTAGE_MS: u64 = 300_000;
/// Acknowledged batch ids remembered (acknowledging again is then a no-op).
pub const ACKED_BATCHES_MAX: usize = 64;

/// How a sub-task finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// It went idle after working on its assignment (or signalled done while running).
    Idle,
    /// Its process exited, with this code if it had one (a signal kill has none).
    Exited(Option<i32>),
    /// It has not finished: it waits for a human, for this reason.
    NeedsAttention(Attention),
    /// A daemon restart ended its agent; `held` prompts (its untyped assignment, queued
    /// prompts) wait for it to be started again.
    Lost {
        /// Prompts waiting.
        held: usize,
    },
}

impl Completion {
    /// Whether it is told sooner than the batch delay: a failed exit, a task stuck on a human.
    fn urgent(self) -> bool {
        matches!(self, Completion::Exited(Some(code)) if code != 0)
            || matches!(
                self,
                Completion::NeedsAttention(_) | Completion::Lost { .. }
            )
    }
}

/// A sub-task that finished, as the engine reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// The task.
    pub task: TaskId,
    /// Its display name.
    pub name: String,
    /// Its branch.
    pub branch: String,
    /// How it finished.
    pub completion: Completion,
}

/// One pending notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Its id, as listed in a staged batch.
    pub id: NotificationId,
    /// What it reports.
    pub finished: Finished,
    /// When it was reported.
    pub at: Millis,
}

/// A batch ready for the app to type into the coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Staged {
    /// The batch, to acknowledge or drop.
    pub batch: BatchId,
    /// The notifications it carries, oldest first.
    pub notifications: Vec<NotificationId>,
    /// What to type.
    pub text: String,
    /// When to type it if the coordinator is at its prompt.
    pub auto_fire_at: Millis,
}

/// What the app must be told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A batch was staged (replacing any earlier one).
    Staged(Staged),
    /// Nothing is staged any more.
    Cleared,
}

/// Fresh ids for one call; the ones a call does not use are discarded.
#[derive(Clone, Copy, Debug)]
pub struct Fresh {
    /// For a batch staged by this call.
    pub batch: BatchId,
    /// For a notification added by this call.
    pub notification: NotificationId,
}

/// One coordinator's notifications. See the module documentation.
#[derive(Clone, Debug)]
pub struct Notifications {
    delay_ms: u64,
    pending: Vec<Pending>,
    staged: Option<(BatchId, Vec<NotificationId>)>,
    acked: VecDeque<BatchId>,
    restage_at: Option<Millis>,
    signal_waits: u32,
    /// Tasks reported (pending) or deliberately silenced: no further notification for them.
    flagged: BTreeSet<TaskId>,
}

impl Default for Notifications {
    fn default() -> Self {
        Notifications::new(NOTIFICATION_DELAY_MS_DEFAULT)
    }
}

impl Notifications {
    /// Empty, with `delay_ms` clamped to the allowed range.
    #[must_use]
    pub fn new(delay_ms: u64) -> Self {
        Notifications {
            delay_ms: clamp_delay(delay_ms),
            pending: Vec::new(),
            staged: None,
            acked: VecDeque::new(),
            restage_at: None,
            signal_waits: 0,
            flagged: BTreeSet::new(),
        }
    }

    /// Changes the delay for later batches, clamped to the allowed range.
    pub fn set_delay_ms(&mut self, delay_ms: u64) {
        self.delay_ms = clamp_delay(delay_ms);
    }

    /// The delay in force.
    #[must_use]
    pub const fn delay_ms(&self) -> u64 {
        self.delay_ms
    }

    /// Whether `task`'s pending notification says it needs a human.
    #[must_use]
    pub fn pending_attention(&self, task: TaskId) -> bool {
        self.pending.iter().any(|p| {
            p.finished.task == task
                && matches!(p.finished.completion, Completion::NeedsAttention(_))
        })
    }

    /// Whether `task` has a notification waiting to be acknowledged.
    #[must_use]
    pub fn has_pending(&self, task: TaskId) -> bool {
        self.pending.iter().any(|p| p.finished.task == task)
    }

    /// Lets `task` be reported again (a silence that turned out premature).
    pub fn unsilence(&mut self, task: TaskId) {
        if !self.pending.iter().any(|p| p.finished.task == task) {
            self.flagged.remove(&task);
        }
    }

    /// The notifications waiting to be acknowledged, oldest first.
    #[must_use]
    pub fn pending(&self) -> &[Pending] {
        &self.pending
    }

    /// The staged batch, if any.
    #[must_use]
    pub fn staged(&self) -> Option<BatchId> {
        self.staged.as_ref().map(|(batch, _)| *batch)
    }

    /// When the staged batch is due to be staged again, if it is.
    #[must_use]
    pub const fn restage_at(&self) -> Option<Millis> {
        self.restage_at
    }

    /// Whether `task` was reported or silenced.
    #[must_use]
    pub fn is_flagged(&self, task: TaskId) -> bool {
        self.flagged.contains(&task)
    }

    /// Marks `task` so that nothing more is reported for it (its signal was consumed by a wait,
    /// or it was never given its assignment and its coordinator left).
    pub fn silence(&mut self, task: TaskId) {
        self.flagged.insert(task);
    }

    /// A sub-task finished or needs a human: queue a notification unless one is pending (an
    /// idle one is upgraded to an exit or to needing a human, one needing a human to an exit)
    /// or the task was silenced, and stage. `delay_ms` overrides the batch delay.
    pub fn report(
        &mut self,
        now: Millis,
        fresh: Fresh,
        finished: Finished,
        delay_ms: Option<u64>,
    ) -> Option<Notice> {
        if self.flagged.contains(&finished.task) {
            let rank = |completion: Completion| match completion {
                Completion::Idle => 0,
                Completion::NeedsAttention(_) => 1,
                Completion::Exited(_) | Completion::Lost { .. } => 2,
            };
            let earlier = self.pending.iter_mut().find(|p| {
                p.finished.task == finished.task
                    && rank(p.finished.completion) < rank(finished.completion)
            })?;
            earlier.finished.completion = finished.completion;
            return self.stage(now, fresh.batch, None);
        }
        self.flagged.insert(finished.task);
        self.pending.push(Pending {
            id: fresh.notification,
            finished,
            at: now,
        });
        self.stage(now, fresh.batch, delay_ms)
    }

    /// Withdraws `task`'s pending notification (it was answered another way: a wait returned it,
    /// it is being closed). Its flag is cleared. The rest is staged again, or [`Notice::Cleared`]
    /// if nothing remains. Nothing happens if the task has nothing pending.
    pub fn suppress(&mut self, now: Millis, fresh: Fresh, task: TaskId) -> Option<Notice> {
        let before = self.pending.len();
        let removed: Vec<NotificationId> = self
            .pending
            .iter()
            .filter(|p| p.finished.task == task)
            .map(|p| p.id)
            .collect();
        self.pending.retain(|p| p.finished.task != task);
        if self.pending.len() == before {
            return None;
        }
        self.flagged.remove(&task);
        if let Some((_, ids)) = &mut self.staged {
            ids.retain(|id| !removed.contains(id));
            if ids.is_empty() {
                self.staged = None;
            }
        }
        if self.pending.is_empty() {
            self.restage_at = None;
            return Some(Notice::Cleared);
        }
        self.stage(now, fresh.batch, None)
    }

    /// The app typed `batch` into the coordinator. Its notifications are done (their tasks'
    /// flags cleared, returned); acknowledging a superseded, unknown or already acknowledged
    /// batch removes nothing.
    pub fn ack(&mut self, batch: BatchId) -> Vec<TaskId> {
        if self.acked.contains(&batch) {
            return Vec::new();
        }
        let mut done = Vec::new();
        if let Some((staged, ids)) = self.staged.take() {
            if staged == batch {
                self.pending.retain(|p| {
                    let acked = ids.contains(&p.id);
                    if acked {
                        done.push(p.finished.task);
                    }
                    !acked
                });
                for task in &done {
                    self.flagged.remove(task);
                }
            } else {
                self.staged = Some((staged, ids));
            }
        }
        self.acked.push_back(batch);
        while self.acked.len() > ACKED_BATCHES_MAX {
            self.acked.pop_front();
        }
        if self.pending.is_empty() {
            self.restage_at = None;
        }
        done
    }

    /// The app gave up typing `batch`: acknowledged as [`ack`](Self::ack) does; returns the
    /// tasks it carried (if it was staged), which now need a human's review.
    pub fn drop_batch(&mut self, batch: BatchId) -> Vec<TaskId> {
        let carried = match &self.staged {
            Some((staged, ids)) if *staged == batch => self
                .pending
                .iter()
                .filter(|p| ids.contains(&p.id))
                .map(|p| p.finished.task)
                .collect(),
            _ => Vec::new(),
        };
        self.ack(batch);
        carried
    }

    /// A blocking `wait_for_signal_done` starts: stop staging until it ends. A staged batch is
    /// withdrawn ([`Notice::Cleared`]); pending notifications stay.
    pub fn begin_signal_wait(&mut self) -> Option<Notice> {
        self.signal_waits += 1;
        self.restage_at = None;
        self.staged.take().map(|_| Notice::Cleared)
    }

    /// A blocking wait ended; when it was the last one, what is pending is staged.
    pub fn finish_signal_wait(&mut self, now: Millis, fresh: Fresh) -> Option<Notice> {
        self.signal_waits = self.signal_waits.saturating_sub(1);
        if self.signal_waits > 0 {
            return None;
        }
        self.stage(now, fresh.batch, None)
    }

    /// The restage time came: stage again what is still pending.
    pub fn restage_due(&mut self, now: Millis, fresh: Fresh) -> Option<Notice> {
        if self.restage_at.is_none_or(|at| now < at) {
            return None;
        }
        self.restage_at = None;
        self.stage(now, fresh.batch, None)
    }

    /// The user typed something of their own while a batch was pending: give them another
    /// [`RESTAGE_MS`] before staging again.
    pub fn reschedule_restage(&mut self, now: Millis) {
        if !self.pending.is_empty() && self.signal_waits == 0 {
            self.restage_at = Some(now.plus(RESTAGE_MS));
        }
    }

    fn stage(&mut self, now: Millis, batch: BatchId, delay_ms: Option<u64>) -> Option<Notice> {
        if self.pending.is_empty() {
            return None;
        }
        if self.signal_waits > 0 {
            self.restage_at = None;
            return None;
        }
        let delay = delay_ms.unwrap_or_else(|| {
            if self.pending.iter().any(|p| p.finished.completion.urgent()) {
                FAILURE_DELAY_MS_MIN.max(self.delay_ms / 4)
            } else {
                self.delay_ms
            }
        });
        let notifications: Vec<NotificationId> = self.pending.iter().map(|p| p.id).collect();
        self.staged = Some((batch, notifications.clone()));
        self.restage_at = Some(now.plus(RESTAGE_MS));
        Some(Notice::Staged(Staged {
            batch,
            notifications,
            text: render(&self.pending),
            auto_fire_at: now.plus(delay),
        }))
    }
}

fn clamp_delay(delay_ms: u64) -> u64 {
    delay_ms.clamp(NOTIFICATION_DELAY_MS_MIN, NOTIFICATION_DELAY_MS_MAX)
}

/// The text typed into the coordinator for `pending`.
#[must_use]
pub fn render(pending: &[Pending]) -> String {
    let mut text = format!(
        "[Sub-task update — {} task(s) completed]\n\n",
        pending.len()
    );
    for p in pending {
        let _ = writeln!(text, "{}", describe(&p.finished));
        if matches!(p.finished.completion, Completion::Exited(Some(code)) if code != 0) {
            text.push_str(
                "  ⚠️  Non-zero exit: it may need attention; consider a follow-up sub-task.\n",
            );
        }
    }
    text.push_str(
        "\nReview each finished sub-task's diff, merge what is ready, and start the next \
         sub-tasks if work remains.",
    );
    text
}

/// One line about a finished task, as in a batch and in an orphaned notification.
#[must_use]
pub fn describe(finished: &Finished) -> String {
    let Finished {
        name,
        branch,
        completion,
        ..
    } = finished;
    match completion {
        Completion::Idle => format!("- \"{name}\" ready for review — branch: {branch}"),
        Completion::Exited(code) => {
            let code = code.map_or_else(|| "null".to_owned(), |c| c.to_string());
            format!("- \"{name}\" terminated (exit {code}) — branch: {branch}")
        }
        Completion::NeedsAttention(reason) => format!(
            "- \"{name}\" needs a human ({}: {}) — branch: {branch}",
            reason.name(),
            reason.advice()
        ),
        Completion::Lost { held } => {
            let waiting = match held {
                0 => String::new(),
                1 => "; 1 prompt waits for it".to_owned(),
                n => format!("; {n} prompts wait for it"),
            };
            format!(
                "- \"{name}\" lost its agent when Baton restarted{waiting} (start its agent \
                 again, or merge or close the task) — branch: {branch}"
            )
        }
    }
}

#[cfg(test)]
mod tests;
