//! The coordinator's own agent: its terminal modelled as a task's agent's is (first prompt
//! behind the prompt and the MCP gate, terminal queries answered, Enter pressed again), and
//! nothing of a task's (waits, signals, notifications, reports) ever about it.

use super::tests::{agent, coordinator, fresh, task_id};
use super::{
    ENTER_RETRY_MS, Effect, FIRST_PROMPT_WAIT_MS_MAX, MCP_CONNECT_TIMEOUT_MS, OwnAgentRunning,
    OwnChange, Status, Terminal, Typed, Wait,
};
use crate::core::detector::Profile;
use crate::core::time::Millis;

/// The texts typed by `effects`, with the terminal each went to.
fn typed(effects: &[Effect]) -> Vec<(Terminal, String)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Type { terminal, text, .. } => Some((*terminal, text.clone())),
            _ => None,
        })
        .collect()
}

/// Whether `effects` hold anything but the own agent's changes, its terminal's writes and its
/// typing: a task's effect, a wait's answer, a notice.
fn only_own(effects: &[Effect]) -> bool {
    effects.iter().all(|e| {
        matches!(
            e,
            Effect::Own(_)
                | Effect::Write { .. }
                | Effect::Type {
                    terminal: Terminal::Own,
                    ..
                }
        )
    })
}

#[test]
fn the_first_prompt_waits_for_the_prompt_and_the_mcp_server_then_is_typed_on_one_line() {
    let mut c = coordinator(0);
    let prompt = "You coordinate.\nSplit the work\x07 in two\x1b[201~";
    c.start_own(Millis(0), agent(50), Profile::Claude, Some(prompt.into()))
        .unwrap();
    assert_eq!(c.terminal_of(agent(50)), Some(Terminal::Own));
    let mut effects = c.on_output(Millis(100), fresh(), Terminal::Own, "❯ ".as_bytes());
    effects.extend(c.tick(Millis(150), fresh()));
    assert!(typed(&effects).is_empty(), "its MCP server is not up");
    let effects = c.own_mcp_connected(Millis(160), fresh());
    assert_eq!(
        typed(&effects),
        [(
            Terminal::Own,
            "You coordinate. Split the work  in two [201~".to_owned()
        )],
        "no control character, no newline without bracketed paste"
    );
    assert!(only_own(&effects), "{effects:?}");
    let own = c.own().unwrap();
    assert!(own.typing && own.assignment.is_none());
    // Typed, the agent shows nothing of it: Enter again, as for a task's prompt.
    assert!(only_own(&c.prompt_typed(
        Millis(200),
        fresh(),
        Terminal::Own,
        Typed::Done
    )));
    let effects = c.tick(Millis(200 + ENTER_RETRY_MS), fresh());
    assert!(
        effects.contains(&Effect::Write {
            agent: agent(50),
            bytes: b"\r"
        }),
        "{effects:?}"
    );
}

#[test]
fn the_first_prompt_goes_out_without_the_mcp_server_after_its_timeout() {
    let mut c = coordinator(0);
    c.start_own(Millis(0), agent(50), Profile::Claude, Some("go".into()))
        .unwrap();
    c.on_output(Millis(100), fresh(), Terminal::Own, "❯ ".as_bytes());
    assert_eq!(
        c.next_deadline(Millis(100))
            .map(|at| at <= Millis(MCP_CONNECT_TIMEOUT_MS)),
        Some(true)
    );
    let effects = c.tick(Millis(MCP_CONNECT_TIMEOUT_MS), fresh());
    assert_eq!(typed(&effects), [(Terminal::Own, "go".to_owned())]);
    assert!(effects.contains(&Effect::Own(OwnChange::McpStartupTimedOut)));
    assert!(only_own(&effects), "{effects:?}");
}

#[test]
fn a_first_prompt_the_agent_never_shows_a_prompt_for_is_dropped_at_its_deadline() {
    let mut c = coordinator(0);
    c.start_own(Millis(0), agent(50), Profile::Claude, Some("go".into()))
        .unwrap();
    c.own_mcp_connected(Millis(10), fresh());
    c.on_output(Millis(20), fresh(), Terminal::Own, b"loading...");
    let effects = c.tick(Millis(FIRST_PROMPT_WAIT_MS_MAX - 1), fresh());
    assert!(
        typed(&effects).is_empty() && only_own(&effects),
        "{effects:?}"
    );
    assert!(c.own().unwrap().assignment.is_some());
    assert_eq!(
        c.next_deadline(Millis(FIRST_PROMPT_WAIT_MS_MAX - 1)),
        Some(Millis(FIRST_PROMPT_WAIT_MS_MAX)),
        "woken for the drop, no poll"
    );
    let effects = c.tick(Millis(FIRST_PROMPT_WAIT_MS_MAX), fresh());
    assert_eq!(effects, [Effect::Own(OwnChange::FirstPromptDropped)]);
    assert!(c.own().unwrap().assignment.is_none());
    // Its prompt, later, types nothing.
    let mut effects = c.on_output(
        Millis(FIRST_PROMPT_WAIT_MS_MAX + 1),
        fresh(),
        Terminal::Own,
        "\x1b[2J❯ ".as_bytes(),
    );
    effects.extend(c.tick(Millis(FIRST_PROMPT_WAIT_MS_MAX + 5_000), fresh()));
    assert!(typed(&effects).is_empty());
}

#[test]
fn terminal_queries_of_the_own_agent_are_answered_from_its_start() {
    let mut c = coordinator(0);
    c.start_own(Millis(0), agent(50), Profile::Claude, None)
        .unwrap();
    let effects = c.on_output(Millis(0), fresh(), Terminal::Own, b"\x1b[6n");
    assert!(
        matches!(effects.as_slice(), [Effect::Write { agent: a, .. }] if *a == agent(50)),
        "{effects:?}"
    );
}

#[test]
fn the_own_agent_starts_once_at_a_time_and_nothing_of_a_tasks_follows_it() {
    let mut c = coordinator(1);
    c.start_own(Millis(0), agent(50), Profile::Claude, None)
        .unwrap();
    assert_eq!(
        c.start_own(Millis(1), agent(51), Profile::Claude, None),
        Err(OwnAgentRunning)
    );
    // A blocked signal wait and an idle wait on the task hear nothing of the own agent.
    let Ok((Wait::Blocked { .. }, _)) = c.wait_for_signal(Millis(2), fresh(), None, None) else {
        panic!("the signal wait blocks");
    };
    let Ok(Wait::Blocked { .. }) = c.wait_for_idle(Millis(2), task_id(1), None) else {
        panic!("the idle wait blocks");
    };
    let mut effects = c.on_output(Millis(10), fresh(), Terminal::Own, "❯ ".as_bytes());
    effects.extend(c.tick(Millis(5_000), fresh()));
    effects.extend(c.on_exit(Millis(6_000), fresh(), Terminal::Own, Some(3)));
    assert!(only_own(&effects), "{effects:?}");
    let own = c.own().unwrap();
    assert_eq!((own.status, own.exit_code), (Status::Exited, Some(3)));
    assert_eq!(c.remaining(), 1, "the own agent is never a task to report");
    // Ended, it may start again; stopped, it is forgotten (nothing left to end).
    c.start_own(Millis(7_000), agent(51), Profile::Claude, None)
        .unwrap();
    assert_eq!(c.stop_own(), Some(agent(51)));
    assert_eq!((c.stop_own(), c.terminal_of(agent(51))), (None, None));
    c.start_own(Millis(8_000), agent(52), Profile::Claude, None)
        .unwrap();
    c.own_failed(agent(52));
    assert!(c.own().is_none());
}
