//! Target `http`: requests through the real router (`api::app` over a real engine on fake
//! ports, `api::tests::world`), sent with `tower::ServiceExt::oneshot` on tokio's paused clock:
//! arbitrary methods, paths, credentials, headers and bodies, and mutations of the real
//! requests of the corpus (`runtime/tests/fuzz-corpus/http/`, one request a file: the request
//! line, headers, a blank line, the body; `{task_a}`, `{task_b}` and `{missing}` name tasks).
//! A second family sends every body-taking route arbitrary bytes and arbitrary JSON.
//!
//! Properties: no request makes the server fail (no 5xx, no panic); every answer carries the
//! security headers; an API refusal is a JSON `{"error": text}`; a refused request changes no
//! task; a body that is not a JSON object is a 400 `invalid JSON body` on every route that
//! takes one, whatever else is wrong with it.

use axum::body::{Body, to_bytes};
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{FUZZ_INPUT_BYTES_MAX, bytes, bytes_or_mutated, config, corpus, json_value, mutated};
use crate::api::tests::{A, B, HOST, PHONE, STRANGER, World, token, world};
use crate::core::ids::TaskId;

/// A task no coordinator has.
const MISSING: &str = "42424242-4242-4242-8242-424242424242";

const PATH_DICTIONARY: &[&[u8]] = &[
    b"/api/",
    b"tasks/",
    b"agents/",
    b"{task_a}",
    b"{task_b}",
    b"{missing}",
    b"/prompt",
    b"/wait",
    b"/diff",
    b"/output",
    b"/merge",
    b"/review-merge",
    b"/done",
    b"/hook",
    b"/mcp-connected",
    b"wait-signal",
    b"openapi.json",
    b"%2F",
    b"%2e%2e",
    b"%zz",
    b"%",
    b"..",
    b"//",
    b"?token=",
    b"?",
    b"#",
];

const BODY_DICTIONARY: &[&[u8]] = &[
    b"\"name\":",
    b"\"prompt\":",
    b"\"baseBranch\":",
    b"\"timeoutMs\":",
    b"\"requestId\":",
    b"\"squash\":",
    b"\"message\":",
    b"\"cleanup\":",
    b"\"coordinatorTaskId\":",
    b"\"agentCommand\":",
    b"\"agentArgs\":",
    b"\"gitIsolation\":",
    b"1e309",
    b"-1",
    b"18446744073709551616",
    b"null",
    b"\"\\u202e\"",
    b"\"\\u0000\"",
    b"\"@{-1}\"",
    b"\"refs/heads/main\"",
    b"{",
    b"}",
    b"[",
    b",",
];

const KEYS: &[&str] = &[
    "name",
    "prompt",
    "baseBranch",
    "timeoutMs",
    "requestId",
    "squash",
    "message",
    "cleanup",
    "coordinatorTaskId",
    "agentCommand",
    "agentArgs",
    "gitIsolation",
];

const HEADER_NAMES: &[&str] = &[
    "authorization",
    "x-coordinator-id",
    "x-done-token",
    "content-type",
    "content-length",
    "transfer-encoding",
    "origin",
    "host",
    "if-none-match",
    "accept-encoding",
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "x-anything",
];

/// One request, as bytes before the HTTP library checks them.
#[derive(Clone, Debug)]
struct Raw {
    method: Vec<u8>,
    path: Vec<u8>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
}

/// Reads a corpus file: `METHOD PATH`, `name: value` lines, a blank line, the body.
fn read_raw(text: &[u8]) -> Raw {
    let text = String::from_utf8_lossy(text);
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default();
    let (method, path) = request_line.split_once(' ').unwrap_or((request_line, "/"));
    let headers = lines
        .filter_map(|line| line.split_once(": "))
        .map(|(name, value)| (name.as_bytes().to_vec(), value.as_bytes().to_vec()))
        .collect();
    Raw {
        method: method.as_bytes().to_vec(),
        path: path.as_bytes().to_vec(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

fn seeds() -> Vec<Raw> {
    corpus("http")
        .into_iter()
        .map(|(_, bytes)| read_raw(&bytes))
        .collect()
}

/// Who presents a credential: nobody, A, B, the phone, a stranger, or garbage.
#[derive(Clone, Debug)]
enum Who {
    Token(u8),
    Garbage(Vec<u8>),
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        4 => proptest::sample::select(vec![0, A, B, PHONE, STRANGER]).prop_map(Who::Token),
        1 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(Who::Garbage),
        1 => "Bearer [ -~]{0,80}".prop_map(|text| Who::Garbage(text.into_bytes())),
    ]
}

fn header() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    (
        prop_oneof![
            4 => proptest::sample::select(HEADER_NAMES).prop_map(|n| n.as_bytes().to_vec()),
            1 => proptest::collection::vec(any::<u8>(), 0..20),
        ],
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..100),
            "[ -~]{0,60}".prop_map(String::into_bytes),
            Just(HOST.as_bytes().to_vec()),
            Just(b"application/json".to_vec()),
            Just(b"websocket".to_vec()),
            Just(b"upgrade".to_vec()),
        ],
    )
}

fn method() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::sample::select(vec!["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"])
            .prop_map(|m| m.as_bytes().to_vec()),
        1 => "[A-Za-z!#$%&'*+.^_`|~-]{1,12}".prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>(), 0..12),
    ]
}

/// A request: a corpus request mutated part by part, or one made from nothing.
fn raw() -> impl Strategy<Value = Raw> {
    let seeds = seeds();
    let paths: Vec<Vec<u8>> = seeds.iter().map(|raw| raw.path.clone()).collect();
    let bodies: Vec<Vec<u8>> = seeds.iter().map(|raw| raw.body.clone()).collect();
    let mutated_seed = (
        proptest::sample::select(seeds),
        proptest::option::of(method()),
        mutated(paths.clone(), PATH_DICTIONARY),
        proptest::collection::vec(header(), 0..4),
        prop_oneof![
            Just(None),
            bytes_or_mutated(bodies.clone(), BODY_DICTIONARY).prop_map(Some),
            json_value(KEYS).prop_map(|v| Some(v.to_string().into_bytes())),
        ],
    )
        .prop_map(|(seed, method, path, headers, body)| Raw {
            method: method.unwrap_or(seed.method),
            path,
            headers: seed.headers.into_iter().chain(headers).collect(),
            body: body.unwrap_or(seed.body),
        });
    let from_nothing = (
        method(),
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            "/[ -~]{0,120}".prop_map(String::into_bytes),
        ],
        proptest::collection::vec(header(), 0..6),
        prop_oneof![bytes(), mutated(bodies, BODY_DICTIONARY)],
    )
        .prop_map(|(method, path, headers, body)| Raw {
            method,
            path,
            headers,
            body,
        });
    prop_oneof![3 => mutated_seed, 1 => from_nothing]
}

/// The request `raw` names in `world`, or `None` when the HTTP library refuses to make it (a
/// server's HTTP parser refuses it before any router).
fn build(world: &World, raw: &Raw, who: &Who) -> Option<Request<Body>> {
    let path = String::from_utf8_lossy(&raw.path)
        .replace("{task_a}", &world.task_a.to_string())
        .replace("{task_b}", &world.task_b.to_string())
        .replace("{missing}", MISSING);
    let mut request = Request::new(Body::from(raw.body.clone()));
    *request.method_mut() = Method::from_bytes(&raw.method).ok()?;
    *request.uri_mut() = Uri::try_from(path).ok()?;
    let headers = request.headers_mut();
    headers.insert("host", HeaderValue::from_static(HOST));
    match who {
        Who::Token(0) => {}
        Who::Token(who) => {
            let value = format!("Bearer {}", token(*who));
            headers.insert("authorization", HeaderValue::from_str(&value).ok()?);
        }
        Who::Garbage(bytes) => {
            if let Ok(value) = HeaderValue::from_bytes(bytes) {
                headers.insert("authorization", value);
            }
        }
    }
    for (name, value) in &raw.headers {
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    Some(request)
}

/// What each coordinator's task list holds (ids and names: states move with time).
async fn tasks(world: &World) -> Vec<Vec<(String, String)>> {
    let mut lists = Vec::new();
    for who in [A, B] {
        let request = Request::get("/api/tasks")
            .header("host", HOST)
            .header("authorization", format!("Bearer {}", token(who)))
            .body(Body::empty())
            .expect("a request");
        let (status, body) = answer(world, request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let list = body
            .as_array()
            .map(|tasks| {
                tasks
                    .iter()
                    .map(|t| (t["id"].to_string(), t["name"].to_string()))
                    .collect()
            })
            .unwrap_or_default();
        lists.push(list);
    }
    lists
}

async fn answer(world: &World, request: Request<Body>) -> (StatusCode, Value) {
    let (status, _, body) = respond(world, request).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn respond(
    world: &World,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = world
        .router
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, usize::MAX).await.expect("a body");
    (parts.status, parts.headers, body.to_vec())
}

/// Sends `raw` and checks the properties; `Ok(false)` when no request could be made of it.
async fn check(world: &World, raw: &Raw, who: &Who) -> Result<bool, TestCaseError> {
    let Some(request) = build(world, raw, who) else {
        return Ok(false);
    };
    // HEAD answers carry no body.
    let api = request.uri().path().starts_with("/api/") && request.method() != Method::HEAD;
    let what = format!("{} {}", request.method(), request.uri());
    let before = tasks(world).await;
    let (status, headers, body) = respond(world, request).await;
    prop_assert!(
        !status.is_server_error(),
        "{}: {} {:?}",
        what,
        status,
        String::from_utf8_lossy(&body)
    );
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        prop_assert_eq!(
            headers.get(name).map(HeaderValue::as_bytes),
            Some(value.as_bytes()),
            "{}: {}",
            what,
            name
        );
    }
    if status.is_client_error() {
        if api {
            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            prop_assert!(
                value["error"].is_string() && value.as_object().is_some_and(|o| o.len() == 1),
                "{}: {} {:?}",
                what,
                status,
                String::from_utf8_lossy(&body)
            );
        }
        prop_assert_eq!(
            tasks(world).await,
            before,
            "{}: refused ({}) yet changed",
            what,
            status
        );
    }
    Ok(true)
}

/// Runs `case` in a fresh world on a paused clock (long polls end at their timeout at once).
fn in_world<T>(case: impl AsyncFnOnce(&World) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let world = world().await;
        case(&world).await
    })
}

#[test]
fn every_request_of_the_corpus_holds_the_properties_for_everyone() {
    in_world(async |world| {
        for (name, bytes) in corpus("http") {
            let raw = read_raw(&bytes);
            for who in [0, A, B, PHONE, STRANGER] {
                let made = check(world, &raw, &Who::Token(who))
                    .await
                    .unwrap_or_else(|e| panic!("{name} as {who}: {e}"));
                assert!(made, "{name}: a request");
            }
        }
    });
}

/// Routes that read a JSON body, as `(method, path)`; `{task}` is A's task.
const BODY_ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/tasks"),
    ("POST", "/api/wait-signal"),
    ("POST", "/api/tasks/{task_a}/prompt"),
    ("POST", "/api/tasks/{task_a}/wait"),
    ("POST", "/api/tasks/{task_a}/merge"),
    ("POST", "/api/tasks/{task_a}/review-merge"),
];

fn body_route() -> impl Strategy<Value = (&'static str, &'static str)> {
    proptest::sample::select(BODY_ROUTES)
}

/// Whether `body` is what `read_fields` takes: blank, or a JSON object.
fn is_fields(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
        || matches!(serde_json::from_slice(body), Ok(Value::Object(_)))
}

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn arbitrary_and_mutated_requests_hold_the_properties(raw in raw(), who in who()) {
        in_world(async |world| check(world, &raw, &who).await.map(|_| ()))?;
    }

    #[test]
    fn a_body_that_is_no_json_object_is_400_on_every_route_that_takes_one(
        (method, path) in body_route(),
        body in prop_oneof![
            bytes_or_mutated(seeds().into_iter().map(|r| r.body).collect(), BODY_DICTIONARY),
            json_value(KEYS).prop_map(|v| v.to_string().into_bytes()),
        ],
    ) {
        prop_assume!(body.len() <= FUZZ_INPUT_BYTES_MAX);
        let raw = Raw {
            method: method.as_bytes().to_vec(),
            path: path.as_bytes().to_vec(),
            headers: Vec::new(),
            body: body.clone(),
        };
        in_world(async |world| {
            let request = build(world, &raw, &Who::Token(A)).expect("a request");
            let (status, answer) = {
                let (status, _, bytes) = respond(world, request).await;
                (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
            };
            if !is_fields(&body) {
                prop_assert_eq!(
                    (status, answer),
                    (StatusCode::BAD_REQUEST, json!({ "error": "invalid JSON body" }))
                );
            } else {
                prop_assert!(!status.is_server_error(), "{} {}: {}", method, path, status);
            }
            Ok(())
        })?;
    }
}

#[test]
fn a_missing_task_is_a_task_id() {
    // The corpus's `{missing}` must be a task id, or the 404 cases test the parser instead.
    assert!(MISSING.parse::<TaskId>().is_ok());
}
