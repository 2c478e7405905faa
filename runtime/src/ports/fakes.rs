//! In-memory ports with real behaviour, for engine tests and the simulator.
//!
//! Each fake keeps the state its production counterpart would (files with their modes, PTY
//! sessions with their input and a bounded output channel, a repository's branches and
//! worktrees) and can be told to fail the way the real thing fails (a full disk, a spawn that
//! cannot start, a conflicting merge, a worktree that will not go). Locks guard plain data and
//! are never held across an await.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use super::{
    BoxFuture, ChangedFile, Clock, Diff, Entropy, ExitStatus, FileMode, Files, FilesError, Journal,
    JournalError, MergeOutcome, MergeRequest, PtyError, PtyEvent, PtyHost, PtySession, Repo,
    RepoError, SpawnSpec, WorktreeRequest,
};
use crate::core::coordinator::Records;
use crate::core::ids::{AgentId, CoordinatorId};
use crate::core::time::Millis;

/// Events a fake PTY session holds before the reader must catch up.
pub const FAKE_PTY_EVENTS_MAX: usize = 64;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks is a bug in a test; the data is still usable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Wall time that follows tokio time from a fixed start: virtual when tokio time is paused.
#[derive(Debug)]
pub struct FakeClock {
    start: Millis,
    origin: tokio::time::Instant,
}

impl FakeClock {
    /// A clock reading `start` now.
    #[must_use]
    pub fn starting_at(start: Millis) -> Self {
        FakeClock {
            start,
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Millis {
        let elapsed = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.start.plus(elapsed)
    }
}

/// Deterministic randomness from a seed (SplitMix64): the same seed, the same ids.
#[derive(Debug)]
pub struct SeededEntropy {
    state: Mutex<u64>,
}

impl SeededEntropy {
    /// A generator starting from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        SeededEntropy {
            state: Mutex::new(seed),
        }
    }
}

impl Entropy for SeededEntropy {
    fn fill(&self, bytes: &mut [u8]) {
        let mut state = lock(&self.state);
        for chunk in bytes.chunks_mut(8) {
            *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = *state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// Where a failing write of [`FakeFiles`] fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WriteFailure {
    /// Writing the temporary file: no space left on device.
    #[default]
    DiskFull,
    /// Renaming it over the old file: operation not permitted.
    Rename,
}

/// A file held by [`FakeFiles`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeFile {
    /// Content.
    pub bytes: Vec<u8>,
    /// Mode it was written with.
    pub mode: FileMode,
}

#[derive(Debug, Default)]
struct FilesState {
    files: BTreeMap<PathBuf, FakeFile>,
    /// Writes that go through before the failing ones begin, counted down.
    passing_writes: usize,
    /// Writes that will fail, counted down, and how they fail.
    failing_writes: usize,
    write_failure: WriteFailure,
    /// Removals that will fail with "permission denied", counted down.
    failing_removes: usize,
    /// Symbolic links (their paths): a file or directory no operation may go through.
    links: std::collections::BTreeSet<PathBuf>,
}

/// A file system in memory.
#[derive(Debug, Default)]
pub struct FakeFiles {
    state: Mutex<FilesState>,
}

impl FakeFiles {
    /// The file at `path`, if any.
    #[must_use]
    pub fn get(&self, path: &Path) -> Option<FakeFile> {
        lock(&self.state).files.get(path).cloned()
    }

    /// Puts a file in place, as a user would have.
    pub fn put(&self, path: &Path, bytes: &[u8]) {
        let file = FakeFile {
            bytes: bytes.to_vec(),
            mode: FileMode::Default,
        };
        lock(&self.state).files.insert(path.to_owned(), file);
    }

    /// Every path held, in order.
    #[must_use]
    pub fn paths(&self) -> Vec<PathBuf> {
        lock(&self.state).files.keys().cloned().collect()
    }

    /// Makes the next `count` writes fail as on a full disk (leaving the files as they were).
    pub fn fail_writes(&self, count: usize) {
        self.fail_writes_with(count, WriteFailure::DiskFull);
    }

    /// Makes the next `count` writes fail at `failure` (leaving the files as they were: an
    /// atomic write that fails at any step leaves the old file).
    pub fn fail_writes_with(&self, count: usize, failure: WriteFailure) {
        let mut state = lock(&self.state);
        state.failing_writes = count;
        state.write_failure = failure;
    }

    /// Lets the next `pass` writes through, then fails `count` as on a full disk: a failure
    /// half-way through a sequence of writes.
    pub fn fail_writes_after(&self, pass: usize, count: usize) {
        let mut state = lock(&self.state);
        state.passing_writes = pass;
        state.failing_writes = count;
        state.write_failure = WriteFailure::DiskFull;
    }

    /// Makes the next `count` removals fail as without permission (leaving the files in place).
    pub fn fail_removes(&self, count: usize) {
        lock(&self.state).failing_removes = count;
    }

    /// Puts a symbolic link at `path` (to anywhere: no operation goes through it).
    pub fn link(&self, path: &Path) {
        lock(&self.state).links.insert(path.to_owned());
    }

    /// Refuses `path` inside `root` as the `Files` port must: outside `root`, or a link on the
    /// way (one of [`Self::link`], or the last component `links` of a caller names, relative
    /// to `root`).
    ///
    /// # Errors
    /// The refusal.
    pub fn confine(
        &self,
        operation: &'static str,
        root: &Path,
        path: &Path,
        links: &[PathBuf],
    ) -> Result<(), FilesError> {
        let parts = super::inside(operation, root, path)?;
        let held = &lock(&self.state).links;
        let mut walked = PathBuf::new();
        for part in parts {
            walked.push(part);
            if held.contains(&root.join(&walked)) || links.contains(&walked) {
                return Err(FilesError::link(operation, path, &walked));
            }
        }
        Ok(())
    }

    /// The failure of the next write to `path`, if writes are set to fail (counting it down):
    /// for a file system that keeps some files elsewhere but shares these faults.
    #[must_use]
    pub fn take_write_fault(&self, path: &Path) -> Option<FilesError> {
        let mut state = lock(&self.state);
        if state.failing_writes == 0 {
            return None;
        }
        if state.passing_writes > 0 {
            state.passing_writes -= 1;
            return None;
        }
        state.failing_writes -= 1;
        let (operation, reason) = match state.write_failure {
            WriteFailure::DiskFull => ("write", "no space left on device"),
            WriteFailure::Rename => ("rename", "operation not permitted"),
        };
        Some(FilesError::new(operation, path, io::Error::other(reason)))
    }

    /// The failure of the next removal of `path`, if removals are set to fail.
    #[must_use]
    pub fn take_remove_fault(&self, path: &Path) -> Option<FilesError> {
        let mut state = lock(&self.state);
        if state.failing_removes == 0 {
            return None;
        }
        state.failing_removes -= 1;
        Some(FilesError::new(
            "remove",
            path,
            io::Error::other("permission denied"),
        ))
    }
}

impl Files for FakeFiles {
    fn read<'a>(
        &'a self,
        root: &'a Path,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, FilesError>> {
        let result = self.confine("read", root, path, &[]).map(|()| {
            lock(&self.state)
                .files
                .get(path)
                .map(|file| file.bytes.clone())
        });
        Box::pin(async move { result })
    }

    fn write_atomic<'a>(
        &'a self,
        root: &'a Path,
        path: &'a Path,
        bytes: &'a [u8],
        mode: FileMode,
    ) -> BoxFuture<'a, Result<(), FilesError>> {
        let result = self.confine("write", root, path, &[]).and_then(|()| {
            match self.take_write_fault(path) {
                Some(fault) => Err(fault),
                None => {
                    lock(&self.state).files.insert(
                        path.to_owned(),
                        FakeFile {
                            bytes: bytes.to_vec(),
                            mode,
                        },
                    );
                    Ok(())
                }
            }
        });
        Box::pin(async move { result })
    }

    fn remove<'a>(
        &'a self,
        root: &'a Path,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<bool, FilesError>> {
        let result = self.confine("remove", root, path, &[]).and_then(|()| {
            match self.take_remove_fault(path) {
                Some(fault) => Err(fault),
                None => Ok(lock(&self.state).files.remove(path).is_some()),
            }
        });
        Box::pin(async move { result })
    }

    fn list<'a>(&'a self, dir: &'a Path) -> BoxFuture<'a, Result<Vec<PathBuf>, FilesError>> {
        let state = lock(&self.state);
        let files = state
            .files
            .keys()
            .filter(|path| path.parent() == Some(dir) && !state.links.contains(*path))
            .cloned()
            .collect();
        Box::pin(async move { Ok(files) })
    }
}

/// The records each coordinator saved last, in memory (what a restart would find).
#[derive(Debug, Default)]
pub struct MemoryJournal {
    saved: Mutex<BTreeMap<CoordinatorId, (u64, Records)>>,
    failing: std::sync::atomic::AtomicBool,
}

impl MemoryJournal {
    /// What `id` saved last.
    #[must_use]
    pub fn saved(&self, id: CoordinatorId) -> Option<Records> {
        lock(&self.saved)
            .get(&id)
            .map(|(_, records)| records.clone())
    }

    /// Makes every save fail (`true`, a full disk) or succeed again.
    pub fn fail_saves(&self, failing: bool) {
        self.failing
            .store(failing, std::sync::atomic::Ordering::Relaxed);
    }

    /// Forgets `id` (it was deregistered).
    pub fn forget(&self, id: CoordinatorId) {
        lock(&self.saved).remove(&id);
    }
}

impl Journal for MemoryJournal {
    fn save(
        &self,
        id: CoordinatorId,
        seq: u64,
        records: Records,
    ) -> BoxFuture<'_, Result<(), JournalError>> {
        if self.failing.load(std::sync::atomic::Ordering::Relaxed) {
            let full = JournalError::Failed("no space left on device".to_owned());
            return Box::pin(async move { Err(full) });
        }
        let mut saved = lock(&self.saved);
        if saved.get(&id).is_none_or(|(kept, _)| *kept < seq) {
            saved.insert(id, (seq, records));
        }
        Box::pin(async { Ok(()) })
    }
}

#[derive(Debug)]
struct FakeSession {
    events: mpsc::Sender<PtyEvent>,
    input: Vec<u8>,
    size: (u16, u16),
    alive: bool,
}

#[derive(Debug, Default)]
struct PtyState {
    sessions: BTreeMap<AgentId, FakeSession>,
    spawned: Vec<SpawnSpec>,
    failing_spawns: Vec<String>,
    /// Writes to come that fail (`true`) or go through (`false`), in order; then all go through.
    write_script: std::collections::VecDeque<bool>,
}

/// Terminals in memory: a test plays the agents, writing their output and reading what the
/// engine typed.
#[derive(Debug, Default)]
pub struct FakePty {
    state: Mutex<PtyState>,
}

impl FakePty {
    /// Every spawn request so far, in order.
    #[must_use]
    pub fn spawned(&self) -> Vec<SpawnSpec> {
        lock(&self.state).spawned.clone()
    }

    /// Everything written to the session's input.
    #[must_use]
    pub fn input(&self, agent: AgentId) -> Vec<u8> {
        lock(&self.state)
            .sessions
            .get(&agent)
            .map(|s| s.input.clone())
            .unwrap_or_default()
    }

    /// The session's terminal size.
    #[must_use]
    pub fn size(&self, agent: AgentId) -> Option<(u16, u16)> {
        lock(&self.state).sessions.get(&agent).map(|s| s.size)
    }

    /// Whether the session's process runs.
    #[must_use]
    pub fn is_alive(&self, agent: AgentId) -> bool {
        lock(&self.state)
            .sessions
            .get(&agent)
            .is_some_and(|s| s.alive)
    }

    /// Scripts the outcome of the next writes: `true` fails one, `false` lets one through.
    pub fn script_writes(&self, outcomes: &[bool]) {
        lock(&self.state).write_script.extend(outcomes);
    }

    /// Makes the next spawn fail with `reason`.
    pub fn fail_next_spawn(&self, reason: &str) {
        lock(&self.state).failing_spawns.push(reason.to_owned());
    }

    /// The agent prints `bytes`. Waits while the session's channel is full.
    ///
    /// # Errors
    /// No live session with this id.
    pub async fn print(&self, agent: AgentId, bytes: &[u8]) -> Result<(), PtyError> {
        let sender = self.live_sender(agent)?;
        sender
            .send(PtyEvent::Output(bytes.to_vec()))
            .await
            .map_err(|_| PtyError::NotFound(agent))
    }

    /// The agent's process ends with `status`.
    ///
    /// # Errors
    /// No live session with this id.
    pub async fn exit(&self, agent: AgentId, status: ExitStatus) -> Result<(), PtyError> {
        let sender = self.live_sender(agent)?;
        if let Some(session) = lock(&self.state).sessions.get_mut(&agent) {
            session.alive = false;
        }
        sender
            .send(PtyEvent::Exited(status))
            .await
            .map_err(|_| PtyError::NotFound(agent))
    }

    fn live_sender(&self, agent: AgentId) -> Result<mpsc::Sender<PtyEvent>, PtyError> {
        let state = lock(&self.state);
        match state.sessions.get(&agent) {
            Some(session) if session.alive => Ok(session.events.clone()),
            _ => Err(PtyError::NotFound(agent)),
        }
    }
}

impl PtyHost for FakePty {
    fn spawn(&self, spec: SpawnSpec) -> BoxFuture<'_, Result<PtySession, PtyError>> {
        let result = {
            let mut state = lock(&self.state);
            state.spawned.push(spec.clone());
            if state.failing_spawns.is_empty() {
                let (events, receiver) = mpsc::channel(FAKE_PTY_EVENTS_MAX);
                let size = (spec.cols, spec.rows);
                let agent = spec.agent;
                state.sessions.insert(
                    agent,
                    FakeSession {
                        events,
                        input: Vec::new(),
                        size,
                        alive: true,
                    },
                );
                Ok(PtySession { events: receiver })
            } else {
                let reason = state.failing_spawns.remove(0);
                let program = spec.argv.first().cloned().unwrap_or_default();
                Err(PtyError::Spawn { program, reason })
            }
        };
        Box::pin(async move { result })
    }

    fn write<'a>(&'a self, agent: AgentId, bytes: &'a [u8]) -> BoxFuture<'a, Result<(), PtyError>> {
        let result = {
            let mut state = lock(&self.state);
            let fail = state.write_script.pop_front().unwrap_or(false);
            match state.sessions.get_mut(&agent) {
                Some(_) if fail => Err(PtyError::Io {
                    agent,
                    reason: "write failed: broken pipe".into(),
                }),
                Some(session) if session.alive => {
                    session.input.extend_from_slice(bytes);
                    Ok(())
                }
                _ => Err(PtyError::NotFound(agent)),
            }
        };
        Box::pin(async move { result })
    }

    fn resize(&self, agent: AgentId, cols: u16, rows: u16) -> BoxFuture<'_, Result<(), PtyError>> {
        let result = match lock(&self.state).sessions.get_mut(&agent) {
            Some(session) if session.alive => {
                session.size = (cols, rows);
                Ok(())
            }
            _ => Err(PtyError::NotFound(agent)),
        };
        Box::pin(async move { result })
    }

    fn kill(&self, agent: AgentId) -> BoxFuture<'_, Result<(), PtyError>> {
        let sender = {
            let mut state = lock(&self.state);
            match state.sessions.get_mut(&agent) {
                Some(session) if session.alive => {
                    session.alive = false;
                    Ok(session.events.clone())
                }
                _ => Err(PtyError::NotFound(agent)),
            }
        };
        Box::pin(async move {
            let sender = sender?;
            let killed = ExitStatus {
                code: None,
                signal: Some(9),
            };
            // The reader may be gone already; the process is dead either way.
            let _ = sender.send(PtyEvent::Exited(killed)).await;
            Ok(())
        })
    }
}

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

impl FakeFiles {
    /// Removes every file under `dir`.
    pub fn remove_under(&self, dir: &Path) {
        lock(&self.state)
            .files
            .retain(|path, _| !path.starts_with(dir));
    }
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
        _overlay: super::Overlay,
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

    use super::{FakeFiles, FakePty, FakeRepo, SeededEntropy};
    use crate::core::ids::AgentId;
    use crate::ports::{
        Entropy, ExitStatus, FileMode, Files, PtyError, PtyEvent, PtyHost, Repo, RepoError,
        SpawnSpec, WorktreeRequest,
    };

    fn spec(agent: AgentId) -> SpawnSpec {
        SpawnSpec {
            agent,
            argv: vec!["claude".into()],
            env: Vec::new(),
            cwd: "/w".into(),
            cols: 120,
            rows: 40,
        }
    }

    #[test]
    fn seeded_entropy_repeats_for_the_same_seed_only() {
        let (a, b, c) = (
            SeededEntropy::new(7),
            SeededEntropy::new(7),
            SeededEntropy::new(8),
        );
        let draw = |e: &SeededEntropy| {
            let mut bytes = [0; 20];
            e.fill(&mut bytes);
            bytes
        };
        assert_eq!(draw(&a), draw(&b));
        assert_ne!(draw(&a), draw(&c));
        assert_ne!(draw(&a), draw(&b), "a generator moves on");
    }

    #[tokio::test]
    async fn fake_files_keep_modes_and_fail_like_a_full_disk() {
        let files = FakeFiles::default();
        let (root, path) = (Path::new("/tmp"), Path::new("/tmp/config.json"));
        files
            .write_atomic(root, path, b"{}", FileMode::OwnerOnly)
            .await
            .unwrap();
        assert_eq!(files.get(path).unwrap().mode, FileMode::OwnerOnly);
        files.fail_writes(1);
        let error = files
            .write_atomic(root, path, b"new", FileMode::OwnerOnly)
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("no space left on device"),
            "{error}"
        );
        assert_eq!(
            files.read(root, path).await.unwrap(),
            Some(b"{}".to_vec()),
            "left as it was"
        );
        assert!(files.remove(root, path).await.unwrap());
        assert!(!files.remove(root, path).await.unwrap());
        assert_eq!(files.read(root, path).await.unwrap(), None);
    }

    #[tokio::test]
    async fn fake_files_refuse_links_and_paths_outside_their_root() {
        let files = FakeFiles::default();
        let root = Path::new("/repo/wt");
        files.link(Path::new("/repo/wt/.gemini"));
        files.link(Path::new("/repo/wt/AGENTS.md"));
        for path in [
            "/repo/wt/.gemini/settings.json",
            "/repo/wt/AGENTS.md",
            "/home/x",
        ] {
            let error = files
                .write_atomic(root, Path::new(path), b"x", FileMode::Default)
                .await
                .unwrap_err();
            assert!(error.is_confinement(), "{path}: {error}");
            assert!(
                files
                    .read(root, Path::new(path))
                    .await
                    .unwrap_err()
                    .is_confinement()
            );
            assert!(
                files
                    .remove(root, Path::new(path))
                    .await
                    .unwrap_err()
                    .is_confinement()
            );
        }
        assert!(files.paths().is_empty());
    }

    #[tokio::test]
    async fn fake_pty_sessions_carry_output_input_and_exit() {
        let pty = FakePty::default();
        let agent = AgentId::from_random([1; 16]);
        let mut session = pty.spawn(spec(agent)).await.unwrap();
        pty.print(agent, b"hello").await.unwrap();
        pty.write(agent, b"typed").await.unwrap();
        assert_eq!(pty.input(agent), b"typed");
        pty.kill(agent).await.unwrap();
        assert_eq!(
            session.events.recv().await,
            Some(PtyEvent::Output(b"hello".to_vec()))
        );
        let killed = ExitStatus {
            code: None,
            signal: Some(9),
        };
        assert_eq!(session.events.recv().await, Some(PtyEvent::Exited(killed)));
        assert_eq!(
            pty.write(agent, b"late").await,
            Err(PtyError::NotFound(agent))
        );
        pty.fail_next_spawn("no such file");
        assert!(matches!(
            pty.spawn(spec(AgentId::from_random([2; 16]))).await,
            Err(PtyError::Spawn { .. })
        ));
    }

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
