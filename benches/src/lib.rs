//! Inputs and baselines for the criterion benchmarks of Baton's hot paths.
//!
//! Layout:
//! - [`corpus`]: deterministic, seeded corpora of agent terminal output (about 1 MiB each) and
//!   the fixed-size chunking the benches feed them through.
//! - [`reference`](mod@reference): the reference prompt detector (spec §7.1–§7.2),
//!   re-implemented as the baseline that Baton's detector is measured against.
//! - `benches/detector.rs`: the criterion target, one group per corpus and chunk size.
//!
//! The library holds only what the bench targets consume, so every input and baseline can be
//! unit-tested without running a bench. Nothing here reads a clock, the environment or a file:
//! a bench figure must depend on the code under test alone.

pub mod corpus;
pub mod reference;
