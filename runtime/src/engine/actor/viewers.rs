//! Each task's terminal as the actor serves it: its PTY events pumped to the actor, its
//! writer (typed prompts, viewers' keystrokes and resizes, in order), its viewers (output fanned
//! out without waiting; a full viewer queue drops that viewer), and the views of tasks that
//! callers and the phone's list read.
//!
//! Watching starts in one step with the scrollback it is given, so nothing is lost or repeated
//! between the two. Nothing here waits on a viewer.

use tokio::sync::oneshot;

use super::{Actor, Internal};
use crate::core::coordinator::{Control, Sent, Status, Task, Terminal, Typed};
use crate::core::ids::{AgentId, TaskId};
use crate::engine::writer::{Input, TERMINAL_INPUTS_MAX, Writer};
use crate::engine::{
    AGENT_COLS, AgentEvent, AgentView, AgentsView, EXPLAIN_SCREEN_LINES, EngineError, Explanation,
    LIST_ACTIVITY_STEP_MS, OUTPUT_COALESCE_BYTES_MAX, Reply, TaskView, TerminalInput, TypingFailed,
    Viewer, Watched, Watching,
};
use crate::ports::{PtyEvent, PtySession};

impl Actor {
    /// Starts `viewer` watching `agent`'s terminal, with its scrollback taken in the same step
    /// (an exited agent's watch ends at once: nothing more will come).
    pub(super) fn watch(
        &mut self,
        agent: AgentId,
        viewer: Viewer,
    ) -> Result<Watching, EngineError> {
        let (task, scrollback, exited) = self.task_of(agent).map(|task| {
            let exited =
                (task.terminal.status == Status::Exited).then_some(task.terminal.exit_code);
            (task.spec.id, task.terminal.scrollback(), exited)
        })?;
        if exited.is_none() {
            let viewers = self.viewers.entry(task).or_default();
            viewers.retain(|v| v.id != viewer.id);
            viewers.push(viewer);
        }
        Ok(Watching {
            scrollback,
            cols: self.cols.get(&task).copied().unwrap_or(AGENT_COLS),
            exited,
        })
    }

    /// Stops the viewer `viewer` watching `agent`'s terminal.
    pub(super) fn unwatch(&mut self, agent: AgentId, viewer: u64) {
        if let Ok(task) = self.task_of(agent).map(|t| t.spec.id) {
            if let Some(viewers) = self.viewers.get_mut(&task) {
                viewers.retain(|v| v.id != viewer);
            }
            self.viewers.retain(|_, viewers| !viewers.is_empty());
        }
    }

    /// Tells the feed when the list of agents changed: a task came or went, or its status or
    /// exit code changed (whatever made it so).
    pub(super) fn tell_list_changes(&mut self) {
        let mut now = self
            .core
            .tasks()
            .map(|t| (t.spec.id, t.terminal.status, t.terminal.exit_code));
        let same = self.listed.iter().copied().eq(now.by_ref());
        // The list's other fields change nothing persisted: they are only told.
        let shown = self.core.tasks().map(Shown::of);
        if !shown.eq(self.shown.iter().copied()) {
            self.shown = self.core.tasks().map(Shown::of).collect();
            if same {
                self.feed.send(AgentEvent::ListChanged);
            }
        }
        if !same {
            self.dirty = true;
            self.listed = self
                .core
                .tasks()
                .map(|t| (t.spec.id, t.terminal.status, t.terminal.exit_code))
                .collect();
            // Viewers of a task that is gone watch nothing more.
            let core = &self.core;
            self.viewers.retain(|task, _| core.task(*task).is_some());
            self.cols.retain(|task, _| core.task(*task).is_some());
            self.feed.send(AgentEvent::ListChanged);
        }
    }

    /// The task whose agent is `agent`.
    pub(super) fn task_of(&self, agent: AgentId) -> Result<&Task, EngineError> {
        self.core
            .tasks()
            .find(|t| t.terminal.agent == agent)
            .ok_or_else(|| EngineError::Missing(format!("agent not found: {agent}")))
    }

    /// Hands output (or the exit) to the task's viewers without waiting: a viewer whose queue
    /// is full is dropped and told so.
    pub(super) fn fan_out(&mut self, task: TaskId, watched: &Watched) {
        let Some(viewers) = self.viewers.get_mut(&task) else {
            return;
        };
        let overflowed = crate::engine::hand_out(viewers, watched);
        if viewers.is_empty() {
            self.viewers.remove(&task);
        }
        for id in overflowed {
            for viewers in self.viewers.values_mut() {
                viewers.retain(|viewer| viewer.id != id);
            }
            self.viewers.retain(|_, viewers| !viewers.is_empty());
        }
    }

    /// Carries out a viewer's terminal input in a job, answering once the PTY did it.
    pub(super) fn terminal(&mut self, agent: AgentId, input: TerminalInput, reply: Reply<()>) {
        let task = match self.task_of(agent) {
            Ok(task) => task.spec.id,
            Err(error) => {
                let _ = reply.send(Err(error));
                return;
            }
        };
        if let TerminalInput::Resize { cols, rows } = input {
            self.cols.insert(task, cols);
            self.core.on_resize(task, cols, rows);
        }
        let (done, result) = oneshot::channel();
        let queued = match input {
            TerminalInput::Write(bytes) => {
                self.writer(agent).queue(Input::Write(bytes, Some(done)))
            }
            TerminalInput::Resize { cols, rows } => self.writer(agent).queue(Input::Resize {
                cols,
                rows,
                reply: done,
            }),
            TerminalInput::Kill => {
                let pty = self.ports.pty.clone();
                tokio::spawn(async move {
                    let result = pty.kill(agent).await;
                    let _ = reply.send(result.map_err(|error| EngineError::Io(error.to_string())));
                });
                return;
            }
        };
        if queued.is_err() {
            let _ = reply.send(Err(EngineError::Busy(format!(
                "the terminal of task {task} has {TERMINAL_INPUTS_MAX} inputs waiting"
            ))));
            return;
        }
        tokio::spawn(async move {
            let result = result.await.unwrap_or(Ok(()));
            let _ = reply.send(result.map_err(|error| EngineError::Io(error.to_string())));
        });
    }

    /// The writer of `agent`'s terminal, started with its first input.
    pub(super) fn writer(&mut self, agent: AgentId) -> Writer {
        let pty = &self.ports.pty;
        self.writers
            .entry(agent)
            .or_insert_with(|| Writer::start(pty.clone(), agent))
            .clone()
    }

    /// Forwards a session's events to the actor, in order, until it ends. Output already
    /// waiting behind the first chunk goes along with it, up to [`OUTPUT_COALESCE_BYTES_MAX`]:
    /// the actor's work (and its wake-ups) is per event, and a busy agent sends many.
    pub(super) fn pump(&self, task: TaskId, mut session: PtySession) {
        let internal = self.internal.clone();
        tokio::spawn(async move {
            let mut held: Option<PtyEvent> = None;
            loop {
                let event = match held.take() {
                    Some(event) => event,
                    None => match session.events.recv().await {
                        Some(event) => event,
                        None => break,
                    },
                };
                let event = match event {
                    PtyEvent::Output(mut bytes) => {
                        while let Ok(next) = session.events.try_recv() {
                            match next {
                                PtyEvent::Output(more)
                                    if bytes.len() + more.len() <= OUTPUT_COALESCE_BYTES_MAX =>
                                {
                                    bytes.extend_from_slice(&more);
                                }
                                other => {
                                    held = Some(other);
                                    break;
                                }
                            }
                        }
                        PtyEvent::Output(bytes)
                    }
                    exited => exited,
                };
                if internal.send(Internal::Pty(task, event)).await.is_err() {
                    break;
                }
            }
        });
    }

    /// Types `text` (wrapped for bracketed paste if asked), waits, presses Enter: in a job, so
    /// the actor goes on meanwhile.
    pub(super) fn type_prompt(
        &mut self,
        terminal: Terminal,
        agent: AgentId,
        text: String,
        bracketed: bool,
        reply: Option<Reply<Sent>>,
    ) {
        let internal = self.internal.clone();
        let (done, typed) = oneshot::channel();
        let prompt = Input::Prompt {
            text: text.clone(),
            bracketed,
            done,
        };
        let queued = self.writer(agent).queue(prompt).is_ok();
        tokio::spawn(async move {
            let typed = match queued {
                true => typed.await.unwrap_or(Err(TypingFailed::Gone)),
                false => Err(TypingFailed::Gone),
            };
            let (outcome, result) = match typed {
                Ok(()) => (Typed::Done, Ok(())),
                Err(TypingFailed::Text(error)) => (Typed::TextFailed(text), Err(error.to_string())),
                Err(TypingFailed::Gone) => (
                    Typed::TextFailed(text),
                    Err(format!(
                        "the agent's terminal has {TERMINAL_INPUTS_MAX} inputs waiting"
                    )),
                ),
                Err(TypingFailed::Enter(error)) => (Typed::EnterFailed, Err(error.to_string())),
            };
            let _ = internal.send(Internal::Typed(terminal, outcome)).await;
            if let Some(reply) = reply {
                let _ = reply.send(result.map(|()| Sent::Typed).map_err(EngineError::Io));
            }
        });
    }

    /// The coordinator and its tasks' agents, for the phone's list.
    pub(super) fn agents_view(&self) -> AgentsView {
        AgentsView {
            coordinator: self.core.id(),
            project_root: self.settings.project_root.clone(),
            registered: self.core.is_registered(),
            notifications: self.core.notifications().pending().len(),
            agents: self
                .core
                .tasks()
                .map(|task| AgentView {
                    task: view(task),
                    last_line: task.terminal.last_line(),
                    state: task.terminal.agent_state(),
                    last_activity: task.terminal.detector.last_activity(),
                    signal_pending: task.signal.is_some_and(|s| !s.consumed),
                    control: task.control,
                })
                .collect(),
        }
    }
}

/// What the phone's list shows of a task besides its status and exit code: a change of any of
/// these is told to the feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Shown {
    task: TaskId,
    state: crate::core::state::AgentState,
    signal_pending: bool,
    control: Control,
    /// The last activity, in steps of [`LIST_ACTIVITY_STEP_MS`].
    activity_step: u64,
}

impl Shown {
    fn of(task: &Task) -> Self {
        Shown {
            task: task.spec.id,
            state: task.terminal.agent_state().state,
            signal_pending: task.signal.is_some_and(|s| !s.consumed),
            control: task.control,
            activity_step: task.terminal.detector.last_activity().0 / LIST_ACTIVITY_STEP_MS,
        }
    }
}

/// Why Baton thinks what it thinks of a task's agent.
pub(super) fn explain(task: &Task) -> Explanation {
    let text = task.terminal.screen_text();
    let mut screen: Vec<String> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.trim_end().to_owned())
        .collect();
    let skip = screen.len().saturating_sub(EXPLAIN_SCREEN_LINES);
    screen.drain(..skip);
    Explanation {
        task: view(task),
        evidence: *task.terminal.evidence(),
        readiness: task.terminal.readiness(),
        last_activity: task.terminal.last_activity(),
        screen,
    }
}

/// A task as callers see it.
pub(super) fn view(task: &Task) -> TaskView {
    TaskView {
        id: task.spec.id,
        name: task.spec.name.clone(),
        branch: task.spec.branch.clone(),
        worktree: task.spec.worktree.clone(),
        agent: task.terminal.agent,
        status: task.terminal.status,
        exit_code: task.terminal.exit_code,
        state: task.terminal.agent_state(),
        signalled_at: task.signal.map(|s| s.at),
    }
}
