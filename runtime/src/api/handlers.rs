//! The routes: the gates first (`core::auth`), then the route's body checks, then the owning
//! coordinator's actor. Body-type errors (400) come before existence (404) and ownership (403),
//! as in the reference.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::audit;
use super::error::json_response;
use super::guard::Foreign;
use super::wire::{self, DONE};
use super::{Addresses, ApiError, ApiState, BODY_BYTES_MAX, Directory, Listening, dto};
use crate::core::audit::{Action, Actor};
use crate::core::auth::{self, Access, CoordinatorHeader, Holder, Route, TaskOp, TaskRef};
use crate::core::coordinator::{CoreError, IdleOutcome, MergeOptions, Sent};
use crate::core::ids::CoordinatorId;
use crate::core::replay::RequestId;
use crate::engine::{AgentsView, CoordinatorHandle, CreateTask, TaskView};

type Fields = Map<String, Value>;

/// Every request comes here: gates, then the route.
pub(super) async fn dispatch(State(state): State<ApiState>, request: Request) -> Response {
    let answer = tokio::select! {
        biased;
        answer = handle(&state, request) => answer,
        () = state.aborted() => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down",
        )),
    };
    match answer {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn handle(state: &ApiState, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let addresses = parts
        .extensions
        .get::<Addresses>()
        .copied()
        .unwrap_or_default();
    let listening = parts
        .extensions
        .get::<Listening>()
        .cloned()
        .ok_or_else(|| ApiError::new(StatusCode::MISDIRECTED_REQUEST, "unknown host"))?;
    // Before anything else, authentication included: a page elsewhere (DNS rebinding) is
    // told nothing.
    let host = single(&parts.headers, header::HOST);
    let origin = match parts.headers.get_all(header::ORIGIN).iter().count() {
        0 => None,
        1 => single(&parts.headers, header::ORIGIN),
        _ => Some(&b""[..]),
    };
    match listening.hosts.check(host, origin, addresses.local) {
        Ok(()) => {}
        Err(Foreign::Host) => {
            return Err(ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                "unknown host",
            ));
        }
        Err(Foreign::Origin) => {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "cross-origin request"));
        }
    }
    if super::ws::is_upgrade(&parts) {
        return Ok(super::ws::upgrade(state.clone(), &listening, addresses, parts).await);
    }
    let route = auth::route(parts.method.as_str(), parts.uri.path())?;
    let authorization = parts.headers.get("authorization").map(|v| v.as_bytes());
    let presented = auth::presented(authorization, parts.uri.query());
    let directory = state.directory();
    // The reads are scoped: a coordinator sees its own agents, the phone every one.
    let reader = presented
        .as_deref()
        .and_then(|p| directory.credentials.holder(p));
    let header = coordinator_header(&parts.headers);
    let access = directory
        .credentials
        .authorize(route, presented.as_deref(), header)?;
    match access {
        Access::Static => Ok(super::page::serve(parts.uri.path(), &parts.headers)),
        Access::Read(Route::OpenApi) => Ok((
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            super::OPENAPI,
        )
            .into_response()),
        Access::Read(Route::Agents) => {
            Ok(ok(&agent_list(&agents_views(&directory, reader).await?)))
        }
        Access::Read(Route::Agent(raw)) => {
            for handle in readable(&directory, reader) {
                let view = handle.agents().await?;
                for found in &view.agents {
                    if found.task.agent.to_string() == raw {
                        let ring = handle
                            .agent_scrollback(found.task.agent)
                            .await
                            .unwrap_or_default();
                        let mut agent = dto::agent(found, view.coordinator);
                        // The ring's raw bytes, as the WebSocket's `scrollback` sends them.
                        agent.scrollback = Some(crate::core::ids::base64(&ring).into());
                        return Ok(ok(&agent));
                    }
                }
            }
            Err(ApiError::new(StatusCode::NOT_FOUND, "agent not found"))
        }
        Access::Read(_) => Err(ApiError::new(StatusCode::NOT_FOUND, "not found")),
        Access::SubTask {
            task,
            op,
            token,
            named,
        } => {
            let token = done_token(&parts.headers).unwrap_or(token);
            // A hook's body is read here and judged by the engine once the token is the
            // task's: another task's token is refused before anything is said of its body.
            let hook = if crate::core::routes::Endpoint::Task(op).spec().body {
                hook_fields(read_fields(body).await.ok().as_ref())
            } else {
                HookFields::default()
            };
            let indexed = match &task {
                TaskRef::Id(id) => state.tasks.get().get(id).copied(),
                TaskRef::NotAnId(_) => None,
            };
            let answer = sub_task(&directory, indexed, (&task, op), &token, named, hook).await;
            // A signal its credential was taken for (a 401 is no sub-task's call).
            let (status, error) = status_of(&answer);
            if let (Some(log), TaskRef::Id(id), Some(coordinator), TaskOp::Done) =
                (&state.audit, &task, indexed, op)
                && status != StatusCode::UNAUTHORIZED.as_u16()
            {
                let actor = Actor::SubTask {
                    task: *id,
                    coordinator,
                };
                let what = (Action::SignalDone, Some(coordinator), Some(*id));
                let entry = audit::entry(actor, what, &Fields::new(), status, error);
                log.record(entry, vec![String::from_utf8_lossy(&token).into_owned()])
                    .await;
            }
            answer
        }
        Access::Coordinator(id, route) => {
            let handle = directory.coordinators.get(&id).cloned().ok_or_else(|| {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "coordinator not available")
            })?;
            // Only the routes that take a body read one (REST spec §2.1).
            let takes_body = route.endpoint().is_some_and(|e| e.spec().body);
            let fields = if takes_body {
                read_fields(body).await?
            } else {
                Fields::new()
            };
            let recorded = audit::coordinator_action(&route);
            let answer = coordinator(&directory, id, &handle, route, &fields).await;
            if let (Some(log), Some((action, task))) = (&state.audit, recorded) {
                let (status, error) = status_of(&answer);
                let entry = audit::entry(
                    Actor::Coordinator(id),
                    (action, Some(id), task),
                    &fields,
                    status,
                    error,
                );
                let secret = presented.map(|p| String::from_utf8_lossy(&p).into_owned());
                log.record(entry, secret.into_iter().collect()).await;
            }
            answer
        }
    }
}

/// An answer's status, and its error when it failed.
fn status_of(answer: &Result<Response, ApiError>) -> (u16, Option<String>) {
    match answer {
        Ok(response) => (response.status().as_u16(), None),
        Err(error) => (error.status.as_u16(), Some(error.message.clone())),
    }
}

/// The coordinators whose agents `reader` may read: a coordinator its own, the phone every
/// one (registered ones first, then orphans), anyone else none.
pub(super) fn readable<'a>(
    directory: &'a Directory,
    reader: Option<Holder>,
) -> impl Iterator<Item = &'a CoordinatorHandle> + 'a {
    directory
        .coordinators
        .values()
        .chain(&directory.orphans)
        .filter(move |handle| match reader {
            Some(Holder::Mobile) => true,
            Some(Holder::Coordinator(id)) => handle.id() == id,
            None => false,
        })
}

/// The agents of every coordinator `reader` may read ([`readable`]; each coordinator read in
/// one moment of its actor).
pub(super) async fn agents_views(
    directory: &Directory,
    reader: Option<Holder>,
) -> Result<Vec<AgentsView>, ApiError> {
    let mut views = Vec::new();
    for handle in readable(directory, reader) {
        views.push(handle.agents().await?);
    }
    Ok(views)
}

/// A header's value when it is sent exactly once.
fn single(headers: &HeaderMap, name: header::HeaderName) -> Option<&[u8]> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => Some(value.as_bytes()),
        _ => None,
    }
}

/// Every agent as a `RemoteAgent` (`GET /api/agents`, and the WebSocket's `agents` list).
pub(super) fn agent_list(views: &[AgentsView]) -> Vec<wire::RemoteAgent<'_>> {
    views
        .iter()
        .flat_map(|view| {
            view.agents
                .iter()
                .map(|agent| dto::agent(agent, view.coordinator))
        })
        .collect()
}

fn coordinator_header(headers: &HeaderMap) -> CoordinatorHeader<'_> {
    let mut values = headers.get_all("x-coordinator-id").iter();
    match (values.next(), values.next()) {
        (None, _) => CoordinatorHeader::Absent,
        (Some(value), None) => CoordinatorHeader::One(value.as_bytes()),
        (Some(_), Some(_)) => CoordinatorHeader::Many,
    }
}

/// The `X-Done-Token` header the reference's MCP server sends, if once and not empty.
fn done_token(headers: &HeaderMap) -> Option<Vec<u8>> {
    let mut values = headers.get_all("x-done-token").iter();
    match (values.next(), values.next()) {
        (Some(value), None) if !value.is_empty() => Some(value.as_bytes().to_vec()),
        _ => None,
    }
}

/// The request's JSON object: `{}` when empty; 413 past [`BODY_BYTES_MAX`]; 400 when it is not
/// JSON or not an object.
async fn read_fields(body: Body) -> Result<Fields, ApiError> {
    let bytes = to_bytes(body, BODY_BYTES_MAX)
        .await
        .map_err(|_| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large"))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Fields::new());
    }
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(fields)) => Ok(fields),
        _ => Err(ApiError::bad_request("invalid JSON body")),
    }
}

fn text<'a>(fields: &'a Fields, name: &str) -> Result<Option<&'a str>, ApiError> {
    match fields.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::bad_request(format!("{name} must be a string"))),
    }
}

fn flag(fields: &Fields, name: &str) -> Result<Option<bool>, ApiError> {
    match fields.get(name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::bad_request(format!("{name} must be a boolean"))),
    }
}

/// `timeoutMs`: a finite, non-negative number (fractions round down); absent is the default.
fn timeout(fields: &Fields) -> Result<Option<u64>, ApiError> {
    match fields.get("timeoutMs") {
        None => Ok(None),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(ms), _) => Ok(Some(ms)),
            (None, Some(f)) if f.is_finite() => Ok(Some(if f <= 0.0 { 0 } else { f as u64 })),
            _ => Err(ApiError::bad_request("timeoutMs must be a finite number")),
        },
        Some(_) => Err(ApiError::bad_request("timeoutMs must be a finite number")),
    }
}

/// A prompt: a string with something besides white space in it.
fn prompt(fields: &Fields) -> Result<Option<String>, ApiError> {
    match fields.get("prompt") {
        None => Ok(None),
        Some(Value::String(p)) if !p.trim().is_empty() => Ok(Some(p.clone())),
        Some(_) => Err(ApiError::bad_request("prompt must be a non-empty string")),
    }
}

fn ok(value: &impl serde::Serialize) -> Response {
    json_response(StatusCode::OK, value)
}

/// `task` as the caller sees it, when the caller holds it; else 403 when another coordinator
/// holds it, 404 when none does.
async fn owned(
    directory: &Directory,
    caller: &CoordinatorHandle,
    task: &TaskRef,
) -> Result<TaskView, ApiError> {
    let TaskRef::Id(id) = task else {
        return Err(ApiError::task_not_found());
    };
    if let Ok(view) = caller.task_status(*id).await {
        return Ok(view);
    }
    for other in directory.coordinators.values() {
        if other.id() != caller.id() && other.task_status(*id).await.is_ok() {
            return Err(ApiError::forbidden());
        }
    }
    Err(ApiError::task_not_found())
}

async fn coordinator(
    directory: &Directory,
    id: CoordinatorId,
    handle: &CoordinatorHandle,
    route: Route,
    fields: &Fields,
) -> Result<Response, ApiError> {
    match route {
        Route::CreateTask => create(id, handle, fields).await,
        Route::ListTasks => {
            // Encoded once per snapshot: the actor hands out the same one until a task changes.
            let body = handle.task_list().await?.encoded(|tasks| {
                let list: Vec<_> = tasks.iter().map(|t| dto::summary(t, id)).collect();
                serde_json::to_vec(&list).unwrap_or_default()
            });
            Ok((
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response())
        }
        Route::WaitSignal => {
            let request = match fields.get("requestId") {
                Some(Value::String(r)) => {
                    Some(RequestId::new(r).map_err(|e| ApiError::bad_request(e.to_string()))?)
                }
                _ => None,
            };
            if flag(fields, "giveBack")?.unwrap_or(false) {
                // The client gave the wait up and may have missed its answer.
                let Some(request) = request else {
                    return Err(ApiError::bad_request("giveBack needs the wait's requestId"));
                };
                let given = handle.give_back_request(request).await?;
                return Ok(ok(&wire::GivenBack { given_back: given }));
            }
            let delivery = handle
                .wait_for_signal_delivery(request, timeout(fields)?)
                .await?;
            let Some(outcome) = delivery.outcome() else {
                return Err(crate::engine::EngineError::Unavailable.into());
            };
            let bytes = serde_json::to_vec(&dto::signal(outcome, id)).unwrap_or_default();
            // The answer is the engine's again unless the connection takes these bytes.
            let body = super::delivery::DeliveryBody::new(bytes, delivery);
            Ok((
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                Body::new(body),
            )
                .into_response())
        }
        Route::McpConnected => {
            handle.coordinator_mcp_connected().await?;
            Ok(ok(&DONE))
        }
        Route::Task(task, op) => task_route(directory, id, handle, &task, op, fields).await,
        Route::Static
        | Route::Agents
        | Route::Agent(_)
        | Route::OpenApi
        | Route::WrongMethod(_)
        | Route::Unknown => Err(ApiError::new(StatusCode::NOT_FOUND, "not found")),
    }
}

async fn create(
    id: CoordinatorId,
    handle: &CoordinatorHandle,
    fields: &Fields,
) -> Result<Response, ApiError> {
    let name = match fields.get("name") {
        Some(Value::String(name)) => name.clone(),
        _ => return Err(ApiError::bad_request("name must be a non-empty string")),
    };
    let (policy, checks) =
        crate::core::coordinator::read_policy(fields.get("policy"), fields.get("checks"))
            .map_err(ApiError::bad_request)?;
    let request = CreateTask {
        name,
        prompt: text(fields, "prompt")?.map(str::to_owned),
        base_branch: text(fields, "baseBranch")?.map(str::to_owned),
        agent_command: None,
        agent_args: None,
        policy,
        checks,
    };
    // Accepted for compatibility and ignored: a coordinator's tasks are in its own project.
    text(fields, "projectId")?;
    if fields.contains_key("gitIsolation") {
        return Err(ApiError::bad_request(
            "gitIsolation is not supported; only worktree isolation is implemented",
        ));
    }
    if let Some(Value::String(named)) = fields.get("coordinatorTaskId")
        && *named != id.to_string()
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "coordinatorTaskId in body does not match X-Coordinator-Id header",
        ));
    }
    let task = handle.create_task(request).await?;
    Ok(json_response(StatusCode::CREATED, &dto::detail(&task, id)))
}

async fn task_route(
    directory: &Directory,
    id: CoordinatorId,
    handle: &CoordinatorHandle,
    task: &TaskRef,
    op: TaskOp,
    fields: &Fields,
) -> Result<Response, ApiError> {
    match op {
        TaskOp::Get => {
            let view = owned(directory, handle, task).await?;
            Ok(ok(&dto::detail(&view, id)))
        }
        TaskOp::Close => {
            let task = owned(directory, handle, task).await?.id;
            handle.close_task(task).await?;
            Ok(ok(&DONE))
        }
        TaskOp::Prompt => {
            let text = prompt(fields)?
                .ok_or_else(|| ApiError::bad_request("prompt must be a non-empty string"))?;
            let task = owned(directory, handle, task).await?.id;
            let sent = handle.send_prompt(task, text).await?;
            Ok(ok(&wire::PromptAnswer {
                ok: true,
                queued: sent == Sent::Queued,
            }))
        }
        TaskOp::Wait => {
            let wait = timeout(fields)?;
            let task = owned(directory, handle, task).await?.id;
            let outcome = handle.wait_for_idle(task, wait).await?;
            let reason = match outcome {
                IdleOutcome::Idle => "idle",
                IdleOutcome::Exited => "exited",
                IdleOutcome::HumanControl => "human_control",
                IdleOutcome::Removed => "removed",
                IdleOutcome::TimedOut => "timeout",
                IdleOutcome::NeedsAttention(_) => "needs_attention",
            };
            let status = handle
                .task_status(task)
                .await
                .map_or("unknown", |t| t.status.name());
            let attention = match outcome {
                IdleOutcome::NeedsAttention(why) => Some(why.name().into()),
                _ => None,
            };
            Ok(ok(&wire::IdleAnswer {
                attention,
                reason: reason.into(),
                status: status.into(),
                // A timeout is an answer, as for `wait-signal` (the reference made it a 500).
                timed_out: outcome == IdleOutcome::TimedOut,
            }))
        }
        TaskOp::Diff => {
            let task = owned(directory, handle, task).await?.id;
            Ok(ok(&dto::diff(&handle.task_diff(task).await?)))
        }
        TaskOp::Output => {
            let task = owned(directory, handle, task).await?.id;
            let output = handle.task_output(task).await?;
            Ok(ok(&wire::Output {
                output: output.into(),
            }))
        }
        TaskOp::Merge | TaskOp::ReviewMerge => {
            let squash = flag(fields, "squash")?.unwrap_or(false);
            let message = text(fields, "message")?.map(str::to_owned);
            let cleanup = flag(fields, "cleanup")?.unwrap_or(false);
            let task = owned(directory, handle, task).await?.id;
            if op == TaskOp::Merge {
                let options = MergeOptions {
                    squash,
                    message,
                    cleanup,
                };
                Ok(ok(&dto::merge(&handle.merge_task(task, options).await?)))
            } else {
                let (diff, merge) = handle.review_and_merge(task, squash, message).await?;
                Ok(ok(&wire::ReviewMerge {
                    diff: dto::diff(&diff),
                    merge: dto::merge(&merge),
                }))
            }
        }
        TaskOp::Done => {
            let task = owned(directory, handle, task).await?.id;
            handle.signal_done_as_coordinator(task).await?;
            Ok(ok(&DONE))
        }
        TaskOp::McpConnected => {
            let task = owned(directory, handle, task).await?.id;
            handle.mcp_connected(task).await?;
            Ok(ok(&DONE))
        }
        // A hook is the task's agent's own word: only its done token reports one.
        TaskOp::Hook => Err(ApiError::forbidden()),
    }
}

/// A hook's body, `{event, notificationType?}`, as sent (`None`: missing, or not a string).
#[derive(Clone, Debug, Default)]
struct HookFields {
    event: Option<String>,
    notification: Option<String>,
}

fn hook_fields(fields: Option<&Fields>) -> HookFields {
    let string = |name: &str| {
        fields
            .and_then(|f| f.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    HookFields {
        event: string("event"),
        notification: string("notificationType"),
    }
}

/// A sub-task's own route (`done`, `mcp-connected`, a hook): its credential is its task's done
/// token. Anything else (another task's token, a task that does not exist) is 401, saying
/// nothing of which; with `named` (a valid `X-Coordinator-Id`), 403 unless the task is that
/// coordinator's.
async fn sub_task(
    directory: &Arc<Directory>,
    indexed: Option<CoordinatorId>,
    (task, op): (&TaskRef, TaskOp),
    token: &[u8],
    named: Option<CoordinatorId>,
    hook: HookFields,
) -> Result<Response, ApiError> {
    let (TaskRef::Id(task), Ok(token)) = (task, std::str::from_utf8(token)) else {
        return Err(match named {
            Some(_) => ApiError::forbidden(),
            None => ApiError::unauthorized(),
        });
    };
    // The coordinator the task index names first, then every other one (the index may lag).
    let first = indexed.and_then(|id| directory.coordinators.get_key_value(&id));
    let rest = directory
        .coordinators
        .iter()
        .filter(|(id, _)| Some(**id) != indexed);
    for (id, handle) in first.into_iter().chain(rest) {
        if named.is_some_and(|named| named != *id) {
            continue;
        }
        let answer = match op {
            TaskOp::McpConnected => handle.mcp_connected_with(*task, token.to_owned()).await,
            TaskOp::Hook => {
                handle
                    .hook(
                        *task,
                        token.to_owned(),
                        hook.event.clone(),
                        hook.notification.clone(),
                    )
                    .await
            }
            _ => handle.signal_done(*task, token.to_owned()).await,
        };
        match answer {
            Ok(()) => return Ok(ok(&DONE)),
            Err(crate::engine::EngineError::Forbidden) => return Err(ApiError::unauthorized()),
            // Not this coordinator's task: the next one is asked.
            Err(crate::engine::EngineError::Core(CoreError::TaskNotFound(_))) => {}
            // The task's, refused for what it is: a body that says nothing known (a hook's), a
            // signal whose record could not be saved (a full disk), an actor gone. Never a 401:
            // the sub-task's credential was right, and it may try again.
            Err(error) => return Err(error.into()),
        }
    }
    // Not the named coordinator's task: ownership, as for a coordinator's call.
    Err(match named {
        Some(_) => ApiError::forbidden(),
        None => ApiError::unauthorized(),
    })
}
