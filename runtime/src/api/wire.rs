//! The REST API's wire types: every answer and the bodies Baton's own clients send, as typed
//! serde structs. The server writes them (`dto` makes them from the engine's views), and
//! `baton mcp`, the simulator's calls and the `baton` CLI read them: a field's name is spelled
//! once, here (issue 22).
//!
//! Invariants: the wire format is the REST spec's (appendix A) and `docs/openapi.json`'s: field
//! names in camelCase as the reference has them (`lines_added` in a diff's files too), optional
//! fields left out when unset, never `null`, unless a field is documented nullable (a task's
//! `exitCode`, a remote agent's `attention`). Fields are declared in the alphabetical order of
//! their wire names, the order the `json!` values they replaced were written in, so answers keep
//! their bytes (JSON objects are unordered; a detail's summary is flattened first).
//!
//! Strings are [`Text`]: borrowed from the engine's views when the server writes (no copy per
//! field), owned when a client reads. Ids are [`Id`]: written from the stack
//! ([`Uuid::hyphenated`]), read as any well-formed UUID v4. This module depends on `core` only.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::core::ids::Uuid;

/// A string on the wire: borrowed when written, owned when read.
pub type Text<'a> = Cow<'a, str>;

/// An id on the wire: a UUID v4 in lower-case hyphenated hex.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(pub Uuid);

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.hyphenated().as_str())
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Text::deserialize(deserializer)?;
        text.parse().map(Id).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

/// An agent's state (`AgentState`): what it is doing, why it needs a human (when it does), the
/// source of the evidence that decided it, and since when (ISO 8601).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentState<'a> {
    /// Why it needs a human, when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<Text<'a>>,
    /// Since when (ISO 8601).
    pub since: Text<'a>,
    /// The evidence that decided it (`process`, `screen`, `osc`, `hook`).
    pub source: Text<'a>,
    /// `starting`, `working`, `waiting_for_input`, `needs_attention` or `exited`.
    pub state: Text<'a>,
}

/// A task (`ApiTaskSummary`): `GET /api/tasks` lists these.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSummary<'a> {
    /// What its agent is doing.
    pub agent_state: AgentState<'a>,
    /// Its branch.
    pub branch_name: Text<'a>,
    /// The coordinator that holds it.
    pub coordinator_task_id: Id,
    /// Its id.
    pub id: Id,
    /// Its name.
    pub name: Text<'a>,
    /// What it may do with its finished work: `review` (signal done; its coordinator merges) or
    /// `land` (it may also land itself). Read as `review` from a Baton that did not send it.
    #[serde(default = "review_policy")]
    pub policy: Text<'a>,
    /// When it signalled done (ISO 8601), if it did since its last prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_done_at: Option<Text<'a>>,
    /// `creating`, `running`, `idle`, … (`core::coordinator::Status`).
    pub status: Text<'a>,
}

/// A task with its worktree and exit code (`ApiTaskDetail`): create, get, the app channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDetail<'a> {
    /// The summary's fields.
    #[serde(flatten)]
    pub summary: TaskSummary<'a>,
    /// What must pass before it lands (left out when nothing is required).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<RequiredCheck<'a>>,
    /// Its agent's last exit code (null while it never exited).
    pub exit_code: Option<i32>,
    /// Its worktree.
    pub worktree_path: Text<'a>,
}

/// The policy of a task whose answer names none (a Baton before policies).
fn review_policy() -> Text<'static> {
    Cow::Borrowed("review")
}

/// A check required before a task lands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequiredCheck<'a> {
    /// The command line Baton runs in the task's worktree.
    pub command: Text<'a>,
    /// What reports call it.
    pub name: Text<'a>,
    /// How long it may run, in milliseconds.
    pub timeout_ms: u64,
}

/// Every coordinator's tasks (the app channel's `GET /app/tasks`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskList<'a> {
    /// The tasks.
    pub tasks: Vec<TaskDetail<'a>>,
}

/// A changed file in a diff. Its line counts are snake_case on the wire, as the reference's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffFile<'a> {
    /// Committed on the task's branch (else only in its worktree).
    pub committed: bool,
    /// Lines added.
    pub lines_added: u64,
    /// Lines removed.
    pub lines_removed: u64,
    /// Its path in the repository.
    pub path: Text<'a>,
    /// `A`, `M`, `D` or `?` (untracked).
    pub status: Text<'a>,
}

/// A task's diff (`ApiDiffResult`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Diff<'a> {
    /// The unified diff (cut when `truncated`).
    pub diff: Text<'a>,
    /// The changed files.
    pub files: Vec<DiffFile<'a>>,
    /// The whole diff's size, when it was cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_size_bytes: Option<u64>,
    /// Whether the diff was cut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// A merge (`ApiMergeResult`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Merge<'a> {
    /// Lines added.
    pub lines_added: u64,
    /// Lines removed.
    pub lines_removed: u64,
    /// The branch merged into.
    pub main_branch: Text<'a>,
}

/// `review-merge`'s answer: the diff that was merged, and the merge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewMerge<'a> {
    /// The diff.
    pub diff: Diff<'a>,
    /// The merge.
    pub merge: Merge<'a>,
}

/// A wait for a signal's answer (`WaitForSignalDoneResult`): a task that signalled done
/// (`signalDoneAt`), one that needs attention (`needsAttention`, `since`), or a timeout
/// (`timedOut`, only `remaining`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignalAnswer<'a> {
    /// The task's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Text<'a>>,
    /// Why the task needs a human.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_attention: Option<Text<'a>>,
    /// Signals still to be collected.
    pub remaining: u64,
    /// When the task signalled done (ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_done_at: Option<Text<'a>>,
    /// Since when the task needs a human (ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Text<'a>>,
    /// The task's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Text<'a>>,
    /// The task (a deregistered coordinator's wait names the coordinator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<Id>,
    /// The wait timed out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
}

/// `wait`'s answer: the task's status and why the wait ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdleAnswer<'a> {
    /// Why the agent needs a human, when that ended the wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<Text<'a>>,
    /// `idle`, `exited`, `human_control`, `removed`, `timeout` or `needs_attention`.
    pub reason: Text<'a>,
    /// The task's status.
    pub status: Text<'a>,
    /// The wait timed out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
}

/// `{"ok": true}`: close, done, mcp-connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// Always true.
    pub ok: bool,
}

/// `Done` itself.
pub const DONE: Done = Done { ok: true };

/// A prompt's answer: sent, or queued behind the initial prompt or a human's hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptAnswer {
    /// Always true.
    pub ok: bool,
    /// Queued, not typed yet.
    pub queued: bool,
}

/// A task's output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output<'a> {
    /// Its terminal's recent text.
    pub output: Text<'a>,
}

/// `giveBack`'s answer: whether an answer was given back to the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GivenBack {
    /// An answer was waiting and is the engine's again.
    pub given_back: bool,
}

/// Every failure's body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody<'a> {
    /// What went wrong.
    pub error: Text<'a>,
}

/// `POST /api/wait-signal`'s body as `baton mcp` and the simulator send it. The server reads
/// bodies field by field, leniently typed (an ill-typed field is a 400 that names it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitSignalBody<'a> {
    /// The caller's coordinator (checked against its token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinator_task_id: Option<Text<'a>>,
    /// The client gave the wait up: give its answer back, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub give_back: Option<bool>,
    /// The wait's id, the same on every retry (the replay cache's key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<Text<'a>>,
    /// How long to wait at most, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<f64>,
}

/// A task's agent (`RemoteAgent`, the phone's list; `dto::agent` says what each field means).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteAgent<'a> {
    /// Its terminal session.
    pub agent_id: Id,
    /// Why it needs a human, else null.
    pub attention: Option<Text<'a>>,
    /// Its task's branch.
    pub branch_name: Text<'a>,
    /// Who types: `agent`, `human`, …
    pub control: Text<'a>,
    /// Its coordinator.
    pub coordinator_id: Id,
    /// Its last exit code.
    pub exit_code: Option<i32>,
    /// When it last showed something new (ms since the epoch).
    pub last_activity_at: u64,
    /// Its output's last line that is not blank.
    pub last_line: Text<'a>,
    /// Its terminal's scrollback, base64 (`GET /api/agents/:id` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrollback: Option<Text<'a>>,
    /// `pending`, `collected`, else null.
    pub signal: Option<Text<'a>>,
    /// What it is doing.
    pub state: Text<'a>,
    /// Since when (ms since the epoch).
    pub state_since: u64,
    /// The evidence that decided it.
    pub state_source: Text<'a>,
    /// `running` or `exited`.
    pub status: Text<'a>,
    /// Its task.
    pub task_id: Id,
    /// Its task's name.
    pub task_name: Text<'a>,
    /// Its task's own status.
    pub task_status: Text<'a>,
}

/// A coordinator's own agent, as the phone shows it: as a task's agent, without a task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoordinatorAgent<'a> {
    /// Its terminal session.
    pub agent_id: Id,
    /// Why it needs a human, else null.
    pub attention: Option<Text<'a>>,
    /// Its exit code.
    pub exit_code: Option<i32>,
    /// When it last showed something new (ms since the epoch).
    pub last_activity_at: u64,
    /// Its output's last line that is not blank.
    pub last_line: Text<'a>,
    /// The program it runs.
    pub program: Text<'a>,
    /// What it is doing.
    pub state: Text<'a>,
    /// Since when (ms since the epoch).
    pub state_since: u64,
    /// The evidence that decided it.
    pub state_source: Text<'a>,
    /// `running` or `exited`.
    pub status: Text<'a>,
}

/// A coordinator as the phone's list groups agents under it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoordinatorEntry<'a> {
    /// Its own agent, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<CoordinatorAgent<'a>>,
    /// Its id.
    pub id: Id,
    /// Notifications staged for it.
    pub notifications: usize,
    /// Signals its tasks gave that it has not collected.
    pub pending_signals: usize,
    /// Its repository's directory name.
    pub project: Text<'a>,
    /// False: its remaining tasks are orphans.
    pub registered: bool,
    /// How many tasks it has.
    pub tasks: usize,
}

/// One source's last observation in an [`Explanation`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation<'a> {
    /// Why the agent needs a human, when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<Text<'a>>,
    /// When it was last seen (ISO 8601).
    pub last: Text<'a>,
    /// Since when (ISO 8601).
    pub since: Text<'a>,
    /// The state it saw.
    pub state: Text<'a>,
}

/// A source that disagrees with the verdict, and what it says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disagreement<'a> {
    /// The source.
    pub source: Text<'a>,
    /// What it says.
    pub state: Text<'a>,
}

/// The evidence of an agent's state, source by source (null: nothing seen).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence<'a> {
    /// When it exited.
    pub exited: Option<Text<'a>>,
    /// Its hooks' last word.
    pub hook: Option<Observation<'a>>,
    /// Its OSC reports' last word.
    pub osc: Option<Observation<'a>>,
    /// Its process's.
    pub process: Option<Observation<'a>>,
    /// Its screen's.
    pub screen: Option<Observation<'a>>,
    /// Since when the screen has not changed.
    pub screen_still_since: Option<Text<'a>>,
    /// When it started.
    pub started: Text<'a>,
}

/// Why Baton thinks what it thinks of a task's agent (`baton explain`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation<'a> {
    /// The verdict.
    pub agent_state: AgentState<'a>,
    /// A source that says otherwise, else null.
    pub disagreement: Option<Disagreement<'a>>,
    /// Each source's last observation.
    pub evidence: Evidence<'a>,
    /// When the screen last changed (ISO 8601).
    pub last_activity_at: Text<'a>,
    /// The task's name.
    pub name: Text<'a>,
    /// What the screen detector reads.
    pub readiness: Text<'a>,
    /// The screen's last lines.
    pub screen: Vec<Text<'a>>,
    /// The task's status.
    pub status: Text<'a>,
    /// The task.
    pub task_id: Id,
}

#[cfg(test)]
mod tests {
    use super::{Id, SignalAnswer, TaskDetail};
    use crate::core::ids::Uuid;

    #[test]
    fn ids_read_back_what_they_wrote_and_refuse_what_is_not_a_uuid() {
        let id = Id(Uuid::from_random([7; 16]));
        let text = serde_json::to_string(&id).unwrap();
        assert_eq!(text, format!("\"{}\"", id.0));
        assert_eq!(serde_json::from_str::<Id>(&text).unwrap(), id);
        assert!(serde_json::from_str::<Id>("\"t-1\"").is_err());
    }

    #[test]
    fn a_detail_reads_back_with_its_summary_and_a_timeout_has_only_its_remaining() {
        let detail: TaskDetail<'static> = serde_json::from_value(serde_json::json!({
            "id": "07070707-0707-4707-8707-070707070707",
            "coordinatorTaskId": "07070707-0707-4707-8707-070707070707",
            "name": "a", "branchName": "task/a", "status": "idle",
            "agentState": { "state": "working", "source": "screen", "since": "x" },
            "exitCode": null, "worktreePath": "/w",
        }))
        .unwrap();
        assert_eq!(detail.summary.name, "a");
        assert_eq!(detail.summary.signal_done_at, None);
        let timeout = SignalAnswer {
            remaining: 2,
            timed_out: true,
            ..SignalAnswer::default()
        };
        assert_eq!(
            serde_json::to_string(&timeout).unwrap(),
            r#"{"remaining":2,"timedOut":true}"#
        );
    }
}
