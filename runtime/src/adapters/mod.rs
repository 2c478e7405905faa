//! Production ports: what the engine and the MCP process use on a real machine. Everything
//! platform-specific lives here (DESIGN: macOS and Linux, Unix-portable).
//!
//! Layout: [`files`] (std fs with atomic writes), [`git`] (the repository: git2 for reads, the
//! git CLI for what changes a user's checkout), `procfs` (Linux: which `/proc` entry is which
//! of this process's pids), [`pty`] (portable-pty), [`runaways`] (what an
//! agent leaves running outside its process group: marks, sweeps, the child subreaper), [`tty`]
//! (the user's own terminal: raw mode, size), and here the system clock and the OS's randomness.

use std::io::Read as _;

use crate::core::time::Millis;
use crate::ports::{Clock, Entropy};

pub mod checks;
pub mod files;
pub mod git;
#[cfg(target_os = "linux")]
pub mod procfs;
pub mod pty;
pub mod runaways;
pub mod tty;

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

/// Whether this process runs as root outside a sandbox Claude Code recognises (`IS_SANDBOX=1`,
/// `CLAUDE_CODE_BUBBLEWRAP`): Claude Code then refuses `--dangerously-skip-permissions` and
/// exits at once.
#[must_use]
pub fn root_outside_a_sandbox() -> bool {
    rustix::process::geteuid().is_root()
        && std::env::var_os("IS_SANDBOX").is_none_or(|v| v != "1")
        && std::env::var_os("CLAUDE_CODE_BUBBLEWRAP").is_none()
}

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one production read of the wall clock
    fn now(&self) -> Millis {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Millis(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
    }
}

/// Bytes of OS randomness read at once and handed out from memory: the engine draws ids for
/// every output chunk (32 bytes), which would otherwise be a system call each.
pub const ENTROPY_POOL_BYTES: usize = 4_096;

/// Randomness from the operating system (`/dev/urandom`, on every Unix), opened once and read
/// [`ENTROPY_POOL_BYTES`] at a time; a byte is handed out once.
#[derive(Debug)]
pub struct OsEntropy {
    pool: std::sync::Mutex<Pool>,
}

#[derive(Debug)]
struct Pool {
    device: std::fs::File,
    bytes: Box<[u8; ENTROPY_POOL_BYTES]>,
    /// How many of `bytes` were handed out (all, at first).
    used: usize,
}

impl OsEntropy {
    /// Opens the random device (kept open: no file descriptor is needed later, when a busy
    /// daemon may have none to spare).
    ///
    /// # Errors
    /// `/dev/urandom` cannot be opened.
    pub fn open() -> std::io::Result<Self> {
        let device = std::fs::File::open("/dev/urandom")?;
        Ok(OsEntropy {
            pool: std::sync::Mutex::new(Pool {
                device,
                bytes: Box::new([0; ENTROPY_POOL_BYTES]),
                used: ENTROPY_POOL_BYTES,
            }),
        })
    }
}

impl Entropy for OsEntropy {
    fn fill(&self, bytes: &mut [u8]) {
        let mut pool = self
            .pool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Pool {
            device,
            bytes: buffer,
            used,
        } = &mut *pool;
        // The kernel's random device does not run dry, and it is open already.
        let mut read = |into: &mut [u8]| {
            if let Err(error) = device.read_exact(into) {
                panic!("cannot read /dev/urandom: {error}");
            }
        };
        if bytes.len() > ENTROPY_POOL_BYTES / 4 {
            read(bytes);
            return;
        }
        if ENTROPY_POOL_BYTES - *used < bytes.len() {
            read(&mut buffer[..]);
            *used = 0;
        }
        let start = *used;
        bytes.copy_from_slice(&buffer[start..start + bytes.len()]);
        // Handed out once: the pool's copy is wiped.
        buffer[start..start + bytes.len()].fill(0);
        *used += bytes.len();
    }
}

#[cfg(test)]
mod tests {
    use super::OsEntropy;
    use crate::ports::Entropy;

    #[test]
    fn draws_differ_across_refills_and_large_ones() {
        let entropy = OsEntropy::open().unwrap();
        let mut seen = std::collections::BTreeSet::new();
        // Past two refills of the pool: every 32-byte draw is new.
        for _ in 0..(2 * super::ENTROPY_POOL_BYTES / 32 + 3) {
            let mut bytes = [0u8; 32];
            entropy.fill(&mut bytes);
            assert!(seen.insert(bytes), "2^-256 odds of a false failure");
        }
        let mut large = vec![0u8; super::ENTROPY_POOL_BYTES];
        entropy.fill(&mut large);
        assert!(large.iter().any(|b| *b != 0));
    }
}
