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

use crate::agents::mcp_json::Registration;
use crate::core::auth::Secret;
use crate::core::coordinator::{
    Control, Signal, TaskRecord, TaskSpec, WorktreeFile, WorktreeFileKind,
};
use crate::core::detector::Profile;
use crate::core::ids::{AgentId, CoordinatorId, DoneToken, TaskId, base64, base64_decode};
use crate::core::time::Millis;
use crate::engine::{CoordinatorSettings, McpLaunch, SpawnDefaults};

/// The format this build writes, and the newest it reads.
pub const FORMAT: u32 = 1;

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
    /// Its tasks.
    pub tasks: Vec<TaskRecord>,
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
        tasks: c.tasks.iter().map(task_dto).collect(),
    }
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
        tasks,
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
    })
}

#[cfg(test)]
mod tests {
    use super::{CoordinatorState, FORMAT, McpJsonState, State, StateError, decode, encode};
    use crate::agents::mcp_json::Registration;
    use crate::core::auth::Secret;
    use crate::core::coordinator::{
        Control, Signal, TaskRecord, TaskSpec, WorktreeFile, WorktreeFileKind,
    };
    use crate::core::detector::Profile;
    use crate::core::ids::{AgentId, CoordinatorId, DoneToken, TaskId};
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
            },
            signal: Some(Signal {
                at: Millis(1_700_000_000_123),
                consumed: true,
            }),
            assignment_delivered: true,
            control: Control::Human,
            exit_code: Some(-1),
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
                tasks: vec![task],
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
        assert_eq!(a.tasks, b.tasks);
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
    fn a_newer_format_is_named_not_parsed() {
        let bytes = format!("{{\"format\": {}, \"anything\": true}}", FORMAT + 1);
        let error = decode(bytes.as_bytes()).unwrap_err();
        assert_eq!(error, StateError::FutureFormat { found: FORMAT + 1 });
    }
}
