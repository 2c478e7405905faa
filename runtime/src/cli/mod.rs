//! The logic of the `baton` subcommands, over bytes and strings.
//!
//! `main.rs` parses arguments, reads files and prints; everything it prints is made here, so it
//! can be tested without a process.

pub mod detect;
