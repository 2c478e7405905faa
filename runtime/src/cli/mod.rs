//! The logic of the `baton` subcommands.
//!
//! `main.rs` parses arguments. `detect` works over bytes and strings (main reads the file and
//! prints). `app` holds the client commands of the daemon's app channel (`status`, `coordinator`,
//! `tasks`, `attach`, `events`): their requests, and what they print, made by pure `render_*`
//! functions tested without a daemon.

pub mod app;
pub mod detect;
