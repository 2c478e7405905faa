//! Randomness, for ids and secrets. Seeded in tests and the simulator, from the OS in production.

use crate::core::ids::{DONE_TOKEN_BYTES, DoneToken, Uuid};

/// A source of random bytes.
pub trait Entropy: Send + Sync {
    /// Fills `bytes` with random bytes.
    fn fill(&self, bytes: &mut [u8]);
}

impl dyn Entropy {
    /// A fresh UUID v4.
    #[must_use]
    pub fn uuid(&self) -> Uuid {
        let mut bytes = [0; 16];
        self.fill(&mut bytes);
        Uuid::from_random(bytes)
    }

    /// A fresh done token.
    #[must_use]
    pub fn done_token(&self) -> DoneToken {
        let mut bytes = [0; DONE_TOKEN_BYTES];
        self.fill(&mut bytes);
        DoneToken::from_random(bytes)
    }
}
