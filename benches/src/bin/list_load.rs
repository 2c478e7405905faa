//! Issue 23's load check: what `GET /api/tasks` (the REST list, 50 tasks) costs the server,
//! beside the cheapest answer the same server gives (an unauthenticated 401). A load client,
//! not a test: it prints figures and asserts none.
//!
//! ```text
//! cargo build --release -p baton-runtime --features fakes --example api_on_fakes
//! cargo run --release -p baton-benches --bin list_load
//! cargo run --release -p baton-benches --bin list_load -- --requests 40000 --connections 4
//! ```
//!
//! It starts the API on the in-memory ports (`api_on_fakes`, looked for in the same target
//! directory and profile as this binary, or named with `--server PATH`) with `--tasks` tasks
//! per coordinator, on loopback only. Then, for each kind of request in turn (the 401 first),
//! `--connections` keep-alive connections send `--requests` requests between them, one at a time
//! each. The server's CPU time (user + system, from `/proc/PID/stat`: Linux only) over a phase,
//! divided by its requests, is the cost per request; each request's latency is timed from its
//! first byte sent to its answer's last byte read. The bar (issue 23): the list's cost at most
//! 1.5 times the 401's, p99 under 2 ms at 4 connections.

#![allow(clippy::print_stdout)] // a command-line tool: the figures are its output

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Largest answer head read, in bytes: the API's heads are a few hundred.
const HEAD_BYTES_MAX: usize = 16 * 1024;
/// Largest answer body read, in bytes: a list of 64 tasks is under 32 KiB.
const BODY_BYTES_MAX: usize = 1024 * 1024;
/// Requests each connection sends before a phase is measured (connections set up, caches warm).
const WARM_UP_REQUESTS: usize = 200;
/// Clock ticks per second in `/proc/PID/stat` (`USER_HZ`: 100 on every Linux ABI).
const USER_HZ: u64 = 100;
/// How long the server may take to print its ready line.
const READY_TIMEOUT_MS: u64 = 30_000;

#[derive(Parser, Debug)]
#[command(about = "GET /api/tasks's server cost beside an unauthenticated 401's (issue 23)")]
struct Args {
    /// The `api_on_fakes` example (default: beside this binary, under `examples/`).
    #[arg(long)]
    server: Option<PathBuf>,
    /// Tasks per coordinator (the list returns the first coordinator's).
    #[arg(long, default_value_t = 50)]
    tasks: usize,
    /// Keep-alive connections, each with one request in flight.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Requests per phase, over all connections.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
}

/// The server under test; killed when dropped.
struct Server {
    child: Child,
    port: u16,
    token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(path: &PathBuf, tasks: usize) -> anyhow::Result<Server> {
        let mut child = Command::new(path)
            .arg(tasks.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", path.display()))?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = send.send(line);
        });
        let line = receive
            .recv_timeout(Duration::from_millis(READY_TIMEOUT_MS))
            .context("the server printed no ready line")?;
        let mut words = line.split_whitespace();
        let (Some(url), Some(token)) = (words.next(), words.next()) else {
            bail!("unexpected ready line {line:?}");
        };
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("no port in {url:?}"))?;
        Ok(Server {
            child,
            port,
            token: token.to_owned(),
        })
    }

    /// The server's CPU time so far (user + system), from `/proc/PID/stat`.
    fn cpu(&self) -> anyhow::Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // Fields after the command's closing parenthesis; utime and stime are the 14th and
        // 15th of the line, the 12th and 13th after it.
        let rest = stat.rsplit(')').next().context("a stat line")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
        Ok(Duration::from_nanos(ticks * 1_000_000_000 / USER_HZ))
    }
}

/// One phase's figures.
struct Phase {
    requests: usize,
    wall: Duration,
    cpu: Duration,
    latencies: Vec<Duration>,
}

impl Phase {
    fn cpu_per_request_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.requests as f64
    }

    fn percentile(&self, p: f64) -> Duration {
        let at = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[at]
    }
}

/// Sends `request` and reads one answer (head and `Content-Length` body); its status.
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    buffer: &mut Vec<u8>,
) -> anyhow::Result<u16> {
    stream.write_all(request).await?;
    buffer.clear();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buffer.len() > HEAD_BYTES_MAX {
            bail!("an answer head over {HEAD_BYTES_MAX} bytes");
        }
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            bail!("the server closed the connection");
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = std::str::from_utf8(&buffer[..head_end])?;
    let status: u16 = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .context("a status")?;
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .context("an answer without Content-Length")?;
    if length > BODY_BYTES_MAX {
        bail!("an answer body of {length} bytes");
    }
    while buffer.len() < head_end + length {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            bail!("the server closed the connection mid-body");
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    Ok(status)
}

/// `connections` connections send `requests` requests between them; every answer must have
/// status `expected`.
async fn phase(
    server: &Server,
    request: &[u8],
    expected: u16,
    connections: usize,
    requests: usize,
) -> anyhow::Result<Phase> {
    let mut streams = Vec::new();
    for _ in 0..connections {
        let mut stream = TcpStream::connect(("127.0.0.1", server.port)).await?;
        stream.set_nodelay(true)?;
        let mut buffer = Vec::new();
        for _ in 0..WARM_UP_REQUESTS {
            let status = exchange(&mut stream, request, &mut buffer).await?;
            if status != expected {
                bail!("answered {status}, expected {expected}");
            }
        }
        streams.push(stream);
    }
    let each = requests.div_ceil(connections);
    let cpu_before = server.cpu()?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mut stream in streams {
        let request = request.to_vec();
        tasks.spawn(async move {
            let mut buffer = Vec::new();
            let mut latencies = Vec::with_capacity(each);
            for _ in 0..each {
                let sent = Instant::now();
                let status = exchange(&mut stream, &request, &mut buffer).await?;
                latencies.push(sent.elapsed());
                if status != expected {
                    bail!("answered {status}, expected {expected}");
                }
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = Vec::with_capacity(each * connections);
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done??);
    }
    let wall = started.elapsed();
    let cpu = server.cpu()?.saturating_sub(cpu_before);
    latencies.sort_unstable();
    Ok(Phase {
        requests: latencies.len(),
        wall,
        cpu,
        latencies,
    })
}

fn report(name: &str, phase: &Phase) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{name:<22} {:>7} req  {:>8.0} req/s  server CPU {:>7.1} µs/req  p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        phase.requests,
        phase.requests as f64 / phase.wall.as_secs_f64(),
        phase.cpu_per_request_us(),
        ms(phase.percentile(0.5)),
        ms(phase.percentile(0.99)),
        ms(phase.latencies[phase.latencies.len() - 1]),
    );
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server_path = match args.server {
        Some(path) => path,
        None => std::env::current_exe()?
            .parent()
            .context("this binary's directory")?
            .join("examples/api_on_fakes"),
    };
    let server = Server::start(&server_path, args.tasks)?;
    let host = format!("127.0.0.1:{}", server.port);
    let unauthenticated = format!("GET /api/tasks HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let list = format!(
        "GET /api/tasks HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\n\r\n",
        server.token
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (floor, listed) = runtime.block_on(async {
        let floor = phase(
            &server,
            unauthenticated.as_bytes(),
            401,
            args.connections,
            args.requests,
        )
        .await?;
        let listed = phase(
            &server,
            list.as_bytes(),
            200,
            args.connections,
            args.requests,
        )
        .await?;
        anyhow::Ok((floor, listed))
    })?;
    println!(
        "GET /api/tasks, {} tasks, {} connections (server: {})",
        args.tasks,
        args.connections,
        server_path.display()
    );
    report("401 (no token)", &floor);
    report("list (200)", &listed);
    println!(
        "list / 401 server CPU: {:.2}x (bar: <= 1.5x; p99 bar: < 2 ms)",
        listed.cpu_per_request_us() / floor.cpu_per_request_us()
    );
    Ok(())
}
