//! The state file's tests: a full state round-trips byte for byte, files written by hand in
//! formats 1 and 2 read, and unreadable or newer files are refused with the kind of error they
//! are.

use std::sync::Arc;

use super::{CoordinatorState, Encoder, FORMAT, McpJsonState, State, StateError, decode, encode};
use crate::agents::mcp_json::Registration;
use crate::core::auth::Secret;
use crate::core::coordinator::{
    Control, Intent, Policy, Records, ReplayRecord, RequiredCheck, Signal, SignalOutcome, Status,
    TaskRecord, TaskSpec, WorktreeFile, WorktreeFileKind,
};
use crate::core::detector::Profile;
use crate::core::ids::{AgentId, CoordinatorId, DoneToken, TaskId};
use crate::core::replay::RequestId;
use crate::core::state::Attention;
use crate::core::time::Millis;
use crate::engine::CoordinatorSettings;

fn sample() -> State {
    let task = TaskRecord {
        spec: Arc::new(TaskSpec {
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
            policy: Policy::Land,
            checks: vec![RequiredCheck {
                name: "tests".into(),
                command: "cargo test -q".into(),
                timeout_ms: 600_000,
            }],
        }),
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
                ]
                .into(),
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
        "../../../tests/fuzz-corpus/state/format-2-with-queues-replay-and-intents.json"
    );
    let state = decode(bytes).unwrap();
    let records = &state.coordinators[0].records;
    assert_eq!((records.replay.len(), records.intents.len()), (4, 3));
    let task = &records.tasks[0];
    assert_eq!(task.assignment.as_deref(), Some("write the parser"));
    assert_eq!(task.queued, ["and test it"]);
    assert!(task.alive);
    // Format 2 had no policies: its tasks are under review, without checks.
    assert_eq!(task.spec.policy, Policy::Review);
    assert!(task.spec.checks.is_empty());
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
    // Format 1 had no assignments, queues, replay cache, intents or policies: they read as
    // none, and its tasks as under review.
    let mut text = String::from_utf8(encode(&sample())).unwrap();
    let format = format!("\"format\": {FORMAT}");
    assert!(text.contains(&format));
    text = text.replacen(&format, "\"format\": 1", 1);
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
        "policy",
        "checks",
    ] {
        task.remove(field);
    }
    let state = decode(&serde_json::to_vec(&value).unwrap()).unwrap();
    let records = &state.coordinators[0].records;
    assert!(records.replay.is_empty() && records.intents.is_empty());
    let task = &records.tasks[0];
    assert_eq!((task.assignment.as_ref(), task.queued.len()), (None, 0));
    assert!(!task.alive && task.spec.command.is_empty());
    assert_eq!(task.spec.policy, Policy::Review);
    assert!(task.spec.checks.is_empty());
    assert_eq!(task.spec.launch.len(), 3, "the rest as it was");
}

#[test]
fn a_newer_format_is_named_not_parsed() {
    let bytes = format!("{{\"format\": {}, \"anything\": true}}", FORMAT + 1);
    let error = decode(bytes.as_bytes()).unwrap_err();
    assert_eq!(error, StateError::FutureFormat { found: FORMAT + 1 });
}

/// The file as serde writes it with every task encoded in place: what [`Encoder`] must match.
fn written_whole(state: &State) -> Vec<u8> {
    let file = super::dto::FileDto {
        format: FORMAT,
        coordinators: state
            .coordinators
            .iter()
            .map(|c| {
                let tasks = c.records.tasks.iter().map(super::dto::task_dto).collect();
                super::dto::coordinator_dto(c.view(), tasks)
            })
            .collect(),
    };
    let mut bytes = serde_json::to_vec_pretty(&file).unwrap();
    bytes.push(b'\n');
    bytes
}

/// What `encoder` writes for `state`.
fn kept(encoder: &mut Encoder, state: &State) -> Vec<u8> {
    let coordinators: Vec<_> = state
        .coordinators
        .iter()
        .map(CoordinatorState::view)
        .collect();
    encoder.encode(&coordinators)
}

#[test]
fn an_encoder_kept_across_saves_writes_what_encoding_every_task_writes() {
    let mut encoder = Encoder::default();
    let mut state = sample();
    assert_eq!(kept(&mut encoder, &state), written_whole(&state));
    // A task changes, one comes (a second coordinator's too), one goes: each save is written as
    // if every task were encoded anew, the unchanged task's kept text included.
    let first = state.coordinators[0].records.tasks[0].clone();
    let mut second = first.clone();
    let spec = Arc::make_mut(&mut second.spec);
    spec.id = TaskId::from_random([9; 16]);
    spec.name = "a \"quoted\"\nname".into();
    state.coordinators[0].records.tasks.push(second.clone());
    assert_eq!(kept(&mut encoder, &state), written_whole(&state));
    state.coordinators[0].records.tasks[0].signal = None;
    state.coordinators[0].records.tasks[1].exit_code = Some(3);
    assert_eq!(kept(&mut encoder, &state), written_whole(&state));
    // Its spec changes too (the spec's kept fields are written anew), then only its queue.
    let spec = Arc::make_mut(&mut state.coordinators[0].records.tasks[1].spec);
    spec.args = vec!["--other".into()];
    spec.worktree_files.clear();
    assert_eq!(kept(&mut encoder, &state), written_whole(&state));
    state.coordinators[0].records.tasks[1].queued.clear();
    state.coordinators[0].records.tasks[1].assignment = None;
    assert_eq!(kept(&mut encoder, &state), written_whole(&state));
    let mut other = state.coordinators[0].clone();
    other.id = CoordinatorId::from_random([8; 16]);
    other.records.tasks = vec![second];
    Arc::make_mut(&mut other.records.tasks[0].spec).id = TaskId::from_random([7; 16]);
    state.coordinators.push(other);
    state.coordinators[0].records.tasks.remove(0);
    assert_eq!(kept(&mut encoder, &state), written_whole(&state));
    // A coordinator's own fields change: registered again, its `.mcp.json` entry taken out.
    state.coordinators[0].registered = true;
    state.coordinators[0].mcp_json = None;
    state.coordinators[1].settings.notification_delay_ms = 7;
    let bytes = kept(&mut encoder, &state);
    assert_eq!(bytes, written_whole(&state));
    assert_eq!(bytes, encode(&state), "a fresh encoder writes the same");
    assert_eq!(encoder.tasks.len(), 2, "a task gone is forgotten");
    state.coordinators.remove(0);
    assert_eq!(kept(&mut encoder, &state), written_whole(&state));
    assert_eq!(encoder.heads.len(), 1, "a coordinator gone is forgotten");
    let read = decode(&bytes).unwrap();
    assert_eq!(read.coordinators.len(), 2);
}

#[test]
fn what_is_empty_or_absent_is_written_as_serde_writes_it() {
    let mut encoder = Encoder::default();
    let mut state = State::default();
    assert_eq!(
        kept(&mut encoder, &state),
        written_whole(&state),
        "no coordinator"
    );
    let mut bare = sample().coordinators.remove(0);
    bare.mcp_json = None;
    bare.records = Records::default();
    bare.settings.spawn.args.clear();
    state.coordinators.push(bare);
    assert_eq!(kept(&mut encoder, &state), written_whole(&state), "no task");
    let mut task = sample().coordinators[0].records.tasks[0].clone();
    let spec = Arc::make_mut(&mut task.spec);
    spec.base_branch = None;
    spec.done_token = None;
    spec.mcp_config = None;
    spec.worktree_files[0].original = None;
    spec.launch.clear();
    task.signal = Some(Signal {
        at: Millis(3),
        consumed: false,
    });
    task.exit_code = None;
    state.coordinators[0].records.tasks.push(task);
    assert_eq!(
        kept(&mut encoder, &state),
        written_whole(&state),
        "a bare task"
    );
}
