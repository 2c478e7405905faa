//! Baton's deterministic simulator: the runtime's own code on simulated time, network (turmoil),
//! PTYs with scripted agents, repos and files, replaying multi-agent scenarios bit for bit from a
//! seed or a scenario file.
//!
//! The world's repositories and disk are the runtime's own in-memory fakes, the ones the engine's
//! tests run on (`baton_runtime::ports::fakes`: `FakeRepo`, git with content; `FakeDisk`, the
//! `Files` port over its checkouts and `FakeFiles`); the simulator adds only how a scenario sets
//! them up and plays their faults (`runner`).
//!
//! # Layout
//!
//! - [`scenario`]: scenario files, format 1 (TOML), read strictly.
//! - [`runner`]: runs a scenario: its world, its actors' lanes, its faults, its checks.
//! - [`daemon`]: the daemon host (the real engine on simulated ports, restartable) and what
//!   outlives its crashes.
//! - [`calls`]: the coordinator tools and app actions a step calls, with REST-shaped answers;
//!   [`app`]: the app's actions over the app channel (the daemon's real app router).
//! - [`link`]: each actor's link to the daemon, and its faults (partition, delay, lost answers).
//! - [`net`]: the REST API on turmoil's network: the listener, and the actors' HTTP client
//!   (`SimTcp`: direct or over an actor's link).
//! - [`invariants`]: what must hold after every step and at the end.
//! - [`agent`], [`pty`]: scripted agents (their language and screens are the runtime's
//!   `agents::script` and `agents::frames`), their terminals.
//! - [`skip`]: skipping the steps in which nothing can happen, exactly; the hosts' timers.
//! - [`sweep`]: what `baton-sim run` does: runs, seed sweeps, writing a failing seed down.
//! - [`trace`]: the human-readable trace.
//! - [`world`]: the world's constants: hosts, tick, epoch, paths.
//! - [`ws`]: the attacker's WebSocket client.

pub mod agent;
pub mod app;
pub mod calls;
pub mod daemon;
pub mod invariants;
pub mod link;
pub mod net;
pub mod pty;
pub mod runner;
pub mod scenario;
pub mod skip;
pub mod sweep;
pub mod trace;
pub mod world;
pub mod ws;
