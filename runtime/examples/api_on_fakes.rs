//! The REST API on loopback over the in-memory ports, for checking the API from outside (CI runs
//! schemathesis against it) until the daemon (`baton daemon`) serves it for real.
//!
//! `cargo run -p baton-runtime --features fakes --example api_on_fakes`
//!
//! Prints one line, `<base url> <coordinator token> <coordinator id>`, then serves until killed.
//! Two coordinators are registered, with a task each, or `TASKS` tasks each (the first argument,
//! at most 64: for load measurements); the token and id printed are the first one's. With
//! `--done-tokens` as the second argument, one line per task of the first coordinator follows,
//! `<task id> <done token>`, for a load client that calls `done` as a sub-task does
//! (`benches/src/bin/wake_load.rs`).
//!
//! Load: `wrk -t1 -c16 -d10s --latency -H "Authorization: Bearer <token>" <url>/api/tasks`

use baton_runtime::api::{self, ApiState, Directory};
use baton_runtime::core::auth::{Secret, TOKEN_BYTES};
use baton_runtime::core::ids::CoordinatorId;
use baton_runtime::engine::{CoordinatorSettings, CreateTask};
use baton_runtime::ports::Entropy;

#[allow(clippy::print_stdout)]
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let fakes = baton_runtime::engine::FakeWorld::new(2026);
    let entropy = fakes.entropy.clone();
    let mut engine = fakes.engine();
    let mut directory = Directory::default();
    let mut first_token = None;
    let tasks: usize = std::env::args()
        .nth(1)
        .map_or(Ok(1), |n| n.parse())
        .map_err(|_| anyhow::anyhow!("the argument is how many tasks each coordinator gets"))?;
    let print_done_tokens = std::env::args().nth(2).as_deref() == Some("--done-tokens");
    let tasks = tasks.clamp(
        1,
        baton_runtime::core::coordinator::TASKS_PER_COORDINATOR_MAX,
    );
    for n in 1..=2u8 {
        let id = CoordinatorId::from_random([n; 16]);
        let settings = CoordinatorSettings::new("/repo", "claude", "/tmp/baton-api-on-fakes");
        let handle = engine.register(id, settings);
        for k in 0..tasks {
            let request = CreateTask {
                name: if tasks == 1 {
                    format!("task-{n}")
                } else {
                    format!("task-{n}-{k}")
                },
                prompt: None,
                base_branch: None,
                agent_command: None,
                agent_args: None,
                policy: baton_runtime::core::coordinator::Policy::Review,
                checks: Vec::new(),
            };
            handle.create_task(request).await?;
        }
        let mut bytes = [0; TOKEN_BYTES];
        entropy.fill(&mut bytes);
        let token = Secret::from_random(bytes);
        if first_token.is_none() {
            first_token = Some((token.expose().to_owned(), id, handle.records().await?));
        }
        directory.credentials.register(id, token);
        directory.coordinators.insert(id, handle);
    }
    let (_publish, latest) = baton_runtime::api::latest::channel(directory);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (token, id, records) =
        first_token.ok_or_else(|| anyhow::anyhow!("no coordinator registered"))?;
    // Every line in one write: a reader that stops after the first line and closes the pipe
    // cannot make a later write fail.
    let mut ready = format!("http://{address} {token} {id}\n");
    if print_done_tokens {
        for task in &records.tasks {
            if let Some(done) = &task.spec.done_token {
                ready.push_str(&format!("{} {}\n", task.spec.id, done.expose()));
            }
        }
    }
    print!("{ready}");
    std::io::Write::flush(&mut std::io::stdout())?;
    let state = ApiState::new(latest, engine.agent_feed());
    let listening = api::Listening::loopback(address.port());
    api::serve(listener, state, listening, std::future::pending()).await?;
    Ok(())
}
