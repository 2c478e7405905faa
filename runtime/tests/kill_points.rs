//! The kill-point sweep: the real daemon is killed (SIGKILL) at every named kill point in turn
//! (`runtime/src/killpoint.rs`), in the middle of a whole flow; a new daemon starts on what the
//! dead one left, the flow is finished as a coordinator would finish it, and what is left is
//! checked: the state loads, no signal was lost or delivered twice, no worktree, branch or
//! config file is left, and the user's files are byte for byte as they were.
//!
//! The list of points is read from the source, so a point added to the code is swept without
//! being named here; the flow must reach every one of them (a point it does not reach fails the
//! sweep: the flow has to grow with the code).

#![allow(clippy::unwrap_used)] // test helpers: a step that fails is the test failing

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use baton_runtime::mcp::http::{self, BaseUrl, Tcp, UnixSocket};
use common::{Daemon, block_on, git, within};
use serde_json::{Value, json};

const USER_MCP_JSON: &str = "{ \"mcpServers\": { \"mine\": { \"command\": \"my-server\" } } }\n";
const USER_GEMINI_MD: &str = "# notes for gemini\n";

/// Every kill point the code names, in the order they appear (file by file, sorted).
fn kill_points() -> Vec<String> {
    let files = common::rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let marker = concat!("kill_point", "!(\"");
    let mut points = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (at, _) in text.match_indices(marker) {
            let rest = &text[at + marker.len()..];
            let name = &rest[..rest.find('"').unwrap()];
            if !points.iter().any(|p| p == name) {
                points.push(name.to_owned());
            }
        }
    }
    points
}

/// What the user has: files in the checkout (tracked and not), read byte for byte.
fn user_files(repo: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = ["AGENTS.md", "GEMINI.md", ".mcp.json"]
        .iter()
        .map(|name| {
            let bytes = std::fs::read(repo.join(name)).unwrap_or_default();
            ((*name).to_owned(), bytes)
        })
        .collect();
    // Tracked files only: Baton's lines in `.git/info/exclude` hide an untracked `.mcp.json`
    // (its bytes are compared above).
    let status = git(repo, &["status", "--porcelain", "--untracked-files=no"]);
    files.push(("status".into(), status.into_bytes()));
    files
}

/// A request to the daemon; `None` when the connection failed (the daemon died).
fn try_call(
    daemon: &Daemon,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Option<(u16, Value)> {
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let Some(token) = token {
        headers.push(("authorization".to_owned(), format!("Bearer {token}")));
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let base: &BaseUrl = &daemon.api;
    let request = http::encode(&base.host, method, path, &headers, body.as_bytes());
    let response = if path.starts_with("/app/") {
        let socket = UnixSocket(daemon.state.join("app.sock"));
        block_on(http::send(&socket, base, &request))
    } else {
        block_on(http::send(&Tcp, base, &request))
    };
    let response = response.ok()?;
    let value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    Some((response.status, value))
}

/// What the flow learned before the daemon died.
#[derive(Default, Debug)]
struct Flow {
    coordinator: Option<(String, String)>,
    task: Option<String>,
    /// Whether the task's `signal_done` was answered 200.
    signalled: bool,
    /// Answers of `wait_for_signal_done` that named the task.
    told: usize,
    /// A wait sent and not answered: its request id, to retry after the restart.
    unanswered_wait: Option<String>,
}

/// The agent: a shell script named `gemini` (so Baton treats it as Gemini CLI: an instruction
/// file and a settings file in its worktree, both taken out again) that commits its work, says
/// so into the FIFO `up`, and waits.
fn agent(dir: &Path, up: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let path = bin.join("gemini");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\necho work > work.txt && git add work.txt && git commit -qm work && \
             echo up > {}\necho ready\nwhile read l; do :; done\n",
            up.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Runs the flow until it ends or the daemon dies: register, create a task, its agent commits,
/// it signals done, a wait returns it, it is merged and closed, the coordinator leaves.
fn run_flow(daemon: &Daemon, repo: &Path, agent: &Path, up: &Path, flow: &mut Flow) -> bool {
    let body = json!({ "projectRoot": repo, "agent": agent, "args": [] });
    let Some((status, info)) = try_call(daemon, None, "POST", "/app/coordinators", Some(body))
    else {
        return false;
    };
    assert_eq!(status, 201, "{info}");
    let id = info["id"].as_str().unwrap().to_owned();
    let config = PathBuf::from(info["mcpConfig"].as_str().unwrap());
    let token = common::credential(&config, "BATON_MCP_TOKEN");
    flow.coordinator = Some((id.clone(), token.clone()));
    let create = Some(json!({ "name": "alpha" }));
    let Some((status, task)) = try_call(daemon, Some(&token), "POST", "/api/tasks", create) else {
        return false;
    };
    assert_eq!(status, 201, "{task}");
    let task_id = task["id"].as_str().unwrap().to_owned();
    flow.task = Some(task_id.clone());
    // The agent's commit.
    let up = up.to_owned();
    let said = within("the agent's commit", move || {
        std::fs::read_to_string(up).unwrap()
    });
    assert_eq!(said, "up\n");
    let config = daemon
        .state
        .join("mcp")
        .join(format!("baton-subtask-{task_id}.json"));
    let done = common::credential(&config, "BATON_DONE_TOKEN");
    let path = format!("/api/tasks/{task_id}/done");
    let Some((status, body)) = try_call(daemon, Some(&done), "POST", &path, None) else {
        return false;
    };
    assert_eq!(status, 200, "{body}");
    flow.signalled = true;
    flow.unanswered_wait = Some("wait-1".into());
    let wait = Some(json!({ "timeoutMs": 0, "requestId": "wait-1" }));
    let Some((status, told)) = try_call(daemon, Some(&token), "POST", "/api/wait-signal", wait)
    else {
        return false;
    };
    assert_eq!(status, 200, "{told}");
    flow.unanswered_wait = None;
    assert_eq!(told["taskId"], task_id.as_str(), "{told}");
    flow.told += 1;
    let merge = Some(json!({ "cleanup": true }));
    let path = format!("/api/tasks/{task_id}/merge");
    let Some((status, merged)) = try_call(daemon, Some(&token), "POST", &path, merge) else {
        return false;
    };
    assert_eq!(status, 200, "{merged}");
    let path = format!("/app/coordinators/{id}");
    let Some((status, _)) = try_call(daemon, None, "DELETE", &path, None) else {
        return false;
    };
    assert_eq!(status, 204);
    true
}

/// Finishes the flow on a restarted daemon as its coordinator would: the unanswered wait again
/// (same request id), every signal still to come, every task closed, the coordinator gone.
fn finish_flow(daemon: &Daemon, flow: &mut Flow, point: &str) {
    let (status, info) = try_call(daemon, None, "GET", "/app/status", None).unwrap();
    assert_eq!(status, 200, "{info}");
    // The status lists registered coordinators only.
    let registered: Vec<String> = info["coordinators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    let Some((id, token)) = flow.coordinator.clone() else {
        // Registered, but its caller never heard: the app sees it in the list and stops it.
        for id in registered {
            let path = format!("/app/coordinators/{id}");
            let (status, _) = try_call(daemon, None, "DELETE", &path, None).unwrap();
            assert_eq!(status, 204, "{point}");
        }
        return;
    };
    if !registered.contains(&id) {
        return;
    }
    let task = flow.task.clone().unwrap_or_default();
    let mut requests: Vec<Value> = Vec::new();
    if let Some(request) = flow.unanswered_wait.take() {
        requests.push(json!({ "timeoutMs": 0, "requestId": request }));
    }
    loop {
        let body = requests.pop().unwrap_or(json!({ "timeoutMs": 0 }));
        let (status, told) =
            try_call(daemon, Some(&token), "POST", "/api/wait-signal", Some(body)).unwrap();
        assert_eq!(status, 200, "{point}: {told}");
        if told["timedOut"] == true {
            break;
        }
        if told["taskId"] == task.as_str() {
            flow.told += 1;
        }
    }
    let (status, tasks) = try_call(daemon, Some(&token), "GET", "/api/tasks", None).unwrap();
    assert_eq!(status, 200, "{tasks}");
    for task in tasks.as_array().unwrap() {
        let path = format!("/api/tasks/{}", task["id"].as_str().unwrap());
        let (status, closed) = try_call(daemon, Some(&token), "DELETE", &path, None).unwrap();
        // A close the restart resumed may end between the list and this request: the task is
        // then gone (404), as closed as a 200 would leave it.
        let resumed_and_done = status == 404
            && try_call(daemon, Some(&token), "GET", &path, None).is_some_and(|(s, _)| s == 404);
        assert!(
            status == 200 || resumed_and_done,
            "{point}: {status} {closed}\n{}",
            daemon.log()
        );
    }
    let path = format!("/app/coordinators/{id}");
    let (status, _) = try_call(daemon, None, "DELETE", &path, None).unwrap();
    assert_eq!(status, 204, "{point}");
}

/// How many times each point is crashed at: its first hits in the flow (a point reached at
/// start-up, say, is also reached later, mid-flow).
const HITS_SWEPT_PER_POINT: u32 = 3;

/// Starts a daemon on `state` that dies at the `nth` hit of `point`: `None` if it died before
/// it was ready.
fn daemon_dying_at(state: &Path, point: &str, nth: u32) -> Option<Daemon> {
    let log = state.with_extension("stderr");
    let mut child = common::daemon_command(state, &log)
        .env(
            baton_runtime::killpoint::KILL_AT_VAR,
            format!("{point}#{nth}"),
        )
        .spawn()
        .unwrap();
    let api = common::ready_line(&mut child, &log)?;
    Some(Daemon::adopt(child, state, api, &log))
}

/// Crashes the flow at the `nth` hit of `point`, restarts, finishes, and checks what is left.
/// `Ok(false)`: the flow ended without reaching that hit.
fn sweep_one(point: &str, nth: u32) -> Result<bool, String> {
    let point_name = point;
    let point = &format!("{point}#{nth}");
    let temp = tempfile::tempdir().unwrap();
    let repo = common::repo_with(
        &temp.path().join("project"),
        &[("AGENTS.md", "# mine\n"), ("GEMINI.md", USER_GEMINI_MD)],
    );
    std::fs::write(repo.join(".mcp.json"), USER_MCP_JSON).unwrap();
    let before = user_files(&repo);
    let up = temp.path().join("up");
    let made = Command::new("mkfifo").arg(&up).status().unwrap();
    assert!(made.success());
    let agent = agent(temp.path(), &up);
    let state = temp.path().join("state");

    let mut flow = Flow::default();
    let log = state.with_extension("stderr");
    // `None`: it died at start-up, before the flow could begin.
    if let Some(daemon) = daemon_dying_at(&state, point_name, nth)
        && run_flow(&daemon, &repo, &agent, &up, &mut flow)
    {
        return Ok(false);
    }
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    if !said.contains(&format!("kill point {point_name}:")) {
        return Err(format!("{point}: the daemon died elsewhere:\n{said}"));
    }

    let daemon = Daemon::start(&state);
    finish_flow(&daemon, &mut flow, point);
    if flow.signalled && flow.told != 1 {
        return Err(format!(
            "{point}: the task's signal was told {} times",
            flow.told
        ));
    }
    if flow.told > 1 {
        return Err(format!("{point}: the task was told {} times", flow.told));
    }
    daemon.stop();
    // What is left: nothing of Baton's, and the user's files as they were.
    let worktrees = git(&repo, &["worktree", "list"]);
    if worktrees.lines().count() != 1 {
        return Err(format!("{point}: worktrees left:\n{worktrees}"));
    }
    let branches = git(&repo, &["branch", "--format=%(refname:short)"]);
    if branches != "main\n" {
        return Err(format!("{point}: branches left:\n{branches}"));
    }
    let configs: Vec<_> = std::fs::read_dir(state.join("mcp"))
        .map(|dir| dir.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    if !configs.is_empty() {
        return Err(format!("{point}: config files left: {configs:?}"));
    }
    let after = user_files(&repo);
    for ((name, was), (_, is)) in before.iter().zip(&after) {
        if was != is {
            return Err(format!(
                "{point}: {name} changed:\n{}\n---\n{}",
                String::from_utf8_lossy(was),
                String::from_utf8_lossy(is)
            ));
        }
    }
    // The state loads once more.
    Daemon::start(&state).stop();
    Ok(true)
}

#[test]
fn the_source_names_the_kill_points_the_sweep_knows() {
    let points = kill_points();
    assert!(points.len() >= 15, "{points:?}");
    for point in &points {
        assert!(
            point
                .split_once('.')
                .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty()),
            "{point}: kill points are named area.step"
        );
    }
}

#[test]
fn a_crash_at_any_kill_point_loses_nothing_and_leaves_nothing() {
    let mut failures = Vec::new();
    let mut crashes = 0;
    for point in kill_points() {
        for nth in 1..=HITS_SWEPT_PER_POINT {
            match sweep_one(&point, nth) {
                Ok(true) => crashes += 1,
                Ok(false) if nth == 1 => {
                    failures.push(format!("the flow never reached kill point {point}"));
                }
                Ok(false) => break,
                Err(failure) => failures.push(failure),
            }
        }
    }
    // How long it takes is the test's own time in `cargo test`'s report.
    eprintln!(
        "swept {} kill points ({crashes} crashes)",
        kill_points().len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
