//! Terminals: agents run in PTYs the host spawns, writes to, resizes and kills.

use std::path::PathBuf;

use tokio::sync::mpsc;

use super::BoxFuture;
use crate::core::ids::AgentId;

/// What to run in a new PTY. Secrets go in `env`, never in `argv` (visible in `ps`); its
/// `Debug` names the variables, never their values.
#[derive(Clone, PartialEq, Eq)]
pub struct SpawnSpec {
    /// The session's id.
    pub agent: AgentId,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Environment variables set for the program.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Terminal width in columns.
    pub cols: u16,
    /// Terminal height in rows.
    pub rows: u16,
}

impl std::fmt::Debug for SpawnSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpawnSpec")
            .field("agent", &self.agent)
            .field("argv", &self.argv)
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("cwd", &self.cwd)
            .field("cols", &self.cols)
            .field("rows", &self.rows)
            .finish()
    }
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitStatus {
    /// Its exit code, if it exited normally.
    pub code: Option<i32>,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
}

/// What a PTY session reports, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PtyEvent {
    /// Bytes the program wrote (any chunking).
    Output(Vec<u8>),
    /// The program ended; nothing follows.
    Exited(ExitStatus),
}

/// A spawned session: its events arrive on a bounded channel (the host waits when the engine
/// falls behind, so memory stays bounded and no output is lost).
#[derive(Debug)]
pub struct PtySession {
    /// Output and, last, the exit.
    pub events: mpsc::Receiver<PtyEvent>,
}

/// A PTY operation that failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PtyError {
    /// No session with this id (never spawned, exited, or killed).
    #[error("Agent not found: {0}")]
    NotFound(AgentId),
    /// The program could not be started.
    #[error("could not start {program}: {reason}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        reason: String,
    },
    /// Writing to, resizing or killing the session failed.
    #[error("PTY {agent}: {reason}")]
    Io {
        /// The session.
        agent: AgentId,
        /// Why.
        reason: String,
    },
}

/// The host of agent terminals.
pub trait PtyHost: Send + Sync {
    /// Starts `spec` in a new PTY.
    fn spawn(&self, spec: SpawnSpec) -> BoxFuture<'_, Result<PtySession, PtyError>>;

    /// Writes `bytes` to the session's input (keystrokes, pasted prompts, query replies).
    fn write<'a>(&'a self, agent: AgentId, bytes: &'a [u8]) -> BoxFuture<'a, Result<(), PtyError>>;

    /// Changes the session's terminal size.
    fn resize(&self, agent: AgentId, cols: u16, rows: u16) -> BoxFuture<'_, Result<(), PtyError>>;

    /// Ends the session's process (its exit is still reported on its event channel).
    fn kill(&self, agent: AgentId) -> BoxFuture<'_, Result<(), PtyError>>;
}

#[cfg(test)]
mod tests {
    use super::SpawnSpec;
    use crate::core::ids::AgentId;

    #[test]
    fn a_spawn_spec_shows_its_variables_not_their_values() {
        let spec = SpawnSpec {
            agent: AgentId::from_random([1; 16]),
            argv: vec!["codex".into()],
            env: vec![("BATON_DONE_TOKEN".into(), "s3cret".into())],
            cwd: "/w".into(),
            cols: 80,
            rows: 24,
        };
        let shown = format!("{spec:?}");
        assert!(
            shown.contains("BATON_DONE_TOKEN") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
}
