//! The gates, case by case (the reference's scoping catalogue, REST spec §6.1, adapted to
//! per-coordinator tokens), and hostile input.

use super::{
    Access, CoordinatorHeader, Credentials, Holder, Refusal, Route, Secret, TOKEN_BYTES, TaskOp,
    TaskRef, percent_decode, presented, route,
};
use crate::core::ids::{CoordinatorId, TaskId};

fn coordinator(n: u8) -> CoordinatorId {
    CoordinatorId::from_random([n; 16])
}

fn secret(n: u8) -> Secret {
    Secret::from_random([n; TOKEN_BYTES])
}

/// Coordinators A (1) and B (2) registered with tokens 1 and 2; the phone with token 9.
fn credentials() -> Credentials {
    let mut credentials = Credentials::new();
    credentials.register(coordinator(1), secret(1));
    credentials.register(coordinator(2), secret(2));
    credentials.set_mobile(Some(secret(9)));
    credentials
}

fn task() -> TaskId {
    TaskId::from_random([7; 16])
}

/// The decision for `method path` with the token of `who` (0: none) and `header`.
fn check(
    method: &str,
    path: &str,
    who: u8,
    header: CoordinatorHeader<'_>,
) -> Result<Access, Refusal> {
    let token = (who != 0).then(|| secret(who).expose().as_bytes().to_vec());
    credentials().authorize(route(method, path)?, token.as_deref(), header)
}

#[test]
fn tokens_are_32_url_safe_characters_and_hide_in_debug() {
    let token = secret(0xab);
    assert_eq!(token.expose().len(), 32);
    assert!(
        token
            .expose()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_eq!(format!("{token:?}"), "Secret(…)");
}

#[test]
fn the_token_names_its_coordinator() {
    let credentials = credentials();
    assert_eq!(
        credentials.holder(secret(1).expose().as_bytes()),
        Some(Holder::Coordinator(coordinator(1)))
    );
    assert_eq!(
        credentials.holder(secret(2).expose().as_bytes()),
        Some(Holder::Coordinator(coordinator(2)))
    );
    assert_eq!(
        credentials.holder(secret(9).expose().as_bytes()),
        Some(Holder::Mobile)
    );
    assert_eq!(credentials.holder(secret(3).expose().as_bytes()), None);
    assert_eq!(credentials.holder(b""), None);
}

#[test]
fn the_bearer_header_decides_before_the_query() {
    assert_eq!(
        presented(Some(b"Bearer abc"), Some("token=xyz")),
        Some(b"abc".to_vec())
    );
    assert_eq!(
        presented(Some(b"bearer abc"), Some("token=xyz")),
        Some(b"xyz".to_vec()),
        "the prefix is case-sensitive"
    );
    assert_eq!(
        presented(None, Some("a=1&token=x%2By+z")),
        Some(b"x+y z".to_vec())
    );
    assert_eq!(presented(Some(b"Bearer "), None), None, "empty is no token");
    assert_eq!(
        presented(None, Some("token=%zz")),
        None,
        "a malformed escape is no token"
    );
    assert_eq!(presented(None, None), None);
}

#[test]
fn a_path_outside_the_api_is_static_and_needs_no_token() {
    assert_eq!(
        check("GET", "/", 0, CoordinatorHeader::Absent),
        Ok(Access::Static)
    );
    assert_eq!(
        check("GET", "/api", 0, CoordinatorHeader::Absent),
        Ok(Access::Static)
    );
    assert_eq!(
        check("GET", "/API/tasks", 0, CoordinatorHeader::Absent),
        Ok(Access::Static)
    );
}

#[test]
fn no_token_or_a_wrong_one_is_401_everywhere_but_the_done_route() {
    for (method, path) in [
        ("GET", "/api/tasks"),
        ("POST", "/api/tasks"),
        ("GET", "/api/agents"),
        ("GET", "/api/nothing-here"),
        ("OPTIONS", "/api/tasks"),
    ] {
        assert_eq!(
            check(method, path, 0, CoordinatorHeader::Absent),
            Err(Refusal::Unauthorized),
            "{method} {path}"
        );
        assert_eq!(
            check(method, path, 5, CoordinatorHeader::Absent),
            Err(Refusal::Unauthorized),
            "{method} {path}"
        );
    }
    let done = format!("/api/tasks/{}/done", task());
    assert_eq!(
        check("POST", &done, 0, CoordinatorHeader::Absent),
        Err(Refusal::Unauthorized)
    );
    assert_eq!(
        check("POST", &done, 5, CoordinatorHeader::Absent),
        Ok(Access::SubTask {
            task: TaskRef::Id(task()),
            op: TaskOp::Done,
            token: secret(5).expose().as_bytes().to_vec(),
            named: None,
        }),
        "an unknown token on the done route may be the task's done token: its handler decides"
    );
    let b = coordinator(2).to_string();
    assert!(
        matches!(
            check("POST", &done, 5, CoordinatorHeader::One(b.as_bytes())),
            Ok(Access::SubTask { named: Some(named), .. }) if named == coordinator(2)
        ),
        "a header naming a registered coordinator goes to the handler, which checks the task is its"
    );
    let stranger = coordinator(3).to_string();
    for header in [
        CoordinatorHeader::One(stranger.as_bytes()),
        CoordinatorHeader::One(b"not-an-id"),
        CoordinatorHeader::One(b""),
        CoordinatorHeader::Many,
    ] {
        assert_eq!(
            check("POST", &done, 5, header),
            Err(Refusal::Forbidden),
            "{header:?}: a header with a done token must name a registered coordinator (§6.2 case 142)"
        );
    }
}

#[test]
fn the_phone_reads_agents_only() {
    assert_eq!(
        check("GET", "/api/agents", 9, CoordinatorHeader::Absent),
        Ok(Access::Read(Route::Agents))
    );
    assert_eq!(
        check("GET", "/api/agents/a%20b", 9, CoordinatorHeader::Absent),
        Ok(Access::Read(Route::Agent("a%20b".into()))),
        "the agent id stays raw"
    );
    let id = task();
    for (method, path) in [
        ("GET", "/api/tasks".to_owned()),
        ("POST", "/api/tasks".to_owned()),
        ("POST", "/api/wait-signal".to_owned()),
        ("POST", "/api/mcp-connected".to_owned()),
        ("GET", format!("/api/tasks/{id}")),
        ("DELETE", format!("/api/tasks/{id}")),
        ("POST", format!("/api/tasks/{id}/prompt")),
        ("POST", format!("/api/tasks/{id}/merge")),
        ("POST", format!("/api/tasks/{id}/done")),
        ("GET", "/api/unknown".to_owned()),
    ] {
        assert_eq!(
            check(
                method,
                &path,
                9,
                CoordinatorHeader::One(coordinator(1).to_string().as_bytes())
            ),
            Err(Refusal::Forbidden),
            "{method} {path}"
        );
    }
}

#[test]
fn a_coordinator_header_must_name_the_tokens_own_coordinator() {
    let a = coordinator(1).to_string();
    let b = coordinator(2).to_string();
    assert_eq!(
        check("GET", "/api/tasks", 1, CoordinatorHeader::Absent),
        Ok(Access::Coordinator(coordinator(1), Route::ListTasks)),
        "the token alone names it"
    );
    assert_eq!(
        check("GET", "/api/tasks", 1, CoordinatorHeader::One(a.as_bytes())),
        Ok(Access::Coordinator(coordinator(1), Route::ListTasks))
    );
    assert_eq!(
        check("GET", "/api/tasks", 1, CoordinatorHeader::One(b.as_bytes())),
        Err(Refusal::Forbidden),
        "A's token with B's header"
    );
    assert_eq!(
        check("GET", "/api/tasks", 2, CoordinatorHeader::One(a.as_bytes())),
        Err(Refusal::Forbidden),
        "B's token with A's header"
    );
    assert_eq!(
        check("GET", "/api/tasks", 1, CoordinatorHeader::Many),
        Err(Refusal::Forbidden),
        "a header sent twice"
    );
    assert_eq!(
        check(
            "GET",
            "/api/tasks",
            1,
            CoordinatorHeader::One(b"coord\r\nX: y")
        ),
        Err(Refusal::Forbidden)
    );
}

#[test]
fn a_deregistered_coordinators_token_opens_nothing() {
    let mut credentials = credentials();
    credentials.deregister(coordinator(1));
    let token = secret(1).expose().as_bytes().to_vec();
    assert_eq!(
        credentials.authorize(Route::ListTasks, Some(&token), CoordinatorHeader::Absent),
        Err(Refusal::Unauthorized)
    );
    credentials.set_mobile(None);
    let phone = secret(9).expose().as_bytes().to_vec();
    assert_eq!(
        credentials.authorize(Route::Agents, Some(&phone), CoordinatorHeader::Absent),
        Err(Refusal::Unauthorized),
        "phone access turned off"
    );
}

#[test]
fn routes_are_read_off_method_and_raw_path() {
    let id = task();
    let task_route = |op| Ok(Route::Task(TaskRef::Id(id), op));
    for (method, tail, op) in [
        ("GET", "", TaskOp::Get),
        ("DELETE", "", TaskOp::Close),
        ("POST", "/prompt", TaskOp::Prompt),
        ("POST", "/wait", TaskOp::Wait),
        ("GET", "/diff", TaskOp::Diff),
        ("GET", "/output", TaskOp::Output),
        ("POST", "/merge", TaskOp::Merge),
        ("POST", "/review-merge", TaskOp::ReviewMerge),
        ("POST", "/done", TaskOp::Done),
        ("POST", "/mcp-connected", TaskOp::McpConnected),
    ] {
        assert_eq!(
            route(method, &format!("/api/tasks/{id}{tail}")),
            task_route(op),
            "{method} {tail}"
        );
    }
    assert_eq!(route("POST", "/api/tasks"), Ok(Route::CreateTask));
    assert_eq!(route("GET", "/api/tasks"), Ok(Route::ListTasks));
    assert_eq!(route("POST", "/api/wait-signal"), Ok(Route::WaitSignal));
    assert_eq!(route("POST", "/api/mcp-connected"), Ok(Route::McpConnected));
    assert_eq!(
        route("GET", "/api/mcp-connected"),
        Ok(Route::WrongMethod("POST".into()))
    );
    assert_eq!(route("GET", "/api/openapi.json"), Ok(Route::OpenApi));
    assert_eq!(
        route("PUT", &format!("/api/tasks/{id}")),
        Ok(Route::WrongMethod("GET, DELETE".into()))
    );
    assert_eq!(
        route("GET", &format!("/api/tasks/{id}/prompt")),
        Ok(Route::WrongMethod("POST".into()))
    );
    assert_eq!(
        route("DELETE", "/api/tasks"),
        Ok(Route::WrongMethod("GET, POST".into()))
    );
    assert_eq!(
        route("POST", "/api/agents/x"),
        Ok(Route::WrongMethod("GET".into()))
    );
    assert_eq!(
        route("GET", &format!("/api/tasks/{id}/nothing")),
        Ok(Route::Unknown)
    );
    assert_eq!(route("GET", "/api/tasks/"), Ok(Route::Unknown));
    assert_eq!(route("GET", "/api/agents/"), Ok(Route::Unknown));
}

#[test]
fn a_task_id_is_percent_decoded_and_anything_but_a_uuid_is_kept_for_a_404() {
    let id = task();
    let upper = id.to_string().to_uppercase().replace('A', "%41");
    assert_eq!(
        route("GET", &format!("/api/tasks/{upper}")),
        Ok(Route::Task(TaskRef::Id(id), TaskOp::Get))
    );
    assert_eq!(
        route("GET", "/api/tasks/..%2F..%2Fetc%2Fpasswd"),
        Ok(Route::Task(
            TaskRef::NotAnId("../../etc/passwd".into()),
            TaskOp::Get
        ))
    );
    assert_eq!(
        route("GET", "/api/tasks/x%0Ay"),
        Ok(Route::Task(
            TaskRef::NotAnId("x\u{fffd}y".into()),
            TaskOp::Get
        )),
        "control characters never reach a log line"
    );
    assert!(matches!(
        route("GET", "/api/tasks/%zz"),
        Err(Refusal::BadRequest(_))
    ));
    assert!(matches!(
        route("GET", "/api/tasks/%4"),
        Err(Refusal::BadRequest(_))
    ));
    let long = "x".repeat(super::PATH_ID_BYTES_MAX + 1);
    assert!(matches!(
        route("GET", &format!("/api/tasks/{long}")),
        Err(Refusal::BadRequest(_))
    ));
}

#[test]
fn an_unknown_api_path_is_404_for_a_coordinator_and_the_statuses_are_right() {
    assert_eq!(
        check("GET", "/api/x", 1, CoordinatorHeader::Absent),
        Err(Refusal::NotFound("not found"))
    );
    assert_eq!(Refusal::BadRequest(String::new()).status(), 400);
    assert_eq!(Refusal::Unauthorized.status(), 401);
    assert_eq!(Refusal::Forbidden.status(), 403);
    assert_eq!(Refusal::NotFound("not found").status(), 404);
    assert_eq!(
        check("PUT", "/api/tasks", 1, CoordinatorHeader::Absent),
        Err(Refusal::MethodNotAllowed("GET, POST".into()))
    );
    assert_eq!(
        check("PUT", "/api/tasks", 0, CoordinatorHeader::Absent),
        Err(Refusal::Unauthorized),
        "401 first"
    );
    assert_eq!(Refusal::MethodNotAllowed("GET".into()).status(), 405);
    assert_eq!(Refusal::Unauthorized.to_string(), "unauthorized");
    assert_eq!(Refusal::Forbidden.to_string(), "forbidden");
}

#[test]
fn hostile_bytes_never_panic() {
    let credentials = credentials();
    let accents = "é".repeat(16);
    let nasty: [&[u8]; 6] = [
        b"\xff\xfe",
        b"\0",
        &[0x80; 32],
        accents.as_bytes(),
        b"Bearer Bearer ",
        &[b'a'; 10_000],
    ];
    for bytes in nasty {
        let _ = credentials.holder(bytes);
        let _ = presented(Some(bytes), Some(&String::from_utf8_lossy(bytes)));
        let _ = percent_decode(bytes);
        let _ = credentials.authorize(Route::ListTasks, Some(bytes), CoordinatorHeader::One(bytes));
    }
    for path in [
        "/api/tasks/%",
        "/api/tasks/%%%",
        "/api/tasks/\u{0}",
        "/api//",
        "/api/tasks/é%C3",
    ] {
        let _ = route("POST", path);
    }
}
