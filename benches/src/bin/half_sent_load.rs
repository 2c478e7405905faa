//! Issue 20's load check: thousands of half-sent requests against a real `baton daemon` started
//! under `ulimit -n 1024`, while a probe client measures that the REST API, the phone listener
//! and the app channel still answer. A load generator, not a test: it is not part of
//! `cargo test` or `cargo bench`, and it prints figures instead of asserting them.
//!
//! Run it from the workspace root (Linux only: it reads `/proc`; needs `sh` and `git`):
//!
//! ```text
//! cargo build --release -p baton-runtime --bin baton
//! cargo run --release -p baton-benches --bin half_sent_load
//! cargo run --release -p baton-benches --bin half_sent_load -- --reopen   # sustained churn
//! cargo run --release -p baton-benches --bin half_sent_load -- --help
//! ```
//!
//! The `baton` binary is looked for beside this one (the same target directory and profile),
//! or named with `--baton PATH`. Figures and how to read them: `benches/README.md`.
//!
//! Layout (one run, top to bottom):
//! - setup: a temporary directory with a git repository; the daemon under `sh -c 'ulimit -n
//!   LIMIT && exec baton daemon --port 0 --state-dir DIR'`, its ready line read for the API
//!   URL and the app socket; a coordinator registered over the app channel (its REST token
//!   read from the MCP config it names); phone access started on loopback (`POST /app/phone`
//!   `{"loopback": true, "port": 0}`: the phone listener's caps, bound on 127.0.0.1 only).
//! - baseline: the probes for [`BASELINE_MS`] with no flood.
//! - flood: `--api` + `--phone` connections, each sending a request line and a `Host` header
//!   without the blank line that ends a head, then holding the socket until the daemon closes
//!   it or the hold ends (the header-read timeout plus [`HOLD_PAST_TIMEOUT_MS`]). The phone's
//!   share comes from `--phone-sources` addresses `127.0.1.1…`, so both the per-peer and the
//!   listener-wide cap are reached. With `--reopen` each flood connection is opened again
//!   whenever the daemon closes it.
//! - probes, all through the flood: `GET /api/tasks` with the coordinator's token on the API
//!   listener, `GET /app/status` on the app socket, and the phone page (`GET /`) and the
//!   phone's `GET /api/agents` (mobile token) from 127.0.0.2, a peer of its own. Each probe is
//!   a new connection (`Connection: close`), so it needs the listener to take it in.
//! - the daemon's open descriptors, counted in `/proc/PID/fd` every [`FD_SAMPLE_MS`].
//! - SIGTERM to the daemon, then the table on stdout (progress goes to stderr).
//!
//! Only loopback addresses are used, and everything the run made is removed at its end.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool: the table is its output

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use baton_runtime::api::guard::{
    API_CONNECTIONS_MAX, APP_CONNECTIONS_MAX, HEADER_READ_TIMEOUT_MS, PHONE_CONNECTIONS_MAX,
    PHONE_PEER_CONNECTIONS_MAX,
};
use baton_runtime::mcp::http::{self, BaseUrl, Connect, UnixSocket};
use clap::Parser;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The daemon's descriptor limit by default: the common default soft limit, the one issue 20's
/// flood exhausted before the listeners had caps.
const DAEMON_FD_LIMIT: u64 = 1024;
/// Half-sent requests on the API listener by default (with [`PHONE_FLOOD`], 2,000: about twice
/// the daemon's descriptors).
const API_FLOOD: usize = 1_500;
/// Half-sent requests on the phone listener by default.
const PHONE_FLOOD: usize = 500;
/// Source addresses the phone flood comes from by default: [`PHONE_PEER_CONNECTIONS_MAX`] each
/// (16 × 10 = 160) is more than [`PHONE_CONNECTIONS_MAX`] (128), so the listener-wide cap is
/// reached too, not only one peer's.
const PHONE_FLOOD_SOURCES: u8 = 10;
/// The phone flood's addresses are `127.0.1.1` on.
const PHONE_FLOOD_NET: [u8; 3] = [127, 0, 1];
/// Where every flood connection to the API listener, and the REST probe, come from.
const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// Where the phone probes come from: a peer of its own, so the phone flood's per-peer caps do
/// not apply to it (the listener-wide one does).
const PROBE_PHONE_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// How long the flood is held past the header-read timeout: every connection the daemon took
/// in should be closed by then.
const HOLD_PAST_TIMEOUT_MS: u64 = 5_000;
/// Probing before the flood, for the quiet figures.
const BASELINE_MS: u64 = 2_000;
/// Pause between one probe's answer and its next request (each surface probes on its own).
const PROBE_INTERVAL_MS: u64 = 100;
/// A probe answer slower than this counts as no answer.
const PROBE_TIMEOUT_MS: u64 = 5_000;
/// How often the daemon's open descriptors are counted.
const FD_SAMPLE_MS: u64 = 50;
/// Longest wait for the daemon's ready line.
const READY_WAIT_MS: u64 = 30_000;
/// Longest wait for the daemon to exit after SIGTERM (then it is killed).
const STOP_WAIT_MS: u64 = 30_000;
/// A flood connection closed within this much of the header-read timeout (after its connect)
/// was closed by that timeout; earlier, it made room for a newer one (eviction).
const TIMEOUT_SLACK_MS: u64 = 500;
/// With `--reopen`: pause before a closed flood connection is opened again, so a connection
/// refused at once does not spin the generator on cores the daemon needs.
const REOPEN_PAUSE_MS: u64 = 10;
/// Descriptors the generator needs besides its flood (probes, the runtime, the child's pipes).
const GENERATOR_FD_HEADROOM: u64 = 256;
/// Bytes a flood connection reads at a time (the daemon should send nothing but a close).
const FLOOD_READ_BYTES: usize = 512;

/// Half-sent requests against a daemon under a small descriptor limit, while a probe client
/// measures every surface (see the crate documentation and benches/README.md).
#[derive(Parser, Debug)]
#[command(name = "half_sent_load")]
struct Args {
    /// The `baton` binary (default: beside this one).
    #[arg(long)]
    baton: Option<PathBuf>,
    /// Half-sent requests on the API listener.
    #[arg(long, default_value_t = API_FLOOD)]
    api: usize,
    /// Half-sent requests on the phone listener.
    #[arg(long, default_value_t = PHONE_FLOOD)]
    phone: usize,
    /// Source addresses (127.0.1.1 on) the phone flood is spread over.
    #[arg(long, default_value_t = PHONE_FLOOD_SOURCES, value_parser = clap::value_parser!(u8).range(1..))]
    phone_sources: u8,
    /// The daemon's `ulimit -n`.
    #[arg(long, default_value_t = DAEMON_FD_LIMIT)]
    fd_limit: u64,
    /// How long the flood is held, in ms (default: the header-read timeout plus 5 s).
    #[arg(long)]
    hold_ms: Option<u64>,
    /// Open every flood connection again whenever the daemon closes it, for the whole hold.
    #[arg(long)]
    reopen: bool,
    /// Keep the temporary directory (the daemon's log and state) and print its path.
    #[arg(long)]
    keep: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let flood = u64::try_from(args.api + args.phone)?;
    let own_limit = raise_fd_limit(flood + GENERATOR_FD_HEADROOM)?;
    let baton = match &args.baton {
        Some(path) => path.clone(),
        None => beside_this_binary("baton")?,
    };
    ensure!(
        baton.is_file(),
        "no baton binary at {}: run `cargo build --release -p baton-runtime --bin baton` (or pass --baton PATH)",
        baton.display()
    );
    let dir = tempfile::Builder::new()
        .prefix("baton-half-sent-")
        .tempdir()
        .context("making a temporary directory")?;
    let repo = make_repo(&dir.path().join("repo"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(run(&args, &baton, dir.path(), &repo));
    if args.keep {
        let kept = dir.keep();
        eprintln!("# kept {}", kept.display());
    }
    let report = report?;
    report.print(&args, own_limit);
    Ok(())
}

/// Raises this process's soft descriptor limit to its hard one (the flood is the client's
/// descriptors too: the generator must not be what runs out), and checks it covers `need`.
fn raise_fd_limit(need: u64) -> anyhow::Result<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    )
    .context("raising this process's descriptor limit")?;
    let now = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    ensure!(
        now >= need,
        "the flood needs {need} descriptors here, but the hard limit is {now}: raise it (`ulimit -Hn`) or flood less"
    );
    Ok(now)
}

fn beside_this_binary(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("finding this executable")?;
    let dir = me.parent().context("this executable has no directory")?;
    Ok(dir.join(name))
}

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
fn make_repo(dir: &Path) -> anyhow::Result<PathBuf> {
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
struct Daemon {
    child: tokio::process::Child,
    pid: u32,
    api: BaseUrl,
    socket: PathBuf,
    log: PathBuf,
}

impl Daemon {
    async fn start(baton: &Path, dir: &Path, fd_limit: u64) -> anyhow::Result<Daemon> {
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
    async fn register(&self, repo: &Path) -> anyhow::Result<String> {
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
    async fn phone(&self) -> anyhow::Result<(u16, String)> {
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
    fn fd_limit(&self) -> Option<u64> {
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", self.pid)).ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse().ok()
    }

    /// SIGTERM, and the exit (killed after [`STOP_WAIT_MS`]): how it ended.
    async fn stop(mut self) -> String {
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

/// A TCP connection from `source` (any loopback address: all of 127/8 is this machine's).
async fn connect_from(source: Ipv4Addr, to: SocketAddr) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    socket.connect(to).await
}

/// The API client's connections, from a chosen loopback address.
struct TcpFrom(Ipv4Addr);

impl Connect for TcpFrom {
    type Stream = TcpStream;

    fn connect<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send + 'a>> {
        Box::pin(async move {
            let to: Ipv4Addr = host
                .parse()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "not an IPv4 address"))?;
            connect_from(self.0, SocketAddr::from((to, port))).await
        })
    }
}

/// One surface the probe client asks, and the request it sends.
struct Surface {
    name: &'static str,
    via: Via,
    base: BaseUrl,
    request: Vec<u8>,
}

enum Via {
    Tcp(TcpFrom),
    Unix(UnixSocket),
}

impl Surface {
    /// `GET path` on `base` through `via`, with `Host: host` and a bearer `token`.
    fn get(name: &'static str, via: Via, base: BaseUrl, path: &str, token: Option<&str>) -> Self {
        let host = match via {
            Via::Tcp(_) => base.authority(),
            Via::Unix(_) => "localhost".to_owned(),
        };
        let headers: Vec<(String, String)> = token
            .map(|t| ("authorization".to_owned(), format!("Bearer {t}")))
            .into_iter()
            .collect();
        let request = http::encode(&host, "GET", path, &headers, b"");
        Surface {
            name,
            via,
            base,
            request,
        }
    }

    /// One request on a new connection: `Ok` for a 200.
    async fn ask(&self) -> Result<(), String> {
        let answer = match &self.via {
            Via::Tcp(tcp) => http::send(tcp, &self.base, &self.request).await,
            Via::Unix(unix) => http::send(unix, &self.base, &self.request).await,
        };
        match answer {
            Ok(response) if response.status == 200 => Ok(()),
            Ok(response) => Err(format!("status {}", response.status)),
            Err(error) => Err(error.to_string()),
        }
    }
}

/// One probe request: when it was sent (from the flood's start; before it: negative), how long
/// it took, and why it failed.
struct Sample {
    at_ms: i64,
    latency: Duration,
    failure: Option<String>,
}

/// Probes `surface` until `until`, one request at a time, [`PROBE_INTERVAL_MS`] apart.
async fn probe(surface: Arc<Surface>, origin: Instant, until: Instant) -> Vec<Sample> {
    let mut samples = Vec::new();
    while Instant::now() < until {
        let sent = Instant::now();
        let limit = Duration::from_millis(PROBE_TIMEOUT_MS);
        let failure = match tokio::time::timeout(limit, surface.ask()).await {
            Ok(Ok(())) => None,
            Ok(Err(why)) => Some(why),
            Err(_) => Some(format!("no answer within {PROBE_TIMEOUT_MS} ms")),
        };
        samples.push(Sample {
            at_ms: signed_ms(origin, sent),
            latency: sent.elapsed(),
            failure,
        });
        tokio::time::sleep(Duration::from_millis(PROBE_INTERVAL_MS)).await;
    }
    samples
}

/// `at - origin` in ms, negative when `at` is earlier.
fn signed_ms(origin: Instant, at: Instant) -> i64 {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    match at.checked_duration_since(origin) {
        Some(after) => ms(after),
        None => -ms(origin - at),
    }
}

/// What became of one flood connection.
#[derive(Clone, Copy, Debug)]
enum Fate {
    /// The connect did not complete before the hold ended, or failed.
    NotConnected,
    /// The daemon closed it (end of stream or a reset) `after` its connect; `answered` if it sent
    /// bytes first.
    Closed { after: Duration, answered: bool },
    /// Still open when the hold ended.
    Open,
}

/// One half-sent request from `source` to `to`, held until the daemon closes it or `until`.
async fn half_sent(source: Ipv4Addr, to: SocketAddr, request: &[u8], until: Instant) -> Fate {
    let Ok(Ok(mut stream)) = tokio::time::timeout_at(until, connect_from(source, to)).await else {
        return Fate::NotConnected;
    };
    let opened = Instant::now();
    if stream.write_all(request).await.is_err() {
        return Fate::Closed {
            after: opened.elapsed(),
            answered: false,
        };
    }
    let mut buf = [0u8; FLOOD_READ_BYTES];
    let mut answered = false;
    loop {
        match tokio::time::timeout_at(until, stream.read(&mut buf)).await {
            Err(_) => return Fate::Open,
            Ok(Ok(0) | Err(_)) => {
                return Fate::Closed {
                    after: opened.elapsed(),
                    answered,
                };
            }
            Ok(Ok(_)) => answered = true,
        }
    }
}

/// A flood connection's life: one [`half_sent`], or with `reopen` one after another until
/// `until`.
async fn flood_one(
    source: Ipv4Addr,
    to: SocketAddr,
    request: Arc<[u8]>,
    until: Instant,
    reopen: bool,
) -> Vec<Fate> {
    let mut fates = vec![half_sent(source, to, &request, until).await];
    while reopen && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(REOPEN_PAUSE_MS)).await;
        fates.push(half_sent(source, to, &request, until).await);
    }
    fates
}

/// The daemon's open descriptors every [`FD_SAMPLE_MS`] until `until`: (ms from the flood's
/// start, count).
async fn count_fds(pid: u32, origin: Instant, until: Instant) -> Vec<(i64, usize)> {
    let dir = format!("/proc/{pid}/fd");
    let mut counts = Vec::new();
    while Instant::now() < until {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            counts.push((signed_ms(origin, Instant::now()), entries.count()));
        }
        tokio::time::sleep(Duration::from_millis(FD_SAMPLE_MS)).await;
    }
    counts
}

/// Which listener a flood connection went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Listener {
    Api,
    Phone,
}

/// When a probe was sent: before the flood, while it is held, or once the header-read timeout
/// has closed what the daemon kept of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Quiet,
    Held,
    PastTimeout,
}

impl Phase {
    const ALL: [Phase; 3] = [Phase::Quiet, Phase::Held, Phase::PastTimeout];

    fn of(at_ms: i64, timeout_ms: i64) -> Phase {
        if at_ms < 0 {
            Phase::Quiet
        } else if at_ms < timeout_ms {
            Phase::Held
        } else {
            Phase::PastTimeout
        }
    }

    fn name(self) -> &'static str {
        match self {
            Phase::Quiet => "quiet (before)",
            Phase::Held => "flood, held",
            Phase::PastTimeout => "flood, past timeout",
        }
    }
}

/// Everything one run measured.
struct Report {
    fd_limit: Option<u64>,
    hold: Duration,
    surfaces: Vec<(&'static str, Vec<Sample>)>,
    fates: BTreeMap<Listener, Vec<Fate>>,
    fds: Vec<(i64, usize)>,
    log_fd_errors: usize,
    exit: String,
    /// `/proc/loadavg`'s 1-minute figure at the start and at the end: the figures are only as
    /// quiet as the machine.
    load: (String, String),
}

async fn run(args: &Args, baton: &Path, dir: &Path, repo: &Path) -> anyhow::Result<Report> {
    eprintln!(
        "# starting {} under ulimit -n {}",
        baton.display(),
        args.fd_limit
    );
    let load_start = load_average();
    let daemon = Daemon::start(baton, dir, args.fd_limit).await?;
    let fd_limit = daemon.fd_limit();
    let token = daemon.register(repo).await?;
    let (phone_port, mobile) = daemon.phone().await?;
    let phone = BaseUrl {
        host: LOOPBACK.to_string(),
        port: phone_port,
    };
    eprintln!(
        "# daemon {} (fd limit {fd_limit:?}): API {}, phone {}, app {}",
        daemon.pid,
        daemon.api.authority(),
        phone.authority(),
        daemon.socket.display()
    );
    let surfaces: Vec<Arc<Surface>> = vec![
        Surface::get(
            "REST  GET /api/tasks (token)",
            Via::Tcp(TcpFrom(LOOPBACK)),
            daemon.api.clone(),
            "/api/tasks",
            Some(&token),
        ),
        Surface::get(
            "app   GET /app/status",
            Via::Unix(UnixSocket(daemon.socket.clone())),
            daemon.api.clone(),
            "/app/status",
            None,
        ),
        Surface::get(
            "phone GET / (page)",
            Via::Tcp(TcpFrom(PROBE_PHONE_SOURCE)),
            phone.clone(),
            "/",
            None,
        ),
        Surface::get(
            "phone GET /api/agents (mobile)",
            Via::Tcp(TcpFrom(PROBE_PHONE_SOURCE)),
            phone.clone(),
            "/api/agents",
            Some(&mobile),
        ),
    ]
    .into_iter()
    .map(Arc::new)
    .collect();
    for surface in &surfaces {
        surface
            .ask()
            .await
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("{} before the flood", surface.name))?;
    }

    let hold = Duration::from_millis(
        args.hold_ms
            .unwrap_or(HEADER_READ_TIMEOUT_MS + HOLD_PAST_TIMEOUT_MS),
    );
    let baseline_start = Instant::now();
    let origin = baseline_start + Duration::from_millis(BASELINE_MS);
    let until = origin + hold;
    let fds = tokio::spawn(count_fds(daemon.pid, origin, until));
    let mut probes = JoinSet::new();
    for (index, surface) in surfaces.iter().enumerate() {
        let surface = surface.clone();
        probes.spawn(async move { (index, probe(surface, origin, until).await) });
    }
    tokio::time::sleep_until(origin).await;
    eprintln!(
        "# flood: {} on the API, {} on the phone from {} addresses, held {} ms{}",
        args.api,
        args.phone,
        args.phone_sources,
        hold.as_millis(),
        if args.reopen { ", reopened" } else { "" }
    );
    let mut flood = JoinSet::new();
    let targets = [
        (Listener::Api, args.api, daemon.api.port),
        (Listener::Phone, args.phone, phone.port),
    ];
    for (listener, count, port) in targets {
        let request: Arc<[u8]> = format!("GET /api/tasks HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n")
            .into_bytes()
            .into();
        let to = SocketAddr::from((LOOPBACK, port));
        for index in 0..count {
            let source = match listener {
                Listener::Api => LOOPBACK,
                Listener::Phone => {
                    let [a, b, c] = PHONE_FLOOD_NET;
                    let host = u8::try_from(index % usize::from(args.phone_sources))? + 1;
                    Ipv4Addr::new(a, b, c, host)
                }
            };
            let request = request.clone();
            let reopen = args.reopen;
            flood.spawn(async move {
                (
                    listener,
                    flood_one(source, to, request, until, reopen).await,
                )
            });
        }
    }
    let mut fates: BTreeMap<Listener, Vec<Fate>> = BTreeMap::new();
    while let Some(done) = flood.join_next().await {
        let (listener, lives) = done.context("a flood connection's task")?;
        fates.entry(listener).or_default().extend(lives);
    }
    let mut by_index = Vec::new();
    while let Some(done) = probes.join_next().await {
        by_index.push(done.context("a probe's task")?);
    }
    by_index.sort_by_key(|(index, _)| *index);
    let surfaces = by_index
        .into_iter()
        .map(|(index, samples)| (surfaces[index].name, samples))
        .collect();
    let fds = fds.await.context("the descriptor counter's task")?;
    let log_path = daemon.log.clone();
    let exit = daemon.stop().await;
    let log = std::fs::read_to_string(log_path).unwrap_or_default();
    let log_fd_errors = log
        .lines()
        .filter(|line| line.contains("Too many open files") || line.contains("os error 24"))
        .count();
    if fates.values().all(Vec::is_empty) {
        bail!("no flood connection was made");
    }
    Ok(Report {
        fd_limit,
        hold,
        surfaces,
        fates,
        fds,
        log_fd_errors,
        exit,
        load: (load_start, load_average()),
    })
}

/// The machine's 1-minute load average.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The `q`-quantile (nearest rank) of sorted `values`.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )] // a rank within a short list
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1_000.0)
}

impl Report {
    fn print(&self, args: &Args, own_limit: u64) {
        let timeout = HEADER_READ_TIMEOUT_MS;
        println!(
            "half-sent load: {} half-sent requests ({} API from 127.0.0.1, {} phone from {} addresses 127.0.1.x){}",
            args.api + args.phone,
            args.api,
            args.phone,
            args.phone_sources,
            if args.reopen {
                ", each reopened whenever closed"
            } else {
                ""
            },
        );
        println!(
            "daemon: ulimit -n {} (read back: {}); caps API {API_CONNECTIONS_MAX}, phone {PHONE_CONNECTIONS_MAX} ({PHONE_PEER_CONNECTIONS_MAX} per peer), app {APP_CONNECTIONS_MAX}; header-read timeout {timeout} ms; flood held {} ms; generator fd limit {own_limit}",
            args.fd_limit,
            self.fd_limit
                .map_or_else(|| "unknown".to_owned(), |l| l.to_string()),
            self.hold.as_millis(),
        );
        println!(
            "machine: {} cores, 1-minute load average {} at the start, {} at the end",
            std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            self.load.0,
            self.load.1,
        );
        println!();
        println!(
            "{:<32} {:<20} {:>13} {:>7} {:>7} {:>7} {:>9}  failures",
            "probe", "phase", "answered", "p50 ms", "p99 ms", "max ms", "max at t"
        );
        let timeout_ms = i64::try_from(timeout).unwrap_or(i64::MAX);
        for (name, samples) in &self.surfaces {
            for phase in Phase::ALL {
                let chosen: Vec<&Sample> = samples
                    .iter()
                    .filter(|s| Phase::of(s.at_ms, timeout_ms) == phase)
                    .collect();
                let mut latencies: Vec<Duration> = chosen
                    .iter()
                    .filter(|s| s.failure.is_none())
                    .map(|s| s.latency)
                    .collect();
                latencies.sort_unstable();
                let mut failures: BTreeMap<&str, usize> = BTreeMap::new();
                for failure in chosen.iter().filter_map(|s| s.failure.as_deref()) {
                    *failures.entry(failure).or_default() += 1;
                }
                let failures: Vec<String> = failures
                    .iter()
                    .map(|(why, n)| format!("{n}× {why}"))
                    .collect();
                let rate = if chosen.is_empty() {
                    0.0
                } else {
                    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
                    let rate = latencies.len() as f64 * 100.0 / chosen.len() as f64;
                    rate
                };
                let slowest = chosen
                    .iter()
                    .filter(|s| s.failure.is_none())
                    .max_by_key(|s| s.latency)
                    .map_or_else(|| "-".to_owned(), |s| format!("{} ms", s.at_ms));
                println!(
                    "{:<32} {:<20} {:>13} {:>7} {:>7} {:>7} {:>9}  {}",
                    name,
                    phase.name(),
                    format!("{}/{} {rate:.0}%", latencies.len(), chosen.len()),
                    ms(quantile(&latencies, 0.50)),
                    ms(quantile(&latencies, 0.99)),
                    ms(latencies.last().copied().unwrap_or_default()),
                    slowest,
                    if failures.is_empty() {
                        "-".to_owned()
                    } else {
                        failures.join("; ")
                    }
                );
            }
        }
        println!();
        println!(
            "{:<8} {:>9} {:>10} {:>13} {:>13} {:>12} {:>11}  lifetime of those closed at the timeout (min/p50/max ms)",
            "flood",
            "attempts",
            "connected",
            "closed early",
            "closed at to",
            "closed later",
            "open at end",
        );
        let slack = Duration::from_millis(TIMEOUT_SLACK_MS);
        let timeout = Duration::from_millis(timeout);
        for (listener, fates) in &self.fates {
            let connected = fates
                .iter()
                .filter(|f| !matches!(f, Fate::NotConnected))
                .count();
            let closed: Vec<Duration> = fates
                .iter()
                .filter_map(|f| match f {
                    Fate::Closed { after, .. } => Some(*after),
                    _ => None,
                })
                .collect();
            let early = closed.iter().filter(|d| **d + slack < timeout).count();
            let mut at_timeout: Vec<Duration> = closed
                .iter()
                .copied()
                .filter(|d| *d + slack >= timeout && *d <= timeout + slack)
                .collect();
            at_timeout.sort_unstable();
            let later = closed.iter().filter(|d| **d > timeout + slack).count();
            let open = fates.iter().filter(|f| matches!(f, Fate::Open)).count();
            let answered = fates
                .iter()
                .filter(|f| matches!(f, Fate::Closed { answered: true, .. }))
                .count();
            let lifetime = if at_timeout.is_empty() {
                "-".to_owned()
            } else {
                format!(
                    "{}/{}/{}",
                    ms(at_timeout[0]),
                    ms(quantile(&at_timeout, 0.5)),
                    ms(at_timeout[at_timeout.len() - 1])
                )
            };
            let answered = if answered == 0 {
                String::new()
            } else {
                format!(" ({answered} got bytes before the close)")
            };
            println!(
                "{:<8} {:>9} {:>10} {:>13} {:>13} {:>12} {:>11}  {lifetime}{answered}",
                format!("{listener:?}"),
                fates.len(),
                connected,
                early,
                at_timeout.len(),
                later,
                open,
            );
        }
        println!();
        let before = self
            .fds
            .iter()
            .filter(|(at, _)| *at < 0)
            .map(|(_, n)| *n)
            .max();
        let peak = self.fds.iter().max_by_key(|(_, n)| *n);
        let last = self.fds.last();
        let show = |n: Option<usize>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
        println!(
            "daemon open fds: quiet {}, peak {}{}, at the hold's end {} (limit {}); \"Too many open files\" lines in its log: {}; {}",
            show(before),
            show(peak.map(|(_, n)| *n)),
            peak.map_or_else(String::new, |(at, _)| format!(" at t={at} ms")),
            show(last.map(|(_, n)| *n)),
            args.fd_limit,
            self.log_fd_errors,
            self.exit,
        );
    }
}
