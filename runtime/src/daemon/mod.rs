//! `baton daemon`: the production wiring of the runtime on a user's machine.
//!
//! [`Daemon::start`] takes the state directory (0700) and its lock, reads the state file,
//! binds the REST API on loopback (port selection as the REST spec says) and the app channel
//! on `app.sock`, builds the engine on the production ports and restores every coordinator
//! with its tasks ([`registry`]). [`Daemon::serve_until`] serves until its shutdown future
//! resolves (SIGINT or SIGTERM in the binary, [`shutdown_signal`]), then stops in order: no new
//! connections, WebSockets closed, long polls answered or cancelled (the API's own grace),
//! agents' process groups ended, the state persisted, users' `.mcp.json` files given back.
//!
//! Agents are marked with this daemon's id, the hash of its canonical state directory
//! (`adapters::runaways::DaemonId`), and on Linux the daemon is their orphans' subreaper. A
//! start, once it holds the lock and before the first agent is spawned, ends every process with
//! that mark: what the agents of a previous daemon on the same directory left running when it
//! crashed. A stop ends them too (`NativePty::terminate_all`).
//!
//! A second daemon on the same directory finds the lock held and says which process holds it.
//! A state file this build cannot read stops the start with an error that says what to do:
//! a corrupt one is first moved aside (never overwritten), a newer one is left in place.
//!
//! Layout: `state` (the file's format), `registry` (coordinators, persistence, restore, the
//! `.mcp.json` entries), `app` (the app channel's routes), this module (paths, lock, wiring,
//! shutdown).

pub mod app;
pub mod audit;
pub mod phone;
pub mod registry;
pub mod state;
pub mod terminal;
pub mod wiring;

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::adapters::files::{StdFiles, is_leftover};
use crate::adapters::git::GitRepo;
use crate::adapters::pty::{NativePty, PtyConfig};
use crate::adapters::runaways::{self, DaemonId};
use crate::adapters::{OsEntropy, SystemClock};
use crate::agents::McpLaunch;
use crate::api::listen::{self, BindError, Interfaces, Port};
use crate::endpoints::APP_SOCKET;
use crate::ports::Files as _;
use registry::{Layout, RegistryDoor};

/// The lock file's name in the state directory.
pub const LOCK_FILE: &str = "daemon.lock";
/// How long a shutdown waits for the listeners to close their connections: past the API's
/// own grace for requests in flight (`api::SHUTDOWN_GRACE_MS`).
pub const SERVERS_STOP_MS_MAX: u64 = crate::api::SHUTDOWN_GRACE_MS + 2_000;

/// How to start.
#[derive(Clone, Debug)]
pub struct Options {
    /// The state directory.
    pub state_dir: PathBuf,
    /// The REST API's port.
    pub port: Port,
    /// The `baton` program agents start as their MCP server (this executable).
    pub program: String,
    /// The PTY host's settings (its `daemon` is the start's to set: the state directory's id).
    pub pty: PtyConfig,
}

/// Why the daemon could not start or stopped badly; the text says what to do.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// No state directory could be found or made.
    #[error("state directory {}: {reason}", .dir.display())]
    StateDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        reason: String,
    },
    /// Another daemon holds the lock.
    #[error(
        "another baton daemon{} is already using {}; stop it first, or give this one another --state-dir",
        .pid.map(|p| format!(" (pid {p})")).unwrap_or_default(), .dir.display()
    )]
    AlreadyRunning {
        /// The state directory.
        dir: PathBuf,
        /// The other daemon's process id, if it wrote one.
        pid: Option<u32>,
    },
    /// The state file is corrupt; it was moved aside.
    #[error(
        "{reason}; it was moved to {} so that nothing is lost. Start again to begin with an empty state (or put a good copy back)",
        .kept.display()
    )]
    CorruptState {
        /// What is wrong.
        reason: String,
        /// Where it is now.
        kept: PathBuf,
    },
    /// The state file is from a newer Baton; it was left as it is.
    #[error(
        "{} was written by a newer Baton (format {found}; this one reads up to {}). Upgrade Baton, or move the file away to begin with an empty state",
        .path.display(), state::FORMAT
    )]
    FutureState {
        /// The file.
        path: PathBuf,
        /// Its format.
        found: u32,
    },
    /// The REST API could not listen.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The app channel could not listen.
    #[error("cannot listen on {}: {reason}", .path.display())]
    Socket {
        /// The socket.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The operating system's random device cannot be opened.
    #[error("cannot open /dev/urandom: {0}")]
    Randomness(String),
    /// The registry failed (the state file could not be written).
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
}

/// The default state directory: `$XDG_STATE_HOME/baton`, else `~/.local/state/baton`.
///
/// # Errors
/// Neither variable is set to an absolute path.
pub fn default_state_dir(var: impl Fn(&str) -> Option<String>) -> Result<PathBuf, DaemonError> {
    let absolute = |name: &str| var(name).map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(state) = absolute("XDG_STATE_HOME") {
        return Ok(state.join("baton"));
    }
    absolute("HOME")
        .map(|home| home.join(".local/state/baton"))
        .ok_or_else(|| DaemonError::StateDir {
            dir: PathBuf::from("~/.local/state/baton"),
            reason: "neither XDG_STATE_HOME nor HOME is set to an absolute path; pass --state-dir"
                .to_owned(),
        })
}

/// A started daemon. See the module documentation.
pub struct Daemon {
    api_url: String,
    socket: PathBuf,
    state_dir: PathBuf,
    registry: RegistryDoor,
    registry_task: tokio::task::JoinHandle<()>,
    phone: phone::Phone,
    pty: Arc<NativePty>,
    stop: crate::api::latest::Publisher<bool>,
    servers: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// Held until the daemon is dropped: the lock.
    _lock: File,
}

impl Daemon {
    /// Starts a daemon. See the module documentation.
    ///
    /// # Errors
    /// See [`DaemonError`].
    pub async fn start(options: Options) -> Result<Self, DaemonError> {
        let dir = options.state_dir.clone();
        prepare_dir(&dir)?;
        let lock = take_lock(&dir)?;
        let layout = Layout::in_dir(&dir);
        let files = Arc::new(StdFiles::default());
        let state = read_state(&files, &layout.state_file).await?;
        sweep_leftovers(&files, &[&dir, &layout.config_dir]).await;
        let tcp = listen::bind_tcp(Interfaces::Loopback, options.port).await?;
        let port = tcp.local_addr().map(|a| a.port()).unwrap_or_default();
        let api_url = format!("http://127.0.0.1:{port}");
        let socket = dir.join(APP_SOCKET);
        let unix = listen::bind_unix(&socket).map_err(|e| DaemonError::Socket {
            path: socket.clone(),
            reason: e.to_string(),
        })?;
        let pty = Arc::new(NativePty::new(PtyConfig {
            daemon: Some(DaemonId::of_state_dir(
                &std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone()),
            )),
            ..options.pty
        }));
        if let Err(error) = runaways::adopt_orphans() {
            tracing::info!(%error, "orphans of agents are left to init");
        }
        // Before the registry restores anything: agents started from now on carry this mark.
        let leftovers = pty.end_leftovers().await;
        if leftovers > 0 {
            tracing::warn!(
                leftovers,
                "ended processes that the agents of a previous daemon on this state directory left running"
            );
        }
        let entropy: Arc<dyn crate::ports::Entropy> =
            Arc::new(OsEntropy::open().map_err(|e| DaemonError::Randomness(e.to_string()))?);
        let files_port: Arc<dyn crate::ports::Files> = files.clone();
        let machine = wiring::Machine {
            clock: Arc::new(SystemClock),
            entropy: entropy.clone(),
            pty: pty.clone(),
            repo: Arc::new(GitRepo::default()),
            files,
        };
        let host = wiring::Host {
            layout,
            launch: McpLaunch {
                command: options.program.clone(),
                url: api_url.clone(),
            },
            root_outside_a_sandbox: crate::adapters::root_outside_a_sandbox(),
        };
        let wired = wiring::start(machine, host, state).await?;
        let (door, registry_task, restored) = (wired.registry, wired.registry_task, wired.restored);
        let (stop, stopped) = crate::api::latest::channel(false);
        let until_stopped = move || {
            let mut stopped = stopped.clone();
            async move {
                stopped.wait_for(|stop| *stop).await;
            }
        };
        let api = wired.api;
        let phone = phone::Phone::new(api.clone(), door.clone(), entropy, files_port, &dir);
        phone.resume().await;
        let app = app::router(app::AppState {
            registry: door.clone(),
            api_url: api_url.clone(),
            state_dir: dir.clone(),
            directory: wired.directory,
            events: wired.events,
            phone: phone.clone(),
        });
        let servers = vec![
            tokio::spawn(crate::api::serve(
                tcp,
                api,
                crate::api::Listening::loopback(port),
                until_stopped(),
            )),
            tokio::spawn(crate::api::server::run(
                unix,
                app,
                crate::api::guard::Limits::APP,
                until_stopped(),
            )),
        ];
        tracing::info!(
            api = %api_url,
            socket = %socket.display(),
            coordinators = restored.coordinators,
            tasks = restored.tasks,
            mcp_json_restored = restored.mcp_json_restored,
            stale_configs_removed = restored.stale_configs_removed,
            "daemon started"
        );
        Ok(Daemon {
            api_url,
            socket,
            state_dir: dir,
            registry: door,
            registry_task,
            phone,
            pty,
            stop,
            servers,
            _lock: lock,
        })
    }

    /// The REST API's base URL (`http://127.0.0.1:<port>`).
    #[must_use]
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// The app channel's socket.
    #[must_use]
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The state directory.
    #[must_use]
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Serves until `shutdown` resolves, then stops in order (module documentation).
    pub async fn serve_until(self, shutdown: impl Future<Output = ()>) {
        shutdown.await;
        tracing::info!("shutting down");
        self.phone.close().await;
        self.stop.publish(true);
        for mut server in self.servers {
            // The API ends what runs past its grace itself; a client of the app channel that
            // never closes is cut off here.
            let limit = Duration::from_millis(SERVERS_STOP_MS_MAX);
            match crate::time::timeout(limit, &mut server).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => tracing::warn!(%error, "a listener failed while stopping"),
                Ok(Err(error)) => tracing::warn!(%error, "a server task failed"),
                Err(_) => {
                    tracing::warn!("a server did not stop in time; its connections are cut");
                    server.abort();
                }
            }
        }
        self.pty.terminate_all().await;
        self.registry.shutdown().await;
        let _ = self.registry_task.await;
        let _ = std::fs::remove_file(&self.socket);
        tracing::info!("stopped");
    }
}

/// Resolves at the first SIGINT, SIGTERM or SIGHUP (a closed terminal); a second one ends the
/// process at once (exit status 130), for a shutdown that hangs.
///
/// # Errors
/// The signal handlers could not be installed.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut streams = [
        signal(SignalKind::interrupt())?,
        signal(SignalKind::terminate())?,
        signal(SignalKind::hangup())?,
    ];
    Ok(async move {
        any_signal(&mut streams).await;
        tokio::spawn(async move {
            any_signal(&mut streams).await;
            tracing::warn!("a second signal: stopping now, without the rest of the shutdown");
            std::process::exit(130);
        });
    })
}

/// Resolves when any of `streams` receives a signal.
async fn any_signal([interrupt, terminate, hangup]: &mut [tokio::signal::unix::Signal; 3]) {
    tokio::select! {
        biased;
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
        _ = hangup.recv() => {}
    }
}

/// Makes the state directory, owner only; an existing one others can enter is refused rather
/// than changed (it may be shared, like `/tmp`).
fn prepare_dir(dir: &Path) -> Result<(), DaemonError> {
    let fail = |reason: String| DaemonError::StateDir {
        dir: dir.to_owned(),
        reason,
    };
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => Err(fail("it is not a directory".to_owned())),
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => Err(fail(format!(
            "other users can reach it (mode {:o}); give a private directory, or `chmod 700` it",
            meta.permissions().mode() & 0o777
        ))),
        Ok(_) => Ok(()),
        Err(_) => {
            std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
            // Owner only: the socket, the credentials and the state are the user's alone.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| fail(e.to_string()))
        }
    }
}

fn take_lock(dir: &Path) -> Result<File, DaemonError> {
    let path = dir.join(LOCK_FILE);
    let fail = |e: std::io::Error| DaemonError::StateDir {
        dir: dir.to_owned(),
        reason: format!("lock file {}: {e}", path.display()),
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(fail)?;
    let locked = rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive);
    if let Err(error) = locked
        && error != rustix::io::Errno::WOULDBLOCK
    {
        return Err(fail(error.into()));
    }
    if locked.is_err() {
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        return Err(DaemonError::AlreadyRunning {
            dir: dir.to_owned(),
            pid: text.trim().parse().ok(),
        });
    }
    file.set_len(0).map_err(fail)?;
    file.rewind().map_err(fail)?;
    writeln!(file, "{}", std::process::id()).map_err(fail)?;
    Ok(file)
}

async fn read_state(files: &StdFiles, path: &Path) -> Result<state::State, DaemonError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let bytes = files
        .read(dir, path)
        .await
        .map_err(|e| DaemonError::StateDir {
            dir: path.to_owned(),
            reason: e.to_string(),
        })?;
    let Some(bytes) = bytes else {
        return Ok(state::State::default());
    };
    match state::decode(&bytes) {
        Ok(state) => Ok(state),
        Err(state::StateError::FutureFormat { found }) => Err(DaemonError::FutureState {
            path: path.to_owned(),
            found,
        }),
        Err(error @ state::StateError::Corrupt(_)) => {
            let kept = aside(path);
            std::fs::rename(path, &kept).map_err(|e| DaemonError::StateDir {
                dir: path.to_owned(),
                reason: format!("{error}, and it could not be moved aside: {e}"),
            })?;
            Err(DaemonError::CorruptState {
                reason: format!("{} is corrupt: {error}", path.display()),
                kept,
            })
        }
    }
}

/// A name beside `path` no file has yet: `state.json.corrupt`, then `.corrupt-2`, ….
fn aside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (1..)
        .map(|n| {
            let suffix = if n == 1 {
                ".corrupt".to_owned()
            } else {
                format!(".corrupt-{n}")
            };
            path.with_file_name(format!("{name}{suffix}"))
        })
        .find(|candidate| !candidate.exists())
        .unwrap_or_else(|| path.with_file_name(format!("{name}.corrupt")))
}

/// Removes what interrupted atomic writes left in `dirs`.
async fn sweep_leftovers(files: &StdFiles, dirs: &[&Path]) {
    for dir in dirs {
        for path in files.list(dir).await.unwrap_or_default() {
            if is_leftover(&path) {
                let _ = files.remove(dir, &path).await;
            }
        }
    }
}
