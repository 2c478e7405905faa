//! Baton's runtime: everything the `baton` binary runs.
//!
//! # Layout
//!
//! Top to bottom; a module uses only modules below it (`tests/imports_point_down.rs`).
//!
//! - `fuzz` (tests only): property tests over arbitrary and mutated input for everything that
//!   parses outside input (docs/fuzzing.md).
//! - [`daemon`]: `baton daemon`: wiring, persistence and restore, the app channel, shutdown.
//! - [`cli`]: the command-line subcommands' logic, over bytes and strings; `main.rs` does the
//!   IO. The client commands reach the daemon over its app channel, not through its code.
//! - [`demo`]: `baton demo-agent`: a scripted stand-in for a coding agent, in a real terminal,
//!   with a real MCP client.
//! - [`mcp`]: `baton mcp`, the MCP stdio server agents launch; a REST client of the API.
//! - [`api`]: the REST and WebSocket API (axum) over any listener; its gates are pure, in
//!   `core::auth` and `core::ws`.
//! - [`engine`]: one actor per coordinator, driving the core with the ports.
//! - [`agents`]: agent kinds: launch arguments, skip-permission flags, detector profile, how
//!   an agent launches Baton's MCP server; terminal recordings.
//! - [`adapters`]: the production ports: real terminals, git, files, clock, randomness.
//! - [`ports`]: the traits the engine needs from the world (clock, entropy, PTYs, git, files),
//!   with in-memory fakes behind the `fakes` feature.
//! - [`killpoint`]: named points where a test build can crash the daemon (`kill-points`).
//! - [`endpoints`]: where the daemon is reached (the API's ports, the app channel's socket).
//! - [`time`]: every sleep and timeout, so that a simulator can be told their deadlines.
//! - [`core`]: pure decisions, time and randomness as arguments (the prompt detector lives in
//!   `core::detector`); it uses nothing of the crate but itself.
//!
//! See ARCHITECTURE.md at the workspace root for the map and its invariants.

pub mod adapters;
pub mod agents;
pub mod api;
pub mod cli;
pub mod core;
pub mod daemon;
pub mod demo;
pub mod endpoints;
pub mod engine;
pub mod killpoint;
pub mod mcp;
pub mod ports;
pub mod time;

#[cfg(test)]
mod fuzz;
