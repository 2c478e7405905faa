//! The `Files` port on the real file system (std, on a blocking thread).
//!
//! An atomic write is five steps, each of which may fail or be the last thing a dying process
//! did: create a temporary file beside the target (same directory, so the same file system),
//! write the bytes, fsync it, rename it over the target, fsync the directory so the rename
//! itself survives a power cut. Whatever step fails, the target holds the old content or the
//! new, never a mix; on an error the temporary file is removed, and one a crash left behind is
//! named so that [`is_leftover`] recognises it (the daemon sweeps its state directory).
//!
//! Modes: [`FileMode::OwnerOnly`] files are created 0600 before a byte is written (a secret is
//! never readable by others, not even for a moment); a [`FileMode::Default`] write keeps the
//! permission bits of the file it replaces (a user's CLAUDE.md stays as they set it), else the
//! umask decides. A target that is a symbolic link is written through: the link stays, its
//! target changes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::ports::{BoxFuture, FileMode, Files, FilesError};

/// Largest file [`StdFiles::read`] returns: the engine reads small JSON and markdown files
/// (MCP configs, preambles, state); anything larger is refused rather than loaded.
pub const FILE_READ_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// What a temporary file's name starts with (after a dot): `.<name>.baton-tmp-<n>`.
const TEMP_MARK: &str = ".baton-tmp-";

/// The steps of an atomic write, in order (for fault injection in tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// Creating the temporary file.
    Create,
    /// Writing the bytes (a fault here writes half of them first).
    Write,
    /// Flushing the temporary file to the disk.
    SyncFile,
    /// Renaming it over the target.
    Rename,
    /// Flushing the directory.
    SyncDir,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 5] = [
        Step::Create,
        Step::Write,
        Step::SyncFile,
        Step::Rename,
        Step::SyncDir,
    ];
}

/// A fault a test injects into atomic writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The step reports an error (the write cleans up after itself).
    Fails(Step),
    /// The process "dies" at the step: nothing more happens, no clean-up.
    Dies(Step),
}

/// Files on the real disk. See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct StdFiles {
    fault: Option<Fault>,
}

impl StdFiles {
    /// Files with every atomic write failing as `fault` says (tests of the write's steps).
    #[must_use]
    pub fn faulty(fault: Fault) -> Self {
        StdFiles { fault: Some(fault) }
    }
}

/// Whether `path` names a temporary file an interrupted atomic write left behind.
#[must_use]
pub fn is_leftover(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') && n.contains(TEMP_MARK))
}

fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, FilesError> + Send + 'static,
) -> BoxFuture<'static, Result<T, FilesError>> {
    Box::pin(async move {
        tokio::task::spawn_blocking(work)
            .await
            .unwrap_or_else(|join| {
                Err(FilesError::new(
                    "run",
                    Path::new(""),
                    io::Error::other(join.to_string()),
                ))
            })
    })
}

fn read(path: &Path) -> Result<Option<Vec<u8>>, FilesError> {
    let fail = |e| FilesError::new("read", path, e);
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fail(e)),
    };
    let mut bytes = Vec::new();
    file.take(FILE_READ_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(fail)?;
    if bytes.len() as u64 > FILE_READ_BYTES_MAX {
        return Err(fail(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("larger than the {FILE_READ_BYTES_MAX}-byte limit"),
        )));
    }
    Ok(Some(bytes))
}

/// Where a write to `path` lands: through a symbolic link to what it names.
fn destination(path: &Path) -> io::Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(path),
        _ => Ok(path.to_owned()),
    }
}

/// A fresh temporary name beside `target` (its directory, its name, the process and a counter:
/// unique among this machine's writers).
fn temp_beside(target: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}{TEMP_MARK}{}-{n}", std::process::id()))
}

impl StdFiles {
    fn check(&self, step: Step) -> Result<(), Interrupted> {
        match self.fault {
            Some(Fault::Dies(at)) if at == step => Err(Interrupted::Crash),
            Some(Fault::Fails(at)) if at == step => Err(Interrupted::Error(io::Error::other(
                format!("injected fault at {step:?}"),
            ))),
            _ => Ok(()),
        }
    }

    fn write_now(&self, path: &Path, bytes: &[u8], mode: FileMode) -> Result<(), FilesError> {
        let fail = |e| FilesError::new("write", path, e);
        let target = destination(path).map_err(fail)?;
        let dir = target
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned();
        fs::create_dir_all(&dir).map_err(fail)?;
        let bits = match mode {
            FileMode::OwnerOnly => Some(0o600),
            FileMode::Default => fs::metadata(&target)
                .ok()
                .map(|m| m.permissions().mode() & 0o7777),
        };
        let temp = temp_beside(&target);
        match self.steps(&temp, &target, &dir, bytes, bits) {
            Ok(()) => Ok(()),
            Err(Interrupted::Crash) => Err(fail(io::Error::other("interrupted (simulated crash)"))),
            Err(Interrupted::Error(error)) => {
                let _ = fs::remove_file(&temp);
                Err(fail(error))
            }
        }
    }

    fn steps(
        &self,
        temp: &Path,
        target: &Path,
        dir: &Path,
        bytes: &[u8],
        bits: Option<u32>,
    ) -> Result<(), Interrupted> {
        self.check(Step::Create)?;
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        if let Some(bits) = bits {
            options.mode(bits);
        }
        let mut file = options.open(temp)?;
        if let Some(bits) = bits {
            // `mode` at creation is masked by the umask; the bits asked for are set exactly.
            file.set_permissions(fs::Permissions::from_mode(bits))?;
        }
        if let Err(fault) = self.check(Step::Write) {
            file.write_all(&bytes[..bytes.len() / 2])?;
            return Err(fault);
        }
        file.write_all(bytes)?;
        self.check(Step::SyncFile)?;
        file.sync_all()?;
        drop(file);
        self.check(Step::Rename)?;
        fs::rename(temp, target)?;
        self.check(Step::SyncDir)?;
        File::open(dir)?.sync_all()?;
        Ok(())
    }
}

/// How an atomic write stopped early.
enum Interrupted {
    /// A step failed: clean up.
    Error(io::Error),
    /// The process died there: nothing more happens.
    Crash,
}

impl From<io::Error> for Interrupted {
    fn from(error: io::Error) -> Self {
        Interrupted::Error(error)
    }
}

impl Files for StdFiles {
    fn read<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, Result<Option<Vec<u8>>, FilesError>> {
        let path = path.to_owned();
        blocking(move || read(&path))
    }

    fn write_atomic<'a>(
        &'a self,
        path: &'a Path,
        bytes: &'a [u8],
        mode: FileMode,
    ) -> BoxFuture<'a, Result<(), FilesError>> {
        let (files, path, bytes) = (self.clone(), path.to_owned(), bytes.to_vec());
        blocking(move || files.write_now(&path, &bytes, mode))
    }

    fn exists<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, Result<bool, FilesError>> {
        let path = path.to_owned();
        blocking(move || match fs::metadata(&path) {
            Ok(meta) => Ok(meta.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(FilesError::new("stat", &path, e)),
        })
    }

    fn remove<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, Result<bool, FilesError>> {
        let path = path.to_owned();
        blocking(move || match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(FilesError::new("remove", &path, e)),
        })
    }

    fn list<'a>(&'a self, dir: &'a Path) -> BoxFuture<'a, Result<Vec<PathBuf>, FilesError>> {
        let dir = dir.to_owned();
        blocking(move || {
            let fail = |e| FilesError::new("list", &dir, e);
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(fail(e)),
            };
            let mut files = Vec::new();
            for entry in entries {
                let entry = entry.map_err(fail)?;
                if entry.file_type().map_err(fail)?.is_file() {
                    files.push(entry.path());
                }
            }
            files.sort();
            Ok(files)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::Path;

    use super::{Fault, StdFiles, Step, is_leftover};
    use crate::ports::{FileMode, Files};

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| is_leftover(p))
            .map(|p| p.display().to_string())
            .collect()
    }

    #[tokio::test]
    async fn a_write_replaces_the_file_and_creates_missing_directories() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/state.json");
        let files = StdFiles::default();
        files
            .write_atomic(&path, b"one", FileMode::Default)
            .await
            .unwrap();
        files
            .write_atomic(&path, b"two", FileMode::Default)
            .await
            .unwrap();
        assert_eq!(
            files.read(&path).await.unwrap().as_deref(),
            Some(&b"two"[..])
        );
        assert!(files.exists(&path).await.unwrap());
        assert!(leftovers(path.parent().unwrap()).is_empty());
    }

    #[tokio::test]
    async fn a_secret_file_is_owner_only_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        StdFiles::default()
            .write_atomic(&path, b"{}", FileMode::OwnerOnly)
            .await
            .unwrap();
        assert_eq!(mode_of(&path), 0o600);
    }

    #[tokio::test]
    async fn rewriting_a_users_file_keeps_its_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("CLAUDE.md");
        std::fs::write(&path, "mine").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        StdFiles::default()
            .write_atomic(&path, b"mine + block", FileMode::Default)
            .await
            .unwrap();
        assert_eq!(mode_of(&path), 0o640);
    }

    #[tokio::test]
    async fn a_symlinked_file_is_written_through_and_stays_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let (real, link) = (dir.path().join("real.md"), dir.path().join("link.md"));
        std::fs::write(&real, "old").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        StdFiles::default()
            .write_atomic(&link, b"new", FileMode::Default)
            .await
            .unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&real).unwrap(), b"new");
    }

    #[tokio::test]
    async fn an_interrupted_write_leaves_the_old_file_or_the_new_never_a_torn_one() {
        let old = vec![b'o'; 10_000];
        let new = vec![b'n'; 20_000];
        for at in Step::ALL {
            for crash in [false, true] {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("state.json");
                std::fs::write(&path, &old).unwrap();
                let fault = if crash {
                    Fault::Dies(at)
                } else {
                    Fault::Fails(at)
                };
                let result = StdFiles::faulty(fault)
                    .write_atomic(&path, &new, FileMode::OwnerOnly)
                    .await;
                assert!(
                    result.is_err(),
                    "{at:?} crash={crash}: the fault is reported"
                );
                let now = std::fs::read(&path).unwrap();
                // Past the rename the new content is in place; before it, the old.
                let expected = if at > Step::Rename { &new } else { &old };
                assert_eq!(&now, expected, "{at:?} crash={crash}");
                let left = leftovers(dir.path());
                let expect_leftover = crash && at > Step::Create && at <= Step::Rename;
                assert_eq!(
                    !left.is_empty(),
                    expect_leftover,
                    "{at:?} crash={crash}: {left:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_failed_first_write_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.json");
        let fault = Fault::Fails(Step::SyncFile);
        assert!(
            StdFiles::faulty(fault)
                .write_atomic(&path, b"x", FileMode::Default)
                .await
                .is_err()
        );
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    }

    #[tokio::test]
    async fn absent_files_read_as_none_and_remove_as_false() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nothing");
        let files = StdFiles::default();
        assert_eq!(files.read(&path).await.unwrap(), None);
        assert!(!files.exists(&path).await.unwrap());
        assert!(!files.remove(&path).await.unwrap());
        std::fs::write(&path, "x").unwrap();
        assert!(files.remove(&path).await.unwrap());
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn a_listing_names_the_files_of_one_directory_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b", "a", "sub/c"] {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        }
        let files = StdFiles::default();
        let listed = files.list(dir.path()).await.unwrap();
        assert_eq!(listed, [dir.path().join("a"), dir.path().join("b")]);
        assert!(
            files
                .list(&dir.path().join("none"))
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_file_over_the_read_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(super::FILE_READ_BYTES_MAX + 1).unwrap();
        let error = StdFiles::default().read(&path).await.unwrap_err();
        assert!(error.to_string().contains("limit"), "{error}");
    }
}
