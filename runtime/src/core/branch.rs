//! Branch names: the one Baton derives for a sub-task, and the rules a caller's branch name
//! (`baseBranch`) must follow before it reaches git.

use std::fmt;

use super::ids::TaskId;

/// Where under a repository's root sub-task worktrees go: `<root>/.worktrees/<branch>`.
pub const WORKTREES_DIR: &str = ".worktrees";

/// Longest slug of a task name inside a branch name.
pub const BRANCH_SLUG_CHARS_MAX: usize = 72;
/// Characters of the task id that make a branch name unique.
const BRANCH_ID_CHARS: usize = 6;

/// The branch for a new sub-task: `task/<slug>-<first six characters of its id>`.
///
/// The slug is the name lower-cased, with every run of characters other than `a`-`z` and `0`-`9`
/// turned into one `-`, cut at [`BRANCH_SLUG_CHARS_MAX`] characters, without leading or trailing
/// `-`. A name with no letters or digits gives `task/-<id>`.
#[must_use]
pub fn task_branch(name: &str, id: TaskId) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if slug.len() >= BRANCH_SLUG_CHARS_MAX {
            break;
        }
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_matches('-');
    let id = id.to_string();
    format!("task/{slug}-{}", &id[..BRANCH_ID_CHARS])
}

/// Why a branch name was refused. Displayed after the field's name: `baseBranch must not …`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} {rule}")]
pub struct BranchNameError {
    /// The field that held the name (`baseBranch`, `branchName`, …).
    pub field: &'static str,
    /// The first rule it broke.
    pub rule: BranchRule,
}

/// The rules of [`validate_branch_name`], in the order they are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BranchRule {
    /// Empty or only white space.
    Blank,
    /// Exactly `HEAD`.
    Head,
    /// Starts with `-`, `.` or `/`.
    Starts(char),
    /// Ends with `/` or `.`.
    Ends(char),
    /// A path component ends in `.lock`.
    LockComponent,
    /// A control character, a space, or one of `` ` $ ( ) { } [ ] < > \ ' * ? ! # ; | & " : ^ ~ ``.
    InvalidCharacters,
    /// Contains `..`.
    DotDot,
    /// Contains `//`.
    DoubleSlash,
    /// A path component starts with `.`.
    DotComponent,
    /// Exactly `@`, or holds `@{`: git's names for HEAD and for reflog entries, never a branch.
    At,
    /// Starts with `refs/`: a full ref name, not a branch's (`refs/heads/main` is `main`).
    FullRef,
}

impl fmt::Display for BranchRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BranchRule::Blank => f.write_str("must be a non-empty string"),
            BranchRule::Head => f.write_str("must not be \"HEAD\""),
            BranchRule::Starts(c) => write!(f, "must not start with \"{c}\""),
            BranchRule::Ends(c) => write!(f, "must not end with \"{c}\""),
            BranchRule::LockComponent => f.write_str("must not contain a \".lock\" path component"),
            BranchRule::InvalidCharacters => f.write_str("contains invalid characters"),
            BranchRule::DotDot => f.write_str("must not contain \"..\""),
            BranchRule::DoubleSlash => f.write_str("must not contain \"//\""),
            BranchRule::DotComponent => {
                f.write_str("must not contain a component starting with \".\"")
            }
            BranchRule::At => f.write_str("must name a branch, not \"@\" or a \"@{…}\" revision"),
            BranchRule::FullRef => {
                f.write_str("must name a branch by its short name, not a full ref (refs/…)")
            }
        }
    }
}

/// Characters git refuses in ref names or that a shell would interpret.
const FORBIDDEN: &str = "`$(){}[]<>\\'*?!#;|&\":^~";

/// Checks a branch name a caller gave for `field`; returns it unchanged if it is acceptable.
///
/// # Errors
/// The first rule of [`BranchRule`] the name breaks.
pub fn validate_branch_name<'a>(
    value: &'a str,
    field: &'static str,
) -> Result<&'a str, BranchNameError> {
    let fail = |rule| Err(BranchNameError { field, rule });
    if value.trim().is_empty() {
        return fail(BranchRule::Blank);
    }
    if value == "HEAD" {
        return fail(BranchRule::Head);
    }
    if value == "@" || value.contains("@{") {
        return fail(BranchRule::At);
    }
    if value.starts_with("refs/") {
        return fail(BranchRule::FullRef);
    }
    if let Some(c) = value
        .chars()
        .next()
        .filter(|c| matches!(c, '-' | '.' | '/'))
    {
        return fail(BranchRule::Starts(c));
    }
    if let Some(c) = value.chars().last().filter(|c| matches!(c, '/' | '.')) {
        return fail(BranchRule::Ends(c));
    }
    if value
        .split('/')
        .any(|component| component.ends_with(".lock"))
    {
        return fail(BranchRule::LockComponent);
    }
    if value
        .chars()
        .any(|c| c.is_control() || c == ' ' || FORBIDDEN.contains(c))
    {
        return fail(BranchRule::InvalidCharacters);
    }
    if value.contains("..") {
        return fail(BranchRule::DotDot);
    }
    if value.contains("//") {
        return fail(BranchRule::DoubleSlash);
    }
    if value.split('/').any(|component| component.starts_with('.')) {
        return fail(BranchRule::DotComponent);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::{BranchRule, task_branch, validate_branch_name};
    use crate::core::ids::TaskId;

    fn id() -> TaskId {
        "abcdef12-3456-4789-8abc-def012345678".parse().unwrap()
    }

    #[test]
    fn task_branches_slug_the_name_and_end_with_the_id_prefix() {
        let check =
            |name: &str, expected: &str| assert_eq!(task_branch(name, id()), expected, "{name:?}");
        check("Fix the login bug", "task/fix-the-login-bug-abcdef");
        check("  --Add: JSON output!! ", "task/add-json-output-abcdef");
        check("Ünïcödé naïve", "task/n-c-d-na-ve-abcdef");
        check("!!!", "task/-abcdef");
        check("", "task/-abcdef");
        let long = "word ".repeat(40);
        let branch = task_branch(&long, id());
        assert!(
            branch.len() <= "task/".len() + 72 + "-abcdef".len(),
            "{branch}"
        );
        assert!(!branch.contains("--"), "{branch}");
    }

    #[test]
    fn branch_names_are_checked_rule_by_rule_first_failure_wins() {
        let check = |value: &str, rule: Option<BranchRule>| {
            let got = validate_branch_name(value, "baseBranch")
                .err()
                .map(|e| e.rule);
            assert_eq!(got, rule, "{value:?}");
        };
        check("main", None);
        check("feature/login-2", None);
        check("release@2", None);
        check("", Some(BranchRule::Blank));
        check("   ", Some(BranchRule::Blank));
        check("HEAD", Some(BranchRule::Head));
        check("-x", Some(BranchRule::Starts('-')));
        check(".x", Some(BranchRule::Starts('.')));
        check("/x", Some(BranchRule::Starts('/')));
        check("x/", Some(BranchRule::Ends('/')));
        check("x.", Some(BranchRule::Ends('.')));
        check("a/b.lock/c", Some(BranchRule::LockComponent));
        check("a b", Some(BranchRule::InvalidCharacters));
        check("a\tb", Some(BranchRule::InvalidCharacters));
        check("a$b", Some(BranchRule::InvalidCharacters));
        check("a{b", Some(BranchRule::InvalidCharacters));
        check("a@{b", Some(BranchRule::At));
        check("@", Some(BranchRule::At));
        check("main@{1}", Some(BranchRule::At));
        check("refs/heads/main", Some(BranchRule::FullRef));
        check("a..b", Some(BranchRule::DotDot));
        check("a//b", Some(BranchRule::DoubleSlash));
        check("a/.b", Some(BranchRule::DotComponent));
    }

    #[test]
    fn errors_name_the_field_first() {
        let error = validate_branch_name("HEAD", "baseBranch").unwrap_err();
        assert_eq!(error.to_string(), "baseBranch must not be \"HEAD\"");
        let error = validate_branch_name("a b", "branchName").unwrap_err();
        assert_eq!(error.to_string(), "branchName contains invalid characters");
    }
}
