//! The invariants every scenario is held to, checked after every step and at the end:
//!
//! - `signals`: no signal is delivered twice (two answers, not replays of one request, carrying
//!   the same signal), none is lost (every `signal_done` an agent was told succeeded reaches a
//!   wait, is overtaken by a later signal or prompt, or its task is gone), none is invented;
//! - `isolation`: a coordinator lists, and gets answers about, only the tasks it created;
//! - `cleanup`: a closed task's worktree, branch and MCP config are gone; at the end every
//!   worktree, and every agent still running, belongs to a task the engine still has;
//! - `user_files`: the user's own files (in every project's checkout) are byte-identical at the
//!   end (a `.mcp.json` whose coordinator is still registered: but for Baton's entry), and the
//!   user's checkout holds no half-done merge;
//! - `bounds`: no coordinator holds more than `TASKS_PER_COORDINATOR_MAX` tasks, and no task's
//!   output more than `SCROLLBACK_BYTES_MAX` bytes;
//! - `no_panic`: nothing panicked.
//!
//! [`Observed`] is what the checker learns as the world runs (from app events, from the answers
//! actors got, from the agents' MCP servers); the checks compare it with the engine and the disk.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Once;

use baton_runtime::core::coordinator::{
    SCROLLBACK_BYTES_MAX, StateChange, TASKS_PER_COORDINATOR_MAX,
};
use baton_runtime::core::ids::{AgentId, BatchId, CoordinatorId, TaskId};
use baton_runtime::core::notify::Notice;
use baton_runtime::engine::AppEvent;

use crate::daemon::{Shared, config_path};

/// Signals sent, given and delivered the checker keeps, in all; past it, it stops checking
/// signals and says so (a bounded run makes far fewer: at most 10,000 steps of 10,000 rounds).
pub const OBSERVED_SIGNALS_MAX: usize = 1_000_000;

/// What the checker knows of one task.
#[derive(Debug, Clone)]
struct TaskFacts {
    name: String,
    coordinator: CoordinatorId,
    worktree: PathBuf,
    branch: String,
    agent: AgentId,
    /// Its place in the order tasks were created.
    created: usize,
    gone: bool,
}

/// A task found by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedTask {
    /// Its id.
    pub id: TaskId,
    /// Its worktree.
    pub worktree: PathBuf,
    /// Its agent's session.
    pub agent: AgentId,
}

/// An answer a wait for a signal delivered to its caller.
#[derive(Debug, Clone)]
struct Delivery {
    task: TaskId,
    at_ms: u64,
    request: Option<String>,
}

/// A notification batch staged for a coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// Its id.
    pub id: BatchId,
    /// How many notifications it carries.
    pub count: usize,
    /// When it fires, in simulated milliseconds.
    pub fires_at_ms: u64,
    /// When it was staged, in simulated milliseconds.
    pub staged_at_ms: u64,
}

/// What the checker learned while the world ran. See the module documentation.
#[derive(Debug, Default)]
pub struct Observed {
    tasks: BTreeMap<TaskId, TaskFacts>,
    /// When each accepted `signal_done` was sent, per task.
    given: BTreeMap<TaskId, Vec<u64>>,
    /// When each `signal_done` was sent, accepted or not (its answer may still be on its way
    /// when a wait delivers it).
    sent: BTreeMap<TaskId, Vec<u64>>,
    /// When each task's signal was last reset by a prompt.
    resets: BTreeMap<TaskId, u64>,
    delivered: Vec<Delivery>,
    staged: BTreeMap<CoordinatorId, Batch>,
    /// The batch last staged for each coordinator, staged still or not.
    last_batch: BTreeMap<CoordinatorId, BatchId>,
    deregistered: BTreeMap<CoordinatorId, u64>,
    /// Signals recorded so far, against [`OBSERVED_SIGNALS_MAX`].
    signals_seen: usize,
    violations: Vec<String>,
}

impl Observed {
    /// Takes in an app event seen at `now_ms`.
    pub fn event(&mut self, event: &AppEvent, now_ms: u64) {
        match event {
            AppEvent::TaskCreated { coordinator, task } => {
                self.tasks.insert(
                    task.id,
                    TaskFacts {
                        name: task.name.clone(),
                        coordinator: *coordinator,
                        worktree: task.worktree.clone(),
                        branch: task.branch.clone(),
                        agent: task.agent,
                        created: self.tasks.len(),
                        gone: false,
                    },
                );
            }
            AppEvent::TaskClosed(task) => self.gone(*task),
            AppEvent::State(task, StateChange::SignalReset) => {
                self.resets.insert(*task, now_ms);
            }
            AppEvent::Notice(coordinator, Notice::Staged(staged)) => {
                let batch = Batch {
                    id: staged.batch,
                    count: staged.notifications.len(),
                    fires_at_ms: crate::daemon::sim_ms(staged.auto_fire_at),
                    staged_at_ms: now_ms,
                };
                self.staged.insert(*coordinator, batch);
                self.last_batch.insert(*coordinator, staged.batch);
            }
            AppEvent::Notice(coordinator, Notice::Cleared) => {
                self.staged.remove(coordinator);
            }
            _ => {}
        }
    }

    /// A task's name, or its id if the checker never saw it created.
    #[must_use]
    pub fn task_name(&self, task: TaskId) -> String {
        self.tasks
            .get(&task)
            .map_or_else(|| task.to_string(), |t| t.name.clone())
    }

    /// The task named `name` (the newest of that name).
    #[must_use]
    pub fn task_named(&self, name: &str) -> Option<NamedTask> {
        self.tasks
            .iter()
            .filter(|(_, t)| t.name == name)
            .max_by_key(|(_, t)| t.created)
            .map(|(id, t)| NamedTask {
                id: *id,
                worktree: t.worktree.clone(),
                agent: t.agent,
            })
    }

    /// The coordinator that created `task`.
    #[must_use]
    pub fn owner(&self, task: TaskId) -> Option<CoordinatorId> {
        self.tasks.get(&task).map(|t| t.coordinator)
    }

    /// The batch last staged for `coordinator`, still staged.
    #[must_use]
    pub fn staged(&self, coordinator: CoordinatorId) -> Option<Batch> {
        self.staged.get(&coordinator).copied()
    }

    /// The batch last staged for `coordinator`, staged still or not.
    #[must_use]
    pub fn last_batch(&self, coordinator: CoordinatorId) -> Option<BatchId> {
        self.last_batch.get(&coordinator).copied()
    }

    /// The app took the batch `batch` of `coordinator` (typed or dropped it).
    pub fn unstage(&mut self, coordinator: CoordinatorId, batch: BatchId) {
        if self.staged.get(&coordinator).is_some_and(|b| b.id == batch) {
            self.staged.remove(&coordinator);
        }
    }

    /// The task is gone from the engine (closed or removed).
    pub fn gone(&mut self, task: TaskId) {
        if let Some(facts) = self.tasks.get_mut(&task) {
            facts.gone = true;
        }
    }

    /// A coordinator was deregistered at `now_ms`: its signals may stay undelivered.
    pub fn deregistered(&mut self, coordinator: CoordinatorId, now_ms: u64) {
        self.deregistered.insert(coordinator, now_ms);
    }

    /// Counts one more signal observation; `false` once past [`OBSERVED_SIGNALS_MAX`] (the
    /// first time, a violation says the checker stopped).
    fn room_for_a_signal(&mut self) -> bool {
        self.signals_seen += 1;
        if self.signals_seen == OBSERVED_SIGNALS_MAX + 1 {
            self.violations.push(format!(
                "bounds: the checker saw more than {OBSERVED_SIGNALS_MAX} signals and stopped checking them"
            ));
        }
        self.signals_seen <= OBSERVED_SIGNALS_MAX
    }

    /// An agent sends `signal_done` now, at `sent_ms`.
    pub fn signal_sent(&mut self, task: TaskId, sent_ms: u64) {
        if self.room_for_a_signal() {
            self.sent.entry(task).or_default().push(sent_ms);
        }
    }

    /// An agent's `signal_done`, sent at `sent_ms`, was accepted.
    pub fn signal_given(&mut self, task: TaskId, sent_ms: u64) {
        if self.room_for_a_signal() {
            self.given.entry(task).or_default().push(sent_ms);
        }
    }

    /// A wait answered its caller with `task` at `at_ms`: its signal, or, when `exited`, its
    /// exit or the signal it gave before it exited.
    pub fn signal_delivered(
        &mut self,
        task: TaskId,
        at_ms: u64,
        request: Option<String>,
        exited: bool,
    ) {
        if !self.room_for_a_signal() {
            return;
        }
        let twice = self.delivered.iter().any(|d| {
            d.task == task && d.at_ms == at_ms && (d.request.is_none() || d.request != request)
        });
        if twice {
            self.violations.push(format!(
                "signals: what {} reported at t={at_ms} was delivered twice",
                self.task_name(task)
            ));
        }
        let given = self
            .sent
            .get(&task)
            .is_some_and(|sent| sent.iter().any(|s| *s <= at_ms));
        if !given && !exited {
            self.violations.push(format!(
                "signals: a wait returned a signal of {} at t={at_ms} that no agent gave",
                self.task_name(task)
            ));
        }
        self.delivered.push(Delivery {
            task,
            at_ms,
            request,
        });
    }

    /// Signals given and never delivered, overtaken or excused.
    fn lost(&self) -> Vec<String> {
        let mut lost = Vec::new();
        for (task, sent) in &self.given {
            let facts = self.tasks.get(task);
            if facts.is_none_or(|f| f.gone) {
                continue;
            }
            let Some(&last) = sent.iter().max() else {
                continue;
            };
            let excused_after = |at: u64| at >= last;
            let delivered = self
                .delivered
                .iter()
                .any(|d| d.task == *task && d.at_ms >= last);
            let reset = self.resets.get(task).is_some_and(|at| excused_after(*at));
            let left = facts.is_some_and(|f| {
                self.deregistered
                    .get(&f.coordinator)
                    .is_some_and(|at| excused_after(*at))
            });
            if !(delivered || reset || left) {
                lost.push(format!(
                    "signals: the signal {} gave at t={last} was never delivered",
                    self.task_name(*task)
                ));
            }
        }
        lost
    }
}

thread_local! {
    static PANICS: Cell<u64> = const { Cell::new(0) };
}

/// Panics on this thread so far (a simulation runs on one thread). Counting starts with the
/// first call.
#[must_use]
pub fn panics() -> u64 {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|count| count.set(count.get() + 1));
            previous(info);
        }));
    });
    PANICS.with(Cell::get)
}

/// What the world started with, for the end checks.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    /// The user's files outside git, with their bytes.
    pub user_files: BTreeMap<PathBuf, Vec<u8>>,
    /// The project's root checkout.
    pub root: PathBuf,
    /// Panics counted before the run.
    pub panics: u64,
}

/// Checks the invariants in `names` now; `at_end` adds the checks that only hold once
/// everything settled. Returns each violation found.
pub async fn check(
    shared: &Shared,
    baseline: &Baseline,
    names: &[&str],
    at_end: bool,
    checkout_dirtied: bool,
) -> Vec<String> {
    let on = |name: &str| names.contains(&name);
    let mut found = Vec::new();
    let observed_violations = std::mem::take(&mut shared.observed().violations);
    found.extend(
        observed_violations
            .into_iter()
            .filter(|v| on(v.split(':').next().unwrap_or_default())),
    );
    // The engine's view, if the daemon runs (a crashed daemon has nothing to compare).
    let handles = shared.handles().await.ok();
    let mut listed: BTreeSet<TaskId> = BTreeSet::new();
    if let Some(handles) = &handles {
        for (id, handle) in &handles.registered {
            // The shared snapshot: no copy of the list while no task changed.
            let Ok(list) = handle.task_list().await else {
                continue;
            };
            let tasks = list.tasks();
            if on("bounds") && tasks.len() > TASKS_PER_COORDINATOR_MAX {
                found.push(format!(
                    "bounds: {} holds {} tasks, more than {TASKS_PER_COORDINATOR_MAX}",
                    shared.coordinator_name(*id),
                    tasks.len()
                ));
            }
            for task in tasks {
                listed.insert(task.id);
                if on("bounds") {
                    // The ring itself, raw: its text (`task_output`) is cut to the bound when
                    // made, and making it costs the simulator more than the ring's copy.
                    let held = handle
                        .agent_scrollback(task.agent)
                        .await
                        .map_or(0, |ring| ring.len());
                    if held > SCROLLBACK_BYTES_MAX {
                        found.push(format!(
                            "bounds: {}'s output holds {held} bytes, more than {SCROLLBACK_BYTES_MAX}",
                            task.name
                        ));
                    }
                }
                let owner = shared.observed().owner(task.id);
                if on("isolation") && owner.is_some_and(|owner| owner != *id) {
                    found.push(format!(
                        "isolation: {} lists {}, a task of {}",
                        shared.coordinator_name(*id),
                        task.name,
                        owner
                            .map(|o| shared.coordinator_name(o))
                            .unwrap_or_default()
                    ));
                }
            }
        }
        for handle in &handles.orphans {
            if let Ok(list) = handle.task_list().await {
                listed.extend(list.tasks().iter().map(|t| t.id));
            }
        }
    }
    if on("cleanup") {
        let closed: Vec<(TaskId, TaskFacts)> = shared
            .observed()
            .tasks
            .iter()
            .filter(|(_, t)| t.gone)
            .map(|(id, t)| (*id, t.clone()))
            .collect();
        // The repository is read only when something is to be found in it: a closed task's
        // leftovers, or (at the end) a worktree no task holds.
        let read = at_end || !closed.is_empty();
        let worktrees = if read {
            shared.repo.worktrees(&baseline.root)
        } else {
            Vec::new()
        };
        let branches = if read {
            shared.repo.branches(&baseline.root)
        } else {
            Vec::new()
        };
        for (id, facts) in &closed {
            if worktrees.iter().any(|(dir, _)| *dir == facts.worktree) {
                found.push(format!(
                    "cleanup: {} is gone, its worktree remains",
                    facts.name
                ));
            }
            if branches.contains(&facts.branch) {
                found.push(format!(
                    "cleanup: {} is gone, its branch remains",
                    facts.name
                ));
            }
            if shared.files.get(&config_path(*id)).is_some() {
                found.push(format!(
                    "cleanup: {} is gone, its MCP config remains",
                    facts.name
                ));
            }
        }
        if at_end && handles.is_some() {
            let known: BTreeMap<PathBuf, TaskId> = shared
                .observed()
                .tasks
                .iter()
                .map(|(id, t)| (t.worktree.clone(), *id))
                .collect();
            let live_worktrees: BTreeSet<PathBuf> = known
                .iter()
                .filter(|(_, id)| listed.contains(id))
                .map(|(dir, _)| dir.clone())
                .collect();
            if let Some(door) = shared.door() {
                for spec in door.pty.inner.spawned() {
                    if door.pty.inner.is_alive(spec.agent) && !live_worktrees.contains(&spec.cwd) {
                        found.push(format!(
                            "cleanup: an agent still runs in {}, which no task holds",
                            spec.cwd.display()
                        ));
                    }
                }
            }
            for (dir, branch) in worktrees {
                let owned = known.get(&dir).is_some_and(|id| listed.contains(id));
                if !owned {
                    found.push(format!(
                        "cleanup: worktree {} ({branch}) belongs to no task",
                        dir.display()
                    ));
                }
            }
        }
    }
    if at_end && on("user_files") {
        // Projects whose coordinator is still registered: their `.mcp.json` holds Baton's entry.
        let wired: BTreeSet<PathBuf> = handles.as_ref().map_or_else(BTreeSet::new, |handles| {
            shared
                .declared
                .iter()
                .filter(|d| {
                    shared
                        .registered(&d.name)
                        .is_some_and(|r| handles.registered.contains_key(&r.id))
                })
                .map(|d| d.request.project_root.clone())
                .collect()
        });
        for (path, bytes) in &baseline.user_files {
            let now = user_file(shared, path);
            let kept = match path.parent() {
                Some(project) if wired.contains(project) && path.ends_with(MCP_JSON) => now
                    .as_deref()
                    .is_some_and(|now| only_baton_added(bytes, now)),
                _ => now.as_ref() == Some(bytes),
            };
            if !kept {
                found.push(format!(
                    "user_files: {} changed (or went missing)",
                    relative(path, &baseline.root)
                ));
            }
        }
        if !checkout_dirtied && shared.repo.is_dirty(&baseline.root) {
            found.push("user_files: the user's checkout holds uncommitted changes".to_owned());
        }
    }
    if at_end && on("signals") {
        found.extend(shared.observed().lost());
    }
    if on("no_panic") {
        let panics = panics() - baseline.panics;
        if panics > 0 {
            found.push(format!("no_panic: {panics} panic(s)"));
        }
    }
    found
}

/// The name of a project's MCP config, which the registry merges its entry into.
const MCP_JSON: &str = ".mcp.json";

/// A user's file as it is now: in its checkout (the world's files are), or on the disk.
fn user_file(shared: &Shared, path: &Path) -> Option<Vec<u8>> {
    match shared.repo.checkout_of(path) {
        Some((dir, rel)) => shared
            .repo
            .files(&dir)
            .and_then(|files| files.get(&rel).map(|c| c.clone().into_bytes())),
        None => shared.files.get(path).map(|f| f.bytes),
    }
}

/// Whether `now` is the user's `.mcp.json` (`before`) with Baton's server merged in and
/// nothing else changed, at the JSON level (the registry rewrites the file).
fn only_baton_added(before: &[u8], now: &[u8]) -> bool {
    let (Ok(mut before), Ok(mut now)) = (
        serde_json::from_slice::<serde_json::Value>(before),
        serde_json::from_slice::<serde_json::Value>(now),
    ) else {
        return false;
    };
    let without_baton = |value: &mut serde_json::Value| {
        value["mcpServers"]
            .as_object_mut()
            .and_then(|servers| servers.remove("baton"))
    };
    without_baton(&mut before);
    without_baton(&mut now).is_some() && now == before
}

fn relative(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::Observed;
    use baton_runtime::core::ids::{AgentId, TaskId};

    #[test]
    fn one_signal_delivered_twice_is_caught_but_a_replay_is_not() {
        let task = TaskId::from_random([1; 16]);
        let mut observed = Observed::default();
        observed.signal_sent(task, 10);
        observed.signal_delivered(task, 12, Some("r1".into()), false);
        observed.signal_delivered(task, 12, Some("r1".into()), false);
        assert!(observed.violations.is_empty(), "{:?}", observed.violations);
        observed.signal_delivered(task, 12, Some("r2".into()), false);
        assert_eq!(observed.violations.len(), 1);
        assert!(observed.violations[0].contains("delivered twice"));
    }

    #[test]
    fn a_signal_nobody_received_is_lost_unless_overtaken() {
        let task = TaskId::from_random([2; 16]);
        let mut observed = Observed::default();
        observed.signal_given(task, 10);
        assert_eq!(
            observed.lost().len(),
            0,
            "a task the checker never saw is excused"
        );
        observed.tasks.insert(
            task,
            super::TaskFacts {
                name: "t".into(),
                coordinator: baton_runtime::core::ids::CoordinatorId::from_random([3; 16]),
                worktree: "/w".into(),
                branch: "b".into(),
                agent: AgentId::from_random([5; 16]),
                created: 0,
                gone: false,
            },
        );
        assert_eq!(observed.lost().len(), 1);
        observed.resets.insert(task, 11);
        assert!(observed.lost().is_empty(), "a prompt after it resets it");
    }

    #[test]
    fn a_name_finds_the_newest_task_of_that_name() {
        use baton_runtime::engine::{AppEvent, TaskView};
        let mut observed = Observed::default();
        let coordinator = baton_runtime::core::ids::CoordinatorId::from_random([1; 16]);
        // The second task's id sorts first: creation order, not id order, decides.
        for (n, id) in [(1u8, [0xee; 16]), (2, [0x11; 16])] {
            let task = TaskView {
                id: TaskId::from_random(id),
                name: "same".into(),
                branch: format!("task/same-{n}"),
                worktree: format!("/w{n}").into(),
                agent: AgentId::from_random([n; 16]),
                status: baton_runtime::core::coordinator::Status::Running,
                exit_code: None,
                signalled_at: None,
                state: baton_runtime::core::state::Verdict::starting(
                    baton_runtime::core::time::Millis(0),
                ),
                policy: baton_runtime::core::coordinator::Policy::Review,
                checks: Vec::new(),
            };
            observed.event(&AppEvent::TaskCreated { coordinator, task }, 0);
        }
        let found = observed.task_named("same").expect("found");
        assert_eq!(found.id, TaskId::from_random([0x11; 16]));
        assert_eq!(found.agent, AgentId::from_random([2; 16]));
    }

    #[test]
    fn a_signal_nobody_gave_is_caught() {
        let mut observed = Observed::default();
        observed.signal_delivered(TaskId::from_random([4; 16]), 5, None, false);
        assert_eq!(observed.violations.len(), 1);
        observed.signal_delivered(TaskId::from_random([5; 16]), 5, None, true);
        assert_eq!(observed.violations.len(), 1, "an exit needs no signal");
        assert!(observed.violations[0].contains("no agent gave"));
    }
}
