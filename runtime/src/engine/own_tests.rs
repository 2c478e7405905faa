//! A coordinator's own agent, owned by its actor as its tasks' agents are: spawned, pumped,
//! watched through the same viewers, typed into through the same writer, listed on the same
//! feed, its first prompt typed as a sub-task's assignment is, ended when its coordinator is
//! deregistered. Fake ports, tokio's paused clock.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

use super::tests::viewer;
use super::{
    APP_EVENTS_MAX, AgentEvent, AgentFeed, CoordinatorHandle, CoordinatorSettings, EngineError,
    FakeWorld, OwnAgentStart, TerminalInput, Watched, spawn_coordinator,
};
use crate::agents::frames::{Frame, bytes};
use crate::core::coordinator::FIRST_PROMPT_WAIT_MS_MAX;
use crate::core::detector::Profile;
use crate::core::ids::{AgentId, CoordinatorId, Uuid};
use crate::core::state::AgentState;
use crate::ports::fakes::FakePty;
use crate::ports::{ExitStatus, SpawnSpec};

/// Longest a test waits for the actor to tell something (simulated time: a missing event
/// fails at once).
const TOLD_WAIT: Duration = Duration::from_secs(60);

fn agent() -> AgentId {
    AgentId(Uuid::from_random([2; 16]))
}

/// How the own agent starts (Claude's kind, 100 columns), with `first_prompt`.
fn start(first_prompt: Option<&str>) -> OwnAgentStart {
    OwnAgentStart {
        spawn: SpawnSpec {
            agent: agent(),
            argv: vec!["claude".to_owned()],
            env: Vec::new(),
            cwd: "/repo".into(),
            cols: 100,
            rows: 30,
        },
        profile: Profile::Claude,
        first_prompt: first_prompt.map(Into::into),
    }
}

async fn told(feed: &mut broadcast::Receiver<AgentEvent>) -> AgentEvent {
    tokio::time::timeout(TOLD_WAIT, feed.recv())
        .await
        .expect("the feed was told nothing")
        .unwrap()
}

/// A coordinator without tasks on fake ports (its app events read and dropped), its
/// terminals, and a listener to its feed.
fn world() -> (
    Arc<FakePty>,
    CoordinatorHandle,
    broadcast::Receiver<AgentEvent>,
) {
    let world = FakeWorld::new(1);
    let feed = AgentFeed::new();
    let events = feed.subscribe();
    let (app, mut drained) = mpsc::channel(APP_EVENTS_MAX);
    tokio::spawn(async move { while drained.recv().await.is_some() {} });
    let handle = spawn_coordinator(
        world.ports.clone(),
        CoordinatorId(Uuid::from_random([1; 16])),
        CoordinatorSettings::new("/repo", "claude", "/tmp/baton"),
        app,
        feed,
    );
    (world.pty, handle, events)
}

#[tokio::test(start_paused = true)]
async fn a_coordinators_agent_is_watched_and_told_to_the_feed_as_a_tasks_agent_is() {
    let (pty, handle, mut events) = world();
    assert_eq!(handle.start_own_agent(start(None)).await.unwrap(), agent());
    assert_eq!(told(&mut events).await, AgentEvent::ListChanged, "started");
    let stranger = AgentId(Uuid::from_random([3; 16]));
    assert!(matches!(
        handle.watch(stranger, viewer(1, 8).0).await,
        Err(EngineError::Missing(_))
    ));
    assert!(
        matches!(
            handle.start_own_agent(start(None)).await,
            Err(EngineError::Conflict(_))
        ),
        "one at a time"
    );

    // Its prompt: once it stood, the state it is seen in changes, so the list is told.
    let ready = bytes(Profile::Claude, Frame::Ready);
    pty.print(agent(), &ready).await.unwrap();
    assert_eq!(
        told(&mut events).await,
        AgentEvent::ListChanged,
        "at its prompt"
    );
    let own = handle.own_agent().await.unwrap().unwrap();
    assert_eq!(own.state.state, AgentState::WaitingForInput);
    assert_eq!(
        (own.last_line.as_str(), own.program.as_str()),
        ("❯ ", "claude")
    );
    let listed = handle.agents().await.unwrap();
    assert_eq!(listed.own.map(|own| own.agent), Some(agent()));
    assert!(listed.agents.is_empty(), "no task");

    // Watched: its scrollback, then its output; a viewer that falls behind is let go.
    let (watcher, mut watched) = viewer(1, 8);
    let (slow, _never_read) = viewer(2, 1);
    let slow_overflowed = slow.overflowed.clone();
    let watching = handle.watch(agent(), watcher).await.unwrap();
    assert_eq!(
        (watching.scrollback, watching.cols, watching.exited),
        (ready.clone(), 100, None)
    );
    assert!(handle.watch(agent(), slow).await.is_ok());
    // The same screen again changes nothing the list shows: nothing is told.
    for _ in 0..2 {
        pty.print(agent(), &ready).await.unwrap();
        // Apart: output waiting together goes to the actor as one event.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for _ in 0..2 {
        let next = tokio::time::timeout(TOLD_WAIT, watched.recv())
            .await
            .unwrap();
        assert_eq!(next, Some(Watched::Output(agent(), ready.clone().into())));
    }
    tokio::time::timeout(TOLD_WAIT, slow_overflowed.notified())
        .await
        .expect("the slow viewer was not let go");
    assert!(
        events.is_empty(),
        "told of a screen that changed nothing listed"
    );

    // Its end: handed to its viewer before the feed hears of it, then the list.
    let status = ExitStatus {
        code: Some(3),
        signal: None,
    };
    pty.exit(agent(), status).await.unwrap();
    let exited = AgentEvent::Exited {
        agent: agent(),
        code: Some(3),
    };
    assert_eq!(told(&mut events).await, exited);
    assert_eq!(watched.try_recv(), Ok(Watched::Exited(agent(), Some(3))));
    assert_eq!(told(&mut events).await, AgentEvent::ListChanged);
    let own = handle.own_agent().await.unwrap().unwrap();
    assert_eq!(own.state.state, AgentState::Exited);
    assert_eq!(
        (own.exit.and_then(|e| e.code), own.readiness),
        (Some(3), None)
    );
    // Watched after its end: the scrollback and the exit, and no viewer kept.
    let (late, mut late_watched) = viewer(3, 8);
    let watching = handle.watch(agent(), late).await.unwrap();
    assert_eq!(watching.exited, Some(Some(3)));
    assert_eq!(late_watched.recv().await, None, "the actor kept no viewer");

    // Forgotten once its coordinator is deregistered, told once; again, nothing to tell.
    handle.deregister().await.unwrap();
    assert_eq!(told(&mut events).await, AgentEvent::ListChanged, "stopped");
    assert!(handle.watch(agent(), viewer(4, 8).0).await.is_err());
    assert_eq!(handle.own_agent().await.unwrap(), None);
    handle.deregister().await.unwrap();
    assert!(events.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_coordinators_first_prompt_is_typed_as_a_sub_tasks_is() {
    let (pty, handle, _events) = world();
    let prompt = "You coordinate.\nSplit the work\x07 in two\x1b[201~";
    handle.start_own_agent(start(Some(prompt))).await.unwrap();
    // An agent without bracketed paste, at its prompt: nothing before its MCP server is in.
    pty.print(agent(), &bytes(Profile::Claude, Frame::Ready))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5_000)).await;
    assert!(
        pty.input(agent()).is_empty(),
        "typed before its tools are in"
    );
    handle.coordinator_mcp_connected().await.unwrap();
    tokio::time::sleep(Duration::from_millis(5_000)).await;
    let typed = String::from_utf8(pty.input(agent())).unwrap();
    assert!(
        typed.starts_with("You coordinate. Split the work  in two [201~\r"),
        "one line, no control character: {typed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_first_prompt_the_agent_never_shows_a_prompt_for_is_dropped() {
    let (pty, handle, _events) = world();
    handle.start_own_agent(start(Some("go"))).await.unwrap();
    handle.coordinator_mcp_connected().await.unwrap();
    tokio::time::sleep(Duration::from_millis(FIRST_PROMPT_WAIT_MS_MAX + 1_000)).await;
    pty.print(agent(), &bytes(Profile::Claude, Frame::Ready))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(10_000)).await;
    assert!(pty.input(agent()).is_empty(), "typed after its deadline");
    // Typed into by its viewer, through the terminal's writer.
    handle
        .terminal(agent(), TerminalInput::Write(b"by hand\r".to_vec()))
        .await
        .unwrap();
    assert_eq!(pty.input(agent()), b"by hand\r");
}

#[tokio::test(start_paused = true)]
async fn the_terminal_queries_of_a_coordinators_agent_are_answered_and_it_ends_with_its_coordinator()
 {
    let (pty, handle, _events) = world();
    handle.start_own_agent(start(None)).await.unwrap();
    // Claude Code stalls at start until its terminal answers where the cursor is.
    pty.print(agent(), b"\x1b[6n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        pty.input(agent()).starts_with(b"\x1b["),
        "{:?}",
        pty.input(agent())
    );
    assert!(pty.is_alive(agent()));
    handle.deregister().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!pty.is_alive(agent()), "killed with its coordinator");
}

#[tokio::test(start_paused = true)]
async fn an_unwatched_viewer_gets_nothing_more() {
    let (pty, handle, _events) = world();
    handle.start_own_agent(start(None)).await.unwrap();
    let (watcher, mut watched) = viewer(7, 8);
    let _ = handle.watch(agent(), watcher).await.unwrap();
    pty.print(agent(), b"one").await.unwrap();
    let next = tokio::time::timeout(TOLD_WAIT, watched.recv())
        .await
        .unwrap();
    assert_eq!(next, Some(Watched::Output(agent(), b"one".to_vec().into())));
    handle.unwatch(agent(), 7).await.unwrap();
    pty.print(agent(), b"two").await.unwrap();
    // The actor let go of the viewer's queue: it ends, without "two".
    assert_eq!(watched.recv().await, None);
}

#[tokio::test(start_paused = true)]
async fn an_own_agent_that_cannot_spawn_is_forgotten_and_may_start_again() {
    let (pty, handle, _events) = world();
    pty.fail_next_spawn("no such program");
    let failed = handle.start_own_agent(start(None)).await;
    assert!(
        matches!(&failed, Err(EngineError::Io(text)) if text.contains("no such program")),
        "{failed:?}"
    );
    assert_eq!(handle.own_agent().await.unwrap(), None);
    assert_eq!(handle.start_own_agent(start(None)).await.unwrap(), agent());
}
