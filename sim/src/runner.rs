//! Runs a scenario: builds its world, plays its steps and faults on simulated time, checks its
//! expectations and the invariants, and returns its trace and every failure.
//!
//! Hosts: `daemon` runs [`daemon::serve`] (restarted by turmoil after a `crash_daemon` fault);
//! `scenario` plays the actors. Each actor is a lane: its steps run one after another, each at
//! its time or as soon as the actor's previous step was answered, whichever is later; lanes run
//! side by side. A step whose `${binding}` another lane has not bound yet waits for it.
//!
//! Crashes are applied between turmoil steps by the loop that drives the simulation (turmoil
//! crashes and restarts a host only from outside it); every other fault is played inside.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use baton_runtime::core::coordinator::SignalOutcome;
use baton_runtime::ports::fakes::{FakeFiles, FakeRepo, WriteFailure};
use serde_json::Value;
use tokio::sync::Notify;

use crate::agent::{self, Action};
use crate::calls;
use crate::daemon::{self, Declared, Script, Shared};
use crate::invariants::{self, Baseline};
use crate::scenario::{
    APP_ACTOR, At, DRAIN_MS_DEFAULT, Fault, SETTLE_MS_DEFAULT, Scenario, Step, invariant_names,
    parse_at,
};
use crate::trace::Trace;
use crate::world::{DAEMON_HOST, EPOCH_MS, PROJECT_ROOT, SIMULATION_MS_MAX, TICK_MS};
use baton_runtime::daemon::registry::RegisterRequest;

/// An expected value meaning "this field is null" (TOML has no null).
pub const EXPECT_NULL: &str = "@null";
/// An expected value meaning "this field is there, whatever its value".
pub const EXPECT_ANY: &str = "@any";
/// An expected value meaning "this field is not there".
pub const EXPECT_ABSENT: &str = "@absent";

/// An expected value `@starts:text` means "a string starting with `text`".
pub const EXPECT_STARTS: &str = "@starts:";

/// An expected value `@ends:text` means "a string ending with `text`".
pub const EXPECT_ENDS: &str = "@ends:";

/// The host that plays a scenario's actors.
pub const SCENARIO_HOST: &str = "scenario";
/// Longest answer shown in a trace line, in characters (the rest is cut with a count).
pub const ANSWER_TRACE_CHARS_MAX: usize = 400;
/// Waits for a signal the end check makes per coordinator to collect what is still pending.
pub const PROBE_WAITS_MAX: usize = crate::scenario::SCENARIO_ITEMS_MAX;

/// What a run gave.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The seed it ran with.
    pub seed: u64,
    /// What happened.
    pub trace: Trace,
    /// Every failed expectation and broken invariant, in order; empty when the scenario
    /// passed.
    pub failures: Vec<String>,
    /// Simulated time the run took, in milliseconds.
    pub simulated_ms: u64,
    /// Every call the steps made, with its arguments and its whole answer (the trace cuts long
    /// answers), in the order the answers came: what the differential test compares with a real
    /// daemon's answers.
    pub answers: Vec<StepAnswer>,
    /// The values the steps could name at the end (`${name}`), `id:<coordinator>` and
    /// `token:<coordinator>` among them.
    pub bindings: BTreeMap<String, Value>,
}

/// One call a step made (a round, a `then`, a parallel copy), and its answer.
#[derive(Debug, Clone)]
pub struct StepAnswer {
    /// The step's index in the file, from 0.
    pub step: usize,
    /// Its actor.
    pub actor: String,
    /// The call.
    pub call: String,
    /// Its arguments, bindings substituted.
    pub args: Value,
    /// What came back.
    pub answer: calls::Answer,
}

/// Reads and runs the scenario file at `path`, with `seed` instead of the file's when given.
///
/// # Errors
/// The file cannot be read or is not a valid scenario, or the simulation could not run.
pub fn run_file(path: &Path, seed: Option<u64>) -> anyhow::Result<Outcome> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let scenario =
        crate::scenario::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    run(&scenario, dir, seed).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// A step, with its time resolved.
#[derive(Debug, Clone)]
struct Planned {
    index: usize,
    /// The earliest it may start (the plan's times, ignoring waits for answers).
    at_ms: u64,
    when: When,
    /// The step before it in the file.
    prev: Option<usize>,
    /// The step before it in its lane (its actor's, or the lane it names).
    lane_prev: Option<usize>,
    step: Step,
}

/// When a step starts.
#[derive(Debug, Clone, Copy)]
enum When {
    /// At this time from the start of the world.
    At(u64),
    /// This long after the step before it started.
    AfterStart(u64),
    /// As soon as the step before it was answered.
    AfterAnswer,
}

/// A fault, with its time resolved.
#[derive(Debug, Clone)]
struct PlannedFault {
    at_ms: u64,
    fault: Fault,
}

/// Everything a run needs, prepared before the simulation starts.
struct Plan {
    steps: Vec<Planned>,
    faults: Vec<PlannedFault>,
    /// Daemon stops: when, how long it stays down, whether gracefully.
    crashes: Vec<(u64, u64, bool)>,
    invariants: Vec<&'static str>,
    deadline_ms: u64,
    settle_ms: u64,
}

fn plan(scenario: &Scenario) -> anyhow::Result<Plan> {
    let mut steps: Vec<Planned> = Vec::new();
    let mut last = 0;
    let mut lanes: BTreeMap<(String, Option<String>), usize> = BTreeMap::new();
    for (index, step) in scenario.steps.iter().enumerate() {
        let when = match step.at.as_deref().map(parse_at).transpose() {
            Err(e) => anyhow::bail!("step {}: {e}", index + 1),
            Ok(None) => When::AfterAnswer,
            Ok(Some(At::Absolute(ms))) => When::At(ms),
            Ok(Some(At::After(ms))) => When::AfterStart(ms),
        };
        let at_ms = match when {
            When::At(ms) => ms,
            When::AfterStart(ms) => last + ms,
            When::AfterAnswer => last,
        };
        last = at_ms;
        let lane = (step.actor.clone(), step.lane.clone());
        steps.push(Planned {
            index,
            at_ms,
            when,
            prev: index.checked_sub(1),
            lane_prev: lanes.insert(lane, index),
            step: step.clone(),
        });
    }
    let mut faults = Vec::new();
    let mut crashes = Vec::new();
    for fault in &scenario.faults {
        let at_ms = match parse_at(&fault.at).map_err(anyhow::Error::msg)? {
            At::Absolute(ms) | At::After(ms) => ms,
        };
        if fault.kind == "crash_daemon" || fault.kind == "stop_daemon" {
            let down = fault.for_ms.unwrap_or(TICK_MS).max(TICK_MS);
            crashes.push((at_ms, down, fault.kind == "stop_daemon"));
        } else {
            faults.push(PlannedFault {
                at_ms,
                fault: fault.clone(),
            });
        }
    }
    crashes.sort_unstable();
    for pair in crashes.windows(2) {
        if pair[0].0 + pair[0].1 > pair[1].0 {
            anyhow::bail!(
                "the daemon crash at {} ms comes while it is still down from the one at {} ms",
                pair[1].0,
                pair[0].0
            );
        }
    }
    let duration = |text: &Option<String>, default: u64| -> anyhow::Result<u64> {
        text.as_deref().map_or(Ok(default), |t| match parse_at(t) {
            Ok(At::Absolute(ms)) => Ok(ms),
            Ok(At::After(_)) => anyhow::bail!("{t:?} is a duration, write it without +"),
            Err(e) => Err(anyhow::Error::msg(e)),
        })
    };
    let horizon = steps
        .iter()
        .map(|s| s.at_ms)
        .chain(faults.iter().map(|f| f.at_ms + f.fault.for_ms.unwrap_or(0)))
        .chain(crashes.iter().map(|(at, down, _)| at + down))
        .max()
        .unwrap_or(0);
    let deadline_ms = horizon + duration(&scenario.end.within, DRAIN_MS_DEFAULT)?;
    let settle_ms = duration(&scenario.end.settle, SETTLE_MS_DEFAULT)?;
    if deadline_ms + settle_ms >= SIMULATION_MS_MAX {
        anyhow::bail!("the scenario would run past {SIMULATION_MS_MAX} simulated ms (six hours)");
    }
    Ok(Plan {
        steps,
        faults,
        crashes,
        invariants: invariant_names(scenario).map_err(anyhow::Error::msg)?,
        deadline_ms,
        settle_ms,
    })
}

fn scripts(scenario: &Scenario, dir: &Path) -> anyhow::Result<BTreeMap<String, Script>> {
    let load = agent::loader(dir);
    let mut scripts = BTreeMap::new();
    for def in &scenario.agents {
        let read = |items: &[toml::Table]| -> anyhow::Result<Vec<Action>> {
            let mut actions = Vec::new();
            for (n, item) in items.iter().enumerate() {
                let fail =
                    |e: String| anyhow::anyhow!("agent {:?}, script item {}: {e}", def.task, n + 1);
                let parsed = agent::parse_action(item, &load).map_err(fail)?;
                if let Some(Action::Tool { name, .. }) =
                    parsed.iter().find(|a| matches!(a, Action::Tool { .. }))
                {
                    return Err(fail(format!(
                        "call = {name:?}: a scenario's agents are sub-tasks, whose only tool is \
                         signal_done (coordinators are [[step]]s)"
                    )));
                }
                actions.extend(parsed);
            }
            Ok(actions)
        };
        let script = Script {
            once: read(&def.script)?,
            repeat: read(&def.repeat)?,
            loops: def.loops,
            mcp_connect_ms: def
                .mcp_connects
                .then(|| def.mcp_connect_ms.unwrap_or(daemon::MCP_CONNECT_MS_DEFAULT)),
        };
        scripts.insert(def.task.clone(), script);
    }
    Ok(scripts)
}

/// Runs `scenario` (its files, such as casts, relative to `dir`) with `seed`, or the seed the
/// scenario names.
///
/// # Errors
/// The scenario cannot be prepared (a script names a cast that cannot be read, crashes
/// overlap), or the simulation failed to run (not a failed expectation: those are in
/// [`Outcome::failures`]).
pub fn run(scenario: &Scenario, dir: &Path, seed: Option<u64>) -> anyhow::Result<Outcome> {
    let seed = seed.unwrap_or(scenario.seed);
    let plan = Rc::new(plan(scenario)?);
    let scripts = scripts(scenario, dir)?;
    // A project has one coordinator: the first works on the scenario's repository, each other
    // one on a copy of it of its own.
    let project_of = |index: usize, name: &str| match index {
        0 => PathBuf::from(PROJECT_ROOT),
        _ => PathBuf::from(format!("{PROJECT_ROOT}-{name}")),
    };
    let declared: Vec<Declared> = scenario
        .coordinators
        .iter()
        .enumerate()
        .map(|(index, def)| Declared {
            name: def.name.clone(),
            request: RegisterRequest {
                project_root: project_of(index, &def.name),
                agent: def.agent.clone(),
                args: Vec::new(),
                skip_permissions: def.skip_permissions,
                notification_delay_ms: Some(def.notification_delay_ms),
            },
        })
        .collect();
    let root = PathBuf::from(PROJECT_ROOT);
    let files = Arc::new(FakeFiles::default());
    let mut user_files = BTreeMap::new();
    for (path, content) in &scenario.world.files {
        let path = root.join(path);
        files.put(&path, content.as_bytes());
        user_files.insert(path, content.clone().into_bytes());
    }
    for path in scenario.world.links.keys() {
        files.link(&root.join(path));
    }
    let repo = Arc::new(FakeRepo::default());
    for project in declared
        .iter()
        .map(|d| d.request.project_root.clone())
        .chain((declared.is_empty()).then(|| root.clone()))
    {
        repo.add_repo(
            &project,
            &scenario.world.repo.main,
            scenario.world.repo.files.clone(),
        );
        for branch in &scenario.world.repo.branches {
            repo.add_branch(&project, branch);
        }
        repo.add_links(&project, scenario.world.repo.links.keys().cloned());
    }
    let baseline = Baseline {
        user_files,
        root,
        panics: invariants::panics(),
    };
    let shared = Arc::new(Shared::new(seed, files, repo, scripts, declared));

    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .tick_duration(Duration::from_millis(TICK_MS))
        .simulation_duration(Duration::from_millis(SIMULATION_MS_MAX))
        .epoch(UNIX_EPOCH + Duration::from_millis(EPOCH_MS))
        // A message crosses turmoil's network within one step (seeded), not in up to 100 ms.
        .min_message_latency(Duration::ZERO)
        .max_message_latency(Duration::from_millis(crate::net::MESSAGE_LATENCY_MS_MAX))
        .tcp_capacity(crate::net::TCP_BUFFER_MAX)
        .build();
    let daemon_shared = shared.clone();
    sim.host(DAEMON_HOST, move || daemon::serve(daemon_shared.clone()));
    let results: Rc<Results> = Rc::default();
    sim.client(
        SCENARIO_HOST,
        play(shared.clone(), plan.clone(), baseline, results.clone()),
    );

    let mut crashes = plan.crashes.clone().into_iter().peekable();
    let mut restart_at: Option<u64> = None;
    let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        loop {
            let now = u64::try_from(sim.elapsed().as_millis()).unwrap_or(u64::MAX);
            shared.recorder.set_outside_ms(now);
            if restart_at.is_some_and(|at| at <= now) {
                restart_at = None;
                shared.recorder.record("fault", "the daemon restarts");
                sim.bounce(DAEMON_HOST);
            }
            if let Some(&(at, down, graceful)) = crashes.peek()
                && at <= now
            {
                crashes.next();
                if graceful {
                    // The daemon stops serving on its own; the restart replaces what is left.
                    shared.recorder.record(
                        "fault",
                        format!("the daemon is told to stop (graceful; restarted after {down} ms)"),
                    );
                    shared.stopping.notify_waiters();
                } else {
                    shared.daemon_crashed();
                    sim.crash(DAEMON_HOST);
                    shared.recorder.record(
                        "fault",
                        format!("the daemon crashes, its agents with it (down {down} ms)"),
                    );
                }
                restart_at = Some(now + down);
            }
            match sim.step() {
                Ok(true) => break Ok(()),
                Ok(false) => {}
                Err(error) => break Err(error.to_string()),
            }
        }
    }));
    let simulated_ms = u64::try_from(sim.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut failures = results.failures.take();
    let answers = results.answers.take();
    let bindings = results.bindings.take();
    match stepped {
        Ok(Ok(())) => {}
        Ok(Err(error)) => failures.push(format!("the simulation failed: {error}")),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(format!("no_panic: the simulation panicked: {message}"));
        }
    }
    Ok(Outcome {
        seed,
        trace: shared.recorder.snapshot(),
        failures,
        simulated_ms,
        answers,
        bindings,
    })
}

/// What the scenario host hands back when it is done.
#[derive(Default)]
struct Results {
    failures: RefCell<Vec<String>>,
    answers: RefCell<Vec<StepAnswer>>,
    bindings: RefCell<BTreeMap<String, Value>>,
}

/// What the lanes share.
#[derive(Default)]
struct Board {
    bindings: RefCell<BTreeMap<String, Value>>,
    /// Bindings whose step failed: they will never come.
    missing: RefCell<BTreeMap<String, usize>>,
    bound: Notify,
    answered: RefCell<BTreeSet<usize>>,
    started: RefCell<BTreeMap<usize, tokio::time::Instant>>,
    /// Invariant checks still running (one per answered round at most).
    checks: RefCell<Vec<tokio::task::JoinHandle<()>>>,
    /// Told whenever a step starts or is answered.
    progress: Notify,
    failures: RefCell<Vec<String>>,
    reported: RefCell<BTreeSet<String>>,
    checkout_dirtied: Cell<bool>,
    answers: RefCell<Vec<StepAnswer>>,
}

impl Board {
    fn fail(&self, shared: &Shared, line: String) {
        shared.recorder.record("check", format!("!! {line}"));
        self.failures.borrow_mut().push(line);
    }

    /// Reports each violation the first time it is seen.
    fn violations(&self, shared: &Shared, found: Vec<String>, after: &str) {
        for violation in found {
            if self.reported.borrow_mut().insert(violation.clone()) {
                self.fail(shared, format!("invariant {violation} ({after})"));
            }
        }
    }
}

/// Binds the registered coordinator `name`'s id and token, as the app and its MCP config hold
/// them, for the steps to name (`${id:…}`, `${token:…}`).
fn bind_coordinator(shared: &Shared, board: &Board, name: &str) {
    let Some(registered) = shared.registered(name) else {
        return;
    };
    let mut bindings = board.bindings.borrow_mut();
    bindings.insert(
        format!("{}{name}", crate::scenario::ID_BINDING_PREFIX),
        Value::String(registered.id.to_string()),
    );
    bindings.insert(
        format!("{}{name}", crate::scenario::TOKEN_BINDING_PREFIX),
        Value::String(registered.token.expose().to_owned()),
    );
}

/// The scenario host's software.
async fn play(
    shared: Arc<Shared>,
    plan: Rc<Plan>,
    baseline: Baseline,
    out: Rc<Results>,
) -> turmoil::Result {
    let start = tokio::time::Instant::now();
    while shared.door().is_none() {
        tokio::time::sleep(Duration::from_millis(TICK_MS)).await;
    }
    let board = Rc::new(Board::default());
    board.bindings.borrow_mut().insert(
        format!("{}phone", crate::scenario::TOKEN_BINDING_PREFIX),
        Value::String(shared.phone.expose().to_owned()),
    );
    for declared in &shared.declared {
        let args = serde_json::json!({ "coordinator": declared.name });
        let mut dirtied = false;
        let answer = calls::app_call(&shared, "register", &args, &mut dirtied).await;
        shared.recorder.record(
            APP_ACTOR,
            format!("register {} -> {}", declared.name, render(&answer)),
        );
        bind_coordinator(&shared, &board, &declared.name);
    }
    for fault in plan.faults.clone() {
        tokio::task::spawn_local(inject(shared.clone(), start, fault));
    }
    let mut running = Vec::new();
    for planned in plan.steps.clone() {
        let (shared, board, plan, baseline) = (
            shared.clone(),
            board.clone(),
            plan.clone(),
            baseline.clone(),
        );
        running.push(tokio::task::spawn_local(async move {
            run_step(&shared, &board, &plan, &baseline, start, planned).await;
        }));
    }
    let deadline = start + Duration::from_millis(plan.deadline_ms);
    for step in &mut running {
        if tokio::time::timeout_at(deadline, step).await.is_err() {
            break;
        }
    }
    for step in &running {
        step.abort();
    }
    for planned in &plan.steps {
        if !board.answered.borrow().contains(&planned.index) {
            board.fail(
                &shared,
                format!(
                    "step {} ({} by {}) was not answered by t={}",
                    planned.index + 1,
                    planned.step.call,
                    planned.step.actor,
                    plan.deadline_ms
                ),
            );
        }
    }
    let checks = board.checks.take();
    for check in checks {
        let _ = check.await;
    }
    tokio::time::sleep(Duration::from_millis(plan.settle_ms)).await;
    probe(&shared).await;
    let found = invariants::check(
        &shared,
        &baseline,
        &plan.invariants,
        true,
        board.checkout_dirtied.get(),
    )
    .await;
    board.violations(&shared, found, "at the end");
    let failures = board.failures.borrow().clone();
    shared.recorder.record(
        "check",
        if failures.is_empty() {
            "end: every expectation and invariant held".to_owned()
        } else {
            format!("end: {} failure(s)", failures.len())
        },
    );
    *out.failures.borrow_mut() = failures;
    *out.answers.borrow_mut() = board.answers.take();
    *out.bindings.borrow_mut() = board.bindings.borrow().clone();
    Ok(())
}

/// Collects the signals still waiting at the end, so the checker sees them as delivered.
async fn probe(shared: &Shared) {
    let Ok(handles) = shared.handles().await else {
        return;
    };
    shared.recorder.record(
        "check",
        "end: collecting the signals still pending (one zero-timeout wait after another)",
    );
    for handle in handles.registered.values() {
        for _ in 0..PROBE_WAITS_MAX {
            let outcome = handle.wait_for_signal(None, Some(0)).await;
            crate::world::next_step().await;
            match outcome {
                Ok(SignalOutcome::Task {
                    task, status, at, ..
                }) => {
                    let name = shared.observed().task_name(task);
                    shared.recorder.record(
                        "check",
                        format!(
                            "still pending: {name} ({}) at t={}",
                            status.name(),
                            daemon::sim_ms(at)
                        ),
                    );
                    let exited = status == baton_runtime::core::coordinator::Status::Exited;
                    shared
                        .observed()
                        .signal_delivered(task, daemon::sim_ms(at), None, exited);
                }
                _ => break,
            }
        }
    }
}

/// Plays one fault inside the simulation.
async fn inject(shared: Arc<Shared>, start: tokio::time::Instant, planned: PlannedFault) {
    let PlannedFault { at_ms, fault } = planned;
    tokio::time::sleep_until(start + Duration::from_millis(at_ms)).await;
    let actor = fault
        .between
        .iter()
        .find(|end| end.as_str() != crate::scenario::DAEMON)
        .cloned()
        .unwrap_or_default();
    let lasting = fault
        .for_ms
        .map_or_else(String::new, |ms| format!(" for {ms} ms"));
    let count = fault.count.unwrap_or(1);
    let record = |what: String| shared.recorder.record("fault", what);
    let task = fault
        .task
        .as_deref()
        .map(|name| (name.to_owned(), shared.observed().task_named(name)));
    match fault.kind.as_str() {
        "partition" => {
            shared.links.partition(&actor, true);
            record(format!("partition {actor} <-> daemon{lasting}"));
        }
        "delay" => {
            let ms = fault.ms.unwrap_or(0);
            shared.links.delay(&actor, ms);
            record(format!(
                "delay {actor} <-> daemon by {ms} ms each way{lasting}"
            ));
        }
        "drop_response" => {
            shared.links.drop_responses(&actor, count);
            record(format!(
                "the next {count} answer(s) to {actor} will be lost"
            ));
        }
        "slow_worktrees" => {
            let ms = fault.ms.unwrap_or(0);
            shared.repo.slow_worktrees(Duration::from_millis(ms));
            shared.repo.slow_removals(Duration::from_millis(ms));
            record(format!(
                "creating or removing a worktree takes {ms} ms{lasting}"
            ));
        }
        "disk_full" | "rename_fails" | "remove_fails" => {
            let under = fault
                .path
                .as_deref()
                .map(|p| Path::new(PROJECT_ROOT).join(p));
            let scope = under
                .as_ref()
                .map_or_else(String::new, |dir| format!(" under {}", dir.display()));
            shared.files.faults_only_under(under);
            match fault.kind.as_str() {
                "disk_full" => {
                    shared.files.fail_writes(count);
                    record(format!(
                        "the disk is full for the next {count} write(s){scope}"
                    ));
                }
                "rename_fails" => {
                    shared.files.fail_writes_with(count, WriteFailure::Rename);
                    record(format!(
                        "the next {count} write(s){scope} will fail at the rename"
                    ));
                }
                _ => {
                    shared.files.fail_removes(count);
                    record(format!("the next {count} file removal(s){scope} will fail"));
                }
            }
        }
        "kill_agent" | "worktree_stuck" => {
            let Some((name, found)) = task.clone() else {
                return;
            };
            let Some(named) = found else {
                record(format!(
                    "{}: no task named {name:?} was created",
                    fault.kind
                ));
                return;
            };
            if fault.kind == "worktree_stuck" {
                shared.repo.make_stuck(&named.worktree);
                record(format!("{name}'s worktree cannot be removed{lasting}"));
            } else {
                match shared.door() {
                    Some(door) if door.pty.inner.is_alive(named.agent) => {
                        record(format!("kill {name}'s agent"));
                        let _ = baton_runtime::ports::PtyHost::kill(&*door.pty, named.agent).await;
                    }
                    _ => record(format!("kill_agent: {name} has no running agent")),
                }
            }
        }
        _ => {}
    }
    let Some(ms) = fault.for_ms else { return };
    tokio::time::sleep(Duration::from_millis(ms)).await;
    match fault.kind.as_str() {
        "partition" => {
            shared.links.partition(&actor, false);
            record(format!("partition {actor} <-> daemon healed"));
        }
        "delay" => {
            shared.links.delay(&actor, 0);
            record(format!("delay {actor} <-> daemon over"));
        }
        "slow_worktrees" => {
            shared.repo.slow_worktrees(Duration::ZERO);
            shared.repo.slow_removals(Duration::ZERO);
            record("worktrees are quick again".to_owned());
        }
        "worktree_stuck" => {
            if let Some((name, Some(named))) = task {
                shared.repo.unstick(&named.worktree);
                record(format!("{name}'s worktree can be removed again"));
            }
        }
        _ => {}
    }
}

async fn run_step(
    shared: &Arc<Shared>,
    board: &Rc<Board>,
    plan: &Plan,
    baseline: &Baseline,
    start: tokio::time::Instant,
    planned: Planned,
) {
    let Planned {
        index,
        when,
        prev,
        lane_prev,
        step,
        ..
    } = planned;
    let answered = |i: Option<usize>| i.is_none_or(|i| board.answered.borrow().contains(&i));
    let started = |i: Option<usize>| i.and_then(|i| board.started.borrow().get(&i).copied());
    // Its turn: after the step before it in its lane was answered, and at its time.
    loop {
        let progress = board.progress.notified();
        tokio::pin!(progress);
        progress.as_mut().enable();
        let ready = answered(lane_prev)
            && match when {
                When::At(_) => true,
                When::AfterStart(_) => prev.is_none() || started(prev).is_some(),
                When::AfterAnswer => answered(prev),
            };
        if ready {
            break;
        }
        progress.await;
    }
    let at = match when {
        When::At(ms) => Some(start + Duration::from_millis(ms)),
        When::AfterStart(ms) => Some(started(prev).unwrap_or(start) + Duration::from_millis(ms)),
        When::AfterAnswer => None,
    };
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
    board
        .started
        .borrow_mut()
        .insert(index, tokio::time::Instant::now());
    board.progress.notify_waiters();
    if let Some(copies) = step.parallel {
        let calls = (0..copies).map(|copy| {
            let label = format!("step {} ({}, copy {copy})", index + 1, step.call);
            let step = &step;
            async move {
                run_round(
                    shared,
                    board,
                    plan,
                    baseline,
                    step,
                    index,
                    &label,
                    Some(Value::from(copy)),
                )
                .await
            }
        });
        join_all(calls.collect()).await;
        board.answered.borrow_mut().insert(index);
        board.progress.notify_waiters();
        return;
    }
    let rounds = step.repeat.unwrap_or(1);
    for round in 0..rounds {
        let label = if step.repeat.is_some() {
            format!("step {} ({}, round {round})", index + 1, step.call)
        } else {
            format!("step {} ({})", index + 1, step.call)
        };
        let round = step.repeat.map(|_| Value::from(round));
        let mut go_on = run_round(
            shared,
            board,
            plan,
            baseline,
            &step,
            index,
            &label,
            round.clone(),
        )
        .await;
        for then in &step.then {
            if !go_on {
                break;
            }
            let part = then.as_step(&step);
            let label = format!("{label}, then {}", part.call);
            go_on = run_round(
                shared,
                board,
                plan,
                baseline,
                &part,
                index,
                &label,
                round.clone(),
            )
            .await;
        }
        if !go_on {
            break;
        }
    }
    board.answered.borrow_mut().insert(index);
    board.progress.notify_waiters();
}

/// One round of a step; `false` if the step cannot go on (a binding it needs never came).
#[allow(clippy::too_many_arguments)]
async fn run_round(
    shared: &Arc<Shared>,
    board: &Rc<Board>,
    plan: &Plan,
    baseline: &Baseline,
    step: &Step,
    index: usize,
    label: &str,
    round: Option<Value>,
) -> bool {
    let args = toml_to_json(&toml::Value::Table(step.args.clone()));
    let expect = toml_to_json(&toml::Value::Table(step.expect.clone()));
    let (args, expect) = match (
        substitute(board, &args, round.as_ref()).await,
        substitute(board, &expect, round.as_ref()).await,
    ) {
        (Ok(args), Ok(expect)) => (args, expect),
        (Err(e), _) | (_, Err(e)) => {
            board.fail(shared, format!("{label}: {e}"));
            forget_bindings(board, step, index);
            return false;
        }
    };
    shared
        .recorder
        .record(&step.actor, format!("{} {}", step.call, compact(&args)));
    let (answer, signal) = call(shared, board, step, &args).await;
    if let Some(signal) = &signal {
        shared.observed().signal_delivered(
            signal.task,
            signal.at_ms,
            signal.request.clone(),
            signal.exited,
        );
    }
    if step.actor != APP_ACTOR
        && answer.is_ok()
        && let Some(violation) = foreign_answer(shared, &step.actor, &args)
    {
        board.violations(shared, vec![violation], label);
    }
    shared
        .recorder
        .record(&step.actor, format!("{} -> {}", step.call, render(&answer)));
    board.answers.borrow_mut().push(StepAnswer {
        step: index,
        actor: step.actor.clone(),
        call: step.call.clone(),
        args: args.clone(),
        answer: answer.clone(),
    });
    for problem in expectations(&expect, &answer) {
        board.fail(
            shared,
            format!("{label} at t={}: {problem}", shared.recorder.elapsed_ms()),
        );
    }
    match &answer {
        Ok(value) => {
            for (name, path) in &step.bind {
                match lookup(value, path) {
                    Some(found) => {
                        board
                            .bindings
                            .borrow_mut()
                            .insert(name.clone(), found.clone());
                    }
                    None => {
                        board.fail(
                            shared,
                            format!("{label}: bind {name}: the answer has no {path:?}"),
                        );
                        board.missing.borrow_mut().insert(name.clone(), index);
                    }
                }
            }
        }
        Err(_) => forget_bindings(board, step, index),
    }
    board.bound.notify_waiters();
    // The check runs beside the next steps, so what it asks the engine takes no time from them.
    let (shared, checked, baseline) = (shared.clone(), board.clone(), baseline.clone());
    let (names, dirtied, after) = (
        plan.invariants.clone(),
        board.checkout_dirtied.get(),
        format!("after {label}"),
    );
    let check = tokio::task::spawn_local(async move {
        let found = invariants::check(&shared, &baseline, &names, false, dirtied).await;
        checked.violations(&shared, found, &after);
    });
    let mut checks = board.checks.borrow_mut();
    checks.retain(|check| !check.is_finished());
    checks.push(check);
    true
}

fn forget_bindings(board: &Board, step: &Step, index: usize) {
    for name in step.bind.keys() {
        board.missing.borrow_mut().insert(name.clone(), index);
    }
    board.bound.notify_waiters();
}

/// An answer a coordinator got about a task it did not create.
fn foreign_answer(shared: &Shared, actor: &str, args: &Value) -> Option<String> {
    let task = calls::task_arg(args).ok()?;
    let caller = shared.registered(actor)?.id;
    let observed = shared.observed();
    let owner = observed.owner(task)?;
    (owner != caller).then(|| {
        format!(
            "isolation: {actor} got an answer about {}, a task of {}",
            observed.task_name(task),
            shared.coordinator_name(owner)
        )
    })
}

/// Makes a step's call through its actor's link.
async fn call(
    shared: &Arc<Shared>,
    board: &Board,
    step: &Step,
    args: &Value,
) -> (calls::Answer, Option<calls::Signal>) {
    let actor = step.actor.as_str();
    if actor == crate::scenario::ATTACKER_ACTOR {
        let answer = if step.call == "websocket" {
            let traffic = crate::ws::attacker_websocket(shared, args);
            shared.links.call(actor, &step.call, traffic).await
        } else if step.call == "half_request" {
            let traffic = calls::attacker_half_request(args);
            shared.links.call(actor, &step.call, traffic).await
        } else {
            let traffic = calls::attacker_http(shared, args);
            shared.links.call(actor, &step.call, traffic).await
        };
        return (answer.unwrap_or_else(|e| Err(e.to_string())), None);
    }
    if actor == APP_ACTOR {
        let mut dirtied = board.checkout_dirtied.get();
        let answer = shared
            .links
            .call(
                actor,
                &step.call,
                calls::app_call(shared, &step.call, args, &mut dirtied),
            )
            .await;
        board.checkout_dirtied.set(dirtied);
        let answer = answer.unwrap_or_else(|e| Err(e.to_string()));
        if let (Ok(_), "register", Some(name)) =
            (&answer, step.call.as_str(), args["coordinator"].as_str())
        {
            // Registered again: a new id and token, which the steps after it name.
            bind_coordinator(shared, board, name);
        }
        return (answer, None);
    }
    let Some(registered) = shared.registered(actor) else {
        return (
            Err(format!("no coordinator named {actor:?} was registered")),
            None,
        );
    };
    if let Some(tool) = step.call.strip_prefix(calls::MCP_CALL_PREFIX) {
        // Its MCP process meets the link's faults one connection at a time.
        let made = calls::coordinator_mcp_call(shared, (actor, &registered), tool, args);
        let after = step
            .cancel_after
            .as_deref()
            .and_then(|a| crate::scenario::parse_at(a).ok());
        return match after {
            // The client gives the call up: it is dropped where it stands, its request with it.
            Some(crate::scenario::At::Absolute(ms) | crate::scenario::At::After(ms)) => {
                tokio::time::timeout(Duration::from_millis(ms), made)
                    .await
                    .unwrap_or_else(|_| (Err("cancelled".to_owned()), None))
            }
            None => made.await,
        };
    }
    let token = registered.token.expose().to_owned();
    let request = calls::coordinator_call(shared, &token, &step.call, args);
    match shared.links.call(actor, &step.call, request).await {
        Ok(answer) => answer,
        Err(error) => (Err(error.to_string()), None),
    }
}

/// Runs every future to its end, side by side on this task; their outputs in order.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// A TOML value as JSON.
#[must_use]
pub fn toml_to_json(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => Value::Object(
            table
                .iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// `value` with every `${name}` replaced by its binding (waiting for bindings other lanes have
/// yet to make). A string that is exactly `${name}` takes the bound value as it is.
async fn substitute(board: &Board, value: &Value, round: Option<&Value>) -> Result<Value, String> {
    let mut names = Vec::new();
    collect_placeholders(value, &mut names);
    let round_name = crate::scenario::ROUND_BINDING;
    for name in &names {
        if round.is_some() && name == round_name {
            continue;
        }
        loop {
            let notified = board.bound.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if board.bindings.borrow().contains_key(name) {
                break;
            }
            if let Some(step) = board.missing.borrow().get(name) {
                return Err(format!(
                    "${{{name}}} was never bound: step {} did not give it",
                    step + 1
                ));
            }
            notified.await;
        }
    }
    // This round's `${i}` is this call's own, whatever other calls of the step are at.
    let mut bindings = board.bindings.borrow().clone();
    if let Some(round) = round {
        bindings.insert(round_name.to_owned(), round.clone());
    }
    Ok(replace(value, &bindings))
}

fn collect_placeholders(value: &Value, names: &mut Vec<String>) {
    match value {
        Value::String(text) => {
            names.extend(crate::scenario::placeholder_names(text).map(str::to_owned));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_placeholders(v, names)),
        Value::Object(map) => map.values().for_each(|v| collect_placeholders(v, names)),
        _ => {}
    }
}

/// `value` with every `${name}` in `bindings` replaced (a string that is exactly `${name}`
/// takes the bound value as it is).
#[must_use]
pub fn replace(value: &Value, bindings: &BTreeMap<String, Value>) -> Value {
    match value {
        Value::String(text) => {
            if let Some(name) = text.strip_prefix("${").and_then(|t| t.strip_suffix('}'))
                && let Some(bound) = bindings.get(name)
            {
                return bound.clone();
            }
            let mut out = text.clone();
            for (name, bound) in bindings {
                let shown = match bound {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                out = out.replace(&format!("${{{name}}}"), &shown);
            }
            Value::String(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| replace(v, bindings)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), replace(v, bindings)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The value at a dotted path (`id`, `tasks.0.id`, `merge.linesAdded`); in an array, a step
/// `field=value` takes the first item whose `field` is the string `value`
/// (`body.taskName=b-work.agentId`).
#[must_use]
pub fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(value, |value, key| match value {
        Value::Array(items) => match key.split_once('=') {
            Some((field, wanted)) => items
                .iter()
                .find(|item| item.get(field).and_then(Value::as_str) == Some(wanted)),
            None => items.get(key.parse::<usize>().ok()?),
        },
        Value::Object(map) => map.get(key),
        _ => None,
    })
}

/// Compact JSON for a trace line.
pub(crate) fn compact(value: &Value) -> String {
    let text = value.to_string();
    let chars = text.chars().count();
    if chars <= ANSWER_TRACE_CHARS_MAX {
        return text;
    }
    let cut: String = text.chars().take(ANSWER_TRACE_CHARS_MAX).collect();
    format!(
        "{cut}… ({} more characters)",
        chars - ANSWER_TRACE_CHARS_MAX
    )
}

fn render(answer: &calls::Answer) -> String {
    match answer {
        Ok(value) => format!("ok {}", compact(value)),
        Err(error) => format!("error: {error}"),
    }
}

/// What is wrong with `answer` against `expect` (empty when it matches).
#[must_use]
pub fn expectations(expect: &Value, answer: &calls::Answer) -> Vec<String> {
    let mut problems = Vec::new();
    let wanted_error = expect.get("error");
    match (answer, wanted_error) {
        (Err(error), Some(Value::String(wanted))) => {
            if !error.contains(wanted.as_str()) {
                problems.push(format!(
                    "expected an error containing {wanted:?}\n  got the error: {error}"
                ));
            }
        }
        (Err(error), _) => problems.push(format!("expected success\n  got the error: {error}")),
        (Ok(value), Some(wanted)) => problems.push(format!(
            "expected an error containing {wanted}\n  got success: {}",
            compact(value)
        )),
        (Ok(value), None) => {
            compare("", expect, Some(value), &mut problems);
            if !problems.is_empty() {
                problems.push(format!("  the whole answer: {value}"));
            }
        }
    }
    problems
}

fn field<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    match value {
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        Value::Object(map) => map.get(key),
        _ => None,
    }
}

/// Compares a wanted value with what the answer holds at `path` (tables are matched field by
/// field, so an expectation names only what it cares about; on an array, `len` is its length
/// and `any`, `none`, `seq` search it, see [`search`]).
fn compare(path: &str, wanted: &Value, got: Option<&Value>, problems: &mut Vec<String>) {
    match (wanted, got) {
        (Value::Object(fields), Some(got @ (Value::Object(_) | Value::Array(_)))) => {
            for (key, wanted) in fields {
                if let (true, Value::Array(items)) = (key == "len", got) {
                    if !same(wanted, &Value::from(items.len())) {
                        problems.push(format!(
                            "{path}.len: expected {wanted} items, got {}",
                            items.len()
                        ));
                    }
                    continue;
                }
                if let Value::Array(items) = got {
                    if let Some(problem) = search(key, wanted, items) {
                        problems.push(format!("{path}.{key}: {problem}"));
                        continue;
                    }
                    if ["any", "none", "seq"].contains(&key.as_str()) {
                        continue;
                    }
                }
                compare(&format!("{path}.{key}"), wanted, field(got, key), problems);
            }
        }
        (Value::String(w), got) if w == EXPECT_ABSENT => {
            if let Some(got) = got {
                problems.push(format!("{path}: expected nothing, got {}", compact(got)));
            }
        }
        (Value::String(w), Some(_)) if w == EXPECT_ANY => {}
        (Value::String(w), Some(got)) if w.starts_with(EXPECT_STARTS) => {
            let prefix = &w[EXPECT_STARTS.len()..];
            if !got.as_str().is_some_and(|g| g.starts_with(prefix)) {
                problems.push(format!(
                    "{path}: expected text starting with {prefix:?}, got {}",
                    compact(got)
                ));
            }
        }
        (Value::String(w), Some(got)) if w.starts_with(EXPECT_ENDS) => {
            let suffix = &w[EXPECT_ENDS.len()..];
            if !got.as_str().is_some_and(|g| g.ends_with(suffix)) {
                problems.push(format!(
                    "{path}: expected text ending with {suffix:?}, got {}",
                    compact(got)
                ));
            }
        }
        (Value::String(w), Some(got)) if w == EXPECT_NULL => {
            if !got.is_null() {
                problems.push(format!("{path}: expected null, got {}", compact(got)));
            }
        }
        (wanted, Some(got)) if same(wanted, got) => {}
        (wanted, Some(got)) => {
            problems.push(format!("{path}: expected {wanted}, got {}", compact(got)));
        }
        (wanted, None) => problems.push(format!("{path}: expected {wanted}, got nothing")),
    }
}

/// Whether `item` holds what `wanted` asks for (as [`compare`] matches it).
fn matches(wanted: &Value, item: &Value) -> bool {
    let mut problems = Vec::new();
    compare("", wanted, Some(item), &mut problems);
    problems.is_empty()
}

/// An array expectation that searches: `any` (some item matches), `none` (no item does), `seq`
/// (these match items in this order, others between them allowed). What is wrong, if anything;
/// `None` too for any other key.
fn search(key: &str, wanted: &Value, items: &[Value]) -> Option<String> {
    match key {
        "any" => (!items.iter().any(|item| matches(wanted, item)))
            .then(|| format!("expected an item holding {wanted}, none does")),
        "none" => items
            .iter()
            .position(|item| matches(wanted, item))
            .map(|at| format!("expected no item holding {wanted}, item {at} does")),
        "seq" => {
            let Value::Array(sequence) = wanted else {
                return Some(format!("seq must be an array, got {wanted}"));
            };
            let mut rest = items.iter().enumerate();
            for (k, wanted) in sequence.iter().enumerate() {
                if !rest.any(|(_, item)| matches(wanted, item)) {
                    return Some(format!(
                        "expected {wanted} (seq item {k}) after the ones before it, not found"
                    ));
                }
            }
            None
        }
        _ => None,
    }
}

fn same(wanted: &Value, got: &Value) -> bool {
    match (wanted, got) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b))
        }
        _ => wanted == got,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{expectations, lookup};

    #[test]
    fn expectations_name_only_the_fields_they_care_about() {
        let answer = Ok(json!({ "status": "idle", "id": "x", "exitCode": null }));
        assert!(expectations(&json!({ "status": "idle" }), &answer).is_empty());
        let problems = expectations(&json!({ "status": "running" }), &answer);
        assert!(
            problems[0].contains(".status: expected \"running\", got \"idle\""),
            "{problems:?}"
        );
        assert!(expectations(&json!({ "exitCode": "@null" }), &answer).is_empty());
        assert!(!expectations(&json!({ "status": "@null" }), &answer).is_empty());
        assert!(expectations(&json!({ "id": "@any", "gone": "@absent" }), &answer).is_empty());
        assert!(!expectations(&json!({ "id": "@absent" }), &answer).is_empty());
        assert!(!expectations(&json!({ "gone": "@any" }), &answer).is_empty());
        assert!(expectations(&json!({ "status": "@starts:id" }), &answer).is_empty());
        assert!(!expectations(&json!({ "status": "@starts:run" }), &answer).is_empty());
        assert!(expectations(&json!({ "status": "@ends:dle" }), &answer).is_empty());
        assert!(!expectations(&json!({ "status": "@ends:id" }), &answer).is_empty());
    }

    #[test]
    fn arrays_are_matched_by_index_and_length() {
        let answer = Ok(json!([{ "name": "a" }, { "name": "b" }]));
        assert!(expectations(&json!({ "len": 2, "1": { "name": "b" } }), &answer).is_empty());
        assert!(!expectations(&json!({ "len": 3 }), &answer).is_empty());
    }

    #[test]
    fn an_expected_error_is_matched_by_its_text() {
        let failed: Result<serde_json::Value, String> = Err("Task not found: x".into());
        assert!(expectations(&json!({ "error": "not found" }), &failed).is_empty());
        assert!(
            !expectations(&json!({}), &failed).is_empty(),
            "success was expected"
        );
        assert!(!expectations(&json!({ "error": "x" }), &Ok(json!({}))).is_empty());
    }

    #[test]
    fn arrays_are_searched_for_any_none_and_an_ordered_sequence() {
        let answer = Ok(json!({ "m": [{ "t": "a" }, { "t": "b", "x": 1 }, { "t": "c" }] }));
        let holds = |expect: serde_json::Value| expectations(&expect, &answer).is_empty();
        assert!(holds(json!({ "m": { "any": { "t": "b" } } })));
        assert!(!holds(json!({ "m": { "any": { "t": "d" } } })));
        assert!(holds(json!({ "m": { "none": { "t": "d" } } })));
        assert!(!holds(json!({ "m": { "none": { "x": 1 } } })));
        assert!(holds(
            json!({ "m": { "seq": [{ "t": "a" }, { "t": "c" }] } })
        ));
        assert!(!holds(
            json!({ "m": { "seq": [{ "t": "c" }, { "t": "a" }] } })
        ));
        assert!(!holds(
            json!({ "m": { "seq": [{ "t": "b" }, { "t": "b" }] } })
        ));
        assert!(holds(json!({ "m": { "seq": [], "len": 3 } })));
    }

    #[test]
    fn paths_reach_into_objects_and_arrays() {
        let value = json!({ "tasks": [{ "id": "t1" }] });
        assert_eq!(lookup(&value, "tasks.0.id"), Some(&json!("t1")));
        assert_eq!(lookup(&value, "tasks.1.id"), None);
        let value = json!({ "body": [{ "name": "a", "id": 1 }, { "name": "b", "id": 2 }] });
        assert_eq!(lookup(&value, "body.name=b.id"), Some(&json!(2)));
        assert_eq!(lookup(&value, "body.name=c.id"), None);
        assert_eq!(
            lookup(&value, "body.id=1.name"),
            None,
            "only strings are matched"
        );
    }
}
