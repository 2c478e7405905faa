//! A coordinator's `.mcp.json`: Baton's server entry merged into the project's file (every other
//! server and key kept), and taken out again at deregistration, the user's file restored exactly
//! (MCP spec §3.2, §3.3).
//!
//! Pure: the caller reads and writes the file (atomically; the entry names the coordinator's
//! 0600 credentials file, never the token) and keeps the [`Registration`] to undo it. When the file is still byte for byte what Baton
//! wrote, the undo writes back the original bytes (or removes the file Baton created). When
//! someone edited it meanwhile, only Baton's entry is undone, at the JSON level: the previous
//! entry put back (or the key removed), the edits kept; and if the edit was to Baton's own entry,
//! that entry is left as the editor made it.

use serde_json::{Map, Value};

use super::SERVER_NAME;

/// What registering did, to undo it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The file before, if there was one.
    pub original: Option<Vec<u8>>,
    /// The file Baton wrote.
    pub written: Vec<u8>,
    /// The entry that was under `mcpServers.baton` before, if any (not Baton's own stale one).
    pub previous: Option<Value>,
    /// The entry Baton put there.
    pub entry: Value,
}

/// A `.mcp.json` Baton will not touch.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum McpJsonError {
    /// Not JSON, or not an object, or `mcpServers` not an object: the user must fix or remove
    /// it; it is left as it is.
    #[error("{0} contains invalid JSON for an MCP config ({1}); fix or remove it")]
    Invalid(String, String),
}

/// Merges `entry` into the file now at `path` (`existing`; `None` when there is none).
///
/// # Errors
/// The file is not an MCP config ([`McpJsonError::Invalid`]); nothing is to be written.
pub fn register(
    path: &str,
    existing: Option<&[u8]>,
    entry: Value,
) -> Result<(Vec<u8>, Registration), McpJsonError> {
    let invalid = |why: &str| McpJsonError::Invalid(path.to_owned(), why.to_owned());
    let mut document = match existing {
        None => Map::new(),
        Some(bytes) => match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(invalid("not an object")),
            Err(error) => return Err(invalid(&error.to_string())),
        },
    };
    let servers = document
        .entry("mcpServers")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(servers) = servers else {
        return Err(invalid("mcpServers is not an object"));
    };
    let previous = servers
        .insert(SERVER_NAME.to_owned(), entry.clone())
        .filter(|previous| !is_batons_own(previous));
    let written = pretty(&document);
    let registration = Registration {
        original: existing.map(<[u8]>::to_vec),
        written: written.clone(),
        previous,
        entry,
    };
    Ok((written, registration))
}

/// What to do with the file at deregistration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Undo {
    /// Replace it with these bytes.
    Write(Vec<u8>),
    /// Remove it.
    Remove,
    /// Leave it: it is gone, unreadable, or Baton's entry in it is someone else's now.
    Leave,
}

/// The undo of `registration`, given the file now (`None`: no file).
#[must_use]
pub fn deregister(current: Option<&[u8]>, registration: &Registration) -> Undo {
    let Some(current) = current else {
        return Undo::Leave;
    };
    if current == registration.written.as_slice() {
        return match &registration.original {
            Some(original) => Undo::Write(original.clone()),
            None => Undo::Remove,
        };
    }
    let Ok(Value::Object(mut document)) = serde_json::from_slice::<Value>(current) else {
        return Undo::Leave;
    };
    let Some(Value::Object(servers)) = document.get_mut("mcpServers") else {
        return Undo::Leave;
    };
    if servers.get(SERVER_NAME) != Some(&registration.entry) {
        // Changed or removed by someone else: theirs now.
        return Undo::Leave;
    }
    match &registration.previous {
        Some(previous) => {
            servers.insert(SERVER_NAME.to_owned(), previous.clone());
        }
        None => {
            servers.remove(SERVER_NAME);
        }
    }
    if servers.is_empty() {
        document.remove("mcpServers");
    }
    if document.is_empty() && registration.original.is_none() {
        Undo::Remove
    } else {
        Undo::Write(pretty(&document))
    }
}

/// The undo of a registration known only by the file before (`original`) and the file Baton
/// wrote (`written`): what a task's worktree keeps of an agent's MCP settings.
#[must_use]
pub fn deregister_from(current: Option<&[u8]>, original: Option<&[u8]>, written: &[u8]) -> Undo {
    let server = |bytes: &[u8]| {
        serde_json::from_slice::<Value>(bytes)
            .ok()
            .and_then(|v| v.get("mcpServers")?.get(SERVER_NAME).cloned())
    };
    let registration = Registration {
        original: original.map(<[u8]>::to_vec),
        written: written.to_vec(),
        previous: original.and_then(server).filter(|p| !is_batons_own(p)),
        entry: server(written).unwrap_or(Value::Null),
    };
    deregister(current, &registration)
}

/// Whether an entry is one Baton wrote for a coordinator (left by a daemon that died before it
/// could undo it): it is not the user's, and is not put back.
fn is_batons_own(entry: &Value) -> bool {
    entry["args"]
        .as_array()
        .is_some_and(|args| args.iter().any(|a| a == "--coordinator-id"))
        && entry["args"][0] == "mcp"
}

fn pretty(document: &Map<String, Value>) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(document).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{McpJsonError, Undo, deregister, register};

    fn entry(token: &str) -> Value {
        json!({ "type": "stdio", "command": "baton", "args": ["mcp", "--url", "u", "--coordinator-id", "c"], "env": { "BATON_MCP_TOKEN": token } })
    }

    #[test]
    fn the_users_file_comes_back_byte_for_byte() {
        let original =
            b"{ \"mcpServers\": { \"docs\": { \"command\": \"docs-mcp\" } },\n  \"z\": 1 }";
        let (written, registration) = register(".mcp.json", Some(original), entry("t")).unwrap();
        let merged: Value = serde_json::from_slice(&written).unwrap();
        assert_eq!(
            merged["mcpServers"]["docs"]["command"], "docs-mcp",
            "other servers stay"
        );
        assert_eq!(merged["mcpServers"]["baton"]["env"]["BATON_MCP_TOKEN"], "t");
        assert_eq!(merged["z"], 1, "other keys stay");
        assert_eq!(
            deregister(Some(&written), &registration),
            Undo::Write(original.to_vec())
        );
        let (created, registration) = register(".mcp.json", None, entry("t")).unwrap();
        assert_eq!(
            deregister(Some(&created), &registration),
            Undo::Remove,
            "Baton made it"
        );
    }

    #[test]
    fn the_users_own_baton_entry_is_put_back_and_a_stale_one_of_ours_is_not() {
        let theirs = json!({ "command": "their-baton" });
        let original = serde_json::to_vec(&json!({ "mcpServers": { "baton": theirs } })).unwrap();
        let (_, registration) = register(".mcp.json", Some(&original), entry("t")).unwrap();
        assert_eq!(registration.previous, Some(theirs));
        let stale =
            serde_json::to_vec(&json!({ "mcpServers": { "baton": entry("old") } })).unwrap();
        let (_, registration) = register(".mcp.json", Some(&stale), entry("new")).unwrap();
        assert_eq!(
            registration.previous, None,
            "a dead daemon's entry is not the user's"
        );
    }

    #[test]
    fn concurrent_edits_are_kept_and_only_batons_entry_is_undone() {
        let original = serde_json::to_vec(&json!({ "mcpServers": { "docs": {} } })).unwrap();
        let (written, registration) = register(".mcp.json", Some(&original), entry("t")).unwrap();
        let mut edited: Value = serde_json::from_slice(&written).unwrap();
        edited["mcpServers"]["search"] = json!({ "command": "search-mcp" });
        let edited = serde_json::to_vec(&edited).unwrap();
        let Undo::Write(after) = deregister(Some(&edited), &registration) else {
            panic!("a write");
        };
        let after: Value = serde_json::from_slice(&after).unwrap();
        assert_eq!(
            after,
            json!({ "mcpServers": { "docs": {}, "search": { "command": "search-mcp" } } })
        );
        let mut retouched: Value = serde_json::from_slice(&written).unwrap();
        retouched["mcpServers"]["baton"]["env"]["BATON_MCP_TOKEN"] = json!("someone else's");
        let retouched = serde_json::to_vec(&retouched).unwrap();
        assert_eq!(
            deregister(Some(&retouched), &registration),
            Undo::Leave,
            "their entry now"
        );
        assert_eq!(deregister(None, &registration), Undo::Leave);
        assert_eq!(deregister(Some(b"{broken"), &registration), Undo::Leave);
    }

    #[test]
    fn a_file_that_is_no_mcp_config_is_refused_and_left_alone() {
        for bad in [&b"{broken"[..], b"[1, 2]", b"{\"mcpServers\": 3}"] {
            let error = register("/p/.mcp.json", Some(bad), entry("t")).unwrap_err();
            let McpJsonError::Invalid(path, _) = &error;
            assert_eq!(path, "/p/.mcp.json");
            assert!(error.to_string().contains("fix or remove it"), "{error}");
        }
    }
}
