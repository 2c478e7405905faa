//! Scripted agents: what a sub-task's agent does in a scenario, one action after another, on
//! the simulated terminal the engine spawned it in, in the worktree the engine made for it; and
//! a coordinator's own agent, started by the registry in its project (the default script).
//!
//! The language is the runtime's (`baton_runtime::agents::script`, which `baton demo-agent`
//! runs for real): `print = "busy"`, `pause_ms = 2000`, `wait_for = "prompt"`, `edit`, `commit`,
//! `call = "signal_done"`, `cast`, `hang`, `crash`, `exit`. A scenario's agents are sub-tasks:
//! a script calling another tool (a coordinator's) is refused when the scenario is read.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use baton_runtime::agents::script::{Action, Loader, parse_action};
use baton_runtime::agents::script::{
    after_preamble, prompt_text, submitted_line, terminal_reply, visible,
};
use baton_runtime::agents::{frames, prompts};
use baton_runtime::core::detector::Profile;
use baton_runtime::core::ids::AgentId;
use baton_runtime::ports::fakes::{FakePty, FakeRepo};
use baton_runtime::ports::{BoxFuture, ExitStatus};
use tokio::sync::Notify;

use crate::trace::Recorder;

/// An agent gives up waiting for a prompt after this much simulated time (six hours, the
/// longest a simulation runs).
pub const AGENT_WAIT_MS_MAX: u64 = crate::world::SIMULATION_MS_MAX;
/// Longest echo of a prompt shown in the trace, in characters.
pub const ECHO_TRACE_CHARS_MAX: usize = 80;
/// Signal number of a crash (SIGSEGV).
pub const CRASH_SIGNAL: i32 = 11;

/// A sub-task agent's MCP server, as far as the agent uses it.
pub trait SubTaskMcp: Send + Sync {
    /// Calls `signal_done` with `token`; the error text is what the tool call returned.
    fn signal_done(&self, token: String) -> BoxFuture<'_, Result<(), String>>;
    /// Reports a hook as `baton hook` does, with `token`.
    fn hook(
        &self,
        hook: baton_runtime::mcp::hook::Hook,
        token: String,
    ) -> BoxFuture<'_, Result<(), String>>;
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
    pub repo: Option<(Arc<FakeRepo>, PathBuf)>,
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
            Action::Pause(ms) => baton_runtime::time::sleep(Duration::from_millis(*ms)).await,
            Action::WaitForReply => {
                let reply = wait_for_input(seat, seen, terminal_reply).await?;
                seen += reply.len();
                done(format!(
                    "got the terminal's reply {:?}",
                    String::from_utf8_lossy(&reply)
                ));
            }
            Action::WaitForPrompt => {
                let text = loop {
                    let typed = wait_for_input(seat, seen, submitted_line).await?;
                    // Past its carriage return: an empty line is no prompt.
                    seen += typed.len() + 1;
                    if let Some(text) = prompt_text(&typed) {
                        break text;
                    }
                };
                seen = seat.pty.input(seat.agent).len();
                let mut echo = text.clone().into_bytes();
                echo.extend_from_slice(b"\r\n");
                print(echo).await?;
                // The trace shows the task's (or the user's) own words; the preamble before
                // them is Baton's fixed text (typed whole, and shown whole on the screen above).
                let coordinator = after_coordinator_preamble(&text);
                let (task, after) = match (after_preamble(&text), &coordinator) {
                    (Some(task), _) => (task, " after the sub-task preamble".to_owned()),
                    (None, Some((words, base))) => (
                        *words,
                        format!(" after the coordinator preamble (base branch {base})"),
                    ),
                    (None, None) => (text.as_str(), String::new()),
                };
                let shown: String = task.chars().take(ECHO_TRACE_CHARS_MAX).collect();
                let cut = if shown.len() < task.len() { "…" } else { "" };
                done(format!("got prompt {shown:?}{cut}{after}"));
            }
            Action::WaitForAnswer => {
                let typed = wait_for_input(seat, seen, submitted_line).await?;
                seen = seat.pty.input(seat.agent).len();
                done(format!("got answer {:?}", visible(&typed)));
            }
            Action::SignalDone(token) => {
                let token = token.clone().unwrap_or_else(|| seat.done_token.clone());
                match seat.mcp.signal_done(token).await {
                    Ok(()) => done("signal_done -> ok".into()),
                    Err(error) => done(format!("signal_done -> error: {error}")),
                }
            }
            Action::Hook {
                event,
                notification,
                token,
            } => {
                let token = token.clone().unwrap_or_else(|| seat.done_token.clone());
                let hook = baton_runtime::mcp::hook::Hook {
                    url: crate::net::api_url(),
                    task: String::new(),
                    event: event.clone(),
                    notification: notification.clone(),
                };
                let what = match notification {
                    Some(kind) => format!("{event} ({kind})"),
                    None => event.clone(),
                };
                match seat.mcp.hook(hook, token).await {
                    Ok(()) => done(format!("hook {what} -> ok")),
                    Err(error) => done(format!("hook {what} -> error: {error}")),
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
                    baton_runtime::time::sleep(Duration::from_millis(at.saturating_sub(clock)))
                        .await;
                    clock = clock.max(*at);
                    print(data.clone()).await?;
                }
                done(format!("cast done after {clock} ms"));
            }
            Action::Tool { name, .. } => {
                // Refused when the scenario is read; an agent that got one anyway says so.
                return Err(format!(
                    "call = {name:?}: a sub-task's only tool is signal_done"
                ));
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

/// The user's words and the base branch of a coordinator's first prompt, when `text` is one
/// exactly as `agents::prompts::coordinator` makes it (with the registry's limit of sub-tasks),
/// typed whole or with its newlines turned to spaces (no bracketed paste).
fn after_coordinator_preamble(text: &str) -> Option<(&str, &str)> {
    const BEFORE: &str = "Use `";
    const AFTER: &str = "` as the baseBranch for all sub-tasks.";
    let at = text.rfind(AFTER)?;
    let base = &text[text[..at].rfind(BEFORE)? + BEFORE.len()..at];
    let words = text[at + AFTER.len()..].trim_start_matches(['\n', ' ']);
    let made = prompts::coordinator(words, base, prompts::CONCURRENT_TASKS_MAX);
    (made == text || made.replace('\n', " ") == text).then_some((words, base))
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
        let _ = baton_runtime::time::timeout_at(deadline, notified).await;
    }
}

/// A scenario file's directory, from which its scripts load casts.
pub fn loader(dir: &Path) -> impl Fn(&str) -> Result<Vec<u8>, String> + '_ {
    move |file: &str| {
        let path = dir.join(file);
        std::fs::read(&path).map_err(|e| format!("cast {}: {e}", path.display()))
    }
}
