//! Production ports: what the engine and the MCP process use on a real machine. Everything
//! platform-specific lives here (DESIGN: macOS and Linux, Unix-portable).
//!
//! For now: [`OsEntropy`]. The PTY host (portable-pty), the repository (git2 and the git CLI),
//! files with atomic writes and the clock follow with the daemon.

use std::io::Read as _;

use crate::ports::Entropy;

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
