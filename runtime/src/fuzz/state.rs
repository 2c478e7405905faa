//! Target `state`: the daemon's state file (`daemon::state::decode`), from arbitrary bytes,
//! mutated real files and arbitrary JSON.
//!
//! Properties: a file read is one the encoder writes back as a fixed point (what it wrote reads
//! again, and a second round changes no byte: nothing read is lost or invented on the way), and
//! with no coordinator listed twice; a refusal is an error value, never a panic.

use proptest::prelude::*;

use super::{bytes_or_mutated, config, corpus, json_value};
use crate::daemon::state::{StateError, decode, encode};

const DICTIONARY: &[&[u8]] = &[
    b"\"format\": ",
    b"\"coordinators\": ",
    b"\"tasks\": ",
    b"\"id\": ",
    b"\"token\": ",
    b"\"worktree_files\": ",
    b"\"mcp_json\": ",
    b"\"signal_at_ms\": ",
    b"\"original\": ",
    b"\"written\": ",
    b"01010101-0101-4101-8101-010101010101",
    b"\"AAAA\"",
    b"\"=\"",
    b"\"\\u0000\"",
    b"null",
    b"true",
    b"-1",
    b"18446744073709551616",
    b"2",
    b"0",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
];

const KEYS: &[&str] = &[
    "format",
    "coordinators",
    "id",
    "token",
    "registered",
    "project_root",
    "agent_command",
    "agent_args",
    "skip_permissions",
    "notification_delay_ms",
    "config_dir",
    "tasks",
    "mcp_json",
    "path",
    "original",
    "written",
    "previous",
    "entry",
    "kind",
];

fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok(state) = decode(bytes) else {
        return Ok(());
    };
    let mut ids: Vec<_> = state.coordinators.iter().map(|c| c.id).collect();
    ids.sort_unstable();
    ids.dedup();
    prop_assert_eq!(
        ids.len(),
        state.coordinators.len(),
        "a coordinator listed twice"
    );
    let written = encode(&state);
    let again = decode(&written);
    prop_assert!(
        again.is_ok(),
        "what was read is written unreadable: {:?}",
        again.err()
    );
    let again = again.map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(encode(&again), written, "a second round changes a byte");
    Ok(())
}

fn seeds() -> Vec<Vec<u8>> {
    corpus("state")
        .into_iter()
        .map(|(_, bytes)| bytes)
        .collect()
}

#[test]
fn every_file_of_the_corpus_holds_the_properties() {
    let mut read = 0;
    for (name, bytes) in corpus("state") {
        check(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        read += usize::from(decode(&bytes).is_ok());
    }
    assert!(read >= 2, "the corpus holds readable state files");
}

#[test]
fn a_newer_format_is_refused_whatever_follows_it() {
    for bytes in [
        &b"{\"format\": 4, \"coordinators\": 7}"[..],
        b"{\"format\": 4294967295}",
    ] {
        assert!(matches!(
            decode(bytes),
            Err(StateError::FutureFormat { .. })
        ));
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn arbitrary_and_mutated_files_hold_the_properties(
        bytes in bytes_or_mutated(seeds(), DICTIONARY),
    ) {
        check(&bytes)?;
    }

    #[test]
    fn arbitrary_json_files_hold_the_properties(value in json_value(KEYS)) {
        check(value.to_string().as_bytes())?;
    }
}
