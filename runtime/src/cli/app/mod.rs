//! The `baton` client commands (`status`, `coordinator start|stop`, `tasks`, `attach`,
//! `events`): requests to the daemon's app channel on its Unix socket, and what they print.
//!
//! The requests go through the runtime's own HTTP client (`mcp::http`) over the socket; the
//! WebSockets through tungstenite over the same socket, found in the state directory under
//! `endpoints::APP_SOCKET`. What is printed is made by the pure `render_*` functions of `render`
//! (and `qr_text`, the phone URL as a QR code), tested without a daemon. Nothing here depends
//! on the daemon's code: the app channel (docs/app-channel.md) is the only contract.
//!
//! Layout: this module holds the client ([`AppClient`]) and the commands; `render` what they
//! print (pure); `attach` the terminal passed through raw.

mod attach;
mod render;

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::wire;
use crate::mcp::http::{self, BaseUrl, HttpError, UnixSocket};

pub use attach::{ATTACH_KEYS_MAX, DETACH_KEY, attach};
pub use render::{
    AgentChoice, agent_choice, qr_text, register_body, render_event, render_explanation,
    render_status, render_tasks,
};

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
            Err(ClientError::Refused(
                wire::ErrorBody::deserialize(&value).map_or_else(
                    |_| format!("HTTP {}", response.status),
                    |e| e.error.into_owned(),
                ),
            ))
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
                let text = serde_json::from_slice::<wire::ErrorBody<'_>>(&body).map_or_else(
                    |_| format!("HTTP {}", response.status()),
                    |e| e.error.into_owned(),
                );
                Err(ClientError::Refused(text))
            }
            Err(error) => Err(ClientError::Broken(error.to_string())),
        }
    }
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
        let list = wire::TaskList::deserialize(&tasks)
            .map_err(|e| anyhow::anyhow!("an answer that is not a task list: {e}"))?;
        render_tasks(&list.tasks)
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
        let explained = wire::Explanation::deserialize(&explained)
            .map_err(|e| anyhow::anyhow!("an answer that is not an explanation: {e}"))?;
        render_explanation(&explained)
    })
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
        let tick = crate::time::sleep(std::time::Duration::from_millis(FOLLOW_POLL_MS));
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
                        if let Ok(task) = wire::TaskDetail::deserialize(&event["task"]) {
                            names.insert(task.summary.id.to_string(), task.summary.name.into_owned());
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
    let mut names: std::collections::BTreeMap<String, String> = wire::TaskList::deserialize(&tasks)
        .map(|list| list.tasks)
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.summary.id.to_string(), t.summary.name.into_owned()))
        .collect();
    let mut socket = client.websocket("/app/events").await?;
    while let Some(message) = socket.next().await {
        let Ok(tungstenite::Message::Text(text)) = message else {
            continue;
        };
        let event: Value = serde_json::from_str(&text).unwrap_or_default();
        if let Ok(task) = wire::TaskDetail::deserialize(&event["task"]) {
            names.insert(task.summary.id.to_string(), task.summary.name.into_owned());
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
