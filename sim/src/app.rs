//! The app's side of the app channel: its actions as HTTP requests to the daemon's real app
//! router (`baton_runtime::daemon::app`, served by the daemon host on
//! [`crate::net::APP_PORT`]), the way the desktop app and the `baton` CLI send them over the
//! Unix socket, so the channel's own handlers (body checks, status codes, the registry's and the
//! engine's refusals mapped) answer every scenario's app steps.
//!
//! An answer is the route's JSON, or its error text (the `error` of the body, as the app shows
//! it); a daemon that is down refuses the connection ([`DAEMON_DOWN`]). The answers keep the
//! shapes the scenarios' expectations name (`{"ok": true}`, `{"coordinatorId": …}`), which the
//! differential test's real run gives too.
//!
//! The app's actions with no route on the channel (closing or removing a task, its output,
//! typing, rescheduling notifications) and the user's own (`commit_on_main`, `read_file`, …)
//! stay in `crate::calls`.

use serde_json::{Value, json};

use crate::calls::{Answer, task_arg, text};
use crate::daemon::{DAEMON_DOWN, Shared};
use crate::net::{APP_PORT, SendError};

/// One request on the app channel: a 2xx answer's JSON (`null` for an empty body), or the
/// error as the app shows it.
///
/// # Errors
/// The daemon is down, or the route refused (its `error` text).
pub async fn request(method: &str, path: &str, body: Option<&Value>) -> Answer {
    let headers = [("content-type".to_owned(), "application/json".to_owned())];
    let body = body.map(Value::to_string).unwrap_or_default();
    let (status, bytes) = crate::net::send_to(APP_PORT, method, path, &headers, body.as_bytes())
        .await
        .map_err(|error| match error {
            SendError::Refused => DAEMON_DOWN.to_owned(),
            other => other.to_string(),
        })?;
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    if (200..300).contains(&status) {
        Ok(value)
    } else {
        Err(value["error"]
            .as_str()
            .map_or_else(|| format!("{status} {value}"), str::to_owned))
    }
}

/// The registered coordinator `coordinator` names.
fn coordinator(
    shared: &Shared,
    args: &Value,
) -> Result<baton_runtime::core::ids::CoordinatorId, String> {
    let name = text(args, "coordinator")?.ok_or("coordinator must be a non-empty string")?;
    shared
        .registered(name)
        .map(|r| r.id)
        .ok_or_else(|| format!("no coordinator named {name:?} was registered"))
}

/// The app's action `call` over the app channel, if the channel has a route for it (`None`
/// otherwise).
pub async fn call(shared: &Shared, call: &str, args: &Value) -> Option<Answer> {
    let answer = match call {
        "register" => register(shared, args).await,
        "deregister" => deregister(shared, args).await,
        "status" => request("GET", "/app/status", None).await,
        "start_agent" => start_agent(shared, args).await,
        "take_control" | "release_control" => control(call, args).await,
        "respawn" => respawn(args).await,
        "ack_notification" | "drop_notification" => notification(shared, call, args).await,
        _ => return None,
    };
    Some(answer)
}

async fn register(shared: &Shared, args: &Value) -> Answer {
    let name = text(args, "coordinator")?.ok_or("coordinator must be a non-empty string")?;
    let registered = shared.register(name).await?;
    Ok(json!({ "coordinatorId": registered.id.to_string() }))
}

async fn deregister(shared: &Shared, args: &Value) -> Answer {
    let id = coordinator(shared, args)?;
    request("DELETE", &format!("/app/coordinators/{id}"), None).await?;
    let now = shared.recorder.elapsed_ms();
    shared.observed().deregistered(id, now);
    Ok(json!({ "ok": true }))
}

/// Starts a coordinator's own agent: `command` (default `claude`), `args`, and the user's
/// first `prompt`, as the app's "start coordinator" sends them.
async fn start_agent(shared: &Shared, args: &Value) -> Answer {
    let id = coordinator(shared, args)?;
    let mut body = json!({ "command": text(args, "command")?.unwrap_or("claude") });
    for field in ["args", "prompt"] {
        if let Some(value) = args.get(field) {
            body[field] = value.clone();
        }
    }
    request(
        "POST",
        &format!("/app/coordinators/{id}/agent"),
        Some(&body),
    )
    .await
}

async fn control(call: &str, args: &Value) -> Answer {
    let task = task_arg(args)?;
    let by = if call == "take_control" {
        "human"
    } else {
        "coordinator"
    };
    let body = json!({ "controlledBy": by });
    request("POST", &format!("/app/tasks/{task}/control"), Some(&body)).await?;
    Ok(json!({ "ok": true }))
}

async fn respawn(args: &Value) -> Answer {
    let task = task_arg(args)?;
    let view = request("POST", &format!("/app/tasks/{task}/agent"), None).await?;
    Ok(json!({ "ok": true, "status": view["status"] }))
}

/// Acknowledges or drops the batch last staged for the coordinator (the one the app was told
/// of).
async fn notification(shared: &Shared, call: &str, args: &Value) -> Answer {
    let id = coordinator(shared, args)?;
    let batch = shared
        .observed()
        .last_batch(id)
        .ok_or("no notification batch was staged for this coordinator")?;
    request("POST", &notification_path(id, &batch, call), None).await?;
    shared.observed().unstage(id, batch);
    Ok(json!({ "ok": true }))
}

/// The app channel's route that acknowledges (`ack_notification`) or drops (any other `call`)
/// coordinator `id`'s notification batch `batch`.
pub fn notification_path(
    id: impl std::fmt::Display,
    batch: &impl std::fmt::Display,
    call: &str,
) -> String {
    let verdict = if call == "ack_notification" {
        "ack"
    } else {
        "drop"
    };
    format!("/app/coordinators/{id}/notifications/{batch}/{verdict}")
}
