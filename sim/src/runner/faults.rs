//! Every fault but a daemon crash, played inside the simulation at its time (a daemon crash is
//! applied between turmoil steps by the loop in the parent module): link faults, slow or stuck
//! worktrees, write and removal failures on the disk, a killed agent; and their end after
//! `for_ms`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use baton_runtime::ports::fakes::WriteFailure;

use super::plan::PlannedFault;
use crate::daemon::Shared;
use crate::world::PROJECT_ROOT;

/// Plays one fault inside the simulation.
pub(super) async fn inject(
    shared: Arc<Shared>,
    start: tokio::time::Instant,
    planned: PlannedFault,
) {
    let PlannedFault { at_ms, fault } = planned;
    baton_runtime::time::sleep_until(start + Duration::from_millis(at_ms)).await;
    let actor = fault
        .between
        .iter()
        .find(|end| end.as_str() != crate::scenario::DAEMON)
        .cloned()
        .unwrap_or_default();
    let lasting = fault
        .for_ms
        .map_or_else(String::new, |ms| format!(" for {ms} ms"));
    let count = fault.count.unwrap_or(1);
    let record = |what: String| shared.recorder.record("fault", what);
    let task = fault
        .task
        .as_deref()
        .map(|name| (name.to_owned(), shared.observed().task_named(name)));
    match fault.kind.as_str() {
        "partition" => {
            shared.links.partition(&actor, true);
            record(format!("partition {actor} <-> daemon{lasting}"));
        }
        "delay" => {
            let ms = fault.ms.unwrap_or(0);
            shared.links.delay(&actor, ms);
            record(format!(
                "delay {actor} <-> daemon by {ms} ms each way{lasting}"
            ));
        }
        "drop_response" => {
            shared.links.drop_responses(&actor, count);
            record(format!(
                "the next {count} answer(s) to {actor} will be lost"
            ));
        }
        "slow_worktrees" => {
            let ms = fault.ms.unwrap_or(0);
            shared.repo.slow_worktrees(Duration::from_millis(ms));
            shared.repo.slow_removals(Duration::from_millis(ms));
            record(format!(
                "creating or removing a worktree takes {ms} ms{lasting}"
            ));
        }
        "disk_full" | "rename_fails" | "remove_fails" => {
            let under = fault
                .path
                .as_deref()
                .map(|p| Path::new(PROJECT_ROOT).join(p));
            let scope = under
                .as_ref()
                .map_or_else(String::new, |dir| format!(" under {}", dir.display()));
            shared.files.faults_only_under(under);
            match fault.kind.as_str() {
                "disk_full" => {
                    shared.files.fail_writes(count);
                    record(format!(
                        "the disk is full for the next {count} write(s){scope}"
                    ));
                }
                "rename_fails" => {
                    shared.files.fail_writes_with(count, WriteFailure::Rename);
                    record(format!(
                        "the next {count} write(s){scope} will fail at the rename"
                    ));
                }
                _ => {
                    shared.files.fail_removes(count);
                    record(format!("the next {count} file removal(s){scope} will fail"));
                }
            }
        }
        "kill_agent" | "worktree_stuck" => {
            let Some((name, found)) = task.clone() else {
                return;
            };
            let Some(named) = found else {
                record(format!(
                    "{}: no task named {name:?} was created",
                    fault.kind
                ));
                return;
            };
            if fault.kind == "worktree_stuck" {
                shared.repo.make_stuck(&named.worktree);
                record(format!("{name}'s worktree cannot be removed{lasting}"));
            } else {
                match shared.door() {
                    Some(door) if door.pty.inner.is_alive(named.agent) => {
                        record(format!("kill {name}'s agent"));
                        let _ = baton_runtime::ports::PtyHost::kill(&*door.pty, named.agent).await;
                    }
                    _ => record(format!("kill_agent: {name} has no running agent")),
                }
            }
        }
        _ => {}
    }
    let Some(ms) = fault.for_ms else { return };
    baton_runtime::time::sleep(Duration::from_millis(ms)).await;
    match fault.kind.as_str() {
        "partition" => {
            shared.links.partition(&actor, false);
            record(format!("partition {actor} <-> daemon healed"));
        }
        "delay" => {
            shared.links.delay(&actor, 0);
            record(format!("delay {actor} <-> daemon over"));
        }
        "slow_worktrees" => {
            shared.repo.slow_worktrees(Duration::ZERO);
            shared.repo.slow_removals(Duration::ZERO);
            record("worktrees are quick again".to_owned());
        }
        "worktree_stuck" => {
            if let Some((name, Some(named))) = task {
                shared.repo.unstick(&named.worktree);
                record(format!("{name}'s worktree can be removed again"));
            }
        }
        _ => {}
    }
}
