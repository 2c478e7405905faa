//! How fast the simulated world runs: five scripted agents working for ten simulated minutes
//! under one coordinator that waits for their signals and prompts them again. Prints simulated
//! seconds per wall second.
//!
//! `cargo run --release -p baton-sim --example sim_speed [seed]`

use std::time::Instant;

use baton_runtime::core::coordinator::SignalOutcome;
use baton_runtime::core::detector::Profile;
use baton_runtime::core::ids::CoordinatorId;
use baton_runtime::engine::CreateTask;
use baton_sim::agent::{self, Action, Seat};
use baton_sim::frames::Frame;
use baton_sim::world::{self, Daemon};

const AGENTS: usize = 5;
const SIMULATED_MS: u64 = 10 * 60 * 1_000;
const ROUNDS_PER_AGENT: usize = 200;

#[allow(clippy::print_stdout, clippy::disallowed_methods)]
fn main() -> anyhow::Result<()> {
    let seed = std::env::args()
        .nth(1)
        .map_or(Ok(1), |arg| arg.parse::<u64>())?;
    // Wall time is what this measures: the one place a real clock is read.
    let started = Instant::now();
    let trace = world::run(seed, |mut daemon: Daemon| async move {
        let coordinator = daemon
            .engine
            .register(CoordinatorId::from_random([5; 16]), Daemon::settings());
        let mut agents = Vec::new();
        for n in 0..AGENTS {
            let request = CreateTask {
                name: format!("task-{n}"),
                prompt: Some(format!("Do part {n}")),
                base_branch: None,
                agent_command: None,
                agent_args: None,
            };
            let task = coordinator.create_task(request).await?;
            let seat = Seat {
                pty: daemon.pty.clone(),
                agent: daemon.pty.spawned()[n].agent,
                profile: Profile::Claude,
                typed: None,
                repo: None,
                mcp: std::sync::Arc::new(baton_sim::agent::DirectMcp {
                    coordinator: coordinator.clone(),
                    task: task.id,
                }),
                done_token: daemon.done_token(task.id).unwrap_or_default(),
                recorder: daemon.recorder(),
                name: format!("agent task-{n}"),
            };
            let mut script = vec![Action::Print(Frame::Startup), Action::Pause(500)];
            for round in 0..ROUNDS_PER_AGENT {
                script.extend([
                    Action::Print(Frame::Ready),
                    Action::WaitForPrompt,
                    Action::Print(Frame::Busy),
                    Action::Pause(5_000 + 1_000 * ((n + round) % 7) as u64),
                    Action::SignalDone(None),
                ]);
            }
            agents.push(tokio::spawn(
                async move { agent::run(&seat, &script).await },
            ));
            coordinator.mcp_connected(task.id).await?;
        }
        let mut signals = 0u64;
        while daemon.elapsed_ms() < SIMULATED_MS {
            if let SignalOutcome::Task { task, .. } =
                coordinator.wait_for_signal(None, Some(60_000)).await?
            {
                signals += 1;
                coordinator.send_prompt(task, "next part".into()).await?;
            }
        }
        daemon.record("coordinator", format!("{signals} signals in all"));
        for agent in agents {
            agent.abort();
        }
        Ok(daemon)
    })?;
    let wall = started.elapsed().as_secs_f64();
    let simulated = SIMULATED_MS as f64 / 1_000.0;
    println!(
        "{AGENTS} agents, {simulated:.0} simulated s in {wall:.3} wall s: {:.0}x real time; {} trace lines; {}",
        simulated / wall,
        trace.lines().len(),
        trace.lines().last().map_or("", String::as_str)
    );
    Ok(())
}
