//! The real agent CLIs, from npm, in Baton's terminals: each is started by the daemon as a
//! sub-task, with the launch arguments and MCP config Baton generates (Claude Code's
//! `--mcp-config`, Codex's `--config` override, Gemini CLI's `.gemini/settings.json`), in a
//! fresh home directory on a machine that cannot reach their model services. Each must accept
//! what Baton gave it (no configuration error: it shows its first real screen and keeps running)
//! and the prompt detector must read that screen for what it is: a sign-in menu or a trust
//! dialog with a `❯`/`●` cursor is a dialog, never an agent at its prompt.
//!
//! The CLIs are installed by the test itself, at the versions pinned in [`AGENTS`], into
//! `target/ci/agents` with npm (on every machine here); the canary (`.ci/canary`) runs the same
//! tests on the newest versions (`BATON_AGENT_VERSION_<COMMAND>`, `BATON_AGENTS_DIR`). With `BATON_CAPTURE_FIXTURES=DIR` the
//! screens captured are written into DIR as detector recordings (`scenarios/detector/` holds
//! the committed ones).

#![allow(clippy::unwrap_used)] // test helpers: a step that fails is the test failing

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use baton_runtime::core::detector::{Detector, Profile, Readiness};
use baton_runtime::core::state::Attention;
use baton_runtime::core::time::Millis;
use common::{Daemon, repo_with};
use serde_json::{Value, json};

/// The CLIs: their command, npm package and pinned version.
const AGENTS: [(&str, &str, &str); 3] = [
    ("claude", "@anthropic-ai/claude-code", "2.1.332"),
    ("codex", "@openai/codex", "0.171.0"),
    ("gemini", "@google/gemini-cli", "0.61.0"),
];
/// A screen is taken as settled once nothing came for this long.
const SETTLED: Duration = Duration::from_secs(3);
/// The longest a CLI may take to show its first screen and settle.
const SCREEN_WAIT: Duration = Duration::from_secs(30);

/// One CLI at a time: each is a heavy Node.js or native program, and on a two-core machine
/// several at once starve each other and the daemon (a test of what they show, not of load).
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The CLIs to run, with the version each is pinned at, or the one named by
/// `BATON_AGENT_VERSION_<COMMAND>` (the canary, `.ci/canary`, runs the newest this way).
fn wanted() -> Vec<(&'static str, &'static str, String)> {
    AGENTS
        .iter()
        .map(|(command, package, pinned)| {
            let variable = format!("BATON_AGENT_VERSION_{}", command.to_uppercase());
            let version = std::env::var(variable).unwrap_or_else(|_| (*pinned).to_owned());
            (*command, *package, version)
        })
        .collect()
}

/// Where the CLIs are installed (`target/ci/agents`, or `BATON_AGENTS_DIR`), installing them
/// (once per test run) when the wanted versions are not there.
fn agents() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os("BATON_AGENTS_DIR").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ci/agents"),
            PathBuf::from,
        );
        let version_of = |package: &str| -> Option<String> {
            let manifest = dir.join("node_modules").join(package).join("package.json");
            let json: Value = serde_json::from_slice(&std::fs::read(manifest).ok()?).ok()?;
            json["version"].as_str().map(str::to_owned)
        };
        let wanted = wanted();
        if wanted
            .iter()
            .any(|(_, package, version)| version_of(package).as_deref() != Some(version))
        {
            std::fs::create_dir_all(&dir).unwrap();
            let specs: Vec<String> = wanted
                .iter()
                .map(|(_, package, version)| format!("{package}@{version}"))
                .collect();
            let out = std::process::Command::new("npm")
                .args(["install", "--no-fund", "--no-audit", "--prefix"])
                .arg(&dir)
                .args(&specs)
                .output()
                .unwrap_or_else(|e| {
                    panic!("npm is needed to install the agent CLIs (apt-get install -y nodejs npm): {e}")
                });
            assert!(
                out.status.success(),
                "npm install {specs:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        dir
    })
}

fn bin(name: &str) -> String {
    agents()
        .join("node_modules/.bin")
        .join(name)
        .display()
        .to_string()
}

/// What a sub-task's terminal showed until it settled, and how its task stood then.
struct Screen {
    bytes: Vec<u8>,
    task: Value,
}

impl Screen {
    /// The screen as text, escape sequences left out.
    fn text(&self) -> String {
        let raw = String::from_utf8_lossy(&self.bytes);
        let mut out = String::new();
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                match chars.next() {
                    Some('[') => {
                        for c in chars.by_ref() {
                            if ('@'..='~').contains(&c) {
                                break;
                            }
                        }
                        // Cursor moves stand for the spaces they skip (Claude Code draws
                        // them so).
                        out.push(' ');
                    }
                    Some(']') => {
                        while let Some(c) = chars.next() {
                            if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some())
                            {
                                break;
                            }
                        }
                    }
                    _ => {}
                }
            } else if !c.is_control() || c == '\n' {
                out.push(c);
            } else {
                out.push(' ');
            }
        }
        // Runs of spaces as one, as a reader sees the words.
        let mut words = String::with_capacity(out.len());
        for c in out.chars() {
            if !(c == ' ' && words.ends_with(' ')) {
                words.push(c);
            }
        }
        words
    }

    /// The detector's reading of the whole capture, well after its end.
    fn reading(&self, profile: Profile) -> (Readiness, bool) {
        let mut detector = Detector::new(profile, Millis(0));
        detector.feed(Millis(0), &self.bytes);
        let assessment = detector.assess(Millis(60_000));
        (assessment.readiness, assessment.idle)
    }

    /// The agent kept running, its task is not idle, and the detector reads a screen that
    /// waits for a human, for `reason`.
    fn is_a_running_dialog(&self, profile: Profile, reason: Attention) {
        assert_eq!(
            self.task["exitCode"],
            Value::Null,
            "it keeps running: {}",
            self.task
        );
        assert_eq!(self.task["status"], "running", "a dialog is not idle");
        assert_eq!(self.reading(profile), (Readiness::Attention(reason), false));
    }

    fn capture_as(&self, name: &str) {
        if let Some(dir) = std::env::var_os("BATON_CAPTURE_FIXTURES") {
            std::fs::write(Path::new(&dir).join(format!("{name}.raw")), &self.bytes).unwrap();
        }
    }
}

/// A temporary directory holding an empty home (`home/`) and a project repository with one
/// commit (`project/`): a machine on which the agent CLIs were never run.
fn fresh_machine() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let repo = repo_with(
        &temp.path().join("project"),
        &[("README.md", "# project\n")],
    );
    (temp, home, repo)
}

/// Starts `cli` as a sub-task of a coordinator on a fresh repository, under a fresh `home`
/// (prepared by `seed`), with `env` for the daemon and its agents; what its terminal showed.
fn first_screen(cli: &str, seed: impl FnOnce(&Path), env: &[(&str, &str)]) -> Screen {
    let _turn = one_at_a_time();
    let (temp, home, repo) = fresh_machine();
    seed(&home);
    let mut vars: Vec<(&str, &OsStr)> = vec![("HOME", home.as_os_str())];
    vars.extend(env.iter().map(|(k, v)| (*k, OsStr::new(*v))));
    let daemon = Daemon::start_with(&temp.path().join("state"), &vars);
    let (_, token, _) = daemon.register(&repo, &bin(cli), &[]);
    let task = daemon.create_task(&token, "first");
    let id = task["id"].as_str().unwrap();
    let shown = terminal_of(&daemon, id);
    let (_, task) = daemon.rest(&token, "GET", &format!("/api/tasks/{id}"), None);
    daemon.stop();
    Screen { task, ..shown }
}

/// The task's terminal, from its scrollback, until nothing came for [`SETTLED`], it ended, or
/// [`SCREEN_WAIT`] is over.
async fn watch(client: baton_runtime::cli::app::AppClient, task: String) -> Vec<u8> {
    use futures_util::StreamExt as _;
    let mut socket = client
        .websocket(&format!("/app/attach/{task}"))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + SCREEN_WAIT;
    let mut bytes = Vec::new();
    // An animated screen (a spinner, a blinking cursor) never goes quiet: it is taken as it
    // stands at the deadline.
    while tokio::time::Instant::now() < deadline {
        let wait = SETTLED.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
        match tokio::time::timeout(wait, socket.next()).await {
            Ok(Some(Ok(tungstenite::Message::Binary(chunk)))) => bytes.extend_from_slice(&chunk),
            Ok(Some(Ok(tungstenite::Message::Text(_)))) | Ok(None) | Ok(Some(Err(_))) => break,
            Ok(Some(Ok(_))) => {}
            // Quiet for SETTLED with something on screen, or out of time.
            Err(_) if !bytes.is_empty() || tokio::time::Instant::now() >= deadline => break,
            Err(_) => {}
        }
    }
    bytes
}

#[test]
fn claude_code_takes_its_mcp_config_and_its_trust_dialog_is_a_dialog() {
    // Onboarding done and a key in the environment, as a user who set Claude Code up: the
    // first screen is the folder trust question (its footer says `Esc to cancel`).
    let screen = first_screen(
        "claude",
        |home| {
            std::fs::write(
                home.join(".claude.json"),
                "{\"hasCompletedOnboarding\": true, \"theme\": \"dark\"}\n",
            )
            .unwrap();
        },
        &[(
            "ANTHROPIC_API_KEY",
            "sk-ant-api03-offline-test-key-0000000000",
        )],
    );
    screen.capture_as("claude-real-trust-dialog");
    let text = screen.text();
    assert!(text.contains("trust this folder"), "{text}");
    assert!(!text.to_lowercase().contains("invalid"), "{text}");
    screen.is_a_running_dialog(Profile::Claude, Attention::Dialog);
}

#[test]
fn claude_code_offline_on_a_fresh_home_says_so_and_is_never_ready() {
    let screen = first_screen("claude", |_| {}, &[]);
    screen.capture_as("claude-real-offline-first-start");
    let text = screen.text();
    assert!(
        text.contains("Unable to connect to Anthropic services"),
        "{text}"
    );
    let (readiness, idle) = screen.reading(Profile::Claude);
    assert!(!idle && readiness != Readiness::Ready, "{readiness:?}");
}

#[test]
fn codex_takes_its_config_override_and_its_sign_in_menu_is_a_dialog() {
    let screen = first_screen("codex", |_| {}, &[]);
    screen.capture_as("codex-real-sign-in-menu");
    let text = screen.text();
    assert!(text.contains("Sign in with ChatGPT"), "{text}");
    assert!(!text.contains("Error loading config"), "{text}");
    screen.is_a_running_dialog(Profile::Codex, Attention::SignIn);
}

#[test]
fn gemini_reads_batons_server_from_its_settings_and_its_trust_dialog_is_a_dialog() {
    // A daemon started inside a CI job: with these inherited, Gemini CLI would go headless and
    // exit asking for credentials instead of showing its interface.
    let screen = first_screen(
        "gemini",
        |_| {},
        &[("CI", "true"), ("GITHUB_ACTIONS", "true")],
    );
    screen.capture_as("gemini-real-trust-dialog");
    let text = screen.text();
    assert!(
        text.contains("Do you trust the files in this folder?"),
        "{text}"
    );
    assert!(
        text.contains("MCP Servers (1)") && text.contains("- baton"),
        "Gemini found Baton's server in the worktree's settings: {text}"
    );
    screen.is_a_running_dialog(Profile::Gemini, Attention::Dialog);
}

/// What the scripted model endpoint was asked.
#[derive(Default)]
struct Asked {
    /// Requests for a model's answer.
    messages: usize,
    /// The results of Baton's tools that came back in them.
    tool_results: Vec<String>,
    /// Told of each result as it comes.
    told: Option<std::sync::mpsc::Sender<String>>,
    /// The Baton tools each request offered, in order (for a failure's message).
    offered: Vec<Vec<String>>,
    /// The tool results told already: (tool use id, text).
    seen: std::collections::BTreeSet<(String, String)>,
    /// Requests whose system prompt held the sub-task instruction block (a sub-task's Claude
    /// Code gets it with `--append-system-prompt`).
    instructed: usize,
}

/// A model that asks to run a shell command first (Claude Code then asks its user's permission,
/// as a sub-task started without skip-permission flags does), then says `Done.`.
fn permission_script(tools: &[&str], results: &[String]) -> Option<(&'static str, Value)> {
    (tools.contains(&"Bash") && results.is_empty()).then(|| {
        (
            "Bash",
            json!({ "command": "touch hello.txt", "description": "Create a file" }),
        )
    })
}

/// A scripted model endpoint on loopback speaking the Anthropic Messages API (streamed): asked
/// with Baton's `signal_done` among its tools and no tool result yet, it answers by calling
/// `signal_done`; otherwise it says `Done.`. Its port, and what it was asked.
fn scripted_model() -> (u16, std::sync::Arc<std::sync::Mutex<Asked>>) {
    scripted_model_with(sub_task_script)
}

/// A sub-task's model: `signal_done` first, then `Done.`.
fn sub_task_script(tools: &[&str], results: &[String]) -> Option<(&'static str, Value)> {
    (tools.contains(&"mcp__baton__signal_done") && results.is_empty())
        .then(|| ("mcp__baton__signal_done", json!({})))
}

/// The text of a tool result as the model gets it (a string, or text blocks).
fn result_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        other => other.to_string(),
    }
}

/// A coordinator's model: make a task with its assignment, wait for its signal, wait until its
/// agent is idle after its turn, merge it, close it, then `Done.`; a sub-task's as
/// [`sub_task_script`].
fn coordinator_script(tools: &[&str], results: &[String]) -> Option<(&'static str, Value)> {
    if !tools.contains(&"mcp__baton__create_task") {
        return sub_task_script(tools, results);
    }
    let task = || {
        results
            .first()
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
            .and_then(|v| v["id"].as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    match results.len() {
        0 => Some((
            "mcp__baton__create_task",
            json!({ "name": "real", "prompt": "Finish the task.\nThen call signal_done." }),
        )),
        1 => Some((
            "mcp__baton__wait_for_signal_done",
            json!({ "timeoutMs": 120_000 }),
        )),
        2 => Some((
            "mcp__baton__wait_for_idle",
            json!({ "taskId": task(), "timeoutMs": 60_000 }),
        )),
        3 => Some((
            "mcp__baton__merge_task",
            json!({ "taskId": task(), "squash": true, "message": "real: the sub-task's work" }),
        )),
        4 => Some(("mcp__baton__close_task", json!({ "taskId": task() }))),
        _ => None,
    }
}

/// A model's script: given the tools offered and the tool results so far, in order, the tool
/// to call and its input, or `None` to say `Done.`.
type Script = fn(&[&str], &[String]) -> Option<(&'static str, Value)>;

/// A model endpoint answering by `script`.
fn scripted_model_with(script: Script) -> (u16, std::sync::Arc<std::sync::Mutex<Asked>>) {
    scripted_endpoint("/v1/messages", move |body, asked| {
        let request: Value = serde_json::from_slice(body).unwrap_or_default();
        let mut tools: Vec<&str> = request["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str())
            .collect();
        // Claude Code 2.1.332 defers MCP tools behind `ToolSearch`: their names come in a
        // system message only. A model may call one directly; it is offered all the same.
        let deferred = deferred_tools(&String::from_utf8_lossy(body));
        tools.extend(deferred.iter().map(String::as_str));
        let messages = request["messages"].as_array().cloned().unwrap_or_default();
        // Every tool result of the conversation, once each, in order (Claude Code 2.1.332
        // may repeat earlier turns' content, and ends a request with a system message).
        let mut told_here: Vec<(String, String)> = Vec::new();
        for content in messages
            .iter()
            .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
            .filter(|c| c["type"] == "tool_result")
        {
            let id = content["tool_use_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if !told_here.iter().any(|(seen, _)| *seen == id) {
                told_here.push((id, result_text(&content["content"])));
            }
        }
        let results: Vec<String> = told_here.iter().map(|(_, text)| text.clone()).collect();
        let call = script(&tools, &results);
        // New to this endpoint: not told in an earlier request of any conversation.
        let fresh: Vec<String> = told_here
            .into_iter()
            .filter(|result| asked.seen.insert(result.clone()))
            .map(|(_, text)| text)
            .collect();
        asked.messages += 1;
        // The system prompt, not a message: the typed assignment is no proof.
        if request["system"]
            .to_string()
            .contains(baton_runtime::agents::preamble::BLOCK_START)
        {
            asked.instructed += 1;
        }
        asked.offered.push(
            tools
                .iter()
                .filter(|t| t.contains("baton"))
                .map(|t| (*t).to_owned())
                .collect(),
        );
        if let Some(told) = &asked.told {
            for result in &fresh {
                let _ = told.send(result.clone());
            }
        }
        asked.tool_results.extend(fresh);
        let id = format!("toolu_baton_{}", results.len() + 1);
        let (block, delta, stop) = match &call {
            Some((name, input)) => (
                json!({ "type": "tool_use", "id": id, "name": name, "input": {} }),
                json!({ "type": "input_json_delta", "partial_json": input.to_string() }),
                "tool_use",
            ),
            None => (
                json!({ "type": "text", "text": "" }),
                json!({ "type": "text_delta", "text": "Done." }),
                "end_turn",
            ),
        };
        let model = request["model"].clone();
        let events = [
            (
                "message_start",
                json!({ "type": "message_start", "message": { "id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null, "usage": { "input_tokens": 10, "output_tokens": 1 } } }),
            ),
            (
                "content_block_start",
                json!({ "type": "content_block_start", "index": 0, "content_block": block }),
            ),
            (
                "content_block_delta",
                json!({ "type": "content_block_delta", "index": 0, "delta": delta }),
            ),
            (
                "content_block_stop",
                json!({ "type": "content_block_stop", "index": 0 }),
            ),
            (
                "message_delta",
                json!({ "type": "message_delta", "delta": { "stop_reason": stop, "stop_sequence": null }, "usage": { "output_tokens": 5 } }),
            ),
            ("message_stop", json!({ "type": "message_stop" })),
        ];
        events.to_vec()
    })
}

/// The names of Baton's tools a request mentions anywhere (Claude Code 2.1.332 lists deferred
/// tools by name in a system message instead of in `tools`).
fn deferred_tools(body: &str) -> Vec<String> {
    let mut names: Vec<String> = body
        .match_indices("mcp__baton__")
        .map(|(at, _)| {
            body[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A scripted model endpoint at `POST path`, answering each request by `respond` (given the
/// request's body and what the endpoint was asked so far) with a stream of its events: its
/// port, and what it was asked.
fn scripted_endpoint(
    path: &str,
    respond: impl Fn(&[u8], &mut Asked) -> Vec<(&'static str, Value)> + Clone + Send + Sync + 'static,
) -> (u16, std::sync::Arc<std::sync::Mutex<Asked>>) {
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Asked::default()));
    let state = asked.clone();
    let answer = move |body: axum::body::Bytes| {
        let events = respond(&body, &mut state.lock().unwrap());
        let response = event_stream(&events);
        async move { response }
    };
    (serve_on_loopback(path, axum::routing::post(answer)), asked)
}

/// A scripted model's streamed answer: each `(name, data)` as a server-sent event.
fn event_stream(events: &[(&str, Value)]) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let text: String = events
        .iter()
        .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
        .collect();
    (
        [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
        text,
    )
        .into_response()
}

/// Serves `route` at `path` (and `{}` anywhere else) on a free loopback port, on a thread of
/// its own: the port.
fn serve_on_loopback(path: &str, route: axum::routing::MethodRouter) -> u16 {
    let app = axum::Router::new()
        .route(path, route)
        .fallback(|| async { "{}" });
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    port
}

/// What the terminal of `id` (a task, or a coordinator's agent) shows now, and until it settles.
fn terminal_of(daemon: &Daemon, id: &str) -> Screen {
    let client = baton_runtime::cli::app::AppClient::new(&daemon.state);
    let bytes = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(watch(client, id.to_owned()));
    Screen {
        bytes,
        task: Value::Null,
    }
}

/// A home where Claude Code was set up by a user who onboarded, approved [`OFFLINE_KEY`] and
/// trusts `repo` (its project entry also holding `project`), and the environment that points
/// it at the scripted endpoint on `port`.
fn claude_offline(
    home: &Path,
    repo: &Path,
    project: Value,
    port: u16,
) -> Vec<(&'static str, std::ffi::OsString)> {
    let mut entry = json!({ "hasTrustDialogAccepted": true });
    if let (Some(entry), Some(extra)) = (entry.as_object_mut(), project.as_object()) {
        entry.extend(extra.clone());
    }
    // Permission prompts as a user who keeps them: Claude Code 2.1.332 starts in auto mode
    // otherwise (its server-side check is not there offline), and its offer to keep auto mode
    // is seen already.
    std::fs::create_dir_all(home.join(".claude")).unwrap();
    std::fs::write(
        home.join(".claude/settings.json"),
        json!({ "permissions": { "defaultMode": "default" } }).to_string(),
    )
    .unwrap();
    let seeded = json!({
        "hasCompletedOnboarding": true,
        "hasSeenAutoDefaultNudge": true,
        "theme": "dark",
        "customApiKeyResponses": { "approved": [&OFFLINE_KEY[OFFLINE_KEY.len() - 20..]], "rejected": [] },
        "projects": { repo.display().to_string(): entry },
    });
    std::fs::write(home.join(".claude.json"), seeded.to_string()).unwrap();
    vec![
        ("HOME", home.as_os_str().to_owned()),
        (
            "ANTHROPIC_BASE_URL",
            format!("http://127.0.0.1:{port}").into(),
        ),
        ("ANTHROPIC_API_KEY", OFFLINE_KEY.into()),
        ("DISABLE_TELEMETRY", "1".into()),
        ("DISABLE_AUTOUPDATER", "1".into()),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".into()),
    ]
}

/// A sub-task's whole turn, as its coordinator sees it: the task is made with its assignment
/// (Baton types it once the agent shows its prompt and its MCP server announced itself, a
/// moment after the agent listed its tools), the coordinator's wait takes the task's signal,
/// the task goes idle after its turn (its screen captured as `capture`), and the real
/// `signal_done`'s answer went back to the model.
fn a_whole_turn_signals_done_and_ends_idle(
    daemon: &Daemon,
    token: &str,
    asked: &std::sync::Mutex<Asked>,
    capture: &str,
) {
    let (status, task) = daemon.rest(
        token,
        "POST",
        "/api/tasks",
        Some(json!({ "name": "offline", "prompt": "Finish the task.\nThen call signal_done." })),
    );
    assert_eq!(status, 201, "{task}\n{}", daemon.log());
    let id = task["id"].as_str().unwrap();
    let (status, signal) = daemon.rest(
        token,
        "POST",
        "/api/wait-signal",
        Some(json!({ "timeoutMs": 60_000 })),
    );
    assert_eq!(
        (status, signal["taskId"].as_str()),
        (200, Some(id)),
        "{signal}\nBaton's tools offered to the model, request by request: {:?}\n{}\n{}",
        asked.lock().unwrap().offered,
        terminal_of(daemon, id).text(),
        daemon.log()
    );
    let (status, idle) = daemon.rest(
        token,
        "POST",
        &format!("/api/tasks/{id}/wait"),
        Some(json!({ "timeoutMs": 30_000 })),
    );
    assert_eq!(status, 200, "{idle}");
    let screen = terminal_of(daemon, id);
    screen.capture_as(capture);
    assert_eq!(idle["reason"], "idle", "{idle}\n{}", screen.text());
    let results = &asked.lock().unwrap().tool_results;
    assert!(
        results.iter().any(|r| r.contains("Done signal sent")),
        "the real signal_done's answer went back to the model: {results:?}"
    );
}

/// A key in the shape of Anthropic's, for the scripted endpoint only.
const OFFLINE_KEY: &str = "sk-ant-api03-offline-test-key-0000000000";

#[test]
fn a_whole_turn_of_claude_code_offline_signals_done_through_batons_mcp_server() {
    let _turn = one_at_a_time();
    let (port, asked) = scripted_model();
    let (temp, home, repo) = fresh_machine();
    // No screen but the prompt stands between Claude Code and its assignment.
    let env = claude_offline(&home, &repo, json!({}), port);
    let vars: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    let daemon = Daemon::start_with(&temp.path().join("state"), &vars);
    let (_, token, _) = daemon.register(&repo, &bin("claude"), &[]);
    // After the turn the detector reads Claude Code idle: its grid follows the in-place redraw
    // that replaces the turn's `esc to interrupt` footer.
    a_whole_turn_signals_done_and_ends_idle(&daemon, &token, &asked, "claude-real-whole-turn");
    let asked = asked.lock().unwrap();
    assert!(
        asked.instructed > 0,
        "the sub-task instructions reached the model's system prompt in none of {} requests",
        asked.messages
    );
    drop(asked);
    daemon.stop();
}

#[test]
fn claude_code_as_the_coordinator_assigns_waits_for_merges_and_closes_a_claude_code_sub_task() {
    let _turn = one_at_a_time();
    let (port, asked) = scripted_model_with(coordinator_script);
    let (told, results_told) = std::sync::mpsc::channel();
    asked.lock().unwrap().told = Some(told);
    let (temp, home, repo) = fresh_machine();
    // The user's own choice for the project's `.mcp.json` entry Baton merged: the coordinator
    // reaches Baton through the config Baton starts it with.
    let env = claude_offline(
        &home,
        &repo,
        json!({ "disabledMcpjsonServers": ["baton"] }),
        port,
    );
    let mut vars: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    // A user whose Claude Code moves any MCP call over a millisecond to the background (2.1.332
    // does so past 120 s by default): the coordinator's wait for its sub-task's signal must
    // still come back to the model as the call's answer, the signal in it.
    vars.push(("CLAUDE_CODE_MCP_AUTO_BACKGROUND_MS", OsStr::new("1")));
    let daemon = Daemon::start_with(&temp.path().join("state"), &vars);
    let claude = bin("claude");
    let (id, token, _) = daemon.register(&repo, &claude, &[]);
    let (status, agent) = daemon.app(
        "POST",
        &format!("/app/coordinators/{id}/agent"),
        Some(json!({ "command": claude, "prompt": "Split the work" })),
    );
    assert_eq!(status, 201, "{agent}\n{}", daemon.log());
    // The coordinator's own wait takes the sub-task's signal (a wait of ours would steal it):
    // the flow is over when the model is told the task is closed.
    let mut over = false;
    while !over {
        // Each step of the flow (a turn of either agent) comes within this of the one before.
        match results_told.recv_timeout(Duration::from_secs(150)) {
            Ok(result) => over = result.contains("Task closed"),
            Err(_) => break,
        }
    }
    let lead = terminal_of(&daemon, &id);
    let results = asked.lock().unwrap().tool_results.clone();
    if !over {
        let (_, tasks) = daemon.rest(&token, "GET", "/api/tasks", None);
        let sub_task = tasks[0]["id"]
            .as_str()
            .map(|task| terminal_of(&daemon, task).text());
        panic!(
            "the flow did not end: {results:#?}\noffered: {:?}\ncoordinator:\n{}\nsub-task:\n{}\n{}",
            asked.lock().unwrap().offered,
            lead.text(),
            sub_task.unwrap_or_default(),
            daemon.log()
        );
    }
    lead.capture_as("claude-real-coordinator-turn");
    let (_, tasks) = daemon.rest(&token, "GET", "/api/tasks", None);
    assert_eq!(tasks, json!([]), "the sub-task is closed");
    // What the model was told, each in some tool result (all of its parts in one).
    let told: [(&[&str], &str); 4] = [
        (&["Done signal sent"], "the sub-task's real signal_done"),
        (
            &["\"signalDoneAt\"", "\"remaining\": 0"],
            "the coordinator's wait answered with the signal, not moved to the background",
        ),
        (
            &["\"reason\": \"idle\""],
            "the sub-task was read idle after its turn",
        ),
        // The scripted sub-task changes nothing (its model only signals): the merge brings
        // nothing, and says so.
        (
            &["\"mainBranch\": \"main\"", "\"linesAdded\": 0"],
            "the merge into main",
        ),
    ];
    for (parts, what) in told {
        assert!(
            results.iter().any(|r| parts.iter().all(|p| r.contains(p))),
            "{what}: {results:#?}"
        );
    }
    daemon.stop();
}

/// A scripted model endpoint speaking the OpenAI Responses API (streamed), as Codex CLI talks
/// to a provider: offered Baton's `signal_done` (in the `mcp__baton` namespace) and no tool
/// output yet, it calls it; otherwise it says `Done.`. Its port, and what it was asked.
fn scripted_responses() -> (u16, std::sync::Arc<std::sync::Mutex<Asked>>) {
    scripted_endpoint("/v1/responses", |body, asked| {
        let request: Value = serde_json::from_slice(body).unwrap_or_default();
        let offered = request["tools"].as_array().into_iter().flatten().any(|t| {
            t["name"] == "mcp__baton"
                && t["tools"]
                    .as_array()
                    .is_some_and(|tools| tools.iter().any(|f| f["name"] == "signal_done"))
        });
        let outputs: Vec<String> = request["input"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|item| item["type"] == "function_call_output")
            .map(|item| result_text(&item["output"]))
            .collect();
        let call = offered && outputs.is_empty();
        asked.messages += 1;
        asked.tool_results = outputs;
        let item = if call {
            json!({ "type": "function_call", "id": "fc_1", "namespace": "mcp__baton", "name": "signal_done", "arguments": "{}", "call_id": "call_1" })
        } else {
            json!({ "type": "message", "id": "msg_1", "role": "assistant", "content": [{ "type": "output_text", "text": "Done." }] })
        };
        let events = [
            (
                "response.created",
                json!({ "type": "response.created", "response": { "id": "resp_1" } }),
            ),
            (
                "response.output_item.done",
                json!({ "type": "response.output_item.done", "output_index": 0, "item": item }),
            ),
            (
                "response.completed",
                json!({ "type": "response.completed", "response": { "id": "resp_1", "usage": { "input_tokens": 10, "input_tokens_details": null, "output_tokens": 5, "output_tokens_details": null, "total_tokens": 15 } } }),
            ),
        ];
        events.to_vec()
    })
}

#[test]
fn a_whole_turn_of_codex_offline_signals_done_through_batons_mcp_server() {
    let _turn = one_at_a_time();
    let (port, asked) = scripted_responses();
    let (temp, home, repo) = fresh_machine();
    std::fs::create_dir_all(home.join(".codex")).unwrap();
    // A user's Codex set up for a provider of their own, trusting the project. Baton's own
    // tools need no approval (its `--config` override says so).
    let config = format!(
        "model = \"scripted\"\nmodel_provider = \"scripted\"\n\n\
         [model_providers.scripted]\nname = \"scripted\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\n\
         env_key = \"SCRIPTED_KEY\"\nwire_api = \"responses\"\n\n\
         [projects.\"{}\"]\ntrust_level = \"trusted\"\n",
        repo.display()
    );
    std::fs::write(home.join(".codex/config.toml"), config).unwrap();
    let vars: Vec<(&str, &OsStr)> = vec![
        ("HOME", home.as_os_str()),
        ("SCRIPTED_KEY", OsStr::new("offline-test-key")),
    ];
    let daemon = Daemon::start_with(&temp.path().join("state"), &vars);
    let (_, token, _) = daemon.register(&repo, &bin("codex"), &[]);
    // After the turn the detector reads Codex idle: its grid follows the history Codex inserts
    // above its inline viewport (a scroll region), and reads the empty input line's faint
    // placeholder (`› Ask Codex to do anything`) as the prompt.
    a_whole_turn_signals_done_and_ends_idle(&daemon, &token, &asked, "codex-real-whole-turn");
    daemon.stop();
}

/// Follows the daemon's events (`/app/events`) on a thread of its own until an agent's state
/// needing a human, decided by its hooks, is told: that event, or `None` after `within`.
fn hook_attention_told(
    daemon: &Daemon,
    within: Duration,
) -> std::sync::mpsc::Receiver<Option<Value>> {
    let (tell, told) = std::sync::mpsc::channel();
    let client = baton_runtime::cli::app::AppClient::new(&daemon.state);
    let (opened, ready) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use futures_util::StreamExt as _;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let found = runtime.block_on(async move {
            let mut socket = client.websocket("/app/events").await.unwrap();
            let _ = opened.send(());
            let deadline = tokio::time::Instant::now() + within;
            while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, socket.next()).await
            {
                let tungstenite::Message::Text(text) = message else {
                    continue;
                };
                let event: Value = serde_json::from_str(&text).unwrap_or_default();
                let state = &event["agentState"];
                if state["source"] == "hook" && state["state"] == "needs_attention" {
                    return Some(event);
                }
            }
            None
        });
        let _ = tell.send(found);
    });
    ready.recv().unwrap();
    told
}

#[test]
fn claude_code_stopped_at_a_permission_prompt_is_seen_to_need_a_human_and_its_wait_says_so() {
    let _turn = one_at_a_time();
    let (port, _asked) = scripted_model_with(permission_script);
    let (temp, home, repo) = fresh_machine();
    let env = claude_offline(&home, &repo, json!({}), port);
    let vars: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    let daemon = Daemon::start_with(&temp.path().join("state"), &vars);
    let (_, token, _) = daemon.register(&repo, &bin("claude"), &[]);
    // Claude Code's PermissionRequest hook fires as the prompt opens, its Notification hook
    // six seconds later: the daemon hears of it from `baton hook`, with the task's credential.
    let hooked = hook_attention_told(&daemon, Duration::from_secs(120));
    let (status, task) = daemon.rest(
        &token,
        "POST",
        "/api/tasks",
        Some(json!({ "name": "asks", "prompt": "Create hello.txt" })),
    );
    assert_eq!(status, 201, "{task}\n{}", daemon.log());
    let id = task["id"].as_str().unwrap().to_owned();
    // The coordinator's wait returns, not times out, once the prompt shows.
    let (status, waited) = daemon.rest(
        &token,
        "POST",
        &format!("/api/tasks/{id}/wait"),
        Some(json!({ "timeoutMs": 90_000 })),
    );
    let screen = terminal_of(&daemon, &id);
    screen.capture_as("claude-real-permission-prompt");
    assert_eq!(
        (
            status,
            waited["reason"].as_str(),
            waited["attention"].as_str()
        ),
        (200, Some("needs_attention"), Some("permission")),
        "{waited}\n{}\n{}",
        screen.text(),
        daemon.log()
    );
    assert!(
        screen.text().contains("Do you want to proceed?"),
        "{}",
        screen.text()
    );
    assert_eq!(
        screen.reading(Profile::Claude).0,
        Readiness::Attention(Attention::Permission),
        "the screen alone says so too"
    );
    let (_, detail) = daemon.rest(&token, "GET", &format!("/api/tasks/{id}"), None);
    assert_eq!(detail["agentState"]["state"], "needs_attention", "{detail}");
    assert_eq!(detail["agentState"]["attention"], "permission", "{detail}");
    let event = hooked.recv().unwrap();
    assert!(
        event.as_ref().is_some_and(|e| e["taskId"] == id.as_str()),
        "a hook of the task reported it: {event:?}\n{}",
        daemon.log()
    );
    daemon.stop();
}
