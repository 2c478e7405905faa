//! The `baton` binary: a thin shell over `baton_runtime`. It parses arguments, does the IO and
//! prints what the library made.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use baton_runtime::agents::recording;
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

/// How a client command finds the daemon.
#[derive(clap::Args)]
struct ClientOpts {
    /// The daemon's state directory (default: as `baton daemon` chooses it).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Print JSON, for scripts.
    #[arg(long)]
    json: bool,
}

impl ClientOpts {
    fn client(&self) -> anyhow::Result<baton_runtime::cli::app::AppClient> {
        let dir = match &self.state_dir {
            Some(dir) => dir.clone(),
            None => baton_runtime::daemon::default_state_dir(|name| std::env::var(name).ok())?,
        };
        Ok(baton_runtime::cli::app::AppClient::new(&dir))
    }
}

#[derive(Subcommand)]
enum CoordinatorCommand {
    /// Register a coordinator on a project and start its agent there, with Baton's MCP server.
    Start {
        /// The project: a git repository.
        #[arg(long)]
        project: PathBuf,
        /// Its agent: demo, claude, codex, gemini, or a command line (its sub-tasks run the
        /// same).
        #[arg(long)]
        agent: String,
        /// Its first prompt (the coordinator preamble goes before it).
        #[arg(long)]
        prompt: Option<String>,
        /// Give sub-tasks their agent's skip-permission flags.
        #[arg(long)]
        skip_permissions: bool,
        /// Print what happens until the coordinator is done.
        #[arg(long)]
        follow: bool,
        /// Make --project a new sample git repository first, if it does not exist.
        #[arg(long)]
        init: bool,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Deregister a coordinator: its agent ends, its tasks stay until closed.
    Stop {
        /// The coordinator's id.
        id: String,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Give a coordinator a new token (one that leaked opens nothing any more); its agents keep
    /// running and their MCP servers read the new one.
    Rotate {
        /// The coordinator's id.
        id: String,
        #[command(flatten)]
        client: ClientOpts,
    },
}

#[derive(Subcommand)]
enum Command {
    /// What the daemon runs: its coordinators, their agents and tasks.
    Status {
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Start or stop a coordinator.
    Coordinator {
        #[command(subcommand)]
        action: CoordinatorCommand,
    },
    /// Every coordinator's sub-tasks.
    Tasks {
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Why Baton thinks what it thinks of a task's agent: its state, each piece of evidence
    /// (hooks, OSC, screen) with its times, and the screen's last lines.
    Explain {
        /// The task's id.
        id: String,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Attach to an agent's terminal (a coordinator's id, or a task's); Ctrl-] detaches.
    Attach {
        /// The coordinator's or the task's id.
        id: String,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Print the engine's events as they happen.
    Events {
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Turn phone access on and print its URL and a QR code (read-only: it never types into an
    /// agent); --stop turns it off.
    Phone {
        /// Turn phone access off (its token is revoked).
        #[arg(long, conflicts_with = "rotate")]
        stop: bool,
        /// Replace the link of running phone access (the old one opens nothing any more).
        #[arg(long, conflicts_with_all = ["loopback", "port"])]
        rotate: bool,
        /// Listen on loopback only (a browser on this machine), not the LAN.
        #[arg(long)]
        loopback: bool,
        /// The port (default: the first free of 7801 to 7820).
        #[arg(long)]
        port: Option<u16>,
        #[command(flatten)]
        client: ClientOpts,
    },
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
        format: recording::Format,
        /// After the report, print the screen (or text) the detector read at the end.
        #[arg(long)]
        screen: bool,
    },
    /// A stand-in for a coding agent, for demos and tests: in a terminal it shows Claude's
    /// screens, takes prompts, commits in its directory and calls Baton's MCP tools through the
    /// server its --mcp-config names. It runs a script in the simulator's agent language.
    DemoAgent {
        /// The script (TOML: `script = [...]`, `repeat = [...]`); a built-in one by default.
        #[arg(long)]
        script: Option<PathBuf>,
        /// A directory of scripts, one per task: `<slug>.toml` for the task whose worktree (its
        /// working directory) is on branch `task/<slug>-<id>`, else `default.toml`, else the
        /// built-in one.
        #[arg(long, conflicts_with = "script")]
        scripts: Option<PathBuf>,
        /// Which built-in script: sub-task or coordinator.
        #[arg(long, value_enum, default_value = "sub-task")]
        role: baton_runtime::demo::Role,
        /// Whose screens to print: claude, codex or gemini.
        #[arg(long, default_value = "claude")]
        kind: Profile,
        /// The MCP config naming Baton's server (as Claude Code's --mcp-config).
        #[arg(long)]
        mcp_config: Option<PathBuf>,
        /// A first prompt, taken instead of the first one typed.
        prompt: Option<String>,
    },
    /// What an agent's hook runs (Baton writes it into the agent's settings): tells the daemon
    /// the hook fired. Prints nothing on stdout and exits 0 whatever happens.
    Hook {
        /// The API's base URL.
        #[arg(long)]
        url: String,
        /// The task whose agent's hook fired.
        #[arg(long)]
        task_id: String,
        /// The task's MCP config, holding its done token.
        #[arg(long)]
        credentials_file: PathBuf,
        /// The hook's event name.
        #[arg(long)]
        event: String,
    },
    /// The MCP stdio server an agent launches: `--url <api> [--coordinator-id ID] [--task-id
    /// ID]`; the token comes from BATON_MCP_TOKEN, a sub-task's done token from BATON_DONE_TOKEN.
    Mcp {
        /// Read as the reference's MCP process read them: unknown arguments are ignored.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// `baton hook`: reads the notification type from standard input when the event has one, the
/// done token from the credentials file, and tells the daemon.
fn report_hook(
    url: String,
    task: String,
    credentials_file: &std::path::Path,
    event: String,
) -> anyhow::Result<()> {
    use baton_runtime::mcp::{args as mcp_args, hook};
    use std::io::Read as _;
    let notification = if hook::reads_input(&event) {
        // Bounded in bytes and in time: a hook's input that never ends holds nothing up (the
        // reader is left behind, and ends with the process).
        let (read, input) = std::sync::mpsc::sync_channel(1);
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = std::io::stdin()
                .lock()
                .take(hook::HOOK_INPUT_BYTES_MAX as u64)
                .read_to_end(&mut bytes);
            let _ = read.send(bytes);
        });
        input
            .recv_timeout(std::time::Duration::from_millis(
                hook::HOOK_REQUEST_TIMEOUT_MS,
            ))
            .ok()
            .and_then(|bytes| hook::notification_type(&bytes))
    } else {
        None
    };
    let bytes = read_bounded(
        credentials_file,
        mcp_args::CREDENTIALS_FILE_BYTES_MAX as u64,
    )?;
    let credentials = mcp_args::credentials_in(&bytes).map_err(|error| {
        anyhow::anyhow!("credentials file {}: {error}", credentials_file.display())
    })?;
    let token = baton_runtime::agents::DONE_TOKEN_VARS
        .iter()
        .find_map(|name| credentials.iter().find(|(key, _)| key == name))
        .map(|(_, value)| value.clone())
        .ok_or_else(|| anyhow::anyhow!("no done token in {}", credentials_file.display()))?;
    let hook = hook::Hook {
        url,
        task,
        event,
        notification,
    };
    client_command(async move {
        hook::report(&baton_runtime::mcp::http::Tcp, &hook, &token)
            .await
            .map_err(|error| anyhow::anyhow!(error))
    })
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

/// Runs a client command on a small runtime of its own.
fn client_command<F: Future<Output = anyhow::Result<()>>>(command: F) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(command)
}

fn run(cli: Cli) -> anyhow::Result<()> {
    use baton_runtime::cli::app;
    match cli.command {
        Command::Status { client } => {
            let c = client.client()?;
            client_command(app::status(&c, client.json))
        }
        Command::Tasks { client } => {
            let c = client.client()?;
            client_command(app::tasks(&c, client.json))
        }
        Command::Explain { id, client } => {
            let c = client.client()?;
            client_command(app::explain(&c, &id, client.json))
        }
        Command::Events { client } => {
            let c = client.client()?;
            client_command(app::events(&c, client.json))
        }
        Command::Phone {
            stop,
            rotate,
            loopback,
            port,
            client,
        } => {
            let c = client.client()?;
            if rotate {
                client_command(app::phone_rotate(&c, client.json))
            } else {
                client_command(app::phone(&c, stop, loopback, port, client.json))
            }
        }
        Command::Attach { id, client } => {
            let c = client.client()?;
            client_command(app::attach(&c, &id))
        }
        Command::Coordinator {
            action: CoordinatorCommand::Stop { id, client },
        } => {
            let c = client.client()?;
            client_command(app::stop(&c, &id))
        }
        Command::Coordinator {
            action: CoordinatorCommand::Rotate { id, client },
        } => {
            let c = client.client()?;
            client_command(app::rotate(&c, &id, client.json))
        }
        Command::Coordinator {
            action:
                CoordinatorCommand::Start {
                    project,
                    agent,
                    prompt,
                    skip_permissions,
                    follow,
                    init,
                    client,
                },
        } => {
            let c = client.client()?;
            let program = std::env::current_exe()
                .context("finding the baton executable")?
                .display()
                .to_string();
            let options = app::StartOptions {
                project,
                agent,
                prompt,
                skip_permissions,
                follow,
                init,
                program,
            };
            client_command(app::start(&c, options, client.json))
        }
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
        Command::Hook {
            url,
            task_id,
            credentials_file,
            event,
        } => {
            // A hook runs while the agent waits: whatever goes wrong is a line on stderr, never
            // a failure the agent would act on.
            if let Err(error) = report_hook(url, task_id, &credentials_file, event) {
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("baton hook: {error:#}");
                }
            }
            Ok(())
        }
        Command::Mcp { args } => {
            use baton_runtime::agents::CREDENTIALS_FILE_FLAG;
            use baton_runtime::mcp::args as mcp_args;
            let from_file = match mcp_args::flag(&args, CREDENTIALS_FILE_FLAG) {
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
        Command::DemoAgent {
            script,
            scripts,
            role,
            kind,
            mcp_config,
            prompt,
        } => {
            let args = baton_runtime::demo::DemoArgs {
                script,
                scripts,
                role,
                profile: kind,
                mcp_config,
                prompt,
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let code = runtime.block_on(baton_runtime::demo::run(args))?;
            // The runtime's reader thread may still block on stdin: leave without waiting.
            std::process::exit(code);
        }
        Command::Detect {
            file,
            profile,
            format,
            screen,
        } => {
            let bytes = read_bounded(&file, detect::RECORDING_BYTES_MAX)?;
            let recording = recording::parse_recording(&bytes, format)
                .with_context(|| format!("reading {}", file.display()))?;
            let replay = detect::replay(&recording, profile);
            let mut report = detect::render(&recording, profile, &replay.changes);
            if screen {
                report.push_str(&detect::render_screen(&replay));
            }
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
fn read_bounded(path: &std::path::Path, limit: u64) -> anyhow::Result<Vec<u8>> {
    baton_runtime::adapters::files::read_user_file(path, limit)
        .with_context(|| format!("reading {}", path.display()))
}
