//! The app channel's WebSockets: a terminal to attach to, and the engine's events.
//!
//! `GET /app/attach/{id}`: the terminal of a coordinator's own agent (`id` is the coordinator's)
//! or of a sub-task's (`id` is the task's), both served by the coordinator's actor: the attach is
//! a [`Viewer`] with a queue of [`ATTACH_QUEUE_MAX`] messages, as a WebSocket client's is. The
//! server sends the scrollback, then the output as it comes, as binary messages; when the agent
//! ends, a text message `{"type":"exited", "exitCode":…}` and a close. A viewer that falls behind
//! (its queue full) gets `{"type":"lagged"}` and a close (1013): the agent never waits for it. The client sends keystrokes as binary messages, and
//! `{"type":"resize","cols":…,"rows":…}` or `{"type":"kill"}` as text.
//!
//! `GET /app/events`: one text message per engine event (`task_created`, `task_merged`,
//! `task_closed`,
//! `cleanup_failed`, `notification_staged`, `notification_cleared`, `task_state`,
//! `task_orphaned`); `{"type":"lagged","missed":n}` when the client fell behind by more than
//! the feed holds ([`APP_EVENT_FEED_MAX`]).
//!
//! Every send is bounded by [`APP_SEND_TIMEOUT_MS`]; a client that stops reading is dropped.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast, mpsc};

use super::app::AppState;
use crate::api::error::json_response;
use crate::core::coordinator::StateChange;
use crate::core::ids::{AgentId, CoordinatorId, TaskId};
use crate::core::notify::Notice;
use crate::engine::{AppEvent, CoordinatorHandle, TerminalInput, Viewer, Watched};

/// Engine events the feed holds for clients that read slowly.
pub const APP_EVENT_FEED_MAX: usize = 1_024;
/// Output messages queued for one attached viewer (of a task's agent or a coordinator's own).
pub const ATTACH_QUEUE_MAX: usize = 256;
/// Longest a message may take to go out.
pub const APP_SEND_TIMEOUT_MS: u64 = 5_000;
/// Largest message a client may send.
pub const APP_MESSAGE_BYTES_MAX: usize = 65_536;
/// Largest terminal size a client may ask for.
pub const TERMINAL_SIZE_MAX: u16 = 1_000;

fn failure(status: StatusCode, text: &str) -> Response {
    json_response(status, &json!({ "error": text }))
}

pub(super) async fn attach(
    State(state): State<AppState>,
    Path(id): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let (Ok(coordinator), Ok(task)) = (id.parse::<CoordinatorId>(), id.parse::<TaskId>()) else {
        return failure(StatusCode::BAD_REQUEST, "the id is not a UUID");
    };
    // A coordinator's own agent, else a sub-task's: either way its coordinator's actor's.
    let lead = state
        .directory
        .get()
        .coordinators
        .get(&coordinator)
        .cloned();
    let own = match &lead {
        Some(handle) => handle.own_agent().await.ok().flatten(),
        None => None,
    };
    let (handle, agent) = match (lead, own) {
        (Some(handle), Some(own)) => (handle, own.agent),
        _ => {
            let Some(handle) = state.owner_of(task).await else {
                return failure(
                    StatusCode::NOT_FOUND,
                    &format!("no coordinator agent or task {id}"),
                );
            };
            match handle.task_status(task).await {
                Ok(view) => (handle, view.agent),
                Err(error) => return failure(StatusCode::NOT_FOUND, &error.to_string()),
            }
        }
    };
    upgrade
        .max_message_size(APP_MESSAGE_BYTES_MAX)
        .on_upgrade(move |socket| watch(socket, handle, agent))
}

async fn send(socket: &mut WebSocket, message: Message) -> bool {
    matches!(
        crate::time::timeout(
            Duration::from_millis(APP_SEND_TIMEOUT_MS),
            socket.send(message)
        )
        .await,
        Ok(Ok(()))
    )
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.to_owned().into(),
    };
    let _ = send(socket, Message::Close(Some(frame))).await;
}

fn exited(code: Option<i32>) -> Message {
    Message::Text(
        json!({ "type": "exited", "exitCode": code })
            .to_string()
            .into(),
    )
}

/// A client message as terminal input; `None` for one that is not (ignored).
fn input(message: Message) -> Option<Result<TerminalInput, ()>> {
    match message {
        Message::Binary(bytes) => Some(Ok(TerminalInput::Write(bytes.to_vec()))),
        Message::Text(text) => {
            let value: Value = serde_json::from_str(&text).ok()?;
            match value["type"].as_str()? {
                "kill" => Some(Ok(TerminalInput::Kill)),
                "resize" => {
                    let size = |key: &str| {
                        value[key]
                            .as_u64()
                            .and_then(|n| u16::try_from(n).ok())
                            .filter(|n| (1..=TERMINAL_SIZE_MAX).contains(n))
                    };
                    Some(match (size("cols"), size("rows")) {
                        (Some(cols), Some(rows)) => Ok(TerminalInput::Resize { cols, rows }),
                        _ => Err(()),
                    })
                }
                _ => None,
            }
        }
        Message::Close(_) => Some(Err(())),
        _ => None,
    }
}

/// Ids for the app channel's viewers of agents' terminals, apart from the API's.
static VIEWERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 62);

/// Attaches `socket` to `agent`'s terminal, served by `handle`'s actor: its scrollback, its
/// output and end, through a bounded viewer queue; the client's keystrokes, resizes and kill
/// through the terminal's writer.
async fn watch(mut socket: WebSocket, handle: CoordinatorHandle, agent: AgentId) {
    let (queue, mut watched) = mpsc::channel(ATTACH_QUEUE_MAX);
    let overflowed = Arc::new(Notify::new());
    let viewer = Viewer {
        id: VIEWERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        queue,
        overflowed: overflowed.clone(),
    };
    let viewer_id = viewer.id;
    let Ok(watching) = handle.watch(agent, viewer).await else {
        close(&mut socket, 1011, "the agent is gone").await;
        return;
    };
    let sent = send(&mut socket, Message::Binary(watching.scrollback.into())).await;
    if let (true, Some(code)) = (sent, watching.exited) {
        // It had ended already: no viewer was added.
        let _ = send(&mut socket, exited(code)).await;
        close(&mut socket, 1000, "exited").await;
        return;
    }
    if sent {
        loop {
            tokio::select! {
                biased;
                () = overflowed.notified() => {
                    let lagged = json!({ "type": "lagged" }).to_string();
                    let _ = send(&mut socket, Message::Text(lagged.into())).await;
                    close(&mut socket, 1013, "fell behind").await;
                    break;
                }
                item = watched.recv() => match item {
                    Some(Watched::Output(_, bytes)) => {
                        if !send(&mut socket, Message::Binary(bytes.to_vec().into())).await {
                            break;
                        }
                    }
                    Some(Watched::Exited(_, code)) => {
                        let _ = send(&mut socket, exited(code)).await;
                        close(&mut socket, 1000, "exited").await;
                        break;
                    }
                    None => break,
                },
                message = socket.recv() => match message {
                    // The client went away: a closed socket answers at once, forever.
                    None | Some(Err(_)) => break,
                    Some(Ok(message)) => match input(message) {
                        None => {}
                        Some(Ok(input)) => {
                            let _ = handle.terminal(agent, input).await;
                        }
                        Some(Err(())) => break,
                    },
                },
            }
        }
    }
    let _ = handle.unwatch(agent, viewer_id).await;
}

pub(super) async fn events(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    let mut feed = state.events.subscribe();
    upgrade
        .max_message_size(APP_MESSAGE_BYTES_MAX)
        .on_upgrade(move |mut socket| async move {
            loop {
                tokio::select! {
                    biased;
                    event = feed.recv() => {
                        let message = match event {
                            Ok(event) => event_json(&event),
                            Err(broadcast::error::RecvError::Lagged(missed)) => {
                                json!({ "type": "lagged", "missed": missed })
                            }
                            Err(broadcast::error::RecvError::Closed) => return,
                        };
                        if !send(&mut socket, Message::Text(message.to_string().into())).await {
                            return;
                        }
                    }
                    message = socket.recv() => {
                        if matches!(message, None | Some(Err(_) | Ok(Message::Close(_)))) {
                            return;
                        }
                    }
                }
            }
        })
        .into_response()
}

/// An engine event as the app channel's JSON.
#[must_use]
pub fn event_json(event: &AppEvent) -> Value {
    match event {
        AppEvent::TaskCreated { coordinator, task } => json!({
            "type": "task_created",
            "coordinatorId": coordinator.to_string(),
            "task": crate::api::dto::detail(task, *coordinator),
        }),
        AppEvent::Merged { task, merge } => json!({
            "type": "task_merged",
            "taskId": task.to_string(),
            "merge": crate::api::dto::merge(merge),
        }),
        AppEvent::TaskClosed(task) => json!({ "type": "task_closed", "taskId": task.to_string() }),
        AppEvent::CoordinatorMcpConnected(coordinator) => json!({
            "type": "coordinator_mcp_connected", "coordinatorId": coordinator.to_string(),
        }),
        AppEvent::CleanupFailed { task, error } => json!({
            "type": "cleanup_failed", "taskId": task.to_string(), "error": error,
        }),
        AppEvent::Notice(coordinator, Notice::Staged(staged)) => json!({
            "type": "notification_staged",
            "coordinatorId": coordinator.to_string(),
            "batchId": staged.batch.to_string(),
            "notificationIds": staged.notifications.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "text": staged.text,
            "autoFireAt": staged.auto_fire_at.iso8601(),
        }),
        AppEvent::Notice(coordinator, Notice::Cleared) => json!({
            "type": "notification_cleared", "coordinatorId": coordinator.to_string(),
        }),
        AppEvent::State(task, change) => {
            let mut value = json!({ "type": "task_state", "taskId": task.to_string() });
            let (name, extra) = match change {
                StateChange::SignalReceived { at, consumed } => (
                    "signal_received",
                    json!({ "signalDoneAt": at.iso8601(), "consumed": consumed }),
                ),
                StateChange::SignalConsumed => ("signal_consumed", json!({})),
                StateChange::NeedsReview => ("needs_review", json!({})),
                StateChange::SignalReset => ("signal_reset", json!({})),
                StateChange::ControlChanged(control) => {
                    ("control_changed", json!({ "controlledBy": control.name() }))
                }
                StateChange::Orphaned { needs_review } => {
                    ("orphaned", json!({ "needsReview": needs_review }))
                }
                StateChange::McpStartupTimedOut => ("mcp_startup_timed_out", json!({})),
                StateChange::Agent(verdict) => (
                    "agent_state",
                    json!({ "agentState": crate::api::dto::agent_state(verdict) }),
                ),
            };
            value["change"] = Value::String(name.to_owned());
            if let (Some(value), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
                value.extend(extra.clone());
            }
            value
        }
        AppEvent::Orphaned { task, text } => json!({
            "type": "task_orphaned", "taskId": task.to_string(), "text": text,
        }),
    }
}
