//! Scripted agents: what a sub-task's agent does in a scenario, one action after another, on
//! the simulated terminal the engine spawned it in, in the worktree the engine made for it.
//!
//! A script reads like a bug report: `print = "busy"`, `pause_ms = 2000`, `wait_for = "prompt"`
//! (until a prompt was typed into it and submitted; the agent echoes it as a terminal would),
//! `edit = "src/lib.rs"` with `content`, `commit = "feat: x"`, `call = "signal_done"`,
//! `cast = "recording.cast"` (replays an asciinema v2 cast's output at its times), `hang = true`,
//! `crash = true`, `exit = 0`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use baton_runtime::cli::detect::{Format, Recording, parse_recording};
use baton_runtime::core::detector::Profile;
use baton_runtime::core::ids::AgentId;
use baton_runtime::ports::fakes::FakePty;
use baton_runtime::ports::{BoxFuture, ExitStatus};
use tokio::sync::Notify;

use crate::frames::{self, Frame};
use crate::repo::SimRepo;
use crate::trace::Recorder;

/// An agent gives up waiting for a prompt after this much simulated time (six hours, the
/// longest a simulation runs).
pub const AGENT_WAIT_MS_MAX: u64 = crate::world::SIMULATION_MS_MAX;
/// Longest echo of a prompt shown in the trace, in characters.
pub const ECHO_TRACE_CHARS_MAX: usize = 80;
/// Largest cast a script may replay (16 MiB).
pub const CAST_BYTES_MAX: usize = 16 << 20;
/// Signal number of a crash (SIGSEGV).
pub const CRASH_SIGNAL: i32 = 11;

/// One thing a scripted agent does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Prints a named frame of its kind.
    Print(Frame),
    /// Prints these bytes as they are.
    Raw(String),
    /// Does nothing for this many milliseconds.
    Pause(u64),
    /// Waits until one more prompt was submitted to it (its input gained a carriage return),
    /// then echoes it.
    WaitForPrompt,
    /// Waits until the terminal answered a query it printed (a cursor position report
    /// `ESC [ row ; col R`, or device attributes `ESC [ ? … c`), as Claude Code does at start.
    WaitForReply,
    /// Calls `signal_done` through its MCP server, with its own done token or the one given.
    SignalDone(Option<String>),
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
/// (`content` for `edit`, `token` for `call`); `pause_ms` is an action on its own or a pause
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
                    format!("print {name:?}: frames are startup, trust_dialog, busy and ready")
                })?)
            }
            ("raw", toml::Value::String(text)) => Action::Raw(text.clone()),
            ("pause_ms", _) => continue,
            ("wait_for", toml::Value::String(what)) if what == "prompt" => Action::WaitForPrompt,
            ("wait_for", toml::Value::String(what)) if what == "reply" => Action::WaitForReply,
            ("call", toml::Value::String(tool)) if tool == "signal_done" => {
                extra.push("token");
                Action::SignalDone(text("token")?)
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
            ("content" | "token", _) => continue,
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
    for field in ["content", "token"] {
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

/// A sub-task agent's MCP server, as far as the agent uses it.
pub trait SubTaskMcp: Send + Sync {
    /// Calls `signal_done` with `token`; the error text is what the tool call returned.
    fn signal_done(&self, token: String) -> BoxFuture<'_, Result<(), String>>;
}

/// Where a scripted agent runs.
#[derive(Clone)]
pub struct Seat {
    /// The terminals.
    pub pty: Arc<FakePty>,
    /// Told when something is typed into any terminal.
    pub typed: Arc<Notify>,
    /// Its session.
    pub agent: AgentId,
    /// Its kind of screen.
    pub profile: Profile,
    /// The repositories, and its worktree among them.
    pub repo: Option<(Arc<SimRepo>, PathBuf)>,
    /// Its MCP server.
    pub mcp: Arc<dyn SubTaskMcp>,
    /// Its done token, as its MCP server reads it from its config.
    pub done_token: String,
    /// Where it writes what it does.
    pub recorder: Recorder,
    /// Its actor name in the trace (`agent <task name>`).
    pub name: String,
}

/// Runs `actions` on `seat`, recording each as it happens. Returns `false` if the agent's
/// process ended (exit, crash) or it hung, so nothing after it runs.
///
/// # Errors
/// The terminal is gone, or a prompt never came within [`AGENT_WAIT_MS_MAX`].
pub async fn run(seat: &Seat, actions: &[Action]) -> Result<bool, String> {
    let done = |what: String| seat.recorder.record(&seat.name, what);
    let print = |bytes: Vec<u8>| async move {
        seat.pty
            .print(seat.agent, &bytes)
            .await
            .map_err(|e| e.to_string())
    };
    let mut seen = seat.pty.input(seat.agent).len();
    for action in actions {
        // A killed agent does nothing more.
        if !seat.pty.is_alive(seat.agent) {
            return Ok(false);
        }
        match action {
            Action::Print(frame) => {
                print(frames::bytes(seat.profile, *frame)).await?;
                done(format!("prints {}", frame.name()));
            }
            Action::Raw(text) => {
                print(text.clone().into_bytes()).await?;
                done(format!("prints {text:?}"));
            }
            Action::Pause(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
            Action::WaitForReply => {
                let reply = wait_for_input(seat, seen, terminal_reply).await?;
                seen += reply.len();
                done(format!(
                    "got the terminal's reply {:?}",
                    String::from_utf8_lossy(&reply)
                ));
            }
            Action::WaitForPrompt => {
                let typed = wait_for_input(seat, seen, submitted_line).await?;
                seen = seat.pty.input(seat.agent).len();
                let text = visible(&typed);
                let mut echo = text.clone().into_bytes();
                echo.extend_from_slice(b"\r\n");
                print(echo).await?;
                // The trace shows the task's own words; the preamble before them is Baton's
                // fixed text (typed whole, and shown whole on the screen above).
                let (task, after) = match after_preamble(&text) {
                    Some(task) => (task, " after the sub-task preamble"),
                    None => (text.as_str(), ""),
                };
                let shown: String = task.chars().take(ECHO_TRACE_CHARS_MAX).collect();
                let cut = if shown.len() < task.len() { "…" } else { "" };
                done(format!("got prompt {shown:?}{cut}{after}"));
            }
            Action::SignalDone(token) => {
                let token = token.clone().unwrap_or_else(|| seat.done_token.clone());
                match seat.mcp.signal_done(token).await {
                    Ok(()) => done("signal_done -> ok".into()),
                    Err(error) => done(format!("signal_done -> error: {error}")),
                }
            }
            Action::Edit { path, content } => {
                let (repo, worktree) = seat.repo.as_ref().ok_or("no worktree to edit")?;
                repo.edit(worktree, path, content)
                    .map_err(|e| e.to_string())?;
                done(format!("edits {path}"));
            }
            Action::Delete(path) => {
                let (repo, worktree) = seat.repo.as_ref().ok_or("no worktree to edit")?;
                repo.delete(worktree, path).map_err(|e| e.to_string())?;
                done(format!("deletes {path}"));
            }
            Action::Commit(message) => {
                let (repo, worktree) = seat.repo.as_ref().ok_or("no worktree to commit")?;
                let made = repo.commit(worktree).map_err(|e| e.to_string())?;
                done(if made {
                    format!("commits {message:?}")
                } else {
                    format!("commits {message:?}: nothing to commit")
                });
            }
            Action::Cast(events) => {
                done(format!("replays a cast of {} events", events.len()));
                let mut clock = 0;
                for (at, data) in events {
                    tokio::time::sleep(Duration::from_millis(at.saturating_sub(clock))).await;
                    clock = clock.max(*at);
                    print(data.clone()).await?;
                }
                done(format!("cast done after {clock} ms"));
            }
            Action::Hang => {
                done("hangs".into());
                return Ok(false);
            }
            Action::Crash => {
                let status = ExitStatus {
                    code: None,
                    signal: Some(CRASH_SIGNAL),
                };
                seat.pty
                    .exit(seat.agent, status)
                    .await
                    .map_err(|e| e.to_string())?;
                done(format!("crashes (signal {CRASH_SIGNAL})"));
                return Ok(false);
            }
            Action::Exit(code) => {
                let status = ExitStatus {
                    code: Some(*code),
                    signal: None,
                };
                seat.pty
                    .exit(seat.agent, status)
                    .await
                    .map_err(|e| e.to_string())?;
                done(format!("exits {code}"));
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// The input up to its first carriage return, if it holds one.
fn submitted_line(fresh: &[u8]) -> Option<usize> {
    fresh.iter().position(|&b| b == b'\r')
}

/// The length of the input up to the end of its first reply to a terminal query, if any.
fn terminal_reply(fresh: &[u8]) -> Option<usize> {
    let start = fresh.windows(2).position(|w| w == b"\x1b[")?;
    let end = fresh[start + 2..]
        .iter()
        .position(|&b| b == b'R' || b == b'c')?;
    Some(start + 2 + end + 1)
}

/// Waits until `found` finds what it looks for in the input after `seen`; returns the input
/// up to where it ends.
async fn wait_for_input(
    seat: &Seat,
    seen: usize,
    found: fn(&[u8]) -> Option<usize>,
) -> Result<Vec<u8>, String> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(AGENT_WAIT_MS_MAX);
    loop {
        let notified = seat.typed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let input = seat.pty.input(seat.agent);
        let fresh = input.get(seen..).unwrap_or_default();
        if let Some(end) = found(fresh) {
            return Ok(fresh[..end].to_vec());
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(format!("nothing came within {AGENT_WAIT_MS_MAX} ms"));
        }
        let _ = tokio::time::timeout_at(deadline, notified).await;
    }
}

/// What a terminal shows of typed bytes: escape sequences (bracketed-paste markers, replies to
/// terminal queries) and control characters left out.
/// The prompt after Baton's sub-task preamble, when `text` starts with it exactly (as typed
/// with bracketed paste, or on one line without).
fn after_preamble(text: &str) -> Option<&str> {
    let preamble = baton_runtime::agents::prompts::sub_task("");
    text.strip_prefix(preamble.as_str())
        .or_else(|| text.strip_prefix(preamble.replace('\n', " ").as_str()))
}

fn visible(typed: &[u8]) -> String {
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

/// A scenario file's directory, from which its scripts load casts.
pub fn loader(dir: &Path) -> impl Fn(&str) -> Result<Vec<u8>, String> + '_ {
    move |file: &str| {
        let path = dir.join(file);
        std::fs::read(&path).map_err(|e| format!("cast {}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::{Action, parse_action, visible};
    use crate::frames::Frame;

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
        assert_eq!(parse("crash = true"), Ok(vec![Action::Crash]));
        assert_eq!(parse("exit = 3"), Ok(vec![Action::Exit(3)]));
        assert_eq!(parse("pause_ms = 5"), Ok(vec![Action::Pause(5)]));
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
}
