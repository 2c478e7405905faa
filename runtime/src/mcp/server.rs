//! The MCP server (rmcp, over stdio in production): lists the tools of its role and carries out
//! each call as REST requests to the daemon ([`Backend`]), answering every failure as an error
//! result (`isError`), never a protocol error.
//!
//! Waits never outlast their bound: a long poll's client gives the server its wait plus
//! [`LONG_POLL_GRACE_MS`] (the server clamps a wait to `WAIT_TIMEOUT_MS_MAX`), any other call
//! [`REQUEST_TIMEOUT_MS`]. `wait_for_signal_done` sends one request id with every try of a call
//! and tries again, with backoff, only when the transport failed (spec §1.7): the daemon's replay
//! cache then answers a retry whose first answer was lost with that answer, and a wait whose
//! client went away consumed nothing.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler};
use serde_json::{Map, Value, json};

use super::args::{McpArgs, Role};
use super::http::{self, BaseUrl, Connect, HttpError, InvalidUrl};
use super::tools::{self, Caller, Plan};
use crate::api::wire::WaitSignalBody;
use crate::core::coordinator::WAIT_TIMEOUT_MS_MAX;
use crate::core::routes::{Endpoint, TaskOp};

/// How long after its agent first listed its tools a sub-task's server tells the daemon it is
/// up (and so lets the task's assignment go out): the agent's moment to take the tools in.
pub const TOOLS_SETTLE_MS: u64 = 500;
use crate::ports::Entropy;

/// How much longer than the server's wait a long poll's client waits for the answer.
pub const LONG_POLL_GRACE_MS: u64 = 30_000;
/// How long any other request may take (a merge runs git and can be slow).
pub const REQUEST_TIMEOUT_MS: u64 = 600_000;
/// Retries of one `wait_for_signal_done` call after transport errors (so at most 11 tries).
pub const WAIT_RETRIES_MAX: u32 = 10;
/// The first pause before a retry; each next one doubles.
pub const BACKOFF_BASE_MS: u64 = 1_000;
/// The longest pause before a retry.
pub const BACKOFF_MAX_MS: u64 = 30_000;

/// What a request ended with, short of an answer to show.
enum Failure {
    /// The transport failed (or the answer did not come in time): a retry may get through.
    Transport(String),
    /// The server answered, and it is a failure to report.
    Answer(String),
    /// The server refused the token (401): the credentials file may hold a new one.
    Refused(String),
}

impl Failure {
    /// As reported after the retry with a new token: a second refusal is an answer.
    fn reported(self) -> Self {
        match self {
            Failure::Refused(text) => Failure::Answer(text),
            other => other,
        }
    }
}

/// The REST side of the MCP process.
pub struct Backend<C> {
    args: McpArgs,
    /// The bearer token in use: the one it started with, or one read again from its
    /// credentials file after the daemon refused the old one (a rotation).
    token: std::sync::Mutex<crate::mcp::args::EnvSecret>,
    base: BaseUrl,
    connector: Arc<C>,
    entropy: Arc<dyn Entropy>,
    /// Give-backs of cancelled waits still on their way ([`GiveBack`]).
    give_backs: Arc<tokio::sync::watch::Sender<usize>>,
}

/// How long the give-back of a cancelled wait may take ([`GiveBack`]).
pub const GIVE_BACK_WAIT_MS: u64 = 2_000;

/// A `wait_for_signal_done` under way. Dropped before it got its answer (the call was
/// cancelled, or the client's input ended, while the request was out or its answer on its
/// way), it tells the daemon that the wait with its request id was given up, so that an
/// answer given to it is offered again (`giveBack`): a signal answered in the instant a client
/// gives up is not lost. Sent from a task of its own, bounded by [`GIVE_BACK_WAIT_MS`].
struct GiveBack<C: Connect + 'static> {
    armed: Option<(Arc<C>, BaseUrl, Vec<u8>)>,
    pending: Arc<tokio::sync::watch::Sender<usize>>,
}

impl<C: Connect + 'static> Drop for GiveBack<C> {
    fn drop(&mut self) {
        let Some((connector, base, request)) = self.armed.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.pending.send_modify(|n| *n += 1);
        let pending = self.pending.clone();
        runtime.spawn(async move {
            let limit = Duration::from_millis(GIVE_BACK_WAIT_MS);
            let _ = crate::time::timeout(limit, http::send(&*connector, &base, &request)).await;
            pending.send_modify(|n| *n = n.saturating_sub(1));
        });
    }
}

impl<C: Connect + 'static> Backend<C> {
    /// A backend for `args` that reaches the API through `connector` and draws request ids
    /// from `entropy`.
    ///
    /// # Errors
    /// The URL is not `http://host:port`.
    pub fn new(args: McpArgs, connector: C, entropy: Arc<dyn Entropy>) -> Result<Self, InvalidUrl> {
        let base = BaseUrl::parse(&args.url)?;
        Ok(Backend {
            token: std::sync::Mutex::new(args.token.clone()),
            args,
            base,
            connector: Arc::new(connector),
            entropy,
            give_backs: Arc::new(tokio::sync::watch::channel(0).0),
        })
    }

    /// Resolves once no give-back of a cancelled wait is on its way (see [`GiveBack`]).
    pub async fn settled(&self) {
        let mut pending = self.give_backs.subscribe();
        let _ = pending.wait_for(|n| *n == 0).await;
    }

    /// The role it serves.
    #[must_use]
    pub const fn role(&self) -> Role {
        self.args.role()
    }

    /// Carries out a tool call: the text of its result, or of its error.
    ///
    /// # Errors
    /// The call failed; the text says why (`Error: …`, or `Unknown tool: …`).
    pub async fn call(&self, tool: &str, arguments: &Map<String, Value>) -> Result<String, String> {
        let caller = Caller {
            role: self.args.role(),
            coordinator: self.args.coordinator.as_deref(),
            task: self.args.task.as_deref(),
        };
        let task = arguments.get("taskId").and_then(Value::as_str);
        let answer = match tools::plan(caller, tool, arguments)? {
            Plan::Call {
                method,
                path,
                body,
                wait_ms,
            } => {
                let limit = wait_ms.map_or(REQUEST_TIMEOUT_MS, long_poll_limit);
                self.json(method, &path, body.as_ref(), true, limit).await
            }
            Plan::WaitSignal { timeout_ms } => self.wait_signal(timeout_ms).await,
            Plan::SignalDone { path } => self
                .json(
                    Endpoint::Task(TaskOp::Done).method(),
                    &path,
                    Some(&json!({})),
                    false,
                    REQUEST_TIMEOUT_MS,
                )
                .await
                .map_err(|failure| match failure {
                    // The reference printed no id here.
                    Failure::Answer(text) => {
                        Failure::Answer(text.replacen(&path, "/api/tasks/.../done", 1))
                    }
                    other => other,
                }),
        };
        match answer {
            Ok(value) => tools::render(tool, task, &value),
            Err(Failure::Transport(text) | Failure::Answer(text) | Failure::Refused(text)) => {
                Err(format!("Error: {text}"))
            }
        }
    }

    /// The server tells the daemon it is up: a sub-task's, so the task's assignment may go out
    /// (DESIGN: the first prompt waits for the agent's tools); a coordinator's, so the daemon
    /// may type its agent's first prompt.
    ///
    /// # Errors
    /// The daemon could not be told (the text says why); the agent still gets its tools.
    pub async fn announce(&self) -> Result<(), String> {
        let (path, as_coordinator) = match (self.role(), self.args.task.as_deref()) {
            (Role::SubTask, Some(task)) => {
                (Endpoint::Task(TaskOp::McpConnected).path_for(task), false)
            }
            (Role::SubTask, None) => return Ok(()),
            (Role::Coordinator, _) => (Endpoint::McpConnected.path_for(""), true),
        };
        let method = match as_coordinator {
            true => Endpoint::McpConnected.method(),
            false => Endpoint::Task(TaskOp::McpConnected).method(),
        };
        self.json(
            method,
            &path,
            Some(&json!({})),
            as_coordinator,
            REQUEST_TIMEOUT_MS,
        )
        .await
        .map(drop)
        .map_err(|(Failure::Transport(text) | Failure::Answer(text) | Failure::Refused(text))| text)
    }

    /// `wait_for_signal_done`: one request id for every try; transport errors tried again with
    /// backoff while time remains. A `timeoutMs` of zero or less still asks once (the reference
    /// failed it without asking).
    async fn wait_signal(&self, timeout_ms: Option<f64>) -> Result<Value, Failure> {
        let request = self.entropy.uuid().to_string();
        let mut give_back = GiveBack {
            armed: Some((
                self.connector.clone(),
                self.base.clone(),
                self.give_back_request(&request),
            )),
            pending: self.give_backs.clone(),
        };
        let result = self.wait_signal_as(&request, timeout_ms).await;
        // An answer, or the daemon's refusal, reached this process: nothing to give back. A
        // transport failure may have lost an answer: that one is given back.
        if !matches!(result, Err(Failure::Transport(_))) {
            give_back.armed = None;
        }
        result
    }

    /// The give-back of the wait with `request` (see [`GiveBack`]), as bytes to send.
    fn give_back_request(&self, request: &str) -> Vec<u8> {
        let body = json!(WaitSignalBody {
            coordinator_task_id: self.args.coordinator.as_deref().map(Into::into),
            give_back: Some(true),
            request_id: Some(request.into()),
            timeout_ms: None,
        });
        let wait = Endpoint::WaitSignal;
        self.request_bytes(
            &self.token(),
            wait.method(),
            wait.spec().path,
            Some(&body),
            true,
        )
    }

    async fn wait_signal_as(
        &self,
        request: &str,
        timeout_ms: Option<f64>,
    ) -> Result<Value, Failure> {
        let started = tokio::time::Instant::now();
        let remaining = |now: tokio::time::Instant| {
            timeout_ms.map(|ms| ms - now.duration_since(started).as_secs_f64() * 1_000.0)
        };
        let mut attempt = 0;
        loop {
            let left = remaining(tokio::time::Instant::now());
            if attempt > 0 && left.is_some_and(|ms| ms <= 0.0) {
                return Err(Failure::Transport(
                    "wait_for_signal_done: timed out retrying after repeated network errors"
                        .to_owned(),
                ));
            }
            let timeout_ms = left.map(|ms| ms.max(0.0).floor());
            let wait = tools::wait_of(timeout_ms);
            let body = json!(WaitSignalBody {
                coordinator_task_id: self.args.coordinator.as_deref().map(Into::into),
                give_back: None,
                request_id: Some(request.into()),
                timeout_ms,
            });
            match self
                .json(
                    Endpoint::WaitSignal.method(),
                    Endpoint::WaitSignal.spec().path,
                    Some(&body),
                    true,
                    long_poll_limit(wait),
                )
                .await
            {
                Err(Failure::Transport(_)) if attempt < WAIT_RETRIES_MAX => {
                    let pause = (BACKOFF_BASE_MS << attempt).min(BACKOFF_MAX_MS);
                    let pause = match remaining(tokio::time::Instant::now()) {
                        // No time left: no pause; the next turn says so.
                        Some(left) if left <= 0.0 => 0,
                        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                        Some(left) => pause.min(left as u64),
                        None => pause,
                    };
                    crate::time::sleep(Duration::from_millis(pause)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// The bearer token in use.
    fn token(&self) -> crate::mcp::args::EnvSecret {
        self.token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// After a 401: the token its credentials file holds now, if it has one and it is not the
    /// one refused (the coordinator's token was rotated); it is then the token in use.
    async fn reread_token(&self, refused: &crate::mcp::args::EnvSecret) -> bool {
        use tokio::io::AsyncReadExt as _;
        let Some(path) = &self.args.credentials_file else {
            return false;
        };
        let Ok(file) = tokio::fs::File::open(path).await else {
            return false;
        };
        let mut bytes = Vec::new();
        let limit = crate::mcp::args::CREDENTIALS_FILE_BYTES_MAX as u64;
        if file.take(limit).read_to_end(&mut bytes).await.is_err() {
            return false;
        }
        match crate::mcp::args::token_in(&bytes) {
            Some(fresh) if fresh != *refused => {
                *self
                    .token
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
                true
            }
            _ => false,
        }
    }

    /// One request; the answer's JSON when it is 2xx. Refused with 401, it is sent once more
    /// with the token its credentials file holds now, when that changed (a rotation).
    async fn json(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        as_coordinator: bool,
        limit_ms: u64,
    ) -> Result<Value, Failure> {
        let token = self.token();
        match self
            .json_once(&token, method, path, body, as_coordinator, limit_ms)
            .await
        {
            Err(Failure::Refused(text)) => {
                if self.reread_token(&token).await {
                    let token = self.token();
                    self.json_once(&token, method, path, body, as_coordinator, limit_ms)
                        .await
                        .map_err(Failure::reported)
                } else {
                    Err(Failure::Answer(text))
                }
            }
            other => other,
        }
    }

    async fn json_once(
        &self,
        token: &crate::mcp::args::EnvSecret,
        method: &str,
        path: &str,
        body: Option<&Value>,
        as_coordinator: bool,
        limit_ms: u64,
    ) -> Result<Value, Failure> {
        let request = self.request_bytes(token, method, path, body, as_coordinator);
        let sent = crate::time::timeout(
            Duration::from_millis(limit_ms),
            http::send(&*self.connector, &self.base, &request),
        )
        .await;
        self.answer_of(sent, method, path, limit_ms)
    }

    /// One request to the API, as bytes.
    fn request_bytes(
        &self,
        token: &crate::mcp::args::EnvSecret,
        method: &str,
        path: &str,
        body: Option<&Value>,
        as_coordinator: bool,
    ) -> Vec<u8> {
        let mut headers = vec![
            (
                "authorization".to_owned(),
                format!("Bearer {}", token.expose()),
            ),
            ("content-type".to_owned(), "application/json".to_owned()),
        ];
        match (&self.args.coordinator, as_coordinator) {
            (Some(coordinator), true) => {
                headers.push(("x-coordinator-id".to_owned(), coordinator.clone()));
            }
            _ => {
                if let Some(done) = &self.args.done_token {
                    headers.push(("x-done-token".to_owned(), done.expose().to_owned()));
                }
            }
        }
        let body = body.map(Value::to_string).unwrap_or_default();
        http::encode(
            &self.base.authority(),
            method,
            path,
            &headers,
            body.as_bytes(),
        )
    }

    /// What an answer (or its absence within `limit_ms`) means.
    fn answer_of(
        &self,
        sent: Result<Result<http::Response, HttpError>, tokio::time::error::Elapsed>,
        method: &str,
        path: &str,
        limit_ms: u64,
    ) -> Result<Value, Failure> {
        let response = match sent {
            Err(_) => {
                return Err(Failure::Transport(format!(
                    "no answer from the daemon within {limit_ms} ms"
                )));
            }
            Ok(Err(error @ (HttpError::Connect(_) | HttpError::Broken(_)))) => {
                return Err(Failure::Transport(error.to_string()));
            }
            Ok(Err(error)) => return Err(Failure::Answer(error.to_string())),
            Ok(Ok(response)) => response,
        };
        if !(200..300).contains(&response.status) {
            let text = format!(
                "API {method} {path} failed ({}): {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            );
            return Err(if response.status == 401 {
                Failure::Refused(text)
            } else {
                Failure::Answer(text)
            });
        }
        if response.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&response.body)
            .map_err(|error| Failure::Answer(format!("the daemon's answer is not JSON: {error}")))
    }
}

/// How long a long poll asking to wait `wait_ms` may take before it counts as lost: the wait
/// the server will keep (at most `WAIT_TIMEOUT_MS_MAX`) and [`LONG_POLL_GRACE_MS`].
fn long_poll_limit(wait_ms: u64) -> u64 {
    wait_ms.min(WAIT_TIMEOUT_MS_MAX) + LONG_POLL_GRACE_MS
}

/// The rmcp handler over a [`Backend`].
pub struct McpServer<C>(
    Arc<Backend<C>>,
    Arc<std::sync::atomic::AtomicBool>,
    Arc<tokio::sync::watch::Sender<bool>>,
);

impl<C> McpServer<C> {
    /// Serves `backend`.
    #[must_use]
    pub fn new(backend: Backend<C>) -> Self {
        McpServer(
            Arc::new(backend),
            Arc::default(),
            Arc::new(tokio::sync::watch::Sender::new(false)),
        )
    }

    /// What to tell when the client's input ended (its stdin closed): every call in flight
    /// ends at once, its request to the daemon dropped (a wait that is dropped consumes
    /// nothing), instead of running on while the transport drains.
    #[must_use]
    pub fn input_ended(&self) -> Arc<tokio::sync::watch::Sender<bool>> {
        self.2.clone()
    }

    /// Its backend (to wait for its give-backs to be sent before the process ends).
    #[must_use]
    pub fn backend(&self) -> Arc<Backend<C>> {
        self.0.clone()
    }
}

/// How often a call that runs on (a long poll) tells a client that gave a progress token that
/// it still runs (`notifications/progress`): well inside the 60 s request timeout of the
/// TypeScript MCP SDK, which a client may reset on progress, so a long wait is not given up.
pub const PROGRESS_EVERY_MS: u64 = 15_000;

/// The MCP error code of a request the client cancelled (`notifications/cancelled`), as other
/// MCP SDKs answer it; rmcp sends no answer for a request whose cancellation it received.
const REQUEST_CANCELLED: i32 = -32800;

fn text_result(result: Result<String, String>) -> CallToolResult {
    match result {
        Ok(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
        Err(text) => CallToolResult::error(vec![ContentBlock::text(text)]),
    }
}

impl<C: Connect + 'static> ServerHandler for McpServer<C> {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("baton", env!("CARGO_PKG_VERSION")))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = tools::catalogue(self.0.role())
            .into_iter()
            .map(|tool| {
                let schema = match tool.schema {
                    Value::Object(schema) => schema,
                    _ => Map::new(),
                };
                Tool::new(tool.name, tool.description, Arc::new(schema))
            })
            .collect();
        // The daemon hears the agent is up [`TOOLS_SETTLE_MS`] after it first asked for its
        // tools (a client that has initialized may not have them yet, and one that just got
        // them may not have taken them in: Claude Code was seen to send its first request to the
        // model without them). Told in the background, the first time only: the agent has its
        // tools whether or not the daemon heard.
        if !self.1.swap(true, std::sync::atomic::Ordering::Relaxed) {
            let backend = self.0.clone();
            tokio::spawn(async move {
                crate::time::sleep(Duration::from_millis(TOOLS_SETTLE_MS)).await;
                let _ = backend.announce().await;
            });
        }
        Ok(ListToolsResult::with_all_items(tools))
    }

    /// Carries out a tool call until it ends, or until the client cancels it or its input
    /// ends: then the call's future, and with it its request to the daemon, is dropped at once.
    /// A long poll dropped so consumes nothing (the daemon answers no one who went away), so a
    /// signal it would have taken stays for the next wait.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let arguments = request.arguments.unwrap_or_default();
        let mut ended = self.2.subscribe();
        let (progress, peer) = (context.meta.get_progress_token(), context.peer.clone());
        let ticking = async move {
            if let Some(token) = progress {
                let mut ticks = 0u32;
                loop {
                    crate::time::sleep(Duration::from_millis(PROGRESS_EVERY_MS)).await;
                    ticks += 1;
                    let still = rmcp::model::ProgressNotificationParam::new(
                        token.clone(),
                        f64::from(ticks),
                    )
                    .with_message("still running");
                    // A client that went away is told nothing more; the call ends on its own.
                    let _ = peer.notify_progress(still).await;
                }
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            biased;
            () = context.ct.cancelled() => Err(ErrorData::new(
                rmcp::model::ErrorCode(REQUEST_CANCELLED),
                "the call was cancelled",
                None,
            )),
            _ = ended.wait_for(|ended| *ended) => Err(ErrorData::new(
                rmcp::model::ErrorCode(REQUEST_CANCELLED),
                "the client's input ended",
                None,
            )),
            result = self.0.call(&request.name, &arguments) => {
                Ok(text_result(result).into())
            }
            () = ticking => Err(ErrorData::internal_error("the progress ticker ended", None)),
        }
    }
}
