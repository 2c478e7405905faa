//! The engine on turmoil's simulated time: the reference's full-lifecycle sequence (§9.2 S1)
//! traced step by step, and the same seed giving the same trace.

use baton_runtime::core::ids::CoordinatorId;
use baton_runtime::engine::CreateTask;
use baton_sim::trace::Trace;
use baton_sim::world::{self, Daemon};

/// Create `feat-x`, let its agent take the assignment, go idle, signal done, be waited for and
/// closed.
fn full_lifecycle(seed: u64) -> Trace {
    world::run(seed, |mut daemon: Daemon| async move {
        let coordinator = daemon
            .engine
            .register(CoordinatorId::from_random([1; 16]), Daemon::settings());
        let request = CreateTask {
            name: "feat-x".into(),
            prompt: Some("Implement feat-x".into()),
            base_branch: None,
            agent_command: None,
            agent_args: None,
        };
        let task = coordinator.create_task(request).await?;
        daemon.record(
            "coordinator",
            format!("create_task -> {} {:?}", task.branch, task.status),
        );
        let agent = daemon.pty.spawned()[0].agent;
        coordinator.mcp_connected(task.id).await?;
        daemon.pty.print(agent, "\x1b[?2004h❯ ".as_bytes()).await?;
        daemon.pause(3_000).await;
        let typed = String::from_utf8_lossy(&daemon.pty.input(agent)).into_owned();
        daemon.record("agent", format!("input {typed:?}"));
        daemon
            .pty
            .print(agent, "✻ Working… (esc to interrupt)\r\n".as_bytes())
            .await?;
        daemon.pause(1_000).await;
        daemon.pty.print(agent, "\x1b[2J❯ ".as_bytes()).await?;
        let idle = coordinator.wait_for_idle(task.id, None).await?;
        daemon.record("coordinator", format!("wait_for_idle -> {idle:?}"));
        let token = daemon.done_token(task.id).unwrap_or_default();
        coordinator.signal_done(task.id, token).await?;
        daemon.record("sub-task", "signal_done -> ok");
        let outcome = coordinator.wait_for_signal(None, Some(1_000)).await?;
        daemon.record(
            "coordinator",
            format!("wait_for_signal_done -> {outcome:?}"),
        );
        coordinator.close_task(task.id).await?;
        let left = coordinator.list_tasks().await?.len();
        daemon.record(
            "coordinator",
            format!("close_task -> ok, {left} task(s) listed"),
        );
        Ok(daemon)
    })
    .expect("the simulation runs")
}

#[test]
fn the_full_lifecycle_on_simulated_time() {
    let trace = full_lifecycle(7);
    insta::with_settings!({
        snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"),
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!("sim_full_lifecycle", trace.render());
    });
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    assert_eq!(full_lifecycle(11).render(), full_lifecycle(11).render());
}

/// A scripted agent starts, takes its assignment, works and signals done while its coordinator
/// waits for a signal.
fn scripted_agent_signals(seed: u64) -> Trace {
    use baton_runtime::core::detector::Profile;
    use baton_sim::agent::{self, Action, Seat};
    use baton_sim::frames::Frame;

    world::run(seed, |mut daemon: Daemon| async move {
        let coordinator = daemon
            .engine
            .register(CoordinatorId::from_random([2; 16]), Daemon::settings());
        let request = CreateTask {
            name: "fix-login".into(),
            prompt: Some("Fix the login bug".into()),
            base_branch: None,
            agent_command: None,
            agent_args: None,
        };
        let task = coordinator.create_task(request).await?;
        daemon.record("coordinator", format!("create_task -> {}", task.branch));
        let seat = Seat {
            pty: daemon.pty.clone(),
            agent: daemon.pty.spawned()[0].agent,
            profile: Profile::Claude,
            typed: None,
            repo: None,
            mcp: std::sync::Arc::new(baton_sim::agent::DirectMcp {
                coordinator: coordinator.clone(),
                task: task.id,
            }),
            done_token: daemon.done_token(task.id).unwrap_or_default(),
            recorder: daemon.recorder(),
            name: "agent fix-login".into(),
        };
        let script = [
            Action::Print(Frame::Startup),
            Action::Pause(500),
            Action::Print(Frame::Ready),
            Action::WaitForPrompt,
            Action::Print(Frame::Busy),
            Action::Pause(2_000),
            Action::SignalDone(None),
            Action::Print(Frame::Ready),
        ];
        let agent_run = tokio::spawn(async move { agent::run(&seat, &script).await });
        daemon.pause(100).await;
        coordinator.mcp_connected(task.id).await?;
        let outcome = coordinator.wait_for_signal(None, Some(60_000)).await?;
        daemon.record(
            "coordinator",
            format!("wait_for_signal_done -> {outcome:?}"),
        );
        agent_run.await?.map_err(anyhow::Error::msg)?;
        Ok(daemon)
    })
    .expect("the simulation runs")
}

#[test]
fn a_scripted_agent_signals_while_its_coordinator_waits() {
    let trace = scripted_agent_signals(3);
    insta::with_settings!({
        snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"),
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!("sim_scripted_agent_signals", trace.render());
    });
    assert_eq!(trace.render(), scripted_agent_signals(3).render());
}
