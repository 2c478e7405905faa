//! The REST API (axum) over any listener: the coordinators' and sub-tasks' MCP processes and
//! the phone reach the engine through it.
//!
//! Layout: this module (the state, [`app`], [`serve`], the security headers), `dto` (the JSON
//! shapes), `handlers` (one function per route), `error` (every failure to a status and a
//! `{"error": …}` body, in one place). The gates are pure decisions in `core::auth`; a single
//! fallback handler reads the method, the raw path and the credential headers, asks them, and
//! dispatches, so the gate order is exactly the one `core::auth` states, for every path.
//!
//! State: the daemon publishes a [`Directory`] (the credentials it issued and the coordinators'
//! handles) on a [`Publisher`] whenever a coordinator is registered or leaves; a request reads
//! the latest one, and no lock is held across an await.

pub mod audit;
mod delivery;
pub mod dto;
pub(crate) mod error;
pub mod guard;
mod handlers;
pub mod latest;
pub mod listen;
pub mod page;
pub mod server;
pub mod wire;
pub mod ws;

#[cfg(test)]
pub(crate) mod tests;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::{Extension, Router};
use tokio::sync::Semaphore;

pub use error::ApiError;
pub use latest::{Latest, Publisher};
pub use server::{Addresses, Listen};

use guard::{Hosts, Limits, Pool};

use crate::core::auth::Credentials;
use crate::core::ids::CoordinatorId;
use crate::engine::{AgentFeed, CoordinatorHandle};

/// The OpenAPI 3.1 document of the routes served (`runtime/openapi.json`), served at
/// `GET /api/openapi.json`.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// Largest request body read, in bytes; a larger one is refused with 413.
pub const BODY_BYTES_MAX: usize = 1_000_000;
/// How long a graceful shutdown lets requests in flight finish before they are dropped (long
/// polls among them: dropping a wait cancels it, and it consumes nothing).
pub const SHUTDOWN_GRACE_MS: u64 = 5_000;

/// What the API serves from: the credentials issued, and the registered coordinators.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    /// Bearer tokens.
    pub credentials: Credentials,
    /// Registered coordinators.
    pub coordinators: BTreeMap<CoordinatorId, CoordinatorHandle>,
    /// Deregistered coordinators whose tasks remain (orphans): the phone still lists and shows
    /// them; no token reaches them.
    pub orphans: Vec<CoordinatorHandle>,
}

/// Which coordinator holds each task, as the engine's events tell it (a task created, closed),
/// for the routes a sub-task calls: its task's coordinator is asked first instead of every one
/// in turn. It may lag behind: a task it does not know (yet) is looked for in every
/// coordinator, as before.
pub type TaskIndex = BTreeMap<crate::core::ids::TaskId, CoordinatorId>;

/// The API's state: the latest [`Directory`] the daemon published (the coordinators' actors,
/// which own their own agents too), the engine's agent feed (for the WebSocket), the open WebSocket connections, and
/// the signals of a shutdown: one when it starts (WebSockets close), one when its grace is over
/// (requests still running end).
#[derive(Clone, Debug)]
pub struct ApiState {
    directory: Latest<Directory>,
    /// See [`TaskIndex`].
    tasks: Latest<TaskIndex>,
    feed: AgentFeed,
    /// One permit per WebSocket connection that may open.
    sockets: Arc<Semaphore>,
    /// WebSocket connections authenticated now.
    authenticated: Arc<AtomicUsize>,
    /// Ids for WebSocket viewers.
    viewers: Arc<AtomicU64>,
    closing: Publisher<bool>,
    aborted: Publisher<bool>,
    /// Where the calls that change state are recorded (none: not recorded).
    audit: Option<audit::AuditLog>,
}

impl ApiState {
    /// State that follows what the daemon publishes on `directory`, with the agent events of
    /// `feed` (the engine's [`crate::engine::Engine::agent_feed`]).
    #[must_use]
    pub fn new(directory: Latest<Directory>, feed: AgentFeed) -> Self {
        ApiState {
            directory,
            tasks: latest::channel(TaskIndex::new()).1,
            feed,
            sockets: Arc::new(Semaphore::new(crate::core::ws::WS_CONNECTIONS_MAX)),
            authenticated: Arc::new(AtomicUsize::new(0)),
            viewers: Arc::new(AtomicU64::new(0)),
            closing: latest::channel(false).0,
            aborted: latest::channel(false).0,
            audit: None,
        }
    }

    /// The same state, recording every call that changes state in `log`.
    #[must_use]
    pub fn with_audit(mut self, log: audit::AuditLog) -> Self {
        self.audit = Some(log);
        self
    }

    /// The same state, asking a sub-task's coordinator first by `tasks` ([`TaskIndex`]).
    #[must_use]
    pub fn with_task_index(mut self, tasks: Latest<TaskIndex>) -> Self {
        self.tasks = tasks;
        self
    }

    fn directory(&self) -> Arc<Directory> {
        self.directory.get()
    }

    /// WebSocket clients authenticated now (the app's "connected clients").
    #[must_use]
    pub fn connected_clients(&self) -> usize {
        self.authenticated.load(Ordering::Relaxed)
    }

    /// Closes every WebSocket connection (1001) and refuses none yet: the start of a shutdown.
    pub fn close_sockets(&self) {
        self.closing.publish(true);
    }

    /// Resolves once WebSockets are to close.
    async fn closing(&self) {
        self.closing.subscribe().wait_for(|closing| *closing).await;
    }

    /// Ends every request still running with 503: their waits are dropped, so they consume
    /// nothing.
    pub fn abort_requests(&self) {
        self.aborted.publish(true);
    }

    /// Resolves once requests are aborted.
    async fn aborted(&self) {
        self.aborted.subscribe().wait_for(|aborted| *aborted).await;
    }
}

/// One listener of the API: the `Host` values it answers to, its caps, and the unauthenticated
/// WebSockets it holds now (`guard`). The listeners share one [`ApiState`] (the authenticated
/// WebSockets are counted across them all) and nothing else.
#[derive(Clone, Debug)]
pub struct Listening {
    hosts: Hosts,
    limits: Limits,
    unauthenticated: Arc<Mutex<Pool>>,
}

impl Listening {
    /// A listener answering to `hosts`, within `limits`.
    #[must_use]
    pub fn new(hosts: Hosts, limits: Limits) -> Self {
        let pool = Pool::new(
            limits.ws_unauthenticated,
            limits.ws_unauthenticated_per_peer,
        );
        Listening {
            hosts,
            limits,
            unauthenticated: Arc::new(Mutex::new(pool)),
        }
    }

    /// The loopback listener on `port` ([`Limits::API`]).
    #[must_use]
    pub fn loopback(port: u16) -> Self {
        Listening::new(Hosts::loopback(port), Limits::API)
    }

    /// Its caps.
    #[must_use]
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The unauthenticated WebSockets' pool (a lock held only to count).
    pub(crate) fn unauthenticated(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.unauthenticated
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The router of one listener: every request is checked against the listener's `Host` and the
/// page's `Origin`, then every path goes through the gates, then to its route.
pub fn app(state: ApiState, listening: Listening) -> Router {
    Router::new()
        .fallback(handlers::dispatch)
        .layer(middleware::from_fn(security_headers))
        .layer(Extension(listening))
        .with_state(state)
}

/// Headers every response carries.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        // A response that chose its caching (the page's assets) keeps it.
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    }
    response
}

/// Serves the API of `state` on `listener` (answering as `listening`, within its caps: see
/// [`server`]) until `shutdown` resolves: then it accepts no more connections, closes every WebSocket (1001), lets requests in flight [`SHUTDOWN_GRACE_MS`] to
/// finish, ends the ones still running (long polls) with 503, and returns once every connection
/// is closed.
///
/// # Errors
/// The listener failed.
pub async fn serve<L>(
    listener: L,
    state: ApiState,
    listening: Listening,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listen,
{
    let limits = listening.limits;
    let router = app(state.clone(), listening);
    let aborter = state.clone();
    let graceful = async move {
        shutdown.await;
        aborter.close_sockets();
        tokio::spawn(async move {
            crate::time::sleep(Duration::from_millis(SHUTDOWN_GRACE_MS)).await;
            aborter.abort_requests();
        });
    };
    server::run(listener, router, limits, graceful).await
}
