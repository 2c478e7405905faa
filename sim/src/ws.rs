//! The attacker's WebSocket traffic: one connection to the daemon's API over turmoil's TCP
//! (a real WebSocket client, tokio-tungstenite), a script of frames sent in order, and every
//! message the server sent until it closed the connection or the listening time was over.
//!
//! Arguments: `path` (default `/ws`; the upgrade is taken on any path), `auth` (a credential on
//! the upgrade request's `Authorization: Bearer`, named as for `http`), `headers`, `send` (the
//! script) and `for` (how long to listen after the script, default [`LISTEN_MS_DEFAULT`]).
//! Script items: a table with `type` is sent as a JSON text frame, a string as a text frame as
//! it is; `{ binary = … }` sends a binary frame (a table as JSON, a string as it is);
//! `{ auth = "<who>" }` sends `{"type":"auth","token":…}` with that credential (a done token
//! too); `{ filler = N }` a text frame of N bytes; `{ pause = "200ms" }` waits; `{ close = true }`
//! sends a close frame.
//!
//! Each connection is numbered in the trace (`websocket #2 <- …`, `websocket #2 closed …`), in
//! the order they were upgraded.
//!
//! The answer: `{status, messages, closed}` after an upgrade (`closed` is `{code, reason}` if
//! the server closed the connection, absent if it was still open), `{status, body}` when the
//! upgrade was refused. In `output` and `scrollback` messages the base64 `data` is shown as
//! `text` (the bytes as UTF-8, lossy), so expectations read what the agent printed.

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use turmoil::net::TcpStream;

use crate::calls::{Answer, credential, text};
use crate::daemon::{DAEMON_DOWN, Shared};
use crate::net::{API_PORT, RESPONSE_BYTES_MAX};
use crate::scenario::ATTACKER_ACTOR;
use crate::world::DAEMON_HOST;

/// How long the client listens after its script when the step does not say (`for`).
pub const LISTEN_MS_DEFAULT: u64 = 100;
/// Most items a script may have.
pub const SCRIPT_ITEMS_MAX: usize = 1_000;
/// Largest `filler` frame, in bytes.
pub const FILLER_BYTES_MAX: usize = 1 << 20;

/// One item of a script.
enum Item {
    Frame(Message),
    Pause(Duration),
}

/// The attacker's `websocket` call. See the module documentation.
pub async fn attacker_websocket(shared: &Shared, args: &Value) -> Answer {
    let path = text(args, "path")?.unwrap_or("/ws");
    let listen = Duration::from_millis(match text(args, "for")? {
        None => LISTEN_MS_DEFAULT,
        Some(at) => match crate::scenario::parse_at(at)? {
            crate::scenario::At::Absolute(ms) => ms,
            crate::scenario::At::After(_) => return Err(format!("for {at:?}: write it without +")),
        },
    });
    let script = script(shared, args.get("send"))?;
    let mut request = format!("ws://{DAEMON_HOST}:{API_PORT}{path}")
        .into_client_request()
        .map_err(|e| format!("path {path:?}: {e}"))?;
    for (name, value) in crate::calls::request_headers(shared, args)? {
        let name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("header {name:?}: {e}"))?;
        let value = HeaderValue::from_str(&value).map_err(|e| format!("header {name}: {e}"))?;
        // A `Host` of the attacker's replaces the daemon's own name; other headers add up.
        if name == tokio_tungstenite::tungstenite::http::header::HOST {
            request.headers_mut().insert(name, value);
        } else {
            request.headers_mut().append(name, value);
        }
    }
    let stream = TcpStream::connect((DAEMON_HOST, API_PORT))
        .await
        .map_err(|_| DAEMON_DOWN.to_owned())?;
    let config = WebSocketConfig::default()
        .max_message_size(Some(RESPONSE_BYTES_MAX))
        .max_frame_size(Some(RESPONSE_BYTES_MAX));
    let (socket, response) =
        match tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await {
            Ok(upgraded) => upgraded,
            Err(WsError::Http(response)) => {
                let body = response.body().clone().unwrap_or_default();
                let body = serde_json::from_slice(&body)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
                return Ok(json!({ "status": response.status().as_u16(), "body": body }));
            }
            Err(error) => return Err(format!("daemon unavailable: websocket handshake: {error}")),
        };
    let (mut sink, mut stream) = socket.split();
    let messages = RefCell::new(Vec::new());
    let closed = RefCell::new(None);
    let number = shared.websockets.fetch_add(1, Ordering::Relaxed) + 1;
    let record = |what: &str, value: &Value| {
        let line = format!(
            "websocket #{number} {what} {}",
            crate::runner::compact(value)
        );
        shared.recorder.record(ATTACKER_ACTOR, line);
    };
    let read = async {
        while let Some(Ok(message)) = stream.next().await {
            let value = match message {
                Message::Text(text) => shown(text.as_bytes()),
                Message::Binary(bytes) => shown(&bytes),
                Message::Close(frame) => {
                    let value = match frame {
                        Some(CloseFrame { code, reason }) => {
                            json!({ "code": u16::from(code), "reason": reason.as_str() })
                        }
                        None => json!({ "code": Value::Null, "reason": "" }),
                    };
                    record("closed", &value);
                    *closed.borrow_mut() = Some(value);
                    continue;
                }
                _ => continue,
            };
            record("<-", &value);
            messages.borrow_mut().push(value);
        }
    };
    let write = async {
        for item in script {
            match item {
                Item::Pause(pause) => baton_runtime::time::sleep(pause).await,
                Item::Frame(frame) => {
                    if sink.send(frame).await.is_err() {
                        // The server closed the connection: what it sent is still read.
                        std::future::pending::<()>().await;
                    }
                }
            }
        }
        baton_runtime::time::sleep(listen).await;
    };
    tokio::select! {
        () = read => {}
        () = write => {}
    }
    let mut answer = json!({
        "status": response.status().as_u16(),
        "messages": messages.into_inner(),
    });
    if let Some(closed) = closed.into_inner() {
        answer["closed"] = closed;
    }
    Ok(answer)
}

/// A server message as the answer shows it: JSON, with `data` decoded into `text`.
fn shown(bytes: &[u8]) -> Value {
    let Ok(mut value) = serde_json::from_slice::<Value>(bytes) else {
        return Value::String(String::from_utf8_lossy(bytes).into_owned());
    };
    if let Some(data) = value.get("data").and_then(Value::as_str)
        && let Some(decoded) = baton_runtime::core::ids::base64_decode(data)
    {
        value["text"] = Value::String(String::from_utf8_lossy(&decoded).into_owned());
        if let Some(map) = value.as_object_mut() {
            map.remove("data");
        }
    }
    value
}

fn script(shared: &Shared, send: Option<&Value>) -> Result<Vec<Item>, String> {
    let items = match send {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err("send must be an array of frames".to_owned()),
    };
    if items.len() > SCRIPT_ITEMS_MAX {
        return Err(format!("send has more than {SCRIPT_ITEMS_MAX} items"));
    }
    let as_text = |value: &Value| match value {
        Value::String(raw) => raw.clone(),
        other => other.to_string(),
    };
    items
        .iter()
        .map(|item| {
            let field = |name: &str| item.get(name).filter(|_| item.get("type").is_none());
            Ok(if let Value::String(raw) = item {
                Item::Frame(Message::text(raw.clone()))
            } else if let Some(binary) = field("binary") {
                Item::Frame(Message::binary(as_text(binary).into_bytes()))
            } else if let Some(who) = field("auth") {
                let token = credential(shared, who.as_str())?.unwrap_or_default();
                Item::Frame(Message::text(
                    json!({ "type": "auth", "token": token }).to_string(),
                ))
            } else if let Some(filler) = field("filler") {
                let bytes = filler
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|n| *n <= FILLER_BYTES_MAX)
                    .ok_or_else(|| format!("filler must be a size up to {FILLER_BYTES_MAX}"))?;
                Item::Frame(Message::text("x".repeat(bytes)))
            } else if let Some(pause) = field("pause") {
                let at = pause.as_str().unwrap_or_default();
                match crate::scenario::parse_at(at)? {
                    crate::scenario::At::Absolute(ms) => Item::Pause(Duration::from_millis(ms)),
                    crate::scenario::At::After(_) => {
                        return Err(format!("pause {at:?}: write it without +"));
                    }
                }
            } else if field("close").is_some() {
                Item::Frame(Message::Close(None))
            } else if item.get("type").is_some() {
                Item::Frame(Message::text(item.to_string()))
            } else {
                return Err(format!(
                    "send item {item}: a message (with type), a string, or one of binary, auth, \
                     filler, pause, close"
                ));
            })
        })
        .collect()
}
