//! The actor of one coordinator: the loop, the commands, and the jobs that do slow IO.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::writer::{Input, TERMINAL_INPUTS_MAX, Writer};

use super::{
    AGENT_COLS, AGENT_ROWS, AgentEvent, AgentFeed, AgentView, AgentsView, AppEvent,
    COMMANDS_PENDING_MAX, Command, CoordinatorHandle, CoordinatorSettings, CreateTask, DiffView,
    EngineError, INTERNAL_EVENTS_MAX, LIST_ACTIVITY_STEP_MS, MergeOptions, MergeResult,
    OUTPUT_COALESCE_BYTES_MAX, Ports, Reply, TASK_NAME_CHARS_MAX, TaskView, TerminalInput, Viewer,
    Watched, Watching,
};
use crate::core::branch::{task_branch, validate_branch_name};
use crate::core::coordinator::{
    Control, Coordinator, CoreError, Effect, IdleOutcome, Intent, IntentKind, NewTask,
    PROMPT_BYTES_MAX, Records, Sent, SignalOutcome, Status, TASKS_PER_COORDINATOR_MAX, Task,
    TaskSpec, Typed, Wait, WaiterId, WorktreeFile, WorktreeFileKind, sanitize_prompt,
};
use crate::core::diff::truncate_diff;
use crate::core::ids::{AgentId, BatchId, CoordinatorId, DoneToken, NotificationId, TaskId, Uuid};
use crate::core::notify::Fresh;
use crate::core::replay::RequestId;
use crate::ports::{
    FileMode, JournalError, MergeRequest, PtyEvent, PtySession, RepoError, SpawnSpec,
    WorktreeRequest,
};

/// Starts the actor of coordinator `id`; app events go to `events`, agent events to `feed`.
#[must_use]
pub fn spawn_coordinator(
    ports: Ports,
    id: CoordinatorId,
    settings: CoordinatorSettings,
    events: mpsc::Sender<AppEvent>,
    feed: AgentFeed,
) -> CoordinatorHandle {
    let core = Coordinator::new(id, settings.notification_delay_ms);
    start(ports, core, settings, events, feed)
}

/// Starts the actor of coordinator `id` restored from `records` after a restart.
#[must_use]
pub fn restore_coordinator(
    ports: Ports,
    id: CoordinatorId,
    settings: CoordinatorSettings,
    events: mpsc::Sender<AppEvent>,
    feed: AgentFeed,
    records: Records,
) -> CoordinatorHandle {
    let core = Coordinator::restore(
        id,
        settings.notification_delay_ms,
        ports.clock.now(),
        records,
    );
    start(ports, core, settings, events, feed)
}

fn start(
    ports: Ports,
    core: Coordinator,
    settings: CoordinatorSettings,
    events: mpsc::Sender<AppEvent>,
    feed: AgentFeed,
) -> CoordinatorHandle {
    let id = core.id();
    let (commands, inbox) = mpsc::channel(COMMANDS_PENDING_MAX);
    let (internal, internal_inbox) = mpsc::channel(INTERNAL_EVENTS_MAX);
    let actor = Actor {
        core,
        ports,
        settings,
        events,
        internal,
        idle_replies: BTreeMap::new(),
        signal_replies: BTreeMap::new(),
        creating: 0,
        closing: BTreeMap::new(),
        merging: BTreeMap::new(),
        held_closes: BTreeMap::new(),
        typed_reply: None,
        writers: BTreeMap::new(),
        feed,
        viewers: BTreeMap::new(),
        cols: BTreeMap::new(),
        listed: Vec::new(),
        shown: Vec::new(),
        dirty: false,
        saves: 0,
        saving: false,
        save_waiters: Vec::new(),
    };
    tokio::spawn(actor.run(inbox, internal_inbox));
    CoordinatorHandle { id, commands }
}

/// What jobs and pumps report to the actor.
enum Internal {
    Pty(TaskId, PtyEvent),
    Created(Box<Created>, Reply<TaskView>),
    CreateFailed(TaskId, EngineError, Reply<TaskView>),
    Closed(TaskId, Result<(), String>, Reply<()>),
    Merged(
        TaskId,
        Result<MergeResult, EngineError>,
        bool,
        Reply<MergeResult>,
    ),
    /// A prompt was typed (or a write failed).
    Typed(TaskId, Typed),
    /// A task's agent was started again (with its command line and the files Baton wrote for
    /// it), or could not be.
    Respawned(TaskId, AgentId, Result<Respawned, String>, Reply<TaskView>),
    /// A save ended; its waiters are to be answered.
    Saved(Result<(), JournalError>, Vec<AfterSave>),
}

/// A respawned agent's session, command line and the files Baton wrote for it.
type Respawned = (PtySession, Vec<String>, Vec<WorktreeFile>);

/// A task whose worktree, config and agent exist, to be added.
struct Created {
    new: NewTask,
    session: PtySession,
}

struct Actor {
    core: Coordinator,
    ports: Ports,
    settings: CoordinatorSettings,
    events: mpsc::Sender<AppEvent>,
    internal: mpsc::Sender<Internal>,
    idle_replies: BTreeMap<WaiterId, Reply<IdleOutcome>>,
    signal_replies: BTreeMap<WaiterId, (Reply<SignalOutcome>, Option<RequestId>)>,
    /// Tasks being created (not yet in the core), counted against the task bound.
    creating: usize,
    /// Tasks being closed, with the callers of a close of a task already closing, answered
    /// when it ends (at most [`COMMANDS_PENDING_MAX`] per task: more are refused).
    closing: BTreeMap<TaskId, Vec<Reply<()>>>,
    /// Tasks being merged, with the callers of a merge of a task already being merged
    /// (answered with its result).
    merging: BTreeMap<TaskId, Vec<Reply<MergeResult>>>,
    /// Closes of a task being merged: begun once the merge ends (joining the close a merge with
    /// cleanup begins).
    held_closes: BTreeMap<TaskId, Vec<Reply<()>>>,
    /// The caller of a `send_prompt` typed at once, answered when its prompt is typed.
    typed_reply: Option<(TaskId, Reply<Sent>)>,
    /// Each agent's terminal writer ([`Writer`]), from its first input until it exits.
    writers: BTreeMap<AgentId, Writer>,
    /// Where agent events go.
    feed: AgentFeed,
    /// Who watches each task's terminal.
    viewers: BTreeMap<TaskId, Vec<Viewer>>,
    /// Terminal widths changed from [`AGENT_COLS`] by a resize.
    cols: BTreeMap<TaskId, u16>,
    /// The tasks, statuses and exit codes last told to the feed.
    listed: Vec<(TaskId, Status, Option<i32>)>,
    /// What else the phone's list last showed of each task (see [`Shown`]).
    shown: Vec<Shown>,
    /// Something worth persisting changed since the last save began.
    dirty: bool,
    /// The sequence number of the last save.
    saves: u64,
    /// A save is under way (one at a time: the next one takes whatever changed meanwhile).
    saving: bool,
    /// What waits for the next save to be durable: callers, wait answers, jobs.
    save_waiters: Vec<AfterSave>,
}

/// What waits for a save: it happens once what it depends on is on disk.
enum AfterSave {
    /// A caller of [`Command::Flush`], answered with the save's outcome.
    Reply(Reply<()>),
    /// A `wait_for_signal_done`'s answer: what it consumed is saved before the client hears of
    /// it, so a crash can neither lose a signal told to nobody nor tell it twice. Given back
    /// if the client is gone by then.
    Signal(Reply<SignalOutcome>, Option<RequestId>, SignalOutcome),
    /// A job that begins an operation, started once the operation's intent is saved (a crash
    /// in the middle then finds it), and told the save's outcome: an intent that could not be
    /// saved begins nothing (the job answers its caller with the error and ends the intent).
    Start(Box<dyn FnOnce(Result<(), JournalError>) -> crate::ports::BoxFuture<'static, ()> + Send>),
}

impl Actor {
    async fn run(
        mut self,
        mut inbox: mpsc::Receiver<Command>,
        mut internal: mpsc::Receiver<Internal>,
    ) {
        self.resume().await;
        let mut inbox_open = true;
        let mut turn = false;
        loop {
            let idle = !self.saving && !self.dirty;
            if !inbox_open && self.creating == 0 && self.closing.is_empty() && idle {
                // Every handle is gone and no job of ours is under way: nobody can ask again.
                break;
            }
            self.prune_cancelled_waits().await;
            let now = self.ports.clock.now();
            let deadline = self.core.next_deadline(now);
            let sleep = deadline.map(|at| Duration::from_millis(at.since(now)));
            // Commands and internal events take turns at going first, so neither starves the
            // other; the order is fixed by the turn, never random, so a simulation replays.
            turn = !turn;
            let next = if turn {
                tokio::select! {
                    biased;
                    command = inbox.recv(), if inbox_open => Next::Command(command),
                    Some(event) = internal.recv() => Next::Internal(event),
                    () = sleep_for(sleep) => Next::Tick,
                }
            } else {
                tokio::select! {
                    biased;
                    Some(event) = internal.recv() => Next::Internal(event),
                    command = inbox.recv(), if inbox_open => Next::Command(command),
                    () = sleep_for(sleep) => Next::Tick,
                }
            };
            let ticked = matches!(next, Next::Tick);
            match next {
                Next::Command(Some(command)) => self.command(command).await,
                // A task still being made must be added or rolled back by this actor.
                Next::Command(None) => inbox_open = false,
                Next::Internal(event) => self.internal_event(event).await,
                Next::Tick => {}
            }
            // A deadline that came due while another event went first is acted on now: once
            // past, the core names it no more (a prompt that became stable is no recheck any
            // more), so waiting for the next event would act on it late.
            let now = self.ports.clock.now();
            if ticked || deadline.is_some_and(|at| now >= at) {
                let effects = self.core.tick(now, self.fresh());
                self.apply(effects).await;
            }
            self.tell_list_changes();
            if self.dirty && !self.saving {
                self.save();
            }
        }
    }

    /// Tells the app; every event but a notification's marks the records to be saved.
    async fn tell(&mut self, event: AppEvent) {
        self.dirty |= !matches!(event, AppEvent::Notice(..));
        let _ = self.events.send(event).await;
    }

    /// Saves the records as they are now in a job of its own (a slow disk never holds the
    /// actor); the callers waiting for it are answered when it is durable, or with its error.
    fn save(&mut self) {
        self.dirty = false;
        self.saving = true;
        self.saves += 1;
        let (journal, id, seq) = (self.ports.journal.clone(), self.core.id(), self.saves);
        let records = self.core.records();
        let waiters = std::mem::take(&mut self.save_waiters);
        let internal = self.internal.clone();
        tokio::spawn(async move {
            let result = journal.save(id, seq, records).await;
            match &result {
                Ok(()) => {}
                // A shutdown's last state is written from the actors' records directly.
                Err(JournalError::Stopped) => {
                    tracing::debug!(coordinator = %id, "not saved: stopping");
                }
                Err(error) => {
                    tracing::error!(coordinator = %id, %error, "saving the task records failed");
                }
            }
            let _ = internal.send(Internal::Saved(result, waiters)).await;
        });
    }

    /// Tells the feed when the list of agents changed: a task came or went, or its status or
    /// exit code changed (whatever made it so).
    fn tell_list_changes(&mut self) {
        let mut now = self.core.tasks().map(|t| (t.id, t.status, t.exit_code));
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
                .map(|t| (t.id, t.status, t.exit_code))
                .collect();
            // Viewers of a task that is gone watch nothing more.
            let core = &self.core;
            self.viewers.retain(|task, _| core.task(*task).is_some());
            self.cols.retain(|task, _| core.task(*task).is_some());
            self.feed.send(AgentEvent::ListChanged);
        }
    }

    /// The task whose agent is `agent`.
    fn task_of(&self, agent: AgentId) -> Result<&Task, EngineError> {
        self.core
            .tasks()
            .find(|t| t.agent == agent)
            .ok_or_else(|| EngineError::Missing(format!("agent not found: {agent}")))
    }

    /// Hands output (or the exit) to the task's viewers without waiting: a viewer whose queue
    /// is full is dropped and told so.
    fn fan_out(&mut self, task: TaskId, watched: &Watched) {
        let Some(viewers) = self.viewers.get_mut(&task) else {
            return;
        };
        let overflowed = super::hand_out(viewers, watched);
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
    fn terminal(&mut self, agent: AgentId, input: TerminalInput, reply: Reply<()>) {
        let task = match self.task_of(agent) {
            Ok(task) => task.id,
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
    fn writer(&mut self, agent: AgentId) -> Writer {
        let pty = &self.ports.pty;
        self.writers
            .entry(agent)
            .or_insert_with(|| Writer::start(pty.clone(), agent))
            .clone()
    }

    /// Whether a call about `task` is its own: it presents the task's done token, or (`None`)
    /// it comes from the coordinator itself.
    fn proven(&self, task: TaskId, token: Option<&str>) -> Result<(), EngineError> {
        let entry = self.core.task(task).ok_or(CoreError::TaskNotFound(task))?;
        match token {
            Some(token) if !entry.done_token.as_ref().is_some_and(|d| d.matches(token)) => {
                Err(EngineError::Forbidden)
            }
            _ => Ok(()),
        }
    }

    fn fresh(&self) -> Fresh {
        // One draw for both (each output chunk asks for them).
        let mut bytes = [0; 32];
        self.ports.entropy.fill(&mut bytes);
        let (batch, notification) = bytes.split_at(16);
        let uuid = |half: &[u8]| Uuid::from_random(half.try_into().unwrap_or_default());
        Fresh {
            batch: BatchId(uuid(batch)),
            notification: NotificationId(uuid(notification)),
        }
    }

    /// Waits whose caller went away are withdrawn before anything could answer them, so they
    /// consume nothing.
    async fn prune_cancelled_waits(&mut self) {
        let gone: Vec<WaiterId> = self
            .idle_replies
            .iter()
            .filter(|(_, reply)| reply.is_closed())
            .map(|(id, _)| *id)
            .collect();
        for waiter in gone {
            self.idle_replies.remove(&waiter);
            self.core.cancel_idle_wait(waiter);
        }
        let gone: Vec<WaiterId> = self
            .signal_replies
            .iter()
            .filter(|(_, (reply, _))| reply.is_closed())
            .map(|(id, _)| *id)
            .collect();
        for waiter in gone {
            self.signal_replies.remove(&waiter);
            let now = self.ports.clock.now();
            let effects = self.core.cancel_signal_wait(now, self.fresh(), waiter);
            self.apply(effects).await;
        }
    }

    async fn command(&mut self, command: Command) {
        let now = self.ports.clock.now();
        match command {
            Command::Create(request, reply) => self.create(request, reply),
            Command::List(reply) => {
                let _ = reply.send(self.core.tasks().map(view).collect());
            }
            Command::Status(task, reply) => {
                let _ = reply.send(
                    self.core
                        .task(task)
                        .map(view)
                        .ok_or(CoreError::TaskNotFound(task).into()),
                );
            }
            Command::Explain(task, reply) => {
                let _ = reply.send(
                    self.core
                        .task(task)
                        .map(explain)
                        .ok_or(CoreError::TaskNotFound(task).into()),
                );
            }
            Command::Output(task, reply) => {
                let output = self
                    .core
                    .task(task)
                    .map(Task::output_text)
                    .ok_or(CoreError::TaskNotFound(task).into());
                let _ = reply.send(output);
            }
            Command::SendPrompt(task, prompt, reply) => self.send_prompt(task, prompt, reply).await,
            Command::WaitIdle(task, timeout, reply) => {
                match self.core.wait_for_idle(now, task, timeout) {
                    Ok(Wait::Ready(outcome)) => {
                        let _ = reply.send(Ok(outcome));
                    }
                    Ok(Wait::Blocked { waiter, .. }) => {
                        self.idle_replies.insert(waiter, reply);
                    }
                    Err(error) => {
                        let _ = reply.send(Err(error.into()));
                    }
                }
            }
            Command::WaitSignal(request, timeout, reply) => {
                match self
                    .core
                    .wait_for_signal(now, self.fresh(), request.clone(), timeout)
                {
                    Ok((wait, effects)) => {
                        match wait {
                            Wait::Ready(outcome) => self.answer_when_saved(reply, request, outcome),
                            Wait::Blocked { waiter, .. } => {
                                self.signal_replies.insert(waiter, (reply, request));
                            }
                        }
                        self.apply(effects).await;
                    }
                    Err(error) => {
                        let _ = reply.send(Err(error.into()));
                    }
                }
            }
            Command::SignalDone(task, token, reply) => {
                let result = match self.proven(task, token.as_deref()) {
                    Ok(()) => {
                        let outcome = self.core.signal_done(now, self.fresh(), task);
                        self.applied(outcome).await
                    }
                    refused => refused,
                };
                let _ = reply.send(result);
            }
            Command::SetControl(task, control, reply) => {
                let outcome = self.core.set_control(now, self.fresh(), task, control);
                let _ = reply.send(self.applied(outcome).await);
            }
            Command::Respawn(task, reply) => self.respawn(task, reply),
            Command::CoordinatorMcpConnected(reply) => {
                self.tell(AppEvent::CoordinatorMcpConnected(self.core.id()))
                    .await;
                let _ = reply.send(Ok(()));
            }
            Command::Close(task, reply) => self.close(task, reply).await,
            Command::Diff(task, reply) => self.diff(task, reply),
            Command::Merge(task, options, reply) => self.merge(task, options, reply),
            Command::AckNotification(batch) => self.core.ack_notification(batch),
            Command::GiveBackRequest(request, reply) => {
                let (given, effects) = self.core.give_back_request(now, self.fresh(), &request);
                self.apply(effects).await;
                self.dirty |= given;
                let _ = reply.send(Ok(given));
            }
            Command::GiveBack(outcome, request) => {
                let effects =
                    self.core
                        .signal_undelivered(now, self.fresh(), outcome, request.as_ref());
                self.apply(effects).await;
            }
            Command::DropNotification(batch) => {
                let effects = self.core.drop_notification(batch);
                self.apply(effects).await;
            }
            Command::RescheduleNotifications => self.core.reschedule_notifications(now),
            Command::Remove(task, reply) => {
                let entry = self.core.task(task);
                let config = entry.and_then(|t| t.mcp_config.clone());
                let written = entry.map(|t| (t.worktree_files.clone(), t.worktree.clone()));
                let outcome = self.core.remove_task(now, self.fresh(), task);
                let result = self.applied(outcome).await;
                if result.is_ok() {
                    // The worktree is left to the app, without what Baton put in it.
                    let ports = self.ports.clone();
                    tokio::spawn(async move {
                        if let Some(config) = config {
                            let _ = ports.files.remove(dir_of(&config), &config).await;
                        }
                        if let Some((files, worktree)) = written {
                            let _ = strip_worktree_files(&ports, &files, &worktree).await;
                        }
                    });
                }
                let _ = reply.send(result);
            }
            Command::Records(reply) => {
                let _ = reply.send(self.core.records());
            }
            Command::Flush(reply) => {
                self.save_waiters.push(AfterSave::Reply(reply));
                self.dirty = true;
            }
            Command::McpConnected(task, token, reply) => {
                let result = match self.proven(task, token.as_deref()) {
                    Ok(()) => {
                        let outcome = self.core.mcp_connected(now, self.fresh(), task);
                        self.applied(outcome).await
                    }
                    refused => refused,
                };
                let _ = reply.send(result);
            }
            Command::Hook(task, token, event, notification, reply) => {
                let judged = self.proven(task, Some(&token)).and_then(|()| {
                    let event = event
                        .ok_or_else(|| EngineError::Invalid("event must be a string".to_owned()))?;
                    crate::core::state::hook_state(&event, notification.as_deref()).map_err(|_| {
                        let shown: String = event
                            .chars()
                            .take(crate::core::state::HOOK_NAME_BYTES_MAX)
                            .collect();
                        EngineError::Invalid(format!("unknown hook event {shown:?}"))
                    })
                });
                let result = match judged {
                    Ok(state) => {
                        let outcome = self.core.on_hook(now, self.fresh(), task, state);
                        self.applied(outcome).await
                    }
                    Err(refused) => Err(refused),
                };
                let _ = reply.send(result);
            }
            Command::Deregister(reply) => {
                let effects = self.core.deregister(now);
                self.apply(effects).await;
                let _ = reply.send(());
            }
            Command::Agents(reply) => {
                let _ = reply.send(self.agents_view());
            }
            Command::Scrollback(agent, reply) => {
                let _ = reply.send(self.task_of(agent).map(Task::scrollback));
            }
            Command::Watch(agent, viewer, reply) => {
                let watching = self.task_of(agent).map(|task| {
                    let exited = (task.status == Status::Exited).then_some(task.exit_code);
                    (task.id, task.scrollback(), exited)
                });
                let _ = reply.send(watching.map(|(task, scrollback, exited)| {
                    if exited.is_none() {
                        let viewers = self.viewers.entry(task).or_default();
                        viewers.retain(|v| v.id != viewer.id);
                        viewers.push(viewer);
                    }
                    Watching {
                        scrollback,
                        cols: self.cols.get(&task).copied().unwrap_or(AGENT_COLS),
                        exited,
                    }
                }));
            }
            Command::Unwatch(agent, viewer) => {
                if let Ok(task) = self.task_of(agent).map(|t| t.id) {
                    if let Some(viewers) = self.viewers.get_mut(&task) {
                        viewers.retain(|v| v.id != viewer);
                    }
                    self.viewers.retain(|_, viewers| !viewers.is_empty());
                }
            }
            Command::Terminal(agent, input, reply) => self.terminal(agent, input, reply),
        }
    }

    /// Answers a wait once what its answer changed (a consumed signal, a replay entry) is saved.
    fn answer_when_saved(
        &mut self,
        reply: Reply<SignalOutcome>,
        request: Option<RequestId>,
        outcome: SignalOutcome,
    ) {
        self.save_waiters
            .push(AfterSave::Signal(reply, request, outcome));
        self.dirty = true;
    }

    /// Answers a wait; an answer its caller can no longer take is given back.
    async fn answer_signal(
        &mut self,
        reply: Reply<SignalOutcome>,
        request: Option<RequestId>,
        outcome: SignalOutcome,
    ) {
        if let Err(Ok(outcome)) = reply.send(Ok(outcome)) {
            let now = self.ports.clock.now();
            let effects =
                self.core
                    .signal_undelivered(now, self.fresh(), outcome, request.as_ref());
            self.apply(effects).await;
        }
    }

    /// Starts a task's exited agent again (see [`CoordinatorHandle::respawn`]): checked now,
    /// prepared and spawned in a job, taken in when the job reports. Its command line and MCP
    /// config are made again from the daemon's settings now (its address may have changed
    /// since the task was made: a restart on another port), its instruction block put back if a
    /// merge took it out.
    fn respawn(&mut self, task: TaskId, reply: Reply<TaskView>) {
        let (old_launch, cwd) = match self.core.respawn_spec(task) {
            Ok(spec) => spec,
            Err(error) => {
                let _ = reply.send(Err(error.into()));
                return;
            }
        };
        let Some(entry) = self.core.task(task) else {
            return;
        };
        let agent = AgentId(self.ports.entropy.uuid());
        let known = AgentToPrepare {
            task,
            command: entry.command.clone(),
            args: entry.args.clone(),
            done_token: entry.done_token.clone(),
            worktree: cwd.clone(),
            earlier: entry.worktree_files.clone(),
        };
        let (ports, settings) = (self.ports.clone(), self.settings.clone());
        let cols = self.cols.get(&task).copied().unwrap_or(AGENT_COLS);
        let internal = self.internal.clone();
        tokio::spawn(async move {
            let prepared = if known.command.is_empty() || known.done_token.is_none() {
                // Made before Baton kept what it was asked to run: its old command line.
                let env = old_launch
                    .first()
                    .map(|command| crate::agents::AgentKind::from_command(command).env())
                    .unwrap_or_default();
                Ok((old_launch, env, known.earlier.clone()))
            } else {
                prepare_agent(&ports, &settings, &known)
                    .await
                    .map(|p| (p.launch.argv, p.launch.env, p.worktree_files))
            };
            let spawned = match prepared {
                Ok((argv, env, files)) => {
                    let spec = SpawnSpec {
                        agent,
                        argv: argv.clone(),
                        env,
                        cwd,
                        cols,
                        rows: AGENT_ROWS,
                    };
                    ports
                        .pty
                        .spawn(spec)
                        .await
                        .map(|session| (session, argv, files))
                        .map_err(|error| error.to_string())
                }
                Err(error) => Err(error.to_string()),
            };
            let _ = internal
                .send(Internal::Respawned(task, agent, spawned, reply))
                .await;
        });
    }

    /// Starts `job` once what changed so far (an operation's intent) is saved, with the
    /// save's outcome.
    fn start_after_save<F>(
        &mut self,
        job: impl FnOnce(Result<(), JournalError>) -> F + Send + 'static,
    ) where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.save_waiters
            .push(AfterSave::Start(Box::new(move |saved| {
                Box::pin(job(saved))
            })));
        self.dirty = true;
    }

    /// After a restart: tells the coordinator of the tasks whose agents did not survive, and
    /// carries every operation that was under way to an end (a create rolled back, a merge or a
    /// close carried out again; each of their steps is idempotent). Nobody waits for their
    /// answers: the callers' connections died with the old daemon.
    async fn resume(&mut self) {
        if self.core.lost_untold() > 0 {
            let now = self.ports.clock.now();
            let effects = self.core.report_lost(now, self.fresh());
            self.apply(effects).await;
        }
        if self.core.intents().is_empty() {
            return;
        }
        for intent in self.core.intents().to_vec() {
            tracing::info!(coordinator = %self.core.id(), task = %intent.task(), ?intent, "resuming an operation a restart interrupted");
            match intent {
                Intent::Create {
                    task,
                    worktree,
                    branch,
                    config,
                } => {
                    // Undone before the coordinator hears anything: nothing it lists or makes
                    // can meet the half-made task.
                    let root = self.settings.project_root.clone();
                    remove_leftovers(&self.ports, root, worktree, branch, Some(config)).await;
                    self.core.end_intent(task, IntentKind::Create);
                }
                Intent::Merge {
                    task,
                    squash,
                    message,
                    cleanup,
                } => {
                    let options = MergeOptions {
                        squash,
                        message,
                        cleanup,
                    };
                    if self.core.task(task).is_some() {
                        self.merge(task, options, oneshot::channel().0);
                    } else {
                        self.core.end_intent(task, IntentKind::Merge);
                    }
                }
                Intent::Close { task } => {
                    if self.core.task(task).is_some() {
                        self.close(task, oneshot::channel().0).await;
                    } else {
                        self.core.end_intent(task, IntentKind::Close);
                    }
                }
            }
        }
        self.dirty = true;
    }

    fn create(&mut self, request: CreateTask, reply: Reply<TaskView>) {
        let name = request.name.trim().to_owned();
        let prompt = request.prompt.as_deref().map(sanitize_prompt);
        let invalid = |message: String| Err(EngineError::Invalid(message));
        let checked = if request.name.chars().count() > TASK_NAME_CHARS_MAX {
            invalid(format!(
                "name must be {TASK_NAME_CHARS_MAX} characters or fewer"
            ))
        } else if name.is_empty() {
            invalid("name must be a non-empty string".to_owned())
        } else if let Some(hidden) = crate::core::text::hidden_in(&request.name) {
            invalid(format!(
                "name must not hold control or format characters (it holds U+{:04X}): a bidi \
                 override or a zero-width character can make a name read as another",
                u32::from(hidden)
            ))
        } else if prompt.as_ref().is_some_and(|p| p.len() > PROMPT_BYTES_MAX) {
            invalid(format!("prompt must be {PROMPT_BYTES_MAX} bytes or fewer"))
        } else if prompt.as_ref().is_some_and(|p| p.trim().is_empty()) {
            invalid("prompt must be a non-empty string".to_owned())
        } else if let Some(Err(error)) = request
            .base_branch
            .as_deref()
            .map(|b| validate_branch_name(b, "baseBranch"))
        {
            invalid(error.to_string())
        } else if !self.core.is_registered() {
            Err(CoreError::CoordinatorNotFound(self.core.id()).into())
        } else if self.core.tasks().count() + self.creating >= TASKS_PER_COORDINATOR_MAX {
            Err(CoreError::TooManyTasks.into())
        } else {
            Ok(())
        };
        if let Err(error) = checked {
            let _ = reply.send(Err(error));
            return;
        }
        self.creating += 1;
        let entropy = &*self.ports.entropy;
        let id = TaskId(entropy.uuid());
        let job = CreateJob {
            ports: self.ports.clone(),
            settings: self.settings.clone(),
            id,
            agent: AgentId(entropy.uuid()),
            branch: task_branch(&name, id),
            name,
            base_branch: request.base_branch,
            // The sub-task learns what it is, then what to do.
            prompt: prompt.as_deref().map(crate::agents::prompts::sub_task),
            done_token: entropy.done_token(),
            command: request
                .agent_command
                .unwrap_or_else(|| self.settings.spawn.command.clone()),
            args: request
                .agent_args
                .unwrap_or_else(|| self.settings.spawn.args.clone()),
        };
        self.core.begin_intent(Intent::Create {
            task: id,
            worktree: job.worktree(),
            branch: job.branch.clone(),
            config: job.config(),
        });
        let internal = self.internal.clone();
        self.start_after_save(move |saved| async move {
            if let Err(error) = saved {
                let _ = internal
                    .send(Internal::CreateFailed(id, not_begun(&error), reply))
                    .await;
                return;
            }
            crate::kill_point!("create.intent_saved");
            let event = match job.run().await {
                Ok(created) => Internal::Created(Box::new(created), reply),
                Err(error) => Internal::CreateFailed(id, error, reply),
            };
            let _ = internal.send(event).await;
        });
    }

    async fn internal_event(&mut self, event: Internal) {
        let now = self.ports.clock.now();
        match event {
            Internal::Pty(task, PtyEvent::Output(bytes)) => {
                let effects = self.core.on_output(now, self.fresh(), task, &bytes);
                if let Some(agent) = self.core.task(task).map(|t| t.agent) {
                    self.fan_out(task, &Watched::Output(agent, bytes.into()));
                }
                self.apply(effects).await;
            }
            Internal::Pty(task, PtyEvent::Exited(status)) => {
                let effects = self.core.on_exit(now, self.fresh(), task, status.code);
                if let Some(agent) = self.core.task(task).map(|t| t.agent) {
                    self.fan_out(task, &Watched::Exited(agent, status.code));
                    self.viewers.remove(&task);
                    self.writers.remove(&agent);
                    self.feed.send(AgentEvent::Exited {
                        agent,
                        code: status.code,
                    });
                }
                self.apply(effects).await;
            }
            Internal::Respawned(task, _, Err(error), reply) => {
                tracing::warn!(%task, %error, "the agent could not start again");
                let _ = reply.send(Err(EngineError::Io(format!(
                    "the agent of task {task} could not start: {error}"
                ))));
            }
            Internal::Respawned(task, agent, Ok((session, launch, files)), reply) => {
                let respawned = self
                    .core
                    .respawned(now, self.fresh(), task, agent, launch, files);
                let effects = match respawned {
                    Ok(effects) => effects,
                    Err(error) => {
                        // Closed, or started by another request, while this one spawned.
                        let pty = self.ports.pty.clone();
                        tokio::spawn(async move {
                            let _ = pty.kill(agent).await;
                        });
                        let _ = reply.send(Err(error.into()));
                        return;
                    }
                };
                self.pump(task, session);
                self.apply(effects).await;
                self.feed.send(AgentEvent::ListChanged);
                if let Some(view) = self.core.task(task).map(view) {
                    let _ = reply.send(Ok(view));
                }
            }
            Internal::CreateFailed(task, error, reply) => {
                self.creating -= 1;
                self.core.end_intent(task, IntentKind::Create);
                self.dirty = true;
                let _ = reply.send(Err(error));
            }
            Internal::Created(created, reply) => {
                self.creating -= 1;
                let Created { new, session } = *created;
                let (id, agent) = (new.spec.id, new.spec.agent);
                let leftovers = (
                    new.spec.worktree.clone(),
                    new.spec.branch.clone(),
                    new.spec.mcp_config.clone(),
                );
                self.core.end_intent(id, IntentKind::Create);
                self.dirty = true;
                if let Err(error) = self.core.add_task(now, new) {
                    // The coordinator left (or filled up) while the task was being made.
                    let ports = self.ports.clone();
                    let root = self.settings.project_root.clone();
                    tokio::spawn(async move {
                        let _ = ports.pty.kill(agent).await;
                        let (worktree, branch, config) = leftovers;
                        remove_leftovers(&ports, root, worktree, branch, config).await;
                    });
                    let _ = reply.send(Err(error.into()));
                    return;
                }
                self.pump(id, session);
                if let Some(task) = self.core.task(id).map(view) {
                    let coordinator = self.core.id();
                    self.tell(AppEvent::TaskCreated {
                        coordinator,
                        task: task.clone(),
                    })
                    .await;
                    let _ = reply.send(Ok(task));
                }
            }
            Internal::Closed(task, result, reply) => {
                for joiner in self.closing.remove(&task).unwrap_or_default() {
                    let answer = result
                        .clone()
                        .map_err(|error| EngineError::Io(format!("cleanup failed: {error}")));
                    let _ = joiner.send(answer);
                }
                self.core.end_intent(task, IntentKind::Close);
                self.dirty = true;
                match result {
                    Ok(()) => {
                        let effects = self.core.finish_close(now, self.fresh(), task);
                        self.apply(effects).await;
                        self.tell(AppEvent::TaskClosed(task)).await;
                        let _ = reply.send(Ok(()));
                    }
                    Err(error) => {
                        let effects = self.core.close_failed(now, self.fresh(), task);
                        self.apply(effects).await;
                        self.tell(AppEvent::CleanupFailed {
                            task,
                            error: error.clone(),
                        })
                        .await;
                        let _ =
                            reply.send(Err(EngineError::Io(format!("cleanup failed: {error}"))));
                    }
                }
            }
            Internal::Merged(task, Ok(merged), true, reply) => {
                // Ended with the close's intent begun in the same step: one save holds both.
                self.core.end_intent(task, IntentKind::Merge);
                for joiner in self.merging.remove(&task).unwrap_or_default() {
                    let _ = joiner.send(Ok(merged.clone()));
                }
                self.tell(AppEvent::Merged {
                    task,
                    merge: merged.clone(),
                })
                .await;
                let (closed, done) = oneshot::channel();
                self.close(task, closed).await;
                // Closes asked for meanwhile hear how this one ends.
                let held = self.held_closes.remove(&task).unwrap_or_default();
                self.closing.entry(task).or_default().extend(held);
                tokio::spawn(async move {
                    let result = match done.await {
                        Ok(Ok(())) => Ok(merged),
                        Ok(Err(error)) => Err(EngineError::Io(format!("merged, but {error}"))),
                        Err(_) => Err(EngineError::Unavailable),
                    };
                    let _ = reply.send(result);
                });
            }
            Internal::Merged(task, result, _, reply) => {
                self.core.end_intent(task, IntentKind::Merge);
                self.dirty = true;
                for joiner in self.merging.remove(&task).unwrap_or_default() {
                    let _ = joiner.send(result.clone());
                }
                if let Ok(merged) = &result {
                    self.tell(AppEvent::Merged {
                        task,
                        merge: merged.clone(),
                    })
                    .await;
                }
                let _ = reply.send(result);
                // Closes asked for during the merge begin now.
                for held in self.held_closes.remove(&task).unwrap_or_default() {
                    self.close(task, held).await;
                }
            }
            Internal::Saved(result, waiters) => {
                self.saving = false;
                crate::kill_point!("engine.saved");
                for waiter in waiters {
                    match waiter {
                        AfterSave::Reply(reply) => {
                            let answer = result.clone().map_err(|error| {
                                EngineError::Io(format!(
                                    "done, but not persisted (a restart would not know of it): \
                                     {error}"
                                ))
                            });
                            let _ = reply.send(answer);
                        }
                        // Told even when the save failed: the disk's failure is logged, and a
                        // wait held back for ever would be worse.
                        AfterSave::Signal(reply, request, outcome) => {
                            self.answer_signal(reply, request, outcome).await;
                        }
                        AfterSave::Start(job) => {
                            tokio::spawn(job(result.clone()));
                        }
                    }
                }
            }
            Internal::Typed(task, typed) => {
                let effects = self.core.prompt_typed(now, self.fresh(), task, typed);
                self.apply(effects).await;
            }
        }
    }

    /// Forwards a session's events to the actor, in order, until it ends. Output already
    /// waiting behind the first chunk goes along with it, up to [`OUTPUT_COALESCE_BYTES_MAX`]:
    /// the actor's work (and its wake-ups) is per event, and a busy agent sends many.
    fn pump(&self, task: TaskId, mut session: PtySession) {
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

    async fn send_prompt(&mut self, task: TaskId, prompt: String, reply: Reply<Sent>) {
        let now = self.ports.clock.now();
        match self.core.send_prompt(now, task, prompt) {
            Ok((Sent::Queued, effects)) => {
                self.apply(effects).await;
                let _ = reply.send(Ok(Sent::Queued));
            }
            Ok((Sent::Typed, effects)) => {
                // The caller hears once the prompt is typed (or that typing failed).
                self.typed_reply = Some((task, reply));
                self.apply(effects).await;
            }
            Err(error) => {
                let _ = reply.send(Err(error.into()));
            }
        }
    }

    /// Types `text` (wrapped for bracketed paste if asked), waits, presses Enter: in a job, so
    /// the actor goes on meanwhile.
    fn type_prompt(
        &mut self,
        task: TaskId,
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
                true => typed.await.unwrap_or(Err(super::TypingFailed::Gone)),
                false => Err(super::TypingFailed::Gone),
            };
            let (outcome, result) = match typed {
                Ok(()) => (Typed::Done, Ok(())),
                Err(super::TypingFailed::Text(error)) => {
                    (Typed::TextFailed(text), Err(error.to_string()))
                }
                Err(super::TypingFailed::Gone) => (
                    Typed::TextFailed(text),
                    Err(format!(
                        "the agent's terminal has {TERMINAL_INPUTS_MAX} inputs waiting"
                    )),
                ),
                Err(super::TypingFailed::Enter(error)) => {
                    (Typed::EnterFailed, Err(error.to_string()))
                }
            };
            let _ = internal.send(Internal::Typed(task, outcome)).await;
            if let Some(reply) = reply {
                let _ = reply.send(result.map(|()| Sent::Typed).map_err(EngineError::Io));
            }
        });
    }

    fn diff(&self, task: TaskId, reply: Reply<DiffView>) {
        let Some(entry) = self.core.task(task) else {
            let _ = reply.send(Err(CoreError::TaskNotFound(task).into()));
            return;
        };
        let (worktree, base) = (entry.worktree.clone(), entry.base_branch.clone());
        let written = entry.worktree_files.clone();
        let ports = self.ports.clone();
        let root = self.settings.project_root.clone();
        tokio::spawn(async move {
            // The coordinator never sees what Baton wrote into the worktree: the diff is of the
            // worktree as it will be merged, with it taken out.
            let mut overlay = Vec::new();
            for file in &written {
                overlay.extend(stripped(&ports, file, &worktree).await);
            }
            let result = async {
                let base = match base {
                    Some(base) => base,
                    None => ports.repo.main_branch(root).await?,
                };
                ports.repo.diff(worktree, base, overlay).await
            }
            .await
            .map(|diff| {
                let cut = truncate_diff(&diff.text);
                DiffView {
                    files: diff.files,
                    text: cut.text,
                    truncated: cut.truncated,
                    original_bytes: cut.original_bytes,
                }
            })
            .map_err(|error| EngineError::Io(error.to_string()));
            let _ = reply.send(result);
        });
    }

    fn merge(&mut self, task: TaskId, options: MergeOptions, reply: Reply<MergeResult>) {
        if let Err(error) = self.core.check_merge(task) {
            let _ = reply.send(Err(error.into()));
            return;
        }
        if self.closing.contains_key(&task) {
            let _ = reply.send(Err(EngineError::Conflict(format!(
                "Task {task} is closing"
            ))));
            return;
        }
        if let Some(joiners) = self.merging.get_mut(&task) {
            // A retry (after a lost answer, or a restart that resumed the merge) hears how the
            // merge under way ends.
            if joiners.len() >= super::COMMANDS_PENDING_MAX {
                let _ = reply.send(Err(EngineError::Conflict(format!(
                    "Task {task} is being merged"
                ))));
            } else {
                joiners.push(reply);
            }
            return;
        }
        let Some(entry) = self.core.task(task) else {
            return;
        };
        let (worktree, branch, base) = (
            entry.worktree.clone(),
            entry.branch.clone(),
            entry.base_branch.clone(),
        );
        let written = entry.worktree_files.clone();
        let ports = self.ports.clone();
        let root = self.settings.project_root.clone();
        let internal = self.internal.clone();
        self.merging.insert(task, Vec::new());
        self.core.begin_intent(Intent::Merge {
            task,
            squash: options.squash,
            message: options.message.clone(),
            cleanup: options.cleanup,
        });
        self.start_after_save(move |saved| async move {
            let cleanup = options.cleanup;
            if let Err(error) = saved {
                let failed = Internal::Merged(task, Err(not_begun(&error)), cleanup, reply);
                let _ = internal.send(failed).await;
                return;
            }
            crate::kill_point!("merge.intent_saved");
            // What Baton wrote goes before the auto-commit, so the merge never carries it.
            if let Err(error) = strip_worktree_files(&ports, &written, &worktree).await {
                let failed = Internal::Merged(task, Err(error), cleanup, reply);
                let _ = internal.send(failed).await;
                return;
            }
            crate::kill_point!("merge.stripped");
            let result = async {
                ports
                    .repo
                    .commit_all(worktree, "WIP: auto-commit before merge".into())
                    .await?;
                crate::kill_point!("merge.committed");
                let target = match base {
                    Some(base) => base,
                    None => ports.repo.main_branch(root.clone()).await?,
                };
                let request = MergeRequest {
                    root: root.clone(),
                    branch,
                    target,
                    squash: options.squash,
                    message: options.message,
                };
                let merged = ports.repo.merge(request).await;
                crate::kill_point!("merge.merged");
                merged
            }
            .await
            .map(|outcome| MergeResult {
                target: outcome.target,
                added: outcome.added,
                removed: outcome.removed,
            })
            .map_err(|error| match error {
                RepoError::Conflict(_) | RepoError::Dirty => {
                    EngineError::Conflict(error.to_string())
                }
                other => EngineError::Io(other.to_string()),
            });
            let _ = internal
                .send(Internal::Merged(task, result, cleanup, reply))
                .await;
        });
    }

    async fn close(&mut self, task: TaskId, reply: Reply<()>) {
        let Some(entry) = self.core.task(task) else {
            let _ = reply.send(Err(CoreError::TaskNotFound(task).into()));
            return;
        };
        if self.merging.contains_key(&task) {
            // Its worktree is being committed and merged: the close waits for that to end.
            let held = self.held_closes.entry(task).or_default();
            if held.len() >= super::COMMANDS_PENDING_MAX {
                let _ = reply.send(Err(EngineError::Conflict(format!(
                    "Task {task} is being merged"
                ))));
            } else {
                held.push(reply);
            }
            return;
        }
        if let Some(joiners) = self.closing.get_mut(&task) {
            // A retry (after a lost answer, or a restart that resumed the close) hears how the
            // close under way ends.
            if joiners.len() >= super::COMMANDS_PENDING_MAX {
                let _ = reply.send(Err(EngineError::Invalid(format!(
                    "Task {task} is already closing"
                ))));
            } else {
                joiners.push(reply);
            }
            return;
        }
        let (agent, worktree, branch, config) = (
            entry.agent,
            entry.worktree.clone(),
            entry.branch.clone(),
            entry.mcp_config.clone(),
        );
        let now = self.ports.clock.now();
        if let Ok(effects) = self.core.begin_close(now, self.fresh(), task) {
            self.apply(effects).await;
        }
        self.closing.insert(task, Vec::new());
        self.core.begin_intent(Intent::Close { task });
        let ports = self.ports.clone();
        let root = self.settings.project_root.clone();
        let internal = self.internal.clone();
        self.start_after_save(move |saved| async move {
            if let Err(error) = saved {
                let failed = Internal::Closed(task, Err(not_begun(&error).to_string()), reply);
                let _ = internal.send(failed).await;
                return;
            }
            crate::kill_point!("close.intent_saved");
            // Ordered: the agent first (it must not write into a worktree being removed), then
            // the worktree and branch, then the config holding its token.
            let _ = ports.pty.kill(agent).await;
            crate::kill_point!("close.agent_killed");
            let result = async {
                ports
                    .repo
                    .remove_worktree(root, worktree, branch)
                    .await
                    .map_err(|e| e.to_string())?;
                crate::kill_point!("close.worktree_removed");
                if let Some(config) = config {
                    ports
                        .files
                        .remove(dir_of(&config), &config)
                        .await
                        .map_err(|e| e.to_string())?;
                    crate::kill_point!("close.config_removed");
                }
                Ok(())
            }
            .await;
            let _ = internal.send(Internal::Closed(task, result, reply)).await;
        });
    }

    /// Carries out the effects of a core operation that succeeded; its error, for the caller's
    /// answer, otherwise.
    async fn applied(
        &mut self,
        outcome: Result<Vec<Effect>, CoreError>,
    ) -> Result<(), EngineError> {
        self.apply(outcome?).await;
        Ok(())
    }

    /// Carries out the core's effects, in order.
    async fn apply(&mut self, effects: Vec<Effect>) {
        let mut queue: VecDeque<Effect> = effects.into();
        while let Some(effect) = queue.pop_front() {
            let coordinator = self.core.id();
            match effect {
                Effect::Notice(notice) => {
                    self.tell(AppEvent::Notice(coordinator, notice)).await;
                }
                Effect::State(task, change) => {
                    if let crate::core::coordinator::StateChange::Agent(verdict) = &change {
                        match verdict.disagreement {
                            Some((other, says)) => tracing::info!(
                                %task, state = %verdict.state, source = verdict.source.name(),
                                disagreeing = other.name(), says = %says,
                                "agent state: the sources disagree; the newest wins"
                            ),
                            None => tracing::debug!(
                                %task, state = %verdict.state, source = verdict.source.name(),
                                "agent state"
                            ),
                        }
                    }
                    self.tell(AppEvent::State(task, change)).await;
                }
                Effect::Orphaned { task, text } => {
                    self.tell(AppEvent::Orphaned { task, text }).await;
                }
                Effect::Idle { waiter, outcome } => {
                    if let Some(reply) = self.idle_replies.remove(&waiter) {
                        let _ = reply.send(Ok(outcome));
                    }
                }
                Effect::Signal { waiter, outcome } => {
                    if let Some((reply, request)) = self.signal_replies.remove(&waiter) {
                        self.answer_when_saved(reply, request, outcome);
                    }
                }
                Effect::Type {
                    task,
                    agent,
                    text,
                    bracketed,
                } => {
                    let reply = match self.typed_reply.take() {
                        Some((for_task, reply)) if for_task == task => Some(reply),
                        other => {
                            self.typed_reply = other;
                            None
                        }
                    };
                    self.type_prompt(task, agent, text, bracketed, reply);
                }
                Effect::Write { agent, bytes } => {
                    if self
                        .writer(agent)
                        .queue(Input::Write(bytes.to_vec(), None))
                        .is_err()
                    {
                        tracing::warn!(%agent, "an answer to the agent's terminal was dropped: its input queue is full");
                    }
                }
            }
        }
    }
}

/// The error of an operation whose intent could not be saved: nothing of it was begun.
fn not_begun(error: &JournalError) -> EngineError {
    EngineError::Io(format!(
        "nothing was done: the task's record could not be saved ({error})"
    ))
}

/// What the actor's loop takes next.
enum Next {
    /// A command, or `None` once every handle is gone.
    Command(Option<Command>),
    /// A job's result or an agent's PTY event.
    Internal(Internal),
    /// The core's next deadline came.
    Tick,
}

async fn sleep_for(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}

/// What the phone's list shows of a task besides its status and exit code: a change of any of
/// these is told to the feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shown {
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
            task: task.id,
            state: task.agent_state().state,
            signal_pending: task.signal.is_some_and(|s| !s.consumed),
            control: task.control,
            activity_step: task.detector.last_activity().0 / LIST_ACTIVITY_STEP_MS,
        }
    }
}

impl Actor {
    /// The coordinator and its tasks' agents, for the phone's list.
    fn agents_view(&self) -> AgentsView {
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
                    last_line: task.last_line(),
                    state: task.agent_state(),
                    last_activity: task.detector.last_activity(),
                    signal_pending: task.signal.is_some_and(|s| !s.consumed),
                    control: task.control,
                })
                .collect(),
        }
    }
}

fn explain(task: &Task) -> crate::engine::Explanation {
    let text = task.screen_text();
    let mut screen: Vec<String> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.trim_end().to_owned())
        .collect();
    let skip = screen
        .len()
        .saturating_sub(crate::engine::EXPLAIN_SCREEN_LINES);
    screen.drain(..skip);
    crate::engine::Explanation {
        task: view(task),
        evidence: *task.evidence(),
        readiness: task.readiness(),
        last_activity: task.last_activity(),
        screen,
    }
}

fn view(task: &Task) -> TaskView {
    TaskView {
        id: task.id,
        name: task.name.clone(),
        branch: task.branch.clone(),
        worktree: task.worktree.clone(),
        agent: task.agent,
        status: task.status,
        exit_code: task.exit_code,
        state: task.agent_state(),
        signalled_at: task.signal.map(|s| s.at),
    }
}

/// Making a task: worktree, config, agent; each step undone if a later one fails.
struct CreateJob {
    ports: Ports,
    settings: CoordinatorSettings,
    id: TaskId,
    agent: AgentId,
    name: String,
    branch: String,
    base_branch: Option<String>,
    prompt: Option<String>,
    done_token: DoneToken,
    command: String,
    args: Vec<String>,
}

impl CreateJob {
    /// The worktree it makes.
    fn worktree(&self) -> PathBuf {
        self.settings
            .project_root
            .join(crate::core::branch::WORKTREES_DIR)
            .join(&self.branch)
    }

    /// The MCP config file it writes.
    fn config(&self) -> PathBuf {
        config_path(&self.settings, self.id)
    }

    async fn run(self) -> Result<Created, EngineError> {
        let root = self.settings.project_root.clone();
        let worktree = self.worktree();
        let request = WorktreeRequest {
            root: root.clone(),
            branch: self.branch.clone(),
            path: worktree.clone(),
            base: self.base_branch.clone(),
        };
        self.ports
            .repo
            .create_worktree(request)
            .await
            .map_err(|e| match e {
                // The caller named a branch that is not there: its request is wrong.
                RepoError::NoSuchBranch(_) => EngineError::Missing(e.to_string()),
                RepoError::Link { .. } => EngineError::Conflict(e.to_string()),
                RepoError::NotABranch(_) => EngineError::Invalid(e.to_string()),
                other => EngineError::Io(other.to_string()),
            })?;
        crate::kill_point!("create.worktree_added");
        let known = AgentToPrepare {
            task: self.id,
            command: self.command.clone(),
            args: self.args.clone(),
            done_token: Some(self.done_token.clone()),
            worktree: worktree.clone(),
            earlier: Vec::new(),
        };
        let config = self.config();
        let prepared = match prepare_agent(&self.ports, &self.settings, &known).await {
            Ok(prepared) => prepared,
            Err(error) => {
                remove_leftovers(&self.ports, root, worktree, self.branch, Some(config)).await;
                return Err(error);
            }
        };
        let spec = SpawnSpec {
            agent: self.agent,
            argv: prepared.launch.argv.clone(),
            env: prepared.launch.env.clone(),
            cwd: worktree.clone(),
            cols: AGENT_COLS,
            rows: AGENT_ROWS,
        };
        let session = match self.ports.pty.spawn(spec).await {
            Ok(session) => session,
            Err(error) => {
                remove_leftovers(&self.ports, root, worktree, self.branch, Some(config)).await;
                return Err(EngineError::Io(error.to_string()));
            }
        };
        crate::kill_point!("create.agent_spawned");
        let new = NewTask {
            spec: TaskSpec {
                id: self.id,
                name: self.name,
                branch: self.branch,
                base_branch: self.base_branch,
                worktree,
                agent: self.agent,
                profile: prepared.launch.profile,
                done_token: Some(self.done_token),
                mcp_config: Some(config),
                worktree_files: prepared.worktree_files,
                launch: prepared.launch.argv,
                command: self.command,
                args: self.args,
            },
            assignment: self.prompt,
        };
        Ok(Created { new, session })
    }
}

/// A task's MCP config file.
fn config_path(settings: &CoordinatorSettings, task: TaskId) -> PathBuf {
    settings
        .config_dir
        .join(format!("baton-subtask-{task}.json"))
}

/// What is needed to prepare a task's agent: the task, what it was asked to run, its worktree,
/// and the files Baton wrote there before (a respawn's).
struct AgentToPrepare {
    task: TaskId,
    command: String,
    args: Vec<String>,
    done_token: Option<DoneToken>,
    worktree: PathBuf,
    earlier: Vec<WorktreeFile>,
}

/// What a task's agent starts with: the files Baton wrote for it and its command line.
struct Prepared {
    worktree_files: Vec<WorktreeFile>,
    launch: crate::agents::Launch,
}

/// Puts in place what a task's agent needs before it starts, from the daemon's settings as they
/// are now: the instruction block in its worktree (if its agent reads one and it is not there),
/// its MCP config (the daemon's current address, its done token), Gemini's settings, and its
/// command line. The same for a new task and a respawn; a respawn keeps what each file held
/// before Baton first wrote it.
async fn prepare_agent(
    ports: &Ports,
    settings: &CoordinatorSettings,
    known: &AgentToPrepare,
) -> Result<Prepared, EngineError> {
    let worktree = &known.worktree;
    let earlier = |kind: WorktreeFileKind| known.earlier.iter().find(|f| f.kind == kind);
    let mut worktree_files: Vec<WorktreeFile> = Vec::new();
    match inject_preamble(ports, &known.command, worktree).await? {
        Some(mut written) => {
            if let Some(before) = earlier(WorktreeFileKind::Instructions) {
                written.original.clone_from(&before.original);
            }
            worktree_files.push(written);
        }
        None => worktree_files.extend(earlier(WorktreeFileKind::Instructions).cloned()),
    }
    crate::kill_point!("create.preamble_written");
    worktree_files.extend(earlier(WorktreeFileKind::ClaudeSettings).cloned());
    let config = config_path(settings, known.task);
    let token = known
        .done_token
        .as_ref()
        .map(DoneToken::expose)
        .unwrap_or_default();
    let server = crate::agents::McpServer::sub_task(&settings.mcp, known.task, token);
    let contents = serde_json::to_string_pretty(&server.config()).unwrap_or_default();
    ports
        .files
        .write_atomic(
            &settings.config_dir,
            &config,
            contents.as_bytes(),
            FileMode::OwnerOnly,
        )
        .await
        .map_err(files_error)?;
    crate::kill_point!("create.config_written");
    if crate::agents::AgentKind::from_command(&known.command) == crate::agents::AgentKind::Gemini {
        let mut written = write_gemini_settings(ports, &server, &config, worktree).await?;
        if let Some(before) = earlier(WorktreeFileKind::McpSettings) {
            written.original.clone_from(&before.original);
        }
        worktree_files.push(written);
        crate::kill_point!("create.gemini_written");
    }
    let launch = crate::agents::launch(
        &known.command,
        &known.args,
        settings.skip_permissions,
        &server,
        &config,
    );
    Ok(Prepared {
        worktree_files,
        launch,
    })
}

/// Puts the sub-task instruction block into the instruction file of `command`'s agent in
/// `worktree`: `None` when its agent reads no such file (Claude Code gets the block on its
/// command line) or the file already holds a block (from its branch), else what to take out
/// before a merge.
async fn inject_preamble(
    ports: &Ports,
    command: &str,
    worktree: &std::path::Path,
) -> Result<Option<WorktreeFile>, EngineError> {
    use crate::agents::preamble::Target;
    let target = Target::of(crate::agents::AgentKind::from_command(command));
    let Some(file) = target.file() else {
        return Ok(None);
    };
    let path = worktree.join(file);
    let original = ports
        .files
        .read(worktree, &path)
        .await
        .map_err(files_error)?;
    let Some(written) = target.inject(original.as_deref()) else {
        return Ok(None);
    };
    ports
        .files
        .write_atomic(worktree, &path, &written, FileMode::Default)
        .await
        .map_err(files_error)?;
    Ok(Some(WorktreeFile {
        path,
        original,
        written,
        kind: WorktreeFileKind::Instructions,
    }))
}

/// Names Baton's server in the worktree's Gemini settings (Gemini reads its MCP servers there).
async fn write_gemini_settings(
    ports: &Ports,
    server: &crate::agents::McpServer,
    config: &std::path::Path,
    worktree: &std::path::Path,
) -> Result<WorktreeFile, EngineError> {
    let path = worktree.join(crate::agents::GEMINI_SETTINGS);
    let original = ports
        .files
        .read(worktree, &path)
        .await
        .map_err(files_error)?;
    let written = crate::agents::gemini_settings(original.as_deref(), server, config)
        .map_err(|error| EngineError::Invalid(error.to_string()))?;
    ports
        .files
        .write_atomic(worktree, &path, &written, FileMode::Default)
        .await
        .map_err(files_error)?;
    Ok(WorktreeFile {
        path,
        original,
        written,
        kind: WorktreeFileKind::McpSettings,
    })
}

/// A file Baton wrote into a worktree as a merge would take it, relative to `worktree`, with
/// its content then (`None`: no file); `None` when the strip would leave the file as it is.
async fn stripped(
    ports: &Ports,
    file: &WorktreeFile,
    worktree: &std::path::Path,
) -> Option<(String, Option<Vec<u8>>)> {
    use crate::agents::preamble::{Strip, strip_worktree_file};
    let current = ports.files.read(worktree, &file.path).await.ok()??;
    let rel = file.path.strip_prefix(worktree).ok()?.to_str()?.to_owned();
    match strip_worktree_file(file.kind, &current, &file.written, file.original.as_deref()) {
        Strip::Keep => None,
        Strip::Write(bytes) => Some((rel, Some(bytes))),
        Strip::Remove => Some((rel, None)),
    }
}

/// Takes what Baton wrote out of `worktree` (before its branch is merged).
async fn strip_worktree_files(
    ports: &Ports,
    files: &[WorktreeFile],
    worktree: &std::path::Path,
) -> Result<(), EngineError> {
    for file in files {
        match stripped(ports, file, worktree).await {
            None => {}
            Some((_, Some(bytes))) => ports
                .files
                .write_atomic(worktree, &file.path, &bytes, FileMode::Default)
                .await
                .map_err(files_error)?,
            Some((_, None)) => {
                ports
                    .files
                    .remove(worktree, &file.path)
                    .await
                    .map_err(files_error)?;
            }
        }
    }
    Ok(())
}

/// Removes what a half-made task left: worktree and branch, config file.
async fn remove_leftovers(
    ports: &Ports,
    root: PathBuf,
    worktree: PathBuf,
    branch: String,
    config: Option<PathBuf>,
) {
    if let Err(error) = ports.repo.remove_worktree(root, worktree, branch).await {
        tracing::warn!(%error, "a half-made task's worktree or branch could not be removed");
    }
    if let Some(config) = config
        && let Err(error) = ports.files.remove(dir_of(&config), &config).await
    {
        tracing::warn!(%error, "a half-made task's config could not be removed");
    }
}

/// The directory a config file is kept in (confined there: the file itself is no link).
fn dir_of(path: &std::path::Path) -> &std::path::Path {
    path.parent().unwrap_or(std::path::Path::new("/"))
}

/// A file operation's failure as the engine reports it: a file refused for confinement (a
/// symbolic link the repository committed, say) is the request's conflict with the repository,
/// not a failure of the disk.
fn files_error(error: crate::ports::FilesError) -> EngineError {
    if error.is_confinement() {
        EngineError::Conflict(format!(
            "{error}; nothing was changed (replace the link with a file to go on)"
        ))
    } else {
        EngineError::Io(error.to_string())
    }
}
