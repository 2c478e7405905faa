//! Scripted agents: what a sub-task's agent does in a scenario, one action after another, on
//! the fake terminal the engine spawned it in.
//!
//! A script reads like a bug report: `print = "busy"`, `pause_ms = 2000`, `wait_for = "prompt"`
//! (until a prompt was typed into it and submitted), `call = "signal_done"`, `exit = 0`.

use std::sync::Arc;
use std::time::Duration;

use baton_runtime::core::detector::Profile;
use baton_runtime::core::ids::{AgentId, TaskId};
use baton_runtime::engine::CoordinatorHandle;
use baton_runtime::ports::ExitStatus;
use baton_runtime::ports::fakes::FakePty;

use crate::frames::{self, Frame};
use crate::trace::Recorder;

/// An agent gives up waiting for a prompt after this much simulated time (one hour).
pub const AGENT_WAIT_MS_MAX: u64 = 3_600_000;
/// How often a waiting agent looks at its input, in simulated milliseconds.
pub const AGENT_POLL_MS: u64 = 1;

/// One thing a scripted agent does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Prints a named frame of its kind.
    Print(Frame),
    /// Prints these bytes as they are.
    Raw(String),
    /// Does nothing for this many milliseconds.
    Pause(u64),
    /// Waits until one more prompt was submitted to it (its input gained a carriage return).
    WaitForPrompt,
    /// Calls `signal_done` with its task's done token.
    SignalDone,
    /// Its process ends with this code.
    Exit(i32),
}

/// Reads one script item, a table with exactly one action key (`pause_ms` may follow `print`).
///
/// # Errors
/// The item names no action, several, or an unknown one.
pub fn parse_action(item: &toml::Table) -> Result<Vec<Action>, String> {
    let mut actions = Vec::new();
    for (key, value) in item {
        let action = match (key.as_str(), value) {
            ("print", toml::Value::String(name)) => {
                Action::Print(Frame::named(name).ok_or_else(|| {
                    format!("print {name:?}: frames are startup, trust_dialog, busy and ready")
                })?)
            }
            ("raw", toml::Value::String(text)) => Action::Raw(text.clone()),
            ("pause_ms", toml::Value::Integer(ms)) => {
                Action::Pause(u64::try_from(*ms).map_err(|_| format!("pause_ms {ms} is negative"))?)
            }
            ("wait_for", toml::Value::String(what)) if what == "prompt" => Action::WaitForPrompt,
            ("call", toml::Value::String(tool)) if tool == "signal_done" => Action::SignalDone,
            ("exit", toml::Value::Integer(code)) => Action::Exit(
                i32::try_from(*code).map_err(|_| format!("exit {code} is not an exit code"))?,
            ),
            _ => return Err(format!("unknown script action {key} = {value:?}")),
        };
        actions.push(action);
    }
    // A pause written next to a print happens after it.
    actions.sort_by_key(|action| matches!(action, Action::Pause(_)));
    if actions.is_empty() {
        return Err("a script item names no action".into());
    }
    if actions.len() > 2 || (actions.len() == 2 && !matches!(actions[1], Action::Pause(_))) {
        return Err(format!(
            "a script item does one thing (a pause may follow it), not {}",
            item.keys().cloned().collect::<Vec<_>>().join(" and ")
        ));
    }
    Ok(actions)
}

/// Where a scripted agent runs.
#[derive(Clone)]
pub struct Seat {
    /// The terminals.
    pub pty: Arc<FakePty>,
    /// Its session.
    pub agent: AgentId,
    /// Its kind of screen.
    pub profile: Profile,
    /// Its task, and the coordinator it answers to (for MCP calls).
    pub task: TaskId,
    /// The coordinator.
    pub coordinator: CoordinatorHandle,
    /// Its done token, as its MCP server reads it from its config.
    pub done_token: String,
    /// Where it writes what it does, as the actor `agent <task name>`.
    pub recorder: Recorder,
    /// Its actor name in the trace.
    pub name: String,
}

/// Runs `actions` on `seat`, recording each as it happens.
///
/// # Errors
/// The terminal is gone, or a prompt never came within [`AGENT_WAIT_MS_MAX`].
pub async fn run(seat: &Seat, actions: &[Action]) -> Result<(), String> {
    let done = |what: String| seat.recorder.record(&seat.name, what);
    let mut prompts_seen = submitted(&seat.pty.input(seat.agent));
    for action in actions {
        match action {
            Action::Print(frame) => {
                let bytes = frames::bytes(seat.profile, *frame);
                seat.pty
                    .print(seat.agent, &bytes)
                    .await
                    .map_err(|e| e.to_string())?;
                done(format!("prints {}", frame.name()));
            }
            Action::Raw(text) => {
                seat.pty
                    .print(seat.agent, text.as_bytes())
                    .await
                    .map_err(|e| e.to_string())?;
                done(format!("prints {text:?}"));
            }
            Action::Pause(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
            Action::WaitForPrompt => {
                let mut waited = 0;
                while submitted(&seat.pty.input(seat.agent)) <= prompts_seen {
                    if waited >= AGENT_WAIT_MS_MAX {
                        return Err(format!("no prompt came within {AGENT_WAIT_MS_MAX} ms"));
                    }
                    tokio::time::sleep(Duration::from_millis(AGENT_POLL_MS)).await;
                    waited += AGENT_POLL_MS;
                }
                prompts_seen = submitted(&seat.pty.input(seat.agent));
                done("got a prompt".into());
            }
            Action::SignalDone => {
                let answer = seat
                    .coordinator
                    .signal_done(seat.task, seat.done_token.clone())
                    .await;
                done(format!("signal_done -> {answer:?}"));
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
            }
        }
    }
    Ok(())
}

/// Prompts submitted so far: carriage returns in the agent's input.
fn submitted(input: &[u8]) -> usize {
    input.iter().filter(|&&b| b == b'\r').count()
}

#[cfg(test)]
mod tests {
    use super::{Action, parse_action};
    use crate::frames::Frame;

    fn item(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn script_items_read_as_actions() {
        assert_eq!(
            parse_action(&item("print = \"busy\"\npause_ms = 2000")),
            Ok(vec![Action::Print(Frame::Busy), Action::Pause(2_000)])
        );
        assert_eq!(
            parse_action(&item("wait_for = \"prompt\"")),
            Ok(vec![Action::WaitForPrompt])
        );
        assert_eq!(
            parse_action(&item("call = \"signal_done\"")),
            Ok(vec![Action::SignalDone])
        );
        assert_eq!(parse_action(&item("exit = 3")), Ok(vec![Action::Exit(3)]));
    }

    #[test]
    fn bad_items_are_refused() {
        assert!(
            parse_action(&item("print = \"idle\""))
                .unwrap_err()
                .contains("frames are")
        );
        assert!(
            parse_action(&item("fly = true"))
                .unwrap_err()
                .contains("unknown")
        );
        assert!(
            parse_action(&item("pause_ms = -1"))
                .unwrap_err()
                .contains("negative")
        );
        assert!(
            parse_action(&toml::Table::new())
                .unwrap_err()
                .contains("no action")
        );
        assert!(
            parse_action(&item("print = \"busy\"\nexit = 0"))
                .unwrap_err()
                .contains("one thing")
        );
    }
}
