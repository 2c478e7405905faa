//! The REST API on loopback over the in-memory ports, for checking the API from outside (CI runs
//! schemathesis against it) until the daemon (`baton daemon`) serves it for real.
//!
//! `cargo run -p baton-runtime --features fakes --example api_on_fakes`
//!
//! Prints one line, `<base url> <coordinator token>`, then serves until killed. Two coordinators
//! are registered, with a task each; the token printed is the first one's.

use std::path::Path;
use std::sync::Arc;

use baton_runtime::api::{self, ApiState, Directory};
use baton_runtime::core::auth::{Secret, TOKEN_BYTES};
use baton_runtime::core::ids::CoordinatorId;
use baton_runtime::core::time::Millis;
use baton_runtime::engine::{CoordinatorSettings, CreateTask, Engine, Ports, SpawnDefaults};
use baton_runtime::ports::Entropy;
use baton_runtime::ports::fakes::{FakeClock, FakeFiles, FakePty, FakeRepo, SeededEntropy};
use tokio::sync::{mpsc, watch};

#[allow(clippy::print_stdout)]
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let repo = Arc::new(FakeRepo::default());
    repo.add_repo(Path::new("/repo"), "main");
    let entropy = Arc::new(SeededEntropy::new(2026));
    let ports = Ports {
        clock: Arc::new(FakeClock::starting_at(Millis(1_700_000_000_000))),
        entropy: entropy.clone(),
        pty: Arc::new(FakePty::default()),
        repo,
        files: Arc::new(FakeFiles::default()),
    };
    let (events, mut drained) = mpsc::channel(baton_runtime::engine::APP_EVENTS_MAX);
    tokio::spawn(async move { while drained.recv().await.is_some() {} });
    let mut engine = Engine::new(ports, events);
    let mut directory = Directory::default();
    let mut first_token = None;
    for n in 1..=2u8 {
        let id = CoordinatorId::from_random([n; 16]);
        let settings = CoordinatorSettings {
            project_root: "/repo".into(),
            spawn: SpawnDefaults {
                command: "claude".into(),
                args: Vec::new(),
            },
            skip_permissions: false,
            notification_delay_ms: 30_000,
            config_dir: "/tmp/baton-api-on-fakes".into(),
        };
        let handle = engine.register(id, settings);
        let request = CreateTask {
            name: format!("task-{n}"),
            prompt: None,
            base_branch: None,
            agent_command: None,
            agent_args: None,
        };
        handle.create_task(request).await?;
        let mut bytes = [0; TOKEN_BYTES];
        entropy.fill(&mut bytes);
        let token = Secret::from_random(bytes);
        first_token.get_or_insert_with(|| token.expose().to_owned());
        directory.credentials.register(id, token);
        directory.coordinators.insert(id, handle);
    }
    let (_publish, latest) = watch::channel(Arc::new(directory));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    println!("http://{address} {}", first_token.unwrap_or_default());
    api::serve(listener, ApiState::new(latest), std::future::pending()).await?;
    Ok(())
}
