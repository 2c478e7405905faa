//! Each agent's terminal as the actor serves it, a task's agent's and the coordinator's own
//! agent's alike: its PTY events pumped to the actor, its writer (typed prompts, terminal
//! answers, viewers' keystrokes and resizes, in order), its viewers (output fanned out without
//! waiting; a full viewer queue drops that viewer), and the views of tasks and of the own agent
//! that callers and the phone's list read. The own agent is started (spawned in a job) and
//! stopped here too.
//!
//! Watching starts in one step with the scrollback it is given, so nothing is lost or repeated
//! between the two. Nothing here waits on a viewer.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::{Actor, Internal};
use crate::core::coordinator::{AgentTerminal, Control, Sent, Status, Task, Terminal, Typed};
use crate::core::ids::AgentId;
use crate::engine::writer::{Input, TERMINAL_INPUTS_MAX, Writer};
use crate::engine::{
    AGENT_COLS, AgentEvent, AgentView, AgentsView, EXPLAIN_SCREEN_LINES, EngineError, Explanation,
    LIST_ACTIVITY_STEP_MS, OUTPUT_COALESCE_BYTES_MAX, OwnAgentStart, OwnAgentView, Reply, TaskList,
    TaskView, TerminalInput, TypingFailed, Viewer, Watched, Watching,
};
use crate::ports::{ExitStatus, PtyEvent, PtySession};

impl Actor {
    /// The tasks as callers see them now: the snapshot last handed out while every task still
    /// shows as it lists it (none came, went or changed), else a new one.
    pub(super) fn task_list(&mut self) -> Arc<TaskList> {
        if let Some(list) = &self.task_list {
            let mut listed = list.tasks().iter();
            let unchanged = self
                .core
                .tasks()
                .all(|task| listed.next().is_some_and(|view| shows(view, task)));
            if unchanged && listed.next().is_none() {
                return Arc::clone(list);
            }
        }
        let list = Arc::new(TaskList::new(self.core.tasks().map(view).collect()));
        self.task_list = Some(Arc::clone(&list));
        list
    }

    /// Starts `viewer` watching `agent`'s terminal (a task's agent's, or the coordinator's own
    /// agent's), with its scrollback taken in the same step (an exited agent's watch ends at
    /// once: nothing more will come).
    pub(super) fn watch(
        &mut self,
        agent: AgentId,
        viewer: Viewer,
    ) -> Result<Watching, EngineError> {
        let (terminal, entry) = self.terminal_of(agent)?;
        let scrollback = entry.scrollback();
        let exited = entry.has_exited().then_some(entry.exit_code);
        if exited.is_none() {
            let viewers = self.viewers.entry(terminal).or_default();
            viewers.retain(|v| v.id != viewer.id);
            viewers.push(viewer);
        }
        Ok(Watching {
            scrollback,
            cols: self.cols.get(&terminal).copied().unwrap_or(AGENT_COLS),
            exited,
        })
    }

    /// Stops the viewer `viewer` watching `agent`'s terminal.
    pub(super) fn unwatch(&mut self, agent: AgentId, viewer: u64) {
        if let Ok((terminal, _)) = self.terminal_of(agent) {
            if let Some(viewers) = self.viewers.get_mut(&terminal) {
                viewers.retain(|v| v.id != viewer);
            }
            self.viewers.retain(|_, viewers| !viewers.is_empty());
        }
    }

    /// Tells the feed when the list of agents changed: a task came or went, or its status or
    /// exit code changed (whatever made it so), or what the list shows of an agent changed
    /// (the own agent's coming, state, activity and end among it).
    pub(super) fn tell_list_changes(&mut self) {
        let mut now = self
            .core
            .tasks()
            .map(|t| (t.id(), t.status(), t.terminal.exit_code));
        let same = self.listed.iter().copied().eq(now.by_ref());
        // The list's other fields change nothing persisted: they are only told.
        if !self.shown().eq(self.shown.iter().copied()) {
            self.shown = self.shown().collect();
            if same {
                self.feed.send(AgentEvent::ListChanged);
            }
        }
        if !same {
            self.dirty = true;
            self.listed = self
                .core
                .tasks()
                .map(|t| (t.id(), t.status(), t.terminal.exit_code))
                .collect();
            // Viewers of a task that is gone watch nothing more.
            let core = &self.core;
            self.viewers
                .retain(|terminal, _| core.terminal(*terminal).is_some());
            self.cols
                .retain(|terminal, _| core.terminal(*terminal).is_some());
            self.feed.send(AgentEvent::ListChanged);
        }
    }

    /// What the phone's list shows of each agent now: the tasks' agents, then its own.
    fn shown(&self) -> impl Iterator<Item = Shown> + '_ {
        self.core
            .tasks()
            .map(Shown::of_task)
            .chain(self.core.own().map(Shown::of_own))
    }

    /// The terminal whose agent is `agent`: a task's, or the coordinator's own.
    pub(super) fn terminal_of(
        &self,
        agent: AgentId,
    ) -> Result<(Terminal, &AgentTerminal), EngineError> {
        self.core
            .terminal_of(agent)
            .and_then(|terminal| Some((terminal, self.core.terminal(terminal)?)))
            .ok_or_else(|| missing(agent))
    }

    /// Hands output (or the exit) to the terminal's viewers without waiting: a viewer whose
    /// queue is full is dropped (from every terminal it watches) and told so.
    pub(super) fn fan_out(&mut self, terminal: Terminal, watched: &Watched) {
        let Some(viewers) = self.viewers.get_mut(&terminal) else {
            return;
        };
        let overflowed = crate::engine::hand_out(viewers, watched);
        if viewers.is_empty() {
            self.viewers.remove(&terminal);
        }
        for id in overflowed {
            for viewers in self.viewers.values_mut() {
                viewers.retain(|viewer| viewer.id != id);
            }
            self.viewers.retain(|_, viewers| !viewers.is_empty());
        }
    }

    /// The coordinator's own agent as the app and the phone's list show it.
    pub(super) fn own_view(&self) -> Option<OwnAgentView> {
        let own = self.core.own()?;
        let exited = own.has_exited();
        Some(OwnAgentView {
            agent: own.agent,
            program: self.own_program.clone(),
            readiness: (!exited).then(|| own.readiness()),
            exit: exited.then_some(ExitStatus {
                code: own.exit_code,
                signal: None,
            }),
            last_line: own.last_line(),
            last_activity: own.last_activity(),
            state: own.agent_state(),
        })
    }

    /// Starts the coordinator's own agent: the core takes it (refused while one runs), then
    /// its terminal is spawned in a job, pumped into the actor as a task's agent's is once the
    /// job reports.
    pub(super) fn start_own(&mut self, start: OwnAgentStart, reply: Reply<AgentId>) {
        let now = self.ports.clock.now();
        let OwnAgentStart {
            spawn,
            profile,
            first_prompt,
        } = start;
        let agent = spawn.agent;
        if let Err(running) = self.core.start_own(now, agent, profile, first_prompt) {
            let _ = reply.send(Err(EngineError::Conflict(running.to_string())));
            return;
        }
        self.own_program = spawn.argv.first().cloned().unwrap_or_default();
        self.core.on_resize(Terminal::Own, spawn.cols, spawn.rows);
        self.cols.insert(Terminal::Own, spawn.cols);
        let (pty, internal) = (self.ports.pty.clone(), self.internal.clone());
        tokio::spawn(async move {
            let spawned = pty.spawn(spawn).await.map_err(|e| e.to_string());
            let _ = internal
                .send(Internal::OwnSpawned(agent, spawned, reply))
                .await;
        });
    }

    /// Ends the coordinator's own agent, if it runs, and forgets it: its viewers let go.
    pub(super) fn stop_own(&mut self) {
        if let Some(agent) = self.core.own().map(|own| own.agent) {
            self.writers.remove(&agent);
        }
        if let Some(agent) = self.core.stop_own() {
            let pty = self.ports.pty.clone();
            tokio::spawn(async move {
                let _ = pty.kill(agent).await;
            });
        }
        self.viewers.remove(&Terminal::Own);
        self.cols.remove(&Terminal::Own);
    }

    /// Carries out a viewer's terminal input in a job, answering once the PTY did it.
    pub(super) fn terminal(&mut self, agent: AgentId, input: TerminalInput, reply: Reply<()>) {
        let terminal = match self.terminal_of(agent) {
            Ok((terminal, _)) => terminal,
            Err(error) => {
                let _ = reply.send(Err(error));
                return;
            }
        };
        if let TerminalInput::Resize { cols, rows } = input {
            self.cols.insert(terminal, cols);
            self.core.on_resize(terminal, cols, rows);
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
                "the terminal of agent {agent} has {TERMINAL_INPUTS_MAX} inputs waiting"
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

    /// Forwards the events of `agent`'s session, the terminal `terminal`, to the actor, in
    /// order, until it ends. Output already waiting behind the first chunk goes along with it,
    /// up to [`OUTPUT_COALESCE_BYTES_MAX`]: the actor's work (and its wake-ups) is per event,
    /// and a busy agent sends many.
    pub(super) fn pump(&self, terminal: Terminal, agent: AgentId, mut session: PtySession) {
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
                if internal
                    .send(Internal::Pty(terminal, agent, event))
                    .await
                    .is_err()
                {
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

    /// The coordinator, its tasks' agents and its own, for the phone's list.
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
                    last_activity: task.terminal.last_activity(),
                    signal_pending: task.signal.is_some_and(|s| !s.consumed),
                    control: task.control,
                })
                .collect(),
            own: self.own_view(),
        }
    }
}

/// What the phone's list shows of an agent (a task's, or the coordinator's own) besides a
/// task's status and exit code: a change of any of these is told to the feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Shown {
    terminal: Terminal,
    agent: AgentId,
    status: Status,
    state: crate::core::state::AgentState,
    signal_pending: bool,
    control: Control,
    /// The last activity, in steps of [`LIST_ACTIVITY_STEP_MS`].
    activity_step: u64,
}

impl Shown {
    fn of_task(task: &Task) -> Self {
        Shown {
            signal_pending: task.signal.is_some_and(|s| !s.consumed),
            control: task.control,
            ..Shown::of(task.id().into(), &task.terminal)
        }
    }

    fn of_own(own: &AgentTerminal) -> Self {
        Shown::of(Terminal::Own, own)
    }

    fn of(terminal: Terminal, entry: &AgentTerminal) -> Self {
        Shown {
            terminal,
            agent: entry.agent,
            status: entry.status,
            state: entry.agent_state().state,
            signal_pending: false,
            control: Control::Coordinator,
            activity_step: entry.last_activity().0 / LIST_ACTIVITY_STEP_MS,
        }
    }
}

fn missing(agent: AgentId) -> EngineError {
    EngineError::Missing(format!("agent not found: {agent}"))
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

/// Whether `task` still shows as `view` (every field compared, none copied).
fn shows(view: &TaskView, task: &Task) -> bool {
    // Taken apart field by field: a field added to the view must be compared here too.
    let TaskView {
        id,
        name,
        branch,
        worktree,
        agent,
        status,
        exit_code,
        signalled_at,
        state,
        policy,
        checks,
    } = view;
    *id == task.spec.id
        && *name == task.spec.name
        && *branch == task.spec.branch
        && *worktree == task.spec.worktree
        && *agent == task.terminal.agent
        && *status == task.terminal.status
        && *exit_code == task.terminal.exit_code
        && *signalled_at == task.signal.map(|s| s.at)
        && *state == task.terminal.agent_state()
        && *policy == task.spec.policy
        && *checks == task.spec.checks
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
        policy: task.spec.policy,
        checks: task.spec.checks.clone(),
    }
}
