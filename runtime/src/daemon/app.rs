//! The app channel: HTTP with JSON bodies on the daemon's owner-only Unix socket (the state
//! directory is 0700, the socket 0600). Only the desktop app and the `baton` CLI, running as the
//! same user, reach it, so it takes no token.
//!
//! Routes (this part of the channel; the app's terminal and event routes follow):
//! - `GET /app/status`: the daemon (version, API URL, state directory) and its coordinators;
//! - `POST /app/coordinators` `{projectRoot, agent, args?, skipPermissions?}`: registers a
//!   coordinator, 201 with it (its MCP config, for its agent's `--mcp-config`);
//! - `DELETE /app/coordinators/{id}`: deregisters one, 204.
//!
//! Errors are `{"error": "…"}` with 400 (bad input), 404 (unknown route or coordinator), 409
//! (the project cannot be used), 500 (a file failed), 503 (shutting down).

use std::path::PathBuf;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::json;

use super::registry::{CoordinatorInfo, RegisterRequest, RegistryDoor, RegistryError};
use crate::api::error::json_response;
use crate::core::ids::CoordinatorId;

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
}

/// The app channel's router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/app/status", get(status))
        .route("/app/coordinators", post(register))
        .route("/app/coordinators/{id}", delete(deregister))
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
        RegistryError::NotARepo { .. } | RegistryError::McpJson(_) => StatusCode::CONFLICT,
        RegistryError::Files(_) => StatusCode::INTERNAL_SERVER_ERROR,
        RegistryError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
    };
    failure(status, &error.to_string())
}

fn coordinator_json(info: &CoordinatorInfo) -> serde_json::Value {
    json!({
        "id": info.id.to_string(),
        "projectRoot": info.project_root,
        "agent": info.agent,
        "mcpConfig": info.mcp_config,
        "mcpJson": info.mcp_json,
        "tasks": info.tasks,
    })
}

async fn status(State(state): State<AppState>) -> Response {
    match state.registry.list().await {
        Err(error) => refused(&error),
        Ok(list) => json_response(
            StatusCode::OK,
            &json!({
                "version": env!("CARGO_PKG_VERSION"),
                "apiUrl": state.api_url,
                "stateDir": state.state_dir,
                "coordinators": list.iter().map(coordinator_json).collect::<Vec<_>>(),
            }),
        ),
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
    };
    match state.registry.register(request).await {
        Ok(info) => json_response(StatusCode::CREATED, &coordinator_json(&info)),
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
