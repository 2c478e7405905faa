//! Processes an agent leaves running outside its process group ("runaways"), and how they end.
//!
//! An agent leads a process group of its own and [`super::pty`] ends that group. A descendant
//! that leaves the group (`setsid`, a tool that daemonises: Codex CLI 0.171.0 starts
//! `codex app-server --managed-daemon`, which outlives its interface) is out of that reach: it
//! would outlive its task, the daemon's stop, and a daemon that crashed. Three things end it.
//!
//! - **A mark.** Every agent starts with [`DAEMON_VAR`]`=<daemon id>` and
//!   [`AGENT_VAR`]`=<agent id>` in its environment ([`Mark::variables`]). Descendants inherit it,
//!   leaving the group or the session does not shed it, and the environment a process started
//!   with stays readable in `/proc/<pid>/environ` whatever it does with its own copy later.
//! - **Sweeps (Linux).** [`end_marked`] looks through `/proc` for the processes carrying a mark
//!   and ends them: SIGTERM, then SIGKILL to what is left after a grace (git, for one, removes
//!   its lock files on SIGTERM). An agent's sweep runs when its exit is handled, before that
//!   exit is reported: whoever sees an agent's exit sees nothing of it still running. The
//!   daemon's mark is swept when it stops, and when it starts: what a previous daemon on the
//!   same state directory left running when it crashed ([`DaemonId`]).
//! - **A child subreaper (Linux).** [`adopt_orphans`] has orphans among this process's
//!   descendants handed to it instead of init, and reaps them on a thread of its own. A runaway
//!   stays in the daemon's process tree (`ps --forest` shows where it came from) and its exit is
//!   collected. The reaper never takes an exit status that belongs to someone else: an agent's
//!   is its waiter's (agents are registered, and the reaper checks and reaps under the
//!   registry's lock), a helper's (`git`, run through tokio) is its owner's; see [`is_orphan`].
//!
//! What a mark cannot reach: a process started with a scrubbed environment (`env -i`), one
//! started by another process's service rather than by the agent (a `systemd-run` unit, a
//! container, a terminal multiplexer's server started elsewhere), and one whose environment this
//! user may not read (a setuid program: `sudo`). An orphan that was adopted but carries no mark
//! is reaped, never ended: the daemon's own helpers are adopted too (git's detached maintenance),
//! and killing them could leave lock files in a user's repository.
//!
//! **macOS** has neither `/proc` nor a subreaper: an orphan goes to launchd whatever its
//! ancestors are. `proc_listallpids` lists processes, but telling an agent's from the rest
//! needs its environment, which only `sysctl(KERN_PROCARGS2)` gives, for the processes the
//! caller may inspect (without privileges, not other users' nor protected ones): FFI this
//! crate would need unsafe code or a new dependency for (rustix wraps neither). So there
//! agents get their marks all the same, sweeps find nothing and [`adopt_orphans`] refuses:
//! process groups are all Baton ends, as before.
//!
//! **cgroups v2** would hold every descendant whatever it does to its environment or session,
//! and `cgroup.kill` ends them at once. They are not used: they need a delegated, writable
//! cgroup (systemd's `Delegate=yes`, a user session's own slice), which a daemon started from a
//! shell or a container does not have; the machine this was built on has a v1 hierarchy with
//! nothing delegated. Marks work wherever `/proc` does.
//!
//! **A `/proc` of another PID namespace** (the daemon in a namespace of its own under its
//! creator's `/proc`) lists pids this process does not know processes by: sweeps and the reaper
//! translate each entry ([`super::procfs`]) and leave alone what has no pid in the daemon's
//! namespace, which they could not name without striking a stranger.
//!
//! Bounds: a sweep looks at [`PROC_ENTRIES_MAX`] entries a pass, at most [`SWEEP_PASSES_MAX`]
//! passes and [`SWEEP_SCAN_MS_MAX`] of looking, reads [`ENVIRON_BYTES_MAX`] of an environment,
//! looks [`SETTLE_LOOKS_MAX`] more times at a process caught in an `execve`, and follows
//! [`FOLLOWED_MAX`] processes through its grace.
//!
//! Layout: the mark and the daemon's id (pure), the agents' registry, then the Linux sweeps and
//! the reaper, each with the portable stand-in beside it.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::core::ids::AgentId;

/// The variable naming the daemon an agent belongs to ([`DaemonId`]).
pub const DAEMON_VAR: &str = "BATON_DAEMON";
/// The variable naming the agent a process descends from ([`AgentId`]).
pub const AGENT_VAR: &str = "BATON_AGENT";
/// `/proc` entries looked at in one pass of a sweep: a desktop runs hundreds to a few thousand
/// processes; a pass stops here rather than hold an agent's exit or a shutdown on a machine
/// with far more.
pub const PROC_ENTRIES_MAX: usize = 65_536;
/// Passes of a sweep's SIGKILL: a runaway may fork while a pass looks, so passes go on until
/// one finds no process it had not found before, or this many.
pub const SWEEP_PASSES_MAX: usize = 8;
/// Time a sweep spends looking through `/proc`, all passes together (the grace apart). Reading
/// an environment takes the target's memory lock and can stall; the bound is checked between
/// reads, so one stalled read is the most it overruns by.
pub const SWEEP_SCAN_MS_MAX: u64 = 2_000;
/// Bytes of a process's environment read: Linux caps arguments and environment together at a
/// quarter of the stack limit (2 MiB with the usual 8 MiB), and a mark past this many bytes is
/// not seen. An entry the read cut short never counts ([`Mark::is_carried_by`]).
pub const ENVIRON_BYTES_MAX: usize = 1 << 20;
/// Runaways a sweep waits for through its grace, each by a descriptor (a daemon has 1,024 by
/// default and needs them for its clients): past this many the grace is waited out in full.
pub const FOLLOWED_MAX: usize = 64;
/// Looks again at a live process whose environment read empty, once a pass is over: in the
/// middle of an `execve` a process has none for a moment (the kernel gives the new program its
/// environment after its memory), and a runaway caught there would be missed (seen in this
/// module's tests: a runaway execs right after it starts). One started with none (`env -i`)
/// stays empty and is let be after this many looks.
pub const SETTLE_LOOKS_MAX: usize = 20;
/// Between two of those looks.
pub const SETTLE_WAIT_MS: u64 = 1;
/// How long the reaper waits before looking again when the child that ended is not its to reap
/// (an agent's waiter, a helper's owner collects it soon), or when this process has no child.
pub const REAPER_IDLE_MS: u64 = 200;

/// Names one daemon's agents: the same for every daemon started on one state directory, so a
/// start finds what a crashed predecessor left running, and different between directories.
///
/// It is a hash of the canonical state directory's path, not a random id kept in the directory:
/// nothing to write, lose or corrupt, and the directory's lock already makes one daemon per
/// directory (the lock is taken before any sweep, so a sweep never ends a live daemon's agents).
/// The hash is FNV-1a over 64 bits, written here because it must not change between Baton
/// releases (std's `DefaultHasher` may): a daemon upgraded after a crash must still find what
/// the old one left. A directory moved elsewhere gets another id, and leftovers of a crash from
/// before the move are not found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DaemonId(u64);

impl DaemonId {
    /// The id of the daemon on `state_dir` (its canonical path: a symlink to it names the same).
    #[must_use]
    pub fn of_state_dir(state_dir: &Path) -> Self {
        use std::os::unix::ffi::OsStrExt as _;
        const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
        let hash = state_dir
            .as_os_str()
            .as_bytes()
            .iter()
            .fold(FNV_OFFSET, |hash, byte| {
                (hash ^ u64::from(*byte)).wrapping_mul(FNV_PRIME)
            });
        DaemonId(hash)
    }
}

impl fmt::Display for DaemonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// What a sweep looks for: every process of a daemon's agents, or those of one agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    daemon: DaemonId,
    agent: Option<AgentId>,
}

impl Mark {
    /// Every process descending from one of `daemon`'s agents.
    #[must_use]
    pub fn daemon(daemon: DaemonId) -> Self {
        Mark {
            daemon,
            agent: None,
        }
    }

    /// Every process descending from `agent` of `daemon` (agent ids are random, but tests on
    /// one machine reuse theirs: the daemon's id keeps two test runs apart).
    #[must_use]
    pub fn agent(daemon: DaemonId, agent: AgentId) -> Self {
        Mark {
            daemon,
            agent: Some(agent),
        }
    }

    /// The variables, name and value, that make this mark.
    #[must_use]
    pub fn variables(&self) -> Vec<(&'static str, String)> {
        let mut variables = vec![(DAEMON_VAR, self.daemon.to_string())];
        if let Some(agent) = self.agent {
            variables.push((AGENT_VAR, agent.to_string()));
        }
        variables
    }

    /// Whether `environ` (`NAME=value` entries each ended by a NUL, as `/proc/<pid>/environ`
    /// reads) carries every variable of this mark, each as an entry of its own. What follows the
    /// last NUL is an entry a bounded read cut short and is not looked at.
    #[must_use]
    pub fn is_carried_by(&self, environ: &[u8]) -> bool {
        let Some(end) = environ.iter().rposition(|byte| *byte == 0) else {
            return false;
        };
        let entries: Vec<&[u8]> = environ[..end].split(|byte| *byte == 0).collect();
        self.variables().iter().all(|(name, value)| {
            let wanted = format!("{name}={value}");
            entries.contains(&wanted.as_bytes())
        })
    }
}

/// Agents' process ids: children whose exit status belongs to their waiter thread, never to the
/// reaper.
static AGENTS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// The agents' registry, locked. A spawn holds it from before the fork until the new pid is in,
/// and a waiter from before it reaps its agent until the pid is out; the reaper checks a child
/// and reaps it under it. So an agent that ends at once is never taken for an orphan, and a
/// pid reused by the next agent is never struck off in its place.
pub(crate) fn agents() -> MutexGuard<'static, BTreeSet<i32>> {
    AGENTS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether a child of this process is an orphan the reaper may reap: not an agent (its waiter
/// reaps it), and not in this process's session. Every agent leads a session of its own, so
/// nothing descending from an agent is in the daemon's; what the daemon spawns itself outside
/// the PTY host (`git` through tokio, a test's commands) stays in it, and its owner reaps it.
#[must_use]
pub fn is_orphan(child: i32, its_session: i32, our_session: i32, agents: &BTreeSet<i32>) -> bool {
    !agents.contains(&child) && its_session != our_session
}

/// `PF_KTHREAD` in `/proc/<pid>/stat`'s flags: a kernel thread, which has no environment.
const KERNEL_THREAD_FLAG: u64 = 0x0020_0000;

/// Whether a process whose environment read empty may be in the middle of an `execve`, from its
/// `/proc/<pid>/stat`: it is alive (not a zombie, not dead) and no kernel thread.
#[must_use]
pub fn may_be_in_execve(stat: &str) -> bool {
    let Some((_, after_name)) = stat.rsplit_once(')') else {
        return false;
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let (Some(state), Some(flags)) = (fields.first(), fields.get(6)) else {
        return false;
    };
    let flags: u64 = flags.parse().unwrap_or(KERNEL_THREAD_FLAG);
    !matches!(*state, "Z" | "X" | "x") && flags & KERNEL_THREAD_FLAG == 0
}

/// Why this process cannot adopt orphans. It then leaves them to init, as before: sweeps still
/// end runaways, init collects them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdoptError {
    /// Not Linux: no child subreapers.
    #[error("only Linux hands orphans to a subreaper")]
    Unsupported,
    /// The kernel does not list a process's children (`CONFIG_PROC_CHILDREN`): the reaper could
    /// not find the orphans, which would stay zombies.
    #[error("this kernel does not list a process's children (/proc/<pid>/task/<tid>/children)")]
    NoChildrenList,
    /// This process's session could not be read from `/proc/self/stat`: the reaper could not
    /// tell an orphan from a helper another part of this process waits for.
    #[error("this process's session is not readable in /proc/self/stat")]
    NoSession,
    /// The reaper's thread could not start.
    #[error("no reaper thread: {0}")]
    Thread(String),
    /// `prctl(PR_SET_CHILD_SUBREAPER)` failed.
    #[error("PR_SET_CHILD_SUBREAPER: {0}")]
    Subreaper(String),
}

/// Makes this process the subreaper of its descendants and starts the thread that reaps the
/// orphans handed to it (module documentation). Process-wide and idempotent: the first call's
/// answer is every call's.
///
/// # Errors
/// See [`AdoptError`]; nothing changed.
pub fn adopt_orphans() -> Result<(), AdoptError> {
    static ADOPTING: std::sync::OnceLock<Result<(), AdoptError>> = std::sync::OnceLock::new();
    ADOPTING.get_or_init(sys::adopt).clone()
}

/// Ends every process carrying `mark` but this one: SIGTERM, then, once they have all ended or
/// `grace` has passed, SIGKILL to what still carries it, and waits until those have ended (the
/// first [`FOLLOWED_MAX`] of them); no grace is SIGKILL at once. Blocks (run it on a blocking
/// thread) for at most the grace and [`SWEEP_SCAN_MS_MAX`]. How many processes were found. Linux
/// only; elsewhere it finds nothing (module documentation).
#[must_use]
pub fn end_marked(mark: &Mark, grace: Duration) -> usize {
    sys::end_marked(mark, grace)
}

/// SIGTERM to every process carrying `mark` but this one, in one pass; how many. For a stop
/// that gives runaways the grace it gives agents, before [`end_marked`] without one.
#[must_use]
pub fn ask_marked_to_end(mark: &Mark) -> usize {
    sys::ask_marked_to_end(mark)
}

#[cfg(target_os = "linux")]
mod sys {
    #![allow(clippy::disallowed_methods)] // bounds in real time: no simulator runs a sweep
    use std::collections::BTreeSet;
    use std::io::Read as _;
    use std::os::fd::OwnedFd;
    use std::time::{Duration, Instant};

    use rustix::io::Errno;
    use rustix::process::{Pid, PidfdFlags, Signal, WaitId, WaitIdOptions};

    use crate::adapters::procfs;

    use super::{
        AdoptError, ENVIRON_BYTES_MAX, FOLLOWED_MAX, Mark, PROC_ENTRIES_MAX, REAPER_IDLE_MS,
        SETTLE_LOOKS_MAX, SETTLE_WAIT_MS, SWEEP_PASSES_MAX, SWEEP_SCAN_MS_MAX,
    };

    /// A process found carrying a mark: by a pidfd when the kernel has them (5.3 on), which
    /// names that very process whatever happens to its pid; by its pid otherwise.
    struct Found {
        pid: Pid,
        handle: Option<OwnedFd>,
    }

    impl Found {
        fn signal(&self, signal: Signal) {
            let _ = match &self.handle {
                Some(fd) => rustix::process::pidfd_send_signal(fd, signal),
                None => rustix::process::kill_process(self.pid, signal),
            };
        }
    }

    pub(super) fn end_marked(mark: &Mark, grace: Duration) -> usize {
        let started = Instant::now();
        let looking_until = started + Duration::from_millis(SWEEP_SCAN_MS_MAX);
        let mut environ = Vec::new();
        let mut found = BTreeSet::new();
        if !grace.is_zero() {
            let (mut followed, mut unfollowed) = (Vec::new(), false);
            each_marked(mark, looking_until, &mut environ, |process| {
                process.signal(Signal::TERM);
                found.insert(process.pid.as_raw_pid());
                match process.handle {
                    Some(fd) if followed.len() < FOLLOWED_MAX => followed.push(fd),
                    _ => unfollowed = true,
                }
            });
            if found.is_empty() {
                return 0;
            }
            let grace_over = started + grace;
            wait_ended(followed, grace_over);
            if unfollowed {
                std::thread::sleep(grace_over.saturating_duration_since(Instant::now()));
            }
        }
        let mut killed = Vec::new();
        for _ in 0..SWEEP_PASSES_MAX {
            let mut new = 0;
            each_marked(mark, looking_until, &mut environ, |process| {
                process.signal(Signal::KILL);
                if found.insert(process.pid.as_raw_pid()) {
                    new += 1;
                }
                if let Some(fd) = process.handle
                    && killed.len() < FOLLOWED_MAX
                {
                    killed.push(fd);
                }
            });
            if new == 0 || Instant::now() >= looking_until {
                break;
            }
        }
        // Killed is not yet ended: whoever is told next must find them gone.
        wait_ended(killed, looking_until);
        found.len()
    }

    pub(super) fn ask_marked_to_end(mark: &Mark) -> usize {
        let looking_until = Instant::now() + Duration::from_millis(SWEEP_SCAN_MS_MAX);
        let mut asked = 0;
        each_marked(mark, looking_until, &mut Vec::new(), |process| {
            process.signal(Signal::TERM);
            asked += 1;
        });
        asked
    }

    /// Calls `found` with every process carrying `mark`, this one excepted: one look through
    /// `/proc`, bounded, then more looks at those that were in an `execve`
    /// ([`super::may_be_in_execve`]).
    fn each_marked(
        mark: &Mark,
        until: Instant,
        environ: &mut Vec<u8>,
        mut found: impl FnMut(Found),
    ) {
        let this = procfs::this_entry();
        let mut unsettled = Vec::new();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.take(PROC_ENTRIES_MAX) {
                if Instant::now() >= until {
                    break;
                }
                let Some(entry) = entry
                    .ok()
                    .and_then(|entry| entry.file_name().to_str()?.parse().ok())
                else {
                    continue;
                };
                if Some(entry) != this
                    && look(entry, mark, environ, &mut found) == Environ::Unsettled
                    && unsettled.len() < FOLLOWED_MAX
                {
                    unsettled.push(entry);
                }
            }
        }
        for _ in 0..SETTLE_LOOKS_MAX {
            if unsettled.is_empty() || Instant::now() >= until {
                return;
            }
            std::thread::sleep(Duration::from_millis(SETTLE_WAIT_MS));
            unsettled.retain(|entry| look(*entry, mark, environ, &mut found) == Environ::Unsettled);
        }
    }

    /// What a look at a process's environment saw.
    #[derive(PartialEq, Eq)]
    enum Environ {
        Marked,
        /// Another mark or none, or unreadable (another user's process, a setuid one, a zombie,
        /// a kernel thread, one gone).
        Unmarked,
        /// Empty, in a live process: an `execve` in progress, or one started with none.
        Unsettled,
    }

    /// Looks at the process at `/proc/<entry>`, and calls `found` if it carries `mark` and has
    /// a pid in this process's namespace ([`procfs::local`]). Its environment is read again once
    /// its pidfd is taken, so the descriptor names a process seen carrying the mark (a pid
    /// reused in between is another process, which the second read sees).
    fn look(entry: i32, mark: &Mark, environ: &mut Vec<u8>, found: impl FnOnce(Found)) -> Environ {
        let first = read_environ(entry, mark, environ);
        if first != Environ::Marked {
            return first;
        }
        let Some(pid) = procfs::local(entry).and_then(Pid::from_raw) else {
            return Environ::Unmarked;
        };
        let handle = match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
            Ok(fd) => Some(fd),
            Err(Errno::NOSYS) => None,
            Err(_) => return Environ::Unmarked,
        };
        if handle.is_some() {
            let second = read_environ(entry, mark, environ);
            if second != Environ::Marked {
                return second;
            }
            if procfs::local(entry) != Some(pid.as_raw_pid()) {
                return Environ::Unmarked;
            }
        }
        found(Found { pid, handle });
        Environ::Marked
    }

    /// Reads the environment at `/proc/<entry>` (at most [`ENVIRON_BYTES_MAX`]) and looks for
    /// `mark` in it.
    fn read_environ(entry: i32, mark: &Mark, environ: &mut Vec<u8>) -> Environ {
        environ.clear();
        let Ok(file) = std::fs::File::open(format!("/proc/{entry}/environ")) else {
            return Environ::Unmarked;
        };
        let limit = u64::try_from(ENVIRON_BYTES_MAX).unwrap_or(u64::MAX);
        if file.take(limit).read_to_end(environ).is_err() {
            return Environ::Unmarked;
        }
        if !environ.is_empty() {
            return match mark.is_carried_by(environ) {
                true => Environ::Marked,
                false => Environ::Unmarked,
            };
        }
        let stat = std::fs::read_to_string(format!("/proc/{entry}/stat")).unwrap_or_default();
        match super::may_be_in_execve(&stat) {
            true => Environ::Unsettled,
            false => Environ::Unmarked,
        }
    }

    /// Waits until every process in `followed` has ended (its pidfd is readable), or `until`.
    fn wait_ended(mut followed: Vec<OwnedFd>, until: Instant) {
        use rustix::event::{PollFd, PollFlags, Timespec};
        while !followed.is_empty() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let Ok(timeout) = Timespec::try_from(left) else {
                return;
            };
            let mut polled: Vec<PollFd<'_>> = followed
                .iter()
                .map(|fd| PollFd::new(fd, PollFlags::IN))
                .collect();
            match rustix::event::poll(&mut polled, Some(&timeout)) {
                Ok(0) => return,
                Ok(_) | Err(Errno::INTR) => {}
                Err(_) => return,
            }
            let ended: Vec<bool> = polled.iter().map(|fd| !fd.revents().is_empty()).collect();
            drop(polled);
            let mut ended = ended.into_iter();
            followed.retain(|_| !ended.next().unwrap_or(false));
        }
    }

    pub(super) fn adopt() -> Result<(), AdoptError> {
        let children = procfs::this_entry().map(|this| format!("/proc/self/task/{this}/children"));
        if children.is_none_or(|children| std::fs::metadata(children).is_err()) {
            return Err(AdoptError::NoChildrenList);
        }
        // Sessions are compared as `/proc` numbers them: `getsid` answers 0 for a session whose
        // leader is outside this process's PID namespace, which no `Pid` may hold.
        let session = procfs::this_entry()
            .and_then(session_of)
            .ok_or(AdoptError::NoSession)?;
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
            .map_err(|e| AdoptError::Subreaper(e.to_string()))?;
        // An orphan handed over before the thread runs waits for it as a zombie.
        let reaper = std::thread::Builder::new()
            .name("orphan-reaper".to_owned())
            .spawn(move || reap_forever(session));
        if let Err(e) = reaper {
            // No orphan may be handed to a process that does not reap.
            let _ = rustix::process::set_child_subreaper(None);
            return Err(AdoptError::Thread(e.to_string()));
        }
        Ok(())
    }

    /// The reaper's thread: sleeps in `waitid` until a child has ended, leaving its status in
    /// place (`WNOWAIT`: the kernel does not say whose it was), then reaps the orphans among the
    /// children.
    fn reap_forever(session: i32) {
        loop {
            let ended =
                rustix::process::waitid(WaitId::All, WaitIdOptions::EXITED | WaitIdOptions::NOWAIT);
            if matches!(ended, Err(Errno::INTR)) {
                continue;
            }
            // No child at all (ECHILD), or the one that ended is someone else's to reap: a
            // `waitid` now would return at once, so the reaper waits before looking again.
            if ended.is_err() || reap_orphans(session) == 0 {
                std::thread::sleep(Duration::from_millis(REAPER_IDLE_MS));
            }
        }
    }

    /// Reaps the ended orphans among this process's children; how many.
    fn reap_orphans(session: i32) -> usize {
        let mut reaped = 0;
        for entry in children() {
            let agents = super::agents();
            let (Some(its_session), Some(pid)) = (
                session_of(entry),
                procfs::local(entry).and_then(Pid::from_raw),
            ) else {
                continue;
            };
            if super::is_orphan(pid.as_raw_pid(), its_session, session, &agents) {
                let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG;
                if let Ok(Some(_)) = rustix::process::waitid(WaitId::Pid(pid), options) {
                    reaped += 1;
                }
            }
        }
        reaped
    }

    /// The session of the process at `/proc/<entry>`, as `/proc` numbers it (a zombie's too).
    fn session_of(entry: i32) -> Option<i32> {
        let stat = std::fs::read_to_string(format!("/proc/{entry}/stat")).ok()?;
        let (_, after_name) = stat.rsplit_once(')')?;
        // After the name: the state, the parent, the group, the session.
        after_name.split_whitespace().nth(3)?.parse().ok()
    }

    /// This process's children, from every thread's list (an orphan goes to a live thread of
    /// its subreaper, the main one unless it has ended), at most [`PROC_ENTRIES_MAX`], by their
    /// `/proc` entries.
    fn children() -> Vec<i32> {
        let Ok(threads) = std::fs::read_dir("/proc/self/task") else {
            return Vec::new();
        };
        threads
            .take(PROC_ENTRIES_MAX)
            .filter_map(|thread| std::fs::read_to_string(thread.ok()?.path().join("children")).ok())
            .flat_map(|list| {
                list.split_whitespace()
                    .filter_map(|entry| entry.parse().ok())
                    .collect::<Vec<i32>>()
            })
            .take(PROC_ENTRIES_MAX)
            .collect()
    }
}

/// The portable stand-in: no sweeps, no subreaper (module documentation, macOS).
#[cfg(not(target_os = "linux"))]
mod sys {
    use std::time::Duration;

    use super::{AdoptError, Mark};

    pub(super) fn end_marked(_: &Mark, _: Duration) -> usize {
        0
    }

    pub(super) fn ask_marked_to_end(_: &Mark) -> usize {
        0
    }

    pub(super) fn adopt() -> Result<(), AdoptError> {
        Err(AdoptError::Unsupported)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::{DaemonId, Mark, is_orphan, may_be_in_execve};
    use crate::core::ids::AgentId;

    fn daemon() -> DaemonId {
        DaemonId::of_state_dir(Path::new("/home/me/.local/state/baton"))
    }

    fn agent() -> AgentId {
        AgentId::from_random([9; 16])
    }

    /// Whether `environ` (entries joined by NUL) carries `mark`.
    fn check(mark: &Mark, environ: &str, expected: bool) {
        assert_eq!(
            mark.is_carried_by(environ.as_bytes()),
            expected,
            "{mark:?} in {environ:?}"
        );
    }

    #[test]
    fn the_daemon_id_is_a_stable_hash_of_the_state_dir() {
        // Pinned: a daemon upgraded after a crash must still find what the old one left.
        assert_eq!(daemon().to_string(), "16256442934c113b");
        assert_eq!(
            daemon(),
            DaemonId::of_state_dir(Path::new("/home/me/.local/state/baton"))
        );
        assert_ne!(
            daemon(),
            DaemonId::of_state_dir(Path::new("/home/me/.local/state/baton2"))
        );
    }

    #[test]
    fn a_mark_is_carried_only_as_whole_entries() {
        let ours = Mark::agent(daemon(), agent());
        let [(_, d), (_, a)] = ours.variables().try_into().unwrap();
        let theirs = format!("BATON_DAEMON={}", DaemonId::of_state_dir(Path::new("/x")));
        check(
            &ours,
            &format!("PATH=/bin\0BATON_DAEMON={d}\0BATON_AGENT={a}\0"),
            true,
        );
        check(
            &ours,
            &format!("BATON_AGENT={a}\0HOME=/\0BATON_DAEMON={d}\0"),
            true,
        );
        check(&ours, &format!("BATON_DAEMON={d}\0"), false);
        check(&ours, &format!("{theirs}\0BATON_AGENT={a}\0"), false);
        check(
            &ours,
            &format!("BATON_DAEMON={d}\0BATON_AGENT={a}x\0"),
            false,
        );
        check(
            &ours,
            &format!("BATON_DAEMON={d}\0X=BATON_AGENT={a}\0"),
            false,
        );
        check(
            &ours,
            &format!("BATON_DAEMON={d}\0XBATON_AGENT={a}\0"),
            false,
        );
        check(
            &Mark::daemon(daemon()),
            &format!("BATON_DAEMON={d}\0BATON_AGENT={a}\0"),
            true,
        );
        check(&Mark::daemon(daemon()), "", false);
    }

    #[test]
    fn an_entry_a_bounded_read_cut_short_never_counts() {
        let mark = Mark::daemon(daemon());
        let whole = format!("BATON_DAEMON={}", daemon());
        check(&mark, &whole, false);
        check(&mark, &format!("A=1\0{whole}"), false);
        check(&mark, &format!("A=1\0{whole}\0"), true);
    }

    #[test]
    fn only_a_live_user_process_with_no_environment_may_be_in_an_execve() {
        let stat = |state: &str, flags: u64| {
            format!("42 (a (b) c) {state} 1 42 42 0 -1 {flags} 0 0 0 0 0 0 0 0 20 0 1 0 99")
        };
        assert!(may_be_in_execve(&stat("R", 0x0040_0000)));
        assert!(may_be_in_execve(&stat("D", 0)));
        assert!(!may_be_in_execve(&stat("Z", 0x0040_0000)), "a zombie");
        assert!(!may_be_in_execve(&stat("X", 0)), "dead");
        assert!(
            !may_be_in_execve(&stat("S", 0x0020_8040)),
            "a kernel thread"
        );
        assert!(!may_be_in_execve(""), "gone");
    }

    #[test]
    fn the_reaper_leaves_agents_and_the_daemons_own_session_alone() {
        let agents = BTreeSet::from([100]);
        assert!(!is_orphan(100, 100, 1, &agents), "an agent: its waiter's");
        assert!(!is_orphan(200, 1, 1, &agents), "a helper in our session");
        assert!(
            is_orphan(300, 300, 1, &agents),
            "a runaway that called setsid"
        );
        assert!(
            is_orphan(400, 100, 1, &agents),
            "a descendant left in an agent's session"
        );
    }
}
