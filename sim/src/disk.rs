//! The simulated disk as the engine's `Files` port sees it: a path inside a checkout (the user's
//! or a task's worktree) is a working file of SimRepo, so what the engine writes there (the
//! sub-task instruction block) is what git diffs, commits and merges; any other path is a file of
//! FakeFiles (configs, the user's own files outside git). Write and removal faults (disk_full,
//! rename_fails, remove_fails) hit both alike.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use baton_runtime::ports::fakes::FakeFiles;
use baton_runtime::ports::{BoxFuture, FileMode, Files, FilesError};

use crate::repo::SimRepo;

/// See the module documentation.
pub struct SimDisk {
    files: Arc<FakeFiles>,
    repo: Arc<SimRepo>,
}

impl SimDisk {
    /// The disk over `files` and `repo`'s checkouts.
    #[must_use]
    pub fn new(files: Arc<FakeFiles>, repo: Arc<SimRepo>) -> Self {
        SimDisk { files, repo }
    }
}

fn not_a_checkout(path: &Path, error: &baton_runtime::ports::RepoError) -> FilesError {
    FilesError::new("write", path, std::io::Error::other(error.to_string()))
}

impl Files for SimDisk {
    fn read<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, Result<Option<Vec<u8>>, FilesError>> {
        match self.repo.checkout_of(path) {
            Some((dir, rel)) => {
                let content = self
                    .repo
                    .files(&dir)
                    .and_then(|tree| tree.get(&rel).map(|c| c.clone().into_bytes()));
                Box::pin(async move { Ok(content) })
            }
            None => self.files.read(path),
        }
    }

    fn write_atomic<'a>(
        &'a self,
        path: &'a Path,
        bytes: &'a [u8],
        mode: FileMode,
    ) -> BoxFuture<'a, Result<(), FilesError>> {
        let Some((dir, rel)) = self.repo.checkout_of(path) else {
            return self.files.write_atomic(path, bytes, mode);
        };
        let result = match self.files.take_write_fault(path) {
            Some(fault) => Err(fault),
            None => self
                .repo
                .edit(&dir, &rel, &String::from_utf8_lossy(bytes))
                .map_err(|e| not_a_checkout(path, &e)),
        };
        Box::pin(async move { result })
    }

    fn exists<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, Result<bool, FilesError>> {
        match self.repo.checkout_of(path) {
            Some((dir, rel)) => {
                let exists = self
                    .repo
                    .files(&dir)
                    .is_some_and(|tree| tree.contains_key(&rel));
                Box::pin(async move { Ok(exists) })
            }
            None => self.files.exists(path),
        }
    }

    fn remove<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, Result<bool, FilesError>> {
        let Some((dir, rel)) = self.repo.checkout_of(path) else {
            return self.files.remove(path);
        };
        let result = match self.files.take_remove_fault(path) {
            Some(fault) => Err(fault),
            None => {
                let existed = self
                    .repo
                    .files(&dir)
                    .is_some_and(|tree| tree.contains_key(&rel));
                self.repo
                    .delete(&dir, &rel)
                    .map(|()| existed)
                    .map_err(|e| not_a_checkout(path, &e))
            }
        };
        Box::pin(async move { result })
    }

    fn list<'a>(&'a self, dir: &'a Path) -> BoxFuture<'a, Result<Vec<PathBuf>, FilesError>> {
        let Some((checkout, rel)) = self.repo.checkout_of(&dir.join("_")) else {
            return self.files.list(dir);
        };
        let rel_dir = Path::new(&rel).parent().map(Path::to_path_buf);
        let files = self.repo.files(&checkout).map_or_else(Vec::new, |tree| {
            tree.keys()
                .filter(|path| Path::new(path).parent().map(Path::to_path_buf) == rel_dir)
                .map(|path| checkout.join(path))
                .collect()
        });
        Box::pin(async move { Ok(files) })
    }
}
