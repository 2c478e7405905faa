//! Target `mcp_json`: a coordinator's `.mcp.json` merge and undo (`agents::mcp_json`) over
//! arbitrary existing bytes, mutated real files and arbitrary JSON.
//!
//! Properties: a file is refused exactly when it is no MCP config (not a JSON object, or its
//! `mcpServers` not an object); a merge keeps every other key and server and puts Baton's entry
//! in; undoing an untouched merge gives the original bytes back (or removes the file Baton
//! made), by either undo; undoing after someone's edit keeps the edit and every other server
//! and puts the previous entry back; a file whose Baton entry is someone else's now is left.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::{bytes_or_mutated, config, corpus, json_value};
use crate::agents::SERVER_NAME;
use crate::agents::mcp_json::{Undo, deregister, deregister_from, register};

const PATH: &str = "/repo/.mcp.json";

/// A key no generated document holds (longer than the generator's keys).
const EDIT_KEY: &str = "a-key-a-person-added-meanwhile";

const DICTIONARY: &[&[u8]] = &[
    b"\"mcpServers\": ",
    b"\"baton\": ",
    b"\"command\": ",
    b"\"args\": ",
    b"\"--coordinator-id\"",
    b"\"mcp\"",
    b"\"env\": ",
    b"{}",
    b"[]",
    b"null",
    b"\"\\ud800\"",
    b"\xef\xbb\xbf",
    b"{",
    b"}",
    b",",
];

const KEYS: &[&str] = &["mcpServers", "baton", "command", "args", "env", "docs"];

/// Baton's entry as the registry writes it.
fn batons_entry() -> Value {
    json!({
        "type": "stdio",
        "command": "baton",
        "args": ["mcp", "--url", "http://127.0.0.1:7777", "--coordinator-id", "c"],
        "env": { "BATON_MCP_CREDENTIALS": "/state/credentials/c" }
    })
}

/// The file's document, when it is an MCP config Baton may merge into.
fn config_document(existing: Option<&[u8]>) -> Option<Map<String, Value>> {
    let Some(bytes) = existing else {
        return Some(Map::new());
    };
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) if map.get("mcpServers").is_none_or(Value::is_object) => Some(map),
        _ => None,
    }
}

fn servers(document: &Map<String, Value>) -> Map<String, Value> {
    document
        .get("mcpServers")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Equal: serde_json reads floats exactly (its `float_roundtrip` feature), so a user's float
/// survives a rewrite digit for digit.
fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    a == b
}

fn check(existing: Option<&[u8]>, entry: &Value) -> Result<(), TestCaseError> {
    let expected = config_document(existing);
    let merged = register(PATH, existing, entry.clone());
    let (written, registration) = match (merged, expected) {
        (Err(_), None) => return Ok(()),
        (Ok(merged), Some(before)) => (merged, before),
        (merged, expected) => {
            return Err(TestCaseError::fail(format!(
                "refused {:?}, an MCP config {:?}",
                merged.is_err(),
                expected.is_some()
            )));
        }
    };
    let (written, registration, before) = (written.0, written.1, registration);
    let after: Map<String, Value> = serde_json::from_slice(&written)
        .map_err(|e| TestCaseError::fail(format!("Baton wrote no JSON object: {e}")))?;
    let (servers_before, servers_after) = (servers(&before), servers(&after));
    prop_assert!(same(servers_after.get(SERVER_NAME), Some(entry)));
    for (name, server) in &servers_before {
        if name != SERVER_NAME {
            prop_assert!(
                same(servers_after.get(name), Some(server)),
                "server {} kept",
                name
            );
        }
    }
    for (key, value) in &before {
        if key != "mcpServers" {
            prop_assert!(same(after.get(key), Some(value)), "key {} kept", key);
        }
    }

    // Untouched: the original bytes come back, by either undo.
    let exact = match existing {
        Some(bytes) => Undo::Write(bytes.to_vec()),
        None => Undo::Remove,
    };
    prop_assert_eq!(&deregister(Some(&written), &registration), &exact);
    prop_assert_eq!(&deregister_from(Some(&written), existing, &written), &exact);
    prop_assert_eq!(deregister(None, &registration), Undo::Leave);

    // Edited meanwhile: the edit and the other servers stay, the previous entry comes back.
    let mut edited = after.clone();
    edited.insert(EDIT_KEY.to_owned(), json!("theirs"));
    let edited_bytes =
        serde_json::to_vec(&edited).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let Undo::Write(undone) = deregister(Some(&edited_bytes), &registration) else {
        return Err(TestCaseError::fail("an edited file is not written back"));
    };
    let undone: Map<String, Value> =
        serde_json::from_slice(&undone).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(undone.get(EDIT_KEY), Some(&json!("theirs")));
    let servers_undone = servers(&undone);
    prop_assert!(same(
        servers_undone.get(SERVER_NAME),
        registration.previous.as_ref()
    ));
    for (name, server) in &servers_before {
        if name != SERVER_NAME {
            prop_assert!(
                same(servers_undone.get(name), Some(server)),
                "server {} kept",
                name
            );
        }
    }

    // Baton's entry changed by someone else: theirs now, left alone.
    let mut retouched = after;
    if let Some(Value::Object(servers)) = retouched.get_mut("mcpServers") {
        servers.insert(
            SERVER_NAME.to_owned(),
            json!({ "command": "someone-elses" }),
        );
    }
    let retouched =
        serde_json::to_vec(&retouched).map_err(|e| TestCaseError::fail(e.to_string()))?;
    if entry != &json!({ "command": "someone-elses" }) {
        prop_assert_eq!(deregister(Some(&retouched), &registration), Undo::Leave);
    }
    Ok(())
}

fn seeds() -> Vec<Vec<u8>> {
    corpus("mcp_json")
        .into_iter()
        .map(|(_, bytes)| bytes)
        .collect()
}

#[test]
fn every_file_of_the_corpus_holds_the_properties() {
    let mut merged = 0;
    for (name, bytes) in corpus("mcp_json") {
        check(Some(&bytes), &batons_entry()).unwrap_or_else(|e| panic!("{name}: {e}"));
        merged += usize::from(register(PATH, Some(&bytes), batons_entry()).is_ok());
    }
    assert!(merged >= 3, "the corpus holds MCP configs");
    check(None, &batons_entry()).unwrap_or_else(|e| panic!("no file: {e}"));
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn arbitrary_and_mutated_files_hold_the_properties(
        existing in bytes_or_mutated(seeds(), DICTIONARY),
    ) {
        check(Some(&existing), &batons_entry())?;
    }

    #[test]
    fn arbitrary_json_files_and_entries_hold_the_properties(
        existing in proptest::option::of(json_value(KEYS)),
        entry in prop_oneof![Just(batons_entry()), json_value(KEYS)],
        pretty in any::<bool>(),
    ) {
        let existing = existing.map(|value| {
            if pretty {
                serde_json::to_vec_pretty(&value)
            } else {
                serde_json::to_vec(&value)
            }
            .unwrap_or_default()
        });
        check(existing.as_deref(), &entry)?;
    }

    #[test]
    fn any_current_file_is_undone_without_a_panic(
        current in proptest::option::of(bytes_or_mutated(seeds(), DICTIONARY)),
        original in proptest::option::of(bytes_or_mutated(seeds(), DICTIONARY)),
        written in bytes_or_mutated(seeds(), DICTIONARY),
    ) {
        let undo = deregister_from(current.as_deref(), original.as_deref(), &written);
        if current.is_none() {
            prop_assert_eq!(undo, Undo::Leave);
        }
    }
}
