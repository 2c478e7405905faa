//! The daemon's listeners on real sockets (issue 20): half-sent requests are closed after the
//! header-read timeout, a flood of idle connections leaves the app channel and an authenticated
//! REST call answering under a small descriptor limit, and a foreign `Host` is refused.
//! Loopback only.

#![allow(clippy::unwrap_used)] // test helpers: a step that fails is the test failing

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use baton_runtime::api::guard::{API_CONNECTIONS_MAX, HEADER_READ_TIMEOUT_MS};
use baton_runtime::mcp::http::BaseUrl;
use common::{BATON, Daemon, isolated, repo_with, within};

/// The descriptor limit the flood test runs its daemon under: far below the flood, above the
/// API listener's cap and what the daemon needs besides.
const FLOOD_FD_LIMIT: usize = 400;
/// Half-sent requests in the flood.
const FLOOD_CONNECTIONS: usize = 600;

/// `baton daemon` under `ulimit -n limit`, as [`Daemon::start`] otherwise.
fn start_limited(state: &Path, limit: usize) -> Daemon {
    let log = state.with_extension("stderr");
    let mut command = Command::new("sh");
    isolated(&mut command)
        .arg("-c")
        .arg(format!(
            "ulimit -n {limit} && exec \"$0\" daemon --port 0 --state-dir \"$1\""
        ))
        .arg(BATON)
        .arg(state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap());
    Daemon::ready(&mut command, state, &log)
}

fn raw(api: &BaseUrl, request: &str) -> String {
    let mut stream = TcpStream::connect((api.host.as_str(), api.port)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn a_foreign_host_or_origin_is_refused_on_a_real_socket() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("state"));
    let port = daemon.api.port;
    let evil = raw(
        &daemon.api,
        "GET /api/agents HTTP/1.1\r\nhost: evil.example\r\nconnection: close\r\n\r\n",
    );
    assert!(evil.starts_with("HTTP/1.1 421"), "{evil}");
    let page = raw(
        &daemon.api,
        &format!("GET / HTTP/1.1\r\nhost: evil.example:{port}\r\nconnection: close\r\n\r\n"),
    );
    assert!(page.starts_with("HTTP/1.1 421"), "{page}");
    let origin = raw(
        &daemon.api,
        &format!(
            "GET /api/agents HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\norigin: http://evil.example\r\nconnection: close\r\n\r\n"
        ),
    );
    assert!(origin.starts_with("HTTP/1.1 403"), "{origin}");
    assert!(
        !origin
            .to_ascii_lowercase()
            .contains("access-control-allow-origin")
    );
    let own = raw(
        &daemon.api,
        &format!("GET /api/agents HTTP/1.1\r\nhost: localhost:{port}\r\nconnection: close\r\n\r\n"),
    );
    assert!(
        own.starts_with("HTTP/1.1 401"),
        "our own name reaches the gates: {own}"
    );
    daemon.stop();
}

#[test]
fn a_half_sent_request_is_closed_after_the_header_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("state"));
    let api = daemon.api.clone();
    let early = within("the daemon closing a half-sent request", move || {
        let mut stream = TcpStream::connect((api.host.as_str(), api.port)).unwrap();
        stream
            .write_all(b"GET /api/agents HTTP/1.1\r\nhost: 127.0.0.1\r\n")
            .unwrap();
        // Still open a second before the timeout: the read gives up, the daemon does not.
        let before = Duration::from_millis(HEADER_READ_TIMEOUT_MS - 1_000);
        stream.set_read_timeout(Some(before)).unwrap();
        let mut byte = [0u8; 1];
        let early = stream.read(&mut byte);
        stream.set_read_timeout(None).unwrap();
        let mut rest = Vec::new();
        // Closed (end of stream or a reset) once the timeout is past; a daemon that never
        // closes it fails the bounded wait.
        let _ = stream.read_to_end(&mut rest);
        early.map_err(|e| e.kind())
    });
    assert!(
        matches!(
            early,
            Err(std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
        ),
        "closed before the header-read timeout: {early:?}"
    );
    daemon.stop();
}

#[test]
fn a_flood_of_idle_connections_leaves_the_app_channel_and_a_rest_call_answering() {
    const { assert!(FLOOD_CONNECTIONS > FLOOD_FD_LIMIT && FLOOD_FD_LIMIT > API_CONNECTIONS_MAX) };
    let dir = tempfile::tempdir().unwrap();
    let repo = repo_with(&dir.path().join("repo"), &[("README.md", "hi\n")]);
    let daemon = start_limited(&dir.path().join("state"), FLOOD_FD_LIMIT);
    let (_, token, _) = daemon.register(&repo, "sh", &["-c", "sleep 600"]);
    let mut flood = Vec::new();
    for _ in 0..FLOOD_CONNECTIONS {
        // Refused or reset connections are part of the flood too.
        if let Ok(mut stream) = TcpStream::connect((daemon.api.host.as_str(), daemon.api.port)) {
            let _ = stream.write_all(b"GET /api/agents HTTP/1.1\r\nhost: 127.0.0.1\r\n");
            flood.push(stream);
        }
    }
    let (status, _) = daemon.app("GET", "/app/status", None);
    assert_eq!(status, 200, "the app channel answers during the flood");
    let (status, tasks) = daemon.rest(&token, "GET", "/api/tasks", None);
    assert_eq!(
        status, 200,
        "an authenticated call answers during the flood: {tasks}"
    );
    drop(flood);
    daemon.stop();
}
