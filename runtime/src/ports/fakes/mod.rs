//! In-memory ports with real behaviour, for engine tests and the simulator (feature `fakes`).
//!
//! Each fake keeps the state its production counterpart would (files with their modes, PTY
//! sessions with their input and a bounded output channel, repositories with commits, branches
//! and worktrees holding real content) and can be told to fail the way the real thing fails (a
//! full disk, a spawn that cannot start, a worktree that will not go, an operation that takes
//! time). A test says what happened in the world by doing it (an agent edits and commits in its
//! worktree, the user commits on main) rather than by declaring its outcome: a conflict is two
//! conflicting edits. Locks guard plain data and are never held across an await.
//!
//! # Layout
//!
//! - [`FakeClock`] (`clock.rs`), [`SeededEntropy`] (`entropy.rs`): time and randomness.
//! - [`FakePty`] (`pty.rs`): terminals; a test plays the agents.
//! - [`FakeRepo`] (`repo.rs`): git with content; [`Tree`] and its diff and merge (`tree.rs`).
//! - [`FakeFiles`] (`files.rs`): files outside any checkout, and the disk's faults.
//! - [`FakeDisk`] (`disk.rs`): the `Files` port over both: a path in a checkout is the
//!   repository's working file, any other a [`FakeFiles`] file. One disk.
//! - [`MemoryJournal`] (`journal.rs`): the records saved last.
//! - [`FakeChecks`] (`checks.rs`): checks that do what a rule for their command says.
//!
//! Must not depend on anything but the ports, the core's types and tokio (time and channels).

mod checks;
mod clock;
mod disk;
mod entropy;
mod files;
mod journal;
mod pty;
mod repo;
mod tree;

use std::sync::{Mutex, MutexGuard};

pub use checks::{CheckRule, FAKE_CHECK_RUNS_MAX, FakeChecks};
pub use clock::FakeClock;
pub use disk::FakeDisk;
pub use entropy::SeededEntropy;
pub use files::{FakeFile, FakeFiles, WriteFailure};
pub use journal::MemoryJournal;
pub use pty::{FAKE_PTY_EVENTS_MAX, FakePty};
pub use repo::{COMMITS_MAX, FakeRepo};
pub use tree::Tree;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks is a bug in a test; the data is still usable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
