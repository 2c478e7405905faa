//! A whole coordinator flow on a real machine, as a newcomer runs it: the real `baton daemon`,
//! the `baton` CLI, and demo agents (`baton demo-agent`) in real terminals that commit in real
//! worktrees and call `signal_done` and the coordinator's tools through a real `baton mcp` they
//! launch from the MCP config Baton gave them. Loopback only; temporary directories; git's own
//! configuration kept out.

#![allow(clippy::unwrap_used)] // test helpers: a step that fails is the test failing

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{BATON, Daemon, cli, git, isolated, json, text, within};

const USER_CLAUDE_MD: &str = "# my notes\n\nKeep it short.\n";
const USER_MCP_JSON: &str = "{ \"mcpServers\": { \"mine\": { \"command\": \"my-server\" } } }\n";

/// A repository on `main` with the user's CLAUDE.md committed and their own, personal
/// `.mcp.json` beside it.
fn user_repo(root: &Path) -> PathBuf {
    let repo = common::repo_with(&root.join("project"), &[("CLAUDE.md", USER_CLAUDE_MD)]);
    std::fs::write(repo.join(".mcp.json"), USER_MCP_JSON).unwrap();
    repo
}

#[test]
fn a_demo_coordinator_splits_merges_and_cleans_up_after_itself() {
    let temp = tempfile::tempdir().unwrap();
    let repo = user_repo(temp.path());
    let state = temp.path().join("state");
    let daemon = Daemon::start(&state);
    let project = repo.to_str().unwrap();

    let follow = daemon.cli(&[
        "coordinator",
        "start",
        "--project",
        project,
        "--agent",
        "demo",
        "--prompt",
        "Split the notes in two",
        "--follow",
    ]);
    let said = text(&follow);
    assert!(follow.status.success(), "{said}\n{}", daemon.log());
    for line in [
        "+ task alpha created on task/alpha-",
        "+ task beta created on task/beta-",
        "✓ task alpha merged into main (+3 -0)",
        "✓ task beta merged into main (+3 -0)",
        "- task alpha closed",
        "- task beta closed",
        "done: the coordinator made 2 task(s) and merged 2; none is left",
    ] {
        assert!(said.contains(line), "{line:?} missing from:\n{said}");
    }

    // The sub-tasks' work is on main, in the user's checkout, and only their work: no
    // instruction block, no MCP config reached a commit.
    let log = git(&repo, &["log", "--format=%s", "main"]);
    assert!(
        log.contains("demo: alpha") && log.contains("demo: beta"),
        "{log}"
    );
    let changed = git(&repo, &["diff", "--name-only", "HEAD~2", "HEAD"]);
    assert_eq!(
        changed.lines().collect::<Vec<_>>(),
        [
            "notes/write-the-alpha-notes.md",
            "notes/write-the-beta-notes.md"
        ]
    );
    let note = std::fs::read_to_string(repo.join("notes/write-the-alpha-notes.md")).unwrap();
    assert!(note.contains("for: Write the alpha notes"), "{note}");

    // Nothing of the sub-tasks is left: no worktree, no branch, no config file.
    assert_eq!(git(&repo, &["worktree", "list"]).lines().count(), 1);
    assert_eq!(
        git(&repo, &["branch", "--format=%(refname:short)"]),
        "main\n"
    );
    assert!(!repo.join(".worktrees").exists());
    let configs: Vec<String> = std::fs::read_dir(state.join("mcp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("baton-subtask-"))
        .collect();
    assert!(configs.is_empty(), "{configs:?}");
    let tasks = json(&daemon.cli(&["tasks", "--json"]));
    assert_eq!(tasks["tasks"], serde_json::json!([]));

    // The coordinator's agent waits at its prompt; deregistering ends it and gives the user's
    // files back byte for byte.
    let status = json(&daemon.cli(&["status", "--json"]));
    let coordinator = &status["coordinators"][0];
    assert_eq!(
        coordinator["session"]["readiness"],
        "Ready",
        "{status}\n{}",
        daemon.log()
    );
    assert_eq!(
        git(&repo, &["status", "--porcelain"]),
        "",
        "the checkout is clean"
    );
    let id = coordinator["id"].as_str().unwrap().to_owned();
    let stop = daemon.cli(&["coordinator", "stop", &id]);
    assert!(stop.status.success(), "{}", text(&stop));
    assert_eq!(
        std::fs::read_to_string(repo.join(".mcp.json")).unwrap(),
        USER_MCP_JSON
    );
    assert_eq!(
        std::fs::read_to_string(repo.join("CLAUDE.md")).unwrap(),
        USER_CLAUDE_MD
    );
    assert!(!repo.join(".claude").exists());
    let status = daemon.cli(&["status"]);
    assert!(
        text(&status).contains("no coordinators"),
        "{}",
        text(&status)
    );
    daemon.stop();
}

#[test]
fn client_commands_say_when_the_daemon_is_not_running() {
    let temp = tempfile::tempdir().unwrap();
    let state = temp.path().join("state");
    for args in [&["status"][..], &["tasks"], &["events"], &["attach", "x"]] {
        let out = cli(args, &state);
        assert!(!out.status.success(), "{args:?}");
        let said = text(&out);
        assert!(
            said.contains("the baton daemon is not running") && said.contains("baton daemon"),
            "{args:?}: {said}"
        );
    }
}

#[test]
fn a_coordinator_whose_agent_cannot_start_is_not_left_registered() {
    let temp = tempfile::tempdir().unwrap();
    let repo = user_repo(temp.path());
    let state = temp.path().join("state");
    let daemon = Daemon::start(&state);
    let out = daemon.cli(&[
        "coordinator",
        "start",
        "--project",
        repo.to_str().unwrap(),
        "--agent",
        "/nonexistent/agent-cli",
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("agent-cli"), "{}", text(&out));
    let status = json(&daemon.cli(&["status", "--json"]));
    assert_eq!(status["coordinators"], serde_json::json!([]));
    assert_eq!(
        std::fs::read_to_string(repo.join(".mcp.json")).unwrap(),
        USER_MCP_JSON
    );
    daemon.stop();
}

/// The status of `GET path` on the phone listener at `port`, with `token`; `None` when nothing
/// listens.
fn phone_get(port: u16, path: &str, token: &str) -> Option<u16> {
    use baton_runtime::mcp::http::{self, BaseUrl, Tcp};
    let base = BaseUrl {
        host: "127.0.0.1".to_owned(),
        port,
    };
    let headers = [("authorization".to_owned(), format!("Bearer {token}"))];
    let request = http::encode(&base.host, "GET", path, &headers, b"");
    common::block_on(http::send(&Tcp, &base, &request))
        .ok()
        .map(|response| response.status)
}

#[test]
fn phone_access_opens_a_read_only_url_and_stopping_revokes_it() {
    let temp = tempfile::tempdir().unwrap();
    let state = temp.path().join("state");
    let daemon = Daemon::start(&state);
    let on = json(&daemon.cli(&["phone", "--loopback", "--port", "0", "--json"]));
    let url = on["url"].as_str().unwrap().to_owned();
    let port = u16::try_from(on["port"].as_u64().unwrap()).unwrap();
    assert!(
        url.starts_with(&format!("http://127.0.0.1:{port}/?token=")),
        "{url}"
    );
    let token = url.rsplit('=').next().unwrap().to_owned();
    assert_eq!(phone_get(port, "/api/agents", &token), Some(200));
    assert_eq!(phone_get(port, "/api/agents", "not-the-token"), Some(401));
    // Asking again while it is on tells the same URL.
    let again = json(&daemon.cli(&["phone", "--loopback", "--json"]));
    assert_eq!(again["url"], on["url"]);
    // The text form shows the URL under a QR code.
    let shown = text(&daemon.cli(&["phone", "--loopback"]));
    assert!(shown.contains(&url) && shown.contains('█'), "{shown}");

    let off = daemon.cli(&["phone", "--stop"]);
    assert!(
        text(&off).contains("phone access stopped"),
        "{}",
        text(&off)
    );
    assert_eq!(
        phone_get(port, "/api/agents", &token),
        None,
        "nothing listens"
    );
    let on = json(&daemon.cli(&["phone", "--loopback", "--port", "0", "--json"]));
    let port = u16::try_from(on["port"].as_u64().unwrap()).unwrap();
    assert_ne!(on["url"].as_str().unwrap(), url, "a new token each start");
    assert_eq!(
        phone_get(port, "/api/agents", &token),
        Some(401),
        "the old token is revoked"
    );
    daemon.stop();
}

#[test]
fn phone_access_comes_back_after_a_restart_with_the_same_link_until_stopped() {
    let temp = tempfile::tempdir().unwrap();
    let state = temp.path().join("state");
    let daemon = Daemon::start(&state);
    let on = json(&daemon.cli(&["phone", "--loopback", "--port", "0", "--json"]));
    let port = u16::try_from(on["port"].as_u64().unwrap()).unwrap();
    let token = on["url"]
        .as_str()
        .unwrap()
        .rsplit('=')
        .next()
        .unwrap()
        .to_owned();
    daemon.stop();
    assert_eq!(
        phone_get(port, "/api/agents", &token),
        None,
        "down with the daemon"
    );

    // The same link works again: a phone's open page reconnects by itself.
    let daemon = Daemon::start(&state);
    assert_eq!(phone_get(port, "/api/agents", &token), Some(200));
    let again = json(&daemon.cli(&["phone", "--loopback", "--json"]));
    assert_eq!(again["url"], on["url"]);
    assert!(!daemon.log().contains(&token), "the token reached the log");

    // Stopped, it stays off.
    let off = daemon.cli(&["phone", "--stop"]);
    assert!(off.status.success(), "{}", text(&off));
    daemon.stop();
    let daemon = Daemon::start(&state);
    assert_eq!(
        phone_get(port, "/api/agents", &token),
        None,
        "off after a restart"
    );
    assert!(!state.join("phone.json").exists());
    daemon.stop();
}

/// The README's quickstart commands, as written (`cargo run --release --bin baton -- …`), with
/// the command itself replaced by this build's binary.
fn quickstart() -> Vec<Vec<String>> {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("## Quickstart")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the README has a Quickstart section");
    let prefix = "cargo run --release --bin baton -- ";
    section
        .lines()
        .filter_map(|line| line.strip_prefix(prefix))
        .map(|args| {
            // Shell words: quoted strings stay whole.
            let mut words = Vec::new();
            let mut rest = args.trim();
            while !rest.is_empty() {
                if let Some(quoted) = rest.strip_prefix('"') {
                    let end = quoted.find('"').unwrap();
                    words.push(quoted[..end].to_owned());
                    rest = quoted[end + 1..].trim_start();
                } else {
                    let end = rest.find(' ').unwrap_or(rest.len());
                    words.push(rest[..end].to_owned());
                    rest = rest[end..].trim_start();
                }
            }
            words
        })
        .collect()
}

#[test]
fn the_readme_quickstart_works_as_written() {
    let commands = quickstart();
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert_eq!(commands[0], ["daemon"]);
    let temp = tempfile::tempdir().unwrap();
    // The default state directory, under a fresh XDG_STATE_HOME: nothing but the README's words.
    let home = temp.path().join("xdg-state");
    let log = temp.path().join("daemon.stderr");
    let mut daemon = isolated(&mut Command::new(BATON))
        .args(&commands[0])
        .env("XDG_STATE_HOME", &home)
        .current_dir(temp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    common::api_when_ready(&mut daemon, &log);
    let second = isolated(&mut Command::new(BATON))
        .args(&commands[1])
        .env("XDG_STATE_HOME", &home)
        .current_dir(temp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = within("the quickstart's coordinator", move || {
        second.wait_with_output().unwrap()
    });
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("made a sample repository at"), "{said}");
    assert!(
        said.contains("done: the coordinator made 2 task(s) and merged 2"),
        "{said}"
    );
    let log = git(&temp.path().join("baton-sample"), &["log", "--format=%s"]);
    assert!(
        log.contains("demo: alpha") && log.contains("demo: beta"),
        "{log}"
    );
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&daemon),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let status = within("the daemon's exit", move || daemon.wait().unwrap());
    assert!(status.success(), "{status:?}");
}

#[test]
fn an_exited_sub_task_agent_is_started_again_through_the_app_channel() {
    let temp = tempfile::tempdir().unwrap();
    let repo = user_repo(temp.path());
    let daemon = Daemon::start(&temp.path().join("state"));
    // Each start of this agent leaves a line in the worktree's log, then exits with code 3.
    let (_, token, _) = daemon.register(&repo, "sh", &["-c", "echo started >> starts.log; exit 3"]);
    let task = daemon.create_task(&token, "again");
    let id = task["id"].as_str().unwrap().to_owned();
    let worktree = PathBuf::from(task["worktreePath"].as_str().unwrap());
    assert_eq!(exit_code_of(&daemon, &id), Some(3));
    let (status, again) = daemon.app("POST", &format!("/app/tasks/{id}/agent"), None);
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["id"], id.as_str());
    assert!(again["agentId"].is_string(), "{again}");
    assert_eq!(
        exit_code_of(&daemon, &id),
        Some(3),
        "the new session ran and ended"
    );
    assert_eq!(
        std::fs::read_to_string(worktree.join("starts.log")).unwrap(),
        "started\nstarted\n",
        "started twice, in the same worktree"
    );
    let unknown = "00000000-0000-4000-8000-000000000000";
    let (status, _) = daemon.app("POST", &format!("/app/tasks/{unknown}/agent"), None);
    assert_eq!(status, 404);
    let (status, _) = daemon.app("POST", "/app/tasks/not-a-task/agent", None);
    assert_eq!(status, 400);
    daemon.stop();
}

/// The exit code of task `id`'s agent, read from its terminal (`GET /app/attach/{id}`) once it
/// ends: the attach stream's `exited` message.
fn exit_code_of(daemon: &Daemon, id: &str) -> Option<i64> {
    let client = baton_runtime::cli::app::AppClient::new(&daemon.state);
    let path = format!("/app/attach/{id}");
    within("the agent's exit", move || {
        common::block_on(async move {
            use futures_util::StreamExt as _;
            let mut socket = client.websocket(&path).await.unwrap();
            while let Some(Ok(message)) = socket.next().await {
                if let tungstenite::Message::Text(text) = message {
                    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
                    if value["type"] == "exited" {
                        return value["exitCode"].as_i64();
                    }
                }
            }
            None
        })
    })
}

/// The next JSON message `socket` receives that `wanted` accepts; the others are passed over.
async fn next_such<S>(
    socket: &mut S,
    wanted: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value
where
    S: futures_util::Stream<Item = Result<tungstenite::Message, tungstenite::Error>> + Unpin,
{
    use futures_util::StreamExt as _;
    while let Some(message) = socket.next().await {
        if let tungstenite::Message::Text(text) = message.unwrap() {
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            if wanted(&value) {
                return value;
            }
        }
    }
    panic!("the socket closed before the message came");
}

#[test]
fn the_phone_lists_the_coordinators_own_agent_and_follows_its_terminal() {
    let temp = tempfile::tempdir().unwrap();
    let repo = common::repo_with(&temp.path().join("project"), &[("README.md", "hello\n")]);
    let daemon = Daemon::start(&temp.path().join("state"));
    let demo = baton_runtime::agents::DEMO_AGENT_SUBCOMMAND;
    let (coordinator, _, _) = daemon.register(&repo, BATON, &[demo, "--role", "sub-task"]);
    // The coordinator's own agent says hello, waits for a word from the test, says it, ends.
    let word = temp.path().join("word");
    assert!(
        Command::new("mkfifo")
            .arg(&word)
            .status()
            .unwrap()
            .success()
    );
    let script = format!(
        "printf 'lead says hello\\n'; read w < '{}'; printf 'lead heard %s\\n' \"$w\"; exit 7",
        word.display()
    );
    let (status, started) = daemon.app(
        "POST",
        &format!("/app/coordinators/{coordinator}/agent"),
        Some(serde_json::json!({"command": "sh", "args": ["-c", script]})),
    );
    assert_eq!(status, 201, "{started}");
    let lead = started["agentId"].as_str().unwrap().to_owned();
    let phone = json(&daemon.cli(&["phone", "--loopback", "--port", "0", "--json"]));
    let url = phone["url"].as_str().unwrap();
    let token = url.rsplit('=').next().unwrap().to_owned();
    let port = phone["port"].as_u64().unwrap();

    within("the phone's view of the coordinator's agent", move || {
        common::block_on(async move {
            use futures_util::SinkExt as _;
            use tungstenite::Message;
            let (mut socket, _) =
                tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws"))
                    .await
                    .unwrap();
            let auth = serde_json::json!({"type": "auth", "token": token});
            socket.send(Message::text(auth.to_string())).await.unwrap();
            // Listed under its coordinator, as its own agent, not as a task.
            let listed = next_such(&mut socket, |m| m["type"] == "agents").await;
            let entry = &listed["coordinators"][0];
            assert_eq!(entry["id"], coordinator.as_str(), "{listed}");
            assert_eq!(entry["agent"]["agentId"], lead.as_str(), "{listed}");
            assert_eq!(entry["agent"]["status"], "running", "{listed}");
            assert!(entry["agent"]["state"].is_string(), "{listed}");
            assert!(entry["agent"]["lastActivityAt"].is_u64(), "{listed}");
            let tasks = listed["list"].as_array().unwrap();
            assert!(
                tasks.iter().all(|agent| agent["agentId"] != lead.as_str()),
                "{listed}"
            );

            // Its terminal: what it showed so far, then what it shows next, then its end.
            let subscribe = serde_json::json!({"type": "subscribe", "agentId": lead});
            socket
                .send(Message::text(subscribe.to_string()))
                .await
                .unwrap();
            let shown = |m: &serde_json::Value| {
                baton_runtime::core::ids::base64_decode(m["data"].as_str().unwrap()).unwrap()
            };
            let mut screen = Vec::new();
            while !String::from_utf8_lossy(&screen).contains("lead says hello") {
                let back = next_such(&mut socket, |m| {
                    m["type"] == "scrollback" || m["type"] == "output"
                })
                .await;
                assert_eq!(back["agentId"], lead.as_str());
                screen.extend(shown(&back));
            }
            let writer = word.clone();
            std::thread::spawn(move || std::fs::write(writer, "ping\n").unwrap());
            // Its exit is told after its last output, and before the list shows it.
            let mut live = Vec::new();
            let ended = loop {
                let next = next_such(&mut socket, |_| true).await;
                match next["type"].as_str() {
                    Some("status") => break next,
                    Some("output") => {}
                    Some("agents") => {
                        let listed = &next["coordinators"][0]["agent"]["status"];
                        assert_eq!(listed, "running", "listed as ended before told: {next}");
                        continue;
                    }
                    _ => panic!("unexpected {next}"),
                }
                assert_eq!(next["agentId"], lead.as_str());
                live.extend(shown(&next));
            };
            let live = String::from_utf8_lossy(&live);
            assert!(
                live.contains("lead heard ping"),
                "the exit came first: {live:?}"
            );
            assert_eq!(ended["agentId"], lead.as_str(), "{ended}");
            assert_eq!(ended["exitCode"], 7, "{ended}");
            let relisted = next_such(&mut socket, |m| {
                m["type"] == "agents" && m["coordinators"][0]["agent"]["status"] == "exited"
            })
            .await;
            assert_eq!(
                relisted["coordinators"][0]["agent"]["exitCode"], 7,
                "{relisted}"
            );
            assert_eq!(
                relisted["coordinators"][0]["agent"]["state"], "exited",
                "{relisted}"
            );
        });
    });
    daemon.stop();
}

#[test]
fn claude_code_with_skip_permissions_is_refused_as_root_outside_a_sandbox_and_says_why() {
    let temp = tempfile::tempdir().unwrap();
    let repo = common::repo_with(
        &temp.path().join("project"),
        &[("README.md", "# project\n")],
    );
    let body =
        serde_json::json!({ "projectRoot": repo, "agent": "claude", "skipPermissions": true });
    // Inside a sandbox Claude Code recognises, it is allowed whoever runs the daemon.
    let sandbox = Daemon::start_with(
        &temp.path().join("sandboxed"),
        &[("IS_SANDBOX", "1".as_ref())],
    );
    let (status, answer) = sandbox.app("POST", "/app/coordinators", Some(body.clone()));
    assert_eq!(status, 201, "{answer}");
    drop(sandbox);
    // Outside one, as root, Claude Code would exit at once: registering says why instead.
    let daemon = Daemon::start(&temp.path().join("state"));
    let (status, answer) = daemon.app("POST", "/app/coordinators", Some(body));
    if rustix::process::geteuid().is_root() {
        assert_eq!(status, 400, "{answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains("as root") && error.contains("IS_SANDBOX=1"),
            "{error}"
        );
        let (_, status_now) = daemon.app("GET", "/app/status", None);
        assert_eq!(
            status_now["coordinators"],
            serde_json::json!([]),
            "nothing registered"
        );
    } else {
        assert_eq!(status, 201, "{answer}");
    }
}

#[test]
fn baton_explain_says_why_baton_thinks_what_it_thinks_of_a_task() {
    let temp = tempfile::tempdir().unwrap();
    let repo = user_repo(temp.path());
    let daemon = Daemon::start(&temp.path().join("state"));
    // An agent that prints a line and ends: its state is decided by its process.
    let (_, token, _) = daemon.register(&repo, "sh", &["-c", "echo the last words; exit 4"]);
    let task = daemon.create_task(&token, "explained");
    let id = task["id"].as_str().unwrap().to_owned();
    assert_eq!(exit_code_of(&daemon, &id), Some(4));
    let explained = json(&daemon.cli(&["explain", &id, "--json"]));
    assert_eq!(explained["agentState"]["state"], "exited", "{explained}");
    assert_eq!(explained["agentState"]["source"], "process", "{explained}");
    assert!(explained["evidence"]["exited"].is_string(), "{explained}");
    assert_eq!(explained["screen"], serde_json::json!(["the last words"]));
    let said = text(&daemon.cli(&["explain", &id]));
    assert!(
        said.starts_with(&format!(
            "task explained ({id}): agent exited, by its process"
        )),
        "{said}"
    );
    assert!(said.contains("  | the last words\n"), "{said}");
    let unknown = daemon.cli(&["explain", "00000000-0000-4000-8000-000000000000"]);
    assert!(!unknown.status.success());
    daemon.stop();
}
