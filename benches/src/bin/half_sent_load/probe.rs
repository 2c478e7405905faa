//! The probe client: connections from a chosen loopback address, one surface's request (REST,
//! app channel, phone) sent on a new connection every [`PROBE_INTERVAL_MS`], each answer timed.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use baton_runtime::mcp::http::{self, BaseUrl, Connect, UnixSocket};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use super::{PROBE_INTERVAL_MS, PROBE_TIMEOUT_MS};

/// A TCP connection from `source` (any loopback address: all of 127/8 is this machine's).
pub(super) async fn connect_from(source: Ipv4Addr, to: SocketAddr) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    socket.connect(to).await
}

/// The API client's connections, from a chosen loopback address.
pub(super) struct TcpFrom(pub(super) Ipv4Addr);

impl Connect for TcpFrom {
    type Stream = TcpStream;

    fn connect<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send + 'a>> {
        Box::pin(async move {
            let to: Ipv4Addr = host
                .parse()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "not an IPv4 address"))?;
            connect_from(self.0, SocketAddr::from((to, port))).await
        })
    }
}

/// One surface the probe client asks, and the request it sends.
pub(super) struct Surface {
    pub(super) name: &'static str,
    via: Via,
    base: BaseUrl,
    request: Vec<u8>,
}

pub(super) enum Via {
    Tcp(TcpFrom),
    Unix(UnixSocket),
}

impl Surface {
    /// `GET path` on `base` through `via`, with `Host: host` and a bearer `token`.
    pub(super) fn get(
        name: &'static str,
        via: Via,
        base: BaseUrl,
        path: &str,
        token: Option<&str>,
    ) -> Self {
        let host = match via {
            Via::Tcp(_) => base.authority(),
            Via::Unix(_) => "localhost".to_owned(),
        };
        let headers: Vec<(String, String)> = token
            .map(|t| ("authorization".to_owned(), format!("Bearer {t}")))
            .into_iter()
            .collect();
        let request = http::encode(&host, "GET", path, &headers, b"");
        Surface {
            name,
            via,
            base,
            request,
        }
    }

    /// One request on a new connection: `Ok` for a 200.
    pub(super) async fn ask(&self) -> Result<(), String> {
        let answer = match &self.via {
            Via::Tcp(tcp) => http::send(tcp, &self.base, &self.request).await,
            Via::Unix(unix) => http::send(unix, &self.base, &self.request).await,
        };
        match answer {
            Ok(response) if response.status == 200 => Ok(()),
            Ok(response) => Err(format!("status {}", response.status)),
            Err(error) => Err(error.to_string()),
        }
    }
}

/// One probe request: when it was sent (from the flood's start; before it: negative), how long
/// it took, and why it failed.
pub(super) struct Sample {
    pub(super) at_ms: i64,
    pub(super) latency: Duration,
    pub(super) failure: Option<String>,
}

/// Probes `surface` until `until`, one request at a time, [`PROBE_INTERVAL_MS`] apart.
pub(super) async fn probe(surface: Arc<Surface>, origin: Instant, until: Instant) -> Vec<Sample> {
    let mut samples = Vec::new();
    while Instant::now() < until {
        let sent = Instant::now();
        let limit = Duration::from_millis(PROBE_TIMEOUT_MS);
        let failure = match tokio::time::timeout(limit, surface.ask()).await {
            Ok(Ok(())) => None,
            Ok(Err(why)) => Some(why),
            Err(_) => Some(format!("no answer within {PROBE_TIMEOUT_MS} ms")),
        };
        samples.push(Sample {
            at_ms: signed_ms(origin, sent),
            latency: sent.elapsed(),
            failure,
        });
        tokio::time::sleep(Duration::from_millis(PROBE_INTERVAL_MS)).await;
    }
    samples
}

/// `at - origin` in ms, negative when `at` is earlier.
pub(super) fn signed_ms(origin: Instant, at: Instant) -> i64 {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    match at.checked_duration_since(origin) {
        Some(after) => ms(after),
        None => -ms(origin - at),
    }
}
