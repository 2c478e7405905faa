//! The `PtyHost` port on real pseudo-terminals (portable-pty).
//!
//! Each session has a reader task on the async runtime that moves the terminal's output into the
//! session's bounded event channel (it waits when the engine falls behind, so the agent blocks
//! on a full terminal instead of memory growing), and a waiter thread that reaps the process.
//! The agent leads a
//! session and process group of its own (portable-pty calls `setsid`), so killing it is killing
//! that group: SIGHUP and SIGTERM first, as a closing terminal does, then SIGKILL after
//! [`PtyConfig::kill_grace_ms`] for whatever ignored them. When the agent itself has exited,
//! what it left running in its group is killed too (before it is reaped, so its group id
//! cannot have been reused), the terminal reaches end-of-file and its exit is reported after
//! its last output.
//!
//! A descendant that left the group (`setsid`, a daemonising tool) is a runaway
//! ([`runaways`]). With [`PtyConfig::daemon`] set, every agent carries its daemon's and
//! its own mark in its environment, and on Linux its exit is handled by also ending every
//! process that carries its mark (SIGTERM, SIGKILL after the grace), before the exit is
//! reported: a runaway holding the terminal open no longer holds the report back, and whoever
//! sees the exit sees nothing of the agent left. `terminate_all` ends everything with the
//! daemon's mark, and [`NativePty::end_leftovers`] what a crashed predecessor left. Elsewhere
//! (macOS) a runaway that keeps the terminal open delays the report until it closes it, and
//! `terminate_all` gives up on it after its bounds.
//!
//! Terminal queries (cursor position, device attributes) are answered by the engine: the
//! detector reports them and the core writes the replies through [`PtyHost::write`]. A
//! session's scrollback ring is the engine's too (one per task, `SCROLLBACK_BYTES_MAX`).
//!
//! Writes are blocking writes on the blocking thread pool (the terminal is non-blocking for its
//! reader, so a write waits for room itself): a terminal whose agent stopped reading holds that
//! write (and only it) until the agent reads or dies.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use filedescriptor::FileDescriptor;
use portable_pty::{CommandBuilder, MasterPty, PtySize};
use rustix::process::{WaitId, WaitIdOptions};
use tokio::io::unix::AsyncFd;
use tokio::io::{Interest, Ready};
use tokio::sync::{mpsc, oneshot};

use crate::adapters::runaways::{self, DaemonId, Mark};
use crate::core::ids::AgentId;
use crate::ports::{BoxFuture, ExitStatus, PtyError, PtyEvent, PtyHost, PtySession, SpawnSpec};

/// Bytes one output event carries at most: one read of the terminal, which takes all it holds up
/// to this bound (Linux's terminals hold 4 KiB at a time; the engine joins events that wait
/// together, up to `OUTPUT_COALESCE_BYTES_MAX`).
pub const PTY_READ_CHUNK_BYTES: usize = 16 * 1024;
/// Output events waiting for the engine per session (at most this many chunks, 1 MiB): the
/// reader waits beyond it.
pub const PTY_EVENTS_MAX: usize = 64;
/// Wait between asking an agent's process group to end (SIGHUP, SIGTERM) and SIGKILL.
pub const KILL_GRACE_MS_DEFAULT: u64 = 3_000;
/// How long a shutdown waits for agents to end after SIGKILL (the kernel reaps at once; this
/// bounds a process stuck in the kernel).
pub const KILLED_WAIT_MS: u64 = 2_000;
/// The terminal type agents see unless their spawn spec sets one.
pub const TERM_DEFAULT: &str = "xterm-256color";
/// Variables by which CLIs tell they run in a CI job, not an interactive terminal: an agent
/// does not inherit them from the daemon's environment (its spawn spec may still set them).
/// With `CI=true` Gemini CLI, for one, leaves its interactive interface for headless mode and
/// exits asking for credentials; Ink-based interfaces stop redrawing.
pub const CI_MARKERS: &[&str] = &[
    "CI",
    "CONTINUOUS_INTEGRATION",
    "GITHUB_ACTIONS",
    "BUILD_NUMBER",
    "RUN_ID",
];
/// The prefix of the per-job variables CI systems set (`CI_JOB_ID`, …), read as markers too.
pub const CI_MARKER_PREFIX: &str = "CI_";

/// Which of the names in an environment are CI markers ([`CI_MARKERS`], [`CI_MARKER_PREFIX`]).
fn ci_markers<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    names
        .filter(|name| CI_MARKERS.contains(name) || name.starts_with(CI_MARKER_PREFIX))
        .collect()
}

/// How the host treats its sessions.
#[derive(Clone, Copy, Debug)]
pub struct PtyConfig {
    /// See [`KILL_GRACE_MS_DEFAULT`]; runaways get the same grace.
    pub kill_grace_ms: u64,
    /// The daemon whose agents these are: each is marked with it and with its own id, and
    /// what carries the marks is ended with the agent and with the daemon
    /// ([`runaways`]). `Daemon::start` sets it from its state directory. None (the
    /// default): no marks and no sweeps, process groups only.
    pub daemon: Option<DaemonId>,
}

impl Default for PtyConfig {
    fn default() -> Self {
        PtyConfig {
            kill_grace_ms: KILL_GRACE_MS_DEFAULT,
            daemon: None,
        }
    }
}

struct Session {
    master: Box<dyn MasterPty + Send>,
    /// The terminal, for input (a duplicate of the reader's: non-blocking too).
    writer: Arc<Mutex<FileDescriptor>>,
    /// The process group (the agent's pid: it leads its own session).
    group: Option<rustix::process::Pid>,
}

type Sessions = Arc<Mutex<BTreeMap<AgentId, Session>>>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Real terminals. See the module documentation.
#[derive(Default)]
pub struct NativePty {
    config: PtyConfig,
    sessions: Sessions,
    /// Told whenever a session ends.
    ended: Arc<tokio::sync::Notify>,
}

impl NativePty {
    /// A host with `config`.
    #[must_use]
    pub fn new(config: PtyConfig) -> Self {
        NativePty {
            config,
            sessions: Sessions::default(),
            ended: Arc::default(),
        }
    }

    /// How many sessions are running.
    #[must_use]
    pub fn running(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// Ends every session, as a shutdown does: SIGHUP and SIGTERM to every agent's group,
    /// SIGKILL to those still running after the grace; resolves once all have ended (or
    /// [`KILLED_WAIT_MS`] after the SIGKILL). Every process with the daemon's mark gets the
    /// same SIGTERM and SIGKILL (a runaway holding a terminal open holds its session), and a
    /// last SIGKILL once the agents are done: for a runaway its agent's own sweep missed (it
    /// dropped its agent's mark, or that sweep was still in its grace).
    pub async fn terminate_all(&self) {
        use rustix::process::Signal;
        let kill_marked = |mark: &Mark| runaways::end_marked(mark, Duration::ZERO);
        self.signal_all(&[Signal::HUP, Signal::TERM]);
        self.sweep_daemon(runaways::ask_marked_to_end).await;
        if !self.all_ended_within(self.config.kill_grace_ms).await {
            self.signal_all(&[Signal::KILL]);
            self.sweep_daemon(kill_marked).await;
            self.all_ended_within(KILLED_WAIT_MS).await;
        }
        self.sweep_daemon(kill_marked).await;
    }

    /// Ends what a previous daemon on the same state directory left running (it crashed, or
    /// was killed with SIGKILL): every process with this host's daemon mark, its leftover
    /// agents with their runaways, SIGTERM then SIGKILL after the grace. Call it before the
    /// first spawn, since every agent started after carries the same mark. How many processes
    /// were found; none without [`PtyConfig::daemon`], or off Linux.
    pub async fn end_leftovers(&self) -> usize {
        let grace = Duration::from_millis(self.config.kill_grace_ms);
        self.sweep_daemon(move |mark| runaways::end_marked(mark, grace))
            .await
    }

    /// `sweep` with the daemon's mark, on a blocking thread: how many processes it found (none
    /// without [`PtyConfig::daemon`]).
    async fn sweep_daemon(&self, sweep: impl FnOnce(&Mark) -> usize + Send + 'static) -> usize {
        let Some(daemon) = self.config.daemon else {
            return 0;
        };
        tokio::task::spawn_blocking(move || sweep(&Mark::daemon(daemon)))
            .await
            .unwrap_or(0)
    }

    fn signal_all(&self, signals: &[rustix::process::Signal]) {
        let groups: Vec<_> = lock(&self.sessions)
            .values()
            .filter_map(|s| s.group)
            .collect();
        for group in groups {
            for signal in signals {
                signal_group(group, *signal);
            }
        }
    }

    async fn all_ended_within(&self, ms: u64) -> bool {
        let waiting = async {
            loop {
                let ended = self.ended.notified();
                if self.running() == 0 {
                    return;
                }
                ended.await;
            }
        };
        tokio::time::timeout(Duration::from_millis(ms), waiting)
            .await
            .is_ok()
    }

    fn spawn_now(&self, spec: SpawnSpec) -> Result<PtySession, PtyError> {
        let spawn_error = |reason: String| PtyError::Spawn {
            program: spec.argv.first().cloned().unwrap_or_default(),
            reason,
        };
        let Some(program) = spec.argv.first() else {
            return Err(spawn_error("no program given".to_owned()));
        };
        let pair = portable_pty::native_pty_system()
            .openpty(PtySize {
                rows: spec.rows,
                cols: spec.cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .map_err(|e| spawn_error(format!("no terminal: {e}")))?;
        let mut command = CommandBuilder::new(program);
        command.args(&spec.argv[1..]);
        command.cwd(&spec.cwd);
        let inherited: Vec<String> = command
            .iter_full_env_as_str()
            .map(|(name, _)| name)
            .filter(|name| !spec.env.iter().any(|(k, _)| k == name))
            .map(str::to_owned)
            .collect();
        for name in ci_markers(inherited.iter().map(String::as_str)) {
            command.env_remove(name);
        }
        if !spec.env.iter().any(|(k, _)| k == "TERM") {
            command.env("TERM", TERM_DEFAULT);
        }
        for (key, value) in &spec.env {
            command.env(key, value);
        }
        // Last: a spawn spec cannot take an agent out of its sweeps.
        let mark = self
            .config
            .daemon
            .map(|daemon| Mark::agent(daemon, spec.agent));
        for (name, value) in mark.iter().flat_map(Mark::variables) {
            command.env(name, value);
        }
        // Forked and registered under the registry's lock: the reaper cannot take an agent
        // that ends at once for an orphan.
        let mut agents = runaways::agents();
        let mut child = pair
            .slave
            .spawn_command(command)
            .map_err(|e| spawn_error(e.to_string()))?;
        // Only the agent holds the terminal's other end: its exit brings end-of-file.
        drop(pair.slave);
        let group = child
            .process_id()
            .and_then(|pid| rustix::process::Pid::from_raw(i32::try_from(pid).ok()?));
        if let Some(group) = group {
            agents.insert(group.as_raw_pid());
        }
        drop(agents);
        let io_error = |e: anyhow::Error| spawn_error(format!("terminal: {e}"));
        let terminal = pair
            .master
            .as_raw_fd()
            .ok_or_else(|| anyhow::anyhow!("the terminal has no file descriptor"));
        let ends = terminal.and_then(|fd| {
            let mut reader = FileDescriptor::dup(&fd)?;
            // Shared with the writer (one open terminal): its writes wait for room themselves.
            reader.set_non_blocking(true)?;
            // Sound here, whatever the deprecation says of the general case: the watched
            // descriptor is the `FileDescriptor`'s own, which the `AsyncFd` owns and nothing
            // else closes or replaces while it is registered.
            #[expect(deprecated, reason = "the safe constructor; see the comment above")]
            let reader = AsyncFd::with_interest(reader, Interest::READABLE)?;
            Ok((reader, FileDescriptor::dup(&fd)?))
        });
        let (reader, writer) = match ends {
            Ok(ends) => ends,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                if let Some(group) = group {
                    runaways::agents().remove(&group.as_raw_pid());
                }
                return Err(io_error(e));
            }
        };
        let (events, receiver) = mpsc::channel(PTY_EVENTS_MAX);
        let (reaped, exit) = oneshot::channel();
        let agent = spec.agent;
        let grace = Duration::from_millis(self.config.kill_grace_ms);
        let (sessions, ended) = (self.sessions.clone(), self.ended.clone());
        lock(&self.sessions).insert(
            agent,
            Session {
                master: pair.master,
                writer: Arc::new(Mutex::new(writer)),
                group,
            },
        );
        let waiter_sessions = sessions.clone();
        let waiter = std::thread::Builder::new()
            .name(format!("pty-wait-{agent}"))
            .spawn(move || {
                let Some(group) = group else {
                    let _ = reaped.send(wait(&mut *child));
                    return;
                };
                // Exited but not yet reaped, its id cannot be reused: what it left in its
                // group (which would hold the terminal open) is killed now, and nothing
                // signals that group once it is reaped.
                let options = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT;
                let exited = loop {
                    match rustix::process::waitid(WaitId::Pid(group), options) {
                        Err(rustix::io::Errno::INTR) => {}
                        waited => break waited.is_ok(),
                    }
                };
                signal_group(group, rustix::process::Signal::KILL);
                if let Some(session) = lock(&waiter_sessions).get_mut(&agent) {
                    session.group = None;
                }
                // Then what left the group with the agent's mark, before the exit is told.
                if let Some(mark) = &mark {
                    let _ = runaways::end_marked(mark, grace);
                }
                // Reaped and struck off under the registry's lock (at once: it has exited), so
                // a new agent given the same pid is never struck off in its place.
                let agents = exited.then(runaways::agents);
                let status = wait(&mut *child);
                agents
                    .unwrap_or_else(runaways::agents)
                    .remove(&group.as_raw_pid());
                let _ = reaped.send(status);
            });
        if let Err(e) = waiter {
            // No thread to serve it (the machine is out of threads): the agent is ended.
            if let Some(session) = lock(&self.sessions).remove(&agent)
                && let Some(group) = session.group
            {
                signal_group(group, rustix::process::Signal::KILL);
            }
            return Err(spawn_error(format!("thread: {e}")));
        }
        tokio::spawn(async move {
            pump(&reader, &events).await;
            let status = exit.await.unwrap_or(ExitStatus {
                code: None,
                signal: None,
            });
            // Gone before its exit is told: whoever sees the exit finds no session
            // (a write after it is `NotFound`, never a write into a dead terminal).
            lock(&sessions).remove(&agent);
            ended.notify_waiters();
            let _ = events.send(PtyEvent::Exited(status)).await;
        });
        Ok(PtySession { events: receiver })
    }
}

/// Moves output into the channel until end-of-file (or the engine stopped listening), one event
/// a read, on the runtime's own threads: no thread per session, and no wake-up of the runtime
/// from another thread per event.
///
/// The terminal is watched edge-triggered, and a read that did not fill the buffer took all the
/// terminal held: any output after it (Linux moves a line discipline's 4 KiB into the terminal at
/// a time, as it is read) is a new edge. So the reader waits for that edge instead of reading
/// again to learn that nothing is left, the costly read: on an empty terminal the kernel first
/// waits for its worker to move pending output in, and the reader sleeps meanwhile (as it still
/// does, briefly and on a runtime thread, after an edge whose output an earlier read took). Once the
/// terminal reports its other end closed, that stays reported, and it is read on without
/// waiting until its end.
async fn pump(reader: &AsyncFd<FileDescriptor>, events: &mpsc::Sender<PtyEvent>) {
    let mut buffer = vec![0; PTY_READ_CHUNK_BYTES];
    loop {
        let Ok(mut ready) = reader.readable().await else {
            return;
        };
        let read = match rustix::io::read(reader.get_ref(), &mut buffer) {
            // Linux reports a terminal with no writer left as EIO: the end, like Ok(0).
            Ok(0) | Err(rustix::io::Errno::IO) => return,
            Ok(read) => read,
            Err(rustix::io::Errno::AGAIN) => {
                ready.clear_ready_matching(Ready::READABLE);
                continue;
            }
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return,
        };
        if read < buffer.len() {
            // What stays set is the terminal's end, if it came: read on to it.
            ready.clear_ready_matching(Ready::READABLE);
        }
        drop(ready);
        let output = PtyEvent::Output(buffer[..read].to_vec());
        if events.send(output).await.is_err() {
            return;
        }
    }
}

/// Writes all of `bytes` into the terminal, waiting for room while the agent does not read (the
/// terminal is non-blocking for its reader).
fn write_waiting(terminal: &mut FileDescriptor, mut bytes: &[u8]) -> std::io::Result<()> {
    use rustix::event::{PollFd, PollFlags, poll};
    while !bytes.is_empty() {
        match terminal.write(bytes) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let mut fds = [PollFd::new(&*terminal, PollFlags::OUT)];
                match poll(&mut fds, None) {
                    Ok(_) | Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reaps the agent: its exit code, or the signal that ended it.
fn wait(child: &mut dyn portable_pty::Child) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt as _;
    if let Some(child) = child.downcast_mut::<std::process::Child>() {
        return match child.wait() {
            Ok(status) => ExitStatus {
                code: status.code(),
                signal: status.signal(),
            },
            Err(_) => ExitStatus {
                code: None,
                signal: None,
            },
        };
    }
    match child.wait() {
        Ok(status) => ExitStatus {
            code: i32::try_from(status.exit_code()).ok(),
            signal: None,
        },
        Err(_) => ExitStatus {
            code: None,
            signal: None,
        },
    }
}

/// Sends `signal` to a process group; one already gone is no error.
fn signal_group(group: rustix::process::Pid, signal: rustix::process::Signal) {
    let _ = rustix::process::kill_process_group(group, signal);
}

impl PtyHost for NativePty {
    fn spawn(&self, spec: SpawnSpec) -> BoxFuture<'_, Result<PtySession, PtyError>> {
        // Opening a terminal and forking are quick system calls: no blocking thread needed.
        Box::pin(async move { self.spawn_now(spec) })
    }

    fn write<'a>(&'a self, agent: AgentId, bytes: &'a [u8]) -> BoxFuture<'a, Result<(), PtyError>> {
        Box::pin(async move {
            let writer = lock(&self.sessions)
                .get(&agent)
                .map(|s| s.writer.clone())
                .ok_or(PtyError::NotFound(agent))?;
            let bytes = bytes.to_vec();
            let written =
                tokio::task::spawn_blocking(move || write_waiting(&mut lock(&writer), &bytes))
                    .await;
            match written {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(PtyError::Io {
                    agent,
                    reason: e.to_string(),
                }),
                Err(e) => Err(PtyError::Io {
                    agent,
                    reason: e.to_string(),
                }),
            }
        })
    }

    fn resize(&self, agent: AgentId, cols: u16, rows: u16) -> BoxFuture<'_, Result<(), PtyError>> {
        let result = match lock(&self.sessions).get(&agent) {
            None => Err(PtyError::NotFound(agent)),
            Some(session) => session
                .master
                .resize(PtySize {
                    rows,
                    cols,
                    pixel_width: 0,
                    pixel_height: 0,
                })
                .map_err(|e| PtyError::Io {
                    agent,
                    reason: e.to_string(),
                }),
        };
        Box::pin(async move { result })
    }

    fn kill(&self, agent: AgentId) -> BoxFuture<'_, Result<(), PtyError>> {
        Box::pin(async move {
            let group = lock(&self.sessions)
                .get(&agent)
                .ok_or(PtyError::NotFound(agent))?
                .group;
            let Some(group) = group else {
                return Ok(());
            };
            signal_group(group, rustix::process::Signal::HUP);
            signal_group(group, rustix::process::Signal::TERM);
            let (sessions, grace) = (self.sessions.clone(), self.config.kill_grace_ms);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(grace)).await;
                if lock(&sessions)
                    .get(&agent)
                    .is_some_and(|s| s.group == Some(group))
                {
                    signal_group(group, rustix::process::Signal::KILL);
                }
            });
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
