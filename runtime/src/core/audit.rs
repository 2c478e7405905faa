//! The audit trail's entries: who changed what, with which arguments, and how it ended; one JSON
//! line each, never a secret.
//!
//! An [`Entry`] is made after a call's result is known, from the call's parsed fields through an
//! allow-list per [`Action`] ([`Entry::args_from`]): a field not on the list is never recorded,
//! so a credential (a header, a token in a body, a phone address) cannot reach the trail by a
//! new field. Free text (a prompt, a summary, a message) is cut to [`AUDIT_TEXT_CHARS_MAX`]
//! characters with its whole length beside it, and every secret the writer knows is replaced
//! wherever it appears ([`Entry::encode`]). A line is at most [`AUDIT_LINE_BYTES_MAX`] bytes: past
//! it, the arguments are left out and the line says so.
//!
//! The files: `audit.log`, and when a line would take it past [`AUDIT_FILE_BYTES_MAX`] it becomes
//! `audit.log.1` (`.1` becomes `.2`, and so on; past [`AUDIT_FILES_KEPT`] files the oldest is
//! dropped): see [`rotates`] and [`file_name`]. Pure: the daemon writes the lines.

use serde_json::{Map, Value, json};

use crate::core::ids::{CoordinatorId, TaskId};
use crate::core::time::Millis;

/// The audit file's size at most before it is rotated: 4 MiB.
pub const AUDIT_FILE_BYTES_MAX: u64 = 4 * 1024 * 1024;
/// Audit files kept, the current one included: the oldest beyond is dropped.
pub const AUDIT_FILES_KEPT: usize = 5;
/// Bytes of one line at most (its newline included).
pub const AUDIT_LINE_BYTES_MAX: usize = 16 * 1024;
/// Characters of free text (a prompt, a summary, a message, an error) kept in a line.
pub const AUDIT_TEXT_CHARS_MAX: usize = 1_000;
/// The current audit file's name in the state directory.
pub const AUDIT_FILE: &str = "audit.log";
/// The format of a line (`"v"`).
pub const AUDIT_FORMAT: u64 = 1;
/// What a secret is replaced with.
const REDACTED: &str = "[secret]";

/// Who made a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A coordinator, by its bearer token.
    Coordinator(CoordinatorId),
    /// A sub-task's agent, by its done token.
    SubTask {
        /// The task.
        task: TaskId,
        /// Its coordinator.
        coordinator: CoordinatorId,
    },
    /// The phone, by the mobile token.
    Phone,
    /// The app channel: the desktop app or the CLI.
    App,
    /// Baton itself (an operation carried on after a restart, a landing's close).
    Baton,
}

impl Actor {
    fn to_json(self) -> Value {
        match self {
            Actor::Coordinator(id) => json!({ "kind": "coordinator", "id": id.to_string() }),
            Actor::SubTask { task, coordinator } => json!({
                "kind": "sub-task", "task": task.to_string(), "coordinator": coordinator.to_string()
            }),
            Actor::Phone => json!({ "kind": "phone" }),
            Actor::App => json!({ "kind": "app" }),
            Actor::Baton => json!({ "kind": "baton" }),
        }
    }
}

/// A call that changes state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `create_task`.
    CreateTask,
    /// `send_prompt`.
    SendPrompt,
    /// `merge_task`.
    MergeTask,
    /// `close_task`.
    CloseTask,
    /// `signal_done`.
    SignalDone,
    /// `land_self`.
    LandSelf,
    /// A `wait_for_signal_done` answered with a signal (it took the signal).
    TakeSignal,
    /// A coordinator registered.
    Register,
    /// A coordinator deregistered.
    Deregister,
    /// A coordinator's token rotated.
    RotateToken,
    /// Control of a task taken or given back.
    Control,
    /// An agent started again.
    Respawn,
    /// A notification acknowledged or dropped.
    Notification,
    /// Phone access turned on, off, or its token rotated.
    Phone,
    /// Typing into an agent's terminal from a viewer.
    Type,
}

impl Action {
    /// Its name in a line.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Action::CreateTask => "create_task",
            Action::SendPrompt => "send_prompt",
            Action::MergeTask => "merge_task",
            Action::CloseTask => "close_task",
            Action::SignalDone => "signal_done",
            Action::LandSelf => "land_self",
            Action::TakeSignal => "take_signal",
            Action::Register => "register",
            Action::Deregister => "deregister",
            Action::RotateToken => "rotate_token",
            Action::Control => "control",
            Action::Respawn => "respawn",
            Action::Notification => "notification",
            Action::Phone => "phone",
            Action::Type => "type",
        }
    }

    /// The fields of a call's body that are recorded, each with whether it is free text (cut
    /// to [`AUDIT_TEXT_CHARS_MAX`]). Any other field never reaches a line.
    #[must_use]
    pub const fn allowed(self) -> &'static [(&'static str, bool)] {
        match self {
            Action::CreateTask => &[
                ("name", false),
                ("prompt", true),
                ("baseBranch", false),
                ("policy", false),
                ("checks", false),
            ],
            Action::SendPrompt => &[("prompt", true)],
            Action::MergeTask => &[("squash", false), ("message", true), ("cleanup", false)],
            Action::LandSelf => &[("summary", true), ("verification", true)],
            Action::Register => &[
                ("projectRoot", false),
                ("agent", false),
                ("args", false),
                ("skipPermissions", false),
            ],
            Action::Control => &[("control", false)],
            Action::Notification => &[("kind", false)],
            Action::Phone => &[("enabled", false), ("rotate", false)],
            Action::CloseTask
            | Action::SignalDone
            | Action::TakeSignal
            | Action::Deregister
            | Action::RotateToken
            | Action::Respawn
            | Action::Type => &[],
        }
    }
}

/// How a call ended: its status, and the error it answered with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The HTTP status answered (200 for a call with no HTTP answer of its own).
    pub status: u16,
    /// The error, when it failed.
    pub error: Option<String>,
}

/// One call in the trail.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// When its result was known.
    pub at: Millis,
    /// Who made it.
    pub actor: Actor,
    /// What it was.
    pub action: Action,
    /// The coordinator it acted on.
    pub coordinator: Option<CoordinatorId>,
    /// The task it acted on.
    pub task: Option<TaskId>,
    /// Its arguments, allow-listed ([`Self::args_from`]).
    pub args: Map<String, Value>,
    /// How it ended.
    pub outcome: Outcome,
}

impl Entry {
    /// The allowed fields of `action` in `body`, free text cut (see the module documentation).
    #[must_use]
    pub fn args_from(action: Action, body: &Map<String, Value>) -> Map<String, Value> {
        action
            .allowed()
            .iter()
            .filter_map(|(name, free)| {
                let value = body.get(*name)?;
                let value = if *free {
                    cut_value(value)
                } else {
                    value.clone()
                };
                Some(((*name).to_owned(), value))
            })
            .collect()
    }

    /// The line, newline-ended, with every one of `secrets` (non-empty ones) replaced wherever
    /// it appears; at most [`AUDIT_LINE_BYTES_MAX`] bytes.
    #[must_use]
    pub fn encode(&self, secrets: &[&str]) -> String {
        let error = self.outcome.error.as_deref().map(cut);
        let line = |args: &Value| {
            let mut text = serde_json::to_string(&Line {
                action: self.action.name(),
                actor: self.actor.to_json(),
                args,
                at: self.at.iso8601(),
                coordinator: self.coordinator.map(|c| c.to_string()),
                result: LineResult {
                    error: error.as_deref(),
                    status: self.outcome.status,
                },
                task: self.task.map(|t| t.to_string()),
                v: AUDIT_FORMAT,
            })
            .unwrap_or_default();
            for secret in secrets.iter().filter(|s| !s.is_empty()) {
                if text.contains(secret) {
                    text = text.replace(secret, REDACTED);
                }
            }
            text.push('\n');
            text
        };
        let whole = line(&Value::Object(self.args.clone()));
        if whole.len() <= AUDIT_LINE_BYTES_MAX {
            return whole;
        }
        line(&json!({ "left out": format!("{} bytes", whole.len()) }))
    }
}

/// A line as written: its fields in the order of their names.
#[derive(serde::Serialize)]
struct Line<'a> {
    action: &'static str,
    actor: Value,
    args: &'a Value,
    at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    coordinator: Option<String>,
    result: LineResult<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<String>,
    v: u64,
}

/// How a call ended, in a line.
#[derive(serde::Serialize)]
struct LineResult<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    status: u16,
}

/// `text` cut to [`AUDIT_TEXT_CHARS_MAX`] characters, with its whole length when cut.
fn cut(text: &str) -> String {
    match text.char_indices().nth(AUDIT_TEXT_CHARS_MAX) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}… ({} bytes in all)", &text[..end], text.len()),
    }
}

/// Every string in `value` cut.
fn cut_value(value: &Value) -> Value {
    match value {
        Value::String(text) => Value::String(cut(text)),
        Value::Array(items) => Value::Array(items.iter().map(cut_value).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), cut_value(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Whether a file of `size` bytes is rotated before a line of `line` bytes is added to it (an
/// empty file never is: a line always goes somewhere).
#[must_use]
pub fn rotates(size: u64, line: usize) -> bool {
    size > 0 && size + line as u64 > AUDIT_FILE_BYTES_MAX
}

/// The name of audit file `n`: the current one for 0, `audit.log.<n>` for older ones.
#[must_use]
pub fn file_name(n: usize) -> String {
    match n {
        0 => AUDIT_FILE.to_owned(),
        n => format!("{AUDIT_FILE}.{n}"),
    }
}

/// A line read back: its fields, or why it is not a line of the trail (a line torn by a crash).
///
/// # Errors
/// Not JSON, not an object, or of a format this build does not know.
pub fn decode(line: &str) -> Result<Map<String, Value>, String> {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(line) else {
        return Err("not a line of the audit trail".to_owned());
    };
    match fields.get("v").and_then(Value::as_u64) {
        Some(AUDIT_FORMAT) => Ok(fields),
        Some(v) => Err(format!(
            "format {v}, newer than this Baton's {AUDIT_FORMAT}"
        )),
        None => Err("not a line of the audit trail".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::{
        AUDIT_FILE_BYTES_MAX, AUDIT_LINE_BYTES_MAX, AUDIT_TEXT_CHARS_MAX, Action, Actor, Entry,
        Outcome, decode, file_name, rotates,
    };
    use crate::core::ids::{CoordinatorId, TaskId};
    use crate::core::time::Millis;

    fn body(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(fields) => fields,
            _ => unreachable!(),
        }
    }

    fn entry(action: Action, args: Map<String, Value>) -> Entry {
        let coordinator = CoordinatorId::from_random([1; 16]);
        Entry {
            at: Millis(1_700_000_000_000),
            actor: Actor::SubTask {
                task: TaskId::from_random([2; 16]),
                coordinator,
            },
            action,
            coordinator: Some(coordinator),
            task: Some(TaskId::from_random([2; 16])),
            args,
            outcome: Outcome {
                status: 409,
                error: Some("Merge failed: conflicts in src/a.rs".into()),
            },
        }
    }

    #[test]
    fn only_allowed_fields_are_recorded_and_free_text_is_cut() {
        let long = "p".repeat(AUDIT_TEXT_CHARS_MAX + 5);
        let args = Entry::args_from(
            Action::CreateTask,
            &body(json!({
                "name": "fix", "prompt": long, "token": "t0k3n", "coordinatorTaskId": "c",
                "policy": "land", "checks": [{ "command": "cargo test" }]
            })),
        );
        assert_eq!(
            args.keys().collect::<Vec<_>>(),
            ["checks", "name", "policy", "prompt"]
        );
        let prompt = args["prompt"].as_str().unwrap();
        assert!(prompt.starts_with(&"p".repeat(AUDIT_TEXT_CHARS_MAX)));
        assert!(prompt.ends_with(&format!("… ({} bytes in all)", AUDIT_TEXT_CHARS_MAX + 5)));
        for action in [Action::CloseTask, Action::SignalDone, Action::RotateToken] {
            assert!(Entry::args_from(action, &body(json!({ "token": "x" }))).is_empty());
        }
    }

    #[test]
    fn a_line_holds_who_what_and_how_it_ended_and_no_secret() {
        let args = Entry::args_from(
            Action::SendPrompt,
            &body(json!({ "prompt": "use the token s3cr3t-token please" })),
        );
        let line = entry(Action::SendPrompt, args).encode(&["s3cr3t-token", ""]);
        assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
        assert!(!line.contains("s3cr3t-token"), "{line}");
        let fields = decode(&line).unwrap();
        assert_eq!(fields["action"], "send_prompt");
        assert_eq!(fields["actor"]["kind"], "sub-task");
        assert_eq!(fields["args"]["prompt"], "use the token [secret] please");
        assert_eq!(
            fields["result"],
            json!({ "status": 409, "error": "Merge failed: conflicts in src/a.rs" })
        );
        assert_eq!(fields["at"], "2023-11-14T22:13:20.000Z");
    }

    #[test]
    fn a_line_past_its_bound_leaves_its_arguments_out() {
        let many: Vec<Value> = (0..100)
            .map(|i| json!({ "name": format!("check {i}"), "command": "x".repeat(900) }))
            .collect();
        let args = Entry::args_from(Action::CreateTask, &body(json!({ "checks": many })));
        let line = entry(Action::CreateTask, args).encode(&[]);
        assert!(line.len() <= AUDIT_LINE_BYTES_MAX);
        let fields = decode(&line).unwrap();
        assert!(
            fields["args"]["left out"]
                .as_str()
                .unwrap()
                .ends_with(" bytes")
        );
        assert_eq!(fields["result"]["status"], 409);
    }

    #[test]
    fn files_rotate_before_a_line_would_pass_the_bound() {
        assert!(!rotates(0, AUDIT_LINE_BYTES_MAX));
        assert!(!rotates(AUDIT_FILE_BYTES_MAX - 10, 10));
        assert!(rotates(AUDIT_FILE_BYTES_MAX - 10, 11));
        assert_eq!(file_name(0), "audit.log");
        assert_eq!(file_name(4), "audit.log.4");
    }

    #[test]
    fn a_torn_or_newer_line_is_named_as_such() {
        assert!(decode("{\"v\":1,\"at\":\"20").is_err());
        assert!(decode("[1]").is_err());
        assert_eq!(
            decode("{\"v\":2}").unwrap_err(),
            "format 2, newer than this Baton's 1"
        );
    }
}
