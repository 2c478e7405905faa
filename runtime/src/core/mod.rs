//! The pure core: decisions without effects.
//!
//! Nothing here performs IO, spawns, sleeps or reads a clock: time (`now`) and randomness come
//! in as arguments, results go out as values. A test (`tests/core_is_pure.rs`) fails if a file
//! here names tokio, std::fs, std::net, std::process, portable_pty or git2.

pub mod audit;
pub mod auth;
pub mod branch;
pub mod coordinator;
pub mod detector;
pub mod diff;
pub mod ids;
pub mod notify;
pub mod replay;
pub mod routes;
pub mod state;
pub mod text;
pub mod time;
pub mod ws;
