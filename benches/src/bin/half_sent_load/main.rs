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
//!
//! Files: this one holds the parameters, the limits and the run from start to end; `daemon`
//! the daemon started, asked and stopped; `probe` the probe client; `flood` the half-sent
//! connections and the descriptor count; `report` the figures and the table.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool: the table is its output

mod daemon;
mod flood;
mod probe;
mod report;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use baton_runtime::api::guard::HEADER_READ_TIMEOUT_MS;
use baton_runtime::mcp::http::{BaseUrl, UnixSocket};
use clap::Parser;
use tokio::task::JoinSet;
use tokio::time::Instant;

use daemon::{Daemon, make_repo};
use flood::{Fate, count_fds, flood_one};
use probe::{Surface, TcpFrom, Via, probe};
use report::{Listener, Report, load_average};

/// The daemon's descriptor limit by default: the common default soft limit, the one issue 20's
/// flood exhausted before the listeners had caps.
const DAEMON_FD_LIMIT: u64 = 1024;
/// Half-sent requests on the API listener by default (with [`PHONE_FLOOD`], 2,000: about twice
/// the daemon's descriptors).
const API_FLOOD: usize = 1_500;
/// Half-sent requests on the phone listener by default.
const PHONE_FLOOD: usize = 500;
/// Source addresses the phone flood comes from by default: `PHONE_PEER_CONNECTIONS_MAX` each
/// (16 × 10 = 160) is more than `PHONE_CONNECTIONS_MAX` (128), so the listener-wide cap is
/// reached too, not only one peer's (both in [`baton_runtime::api::guard`]).
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
