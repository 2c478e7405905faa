//! FakeRepo: repositories in memory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{FakeFiles, lock};
use crate::ports::{
    BoxFuture, ChangedFile, Diff, MergeOutcome, MergeRequest, Repo, RepoError, WorktreeRequest,
};

#[derive(Debug)]
struct FakeRepository {
    main: String,
    has_commits: bool,
    branches: BTreeSet<String>,
    /// Worktree path → its branch.
    worktrees: BTreeMap<PathBuf, String>,
}

#[derive(Debug, Default)]
struct RepoState {
    repos: BTreeMap<PathBuf, FakeRepository>,
    /// Diffs a branch shows (set by the test playing the agent's edits).
    diffs: BTreeMap<String, Diff>,
    /// Worktrees with uncommitted work, committed by `commit_all`.
    dirty: BTreeSet<PathBuf>,
    /// Branches whose merge conflicts, with the conflicting paths.
    conflicts: BTreeMap<String, Vec<String>>,
    /// Worktrees whose removal fails.
    stuck: BTreeSet<PathBuf>,
    merged: Vec<MergeRequest>,
    /// How long creating a worktree takes (tokio time), as on a large repository.
    create_latency: std::time::Duration,
    /// How long removing a worktree takes (tokio time).
    remove_latency: std::time::Duration,
    merge_latency: std::time::Duration,
}

/// Repositories in memory: branches, worktrees, the diffs a test declares, merges.
#[derive(Debug, Default)]
pub struct FakeRepo {
    state: Mutex<RepoState>,
    /// The disk whose files under a worktree go with the worktree.
    disk: Mutex<Option<Arc<FakeFiles>>>,
}

impl FakeRepo {
    /// Makes `files` the disk the worktrees are on: a removed worktree takes its files along.
    pub fn attach_files(&self, files: Arc<FakeFiles>) {
        *self
            .disk
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(files);
    }

    /// A repository at `root` whose main branch is `main`, with one commit.
    pub fn add_repo(&self, root: &Path, main: &str) {
        let branches = BTreeSet::from([main.to_owned()]);
        let repo = FakeRepository {
            main: main.to_owned(),
            has_commits: true,
            branches,
            worktrees: BTreeMap::new(),
        };
        lock(&self.state).repos.insert(root.to_owned(), repo);
    }

    /// A repository at `root` without any commit.
    pub fn add_empty_repo(&self, root: &Path) {
        let repo = FakeRepository {
            main: "main".to_owned(),
            has_commits: false,
            branches: BTreeSet::new(),
            worktrees: BTreeMap::new(),
        };
        lock(&self.state).repos.insert(root.to_owned(), repo);
    }

    /// Declares what `branch` changed (the agent's work).
    pub fn set_diff(&self, branch: &str, files: Vec<ChangedFile>, text: &str) {
        lock(&self.state).diffs.insert(
            branch.to_owned(),
            Diff {
                files,
                text: text.to_owned(),
            },
        );
    }

    /// Marks the worktree as holding uncommitted work.
    pub fn make_dirty(&self, worktree: &Path) {
        lock(&self.state).dirty.insert(worktree.to_owned());
    }

    /// Makes merging `branch` conflict on `paths`.
    pub fn conflict_on(&self, branch: &str, paths: &[&str]) {
        lock(&self.state).conflicts.insert(
            branch.to_owned(),
            paths.iter().map(|p| (*p).to_owned()).collect(),
        );
    }

    /// Makes creating a worktree take `latency` (tokio time, virtual in tests).
    pub fn slow_worktrees(&self, latency: std::time::Duration) {
        lock(&self.state).create_latency = latency;
    }

    /// Makes removing a worktree take `latency` (tokio time, virtual in tests).
    pub fn slow_removals(&self, latency: std::time::Duration) {
        lock(&self.state).remove_latency = latency;
    }

    /// Makes a merge take `latency` before it happens (tokio time, virtual in tests).
    pub fn slow_merges(&self, latency: std::time::Duration) {
        lock(&self.state).merge_latency = latency;
    }

    /// Lets removing the worktree at `path` succeed again.
    pub fn unstick(&self, path: &Path) {
        lock(&self.state).stuck.remove(path);
    }

    /// Makes removing the worktree at `path` fail.
    pub fn make_stuck(&self, path: &Path) {
        lock(&self.state).stuck.insert(path.to_owned());
    }

    /// Branches of the repository at `root`.
    #[must_use]
    pub fn branches(&self, root: &Path) -> Vec<String> {
        lock(&self.state)
            .repos
            .get(root)
            .map(|r| r.branches.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Worktrees of the repository at `root`, with their branches.
    #[must_use]
    pub fn worktrees(&self, root: &Path) -> Vec<(PathBuf, String)> {
        lock(&self.state)
            .repos
            .get(root)
            .map(|r| {
                r.worktrees
                    .iter()
                    .map(|(p, b)| (p.clone(), b.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Merges at once (see [`Self::slow_merges`] for a merge that takes time).
    fn merge_now(&self, request: MergeRequest) -> Result<MergeOutcome, RepoError> {
        let mut state = lock(&self.state);
        if !state
            .repos
            .get(&request.root)
            .is_some_and(|r| r.branches.contains(&request.branch))
        {
            Err(RepoError::Git(format!(
                "merge: {} - not something we can merge",
                request.branch
            )))
        } else if let Some(paths) = state.conflicts.get(&request.branch) {
            Err(RepoError::Conflict(paths.clone()))
        } else {
            let files = state
                .diffs
                .get(&request.branch)
                .map(|d| d.files.clone())
                .unwrap_or_default();
            let outcome = MergeOutcome {
                target: request.target.clone(),
                added: files.iter().map(|f| f.added).sum(),
                removed: files.iter().map(|f| f.removed).sum(),
            };
            state.merged.push(request);
            Ok(outcome)
        }
    }

    /// Merges done so far.
    #[must_use]
    pub fn merged(&self) -> Vec<MergeRequest> {
        lock(&self.state).merged.clone()
    }
}

fn no_repo(root: &Path) -> RepoError {
    RepoError::Git(format!("not a git repository: {}", root.display()))
}

impl Repo for FakeRepo {
    fn main_branch(&self, root: PathBuf) -> BoxFuture<'_, Result<String, RepoError>> {
        let result = lock(&self.state)
            .repos
            .get(&root)
            .map(|r| r.main.clone())
            .ok_or_else(|| no_repo(&root));
        Box::pin(async move { result })
    }

    fn create_worktree(&self, request: WorktreeRequest) -> BoxFuture<'_, Result<(), RepoError>> {
        Box::pin(async move {
            let latency = lock(&self.state).create_latency;
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            let mut state = lock(&self.state);
            let repo = state
                .repos
                .get_mut(&request.root)
                .ok_or_else(|| no_repo(&request.root))?;
            if !repo.has_commits {
                return Err(RepoError::NoCommits);
            }
            if let Some(base) = &request.base
                && !repo.branches.contains(base)
            {
                return Err(RepoError::NoSuchBranch(base.clone()));
            }
            if repo.branches.contains(&request.branch) {
                return Err(RepoError::Git(format!(
                    "a branch named '{}' already exists",
                    request.branch
                )));
            }
            if repo.worktrees.contains_key(&request.path) {
                return Err(RepoError::Git(format!(
                    "'{}' already exists",
                    request.path.display()
                )));
            }
            repo.branches.insert(request.branch.clone());
            repo.worktrees.insert(request.path, request.branch);
            Ok(())
        })
    }

    fn diff(
        &self,
        worktree: PathBuf,
        _base: String,
        _overlay: crate::ports::Overlay,
    ) -> BoxFuture<'_, Result<Diff, RepoError>> {
        let result = {
            let state = lock(&self.state);
            let branch = state
                .repos
                .values()
                .find_map(|r| r.worktrees.get(&worktree).cloned());
            match branch {
                Some(branch) => Ok(state.diffs.get(&branch).cloned().unwrap_or_default()),
                None => Err(RepoError::Git(format!(
                    "not a worktree: {}",
                    worktree.display()
                ))),
            }
        };
        Box::pin(async move { result })
    }

    fn commit_all(
        &self,
        worktree: PathBuf,
        _message: String,
    ) -> BoxFuture<'_, Result<bool, RepoError>> {
        let committed = lock(&self.state).dirty.remove(&worktree);
        Box::pin(async move { Ok(committed) })
    }

    fn merge(&self, request: MergeRequest) -> BoxFuture<'_, Result<MergeOutcome, RepoError>> {
        let latency = lock(&self.state).merge_latency;
        Box::pin(async move {
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            self.merge_now(request)
        })
    }

    fn is_tracked(&self, _root: PathBuf, _path: String) -> BoxFuture<'_, Result<bool, RepoError>> {
        // The fake repository tracks no file of the user's.
        Box::pin(async { Ok(false) })
    }

    fn exclude(&self, _root: PathBuf, _pattern: String) -> BoxFuture<'_, Result<(), RepoError>> {
        // No ignore rules in memory: nothing here is listed as untracked but what was written.
        Box::pin(async { Ok(()) })
    }

    fn remove_worktree(
        &self,
        root: PathBuf,
        path: PathBuf,
        branch: String,
    ) -> BoxFuture<'_, Result<(), RepoError>> {
        let remove = move || {
            let mut state = lock(&self.state);
            if state.stuck.contains(&path) {
                return Err(RepoError::Git(format!(
                    "could not remove {}: device or resource busy",
                    path.display()
                )));
            }
            let repo = state.repos.get_mut(&root).ok_or_else(|| no_repo(&root))?;
            repo.worktrees.remove(&path);
            repo.branches.remove(&branch);
            drop(state);
            let disk = self
                .disk
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(files) = disk.as_ref() {
                files.remove_under(&path);
            }
            Ok(())
        };
        let latency = lock(&self.state).remove_latency;
        Box::pin(async move {
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            remove()
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::FakeRepo;
    use crate::ports::{Repo, RepoError, WorktreeRequest};

    #[tokio::test]
    async fn fake_repo_refuses_what_git_refuses() {
        let repo = FakeRepo::default();
        let root = Path::new("/repo");
        repo.add_repo(root, "main");
        let request = |branch: &str, base: Option<&str>| WorktreeRequest {
            root: root.into(),
            branch: branch.into(),
            path: Path::new("/repo/.worktrees").join(branch),
            base: base.map(Into::into),
        };
        repo.create_worktree(request("task/a-123456", None))
            .await
            .unwrap();
        assert!(
            repo.create_worktree(request("task/a-123456", None))
                .await
                .is_err(),
            "branch exists"
        );
        assert_eq!(
            repo.create_worktree(request("task/b", Some("nope"))).await,
            Err(RepoError::NoSuchBranch("nope".into()))
        );
        repo.add_empty_repo(Path::new("/empty"));
        let empty = WorktreeRequest {
            root: "/empty".into(),
            branch: "x".into(),
            path: "/empty/x".into(),
            base: None,
        };
        assert_eq!(repo.create_worktree(empty).await, Err(RepoError::NoCommits));
        repo.remove_worktree(
            root.into(),
            "/repo/.worktrees/task/a-123456".into(),
            "task/a-123456".into(),
        )
        .await
        .unwrap();
        assert_eq!(repo.branches(root), ["main"]);
        assert!(repo.worktrees(root).is_empty());
    }
}
