//! The daemon host of a scenario: the production daemon's wiring (`daemon::wiring`: the
//! engine, the registry, the coordinators' own agents, the API's state) on simulated ports,
//! restartable, serving the REST API and the app channel on turmoil's network.
//!
//! [`Shared`] is what outlives a daemon crash: the disk (files and repositories, the daemon's
//! state file among them), the links, the trace and what the invariant checker saw. [`serve`]
//! is the daemon host's software; turmoil runs it again after a crash, and the registry
//! restores every coordinator from the state file as it does on a user's machine (their agents
//! died with the daemon: the engine reports them lost), gives back what a crash left in users'
//! `.mcp.json` files and wires the coordinators again. A graceful stop shuts the registry down
//! as the production daemon does.
//!
//! Nothing here registers, restores or deregisters: the app's calls go over the app channel
//! (`daemon::app`'s router, the production one, on [`crate::net::APP_PORT`] of the daemon host:
//! turmoil simulates TCP, not Unix sockets) to the registry, which writes the state file through
//! the `Files` port, onto the simulated disk. A coordinator's id and token come from the registry
//! (its token read back from the credentials file it wrote, as `baton mcp` reads it).
//!
//! Inside the host: the wiring's tasks; one task records the engine's app events; each spawned
//! agent runs its script.
//!
//! # Layout
//!
//! - this module: [`Shared`] (hosts' common ground, what the app registered), [`serve`];
//! - `agents`: the scripted agent started on every spawn (its script, its `baton mcp`);
//! - `events`: the engine's app events, recorded in the trace and told to the checker.

mod agents;
mod events;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use baton_runtime::agents::McpLaunch;
use baton_runtime::api::Directory;
use baton_runtime::api::guard::Limits;
use baton_runtime::api::latest::Latest;
use baton_runtime::core::auth::Secret;
use baton_runtime::core::ids::{CoordinatorId, TaskId};
use baton_runtime::core::time::Millis;
use baton_runtime::daemon::app::AppState;
use baton_runtime::daemon::phone::Phone;
use baton_runtime::daemon::registry::{Layout, RegisterRequest};
use baton_runtime::daemon::state::State;
use baton_runtime::daemon::wiring::{self, Host, Machine};
use baton_runtime::engine::CoordinatorHandle;
use baton_runtime::ports::fakes::{FakeClock, FakeDisk, FakeFiles, FakeRepo, SeededEntropy};
use baton_runtime::ports::{Entropy, Files};
use tokio::sync::Notify;

pub use self::agents::{MCP_CONNECT_MS_DEFAULT, Script, config_path};
use self::agents::{on_spawn, read_config_at};
use self::events::watch_events;
use crate::invariants::Observed;
use crate::link::Links;
use crate::net::{SimListener, SimTcp};
use crate::pty::SimPty;
use crate::trace::Recorder;
use crate::world::{CONFIG_DIR, EPOCH_MS, STATE_DIR};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A coordinator as the scenario declared it.
#[derive(Debug, Clone)]
pub struct Declared {
    /// Its actor name.
    pub name: String,
    /// What the app registers it with (its project: the scenario's repository, or a copy of
    /// it for each coordinator after the first, since a project has one coordinator).
    pub request: RegisterRequest,
}

/// A coordinator the daemon registered: what the app heard, and what its MCP config holds.
#[derive(Debug, Clone)]
pub struct Registered {
    /// Its id.
    pub id: CoordinatorId,
    /// Its bearer token, read from its credentials file as `baton mcp` reads it.
    pub token: Secret,
}

/// The engine's coordinators, as the app sees them.
#[derive(Clone, Debug, Default)]
pub struct Handles {
    /// Registered coordinators.
    pub registered: BTreeMap<CoordinatorId, CoordinatorHandle>,
    /// Deregistered coordinators whose tasks remain.
    pub orphans: Vec<CoordinatorHandle>,
}

/// The way into a running daemon, for what the simulation observes and the faults it plays
/// (the app's own requests go over the app channel).
#[derive(Clone)]
pub struct Door {
    /// What the API serves from, as the registry publishes it.
    pub directory: Latest<Directory>,
    /// Its terminals.
    pub pty: Arc<SimPty>,
}

/// What outlives a daemon crash. See the module documentation.
pub struct Shared {
    /// The scenario's seed.
    pub seed: u64,
    /// The trace.
    pub recorder: Recorder,
    /// The disk's files.
    pub files: Arc<FakeFiles>,
    /// The disk's repositories.
    pub repo: Arc<FakeRepo>,
    /// Scripts by task name.
    pub scripts: BTreeMap<String, Script>,
    /// The declared coordinators.
    pub declared: Vec<Declared>,
    /// Links between actors and the daemon.
    pub links: Arc<Links>,
    /// The phone's token (phone access is on in every simulated daemon).
    pub phone: Secret,
    /// Told when the daemon is to stop gracefully (`stop_daemon`).
    pub stopping: Notify,
    /// What the invariant checker saw.
    pub observed: Mutex<Observed>,
    /// The coordinators the daemon registered, by name.
    registered: Mutex<BTreeMap<String, Registered>>,
    door: Mutex<Option<Door>>,
    incarnation: AtomicU64,
    /// WebSocket connections the attacker opened, to tell them apart in the trace.
    pub websockets: AtomicU64,
    /// Simulated `baton mcp` processes started, each drawing its own randomness.
    mcp_processes: AtomicU64,
}

impl Shared {
    /// The world before the daemon first starts.
    #[must_use]
    pub fn new(
        seed: u64,
        files: Arc<FakeFiles>,
        repo: Arc<FakeRepo>,
        scripts: BTreeMap<String, Script>,
        declared: Vec<Declared>,
    ) -> Self {
        let recorder = Recorder::new();
        Shared {
            seed,
            recorder: recorder.clone(),
            files,
            repo,
            scripts,
            declared,
            links: Arc::new(Links::new(seed, recorder)),
            stopping: Notify::new(),
            phone: {
                let mut bytes = [0; baton_runtime::core::auth::TOKEN_BYTES];
                SeededEntropy::new(seed ^ 0x0070_686f_6e65).fill(&mut bytes);
                Secret::from_random(bytes)
            },
            observed: Mutex::default(),
            registered: Mutex::default(),
            door: Mutex::default(),
            incarnation: AtomicU64::new(0),
            websockets: AtomicU64::new(0),
            mcp_processes: AtomicU64::new(0),
        }
    }

    /// What the invariant checker observed so far (a lock held only briefly, never across an
    /// await).
    pub fn observed(&self) -> MutexGuard<'_, Observed> {
        lock(&self.observed)
    }

    /// The running daemon's door, if it runs.
    #[must_use]
    pub fn door(&self) -> Option<Door> {
        lock(&self.door).clone()
    }

    /// A simulated `baton mcp --url <daemon> <flag> <id>` with `variable=secret` in its
    /// environment: the runtime's own MCP server code over turmoil's TCP, each of its
    /// connections over `actor`'s link (so each request and retry meets the link's faults on
    /// its own). Each one draws
    /// its own randomness (its request ids), from the seed and how many came before it.
    ///
    /// # Errors
    /// The arguments are refused (the text says why).
    pub fn mcp_process(
        &self,
        actor: &str,
        (flag, id): (&str, String),
        (variable, secret): (&str, &str),
    ) -> Result<baton_runtime::mcp::server::Backend<SimTcp>, String> {
        use baton_runtime::mcp::args::McpArgs;
        let argv = [
            "--url".to_owned(),
            crate::net::api_url(),
            flag.to_owned(),
            id,
        ];
        let args = McpArgs::parse(&argv, |name| (name == variable).then(|| secret.to_owned()))
            .map_err(|e| e.to_string())?;
        let n = self.mcp_processes.fetch_add(1, Ordering::Relaxed);
        let entropy = Arc::new(SeededEntropy::new(
            self.seed ^ (n + 1).wrapping_mul(0xd1b5_4a32_d192_ed03),
        ));
        let tcp = SimTcp::linked(self.links.clone(), actor);
        baton_runtime::mcp::server::Backend::new(args, tcp, entropy).map_err(|e| e.to_string())
    }

    /// The daemon crashed: its door is gone.
    pub fn daemon_crashed(&self) {
        *lock(&self.door) = None;
    }

    /// A coordinator's actor name.
    #[must_use]
    pub fn coordinator_name(&self, id: CoordinatorId) -> String {
        lock(&self.registered)
            .iter()
            .find(|(_, r)| r.id == id)
            .map_or_else(|| id.to_string(), |(name, _)| name.clone())
    }

    /// The coordinator the daemon registered as `name`.
    #[must_use]
    pub fn registered(&self, name: &str) -> Option<Registered> {
        lock(&self.registered).get(name).cloned()
    }

    /// Registers the declared coordinator `name` on the app channel (`POST /app/coordinators`),
    /// and reads its token from the credentials file the daemon wrote.
    ///
    /// # Errors
    /// The daemon is down, or refused (the text says why).
    pub async fn register(&self, name: &str) -> Result<Registered, String> {
        let declared = self
            .declared
            .iter()
            .find(|d| d.name == name)
            .ok_or("undeclared coordinator")?;
        let request = &declared.request;
        let body = serde_json::json!({
            "projectRoot": request.project_root,
            "agent": request.agent,
            "args": request.args,
            "skipPermissions": request.skip_permissions,
            "notificationDelayMs": request.notification_delay_ms,
        });
        let info = crate::app::request("POST", "/app/coordinators", Some(&body)).await?;
        let id = info["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .ok_or("the app channel's answer names no coordinator id")?;
        let config = info["mcpConfig"]
            .as_str()
            .ok_or("the app channel's answer names no MCP config")?;
        let file = self
            .files
            .get(Path::new(config))
            .ok_or("the coordinator's credentials file is missing")?;
        let credentials = baton_runtime::mcp::args::credentials_in(&file.bytes)?;
        let token = credentials
            .iter()
            .find(|(name, _)| baton_runtime::agents::TOKEN_VARS.contains(&name.as_str()))
            .map(|(_, token)| Secret::from_text(token))
            .ok_or("the credentials file names no token")?;
        let registered = Registered { id, token };
        lock(&self.registered).insert(name.to_owned(), registered.clone());
        Ok(registered)
    }

    /// Every coordinator's handle, from what the running daemon publishes.
    ///
    /// # Errors
    /// The daemon is down.
    pub async fn handles(&self) -> Result<Handles, String> {
        let door = self.door().ok_or(DAEMON_DOWN)?;
        let directory = door.directory.get();
        Ok(Handles {
            registered: directory.coordinators.clone(),
            orphans: directory.orphans.clone(),
        })
    }

    /// The done token in a task's MCP config, while the config is there.
    #[must_use]
    pub fn done_token(&self, task: TaskId) -> Option<String> {
        read_config_at(&self.files, &config_path(task)).and_then(agents::McpConfig::done_token)
    }

    /// The coordinator (registered or orphaned) holding `task`.
    ///
    /// # Errors
    /// The daemon is down, or no coordinator holds the task.
    pub async fn owner(&self, task: TaskId) -> Result<CoordinatorHandle, String> {
        let handles = self.handles().await?;
        for handle in handles.registered.values().chain(&handles.orphans) {
            if handle.task_status(task).await.is_ok() {
                return Ok(handle.clone());
            }
        }
        Err(format!("Task not found: {task}"))
    }

    /// The registered coordinator `id`, from the running daemon.
    ///
    /// # Errors
    /// The daemon is down, or the coordinator is not registered.
    pub async fn coordinator(&self, id: CoordinatorId) -> Result<CoordinatorHandle, String> {
        self.handles()
            .await?
            .registered
            .remove(&id)
            .ok_or_else(|| format!("Coordinator not found: {id}"))
    }
}

/// The error of a call to a daemon that does not run (what the network says when nobody
/// listens, `crate::net::SendError::Refused`).
pub const DAEMON_DOWN: &str = "daemon unavailable: connection refused";

/// Where the simulated daemon keeps its files: its state file under [`STATE_DIR`], the MCP
/// configs in [`CONFIG_DIR`].
#[must_use]
pub fn layout() -> Layout {
    Layout {
        state_dir: PathBuf::from(STATE_DIR),
        state_file: PathBuf::from(STATE_DIR).join("state.json"),
        config_dir: PathBuf::from(CONFIG_DIR),
    }
}

/// The daemon host's software: the production daemon's wiring ([`wiring::start`]: the engine,
/// the registry, the coordinators' own agents) on simulated ports, its state file on the
/// simulated disk. See the module documentation.
///
/// # Errors
/// The state file cannot be read or written back.
pub async fn serve(shared: Arc<Shared>) -> turmoil::Result {
    let incarnation = shared.incarnation.fetch_add(1, Ordering::Relaxed);
    let now_ms = shared.recorder.elapsed_ms();
    let inner = Arc::new(baton_runtime::ports::fakes::FakePty::default());
    let (typed, killed) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let pty = Arc::new(SimPty::new(
        inner.clone(),
        (typed.clone(), killed.clone()),
        on_spawn(&shared, inner, (typed, killed)),
    ));
    let files: Arc<dyn Files> = Arc::new(FakeDisk::new(shared.files.clone(), shared.repo.clone()));
    // A restarted daemon draws new ids: the same seed, moved on by its incarnation.
    let entropy: Arc<dyn Entropy> = Arc::new(SeededEntropy::new(
        shared.seed ^ incarnation.wrapping_mul(0x9e37_79b9_7f4a_7c15),
    ));
    let machine = Machine {
        clock: Arc::new(FakeClock::starting_at(Millis(EPOCH_MS + now_ms))),
        entropy: entropy.clone(),
        pty: pty.clone(),
        repo: shared.repo.clone(),
        files: files.clone(),
    };
    let layout = layout();
    let state = match files.read(&layout.state_dir, &layout.state_file).await? {
        None => State::default(),
        Some(bytes) => baton_runtime::daemon::state::decode(&bytes)?,
    };
    let host = Host {
        layout,
        // The simulated `baton mcp` reaches the daemon host over turmoil.
        launch: McpLaunch {
            command: "baton".to_owned(),
            url: crate::net::api_url(),
        },
        root_outside_a_sandbox: false,
    };
    let wired = wiring::start(machine, host, state).await?;
    tokio::spawn(watch_events(shared.clone(), wired.tap));
    // Phone access is on in every simulated daemon.
    wired
        .registry
        .set_mobile(Some(shared.phone.clone()))
        .await
        .map_err(|e| e.to_string())?;
    if incarnation > 0 {
        let directory = wired.directory.get();
        for handle in directory.coordinators.values().chain(&directory.orphans) {
            let tasks = handle.list_tasks().await.map_or(0, |t| t.len());
            let name = shared.coordinator_name(handle.id());
            shared
                .recorder
                .record("daemon", format!("restored {name} with {tasks} task(s)"));
        }
    }
    let listener = SimListener::bind(crate::net::API_PORT).await?;
    let app_listener = SimListener::bind(crate::net::APP_PORT).await?;
    // The production daemon's app channel: its router over a listener of the daemon host.
    // Phone access is never started here (it would bind the machine's own sockets): a
    // simulated daemon's mobile token is set above.
    let phone = Phone::new(
        wired.api.clone(),
        wired.registry.clone(),
        entropy,
        files,
        Path::new(STATE_DIR),
    );
    let app = baton_runtime::daemon::app::router(AppState {
        registry: wired.registry.clone(),
        api_url: crate::net::api_url(),
        state_dir: PathBuf::from(STATE_DIR),
        directory: wired.directory.clone(),
        events: wired.events,
        phone,
    });
    let app_stopping = shared.clone();
    tokio::spawn(async move {
        let stop = async move { app_stopping.stopping.notified().await };
        let _ = baton_runtime::api::server::run(app_listener, app, Limits::APP, stop).await;
    });
    let registry = wired.registry.clone();
    let (stopping, serving, state) = (shared.clone(), shared.clone(), wired.api);
    tokio::spawn(async move {
        let stop = async move { stopping.stopping.notified().await };
        let listening = crate::net::listening();
        let _ = baton_runtime::api::serve(listener, state, listening, stop).await;
        // Served to the end: as the production daemon, its registry gives the users'
        // `.mcp.json` back and persists; the daemon is gone until it is started again.
        serving.daemon_crashed();
        registry.shutdown().await;
        serving.recorder.record("daemon", "stopped serving");
    });
    *lock(&shared.door) = Some(Door {
        directory: wired.directory,
        pty,
    });
    if incarnation > 0 {
        shared.recorder.record("daemon", "up again");
    }
    let _ = wired.registry_task.await;
    // Stopped: the host idles until the simulation restarts it.
    std::future::pending::<()>().await;
    Ok(())
}

/// Simulated milliseconds of a wall time of the engine's clock.
#[must_use]
pub fn sim_ms(at: Millis) -> u64 {
    at.0.saturating_sub(EPOCH_MS)
}
