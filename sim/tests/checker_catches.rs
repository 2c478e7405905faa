//! The checker is honest: worlds that break an invariant or an expectation fail, naming the
//! step and what differed. Each scenario here is written to fail.

use std::path::Path;

use baton_sim::runner::{self, Outcome};
use baton_sim::scenario;

fn run(text: &str) -> Outcome {
    let scenario = scenario::parse(text).expect("a valid scenario");
    runner::run(&scenario, Path::new("."), None).expect("the simulation runs")
}

const AGENT: &str = r#"
[[coordinator]]
name = "coord-1"

[[agent]]
task = "t"
script = [{ print = "ready" }, { wait_for = "prompt" }, { print = "busy", pause_ms = 1_000 }, { call = "signal_done" }, { print = "ready" }]
"#;

#[test]
fn a_signal_whose_answer_was_lost_and_never_asked_again_is_lost() {
    let outcome = run(&format!(
        r#"format = 1
name = "lost"
{AGENT}
[[step]]
actor = "coord-1"
call = "create_task"
args = {{ name = "t", prompt = "go" }}

[[step]]
actor = "coord-1"
call = "wait_for_signal_done"
args = {{ timeoutMs = 60_000, requestId = "r" }}
expect = {{ error = "response lost" }}

[[fault]]
at = "100ms"
kind = "drop_response"
between = ["coord-1", "daemon"]
"#
    ));
    assert_eq!(outcome.failures.len(), 1, "{:?}", outcome.failures);
    assert!(
        outcome.failures[0].starts_with("invariant signals: the signal t gave at t=")
            && outcome.failures[0].ends_with("was never delivered (at the end)"),
        "{:?}",
        outcome.failures
    );
}

#[test]
fn a_task_the_app_removed_leaves_its_worktree_and_agent_behind() {
    let outcome = run(&format!(
        r#"format = 1
name = "leak"
{AGENT}
[[step]]
actor = "coord-1"
call = "create_task"
args = {{ name = "t" }}
bind = {{ task = "id" }}

[[step]]
at = "1s"
actor = "app"
call = "remove_task"
args = {{ taskId = "${{task}}" }}
"#
    ));
    let failures = outcome.failures.join("\n");
    assert!(
        failures.contains("cleanup: t is gone, its worktree remains"),
        "{failures}"
    );
    assert!(
        failures.contains("cleanup: an agent still runs in /repo/.worktrees/task/t-"),
        "{failures}"
    );
}

#[test]
fn a_failed_expectation_names_the_step_the_field_and_both_values() {
    let outcome = run(r#"format = 1
name = "wrong"

[[coordinator]]
name = "coord-1"

[[step]]
actor = "coord-1"
call = "create_task"
args = { name = "t" }
expect = { status = "idle", name = "t" }
"#);
    assert_eq!(outcome.failures.len(), 2, "{:?}", outcome.failures);
    assert!(
        outcome.failures[0].starts_with("step 1 (create_task) at t=")
            && outcome.failures[0].ends_with(": .status: expected \"idle\", got \"running\""),
        "{}",
        outcome.failures[0]
    );
    assert!(outcome.failures[1].contains("the whole answer: {"));
    assert!(
        outcome
            .trace
            .render()
            .contains("check: !! step 1 (create_task)")
    );
}

#[test]
fn a_step_never_answered_is_a_failure() {
    let outcome = run(r#"format = 1
name = "hangs"

[[coordinator]]
name = "coord-1"

[[step]]
actor = "coord-1"
call = "wait_for_signal_done"
args = { timeoutMs = 600_000 }

[end]
within = "10s"
"#);
    assert_eq!(
        outcome.failures,
        ["step 1 (wait_for_signal_done by coord-1) was not answered by t=10000"]
    );
}

#[test]
fn a_users_mcp_json_that_lost_a_server_beside_batons_entry_is_caught() {
    // The coordinator stays registered, so its `.mcp.json` may hold Baton's entry; the user's
    // own server must still be there.
    let outcome = run(r#"format = 1
name = "clobbered"

[world]
files = { ".mcp.json" = "{ \"mcpServers\": { \"mine\": { \"command\": \"my-server\" } } }\n" }

[[coordinator]]
name = "coord-1"

[[step]]
actor = "app"
call = "edit_checkout"
args = { path = ".mcp.json", content = "{ \"mcpServers\": { \"baton\": { \"command\": \"baton\" } } }\n" }
"#);
    assert_eq!(
        outcome.failures,
        ["invariant user_files: .mcp.json changed (or went missing) (at the end)"],
    );
}
