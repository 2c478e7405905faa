//! Target `script`: the agent-behaviour language (`demo::parse_script`, `agents::script::
//! parse_action`) and the asciicast recordings a script's `cast` loads (`agents::recording::
//! parse_recording`, also what `baton detect` reads), from arbitrary bytes and mutated real
//! scripts and casts.
//!
//! Properties: an item read is one action, a pause possibly after it; a script read whose
//! `repeat` is not empty waits in it (or it would spin); a cast over `CAST_BYTES_MAX` is
//! refused; a recording read raw is the bytes given; a cast read has version 2 or 3.

use std::path::Path;

use proptest::prelude::*;

use super::{bytes_or_mutated, config, corpus, corpus_dir, files_in};
use crate::agents::recording::{Format, Recording, parse_recording};
use crate::agents::script::{Action, CAST_BYTES_MAX, parse_action};
use crate::demo::{COORDINATOR_SCRIPT, SUB_TASK_SCRIPT, parse_script};

const DICTIONARY: &[&[u8]] = &[
    b"{ print = \"ready\" }",
    b"{ wait_for = \"prompt\" }",
    b"{ pause_ms = 18446744073709551615 }",
    b"{ pause_ms = -1 }",
    b"{ exit = 4294967296 }",
    b"{ call = \"signal_done\", token = \"t\" }",
    b"{ call = \"create_task\", args = { name = \"x\" }, bind = \"t\" }",
    b"{ hook = \"Stop\", notification = \"n\" }",
    b"{ edit = \"a\", content = \"${prompt}\" }",
    b"{ cast = \"session.cast\" }",
    b"{ hang = true }",
    b"repeat = [",
    b"script = [",
    b"${",
    b"}",
    b"\"\"\"",
    b"'",
    b"[[",
    b"\n",
    b",",
];

const CAST_DICTIONARY: &[&[u8]] = &[
    b"{\"version\": 2, \"width\": 80, \"height\": 24}\n",
    b"{\"version\": 3, \"term\": {\"cols\": 65536, \"rows\": 0}}\n",
    b"[0.5, \"o\", \"\\u001b[2J\"]\n",
    b"[1e308, \"o\", \"x\"]\n",
    b"[-1, \"o\", \"x\"]\n",
    b"[0.1, \"i\", \"y\"]\n",
    b"[0.1, \"r\", \"80x24\"]\n",
    b"\r\n",
    b"\n",
    b"\"\\ud800\"",
];

fn check_action(actions: &[Action]) -> Result<(), TestCaseError> {
    prop_assert!(matches!(actions.len(), 1 | 2), "{:?}", actions);
    if let [_, second] = actions {
        prop_assert!(matches!(second, Action::Pause(_)), "{:?}", actions);
    }
    Ok(())
}

fn waits(action: &Action) -> bool {
    matches!(
        action,
        Action::WaitForPrompt
            | Action::WaitForAnswer
            | Action::WaitForReply
            | Action::Hang
            | Action::Exit(_)
    )
}

/// What holds of a script's text: read whole (when it loads no cast: a cast names a file, and a
/// random name may be `/dev/zero`), and item by item with `cast` loading `cast`.
fn check_script(text: &str, cast: &[u8]) -> Result<(), TestCaseError> {
    if !text.contains("cast")
        && let Ok(script) = parse_script(text, &corpus_dir("script"))
    {
        prop_assert!(script.repeat.is_empty() || script.repeat.iter().any(waits));
    }
    let Ok(table) = text.parse::<toml::Table>() else {
        return Ok(());
    };
    let load = |_: &str| Ok(cast.to_vec());
    for list in table.values().filter_map(toml::Value::as_array) {
        for item in list.iter().filter_map(toml::Value::as_table) {
            if let Ok(actions) = parse_action(item, &load) {
                check_action(&actions)?;
            }
        }
    }
    Ok(())
}

fn check_recording(bytes: &[u8]) -> Result<(), TestCaseError> {
    for format in [Format::Auto, Format::Cast, Format::Raw] {
        match parse_recording(bytes, format) {
            Ok(Recording::Raw(raw)) => {
                prop_assert!(format != Format::Cast);
                prop_assert_eq!(&raw[..], bytes);
            }
            Ok(Recording::Cast { version, .. }) => {
                prop_assert!(format != Format::Raw);
                prop_assert!(matches!(version, 2 | 3));
            }
            Err(_) => prop_assert!(format != Format::Raw),
        }
    }
    Ok(())
}

/// The committed casts: the detector's recordings.
fn casts() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/detector");
    files_in(&dir, &["cast"])
}

fn scripts() -> Vec<(String, Vec<u8>)> {
    let mut scripts = corpus("script");
    scripts.push(("sub-task.toml".into(), SUB_TASK_SCRIPT.into()));
    scripts.push(("coordinator.toml".into(), COORDINATOR_SCRIPT.into()));
    scripts
}

fn seeds(files: Vec<(String, Vec<u8>)>) -> Vec<Vec<u8>> {
    files.into_iter().map(|(_, bytes)| bytes).collect()
}

#[test]
fn every_script_and_cast_of_the_corpus_holds_the_properties() {
    let casts = casts();
    assert!(casts.len() >= 2, "the detector's casts are there");
    for (name, cast) in &casts {
        check_recording(cast).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            matches!(
                parse_recording(cast, Format::Auto),
                Ok(Recording::Cast { .. })
            ),
            "{name} reads"
        );
    }
    for (name, script) in scripts() {
        let text = String::from_utf8_lossy(&script);
        check_script(&text, &casts[0].1).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for builtin in [SUB_TASK_SCRIPT, COORDINATOR_SCRIPT] {
        assert!(parse_script(builtin, Path::new("/nonexistent")).is_ok());
    }
}

#[test]
fn a_cast_over_its_limit_is_refused_unread() {
    let mut item = toml::Table::new();
    item.insert("cast".into(), toml::Value::String("big.cast".into()));
    let load = |_: &str| Ok(vec![b'{'; CAST_BYTES_MAX + 1]);
    let refusal = parse_action(&item, &load).unwrap_err();
    assert!(refusal.contains("at most"), "{refusal}");
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_and_mutated_scripts_hold_the_properties(
        script in bytes_or_mutated(seeds(scripts()), DICTIONARY),
        cast in bytes_or_mutated(seeds(casts()), CAST_DICTIONARY),
    ) {
        check_script(&String::from_utf8_lossy(&script), &cast)?;
    }

    #[test]
    fn arbitrary_and_mutated_recordings_hold_the_properties(
        bytes in bytes_or_mutated(seeds(casts()), CAST_DICTIONARY),
    ) {
        check_recording(&bytes)?;
    }
}
