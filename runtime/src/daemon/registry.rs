//! The daemon's coordinators: registration, persistence, restore, deregistration, over the
//! ports only (the simulator can run it as the daemon does).
//!
//! One task owns the [`Engine`], the API's [`Directory`] and what each coordinator did to its
//! project's `.mcp.json`; the app channel reaches it with [`Request`]s on a bounded channel, and
//! so do the coordinators' actors, whose saves ([`RegistryJournal`], the engine's `Journal`)
//! bring their task records. Every change that matters is written to the state file
//! (atomically, 0600) before it is answered: a registration that cannot be persisted is undone
//! and refused, and the engine answers a created, closed or signalled task once its save is
//! durable.
//!
//! A coordinator's `.mcp.json` entry is there while the daemon runs: merged at registration and
//! again at restore (the API's port may have changed), taken out at deregistration and at
//! shutdown, the user's file given back exactly ([`crate::agents::mcp_json`]). The entry names
//! no secret: the server reads the coordinator's token from a 0600 credentials file in the
//! daemon's config directory. A crash leaves the entry in place and its registration in the
//! state file, so the next start undoes it first.

use std::path::{Path, PathBuf};

use tokio::sync::{mpsc, oneshot};

use super::state::{self, CoordinatorState, McpJsonState, State};
use super::wiring::Host;
use crate::agents::mcp_json::{self, McpJsonError, Undo};
use crate::agents::{McpLaunch, McpServer};
use crate::api::Directory;
use crate::api::latest::Publisher;
use crate::core::auth::Secret;
use crate::core::coordinator::Records;
use crate::core::ids::{AgentId, CoordinatorId};
use crate::core::notify::{NOTIFICATION_DELAY_MS_MAX, NOTIFICATION_DELAY_MS_MIN};
use crate::engine::{
    AppEvent, CoordinatorHandle, CoordinatorSettings, Engine, OwnAgentStart, Ports,
};
use crate::ports::{BoxFuture, FileMode, Journal, JournalError, SpawnSpec};

/// Requests waiting for the registry (the app channel waits beyond this).
pub const REQUESTS_MAX: usize = 64;
/// Name of a project's MCP config, in its root.
pub const MCP_JSON: &str = ".mcp.json";
/// Longest agent command or argument accepted at registration, in bytes.
pub const AGENT_ARG_BYTES_MAX: usize = 4_096;
/// Most agent arguments accepted at registration.
pub const AGENT_ARGS_MAX: usize = 64;
/// Most coordinators registered at once (each runs its own agents; past this a machine is
/// overcommitted long before the daemon is).
pub const COORDINATORS_MAX: usize = 16;
/// Largest state file written, in bytes: what the next start can read back
/// (`adapters::files::FILE_READ_BYTES_MAX`); a change that would pass it is refused.
pub const STATE_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Where the registry keeps its files.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The state directory, which holds the rest.
    pub state_dir: PathBuf,
    /// The state file.
    pub state_file: PathBuf,
    /// MCP configs: the coordinators' credentials files and the sub-tasks' configs.
    pub config_dir: PathBuf,
}

impl Layout {
    /// The files of a state directory: `state.json` and `mcp/`.
    #[must_use]
    pub fn in_dir(state_dir: &Path) -> Self {
        Layout {
            state_dir: state_dir.to_owned(),
            state_file: state_dir.join("state.json"),
            config_dir: state_dir.join("mcp"),
        }
    }

    /// A coordinator's credentials file.
    #[must_use]
    pub fn coordinator_config(&self, id: CoordinatorId) -> PathBuf {
        self.config_dir.join(format!("baton-coordinator-{id}.json"))
    }
}

/// A coordinator to register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterRequest {
    /// The repository its sub-tasks branch from (absolute).
    pub project_root: PathBuf,
    /// The agent its sub-tasks run.
    pub agent: String,
    /// That agent's arguments.
    pub args: Vec<String>,
    /// Whether sub-tasks get their agent's skip-permission flags.
    pub skip_permissions: bool,
    /// How long a staged notification batch waits before it is typed (`None`: the default,
    /// [`crate::core::notify::NOTIFICATION_DELAY_MS_DEFAULT`]).
    pub notification_delay_ms: Option<u64>,
}

/// A registered coordinator, as the app learns of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoordinatorInfo {
    /// Its id.
    pub id: CoordinatorId,
    /// Its repository.
    pub project_root: PathBuf,
    /// Its sub-tasks' agent.
    pub agent: String,
    /// The MCP config its own agent is started with (`--mcp-config`; 0600, holds its token).
    pub mcp_config: PathBuf,
    /// The project's `.mcp.json` Baton's entry is in.
    pub mcp_json: PathBuf,
    /// How many tasks it has.
    pub tasks: usize,
}

/// A registry request that failed; the text is for the user.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The project root is no git repository Baton can use.
    #[error("{root} is not a usable git repository: {reason}")]
    NotARepo {
        /// The root.
        root: PathBuf,
        /// Why.
        reason: String,
    },
    /// The project's `.mcp.json` cannot be merged into.
    #[error(transparent)]
    McpJson(#[from] McpJsonError),
    /// A file could not be read or written.
    #[error("{0}")]
    Files(String),
    /// A file Baton would change is a symbolic link (or leaves its directory): refused, nothing
    /// changed.
    #[error("{0}")]
    Confined(String),
    /// No such coordinator.
    #[error("Coordinator not found: {0}")]
    NotFound(CoordinatorId),
    /// The registry has stopped (the daemon is shutting down).
    #[error("the daemon is shutting down")]
    Stopped,
    /// The coordinator's own agent could not start, or is running already.
    #[error("the coordinator's agent: {0}")]
    Agent(String),
}

/// How to start a coordinator's own agent, in its project, with its MCP config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentRequest {
    /// The program (`claude`, `codex`, `gemini`, the `baton` binary for the demo agent, …).
    pub command: String,
    /// Its arguments (Baton adds how it finds its MCP server).
    pub args: Vec<String>,
    /// The user's first prompt, typed once the agent shows its prompt, the coordinator
    /// preamble before it.
    pub prompt: Option<String>,
}

/// A request to the registry.
#[derive(Debug)]
pub enum Request {
    /// Registers a coordinator.
    Register(
        RegisterRequest,
        oneshot::Sender<Result<CoordinatorInfo, RegistryError>>,
    ),
    /// Deregisters one (its tasks stay as orphans until closed).
    Deregister(CoordinatorId, oneshot::Sender<Result<(), RegistryError>>),
    /// The registered coordinators.
    List(oneshot::Sender<Vec<CoordinatorInfo>>),
    /// Turns phone access on with this token, or off (the token then opens nothing).
    SetMobile(Option<Secret>, oneshot::Sender<()>),
    /// Gives a registered coordinator a new token: written to its credentials file (where its
    /// MCP servers read it again), persisted, and the old one opens nothing.
    Rotate(
        CoordinatorId,
        oneshot::Sender<Result<CoordinatorInfo, RegistryError>>,
    ),
    /// Starts a registered coordinator's own agent.
    StartAgent(
        CoordinatorId,
        AgentRequest,
        oneshot::Sender<Result<AgentId, RegistryError>>,
    ),
    /// Takes every `.mcp.json` entry out, persists, and stops.
    Shutdown(oneshot::Sender<()>),
    /// A coordinator's task records (see [`Journal`]).
    Save {
        /// The coordinator.
        id: CoordinatorId,
        /// The save's sequence number.
        seq: u64,
        /// Its records.
        records: Records,
        /// Answered once written.
        reply: oneshot::Sender<Result<(), JournalError>>,
    },
}

/// The registry's request channel, made before the engine (whose journal sends on it).
#[must_use]
pub fn channel() -> (mpsc::Sender<Request>, mpsc::Receiver<Request>) {
    mpsc::channel(REQUESTS_MAX)
}

/// The engine's journal: saves go to the registry, which writes the state file.
#[derive(Clone, Debug)]
pub struct RegistryJournal(pub mpsc::Sender<Request>);

impl Journal for RegistryJournal {
    fn save(
        &self,
        id: CoordinatorId,
        seq: u64,
        records: Records,
    ) -> BoxFuture<'_, Result<(), JournalError>> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            let stopped = || JournalError::Stopped;
            self.0
                .send(Request::Save {
                    id,
                    seq,
                    records,
                    reply,
                })
                .await
                .map_err(|_| stopped())?;
            answer.await.map_err(|_| stopped())?
        })
    }
}

/// The way in: requests to the registry's task.
#[derive(Clone, Debug)]
pub struct RegistryDoor(mpsc::Sender<Request>);

impl RegistryDoor {
    async fn ask<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, RegistryError> {
        let (reply, answer) = oneshot::channel();
        self.0
            .send(request(reply))
            .await
            .map_err(|_| RegistryError::Stopped)?;
        answer.await.map_err(|_| RegistryError::Stopped)
    }

    /// See [`Request::Register`].
    ///
    /// # Errors
    /// See [`RegistryError`].
    pub async fn register(
        &self,
        request: RegisterRequest,
    ) -> Result<CoordinatorInfo, RegistryError> {
        self.ask(|reply| Request::Register(request, reply)).await?
    }

    /// See [`Request::Deregister`].
    ///
    /// # Errors
    /// See [`RegistryError`].
    pub async fn deregister(&self, id: CoordinatorId) -> Result<(), RegistryError> {
        self.ask(|reply| Request::Deregister(id, reply)).await?
    }

    /// See [`Request::List`].
    ///
    /// # Errors
    /// The registry has stopped.
    pub async fn list(&self) -> Result<Vec<CoordinatorInfo>, RegistryError> {
        self.ask(Request::List).await
    }

    /// See [`Request::SetMobile`].
    ///
    /// # Errors
    /// The registry has stopped.
    pub async fn set_mobile(&self, token: Option<Secret>) -> Result<(), RegistryError> {
        self.ask(|reply| Request::SetMobile(token, reply)).await
    }

    /// See [`Request::Rotate`].
    ///
    /// # Errors
    /// No such registered coordinator, or its new token could not be written or persisted (the
    /// old one then stays in force).
    pub async fn rotate(&self, id: CoordinatorId) -> Result<CoordinatorInfo, RegistryError> {
        self.ask(|reply| Request::Rotate(id, reply)).await?
    }

    /// See [`Request::StartAgent`].
    ///
    /// # Errors
    /// See [`RegistryError`].
    pub async fn start_agent(
        &self,
        id: CoordinatorId,
        request: AgentRequest,
    ) -> Result<AgentId, RegistryError> {
        self.ask(|reply| Request::StartAgent(id, request, reply))
            .await?
    }

    /// See [`Request::Shutdown`]; resolves once it is done.
    pub async fn shutdown(&self) {
        let _ = self.ask(Request::Shutdown).await;
    }
}

struct Entry {
    token: Secret,
    settings: CoordinatorSettings,
    mcp_json: Option<McpJsonState>,
    /// Its actor while registered; `None` once deregistered, when the entry stays (its tasks
    /// orphans, its token no longer accepted) while tasks remain.
    handle: Option<CoordinatorHandle>,
    /// Its records, as last saved.
    records: Records,
    /// The sequence number of that save.
    seq: u64,
}

impl Entry {
    fn is_registered(&self) -> bool {
        self.handle.is_some()
    }
}

/// What a start found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Coordinators restored.
    pub coordinators: usize,
    /// Their tasks.
    pub tasks: usize,
    /// `.mcp.json` files given back to their users (left behind by a crash).
    pub mcp_json_restored: usize,
    /// Stale files removed from the config directory.
    pub stale_configs_removed: usize,
}

/// The registry's task. See the module documentation.
pub struct Registry {
    ports: Ports,
    layout: Layout,
    launch: McpLaunch,
    /// See [`Host::root_outside_a_sandbox`].
    root_outside_a_sandbox: bool,
    engine: Engine,
    directory: Directory,
    publisher: Publisher<Directory>,
    /// Registration order.
    entries: Vec<(CoordinatorId, Entry)>,
}

impl Registry {
    /// Restores `state` (undoing what a crash left in users' `.mcp.json` files, removing stale
    /// configs), persists the result, and returns the registry with what it did. The directory
    /// is published through `publisher` (which keeps the given one's other credentials).
    ///
    /// # Errors
    /// The state file cannot be written.
    pub async fn start(
        ports: Ports,
        host: Host,
        state: State,
        (engine, directory, publisher): (Engine, Directory, Publisher<Directory>),
    ) -> Result<(Self, Restored), RegistryError> {
        let Host {
            layout,
            launch,
            root_outside_a_sandbox,
        } = host;
        let mut registry = Registry {
            ports,
            layout,
            launch,
            root_outside_a_sandbox,
            engine,
            directory,
            publisher,
            entries: Vec::new(),
        };
        let mut restored = Restored::default();
        let mut wiring = Vec::new();
        for coordinator in state.coordinators {
            if let Some(left) = &coordinator.mcp_json
                && registry.undo_mcp_json(left).await
            {
                restored.mcp_json_restored += 1;
            }
            if !coordinator.registered && coordinator.records.tasks.is_empty() {
                continue;
            }
            restored.coordinators += 1;
            restored.tasks += coordinator.records.tasks.len();
            wiring.extend(registry.restore(coordinator).await);
        }
        restored.stale_configs_removed = registry.sweep_configs().await;
        // As at registration: the undo is recorded before the change is made.
        registry.write_state().await?;
        let mut unwired = false;
        for (id, state, bytes) in wiring {
            if let Err(error) = registry.apply_wire(&state, &bytes).await {
                tracing::warn!(coordinator = %id, %error, "the coordinator's MCP entry could not be written again");
                if let Some((_, entry)) = registry.entries.iter_mut().find(|(k, _)| *k == id) {
                    entry.mcp_json = None;
                    unwired = true;
                }
            }
        }
        if unwired {
            registry.write_state().await?;
        }
        registry.publish();
        Ok((registry, restored))
    }

    /// Runs the registry on `requests` (from [`channel`]) until it is shut down or every sender
    /// is gone.
    pub fn spawn(
        self,
        (door, requests): (mpsc::Sender<Request>, mpsc::Receiver<Request>),
    ) -> (RegistryDoor, tokio::task::JoinHandle<()>) {
        let task = tokio::spawn(self.run(requests));
        (RegistryDoor(door), task)
    }

    async fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        while let Some(request) = requests.recv().await {
            if let Request::Shutdown(reply) = request {
                self.shutdown().await;
                let _ = reply.send(());
                return;
            }
            self.handle(request).await;
        }
    }

    async fn handle(&mut self, request: Request) {
        match request {
            Request::Register(request, reply) => {
                let _ = reply.send(self.register(request).await);
            }
            Request::Deregister(id, reply) => {
                let _ = reply.send(self.deregister(id).await);
            }
            Request::List(reply) => {
                let mut list = Vec::new();
                for (id, entry) in &self.entries {
                    if let Some(handle) = &entry.handle {
                        let tasks = handle.list_tasks().await.map_or(0, |t| t.len());
                        list.push(self.info(*id, entry, tasks));
                    }
                }
                let _ = reply.send(list);
            }
            Request::SetMobile(token, reply) => {
                self.directory.credentials.set_mobile(token);
                self.publish();
                let _ = reply.send(());
            }
            Request::StartAgent(id, request, reply) => {
                let _ = reply.send(self.start_agent(id, request).await);
            }
            Request::Rotate(id, reply) => {
                let _ = reply.send(self.rotate(id).await);
            }
            Request::Save {
                id,
                seq,
                records,
                reply,
            } => {
                let entry = self.entries.iter_mut().find(|(known, _)| *known == id);
                let result = match entry {
                    // Deregistered meanwhile, or overtaken by a newer save: nothing to keep.
                    None => Ok(()),
                    Some((_, entry)) if entry.seq >= seq => Ok(()),
                    Some((_, entry)) => {
                        entry.records = records;
                        entry.seq = seq;
                        let let_go = !entry.is_registered() && entry.records.tasks.is_empty();
                        if let_go {
                            // An orphaned coordinator whose last task is gone is let go.
                            self.entries.retain(|(known, _)| *known != id);
                        }
                        let written = self
                            .write_state()
                            .await
                            .map_err(|e| JournalError::Failed(e.to_string()));
                        if let_go {
                            self.engine.prune_orphans().await;
                            self.publish();
                        }
                        written
                    }
                };
                let _ = reply.send(result);
            }
            Request::Shutdown(_) => {}
        }
    }

    fn info(&self, id: CoordinatorId, entry: &Entry, tasks: usize) -> CoordinatorInfo {
        CoordinatorInfo {
            id,
            project_root: entry.settings.project_root.clone(),
            agent: entry.settings.spawn.command.clone(),
            mcp_config: self.layout.coordinator_config(id),
            mcp_json: entry.settings.project_root.join(MCP_JSON),
            tasks,
        }
    }

    async fn register(
        &mut self,
        request: RegisterRequest,
    ) -> Result<CoordinatorInfo, RegistryError> {
        validate(&request)?;
        let root = request.project_root.clone();
        self.main_branch(&root).await?;
        if self
            .entries
            .iter()
            .any(|(_, e)| e.is_registered() && e.settings.project_root == root)
        {
            return Err(RegistryError::Invalid(format!(
                "a coordinator is already registered on {}",
                root.display()
            )));
        }
        if self
            .entries
            .iter()
            .filter(|(_, e)| e.is_registered())
            .count()
            >= COORDINATORS_MAX
        {
            return Err(RegistryError::Invalid(format!(
                "at most {COORDINATORS_MAX} coordinators can be registered at once"
            )));
        }
        if request.skip_permissions
            && let Some(why) = crate::agents::AgentKind::from_command(&request.agent)
                .skip_permissions_refused(self.root_outside_a_sandbox)
        {
            return Err(RegistryError::Invalid(why));
        }
        let id = CoordinatorId::from_random(self.random());
        let token = Secret::from_random(self.random());
        let mut settings = CoordinatorSettings::new(root, request.agent, &self.layout.config_dir);
        settings.spawn.args = request.args;
        settings.skip_permissions = request.skip_permissions;
        if let Some(delay_ms) = request.notification_delay_ms {
            settings.notification_delay_ms = delay_ms;
        }
        settings.mcp = self.launch.clone();
        let plan = self.plan_wire(id, &token, &settings).await?;
        let handle = Some(self.engine.register(id, settings.clone()));
        self.entries.push((
            id,
            Entry {
                token,
                settings,
                mcp_json: plan.as_ref().map(|(state, _)| state.clone()),
                handle,
                records: Records::default(),
                seq: 0,
            },
        ));
        // The state learns how to undo the .mcp.json change before the change is made: a
        // crash in between leaves nothing the next start cannot undo.
        let done = match self.write_state().await {
            Ok(()) => match &plan {
                Some((state, bytes)) => self.apply_wire(state, bytes).await,
                None => Ok(()),
            },
            Err(error) => Err(error),
        };
        if let Err(error) = done {
            // Not persisted or not wired: not registered.
            if let Some((_, entry)) = self.entries.pop() {
                self.unwire(id, entry.mcp_json.as_ref()).await;
            }
            let _ = self.engine.deregister(id).await;
            self.engine.prune_orphans().await;
            let _ = self.write_state().await;
            return Err(error);
        }
        self.publish();
        let (_, entry) = &self.entries[self.entries.len() - 1];
        tracing::info!(coordinator = %id, project = %entry.settings.project_root.display(), "coordinator registered");
        Ok(self.info(id, entry, 0))
    }

    /// See [`Request::Rotate`]. The credentials file is written first, then the state: a
    /// failure of either puts the old token back in both, and nothing changed.
    async fn rotate(&mut self, id: CoordinatorId) -> Result<CoordinatorInfo, RegistryError> {
        let token = Secret::from_random(self.random());
        let index = self
            .entries
            .iter()
            .position(|(known, entry)| *known == id && entry.is_registered())
            .ok_or(RegistryError::NotFound(id))?;
        let config = self.layout.coordinator_config(id);
        let write = |token: &Secret| {
            let settings = &self.entries[index].1.settings;
            let server = McpServer::coordinator(&settings.mcp, id, token.expose());
            serde_json::to_vec_pretty(&server.config_at(&config)).unwrap_or_default()
        };
        let (fresh, old) = (write(&token), write(&self.entries[index].1.token));
        let files = &self.ports.files;
        files
            .write_atomic(
                &self.layout.config_dir,
                &config,
                &fresh,
                FileMode::OwnerOnly,
            )
            .await
            .map_err(files_error)?;
        let previous = std::mem::replace(&mut self.entries[index].1.token, token);
        if let Err(error) = self.write_state().await {
            self.entries[index].1.token = previous;
            let _ = files
                .write_atomic(&self.layout.config_dir, &config, &old, FileMode::OwnerOnly)
                .await;
            return Err(error);
        }
        // The directory now holds the new token only: the old one opens nothing, and every
        // WebSocket that authenticated with it is closed (4001).
        self.publish();
        tracing::info!(coordinator = %id, "coordinator token rotated");
        let (_, entry) = &self.entries[index];
        let tasks = match &entry.handle {
            Some(handle) => handle.list_tasks().await.map_or(0, |t| t.len()),
            None => 0,
        };
        Ok(self.info(id, entry, tasks))
    }

    /// The branch checked out at `root`, or why `root` is no usable repository.
    async fn main_branch(&self, root: &Path) -> Result<String, RegistryError> {
        self.ports
            .repo
            .main_branch(root.to_owned())
            .await
            .map_err(|e| RegistryError::NotARepo {
                root: root.to_owned(),
                reason: e.to_string(),
            })
    }

    async fn start_agent(
        &mut self,
        id: CoordinatorId,
        request: AgentRequest,
    ) -> Result<AgentId, RegistryError> {
        let (entry, handle) = self
            .entries
            .iter()
            .find(|(known, _)| *known == id)
            .and_then(|(_, entry)| Some((entry, entry.handle.clone()?)))
            .ok_or(RegistryError::NotFound(id))?;
        if request.command.trim().is_empty() {
            return Err(RegistryError::Invalid(
                "the agent's command is empty".into(),
            ));
        }
        let root = entry.settings.project_root.clone();
        let server = McpServer::coordinator(&self.launch, id, entry.token.expose());
        let config = self.layout.coordinator_config(id);
        let launch =
            crate::agents::launch(&request.command, &request.args, false, &server, &config);
        let first = match request.prompt {
            None => None,
            Some(prompt) => Some(crate::agents::prompts::coordinator(
                &prompt,
                &self.main_branch(&root).await?,
                crate::agents::prompts::CONCURRENT_TASKS_MAX,
            )),
        };
        let spec = SpawnSpec {
            agent: AgentId::from_random(self.random()),
            argv: launch.argv,
            env: launch.env,
            cwd: root,
            cols: crate::engine::AGENT_COLS,
            rows: crate::engine::AGENT_ROWS,
        };
        let start = OwnAgentStart {
            spawn: spec,
            profile: launch.profile,
            first_prompt: first,
        };
        // Its coordinator's actor owns it as it owns the tasks' agents.
        let agent = handle
            .start_own_agent(start)
            .await
            .map_err(|e| RegistryError::Agent(e.to_string()))?;
        tracing::info!(coordinator = %id, %agent, program = %request.command, "coordinator agent started");
        Ok(agent)
    }

    async fn deregister(&mut self, id: CoordinatorId) -> Result<(), RegistryError> {
        let at = self
            .entries
            .iter()
            .position(|(known, entry)| *known == id && entry.is_registered())
            .ok_or(RegistryError::NotFound(id))?;
        let entry = &mut self.entries[at].1;
        entry.handle = None;
        let mcp_json = entry.mcp_json.take();
        self.publish();
        let _ = self.engine.deregister(id).await;
        // Its tasks are orphans now: the directory lists them (the phone shows them).
        self.publish();
        self.unwire(id, mcp_json.as_ref()).await;
        // Its tasks stay (orphans) until closed; an empty save lets it go (a task still being
        // made when it left comes with a save of its own).
        self.write_state().await?;
        tracing::info!(coordinator = %id, "coordinator deregistered");
        Ok(())
    }

    /// Takes every `.mcp.json` entry out and persists that (the registrations stay: the next
    /// start merges the entries again).
    async fn shutdown(&mut self) {
        // The last word on each coordinator's tasks, from its actor: saves still on their way
        // would find the registry gone. An agent's exit its actor has not read yet is missing
        // (its exit code only: every task comes back exited after a restart anyway).
        for (_, entry) in &mut self.entries {
            if let Some(handle) = &entry.handle
                && let Ok(records) = handle.records().await
            {
                entry.records = records;
            }
        }
        let undone: Vec<McpJsonState> = self
            .entries
            .iter_mut()
            .filter_map(|(_, entry)| entry.mcp_json.take())
            .collect();
        for state in &undone {
            self.undo_mcp_json(state).await;
        }
        if let Err(error) = self.write_state().await {
            tracing::error!(%error, "persisting the state at shutdown failed");
        }
    }

    /// Restores one coordinator; a registered one's `.mcp.json` change comes back, to be made
    /// once the state records it.
    async fn restore(
        &mut self,
        coordinator: CoordinatorState,
    ) -> Option<(CoordinatorId, McpJsonState, Vec<u8>)> {
        let CoordinatorState {
            id,
            token,
            registered,
            mut settings,
            records,
            ..
        } = coordinator;
        settings.mcp = self.launch.clone();
        let (handle, plan) = if registered {
            let plan = match self.plan_wire(id, &token, &settings).await {
                Ok(plan) => plan,
                Err(error) => {
                    tracing::warn!(coordinator = %id, %error, "the coordinator's MCP entry could not be written again");
                    None
                }
            };
            let handle = self.engine.restore(id, settings.clone(), records.clone());
            (Some(handle), plan)
        } else {
            if let Err(error) = self
                .engine
                .restore_orphan(id, settings.clone(), records.clone())
                .await
            {
                tracing::warn!(coordinator = %id, %error, "restoring orphaned tasks failed");
            }
            (None, None)
        };
        self.entries.push((
            id,
            Entry {
                token,
                settings,
                mcp_json: plan.as_ref().map(|(state, _)| state.clone()),
                handle,
                records,
                seq: 0,
            },
        ));
        plan.map(|(state, bytes)| (id, state, bytes))
    }

    /// Writes the coordinator's credentials file and works out Baton's entry in the project's
    /// `.mcp.json`: the undo and the bytes to write ([`Self::apply_wire`]), or `None` when git
    /// tracks that file (changing it would leave the user's checkout dirty, and merges into it
    /// refused; the coordinator's agent is started with `--mcp-config` instead).
    async fn plan_wire(
        &self,
        id: CoordinatorId,
        token: &Secret,
        settings: &CoordinatorSettings,
    ) -> Result<Option<(McpJsonState, Vec<u8>)>, RegistryError> {
        let files = &self.ports.files;
        let config = self.layout.coordinator_config(id);
        let server = McpServer::coordinator(&settings.mcp, id, token.expose());
        let config_bytes =
            serde_json::to_vec_pretty(&server.config_at(&config)).unwrap_or_default();
        let root = settings.project_root.clone();
        let tracked = self
            .ports
            .repo
            .is_tracked(root.clone(), MCP_JSON.to_owned())
            .await
            .map_err(|e| RegistryError::NotARepo {
                root: root.clone(),
                reason: e.to_string(),
            })?;
        let plan = if tracked {
            tracing::info!(project = %root.display(), "the project's .mcp.json is tracked by git: left as it is");
            None
        } else {
            let path = root.join(MCP_JSON);
            let existing = files.read(&root, &path).await.map_err(files_error)?;
            let (written, registration) = mcp_json::register(
                &path.display().to_string(),
                existing.as_deref(),
                server.entry_reading(&config),
            )?;
            Some((McpJsonState { path, registration }, written))
        };
        files
            .write_atomic(
                &self.layout.config_dir,
                &config,
                &config_bytes,
                FileMode::OwnerOnly,
            )
            .await
            .map_err(files_error)?;
        crate::kill_point!("coordinator.config_written");
        Ok(plan)
    }

    /// Makes the `.mcp.json` change [`Self::plan_wire`] worked out, kept out of the user's
    /// `git status` as the reference does.
    async fn apply_wire(&self, state: &McpJsonState, bytes: &[u8]) -> Result<(), RegistryError> {
        let root = state.project();
        crate::kill_point!("mcp_json.writing");
        self.ports
            .files
            .write_atomic(&root, &state.path, bytes, FileMode::Default)
            .await
            .map_err(files_error)?;
        crate::kill_point!("mcp_json.written");
        if let Err(error) = self.ports.repo.exclude(root, format!("/{MCP_JSON}")).await {
            tracing::warn!(%error, "could not add .mcp.json to the repository's info/exclude");
        }
        Ok(())
    }

    /// Undoes [`Self::plan_wire`] and [`Self::apply_wire`]: the user's `.mcp.json` back, the
    /// credentials file gone.
    async fn unwire(&self, id: CoordinatorId, mcp_json: Option<&McpJsonState>) {
        if let Some(state) = mcp_json {
            self.undo_mcp_json(state).await;
        }
        let config = self.layout.coordinator_config(id);
        let _ = self
            .ports
            .files
            .remove(&self.layout.config_dir, &config)
            .await;
    }

    /// Gives a user's `.mcp.json` back; whether it changed anything.
    async fn undo_mcp_json(&self, state: &McpJsonState) -> bool {
        let files = &self.ports.files;
        let root = state.project();
        let current = match files.read(&root, &state.path).await {
            Ok(current) => current,
            Err(error) => {
                tracing::warn!(%error, "cannot read a .mcp.json to restore it");
                return false;
            }
        };
        let result = match mcp_json::deregister(current.as_deref(), &state.registration) {
            Undo::Leave => return false,
            Undo::Remove => files.remove(&root, &state.path).await.map(drop),
            Undo::Write(bytes) => {
                files
                    .write_atomic(&root, &state.path, &bytes, FileMode::Default)
                    .await
            }
        };
        match result {
            Ok(()) => {
                crate::kill_point!("mcp_json.restored");
                true
            }
            Err(error) => {
                tracing::warn!(%error, "cannot restore a .mcp.json");
                false
            }
        }
    }

    /// Removes every file in the config directory no restored coordinator or task uses.
    async fn sweep_configs(&self) -> usize {
        let files = &self.ports.files;
        let Ok(present) = files.list(&self.layout.config_dir).await else {
            return 0;
        };
        let mut used: Vec<PathBuf> = Vec::new();
        for (id, entry) in &self.entries {
            used.push(self.layout.coordinator_config(*id));
            used.extend(
                entry
                    .records
                    .tasks
                    .iter()
                    .filter_map(|r| r.spec.mcp_config.clone()),
            );
        }
        let mut removed = 0;
        for path in present {
            if !used.contains(&path)
                && files
                    .remove(&self.layout.config_dir, &path)
                    .await
                    .unwrap_or(false)
            {
                removed += 1;
            }
        }
        removed
    }

    fn publish(&mut self) {
        let mut directory = self.directory.clone();
        directory.coordinators.clear();
        for (id, entry) in &self.entries {
            if let Some(handle) = &entry.handle {
                directory.credentials.register(*id, entry.token.clone());
                directory.coordinators.insert(*id, handle.clone());
            }
        }
        directory.orphans = self.engine.orphans().to_vec();
        self.publisher.publish(directory);
    }

    async fn write_state(&self) -> Result<(), RegistryError> {
        let state = State {
            coordinators: self
                .entries
                .iter()
                .map(|(id, entry)| CoordinatorState {
                    id: *id,
                    token: entry.token.clone(),
                    registered: entry.is_registered(),
                    settings: entry.settings.clone(),
                    mcp_json: entry.mcp_json.clone(),
                    records: entry.records.clone(),
                })
                .collect(),
        };
        let bytes = state::encode(&state);
        if bytes.len() > STATE_BYTES_MAX {
            return Err(RegistryError::Files(format!(
                "the state would be {} bytes, over the {STATE_BYTES_MAX}-byte limit; close tasks",
                bytes.len()
            )));
        }
        crate::kill_point!("state.writing");
        self.ports
            .files
            .write_atomic(
                &self.layout.state_dir,
                &self.layout.state_file,
                &bytes,
                FileMode::OwnerOnly,
            )
            .await
            .map_err(files_error)?;
        crate::kill_point!("state.written");
        Ok(())
    }

    fn random<const N: usize>(&self) -> [u8; N] {
        let mut bytes = [0; N];
        self.ports.entropy.fill(&mut bytes);
        bytes
    }
}

fn files_error(error: crate::ports::FilesError) -> RegistryError {
    if error.is_confinement() {
        RegistryError::Confined(error.to_string())
    } else {
        RegistryError::Files(error.to_string())
    }
}

fn validate(request: &RegisterRequest) -> Result<(), RegistryError> {
    let invalid = |text: String| Err(RegistryError::Invalid(text));
    if !request.project_root.is_absolute() {
        return invalid(format!(
            "project root {} is not an absolute path",
            request.project_root.display()
        ));
    }
    if request.agent.trim().is_empty() {
        return invalid("agent must not be empty".to_owned());
    }
    if request.args.len() > AGENT_ARGS_MAX {
        return invalid(format!("at most {AGENT_ARGS_MAX} agent arguments"));
    }
    let delays = NOTIFICATION_DELAY_MS_MIN..=NOTIFICATION_DELAY_MS_MAX;
    if let Some(delay_ms) = request.notification_delay_ms
        && !delays.contains(&delay_ms)
    {
        return invalid(format!(
            "the notification delay must be {NOTIFICATION_DELAY_MS_MIN} to {NOTIFICATION_DELAY_MS_MAX} ms, not {delay_ms}"
        ));
    }
    let all = std::iter::once(&request.agent).chain(&request.args);
    for text in all {
        if text.len() > AGENT_ARG_BYTES_MAX {
            return invalid(format!(
                "an agent argument is longer than {AGENT_ARG_BYTES_MAX} bytes"
            ));
        }
        if text.chars().any(char::is_control) {
            return invalid(
                "agent command and arguments must not hold control characters".to_owned(),
            );
        }
    }
    Ok(())
}

/// Logs the engine's app events (the app's event stream comes with the app channel's next
/// routes). Runs from before the restore: a restored actor's events must never wait for a
/// reader.
pub async fn log_events(
    mut events: mpsc::Receiver<AppEvent>,
    feed: tokio::sync::broadcast::Sender<AppEvent>,
) {
    while let Some(event) = events.recv().await {
        tracing::info!(event = %describe(&event), "engine event");
        // Nobody listening is not a failure.
        let _ = feed.send(event);
    }
}

/// One log line for an app event: ids and names, never a token.
fn describe(event: &AppEvent) -> String {
    match event {
        AppEvent::TaskCreated { coordinator, task } => {
            format!(
                "task {} ({:?}) created by {coordinator}",
                task.id, task.name
            )
        }
        AppEvent::TaskClosed(task) => format!("task {task} closed"),
        AppEvent::CoordinatorMcpConnected(coordinator) => {
            format!("the MCP server of coordinator {coordinator} started")
        }
        AppEvent::CleanupFailed { task, error } => format!("task {task} cleanup failed: {error}"),
        AppEvent::Notice(coordinator, _) => format!("notification for {coordinator}"),
        AppEvent::State(task, change) => format!("task {task}: {change:?}"),
        AppEvent::Orphaned { task, .. } => format!("task {task} orphaned"),
        AppEvent::Merged { task, merge } => format!("task {task} merged into {}", merge.target),
    }
}
