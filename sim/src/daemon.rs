//! The daemon host of a scenario: the production daemon's wiring (`daemon::wiring`: the
//! engine, the registry, the coordinators' own agents, the API's state) on simulated ports,
//! restartable.
//!
//! [`Shared`] is what outlives a daemon crash: the disk (files and repositories, the daemon's
//! state file among them), the links, the trace and what the invariant checker saw. [`serve`]
//! is the daemon host's software; turmoil runs it again after a crash, and the registry
//! restores every coordinator from the state file as it does on a user's machine (their agents
//! died with the daemon: the engine reports them lost), gives back what a crash left in users'
//! `.mcp.json` files and wires the coordinators again. A graceful stop shuts the registry down
//! as the production daemon does.
//!
//! Nothing here registers, restores or deregisters: the app's calls go to the registry
//! ([`Shared::register`], the `deregister` app call), which writes the state file through the
//! `Files` port, onto the simulated disk. A coordinator's id and token come from the registry
//! (its token read back from the credentials file it wrote, as `baton mcp` reads it).
//!
//! Inside the host: the wiring's tasks; one task records the engine's app events; each spawned
//! agent runs its script.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use baton_runtime::agents::{self, McpLaunch};
use baton_runtime::api::Directory;
use baton_runtime::api::latest::Latest;
use baton_runtime::core::auth::Secret;
use baton_runtime::core::branch::task_branch;
use baton_runtime::core::ids::{CoordinatorId, TaskId};
use baton_runtime::core::time::Millis;
use baton_runtime::daemon::registry::{Layout, RegisterRequest, RegistryDoor, RegistryError};
use baton_runtime::daemon::state::State;
use baton_runtime::daemon::wiring::{self, Host, Machine};
use baton_runtime::engine::{AppEvent, CoordinatorHandle};
use baton_runtime::ports::fakes::{FakeClock, FakeDisk, FakeFiles, FakeRepo, SeededEntropy};
use baton_runtime::ports::{BoxFuture, Entropy, Files, SpawnSpec};
use tokio::sync::{Notify, broadcast};

use crate::agent::{self, Action, Seat, SubTaskMcp};
use crate::invariants::Observed;
use crate::link::Links;
use crate::pty::SimPty;
use crate::trace::Recorder;
use crate::world::{CONFIG_DIR, EPOCH_MS, STATE_DIR};

/// A scripted agent's MCP server connects this long after the agent starts, unless its script
/// says otherwise.
pub const MCP_CONNECT_MS_DEFAULT: u64 = 200;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A scripted agent, ready to run.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// Run once.
    pub once: Vec<Action>,
    /// Then run again and again.
    pub repeat: Vec<Action>,
    /// How many times `repeat` runs (`None`: until the agent is killed).
    pub loops: Option<u64>,
    /// When its MCP server connects after the agent starts (`None`: never).
    pub mcp_connect_ms: Option<u64>,
}

impl Script {
    /// What an agent does when a scenario gives it no script: it starts, shows its prompt,
    /// and answers every prompt by working for a second and showing its prompt again.
    #[must_use]
    pub fn default_agent() -> Self {
        use baton_runtime::agents::frames::Frame;
        Script {
            once: vec![
                Action::Print(Frame::Startup),
                Action::Pause(300),
                Action::Print(Frame::Ready),
            ],
            repeat: vec![
                Action::WaitForPrompt,
                Action::Print(Frame::Busy),
                Action::Pause(1_000),
                Action::Print(Frame::Ready),
            ],
            loops: None,
            mcp_connect_ms: Some(MCP_CONNECT_MS_DEFAULT),
        }
    }
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

/// The way into a running daemon.
#[derive(Clone)]
pub struct Door {
    /// The app channel's requests: the registry's.
    pub registry: RegistryDoor,
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

    /// Registers the declared coordinator `name` through the app channel (the registry), and
    /// reads its token from the credentials file the daemon wrote.
    ///
    /// # Errors
    /// The daemon is down, or refused (the text says why).
    pub async fn register(&self, name: &str) -> Result<Registered, String> {
        let declared = self
            .declared
            .iter()
            .find(|d| d.name == name)
            .ok_or("undeclared coordinator")?;
        let door = self.door().ok_or(DAEMON_DOWN)?;
        let info = door
            .registry
            .register(declared.request.clone())
            .await
            .map_err(|e| registry_error(&e))?;
        let file = self
            .files
            .get(&info.mcp_config)
            .ok_or("the coordinator's credentials file is missing")?;
        let credentials = baton_runtime::mcp::args::credentials_in(&file.bytes)?;
        let token = credentials
            .iter()
            .find(|(name, _)| baton_runtime::agents::TOKEN_VARS.contains(&name.as_str()))
            .map(|(_, token)| Secret::from_text(token))
            .ok_or("the credentials file names no token")?;
        let registered = Registered { id: info.id, token };
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
        read_config_at(&self.files, &config_path(task)).map(|c| c.done_token)
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
    let typed = Arc::new(Notify::new());
    let pty = Arc::new(SimPty::new(
        inner.clone(),
        typed.clone(),
        on_spawn(&shared, inner, typed),
    ));
    let files: Arc<dyn Files> = Arc::new(FakeDisk::new(shared.files.clone(), shared.repo.clone()));
    let machine = Machine {
        clock: Arc::new(FakeClock::starting_at(Millis(EPOCH_MS + now_ms))),
        // A restarted daemon draws new ids: the same seed, moved on by its incarnation.
        entropy: Arc::new(SeededEntropy::new(
            shared.seed ^ incarnation.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        )),
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
    let listener = crate::net::SimListener::bind().await?;
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
        registry: wired.registry,
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

/// A registry's refusal as the app hears it.
#[must_use]
pub fn registry_error(error: &RegistryError) -> String {
    match error {
        RegistryError::Stopped => DAEMON_DOWN.to_owned(),
        other => other.to_string(),
    }
}

/// Records every app event and tells the checker.
async fn watch_events(shared: Arc<Shared>, mut events: broadcast::Receiver<AppEvent>) {
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                shared
                    .recorder
                    .record("app", format!("missed {missed} event(s)"));
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let line = describe(&shared, &event);
        shared.recorder.record("app", line);
        shared
            .observed()
            .event(&event, shared.recorder.elapsed_ms());
    }
}

/// Simulated milliseconds of a wall time of the engine's clock.
#[must_use]
pub fn sim_ms(at: Millis) -> u64 {
    at.0.saturating_sub(EPOCH_MS)
}

/// One line for an app event: names instead of ids where the trace knows them, times in
/// simulated milliseconds.
fn describe(shared: &Shared, event: &AppEvent) -> String {
    use baton_runtime::core::coordinator::StateChange;
    use baton_runtime::core::notify::Notice;
    let task_name = |task: TaskId| shared.observed().task_name(task);
    match event {
        AppEvent::TaskCreated { coordinator, task } => format!(
            "event task_created {} {} for {} on {}",
            task.name,
            task.id,
            shared.coordinator_name(*coordinator),
            task.branch
        ),
        AppEvent::TaskClosed(task) => format!("event task_closed {}", task_name(*task)),
        AppEvent::CoordinatorMcpConnected(_) => "event coordinator_mcp_connected".to_owned(),
        AppEvent::CleanupFailed { task, error } => {
            format!("event cleanup_failed {}: {error}", task_name(*task))
        }
        AppEvent::Notice(coordinator, Notice::Staged(staged)) => {
            let first = staged.text.lines().nth(2).unwrap_or_default();
            format!(
                "event staged for {} ({} notification(s), fires at t={}): {first:?}",
                shared.coordinator_name(*coordinator),
                staged.notifications.len(),
                sim_ms(staged.auto_fire_at)
            )
        }
        AppEvent::Notice(coordinator, Notice::Cleared) => {
            format!(
                "event cleared for {}",
                shared.coordinator_name(*coordinator)
            )
        }
        AppEvent::State(task, change) => {
            let what = match change {
                StateChange::SignalReceived { at, consumed } => format!(
                    "signal received at t={}{}",
                    sim_ms(*at),
                    if *consumed { ", consumed" } else { "" }
                ),
                StateChange::SignalConsumed => "signal consumed".to_owned(),
                StateChange::NeedsReview => "needs review".to_owned(),
                StateChange::SignalReset => "signal reset".to_owned(),
                StateChange::ControlChanged(control) => {
                    format!("control {control:?}").to_lowercase()
                }
                StateChange::Orphaned { needs_review } => {
                    format!(
                        "orphaned{}",
                        if *needs_review { ", needs review" } else { "" }
                    )
                }
                StateChange::McpStartupTimedOut => "mcp startup timed out".to_owned(),
                StateChange::Agent(verdict) => match verdict.disagreement {
                    None => format!("agent {} by {}", verdict.state, verdict.source.name()),
                    Some((other, said)) => format!(
                        "agent {} by {} ({} says {said})",
                        verdict.state,
                        verdict.source.name(),
                        other.name()
                    ),
                },
            };
            format!("event {} {what}", task_name(*task))
        }
        AppEvent::Orphaned { task, text } => {
            format!("event orphaned {}: {text:?}", task_name(*task))
        }
        AppEvent::Merged { task, merge } => format!(
            "event {} merged into {} (+{} -{})",
            task_name(*task),
            merge.target,
            merge.added,
            merge.removed
        ),
    }
}

/// What the simulated `baton mcp` of a sub-task reads from the config the engine wrote.
struct McpConfig {
    task: TaskId,
    done_token: String,
}

/// The config a spawned program was given, as its `baton mcp` reads it: `--mcp-config PATH`,
/// or (Codex) the `--credentials-file PATH` inside its `--config` override.
fn read_config(files: &FakeFiles, argv: &[String]) -> Option<McpConfig> {
    if let Some(at) = argv.iter().position(|a| a == "--mcp-config") {
        return read_config_at(files, Path::new(argv.get(at + 1)?));
    }
    const MARK: &str = "\"--credentials-file\", ";
    let override_arg = argv.iter().find(|a| a.contains(MARK))?;
    let rest = &override_arg[override_arg.find(MARK)? + MARK.len()..];
    let path: String = serde_json::Deserializer::from_str(rest)
        .into_iter::<String>()
        .next()?
        .ok()?;
    read_config_at(files, Path::new(&path))
}

/// The config an agent that reads its MCP servers from its worktree finds there: a settings
/// file Baton wrote for the program (`agents::worktree_writes`) names Baton's server with
/// `--credentials-file <config>`.
fn read_worktree_config(shared: &Shared, program: &str, worktree: &Path) -> Option<McpConfig> {
    let tree = shared.repo.files(worktree)?;
    agents::worktree_writes(program)
        .into_iter()
        .filter(|write| write.names_config())
        .find_map(|write| {
            let settings: serde_json::Value = serde_json::from_str(tree.get(write.path)?).ok()?;
            let args = settings["mcpServers"]["baton"]["args"].as_array()?;
            let at = args.iter().position(|a| a == "--credentials-file")?;
            read_config_at(&shared.files, Path::new(args.get(at + 1)?.as_str()?))
        })
}

fn read_config_at(files: &FakeFiles, path: &Path) -> Option<McpConfig> {
    let file = files.get(path)?;
    let config: serde_json::Value = serde_json::from_slice(&file.bytes).ok()?;
    let server = &config["mcpServers"]["baton"];
    let args: Vec<&str> = server["args"]
        .as_array()?
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    let after = |flag: &str| {
        let at = args.iter().position(|a| *a == flag)?;
        args.get(at + 1).copied()
    };
    Some(McpConfig {
        task: after("--task-id")?.parse().ok()?,
        done_token: server["env"]["BATON_DONE_TOKEN"].as_str()?.to_owned(),
    })
}

/// Starts the scripted agent of each program the engine spawns.
fn on_spawn(
    shared: &Arc<Shared>,
    inner: Arc<baton_runtime::ports::fakes::FakePty>,
    typed: Arc<Notify>,
) -> crate::pty::OnSpawn {
    let shared = Arc::downgrade(shared);
    Box::new(move |spec: &SpawnSpec| {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let program = spec.argv.first().cloned().unwrap_or_default();
        let config = read_config(&shared.files, &spec.argv)
            .or_else(|| read_worktree_config(&shared, &program, &spec.cwd));
        let Some(config) = config else {
            shared
                .recorder
                .record("daemon", "spawned a program without a readable MCP config");
            return;
        };
        let branch_of = |name: &str| task_branch(name, config.task);
        let (name, script) = shared
            .scripts
            .iter()
            .find(|(name, _)| spec.cwd.ends_with(branch_of(name)))
            .map_or_else(
                || (slug_of(&spec.cwd), Script::default_agent()),
                |(name, script)| (name.clone(), script.clone()),
            );
        let actor = format!("agent {name}");
        let mcp = Arc::new(LinkedMcp {
            shared: shared.clone(),
            actor: actor.clone(),
            task: config.task,
            done_token: config.done_token.clone(),
        });
        let seat = Seat {
            pty: inner.clone(),
            typed: typed.clone(),
            agent: spec.agent,
            profile: agents::profile_of(&program),
            repo: Some((shared.repo.clone(), spec.cwd.clone())),
            mcp: mcp.clone(),
            done_token: config.done_token,
            recorder: shared.recorder.clone(),
            name: actor.clone(),
        };
        shared
            .recorder
            .record(&actor, format!("starts {}", shown_argv(&spec.argv)));
        if let Some(ms) = script.mcp_connect_ms {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                mcp.connected().await;
            });
        }
        tokio::spawn(async move {
            if let Err(error) = play(&seat, &script).await {
                // An agent whose terminal went away while it acted was killed: it stops.
                if seat.pty.is_alive(seat.agent) {
                    seat.recorder.record(&seat.name, format!("stops: {error}"));
                }
            }
        });
    })
}

async fn play(seat: &Seat, script: &Script) -> Result<(), String> {
    if !agent::run(seat, &script.once).await? || script.repeat.is_empty() {
        return Ok(());
    }
    let mut round = 0;
    while script.loops.is_none_or(|loops| round < loops) {
        if !agent::run(seat, &script.repeat).await? {
            return Ok(());
        }
        round += 1;
    }
    Ok(())
}

/// The task's name as its branch spells it (for agents no script names).
fn slug_of(worktree: &Path) -> String {
    let branch = worktree
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    branch
        .rsplit_once('-')
        .map_or(branch, |(slug, _)| slug)
        .to_owned()
}

/// A sub-task's `baton mcp`: the runtime's own MCP client code (`mcp::server::Backend`, the
/// sub-task role) reaching the daemon's REST API over turmoil's TCP, through its link, with
/// the done token its config holds.
struct LinkedMcp {
    shared: Arc<Shared>,
    actor: String,
    task: TaskId,
    /// Its credential, from its config.
    done_token: String,
}

/// Connections over turmoil's simulated TCP, for the runtime's HTTP client: straight, or over
/// an actor's link, meeting its faults one connection at a time (`Links::connect`).
pub struct SimTcp(Option<(Arc<Links>, String)>);

impl SimTcp {
    /// Straight connections, with no link faults.
    #[must_use]
    pub const fn direct() -> Self {
        SimTcp(None)
    }

    /// Connections over `actor`'s link.
    #[must_use]
    pub fn linked(links: Arc<Links>, actor: &str) -> Self {
        SimTcp(Some((links, actor.to_owned())))
    }
}

/// A connection [`SimTcp`] opened.
pub enum SimStream {
    /// Straight.
    Direct(turmoil::net::TcpStream),
    /// Over an actor's link.
    Linked(crate::link::LinkedStream),
}

impl tokio::io::AsyncRead for SimStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            SimStream::Direct(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            SimStream::Linked(s) => std::pin::Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for SimStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            SimStream::Direct(s) => std::pin::Pin::new(s).poll_write(cx, data),
            SimStream::Linked(s) => std::pin::Pin::new(s).poll_write(cx, data),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            SimStream::Direct(s) => std::pin::Pin::new(s).poll_flush(cx),
            SimStream::Linked(s) => std::pin::Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            SimStream::Direct(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            SimStream::Linked(s) => std::pin::Pin::new(s).poll_shutdown(cx),
        }
    }
}

impl baton_runtime::mcp::http::Connect for SimTcp {
    type Stream = SimStream;

    fn connect<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, std::io::Result<Self::Stream>> {
        Box::pin(async move {
            match &self.0 {
                None => turmoil::net::TcpStream::connect((host, port))
                    .await
                    .map(SimStream::Direct),
                Some((links, actor)) => links
                    .clone()
                    .connect(actor.clone(), host, port)
                    .await
                    .map(SimStream::Linked),
            }
        })
    }
}

impl LinkedMcp {
    /// The MCP server of this task as `baton mcp --url <daemon> --task-id <task>` with `token`
    /// as its done token (its own, or another one a script sends).
    fn backend(&self, token: &str) -> Result<baton_runtime::mcp::server::Backend<SimTcp>, String> {
        let var = baton_runtime::agents::DONE_TOKEN_VARS[0];
        self.shared.mcp_process(
            &self.actor,
            ("--task-id", self.task.to_string()),
            (var, token),
        )
    }

    /// Tells the daemon the MCP server started for this task (as the real one does once its
    /// client asked for its tools).
    async fn connected(&self) {
        let answer = match self.backend(&self.done_token) {
            Ok(backend) => backend.announce().await,
            Err(error) => Err(error),
        };
        let line = match answer {
            Ok(()) => "mcp connected".to_owned(),
            Err(error) => format!("mcp connect -> error: {error}"),
        };
        self.shared.recorder.record(&self.actor, line);
    }
}

impl SubTaskMcp for LinkedMcp {
    fn hook(
        &self,
        mut hook: baton_runtime::mcp::hook::Hook,
        token: String,
    ) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            hook.task = self.task.to_string();
            let tcp = SimTcp::linked(self.shared.links.clone(), &self.actor);
            baton_runtime::mcp::hook::report(&tcp, &hook, &token).await
        })
    }

    fn signal_done(&self, token: String) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let backend = self.backend(&token)?;
            // The checker hears of every done that reaches the daemon, whoever sent it.
            let sent = self.shared.recorder.elapsed_ms();
            self.shared.observed().signal_sent(self.task, sent);
            let answer = backend.call("signal_done", &serde_json::Map::new()).await;
            if answer.is_ok() {
                self.shared.observed().signal_given(self.task, sent);
            }
            answer.map(drop)
        })
    }
}

/// The config path the engine writes for a task.
#[must_use]
pub fn config_path(task: TaskId) -> PathBuf {
    PathBuf::from(CONFIG_DIR).join(format!("baton-subtask-{task}.json"))
}

/// An agent's command line as the trace shows it: the sub-task instruction block (given whole
/// to Claude Code's `--append-system-prompt`) by name, not its lines.
fn shown_argv(argv: &[String]) -> String {
    let block = baton_runtime::agents::preamble::block();
    argv.iter()
        .map(|arg| {
            if *arg == block {
                "<the sub-task block>"
            } else {
                arg.as_str()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
