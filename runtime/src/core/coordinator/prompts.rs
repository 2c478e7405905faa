//! Prompts and control: what is typed into a task's agent and when, who drives the task, and
//! what its terminal shows.
//!
//! A prompt is typed at once when the agent waits at its prompt and nothing is ahead of it;
//! otherwise it queues (behind the assignment, a human's hold, a prompt being typed, earlier
//! prompts, or a screen that asks a human), bounded by [`PROMPT_QUEUE_MAX`] prompts and
//! [`PROMPT_QUEUE_BYTES_MAX`] bytes. The assignment waits for the task's MCP server (at most
//! [`MCP_CONNECT_TIMEOUT_MS`]). Output feeds the detector; its judgement, with the agent's
//! hooks, decides the agent's state ([`crate::core::state::decide`]) and when the task is idle.
//!
//! Invariants: nothing is typed into a task being closed, nor while a human holds it; an Enter
//! is never pressed again on a screen that asks a human.

use crate::core::detector::Readiness;
use crate::core::ids::{BatchId, TaskId};
use crate::core::notify::{Completion, Fresh};
use crate::core::state::AgentState;
use crate::core::time::Millis;

use super::{
    Control, Coordinator, CoreError, Effect, IdleOutcome, McpState, StateChange, Status, Task,
};

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

impl Coordinator {
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
        self.task_mut(task)?;
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

    /// The app typed a notification batch into the coordinator.
    pub fn ack_notification(&mut self, batch: BatchId) {
        self.notifications.ack(batch);
    }

    /// The app gave up typing a notification batch: its tasks need a human's review.
    pub fn drop_notification(&mut self, batch: BatchId) -> Vec<Effect> {
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

    /// A task's terminal was resized: its detector's screen follows.
    pub fn on_resize(&mut self, task: TaskId, cols: u16, rows: u16) {
        if let Ok(entry) = self.task_mut(task) {
            entry.detector.resize(cols, rows);
        }
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
    pub(super) fn assess(
        &mut self,
        now: Millis,
        fresh: Fresh,
        task: TaskId,
        effects: &mut Vec<Effect>,
    ) {
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
    pub(super) fn observe_state(
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
}
