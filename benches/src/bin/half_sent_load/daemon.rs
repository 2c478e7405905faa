//! The daemon under load: a repository for its coordinator, `baton daemon` started under a
//! descriptor limit with its ready line read, requests on its app channel (registering a
//! coordinator, starting phone access), its limit read back from `/proc`, and SIGTERM.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use baton_runtime::mcp::http::{self, BaseUrl, UnixSocket};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt as _;

use super::{READY_WAIT_MS, STOP_WAIT_MS};

/// Git without the machine's configuration (the daemon's too).
fn isolated_git(dir: &Path) -> std::process::Command {
    let mut git = std::process::Command::new("git");
    git.arg("-C")
        .arg(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1");
    git
}

/// A repository on `main` with one commit, for the coordinator.
pub(super) fn make_repo(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("making {}", dir.display()))?;
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["config", "user.name", "Baton load"],
        &["config", "user.email", "load@localhost"],
        &["commit", "-q", "--allow-empty", "-m", "init"],
    ] {
        let out = isolated_git(dir)
            .args(args)
            .output()
            .context("running git")?;
        ensure!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(dir.to_owned())
}

/// The running daemon and how to reach it.
pub(super) struct Daemon {
    child: tokio::process::Child,
    pub(super) pid: u32,
    pub(super) api: BaseUrl,
    pub(super) socket: PathBuf,
    pub(super) log: PathBuf,
}

impl Daemon {
    pub(super) async fn start(baton: &Path, dir: &Path, fd_limit: u64) -> anyhow::Result<Daemon> {
        let state = dir.join("state");
        let log = dir.join("daemon.stderr");
        let stderr = std::fs::File::create(&log).context("making the daemon's log")?;
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg("ulimit -n \"$2\" && exec \"$0\" daemon --port 0 --state-dir \"$1\"")
            .arg(baton)
            .arg(&state)
            .arg(fd_limit.to_string())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("XDG_STATE_HOME")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .context("starting the daemon")?;
        let pid = child.id().context("the daemon exited at once")?;
        let stdout = child.stdout.take().context("the daemon's stdout")?;
        let mut line = String::new();
        let mut lines = tokio::io::BufReader::new(stdout);
        tokio::time::timeout(
            Duration::from_millis(READY_WAIT_MS),
            lines.read_line(&mut line),
        )
        .await
        .context("no ready line from the daemon in time")?
        .context("reading the daemon's ready line")?;
        let (api, socket) = parse_ready(&line).with_context(|| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            format!("the daemon's ready line {line:?}; its log:\n{log}")
        })?;
        Ok(Daemon {
            child,
            pid,
            api,
            socket,
            log,
        })
    }

    /// A request on the app channel, its status and JSON body.
    async fn app(&self, method: &str, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let body = body.to_string();
        let headers = [("content-type".to_owned(), "application/json".to_owned())];
        let request = http::encode("localhost", method, path, &headers, body.as_bytes());
        let response = http::send(&UnixSocket(self.socket.clone()), &self.api, &request)
            .await
            .with_context(|| format!("{method} {path} on the app channel"))?;
        let value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        Ok((response.status, value))
    }

    /// Registers a coordinator on `repo`: its REST token, from the MCP config it names.
    pub(super) async fn register(&self, repo: &Path) -> anyhow::Result<String> {
        let body = json!({ "projectRoot": repo, "agent": "sh", "args": ["-c", "sleep 600"] });
        let (status, info) = self.app("POST", "/app/coordinators", &body).await?;
        ensure!(status == 201, "registering a coordinator: {status} {info}");
        let config = info["mcpConfig"]
            .as_str()
            .context("no mcpConfig in the registration")?;
        let bytes = std::fs::read(config).with_context(|| format!("reading {config}"))?;
        let credentials: Value = serde_json::from_slice(&bytes)?;
        let token = credentials["mcpServers"]["baton"]["env"]["BATON_MCP_TOKEN"]
            .as_str()
            .context("no BATON_MCP_TOKEN in the MCP config")?;
        Ok(token.to_owned())
    }

    /// Starts phone access on loopback: its port and mobile token.
    pub(super) async fn phone(&self) -> anyhow::Result<(u16, String)> {
        let body = json!({ "loopback": true, "port": 0 });
        let (status, info) = self.app("POST", "/app/phone", &body).await?;
        ensure!(status == 200, "starting phone access: {status} {info}");
        let port = info["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .context("no port in the phone's answer")?;
        let token = info["url"]
            .as_str()
            .and_then(|url| url.rsplit_once("token="))
            .map(|(_, token)| token.to_owned())
            .context("no token in the phone's URL")?;
        Ok((port, token))
    }

    /// The soft descriptor limit the daemon runs under, from `/proc/PID/limits`.
    pub(super) fn fd_limit(&self) -> Option<u64> {
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", self.pid)).ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse().ok()
    }

    /// SIGTERM, and the exit (killed after [`STOP_WAIT_MS`]): how it ended.
    pub(super) async fn stop(mut self) -> String {
        let Some(pid) = i32::try_from(self.pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            return "no pid".to_owned();
        };
        if let Err(error) = rustix::process::kill_process(pid, rustix::process::Signal::TERM) {
            return format!("SIGTERM failed: {error}");
        }
        let limit = Duration::from_millis(STOP_WAIT_MS);
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => "exited 0 on SIGTERM".to_owned(),
            Ok(Ok(status)) => format!("exited {status} on SIGTERM"),
            Ok(Err(error)) => format!("wait failed: {error}"),
            Err(_) => {
                let _ = self.child.kill().await;
                format!("still running {STOP_WAIT_MS} ms after SIGTERM: killed")
            }
        }
    }
}

/// The API URL and the app socket from `baton daemon: API URL · app channel PATH · state DIR`.
fn parse_ready(line: &str) -> anyhow::Result<(BaseUrl, PathBuf)> {
    let rest = line
        .trim_end()
        .strip_prefix("baton daemon: API ")
        .context("not the daemon's ready line")?;
    let (url, rest) = rest
        .split_once(" · app channel ")
        .context("no app channel in the ready line")?;
    let (socket, _) = rest
        .split_once(" · state ")
        .context("no state directory in the ready line")?;
    Ok((BaseUrl::parse(url)?, PathBuf::from(socket)))
}
