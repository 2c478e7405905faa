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
//!
//! # Layout
//!
//! - this module: [`run`] and [`run_file`]: the world built from the scenario, the hosts, the
//!   loop that steps turmoil and applies daemon crashes, the [`Outcome`];
//! - `plan`: steps and faults with their times resolved, the agents' scripts read;
//! - `lanes`: the scenario host's software: the lanes, each step's rounds and calls, bindings,
//!   the invariant checks after each answer and at the end;
//! - `faults`: every fault but a daemon crash, played inside the simulation;
//! - `expect`: expectations matched against answers, bindings substituted, paths looked up.

mod expect;
mod faults;
mod lanes;
mod plan;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use baton_runtime::daemon::registry::RegisterRequest;
use baton_runtime::ports::fakes::{FakeFiles, FakeRepo};
use serde_json::Value;

pub(crate) use self::expect::compact;
pub use self::expect::{
    EXPECT_ABSENT, EXPECT_ANY, EXPECT_ENDS, EXPECT_NULL, EXPECT_STARTS, expectations, lookup,
    replace, toml_to_json,
};
use crate::calls;
use crate::daemon::{self, Declared, Shared};
use crate::invariants::{self, Baseline};
use crate::scenario::Scenario;
use crate::skip::{self, Stepping, Timers};
use crate::trace::Trace;
use crate::world::{DAEMON_HOST, EPOCH_MS, PROJECT_ROOT, SIMULATION_MS_MAX, TICK_MS};

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
    /// How the simulated time was stepped.
    pub steps: Steps,
}

/// How a run's simulated time was stepped (`crate::skip`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Steps {
    /// Turmoil steps run one by one.
    pub run: u64,
    /// Steps run as part of a skip (each skip counts its steps), in which nothing happened.
    pub skipped: u64,
    /// How many skips there were.
    pub skips: u64,
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
    run_file_stepping(path, seed, Stepping::Skip)
}

/// [`run_file`], its simulated time moved as `stepping` says.
///
/// # Errors
/// As [`run_file`].
pub fn run_file_stepping(
    path: &Path,
    seed: Option<u64>,
    stepping: Stepping,
) -> anyhow::Result<Outcome> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let scenario =
        crate::scenario::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    run_stepping(&scenario, dir, seed, stepping)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Runs `scenario` (its files, such as casts, relative to `dir`) with `seed`, or the seed the
/// scenario names.
///
/// # Errors
/// The scenario cannot be prepared (a script names a cast that cannot be read, crashes
/// overlap), or the simulation failed to run (not a failed expectation: those are in
/// [`Outcome::failures`]).
pub fn run(scenario: &Scenario, dir: &Path, seed: Option<u64>) -> anyhow::Result<Outcome> {
    run_stepping(scenario, dir, seed, Stepping::Skip)
}

/// [`run`], its simulated time moved as `stepping` says.
///
/// # Errors
/// As [`run`].
pub fn run_stepping(
    scenario: &Scenario,
    dir: &Path,
    seed: Option<u64>,
    stepping: Stepping,
) -> anyhow::Result<Outcome> {
    let seed = seed.unwrap_or(scenario.seed);
    let plan = Rc::new(plan::plan(scenario)?);
    let scripts = plan::scripts(scenario, dir)?;
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
    let repo = Arc::new(FakeRepo::default());
    let mut user_files = BTreeMap::new();
    // Every project is a clone of the scenario's repository with the user's own files in its
    // checkout, untracked and excluded (git sees none of them: a merge into the checkout is
    // not refused for them), and the user's links.
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
        for (path, content) in &scenario.world.files {
            repo.edit(&project, path, content)
                .map_err(|e| anyhow::anyhow!("world file {path}: {e}"))?;
            repo.add_excluded(&project, &format!("/{path}"));
            user_files.insert(project.join(path), content.clone().into_bytes());
        }
        for path in scenario.world.links.keys() {
            files.link(&project.join(path));
        }
    }
    let baseline = Baseline {
        user_files,
        root,
        panics: invariants::panics(),
    };
    let shared = Arc::new(Shared::new(seed, files, repo, scripts, declared));
    // Told every timer the hosts make, until the simulation below is dropped (it is declared
    // after, so dropped before: its hosts' timers are forgotten while this is installed).
    let timers = Rc::new(Timers::default());
    let _told = baton_runtime::time::install(timers.clone());

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
        lanes::play(shared.clone(), plan.clone(), baseline, results.clone()),
    );

    let mut crashes = plan.crashes.clone().into_iter().peekable();
    let mut restart_at: Option<u64> = None;
    let mut steps = Steps::default();
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
            // The earliest moment anything is due: a timer, or the loop's own next act.
            let next_ms = [
                timers.earliest_ms(),
                restart_at,
                crashes.peek().map(|&(at, ..)| at),
                Some(SIMULATION_MS_MAX),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now);
            let skippable = match stepping {
                Stepping::Skip => skip::steps_before(now, next_ms),
                Stepping::Lockstep => 0,
            };
            let stepped = if skippable > 1 && sim.is_quiet() {
                steps.skips += 1;
                steps.skipped += u64::from(skippable);
                // Every line a host records inside the skipped steps is one lockstep could
                // have recorded with another host's in a different order: none may be.
                sim.skip(skippable)
                    .and_then(|finished| match shared.recorder.later_than(now) {
                        0 => Ok(finished),
                        lines => Err(format!(
                            "a timer the simulator did not know: {lines} trace line(s) were \
                             recorded inside the skipped steps after {now} ms"
                        )
                        .into()),
                    })
            } else {
                steps.run += 1;
                sim.step()
            };
            match stepped {
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
        steps,
    })
}

/// What the scenario host hands back when it is done.
#[derive(Default)]
struct Results {
    failures: RefCell<Vec<String>>,
    answers: RefCell<Vec<StepAnswer>>,
    bindings: RefCell<BTreeMap<String, Value>>,
}
