//! The actor of one coordinator: it owns the pure [`Coordinator`] and carries out its effects.
//!
//! The core decides; the actor does what the decisions say. It runs the jobs of slow IO
//! (create, merge, close, diff, respawn, typing, spawning the own agent) off its loop and
//! reports their ends back to the core, answers callers and waits, saves the records in jobs of
//! their own (what must follow a save waits for it: [`AfterSave`]), and serves each agent's
//! terminal and viewers: its tasks' agents' and its own agent's, alike.
//!
//! Layout: this module (the loop, saves, the core's effects carried out), `commands` (each
//! command taken to the core), `jobs` (the jobs' IO and their kill points), `viewers` (each
//! agent's terminal, its viewers, the views of tasks and of the own agent, the own agent's
//! start and stop).
//!
//! Invariants: no await happens while a decision is half-made (the core is called and its
//! effects carried out in order); an operation's job starts only once the save holding its
//! intent is durable; a wait's answer goes out only once what it consumed is saved; the actor
//! ends once every handle is gone and no create or close is under way.

mod commands;
mod jobs;
mod viewers;

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::handle::PublishedList;
use super::writer::{Input, Writer};
use super::{
    AgentEvent, AgentFeed, AppEvent, COMMANDS_PENDING_MAX, Command, CoordinatorHandle,
    CoordinatorSettings, EngineError, INTERNAL_EVENTS_MAX, MergeResult, Ports, Reply, TaskList,
    TaskView, Viewer, Watched,
};
use crate::core::coordinator::{
    Answer, CallerId, Coordinator, CoreError, Effect, IdleOutcome, Job, MergeOutcome, NewTask,
    OwnChange, Records, Sent, SignalOutcome, StateChange, Status, Terminal, Typed, WaiterId,
    WorktreeFile,
};
use crate::core::ids::{AgentId, BatchId, CoordinatorId, NotificationId, TaskId, Uuid};
use crate::core::notify::Fresh;
use crate::core::replay::RequestId;
use crate::ports::{Entropy, JournalError, PtyEvent, PtySession};
use viewers::view;

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
    let published = PublishedList::default();
    let actor = Actor {
        core,
        ports,
        settings,
        events,
        internal,
        idle_replies: BTreeMap::new(),
        signal_replies: BTreeMap::new(),
        callers: BTreeMap::new(),
        typed_reply: None,
        writers: BTreeMap::new(),
        feed,
        viewers: BTreeMap::new(),
        cols: BTreeMap::new(),
        own_program: String::new(),
        listed: Vec::new(),
        task_list: None,
        publishing: Publishing {
            list: published.clone(),
            wanted: false,
            published: false,
        },
        shown: Vec::new(),
        dirty: false,
        saves: 0,
        saving: false,
        save_waiters: Vec::new(),
    };
    tokio::spawn(actor.run(inbox, internal_inbox));
    CoordinatorHandle {
        id,
        commands,
        published,
    }
}

/// What jobs and pumps report to the actor.
enum Internal {
    /// An event of `agent`'s terminal (dropped if that terminal has another agent by now).
    Pty(Terminal, AgentId, PtyEvent),
    /// The coordinator's own agent was spawned, or could not be.
    OwnSpawned(AgentId, Result<PtySession, String>, Reply<AgentId>),
    /// A create job ended: the task it made, or why it failed (after undoing its steps).
    Created(TaskId, Result<Box<Created>, EngineError>),
    /// A merge job ended.
    Merged(TaskId, Result<MergeResult, EngineError>),
    /// A close job ended: done, or what failed.
    Closed(TaskId, Result<(), String>),
    /// A prompt was typed (or a write failed).
    Typed(Terminal, Typed),
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

/// Who waits for a create, a merge or a close (the core knows each by its [`CallerId`]).
enum Caller {
    Create(Reply<TaskView>),
    Merge(Reply<MergeResult>),
    Close(Reply<()>),
}

/// What a job reported, for the answers and events of its end: the core says who hears it and
/// when; what they hear is the engine's.
#[derive(Clone, Copy)]
enum Reported<'a> {
    /// Nothing: the effects come from no job's end.
    Nothing,
    /// A create job's failure.
    CreateFailed(&'a EngineError),
    /// A merge job's result.
    Merge(&'a Result<MergeResult, EngineError>),
}

struct Actor {
    core: Coordinator,
    ports: Ports,
    settings: CoordinatorSettings,
    events: mpsc::Sender<AppEvent>,
    internal: mpsc::Sender<Internal>,
    idle_replies: BTreeMap<WaiterId, Reply<IdleOutcome>>,
    signal_replies: BTreeMap<WaiterId, (Reply<SignalOutcome>, Option<RequestId>)>,
    /// The callers of the creates, merges and closes under way, answered as the core says (a
    /// resumed operation's callers went away with the old daemon: none is here for it).
    callers: BTreeMap<CallerId, Caller>,
    /// The caller of a `send_prompt` typed at once, answered when its prompt is typed.
    typed_reply: Option<(TaskId, Reply<Sent>)>,
    /// Each agent's terminal writer ([`Writer`]), from its first input until it exits.
    writers: BTreeMap<AgentId, Writer>,
    /// Where agent events go.
    feed: AgentFeed,
    /// Who watches each terminal (its tasks' agents', its own agent's).
    viewers: BTreeMap<Terminal, Vec<Viewer>>,
    /// Terminal widths other than [`AGENT_COLS`](super::AGENT_COLS): a resize's, the own agent's.
    cols: BTreeMap<Terminal, u16>,
    /// The program its own agent runs (for the app's list).
    own_program: String,
    /// The tasks, statuses and exit codes last told to the feed.
    listed: Vec<(TaskId, Status, Option<i32>)>,
    /// The tasks as last listed to a caller: handed out again while every task still shows as
    /// it did (`viewers::task_list`).
    task_list: Option<std::sync::Arc<TaskList>>,
    /// The list published to the handles while the actor waits.
    publishing: Publishing,
    /// What else the phone's list last showed of each agent (see `viewers::Shown`).
    shown: Vec<viewers::Shown>,
    /// Something worth persisting changed since the last save began.
    dirty: bool,
    /// The sequence number of the last save.
    saves: u64,
    /// A save is under way (one at a time: the next one takes whatever changed meanwhile).
    saving: bool,
    /// What waits for the next save to be durable: callers, wait answers, jobs.
    save_waiters: Vec<AfterSave>,
}

/// The task list the actor publishes to its handles ([`PublishedList`]): made before the actor
/// waits, once a reader asked it for the list, and taken back before it handles the next command
/// or event, so a published list is always the one of the moment. Emptied when the actor ends
/// (a reader then asks, and hears that it is gone).
struct Publishing {
    list: PublishedList,
    /// A reader asked for the list since it was last published: publish it before waiting.
    wanted: bool,
    /// A list is published now.
    published: bool,
}

impl Drop for Publishing {
    fn drop(&mut self) {
        self.list.set(None);
    }
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
    /// in the middle then finds it). An intent that could not be saved begins nothing: the job
    /// is reported failed at once ([`jobs::not_begun`]).
    Start(Job),
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
            if !inbox_open && !self.core.has_jobs_to_finish() && idle {
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
            if std::mem::take(&mut self.publishing.wanted) {
                // Nothing changes while the actor waits: readers may take the list meanwhile.
                let list = self.task_list();
                self.publishing.list.set(Some(list));
                self.publishing.published = true;
            }
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
            if std::mem::take(&mut self.publishing.published) {
                // What comes may change a task: readers ask the actor again.
                self.publishing.list.set(None);
            }
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

    /// One fresh batch and notification id, drawn now.
    fn fresh(&self) -> Fresh {
        fresh(&*self.ports.entropy)
    }

    /// After a restart: tells the coordinator of the tasks whose agents did not survive, and
    /// carries every operation that was under way to an end, as the core decides (a create
    /// rolled back before anything else is done, a merge or a close carried out again).
    /// Nobody waits for their answers: the callers' connections died with the old daemon.
    async fn resume(&mut self) {
        if self.core.lost_untold() > 0 {
            let now = self.ports.clock.now();
            let effects = self.core.report_lost(now, self.fresh());
            self.apply(effects).await;
        }
        if self.core.intents().is_empty() {
            return;
        }
        let entropy = self.ports.entropy.clone();
        for intent in self.core.intents().to_vec() {
            tracing::info!(coordinator = %self.core.id(), task = %intent.task(), ?intent, "resuming an operation a restart interrupted");
            let now = self.ports.clock.now();
            let effects = self.core.resume(now, &mut || fresh(&*entropy), intent);
            for effect in effects {
                match effect {
                    // Undone before the coordinator hears anything: nothing it lists or makes
                    // can meet the half-made task.
                    Effect::RollBack(leftovers) => {
                        let root = self.settings.project_root.clone();
                        jobs::undo(&self.ports, root, leftovers).await;
                    }
                    effect => self.apply(vec![effect]).await,
                }
            }
        }
        self.dirty = true;
    }

    async fn internal_event(&mut self, event: Internal) {
        let now = self.ports.clock.now();
        match event {
            Internal::Pty(terminal, agent, _)
                if self
                    .core
                    .terminal(terminal)
                    .is_none_or(|t| t.agent != agent) =>
            {
                // A closed task's, or an own agent's that was stopped (its writer gone with it).
                self.writers.remove(&agent);
            }
            Internal::Pty(terminal, agent, PtyEvent::Output(bytes)) => {
                let effects = self.core.on_output(now, self.fresh(), terminal, &bytes);
                // Copied for viewers only when there are some.
                if self.viewers.contains_key(&terminal) {
                    self.fan_out(terminal, &Watched::Output(agent, bytes.into()));
                }
                self.apply(effects).await;
            }
            Internal::Pty(terminal, agent, PtyEvent::Exited(status)) => {
                let effects = self.core.on_exit(now, self.fresh(), terminal, status.code);
                self.fan_out(terminal, &Watched::Exited(agent, status.code));
                self.viewers.remove(&terminal);
                self.writers.remove(&agent);
                self.feed.send(AgentEvent::Exited {
                    agent,
                    code: status.code,
                });
                self.apply(effects).await;
            }
            Internal::OwnSpawned(agent, Ok(session), reply) => {
                if self.core.own().is_some_and(|own| own.agent == agent) {
                    self.pump(Terminal::Own, agent, session);
                    let _ = reply.send(Ok(agent));
                } else {
                    // Stopped (its coordinator deregistered) while it spawned.
                    let pty = self.ports.pty.clone();
                    tokio::spawn(async move {
                        let _ = pty.kill(agent).await;
                    });
                    let _ = reply.send(Err(EngineError::Unavailable));
                }
            }
            Internal::OwnSpawned(agent, Err(error), reply) => {
                self.core.own_failed(agent);
                let _ = reply.send(Err(EngineError::Io(format!(
                    "the coordinator's agent could not start: {error}"
                ))));
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
                self.pump(task.into(), agent, session);
                self.apply(effects).await;
                self.feed.send(AgentEvent::ListChanged);
                if let Some(view) = self.core.task(task).map(view) {
                    let _ = reply.send(Ok(view));
                }
            }
            Internal::Created(task, Ok(created)) => {
                let Created { new, session } = *created;
                let agent = new.spec.agent;
                let effects = self.core.create_made(now, new);
                self.dirty = true;
                // The agent's events are its task's once the task is added (a task rolled back
                // has its agent killed).
                if self
                    .core
                    .task(task)
                    .is_some_and(|t| t.terminal.agent == agent)
                {
                    self.pump(task.into(), agent, session);
                }
                self.apply(effects).await;
            }
            Internal::Created(task, Err(error)) => {
                let effects = self.core.create_failed(task);
                self.dirty = true;
                self.carry_out(effects, Reported::CreateFailed(&error))
                    .await;
            }
            Internal::Merged(task, result) => {
                let entropy = self.ports.entropy.clone();
                let outcome = match result {
                    Ok(_) => MergeOutcome::Merged,
                    Err(_) => MergeOutcome::Failed,
                };
                let effects = self
                    .core
                    .merge_ended(now, &mut || fresh(&*entropy), task, outcome);
                self.dirty = true;
                self.carry_out(effects, Reported::Merge(&result)).await;
            }
            Internal::Closed(task, result) => {
                let effects = self.core.close_ended(now, self.fresh(), task, result);
                self.dirty = true;
                self.apply(effects).await;
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
                        AfterSave::Start(job) => match &result {
                            Ok(()) => {
                                let (ports, settings) = (self.ports.clone(), self.settings.clone());
                                tokio::spawn(jobs::run(
                                    job,
                                    ports,
                                    settings,
                                    self.internal.clone(),
                                ));
                            }
                            Err(error) => {
                                let (failed, internal) =
                                    (jobs::not_begun(&job, error), self.internal.clone());
                                tokio::spawn(async move {
                                    let _ = internal.send(failed).await;
                                });
                            }
                        },
                    }
                }
            }
            Internal::Typed(task, typed) => {
                let effects = self.core.prompt_typed(now, self.fresh(), task, typed);
                self.apply(effects).await;
            }
        }
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
        self.carry_out(effects, Reported::Nothing).await;
    }

    /// Carries out the core's effects, in order; `reported` is what the job whose end made them
    /// reported.
    async fn carry_out(&mut self, effects: Vec<Effect>, reported: Reported<'_>) {
        let mut queue: VecDeque<Effect> = effects.into();
        while let Some(effect) = queue.pop_front() {
            let coordinator = self.core.id();
            match effect {
                Effect::Notice(notice) => {
                    self.tell(AppEvent::Notice(coordinator, notice)).await;
                }
                Effect::State(task, change) => {
                    if let StateChange::Agent(verdict) = &change {
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
                    terminal,
                    agent,
                    text,
                    bracketed,
                } => {
                    let reply = match self.typed_reply.take() {
                        Some((for_task, reply)) if Terminal::Task(for_task) == terminal => {
                            Some(reply)
                        }
                        other => {
                            self.typed_reply = other;
                            None
                        }
                    };
                    self.type_prompt(terminal, agent, text, bracketed, reply);
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
                Effect::Start(job) => {
                    // Started once what changed so far (the operation's intent) is saved.
                    self.save_waiters.push(AfterSave::Start(job));
                    self.dirty = true;
                }
                Effect::RollBack(leftovers) => {
                    let (ports, root) = (self.ports.clone(), self.settings.project_root.clone());
                    tokio::spawn(async move { jobs::undo(&ports, root, leftovers).await });
                }
                Effect::Answer { caller, answer } => self.answer(caller, answer, reported),
                Effect::Created(task) => {
                    if let Some(task) = self.core.task(task).map(view) {
                        self.tell(AppEvent::TaskCreated { coordinator, task }).await;
                    }
                }
                Effect::Merged(task) => {
                    if let Reported::Merge(Ok(merge)) = reported {
                        let merge = merge.clone();
                        self.tell(AppEvent::Merged { task, merge }).await;
                    }
                }
                Effect::Closed(task) => self.tell(AppEvent::TaskClosed(task)).await,
                Effect::CloseFailed { task, error } => {
                    self.tell(AppEvent::CleanupFailed { task, error }).await;
                }
                Effect::Own(change) => match change {
                    OwnChange::Agent(verdict) => tracing::debug!(
                        %coordinator, state = %verdict.state, source = verdict.source.name(),
                        "the coordinator's agent's state"
                    ),
                    OwnChange::McpStartupTimedOut => tracing::warn!(
                        %coordinator,
                        "typing the first prompt: the agent's Baton MCP server never announced itself"
                    ),
                    OwnChange::FirstPromptDropped => tracing::warn!(
                        %coordinator,
                        "the first prompt was dropped: the agent never showed its prompt"
                    ),
                },
            }
        }
    }

    /// Answers a caller of a create, a merge or a close as the core said, with what the job
    /// reported where the answer is the job's.
    fn answer(&mut self, caller: CallerId, answer: Answer, reported: Reported<'_>) {
        let Some(waiting) = self.callers.remove(&caller) else {
            return;
        };
        match (waiting, answer) {
            (Caller::Create(reply), Answer::Created(task)) => {
                let made = self.core.task(task).map(view);
                let _ = reply.send(made.ok_or(CoreError::TaskNotFound(task).into()));
            }
            (Caller::Create(reply), Answer::Reported) => {
                if let Reported::CreateFailed(error) = reported {
                    let _ = reply.send(Err(error.clone()));
                }
            }
            (Caller::Merge(reply), Answer::Reported) => {
                if let Reported::Merge(result) = reported {
                    let _ = reply.send(result.clone());
                }
            }
            (Caller::Merge(reply), Answer::Closing) => {
                let Reported::Merge(Ok(merged)) = reported else {
                    return;
                };
                // The merge's caller hears how the close its cleanup began ends.
                let (closed, done) = oneshot::channel();
                self.callers.insert(caller, Caller::Close(closed));
                let merged = merged.clone();
                tokio::spawn(async move {
                    let result = match done.await {
                        Ok(Ok(())) => Ok(merged),
                        Ok(Err(error)) => Err(EngineError::Io(format!("merged, but {error}"))),
                        Err(_) => Err(EngineError::Unavailable),
                    };
                    let _ = reply.send(result);
                });
            }
            (Caller::Close(reply), Answer::Closed(result)) => {
                let answer =
                    result.map_err(|error| EngineError::Io(format!("cleanup failed: {error}")));
                let _ = reply.send(answer);
            }
            (waiting, Answer::Refused(error)) => waiting.refuse(error.into()),
            // An answer of another kind of operation: none is ever given.
            (_, Answer::Created(_) | Answer::Reported | Answer::Closing | Answer::Closed(_)) => {}
        }
    }
}

impl Caller {
    /// Answers the caller with `error`.
    fn refuse(self, error: EngineError) {
        match self {
            Caller::Create(reply) => {
                let _ = reply.send(Err(error));
            }
            Caller::Merge(reply) => {
                let _ = reply.send(Err(error));
            }
            Caller::Close(reply) => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

/// One fresh batch and notification id from `entropy` (one draw for both: each output chunk
/// asks for them).
fn fresh(entropy: &dyn Entropy) -> Fresh {
    let mut bytes = [0; 32];
    entropy.fill(&mut bytes);
    let (batch, notification) = bytes.split_at(16);
    let uuid = |half: &[u8]| Uuid::from_random(half.try_into().unwrap_or_default());
    Fresh {
        batch: BatchId(uuid(batch)),
        notification: NotificationId(uuid(notification)),
    }
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
        Some(duration) => crate::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}
