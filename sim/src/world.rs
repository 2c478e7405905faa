//! The simulated world: a turmoil simulation whose daemon host runs the real engine on the
//! runtime's stateful fakes (PTYs, repositories, files, seeded entropy, a clock that follows
//! simulated time).
//!
//! Time: turmoil advances every host's tokio clock by [`TICK_MS`] per step, so the engine's
//! timers (the prompt's Enter delay, the detector's stability, wait timeouts, notification
//! delays) run on simulated time, and nothing reads the machine's clock. The same seed gives the
//! same ids, the same order and the same trace.
//!
//! Hosts: the daemon is the host [`DAEMON_HOST`]. Until the REST layer exists, a scenario's
//! actors act from inside that host; with it, each coordinator and sub-task MCP process becomes
//! its own host calling the daemon over turmoil's network.

use std::cell::RefCell;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use baton_runtime::core::ids::TaskId;
use baton_runtime::core::time::Millis;
use baton_runtime::engine::{AppEvent, CoordinatorSettings, Engine, Ports, SpawnDefaults};
use baton_runtime::ports::fakes::{FakeClock, FakeFiles, FakePty, FakeRepo, SeededEntropy};
use tokio::sync::mpsc;

use crate::trace::{Recorder, Trace};

/// The daemon's host name in the simulation.
pub const DAEMON_HOST: &str = "daemon";
/// Simulated time per turmoil step: a millisecond, the engine's finest unit of time.
pub const TICK_MS: u64 = 1;
/// A simulation that runs longer than this (six simulated hours) stops with an error.
pub const SIMULATION_MS_MAX: u64 = 6 * 60 * 60 * 1_000;
/// Wall time at the start of every simulation (2023-11-14T22:13:20Z), the same on every machine.
pub const EPOCH_MS: u64 = 1_700_000_000_000;
/// The project's repository, with its main branch `main`.
pub const PROJECT_ROOT: &str = "/repo";
/// Where sub-tasks' MCP configs are written.
pub const CONFIG_DIR: &str = "/tmp/baton";
/// App events the daemon buffers between two looks at them.
pub const APP_EVENTS_MAX: usize = 1_024;

/// The daemon host's state: the engine, its fake ports, and the trace being written.
pub struct Daemon {
    /// Agents' terminals.
    pub pty: Arc<FakePty>,
    /// Repositories.
    pub repo: Arc<FakeRepo>,
    /// Files.
    pub files: Arc<FakeFiles>,
    /// The engine under test.
    pub engine: Engine,
    recorder: Recorder,
}

impl Daemon {
    /// A daemon with an empty engine and the repository [`PROJECT_ROOT`]; call it on its host.
    fn new(seed: u64) -> Self {
        let pty = Arc::new(FakePty::default());
        let repo = Arc::new(FakeRepo::default());
        let files = Arc::new(FakeFiles::default());
        repo.add_repo(Path::new(PROJECT_ROOT), "main");
        let ports = Ports {
            clock: Arc::new(FakeClock::starting_at(Millis(EPOCH_MS))),
            entropy: Arc::new(SeededEntropy::new(seed)),
            pty: pty.clone(),
            repo: repo.clone(),
            files: files.clone(),
        };
        let (events_tx, mut events) = mpsc::channel(APP_EVENTS_MAX);
        let recorder = Recorder::new();
        // The app: every event it is told goes into the trace when it arrives.
        let app = recorder.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                app.record("app", describe(&event));
            }
        });
        Daemon {
            pty,
            repo,
            files,
            engine: Engine::new(ports, events_tx),
            recorder,
        }
    }

    /// The settings a simulated coordinator registers with: Claude Code in [`PROJECT_ROOT`].
    #[must_use]
    pub fn settings() -> CoordinatorSettings {
        CoordinatorSettings {
            project_root: PROJECT_ROOT.into(),
            spawn: SpawnDefaults {
                command: "claude".into(),
                args: Vec::new(),
            },
            skip_permissions: false,
            notification_delay_ms: 30_000,
            config_dir: CONFIG_DIR.into(),
        }
    }

    /// Simulated milliseconds since the world started.
    #[must_use]
    pub fn elapsed_ms(&self) -> u64 {
        self.recorder.elapsed_ms()
    }

    /// The recorder other actors of this world (scripted agents) write the trace through.
    #[must_use]
    pub fn recorder(&self) -> Recorder {
        self.recorder.clone()
    }

    /// Records an event of `actor` at the current simulated time.
    pub fn record(&self, actor: &str, what: impl std::fmt::Display) {
        self.recorder.record(actor, what);
    }

    /// The done token in a task's MCP config, as its agent's MCP server would read it.
    #[must_use]
    pub fn done_token(&self, task: TaskId) -> Option<String> {
        let path = PathBuf::from(CONFIG_DIR).join(format!("baton-subtask-{task}.json"));
        let config: serde_json::Value =
            serde_json::from_slice(&self.files.get(&path)?.bytes).ok()?;
        config["mcpServers"]["baton"]["env"]["BATON_DONE_TOKEN"]
            .as_str()
            .map(str::to_owned)
    }

    /// Lets `ms` of simulated time pass.
    pub async fn pause(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// One line for an app event (ids kept: they come from the seed, so they are stable).
fn describe(event: &AppEvent) -> String {
    match event {
        AppEvent::TaskCreated { task, .. } => format!("task created {} ({})", task.name, task.id),
        AppEvent::TaskClosed(task) => format!("task closed {task}"),
        AppEvent::CleanupFailed { task, error } => format!("cleanup failed {task}: {error}"),
        AppEvent::Notice(_, notice) => format!("notice {notice:?}"),
        AppEvent::State(task, change) => format!("state {task} {change:?}"),
        AppEvent::Orphaned { task, text } => format!("orphaned {task}: {text}"),
    }
}

/// Runs `body` on the daemon host of a world seeded with `seed`, and returns its trace.
///
/// # Errors
/// The body failed, or the simulation ran past [`SIMULATION_MS_MAX`].
pub fn run<F, Fut>(seed: u64, body: F) -> anyhow::Result<Trace>
where
    F: FnOnce(Daemon) -> Fut + 'static,
    Fut: Future<Output = anyhow::Result<Daemon>> + 'static,
{
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .tick_duration(Duration::from_millis(TICK_MS))
        .simulation_duration(Duration::from_millis(SIMULATION_MS_MAX))
        .epoch(UNIX_EPOCH + Duration::from_millis(EPOCH_MS))
        .build();
    let out: Rc<RefCell<Option<Trace>>> = Rc::default();
    let slot = out.clone();
    sim.client(DAEMON_HOST, async move {
        let daemon = body(Daemon::new(seed)).await.map_err(|e| e.to_string())?;
        // One more millisecond, so the app has taken in the last events.
        daemon.pause(TICK_MS).await;
        *slot.borrow_mut() = Some(daemon.recorder.snapshot());
        Ok(())
    });
    sim.run()
        .map_err(|error| anyhow::anyhow!("simulation failed: {error}"))?;
    let trace = out.borrow_mut().take();
    trace.ok_or_else(|| anyhow::anyhow!("the simulation ended without a trace"))
}
