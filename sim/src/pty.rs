//! SimPty: the engine's terminals in the simulator. The runtime's in-memory `FakePty` keeps the
//! sessions (output channel, input, size, liveness); SimPty adds what a simulated world needs
//! around it: every spawn starts the scripted agent that plays that program (told by the
//! world's `on_spawn`), every write wakes the agents waiting for a prompt, and every kill wakes
//! what watches for an agent's end, so nothing polls.

use std::sync::Arc;

use baton_runtime::core::ids::AgentId;
use baton_runtime::ports::fakes::FakePty;
use baton_runtime::ports::{BoxFuture, PtyError, PtyHost, PtySession, SpawnSpec};
use tokio::sync::Notify;

/// What the world does when the engine spawned a program: start its scripted agent.
pub type OnSpawn = Box<dyn Fn(&SpawnSpec) + Send + Sync>;

/// Simulated terminals. See the module documentation.
pub struct SimPty {
    /// The sessions.
    pub inner: Arc<FakePty>,
    /// Notified on every write into any session.
    pub typed: Arc<Notify>,
    /// Notified on every kill of a session.
    pub killed: Arc<Notify>,
    on_spawn: OnSpawn,
}

impl SimPty {
    /// Terminals over the sessions of `inner` that notify `typed` on every write and `killed`
    /// on every kill, and call `on_spawn` after each successful spawn.
    #[must_use]
    pub fn new(
        inner: Arc<FakePty>,
        (typed, killed): (Arc<Notify>, Arc<Notify>),
        on_spawn: OnSpawn,
    ) -> Self {
        SimPty {
            inner,
            typed,
            killed,
            on_spawn,
        }
    }
}

impl PtyHost for SimPty {
    fn spawn(&self, spec: SpawnSpec) -> BoxFuture<'_, Result<PtySession, PtyError>> {
        Box::pin(async move {
            let session = self.inner.spawn(spec.clone()).await?;
            (self.on_spawn)(&spec);
            Ok(session)
        })
    }

    fn write<'a>(&'a self, agent: AgentId, bytes: &'a [u8]) -> BoxFuture<'a, Result<(), PtyError>> {
        Box::pin(async move {
            let result = self.inner.write(agent, bytes).await;
            self.typed.notify_waiters();
            result
        })
    }

    fn resize(&self, agent: AgentId, cols: u16, rows: u16) -> BoxFuture<'_, Result<(), PtyError>> {
        self.inner.resize(agent, cols, rows)
    }

    fn kill(&self, agent: AgentId) -> BoxFuture<'_, Result<(), PtyError>> {
        Box::pin(async move {
            let result = self.inner.kill(agent).await;
            self.killed.notify_waiters();
            result
        })
    }
}
