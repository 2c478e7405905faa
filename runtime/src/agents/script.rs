//! The agent-behaviour language: what a scripted agent does, one action after another. The
//! simulator's agents and `baton demo-agent` read the same scripts, so a script that runs in a
//! scenario runs for real too.
//!
//! A script reads like a bug report: `print = "busy"`, `pause_ms = 2000`, `wait_for = "prompt"`
//! (until a prompt was typed into it and submitted; the agent echoes it as a terminal would),
//! `edit = "src/lib.rs"` with `content`, `commit = "feat: x"`, `call = "signal_done"`,
//! `hook = "PermissionRequest"` (with `notification` and `token`),
//! `call = "create_task"` with `args` and `bind` (a coordinator's tools, for the demo agent),
//! `cast = "recording.cast"` (replays an asciinema v2 cast's output at its times), `hang = true`,
//! `crash = true`, `exit = 0`.

use super::frames::Frame;
use super::recording::{Format, Recording, parse_recording};

/// Largest cast a script may replay (16 MiB).
pub const CAST_BYTES_MAX: usize = 16 << 20;

/// One thing a scripted agent does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Prints a named frame of its kind.
    Print(Frame),
    /// Prints these bytes as they are.
    Raw(String),
    /// Does nothing for this many milliseconds.
    Pause(u64),
    /// Waits until a prompt was submitted to it (text, then a carriage return), then echoes it.
    /// Enter on an empty input line does nothing, as at the agents' own input boxes: a stray
    /// Enter (Baton's retry, a human's) starts no turn.
    WaitForPrompt,
    /// Waits until Enter was pressed, as on a menu (a permission prompt, a dialog), where Enter
    /// chooses the highlighted answer; shows nothing of it.
    WaitForAnswer,
    /// Waits until the terminal answered a query it printed (a cursor position report
    /// `ESC [ row ; col R`, or device attributes `ESC [ ? … c`), as Claude Code does at start.
    WaitForReply,
    /// Calls `signal_done` through its MCP server, with its own done token or the one given.
    SignalDone(Option<String>),
    /// Fires one of its hooks as `baton hook` would report it (`event`, a notification's
    /// type), with its own done token or the one given. Only the simulator's agents run these.
    Hook {
        /// The hook's event name.
        event: String,
        /// A notification's type.
        notification: Option<String>,
        /// Another done token to send.
        token: Option<String>,
    },
    /// Calls another tool of its MCP server (a coordinator's: `create_task`,
    /// `wait_for_signal_done`, …) with `args`, whose strings may name an earlier result as
    /// `${name.field}`; the result (its text read as JSON) is kept as `bind` when given.
    /// Only `baton demo-agent` runs these: the simulator's agents are sub-tasks.
    Tool {
        /// The tool.
        name: String,
        /// Its arguments.
        args: serde_json::Map<String, serde_json::Value>,
        /// The name its result is kept under.
        bind: Option<String>,
    },
    /// Writes a file in its worktree.
    Edit {
        /// Path in the worktree.
        path: String,
        /// New content.
        content: String,
    },
    /// Deletes a file in its worktree.
    Delete(String),
    /// Commits everything in its worktree.
    Commit(String),
    /// Prints a recording's output events at their times (from the start of the replay).
    Cast(Vec<(u64, Vec<u8>)>),
    /// Stops doing anything (and answers nothing) until it is killed.
    Hang,
    /// Its process dies of a signal.
    Crash,
    /// Its process ends with this code.
    Exit(i32),
}

/// How a script reads the files it names (casts), relative to the scenario file.
pub type Loader<'a> = &'a dyn Fn(&str) -> Result<Vec<u8>, String>;

/// Reads one script item: a table with one action key, plus that action's own fields
/// (`content` for `edit`; `token` for `call = "signal_done"`, `args` and `bind` for another
/// tool; `notification` and `token` for `hook`); `pause_ms` is an action on its own or a pause
/// after any other.
///
/// # Errors
/// The item names no action, several, an unknown one, or a field its action does not take.
pub fn parse_action(item: &toml::Table, load: Loader<'_>) -> Result<Vec<Action>, String> {
    let text = |key: &str| -> Result<Option<String>, String> {
        match item.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("{key} must be a string, not {other:?}")),
        }
    };
    let mut actions = Vec::new();
    let mut extra: Vec<&str> = Vec::new();
    for (key, value) in item {
        let action = match (key.as_str(), value) {
            ("print", toml::Value::String(name)) => {
                Action::Print(Frame::named(name).ok_or_else(|| {
                    format!(
                        "print {name:?}: frames are startup, trust_dialog, busy, ready and permission"
                    )
                })?)
            }
            ("raw", toml::Value::String(text)) => Action::Raw(text.clone()),
            ("pause_ms", _) => continue,
            ("wait_for", toml::Value::String(what)) if what == "prompt" => Action::WaitForPrompt,
            ("wait_for", toml::Value::String(what)) if what == "reply" => Action::WaitForReply,
            ("wait_for", toml::Value::String(what)) if what == "answer" => Action::WaitForAnswer,
            ("hook", toml::Value::String(event)) => {
                extra.extend(["notification", "token"]);
                Action::Hook {
                    event: event.clone(),
                    notification: text("notification")?,
                    token: text("token")?,
                }
            }
            ("call", toml::Value::String(tool)) if tool == "signal_done" => {
                extra.push("token");
                Action::SignalDone(text("token")?)
            }
            ("call", toml::Value::String(tool)) => {
                extra.extend(["args", "bind"]);
                let args = match item.get("args") {
                    None => serde_json::Map::new(),
                    Some(toml::Value::Table(table)) => serde_json::to_value(table)
                        .ok()
                        .and_then(|v| v.as_object().cloned())
                        .ok_or("args must be a table of plain values")?,
                    Some(other) => return Err(format!("args must be a table, not {other:?}")),
                };
                Action::Tool {
                    name: tool.clone(),
                    args,
                    bind: text("bind")?,
                }
            }
            ("edit", toml::Value::String(path)) => {
                extra.push("content");
                Action::Edit {
                    path: path.clone(),
                    content: text("content")?.ok_or("edit needs content = \"...\"")?,
                }
            }
            ("delete", toml::Value::String(path)) => Action::Delete(path.clone()),
            ("commit", toml::Value::String(message)) => Action::Commit(message.clone()),
            ("cast", toml::Value::String(file)) => Action::Cast(read_cast(file, load)?),
            ("hang", toml::Value::Boolean(true)) => Action::Hang,
            ("crash", toml::Value::Boolean(true)) => Action::Crash,
            ("exit", toml::Value::Integer(code)) => Action::Exit(
                i32::try_from(*code).map_err(|_| format!("exit {code} is not an exit code"))?,
            ),
            ("content" | "token" | "args" | "bind" | "notification", _) => continue,
            _ => return Err(format!("unknown script action {key} = {value:?}")),
        };
        actions.push(action);
    }
    if actions.is_empty() && !item.contains_key("pause_ms") {
        return Err("a script item names no action".into());
    }
    if actions.len() > 1 {
        return Err(format!(
            "a script item does one thing (a pause may follow it), not {}",
            item.keys().cloned().collect::<Vec<_>>().join(" and ")
        ));
    }
    for field in ["content", "token", "args", "bind", "notification"] {
        if item.contains_key(field) && !extra.contains(&field) {
            return Err(format!("{field} belongs to another action"));
        }
    }
    if let Some(value) = item.get("pause_ms") {
        let ms = value
            .as_integer()
            .ok_or_else(|| format!("pause_ms must be a number, not {value:?}"))?;
        let ms = u64::try_from(ms).map_err(|_| format!("pause_ms {ms} is negative"))?;
        actions.push(Action::Pause(ms));
    }
    Ok(actions)
}

fn read_cast(file: &str, load: Loader<'_>) -> Result<Vec<(u64, Vec<u8>)>, String> {
    let bytes = load(file)?;
    if bytes.len() > CAST_BYTES_MAX {
        return Err(format!(
            "cast {file}: {} bytes; at most {CAST_BYTES_MAX}",
            bytes.len()
        ));
    }
    match parse_recording(&bytes, Format::Cast).map_err(|e| format!("cast {file}: {e}"))? {
        Recording::Cast { events, .. } => Ok(events
            .into_iter()
            .map(|event| (event.at.0, event.data))
            .collect()),
        Recording::Raw(_) => Err(format!("cast {file}: not an asciinema cast")),
    }
}

/// The input up to its first carriage return, if it holds one.
pub fn submitted_line(fresh: &[u8]) -> Option<usize> {
    fresh.iter().position(|&b| b == b'\r')
}

/// The prompt a submitted line carries: its visible text, or `None` when it has none (Enter on
/// an empty input line, which agents ignore).
#[must_use]
pub fn prompt_text(line: &[u8]) -> Option<String> {
    let text = visible(line);
    (!text.trim().is_empty()).then_some(text)
}

/// The length of the input up to the end of its first reply to a terminal query, if any.
pub fn terminal_reply(fresh: &[u8]) -> Option<usize> {
    let start = fresh.windows(2).position(|w| w == b"\x1b[")?;
    let end = fresh[start + 2..]
        .iter()
        .position(|&b| b == b'R' || b == b'c')?;
    Some(start + 2 + end + 1)
}

/// The prompt after Baton's sub-task preamble, when `text` starts with it exactly (as typed
/// with bracketed paste, or on one line without).
#[must_use]
pub fn after_preamble(text: &str) -> Option<&str> {
    let preamble = super::prompts::sub_task("");
    text.strip_prefix(preamble.as_str())
        .or_else(|| text.strip_prefix(preamble.replace('\n', " ").as_str()))
}

/// What a terminal shows of typed bytes: escape sequences (bracketed-paste markers, replies to
/// terminal queries) and control characters left out.
#[must_use]
pub fn visible(typed: &[u8]) -> String {
    let text = String::from_utf8_lossy(typed);
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // CSI: parameters and intermediates, then one final byte in @..~.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if !c.is_control() || c == '\n' {
            out.push(c);
        }
    }
    out
}

/// `args` with every `${name.field}` in its strings replaced by that field of the result kept
/// as `name` (see [`fill_text`]). A string that is one whole reference takes the field's value
/// itself, whatever its type.
///
/// # Errors
/// A reference names no kept result, or a field that result does not have.
pub fn fill(
    args: &serde_json::Map<String, serde_json::Value>,
    bound: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    use serde_json::Value;
    let mut filled = serde_json::Map::new();
    for (key, value) in args {
        let value = match value {
            Value::String(text) => match whole_reference(text) {
                Some(reference) => lookup(reference, bound)?,
                None => Value::String(fill_text(text, bound)?),
            },
            other => other.clone(),
        };
        filled.insert(key.clone(), value);
    }
    Ok(filled)
}

/// `text` with every `${name}` or `${name.field}` replaced by that kept result or its field (a
/// string as it is, anything else as JSON).
///
/// # Errors
/// A reference names no kept result, a field that result does not have, or is not closed.
pub fn fill_text(
    text: &str,
    bound: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .ok_or_else(|| format!("{text:?}: a ${{ without its }}"))?;
        match lookup(&rest[start + 2..start + end], bound)? {
            serde_json::Value::String(s) => out.push_str(&s),
            other => out.push_str(&other.to_string()),
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn whole_reference(text: &str) -> Option<&str> {
    text.strip_prefix("${")
        .and_then(|t| t.strip_suffix('}'))
        .filter(|inner| !inner.contains("${") && !inner.contains('}'))
}

fn lookup(
    reference: &str,
    bound: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<serde_json::Value, String> {
    let (name, field) = reference.split_once('.').unwrap_or((reference, ""));
    let result = bound
        .get(name)
        .ok_or_else(|| format!("${{{reference}}}: no result was kept as {name:?}"))?;
    if field.is_empty() {
        return Ok(result.clone());
    }
    result
        .get(field)
        .cloned()
        .ok_or_else(|| format!("${{{reference}}}: the result {name:?} has no field {field:?}"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::{Action, Frame, fill, parse_action, visible};

    fn item(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    fn parse(text: &str) -> Result<Vec<Action>, String> {
        let cast = |_: &str| {
            Ok(b"{\"version\": 2, \"width\": 80, \"height\": 24}\n[0.5, \"o\", \"hi\"]\n".to_vec())
        };
        parse_action(&item(text), &cast)
    }

    #[test]
    fn script_items_read_as_actions() {
        assert_eq!(
            parse("print = \"busy\"\npause_ms = 2000"),
            Ok(vec![Action::Print(Frame::Busy), Action::Pause(2_000)])
        );
        assert_eq!(
            parse("wait_for = \"prompt\""),
            Ok(vec![Action::WaitForPrompt])
        );
        assert_eq!(
            parse("wait_for = \"answer\""),
            Ok(vec![Action::WaitForAnswer])
        );
        assert_eq!(
            parse("call = \"signal_done\""),
            Ok(vec![Action::SignalDone(None)])
        );
        assert_eq!(
            parse("call = \"signal_done\"\ntoken = \"guess\""),
            Ok(vec![Action::SignalDone(Some("guess".into()))])
        );
        assert_eq!(
            parse("edit = \"a.txt\"\ncontent = \"x\\n\""),
            Ok(vec![Action::Edit {
                path: "a.txt".into(),
                content: "x\n".into()
            }])
        );
        assert_eq!(
            parse("commit = \"m\""),
            Ok(vec![Action::Commit("m".into())])
        );
        assert_eq!(
            parse("cast = \"a.cast\""),
            Ok(vec![Action::Cast(vec![(500, b"hi".to_vec())])])
        );
        assert_eq!(parse("hang = true"), Ok(vec![Action::Hang]));
        assert_eq!(
            parse("hook = \"Notification\"\nnotification = \"idle_prompt\""),
            Ok(vec![Action::Hook {
                event: "Notification".into(),
                notification: Some("idle_prompt".into()),
                token: None,
            }])
        );
        assert!(parse("print = \"busy\"\nnotification = \"x\"").is_err());
        assert_eq!(parse("crash = true"), Ok(vec![Action::Crash]));
        assert_eq!(parse("exit = 3"), Ok(vec![Action::Exit(3)]));
        assert_eq!(parse("pause_ms = 5"), Ok(vec![Action::Pause(5)]));
        assert_eq!(
            parse("call = \"create_task\"\nargs = { name = \"a\", n = 2 }\nbind = \"first\""),
            Ok(vec![Action::Tool {
                name: "create_task".into(),
                args: json!({ "name": "a", "n": 2 }).as_object().cloned().unwrap(),
                bind: Some("first".into()),
            }])
        );
    }

    #[test]
    fn bad_items_are_refused() {
        let error = |text: &str| parse(text).unwrap_err();
        assert!(error("print = \"idle\"").contains("frames are"));
        assert!(error("fly = true").contains("unknown"));
        assert!(error("print = \"busy\"\npause_ms = -1").contains("negative"));
        assert!(error("").contains("no action"));
        assert!(error("print = \"busy\"\nexit = 0").contains("one thing"));
        assert!(error("edit = \"a\"").contains("needs content"));
        assert!(error("commit = \"m\"\ncontent = \"x\"").contains("another action"));
        assert!(error("call = \"signal_done\"\nbind = \"x\"").contains("another action"));
        assert!(error("call = \"list_tasks\"\nargs = 3").contains("must be a table"));
    }

    #[test]
    fn references_are_filled_from_kept_results() {
        let bound = BTreeMap::from([(
            "first".to_owned(),
            json!({ "id": "t-1", "remaining": 2, "nested": { "a": 1 } }),
        )]);
        let args = json!({
            "taskId": "${first.id}",
            "count": "${first.remaining}",
            "text": "task ${first.id} has ${first.remaining} left",
            "plain": 7,
        });
        let filled = fill(args.as_object().unwrap(), &bound).unwrap();
        assert_eq!(
            serde_json::Value::Object(filled),
            json!({ "taskId": "t-1", "count": 2, "text": "task t-1 has 2 left", "plain": 7 })
        );
        let refused =
            |text: &str| fill(json!({ "x": text }).as_object().unwrap(), &bound).unwrap_err();
        assert!(refused("${second.id}").contains("no result was kept"));
        assert!(refused("${first.name}").contains("no field"));
        assert!(refused("a ${first.id").contains("without its"));
    }

    #[test]
    fn replies_to_terminal_queries_are_found_in_the_input() {
        assert_eq!(super::terminal_reply(b"x\x1b[12;1Ry"), Some(8));
        assert_eq!(super::terminal_reply(b"\x1b[?62;22c"), Some(9));
        assert_eq!(super::terminal_reply(b"typed text\r"), None);
    }

    #[test]
    fn an_echo_shows_text_not_escapes() {
        assert_eq!(visible(b"\x1b[200~Fix it\x1b[201~"), "Fix it");
        assert_eq!(visible(b"\x1b[12;1Rnext\x07"), "next");
    }

    #[test]
    fn an_empty_line_carries_no_prompt() {
        assert_eq!(super::prompt_text(b""), None);
        assert_eq!(super::prompt_text(b"  \x1b[200~\x1b[201~ "), None);
        assert_eq!(super::prompt_text(b"\x1b[12;1R"), None);
        assert_eq!(super::prompt_text(b"Fix it"), Some("Fix it".into()));
    }
}
