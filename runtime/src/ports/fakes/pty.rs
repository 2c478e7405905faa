//! FakePty: terminals in memory. A test (or the simulator) plays the agents: it prints their
//! output, ends their processes and reads what the engine typed.

use std::collections::BTreeMap;
use std::sync::Mutex;

use tokio::sync::mpsc;

use super::lock;
use crate::core::ids::AgentId;
use crate::ports::{BoxFuture, ExitStatus, PtyError, PtyEvent, PtyHost, PtySession, SpawnSpec};

/// Events a fake PTY session holds before the reader must catch up.
pub const FAKE_PTY_EVENTS_MAX: usize = 64;

#[derive(Debug)]
struct FakeSession {
    events: mpsc::Sender<PtyEvent>,
    input: Vec<u8>,
    size: (u16, u16),
    alive: bool,
}

#[derive(Debug, Default)]
struct PtyState {
    sessions: BTreeMap<AgentId, FakeSession>,
    spawned: Vec<SpawnSpec>,
    failing_spawns: Vec<String>,
    /// Writes to come that fail (`true`) or go through (`false`), in order; then all go through.
    write_script: std::collections::VecDeque<bool>,
}

/// Terminals in memory: a test plays the agents, writing their output and reading what the
/// engine typed.
#[derive(Debug, Default)]
pub struct FakePty {
    state: Mutex<PtyState>,
}

impl FakePty {
    /// Every spawn request so far, in order.
    #[must_use]
    pub fn spawned(&self) -> Vec<SpawnSpec> {
        lock(&self.state).spawned.clone()
    }

    /// Everything written to the session's input.
    #[must_use]
    pub fn input(&self, agent: AgentId) -> Vec<u8> {
        lock(&self.state)
            .sessions
            .get(&agent)
            .map(|s| s.input.clone())
            .unwrap_or_default()
    }

    /// The session's terminal size.
    #[must_use]
    pub fn size(&self, agent: AgentId) -> Option<(u16, u16)> {
        lock(&self.state).sessions.get(&agent).map(|s| s.size)
    }

    /// Whether the session's process runs.
    #[must_use]
    pub fn is_alive(&self, agent: AgentId) -> bool {
        lock(&self.state)
            .sessions
            .get(&agent)
            .is_some_and(|s| s.alive)
    }

    /// Scripts the outcome of the next writes: `true` fails one, `false` lets one through.
    pub fn script_writes(&self, outcomes: &[bool]) {
        lock(&self.state).write_script.extend(outcomes);
    }

    /// Makes the next spawn fail with `reason`.
    pub fn fail_next_spawn(&self, reason: &str) {
        lock(&self.state).failing_spawns.push(reason.to_owned());
    }

    /// The agent prints `bytes`. Waits while the session's channel is full.
    ///
    /// # Errors
    /// No live session with this id.
    pub async fn print(&self, agent: AgentId, bytes: &[u8]) -> Result<(), PtyError> {
        let sender = self.live_sender(agent)?;
        sender
            .send(PtyEvent::Output(bytes.to_vec()))
            .await
            .map_err(|_| PtyError::NotFound(agent))
    }

    /// The agent's process ends with `status`.
    ///
    /// # Errors
    /// No live session with this id.
    pub async fn exit(&self, agent: AgentId, status: ExitStatus) -> Result<(), PtyError> {
        let sender = self.live_sender(agent)?;
        if let Some(session) = lock(&self.state).sessions.get_mut(&agent) {
            session.alive = false;
        }
        sender
            .send(PtyEvent::Exited(status))
            .await
            .map_err(|_| PtyError::NotFound(agent))
    }

    fn live_sender(&self, agent: AgentId) -> Result<mpsc::Sender<PtyEvent>, PtyError> {
        let state = lock(&self.state);
        match state.sessions.get(&agent) {
            Some(session) if session.alive => Ok(session.events.clone()),
            _ => Err(PtyError::NotFound(agent)),
        }
    }
}

impl PtyHost for FakePty {
    fn spawn(&self, spec: SpawnSpec) -> BoxFuture<'_, Result<PtySession, PtyError>> {
        let result = {
            let mut state = lock(&self.state);
            state.spawned.push(spec.clone());
            if state.failing_spawns.is_empty() {
                let (events, receiver) = mpsc::channel(FAKE_PTY_EVENTS_MAX);
                let size = (spec.cols, spec.rows);
                let agent = spec.agent;
                state.sessions.insert(
                    agent,
                    FakeSession {
                        events,
                        input: Vec::new(),
                        size,
                        alive: true,
                    },
                );
                Ok(PtySession { events: receiver })
            } else {
                let reason = state.failing_spawns.remove(0);
                let program = spec.argv.first().cloned().unwrap_or_default();
                Err(PtyError::Spawn { program, reason })
            }
        };
        Box::pin(async move { result })
    }

    fn write<'a>(&'a self, agent: AgentId, bytes: &'a [u8]) -> BoxFuture<'a, Result<(), PtyError>> {
        let result = {
            let mut state = lock(&self.state);
            let fail = state.write_script.pop_front().unwrap_or(false);
            match state.sessions.get_mut(&agent) {
                Some(_) if fail => Err(PtyError::Io {
                    agent,
                    reason: "write failed: broken pipe".into(),
                }),
                Some(session) if session.alive => {
                    session.input.extend_from_slice(bytes);
                    Ok(())
                }
                _ => Err(PtyError::NotFound(agent)),
            }
        };
        Box::pin(async move { result })
    }

    fn resize(&self, agent: AgentId, cols: u16, rows: u16) -> BoxFuture<'_, Result<(), PtyError>> {
        let result = match lock(&self.state).sessions.get_mut(&agent) {
            Some(session) if session.alive => {
                session.size = (cols, rows);
                Ok(())
            }
            _ => Err(PtyError::NotFound(agent)),
        };
        Box::pin(async move { result })
    }

    fn kill(&self, agent: AgentId) -> BoxFuture<'_, Result<(), PtyError>> {
        let sender = {
            let mut state = lock(&self.state);
            match state.sessions.get_mut(&agent) {
                Some(session) if session.alive => {
                    session.alive = false;
                    Ok(session.events.clone())
                }
                _ => Err(PtyError::NotFound(agent)),
            }
        };
        Box::pin(async move {
            let sender = sender?;
            let killed = ExitStatus {
                code: None,
                signal: Some(9),
            };
            // The reader may be gone already; the process is dead either way.
            let _ = sender.send(PtyEvent::Exited(killed)).await;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::FakePty;
    use crate::core::ids::AgentId;
    use crate::ports::{ExitStatus, PtyError, PtyEvent, PtyHost, SpawnSpec};

    fn spec(agent: AgentId) -> SpawnSpec {
        SpawnSpec {
            agent,
            argv: vec!["claude".into()],
            env: Vec::new(),
            cwd: "/w".into(),
            cols: 120,
            rows: 40,
        }
    }

    #[tokio::test]
    async fn fake_pty_sessions_carry_output_input_and_exit() {
        let pty = FakePty::default();
        let agent = AgentId::from_random([1; 16]);
        let mut session = pty.spawn(spec(agent)).await.unwrap();
        pty.print(agent, b"hello").await.unwrap();
        pty.write(agent, b"typed").await.unwrap();
        assert_eq!(pty.input(agent), b"typed");
        pty.kill(agent).await.unwrap();
        assert_eq!(
            session.events.recv().await,
            Some(PtyEvent::Output(b"hello".to_vec()))
        );
        let killed = ExitStatus {
            code: None,
            signal: Some(9),
        };
        assert_eq!(session.events.recv().await, Some(PtyEvent::Exited(killed)));
        assert_eq!(
            pty.write(agent, b"late").await,
            Err(PtyError::NotFound(agent))
        );
        pty.fail_next_spawn("no such file");
        assert!(matches!(
            pty.spawn(spec(AgentId::from_random([2; 16]))).await,
            Err(PtyError::Spawn { .. })
        ));
    }
}
