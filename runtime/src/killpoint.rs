//! Named kill points: the places where a crash of the daemon leaves a different state on disk.
//!
//! Each is marked in the code with [`kill_point!`](crate::kill_point) and a name
//! (`area.step`): before and after a worktree is added, each file Baton writes for a task, each
//! save of the state file, each write of a project's `.mcp.json`, each step of a merge and of a
//! close. A test build (the `kill-points` feature, which `cargo test` turns on and a release
//! build never has) kills the daemon with SIGKILL at the point named by [`KILL_AT_VAR`], so a
//! test can crash the real daemon there and check what a restart makes of it. The sweep
//! (`runtime/tests/kill_points.rs`) reads the list of points from the source, so a new point is
//! swept without being listed twice.
//!
//! Elsewhere (no feature, or an optimised build) a kill point compiles to nothing.

/// `BATON_KILL_AT=<point>` kills the daemon the first time it reaches `<point>`;
/// `<point>#<n>` the `n`th time.
pub const KILL_AT_VAR: &str = "BATON_KILL_AT";

/// Marks a kill point (see the module documentation).
#[macro_export]
macro_rules! kill_point {
    ($name:literal) => {
        #[cfg(all(feature = "kill-points", debug_assertions))]
        $crate::killpoint::reached($name);
    };
}

/// The daemon reached kill point `name`: dies here if it is the one asked for.
#[cfg(all(feature = "kill-points", debug_assertions))]
pub fn reached(name: &str) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU32, Ordering};
    static TARGET: OnceLock<Option<(String, u32)>> = OnceLock::new();
    static HITS: AtomicU32 = AtomicU32::new(0);
    let target = TARGET.get_or_init(|| {
        let text = std::env::var(KILL_AT_VAR).ok()?;
        Some(match text.split_once('#') {
            Some((point, nth)) => (point.to_owned(), nth.parse().unwrap_or(1)),
            None => (text, 1),
        })
    });
    let Some((point, nth)) = target else { return };
    if point != name || HITS.fetch_add(1, Ordering::SeqCst) + 1 != *nth {
        return;
    }
    // Straight to the standard error, unbuffered: the sweep reads it to know where the daemon
    // died, and nothing after this line runs.
    #[allow(clippy::print_stderr)]
    {
        eprintln!("kill point {name}: killing the daemon");
    }
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    std::process::abort();
}
