//! A whole coordinator flow on a real machine, as a newcomer runs it: the real `baton daemon`,
//! the `baton` CLI, and demo agents (`baton demo-agent`) in real terminals that commit in real
//! worktrees and call `signal_done` and the coordinator's tools through a real `baton mcp` they
//! launch from the MCP config Baton gave them. Loopback only; temporary directories; git's own
//! configuration kept out.

#![allow(clippy::unwrap_used)] // test helpers: a step that fails is the test failing

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

const BATON: &str = env!("CARGO_BIN_EXE_baton");
/// The longest a test waits for a daemon's ready line or a command to finish.
const EVENT_WAIT: std::time::Duration = std::time::Duration::from_secs(90);

fn isolated(command: &mut Command) -> &mut Command {
    command
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("XDG_STATE_HOME")
}

/// `work` on a thread, its answer within `EVENT_WAIT`.
fn within<T: Send + 'static>(what: &str, work: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(work());
    });
    rx.recv_timeout(EVENT_WAIT)
        .unwrap_or_else(|_| panic!("{what} did not happen within {EVENT_WAIT:?}"))
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = isolated(&mut Command::new("git"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const USER_CLAUDE_MD: &str = "# my notes\n\nKeep it short.\n";
const USER_MCP_JSON: &str = "{ \"mcpServers\": { \"mine\": { \"command\": \"my-server\" } } }\n";

/// A repository on `main` with the user's CLAUDE.md committed and their own, personal
/// `.mcp.json` beside it.
fn user_repo(root: &Path) -> PathBuf {
    let repo = root.join("project");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["config", "user.name", "Test"]);
    git(&repo, &["config", "user.email", "test@example.com"]);
    std::fs::write(repo.join("CLAUDE.md"), USER_CLAUDE_MD).unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "init"]);
    std::fs::write(repo.join(".mcp.json"), USER_MCP_JSON).unwrap();
    repo
}

struct Daemon {
    child: Child,
    state: PathBuf,
}

impl Daemon {
    fn start(state: &Path) -> Daemon {
        let log = std::fs::File::create(state.with_extension("stderr")).unwrap();
        let mut child = isolated(&mut Command::new(BATON))
            .args(["daemon", "--port", "0", "--state-dir"])
            .arg(state)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let line = within("the daemon's ready line", move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).unwrap();
            line
        });
        assert!(line.starts_with("baton daemon: API "), "{line:?}");
        Daemon {
            child,
            state: state.to_owned(),
        }
    }

    /// Runs `baton <args> --state-dir <state>` to its end.
    fn cli(&self, args: &[&str]) -> Output {
        cli(args, &self.state)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.state.with_extension("stderr")).unwrap_or_default()
    }

    fn stop(mut self) {
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        let status = within("the daemon's exit", move || self.child.wait().unwrap());
        assert!(status.success(), "{status:?}");
    }
}

fn cli(args: &[&str], state: &Path) -> Output {
    let mut command = isolated(&mut Command::new(BATON))
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = &mut command;
    within("a baton command", move || {
        command.wait_with_output().unwrap()
    })
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json(out: &Output) -> Value {
    assert!(out.status.success(), "{}", text(out));
    serde_json::from_slice(&out.stdout).unwrap()
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
        "done: the coordinator made 2 task(s), and none is left",
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
    assert_eq!(coordinator["session"]["readiness"], "Ready", "{status}");
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
