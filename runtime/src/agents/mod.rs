//! Agent kinds: how each CLI is launched, which prompt it shows, how it is given its MCP config.
//!
//! This module: the kinds, how an agent launches Baton's MCP server ([`McpLaunch`], the entry
//! [`McpServer`], and the variables and flag `baton mcp` reads its credentials from), each
//! kind's launch (`--mcp-config`, or Codex's secret-free `--config` override), and what each
//! kind needs written into its worktree ([`worktree_writes`]: data the engine carries out, so
//! that it and the simulator name no kind). `preamble`: the
//! sub-task instruction block, on Claude Code's command line or injected into the agent's
//! instruction file and stripped before a merge.
//! `mcp_json`: a coordinator's `.mcp.json`, merged and restored exactly. `script` and `frames`:
//! the agent-behaviour language the simulator's agents and `baton demo-agent` run; `recording`:
//! the terminal recordings a script's `cast` plays and `baton detect` replays. All pure: the
//! engine does the file work through the `Files` port.
//!
//! It uses only `core` and `endpoints` of the crate: the engine, the daemon, `baton mcp` and
//! the CLI use it, never the other way.

pub mod frames;
pub mod mcp_json;
pub mod preamble;
pub mod prompts;
pub mod recording;
pub mod script;

use std::path::Path;

use crate::core::coordinator::WorktreeFileKind;
use crate::core::detector::Profile;
use crate::core::ids::TaskId;

/// A known agent CLI, recognised from its command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentKind {
    /// Claude Code.
    Claude,
    /// Codex CLI.
    Codex,
    /// Gemini CLI.
    Gemini,
    /// GitHub Copilot CLI.
    Copilot,
    /// opencode.
    OpenCode,
    /// Anything else.
    Other,
}

impl AgentKind {
    /// The kind of `command` (a program name or path), from its file name.
    #[must_use]
    pub fn from_command(command: &str) -> Self {
        let name = Path::new(command)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(command)
            .to_lowercase();
        [
            ("claude", AgentKind::Claude),
            ("codex", AgentKind::Codex),
            ("gemini", AgentKind::Gemini),
            ("copilot", AgentKind::Copilot),
            ("opencode", AgentKind::OpenCode),
        ]
        .into_iter()
        .find(|(needle, _)| name.contains(needle))
        .map_or(AgentKind::Other, |(_, kind)| kind)
    }

    /// Flags that make the agent act without asking for permission (given to sub-tasks only
    /// when the coordinator itself was started that way).
    #[must_use]
    pub const fn skip_permission_flags(self) -> &'static [&'static str] {
        match self {
            AgentKind::Claude => &["--dangerously-skip-permissions"],
            AgentKind::Codex => &["--dangerously-bypass-approvals-and-sandbox"],
            AgentKind::Gemini | AgentKind::Copilot => &["--yolo"],
            AgentKind::OpenCode | AgentKind::Other => &[],
        }
    }

    /// The prompt detector profile for its terminal.
    #[must_use]
    pub const fn profile(self) -> Profile {
        match self {
            AgentKind::Claude => Profile::Claude,
            AgentKind::Codex => Profile::Codex,
            AgentKind::Gemini => Profile::Gemini,
            AgentKind::Copilot | AgentKind::OpenCode | AgentKind::Other => Profile::Generic,
        }
    }
}

impl AgentKind {
    /// Variables set for the agent (no secret: settings of the agent's own).
    #[must_use]
    pub fn env(self) -> Vec<(String, String)> {
        match self {
            // Claude Code 2.1.332 moves an MCP call running past this many milliseconds to the
            // background (120 s by default): a coordinator's wait for a signal would then be
            // heard late, at a turn boundary. Baton bounds its waits; 0 keeps them in the turn.
            AgentKind::Claude => vec![(CLAUDE_MCP_AUTO_BACKGROUND_VAR.to_owned(), "0".to_owned())],
            _ => Vec::new(),
        }
    }

    /// Why this agent cannot run with its skip-permission flags here, if it cannot: Claude Code
    /// refuses `--dangerously-skip-permissions` as root outside a sandbox it recognises and
    /// exits at once (seen with 2.1.197 and 2.1.332).
    #[must_use]
    pub fn skip_permissions_refused(self, root_outside_a_sandbox: bool) -> Option<String> {
        (self == AgentKind::Claude && root_outside_a_sandbox).then(|| {
            "Claude Code refuses --dangerously-skip-permissions as root and would exit at once: \
             run the daemon as another user, or, if this machine is a disposable sandbox, start \
             it with IS_SANDBOX=1 (Claude Code's own switch for that)"
                .to_owned()
        })
    }
}

/// The name Baton's server has in every MCP config it writes.
pub const SERVER_NAME: &str = "baton";

/// Environment variables holding `baton mcp`'s bearer token, the first one set and not empty
/// wins (Baton's name first, the reference's still read; `mcp::args` reads them).
pub const TOKEN_VARS: [&str; 2] = ["BATON_MCP_TOKEN", "PARALLEL_CODE_MCP_TOKEN"];
/// Environment variables holding a sub-task's done token.
pub const DONE_TOKEN_VARS: [&str; 2] = ["BATON_DONE_TOKEN", "PARALLEL_CODE_MCP_DONE_TOKEN"];
/// Names the agent's MCP config file, from which `baton mcp` (and `baton hook`) reads the
/// credentials instead of the environment (an agent that can give its MCP servers no
/// environment, such as Codex with a `--config` override, passes the file's path instead: it
/// is no secret).
pub const CREDENTIALS_FILE_FLAG: &str = "--credentials-file";

/// How an agent starts Baton's MCP server (`baton mcp`) and where it reaches the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McpLaunch {
    /// The `baton` program (the daemon's own executable in production).
    pub command: String,
    /// The API's base URL, built from the port the daemon bound.
    pub url: String,
}

impl Default for McpLaunch {
    /// `baton` on the PATH, the API on its default port on loopback.
    fn default() -> Self {
        McpLaunch {
            command: "baton".to_owned(),
            url: format!("http://127.0.0.1:{}", crate::endpoints::PORT_DEFAULT),
        }
    }
}

/// Baton's MCP server as an agent starts it: the program, its arguments (no secret: argv is
/// visible in `ps`) and its environment (the secrets).
#[derive(Clone, PartialEq, Eq)]
pub struct McpServer {
    /// The `baton` program.
    pub command: String,
    /// `mcp --url … --task-id …`.
    pub args: Vec<String>,
    /// Variables set for it: the done token.
    pub env: Vec<(String, String)>,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer")
            .field("command", &self.command)
            .field("args", &self.args)
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .finish()
    }
}

impl McpServer {
    /// A coordinator's server: the coordinator role, its token as its credential.
    #[must_use]
    pub fn coordinator(
        launch: &McpLaunch,
        coordinator: crate::core::ids::CoordinatorId,
        token: &str,
    ) -> Self {
        let var = TOKEN_VARS[0];
        Self::serving(
            launch,
            ("--coordinator-id", coordinator.to_string()),
            (var, token),
        )
    }

    /// A sub-task's server: the sub-task role (`--task-id` only), its done token as its
    /// credential.
    #[must_use]
    pub fn sub_task(launch: &McpLaunch, task: TaskId, done_token: &str) -> Self {
        let var = DONE_TOKEN_VARS[0];
        Self::serving(launch, ("--task-id", task.to_string()), (var, done_token))
    }

    /// `baton mcp --url <url> <flag> <id>` with `variable=secret` in its environment.
    fn serving(
        launch: &McpLaunch,
        (flag, id): (&str, String),
        (variable, secret): (&str, &str),
    ) -> Self {
        McpServer {
            command: launch.command.clone(),
            args: vec![
                "mcp".to_owned(),
                "--url".to_owned(),
                launch.url.clone(),
                flag.to_owned(),
                id,
            ],
            env: vec![(variable.to_owned(), secret.to_owned())],
        }
    }

    /// Whether it is a sub-task's server (`--task-id`).
    #[must_use]
    pub fn is_sub_task(&self) -> bool {
        self.args.iter().any(|arg| arg == "--task-id")
    }

    /// The entry under `mcpServers.baton` in an MCP config.
    #[must_use]
    pub fn entry(&self) -> serde_json::Value {
        let env: serde_json::Map<String, serde_json::Value> = self
            .env
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        serde_json::json!({
            "type": "stdio",
            "command": self.command,
            "args": self.args,
            "env": env,
        })
    }

    /// The entry for a config file that may be read or committed by others (a project's
    /// `.mcp.json`, Gemini's settings): no secret in it, the server reads its credentials from
    /// the 0600 file at `config` (`--credentials-file`).
    #[must_use]
    pub fn entry_reading(&self, config: &Path) -> serde_json::Value {
        let mut args = self.args.clone();
        args.extend([
            CREDENTIALS_FILE_FLAG.to_owned(),
            config.display().to_string(),
        ]);
        serde_json::json!({ "command": self.command, "args": args })
    }

    /// The MCP config file at `path` naming it, for a coordinator: as [`Self::config`], its
    /// entry also naming the file itself (`--credentials-file <path>`), so the server reads its
    /// token there again when the token is rotated (`baton coordinator rotate`), however the
    /// agent started it.
    #[must_use]
    pub fn config_at(&self, path: &Path) -> serde_json::Value {
        let mut entry = self.entry();
        if let Some(args) = entry["args"].as_array_mut() {
            args.extend([
                CREDENTIALS_FILE_FLAG.into(),
                path.display().to_string().into(),
            ]);
        }
        serde_json::json!({ "mcpServers": { SERVER_NAME: entry } })
    }

    /// The MCP config file naming it (`{"mcpServers": {"baton": …}}`), as Claude Code's
    /// `--mcp-config` and `baton mcp --credentials-file` read it.
    #[must_use]
    pub fn config(&self) -> serde_json::Value {
        serde_json::json!({ "mcpServers": { SERVER_NAME: self.entry() } })
    }
}

/// How to start a sub-task's agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Variables set for it (no secret: settings of the agent's own).
    pub env: Vec<(String, String)>,
    /// Its prompt detector profile.
    pub profile: Profile,
}

/// The launch of `command` with `args`: skip-permission flags when asked, then how it finds
/// Baton's MCP server, whose config (with the secrets) is the 0600 file at `config`:
/// `--mcp-config <config>` for most agents (Claude Code also `--strict-mcp-config`, so no other
/// MCP config is read, and `--allowedTools mcp__baton`, so Baton's tools need no permission
/// prompt); for Codex, whose MCP servers come from a `--config`
/// override on its command line, an override that names no secret: the server is started with
/// `--credentials-file <config>` and reads its credentials from that file; nothing for Gemini,
/// which reads [`GEMINI_SETTINGS`] in its worktree ([`worktree_writes`]).
#[must_use]
pub fn launch(
    command: &str,
    args: &[String],
    skip_permissions: bool,
    server: &McpServer,
    config: &Path,
) -> Launch {
    let kind = AgentKind::from_command(command);
    let mut argv = vec![command.to_owned()];
    argv.extend(args.iter().cloned());
    if skip_permissions {
        argv.extend(
            kind.skip_permission_flags()
                .iter()
                .map(|flag| (*flag).to_owned()),
        );
    }
    match kind {
        AgentKind::Codex => argv.extend(["--config".to_owned(), codex_override(server, config)]),
        // Gemini finds its MCP servers in the worktree's .gemini/settings.json
        // (`worktree_writes`), not on its command line.
        AgentKind::Gemini => {}
        AgentKind::Claude => {
            if server.is_sub_task() {
                // Its hooks tell the daemon what it does (`baton hook`), beside the user's own;
                // the sub-task instructions reach the model in its system prompt (the only
                // channel Claude Code honours besides the user's CLAUDE.md, which is theirs).
                argv.extend([
                    "--settings".to_owned(),
                    claude_hook_settings(server, config),
                    "--append-system-prompt".to_owned(),
                    preamble::block(),
                ]);
            }
            argv.extend([
                "--mcp-config".to_owned(),
                config.display().to_string(),
                // Only that server: a `.mcp.json` further up (the project's, holding the
                // coordinator's entry, above a sub-task's worktree) is not the agent's to use,
                // and would stop it at an approval dialog.
                "--strict-mcp-config".to_owned(),
                // Baton's own tools need no one's permission: a sub-task must be able to
                // finish (`signal_done`) without a human answering a permission prompt.
                "--allowedTools".to_owned(),
                CLAUDE_ALLOWED_TOOLS.to_owned(),
            ]);
        }
        _ => argv.extend(["--mcp-config".to_owned(), config.display().to_string()]),
    }
    let env = kind.env();
    Launch {
        argv,
        env,
        profile: demo_profile(args).unwrap_or(kind.profile()),
    }
}

/// Claude Code's setting for moving long MCP calls to the background (see [`launch`]).
pub const CLAUDE_MCP_AUTO_BACKGROUND_VAR: &str = "CLAUDE_CODE_MCP_AUTO_BACKGROUND_MS";

/// The Claude Code hook events Baton listens to: each says what the agent does (see
/// `core::state::hook_state`).
pub const CLAUDE_HOOK_EVENTS: [&str; 8] = [
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "PermissionRequest",
    "Notification",
    "Stop",
    "StopFailure",
];

/// Longest a hook may run, in seconds, as Claude Code reads it (`baton hook` gives up sooner,
/// see `mcp::hook::HOOK_REQUEST_TIMEOUT_MS`).
pub const CLAUDE_HOOK_TIMEOUT_S: u64 = 5;

/// Claude Code's settings with Baton's hooks, as the JSON string `--settings` takes (merged
/// with the user's own settings and hooks; nothing is written anywhere). Each hook runs
/// `baton hook` for `server`'s task with the credentials in `config`: no secret in it.
#[must_use]
pub fn claude_hook_settings(server: &McpServer, config: &Path) -> String {
    let flag = |name: &str| {
        server
            .args
            .windows(2)
            .find(|pair| pair[0] == name)
            .map(|pair| pair[1].clone())
            .unwrap_or_default()
    };
    let (url, task) = (flag("--url"), flag("--task-id"));
    let hooks: serde_json::Map<String, serde_json::Value> = CLAUDE_HOOK_EVENTS
        .iter()
        .map(|event| {
            let command = [
                server.command.as_str(),
                "hook",
                "--url",
                &url,
                "--task-id",
                &task,
                CREDENTIALS_FILE_FLAG,
                &config.display().to_string(),
                "--event",
                event,
            ]
            .map(shell_quote)
            .join(" ");
            // Whatever happens (even a `baton` that no longer takes these arguments), the hook
            // ends well: Claude Code blocks a tool call whose hook exits with 2.
            let command = format!("{command} || true");
            let entry = serde_json::json!([{ "hooks": [{
                "type": "command",
                "command": command,
                "timeout": CLAUDE_HOOK_TIMEOUT_S,
            }] }]);
            ((*event).to_owned(), entry)
        })
        .collect();
    serde_json::json!({ "hooks": hooks }).to_string()
}

/// `text` as one word for a POSIX shell: single-quoted, a `'` inside it closed, escaped and
/// reopened; plain words as they are.
fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@".contains(&b));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// The profile of `baton demo-agent` (whose screens are those of its `--kind`, Claude's by
/// default), when `args` start it.
fn demo_profile(args: &[String]) -> Option<Profile> {
    if args.first().map(String::as_str) != Some(DEMO_AGENT_SUBCOMMAND) {
        return None;
    }
    let kind = args
        .windows(2)
        .find(|pair| pair[0] == "--kind")
        .map_or("claude", |pair| pair[1].as_str());
    Some(match kind {
        "codex" => Profile::Codex,
        "gemini" => Profile::Gemini,
        _ => Profile::Claude,
    })
}

/// The `baton` subcommand of the demo agent.
pub const DEMO_AGENT_SUBCOMMAND: &str = "demo-agent";

/// The tools Claude Code may call without asking: every tool of Baton's MCP server (Claude Code
/// names them `mcp__<server>__<tool>`; the server's name alone allows them all).
pub const CLAUDE_ALLOWED_TOOLS: &str = "mcp__baton";

/// Where Gemini CLI reads a project's MCP servers, relative to the worktree.
pub const GEMINI_SETTINGS: &str = ".gemini/settings.json";

/// A file Baton writes into a sub-task's worktree for its agent before the agent starts, and
/// takes out again before the task's branch is merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorktreeWrite {
    /// The file, relative to the worktree.
    pub path: &'static str,
    /// What it is: how Baton's part goes in, and comes out again.
    pub kind: WorktreeFileKind,
}

/// What the agent `command` runs needs written into its worktree, in order: the sub-task
/// instruction block into the instruction file it reads ([`preamble::Target`]), and Baton's
/// server into the settings it reads its MCP servers from (Gemini CLI's [`GEMINI_SETTINGS`]:
/// it takes no MCP config on its command line). Data for the engine, which writes what is
/// listed and names no agent kind.
#[must_use]
pub fn worktree_writes(command: &str) -> Vec<WorktreeWrite> {
    let kind = AgentKind::from_command(command);
    let instructions = preamble::Target::of(kind).file().map(|path| WorktreeWrite {
        path,
        kind: WorktreeFileKind::Instructions,
    });
    let settings = (kind == AgentKind::Gemini).then_some(WorktreeWrite {
        path: GEMINI_SETTINGS,
        kind: WorktreeFileKind::McpSettings,
    });
    instructions.into_iter().chain(settings).collect()
}

impl WorktreeWrite {
    /// Whether what it holds names the agent's MCP config file (it is written once the config
    /// exists).
    #[must_use]
    pub const fn names_config(self) -> bool {
        matches!(self.kind, WorktreeFileKind::McpSettings)
    }

    /// The file with Baton's part in it, from what it holds now (`None`: no file); `None` when
    /// nothing is to be written (it holds an instruction block already, from its branch). An
    /// MCP settings entry names the credentials file `config` of `server`, not the secret: the
    /// worktree is the agent's, and what it commits must hold no token.
    ///
    /// # Errors
    /// Settings there that are not JSON holding an object (the user must fix them).
    pub fn content(
        self,
        existing: Option<&[u8]>,
        server: &McpServer,
        config: &Path,
    ) -> Result<Option<Vec<u8>>, mcp_json::McpJsonError> {
        match self.kind {
            WorktreeFileKind::Instructions => {
                Ok(preamble::Target::Markdown(self.path).inject(existing))
            }
            WorktreeFileKind::McpSettings => {
                mcp_json::register(self.path, existing, server.entry_reading(config))
                    .map(|(written, _)| Some(written))
            }
            // Only earlier versions of Baton wrote it (see `WorktreeFileKind::ClaudeSettings`).
            WorktreeFileKind::ClaudeSettings => Ok(None),
        }
    }
}

/// Variables set for the agent `command` runs (no secret: settings of the agent's own), as
/// [`launch`] sets them.
#[must_use]
pub fn launch_env(command: &str) -> Vec<(String, String)> {
    AgentKind::from_command(command).env()
}

/// The prompt detector profile of the agent `command` runs.
#[must_use]
pub fn profile_of(command: &str) -> Profile {
    AgentKind::from_command(command).profile()
}

/// `mcp_servers.baton={ command = "…", args = ["…", …], default_tools_approval_mode = "approve" }`:
/// TOML, every string a JSON string literal (a TOML basic string), the credentials file in place
/// of the environment, and Baton's tools callable without an approval prompt (Codex asks for
/// every MCP tool call otherwise, and a sub-task must be able to finish with no human there).
fn codex_override(server: &McpServer, config: &Path) -> String {
    let quote = |text: &str| serde_json::Value::String(text.to_owned()).to_string();
    let mut args: Vec<String> = server.args.iter().map(|a| quote(a)).collect();
    args.push(quote("--credentials-file"));
    args.push(quote(&config.display().to_string()));
    format!(
        "mcp_servers.{SERVER_NAME}={{ command = {}, args = [{}], default_tools_approval_mode = \"approve\" }}",
        quote(&server.command),
        args.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn only_a_sub_tasks_claude_code_gets_hooks_and_every_claude_code_keeps_waits_in_its_turn() {
        let launch = McpLaunch::default();
        let coordinator = McpServer::coordinator(
            &launch,
            crate::core::ids::CoordinatorId::from_random([5; 16]),
            "token",
        );
        let config = Path::new("/tmp/c.json");
        let lead = super::launch("claude", &[], false, &coordinator, config);
        assert!(!lead.argv.iter().any(|arg| arg == "--settings"), "{lead:?}");
        let sub = super::launch("claude", &[], false, &server(), config);
        assert!(sub.argv.iter().any(|arg| arg == "--settings"), "{sub:?}");
        for launched in [lead, sub] {
            assert_eq!(
                launched.env,
                [(
                    super::CLAUDE_MCP_AUTO_BACKGROUND_VAR.to_owned(),
                    "0".to_owned()
                )]
            );
        }
        assert!(
            super::launch("codex", &[], false, &server(), config)
                .env
                .is_empty()
        );
    }

    #[test]
    fn skip_permissions_as_root_are_refused_for_claude_code_only() {
        let refused = AgentKind::Claude.skip_permissions_refused(true).unwrap();
        assert!(refused.contains("IS_SANDBOX=1"), "{refused}");
        assert_eq!(AgentKind::Claude.skip_permissions_refused(false), None);
        assert_eq!(AgentKind::Codex.skip_permissions_refused(true), None);
    }

    #[test]
    fn claude_codes_hooks_run_baton_hook_for_its_task_with_no_secret() {
        let launch = McpLaunch {
            command: "/opt/my baton/baton".into(),
            url: "http://127.0.0.1:7777".into(),
        };
        let task = TaskId::from_random([7; 16]);
        let server = McpServer::sub_task(&launch, task, "secret-done-token");
        let settings = super::claude_hook_settings(&server, Path::new("/s/it's.json"));
        assert!(!settings.contains("secret-done-token"), "{settings}");
        let settings: serde_json::Value = serde_json::from_str(&settings).unwrap();
        let stop = settings["hooks"]["Stop"][0]["hooks"][0]["command"]
            .as_str()
            .unwrap();
        assert_eq!(
            stop,
            format!(
                "'/opt/my baton/baton' hook --url http://127.0.0.1:7777 --task-id {task} \
                 --credentials-file '/s/it'\\''s.json' --event Stop || true"
            )
        );
        assert_eq!(
            settings["hooks"].as_object().unwrap().len(),
            super::CLAUDE_HOOK_EVENTS.len()
        );
    }

    use super::{AgentKind, McpLaunch, McpServer, launch};
    use crate::core::detector::Profile;
    use crate::core::ids::TaskId;

    #[test]
    fn kinds_come_from_the_command_file_name() {
        assert_eq!(AgentKind::from_command("claude"), AgentKind::Claude);
        assert_eq!(
            AgentKind::from_command("/usr/local/bin/Codex"),
            AgentKind::Codex
        );
        assert_eq!(AgentKind::from_command("gemini-cli"), AgentKind::Gemini);
        assert_eq!(
            AgentKind::from_command("/opt/claude/bin/aider"),
            AgentKind::Other,
            "the file name decides"
        );
    }

    #[test]
    fn the_demo_agent_is_read_with_the_profile_of_its_kind() {
        let config = Path::new("/tmp/c.json");
        let argv =
            |args: &[&str]| -> Vec<String> { args.iter().map(|a| (*a).to_owned()).collect() };
        let demo = launch(
            "/bin/baton",
            &argv(&["demo-agent"]),
            false,
            &server(),
            config,
        );
        assert_eq!(demo.profile, Profile::Claude);
        assert_eq!(
            demo.argv,
            argv(&["/bin/baton", "demo-agent", "--mcp-config", "/tmp/c.json"])
        );
        let codex = launch(
            "/bin/baton",
            &argv(&["demo-agent", "--kind", "codex"]),
            false,
            &server(),
            config,
        );
        assert_eq!(codex.profile, Profile::Codex);
        let other = launch("/bin/baton", &argv(&["mcp"]), false, &server(), config);
        assert_eq!(other.profile, Profile::Generic);
    }

    fn server() -> McpServer {
        McpServer::sub_task(
            &McpLaunch {
                command: "/opt/baton/bin/baton".into(),
                url: "http://127.0.0.1:7778".into(),
            },
            TaskId::from_random([3; 16]),
            "secret-done-token",
        )
    }

    #[test]
    fn claude_may_call_every_tool_of_batons_server() {
        assert_eq!(
            super::CLAUDE_ALLOWED_TOOLS,
            format!("mcp__{}", super::SERVER_NAME)
        );
    }

    #[test]
    fn skip_permission_flags_are_added_only_when_asked() {
        let config = Path::new("/tmp/c.json");
        let args = vec!["--model".to_owned(), "opus".to_owned()];
        let hooks = super::claude_hook_settings(&server(), config);
        let block = super::preamble::block();
        assert_eq!(
            launch("claude", &args, true, &server(), config).argv,
            [
                "claude",
                "--model",
                "opus",
                "--dangerously-skip-permissions",
                "--settings",
                &hooks,
                "--append-system-prompt",
                &block,
                "--mcp-config",
                "/tmp/c.json",
                "--strict-mcp-config",
                "--allowedTools",
                "mcp__baton"
            ]
        );
        assert_eq!(
            launch("claude", &[], false, &server(), config).argv,
            [
                "claude",
                "--settings",
                &hooks,
                "--append-system-prompt",
                &block,
                "--mcp-config",
                "/tmp/c.json",
                "--strict-mcp-config",
                "--allowedTools",
                "mcp__baton"
            ]
        );
        let aider = launch("aider", &[], true, &server(), config);
        assert_eq!(aider.argv, ["aider", "--mcp-config", "/tmp/c.json"]);
        assert_eq!(aider.profile, Profile::Generic);
    }

    #[test]
    fn a_sub_tasks_server_has_its_role_and_keeps_its_secret_in_the_environment() {
        let server = server();
        let task = TaskId::from_random([3; 16]).to_string();
        assert_eq!(
            server.args,
            [
                "mcp",
                "--url",
                "http://127.0.0.1:7778",
                "--task-id",
                task.as_str()
            ]
        );
        let config = server.config();
        let entry = &config["mcpServers"]["baton"];
        assert_eq!(entry["command"], "/opt/baton/bin/baton");
        assert_eq!(entry["env"]["BATON_DONE_TOKEN"], "secret-done-token");
        assert!(!format!("{server:?}").contains("secret-done-token"));
    }

    #[test]
    fn codex_gets_an_override_without_any_secret() {
        let launched = launch(
            "/usr/bin/codex",
            &[],
            false,
            &server(),
            Path::new("/tmp/c \"x\".json"),
        );
        assert_eq!(launched.argv[1], "--config");
        let task = TaskId::from_random([3; 16]);
        assert_eq!(
            launched.argv[2],
            format!(
                r#"mcp_servers.baton={{ command = "/opt/baton/bin/baton", args = ["mcp", "--url", "http://127.0.0.1:7778", "--task-id", "{task}", "--credentials-file", "/tmp/c \"x\".json"], default_tools_approval_mode = "approve" }}"#
            )
        );
        assert!(
            launched
                .argv
                .iter()
                .all(|a| !a.contains("secret-done-token"))
        );
    }
}
