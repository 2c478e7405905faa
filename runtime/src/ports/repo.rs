//! Git: worktrees and branches for sub-tasks, their diffs, and merging them back.

use std::path::PathBuf;

use super::BoxFuture;

/// A new worktree on a new branch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorktreeRequest {
    /// The repository's main checkout.
    pub root: PathBuf,
    /// Branch to create.
    pub branch: String,
    /// Directory of the new worktree.
    pub path: PathBuf,
    /// Branch to start from; `None` for the current `HEAD`.
    pub base: Option<String>,
}

/// How a file changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileChange {
    /// New (`A`).
    Added,
    /// Modified (`M`).
    Modified,
    /// Deleted (`D`).
    Deleted,
    /// Not tracked yet (`?`).
    Untracked,
}

/// One changed file of a diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangedFile {
    /// Path relative to the worktree.
    pub path: String,
    /// How it changed.
    pub change: FileChange,
    /// Lines added.
    pub added: u64,
    /// Lines removed.
    pub removed: u64,
    /// Whether the change is committed (else it is only in the working tree).
    pub committed: bool,
}

/// A worktree's changes against the branch it forked from, committed or not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Changed files, committed first, then by path.
    pub files: Vec<ChangedFile>,
    /// The unified diff.
    pub text: String,
}

/// Files seen with other content than the worktree's: path relative to the worktree, and the
/// content (`None`: as if absent).
pub type Overlay = Vec<(String, Option<Vec<u8>>)>;

/// Merging a task branch into its target. The target moves wherever it is: a checkout that
/// has it checked out gets the merge in its files (and refuses it with uncommitted changes);
/// otherwise only the branch moves. No checkout is ever left half-merged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeRequest {
    /// The repository's main checkout.
    pub root: PathBuf,
    /// The task's branch.
    pub branch: String,
    /// The branch merged into.
    pub target: String,
    /// One commit with all changes instead of a merge commit.
    pub squash: bool,
    /// Commit message (squash merges).
    pub message: Option<String>,
}

/// Paths a merge reports it changed, at most ([`MergeOutcome::paths`]).
pub const MERGED_PATHS_MAX: usize = 10_000;

/// A merge that went through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeOutcome {
    /// The branch merged into.
    pub target: String,
    /// Lines added by the merge.
    pub added: u64,
    /// Lines removed by the merge.
    pub removed: u64,
    /// The target's commit after the merge (its tip before, when the merge changed nothing).
    pub commit: String,
    /// The paths the merge changed on the target, sorted (the first [`MERGED_PATHS_MAX`]).
    pub paths: Vec<String>,
}

/// What a checkout has checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Head {
    /// A branch.
    Branch(String),
    /// A commit, no branch (a detached `HEAD`).
    Detached,
}

/// A checkout as it is: what it has checked out, at which commit, and what is not committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorktreeStatus {
    /// Its `HEAD`.
    pub head: Head,
    /// The commit `HEAD` is at.
    pub commit: String,
    /// Paths, relative to the checkout, changed and not committed (staged or not) or untracked
    /// and not ignored, sorted; a renamed file by its new path.
    pub dirty: Vec<String>,
}

/// A git operation that failed; the message is shown to the coordinator.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RepoError {
    /// The repository has no commit to branch from.
    #[error(
        "Cannot create a worktree in a repository with no commits. Please make an initial commit first."
    )]
    NoCommits,
    /// The base branch does not exist.
    #[error(
        "Branch \"{0}\" does not exist. Please select a valid base branch or create the branch first."
    )]
    NoSuchBranch(String),
    /// The base names something else than a local branch (a commit, a tag, a remote branch):
    /// a task starts from, and merges back into, a branch.
    #[error(
        "baseBranch \"{0}\" is not a local branch (it names a commit or another ref): name a branch of the repository"
    )]
    NotABranch(String),
    /// The merge conflicted and was aborted.
    #[error("Merge failed: conflicts in {}", .0.join(", "))]
    Conflict(Vec<String>),
    /// The merge directory has uncommitted changes.
    #[error("Working tree has uncommitted changes. Please commit or stash them before merging.")]
    Dirty,
    /// A directory on the way to the worktree is a symbolic link (a repository that commits
    /// `.worktrees` as a link, say): refused, so nothing lands outside the project.
    #[error(
        "{} is a symbolic link (in {}): Baton makes no worktree through a link; nothing was changed",
        .link.display(),
        .root.display()
    )]
    Link {
        /// The project.
        root: std::path::PathBuf,
        /// The link, relative to it.
        link: std::path::PathBuf,
    },
    /// Anything else git reported.
    #[error("{0}")]
    Git(String),
}

/// The repository operations the engine needs.
pub trait Repo: Send + Sync {
    /// The branch to merge into when a task names none (`main`, `master`, or the remote's HEAD).
    fn main_branch(&self, root: PathBuf) -> BoxFuture<'_, Result<String, RepoError>>;

    /// Creates a branch and its worktree; on failure, neither is left behind.
    fn create_worktree(&self, request: WorktreeRequest) -> BoxFuture<'_, Result<(), RepoError>>;

    /// The worktree's changes against `base` (merge base with it), uncommitted ones included,
    /// as if the files of `overlay` (paths relative to the worktree) held the content given
    /// (`None`: no file): the engine diffs a worktree without the instruction block it put in.
    fn diff(
        &self,
        worktree: PathBuf,
        base: String,
        overlay: Overlay,
    ) -> BoxFuture<'_, Result<Diff, RepoError>>;

    /// Commits everything in the worktree (`git add -A`); `Ok(false)` if there was nothing.
    fn commit_all(
        &self,
        worktree: PathBuf,
        message: String,
    ) -> BoxFuture<'_, Result<bool, RepoError>>;

    /// Merges a task branch into its target.
    fn merge(&self, request: MergeRequest) -> BoxFuture<'_, Result<MergeOutcome, RepoError>>;

    /// What the checkout at `dir` has checked out, at which commit, and what is not committed.
    fn status(&self, dir: PathBuf) -> BoxFuture<'_, Result<WorktreeStatus, RepoError>>;

    /// The content of `path` (relative to the checkout at `dir`) as committed at its `HEAD`;
    /// `None` when `HEAD` has no such file.
    fn read_committed(
        &self,
        dir: PathBuf,
        path: String,
    ) -> BoxFuture<'_, Result<Option<Vec<u8>>, RepoError>>;

    /// Whether git tracks `path` (relative to `root`) in the repository's index at `root`.
    fn is_tracked(&self, root: PathBuf, path: String) -> BoxFuture<'_, Result<bool, RepoError>>;

    /// Makes git ignore `pattern` (gitignore syntax) in every checkout of the repository at
    /// `root` without changing a tracked file (its `info/exclude`); nothing if it is there.
    fn exclude(&self, root: PathBuf, pattern: String) -> BoxFuture<'_, Result<(), RepoError>>;

    /// Removes a worktree and deletes its branch; a worktree or branch already gone is not an
    /// error (a retried close finds what an earlier attempt left).
    fn remove_worktree(
        &self,
        root: PathBuf,
        path: PathBuf,
        branch: String,
    ) -> BoxFuture<'_, Result<(), RepoError>>;
}
