//! A small HTTP/1.1 client for the daemon's API: one request per connection
//! (`Connection: close`), so a client that gives up closes its connection and the server drops
//! the request (a wait whose client went away consumes nothing).
//!
//! The connection comes from a [`Connect`]: TCP in production, turmoil's simulated TCP in the
//! simulator, so the MCP process's own client code crosses the simulated network and its faults.
//! Only `http://host:port` base URLs are taken: the API listens on loopback (or the LAN for the
//! phone), never behind TLS.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::ports::BoxFuture;

/// Largest response read (16 MiB: a task's diff is cut far below this); a longer one is an
/// error.
pub const RESPONSE_BYTES_MAX: usize = 16 << 20;

/// Opens connections to the API's host.
pub trait Connect: Send + Sync {
    /// A connection.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send;

    /// Connects to `host:port`.
    fn connect<'a>(&'a self, host: &'a str, port: u16) -> BoxFuture<'a, io::Result<Self::Stream>>;
}

/// Connections over the machine's TCP.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tcp;

impl Connect for Tcp {
    type Stream = tokio::net::TcpStream;

    fn connect<'a>(&'a self, host: &'a str, port: u16) -> BoxFuture<'a, io::Result<Self::Stream>> {
        Box::pin(tokio::net::TcpStream::connect((host, port)))
    }
}

/// Connections to a Unix socket (the daemon's app channel): the host and port are ignored.
#[derive(Clone, Debug)]
pub struct UnixSocket(pub std::path::PathBuf);

impl Connect for UnixSocket {
    type Stream = tokio::net::UnixStream;

    fn connect<'a>(&'a self, _: &'a str, _: u16) -> BoxFuture<'a, io::Result<Self::Stream>> {
        Box::pin(tokio::net::UnixStream::connect(&self.0))
    }
}

/// The API's address, from a base URL `http://host[:port]` (port 80 when absent; a trailing
/// `/` is dropped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
}

/// A base URL that is not `http://host[:port]`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid API URL {0:?}: expected http://host:port")]
pub struct InvalidUrl(pub String);

impl BaseUrl {
    /// Reads a base URL.
    ///
    /// # Errors
    /// Not `http://`, no host, a bad port, or a path after the port.
    pub fn parse(url: &str) -> Result<Self, InvalidUrl> {
        let invalid = || InvalidUrl(url.to_owned());
        let rest = url.strip_prefix("http://").ok_or_else(invalid)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
                (host, port.parse::<u16>().map_err(|_| invalid())?)
            }
            _ => (rest, 80),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let bad = |c: char| c.is_whitespace() || c.is_control() || "/?#@".contains(c);
        if host.is_empty() || host.chars().any(bad) {
            return Err(invalid());
        }
        Ok(BaseUrl {
            host: host.to_owned(),
            port,
        })
    }

    /// `host:port`, as a request's `Host` names it (an IPv6 address in brackets): the API
    /// answers only to its own names and port.
    #[must_use]
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The connection could not be made (nobody listens: the daemon is down).
    #[error("cannot connect to the daemon: {0}")]
    Connect(io::Error),
    /// The connection broke before the whole answer came.
    #[error("the connection to the daemon broke: {0}")]
    Broken(io::Error),
    /// What came back is not an HTTP response, or is longer than [`RESPONSE_BYTES_MAX`].
    #[error("the daemon's answer is unreadable: {0}")]
    Garbled(String),
}

impl HttpError {
    /// Whether another try may get through: the transport failed (not the server's answer).
    #[must_use]
    pub const fn is_transport(&self) -> bool {
        matches!(self, HttpError::Connect(_) | HttpError::Broken(_))
    }
}

/// An answer: its status and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

/// The bytes of an HTTP/1.1 request to `host`.
#[must_use]
pub fn encode(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n");
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Sends one request (as [`encode`] makes it) to `base` through `connector` and reads the whole
/// answer.
///
/// # Errors
/// See [`HttpError`].
pub async fn send<C: Connect + ?Sized>(
    connector: &C,
    base: &BaseUrl,
    request: &[u8],
) -> Result<Response, HttpError> {
    let mut stream = connector
        .connect(&base.host, base.port)
        .await
        .map_err(HttpError::Connect)?;
    stream.write_all(request).await.map_err(HttpError::Broken)?;
    let mut answer = Vec::new();
    let mut chunk = vec![0u8; 8 << 10];
    loop {
        let n = stream.read(&mut chunk).await.map_err(HttpError::Broken)?;
        if n == 0 {
            break;
        }
        if answer.len() + n > RESPONSE_BYTES_MAX {
            return Err(HttpError::Garbled(format!(
                "longer than {RESPONSE_BYTES_MAX} bytes"
            )));
        }
        answer.extend_from_slice(&chunk[..n]);
    }
    if answer.is_empty() {
        // Closed before a byte of the answer: the server went away.
        return Err(HttpError::Broken(io::Error::from(
            io::ErrorKind::ConnectionReset,
        )));
    }
    parse(&answer).ok_or_else(|| HttpError::Garbled("not an HTTP/1.1 response".into()))
}

/// The status and body of a whole HTTP/1.1 response (`Content-Length` or chunked).
fn parse(answer: &[u8]) -> Option<Response> {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&answer[..end]).ok()?;
    let body = &answer[end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let chunked = lines.any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("transfer-encoding:") && line.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Some(Response { status, body })
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line = body.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&body[..line]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
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
    use super::{BaseUrl, encode, parse};

    #[test]
    fn requests_carry_their_host_length_and_close() {
        let bytes = encode(
            "127.0.0.1",
            "POST",
            "/api/tasks",
            &[("authorization".into(), "Bearer t".into())],
            b"{}",
        );
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("POST /api/tasks HTTP/1.1\r\nhost: 127.0.0.1\r\n"));
        assert!(text.contains("connection: close\r\nauthorization: Bearer t\r\n"));
        assert!(text.ends_with("content-length: 2\r\n\r\n{}"));
    }

    #[test]
    fn responses_are_read_with_a_length_or_in_chunks() {
        let plain = parse(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!((plain.status, plain.body), (403, b"{}".to_vec()));
        let chunked =
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\n{}\r\n0\r\n\r\n")
                .unwrap();
        assert_eq!((chunked.status, chunked.body), (200, b"{}".to_vec()));
        assert_eq!(parse(b"garbage"), None);
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"),
            None
        );
    }

    #[test]
    fn base_urls_are_http_host_and_port() {
        let url = |text: &str| BaseUrl::parse(text).map(|u| (u.host, u.port));
        assert_eq!(url("http://127.0.0.1:7777"), Ok(("127.0.0.1".into(), 7777)));
        assert_eq!(
            url("http://127.0.0.1:7777/"),
            Ok(("127.0.0.1".into(), 7777))
        );
        assert_eq!(
            url("http://host.docker.internal:7778"),
            Ok(("host.docker.internal".into(), 7778))
        );
        assert_eq!(url("http://localhost"), Ok(("localhost".into(), 80)));
        assert_eq!(url("http://[::1]:7777"), Ok(("::1".into(), 7777)));
        for bad in [
            "https://h:1",
            "h:1",
            "http://",
            "http://h:99999",
            "http://h:1/api",
            "http://a b:1",
            "http://u@h:1",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
