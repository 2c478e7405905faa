//! Production ports: what the engine and the MCP process use on a real machine. Everything
//! platform-specific lives here (DESIGN: macOS and Linux, Unix-portable).
//!
//! Layout: [`files`] (std fs with atomic writes), [`git`] (the repository: git2 for reads, the
//! git CLI for what changes a user's checkout), [`pty`] (portable-pty), and here the system
//! clock and the OS's randomness.

use std::io::Read as _;

use crate::core::time::Millis;
use crate::ports::{Clock, Entropy};

pub mod files;
pub mod git;
pub mod pty;

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one production read of the wall clock
    fn now(&self) -> Millis {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Millis(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
    }
}

/// Randomness from the operating system (`/dev/urandom`, on every Unix).
#[derive(Clone, Copy, Debug, Default)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, bytes: &mut [u8]) {
        // The kernel's random device does not run dry; a machine without it cannot run Baton.
        let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(bytes));
        if let Err(error) = read {
            panic!("cannot read /dev/urandom: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OsEntropy;
    use crate::ports::Entropy;

    #[test]
    fn two_draws_differ() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        OsEntropy.fill(&mut a);
        OsEntropy.fill(&mut b);
        assert_ne!(a, b, "2^-256 odds of a false failure");
    }
}
