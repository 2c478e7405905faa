//! The REST API's JSON shapes (the REST spec's appendix A), made from the engine's views. The
//! simulator's calls answer in the same shapes, so a scenario's expectations hold over HTTP.
//! Optional fields are left out when unset, never `null` (`exitCode` is always there).

use serde_json::{Value, json};

use crate::core::coordinator::SignalOutcome;
use crate::core::ids::CoordinatorId;
use crate::core::state::{AgentState, Attention, Verdict};
use crate::engine::sessions::SessionInfo;
use crate::engine::{AgentView, AgentsView, DiffView, MergeResult, TaskView};
use crate::ports::FileChange;

/// A task as `ApiTaskDetail`: its summary, with its worktree and exit code.
#[must_use]
pub fn detail(task: &TaskView, coordinator: CoordinatorId) -> Value {
    let mut value = summary(task, coordinator);
    value["worktreePath"] = Value::String(task.worktree.display().to_string());
    value["exitCode"] = json!(task.exit_code);
    value
}

/// An agent's state as `AgentState`: its state, why it needs a human (when it does), the
/// source of the evidence that decided it, and since when.
#[must_use]
pub fn agent_state(verdict: &Verdict) -> Value {
    stating(
        verdict.state,
        json!({ "source": verdict.source.name(), "since": verdict.since.iso8601() }),
    )
}

/// `value` with `state` and, when the agent needs a human, `attention`.
fn stating(state: AgentState, mut value: Value) -> Value {
    value["state"] = Value::String(state.name().to_owned());
    if let Some(reason) = state.attention() {
        value["attention"] = Value::String(reason.name().to_owned());
    }
    value
}

/// Why Baton thinks what it thinks of a task's agent (`baton explain`): the verdict, each
/// source's last observation (`{state, attention?, since, last}` or null), when the screen
/// became unrecognised, and the screen as the detector reads it.
#[must_use]
pub fn explanation(explained: &crate::engine::Explanation) -> Value {
    let observation = |o: Option<crate::core::state::Observation>| {
        o.map_or(Value::Null, |o| {
            stating(
                o.state,
                json!({ "since": o.since.iso8601(), "last": o.last.iso8601() }),
            )
        })
    };
    let evidence = &explained.evidence;
    let mut disagreement = Value::Null;
    if let Some((source, state)) = explained.task.state.disagreement {
        disagreement = json!({ "source": source.name(), "state": state.to_string() });
    }
    json!({
        "taskId": explained.task.id.to_string(),
        "name": explained.task.name,
        "status": explained.task.status.name(),
        "agentState": agent_state(&explained.task.state),
        "disagreement": disagreement,
        "evidence": {
            "started": evidence.started.iso8601(),
            "exited": evidence.exited.map(|at| at.iso8601()),
            "process": observation(evidence.process),
            "screen": observation(evidence.screen),
            "screenStillSince": evidence.screen_still_since.map(|at| at.iso8601()),
            "osc": observation(evidence.osc),
            "hook": observation(evidence.hook),
        },
        "readiness": explained.readiness.name(),
        "lastActivityAt": explained.last_activity.iso8601(),
        "screen": explained.screen,
    })
}

/// A task's agent as `RemoteAgent` (the phone's list) of coordinator `coordinator`: `lastLine`
/// is the last line of its output that is not blank. Beyond the reference: `taskStatus` (the
/// task's own status, so a list sent because a task went idle shows why), `state` (what the
/// agent is doing: starting, working, waiting_for_input, needs_attention or exited),
/// `attention` (why it needs a human, else null), `stateSince` and `lastActivityAt`
/// (milliseconds since the epoch), `signal` (`pending` until the coordinator collects a
/// `signal_done`, then `collected`, else null), `control`, `branchName` and `coordinatorId`.
#[must_use]
pub fn agent(agent: &AgentView, coordinator: CoordinatorId) -> Value {
    let task = &agent.task;
    let signal = match (task.signalled_at, agent.signal_pending) {
        (_, true) => Some("pending"),
        (Some(_), false) => Some("collected"),
        (None, false) => None,
    };
    json!({
        "agentId": task.agent.to_string(),
        "taskId": task.id.to_string(),
        "taskName": task.name,
        "branchName": task.branch,
        "coordinatorId": coordinator.to_string(),
        "status": if task.status == crate::core::coordinator::Status::Exited { "exited" } else { "running" },
        "taskStatus": task.status.name(),
        "state": agent.state.state.name(),
        "attention": agent.state.state.attention().map(Attention::name),
        "stateSource": agent.state.source.name(),
        "stateSince": agent.state.since.0,
        "exitCode": task.exit_code,
        "lastLine": agent.last_line,
        "lastActivityAt": agent.last_activity.0,
        "signal": signal,
        "control": agent.control.name(),
    })
}

/// A coordinator as the phone's list groups agents under it: `project` is its repository's
/// directory name; `registered` false means its remaining tasks are orphans; `agent`, when it
/// has one, is its own agent's session (`session`).
#[must_use]
pub fn coordinator(view: &AgentsView, session: Option<&SessionInfo>) -> Value {
    let project = view.project_root.file_name().map_or_else(
        || view.project_root.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    let mut value = json!({
        "id": view.coordinator.to_string(),
        "project": project,
        "registered": view.registered,
        "tasks": view.agents.len(),
        "pendingSignals": view.agents.iter().filter(|agent| agent.signal_pending).count(),
        "notifications": view.notifications,
    });
    if let Some(session) = session {
        value["agent"] = coordinator_agent(session);
    }
    value
}

/// A coordinator's own agent as the phone shows it: as a task's agent, without a task.
#[must_use]
pub fn coordinator_agent(session: &SessionInfo) -> Value {
    json!({
        "agentId": session.agent.to_string(),
        "program": session.program,
        "status": if session.exit.is_some() { "exited" } else { "running" },
        "state": session.state.state.name(),
        "attention": session.state.state.attention().map(Attention::name),
        "stateSource": session.state.source.name(),
        "stateSince": session.state.since.0,
        "exitCode": session.exit.and_then(|exit| exit.code),
        "lastLine": session.last_line,
        "lastActivityAt": session.last_activity.0,
    })
}

/// A task as `ApiTaskSummary`.
#[must_use]
pub fn summary(task: &TaskView, coordinator: CoordinatorId) -> Value {
    let mut value = json!({
        "id": task.id.to_string(),
        "name": task.name,
        "branchName": task.branch,
        "status": task.status.name(),
        "coordinatorTaskId": coordinator.to_string(),
        "agentState": agent_state(&task.state),
    });
    if let Some(at) = task.signalled_at {
        value["signalDoneAt"] = Value::String(at.iso8601());
    }
    value
}

/// A diff as `ApiDiffResult`.
#[must_use]
pub fn diff(diff: &DiffView) -> Value {
    let files: Vec<Value> = diff
        .files
        .iter()
        .map(|f| {
            let status = match f.change {
                FileChange::Added => "A",
                FileChange::Modified => "M",
                FileChange::Deleted => "D",
                FileChange::Untracked => "?",
            };
            json!({
                "path": f.path,
                "lines_added": f.added,
                "lines_removed": f.removed,
                "status": status,
                "committed": f.committed,
            })
        })
        .collect();
    let mut value = json!({ "files": files, "diff": diff.text });
    if diff.truncated {
        value["truncated"] = Value::Bool(true);
        value["originalSizeBytes"] = json!(diff.original_bytes);
    }
    value
}

/// A merge as `ApiMergeResult`.
#[must_use]
pub fn merge(merge: &MergeResult) -> Value {
    json!({
        "mainBranch": merge.target,
        "linesAdded": merge.added,
        "linesRemoved": merge.removed,
    })
}

/// A wait's answer as `WaitForSignalDoneResult` (a deregistered coordinator's wait names the
/// coordinator as its `taskId`, as the reference does).
#[must_use]
pub fn signal(outcome: &SignalOutcome, coordinator: CoordinatorId) -> Value {
    match outcome {
        SignalOutcome::Task {
            task,
            name,
            status,
            at,
            remaining,
        } => json!({
            "taskId": task.to_string(),
            "name": name,
            "status": status.name(),
            "signalDoneAt": at.iso8601(),
            "remaining": remaining,
        }),
        SignalOutcome::NeedsAttention {
            task,
            name,
            reason,
            status,
            at,
            remaining,
        } => json!({
            "taskId": task.to_string(),
            "name": name,
            "status": status.name(),
            "needsAttention": reason.name(),
            "since": at.iso8601(),
            "remaining": remaining,
        }),
        SignalOutcome::TimedOut { remaining } => {
            json!({ "remaining": remaining, "timedOut": true })
        }
        SignalOutcome::CoordinatorGone { at } => json!({
            "taskId": coordinator.to_string(),
            "name": "",
            "status": "exited",
            "signalDoneAt": at.iso8601(),
            "remaining": 0,
        }),
    }
}
