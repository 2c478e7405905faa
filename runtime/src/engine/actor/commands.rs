//! Each command an actor takes, carried to the core: a request checked, decided by the core,
//! its effects carried out, its caller answered now or registered for the answer the core will
//! give (a blocked wait, a create, a merge or a close under way).

use super::viewers::{explain, view};
use super::{Actor, AfterSave, Caller, Internal, fresh, jobs};
use crate::core::branch::{task_branch, validate_branch_name};
use crate::core::coordinator::{
    CoreError, Creation, MergeOptions, PROMPT_BYTES_MAX, Sent, SignalOutcome, Wait, WaiterId,
    sanitize_prompt,
};
use crate::core::ids::{AgentId, TaskId};
use crate::core::replay::RequestId;
use crate::engine::{
    AGENT_COLS, AppEvent, Command, CreateTask, DiffView, EngineError, MergeResult, Reply,
    TASK_NAME_CHARS_MAX, TaskView,
};

impl Actor {
    /// Takes one command to the core (or answers it from what the core holds).
    pub(super) async fn command(&mut self, command: Command) {
        let now = self.ports.clock.now();
        match command {
            Command::Create(request, reply) => self.create(request, reply).await,
            Command::List(reply) => {
                let _ = reply.send(self.task_list());
                self.publishing.wanted = true;
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
                    .map(|t| t.terminal.output_text())
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
                // (Fresh ids are drawn only for an own agent: a draw shifts every later id.)
                if self.core.own().is_some() {
                    let effects = self.core.own_mcp_connected(now, self.fresh());
                    self.apply(effects).await;
                }
                let _ = reply.send(Ok(()));
            }
            Command::Close(task, reply) => self.close(task, reply).await,
            Command::Diff(task, reply) => self.diff(task, reply),
            Command::Merge(task, options, reply) => self.merge(task, options, reply).await,
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
                let config = entry.and_then(|t| t.spec.mcp_config.clone());
                let written =
                    entry.map(|t| (t.spec.worktree_files.clone(), t.spec.worktree.clone()));
                let outcome = self.core.remove_task(now, self.fresh(), task);
                let result = self.applied(outcome).await;
                if result.is_ok() {
                    // The worktree is left to the app, without what Baton put in it.
                    tokio::spawn(jobs::leave(self.ports.clone(), config, written));
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
                self.stop_own();
                let effects = self.core.deregister(now);
                self.apply(effects).await;
                let _ = reply.send(());
            }
            Command::Agents(reply) => {
                let _ = reply.send(self.agents_view());
            }
            Command::Scrollback(agent, reply) => {
                let scrollback = self.terminal_of(agent).map(|(_, t)| t.scrollback());
                let _ = reply.send(scrollback);
            }
            Command::Watch(agent, viewer, reply) => {
                let _ = reply.send(self.watch(agent, viewer));
            }
            Command::Unwatch(agent, viewer) => self.unwatch(agent, viewer),
            Command::Terminal(agent, input, reply) => self.terminal(agent, input, reply),
            Command::StartOwnAgent(start, reply) => self.start_own(start, reply),
            Command::OwnAgent(reply) => {
                let _ = reply.send(self.own_view());
            }
        }
    }

    /// A request to make a task, checked, then taken to the core: its ids are drawn only once
    /// the core took it (it holds a slot), and its job starts once its intent is saved.
    async fn create(&mut self, request: CreateTask, reply: Reply<TaskView>) {
        let (name, prompt) = match checked(&request) {
            Ok(checked) => checked,
            Err(error) => {
                let _ = reply.send(Err(error));
                return;
            }
        };
        let (ports, settings) = (&self.ports, &self.settings);
        let taken = self.core.create(|| {
            let entropy = &*ports.entropy;
            let id = TaskId(entropy.uuid());
            let agent = AgentId(entropy.uuid());
            let done_token = entropy.done_token();
            let branch = task_branch(&name, id);
            Creation {
                id,
                worktree: jobs::worktree_path(settings, &branch),
                config: jobs::config_path(settings, id),
                name,
                branch,
                base_branch: request.base_branch,
                agent,
                done_token,
                command: request
                    .agent_command
                    .unwrap_or_else(|| settings.spawn.command.clone()),
                args: request
                    .agent_args
                    .unwrap_or_else(|| settings.spawn.args.clone()),
                // The sub-task learns what it is, then what to do.
                assignment: prompt.as_deref().map(crate::agents::prompts::sub_task),
                policy: request.policy,
                checks: request.checks,
            }
        });
        match taken {
            Ok(call) => {
                self.callers.insert(call.caller, Caller::Create(reply));
                self.apply(call.effects).await;
            }
            Err(error) => {
                let _ = reply.send(Err(error.into()));
            }
        }
    }

    /// A merge, taken to the core: begun, or joined to the one under way.
    async fn merge(&mut self, task: TaskId, options: MergeOptions, reply: Reply<MergeResult>) {
        match self.core.merge(task, options) {
            Ok(call) => {
                self.callers.insert(call.caller, Caller::Merge(reply));
                self.apply(call.effects).await;
            }
            Err(error) => {
                let _ = reply.send(Err(error.into()));
            }
        }
    }

    /// A close, taken to the core: begun, joined to the one under way, or held until a merge
    /// under way ends.
    async fn close(&mut self, task: TaskId, reply: Reply<()>) {
        let now = self.ports.clock.now();
        let entropy = self.ports.entropy.clone();
        match self.core.close(now, &mut || fresh(&*entropy), task) {
            Ok(call) => {
                self.callers.insert(call.caller, Caller::Close(reply));
                self.apply(call.effects).await;
            }
            Err(error) => {
                let _ = reply.send(Err(error.into()));
            }
        }
    }

    /// Starts a task's exited agent again (see [`CoordinatorHandle::respawn`]): checked now,
    /// prepared and spawned in a job, taken in when the job reports.
    ///
    /// [`CoordinatorHandle::respawn`]: crate::engine::CoordinatorHandle::respawn
    fn respawn(&mut self, task: TaskId, reply: Reply<TaskView>) {
        let (launch, cwd) = match self.core.respawn_spec(task) {
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
        let known = jobs::AgentToPrepare {
            task,
            command: entry.spec.command.clone(),
            args: entry.spec.args.clone(),
            done_token: entry.spec.done_token.clone(),
            worktree: cwd,
            earlier: entry.spec.worktree_files.clone(),
        };
        let (ports, settings) = (self.ports.clone(), self.settings.clone());
        let cols = self.cols.get(&task.into()).copied().unwrap_or(AGENT_COLS);
        let internal = self.internal.clone();
        tokio::spawn(async move {
            let spawned = jobs::respawn(ports, settings, known, launch, (agent, cols)).await;
            let _ = internal
                .send(Internal::Respawned(task, agent, spawned, reply))
                .await;
        });
    }

    /// A task's diff, taken in a job.
    fn diff(&self, task: TaskId, reply: Reply<DiffView>) {
        let Some(entry) = self.core.task(task) else {
            let _ = reply.send(Err(CoreError::TaskNotFound(task).into()));
            return;
        };
        let (worktree, base) = (entry.spec.worktree.clone(), entry.spec.base_branch.clone());
        let written = entry.spec.worktree_files.clone();
        let (ports, root) = (self.ports.clone(), self.settings.project_root.clone());
        tokio::spawn(async move {
            let _ = reply.send(jobs::diff(ports, root, worktree, base, written).await);
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

    /// Whether a call about `task` is its own: it presents the task's done token, or (`None`)
    /// it comes from the coordinator itself.
    fn proven(&self, task: TaskId, token: Option<&str>) -> Result<(), EngineError> {
        let entry = self.core.task(task).ok_or(CoreError::TaskNotFound(task))?;
        match token {
            Some(token)
                if !entry
                    .spec
                    .done_token
                    .as_ref()
                    .is_some_and(|d| d.matches(token)) =>
            {
                Err(EngineError::Forbidden)
            }
            _ => Ok(()),
        }
    }

    /// Waits whose caller went away are withdrawn before anything could answer them, so they
    /// consume nothing.
    pub(super) async fn prune_cancelled_waits(&mut self) {
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

    /// Answers a wait once what its answer changed (a consumed signal, a replay entry) is saved.
    pub(super) fn answer_when_saved(
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
    pub(super) async fn answer_signal(
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
}

/// A create request's name (trimmed) and prompt (sanitized), once they are checked: the name
/// not empty, not too long, without characters that could make it read as another; the prompt
/// not empty, not too long; the base branch a valid name.
fn checked(request: &CreateTask) -> Result<(String, Option<String>), EngineError> {
    let name = request.name.trim().to_owned();
    let prompt = request.prompt.as_deref().map(sanitize_prompt);
    let invalid = |message: String| Err(EngineError::Invalid(message));
    if request.name.chars().count() > TASK_NAME_CHARS_MAX {
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
    } else {
        Ok((name, prompt))
    }
}
