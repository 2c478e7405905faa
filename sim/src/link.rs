//! The links between each actor and the daemon, and the faults a scenario puts on them.
//!
//! Every call from an actor (a coordinator's MCP process, a sub-task's, the attacker over
//! turmoil's network; the app over its in-process channel) goes through [`Links::call`], which
//! plays on the client's side what the link's faults do to a connection, since all these
//! actors share one turmoil host and turmoil partitions hosts, not actors:
//! - a **partition** refuses new calls at once, and breaks calls in flight: the client goes
//!   away (its future is dropped, so the daemon sees a cancelled request), or, if the daemon
//!   answered already, the answer is lost on its way back;
//! - a **delay** adds latency on the way there and on the way back;
//! - **drop_response** loses the next answers after the daemon gave them;
//! - every call also takes a seeded jitter of up to [`LINK_JITTER_MS_MAX`] each way, so that
//!   different seeds interleave concurrent calls differently.
//!
//! The same faults, in the same words, move onto turmoil's own partitions when each MCP process
//! becomes its own host.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use baton_runtime::ports::Entropy;
use baton_runtime::ports::fakes::SeededEntropy;
use tokio::sync::Notify;

/// Largest seeded latency added to a call each way, in simulated milliseconds: a step, so a
/// seed decides on which step of the other host a call lands.
pub const LINK_JITTER_MS_MAX: u64 = crate::world::TICK_MS;

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
    broken: Notify,
    jitter: SeededEntropy,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Links {
    /// Healthy links, with jitter drawn from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Links {
            state: Mutex::default(),
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
            tokio::time::sleep(self.latency(actor)).await;
            let answer = request.await;
            answered.store(true, Ordering::Relaxed);
            // The answer came from the daemon's host, possibly later in this step than now.
            crate::world::next_step().await;
            tokio::time::sleep(self.latency(actor)).await;
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
