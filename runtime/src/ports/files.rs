//! Files the engine writes and removes: MCP configs, preambles, `.mcp.json`, persisted state.

use std::io;
use std::path::{Path, PathBuf};

use super::BoxFuture;

/// Permission bits for a new file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileMode {
    /// The process's default (umask applies).
    Default,
    /// Readable and writable by the owner only (0600): files holding secrets.
    OwnerOnly,
}

/// A file operation that failed.
#[derive(Debug, thiserror::Error)]
#[error("{operation} {path}: {source}")]
pub struct FilesError {
    /// What was attempted (`read`, `write`, `remove`, …).
    pub operation: &'static str,
    /// On which path.
    pub path: PathBuf,
    /// Why it failed.
    #[source]
    pub source: io::Error,
}

impl FilesError {
    /// An error for `operation` on `path`.
    #[must_use]
    pub fn new(operation: &'static str, path: &Path, source: io::Error) -> Self {
        FilesError {
            operation,
            path: path.to_owned(),
            source,
        }
    }
}

/// The file system, as far as the engine uses it.
pub trait Files: Send + Sync {
    /// The whole file, or `None` if there is no file at `path`.
    fn read<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, Result<Option<Vec<u8>>, FilesError>>;

    /// Replaces the file at `path` with `bytes` atomically: a reader sees the old content or the
    /// new, never a mix; on failure the old content is intact. Creates missing parent
    /// directories.
    fn write_atomic<'a>(
        &'a self,
        path: &'a Path,
        bytes: &'a [u8],
        mode: FileMode,
    ) -> BoxFuture<'a, Result<(), FilesError>>;

    /// Whether a file is at `path`.
    fn exists<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, Result<bool, FilesError>>;

    /// Removes the file at `path`; `Ok(false)` if there was none.
    fn remove<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, Result<bool, FilesError>>;

    /// The files directly in `dir` (not its subdirectories), sorted; none if `dir` is absent.
    fn list<'a>(&'a self, dir: &'a Path) -> BoxFuture<'a, Result<Vec<PathBuf>, FilesError>>;
}
