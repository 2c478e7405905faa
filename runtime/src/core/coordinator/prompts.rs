//! Prompts and control: what is typed into an agent and when, who drives a task, and what an
//! agent's terminal shows; for a task's agent and for the coordinator's own agent alike (a
//! [`Terminal`] names which), the terminal's own rules being [`AgentTerminal`]'s.
//!
//! A prompt is typed at once when the agent waits at its prompt and nothing is ahead of it;
//! otherwise it queues (behind the assignment, a human's hold, a prompt being typed, earlier
//! prompts, or a screen that asks a human), bounded by [`PROMPT_QUEUE_MAX`] prompts and
//! [`PROMPT_QUEUE_BYTES_MAX`] bytes. The assignment waits for the agent's MCP server (at most
//! [`MCP_CONNECT_TIMEOUT_MS`]). Output feeds the detector; its judgement, with the agent's
//! hooks, decides the agent's state ([`crate::core::state::decide`]) and when it is idle.
//!
//! The coordinator's own agent is started by the user (`baton coordinator start`): its first
//! prompt (the coordinator preamble and the user's words) is its assignment, typed as a task's
//! is, or dropped at [`FIRST_PROMPT_WAIT_MS_MAX`] if the agent never shows its prompt. What
//! follows a task's prompt and state (signals reset, waits answered, notifications, reports)
//! never follows its own agent's: its changes are [`Effect::Own`].
//!
//! Invariants: nothing is typed into a task being closed, nor while a human holds it; an Enter
//! is never pressed again on a screen that asks a human.

use crate::core::detector::{Profile, Readiness};
use crate::core::ids::{AgentId, BatchId, TaskId};
use crate::core::notify::{Completion, Fresh};
use crate::core::state::AgentState;
use crate::core::time::Millis;

use super::terminal::Next;
use super::{
    AgentTerminal, Control, Coordinator, CoreError, Effect, FIRST_PROMPT_WAIT_MS_MAX, IdleOutcome,
    McpState, OwnAgentRunning, OwnChange, StateChange, Status, Terminal,
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
        if entry.status() == Status::Exited {
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
        if entry.terminal.must_queue() || entry.control == Control::Human {
            entry.terminal.queue(prompt)?;
            return Ok((Sent::Queued, Vec::new()));
        }
        let mut effects = Vec::new();
        self.type_prompt(now, task.into(), prompt, &mut effects);
        Ok((Sent::Typed, effects))
    }

    /// Whether a human holds `terminal` (a task under human control): nothing of the
    /// coordinator's is typed then.
    fn held(&self, terminal: Terminal) -> bool {
        match terminal {
            Terminal::Task(task) => self.task(task).is_some_and(|t| t.control == Control::Human),
            Terminal::Own => false,
        }
    }

    /// Types the terminal's assignment or its oldest queued prompt, unless a human holds it
    /// (the assignment only once its MCP server connected, or gave up). Returns whether work
    /// is typed or still waiting for it (then it does not count as idle).
    fn flush_prompt(&mut self, now: Millis, terminal: Terminal, effects: &mut Vec<Effect>) -> bool {
        // Nothing is typed into a task being closed; a failed close lets its queue go on.
        if let Terminal::Task(task) = terminal
            && self.closing.contains_key(&task)
        {
            return false;
        }
        let held = self.held(terminal);
        let Some(entry) = self.terminal_mut(terminal) else {
            return false;
        };
        let (next, gave_up) = entry.next(now, held);
        if gave_up {
            effects.push(match terminal {
                Terminal::Task(task) => Effect::State(task, StateChange::McpStartupTimedOut),
                Terminal::Own => Effect::Own(OwnChange::McpStartupTimedOut),
            });
        }
        match next {
            Next::Busy => true,
            Next::Nothing => false,
            Next::Type(prompt) => {
                self.type_prompt(now, terminal, prompt, effects);
                true
            }
        }
    }

    /// Starts typing `prompt` (the agent works again, its screen so far proves nothing; a
    /// task has its assignment if it had none) and asks the engine to type it.
    fn type_prompt(
        &mut self,
        now: Millis,
        terminal: Terminal,
        prompt: String,
        effects: &mut Vec<Effect>,
    ) {
        if let Terminal::Task(task) = terminal
            && let Ok(entry) = self.task_mut(task)
        {
            entry.assignment_delivered = true;
        }
        let Some(entry) = self.terminal_mut(terminal) else {
            return;
        };
        let bracketed = entry.bracketed_paste();
        let text = text_to_type(&prompt, bracketed);
        entry.start_typing(now, &text);
        effects.push(Effect::Type {
            terminal,
            agent: entry.agent,
            text,
            bracketed,
        });
    }

    /// The engine finished typing a prompt. A prompt typed into a task starts a new round: the
    /// task's earlier signal no longer counts (it is waited for again; the reference kept it
    /// out of `remaining` until it signalled again) and its completions are reported again. A
    /// prompt whose text could not be written goes back to the head of the queue, to be typed
    /// at the agent's next prompt; one whose Enter failed is not typed again (its text is in
    /// the agent's input already). The next queued prompt may follow.
    pub fn prompt_typed(
        &mut self,
        now: Millis,
        fresh: Fresh,
        terminal: impl Into<Terminal>,
        outcome: Typed,
    ) -> Vec<Effect> {
        let terminal = terminal.into();
        let mut effects = Vec::new();
        let Some(entry) = self.terminal_mut(terminal) else {
            return effects;
        };
        let done = entry.typed(now, outcome);
        if let (true, Terminal::Task(task)) = (done, terminal)
            && let Ok(entry) = self.task_mut(task)
        {
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
        self.assess(now, fresh, terminal, &mut effects);
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
        self.task_mut(task)?.terminal.mcp = McpState::Connected;
        let mut effects = Vec::new();
        self.assess(now, fresh, task.into(), &mut effects);
        Ok(effects)
    }

    /// The coordinator's own agent starts as `agent`, read with `profile`: its terminal is the
    /// coordinator's own from now on (an ended one is replaced), and `first_prompt`, if any, is
    /// its assignment, typed once it waits at its prompt and its MCP server connected (or
    /// [`MCP_CONNECT_TIMEOUT_MS`] passed), dropped at [`FIRST_PROMPT_WAIT_MS_MAX`].
    ///
    /// # Errors
    /// Its agent is running (or starting) already.
    pub fn start_own(
        &mut self,
        now: Millis,
        agent: AgentId,
        profile: Profile,
        first_prompt: Option<String>,
    ) -> Result<(), OwnAgentRunning> {
        if self.own.as_ref().is_some_and(|own| !own.has_exited()) {
            return Err(OwnAgentRunning);
        }
        let mut own = AgentTerminal::new(agent, profile, now);
        if let Some(prompt) = first_prompt.filter(|p| !p.trim().is_empty()) {
            own.assignment = Some(prompt);
            own.assignment_until = Some(now.plus(FIRST_PROMPT_WAIT_MS_MAX));
        }
        self.own = Some(own);
        Ok(())
    }

    /// The coordinator's own agent `agent` could not be spawned: forgotten.
    pub fn own_failed(&mut self, agent: AgentId) {
        if self.own.as_ref().is_some_and(|own| own.agent == agent) {
            self.own = None;
        }
    }

    /// The coordinator's own agent is stopped: forgotten. Its agent, if it still runs, to end.
    pub fn stop_own(&mut self) -> Option<AgentId> {
        self.own
            .take()
            .filter(|own| !own.has_exited())
            .map(|own| own.agent)
    }

    /// The coordinator's own MCP server announced itself: its agent has Baton's tools, and its
    /// first prompt may go out (at once if it waits at its prompt).
    pub fn own_mcp_connected(&mut self, now: Millis, fresh: Fresh) -> Vec<Effect> {
        let mut effects = Vec::new();
        if let Some(own) = &mut self.own {
            own.mcp = McpState::Connected;
            self.assess(now, fresh, Terminal::Own, &mut effects);
        }
        effects
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
            && entry.status() != Status::Exited
        {
            entry.terminal.evidence.hook(now, state);
            self.observe_state(now, fresh, task.into(), &mut effects);
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
        let status = entry.status();
        let mut effects = Vec::new();
        if changed {
            effects.push(Effect::State(task, StateChange::ControlChanged(control)));
        }
        match control {
            Control::Human => {
                self.resolve_idle_waiters(task, IdleOutcome::HumanControl, &mut effects)
            }
            Control::Coordinator if status == Status::Idle => {
                if !self.flush_prompt(now, task.into(), &mut effects) {
                    self.resolve_idle_waiters(task, IdleOutcome::Idle, &mut effects);
                }
            }
            // Work held for the human (the assignment, queued prompts) may go out now.
            Control::Coordinator => self.assess(now, fresh, task.into(), &mut effects),
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
        task.terminal.detector.prompt_sent(now, prompt);
        if task.terminal.status == Status::Idle {
            task.terminal.status = Status::Running;
        }
        Ok(())
    }

    /// A terminal was resized: its detector's screen follows.
    pub fn on_resize(&mut self, terminal: impl Into<Terminal>, cols: u16, rows: u16) {
        if let Some(entry) = self.terminal_mut(terminal.into()) {
            entry.detector.resize(cols, rows);
        }
    }

    /// Output of an agent (a task's, or the coordinator's own) arrived: kept, read, its terminal
    /// queries answered ([`Effect::Write`]), and what it shows acted on.
    pub fn on_output(
        &mut self,
        now: Millis,
        fresh: Fresh,
        terminal: impl Into<Terminal>,
        bytes: &[u8],
    ) -> Vec<Effect> {
        let terminal = terminal.into();
        let mut effects = Vec::new();
        let Some(entry) = self.terminal_mut(terminal) else {
            return effects;
        };
        entry.output(now, bytes, &mut effects);
        self.assess(now, fresh, terminal, &mut effects);
        effects
    }

    /// Applies the detector's judgement of a terminal at `now`, then what its agent's state
    /// became.
    pub(super) fn assess(
        &mut self,
        now: Millis,
        fresh: Fresh,
        terminal: Terminal,
        effects: &mut Vec<Effect>,
    ) {
        self.assess_screen(now, fresh, terminal, effects);
        self.observe_state(now, fresh, terminal, effects);
    }

    /// The detector's judgement: an idle agent gets its next prompt or is reported idle (a
    /// task's: its idle waits answered, the coordinator told); a lost Enter is pressed again;
    /// the own agent's first prompt, untyped at its deadline, is dropped.
    fn assess_screen(
        &mut self,
        now: Millis,
        fresh: Fresh,
        terminal: Terminal,
        effects: &mut Vec<Effect>,
    ) {
        let held = self.held(terminal);
        let Some(entry) = self.terminal_mut(terminal) else {
            return;
        };
        if entry.status == Status::Exited {
            return;
        }
        entry.retry_enter(now, held, effects);
        let assessment = entry.detector.assess(now);
        if assessment.idle && self.flush_prompt(now, terminal, effects) {
            return;
        }
        let Some(entry) = self.terminal_mut(terminal) else {
            return;
        };
        if entry.drop_stale_assignment(now) {
            effects.push(Effect::Own(OwnChange::FirstPromptDropped));
        }
        if assessment.idle {
            let became_idle = entry.status == Status::Running;
            entry.status = Status::Idle;
            if let Terminal::Task(task) = terminal {
                self.resolve_idle_waiters(task, IdleOutcome::Idle, effects);
                if became_idle {
                    self.report(now, fresh, task, Completion::Idle, None, effects);
                }
            }
        } else if assessment.readiness != Readiness::Ready && entry.status == Status::Idle {
            entry.status = Status::Running;
        }
    }

    /// Takes the screen's reading of a terminal into its evidence and acts on a change of its
    /// agent's state: the app is told (the own agent's is logged); for a task, a state that
    /// needs a human answers its idle waits and tells the coordinator (its blocked signal
    /// wait, or a notification); leaving it withdraws that notification if it is still pending.
    pub(super) fn observe_state(
        &mut self,
        now: Millis,
        fresh: Fresh,
        terminal: Terminal,
        effects: &mut Vec<Effect>,
    ) {
        let Some(entry) = self.terminal_mut(terminal) else {
            return;
        };
        let (before, verdict) = entry.observe(now);
        if verdict.state == before {
            return;
        }
        let task = match terminal {
            Terminal::Task(task) => task,
            Terminal::Own => {
                effects.push(Effect::Own(OwnChange::Agent(verdict)));
                return;
            }
        };
        effects.push(Effect::State(task, StateChange::Agent(verdict)));
        if before.attention().is_some() && self.notifications.pending_attention(task) {
            // Answered: what it asked is no news any more, but how it stands now may be.
            if let Some(notice) = self.notifications.suppress(now, fresh, task) {
                effects.push(Effect::Notice(notice));
            }
            let completion = match self.task(task).map(|t| (t.status(), t.terminal.exit_code)) {
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
        if self.held(terminal) {
            return;
        }
        self.resolve_idle_waiters(task, IdleOutcome::NeedsAttention(reason), effects);
        if !self.closing.contains_key(&task) {
            self.tell_attention(now, fresh, task, reason, effects);
        }
    }
}
