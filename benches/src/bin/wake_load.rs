//! Issue 23's wake-up check: how long a coordinator's pending `POST /api/wait-signal` takes to
//! be answered once a sub-task calls `POST /api/tasks/{id}/done`, beside this client's own
//! round trip for the cheapest answer the server gives (an unauthenticated 401), so the reader
//! can subtract what is the client's. A load client, not a test: it prints figures and asserts
//! none.
//!
//! ```text
//! cargo build --release -p baton-runtime --features fakes --example api_on_fakes
//! cargo build --release -p baton-benches --bin wake_load
//! target/release/wake_load                       # --rounds N --settle-ms N --server PATH
//! ```
//!
//! It starts the API on the in-memory ports (`api_on_fakes 1 --done-tokens`, looked for in the
//! same target directory and profile as this binary, or named with `--server PATH`) on loopback
//! only (or, with `--server benches/daemon/wake_server.py`, the real `baton daemon` with its
//! state file written and fsynced before each answer, on a temporary state directory), and opens two keep-alive connections (Nagle off), one for the coordinator's long poll
//! and one for the sub-task. Each round, on the sub-task's connection, an unauthenticated
//! `GET /api/tasks` is timed (the floor: the client's and the server's least work for a request
//! on such a connection); then the coordinator's `wait-signal` (a fresh `requestId`, as its MCP
//! server sends) is written, and after `--settle-ms` (untimed: the wait reaches the engine and
//! blocks there) the task's `done`, with its done token as a sub-task's MCP server presents it.
//! The wake-up is timed from the `done` request's first byte written to the wait's answer's last
//! byte read (the answer must name the task); then the `done`'s own answer is read. The one task
//! is signalled every round: a signal consumed by a wait leaves the task signal-able again.
//!
//! Latencies are taken with the client's clock around its own socket calls: both rows include
//! the client's work (its tokio runtime, its reads and writes), which the 401 row shows. The
//! server's CPU time over the measured rounds (user + system, `/proc/PID/stat`: Linux only) is
//! printed per round (one 401, one wait, one done). The bar (issue 23): the wake-up's p99 under
//! 1 ms.

#![allow(clippy::print_stdout)] // a command-line tool: the figures are its output

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use baton_benches::load::{
    Latencies, Server, ServerSetup, chunked_body, exchange, ms, read_answer, server_path,
};
use clap::Parser;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Rounds run before the measured ones (connections set up, caches and the replay cache warm).
const WARM_UP_ROUNDS: usize = 100;
/// How long each wait may block, in ms: far longer than any wake-up, so a wait that times out
/// means a lost signal (the round fails).
const WAIT_TIMEOUT_MS: u64 = 10_000;

#[derive(Parser, Debug)]
#[command(about = "done → a pending wait-signal's answer, beside a 401's round trip (issue 23)")]
struct Args {
    /// The server: the `api_on_fakes` example (default: beside this binary, under `examples/`),
    /// or `benches/daemon/wake_server.py` for the real daemon.
    #[arg(long)]
    server: Option<PathBuf>,
    /// Measured rounds (each: a 401, a wait, a done).
    #[arg(long, default_value_t = 2_000)]
    rounds: usize,
    /// Pause between writing the wait and writing the done, in ms (not timed): long enough for
    /// the wait to reach the engine and block.
    #[arg(long, default_value_t = 5)]
    settle_ms: u64,
}

/// The requests of a round.
struct Requests {
    floor: Vec<u8>,
    done: Vec<u8>,
    task: String,
    host: String,
    token: String,
}

impl Requests {
    fn wait(&self, round: usize) -> Vec<u8> {
        let body = format!(r#"{{"timeoutMs":{WAIT_TIMEOUT_MS},"requestId":"wake-{round}"}}"#);
        format!(
            "POST /api/wait-signal HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            self.token,
            body.len()
        )
        .into_bytes()
    }
}

/// One round's figures: the 401's round trip and the wake-up.
struct Round {
    floor: Duration,
    wake: Duration,
}

async fn round(
    waiting: &mut TcpStream,
    signalling: &mut TcpStream,
    requests: &Requests,
    number: usize,
    settle: Duration,
) -> anyhow::Result<Round> {
    let mut buffer = Vec::new();
    let sent = Instant::now();
    let status = exchange(signalling, &requests.floor, &mut buffer).await?;
    let floor = sent.elapsed();
    if status != 401 {
        bail!("the floor request answered {status}, expected 401");
    }
    waiting.write_all(&requests.wait(number)).await?;
    tokio::time::sleep(settle).await;
    let sent = Instant::now();
    signalling.write_all(&requests.done).await?;
    let status = read_answer(waiting, &mut buffer).await?;
    let wake = sent.elapsed();
    let body = chunked_body(&buffer);
    if status != 200
        || !body
            .windows(requests.task.len())
            .any(|w| w == requests.task.as_bytes())
    {
        bail!(
            "round {number}: the wait answered {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    let status = read_answer(signalling, &mut buffer).await?;
    if status != 200 {
        bail!("round {number}: done answered {status}");
    }
    Ok(Round { floor, wake })
}

fn report(name: &str, latencies: &Latencies) {
    println!(
        "{name:<16} {:>6} rounds  p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        latencies.len(),
        ms(latencies.percentile(0.5)),
        ms(latencies.percentile(0.9)),
        ms(latencies.percentile(0.99)),
        ms(latencies.max()),
    );
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server_path = server_path(args.server)?;
    let setup = ServerSetup {
        tasks: 1,
        done_tokens: true,
    };
    let server = Server::start(&server_path, setup)?;
    let (task, done_token) = server
        .done_tokens
        .first()
        .cloned()
        .context("the server printed no done token")?;
    let host = format!("127.0.0.1:{}", server.port);
    let requests = Requests {
        floor: format!("GET /api/tasks HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes(),
        done: format!(
            "POST /api/tasks/{task}/done HTTP/1.1\r\nHost: {host}\r\n\
             Authorization: Bearer {done_token}\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes(),
        task,
        host,
        token: server.token.clone(),
    };
    let settle = Duration::from_millis(args.settle_ms);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (floors, wakes, cpu) = runtime.block_on(async {
        let mut waiting = server.connect().await?;
        let mut signalling = server.connect().await?;
        for number in 0..WARM_UP_ROUNDS {
            round(&mut waiting, &mut signalling, &requests, number, settle).await?;
        }
        let cpu_before = server.cpu()?;
        let (mut floors, mut wakes) = (Vec::new(), Vec::new());
        for number in WARM_UP_ROUNDS..WARM_UP_ROUNDS + args.rounds {
            let Round { floor, wake } =
                round(&mut waiting, &mut signalling, &requests, number, settle).await?;
            floors.push(floor);
            wakes.push(wake);
        }
        let cpu = server.cpu()?.saturating_sub(cpu_before);
        anyhow::Ok((Latencies::new(floors), Latencies::new(wakes), cpu))
    })?;
    println!(
        "done -> the pending wait-signal's answer, {} rounds, settle {} ms (server: {})",
        args.rounds,
        args.settle_ms,
        server_path.display()
    );
    report("wake-up", &wakes);
    report("401 (no token)", &floors);
    println!(
        "server CPU {:.1} µs/round (a 401, a wait, a done); wake-up p99 less the 401's p99: \
         {:.3} ms (bar: wake-up p99 < 1 ms)",
        cpu.as_secs_f64() * 1e6 / args.rounds as f64,
        ms(wakes.percentile(0.99)) - ms(floors.percentile(0.99)),
    );
    Ok(())
}
