//! The `baton` binary: a thin shell over `baton_runtime`. It parses arguments, does the IO and
//! prints what the library made.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use baton_runtime::cli::detect;
use baton_runtime::core::detector::Profile;
use clap::{Parser, Subcommand};

/// Baton: run many AI coding agents side by side.
#[derive(Parser)]
#[command(name = "baton", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: agents' terminals and worktrees, the coordinator engine, the REST API on
    /// loopback and the app channel, with its state in --state-dir (default
    /// $XDG_STATE_HOME/baton, or ~/.local/state/baton). Stops on SIGINT or SIGTERM.
    Daemon {
        /// Where the state, the lock, the app socket and the MCP configs live.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// The REST API's port (default: the first free one of 7777 to 7800; 0: any).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Replay a terminal recording (raw bytes or an asciinema v2/v3 cast) through the prompt
    /// detector and print every change of its judgement.
    Detect {
        /// The recording.
        file: PathBuf,
        /// Agent profile: claude, codex, gemini, shell or generic.
        #[arg(long, default_value = "claude")]
        profile: Profile,
        /// How to read FILE: auto (a cast if it starts with `{`), cast or raw.
        #[arg(long, default_value = "auto")]
        format: detect::Format,
    },
    /// The MCP stdio server an agent launches: `--url <api> [--coordinator-id ID] [--task-id
    /// ID]`; the token comes from BATON_MCP_TOKEN, a sub-task's done token from BATON_DONE_TOKEN.
    Mcp {
        /// Read as the reference's MCP process read them: unknown arguments are ignored.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("baton: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Daemon { state_dir, port } => {
            use baton_runtime::daemon;
            init_logging();
            let state_dir = match state_dir {
                Some(dir) => std::path::absolute(&dir)
                    .with_context(|| format!("state directory {}", dir.display()))?,
                None => daemon::default_state_dir(|name| std::env::var(name).ok())?,
            };
            let program = std::env::current_exe()
                .context("finding the baton executable")?
                .display()
                .to_string();
            let options = daemon::Options {
                state_dir,
                port: port.map_or_else(Default::default, baton_runtime::api::listen::Port::Exactly),
                program,
                pty: Default::default(),
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(async {
                let shutdown = daemon::shutdown_signal().context("installing signal handlers")?;
                let daemon = daemon::Daemon::start(options).await?;
                let line = format!(
                    "baton daemon: API {} · app channel {} · state {}\n",
                    daemon.api_url(),
                    daemon.socket().display(),
                    daemon.state_dir().display()
                );
                let mut out = std::io::stdout().lock();
                out.write_all(line.as_bytes())
                    .context("writing to stdout")?;
                out.flush().context("writing to stdout")?;
                drop(out);
                daemon.serve_until(shutdown).await;
                anyhow::Ok(())
            })
        }
        Command::Mcp { args } => {
            use baton_runtime::mcp::args as mcp_args;
            let from_file = match mcp_args::flag(&args, mcp_args::CREDENTIALS_FILE_FLAG) {
                None => Vec::new(),
                Some(path) => {
                    let path = PathBuf::from(path);
                    let limit = mcp_args::CREDENTIALS_FILE_BYTES_MAX as u64;
                    let bytes = read_bounded(&path, limit)?;
                    mcp_args::credentials_in(&bytes).map_err(|error| {
                        anyhow::anyhow!("credentials file {}: {error}", path.display())
                    })?
                }
            };
            let args = mcp_args::McpArgs::parse(&args, |name| {
                from_file
                    .iter()
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| value.clone())
                    .or_else(|| std::env::var(name).ok())
            })?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(baton_runtime::mcp::serve_stdio(args))
        }
        Command::Detect {
            file,
            profile,
            format,
        } => {
            let bytes = read_bounded(&file, detect::RECORDING_BYTES_MAX)?;
            let recording = detect::parse_recording(&bytes, format)
                .with_context(|| format!("reading {}", file.display()))?;
            let changes = detect::replay(&recording, profile);
            let report = detect::render(&recording, profile, &changes);
            std::io::stdout()
                .lock()
                .write_all(report.as_bytes())
                .context("writing the report")?;
            Ok(())
        }
    }
}

/// Logs to stderr: `BATON_LOG` filters (tracing's env-filter syntax; default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BATON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

/// Reads a whole file, refusing one larger than `limit` bytes.
fn read_bounded(path: &PathBuf, limit: u64) -> anyhow::Result<Vec<u8>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    anyhow::ensure!(
        bytes.len() as u64 <= limit,
        "{} is larger than the {limit}-byte limit for recordings",
        path.display()
    );
    Ok(bytes)
}
