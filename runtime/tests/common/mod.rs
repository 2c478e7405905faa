//! What the integration tests share: git without the machine's configuration, waits bounded by
//! [`EVENT_WAIT`], a daemon in a temporary state directory (started, and its ready line read, in
//! one place), requests to its REST API and app channel, and the crate's own source files (for
//! the tests that read them).

#![allow(clippy::unwrap_used, dead_code, unreachable_pub)] // test helpers: a step that fails is the test failing

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use baton_runtime::mcp::http::{self, BaseUrl, Connect, Tcp, UnixSocket};
use serde_json::{Value, json};

pub const BATON: &str = env!("CARGO_BIN_EXE_baton");
/// The longest a test waits for a daemon's ready line or a command to finish.
pub const EVENT_WAIT: std::time::Duration = std::time::Duration::from_secs(90);

/// Git (and the daemon, and its agents) without the machine's configuration.
pub fn isolated(command: &mut Command) -> &mut Command {
    command
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("XDG_STATE_HOME")
}

/// `work` on a thread, its answer within [`EVENT_WAIT`].
pub fn within<T: Send + 'static>(what: &str, work: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(work());
    });
    rx.recv_timeout(EVENT_WAIT)
        .unwrap_or_else(|_| panic!("{what} did not happen within {EVENT_WAIT:?}"))
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = isolated(&mut Command::new("git"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A repository at `dir` on `main` with `files` in one commit.
pub fn repo_with(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["config", "user.name", "Test"]);
    git(dir, &["config", "user.email", "test@example.com"]);
    for (path, content) in files {
        std::fs::write(dir.join(path), content).unwrap();
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "--allow-empty", "-m", "init"]);
    dir.to_owned()
}

/// A `baton daemon` a test started, serving; killed when dropped.
pub struct Daemon {
    child: Child,
    pub state: PathBuf,
    pub api: BaseUrl,
    /// Its stderr: a file of its own (a daemon started again on the same state has another).
    log: PathBuf,
}

impl Daemon {
    /// Starts `baton daemon` on `state` and waits for its ready line.
    pub fn start(state: &Path) -> Daemon {
        Daemon::start_with(state, &[])
    }

    /// Starts `baton daemon` on `state`, with `env` set for it (and so for its agents), and
    /// waits for its ready line.
    pub fn start_with(state: &Path, env: &[(&str, &std::ffi::OsStr)]) -> Daemon {
        use std::sync::atomic::{AtomicU32, Ordering};
        static STARTS: AtomicU32 = AtomicU32::new(0);
        let n = STARTS.fetch_add(1, Ordering::Relaxed);
        let log = state.with_extension(format!("stderr-{n}"));
        let mut command = daemon_command(state, &log);
        for (name, value) in env {
            command.env(name, value);
        }
        Daemon::ready(&mut command, state, &log)
    }

    /// Spawns `command` (a `baton daemon` on `state`, its stdout piped, its stderr in `log`)
    /// and waits for its ready line.
    pub fn ready(command: &mut Command, state: &Path, log: &Path) -> Daemon {
        let mut child = command.spawn().unwrap();
        let api = api_when_ready(&mut child, log);
        Daemon::adopt(child, state, api, log)
    }

    /// A daemon already started and ready, serving `api`, its stderr in `log`.
    pub fn adopt(child: Child, state: &Path, api: BaseUrl, log: &Path) -> Daemon {
        Daemon {
            child,
            state: state.to_owned(),
            api,
            log: log.to_owned(),
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs `baton <args> --state-dir <state>` to its end.
    pub fn cli(&self, args: &[&str]) -> Output {
        cli(args, &self.state)
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    pub fn app(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let socket = UnixSocket(self.state.join("app.sock"));
        call(&socket, &self.api, method, path, None, body)
    }

    pub fn rest(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        call(&Tcp, &self.api, method, path, Some(token), body)
    }

    /// Registers a coordinator on `repo` whose sub-tasks run `agent args…`: its id, its token
    /// and its MCP config.
    pub fn register(&self, repo: &Path, agent: &str, args: &[&str]) -> (String, String, PathBuf) {
        let (status, info) = self.app(
            "POST",
            "/app/coordinators",
            Some(json!({ "projectRoot": repo, "agent": agent, "args": args })),
        );
        assert_eq!(status, 201, "{info}");
        let config = PathBuf::from(info["mcpConfig"].as_str().unwrap());
        let token = credential(&config, "BATON_MCP_TOKEN");
        (info["id"].as_str().unwrap().to_owned(), token, config)
    }

    /// Makes the task `name` as the coordinator whose token is `token`: the task.
    pub fn create_task(&self, token: &str, name: &str) -> Value {
        let body = json!({ "name": name });
        let (status, task) = self.rest(token, "POST", "/api/tasks", Some(body));
        assert_eq!(status, 201, "{task}\n{}", self.log());
        task
    }

    /// SIGKILL, as a crash: it leaves what it had on disk as it was.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, and a clean exit: what it logged.
    pub fn stop(mut self) -> String {
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        let mut child = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap());
        let status = within("the daemon's exit", move || child.wait().unwrap());
        assert!(status.success(), "{status:?}\n{}", self.log());
        self.log()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `baton daemon` on `state` on a free port ([`isolated`]): its stdout piped for the ready line,
/// its stderr appended to `log`.
pub fn daemon_command(state: &Path, log: &Path) -> Command {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut command = Command::new(BATON);
    isolated(&mut command)
        .args(["daemon", "--port", "0", "--state-dir"])
        .arg(state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    command
}

/// The ready line a daemon prints first on stdout when it serves, up to the API's address
/// (`baton daemon: API <url> · app channel … · state …`).
const READY_LINE_PREFIX: &str = "baton daemon: API ";

/// The API's address from the ready line of the daemon `child` (its stdout piped), read within
/// [`EVENT_WAIT`]; `None` when it ended without printing one (it is reaped). A first line that
/// is no ready line kills the daemon and fails the test with its `log` (its stderr).
pub fn ready_line(child: &mut Child, log: &Path) -> Option<BaseUrl> {
    let stdout = child.stdout.take().expect("the daemon's stdout is piped");
    let line = within("the daemon's ready line", move || {
        let mut line = String::new();
        // A read error is an end too: the line stays empty.
        let _ = BufReader::new(stdout).read_line(&mut line);
        line
    });
    if line.is_empty() {
        let _ = child.wait();
        return None;
    }
    let url = line
        .strip_prefix(READY_LINE_PREFIX)
        .and_then(|rest| rest.split_whitespace().next());
    match url.map(BaseUrl::parse) {
        Some(Ok(api)) => Some(api),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("not a ready line: {line:?}\n{}", read_log(log));
        }
    }
}

/// [`ready_line`] of a daemon that must start: one that ends first fails the test with its
/// `log`.
pub fn api_when_ready(child: &mut Child, log: &Path) -> BaseUrl {
    ready_line(child, log)
        .unwrap_or_else(|| panic!("the daemon ended before its ready line:\n{}", read_log(log)))
}

/// A daemon's stderr log, or nothing if there is none.
pub fn read_log(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// The credential `variable` that the MCP config at `config` gives Baton's server
/// (`BATON_MCP_TOKEN` for a coordinator, `BATON_DONE_TOKEN` for a sub-task).
pub fn credential(config: &Path, variable: &str) -> String {
    let config: Value = serde_json::from_slice(&std::fs::read(config).unwrap()).unwrap();
    config["mcpServers"]["baton"]["env"][variable]
        .as_str()
        .unwrap_or_else(|| panic!("{variable} missing from {config}"))
        .to_owned()
}

pub fn cli(args: &[&str], state: &Path) -> Output {
    let command = isolated(&mut Command::new(BATON))
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    within("a baton command", move || {
        command.wait_with_output().unwrap()
    })
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn json(out: &Output) -> Value {
    assert!(out.status.success(), "{}", text(out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs `work` to its end on a runtime of its own (a test's async steps, from sync code).
pub fn block_on<F: std::future::Future>(work: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(work)
}

pub fn call<C: Connect>(
    connect: &C,
    base: &BaseUrl,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let Some(token) = token {
        headers.push(("authorization".to_owned(), format!("Bearer {token}")));
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = http::encode(&base.host, method, path, &headers, body.as_bytes());
    let response = block_on(http::send(connect, base, &request)).unwrap();
    let value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    (response.status, value)
}

/// Every `.rs` file under `dir`, at any depth, sorted.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(dir, &mut found);
    found.sort();
    found
}
