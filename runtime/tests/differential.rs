//! The differential test: a scenario file played in the simulator (`baton_sim::runner`) and,
//! in real time, against a real `baton daemon` on loopback, with real git, real terminals and
//! `baton demo-agent` as every sub-task's agent; each step's answers must be the same.
//!
//! The real run builds the scenario's world in a temporary directory: `repo` (the first
//! coordinator's project, as `/repo` in the simulator: its main branch, its committed files, its
//! other branches, the user's untracked files) and `repo-<name>` for each other coordinator (a
//! copy, as `/repo-<name>`). The app registers every coordinator on the app channel
//! (`POST /app/coordinators`) with `claude` as its agent: a shell script of that name that runs
//! `baton demo-agent --scripts DIR --mcp-config …`, where `DIR` holds each `[[agent]]`'s script
//! as `<slug>.toml` (the demo agent picks it by its worktree's branch, as the simulator matches
//! agents) and the simulator's default agent as `default.toml`. Steps start at their `at` times,
//! in their lanes, as the simulator starts them; coordinator calls go over REST with the
//! coordinator's token (read from its MCP config), app calls over the app channel or, for the
//! user's own git actions (`commit_on_main`, `edit_checkout`, `read_file`), with git; the
//! attacker's `http` requests are sent as written, with the credential `auth` names (a
//! coordinator's token, a task's done token from its MCP config, or raw text).
//!
//! What is compared: for every step, the list of its calls (rounds, `then`s) as `(actor, call,
//! arguments, answer)`, in the order they were answered, after normalising what differs between
//! the two worlds by construction: task, agent and coordinator ids (UUIDs, numbered by first
//! appearance, step by step; a branch's six-character id suffix with them), times (ISO-8601
//! timestamps), tokens, and paths (the temporary project and state directories read as `/repo`
//! and `/var/baton`, MCP configs as `/tmp/baton`). Not compared: the agents' own trace lines,
//! the app's event lines, the detector's timing (`agentState`, and a task's `running` against
//! `idle`: [`RUNNING_OR_IDLE`]), when a staged batch fires (`firesAt`), the invariant checks
//! (the simulator checks them; its failures fail this test too) and when answers came. The
//! scenario's expectations are checked on the real answers with the simulator's own code
//! (`runner::expectations`). A few steps leave out a field whose value depends on how fast the
//! real world got there ([`LOOSE_STEPS`]), and unified diffs are compared in one form
//! ([`canonical_diff`]).
//!
//! Found on the way (the simulator's side): its repository writes diffs in a form of its own
//! (no `index` or mode lines, `@@ -1,0 +1,3 @@` for a new file where git writes `-0,0`), and a
//! scenario's user files (`[world] files`) must be invisible to git, where a real untracked file
//! makes the checkout dirty and every merge into it refused; here, as in the simulator, they are
//! in every project's checkout and excluded (`info/exclude`). And the two agent runtimes differ:
//! `baton demo-agent` prints its tool calls (as Claude Code does), the simulator's agent does
//! not, so a task that signals is `running` in one and `idle` in the other.
//!
//! Bounds: each scenario has [`SCENARIO_WALL_MAX`] after its last timed step; the daemon is
//! stopped (SIGTERM, then SIGKILL) and every process carrying its mark (`BATON_DAEMON=<id>` in
//! its environment) is reported and killed, whatever happened; temporary directories go with
//! their `TempDir`.

#![allow(clippy::unwrap_used)] // test harness: a step that fails is the test failing

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use baton_runtime::mcp::http::{self, BaseUrl, Tcp, UnixSocket};
use baton_sim::calls::Answer;
use baton_sim::runner::{self, StepAnswer};
use baton_sim::scenario::{At, Scenario, parse_at};
use common::{BATON, call, git, isolated};
use serde_json::{Value, json};

/// The scenarios played both ways, relative to `scenarios/`.
const SCENARIOS: &[&str] = &[
    "coordinator/a-dirty-checkout-refuses-the-merge.toml",
    "coordinator/bad-input-changes-nothing.toml",
    "coordinator/close-isolates-tasks.toml",
    "coordinator/close-removes-everything.toml",
    "coordinator/create-without-prompt.toml",
    "coordinator/full-lifecycle.toml",
    "coordinator/many-tasks-in-parallel.toml",
    "coordinator/merge-conflict-leaves-main-untouched.toml",
    "coordinator/merge-keeps-task-without-cleanup.toml",
    "coordinator/merge-non-squash.toml",
    "coordinator/merge-squash-with-message.toml",
    "coordinator/prompt-after-idle.toml",
    "coordinator/review-and-merge-deprecated.toml",
    "coordinator/skip-permissions-propagate.toml",
    "coordinator/task-detail-fields.toml",
    "coordinator/too-many-tasks.toml",
    "coordinator/two-coordinators-are-isolated.toml",
    "coordinator/uncommitted-work-is-auto-committed.toml",
    "coordinator/unknown-base-branch-rolls-back.toml",
    "coordinator/user-files-stay-intact.toml",
    "coordinator/wait-for-idle-times-out.toml",
    "signals/a-prompt-resets-the-signal.toml",
    "signals/an-exit-without-a-signal-is-not-remaining.toml",
    "signals/concurrent-waits-are-served-in-order.toml",
    "signals/deregistered-while-waiting.toml",
    "signals/exit-is-reported-to-a-waiter.toml",
    "signals/remaining-counts-the-rest.toml",
    "signals/replay-by-request-id.toml",
    "signals/request-ids-are-per-coordinator.toml",
    "signals/signal-before-wait.toml",
    "signals/signal-from-an-unknown-task-is-refused.toml",
    "signals/signal-while-waiting.toml",
    "signals/two-signals-make-one-report.toml",
    "signals/wait-times-out.toml",
    "control/control-flips-before-ready-deliver-once.toml",
    "control/human-control-holds-prompts.toml",
    "control/returned-control-types-the-held-prompt.toml",
    "control/wait-for-idle-under-human-control.toml",
    "bugs/a-timed-out-wait-is-replayed.toml",
    "notifications/a-dropped-batch-needs-review.toml",
    "notifications/a-failed-exit-waits-longer.toml",
    "notifications/a-timed-out-wait-restages.toml",
    "notifications/a-wait-clears-the-staged-batch.toml",
    "notifications/ack-clears-the-batch.toml",
    "notifications/an-exit-is-always-staged.toml",
    "notifications/close-withdraws-the-notification.toml",
    "notifications/idle-after-work-is-staged.toml",
    "notifications/signal-without-a-waiter-is-staged.toml",
    "attacks/a-deregistered-coordinators-token.toml",
    "attacks/a-token-on-another-coordinators-task.toml",
    "attacks/another-coordinators-task-on-the-read-and-wait-routes.toml",
    "attacks/bad-bodies.toml",
    "attacks/bodies-only-where-a-route-takes-one.toml",
    "attacks/creating-a-task-over-rest.toml",
    "attacks/hostile-base-branches.toml",
    "attacks/hostile-task-ids.toml",
    "attacks/names-that-hide-or-turn-text-and-refs-that-are-no-branch.toml",
    "attacks/no-credential-is-401.toml",
    "attacks/non-object-bodies-on-task-routes.toml",
    "attacks/paths-outside-the-api-serve-only-the-page.toml",
    "attacks/two-waits-with-one-request-id.toml",
    "attacks/wait-timeouts-and-whose-wait.toml",
    "attacks/a-coordinator-signals-its-own-task.toml",
    "attacks/a-done-token-on-another-task.toml",
    "attacks/a-done-token-opens-only-its-own-done-route.toml",
    "attacks/a-done-token-with-a-coordinator-header.toml",
    "attacks/a-token-with-another-coordinators-header.toml",
    "attacks/coordinator-id-headers.toml",
    "attacks/the-query-token-and-near-miss-tokens.toml",
    "attacks/where-a-credential-may-stand.toml",
    "attention/an-unrecognised-still-screen-needs-a-human.toml",
    "attention/no-enter-is-pressed-on-a-permission-prompt.toml",
    "detector/a-stray-enter-starts-no-turn.toml",
    "detector/busy-is-not-idle.toml",
    "detector/echo-is-not-a-fresh-prompt.toml",
    "detector/the-terminal-answers-queries.toml",
    "detector/trust-dialog-holds-the-assignment.toml",
    "faults/a-hung-agent-never-signals.toml",
    "faults/an-agent-crash-is-reported.toml",
    "landing/a-tasks-policy-shows-in-its-list-and-status.toml",
    "landing/bad-policies-and-checks-change-nothing.toml",
];

/// Steps (file, step number from 1, fields, why) whose answers' `fields` (a terminal's
/// `output`) depend on how long the real world took to get there (a real agent starts in a few
/// hundred milliseconds, a simulated one at once), and are left out of the comparison.
const LOOSE_STEPS: &[(&str, usize, &[&str], &str)] = &[(
    "attacks/bodies-only-where-a-route-takes-one.toml",
    3,
    &["output"],
    "right after the task was made: the real agent has not printed its first screen",
)];

/// The scenario files that are not played for real, and why. Every file of [`DIRECTORIES`]
/// is in [`SCENARIOS`] or here (`every_scenario_is_played_or_excluded_with_a_reason`).
const EXCLUDED: &[(&str, &str)] = &[
    (
        "coordinator/every-project-holds-the-users-files-in-its-checkout.toml",
        "the app's status is not played for real yet, and the .mcp.json read back names the \
         daemon's own URL",
    ),
    (
        "coordinator/the-coordinators-own-agent-is-typed-its-first-prompt.toml",
        "the app's start_agent and status are not played for real yet (the stand-in `claude` \
         would have to play a coordinator's agent; status shows the daemon's URL and the \
         session's screen, timing)",
    ),
    (
        "notifications/two-tasks-one-batch.toml",
        "both default agents must be idle 2 s in: real ones start later, and the second is \
         often staged after the look at 2 s",
    ),
    (
        "coordinator/merge-into-base-branch.toml",
        "its diff is asked for 1 s after the task is made: the real agent (a terminal, a `baton \
         mcp` process) is not always done by then",
    ),
    (
        "coordinator/the-instruction-block-never-reaches-the-merge.toml",
        "codex and gemini coordinators: the stand-in agent plays only Claude's command line",
    ),
    (
        "coordinator/a-deregistered-coordinators-tasks-are-published-as-orphans.toml",
        "the app's close_task has no app-channel route; the phone's credential (phone access is not started in the real run); the attacker's WebSocket (no real client here yet)",
    ),
    (
        "signals/mcp-waits-have-a-request-id-each.toml",
        "mcp.… calls (the simulator runs `baton mcp`'s code in process)",
    ),
    (
        "signals/wrong-done-token-is-forbidden.toml",
        "a script sends another done token: `baton demo-agent`'s MCP server holds its own",
    ),
    (
        "control/app-closes-a-task-under-human-control.toml",
        "the app's close_task has no app-channel route",
    ),
    (
        "control/app-removes-a-task.toml",
        "the app's remove_task has no app-channel route",
    ),
    (
        "control/control-of-an-unknown-task.toml",
        "the app's close_task has no app-channel route",
    ),
    (
        "control/human-types-into-the-terminal.toml",
        "the app's type needs a terminal attach (WebSocket) client",
    ),
    (
        "notifications/orphaned-task-notifies-the-app.toml",
        "the app's close_task has no app-channel route",
    ),
    (
        "notifications/startup-prompt-is-not-staged.toml",
        "an MCP server that never connects, and staged",
    ),
    (
        "bugs/deregistered-during-create.toml",
        "slow_worktrees: a simulated fault",
    ),
    (
        "bugs/other-methods-and-missing-branches-were-misreported.toml",
        "the attacker's raw requests (covered by the REST API's own tests)",
    ),
    (
        "bugs/signal-during-close.toml",
        "delay and slow_worktrees: simulated faults",
    ),
    (
        "bugs/signal-lost-when-the-waiter-went-away.toml",
        "a partition: a simulated fault",
    ),
    (
        "bugs/stale-glyph-after-a-prompt.toml",
        "the app's task_output has no app-channel route",
    ),
    (
        "attacks/a-cloned-repository-links-agent-files-out-of-the-worktree.toml",
        "a codex coordinator: the stand-in plays Claude's command line only; a gemini coordinator: the stand-in plays Claude's command line only",
    ),
    (
        "attacks/a-coordinator-reads-only-its-own-agents.toml",
        "the attacker's WebSocket (no real client here yet); the phone's credential (phone access is not started in the real run)",
    ),
    (
        "attacks/a-flood-of-prompts-is-bounded.toml",
        "the attacker's WebSocket (no real client here yet)",
    ),
    (
        "attacks/a-foreign-host-or-origin-is-refused.toml",
        "the attacker's WebSocket (no real client here yet); the phone's credential (phone access is not started in the real run)",
    ),
    (
        "attacks/a-linked-gemini-settings-directory-is-not-written-through.toml",
        "a gemini coordinator: the stand-in plays Claude's command line only; symbolic links in the repository",
    ),
    (
        "attacks/a-wait-retried-with-its-request-id-after-a-disconnect.toml",
        "a link partition (the simulator's link plays it)",
    ),
    (
        "attacks/bad-prompts-type-nothing.toml",
        "the attacker's WebSocket (no real client here yet)",
    ),
    (
        "attacks/desktop-messages-are-not-served.toml",
        "the attacker's WebSocket (no real client here yet); the phone's credential (phone access is not started in the real run)",
    ),
    (
        "attacks/half-sent-requests-are-closed.toml",
        "half-sent requests (no real client here yet); the phone's credential (phone access is not started in the real run)",
    ),
    (
        "attacks/hooks-are-a-tasks-own-word.toml",
        "the phone's credential (phone access is not started in the real run)",
    ),
    (
        "attacks/no-coordinator-registered-yet.toml",
        "the phone's credential (phone access is not started in the real run); the app registers mid-run with a coordinator missing (not played)",
    ),
    (
        "attacks/prompts-are-typed-without-control-characters.toml",
        "the phone's credential (phone access is not started in the real run)",
    ),
    (
        "attacks/terminal-input-over-the-websocket.toml",
        "the attacker's WebSocket (no real client here yet); the phone's credential (phone access is not started in the real run)",
    ),
    (
        "attacks/the-phone-cannot-write.toml",
        "the phone's credential (phone access is not started in the real run)",
    ),
    (
        "attacks/the-phone-reads-only-the-agent-routes.toml",
        "the phone's credential (phone access is not started in the real run)",
    ),
    (
        "attacks/there-is-no-telegram-route.toml",
        "the phone's credential (phone access is not started in the real run)",
    ),
    (
        "attacks/tokens-after-a-daemon-restart.toml",
        "a daemon crash at a simulated instant",
    ),
    (
        "attention/a-hook-tells-what-the-screen-does-not-show.toml",
        "the app's type needs a terminal attach (WebSocket) client; the app's staged reads the engine's events (no /app/events client yet)",
    ),
    (
        "attention/a-permission-prompt-needs-a-human.toml",
        "the app's type needs a terminal attach (WebSocket) client; the app's staged reads the engine's events (no /app/events client yet)",
    ),
    (
        "attention/a-signal-wait-hears-that-a-sub-task-needs-a-human.toml",
        "the app's type needs a terminal attach (WebSocket) client; a codex coordinator: the stand-in plays Claude's command line only",
    ),
    (
        "attention/a-tool-beside-a-permission-prompt-does-not-hide-it.toml",
        "the app's type needs a terminal attach (WebSocket) client; an agent firing hooks (the demo agent fires none)",
    ),
    (
        "attention/codex-reports-its-own-state-over-osc.toml",
        "the app's type needs a terminal attach (WebSocket) client; a codex coordinator: the stand-in plays Claude's command line only",
    ),
    (
        "detector/a-recorded-session-replays.toml",
        "an agent replaying a cast (not copied beside the scripts)",
    ),
    (
        "detector/codex-agent-takes-its-assignment.toml",
        "a codex coordinator: the stand-in plays Claude's command line only",
    ),
    (
        "detector/codex-trust-dialog.toml",
        "a codex coordinator: the stand-in plays Claude's command line only",
    ),
    (
        "detector/gemini-agent-takes-its-assignment.toml",
        "a gemini coordinator: the stand-in plays Claude's command line only",
    ),
    (
        "detector/generic-agent-quiet-period.toml",
        "a generic agent: the stand-in plays Claude's command line only",
    ),
    (
        "detector/mcp-that-never-connects.toml",
        "an MCP server that never connects (the simulator's to set)",
    ),
    (
        "detector/the-prompt-waits-for-the-tools.toml",
        "an MCP server's connection time (the simulator's to set)",
    ),
    (
        "faults/a-call-while-the-daemon-is-down.toml",
        "a daemon crash at a simulated instant",
    ),
    (
        "faults/a-cancelled-mcp-wait-consumes-nothing.toml",
        "mcp.… calls (the simulator runs `baton mcp`'s code in process); a cancelled MCP call",
    ),
    (
        "faults/a-crash-while-a-task-is-made.toml",
        "a daemon crash at a simulated instant; slow worktrees (a simulated repository fault)",
    ),
    (
        "faults/a-done-signal-that-cannot-be-saved-is-an-error-not-a-refusal.toml",
        "a full disk (a simulated disk fault)",
    ),
    (
        "faults/a-failed-config-removal-is-reported.toml",
        "a failing removal (a simulated disk fault)",
    ),
    (
        "faults/a-failed-rename-rolls-the-task-back.toml",
        "a failing rename (a simulated disk fault); a codex coordinator: the stand-in plays Claude's command line only",
    ),
    (
        "faults/a-killed-agent-is-reported.toml",
        "kill_agent (not played for real yet: the agent's pid is not looked up)",
    ),
    (
        "faults/a-lost-answer-is-replayed.toml",
        "a lost answer (the simulator's link plays it)",
    ),
    (
        "faults/a-partitioned-coordinator-is-refused.toml",
        "a link partition (the simulator's link plays it)",
    ),
    (
        "faults/a-restart-after-the-assignment-types-it-no-more.toml",
        "a daemon crash at a simulated instant",
    ),
    (
        "faults/a-restart-keeps-prompts-queued-behind-a-human.toml",
        "a daemon crash at a simulated instant",
    ),
    (
        "faults/a-restart-keeps-the-untyped-assignment.toml",
        "a daemon crash at a simulated instant",
    ),
    (
        "faults/a-slow-link-delays-but-loses-nothing.toml",
        "a link delay (the simulator's link plays it)",
    ),
    (
        "faults/a-state-file-that-cannot-be-written-begins-nothing.toml",
        "a full disk (a simulated disk fault)",
    ),
    (
        "faults/a-stuck-worktree-fails-the-close.toml",
        "a stuck worktree (a simulated repository fault)",
    ),
    (
        "faults/a-sub-task-cut-off-retries-its-signal.toml",
        "a link partition (the simulator's link plays it)",
    ),
    (
        "faults/an-mcp-wait-retries-through-a-partition.toml",
        "a link partition (the simulator's link plays it); mcp.… calls (the simulator runs `baton mcp`'s code in process)",
    ),
    (
        "faults/an-mcp-wait-rides-out-a-daemon-restart.toml",
        "a daemon crash at a simulated instant; mcp.… calls (the simulator runs `baton mcp`'s code in process)",
    ),
    (
        "faults/an-mcp-wait-whose-answer-is-lost-is-replayed.toml",
        "a lost answer (the simulator's link plays it); mcp.… calls (the simulator runs `baton mcp`'s code in process)",
    ),
    (
        "faults/daemon-restart-restores-tasks.toml",
        "a daemon crash at a simulated instant",
    ),
    (
        "faults/disk-full-rolls-the-task-back.toml",
        "a full disk (a simulated disk fault); a codex coordinator: the stand-in plays Claude's command line only",
    ),
    (
        "faults/graceful-stop-with-105-waiters.toml",
        "a graceful stop mid-run; parallel copies of a call (not played for real yet)",
    ),
    (
        "faults/partition-during-a-wait-consumes-nothing.toml",
        "a link partition (the simulator's link plays it)",
    ),
    (
        "websocket/a-client-close-is-answered.toml",
        "the attacker's WebSocket (no real client here yet)",
    ),
    (
        "websocket/a-coordinator-drives-only-its-own-agents.toml",
        "the attacker's WebSocket (no real client here yet); the phone's credential (phone access is not started in the real run)",
    ),
    (
        "websocket/a-quiet-connection-hears-a-heartbeat.toml",
        "the attacker's WebSocket (no real client here yet)",
    ),
    (
        "websocket/a-revoked-token-closes.toml",
        "the attacker's WebSocket (no real client here yet)",
    ),
    (
        "websocket/a-wrong-auth-closes.toml",
        "the attacker's WebSocket (no real client here yet)",
    ),
    (
        "websocket/binary-frames.toml",
        "the attacker's WebSocket (no real client here yet)",
    ),
    (
        "websocket/connection-cap.toml",
        "the attacker's WebSocket (no real client here yet); parallel copies of a call (not played for real yet)",
    ),
    (
        "websocket/exits-reach-every-client.toml",
        "the attacker's WebSocket (no real client here yet)",
    ),
    (
        "websocket/message-size.toml",
        "the attacker's WebSocket (no real client here yet)",
    ),
    (
        "websocket/shutdown-closes-every-connection.toml",
        "a graceful stop mid-run; the attacker's WebSocket (no real client here yet)",
    ),
    (
        "websocket/subscriptions.toml",
        "the attacker's WebSocket (no real client here yet); the phone's credential (phone access is not started in the real run)",
    ),
    (
        "websocket/terminal-sizes.toml",
        "the attacker's WebSocket (no real client here yet)",
    ),
    (
        "websocket/the-auth-window.toml",
        "the attacker's WebSocket (no real client here yet)",
    ),
    (
        "websocket/the-list-follows-what-the-detector-reads.toml",
        "the attacker's WebSocket (no real client here yet)",
    ),
    (
        "websocket/the-phone-cannot-write.toml",
        "the attacker's WebSocket (no real client here yet); the phone's credential (phone access is not started in the real run)",
    ),
    (
        "websocket/the-phone-watches-an-agent.toml",
        "the attacker's WebSocket (no real client here yet); the phone's credential (phone access is not started in the real run)",
    ),
    (
        "websocket/tokenless-upgrades-do-not-take-the-authenticated-places.toml",
        "the attacker's WebSocket (no real client here yet); the phone's credential (phone access is not started in the real run)",
    ),
    (
        "websocket/where-the-upgrade-authenticates.toml",
        "the attacker's WebSocket (no real client here yet); the phone's credential (phone access is not started in the real run)",
    ),
];

/// The directories of scenario files: each file in them is played here or excluded with a
/// reason.
const DIRECTORIES: &[&str] = &[
    "coordinator",
    "signals",
    "control",
    "notifications",
    "bugs",
    "attacks",
    "attention",
    "detector",
    "faults",
    "websocket",
    "landing",
];

#[test]
fn every_scenario_is_played_or_excluded_with_a_reason() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    for dir in DIRECTORIES {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let file = format!("{dir}/{name}");
            if !name.ends_with(".toml") {
                continue;
            }
            let played = SCENARIOS.contains(&file.as_str());
            let excluded = EXCLUDED.iter().any(|(f, _)| *f == file);
            assert!(
                played != excluded,
                "{file}: played {played}, excluded {excluded}"
            );
        }
    }
}

/// How long a scenario may run after its last timed step, in wall time: its calls' own
/// timeouts are seconds, and a real daemon answers in milliseconds.
const SCENARIO_WALL_MAX: Duration = Duration::from_secs(40);
/// Scenarios played at once (each has its own daemon; most of a run is waiting for `at` times).
const SCENARIOS_AT_ONCE: usize = 4;
/// How long a stopped daemon has to exit before it is killed.
const DAEMON_EXIT_WAIT: Duration = Duration::from_secs(15);
/// Most steps a scenario played for real may have (a thread each).
const STEPS_MAX: usize = 200;

#[test]
fn scenarios_answer_alike_in_the_simulator_and_against_a_real_daemon() {
    // The longest first (taken from the end), so the short ones fill in beside them.
    let mut queue = SCENARIOS.to_vec();
    queue.sort_by_key(|file| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios")
            .join(file);
        let scenario = baton_sim::scenario::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
        plan(&scenario).1
    });
    let queue = Arc::new(Mutex::new(queue));
    let found = Arc::new(Mutex::new(Vec::<String>::new()));
    let workers: Vec<_> = (0..SCENARIOS_AT_ONCE)
        .map(|_| {
            let (queue, found) = (queue.clone(), found.clone());
            std::thread::spawn(move || {
                loop {
                    let Some(file) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let problems = match std::panic::catch_unwind(|| check(file)) {
                        Ok(problems) => problems,
                        Err(panic) => vec![format!("panicked: {}", panic_text(&*panic))],
                    };
                    if !problems.is_empty() {
                        found
                            .lock()
                            .unwrap()
                            .push(format!("{file}:\n  {}", problems.join("\n  ")));
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let found = found.lock().unwrap();
    assert!(found.is_empty(), "{}", found.join("\n\n"));
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// Plays `file` both ways: everything that differs, every failed expectation.
fn check(file: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let scenario = baton_sim::scenario::parse(&text).unwrap();
    let simulated = runner::run(&scenario, path.parent().unwrap(), None).unwrap();
    let mut problems: Vec<String> = simulated
        .failures
        .iter()
        .map(|f| format!("the simulator: {f}"))
        .collect();
    let real = play_for_real(&scenario);
    problems.extend(real.problems.iter().map(|p| format!("the real run: {p}")));
    problems.extend(compare(
        &normalised(
            file,
            &simulated.answers,
            &Paths::simulated(&simulated.bindings),
        ),
        &normalised(file, &real.answers, &real.paths),
    ));
    problems
}

/// What differs between the two runs' normalised answers, step by step.
fn compare(
    simulated: &BTreeMap<usize, Vec<String>>,
    real: &BTreeMap<usize, Vec<String>>,
) -> Vec<String> {
    let steps: BTreeSet<usize> = simulated.keys().chain(real.keys()).copied().collect();
    let mut problems = Vec::new();
    for step in steps {
        let (a, b) = (
            simulated.get(&step).cloned().unwrap_or_default(),
            real.get(&step).cloned().unwrap_or_default(),
        );
        if a != b {
            let (a, b) = (a.join("\n"), b.join("\n"));
            let at = a
                .chars()
                .zip(b.chars())
                .position(|(x, y)| x != y)
                .unwrap_or_else(|| a.chars().count().min(b.chars().count()));
            let around = |text: &str| -> String {
                let from = at.saturating_sub(DIFF_CONTEXT_CHARS);
                text.chars()
                    .skip(from)
                    .take(2 * DIFF_CONTEXT_CHARS)
                    .collect()
            };
            problems.push(format!(
                "step {} differs at character {at}:\n    simulator: …{}…\n    real:      …{}…",
                step + 1,
                around(&a),
                around(&b)
            ));
        }
    }
    problems
}

/// Characters shown on each side of the first difference.
const DIFF_CONTEXT_CHARS: usize = 300;

/// Where a run's world is, to be read as the simulator's.
struct Paths {
    /// The temporary directory holding `repo`, `repo-<name>` and the state directory.
    root: Option<PathBuf>,
    /// Each coordinator's token, by name.
    tokens: BTreeMap<String, String>,
}

impl Paths {
    /// The simulator's: its paths are the ones compared, its tokens are bound as `token:<name>`.
    fn simulated(bindings: &BTreeMap<String, Value>) -> Paths {
        let tokens = bindings
            .iter()
            .filter_map(|(name, value)| Some((name.strip_prefix("token:")?, value.as_str()?)))
            .map(|(name, token)| (name.to_owned(), token.to_owned()))
            .collect();
        Paths { root: None, tokens }
    }

    fn text(&self, text: &str) -> String {
        let mut text = text.to_owned();
        if let Some(root) = &self.root {
            let root = root.display().to_string();
            text = text
                .replace(&format!("{root}/state/mcp"), "/tmp/baton")
                .replace(&format!("{root}/state"), "/var/baton")
                .replace(&format!("{root}/repo"), "/repo");
        }
        for (name, token) in &self.tokens {
            text = text.replace(token.as_str(), &format!("<token:{name}>"));
        }
        text
    }
}

/// Each step's calls as text, normalised: paths and tokens, then times, then ids numbered by
/// first appearance (steps in order, calls in the order they were answered).
fn normalised(file: &str, answers: &[StepAnswer], paths: &Paths) -> BTreeMap<usize, Vec<String>> {
    let mut by_step: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for answer in answers {
        let shown = match &answer.answer {
            Ok(value) => format!(
                "ok {}",
                canonical_diffs(&without_timing(value, loose(file, answer.step)))
            ),
            Err(error) => format!("error: {error}"),
        };
        let line = format!(
            "{}: {} {} -> {}",
            answer.actor, answer.call, answer.args, shown
        );
        by_step
            .entry(answer.step)
            .or_default()
            .push(times(&paths.text(&line)));
    }
    let mut ids: Vec<String> = Vec::new();
    for lines in by_step.values() {
        for line in lines {
            for id in uuids(line) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
    }
    for lines in by_step.values_mut() {
        for line in lines.iter_mut() {
            for (n, id) in ids.iter().enumerate() {
                *line = line
                    .replace(id.as_str(), &format!("<id{n}>"))
                    .replace(&format!("-{}", &id[..6]), &format!("-<id{n}>"));
            }
        }
    }
    by_step
}

/// A unified diff in one form, git's or the simulator's (whose repository writes no `index` or
/// file mode lines, and always writes a hunk's line count): those lines dropped, every hunk
/// range as `start,count`, and an empty range's start as 0.
fn canonical_diff(diff: &str) -> String {
    let range = |text: &str| -> String {
        let (sign, rest) = text.split_at(1);
        let (start, count) = rest.split_once(',').unwrap_or((rest, "1"));
        let start = if count == "0" { "0" } else { start };
        format!("{sign}{start},{count}")
    };
    diff.lines()
        .filter(|line| {
            !(line.starts_with("index ")
                || line.starts_with("new file mode ")
                || line.starts_with("deleted file mode "))
        })
        .map(
            |line| match line.strip_prefix("@@ ").and_then(|l| l.split_once(" @@")) {
                Some((ranges, rest)) => {
                    let ranges: Vec<String> = ranges.split(' ').map(range).collect();
                    format!("@@ {} @@{rest}", ranges.join(" "))
                }
                None => line.to_owned(),
            },
        )
        .map(|line| line + "\n")
        .collect()
}

/// `value` with every `diff` field's text in its [`canonical_diff`] form.
fn canonical_diffs(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, v)| match (key.as_str(), v) {
                    ("diff", Value::String(text)) => (key.clone(), json!(canonical_diff(text))),
                    _ => (key.clone(), canonical_diffs(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(canonical_diffs).collect()),
        other => other.clone(),
    }
}

/// Fields that are times of the world, not behaviour: what the prompt detector reads at the
/// moment of the call (`agentState`: what it last saw, since when), and when a staged batch
/// fires (`firesAt`: simulated milliseconds from the start, or the epoch's).
const TIMES: &[&str] = &["agentState", "firesAt"];

/// A task's `status` as compared: `running` and `idle` are the prompt detector's reading of the
/// screen at that moment (the prompt showed yet or not, the screen moved since), which a real
/// agent reaches a few hundred milliseconds later than a simulated one and which a real
/// `baton demo-agent` moves by printing its tool calls (`⏺ baton · signal_done({})`, as Claude
/// Code does; the simulator's agent prints nothing for them): both read `running|idle`. Every
/// other status (`exited`, …) is compared as it is.
const RUNNING_OR_IDLE: &str = "running|idle";

/// `value` without its [`TIMES`], nor the `loose` fields (see [`LOOSE_STEPS`]), statuses
/// read as [`RUNNING_OR_IDLE`].
fn without_timing(value: &Value, loose: &[&str]) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| !TIMES.contains(&key.as_str()) && !loose.contains(&key.as_str()))
                .map(|(key, v)| match (key.as_str(), v.as_str()) {
                    ("status", Some("running" | "idle")) => (key.clone(), json!(RUNNING_OR_IDLE)),
                    _ => (key.clone(), without_timing(v, loose)),
                })
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| without_timing(v, loose)).collect())
        }
        other => other.clone(),
    }
}

/// The fields step `step` (from 0) of `file` is compared without.
fn loose(file: &str, step: usize) -> &'static [&'static str] {
    LOOSE_STEPS
        .iter()
        .find(|(f, s, _, _)| *f == file && *s == step + 1)
        .map_or(&[], |(_, _, fields, _)| fields)
}

/// The UUIDs in `text`, in order.
fn uuids(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let shape = |b: &[u8]| {
        b.len() == 36
            && b.iter().enumerate().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => *c == b'-',
                _ => c.is_ascii_hexdigit(),
            })
    };
    let mut at = 0;
    while at + 36 <= bytes.len() {
        if shape(&bytes[at..at + 36]) {
            found.push(text[at..at + 36].to_owned());
            at += 36;
        } else {
            at += 1;
        }
    }
    found
}

/// `text` with every ISO-8601 UTC timestamp (`2023-11-14T22:13:20.123Z`) as `<time>`.
fn times(text: &str) -> String {
    let bytes = text.as_bytes();
    let is_time = |b: &[u8]| {
        b.len() == 24
            && b.iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                10 => *c == b'T',
                13 | 16 => *c == b':',
                19 => *c == b'.',
                23 => *c == b'Z',
                _ => c.is_ascii_digit(),
            })
    };
    let mut out = String::new();
    let mut at = 0;
    while at < bytes.len() {
        if at + 24 <= bytes.len() && is_time(&bytes[at..at + 24]) {
            out.push_str("<time>");
            at += 24;
        } else {
            let c = text[at..].chars().next().unwrap();
            out.push(c);
            at += c.len_utf8();
        }
    }
    out
}

/// The notification batches the engine's events told of (`GET /app/events`), per coordinator
/// id, as the simulator's checker keeps them from the same events.
#[derive(Default)]
struct Notices {
    /// The batch staged now: its id, how many notifications, when it fires (ms since the
    /// epoch) and when it was told (ms since the epoch).
    staged: BTreeMap<String, (String, usize, u64, u64)>,
    /// The batch last staged, staged still or not.
    last: BTreeMap<String, String>,
}

/// Milliseconds since the Unix epoch now: when the app heard of a batch (the simulator's
/// `delayMs` is from then).
#[allow(clippy::disallowed_methods)] // the real run's own clock
fn epoch_ms() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// Listens to the engine's events on the app channel until the daemon ends, keeping the
/// notification batches in `notices`. Returns once it is connected.
fn listen_to_events(state: &Path, notices: Arc<Mutex<Notices>>) {
    use futures_util::StreamExt as _;
    let client = baton_runtime::cli::app::AppClient::new(state);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        common::block_on(async move {
            let mut socket = client.websocket("/app/events").await.unwrap();
            let _ = tx.send(());
            while let Some(Ok(message)) = socket.next().await {
                let Ok(text) = message.into_text() else {
                    continue;
                };
                let Ok(event) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                let coordinator = event["coordinatorId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let mut notices = notices.lock().unwrap();
                match event["type"].as_str() {
                    Some("notification_staged") => {
                        let batch = event["batchId"].as_str().unwrap_or_default().to_owned();
                        let count = event["notificationIds"].as_array().map_or(0, Vec::len);
                        let fires = event["autoFireAt"]
                            .as_str()
                            .and_then(baton_sim::calls::iso_ms)
                            .unwrap_or(0);
                        notices.staged.insert(
                            coordinator.clone(),
                            (batch.clone(), count, fires, epoch_ms()),
                        );
                        notices.last.insert(coordinator, batch);
                    }
                    Some("notification_cleared") => {
                        notices.staged.remove(&coordinator);
                    }
                    _ => {}
                }
            }
        });
    });
    rx.recv_timeout(common::EVENT_WAIT)
        .expect("the app's events connection");
}

/// What a real run gave.
struct RealRun {
    answers: Vec<StepAnswer>,
    problems: Vec<String>,
    paths: Paths,
}

/// A coordinator, registered.
#[derive(Clone)]
struct Registered {
    id: String,
    token: String,
    project: PathBuf,
}

/// A step, with its start resolved as the simulator resolves it.
#[derive(Clone)]
struct Planned {
    index: usize,
    when: When,
    prev: Option<usize>,
    lane_prev: Option<usize>,
    step: baton_sim::scenario::Step,
}

#[derive(Clone, Copy)]
enum When {
    At(u64),
    AfterStart(u64),
    AfterAnswer,
}

/// What the step threads share.
#[derive(Default)]
struct Board {
    bindings: BTreeMap<String, Value>,
    /// Bindings whose step failed.
    missing: BTreeSet<String>,
    started: BTreeMap<usize, Duration>,
    answered: BTreeSet<usize>,
    answers: Vec<StepAnswer>,
    problems: Vec<String>,
}

/// The world a real run plays in.
struct World {
    api: BaseUrl,
    socket: PathBuf,
    coordinators: BTreeMap<String, Registered>,
    /// The first coordinator's project (`/repo`).
    root: PathBuf,
    /// When the run started.
    clock: Clock,
    /// How to read its paths and tokens as the simulator's.
    paths: Paths,
    /// The state directory (the sub-tasks' MCP configs, with their done tokens).
    state: PathBuf,
    /// The tasks made so far, by name: their ids.
    tasks: Mutex<BTreeMap<String, String>>,
    /// When the run gives up on its steps.
    deadline: Duration,
    /// The notification batches, as the engine's events told of them.
    notices: Arc<Mutex<Notices>>,
}

/// Wall time since the run started: a real run is on the wall clock by definition.
#[derive(Clone, Copy)]
struct Clock(std::time::Instant);

impl Clock {
    #[allow(clippy::disallowed_methods)] // the real run's own clock (see the type's doc)
    fn start() -> Clock {
        Clock(std::time::Instant::now())
    }

    fn elapsed(self) -> Duration {
        self.0.elapsed()
    }
}

fn plan(scenario: &Scenario) -> (Vec<Planned>, u64) {
    let mut steps = Vec::new();
    let mut lanes: BTreeMap<(String, Option<String>), usize> = BTreeMap::new();
    let mut last = 0;
    for (index, step) in scenario.steps.iter().enumerate() {
        let when = match step.at.as_deref().map(parse_at).transpose().unwrap() {
            None => When::AfterAnswer,
            Some(At::Absolute(ms)) => When::At(ms),
            Some(At::After(ms)) => When::AfterStart(ms),
        };
        last = match when {
            When::At(ms) => ms,
            When::AfterStart(ms) => last + ms,
            When::AfterAnswer => last,
        };
        steps.push(Planned {
            index,
            when,
            prev: index.checked_sub(1),
            lane_prev: lanes.insert((step.actor.clone(), step.lane.clone()), index),
            step: step.clone(),
        });
    }
    (steps, last)
}

/// The real daemon of one run.
struct RealDaemon {
    child: Child,
    state: PathBuf,
}

impl RealDaemon {
    fn start(state: &Path) -> (RealDaemon, BaseUrl) {
        let log = state.with_extension("stderr");
        let child = common::daemon_command(state, &log)
            // Registering with skip-permissions as root is refused outside a sandbox (Claude
            // Code's own rule): a test machine is one, as the simulator's world is.
            .env("IS_SANDBOX", "1")
            .spawn()
            .unwrap();
        let mut daemon = RealDaemon {
            child,
            state: state.to_owned(),
        };
        let api = common::api_when_ready(&mut daemon.child, &log);
        (daemon, api)
    }

    /// Stops it (SIGTERM; SIGKILL after [`DAEMON_EXIT_WAIT`]) and kills whatever it left
    /// running: what was left, as problems.
    fn stop(mut self) -> Vec<String> {
        let mut problems = Vec::new();
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let (tx, rx) = std::sync::mpsc::channel();
        let mut child = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap());
        let waiter = std::thread::spawn(move || {
            let status = child.wait();
            let _ = tx.send(());
            (child, status)
        });
        if rx.recv_timeout(DAEMON_EXIT_WAIT).is_err() {
            problems.push(format!(
                "the daemon did not exit within {DAEMON_EXIT_WAIT:?} of SIGTERM"
            ));
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        let _ = waiter.join();
        problems.extend(kill_marked(&self.state));
        problems
    }
}

impl Drop for RealDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = kill_marked(&self.state);
    }
}

/// Kills every process carrying the mark of the daemon on `state` (its agents do); what it
/// found, as problems.
fn kill_marked(state: &Path) -> Vec<String> {
    let mark = format!(
        "BATON_DAEMON={}\0",
        baton_runtime::adapters::runaways::DaemonId::of_state_dir(state)
    );
    let mut problems = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return problems;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if !String::from_utf8_lossy(&environ).contains(&mark) {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        {
            continue;
        }
        problems.push(format!("process {pid} outlived its daemon: {stat}"));
        if let Some(pid) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
    problems
}

/// A repository at `dir` as the scenario's world has it.
fn make_repo(dir: &Path, scenario: &Scenario) {
    let repo = &scenario.world.repo;
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", &repo.main]);
    git(dir, &["config", "user.name", "Test"]);
    git(dir, &["config", "user.email", "test@example.com"]);
    for (path, content) in &repo.files {
        write(&dir.join(path), content);
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "--allow-empty", "-m", "init"]);
    for branch in &repo.branches {
        git(dir, &["branch", branch]);
    }
}

fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// The simulator's default agent (`sim::daemon::Script::default_agent`), as a script file.
const DEFAULT_AGENT: &str = r#"script = [
  { print = "startup", pause_ms = 300 },
  { print = "ready" },
]
repeat = [
  { wait_for = "prompt" },
  { print = "busy", pause_ms = 1_000 },
  { print = "ready" },
]
"#;

/// Writes each `[[agent]]`'s script where `baton demo-agent --scripts` finds it, and the
/// `claude` that runs it: the agent the coordinators are registered with.
fn agents(scenario: &Scenario, root: &Path) -> PathBuf {
    let scripts = root.join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    write(&scripts.join("default.toml"), DEFAULT_AGENT);
    for def in &scenario.agents {
        let branch = baton_runtime::core::branch::task_branch(&def.task, uuid_zero());
        let slug = branch
            .strip_prefix("task/")
            .and_then(|b| b.rsplit_once('-'))
            .unwrap()
            .0;
        let list = |items: &[toml::Table]| {
            let items: Vec<String> = items
                .iter()
                .map(|item| inline(&toml::Value::Table(item.clone())))
                .collect();
            match items.is_empty() {
                true => "[]\n".to_owned(),
                false => format!("[\n  {},\n]\n", items.join(",\n  ")),
            }
        };
        write(
            &scripts.join(format!("{slug}.toml")),
            &format!(
                "script = {}repeat = {}",
                list(&def.script),
                list(&def.repeat)
            ),
        );
    }
    let claude = root.join("bin").join("claude");
    write(
        &claude,
        &format!(
            "#!/bin/sh\n# Claude Code's flags come in: the demo agent takes its MCP config.\n\
             config=\nwhile [ $# -gt 0 ]; do\n  if [ \"$1\" = --mcp-config ]; then config=$2; fi\n  \
             shift\ndone\nexec '{BATON}' demo-agent --scripts '{}' --mcp-config \"$config\"\n",
            scripts.display()
        ),
    );
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&claude, std::fs::Permissions::from_mode(0o755)).unwrap();
    claude
}

/// A TOML value as inline TOML (a string in JSON's escapes, which TOML reads alike).
fn inline(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => serde_json::to_string(s).unwrap(),
        toml::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        toml::Value::Table(table) => {
            let fields: Vec<String> = table
                .iter()
                .map(|(k, v)| format!("{} = {}", serde_json::to_string(k).unwrap(), inline(v)))
                .collect();
            format!("{{ {} }}", fields.join(", "))
        }
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
    }
}

fn uuid_zero() -> baton_runtime::core::ids::TaskId {
    "00000000-0000-4000-8000-000000000000".parse().unwrap()
}

/// Plays `scenario` against a real daemon.
fn play_for_real(scenario: &Scenario) -> RealRun {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().canonicalize().unwrap();
    let state = root.join("state");
    let claude = agents(scenario, &root);
    let project_of = |index: usize, name: &str| match index {
        0 => root.join("repo"),
        _ => root.join(format!("repo-{name}")),
    };
    for (index, def) in scenario.coordinators.iter().enumerate() {
        make_repo(&project_of(index, &def.name), scenario);
    }
    if scenario.coordinators.is_empty() {
        make_repo(&root.join("repo"), scenario);
    }
    // The user's files are in every project's checkout, excluded (`info/exclude`), as the
    // simulator has them: an untracked file git sees would make every merge refused.
    let mut projects: Vec<PathBuf> = scenario
        .coordinators
        .iter()
        .enumerate()
        .map(|(index, def)| project_of(index, &def.name))
        .collect();
    if projects.is_empty() {
        projects.push(root.join("repo"));
    }
    for project in &projects {
        let mut exclude = String::new();
        for (path, content) in &scenario.world.files {
            write(&project.join(path), content);
            exclude.push_str(&format!("/{path}\n"));
        }
        if !exclude.is_empty() {
            let info = project.join(".git/info/exclude");
            let mut patterns = std::fs::read_to_string(&info).unwrap_or_default();
            patterns.push_str(&exclude);
            write(&info, &patterns);
        }
    }
    let (daemon, api) = RealDaemon::start(&state);
    let clock = Clock::start();
    let mut world = World {
        api,
        socket: state.join("app.sock"),
        coordinators: BTreeMap::new(),
        root: root.join("repo"),
        clock,
        paths: Paths {
            root: Some(root.clone()),
            tokens: BTreeMap::new(),
        },
        state: state.clone(),
        tasks: Mutex::default(),
        deadline: SCENARIO_WALL_MAX,
        notices: Arc::default(),
    };
    listen_to_events(&state, world.notices.clone());
    let mut board = Board::default();
    let mut problems = Vec::new();
    for (index, def) in scenario.coordinators.iter().enumerate() {
        let project = project_of(index, &def.name);
        let (status, info) = world.app(
            "POST",
            "/app/coordinators",
            Some(json!({
                "projectRoot": project,
                "agent": claude,
                "skipPermissions": def.skip_permissions,
                "notificationDelayMs": def.notification_delay_ms,
            })),
        );
        if status != 201 {
            problems.push(format!("register {}: {status} {info}", def.name));
            continue;
        }
        let config = PathBuf::from(info["mcpConfig"].as_str().unwrap());
        let token = common::credential(&config, "BATON_MCP_TOKEN");
        let id = info["id"].as_str().unwrap().to_owned();
        board.bindings.insert(format!("id:{}", def.name), json!(id));
        board
            .bindings
            .insert(format!("token:{}", def.name), json!(token));
        world
            .coordinators
            .insert(def.name.clone(), Registered { id, token, project });
    }
    world.paths.tokens = world
        .coordinators
        .iter()
        .map(|(name, r)| (name.clone(), r.token.clone()))
        .collect();
    let paths = Paths {
        root: Some(root.clone()),
        tokens: world.paths.tokens.clone(),
    };
    let (steps, horizon_ms) = plan(scenario);
    assert!(steps.len() <= STEPS_MAX, "{} steps", steps.len());
    let deadline = Duration::from_millis(horizon_ms) + SCENARIO_WALL_MAX;
    world.deadline = deadline;
    let world = Arc::new(world);
    let shared = Arc::new((Mutex::new(board), Condvar::new()));
    let threads: Vec<_> = steps
        .into_iter()
        .map(|planned| {
            let (world, shared) = (world.clone(), shared.clone());
            std::thread::spawn(move || run_step(&world, &shared, &planned, deadline))
        })
        .collect();
    // Until every step was answered or the deadline passed: a step left hanging is a failure,
    // and its thread ends when the daemon does.
    {
        let (lock, ready) = &*shared;
        let mut board = lock.lock().unwrap();
        while board.answered.len() < threads.len() && world.clock.elapsed() < deadline {
            let left = deadline.saturating_sub(world.clock.elapsed());
            board = ready.wait_timeout(board, left).unwrap().0;
        }
        for index in 0..threads.len() {
            if !board.answered.contains(&index) {
                problems.push(format!(
                    "step {} was not answered within {deadline:?}",
                    index + 1
                ));
            }
        }
    }
    problems.extend(daemon.stop());
    for thread in threads {
        let _ = thread.join();
    }
    let board = std::mem::take(&mut *shared.0.lock().unwrap());
    problems.extend(board.problems);
    drop(temp);
    RealRun {
        answers: board.answers,
        problems,
        paths,
    }
}

type Shared = (Mutex<Board>, Condvar);

fn run_step(world: &World, shared: &Shared, planned: &Planned, deadline: Duration) {
    let (lock, changed) = shared;
    // Its turn: after the step before it in its lane was answered, and at its time.
    let start = {
        let mut board = lock.lock().unwrap();
        loop {
            let answered = |i: Option<usize>| i.is_none_or(|i| board.answered.contains(&i));
            let ready = answered(planned.lane_prev)
                && match planned.when {
                    When::At(_) => true,
                    When::AfterStart(_) => {
                        planned.prev.is_none_or(|p| board.started.contains_key(&p))
                    }
                    When::AfterAnswer => answered(planned.prev),
                };
            if ready {
                break;
            }
            if world.clock.elapsed() >= deadline {
                return;
            }
            board = changed
                .wait_timeout(board, deadline.saturating_sub(world.clock.elapsed()))
                .unwrap()
                .0;
        }
        match planned.when {
            When::At(ms) => Some(Duration::from_millis(ms)),
            When::AfterStart(ms) => Some(
                planned
                    .prev
                    .and_then(|p| board.started.get(&p).copied())
                    .unwrap_or_default()
                    + Duration::from_millis(ms),
            ),
            When::AfterAnswer => None,
        }
    };
    if let Some(at) = start {
        // The scenario's own clock: the step is timed.
        std::thread::sleep(at.saturating_sub(world.clock.elapsed()));
    }
    {
        let mut board = lock.lock().unwrap();
        board.started.insert(planned.index, world.clock.elapsed());
        changed.notify_all();
    }
    let step = &planned.step;
    let rounds = step.repeat.unwrap_or(1);
    'rounds: for round in 0..rounds {
        let round = step.repeat.map(|_| Value::from(round));
        let mut parts = vec![step.clone()];
        parts.extend(step.then.iter().map(|then| then.as_step(step)));
        for part in &parts {
            if !run_round(world, shared, planned.index, part, round.as_ref()) {
                break 'rounds;
            }
        }
    }
    let mut board = lock.lock().unwrap();
    board.answered.insert(planned.index);
    changed.notify_all();
}

/// One call of a step; `false` when a binding it needs never came.
fn run_round(
    world: &World,
    shared: &Shared,
    index: usize,
    step: &baton_sim::scenario::Step,
    round: Option<&Value>,
) -> bool {
    let (lock, changed) = shared;
    let args = runner::toml_to_json(&toml::Value::Table(step.args.clone()));
    let expect = runner::toml_to_json(&toml::Value::Table(step.expect.clone()));
    let (args, expect) = {
        let mut board = lock.lock().unwrap();
        let mut names = Vec::new();
        placeholders(&args, &mut names);
        placeholders(&expect, &mut names);
        loop {
            let waiting: Vec<&String> = names
                .iter()
                .filter(|n| n.as_str() != "i" && !board.bindings.contains_key(*n))
                .collect();
            if waiting.is_empty() {
                break;
            }
            let late = world.clock.elapsed() >= world.deadline;
            if let Some(name) = waiting.iter().find(|n| late || board.missing.contains(**n)) {
                let line = format!("step {}: ${{{name}}} was never bound", index + 1);
                board.problems.push(line);
                return false;
            }
            let left = world.deadline.saturating_sub(world.clock.elapsed());
            board = changed.wait_timeout(board, left).unwrap().0;
        }
        let mut bindings = board.bindings.clone();
        if let Some(round) = round {
            bindings.insert("i".into(), round.clone());
        }
        (
            runner::replace(&args, &bindings),
            runner::replace(&expect, &bindings),
        )
    };
    let answer = world.call(&step.actor, &step.call, &args);
    if let Ok(Value::Object(task)) = &answer
        && let (Some(Value::String(id)), Some(Value::String(name))) =
            (task.get("id"), task.get("name"))
    {
        world.tasks.lock().unwrap().insert(name.clone(), id.clone());
    }
    let mut board = lock.lock().unwrap();
    // Expectations name the simulator's paths (`/repo/.worktrees/…`).
    // and diffs in the simulator's form: both are read in one form.
    let seen = match &answer {
        Ok(value) => Ok(canonical_diffs(
            &serde_json::from_str(&world.paths.text(&value.to_string())).unwrap(),
        )),
        Err(error) => Err(world.paths.text(error)),
    };
    for problem in runner::expectations(&canonical_diffs(&expect), &seen) {
        board.problems.push(format!(
            "step {} ({}) at {:?}: {problem}",
            index + 1,
            step.call,
            world.clock.elapsed()
        ));
    }
    for (name, path) in &step.bind {
        match answer.as_ref().ok().and_then(|v| runner::lookup(v, path)) {
            Some(found) => {
                board.bindings.insert(name.clone(), found.clone());
            }
            None => {
                board.missing.insert(name.clone());
            }
        }
    }
    board.answers.push(StepAnswer {
        step: index,
        actor: step.actor.clone(),
        call: step.call.clone(),
        args,
        answer,
    });
    changed.notify_all();
    true
}

fn placeholders(value: &Value, names: &mut Vec<String>) {
    match value {
        Value::String(text) => {
            names.extend(baton_sim::scenario::placeholder_names(text).map(str::to_owned))
        }
        Value::Array(items) => items.iter().for_each(|v| placeholders(v, names)),
        Value::Object(map) => map.values().for_each(|v| placeholders(v, names)),
        _ => {}
    }
}

impl World {
    fn app(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        call(
            &UnixSocket(self.socket.clone()),
            &self.api,
            method,
            path,
            None,
            body,
        )
    }

    /// A step's call, answered as the simulator's `calls` answers it.
    fn call(&self, actor: &str, call: &str, args: &Value) -> Answer {
        if actor == "app" {
            return self.app_call(call, args);
        }
        if actor == "attacker" {
            return self.attacker(call, args);
        }
        let Some(registered) = self.coordinators.get(actor) else {
            return Err(format!("no coordinator named {actor:?} was registered"));
        };
        let task = match args.get("taskId") {
            None => None,
            Some(_) => match baton_sim::calls::task_arg(args) {
                Ok(_) => args["taskId"].as_str(),
                Err(error) => return Err(error),
            },
        };
        let Some(endpoint) = baton_runtime::mcp::tools::endpoint_of(call) else {
            return Err(format!("unknown coordinator call {call:?}"));
        };
        let spec = endpoint.spec();
        let path = match (spec.path.contains('{'), task) {
            (true, Some(task)) => endpoint.path_for(task),
            (true, None) => return Err("taskId must be a non-empty string".to_owned()),
            (false, _) => spec.path.to_owned(),
        };
        let body = spec.body.then(|| {
            let mut fields = args.clone();
            if let Some(fields) = fields.as_object_mut() {
                fields.remove("taskId");
            }
            fields
        });
        let (status, value) = common::call(
            &Tcp,
            &self.api,
            spec.method,
            &path,
            Some(&registered.token),
            body,
        );
        if !(200..300).contains(&status) {
            let text = value["error"].as_str().unwrap_or_default();
            return Err(format!("{status} {text}"));
        }
        if call == "wait_for_idle" && value["timedOut"] == true {
            let task = args["taskId"].as_str().unwrap_or_default();
            return Err(format!("Timed out waiting for task {task} to become idle"));
        }
        Ok(value)
    }

    /// The attacker's raw request (`http` only), answered as `{status, body}` as the
    /// simulator's `calls::attacker_http` answers it.
    fn attacker(&self, call: &str, args: &Value) -> Answer {
        if call != "http" {
            return Err(format!("the attacker's {call:?} is not played for real"));
        }
        let text = |field: &str| baton_sim::calls::text(args, field);
        let method = text("method")?.unwrap_or("GET");
        let path = text("path")?.ok_or("path must be a non-empty string")?;
        let mut headers = Vec::new();
        if let Some(token) = self.credential(text("auth")?)? {
            headers.push(("authorization".to_owned(), format!("Bearer {token}")));
        }
        if let Some(Value::Object(extra)) = args.get("headers") {
            for (name, value) in extra {
                let value = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned);
                headers.push((name.clone(), value));
            }
        }
        let body = match args.get("body") {
            None => String::new(),
            Some(Value::String(raw)) => raw.clone(),
            Some(other) => other.to_string(),
        };
        let is_host = |name: &str| name.eq_ignore_ascii_case("host");
        let host = headers
            .iter()
            .find(|(name, _)| is_host(name))
            .map_or_else(|| self.api.authority(), |(_, value)| value.clone());
        headers.retain(|(name, _)| !is_host(name));
        let request = http::encode(&host, method, path, &headers, body.as_bytes());
        let response =
            common::block_on(http::send(&Tcp, &self.api, &request)).map_err(|e| e.to_string())?;
        let page = baton_runtime::api::page::lookup("/").is_ok_and(|p| p.bytes == response.body);
        let body = if page {
            json!(baton_sim::calls::THE_PAGE)
        } else {
            serde_json::from_slice(&response.body).unwrap_or_else(|_| {
                Value::String(String::from_utf8_lossy(&response.body).into_owned())
            })
        };
        Ok(json!({ "status": response.status, "body": body }))
    }

    /// The credential an attacker's `auth` names: a coordinator's name, `done:<task name>`,
    /// `raw:<text>`, or none (the phone is not played for real).
    fn credential(&self, auth: Option<&str>) -> Result<Option<String>, String> {
        Ok(match auth {
            None | Some("none") => None,
            Some(raw) if raw.starts_with("raw:") => Some(raw["raw:".len()..].to_owned()),
            Some(task) if task.starts_with("done:") => {
                let name = &task["done:".len()..];
                let id = self
                    .tasks
                    .lock()
                    .unwrap()
                    .get(name)
                    .cloned()
                    .ok_or_else(|| format!("auth {task:?}: no task named {name:?} was created"))?;
                let config = self.state.join(format!("mcp/baton-subtask-{id}.json"));
                if !config.exists() {
                    return Err(format!("auth {task:?}: its config is gone"));
                }
                Some(common::credential(&config, "BATON_DONE_TOKEN"))
            }
            Some(name) => Some(
                self.coordinators
                    .get(name)
                    .map(|r| r.token.clone())
                    .ok_or_else(|| format!("auth {name:?}: not played for real"))?,
            ),
        })
    }

    fn app_call(&self, call: &str, args: &Value) -> Answer {
        let text = |field: &str| args[field].as_str().map(str::to_owned);
        let refused = |(status, value): (u16, Value)| -> Answer {
            if (200..300).contains(&status) {
                Ok(value)
            } else {
                Err(value["error"].as_str().unwrap_or_default().to_owned())
            }
        };
        let coordinator = || {
            let name = text("coordinator").unwrap_or_default();
            self.coordinators
                .get(&name)
                .ok_or_else(|| format!("no coordinator named {name:?} was registered"))
        };
        match call {
            "deregister" => {
                let id = coordinator()?.id.clone();
                refused(self.app("DELETE", &format!("/app/coordinators/{id}"), None))?;
                Ok(json!({ "ok": true }))
            }
            "take_control" | "release_control" => {
                let task = baton_sim::calls::task_arg(args)?;
                let by = if call == "take_control" {
                    "human"
                } else {
                    "coordinator"
                };
                refused(self.app(
                    "POST",
                    &format!("/app/tasks/{task}/control"),
                    Some(json!({ "controlledBy": by })),
                ))?;
                Ok(json!({ "ok": true }))
            }
            "respawn" => {
                let task = baton_sim::calls::task_arg(args)?;
                let view = refused(self.app("POST", &format!("/app/tasks/{task}/agent"), None))?;
                Ok(json!({ "ok": true, "status": view["status"] }))
            }
            "commit_on_main" | "edit_checkout" => {
                let (Some(path), Some(content)) = (text("path"), text("content")) else {
                    return Err("path and content must be strings".to_owned());
                };
                write(&self.root.join(&path), &content);
                if call == "commit_on_main" {
                    git(&self.root, &["add", "-A", "--", &path]);
                    git(&self.root, &["commit", "-q", "-m", "the user's commit"]);
                }
                Ok(json!({ "ok": true }))
            }
            "read_file" => {
                let path = text("path").ok_or("path must be a string")?;
                let wanted = text("branch");
                let has = |root: &Path, branch: &str| {
                    isolated(&mut Command::new("git"))
                        .arg("-C")
                        .arg(root)
                        .args([
                            "rev-parse",
                            "--verify",
                            "-q",
                            &format!("refs/heads/{branch}"),
                        ])
                        .output()
                        .is_ok_and(|o| o.status.success())
                };
                let root = wanted
                    .as_deref()
                    .and_then(|b| {
                        self.coordinators
                            .values()
                            .map(|r| r.project.as_path())
                            .find(|root| has(root, b))
                    })
                    .unwrap_or(&self.root);
                let branch = match wanted {
                    Some(branch) => branch,
                    None => git(root, &["symbolic-ref", "--short", "HEAD"])
                        .trim()
                        .to_owned(),
                };
                if !has(root, &branch) {
                    return Err(format!("no branch {branch:?}"));
                }
                let committed = isolated(&mut Command::new("git"))
                    .arg("-C")
                    .arg(root)
                    .args(["show", &format!("{branch}:{path}")])
                    .output()
                    .ok()
                    .filter(|o| o.status.success())
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
                let checkout = std::fs::read_to_string(root.join(&path)).ok();
                Ok(json!({ "branch": branch, "committed": committed, "checkout": checkout }))
            }
            "staged" => {
                let id = coordinator()?.id.clone();
                let notices = self.notices.lock().unwrap();
                Ok(match notices.staged.get(&id) {
                    // To the nearest 100 ms: the app hears of a batch a moment after it was
                    // staged, where the simulator's checker hears of it at once.
                    Some((_, count, fires, told)) => json!({
                        "staged": true,
                        "count": count,
                        "firesAt": fires,
                        "delayMs": (fires.saturating_sub(*told) + 50) / 100 * 100,
                    }),
                    None => json!({ "staged": false }),
                })
            }
            "ack_notification" | "drop_notification" => {
                let id = coordinator()?.id.clone();
                let batch = self
                    .notices
                    .lock()
                    .unwrap()
                    .last
                    .get(&id)
                    .cloned()
                    .ok_or("no notification batch was staged for this coordinator")?;
                let path = baton_sim::app::notification_path(&id, &batch, call);
                refused(self.app("POST", &path, None))?;
                let mut notices = self.notices.lock().unwrap();
                if notices.staged.get(&id).is_some_and(|(b, ..)| *b == batch) {
                    notices.staged.remove(&id);
                }
                Ok(json!({ "ok": true }))
            }
            other => Err(format!("the app's {other:?} is not played for real")),
        }
    }
}
