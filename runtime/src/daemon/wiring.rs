//! A daemon over any ports: the engine, the registry that owns it and the API's state, wired as
//! one (the coordinators' own agents are their actors'). The production daemon ([`super::Daemon::start`]) starts
//! it on the machine's ports; the simulator's daemon host starts the same on simulated ones, so
//! registration, the `.mcp.json` wiring, the state file, restore and deregistration run there
//! as they run for a user.
//!
//! The audit trail's writer starts here too (`audit.log` in the state directory), so the
//! simulator's daemon keeps one as the real one does.
//!
//! What stays outside: the state directory and its lock, reading the state file (a corrupt one
//! is moved aside), runaways, the listeners, phone access, signals.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};

use super::registry::{self, Layout, Registry, RegistryDoor, RegistryError, Restored};
use super::state::State;
use super::terminal::APP_EVENT_FEED_MAX;
use crate::agents::McpLaunch;
use crate::api::latest::Latest;
use crate::api::latest::Publisher;
use crate::api::{ApiState, Directory, TaskIndex};
use crate::engine::{APP_EVENTS_MAX, AppEvent, Engine, Ports};
use crate::ports::{Clock, Entropy, Files, PtyHost, Repo};

/// The ports a daemon runs on; its journal is the registry's own ([`registry::RegistryJournal`]).
#[derive(Clone)]
pub struct Machine {
    /// Wall time.
    pub clock: Arc<dyn Clock>,
    /// Randomness: ids and tokens.
    pub entropy: Arc<dyn Entropy>,
    /// Terminals.
    pub pty: Arc<dyn PtyHost>,
    /// Git.
    pub repo: Arc<dyn Repo>,
    /// Files: the state file, MCP configs, users' `.mcp.json`, what goes into worktrees.
    pub files: Arc<dyn Files>,
}

/// What a daemon is told of where it runs.
#[derive(Clone, Debug)]
pub struct Host {
    /// Its files.
    pub layout: Layout,
    /// How agents start Baton's MCP server, and the API's URL.
    pub launch: McpLaunch,
    /// Whether it runs as root outside a sandbox an agent recognises: Claude Code then refuses
    /// its skip-permission flag, and so does registration
    /// ([`crate::adapters::root_outside_a_sandbox`] on a real machine; a simulation says).
    pub root_outside_a_sandbox: bool,
}

/// A started daemon's parts.
pub struct Wired {
    /// The registry's door: the app channel's requests.
    pub registry: RegistryDoor,
    /// The registry's task (ends once it is shut down).
    pub registry_task: tokio::task::JoinHandle<()>,
    /// What the API serves from, as the registry publishes it.
    pub directory: Latest<Directory>,
    /// The API's state.
    pub api: ApiState,
    /// The engine's events, for every follower.
    pub events: broadcast::Sender<AppEvent>,
    /// The same events from before the first one on (the restore's included).
    pub tap: broadcast::Receiver<AppEvent>,
    /// What the start found and restored.
    pub restored: Restored,
}

/// Starts the engine and the registry on `machine`, restores
/// `state` and spawns the registry's task.
///
/// # Errors
/// The restored state cannot be written back (see [`Registry::start`]).
pub async fn start(machine: Machine, host: Host, state: State) -> Result<Wired, RegistryError> {
    let (requests_tx, requests) = registry::channel();
    let (audit, _writer) = super::audit::start(
        machine.files.clone(),
        machine.clock.clone(),
        host.layout.state_dir.clone(),
    );
    let ports = Ports {
        clock: machine.clock,
        entropy: machine.entropy,
        pty: machine.pty,
        repo: machine.repo,
        files: machine.files,
        journal: Arc::new(registry::RegistryJournal(requests_tx.clone())),
    };
    let (events_tx, events_rx) = mpsc::channel(APP_EVENTS_MAX);
    let engine = Engine::new(ports.clone(), events_tx);
    let (events, tap) = broadcast::channel(APP_EVENT_FEED_MAX);
    tokio::spawn(registry::log_events(events_rx, events.clone()));
    let tasks_followed = events.subscribe();
    let feed = engine.agent_feed();
    let (publisher, directory) = crate::api::latest::channel(Directory::default());
    let (registry, restored) = Registry::start(
        ports,
        host,
        state,
        (engine, Directory::default(), publisher),
    )
    .await?;
    let (door, registry_task) = registry.spawn((requests_tx, requests));
    // The tasks restored so far, then what the events tell (buffered since before the restore).
    let mut known = TaskIndex::new();
    let published = directory.get();
    for handle in published.coordinators.values().chain(&published.orphans) {
        for task in handle.list_tasks().await.unwrap_or_default() {
            known.insert(task.id, handle.id());
        }
    }
    let (index_publisher, index) = crate::api::latest::channel(known.clone());
    tokio::spawn(follow_tasks(tasks_followed, known, index_publisher));
    let api = ApiState::new(directory.clone(), feed)
        .with_task_index(index)
        .with_audit(audit);
    Ok(Wired {
        registry: door,
        registry_task,
        directory,
        api,
        events,
        tap,
        restored,
    })
}

/// Keeps the API's [`TaskIndex`] as the engine's events tell: a task created is its
/// coordinator's, a task closed is gone. Events missed (the feed lagged) leave it stale, which
/// the API tolerates (it asks every coordinator for a task the index does not place right).
async fn follow_tasks(
    mut events: broadcast::Receiver<AppEvent>,
    mut known: TaskIndex,
    publisher: Publisher<TaskIndex>,
) {
    loop {
        let changed = match events.recv().await {
            Ok(AppEvent::TaskCreated { coordinator, task }) => {
                known.insert(task.id, coordinator) != Some(coordinator)
            }
            Ok(AppEvent::TaskClosed(task)) => known.remove(&task).is_some(),
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => false,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if changed {
            publisher.publish(known.clone());
        }
    }
}
