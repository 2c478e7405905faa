//! What leaves the engine besides answers: the app's events ([`AppEvent`]), the feed of agent
//! events for live viewers ([`AgentFeed`], bounded by [`AGENT_EVENTS_MAX`]), and the viewers of
//! agents' terminals ([`Viewer`]: a bounded queue filled without waiting, [`hand_out`]) with the
//! input they may send ([`TerminalInput`]).

use std::sync::Arc;

use tokio::sync::{Notify, broadcast, mpsc};

use super::{AGENT_EVENTS_MAX, MergeResult, TaskView};
use crate::core::ids::{AgentId, CoordinatorId, TaskId};
use crate::core::notify::Notice;

/// What the app is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppEvent {
    /// A sub-task was created.
    TaskCreated {
        /// Its coordinator.
        coordinator: CoordinatorId,
        /// The task.
        task: TaskView,
    },
    /// A sub-task's work was merged into its target branch.
    Merged {
        /// The task.
        task: TaskId,
        /// Where it went, and how much.
        merge: MergeResult,
    },
    /// A sub-task was closed: its worktree and branch are gone.
    TaskClosed(TaskId),
    /// Closing a sub-task failed half-way; it is still listed so the close can be retried.
    CleanupFailed {
        /// The task.
        task: TaskId,
        /// What failed.
        error: String,
    },
    /// The coordinator's notifications changed.
    Notice(CoordinatorId, Notice),
    /// A task's state changed (see [`crate::core::coordinator::StateChange`]).
    State(TaskId, crate::core::coordinator::StateChange),
    /// A coordinator's own MCP server started (its agent has Baton's tools, and its first prompt
    /// may be typed).
    CoordinatorMcpConnected(CoordinatorId),
    /// A task of a deregistered coordinator finished.
    Orphaned {
        /// The task.
        task: TaskId,
        /// How it finished.
        text: String,
    },
}

/// What live viewers of the agents (the WebSocket) are told, by every coordinator's actor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentEvent {
    /// The list of agents changed: one was spawned or closed, or its status or exit code changed.
    ListChanged,
    /// An agent's process ended (a [`AgentEvent::ListChanged`] follows).
    Exited {
        /// The agent.
        agent: AgentId,
        /// Its exit code, if it exited normally.
        code: Option<i32>,
    },
}

/// The engine's broadcast of [`AgentEvent`]s, holding the last [`AGENT_EVENTS_MAX`]. Cheap to
/// clone.
#[derive(Clone, Debug)]
pub struct AgentFeed(broadcast::Sender<AgentEvent>);

impl AgentFeed {
    /// A feed nobody listens to yet.
    #[must_use]
    pub fn new() -> Self {
        AgentFeed(broadcast::channel(AGENT_EVENTS_MAX).0)
    }

    /// Starts listening: events from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<AgentEvent> {
        self.0.subscribe()
    }

    pub(crate) fn send(&self, event: AgentEvent) {
        // Nobody listening is not a failure.
        let _ = self.0.send(event);
    }
}

impl Default for AgentFeed {
    fn default() -> Self {
        AgentFeed::new()
    }
}

/// What a viewer of an agent's terminal receives, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Watched {
    /// Bytes the agent wrote, as they came.
    Output(AgentId, Arc<[u8]>),
    /// The agent's process ended; nothing more comes for it.
    Exited(AgentId, Option<i32>),
}

/// A viewer of agents' terminals (one WebSocket connection). The actor puts what it watches
/// on `queue` without waiting; when the queue is full the viewer is dropped from every agent
/// of that coordinator and `overflowed` is notified, so a slow viewer costs a bounded queue,
/// never the agents' speed.
#[derive(Clone, Debug)]
pub struct Viewer {
    /// Tells the viewer's subscriptions apart (unique per viewer).
    pub id: u64,
    /// Where its output goes (bounded by its maker).
    pub queue: mpsc::Sender<Watched>,
    /// Notified when the queue overflowed.
    pub overflowed: Arc<Notify>,
}

/// Hands `watched` to each of `viewers` without waiting: a viewer whose queue is full is
/// notified and dropped, one whose queue closed is dropped; answers the ids of those that
/// overflowed.
pub(crate) fn hand_out(viewers: &mut Vec<Viewer>, watched: &Watched) -> Vec<u64> {
    let mut overflowed = Vec::new();
    viewers.retain(|viewer| match viewer.queue.try_send(watched.clone()) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            viewer.overflowed.notify_one();
            overflowed.push(viewer.id);
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    });
    overflowed
}

/// A watch that started: the agent's recent output, taken in the same step that registered the
/// viewer, so nothing is lost or repeated between the two.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watching {
    /// The scrollback ring, oldest byte first.
    pub scrollback: Vec<u8>,
    /// The terminal's width.
    pub cols: u16,
    /// The agent had exited already (with this code, if it exited normally): nothing more will
    /// come, and no viewer was added.
    pub exited: Option<Option<i32>>,
}

/// Direct input to an agent's terminal, from a viewer that may write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TerminalInput {
    /// Keystrokes.
    Write(Vec<u8>),
    /// A new terminal size.
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// End the agent's process.
    Kill,
}
