//! The accept loop every listener runs (the API's, the phone's, the app channel's): HTTP/1.1
//! through hyper, with the header-read timeout ([`guard::HEADER_READ_TIMEOUT_MS`], which also
//! closes idle keep-alive connections) and the listener's connection cap ([`guard::Slots`]:
//! the oldest idle connection makes room for a new one; a listener full of requests in flight
//! closes the newcomer at once). Each request carries its connection's [`Addresses`] as an
//! extension, for the `Host` check and the per-peer caps.
//!
//! A graceful shutdown stops accepting, lets every connection finish the request it is in
//! (hyper's graceful shutdown: idle ones close at once), and returns once all are closed.
//! Nothing here waits on a `watch` or selects at random: the simulator serves through it.

use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::sync::{Notify, mpsc};
use tower::ServiceExt as _;

use super::guard::{Admit, EVICTED_CLOSE_WAIT_MS, HEADER_READ_TIMEOUT_MS, Limits, Slots};
use super::latest;

/// Where a connection came from and arrived at, as far as its listener knows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Addresses {
    /// The peer's address (`None` on a Unix socket).
    pub peer: Option<IpAddr>,
    /// The address the connection arrived at (`None` on a Unix socket).
    pub local: Option<IpAddr>,
}

/// A listener the API is served on: axum's, plus where each connection came from.
pub trait Listen: axum::serve::Listener {
    /// The addresses of a connection just accepted.
    fn addresses(io: &Self::Io, addr: &Self::Addr) -> Addresses;

    /// Sets a connection just accepted up before it is served (nothing by default).
    fn set_up(_io: &Self::Io) {}
}

impl Listen for tokio::net::TcpListener {
    fn addresses(io: &Self::Io, addr: &Self::Addr) -> Addresses {
        Addresses {
            peer: Some(addr.ip()),
            local: io.local_addr().ok().map(|a| a.ip()),
        }
    }

    /// Nagle off: an answer that leaves in more than one write (a long poll's body, then its
    /// end) is sent at once, not held until the client acknowledges the write before, which a
    /// client's delayed acknowledgement can put off for tens of milliseconds.
    fn set_up(io: &Self::Io) {
        if let Err(error) = io.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY could not be set on a connection");
        }
    }
}

#[cfg(unix)]
impl Listen for tokio::net::UnixListener {
    fn addresses(_: &Self::Io, _: &Self::Addr) -> Addresses {
        Addresses::default()
    }
}

/// The open connections of one listener, and how to close one.
/// An open connection's two signals: the accept loop tells it it is evicted, it tells back it
/// has closed (its descriptor released).
#[derive(Clone, Default)]
struct Signals {
    evict: Arc<Notify>,
    closed: Arc<Notify>,
}

struct Table {
    slots: Slots,
    evict: std::collections::BTreeMap<u64, Signals>,
}

fn lock(table: &Mutex<Table>) -> MutexGuard<'_, Table> {
    // A panic while the lock was held leaves plain data behind: go on with it.
    table
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then shuts down
/// gracefully (module documentation).
///
/// # Errors
/// None yet: the listener's accept retries by itself (axum's listeners wait out errors such as
/// too many open files).
pub async fn run<L>(
    mut listener: L,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listen,
{
    let table = Arc::new(Mutex::new(Table {
        slots: Slots::new(limits),
        evict: std::collections::BTreeMap::new(),
    }));
    let (closing, _) = latest::channel(false);
    // Every connection task holds a sender: once all are dropped, every connection is closed.
    let (open, mut all_closed) = mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, addr) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        L::set_up(&io);
        let addresses = L::addresses(&io, &addr);
        let signals = Signals::default();
        let (slot, evicted) = {
            let mut table = lock(&table);
            let (slot, evict) = match table.slots.admit(addresses.peer) {
                Admit::Refuse => {
                    tracing::debug!(?addresses, "a listener is full of requests: refused");
                    continue;
                }
                Admit::Open(slot) => (slot, None),
                Admit::OpenEvicting { slot, evict } => (slot, Some(evict)),
            };
            let evicted = evict.and_then(|evict| table.evict.remove(&evict));
            if let Some(evicted) = &evicted {
                evicted.evict.notify_one();
            }
            table.evict.insert(slot, signals.clone());
            (slot, evicted)
        };
        // The evicted connection's descriptor is released before the next is accepted, so a
        // flood that keeps coming back never holds more than the cap (bounded: a connection
        // slow to end does not stop the listener).
        if let Some(evicted) = evicted {
            let wait = Duration::from_millis(EVICTED_CLOSE_WAIT_MS);
            let _ = crate::time::timeout(wait, evicted.closed.notified()).await;
        }
        let connection = Connection {
            table: table.clone(),
            slot,
            addresses,
            router: router.clone(),
        };
        let closing = closing.subscribe();
        let open = open.clone();
        tokio::spawn(async move {
            connection.serve(io, signals, closing).await;
            drop(open);
        });
    }
    drop(listener);
    closing.publish(true);
    drop(open);
    let _ = all_closed.recv().await;
    Ok(())
}

struct Connection {
    table: Arc<Mutex<Table>>,
    slot: u64,
    addresses: Addresses,
    router: Router,
}

impl Connection {
    async fn serve<I>(self, io: I, signals: Signals, mut closing: latest::Latest<bool>)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (table, slot, addresses, router) = (self.table, self.slot, self.addresses, self.router);
        let service = {
            let table = table.clone();
            hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(addresses);
                lock(&table).slots.busy(slot);
                let answer = router.clone().oneshot(request.map(Body::new));
                let table = table.clone();
                async move {
                    let response = answer.await;
                    lock(&table).slots.idle(slot);
                    response
                }
            })
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(crate::time::HyperTimer)
            .header_read_timeout(Duration::from_millis(HEADER_READ_TIMEOUT_MS));
        // The connection (and its socket) ends with this block, before the slot is given back
        // and the accept loop told: an evicted descriptor is released by then.
        {
            let connection = builder
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            let mut connection = std::pin::pin!(connection);
            let mut shutting = false;
            loop {
                tokio::select! {
                    biased;
                    () = signals.evict.notified() => break,
                    _ = closing.wait_for(|closing| *closing), if !shutting => {
                        shutting = true;
                        connection.as_mut().graceful_shutdown();
                    }
                    _ = connection.as_mut() => break,
                }
            }
        }
        {
            let mut table = lock(&table);
            table.slots.close(slot);
            table.evict.remove(&slot);
        }
        signals.closed.notify_one();
    }
}
