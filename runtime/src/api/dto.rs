//! The REST API's answers made from the engine's views: each function turns a view into its
//! [`wire`](super::wire) type, borrowing the view's strings (the server writes them, nothing is
//! copied). The simulator's calls answer in the same types, so a scenario's expectations hold
//! over HTTP. Optional fields are left out when unset, never `null` (`exitCode` is always there).

use std::borrow::Cow;

use super::wire::{self, Id, Text};
use crate::core::coordinator::SignalOutcome;
use crate::core::ids::{CoordinatorId, Uuid};
use crate::core::state::{AgentState, Attention, Verdict};
use crate::core::time::Millis;
use crate::engine::OwnAgentView;
use crate::engine::{AgentView, AgentsView, DiffView, MergeResult, TaskView};
use crate::ports::FileChange;

/// A time as the wire has it (ISO 8601).
fn iso(at: Millis) -> Text<'static> {
    Cow::Owned(at.iso8601())
}

/// Why an agent in `state` needs a human, when it does.
fn attention(state: AgentState) -> Option<Text<'static>> {
    state.attention().map(|reason| Cow::Borrowed(reason.name()))
}

/// A task as `ApiTaskDetail`: its summary, with its worktree and exit code.
#[must_use]
pub fn detail(task: &TaskView, coordinator: CoordinatorId) -> wire::TaskDetail<'_> {
    wire::TaskDetail {
        summary: summary(task, coordinator),
        checks: task
            .checks
            .iter()
            .map(|c| wire::RequiredCheck {
                command: Cow::Borrowed(&c.command),
                name: Cow::Borrowed(&c.name),
                timeout_ms: c.timeout_ms,
            })
            .collect(),
        exit_code: task.exit_code,
        worktree_path: task.worktree.to_string_lossy(),
    }
}

/// An agent's state as `AgentState`: its state, why it needs a human (when it does), the
/// source of the evidence that decided it, and since when.
#[must_use]
pub fn agent_state(verdict: &Verdict) -> wire::AgentState<'static> {
    wire::AgentState {
        attention: attention(verdict.state),
        since: iso(verdict.since),
        source: Cow::Borrowed(verdict.source.name()),
        state: Cow::Borrowed(verdict.state.name()),
    }
}

/// Why Baton thinks what it thinks of a task's agent (`baton explain`): the verdict, each
/// source's last observation (`{state, attention?, since, last}` or null), when the screen
/// became unrecognised, and the screen as the detector reads it.
#[must_use]
pub fn explanation(explained: &crate::engine::Explanation) -> wire::Explanation<'_> {
    let observation = |o: Option<crate::core::state::Observation>| {
        o.map(|o| wire::Observation {
            attention: attention(o.state),
            last: iso(o.last),
            since: iso(o.since),
            state: Cow::Borrowed(o.state.name()),
        })
    };
    let evidence = &explained.evidence;
    let task = &explained.task;
    wire::Explanation {
        agent_state: agent_state(&task.state),
        disagreement: task
            .state
            .disagreement
            .map(|(source, state)| wire::Disagreement {
                source: Cow::Borrowed(source.name()),
                state: Cow::Owned(state.to_string()),
            }),
        evidence: wire::Evidence {
            exited: evidence.exited.map(iso),
            hook: observation(evidence.hook),
            osc: observation(evidence.osc),
            process: observation(evidence.process),
            screen: observation(evidence.screen),
            screen_still_since: evidence.screen_still_since.map(iso),
            started: iso(evidence.started),
        },
        last_activity_at: iso(explained.last_activity),
        name: Cow::Borrowed(&task.name),
        readiness: Cow::Borrowed(explained.readiness.name()),
        screen: explained
            .screen
            .iter()
            .map(|l| Cow::Borrowed(&**l))
            .collect(),
        status: Cow::Borrowed(task.status.name()),
        task_id: Id(task.id.0),
    }
}

/// A task's agent as `RemoteAgent` (the phone's list) of coordinator `coordinator`: `lastLine`
/// is the last line of its output that is not blank. Beyond the reference: `taskStatus` (the
/// task's own status, so a list sent because a task went idle shows why), `state` (what the
/// agent is doing: starting, working, waiting_for_input, needs_attention or exited),
/// `attention` (why it needs a human, else null), `stateSince` and `lastActivityAt`
/// (milliseconds since the epoch), `signal` (`pending` until the coordinator collects a
/// `signal_done`, then `collected`, else null), `control`, `branchName` and `coordinatorId`.
#[must_use]
pub fn agent(agent: &AgentView, coordinator: CoordinatorId) -> wire::RemoteAgent<'_> {
    let task = &agent.task;
    let signal = match (task.signalled_at, agent.signal_pending) {
        (_, true) => Some("pending"),
        (Some(_), false) => Some("collected"),
        (None, false) => None,
    };
    let exited = task.status == crate::core::coordinator::Status::Exited;
    wire::RemoteAgent {
        agent_id: Id(task.agent.0),
        attention: agent
            .state
            .state
            .attention()
            .map(|a| Cow::Borrowed(Attention::name(a))),
        branch_name: Cow::Borrowed(&task.branch),
        control: Cow::Borrowed(agent.control.name()),
        coordinator_id: Id(coordinator.0),
        exit_code: task.exit_code,
        last_activity_at: agent.last_activity.0,
        last_line: Cow::Borrowed(&agent.last_line),
        scrollback: None,
        signal: signal.map(Cow::Borrowed),
        state: Cow::Borrowed(agent.state.state.name()),
        state_since: agent.state.since.0,
        state_source: Cow::Borrowed(agent.state.source.name()),
        status: Cow::Borrowed(if exited { "exited" } else { "running" }),
        task_id: Id(task.id.0),
        task_name: Cow::Borrowed(&task.name),
        task_status: Cow::Borrowed(task.status.name()),
    }
}

/// A coordinator as the phone's list groups agents under it: `project` is its repository's
/// directory name; `registered` false means its remaining tasks are orphans; `agent`, when it
/// has one, is its own agent's session (`session`).
#[must_use]
pub fn coordinator<'a>(
    view: &'a AgentsView,
    session: Option<&'a OwnAgentView>,
) -> wire::CoordinatorEntry<'a> {
    let project = view.project_root.file_name().map_or_else(
        || view.project_root.to_string_lossy(),
        |name| name.to_string_lossy(),
    );
    wire::CoordinatorEntry {
        agent: session.map(coordinator_agent),
        id: Id(view.coordinator.0),
        notifications: view.notifications,
        pending_signals: view.agents.iter().filter(|a| a.signal_pending).count(),
        project,
        registered: view.registered,
        tasks: view.agents.len(),
    }
}

/// A coordinator's own agent as the phone shows it: as a task's agent, without a task.
#[must_use]
pub fn coordinator_agent(session: &OwnAgentView) -> wire::CoordinatorAgent<'_> {
    wire::CoordinatorAgent {
        agent_id: Id(session.agent.0),
        attention: attention(session.state.state),
        exit_code: session.exit.and_then(|exit| exit.code),
        last_activity_at: session.last_activity.0,
        last_line: Cow::Borrowed(&session.last_line),
        program: Cow::Borrowed(&session.program),
        state: Cow::Borrowed(session.state.state.name()),
        state_since: session.state.since.0,
        state_source: Cow::Borrowed(session.state.source.name()),
        status: Cow::Borrowed(if session.exit.is_some() {
            "exited"
        } else {
            "running"
        }),
    }
}

/// A task as `ApiTaskSummary`.
#[must_use]
pub fn summary(task: &TaskView, coordinator: CoordinatorId) -> wire::TaskSummary<'_> {
    wire::TaskSummary {
        agent_state: agent_state(&task.state),
        branch_name: Cow::Borrowed(&task.branch),
        coordinator_task_id: Id(coordinator.0),
        id: Id(task.id.0),
        name: Cow::Borrowed(&task.name),
        policy: Cow::Borrowed(task.policy.name()),
        signal_done_at: task.signalled_at.map(iso),
        status: Cow::Borrowed(task.status.name()),
    }
}

/// A diff as `ApiDiffResult`.
#[must_use]
pub fn diff(diff: &DiffView) -> wire::Diff<'_> {
    let files = diff
        .files
        .iter()
        .map(|f| wire::DiffFile {
            committed: f.committed,
            lines_added: f.added,
            lines_removed: f.removed,
            path: Cow::Borrowed(&f.path),
            status: Cow::Borrowed(match f.change {
                FileChange::Added => "A",
                FileChange::Modified => "M",
                FileChange::Deleted => "D",
                FileChange::Untracked => "?",
            }),
        })
        .collect();
    wire::Diff {
        diff: Cow::Borrowed(&diff.text),
        files,
        original_size_bytes: diff.truncated.then_some(diff.original_bytes as u64),
        truncated: diff.truncated,
    }
}

/// A merge as `ApiMergeResult`.
#[must_use]
pub fn merge(merge: &MergeResult) -> wire::Merge<'_> {
    wire::Merge {
        lines_added: merge.added,
        lines_removed: merge.removed,
        main_branch: Cow::Borrowed(&merge.target),
    }
}

/// A wait's answer as `WaitForSignalDoneResult` (a deregistered coordinator's wait names the
/// coordinator as its `taskId`, as the reference does).
#[must_use]
pub fn signal(outcome: &SignalOutcome, coordinator: CoordinatorId) -> wire::SignalAnswer<'_> {
    fn answer<'a>(
        task: Uuid,
        name: &'a str,
        status: &'static str,
        remaining: usize,
    ) -> wire::SignalAnswer<'a> {
        wire::SignalAnswer {
            name: Some(Cow::Borrowed(name)),
            remaining: remaining as u64,
            status: Some(Cow::Borrowed(status)),
            task_id: Some(Id(task)),
            ..wire::SignalAnswer::default()
        }
    }
    match outcome {
        SignalOutcome::TimedOut { remaining } => wire::SignalAnswer {
            remaining: *remaining as u64,
            timed_out: true,
            ..wire::SignalAnswer::default()
        },
        SignalOutcome::CoordinatorGone { at } => wire::SignalAnswer {
            signal_done_at: Some(iso(*at)),
            ..answer(coordinator.0, "", "exited", 0)
        },
        SignalOutcome::Task {
            at,
            name,
            remaining,
            status,
            task,
        }
        | SignalOutcome::NeedsAttention {
            at,
            name,
            remaining,
            status,
            task,
            ..
        } => {
            let mut answer = answer(task.0, name, status.name(), *remaining);
            match outcome {
                SignalOutcome::NeedsAttention { reason, .. } => {
                    answer.needs_attention = Some(Cow::Borrowed(reason.name()));
                    answer.since = Some(iso(*at));
                }
                _ => answer.signal_done_at = Some(iso(*at)),
            }
            answer
        }
    }
}
