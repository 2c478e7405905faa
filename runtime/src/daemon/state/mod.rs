//! The daemon's state file: every coordinator (its credential, its settings, what it did to the
//! project's `.mcp.json`) and its tasks, deregistered ones while tasks of theirs remain, as JSON with a format number.
//!
//! Pure: [`encode`] and [`decode`] turn [`State`] into bytes and back; the daemon writes them
//! atomically through the `Files` port, mode 0600 (the file holds credentials). Its DTOs
//! (`dto`) are the file's shape, apart from the core's types: a field renamed in the core never
//! changes a file on a user's disk.
//!
//! A file this build cannot read is an error that says which kind ([`StateError`]): not JSON or
//! not the expected shape, or written by a newer Baton ([`FORMAT`] is the newest this one
//! knows). The daemon never overwrites such a file.
//!
//! Layout: this module holds the state's types and [`encode`]/[`decode`]; `dto` the file's JSON
//! shapes and their conversion to and from the core's records, with the checks a file read
//! must pass.

mod dto;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::value::RawValue;

use crate::agents::mcp_json::Registration;
use crate::core::auth::Secret;
use crate::core::coordinator::Records;
use crate::core::coordinator::TaskRecord;
use crate::core::ids::{CoordinatorId, TaskId};
use crate::engine::CoordinatorSettings;
use dto::{FileDto, FormatOnly, coordinator_dto, coordinator_from, task_dto};

/// The format this build writes, and the newest it reads. Format 2 added what a restart must not
/// lose besides the tasks (their untyped assignments and queued prompts, whether their agents
/// ran, the replay cache, the operations under way); a format-1 file reads as having none.
/// Format 3 added each task's policy and required checks; a file of an older format reads as
/// tasks under review without checks.
pub const FORMAT: u32 = 3;

/// Everything the daemon keeps across a restart.
#[derive(Clone, Debug, Default)]
pub struct State {
    /// The coordinators, in registration order.
    pub coordinators: Vec<CoordinatorState>,
}

/// One coordinator as persisted.
#[derive(Clone, Debug)]
pub struct CoordinatorState {
    /// Its id.
    pub id: CoordinatorId,
    /// Its bearer token (the same after a restart: its MCP process keeps working).
    pub token: Secret,
    /// Whether it is registered; a deregistered one is kept while tasks of its remain (they
    /// are restored as orphans).
    pub registered: bool,
    /// What it was registered with (the MCP launch is the daemon's, not persisted).
    pub settings: CoordinatorSettings,
    /// Baton's entry in the project's `.mcp.json`, to undo it.
    pub mcp_json: Option<McpJsonState>,
    /// Its tasks, replay cache and operations under way.
    pub records: Records,
}

/// What Baton did to a project's `.mcp.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McpJsonState {
    /// The file.
    pub path: PathBuf,
    /// How to undo it.
    pub registration: Registration,
}

impl McpJsonState {
    /// The project whose file it is (its directory: the file is confined there).
    #[must_use]
    pub fn project(&self) -> PathBuf {
        self.path.parent().map(PathBuf::from).unwrap_or_default()
    }
}

/// A state file this build cannot use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Not JSON, or not the state file's shape.
    #[error("the state file is corrupt: {0}")]
    Corrupt(String),
    /// Written by a newer Baton.
    #[error("the state file has format {found}, newer than this Baton's {FORMAT}")]
    FutureFormat {
        /// Its format.
        found: u32,
    },
}

/// The file's bytes for `state` (pretty JSON: a person may need to read it).
#[must_use]
pub fn encode(state: &State) -> Vec<u8> {
    Encoder::default().encode(state)
}

/// Where a task object starts in the file: inside `coordinators[]`, a coordinator and its
/// `tasks[]`, four levels of the pretty printer's two spaces.
const TASK_INDENT: &str = "        ";

/// Encodes the state file again and again: a task whose record is the same as at the last
/// encoding is not encoded again (its text is kept), so a save costs what changed, not every
/// task's spec, launch arguments and files (most of a save's cost otherwise). The bytes are the
/// same as [`encode`]'s.
#[derive(Debug, Default)]
pub struct Encoder {
    tasks: HashMap<TaskId, (TaskRecord, Box<RawValue>)>,
}

impl Encoder {
    /// The file's bytes for `state`.
    #[must_use]
    pub fn encode(&mut self, state: &State) -> Vec<u8> {
        let mut known = std::mem::take(&mut self.tasks);
        for record in state.coordinators.iter().flat_map(|c| &c.records.tasks) {
            let id = record.spec.id;
            let entry = match known.remove(&id) {
                Some((kept, text)) if kept == *record => (kept, text),
                _ => (record.clone(), task_text(record)),
            };
            self.tasks.insert(id, entry);
        }
        let coordinators = state
            .coordinators
            .iter()
            .map(|coordinator| {
                let tasks: Vec<&RawValue> = coordinator
                    .records
                    .tasks
                    .iter()
                    .filter_map(|record| self.tasks.get(&record.spec.id))
                    .map(|(_, text)| &**text)
                    .collect();
                coordinator_dto(coordinator, tasks)
            })
            .collect();
        let file = FileDto {
            format: FORMAT,
            coordinators,
        };
        let mut bytes = serde_json::to_vec_pretty(&file).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

/// One task's object as the pretty printer writes it at its place in the file.
fn task_text(record: &TaskRecord) -> Box<RawValue> {
    let alone = serde_json::to_string_pretty(&task_dto(record)).unwrap_or_default();
    // A newline is only ever the printer's (one inside a string is escaped).
    let placed = alone.replace('\n', &format!("\n{TASK_INDENT}"));
    RawValue::from_string(placed).unwrap_or_default()
}

/// The state in `bytes`.
///
/// # Errors
/// See [`StateError`].
pub fn decode(bytes: &[u8]) -> Result<State, StateError> {
    let corrupt = |e: &dyn std::fmt::Display| StateError::Corrupt(e.to_string());
    let format: FormatOnly = serde_json::from_slice(bytes).map_err(|e| corrupt(&e))?;
    if format.format > FORMAT {
        return Err(StateError::FutureFormat {
            found: format.format,
        });
    }
    if format.format == 0 {
        return Err(corrupt(&"format 0 does not exist"));
    }
    let file: FileDto = serde_json::from_slice(bytes).map_err(|e| corrupt(&e))?;
    let coordinators = file
        .coordinators
        .into_iter()
        .map(coordinator_from)
        .collect::<Result<Vec<_>, String>>()
        .map_err(|e| corrupt(&e))?;
    let mut ids: Vec<_> = coordinators.iter().map(|c| c.id).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(corrupt(&"a coordinator is listed twice"));
    }
    Ok(State { coordinators })
}
