//! What a step's `call` does: a coordinator's MCP tools, and the app's (or the human's)
//! actions, with their results as JSON in the shapes of the REST API (`ApiTaskDetail`,
//! `WaitForSignalDoneResult`, …; see the REST spec's appendix A): a coordinator's tools and the
//! attacker's requests are HTTP requests to the daemon's real API, the app's actions go through
//! its app channel.
//!
//! Arguments are read leniently, as the MCP server reads them: a missing optional field is
//! absent, a field of the wrong type is an error naming it.

use std::path::Path;

use baton_runtime::api::{dto, wire};
use baton_runtime::core::ids::{CoordinatorId, TaskId};
use baton_runtime::core::routes::{Endpoint, TaskOp};
use baton_runtime::engine::EngineError;
use baton_runtime::ports::{PtyHost, Repo};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::daemon::{DAEMON_DOWN, Shared};

/// A call's answer: a result, or the error text the caller saw.
pub type Answer = Result<Value, String>;

/// What the caller of a wait for a signal got (a task's signal or exit), for the checker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    /// The task.
    pub task: TaskId,
    /// The signal's time, in simulated milliseconds.
    pub at_ms: u64,
    /// The request id it was asked with.
    pub request: Option<String>,
    /// Whether the task had exited (the answer may report its exit rather than a signal).
    pub exited: bool,
}

/// The string argument `field`, if given.
///
/// # Errors
/// It is there but not a string.
pub fn text<'a>(args: &'a Value, field: &str) -> Result<Option<&'a str>, String> {
    match args.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{field} must be a string")),
    }
}

fn required<'a>(args: &'a Value, field: &str) -> Result<&'a str, String> {
    text(args, field)?.ok_or_else(|| format!("{field} must be a non-empty string"))
}

/// The task named by `taskId`.
///
/// # Errors
/// Missing, or not a UUID.
pub fn task_arg(args: &Value) -> Result<TaskId, String> {
    required(args, "taskId")?
        .parse()
        .map_err(|_| "taskId must be a valid UUID".to_owned())
}

fn engine_error(error: EngineError) -> String {
    match error {
        EngineError::Unavailable => DAEMON_DOWN.to_owned(),
        other => other.to_string(),
    }
}

/// How a coordinator's MCP tool travels (the route table: `mcp::tools::endpoint_of`): its
/// REST method, its path, and whether the step's arguments (less `taskId`) are the body.
fn rest_route(call: &str, task: Option<&str>) -> Option<(&'static str, String, bool)> {
    let endpoint = baton_runtime::mcp::tools::endpoint_of(call)?;
    let spec = endpoint.spec();
    let path = match spec.path.contains('{') {
        true => endpoint.path_for(task?),
        false => spec.path.to_owned(),
    };
    Some((spec.method, path, spec.body))
}

/// Sends a request to the daemon's REST API over the simulated network: its status, and its
/// body (as JSON when it is JSON). A `done` that goes through is a signal given, whoever sent
/// it: the checker is told here, for every sender.
/// What an answer that is the phone's page (its `index.html`) reads as in a trace and in a
/// scenario's expectations: the page's bytes change with the page, not with the daemon.
pub const THE_PAGE: &str = "(the phone's page)";

fn is_the_page(bytes: &[u8]) -> bool {
    baton_runtime::api::page::lookup("/").is_ok_and(|page| page.bytes == bytes)
}

async fn exchange(
    shared: &Shared,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<(u16, Value), String> {
    let done = Endpoint::Task(TaskOp::Done).spec();
    let signalled: Option<TaskId> = done
        .capture(path)
        .flatten()
        .and_then(|id| id.parse().ok())
        .filter(|_| method == done.method);
    let sent = shared.recorder.elapsed_ms();
    if let Some(task) = signalled {
        shared.observed().signal_sent(task, sent);
    }
    let (status, bytes) = crate::net::send(method, path, headers, body)
        .await
        .map_err(|e| e.to_string())?;
    if let (Some(task), true) = (signalled, (200..300).contains(&status)) {
        shared.observed().signal_given(task, sent);
    }
    let value = if is_the_page(&bytes) {
        Value::String(THE_PAGE.to_owned())
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Ok((status, value))
}

/// A request to the daemon's REST API with `token` as the bearer; a 2xx answer's JSON, or the
/// error as `<status> <text>`.
pub async fn rest(
    shared: &Shared,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Answer {
    let headers = [
        ("authorization".to_owned(), format!("Bearer {token}")),
        ("content-type".to_owned(), "application/json".to_owned()),
    ];
    let body = body.map(Value::to_string).unwrap_or_default();
    let (status, value) = exchange(shared, method, path, &headers, body.as_bytes()).await?;
    if (200..300).contains(&status) {
        Ok(value)
    } else {
        let text = wire::ErrorBody::deserialize(&value).map(|e| e.error.into_owned());
        Err(format!("{status} {}", text.unwrap_or_default()))
    }
}

/// The attacker's raw request: `method`, `path` (sent as written), `auth` (whose credential:
/// a coordinator's name, `phone`, `done:<task name>`, `raw:<any text>`, or none), `headers`, and
/// a `body` (a string sent as it is, or a table sent as JSON). The answer is always data:
/// `{status, body}`, the body as JSON when it is JSON.
pub async fn attacker_http(shared: &Shared, args: &Value) -> Answer {
    let method = text(args, "method")?.unwrap_or("GET");
    let path = required(args, "path")?;
    let headers = request_headers(shared, args)?;
    let body = match args.get("body") {
        None => String::new(),
        Some(Value::String(raw)) => raw.clone(),
        Some(other) => other.to_string(),
    };
    let (status, body) = exchange(shared, method, path, &headers, body.as_bytes()).await?;
    Ok(json!({ "status": status, "body": body }))
}

/// How long a half-sent request waits for the daemon to close it when the step says nothing.
pub const HALF_REQUEST_WAIT_MS_DEFAULT: u64 = 30_000;

/// The attacker's half-sent request: opens a connection to the daemon's API, sends `bytes`
/// (default: a request line and a `Host`, without the blank line that ends the head), and
/// waits up to `for` for the daemon to close it. The answer is `{closed}`: `true` when the
/// daemon closed the connection in time (whatever it sent first is read and dropped).
pub async fn attacker_half_request(args: &Value) -> Answer {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let bytes = text(args, "bytes")?.map_or_else(
        || {
            format!(
                "GET /api/agents HTTP/1.1\r\nhost: {}:{}\r\n",
                crate::world::DAEMON_HOST,
                crate::net::API_PORT
            )
        },
        str::to_owned,
    );
    let wait = match text(args, "for")? {
        None => HALF_REQUEST_WAIT_MS_DEFAULT,
        Some(at) => match crate::scenario::parse_at(at)? {
            crate::scenario::At::Absolute(ms) => ms,
            crate::scenario::At::After(_) => return Err(format!("for {at:?}: write it without +")),
        },
    };
    let mut stream =
        turmoil::net::TcpStream::connect((crate::world::DAEMON_HOST, crate::net::API_PORT))
            .await
            .map_err(|_| DAEMON_DOWN.to_owned())?;
    stream
        .write_all(bytes.as_bytes())
        .await
        .map_err(|e| format!("daemon unavailable: {e}"))?;
    let closed = async {
        let mut buffer = [0u8; 1_024];
        // Until end of stream or a reset: either is the daemon letting go.
        while let Ok(read) = stream.read(&mut buffer).await {
            if read == 0 {
                break;
            }
        }
    };
    let closed = baton_runtime::time::timeout(std::time::Duration::from_millis(wait), closed)
        .await
        .is_ok();
    Ok(json!({ "closed": closed }))
}

/// The headers of an attacker's request: `auth`'s credential as the bearer, then `headers` as
/// given (a value that is not a string as JSON).
///
/// # Errors
/// `auth` names no credential.
pub fn request_headers(shared: &Shared, args: &Value) -> Result<Vec<(String, String)>, String> {
    let mut headers = Vec::new();
    if let Some(token) = credential(shared, text(args, "auth")?)? {
        headers.push(("authorization".to_owned(), format!("Bearer {token}")));
    }
    if let Some(Value::Object(extra)) = args.get("headers") {
        for (name, value) in extra {
            let value = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            headers.push((name.clone(), value));
        }
    }
    Ok(headers)
}

/// The credential an attacker's `auth` names: a coordinator's name, `phone`, `done:<task
/// name>` (that task's done token), `raw:<any text>`, or none (`None` or `"none"`).
///
/// # Errors
/// A name that is none of those, or a task that was never created.
pub fn credential(shared: &Shared, auth: Option<&str>) -> Result<Option<String>, String> {
    Ok(match auth {
        None | Some("none") => None,
        Some("phone") => Some(shared.phone.expose().to_owned()),
        Some(raw) if raw.starts_with("raw:") => Some(raw["raw:".len()..].to_owned()),
        Some(task) if task.starts_with("done:") => {
            let name = &task["done:".len()..];
            let named = shared
                .observed()
                .task_named(name)
                .ok_or_else(|| format!("auth {task:?}: no task named {name:?} was created"))?;
            Some(
                shared
                    .done_token(named.id)
                    .ok_or_else(|| format!("auth {task:?}: its config is gone"))?,
            )
        }
        Some(name) => Some(
            shared
                .registered(name)
                .map(|r| r.token.expose().to_owned())
                .ok_or_else(|| {
                    format!("auth {name:?}: no such coordinator, and not phone, done:… or raw:…")
                })?,
        ),
    })
}

/// The prefix of a coordinator call made through the real MCP tool (`mcp.wait_for_signal_done`):
/// the runtime's `baton mcp` code carries it out, retries and all.
pub const MCP_CALL_PREFIX: &str = "mcp.";

/// A coordinator's call through the runtime's MCP server code (`mcp::server::Backend`, the
/// coordinator role) over turmoil's TCP: the tool's text as the answer, as JSON when it is
/// JSON (`{"text": …}` otherwise), and the signal a wait returned, for the checker.
pub async fn coordinator_mcp_call(
    shared: &Shared,
    (name, registered): (&str, &crate::daemon::Registered),
    tool: &str,
    args: &Value,
) -> (Answer, Option<Signal>) {
    let var = baton_runtime::agents::TOKEN_VARS[0];
    let coordinator = ("--coordinator-id", registered.id.to_string());
    let backend = match shared.mcp_process(name, coordinator, (var, registered.token.expose())) {
        Ok(backend) => backend,
        Err(error) => return (Err(error), None),
    };
    let arguments = args.as_object().cloned().unwrap_or_default();
    let answer = backend
        .call(tool, &arguments)
        .await
        .map(|text| serde_json::from_str(&text).unwrap_or_else(|_| json!({ "text": text })));
    let signal = match (&answer, tool) {
        (Ok(value), "wait_for_signal_done") => delivered(value, args),
        _ => None,
    };
    (answer, signal)
}

/// Makes a coordinator's tool call through the daemon's REST API, as its MCP server would. A
/// wait for a signal that returned a task also returns it, for the checker.
pub async fn coordinator_call(
    shared: &Shared,
    token: &str,
    call: &str,
    args: &Value,
) -> (Answer, Option<Signal>) {
    let task = match args.get("taskId") {
        None => None,
        Some(_) => match task_arg(args) {
            Ok(_) => args["taskId"].as_str(),
            Err(error) => return (Err(error), None),
        },
    };
    let Some((method, path, with_body)) = rest_route(call, task) else {
        return (Err(format!("unknown coordinator call {call:?}")), None);
    };
    let body = with_body.then(|| {
        let mut fields = args.clone();
        if let Some(fields) = fields.as_object_mut() {
            fields.remove("taskId");
        }
        fields
    });
    let mut answer = rest(shared, token, method, &path, body.as_ref()).await;
    // The wait_for_idle tool reports a timeout as its error, as the MCP server does.
    if let (Ok(value), "wait_for_idle") = (&answer, call)
        && wire::IdleAnswer::deserialize(value).is_ok_and(|idle| idle.timed_out)
    {
        let task = args["taskId"].as_str().unwrap_or_default();
        answer = Err(format!("Timed out waiting for task {task} to become idle"));
    }
    let signal = match (&answer, call) {
        (Ok(value), "wait_for_signal_done") => delivered(value, args),
        _ => None,
    };
    (answer, signal)
}

/// The signal a wait's answer carries, if it names a task.
fn delivered(answer: &Value, args: &Value) -> Option<Signal> {
    let answer = wire::SignalAnswer::deserialize(answer).ok()?;
    let at_ms = iso_ms(&answer.signal_done_at?)?.saturating_sub(crate::world::EPOCH_MS);
    Some(Signal {
        task: TaskId(answer.task_id?.0),
        at_ms,
        request: args["requestId"].as_str().map(str::to_owned),
        exited: answer.status.as_deref() == Some("exited"),
    })
}

/// Milliseconds since the Unix epoch of an ISO-8601 UTC timestamp as the API writes it
/// (`2023-11-14T22:13:20.123Z`).
#[must_use]
pub fn iso_ms(text: &str) -> Option<u64> {
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<u64>().ok();
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (h, m, s, ms) = (
        number(11..13)?,
        number(14..16)?,
        number(17..19)?,
        number(20..23)?,
    );
    // Days from 1970-01-01 to the civil date (the inverse of `Millis::iso8601`).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let year_of_era = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * mp + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = (era * 146_097 + day_of_era).checked_sub(719_468)?;
    Some(((days * 24 + h) * 60 + m) * 60_000 + s * 1_000 + ms)
}

fn coordinator_arg(shared: &Shared, args: &Value) -> Result<CoordinatorId, String> {
    let name = required(args, "coordinator")?;
    shared
        .registered(name)
        .map(|r| r.id)
        .ok_or_else(|| format!("no coordinator named {name:?} was registered"))
}

/// What the app does for one of its actions (over the app channel where it has a route:
/// `crate::app`). `checkout_dirtied` is set when it leaves the user's checkout with uncommitted
/// changes on purpose.
pub async fn app_call(
    shared: &Shared,
    call: &str,
    args: &Value,
    checkout_dirtied: &mut bool,
) -> Answer {
    // Over the app channel, where it has a route (`crate::app`).
    if let Some(answer) = crate::app::call(shared, call, args).await {
        return answer;
    }
    let door = || shared.door().ok_or_else(|| DAEMON_DOWN.to_owned());
    match call {
        "list_tasks" => {
            let id = coordinator_arg(shared, args)?;
            let handle = shared.coordinator(id).await?;
            let tasks = handle.list_tasks().await.map_err(engine_error)?;
            let list: Vec<_> = tasks.iter().map(|t| dto::summary(t, id)).collect();
            Ok(json!(list))
        }
        "type" => {
            let task = task_arg(args)?;
            let typed = required(args, "text")?;
            let view = shared
                .owner(task)
                .await?
                .task_status(task)
                .await
                .map_err(engine_error)?;
            let pty = door()?.pty;
            let agent = view.agent;
            let mut bytes = typed.as_bytes().to_vec();
            bytes.push(b'\r');
            pty.write(agent, &bytes).await.map_err(|e| e.to_string())?;
            Ok(json!(wire::DONE))
        }
        "close_task" => {
            let task = task_arg(args)?;
            shared
                .owner(task)
                .await?
                .close_task(task)
                .await
                .map_err(engine_error)?;
            Ok(json!(wire::DONE))
        }
        "remove_task" => {
            let task = task_arg(args)?;
            shared
                .owner(task)
                .await?
                .remove_task(task)
                .await
                .map_err(engine_error)?;
            shared.observed().gone(task);
            Ok(json!(wire::DONE))
        }
        "task_output" => {
            let task = task_arg(args)?;
            let output = shared
                .owner(task)
                .await?
                .task_output(task)
                .await
                .map_err(engine_error)?;
            Ok(json!(wire::Output {
                output: output.into()
            }))
        }
        "reschedule_notifications" => {
            let id = coordinator_arg(shared, args)?;
            let handle = shared.coordinator(id).await?;
            handle
                .reschedule_notifications()
                .await
                .map_err(engine_error)?;
            Ok(json!({ "ok": true }))
        }
        "commit_on_main" | "edit_checkout" => {
            let path = required(args, "path")?;
            let content = required(args, "content")?;
            let root = Path::new(crate::world::PROJECT_ROOT);
            shared
                .repo
                .edit(root, path, content)
                .map_err(|e| e.to_string())?;
            if call == "commit_on_main" {
                shared.repo.commit(root).map_err(|e| e.to_string())?;
            } else {
                *checkout_dirtied = true;
            }
            Ok(json!(wire::DONE))
        }
        "staged" => {
            let id = coordinator_arg(shared, args)?;
            Ok(match shared.observed().staged(id) {
                Some(batch) => json!({
                    "staged": true,
                    "count": batch.count,
                    "firesAt": batch.fires_at_ms,
                    "delayMs": batch.fires_at_ms.saturating_sub(batch.staged_at_ms),
                }),
                None => json!({ "staged": false }),
            })
        }
        "read_file" => {
            let path = required(args, "path")?;
            // The project whose repository has the branch (each coordinator has its own).
            let wanted = text(args, "branch")?;
            let projects: Vec<std::path::PathBuf> = shared
                .declared
                .iter()
                .map(|d| d.request.project_root.clone())
                .collect();
            let root = projects
                .iter()
                .find(|root| wanted.is_some_and(|b| shared.repo.tree(root, b).is_some()))
                .map_or(Path::new(crate::world::PROJECT_ROOT), |root| root.as_path());
            let branch = match wanted {
                Some(branch) => branch.to_owned(),
                None => shared
                    .repo
                    .main_branch(root.to_owned())
                    .await
                    .map_err(|e| e.to_string())?,
            };
            let committed = shared
                .repo
                .tree(root, &branch)
                .ok_or_else(|| format!("no branch {branch:?}"))?
                .get(path)
                .cloned();
            let checkout = shared.repo.files(root).and_then(|f| f.get(path).cloned());
            Ok(json!({ "branch": branch, "committed": committed, "checkout": checkout }))
        }
        other => Err(format!("unknown app call {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use baton_runtime::core::time::Millis;

    use super::{iso_ms, rest_route};
    use crate::scenario::coordinator_calls;

    #[test]
    fn every_coordinator_tool_has_its_rest_route() {
        for call in coordinator_calls() {
            assert!(rest_route(call, Some("t")).is_some(), "{call}");
        }
        assert_eq!(rest_route("fly", Some("t")), None);
    }

    #[test]
    fn iso_timestamps_read_back_to_their_milliseconds() {
        for ms in [0, 1_700_000_000_123, 951_782_400_000, 4_107_542_399_999] {
            assert_eq!(iso_ms(&Millis(ms).iso8601()), Some(ms));
        }
        assert_eq!(iso_ms("yesterday"), None);
    }

    #[test]
    fn task_ids_are_percent_encoded_in_paths() {
        assert_eq!(
            rest_route("get_task_status", Some("../a b")).map(|r| r.1),
            Some("/api/tasks/..%2Fa%20b".to_owned())
        );
    }
}
