//! What `baton-sim run` does, apart from reading the clock and the command line: run each
//! scenario file once (with its own seed or `--seed`) or over a range of seeds (`--seeds A..B`),
//! report each run, and on a sweep's first failing seed of a file write that seed down as a
//! ready-to-commit scenario next to it (`<name>.seed-<N>.toml`).

use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::runner::{self, Outcome};
use crate::skip::Stepping;

/// Longest seed range one sweep runs.
pub const SWEEP_SEEDS_MAX: u64 = 1_000_000;

/// Which seeds to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seeds {
    /// The file's own seed.
    File,
    /// This one.
    One(u64),
    /// Each of these, stopping at a file's first failure.
    Sweep(Range<u64>),
}

/// Reads `A..B` (B excluded).
///
/// # Errors
/// Not two numbers around `..`, empty, or longer than [`SWEEP_SEEDS_MAX`].
pub fn parse_seeds(text: &str) -> Result<Range<u64>, String> {
    let (a, b) = text
        .split_once("..")
        .ok_or_else(|| format!("--seeds {text:?}: write a range such as 0..100"))?;
    let parse = |n: &str| {
        n.trim()
            .parse::<u64>()
            .map_err(|_| format!("--seeds {text:?}: {n:?} is not a seed"))
    };
    let range = parse(a)?..parse(b)?;
    if range.is_empty() {
        return Err(format!("--seeds {text:?} is empty"));
    }
    if range.end - range.start > SWEEP_SEEDS_MAX {
        return Err(format!(
            "--seeds {text:?}: at most {SWEEP_SEEDS_MAX} seeds in one sweep"
        ));
    }
    Ok(range)
}

/// What a whole invocation did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    /// Runs made.
    pub runs: u64,
    /// Runs that failed (or could not run).
    pub failed: u64,
    /// Simulated time of all runs, in milliseconds.
    pub simulated_ms: u64,
    /// Scenario files written for failing seeds.
    pub written: Vec<PathBuf>,
}

/// How `run_files` replays.
#[derive(Debug, Clone, Copy, Default)]
pub struct Replay {
    /// Write each run's trace after its report.
    pub trace: bool,
    /// How the simulated time moves (every step, or skipping those with nothing to do).
    pub stepping: Stepping,
}

/// Runs every file with `seeds`, writing each run's report (and its trace, with
/// `replay.trace`) to `out`.
pub fn run_files(files: &[PathBuf], seeds: &Seeds, replay: Replay, out: &mut String) -> Summary {
    let Replay { trace, stepping } = replay;
    let mut summary = Summary::default();
    for file in files {
        match seeds {
            Seeds::File => {
                one(file, None, replay, out, &mut summary);
            }
            Seeds::One(seed) => {
                one(file, Some(*seed), replay, out, &mut summary);
            }
            Seeds::Sweep(range) => {
                let mut passed = 0;
                for seed in range.clone() {
                    let Some(outcome) = one_quiet(file, seed, stepping, out, &mut summary) else {
                        break;
                    };
                    if outcome.failures.is_empty() {
                        passed += 1;
                        continue;
                    }
                    report(file, &outcome, trace, out);
                    match write_seed(file, &outcome) {
                        Ok(path) => {
                            let _ = writeln!(out, "  wrote {}", path.display());
                            summary.written.push(path);
                        }
                        Err(error) => {
                            let _ = writeln!(out, "  could not write the failing seed: {error}");
                        }
                    }
                    break;
                }
                let _ = writeln!(
                    out,
                    "{}: {passed} seed(s) of {}..{} passed",
                    file.display(),
                    range.start,
                    range.end
                );
            }
        }
    }
    summary
}

fn one(file: &Path, seed: Option<u64>, replay: Replay, out: &mut String, summary: &mut Summary) {
    let trace = replay.trace;
    summary.runs += 1;
    match runner::run_file_stepping(file, seed, replay.stepping) {
        Ok(outcome) => {
            summary.simulated_ms += outcome.simulated_ms;
            if !outcome.failures.is_empty() {
                summary.failed += 1;
            }
            report(file, &outcome, trace, out);
        }
        Err(error) => {
            summary.failed += 1;
            let _ = writeln!(out, "ERROR {error:#}");
        }
    }
}

fn one_quiet(
    file: &Path,
    seed: u64,
    stepping: Stepping,
    out: &mut String,
    summary: &mut Summary,
) -> Option<Outcome> {
    summary.runs += 1;
    match runner::run_file_stepping(file, Some(seed), stepping) {
        Ok(outcome) => {
            summary.simulated_ms += outcome.simulated_ms;
            if !outcome.failures.is_empty() {
                summary.failed += 1;
            }
            Some(outcome)
        }
        Err(error) => {
            summary.failed += 1;
            let _ = writeln!(out, "ERROR {error:#}");
            None
        }
    }
}

fn report(file: &Path, outcome: &Outcome, trace: bool, out: &mut String) {
    let verdict = if outcome.failures.is_empty() {
        "PASS"
    } else {
        "FAIL"
    };
    let steps = outcome.steps;
    let _ = writeln!(
        out,
        "{verdict} {} (seed {}): {:.3} simulated s; {} steps run, {} skipped in {} skips",
        file.display(),
        outcome.seed,
        outcome.simulated_ms as f64 / 1_000.0,
        steps.run,
        steps.skipped,
        steps.skips
    );
    for failure in &outcome.failures {
        let _ = writeln!(out, "  {}", failure.replace('\n', "\n  "));
    }
    if trace {
        out.push_str(&outcome.trace.render());
    }
}

/// Writes `file` again with the failing seed, beside it.
///
/// # Errors
/// The file cannot be read or written.
pub fn write_seed(file: &Path, outcome: &Outcome) -> std::io::Result<PathBuf> {
    let text = std::fs::read_to_string(file)?;
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("scenario");
    let path = file.with_file_name(format!("{stem}.seed-{}.toml", outcome.seed));
    std::fs::write(&path, with_seed(&text, outcome))?;
    Ok(path)
}

/// The scenario text with its top-level `seed` set to the outcome's, and a note of what failed.
#[must_use]
pub fn with_seed(text: &str, outcome: &Outcome) -> String {
    let mut note = format!(
        "# Written by `baton-sim run --seeds`: seed {} fails.\n",
        outcome.seed
    );
    for failure in &outcome.failures {
        for line in failure.lines() {
            let _ = writeln!(note, "#   {line}");
        }
    }
    let mut lines: Vec<String> = Vec::new();
    let mut placed = false;
    let mut in_root = true;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            if in_root && !placed {
                lines.push(format!("seed = {}", outcome.seed));
                placed = true;
            }
            in_root = false;
        }
        if in_root
            && !placed
            && trimmed.starts_with("seed")
            && trimmed[4..].trim_start().starts_with('=')
        {
            lines.push(format!("seed = {}", outcome.seed));
            placed = true;
            continue;
        }
        lines.push(line.to_owned());
    }
    if !placed {
        lines.push(format!("seed = {}", outcome.seed));
    }
    format!("{note}{}\n", lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::{parse_seeds, with_seed};
    use crate::runner::Outcome;

    #[test]
    fn seed_ranges_read_and_are_bounded() {
        assert_eq!(parse_seeds("0..100"), Ok(0..100));
        assert!(parse_seeds("5..5").unwrap_err().contains("empty"));
        assert!(parse_seeds("7").unwrap_err().contains("range"));
        assert!(parse_seeds("0..99999999").unwrap_err().contains("at most"));
    }

    #[test]
    fn a_failing_seed_replaces_the_files_seed() {
        let outcome = Outcome {
            seed: 42,
            trace: crate::trace::Trace::default(),
            failures: vec!["invariant signals: lost".into()],
            simulated_ms: 0,
            answers: Vec::new(),
            bindings: std::collections::BTreeMap::new(),
            steps: crate::runner::Steps::default(),
        };
        let text = "format = 1\nname = \"x\"\nseed = 7\n\n[[step]]\nseed = 3\n";
        let written = with_seed(text, &outcome);
        assert!(written.starts_with("# Written by"));
        assert!(written.contains("#   invariant signals: lost\n"));
        assert!(written.contains("\nseed = 42\n"));
        assert!(!written.contains("seed = 7"));
        assert!(
            written.contains("[[step]]\nseed = 3"),
            "only the top-level seed changes"
        );
        let unseeded = with_seed("format = 1\nname = \"x\"\n[end]\n", &outcome);
        assert!(unseeded.contains("name = \"x\"\nseed = 42\n[end]"));
        assert!(crate::scenario::parse(&with_seed("format = 1\nname = \"x\"\n", &outcome)).is_ok());
    }
}
