//! The simulated disk as the engine's `Files` port sees it: a path inside a checkout (the user's
//! or a task's worktree) is a working file of SimRepo, so what the engine writes there (the
//! sub-task instruction block) is what git diffs, commits and merges; any other path is a file of
//! FakeFiles (configs, the user's own files outside git). Write and removal faults (disk_full,
//! rename_fails, remove_fails) hit both alike, and so does confinement: a path outside its root,
//! or through a symbolic link (one the repository commits, in every checkout, or one of the
//! user's), is refused as the real adapter refuses it.

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

    /// The checkout `path` is in and its path there, once `path` is known to be confined in
    /// `root` (no link on the way, the checkout's committed links included).
    fn in_checkout(
        &self,
        operation: &'static str,
        root: &Path,
        path: &Path,
    ) -> Result<Option<(PathBuf, String)>, FilesError> {
        let checkout = self.repo.checkout_of(path);
        let links: Vec<PathBuf> = checkout
            .as_ref()
            .map(|(dir, _)| {
                self.repo
                    .links_of(dir)
                    .into_iter()
                    .filter_map(|link| {
                        let at = dir.join(link);
                        at.strip_prefix(root).ok().map(Path::to_path_buf)
                    })
                    .collect()
            })
            .unwrap_or_default();
        self.files.confine(operation, root, path, &links)?;
        Ok(checkout)
    }
}

fn not_a_checkout(path: &Path, error: &baton_runtime::ports::RepoError) -> FilesError {
    FilesError::new("write", path, std::io::Error::other(error.to_string()))
}

impl Files for SimDisk {
    fn read<'a>(
        &'a self,
        root: &'a Path,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, FilesError>> {
        let result = match self.in_checkout("read", root, path) {
            Err(refused) => Err(refused),
            Ok(Some((dir, rel))) => Ok(self
                .repo
                .files(&dir)
                .and_then(|tree| tree.get(&rel).map(|c| c.clone().into_bytes()))),
            Ok(None) => return self.files.read(root, path),
        };
        Box::pin(async move { result })
    }

    fn write_atomic<'a>(
        &'a self,
        root: &'a Path,
        path: &'a Path,
        bytes: &'a [u8],
        mode: FileMode,
    ) -> BoxFuture<'a, Result<(), FilesError>> {
        let result = match self.in_checkout("write", root, path) {
            Err(refused) => Err(refused),
            Ok(Some((dir, rel))) => match self.files.take_write_fault(path) {
                Some(fault) => Err(fault),
                None => self
                    .repo
                    .edit(&dir, &rel, &String::from_utf8_lossy(bytes))
                    .map_err(|e| not_a_checkout(path, &e)),
            },
            Ok(None) => return self.files.write_atomic(root, path, bytes, mode),
        };
        Box::pin(async move { result })
    }

    fn remove<'a>(
        &'a self,
        root: &'a Path,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<bool, FilesError>> {
        let result = match self.in_checkout("remove", root, path) {
            Err(refused) => Err(refused),
            Ok(Some((dir, rel))) => match self.files.take_remove_fault(path) {
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
            },
            Ok(None) => return self.files.remove(root, path),
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
