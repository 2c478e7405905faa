//! The coordinators' own agents: one terminal session per coordinator, started in its project
//! with its MCP config (`baton coordinator start`), that the app and `baton attach` watch and
//! type into, and the WebSocket's clients (the phone) watch. They are not tasks: no actor owns
//! them, so they live here, beside the actors, and do what an actor does for its tasks' agents:
//! hand their output to WebSocket viewers without waiting, then tell the [`AgentFeed`] of what
//! the phone's list shows of them (started, its state, its activity step, ended).
//!
//! Each session keeps a scrollback ring (`core::coordinator::SCROLLBACK_BYTES_MAX`) and a prompt
//! detector of its agent's kind, which answers the terminal queries the agent makes (Claude Code
//! stalls at start without the answers) and tells whether it waits at its prompt. Viewers get
//! the ring, then what comes: the app's attach through a broadcast of [`SESSION_CHUNKS_MAX`]
//! chunks, WebSocket viewers on their own bounded queues; a viewer that falls behind is told so
//! and let go, never slowing the agent. A lock guards the table, never held across an await.
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
use crate::core::state::{AgentState, Evidence, Verdict};
use crate::core::time::Millis;
use crate::engine::{
    AgentEvent, AgentFeed, LIST_ACTIVITY_STEP_MS, TerminalInput, Viewer, Watched, Watching,
    hand_out,
};
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
    /// When its screen last changed.
    pub last_activity: Millis,
    /// What it is doing, as a task's agent is, with the evidence that decided it.
    pub state: Verdict,
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
    /// Its terminal's width.
    cols: u16,
    ring: Scrollback,
    detector: Detector,
    /// What is known of its agent's state.
    evidence: Evidence,
    exit: Option<ExitStatus>,
    live: broadcast::Sender<Chunk>,
    /// Its agent's Baton MCP server announced itself (the agent has Baton's tools).
    mcp_connected: bool,
    /// What the phone's list last showed of it: a change is told to the feed.
    shown: Shown,
    /// The WebSocket connections watching it, handed its output as a task's viewers are (at
    /// most one per connection, so bounded by `core::ws::WS_CONNECTIONS_MAX`).
    viewers: Vec<Viewer>,
}

/// What the phone's list shows of a session that can change while it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shown {
    state: AgentState,
    /// The last activity, in steps of [`LIST_ACTIVITY_STEP_MS`].
    activity_step: u64,
}

impl Session {
    /// Its agent's state at `now`, its screen's reading taken in first.
    fn observe(&mut self, now: Millis) -> Verdict {
        self.detector.observe_into(now, &mut self.evidence);
        crate::core::state::decide(&self.evidence, now)
    }

    /// When its state may change with no new output; `None` once it ended.
    fn recheck_at(&self, now: Millis) -> Option<Millis> {
        if self.exit.is_some() {
            return None;
        }
        let verdict = crate::core::state::decide(&self.evidence, now);
        [self.detector.assess(now).recheck_at, verdict.recheck_at]
            .into_iter()
            .flatten()
            .min()
    }

    fn shown(&mut self, now: Millis) -> Shown {
        Shown {
            state: self.observe(now).state,
            activity_step: self.detector.last_activity().0 / LIST_ACTIVITY_STEP_MS,
        }
    }
}

async fn sleep_or_never(wait: Option<std::time::Duration>) {
    match wait {
        Some(wait) => tokio::time::sleep(wait).await,
        None => std::future::pending().await,
    }
}

/// Every coordinator's session. Cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    pty: Arc<dyn PtyHost>,
    clock: Arc<dyn Clock>,
    feed: AgentFeed,
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
    /// No sessions, on `pty`, with `clock` for the detectors, telling `feed` (the engine's
    /// [`crate::engine::Engine::agent_feed`]) what the phone's list shows of them.
    #[must_use]
    pub fn new(pty: Arc<dyn PtyHost>, clock: Arc<dyn Clock>, feed: AgentFeed) -> Self {
        Sessions {
            pty,
            clock,
            feed,
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
        let cols = spec.cols;
        let program = spec.argv.first().cloned().unwrap_or_default();
        let now = self.clock.now();
        let mut detector = Detector::new(profile, now);
        detector.resize(spec.cols, spec.rows);
        let session = self.pty.spawn(spec).await?;
        let (live, _) = broadcast::channel(SESSION_CHUNKS_MAX);
        let mut session_state = Session {
            agent,
            program,
            cols,
            ring: Scrollback::default(),
            detector,
            evidence: Evidence::started(now),
            exit: None,
            mcp_connected: false,
            live,
            shown: Shown {
                state: AgentState::Starting,
                activity_step: 0,
            },
            viewers: Vec::new(),
        };
        session_state.shown = session_state.shown(now);
        self.lock().insert(id, session_state);
        self.feed.send(AgentEvent::ListChanged);
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
        let (bracketed, text) = loop {
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
                if !assessment.idle {
                    (assessment, None)
                } else {
                    if !session.mcp_connected {
                        tracing::warn!(coordinator = %id, "typing the first prompt: the agent's Baton MCP server never announced itself");
                    }
                    // Typed as a sub-task's prompt is: no control character, and no newline
                    // that would submit each line on its own without bracketed paste.
                    let bracketed = session.detector.bracketed_paste();
                    let text = crate::core::coordinator::text_to_type(&prompt, bracketed);
                    session.detector.prompt_sent(now, &text);
                    session.evidence.prompt_sent(now);
                    (assessment, Some((bracketed, text)))
                }
            };
            match look {
                (_, Some(typed)) => break typed,
                (assessment, None) => {
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
        if let Err(failed) = crate::engine::type_prompt(&*self.pty, agent, &text, bracketed).await {
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
        // When the state may change with no new output (a prompt becoming stable, a still
        // screen reaching its limit): looked at again then.
        let mut recheck: Option<Millis> = None;
        loop {
            let wait = recheck.map(|at| {
                std::time::Duration::from_millis(at.0.saturating_sub(self.clock.now().0).max(1))
            });
            let event = tokio::select! {
                biased;
                event = events.recv() => match event {
                    Some(event) => Some(event),
                    None => return,
                },
                () = sleep_or_never(wait) => None,
            };
            let mut replies = Vec::new();
            let (changed, exited) = {
                let mut table = self.lock();
                let Some(session) = table.get_mut(&id).filter(|s| s.agent == agent) else {
                    return;
                };
                let mut exited = None;
                match event {
                    None => {}
                    Some(event) => match event {
                        PtyEvent::Output(bytes) => {
                            session.ring.push(&bytes);
                            session.detector.feed(self.clock.now(), &bytes);
                            while let Some(query) = session.detector.poll_query() {
                                replies.push(query.reply());
                            }
                            let bytes: Arc<[u8]> = bytes.into();
                            hand_out(&mut session.viewers, &Watched::Output(agent, bytes.clone()));
                            let _ = session.live.send(Chunk::Output(bytes));
                        }
                        PtyEvent::Exited(status) => {
                            session.exit = Some(status);
                            session.evidence.exited(self.clock.now());
                            exited = Some(status.code);
                            hand_out(&mut session.viewers, &Watched::Exited(agent, status.code));
                            session.viewers.clear();
                            let _ = session.live.send(Chunk::Exited(status.code));
                        }
                    },
                }
                let now = self.clock.now();
                let shown = session.shown(now);
                let changed = shown != session.shown;
                session.shown = shown;
                recheck = session.recheck_at(now);
                (changed, exited)
            };
            // As an actor tells of a task's agent: the exit after its last output (handed to the
            // viewers above, under the lock), then the list.
            if let Some(code) = exited {
                self.feed.send(AgentEvent::Exited { agent, code });
            }
            if changed {
                self.feed.send(AgentEvent::ListChanged);
            }
            for reply in replies {
                let _ = self.pty.write(agent, reply).await;
            }
        }
    }

    /// Ends coordinator `id`'s agent, if it runs, and forgets the session.
    pub async fn stop(&self, id: CoordinatorId) {
        let Some(session) = self.lock().remove(&id) else {
            return;
        };
        if session.exit.is_none() {
            let _ = self.pty.kill(session.agent).await;
        }
        self.feed.send(AgentEvent::ListChanged);
    }

    /// Coordinator `id`'s session, if it has one.
    #[must_use]
    pub fn info(&self, id: CoordinatorId) -> Option<SessionInfo> {
        let now = self.clock.now();
        self.lock().get_mut(&id).map(|s| SessionInfo {
            agent: s.agent,
            program: s.program.clone(),
            readiness: s.exit.is_none().then(|| s.detector.readiness()),
            exit: s.exit,
            last_line: s.ring.last_line(),
            last_activity: s.detector.last_activity(),
            state: s.observe(now),
        })
    }

    /// Starts handing the output of the session whose terminal is `agent` to `viewer`, as an
    /// actor does a task's agent's: its scrollback, taken in the same step, and whether it
    /// ended (then no viewer is added). `None` when no session has that terminal.
    #[must_use]
    pub fn watch(&self, agent: AgentId, viewer: Viewer) -> Option<Watching> {
        let mut table = self.lock();
        let session = table.values_mut().find(|session| session.agent == agent)?;
        if session.exit.is_none() {
            session.viewers.retain(|v| v.id != viewer.id);
            session.viewers.push(viewer);
        }
        Some(Watching {
            scrollback: session.ring.to_vec(),
            cols: session.cols,
            exited: session.exit.map(|exit| exit.code),
        })
    }

    /// Stops handing `agent`'s output to viewer `viewer`.
    pub fn unwatch(&self, agent: AgentId, viewer: u64) {
        if let Some(session) = self.lock().values_mut().find(|s| s.agent == agent) {
            session.viewers.retain(|v| v.id != viewer);
        }
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
                    session.cols = cols;
                    session.detector.resize(cols, rows);
                }
            }
            TerminalInput::Kill => self.pty.kill(agent).await?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a step that fails is the test failing

    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::broadcast;

    use super::Sessions;
    use crate::agents::frames::{Frame, bytes};
    use crate::core::detector::Profile;
    use crate::core::ids::{AgentId, CoordinatorId, Uuid};
    use crate::core::state::AgentState;
    use crate::core::time::Millis;
    use crate::engine::tests::viewer;
    use crate::engine::{AgentEvent, AgentFeed, Watched};
    use crate::ports::fakes::{FakeClock, FakePty};
    use crate::ports::{ExitStatus, SpawnSpec};

    /// Longest a test waits for the pump to tell something (simulated time: a missing event
    /// fails at once).
    const TOLD_WAIT: Duration = Duration::from_secs(60);

    fn spec(agent: AgentId) -> SpawnSpec {
        SpawnSpec {
            agent,
            argv: vec!["claude".to_owned()],
            env: Vec::new(),
            cwd: "/project".into(),
            cols: 100,
            rows: 30,
        }
    }

    async fn told(feed: &mut broadcast::Receiver<AgentEvent>) -> AgentEvent {
        tokio::time::timeout(TOLD_WAIT, feed.recv())
            .await
            .expect("the feed was told nothing")
            .unwrap()
    }

    /// No sessions yet, on a fake terminal host, and a listener to their feed.
    fn world() -> (Arc<FakePty>, Sessions, broadcast::Receiver<AgentEvent>) {
        let pty = Arc::new(FakePty::default());
        let feed = AgentFeed::new();
        let events = feed.subscribe();
        let clock = Arc::new(FakeClock::starting_at(Millis(1_000)));
        (pty.clone(), Sessions::new(pty, clock, feed), events)
    }

    /// A coordinator's agent started (Claude's kind): the coordinator and the agent.
    async fn started(sessions: &Sessions) -> (CoordinatorId, AgentId) {
        let (id, agent) = (
            CoordinatorId(Uuid::from_random([1; 16])),
            AgentId(Uuid::from_random([2; 16])),
        );
        sessions
            .start(id, spec(agent), Profile::Claude, None)
            .await
            .unwrap();
        (id, agent)
    }

    #[tokio::test(start_paused = true)]
    async fn a_coordinators_agent_is_watched_and_told_to_the_feed_as_a_tasks_agent_is() {
        let (pty, sessions, mut events) = world();
        let (id, agent) = started(&sessions).await;
        assert_eq!(told(&mut events).await, AgentEvent::ListChanged, "started");
        let stranger = AgentId(Uuid::from_random([3; 16]));
        assert!(sessions.watch(stranger, viewer(1, 8).0).is_none());

        // Its prompt: once it stood, the state it is seen in changes, so the list is told.
        let ready = bytes(Profile::Claude, Frame::Ready);
        pty.print(agent, &ready).await.unwrap();
        assert_eq!(
            told(&mut events).await,
            AgentEvent::ListChanged,
            "at its prompt"
        );
        let info = sessions.info(id).unwrap();
        assert_eq!(info.state.state, AgentState::WaitingForInput);
        assert_eq!(info.last_line, "❯ ");

        // Watched: its scrollback, then its output; a viewer that falls behind is let go.
        let (watcher, mut watched) = viewer(1, 8);
        let (slow, _never_read) = viewer(2, 1);
        let slow_overflowed = slow.overflowed.clone();
        let watching = sessions.watch(agent, watcher).unwrap();
        assert_eq!(
            (watching.scrollback, watching.cols, watching.exited),
            (ready.clone(), 100, None)
        );
        assert!(sessions.watch(agent, slow).is_some());
        // The same screen again changes nothing the list shows: nothing is told.
        for _ in 0..2 {
            pty.print(agent, &ready).await.unwrap();
        }
        for _ in 0..2 {
            let next = tokio::time::timeout(TOLD_WAIT, watched.recv())
                .await
                .unwrap();
            assert_eq!(next, Some(Watched::Output(agent, ready.clone().into())));
        }
        tokio::time::timeout(TOLD_WAIT, slow_overflowed.notified())
            .await
            .expect("the slow viewer was not let go");
        assert!(
            events.is_empty(),
            "told of a screen that changed nothing listed"
        );

        // Its end: handed to its viewer before the feed hears of it, then the list.
        let status = ExitStatus {
            code: Some(3),
            signal: None,
        };
        pty.exit(agent, status).await.unwrap();
        let exited = AgentEvent::Exited {
            agent,
            code: Some(3),
        };
        assert_eq!(told(&mut events).await, exited);
        assert_eq!(watched.try_recv(), Ok(Watched::Exited(agent, Some(3))));
        assert_eq!(told(&mut events).await, AgentEvent::ListChanged);
        assert_eq!(sessions.info(id).unwrap().state.state, AgentState::Exited);
        // Watched after its end: the scrollback and the exit, and no viewer kept.
        let (late, mut late_watched) = viewer(3, 8);
        let watching = sessions.watch(agent, late).unwrap();
        assert_eq!(watching.exited, Some(Some(3)));
        assert!(late_watched.try_recv().is_err());

        // Forgotten once stopped, told once; a second stop has nothing to tell.
        sessions.stop(id).await;
        assert_eq!(told(&mut events).await, AgentEvent::ListChanged, "stopped");
        assert!(sessions.watch(agent, viewer(4, 8).0).is_none());
        sessions.stop(id).await;
        assert!(events.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_coordinators_first_prompt_is_typed_as_a_sub_tasks_is() {
        let (pty, sessions, _events) = world();
        let (id, agent) = (
            CoordinatorId(Uuid::from_random([1; 16])),
            AgentId(Uuid::from_random([2; 16])),
        );
        let prompt = "You coordinate.\nSplit the work\x07 in two\x1b[201~".to_owned();
        sessions
            .start(id, spec(agent), Profile::Claude, Some(prompt))
            .await
            .unwrap();
        // An agent without bracketed paste, at its prompt, its MCP server in.
        pty.print(agent, &bytes(Profile::Claude, Frame::Ready))
            .await
            .unwrap();
        sessions.mcp_connected(id);
        tokio::time::sleep(std::time::Duration::from_millis(10_000)).await;
        let typed = String::from_utf8(pty.input(agent)).unwrap();
        assert!(
            typed.starts_with("You coordinate. Split the work  in two [201~\r"),
            "one line, no control character: {typed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_unwatched_viewer_gets_nothing_more() {
        let (pty, sessions, _events) = world();
        let (_, agent) = started(&sessions).await;
        let (watcher, mut watched) = viewer(7, 8);
        let _ = sessions.watch(agent, watcher).unwrap();
        pty.print(agent, b"one").await.unwrap();
        let next = tokio::time::timeout(TOLD_WAIT, watched.recv())
            .await
            .unwrap();
        assert_eq!(next, Some(Watched::Output(agent, b"one".to_vec().into())));
        sessions.unwatch(agent, 7);
        pty.print(agent, b"two").await.unwrap();
        // The session let go of the viewer's queue: it ends, without "two".
        assert_eq!(watched.recv().await, None);
    }
}
