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
//! its last output. A descendant that left the group (`setsid`, a job-control shell) and keeps
//! the terminal open delays that report until it closes it; `terminate_all` gives up on it
//! after its bounds.
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
    /// See [`KILL_GRACE_MS_DEFAULT`].
    pub kill_grace_ms: u64,
}

impl Default for PtyConfig {
    fn default() -> Self {
        PtyConfig {
            kill_grace_ms: KILL_GRACE_MS_DEFAULT,
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
    /// [`KILLED_WAIT_MS`] after the SIGKILL).
    pub async fn terminate_all(&self) {
        use rustix::process::Signal;
        self.signal_all(&[Signal::HUP, Signal::TERM]);
        if !self.all_ended_within(self.config.kill_grace_ms).await {
            self.signal_all(&[Signal::KILL]);
            self.all_ended_within(KILLED_WAIT_MS).await;
        }
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
        let mut child = pair
            .slave
            .spawn_command(command)
            .map_err(|e| spawn_error(e.to_string()))?;
        // Only the agent holds the terminal's other end: its exit brings end-of-file.
        drop(pair.slave);
        let group = child
            .process_id()
            .and_then(|pid| rustix::process::Pid::from_raw(i32::try_from(pid).ok()?));
        let io_error = |e: anyhow::Error| spawn_error(format!("terminal: {e}"));
        let (reader, writer) = match (pair.master.try_clone_reader(), pair.master.take_writer()) {
            (Ok(reader), Ok(writer)) => (reader, writer),
            (Err(e), _) | (_, Err(e)) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io_error(e));
            }
        };
        let (events, receiver) = mpsc::channel(PTY_EVENTS_MAX);
        let (reaped, exit) = std::sync::mpsc::sync_channel(1);
        let agent = spec.agent;
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
                if let Some(group) = group {
                    // Exited but not yet reaped, its id cannot be reused: what it left in its
                    // group (which would hold the terminal open) is killed now, and nothing
                    // signals that group once it is reaped.
                    let options = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT;
                    let _ = rustix::process::waitid(WaitId::Pid(group), options);
                    signal_group(group, rustix::process::Signal::KILL);
                    if let Some(session) = lock(&waiter_sessions).get_mut(&agent) {
                        session.group = None;
                    }
                }
                let _ = reaped.send(wait(&mut *child));
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
        let host = NativePty::new(PtyConfig { kill_grace_ms: 200 });
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
        let host = NativePty::new(PtyConfig { kill_grace_ms: 200 });
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
}
