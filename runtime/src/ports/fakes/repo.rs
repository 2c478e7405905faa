//! FakeRepo: git as the engine sees it, with content. Repositories hold commits (whole trees of
//! text files), branches pointing at commits, and checkouts (the user's, at the root, and every
//! worktree) with their own working files, so an agent's edits and commits show up in the task's
//! diff, merges are three-way per file (both sides changing one file differently is a conflict,
//! reported and aborted with every branch and the user's checkout untouched), and closing a task
//! really removes its worktree and branch. [`super::FakeDisk`] makes the checkouts' working files
//! the engine's disk.
//!
//! A test or a scenario plays the agents and the user through [`FakeRepo::edit`],
//! [`FakeRepo::delete`] and [`FakeRepo::commit`], and reads what came of it through
//! [`FakeRepo::files`], [`FakeRepo::tree`], [`FakeRepo::branches`], [`FakeRepo::worktrees`] and
//! [`FakeRepo::merged`]. Faults it can be told to play: a worktree that will not be removed, and
//! creating or removing a worktree, or merging, taking time (tokio time: virtual in tests and in
//! the simulator).
//!
//! Not modelled: remotes, ignore rules, and what `tree.rs` leaves out (renames, binary files,
//! hunks). Locks guard plain data and are never held across an await.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use super::lock;
use super::tree::{Tree, change, file_diff, line_counts, merge_trees};
use crate::ports::{
    BoxFuture, ChangedFile, Diff, FileChange, Head, MERGED_PATHS_MAX, MergeOutcome, MergeRequest,
    Overlay, Repo, RepoError, WorktreeRequest, WorktreeStatus,
};

/// At most this many commits in one repository, and merges remembered by [`FakeRepo::merged`]
/// (a runaway script stops there).
pub const COMMITS_MAX: usize = 100_000;

#[derive(Debug, Clone)]
struct Commit {
    parents: Vec<usize>,
    tree: Tree,
}

#[derive(Debug, Clone)]
struct Checkout {
    branch: String,
    files: Tree,
}

#[derive(Debug)]
struct Repository {
    /// Symbolic links it commits (paths in every checkout): followed by nothing.
    links: Vec<String>,
    main: String,
    /// Numbered in creation order; none in a repository without commits.
    commits: Vec<Commit>,
    branches: BTreeMap<String, usize>,
    /// The user's own checkout (at the root) and every worktree, by directory.
    checkouts: BTreeMap<PathBuf, Checkout>,
    /// Patterns of `info/exclude` (every checkout's): `/name` a path, `/dir/` what is under it.
    excluded: BTreeSet<String>,
}

impl Repository {
    /// Whether `path`, untracked at `head`, is excluded (git neither lists nor commits it).
    fn ignores(&self, path: &str, head: &Tree) -> bool {
        !head.contains_key(path)
            && self.excluded.iter().any(|pattern| {
                let anchored = pattern.strip_prefix('/').unwrap_or(pattern);
                match anchored.strip_suffix('/') {
                    Some(dir) => path.starts_with(dir) && path[dir.len()..].starts_with('/'),
                    None => path == anchored,
                }
            })
    }

    /// A checkout's files as git sees them: without the excluded untracked ones.
    fn visible(&self, files: &Tree, head: Option<usize>) -> Tree {
        let empty = Tree::new();
        let tree = head.map_or(&empty, |head| &self.commits[head].tree);
        files
            .iter()
            .filter(|(path, _)| !self.ignores(path, tree))
            .map(|(path, content)| (path.clone(), content.clone()))
            .collect()
    }

    /// Whether the checkout at `dir` holds changes git would list.
    fn is_dirty(&self, dir: &Path) -> bool {
        let checkout = &self.checkouts[dir];
        let head = self.head(&checkout.branch);
        head.is_none_or(|head| self.commits[head].tree != self.visible(&checkout.files, Some(head)))
    }

    fn head(&self, branch: &str) -> Option<usize> {
        self.branches.get(branch).copied()
    }

    fn ancestors(&self, commit: usize) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![commit];
        while let Some(c) = stack.pop() {
            if seen.insert(c) {
                stack.extend(&self.commits[c].parents);
            }
        }
        seen
    }

    /// The newest common ancestor (commits are numbered in creation order).
    fn merge_base(&self, a: usize, b: usize) -> usize {
        let of_a = self.ancestors(a);
        self.ancestors(b)
            .into_iter()
            .filter(|c| of_a.contains(c))
            .max()
            .unwrap_or(0)
    }

    fn commit(&mut self, parents: Vec<usize>, tree: Tree) -> Result<usize, RepoError> {
        if self.commits.len() >= COMMITS_MAX {
            return Err(full());
        }
        self.commits.push(Commit { parents, tree });
        Ok(self.commits.len() - 1)
    }

    /// Merges at once: the target moves, and a checkout that has it checked out gets the
    /// merge in its files.
    fn merge(&mut self, request: &MergeRequest) -> Result<MergeOutcome, RepoError> {
        let theirs = self.head(&request.branch).ok_or_else(|| {
            RepoError::Git(format!(
                "merge: {} - not something we can merge",
                request.branch
            ))
        })?;
        let ours = self
            .head(&request.target)
            .ok_or_else(|| RepoError::NoSuchBranch(request.target.clone()))?;
        let holder = self
            .checkouts
            .iter()
            .find(|(_, c)| c.branch == request.target)
            .map(|(dir, _)| (dir.clone(), self.is_dirty(dir)));
        if let Some((_, true)) = holder {
            return Err(RepoError::Dirty);
        }
        let base = self.merge_base(ours, theirs);
        let merged = merge_trees(
            &self.commits[base].tree,
            &self.commits[ours].tree,
            &self.commits[theirs].tree,
        )
        .map_err(RepoError::Conflict)?;
        let (added, removed) = line_counts(&self.commits[ours].tree, &merged);
        let mut paths = changed_paths(&self.commits[ours].tree, &merged);
        paths.truncate(MERGED_PATHS_MAX);
        let mut tip = ours;
        if merged != self.commits[ours].tree || !request.squash {
            let parents = if request.squash {
                vec![ours]
            } else {
                vec![ours, theirs]
            };
            let commit = self.commit(parents, merged.clone())?;
            self.branches.insert(request.target.clone(), commit);
            tip = commit;
        }
        if let Some((dir, _)) = holder {
            // What git ignores in the checkout stays as it is.
            let mut files = merged;
            let kept: Vec<(String, String)> = self.checkouts[&dir]
                .files
                .iter()
                .filter(|(path, _)| !files.contains_key(*path))
                .filter(|(path, _)| self.ignores(path, &files))
                .map(|(path, content)| (path.clone(), content.clone()))
                .collect();
            files.extend(kept);
            if let Some(checkout) = self.checkouts.get_mut(&dir) {
                checkout.files = files;
            }
        }
        Ok(MergeOutcome {
            target: request.target.clone(),
            added,
            removed,
            commit: commit_id(tip),
            paths,
        })
    }

    /// The checkout at `dir` as `git status` tells it.
    fn status(&self, dir: &Path) -> Result<WorktreeStatus, RepoError> {
        let checkout = &self.checkouts[dir];
        let head = self.head(&checkout.branch).ok_or_else(|| {
            RepoError::Git("fatal: your current branch has no commits yet".into())
        })?;
        let visible = self.visible(&checkout.files, Some(head));
        Ok(WorktreeStatus {
            head: Head::Branch(checkout.branch.clone()),
            commit: commit_id(head),
            dirty: changed_paths(&self.commits[head].tree, &visible),
        })
    }
}

/// A commit's id as git would show one: 40 hexadecimal digits (its number).
fn commit_id(commit: usize) -> String {
    format!("{commit:040x}")
}

/// The paths whose content differs between two trees, sorted.
fn changed_paths(a: &Tree, b: &Tree) -> Vec<String> {
    let paths: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    paths
        .into_iter()
        .filter(|path| a.get(*path) != b.get(*path))
        .cloned()
        .collect()
}

#[derive(Debug, Default)]
struct State {
    repos: BTreeMap<PathBuf, Repository>,
    /// Worktrees whose removal fails.
    stuck: BTreeSet<PathBuf>,
    /// How long creating a worktree takes, as on a large repository.
    create_latency: Duration,
    /// How long removing a worktree takes.
    remove_latency: Duration,
    /// How long a merge takes before it happens.
    merge_latency: Duration,
    /// Merges that went through, in order.
    merged: Vec<MergeRequest>,
}

impl State {
    /// The repository holding the checkout at `dir`.
    fn holding(&mut self, dir: &Path) -> Option<&mut Repository> {
        self.repos
            .values_mut()
            .find(|repo| repo.checkouts.contains_key(dir))
    }

    /// The working files of the checkout at `dir`.
    fn files_at(&mut self, dir: &Path) -> Result<&mut Tree, RepoError> {
        self.holding(dir)
            .and_then(|repo| repo.checkouts.get_mut(dir))
            .map(|checkout| &mut checkout.files)
            .ok_or_else(|| not_a_checkout(dir))
    }
}

/// Repositories in memory, with content. See the module documentation.
#[derive(Debug, Default)]
pub struct FakeRepo {
    state: Mutex<State>,
}

fn no_repo(root: &Path) -> RepoError {
    RepoError::Git(format!("not a git repository: {}", root.display()))
}

fn not_a_checkout(dir: &Path) -> RepoError {
    RepoError::Git(format!("not a worktree: {}", dir.display()))
}

fn full() -> RepoError {
    RepoError::Git(format!(
        "simulated repository is full ({COMMITS_MAX} commits)"
    ))
}

/// Waits `latency` of tokio time, if any.
async fn take(latency: Duration) {
    if !latency.is_zero() {
        crate::time::sleep(latency).await;
    }
}

impl FakeRepo {
    /// A repository at `root` whose branch `main` holds `files` in one commit, checked out at
    /// `root`.
    pub fn add_repo(&self, root: &Path, main: &str, files: Tree) {
        let repo = Repository {
            links: Vec::new(),
            main: main.to_owned(),
            commits: vec![Commit {
                parents: Vec::new(),
                tree: files.clone(),
            }],
            branches: BTreeMap::from([(main.to_owned(), 0)]),
            checkouts: BTreeMap::from([(
                root.to_owned(),
                Checkout {
                    branch: main.to_owned(),
                    files,
                },
            )]),
            excluded: BTreeSet::new(),
        };
        lock(&self.state).repos.insert(root.to_owned(), repo);
    }

    /// A repository at `root` without any commit (`main` checked out at `root`, unborn).
    pub fn add_empty_repo(&self, root: &Path) {
        let repo = Repository {
            links: Vec::new(),
            main: "main".to_owned(),
            commits: Vec::new(),
            branches: BTreeMap::new(),
            checkouts: BTreeMap::from([(
                root.to_owned(),
                Checkout {
                    branch: "main".to_owned(),
                    files: Tree::new(),
                },
            )]),
            excluded: BTreeSet::new(),
        };
        lock(&self.state).repos.insert(root.to_owned(), repo);
    }

    /// Commits symbolic links at `paths` into the repository at `root` (every checkout has
    /// them).
    pub fn add_links(&self, root: &Path, paths: impl IntoIterator<Item = String>) {
        if let Some(repo) = lock(&self.state).repos.get_mut(root) {
            repo.links.extend(paths);
        }
    }

    /// Adds `pattern` to the `info/exclude` of the repository at `root` (as [`Repo::exclude`]
    /// does, for a world set up before anything runs).
    pub fn add_excluded(&self, root: &Path, pattern: &str) {
        if let Some(repo) = lock(&self.state).repos.get_mut(root) {
            repo.excluded.insert(pattern.to_owned());
        }
    }

    /// The links in the checkout at `dir` (paths relative to it).
    #[must_use]
    pub fn links_of(&self, dir: &Path) -> Vec<PathBuf> {
        lock(&self.state)
            .repos
            .values()
            .find(|repo| repo.checkouts.contains_key(dir))
            .map(|repo| repo.links.iter().map(PathBuf::from).collect())
            .unwrap_or_default()
    }

    /// Adds `branch` to the repository at `root`, at its first commit.
    pub fn add_branch(&self, root: &Path, branch: &str) {
        if let Some(repo) = lock(&self.state).repos.get_mut(root)
            && !repo.commits.is_empty()
        {
            repo.branches.entry(branch.to_owned()).or_insert(0);
        }
    }

    /// Writes a file into the checkout at `dir` (uncommitted until [`FakeRepo::commit`]).
    ///
    /// # Errors
    /// No checkout at `dir`.
    pub fn edit(&self, dir: &Path, path: &str, content: &str) -> Result<(), RepoError> {
        lock(&self.state)
            .files_at(dir)?
            .insert(path.to_owned(), content.to_owned());
        Ok(())
    }

    /// Deletes a file from the checkout at `dir`.
    ///
    /// # Errors
    /// No checkout at `dir`.
    pub fn delete(&self, dir: &Path, path: &str) -> Result<(), RepoError> {
        lock(&self.state).files_at(dir)?.remove(path);
        Ok(())
    }

    /// Commits everything in the checkout at `dir`; `Ok(false)` if nothing changed.
    ///
    /// # Errors
    /// No checkout at `dir`, its branch gone or unborn, or the repository full.
    pub fn commit(&self, dir: &Path) -> Result<bool, RepoError> {
        let mut state = lock(&self.state);
        let repo = state.holding(dir).ok_or_else(|| not_a_checkout(dir))?;
        let checkout = repo.checkouts[dir].clone();
        let head = repo
            .head(&checkout.branch)
            .ok_or_else(|| RepoError::Git(format!("branch {} is gone", checkout.branch)))?;
        let visible = repo.visible(&checkout.files, Some(head));
        if repo.commits[head].tree == visible {
            return Ok(false);
        }
        let commit = repo.commit(vec![head], visible)?;
        repo.branches.insert(checkout.branch, commit);
        Ok(true)
    }

    /// The checkout a path lies in (the innermost, as worktrees live under the main checkout),
    /// and the path relative to it.
    #[must_use]
    pub fn checkout_of(&self, path: &Path) -> Option<(PathBuf, String)> {
        let state = lock(&self.state);
        state
            .repos
            .values()
            .flat_map(|repo| repo.checkouts.keys())
            .filter_map(|dir| {
                let rel = path.strip_prefix(dir).ok()?.to_str()?.to_owned();
                (!rel.is_empty()).then(|| (dir.clone(), rel))
            })
            .max_by_key(|(dir, _)| dir.components().count())
    }

    /// The working files of the checkout at `dir`.
    #[must_use]
    pub fn files(&self, dir: &Path) -> Option<Tree> {
        let mut state = lock(&self.state);
        let repo = state.holding(dir)?;
        repo.checkouts.get(dir).map(|c| c.files.clone())
    }

    /// Whether the checkout at `dir` holds uncommitted changes.
    #[must_use]
    pub fn is_dirty(&self, dir: &Path) -> bool {
        let mut state = lock(&self.state);
        state.holding(dir).is_some_and(|repo| repo.is_dirty(dir))
    }

    /// The tree at the tip of `branch` of the repository at `root`.
    #[must_use]
    pub fn tree(&self, root: &Path, branch: &str) -> Option<Tree> {
        let state = lock(&self.state);
        let repo = state.repos.get(root)?;
        repo.head(branch).map(|c| repo.commits[c].tree.clone())
    }

    /// Branches of the repository at `root`.
    #[must_use]
    pub fn branches(&self, root: &Path) -> Vec<String> {
        lock(&self.state)
            .repos
            .get(root)
            .map(|r| r.branches.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Worktrees (not the root checkout) of the repository at `root`, with their branches.
    #[must_use]
    pub fn worktrees(&self, root: &Path) -> Vec<(PathBuf, String)> {
        lock(&self.state)
            .repos
            .get(root)
            .map(|r| {
                r.checkouts
                    .iter()
                    .filter(|(dir, _)| dir.as_path() != root)
                    .map(|(dir, c)| (dir.clone(), c.branch.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Merges that went through so far, in order.
    #[must_use]
    pub fn merged(&self) -> Vec<MergeRequest> {
        lock(&self.state).merged.clone()
    }

    /// Makes removing the worktree at `dir` fail until [`FakeRepo::unstick`].
    pub fn make_stuck(&self, dir: &Path) {
        lock(&self.state).stuck.insert(dir.to_owned());
    }

    /// Lets removing the worktree at `dir` succeed again.
    pub fn unstick(&self, dir: &Path) {
        lock(&self.state).stuck.remove(dir);
    }

    /// Makes creating a worktree take `latency`, as on a large repository.
    pub fn slow_worktrees(&self, latency: Duration) {
        lock(&self.state).create_latency = latency;
    }

    /// Makes removing a worktree take `latency`.
    pub fn slow_removals(&self, latency: Duration) {
        lock(&self.state).remove_latency = latency;
    }

    /// Makes a merge take `latency` before it happens.
    pub fn slow_merges(&self, latency: Duration) {
        lock(&self.state).merge_latency = latency;
    }

    /// Merges at once (see [`Self::slow_merges`] for a merge that takes time), and remembers
    /// the merge.
    fn merge_now(&self, request: MergeRequest) -> Result<MergeOutcome, RepoError> {
        let mut state = lock(&self.state);
        if state.merged.len() >= COMMITS_MAX {
            return Err(full());
        }
        let outcome = state
            .repos
            .get_mut(&request.root)
            .ok_or_else(|| no_repo(&request.root))?
            .merge(&request)?;
        state.merged.push(request);
        Ok(outcome)
    }

    /// The diff of the checkout at `worktree` against `base` (see [`Repo::diff`]).
    fn diff_now(&self, worktree: &Path, base: &str, overlay: Overlay) -> Result<Diff, RepoError> {
        let mut state = lock(&self.state);
        let repo = state
            .holding(worktree)
            .ok_or_else(|| not_a_checkout(worktree))?;
        let checkout = &repo.checkouts[worktree];
        let head = repo
            .head(&checkout.branch)
            .ok_or_else(|| RepoError::Git(format!("branch {} is gone", checkout.branch)))?;
        let base_head = repo
            .head(base)
            .ok_or_else(|| RepoError::NoSuchBranch(base.to_owned()))?;
        let fork = &repo.commits[repo.merge_base(head, base_head)].tree;
        let committed = &repo.commits[head].tree;
        let mut working = repo.visible(&checkout.files, Some(head));
        for (path, content) in overlay {
            match content {
                Some(bytes) => working.insert(path, String::from_utf8_lossy(&bytes).into_owned()),
                None => working.remove(&path),
            };
        }
        let paths: BTreeSet<&String> = fork.keys().chain(working.keys()).collect();
        let mut files = Vec::new();
        let mut text = String::new();
        for path in paths {
            let Some(kind) = change(fork.get(path), working.get(path)) else {
                continue;
            };
            let (hunk, added, removed) = file_diff(path, fork.get(path), working.get(path));
            let is_committed = committed.get(path) == working.get(path);
            let change =
                if !is_committed && kind == FileChange::Added && committed.get(path).is_none() {
                    FileChange::Untracked
                } else {
                    kind
                };
            files.push(ChangedFile {
                path: path.clone(),
                change,
                added,
                removed,
                committed: is_committed,
            });
            text.push_str(&hunk);
        }
        // Committed first, then by path (the order `Diff::files` promises).
        files.sort_by(|a, b| b.committed.cmp(&a.committed).then(a.path.cmp(&b.path)));
        Ok(Diff { files, text })
    }
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
            take(latency).await;
            let mut state = lock(&self.state);
            let repo = state
                .repos
                .get_mut(&request.root)
                .ok_or_else(|| no_repo(&request.root))?;
            let from = match &request.base {
                Some(base) => repo
                    .head(base)
                    .ok_or_else(|| RepoError::NoSuchBranch(base.clone()))?,
                None => {
                    let branch = repo.checkouts[&request.root].branch.clone();
                    repo.head(&branch).ok_or(RepoError::NoCommits)?
                }
            };
            if repo.branches.contains_key(&request.branch) {
                return Err(RepoError::Git(format!(
                    "a branch named '{}' already exists",
                    request.branch
                )));
            }
            if repo.checkouts.contains_key(&request.path) {
                return Err(RepoError::Git(format!(
                    "'{}' already exists",
                    request.path.display()
                )));
            }
            let files = repo.commits[from].tree.clone();
            repo.branches.insert(request.branch.clone(), from);
            repo.checkouts.insert(
                request.path,
                Checkout {
                    branch: request.branch,
                    files,
                },
            );
            Ok(())
        })
    }

    fn diff(
        &self,
        worktree: PathBuf,
        base: String,
        overlay: Overlay,
    ) -> BoxFuture<'_, Result<Diff, RepoError>> {
        let result = self.diff_now(&worktree, &base, overlay);
        Box::pin(async move { result })
    }

    fn commit_all(
        &self,
        worktree: PathBuf,
        _message: String,
    ) -> BoxFuture<'_, Result<bool, RepoError>> {
        let result = self.commit(&worktree);
        Box::pin(async move { result })
    }

    fn merge(&self, request: MergeRequest) -> BoxFuture<'_, Result<MergeOutcome, RepoError>> {
        Box::pin(async move {
            let latency = lock(&self.state).merge_latency;
            take(latency).await;
            self.merge_now(request)
        })
    }

    fn status(&self, dir: PathBuf) -> BoxFuture<'_, Result<WorktreeStatus, RepoError>> {
        let result = {
            let mut state = lock(&self.state);
            state
                .holding(&dir)
                .ok_or_else(|| not_a_checkout(&dir))
                .and_then(|repo| repo.status(&dir))
        };
        Box::pin(async move { result })
    }

    fn read_committed(
        &self,
        dir: PathBuf,
        path: String,
    ) -> BoxFuture<'_, Result<Option<Vec<u8>>, RepoError>> {
        let result = {
            let mut state = lock(&self.state);
            state
                .holding(&dir)
                .ok_or_else(|| not_a_checkout(&dir))
                .map(|repo| {
                    let head = repo.head(&repo.checkouts[&dir].branch);
                    head.and_then(|head| repo.commits[head].tree.get(&path))
                        .map(|content| content.clone().into_bytes())
                })
        };
        Box::pin(async move { result })
    }

    fn is_tracked(&self, root: PathBuf, path: String) -> BoxFuture<'_, Result<bool, RepoError>> {
        let result = (|| {
            let mut state = lock(&self.state);
            let repo = state.repos.get_mut(&root).ok_or_else(|| no_repo(&root))?;
            let branch = &repo.checkouts[&root].branch;
            // A repository without commits tracks nothing yet.
            Ok(repo
                .head(branch)
                .is_some_and(|head| repo.commits[head].tree.contains_key(&path)))
        })();
        Box::pin(async move { result })
    }

    fn exclude(&self, root: PathBuf, pattern: String) -> BoxFuture<'_, Result<(), RepoError>> {
        let result = lock(&self.state)
            .repos
            .get_mut(&root)
            .map(|repo| {
                repo.excluded.insert(pattern);
            })
            .ok_or_else(|| no_repo(&root));
        Box::pin(async move { result })
    }

    fn remove_worktree(
        &self,
        root: PathBuf,
        path: PathBuf,
        branch: String,
    ) -> BoxFuture<'_, Result<(), RepoError>> {
        Box::pin(async move {
            let latency = lock(&self.state).remove_latency;
            take(latency).await;
            let mut state = lock(&self.state);
            if state.stuck.contains(&path) {
                return Err(RepoError::Git(format!(
                    "could not remove {}: device or resource busy",
                    path.display()
                )));
            }
            let repo = state.repos.get_mut(&root).ok_or_else(|| no_repo(&root))?;
            if path != root {
                repo.checkouts.remove(&path);
            }
            if branch != repo.main && !repo.checkouts.values().any(|c| c.branch == branch) {
                repo.branches.remove(&branch);
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
