//! The registry's state file, written through its journal: when a save is written and when not.

use std::path::Path;
use std::sync::Arc;

use super::{Layout, RegisterRequest, Registry, RegistryJournal, channel};
use crate::agents::McpLaunch;
use crate::api::Directory;
use crate::core::coordinator::{Intent, Records};
use crate::core::ids::{CoordinatorId, TaskId};
use crate::daemon::state::{self, State};
use crate::daemon::wiring::Host;
use crate::engine::{Engine, FakeWorld};
use crate::ports::Journal;

const STATE_DIR: &str = "/var/baton";

/// A registry on a fake world, one coordinator registered on `/repo`; its journal, the
/// coordinator and the world.
async fn registry_with_a_coordinator() -> (RegistryJournal, CoordinatorId, FakeWorld) {
    let world = FakeWorld::new(7);
    let (requests_tx, requests) = channel();
    let mut ports = world.ports.clone();
    ports.journal = Arc::new(RegistryJournal(requests_tx.clone()));
    let (events, _events) = tokio::sync::mpsc::channel(crate::engine::APP_EVENTS_MAX);
    let engine = Engine::new(ports.clone(), events);
    let (publisher, _directory) = crate::api::latest::channel(Directory::default());
    let host = Host {
        layout: Layout::in_dir(Path::new(STATE_DIR)),
        launch: McpLaunch::default(),
        root_outside_a_sandbox: false,
    };
    let (registry, _) = Registry::start(
        ports,
        host,
        State::default(),
        (engine, Directory::default(), publisher),
    )
    .await
    .expect("started");
    let (door, _task) = registry.spawn((requests_tx.clone(), requests));
    let info = door
        .register(RegisterRequest {
            project_root: "/repo".into(),
            agent: "claude".into(),
            args: Vec::new(),
            skip_permissions: false,
            notification_delay_ms: None,
        })
        .await
        .expect("registered");
    (RegistryJournal(requests_tx), info.id, world)
}

/// The records the state file holds for `id`.
fn saved(world: &FakeWorld, id: CoordinatorId) -> Records {
    let file = world
        .files
        .get(&Layout::in_dir(Path::new(STATE_DIR)).state_file)
        .expect("a state file");
    let state = state::decode(&file.bytes).expect("readable");
    state
        .coordinators
        .into_iter()
        .find(|c| c.id == id)
        .expect("the coordinator")
        .records
}

fn records_closing(task: u8) -> Records {
    Records {
        intents: vec![Intent::Close {
            task: TaskId::from_random([task; 16]),
        }],
        ..Records::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_save_that_changes_nothing_writes_nothing() {
    let (journal, id, world) = registry_with_a_coordinator().await;
    // Numbered past the actor's own saves, which are then overtaken and write nothing.
    journal
        .save(id, 100, records_closing(1))
        .await
        .expect("written");
    assert_eq!(saved(&world, id), records_closing(1));
    // Every write now fails: an unchanged save is answered without one.
    world.files.fail_writes(1);
    journal
        .save(id, 101, records_closing(1))
        .await
        .expect("nothing to write");
    // The armed failure is still there: a changed save meets it.
    let failed = journal.save(id, 102, records_closing(2)).await;
    assert!(failed.is_err(), "a changed save is written: {failed:?}");
    assert_eq!(saved(&world, id), records_closing(1));
}

#[tokio::test(start_paused = true)]
async fn after_a_failed_write_the_same_records_are_written_again() {
    let (journal, id, world) = registry_with_a_coordinator().await;
    journal
        .save(id, 100, records_closing(1))
        .await
        .expect("written");
    world.files.fail_writes(1);
    assert!(journal.save(id, 101, records_closing(2)).await.is_err());
    assert_eq!(saved(&world, id), records_closing(1), "the file is behind");
    // The registry holds these records already; the file does not: they are written.
    journal
        .save(id, 102, records_closing(2))
        .await
        .expect("written");
    assert_eq!(saved(&world, id), records_closing(2));
}
