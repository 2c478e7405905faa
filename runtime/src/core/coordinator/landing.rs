//! What a sub-task may do with its finished work ([`Policy`]), and the checks its coordinator
//! requires before it lands ([`RequiredCheck`]), read from a `create_task` request.
//!
//! Under `review` (the default) a sub-task only signals that it is done, and its coordinator
//! reviews and merges. Under `land` it may also land itself (`land_self`): Baton then runs the
//! required checks in its worktree and lands only if each passes. The policy is fixed at creation:
//! the sub-task's MCP server offers its tools from its start.

use serde_json::Value;

/// Required checks one task may have at most.
pub const CHECKS_PER_TASK_MAX: usize = 8;
/// Characters a required check's command line may have at most.
pub const CHECK_COMMAND_CHARS_MAX: usize = 2_000;
/// Characters a required check's name may have at most.
pub const CHECK_NAME_CHARS_MAX: usize = 200;
/// Time a required check gets when its request names none: five minutes.
pub const CHECK_TIMEOUT_MS_DEFAULT: u64 = 300_000;
/// The shortest time limit a required check may be given: one second.
pub const CHECK_TIMEOUT_MS_MIN: u64 = 1_000;
/// The longest time limit a required check may be given: thirty minutes.
pub const CHECK_TIMEOUT_MS_MAX: u64 = 1_800_000;
/// The time limits of one task's required checks together, at most (four hours: as many checks
/// as a task may have, each at its longest). A landing runs them one after another, and its
/// caller waits for them.
pub const CHECKS_TOTAL_MS_MAX: u64 = CHECKS_PER_TASK_MAX as u64 * CHECK_TIMEOUT_MS_MAX;

/// What a sub-task may do with its finished work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// It signals that it is done; its coordinator reviews and merges.
    #[default]
    Review,
    /// It may also land itself, once the required checks pass.
    Land,
}

impl Policy {
    /// Its name on the wire and in the state file.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Policy::Review => "review",
            Policy::Land => "land",
        }
    }

    /// The policy named `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Policy::Review, Policy::Land]
            .into_iter()
            .find(|policy| policy.name() == name)
    }
}

/// A check the coordinator requires before a sub-task lands: a command line Baton runs in the
/// task's worktree, which passes when it exits with status 0 within its time limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequiredCheck {
    /// What it is called in reports (its command line unless the request named it).
    pub name: String,
    /// The command line, run by the shell.
    pub command: String,
    /// How long it may run.
    pub timeout_ms: u64,
}

/// A `create_task` request's `policy` and `checks`, checked: the policy (`review` when absent)
/// and the checks (none when absent; only with `land`). The error is the message for the caller.
///
/// # Errors
/// A policy other than `review` or `land`; checks that are not an array of objects each with a
/// non-empty one-line `command` (and optionally `name` and `timeoutMs`), more than
/// [`CHECKS_PER_TASK_MAX`] of them, limits out of their bounds; checks with `review`. (Their
/// limits together are bounded by [`CHECKS_TOTAL_MS_MAX`] by these rules alone.)
pub fn read(
    policy: Option<&Value>,
    checks: Option<&Value>,
) -> Result<(Policy, Vec<RequiredCheck>), String> {
    let policy = match policy {
        None => Policy::Review,
        Some(Value::String(name)) => Policy::from_name(name)
            .ok_or_else(|| r#"policy must be "review" or "land""#.to_owned())?,
        Some(_) => return Err(r#"policy must be "review" or "land""#.to_owned()),
    };
    let Some(checks) = checks else {
        return Ok((policy, Vec::new()));
    };
    let Value::Array(items) = checks else {
        return Err("checks must be an array".to_owned());
    };
    if policy != Policy::Land && !items.is_empty() {
        return Err(
            r#"checks need policy "land": under "review" the coordinator checks the work itself"#
                .to_owned(),
        );
    }
    if items.len() > CHECKS_PER_TASK_MAX {
        return Err(format!(
            "checks must contain {CHECKS_PER_TASK_MAX} checks or fewer"
        ));
    }
    let checks = items
        .iter()
        .map(read_check)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((policy, checks))
}

fn read_check(item: &Value) -> Result<RequiredCheck, String> {
    let Value::Object(fields) = item else {
        return Err("each check must be an object with a command".to_owned());
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !["command", "name", "timeoutMs"].contains(&k.as_str()))
    {
        return Err(format!(
            "check field {unknown:?} is not known (a check has command, name and timeoutMs)"
        ));
    }
    let command = match fields.get("command") {
        Some(Value::String(command)) if !command.trim().is_empty() => command.trim(),
        _ => return Err("check command must be a non-empty string".to_owned()),
    };
    if command.contains(['\n', '\r']) || command.chars().count() > CHECK_COMMAND_CHARS_MAX {
        return Err(format!(
            "check command must be one line of {CHECK_COMMAND_CHARS_MAX} characters or fewer"
        ));
    }
    if let Some(hidden) = crate::core::text::hidden_in(command) {
        return Err(format!(
            "check command must not hold control or format characters (it holds U+{:04X})",
            u32::from(hidden)
        ));
    }
    let name = match fields.get("name") {
        None => command,
        Some(Value::String(name)) if !name.trim().is_empty() => name.trim(),
        Some(_) => return Err("check name must be a non-empty string".to_owned()),
    };
    if name.chars().count() > CHECK_NAME_CHARS_MAX {
        return Err(format!(
            "check name must be {CHECK_NAME_CHARS_MAX} characters or fewer"
        ));
    }
    if let Some(hidden) = crate::core::text::hidden_in(name) {
        return Err(format!(
            "check name must not hold control or format characters (it holds U+{:04X})",
            u32::from(hidden)
        ));
    }
    let timeout_ms = match fields.get("timeoutMs") {
        None => CHECK_TIMEOUT_MS_DEFAULT,
        Some(value) => value
            .as_u64()
            .filter(|ms| (CHECK_TIMEOUT_MS_MIN..=CHECK_TIMEOUT_MS_MAX).contains(ms))
            .ok_or_else(|| {
                format!(
                    "check timeoutMs must be a whole number from {CHECK_TIMEOUT_MS_MIN} to \
                     {CHECK_TIMEOUT_MS_MAX}"
                )
            })?,
    };
    Ok(RequiredCheck {
        name: name.to_owned(),
        command: command.to_owned(),
        timeout_ms,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{CHECK_TIMEOUT_MS_DEFAULT, CHECKS_PER_TASK_MAX, Policy, RequiredCheck, read};

    fn checked(
        policy: Option<serde_json::Value>,
        checks: Option<serde_json::Value>,
    ) -> Result<(Policy, Vec<RequiredCheck>), String> {
        read(policy.as_ref(), checks.as_ref())
    }

    #[test]
    fn without_a_policy_a_task_is_reviewed_and_has_no_checks() {
        assert_eq!(checked(None, None), Ok((Policy::Review, Vec::new())));
        assert_eq!(
            checked(Some(json!("review")), Some(json!([]))),
            Ok((Policy::Review, Vec::new()))
        );
    }

    #[test]
    fn a_landing_task_reads_its_checks_with_their_defaults() {
        let (policy, checks) = checked(
            Some(json!("land")),
            Some(json!([
                { "command": "  cargo test -q  " },
                { "command": "npm run lint", "name": "lint", "timeoutMs": 60_000 }
            ])),
        )
        .unwrap();
        assert_eq!(policy, Policy::Land);
        assert_eq!(
            checks,
            vec![
                RequiredCheck {
                    name: "cargo test -q".into(),
                    command: "cargo test -q".into(),
                    timeout_ms: CHECK_TIMEOUT_MS_DEFAULT,
                },
                RequiredCheck {
                    name: "lint".into(),
                    command: "npm run lint".into(),
                    timeout_ms: 60_000,
                },
            ]
        );
    }

    #[test]
    fn bad_policies_and_checks_are_refused_with_what_is_wrong() {
        let many: Vec<_> = (0..=CHECKS_PER_TASK_MAX)
            .map(|i| json!({ "command": format!("true {i}") }))
            .collect();
        let cases = [
            (json!("merge"), json!([]), "policy must be"),
            (json!(1), json!([]), "policy must be"),
            (
                json!("review"),
                json!([{ "command": "true" }]),
                "checks need policy \"land\"",
            ),
            (
                json!("land"),
                json!({ "command": "true" }),
                "checks must be an array",
            ),
            (
                json!("land"),
                json!(many),
                "checks must contain 8 checks or fewer",
            ),
            (
                json!("land"),
                json!(["true"]),
                "each check must be an object",
            ),
            (
                json!("land"),
                json!([{ "command": " " }]),
                "check command must be a non-empty",
            ),
            (
                json!("land"),
                json!([{ "command": "a\nb" }]),
                "check command must be one line",
            ),
            (
                json!("land"),
                json!([{ "command": "a\u{202e}b" }]),
                "control or format",
            ),
            (
                json!("land"),
                json!([{ "command": "true", "name": "" }]),
                "check name must be",
            ),
            (
                json!("land"),
                json!([{ "command": "true", "name": "x".repeat(201) }]),
                "200 characters",
            ),
            (
                json!("land"),
                json!([{ "command": "true", "timeoutMs": 999 }]),
                "from 1000 to",
            ),
            (
                json!("land"),
                json!([{ "command": "true", "timeoutMs": 1.5e3 }]),
                "whole number",
            ),
            (
                json!("land"),
                json!([{ "command": "true", "env": {} }]),
                "\"env\" is not known",
            ),
        ];
        for (policy, checks, expected) in cases {
            let error = checked(Some(policy.clone()), Some(checks.clone()))
                .expect_err(&format!("{policy} {checks} was taken"));
            assert!(error.contains(expected), "{policy} {checks}: {error}");
        }
    }

    #[test]
    fn a_policy_is_named_as_it_is_read() {
        for policy in [Policy::Review, Policy::Land] {
            assert_eq!(Policy::from_name(policy.name()), Some(policy));
        }
        assert_eq!(Policy::default(), Policy::Review);
    }
}
