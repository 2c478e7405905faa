//! Where the API (and the app channel above it) hand the audit trail its entries: a bounded
//! queue to the daemon's writer (`daemon::audit`), and what each REST call records.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::core::audit::{Action, Actor, Entry, Outcome};
use crate::core::auth::Route;
use crate::core::ids::{CoordinatorId, TaskId};
use crate::core::routes::TaskOp;
use crate::core::time::Millis;
use crate::ports::Clock;

/// Entries waiting for the writer at most: a caller waits beyond.
pub const AUDIT_QUEUE_MAX: usize = 1_024;

/// An entry and the secrets its line must not hold (the credential its call presented).
pub type Queued = (Entry, Vec<String>);

/// Where entries are handed to the writer. Cloned by everyone who records.
#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Queued>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").finish_non_exhaustive()
    }
}

impl AuditLog {
    /// A log handing its entries to `queue` (the writer's, at most [`AUDIT_QUEUE_MAX`]),
    /// each stamped with `clock`'s time.
    #[must_use]
    pub fn new(queue: mpsc::Sender<Queued>, clock: Arc<dyn Clock>) -> Self {
        AuditLog { queue, clock }
    }

    /// Hands `entry` to the writer, stamped now, with the `secrets` its line must not hold;
    /// waits only while the queue is full. An entry handed to a stopped writer is dropped (the
    /// daemon is gone).
    pub async fn record(&self, mut entry: Entry, secrets: Vec<String>) {
        entry.at = self.clock.now();
        let _ = self.queue.send((entry, secrets)).await;
    }
}

/// What a coordinator's call on `route` is in the trail, and the task it names; `None` for a
/// call that changes nothing (a read, a wait, the MCP server's start).
#[must_use]
pub fn coordinator_action(route: &Route) -> Option<(Action, Option<TaskId>)> {
    match route {
        Route::CreateTask => Some((Action::CreateTask, None)),
        Route::Task(task, op) => {
            let action = match op {
                TaskOp::Prompt => Action::SendPrompt,
                TaskOp::Merge | TaskOp::ReviewMerge => Action::MergeTask,
                TaskOp::Close => Action::CloseTask,
                _ => return None,
            };
            let id = match task {
                crate::core::auth::TaskRef::Id(id) => Some(*id),
                crate::core::auth::TaskRef::NotAnId(_) => None,
            };
            Some((action, id))
        }
        _ => None,
    }
}

/// An entry of a call that ended with `status` (and `error`, when it failed); its time is
/// stamped when it is recorded.
#[must_use]
pub fn entry(
    actor: Actor,
    (action, coordinator, task): (Action, Option<CoordinatorId>, Option<TaskId>),
    fields: &serde_json::Map<String, serde_json::Value>,
    status: u16,
    error: Option<String>,
) -> Entry {
    Entry {
        at: Millis(0),
        actor,
        action,
        coordinator,
        task,
        args: Entry::args_from(action, fields),
        outcome: Outcome { status, error },
    }
}
