//! Wall-clock time, for timestamps users see (when a task signalled done).

use crate::core::time::Millis;

/// Wall-clock time. Deadlines and sleeps do not use it: they use tokio time.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now(&self) -> Millis;
}
