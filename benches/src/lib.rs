//! Inputs and baselines for the criterion benchmarks of Baton's hot paths.
//!
//! Layout:
//! - [`corpus`]: deterministic, seeded corpora of agent terminal output (about 1 MiB each) and
//!   the fixed-size chunking the benches feed them through.
//! - [`reference`](mod@reference): the reference prompt detector (spec §7.1–§7.2),
//!   re-implemented as the baseline that Baton's detector is measured against.
//! - `benches/detector.rs`: the criterion target, one group per corpus and chunk size.
//! - [`load`]: what the REST load clients (`src/bin/list_load.rs`, `src/bin/wake_load.rs`)
//!   share: the API over the in-memory ports started as a child process, its CPU time, HTTP/1.1
//!   exchanges read to the last byte, percentiles.
//!
//! The library holds only what the bench targets and load clients consume, so every input,
//! baseline and parser can be unit-tested without running a bench. Outside [`load`] nothing
//! reads a clock, the environment or a file: a bench figure must depend on the code under test
//! alone.

pub mod corpus;
pub mod load;
pub mod reference;
