//! The flood: half-sent requests held until the daemon closes them (or opened again with
//! `--reopen`), what became of each, and the daemon's open descriptors counted meanwhile.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::Instant;

use super::probe::{connect_from, signed_ms};
use super::{FD_SAMPLE_MS, FLOOD_READ_BYTES, REOPEN_PAUSE_MS};

/// What became of one flood connection.
#[derive(Clone, Copy, Debug)]
pub(super) enum Fate {
    /// The connect did not complete before the hold ended, or failed.
    NotConnected,
    /// The daemon closed it (end of stream or a reset) `after` its connect; `answered` if it sent
    /// bytes first.
    Closed { after: Duration, answered: bool },
    /// Still open when the hold ended.
    Open,
}

/// One half-sent request from `source` to `to`, held until the daemon closes it or `until`.
async fn half_sent(source: Ipv4Addr, to: SocketAddr, request: &[u8], until: Instant) -> Fate {
    let Ok(Ok(mut stream)) = tokio::time::timeout_at(until, connect_from(source, to)).await else {
        return Fate::NotConnected;
    };
    let opened = Instant::now();
    if stream.write_all(request).await.is_err() {
        return Fate::Closed {
            after: opened.elapsed(),
            answered: false,
        };
    }
    let mut buf = [0u8; FLOOD_READ_BYTES];
    let mut answered = false;
    loop {
        match tokio::time::timeout_at(until, stream.read(&mut buf)).await {
            Err(_) => return Fate::Open,
            Ok(Ok(0) | Err(_)) => {
                return Fate::Closed {
                    after: opened.elapsed(),
                    answered,
                };
            }
            Ok(Ok(_)) => answered = true,
        }
    }
}

/// A flood connection's life: one [`half_sent`], or with `reopen` one after another until
/// `until`.
pub(super) async fn flood_one(
    source: Ipv4Addr,
    to: SocketAddr,
    request: Arc<[u8]>,
    until: Instant,
    reopen: bool,
) -> Vec<Fate> {
    let mut fates = vec![half_sent(source, to, &request, until).await];
    while reopen && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(REOPEN_PAUSE_MS)).await;
        fates.push(half_sent(source, to, &request, until).await);
    }
    fates
}

/// The daemon's open descriptors every [`FD_SAMPLE_MS`] until `until`: (ms from the flood's
/// start, count).
pub(super) async fn count_fds(pid: u32, origin: Instant, until: Instant) -> Vec<(i64, usize)> {
    let dir = format!("/proc/{pid}/fd");
    let mut counts = Vec::new();
    while Instant::now() < until {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            counts.push((signed_ms(origin, Instant::now()), entries.count()));
        }
        tokio::time::sleep(Duration::from_millis(FD_SAMPLE_MS)).await;
    }
    counts
}
