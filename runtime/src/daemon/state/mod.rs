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
//! Layout: this module holds the state's types, [`encode`]/[`decode`] and the [`Encoder`] that
//! keeps unchanged text across saves; `dto` the file's JSON shapes and their conversion to and
//! from the core's records, with the checks a file read must pass, and the same shapes written
//! a field at a time; `pretty` serde_json's pretty printer a piece at a time.

mod dto;
mod pretty;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::PathBuf;

use crate::agents::mcp_json::Registration;
use crate::core::auth::Secret;
use crate::core::coordinator::Records;
use crate::core::coordinator::TaskRecord;
use crate::core::ids::{CoordinatorId, TaskId};
use crate::engine::CoordinatorSettings;
use dto::{FileDto, FormatOnly, SpecFields, coordinator_from, write_coordinator, write_task};
use pretty::Object;

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

/// One coordinator as a save writes it, borrowed: a save copies nothing to write it.
#[derive(Clone, Copy, Debug)]
pub struct CoordinatorRef<'a> {
    /// Its id.
    pub id: CoordinatorId,
    /// Its bearer token.
    pub token: &'a Secret,
    /// Whether it is registered.
    pub registered: bool,
    /// What it was registered with.
    pub settings: &'a CoordinatorSettings,
    /// Baton's entry in the project's `.mcp.json`, to undo it.
    pub mcp_json: Option<&'a McpJsonState>,
    /// Its tasks, replay cache and operations under way.
    pub records: &'a Records,
}

impl CoordinatorState {
    /// The coordinator, borrowed.
    #[must_use]
    pub fn view(&self) -> CoordinatorRef<'_> {
        CoordinatorRef {
            id: self.id,
            token: &self.token,
            registered: self.registered,
            settings: &self.settings,
            mcp_json: self.mcp_json.as_ref(),
            records: &self.records,
        }
    }
}

/// The file's bytes for `state` (pretty JSON: a person may need to read it).
#[must_use]
pub fn encode(state: &State) -> Vec<u8> {
    let coordinators: Vec<_> = state
        .coordinators
        .iter()
        .map(CoordinatorState::view)
        .collect();
    Encoder::default().encode(&coordinators)
}

/// Where a coordinator object stands in the file: in the file's `coordinators` array.
const COORDINATOR_LEVEL: usize = 2;
/// Where a task object stands: in its coordinator's `tasks` array.
const TASK_LEVEL: usize = COORDINATOR_LEVEL + 2;

/// Encodes the state file again and again: a task whose record is the same as at the last
/// encoding is not encoded again (its text is kept), and one whose spec is the same keeps its
/// spec's fields (its name, paths, launch arguments and files, most of a task's text), so a save
/// costs what changed, not every task's spec. The file is written a field at a time, each value
/// by serde (`pretty`), the bytes the same as `serde_json::to_vec_pretty` writes for the file's
/// DTOs.
#[derive(Default)]
pub struct Encoder {
    tasks: HashMap<TaskId, KeptTask>,
    heads: HashMap<CoordinatorId, KeptHead>,
    /// The number of the save under way: what a save did not see is forgotten.
    save: u64,
    /// The size of the last file written (the next is about as big).
    last_bytes: usize,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Encoder({} tasks kept)", self.tasks.len())
    }
}

/// A task as last encoded.
struct KeptTask {
    record: TaskRecord,
    spec: SpecFields,
    text: Vec<u8>,
    /// The last save that wrote it.
    save: u64,
}

impl KeptTask {
    fn new(record: &TaskRecord, save: u64) -> Self {
        let spec = SpecFields::new(&record.spec, TASK_LEVEL);
        let mut text = Vec::new();
        write_task(&mut text, TASK_LEVEL, record, &spec);
        KeptTask {
            record: record.clone(),
            spec,
            text,
            save,
        }
    }

    /// Brings the kept task to `record`, whose spec is the one kept.
    fn update(&mut self, record: &TaskRecord) {
        let TaskRecord {
            spec: _,
            signal,
            assignment_delivered,
            control,
            exit_code,
            assignment,
            queued,
            alive,
            lost_untold,
        } = record;
        let kept = &mut self.record;
        kept.signal = *signal;
        kept.assignment_delivered = *assignment_delivered;
        kept.control = *control;
        kept.exit_code = *exit_code;
        kept.assignment.clone_from(assignment);
        kept.queued.clone_from(queued);
        kept.alive = *alive;
        kept.lost_untold = *lost_untold;
        self.text.clear();
        write_task(&mut self.text, TASK_LEVEL, record, &self.spec);
    }
}

/// A coordinator's fields but its records' ([`dto::coordinator_head`]), as last encoded.
struct KeptHead {
    token: Secret,
    registered: bool,
    settings: CoordinatorSettings,
    mcp_json: Option<McpJsonState>,
    text: Vec<u8>,
    /// The last save that wrote it.
    save: u64,
}

impl KeptHead {
    fn new(c: CoordinatorRef<'_>, save: u64) -> Self {
        KeptHead {
            token: c.token.clone(),
            registered: c.registered,
            settings: c.settings.clone(),
            mcp_json: c.mcp_json.cloned(),
            text: dto::coordinator_head(c, COORDINATOR_LEVEL),
            save,
        }
    }

    /// Whether `c` writes the same head.
    fn is_for(&self, c: CoordinatorRef<'_>) -> bool {
        let CoordinatorSettings {
            project_root,
            spawn,
            skip_permissions,
            notification_delay_ms,
            config_dir,
            // Not in the file.
            mcp: _,
        } = c.settings;
        self.token == *c.token
            && self.registered == c.registered
            && self.settings.project_root == *project_root
            && self.settings.spawn == *spawn
            && self.settings.skip_permissions == *skip_permissions
            && self.settings.notification_delay_ms == *notification_delay_ms
            && self.settings.config_dir == *config_dir
            && self.mcp_json.as_ref() == c.mcp_json
    }
}

impl Encoder {
    /// The file's bytes for `coordinators`.
    #[must_use]
    pub fn encode(&mut self, coordinators: &[CoordinatorRef<'_>]) -> Vec<u8> {
        self.save += 1;
        let save = self.save;
        for c in coordinators {
            match self.heads.get_mut(&c.id) {
                Some(kept) if kept.is_for(*c) => kept.save = save,
                _ => {
                    self.heads.insert(c.id, KeptHead::new(*c, save));
                }
            }
            for record in &c.records.tasks {
                match self.tasks.get_mut(&record.spec.id) {
                    Some(kept) if kept.record == *record => kept.save = save,
                    Some(kept) if kept.record.spec == record.spec => {
                        kept.update(record);
                        kept.save = save;
                    }
                    _ => {
                        self.tasks
                            .insert(record.spec.id, KeptTask::new(record, save));
                    }
                }
            }
        }
        self.heads.retain(|_, kept| kept.save == save);
        self.tasks.retain(|_, kept| kept.save == save);
        let mut bytes = Vec::with_capacity(self.last_bytes + self.last_bytes / 8);
        let mut file = Object::open(&mut bytes, 0);
        file.field("format", &FORMAT);
        file.array("coordinators", |array| {
            for c in coordinators {
                let head = self.heads.get(&c.id).map_or(&[][..], |kept| &kept.text);
                let tasks = c
                    .records
                    .tasks
                    .iter()
                    .filter_map(|record| self.tasks.get(&record.spec.id))
                    .map(|kept| kept.text.as_slice());
                let level = array.item_level();
                write_coordinator(array.place(), level, head, c.records, tasks);
            }
        });
        file.close();
        bytes.push(b'\n');
        self.last_bytes = bytes.len();
        bytes
    }
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
