//! `baton daemon` as a user runs it: the real binary, real terminals, real git, a temporary
//! state directory, loopback only. Agents are small shell scripts that tell the test what they
//! saw through a FIFO (a blocking read, not a poll, bounded by `EVENT_WAIT`: a daemon or agent
//! that never gets there fails the test instead of hanging it). Git's global and system
//! configuration are kept out (`GIT_CONFIG_GLOBAL`, `GIT_CONFIG_NOSYSTEM`).

#![allow(clippy::unwrap_used)] // test helpers: a step that fails is the test failing

mod common;

use std::ffi::OsStr;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

#[cfg(target_os = "linux")]
use baton_runtime::adapters::procfs;
use common::{BATON, Daemon, git, isolated, repo_with, within};
use serde_json::{Value, json};

/// A repository on `main` with the user's CLAUDE.md committed and their own `.mcp.json` (not
/// committed: a personal one).
fn user_repo(root: &Path) -> PathBuf {
    let repo = repo_with(&root.join("repo"), &[("CLAUDE.md", "# my notes\n")]);
    std::fs::write(repo.join(".mcp.json"), USER_MCP_JSON).unwrap();
    repo
}

const USER_MCP_JSON: &str = "{ \"mcpServers\": { \"baton\": { \"command\": \"mine\" } } }\n";

/// A test's machine, in a temporary directory: the user's repository ([`user_repo`]), a state
/// directory for the daemon, and a FIFO an agent tells the test through.
struct Machine {
    repo: PathBuf,
    state: PathBuf,
    fifo: PathBuf,
    _temp: tempfile::TempDir,
}

impl Machine {
    fn new() -> Machine {
        let temp = tempfile::tempdir().unwrap();
        let fifo = temp.path().join("told");
        let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(status.success());
        Machine {
            repo: user_repo(temp.path()),
            state: temp.path().join("state"),
            fifo,
            _temp: temp,
        }
    }

    /// An agent's script: `first` (`{told}` in it standing for the FIFO), then it stays, reading
    /// its input.
    fn agent(&self, first: &str) -> String {
        let told = first.replace("{told}", &self.fifo.display().to_string());
        format!("{told}; while read l; do :; done")
    }

    /// Blocks until an agent writes into the FIFO and closes it: what it wrote.
    fn told(&self) -> String {
        let path = self.fifo.clone();
        within("the agent's word", move || {
            let mut text = String::new();
            std::fs::File::open(&path)
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            text
        })
    }
}

/// Runs `baton daemon` on `state`, which must refuse to start (exit code 1): what it said on
/// stderr.
fn refused_start(state: &Path) -> String {
    let out = isolated(&mut Command::new(BATON))
        .args(["daemon", "--port", "0", "--state-dir"])
        .arg(state)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Makes the directory `dir` with the permission bits `mode`.
fn dir_with_mode(dir: &Path, mode: u32) {
    std::fs::create_dir_all(dir).unwrap();
    let permissions = std::os::unix::fs::PermissionsExt::from_mode(mode);
    std::fs::set_permissions(dir, permissions).unwrap();
}

/// Starts `baton daemon` on `state` logging everything (`BATON_LOG=debug`): the tests read its
/// log for what must be there and what must not.
fn start(state: &Path) -> Daemon {
    Daemon::start_with(state, &[("BATON_LOG", OsStr::new("debug"))])
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Registers a coordinator whose sub-tasks run `sh -c script`: its id, its token and its MCP
/// config.
fn register(daemon: &Daemon, repo: &Path, script: &str) -> (String, String, PathBuf) {
    daemon.register(repo, "sh", &["-c", script, "agent"])
}

/// Registers a coordinator whose sub-tasks run `sh -c script` and makes one task: the
/// coordinator's token and the task.
fn one_task(daemon: &Daemon, repo: &Path, script: &str) -> (String, Value) {
    let (_, token, _) = register(daemon, repo, script);
    let task = daemon.create_task(&token, "t");
    (token, task)
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_daemon_killed_mid_flow_restarts_with_its_state_and_leaves_nothing_behind() {
    let machine = Machine::new();
    let (repo, state) = (machine.repo.clone(), machine.state.clone());
    let script = machine.agent(
        "echo work > work.txt && git add work.txt && git commit -qm work && \
         echo agent-up > {told}",
    );
    let daemon = start(&state);
    let (id, token, coordinator_config) = register(&daemon, &repo, &script);
    assert_eq!(mode_of(&state), 0o700);
    assert_eq!(mode_of(&coordinator_config), 0o600);
    let task = daemon.create_task(&token, "fix it");
    assert_eq!(machine.told(), "agent-up\n");
    let task_id = task["id"].as_str().unwrap().to_owned();
    let worktree = PathBuf::from(task["worktreePath"].as_str().unwrap());
    let branch = task["branchName"].as_str().unwrap().to_owned();
    let task_config = state
        .join("mcp")
        .join(format!("baton-subtask-{task_id}.json"));
    let done_token = common::credential(&task_config, "BATON_DONE_TOKEN");
    let done = format!("/api/tasks/{task_id}/done");
    let (status, body) = daemon.rest(&done_token, "POST", &done, None);
    assert_eq!(status, 200, "the sub-task signals done: {body}");

    daemon.kill9();
    // What a crash leaves: Baton's entry in the user's .mcp.json, a config no task owns, and a
    // half-written temporary file.
    assert_ne!(read(&repo.join(".mcp.json")), USER_MCP_JSON);
    let stale = state.join("mcp/baton-subtask-00000000-0000-4000-8000-000000000000.json");
    std::fs::write(&stale, "{}").unwrap();
    let torn = state.join(".state.json.baton-tmp-1-1");
    std::fs::write(&torn, "{\"format\": 1, \"coordi").unwrap();

    let daemon = start(&state);
    assert!(!stale.exists() && !torn.exists(), "stale files are swept");
    let (status, info) = daemon.app("GET", "/app/status", None);
    assert_eq!(status, 200);
    assert_eq!(info["coordinators"][0]["id"], id.as_str(), "{info}");
    assert_eq!(info["coordinators"][0]["tasks"], 1);
    // The same token works: the coordinator's MCP process needs no new one.
    let (status, restored) = daemon.rest(&token, "GET", &format!("/api/tasks/{task_id}"), None);
    assert_eq!(status, 200, "{restored}");
    assert_eq!(
        restored["status"], "exited",
        "its process died with the daemon"
    );
    assert!(worktree.is_dir(), "the worktree is kept");
    let wait = Some(json!({ "timeoutMs": 0 }));
    let (status, signal) = daemon.rest(&token, "POST", "/api/wait-signal", wait.clone());
    assert_eq!(status, 200, "{signal}");
    assert_eq!(
        signal["taskId"],
        task_id.as_str(),
        "the signal given before the crash: {signal}"
    );
    let (status, again) = daemon.rest(&token, "POST", "/api/wait-signal", wait);
    assert_eq!(
        (status, &again["timedOut"]),
        (200, &json!(true)),
        "delivered once: {again}"
    );
    assert!(task_config.exists(), "a restored task keeps its config");
    let entry: Value = serde_json::from_str(&read(&repo.join(".mcp.json"))).unwrap();
    assert_eq!(
        entry["mcpServers"]["baton"]["args"][2],
        format!("http://{}:{}", daemon.api.host, daemon.api.port),
        "the entry names the new port"
    );

    // The agent's commit merges into the user's checkout: Baton's worktrees and its entry in
    // .mcp.json leave that checkout clean.
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
    let merge = Some(json!({ "squash": true, "message": "the work" }));
    let path = format!("/api/tasks/{task_id}/merge");
    let (status, merged) = daemon.rest(&token, "POST", &path, merge);
    assert_eq!(status, 200, "{merged}");
    assert_eq!(read(&repo.join("work.txt")), "work\n");
    assert_eq!(git(&repo, &["log", "-1", "--format=%s"]), "the work\n");
    let (status, closed) = daemon.rest(&token, "DELETE", &format!("/api/tasks/{task_id}"), None);
    assert_eq!(status, 200, "{closed}");
    assert!(!worktree.exists());
    assert!(!git(&repo, &["branch", "--list"]).contains(&branch));
    assert!(!task_config.exists());
    let (status, _) = daemon.app("DELETE", &format!("/app/coordinators/{id}"), None);
    assert_eq!(status, 204);
    assert_eq!(
        read(&repo.join(".mcp.json")),
        USER_MCP_JSON,
        "byte for byte"
    );
    assert_eq!(read(&repo.join("CLAUDE.md")), "# my notes\n");
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
    assert!(
        std::fs::read_dir(state.join("mcp"))
            .unwrap()
            .next()
            .is_none()
    );
    let log = daemon.stop();
    assert!(log.contains("coordinator deregistered"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    for secret in [&token, &done_token] {
        assert!(!log.contains(secret.as_str()), "a secret reached the log");
    }
}

/// A process seen running, by pid and start time (a pid given to another process since is not
/// this one); dropped, it is killed if it still runs, so a failed test leaves nothing behind.
/// Read at its `/proc` entry, which names it by another pid where `/proc` is another PID
/// namespace's (`adapters::procfs`).
#[cfg(target_os = "linux")]
struct Seen {
    pid: i32,
    entry: i32,
    started: String,
}

#[cfg(target_os = "linux")]
impl Seen {
    /// The state and start time in `/proc/<entry>/stat` (after the command name, which may hold
    /// spaces).
    fn stat(entry: i32) -> Option<(String, String)> {
        let stat = std::fs::read_to_string(format!("/proc/{entry}/stat")).ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        Some((fields[0].to_owned(), fields[19].to_owned()))
    }

    fn now(pid: i32) -> Seen {
        let entry = procfs::entry(pid).unwrap();
        let (_, started) = Seen::stat(entry).unwrap();
        Seen {
            pid,
            entry,
            started,
        }
    }

    /// It exists, is no zombie, and is the process first seen.
    fn is_running(&self) -> bool {
        Seen::stat(self.entry)
            .is_some_and(|(state, started)| state != "Z" && started == self.started)
    }

    fn environ(&self) -> String {
        let environ = std::fs::read(format!("/proc/{}/environ", self.entry)).unwrap();
        String::from_utf8_lossy(&environ).into_owned()
    }
}

#[cfg(target_os = "linux")]
impl Drop for Seen {
    fn drop(&mut self) {
        if self.is_running() {
            let pid = rustix::process::Pid::from_raw(self.pid).unwrap();
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

#[test]
#[cfg(target_os = "linux")]
fn a_restart_after_a_crash_ends_what_the_dead_daemons_agent_left_running() {
    let machine = Machine::new();
    let (repo, state) = (machine.repo.clone(), machine.state.clone());
    // A runaway: `setsid -f` forks out of the agent's session and group and exits (a double
    // fork), and the fork drops the terminal, as a daemonising tool does. No `exec` after it
    // says its pid: in the middle of one a process has no environment to check.
    let script =
        machine.agent("setsid -f sh -c 'echo $$ > {told}; sleep 600' < /dev/null > /dev/null 2>&1");
    let daemon = start(&state);
    one_task(&daemon, &repo, &script);
    let runaway = Seen::now(machine.told().trim().parse().unwrap());
    assert!(
        runaway.environ().contains("BATON_DAEMON="),
        "it carries the daemon's mark"
    );
    daemon.kill9();
    assert!(runaway.is_running(), "a crash leaves it running");

    let daemon = start(&state);
    assert!(!runaway.is_running(), "the next start ended it");
    assert!(daemon.log().contains("left running"));
    daemon.stop();
}

#[test]
fn the_engine_answers_an_agents_cursor_position_query() {
    let machine = Machine::new();
    let (repo, state) = (machine.repo.clone(), machine.state.clone());
    // Raw mode, ask where the cursor is, read the six-byte answer.
    let script = machine.agent(
        "stty -icanon -echo min 1 time 0; printf 'asking\\033[6n'; \
         r=$(dd bs=1 count=6 2>/dev/null | od -An -c | tr -d ' \\n'); echo \"reply:$r\" > {told}",
    );
    let daemon = start(&state);
    let (_, token, _) = register(&daemon, &repo, &script);
    daemon.create_task(&token, "ask");
    assert_eq!(machine.told(), "reply:033[1;1R\n");
}

#[test]
fn sigterm_ends_the_agents_and_gives_back_the_users_mcp_json() {
    let machine = Machine::new();
    let (repo, state) = (machine.repo.clone(), machine.state.clone());
    let script = machine.agent("echo $$ > {told}");
    let daemon = start(&state);
    one_task(&daemon, &repo, &script);
    let pid: i32 = machine.told().trim().parse().unwrap();
    daemon.stop();
    let agent = rustix::process::Pid::from_raw(pid).unwrap();
    assert!(
        rustix::process::test_kill_process(agent).is_err(),
        "the agent is gone"
    );
    assert_eq!(read(&repo.join(".mcp.json")), USER_MCP_JSON);
    assert!(!state.join("app.sock").exists());
    let persisted: Value =
        serde_json::from_slice(&std::fs::read(state.join("state.json")).unwrap()).unwrap();
    assert_eq!(persisted["coordinators"][0]["mcp_json"], Value::Null);
    assert_eq!(
        persisted["coordinators"][0]["tasks"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_second_daemon_on_the_same_state_dir_refuses_to_start() {
    let temp = tempfile::tempdir().unwrap();
    let state = temp.path().join("state");
    let first = start(&state);
    let text = refused_start(&state);
    let pid = first.pid();
    assert!(
        text.contains(&format!("already using {}", state.display())),
        "{text}"
    );
    assert!(text.contains(&format!("pid {pid}")), "{text}");
    let (status, _) = first.app("GET", "/app/status", None);
    assert_eq!(status, 200, "the first one still serves");
}

#[test]
fn a_corrupt_state_file_is_moved_aside_and_a_newer_one_left_alone() {
    let temp = tempfile::tempdir().unwrap();
    let state = temp.path().join("state");
    dir_with_mode(&state, 0o700);
    let file = state.join("state.json");
    std::fs::write(&file, "{\"format\": 1, \"coordinators\": [").unwrap();
    let text = refused_start(&state);
    assert!(
        text.contains("is corrupt") && text.contains("moved to"),
        "{text}"
    );
    assert!(!file.exists());
    assert_eq!(
        read(&state.join("state.json.corrupt")),
        "{\"format\": 1, \"coordinators\": ["
    );

    let newer = "{\"format\": 99, \"coordinators\": []}";
    std::fs::write(&file, newer).unwrap();
    let text = refused_start(&state);
    assert!(text.contains("newer Baton (format 99"), "{text}");
    assert_eq!(read(&file), newer, "left as it was");
}

#[test]
fn a_tracked_mcp_json_is_left_alone_and_the_config_given_instead() {
    let temp = tempfile::tempdir().unwrap();
    let repo = user_repo(temp.path());
    git(&repo, &["add", ".mcp.json"]);
    git(&repo, &["commit", "-q", "-m", "shared servers"]);
    let daemon = start(&temp.path().join("state"));
    let (_, _, config) = register(&daemon, &repo, "exit 0");
    assert_eq!(read(&repo.join(".mcp.json")), USER_MCP_JSON);
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
    assert!(config.exists(), "the coordinator's agent gets --mcp-config");
}

#[test]
fn a_second_coordinator_on_the_same_project_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let repo = user_repo(temp.path());
    let daemon = start(&temp.path().join("state"));
    register(&daemon, &repo, "exit 0");
    let body = json!({ "projectRoot": repo, "agent": "sh" });
    let (status, answer) = daemon.app("POST", "/app/coordinators", Some(body));
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("already registered")
    );
}

#[test]
fn a_notification_delay_out_of_its_bounds_is_refused_and_registers_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let repo = user_repo(temp.path());
    let daemon = start(&temp.path().join("state"));
    for delay in [0, 4_999, 300_001] {
        let body = json!({ "projectRoot": repo, "agent": "sh", "notificationDelayMs": delay });
        let (status, answer) = daemon.app("POST", "/app/coordinators", Some(body));
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("notification delay must be 5000 to 300000 ms"),
            "{answer}"
        );
    }
    assert_eq!(read(&repo.join(".mcp.json")), USER_MCP_JSON);
    let (_, info) = daemon.app("GET", "/app/status", None);
    assert_eq!(info["coordinators"], json!([]));
    let body = json!({ "projectRoot": repo, "agent": "sh", "notificationDelayMs": 5_000 });
    let (status, answer) = daemon.app("POST", "/app/coordinators", Some(body));
    assert_eq!(status, 201, "{answer}");
}

#[test]
fn a_state_directory_others_can_reach_is_refused_and_left_as_it_is() {
    let temp = tempfile::tempdir().unwrap();
    let shared = temp.path().join("shared");
    dir_with_mode(&shared, 0o755);
    let text = refused_start(&shared);
    assert!(
        text.contains("other users can reach it (mode 755)"),
        "{text}"
    );
    assert_eq!(mode_of(&shared), 0o755);
    assert!(std::fs::read_dir(&shared).unwrap().next().is_none());
}

#[test]
fn registering_a_directory_that_is_no_repository_is_refused_and_writes_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let plain = temp.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let daemon = start(&temp.path().join("state"));
    let (status, body) = daemon.app(
        "POST",
        "/app/coordinators",
        Some(json!({ "projectRoot": plain, "agent": "sh" })),
    );
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("not a usable git repository")
    );
    assert!(!plain.join(".mcp.json").exists());
    let (status, body) = daemon.app(
        "POST",
        "/app/coordinators",
        Some(json!({ "projectRoot": "relative", "agent": "sh" })),
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = daemon.app("POST", "/app/coordinators", Some(json!({ "agent": 1 })));
    assert_eq!(status, 400, "{body}");
    let (_, info) = daemon.app("GET", "/app/status", None);
    assert_eq!(info["coordinators"], json!([]));
}

#[test]
fn a_deregistered_coordinators_remaining_task_is_remembered_across_a_restart() {
    let machine = Machine::new();
    let (repo, state) = (machine.repo.clone(), machine.state.clone());
    let script = machine.agent("echo up > {told}");
    let daemon = start(&state);
    let (id, token, _) = register(&daemon, &repo, &script);
    let task = daemon.create_task(&token, "left");
    machine.told();
    let (status, _) = daemon.app("DELETE", &format!("/app/coordinators/{id}"), None);
    assert_eq!(status, 204);
    assert_eq!(read(&repo.join(".mcp.json")), USER_MCP_JSON);
    let (status, _) = daemon.rest(&token, "GET", "/api/tasks", None);
    assert_eq!(status, 401, "its token is revoked");
    daemon.kill9();

    let daemon = start(&state);
    let (_, info) = daemon.app("GET", "/app/status", None);
    assert_eq!(info["coordinators"], json!([]), "not registered again");
    assert_eq!(
        read(&repo.join(".mcp.json")),
        USER_MCP_JSON,
        "and not wired again"
    );
    let persisted: Value = serde_json::from_str(&read(&state.join("state.json"))).unwrap();
    let orphan = &persisted["coordinators"][0];
    assert_eq!(orphan["registered"], false, "{persisted}");
    assert_eq!(orphan["tasks"][0]["id"], task["id"]);
    let task_config = state.join(format!(
        "mcp/baton-subtask-{}.json",
        task["id"].as_str().unwrap()
    ));
    assert!(task_config.exists(), "an orphaned task keeps its config");
    assert!(Path::new(task["worktreePath"].as_str().unwrap()).is_dir());
    daemon.stop();
}

#[test]
fn a_task_respawned_after_a_restart_on_another_port_reaches_the_new_port() {
    let machine = Machine::new();
    let (repo, state) = (machine.repo.clone(), machine.state.clone());
    // The agent hands its MCP config (the path after `--mcp-config`) to the test, then waits.
    let script = machine.agent("cat \"$2\" > {told}");
    let daemon = start(&state);
    let (_, task) = one_task(&daemon, &repo, &script);
    let first: Value = serde_json::from_str(&machine.told()).unwrap();
    let url = |daemon: &Daemon| format!("http://{}:{}", daemon.api.host, daemon.api.port);
    assert_eq!(first["mcpServers"]["baton"]["args"][2], url(&daemon));
    let old = url(&daemon);
    daemon.kill9();

    // The new daemon listens on another port (`--port 0`): the respawned agent is told it.
    let daemon = start(&state);
    assert_ne!(url(&daemon), old, "a new port");
    let id = task["id"].as_str().unwrap();
    let (status, respawned) = daemon.app("POST", &format!("/app/tasks/{id}/agent"), None);
    assert_eq!(status, 201, "{respawned}");
    let again: Value = serde_json::from_str(&machine.told()).unwrap();
    assert_eq!(
        again["mcpServers"]["baton"]["args"][2],
        url(&daemon),
        "the config names the daemon's address now"
    );
    assert_eq!(
        again["mcpServers"]["baton"]["env"], first["mcpServers"]["baton"]["env"],
        "the same done token"
    );
}

#[test]
fn the_calls_that_change_state_are_in_an_owner_only_audit_trail_without_a_token() {
    let machine = Machine::new();
    let (repo, state) = (machine.repo.clone(), machine.state.clone());
    let script = machine.agent("echo agent-up > {told}; exec sleep 600");
    let daemon = start(&state);
    let (id, token, _) = register(&daemon, &repo, &script);
    let task = daemon.create_task(&token, "audited");
    let task_id = task["id"].as_str().unwrap().to_owned();
    let task_config = state
        .join("mcp")
        .join(format!("baton-subtask-{task_id}.json"));
    let done_token = common::credential(&task_config, "BATON_DONE_TOKEN");
    let prompt = json!({ "prompt": format!("the coordinator's token is {token}") });
    let (status, body) = daemon.rest(
        &token,
        "POST",
        &format!("/api/tasks/{task_id}/prompt"),
        Some(prompt),
    );
    assert!(status < 300, "{body}");
    let (status, _) = daemon.rest(
        &done_token,
        "POST",
        &format!("/api/tasks/{task_id}/done"),
        None,
    );
    assert_eq!(status, 200);
    // Refused: a sub-task's token on another route, and a wrong one on its own.
    let (status, _) = daemon.rest(
        "not-a-token",
        "POST",
        &format!("/api/tasks/{task_id}/done"),
        None,
    );
    assert_eq!(status, 401);
    let (status, _) = daemon.rest(&token, "DELETE", &format!("/api/tasks/{task_id}"), None);
    assert_eq!(status, 200);
    // Reads are not recorded.
    daemon.rest(&token, "GET", "/api/tasks", None);
    daemon.stop();

    let log = state.join("audit.log");
    assert_eq!(mode_of(&log), 0o600);
    let text = read(&log);
    assert!(!text.contains(&token), "no coordinator token: {text}");
    assert!(!text.contains(&done_token), "no done token");
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let actions: Vec<&str> = lines
        .iter()
        .map(|l| l["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["create_task", "send_prompt", "signal_done", "close_task"],
        "{text}"
    );
    assert_eq!(
        lines[0]["actor"],
        json!({ "kind": "coordinator", "id": id })
    );
    assert_eq!(lines[0]["args"]["name"], "audited");
    assert_eq!(lines[1]["task"], task_id.as_str());
    assert_eq!(
        lines[1]["args"]["prompt"],
        "the coordinator's token is [secret]"
    );
    assert_eq!(lines[2]["actor"]["kind"], "sub-task");
    assert!(
        lines
            .iter()
            .all(|l| l["result"]["status"].as_u64().unwrap() < 300)
    );
}
