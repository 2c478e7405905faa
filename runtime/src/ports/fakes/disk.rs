//! FakeDisk: one disk for the engine's `Files` port. A path inside a checkout (the user's or a
//! task's worktree) is a working file of [`FakeRepo`], so what the engine writes there (the
//! sub-task instruction block, an agent's settings) is what git diffs, commits and merges, and
//! goes when the worktree goes; any other path is a file of [`FakeFiles`] (configs, the user's
//! own files outside git). Write and removal faults (set on the [`FakeFiles`]) hit both alike, and
//! so does confinement: a path outside its root, or through a symbolic link (one the repository
//! commits, in every checkout, or one of the user's), is refused as the real adapter refuses it.
//!
//! Files in a checkout are text and keep no mode.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{FakeFiles, FakeRepo};
use crate::ports::{BoxFuture, FileMode, Files, FilesError, RepoError};

/// See the module documentation.
#[derive(Debug)]
pub struct FakeDisk {
    files: Arc<FakeFiles>,
    repo: Arc<FakeRepo>,
}

impl FakeDisk {
    /// The disk over `files` and `repo`'s checkouts.
    #[must_use]
    pub fn new(files: Arc<FakeFiles>, repo: Arc<FakeRepo>) -> Self {
        FakeDisk { files, repo }
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

fn not_a_checkout(path: &Path, error: &RepoError) -> FilesError {
    FilesError::new("write", path, std::io::Error::other(error.to_string()))
}

impl Files for FakeDisk {
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

    fn append<'a>(
        &'a self,
        root: &'a Path,
        path: &'a Path,
        bytes: &'a [u8],
        mode: FileMode,
    ) -> BoxFuture<'a, Result<u64, FilesError>> {
        let result = match self.in_checkout("append", root, path) {
            Err(refused) => Err(refused),
            // Baton appends only to its own files, outside every checkout.
            Ok(Some(_)) => Err(FilesError::new(
                "append",
                path,
                std::io::Error::other("the fake disk appends only outside checkouts"),
            )),
            Ok(None) => return self.files.append(root, path, bytes, mode),
        };
        Box::pin(async move { result })
    }

    fn rename<'a>(
        &'a self,
        root: &'a Path,
        from: &'a Path,
        to: &'a Path,
    ) -> BoxFuture<'a, Result<bool, FilesError>> {
        let checkouts = (
            self.in_checkout("rename", root, from),
            self.in_checkout("rename", root, to),
        );
        let result = match checkouts {
            (Err(refused), _) | (_, Err(refused)) => Err(refused),
            (Ok(None), Ok(None)) => return self.files.rename(root, from, to),
            _ => Err(FilesError::new(
                "rename",
                from,
                std::io::Error::other("the fake disk renames only outside checkouts"),
            )),
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::FakeDisk;
    use crate::ports::fakes::{FakeFiles, FakeRepo, Tree};
    use crate::ports::{FileMode, Files, Repo, WorktreeRequest};

    #[tokio::test]
    async fn a_worktrees_files_are_its_checkouts_and_go_with_it() {
        let (files, repo) = (
            Arc::new(FakeFiles::default()),
            Arc::new(FakeRepo::default()),
        );
        let disk = FakeDisk::new(files.clone(), repo.clone());
        repo.add_repo(Path::new("/r"), "main", Tree::new());
        let (wt, agents) = (Path::new("/r/.wt/x"), Path::new("/r/.wt/x/AGENTS.md"));
        let request = WorktreeRequest {
            root: "/r".into(),
            branch: "x".into(),
            path: wt.into(),
            base: None,
        };
        repo.create_worktree(request).await.unwrap();
        disk.write_atomic(wt, agents, b"block\n", FileMode::Default)
            .await
            .unwrap();
        let config = Path::new("/tmp/config.json");
        disk.write_atomic(Path::new("/tmp"), config, b"{}", FileMode::OwnerOnly)
            .await
            .unwrap();
        assert_eq!(repo.files(wt).unwrap()["AGENTS.md"], "block\n");
        assert_eq!(files.paths(), [config], "only what is outside a checkout");
        assert_eq!(disk.list(wt).await.unwrap(), [agents]);
        files.fail_removes(1);
        assert!(disk.remove(wt, agents).await.is_err(), "faults hit both");
        repo.remove_worktree("/r".into(), wt.into(), "x".into())
            .await
            .unwrap();
        assert_eq!(disk.read(wt, agents).await.unwrap(), None);
    }
}
