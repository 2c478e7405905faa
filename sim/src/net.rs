//! The daemon's REST API and app channel on turmoil's network: the real axum routers served on
//! simulated listeners, and the requests the actors send them, through the runtime's own
//! HTTP/1.1 client (`mcp::http`) over simulated TCP. One request per connection (`Connection: close`), so a
//! client that goes away closes its connection and the server drops the request (a wait
//! consumes nothing).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use baton_runtime::ports::BoxFuture;

use turmoil::net::{TcpListener, TcpStream};

use crate::link::Links;

/// The port the daemon's API listens on.
pub const API_PORT: u16 = 7777;
/// The port the daemon's app channel listens on: a Unix socket in production, which turmoil
/// does not simulate; a port of the daemon host the scenario host reaches, as the app reaches
/// the socket (nothing else in a simulation connects to it).
pub const APP_PORT: u16 = 7778;
/// Largest latency of a message on turmoil's network, in simulated milliseconds (seeded between
/// zero and this): a step.
pub const MESSAGE_LATENCY_MS_MAX: u64 = crate::world::TICK_MS;
/// Messages a simulated TCP socket buffers (turmoil panics past it rather than refusing): room
/// for a thousand connections opened at once.
pub const TCP_BUFFER_MAX: usize = 4_096;
/// Largest response a client reads; a longer one is an error.
pub const RESPONSE_BYTES_MAX: usize = baton_runtime::mcp::http::RESPONSE_BYTES_MAX;

/// The daemon's API as its MCP processes name it: `http://daemon:7777`.
#[must_use]
pub fn api_url() -> String {
    format!("http://{}:{API_PORT}", crate::world::DAEMON_HOST)
}

/// A turmoil listener axum can serve on.
pub struct SimListener(TcpListener);

impl SimListener {
    /// Listens on `port` of this host ([`API_PORT`], [`APP_PORT`]).
    ///
    /// # Errors
    /// The port is taken.
    pub async fn bind(port: u16) -> io::Result<Self> {
        Ok(SimListener(TcpListener::bind(("0.0.0.0", port)).await?))
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

impl baton_runtime::api::Listen for SimListener {
    fn addresses(io: &Self::Io, addr: &Self::Addr) -> baton_runtime::api::Addresses {
        baton_runtime::api::Addresses {
            peer: Some(addr.ip()),
            local: io.local_addr().ok().map(|a| a.ip()),
        }
    }
}

/// The daemon's API listener as the simulator serves it: loopback's names and the daemon
/// host's own name, `daemon`, on [`API_PORT`].
#[must_use]
pub fn listening() -> baton_runtime::api::Listening {
    use baton_runtime::api::guard::{Hosts, Limits};
    let hosts = Hosts::loopback(API_PORT).with_name(crate::world::DAEMON_HOST);
    baton_runtime::api::Listening::new(hosts, Limits::API)
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

/// Sends one request to the daemon's API, through the runtime's own HTTP client over turmoil's
/// TCP, and reads the whole answer: its status and body.
///
/// # Errors
/// See [`SendError`].
pub async fn send(
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<(u16, Vec<u8>), SendError> {
    send_to(API_PORT, method, path, headers, body).await
}

/// Sends one request to the daemon host's `port` (the API's, the app channel's), as [`send`].
///
/// # Errors
/// See [`SendError`].
pub async fn send_to(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<(u16, Vec<u8>), SendError> {
    use baton_runtime::mcp::http::{self, BaseUrl, HttpError};
    let base = BaseUrl {
        host: crate::world::DAEMON_HOST.to_owned(),
        port,
    };
    // A `Host` among the headers (the attacker's) stands in for the daemon's own name.
    let is_host = |name: &str| name.eq_ignore_ascii_case("host");
    let host = headers
        .iter()
        .find(|(name, _)| is_host(name))
        .map_or_else(|| base.authority(), |(_, value)| value.clone());
    let headers: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| !is_host(name))
        .cloned()
        .collect();
    let request = http::encode(&host, method, path, &headers, body);
    match http::send(&SimTcp::direct(), &base, &request).await {
        Ok(response) => Ok((response.status, response.body)),
        Err(HttpError::Connect(_)) => Err(SendError::Refused),
        Err(HttpError::Broken(_)) => Err(SendError::Reset),
        Err(HttpError::Garbled(why)) => Err(SendError::Garbled(why)),
    }
}

/// Connections over turmoil's simulated TCP, for the runtime's HTTP client: straight, or over
/// an actor's link, meeting its faults one connection at a time (`Links::connect`).
pub struct SimTcp(Option<(Arc<Links>, String)>);

impl SimTcp {
    /// Straight connections, with no link faults.
    #[must_use]
    pub const fn direct() -> Self {
        SimTcp(None)
    }

    /// Connections over `actor`'s link.
    #[must_use]
    pub fn linked(links: Arc<Links>, actor: &str) -> Self {
        SimTcp(Some((links, actor.to_owned())))
    }
}

/// A connection [`SimTcp`] opened.
pub enum SimStream {
    /// Straight.
    Direct(turmoil::net::TcpStream),
    /// Over an actor's link.
    Linked(crate::link::LinkedStream),
}

impl tokio::io::AsyncRead for SimStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            SimStream::Direct(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            SimStream::Linked(s) => std::pin::Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for SimStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            SimStream::Direct(s) => std::pin::Pin::new(s).poll_write(cx, data),
            SimStream::Linked(s) => std::pin::Pin::new(s).poll_write(cx, data),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            SimStream::Direct(s) => std::pin::Pin::new(s).poll_flush(cx),
            SimStream::Linked(s) => std::pin::Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            SimStream::Direct(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            SimStream::Linked(s) => std::pin::Pin::new(s).poll_shutdown(cx),
        }
    }
}

impl baton_runtime::mcp::http::Connect for SimTcp {
    type Stream = SimStream;

    fn connect<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, std::io::Result<Self::Stream>> {
        Box::pin(async move {
            match &self.0 {
                None => turmoil::net::TcpStream::connect((host, port))
                    .await
                    .map(SimStream::Direct),
                Some((links, actor)) => links
                    .clone()
                    .connect(actor.clone(), host, port)
                    .await
                    .map(SimStream::Linked),
            }
        })
    }
}
