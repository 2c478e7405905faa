//! Worktrees and branches: the repository's main branch; a sub-task's worktree created on a new
//! branch (its start point checked first, `node_modules` linked, `info/exclude` kept, a half-made
//! one taken back), and removed with its branch (never past a symlink, never the root).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use git2::BranchType;

use super::run::{blocking, checkouts, git2_error, open, run};
use super::{BRANCH_DELETE_RETRY_MS, NODE_MODULES, REMOVE_RETRY_DELAYS_MS, STALE_REF_LOCK_MS};
use crate::ports::{RepoError, WorktreeRequest};

pub(super) fn main_branch_of(root: &Path) -> Result<String, RepoError> {
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

pub(super) async fn create_worktree(request: WorktreeRequest) -> Result<(), RepoError> {
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
pub(super) fn exclude_locally(root: &Path, pattern: &str) -> Result<(), RepoError> {
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

pub(super) async fn remove_worktree(
    root: PathBuf,
    path: PathBuf,
    branch: String,
) -> Result<(), RepoError> {
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
        let removed = {
            let (root, branch) = (root.clone(), branch.clone());
            blocking(move || remove_stale_ref_lock(&root, &branch)).await?
        };
        if !removed {
            tracing::info!(branch, "deleting the branch met a git lock; trying again");
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        out = run(&root, &delete).await?;
    }
    if out.code != Some(0) && !out.stderr_has("not found") {
        return Err(out.failure("git branch -D"));
    }
    Ok(())
}

/// Removes the lock file of `branch`'s ref if it is older than [`STALE_REF_LOCK_MS`]: left
/// by a git process that died holding it. Whether one was removed.
fn remove_stale_ref_lock(root: &Path, branch: &str) -> Result<bool, RepoError> {
    let repo = open(root)?;
    let lock = repo
        .commondir()
        .join("refs")
        .join("heads")
        .join(format!("{branch}.lock"));
    let age = std::fs::symlink_metadata(&lock)
        .ok()
        .filter(std::fs::Metadata::is_file)
        .and_then(|meta| meta.modified().ok())
        .and_then(|at| at.elapsed().ok());
    if age.is_none_or(|age| age < Duration::from_millis(STALE_REF_LOCK_MS)) {
        return Ok(false);
    }
    std::fs::remove_file(&lock)
        .map_err(|e| RepoError::Git(format!("could not remove {}: {e}", lock.display())))?;
    tracing::warn!(lock = %lock.display(), "removed a stale lock of a task's branch (a git process died holding it)");
    Ok(true)
}
