//! Every scenario file under `scenarios/` (its `*.toml`), replayed in the simulator: each must
//! pass its expectations and invariants, and its trace must match its snapshot in
//! `snapshots/scenario__<folder>__<name>.snap`. One test per folder, so folders run side by
//! side; a folder's test reports every failing file, not just the first.

use std::path::{Path, PathBuf};

use baton_sim::runner;

fn scenario_files(folder: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

/// The folders `cargo test` replays, one test each.
const FOLDERS: [&str; 11] = [
    "attacks",
    "websocket",
    "coordinator",
    "signals",
    "control",
    "notifications",
    "detector",
    "attention",
    "faults",
    "bugs",
    "landing",
];

/// No scenario file sits where no test would replay it (a new folder, a file at the top).
#[test]
fn every_scenario_file_is_in_a_replayed_folder() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut stray = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("scenarios/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|ext| ext == "toml") {
                let folder = path
                    .parent()
                    .and_then(|p| p.strip_prefix(&root).ok())
                    .and_then(|p| p.to_str())
                    .unwrap_or_default()
                    .to_owned();
                if !FOLDERS.contains(&folder.as_str()) {
                    stray.push(path.display().to_string());
                }
            }
        }
    }
    assert!(
        stray.is_empty(),
        "scenario files outside {FOLDERS:?} would never be replayed: {stray:?}"
    );
}

fn check(folder: &str) {
    let files = scenario_files(folder);
    assert!(!files.is_empty(), "no scenario in scenarios/{folder}");
    let mut failed = Vec::new();
    for file in &files {
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let outcome = match runner::run_file(file, None) {
            Ok(outcome) => outcome,
            Err(error) => {
                failed.push(format!("{stem}: {error:#}"));
                continue;
            }
        };
        if !outcome.failures.is_empty() {
            failed.push(format!(
                "{stem} (seed {}):\n  {}\n--- trace ---\n{}",
                outcome.seed,
                outcome.failures.join("\n  "),
                outcome.trace.render()
            ));
            continue;
        }
        // Bit for bit: a second run in the same process must give the same trace (a snapshot
        // written by one run and matched by another only catches what happens to differ).
        let trace = outcome.trace.render();
        let again = runner::run_file(file, None)
            .map(|o| o.trace.render())
            .unwrap_or_else(|error| format!("{error:#}"));
        if again != trace {
            let line = trace
                .lines()
                .zip(again.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| trace.lines().count().min(again.lines().count()));
            let nth = |text: &str| text.lines().nth(line).unwrap_or("(the end)").to_owned();
            failed.push(format!(
                "{stem}: two runs differ at trace line {}:\n  {}\n  {}",
                line + 1,
                nth(&trace),
                nth(&again)
            ));
            continue;
        }
        let name = format!("scenario__{folder}__{stem}");
        let matched = std::panic::catch_unwind(|| {
            insta::with_settings!({
                snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"),
                prepend_module_to_snapshot => false,
                omit_expression => true,
                description => format!("scenarios/{folder}/{stem}.toml"),
            }, {
                insta::assert_snapshot!(name.clone(), trace.clone());
            });
        });
        if matched.is_err() {
            failed.push(format!(
                "{stem}: its trace differs from snapshots/{name}.snap"
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} scenarios failed:\n\n{}",
        failed.len(),
        files.len(),
        failed.join("\n\n")
    );
}

#[test]
fn attacks_scenarios_hold() {
    check("attacks");
}

#[test]
fn landing_scenarios_hold() {
    check("landing");
}

#[test]
fn websocket_scenarios_hold() {
    check("websocket");
}

#[test]
fn coordinator_scenarios_hold() {
    check("coordinator");
}

#[test]
fn signals_scenarios_hold() {
    check("signals");
}

#[test]
fn control_scenarios_hold() {
    check("control");
}

#[test]
fn notifications_scenarios_hold() {
    check("notifications");
}

#[test]
fn detector_scenarios_hold() {
    check("detector");
}

#[test]
fn attention_scenarios_hold() {
    check("attention");
}

#[test]
fn faults_scenarios_hold() {
    check("faults");
}

#[test]
fn bugs_scenarios_hold() {
    check("bugs");
}

/// The same file and seed, run twice in one process, give byte-identical traces; another seed
/// gives other ids.
#[test]
fn the_same_seed_replays_bit_for_bit() {
    for (folder, name) in [
        ("coordinator", "many-tasks-in-parallel"),
        ("faults", "daemon-restart-restores-tasks"),
        ("faults", "partition-during-a-wait-consumes-nothing"),
    ] {
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios")
            .join(folder)
            .join(format!("{name}.toml"));
        let first = runner::run_file(&file, Some(11)).expect("runs");
        let again = runner::run_file(&file, Some(11)).expect("runs");
        assert_eq!(first.trace.render(), again.trace.render(), "{name}");
        let other = runner::run_file(&file, Some(12)).expect("runs");
        assert_ne!(
            first.trace.render(),
            other.trace.render(),
            "{name}: the seed matters"
        );
    }
}

/// The speed scenario (outside the suite: it runs ten simulated minutes) stays a valid scenario.
#[test]
fn the_speed_scenario_reads() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("speed/five-agents-ten-minutes.toml");
    let text = std::fs::read_to_string(&file).expect("the speed scenario exists");
    let scenario = baton_sim::scenario::parse(&text).expect("it reads");
    assert_eq!(scenario.agents.len(), 5);
}
