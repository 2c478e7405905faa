//! Baton's deterministic simulator: the runtime's own code on simulated time, network (turmoil),
//! PTYs with scripted agents, repos and files, replaying multi-agent scenarios bit for bit from a
//! seed or a scenario file.
//!
//! Built so far: the [`world`] — a turmoil simulation whose daemon host runs the real engine on
//! the runtime's stateful fakes, driven on simulated time, with a [`trace::Trace`] of what
//! happened. Scenario files, scripted agents, faults and the `baton-sim` runner grow on it.

pub mod agent;
pub mod frames;
pub mod scenario;
pub mod trace;
pub mod world;
