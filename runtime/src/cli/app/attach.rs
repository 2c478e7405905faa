//! `baton attach`: the terminal of an agent over the app channel's WebSocket, the user's own
//! terminal in raw mode, keystrokes read ahead on a thread of their own (bounded), resizes
//! passed on, until Ctrl-] detaches or the agent ends.

use serde_json::{Value, json};

use super::{AppClient, say_raw};

/// Chunks of keystrokes `baton attach` reads ahead of the daemon.
pub const ATTACH_KEYS_MAX: usize = 64;

/// The key that detaches `baton attach` (Ctrl-]).
pub const DETACH_KEY: u8 = 0x1d;

/// `baton attach`: the terminal of a coordinator's agent or a sub-task's, passed through raw
/// until Ctrl-] detaches or the agent ends.
///
/// # Errors
/// The daemon is not running, or knows no such agent.
pub async fn attach(client: &AppClient, id: &str) -> anyhow::Result<()> {
    use futures_util::{SinkExt as _, StreamExt as _};
    use std::io::Write as _;
    let mut socket = client.websocket(&format!("/app/attach/{id}")).await?;
    let raw = crate::adapters::tty::RawMode::enter()?;
    let resize = |(cols, rows): (u16, u16)| {
        tungstenite::Message::Text(
            json!({ "type": "resize", "cols": cols, "rows": rows })
                .to_string()
                .into(),
        )
    };
    if let Some(size) = crate::adapters::tty::size() {
        socket.send(resize(size)).await?;
    }
    let (keys_tx, mut keys) = tokio::sync::mpsc::channel::<Vec<u8>>(ATTACH_KEYS_MAX);
    std::thread::spawn(move || {
        use std::io::Read as _;
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || keys_tx.blocking_send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())?;
    let ending = loop {
        tokio::select! {
            biased;
            message = socket.next() => match message {
                Some(Ok(tungstenite::Message::Binary(bytes))) => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&bytes)?;
                    out.flush()?;
                }
                Some(Ok(tungstenite::Message::Text(text))) => {
                    let note: Value = serde_json::from_str(&text).unwrap_or_default();
                    match note["type"].as_str() {
                        Some("exited") => break format!(
                            "the agent exited ({})",
                            note["exitCode"].as_i64().map_or_else(|| "killed".to_owned(), |c| format!("code {c}"))
                        ),
                        Some("lagged") => break "the terminal fell behind; attach again".to_owned(),
                        _ => {}
                    }
                }
                Some(Ok(tungstenite::Message::Close(_))) | None | Some(Err(_)) => {
                    break "the daemon closed the terminal".to_owned();
                }
                Some(Ok(_)) => {}
            },
            keys = keys.recv() => match keys {
                Some(bytes) => {
                    if let Some(at) = bytes.iter().position(|&b| b == DETACH_KEY) {
                        if at > 0 {
                            socket.send(tungstenite::Message::Binary(bytes[..at].to_vec().into())).await?;
                        }
                        break "detached; the agent keeps running".to_owned();
                    }
                    socket.send(tungstenite::Message::Binary(bytes.into())).await?;
                }
                None => break "detached".to_owned(),
            },
            _ = winch.recv() => {
                if let Some(size) = crate::adapters::tty::size() {
                    socket.send(resize(size)).await?;
                }
            }
        }
    };
    drop(raw);
    let _ = socket.close(None).await;
    say_raw(&format!(
        "\r\n[baton: {}]\n",
        crate::core::text::terminal_safe(&ending)
    ))
}
