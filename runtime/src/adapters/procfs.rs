//! `/proc` seen from this process: which entry is which of its pids (Linux).
//!
//! `/proc` names a process by its pid in the PID namespace of whoever mounted it; this process
//! signals and waits by pids in its own namespace. The two agree unless this process runs in a
//! PID namespace of its own under a `/proc` mounted outside it (`unshare --pid` without
//! `--mount-proc`, some containers, sandboxes and CI runners). There, entry 7379 may be this
//! process's pid 1, and its pid 7379, if there is one, is another process entirely: a sweep that
//! signalled by what `/proc` lists would strike a stranger.
//!
//! [`local`] turns an entry into the pid this process knows it by, from the entry's `NSpid`
//! line, and only for a process in this process's own namespace (the entry's `ns/pid` link is
//! this process's): a process in another namespace has no pid here to signal it by, or one that
//! names another process. [`entry`] goes the other way by a look through `/proc`. Where `/proc`
//! is this process's own, both are the identity and read nothing.
//!
//! Bounds: [`entry`] reads at most [`super::runaways::PROC_ENTRIES_MAX`] entries.

use std::ffi::OsString;
use std::sync::OnceLock;

use super::runaways::PROC_ENTRIES_MAX;

/// How `/proc` relates to this process's pids, found once.
enum View {
    /// `/proc` belongs to this process's PID namespace: entries are pids.
    Own,
    /// `/proc` belongs to another namespace (or is not there): entries are translated, and
    /// only for processes whose namespace link reads `ns` (none if it could not be read).
    Foreign { ns: Option<OsString> },
}

fn view() -> &'static View {
    static VIEW: OnceLock<View> = OnceLock::new();
    VIEW.get_or_init(|| {
        if this_entry() == Some(rustix::process::getpid().as_raw_pid()) {
            View::Own
        } else {
            let ns = std::fs::read_link("/proc/self/ns/pid").ok();
            View::Foreign {
                ns: ns.map(std::path::PathBuf::into_os_string),
            }
        }
    })
}

/// Whether `/proc` names processes by this process's pids.
#[must_use]
pub fn is_own() -> bool {
    matches!(view(), View::Own)
}

/// This process's own entry in `/proc` (what `/proc/self` links to), if `/proc` is mounted.
#[must_use]
pub fn this_entry() -> Option<i32> {
    std::fs::read_link("/proc/self")
        .ok()?
        .to_str()?
        .parse()
        .ok()
}

/// The pid this process knows the process at `/proc/<entry>` by: `None` if it is gone, or in
/// another PID namespace than this process's.
#[must_use]
pub fn local(entry: i32) -> Option<i32> {
    match view() {
        View::Own => Some(entry),
        View::Foreign { ns: None } => None,
        View::Foreign { ns: Some(ns) } => {
            let its_ns = std::fs::read_link(format!("/proc/{entry}/ns/pid")).ok()?;
            if its_ns.as_os_str() != ns {
                return None;
            }
            let status = std::fs::read_to_string(format!("/proc/{entry}/status")).ok()?;
            innermost_pid(&status)
        }
    }
}

/// The `/proc` entry of the process this process knows as `pid`, if it runs (or is a zombie).
#[must_use]
pub fn entry(pid: i32) -> Option<i32> {
    if is_own() {
        return Some(pid);
    }
    std::fs::read_dir("/proc")
        .ok()?
        .take(PROC_ENTRIES_MAX)
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .find(|&entry| local(entry) == Some(pid))
}

/// The pid in a process's own namespace, from its `/proc/<pid>/status`: the last number on its
/// `NSpid` line (one per namespace, from `/proc`'s down to the process's own).
fn innermost_pid(status: &str) -> Option<i32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("NSpid:"))?
        .split_whitespace()
        .next_back()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::{entry, innermost_pid, local, this_entry};

    #[test]
    fn the_innermost_pid_is_the_last_on_the_nspid_line() {
        let status = "Name:\tsh\nTgid:\t7379\nNgid:\t0\nPid:\t7379\nNSpid:\t7379\t12\t1\n";
        assert_eq!(innermost_pid(status), Some(1));
        assert_eq!(innermost_pid("Pid:\t42\nNSpid:\t42\n"), Some(42));
        assert_eq!(innermost_pid("Pid:\t42\n"), None, "a kernel without NSpid");
        assert_eq!(innermost_pid("NSpid:\n"), None);
        assert_eq!(innermost_pid("NSpid:\tx\n"), None);
    }

    #[test]
    fn this_process_is_found_both_ways() {
        let this = rustix::process::getpid().as_raw_pid();
        let its_entry = this_entry().expect("/proc is mounted");
        assert_eq!(local(its_entry), Some(this));
        assert_eq!(entry(this), Some(its_entry));
    }

    /// The runaway tests and the one above again, in this test binary started in a PID
    /// namespace of its own under this `/proc` (`unshare` without `--mount-proc`, as a container
    /// or a CI runner may start a daemon): every entry then names its process by another pid
    /// than the one it is signalled by. A user namespace lets it run without privileges.
    #[test]
    fn the_runaway_tests_hold_under_the_proc_of_another_pid_namespace() {
        let output = std::process::Command::new("unshare")
            .args(["--user", "--map-root-user", "--pid", "--fork"])
            .arg(std::env::current_exe().unwrap())
            .args([
                "adapters::pty::tests::runaways::",
                "adapters::procfs::tests::this_process_is_found_both_ways",
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("unshare (util-linux) runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stdout}\n{stderr}");
        let ran: usize = stdout
            .lines()
            .find_map(|line| line.strip_prefix("running ")?.strip_suffix(" tests"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(ran > 1, "the runaway tests ran: {stdout}");
    }
}
