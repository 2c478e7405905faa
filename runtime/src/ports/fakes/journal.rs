//! MemoryJournal: the records each coordinator saved last, and saves that can be made to fail.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::lock;
use crate::core::coordinator::Records;
use crate::core::ids::CoordinatorId;
use crate::ports::{BoxFuture, Journal, JournalError};

/// The records each coordinator saved last, in memory (what a restart would find).
#[derive(Debug, Default)]
pub struct MemoryJournal {
    saved: Mutex<BTreeMap<CoordinatorId, (u64, Records)>>,
    failing: std::sync::atomic::AtomicBool,
}

impl MemoryJournal {
    /// What `id` saved last.
    #[must_use]
    pub fn saved(&self, id: CoordinatorId) -> Option<Records> {
        lock(&self.saved)
            .get(&id)
            .map(|(_, records)| records.clone())
    }

    /// Makes every save fail (`true`, a full disk) or succeed again.
    pub fn fail_saves(&self, failing: bool) {
        self.failing
            .store(failing, std::sync::atomic::Ordering::Relaxed);
    }

    /// Forgets `id` (it was deregistered).
    pub fn forget(&self, id: CoordinatorId) {
        lock(&self.saved).remove(&id);
    }
}

impl Journal for MemoryJournal {
    fn save(
        &self,
        id: CoordinatorId,
        seq: u64,
        records: Records,
    ) -> BoxFuture<'_, Result<(), JournalError>> {
        if self.failing.load(std::sync::atomic::Ordering::Relaxed) {
            let full = JournalError::Failed("no space left on device".to_owned());
            return Box::pin(async move { Err(full) });
        }
        let mut saved = lock(&self.saved);
        if saved.get(&id).is_none_or(|(kept, _)| *kept < seq) {
            saved.insert(id, (seq, records));
        }
        Box::pin(async { Ok(()) })
    }
}
