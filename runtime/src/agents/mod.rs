//! Agent kinds: how each CLI is launched, which prompt it shows, how it is given its MCP config.
//!
//! A minimal table for now; the MCP issue adds the config formats (Codex's TOML override),
//! preambles and prompt-delivery quirks.

use std::path::Path;

use crate::core::detector::Profile;

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

/// How to start a sub-task's agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Its prompt detector profile.
    pub profile: Profile,
}

/// The launch of `command` with `args`: skip-permission flags when asked, then the MCP config.
#[must_use]
pub fn launch(command: &str, args: &[String], skip_permissions: bool, mcp_config: &Path) -> Launch {
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
    argv.extend(["--mcp-config".to_owned(), mcp_config.display().to_string()]);
    Launch {
        argv,
        profile: kind.profile(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{AgentKind, launch};
    use crate::core::detector::Profile;

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
    fn skip_permission_flags_are_added_only_when_asked() {
        let config = Path::new("/tmp/c.json");
        let args = vec!["--model".to_owned(), "opus".to_owned()];
        assert_eq!(
            launch("claude", &args, true, config).argv,
            [
                "claude",
                "--model",
                "opus",
                "--dangerously-skip-permissions",
                "--mcp-config",
                "/tmp/c.json"
            ]
        );
        assert_eq!(
            launch("claude", &[], false, config).argv,
            ["claude", "--mcp-config", "/tmp/c.json"]
        );
        let aider = launch("aider", &[], true, config);
        assert_eq!(aider.argv, ["aider", "--mcp-config", "/tmp/c.json"]);
        assert_eq!(aider.profile, Profile::Generic);
    }
}
