//! The `PtyHost` port on real pseudo-terminals (portable-pty).
//!
//! Each session has two threads: a reader that moves the terminal's output into the session's
//! bounded event channel (it waits when the engine falls behind, so the agent blocks on a full
//! terminal instead of memory growing), and a waiter that reaps the process. The agent leads a
//! session and process group of its own (portable-pty calls `setsid`), so killing it is killing
//! that group: SIGHUP and SIGTERM first, as a closing terminal does, then SIGKILL after
//! [`PtyConfig::kill_grace_ms`] for whatever ignored them. When the agent itself has exited,
//! what it left running in its group is killed too (before it is reaped, so its group id
//! cannot have been reused), the terminal reaches end-of-file and its exit is reported after
//! its last output.
//!
//! A descendant that left the group (`setsid`, a daemonising tool) is a runaway
//! ([`super::runaways`]). With [`PtyConfig::daemon`] set, every agent carries its daemon's and
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
//! Writes are blocking writes on the blocking thread pool: a terminal whose agent stopped
//! reading holds that write (and only it) until the agent reads or dies.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use portable_pty::{CommandBuilder, MasterPty, PtySize};
use rustix::process::{WaitId, WaitIdOptions};
use tokio::sync::mpsc;

use super::runaways::{self, DaemonId, Mark};
use crate::core::ids::AgentId;
use crate::ports::{BoxFuture, ExitStatus, PtyError, PtyEvent, PtyHost, PtySession, SpawnSpec};

/// Bytes read from a terminal at once: one output event carries at most this much.
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
    /// ([`super::runaways`]). `Daemon::start` sets it from its state directory. None (the
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
    writer: Arc<Mutex<Box<dyn std::io::Write + Send>>>,
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
        let (reader, writer) = match (pair.master.try_clone_reader(), pair.master.take_writer()) {
            (Ok(reader), Ok(writer)) => (reader, writer),
            (Err(e), _) | (_, Err(e)) => {
                let _ = child.kill();
                let _ = child.wait();
                if let Some(group) = group {
                    runaways::agents().remove(&group.as_raw_pid());
                }
                return Err(io_error(e));
            }
        };
        let (events, receiver) = mpsc::channel(PTY_EVENTS_MAX);
        let (reaped, exit) = std::sync::mpsc::sync_channel(1);
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
        let pump = waiter.and_then(|_| {
            std::thread::Builder::new()
                .name(format!("pty-read-{agent}"))
                .spawn(move || {
                    pump(reader, &events);
                    let status = exit.recv().unwrap_or(ExitStatus {
                        code: None,
                        signal: None,
                    });
                    // Gone before its exit is told: whoever sees the exit finds no session
                    // (a write after it is `NotFound`, never a write into a dead terminal).
                    lock(&sessions).remove(&agent);
                    ended.notify_waiters();
                    let _ = events.blocking_send(PtyEvent::Exited(status));
                })
        });
        if let Err(e) = pump {
            // No thread to serve it (the machine is out of threads): the agent is ended.
            if let Some(session) = lock(&self.sessions).remove(&agent)
                && let Some(group) = session.group
            {
                signal_group(group, rustix::process::Signal::KILL);
            }
            return Err(spawn_error(format!("thread: {e}")));
        }
        Ok(PtySession { events: receiver })
    }
}

/// Moves output into the channel until end-of-file (or the engine stopped listening).
fn pump(mut reader: Box<dyn std::io::Read + Send>, events: &mpsc::Sender<PtyEvent>) {
    let mut buffer = vec![0; PTY_READ_CHUNK_BYTES];
    loop {
        match reader.read(&mut buffer) {
            // Linux reports a terminal with no writer left as EIO: the end, like Ok(0).
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if events
                    .blocking_send(PtyEvent::Output(buffer[..n].to_vec()))
                    .is_err()
                {
                    return;
                }
            }
        }
    }
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
            let written = tokio::task::spawn_blocking(move || {
                let mut writer = lock(&writer);
                writer.write_all(&bytes).and_then(|()| writer.flush())
            })
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
mod tests {
    use std::path::PathBuf;

    use tokio::sync::mpsc;

    use super::{NativePty, PtyConfig};
    use crate::core::ids::AgentId;
    use crate::ports::{ExitStatus, PtyError, PtyEvent, PtyHost, SpawnSpec};

    fn spec(n: u8, script: &str) -> SpawnSpec {
        SpawnSpec {
            agent: AgentId::from_random([n; 16]),
            argv: vec!["bash".into(), "--norc".into(), "-c".into(), script.into()],
            env: vec![("BATON_TEST".into(), "from-env".into())],
            cwd: PathBuf::from("/"),
            cols: 100,
            rows: 30,
        }
    }

    #[test]
    fn ci_markers_are_the_named_variables_and_the_ci_prefixed_ones() {
        let names = [
            "CI",
            "PATH",
            "GITHUB_ACTIONS",
            "CI_JOB_ID",
            "CIRCLE",
            "HOME",
            "RUN_ID",
        ];
        assert_eq!(
            super::ci_markers(names.into_iter()),
            ["CI", "GITHUB_ACTIONS", "CI_JOB_ID", "RUN_ID"]
        );
    }

    /// Every byte until the exit, and the exit.
    async fn run_out(events: &mut mpsc::Receiver<PtyEvent>) -> (String, ExitStatus) {
        let mut out = Vec::new();
        while let Some(event) = events.recv().await {
            match event {
                PtyEvent::Output(bytes) => out.extend(bytes),
                PtyEvent::Exited(status) => return (String::from_utf8_lossy(&out).into(), status),
            }
        }
        panic!("the channel closed without an exit");
    }

    /// Output until `needle` appears.
    async fn read_until(events: &mut mpsc::Receiver<PtyEvent>, needle: &str) -> String {
        let mut out = Vec::new();
        while let Some(event) = events.recv().await {
            match event {
                PtyEvent::Output(bytes) => out.extend(bytes),
                PtyEvent::Exited(status) => panic!("exited {status:?} before {needle:?}"),
            }
            let text = String::from_utf8_lossy(&out).into_owned();
            if text.contains(needle) {
                return text;
            }
        }
        panic!("the channel closed before {needle:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn output_environment_size_and_exit_code_come_through() {
        let host = NativePty::default();
        let script = r#"printf 'hi %s %s\n' "$BATON_TEST" "$(stty size)"; exit 7"#;
        let mut session = host.spawn(spec(1, script)).await.unwrap();
        let (out, status) = run_out(&mut session.events).await;
        assert!(out.contains("hi from-env 30 100"), "{out:?}");
        assert_eq!(
            status,
            ExitStatus {
                code: Some(7),
                signal: None
            }
        );
        assert_eq!(host.running(), 0);
        let gone = host.write(AgentId::from_random([1; 16]), b"x").await;
        assert!(matches!(gone, Err(PtyError::NotFound(_))), "{gone:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn input_reaches_the_program_and_resizing_is_seen() {
        let host = NativePty::default();
        let agent = AgentId::from_random([2; 16]);
        let script = "read line; echo \"got $line\"; read _; stty size";
        let mut session = host.spawn(spec(2, script)).await.unwrap();
        host.write(agent, b"hello\r").await.unwrap();
        read_until(&mut session.events, "got hello").await;
        host.resize(agent, 90, 20).await.unwrap();
        host.write(agent, b"\r").await.unwrap();
        let (out, status) = run_out(&mut session.events).await;
        assert!(out.contains("20 90"), "{out:?}");
        assert_eq!(status.code, Some(0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_kill_ends_the_whole_group_even_a_child_that_ignores_sigterm() {
        let host = NativePty::new(PtyConfig {
            kill_grace_ms: 200,
            ..PtyConfig::default()
        });
        let agent = AgentId::from_random([3; 16]);
        // The agent and its background child both ignore HUP and TERM; the child holds the
        // terminal open, so the exit can only be reported once it is dead too.
        let script = "trap '' HUP TERM; (trap '' HUP TERM; sleep 1000) & echo started; wait";
        let mut session = host.spawn(spec(3, script)).await.unwrap();
        read_until(&mut session.events, "started").await;
        host.kill(agent).await.unwrap();
        let (_, status) = run_out(&mut session.events).await;
        assert_eq!(status.signal, Some(9), "{status:?}");
        assert_eq!(host.running(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_program_that_honours_sigterm_ends_by_it() {
        let host = NativePty::new(PtyConfig {
            kill_grace_ms: 60_000,
            ..PtyConfig::default()
        });
        let agent = AgentId::from_random([4; 16]);
        let mut session = host
            .spawn(spec(4, "echo up; exec sleep 1000"))
            .await
            .unwrap();
        read_until(&mut session.events, "up").await;
        host.kill(agent).await.unwrap();
        let (_, status) = run_out(&mut session.events).await;
        assert!(
            matches!(status.signal, Some(1 | 15)),
            "HUP or TERM: {status:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn terminating_all_ends_every_session_stubborn_or_not() {
        let host = NativePty::new(PtyConfig {
            kill_grace_ms: 200,
            ..PtyConfig::default()
        });
        let mut polite = host
            .spawn(spec(6, "echo up; exec sleep 1000"))
            .await
            .unwrap();
        let stubborn_script = "trap '' HUP TERM; echo up; while :; do sleep 1; done";
        let mut stubborn = host.spawn(spec(7, stubborn_script)).await.unwrap();
        read_until(&mut polite.events, "up").await;
        read_until(&mut stubborn.events, "up").await;
        host.terminate_all().await;
        assert_eq!(host.running(), 0);
        assert!(matches!(
            run_out(&mut polite.events).await.1.signal,
            Some(1 | 15)
        ));
        assert_eq!(run_out(&mut stubborn.events).await.1.signal, Some(9));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_program_is_a_spawn_error() {
        let host = NativePty::default();
        let mut bad = spec(5, "");
        bad.argv = vec!["/nonexistent/agent".into()];
        let error = host.spawn(bad).await.unwrap_err();
        assert!(matches!(error, PtyError::Spawn { .. }), "{error:?}");
        assert_eq!(host.running(), 0);
    }

    /// Runaways: descendants that left their agent's process group. Sweeps and the subreaper
    /// are Linux's. Each test makes this process a subreaper first, so every runaway is handed
    /// to it when its parent ends, and "gone" means reaped, not only dead: the reaper is under
    /// test too. Each host is marked with a daemon id of the test's own temporary directory, so
    /// two test runs on one machine never sweep each other's processes.
    #[cfg(target_os = "linux")]
    mod runaways {
        use std::path::Path;
        use std::process::Stdio;
        use std::time::Duration;

        use tokio::sync::mpsc;

        use super::{read_until, run_out, spec};
        use crate::adapters::procfs;
        use crate::adapters::pty::{NativePty, PtyConfig};
        use crate::adapters::runaways::{AGENT_VAR, DAEMON_VAR, DaemonId, adopt_orphans};
        use crate::core::ids::AgentId;
        use crate::ports::{ExitStatus, PtyEvent, PtyHost, SpawnSpec};

        /// The longest a test waits for an agent's exit, a runaway to be gone or a helper
        /// command: a sweep, its grace and the reaper's idle wait, on a loaded machine.
        const WITHIN_MS: u64 = 20_000;
        /// Between two looks at `/proc/<pid>` while waiting for a runaway to be reaped: nothing
        /// tells a third process of a reap, so this one wait polls.
        const LOOK_EVERY_MS: u64 = 10;
        /// The hosts' grace: short, as runaways that ignore SIGTERM wait it out.
        const GRACE_MS: u64 = 200;

        /// A host whose agents carry the marks of a daemon on `state_dir`.
        fn marked_host(state_dir: &Path) -> NativePty {
            NativePty::new(PtyConfig {
                kill_grace_ms: GRACE_MS,
                daemon: Some(DaemonId::of_state_dir(state_dir)),
            })
        }

        /// Agent `n` running `script` with `$DIR` set to `dir`.
        fn spec_in(n: u8, script: &str, dir: &Path) -> SpawnSpec {
            let mut spec = spec(n, script);
            spec.env.push(("DIR".into(), dir.display().to_string()));
            spec
        }

        /// Shell that starts a runaway: `setsid -f` forks and exits at once (a double fork:
        /// the runaway is an orphan) and the fork leaves the agent's session and group, then
        /// runs `launcher sh -c`, which writes its pid into a FIFO and runs `then`. The agent
        /// reads that pid and prints its own and the runaway's on a `ready` line. The runaway
        /// keeps the agent's terminal open, as a daemonising tool that forgets to close it.
        fn runaway(launcher: &str, then: &str) -> String {
            format!(
                r#"mkfifo "$DIR/pid"; setsid -f {launcher} sh -c 'echo $$ > "$DIR/pid"; {then}'; read pid < "$DIR/pid"; echo "agent $$ runaway $pid ready"; "#
            )
        }

        /// The agent's pid and its runaway, from the agent's `ready` line.
        async fn ready(events: &mut mpsc::Receiver<PtyEvent>) -> (i32, Seen) {
            let within = Duration::from_millis(WITHIN_MS);
            let out = tokio::time::timeout(within, read_until(events, " ready"))
                .await
                .expect("the agent's ready line");
            let words: Vec<&str> = out.split_whitespace().collect();
            let after = |word: &str| -> i32 {
                let at = words.iter().position(|w| *w == word).unwrap();
                words[at + 1].parse().unwrap()
            };
            (after("agent"), Seen::now(after("runaway")))
        }

        /// Every byte until the exit, and the exit, within [`WITHIN_MS`].
        async fn exit_within(events: &mut mpsc::Receiver<PtyEvent>) -> (String, ExitStatus) {
            tokio::time::timeout(Duration::from_millis(WITHIN_MS), run_out(events))
                .await
                .expect("the agent's exit is reported")
        }

        /// A process as a crashed daemon's agent leaves it: marked with `daemon`, in a session
        /// of its own and an orphan (`setsid -f` forks it and exits; it is handed to this
        /// process, the subreaper).
        async fn leftover(daemon: DaemonId) -> Seen {
            let script = "echo $$; exec sleep 600 > /dev/null";
            // Not `output()`, which would pipe stderr too: the leftover would hold it open.
            let child = tokio::process::Command::new("setsid")
                .args(["-f", "sh", "-c", script])
                .env(DAEMON_VAR, daemon.to_string())
                .env(AGENT_VAR, AgentId::from_random([40; 16]).to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let within = Duration::from_millis(WITHIN_MS);
            let output = tokio::time::timeout(within, child.wait_with_output())
                .await
                .expect("setsid ends at once")
                .unwrap();
            assert!(output.status.success(), "{output:?}");
            Seen::now(
                String::from_utf8_lossy(&output.stdout)
                    .trim()
                    .parse()
                    .unwrap(),
            )
        }

        /// A process by its pid and start time: a pid the kernel has given to another process
        /// since is not this one. Dropped, it is killed if it still runs: a failed test leaves
        /// nothing behind. Read at its `/proc` entry, which names it by another pid where
        /// `/proc` is another PID namespace's ([`procfs`]).
        struct Seen {
            pid: i32,
            entry: i32,
            started: String,
        }

        impl Seen {
            /// `pid`, which runs now.
            fn now(pid: i32) -> Seen {
                let entry = procfs::entry(pid).expect("the process has a /proc entry");
                let fields = stat(entry).expect("the process runs");
                Seen {
                    pid,
                    entry,
                    started: fields[STARTED].clone(),
                }
            }

            /// Its `/proc/<pid>/stat` fields from the state on, while it exists (a zombie too).
            fn fields(&self) -> Option<Vec<String>> {
                stat(self.entry).filter(|fields| fields[STARTED] == self.started)
            }

            fn is_running(&self) -> bool {
                self.fields().is_some_and(|fields| fields[0] != "Z")
            }

            /// A pid among its fields, as `/proc` names processes.
            fn field(&self, at: usize) -> i32 {
                self.fields().expect("the process exists")[at]
                    .parse()
                    .unwrap()
            }

            fn environ(&self) -> String {
                let environ = std::fs::read(format!("/proc/{}/environ", self.entry)).unwrap();
                String::from_utf8_lossy(&environ).into_owned()
            }

            /// Whether it is gone from `/proc` (dead and reaped) within `ms`.
            async fn reaped_within(&self, ms: u64) -> bool {
                let look = async {
                    while self.fields().is_some() {
                        tokio::time::sleep(Duration::from_millis(LOOK_EVERY_MS)).await;
                    }
                };
                tokio::time::timeout(Duration::from_millis(ms), look)
                    .await
                    .is_ok()
            }
        }

        impl Drop for Seen {
            fn drop(&mut self) {
                if self.is_running()
                    && let Some(pid) = rustix::process::Pid::from_raw(self.pid)
                {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
        }

        /// In [`stat`]'s fields: the parent, the process group, the start time.
        const PARENT: usize = 1;
        const GROUP: usize = 2;
        const STARTED: usize = 19;

        /// `/proc/<entry>/stat` after the command name (which may hold spaces): the state first.
        fn stat(entry: i32) -> Option<Vec<String>> {
            let stat = std::fs::read_to_string(format!("/proc/{entry}/stat")).ok()?;
            let after_name = &stat[stat.rfind(')')? + 1..];
            Some(after_name.split_whitespace().map(str::to_owned).collect())
        }

        /// This process, as `/proc` names it.
        fn this_process() -> i32 {
            procfs::this_entry().expect("/proc is mounted")
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_kill_ends_a_runaway_that_left_the_group_and_ignores_sigterm() {
            adopt_orphans().unwrap();
            let temp = tempfile::tempdir().unwrap();
            let host = marked_host(temp.path());
            let stubborn = runaway("", r#"trap "" HUP TERM; exec sleep 600"#);
            let script = format!("{stubborn} exec sleep 1000");
            let mut session = host.spawn(spec_in(20, &script, temp.path())).await.unwrap();
            let (agent, runaway) = ready(&mut session.events).await;
            let agent = procfs::entry(agent).expect("the agent runs");
            assert_ne!(runaway.field(GROUP), agent, "it left the agent's group");
            assert_eq!(
                runaway.field(PARENT),
                this_process(),
                "handed to the subreaper"
            );
            host.kill(AgentId::from_random([20; 16])).await.unwrap();
            let (_, status) = exit_within(&mut session.events).await;
            assert!(matches!(status.signal, Some(1 | 15)), "{status:?}");
            assert!(
                runaway.reaped_within(WITHIN_MS).await,
                "the runaway is gone"
            );
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn an_agent_that_exits_by_itself_takes_its_runaway_with_it() {
            adopt_orphans().unwrap();
            let temp = tempfile::tempdir().unwrap();
            let host = marked_host(temp.path());
            let script = format!("{} read _; exit 3", runaway("", "exec sleep 600"));
            let mut session = host.spawn(spec_in(21, &script, temp.path())).await.unwrap();
            let (_, runaway) = ready(&mut session.events).await;
            assert!(runaway.is_running());
            host.write(AgentId::from_random([21; 16]), b"\r")
                .await
                .unwrap();
            let (_, status) = exit_within(&mut session.events).await;
            assert_eq!(status.code, Some(3), "{status:?}");
            assert!(
                runaway.reaped_within(WITHIN_MS).await,
                "the runaway is gone"
            );
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn terminating_all_ends_a_runaway_that_dropped_its_agents_mark() {
            adopt_orphans().unwrap();
            let temp = tempfile::tempdir().unwrap();
            let host = marked_host(temp.path());
            let launcher = format!("env -u {AGENT_VAR}");
            // No `exec`: in the middle of one a process has no environment to check.
            let script = format!("{} exec sleep 1000", runaway(&launcher, "sleep 600"));
            let mut session = host.spawn(spec_in(22, &script, temp.path())).await.unwrap();
            let (_, runaway) = ready(&mut session.events).await;
            let environ = runaway.environ();
            assert!(
                environ.contains(DAEMON_VAR) && !environ.contains(AGENT_VAR),
                "only the daemon's mark: {environ:?}"
            );
            host.terminate_all().await;
            assert_eq!(host.running(), 0);
            assert!(matches!(
                exit_within(&mut session.events).await.1.signal,
                Some(1 | 15)
            ));
            assert!(
                runaway.reaped_within(WITHIN_MS).await,
                "the runaway is gone"
            );
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_start_ends_what_its_state_dirs_crashed_daemon_left_and_nothing_else() {
            adopt_orphans().unwrap();
            let temp = tempfile::tempdir().unwrap();
            let ours = leftover(DaemonId::of_state_dir(temp.path())).await;
            let theirs = leftover(DaemonId::of_state_dir(&temp.path().join("another"))).await;
            let host = marked_host(temp.path());
            assert_eq!(host.end_leftovers().await, 1);
            assert!(ours.reaped_within(WITHIN_MS).await, "the leftover is gone");
            assert!(
                theirs.is_running(),
                "another daemon's process is left alone"
            );
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn with_the_subreaper_on_every_agent_keeps_its_own_exit_status() {
            adopt_orphans().unwrap();
            let host = NativePty::default();
            let mut sessions = Vec::new();
            for n in 0..8 {
                // Each leaves an orphan that ends at once: the reaper works while agents end.
                let script = format!("(sh -c 'exit 0' &); exit {}", 10 + n);
                sessions.push(host.spawn(spec(30 + n, &script)).await.unwrap());
            }
            for (n, session) in (0..).zip(&mut sessions) {
                let (_, status) = exit_within(&mut session.events).await;
                assert_eq!(
                    status,
                    ExitStatus {
                        code: Some(10 + n),
                        signal: None
                    }
                );
            }
            assert_eq!(host.running(), 0);
        }
    }
}
