//! `baton mcp`'s command line and environment, read as the reference's MCP process reads them
//! (MCP spec §1.2), and the role they give it (§1.3).
//!
//! Flags: `--url <base>` (required), `--coordinator-id <id>`, `--task-id <id>`. A flag takes the
//! next argument when there is one and it is not empty (taken as it is, even if it starts with
//! `--`); the last of a repeated flag wins; anything else is ignored (agents' launchers append
//! flags of their own). Credentials come from the environment only, never argv (visible in
//! `ps`): the bearer token from [`TOKEN_VARS`], the sub-task's done token from
//! [`DONE_TOKEN_VARS`], Baton's name first, the reference's still read; or, with
//! `--credentials-file <config>`, from that MCP config file's `env` (see
//! [`CREDENTIALS_FILE_FLAG`]). A sub-task's done token is its credential (DESIGN): with no
//! bearer token, it is the bearer. These names are defined in `agents`, beside the entries that
//! launch this process.

use std::fmt;

use crate::agents::{CREDENTIALS_FILE_FLAG, DONE_TOKEN_VARS, SERVER_NAME, TOKEN_VARS};

/// What the process serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A coordinator (or a plain agent): every tool but `signal_done`.
    Coordinator,
    /// A sub-task: `signal_done` only.
    SubTask,
}

/// A secret read from the environment; its `Debug` form hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvSecret(String);

impl EnvSecret {
    /// The secret, for a request header.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EnvSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnvSecret(…)")
    }
}

/// A valid configuration of the process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McpArgs {
    /// The API's base URL, e.g. `http://127.0.0.1:7777`.
    pub url: String,
    /// `--coordinator-id`, if given.
    pub coordinator: Option<String>,
    /// `--task-id`, if given.
    pub task: Option<String>,
    /// The bearer token.
    pub token: EnvSecret,
    /// The sub-task's done token, if given.
    pub done_token: Option<EnvSecret>,
    /// The MCP config file the credentials came from (`--credentials-file`), read again for a
    /// new token when the daemon refuses the one held (the coordinator's was rotated).
    pub credentials_file: Option<std::path::PathBuf>,
}

/// Why the process cannot start: printed on stderr, exit status 1.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// No URL, or no credential.
    #[error(
        "usage: baton mcp --url <api base url> [--coordinator-id <id>] [--task-id <id>]\n\
         The bearer token comes from BATON_MCP_TOKEN (or PARALLEL_CODE_MCP_TOKEN), a sub-task's \
         done token from BATON_DONE_TOKEN (or PARALLEL_CODE_MCP_DONE_TOKEN)."
    )]
    Usage,
    /// An id that could not be sent in an HTTP header.
    #[error("Invalid --{flag}: it must not contain control characters")]
    InvalidId {
        /// `coordinator-id` or `task-id`.
        flag: &'static str,
    },
}

/// The value of `name` in `argv`, read by the rules of the module documentation: the next
/// argument when there is one and it is not empty; the last such flag wins.
#[must_use]
pub fn flag(argv: &[String], name: &str) -> Option<String> {
    let mut found = None;
    let mut rest = argv.iter().peekable();
    while let Some(argument) = rest.next() {
        if argument == name {
            if let Some(value) = rest.next_if(|value| !value.is_empty()) {
                found = Some(value.clone());
            }
        } else if matches!(
            argument.as_str(),
            "--url" | "--coordinator-id" | "--task-id" | CREDENTIALS_FILE_FLAG
        ) {
            // Another flag's value is not looked at as a flag.
            let _ = rest.next_if(|value| !value.is_empty());
        }
    }
    found
}

/// Largest credentials file read, in bytes.
pub const CREDENTIALS_FILE_BYTES_MAX: usize = 64 << 10;

/// The variables an MCP config file gives Baton's server (`mcpServers.baton.env`).
///
/// # Errors
/// The file is not such a config.
pub fn credentials_in(config: &[u8]) -> Result<Vec<(String, String)>, String> {
    let config: serde_json::Value =
        serde_json::from_slice(config).map_err(|e| format!("not JSON: {e}"))?;
    let env = config["mcpServers"][SERVER_NAME]["env"]
        .as_object()
        .ok_or("it names no mcpServers.baton.env")?;
    Ok(env
        .iter()
        .filter_map(|(name, value)| Some((name.clone(), value.as_str()?.to_owned())))
        .collect())
}

/// The bearer token an MCP config file holds now (the first of [`TOKEN_VARS`] set in it), for a
/// server that was refused the one it held.
#[must_use]
pub fn token_in(config: &[u8]) -> Option<EnvSecret> {
    let credentials = credentials_in(config).ok()?;
    TOKEN_VARS.iter().find_map(|name| {
        credentials
            .iter()
            .find(|(key, value)| key == name && !value.is_empty())
            .map(|(_, value)| EnvSecret(value.clone()))
    })
}

impl McpArgs {
    /// Reads the arguments after `mcp` and the environment (`env` answers a variable's value).
    ///
    /// # Errors
    /// No URL or no credential ([`ArgsError::Usage`]); an id with a control character, which
    /// would break (or inject) a header ([`ArgsError::InvalidId`]; the reference checked CR and
    /// LF only).
    pub fn parse(argv: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Self, ArgsError> {
        let url = flag(argv, "--url");
        let coordinator = flag(argv, "--coordinator-id");
        let task = flag(argv, "--task-id");
        let read = |names: &[&str]| {
            names
                .iter()
                .find_map(|name| env(name).filter(|value| !value.is_empty()))
                .map(EnvSecret)
        };
        let done_token = read(&DONE_TOKEN_VARS);
        let token = read(&TOKEN_VARS).or_else(|| done_token.clone().filter(|_| task.is_some()));
        let (Some(url), Some(token)) = (url, token) else {
            return Err(ArgsError::Usage);
        };
        for (flag, id) in [("coordinator-id", &coordinator), ("task-id", &task)] {
            if id
                .as_deref()
                .is_some_and(|id| id.chars().any(char::is_control))
            {
                return Err(ArgsError::InvalidId { flag });
            }
        }
        Ok(McpArgs {
            url,
            coordinator,
            task,
            token,
            done_token,
            credentials_file: flag(argv, CREDENTIALS_FILE_FLAG).map(std::path::PathBuf::from),
        })
    }

    /// The role: a sub-task when it has a task id and no coordinator id.
    #[must_use]
    pub const fn role(&self) -> Role {
        match (&self.task, &self.coordinator) {
            (Some(_), None) => Role::SubTask,
            _ => Role::Coordinator,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ArgsError, McpArgs, Role};

    fn args(argv: &[&str], env: &[(&str, &str)]) -> Result<McpArgs, ArgsError> {
        let argv: Vec<String> = argv.iter().map(|a| (*a).to_owned()).collect();
        McpArgs::parse(&argv, |name| {
            env.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    const TOKEN: (&str, &str) = ("BATON_MCP_TOKEN", "t0k3n");

    #[test]
    fn flags_take_the_next_argument_and_the_last_one_wins() {
        let parsed = args(
            &[
                "--url",
                "http://a",
                "--skip-permissions",
                "--url",
                "http://b",
                "--coordinator-id",
                "c",
            ],
            &[TOKEN],
        )
        .unwrap();
        assert_eq!(parsed.url, "http://b");
        assert_eq!(parsed.coordinator.as_deref(), Some("c"));
        assert_eq!(parsed.role(), Role::Coordinator);
        let verbatim = args(&["--url", "--task-id"], &[TOKEN]).unwrap();
        assert_eq!(
            verbatim.url, "--task-id",
            "a value is taken even if it starts with --"
        );
        let empty = args(
            &["--url", "http://a", "--task-id", "", "--task-id"],
            &[TOKEN],
        )
        .unwrap();
        assert_eq!(
            empty.task, None,
            "an empty value, or none, leaves the flag unset"
        );
    }

    #[test]
    fn roles_follow_the_ids() {
        let role = |argv: &[&str]| args(argv, &[TOKEN]).unwrap().role();
        assert_eq!(role(&["--url", "u", "--task-id", "t"]), Role::SubTask);
        assert_eq!(
            role(&["--url", "u", "--task-id", "t", "--coordinator-id", "c"]),
            Role::Coordinator
        );
        assert_eq!(role(&["--url", "u"]), Role::Coordinator, "a plain agent");
    }

    #[test]
    fn credentials_come_from_the_environment_in_order() {
        let both = args(
            &["--url", "u"],
            &[
                ("PARALLEL_CODE_MCP_TOKEN", "old"),
                ("BATON_MCP_TOKEN", "new"),
            ],
        )
        .unwrap();
        assert_eq!(both.token.expose(), "new");
        let reference = args(&["--url", "u"], &[("PARALLEL_CODE_MCP_TOKEN", "old")]).unwrap();
        assert_eq!(
            reference.token.expose(),
            "old",
            "the reference's name still works"
        );
        let empty = args(
            &["--url", "u"],
            &[("BATON_MCP_TOKEN", ""), ("PARALLEL_CODE_MCP_TOKEN", "x")],
        );
        assert_eq!(
            empty.unwrap().token.expose(),
            "x",
            "an empty variable counts as unset"
        );
        let sub_task = args(
            &["--url", "u", "--task-id", "t"],
            &[("BATON_DONE_TOKEN", "d")],
        )
        .unwrap();
        assert_eq!(
            sub_task.token.expose(),
            "d",
            "a sub-task's done token is its bearer"
        );
        assert_eq!(sub_task.done_token.as_ref().map(|d| d.expose()), Some("d"));
        assert_eq!(
            args(&["--url", "u"], &[("BATON_DONE_TOKEN", "d")]),
            Err(ArgsError::Usage),
            "without a task id a done token is no credential"
        );
        assert!(
            !format!("{sub_task:?}").contains("\"d\""),
            "secrets hide in Debug"
        );
    }

    #[test]
    fn a_flags_value_is_not_taken_for_a_flag() {
        let argv: Vec<String> = ["--url", "--task-id", "--task-id", "t"]
            .iter()
            .map(|a| (*a).to_owned())
            .collect();
        assert_eq!(super::flag(&argv, "--task-id").as_deref(), Some("t"));
        assert_eq!(super::flag(&argv, "--url").as_deref(), Some("--task-id"));
    }

    #[test]
    fn a_credentials_file_gives_the_servers_environment() {
        let config =
            br#"{"mcpServers":{"baton":{"env":{"BATON_DONE_TOKEN":"d","N":5}},"other":{}}}"#;
        assert_eq!(
            super::credentials_in(config),
            Ok(vec![("BATON_DONE_TOKEN".to_owned(), "d".to_owned())])
        );
        assert!(super::credentials_in(b"{}").is_err());
        assert!(super::credentials_in(b"garbage").is_err());
    }

    #[test]
    fn a_rotated_token_is_found_again_in_the_credentials_file() {
        let config = br#"{"mcpServers":{"baton":{"env":{"BATON_MCP_TOKEN":"new"}}}}"#;
        assert_eq!(super::token_in(config).map(|t| t.0), Some("new".to_owned()));
        let empty = br#"{"mcpServers":{"baton":{"env":{"BATON_MCP_TOKEN":""}}}}"#;
        assert_eq!(super::token_in(empty), None);
        assert_eq!(super::token_in(b"garbage"), None);
        let argv: Vec<String> = [
            "--url",
            "http://127.0.0.1:7777",
            "--credentials-file",
            "/s/c.json",
        ]
        .map(String::from)
        .to_vec();
        let parsed = McpArgs::parse(&argv, |name| {
            (name == "BATON_MCP_TOKEN").then(|| "t".into())
        });
        assert_eq!(
            parsed.unwrap().credentials_file.as_deref(),
            Some(std::path::Path::new("/s/c.json"))
        );
    }

    #[test]
    fn missing_or_unsafe_input_is_refused() {
        assert_eq!(args(&[], &[TOKEN]), Err(ArgsError::Usage));
        assert_eq!(args(&["--url", "u"], &[]), Err(ArgsError::Usage));
        assert_eq!(
            args(
                &["--url", "u", "--coordinator-id", "a\r\nX-Evil: 1"],
                &[TOKEN]
            ),
            Err(ArgsError::InvalidId {
                flag: "coordinator-id"
            })
        );
        assert_eq!(
            args(&["--url", "u", "--task-id", "t\u{7}"], &[TOKEN]),
            Err(ArgsError::InvalidId { flag: "task-id" })
        );
        let usage = ArgsError::Usage.to_string();
        for mentioned in [
            "--url",
            "--task-id",
            "--coordinator-id",
            "BATON_MCP_TOKEN",
            "PARALLEL_CODE_MCP_TOKEN",
        ] {
            assert!(usage.contains(mentioned), "{mentioned}");
        }
    }
}
