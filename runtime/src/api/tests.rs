//! The router through `tower::ServiceExt::oneshot`, over a real engine on fake ports with
//! tokio's paused clock: every gate, the task routes, bodies, and what the reference's scoping
//! catalogue (REST spec §6.1.A) asks, adapted to per-coordinator tokens.

use std::path::Path;
use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{ApiState, BODY_BYTES_MAX, Directory, app};
use crate::core::auth::{Credentials, Secret, TOKEN_BYTES};
use crate::core::ids::{CoordinatorId, TaskId};
use crate::engine::{CoordinatorSettings, CreateTask, Engine};
use crate::ports::fakes::FakeFiles;

/// Coordinators A and B with a task each, the phone's token, and the router over them (the
/// fuzz target `http` sends to it too).
pub(crate) struct World {
    pub(crate) router: axum::Router,
    state: ApiState,
    files: Arc<FakeFiles>,
    pub(crate) a: CoordinatorId,
    pub(crate) b: CoordinatorId,
    pub(crate) task_a: TaskId,
    pub(crate) task_b: TaskId,
    _engine: Engine,
}

/// The `Host` every request names: the loopback listener's.
pub(crate) const HOST: &str = "127.0.0.1:7777";
pub(crate) const A: u8 = 1;
pub(crate) const B: u8 = 2;
pub(crate) const PHONE: u8 = 9;
pub(crate) const STRANGER: u8 = 5;

pub(crate) fn token(who: u8) -> String {
    Secret::from_random([who; TOKEN_BYTES]).expose().to_owned()
}

fn settings() -> CoordinatorSettings {
    CoordinatorSettings::new("/repo", "claude", "/tmp/baton")
}

pub(crate) async fn world() -> World {
    let fakes = crate::engine::FakeWorld::new(3);
    let files = fakes.files.clone();
    let mut engine = fakes.engine();
    let (a, b) = (
        CoordinatorId::from_random([A; 16]),
        CoordinatorId::from_random([B; 16]),
    );
    let mut directory = Directory {
        credentials: Credentials::new(),
        ..Directory::default()
    };
    let mut tasks = Vec::new();
    for (id, who) in [(a, A), (b, B)] {
        let handle = engine.register(id, settings());
        let request = CreateTask {
            name: format!("task-{who}"),
            prompt: None,
            base_branch: None,
            agent_command: None,
            agent_args: None,
            policy: crate::core::coordinator::Policy::Review,
            checks: Vec::new(),
        };
        tasks.push(handle.create_task(request).await.expect("created").id);
        directory
            .credentials
            .register(id, Secret::from_random([who; TOKEN_BYTES]));
        directory.coordinators.insert(id, handle);
    }
    directory
        .credentials
        .set_mobile(Some(Secret::from_random([PHONE; TOKEN_BYTES])));
    let (_publish, latest) = crate::api::latest::channel(directory);
    // The sender may go: the receiver keeps the last value published.
    let state = ApiState::new(latest, engine.agent_feed());
    World {
        router: app(state.clone(), super::Listening::loopback(7777)),
        state,
        files,
        a,
        b,
        task_a: tasks[0],
        task_b: tasks[1],
        _engine: engine,
    }
}

/// A request: `method path`, the token of `who` (0: none), extra headers, a raw body.
async fn send(
    world: &World,
    method: &str,
    path: &str,
    who: u8,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .header("host", HOST)
        .method(method)
        .uri(path);
    if who != 0 {
        request = request.header("authorization", format!("Bearer {}", token(who)));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = world
        .router
        .clone()
        .oneshot(
            request
                .body(Body::from(body.to_owned()))
                .expect("a request"),
        )
        .await
        .expect("the router answers");
    let status = response.status();
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(response.headers()[name], value, "{method} {path}: {name}");
    }
    let bytes = to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a body");
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, value)
}

fn error(text: &str) -> Value {
    json!({ "error": text })
}

#[tokio::test(start_paused = true)]
async fn no_token_or_a_strangers_token_is_401() {
    let w = world().await;
    for who in [0, STRANGER] {
        for (method, path) in [
            ("GET", "/api/tasks"),
            ("POST", "/api/tasks"),
            ("GET", "/api/x"),
        ] {
            assert_eq!(
                send(&w, method, path, who, &[], "").await,
                (StatusCode::UNAUTHORIZED, error("unauthorized")),
                "{method} {path} as {who}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn each_coordinator_lists_only_its_own_tasks() {
    let w = world().await;
    let (status, tasks) = send(&w, "GET", "/api/tasks", A, &[], "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tasks.as_array().map(Vec::len), Some(1));
    assert_eq!(tasks[0]["id"], w.task_a.to_string());
    assert_eq!(tasks[0]["coordinatorTaskId"], w.a.to_string());
    let (_, tasks) = send(&w, "GET", "/api/tasks", B, &[], "").await;
    assert_eq!(tasks[0]["id"], w.task_b.to_string());
}

/// `GET /api/tasks`'s raw body as `who`, and its `Content-Type`.
async fn list_bytes(w: &World, who: u8) -> (Vec<u8>, String) {
    let bearer = format!("Bearer {}", token(who));
    let response = fetch(w, "/api/tasks", &[("authorization", &bearer)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    let body = to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a body");
    (body.to_vec(), content_type)
}

/// The list as the views read now serialise: what `GET /api/tasks` answered before its body was
/// kept between requests.
async fn list_serialised(w: &World, coordinator: CoordinatorId) -> Vec<u8> {
    let handle = w.state.directory().coordinators[&coordinator].clone();
    let tasks = handle.list_tasks().await.expect("listed");
    let list: Vec<_> = tasks
        .iter()
        .map(|t| super::dto::summary(t, coordinator))
        .collect();
    serde_json::to_vec(&list).expect("serialised")
}

#[tokio::test(start_paused = true)]
async fn the_list_is_the_views_serialised_and_never_stale() {
    let w = world().await;
    let first = list_bytes(&w, A).await;
    assert_eq!(first.1, "application/json");
    assert_eq!(first.0, list_serialised(&w, w.a).await);
    assert_eq!(list_bytes(&w, A).await, first, "nothing changed");
    assert_eq!(list_bytes(&w, B).await.0, list_serialised(&w, w.b).await);

    // A task signals done: the next list says when.
    let done = format!("/api/tasks/{}/done", w.task_a);
    assert_eq!(send(&w, "POST", &done, A, &[], "").await.0, StatusCode::OK);
    let signalled = list_bytes(&w, A).await.0;
    assert_ne!(signalled, first.0);
    assert_eq!(signalled, list_serialised(&w, w.a).await);
    let (_, tasks) = send(&w, "GET", "/api/tasks", A, &[], "").await;
    assert!(tasks[0]["signalDoneAt"].is_string(), "{tasks}");

    // A task comes, then goes: the next list has it, the one after not.
    let (status, created) = send(&w, "POST", "/api/tasks", A, &[], r#"{"name":"second"}"#).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let two = list_bytes(&w, A).await.0;
    assert_eq!(two, list_serialised(&w, w.a).await);
    let (_, tasks) = send(&w, "GET", "/api/tasks", A, &[], "").await;
    assert_eq!(tasks.as_array().map(Vec::len), Some(2));
    let second = created["id"].as_str().expect("an id");
    let closed = send(&w, "DELETE", &format!("/api/tasks/{second}"), A, &[], "").await;
    assert_eq!(closed.0, StatusCode::OK, "{}", closed.1);
    assert_eq!(list_bytes(&w, A).await.0, signalled);
    assert_eq!(signalled, list_serialised(&w, w.a).await);
}

#[tokio::test(start_paused = true)]
async fn a_header_naming_another_coordinator_is_403() {
    let w = world().await;
    let b = w.b.to_string();
    let a = w.a.to_string();
    assert_eq!(
        send(&w, "GET", "/api/tasks", A, &[("x-coordinator-id", &b)], "").await,
        (StatusCode::FORBIDDEN, error("forbidden"))
    );
    assert_eq!(
        send(&w, "GET", "/api/tasks", A, &[("x-coordinator-id", &a)], "")
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        send(
            &w,
            "GET",
            "/api/tasks",
            A,
            &[("x-coordinator-id", &a), ("x-coordinator-id", &a)],
            ""
        )
        .await,
        (StatusCode::FORBIDDEN, error("forbidden")),
        "a header sent twice is never honoured"
    );
}

#[tokio::test(start_paused = true)]
async fn another_coordinators_task_is_403_and_a_missing_one_404_on_every_task_route() {
    let w = world().await;
    let theirs = w.task_b;
    let missing = TaskId::from_random([0x42; 16]);
    for (method, tail, body) in [
        ("GET", "", ""),
        ("DELETE", "", ""),
        ("POST", "/prompt", r#"{"prompt":"hello"}"#),
        ("POST", "/wait", r#"{"timeoutMs":10}"#),
        ("GET", "/diff", ""),
        ("GET", "/output", ""),
        ("POST", "/merge", "{}"),
        ("POST", "/review-merge", "{}"),
        ("POST", "/done", ""),
    ] {
        assert_eq!(
            send(
                &w,
                method,
                &format!("/api/tasks/{theirs}{tail}"),
                A,
                &[],
                body
            )
            .await,
            (StatusCode::FORBIDDEN, error("forbidden")),
            "{method} {tail}"
        );
        assert_eq!(
            send(
                &w,
                method,
                &format!("/api/tasks/{missing}{tail}"),
                A,
                &[],
                body
            )
            .await,
            (StatusCode::NOT_FOUND, error("task not found")),
            "{method} {tail}"
        );
    }
    assert_eq!(
        send(&w, "GET", "/api/tasks/..%2F..%2Fetc%2Fpasswd", A, &[], "").await,
        (StatusCode::NOT_FOUND, error("task not found"))
    );
    assert_eq!(
        send(&w, "GET", "/api/tasks/%zz", A, &[], "").await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test(start_paused = true)]
async fn the_phone_may_not_write() {
    let w = world().await;
    let task = w.task_a;
    for (method, path) in [
        ("GET", "/api/tasks".to_owned()),
        ("POST", "/api/tasks".to_owned()),
        ("POST", "/api/wait-signal".to_owned()),
        ("DELETE", format!("/api/tasks/{task}")),
        ("POST", format!("/api/tasks/{task}/prompt")),
        ("POST", format!("/api/tasks/{task}/merge")),
        ("POST", format!("/api/tasks/{task}/done")),
    ] {
        assert_eq!(
            send(
                &w,
                method,
                &path,
                PHONE,
                &[],
                r#"{"name":"x","prompt":"y"}"#
            )
            .await,
            (StatusCode::FORBIDDEN, error("forbidden")),
            "{method} {path}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_task_is_created_under_the_tokens_coordinator() {
    let w = world().await;
    let (status, task) = send(
        &w,
        "POST",
        "/api/tasks",
        A,
        &[],
        r#"{"name":"new task","prompt":"do the work"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(task["name"], "new task");
    assert_eq!(task["coordinatorTaskId"], w.a.to_string());
    assert_eq!(task["status"], "running");
    let named_b = format!(r#"{{"name":"x","coordinatorTaskId":"{}"}}"#, w.b);
    let (status, body) = send(&w, "POST", "/api/tasks", A, &[], &named_b).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("coordinatorTaskId"))
    );
    let named_a = format!(r#"{{"name":"x2","coordinatorTaskId":"{}"}}"#, w.a);
    assert_eq!(
        send(&w, "POST", "/api/tasks", A, &[], &named_a).await.0,
        StatusCode::CREATED
    );
}

#[tokio::test(start_paused = true)]
async fn bad_bodies_are_400_and_change_nothing() {
    let w = world().await;
    let task = w.task_a;
    for (path, body, text) in [
        ("/api/tasks".to_owned(), "{", "invalid JSON body"),
        ("/api/tasks".to_owned(), "null", "invalid JSON body"),
        ("/api/tasks".to_owned(), "[1]", "invalid JSON body"),
        (
            "/api/tasks".to_owned(),
            r#"{"name":7}"#,
            "name must be a non-empty string",
        ),
        (
            "/api/tasks".to_owned(),
            r#"{"name":"   "}"#,
            "name must be a non-empty string",
        ),
        (
            "/api/tasks".to_owned(),
            r#"{"name":"x","prompt":123}"#,
            "prompt must be a string",
        ),
        (
            "/api/tasks".to_owned(),
            r#"{"name":"x","gitIsolation":"none"}"#,
            "gitIsolation is not supported; only worktree isolation is implemented",
        ),
        (
            "/api/tasks".to_owned(),
            r#"{"name":"x","baseBranch":"/feat"}"#,
            "baseBranch must not start with \"/\"",
        ),
        (
            format!("/api/tasks/{task}/prompt"),
            "{}",
            "prompt must be a non-empty string",
        ),
        (
            format!("/api/tasks/{task}/prompt"),
            r#"{"prompt":"  "}"#,
            "prompt must be a non-empty string",
        ),
        (
            format!("/api/tasks/{task}/wait"),
            r#"{"timeoutMs":"soon"}"#,
            "timeoutMs must be a finite number",
        ),
        (
            format!("/api/tasks/{task}/merge"),
            r#"{"squash":"yes"}"#,
            "squash must be a boolean",
        ),
        (
            format!("/api/tasks/{task}/merge"),
            r#"{"message":1}"#,
            "message must be a string",
        ),
        (
            format!("/api/tasks/{task}/merge"),
            r#"{"cleanup":0}"#,
            "cleanup must be a boolean",
        ),
        (
            "/api/wait-signal".to_owned(),
            r#"{"timeoutMs":null}"#,
            "timeoutMs must be a finite number",
        ),
        (
            "/api/wait-signal".to_owned(),
            r#"{"requestId":""}"#,
            "requestId must be 1 to 128 printable ASCII characters",
        ),
    ] {
        assert_eq!(
            send(&w, "POST", &path, A, &[], body).await,
            (StatusCode::BAD_REQUEST, error(text)),
            "{path} {body}"
        );
    }
    let (_, tasks) = send(&w, "GET", "/api/tasks", A, &[], "").await;
    assert_eq!(
        tasks.as_array().map(Vec::len),
        Some(1),
        "nothing was created"
    );
    let huge = format!(r#"{{"name":"{}"}}"#, "x".repeat(BODY_BYTES_MAX));
    assert_eq!(
        send(&w, "POST", "/api/tasks", A, &[], &huge).await,
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            error("Request body too large")
        )
    );
}

/// The done token in `task`'s MCP config, as its `baton mcp` reads it.
fn done_token(w: &World, task: TaskId) -> String {
    let file = w
        .files
        .get(&Path::new("/tmp/baton").join(format!("baton-subtask-{task}.json")))
        .expect("the task's config");
    let value: Value = serde_json::from_slice(&file.bytes).expect("json");
    value["mcpServers"]["baton"]["env"]["BATON_DONE_TOKEN"]
        .as_str()
        .expect("a done token")
        .to_owned()
}

/// A sub-task's routes ask the coordinator the task index names first; an index that places
/// the task wrong (it lags behind the engine) or not at all changes no answer.
#[tokio::test(start_paused = true)]
async fn a_sub_tasks_call_is_answered_alike_whatever_the_task_index_says() {
    let w = world().await;
    let (own, other) = (done_token(&w, w.task_a), done_token(&w, w.task_b));
    let indexes = [
        super::TaskIndex::from([(w.task_a, w.a), (w.task_b, w.b)]),
        super::TaskIndex::from([(w.task_a, w.b)]),
        super::TaskIndex::new(),
    ];
    for index in indexes {
        let described = format!("{index:?}");
        let (_publisher, latest) = super::latest::channel(index);
        let router = app(
            w.state.clone().with_task_index(latest),
            super::Listening::loopback(7777),
        );
        let status = |token: String| {
            let router = router.clone();
            let request = Request::builder()
                .header("host", HOST)
                .method("POST")
                .uri(format!("/api/tasks/{}/mcp-connected", w.task_a))
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .expect("a request");
            async move { router.oneshot(request).await.expect("answers").status() }
        };
        assert_eq!(status(own.clone()).await, StatusCode::OK, "{described}");
        assert_eq!(
            status(other.clone()).await,
            StatusCode::UNAUTHORIZED,
            "another task's token, {described}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_sub_task_signals_with_its_own_done_token_only() {
    let w = world().await;
    let (own, other) = (done_token(&w, w.task_a), done_token(&w, w.task_b));
    let done = format!("/api/tasks/{}/done", w.task_a);
    let request = |token: &str, headers: Vec<(String, String)>| {
        let mut request = Request::builder()
            .header("host", HOST)
            .method("POST")
            .uri(&done);
        if !token.is_empty() {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.body(Body::empty()).expect("a request")
    };
    let status = |request: Request<Body>| async {
        w.router
            .clone()
            .oneshot(request)
            .await
            .expect("answers")
            .status()
    };
    assert_eq!(
        status(request(&other, vec![])).await,
        StatusCode::UNAUTHORIZED,
        "another task's token"
    );
    assert_eq!(
        status(request("", vec![])).await,
        StatusCode::UNAUTHORIZED,
        "no token"
    );
    assert_eq!(
        status(request("garbage", vec![])).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(request(&token(PHONE), vec![])).await,
        StatusCode::FORBIDDEN,
        "the phone"
    );
    assert_eq!(
        status(request(
            "legacy-shared-token",
            vec![("x-done-token".into(), own.clone())]
        ))
        .await,
        StatusCode::OK,
        "the reference's X-Done-Token header"
    );
    assert_eq!(status(request(&own, vec![])).await, StatusCode::OK);
    let (status, signal) = send(&w, "POST", "/api/wait-signal", A, &[], r#"{"timeoutMs":0}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(signal["taskId"], w.task_a.to_string());
}

#[tokio::test(start_paused = true)]
async fn a_coordinator_may_signal_its_own_task_without_a_done_token() {
    let w = world().await;
    let done = format!("/api/tasks/{}/done", w.task_a);
    assert_eq!(
        send(&w, "POST", &done, A, &[], "").await,
        (StatusCode::OK, json!({ "ok": true }))
    );
    let (_, signal) = send(
        &w,
        "POST",
        "/api/wait-signal",
        A,
        &[],
        r#"{"timeoutMs":0,"requestId":"r1"}"#,
    )
    .await;
    assert_eq!(signal["name"], "task-1");
    assert_eq!(signal["remaining"], 0);
    let (_, again) = send(
        &w,
        "POST",
        "/api/wait-signal",
        A,
        &[],
        r#"{"timeoutMs":0,"requestId":"r1"}"#,
    )
    .await;
    assert_eq!(again, signal, "the same requestId replays the answer");
    let (_, none) = send(
        &w,
        "POST",
        "/api/wait-signal",
        B,
        &[],
        r#"{"timeoutMs":0,"requestId":"r1"}"#,
    )
    .await;
    assert_eq!(
        none,
        json!({ "remaining": 1, "timedOut": true }),
        "B's wait sees nothing of A's"
    );
}

#[tokio::test(start_paused = true)]
async fn task_routes_answer_in_the_rest_shapes() {
    let w = world().await;
    let task = w.task_a;
    let (status, detail) = send(&w, "GET", &format!("/api/tasks/{task}"), A, &[], "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["name"], "task-1");
    assert!(detail["exitCode"].is_null());
    assert!(detail.get("signalDoneAt").is_none());
    let (status, sent) = send(
        &w,
        "POST",
        &format!("/api/tasks/{task}/prompt"),
        A,
        &[],
        r#"{"prompt":"hello"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sent["ok"], true);
    assert_eq!(
        send(&w, "GET", &format!("/api/tasks/{task}/output"), A, &[], "")
            .await
            .0,
        StatusCode::OK
    );
    let (status, diff) = send(&w, "GET", &format!("/api/tasks/{task}/diff"), A, &[], "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(diff["files"], json!([]));
    let (status, timed_out) = send(
        &w,
        "POST",
        &format!("/api/tasks/{task}/wait"),
        A,
        &[],
        r#"{"timeoutMs":10}"#,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a timeout is an answer, not a server error"
    );
    assert_eq!(
        timed_out,
        json!({ "status": "running", "reason": "timeout", "timedOut": true })
    );
    assert_eq!(
        send(&w, "DELETE", &format!("/api/tasks/{task}"), A, &[], "").await,
        (StatusCode::OK, json!({ "ok": true }))
    );
    assert_eq!(
        send(&w, "GET", &format!("/api/tasks/{task}"), A, &[], "").await,
        (StatusCode::NOT_FOUND, error("task not found"))
    );
}

/// The raw answer to a request without credentials.
async fn fetch(w: &World, path: &str, headers: &[(&str, &str)]) -> axum::response::Response {
    let mut request = Request::builder().header("host", HOST).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    w.router
        .clone()
        .oneshot(request.body(Body::empty()).expect("a request"))
        .await
        .expect("the router answers")
}

#[tokio::test(start_paused = true)]
async fn the_phone_page_is_served_to_anyone_and_revalidated_by_its_tag() {
    let w = world().await;
    for path in ["/", "/index.html", "/agent/whatever"] {
        let page = fetch(&w, path, &[]).await;
        assert_eq!(page.status(), StatusCode::OK, "{path}");
        assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(
            page.headers()["content-security-policy"],
            super::page::PAGE_CSP
        );
        assert_eq!(page.headers()["cache-control"], "no-cache");
    }
    let script = fetch(&w, "/xterm.js", &[]).await;
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let tag = script.headers()["etag"].to_str().expect("a tag").to_owned();
    let again = fetch(&w, "/xterm.js", &[("if-none-match", &tag)]).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let bytes = to_bytes(again.into_body(), usize::MAX)
        .await
        .expect("a body");
    assert!(bytes.is_empty());
    assert_eq!(
        fetch(&w, "/%2e%2e/etc/passwd", &[]).await.status(),
        StatusCode::BAD_REQUEST
    );

    // A browser that takes gzip gets the same bytes compressed, under a tag of their own.
    let zipped = fetch(&w, "/xterm.js", &[("accept-encoding", "gzip, br")]).await;
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    assert_eq!(zipped.headers()["vary"], "accept-encoding");
    assert_ne!(zipped.headers()["etag"].to_str().expect("a tag"), tag);
    let body = to_bytes(zipped.into_body(), usize::MAX)
        .await
        .expect("a body");
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut unzipped)
        .expect("gzip");
    let plain = super::page::lookup("/xterm.js").expect("an asset");
    assert_eq!(unzipped, plain.bytes);
    assert!(
        body.len() * 3 < plain.bytes.len(),
        "{} bytes zipped",
        body.len()
    );
}

#[tokio::test(start_paused = true)]
async fn static_paths_and_unknown_api_paths() {
    let w = world().await;
    assert_eq!(
        send(&w, "GET", "/api/nothing", A, &[], "").await,
        (StatusCode::NOT_FOUND, error("not found"))
    );
    assert_eq!(
        send(&w, "GET", "/api/nothing", PHONE, &[], "").await,
        (StatusCode::FORBIDDEN, error("forbidden"))
    );
}

#[tokio::test(start_paused = true)]
async fn aborting_ends_a_long_poll_with_503() {
    let w = world().await;
    let request = Request::builder()
        .header("host", HOST)
        .method("POST")
        .uri("/api/wait-signal")
        .header("authorization", format!("Bearer {}", token(A)))
        .body(Body::from(r#"{"timeoutMs":600000}"#))
        .expect("a request");
    let waiting = tokio::spawn(w.router.clone().oneshot(request));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "the wait is pending");
    w.state.abort_requests();
    let response = waiting.await.expect("joined").expect("answered");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let bytes = to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a body");
    assert_eq!(
        serde_json::from_slice::<Value>(&bytes).expect("json"),
        error("the daemon is shutting down")
    );
}

#[tokio::test(start_paused = true)]
async fn the_openapi_document_is_served_to_any_credential_holder() {
    let w = world().await;
    for who in [A, PHONE] {
        let (status, document) = send(&w, "GET", "/api/openapi.json", who, &[], "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(document["openapi"], "3.1.0");
    }
    assert_eq!(
        send(&w, "GET", "/api/openapi.json", 0, &[], "").await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// The document describes exactly the routes the gates know.
#[test]
fn the_openapi_document_names_every_route_served_and_no_other() {
    use crate::core::auth::{Route, route};
    use crate::core::routes::ROUTES;
    let document: Value = serde_json::from_str(super::OPENAPI).expect("the document is JSON");
    let task = TaskId::from_random([1; 16]);
    let mut documented = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in ["get", "post", "delete", "put", "patch"] {
            if let Some(operation) = item.get(method) {
                let concrete = path
                    .replace("{id}", &task.to_string())
                    .replace("{agentId}", "a");
                let routed = route(&method.to_uppercase(), &concrete).expect("routes");
                assert_ne!(
                    routed,
                    Route::Unknown,
                    "{method} {path} is documented but not served"
                );
                let body = operation.get("requestBody").is_some();
                documented.push((method.to_uppercase(), path.clone(), body));
            }
        }
    }
    documented.sort();
    let mut served: Vec<(String, String, bool)> = ROUTES
        .iter()
        .map(|spec| (spec.method.to_owned(), spec.path.to_owned(), spec.body))
        .collect();
    served.sort();
    assert_eq!(documented, served, "(method, path, reads a body)");
}

#[tokio::test(start_paused = true)]
async fn the_phone_reads_every_agent_and_a_coordinator_its_own() {
    let w = world().await;
    let (status, agents) = send(&w, "GET", "/api/agents", PHONE, &[], "").await;
    assert_eq!(status, StatusCode::OK);
    let agents = agents.as_array().cloned().unwrap_or_default();
    assert_eq!(agents.len(), 2, "not scoped by coordinator: {agents:?}");
    assert_eq!(agents[0]["taskName"], "task-1");
    assert_eq!(agents[0]["status"], "running");
    assert!(agents[0]["exitCode"].is_null());
    // What the phone's page shows beyond the reference: the grouping, the agent's state (one
    // that printed nothing is starting, by its process), activity, signal and control.
    assert_ne!(
        agents[0]["coordinatorId"], agents[1]["coordinatorId"],
        "each under its own coordinator: {agents:?}"
    );
    assert_eq!(agents[0]["state"], "starting");
    assert_eq!(agents[0]["stateSource"], "process");
    assert!(agents[0]["attention"].is_null());
    assert!(agents[0]["stateSince"].is_u64());
    assert!(agents[0]["lastActivityAt"].is_u64());
    assert!(agents[0]["signal"].is_null());
    assert_eq!(agents[0]["control"], "coordinator");
    let id = agents[1]["agentId"].as_str().unwrap_or_default().to_owned();
    let (status, agent) = send(&w, "GET", &format!("/api/agents/{id}"), PHONE, &[], "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(agent["taskId"], w.task_b.to_string());
    assert!(agent["scrollback"].is_string());
    // Issue 20: a coordinator lists and reads its own agents only; another's is not found.
    let (status, own) = send(&w, "GET", "/api/agents", A, &[], "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(own.as_array().map(Vec::len), Some(1), "{own:?}");
    assert_eq!(own[0]["taskId"], w.task_a.to_string());
    assert_eq!(
        send(&w, "GET", &format!("/api/agents/{id}"), A, &[], "").await,
        (StatusCode::NOT_FOUND, error("agent not found"))
    );
    assert_eq!(
        send(&w, "GET", &format!("/api/agents/{id}"), B, &[], "")
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        send(&w, "GET", "/api/agents/nobody", PHONE, &[], "").await,
        (StatusCode::NOT_FOUND, error("agent not found"))
    );
    assert_eq!(
        send(&w, "GET", "/api/agents", 0, &[], "").await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(start_paused = true)]
async fn a_foreign_host_or_origin_is_refused_before_authentication() {
    let w = world().await;
    let refused = |host: &'static str, origin: Option<&'static str>| {
        let mut request = Request::builder()
            .uri("/api/agents")
            .header("host", host)
            .header("authorization", format!("Bearer {}", token(PHONE)));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let router = w.router.clone();
        async move {
            let response = router
                .oneshot(request.body(Body::empty()).expect("a request"))
                .await
                .expect("the router answers");
            assert!(
                response
                    .headers()
                    .get("access-control-allow-origin")
                    .is_none()
            );
            response.status()
        }
    };
    assert_eq!(
        refused("evil.example:7777", None).await,
        StatusCode::MISDIRECTED_REQUEST
    );
    assert_eq!(
        refused("127.0.0.1:7777", Some("http://evil.example")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        refused("127.0.0.1:7777", Some("http://127.0.0.1:7777")).await,
        StatusCode::OK
    );
    assert_eq!(refused("localhost:7777", None).await, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn a_coordinators_mcp_server_announces_itself_with_the_coordinators_token_only() {
    let w = world().await;
    assert_eq!(
        send(&w, "POST", "/api/mcp-connected", A, &[], "{}").await,
        (StatusCode::OK, json!({ "ok": true }))
    );
    assert_eq!(
        send(&w, "POST", "/api/mcp-connected", 0, &[], "").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&w, "POST", "/api/mcp-connected", PHONE, &[], "")
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&w, "GET", "/api/mcp-connected", A, &[], "").await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[test]
fn the_openapi_document_refuses_in_a_task_name_exactly_what_the_server_refuses() {
    // The name's pattern is `^[^SET]*$`; SET is `\uXXXX` escapes, characters and ranges.
    let document: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
    let pattern = document["paths"]["/api/tasks"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"]["properties"]["name"]["pattern"]
        .as_str()
        .unwrap();
    let set = pattern
        .strip_prefix("^[^")
        .and_then(|p| p.strip_suffix("]*$"))
        .unwrap();
    let mut chars = set.chars().peekable();
    let next = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| -> u32 {
        match chars.next().unwrap() {
            '\\' => {
                assert_eq!(chars.next(), Some('u'));
                let hex: String = chars.by_ref().take(4).collect();
                u32::from_str_radix(&hex, 16).unwrap()
            }
            c => u32::from(c),
        }
    };
    let mut refused = Vec::new();
    while chars.peek().is_some() {
        let first = next(&mut chars);
        let last = if chars.next_if_eq(&'-').is_some() {
            next(&mut chars)
        } else {
            first
        };
        refused.push(first..=last);
    }
    for c in (0..=0x10_FFFF_u32).filter_map(char::from_u32) {
        let in_schema = refused.iter().any(|range| range.contains(&u32::from(c)));
        assert_eq!(
            in_schema,
            crate::core::text::is_hidden(c),
            "U+{:04X}: the document and the server disagree",
            u32::from(c)
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_wait_given_back_by_its_request_id_is_answered_again() {
    let w = world().await;
    let done = format!("/api/tasks/{}/done", w.task_a);
    assert_eq!(send(&w, "POST", &done, A, &[], "").await.0, StatusCode::OK);
    let wait = r#"{"timeoutMs":0,"requestId":"gave-up"}"#;
    let (_, first) = send(&w, "POST", "/api/wait-signal", A, &[], wait).await;
    assert_eq!(first["name"], "task-1");
    let give_back = r#"{"requestId":"gave-up","giveBack":true}"#;
    assert_eq!(
        send(&w, "POST", "/api/wait-signal", A, &[], give_back).await,
        (StatusCode::OK, json!({ "givenBack": true }))
    );
    assert_eq!(
        send(&w, "POST", "/api/wait-signal", A, &[], give_back).await,
        (StatusCode::OK, json!({ "givenBack": false })),
        "once"
    );
    let (_, next) = send(&w, "POST", "/api/wait-signal", A, &[], r#"{"timeoutMs":0}"#).await;
    assert_eq!(next["name"], "task-1", "offered again: {next}");
    let (status, refused) = send(
        &w,
        "POST",
        "/api/wait-signal",
        A,
        &[],
        r#"{"giveBack":true}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
}
