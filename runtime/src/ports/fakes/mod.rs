//! In-memory ports with real behaviour, for engine tests and the simulator.
//!
//! Each fake keeps the state its production counterpart would (files with their modes, PTY
//! sessions with their input and a bounded output channel, a repository's branches and
//! worktrees) and can be told to fail the way the real thing fails (a full disk, a spawn that
//! cannot start, a conflicting merge, a worktree that will not go). Locks guard plain data and
//! are never held across an await.

mod clock;
mod entropy;
mod files;
mod journal;
mod pty;
mod repo;

use std::sync::{Mutex, MutexGuard};

pub use clock::FakeClock;
pub use entropy::SeededEntropy;
pub use files::{FakeFile, FakeFiles, WriteFailure};
pub use journal::MemoryJournal;
pub use pty::{FAKE_PTY_EVENTS_MAX, FakePty};
pub use repo::FakeRepo;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks is a bug in a test; the data is still usable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
