//! `baton demo-agent`: a small program that behaves like a coding agent in a terminal, so that a
//! whole coordinator flow runs on a real machine without a model service.
//!
//! It runs a script in the simulator's agent-behaviour language ([`crate::agents::script`]):
//! the same file runs in a scenario and for real. It prints its kind's screens
//! ([`crate::agents::frames`], Claude's by default, so the prompt detector reads it as it reads
//! Claude Code), takes the prompts typed into its terminal, edits and commits files in its
//! working directory (its worktree), and calls tools by launching the MCP server named in the
//! `--mcp-config` it was given and speaking MCP to it over stdio, as a real agent does. It
//! starts that server first thing, as Claude Code does, so a sub-task's server tells the daemon
//! it is up before the assignment is typed.
//!
//! Without `--script` it runs one of two built-in scripts: a sub-task's (`sub-task.toml`: write
//! `notes/<slug>.md` about its assignment, commit, signal done) or, with `--role coordinator`, a
//! coordinator's (`coordinator.toml`: make two sub-tasks, wait for each, review, merge, close).
//!
//! With `--scripts DIR` a sub-task runs the script of its own task: `DIR/<slug>.toml`, the slug
//! read from its worktree's directory, named after its branch `task/<slug>-<id>`, or else
//! `DIR/default.toml` ([`script_for_worktree`]). Every sub-task of a coordinator is started with
//! the same command, so this is how the differential test (`runtime/tests/differential.rs`) gives
//! each of a scenario's `[[agent]]`s its script, as the simulator matches them.
//!
//! Scripts see two names besides the results they keep: `${prompt}` (the last prompt, without
//! Baton's sub-task preamble) and `${slug}` (its first words, lower-case, joined by `-`).
//!
//! Layout: this module (arguments, scripts, the run loop); `mcp` (the MCP client over stdio);
//! `term` (the terminal: raw mode, input, output).

pub mod mcp;
pub mod term;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

use crate::agents::frames;
use crate::agents::script::{self, Action, after_preamble, prompt_text, terminal_reply};
use crate::core::detector::Profile;

/// The built-in sub-task script.
pub const SUB_TASK_SCRIPT: &str = include_str!("sub-task.toml");
/// The built-in coordinator script.
pub const COORDINATOR_SCRIPT: &str = include_str!("coordinator.toml");
/// Largest script file read.
pub const SCRIPT_BYTES_MAX: usize = 1 << 20;
/// Longest slug made of a prompt, in characters.
pub const SLUG_CHARS_MAX: usize = 40;
/// Who the demo agent's commits are by.
pub const DEMO_IDENTITY: (&str, &str) = ("Baton demo agent", "demo-agent@baton.invalid");
/// Longest tool result shown on the screen, in characters (the rest is cut with `…`).
pub const RESULT_SHOWN_CHARS_MAX: usize = 160;

/// Which built-in script to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Takes an assignment, commits, signals done.
    SubTask,
    /// Makes sub-tasks, waits for them, merges them.
    Coordinator,
}

/// How to run.
#[derive(Clone, Debug)]
pub struct DemoArgs {
    /// A script file; a built-in one when absent.
    pub script: Option<PathBuf>,
    /// A directory of scripts, one per task: the one named after the task's branch slug (see
    /// [`script_for_worktree`]), chosen by the directory it runs in. Ignored with `script`.
    pub scripts: Option<PathBuf>,
    /// Which built-in script, without `script`.
    pub role: Role,
    /// Whose screens it prints.
    pub profile: Profile,
    /// The MCP config naming Baton's server (`--mcp-config`, as Claude Code takes it).
    pub mcp_config: Option<PathBuf>,
    /// A first prompt, taken instead of the first one typed (as `claude "…"` takes it).
    pub prompt: Option<String>,
}

/// A script: what it does once, then again and again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// Done once, first.
    pub once: Vec<Action>,
    /// Done after `once`, again and again until its terminal closes.
    pub repeat: Vec<Action>,
}

/// Reads a script: `script = [ … ]` and, optionally, `repeat = [ … ]`; casts load relative to
/// `dir`.
///
/// # Errors
/// The text is no TOML, has other keys, an item is no action, or `repeat` waits for nothing
/// (it would spin).
pub fn parse_script(text: &str, dir: &Path) -> Result<Script, String> {
    let table: toml::Table = text.parse().map_err(|e| format!("not TOML: {e}"))?;
    if let Some(key) = table
        .keys()
        .find(|k| !["script", "repeat"].contains(&k.as_str()))
    {
        return Err(format!(
            "unknown key {key:?}: a script has `script` and `repeat`"
        ));
    }
    // At most one byte past the cast limit is read (the parser refuses what is over it): a
    // script naming /dev/zero or a FIFO ends with an error, not a hang or an exhausted memory.
    let load = |file: &str| {
        let path = dir.join(file);
        crate::adapters::files::read_user_file(&path, script::CAST_BYTES_MAX as u64)
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    let list = |key: &str| -> Result<Vec<Action>, String> {
        let Some(value) = table.get(key) else {
            return Ok(Vec::new());
        };
        let items = value
            .as_array()
            .ok_or_else(|| format!("{key} must be a list of actions"))?;
        let mut actions = Vec::new();
        for (n, item) in items.iter().enumerate() {
            let item = item
                .as_table()
                .ok_or_else(|| format!("{key} item {}: not a table", n + 1))?;
            actions.extend(
                script::parse_action(item, &load)
                    .map_err(|e| format!("{key} item {}: {e}", n + 1))?,
            );
        }
        Ok(actions)
    };
    let script = Script {
        once: list("script")?,
        repeat: list("repeat")?,
    };
    let waits = |a: &Action| {
        matches!(
            a,
            Action::WaitForPrompt
                | Action::WaitForAnswer
                | Action::WaitForReply
                | Action::Hang
                | Action::Exit(_)
        )
    };
    if !script.repeat.is_empty() && !script.repeat.iter().any(waits) {
        return Err("repeat must wait for a prompt (or end): it would spin".to_owned());
    }
    Ok(script)
}

/// The script `args` name.
///
/// # Errors
/// The file cannot be read or is no script.
pub fn load_script(args: &DemoArgs) -> anyhow::Result<Script> {
    let chosen = match (&args.script, &args.scripts) {
        (Some(path), _) => Some(path.clone()),
        (None, Some(dir)) => {
            let cwd = std::env::current_dir().context("reading the working directory")?;
            script_for_worktree(dir, &cwd, |path| path.is_file())
        }
        (None, None) => None,
    };
    match &chosen {
        None => {
            let text = match args.role {
                Role::SubTask => SUB_TASK_SCRIPT,
                Role::Coordinator => COORDINATOR_SCRIPT,
            };
            parse_script(text, Path::new(".")).map_err(|e| anyhow::anyhow!("built-in script: {e}"))
        }
        Some(path) => {
            let bytes = crate::adapters::files::read_user_file(path, SCRIPT_BYTES_MAX as u64)
                .with_context(|| format!("reading {}", path.display()))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| anyhow::anyhow!("{} is not UTF-8", path.display()))?;
            let dir = path.parent().unwrap_or(Path::new("."));
            parse_script(&text, dir).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        }
    }
}

/// The file in `dir` a sub-task working in `worktree` runs: `<slug>.toml`, where the
/// worktree's directory is named after its branch, `task/<slug>-<id>` (`core::branch`), or else
/// `default.toml`; `None` (the built-in script) when neither `exists`. So a scenario's agents,
/// each named by its task, run for real as they run in the simulator, which matches them the same
/// way.
#[must_use]
pub fn script_for_worktree(
    dir: &Path,
    worktree: &Path,
    exists: impl Fn(&Path) -> bool,
) -> Option<PathBuf> {
    let name = worktree.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let slug = name.rsplit_once('-').map_or(name, |(slug, _)| slug);
    [format!("{slug}.toml"), "default.toml".to_owned()]
        .into_iter()
        .filter(|file| !slug.is_empty() || file == "default.toml")
        .map(|file| dir.join(file))
        .find(|path| exists(path))
}

/// The slug of a prompt: its first words, lower-case letters and digits, joined by `-`, at most
/// [`SLUG_CHARS_MAX`] characters; `task` when it has none.
#[must_use]
pub fn slug(prompt: &str) -> String {
    let mut out = String::new();
    for word in prompt
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let word = word.to_ascii_lowercase();
        let sep = usize::from(!out.is_empty());
        if out.len() + sep + word.len() > SLUG_CHARS_MAX {
            break;
        }
        if sep == 1 {
            out.push('-');
        }
        out.push_str(&word);
    }
    if out.is_empty() {
        "task".to_owned()
    } else {
        out
    }
}

/// Runs the demo agent in this process's terminal until its script ends, its terminal closes
/// or Ctrl-C is typed: the exit code.
///
/// # Errors
/// The script cannot be read, the MCP server cannot be started, or the terminal failed.
pub async fn run(args: DemoArgs) -> anyhow::Result<i32> {
    let script = load_script(&args)?;
    let mut terminal = term::Terminal::open()?;
    let mcp = match &args.mcp_config {
        Some(path) => match mcp::Mcp::start(path).await {
            Ok(mcp) => Some(mcp),
            Err(error) => {
                terminal
                    .line(&format!("✗ baton MCP server: {error:#}"))
                    .await?;
                None
            }
        },
        None => None,
    };
    let mut agent = Agent {
        terminal,
        profile: args.profile,
        mcp,
        bound: BTreeMap::new(),
        first_prompt: args.prompt,
    };
    let mut end = agent.actions(&script.once).await?;
    while end.is_none() && !script.repeat.is_empty() {
        end = agent.actions(&script.repeat).await?;
    }
    if end.is_none() {
        // The script ended: stay, as an agent at its prompt does, until the terminal closes.
        end = Some(agent.terminal.closed().await);
    }
    if let Some(mcp) = agent.mcp.take() {
        mcp.stop().await;
    }
    Ok(end.unwrap_or(0))
}

struct Agent {
    terminal: term::Terminal,
    profile: Profile,
    mcp: Option<mcp::Mcp>,
    bound: BTreeMap<String, Value>,
    first_prompt: Option<String>,
}

impl Agent {
    /// Does `actions`; `Some(code)` when the agent is to end with that exit code.
    async fn actions(&mut self, actions: &[Action]) -> anyhow::Result<Option<i32>> {
        for action in actions {
            if let Some(code) = self.action(action).await? {
                return Ok(Some(code));
            }
        }
        Ok(None)
    }

    async fn action(&mut self, action: &Action) -> anyhow::Result<Option<i32>> {
        match action {
            Action::Print(frame) => {
                self.terminal
                    .print(&frames::bytes(self.profile, *frame))
                    .await?
            }
            Action::Raw(text) => self.terminal.print(text.as_bytes()).await?,
            Action::Pause(ms) => crate::time::sleep(Duration::from_millis(*ms)).await,
            Action::WaitForPrompt => {
                let typed = match self.first_prompt.take() {
                    Some(prompt) => prompt,
                    None => loop {
                        match self.terminal.submitted().await {
                            term::Input::Line(bytes) => {
                                if let Some(text) = prompt_text(&bytes) {
                                    break text;
                                }
                            }
                            term::Input::Closed(code) => return Ok(Some(code)),
                        }
                    },
                };
                let mut echo = typed.clone();
                echo.push_str("\r\n");
                self.terminal.print(echo.as_bytes()).await?;
                let prompt = after_preamble(&typed).unwrap_or(&typed).trim().to_owned();
                self.bound
                    .insert("slug".into(), Value::String(slug(&prompt)));
                self.bound.insert("prompt".into(), Value::String(prompt));
            }
            Action::WaitForAnswer => {
                if let term::Input::Closed(code) = self.terminal.submitted().await {
                    return Ok(Some(code));
                }
            }
            Action::WaitForReply => {
                if let term::Input::Closed(code) = self.terminal.until(terminal_reply).await {
                    return Ok(Some(code));
                }
            }
            Action::SignalDone(token) => {
                if token.is_some() {
                    self.terminal
                        .line("✗ signal_done: the demo agent's MCP server holds its own token")
                        .await?;
                } else {
                    self.tool("signal_done", serde_json::Map::new(), None)
                        .await?;
                }
            }
            Action::Hook { event, .. } => {
                // Its hooks are the simulator's to play: the demo agent has no hook settings.
                self.terminal
                    .line(&format!("✗ hook {event}: the demo agent fires no hooks"))
                    .await?;
            }
            Action::Tool { name, args, bind } => match script::fill(args, &self.bound) {
                Ok(args) => self.tool(name, args, bind.as_deref()).await?,
                Err(error) => self.terminal.line(&format!("✗ {name}: {error}")).await?,
            },
            Action::Edit { path, content } => {
                let done = self.edit(path, content);
                self.report(&format!("edit {path}"), done).await?;
            }
            Action::Delete(path) => {
                let done = script::fill_text(path, &self.bound)
                    .map_err(anyhow::Error::msg)
                    .and_then(|path| {
                        std::fs::remove_file(&path).with_context(|| format!("removing {path}"))
                    });
                self.report(&format!("delete {path}"), done).await?;
            }
            Action::Commit(message) => {
                let done = script::fill_text(message, &self.bound)
                    .map_err(anyhow::Error::msg)
                    .and_then(|message| commit(&message));
                self.report(&format!("commit {message:?}"), done).await?;
            }
            Action::Cast(events) => {
                let mut clock = 0;
                for (at, data) in events {
                    crate::time::sleep(Duration::from_millis(at.saturating_sub(clock))).await;
                    clock = clock.max(*at);
                    self.terminal.print(data).await?;
                }
            }
            Action::Hang => std::future::pending::<()>().await,
            Action::Crash => std::process::abort(),
            Action::Exit(code) => return Ok(Some(*code)),
        }
        Ok(None)
    }

    fn edit(&self, path: &str, content: &str) -> anyhow::Result<()> {
        let path = script::fill_text(path, &self.bound).map_err(anyhow::Error::msg)?;
        let content = script::fill_text(content, &self.bound).map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            Path::new(&path)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_))),
            "{path}: only a relative path inside the working directory"
        );
        if let Some(dir) = Path::new(&path).parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("making {}", dir.display()))?;
        }
        std::fs::write(&path, content).with_context(|| format!("writing {path}"))
    }

    async fn report(&mut self, what: &str, done: anyhow::Result<()>) -> anyhow::Result<()> {
        match done {
            Ok(()) => self.terminal.line(&format!("⏺ {what}")).await,
            Err(error) => self.terminal.line(&format!("✗ {what}: {error:#}")).await,
        }
    }

    /// Calls `name` on Baton's MCP server, shows what came back, and keeps it as `bind`.
    async fn tool(
        &mut self,
        name: &str,
        args: serde_json::Map<String, Value>,
        bind: Option<&str>,
    ) -> anyhow::Result<()> {
        let Some(mcp) = &self.mcp else {
            return self
                .terminal
                .line(&format!("✗ {name}: no MCP server (give --mcp-config)"))
                .await;
        };
        let shown_args = Value::Object(args.clone()).to_string();
        self.terminal
            .line(&format!("⏺ baton · {name}({})", cut(&shown_args)))
            .await?;
        match mcp.call(name, args).await {
            Ok(text) => {
                self.terminal.line(&format!("  ⎿ {}", cut(&text))).await?;
                if let Some(bind) = bind {
                    let value = serde_json::from_str(&text)
                        .unwrap_or_else(|_| serde_json::json!({ "text": text }));
                    self.bound.insert(bind.to_owned(), value);
                }
            }
            Err(error) => {
                self.terminal
                    .line(&format!("  ⎿ ✗ {}", cut(&error)))
                    .await?
            }
        }
        Ok(())
    }
}

fn cut(text: &str) -> String {
    let one_line = text.replace(['\r', '\n'], " ");
    let mut shown: String = one_line.chars().take(RESULT_SHOWN_CHARS_MAX).collect();
    if shown.len() < one_line.len() {
        shown.push('…');
    }
    shown
}

/// Commits everything in the working directory, as the demo agent (its own name, so the user's
/// configuration is not needed and not used).
fn commit(message: &str) -> anyhow::Result<()> {
    let git = |args: &[&str]| {
        crate::adapters::git::run_as(Path::new("."), DEMO_IDENTITY, args)
            .map_err(anyhow::Error::msg)
    };
    git(&["add", "-A"])?;
    git(&["commit", "-q", "-m", message])
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{COORDINATOR_SCRIPT, SUB_TASK_SCRIPT, parse_script, script_for_worktree, slug};
    use crate::agents::script::Action;

    #[test]
    fn a_task_runs_the_script_named_after_its_branch_slug_or_the_default() {
        let dir = Path::new("/s");
        let worktree = Path::new("/repo/.worktrees/task/feat-x-d70d32");
        let all = |_: &Path| true;
        assert_eq!(
            script_for_worktree(dir, worktree, all),
            Some(dir.join("feat-x.toml"))
        );
        let only_default = |p: &Path| p.ends_with("default.toml");
        assert_eq!(
            script_for_worktree(dir, worktree, only_default),
            Some(dir.join("default.toml"))
        );
        assert_eq!(script_for_worktree(dir, worktree, |_| false), None);
        assert_eq!(
            script_for_worktree(dir, Path::new("/repo/.worktrees/task/-d70d32"), all),
            Some(dir.join("default.toml")),
            "a name with no letters or digits has no script of its own"
        );
    }

    #[test]
    fn a_cast_that_is_no_regular_file_is_refused_not_read_forever() {
        let dir = tempfile::tempdir().unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.path().join("fifo.cast"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        for cast in ["fifo.cast", "/dev/zero"] {
            let text = format!("script = [{{ cast = \"{cast}\" }}]");
            let error = parse_script(&text, dir.path()).unwrap_err();
            assert!(error.contains("not a regular file"), "{cast}: {error}");
        }
    }

    #[test]
    fn the_built_in_scripts_read() {
        let sub = parse_script(SUB_TASK_SCRIPT, Path::new(".")).unwrap();
        assert!(sub.once.contains(&Action::SignalDone(None)));
        let lead = parse_script(COORDINATOR_SCRIPT, Path::new(".")).unwrap();
        let tools: Vec<&str> = lead
            .once
            .iter()
            .filter_map(|a| match a {
                Action::Tool { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            tools.iter().filter(|t| **t == "create_task").count(),
            2,
            "{tools:?}"
        );
        assert!(tools.contains(&"merge_task") && tools.contains(&"close_task"));
    }

    #[test]
    fn bad_scripts_are_refused() {
        let error = |text: &str| parse_script(text, Path::new(".")).unwrap_err();
        assert!(error("script = 3").contains("list of actions"));
        assert!(error("scripts = []").contains("unknown key"));
        assert!(error("repeat = [{ print = \"busy\" }]").contains("spin"));
        assert!(error("script = [{ fly = true }]").contains("script item 1"));
    }

    #[test]
    fn a_slug_is_the_prompts_first_words() {
        assert_eq!(slug("Write the alpha notes"), "write-the-alpha-notes");
        assert_eq!(slug("  Fix: bug #12!  "), "fix-bug-12");
        assert_eq!(slug("…"), "task");
        let long = slug(&"word ".repeat(30));
        assert!(long.len() <= super::SLUG_CHARS_MAX && long.ends_with("word"));
    }
}
