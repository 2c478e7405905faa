//! The scripted agent the daemon host starts on every spawn: the engine's (a sub-task's agent,
//! matched to its script by the task's branch) or the registry's (a coordinator's own agent,
//! started in its project through the app channel's `POST /app/coordinators/{id}/agent`).
//! Its `baton mcp` is the runtime's own MCP client code over turmoil's TCP, through the
//! agent's link, with the credential its config holds; it announces itself after the script's
//! `mcp_connect_ms`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use baton_runtime::agents;
use baton_runtime::core::branch::task_branch;
use baton_runtime::core::ids::{CoordinatorId, TaskId};
use baton_runtime::ports::fakes::FakeFiles;
use baton_runtime::ports::{BoxFuture, SpawnSpec};
use tokio::sync::Notify;

use super::Shared;
use crate::agent::{self, Action, Seat, SubTaskMcp};
use crate::net::SimTcp;
use crate::world::CONFIG_DIR;

/// A scripted agent's MCP server connects this long after the agent starts, unless its script
/// says otherwise.
pub const MCP_CONNECT_MS_DEFAULT: u64 = 200;
/// A scripted agent, ready to run.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// Run once.
    pub once: Vec<Action>,
    /// Then run again and again.
    pub repeat: Vec<Action>,
    /// How many times `repeat` runs (`None`: until the agent is killed).
    pub loops: Option<u64>,
    /// When its MCP server connects after the agent starts (`None`: never).
    pub mcp_connect_ms: Option<u64>,
}

impl Script {
    /// What an agent does when a scenario gives it no script: it starts, shows its prompt,
    /// and answers every prompt by working for a second and showing its prompt again.
    #[must_use]
    pub fn default_agent() -> Self {
        use baton_runtime::agents::frames::Frame;
        Script {
            once: vec![
                Action::Print(Frame::Startup),
                Action::Pause(300),
                Action::Print(Frame::Ready),
            ],
            repeat: vec![
                Action::WaitForPrompt,
                Action::Print(Frame::Busy),
                Action::Pause(1_000),
                Action::Print(Frame::Ready),
            ],
            loops: None,
            mcp_connect_ms: Some(MCP_CONNECT_MS_DEFAULT),
        }
    }
}

/// Whose `baton mcp` a config starts.
#[derive(Clone, Copy, Debug)]
enum Whose {
    /// A sub-task's (`--task-id`, with its done token).
    Task(TaskId),
    /// A coordinator's own agent's (`--coordinator-id`, with the coordinator's bearer token).
    Coordinator(CoordinatorId),
}

/// What the simulated `baton mcp` reads from the config the daemon wrote: whose server it is,
/// and its credential.
pub(super) struct McpConfig {
    whose: Whose,
    secret: String,
}

impl McpConfig {
    /// A sub-task's done token (`None` for a coordinator's config).
    pub(super) fn done_token(self) -> Option<String> {
        matches!(self.whose, Whose::Task(_)).then_some(self.secret)
    }
}

/// The config a spawned program was given, as its `baton mcp` reads it: `--mcp-config PATH`,
/// or (Codex) the `--credentials-file PATH` inside its `--config` override.
fn read_config(files: &FakeFiles, argv: &[String]) -> Option<McpConfig> {
    if let Some(at) = argv.iter().position(|a| a == "--mcp-config") {
        return read_config_at(files, Path::new(argv.get(at + 1)?));
    }
    const MARK: &str = "\"--credentials-file\", ";
    let override_arg = argv.iter().find(|a| a.contains(MARK))?;
    let rest = &override_arg[override_arg.find(MARK)? + MARK.len()..];
    let path: String = serde_json::Deserializer::from_str(rest)
        .into_iter::<String>()
        .next()?
        .ok()?;
    read_config_at(files, Path::new(&path))
}

/// The config an agent that reads its MCP servers from its worktree finds there: a settings
/// file Baton wrote for the program (`agents::worktree_writes`) names Baton's server with
/// `--credentials-file <config>`.
fn read_worktree_config(shared: &Shared, program: &str, worktree: &Path) -> Option<McpConfig> {
    let tree = shared.repo.files(worktree)?;
    agents::worktree_writes(program)
        .into_iter()
        .filter(|write| write.names_config())
        .find_map(|write| {
            let settings: serde_json::Value = serde_json::from_str(tree.get(write.path)?).ok()?;
            let args = settings["mcpServers"]["baton"]["args"].as_array()?;
            let at = args.iter().position(|a| a == "--credentials-file")?;
            read_config_at(&shared.files, Path::new(args.get(at + 1)?.as_str()?))
        })
}

pub(super) fn read_config_at(files: &FakeFiles, path: &Path) -> Option<McpConfig> {
    let file = files.get(path)?;
    let config: serde_json::Value = serde_json::from_slice(&file.bytes).ok()?;
    let server = &config["mcpServers"]["baton"];
    let args: Vec<&str> = server["args"]
        .as_array()?
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    let after = |flag: &str| {
        let at = args.iter().position(|a| *a == flag)?;
        args.get(at + 1).copied()
    };
    let (whose, variable) = match (after("--task-id"), after("--coordinator-id")) {
        (Some(task), _) => (Whose::Task(task.parse().ok()?), agents::DONE_TOKEN_VARS[0]),
        (None, Some(id)) => (Whose::Coordinator(id.parse().ok()?), agents::TOKEN_VARS[0]),
        (None, None) => return None,
    };
    Some(McpConfig {
        whose,
        secret: server["env"][variable].as_str()?.to_owned(),
    })
}

/// Starts the scripted agent of each program the daemon spawns: a sub-task's (its script
/// found by its task's branch, the default agent otherwise), or a coordinator's own (the
/// default agent, `agent of <coordinator>` in the trace, which also says when the daemon
/// stops it).
pub(super) fn on_spawn(
    shared: &Arc<Shared>,
    inner: Arc<baton_runtime::ports::fakes::FakePty>,
    (typed, killed): (Arc<Notify>, Arc<Notify>),
) -> crate::pty::OnSpawn {
    let shared = Arc::downgrade(shared);
    Box::new(move |spec: &SpawnSpec| {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let program = spec.argv.first().cloned().unwrap_or_default();
        let config = read_config(&shared.files, &spec.argv)
            .or_else(|| read_worktree_config(&shared, &program, &spec.cwd));
        let Some(config) = config else {
            shared
                .recorder
                .record("daemon", "spawned a program without a readable MCP config");
            return;
        };
        let (name, script) = match config.whose {
            Whose::Task(task) => shared
                .scripts
                .iter()
                .find(|(name, _)| spec.cwd.ends_with(task_branch(name, task)))
                .map_or_else(
                    || (slug_of(&spec.cwd), Script::default_agent()),
                    |(name, script)| (name.clone(), script.clone()),
                ),
            Whose::Coordinator(id) => (
                format!("of {}", shared.coordinator_name(id)),
                Script::default_agent(),
            ),
        };
        let actor = format!("agent {name}");
        let mcp = Arc::new(LinkedMcp {
            shared: shared.clone(),
            actor: actor.clone(),
            whose: config.whose,
            secret: config.secret.clone(),
        });
        let seat = Seat {
            pty: inner.clone(),
            typed: typed.clone(),
            agent: spec.agent,
            profile: agents::profile_of(&program),
            repo: Some((shared.repo.clone(), spec.cwd.clone())),
            mcp: mcp.clone(),
            done_token: config.secret,
            recorder: shared.recorder.clone(),
            name: actor.clone(),
        };
        shared
            .recorder
            .record(&actor, format!("starts {}", shown_argv(&spec.argv)));
        if let Some(ms) = script.mcp_connect_ms {
            tokio::spawn(async move {
                baton_runtime::time::sleep(Duration::from_millis(ms)).await;
                mcp.connected().await;
            });
        }
        if let Whose::Coordinator(_) = config.whose {
            tokio::spawn(stopped(seat.clone(), killed.clone()));
        }
        tokio::spawn(async move {
            if let Err(error) = play(&seat, &script).await {
                // An agent whose terminal went away while it acted was killed: it stops.
                if seat.pty.is_alive(seat.agent) {
                    seat.recorder.record(&seat.name, format!("stops: {error}"));
                }
            }
        });
    })
}

/// Says when the daemon killed the agent of `seat` (a coordinator's: its default script never
/// ends on its own).
async fn stopped(seat: Seat, killed: Arc<Notify>) {
    loop {
        let notified = killed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !seat.pty.is_alive(seat.agent) {
            seat.recorder.record(&seat.name, "is stopped by the daemon");
            return;
        }
        notified.await;
    }
}

async fn play(seat: &Seat, script: &Script) -> Result<(), String> {
    if !agent::run(seat, &script.once).await? || script.repeat.is_empty() {
        return Ok(());
    }
    let mut round = 0;
    while script.loops.is_none_or(|loops| round < loops) {
        if !agent::run(seat, &script.repeat).await? {
            return Ok(());
        }
        round += 1;
    }
    Ok(())
}

/// The task's name as its branch spells it (for agents no script names).
fn slug_of(worktree: &Path) -> String {
    let branch = worktree
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    branch
        .rsplit_once('-')
        .map_or(branch, |(slug, _)| slug)
        .to_owned()
}

/// An agent's `baton mcp`: the runtime's own MCP client code (`mcp::server::Backend`, the
/// sub-task role or the coordinator role) reaching the daemon's REST API over turmoil's TCP,
/// through its link, with the credential its config holds.
struct LinkedMcp {
    shared: Arc<Shared>,
    actor: String,
    whose: Whose,
    /// Its credential, from its config.
    secret: String,
}

impl LinkedMcp {
    /// This MCP server as `baton mcp --url <daemon> --task-id <task>` with `token` as its done
    /// token (its own, or another one a script sends), or a coordinator's with its token.
    fn backend(&self, token: &str) -> Result<baton_runtime::mcp::server::Backend<SimTcp>, String> {
        let (flag, id, var) = match self.whose {
            Whose::Task(task) => ("--task-id", task.to_string(), agents::DONE_TOKEN_VARS[0]),
            Whose::Coordinator(id) => ("--coordinator-id", id.to_string(), agents::TOKEN_VARS[0]),
        };
        self.shared
            .mcp_process(&self.actor, (flag, id), (var, token))
    }

    /// Tells the daemon the MCP server started (as the real one does once its client asked
    /// for its tools).
    async fn connected(&self) {
        let answer = match self.backend(&self.secret) {
            Ok(backend) => backend.announce().await,
            Err(error) => Err(error),
        };
        let line = match answer {
            Ok(()) => "mcp connected".to_owned(),
            Err(error) => format!("mcp connect -> error: {error}"),
        };
        self.shared.recorder.record(&self.actor, line);
    }

    /// The sub-task this server is for.
    fn task(&self) -> Result<TaskId, String> {
        match self.whose {
            Whose::Task(task) => Ok(task),
            Whose::Coordinator(_) => Err("a coordinator's agent is no sub-task".to_owned()),
        }
    }
}

impl SubTaskMcp for LinkedMcp {
    fn hook(
        &self,
        mut hook: baton_runtime::mcp::hook::Hook,
        token: String,
    ) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            hook.task = self.task()?.to_string();
            let tcp = SimTcp::linked(self.shared.links.clone(), &self.actor);
            baton_runtime::mcp::hook::report(&tcp, &hook, &token).await
        })
    }

    fn signal_done(&self, token: String) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let task = self.task()?;
            let backend = self.backend(&token)?;
            // The checker hears of every done that reaches the daemon, whoever sent it.
            let sent = self.shared.recorder.elapsed_ms();
            self.shared.observed().signal_sent(task, sent);
            let answer = backend.call("signal_done", &serde_json::Map::new()).await;
            if answer.is_ok() {
                self.shared.observed().signal_given(task, sent);
            }
            answer.map(drop)
        })
    }
}

/// The config path the engine writes for a task.
#[must_use]
pub fn config_path(task: TaskId) -> PathBuf {
    PathBuf::from(CONFIG_DIR).join(format!("baton-subtask-{task}.json"))
}

/// An agent's command line as the trace shows it: the sub-task instruction block (given whole
/// to Claude Code's `--append-system-prompt`) by name, not its lines.
fn shown_argv(argv: &[String]) -> String {
    let block = baton_runtime::agents::preamble::block();
    argv.iter()
        .map(|arg| {
            if *arg == block {
                "<the sub-task block>"
            } else {
                arg.as_str()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
