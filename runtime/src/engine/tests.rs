//! The engine on fake ports with tokio's paused clock: sub-tasks made, prompted, waited for,
//! signalled and closed, with failures on the way. No real time passes.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{
    AgentEvent, AgentFeed, AppEvent, CoordinatorHandle, CoordinatorSettings, CreateTask, Engine,
    EngineError, MergeResult, Ports, SpawnDefaults, spawn_coordinator,
};
use crate::agents::prompts::sub_task;
use crate::core::coordinator::{
    Control, CoreError, IdleOutcome, MCP_CONNECT_TIMEOUT_MS, MergeOptions, Records, Sent,
    SignalOutcome, StateChange, Status,
};
use crate::core::diff::DIFF_TRUNCATED_NOTE;
use crate::core::ids::{AgentId, CoordinatorId};
use crate::core::replay::RequestId;
use crate::ports::fakes::{FakeFiles, FakePty, FakeRepo};
use crate::ports::{ExitStatus, FileMode};

struct World {
    ports: Ports,
    pty: Arc<FakePty>,
    repo: Arc<FakeRepo>,
    files: Arc<FakeFiles>,
    journal: Arc<crate::ports::fakes::MemoryJournal>,
    coordinator: CoordinatorHandle,
    events: mpsc::Receiver<AppEvent>,
    feed: AgentFeed,
}

/// The bytes a sub-task's agent without bracketed paste receives for the assignment
/// `prompt`: the preamble and the prompt on one line (a newline would submit early), Enter.
fn assignment_bytes(prompt: &str) -> Vec<u8> {
    format!("{}\r", sub_task(prompt).replace('\n', " ")).into_bytes()
}

/// A viewer with a queue of `queue` messages, and that queue's other end.
pub(crate) fn viewer(id: u64, queue: usize) -> (super::Viewer, mpsc::Receiver<super::Watched>) {
    let (tx, rx) = mpsc::channel(queue);
    let viewer = super::Viewer {
        id,
        queue: tx,
        overflowed: Arc::new(tokio::sync::Notify::new()),
    };
    (viewer, rx)
}

fn world() -> World {
    let super::FakeWorld {
        ports,
        pty,
        repo,
        files,
        journal,
        ..
    } = super::FakeWorld::new(1);
    let coordinator_settings = settings();
    let (events_tx, events) = mpsc::channel(super::APP_EVENTS_MAX);
    let feed = AgentFeed::new();
    let coordinator = spawn_coordinator(
        ports.clone(),
        CoordinatorId::from_random([7; 16]),
        coordinator_settings,
        events_tx,
        feed.clone(),
    );
    World {
        ports,
        pty,
        repo,
        files,
        journal,
        coordinator,
        events,
        feed,
    }
}

fn ports_of(world: &World) -> Ports {
    world.ports.clone()
}

fn settings() -> CoordinatorSettings {
    CoordinatorSettings::new("/repo", "claude", "/tmp/baton")
}

fn request(name: &str, prompt: Option<&str>) -> CreateTask {
    CreateTask {
        name: name.into(),
        prompt: prompt.map(Into::into),
        base_branch: None,
        agent_command: None,
        agent_args: None,
        policy: crate::core::coordinator::Policy::Review,
        checks: Vec::new(),
    }
}

async fn pause(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

fn token_of(files: &FakeFiles, path: &Path) -> String {
    let config: serde_json::Value =
        serde_json::from_slice(&files.get(path).unwrap().bytes).unwrap();
    config["mcpServers"]["baton"]["env"]["BATON_DONE_TOKEN"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(start_paused = true)]
async fn creating_a_task_makes_its_worktree_config_and_agent() {
    let mut w = world();
    let task = w
        .coordinator
        .create_task(request("Fix the login bug", None))
        .await
        .unwrap();
    assert_eq!(task.status, Status::Running);
    assert!(task.branch.starts_with("task/fix-the-login-bug-"));
    assert_eq!(
        w.repo.worktrees(Path::new("/repo")),
        [(task.worktree.clone(), task.branch.clone())]
    );
    let spawned = w.pty.spawned();
    assert_eq!(spawned.len(), 1);
    assert_eq!(spawned[0].cwd, task.worktree);
    let config = Path::new("/tmp/baton").join(format!("baton-subtask-{}.json", task.id));
    let server = crate::agents::McpServer::sub_task(
        &crate::agents::McpLaunch::default(),
        task.id,
        "not in the hooks",
    );
    let hooks = crate::agents::claude_hook_settings(&server, &config);
    let block = crate::agents::preamble::block();
    assert_eq!(
        spawned[0].argv,
        [
            "claude",
            "--settings",
            &hooks,
            "--append-system-prompt",
            &block,
            "--mcp-config",
            config.to_str().unwrap(),
            "--strict-mcp-config",
            "--allowedTools",
            "mcp__baton"
        ]
    );
    let file = w.files.get(&config).unwrap();
    assert_eq!(file.mode, FileMode::OwnerOnly);
    let token = token_of(&w.files, &config);
    assert_eq!(token.len(), 32);
    assert!(
        !spawned[0].argv.iter().any(|arg| arg.contains(&token)),
        "no secret in an argv"
    );
    assert!(matches!(
        w.events.recv().await,
        Some(AppEvent::TaskCreated { .. })
    ));
    assert_eq!(w.coordinator.list_tasks().await.unwrap(), [task]);
}

#[tokio::test(start_paused = true)]
async fn the_task_list_is_shared_until_a_task_changes_then_made_anew() {
    let w = world();
    let task = w.coordinator.create_task(request("t", None)).await.unwrap();
    let agent = w.pty.spawned()[0].agent;
    let first = w.coordinator.task_list().await.unwrap();
    assert_eq!(first.tasks(), std::slice::from_ref(&task));
    let again = w.coordinator.task_list().await.unwrap();
    assert!(
        Arc::ptr_eq(&first, &again),
        "nothing changed: the same list"
    );
    pause(1).await;
    let published = w.coordinator.published.get();
    assert!(
        published.is_some_and(|list| Arc::ptr_eq(&list, &first)),
        "the actor waits with the list published"
    );
    // Only the agent's screen changes the task (its state): the next list shows it.
    w.pty
        .print(agent, "\x1b[2J✻ Working (esc to interrupt)".as_bytes())
        .await
        .unwrap();
    pause(1_000).await;
    assert!(
        w.coordinator.published.get().is_none(),
        "taken back when the actor took the output"
    );
    let working = w.coordinator.task_list().await.unwrap();
    assert!(!Arc::ptr_eq(&first, &working));
    assert_ne!(working.tasks()[0].state, first.tasks()[0].state);
    assert_eq!(
        working.tasks()[0],
        w.coordinator.task_status(task.id).await.unwrap()
    );
    let other = w.coordinator.create_task(request("u", None)).await.unwrap();
    assert_eq!(
        w.coordinator.task_list().await.unwrap().tasks(),
        [working.tasks()[0].clone(), other]
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_may_name_its_own_agent() {
    let w = world();
    let custom = CreateTask {
        agent_command: Some("codex".into()),
        agent_args: Some(vec!["--model".into(), "o3".into()]),
        ..request("t", None)
    };
    let task = w.coordinator.create_task(custom).await.unwrap();
    let config = Path::new("/tmp/baton").join(format!("baton-subtask-{}.json", task.id));
    let argv = &w.pty.spawned()[0].argv;
    assert_eq!(argv[..4], ["codex", "--model", "o3", "--config"]);
    assert!(
        argv[4].contains(&format!(r#""--credentials-file", "{}""#, config.display())),
        "Codex finds its server's credentials in the 0600 config file: {}",
        argv[4]
    );
    let token = token_of(&w.files, &config);
    assert!(
        argv.iter().all(|arg| !arg.contains(&token)),
        "no secret in argv"
    );
}

#[tokio::test(start_paused = true)]
async fn a_config_that_cannot_be_written_after_the_preamble_rolls_both_back() {
    let w = world();
    // The instruction block goes into a Codex worktree's AGENTS.md; the MCP config after it
    // fails.
    w.files.fail_writes_after(1, 1);
    let codex = CreateTask {
        agent_command: Some("codex".into()),
        ..request("half-made", None)
    };
    let error = w.coordinator.create_task(codex).await.unwrap_err();
    assert!(error.to_string().contains("baton-subtask-"), "{error}");
    assert!(w.repo.worktrees(Path::new("/repo")).is_empty());
    assert!(w.files.paths().is_empty(), "{:?}", w.files.paths());
    assert!(w.coordinator.list_tasks().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_preamble_goes_into_the_agents_file_and_out_before_a_merge() {
    let w = world();
    let codex = CreateTask {
        agent_command: Some("codex".into()),
        ..request("c", None)
    };
    // The repository has no AGENTS.md of the user's: the block is all the file holds.
    let task = w.coordinator.create_task(codex).await.unwrap();
    let written = w.repo.files(&task.worktree).unwrap()["AGENTS.md"].clone();
    assert!(written.starts_with("<sub-task-mode>"), "{written}");
    // Claude Code gets the block on its command line: nothing is written into its worktree.
    let claude = w.coordinator.create_task(request("k", None)).await.unwrap();
    assert!(
        !w.repo.is_dirty(&claude.worktree),
        "{:?}",
        w.repo.files(&claude.worktree)
    );
    let argv = &w.pty.spawned()[1].argv;
    assert!(argv.contains(&crate::agents::preamble::block()), "{argv:?}");
    w.coordinator
        .signal_done_as_coordinator(task.id)
        .await
        .unwrap();
    w.coordinator
        .merge_task(task.id, MergeOptions::default())
        .await
        .unwrap();
    assert_eq!(
        w.repo.files(&task.worktree).unwrap().get("AGENTS.md"),
        None,
        "Baton made it: gone before the merge"
    );
    assert_eq!(
        w.repo
            .tree(Path::new("/repo"), "main")
            .unwrap()
            .get("AGENTS.md"),
        None,
        "and the merge did not carry it"
    );
}

#[tokio::test(start_paused = true)]
async fn a_created_task_is_saved_before_it_is_answered_and_a_failed_save_is_an_error() {
    let w = world();
    let task = w
        .coordinator
        .create_task(request("kept", None))
        .await
        .unwrap();
    let saved = w.journal.saved(w.coordinator.id()).unwrap_or_default();
    assert_eq!(
        saved.tasks.iter().map(|r| r.spec.id).collect::<Vec<_>>(),
        [task.id]
    );
    w.journal.fail_saves(true);
    let error = w
        .coordinator
        .create_task(request("lost", None))
        .await
        .unwrap_err();
    // Its intent could not be saved: nothing of it was begun.
    assert!(error.to_string().contains("nothing was done"), "{error}");
    assert!(error.to_string().contains("no space left"), "{error}");
    let names: Vec<String> = w
        .coordinator
        .list_tasks()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["kept"]);
    assert!(
        !w.repo
            .branches(Path::new("/repo"))
            .iter()
            .any(|b| b.starts_with("task/lost-")),
        "no branch was made"
    );
    let refused = w
        .coordinator
        .create_task(request("", None))
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("name"),
        "a refused call is not saved: {refused}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_create_leaves_nothing_behind() {
    let w = world();
    w.pty.fail_next_spawn("claude: command not found");
    let error = w
        .coordinator
        .create_task(request("doomed", None))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("command not found"), "{error}");
    assert!(w.repo.worktrees(Path::new("/repo")).is_empty());
    assert_eq!(w.repo.branches(Path::new("/repo")), ["main"]);
    assert!(w.files.paths().is_empty());
    assert!(w.coordinator.list_tasks().await.unwrap().is_empty());
    w.files.fail_writes(1);
    let error = w
        .coordinator
        .create_task(request("no space", None))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("no space left on device"),
        "{error}"
    );
    assert_eq!(
        w.repo.branches(Path::new("/repo")),
        ["main"],
        "the worktree was rolled back"
    );
}

#[tokio::test(start_paused = true)]
async fn bad_requests_are_refused_before_anything_is_made() {
    let w = world();
    let refused = |name: &str, base: Option<&str>| {
        let handle = w.coordinator.clone();
        let request = CreateTask {
            base_branch: base.map(Into::into),
            ..request(name, None)
        };
        async move { handle.create_task(request).await.unwrap_err() }
    };
    assert_eq!(
        refused("   ", None).await,
        EngineError::Invalid("name must be a non-empty string".into())
    );
    for (name, hidden) in [(" \x07 ", "U+0007"), ("invoice\u{202e}gpj.exe", "U+202E")] {
        let error = refused(name, None).await.to_string();
        assert!(
            error.starts_with(&format!(
                "name must not hold control or format characters (it holds {hidden})"
            )),
            "{error}"
        );
    }
    assert_eq!(
        refused(&"x".repeat(201), None).await,
        EngineError::Invalid("name must be 200 characters or fewer".into())
    );
    assert_eq!(
        refused("ok", Some("HEAD")).await,
        EngineError::Invalid("baseBranch must not be \"HEAD\"".into())
    );
    assert!(w.pty.spawned().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_assignment_waits_for_the_prompt_and_the_mcp_server_decision_first_prompt_waits_for_tools()
 {
    let w = world();
    let task = w
        .coordinator
        .create_task(request("feature", Some("Add a --verbose flag")))
        .await
        .unwrap();
    let agent = w.pty.spawned()[0].agent;
    w.pty
        .print(
            agent,
            "\x1b[?2004hStarting MCP servers (0/1)\r\n".as_bytes(),
        )
        .await
        .unwrap();
    pause(500).await;
    assert!(w.pty.input(agent).is_empty(), "not while starting");
    w.pty
        .print(agent, "\x1b[2K\x1b[1A\x1b[2K\x1b[G❯ ".as_bytes())
        .await
        .unwrap();
    pause(200).await;
    assert!(
        w.pty.input(agent).is_empty(),
        "the prompt shows, but its MCP server has not connected"
    );
    assert_eq!(
        w.coordinator.wait_for_idle(task.id, Some(100)).await,
        Ok(IdleOutcome::TimedOut),
        "a task with its assignment pending is not idle"
    );
    w.coordinator.mcp_connected(task.id).await.unwrap();
    pause(super::enter_delay_ms(&sub_task("Add a --verbose flag")) + 50).await;
    assert_eq!(
        w.pty.input(agent),
        format!("\x1b[200~{}\x1b[201~\r", sub_task("Add a --verbose flag")).as_bytes()
    );
}

#[tokio::test(start_paused = true)]
async fn an_mcp_server_that_never_connects_delays_the_assignment_by_the_timeout_only() {
    let mut w = world();
    let task = w
        .coordinator
        .create_task(request("feature", Some("go")))
        .await
        .unwrap();
    let agent = w.pty.spawned()[0].agent;
    w.pty.print(agent, "❯ ".as_bytes()).await.unwrap();
    pause(MCP_CONNECT_TIMEOUT_MS - 1_000).await;
    assert!(w.pty.input(agent).is_empty());
    pause(2_000).await;
    assert_eq!(w.pty.input(agent), assignment_bytes("go"));
    let mut events = Vec::new();
    while let Ok(event) = w.events.try_recv() {
        events.push(event);
    }
    assert!(
        events.contains(&AppEvent::State(task.id, StateChange::McpStartupTimedOut)),
        "{events:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn wait_for_idle_returns_when_the_prompt_settles() {
    let w = world();
    let task = w.coordinator.create_task(request("t", None)).await.unwrap();
    let agent = w.pty.spawned()[0].agent;
    let waiting = tokio::spawn({
        let coordinator = w.coordinator.clone();
        async move { coordinator.wait_for_idle(task.id, Some(10_000)).await }
    });
    pause(100).await;
    w.pty.print(agent, "done\r\n❯ ".as_bytes()).await.unwrap();
    assert_eq!(waiting.await.unwrap(), Ok(IdleOutcome::Idle));
    assert_eq!(
        w.coordinator.task_status(task.id).await.unwrap().status,
        Status::Idle
    );
}

#[tokio::test(start_paused = true)]
async fn the_detector_reads_the_screen_at_the_size_a_viewer_resized_it_to() {
    let w = world();
    let task = w.coordinator.create_task(request("t", None)).await.unwrap();
    let agent = w.pty.spawned()[0].agent;
    w.coordinator
        .terminal(agent, super::TerminalInput::Resize { cols: 10, rows: 5 })
        .await
        .unwrap();
    // Ten columns of text, then the glyph: it wraps onto a line of its own only on a terminal
    // ten columns wide (on the default width it ends the line of text, and is no prompt).
    w.pty.print(agent, "0123456789❯".as_bytes()).await.unwrap();
    pause(100).await;
    assert_eq!(
        w.coordinator.task_status(task.id).await.unwrap().status,
        Status::Idle
    );
}

#[tokio::test(start_paused = true)]
async fn signal_done_needs_the_tasks_own_token_and_answers_the_wait() {
    let w = world();
    let task = w.coordinator.create_task(request("t", None)).await.unwrap();
    let config = Path::new("/tmp/baton").join(format!("baton-subtask-{}.json", task.id));
    let token = token_of(&w.files, &config);
    assert_eq!(
        w.coordinator.signal_done(task.id, "guess".into()).await,
        Err(EngineError::Forbidden)
    );
    let waiting = tokio::spawn({
        let coordinator = w.coordinator.clone();
        async move { coordinator.wait_for_signal(None, Some(60_000)).await }
    });
    pause(10).await;
    w.coordinator.signal_done(task.id, token).await.unwrap();
    let outcome = waiting.await.unwrap().unwrap();
    assert!(
        matches!(outcome, SignalOutcome::Task { task: id, remaining: 0, .. } if id == task.id),
        "{outcome:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_dropped_wait_consumes_no_signal_decision_cancel_safe_waits() {
    let w = world();
    let task = w.coordinator.create_task(request("t", None)).await.unwrap();
    let config = Path::new("/tmp/baton").join(format!("baton-subtask-{}.json", task.id));
    let token = token_of(&w.files, &config);
    let abandoned = tokio::spawn({
        let coordinator = w.coordinator.clone();
        async move { coordinator.wait_for_signal(None, Some(60_000)).await }
    });
    pause(10).await;
    abandoned.abort();
    pause(10).await;
    w.coordinator.signal_done(task.id, token).await.unwrap();
    let id = RequestId::new("second").unwrap();
    let outcome = w
        .coordinator
        .wait_for_signal(Some(id), Some(100))
        .await
        .unwrap();
    assert!(
        matches!(outcome, SignalOutcome::Task { task: got, .. } if got == task.id),
        "{outcome:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_signal_wait_times_out_in_virtual_time() {
    let w = world();
    w.coordinator.create_task(request("t", None)).await.unwrap();
    let outcome = w
        .coordinator
        .wait_for_signal(None, Some(1_000))
        .await
        .unwrap();
    assert_eq!(outcome, SignalOutcome::TimedOut { remaining: 1 });
}

#[tokio::test(start_paused = true)]
async fn terminal_queries_are_answered_at_once() {
    let w = world();
    w.coordinator.create_task(request("t", None)).await.unwrap();
    let agent = w.pty.spawned()[0].agent;
    w.pty.print(agent, b"\x1b[6n").await.unwrap();
    pause(1).await;
    assert_eq!(w.pty.input(agent), b"\x1b[1;1R");
}

#[tokio::test(start_paused = true)]
async fn send_prompt_types_the_text_then_enter_and_holds_it_under_human_control() {
    let w = world();
    let task = w.coordinator.create_task(request("t", None)).await.unwrap();
    let agent: AgentId = w.pty.spawned()[0].agent;
    assert_eq!(
        w.coordinator
            .send_prompt(task.id, "run the tests".into())
            .await,
        Ok(Sent::Typed)
    );
    assert_eq!(w.pty.input(agent), b"run the tests\r");
    w.coordinator
        .set_control(task.id, Control::Human)
        .await
        .unwrap();
    assert_eq!(
        w.coordinator.send_prompt(task.id, "then lint".into()).await,
        Ok(Sent::Queued)
    );
    pause(3_000).await;
    w.pty.print(agent, "❯ ".as_bytes()).await.unwrap();
    pause(100).await;
    assert_eq!(
        w.pty.input(agent),
        b"run the tests\r",
        "held while a human has the terminal"
    );
    w.coordinator
        .set_control(task.id, Control::Coordinator)
        .await
        .unwrap();
    pause(100).await;
    assert_eq!(w.pty.input(agent), b"run the tests\rthen lint\r");
    assert_eq!(
        w.coordinator.send_prompt(task.id, "  ".into()).await,
        Err(EngineError::Core(CoreError::InvalidPrompt(
            "prompt must be a non-empty string".into()
        )))
    );
}

#[tokio::test(start_paused = true)]
async fn diffs_are_cut_at_the_limit_and_merges_need_a_finished_task() {
    let w = world();
    let root = Path::new("/repo");
    w.repo.edit(root, "src/lib.rs", "old\n").unwrap();
    w.repo.commit(root).unwrap();
    let task = w.coordinator.create_task(request("t", None)).await.unwrap();
    let agent = w.pty.spawned()[0].agent;
    // The agent replaces the file's one line with 30,000.
    w.repo
        .edit(&task.worktree, "src/lib.rs", &"x\n".repeat(30_000))
        .unwrap();
    w.repo.commit(&task.worktree).unwrap();
    let full = format!(
        "diff --git a/src/lib.rs b/src/lib.rs\n--- a/src/lib.rs\n+++ b/src/lib.rs\n\
         @@ -1,1 +1,30000 @@\n-old\n{}",
        "+x\n".repeat(30_000)
    );
    let diff = w.coordinator.task_diff(task.id).await.unwrap();
    assert!(diff.truncated);
    assert!(diff.text.ends_with(DIFF_TRUNCATED_NOTE));
    assert_eq!(diff.original_bytes, full.len());
    let refused = w
        .coordinator
        .merge_task(task.id, MergeOptions::default())
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("is still running"),
        "{refused}"
    );
    w.pty.print(agent, "❯ ".as_bytes()).await.unwrap();
    pause(100).await;
    let merged = w
        .coordinator
        .merge_task(
            task.id,
            MergeOptions {
                cleanup: true,
                ..MergeOptions::default()
            },
        )
        .await;
    assert_eq!(
        merged,
        Ok(MergeResult {
            target: "main".into(),
            added: 30_000,
            removed: 1
        })
    );
    assert_eq!(w.repo.merged().len(), 1);
    assert!(
        w.coordinator.list_tasks().await.unwrap().is_empty(),
        "cleaned up after the merge"
    );
}

#[tokio::test(start_paused = true)]
async fn a_conflicting_merge_is_an_error_and_keeps_the_task() {
    let w = world();
    let root = Path::new("/repo");
    w.repo.edit(root, "src/main.rs", "fn main() {}\n").unwrap();
    w.repo.commit(root).unwrap();
    let task = w.coordinator.create_task(request("t", None)).await.unwrap();
    let agent = w.pty.spawned()[0].agent;
    w.pty.print(agent, "❯ ".as_bytes()).await.unwrap();
    pause(100).await;
    // The agent and the user change src/main.rs each their own way (the agent's change is left
    // for the merge's auto-commit).
    w.repo
        .edit(&task.worktree, "src/main.rs", "fn main() { agent() }\n")
        .unwrap();
    w.repo
        .edit(root, "src/main.rs", "fn main() { user() }\n")
        .unwrap();
    w.repo.commit(root).unwrap();
    let error = w
        .coordinator
        .merge_task(
            task.id,
            MergeOptions {
                cleanup: true,
                ..MergeOptions::default()
            },
        )
        .await;
    assert_eq!(
        error,
        Err(EngineError::Conflict(
            "Merge failed: conflicts in src/main.rs".into()
        ))
    );
    assert_eq!(w.coordinator.list_tasks().await.unwrap().len(), 1);
    assert_eq!(
        w.repo.tree(root, "main").unwrap()["src/main.rs"],
        "fn main() { user() }\n",
        "main is as the user left it"
    );
}

#[tokio::test(start_paused = true)]
async fn closing_a_task_kills_its_agent_and_removes_everything() {
    let mut w = world();
    let task = w.coordinator.create_task(request("t", None)).await.unwrap();
    let agent = w.pty.spawned()[0].agent;
    let _ = w.events.recv().await;
    w.coordinator.close_task(task.id).await.unwrap();
    assert!(!w.pty.is_alive(agent));
    assert!(w.repo.worktrees(Path::new("/repo")).is_empty());
    assert_eq!(w.repo.branches(Path::new("/repo")), ["main"]);
    assert!(w.files.paths().is_empty());
    assert!(w.coordinator.list_tasks().await.unwrap().is_empty());
    assert_eq!(w.events.recv().await, Some(AppEvent::TaskClosed(task.id)));
}

#[tokio::test(start_paused = true)]
async fn a_failed_close_is_reported_as_a_failure_and_can_be_retried() {
    let mut w = world();
    let task = w.coordinator.create_task(request("t", None)).await.unwrap();
    let _ = w.events.recv().await;
    w.repo.make_stuck(&task.worktree);
    let error = w.coordinator.close_task(task.id).await.unwrap_err();
    assert!(error.to_string().starts_with("cleanup failed:"), "{error}");
    assert!(
        matches!(w.events.recv().await, Some(AppEvent::CleanupFailed { task: id, .. }) if id == task.id)
    );
    assert_eq!(
        w.coordinator.list_tasks().await.unwrap().len(),
        1,
        "still listed for a retry"
    );
}

#[tokio::test(start_paused = true)]
async fn an_agent_exit_is_seen_by_waits() {
    let w = world();
    let task = w.coordinator.create_task(request("t", None)).await.unwrap();
    let agent = w.pty.spawned()[0].agent;
    w.pty
        .exit(
            agent,
            ExitStatus {
                code: Some(3),
                signal: None,
            },
        )
        .await
        .unwrap();
    pause(1).await;
    assert_eq!(
        w.coordinator.wait_for_idle(task.id, None).await,
        Ok(IdleOutcome::Exited)
    );
    let status = w.coordinator.task_status(task.id).await.unwrap();
    assert_eq!((status.status, status.exit_code), (Status::Exited, Some(3)));
}

#[tokio::test(start_paused = true)]
async fn a_restored_coordinator_answers_with_its_old_tasks_and_tokens() {
    let w = world();
    let task = w.coordinator.create_task(request("t", None)).await.unwrap();
    let config = Path::new("/tmp/baton").join(format!("baton-subtask-{}.json", task.id));
    let token = token_of(&w.files, &config);
    w.coordinator
        .signal_done(task.id, token.clone())
        .await
        .unwrap();
    let records = w.coordinator.records().await.unwrap();
    let (events, _events) = mpsc::channel(super::APP_EVENTS_MAX);
    let mut engine = Engine::new(ports_of(&w), events);
    let restored = engine.restore(CoordinatorId::from_random([7; 16]), settings(), records);
    let listed = restored.list_tasks().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].status,
        Status::Exited,
        "its process died with the old daemon"
    );
    let outcome = restored.wait_for_signal(None, Some(10)).await.unwrap();
    assert!(matches!(outcome, SignalOutcome::Task { task: got, .. } if got == task.id));
    assert_eq!(
        restored.signal_done(task.id, token).await,
        Ok(()),
        "the done token still works"
    );
}

#[tokio::test(start_paused = true)]
async fn registering_twice_returns_the_first_coordinator_and_deregistering_keeps_orphans() {
    let w = world();
    let (events, _events) = mpsc::channel(super::APP_EVENTS_MAX);
    let mut engine = Engine::new(ports_of(&w), events);
    let id = CoordinatorId::from_random([3; 16]);
    let first = engine.register(id, settings());
    first.create_task(request("t", None)).await.unwrap();
    let again = engine.register(id, settings());
    assert_eq!(
        again.list_tasks().await.unwrap().len(),
        1,
        "the same coordinator"
    );
    engine.deregister(id).await.unwrap();
    assert_eq!(
        again.list_tasks().await.unwrap().len(),
        1,
        "its task stays as an orphan"
    );
    let refused = again.create_task(request("late", None)).await.unwrap_err();
    assert_eq!(
        refused,
        EngineError::Core(CoreError::CoordinatorNotFound(id))
    );
    assert_eq!(
        w.pty.spawned().len(),
        1,
        "nothing was made for the refused request"
    );
    assert_eq!(engine.orphans().len(), 1);
    let fresh = engine.register(id, settings());
    assert!(
        fresh.list_tasks().await.unwrap().is_empty(),
        "a new actor for the id"
    );
    fresh.create_task(request("anew", None)).await.unwrap();
    assert_eq!(
        engine.prune_orphans().await,
        0,
        "the orphan still has its task"
    );
    let orphan = engine.orphans()[0].clone();
    let task = orphan.list_tasks().await.unwrap()[0].id;
    orphan.close_task(task).await.unwrap();
    assert_eq!(engine.prune_orphans().await, 1, "nothing left to see");
    assert!(engine.orphans().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_sub_task_from_creation_to_merge_and_close() {
    let mut w = world();
    let task = w
        .coordinator
        .create_task(request("feat-x", Some("Implement feat-x")))
        .await
        .unwrap();
    let agent = w.pty.spawned()[0].agent;
    let config = Path::new("/tmp/baton").join(format!("baton-subtask-{}.json", task.id));
    let token = token_of(&w.files, &config);
    w.coordinator.mcp_connected(task.id).await.unwrap();
    w.pty.print(agent, "❯ ".as_bytes()).await.unwrap();
    pause(200).await;
    assert_eq!(
        w.pty.input(agent),
        assignment_bytes("Implement feat-x"),
        "the assignment went out"
    );
    w.pty
        .print(agent, "✻ Working… (esc to interrupt)\r\n".as_bytes())
        .await
        .unwrap();
    pause(60_000).await;
    w.repo
        .edit(&task.worktree, "src/x.rs", &"fn x() {}\n".repeat(10))
        .unwrap();
    w.repo.commit(&task.worktree).unwrap();
    w.pty
        .print(agent, "\x1b[2K\x1b[1A\x1b[2KDone.\r\n❯ ".as_bytes())
        .await
        .unwrap();
    assert_eq!(
        w.coordinator.wait_for_idle(task.id, Some(1_000)).await,
        Ok(IdleOutcome::Idle)
    );
    w.coordinator.signal_done(task.id, token).await.unwrap();
    let outcome = w
        .coordinator
        .wait_for_signal(None, Some(1_000))
        .await
        .unwrap();
    assert!(
        matches!(outcome, SignalOutcome::Task { remaining: 0, .. }),
        "{outcome:?}"
    );
    assert_eq!(
        w.coordinator.task_diff(task.id).await.unwrap().files.len(),
        1
    );
    let merged = w
        .coordinator
        .merge_task(
            task.id,
            MergeOptions {
                cleanup: true,
                ..MergeOptions::default()
            },
        )
        .await;
    assert_eq!(
        merged,
        Ok(MergeResult {
            target: "main".into(),
            added: 10,
            removed: 0
        })
    );
    assert!(w.coordinator.list_tasks().await.unwrap().is_empty());
    assert!(w.files.paths().is_empty());
    let mut seen = Vec::new();
    while let Ok(event) = w.events.try_recv() {
        seen.push(event);
    }
    assert!(
        matches!(seen.first(), Some(AppEvent::TaskCreated { .. })),
        "{seen:?}"
    );
    assert_eq!(seen.last(), Some(&AppEvent::TaskClosed(task.id)));
}

#[tokio::test(start_paused = true)]
async fn a_task_removed_by_the_app_ends_its_waits_and_loses_its_config_and_preamble() {
    let w = world();
    let task = w.coordinator.create_task(request("t", None)).await.unwrap();
    let waiting = tokio::spawn({
        let coordinator = w.coordinator.clone();
        async move { coordinator.wait_for_idle(task.id, None).await }
    });
    pause(10).await;
    w.coordinator.remove_task(task.id).await.unwrap();
    assert_eq!(waiting.await.unwrap(), Ok(IdleOutcome::Removed));
    pause(10).await;
    assert!(w.files.paths().is_empty());
    assert!(w.coordinator.list_tasks().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn removal_leaves_the_agent_and_worktree_to_the_app_and_closes_nothing() {
    let mut w = world();
    let task = w.coordinator.create_task(request("t", None)).await.unwrap();
    let agent = w.pty.spawned()[0].agent;
    w.coordinator.remove_task(task.id).await.unwrap();
    pause(10).await;
    assert!(w.pty.is_alive(agent));
    assert_eq!(
        w.repo.worktrees(Path::new("/repo")),
        [(task.worktree.clone(), task.branch.clone())]
    );
    let events: Vec<_> = std::iter::from_fn(|| w.events.try_recv().ok()).collect();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, AppEvent::TaskClosed(_) | AppEvent::CleanupFailed { .. })),
        "{events:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_config_that_cannot_be_removed_fails_the_close_and_a_retry_finishes_it() {
    let mut w = world();
    let task = w.coordinator.create_task(request("t", None)).await.unwrap();
    let _ = w.events.recv().await;
    w.files.fail_removes(1);
    let error = w.coordinator.close_task(task.id).await.unwrap_err();
    assert!(error.to_string().starts_with("cleanup failed:"), "{error}");
    assert!(error.to_string().contains("permission denied"), "{error}");
    assert!(
        matches!(w.events.recv().await, Some(AppEvent::CleanupFailed { task: id, .. }) if id == task.id)
    );
    assert_eq!(w.coordinator.list_tasks().await.unwrap().len(), 1);
    assert!(w.repo.worktrees(Path::new("/repo")).is_empty());
    assert_eq!(w.files.paths().len(), 1, "the config is still there");
    w.coordinator.close_task(task.id).await.unwrap();
    assert!(w.files.paths().is_empty());
    assert!(w.coordinator.list_tasks().await.unwrap().is_empty());
    let events: Vec<_> = std::iter::from_fn(|| w.events.try_recv().ok()).collect();
    assert!(
        events.contains(&AppEvent::TaskClosed(task.id)),
        "{events:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_restored_task_refuses_prompts_answers_idle_waits_and_closes() {
    let w = world();
    let task = w.coordinator.create_task(request("t", None)).await.unwrap();
    let records = w.coordinator.records().await.unwrap();
    let (events, _events) = mpsc::channel(super::APP_EVENTS_MAX);
    let mut engine = Engine::new(ports_of(&w), events);
    let restored = engine.restore(CoordinatorId::from_random([8; 16]), settings(), records);
    assert_eq!(
        restored
            .send_prompt(task.id, "more".into())
            .await
            .unwrap_err()
            .to_string(),
        format!("Task {} has exited", task.id)
    );
    assert_eq!(
        restored.wait_for_idle(task.id, None).await,
        Ok(IdleOutcome::Exited)
    );
    restored.close_task(task.id).await.unwrap();
    assert!(w.repo.worktrees(Path::new("/repo")).is_empty());
    assert_eq!(w.repo.branches(Path::new("/repo")), ["main"]);
    assert!(w.files.paths().is_empty());
    assert!(restored.list_tasks().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_first_settings_win_and_a_restored_coordinator_creates_tasks() {
    let w = world();
    let (events, mut events_rx) = mpsc::channel(super::APP_EVENTS_MAX);
    let mut engine = Engine::new(ports_of(&w), events);
    let unknown = CoordinatorId::from_random([4; 16]);
    assert_eq!(engine.deregister(unknown).await, Ok(()));
    assert!(engine.orphans().is_empty());
    let id = CoordinatorId::from_random([5; 16]);
    engine.restore(id, settings(), Records::default());
    let other = CoordinatorSettings {
        project_root: "/elsewhere".into(),
        ..settings()
    };
    let handle = engine.register(id, other);
    let task = handle.create_task(request("t", None)).await.unwrap();
    assert!(task.worktree.starts_with("/repo"), "{:?}", task.worktree);
    assert!(matches!(
        events_rx.recv().await,
        Some(AppEvent::TaskCreated { task: created, .. }) if created.name == "t"
    ));
    assert_eq!(engine.registered().collect::<Vec<_>>(), [id]);
    engine.deregister(id).await.unwrap();
    assert!(engine.coordinator(id).is_none());
    assert_eq!(engine.registered().count(), 0, "no coordinator is active");
}

#[tokio::test(start_paused = true)]
async fn spawn_defaults_and_skip_permissions_reach_the_agent() {
    let w = world();
    let (events, _events) = mpsc::channel(super::APP_EVENTS_MAX);
    let coordinator = spawn_coordinator(
        ports_of(&w),
        CoordinatorId::from_random([6; 16]),
        CoordinatorSettings {
            spawn: SpawnDefaults {
                command: "/usr/local/bin/claude".into(),
                args: vec!["--model".into(), "claude-opus-4-7".into()],
            },
            skip_permissions: true,
            ..settings()
        },
        events,
        AgentFeed::new(),
    );
    coordinator.create_task(request("t", None)).await.unwrap();
    let argv = &w.pty.spawned()[0].argv;
    assert_eq!(argv[0], "/usr/local/bin/claude");
    assert!(
        argv.windows(2).any(|w| w == ["--model", "claude-opus-4-7"]),
        "{argv:?}"
    );
    assert!(
        argv.iter().any(|a| a == "--dangerously-skip-permissions"),
        "{argv:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_close_of_a_task_being_closed_hears_how_that_close_ends() {
    let w = world();
    let task = w.coordinator.create_task(request("t", None)).await.unwrap();
    w.repo.slow_removals(Duration::from_millis(1_000));
    let first = tokio::spawn({
        let coordinator = w.coordinator.clone();
        async move { coordinator.close_task(task.id).await }
    });
    pause(10).await;
    let second = tokio::spawn({
        let coordinator = w.coordinator.clone();
        async move { coordinator.close_task(task.id).await }
    });
    pause(10).await;
    assert!(!second.is_finished(), "it waits for the close under way");
    assert_eq!(first.await.unwrap(), Ok(()));
    assert_eq!(second.await.unwrap(), Ok(()), "and hears it ended well");
    assert!(w.coordinator.list_tasks().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_blocked_wait_learns_of_the_exit_a_failed_slow_close_caused() {
    let w = world();
    let task = w.coordinator.create_task(request("t", None)).await.unwrap();
    let waiting = tokio::spawn({
        let coordinator = w.coordinator.clone();
        async move { coordinator.wait_for_signal(None, None).await }
    });
    pause(10).await;
    w.repo.slow_removals(Duration::from_millis(1_000));
    w.repo.make_stuck(&task.worktree);
    let error = w.coordinator.close_task(task.id).await.unwrap_err();
    assert!(error.to_string().starts_with("cleanup failed:"), "{error}");
    let outcome = waiting.await.unwrap().unwrap();
    assert!(
        matches!(outcome, SignalOutcome::Task { task: got, status: Status::Exited, .. } if got == task.id),
        "{outcome:?}"
    );
    w.repo.unstick(&task.worktree);
    w.coordinator.close_task(task.id).await.unwrap();
    assert!(w.coordinator.list_tasks().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_orphan_let_go_while_a_task_is_made_still_rolls_it_back() {
    let w = world();
    let (events, _events) = mpsc::channel(super::APP_EVENTS_MAX);
    let mut engine = Engine::new(ports_of(&w), events);
    let id = CoordinatorId::from_random([12; 16]);
    let handle = engine.register(id, settings());
    w.repo.slow_worktrees(Duration::from_millis(1_000));
    let creating = tokio::spawn(async move { handle.create_task(request("t", None)).await });
    pause(10).await;
    creating.abort();
    engine.deregister(id).await.unwrap();
    assert_eq!(engine.prune_orphans().await, 1, "no task listed yet");
    pause(2_000).await;
    assert!(w.repo.worktrees(Path::new("/repo")).is_empty());
    assert_eq!(w.repo.branches(Path::new("/repo")), ["main"]);
    assert!(w.files.paths().is_empty());
    assert!(w.pty.spawned().iter().all(|s| !w.pty.is_alive(s.agent)));
}

#[tokio::test(start_paused = true)]
async fn a_base_branch_is_forked_from_and_merged_into() {
    let w = world();
    let base = w
        .coordinator
        .create_task(request("base", None))
        .await
        .unwrap();
    let child = w
        .coordinator
        .create_task(CreateTask {
            base_branch: Some(base.branch.clone()),
            ..request("child", None)
        })
        .await
        .unwrap();
    let agent = w.pty.spawned()[1].agent;
    w.pty.print(agent, "❯ ".as_bytes()).await.unwrap();
    pause(3_000).await;
    let merged = w
        .coordinator
        .merge_task(child.id, MergeOptions::default())
        .await
        .unwrap();
    assert_eq!(merged.target, base.branch);
    assert_eq!(w.repo.merged()[0].target, base.branch);
    assert_eq!(w.repo.merged()[0].branch, child.branch);
}

#[tokio::test(start_paused = true)]
async fn each_config_names_its_own_task_and_the_sub_task_role() {
    let w = world();
    let a = w.coordinator.create_task(request("a", None)).await.unwrap();
    let b = w.coordinator.create_task(request("b", None)).await.unwrap();
    let coordinator = CoordinatorId::from_random([7; 16]).to_string();
    for task in [&a, &b] {
        let path = Path::new("/tmp/baton").join(format!("baton-subtask-{}.json", task.id));
        let config: serde_json::Value =
            serde_json::from_slice(&w.files.get(&path).unwrap().bytes).unwrap();
        let args: Vec<&str> = config["mcpServers"]["baton"]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|arg| arg.as_str().unwrap())
            .collect();
        let id = task.id.to_string();
        assert!(
            args.windows(2)
                .any(|pair| pair == ["--task-id", id.as_str()]),
            "{args:?}"
        );
        assert!(
            !args.contains(&"--coordinator-id") && !args.contains(&coordinator.as_str()),
            "a sub-task's server has the sub-task role: {args:?}"
        );
        assert!(
            args.windows(2)
                .any(|pair| pair == ["--url", "http://127.0.0.1:7777"]),
            "{args:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn an_exited_agent_is_started_again_in_its_worktree_with_its_command_line() {
    use crate::core::coordinator::CoreError;
    use crate::ports::ExitStatus;
    let w = world();
    let task = w.coordinator.create_task(request("t", None)).await.unwrap();
    let first = w.pty.spawned()[0].clone();
    let refused = w.coordinator.respawn(task.id).await.unwrap_err();
    assert!(
        matches!(refused, EngineError::Core(CoreError::NotRespawnable(_))),
        "a running agent is not started twice: {refused:?}"
    );
    let exited = ExitStatus {
        code: Some(1),
        signal: None,
    };
    w.pty.exit(first.agent, exited).await.unwrap();
    pause(10).await;
    assert_eq!(
        w.coordinator.task_status(task.id).await.unwrap().status,
        Status::Exited
    );
    let again = w.coordinator.respawn(task.id).await.unwrap();
    assert_eq!((again.status, again.exit_code), (Status::Running, None));
    let second = w.pty.spawned()[1].clone();
    assert_eq!(again.agent, second.agent, "a new session");
    assert_ne!(second.agent, first.agent);
    assert_eq!((&second.argv, &second.cwd), (&first.argv, &first.cwd));
    // The new session is the task's: its prompt makes the task idle, its prompts reach it.
    w.pty.print(second.agent, "❯ ".as_bytes()).await.unwrap();
    pause(100).await;
    assert_eq!(
        w.coordinator.task_status(task.id).await.unwrap().status,
        Status::Idle
    );
    w.coordinator
        .send_prompt(task.id, "go on".into())
        .await
        .unwrap();
    assert_eq!(w.pty.input(second.agent), b"go on\r");
    let missing = crate::core::ids::TaskId(crate::core::ids::Uuid::from_random([7; 16]));
    assert!(matches!(
        w.coordinator.respawn(missing).await,
        Err(EngineError::Core(CoreError::TaskNotFound(_)))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_lost_enter_is_pressed_again_until_the_agent_shows_it_took_the_prompt() {
    use crate::core::coordinator::{ENTER_RETRIES_MAX, ENTER_RETRY_MS};
    let w = world();
    let task = w.coordinator.create_task(request("t", None)).await.unwrap();
    let agent = w.pty.spawned()[0].agent;
    w.pty.print(agent, "❯ ".as_bytes()).await.unwrap();
    pause(100).await;
    w.coordinator
        .send_prompt(task.id, "go".into())
        .await
        .unwrap();
    // The prompt is typed, Enter included, when send_prompt answers.
    pause(ENTER_RETRY_MS - 10).await;
    assert_eq!(w.pty.input(agent), b"go\r", "the agent has its moment");
    pause(20).await;
    assert_eq!(
        w.pty.input(agent),
        b"go\r\r",
        "it showed nothing: Enter again"
    );
    w.pty
        .print(agent, "\x1b[2J✻ Working (esc to interrupt)".as_bytes())
        .await
        .unwrap();
    pause(10 * ENTER_RETRY_MS).await;
    assert_eq!(w.pty.input(agent), b"go\r\r", "it took the prompt: no more");
    // An agent that never reacts gets at most the retries.
    let other = w.coordinator.create_task(request("u", None)).await.unwrap();
    let silent = w.pty.spawned()[1].agent;
    w.pty.print(silent, "❯ ".as_bytes()).await.unwrap();
    pause(100).await;
    w.coordinator
        .send_prompt(other.id, "go".into())
        .await
        .unwrap();
    pause(10 * ENTER_RETRY_MS).await;
    let enters = w.pty.input(silent).iter().filter(|&&b| b == b'\r').count();
    assert_eq!(enters, 1 + usize::from(ENTER_RETRIES_MAX));
}

#[tokio::test(start_paused = true)]
async fn a_prompt_whose_text_could_not_be_written_fails_and_is_typed_at_the_next_prompt() {
    let w = world();
    let task = w.coordinator.create_task(request("t", None)).await.unwrap();
    let agent = w.pty.spawned()[0].agent;
    w.pty.script_writes(&[true]);
    let error = w
        .coordinator
        .send_prompt(task.id, "again".into())
        .await
        .unwrap_err();
    assert!(matches!(error, EngineError::Io(_)), "{error:?}");
    assert!(w.pty.input(agent).is_empty());
    pause(2_000).await;
    w.pty.print(agent, "\x1b[2J❯ ".as_bytes()).await.unwrap();
    pause(300).await;
    w.pty
        .print(agent, "\x1b[2J✻ Working (esc to interrupt)".as_bytes())
        .await
        .unwrap();
    pause(2_700).await;
    assert_eq!(w.pty.input(agent), b"again\r");
}

#[tokio::test(start_paused = true)]
async fn task_output_is_the_agents_recent_output_as_plain_text() {
    let w = world();
    let task = w.coordinator.create_task(request("t", None)).await.unwrap();
    let agent = w.pty.spawned()[0].agent;
    w.pty
        .print(
            agent,
            "\x1b[1mcargo test\x1b[0m\r\n\x1b[32mok\x1b[0m: 48 passed\r\n".as_bytes(),
        )
        .await
        .unwrap();
    pause(1).await;
    assert_eq!(
        w.coordinator.task_output(task.id).await.unwrap(),
        "cargo test\nok: 48 passed\n"
    );
}

#[tokio::test(start_paused = true)]
async fn review_and_merge_returns_the_diff_taken_before_the_merge() {
    let w = world();
    let task = w.coordinator.create_task(request("t", None)).await.unwrap();
    let agent = w.pty.spawned()[0].agent;
    w.repo.edit(&task.worktree, "notes.txt", "line\n").unwrap();
    w.pty.print(agent, "❯ ".as_bytes()).await.unwrap();
    pause(100).await;
    let (diff, merged) = w
        .coordinator
        .review_and_merge(task.id, true, Some("feat: t".into()))
        .await
        .unwrap();
    assert_eq!(
        diff.text,
        "diff --git a/notes.txt b/notes.txt\n--- /dev/null\n+++ b/notes.txt\n\
         @@ -1,0 +1,1 @@\n+line\n"
    );
    assert_eq!(merged.target, "main");
    assert!(w.repo.merged()[0].squash);
    assert!(w.coordinator.list_tasks().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_coordinator_deregistered_while_a_task_is_being_made_leaves_nothing_behind() {
    let w = world();
    w.repo.slow_worktrees(Duration::from_millis(1_000));
    let creating = tokio::spawn({
        let coordinator = w.coordinator.clone();
        async move { coordinator.create_task(request("raced", None)).await }
    });
    pause(10).await;
    w.coordinator.deregister().await.unwrap();
    let error = creating.await.unwrap().unwrap_err();
    assert_eq!(
        error,
        EngineError::Core(CoreError::CoordinatorNotFound(CoordinatorId::from_random(
            [7; 16]
        )))
    );
    pause(10).await;
    assert!(w.coordinator.list_tasks().await.unwrap().is_empty());
    assert!(
        w.repo.worktrees(Path::new("/repo")).is_empty(),
        "rolled back"
    );
    assert_eq!(w.repo.branches(Path::new("/repo")), ["main"]);
    assert!(w.files.paths().is_empty());
    let agent = w.pty.spawned()[0].agent;
    assert!(!w.pty.is_alive(agent), "its agent was killed");
}

/// Reference catalogue §9.1 through the engine: F (wait_for_idle), H and Q (send_prompt and
/// control, with Baton's queueing), I and R (deregistration, signal waits vs notifications), S, Z
/// and AE (cleanup).
mod catalogue {
    use std::path::Path;

    use super::{
        AppEvent, CoreError, EngineError, IdleOutcome, Sent, pause, request, token_of, world,
    };
    use crate::core::coordinator::{Control, SignalOutcome, StateChange};
    use crate::core::ids::TaskId;
    use crate::core::notify::{Notice, RESTAGE_MS};
    use crate::ports::ExitStatus;

    fn drain(w: &mut super::World) -> Vec<AppEvent> {
        std::iter::from_fn(|| w.events.try_recv().ok()).collect()
    }

    fn staged_count(events: &[AppEvent]) -> usize {
        events
            .iter()
            .filter(|e| matches!(e, AppEvent::Notice(_, Notice::Staged(_))))
            .count()
    }

    #[tokio::test(start_paused = true)]
    async fn b9_an_acked_batch_is_not_staged_again_and_a_dropped_one_needs_review() {
        let mut w = world();
        let a = w.coordinator.create_task(request("a", None)).await.unwrap();
        let b = w.coordinator.create_task(request("b", None)).await.unwrap();
        let agents: Vec<_> = w.pty.spawned().iter().map(|s| s.agent).collect();
        drain(&mut w);
        let exited = ExitStatus {
            code: Some(0),
            signal: None,
        };
        w.pty.exit(agents[0], exited).await.unwrap();
        pause(10).await;
        let batch = drain(&mut w)
            .into_iter()
            .find_map(|e| match e {
                AppEvent::Notice(_, Notice::Staged(staged)) => Some(staged.batch),
                _ => None,
            })
            .expect("a's exit is staged");
        w.coordinator.ack_notification(batch).await.unwrap();
        pause(RESTAGE_MS + 1_000).await;
        assert_eq!(staged_count(&drain(&mut w)), 0, "acknowledged: not again");
        w.pty.exit(agents[1], exited).await.unwrap();
        pause(10).await;
        let batch = drain(&mut w)
            .into_iter()
            .find_map(|e| match e {
                AppEvent::Notice(_, Notice::Staged(staged)) => Some(staged.batch),
                _ => None,
            })
            .expect("b's exit is staged");
        w.coordinator.drop_notification(batch).await.unwrap();
        pause(10).await;
        let events = drain(&mut w);
        assert!(
            events.contains(&AppEvent::State(b.id, StateChange::NeedsReview)),
            "{events:?}"
        );
        assert!(!events.contains(&AppEvent::State(a.id, StateChange::NeedsReview)));
    }

    #[tokio::test(start_paused = true)]
    async fn f33_f38_f39_idle_waits_for_unknown_exited_and_returned_tasks() {
        let w = world();
        let unknown = TaskId::from_random([66; 16]);
        assert_eq!(
            w.coordinator.wait_for_idle(unknown, None).await,
            Err(EngineError::Core(CoreError::TaskNotFound(unknown)))
        );
        let task = w.coordinator.create_task(request("t", None)).await.unwrap();
        let agent = w.pty.spawned()[0].agent;
        let waiting = tokio::spawn({
            let c = w.coordinator.clone();
            async move { c.wait_for_idle(task.id, None).await }
        });
        pause(10).await;
        w.pty
            .exit(
                agent,
                crate::ports::ExitStatus {
                    code: Some(0),
                    signal: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(waiting.await.unwrap(), Ok(IdleOutcome::Exited));
    }

    #[tokio::test(start_paused = true)]
    async fn h47_h51_sending_resets_the_signal_once_typed() {
        let mut w = world();
        let unknown = TaskId::from_random([66; 16]);
        assert_eq!(
            w.coordinator.send_prompt(unknown, "x".into()).await,
            Err(EngineError::Core(CoreError::TaskNotFound(unknown)))
        );
        let task = w.coordinator.create_task(request("t", None)).await.unwrap();
        let config = Path::new("/tmp/baton").join(format!("baton-subtask-{}.json", task.id));
        w.coordinator
            .signal_done(task.id, token_of(&w.files, &config))
            .await
            .unwrap();
        drain(&mut w);
        assert_eq!(
            w.coordinator.send_prompt(task.id, "new work".into()).await,
            Ok(Sent::Typed)
        );
        pause(10).await;
        let events = drain(&mut w);
        assert!(
            events.contains(&AppEvent::State(task.id, StateChange::SignalReset)),
            "{events:?}"
        );
        assert_eq!(
            w.coordinator
                .task_status(task.id)
                .await
                .unwrap()
                .signalled_at,
            None
        );
    }

    #[tokio::test(start_paused = true)]
    async fn q79_q80_human_control_answers_waits_and_holds_prompts_until_release() {
        let w = world();
        let task = w.coordinator.create_task(request("t", None)).await.unwrap();
        w.coordinator
            .set_control(task.id, Control::Human)
            .await
            .unwrap();
        assert_eq!(
            w.coordinator.wait_for_idle(task.id, None).await,
            Ok(IdleOutcome::HumanControl)
        );
        assert_eq!(
            w.coordinator.send_prompt(task.id, "held".into()).await,
            Ok(Sent::Queued)
        );
        w.coordinator
            .set_control(task.id, Control::Coordinator)
            .await
            .unwrap();
        assert_eq!(
            w.coordinator.send_prompt(task.id, "after".into()).await,
            Ok(Sent::Queued),
            "behind the held one"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn i54_deregistering_clears_staged_notifications_and_r85_orphans_are_reported() {
        let mut w = world();
        let task = w
            .coordinator
            .create_task(request("t", Some("go")))
            .await
            .unwrap();
        let agent = w.pty.spawned()[0].agent;
        w.coordinator.mcp_connected(task.id).await.unwrap();
        w.pty.print(agent, "❯ ".as_bytes()).await.unwrap();
        pause(200).await;
        w.pty
            .print(agent, "\x1b[2J✻ Working (esc to interrupt)".as_bytes())
            .await
            .unwrap();
        pause(2_500).await;
        w.pty
            .print(agent, "\x1b[2JDone\r\n❯ ".as_bytes())
            .await
            .unwrap();
        pause(100).await;
        assert_eq!(staged_count(&drain(&mut w)), 1);
        w.coordinator.deregister().await.unwrap();
        let events = drain(&mut w);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, AppEvent::Notice(_, Notice::Cleared))),
            "{events:?}"
        );
        assert!(events.contains(&AppEvent::State(
            task.id,
            StateChange::Orphaned { needs_review: true }
        )));
        w.pty
            .exit(
                agent,
                crate::ports::ExitStatus {
                    code: Some(0),
                    signal: None,
                },
            )
            .await
            .unwrap();
        pause(10).await;
        let events = drain(&mut w);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, AppEvent::Orphaned { task: t, .. } if *t == task.id)),
            "{events:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn r83_an_exit_during_a_signal_wait_is_told_by_the_wait_only() {
        let mut w = world();
        let task = w.coordinator.create_task(request("t", None)).await.unwrap();
        let agent = w.pty.spawned()[0].agent;
        drain(&mut w);
        let waiting = tokio::spawn({
            let c = w.coordinator.clone();
            async move { c.wait_for_signal(None, Some(5_000)).await }
        });
        pause(10).await;
        w.pty
            .exit(
                agent,
                crate::ports::ExitStatus {
                    code: Some(0),
                    signal: None,
                },
            )
            .await
            .unwrap();
        let outcome = waiting.await.unwrap().unwrap();
        assert!(
            matches!(outcome, SignalOutcome::Task { task: t, .. } if t == task.id),
            "{outcome:?}"
        );
        pause(10).await;
        assert_eq!(staged_count(&drain(&mut w)), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn r84_a_timed_out_wait_lets_the_held_notification_be_staged_once() {
        let mut w = world();
        let task = w.coordinator.create_task(request("t", None)).await.unwrap();
        let agent = w.pty.spawned()[0].agent;
        w.coordinator
            .send_prompt(task.id, "go".into())
            .await
            .unwrap();
        pause(10).await;
        let waiting = tokio::spawn({
            let c = w.coordinator.clone();
            async move { c.wait_for_signal(None, Some(3_000)).await }
        });
        pause(10).await;
        w.pty
            .print(agent, "\x1b[2J✻ Working (esc to interrupt)".as_bytes())
            .await
            .unwrap();
        pause(100).await;
        w.pty
            .print(agent, "\x1b[2JDone\r\n❯ ".as_bytes())
            .await
            .unwrap();
        pause(100).await;
        assert_eq!(
            staged_count(&drain(&mut w)),
            0,
            "held while the wait blocks"
        );
        assert!(matches!(
            waiting.await.unwrap(),
            Ok(SignalOutcome::TimedOut { .. })
        ));
        pause(10).await;
        assert_eq!(
            staged_count(&drain(&mut w)),
            1,
            "staged once the wait ended"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn ae128_closing_one_task_touches_only_its_own_files() {
        let w = world();
        let first = w
            .coordinator
            .create_task(request("one", None))
            .await
            .unwrap();
        let second = w
            .coordinator
            .create_task(request("two", None))
            .await
            .unwrap();
        w.coordinator.close_task(first.id).await.unwrap();
        let second_config =
            Path::new("/tmp/baton").join(format!("baton-subtask-{}.json", second.id));
        assert_eq!(w.files.paths(), [second_config]);
        let listed = w.coordinator.list_tasks().await.unwrap();
        assert_eq!(listed.iter().map(|t| t.id).collect::<Vec<_>>(), [second.id]);
        let agents: Vec<_> = w.pty.spawned().iter().map(|s| s.agent).collect();
        assert!(!w.pty.is_alive(agents[0]) && w.pty.is_alive(agents[1]));
    }

    #[tokio::test(start_paused = true)]
    async fn s86_a_failed_cleanup_can_be_retried_once_the_cause_is_gone() {
        let w = world();
        let task = w.coordinator.create_task(request("t", None)).await.unwrap();
        w.repo.make_stuck(&task.worktree);
        assert!(w.coordinator.close_task(task.id).await.is_err());
        w.repo.unstick(&task.worktree);
        w.coordinator.close_task(task.id).await.unwrap();
        assert!(w.coordinator.list_tasks().await.unwrap().is_empty());
        assert!(w.files.paths().is_empty());
    }
}

/// Reference catalogue §9.2: short sequences through the engine.
mod sequences {
    use super::{EngineError, IdleOutcome, MergeOptions, Sent, pause, request, world};
    use crate::core::coordinator::Status;

    #[tokio::test(start_paused = true)]
    async fn s3_idle_then_prompted_then_idle_again() {
        let w = world();
        let task = w.coordinator.create_task(request("t", None)).await.unwrap();
        let agent = w.pty.spawned()[0].agent;
        w.pty.print(agent, "Done\r\n❯ ".as_bytes()).await.unwrap();
        assert_eq!(
            w.coordinator.wait_for_idle(task.id, Some(1_000)).await,
            Ok(IdleOutcome::Idle)
        );
        assert_eq!(
            w.coordinator.send_prompt(task.id, "next step".into()).await,
            Ok(Sent::Typed)
        );
        assert_eq!(
            w.coordinator.task_status(task.id).await.unwrap().status,
            Status::Running
        );
        w.pty
            .print(agent, "\x1b[2J✻ Working (esc to interrupt)".as_bytes())
            .await
            .unwrap();
        pause(100).await;
        w.pty
            .print(agent, "\x1b[2JReady\r\n❯ ".as_bytes())
            .await
            .unwrap();
        assert_eq!(
            w.coordinator.wait_for_idle(task.id, Some(1_000)).await,
            Ok(IdleOutcome::Idle)
        );
        assert_eq!(
            w.coordinator.task_status(task.id).await.unwrap().status,
            Status::Idle
        );
    }

    #[tokio::test(start_paused = true)]
    async fn s4_merging_an_idle_task_calls_the_repository() {
        let w = world();
        let task = w.coordinator.create_task(request("t", None)).await.unwrap();
        let agent = w.pty.spawned()[0].agent;
        w.pty.print(agent, "❯ ".as_bytes()).await.unwrap();
        pause(100).await;
        w.coordinator
            .merge_task(task.id, MergeOptions::default())
            .await
            .unwrap();
        let merged = w.repo.merged();
        assert_eq!(
            (
                merged.len(),
                merged[0].branch.as_str(),
                merged[0].target.as_str()
            ),
            (1, task.branch.as_str(), "main")
        );
        assert_eq!(
            w.coordinator.list_tasks().await.unwrap().len(),
            1,
            "no cleanup asked"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn s6_s7_unknown_tasks_and_gone_coordinators_are_refused() {
        let w = world();
        let unknown = crate::core::ids::TaskId::from_random([1; 16]);
        let error = w
            .coordinator
            .send_prompt(unknown, "x".into())
            .await
            .unwrap_err();
        assert!(error.to_string().contains("not found"), "{error}");
        w.coordinator.deregister().await.unwrap();
        let error = w
            .coordinator
            .wait_for_signal(None, Some(100))
            .await
            .unwrap_err();
        assert!(
            matches!(error, EngineError::Core(_))
                && error.to_string().starts_with("Coordinator not found"),
            "{error}"
        );
    }
}

/// Reference catalogue §9.3 (variant F) through the engine, where it matches our decisions:
/// engine-owned delivery of assignments and queued prompts.
mod variant_f {
    use super::{AppEvent, assignment_bytes, pause, request, world};
    use crate::core::coordinator::Control;
    use crate::core::notify::Notice;

    /// Creates a task with `prompt` whose MCP server connected; returns it and its agent.
    async fn assigned(
        w: &super::World,
        prompt: &str,
    ) -> (crate::core::ids::TaskId, crate::core::ids::AgentId) {
        let task = w
            .coordinator
            .create_task(request("t", Some(prompt)))
            .await
            .unwrap();
        let agent = w.pty.spawned().last().unwrap().agent;
        w.coordinator.mcp_connected(task.id).await.unwrap();
        (task.id, agent)
    }

    #[tokio::test(start_paused = true)]
    async fn f24_control_flipped_twice_before_readiness_types_the_assignment_once() {
        let w = world();
        let (task, agent) = assigned(&w, "do one").await;
        for control in [
            Control::Human,
            Control::Coordinator,
            Control::Human,
            Control::Coordinator,
        ] {
            w.coordinator.set_control(task, control).await.unwrap();
        }
        w.pty.print(agent, "❯ ".as_bytes()).await.unwrap();
        pause(200).await;
        w.pty
            .print(agent, "\x1b[2J✻ Working (esc to interrupt)".as_bytes())
            .await
            .unwrap();
        pause(10).await;
        w.pty.print(agent, "\x1b[2J❯ ".as_bytes()).await.unwrap();
        pause(3_000).await;
        assert_eq!(w.pty.input(agent), assignment_bytes("do one"));
    }

    #[tokio::test(start_paused = true)]
    async fn f3_an_assignment_whose_text_could_not_be_written_is_typed_at_the_next_prompt() {
        let w = world();
        let (_, agent) = assigned(&w, "do one").await;
        w.pty.script_writes(&[true]);
        w.pty.print(agent, "❯ ".as_bytes()).await.unwrap();
        pause(200).await;
        assert!(w.pty.input(agent).is_empty(), "the first write failed");
        // The failed attempt raised the echo guard: the next prompt counts once it is over.
        pause(2_000).await;
        w.pty.print(agent, "\x1b[2J❯ ".as_bytes()).await.unwrap();
        pause(200).await;
        assert_eq!(
            w.pty.input(agent),
            assignment_bytes("do one"),
            "typed once, whole, at the next prompt"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn f4_a_failed_enter_is_not_followed_by_the_text_again() {
        let w = world();
        let (_, agent) = assigned(&w, "do one").await;
        w.pty.script_writes(&[false, true]);
        w.pty.print(agent, "❯ ".as_bytes()).await.unwrap();
        pause(200).await;
        w.pty.print(agent, "\x1b[2J❯ ".as_bytes()).await.unwrap();
        pause(3_000).await;
        assert_eq!(
            w.pty.input(agent),
            crate::agents::prompts::sub_task("do one")
                .replace('\n', " ")
                .as_bytes(),
            "the body once; the Enter that failed is not retried with it"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn f5_each_of_three_tasks_gets_its_own_assignment() {
        let w = world();
        let mut agents = Vec::new();
        for prompt in ["one", "two", "three"] {
            agents.push((assigned(&w, prompt).await.1, prompt));
        }
        for (agent, _) in &agents {
            w.pty.print(*agent, "❯ ".as_bytes()).await.unwrap();
        }
        pause(200).await;
        for (agent, prompt) in agents {
            assert_eq!(w.pty.input(agent), assignment_bytes(prompt));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn f21_human_control_before_delivery_holds_the_assignment_decision_humans_first() {
        let w = world();
        let (task, agent) = assigned(&w, "do one").await;
        w.coordinator
            .set_control(task, Control::Human)
            .await
            .unwrap();
        w.pty.print(agent, "❯ ".as_bytes()).await.unwrap();
        pause(5_000).await;
        assert!(w.pty.input(agent).is_empty(), "the human has the terminal");
        w.coordinator
            .set_control(task, Control::Coordinator)
            .await
            .unwrap();
        pause(200).await;
        assert_eq!(w.pty.input(agent), assignment_bytes("do one"));
    }

    #[tokio::test(start_paused = true)]
    async fn f23_the_echo_and_the_redrawn_prompt_right_after_delivery_are_not_idle() {
        let mut w = world();
        let (_, agent) = assigned(&w, "do one").await;
        w.pty.print(agent, "❯ ".as_bytes()).await.unwrap();
        pause(200).await;
        w.pty
            .print(agent, "\x1b[2J[SUB-TASK MODE] do one\r\n❯ ".as_bytes())
            .await
            .unwrap();
        pause(1_000).await;
        let staged = |events: &[AppEvent]| {
            events
                .iter()
                .any(|e| matches!(e, AppEvent::Notice(_, Notice::Staged(_))))
        };
        let events: Vec<_> = std::iter::from_fn(|| w.events.try_recv().ok()).collect();
        assert!(!staged(&events), "{events:?}");
        pause(1_100).await;
        w.pty
            .print(agent, "\x1b[2JWorking... (esc to interrupt)\r\n".as_bytes())
            .await
            .unwrap();
        pause(100).await;
        w.pty
            .print(agent, "\x1b[2JDone ❯\r\n❯ ".as_bytes())
            .await
            .unwrap();
        pause(100).await;
        let events: Vec<_> = std::iter::from_fn(|| w.events.try_recv().ok()).collect();
        assert!(staged(&events), "{events:?}");
    }
}

mod viewers {
    //! Live viewers of agents' terminals: the scrollback and the registration in one step,
    //! output fanned out without waiting, a slow viewer dropped, terminal input scoped to the
    //! coordinator's own agents, and the feed told what changed.

    use std::sync::Arc;

    use super::{AgentEvent, EngineError, Status, pause, request, viewer, world};
    use crate::core::ids::AgentId;
    use crate::engine::{AGENT_COLS, OUTPUT_COALESCE_BYTES_MAX, TerminalInput, Watched};
    use crate::ports::ExitStatus;

    #[tokio::test(start_paused = true)]
    async fn a_viewer_gets_the_scrollback_then_every_later_byte_once() {
        let w = world();
        let task = w.coordinator.create_task(request("a", None)).await.unwrap();
        w.pty.print(task.agent, b"before ").await.unwrap();
        pause(10).await;
        let (viewer, mut rx) = viewer(1, 8);
        let watching = w.coordinator.watch(task.agent, viewer).await.unwrap();
        assert_eq!(watching.scrollback, b"before ");
        assert_eq!(watching.cols, AGENT_COLS);
        w.pty.print(task.agent, b"after").await.unwrap();
        pause(10).await;
        assert_eq!(
            rx.try_recv().unwrap(),
            Watched::Output(task.agent, Arc::from(&b"after"[..]))
        );
        assert!(rx.try_recv().is_err());
        w.coordinator.unwatch(task.agent, 1).await.unwrap();
        w.pty.print(task.agent, b"unseen").await.unwrap();
        pause(10).await;
        assert!(rx.try_recv().is_err(), "nothing after unwatch");
    }

    #[tokio::test(start_paused = true)]
    async fn output_waiting_together_reaches_viewers_joined_up_to_the_bound_then_the_exit() {
        let w = world();
        let task = w.coordinator.create_task(request("a", None)).await.unwrap();
        let (viewer, mut rx) = viewer(1, 16);
        w.coordinator.watch(task.agent, viewer).await.unwrap();
        // Forty 4 KiB chunks and the exit, all waiting before the pump runs.
        let chunk = vec![b'x'; 4 * 1024];
        for _ in 0..40 {
            w.pty.print(task.agent, &chunk).await.unwrap();
        }
        let exited = ExitStatus {
            code: Some(0),
            signal: None,
        };
        w.pty.exit(task.agent, exited).await.unwrap();
        pause(10).await;
        let mut sizes = Vec::new();
        loop {
            match rx.try_recv().unwrap() {
                Watched::Output(_, bytes) => sizes.push(bytes.len()),
                Watched::Exited(_, code) => {
                    assert_eq!(code, Some(0));
                    break;
                }
            }
        }
        assert_eq!(
            sizes.iter().sum::<usize>(),
            40 * 4 * 1024,
            "every byte, once"
        );
        assert!(
            sizes.iter().all(|n| *n <= OUTPUT_COALESCE_BYTES_MAX),
            "{sizes:?}"
        );
        assert!(sizes.len() < 40, "joined: {sizes:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_exit_ends_the_watch_and_is_told_to_viewer_and_feed() {
        let w = world();
        let mut feed = w.feed.subscribe();
        let task = w.coordinator.create_task(request("a", None)).await.unwrap();
        let (viewer, mut rx) = viewer(1, 8);
        w.coordinator.watch(task.agent, viewer).await.unwrap();
        w.pty
            .exit(
                task.agent,
                ExitStatus {
                    code: Some(3),
                    signal: None,
                },
            )
            .await
            .unwrap();
        pause(10).await;
        assert_eq!(rx.try_recv().unwrap(), Watched::Exited(task.agent, Some(3)));
        assert!(rx.recv().await.is_none(), "the actor let go of the viewer");
        let mut seen = Vec::new();
        while let Ok(event) = feed.try_recv() {
            seen.push(event);
        }
        assert_eq!(
            seen,
            [
                AgentEvent::ListChanged,
                AgentEvent::Exited {
                    agent: task.agent,
                    code: Some(3)
                },
                AgentEvent::ListChanged,
            ],
            "spawned, exited, then the list with its new status"
        );
        let listed = w.coordinator.task_status(task.id).await.unwrap();
        assert_eq!(listed.status, Status::Exited);
    }

    #[tokio::test(start_paused = true)]
    async fn a_viewer_that_falls_behind_is_dropped_and_told_while_others_go_on() {
        let w = world();
        let task = w.coordinator.create_task(request("a", None)).await.unwrap();
        let (slow, mut slow_rx) = viewer(1, 2);
        let overflowed = slow.overflowed.clone();
        let (quick, mut quick_rx) = viewer(2, 64);
        w.coordinator.watch(task.agent, slow).await.unwrap();
        w.coordinator.watch(task.agent, quick).await.unwrap();
        for round in 0..5u8 {
            w.pty.print(task.agent, &[b'0' + round]).await.unwrap();
            pause(5).await;
        }
        tokio::time::timeout(std::time::Duration::from_millis(1), overflowed.notified())
            .await
            .expect("the slow viewer was told");
        let mut slow_got = Vec::new();
        while let Some(watched) = slow_rx.recv().await {
            slow_got.push(watched);
        }
        assert_eq!(slow_got.len(), 2, "its queue held two; then it was let go");
        let mut quick_got = 0;
        while quick_rx.try_recv().is_ok() {
            quick_got += 1;
        }
        assert_eq!(quick_got, 5, "the other viewer got every chunk");
    }

    #[tokio::test(start_paused = true)]
    async fn terminal_input_reaches_only_the_coordinators_own_agents() {
        let w = world();
        let task = w.coordinator.create_task(request("a", None)).await.unwrap();
        w.coordinator
            .terminal(task.agent, TerminalInput::Write(b"ls\r".to_vec()))
            .await
            .unwrap();
        assert!(w.pty.input(task.agent).ends_with(b"ls\r"));
        w.coordinator
            .terminal(task.agent, TerminalInput::Resize { cols: 90, rows: 30 })
            .await
            .unwrap();
        assert_eq!(w.pty.size(task.agent), Some((90, 30)));
        let (first, _rx) = viewer(1, 8);
        assert_eq!(
            w.coordinator.watch(task.agent, first).await.unwrap().cols,
            90,
            "a later watch learns the new width"
        );
        let stranger = AgentId(crate::core::ids::Uuid::from_random([9; 16]));
        let refused = w
            .coordinator
            .terminal(stranger, TerminalInput::Kill)
            .await
            .unwrap_err();
        assert!(matches!(refused, EngineError::Missing(_)), "{refused:?}");
        w.coordinator
            .terminal(task.agent, TerminalInput::Kill)
            .await
            .unwrap();
        pause(10).await;
        assert!(!w.pty.is_alive(task.agent));
        let (second, _rx) = viewer(2, 8);
        assert!(matches!(
            w.coordinator.watch(stranger, second).await,
            Err(EngineError::Missing(_))
        ));
    }
}

#[tokio::test(start_paused = true)]
async fn no_agent_kind_gets_a_secret_in_its_argv_or_its_worktree() {
    let w = world();
    for command in ["claude", "/usr/bin/codex", "gemini", "aider"] {
        let task = w
            .coordinator
            .create_task(CreateTask {
                agent_command: Some(command.into()),
                ..request(&format!("t {}", command.len()), None)
            })
            .await
            .unwrap();
        let config = Path::new("/tmp/baton").join(format!("baton-subtask-{}.json", task.id));
        let token = token_of(&w.files, &config);
        let spawned = w.pty.spawned();
        let argv = &spawned.last().unwrap().argv;
        assert!(
            argv.iter().all(|a| !a.contains(&token)),
            "{command}: {argv:?}"
        );
        for (path, content) in w.repo.files(&task.worktree).unwrap() {
            assert!(
                !content.contains(&token),
                "{command}: {path} holds the token"
            );
        }
        assert_eq!(w.files.get(&config).unwrap().mode, FileMode::OwnerOnly);
    }
}

#[test]
fn the_pause_before_enter_grows_with_the_prompts_lines_within_its_bounds() {
    use super::{PROMPT_ENTER_DELAY_MS, PROMPT_ENTER_DELAY_MS_MAX, enter_delay_ms};
    assert_eq!(enter_delay_ms("one line"), PROMPT_ENTER_DELAY_MS);
    assert_eq!(enter_delay_ms(&"line\n".repeat(7)), 8 * 15);
    assert_eq!(
        enter_delay_ms(&"line\n".repeat(100)),
        PROMPT_ENTER_DELAY_MS_MAX
    );
    let assignment = crate::agents::prompts::sub_task("Fix the login bug");
    assert!(
        enter_delay_ms(&assignment) > PROMPT_ENTER_DELAY_MS,
        "{assignment}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_merge_asked_twice_merges_once_and_a_close_meanwhile_waits_for_it() {
    let w = world();
    let task = w.coordinator.create_task(request("t", None)).await.unwrap();
    let agent = w.pty.spawned()[0].agent;
    w.pty.print(agent, "❯ ".as_bytes()).await.unwrap();
    pause(100).await;
    w.repo.slow_merges(Duration::from_millis(1_000));
    let merge = |coordinator: CoordinatorHandle| async move {
        coordinator
            .merge_task(task.id, MergeOptions::default())
            .await
    };
    let first = tokio::spawn(merge(w.coordinator.clone()));
    pause(10).await;
    let second = tokio::spawn(merge(w.coordinator.clone()));
    let close = tokio::spawn({
        let coordinator = w.coordinator.clone();
        async move { coordinator.close_task(task.id).await }
    });
    pause(100).await;
    assert!(!close.is_finished(), "the close waits for the merge");
    assert_eq!(
        w.repo.worktrees(std::path::Path::new("/repo")).len(),
        1,
        "its worktree is still there"
    );
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    assert!(first.is_ok(), "{first:?}");
    assert_eq!(first, second, "the retry hears the same merge");
    assert_eq!(w.repo.merged().len(), 1, "merged once");
    assert_eq!(close.await.unwrap(), Ok(()));
    assert!(w.coordinator.list_tasks().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_answer_its_caller_never_took_is_given_back() {
    let w = world();
    let task = w.coordinator.create_task(request("t", None)).await.unwrap();
    let config = Path::new("/tmp/baton").join(format!("baton-subtask-{}.json", task.id));
    let token = token_of(&w.files, &config);
    // The answer reaches the wait's receiver, and the wait is dropped before it reads it.
    let coordinator = w.coordinator.clone();
    let mut abandoned = Box::pin(coordinator.wait_for_signal(None, Some(60_000)));
    let started = tokio::time::timeout(Duration::from_millis(10), &mut abandoned).await;
    assert!(started.is_err(), "it waits");
    w.coordinator.signal_done(task.id, token).await.unwrap();
    drop(abandoned);
    pause(10).await;
    let outcome = w
        .coordinator
        .wait_for_signal(None, Some(100))
        .await
        .unwrap();
    assert!(
        matches!(outcome, SignalOutcome::Task { task: got, .. } if got == task.id),
        "the next wait gets it: {outcome:?}"
    );
    // An answer read but never written to its client (its response dropped) comes back too.
    let held = w
        .coordinator
        .wait_for_signal_delivery(None, Some(100))
        .await
        .unwrap();
    assert!(matches!(
        held.outcome(),
        Some(SignalOutcome::TimedOut { .. })
    ));
    drop(held);
    let w2 = world();
    let task = w2
        .coordinator
        .create_task(request("u", None))
        .await
        .unwrap();
    let config = Path::new("/tmp/baton").join(format!("baton-subtask-{}.json", task.id));
    w2.coordinator
        .signal_done(task.id, token_of(&w2.files, &config))
        .await
        .unwrap();
    let dropped = w2
        .coordinator
        .wait_for_signal_delivery(None, Some(100))
        .await
        .unwrap();
    assert!(matches!(
        dropped.outcome(),
        Some(SignalOutcome::Task { .. })
    ));
    drop(dropped);
    pause(10).await;
    let again = w2
        .coordinator
        .wait_for_signal(None, Some(100))
        .await
        .unwrap();
    assert!(
        matches!(again, SignalOutcome::Task { task: got, .. } if got == task.id),
        "{again:?}"
    );
}
