//! The sub-task instruction block: a short, marker-delimited text that tells a sub-task's agent
//! how it finishes (calling `signal_done`). Claude Code gets it on its command line
//! (`--append-system-prompt`: nothing written); agents that read a Markdown instruction file get
//! it appended to theirs in the sub-task's worktree, taken out again before the task's branch is
//! merged, so the user's file ends as it began (MCP spec §4). Every agent also reads it in the
//! preamble typed with its assignment.
//!
//! Pure: the engine reads and writes the files through the `Files` port. Where Baton departs from
//! the reference: injection is idempotent (a file that already holds a block is left alone), and
//! a strip removes every block, not the first; when the file is still exactly what Baton wrote,
//! the strip gives back the original bytes, so a user's file is byte-identical afterwards (or
//! absent, if Baton created it) whatever its formatting.

use serde_json::{Map, Value};

use super::AgentKind;

/// The line that opens the block.
pub const BLOCK_START: &str = "<sub-task-mode>";
/// The line that closes it.
pub const BLOCK_END: &str = "</sub-task-mode>";
/// The settings key earlier versions of Baton put the block under in Claude Code's
/// `.claude/settings.local.json` (which never reached the model). Only stripped now, for tasks
/// such a version made.
pub const SYSTEM_PROMPT_KEY: &str = "systemPrompt";
/// The settings key earlier versions of Baton listed its server under in the same file. Only
/// stripped now.
pub const DISABLED_MCPJSON_KEY: &str = "disabledMcpjsonServers";

/// The block, without a trailing newline.
#[must_use]
pub fn block() -> String {
    [
        BLOCK_START,
        "You are a sub-task of a Baton coordinator. These rules come before any skill or hook:",
        "- When the work is done (committed, tests and type checks passing), call the \
         `signal_done` MCP tool. That is how you finish: do not offer to merge, open a pull \
         request or run a branch-finishing workflow.",
        "- If the requirements are unclear, or a step looks risky, ask: the user reads this \
         terminal.",
        BLOCK_END,
    ]
    .join("\n")
}

/// Where the block goes for an agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A Markdown instruction file at the worktree's root.
    Markdown(&'static str),
    /// Claude Code's `--append-system-prompt` (see `agents::launch`): nothing is written.
    /// `CLAUDE.md` is the user's; `systemPrompt` in its settings never reaches the model.
    ClaudeFlag,
    /// Nowhere but the preamble typed with the assignment: an agent Baton knows no instruction
    /// channel of.
    Typed,
}

impl Target {
    /// The target of an agent kind.
    #[must_use]
    pub const fn of(kind: AgentKind) -> Self {
        match kind {
            AgentKind::Codex | AgentKind::OpenCode => Target::Markdown("AGENTS.md"),
            AgentKind::Gemini => Target::Markdown("GEMINI.md"),
            AgentKind::Copilot => Target::Markdown(".agent.md"),
            AgentKind::Claude => Target::ClaudeFlag,
            AgentKind::Other => Target::Typed,
        }
    }

    /// The file it is written into, relative to the worktree; `None`: no file.
    #[must_use]
    pub const fn file(self) -> Option<&'static str> {
        match self {
            Target::Markdown(path) => Some(path),
            Target::ClaudeFlag | Target::Typed => None,
        }
    }

    /// The file with the block in it, from what is there now (`None`: no file); `None` when
    /// the file already holds a block (injection is idempotent), or the target is no file.
    #[must_use]
    pub fn inject(self, original: Option<&[u8]>) -> Option<Vec<u8>> {
        self.file()?;
        if original.is_some_and(|bytes| contains(bytes, BLOCK_START)) {
            return None;
        }
        let original = original.map(String::from_utf8_lossy).unwrap_or_default();
        Some(if original.is_empty() {
            block().into_bytes()
        } else {
            format!("{original}\n\n{}", block()).into_bytes()
        })
    }

    /// What to do with the file before the branch is merged, given what it holds now, what
    /// Baton wrote into it, and what was there before (`None`: no file).
    #[must_use]
    pub fn strip(self, current: &[u8], written: &[u8], original: Option<&[u8]>) -> Strip {
        strip_file(false, current, written, original)
    }
}

/// [`Target::strip`] for a file known by its kind: Claude Code's settings as earlier versions
/// wrote them (`settings`), else Markdown.
#[must_use]
pub fn strip_file(
    settings: bool,
    current: &[u8],
    written: &[u8],
    original: Option<&[u8]>,
) -> Strip {
    {
        if current == written {
            // Untouched since the injection: the original, byte for byte.
            return match original {
                Some(original) => Strip::Write(original.to_vec()),
                None => Strip::Remove,
            };
        }
        if !contains(current, BLOCK_START) {
            return Strip::Keep;
        }
        match settings {
            false => {
                let stripped = remove_blocks(&String::from_utf8_lossy(current));
                if stripped.trim().is_empty() && original.is_none() {
                    Strip::Remove
                } else {
                    Strip::Write(stripped.into_bytes())
                }
            }
            true => {
                let Ok(Value::Object(mut settings)) = serde_json::from_slice::<Value>(current)
                else {
                    return Strip::Keep;
                };
                if let Some(Value::String(prompt)) = settings.get(SYSTEM_PROMPT_KEY) {
                    let stripped = remove_blocks(prompt);
                    if stripped.trim().is_empty() {
                        settings.remove(SYSTEM_PROMPT_KEY);
                    } else {
                        settings.insert(SYSTEM_PROMPT_KEY.to_owned(), Value::String(stripped));
                    }
                }
                unlist_server(&mut settings, original);
                if settings.is_empty() && original.is_none() {
                    Strip::Remove
                } else {
                    Strip::Write(pretty(&settings))
                }
            }
        }
    }
}

/// Takes Baton's entry out of [`DISABLED_MCPJSON_KEY`] again, unless the user's own settings
/// listed it; the key goes when Baton made it and nothing else is in it.
fn unlist_server(settings: &mut Map<String, Value>, original: Option<&[u8]>) {
    let server = Value::String(super::SERVER_NAME.to_owned());
    let before = original
        .and_then(|bytes| serde_json::from_slice::<Value>(bytes).ok())
        .and_then(|value| value.get(DISABLED_MCPJSON_KEY).cloned());
    if before
        .as_ref()
        .and_then(Value::as_array)
        .is_some_and(|names| names.contains(&server))
    {
        return;
    }
    if let Some(Value::Array(names)) = settings.get_mut(DISABLED_MCPJSON_KEY) {
        names.retain(|name| name != &server);
        if names.is_empty() && before.is_none() {
            settings.remove(DISABLED_MCPJSON_KEY);
        }
    }
}

/// What to do before a merge with a file Baton wrote into a worktree, by its kind.
#[must_use]
pub fn strip_worktree_file(
    kind: crate::core::coordinator::WorktreeFileKind,
    current: &[u8],
    written: &[u8],
    original: Option<&[u8]>,
) -> Strip {
    use crate::core::coordinator::WorktreeFileKind;
    match kind {
        WorktreeFileKind::Instructions => strip_file(false, current, written, original),
        WorktreeFileKind::ClaudeSettings => strip_file(true, current, written, original),
        WorktreeFileKind::McpSettings => {
            match super::mcp_json::deregister_from(Some(current), original, written) {
                super::mcp_json::Undo::Write(bytes) => Strip::Write(bytes),
                super::mcp_json::Undo::Remove => Strip::Remove,
                super::mcp_json::Undo::Leave => Strip::Keep,
            }
        }
    }
}

/// What a strip does to the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Strip {
    /// Nothing: there is no block in it.
    Keep,
    /// Replace it with these bytes.
    Write(Vec<u8>),
    /// Remove it: Baton created it and nothing else is in it.
    Remove,
}

fn contains(bytes: &[u8], needle: &str) -> bool {
    bytes
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

fn pretty(settings: &Map<String, Value>) -> Vec<u8> {
    serde_json::to_vec_pretty(settings).unwrap_or_default()
}

/// `text` with every block taken out, and the blank lines the injection put around it: the
/// inverse of injecting into `text` (`X` → `X\n\n<block>` → `X`). A block with no end marker is
/// cut to the end of the text, so its instructions can never be committed.
#[must_use]
pub fn remove_blocks(text: &str) -> String {
    let mut text = text.to_owned();
    while let Some(start) = text.find(BLOCK_START) {
        text = remove_one(&text, start);
    }
    text
}

fn remove_one(text: &str, start: usize) -> String {
    let before = text[..start].strip_suffix("\n\n").unwrap_or(&text[..start]);
    let Some(end) = text[start..].find(BLOCK_END).map(|at| start + at) else {
        return before.to_owned();
    };
    let rest = &text[end + BLOCK_END.len()..];
    let after = rest.strip_prefix("\n\n").unwrap_or(rest);
    match (before.is_empty(), after.is_empty()) {
        (true, true) => String::new(),
        (true, false) => after.strip_prefix('\n').unwrap_or(after).to_owned(),
        (false, true) => before.to_owned(),
        (false, false) => format!("{before}\n\n{after}"),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use serde_json::Value;

    use super::{
        BLOCK_END, BLOCK_START, DISABLED_MCPJSON_KEY, SYSTEM_PROMPT_KEY, Strip, Target, block,
        remove_blocks, strip_file,
    };
    use crate::agents::AgentKind;

    /// `.claude/settings.local.json` as Baton wrote it before the block moved to Claude Code's
    /// command line: the block in `systemPrompt`, its server in `disabledMcpjsonServers`.
    fn settings_written_before(original: Option<&[u8]>) -> Vec<u8> {
        let mut settings = original
            .and_then(|bytes| serde_json::from_slice::<Value>(bytes).ok())
            .and_then(|value| value.as_object().cloned())
            .unwrap_or_default();
        let prompt = match settings.get(SYSTEM_PROMPT_KEY) {
            Some(Value::String(existing)) => format!("{existing}\n\n{}", block()),
            _ => block(),
        };
        settings.insert(SYSTEM_PROMPT_KEY.to_owned(), Value::String(prompt));
        let server = Value::String("baton".to_owned());
        match settings.get_mut(DISABLED_MCPJSON_KEY) {
            Some(Value::Array(names)) if names.contains(&server) => {}
            Some(Value::Array(names)) => names.push(server),
            _ => {
                settings.insert(DISABLED_MCPJSON_KEY.to_owned(), Value::Array(vec![server]));
            }
        }
        serde_json::to_vec_pretty(&settings).unwrap()
    }

    #[test]
    fn each_agent_has_its_channel_and_claude_md_is_never_one() {
        let file = |kind| Target::of(kind).file();
        assert_eq!(file(AgentKind::Codex), Some("AGENTS.md"));
        assert_eq!(file(AgentKind::OpenCode), Some("AGENTS.md"));
        assert_eq!(file(AgentKind::Gemini), Some("GEMINI.md"));
        assert_eq!(file(AgentKind::Copilot), Some(".agent.md"));
        assert_eq!(Target::of(AgentKind::Claude), Target::ClaudeFlag);
        assert_eq!(
            file(AgentKind::Claude),
            None,
            "nothing written for Claude Code"
        );
        assert_eq!(file(AgentKind::Other), None);
        assert_eq!(Target::ClaudeFlag.inject(None), None);
        assert_eq!(Target::Typed.inject(Some(b"x")), None);
        let text = block();
        assert!(text.starts_with(BLOCK_START) && text.ends_with(BLOCK_END));
        assert!(text.contains("signal_done"));
    }

    #[test]
    fn removal_undoes_the_spacing_the_injection_added() {
        let b = block();
        for (text, removed) in [
            (
                format!("existing content\n\n{b}"),
                "existing content".to_owned(),
            ),
            (
                format!("before\n\n{b}\n\nafter"),
                "before\n\nafter".to_owned(),
            ),
            (format!("{b}\n\nafter"), "after".to_owned()),
            (b.clone(), String::new()),
            (
                format!("before\n\n{BLOCK_START}\norphaned start"),
                "before".to_owned(),
            ),
            ("no block here".to_owned(), "no block here".to_owned()),
            (format!("one\n\n{b}\n\ntwo\n\n{b}"), "one\n\ntwo".to_owned()),
        ] {
            assert_eq!(remove_blocks(&text), removed, "{text:?}");
        }
    }

    #[test]
    fn injection_is_idempotent() {
        let target = Target::Markdown("AGENTS.md");
        let once = target.inject(Some(b"# Rules\n")).unwrap();
        assert_eq!(
            target.inject(Some(&once)),
            None,
            "a file with a block is left alone"
        );
        assert_eq!(target.inject(None).unwrap(), block().into_bytes());
        assert_eq!(target.inject(Some(b"")).unwrap(), block().into_bytes());
    }

    #[test]
    fn an_untouched_file_gets_its_original_bytes_back() {
        let target = Target::Markdown("AGENTS.md");
        let original = b"# Rules\n\n  spacing  kept\n";
        let written = target.inject(Some(original)).unwrap();
        assert_eq!(
            target.strip(&written, &written, Some(original)),
            Strip::Write(original.to_vec())
        );
        assert_eq!(
            target.strip(&written, &written, None),
            Strip::Remove,
            "Baton made it: it goes"
        );
        // Settings an earlier version wrote, untouched since: the user's bytes exactly.
        let original =
            b"{\"permissions\":{\"allow\":[\"Bash\"]},   \"systemPrompt\": \"be kind\"}\n";
        let written = settings_written_before(Some(original));
        assert_eq!(
            strip_file(true, &written, &written, Some(original)),
            Strip::Write(original.to_vec())
        );
        assert_eq!(strip_file(true, &written, &written, None), Strip::Remove);
    }

    #[test]
    fn a_file_the_agent_changed_too_loses_only_the_block() {
        let target = Target::Markdown("AGENTS.md");
        let written = target.inject(Some(b"# Rules")).unwrap();
        let mut changed = written.clone();
        changed.extend_from_slice(b"\n\nA rule the agent added.");
        assert_eq!(
            target.strip(&changed, &written, Some(b"# Rules")),
            Strip::Write(b"# Rules\n\nA rule the agent added.".to_vec())
        );
        assert_eq!(
            target.strip(b"# The agent rewrote it", &written, Some(b"# Rules")),
            Strip::Keep
        );
        let written = settings_written_before(None);
        let mut value: serde_json::Value = serde_json::from_slice(&written).unwrap();
        value["model"] = "opus".into();
        let changed = serde_json::to_vec(&value).unwrap();
        assert_eq!(
            strip_file(true, &changed, &written, None),
            Strip::Write(b"{\n  \"model\": \"opus\"\n}".to_vec()),
            "the key goes, the agent's setting stays"
        );
    }

    #[test]
    fn an_earlier_versions_server_entry_goes_with_the_block() {
        let original = b"{\"disabledMcpjsonServers\": [\"other\"]}";
        let written = settings_written_before(Some(original));
        let value: serde_json::Value = serde_json::from_slice(&written).unwrap();
        assert_eq!(
            value["disabledMcpjsonServers"],
            serde_json::json!(["other", "baton"])
        );
        // The agent changed the file too: the list loses only Baton's entry.
        let mut changed = value.clone();
        changed["model"] = "opus".into();
        let changed = serde_json::to_vec(&changed).unwrap();
        let Strip::Write(stripped) = strip_file(true, &changed, &written, Some(original)) else {
            panic!("a write");
        };
        let stripped: serde_json::Value = serde_json::from_slice(&stripped).unwrap();
        assert_eq!(
            stripped,
            serde_json::json!({ "disabledMcpjsonServers": ["other"], "model": "opus" })
        );
        // A user who had disabled it keeps it disabled.
        let theirs = b"{\"disabledMcpjsonServers\": [\"baton\"]}";
        let written = settings_written_before(Some(theirs));
        let mut changed: serde_json::Value = serde_json::from_slice(&written).unwrap();
        changed["model"] = "opus".into();
        let changed = serde_json::to_vec(&changed).unwrap();
        let Strip::Write(stripped) = strip_file(true, &changed, &written, Some(theirs)) else {
            panic!("a write");
        };
        let stripped: serde_json::Value = serde_json::from_slice(&stripped).unwrap();
        assert_eq!(
            stripped["disabledMcpjsonServers"],
            serde_json::json!(["baton"])
        );
    }

    proptest! {
        #[test]
        fn any_markdown_file_comes_back_byte_identical(original in "\\PC{0,200}") {
            prop_assume!(!original.contains(BLOCK_START));
            let target = Target::Markdown("AGENTS.md");
            let written = target.inject(Some(original.as_bytes())).unwrap();
            prop_assert_eq!(
                target.strip(&written, &written, Some(original.as_bytes())),
                Strip::Write(original.as_bytes().to_vec())
            );
            // And the algorithm alone, as when the file changed since: the same text.
            prop_assert_eq!(remove_blocks(&String::from_utf8_lossy(&written)), original);
        }
    }
}
