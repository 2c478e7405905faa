//! The daemon's state file: every coordinator (its credential, its settings, what it did to the
//! project's `.mcp.json`) and its tasks, deregistered ones while tasks of theirs remain, as JSON with a format number.
//!
//! Pure: [`encode`] and [`decode`] turn [`State`] into bytes and back; the daemon writes them
//! atomically through the `Files` port, mode 0600 (the file holds credentials). These DTOs are
//! the file's shape, apart from the core's types: a field renamed in the core never changes
//! a file on a user's disk.
//!
//! A file this build cannot read is an error that says which kind ([`StateError`]): not JSON or
//! not the expected shape, or written by a newer Baton ([`FORMAT`] is the newest this one
//! knows). The daemon never overwrites such a file.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::agents::McpLaunch;
use crate::agents::mcp_json::Registration;
use crate::core::auth::Secret;
use crate::core::coordinator::{
    Control, Intent, Records, ReplayRecord, Signal, SignalOutcome, Status, TaskRecord, TaskSpec,
    WorktreeFile, WorktreeFileKind,
};
use crate::core::detector::Profile;
use crate::core::ids::{AgentId, CoordinatorId, DoneToken, TaskId, base64, base64_decode};
use crate::core::replay::RequestId;
use crate::core::state::Attention;
use crate::core::time::Millis;
use crate::engine::{CoordinatorSettings, SpawnDefaults};

/// The format this build writes, and the newest it reads. Format 2 added what a restart must not
/// lose besides the tasks (their untyped assignments and queued prompts, whether their agents
/// ran, the replay cache, the operations under way); a format-1 file reads as having none.
pub const FORMAT: u32 = 2;

/// Everything the daemon keeps across a restart.
#[derive(Clone, Debug, Default)]
pub struct State {
    /// The coordinators, in registration order.
    pub coordinators: Vec<CoordinatorState>,
}

/// One coordinator as persisted.
#[derive(Clone, Debug)]
pub struct CoordinatorState {
    /// Its id.
    pub id: CoordinatorId,
    /// Its bearer token (the same after a restart: its MCP process keeps working).
    pub token: Secret,
    /// Whether it is registered; a deregistered one is kept while tasks of its remain (they
    /// are restored as orphans).
    pub registered: bool,
    /// What it was registered with (the MCP launch is the daemon's, not persisted).
    pub settings: CoordinatorSettings,
    /// Baton's entry in the project's `.mcp.json`, to undo it.
    pub mcp_json: Option<McpJsonState>,
    /// Its tasks, replay cache and operations under way.
    pub records: Records,
}

/// What Baton did to a project's `.mcp.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McpJsonState {
    /// The file.
    pub path: PathBuf,
    /// How to undo it.
    pub registration: Registration,
}

impl McpJsonState {
    /// The project whose file it is (its directory: the file is confined there).
    #[must_use]
    pub fn project(&self) -> PathBuf {
        self.path.parent().map(PathBuf::from).unwrap_or_default()
    }
}

/// A state file this build cannot use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Not JSON, or not the state file's shape.
    #[error("the state file is corrupt: {0}")]
    Corrupt(String),
    /// Written by a newer Baton.
    #[error("the state file has format {found}, newer than this Baton's {FORMAT}")]
    FutureFormat {
        /// Its format.
        found: u32,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDto {
    format: u32,
    coordinators: Vec<CoordinatorDto>,
}

/// Only the format, read first: a newer file may have any other shape.
#[derive(Deserialize)]
struct FormatOnly {
    format: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CoordinatorDto {
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
struct TaskDto {
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

/// The file's bytes for `state` (pretty JSON: a person may need to read it).
#[must_use]
pub fn encode(state: &State) -> Vec<u8> {
    let file = FileDto {
        format: FORMAT,
        coordinators: state.coordinators.iter().map(coordinator_dto).collect(),
    };
    let mut bytes = serde_json::to_vec_pretty(&file).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// The state in `bytes`.
///
/// # Errors
/// See [`StateError`].
pub fn decode(bytes: &[u8]) -> Result<State, StateError> {
    let corrupt = |e: &dyn std::fmt::Display| StateError::Corrupt(e.to_string());
    let format: FormatOnly = serde_json::from_slice(bytes).map_err(|e| corrupt(&e))?;
    if format.format > FORMAT {
        return Err(StateError::FutureFormat {
            found: format.format,
        });
    }
    if format.format == 0 {
        return Err(corrupt(&"format 0 does not exist"));
    }
    let file: FileDto = serde_json::from_slice(bytes).map_err(|e| corrupt(&e))?;
    let coordinators = file
        .coordinators
        .into_iter()
        .map(coordinator_from)
        .collect::<Result<Vec<_>, String>>()
        .map_err(|e| corrupt(&e))?;
    let mut ids: Vec<_> = coordinators.iter().map(|c| c.id).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(corrupt(&"a coordinator is listed twice"));
    }
    Ok(State { coordinators })
}

fn coordinator_dto(c: &CoordinatorState) -> CoordinatorDto {
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
        mcp_json: c.mcp_json.as_ref().map(|m| McpJsonDto {
            path: m.path.clone(),
            original: m.registration.original.as_deref().map(base64),
            written: base64(&m.registration.written),
            previous: m.registration.previous.clone(),
            entry: m.registration.entry.clone(),
        }),
        tasks: c.records.tasks.iter().map(task_dto).collect(),
        replay: c.records.replay.iter().map(replay_dto).collect(),
        intents: c.records.intents.iter().map(intent_dto).collect(),
    }
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

fn task_dto(r: &TaskRecord) -> TaskDto {
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
        worktree_files: spec
            .worktree_files
            .iter()
            .map(|f| WorktreeFileDto {
                path: f.path.clone(),
                original: f.original.as_deref().map(base64),
                written: base64(&f.written),
                kind: kind_name(f.kind).to_owned(),
            })
            .collect(),
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

fn coordinator_from(dto: CoordinatorDto) -> Result<CoordinatorState, String> {
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
        .collect::<Result<Vec<_>, String>>()?;
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
        spec: TaskSpec {
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
        },
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

#[cfg(test)]
mod tests {
    use super::{CoordinatorState, FORMAT, McpJsonState, State, StateError, decode, encode};
    use crate::agents::mcp_json::Registration;
    use crate::core::auth::Secret;
    use crate::core::coordinator::{
        Control, Intent, Records, ReplayRecord, Signal, SignalOutcome, Status, TaskRecord,
        TaskSpec, WorktreeFile, WorktreeFileKind,
    };
    use crate::core::detector::Profile;
    use crate::core::ids::{AgentId, CoordinatorId, DoneToken, TaskId};
    use crate::core::replay::RequestId;
    use crate::core::state::Attention;
    use crate::core::time::Millis;
    use crate::engine::CoordinatorSettings;

    fn sample() -> State {
        let task = TaskRecord {
            spec: TaskSpec {
                id: TaskId::from_random([2; 16]),
                name: "fix the parser".into(),
                branch: "task/fix-the-parser-0202".into(),
                base_branch: Some("dev".into()),
                worktree: "/repo/.worktrees/task/fix-the-parser-0202".into(),
                agent: AgentId::from_random([3; 16]),
                profile: Profile::Codex,
                done_token: Some(DoneToken::from_text("done-secret")),
                mcp_config: Some("/state/mcp/baton-subtask-x.json".into()),
                worktree_files: vec![WorktreeFile {
                    path: "/repo/.worktrees/task/fix-the-parser-0202/AGENTS.md".into(),
                    original: Some(b"# mine\n\xff".to_vec()),
                    written: b"# mine\n<sub-task-mode>\n".to_vec(),
                    kind: WorktreeFileKind::Instructions,
                }],
                launch: vec!["codex".into(), "-c".into(), "x=1".into()],
                command: "codex".into(),
                args: vec!["-c".into(), "x=1".into()],
            },
            signal: Some(Signal {
                at: Millis(1_700_000_000_123),
                consumed: true,
            }),
            assignment_delivered: true,
            control: Control::Human,
            exit_code: Some(-1),
            assignment: Some("write the parser".into()),
            queued: vec!["and test it".into(), "then stop".into()],
            alive: true,
            lost_untold: false,
        };
        let mut settings = CoordinatorSettings::new("/repo", "codex", "/state/mcp");
        settings.spawn.args = vec!["--model".into(), "o3".into()];
        settings.skip_permissions = true;
        State {
            coordinators: vec![CoordinatorState {
                id: CoordinatorId::from_random([1; 16]),
                token: Secret::from_text("coordinator-secret"),
                registered: false,
                settings,
                mcp_json: Some(McpJsonState {
                    path: "/repo/.mcp.json".into(),
                    registration: Registration {
                        original: None,
                        written: b"{}".to_vec(),
                        previous: Some(serde_json::json!({"command": "old"})),
                        entry: serde_json::json!({"command": "baton"}),
                    },
                }),
                records: Records {
                    tasks: vec![task],
                    replay: vec![
                        ReplayRecord {
                            request: RequestId::new("req-1").unwrap(),
                            outcome: SignalOutcome::Task {
                                task: TaskId::from_random([2; 16]),
                                name: "fix the parser".into(),
                                status: Status::Idle,
                                at: Millis(1_700_000_000_100),
                                remaining: 3,
                            },
                            expires_at: Millis(1_700_000_120_000),
                        },
                        ReplayRecord {
                            request: RequestId::new("req-2").unwrap(),
                            outcome: SignalOutcome::NeedsAttention {
                                task: TaskId::from_random([2; 16]),
                                name: "fix the parser".into(),
                                reason: Attention::Permission,
                                status: Status::Running,
                                at: Millis(5),
                                remaining: 1,
                            },
                            expires_at: Millis(6),
                        },
                        ReplayRecord {
                            request: RequestId::new("req-3").unwrap(),
                            outcome: SignalOutcome::TimedOut { remaining: 2 },
                            expires_at: Millis(7),
                        },
                        ReplayRecord {
                            request: RequestId::new("req-4").unwrap(),
                            outcome: SignalOutcome::CoordinatorGone { at: Millis(8) },
                            expires_at: Millis(9),
                        },
                    ],
                    intents: vec![
                        Intent::Create {
                            task: TaskId::from_random([4; 16]),
                            worktree: "/repo/.worktrees/task/x".into(),
                            branch: "task/x".into(),
                            config: "/state/mcp/baton-subtask-x.json".into(),
                        },
                        Intent::Merge {
                            task: TaskId::from_random([2; 16]),
                            squash: true,
                            message: Some("one".into()),
                            cleanup: true,
                        },
                        Intent::Close {
                            task: TaskId::from_random([2; 16]),
                        },
                    ],
                },
            }],
        }
    }

    #[test]
    fn what_is_encoded_decodes_to_the_same_state() {
        let state = sample();
        let bytes = encode(&state);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.coordinators.len(), 1);
        let (a, b) = (&state.coordinators[0], &back.coordinators[0]);
        assert_eq!((a.id, a.token.expose()), (b.id, b.token.expose()));
        assert_eq!(a.registered, b.registered);
        assert_eq!(a.mcp_json, b.mcp_json);
        assert_eq!(a.records, b.records);
        assert_eq!(a.settings.spawn, b.settings.spawn);
        assert_eq!(
            (a.settings.project_root.clone(), a.settings.skip_permissions),
            (b.settings.project_root.clone(), b.settings.skip_permissions)
        );
        assert_eq!(encode(&back), bytes, "a second round changes no byte");
    }

    #[test]
    fn unreadable_files_say_why() {
        let check = |bytes: &[u8], expect: &str| {
            let error = decode(bytes).unwrap_err().to_string();
            assert!(error.contains(expect), "{error:?} should say {expect:?}");
        };
        check(b"", "corrupt");
        check(b"{\"format\": 1, \"coordinators\": [", "corrupt");
        check(b"[]", "corrupt");
        check(b"{\"format\": 0, \"coordinators\": []}", "format 0");
        check(
            b"{\"format\": 1, \"coordinators\": [], \"extra\": 1}",
            "unknown field",
        );
        let bad_id = String::from_utf8(encode(&sample()))
            .unwrap()
            .replace("01010101-0101-4101-8101-010101010101", "nope");
        check(bad_id.as_bytes(), "not a UUID");
        let twice = {
            let mut state = sample();
            state.coordinators.push(state.coordinators[0].clone());
            encode(&state)
        };
        check(&twice, "listed twice");
    }

    #[test]
    fn a_format_2_file_as_written_by_hand_reads() {
        let bytes = include_bytes!(
            "../../tests/fuzz-corpus/state/format-2-with-queues-replay-and-intents.json"
        );
        let state = decode(bytes).unwrap();
        let records = &state.coordinators[0].records;
        assert_eq!((records.replay.len(), records.intents.len()), (4, 3));
        let task = &records.tasks[0];
        assert_eq!(task.assignment.as_deref(), Some("write the parser"));
        assert_eq!(task.queued, ["and test it"]);
        assert!(task.alive);
        let unknown = String::from_utf8(bytes.to_vec()).unwrap().replacen(
            "\"kind\": \"close\"",
            "\"kind\": \"shred\"",
            1,
        );
        assert!(
            decode(unknown.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("shred")
        );
    }

    #[test]
    fn a_format_1_file_reads_with_nothing_held() {
        // Format 1 had no assignments, queues, replay cache or intents: they read as none.
        let mut text = String::from_utf8(encode(&sample())).unwrap();
        text = text.replacen("\"format\": 2", "\"format\": 1", 1);
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let coordinator = &mut value["coordinators"][0];
        let object = coordinator.as_object_mut().unwrap();
        object.remove("replay");
        object.remove("intents");
        let task = coordinator["tasks"][0].as_object_mut().unwrap();
        for field in [
            "command",
            "args",
            "assignment",
            "queued",
            "alive",
            "lost_untold",
        ] {
            task.remove(field);
        }
        let state = decode(&serde_json::to_vec(&value).unwrap()).unwrap();
        let records = &state.coordinators[0].records;
        assert!(records.replay.is_empty() && records.intents.is_empty());
        let task = &records.tasks[0];
        assert_eq!((task.assignment.as_ref(), task.queued.len()), (None, 0));
        assert!(!task.alive && task.spec.command.is_empty());
        assert_eq!(task.spec.launch.len(), 3, "the rest as it was");
    }

    #[test]
    fn a_newer_format_is_named_not_parsed() {
        let bytes = format!("{{\"format\": {}, \"anything\": true}}", FORMAT + 1);
        let error = decode(bytes.as_bytes()).unwrap_err();
        assert_eq!(error, StateError::FutureFormat { found: FORMAT + 1 });
    }
}
