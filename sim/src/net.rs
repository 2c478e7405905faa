//! The daemon's REST API on turmoil's network: the real axum router served on a simulated
//! listener, and the small HTTP/1.1 client the actors' MCP processes and the attacker use over
//! simulated TCP. One request per connection (`Connection: close`), so a client that goes away
//! closes its connection and the server drops the request (a wait consumes nothing).

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use turmoil::net::{TcpListener, TcpStream};

/// The port the daemon's API listens on.
pub const API_PORT: u16 = 7777;
/// Largest latency of a message on turmoil's network, in simulated milliseconds (seeded between
/// zero and this): a step.
pub const MESSAGE_LATENCY_MS_MAX: u64 = crate::world::TICK_MS;
/// Messages a simulated TCP socket buffers (turmoil panics past it rather than refusing): room
/// for a thousand connections opened at once.
pub const TCP_BUFFER_MAX: usize = 4_096;
/// Largest response a client reads (16 MiB); a longer one is an error.
pub const RESPONSE_BYTES_MAX: usize = 16 << 20;

/// A turmoil listener axum can serve on.
pub struct SimListener(TcpListener);

impl SimListener {
    /// Listens on [`API_PORT`] of this host.
    ///
    /// # Errors
    /// The port is taken.
    pub async fn bind() -> io::Result<Self> {
        Ok(SimListener(TcpListener::bind(("0.0.0.0", API_PORT)).await?))
    }
}

impl axum::serve::Listener for SimListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Ok(accepted) = self.0.accept().await {
                return accepted;
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// An HTTP/1.1 request's bytes.
#[must_use]
pub fn encode(method: &str, path: &str, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nhost: daemon\r\nconnection: close\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Nobody listens (the daemon is down).
    #[error("{}", crate::daemon::DAEMON_DOWN)]
    Refused,
    /// The connection broke before the whole answer came (the daemon crashed).
    #[error("daemon unavailable: connection reset")]
    Reset,
    /// What came is not an HTTP response, or is too long.
    #[error("not an HTTP response: {0}")]
    Garbled(String),
}

/// Sends `request` to `host`'s API and reads the whole answer: its status and body.
///
/// # Errors
/// See [`SendError`].
pub async fn send(host: &str, request: &[u8]) -> Result<(u16, Vec<u8>), SendError> {
    let mut stream = TcpStream::connect((host, API_PORT))
        .await
        .map_err(|_| SendError::Refused)?;
    exchange(&mut stream, request)
        .await
        .map_err(|error| match error.kind() {
            io::ErrorKind::InvalidData => SendError::Garbled(error.to_string()),
            _ => SendError::Reset,
        })
}

async fn exchange(stream: &mut TcpStream, request: &[u8]) -> io::Result<(u16, Vec<u8>)> {
    stream.write_all(request).await?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 8 << 10];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        if answer.len() + n > RESPONSE_BYTES_MAX {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "too long"));
        }
        answer.extend_from_slice(&chunk[..n]);
    }
    if answer.is_empty() {
        // Closed before a byte of the answer: the server went away.
        return Err(io::Error::from(io::ErrorKind::ConnectionReset));
    }
    parse(&answer).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unreadable"))
}

/// The status and body of a whole HTTP/1.1 response (`Content-Length` or chunked).
fn parse(answer: &[u8]) -> Option<(u16, Vec<u8>)> {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&answer[..end]).ok()?;
    let body = &answer[end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let chunked = lines.any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("transfer-encoding:") && line.contains("chunked")
    });
    Some((
        status,
        if chunked {
            dechunk(body)?
        } else {
            body.to_vec()
        },
    ))
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line = body.windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..line]).ok()?.trim(), 16).ok()?;
        body = &body[line + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::{encode, parse};

    #[test]
    fn requests_carry_their_length_and_close() {
        let bytes = encode(
            "POST",
            "/api/tasks",
            &[("authorization".into(), "Bearer t".into())],
            b"{}",
        );
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("POST /api/tasks HTTP/1.1\r\n"));
        assert!(text.contains("connection: close\r\n"));
        assert!(text.ends_with("content-length: 2\r\n\r\n{}"));
    }

    #[test]
    fn responses_are_read_with_a_length_or_in_chunks() {
        assert_eq!(
            parse(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 2\r\n\r\n{}"),
            Some((403, b"{}".to_vec()))
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"),
            Some((200, b"{}".to_vec()))
        );
        assert_eq!(parse(b"garbage"), None);
    }
}
