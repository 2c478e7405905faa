//! Architecture invariant: every timer of the code the simulator runs is made through
//! `baton_runtime::time`, which tells the simulator its deadline; a timer made with tokio's own
//! functions is one the simulator cannot see, and it would skip over it (it reports that as an
//! error, "a timer the simulator did not know", but only when the timer fires in a skipped span:
//! this test finds it before). Scanned: `runtime/src` and `sim/src`, but for `runtime/src/time.rs`
//! itself, the production adapters (`runtime/src/adapters/`, which the simulator replaces with
//! fakes) and unit-test files (`tests.rs`, `*_tests.rs`, which run on tokio's own test runtime).

use std::path::{Path, PathBuf};

/// tokio's timer functions and types, as a file would name them.
const TOKIO_TIMERS: [&str; 9] = [
    "sleep",
    "sleep_until",
    "timeout",
    "timeout_at",
    "interval",
    "interval_at",
    "Sleep",
    "Timeout",
    "Interval",
];

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// The tokio timers `source` names, each with its line (1-based): `tokio::time::sleep(`,
/// `tokio::time::Sleep`, or a name imported from `tokio::time`.
fn tokio_timers(source: &str) -> Vec<(usize, String)> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut found = Vec::new();
    for (index, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("tokio::time::") {
            let after = &rest[at + "tokio::time::".len()..];
            let names: Vec<&str> = if let Some(group) = after.strip_prefix('{') {
                group
                    .split('}')
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .collect()
            } else {
                vec![after]
            };
            for name in names {
                let name: String = name.trim().chars().take_while(|&c| ident(c)).collect();
                if TOKIO_TIMERS.contains(&name.as_str()) {
                    found.push((index + 1, name));
                }
            }
            rest = after;
        }
    }
    found
}

#[test]
fn the_code_the_simulator_runs_makes_its_timers_through_baton_time() {
    let sim = Path::new(env!("CARGO_MANIFEST_DIR"));
    let runtime = sim.join("../runtime/src");
    let mut files = Vec::new();
    rust_files(&sim.join("src"), &mut files);
    rust_files(&runtime, &mut files);
    files.sort();
    let scanned = |path: &Path| {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        !name.ends_with("tests.rs")
            && path != runtime.join("time.rs")
            && !path.starts_with(runtime.join("adapters"))
    };
    let mut offenders = Vec::new();
    for path in files.iter().filter(|path| scanned(path)) {
        let source = std::fs::read_to_string(path).expect("readable source");
        for (line, name) in tokio_timers(&source) {
            offenders.push(format!("{}:{line}: tokio::time::{name}", path.display()));
        }
    }
    assert!(
        files.len() > 50,
        "the scan found the sources ({} files)",
        files.len()
    );
    assert!(
        offenders.is_empty(),
        "timers the simulator cannot see (use baton_runtime::time):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_scanner_finds_every_form_of_tokio_timer_and_nothing_else() {
    let check = |source: &str, expected: &[(usize, &str)]| {
        let found = tokio_timers(source);
        let expected: Vec<(usize, String)> = expected
            .iter()
            .map(|&(line, name)| (line, name.to_owned()))
            .collect();
        assert_eq!(found, expected, "in {source:?}");
    };
    check("tokio::time::sleep(d).await;", &[(1, "sleep")]);
    check(
        "let a = 1;\nx(tokio::time::timeout(d, f), tokio::time::Instant::now());",
        &[(2, "timeout")],
    );
    check(
        "use tokio::time::{Instant, interval, Sleep};",
        &[(1, "interval"), (1, "Sleep")],
    );
    check("let at = tokio::time::Instant::now();", &[]);
    check("// tokio::time::sleep is not used here", &[]);
    check("baton_runtime::time::sleep(d).await;", &[]);
}
