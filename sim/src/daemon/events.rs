//! The engine's app events as the trace shows them (names instead of ids where the trace knows
//! them, times in simulated milliseconds), each told to the invariant checker.

use std::sync::Arc;

use baton_runtime::core::ids::TaskId;
use baton_runtime::engine::AppEvent;
use tokio::sync::broadcast;

use super::{Shared, sim_ms};

/// Records every app event and tells the checker.
pub(super) async fn watch_events(shared: Arc<Shared>, mut events: broadcast::Receiver<AppEvent>) {
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                shared
                    .recorder
                    .record("app", format!("missed {missed} event(s)"));
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let line = describe(&shared, &event);
        shared.recorder.record("app", line);
        shared
            .observed()
            .event(&event, shared.recorder.elapsed_ms());
    }
}
/// One line for an app event: names instead of ids where the trace knows them, times in
/// simulated milliseconds.
fn describe(shared: &Shared, event: &AppEvent) -> String {
    use baton_runtime::core::coordinator::StateChange;
    use baton_runtime::core::notify::Notice;
    let task_name = |task: TaskId| shared.observed().task_name(task);
    match event {
        AppEvent::TaskCreated { coordinator, task } => format!(
            "event task_created {} {} for {} on {}",
            task.name,
            task.id,
            shared.coordinator_name(*coordinator),
            task.branch
        ),
        AppEvent::TaskClosed(task) => format!("event task_closed {}", task_name(*task)),
        AppEvent::CoordinatorMcpConnected(_) => "event coordinator_mcp_connected".to_owned(),
        AppEvent::CleanupFailed { task, error } => {
            format!("event cleanup_failed {}: {error}", task_name(*task))
        }
        AppEvent::Notice(coordinator, Notice::Staged(staged)) => {
            let first = staged.text.lines().nth(2).unwrap_or_default();
            format!(
                "event staged for {} ({} notification(s), fires at t={}): {first:?}",
                shared.coordinator_name(*coordinator),
                staged.notifications.len(),
                sim_ms(staged.auto_fire_at)
            )
        }
        AppEvent::Notice(coordinator, Notice::Cleared) => {
            format!(
                "event cleared for {}",
                shared.coordinator_name(*coordinator)
            )
        }
        AppEvent::State(task, change) => {
            let what = match change {
                StateChange::SignalReceived { at, consumed } => format!(
                    "signal received at t={}{}",
                    sim_ms(*at),
                    if *consumed { ", consumed" } else { "" }
                ),
                StateChange::SignalConsumed => "signal consumed".to_owned(),
                StateChange::NeedsReview => "needs review".to_owned(),
                StateChange::SignalReset => "signal reset".to_owned(),
                StateChange::ControlChanged(control) => {
                    format!("control {control:?}").to_lowercase()
                }
                StateChange::Orphaned { needs_review } => {
                    format!(
                        "orphaned{}",
                        if *needs_review { ", needs review" } else { "" }
                    )
                }
                StateChange::McpStartupTimedOut => "mcp startup timed out".to_owned(),
                StateChange::Agent(verdict) => match verdict.disagreement {
                    None => format!("agent {} by {}", verdict.state, verdict.source.name()),
                    Some((other, said)) => format!(
                        "agent {} by {} ({} says {said})",
                        verdict.state,
                        verdict.source.name(),
                        other.name()
                    ),
                },
            };
            format!("event {} {what}", task_name(*task))
        }
        AppEvent::Orphaned { task, text } => {
            format!("event orphaned {}: {text:?}", task_name(*task))
        }
        AppEvent::Merged { task, merge } => format!(
            "event {} merged into {} (+{} -{})",
            task_name(*task),
            merge.target,
            merge.added,
            merge.removed
        ),
    }
}
