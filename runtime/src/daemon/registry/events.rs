//! The engine's app events, logged and passed on to the daemon's followers.

use tokio::sync::mpsc;

use crate::engine::AppEvent;

/// Logs the engine's app events (the app's event stream comes with the app channel's next
/// routes). Runs from before the restore: a restored actor's events must never wait for a
/// reader.
pub async fn log_events(
    mut events: mpsc::Receiver<AppEvent>,
    feed: tokio::sync::broadcast::Sender<AppEvent>,
) {
    while let Some(event) = events.recv().await {
        tracing::info!(event = %describe(&event), "engine event");
        // Nobody listening is not a failure.
        let _ = feed.send(event);
    }
}

/// One log line for an app event: ids and names, never a token.
fn describe(event: &AppEvent) -> String {
    match event {
        AppEvent::TaskCreated { coordinator, task } => {
            format!(
                "task {} ({:?}) created by {coordinator}",
                task.id, task.name
            )
        }
        AppEvent::TaskClosed(task) => format!("task {task} closed"),
        AppEvent::CoordinatorMcpConnected(coordinator) => {
            format!("the MCP server of coordinator {coordinator} started")
        }
        AppEvent::CleanupFailed { task, error } => format!("task {task} cleanup failed: {error}"),
        AppEvent::Notice(coordinator, _) => format!("notification for {coordinator}"),
        AppEvent::State(task, change) => format!("task {task}: {change:?}"),
        AppEvent::Orphaned { task, .. } => format!("task {task} orphaned"),
        AppEvent::Merged { task, merge } => format!("task {task} merged into {}", merge.target),
    }
}
