//! Running git: the CLI (no terminal, C locale, bounded in time and output, with a fallback
//! identity for commits), git2 work on the blocking pool, and what the CLI reports of the
//! repository's checkouts and their cleanliness.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use git2::Repository;
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::process::Command;

use super::{GIT_COMMAND_TIMEOUT_MS, GIT_MESSAGE_BYTES_MAX, GIT_STDOUT_BYTES_MAX, REPOSITORY_ENV};
use crate::ports::{Head, RepoError, WorktreeStatus};

/// How one git command ended and what it printed.
#[derive(Debug)]
pub(super) struct Output {
    /// The exit code; `None` if a signal ended the command.
    pub(super) code: Option<i32>,
    /// Standard output, at most [`GIT_STDOUT_BYTES_MAX`].
    pub(super) stdout: Vec<u8>,
    /// Whether standard output was longer than what was kept.
    pub(super) stdout_cut: bool,
    /// Error output, at most [`GIT_MESSAGE_BYTES_MAX`].
    pub(super) stderr: Vec<u8>,
}

impl Output {
    /// The command's failure as an error: `<what> failed: <what git said>`.
    pub(super) fn failure(&self, what: &str) -> RepoError {
        let said = String::from_utf8_lossy(&self.stderr);
        let said = if said.trim().is_empty() {
            let end = self.stdout.len().min(GIT_MESSAGE_BYTES_MAX);
            String::from_utf8_lossy(&self.stdout[..end])
        } else {
            said
        };
        match (said.trim(), self.code) {
            ("", Some(code)) => RepoError::Git(format!("{what} failed: exit status {code}")),
            ("", None) => RepoError::Git(format!("{what} failed: killed by a signal")),
            (said, _) => RepoError::Git(format!("{what} failed: {said}")),
        }
    }

    /// The output of a command that succeeded, else its failure.
    pub(super) fn ok(self, what: &str) -> Result<Output, RepoError> {
        if self.code == Some(0) {
            Ok(self)
        } else {
            Err(self.failure(what))
        }
    }

    pub(super) fn stderr_has(&self, text: &str) -> bool {
        String::from_utf8_lossy(&self.stderr).contains(text)
    }
}

/// Runs `git -C <dir> <args>`: no terminal, C locale (git's messages are matched), bounded in
/// time and output. An error only if git could not run or was stuck; a non-zero exit is
/// [`Output::code`].
pub(super) async fn run(dir: &Path, args: &[&OsStr]) -> Result<Output, RepoError> {
    run_with(dir, args, &[]).await
}

/// Runs `git -C <dir> <args>` to its end, as `identity` (name, address), blocking: for the
/// command-line tools that make a sample repository or commit as the demo agent, not for the
/// engine (its git work goes through [`GitRepo`]).
///
/// # Errors
/// Git could not run or failed; the text says which command and what git said.
pub fn run_as(dir: &Path, (name, email): (&str, &str), args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            &format!("user.name={name}"),
            "-c",
            &format!("user.email={email}"),
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running git: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The name and address commits are made under when the repository's configuration gives
/// none (a fresh machine): git would refuse to commit at all.
pub const FALLBACK_IDENTITY: (&str, &str) = ("Baton", "baton@localhost");

/// [`run`] for a command that makes a commit: the user's identity when configured, else
/// [`FALLBACK_IDENTITY`].
pub(super) async fn run_committing(dir: &Path, args: &[&OsStr]) -> Result<Output, RepoError> {
    // The user's own identity wins: from the configuration, or their environment.
    let configured = |key: &'static str, var: &'static str| async move {
        std::env::var_os(var).is_some()
            || run(dir, &["config", "--get", key].map(OsStr::new))
                .await
                .is_ok_and(|out| out.code == Some(0) && !out.stdout.trim_ascii().is_empty())
    };
    let mut env = Vec::new();
    if !configured("user.name", "GIT_AUTHOR_NAME").await {
        env.extend([
            ("GIT_AUTHOR_NAME", FALLBACK_IDENTITY.0),
            ("GIT_COMMITTER_NAME", FALLBACK_IDENTITY.0),
        ]);
    }
    if !configured("user.email", "GIT_AUTHOR_EMAIL").await {
        env.extend([
            ("GIT_AUTHOR_EMAIL", FALLBACK_IDENTITY.1),
            ("GIT_COMMITTER_EMAIL", FALLBACK_IDENTITY.1),
        ]);
    }
    run_with(dir, args, &env).await
}

async fn run_with(dir: &Path, args: &[&OsStr], env: &[(&str, &str)]) -> Result<Output, RepoError> {
    let mut command = Command::new("git");
    command
        .arg("-C")
        .arg(dir)
        .args(args)
        .envs(env.iter().copied())
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for name in REPOSITORY_ENV {
        command.env_remove(name);
    }
    let name = args.first().map_or("git".into(), |a| a.to_string_lossy());
    let mut child = command
        .spawn()
        .map_err(|e| RepoError::Git(format!("could not run git {name}: {e}")))?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let finished = async {
        let (stdout, stderr, status) = tokio::join!(
            read_capped(stdout, GIT_STDOUT_BYTES_MAX),
            read_capped(stderr, GIT_MESSAGE_BYTES_MAX),
            child.wait(),
        );
        let io = |e: std::io::Error| RepoError::Git(format!("git {name} failed: {e}"));
        let ((stdout, stdout_cut), (stderr, _)) = (stdout.map_err(io)?, stderr.map_err(io)?);
        Ok(Output {
            code: status.map_err(io)?.code(),
            stdout,
            stdout_cut,
            stderr,
        })
    };
    // On a timeout `child` is dropped on return, which kills it (`kill_on_drop`).
    tokio::time::timeout(Duration::from_millis(GIT_COMMAND_TIMEOUT_MS), finished)
        .await
        .unwrap_or_else(|_| {
            Err(RepoError::Git(format!(
                "git {name} timed out after {GIT_COMMAND_TIMEOUT_MS} ms"
            )))
        })
}

/// Reads a pipe to its end, keeping the first `cap` bytes; whether more came.
async fn read_capped(
    pipe: Option<impl AsyncRead + Unpin>,
    cap: usize,
) -> std::io::Result<(Vec<u8>, bool)> {
    let (mut kept, mut cut) = (Vec::new(), false);
    let Some(mut pipe) = pipe else {
        return Ok((kept, cut));
    };
    let mut chunk = [0u8; 8 * 1024];
    loop {
        let n = pipe.read(&mut chunk).await?;
        if n == 0 {
            return Ok((kept, cut));
        }
        let room = cap.saturating_sub(kept.len());
        cut |= n > room;
        kept.extend_from_slice(&chunk[..n.min(room)]);
    }
}

/// Runs git2 work on the blocking pool.
pub(super) async fn blocking<T, F>(work: F) -> Result<T, RepoError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, RepoError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| RepoError::Git(format!("git task failed: {e}")))?
}

/// A git2 error as a [`RepoError`], saying what was being done.
pub(super) fn git2_error(what: &'static str) -> impl Fn(git2::Error) -> RepoError {
    move |e| RepoError::Git(format!("{what}: {}", e.message()))
}

pub(super) fn open(dir: &Path) -> Result<Repository, RepoError> {
    Repository::open(dir).map_err(|e| {
        RepoError::Git(format!(
            "not a git repository: {}: {}",
            dir.display(),
            e.message()
        ))
    })
}

/// A checkout of the repository, as `git worktree list --porcelain` reports it.
#[derive(Debug)]
pub(super) struct Checkout {
    pub(super) path: PathBuf,
    /// The full ref checked out (`refs/heads/…`); `None` when detached or bare.
    pub(super) branch: Option<String>,
    /// Its directory is gone; git forgets it on the next prune.
    pub(super) prunable: bool,
    /// Locked (`git worktree lock`): not to be removed.
    pub(super) locked: bool,
}

/// The repository's checkouts, the main one first.
pub(super) async fn checkouts(root: &Path) -> Result<Vec<Checkout>, RepoError> {
    let what = "git worktree list";
    let out = run(
        root,
        &["worktree", "list", "--porcelain", "-z"].map(OsStr::new),
    )
    .await?
    .ok(what)?;
    if out.stdout_cut {
        return Err(RepoError::Git(format!(
            "{what} failed: more than {GIT_STDOUT_BYTES_MAX} bytes of output"
        )));
    }
    let mut list: Vec<Checkout> = Vec::new();
    for field in out.stdout.split(|b| *b == 0) {
        if let Some(path) = field.strip_prefix(b"worktree ") {
            list.push(Checkout {
                path: PathBuf::from(OsStr::from_bytes(path)),
                branch: None,
                prunable: false,
                locked: false,
            });
        } else if let Some(checkout) = list.last_mut() {
            if let Some(branch) = field.strip_prefix(b"branch ") {
                checkout.branch = Some(String::from_utf8_lossy(branch).into_owned());
            } else if field.starts_with(b"prunable") {
                checkout.prunable = true;
            } else if field.starts_with(b"locked") {
                checkout.locked = true;
            }
        }
    }
    Ok(list)
}

/// What the checkout at `dir` has checked out, at which commit, and its uncommitted paths
/// (untracked ones included, ignored ones not; a rename or copy by both its paths). Takes no
/// lock.
pub(super) async fn status(dir: &Path) -> Result<WorktreeStatus, RepoError> {
    let branch = run(
        dir,
        &["symbolic-ref", "-q", "--short", "HEAD"].map(OsStr::new),
    )
    .await?;
    let head = match branch.code {
        Some(0) => Head::Branch(String::from_utf8_lossy(&branch.stdout).trim().to_owned()),
        // `-q`: a detached HEAD is status 1 and nothing said.
        Some(1) if branch.stderr.is_empty() => Head::Detached,
        _ => return Err(branch.failure("git symbolic-ref")),
    };
    let commit = run(
        dir,
        &["rev-parse", "--verify", "-q", "HEAD"].map(OsStr::new),
    )
    .await?
    .ok("git rev-parse")?;
    let args = [
        "--no-optional-locks",
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
    ]
    .map(OsStr::new);
    let what = "git status";
    let out = run(dir, &args).await?.ok(what)?;
    if out.stdout_cut {
        return Err(RepoError::Git(format!(
            "{what} failed: more than {GIT_STDOUT_BYTES_MAX} bytes of output"
        )));
    }
    let mut dirty = std::collections::BTreeSet::new();
    let mut fields = out.stdout.split(|b| *b == 0).filter(|f| !f.is_empty());
    while let Some(entry) = fields.next() {
        let (Some(code), Some(path)) = (entry.get(..2), entry.get(3..)) else {
            continue;
        };
        dirty.insert(String::from_utf8_lossy(path).into_owned());
        // A rename or a copy: its other path follows.
        if code.iter().any(|c| matches!(c, b'R' | b'C'))
            && let Some(from) = fields.next()
        {
            dirty.insert(String::from_utf8_lossy(from).into_owned());
        }
    }
    Ok(WorktreeStatus {
        head,
        commit: String::from_utf8_lossy(&commit.stdout).trim().to_owned(),
        dirty: dirty.into_iter().collect(),
    })
}

/// Whether the checkout at `dir` has changes, untracked files included. Takes no lock, so the
/// checkout's index is not even refreshed.
pub(super) async fn is_dirty(dir: &Path) -> Result<bool, RepoError> {
    let args = ["--no-optional-locks", "status", "--porcelain"].map(OsStr::new);
    let out = run(dir, &args).await?.ok("git status")?;
    Ok(!out.stdout.is_empty())
}
