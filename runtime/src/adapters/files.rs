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
//! umask decides.
//!
//! Confinement (see `ports::files`): a path is walked from its root one component at a time with
//! `openat(…, O_NOFOLLOW)`, each directory held open while the next is opened, so no symbolic
//! link is followed anywhere below the root, and one swapped in meanwhile is refused rather
//! than followed. The temporary file is created and renamed inside the held directory: a link
//! put at the target's name after the check is replaced, never written through. A target, or a
//! directory on the way, that is a link fails with [`FilesError::is_link`].

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read as _, Write as _};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::ports::inside;
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

/// The directory holding the last component of `path` (inside `root`) and that component's
/// name, walked with no link followed; missing directories are made when `create`, else `None`.
fn parent_of<'p>(
    operation: &'static str,
    root: &Path,
    path: &'p Path,
    create: bool,
) -> Result<Option<(OwnedFd, &'p OsStr)>, FilesError> {
    let parts = inside(operation, root, path)?;
    let fail = |e: io::Error| FilesError::new(operation, path, e);
    let (name, dirs) = parts
        .split_last()
        .ok_or_else(|| fail(io::ErrorKind::InvalidInput.into()))?;
    if create {
        fs::create_dir_all(root).map_err(fail)?;
    }
    let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
    let mut dir = match rustix::fs::openat(CWD, root, flags, Mode::empty()) {
        Ok(dir) => dir,
        Err(Errno::NOENT) if !create => return Ok(None),
        Err(e) => return Err(fail(e.into())),
    };
    let mut walked = PathBuf::new();
    for part in dirs {
        walked.push(part);
        let next = match rustix::fs::openat(&dir, *part, flags | OFlags::NOFOLLOW, Mode::empty()) {
            Err(Errno::NOENT) if create => {
                match rustix::fs::mkdirat(&dir, *part, Mode::from_raw_mode(0o777)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(fail(e.into())),
                }
                rustix::fs::openat(&dir, *part, flags | OFlags::NOFOLLOW, Mode::empty())
            }
            other => other,
        };
        dir = match next {
            Ok(next) => next,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => {
                return Err(
                    refusal(operation, path, &dir, part, &walked).unwrap_or_else(|| fail(e.into()))
                );
            }
        };
    }
    Ok(Some((dir, name)))
}

/// The refusal for `part` of `dir` when it is a symbolic link (`walked`: its path below the
/// root, for the message).
fn refusal(
    operation: &'static str,
    path: &Path,
    dir: &OwnedFd,
    part: &OsStr,
    walked: &Path,
) -> Option<FilesError> {
    let stat = rustix::fs::statat(dir, part, AtFlags::SYMLINK_NOFOLLOW).ok()?;
    (FileType::from_raw_mode(stat.st_mode) == FileType::Symlink)
        .then(|| FilesError::link(operation, path, walked))
}

/// The kind and permission bits of `name` in `dir`, not following a link; `None`: no such entry.
fn entry(dir: &OwnedFd, name: &OsStr) -> io::Result<Option<(FileType, u32)>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some((
            FileType::from_raw_mode(stat.st_mode),
            stat.st_mode & 0o7777,
        ))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `name` of `dir` must be a regular file (or absent): a link is refused, anything else fails.
fn check_regular(
    operation: &'static str,
    root: &Path,
    path: &Path,
    dir: &OwnedFd,
    name: &OsStr,
) -> Result<Option<u32>, FilesError> {
    let fail = |e: io::Error| FilesError::new(operation, path, e);
    match entry(dir, name).map_err(fail)? {
        None => Ok(None),
        Some((FileType::RegularFile, bits)) => Ok(Some(bits)),
        Some((FileType::Symlink, _)) => Err(FilesError::link(
            operation,
            path,
            path.strip_prefix(root).unwrap_or(path),
        )),
        Some(_) => Err(fail(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ))),
    }
}

/// A file a user named (a script, a recording, a credentials file), read whole up to `limit`
/// bytes: anything but a regular file is refused before it is opened (a FIFO would wait for a
/// writer, `/dev/zero` would never end), and a larger file is refused, never read past
/// `limit + 1` bytes.
///
/// # Errors
/// It cannot be read, is no regular file, or is larger than `limit`.
pub fn read_user_file(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    if !fs::metadata(path)?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    File::open(path)?.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("larger than the {limit}-byte limit"),
        ));
    }
    Ok(bytes)
}

fn read(root: &Path, path: &Path) -> Result<Option<Vec<u8>>, FilesError> {
    let fail = |e: io::Error| FilesError::new("read", path, e);
    let Some((dir, name)) = parent_of("read", root, path, false)? else {
        return Ok(None);
    };
    // Non-blocking: a FIFO put at the name must not hang the daemon (it is refused below).
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let file = match rustix::fs::openat(&dir, name, flags, Mode::empty()) {
        Ok(fd) => File::from(fd),
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => {
            return Err(check_regular("read", root, path, &dir, name)
                .err()
                .unwrap_or_else(|| fail(e.into())));
        }
    };
    if !file.metadata().map_err(fail)?.is_file() {
        return Err(fail(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
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

fn remove(root: &Path, path: &Path) -> Result<bool, FilesError> {
    let fail = |e: io::Error| FilesError::new("remove", path, e);
    let Some((dir, name)) = parent_of("remove", root, path, false)? else {
        return Ok(false);
    };
    if check_regular("remove", root, path, &dir, name)?.is_none() {
        return Ok(false);
    }
    match rustix::fs::unlinkat(&dir, name, AtFlags::empty()) {
        Ok(()) => Ok(true),
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(fail(e.into())),
    }
}

/// A fresh temporary name beside the file `name` (its name, the process and a counter: unique
/// among this machine's writers).
fn append(root: &Path, path: &Path, bytes: &[u8], mode: FileMode) -> Result<u64, FilesError> {
    let fail = |e| FilesError::new("append", path, e);
    let (dir, name) = parent_of("append", root, path, true)?
        .ok_or_else(|| fail(io::ErrorKind::NotFound.into()))?;
    let existing = check_regular("append", root, path, &dir, name)?;
    let bits = match mode {
        FileMode::OwnerOnly => 0o600,
        FileMode::Default => existing.unwrap_or(0o666),
    };
    let flags =
        OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(&dir, name, flags, Mode::from_raw_mode(bits))
        .map_err(|e| fail(e.into()))?;
    let mut file = File::from(fd);
    if mode == FileMode::OwnerOnly {
        rustix::fs::fchmod(&file, Mode::from_raw_mode(bits)).map_err(|e| fail(e.into()))?;
    }
    file.write_all(bytes).map_err(fail)?;
    Ok(file.metadata().map_err(fail)?.len())
}

fn rename(root: &Path, from: &Path, to: &Path) -> Result<bool, FilesError> {
    let Some((from_dir, from_name)) = parent_of("rename", root, from, false)? else {
        return Ok(false);
    };
    if check_regular("rename", root, from, &from_dir, from_name)?.is_none() {
        return Ok(false);
    }
    let fail = |e: io::Error| FilesError::new("rename", to, e);
    let (to_dir, to_name) =
        parent_of("rename", root, to, true)?.ok_or_else(|| fail(io::ErrorKind::NotFound.into()))?;
    check_regular("rename", root, to, &to_dir, to_name)?;
    rustix::fs::renameat(&from_dir, from_name, &to_dir, to_name).map_err(|e| fail(e.into()))?;
    Ok(true)
}

fn temp_beside(name: &OsStr) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = name.to_string_lossy();
    PathBuf::from(format!(".{name}{TEMP_MARK}{}-{n}", std::process::id()))
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

    fn write_now(
        &self,
        root: &Path,
        path: &Path,
        bytes: &[u8],
        mode: FileMode,
    ) -> Result<(), FilesError> {
        let fail = |e| FilesError::new("write", path, e);
        let (dir, name) = parent_of("write", root, path, true)?
            .ok_or_else(|| fail(io::ErrorKind::NotFound.into()))?;
        let existing = check_regular("write", root, path, &dir, name)?;
        let bits = match mode {
            FileMode::OwnerOnly => Some(0o600),
            FileMode::Default => existing,
        };
        let temp = temp_beside(name);
        match self.steps(&dir, &temp, name, bytes, bits) {
            Ok(()) => Ok(()),
            Err(Interrupted::Crash) => Err(fail(io::Error::other("interrupted (simulated crash)"))),
            Err(Interrupted::Error(error)) => {
                let _ = rustix::fs::unlinkat(&dir, &temp, AtFlags::empty());
                Err(fail(error))
            }
        }
    }

    fn steps(
        &self,
        dir: &OwnedFd,
        temp: &Path,
        name: &OsStr,
        bytes: &[u8],
        bits: Option<u32>,
    ) -> Result<(), Interrupted> {
        self.check(Step::Create)?;
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let created =
            rustix::fs::openat(dir, temp, flags, Mode::from_raw_mode(bits.unwrap_or(0o666)))
                .map_err(io::Error::from)?;
        let mut file = File::from(created);
        if let Some(bits) = bits {
            // `mode` at creation is masked by the umask; the bits asked for are set exactly.
            rustix::fs::fchmod(&file, Mode::from_raw_mode(bits)).map_err(io::Error::from)?;
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
        rustix::fs::renameat(dir, temp, dir, name).map_err(io::Error::from)?;
        self.check(Step::SyncDir)?;
        rustix::fs::fsync(dir).map_err(io::Error::from)?;
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
    fn read<'a>(
        &'a self,
        root: &'a Path,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, FilesError>> {
        let (root, path) = (root.to_owned(), path.to_owned());
        blocking(move || read(&root, &path))
    }

    fn write_atomic<'a>(
        &'a self,
        root: &'a Path,
        path: &'a Path,
        bytes: &'a [u8],
        mode: FileMode,
    ) -> BoxFuture<'a, Result<(), FilesError>> {
        let (files, root, path, bytes) = (
            self.clone(),
            root.to_owned(),
            path.to_owned(),
            bytes.to_vec(),
        );
        blocking(move || files.write_now(&root, &path, &bytes, mode))
    }

    fn append<'a>(
        &'a self,
        root: &'a Path,
        path: &'a Path,
        bytes: &'a [u8],
        mode: FileMode,
    ) -> BoxFuture<'a, Result<u64, FilesError>> {
        let (root, path, bytes) = (root.to_owned(), path.to_owned(), bytes.to_vec());
        blocking(move || append(&root, &path, &bytes, mode))
    }

    fn rename<'a>(
        &'a self,
        root: &'a Path,
        from: &'a Path,
        to: &'a Path,
    ) -> BoxFuture<'a, Result<bool, FilesError>> {
        let (root, from, to) = (root.to_owned(), from.to_owned(), to.to_owned());
        blocking(move || rename(&root, &from, &to))
    }

    fn remove<'a>(
        &'a self,
        root: &'a Path,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<bool, FilesError>> {
        let (root, path) = (root.to_owned(), path.to_owned());
        blocking(move || remove(&root, &path))
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
                // The entry's own type: a link is not followed, so not listed.
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
            .write_atomic(dir.path(), &path, b"one", FileMode::Default)
            .await
            .unwrap();
        files
            .write_atomic(dir.path(), &path, b"two", FileMode::Default)
            .await
            .unwrap();
        assert_eq!(
            files.read(dir.path(), &path).await.unwrap().as_deref(),
            Some(&b"two"[..])
        );
        assert!(leftovers(path.parent().unwrap()).is_empty());
    }

    #[tokio::test]
    async fn a_secret_file_is_owner_only_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        StdFiles::default()
            .write_atomic(dir.path(), &path, b"{}", FileMode::OwnerOnly)
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
            .write_atomic(dir.path(), &path, b"mine + block", FileMode::Default)
            .await
            .unwrap();
        assert_eq!(mode_of(&path), 0o640);
    }

    /// Every file under `dir`, with its bytes (links as their targets' names): what must not
    /// change outside a root.
    fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(next) = stack.pop() {
            for entry in std::fs::read_dir(&next).unwrap() {
                let path = entry.unwrap().path();
                let meta = std::fs::symlink_metadata(&path).unwrap();
                let name = path.display().to_string();
                if meta.file_type().is_symlink() {
                    let target = std::fs::read_link(&path).unwrap();
                    out.push((name, target.display().to_string().into_bytes()));
                } else if meta.is_dir() {
                    stack.push(path);
                } else {
                    out.push((name, std::fs::read(&path).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    #[tokio::test]
    async fn no_link_is_followed_whatever_its_shape() {
        let dir = tempfile::tempdir().unwrap();
        let (root, home) = (dir.path().join("wt"), dir.path().join("home"));
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        std::fs::write(home.join(".ssh/authorized_keys"), "ssh-ed25519 mine").unwrap();
        std::fs::write(home.join(".bashrc"), "export A=1").unwrap();
        let link =
            |target: &Path, at: &str| std::os::unix::fs::symlink(target, root.join(at)).unwrap();
        // Absolute, relative, through a linked directory, to a directory inside the root, dangling.
        link(&home.join(".ssh/authorized_keys"), "AGENTS.md");
        link(Path::new("../home/.bashrc"), "GEMINI.md");
        link(&home, ".gemini");
        link(Path::new("real"), "inside");
        link(Path::new("/nonexistent/x"), ".agent.md");
        let before = snapshot(dir.path());
        let files = StdFiles::default();
        for rel in [
            "AGENTS.md",
            "GEMINI.md",
            ".gemini/settings.json",
            ".gemini/.ssh/authorized_keys",
            "inside/x.md",
            ".agent.md",
        ] {
            let path = root.join(rel);
            let write = files
                .write_atomic(&root, &path, b"BATON", FileMode::Default)
                .await;
            assert!(
                write.as_ref().is_err_and(|e| e.is_confinement()),
                "write {rel}: {write:?}"
            );
            let read = files.read(&root, &path).await;
            assert!(
                read.as_ref().is_err_and(|e| e.is_confinement()),
                "read {rel}: {read:?}"
            );
            let removed = files.remove(&root, &path).await;
            assert!(
                removed.as_ref().is_err_and(|e| e.is_confinement()),
                "remove {rel}: {removed:?}"
            );
            let appended = files
                .append(&root, &path, b"BATON", FileMode::OwnerOnly)
                .await;
            assert!(
                appended.as_ref().is_err_and(|e| e.is_confinement()),
                "append {rel}: {appended:?}"
            );
            std::fs::write(root.join("real/mine"), "mine").unwrap();
            for (from, to) in [
                (&path, &root.join("real/mine")),
                (&root.join("real/mine"), &path),
            ] {
                let renamed = files.rename(&root, from, to).await;
                assert!(
                    renamed.as_ref().is_err_and(|e| e.is_confinement()),
                    "rename {} -> {}: {renamed:?}",
                    from.display(),
                    to.display()
                );
            }
            std::fs::remove_file(root.join("real/mine")).unwrap();
            assert!(
                files
                    .write_atomic(&root, &path, b"BATON", FileMode::OwnerOnly)
                    .await
                    .is_err(),
                "{rel}"
            );
        }
        assert_eq!(
            snapshot(dir.path()),
            before,
            "nothing changed, inside or out"
        );
        let error = files
            .write_atomic(&root, &root.join("AGENTS.md"), b"x", FileMode::Default)
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("AGENTS.md is a symbolic link"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn an_append_adds_at_the_end_and_a_rename_moves_over_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("state");
        let (log, old) = (root.join("logs/audit.log"), root.join("logs/audit.log.1"));
        let files = StdFiles::default();
        assert_eq!(
            files
                .append(&root, &log, b"one\n", FileMode::OwnerOnly)
                .await
                .unwrap(),
            4
        );
        assert_eq!(
            files
                .append(&root, &log, b"two\n", FileMode::OwnerOnly)
                .await
                .unwrap(),
            8
        );
        assert_eq!(std::fs::read(&log).unwrap(), b"one\ntwo\n");
        assert_eq!(mode_of(&log), 0o600);
        std::fs::write(&old, "older").unwrap();
        assert!(files.rename(&root, &log, &old).await.unwrap());
        assert_eq!(std::fs::read(&old).unwrap(), b"one\ntwo\n");
        assert!(!log.exists());
        assert!(
            !files.rename(&root, &log, &old).await.unwrap(),
            "nothing to move"
        );
        let outside = dir.path().join("elsewhere");
        assert!(files.rename(&root, &old, &outside).await.is_err());
        assert!(old.exists() && !outside.exists());
    }

    #[tokio::test]
    async fn a_path_outside_its_root_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("wt");
        let files = StdFiles::default();
        for path in [dir.path().join("x"), root.join("../x"), root.clone()] {
            let error = files
                .write_atomic(&root, &path, b"x", FileMode::Default)
                .await
                .unwrap_err();
            assert!(error.is_confinement(), "{}: {error}", path.display());
        }
        assert!(!dir.path().join("x").exists());
    }

    #[tokio::test]
    async fn a_fifo_is_neither_read_nor_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("AGENTS.md");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &path,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let files = StdFiles::default();
        let read = files.read(dir.path(), &path).await.unwrap_err();
        assert!(read.to_string().contains("not a regular file"), "{read}");
        assert!(
            files
                .write_atomic(dir.path(), &path, b"x", FileMode::Default)
                .await
                .is_err()
        );
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
                    .write_atomic(dir.path(), &path, &new, FileMode::OwnerOnly)
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
                .write_atomic(dir.path(), &path, b"x", FileMode::Default)
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
        assert_eq!(files.read(dir.path(), &path).await.unwrap(), None);
        assert!(!files.remove(dir.path(), &path).await.unwrap());
        std::fs::write(&path, "x").unwrap();
        assert!(files.remove(dir.path(), &path).await.unwrap());
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
        let error = StdFiles::default()
            .read(dir.path(), &path)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("limit"), "{error}");
    }
}
