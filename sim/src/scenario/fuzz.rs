//! Fuzz target `scenario` (issue 20; the runtime's targets and their harness are in
//! `runtime/src/fuzz/`, docs/fuzzing.md says how to run them longer): scenario files and step
//! times from arbitrary text and from mutations of every committed scenario.
//!
//! Properties: a file over [`SCENARIO_BYTES_MAX`] is refused unread; a scenario read has this
//! simulator's format and answers which invariants it asks for; every step time written out
//! reads back as itself, and one that does not fit in milliseconds is refused.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::{At, FORMAT, SCENARIO_BYTES_MAX, ScenarioError, invariant_names, parse, parse_at};

/// Sets the number of random cases, as for the runtime's targets.
const FUZZ_CASES_VAR: &str = "BATON_FUZZ_CASES";
/// Largest random or mutated input, in bytes (as the runtime's `FUZZ_INPUT_BYTES_MAX`, past
/// the largest committed scenario).
const FUZZ_INPUT_BYTES_MAX: usize = 16_384;

const DICTIONARY: &[&str] = &[
    "format = 1\n",
    "format = 4294967296\n",
    "[[step]]\n",
    "[[coordinator]]\n",
    "[[agent]]\n",
    "[[fault]]\n",
    "[world.repo]\n",
    "[end]\n",
    "invariants = \"all\"\n",
    "invariants = [\"nope\"]\n",
    "at = \"+18446744073709551615m\"\n",
    "at = \"0ms\"\n",
    "repeat = 10001\n",
    "parallel = 1001\n",
    "actor = \"attacker\"\n",
    "actor = \"app\"\n",
    "call = \"http\"\n",
    "bind = { task = \"taskId\" }\n",
    "${",
    "}",
    "\"\"\"",
    "'''",
    "[",
    "]",
    "{",
    "=",
    "\n",
];

fn cases(default: u32) -> u32 {
    std::env::var(FUZZ_CASES_VAR)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(default)
}

fn scenario_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a readable directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            scenario_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "toml") {
            found.push(path);
        }
    }
}

/// Every committed scenario: the corpus.
fn scenarios() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files = Vec::new();
    scenario_files(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("a UTF-8 scenario");
            (path, text)
        })
        .collect()
}

fn check(text: &str) -> Result<(), TestCaseError> {
    match parse(text) {
        Ok(scenario) => {
            prop_assert_eq!(scenario.format, FORMAT);
            let _ = invariant_names(&scenario);
        }
        Err(ScenarioError::TooLarge(_)) => prop_assert!(text.len() > SCENARIO_BYTES_MAX),
        Err(ScenarioError::Format(format)) => prop_assert_ne!(format, FORMAT),
        Err(_) => {}
    }
    Ok(())
}

/// A seed with some of it replaced: a stretch cut, a stretch of another seed or a token put in,
/// at char boundaries.
fn mutate(seed: &str, edits: &[(usize, usize, usize, usize)], seeds: &[String]) -> String {
    let mut text = seed.to_owned();
    for &(at, cut, what, which) in edits {
        let boundary = |text: &str, i: usize| {
            let mut i = i % (text.len() + 1);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        let start = boundary(&text, at);
        let end = boundary(&text, start + cut % 64).max(start);
        let insert = match what % 3 {
            0 => DICTIONARY[which % DICTIONARY.len()].to_owned(),
            1 => {
                let other = &seeds[which % seeds.len()];
                let from = boundary(other, which / 7);
                let to = boundary(other, from + 200).max(from);
                other[from..to].to_owned()
            }
            _ => String::new(),
        };
        text.replace_range(start..end, &insert);
        if text.len() > FUZZ_INPUT_BYTES_MAX {
            let cut = boundary(&text, FUZZ_INPUT_BYTES_MAX);
            text.truncate(cut);
        }
    }
    text
}

#[test]
fn every_committed_scenario_reads() {
    let files = scenarios();
    assert!(files.len() >= 100, "the scenarios are there");
    for (path, text) in files {
        assert!(parse(&text).is_ok(), "{}", path.display());
        check(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[test]
fn a_file_over_the_limit_is_refused_unread() {
    let text = " ".repeat(SCENARIO_BYTES_MAX + 1);
    assert_eq!(parse(&text), Err(ScenarioError::TooLarge(text.len())));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_holds_the_properties(text in proptest::collection::vec(any::<u8>(), 0..4_096)) {
        check(&String::from_utf8_lossy(&text))?;
    }

    #[test]
    fn mutated_scenarios_hold_the_properties(
        which in any::<usize>(),
        edits in proptest::collection::vec(any::<(usize, usize, usize, usize)>(), 1..8),
    ) {
        let seeds: Vec<String> = scenarios().into_iter().map(|(_, text)| text).collect();
        let text = mutate(&seeds[which % seeds.len()], &edits, &seeds);
        check(&text)?;
    }

    #[test]
    fn step_times_read_back_as_written(
        value in prop_oneof![0..100_000u64, any::<u64>()],
        unit in proptest::sample::select(vec![("ms", 1u64), ("s", 1_000), ("m", 60_000)]),
        relative in any::<bool>(),
    ) {
        let text = format!("{}{value}{}", if relative { "+" } else { "" }, unit.0);
        match value.checked_mul(unit.1) {
            Some(ms) => prop_assert_eq!(
                parse_at(&text),
                Ok(if relative { At::After(ms) } else { At::Absolute(ms) })
            ),
            None => prop_assert!(parse_at(&text).is_err()),
        }
    }

    #[test]
    fn arbitrary_step_times_never_panic(text in ".{0,40}") {
        if let Ok(At::Absolute(_)) = parse_at(&text) {
            prop_assert!(!text.starts_with('+'));
        }
    }
}
