//! `baton hook`: what an agent's hook runs to tell the daemon what the agent does.
//!
//! Baton wires the agent's own signals per session (DESIGN: "agent state comes from the
//! agents' own signals first"): Claude Code gets hooks in a `--settings` JSON on its command
//! line ([`crate::agents::claude_hook_settings`]), each running
//! `baton hook --url URL --task-id ID --credentials-file CONFIG --event EVENT`. The credential is
//! the task's done token, read from its 0600 MCP config (never argv); the route
//! (`POST /api/tasks/{id}/hook`) refuses a hook of another task.
//!
//! A hook must never hold the agent up or change what it does: `baton hook` prints nothing on
//! stdout (Claude Code reads a hook's stdout as instructions), gives up after
//! [`HOOK_REQUEST_TIMEOUT_MS`], and its caller exits 0 whatever happened (a failure is one line
//! on stderr). It reads its standard input only for a notification's type, at most
//! [`HOOK_INPUT_BYTES_MAX`] bytes of it.

use serde_json::{Value, json};

use super::http::{self, BaseUrl, Connect};
use crate::core::routes::{Endpoint, TaskOp};

/// How long `baton hook` waits for the daemon: a hook runs while the agent waits for it.
pub const HOOK_REQUEST_TIMEOUT_MS: u64 = 2_000;
/// Bytes of a hook's standard input read (a notification's JSON is small; the tool outputs
/// other hooks carry are not read at all).
pub const HOOK_INPUT_BYTES_MAX: usize = 16 << 10;

/// A hook to report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    /// The API's base URL.
    pub url: String,
    /// The task whose agent's hook fired.
    pub task: String,
    /// The hook's event name (`Stop`, `Notification`, …).
    pub event: String,
    /// A notification's type (`permission_prompt`, `idle_prompt`, …), read from its input.
    pub notification: Option<String>,
}

/// Whether the hook `event` reads its input (only a notification's type is wanted).
#[must_use]
pub fn reads_input(event: &str) -> bool {
    event == "Notification"
}

/// The notification type in a hook's input (the start of its JSON, at most
/// [`HOOK_INPUT_BYTES_MAX`] bytes): Claude Code's `notification_type`, or Gemini CLI's.
#[must_use]
pub fn notification_type(input: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(input).ok()?;
    value["notification_type"]
        .as_str()
        .or_else(|| value["notificationType"].as_str())
        .map(str::to_owned)
}

/// Tells the daemon at `hook.url` through `connector`, with the task's done token.
///
/// # Errors
/// The URL is invalid, the daemon could not be reached in time, or it refused (the text says
/// why).
pub async fn report<C: Connect + ?Sized>(
    connector: &C,
    hook: &Hook,
    done_token: &str,
) -> Result<(), String> {
    let base = BaseUrl::parse(&hook.url).map_err(|e| e.to_string())?;
    let mut body = json!({ "event": hook.event });
    if let Some(notification) = &hook.notification {
        body["notificationType"] = Value::String(notification.clone());
    }
    let route = Endpoint::Task(TaskOp::Hook);
    let path = route.path_for(&hook.task);
    let headers = [
        ("authorization".to_owned(), format!("Bearer {done_token}")),
        ("content-type".to_owned(), "application/json".to_owned()),
    ];
    let request = http::encode(
        &base.authority(),
        route.method(),
        &path,
        &headers,
        body.to_string().as_bytes(),
    );
    let sent = crate::time::timeout(
        std::time::Duration::from_millis(HOOK_REQUEST_TIMEOUT_MS),
        http::send(connector, &base, &request),
    )
    .await
    .map_err(|_| format!("the daemon did not answer within {HOOK_REQUEST_TIMEOUT_MS} ms"))?
    .map_err(|e| e.to_string())?;
    match sent.status {
        200..=299 => Ok(()),
        status => Err(format!(
            "the daemon refused the hook: {status} {}",
            String::from_utf8_lossy(&sent.body)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::{notification_type, reads_input};

    #[test]
    fn only_a_notification_reads_its_input_for_its_type() {
        assert!(reads_input("Notification"));
        assert!(!reads_input("PostToolUse"));
        assert_eq!(
            notification_type(br#"{"hook_event_name":"Notification","notification_type":"permission_prompt","message":"Claude needs your permission"}"#),
            Some("permission_prompt".to_owned())
        );
        assert_eq!(notification_type(b"{\"message\":\"x\"}"), None);
        assert_eq!(
            notification_type(b"{\"notification_type\":"),
            None,
            "cut short"
        );
    }
}
