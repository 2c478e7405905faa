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
//!
//! A coordinator's own agent is its actor's: the registry works out its command line (its MCP
//! config) and first prompt (the coordinator preamble and the user's words) and hands them to
//! [`crate::engine::CoordinatorHandle::start_own_agent`]; deregistration ends it.
//!
//! Layout: this module (the requests, the door, the registry's task and its state file),
//! `coordinators` (register, rotate, the own agent's start, deregister, shutdown, restore),
//! `wire` (credentials files and `.mcp.json` entries, the configs' sweep), `events` (the app
//! events logged and passed on).

use std::path::{Path, PathBuf};

use tokio::sync::{mpsc, oneshot};

use super::state::{self, CoordinatorRef, McpJsonState, State};
use super::wiring::Host;
use crate::agents::McpLaunch;
use crate::agents::mcp_json::McpJsonError;
use crate::api::Directory;
use crate::api::latest::Publisher;
use crate::core::auth::Secret;
use crate::core::coordinator::Records;
use crate::core::ids::{AgentId, CoordinatorId};
use crate::engine::{CoordinatorHandle, CoordinatorSettings, Engine, Ports};
use crate::ports::{BoxFuture, FileMode, Journal, JournalError};

mod coordinators;
mod events;
mod wire;

pub use events::log_events;

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
    /// The coordinator's own agent could not start, or is running already (the engine's text,
    /// which names the agent).
    #[error("{0}")]
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
    /// A coordinator's entry, its `.mcp.json` change (if one is planned) as `plan` says, no
    /// save seen yet.
    fn new<B>(
        token: Secret,
        settings: CoordinatorSettings,
        plan: Option<&(McpJsonState, B)>,
        handle: Option<CoordinatorHandle>,
        records: Records,
    ) -> Self {
        Entry {
            token,
            settings,
            mcp_json: plan.map(|(state, _)| state.clone()),
            handle,
            records,
            seq: 0,
        }
    }

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
    /// Whether the state file may hold less than `entries` (a write failed since the last one
    /// that succeeded): a save that changes nothing is written anyway until one succeeds.
    file_behind: bool,
    /// Encodes the state file, keeping each unchanged task's text from one save to the next.
    encoder: state::Encoder,
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
            file_behind: true,
            encoder: state::Encoder::default(),
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
                    // The same records as the file holds (the actor saves after every event
                    // but a notice's, most of which change no record): nothing to write.
                    Some((_, entry)) if entry.records == records && !self.file_behind => {
                        entry.seq = seq;
                        Ok(())
                    }
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

    fn publish(&mut self) {
        self.publish_leaving(None);
    }

    /// Publishes the directory; a coordinator that is `leaving` (deregistered, its actor not yet
    /// told) is listed among the orphans already, so its tasks never drop out of the view.
    fn publish_leaving(&mut self, leaving: Option<&CoordinatorHandle>) {
        let mut directory = self.directory.clone();
        directory.coordinators.clear();
        for (id, entry) in &self.entries {
            if let Some(handle) = &entry.handle {
                directory.credentials.register(*id, entry.token.clone());
                directory.coordinators.insert(*id, handle.clone());
            }
        }
        directory.orphans = self.engine.orphans().to_vec();
        directory.orphans.extend(leaving.cloned());
        self.publisher.publish(directory);
    }

    /// Writes the state file from `entries`, and notes in `file_behind` whether that failed.
    async fn write_state(&mut self) -> Result<(), RegistryError> {
        let written = self.write_entries().await;
        self.file_behind = written.is_err();
        written
    }

    async fn write_entries(&mut self) -> Result<(), RegistryError> {
        let coordinators: Vec<CoordinatorRef<'_>> = self
            .entries
            .iter()
            .map(|(id, entry)| CoordinatorRef {
                id: *id,
                token: &entry.token,
                registered: entry.is_registered(),
                settings: &entry.settings,
                mcp_json: entry.mcp_json.as_ref(),
                records: &entry.records,
            })
            .collect();
        let bytes = self.encoder.encode(&coordinators);
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

#[cfg(test)]
mod tests;
