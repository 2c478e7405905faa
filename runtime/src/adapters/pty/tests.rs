//! The native PTY host's tests, on real terminals running bash: output, environment, size and
//! exit code; bursts of small writes read whole and within the cap, output left in a closed
//! terminal, input larger than the terminal holds; input and resizes; kills of whole process groups
//! (SIGTERM honoured or not) and `terminate_all`; a missing program; which variables are CI markers; and (Linux) runaways:
//! killed and swept by their marks, a crashed daemon's leftovers, the subreaper leaving each
//! agent its own exit status.

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

/// Output until `bytes` bytes came, each event's size; an event that breaks the cap, is empty or
/// ends the session fails.
async fn read_bytes(events: &mut mpsc::Receiver<PtyEvent>, bytes: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut count = 0;
    while out.len() < bytes {
        match events.recv().await {
            Some(PtyEvent::Output(chunk)) => {
                assert!(
                    !chunk.is_empty() && chunk.len() <= super::PTY_READ_CHUNK_BYTES,
                    "an event of {} bytes",
                    chunk.len()
                );
                out.extend_from_slice(&chunk);
                count += 1;
            }
            other => panic!("{other:?} after {} of {bytes} bytes", out.len()),
        }
    }
    (out, count)
}

/// The longest a test here waits for output it expects: a reader that missed its terminal's
/// next output (an edge it never saw) fails the test instead of hanging it.
const OUTPUT_WITHIN_MS: u64 = 20_000;

/// Bursts of small writes, each followed by a wait on the agent's input: every burst arrives
/// whole, every byte once and in order, in events none above `PTY_READ_CHUNK_BYTES`, and fewer
/// events than writes. The reader waits for the terminal's next output after a read that took
/// all it held: were one such output left unannounced, its burst would never complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_small_writes_arrive_whole_in_order_and_within_the_cap() {
    const BURSTS: usize = 20;
    const PIECES: usize = 1_000;
    let host = NativePty::default();
    let agent = AgentId::from_random([8; 16]);
    // One write per piece (bash's printf builtin), 10 bytes each: 10 kB a burst.
    let script = format!(
        "stty -echo; for ((b = 0; b < {BURSTS}; b++)); do \
         for ((i = 0; i < {PIECES}; i++)); do printf '%04d%05d.' $b $i; done; read _; done"
    );
    let mut session = host.spawn(spec(8, &script)).await.unwrap();
    let within = std::time::Duration::from_millis(OUTPUT_WITHIN_MS);
    let mut events = 0;
    for burst in 0..BURSTS {
        let expected: String = (0..PIECES).map(|i| format!("{burst:04}{i:05}.")).collect();
        let (out, count) =
            tokio::time::timeout(within, read_bytes(&mut session.events, expected.len()))
                .await
                .unwrap_or_else(|_| panic!("burst {burst} did not arrive whole"));
        assert_eq!(String::from_utf8_lossy(&out), expected, "burst {burst}");
        events += count;
        host.write(agent, b"\r").await.unwrap();
    }
    assert!(events < BURSTS * PIECES, "{events} events");
    let (rest, status) = run_out(&mut session.events).await;
    assert_eq!((rest.as_str(), status.code), ("", Some(0)));
}

/// An agent that prints a lot and exits at once: everything it printed is read before the end
/// of its terminal, though the terminal's other end closed with some of it still inside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_still_in_a_closed_terminal_is_read_before_its_end() {
    const LINES: usize = 20_000;
    let host = NativePty::default();
    let script = format!("stty -onlcr; seq 1 {LINES}; exit 4");
    let mut session = host.spawn(spec(9, &script)).await.unwrap();
    let within = std::time::Duration::from_millis(OUTPUT_WITHIN_MS);
    let (out, status) = tokio::time::timeout(within, run_out(&mut session.events))
        .await
        .expect("the end of the terminal is read");
    let expected: String = (1..=LINES).map(|n| format!("{n}\n")).collect();
    assert_eq!(out, expected);
    assert_eq!(status.code, Some(4));
}

/// Input larger than the terminal holds is written whole: a write waits for the agent to read
/// (the terminal is non-blocking for its reader, and shares that with its writer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_larger_than_the_terminal_holds_waits_for_the_agent_to_read_it() {
    const INPUT_BYTES: usize = 256 * 1024;
    let host = NativePty::default();
    let agent = AgentId::from_random([10; 16]);
    let script = format!("stty raw -echo; echo ready; head -c {INPUT_BYTES} | wc -c");
    let mut session = host.spawn(spec(10, &script)).await.unwrap();
    read_until(&mut session.events, "ready").await;
    host.write(agent, &vec![b'x'; INPUT_BYTES]).await.unwrap();
    let (out, status) = run_out(&mut session.events).await;
    assert!(out.contains(&INPUT_BYTES.to_string()), "{out:?}");
    assert_eq!(status.code, Some(0));
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
