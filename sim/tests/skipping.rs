//! Skipping the steps in which nothing can happen (`baton_sim::skip`) changes nothing: a
//! scenario run with skipping and in lockstep gives the same trace, failures and simulated
//! time, at more than one seed; and a host that acts inside a skipped span (a timer the
//! simulator was not told of) fails the run instead of changing it silently.

use std::path::{Path, PathBuf};
use std::time::Duration;

use baton_sim::runner::{self, Outcome};
use baton_sim::skip::Stepping;

/// Scenarios of several kinds: a daemon crash and restart (the loop's own faults), a partition
/// and a slow link (the link's timers), a lost answer, a whole task's life, a wait's timeout,
/// WebSocket heartbeats.
const SCENARIOS: [&str; 8] = [
    "scenarios/faults/daemon-restart-restores-tasks.toml",
    "scenarios/faults/an-mcp-wait-rides-out-a-daemon-restart.toml",
    "scenarios/faults/an-mcp-wait-retries-through-a-partition.toml",
    "scenarios/faults/a-slow-link-delays-but-loses-nothing.toml",
    "scenarios/faults/a-lost-answer-is-replayed.toml",
    "scenarios/coordinator/full-lifecycle.toml",
    "scenarios/notifications/a-timed-out-wait-restages.toml",
    "scenarios/websocket/a-quiet-connection-hears-a-heartbeat.toml",
];

fn path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn run(relative: &str, seed: u64, stepping: Stepping) -> Outcome {
    runner::run_file_stepping(&path(relative), Some(seed), stepping)
        .unwrap_or_else(|e| panic!("{relative}: {e:#}"))
}

#[test]
fn skipping_idle_steps_gives_the_lockstep_trace() {
    for relative in SCENARIOS {
        for seed in [0, 7] {
            let skipped = run(relative, seed, Stepping::Skip);
            let lockstep = run(relative, seed, Stepping::Lockstep);
            assert_eq!(
                skipped.trace.render(),
                lockstep.trace.render(),
                "{relative} (seed {seed}): the same events at the same times"
            );
            assert_eq!(
                skipped.failures, lockstep.failures,
                "{relative} (seed {seed})"
            );
            assert_eq!(
                skipped.simulated_ms, lockstep.simulated_ms,
                "{relative} (seed {seed})"
            );
            assert_eq!(lockstep.steps.skipped, 0, "lockstep skips nothing");
            assert!(
                skipped.steps.skipped > 0,
                "{relative} (seed {seed}): some steps were skipped ({:?})",
                skipped.steps
            );
            assert_eq!(
                skipped.steps.run + skipped.steps.skipped,
                lockstep.steps.run,
                "{relative} (seed {seed}): every step is run or skipped"
            );
        }
    }
}

/// The speed scenario (`benches/summary.py`'s): ten simulated minutes of five agents.
const SPEED: &str = "sim/speed/five-agents-ten-minutes.toml";

#[test]
fn most_of_the_speed_scenarios_steps_are_skipped_and_its_trace_is_the_same() {
    let skipped = run(SPEED, 0, Stepping::Skip);
    let lockstep = run(SPEED, 0, Stepping::Lockstep);
    assert!(skipped.failures.is_empty(), "{:?}", skipped.failures);
    assert_eq!(skipped.trace.render(), lockstep.trace.render());
    assert_eq!(skipped.simulated_ms, lockstep.simulated_ms);
    assert!(
        skipped.steps.skipped > 10 * skipped.steps.run,
        "{:?}",
        skipped.steps
    );
}

/// A host whose task sleeps on tokio's own timer, which nobody tells the simulator of.
fn world_with_an_untold_timer() -> turmoil::Sim<'static> {
    let mut sim = turmoil::Builder::new()
        .tick_duration(Duration::from_millis(5))
        .build();
    sim.client("sleeper", async {
        // The point of this test: a timer made outside `baton_runtime::time`.
        tokio::time::sleep(Duration::from_millis(22)).await;
        Ok(())
    });
    sim
}

#[test]
fn a_host_that_acts_inside_a_skipped_span_fails_the_run() {
    let mut sim = world_with_an_untold_timer();
    assert_eq!(sim.step().ok(), Some(false), "the sleeper starts");
    assert!(sim.is_quiet(), "nothing is on the network or woken");
    let error = sim
        .skip(10)
        .expect_err("the sleeper woke up inside the skipped steps");
    let error = error.to_string();
    assert!(
        error.contains("a timer the simulator did not know") && error.contains("sleeper"),
        "{error}"
    );
}

#[test]
fn the_same_world_in_lockstep_runs_to_its_end() {
    let mut sim = world_with_an_untold_timer();
    let mut finished = false;
    for _ in 0..10 {
        finished = sim.step().expect("steps run");
        if finished {
            break;
        }
    }
    assert!(finished, "the sleeper finished within 50 ms");
    assert_eq!(sim.elapsed(), Duration::from_millis(25));
}

#[test]
fn a_skip_over_nothing_moves_every_clock_to_its_end() {
    let mut sim = turmoil::Builder::new()
        .tick_duration(Duration::from_millis(5))
        .build();
    sim.client("waiter", async {
        std::future::pending::<()>().await;
        Ok(())
    });
    assert_eq!(sim.step().ok(), Some(false));
    assert!(sim.is_quiet());
    assert_eq!(sim.skip(200).ok(), Some(false), "nothing happened in them");
    assert_eq!(sim.elapsed(), Duration::from_millis(1_005));
}
