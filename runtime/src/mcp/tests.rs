//! `baton mcp` end to end in one process: an rmcp client talks to the MCP server over
//! `tokio::io::duplex`, and the server's REST client reaches the real API router, served over
//! in-memory connections on a real engine with fake ports, under tokio's paused clock.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::ServiceExt as _;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService};
use serde_json::{Map, Value, json};
use tokio::io::DuplexStream;
use tokio::sync::mpsc;

use super::args::McpArgs;
use super::http::Connect;
use super::server::{Backend, McpServer};
use crate::api::{ApiState, Directory};
use crate::core::auth::{Secret, TOKEN_BYTES};
use crate::core::ids::CoordinatorId;
use crate::engine::{CoordinatorSettings, Engine};
use crate::ports::BoxFuture;
use crate::ports::fakes::{FakeFiles, SeededEntropy};

/// Connections to an API served in memory: each connect hands the other end to the listener.
#[derive(Clone)]
struct Memory {
    accept: mpsc::Sender<DuplexStream>,
    /// Connections to refuse before letting one through (a daemon that is down for a while).
    refuse: Arc<AtomicUsize>,
    /// Every request's bytes, as sent.
    sent: Arc<Mutex<Vec<String>>>,
}

/// The listener end of [`Memory`].
struct MemoryListener(mpsc::Receiver<DuplexStream>);

impl axum::serve::Listener for MemoryListener {
    type Io = DuplexStream;
    type Addr = ();

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.0.recv().await {
            Some(stream) => (stream, ()),
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(())
    }
}

impl crate::api::Listen for MemoryListener {
    fn addresses(_: &Self::Io, (): &Self::Addr) -> crate::api::Addresses {
        crate::api::Addresses::default()
    }
}

/// A connection that records what the client writes.
struct Recorded {
    stream: DuplexStream,
    sent: Arc<Mutex<Vec<String>>>,
}

impl tokio::io::AsyncRead for Recorded {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Recorded {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.sent
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(buf).into_owned());
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl Connect for Memory {
    type Stream = Recorded;

    fn connect<'a>(
        &'a self,
        _host: &'a str,
        _port: u16,
    ) -> BoxFuture<'a, std::io::Result<Recorded>> {
        Box::pin(async move {
            if self
                .refuse
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
            }
            let (client, server) = tokio::io::duplex(1 << 16);
            self.accept
                .send(server)
                .await
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::ConnectionRefused))?;
            Ok(Recorded {
                stream: client,
                sent: self.sent.clone(),
            })
        })
    }
}

/// A daemon in memory with coordinator A registered (token 1), and a way to it.
struct Daemon {
    memory: Memory,
    coordinator: CoordinatorId,
    files: Arc<FakeFiles>,
    _engine: Engine,
}

const A: u8 = 1;

fn token(who: u8) -> String {
    Secret::from_random([who; TOKEN_BYTES]).expose().to_owned()
}

async fn daemon() -> Daemon {
    let fakes = crate::engine::FakeWorld::new(11);
    let files = fakes.files.clone();
    let mut engine = fakes.engine();
    let coordinator = CoordinatorId::from_random([A; 16]);
    let handle = engine.register(
        coordinator,
        CoordinatorSettings::new("/repo", "claude", "/tmp/baton"),
    );
    let mut directory = Directory::default();
    directory
        .credentials
        .register(coordinator, Secret::from_random([A; TOKEN_BYTES]));
    directory.coordinators.insert(coordinator, handle);
    let (_publish, latest) = crate::api::latest::channel(directory);
    let state = ApiState::new(latest, engine.agent_feed());
    let (accept, accepted) = mpsc::channel(16);
    tokio::spawn(crate::api::serve(
        MemoryListener(accepted),
        state,
        crate::api::Listening::loopback(7777),
        std::future::pending(),
    ));
    Daemon {
        memory: Memory {
            accept,
            refuse: Arc::new(AtomicUsize::new(0)),
            sent: Arc::new(Mutex::new(Vec::new())),
        },
        coordinator,
        files,
        _engine: engine,
    }
}

/// An MCP client connected to a `baton mcp` started with `argv` and `env`.
async fn client(
    daemon: &Daemon,
    argv: &[&str],
    env: &[(&str, String)],
) -> RunningService<RoleClient, ()> {
    client_with(daemon, argv, env, ()).await
}

/// [`client`], with `handler` taking what the server tells the client.
async fn client_with<H: rmcp::ClientHandler>(
    daemon: &Daemon,
    argv: &[&str],
    env: &[(&str, String)],
    handler: H,
) -> RunningService<RoleClient, H> {
    let argv: Vec<String> = argv.iter().map(|a| (*a).to_owned()).collect();
    let args = McpArgs::parse(&argv, |name| {
        env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    })
    .expect("valid arguments");
    let backend = Backend::new(args, daemon.memory.clone(), Arc::new(SeededEntropy::new(5)))
        .expect("a valid URL");
    let (server_end, client_end) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        // As `serve_stdio` serves: its input watched for its end.
        let server = McpServer::new(backend);
        let (read, write) = tokio::io::split(server_end);
        let input = super::EndWatch {
            inner: read,
            ended: server.input_ended(),
        };
        if let Ok(running) = server.serve((input, write)).await {
            let _ = running.waiting().await;
        }
    });
    handler.serve(client_end).await.expect("the MCP handshake")
}

async fn coordinator_client(daemon: &Daemon) -> RunningService<RoleClient, ()> {
    let id = daemon.coordinator.to_string();
    client(
        daemon,
        &["--url", "http://127.0.0.1:7777", "--coordinator-id", &id],
        &[("BATON_MCP_TOKEN", token(A))],
    )
    .await
}

async fn call(
    client: &RunningService<RoleClient, ()>,
    tool: &str,
    arguments: Value,
) -> CallToolResult {
    let arguments: Map<String, Value> = arguments.as_object().cloned().unwrap_or_default();
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await
        .expect("a tool result, never a protocol error")
}

fn text(result: &CallToolResult) -> String {
    let content = serde_json::to_value(&result.content).unwrap();
    content[0]["text"].as_str().unwrap_or_default().to_owned()
}

fn failed(result: &CallToolResult) -> bool {
    result.is_error == Some(true)
}

#[tokio::test(start_paused = true)]
async fn each_role_lists_its_own_tools() {
    let daemon = daemon().await;
    let coordinator = coordinator_client(&daemon).await;
    let tools = coordinator.list_tools(None).await.unwrap().tools;
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names.len(), 11);
    assert!(names.contains(&"wait_for_signal_done") && !names.contains(&"signal_done"));
    assert_eq!(
        serde_json::to_value(&tools[0].input_schema).unwrap()["required"],
        json!(["name"])
    );
    let sub_task = client(
        &daemon,
        &["--url", "http://127.0.0.1:7777", "--task-id", "t"],
        &[("BATON_DONE_TOKEN", "d".repeat(32))],
    )
    .await;
    let tools = sub_task.list_tools(None).await.unwrap().tools;
    assert_eq!(
        tools.iter().map(|t| t.name.as_ref()).collect::<Vec<_>>(),
        ["signal_done"]
    );
    let refused = call(&sub_task, "create_task", json!({ "name": "x" })).await;
    assert!(failed(&refused));
    assert!(text(&refused).contains("not available to sub-tasks"));
}

#[tokio::test(start_paused = true)]
async fn a_coordinator_and_its_sub_task_go_through_a_task_end_to_end() {
    let daemon = daemon().await;
    let coordinator = coordinator_client(&daemon).await;
    let created = call(&coordinator, "create_task", json!({ "name": "feat x" })).await;
    assert!(!failed(&created), "{}", text(&created));
    let task: Value = serde_json::from_str(&text(&created)).unwrap();
    let id = task["id"].as_str().unwrap().to_owned();
    assert_eq!(task["name"], "feat x");
    assert_eq!(task["coordinatorTaskId"], daemon.coordinator.to_string());
    let listed: Value =
        serde_json::from_str(&text(&call(&coordinator, "list_tasks", json!({})).await)).unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    let status = call(&coordinator, "get_task_status", json!({ "taskId": id })).await;
    assert!(text(&status).contains("\"branchName\""));
    let diff = call(&coordinator, "get_task_diff", json!({ "taskId": id })).await;
    assert_eq!(text(&diff), "Changed files:\n\n\n");
    // The sub-task's own MCP server, with the done token the engine wrote into its config.
    let done = done_token_of(&daemon, &id);
    let sub_task = client(
        &daemon,
        &["--url", "http://127.0.0.1:7777", "--task-id", &id],
        &[("BATON_DONE_TOKEN", done)],
    )
    .await;
    let _ = sub_task.list_tools(None).await.unwrap();
    let connected = format!("POST /api/tasks/{id}/mcp-connected HTTP/1.1");
    let announced = || {
        daemon
            .memory
            .sent
            .lock()
            .unwrap()
            .concat()
            .contains(&connected)
    };
    tokio::time::sleep(Duration::from_millis(super::server::TOOLS_SETTLE_MS - 10)).await;
    assert!(
        !announced(),
        "the agent is given a moment to take in its tools"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        announced(),
        "the sub-task's server told the daemon it is up once its client asked for its tools"
    );
    let signalled = call(&sub_task, "signal_done", json!({})).await;
    assert_eq!(
        text(&signalled),
        "Done signal sent. The coordinator has been notified."
    );
    let sent = daemon.memory.sent.lock().unwrap().concat();
    assert!(sent.contains(&format!("POST /api/tasks/{id}/done HTTP/1.1")));
    assert!(sent.contains("x-done-token: "), "{sent}");
    let waited = call(
        &coordinator,
        "wait_for_signal_done",
        json!({ "timeoutMs": 1_000 }),
    )
    .await;
    let waited: Value = serde_json::from_str(&text(&waited)).unwrap();
    assert_eq!(
        (waited["taskId"].as_str(), waited["remaining"].as_u64()),
        (Some(id.as_str()), Some(0))
    );
    let closed = call(&coordinator, "close_task", json!({ "taskId": id })).await;
    assert_eq!(text(&closed), "Task closed successfully.");
    let gone = call(&coordinator, "get_task_status", json!({ "taskId": id })).await;
    assert!(failed(&gone));
    assert_eq!(
        text(&gone),
        format!("Error: API GET /api/tasks/{id} failed (404): {{\"error\":\"task not found\"}}")
    );
}

#[tokio::test(start_paused = true)]
async fn a_wait_for_idle_that_times_out_is_an_error_result() {
    let daemon = daemon().await;
    let coordinator = coordinator_client(&daemon).await;
    let created: Value = serde_json::from_str(&text(
        &call(&coordinator, "create_task", json!({ "name": "t" })).await,
    ))
    .unwrap();
    let id = created["id"].as_str().unwrap();
    let waited = call(
        &coordinator,
        "wait_for_idle",
        json!({ "taskId": id, "timeoutMs": 50 }),
    )
    .await;
    assert!(failed(&waited));
    assert_eq!(
        text(&waited),
        format!("Error: Timed out waiting for task {id} to become idle")
    );
    let unknown = call(&coordinator, "no_such_tool", json!({})).await;
    assert_eq!(
        (failed(&unknown), text(&unknown)),
        (true, "Unknown tool: no_such_tool".into())
    );
}

#[tokio::test(start_paused = true)]
async fn a_signal_wait_retries_transport_errors_with_one_request_id() {
    let daemon = daemon().await;
    let coordinator = coordinator_client(&daemon).await;
    daemon.memory.refuse.store(3, Ordering::Relaxed);
    daemon.memory.sent.lock().unwrap().clear();
    let started = tokio::time::Instant::now();
    let waited = call(
        &coordinator,
        "wait_for_signal_done",
        json!({ "timeoutMs": 60_000 }),
    )
    .await;
    assert!(!failed(&waited), "{}", text(&waited));
    assert!(
        text(&waited).contains("\"timedOut\": true"),
        "{}",
        text(&waited)
    );
    // Three refusals: pauses of 1, 2 and 4 s before the fourth try got through, which then
    // waited the 53 s left.
    let tried = started.elapsed().as_millis();
    assert!((60_000..60_100).contains(&tried), "{tried} ms");
    let sent = daemon.memory.sent.lock().unwrap().concat();
    let ids: Vec<&str> = sent
        .match_indices("\"requestId\":\"")
        .map(|(at, _)| &sent[at + 13..at + 49])
        .collect();
    assert_eq!(ids.len(), 1, "only the try that got through was sent");
    // The timeout the server was given is what was left after the pauses.
    assert!(sent.contains("\"timeoutMs\":53000"), "{sent}");
}

#[tokio::test(start_paused = true)]
async fn a_signal_wait_gives_up_when_the_daemon_stays_down() {
    let daemon = daemon().await;
    let coordinator = coordinator_client(&daemon).await;
    daemon.memory.refuse.store(usize::MAX, Ordering::Relaxed);
    let waited = call(
        &coordinator,
        "wait_for_signal_done",
        json!({ "timeoutMs": 5_000 }),
    )
    .await;
    assert!(failed(&waited));
    assert_eq!(
        text(&waited),
        "Error: wait_for_signal_done: timed out retrying after repeated network errors"
    );
    let forever = call(&coordinator, "wait_for_signal_done", json!({})).await;
    assert!(failed(&forever));
    assert!(
        text(&forever).starts_with("Error: cannot connect to the daemon"),
        "{}",
        text(&forever)
    );
}

#[tokio::test(start_paused = true)]
async fn requests_carry_the_callers_credentials_and_never_its_done_token_as_coordinator() {
    let daemon = daemon().await;
    let coordinator = coordinator_client(&daemon).await;
    daemon.memory.sent.lock().unwrap().clear();
    let _ = call(&coordinator, "list_tasks", json!({})).await;
    let sent = daemon.memory.sent.lock().unwrap().concat();
    assert!(sent.starts_with("GET /api/tasks HTTP/1.1\r\n"), "{sent}");
    assert!(sent.contains(&format!("authorization: Bearer {}\r\n", token(A))));
    assert!(sent.contains(&format!("x-coordinator-id: {}\r\n", daemon.coordinator)));
    assert!(!sent.contains("x-done-token"));
}

/// A task made by the coordinator's client, and its sub-task's own MCP client (its done token
/// read from the config the engine wrote).
/// The done token the engine wrote into task `id`'s MCP config.
fn done_token_of(daemon: &Daemon, id: &str) -> String {
    let config = daemon
        .files
        .get(&Path::new("/tmp/baton").join(format!("baton-subtask-{id}.json")))
        .expect("its config");
    let config: Value = serde_json::from_slice(&config.bytes).unwrap();
    config["mcpServers"]["baton"]["env"]["BATON_DONE_TOKEN"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn task_with_its_client(
    daemon: &Daemon,
    coordinator: &RunningService<RoleClient, ()>,
) -> (String, RunningService<RoleClient, ()>) {
    let created = call(coordinator, "create_task", json!({ "name": "feat x" })).await;
    let task: Value = serde_json::from_str(&text(&created)).unwrap();
    let id = task["id"].as_str().unwrap().to_owned();
    let done = done_token_of(daemon, &id);
    let sub_task = client(
        daemon,
        &["--url", "http://127.0.0.1:7777", "--task-id", &id],
        &[("BATON_DONE_TOKEN", done)],
    )
    .await;
    (id, sub_task)
}

/// The sub-task signals done; the coordinator's next wait returns that task (a wait given up
/// before took nothing).
async fn the_next_wait_gets_its_signal(
    coordinator: &RunningService<RoleClient, ()>,
    sub_task: &RunningService<RoleClient, ()>,
    id: &str,
) {
    let signalled = call(sub_task, "signal_done", json!({})).await;
    assert!(!failed(&signalled), "{}", text(&signalled));
    let waited = call(
        coordinator,
        "wait_for_signal_done",
        json!({ "timeoutMs": 1_000 }),
    )
    .await;
    let waited: Value = serde_json::from_str(&text(&waited)).expect("the signal, not a timeout");
    assert_eq!(waited["taskId"].as_str(), Some(id), "{waited}");
}

/// A `wait_for_signal_done` sent so it can be cancelled.
async fn cancellable_wait(
    coordinator: &RunningService<RoleClient, ()>,
) -> rmcp::service::RequestHandle<RoleClient> {
    let arguments = json!({ "timeoutMs": 60_000 }).as_object().cloned().unwrap();
    let params = CallToolRequestParams::new("wait_for_signal_done").with_arguments(arguments);
    let request =
        rmcp::model::ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(params));
    coordinator
        .peer()
        .send_cancellable_request(request, rmcp::service::PeerRequestOptions::no_options())
        .await
        .expect("sent")
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_signal_wait_consumes_nothing_and_the_next_wait_gets_the_signal() {
    let daemon = daemon().await;
    let coordinator = coordinator_client(&daemon).await;
    let (id, sub_task) = task_with_its_client(&daemon, &coordinator).await;
    let wait = cancellable_wait(&coordinator).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    wait.cancel(Some("the user pressed Esc".into()))
        .await
        .expect("cancelled");
    tokio::time::sleep(Duration::from_millis(200)).await;
    the_next_wait_gets_its_signal(&coordinator, &sub_task, &id).await;
}

#[tokio::test(start_paused = true)]
async fn a_client_gone_mid_wait_consumes_nothing_and_the_next_wait_gets_the_signal() {
    let daemon = daemon().await;
    let coordinator = coordinator_client(&daemon).await;
    let (id, sub_task) = task_with_its_client(&daemon, &coordinator).await;
    // A second session of the coordinator's agent waits, and its client dies (its stdin ends).
    let dying = coordinator_client(&daemon).await;
    let _wait = cancellable_wait(&dying).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(dying);
    tokio::time::sleep(Duration::from_millis(200)).await;
    the_next_wait_gets_its_signal(&coordinator, &sub_task, &id).await;
}

#[tokio::test]
async fn the_end_of_the_input_is_told_and_an_empty_read_buffer_is_no_end() {
    use tokio::io::AsyncReadExt as _;
    let ended = Arc::new(tokio::sync::watch::Sender::new(false));
    let mut input = super::EndWatch {
        inner: &b"{}\n"[..],
        ended: ended.clone(),
    };
    let mut none = [0u8; 0];
    assert_eq!(input.read(&mut none).await.unwrap(), 0);
    assert!(!*ended.borrow(), "no room to read into is no end");
    let mut line = Vec::new();
    input.read_to_end(&mut line).await.unwrap();
    assert_eq!(line, b"{}\n");
    assert!(*ended.borrow(), "the end of the input is told");
}

/// A client that counts the progress notifications it is sent.
#[derive(Clone, Default)]
struct Progress(Arc<AtomicUsize>);

impl rmcp::ClientHandler for Progress {
    async fn on_progress(
        &self,
        _: rmcp::model::ProgressNotificationParam,
        _: rmcp::service::NotificationContext<RoleClient>,
    ) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn a_long_wait_tells_a_client_with_a_progress_token_that_it_still_runs() {
    let daemon = daemon().await;
    let progress = Progress::default();
    let id = daemon.coordinator.to_string();
    let coordinator = client_with(
        &daemon,
        &["--url", "http://127.0.0.1:7777", "--coordinator-id", &id],
        &[("BATON_MCP_TOKEN", token(A))],
        progress.clone(),
    )
    .await;
    let wait = |token: i64| {
        // (rmcp's client gives every request a progress token of its own, so a request without
        // one cannot be sent from here.)
        let arguments = json!({ "timeoutMs": 40_000 }).as_object().cloned().unwrap();
        let params = CallToolRequestParams::new("wait_for_signal_done").with_arguments(arguments);
        let request =
            rmcp::model::ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(params));
        let mut options = rmcp::service::PeerRequestOptions::no_options();
        let mut meta = rmcp::model::RequestMetaObject::new();
        meta.set_progress_token(rmcp::model::ProgressToken(
            rmcp::model::NumberOrString::Number(token),
        ));
        options.meta = Some(meta);
        let peer = coordinator.peer().clone();
        async move {
            peer.send_request_with_option(request, options)
                .await
                .expect("sent")
                .await_response()
                .await
                .expect("answered")
        }
    };
    wait(7).await;
    let told = progress.0.load(Ordering::SeqCst);
    assert_eq!(
        u64::try_from(told).unwrap(),
        40_000 / super::server::PROGRESS_EVERY_MS,
        "told every PROGRESS_EVERY_MS while it ran"
    );
}
