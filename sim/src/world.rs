//! The simulated world's constants: its hosts, its time, and where things live in it.
//!
//! Time: turmoil advances every host's tokio clock by [`TICK_MS`] per step, so the engine's
//! timers (the prompt's Enter delay, the detector's stability, wait timeouts, notification
//! delays) run on simulated time, and nothing reads the machine's clock. Within a step each
//! host's timers fire at their exact millisecond; what crosses between hosts is seen by the
//! other host at its next step.
//!
//! Hosts: the daemon is the host [`DAEMON_HOST`] (see `crate::daemon`); a scenario's actors run
//! on `crate::runner::SCENARIO_HOST`. When the REST layer exists, each coordinator's and each
//! sub-task's MCP process becomes its own host calling the daemon over turmoil's network.

/// The daemon's host name in the simulation.
pub const DAEMON_HOST: &str = "daemon";
/// Simulated time per turmoil step: a millisecond, the engine's finest unit of time.
pub const TICK_MS: u64 = 1;
/// A simulation that runs longer than this (six simulated hours) stops with an error.
pub const SIMULATION_MS_MAX: u64 = 6 * 60 * 60 * 1_000;
/// Wall time at the start of every simulation (2023-11-14T22:13:20Z), the same on every machine.
pub const EPOCH_MS: u64 = 1_700_000_000_000;
/// The project's repository, with its main branch checked out.
pub const PROJECT_ROOT: &str = "/repo";
/// Where sub-tasks' MCP configs are written.
pub const CONFIG_DIR: &str = "/tmp/baton";
/// App events the daemon buffers before the engine waits for the app to take them.
pub const APP_EVENTS_MAX: usize = 1_024;
