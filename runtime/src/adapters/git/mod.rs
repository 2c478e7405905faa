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
//!
//! Layout: this module holds the limits and [`GitRepo`], the port's door; `run` runs git (the
//! CLI bounded in time and output, git2 on the blocking pool) and reads the checkouts;
//! `worktree` the main branch, creating and removing worktrees; `diff` the overlay diff in an
//! in-memory index; `merge` committing and merging.

mod diff;
mod merge;
mod run;
mod worktree;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::ports::{
    BoxFuture, Diff, MergeOutcome, MergeRequest, Overlay, Repo, RepoError, WorktreeRequest,
    WorktreeStatus,
};
use diff::diff_of;
use merge::{commit_all, merge_once};
pub use run::{FALLBACK_IDENTITY, run_as};
use run::{blocking, git2_error, open};
use worktree::{create_worktree, exclude_locally, main_branch_of, remove_worktree};

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
/// Age, in milliseconds, past which the lock file of a task's own branch ref (met while
/// deleting the branch, its worktree already gone) is taken as left by a git process that
/// died holding it (an agent's `git commit` killed mid-way by a crash) and is removed: a live
/// git process holds a ref lock for milliseconds, and git itself says to remove such a file.
pub const STALE_REF_LOCK_MS: u64 = 2_000;
/// Waits before each attempt at deleting a worktree's directory, in milliseconds: a process
/// that is still exiting (an agent, a file watcher) may hold or recreate files for a moment.
pub const REMOVE_RETRY_DELAYS_MS: [u64; 4] = [0, 500, 1_500, 3_000];
/// Bytes of a committed file Baton reads at most (`Repo::read_committed`: the files it wrote into
/// a worktree, which are small).
pub const COMMITTED_FILE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// The dependency directory a new worktree links to the root's.
pub const NODE_MODULES: &str = "node_modules";
/// Variables that would point a git command at another repository than its `-C` directory
/// (set when Baton itself runs under a git hook).
pub(crate) const REPOSITORY_ENV: [&str; 4] = [
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

    fn status(&self, dir: PathBuf) -> BoxFuture<'_, Result<WorktreeStatus, RepoError>> {
        Box::pin(async move { run::status(&dir).await })
    }

    fn read_committed(
        &self,
        dir: PathBuf,
        path: String,
    ) -> BoxFuture<'_, Result<Option<Vec<u8>>, RepoError>> {
        Box::pin(blocking(move || {
            let read = git2_error("read the committed file");
            let repo = open(&dir)?;
            let tree = repo
                .head()
                .and_then(|head| head.peel_to_tree())
                .map_err(&read)?;
            let Ok(entry) = tree.get_path(Path::new(&path)) else {
                return Ok(None);
            };
            let Ok(blob) = entry.to_object(&repo).and_then(|o| o.peel_to_blob()) else {
                return Ok(None);
            };
            if blob.size() > COMMITTED_FILE_BYTES_MAX {
                return Err(RepoError::Git(format!(
                    "{path} is committed with {} bytes, more than Baton reads ({COMMITTED_FILE_BYTES_MAX})",
                    blob.size()
                )));
            }
            Ok(Some(blob.content().to_vec()))
        }))
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
