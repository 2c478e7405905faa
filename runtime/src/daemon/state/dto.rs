//! The state file's JSON shapes (DTOs apart from the core's types: a field renamed in the core
//! never changes a file on a user's disk), and their conversion to and from the core's records;
//! what is read is checked on the way (ids, tokens, statuses, base64), and a file that fails a
//! check is corrupt.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::agents::McpLaunch;
use crate::agents::mcp_json::Registration;
use crate::core::auth::Secret;
use crate::core::coordinator::{
    Control, Intent, Policy, Records, ReplayRecord, RequiredCheck, Signal, SignalOutcome, Status,
    TaskRecord, TaskSpec, WorktreeFile, WorktreeFileKind,
};
use crate::core::detector::Profile;
use crate::core::ids::{AgentId, CoordinatorId, DoneToken, TaskId, base64, base64_decode};
use crate::core::replay::RequestId;
use crate::core::state::Attention;
use crate::core::time::Millis;
use crate::engine::{CoordinatorSettings, SpawnDefaults};

use super::pretty::Object;
use super::{CoordinatorRef, CoordinatorState, McpJsonState};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileDto {
    pub(super) format: u32,
    pub(super) coordinators: Vec<CoordinatorDto>,
}

/// Only the format, read first: a newer file may have any other shape.
#[derive(Deserialize)]
pub(super) struct FormatOnly {
    pub(super) format: u32,
}

/// A coordinator as the file holds it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CoordinatorDto {
    id: String,
    token: String,
    registered: bool,
    project_root: PathBuf,
    agent_command: String,
    agent_args: Vec<String>,
    skip_permissions: bool,
    notification_delay_ms: u64,
    config_dir: PathBuf,
    mcp_json: Option<McpJsonDto>,
    tasks: Vec<TaskDto>,
    #[serde(default)]
    replay: Vec<ReplayDto>,
    #[serde(default)]
    intents: Vec<IntentDto>,
}

/// One result of a `wait_for_signal_done`, kept for retries.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayDto {
    request: String,
    expires_at_ms: u64,
    outcome: OutcomeDto,
}

/// What a wait answered, by kind.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum OutcomeDto {
    Task {
        task: String,
        name: String,
        status: String,
        at_ms: u64,
        remaining: usize,
    },
    NeedsAttention {
        task: String,
        name: String,
        reason: String,
        status: String,
        at_ms: u64,
        remaining: usize,
    },
    TimedOut {
        remaining: usize,
    },
    CoordinatorGone {
        at_ms: u64,
    },
}

/// An operation under way, by kind.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum IntentDto {
    Create {
        task: String,
        worktree: PathBuf,
        branch: String,
        config: PathBuf,
    },
    Merge {
        task: String,
        squash: bool,
        message: Option<String>,
        cleanup: bool,
    },
    Close {
        task: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct McpJsonDto {
    path: PathBuf,
    /// Base64.
    original: Option<String>,
    /// Base64.
    written: String,
    previous: Option<serde_json::Value>,
    entry: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TaskDto {
    id: String,
    name: String,
    branch: String,
    base_branch: Option<String>,
    worktree: PathBuf,
    agent: String,
    profile: String,
    done_token: Option<String>,
    mcp_config: Option<PathBuf>,
    worktree_files: Vec<WorktreeFileDto>,
    signal_at_ms: Option<u64>,
    signal_consumed: bool,
    assignment_delivered: bool,
    human_control: bool,
    exit_code: Option<i32>,
    /// The agent's command line (absent in a state written before Baton kept it).
    #[serde(default)]
    launch: Vec<String>,
    /// The agent asked for, before Baton's arguments (format 2).
    #[serde(default)]
    command: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    assignment: Option<String>,
    #[serde(default)]
    queued: Vec<String>,
    #[serde(default)]
    alive: bool,
    #[serde(default)]
    lost_untold: bool,
    /// `review` or `land` (format 3; `review` before).
    #[serde(default = "review")]
    policy: String,
    /// Format 3.
    #[serde(default)]
    checks: Vec<CheckDto>,
}

fn review() -> String {
    Policy::Review.name().to_owned()
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckDto {
    name: String,
    command: String,
    timeout_ms: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorktreeFileDto {
    path: PathBuf,
    /// Base64.
    original: Option<String>,
    /// Base64.
    written: String,
    kind: String,
}

/// `c` as the file holds it, with its tasks as given: the shape [`write_coordinator`] writes a
/// field at a time (the tests hold it to serde's encoding of this).
#[cfg(test)]
pub(super) fn coordinator_dto(c: CoordinatorRef<'_>, tasks: Vec<TaskDto>) -> CoordinatorDto {
    CoordinatorDto {
        id: c.id.to_string(),
        token: c.token.expose().to_owned(),
        registered: c.registered,
        project_root: c.settings.project_root.clone(),
        agent_command: c.settings.spawn.command.clone(),
        agent_args: c.settings.spawn.args.clone(),
        skip_permissions: c.settings.skip_permissions,
        notification_delay_ms: c.settings.notification_delay_ms,
        config_dir: c.settings.config_dir.clone(),
        mcp_json: c.mcp_json.map(mcp_json_dto),
        tasks,
        replay: c.records.replay.iter().map(replay_dto).collect(),
        intents: c.records.intents.iter().map(intent_dto).collect(),
    }
}

fn mcp_json_dto(m: &McpJsonState) -> McpJsonDto {
    McpJsonDto {
        path: m.path.clone(),
        original: m.registration.original.as_deref().map(base64),
        written: base64(&m.registration.written),
        previous: m.registration.previous.clone(),
        entry: m.registration.entry.clone(),
    }
}

/// A coordinator's fields that its records do not decide (`id` to `mcp_json`, the first), as
/// [`write_coordinator`] puts them in place, for a coordinator object at `level`.
pub(super) fn coordinator_head(c: CoordinatorRef<'_>, level: usize) -> Vec<u8> {
    let mut head = Vec::new();
    let mut object = Object::fields(&mut head, level, true);
    object.field("id", &c.id.to_string());
    object.field("token", c.token.expose());
    object.field("registered", &c.registered);
    object.field("project_root", &c.settings.project_root);
    object.field("agent_command", &c.settings.spawn.command);
    object.field("agent_args", &c.settings.spawn.args);
    object.field("skip_permissions", &c.settings.skip_permissions);
    object.field("notification_delay_ms", &c.settings.notification_delay_ms);
    object.field("config_dir", &c.settings.config_dir);
    object.field("mcp_json", &c.mcp_json.map(mcp_json_dto));
    head
}

/// Writes a coordinator as [`coordinator_dto`] would have it written, at `level`: `head` (what
/// [`coordinator_head`] made for it at that level), each task's object as `tasks` gives it (the
/// text [`write_task`] wrote at `level + 2`), then the rest of its `records`.
pub(super) fn write_coordinator<'t>(
    out: &mut Vec<u8>,
    level: usize,
    head: &[u8],
    records: &Records,
    tasks: impl Iterator<Item = &'t [u8]>,
) {
    let mut object = Object::open(out, level);
    object.kept(head);
    object.array("tasks", |array| {
        for task in tasks {
            array.place().extend_from_slice(task);
        }
    });
    object.array("replay", |array| {
        for record in records.replay.iter() {
            array.item(&replay_dto(record));
        }
    });
    object.array("intents", |array| {
        for intent in &records.intents {
            array.item(&intent_dto(intent));
        }
    });
    object.close();
}

/// A task's fields that only its spec decides, as [`write_task`] puts them in place: those
/// before its signal (`id` to `worktree_files`, the first), those after (`launch` to `args`),
/// and the last (`policy`, `checks`), for a task object at `level`.
pub(super) struct SpecFields {
    before: Vec<u8>,
    after: Vec<u8>,
    last: Vec<u8>,
}

impl SpecFields {
    pub(super) fn new(spec: &TaskSpec, level: usize) -> Self {
        let mut before = Vec::new();
        let mut object = Object::fields(&mut before, level, true);
        object.field("id", &spec.id.to_string());
        object.field("name", &spec.name);
        object.field("branch", &spec.branch);
        object.field("base_branch", &spec.base_branch);
        object.field("worktree", &spec.worktree);
        object.field("agent", &spec.agent.to_string());
        object.field("profile", spec.profile.name());
        object.field(
            "done_token",
            &spec.done_token.as_ref().map(DoneToken::expose),
        );
        object.field("mcp_config", &spec.mcp_config);
        object.array("worktree_files", |array| {
            for file in &spec.worktree_files {
                array.item(&worktree_file_dto(file));
            }
        });
        let mut after = Vec::new();
        let mut object = Object::fields(&mut after, level, false);
        object.field("launch", &spec.launch);
        object.field("command", &spec.command);
        object.field("args", &spec.args);
        let mut last = Vec::new();
        let mut object = Object::fields(&mut last, level, false);
        object.field("policy", spec.policy.name());
        object.field("checks", &checks_dto(&spec.checks));
        SpecFields {
            before,
            after,
            last,
        }
    }
}

/// Writes `r` as [`task_dto`] would have it written, an object at `level`, its spec's fields
/// as `spec` holds them (made for `r.spec` at that level).
pub(super) fn write_task(out: &mut Vec<u8>, level: usize, r: &TaskRecord, spec: &SpecFields) {
    let mut object = Object::open(out, level);
    object.kept(&spec.before);
    object.field("signal_at_ms", &r.signal.map(|s| s.at.0));
    object.field("signal_consumed", &r.signal.is_some_and(|s| s.consumed));
    object.field("assignment_delivered", &r.assignment_delivered);
    object.field("human_control", &(r.control == Control::Human));
    object.field("exit_code", &r.exit_code);
    object.kept(&spec.after);
    object.field("assignment", &r.assignment);
    object.field("queued", &r.queued);
    object.field("alive", &r.alive);
    object.field("lost_untold", &r.lost_untold);
    object.kept(&spec.last);
    object.close();
}

fn checks_dto(checks: &[RequiredCheck]) -> Vec<CheckDto> {
    checks
        .iter()
        .map(|c| CheckDto {
            name: c.name.clone(),
            command: c.command.clone(),
            timeout_ms: c.timeout_ms,
        })
        .collect()
}

fn replay_dto(r: &ReplayRecord) -> ReplayDto {
    let outcome = match &r.outcome {
        SignalOutcome::Task {
            task,
            name,
            status,
            at,
            remaining,
        } => OutcomeDto::Task {
            task: task.to_string(),
            name: name.clone(),
            status: status.name().into(),
            at_ms: at.0,
            remaining: *remaining,
        },
        SignalOutcome::NeedsAttention {
            task,
            name,
            reason,
            status,
            at,
            remaining,
        } => OutcomeDto::NeedsAttention {
            task: task.to_string(),
            name: name.clone(),
            reason: reason.name().into(),
            status: status.name().into(),
            at_ms: at.0,
            remaining: *remaining,
        },
        SignalOutcome::TimedOut { remaining } => OutcomeDto::TimedOut {
            remaining: *remaining,
        },
        SignalOutcome::CoordinatorGone { at } => OutcomeDto::CoordinatorGone { at_ms: at.0 },
    };
    ReplayDto {
        request: r.request.as_str().to_owned(),
        expires_at_ms: r.expires_at.0,
        outcome,
    }
}

fn intent_dto(intent: &Intent) -> IntentDto {
    let task = intent.task().to_string();
    match intent {
        Intent::Create {
            worktree,
            branch,
            config,
            ..
        } => IntentDto::Create {
            task,
            worktree: worktree.clone(),
            branch: branch.clone(),
            config: config.clone(),
        },
        Intent::Merge {
            squash,
            message,
            cleanup,
            ..
        } => IntentDto::Merge {
            task,
            squash: *squash,
            message: message.clone(),
            cleanup: *cleanup,
        },
        Intent::Close { .. } => IntentDto::Close { task },
    }
}

fn status_from(text: &str) -> Result<Status, String> {
    [Status::Running, Status::Idle, Status::Exited]
        .into_iter()
        .find(|s| s.name() == text)
        .ok_or_else(|| format!("unknown status {text:?}"))
}

fn task_id_from(what: &str, text: &str) -> Result<crate::core::ids::TaskId, String> {
    text.parse()
        .map_err(|_| format!("{what}: task id {text:?} is not a UUID"))
}

fn replay_from(dto: ReplayDto) -> Result<ReplayRecord, String> {
    let request = RequestId::new(&dto.request).map_err(|e| format!("replay: {e}"))?;
    let outcome = match dto.outcome {
        OutcomeDto::Task {
            task,
            name,
            status,
            at_ms,
            remaining,
        } => SignalOutcome::Task {
            task: task_id_from("replay", &task)?,
            name,
            status: status_from(&status)?,
            at: Millis(at_ms),
            remaining,
        },
        OutcomeDto::NeedsAttention {
            task,
            name,
            reason,
            status,
            at_ms,
            remaining,
        } => SignalOutcome::NeedsAttention {
            task: task_id_from("replay", &task)?,
            name,
            reason: Attention::ALL
                .into_iter()
                .find(|a| a.name() == reason)
                .ok_or_else(|| format!("replay: unknown reason {reason:?}"))?,
            status: status_from(&status)?,
            at: Millis(at_ms),
            remaining,
        },
        OutcomeDto::TimedOut { remaining } => SignalOutcome::TimedOut { remaining },
        OutcomeDto::CoordinatorGone { at_ms } => {
            SignalOutcome::CoordinatorGone { at: Millis(at_ms) }
        }
    };
    Ok(ReplayRecord {
        request,
        outcome,
        expires_at: Millis(dto.expires_at_ms),
    })
}

fn intent_from(dto: IntentDto) -> Result<Intent, String> {
    Ok(match dto {
        IntentDto::Create {
            task,
            worktree,
            branch,
            config,
        } => Intent::Create {
            task: task_id_from("intent", &task)?,
            worktree,
            branch,
            config,
        },
        IntentDto::Merge {
            task,
            squash,
            message,
            cleanup,
        } => Intent::Merge {
            task: task_id_from("intent", &task)?,
            squash,
            message,
            cleanup,
        },
        IntentDto::Close { task } => Intent::Close {
            task: task_id_from("intent", &task)?,
        },
    })
}

/// `r` as the file holds it: the shape [`write_task`] writes a field at a time (the tests hold
/// it to serde's encoding of this).
#[cfg(test)]
pub(super) fn task_dto(r: &TaskRecord) -> TaskDto {
    let spec = &r.spec;
    TaskDto {
        id: spec.id.to_string(),
        name: spec.name.clone(),
        branch: spec.branch.clone(),
        base_branch: spec.base_branch.clone(),
        worktree: spec.worktree.clone(),
        agent: spec.agent.to_string(),
        profile: spec.profile.name().to_owned(),
        done_token: spec.done_token.as_ref().map(|t| t.expose().to_owned()),
        mcp_config: spec.mcp_config.clone(),
        worktree_files: spec.worktree_files.iter().map(worktree_file_dto).collect(),
        signal_at_ms: r.signal.map(|s| s.at.0),
        signal_consumed: r.signal.is_some_and(|s| s.consumed),
        assignment_delivered: r.assignment_delivered,
        human_control: r.control == Control::Human,
        exit_code: r.exit_code,
        launch: spec.launch.clone(),
        command: spec.command.clone(),
        args: spec.args.clone(),
        assignment: r.assignment.clone(),
        queued: r.queued.clone(),
        alive: r.alive,
        lost_untold: r.lost_untold,
        policy: spec.policy.name().to_owned(),
        checks: checks_dto(&spec.checks),
    }
}

fn worktree_file_dto(f: &WorktreeFile) -> WorktreeFileDto {
    WorktreeFileDto {
        path: f.path.clone(),
        original: f.original.as_deref().map(base64),
        written: base64(&f.written),
        kind: kind_name(f.kind).to_owned(),
    }
}

const fn kind_name(kind: WorktreeFileKind) -> &'static str {
    match kind {
        WorktreeFileKind::Instructions => "instructions",
        WorktreeFileKind::ClaudeSettings => "claude_settings",
        WorktreeFileKind::McpSettings => "mcp_settings",
    }
}

fn bytes_from(field: &str, text: &str) -> Result<Vec<u8>, String> {
    base64_decode(text).ok_or_else(|| format!("{field} is not base64"))
}

pub(super) fn coordinator_from(dto: CoordinatorDto) -> Result<CoordinatorState, String> {
    let id: CoordinatorId = dto
        .id
        .parse()
        .map_err(|_| format!("coordinator id {:?} is not a UUID", dto.id))?;
    if dto.token.is_empty() {
        return Err(format!("coordinator {id} has an empty token"));
    }
    let mcp_json = dto
        .mcp_json
        .map(|m| -> Result<McpJsonState, String> {
            Ok(McpJsonState {
                path: m.path,
                registration: Registration {
                    original: m
                        .original
                        .map(|o| bytes_from("mcp_json.original", &o))
                        .transpose()?,
                    written: bytes_from("mcp_json.written", &m.written)?,
                    previous: m.previous,
                    entry: m.entry,
                },
            })
        })
        .transpose()?;
    let tasks = dto
        .tasks
        .into_iter()
        .map(task_from)
        .collect::<Result<Vec<_>, String>>()?;
    let replay = dto
        .replay
        .into_iter()
        .map(replay_from)
        .collect::<Result<Vec<_>, String>>()?
        .into();
    let intents = dto
        .intents
        .into_iter()
        .map(intent_from)
        .collect::<Result<Vec<_>, String>>()?;
    Ok(CoordinatorState {
        id,
        token: Secret::from_text(&dto.token),
        registered: dto.registered,
        settings: CoordinatorSettings {
            project_root: dto.project_root,
            spawn: SpawnDefaults {
                command: dto.agent_command,
                args: dto.agent_args,
            },
            skip_permissions: dto.skip_permissions,
            notification_delay_ms: dto.notification_delay_ms,
            config_dir: dto.config_dir,
            mcp: McpLaunch::default(),
        },
        mcp_json,
        records: Records {
            tasks,
            replay,
            intents,
        },
    })
}

fn task_from(dto: TaskDto) -> Result<TaskRecord, String> {
    let id: TaskId = dto
        .id
        .parse()
        .map_err(|_| format!("task id {:?} is not a UUID", dto.id))?;
    let agent: AgentId = dto
        .agent
        .parse()
        .map_err(|_| format!("task {id}: agent id {:?} is not a UUID", dto.agent))?;
    let profile: Profile = dto
        .profile
        .parse()
        .map_err(|_| format!("task {id}: unknown profile {:?}", dto.profile))?;
    let worktree_files = dto
        .worktree_files
        .into_iter()
        .map(|f| -> Result<WorktreeFile, String> {
            let kind = match f.kind.as_str() {
                "instructions" => WorktreeFileKind::Instructions,
                "claude_settings" => WorktreeFileKind::ClaudeSettings,
                "mcp_settings" => WorktreeFileKind::McpSettings,
                other => return Err(format!("task {id}: unknown file kind {other:?}")),
            };
            Ok(WorktreeFile {
                path: f.path,
                original: f
                    .original
                    .map(|o| bytes_from("worktree_files.original", &o))
                    .transpose()?,
                written: bytes_from("worktree_files.written", &f.written)?,
                kind,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(TaskRecord {
        spec: std::sync::Arc::new(TaskSpec {
            id,
            name: dto.name,
            branch: dto.branch,
            base_branch: dto.base_branch,
            worktree: dto.worktree,
            agent,
            profile,
            done_token: dto.done_token.as_deref().map(DoneToken::from_text),
            mcp_config: dto.mcp_config,
            worktree_files,
            launch: dto.launch,
            command: dto.command,
            args: dto.args,
            policy: Policy::from_name(&dto.policy)
                .ok_or_else(|| format!("task {id}: unknown policy {:?}", dto.policy))?,
            checks: dto
                .checks
                .into_iter()
                .map(|c| RequiredCheck {
                    name: c.name,
                    command: c.command,
                    timeout_ms: c.timeout_ms,
                })
                .collect(),
        }),
        signal: dto.signal_at_ms.map(|at| Signal {
            at: Millis(at),
            consumed: dto.signal_consumed,
        }),
        assignment_delivered: dto.assignment_delivered,
        control: if dto.human_control {
            Control::Human
        } else {
            Control::Coordinator
        },
        exit_code: dto.exit_code,
        assignment: dto.assignment,
        queued: dto.queued,
        alive: dto.alive,
        lost_untold: dto.lost_untold,
    })
}
