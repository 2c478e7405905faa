//! The [`Repo`] port on real repositories: sub-task worktrees and branches, their diffs, and
//! merging them back.
//!
//! Two tools, each where it is exact:
//! - the git CLI wherever a user's working tree, index or refs change (worktree add and
//!   remove, commit, merge and fast-forwarding a checkout), and for the dirty check before a
//!   merge: it honours the user's hooks, filters, sparse checkout, LFS and config exactly as
//!   their own git does. Requires git 2.38 or newer (`git merge-tree --write-tree`).
//! - git2 where nothing of the user's changes: resolving branches and merge bases, line
//!   counts, and the diff, built in an in-memory index (the worktree's own index file is never
//!   written; the blobs and trees it hashes go into the object store, as `git add` would, for
//!   git's gc to collect).
//!
//! Invariants: a merge is computed without touching any working tree (`merge-tree`, then
//! `commit-tree`) and only then moves its target, by fast-forwarding the checkout that holds it
//! or by a compare-and-swap of the ref, so a refused or conflicting merge leaves every checkout
//! as it was; merges into one repository run one at a time. A worktree that could not be fully
//! created is removed with its branch.
//!
//! A new worktree gets a symlink to the root's `node_modules` (when the root has one), and
//! `/node_modules` goes into the repository's `info/exclude` (a `node_modules/` rule in
//! .gitignore matches directories, not a link): no diff, commit or status of Baton's or of the
//! agent's own git sees the link. Unix only (the link is a Unix symlink).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use git2::{
    BranchType, Delta, DiffFormat, DiffOptions, Index, IndexAddOption, IndexEntry, IndexTime, Oid,
    Patch, Repository,
};
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::process::Command;

use crate::ports::{
    BoxFuture, ChangedFile, Diff, FileChange, MergeOutcome, MergeRequest, Overlay, Repo, RepoError,
    WorktreeRequest,
};

/// Longest a git command may run, in milliseconds: a checkout of a large repository (LFS,
/// hooks) takes minutes at worst; a command still running after this is stuck and is killed.
pub const GIT_COMMAND_TIMEOUT_MS: u64 = 300_000;
/// Most of a git command's standard output kept, in bytes (worktree lists, conflicted paths,
/// object ids are far smaller); the rest is read and dropped so the command never blocks.
pub const GIT_STDOUT_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Most of a git command's error output kept and shown in an error message, in bytes: enough
/// for git's explanation, not a flood in the coordinator's context.
pub const GIT_MESSAGE_BYTES_MAX: usize = 4 * 1024;
/// Untracked files larger than this, in bytes, are listed in a diff but not read into it
/// (spec): a build artefact or data dump is no reading for a coordinator, and hashing it would
/// copy it into the object store.
pub const UNTRACKED_FILE_BYTES_MAX: u64 = 10 * 1024 * 1024;
/// Longest diff text built, in bytes: the engine shows far less (`core::diff::DIFF_CHARS_MAX`);
/// the bound keeps a huge change from filling memory.
pub const DIFF_TEXT_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Wait before retrying a merge that met another git process's lock, in milliseconds (spec):
/// long enough for an editor's or a hook's git command to finish.
pub const MERGE_RETRY_DELAY_MS: u64 = 2_000;
/// Waits before each new attempt at deleting a task's branch that met another git process's
/// lock (`packed-refs.lock`: a `git gc --auto` an agent's commit started in the background
/// packs refs for a moment), in milliseconds.
pub const BRANCH_DELETE_RETRY_MS: [u64; 3] = [200, 1_000, 2_000];
/// Waits before each attempt at deleting a worktree's directory, in milliseconds: a process
/// that is still exiting (an agent, a file watcher) may hold or recreate files for a moment.
pub const REMOVE_RETRY_DELAYS_MS: [u64; 4] = [0, 500, 1_500, 3_000];
/// The dependency directory a new worktree links to the root's.
pub const NODE_MODULES: &str = "node_modules";
/// Variables that would point a git command at another repository than its `-C` directory
/// (set when Baton itself runs under a git hook).
const REPOSITORY_ENV: [&str; 4] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
];

/// Git repositories on disk. See the module documentation.
#[derive(Debug, Default)]
pub struct GitRepo {
    /// One lock per repository root (canonical path) with a merge running or waiting; entries
    /// nobody holds are dropped on the next merge, so the map is bounded by the merges in
    /// flight.
    merges: Mutex<BTreeMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
}

impl GitRepo {
    /// A repository adapter with no merge running.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn merge_lock(&self, root: &Path) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.merges.lock().unwrap_or_else(PoisonError::into_inner);
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        Arc::clone(locks.entry(root.to_owned()).or_default())
    }

    async fn merge(&self, request: MergeRequest) -> Result<MergeOutcome, RepoError> {
        let canonical = tokio::fs::canonicalize(&request.root)
            .await
            .unwrap_or_else(|_| request.root.clone());
        let lock = self.merge_lock(&canonical);
        let _serialised = lock.lock().await;
        match merge_once(&request).await {
            Err(RepoError::Git(message))
                if message.contains("Another git process") || message.contains("index.lock") =>
            {
                let root = request.root.display();
                tracing::info!(%root, %message, "merge met a git lock; retrying once");
                tokio::time::sleep(Duration::from_millis(MERGE_RETRY_DELAY_MS)).await;
                merge_once(&request).await
            }
            outcome => outcome,
        }
    }
}

impl Repo for GitRepo {
    fn main_branch(&self, root: PathBuf) -> BoxFuture<'_, Result<String, RepoError>> {
        Box::pin(blocking(move || main_branch_of(&root)))
    }

    fn create_worktree(&self, request: WorktreeRequest) -> BoxFuture<'_, Result<(), RepoError>> {
        Box::pin(create_worktree(request))
    }

    fn diff(
        &self,
        worktree: PathBuf,
        base: String,
        overlay: Overlay,
    ) -> BoxFuture<'_, Result<Diff, RepoError>> {
        Box::pin(blocking(move || diff_of(&worktree, &base, overlay)))
    }

    fn commit_all(
        &self,
        worktree: PathBuf,
        message: String,
    ) -> BoxFuture<'_, Result<bool, RepoError>> {
        Box::pin(commit_all(worktree, message))
    }

    fn merge(&self, request: MergeRequest) -> BoxFuture<'_, Result<MergeOutcome, RepoError>> {
        Box::pin(self.merge(request))
    }

    fn is_tracked(&self, root: PathBuf, path: String) -> BoxFuture<'_, Result<bool, RepoError>> {
        Box::pin(blocking(move || {
            let index = open(&root)?.index().map_err(git2_error("read the index"))?;
            Ok(index.get_path(Path::new(&path), 0).is_some())
        }))
    }

    fn exclude(&self, root: PathBuf, pattern: String) -> BoxFuture<'_, Result<(), RepoError>> {
        Box::pin(blocking(move || exclude_locally(&root, &pattern)))
    }

    fn remove_worktree(
        &self,
        root: PathBuf,
        path: PathBuf,
        branch: String,
    ) -> BoxFuture<'_, Result<(), RepoError>> {
        Box::pin(remove_worktree(root, path, branch))
    }
}

// ---------------------------------------------------------------------------------------------
// Running git

/// How one git command ended and what it printed.
#[derive(Debug)]
struct Output {
    /// The exit code; `None` if a signal ended the command.
    code: Option<i32>,
    /// Standard output, at most [`GIT_STDOUT_BYTES_MAX`].
    stdout: Vec<u8>,
    /// Whether standard output was longer than what was kept.
    stdout_cut: bool,
    /// Error output, at most [`GIT_MESSAGE_BYTES_MAX`].
    stderr: Vec<u8>,
}

impl Output {
    /// The command's failure as an error: `<what> failed: <what git said>`.
    fn failure(&self, what: &str) -> RepoError {
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
    fn ok(self, what: &str) -> Result<Output, RepoError> {
        if self.code == Some(0) {
            Ok(self)
        } else {
            Err(self.failure(what))
        }
    }

    fn stderr_has(&self, text: &str) -> bool {
        String::from_utf8_lossy(&self.stderr).contains(text)
    }
}

/// Runs `git -C <dir> <args>`: no terminal, C locale (git's messages are matched), bounded in
/// time and output. An error only if git could not run or was stuck; a non-zero exit is
/// [`Output::code`].
async fn run(dir: &Path, args: &[&OsStr]) -> Result<Output, RepoError> {
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
async fn run_committing(dir: &Path, args: &[&OsStr]) -> Result<Output, RepoError> {
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
async fn blocking<T, F>(work: F) -> Result<T, RepoError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, RepoError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| RepoError::Git(format!("git task failed: {e}")))?
}

/// A git2 error as a [`RepoError`], saying what was being done.
fn git2_error(what: &'static str) -> impl Fn(git2::Error) -> RepoError {
    move |e| RepoError::Git(format!("{what}: {}", e.message()))
}

fn open(dir: &Path) -> Result<Repository, RepoError> {
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
struct Checkout {
    path: PathBuf,
    /// The full ref checked out (`refs/heads/…`); `None` when detached or bare.
    branch: Option<String>,
    /// Its directory is gone; git forgets it on the next prune.
    prunable: bool,
    /// Locked (`git worktree lock`): not to be removed.
    locked: bool,
}

/// The repository's checkouts, the main one first.
async fn checkouts(root: &Path) -> Result<Vec<Checkout>, RepoError> {
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

/// Whether the checkout at `dir` has changes, untracked files included. Takes no lock, so the
/// checkout's index is not even refreshed.
async fn is_dirty(dir: &Path) -> Result<bool, RepoError> {
    let args = ["--no-optional-locks", "status", "--porcelain"].map(OsStr::new);
    let out = run(dir, &args).await?.ok("git status")?;
    Ok(!out.stdout.is_empty())
}

// ---------------------------------------------------------------------------------------------
// Main branch

fn main_branch_of(root: &Path) -> Result<String, RepoError> {
    let repo = open(root)?;
    let exists = |name: &str| repo.find_branch(name, BranchType::Local).is_ok();
    if let Ok(remote_head) = repo.find_reference("refs/remotes/origin/HEAD")
        && let Ok(Some(target)) = remote_head.symbolic_target()
        && let Some(name) = target.strip_prefix("refs/remotes/origin/")
        && exists(name)
    {
        return Ok(name.to_owned());
    }
    if let Some(name) = ["main", "master"].into_iter().find(|name| exists(name)) {
        return Ok(name.to_owned());
    }
    let head = repo
        .find_reference("HEAD")
        .map_err(git2_error("read HEAD"))?;
    match head
        .symbolic_target()
        .ok()
        .flatten()
        .and_then(|t| t.strip_prefix("refs/heads/"))
    {
        Some(name) => Ok(name.to_owned()),
        None => Err(RepoError::Git(format!(
            "no main branch in {}: no main or master, and HEAD is detached",
            root.display()
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Worktrees

async fn create_worktree(request: WorktreeRequest) -> Result<(), RepoError> {
    let WorktreeRequest {
        root,
        branch,
        path,
        base,
    } = request;
    let path = if path.is_absolute() {
        path
    } else {
        root.join(path)
    };
    if let Some(link) = link_on_the_way(&root, &path) {
        return Err(RepoError::Link { root, link });
    }
    let start = {
        let (root, branch, path) = (root.clone(), branch.clone(), path.clone());
        blocking(move || start_point(&root, &branch, &path, base)).await?
    };
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| RepoError::Git(format!("could not create {}: {e}", parent.display())))?;
    }
    let add = [
        OsStr::new("worktree"),
        OsStr::new("add"),
        OsStr::new("-b"),
        OsStr::new(&branch),
        OsStr::new("--"),
        path.as_os_str(),
        OsStr::new(&start),
    ];
    let made = async {
        // Worktrees inside the root must not make the user's checkout look dirty (a merge
        // into it would be refused): `/.worktrees/` goes into info/exclude first.
        if let Ok(inside) = path.strip_prefix(&root)
            && let Some(std::path::Component::Normal(top)) = inside.components().next()
        {
            let (root, pattern) = (root.clone(), format!("/{}/", top.to_string_lossy()));
            blocking(move || exclude_locally(&root, &pattern)).await?;
        }
        run(&root, &add).await?.ok("git worktree add")?;
        link_node_modules(&root, &path).await
    };
    if let Err(error) = made.await {
        undo_worktree(&root, &path, &branch).await;
        return Err(error);
    }
    Ok(())
}

/// Checks a worktree request before anything is made: the commit to start from (as an id),
/// a new valid branch name, a free path.
fn start_point(
    root: &Path,
    branch: &str,
    path: &Path,
    base: Option<String>,
) -> Result<String, RepoError> {
    let repo = open(root)?;
    let start = match base {
        Some(base) => match repo.find_branch(&base, BranchType::Local) {
            Ok(branch) => branch
                .get()
                .peel(git2::ObjectType::Commit)
                .map_err(|e| RepoError::Git(e.message().to_owned()))?,
            Err(_) if repo.revparse_single(&base).is_ok() => {
                return Err(RepoError::NotABranch(base));
            }
            Err(_) => return Err(RepoError::NoSuchBranch(base)),
        },
        None => repo
            .revparse_single("HEAD^{commit}")
            .map_err(|_| RepoError::NoCommits)?,
    };
    if !git2::Branch::name_is_valid(branch).unwrap_or(false) {
        return Err(RepoError::Git(format!(
            "'{branch}' is not a valid branch name"
        )));
    }
    if repo.find_branch(branch, BranchType::Local).is_ok() {
        return Err(RepoError::Git(format!(
            "a branch named '{branch}' already exists"
        )));
    }
    if path.symlink_metadata().is_ok() {
        return Err(RepoError::Git(format!(
            "'{}' already exists",
            path.display()
        )));
    }
    Ok(start.id().to_string())
}

/// Links `<path>/node_modules` to the root's, if the root has one and the checkout has none.
async fn link_node_modules(root: &Path, path: &Path) -> Result<(), RepoError> {
    let source = root.join(NODE_MODULES);
    let link = path.join(NODE_MODULES);
    let has_source = tokio::fs::metadata(&source).await.is_ok_and(|m| m.is_dir());
    if !has_source || tokio::fs::symlink_metadata(&link).await.is_ok() {
        return Ok(());
    }
    let failed = |e: std::io::Error| {
        RepoError::Git(format!(
            "could not link {} to {}: {e}",
            link.display(),
            source.display()
        ))
    };
    let source = tokio::fs::canonicalize(&source).await.map_err(failed)?;
    tokio::fs::symlink(&source, &link).await.map_err(failed)?;
    // An agent's own `git add -A` must not commit the link either (a `node_modules/` rule in
    // .gitignore matches directories only).
    let (root, pattern) = (root.to_owned(), format!("/{NODE_MODULES}"));
    blocking(move || exclude_locally(&root, &pattern)).await
}

/// Adds `pattern` to the repository's `info/exclude` (shared by all its checkouts) unless a
/// line holds it already; the file is replaced atomically, one change at a time in this
/// process (two patterns added at once must both stay).
fn exclude_locally(root: &Path, pattern: &str) -> Result<(), RepoError> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let repo = open(root)?;
    let path = repo.commondir().join("info").join("exclude");
    let failed = |e: std::io::Error| RepoError::Git(format!("{}: {e}", path.display()));
    let mut text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(failed(e)),
    };
    if text.lines().any(|line| line.trim() == pattern) {
        return Ok(());
    }
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(pattern);
    text.push('\n');
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(failed)?;
    let temp = dir.join(format!(".exclude.baton-tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temp)?;
        std::io::Write::write_all(&mut file, text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, &path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        failed(e)
    })
}

/// Takes back a worktree that was not fully created: its directory, git's record of it, its
/// branch. Best effort (the creation's own error is what the caller reports).
async fn undo_worktree(root: &Path, path: &Path, branch: &str) {
    let remove = ["worktree", "remove", "--force", "--"]
        .map(OsStr::new)
        .into_iter()
        .chain([path.as_os_str()])
        .collect::<Vec<_>>();
    if let Err(error) = run(root, &remove)
        .await
        .and_then(|out| out.ok("git worktree remove"))
    {
        tracing::debug!(%error, "undoing a worktree");
    }
    if let Err(error) = remove_dir(path).await {
        tracing::warn!(%error, "undoing a worktree: its directory stays");
    }
    let prune = ["worktree", "prune"].map(OsStr::new);
    let delete = ["branch", "-D", "--", branch].map(OsStr::new);
    for (what, args) in [
        ("git worktree prune", &prune[..]),
        ("git branch -D", &delete[..]),
    ] {
        if let Err(error) = run(root, args).await.and_then(|out| out.ok(what)) {
            tracing::warn!(%error, "undoing a worktree");
        }
    }
}

/// The first component of `path` below `root` that is a symbolic link (relative to `root`), if
/// any: a worktree is made, and removed, only where no link leads elsewhere. Nothing for a
/// `path` outside `root`.
fn link_on_the_way(root: &Path, path: &Path) -> Option<PathBuf> {
    let rel = path.strip_prefix(root).ok()?;
    let mut walked = PathBuf::new();
    for part in rel.components() {
        walked.push(part);
        match std::fs::symlink_metadata(root.join(&walked)) {
            Ok(meta) if meta.file_type().is_symlink() => return Some(walked),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

/// Deletes a directory tree (not following symlinks), retrying after
/// [`REMOVE_RETRY_DELAYS_MS`]; a directory already gone is fine.
async fn remove_dir(path: &Path) -> Result<(), RepoError> {
    let mut last = None;
    for delay in REMOVE_RETRY_DELAYS_MS {
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        match tokio::fs::remove_dir_all(path).await {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    let reason = last.map_or_else(String::new, |e| e.to_string());
    Err(RepoError::Git(format!(
        "could not remove {}: {reason}",
        path.display()
    )))
}

/// `path` made absolute and free of symlinks as far as it exists (git records worktrees by
/// their real path).
async fn real_path(path: &Path) -> PathBuf {
    if let Ok(real) = tokio::fs::canonicalize(path).await {
        return real;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => match tokio::fs::canonicalize(parent).await {
            Ok(parent) => parent.join(name),
            Err(_) => path.to_owned(),
        },
        _ => path.to_owned(),
    }
}

async fn remove_worktree(root: PathBuf, path: PathBuf, branch: String) -> Result<(), RepoError> {
    let path = if path.is_absolute() {
        path
    } else {
        root.join(path)
    };
    if let Some(link) = link_on_the_way(&root, &path) {
        return Err(RepoError::Link { root, link });
    }
    let (real_root, real) = (real_path(&root).await, real_path(&path).await);
    // Never the root itself, nor a directory holding it.
    let removable = !real_root.starts_with(&real);
    if removable {
        let before = checkouts(&root).await?;
        if before.iter().any(|c| c.locked && c.path == real) {
            return Err(RepoError::Git(format!(
                "the worktree {} is locked (git worktree unlock)",
                path.display()
            )));
        }
        let args = ["worktree", "remove", "--force", "--"]
            .map(OsStr::new)
            .into_iter()
            .chain([path.as_os_str()])
            .collect::<Vec<_>>();
        // A directory git does not know as a worktree is deleted only where Baton makes them
        // (a retried close may find git's record gone and the directory still there).
        let known = before.iter().any(|c| c.path == real)
            || real.starts_with(real_root.join(crate::core::branch::WORKTREES_DIR));
        if !known && tokio::fs::symlink_metadata(&path).await.is_ok() {
            return Err(RepoError::Git(format!(
                "{} is not a worktree of {}; it is left as it is",
                path.display(),
                root.display()
            )));
        }
        let out = run(&root, &args).await?;
        if out.code != Some(0) && !out.stderr_has("is not a working tree") {
            // Deleting the directory below and pruning do the same; if that fails, it is the
            // error reported.
            let error = out.failure("git worktree remove");
            tracing::info!(%error, "removing the directory instead");
        }
        remove_dir(&path).await?;
        // The empty directories Baton made for it go too, up to `.worktrees` itself, so the
        // user's checkout is left as it was.
        let top = root.join(crate::core::branch::WORKTREES_DIR);
        let mut dir = path.parent();
        while let Some(parent) = dir.filter(|d| d.starts_with(&top)) {
            if tokio::fs::remove_dir(parent).await.is_err() {
                break;
            }
            dir = parent.parent();
        }
    }
    run(&root, &["worktree", "prune"].map(OsStr::new))
        .await?
        .ok("git worktree prune")?;
    let list = checkouts(&root).await?;
    if removable && list.iter().any(|c| c.path == real) {
        return Err(RepoError::Git(format!(
            "git still lists the worktree {} after removing it",
            path.display()
        )));
    }
    let full = format!("refs/heads/{branch}");
    let checked_out = list
        .iter()
        .any(|c| c.branch.as_deref() == Some(full.as_str()));
    let main = {
        let root = root.clone();
        blocking(move || main_branch_of(&root)).await.ok()
    };
    if checked_out || main.as_deref() == Some(branch.as_str()) {
        return Ok(());
    }
    let delete = ["branch", "-D", "--", &branch].map(OsStr::new);
    let mut out = run(&root, &delete).await?;
    for pause in BRANCH_DELETE_RETRY_MS {
        let locked = out.stderr_has("Another git process") || out.stderr_has(".lock");
        if out.code == Some(0) || !locked {
            break;
        }
        tracing::info!(branch, "deleting the branch met a git lock; trying again");
        tokio::time::sleep(Duration::from_millis(pause)).await;
        out = run(&root, &delete).await?;
    }
    if out.code != Some(0) && !out.stderr_has("not found") {
        return Err(out.failure("git branch -D"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Diff

fn diff_of(worktree: &Path, base: &str, overlay: Overlay) -> Result<Diff, RepoError> {
    let repo = open(worktree)?;
    let head = repo
        .head()
        .and_then(|h| h.peel_to_commit())
        .map_err(git2_error("read the worktree's HEAD"))?;
    let base_id = repo
        .revparse_single(&format!("{base}^{{commit}}"))
        .map_err(|_| RepoError::NoSuchBranch(base.to_owned()))?
        .id();
    let fork = repo
        .merge_base(head.id(), base_id)
        .map_err(git2_error("find where the worktree forked"))?;
    let fork_tree = repo
        .find_commit(fork)
        .and_then(|c| c.tree())
        .map_err(git2_error("read the fork point"))?;
    let head_tree = head.tree().map_err(git2_error("read HEAD's tree"))?;
    let workdir = repo
        .workdir()
        .ok_or_else(|| RepoError::Git(format!("{} has no working tree", worktree.display())))?
        .to_owned();
    // The index as on disk, for "does git track it", and an in-memory copy to build the
    // worktree's state in. Neither is written back.
    let tracked = Index::open(&repo.path().join("index")).map_err(git2_error("read the index"))?;
    let mut index = repo.index().map_err(git2_error("read the index"))?;
    let untracked =
        |path: &Path| tracked.get_path(path, 0).is_none() && head_tree.get_path(path).is_err();
    let mut large: BTreeMap<String, u64> = BTreeMap::new();
    let mut leave_out = |path: &Path, _matched: &[u8]| -> i32 {
        let Ok(meta) = std::fs::symlink_metadata(workdir.join(path)) else {
            return 0;
        };
        if meta.is_file() && meta.len() > UNTRACKED_FILE_BYTES_MAX && untracked(path) {
            large.insert(path.to_string_lossy().into_owned(), meta.len());
            return 1;
        }
        0
    };
    index
        .add_all(["*"], IndexAddOption::DEFAULT, Some(&mut leave_out))
        .map_err(git2_error("read the working tree"))?;
    for (path, content) in overlay {
        large.remove(&path);
        let at = Path::new(&path);
        match content {
            Some(bytes) => {
                let mode = index
                    .get_path(at, 0)
                    .map(|e| e.mode)
                    .filter(|mode| *mode == 0o100_755)
                    .unwrap_or(0o100_644);
                index
                    .add_frombuffer(&entry(&path, mode), &bytes)
                    .map_err(git2_error("apply the overlay"))?;
            }
            None => index
                .remove_path(at)
                .map_err(git2_error("apply the overlay"))?,
        }
    }
    let tree_id = index
        .write_tree()
        .map_err(git2_error("write the worktree's tree"))?;
    let tree = repo
        .find_tree(tree_id)
        .map_err(git2_error("read the worktree's tree"))?;

    let mut options = DiffOptions::new();
    options.include_typechange(true);
    let diff = repo
        .diff_tree_to_tree(Some(&fork_tree), Some(&tree), Some(&mut options))
        .map_err(git2_error("diff"))?;
    let mut files = Vec::new();
    for (i, delta) in diff.deltas().enumerate() {
        let change = match delta.status() {
            Delta::Added => FileChange::Added,
            Delta::Deleted => FileChange::Deleted,
            _ => FileChange::Modified,
        };
        let side = if change == FileChange::Deleted {
            delta.old_file()
        } else {
            delta.new_file()
        };
        let (Some(at), Some(bytes)) = (side.path(), side.path_bytes()) else {
            continue;
        };
        let (added, removed) = match Patch::from_diff(&diff, i).map_err(git2_error("diff"))? {
            Some(patch) => {
                let (_, added, removed) = patch.line_stats().map_err(git2_error("diff"))?;
                (added as u64, removed as u64)
            }
            None => (0, 0),
        };
        let in_head = head_tree.get_path(at).ok().map(|e| (e.id(), e.filemode()));
        let committed = in_head == tree.get_path(at).ok().map(|e| (e.id(), e.filemode()));
        let change = if change == FileChange::Added && !committed && untracked(at) {
            FileChange::Untracked
        } else {
            change
        };
        files.push(ChangedFile {
            path: String::from_utf8_lossy(bytes).into_owned(),
            change,
            added,
            removed,
            committed,
        });
    }
    let mut text = Vec::new();
    let mut cut = false;
    diff.print(DiffFormat::Patch, |_, _, line| {
        if text.len() >= DIFF_TEXT_BYTES_MAX {
            cut = true;
            return true;
        }
        match line.origin() {
            '+' => text.push(b'+'),
            '-' => text.push(b'-'),
            ' ' => text.push(b' '),
            _ => {}
        }
        text.extend_from_slice(line.content());
        true
    })
    .map_err(git2_error("diff"))?;
    let mut text = String::from_utf8_lossy(&text).into_owned();
    if cut {
        text.push_str(&format!("... (diff cut at {DIFF_TEXT_BYTES_MAX} bytes)\n"));
    }
    for (path, bytes) in large {
        text.push_str(&format!(
            "diff --git a/{path} b/{path}\nnew file, {bytes} bytes: not shown (over \
             {UNTRACKED_FILE_BYTES_MAX} bytes)\n"
        ));
        files.push(ChangedFile {
            path,
            change: FileChange::Untracked,
            added: 0,
            removed: 0,
            committed: false,
        });
    }
    // Committed first, then by path (the order `Diff::files` promises).
    files.sort_by(|a, b| b.committed.cmp(&a.committed).then(a.path.cmp(&b.path)));
    Ok(Diff { files, text })
}

/// An index entry for `path` with `mode`; git2 fills in the id and size from the content.
fn entry(path: &str, mode: u32) -> IndexEntry {
    IndexEntry {
        ctime: IndexTime::new(0, 0),
        mtime: IndexTime::new(0, 0),
        dev: 0,
        ino: 0,
        mode,
        uid: 0,
        gid: 0,
        file_size: 0,
        id: Oid::ZERO_SHA1,
        flags: 0,
        flags_extended: 0,
        path: path.as_bytes().to_vec(),
    }
}

// ---------------------------------------------------------------------------------------------
// Commit

async fn commit_all(worktree: PathBuf, message: String) -> Result<bool, RepoError> {
    let add = ["add", "-A"].map(OsStr::new);
    run(&worktree, &add).await?.ok("git add")?;
    let staged = ["diff", "--cached", "--quiet", "--no-ext-diff"].map(OsStr::new);
    let out = run(&worktree, &staged).await?;
    match out.code {
        Some(0) => return Ok(false),
        Some(1) => {}
        _ => return Err(out.failure("git diff --cached")),
    }
    run_committing(&worktree, &["commit", "-q", "-m", &message].map(OsStr::new))
        .await?
        .ok("git commit")?;
    Ok(true)
}

// ---------------------------------------------------------------------------------------------
// Merge

/// What merging a branch into its target takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// The branch is in the target already.
    Nothing,
    /// The target is behind the branch: move it there.
    FastForward,
    /// A new commit: both moved, or the changes are squashed.
    Merge,
}

/// The two tips and what merging takes, all read-only.
#[derive(Debug)]
struct Tips {
    target: String,
    target_tree: String,
    branch: String,
    plan: Plan,
}

fn tips(root: &Path, target: &str, branch: &str, squash: bool) -> Result<Tips, RepoError> {
    let repo = open(root)?;
    let tip = |name: &str| {
        repo.find_branch(name, BranchType::Local)
            .ok()
            .and_then(|b| b.get().peel_to_commit().ok())
    };
    let target_commit = tip(target).ok_or_else(|| RepoError::NoSuchBranch(target.to_owned()))?;
    let branch_commit = tip(branch)
        .ok_or_else(|| RepoError::Git(format!("merge: {branch} - not something we can merge")))?;
    let (ours, theirs) = (target_commit.id(), branch_commit.id());
    let ancestry = git2_error("compare the branches");
    let plan = if ours == theirs || repo.graph_descendant_of(ours, theirs).map_err(&ancestry)? {
        Plan::Nothing
    } else if !squash && repo.graph_descendant_of(theirs, ours).map_err(&ancestry)? {
        Plan::FastForward
    } else {
        Plan::Merge
    };
    Ok(Tips {
        target: ours.to_string(),
        target_tree: target_commit.tree_id().to_string(),
        branch: theirs.to_string(),
        plan,
    })
}

/// The merged tree of two commits, written without touching any working tree, or the
/// conflicted paths.
async fn merged_tree(root: &Path, ours: &str, theirs: &str) -> Result<String, RepoError> {
    let what = "git merge-tree";
    let args = [
        "merge-tree",
        "--write-tree",
        "--name-only",
        "--no-messages",
        "-z",
        ours,
        theirs,
    ]
    .map(OsStr::new);
    let out = run(root, &args).await?;
    let mut fields = out.stdout.split(|b| *b == 0);
    let tree = fields
        .next()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    match out.code {
        Some(0) if !tree.is_empty() => Ok(tree.into_owned()),
        Some(1) => {
            let mut paths: Vec<String> = fields
                .take_while(|f| !f.is_empty())
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            paths.sort();
            paths.dedup();
            if paths.is_empty() {
                Err(RepoError::Git(format!(
                    "{what} reported a conflict without a path"
                )))
            } else {
                Err(RepoError::Conflict(paths))
            }
        }
        // A usage error: git before 2.38 has no `--write-tree`.
        Some(129) => Err(RepoError::Git(format!(
            "{} (Baton needs git 2.38 or newer)",
            out.failure(what)
        ))),
        _ => Err(out.failure(what)),
    }
}

async fn merge_once(request: &MergeRequest) -> Result<MergeOutcome, RepoError> {
    let root = request.root.as_path();
    let tips = {
        let (root, target, branch) = (
            request.root.clone(),
            request.target.clone(),
            request.branch.clone(),
        );
        let squash = request.squash;
        blocking(move || tips(&root, &target, &branch, squash)).await?
    };
    let target_ref = format!("refs/heads/{}", request.target);
    let holder = checkouts(root)
        .await?
        .into_iter()
        .find(|c| !c.prunable && c.branch.as_deref() == Some(target_ref.as_str()))
        .map(|c| c.path);
    if let Some(dir) = &holder
        && is_dirty(dir).await?
    {
        return Err(RepoError::Dirty);
    }
    let unchanged = MergeOutcome {
        target: request.target.clone(),
        added: 0,
        removed: 0,
    };
    let new = match tips.plan {
        Plan::Nothing => return Ok(unchanged),
        Plan::FastForward => tips.branch.clone(),
        Plan::Merge => {
            let tree = merged_tree(root, &tips.target, &tips.branch).await?;
            if request.squash && tree == tips.target_tree {
                return Ok(unchanged);
            }
            let message = if request.squash {
                request
                    .message
                    .clone()
                    .unwrap_or_else(|| "Squash merge".to_owned())
            } else {
                format!("Merge branch '{}'", request.branch)
            };
            let mut args = ["commit-tree", &tree, "-p", &tips.target].to_vec();
            if !request.squash {
                args.extend(["-p", &tips.branch]);
            }
            args.extend(["-m", &message]);
            let args: Vec<&OsStr> = args.into_iter().map(OsStr::new).collect();
            let out = run_committing(root, &args).await?.ok("git commit-tree")?;
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        }
    };
    let (added, removed) = {
        let (root, old, new) = (request.root.clone(), tips.target.clone(), new.clone());
        blocking(move || lines_between(&root, &old, &new)).await?
    };
    match holder {
        Some(dir) => {
            run(&dir, &["merge", "--ff-only", "-q", &new].map(OsStr::new))
                .await?
                .ok("git merge --ff-only")?;
        }
        None => {
            let message = format!("baton: merge {}", request.branch);
            let args = [
                "update-ref",
                "-m",
                &message,
                &target_ref,
                &new,
                &tips.target,
            ];
            run(root, &args.map(OsStr::new))
                .await?
                .ok("git update-ref")?;
        }
    }
    Ok(MergeOutcome {
        target: request.target.clone(),
        added,
        removed,
    })
}

/// Lines added and removed from commit `old` to commit `new`.
fn lines_between(root: &Path, old: &str, new: &str) -> Result<(u64, u64), RepoError> {
    let repo = open(root)?;
    let read = git2_error("read the merge");
    let tree = |id: &str| {
        Oid::from_str(id)
            .and_then(|id| repo.find_commit(id))
            .and_then(|c| c.tree())
            .map_err(&read)
    };
    let (old, new) = (tree(old)?, tree(new)?);
    let stats = repo
        .diff_tree_to_tree(Some(&old), Some(&new), None)
        .and_then(|d| d.stats())
        .map_err(&read)?;
    Ok((stats.insertions() as u64, stats.deletions() as u64))
}
