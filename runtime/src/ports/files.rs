//! Files the engine writes and removes: MCP configs, preambles, `.mcp.json`, persisted state.
//!
//! Confinement: every file is named by a root directory and a path inside it (a worktree and its
//! `AGENTS.md`, a project and its `.mcp.json`, the state directory and a file of it). An
//! implementation resolves the path inside the root with no symbolic link on the way (any
//! component, the last included) and never changes anything outside the root: a link is refused
//! ([`FilesError::is_link`]), never followed. The root itself is taken as it is (the user chose
//! it).

use std::ffi::OsStr;
use std::io;
use std::path::{Component, Path, PathBuf};

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
    /// It was refused for confinement: a symbolic link on the way, or a path leaving its root.
    refused: bool,
}

impl FilesError {
    /// An error for `operation` on `path`.
    #[must_use]
    pub fn new(operation: &'static str, path: &Path, source: io::Error) -> Self {
        FilesError {
            operation,
            path: path.to_owned(),
            source,
            refused: false,
        }
    }

    /// `operation` on `path` refused for confinement, for `why`.
    fn refused(operation: &'static str, path: &Path, why: String) -> Self {
        FilesError {
            refused: true,
            ..FilesError::new(
                operation,
                path,
                io::Error::new(io::ErrorKind::InvalidInput, why),
            )
        }
    }

    /// `operation` on `path` refused: `link`, a component of it inside its root, is a symbolic
    /// link.
    #[must_use]
    pub fn link(operation: &'static str, path: &Path, link: &Path) -> Self {
        FilesError::refused(
            operation,
            path,
            format!(
                "{} is a symbolic link: Baton reads and writes no file through a link",
                link.display()
            ),
        )
    }

    /// Whether it was refused for confinement (a link, a path leaving its root), not an I/O
    /// failure: the caller's request, not the disk, is at fault.
    #[must_use]
    pub const fn is_confinement(&self) -> bool {
        self.refused
    }
}

/// The components of `path` below `root`: `path` must lie inside `root` and name a file in it
/// (no `..`, no `.`, not the root itself).
///
/// # Errors
/// `path` is outside `root`, or climbs (`..`): refused as confinement.
pub fn inside<'a>(
    operation: &'static str,
    root: &Path,
    path: &'a Path,
) -> Result<Vec<&'a OsStr>, FilesError> {
    let outside = || {
        FilesError::refused(
            operation,
            path,
            format!("not a file inside {}", root.display()),
        )
    };
    let rel = path.strip_prefix(root).map_err(|_| outside())?;
    let parts: Vec<&OsStr> = rel
        .components()
        .map(|c| match c {
            Component::Normal(part) => Ok(part),
            _ => Err(outside()),
        })
        .collect::<Result<_, _>>()?;
    if parts.is_empty() {
        return Err(outside());
    }
    Ok(parts)
}

/// The file system, as far as the engine uses it. Every file is `path` inside `root`, confined
/// there (see the module documentation).
pub trait Files: Send + Sync {
    /// The whole file, or `None` if there is no file at `path`.
    fn read<'a>(
        &'a self,
        root: &'a Path,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, FilesError>>;

    /// Replaces the file at `path` with `bytes` atomically: a reader sees the old content or the
    /// new, never a mix; on failure the old content is intact. Creates missing parent
    /// directories (inside `root`).
    fn write_atomic<'a>(
        &'a self,
        root: &'a Path,
        path: &'a Path,
        bytes: &'a [u8],
        mode: FileMode,
    ) -> BoxFuture<'a, Result<(), FilesError>>;

    /// Adds `bytes` at the end of the file at `path`, making it (and missing parent directories
    /// inside `root`) if there is none, in one write; a file made is given `mode`, and
    /// [`FileMode::OwnerOnly`] makes an existing file the owner's only too. The file's size
    /// after. Not atomic: a crash may leave part of `bytes` at the end.
    fn append<'a>(
        &'a self,
        root: &'a Path,
        path: &'a Path,
        bytes: &'a [u8],
        mode: FileMode,
    ) -> BoxFuture<'a, Result<u64, FilesError>>;

    /// Moves the file at `from` to `to` (both inside `root`), replacing a file there;
    /// `Ok(false)` if there was no file at `from`.
    fn rename<'a>(
        &'a self,
        root: &'a Path,
        from: &'a Path,
        to: &'a Path,
    ) -> BoxFuture<'a, Result<bool, FilesError>>;

    /// Removes the file at `path`; `Ok(false)` if there was none.
    fn remove<'a>(
        &'a self,
        root: &'a Path,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<bool, FilesError>>;

    /// The regular files directly in `dir` (not its subdirectories, not links), sorted; none if
    /// `dir` is absent.
    fn list<'a>(&'a self, dir: &'a Path) -> BoxFuture<'a, Result<Vec<PathBuf>, FilesError>>;
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::inside;

    #[test]
    fn a_path_is_inside_its_root_or_refused() {
        let root = Path::new("/repo/wt");
        let parts = inside("write", root, Path::new("/repo/wt/.gemini/settings.json")).unwrap();
        assert_eq!(parts, [".gemini", "settings.json"]);
        for path in [
            "/repo/wt",
            "/repo/other/x",
            "/repo/wt/../x",
            "/repo/wt/a/../../x",
            "x",
        ] {
            let error = inside("write", root, Path::new(path)).unwrap_err();
            assert!(error.is_confinement(), "{path}: {error}");
        }
    }
}
