//! FakeFiles: a file system in memory, with modes, symbolic links that nothing goes through, and
//! write and removal faults that leave the files as they were.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::lock;
use crate::ports::{BoxFuture, FileMode, Files, FilesError};

/// Where a failing write of [`FakeFiles`] fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WriteFailure {
    /// Writing the temporary file: no space left on device.
    #[default]
    DiskFull,
    /// Renaming it over the old file: operation not permitted.
    Rename,
}

/// A file held by [`FakeFiles`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeFile {
    /// Content.
    pub bytes: Vec<u8>,
    /// Mode it was written with.
    pub mode: FileMode,
}

#[derive(Debug, Default)]
struct FilesState {
    files: BTreeMap<PathBuf, FakeFile>,
    /// Writes that go through before the failing ones begin, counted down.
    passing_writes: usize,
    /// Writes that will fail, counted down, and how they fail.
    failing_writes: usize,
    write_failure: WriteFailure,
    /// Removals that will fail with "permission denied", counted down.
    failing_removes: usize,
    /// Where write and removal faults strike: only paths under this one (every path if none).
    faults_under: Option<PathBuf>,
    /// Symbolic links (their paths): a file or directory no operation may go through.
    links: std::collections::BTreeSet<PathBuf>,
}

/// A file system in memory.
#[derive(Debug, Default)]
pub struct FakeFiles {
    state: Mutex<FilesState>,
}

impl FakeFiles {
    /// The file at `path`, if any.
    #[must_use]
    pub fn get(&self, path: &Path) -> Option<FakeFile> {
        lock(&self.state).files.get(path).cloned()
    }

    /// Puts a file in place, as a user would have.
    pub fn put(&self, path: &Path, bytes: &[u8]) {
        let file = FakeFile {
            bytes: bytes.to_vec(),
            mode: FileMode::Default,
        };
        lock(&self.state).files.insert(path.to_owned(), file);
    }

    /// Every path held, in order.
    #[must_use]
    pub fn paths(&self) -> Vec<PathBuf> {
        lock(&self.state).files.keys().cloned().collect()
    }

    /// Makes the next `count` writes fail as on a full disk (leaving the files as they were).
    pub fn fail_writes(&self, count: usize) {
        self.fail_writes_with(count, WriteFailure::DiskFull);
    }

    /// Makes the next `count` writes fail at `failure` (leaving the files as they were: an
    /// atomic write that fails at any step leaves the old file).
    pub fn fail_writes_with(&self, count: usize, failure: WriteFailure) {
        let mut state = lock(&self.state);
        state.failing_writes = count;
        state.write_failure = failure;
    }

    /// Lets the next `pass` writes through, then fails `count` as on a full disk: a failure
    /// half-way through a sequence of writes.
    pub fn fail_writes_after(&self, pass: usize, count: usize) {
        let mut state = lock(&self.state);
        state.passing_writes = pass;
        state.failing_writes = count;
        state.write_failure = WriteFailure::DiskFull;
    }

    /// Confines the write and removal faults set from now on to paths under `dir` (`None`:
    /// every path); writes and removals elsewhere neither fail nor count.
    pub fn faults_only_under(&self, dir: Option<PathBuf>) {
        lock(&self.state).faults_under = dir;
    }

    /// Makes the next `count` removals fail as without permission (leaving the files in place).
    pub fn fail_removes(&self, count: usize) {
        lock(&self.state).failing_removes = count;
    }

    /// Puts a symbolic link at `path` (to anywhere: no operation goes through it).
    pub fn link(&self, path: &Path) {
        lock(&self.state).links.insert(path.to_owned());
    }

    /// Refuses `path` inside `root` as the `Files` port must: outside `root`, or a link on the
    /// way (one of [`Self::link`], or the last component `links` of a caller names, relative
    /// to `root`).
    ///
    /// # Errors
    /// The refusal.
    pub fn confine(
        &self,
        operation: &'static str,
        root: &Path,
        path: &Path,
        links: &[PathBuf],
    ) -> Result<(), FilesError> {
        let parts = crate::ports::inside(operation, root, path)?;
        let held = &lock(&self.state).links;
        let mut walked = PathBuf::new();
        for part in parts {
            walked.push(part);
            if held.contains(&root.join(&walked)) || links.contains(&walked) {
                return Err(FilesError::link(operation, path, &walked));
            }
        }
        Ok(())
    }

    /// The failure of the next write to `path`, if writes are set to fail (counting it down):
    /// for a file system that keeps some files elsewhere but shares these faults.
    #[must_use]
    pub fn take_write_fault(&self, path: &Path) -> Option<FilesError> {
        let mut state = lock(&self.state);
        if state.failing_writes == 0
            || state
                .faults_under
                .as_ref()
                .is_some_and(|dir| !path.starts_with(dir))
        {
            return None;
        }
        if state.passing_writes > 0 {
            state.passing_writes -= 1;
            return None;
        }
        state.failing_writes -= 1;
        let (operation, reason) = match state.write_failure {
            WriteFailure::DiskFull => ("write", "no space left on device"),
            WriteFailure::Rename => ("rename", "operation not permitted"),
        };
        Some(FilesError::new(operation, path, io::Error::other(reason)))
    }

    /// The failure of the next removal of `path`, if removals are set to fail.
    #[must_use]
    pub fn take_remove_fault(&self, path: &Path) -> Option<FilesError> {
        let mut state = lock(&self.state);
        if state.failing_removes == 0
            || state
                .faults_under
                .as_ref()
                .is_some_and(|dir| !path.starts_with(dir))
        {
            return None;
        }
        state.failing_removes -= 1;
        Some(FilesError::new(
            "remove",
            path,
            io::Error::other("permission denied"),
        ))
    }
}

impl Files for FakeFiles {
    fn read<'a>(
        &'a self,
        root: &'a Path,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, FilesError>> {
        let result = self.confine("read", root, path, &[]).map(|()| {
            lock(&self.state)
                .files
                .get(path)
                .map(|file| file.bytes.clone())
        });
        Box::pin(async move { result })
    }

    fn write_atomic<'a>(
        &'a self,
        root: &'a Path,
        path: &'a Path,
        bytes: &'a [u8],
        mode: FileMode,
    ) -> BoxFuture<'a, Result<(), FilesError>> {
        let result = self.confine("write", root, path, &[]).and_then(|()| {
            match self.take_write_fault(path) {
                Some(fault) => Err(fault),
                None => {
                    lock(&self.state).files.insert(
                        path.to_owned(),
                        FakeFile {
                            bytes: bytes.to_vec(),
                            mode,
                        },
                    );
                    Ok(())
                }
            }
        });
        Box::pin(async move { result })
    }

    fn append<'a>(
        &'a self,
        root: &'a Path,
        path: &'a Path,
        bytes: &'a [u8],
        mode: FileMode,
    ) -> BoxFuture<'a, Result<u64, FilesError>> {
        let result = self.confine("append", root, path, &[]).and_then(|()| {
            match self.take_write_fault(path) {
                Some(fault) => Err(fault),
                None => {
                    let mut state = lock(&self.state);
                    let file = state.files.entry(path.to_owned()).or_insert(FakeFile {
                        bytes: Vec::new(),
                        mode,
                    });
                    if mode == FileMode::OwnerOnly {
                        file.mode = mode;
                    }
                    file.bytes.extend_from_slice(bytes);
                    Ok(file.bytes.len() as u64)
                }
            }
        });
        Box::pin(async move { result })
    }

    fn rename<'a>(
        &'a self,
        root: &'a Path,
        from: &'a Path,
        to: &'a Path,
    ) -> BoxFuture<'a, Result<bool, FilesError>> {
        let result = self
            .confine("rename", root, from, &[])
            .and_then(|()| self.confine("rename", root, to, &[]))
            .map(|()| {
                let mut state = lock(&self.state);
                let Some(file) = state.files.remove(from) else {
                    return false;
                };
                state.files.insert(to.to_owned(), file);
                true
            });
        Box::pin(async move { result })
    }

    fn remove<'a>(
        &'a self,
        root: &'a Path,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<bool, FilesError>> {
        let result = self.confine("remove", root, path, &[]).and_then(|()| {
            match self.take_remove_fault(path) {
                Some(fault) => Err(fault),
                None => Ok(lock(&self.state).files.remove(path).is_some()),
            }
        });
        Box::pin(async move { result })
    }

    fn list<'a>(&'a self, dir: &'a Path) -> BoxFuture<'a, Result<Vec<PathBuf>, FilesError>> {
        let state = lock(&self.state);
        let files = state
            .files
            .keys()
            .filter(|path| path.parent() == Some(dir) && !state.links.contains(*path))
            .cloned()
            .collect();
        Box::pin(async move { Ok(files) })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::FakeFiles;
    use crate::ports::{FileMode, Files};

    #[tokio::test]
    async fn fake_files_keep_modes_and_fail_like_a_full_disk() {
        let files = FakeFiles::default();
        let (root, path) = (Path::new("/tmp"), Path::new("/tmp/config.json"));
        files
            .write_atomic(root, path, b"{}", FileMode::OwnerOnly)
            .await
            .unwrap();
        assert_eq!(files.get(path).unwrap().mode, FileMode::OwnerOnly);
        files.fail_writes(1);
        let error = files
            .write_atomic(root, path, b"new", FileMode::OwnerOnly)
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("no space left on device"),
            "{error}"
        );
        assert_eq!(
            files.read(root, path).await.unwrap(),
            Some(b"{}".to_vec()),
            "left as it was"
        );
        assert!(files.remove(root, path).await.unwrap());
        assert!(!files.remove(root, path).await.unwrap());
        assert_eq!(files.read(root, path).await.unwrap(), None);
    }

    #[tokio::test]
    async fn fake_files_append_and_rename_as_the_disk_does() {
        let files = FakeFiles::default();
        let root = Path::new("/state");
        let (log, old) = (
            Path::new("/state/audit.log"),
            Path::new("/state/audit.log.1"),
        );
        assert_eq!(
            files
                .append(root, log, b"one\n", FileMode::OwnerOnly)
                .await
                .unwrap(),
            4
        );
        assert_eq!(
            files
                .append(root, log, b"two\n", FileMode::Default)
                .await
                .unwrap(),
            8
        );
        assert_eq!(files.get(log).unwrap().mode, FileMode::OwnerOnly);
        assert!(files.rename(root, log, old).await.unwrap());
        assert_eq!(files.get(old).unwrap().bytes, b"one\ntwo\n");
        assert!(files.get(log).is_none());
        assert!(!files.rename(root, log, old).await.unwrap());
        assert!(
            files
                .rename(root, old, Path::new("/elsewhere/x"))
                .await
                .is_err()
        );
        files.fail_writes(1);
        assert!(
            files
                .append(root, log, b"x", FileMode::OwnerOnly)
                .await
                .is_err()
        );
        assert!(files.get(log).is_none(), "a failed append changes nothing");
    }

    #[tokio::test]
    async fn fake_files_refuse_links_and_paths_outside_their_root() {
        let files = FakeFiles::default();
        let root = Path::new("/repo/wt");
        files.link(Path::new("/repo/wt/.gemini"));
        files.link(Path::new("/repo/wt/AGENTS.md"));
        for path in [
            "/repo/wt/.gemini/settings.json",
            "/repo/wt/AGENTS.md",
            "/home/x",
        ] {
            let error = files
                .write_atomic(root, Path::new(path), b"x", FileMode::Default)
                .await
                .unwrap_err();
            assert!(error.is_confinement(), "{path}: {error}");
            assert!(
                files
                    .read(root, Path::new(path))
                    .await
                    .unwrap_err()
                    .is_confinement()
            );
            assert!(
                files
                    .remove(root, Path::new(path))
                    .await
                    .unwrap_err()
                    .is_confinement()
            );
        }
        assert!(files.paths().is_empty());
    }
}
