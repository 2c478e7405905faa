//! The `baton` client commands (`status`, `coordinator start|stop`, `tasks`, `attach`,
//! `events`): requests to the daemon's app channel on its Unix socket, and what they print.
//!
//! The requests go through the runtime's own HTTP client (`mcp::http`) over the socket; the
//! WebSockets through tungstenite over the same socket, found in the state directory under
//! `endpoints::APP_SOCKET`. What is printed is made by the pure `render_*` functions below (and
//! `qr_text`, the phone URL as a QR code), tested without a daemon. Nothing here depends on
//! the daemon's code: the app channel (docs/app-channel.md) is the only contract.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::mcp::http::{self, BaseUrl, HttpError, UnixSocket};

/// What a client command says when no daemon answers on the socket.
pub const NOT_RUNNING: &str = "the baton daemon is not running";

/// Why a request to the daemon failed; the text says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket.
    #[error("{NOT_RUNNING} (no app channel at {}); start it with `baton daemon`", .0.display())]
    NotRunning(PathBuf),
    /// The connection broke or the answer is not HTTP.
    #[error("the daemon's app channel failed: {0}")]
    Broken(String),
    /// The daemon refused the request.
    #[error("{0}")]
    Refused(String),
}

/// The app channel of the daemon whose state directory is `state_dir`.
#[derive(Clone, Debug)]
pub struct AppClient {
    socket: PathBuf,
}

impl AppClient {
    /// A client of the daemon using `state_dir`.
    #[must_use]
    pub fn new(state_dir: &Path) -> Self {
        AppClient {
            socket: state_dir.join(crate::endpoints::APP_SOCKET),
        }
    }

    /// One request: the answer's JSON (`null` for an empty body) when it is 2xx.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let base = BaseUrl {
            host: "localhost".to_owned(),
            port: 80,
        };
        let bytes = body.map(Value::to_string).unwrap_or_default();
        let headers = [("content-type".to_owned(), "application/json".to_owned())];
        let request = http::encode(&base.host, method, path, &headers, bytes.as_bytes());
        let response = http::send(&UnixSocket(self.socket.clone()), &base, &request)
            .await
            .map_err(|error| match error {
                HttpError::Connect(_) => ClientError::NotRunning(self.socket.clone()),
                other => ClientError::Broken(other.to_string()),
            })?;
        let value: Value = if response.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&response.body)
                .map_err(|e| ClientError::Broken(format!("an answer that is not JSON: {e}")))?
        };
        if (200..300).contains(&response.status) {
            Ok(value)
        } else {
            Err(ClientError::Refused(value["error"].as_str().map_or_else(
                || format!("HTTP {}", response.status),
                str::to_owned,
            )))
        }
    }

    /// Opens the WebSocket at `path`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn websocket(
        &self,
        path: &str,
    ) -> Result<tokio_tungstenite::WebSocketStream<tokio::net::UnixStream>, ClientError> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|_| ClientError::NotRunning(self.socket.clone()))?;
        let url = format!("ws://localhost{path}");
        match tokio_tungstenite::client_async(url, stream).await {
            Ok((socket, _)) => Ok(socket),
            Err(tungstenite::Error::Http(response)) => {
                let body = response.body().clone().unwrap_or_default();
                let text = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| format!("HTTP {}", response.status()));
                Err(ClientError::Refused(text))
            }
            Err(error) => Err(ClientError::Broken(error.to_string())),
        }
    }
}

/// How `baton coordinator start --agent NAME` runs: the coordinator's own program and
/// arguments, and its sub-tasks'.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentChoice {
    /// The coordinator's agent.
    pub lead: (String, Vec<String>),
    /// Its sub-tasks' agent.
    pub sub_tasks: (String, Vec<String>),
}

/// The agent `name` stands for: `demo` (this `baton` binary's demo agent, `baton` being
/// `program`), `claude`, `codex`, `gemini`, or any command line (split at spaces).
///
/// # Errors
/// `name` is empty.
pub fn agent_choice(name: &str, program: &str) -> Result<AgentChoice, String> {
    let demo = crate::agents::DEMO_AGENT_SUBCOMMAND;
    if name == "demo" {
        let args = |role: &str| vec![demo.to_owned(), "--role".to_owned(), role.to_owned()];
        return Ok(AgentChoice {
            lead: (program.to_owned(), args("coordinator")),
            sub_tasks: (program.to_owned(), args("sub-task")),
        });
    }
    let mut words = name.split_whitespace().map(str::to_owned);
    let command = words.next().ok_or("--agent is empty")?;
    let args: Vec<String> = words.collect();
    Ok(AgentChoice {
        lead: (command.clone(), args.clone()),
        sub_tasks: (command, args),
    })
}

/// `baton status`: the daemon and each coordinator with its agent and tasks.
#[must_use]
pub fn render_status(status: &Value) -> String {
    let mut out = format!(
        "baton daemon {} · API {} · state {}\n",
        status["version"].as_str().unwrap_or("?"),
        status["apiUrl"].as_str().unwrap_or("?"),
        status["stateDir"].as_str().unwrap_or("?"),
    );
    let coordinators = status["coordinators"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if coordinators.is_empty() {
        out.push_str(
            "no coordinators (start one: baton coordinator start --project DIR --agent demo)\n",
        );
    }
    for c in &coordinators {
        let session = &c["session"];
        let agent = if session.is_null() {
            "no agent running".to_owned()
        } else if session["status"] == "exited" {
            format!(
                "agent {} exited ({})",
                session["program"].as_str().unwrap_or("?"),
                session["exitCode"]
                    .as_i64()
                    .map_or_else(|| "killed".to_owned(), |c| format!("code {c}"))
            )
        } else {
            format!(
                "agent {} {}",
                session["program"].as_str().unwrap_or("?"),
                describe_state(&session["state"], &session["attention"])
            )
        };
        out.push_str(&format!(
            "coordinator {} · {} · {} · {} task(s) · sub-tasks run {}\n",
            c["id"].as_str().unwrap_or("?"),
            c["projectRoot"].as_str().unwrap_or("?"),
            agent,
            c["tasks"].as_u64().unwrap_or(0),
            c["agent"].as_str().unwrap_or("?"),
        ));
    }
    out
}

/// An agent's state in words: its `state` and, when it needs a human, the `attention` reason.
fn describe_state(state: &Value, attention: &Value) -> String {
    match state.as_str().unwrap_or("") {
        "waiting_for_input" => "waiting for input".to_owned(),
        "working" => "working".to_owned(),
        "starting" => "starting".to_owned(),
        "exited" => "exited".to_owned(),
        "needs_attention" => {
            let reason = attention.as_str().unwrap_or("unknown");
            let advice = crate::core::state::Attention::ALL
                .into_iter()
                .find(|a| a.name() == reason)
                .map_or("", |a| a.advice());
            format!("NEEDS A HUMAN ({reason}: {advice})")
        }
        _ => "running".to_owned(),
    }
}

/// `baton tasks`: one line per sub-task.
#[must_use]
pub fn render_tasks(tasks: &Value) -> String {
    let list = tasks["tasks"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        return "no tasks\n".to_owned();
    }
    let mut out = String::new();
    for t in &list {
        let agent = &t["agentState"];
        out.push_str(&format!(
            "{}  {:<10} {:<20} {}  ({})  agent {}\n",
            t["id"].as_str().unwrap_or("?"),
            t["status"].as_str().unwrap_or("?"),
            t["name"].as_str().unwrap_or("?"),
            t["branchName"].as_str().unwrap_or("?"),
            t["worktreePath"].as_str().unwrap_or("?"),
            describe_state(&agent["state"], &agent["attention"]),
        ));
    }
    out
}

/// `baton events`: one readable line for an event of the app channel.
#[must_use]
pub fn render_event(event: &Value, names: &std::collections::BTreeMap<String, String>) -> String {
    let task = |field: &str| {
        let id = event[field].as_str().unwrap_or("?");
        names.get(id).cloned().unwrap_or_else(|| id.to_owned())
    };
    match event["type"].as_str().unwrap_or("") {
        "task_created" => format!(
            "+ task {} created on {} ({})",
            event["task"]["name"].as_str().unwrap_or("?"),
            event["task"]["branchName"].as_str().unwrap_or("?"),
            event["task"]["id"].as_str().unwrap_or("?"),
        ),
        "task_merged" => format!(
            "✓ task {} merged into {} (+{} -{})",
            task("taskId"),
            event["merge"]["mainBranch"].as_str().unwrap_or("?"),
            event["merge"]["linesAdded"].as_u64().unwrap_or(0),
            event["merge"]["linesRemoved"].as_u64().unwrap_or(0),
        ),
        "task_closed" => format!(
            "- task {} closed (worktree and branch removed)",
            task("taskId")
        ),
        "cleanup_failed" => format!(
            "! task {}: cleanup failed: {}",
            task("taskId"),
            event["error"].as_str().unwrap_or("?")
        ),
        "notification_staged" => format!(
            "… notification for the coordinator: {}",
            event["text"].as_str().unwrap_or("").replace('\n', " ")
        ),
        "notification_cleared" => "… notifications cleared".to_owned(),
        "task_state" if event["change"] == "agent_state" => {
            let agent = &event["agentState"];
            let state = describe_state(&agent["state"], &agent["attention"]);
            let mark = if agent["state"] == "needs_attention" {
                "!"
            } else {
                "·"
            };
            format!(
                "{mark} task {}: agent {state} (by its {})",
                task("taskId"),
                agent["source"].as_str().unwrap_or("?")
            )
        }
        "task_state" => format!(
            "· task {}: {}",
            task("taskId"),
            event["change"].as_str().unwrap_or("?").replace('_', " ")
        ),
        "task_orphaned" => format!(
            "! task {} orphaned: {}",
            task("taskId"),
            event["text"].as_str().unwrap_or("")
        ),
        "lagged" => format!(
            "! {} event(s) missed",
            event["missed"].as_u64().unwrap_or(0)
        ),
        other => format!("? {other}: {event}"),
    }
}

/// The body of `POST /app/coordinators` for `baton coordinator start`.
#[must_use]
pub fn register_body(project: &Path, choice: &AgentChoice, skip_permissions: bool) -> Value {
    json!({
        "projectRoot": project,
        "agent": choice.sub_tasks.0,
        "args": choice.sub_tasks.1,
        "skipPermissions": skip_permissions,
    })
}

/// Writes `text` to standard output now.
/// Prints `text` as a terminal may show it: names, screen lines and errors come from users and
/// agents, so every hidden character in them (an escape sequence's start, a bidi override) is
/// escaped (`core::text::terminal_safe`).
fn say(text: &str) -> anyhow::Result<()> {
    say_raw(&crate::core::text::terminal_safe(text))
}

/// Prints `text` as it is (Baton's own words only).
fn say_raw(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// `value` as pretty JSON, its hidden characters as JSON escapes (still JSON, safe to print).
fn pretty(value: &Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    format!("{}\n", crate::core::text::json_terminal_safe(&text))
}

/// `baton status`.
///
/// # Errors
/// The daemon is not running or failed.
pub async fn status(client: &AppClient, as_json: bool) -> anyhow::Result<()> {
    let status = client.request("GET", "/app/status", None).await?;
    say(&if as_json {
        pretty(&status)
    } else {
        render_status(&status)
    })
}

/// `baton tasks`.
///
/// # Errors
/// The daemon is not running or failed.
pub async fn tasks(client: &AppClient, as_json: bool) -> anyhow::Result<()> {
    let tasks = client.request("GET", "/app/tasks", None).await?;
    say(&if as_json {
        pretty(&tasks)
    } else {
        render_tasks(&tasks)
    })
}

/// `baton explain TASK`.
///
/// # Errors
/// The daemon is not running, or has no such task.
pub async fn explain(client: &AppClient, task: &str, as_json: bool) -> anyhow::Result<()> {
    let path = format!(
        "/app/tasks/{}/explain",
        crate::core::routes::encode_component(task)
    );
    let explained = client.request("GET", &path, None).await?;
    say(&if as_json {
        pretty(&explained)
    } else {
        render_explanation(&explained)
    })
}

/// `baton explain`: the verdict, then each source's word with its times, then the screen.
#[must_use]
pub fn render_explanation(explained: &Value) -> String {
    let agent = &explained["agentState"];
    let mut out = format!(
        "task {} ({}): agent {}, by its {} since {}\n",
        explained["name"].as_str().unwrap_or("?"),
        explained["taskId"].as_str().unwrap_or("?"),
        describe_state(&agent["state"], &agent["attention"]),
        agent["source"].as_str().unwrap_or("?"),
        agent["since"].as_str().unwrap_or("?"),
    );
    if let Some(source) = explained["disagreement"]["source"].as_str() {
        out.push_str(&format!(
            "  its {source} says otherwise: {}\n",
            explained["disagreement"]["state"].as_str().unwrap_or("?")
        ));
    }
    let evidence = &explained["evidence"];
    out.push_str("evidence (the newest wins; at the same moment hook, then osc, then screen):\n");
    for (source, what) in [
        ("hook", "its hooks (baton hook)"),
        ("osc", "what it printed of its state (OSC)"),
        ("screen", "its screen"),
        ("process", "Baton's own actions (a prompt typed)"),
    ] {
        let seen = &evidence[source];
        let line = if seen.is_null() {
            "nothing".to_owned()
        } else {
            format!(
                "{} since {} (last said {})",
                describe_state(&seen["state"], &seen["attention"]),
                seen["since"].as_str().unwrap_or("?"),
                seen["last"].as_str().unwrap_or("?"),
            )
        };
        out.push_str(&format!("  {what}: {line}\n"));
    }
    if let Some(still) = evidence["screenStillSince"].as_str() {
        out.push_str(&format!(
            "  the screen shows nothing a rule knows, unchanged since {still}\n"
        ));
    }
    out.push_str(&format!(
        "the screen reads {} (last changed {}):\n",
        explained["readiness"].as_str().unwrap_or("?"),
        explained["lastActivityAt"].as_str().unwrap_or("?"),
    ));
    for line in explained["screen"].as_array().into_iter().flatten() {
        out.push_str(&format!("  | {}\n", line.as_str().unwrap_or("")));
    }
    out
}

/// What `baton coordinator start` is given.
#[derive(Clone, Debug)]
pub struct StartOptions {
    /// The project (a git repository).
    pub project: PathBuf,
    /// `demo`, `claude`, `codex`, `gemini` or a command line.
    pub agent: String,
    /// The coordinator's first prompt.
    pub prompt: Option<String>,
    /// Sub-tasks get their agent's skip-permission flags.
    pub skip_permissions: bool,
    /// Print events until the coordinator is done.
    pub follow: bool,
    /// Make `project` a new sample repository first, if it does not exist.
    pub init: bool,
    /// The `baton` program (for the demo agent).
    pub program: String,
}

/// `baton coordinator start`: registers the coordinator, starts its agent (deregistering it
/// again if the agent cannot start), and with `follow` prints what happens until it is done.
///
/// # Errors
/// The daemon is not running, or refused.
pub async fn start(client: &AppClient, options: StartOptions, as_json: bool) -> anyhow::Result<()> {
    let project = std::path::absolute(&options.project)
        .map_err(|e| anyhow::anyhow!("{}: {e}", options.project.display()))?;
    if options.init && !project.exists() {
        init_sample(&project)?;
        if !as_json {
            say(&format!(
                "made a sample repository at {}\n",
                project.display()
            ))?;
        }
    }
    let choice = agent_choice(&options.agent, &options.program).map_err(anyhow::Error::msg)?;
    let body = register_body(&project, &choice, options.skip_permissions);
    let info = client
        .request("POST", "/app/coordinators", Some(&body))
        .await?;
    let id = info["id"].as_str().unwrap_or_default().to_owned();
    let agent_body = json!({
        "command": choice.lead.0,
        "args": choice.lead.1,
        "prompt": options.prompt,
    });
    let started = client
        .request(
            "POST",
            &format!("/app/coordinators/{id}/agent"),
            Some(&agent_body),
        )
        .await;
    let agent = match started {
        Ok(agent) => agent,
        Err(error) => {
            // Nothing half-made stays behind.
            let _ = client
                .request("DELETE", &format!("/app/coordinators/{id}"), None)
                .await;
            return Err(error.into());
        }
    };
    if as_json {
        let mut info = info;
        info["agentId"] = agent["agentId"].clone();
        say(&pretty(&info))?;
    } else {
        say(&format!(
            "coordinator {id} started on {}\n  its agent: {} · its sub-tasks: {}\n  \
             watch it: baton attach {id}   (Ctrl-] detaches)\n  its tasks: baton tasks · \
             events: baton events · stop it: baton coordinator stop {id}\n",
            project.display(),
            choice.lead.0,
            choice.sub_tasks.0,
        ))?;
    }
    if options.follow {
        follow(client, &id, as_json).await?;
    }
    Ok(())
}

/// What a new sample repository holds.
pub const SAMPLE_README: &str =
    "# A sample project\n\nBaton's demo agents write their notes under notes/.\n";

/// Makes `dir` a git repository on `main` with one commit (a README), committed as Baton so
/// that no git identity needs to be configured.
fn init_sample(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    std::fs::write(dir.join("README.md"), SAMPLE_README)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let git = |args: &[&str]| {
        crate::adapters::git::run_as(dir, crate::adapters::git::FALLBACK_IDENTITY, args)
            .map_err(anyhow::Error::msg)
    };
    git(&["init", "-q", "-b", "main"])?;
    git(&["add", "README.md"])?;
    git(&["commit", "-q", "-m", "A sample project"])?;
    Ok(())
}

/// Longest `follow` waits between looks at the coordinator, in milliseconds.
pub const FOLLOW_POLL_MS: u64 = 500;

/// Prints events until coordinator `id` is done: it made tasks, none is left, and its agent is
/// at its prompt (or ended).
async fn follow(client: &AppClient, id: &str, as_json: bool) -> anyhow::Result<()> {
    use futures_util::StreamExt as _;
    let mut socket = client.websocket("/app/events").await?;
    let mut names = std::collections::BTreeMap::new();
    let mut made = 0usize;
    let mut merged = 0usize;
    if !as_json {
        say("following (Ctrl-C stops following; the coordinator keeps running)\n")?;
    }
    loop {
        let tick = tokio::time::sleep(std::time::Duration::from_millis(FOLLOW_POLL_MS));
        tokio::select! {
            biased;
            message = socket.next() => match message {
                Some(Ok(tungstenite::Message::Text(text))) => {
                    let event: Value = serde_json::from_str(&text).unwrap_or_default();
                    if event["type"] == "task_merged" && names.contains_key(event["taskId"].as_str().unwrap_or_default()) {
                        merged += 1;
                    }
                    if event["type"] == "task_created" {
                        if event["coordinatorId"] != id {
                            continue;
                        }
                        made += 1;
                        if let (Some(task), Some(name)) =
                            (event["task"]["id"].as_str(), event["task"]["name"].as_str())
                        {
                            names.insert(task.to_owned(), name.to_owned());
                        }
                    }
                    say(&if as_json { format!("{}\n", crate::core::text::json_terminal_safe(&text)) } else { format!("{}\n", render_event(&event, &names)) })?;
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => anyhow::bail!("the daemon's event stream ended"),
            },
            () = tick => {}
        }
        let status = client.request("GET", "/app/status", None).await?;
        let Some(me) = status["coordinators"]
            .as_array()
            .and_then(|list| list.iter().find(|c| c["id"] == id))
        else {
            anyhow::bail!("coordinator {id} is gone");
        };
        let session = &me["session"];
        let settled =
            session.is_null() || session["status"] == "exited" || session["readiness"] == "Ready";
        if made > 0 && me["tasks"] == 0 && settled {
            if !as_json {
                say(&format!(
                    "done: the coordinator made {made} task(s) and merged {merged}; none is left\n"
                ))?;
            }
            return Ok(());
        }
    }
}

/// `baton coordinator stop`.
///
/// # Errors
/// The daemon is not running, or knows no such coordinator.
pub async fn stop(client: &AppClient, id: &str) -> anyhow::Result<()> {
    client
        .request("DELETE", &format!("/app/coordinators/{id}"), None)
        .await?;
    say(&format!(
        "coordinator {id} deregistered; its agent ended, its tasks stay until closed\n"
    ))
}

/// `baton events`: the engine's events until the daemon stops.
///
/// # Errors
/// The daemon is not running.
pub async fn events(client: &AppClient, as_json: bool) -> anyhow::Result<()> {
    use futures_util::StreamExt as _;
    let tasks = client.request("GET", "/app/tasks", None).await?;
    let mut names: std::collections::BTreeMap<String, String> = tasks["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| Some((t["id"].as_str()?.to_owned(), t["name"].as_str()?.to_owned())))
        .collect();
    let mut socket = client.websocket("/app/events").await?;
    while let Some(message) = socket.next().await {
        let Ok(tungstenite::Message::Text(text)) = message else {
            continue;
        };
        let event: Value = serde_json::from_str(&text).unwrap_or_default();
        if let (Some(id), Some(name)) =
            (event["task"]["id"].as_str(), event["task"]["name"].as_str())
        {
            names.insert(id.to_owned(), name.to_owned());
        }
        say(&if as_json {
            format!("{}\n", crate::core::text::json_terminal_safe(&text))
        } else {
            format!("{}\n", render_event(&event, &names))
        })?;
    }
    say("the daemon stopped\n")
}

/// `baton phone`: starts phone access (or shows the running one) and prints its URL with a QR
/// code; with `stop`, stops it.
///
/// # Errors
/// The daemon is not running, or no port could be bound.
pub async fn phone(
    client: &AppClient,
    stop: bool,
    loopback: bool,
    port: Option<u16>,
    as_json: bool,
) -> anyhow::Result<()> {
    if stop {
        let answer = client.request("DELETE", "/app/phone", None).await?;
        return say(&if as_json {
            pretty(&answer)
        } else if answer["stopped"] == true {
            "phone access stopped; its URL opens nothing any more\n".to_owned()
        } else {
            "phone access was off\n".to_owned()
        });
    }
    let body = json!({ "loopback": loopback, "port": port });
    let answer = client.request("POST", "/app/phone", Some(&body)).await?;
    if as_json {
        return say(&pretty(&answer));
    }
    let url = answer["url"].as_str().unwrap_or_default();
    let qr = qr_text(url).unwrap_or_default();
    say(&format!(
        "{qr}\nphone access is on ({}): open this on your phone, on the same network:\n  {url}\n\
         It shows your agents and never types into them. `baton phone --stop` revokes it.\n",
        answer["address"].as_str().unwrap_or("?"),
    ))
}

/// `baton phone --rotate`: a new link for running phone access.
///
/// # Errors
/// The daemon is not running, phone access is off, or the new link could not be kept.
pub async fn phone_rotate(client: &AppClient, as_json: bool) -> anyhow::Result<()> {
    let answer = client.request("POST", "/app/phone/rotate", None).await?;
    if as_json {
        return say(&pretty(&answer));
    }
    let url = answer["url"].as_str().unwrap_or_default();
    let qr = qr_text(url).unwrap_or_default();
    say(&format!(
        "{qr}\nphone access has a new link; the old one opens nothing any more and its pages \
         were closed:\n  {url}\n"
    ))
}

/// The phone URL as a QR code a terminal can show: two rows of modules per line, in block
/// characters, with a quiet zone.
///
/// # Errors
/// The URL is too long for a QR code.
pub fn qr_text(url: &str) -> Result<String, String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(url.as_bytes()).map_err(|e| e.to_string())?;
    Ok(code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// `baton coordinator rotate`.
///
/// # Errors
/// The daemon is not running, knows no such coordinator, or the new token could not be kept
/// (the old one then stays in force).
pub async fn rotate(client: &AppClient, id: &str, as_json: bool) -> anyhow::Result<()> {
    let answer = client
        .request("POST", &format!("/app/coordinators/{id}/rotate"), None)
        .await?;
    if as_json {
        return say(&pretty(&answer));
    }
    say(&format!(
        "coordinator {id} has a new token, in {}; the old one opens nothing any more. Its agents \
         keep running: their MCP servers read the new token there.\n",
        answer["mcpConfig"].as_str().unwrap_or("its MCP config")
    ))
}

/// Chunks of keystrokes `baton attach` reads ahead of the daemon.
pub const ATTACH_KEYS_MAX: usize = 64;

/// The key that detaches `baton attach` (Ctrl-]).
pub const DETACH_KEY: u8 = 0x1d;

/// `baton attach`: the terminal of a coordinator's agent or a sub-task's, passed through raw
/// until Ctrl-] detaches or the agent ends.
///
/// # Errors
/// The daemon is not running, or knows no such agent.
pub async fn attach(client: &AppClient, id: &str) -> anyhow::Result<()> {
    use futures_util::{SinkExt as _, StreamExt as _};
    use std::io::Write as _;
    let mut socket = client.websocket(&format!("/app/attach/{id}")).await?;
    let raw = crate::adapters::tty::RawMode::enter()?;
    let resize = |(cols, rows): (u16, u16)| {
        tungstenite::Message::Text(
            json!({ "type": "resize", "cols": cols, "rows": rows })
                .to_string()
                .into(),
        )
    };
    if let Some(size) = crate::adapters::tty::size() {
        socket.send(resize(size)).await?;
    }
    let (keys_tx, mut keys) = tokio::sync::mpsc::channel::<Vec<u8>>(ATTACH_KEYS_MAX);
    std::thread::spawn(move || {
        use std::io::Read as _;
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || keys_tx.blocking_send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())?;
    let ending = loop {
        tokio::select! {
            biased;
            message = socket.next() => match message {
                Some(Ok(tungstenite::Message::Binary(bytes))) => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&bytes)?;
                    out.flush()?;
                }
                Some(Ok(tungstenite::Message::Text(text))) => {
                    let note: Value = serde_json::from_str(&text).unwrap_or_default();
                    match note["type"].as_str() {
                        Some("exited") => break format!(
                            "the agent exited ({})",
                            note["exitCode"].as_i64().map_or_else(|| "killed".to_owned(), |c| format!("code {c}"))
                        ),
                        Some("lagged") => break "the terminal fell behind; attach again".to_owned(),
                        _ => {}
                    }
                }
                Some(Ok(tungstenite::Message::Close(_))) | None | Some(Err(_)) => {
                    break "the daemon closed the terminal".to_owned();
                }
                Some(Ok(_)) => {}
            },
            keys = keys.recv() => match keys {
                Some(bytes) => {
                    if let Some(at) = bytes.iter().position(|&b| b == DETACH_KEY) {
                        if at > 0 {
                            socket.send(tungstenite::Message::Binary(bytes[..at].to_vec().into())).await?;
                        }
                        break "detached; the agent keeps running".to_owned();
                    }
                    socket.send(tungstenite::Message::Binary(bytes.into())).await?;
                }
                None => break "detached".to_owned(),
            },
            _ = winch.recv() => {
                if let Some(size) = crate::adapters::tty::size() {
                    socket.send(resize(size)).await?;
                }
            }
        }
    };
    drop(raw);
    let _ = socket.close(None).await;
    say_raw(&format!(
        "\r\n[baton: {}]\n",
        crate::core::text::terminal_safe(&ending)
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::{agent_choice, qr_text, render_event, render_status, render_tasks};

    #[test]
    fn agent_names_choose_the_coordinators_and_sub_tasks_programs() {
        let demo = agent_choice("demo", "/bin/baton").unwrap();
        assert_eq!(demo.lead.0, "/bin/baton");
        assert_eq!(demo.lead.1, ["demo-agent", "--role", "coordinator"]);
        assert_eq!(demo.sub_tasks.1, ["demo-agent", "--role", "sub-task"]);
        let claude = agent_choice("claude", "/bin/baton").unwrap();
        assert_eq!(claude.lead, ("claude".to_owned(), Vec::new()));
        assert_eq!(claude.sub_tasks, claude.lead);
        let command = agent_choice("aider --yes", "/bin/baton").unwrap();
        assert_eq!(command.lead, ("aider".to_owned(), vec!["--yes".to_owned()]));
        assert!(agent_choice("  ", "/bin/baton").is_err());
    }

    #[test]
    fn status_says_what_runs() {
        let text = render_status(&json!({
            "version": "0.1.0", "apiUrl": "http://127.0.0.1:7777", "stateDir": "/s",
            "coordinators": [{
                "id": "c-1", "projectRoot": "/p", "agent": "claude", "tasks": 2,
                "session": { "program": "claude", "status": "running", "readiness": "Ready", "state": "waiting_for_input", "attention": null },
            }, {
                "id": "c-2", "projectRoot": "/q", "agent": "codex", "tasks": 0, "session": null,
            }],
        }));
        assert!(text.contains("API http://127.0.0.1:7777"), "{text}");
        assert!(
            text.contains("c-1 · /p · agent claude waiting for input · 2 task(s)"),
            "{text}"
        );
        assert!(text.contains("c-2 · /q · no agent running"), "{text}");
        let empty = render_status(&json!({ "coordinators": [] }));
        assert!(empty.contains("no coordinators"), "{empty}");
    }

    #[test]
    fn an_explanation_says_the_verdict_each_sources_word_and_the_screen() {
        let text = super::render_explanation(&json!({
            "taskId": "t-1", "name": "alpha", "status": "running",
            "agentState": { "state": "needs_attention", "attention": "permission",
                "source": "hook", "since": "T2" },
            "disagreement": { "source": "screen", "state": "working" },
            "evidence": {
                "started": "T0", "exited": null,
                "process": { "state": "working", "since": "T1", "last": "T1" },
                "screen": { "state": "working", "since": "T1", "last": "T3" },
                "screenStillSince": null, "osc": null,
                "hook": { "state": "needs_attention", "attention": "permission",
                    "since": "T2", "last": "T2" },
            },
            "readiness": "busy", "lastActivityAt": "T3",
            "screen": ["✻ Working… (4s · esc to interrupt)"],
        }));
        assert_eq!(
            text,
            "task alpha (t-1): agent NEEDS A HUMAN (permission: it asks permission to use a \
             tool), by its hook since T2\n  its screen says otherwise: working\n\
             evidence (the newest wins; at the same moment hook, then osc, then screen):\n  \
             its hooks (baton hook): NEEDS A HUMAN (permission: it asks permission to use a \
             tool) since T2 (last said T2)\n  what it printed of its state (OSC): nothing\n  \
             its screen: working since T1 (last said T3)\n  Baton's own actions (a prompt \
             typed): working since T1 (last said T1)\nthe screen reads busy (last changed \
             T3):\n  | ✻ Working… (4s · esc to interrupt)\n"
        );
    }

    #[test]
    fn tasks_and_events_read_as_lines() {
        let tasks = render_tasks(&json!({ "tasks": [{
            "id": "t-1", "status": "running", "name": "alpha", "branchName": "task/alpha-1",
            "worktreePath": "/p/.worktrees/task/alpha-1",
            "agentState": { "state": "needs_attention", "attention": "permission", "source": "screen" },
        }]}));
        assert!(tasks.starts_with("t-1  running    alpha"), "{tasks}");
        assert!(
            tasks.ends_with("agent NEEDS A HUMAN (permission: it asks permission to use a tool)\n"),
            "{tasks}"
        );
        assert_eq!(render_tasks(&json!({ "tasks": [] })), "no tasks\n");
        let names = BTreeMap::from([("t-1".to_owned(), "alpha".to_owned())]);
        let merged = json!({
            "type": "task_merged", "taskId": "t-1",
            "merge": { "mainBranch": "main", "linesAdded": 3, "linesRemoved": 0 },
        });
        assert_eq!(
            render_event(&merged, &names),
            "✓ task alpha merged into main (+3 -0)"
        );
        let attention = json!({ "type": "task_state", "taskId": "t-1", "change": "agent_state",
            "agentState": { "state": "needs_attention", "attention": "sign_in", "source": "hook" } });
        assert_eq!(
            render_event(&attention, &names),
            "! task alpha: agent NEEDS A HUMAN (sign_in: it wants its user to sign in) (by its hook)"
        );
        let state = json!({ "type": "task_state", "taskId": "t-1", "change": "signal_received" });
        assert_eq!(
            render_event(&state, &names),
            "· task alpha: signal received"
        );
    }

    #[test]
    fn a_url_makes_a_square_qr_code_of_block_characters() {
        let text =
            qr_text("http://192.168.1.20:7801/?token=abcdefghijklmnopqrstuvwxyz012345").unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let width = lines[0].chars().count();
        assert!(width > 20 && lines.iter().all(|l| l.chars().count() == width));
        // Two rows of modules per line: about half as many lines as columns.
        assert!(
            lines.len() * 2 >= width && lines.len() * 2 <= width + 2,
            "{}",
            lines.len()
        );
        assert!(text.chars().all(|c| " ▀▄█\n".contains(c)), "{text}");
    }
}
