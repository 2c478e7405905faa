//! The WebSocket endpoint: an upgrade on any path of the API's listener, carrying out the
//! decisions of `core::ws` (REST spec §3).
//!
//! One task per connection runs a loop over: the client's frames, the agent output it
//! subscribed to (a bounded queue the coordinators' actors fill without waiting, for their tasks'
//! agents and their own), the engine's agent feed (list changes and
//! exits, for every authenticated client), the published directory (a coordinator came or
//! left, a token was revoked), the auth window, the heartbeat (`{"type":"heartbeat"}` every
//! [`WS_HEARTBEAT_MS`] once authenticated, by which a client tells a dead connection from a
//! quiet one), and the daemon's shutdown. Nothing in the loop waits without a bound: a send
//! that takes longer than [`WS_SEND_TIMEOUT_MS`] ends the connection, a viewer queue that
//! overflows closes it with 1013, and a terminal request gives up after
//! [`WS_TERMINAL_TIMEOUT_MS`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{Notify, OwnedSemaphorePermit, broadcast, mpsc};

use super::{Addresses, ApiError, ApiState, Directory, Listening, handlers};
use crate::core::auth::{self, Holder};
use crate::core::ids::{AgentId, base64};
use crate::core::ws::{
    Close, Decision, Request, Session, WS_AUTH_WINDOW_MS, WS_HEARTBEAT_MS, WS_MESSAGE_BYTES_MAX,
};
use crate::engine::{AgentEvent, CoordinatorHandle, TerminalInput, Viewer, Watched};

/// Output messages queued for one connection; past this the connection is closed (1013)
/// rather than let the agents wait or memory grow.
pub const WS_VIEWER_QUEUE_MAX: usize = 256;
/// Longest a message may take to go out to a client; a client that stopped reading is then
/// dropped.
pub const WS_SEND_TIMEOUT_MS: u64 = 5_000;
/// The close code of a connection that authenticated when every authenticated place was taken
/// (1013, try again later).
pub const WS_FULL_CODE: u16 = 1013;
/// Longest a terminal request (`input`, `resize`, `kill`) is waited for.
pub const WS_TERMINAL_TIMEOUT_MS: u64 = 5_000;

/// Whether `parts` asks for a WebSocket upgrade.
pub(super) fn is_upgrade(parts: &Parts) -> bool {
    parts
        .headers
        .get(axum::http::header::UPGRADE)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

/// Answers an upgrade request: 400 for a malformed handshake; 429 when its pool is full (an
/// upgrade carrying a valid token, anyone's, takes one of the authenticated connections,
/// [`crate::core::ws::WS_CONNECTIONS_MAX`] across every listener; any other one of its
/// listener's unauthenticated places, [`super::guard::WS_UNAUTHENTICATED_MAX`], per peer on the
/// phone listener); else 101 and the connection's task.
pub(super) async fn upgrade(
    state: ApiState,
    listening: &Listening,
    addresses: Addresses,
    mut parts: Parts,
) -> Response {
    let too_many =
        || ApiError::new(StatusCode::TOO_MANY_REQUESTS, "Too many connections").into_response();
    let authorization = parts.headers.get("authorization").map(|v| v.as_bytes());
    let presented = auth::presented(authorization, parts.uri.query());
    let directory = state.directory();
    let session = Session::upgraded(presented.as_deref(), &directory.credentials);
    // A valid token on the upgrade (the phone's too, which then still authenticates by
    // message) takes an authenticated place; anything else waits in the listener's pool.
    let holds_token = presented
        .as_deref()
        .and_then(|token| directory.credentials.holder(token))
        .is_some();
    let place = if holds_token {
        match state.sockets.clone().try_acquire_owned() {
            Ok(permit) => Place::Authenticated { _permit: permit },
            Err(_) => return too_many(),
        }
    } else if listening.unauthenticated().take(addresses.peer) {
        Place::Waiting {
            _place: Waiting {
                listening: listening.clone(),
                peer: addresses.peer,
            },
        }
    } else {
        return too_many();
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return ApiError::new(rejection.status(), rejection.body_text()).into_response();
        }
    };
    upgrade
        .max_message_size(WS_MESSAGE_BYTES_MAX)
        .max_frame_size(WS_MESSAGE_BYTES_MAX)
        .on_upgrade(move |socket| run(socket, state, session, place))
}

/// What a connection holds while it is open: an authenticated connection's permit, or a place
/// in its listener's pool of unauthenticated ones (given back when dropped).
enum Place {
    Authenticated { _permit: OwnedSemaphorePermit },
    Waiting { _place: Waiting },
}

struct Waiting {
    listening: Listening,
    peer: Option<std::net::IpAddr>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.listening.unauthenticated().give(self.peer);
    }
}

/// The subscriptions of one connection: each agent with the coordinator's actor that feeds its
/// output (a task's agent's or the coordinator's own).
type Subscriptions = BTreeMap<AgentId, CoordinatorHandle>;

struct Connection {
    socket: WebSocket,
    state: ApiState,
    session: Session,
    viewer: Viewer,
    subscribed: Subscriptions,
    /// Whether it is counted among the authenticated clients.
    counted: bool,
    place: Place,
}

/// Why the loop ended: a close to send, or the client is gone (nothing to send).
enum End {
    Close(Close),
    /// It authenticated, and every authenticated connection is taken (1013).
    Full,
    /// The client closed the connection: its close is answered.
    ClosedByClient,
    Gone,
}

async fn run(socket: WebSocket, state: ApiState, session: Session, place: Place) {
    let (queue, watched) = mpsc::channel(WS_VIEWER_QUEUE_MAX);
    let viewer = Viewer {
        id: state.viewers.fetch_add(1, Ordering::Relaxed),
        queue,
        overflowed: Arc::new(Notify::new()),
    };
    let connection = Connection {
        socket,
        state,
        session,
        viewer,
        subscribed: Subscriptions::new(),
        counted: false,
        place,
    };
    connection.run(watched).await;
}

impl Connection {
    async fn run(mut self, mut watched: mpsc::Receiver<Watched>) {
        let mut feed = self.state.feed.subscribe();
        let mut directory = self.state.directory.clone();
        directory.mark_seen();
        let overflowed = self.viewer.overflowed.clone();
        let opened = tokio::time::Instant::now();
        let auth_deadline = opened + Duration::from_millis(WS_AUTH_WINDOW_MS);
        let heartbeat = Duration::from_millis(WS_HEARTBEAT_MS);
        let mut heartbeat_at = opened + heartbeat;
        let mut end = if self.session.holder().is_some() {
            self.welcome().await.err()
        } else {
            None
        };
        while end.is_none() {
            let authenticated = self.session.holder().is_some();
            let step = tokio::select! {
                biased;
                () = self.state.closing() => Err(End::Close(Close::GoingAway)),
                () = overflowed.notified() => Err(End::Close(Close::TooSlow)),
                () = crate::time::sleep_until(auth_deadline), if !authenticated => {
                    Err(End::Close(Close::AuthTimeout))
                }
                () = crate::time::sleep_until(heartbeat_at), if authenticated => {
                    heartbeat_at += heartbeat;
                    self.send_json(&json!({"type": "heartbeat"})).await
                }
                frame = self.socket.recv() => self.frame(frame).await,
                Some(watched) = watched.recv() => self.watched(watched).await,
                event = feed.recv(), if authenticated => self.feed(event, &mut feed).await,
                _ = directory.changed(), if authenticated => self.directory_changed().await,
            };
            end = step.err();
        }
        for (agent, handle) in std::mem::take(&mut self.subscribed) {
            let _ = handle.unwatch(agent, self.viewer.id).await;
        }
        if self.counted {
            self.state.authenticated.fetch_sub(1, Ordering::Relaxed);
        }
        match end {
            Some(End::Close(close)) => {
                let frame = CloseFrame {
                    code: close.code(),
                    reason: close.reason().into(),
                };
                let _ = self.send(Message::Close(Some(frame))).await;
            }
            Some(End::Full) => {
                let frame = CloseFrame {
                    code: WS_FULL_CODE,
                    reason: "Too many connections".into(),
                };
                let _ = self.send(Message::Close(Some(frame))).await;
            }
            // The protocol queued its reply to the client's close; reading on sends it and
            // ends the stream: a clean close, not a dropped one (bounded like a send).
            Some(End::ClosedByClient) => {
                let drain = async { while let Some(Ok(_)) = self.socket.recv().await {} };
                let _ =
                    crate::time::timeout(Duration::from_millis(WS_SEND_TIMEOUT_MS), drain).await;
            }
            _ => {}
        }
    }

    /// Sends a message, giving up after [`WS_SEND_TIMEOUT_MS`].
    async fn send(&mut self, message: Message) -> Result<(), End> {
        let sent = crate::time::timeout(
            Duration::from_millis(WS_SEND_TIMEOUT_MS),
            self.socket.send(message),
        )
        .await;
        match sent {
            Ok(Ok(())) => Ok(()),
            _ => Err(End::Gone),
        }
    }

    async fn send_json(&mut self, value: &Value) -> Result<(), End> {
        self.send(Message::Text(value.to_string().into())).await
    }

    /// The client is authenticated (again): it moves from the unauthenticated pool to an
    /// authenticated place (closed with 1013 when none is free), is counted, and gets the list
    /// of agents.
    async fn welcome(&mut self) -> Result<(), End> {
        if matches!(self.place, Place::Waiting { .. }) {
            let permit = self
                .state
                .sockets
                .clone()
                .try_acquire_owned()
                .map_err(|_| End::Full)?;
            // The unauthenticated place is given back as it is replaced.
            self.place = Place::Authenticated { _permit: permit };
        }
        if !self.counted {
            self.counted = true;
            self.state.authenticated.fetch_add(1, Ordering::Relaxed);
        }
        self.send_agents().await
    }

    /// Sends the list of agents, unless the token the client authenticated with was revoked
    /// meanwhile (then it is closed instead, having learnt nothing more).
    async fn send_agents(&mut self) -> Result<(), End> {
        let directory = self.state.directory();
        if self.session.revoked(&directory.credentials) {
            return Err(End::Close(Close::Unauthorized));
        }
        let views = handlers::agents_views(&directory, self.session.holder())
            .await
            .unwrap_or_default();
        let coordinators: Vec<Value> = views
            .iter()
            .map(|view| json!(super::dto::coordinator(view, view.own.as_ref())))
            .collect();
        self.send_json(&json!({
            "type": "agents",
            "list": handlers::agent_list(&views),
            "coordinators": coordinators,
        }))
        .await
    }

    async fn frame(&mut self, frame: Option<Result<Message, axum::Error>>) -> Result<(), End> {
        let bytes = match frame {
            None => return Err(End::Gone),
            Some(Ok(Message::Close(_))) => return Err(End::ClosedByClient),
            Some(Err(error)) => {
                let too_big = error
                    .into_inner()
                    .downcast_ref::<tungstenite::Error>()
                    .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)));
                return Err(if too_big {
                    End::Close(Close::TooBig)
                } else {
                    End::Gone
                });
            }
            Some(Ok(Message::Text(text))) => text.as_bytes().to_vec(),
            Some(Ok(Message::Binary(bytes))) => bytes.to_vec(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Ok(()),
        };
        let credentials = self.state.directory().credentials.clone();
        match self.session.on_frame(&bytes, &credentials) {
            Decision::Ignore => Ok(()),
            Decision::Welcome => self.welcome().await,
            Decision::Close(close) => Err(End::Close(close)),
            Decision::Carry(holder, request) => self.carry(holder, request).await,
        }
    }

    async fn carry(&mut self, holder: Holder, request: Request) -> Result<(), End> {
        let directory = self.state.directory();
        let (agent, input) = match request {
            Request::Subscribe { agent } => {
                return self.subscribe(&directory, holder, &agent).await;
            }
            Request::Unsubscribe { agent } => {
                if let Some((agent, handle)) = agent
                    .parse()
                    .ok()
                    .and_then(|agent| self.subscribed.remove_entry(&agent))
                {
                    let _ = handle.unwatch(agent, self.viewer.id).await;
                }
                return Ok(());
            }
            Request::Input { agent, data } => (agent, TerminalInput::Write(data.into_bytes())),
            Request::Resize { agent, cols, rows } => (agent, TerminalInput::Resize { cols, rows }),
            Request::Kill { agent } => (agent, TerminalInput::Kill),
        };
        // A coordinator writes to its own agents only; anything else is ignored like an
        // unknown agent.
        let (Holder::Coordinator(id), Ok(agent)) = (holder, agent.parse::<AgentId>()) else {
            return Ok(());
        };
        if let Some(handle) = directory.coordinators.get(&id) {
            let _ = crate::time::timeout(
                Duration::from_millis(WS_TERMINAL_TIMEOUT_MS),
                handle.terminal(agent, input),
            )
            .await;
        }
        Ok(())
    }

    /// Subscribes to an agent `holder` may read (the phone: any coordinator's; a coordinator:
    /// its own and its tasks'), a task's or the coordinator's own: its scrollback (when there
    /// is any), then its output. Unknown agents, agents of others, and agents already
    /// subscribed to are ignored alike.
    async fn subscribe(
        &mut self,
        directory: &Directory,
        holder: Holder,
        agent: &str,
    ) -> Result<(), End> {
        let Ok(agent) = agent.parse::<AgentId>() else {
            return Ok(());
        };
        if self.subscribed.contains_key(&agent) {
            return Ok(());
        }
        for handle in handlers::readable(directory, Some(holder)) {
            if let Ok(watching) = handle.watch(agent, self.viewer.clone()).await {
                self.subscribed.insert(agent, handle.clone());
                return self
                    .send_scrollback(agent, &watching.scrollback, watching.cols)
                    .await;
            }
        }
        Ok(())
    }

    async fn send_scrollback(
        &mut self,
        agent: AgentId,
        bytes: &[u8],
        cols: u16,
    ) -> Result<(), End> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.send_json(&json!({
            "type": "scrollback",
            "agentId": agent.to_string(),
            "data": base64(bytes),
            "cols": cols,
        }))
        .await
    }

    async fn watched(&mut self, watched: Watched) -> Result<(), End> {
        match watched {
            Watched::Output(agent, bytes) => {
                self.send_json(&json!({
                    "type": "output",
                    "agentId": agent.to_string(),
                    "data": base64(&bytes),
                }))
                .await
            }
            // The feed tells every client of the exit; this viewer only stops watching.
            Watched::Exited(agent, _) => {
                self.subscribed.remove(&agent);
                Ok(())
            }
        }
    }

    /// An agent event: an exit is told at once, and every list change pending is told with
    /// one `agents`. A subscriber hears of the exit after the agent's last output: the actor
    /// queues the output before it tells the feed, and the loop drains the queue first.
    async fn feed(
        &mut self,
        event: Result<AgentEvent, broadcast::error::RecvError>,
        feed: &mut broadcast::Receiver<AgentEvent>,
    ) -> Result<(), End> {
        let mut next = Some(event);
        let mut list_changed = false;
        while let Some(event) = next.take() {
            match event {
                Ok(AgentEvent::Exited { agent, code }) => {
                    self.send_json(&status(agent, code)).await?;
                }
                // Missed events are in the list.
                Ok(AgentEvent::ListChanged) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    list_changed = true;
                }
                Err(broadcast::error::RecvError::Closed) => return Err(End::Gone),
            }
            next = match feed.try_recv() {
                Ok(event) => Some(Ok(event)),
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    Some(Err(broadcast::error::RecvError::Lagged(n)))
                }
                Err(_) => None,
            };
        }
        if list_changed {
            self.send_agents().await?;
        }
        Ok(())
    }

    /// The daemon published a new directory: the list of agents may have changed, or the
    /// client's token was revoked.
    async fn directory_changed(&mut self) -> Result<(), End> {
        self.send_agents().await
    }
}

fn status(agent: AgentId, code: Option<i32>) -> Value {
    json!({
        "type": "status",
        "agentId": agent.to_string(),
        "status": "exited",
        "exitCode": code,
    })
}
