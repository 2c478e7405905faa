//! The door to a coordinator's actor: [`CoordinatorHandle`], each of its methods a [`Command`]
//! on the actor's bounded channel answered on a oneshot; and [`SignalDelivery`], a
//! `wait_for_signal_done` answer given back to the actor unless its client got it.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, oneshot};

use super::{
    AgentsView, CreateTask, DiffView, EngineError, Explanation, MergeResult, OwnAgentStart,
    OwnAgentView, Reply, TaskList, TaskView, TerminalInput, Viewer, Watching,
};
use crate::core::coordinator::{Control, IdleOutcome, MergeOptions, Records, Sent, SignalOutcome};
use crate::core::ids::{AgentId, BatchId, CoordinatorId, TaskId};
use crate::core::replay::RequestId;

/// A request to a coordinator's actor.
pub(crate) enum Command {
    Create(CreateTask, Reply<TaskView>),
    List(oneshot::Sender<Arc<TaskList>>),
    Status(TaskId, Reply<TaskView>),
    Explain(TaskId, Reply<Explanation>),
    Output(TaskId, Reply<String>),
    SendPrompt(TaskId, String, Reply<Sent>),
    Diff(TaskId, Reply<DiffView>),
    Merge(TaskId, MergeOptions, Reply<MergeResult>),
    AckNotification(BatchId),
    DropNotification(BatchId),
    RescheduleNotifications,
    /// A task's MCP server started: proven with its done token, or (`None`) told by the app.
    McpConnected(TaskId, Option<String>, Reply<()>),
    /// A hook of a task's agent fired: its done token, event name and notification type.
    Hook(TaskId, String, Option<String>, Option<String>, Reply<()>),
    Records(oneshot::Sender<Records>),
    /// Saves the records now; answered once they are durable.
    Flush(Reply<()>),
    Remove(TaskId, Reply<()>),
    WaitIdle(TaskId, Option<u64>, Reply<IdleOutcome>),
    WaitSignal(Option<RequestId>, Option<u64>, Reply<SignalOutcome>),
    /// A wait's answer its client never got (see [`SignalDelivery`]): taken back.
    GiveBack(SignalOutcome, Option<RequestId>),
    /// The client of the wait with this request id gave it up: its answer, if any, taken back.
    GiveBackRequest(RequestId, Reply<bool>),
    /// A task's `signal_done`: with its done token, or (`None`) from its coordinator.
    SignalDone(TaskId, Option<String>, Reply<()>),
    SetControl(TaskId, Control, Reply<()>),
    Respawn(TaskId, Reply<TaskView>),
    CoordinatorMcpConnected(Reply<()>),
    Close(TaskId, Reply<()>),
    Deregister(oneshot::Sender<()>),
    Scrollback(AgentId, Reply<Vec<u8>>),
    Agents(oneshot::Sender<AgentsView>),
    Watch(AgentId, Viewer, Reply<Watching>),
    Unwatch(AgentId, u64),
    Terminal(AgentId, TerminalInput, Reply<()>),
    /// Starts the coordinator's own agent; answered once it was spawned.
    StartOwnAgent(OwnAgentStart, Reply<AgentId>),
    OwnAgent(oneshot::Sender<Option<OwnAgentView>>),
}

/// A `wait_for_signal_done` answer on its way to its client: given back to the engine when
/// dropped, unless [`Self::delivered`] said the client has it.
#[derive(Debug)]
pub struct SignalDelivery {
    outcome: Option<SignalOutcome>,
    handle: CoordinatorHandle,
    request: Option<RequestId>,
}

impl SignalDelivery {
    /// The answer.
    #[must_use]
    pub fn outcome(&self) -> Option<&SignalOutcome> {
        self.outcome.as_ref()
    }

    /// The client has the answer: nothing is given back.
    #[must_use]
    pub fn delivered(mut self) -> SignalOutcome {
        self.outcome
            .take()
            .unwrap_or(SignalOutcome::TimedOut { remaining: 0 })
    }
}

impl Drop for SignalDelivery {
    fn drop(&mut self) {
        if let Some(outcome) = self.outcome.take() {
            self.handle.give_back(outcome, self.request.take());
        }
    }
}

/// A wait's receiver: dropped before the answer was taken, it gives back one that came.
struct PendingAnswer {
    answer: Option<oneshot::Receiver<Result<SignalOutcome, EngineError>>>,
    handle: CoordinatorHandle,
    request: Option<RequestId>,
}

impl Drop for PendingAnswer {
    fn drop(&mut self) {
        if let Some(mut answer) = self.answer.take() {
            answer.close();
            if let Ok(Ok(outcome)) = answer.try_recv() {
                self.handle.give_back(outcome, self.request.take());
            }
        }
    }
}

/// The task list a coordinator's actor publishes while it waits for its next command or event:
/// a reader takes it without a round trip to the actor. Empty while the actor is at work (it
/// empties it before it handles anything), and until a reader asked the actor for the list.
#[derive(Clone, Debug, Default)]
pub(crate) struct PublishedList(Arc<Mutex<Option<Arc<TaskList>>>>);

impl PublishedList {
    /// The list published, if the actor waits with one.
    pub(in crate::engine) fn get(&self) -> Option<Arc<TaskList>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Publishes `list` (or none).
    pub(in crate::engine) fn set(&self, list: Option<Arc<TaskList>>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = list;
    }
}

/// The way to a coordinator's actor. Cheap to clone.
#[derive(Clone, Debug)]
pub struct CoordinatorHandle {
    pub(in crate::engine) id: CoordinatorId,
    pub(in crate::engine) commands: mpsc::Sender<Command>,
    /// The list its actor published, if it waits with one.
    pub(in crate::engine) published: PublishedList,
}

impl CoordinatorHandle {
    /// The coordinator's id.
    #[must_use]
    pub const fn id(&self) -> CoordinatorId {
        self.id
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, EngineError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| EngineError::Unavailable)?;
        answer.await.map_err(|_| EngineError::Unavailable)?
    }

    /// [`Self::ask`], answered once the change it made is persisted (a restart after the
    /// answer finds it), or with the error that kept it from being persisted. Not for signal waits: a caller gone while the save runs would lose a
    /// consumed signal; the actor saves a consumption at the end of the step that made it.
    async fn ask_durable<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, EngineError> {
        let answer = self.ask(make).await?;
        // Only a change is saved: a refused call costs no write.
        self.ask(Command::Flush).await?;
        Ok(answer)
    }

    /// Creates a sub-task: worktree and branch, MCP config, agent. Rolled back on failure.
    ///
    /// # Errors
    /// Invalid name or base branch, too many tasks, or a failed step (after rollback).
    pub async fn create_task(&self, request: CreateTask) -> Result<TaskView, EngineError> {
        self.ask_durable(|reply| Command::Create(request, reply))
            .await
    }

    /// The coordinator's tasks, oldest first.
    ///
    /// # Errors
    /// The actor is gone.
    pub async fn list_tasks(&self) -> Result<Vec<TaskView>, EngineError> {
        Ok(self.task_list().await?.tasks().to_vec())
    }

    /// The coordinator's tasks, oldest first, as one shared snapshot ([`TaskList`]): the same one
    /// as the last caller's while no task changed since; the one the actor published while it
    /// waits (nothing changed since it was made), else the actor's answer.
    ///
    /// # Errors
    /// The actor is gone.
    pub async fn task_list(&self) -> Result<Arc<TaskList>, EngineError> {
        if let Some(list) = self.published.get() {
            return Ok(list);
        }
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::List(reply))
            .await
            .map_err(|_| EngineError::Unavailable)?;
        answer.await.map_err(|_| EngineError::Unavailable)
    }

    /// One task.
    ///
    /// # Errors
    /// No such task.
    pub async fn task_status(&self, task: TaskId) -> Result<TaskView, EngineError> {
        self.ask(|reply| Command::Status(task, reply)).await
    }

    /// Why Baton thinks what it thinks of a task's agent (`baton explain`).
    ///
    /// # Errors
    /// No such task.
    pub async fn explain(&self, task: TaskId) -> Result<Explanation, EngineError> {
        self.ask(|reply| Command::Explain(task, reply)).await
    }

    /// A task's recent terminal output (the last [`crate::core::coordinator::SCROLLBACK_BYTES_MAX`]
    /// bytes) as plain text.
    ///
    /// # Errors
    /// No such task.
    pub async fn task_output(&self, task: TaskId) -> Result<String, EngineError> {
        self.ask(|reply| Command::Output(task, reply)).await
    }

    /// Types a prompt into a task's agent and presses Enter, or queues it behind the task's
    /// assignment, a human's hold or earlier prompts.
    ///
    /// # Errors
    /// No such task, an empty or oversized prompt, a full queue, or a PTY failure.
    pub async fn send_prompt(&self, task: TaskId, prompt: String) -> Result<Sent, EngineError> {
        // A queued prompt is a promise: kept on disk before the caller hears of it.
        self.ask_durable(|reply| Command::SendPrompt(task, prompt, reply))
            .await
    }

    /// A task's changes against the branch it forked from.
    ///
    /// # Errors
    /// No such task, or git failed.
    pub async fn task_diff(&self, task: TaskId) -> Result<DiffView, EngineError> {
        self.ask(|reply| Command::Diff(task, reply)).await
    }

    /// Commits what the task left uncommitted and merges its branch.
    ///
    /// # Errors
    /// No such task, a task still working, a conflict (the merge is aborted), or a failed
    /// cleanup.
    pub async fn merge_task(
        &self,
        task: TaskId,
        options: MergeOptions,
    ) -> Result<MergeResult, EngineError> {
        self.ask_durable(|reply| Command::Merge(task, options, reply))
            .await
    }

    /// A task's MCP server connected (its `baton mcp` process reached the daemon): its
    /// assignment may go out.
    ///
    /// # Errors
    /// No such task.
    pub async fn mcp_connected(&self, task: TaskId) -> Result<(), EngineError> {
        self.ask(|reply| Command::McpConnected(task, None, reply))
            .await
    }

    /// A task's MCP server says it started, proving it is that task's with its done token.
    ///
    /// # Errors
    /// No such task, or the wrong token.
    pub async fn mcp_connected_with(
        &self,
        task: TaskId,
        done_token: String,
    ) -> Result<(), EngineError> {
        self.ask(|reply| Command::McpConnected(task, Some(done_token), reply))
            .await
    }

    /// A hook of task `task`'s agent fired: its `event` name and a notification's type, as
    /// sent, presented with the task's done token (checked first).
    ///
    /// # Errors
    /// No such task, [`EngineError::Forbidden`] for a token that is not the task's, then
    /// [`EngineError::Invalid`] for an event no agent sends.
    pub async fn hook(
        &self,
        task: TaskId,
        done_token: String,
        event: Option<String>,
        notification: Option<String>,
    ) -> Result<(), EngineError> {
        self.ask(|reply| Command::Hook(task, done_token, event, notification, reply))
            .await
    }

    /// The diff of a task (taken before merging), then its merge with cleanup: the deprecated
    /// one-call review of the reference, kept for coordinators that use it.
    ///
    /// # Errors
    /// As [`task_diff`](Self::task_diff) and [`merge_task`](Self::merge_task).
    pub async fn review_and_merge(
        &self,
        task: TaskId,
        squash: bool,
        message: Option<String>,
    ) -> Result<(DiffView, MergeResult), EngineError> {
        let diff = self.task_diff(task).await?;
        let merged = self
            .merge_task(
                task,
                MergeOptions {
                    squash,
                    message,
                    cleanup: true,
                },
            )
            .await?;
        Ok((diff, merged))
    }

    /// The app typed a staged notification batch into the coordinator.
    ///
    /// # Errors
    /// The actor is gone.
    pub async fn ack_notification(&self, batch: BatchId) -> Result<(), EngineError> {
        self.commands
            .send(Command::AckNotification(batch))
            .await
            .map_err(|_| EngineError::Unavailable)
    }

    /// The app gave up typing a batch: its tasks need a human's review.
    ///
    /// # Errors
    /// The actor is gone.
    pub async fn drop_notification(&self, batch: BatchId) -> Result<(), EngineError> {
        self.commands
            .send(Command::DropNotification(batch))
            .await
            .map_err(|_| EngineError::Unavailable)
    }

    /// The user typed into the coordinator while a batch was staged: stage it again later.
    ///
    /// # Errors
    /// The actor is gone.
    pub async fn reschedule_notifications(&self) -> Result<(), EngineError> {
        self.commands
            .send(Command::RescheduleNotifications)
            .await
            .map_err(|_| EngineError::Unavailable)
    }

    /// Waits until a task is idle (or exited, or taken over by a human), at most `timeout_ms`.
    /// Dropping the future cancels the wait.
    ///
    /// # Errors
    /// No such task, or too many waits.
    pub async fn wait_for_idle(
        &self,
        task: TaskId,
        timeout_ms: Option<u64>,
    ) -> Result<IdleOutcome, EngineError> {
        self.ask(|reply| Command::WaitIdle(task, timeout_ms, reply))
            .await
    }

    /// Waits for a sub-task to signal done (or exit), at most `timeout_ms`. Dropping the future
    /// before its answer consumes no signal; the same `request` id replays a delivered answer.
    ///
    /// # Errors
    /// The coordinator was deregistered, or too many waits.
    pub async fn wait_for_signal(
        &self,
        request: Option<RequestId>,
        timeout_ms: Option<u64>,
    ) -> Result<SignalOutcome, EngineError> {
        self.wait_for_signal_delivery(request, timeout_ms)
            .await
            .map(SignalDelivery::delivered)
    }

    /// [`Self::wait_for_signal`], its answer held by a guard that gives it back to the engine
    /// unless [`SignalDelivery::delivered`] is called: a caller that goes away at any moment
    /// (while waiting, while the answer is on its way, while its response is being written)
    /// consumes nothing.
    ///
    /// # Errors
    /// As [`Self::wait_for_signal`].
    pub async fn wait_for_signal_delivery(
        &self,
        request: Option<RequestId>,
        timeout_ms: Option<u64>,
    ) -> Result<SignalDelivery, EngineError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::WaitSignal(request.clone(), timeout_ms, reply);
        self.commands
            .send(command)
            .await
            .map_err(|_| EngineError::Unavailable)?;
        // Dropped while it waits, the receiver takes back an answer that came meanwhile.
        let mut pending = PendingAnswer {
            answer: Some(answer),
            handle: self.clone(),
            request: request.clone(),
        };
        let outcome = match pending.answer.as_mut() {
            Some(answer) => answer.await,
            None => return Err(EngineError::Unavailable),
        };
        pending.answer = None;
        let outcome = outcome.map_err(|_| EngineError::Unavailable)??;
        Ok(SignalDelivery {
            outcome: Some(outcome),
            handle: self.clone(),
            request,
        })
    }

    /// The client of the wait with request id `request` gave it up (a cancelled MCP call) and
    /// may have missed its answer: the answer, if one was given, is offered again. Whether
    /// there was one.
    ///
    /// # Errors
    /// The actor is gone.
    pub async fn give_back_request(&self, request: RequestId) -> Result<bool, EngineError> {
        self.ask_durable(|reply| Command::GiveBackRequest(request, reply))
            .await
    }

    /// Gives a wait's answer back (nobody got it): the engine offers it again.
    fn give_back(&self, outcome: SignalOutcome, request: Option<RequestId>) {
        let command = Command::GiveBack(outcome, request);
        if let Err(mpsc::error::TrySendError::Full(command)) = self.commands.try_send(command) {
            // A full inbox only delays it: it is sent when there is room.
            let commands = self.commands.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = commands.send(command).await;
                });
            }
        }
    }

    /// A sub-task's agent reports it is done, proving it with its done token.
    ///
    /// # Errors
    /// No such task, or the wrong token.
    pub async fn signal_done(&self, task: TaskId, done_token: String) -> Result<(), EngineError> {
        self.ask_durable(|reply| Command::SignalDone(task, Some(done_token), reply))
            .await
    }

    /// The coordinator reports one of its own tasks done (the REST API lets a coordinator's
    /// credential do so without the task's done token).
    ///
    /// # Errors
    /// No such task.
    pub async fn signal_done_as_coordinator(&self, task: TaskId) -> Result<(), EngineError> {
        self.ask_durable(|reply| Command::SignalDone(task, None, reply))
            .await
    }

    /// Hands a task to a human or back to the coordinator.
    ///
    /// # Errors
    /// No such task.
    pub async fn set_control(&self, task: TaskId, control: Control) -> Result<(), EngineError> {
        self.ask_durable(|reply| Command::SetControl(task, control, reply))
            .await
    }

    /// The coordinator's own MCP server started: told to the app as
    /// [`AppEvent::CoordinatorMcpConnected`], and its own agent's first prompt may go out.
    ///
    /// # Errors
    /// The actor is gone.
    pub async fn coordinator_mcp_connected(&self) -> Result<(), EngineError> {
        self.ask(Command::CoordinatorMcpConnected).await
    }

    /// Starts a task's exited agent again, with the command line it first ran, in its
    /// worktree: a new session (a new agent id) on the same task.
    ///
    /// # Errors
    /// No such task; its agent still runs, it is closing, or its command line is not known
    /// ([`CoreError::NotRespawnable`]); the terminal could not start.
    pub async fn respawn(&self, task: TaskId) -> Result<TaskView, EngineError> {
        self.ask_durable(|reply| Command::Respawn(task, reply))
            .await
    }

    /// Closes a task: kills its agent, removes its worktree and branch and its config file.
    ///
    /// # Errors
    /// No such task, or a cleanup step failed (the task stays listed for a retry).
    pub async fn close_task(&self, task: TaskId) -> Result<(), EngineError> {
        self.ask_durable(|reply| Command::Close(task, reply)).await
    }

    /// The app removed a task on its own: its waits end with `removed`, its config file goes,
    /// and the engine forgets it (its agent and worktree are left to the app).
    ///
    /// # Errors
    /// No such task.
    pub async fn remove_task(&self, task: TaskId) -> Result<(), EngineError> {
        self.ask_durable(|reply| Command::Remove(task, reply)).await
    }

    /// What to persist of the coordinator.
    ///
    /// # Errors
    /// The actor is gone.
    pub async fn records(&self) -> Result<Records, EngineError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Records(reply))
            .await
            .map_err(|_| EngineError::Unavailable)?;
        answer.await.map_err(|_| EngineError::Unavailable)
    }

    /// The coordinator and every task's agent as the phone's list shows them, in one call.
    ///
    /// # Errors
    /// The actor is gone.
    pub async fn agents(&self) -> Result<AgentsView, EngineError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Agents(reply))
            .await
            .map_err(|_| EngineError::Unavailable)?;
        answer.await.map_err(|_| EngineError::Unavailable)
    }

    /// `agent`'s recent output, raw (the scrollback ring, oldest byte first).
    ///
    /// # Errors
    /// `agent` is none of this coordinator's ([`EngineError::Missing`]).
    pub async fn agent_scrollback(&self, agent: AgentId) -> Result<Vec<u8>, EngineError> {
        self.ask(|reply| Command::Scrollback(agent, reply)).await
    }

    /// Starts sending `agent`'s output to `viewer`, with the output so far.
    ///
    /// # Errors
    /// `agent` is none of this coordinator's ([`EngineError::Missing`]).
    pub async fn watch(&self, agent: AgentId, viewer: Viewer) -> Result<Watching, EngineError> {
        self.ask(|reply| Command::Watch(agent, viewer, reply)).await
    }

    /// Stops sending `agent`'s output to the viewer `viewer` (a no-op if it was not watching).
    ///
    /// # Errors
    /// The actor is gone.
    pub async fn unwatch(&self, agent: AgentId, viewer: u64) -> Result<(), EngineError> {
        self.commands
            .send(Command::Unwatch(agent, viewer))
            .await
            .map_err(|_| EngineError::Unavailable)
    }

    /// Writes to, resizes or kills `agent`'s terminal; answered once the PTY did it.
    ///
    /// # Errors
    /// `agent` is none of this coordinator's ([`EngineError::Missing`]), or the PTY failed.
    pub async fn terminal(&self, agent: AgentId, input: TerminalInput) -> Result<(), EngineError> {
        self.ask(|reply| Command::Terminal(agent, input, reply))
            .await
    }

    /// Starts the coordinator's own agent in its terminal, owned by its actor as its tasks'
    /// agents are: watched, typed into and listed like them; its first prompt typed once it
    /// waits at its prompt with its MCP server connected. An ended one is replaced.
    ///
    /// # Errors
    /// Its own agent runs already ([`EngineError::Conflict`]), or its terminal could not start.
    pub async fn start_own_agent(&self, start: OwnAgentStart) -> Result<AgentId, EngineError> {
        self.ask(|reply| Command::StartOwnAgent(start, reply)).await
    }

    /// The coordinator's own agent, if it started one (kept once it ended, until the
    /// coordinator is deregistered).
    ///
    /// # Errors
    /// The actor is gone.
    pub async fn own_agent(&self) -> Result<Option<OwnAgentView>, EngineError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::OwnAgent(reply))
            .await
            .map_err(|_| EngineError::Unavailable)?;
        answer.await.map_err(|_| EngineError::Unavailable)
    }

    /// Deregisters the coordinator: waits end, tasks stay as orphans, its own agent ends.
    ///
    /// # Errors
    /// The actor is gone.
    pub async fn deregister(&self) -> Result<(), EngineError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Deregister(reply))
            .await
            .map_err(|_| EngineError::Unavailable)?;
        answer.await.map_err(|_| EngineError::Unavailable)
    }
}
