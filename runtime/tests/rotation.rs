//! Revocation: a leaked token is replaced without stopping anything. A real `baton daemon`, a
//! real `baton mcp` speaking MCP over stdio as a coordinator's agent runs it, the CLI's
//! `baton coordinator rotate` and `baton phone --rotate`. Loopback only.

#![allow(clippy::unwrap_used)] // test helpers: a step that fails is the test failing

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use baton_runtime::mcp::http::{BaseUrl, Tcp};
use common::{BATON, Daemon, isolated, json, repo_with, within};
use serde_json::{Value, json};

/// A `baton mcp` process as an agent starts it from the coordinator's MCP config.
struct Mcp {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next: u64,
}

impl Mcp {
    fn start(config: &Value) -> Mcp {
        let entry = &config["mcpServers"]["baton"];
        let args: Vec<String> = entry["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        let mut command = Command::new(BATON);
        isolated(&mut command)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (name, value) in entry["env"].as_object().unwrap() {
            command.env(name, value.as_str().unwrap());
        }
        let mut child = command.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut mcp = Mcp {
            child,
            stdin,
            stdout,
            next: 0,
        };
        let init = json!({ "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "test", "version": "1" } });
        mcp.ask("initialize", init);
        mcp.send(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
        mcp
    }

    fn send(&mut self, message: &Value) {
        writeln!(self.stdin, "{message}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn ask(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        loop {
            let mut line = String::new();
            assert!(
                self.stdout.read_line(&mut line).unwrap() > 0,
                "baton mcp ended"
            );
            let message: Value = serde_json::from_str(&line).unwrap();
            if message["id"] == id {
                return message;
            }
        }
    }

    /// The text of a tool's result, and whether it is an error.
    fn call(&mut self, tool: &str) -> (String, bool) {
        let answer = self.ask("tools/call", json!({ "name": tool, "arguments": {} }));
        let result = &answer["result"];
        (
            result["content"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            result["isError"] == true,
        )
    }
}

impl Drop for Mcp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_rotated_coordinator_token_opens_nothing_and_its_running_mcp_server_goes_on() {
    let temp = tempfile::tempdir().unwrap();
    let repo = repo_with(&temp.path().join("project"), &[("README.md", "# p\n")]);
    let daemon = Daemon::start(&temp.path().join("state"));
    let (id, old, _) = daemon.register(&repo, "sh", &[]);
    let (_, info) = daemon.app("GET", "/app/status", None);
    let config_path = info["coordinators"][0]["mcpConfig"]
        .as_str()
        .unwrap()
        .to_owned();
    let config: Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    let mut mcp = within("baton mcp starts", move || Mcp::start(&config));
    assert_eq!(mcp.call("list_tasks"), ("[]".to_owned(), false));

    let rotated = json(&daemon.cli(&["coordinator", "rotate", &id, "--json"]));
    assert_eq!(rotated["id"], id.as_str(), "{rotated}");
    let new = common::credential(std::path::Path::new(&config_path), "BATON_MCP_TOKEN");
    assert_ne!(new, old);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&config_path).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let (status, _) = daemon.rest(&old, "GET", "/api/tasks", None);
    assert_eq!(status, 401, "the old token opens nothing");
    let (status, _) = daemon.rest(&new, "GET", "/api/tasks", None);
    assert_eq!(status, 200);
    // The running MCP server was refused its old token, read the new one and went on.
    let answer = within("the MCP call after the rotation", move || {
        let answer = mcp.call("list_tasks");
        drop(mcp);
        answer
    });
    assert_eq!(answer, ("[]".to_owned(), false));

    let unknown = daemon.cli(&[
        "coordinator",
        "rotate",
        "6d0a74de-bc4f-48af-9a7d-a880e75d75d1",
    ]);
    assert!(!unknown.status.success());
    assert!(
        common::text(&unknown).contains("Coordinator not found"),
        "{}",
        common::text(&unknown)
    );
    daemon.stop();
}

#[test]
fn a_rotated_phone_link_opens_nothing_and_the_new_one_does() {
    let temp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&temp.path().join("state"));
    let off = daemon.cli(&["phone", "--rotate"]);
    assert!(!off.status.success());
    assert!(
        common::text(&off).contains("phone access is off"),
        "{}",
        common::text(&off)
    );
    let phone = json(&daemon.cli(&["phone", "--loopback", "--port", "0", "--json"]));
    let token_of = |url: &str| url.rsplit('=').next().unwrap().to_owned();
    let old = token_of(phone["url"].as_str().unwrap());
    let rotated = json(&daemon.cli(&["phone", "--rotate", "--json"]));
    let new = token_of(rotated["url"].as_str().unwrap());
    assert_ne!(old, new);
    assert_eq!(rotated["port"], phone["port"], "the listener stays");
    let port = phone["port"].as_u64().unwrap();
    let base = BaseUrl::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    let agents = |token: &str| common::call(&Tcp, &base, "GET", "/api/agents", Some(token), None).0;
    assert_eq!(agents(&old), 401, "the old link opens nothing");
    assert_eq!(agents(&new), 200);
    let kept = std::fs::read(temp.path().join("state/phone.json")).unwrap();
    let kept: Value = serde_json::from_slice(&kept).unwrap();
    assert_eq!(kept["token"], new.as_str(), "a restart keeps the new link");
    daemon.stop();
}
