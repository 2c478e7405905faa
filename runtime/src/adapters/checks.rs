//! The `Checks` port on the machine's shell: a check is `/bin/sh -c COMMAND` in the task's
//! worktree.
//!
//! It runs with standard input empty, its standard output and error into one pipe, in a process
//! group of its own, with the daemon's environment less the variables it is told to withhold
//! (the daemon names those that carry Baton's credentials) and those that would point git at
//! another repository. It carries the
//! daemon's mark and one of its own ([`runaways`]): what a crash leaves of it is ended at the
//! next start, like an agent's leftovers, and whatever it started, in its group or out of it, is
//! ended (and has ended) before its run is reported: at once when the shell exits; past its limit,
//! SIGTERM first, then SIGKILL after [`CHECK_KILL_GRACE_MS`]. Its output is read to its end and
//! only the last [`CHECK_OUTPUT_TAIL_BYTES`] kept; once everything is gone, a process that still
//! holds the pipe (one the sweep could not see) is read for [`CHECK_KILL_GRACE_MS`] at most.

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt as _;
use tokio::time::Instant;

use crate::adapters::runaways::{self, DaemonId, Mark};
use crate::core::ids::AgentId;
use crate::ports::{
    BoxFuture, CHECK_KILL_GRACE_MS, CHECK_OUTPUT_TAIL_BYTES, CheckEnd, CheckRequest, CheckRun,
    Checks, Tail,
};

/// Bytes read from a check's output at once.
const READ_BYTES: usize = 8 * 1024;

/// Checks run by the shell. See the module documentation.
#[derive(Debug)]
pub struct ShellChecks {
    daemon: DaemonId,
    /// Variables of the daemon's environment a check does not get.
    withheld: Vec<&'static str>,
    /// Checks started: each one's mark is new.
    started: AtomicU64,
}

impl ShellChecks {
    /// Checks of `daemon`, carrying its mark, without the variables `withheld`.
    #[must_use]
    pub fn new(daemon: DaemonId, withheld: Vec<&'static str>) -> Self {
        ShellChecks {
            daemon,
            withheld,
            started: AtomicU64::new(0),
        }
    }

    /// A mark no other check of this process carries (a check is no agent, but it is swept as
    /// one: by an id of its own under the daemon's).
    fn next_mark(&self) -> Mark {
        let n = self.started.fetch_add(1, Ordering::Relaxed);
        let mut id = [0; 16];
        id[..8].copy_from_slice(&n.to_be_bytes());
        id[8..12].copy_from_slice(&std::process::id().to_be_bytes());
        id[12..].copy_from_slice(b"chck");
        Mark::agent(self.daemon, AgentId::from_random(id))
    }
}

impl Checks for ShellChecks {
    fn run(&self, request: CheckRequest) -> BoxFuture<'_, CheckRun> {
        Box::pin(run(request, self.next_mark(), &self.withheld))
    }
}

/// Ends everything that carries `mark`, SIGTERM first and SIGKILL after `grace`, and waits until
/// it has ended.
async fn end_marked(mark: Mark, grace: Duration) {
    let _ = tokio::task::spawn_blocking(move || runaways::end_marked(&mark, grace)).await;
}

async fn run(request: CheckRequest, mark: Mark, withheld: &[&str]) -> CheckRun {
    let started = Instant::now();
    let not_started = |why: String| CheckRun {
        end: CheckEnd::NotStarted(why),
        duration_ms: 0,
        output_bytes: 0,
        tail: Vec::new(),
    };
    let (mut output, mut child) = match spawn(&request, &mark, withheld) {
        Ok(spawned) => spawned,
        Err(error) => return not_started(error.to_string()),
    };
    let group = child
        .id()
        .and_then(|pid| rustix::process::Pid::from_raw(i32::try_from(pid).ok()?));
    let kill = |signal| {
        if let Some(group) = group {
            let _ = rustix::process::kill_process_group(group, signal);
        }
    };
    let mut tail = Tail::new(CHECK_OUTPUT_TAIL_BYTES);
    let mut buffer = vec![0; READ_BYTES];
    let mut open = true;
    let limit = started + Duration::from_millis(request.timeout_ms);
    // Reading goes on while the shell runs, so a check that prints much never blocks on a full
    // pipe.
    let status = loop {
        tokio::select! {
            read = output.read(&mut buffer), if open => open = took(read, &buffer, &mut tail),
            status = child.wait() => break Some(status),
            () = crate::time::sleep_until(limit) => break None,
        }
    };
    let end = match status {
        Some(status) => {
            // What it left running goes with it: found by its mark while it lives (a process
            // being killed may no longer show it), then its group for one that dropped the mark.
            end_marked(mark, Duration::ZERO).await;
            kill(rustix::process::Signal::KILL);
            ended(status)
        }
        None => {
            kill(rustix::process::Signal::TERM);
            let grace = Instant::now() + Duration::from_millis(CHECK_KILL_GRACE_MS);
            let ended_in_grace = loop {
                tokio::select! {
                    read = output.read(&mut buffer), if open => {
                        open = took(read, &buffer, &mut tail);
                    }
                    _ = child.wait() => break true,
                    () = crate::time::sleep_until(grace) => break false,
                }
            };
            end_marked(mark, Duration::ZERO).await;
            kill(rustix::process::Signal::KILL);
            if !ended_in_grace {
                let _ = child.wait().await;
            }
            CheckEnd::TimedOut
        }
    };
    // The rest of its output, from what still holds the pipe: bounded, since a process that left
    // the group could hold it for ever.
    let drained = Instant::now() + Duration::from_millis(CHECK_KILL_GRACE_MS);
    while open {
        tokio::select! {
            read = output.read(&mut buffer) => open = took(read, &buffer, &mut tail),
            () = crate::time::sleep_until(drained) => break,
        }
    }
    CheckRun {
        end,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        output_bytes: tail.seen(),
        tail: tail.into_bytes(),
    }
}

/// Takes what one read of the output gave into `tail`: whether the pipe is still open.
fn took(read: std::io::Result<usize>, buffer: &[u8], tail: &mut Tail) -> bool {
    match read {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            tail.push(&buffer[..n]);
            true
        }
    }
}

/// Starts the shell: its output's pipe and the child.
fn spawn(
    request: &CheckRequest,
    mark: &Mark,
    withheld: &[&str],
) -> std::io::Result<(tokio::net::unix::pipe::Receiver, tokio::process::Child)> {
    let (sender, receiver) = tokio::net::unix::pipe::pipe()?;
    let stdout = sender.into_blocking_fd()?;
    let stderr = stdout.try_clone()?;
    let mut command = command(request, mark, withheld);
    command.stdout(stdout).stderr(stderr);
    let child = command.spawn()?;
    // The command holds the pipe's writing ends until it is dropped: the pipe ends with the
    // check's processes, not with this function's caller.
    drop(command);
    Ok((receiver, child))
}

/// The shell's command for `request`, carrying `mark`, without the variables `withheld`, without
/// its output.
fn command(request: &CheckRequest, mark: &Mark, withheld: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(&request.command)
        .current_dir(&request.dir)
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    for name in withheld.iter().chain(&crate::adapters::git::REPOSITORY_ENV) {
        command.env_remove(name);
    }
    for (name, value) in mark.variables() {
        command.env(name, value);
    }
    command
}

/// A finished shell's end.
fn ended(status: std::io::Result<std::process::ExitStatus>) -> CheckEnd {
    use std::os::unix::process::ExitStatusExt as _;
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => CheckEnd::Exited(code),
            (None, Some(signal)) => CheckEnd::Signalled(signal),
            (None, None) => CheckEnd::NotStarted("it ended without a status".to_owned()),
        },
        Err(error) => CheckEnd::NotStarted(format!("waiting for it failed: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::path::Path;

    use super::{ShellChecks, command};
    use crate::adapters::runaways::DaemonId;
    use crate::ports::CheckRequest;

    #[test]
    fn a_check_gets_nothing_withheld_and_the_daemons_mark() {
        let daemon = DaemonId::of_state_dir(Path::new("/state"));
        let request = CheckRequest {
            dir: "/repo/.worktrees/t".into(),
            command: "cargo test -q".into(),
            timeout_ms: 1_000,
        };
        let withheld = vec!["BATON_MCP_TOKEN", "BATON_DONE_TOKEN"];
        let checks = ShellChecks::new(daemon, withheld.clone());
        let (mark, next) = (checks.next_mark(), checks.next_mark());
        assert_ne!(mark, next, "each check is marked apart");
        let command = command(&request, &mark, &withheld);
        let command = command.as_std();
        let envs: Vec<_> = command.get_envs().collect();
        for name in withheld.iter().chain(&crate::adapters::git::REPOSITORY_ENV) {
            assert!(
                envs.contains(&(OsStr::new(name), None)),
                "{name} is taken out"
            );
        }
        for (name, value) in mark.variables() {
            assert!(envs.contains(&(OsStr::new(name), Some(OsStr::new(&value)))));
        }
        assert_eq!(command.get_program(), "/bin/sh");
        assert_eq!(
            command.get_args().collect::<Vec<_>>(),
            ["-c", "cargo test -q"]
        );
        assert_eq!(
            command.get_current_dir(),
            Some(Path::new("/repo/.worktrees/t"))
        );
    }
}
