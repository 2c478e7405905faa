//! The `Checks` port on the machine's shell: a check passes or fails by its exit status, is
//! killed with everything it started at its limit, keeps only the end of a flood of output, and
//! leaves nothing running.

use std::path::Path;

use baton_runtime::adapters::checks::ShellChecks;
use baton_runtime::adapters::runaways::DaemonId;
use baton_runtime::agents::{DONE_TOKEN_VARS, TOKEN_VARS};
use baton_runtime::ports::{CHECK_OUTPUT_TAIL_BYTES, CheckEnd, CheckRequest, CheckRun, Checks};

async fn run(dir: &Path, command: &str, timeout_ms: u64) -> CheckRun {
    // Each test's checks are marked apart from any other's by their own id.
    let state = dir.join(".state");
    let withheld = TOKEN_VARS.iter().chain(&DONE_TOKEN_VARS).copied().collect();
    ShellChecks::new(DaemonId::of_state_dir(&state), withheld)
        .run(CheckRequest {
            dir: dir.to_owned(),
            command: command.to_owned(),
            timeout_ms,
        })
        .await
}

/// Whether process `pid` is gone (or a zombie not reaped yet: it runs nothing).
fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

#[tokio::test]
async fn a_check_passes_by_its_exit_status_in_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("marker"), "here").unwrap();
    let passed = run(dir.path(), "test -f marker && echo fine", 60_000).await;
    assert_eq!(passed.end, CheckEnd::Exited(0));
    assert!(passed.passed());
    assert_eq!(passed.tail, b"fine\n");
    assert_eq!(passed.output_bytes, 5);

    let failed = run(dir.path(), "echo out; echo oops >&2; exit 3", 60_000).await;
    assert_eq!(failed.end, CheckEnd::Exited(3));
    assert!(!failed.passed());
    assert_eq!(failed.tail, b"out\noops\n", "output and errors, in order");

    let input = run(dir.path(), "cat", 60_000).await;
    assert_eq!(
        (input.end, input.output_bytes),
        (CheckEnd::Exited(0), 0),
        "its input is empty"
    );
}

#[tokio::test]
async fn a_check_past_its_limit_is_killed_with_what_it_started() {
    let dir = tempfile::tempdir().unwrap();
    // It prints the pid of a child of its own, then hangs.
    let hung = run(dir.path(), "sleep 600 & echo $!; wait", 300).await;
    assert_eq!(hung.end, CheckEnd::TimedOut);
    assert!(hung.duration_ms >= 300, "not before its limit: {hung:?}");
    let child = String::from_utf8(hung.tail).unwrap();
    assert!(gone(child.trim()), "its child {child} was killed with it");

    // One that ignores SIGTERM gets SIGKILL after the grace.
    let stubborn = run(
        dir.path(),
        "trap '' TERM; echo $$; while :; do sleep 1; done",
        300,
    )
    .await;
    assert_eq!(stubborn.end, CheckEnd::TimedOut);
    let shell = String::from_utf8(stubborn.tail).unwrap();
    assert!(gone(shell.trim()), "{shell} was killed");
}

#[tokio::test]
async fn what_a_passing_check_leaves_running_is_ended_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let left = run(dir.path(), "sleep 600 >/dev/null 2>&1 & echo $!", 60_000).await;
    assert_eq!(left.end, CheckEnd::Exited(0));
    let child = String::from_utf8(left.tail).unwrap();
    assert!(
        gone(child.trim()),
        "{child} was killed when the check ended"
    );
}

#[tokio::test]
async fn a_flood_of_output_is_counted_and_only_its_end_kept() {
    let dir = tempfile::tempdir().unwrap();
    let flood = run(
        dir.path(),
        "head -c 50000000 /dev/zero | tr '\\0' a; echo END",
        60_000,
    )
    .await;
    assert_eq!(flood.end, CheckEnd::Exited(0));
    assert_eq!(flood.output_bytes, 50_000_004);
    assert_eq!(flood.tail.len(), CHECK_OUTPUT_TAIL_BYTES);
    assert!(flood.tail.ends_with(b"aaaEND\n"));
}

#[tokio::test]
async fn a_check_that_cannot_start_says_why() {
    let run = run(Path::new("/no/such/directory"), "true", 60_000).await;
    match run.end {
        CheckEnd::NotStarted(why) => assert!(why.contains("No such file"), "{why}"),
        other => panic!("{other:?}"),
    }
}
