//! `baton-sim`: runs scenario files in the deterministic simulator. A thin shell over
//! `baton_sim::sweep`: it parses arguments, reads the wall clock (to report the simulation's
//! speed), prints, and sets the exit code (0 all passed, 1 a scenario failed, 2 bad usage).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use baton_sim::skip::Stepping;
use baton_sim::sweep::{self, Replay, Seeds};
use clap::{Parser, Subcommand};

/// Baton's deterministic simulator.
#[derive(Parser)]
#[command(name = "baton-sim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay scenario files; with --seeds, sweep seeds and write the first failing one down.
    Run {
        /// Scenario files (format 1, TOML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Run with this seed instead of the file's.
        #[arg(long, conflicts_with = "seeds")]
        seed: Option<u64>,
        /// Run every seed of A..B (B excluded); on a file's first failing seed, write it
        /// beside the file as <name>.seed-<N>.toml.
        #[arg(long, value_parser = sweep::parse_seeds)]
        seeds: Option<std::ops::Range<u64>>,
        /// Print each run's trace.
        #[arg(long)]
        trace: bool,
        /// Run every step of simulated time, none skipped (slower; the same trace).
        #[arg(long)]
        lockstep: bool,
    },
}

#[allow(clippy::print_stdout, clippy::disallowed_methods)]
fn main() -> ExitCode {
    let Command::Run {
        files,
        seed,
        seeds,
        trace,
        lockstep,
    } = Cli::parse().command;
    let seeds = match (seed, seeds) {
        (Some(seed), _) => Seeds::One(seed),
        (None, Some(range)) => Seeds::Sweep(range),
        (None, None) => Seeds::File,
    };
    // Wall time is what the speed line reports: the one clock this binary reads.
    let started = Instant::now();
    let mut out = String::new();
    let stepping = if lockstep {
        Stepping::Lockstep
    } else {
        Stepping::Skip
    };
    let summary = sweep::run_files(&files, &seeds, Replay { trace, stepping }, &mut out);
    let wall = started.elapsed().as_secs_f64().max(1e-9);
    print!("{out}");
    let simulated = summary.simulated_ms as f64 / 1_000.0;
    println!(
        "{} run(s), {} failed; {simulated:.1} simulated s in {wall:.3} wall s: {:.0} simulated s per wall s, {:.1} scenarios per s",
        summary.runs,
        summary.failed,
        simulated / wall,
        summary.runs as f64 / wall
    );
    if summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
