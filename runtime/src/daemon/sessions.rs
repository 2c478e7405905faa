//! The coordinators' own agents: one terminal session per coordinator, started in its project
//! with its MCP config (`baton coordinator start`), that the app and `baton attach` watch and
//! type into. The sub-tasks' terminals are the engine's; these are not tasks, so they live here.
//!
//! Each session keeps a scrollback ring (`core::coordinator::SCROLLBACK_BYTES_MAX`) and a prompt detector of its
//! agent's kind, which answers the terminal queries the agent makes (Claude Code stalls at start
//! without the answers) and tells whether it waits at its prompt. Viewers get the ring, then
//! what comes, through a broadcast of [`SESSION_CHUNKS_MAX`] chunks; a viewer that falls behind
//! by more is told so and let go, never slowing the agent. A lock guards the table, never held
//! across an await.
//!
//! A first prompt (the coordinator preamble and the user's words) is typed as the engine types
//! a sub-task's assignment: once the detector reads the agent idle at its prompt, with bracketed
//! paste if the agent asked for it, then Enter after a pause that grows with the prompt. (An
//! initial prompt given on the command line was seen to stay unsubmitted in Claude Code's input
//! box; typing works for every agent alike.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::broadcast;

use crate::core::coordinator::{
    ENTER_RETRIES_MAX, ENTER_RETRY_MS, MCP_CONNECT_TIMEOUT_MS, Scrollback,
};
use crate::core::detector::{Detector, Profile, Readiness};
use crate::core::ids::{AgentId, CoordinatorId};
use crate::engine::TerminalInput;
use crate::ports::{Clock, ExitStatus, PtyError, PtyEvent, PtyHost, SpawnSpec};

/// Chunks of output a session's viewers may fall behind by before they are let go.
pub const SESSION_CHUNKS_MAX: usize = 256;
/// How long a first prompt waits for the agent to show its prompt; past it, the prompt is
/// dropped (the user, attached, can type it).
pub const FIRST_PROMPT_WAIT_MS_MAX: u64 = 10 * 60 * 1_000;
/// The longest a first prompt's wait sleeps between two looks at the screen.
pub const FIRST_PROMPT_POLL_MS_MAX: u64 = 250;

/// What a viewer of a session receives after its scrollback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chunk {
    /// Output, as it came.
    Output(Arc<[u8]>),
    /// The agent's process ended, with its exit code if it exited normally.
    Exited(Option<i32>),
}

/// A session as the app lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// Its terminal's id.
    pub agent: AgentId,
    /// The program it runs.
    pub program: String,
    /// What its screen shows (ready, busy, …), while it runs.
    pub readiness: Option<Readiness>,
    /// How it ended, once it has.
    pub exit: Option<ExitStatus>,
    /// Its last line that is not blank.
    pub last_line: String,
}

/// A watch that started: the scrollback, and what comes after it (nothing lost or repeated
/// between the two).
pub struct Attached {
    /// The session's terminal.
    pub agent: AgentId,
    /// The scrollback, oldest byte first.
    pub scrollback: Vec<u8>,
    /// How it ended, if it has (nothing more comes then).
    pub exited: Option<ExitStatus>,
    /// What comes.
    pub live: broadcast::Receiver<Chunk>,
}

struct Session {
    agent: AgentId,
    program: String,
    ring: Scrollback,
    detector: Detector,
    exit: Option<ExitStatus>,
    live: broadcast::Sender<Chunk>,
    /// Its agent's Baton MCP server announced itself (the agent has Baton's tools).
    mcp_connected: bool,
}

/// Every coordinator's session. Cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    pty: Arc<dyn PtyHost>,
    clock: Arc<dyn Clock>,
    table: Arc<Mutex<BTreeMap<CoordinatorId, Session>>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("count", &self.lock().len())
            .finish_non_exhaustive()
    }
}

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The coordinator has a running agent already.
    #[error("the coordinator's agent is running already")]
    Running,
    /// The coordinator has no agent session.
    #[error("the coordinator has no agent session")]
    Missing,
    /// The terminal failed.
    #[error(transparent)]
    Pty(#[from] PtyError),
}

impl Sessions {
    /// No sessions, on `pty`, with `clock` for the detectors.
    #[must_use]
    pub fn new(pty: Arc<dyn PtyHost>, clock: Arc<dyn Clock>) -> Self {
        Sessions {
            pty,
            clock,
            table: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<CoordinatorId, Session>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts `spec` as coordinator `id`'s agent, read with `profile`; an ended session of `id`
    /// is replaced.
    ///
    /// # Errors
    /// Its agent is running already, or it could not start.
    pub async fn start(
        &self,
        id: CoordinatorId,
        spec: SpawnSpec,
        profile: Profile,
        first_prompt: Option<String>,
    ) -> Result<AgentId, SessionError> {
        if self.lock().get(&id).is_some_and(|s| s.exit.is_none()) {
            return Err(SessionError::Running);
        }
        let agent = spec.agent;
        let program = spec.argv.first().cloned().unwrap_or_default();
        let mut detector = Detector::new(profile, self.clock.now());
        detector.resize(spec.cols, spec.rows);
        let session = self.pty.spawn(spec).await?;
        let (live, _) = broadcast::channel(SESSION_CHUNKS_MAX);
        self.lock().insert(
            id,
            Session {
                agent,
                program,
                ring: Scrollback::default(),
                detector,
                exit: None,
                mcp_connected: false,
                live,
            },
        );
        tokio::spawn(self.clone().pump(id, agent, session.events));
        if let Some(prompt) = first_prompt {
            tokio::spawn(self.clone().first_prompt(id, agent, prompt));
        }
        Ok(agent)
    }

    /// Follows the engine's events for what concerns the sessions (a coordinator's MCP server
    /// announcing itself), until the daemon stops.
    pub async fn follow(self, mut events: broadcast::Receiver<crate::engine::AppEvent>) {
        loop {
            match events.recv().await {
                Ok(crate::engine::AppEvent::CoordinatorMcpConnected(id)) => self.mcp_connected(id),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// Coordinator `id`'s MCP server announced itself: its agent has Baton's tools, and its
    /// first prompt may be typed.
    pub fn mcp_connected(&self, id: CoordinatorId) {
        if let Some(session) = self.lock().get_mut(&id) {
            session.mcp_connected = true;
        }
    }

    /// Types `prompt` into `agent` once it waits at its prompt and its MCP server announced
    /// itself, or [`MCP_CONNECT_TIMEOUT_MS`] passed without it (module documentation).
    async fn first_prompt(self, id: CoordinatorId, agent: AgentId, prompt: String) {
        let started = tokio::time::Instant::now();
        let deadline = started + std::time::Duration::from_millis(FIRST_PROMPT_WAIT_MS_MAX);
        let mcp_deadline = started + std::time::Duration::from_millis(MCP_CONNECT_TIMEOUT_MS);
        let bracketed = loop {
            let now = self.clock.now();
            let look = {
                let mut table = self.lock();
                let Some(session) = table
                    .get_mut(&id)
                    .filter(|s| s.agent == agent && s.exit.is_none())
                else {
                    return;
                };
                let mut assessment = session.detector.assess(now);
                // Typed before its tools are in, the prompt reaches the model without them.
                let tools = session.mcp_connected || tokio::time::Instant::now() >= mcp_deadline;
                assessment.idle &= tools;
                if assessment.idle {
                    if !session.mcp_connected {
                        tracing::warn!(coordinator = %id, "typing the first prompt: the agent's Baton MCP server never announced itself");
                    }
                    session.detector.prompt_sent(now, &prompt);
                }
                (assessment, session.detector.bracketed_paste())
            };
            match look {
                (assessment, bracketed) if assessment.idle => break bracketed,
                (assessment, _) => {
                    if tokio::time::Instant::now() >= deadline {
                        tracing::warn!(coordinator = %id, "the first prompt was dropped: the agent never showed its prompt");
                        return;
                    }
                    let wait = assessment
                        .recheck_at
                        .map_or(FIRST_PROMPT_POLL_MS_MAX, |at| {
                            at.0.saturating_sub(now.0)
                                .clamp(1, FIRST_PROMPT_POLL_MS_MAX)
                        });
                    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                }
            }
        };
        if let Err(failed) = crate::engine::type_prompt(&*self.pty, agent, &prompt, bracketed).await
        {
            tracing::warn!(coordinator = %id, ?failed, "the first prompt could not be typed");
            return;
        }
        // As for a sub-task's prompt: Enter again while the agent shows nothing of it.
        for _ in 0..ENTER_RETRIES_MAX {
            tokio::time::sleep(std::time::Duration::from_millis(ENTER_RETRY_MS)).await;
            let taken = self
                .lock()
                .get(&id)
                .filter(|s| s.agent == agent && s.exit.is_none())
                .map(|s| s.detector.prompt_taken());
            if taken != Some(false) || self.pty.write(agent, b"\r").await.is_err() {
                return;
            }
            tracing::info!(coordinator = %id, "Enter pressed again: the agent showed nothing of its first prompt");
        }
    }

    async fn pump(
        self,
        id: CoordinatorId,
        agent: AgentId,
        mut events: tokio::sync::mpsc::Receiver<PtyEvent>,
    ) {
        while let Some(event) = events.recv().await {
            let mut replies = Vec::new();
            {
                let mut table = self.lock();
                let Some(session) = table.get_mut(&id).filter(|s| s.agent == agent) else {
                    return;
                };
                match event {
                    PtyEvent::Output(bytes) => {
                        session.ring.push(&bytes);
                        session.detector.feed(self.clock.now(), &bytes);
                        while let Some(query) = session.detector.poll_query() {
                            replies.push(query.reply());
                        }
                        let _ = session.live.send(Chunk::Output(bytes.into()));
                    }
                    PtyEvent::Exited(status) => {
                        session.exit = Some(status);
                        let _ = session.live.send(Chunk::Exited(status.code));
                    }
                }
            }
            for reply in replies {
                let _ = self.pty.write(agent, reply).await;
            }
        }
    }

    /// Ends coordinator `id`'s agent, if it runs, and forgets the session.
    pub async fn stop(&self, id: CoordinatorId) {
        let running = self
            .lock()
            .remove(&id)
            .filter(|s| s.exit.is_none())
            .map(|s| s.agent);
        if let Some(agent) = running {
            let _ = self.pty.kill(agent).await;
        }
    }

    /// Coordinator `id`'s session, if it has one.
    #[must_use]
    pub fn info(&self, id: CoordinatorId) -> Option<SessionInfo> {
        let now = self.clock.now();
        self.lock().get(&id).map(|s| SessionInfo {
            agent: s.agent,
            program: s.program.clone(),
            readiness: s.exit.is_none().then(|| s.detector.assess(now).readiness),
            exit: s.exit,
            last_line: s.ring.last_line(),
        })
    }

    /// Starts watching coordinator `id`'s session.
    ///
    /// # Errors
    /// It has none.
    pub fn attach(&self, id: CoordinatorId) -> Result<Attached, SessionError> {
        let table = self.lock();
        let session = table.get(&id).ok_or(SessionError::Missing)?;
        Ok(Attached {
            agent: session.agent,
            scrollback: session.ring.to_vec(),
            exited: session.exit,
            live: session.live.subscribe(),
        })
    }

    /// Types into, resizes or ends coordinator `id`'s agent.
    ///
    /// # Errors
    /// It has no session, or the terminal failed.
    pub async fn input(&self, id: CoordinatorId, input: TerminalInput) -> Result<(), SessionError> {
        let agent = self
            .lock()
            .get(&id)
            .map(|s| s.agent)
            .ok_or(SessionError::Missing)?;
        match input {
            TerminalInput::Write(bytes) => self.pty.write(agent, &bytes).await?,
            TerminalInput::Resize { cols, rows } => {
                self.pty.resize(agent, cols, rows).await?;
                if let Some(session) = self.lock().get_mut(&id) {
                    session.detector.resize(cols, rows);
                }
            }
            TerminalInput::Kill => self.pty.kill(agent).await?,
        }
        Ok(())
    }
}
