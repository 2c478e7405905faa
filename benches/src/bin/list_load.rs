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

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use baton_benches::load::{Latencies, Server, ServerSetup, exchange, ms, server_path};
use clap::Parser;
use tokio::time::Instant;

/// Requests each connection sends before a phase is measured (connections set up, caches warm).
const WARM_UP_REQUESTS: usize = 200;

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

/// One phase's figures.
struct Phase {
    wall: Duration,
    cpu: Duration,
    latencies: Latencies,
}

impl Phase {
    fn cpu_per_request_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.latencies.len() as f64
    }
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
        let mut stream = server.connect().await?;
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
    Ok(Phase {
        wall,
        cpu,
        latencies: Latencies::new(latencies),
    })
}

fn report(name: &str, phase: &Phase) {
    let requests = phase.latencies.len();
    println!(
        "{name:<22} {:>7} req  {:>8.0} req/s  server CPU {:>7.1} µs/req  p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        requests,
        requests as f64 / phase.wall.as_secs_f64(),
        phase.cpu_per_request_us(),
        ms(phase.latencies.percentile(0.5)),
        ms(phase.latencies.percentile(0.99)),
        ms(phase.latencies.max()),
    );
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server_path = server_path(args.server)?;
    let setup = ServerSetup {
        tasks: args.tasks,
        done_tokens: false,
    };
    let server = Server::start(&server_path, setup)?;
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
