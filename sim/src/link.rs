//! The links between each actor and the daemon, and the faults a scenario puts on them.
//!
//! The actors share one turmoil host and turmoil partitions hosts, not actors, so the faults
//! are played on the client's side of each actor's link, with the same effect on the daemon as
//! a broken network:
//! - a **partition** refuses new connections at once, and breaks those in flight: the client
//!   goes away (the daemon sees a cancelled request), or, if the daemon answered already, the
//!   answer is lost on its way back;
//! - a **delay** adds latency on the way there and on the way back;
//! - **drop_response** loses the next answers after the daemon gave them;
//! - every connection also takes a seeded jitter of up to [`LINK_JITTER_MS_MAX`] each way, so
//!   that different seeds interleave concurrent calls differently.
//!
//! An MCP process (a coordinator's `mcp.` calls, a sub-task's `signal_done`) meets the faults
//! one connection at a time, through [`Links::connect`]: each of its requests, each retry of a
//! wait, is refused, broken or loses its answer on its own, so the runtime's own retry and
//! replay code is what rides them out. Every other call (a coordinator's plain REST call, the
//! attacker's, the app's over the app channel) is one exchange, and goes through
//! [`Links::call`] whole.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use baton_runtime::ports::Entropy;
use baton_runtime::ports::fakes::SeededEntropy;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// Largest seeded latency added to a call each way, in simulated milliseconds: a step, so a
/// seed decides on which step of the other host a call lands.
pub const LINK_JITTER_MS_MAX: u64 = crate::world::TICK_MS;

/// Largest piece of an answer a linked connection holds back while its return latency runs.
pub const LINKED_READ_BYTES_MAX: usize = 16 * 1024;

/// Why a call did not get its answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The link was partitioned when the call was made.
    #[error("connection refused: {0} cannot reach the daemon")]
    Refused(String),
    /// The link broke while the call was in flight; the daemon saw the client go away.
    #[error("connection reset: the link between {0} and the daemon broke during the call")]
    Reset(String),
    /// The daemon answered, and the answer never arrived.
    #[error("response lost: the daemon answered {0}, the answer never arrived")]
    Lost(String),
}

#[derive(Debug, Default, Clone)]
struct LinkState {
    partitioned: bool,
    delay_ms: u64,
    drop_next: usize,
}

/// Every actor's link to the daemon. See the module documentation.
pub struct Links {
    state: Mutex<BTreeMap<String, LinkState>>,
    /// Where a linked connection's fault is told (an MCP process's retries are otherwise
    /// unseen).
    recorder: crate::trace::Recorder,
    broken: Notify,
    jitter: SeededEntropy,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Links {
    /// Healthy links, with jitter drawn from `seed`, telling `recorder` what their faults do to
    /// linked connections.
    #[must_use]
    pub fn new(seed: u64, recorder: crate::trace::Recorder) -> Self {
        Links {
            state: Mutex::default(),
            recorder,
            broken: Notify::new(),
            jitter: SeededEntropy::new(seed ^ 0x6c69_6e6b),
        }
    }

    /// Partitions (or heals) `actor`'s link. A partition breaks the calls in flight.
    pub fn partition(&self, actor: &str, partitioned: bool) {
        lock(&self.state)
            .entry(actor.to_owned())
            .or_default()
            .partitioned = partitioned;
        if partitioned {
            self.broken.notify_waiters();
        }
    }

    /// Sets the latency added each way on `actor`'s link.
    pub fn delay(&self, actor: &str, ms: u64) {
        lock(&self.state)
            .entry(actor.to_owned())
            .or_default()
            .delay_ms = ms;
    }

    /// Loses the next `count` answers on `actor`'s link.
    pub fn drop_responses(&self, actor: &str, count: usize) {
        lock(&self.state)
            .entry(actor.to_owned())
            .or_default()
            .drop_next += count;
    }

    fn state(&self, actor: &str) -> LinkState {
        lock(&self.state).get(actor).cloned().unwrap_or_default()
    }

    fn latency(&self, actor: &str) -> Duration {
        let mut byte = [0u8];
        self.jitter.fill(&mut byte);
        let jitter = u64::from(byte[0]) % (LINK_JITTER_MS_MAX + 1);
        Duration::from_millis(self.state(actor).delay_ms + jitter)
    }

    /// Makes the call `request` from `actor` to the daemon over its link. `what` names the call
    /// in errors.
    ///
    /// # Errors
    /// The link refused the call, broke during it, or lost its answer.
    pub async fn call<T, F>(&self, actor: &str, what: &str, request: F) -> Result<T, LinkError>
    where
        F: Future<Output = T>,
    {
        if self.state(actor).partitioned {
            return Err(LinkError::Refused(actor.to_owned()));
        }
        let answered = AtomicBool::new(false);
        let trip = async {
            baton_runtime::time::sleep(self.latency(actor)).await;
            let answer = request.await;
            answered.store(true, Ordering::Relaxed);
            // The answer came from the daemon's host, possibly later in this step than now.
            crate::world::next_step().await;
            baton_runtime::time::sleep(self.latency(actor)).await;
            answer
        };
        tokio::pin!(trip);
        let answer = loop {
            let broken = self.broken.notified();
            tokio::pin!(broken);
            broken.as_mut().enable();
            if self.state(actor).partitioned {
                if answered.load(Ordering::Relaxed) {
                    return Err(LinkError::Lost(what.to_owned()));
                }
                // Dropping `trip` drops the request: the daemon sees its client go away.
                return Err(LinkError::Reset(actor.to_owned()));
            }
            tokio::select! {
                biased;
                answer = &mut trip => break answer,
                () = &mut broken => {}
            }
        };
        let mut state = lock(&self.state);
        let link = state.entry(actor.to_owned()).or_default();
        if link.partitioned {
            return Err(LinkError::Lost(what.to_owned()));
        }
        if link.drop_next > 0 {
            link.drop_next -= 1;
            return Err(LinkError::Lost(what.to_owned()));
        }
        Ok(answer)
    }
}

impl Links {
    /// Takes one of the answers `actor`'s link is to lose, if any is left.
    fn take_drop(&self, actor: &str) -> bool {
        let mut state = lock(&self.state);
        let link = state.entry(actor.to_owned()).or_default();
        let lost = link.drop_next > 0;
        link.drop_next = link.drop_next.saturating_sub(1);
        lost
    }

    /// Resolves once `actor`'s link is partitioned.
    async fn broken(self: Arc<Self>, actor: String) {
        loop {
            let broken = self.broken.notified();
            tokio::pin!(broken);
            broken.as_mut().enable();
            if self.state(&actor).partitioned {
                return;
            }
            broken.await;
        }
    }

    /// Opens one connection from `actor` to the daemon at `host:port` over its link: refused
    /// while the link is partitioned; otherwise after the link's latency, a connection that a
    /// partition breaks, whose answer arrives after the latency back, or is lost.
    ///
    /// # Errors
    /// The link is partitioned, or turmoil's connect failed.
    pub async fn connect(
        self: Arc<Self>,
        actor: String,
        host: &str,
        port: u16,
    ) -> io::Result<LinkedStream> {
        let refused = || {
            self.recorder
                .record(&actor, "mcp: a connection is refused (the link is down)");
            io::Error::new(
                io::ErrorKind::ConnectionRefused,
                LinkError::Refused(actor.clone()).to_string(),
            )
        };
        if self.state(&actor).partitioned {
            return Err(refused());
        }
        baton_runtime::time::sleep(self.latency(&actor)).await;
        if self.state(&actor).partitioned {
            return Err(refused());
        }
        let inner = turmoil::net::TcpStream::connect((host, port)).await?;
        Ok(LinkedStream {
            inner,
            broken: Box::pin(self.clone().broken(actor.clone())),
            is_broken: false,
            links: self,
            actor,
            back: Back::Waiting,
        })
    }
}

/// Where a linked connection's answer is on its way back.
enum Back {
    /// Nothing came yet.
    Waiting,
    /// The first bytes came; they are handed on once the latency back has run.
    Delayed(Pin<Box<baton_runtime::time::Sleep>>, Vec<u8>),
    /// Handed on; what is left of the first bytes goes first.
    Open(Vec<u8>),
}

/// One connection over an actor's link (see [`Links::connect`]).
pub struct LinkedStream {
    inner: turmoil::net::TcpStream,
    links: Arc<Links>,
    actor: String,
    broken: Pin<Box<dyn Future<Output = ()> + Send>>,
    is_broken: bool,
    back: Back,
}

impl LinkedStream {
    /// The connection broke if the link was partitioned since it opened.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if !self.is_broken && self.broken.as_mut().poll(cx).is_ready() {
            self.is_broken = true;
            self.links.recorder.record(
                &self.actor,
                "mcp: a connection in flight breaks (the link went down)",
            );
        }
        if self.is_broken {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                LinkError::Reset(self.actor.clone()).to_string(),
            ));
        }
        Ok(())
    }
}

thread_local! {
    /// Where [`read_first`] reads: made (zeroed) once per thread, not once per connection (a
    /// simulation runs on one thread; what a read leaves in it is never read again).
    static FIRST_READ: std::cell::RefCell<Vec<u8>> =
        std::cell::RefCell::new(vec![0; LINKED_READ_BYTES_MAX]);
}

/// The first bytes of an answer, at most [`LINKED_READ_BYTES_MAX`]: one read of `inner`.
fn read_first(
    inner: Pin<&mut turmoil::net::TcpStream>,
    cx: &mut Context<'_>,
) -> Poll<io::Result<Vec<u8>>> {
    FIRST_READ.with_borrow_mut(|scratch| {
        let mut buf = ReadBuf::new(scratch);
        ready!(inner.poll_read(cx, &mut buf))?;
        Poll::Ready(Ok(buf.filled().to_vec()))
    })
}

impl AsyncRead for LinkedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check(cx)?;
        loop {
            match &mut this.back {
                Back::Waiting => {
                    let inner = Pin::new(&mut this.inner);
                    let first = ready!(read_first(inner, cx))?;
                    if first.is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                    if this.links.take_drop(&this.actor) {
                        this.links.recorder.record(
                            &this.actor,
                            "mcp: the daemon's answer is lost on its way back",
                        );
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::ConnectionReset,
                            LinkError::Lost("the request".to_owned()).to_string(),
                        )));
                    }
                    let sleep = baton_runtime::time::sleep(this.links.latency(&this.actor));
                    this.back = Back::Delayed(Box::pin(sleep), first);
                }
                Back::Delayed(sleep, first) => {
                    ready!(sleep.as_mut().poll(cx));
                    this.back = Back::Open(std::mem::take(first));
                }
                Back::Open(left) if !left.is_empty() => {
                    let n = left.len().min(buf.remaining());
                    buf.put_slice(&left[..n]);
                    left.drain(..n);
                    return Poll::Ready(Ok(()));
                }
                Back::Open(_) => return Pin::new(&mut this.inner).poll_read(cx, buf),
            }
        }
    }
}

impl AsyncWrite for LinkedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
