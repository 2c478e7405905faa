//! What a step's `call` does: a coordinator's MCP tools, and the app's (or the human's)
//! actions, with their results as JSON in the shapes of the REST API (`ApiTaskDetail`,
//! `WaitForSignalDoneResult`, …; see the REST spec's appendix A), so a scenario's
//! expectations stay the same when the calls travel over HTTP.
//!
//! Arguments are read leniently, as the MCP server reads them: a missing optional field is
//! absent, a field of the wrong type is an error naming it.

use std::path::Path;

use baton_runtime::api::dto;
use baton_runtime::core::coordinator::{Control, IdleOutcome, SignalOutcome, Status};
use baton_runtime::core::ids::{CoordinatorId, TaskId};
use baton_runtime::core::replay::RequestId;
use baton_runtime::engine::{CoordinatorHandle, CreateTask, EngineError, MergeOptions};
use baton_runtime::ports::{PtyHost, Repo};
use serde_json::{Value, json};

use crate::daemon::{DAEMON_DOWN, Shared, sim_ms};

/// The coordinator tools a step may call, in the MCP server's order.
pub const COORDINATOR_CALLS: [&str; 11] = [
    "create_task",
    "list_tasks",
    "get_task_status",
    "send_prompt",
    "wait_for_idle",
    "get_task_diff",
    "get_task_output",
    "merge_task",
    "close_task",
    "wait_for_signal_done",
    "review_and_merge_task",
];

/// The app's actions a step may call.
pub const APP_CALLS: [&str; 16] = [
    "register",
    "deregister",
    "list_tasks",
    "take_control",
    "release_control",
    "type",
    "close_task",
    "remove_task",
    "ack_notification",
    "drop_notification",
    "reschedule_notifications",
    "commit_on_main",
    "edit_checkout",
    "task_output",
    "read_file",
    "staged",
];

/// A call's answer: a result, or the error text the caller saw.
pub type Answer = Result<Value, String>;

/// What the caller of a wait for a signal got (a task's signal or exit), for the checker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    /// The task.
    pub task: TaskId,
    /// The signal's time, in simulated milliseconds.
    pub at_ms: u64,
    /// The request id it was asked with.
    pub request: Option<String>,
    /// Whether the task had exited (the answer may report its exit rather than a signal).
    pub exited: bool,
}

fn text<'a>(args: &'a Value, field: &str) -> Result<Option<&'a str>, String> {
    match args.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{field} must be a string")),
    }
}

fn required<'a>(args: &'a Value, field: &str) -> Result<&'a str, String> {
    text(args, field)?.ok_or_else(|| format!("{field} must be a non-empty string"))
}

fn flag(args: &Value, field: &str) -> Result<Option<bool>, String> {
    match args.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(format!("{field} must be a boolean")),
    }
}

fn timeout(args: &Value) -> Result<Option<u64>, String> {
    match args.get("timeoutMs") {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(Some(
            n.as_u64()
                .or_else(|| n.as_f64().map(|f| f.max(0.0) as u64))
                .unwrap_or(0),
        )),
        Some(_) => Err("timeoutMs must be a finite number".to_owned()),
    }
}

/// The task named by `taskId`.
///
/// # Errors
/// Missing, or not a UUID.
pub fn task_arg(args: &Value) -> Result<TaskId, String> {
    required(args, "taskId")?
        .parse()
        .map_err(|_| "taskId must be a valid UUID".to_owned())
}

fn engine_error(error: EngineError) -> String {
    match error {
        EngineError::Unavailable => DAEMON_DOWN.to_owned(),
        other => other.to_string(),
    }
}

/// Runs a coordinator's tool call on its actor. A wait for a signal that delivered a task's
/// signal also returns it, for the checker.
pub async fn coordinator_call(
    handle: &CoordinatorHandle,
    call: &str,
    args: &Value,
) -> (Answer, Option<Signal>) {
    let id = handle.id();
    let answer = async {
        let result = match call {
            "create_task" => {
                let request = CreateTask {
                    name: required(args, "name")?.to_owned(),
                    prompt: text(args, "prompt")?.map(str::to_owned),
                    base_branch: text(args, "baseBranch")?.map(str::to_owned),
                    agent_command: text(args, "agentCommand")?.map(str::to_owned),
                    agent_args: None,
                };
                dto::detail(&handle.create_task(request).await.map_err(engine_error)?, id)
            }
            "list_tasks" => Value::Array(
                handle
                    .list_tasks()
                    .await
                    .map_err(engine_error)?
                    .iter()
                    .map(|t| dto::summary(t, id))
                    .collect(),
            ),
            "get_task_status" => dto::detail(
                &handle
                    .task_status(task_arg(args)?)
                    .await
                    .map_err(engine_error)?,
                id,
            ),
            "get_task_output" => json!({
                "output": handle.task_output(task_arg(args)?).await.map_err(engine_error)?
            }),
            "send_prompt" => {
                let task = task_arg(args)?;
                let prompt = required(args, "prompt")?.to_owned();
                let sent = handle.send_prompt(task, prompt).await.map_err(engine_error)?;
                json!({ "ok": true, "queued": sent == baton_runtime::core::coordinator::Sent::Queued })
            }
            "wait_for_idle" => {
                let task = task_arg(args)?;
                let outcome = handle
                    .wait_for_idle(task, timeout(args)?)
                    .await
                    .map_err(engine_error)?;
                let reason = match outcome {
                    IdleOutcome::Idle => "idle",
                    IdleOutcome::Exited => "exited",
                    IdleOutcome::HumanControl => "human_control",
                    IdleOutcome::Removed => "removed",
                    IdleOutcome::TimedOut => {
                        return Err(format!("Timed out waiting for task {task} to become idle"));
                    }
                };
                let status = handle
                    .task_status(task)
                    .await
                    .map_or("unknown", |t| t.status.name());
                json!({ "status": status, "reason": reason })
            }
            "get_task_diff" => dto::diff(
                &handle
                    .task_diff(task_arg(args)?)
                    .await
                    .map_err(engine_error)?,
            ),
            "merge_task" => {
                let task = task_arg(args)?;
                let options = MergeOptions {
                    squash: flag(args, "squash")?.unwrap_or(false),
                    message: text(args, "message")?.map(str::to_owned),
                    cleanup: flag(args, "cleanup")?.unwrap_or(false),
                };
                dto::merge(&handle.merge_task(task, options).await.map_err(engine_error)?)
            }
            "review_and_merge_task" => {
                let task = task_arg(args)?;
                let squash = flag(args, "squash")?.unwrap_or(false);
                let message = text(args, "message")?.map(str::to_owned);
                let (diff, merge) = handle
                    .review_and_merge(task, squash, message)
                    .await
                    .map_err(engine_error)?;
                json!({ "diff": dto::diff(&diff), "merge": dto::merge(&merge) })
            }
            "close_task" => {
                handle
                    .close_task(task_arg(args)?)
                    .await
                    .map_err(engine_error)?;
                json!({ "ok": true })
            }
            "wait_for_signal_done" => {
                let request = text(args, "requestId")?.map(str::to_owned);
                let request_id = request
                    .as_deref()
                    .map(RequestId::new)
                    .transpose()
                    .map_err(|e| e.to_string())?;
                let outcome = handle
                    .wait_for_signal(request_id, timeout(args)?)
                    .await
                    .map_err(engine_error)?;
                return Ok((dto::signal(&outcome, id), delivered(&outcome, request)));
            }
            other => return Err(format!("unknown coordinator call {other:?}")),
        };
        Ok((result, None))
    }
    .await;
    match answer {
        Ok((value, signal)) => (Ok(value), signal),
        Err(error) => (Err(error), None),
    }
}

fn delivered(outcome: &SignalOutcome, request: Option<String>) -> Option<Signal> {
    match outcome {
        SignalOutcome::Task {
            task, status, at, ..
        } => Some(Signal {
            task: *task,
            at_ms: sim_ms(*at),
            request,
            exited: *status == Status::Exited,
        }),
        _ => None,
    }
}

/// The coordinator (registered or orphaned) holding `task`.
async fn owner_of(shared: &Shared, task: TaskId) -> Result<CoordinatorHandle, String> {
    let handles = shared.handles().await?;
    for handle in handles.registered.values().chain(&handles.orphans) {
        if handle.task_status(task).await.is_ok() {
            return Ok(handle.clone());
        }
    }
    Err(format!("Task not found: {task}"))
}

fn coordinator_arg(shared: &Shared, args: &Value) -> Result<CoordinatorId, String> {
    let name = required(args, "coordinator")?;
    shared
        .declared
        .iter()
        .find(|d| d.name == name)
        .map(|d| d.id)
        .ok_or_else(|| format!("no coordinator named {name:?} in this scenario"))
}

/// What the app does for one of its actions. `checkout_dirtied` is set when it leaves the
/// user's checkout with uncommitted changes on purpose.
pub async fn app_call(
    shared: &Shared,
    call: &str,
    args: &Value,
    checkout_dirtied: &mut bool,
) -> Answer {
    use crate::daemon::AppRequest;
    let door = || shared.door().ok_or_else(|| DAEMON_DOWN.to_owned());
    match call {
        "register" => {
            let id = coordinator_arg(shared, args)?;
            let settings = shared
                .declared
                .iter()
                .find(|d| d.id == id)
                .map(|d| d.settings.clone())
                .ok_or("undeclared coordinator")?;
            let (reply, answer) = tokio::sync::oneshot::channel();
            door()?
                .app
                .send(AppRequest::Register(id, settings, reply))
                .await
                .map_err(|_| DAEMON_DOWN)?;
            answer.await.map_err(|_| DAEMON_DOWN)?;
            Ok(json!({ "coordinatorId": id.to_string() }))
        }
        "deregister" => {
            let id = coordinator_arg(shared, args)?;
            let (reply, answer) = tokio::sync::oneshot::channel();
            door()?
                .app
                .send(AppRequest::Deregister(id, reply))
                .await
                .map_err(|_| DAEMON_DOWN)?;
            answer
                .await
                .map_err(|_| DAEMON_DOWN)?
                .map_err(engine_error)?;
            let now = shared.recorder.elapsed_ms();
            lock(shared).deregistered(id, now);
            Ok(json!({ "ok": true }))
        }
        "list_tasks" => {
            let id = coordinator_arg(shared, args)?;
            let handle = shared.coordinator(id).await?;
            let tasks = handle.list_tasks().await.map_err(engine_error)?;
            Ok(Value::Array(
                tasks.iter().map(|t| dto::summary(t, id)).collect(),
            ))
        }
        "take_control" | "release_control" => {
            let task = task_arg(args)?;
            let control = if call == "take_control" {
                Control::Human
            } else {
                Control::Coordinator
            };
            owner_of(shared, task)
                .await?
                .set_control(task, control)
                .await
                .map_err(engine_error)?;
            Ok(json!({ "ok": true }))
        }
        "type" => {
            let task = task_arg(args)?;
            let typed = required(args, "text")?;
            let view = owner_of(shared, task)
                .await?
                .task_status(task)
                .await
                .map_err(engine_error)?;
            let pty = door()?.pty;
            let agent = pty
                .inner
                .spawned()
                .into_iter()
                .rev()
                .find(|spec| spec.cwd == view.worktree)
                .map(|spec| spec.agent)
                .ok_or("no terminal for this task")?;
            let mut bytes = typed.as_bytes().to_vec();
            bytes.push(b'\r');
            pty.write(agent, &bytes).await.map_err(|e| e.to_string())?;
            Ok(json!({ "ok": true }))
        }
        "close_task" => {
            let task = task_arg(args)?;
            owner_of(shared, task)
                .await?
                .close_task(task)
                .await
                .map_err(engine_error)?;
            Ok(json!({ "ok": true }))
        }
        "remove_task" => {
            let task = task_arg(args)?;
            owner_of(shared, task)
                .await?
                .remove_task(task)
                .await
                .map_err(engine_error)?;
            lock(shared).gone(task);
            Ok(json!({ "ok": true }))
        }
        "task_output" => {
            let task = task_arg(args)?;
            let output = owner_of(shared, task)
                .await?
                .task_output(task)
                .await
                .map_err(engine_error)?;
            Ok(json!({ "output": output }))
        }
        "ack_notification" | "drop_notification" | "reschedule_notifications" => {
            let id = coordinator_arg(shared, args)?;
            let handle = shared.coordinator(id).await?;
            if call == "reschedule_notifications" {
                handle
                    .reschedule_notifications()
                    .await
                    .map_err(engine_error)?;
                return Ok(json!({ "ok": true }));
            }
            let batch = lock(shared)
                .last_batch(id)
                .ok_or("no notification batch was staged for this coordinator")?;
            if call == "ack_notification" {
                handle.ack_notification(batch).await
            } else {
                handle.drop_notification(batch).await
            }
            .map_err(engine_error)?;
            lock(shared).unstage(id, batch);
            Ok(json!({ "ok": true }))
        }
        "commit_on_main" | "edit_checkout" => {
            let path = required(args, "path")?;
            let content = required(args, "content")?;
            let root = Path::new(crate::world::PROJECT_ROOT);
            shared
                .repo
                .edit(root, path, content)
                .map_err(|e| e.to_string())?;
            if call == "commit_on_main" {
                shared.repo.commit(root).map_err(|e| e.to_string())?;
            } else {
                *checkout_dirtied = true;
            }
            Ok(json!({ "ok": true }))
        }
        "staged" => {
            let id = coordinator_arg(shared, args)?;
            Ok(match lock(shared).staged(id) {
                Some(batch) => json!({
                    "staged": true,
                    "count": batch.count,
                    "firesAt": batch.fires_at_ms,
                    "delayMs": batch.fires_at_ms.saturating_sub(batch.staged_at_ms),
                }),
                None => json!({ "staged": false }),
            })
        }
        "read_file" => {
            let path = required(args, "path")?;
            let root = Path::new(crate::world::PROJECT_ROOT);
            let branch = match text(args, "branch")? {
                Some(branch) => branch.to_owned(),
                None => shared
                    .repo
                    .main_branch(root.to_owned())
                    .await
                    .map_err(|e| e.to_string())?,
            };
            let committed = shared
                .repo
                .tree(root, &branch)
                .ok_or_else(|| format!("no branch {branch:?}"))?
                .get(path)
                .cloned();
            let checkout = shared.repo.files(root).and_then(|f| f.get(path).cloned());
            Ok(json!({ "branch": branch, "committed": committed, "checkout": checkout }))
        }
        other => Err(format!("unknown app call {other:?}")),
    }
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, crate::invariants::Observed> {
    shared
        .observed
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
