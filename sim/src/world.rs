//! The simulated world's constants: its hosts, its time, and where things live in it.
//!
//! Time: turmoil advances every host's tokio clock by [`TICK_MS`] per step, so the engine's
//! timers (the prompt's Enter delay, the detector's stability, wait timeouts, notification
//! delays) run on simulated time, and nothing reads the machine's clock. Within a step each
//! host's timers fire at their exact millisecond: the engine, its agents' terminals and their
//! scripts share the daemon host, so everything between them is exact to the millisecond. What
//! crosses between hosts (an actor's call, its answer) is seen by the other host at its next
//! step, as over a network whose latency is 0 to `TICK_MS`.
//!
//! Why 5 ms: a turmoil step costs about a microsecond per host whatever happens in it (measured:
//! two idle hosts run 564 simulated seconds per wall second at a 1 ms step), so in lockstep the
//! step sets the simulator's speed (the five-agent speed scenario: about 2,000x real time per CPU
//! second at 5 ms, 500x at 1 ms). Cross-host calls taking up to 5 ms is a realistic network. A
//! step is one tokio `block_on` per host (turmoil is vendored with the network's own clock moved
//! by arithmetic, `sim/vendor/turmoil/README.md`). Most steps have nothing to do, and the loop
//! runs those as one (`crate::skip`: exact, the same trace as lockstep): the speed scenario then
//! runs about 8,700 of its 122,316 steps one by one, and its speed is set by what the daemon
//! and the actors do in them.
//!
//! Hosts: the daemon is the host [`DAEMON_HOST`] (see `crate::daemon`); a scenario's actors run
//! on `crate::runner::SCENARIO_HOST` and call the daemon's REST API over turmoil's network
//! (`crate::net`). An MCP process's connections each meet their actor's link faults on their own
//! (`crate::link`), so its retries ride them out as they would over a real network.

/// The daemon's host name in the simulation.
pub const DAEMON_HOST: &str = "daemon";
/// Simulated time per turmoil step (see the module documentation for the choice).
pub const TICK_MS: u64 = 5;
/// A simulation that runs longer than this (six simulated hours) stops with an error.
pub const SIMULATION_MS_MAX: u64 = 6 * 60 * 60 * 1_000;
/// Wall time at the start of every simulation (2023-11-14T22:13:20Z), the same on every machine.
pub const EPOCH_MS: u64 = 1_700_000_000_000;
/// The project's repository, with its main branch checked out.
pub const PROJECT_ROOT: &str = "/repo";
/// Where the coordinators' credentials files and the sub-tasks' MCP configs are written.
pub const CONFIG_DIR: &str = "/tmp/baton";
/// The daemon's state directory: its state file.
pub const STATE_DIR: &str = "/var/baton";

/// Waits until the next simulation step begins: what a host learnt from another host in this
/// step (an answer to its call) it acts on from then, never at a time before the other host
/// gave it. Turmoil's own network delivers the same way. (A told timer: the step it ends in is
/// never skipped.)
pub async fn next_step() {
    let now =
        turmoil::sim_elapsed().map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let boundary = (now / TICK_MS + 1) * TICK_MS;
    baton_runtime::time::sleep(std::time::Duration::from_millis(boundary - now)).await;
}
