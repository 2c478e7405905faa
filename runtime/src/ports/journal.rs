//! Persistence of a coordinator's records (tasks, replay cache, operations under way): what a
//! restarted daemon restores.

use super::BoxFuture;
use crate::core::coordinator::Records;
use crate::core::ids::CoordinatorId;

/// A save that did not become durable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    /// The journal has stopped (the daemon is shutting down and has saved its last state).
    #[error("could not persist: the daemon is stopping")]
    Stopped,
    /// Writing failed.
    #[error("could not persist: {0}")]
    Failed(String),
}

/// Where coordinators' task records are kept.
///
/// Saves of one coordinator carry increasing sequence numbers and may arrive out of order
/// (each runs as its own job): a save older than one already kept is ignored.
pub trait Journal: Send + Sync {
    /// Keeps `records` as coordinator `id`'s; resolves once they are durable.
    fn save(
        &self,
        id: CoordinatorId,
        seq: u64,
        records: Records,
    ) -> BoxFuture<'_, Result<(), JournalError>>;
}
