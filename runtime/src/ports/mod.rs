//! The ports: what the engine needs from the world, as small traits named after a capability.
//!
//! Production implementations live in `adapters/` (portable-pty, git, std fs, the system clock
//! and OS entropy; the journal is the daemon's state file, `daemon::registry`); stateful
//! in-memory fakes with real behaviour live in [`fakes`] (feature `fakes`, also used by the
//! simulator). The engine holds them as `Arc<dyn Trait>`.
//!
//! Asynchronous operations return a [`BoxFuture`] so the traits stay object-safe. Sleeping is not
//! a port: the engine uses tokio time, which tests pause and the simulator virtualises.

use std::future::Future;
use std::pin::Pin;

mod checks;
mod clock;
mod entropy;
mod files;
mod journal;
mod pty;
mod repo;

#[cfg(any(test, feature = "fakes"))]
pub mod fakes;

pub use checks::{
    CHECK_KILL_GRACE_MS, CHECK_OUTPUT_TAIL_BYTES, CheckEnd, CheckRequest, CheckRun, Checks, Tail,
};
pub use clock::Clock;
pub use entropy::Entropy;
pub use files::{FileMode, Files, FilesError, inside};
pub use journal::{Journal, JournalError};
pub use pty::{ExitStatus, PtyError, PtyEvent, PtyHost, PtySession, SpawnSpec};
pub use repo::{
    ChangedFile, Diff, FileChange, Head, MERGED_PATHS_MAX, MergeOutcome, MergeRequest, Overlay,
    Repo, RepoError, WorktreeRequest, WorktreeStatus,
};

/// A boxed future that can move between threads: what an object-safe async port method returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
