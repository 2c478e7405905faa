//! The app channel: HTTP with JSON bodies on the daemon's owner-only Unix socket (the state
//! directory is 0700, the socket 0600). Only the desktop app and the `baton` CLI, running as the
//! same user, reach it, so it takes no token.
//!
//! Routes (documented for clients in `docs/app-channel.md`):
//! - `GET /app/status`: the daemon (version, API URL, state directory) and its coordinators,
//!   each with its own agent's session;
//! - `POST /app/coordinators` `{projectRoot, agent, args?, skipPermissions?}`: registers a
//!   coordinator, 201 with it (its MCP config, for its agent's `--mcp-config`);
//! - `DELETE /app/coordinators/{id}`: deregisters one (its agent ended), 204;
//! - `POST /app/coordinators/{id}/rotate`: gives it a new token (a leaked one opens nothing
//!   any more; its agents keep running, their MCP servers read the new one), 200 with it;
//! - `POST /app/coordinators/{id}/agent` `{command, args?, prompt?}`: starts the coordinator's
//!   own agent in its project, 201 `{agentId}`;
//! - `GET /app/phone`, `POST /app/phone` `{loopback?, port?}`, `DELETE /app/phone`: phone access
//!   (its URL carries a new mobile token each start) — `phone`; `POST /app/phone/rotate`: a new
//!   link while it stays on (the old one opens nothing, its pages are closed);
//! - `GET /app/tasks`: every coordinator's sub-tasks;
//! - `POST /app/tasks/{id}/control` `{controlledBy: "human"|"coordinator"}`: who drives it, 204;
//! - `POST /app/coordinators/{id}/notifications/{batch}/ack` and `…/drop`: 204;
//! - `GET /app/attach/{id}` (WebSocket): a terminal, of a coordinator's agent (its id) or of a
//!   sub-task's (the task's id) — `terminal`;
//! - `GET /app/events` (WebSocket): the engine's events as JSON — `terminal`.
//!
//! Errors are `{"error": "…"}` with 400 (bad input), 404 (unknown route, coordinator or task),
//! 409 (the project cannot be used, the agent runs already), 500 (a file failed), 503 (shutting
//! down).

use std::path::PathBuf;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::json;

use super::registry::{
    AgentRequest, CoordinatorInfo, RegisterRequest, RegistryDoor, RegistryError,
};
use crate::api::error::json_response;
use crate::api::{Directory, Latest};
use crate::core::coordinator::Control;
use crate::core::ids::{BatchId, CoordinatorId, TaskId};
use crate::engine::{AppEvent, CoordinatorHandle, EngineError};

/// Largest request body on the app channel, in bytes.
pub const APP_BODY_BYTES_MAX: usize = 64 * 1024;

/// What the app channel serves from.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The registry.
    pub registry: RegistryDoor,
    /// The REST API's base URL.
    pub api_url: String,
    /// The state directory.
    pub state_dir: PathBuf,
    /// The registered coordinators' handles, as the registry publishes them.
    pub directory: Latest<Directory>,
    /// The engine's events.
    pub events: tokio::sync::broadcast::Sender<AppEvent>,
    /// Phone access.
    pub phone: super::phone::Phone,
}

impl AppState {
    /// The registered coordinators' handles, in id order.
    pub(super) fn handles(&self) -> Vec<CoordinatorHandle> {
        self.directory
            .get()
            .coordinators
            .values()
            .cloned()
            .collect()
    }

    /// The handle of the coordinator that has task `task`.
    pub(super) async fn owner_of(&self, task: TaskId) -> Option<CoordinatorHandle> {
        for handle in self.handles() {
            if handle.task_status(task).await.is_ok() {
                return Some(handle);
            }
        }
        None
    }
}

/// The app channel's router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/app/status", get(status))
        .route("/app/coordinators", post(register))
        .route("/app/coordinators/{id}", delete(deregister))
        .route("/app/coordinators/{id}/agent", post(start_agent))
        .route("/app/coordinators/{id}/rotate", post(rotate))
        .route(
            "/app/coordinators/{id}/notifications/{batch}/{verdict}",
            post(notification),
        )
        .route(
            "/app/phone",
            get(phone_status).post(phone_start).delete(phone_stop),
        )
        .route("/app/phone/rotate", post(phone_rotate))
        .route("/app/tasks", get(tasks))
        .route("/app/tasks/{id}/control", post(control))
        .route("/app/tasks/{id}/agent", post(respawn))
        .route("/app/tasks/{id}/explain", get(explain))
        .route("/app/attach/{id}", get(super::terminal::attach))
        .route("/app/events", get(super::terminal::events))
        .fallback(|| async { failure(StatusCode::NOT_FOUND, "no such route") })
        .layer(DefaultBodyLimit::max(APP_BODY_BYTES_MAX))
        .with_state(state)
}

fn failure(status: StatusCode, text: &str) -> Response {
    json_response(status, &json!({ "error": text }))
}

fn refused(error: &RegistryError) -> Response {
    let status = match error {
        RegistryError::Invalid(_) => StatusCode::BAD_REQUEST,
        RegistryError::NotFound(_) => StatusCode::NOT_FOUND,
        RegistryError::NotARepo { .. } | RegistryError::McpJson(_) | RegistryError::Confined(_) => {
            StatusCode::CONFLICT
        }
        RegistryError::Files(_) => StatusCode::INTERNAL_SERVER_ERROR,
        RegistryError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
        RegistryError::Agent(_) => StatusCode::CONFLICT,
    };
    failure(status, &error.to_string())
}

fn engine_refused(error: &EngineError) -> Response {
    let status = match error {
        EngineError::Missing(_) => StatusCode::NOT_FOUND,
        EngineError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        EngineError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
        EngineError::Core(crate::core::coordinator::CoreError::NotRespawnable(_)) => {
            StatusCode::CONFLICT
        }
        _ => StatusCode::BAD_REQUEST,
    };
    failure(status, &error.to_string())
}

async fn coordinator_json(info: &CoordinatorInfo, state: &AppState) -> serde_json::Value {
    // Its own agent, from its actor: as the phone shows it, with the detector's own reading.
    let handle = state.directory.get().coordinators.get(&info.id).cloned();
    let own = match handle {
        Some(handle) => handle.own_agent().await.ok().flatten(),
        None => None,
    };
    let agent = own.map(|session| {
        let mut value = json!(crate::api::dto::coordinator_agent(&session));
        value["readiness"] = json!(session.readiness.map(|r| format!("{r:?}")));
        value
    });
    json!({
        "id": info.id.to_string(),
        "projectRoot": info.project_root,
        "agent": info.agent,
        "mcpConfig": info.mcp_config,
        "mcpJson": info.mcp_json,
        "tasks": info.tasks,
        "session": agent,
    })
}

async fn status(State(state): State<AppState>) -> Response {
    match state.registry.list().await {
        Err(error) => refused(&error),
        Ok(list) => {
            let mut coordinators = Vec::new();
            for info in &list {
                coordinators.push(coordinator_json(info, &state).await);
            }
            json_response(
                StatusCode::OK,
                &json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "apiUrl": state.api_url,
                    "stateDir": state.state_dir,
                    "coordinators": coordinators,
                }),
            )
        }
    }
}

/// A request body, or why it is refused (a 400).
fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|error| format!("invalid body: {error}"))
}

/// An id in a path, or why it is refused (a 400).
fn parse_id<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("the {what} id is not a UUID"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentBody {
    command: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    prompt: Option<String>,
}

async fn start_agent(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (id, body) = match (
        parse_id::<CoordinatorId>(&id, "coordinator"),
        parse_body::<AgentBody>(&body),
    ) {
        (Ok(id), Ok(body)) => (id, body),
        (Err(why), _) | (_, Err(why)) => return failure(StatusCode::BAD_REQUEST, &why),
    };
    let request = AgentRequest {
        command: body.command,
        args: body.args,
        prompt: body.prompt,
    };
    match state.registry.start_agent(id, request).await {
        Ok(agent) => json_response(
            StatusCode::CREATED,
            &json!({ "agentId": agent.to_string() }),
        ),
        Err(error) => refused(&error),
    }
}

fn phone_json(info: &super::phone::PhoneInfo, clients: usize) -> serde_json::Value {
    json!({
        "enabled": true,
        "url": info.url,
        "address": info.address,
        "port": info.port,
        "connectedClients": clients,
    })
}

async fn phone_status(State(state): State<AppState>) -> Response {
    let clients = state.phone.connected_clients();
    let body = match state.phone.status().await {
        Some(info) => phone_json(&info, clients),
        None => json!({ "enabled": false, "connectedClients": 0 }),
    };
    json_response(StatusCode::OK, &body)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PhoneBody {
    #[serde(default)]
    loopback: bool,
    #[serde(default)]
    port: Option<u16>,
}

async fn phone_start(State(state): State<AppState>, body: Bytes) -> Response {
    let body: PhoneBody = if body.is_empty() {
        PhoneBody::default()
    } else {
        match parse_body(&body) {
            Ok(body) => body,
            Err(why) => return failure(StatusCode::BAD_REQUEST, &why),
        }
    };
    let started = state.phone.start(body.loopback, body.port).await;
    phone_answer(&state, started)
}

async fn phone_rotate(State(state): State<AppState>) -> Response {
    let rotated = state.phone.rotate().await;
    phone_answer(&state, rotated)
}

/// Phone access as started or given a new link, or why not: 503 while the daemon stops, 500 if
/// it could not be kept, 409 otherwise (no port, or off).
fn phone_answer(
    state: &AppState,
    result: Result<super::phone::PhoneInfo, super::phone::PhoneError>,
) -> Response {
    use super::phone::PhoneError;
    match result {
        Ok(info) => json_response(
            StatusCode::OK,
            &phone_json(&info, state.phone.connected_clients()),
        ),
        Err(PhoneError::Stopped) => failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down",
        ),
        Err(error @ PhoneError::Files(_)) => {
            failure(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string())
        }
        Err(error) => failure(StatusCode::CONFLICT, &error.to_string()),
    }
}

async fn phone_stop(State(state): State<AppState>) -> Response {
    let stopped = state.phone.stop().await;
    json_response(StatusCode::OK, &json!({ "stopped": stopped }))
}

async fn tasks(State(state): State<AppState>) -> Response {
    let mut all = Vec::new();
    for handle in state.handles() {
        match handle.list_tasks().await {
            Ok(tasks) => all.extend(
                tasks
                    .iter()
                    .map(|task| json!(crate::api::dto::detail(task, handle.id()))),
            ),
            Err(error) => return engine_refused(&error),
        }
    }
    json_response(StatusCode::OK, &json!({ "tasks": all }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ControlBody {
    controlled_by: String,
}

async fn control(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    let (task, body) = match (
        parse_id::<TaskId>(&id, "task"),
        parse_body::<ControlBody>(&body),
    ) {
        (Ok(task), Ok(body)) => (task, body),
        (Err(why), _) | (_, Err(why)) => return failure(StatusCode::BAD_REQUEST, &why),
    };
    let control = match body.controlled_by.as_str() {
        "human" => Control::Human,
        "coordinator" => Control::Coordinator,
        other => {
            return failure(
                StatusCode::BAD_REQUEST,
                &format!("controlledBy must be \"human\" or \"coordinator\", not {other:?}"),
            );
        }
    };
    let Some(handle) = state.owner_of(task).await else {
        return failure(StatusCode::NOT_FOUND, &format!("Task not found: {task}"));
    };
    match handle.set_control(task, control).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => engine_refused(&error),
    }
}

/// Why Baton thinks what it thinks of a task's agent (`baton explain`).
async fn explain(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let task = match parse_id::<TaskId>(&id, "task") {
        Ok(task) => task,
        Err(why) => return failure(StatusCode::BAD_REQUEST, &why),
    };
    let Some(handle) = state.owner_of(task).await else {
        return failure(StatusCode::NOT_FOUND, &format!("Task not found: {task}"));
    };
    match handle.explain(task).await {
        Ok(explained) => json_response(StatusCode::OK, &crate::api::dto::explanation(&explained)),
        Err(error) => engine_refused(&error),
    }
}

/// Starts a task's exited agent again: its task as `GET /app/tasks` shows it, with the new
/// agent id.
async fn respawn(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    let task = match parse_id::<TaskId>(&id, "task") {
        Ok(task) => task,
        Err(why) => return failure(StatusCode::BAD_REQUEST, &why),
    };
    if !body.is_empty() {
        return failure(StatusCode::BAD_REQUEST, "this route takes no body");
    }
    let Some(handle) = state.owner_of(task).await else {
        return failure(StatusCode::NOT_FOUND, &format!("Task not found: {task}"));
    };
    match handle.respawn(task).await {
        Ok(view) => {
            let mut task = json!(crate::api::dto::detail(&view, handle.id()));
            task["agentId"] = json!(view.agent.to_string());
            json_response(StatusCode::CREATED, &task)
        }
        Err(error @ EngineError::Io(_)) => {
            failure(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string())
        }
        Err(error) => engine_refused(&error),
    }
}

async fn notification(
    State(state): State<AppState>,
    Path((id, batch, verdict)): Path<(String, String, String)>,
) -> Response {
    let (id, batch) = match (
        parse_id::<CoordinatorId>(&id, "coordinator"),
        parse_id::<BatchId>(&batch, "batch"),
    ) {
        (Ok(id), Ok(batch)) => (id, batch),
        (Err(why), _) | (_, Err(why)) => return failure(StatusCode::BAD_REQUEST, &why),
    };
    let Some(handle) = state.directory.get().coordinators.get(&id).cloned() else {
        return failure(
            StatusCode::NOT_FOUND,
            &format!("Coordinator not found: {id}"),
        );
    };
    let done = match verdict.as_str() {
        "ack" => handle.ack_notification(batch).await,
        "drop" => handle.drop_notification(batch).await,
        _ => return failure(StatusCode::NOT_FOUND, "no such route"),
    };
    match done {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => engine_refused(&error),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RegisterBody {
    project_root: PathBuf,
    agent: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    skip_permissions: bool,
    #[serde(default)]
    notification_delay_ms: Option<u64>,
}

async fn register(State(state): State<AppState>, body: Bytes) -> Response {
    let body: RegisterBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(error) => return failure(StatusCode::BAD_REQUEST, &format!("invalid body: {error}")),
    };
    let request = RegisterRequest {
        project_root: body.project_root,
        agent: body.agent,
        args: body.args,
        skip_permissions: body.skip_permissions,
        notification_delay_ms: body.notification_delay_ms,
    };
    match state.registry.register(request).await {
        Ok(info) => json_response(StatusCode::CREATED, &coordinator_json(&info, &state).await),
        Err(error) => refused(&error),
    }
}

async fn rotate(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<CoordinatorId>() else {
        return failure(StatusCode::BAD_REQUEST, "the coordinator id is not a UUID");
    };
    match state.registry.rotate(id).await {
        Ok(info) => json_response(StatusCode::OK, &coordinator_json(&info, &state).await),
        Err(error) => refused(&error),
    }
}

async fn deregister(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<CoordinatorId>() else {
        return failure(StatusCode::BAD_REQUEST, "the coordinator id is not a UUID");
    };
    match state.registry.deregister(id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => refused(&error),
    }
}
